"""What the server receives for the options users set: cursor options (batch_size, hint,
collation, max_time_ms, comment) and find-and-modify's projection, sort, upsert and
return_document, on a scripted server (FerretDB 1.24 ignores hints and refuses a projection on
findAndModify, so it cannot show them)."""
from __future__ import annotations

from typing import Iterator

import pytest
from mockupdb import MockupDB

import mgconn
from mgconn import ReturnDocument

HELLO = {"minWireVersion": 0, "maxWireVersion": 13, "maxBsonObjectSize": 16 * 1024 * 1024,
         "maxMessageSizeBytes": 48_000_000, "maxWriteBatchSize": 100_000, "isWritablePrimary": True,
         "ismaster": True}


def receive(server: MockupDB, name: str):
    """The next request whose command is `name` (anything else is answered {ok: 1})."""
    while True:
        req = server.receives(timeout=10)
        if next(iter(req.doc)) == name:
            return req
        req.ok()


@pytest.fixture
def server() -> Iterator[MockupDB]:
    s = MockupDB(auto_ismaster=HELLO)
    s.run()
    yield s
    s.stop()


def test_cursor_options_reach_the_server_as_pymongo_sends_them(server, run):
    async def main():
        conn = await mgconn.create_connection(f"mongodb://{server.address_string}/db")
        c = conn.collection("things")
        fut = c.find({"a": 1}, batch_size=5, hint=[("a", 1)], collation={"locale": "fr"}, max_time_ms=250,
                     comment="traced").to_list()
        req = receive(server, "find")
        cmd = req.doc
        assert (cmd["find"], cmd["filter"], cmd["batchSize"], cmd["hint"], cmd["collation"], cmd["maxTimeMS"],
                cmd["comment"]) == ("things", {"a": 1}, 5, {"a": 1}, {"locale": "fr"}, 250, "traced")
        req.reply({"cursor": {"id": 0, "ns": "db.things", "firstBatch": [{"_id": 1}]}})
        assert await fut == [{"_id": 1}]
        fut = c.aggregate([{"$match": {}}], hint="a_1", comment="agg", max_time_ms=99).to_list()
        req = receive(server, "aggregate")
        assert (req.doc["hint"], req.doc["comment"], req.doc["maxTimeMS"]) == ("a_1", "agg", 99)
        req.reply({"cursor": {"id": 0, "ns": "db.things", "firstBatch": []}})
        assert await fut == []
        await conn.close(force=True)
    run(main())


def test_find_one_and_update_sends_projection_sort_upsert_and_new(server, run):
    async def main():
        conn = await mgconn.create_connection(f"mongodb://{server.address_string}/db")
        c = conn.collection("things")
        fut = c.find_one_and_update({"a": 1}, {"$set": {"b": 2}}, {"b": 1}, sort=[("a", -1)], upsert=True,
                                    return_document=ReturnDocument.AFTER)
        req = receive(server, "findAndModify")
        cmd = req.doc
        assert (cmd["findAndModify"], cmd["query"], cmd["update"], cmd["fields"], cmd["sort"], cmd["upsert"],
                cmd["new"]) == ("things", {"a": 1}, {"$set": {"b": 2}}, {"b": 1}, {"a": -1}, True, True)
        req.reply({"value": {"_id": 3, "b": 2}, "lastErrorObject": {"n": 1}})
        assert await fut == {"_id": 3, "b": 2}
        fut = c.find_one_and_delete({"a": 1})
        req = receive(server, "findAndModify")
        assert req.doc["remove"] is True and "new" not in req.doc
        req.reply({"value": None})
        assert await fut is None
        await conn.close(force=True)
    run(main())
