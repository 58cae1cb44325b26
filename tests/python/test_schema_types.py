"""A schema's declared field types are checked on a model's writes, as Mongoose validates a path:
a value of another type fails that operation with mgconn.ValidationError naming the path, the
declared type and the value's type, nothing is sent, and the connection goes on."""
from __future__ import annotations

import asyncio
import datetime

import pytest

import mgconn


@pytest.fixture
def people(mongodb_uri):
    conn = mgconn.create_connection(mongodb_uri).wait_open(10)
    Person = conn.model("Person", mgconn.Schema({"name": str, "age": int, "height": float, "born": datetime.datetime,
                                                 "tags": [str], "address": {"city": str},
                                                 "nick": {"type": str}, "extra": dict}))
    yield Person
    conn.close().result(10)


def test_an_insert_with_a_number_for_a_string_is_refused_naming_the_path_and_both_types(people):
    fut = people.insert_one({"name": 5})
    with pytest.raises(mgconn.ValidationError) as info:
        fut.result(10)
    assert str(info.value) == ("Cannot run `people.insert_one()`: Person validation failed: path `name` is declared "
                               "str and got int32 (a schema's types are checked, never cast); nothing was sent")
    assert info.value.category == "Validation" and isinstance(info.value, mgconn.MgconnError)
    assert people.count_documents().result(10) == 0
    # the connection goes on, and right values pass: an int where a float is declared, None anywhere
    people.insert_one({"name": "ada", "age": 36, "height": 170, "born": datetime.datetime(1815, 12, 10),
                       "tags": ["math"], "address": {"city": "London"}, "nick": None, "other": 5}).result(10)
    assert people.count_documents().result(10) == 1


def test_awaiting_a_refused_write_raises_it(mongodb_uri):
    async def main() -> None:
        conn = await mgconn.create_connection(mongodb_uri)
        Person = conn.model("Person", mgconn.Schema({"name": str, "age": int}))
        with pytest.raises(mgconn.ValidationError, match=r"path `age` is declared int and got double"):
            await Person.insert_one({"name": "ada", "age": 36.5})
        with pytest.raises(mgconn.ValidationError, match=r"path `age` is declared int and got boolean"):
            await Person.insert_one({"name": "ada", "age": True})
        assert await Person.count_documents() == 0
        await conn.close()
    asyncio.run(main())


def test_insert_many_names_the_document_nested_paths_and_array_elements(people):
    with pytest.raises(mgconn.ValidationError, match=r"document 1: path `tags\.1` is declared str and got int32"):
        people.insert_many([{"name": "a"}, {"name": "b", "tags": ["x", 7]}]).result(10)
    with pytest.raises(mgconn.ValidationError, match=r"path `address\.city` is declared str and got boolean"):
        people.insert_one({"address": {"city": True}}).result(10)
    with pytest.raises(mgconn.ValidationError, match=r"path `address` is declared a subdocument and got string"):
        people.insert_one({"address": "London"}).result(10)
    with pytest.raises(mgconn.ValidationError, match=r"path `nick` is declared str and got int32"):
        people.insert_one({"nick": 1}).result(10)
    with pytest.raises(mgconn.ValidationError, match=r"path `extra` is declared dict and got array"):
        people.insert_one({"extra": [1]}).result(10)
    assert people.count_documents().result(10) == 0


def test_updates_check_set_values_of_declared_paths_and_replacements_check_the_document(people):
    people.insert_one({"_id": 1, "name": "ada"}).result(10)
    with pytest.raises(mgconn.ValidationError) as info:
        people.update_one({"_id": 1}, {"$set": {"name": 42}}).result(10)
    assert "`people.update_one()`" in str(info.value) and "path `name` is declared str and got int32" in str(info.value)
    with pytest.raises(mgconn.ValidationError, match=r"path `address\.city` is declared str and got int32"):
        people.update_many({}, {"$set": {"address.city": 1}}).result(10)
    with pytest.raises(mgconn.ValidationError, match=r"path `tags\.\$` is declared str and got int32"):
        people.update_one({"_id": 1}, {"$set": {"tags.$": 1}}).result(10)
    with pytest.raises(mgconn.ValidationError, match=r"path `age` is declared int and got string"):
        people.update_one({"_id": 2}, {"$setOnInsert": {"age": "old"}}, upsert=True).result(10)
    with pytest.raises(mgconn.ValidationError, match=r"`people.replace_one\(\)`.*path `name` is declared str"):
        people.replace_one({"_id": 1}, {"name": ["ada"]}).result(10)
    assert people.find_one({"_id": 1}).result(10) == {"_id": 1, "name": "ada"}
    assert people.count_documents().result(10) == 1
    # undeclared paths, other operators and None are not checked
    people.update_one({"_id": 1}, {"$set": {"level": "x", "age": None}, "$inc": {"n": 1}}).result(10)
    assert people.find_one({"_id": 1}).result(10) == {"_id": 1, "name": "ada", "level": "x", "age": None, "n": 1}


def test_a_raw_collection_and_an_empty_schema_check_nothing(people, mongodb_uri):
    raw = people.db.collection("people")
    raw.insert_one({"name": 5}).result(10)
    Loose = people.db.model("Loose", mgconn.Schema({}), "people")
    Loose.insert_one({"name": 6}).result(10)
    assert people.count_documents().result(10) == 2


def test_a_mistyped_type_name_is_refused_when_the_schema_is_made_naming_the_path():
    with pytest.raises(ValueError, match=r"`Nubmer` is not a valid type at path `age`; did you mean number\?"):
        mgconn.Schema({"name": str, "age": "Nubmer"})
    with pytest.raises(ValueError, match=r"`strng` is not a valid type at path `address.city`"):
        mgconn.Schema({"address": {"city": {"type": "strng", "default": "Paris"}}})
    # names far from every type (Mixed, a class of the program's own) stay unchecked, as before
    class Player:
        pass
    mgconn.Schema({"meta": "Mixed", "any": "Any", "owner": Player, "at": datetime.time})
    with pytest.raises(ValueError, match=r"`5` is not a valid type at path `age`"):
        mgconn.Schema({"age": 5})


def test_python_object_declares_a_path_of_any_type(mongodb_uri):
    conn = mgconn.create_connection(mongodb_uri).wait_open(10)
    Thing = conn.model("Thing", mgconn.Schema({"x": object}))
    Thing.insert_one({"x": "a string"}).result(10)
    Thing.insert_one({"x": {"a": 1}}).result(10)
    assert Thing.count_documents({}).result(10) == 2
    Thing.delete_many({}).result(10)
    conn.close().result(10)
