"""Schemas, models, the registry, use_db and the capped autoCreate, from Python."""
from __future__ import annotations

import asyncio

import pytest

import mgconn


def test_registry_errors_have_mongooses_messages(mongodb_uri):
    conn = mgconn.create_connection()  # not opened: registries work before connect
    with pytest.raises(mgconn.MissingSchemaError) as info:
        conn.model("User")
    assert str(info.value) == 'Schema hasn\'t been registered for model "User".'
    schema = mgconn.Schema({"name": str})
    User = conn.model("User", schema)
    assert conn.model("User", schema) is User and conn.model("User") is User
    assert User.collection_name == "users" and User.model_name == "User"
    with pytest.raises(mgconn.OverwriteModelError) as info:
        conn.model("User", mgconn.Schema({"name": str}))
    assert str(info.value) == "Cannot overwrite `User` model once compiled."
    assert list(conn.models) == ["User"]
    conn.delete_model("User")
    assert "User" not in conn.models
    with pytest.raises(mgconn.MissingSchemaError):
        conn.model("User")


def test_overwrite_models_replaces_the_entry():
    conn = mgconn.create_connection()
    first = conn.model("Thing", mgconn.Schema({}))
    mgconn.set("overwriteModels", True)
    try:
        second = conn.model("Thing", mgconn.Schema({"x": int}))
    finally:
        mgconn.set("overwriteModels", None)
    assert second is not first and conn.model("Thing") is second


def test_pluralisation_of_collection_names():
    for name, plural in [("User", "users"), ("Person", "people"), ("Mouse", "mice"), ("Category", "categories"),
                         ("Goose", "geese"), ("Datum", "data"), ("Quiz", "quizzes"), ("Bus", "buses"),
                         ("Sheep1", "sheep1")]:
        assert mgconn.pluralize(name) == plural


def test_capped_schema_exists_as_capped_before_the_first_insert(mongodb_uri, run):
    async def main():
        conn = mgconn.create_connection(mongodb_uri)
        Log = conn.model("Log", mgconn.Schema({"line": str}, capped={"size": 4096, "max": 10}))
        Log.schema.index({"line": 1})
        results = await asyncio.gather(*[Log.insert_one({"line": f"l{i}"}) for i in range(5)])
        assert len(results) == 5
        await Log.init()
        info = await conn.run_command({"listCollections": 1, "filter": {"name": "logs"}})
        assert info["cursor"]["firstBatch"][0]["options"]["capped"] is True
        await conn.close()
    run(main())


def test_index_event_reports_init(mongodb_uri, run):
    async def main():
        conn = mgconn.create_connection(mongodb_uri)
        events = []
        schema = mgconn.Schema({"email": str})
        schema.index({"email": 1}, unique=True)
        Account = conn.model("Account", schema)
        Account.on("index", events.append)
        await Account.init()
        await asyncio.sleep(0)
        assert events == [None]
        await Account.insert_one({"email": "a@b"})
        with pytest.raises(mgconn.DuplicateKeyError) as info:
            await Account.insert_one({"email": "a@b"})
        assert info.value.code == 11000 and info.value.code_name == "DuplicateKey"
        await conn.close()
    run(main())


def test_use_db_cache_and_separate_registries(mongodb_uri, run):
    async def main():
        conn = mgconn.create_connection(mongodb_uri)
        t1 = conn.use_db("tenant_1", use_cache=True)
        assert conn.use_db("tenant_1", use_cache=True) is t1
        assert conn.use_db("tenant_1") is not t1
        t2 = conn.use_db("tenant_2", use_cache=True)
        schema = mgconn.Schema({"name": str})
        P1 = t1.model("Player", schema)
        with pytest.raises(mgconn.MissingSchemaError):
            t2.model("Player")
        P2 = t2.model("Player", schema)
        await P1.insert_one({"name": "one"})
        assert await P1.count_documents({}) == 1
        assert await P2.count_documents({}) == 0
        assert t1.name == "tenant_1" and t1.ready_state == 1
        await conn.close()
        assert t1.ready_state == 0
    run(main())
