"""Sessions and transactions as a replica set answers them, on a scripted primary (mockupdb):
the command shapes a transaction sends (lsid, txnNumber, startTransaction, autocommit, then
commitTransaction), with_transaction's retries on TransientTransactionError and
UnknownTransactionCommitResult, and the abort when the callback raises. FerretDB has no
transactions; what a user then sees is tested against it at the end.
"""
from __future__ import annotations

import datetime
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
from mockupdb import MockupDB

import mgconn


class Primary:
    """A one-member replica set. Every command but hello is recorded and answered by `answer`
    (the command's name and document -> the reply's fields, {ok: 1} by default; {"__hangup__": True}
    closes the connection instead)."""

    def __init__(self) -> None:
        self.server = MockupDB(auto_ismaster=False)
        self.server._address = ("127.0.0.1", None)
        self.port = self.server.run()
        self.address = f"127.0.0.1:{self.port}"
        self.commands: List[Dict[str, Any]] = []
        self.lock = threading.Lock()
        self.answer: Callable[[str, Dict[str, Any]], Optional[Dict[str, Any]]] = lambda name, doc: None
        hello = {"minWireVersion": 0, "maxWireVersion": 13, "maxBsonObjectSize": 16 * 1024 * 1024,
                 "maxMessageSizeBytes": 48_000_000, "maxWriteBatchSize": 100_000,
                 "logicalSessionTimeoutMinutes": 30, "setName": "rs0", "hosts": [self.address], "me": self.address,
                 "setVersion": 1, "ismaster": True, "isWritablePrimary": True, "secondary": False,
                 "localTime": datetime.datetime.now(datetime.timezone.utc)}
        self.server.autoresponds(self._respond)  # first: a responder added later is asked first
        for name in ("hello", "ismaster", "isMaster"):
            self.server.autoresponds(name, lambda r: r.ok(**hello))

    def _respond(self, request: Any) -> bool:
        name = next(iter(request.doc))
        with self.lock:
            self.commands.append(dict(request.doc))
        reply = self.answer(name, dict(request.doc))
        if reply is not None and reply.get("__hangup__"):  # the connection dropped before the reply
            return request.hangup()
        if reply is None:
            reply = {"ok": 1, "n": 1} if name in ("insert", "update", "delete") else {"ok": 1}
        return request.reply(reply)

    def named(self, *names: str) -> List[Dict[str, Any]]:
        with self.lock:
            return [c for c in self.commands if next(iter(c)) in names]

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def primary() -> Iterator[Primary]:
    p = Primary()
    yield p
    p.stop()


def uri(p: Primary) -> str:
    return f"mongodb://{p.address}/shop?replicaSet=rs0"


def test_a_transaction_sends_what_a_replica_set_expects_and_commits(primary, run):
    async def main():
        conn = await mgconn.create_connection(uri(primary))
        orders, stock = conn.collection("orders"), conn.collection("stock")
        with conn.start_session() as s:
            async with s.start_transaction(write_concern="majority"):
                assert s.in_transaction
                await orders.insert_one({"_id": 1, "item": "tea"}, session=s)
                await stock.update_one({"item": "tea"}, {"$inc": {"n": -1}}, session=s)
            assert not s.in_transaction
            await orders.find_one({"_id": 1}, session=s)  # after the transaction: in the session only
        insert, update = primary.named("insert")[0], primary.named("update")[0]
        commit = primary.named("commitTransaction")[0]
        find = primary.named("find")[0]
        lsid = insert["lsid"]
        assert update["lsid"] == commit["lsid"] == find["lsid"] == lsid
        assert insert["txnNumber"] == update["txnNumber"] == commit["txnNumber"]
        assert insert["startTransaction"] is True and "startTransaction" not in update
        assert insert["autocommit"] is False and update["autocommit"] is False
        assert commit["writeConcern"]["w"] == "majority"
        assert "txnNumber" not in find and "autocommit" not in find
        await conn.close(force=True)
    run(main())


