"""Shutdown paths: closing a connection that is still connecting, and waiting for the open of a
closed one, end at once instead of waiting for serverSelectionTimeoutMS or forever."""
from __future__ import annotations

import asyncio
import time

import pytest

import mgconn
from conftest import Recorder, closed_port


def test_close_while_connecting_ends_the_attempt_at_once(run):
    async def main():
        # Nothing listens: with the default serverSelectionTimeoutMS the attempt would last 30 s.
        conn = mgconn.create_connection(f"mongodb://127.0.0.1:{closed_port()}/x")
        rec = Recorder(conn)
        waiting = asyncio.ensure_future(conn.as_promise())
        await asyncio.sleep(0.2)
        assert conn.ready_state == 2 and not waiting.done()
        t0 = time.monotonic()
        await asyncio.wait_for(conn.close(), 5)
        took = time.monotonic() - t0
        assert took < 1.0, f"close() while connecting took {took:.1f} s"
        with pytest.raises(mgconn.ConnectionClosedError):
            await asyncio.wait_for(waiting, 1)
        assert rec.names == ["connecting", "disconnected", "close"]
        assert conn.ready_state == 0
    run(main())


def test_disconnect_while_connecting_ends_the_attempt_at_once(run):
    async def main():
        conn = mgconn.create_connection(f"mongodb://127.0.0.1:{closed_port()}/x")
        t0 = time.monotonic()
        await asyncio.wait_for(mgconn.disconnect(), 5)
        assert time.monotonic() - t0 < 1.0, f"disconnect() while connecting took {time.monotonic() - t0:.1f} s"
        assert conn.ready_state == 0
    run(main())


def test_awaiting_a_closed_connection_fails_at_once(mongodb_uri, run):
    async def main():
        conn = await mgconn.create_connection(mongodb_uri)
        await conn.close()
        t0 = time.monotonic()
        with pytest.raises(mgconn.ConnectionClosedError):
            await asyncio.wait_for(conn.as_promise(), 2)  # used to wait forever
        with pytest.raises(mgconn.ConnectionClosedError):
            await asyncio.wait_for(conn, 2)
        assert time.monotonic() - t0 < 0.5
    run(main())


def test_wait_open_on_a_closed_connection_raises_at_once(mongodb_uri):
    conn = mgconn.create_connection(mongodb_uri)
    assert conn.wait_open(10) is conn
    conn.close().result(10)
    t0 = time.monotonic()
    with pytest.raises(mgconn.ConnectionClosedError):
        conn.wait_open(2)  # used to wait until its timeout (forever without one)
    assert time.monotonic() - t0 < 0.5
    # Opened again, it can be waited for again.
    conn.open_uri(mongodb_uri)
    assert conn.wait_open(10) is conn
    conn.close().result(10)
