"""A plain script, no asyncio: .result() waits (dispatching) and cursors iterate as they block.

    python script_sync.py mongodb://127.0.0.1:27017/app
"""
import sys

import mgconn

URI = sys.argv[1] if len(sys.argv) > 1 else "mongodb://127.0.0.1:27017/app"

conn = mgconn.create_connection(URI).wait_open(10)
scores = conn.collection("scores")
scores.insert_many([{"player": p, "score": s} for p, s in [("ada", 30), ("bob", 10), ("cy", 20)]]).result()
for doc in scores.find({}, {"_id": 0}, sort=[("score", -1)]):
    print(doc)
conn.close().result()
