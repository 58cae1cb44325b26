"""bulk_write, find-and-modify, distinct, index and namespace listings, awaited finds and cursor
options: PyMongo's names and results, buffered like every other operation."""
from __future__ import annotations

import pytest

import mgconn
from mgconn import (DeleteMany, DeleteOne, InsertOne, ObjectId, ReplaceOne, ReturnDocument, UpdateMany,
                    UpdateOne)


def test_bulk_write_issued_before_the_connection_is_open_runs_in_order(mongodb_uri, run):
    async def main():
        conn = mgconn.create_connection(mongodb_uri)  # not awaited: the bulk write waits in the buffer
        items = conn.collection("bulk")
        result = await items.bulk_write([
            InsertOne({"_id": 1, "n": 1}),
            InsertOne({"n": 2}),
            ReplaceOne({"_id": 9}, {"n": 9}, upsert=True),
            UpdateOne({"_id": 1}, {"$inc": {"n": 10}}),
            UpdateMany({}, {"$set": {"seen": True}}),
            DeleteOne({"n": 2}),
            DeleteMany({"nothing": True}),
        ])
        assert isinstance(result, mgconn.BulkWriteResult)
        assert (result.inserted_count, result.matched_count, result.modified_count, result.deleted_count,
                result.upserted_count) == (2, 4, 4, 1, 1)
        # keyed by the request's index (FerretDB 1.24 numbers an upsert by its place among the
        # command's upserts instead, which agrees here: the upsert comes first among the updates)
        assert result.upserted_ids == {2: 9}
        assert result.inserted_ids[0] == 1 and isinstance(result.inserted_ids[1], ObjectId)
        docs = await items.find({}, sort="_id").to_list()
        assert docs == [{"_id": 1, "n": 11, "seen": True}, {"_id": 9, "n": 9, "seen": True}]
        await conn.close()
    run(main())


def test_bulk_write_refuses_what_is_not_a_request_and_the_connection_goes_on(mongodb_uri, run):
    async def main():
        conn = await mgconn.create_connection(mongodb_uri)
        items = conn.collection("bulk_bad")
        with pytest.raises(TypeError, match="request 1 must be InsertOne"):
            items.bulk_write([InsertOne({"a": 1}), {"insertOne": {"document": {}}}])
        with pytest.raises(ValueError, match="bulk_write: the requests are empty"):
            items.bulk_write([])
        assert (await items.bulk_write([InsertOne({"a": 1})])).inserted_count == 1
        assert await items.count_documents() == 1
        await conn.close()
    run(main())


def test_find_one_and_update_replace_delete_return_the_document(mongodb_uri, run):
    async def main():
        conn = await mgconn.create_connection(mongodb_uri)
        c = conn.collection("fam")
        await c.insert_many([{"_id": i, "n": i, "tag": "x"} for i in range(3)])
        before = await c.find_one_and_update({"tag": "x"}, {"$inc": {"n": 100}}, sort=[("n", -1)])
        assert before == {"_id": 2, "n": 2, "tag": "x"}
        after = await c.find_one_and_update({"_id": 0}, {"$inc": {"n": 100}}, return_document=ReturnDocument.AFTER)
        assert after == {"_id": 0, "n": 100, "tag": "x"}
        assert await c.find_one_and_update({"_id": 7}, {"$set": {"n": 7}}) is None
        upserted = await c.find_one_and_update({"_id": 8}, {"$set": {"n": 8}}, upsert=True,
                                               return_document=ReturnDocument.AFTER)
        assert upserted == {"_id": 8, "n": 8}
        replaced = await c.find_one_and_replace({"_id": 1}, {"n": -1}, return_document=ReturnDocument.AFTER)
        assert replaced == {"_id": 1, "n": -1}
        deleted = await c.find_one_and_delete({"tag": "x"}, sort=[("n", 1)])
        assert deleted == {"_id": 0, "n": 100, "tag": "x"}
        assert await c.find_one_and_delete({"_id": 0}) is None
        assert sorted(d["_id"] for d in await c.find()) == [1, 2, 8]
        await conn.close()
    run(main())


