"""Error handling from the Mongoose guide: the initial connection is not retried automatically,
so the application retries, here three times against a port where nothing listens, then the real one.

    python retry.py mongodb://127.0.0.1:27017/app
"""
import asyncio
import socket
import sys

import mgconn

URI = sys.argv[1] if len(sys.argv) > 1 else "mongodb://127.0.0.1:27017/app"


def nothing_listens() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"mongodb://127.0.0.1:{s.getsockname()[1]}/app"


async def connect_with_retry(uris: list) -> mgconn.Connection:
    for attempt, uri in enumerate(uris, 1):
        conn = mgconn.create_connection(uri, serverSelectionTimeoutMS=300)
        try:
            return await conn
        except mgconn.ServerSelectionError as err:
            servers = ", ".join(f"{host} ({s['type']})" for host, s in err.reason["servers"].items())
            print(f"attempt {attempt} failed: {servers}")
            await conn.close(force=True)
            await asyncio.sleep(0.1)
    raise SystemExit("gave up")


async def main() -> None:
    conn = await connect_with_retry([nothing_listens(), nothing_listens(), URI])
    print("connected:", conn.ready_state == 1)
    await conn.close()


asyncio.run(main())
