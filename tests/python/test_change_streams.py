"""Change streams on a scripted replica-set primary (mockupdb): the aggregate a watch sends, its
batches and resume token, the resume after a resumable error and after the connection drops (no
event lost or seen twice), a database's stream; and FerretDB's refusal, which has none.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Dict, List, Optional

import pytest

import mgconn
from test_transactions import Primary, uri  # the scripted one-member replica set


@pytest.fixture
def primary():
    p = Primary()
    yield p
    p.stop()


def event(n: int) -> Dict[str, Any]:
    return {"_id": {"_data": f"T{n}"}, "operationType": "insert", "fullDocument": {"_id": n},
            "ns": {"db": "shop", "coll": "orders"}, "documentKey": {"_id": n}}


class Script:
    """Answers aggregate and getMore from a list of steps, one per command: ("batch", [events]),
    ("error", reply) or ("hangup",). Records the aggregates it saw."""

    def __init__(self, steps: List[Any]) -> None:
        self.steps = list(steps)
        self.lock = threading.Lock()

    def __call__(self, name: str, doc: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        if name not in ("aggregate", "getMore"):
            return None
        with self.lock:
            step = self.steps.pop(0) if self.steps else ("batch", [])
        if step[0] == "error":
            return step[1]
        batch = "firstBatch" if name == "aggregate" else "nextBatch"
        events = step[1]
        token = events[-1]["_id"] if events else {"_data": "PB"}
        return {"ok": 1, "cursor": {"id": 42, "ns": "shop.orders", batch: events, "postBatchResumeToken": token}}


def test_watch_sends_the_change_stream_and_resumes_after_a_resumable_error(primary, run):
    primary.answer = Script([("batch", []), ("batch", [event(1), event(2)]),
                             ("error", {"ok": 0, "code": 43, "codeName": "CursorNotFound", "errmsg": "gone"}),
                             ("batch", [event(3)])])

    async def main():
        conn = await mgconn.create_connection(uri(primary))
        orders = conn.collection("orders")
        seen = []
        async with orders.watch([{"$match": {"operationType": "insert"}}], full_document="updateLookup",
                                max_await_time_ms=50) as stream:
            while len(seen) < 3:
                seen.append(await stream.next())
            assert stream.resume_token == {"_data": "T3"}
        assert [e["fullDocument"]["_id"] for e in seen] == [1, 2, 3]
        first, again = primary.named("aggregate")
        stages = first["pipeline"]
        assert stages[0] == {"$changeStream": {"fullDocument": "updateLookup"}}
        assert stages[1] == {"$match": {"operationType": "insert"}}
        assert again["pipeline"][0]["$changeStream"] == {"fullDocument": "updateLookup", "resumeAfter": {"_data": "T2"}}
        assert all(g["maxTimeMS"] == 50 and g["collection"] == "orders" for g in primary.named("getMore"))
        await conn.close(force=True)
    run(main())


def test_a_dropped_connection_is_resumed_after_the_reconnect(primary, run):
    # The second getMore's connection is hung up on: the batch waits for the reconnect, then the
    # stream opens again after the last token seen.
    script = Script([("batch", [event(1)]), ("batch", [event(2)]), ("batch", [event(3)])])
    hung = {"done": False}

    def answer(name: str, doc: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        if name == "getMore" and len(primary.named("getMore")) == 2 and not hung["done"]:
            hung["done"] = True
            return {"__hangup__": True}
        return script(name, doc)
    primary.answer = answer

    async def main():
        conn = await mgconn.create_connection(uri(primary), heartbeatFrequencyMS=500)
        stream = conn.collection("orders").watch()
        seen = [await stream.next(), await stream.next()]
        seen.append(await asyncio.wait_for(stream.next(), 20))  # the stream opened again answers event 3
        assert [e["fullDocument"]["_id"] for e in seen] == [1, 2, 3]
        aggregates = primary.named("aggregate")
        assert len(aggregates) == 2 and aggregates[1]["pipeline"][0]["$changeStream"]["resumeAfter"] == {"_data": "T2"}
        stream.close()
        await conn.close(force=True)
    run(main())


def test_a_database_stream_and_try_next(primary, run):
    primary.answer = Script([("batch", []), ("batch", [event(7)])])

    async def main():
        conn = await mgconn.create_connection(uri(primary))
        stream = conn.watch()
        assert await stream.try_next() is None  # the first batch brought nothing
        assert stream.resume_token == {"_data": "PB"}
        change = await stream.try_next()
        assert change is not None and change["documentKey"] == {"_id": 7}
        aggregate = primary.named("aggregate")[0]
        assert aggregate["aggregate"] == 1 and aggregate["pipeline"] == [{"$changeStream": {}}]
        assert primary.named("getMore")[0]["collection"] == "$cmd.aggregate"
        stream.close()
        await conn.close(force=True)
    run(main())


def test_the_resume_token_is_the_last_change_returned(primary, run):
    # A stream started again after resume_token goes on after the last change the caller saw,
    # not after the end of the batch that change came in.
    primary.answer = Script([("batch", [event(1), event(2)]), ("batch", [event(2)])])

    async def main():
        conn = await mgconn.create_connection(uri(primary))
        orders = conn.collection("orders")
        stream = orders.watch()
        assert (await stream.next())["documentKey"] == {"_id": 1}
        assert stream.resume_token == {"_data": "T1"}
        stream.close()
        again = orders.watch(resume_after=stream.resume_token)
        assert (await again.next())["documentKey"] == {"_id": 2}
        assert primary.named("aggregate")[1]["pipeline"][0]["$changeStream"]["resumeAfter"] == {"_data": "T1"}
        again.close()
        await conn.close(force=True)
    run(main())


def test_close_ends_a_waiting_read_and_gives_the_cursor_slot_back(primary, run):
    # maxOpenCursors 1: the second stream's open waits for the first one's slot. Closing it ends
    # that wait at once; closing the first gives its slot back at once.
    primary.answer = Script([])

    async def main():
        conn = await mgconn.create_connection(uri(primary), maxOpenCursors=1, bufferTimeoutMS=5000)
        first = conn.collection("orders").watch()
        assert await first.try_next() is None
        second = conn.collection("orders").watch()
        waiting = asyncio.ensure_future(second.next())
        await asyncio.sleep(0.2)
        assert not waiting.done() and conn.stats()["waiting"] == 1
        second.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(waiting, 2)
        assert conn.stats()["openCursors"] == 1 and conn.stats()["waiting"] == 0
        first.close()
        assert conn.stats()["openCursors"] == 0
        await conn.close(force=True)
    run(main())


def test_ferretdb_says_it_has_no_change_streams(mongodb_uri, run):
    async def main():
        conn = await mgconn.create_connection(mongodb_uri)
        for stream in (conn.collection("items").watch(), conn.watch()):
            with pytest.raises(mgconn.NotSupportedError, match="does not support change streams"):
                await stream.next()
            assert not stream.alive  # refused by the server: the stream is over
            with pytest.raises(StopAsyncIteration):
                await stream.next()
            assert await stream.try_next() is None
        assert await conn.collection("items").count_documents({}) == 0  # the connection goes on
        with pytest.raises(mgconn.OptionError, match="batchSize"):
            conn.collection("items").watch(batch_size="x")  # type: ignore[arg-type]
        with pytest.raises(mgconn.OptionError, match="resumeAfter"):
            conn.watch(resume_after="x")
        await conn.close()
    run(main())
