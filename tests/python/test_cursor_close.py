"""Cursor.close(): the server forgets the cursor, so cursors read partly and closed never starve the
connection (FerretDB's SQLite backend keeps one of its 100 database connections per open cursor)."""
from __future__ import annotations

import asyncio

import pytest

import mgconn


def test_closed_cursors_release_the_server_and_iterate_nothing(mongodb_uri, run):
    async def main():
        conn = await mgconn.create_connection(mongodb_uri)
        items = conn.collection("pages")
        await items.insert_many([{"n": i} for i in range(20)])
        for _ in range(150):
            cursor = items.find(batch_size=2)
            async for _doc in cursor:
                break  # one document read: the server cursor is still open
            cursor.close()
            assert [d async for d in cursor] == []
        assert await items.count_documents() == 20
        await conn.close()
    run(main())


def test_cursors_held_past_max_open_cursors_wait_their_turn_and_nothing_else_waits(mongodb_uri, run):
    """A view per player, each a cursor read partly and held: past maxOpenCursors (here 8) a further
    find waits for a cursor to be closed, and reads and writes on the connection go on meanwhile."""
    async def first(cursor):
        async for doc in cursor:
            return doc["n"]

    async def main():
        conn = await mgconn.create_connection(mongodb_uri, maxOpenCursors=8, bufferTimeoutMS=3000)
        items = conn.collection("views")
        await items.insert_many([{"n": i} for i in range(20)])
        held = [items.find(batch_size=2, sort={"n": 1}) for _ in range(10)]
        reads = [asyncio.ensure_future(first(c)) for c in held]
        await asyncio.wait(reads[:8], timeout=10)
        assert all(r.done() for r in reads[:8])
        assert not reads[8].done() and not reads[9].done()
        assert await items.count_documents() == 20  # not behind the waiting finds
        await items.insert_one({"n": 100})
        assert conn.stats()["openCursors"] == 8
        held[0].close()
        assert await asyncio.wait_for(reads[8], 10) == 0
        with pytest.raises(mgconn.BufferTimeoutError, match=r"maxOpenCursors \(8\)"):
            await asyncio.wait_for(reads[9], 10)
        for c in held:
            c.close()
        await conn.close()
    run(main())


def test_open_cursors_are_counted_with_no_limit_too(mongodb_uri, run):
    async def main():
        conn = await mgconn.create_connection(mongodb_uri, maxOpenCursors=0)
        items = conn.collection("counted")
        await items.insert_many([{"n": i} for i in range(6)])
        held = [items.find(batch_size=2) for _ in range(5)]
        for cursor in held:
            async for _doc in cursor:
                break
        assert (conn.stats()["openCursors"], conn.stats()["maxOpenCursors"]) == (5, 0)
        for cursor in held:
            cursor.close()
        assert conn.stats()["openCursors"] == 0
        await conn.close()
    run(main())