def test_distinct_gives_the_values_of_matching_documents(mongodb_uri, run):
    async def main():
        conn = await mgconn.create_connection(mongodb_uri)
        c = conn.collection("dist")
        await c.insert_many([{"k": "a", "n": 1}, {"k": "b", "n": 1}, {"k": "a", "n": 2}, {"k": "c", "n": 2}])
        assert sorted(await c.distinct("k")) == ["a", "b", "c"]
        assert sorted(await c.distinct("k", {"n": 2})) == ["a", "c"]
        with pytest.raises(TypeError, match="key must be a str"):
            c.distinct(None)  # type: ignore[arg-type]
        await conn.close()
    run(main())


def test_list_and_drop_indexes(mongodb_uri, run):
    async def main():
        conn = await mgconn.create_connection(mongodb_uri)
        c = conn.collection("idx")
        assert await c.list_indexes() == []  # no collection yet
        await c.create_indexes([{"key": {"a": 1}}, {"key": {"b": -1}}, {"key": {"c": 1}}])
        names = sorted(ix["name"] for ix in await c.list_indexes())
        assert names == ["_id_", "a_1", "b_-1", "c_1"]
        await c.drop_index("a_1")
        await c.drop_index([("b", -1)])
        assert sorted(ix["name"] for ix in await c.list_indexes()) == ["_id_", "c_1"]
        with pytest.raises(mgconn.OperationError):
            await c.drop_index("a_1")
        await c.drop_indexes()
        assert [ix["name"] for ix in await c.list_indexes()] == ["_id_"]
        await conn.close()
    run(main())


def test_list_and_drop_collections_and_list_databases(mongodb_uri, run):
    async def main():
        conn = await mgconn.create_connection(mongodb_uri)
        await conn.collection("one").insert_one({})
        await conn.collection("two").insert_one({})
        assert sorted(c["name"] for c in await conn.list_collections()) == ["one", "two"]
        assert [c["name"] for c in await conn.list_collections({"name": "two"})] == ["two"]
        assert sorted(await conn.list_collection_names()) == ["one", "two"]
        await conn.drop_collection("one")
        await conn.drop_collection("never-there")
        assert await conn.list_collection_names() == ["two"]
        assert conn.name in [d["name"] for d in await conn.list_databases()]
        assert conn.name in await conn.list_database_names()
        await conn.close()
    run(main())


def test_awaiting_find_gives_the_list_and_cursor_options_reach_the_server(mongodb_uri, run):
    async def main():
        conn = await mgconn.create_connection(mongodb_uri)
        c = conn.collection("cur")
        await c.insert_many([{"n": i, "s": "B" if i % 2 else "a"} for i in range(30)])
        await c.create_indexes([{"key": {"n": 1}}])
        assert [d["n"] for d in await c.find({"n": {"$lt": 3}}, sort="n")] == [0, 1, 2]
        assert len([d async for d in c.find(batch_size=7)]) == 30  # async iteration still works
        opts = dict(batch_size=5, hint="n_1", max_time_ms=5000, comment="from the test")
        assert len(await c.find({}, **opts)) == 30
        assert len(await c.find({}, hint=[("n", 1)])) == 30
        assert len(await c.aggregate([{"$match": {}}], batch_size=4, comment="c", max_time_ms=5000)) == 30
        await conn.close()
    run(main())


def test_sync_indexes_creates_the_schemas_and_drops_the_others_but_id(mongodb_uri, run):
    async def main():
        conn = await mgconn.create_connection(mongodb_uri)
        schema = mgconn.Schema({"name": str}, autoIndex=False)
        schema.index({"name": 1})
        Player = conn.model("SyncPlayer", schema)
        await Player.create_indexes([{"key": {"old": 1}}])
        assert await Player.sync_indexes() == ["old_1"]
        assert sorted(ix["name"] for ix in await Player.list_indexes()) == ["_id_", "name_1"]
        assert await Player.sync_indexes() == []  # nothing more to do
        await conn.close()
    run(main())


def test_create_index_index_information_model_names_and_drop_database(mongodb_uri, run):
    async def main():
        conn = await mgconn.create_connection(mongodb_uri)
        c = conn.collection("info")
        assert await c.create_index([("a", 1), ("b", -1)]) == "a_1_b_-1"
        assert await c.create_index("u", unique=True) == "u_1"
        info = await c.index_information()
        assert info["a_1_b_-1"]["key"] == [("a", 1), ("b", -1)]
        assert info["u_1"]["unique"] is True and set(info) == {"_id_", "a_1_b_-1", "u_1"}
        await conn.drop_database()
        assert conn.name not in await conn.list_database_names()
        conn.model("First", mgconn.Schema({}))
        conn.model("Second", mgconn.Schema({}))
        assert conn.model_names() == ["First", "Second"]
        conn.delete_model("First")
        assert conn.model_names() == ["Second"]
        await conn.close()
    run(main())


