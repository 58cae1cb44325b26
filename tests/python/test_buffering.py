"""Operations issued while the connection is not there wait for it, each with its own deadline."""
from __future__ import annotations

import asyncio
import time

import pytest

import mgconn
from conftest import closed_port
from mgconn.ferretdb import FerretDB


def test_buffered_insert_before_the_server_starts(run):
    server = FerretDB()  # a port and a data directory, not started yet

    async def main():
        conn = mgconn.create_connection(server.uri + "buffering", heartbeatFrequencyMS=500)
        players = conn.collection("players")
        pending = asyncio.ensure_future(players.insert_one({"_id": 1, "name": "ada"}))
        await asyncio.sleep(1.0)
        assert not pending.done()
        server.start()  # one second later
        result = await asyncio.wait_for(pending, 10)
        assert result.inserted_id == 1
        assert (await players.find_one({"_id": 1}))["name"] == "ada"
        await conn.close()
    try:
        run(main())
    finally:
        server.stop()


def test_buffer_timeout_has_the_exact_message(run):
    async def main():
        conn = mgconn.create_connection(f"mongodb://127.0.0.1:{closed_port()}/x", bufferTimeoutMS=300)
        t0 = time.monotonic()
        with pytest.raises(mgconn.BufferTimeoutError) as info:
            await conn.collection("users").find_one({"name": "x"})
        assert str(info.value) == "Operation `users.find_one()` buffering timed out after 300ms"
        assert 0.28 < time.monotonic() - t0 < 1.0
        await conn.close(force=True)  # nothing to wait for: no server
    run(main())


def test_buffer_commands_false_fails_at_once(run):
    async def main():
        conn = mgconn.create_connection(f"mongodb://127.0.0.1:{closed_port()}/x", bufferCommands=False)
        with pytest.raises(mgconn.NotConnectedError) as info:
            await conn.collection("users").insert_one({"a": 1})
        assert str(info.value) == (
            "Cannot call `users.insert_one()` before initial connection is complete if `bufferCommands = false`. "
            "Make sure you `await mgconn.connect()` if you have `bufferCommands = false`.")
        await conn.close(force=True)
    run(main())


def test_failed_initial_connect_fails_buffered_operations_at_once(run):
    async def main():
        conn = mgconn.create_connection(f"mongodb://127.0.0.1:{closed_port()}/x", serverSelectionTimeoutMS=500)
        t0 = time.monotonic()
        with pytest.raises(mgconn.ServerSelectionError, match="initial connection failed"):
            await conn.collection("users").insert_one({"a": 1})
        assert time.monotonic() - t0 < 2.0
    run(main())


def test_global_setting_applies_and_schema_beats_it(run):
    async def main():
        mgconn.set("bufferTimeoutMS", 200)
        try:
            conn = mgconn.create_connection(f"mongodb://127.0.0.1:{closed_port()}/x")
            with pytest.raises(mgconn.BufferTimeoutError, match="after 200ms"):
                await conn.collection("a").insert_one({})
            Fast = conn.model("Fast", mgconn.Schema({}, bufferTimeoutMS=100, autoCreate=False))
            with pytest.raises(mgconn.BufferTimeoutError, match=r"`fasts.insert_one\(\)` buffering timed out after 100ms"):
                await Fast.insert_one({})
            assert mgconn.get("bufferTimeoutMS") == 200
            await conn.close(force=True)  # nothing to wait for: no server
        finally:
            mgconn.set("bufferTimeoutMS", None)
    run(main())


def test_cancelling_a_waiting_task_cancels_the_unsent_operation(run):
    async def main():
        conn = mgconn.create_connection(f"mongodb://127.0.0.1:{closed_port()}/x")
        fut = conn.collection("c").insert_one({"a": 1})
        task = asyncio.ensure_future(fut)
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.05)
        assert fut.done() and isinstance(fut.exception(), mgconn.CancelledError)
        assert conn.stats()["waiting"] == 0  # no orphan left in the queue
        await conn.close(force=True)  # nothing to wait for: no server
    run(main())
