"""The re-send rule of each operation added beside CRUD (docs/guide.md, "What survives an
outage"), on a scripted server that hangs up instead of replying."""
from __future__ import annotations

import asyncio

import pytest
from mockupdb import OpMsg

import mgconn
from mgconn import InsertOne, ReturnDocument, UpdateOne
from test_outage import HELLO, connect, mock, receive  # the scripted server of the outage tests


@pytest.fixture
def server():
    s = mock(HELLO)
    yield s
    s.stop()


def test_a_bulk_write_whose_reply_was_lost_fails_as_outcome_unknown(server, run):
    async def main():
        conn = await connect(server)
        fut = asyncio.ensure_future(conn.collection("players").bulk_write(
            [InsertOne({"_id": 1}), UpdateOne({"_id": 1}, {"$set": {"a": 1}})]))
        (await receive(server, "insert")).hangup()
        with pytest.raises(mgconn.OutcomeUnknownError):
            await asyncio.wait_for(fut, 10)
        with pytest.raises(AssertionError):
            server.receives(OpMsg({"insert": "players"}), timeout=0.5)
        await conn.close()
    run(main())


@pytest.mark.parametrize("call, why", [
    (lambda c: c.find_one_and_delete({"_id": 7}), "find the document gone"),
    (lambda c: c.find_one_and_update({"_id": 7}, {"$set": {"a": 1}}), "before the change"),
    (lambda c: c.find_one_and_update({"_id": 7}, {"$inc": {"a": 1}}, return_document=ReturnDocument.AFTER),
     "`$inc` is not idempotent"),
    (lambda c: c.find_one_and_update({"name": "ada"}, {"$set": {"a": 1}}, return_document=ReturnDocument.AFTER),
     "does not name one `_id`"),
])
def test_a_find_and_modify_not_safe_to_send_again_fails_as_outcome_unknown(server, run, call, why):
    async def main():
        conn = await connect(server)
        fut = asyncio.ensure_future(call(conn.collection("players")))
        (await receive(server, "findAndModify")).hangup()
        with pytest.raises(mgconn.OutcomeUnknownError) as info:
            await asyncio.wait_for(fut, 10)
        assert why in str(info.value), info.value
        await conn.close()
    run(main())


@pytest.mark.parametrize("call", [
    lambda c: c.find_one_and_update({"_id": 7}, {"$set": {"a": 1}}, return_document=ReturnDocument.AFTER),
    lambda c: c.find_one_and_replace({"_id": 7}, {"a": 1}, return_document=ReturnDocument.AFTER),
])
def test_a_change_by_id_returning_the_document_after_is_sent_again(server, run, call):
    async def main():
        conn = await connect(server)
        fut = asyncio.ensure_future(call(conn.collection("players")))
        (await receive(server, "findAndModify")).hangup()
        (await receive(server, "findAndModify")).replies({"ok": 1, "value": {"_id": 7, "a": 1}})
        assert await asyncio.wait_for(fut, 10) == {"_id": 7, "a": 1}
        await conn.close()
    run(main())


def test_distinct_and_list_indexes_are_sent_again(server, run):
    async def main():
        conn = await connect(server)
        players = conn.collection("players")
        fut = asyncio.ensure_future(players.distinct("level"))
        (await receive(server, "distinct")).hangup()
        (await receive(server, "distinct")).replies({"ok": 1, "values": [1, 2]})
        assert await asyncio.wait_for(fut, 10) == [1, 2]
        fut = asyncio.ensure_future(players.list_indexes())
        (await receive(server, "listIndexes")).hangup()
        (await receive(server, "listIndexes")).replies(
            {"ok": 1, "cursor": {"id": 0, "ns": "app.players", "firstBatch": [{"v": 2, "key": {"_id": 1}, "name": "_id_"}]}})
        assert [ix["name"] for ix in await asyncio.wait_for(fut, 10)] == ["_id_"]
        await conn.close()
    run(main())