def test_tz_aware_false_gives_naive_utc_datetimes_and_the_default_stays_aware(mongodb_uri, run):
    import datetime
    when = datetime.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=datetime.timezone.utc)

    async def main():
        aware = await mgconn.create_connection(mongodb_uri)
        naive = await mgconn.create_connection(mongodb_uri, tz_aware=False)
        await aware.collection("tz").insert_one({"_id": 1, "at": when})
        assert (await aware.collection("tz").find_one())["at"] == when
        got = await naive.collection("tz").find_one()
        assert got["at"] == when.replace(tzinfo=None) and got["at"].tzinfo is None
        assert [d["at"].tzinfo for d in await naive.collection("tz").find()] == [None]
        fam = await naive.collection("tz").find_one_and_update({"_id": 1}, {"$set": {"x": 1}})
        assert fam["at"].tzinfo is None
        assert (await naive.use_db(naive.name).collection("tz").find_one())["at"].tzinfo is None
        with pytest.raises(TypeError, match="tz_aware must be True or False"):
            mgconn.create_connection(mongodb_uri, tz_aware="no")
        await aware.close()
        await naive.close()
    run(main())


class Recording(mgconn.monitoring.CommandListener):
    def __init__(self) -> None:
        self.events = []

    def started(self, event):
        self.events.append(("started", event))

    def succeeded(self, event):
        self.events.append(("succeeded", event))

    def failed(self, event):
        self.events.append(("failed", event))


def test_command_listener_sees_started_succeeded_and_failed_with_ids_and_durations(mongodb_uri, run):
    async def main():
        listener = Recording()
        conn = await mgconn.create_connection(mongodb_uri, event_listeners=[listener])
        c = conn.collection("mon")
        await c.insert_one({"_id": 1})
        with pytest.raises(mgconn.DuplicateKeyError):
            await c.insert_one({"_id": 1})
        await conn.use_db(conn.name + "_child").collection("x").find_one()
        mine = [(k, e) for k, e in listener.events if e.command_name in ("insert", "find")]
        kinds = [(k, e.command_name) for k, e in mine]
        assert kinds[:2] == [("started", "insert"), ("succeeded", "insert")]
        started, succeeded = mine[0][1], mine[1][1]
        assert started.request_id == succeeded.request_id and started.database_name == conn.name
        assert started.command["documents"] == [{"_id": 1}] and started.connection_id[1] > 0
        assert succeeded.duration_micros >= 0 and succeeded.reply["n"] == 1
        # a duplicate key is a write error inside an ok reply: the command itself succeeded
        assert kinds[2:4] == [("started", "insert"), ("succeeded", "insert")]
        assert kinds[4:] == [("started", "find"), ("succeeded", "find")]
        assert mine[4][1].database_name == conn.name + "_child"  # a use_db child's command, on the pool
        with pytest.raises(ValueError, match="not to a use_db child"):
            conn.use_db("other").add_command_listener(Recording())
        before = len(listener.events)
        with pytest.raises(mgconn.OperationError):
            await conn.run_command({"noSuchCommand": 1})
        failed = [e for k, e in listener.events[before:] if k == "failed"]
        assert [e.command_name for e in failed] == ["noSuchCommand"] and failed[0].failure
        conn.remove_command_listener(listener)
        n = len(listener.events)
        await c.find_one()
        assert len(listener.events) == n
        await conn.close()
    run(main())


def test_command_listener_redacts_sensitive_commands(mongodb_uri, run):
    async def main():
        listener = Recording()
        conn = await mgconn.create_connection(mongodb_uri, event_listeners=[listener])
        with pytest.raises(mgconn.OperationError):
            await conn.run_command({"createUser": "u", "pwd": "hunter2", "roles": []})
        mine = [e for k, e in listener.events if e.command_name == "createUser"]
        assert mine and all(getattr(e, "command", {}) == {} for e in mine)
        assert "hunter2" not in repr([vars(e) if hasattr(e, "__dict__") else
                                      {s: getattr(e, s, None) for c in type(e).__mro__
                                       for s in getattr(c, "__slots__", ())} for e in mine])
        await conn.close()
    run(main())
