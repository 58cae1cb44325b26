"""Cursor.close(): the server forgets the cursor, so cursors read partly and closed never starve the
connection (FerretDB's SQLite backend keeps one of its 100 database connections per open cursor)."""
from __future__ import annotations

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
