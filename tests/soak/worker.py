"""The Python half of the fault soak: inserts with unique _ids, finds and updates, 16 in flight,
for DURATION seconds while run.py kills and restarts the server. Prints one JSON line at the end.

    python worker.py URI DURATION PREFIX
"""
from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from typing import Any, Dict, List

import mgconn

URI, DURATION, PREFIX = sys.argv[1], float(sys.argv[2]), sys.argv[3]
IN_FLIGHT = 16


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4


async def main() -> None:
    conn = mgconn.create_connection(URI, heartbeatFrequencyMS=500, serverSelectionTimeoutMS=30000)
    await conn
    docs = conn.collection("soak")
    acked: List[str] = []
    ambiguous: List[str] = []  # failed with a network error: may or may not have been applied
    updates_acked: Dict[str, int] = {}
    updates_ambiguous: Dict[str, int] = {}
    counts = {"ops": 0, "ok": 0, "failed": 0}
    errors: Dict[str, int] = {}
    rss: Dict[str, int] = {}
    rng = random.Random(7)
    updating: set = set()  # one update at a time per document: FerretDB's $inc is read-modify-write
    started = time.monotonic()
    n = 0

    timeline: List[Any] = []

    def failed(e: BaseException) -> None:
        counts["failed"] += 1
        errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
        if len(timeline) < 100:
            timeline.append([round(time.monotonic() - started, 2), type(e).__name__, str(e)[:120]])

    async def one() -> None:
        nonlocal n
        kind = rng.random()
        counts["ops"] += 1
        try:
            if kind < 0.6 or not acked:
                n += 1
                _id = f"{PREFIX}-{n}"
                try:
                    await docs.insert_one({"_id": _id, "n": 0})
                    acked.append(_id)
                except mgconn.NetworkError:
                    ambiguous.append(_id)
                    raise
            elif kind < 0.8:
                _id = rng.choice(acked)
                doc = await docs.find_one({"_id": _id})
                assert doc is not None and doc["_id"] == _id, f"acknowledged {_id} not found"
            else:
                _id = rng.choice(acked)
                if _id in updating:
                    counts["ok"] += 1
                    return
                updating.add(_id)
                try:
                    await docs.update_one({"_id": _id}, {"$inc": {"n": 1}})
                    updates_acked[_id] = updates_acked.get(_id, 0) + 1
                except mgconn.NetworkError:
                    updates_ambiguous[_id] = updates_ambiguous.get(_id, 0) + 1
                    raise
                finally:
                    updating.discard(_id)
            counts["ok"] += 1
        except mgconn.MgconnError as e:
            failed(e)

    async def lane() -> None:
        while time.monotonic() - started < DURATION:
            await one()
            if "at_10s" not in rss and time.monotonic() - started > 10:
                rss["at_10s"] = rss_kib()

    await asyncio.gather(*(lane() for _ in range(IN_FLIGHT)))
    rss["end"] = rss_kib()
    await conn.close()
    print(json.dumps({"host": "python", "acked": acked, "ambiguous": ambiguous, "updates_acked": updates_acked,
                      "updates_ambiguous": updates_ambiguous, "counts": counts, "errors": errors, "rss_kib": rss,
                      "timeline": timeline}))


asyncio.run(main())
