"""The Python half of the fault soak: inserts with unique _ids, finds, idempotent updates ($set) and
non-idempotent ones ($inc), 16 in flight, for DURATION seconds while run.py kills and restarts the
server. Prints one JSON line at the end, with counts and errors per kind of operation.

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
    # bufferTimeoutMS 30 s: the soak asks whether anything is lost, not whether a deadline holds (the
    # deadline has tests of its own). On a loaded 2-core machine a restarted FerretDB has taken up to
    # about 8 s to answer the work sent back to it, past the default 10 s counted from issue.
    conn = mgconn.create_connection(URI, heartbeatFrequencyMS=500, serverSelectionTimeoutMS=30000,
                                    bufferTimeoutMS=30000)
    await conn
    docs = conn.collection("soak")
    acked: List[str] = []
    ambiguous: List[str] = []  # failed as OutcomeUnknown (or NetworkError): may or may not have been applied
    updates_acked: Dict[str, int] = {}
    updates_ambiguous: Dict[str, int] = {}
    counts = {"ops": 0, "ok": 0, "failed": 0}
    errors: Dict[str, int] = {}
    by_kind: Dict[str, Dict[str, int]] = {k: {"ok": 0, "failed": 0} for k in ("insert", "find", "set", "inc")}
    errors_by_kind: Dict[str, Dict[str, int]] = {k: {} for k in by_kind}
    rss: Dict[str, int] = {}
    rng = random.Random(7)
    updating: set = set()  # one update at a time per document: FerretDB's $inc is read-modify-write
    started = time.monotonic()
    n = 0

    timeline: List[Any] = []

    def failed(e: BaseException, what: str) -> None:
        counts["failed"] += 1
        errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
        by_kind[what]["failed"] += 1
        errors_by_kind[what][type(e).__name__] = errors_by_kind[what].get(type(e).__name__, 0) + 1
        if len(timeline) < 100:
            timeline.append([round(time.monotonic() - started, 2), f"{type(e).__name__}({what})", str(e)[:400]])

    async def one() -> None:
        nonlocal n
        kind = rng.random()
        counts["ops"] += 1
        what = "insert" if kind < 0.55 or not acked else "find" if kind < 0.75 else "set" if kind < 0.87 else "inc"
        try:
            if what == "insert":
                n += 1
                _id = f"{PREFIX}-{n}"
                try:
                    await docs.insert_one({"_id": _id, "n": 0})
                    acked.append(_id)
                except (mgconn.OutcomeUnknownError, mgconn.NetworkError):
                    ambiguous.append(_id)
                    raise
            elif what == "find":
                _id = rng.choice(acked)
                doc = await docs.find_one({"_id": _id})
                assert doc is not None and doc["_id"] == _id, f"acknowledged {_id} not found"
            else:
                _id = rng.choice(acked)
                if _id in updating:
                    counts["ok"] += 1
                    by_kind[what]["ok"] += 1
                    return
                updating.add(_id)
                try:
                    if what == "set":
                        await docs.update_one({"_id": _id}, {"$set": {"saved": n}})
                    else:
                        try:
                            await docs.update_one({"_id": _id}, {"$inc": {"n": 1}})
                            updates_acked[_id] = updates_acked.get(_id, 0) + 1
                        except (mgconn.OutcomeUnknownError, mgconn.NetworkError):
                            updates_ambiguous[_id] = updates_ambiguous.get(_id, 0) + 1
                            raise
                finally:
                    updating.discard(_id)
            counts["ok"] += 1
            by_kind[what]["ok"] += 1
        except mgconn.MgconnError as e:
            failed(e, what)

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
                      "by_kind": by_kind, "errors_by_kind": errors_by_kind,
                      "timeline": timeline}))


asyncio.run(main())
