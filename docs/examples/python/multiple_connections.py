"""Several connections, each with its own pool and its own models (Mongoose's createConnection).

    python multiple_connections.py mongodb://127.0.0.1:27017/app
"""
import asyncio
import sys

import mgconn

URI = sys.argv[1] if len(sys.argv) > 1 else "mongodb://127.0.0.1:27017/app"
BASE = URI.rsplit("/", 1)[0]


async def main() -> None:
    users_db = mgconn.create_connection(BASE + "/users_db")
    orders_db = mgconn.create_connection(BASE + "/orders_db", maxPoolSize=5)
    User = users_db.model("User", mgconn.Schema({"name": str}))
    Order = orders_db.model("Order", mgconn.Schema({"user": str, "total": float}))
    await User.insert_one({"name": "ada"})
    await Order.insert_one({"user": "ada", "total": 12.5})
    print("users:", await User.count_documents(), "orders:", await Order.count_documents())
    print("User is on", users_db.name, "and unknown to", orders_db.name, ":", "User" not in orders_db.models)
    await mgconn.disconnect()


asyncio.run(main())
