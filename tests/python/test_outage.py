"""Work in flight when the connection fails, as Python sees it: a scripted server (mockupdb) takes
a request and hangs up without replying, or refuses it as "not primary".

- an insert whose reply was lost is sent again; finding its _id stored means the first attempt
  landed: the insert succeeds once, says it was re-sent, and is not inserted twice;
- a $inc whose reply was lost is not sent again: OutcomeUnknownError, never a bare NetworkError;
- a $inc refused as "not primary" was not applied: it is sent again and succeeds;
- insert_many sends again only the documents whose _id is not stored;
- on a replica set, libmongoc's own retryable write is the one retry: mgconn adds none.
"""
from __future__ import annotations

import asyncio
import datetime
from typing import Any, Dict

import pytest
from bson import ObjectId
from mockupdb import MockupDB, OpMsg

import mgconn

HELLO: Dict[str, Any] = {"ismaster": True, "isWritablePrimary": True, "minWireVersion": 0, "maxWireVersion": 13,
                         "maxBsonObjectSize": 16 * 1024 * 1024, "maxMessageSizeBytes": 48_000_000,
                         "maxWriteBatchSize": 100_000}


def mock(hello: Dict[str, Any]) -> MockupDB:
    s = MockupDB(auto_ismaster=False)
    s._address = ("127.0.0.1", None)
    s.run()
    for name in ("hello", "ismaster", "isMaster"):
        s.autoresponds(name, lambda r: r.ok(**dict(hello, localTime=datetime.datetime.now(datetime.timezone.utc))))
    s.autoresponds("endSessions", lambda r: r.ok())
    return s


@pytest.fixture
def server():
    s = mock(HELLO)
    yield s
    s.stop()


async def connect(server: MockupDB, **opts: Any) -> mgconn.Connection:
    conn = mgconn.create_connection(f"mongodb://127.0.0.1:{server.port}/app", heartbeatFrequencyMS=500,
                                    serverSelectionTimeoutMS=5000, **opts)
    await conn
    return conn


async def receive(server: MockupDB, name: str, timeout: float = 10) -> Any:
    """The next request named `name`, waited for off the loop so that dispatch goes on."""
    return await asyncio.get_running_loop().run_in_executor(None, lambda: server.receives(OpMsg({name: "players"}), timeout=timeout))


def cursor_reply(docs: Any) -> Dict[str, Any]:
    return {"cursor": {"id": 0, "ns": "app.players", "firstBatch": docs}, "ok": 1}


def test_an_insert_whose_reply_was_lost_succeeds_once_and_says_it_was_resent(server, run):
    async def main():
        conn = await connect(server)
        players = conn.collection("players")
        fut = asyncio.ensure_future(players.insert_one({"_id": 7, "name": "ada"}))
        first = await receive(server, "insert")
        assert first["documents"][0]["_id"] == 7
        first.hangup()  # the insert may have landed: the reply is lost
        check = await receive(server, "find")  # sent again: is _id 7 stored?
        assert check["filter"] == {"_id": {"$in": [7]}}, check
        check.reply(cursor_reply([{"_id": 7}]))  # it is: the first attempt landed
        result = await asyncio.wait_for(fut, 10)
        assert result.inserted_id == 7 and result.resent == 1
        with pytest.raises(AssertionError):
            server.receives(OpMsg({"insert": "players"}), timeout=0.5)  # and it was not inserted a second time
        await conn.close()
    run(main())


def test_an_inc_whose_reply_was_lost_fails_as_outcome_unknown_and_is_not_resent(server, run):
    async def main():
        conn = await connect(server)
        players = conn.collection("players")
        fut = asyncio.ensure_future(players.update_one({"_id": 7}, {"$inc": {"gold": 5}}))
        (await receive(server, "update")).hangup()
        with pytest.raises(mgconn.OutcomeUnknownError) as info:
            await asyncio.wait_for(fut, 10)
        assert not isinstance(info.value, mgconn.NetworkError)
        message = str(info.value)
        assert "may or may not have been applied" in message and "not sent again" in message, message
        assert "`$inc` is not idempotent" in message, message
        assert info.value.category == "OutcomeUnknown"
        with pytest.raises(AssertionError):
            server.receives(OpMsg({"update": "players"}), timeout=0.5)
        await conn.close()
    run(main())


