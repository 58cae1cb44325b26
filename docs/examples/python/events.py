"""Connection events, as the Mongoose guide lists them, in the order they happen.

    python events.py mongodb://127.0.0.1:27017/app
"""
import asyncio
import sys

import mgconn

URI = sys.argv[1] if len(sys.argv) > 1 else "mongodb://127.0.0.1:27017/app"


async def main() -> None:
    conn = mgconn.create_connection(URI)
    for name in ("connecting", "connected", "open", "disconnected", "reconnected", "disconnecting", "close"):
        conn.on(name, lambda *args, name=name: print("event:", name))
    conn.on("error", lambda err: print("event: error", err))
    await conn
    await conn.close()


asyncio.run(main())
