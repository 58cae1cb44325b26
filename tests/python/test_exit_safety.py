"""A program that stops with its connection still open ends cleanly.

When a host stops, a pool's teardown (a thread of its own, inside libmongoc) may still be running:
a game host closes a Lua state, which unloads mgconn's module; a Python or Lua program just exits,
and the process's exit handlers clean the driver up. Each host runs as the user's program does, in
a child process: against a server that stops answering while it ends (the teardown outlives the
host's stop), and many times over against one that answers (the race is rare).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("MGCONN_BUILD_DIR", ROOT / "build"))
RUNS = 60

LUA_SCRIPT = r"""
local mgconn = require "mgconn"
local conn = mgconn.connect(os.getenv("URI"), { serverSelectionTimeoutMS = 5000 })
local Item = mgconn.model("Item", mgconn.Schema({ n = "number" }))
local done = false
mgconn.spawn(function()
  Item:insertOne({ n = 1 }):await()
  done = true
end)
for _ = 1, 1000 do
  if done then break end
  mgconn.poll()
  mgconn.idle(10)
end
assert(done, "the insert did not finish")
-- no conn:close(): the script just ends
"""

PY_SCRIPT = r"""
import asyncio, os, sys
import mgconn

async def main():
    conn = mgconn.create_connection(os.environ["URI"], serverSelectionTimeoutMS=5000)
    await conn
    await conn.model("Item", mgconn.Schema({"n": int})).insert_one({"n": 1})
    if len(sys.argv) > 1:  # the parent stops the server now
        print("inserted", flush=True)
        sys.stdin.readline()
    # no conn.close(): the interpreter exits with the pool open

asyncio.run(main())
"""

# A game host embedding Lua (through ctypes, as a C host would): it runs the script, closes the Lua
# state (which unloads mgconn's module) and goes on running.
LUA_HOST = r"""
import ctypes, os, sys, time
lua = ctypes.CDLL("liblua5.4.so.0", mode=ctypes.RTLD_GLOBAL)
lua.luaL_newstate.restype = ctypes.c_void_p
lua.lua_tolstring.restype = ctypes.c_char_p
L = ctypes.c_void_p(lua.luaL_newstate())
lua.luaL_openlibs(L)
if lua.luaL_loadstring(L, os.environ["SCRIPT"].encode()) != 0 or lua.lua_pcallk(L, 0, 0, 0, 0, None) != 0:
    sys.exit("script failed: %s" % lua.lua_tolstring(L, -1, None))
print("inserted", flush=True)
sys.stdin.readline()
lua.lua_close(L)  # the pool's teardown waits on the stopped server: it outlives the state
print("closed", flush=True)
sys.stdin.readline()
time.sleep(1.5)  # the server answers again: the teardown finishes while the host goes on
print("host still running", flush=True)
"""


def _lua_env(uri: str) -> Dict[str, str]:
    return dict(os.environ, URI=uri, SCRIPT=LUA_SCRIPT, LUA_CPATH=f"{BUILD}/lua/?.so;;",
                LUA_PATH=f"{ROOT}/lua/?.lua;;")


def test_a_host_that_closes_its_lua_state_during_a_pool_teardown_keeps_running(ferretdb):
    for _ in range(3):
        host = subprocess.Popen([sys.executable, "-c", LUA_HOST], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=_lua_env(ferretdb.uri + "exit_safety"))
        try:
            line = host.stdout.readline()
            assert line == "inserted\n", f"the host said {line!r}: {host.stderr.read()}"
            os.kill(ferretdb.process.pid, signal.SIGSTOP)
            try:
                host.stdin.write("\n")
                host.stdin.flush()
                closed = host.stdout.readline()
            finally:
                os.kill(ferretdb.process.pid, signal.SIGCONT)
            assert closed == "closed\n", f"the host said {closed!r}: {host.stderr.read()}"
            host.stdin.write("\n")
            host.stdin.flush()
            out, err = host.communicate(timeout=30)
        finally:
            if host.poll() is None:
                host.kill()
        assert host.returncode == 0 and out == "host still running\n", f"exit {host.returncode}: {err[-400:]}"


def test_a_python_program_that_exits_while_a_teardown_waits_on_a_stopped_server_exits_cleanly(ferretdb):
    host = subprocess.Popen([sys.executable, "-c", PY_SCRIPT, "stop"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, URI=ferretdb.uri + "exit_safety"))
    try:
        line = host.stdout.readline()
        assert line == "inserted\n", f"the program said {line!r}: {host.stderr.read()}"
        os.kill(ferretdb.process.pid, signal.SIGSTOP)
        try:
            host.stdin.write("\n")
            host.stdin.flush()
            out, err = host.communicate(timeout=30)
        finally:
            os.kill(ferretdb.process.pid, signal.SIGCONT)
    finally:
        if host.poll() is None:
            host.kill()
    assert host.returncode == 0, f"exit {host.returncode}: {err[-400:]}"


def _run_many(cmd: List[str], env: Dict[str, str]) -> List[str]:
    def one(_: int) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
        except subprocess.TimeoutExpired:
            return "did not exit within 60 s"
        return f"exit {out.returncode}: {out.stderr[-400:]}" if out.returncode != 0 else ""

    with ThreadPoolExecutor(max_workers=2) as pool:
        return [r for r in pool.map(one, range(RUNS)) if r]


def test_a_lua_script_that_never_closes_its_connection_exits_cleanly_every_time(mongodb_uri):
    failures = _run_many(["lua5.4", "-e", LUA_SCRIPT], _lua_env(mongodb_uri))
    assert not failures, f"{len(failures)} of {RUNS} runs failed, first: {failures[0]}"


def test_a_python_program_that_never_closes_its_connection_exits_cleanly_every_time(mongodb_uri):
    failures = _run_many([sys.executable, "-c", PY_SCRIPT], dict(os.environ, URI=mongodb_uri))
    assert not failures, f"{len(failures)} of {RUNS} runs failed, first: {failures[0]}"