def test_an_inc_refused_as_not_primary_was_not_applied_and_is_sent_again(server, run):
    async def main():
        conn = await connect(server)
        players = conn.collection("players")
        fut = asyncio.ensure_future(players.update_one({"_id": 7}, {"$inc": {"gold": 5}}))
        (await receive(server, "update")).replies({"ok": 0, "code": 10107, "codeName": "NotWritablePrimary",
                                                   "errmsg": "not primary"})
        again = await receive(server, "update")
        again.replies({"ok": 1, "n": 1, "nModified": 1})
        result = await asyncio.wait_for(fut, 10)
        assert result.modified_count == 1 and result.resent == 1
        await conn.close()
    run(main())


def test_insert_many_sends_again_only_the_documents_not_stored(server, run):
    async def main():
        conn = await connect(server)
        players = conn.collection("players")
        fut = asyncio.ensure_future(players.insert_many([{"_id": 1}, {"_id": 2}, {"_id": 3}]))
        (await receive(server, "insert")).hangup()
        check = await receive(server, "find")
        check.reply(cursor_reply([{"_id": 1}, {"_id": 2}]))  # the first two landed
        again = await receive(server, "insert")
        assert [d["_id"] for d in again["documents"]] == [3], again
        again.replies({"ok": 1, "n": 1})
        result = await asyncio.wait_for(fut, 10)
        assert result.inserted_ids == [1, 2, 3] and result.resent == 1
        await conn.close()
    run(main())


def test_resend_interrupted_false_reports_the_insert_as_outcome_unknown(server, run):
    async def main():
        conn = await connect(server, resendInterrupted=False)
        fut = asyncio.ensure_future(conn.collection("players").insert_one({"_id": 7}))
        (await receive(server, "insert")).hangup()
        with pytest.raises(mgconn.OutcomeUnknownError) as info:
            await asyncio.wait_for(fut, 10)
        assert "resendInterrupted: false" in str(info.value)
        await conn.close()
    run(main())


def test_on_a_replica_set_libmongoc_retries_a_write_once_and_mgconn_adds_no_retry(run):
    hello: Dict[str, Any] = dict(HELLO, setName="rs0", setVersion=1, electionId=ObjectId("0" * 23 + "1"),
                                 secondary=False, logicalSessionTimeoutMinutes=30)
    s = mock(hello)
    address = f"127.0.0.1:{s.port}"
    hello.update(hosts=[address], me=address)

    async def main():
        conn = mgconn.create_connection(f"mongodb://{address}/app?replicaSet=rs0", heartbeatFrequencyMS=500,
                                        serverSelectionTimeoutMS=5000)
        await conn
        fut = asyncio.ensure_future(conn.collection("players").insert_one({"_id": 7}))
        first = await receive(s, "insert")
        assert "txnNumber" in first, first  # a retryable write: libmongoc will send it once more
        first.hangup()
        (await receive(s, "insert")).hangup()  # libmongoc's own retry, lost too
        with pytest.raises(mgconn.OutcomeUnknownError) as info:
            await asyncio.wait_for(fut, 15)
        assert "retryWrites" in str(info.value), info.value
        with pytest.raises(AssertionError):
            s.receives(OpMsg({"insert": "players"}), timeout=1.0)  # no third attempt
        await conn.close()
    try:
        run(main())
    finally:
        s.stop()


@pytest.mark.parametrize("filter_, update, why", [
    ({"name": "ada"}, {"$set": {"level": 2}}, "does not name one `_id`"),  # could hit another document
    ({"_id": 7}, {"$push": {"items": "sword"}}, "`$push` is not idempotent"),
])
def test_a_write_that_is_not_safe_to_send_again_fails_as_outcome_unknown(server, run, filter_, update, why):
    async def main():
        conn = await connect(server)
        fut = asyncio.ensure_future(conn.collection("players").update_one(filter_, update))
        (await receive(server, "update")).hangup()
        with pytest.raises(mgconn.OutcomeUnknownError) as info:
            await asyncio.wait_for(fut, 10)
        assert why in str(info.value), info.value
        with pytest.raises(AssertionError):
            server.receives(OpMsg({"update": "players"}), timeout=0.5)
        await conn.close()
    run(main())


def test_a_set_by_id_whose_reply_was_lost_is_sent_again(server, run):
    async def main():
        conn = await connect(server)
        fut = asyncio.ensure_future(conn.collection("players").update_one({"_id": 7}, {"$set": {"level": 2}}))
        (await receive(server, "update")).hangup()
        (await receive(server, "update")).replies({"ok": 1, "n": 1, "nModified": 1})
        result = await asyncio.wait_for(fut, 10)
        assert result.modified_count == 1 and result.resent == 1
        await conn.close()
    run(main())
