"""Secrets in the output of Python and Lua hosts: debug lines on, every event, log line and error
printed, against a FerretDB with authentication whose password is an ordinary word ("items").

Masked where a secret lives: the connection string's password, createUser's and updateUser's pwd,
a SASL exchange's payload, a hello's speculativeAuthenticate (the commands the drivers'
command-monitoring rules redact). Not masked: the same word where it is not a secret, like the
collection called items in a duplicate-key error or a document's text.
"""
from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from mgconn.ferretdb import FerretDB

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("MGCONN_BUILD_DIR", ROOT / "build"))
PASSWORD = "items"
NEW_USER_PASSWORDS = ("sparrow", "starling")
SASL_PAYLOAD = base64.b64encode(b"\0ada\0" + PASSWORD.encode()).decode()

PY_HOST = r"""
import asyncio, base64, logging, sys, mgconn
logging.basicConfig(level=logging.DEBUG, stream=sys.stdout)
mgconn.set("debug", True)
uri, payload = sys.argv[1], base64.b64decode(sys.argv[2])
async def main():
    conn = mgconn.create_connection(uri, serverSelectionTimeoutMS=5000)
    for name in ("connecting", "connected", "open", "disconnected", "close", "error"):
        conn.on(name, lambda *a, name=name: print("event", name, *a))
    await conn
    items = conn.collection("items")
    await items.insert_one({"_id": 1, "note": "items in stock"})
    for command in ({"insert": "items", "documents": [{"_id": 1}]},
                    {"createUser": "carol", "pwd": "sparrow", "roles": []},
                    {"updateUser": "carol", "pwd": "starling"},
                    {"saslStart": 1, "mechanism": "PLAIN", "payload": mgconn.Binary(payload)},
                    {"hello": 1, "speculativeAuthenticate": {"saslStart": 1, "mechanism": "PLAIN",
                                                             "payload": mgconn.Binary(payload), "db": "admin"}}):
        try:
            print("reply", list(await conn.run_command(command)))
        except Exception as e:
            print("error", type(e).__name__, e)
    try:
        await items.insert_one({"_id": 1, "note": "items in stock"})
    except Exception as e:
        print("error", type(e).__name__, e)
    await conn.close()
asyncio.run(main())
"""

LUA_HOST = r"""
local mgconn = require "mgconn"
mgconn.set("debug", true)
local uri, payload = arg[1], arg[2]
local conn = mgconn.createConnection(uri, { serverSelectionTimeoutMS = 5000 })
for _, name in ipairs({ "connecting", "connected", "open", "disconnected", "close", "error" }) do
  conn:on(name, function(err) print("event", name, err and err.message or "") end)
end
assert(conn:asPromise():wait(10))
local items = conn:collection("items")
print("stored", items:insertOne(mgconn.ordered("_id", 2, "note", "items in stock")):wait(10))
local bin = mgconn.Binary(payload, 0)
local commands = {
  { "createUser", mgconn.ordered("createUser", "carol", "pwd", "sparrow", "roles", mgconn.array({})) },
  { "updateUser", mgconn.ordered("updateUser", "carol", "pwd", "starling") },
  { "saslStart", mgconn.ordered("saslStart", 1, "mechanism", "PLAIN", "payload", bin) },
  -- a table without key order: whichever key comes first, the password is not shown
  { "createUser (unordered)", { createUser = "dave", pwd = "sparrow", roles = mgconn.array({}) } },
}
for _, c in ipairs(commands) do
  local ok, err = conn:runCommand(c[2]):wait(10)
  print("command", c[1], ok and "ok" or ("error " .. tostring(err and err.message)))
end
local ok, err = items:insertOne(mgconn.ordered("_id", 2, "note", "items in stock")):wait(10)
print("insert again", ok and "ok" or ("error " .. err.message))
conn:close():wait(10)
"""


@pytest.fixture(scope="module")
def server() -> Iterator[FerretDB]:
    s = FerretDB(extra_args=["--test-enable-new-auth", "--setup-database=admin", "--setup-username=ada",
                             f"--setup-password={PASSWORD}"]).start()
    yield s
    s.stop()


def _uri(server: FerretDB) -> str:
    return server.uri.replace("mongodb://", f"mongodb://ada:{PASSWORD}@") + "admin?authSource=admin"


def _output(cmd: List[str], env: Dict[str, str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def _check(text: str) -> None:
    # the word is not masked where it is no secret
    assert "admin.items" in text, text
    assert "items in stock" in text, text
    assert "admin.****" not in text and "**** in stock" not in text, text
    # the redacted commands show their name only
    assert '{"createUser": "[redacted]"}' in text and '{"saslStart": "[redacted]"}' in text, text
    for secret in NEW_USER_PASSWORDS + (SASL_PAYLOAD, f"ada:{PASSWORD}@"):
        assert secret not in text, f"{secret!r} was shown:\n{text}"


def test_a_python_host_shows_no_secret_and_masks_no_ordinary_word(server):
    text = _output([sys.executable, "-c", PY_HOST, _uri(server), SASL_PAYLOAD], dict(os.environ))
    _check(text)
    assert '{"hello": "[redacted]"}' in text, text


def test_a_lua_host_shows_no_secret_and_masks_no_ordinary_word(server):
    env = dict(os.environ, LUA_CPATH=f"{BUILD}/lua/?.so;;", LUA_PATH=f"{ROOT}/lua/?.lua;;")
    raw = base64.b64decode(SASL_PAYLOAD).decode("latin-1")
    text = _output(["lua5.4", "-e", f"arg = {{ [[{_uri(server)}]], {raw!r} }}".replace("'", '"').replace("\\x00", "\\0"),
                    "-e", LUA_HOST], env)
    _check(text)
