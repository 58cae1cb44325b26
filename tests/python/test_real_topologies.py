"""A real FerretDB as a single-node replica set, with authentication, and behind TLS."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List

import pytest

import mgconn
from mgconn.ferretdb import FerretDB, free_port

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("MGCONN_BUILD_DIR", ROOT / "build"))
SECRET = "S3cret!Pw-never-printed"
SECRET_URI = SECRET.replace("!", "%21")


def test_a_single_node_replica_set_connects_with_replica_set_in_the_uri(run):
    with FerretDB(extra_args=["--repl-set-name=rs0"]) as server:
        async def main():
            conn = mgconn.create_connection(server.uri + "rs?replicaSet=rs0", serverSelectionTimeoutMS=5000)
            await conn
            hello = await conn.run_command({"hello": 1})
            assert hello["setName"] == "rs0" and hello["isWritablePrimary"] is True
            User = conn.model("User", mgconn.Schema({"name": str}))
            await User.insert_one({"name": "ada"})
            assert (await User.find_one({"name": "ada"}))["name"] == "ada"
            await conn.close()
        run(main())


@pytest.fixture(scope="module")
def auth_server() -> Iterator[FerretDB]:
    server = FerretDB(extra_args=["--test-enable-new-auth", "--setup-database=app", "--setup-username=ada",
                                  f"--setup-password={SECRET}"]).start()
    yield server
    server.stop()


def _with_credentials(server: FerretDB, password: str) -> str:
    return server.uri.replace("mongodb://", f"mongodb://ada:{password}@") + "app"


def test_right_credentials_in_the_uri_or_as_user_and_pass_connect(auth_server, run):
    async def main():
        for conn in (mgconn.create_connection(_with_credentials(auth_server, SECRET_URI)),
                     mgconn.create_connection(auth_server.uri + "app", user="ada", **{"pass": SECRET})):
            await conn
            saved = await conn.collection("items").insert_one({"who": "ada"})
            assert saved.inserted_id is not None
            await conn.close()
    run(main())


def test_a_wrong_password_is_an_authentication_error_without_the_password(auth_server, run):
    async def main():
        conn = mgconn.create_connection(_with_credentials(auth_server, "wrong-" + SECRET_URI),
                                        serverSelectionTimeoutMS=3000)
        with pytest.raises(mgconn.AuthenticationError) as info:
            await conn
        assert "Authentication failed" in str(info.value) and SECRET not in str(info.value)
        await conn.close()
    run(main())


PY_HOST = r"""
import asyncio, logging, sys, mgconn
logging.basicConfig(level=logging.DEBUG, stream=sys.stdout)
mgconn.set("debug", True)
uri, plain, secret = sys.argv[1], sys.argv[2], sys.argv[3]
async def attempt(conn):
    for name in ("connecting", "connected", "open", "disconnected", "close", "error"):
        conn.on(name, lambda *a, name=name: print("event", name, *a))
    try:
        await conn
        print("stored", await conn.collection("items").insert_one({"a": 1}))
        print("found", await conn.collection("items").find_one({}))
    except Exception as e:
        print("error", type(e).__name__, e, getattr(e, "reason", ""))
    print("conn", conn, conn.host)
    await conn.close()
async def main():
    await attempt(mgconn.create_connection(uri, serverSelectionTimeoutMS=2000))
    await attempt(mgconn.create_connection(uri.replace("ada:", "ada:x"), serverSelectionTimeoutMS=2000))
    await attempt(mgconn.create_connection(plain, user="ada", serverSelectionTimeoutMS=2000, **{"pass": secret}))
    await attempt(mgconn.create_connection(plain, user="ada", serverSelectionTimeoutMS=2000, **{"pass": "x" + secret}))
    for bad, opts in ((uri, {"maxPoolSize": "many"}), (uri.replace("127.0.0.1:", "127.0.0.1:9"), {})):
        try:
            mgconn.create_connection(bad, **opts)
        except mgconn.OptionError as e:
            print("option error", e)
asyncio.run(main())
"""

LUA_HOST = r"""
local mgconn = require "mgconn"
local uri, plain, secret = arg[1], arg[2], arg[3]
mgconn.set("debug", true)
local function attempt(conn)
  for _, name in ipairs({ "connecting", "connected", "open", "disconnected", "close", "error" }) do
    conn:on(name, function(err) print("event", name, err and err.message or "") end)
  end
  local ok, err = conn:asPromise():wait(10)
  if ok then
    print("stored", conn:collection("items"):insertOne({ a = 1 }):wait(10))
  else
    print("error", err.category, err.message)
    for host, s in pairs(err.reason and err.reason.servers or {}) do print("server", host, s.type, s.error) end
  end
  print("conn", tostring(conn), conn.host)
  conn:close():wait(10)
