"""The bad-input catalogue, Python part: each case gets a clear error naming the problem (never the
password), and loses nothing: the same connection and an operation started before it go on.

Every case runs on one open connection with an insert in flight; after the case, that insert must
have succeeded and a fresh insert and find must work.
"""
from __future__ import annotations

import asyncio
import gc
import re
from typing import Any, Callable, Dict, Type

import pytest

import mgconn

SECRET = "Pa55w0rdNeverShown"
Case = Callable[[mgconn.Connection], Any]


def _deep(levels: int) -> Dict[str, Any]:
    doc: Dict[str, Any] = {}
    for _ in range(levels):
        doc = {"d": doc}
    return doc


def _cycle() -> Dict[str, Any]:
    d: Dict[str, Any] = {"name": "loop"}
    d["self"] = d
    return d


async def _closed_collection(conn: mgconn.Connection) -> Any:
    other = mgconn.create_connection(conn_uri(conn))
    await other
    await other.close()
    return await other.collection("items").insert_one({"x": 1})


async def _close_inside_listener(conn: mgconn.Connection) -> Any:
    other = mgconn.create_connection(conn_uri(conn))
    seen = []
    closing = []
    other.on("open", lambda: closing.append(other.close()))
    other.on("close", lambda: seen.append("close"))
    await other
    await asyncio.wait_for(asyncio.shield(_wait_list(closing)), 5)
    await closing[0]
    assert seen == ["close"] and other.ready_state == 0
    raise mgconn.ConnectionClosedError("closed from inside its own open listener, cleanly")


async def _wait_list(items: list) -> None:
    while not items:
        await asyncio.sleep(0.01)


async def _gc_with_ops_in_flight(conn: mgconn.Connection) -> Any:
    other = mgconn.create_connection(conn_uri(conn))
    futures = [other.collection("gc").insert_one({"n": i}) for i in range(20)]
    del other
    gc.collect()
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert all(not isinstance(r, Exception) or isinstance(r, mgconn.MgconnError) for r in results), results
    raise mgconn.ConnectionClosedError(f"{sum(not isinstance(r, Exception) for r in results)} of 20 completed")


def conn_uri(conn: mgconn.Connection) -> str:
    return f"mongodb://{conn.host}:{conn.port}/{conn.name}"


