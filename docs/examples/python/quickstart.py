"""The api.md example: connect, a model used at once (buffered until open), use_db, a cursor.

    python quickstart.py mongodb://127.0.0.1:27017/myapp
"""
import asyncio
import sys

import mgconn
from mgconn import Schema

URI = sys.argv[1] if len(sys.argv) > 1 else "mongodb://127.0.0.1:27017/myapp"


def on_disconnected(err: object) -> None:
    if err is not None:  # None: the program closed it
        print("lost:", err)


async def main() -> None:
    conn = mgconn.connect(URI, serverSelectionTimeoutMS=5000)
    conn.on("disconnected", on_disconnected)
    User = mgconn.model("User", Schema({"name": str}, bufferCommands=True))
    await User.insert_one({"name": "ada"})  # buffered until the connection is open
    print(await User.find_one({"name": "ada"}, {"_id": 0}))
    tenant = conn.use_db("tenant_1", use_cache=True)
    Tenant = tenant.model("User", User.schema)
    await Tenant.insert_one({"name": "grace"})
    async for doc in Tenant.find({}, {"_id": 0}, sort=[("name", 1)], limit=10):
        print(doc)
    await mgconn.disconnect()


asyncio.run(main())