end
attempt(mgconn.createConnection(uri, { serverSelectionTimeoutMS = 2000 }))
attempt(mgconn.createConnection((uri:gsub("ada:", "ada:x")), { serverSelectionTimeoutMS = 2000 }))
attempt(mgconn.createConnection(plain, { user = "ada", pass = secret, serverSelectionTimeoutMS = 2000 }))
attempt(mgconn.createConnection(plain, { user = "ada", pass = "x" .. secret, serverSelectionTimeoutMS = 2000 }))
local ok, err = pcall(mgconn.createConnection, uri, { maxPoolSize = "many" })
print("option error", err.message)
ok, err = pcall(mgconn.createConnection, (uri:gsub("127.0.0.1:", "127.0.0.1:9")))
print("option error", err.message)
"""


def _host_output(cmd: List[str], env: dict) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def test_the_password_appears_in_no_output_of_any_host(auth_server):
    """Python and Lua hosts, each with debug lines and every event and log line printed, connect with
    the right and a wrong password, in the URI and as user/pass: everything they print is searched."""
    uri, plain = _with_credentials(auth_server, SECRET_URI), auth_server.uri + "app"
    env = dict(os.environ, LUA_CPATH=f"{BUILD}/lua/?.so;;", LUA_PATH=f"{ROOT}/lua/?.lua;;")
    outputs = {
        "python": _host_output([sys.executable, "-c", PY_HOST, uri, plain, SECRET], env),
        "lua": _host_output(["lua5.4", "-e", f"arg = {{ [[{uri}]], [[{plain}]], [[{SECRET}]] }}", "-e", LUA_HOST], env),
    }
    for host, text in outputs.items():
        assert "stored" in text and "Authentication" in text and "maxPoolSize" in text, f"{host} did not run:\n{text}"
        assert "ada:****@" in text, f"{host}: the URI is never shown masked:\n{text}"
        for form in (SECRET, SECRET_URI):
            assert form not in text, f"{host} printed the password:\n{text}"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=mgconn test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj",
            "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
            "server.pem", "-days", "2", "-extfile", "ext.cnf")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.pem", "-days",
            "2", "-subj", "/CN=another CA")
    return d


def test_tls_with_the_right_ca_connects_and_a_wrong_ca_fails_clearly(certificates, run):
    tls_port = free_port()
    with FerretDB(extra_args=[f"--listen-tls=127.0.0.1:{tls_port}",
                              f"--listen-tls-cert-file={certificates / 'server.pem'}",
                              f"--listen-tls-key-file={certificates / 'server.key'}"]):
        async def main():
            good = mgconn.create_connection(f"mongodb://127.0.0.1:{tls_port}/secure?tls=true",
                                            tlsCAFile=str(certificates / "ca.pem"))
            await good
            assert (await good.run_command({"ping": 1}))["ok"] == 1
            await good.close()
            bad = mgconn.create_connection(
                f"mongodb://127.0.0.1:{tls_port}/secure?tls=true&tlsCAFile={certificates / 'other.pem'}",
                serverSelectionTimeoutMS=1500)
            with pytest.raises(mgconn.ServerSelectionError) as info:
                await bad
            assert "certificate verify failed" in str(info.value), info.value
            server = info.value.reason["servers"][f"127.0.0.1:{tls_port}"]
            assert "TLS handshake failed" in server["error"]
            await bad.close()
        run(main())


def test_family_restricts_resolution_and_localhost_on_ipv6_gets_the_hint(mongodb_uri, run):
    port = mongodb_uri.split(":")[2].split("/")[0]  # the test server listens on 127.0.0.1 only

    async def main():
        v4 = mgconn.create_connection(f"mongodb://localhost:{port}/fam", family=4, serverSelectionTimeoutMS=3000)
        await v4
        assert (await v4.run_command({"ping": 1}))["ok"] == 1
        await v4.close()
        for host in ("localhost", "127.0.0.1"):
            v6 = mgconn.create_connection(f"mongodb://{host}:{port}/fam", family=6, serverSelectionTimeoutMS=3000)
            with pytest.raises(mgconn.ServerSelectionError) as info:
                await v6
            message = str(info.value)
            assert f"family=6: {host} has no IPv6 address" in message, message
            if host == "localhost":
                assert "try 127.0.0.1 instead, or family=4" in message, message
            await v6.close()
    run(main())