# (name, action, expected exception class, regex the message must match)
CASES = [
    ("uri without scheme", lambda c: mgconn.create_connection("127.0.0.1:27017/x"), mgconn.OptionError, r"URI"),
    ("uri wrong scheme", lambda c: mgconn.create_connection("mysql://127.0.0.1/x"), mgconn.OptionError, r"URI"),
    ("uri port out of range", lambda c: mgconn.create_connection("mongodb://127.0.0.1:99999/x"), mgconn.OptionError,
     r"URI|port"),
    ("uri bad option value with a password",
     lambda c: mgconn.create_connection(f"mongodb://ada:{SECRET}@127.0.0.1/x?connectTimeoutMS=soon"),
     mgconn.OptionError, r"connectTimeoutMS|URI"),
    ("uri empty host", lambda c: mgconn.create_connection("mongodb:///x"), mgconn.OptionError, r"URI|host"),
    ("unknown option, did you mean", lambda c: mgconn.create_connection("mongodb://h/x", serverSelectionTimoutMS=5),
     mgconn.OptionError, r"serverSelectionTimeoutMS"),
    ("option wrong type", lambda c: mgconn.create_connection("mongodb://h/x", maxPoolSize="ten"), mgconn.OptionError,
     r"maxPoolSize.*integer"),
    ("option below range", lambda c: mgconn.create_connection("mongodb://h/x", heartbeatFrequencyMS=100),
     mgconn.OptionError, r"heartbeatFrequencyMS.*500"),
    ("option negative", lambda c: mgconn.create_connection("mongodb://h/x", maxPoolSize=-1), mgconn.OptionError,
     r"maxPoolSize"),
    ("family not 4 or 6", lambda c: mgconn.create_connection("mongodb://h/x", family=5), mgconn.OptionError,
     r"family.*4.*6"),
    ("bool option given a string", lambda c: mgconn.create_connection("mongodb://h/x", bufferCommands="yes"),
     mgconn.OptionError, r"bufferCommands"),
    ("readPreference unknown", lambda c: mgconn.create_connection("mongodb://h/x", readPreference="closest"),
     mgconn.OptionError, r"readPreference"),
    ("autoIndex with a secondary read preference",
     lambda c: mgconn.create_connection("mongodb://h/x", readPreference="secondary", autoIndex=True),
     mgconn.OptionError, r"autoIndex"),
    ("password in user/pass never shown",
     lambda c: mgconn.create_connection("mongodb://h/x", user="ada", **{"pass": SECRET}, tls="maybe"),
     mgconn.OptionError, r"tls"),
    ("schema option wrong type", lambda c: mgconn.Schema({}, capped="big"), mgconn.OptionError, r"capped"),
    ("global setting unknown", lambda c: mgconn.set("bufferComands", True), mgconn.OptionError, r"bufferCommands"),
    ("object() in a document", lambda c: c.collection("items").insert_one({"a": {"b": object()}}), TypeError,
     r"a\.b"),
    ("set in a document", lambda c: c.collection("items").insert_one({"tags": {1, 2}}), TypeError, r"tags"),
    ("non-string key", lambda c: c.collection("items").insert_one({"ok": 1, 7: "x"}), TypeError, r"key"),
    ("cycle", lambda c: c.collection("items").insert_one(_cycle()), (TypeError, ValueError), r"self|cycl|recurs|deep"),
    ("nesting 10,000 deep", lambda c: c.collection("items").insert_one(_deep(10000)), (TypeError, ValueError),
     r"deep|nest|depth"),
    ("integer over 64 bits", lambda c: c.collection("items").insert_one({"big": 2 ** 70}), (TypeError, OverflowError),
     r"big"),
    ("lone surrogate (invalid UTF-8)", lambda c: c.collection("items").insert_one({"s": "\ud800"}),
     (TypeError, ValueError, UnicodeError), r"s|UTF|surrogate"),
    ("invalid UTF-8 in a key", lambda c: c.collection("items").insert_one({"\udcff": 1}),
     (TypeError, ValueError, UnicodeError), r"UTF|surrogate|key"),
    ("an empty key in a document to insert", lambda c: c.collection("items").insert_many([{"ok": 1}, {"a": {"": 1}}]),
     ValueError, r'documents hold an empty key, which cannot be stored, at 1\.a\.""'),
    ("document over 16 MiB", lambda c: c.collection("items").insert_one({"blob": "x" * (17 * 1024 * 1024)}),
     mgconn.DocumentTooLargeError, r"16|large|maxBsonObjectSize"),
    ("filter not a mapping", lambda c: c.collection("items").find_one(5), TypeError, r"filter|mapping|document"),
    ("update not a mapping", lambda c: c.collection("items").update_one({}, "set all"), TypeError,
     r"update|mapping|document"),
    ("insert_many of non-documents", lambda c: c.collection("items").insert_many([1, 2]), (TypeError, ValueError),
     r"document|mapping"),
    ("empty command", lambda c: c.run_command({}), (mgconn.OperationError, ValueError, TypeError), r"command|empty"),
    ("unknown command", lambda c: c.run_command({"noSuchCommand": 1}), mgconn.OperationError, r"noSuchCommand"),
    ("duplicate _id", lambda c: _duplicate(c), mgconn.DuplicateKeyError, r"11000|duplicate|E11000"),
    ("model without a schema", lambda c: c.model("NeverRegistered"), mgconn.MissingSchemaError,
     r"NeverRegistered"),
    ("model overwritten", lambda c: _overwrite(c), mgconn.OverwriteModelError, r"Cannot overwrite `Twice`"),
    ("unknown event name", lambda c: c.on("conected", lambda: None), ValueError, r"conected"),
    ("operation on a closed connection", _closed_collection, mgconn.ConnectionClosedError, r"closed"),
    ("close from inside an event listener", _close_inside_listener, mgconn.ConnectionClosedError, r"cleanly"),
    ("GC of a connection with operations in flight", _gc_with_ops_in_flight, mgconn.ConnectionClosedError,
     r"of 20 completed"),
    ("use_db with an invalid name", lambda c: c.use_db("bad/name"), (mgconn.OptionError, ValueError), r"bad/name|name"),
    ("blocking result() inside the event loop", lambda c: _blocking_result(c), RuntimeError, r"use `await`"),
]


async def _duplicate(c: mgconn.Connection) -> Any:
    await c.collection("items").insert_one({"_id": "dup"})
    return await c.collection("items").insert_one({"_id": "dup"})


def _overwrite(c: mgconn.Connection) -> Any:
    c.model("Twice", mgconn.Schema({}))
    return c.model("Twice", mgconn.Schema({}))


async def _blocking_result(c: mgconn.Connection) -> Any:
    fut = c.collection("items").find_one({})
    try:
        return fut.result(timeout=1)  # would block the loop that must deliver it
    finally:
        await fut


def test_the_catalogue_is_large_enough():
    assert len(CASES) >= 35  # with the Lua and C parts, more than 40 in all


@pytest.mark.parametrize("name,action,expected,pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_input(name: str, action: Case, expected: Type[BaseException], pattern: str, mongodb_uri: str, run) -> None:
    async def main() -> None:
        conn = mgconn.create_connection(mongodb_uri, serverSelectionTimeoutMS=5000)
        await conn
        items = conn.collection("items")
        before = items.insert_one({"before": name})  # in flight while the bad input happens
        with pytest.raises(expected) as info:
            result = action(conn)
            while asyncio.iscoroutine(result) or isinstance(result, (mgconn.Future, asyncio.Future)):
                result = await result
        message = str(info.value)
        assert re.search(pattern, message), f"{name}: the message does not say what went wrong: {message!r}"
        assert SECRET not in message, f"{name}: the password is in the message"
        assert (await before).inserted_id is not None
        after = await items.insert_one({"after": name})
        assert (await items.find_one({"_id": after.inserted_id}))["after"] == name
        await conn.close()
    run(main())
