"""The conformance scenarios through mgconn from Python: step for step what node/mongoose.js does.

    python mgconn_python.py SCENARIO URI [ARG_JSON]

Prints `TRACE {...}`; asks the harness for faults with `CONTROL ...` lines (see run.py).
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any, Awaitable, Callable, Dict, List

import mgconn

SCENARIO, URI = sys.argv[1], sys.argv[2]
ARG = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
CLOSED_URI = "mongodb://127.0.0.1:1/conformance"
EVENTS = ["connecting", "connected", "open", "disconnecting", "disconnected", "close", "reconnected", "error"]


async def control(what: str) -> None:
    print(f"CONTROL {what}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


def watch(conn: mgconn.Connection) -> List[str]:
    seen: List[str] = []
    for name in EVENTS:
        conn.on(name, lambda *_, name=name: seen.append(name))
    return seen


async def until(pred: Callable[[], bool], seconds: float = 15.0) -> None:
    end = time.monotonic() + seconds
    while not pred() and time.monotonic() < end:
        await asyncio.sleep(0.01)


async def outcome(op: str, awaitable: Awaitable[Any]) -> Dict[str, Any]:
    try:
        await awaitable
        return {"op": op, "ok": True}
    except mgconn.MgconnError as e:
        return {"op": op, "ok": False, "category": e.category, "message": str(e)}
    except ValueError as e:  # the extension's InvalidArgument category, as Python spells misuse
        return {"op": op, "ok": False, "category": "InvalidArgument", "message": str(e)}


def schema(**opts: Any) -> mgconn.Schema:
    return mgconn.Schema({"name": str}, **opts)


async def sync(fn: Callable[[], Any]) -> Any:
    return fn()


async def open_order() -> Dict[str, Any]:
    conn = mgconn.create_connection(URI)
    events = watch(conn)
    await conn.as_promise()
    trace = {"events": list(events), "values": {"readyState": conn.ready_state}}
    await conn.close()
    return trace


async def initial_failure() -> Dict[str, Any]:
    conn = mgconn.create_connection(CLOSED_URI, serverSelectionTimeoutMS=500)
    events = watch(conn)
    o = await outcome("asPromise", conn.as_promise())
    await asyncio.sleep(0.05)
    return {"events": events, "outcomes": [o], "values": {"readyState": conn.ready_state}}


async def buffered_before_open() -> Dict[str, Any]:
    conn = mgconn.create_connection()
    User = conn.model("User", schema())
    saved = User.insert_one({"name": "ada"})
    conn.open_uri(URI)
    o = await outcome("create", saved)
    found = await User.find_one({"name": "ada"})
    await conn.close()
    return {"outcomes": [o], "values": {"found": found and found["name"]}}


async def buffer_timeout() -> Dict[str, Any]:
    conn = mgconn.create_connection()
    User = conn.model("User", schema(bufferTimeoutMS=300))
    return {"outcomes": [await outcome("findOne", User.find_one({}))]}


async def buffer_commands_off() -> Dict[str, Any]:
    conn = mgconn.create_connection()
    User = conn.model("User", schema(bufferCommands=False))
    return {"outcomes": [await outcome("findOne", User.find_one({}))]}


async def kill_restart() -> Dict[str, Any]:
    conn = mgconn.create_connection(URI, heartbeatFrequencyMS=500)
    events = watch(conn)
    await conn.as_promise()
    start = len(events)
    await control("kill")
    await until(lambda: "disconnected" in events)
    await control("restart")
    await until(lambda: "reconnected" in events[start:], 20)
    await asyncio.sleep(0.3)
    trace = {"events": events[start:], "values": {"readyState": conn.ready_state}}
    await conn.close()
    return trace


async def ops_during_outage() -> Dict[str, Any]:
    conn = mgconn.create_connection(URI, heartbeatFrequencyMS=500, serverSelectionTimeoutMS=1000)
    events = watch(conn)
    User = conn.model("User", schema())
    await conn.as_promise()
    await User.init()  # the database exists before the kill (FerretDB cannot restart mid-creation)
    await User.insert_one({"name": "before"})
    await control("kill")
    await until(lambda: "disconnected" in events)
    saved = asyncio.ensure_future(outcome("create", User.insert_one({"name": "during outage"})))
    await asyncio.sleep(1.5)  # longer than serverSelectionTimeoutMS, shorter than bufferTimeoutMS
    await control("restart")
    o = await saved
    await until(lambda: "reconnected" in events, 20)
    n = await User.count_documents({"name": "during outage"})
    await conn.close()
    return {"outcomes": [o], "values": {"stored": n}}


async def writes_in_flight_at_kill() -> Dict[str, Any]:
    # The server is stopped, so both writes are sent and unanswered, then killed and restarted:
    # neither was applied.
    conn = mgconn.create_connection(URI, heartbeatFrequencyMS=500, serverSelectionTimeoutMS=10000, minPoolSize=5)
    events = watch(conn)
    await conn.as_promise()
    raw = conn.collection("raw")
    await raw.insert_one({"_id": "counter", "n": 0})  # the database exists before the kill
    await asyncio.sleep(0.3)
    await control("pause")
    inserted = asyncio.ensure_future(outcome("insertOne", raw.insert_one({"_id": "in flight"})))
    incremented = asyncio.ensure_future(outcome("updateOne", raw.update_one({"_id": "counter"}, {"$inc": {"n": 1}})))
    await asyncio.sleep(0.4)
    await control("kill")
    await control("restart")
    o = [await inserted, await incremented]
    await until(lambda: "reconnected" in events, 20)
    stored = await raw.count_documents({"_id": "in flight"})
    counter = await raw.find_one({"_id": "counter"})
    await conn.close()
    return {"outcomes": o, "values": {"stored": stored, "n": counter["n"]}}


async def close_sequence() -> Dict[str, Any]:
    conn = mgconn.create_connection(URI)
    events = watch(conn)
    await conn.as_promise()
    start = len(events)
    await conn.close()
    await asyncio.sleep(0.05)
    return {"events": events[start:], "values": {"readyState": conn.ready_state}}


async def close_force() -> Dict[str, Any]:
    conn = mgconn.create_connection(URI, socketTimeoutMS=0)
    User = conn.model("User", schema())
    await conn.as_promise()
    await User.insert_one({"name": "ada"})
    await control("pause")  # the server stops answering: the next find stays in flight
    find = asyncio.ensure_future(outcome("findOne", User.find_one({"name": "ada"})))
    await asyncio.sleep(0.3)
    await conn.close(force=True)
    done, _ = await asyncio.wait([find], timeout=5)
    o = find.result() if done else {"op": "findOne", "ok": False, "category": "StillPending"}
    await control("resume")
    return {"outcomes": [o], "values": {"readyState": conn.ready_state}}


async def connect_twice() -> Dict[str, Any]:
    first = await outcome("connect", mgconn.connect(URI).as_promise())
    again = await outcome("connect same URI", sync(lambda: mgconn.connect(URI).as_promise()))
    other_uri = URI.rsplit("/", 1)[0] + "/other_db"
    other = await outcome("connect other URI", sync(lambda: mgconn.connect(other_uri)))
    state = mgconn.connection.ready_state
    await mgconn.disconnect()
    return {"outcomes": [first, again, other], "values": {"readyStateAfter": state}}


async def create_connection_as_promise() -> Dict[str, Any]:
    conn = mgconn.create_connection(URI)
    got = await conn.as_promise()
    trace = {"values": {"sameConnection": got is conn, "readyState": conn.ready_state, "name": conn.name}}
    await conn.close()
    return trace


async def use_db() -> Dict[str, Any]:
    conn = mgconn.create_connection(URI)
    await conn.as_promise()
    a, a2 = conn.use_db("tenant_a"), conn.use_db("tenant_a")
    c, c2 = conn.use_db("tenant_c", use_cache=True), conn.use_db("tenant_c", use_cache=True)
    Child = c.model("User", schema())
    await Child.insert_one({"name": "in tenant c"})
    values = {"sameWithoutCache": a is a2, "sameWithCache": c is c2, "childName": c.name, "childState": c.ready_state,
              "parentHasModel": "User" in conn.models, "childCount": await Child.count_documents({})}
    await conn.close()
    return {"values": values}


async def everyday_operations() -> Dict[str, Any]:
    conn = mgconn.create_connection(URI)
    Item = conn.model("Item", mgconn.Schema({"name": str, "n": int}))
    await Item.insert_many([{"_id": 1, "name": "a", "n": 1}, {"_id": 2, "name": "b", "n": 2},
                            {"_id": 3, "name": "a", "n": 3}])
    bulk = await Item.bulk_write([
        mgconn.InsertOne({"_id": 4, "name": "c", "n": 4}),
        mgconn.UpdateOne({"_id": 1}, {"$set": {"n": 10}}),
        mgconn.UpdateMany({"name": "a"}, {"$inc": {"n": 1}}),
        mgconn.DeleteOne({"_id": 2}),
    ])
    updated = await Item.find_one_and_update({"_id": 3}, {"$set": {"name": "z"}},
                                             return_document=mgconn.ReturnDocument.AFTER)
    before = await Item.find_one_and_update({"_id": 4}, {"$set": {"n": 40}})
    deleted = await Item.find_one_and_delete({"_id": 1})
    await Item.create_indexes([{"key": {"n": 1}}])
    values = {"bulk": [bulk.inserted_count, bulk.matched_count, bulk.modified_count, bulk.deleted_count],
              "updated": updated, "before": before, "deleted": deleted, "names": sorted(await Item.distinct("name")),
              "indexes": sorted(ix["name"] for ix in await Item.list_indexes()),
              "count": await Item.count_documents({})}
    await conn.close()
    return {"values": values}


async def sessions_transactions_watch() -> Dict[str, Any]:
    conn = await mgconn.create_connection(URI)
    Item = conn.model("Item", mgconn.Schema({"name": str}))
    with conn.start_session() as s:
        await Item.insert_one({"_id": 1, "name": "in a session"}, session=s)
        found = await Item.find_one({"_id": 1}, session=s)
    outcomes = [await outcome("transaction", conn.transaction(
        lambda s: Item.insert_one({"_id": 2, "name": "in a transaction"}, session=s)))]
    stream = Item.watch()
    outcomes.append(await outcome("watch", stream.next()))
    stream.close()
    values = {"found": found, "count": await Item.count_documents({})}
    await conn.close()
    return {"outcomes": outcomes, "values": values}


async def models() -> Dict[str, Any]:
    conn = mgconn.create_connection()
    s1, s2 = schema(), schema()
    User = conn.model("User", s1)

    def same() -> None:
        if conn.model("User", s1) is not User:
            raise mgconn.MgconnError("a different model came back")

    outcomes = [await outcome("model same schema", sync(same)),
                await outcome("model other schema", sync(lambda: conn.model("User", s2))),
                await outcome("model missing", sync(lambda: conn.model("Nope")))]
    conn.delete_model("User")
    outcomes.append(await outcome("model after delete", sync(lambda: conn.model("User"))))
    return {"outcomes": outcomes, "values": {"modelNames": list(conn.models)}}


async def pluralize() -> Dict[str, Any]:
    conn = mgconn.create_connection()  # the collection name a model gets
    return {"values": {name: conn.model(name, mgconn.Schema({})).collection_name for name in ARG}}


async def autocreate_capped() -> Dict[str, Any]:
    conn = mgconn.create_connection(URI)
    Log = conn.model("Log", mgconn.Schema({"line": str}, capped={"size": 4096}))
    await Log.init()
    reply = await conn.run_command({"listCollections": 1, "filter": {"name": Log.collection_name}})
    infos = reply["cursor"]["firstBatch"]
    capped = bool(infos and infos[0].get("options", {}).get("capped"))
    await conn.close()
    return {"values": {"collection": Log.collection_name, "capped": capped}}


async def debug_format() -> Dict[str, Any]:
    conn = mgconn.create_connection(URI)
    User = conn.model("User", schema())
    await conn.as_promise()
    mgconn.set("debug", True)  # lines go to stderr: the harness reads them
    await User.find_one({"name": "x"})
    await User.count_documents({"name": "x"})
    mgconn.set("debug", False)
    await conn.close()
    return {}


async def main() -> None:
    trace = await globals()[SCENARIO]()
    print("TRACE " + json.dumps(trace), flush=True)


asyncio.run(main())
