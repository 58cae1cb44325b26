"""Connections, their events and their states, seen from Python."""
from __future__ import annotations

import asyncio
import sys

import pytest

import mgconn
from conftest import Recorder, closed_port


def test_open_emits_connecting_connected_open_and_await_returns_the_connection(mongodb_uri, run):
    async def main():
        conn = mgconn.create_connection(mongodb_uri)
        rec = Recorder(conn)  # attached after the call: still sees `connecting`
        assert conn.ready_state == 2
        assert await conn is conn
        await asyncio.sleep(0)
        assert rec.names == ["connecting", "connected", "open"]
        assert conn.ready_state == 1 and conn.host == "127.0.0.1" and conn.name.startswith("t_")
        await conn.close()
    run(main())


def test_initial_failure_raises_server_selection_error_with_reason(run):
    port = closed_port()

    async def main():
        conn = mgconn.create_connection(f"mongodb://127.0.0.1:{port}/x", serverSelectionTimeoutMS=1000)
        rec = Recorder(conn)
        with pytest.raises(mgconn.ServerSelectionError) as info:
            await conn
        err = info.value
        assert f"127.0.0.1:{port}" in str(err)
        assert err.reason["servers"][f"127.0.0.1:{port}"]["type"] == "Unknown"
        assert err.reason["servers"][f"127.0.0.1:{port}"]["error"]
        await rec.wait_for("error")
        assert rec.names == ["connecting", "disconnected", "error"]
        assert isinstance(rec.errors[2], mgconn.ServerSelectionError)
        assert conn.ready_state == 0
        # awaiting again gives the same error at once
        with pytest.raises(mgconn.ServerSelectionError):
            await asyncio.wait_for(conn.as_promise(), 1)
    run(main())


def test_server_kill_and_restart_emit_disconnected_then_reconnected(ferretdb, run):
    async def main():
        conn = mgconn.create_connection(ferretdb.uri + "kr", heartbeatFrequencyMS=500)
        rec = Recorder(conn)
        await conn
        ferretdb.kill()
        down = await rec.wait_for("disconnected", timeout=5)
        assert isinstance(rec.errors[down], mgconn.NetworkError)
        ferretdb.start()
        await rec.wait_for("reconnected", after=down, timeout=10)
        await rec.wait_for("open", after=down, timeout=10)
        assert rec.names[down:] == ["disconnected", "connected", "reconnected", "open"]
        assert (await conn.run_command({"ping": 1}))["ok"] == 1.0
        await conn.close()
    run(main())


def test_close_sequence_and_operations_after_close_fail(mongodb_uri, run):
    async def main():
        conn = mgconn.create_connection(mongodb_uri)
        rec = Recorder(conn)
        await conn
        await conn.close()
        await asyncio.sleep(0)
        assert rec.names == ["connecting", "connected", "open", "disconnecting", "disconnected", "close"]
        with pytest.raises(mgconn.ConnectionClosedError):
            await conn.collection("c").insert_one({"a": 1})
        await conn.close()  # a second close does nothing
        assert rec.names.count("close") == 1
    run(main())


def test_async_with_opens_and_closes(mongodb_uri, run):
    async def main():
        async with mgconn.create_connection(mongodb_uri) as conn:
            assert conn.ready_state == 1
        assert conn.ready_state == 0
    run(main())


def test_connect_twice_same_uri_returns_it_other_uri_is_refused(mongodb_uri, run):
    async def main():
        conn = mgconn.connect(mongodb_uri)
        await conn
        assert mgconn.connect(mongodb_uri) is conn
        with pytest.raises(ValueError, match="already open"):
            mgconn.connect(f"mongodb://127.0.0.1:{closed_port()}/other")
        assert conn.ready_state == 1
        assert (await conn.run_command({"ping": 1}))["ok"] == 1.0
        await mgconn.disconnect()
        assert conn.ready_state == 0
    run(main())


def test_a_listener_that_raises_goes_to_unraisablehook_and_dispatch_goes_on(mongodb_uri, run, monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda args: seen.append(args.exc_value))

    async def main():
        conn = mgconn.create_connection(mongodb_uri)
        conn.on("connected", lambda: 1 / 0)
        rec = Recorder(conn)
        await conn
        await asyncio.sleep(0)
        assert rec.names == ["connecting", "connected", "open"]
        await conn.close()
    run(main())
    assert len(seen) == 1 and isinstance(seen[0], ZeroDivisionError)


def test_bad_options_are_option_errors_naming_the_option():
    with pytest.raises(mgconn.OptionError, match="heartbeatFrequencyMS"):
        mgconn.create_connection("mongodb://127.0.0.1:1/x", heartbeatFrequencyMS=100)
    with pytest.raises(mgconn.OptionError, match='did you mean "bufferCommands"'):
        mgconn.create_connection("mongodb://127.0.0.1:1/x", bufferComands=False)
    with pytest.raises(mgconn.OptionError, match="family"):
        mgconn.create_connection("mongodb://127.0.0.1:1/x", family=5)
    with pytest.raises(mgconn.OptionError, match="Invalid connection string"):
        mgconn.create_connection("postgres://127.0.0.1/x")


def test_scripts_wait_without_an_event_loop(mongodb_uri):
    conn = mgconn.create_connection(mongodb_uri).wait_open(10)
    things = conn.collection("things")
    things.insert_one({"n": 1}).result(10)
    assert things.find_one({"n": 1}).result(10)["n"] == 1
    assert [d["n"] for d in things.find()] == [1]
    conn.close().result(10)


def test_result_inside_the_running_loop_is_refused_not_blocking(mongodb_uri, run):
    async def main():
        conn = await mgconn.create_connection(mongodb_uri)
        fut = conn.run_command({"ping": 1})
        with pytest.raises(RuntimeError, match="await"):
            fut.result()
        assert (await fut)["ok"] == 1.0
        await conn.close()
    run(main())


def test_a_second_running_loop_gets_a_clear_error(mongodb_uri, run):
    import threading

    conn = mgconn.create_connection(mongodb_uri)
    started, stop = threading.Event(), threading.Event()

    def other_loop():
        async def hold():
            await conn
            await conn.run_command({"ping": 1})  # this loop now dispatches the runtime
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.01)
        asyncio.run(hold())

    t = threading.Thread(target=other_loop)
    t.start()
    try:
        assert started.wait(10)

        async def main():
            with pytest.raises(RuntimeError, match="another running event loop"):
                await conn.run_command({"ping": 1})
        run(main())
    finally:
        stop.set()
        t.join()
    conn.close().result(10)


def test_debug_prints_one_line_per_operation(mongodb_uri, run):
    lines = []

    async def main():
        conn = await mgconn.create_connection(mongodb_uri)
        mgconn.set("debug", lines.append)
        try:
            await conn.collection("users").find_one({"name": "x"})
        finally:
            mgconn.set("debug", False)
        await conn.close()
    run(main())
    assert 'mgconn: users.find_one({"name": "x"}, {})' in lines


def test_module_connection_is_the_default_connection_not_a_submodule():
    # api.md: `mgconn.connection` is the default connection (Mongoose's mongoose.connection); a
    # submodule of the same name once shadowed it.
    assert isinstance(mgconn.connection, mgconn.Connection)
    assert mgconn.connection is mgconn.connection