def test_with_transaction_runs_again_after_a_transient_error(primary, run):
    failures = {"insert": 1}

    def answer(name: str, doc: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        if name == "insert" and failures["insert"]:
            failures["insert"] -= 1
            return {"ok": 0, "code": 112, "codeName": "WriteConflict", "errmsg": "write conflict",
                    "errorLabels": ["TransientTransactionError"]}
        return None
    primary.answer = answer

    async def main():
        conn = await mgconn.create_connection(uri(primary))
        orders = conn.collection("orders")
        calls: List[int] = []

        async def place(session: mgconn.ClientSession) -> str:
            calls.append(1)
            await orders.insert_one({"item": "tea"}, session=session)
            return "placed"

        assert await conn.transaction(place) == "placed"
        assert len(calls) == 2
        inserts = primary.named("insert")
        assert [i["txnNumber"] for i in inserts] == [1, 2] and all(i["startTransaction"] for i in inserts)
        assert len(primary.named("abortTransaction")) == 1 and len(primary.named("commitTransaction")) == 1
        await conn.close(force=True)
    run(main())


def test_with_transaction_commits_again_after_an_unknown_commit_result(primary, run):
    failures = {"commit": 2}

    def answer(name: str, doc: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        if name == "commitTransaction" and failures["commit"]:
            failures["commit"] -= 1
            return {"ok": 0, "code": 79, "codeName": "UnknownReplWriteConcern", "errmsg": "no such write concern",
                    "errorLabels": ["UnknownTransactionCommitResult"]}
        return None
    primary.answer = answer

    async def main():
        conn = await mgconn.create_connection(uri(primary))
        orders = conn.collection("orders")
        with conn.start_session() as s:
            result = await s.with_transaction(lambda s: orders.insert_one({"item": "tea"}, session=s))
        assert isinstance(result, mgconn.InsertOneResult)
        commits = primary.named("commitTransaction")
        assert len(commits) == 3 and len({c["txnNumber"] for c in commits}) == 1
        assert len(primary.named("insert")) == 1
        await conn.close(force=True)
    run(main())


def test_an_error_in_the_callback_aborts_and_is_raised(primary, run):
    async def main():
        conn = await mgconn.create_connection(uri(primary))
        orders = conn.collection("orders")

        async def broken(session: mgconn.ClientSession) -> None:
            await orders.insert_one({"item": "tea"}, session=session)
            raise LookupError("out of tea")

        with pytest.raises(LookupError, match="out of tea"):
            await conn.transaction(broken)
        assert len(primary.named("abortTransaction")) == 1 and not primary.named("commitTransaction")
        await conn.close(force=True)
    run(main())


def test_misuse_is_refused_at_the_call(primary, run):
    async def main():
        conn = await mgconn.create_connection(uri(primary))
        orders = conn.collection("orders")
        s = conn.start_session()
        s.start_transaction()
        with pytest.raises(ValueError, match="already in progress"):
            s.start_transaction()
        await s.abort_transaction()
        with pytest.raises(ValueError, match="No transaction started"):
            s.abort_transaction()
        with pytest.raises(mgconn.OptionError, match="maxCommitTimeMS"):
            s.start_transaction(max_commit_time_ms="soon")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="ClientSession"):
            orders.insert_one({}, session=42)  # type: ignore[arg-type]
        other = await mgconn.create_connection(uri(primary))
        with pytest.raises(ValueError, match="another connection's"):
            other.collection("orders").insert_one({}, session=s)
        s.end_session()
        with pytest.raises(ValueError, match="ended"):
            orders.insert_one({}, session=s)
        await other.close(force=True)
        await conn.close(force=True)
    run(main())


def test_sessions_holding_every_client_make_other_operations_time_out_saying_why(mongodb_uri, run):
    async def main():
        conn = await mgconn.create_connection(mongodb_uri, maxPoolSize=1, bufferTimeoutMS=500)
        items = conn.collection("items")
        with conn.start_session() as s:
            await items.insert_one({"held": True}, session=s)  # the session now holds the one client
            with pytest.raises(mgconn.BufferTimeoutError, match="sessions hold 1 of its maxPoolSize"):
                await items.count_documents({})
        assert await items.count_documents({"held": True}) == 1  # the session ended: its client is back
        await conn.close()
    run(main())


def test_ferretdb_says_it_has_no_transactions(mongodb_uri, run):
    async def main():
        conn = await mgconn.create_connection(mongodb_uri)
        items = conn.collection("items")
        await items.delete_many({})
        with pytest.raises(mgconn.NotSupportedError, match="does not support transactions") as caught:
            await conn.transaction(lambda s: items.insert_one({"_id": 1}, session=s))
        assert "replica set" in str(caught.value)
        assert await items.count_documents({}) == 0
        with pytest.raises(mgconn.NotSupportedError):  # a readConcern goes with the first operation
            await conn.transaction(lambda s: items.insert_one({"_id": 1}, session=s), read_concern="snapshot")
        with conn.start_session() as s:
            with pytest.raises(mgconn.OptionError, match="readConcern"):
                s.start_transaction(read_concern=5)
            with pytest.raises(mgconn.OptionError, match="writeConcern"):
                s.start_transaction(write_concern=[1])
        assert await items.count_documents({}) == 0
        with conn.start_session() as s:  # a session without a transaction works there
            await items.insert_one({"_id": 2}, session=s)
            assert await items.find_one({"_id": 2}, session=s) == {"_id": 2}
            assert await items.find({}, session=s).to_list() == [{"_id": 2}]
        await conn.close()
    run(main())
