"""The Python tasks of the benchmark: mgconn and PyMongo on the same server, in the same process.

Each task returns a list of results {task, client, ops, bytes, seconds, cpu_seconds, iterations[]};
`run.py` turns them into ratios. Client CPU is this process's user+system time (getrusage), so the
shared server's work is left out.
"""
from __future__ import annotations

import asyncio
import resource
import statistics
import time
from typing import Any, Callable, Dict, List

import bson  # PyMongo's
import pymongo
from bson import json_util

import mgconn
from mgconn import _mgconn


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(task: str, client: str, ops: int, nbytes: int, repeat: int, body: Callable[[], Any],
            setup: Callable[[], Any] = lambda: None) -> Dict[str, Any]:
    return measure_alternating(task, ops, nbytes, repeat, {client: body}, setup)[0]


def measure_alternating(task: str, ops: int, nbytes: int, repeat: int, bodies: Dict[str, Callable[[], Any]],
                        setup: Callable[[], Any] = lambda: None) -> List[Dict[str, Any]]:
    """Median wall and CPU time of `repeat` iterations of each client's body; with several clients their
    iterations alternate (a, b, a, b, ...). `setup` runs before every iteration, outside the clock."""
    walls: Dict[str, List[float]] = {c: [] for c in bodies}
    cpus: Dict[str, List[float]] = {c: [] for c in bodies}
    for _ in range(repeat):
        for client, body in bodies.items():
            setup()
            w0, c0 = time.perf_counter(), cpu()
            body()
            walls[client].append(time.perf_counter() - w0)
            cpus[client].append(cpu() - c0)
    return [{"task": task, "client": c, "ops": ops, "bytes": nbytes, "seconds": statistics.median(walls[c]),
             "cpu_seconds": statistics.median(cpus[c]), "wall_spread": [min(walls[c]), max(walls[c])],
             "iterations": repeat} for c in bodies]


def load(data_dir: str, name: str) -> Any:
    with open(f"{data_dir}/{name}") as f:
        return json_util.loads(f.read())


# ---- 1. BSON codec ----

def repeat_call(fn: Callable[[Any], Any], arg: Any, n: int) -> None:
    """fn(arg) n times, each result dropped before the next, as the driver benchmark's BSON tasks do:
    keeping all n results alive made the figure mostly the garbage collector's walks over a growing
    heap (the same for both codecs), not the conversion."""
    for _ in range(n):
        fn(arg)


def codec_tasks(data_dir: str, n: int, repeat: int) -> List[Dict[str, Any]]:
    """Each document's mgconn and PyMongo runs alternate (mgconn, pymongo, mgconn, ...), so that a drift
    of the machine during the task (the heap growing, another process waking) falls on both alike."""
    out = []
    for name in ("flat_bson.json", "deep_bson.json", "full_bson.json"):
        raw = bson.encode(load(data_dir, name))
        ours = _mgconn.decode(raw)  # the same document as mgconn's Python values
        theirs = bson.decode(raw)
        short = name.split("_")[0]
        out += measure_alternating(f"encode {short}", n, len(raw) * n, repeat, {
            "mgconn": lambda: repeat_call(_mgconn.encode, ours, n),
            "pymongo": lambda: repeat_call(bson.encode, theirs, n)})
        out += measure_alternating(f"decode {short}", n, len(raw) * n, repeat, {
            "mgconn": lambda: repeat_call(_mgconn.decode, raw, n),
            "pymongo": lambda: repeat_call(bson.decode, raw, n)})
    return out


# ---- 2-4. operations ----

def op_tasks(uri: str, data_dir: str, n: int, repeat: int, large_count: int) -> List[Dict[str, Any]]:
    tweet = load(data_dir, "tweet.json")
    small = load(data_dir, "small_doc.json")
    large = load(data_dir, "large_doc.json")
    tweet_bytes, small_bytes, large_bytes = (len(bson.encode(d)) for d in (tweet, small, large))
    tweet_m, small_m, large_m = (_mgconn.decode(bson.encode(d)) for d in (tweet, small, large))
    out: List[Dict[str, Any]] = []

    pm = pymongo.MongoClient(uri)["bench"]
    conn = mgconn.create_connection(uri + "bench").wait_open(30)
    loop = asyncio.new_event_loop()

    # the tweets, _id 1..n, loaded once
    pm.tweets.drop()
    pm.tweets.insert_many([dict(tweet, _id=i) for i in range(1, n + 1)])
    tweets = conn.collection("tweets")
    pm_tweets = pm.tweets

    def sync_find():
        for i in range(1, n + 1):
            tweets.find_one({"_id": i}).result()

    async def async_find():
        for i in range(1, n + 1):
            await tweets.find_one({"_id": i})

    out.append(measure("find_one by _id", "mgconn (sync)", n, n * tweet_bytes, repeat, sync_find))
    out.append(measure("find_one by _id", "mgconn (asyncio)", n, n * tweet_bytes, repeat,
                       lambda: loop.run_until_complete(async_find())))
    out.append(measure("find_one by _id", "pymongo", n, n * tweet_bytes, repeat,
                       lambda: [pm_tweets.find_one({"_id": i}) for i in range(1, n + 1)]))
    apm = pymongo.AsyncMongoClient(uri)

    async def pm_async_find():
        c = apm["bench"]["tweets"]
        for i in range(1, n + 1):
            await c.find_one({"_id": i})

    out.append(measure("find_one by _id", "pymongo (async)", n, n * tweet_bytes, repeat,
                       lambda: loop.run_until_complete(pm_async_find())))

    # small documents inserted one at a time, each variant into an empty collection
    smalls = conn.collection("smalls")

    def fresh():
        pm.smalls.drop()

    def sync_insert():
        for _ in range(n):
            smalls.insert_one(dict(small_m)).result()

    async def async_insert():
        for _ in range(n):
            await smalls.insert_one(dict(small_m))

    async def pm_async_insert():
        c = apm["bench"]["smalls"]
        for _ in range(n):
            await c.insert_one(dict(small))

    out.append(measure("insert_one small", "mgconn (sync)", n, n * small_bytes, repeat, sync_insert, fresh))
    out.append(measure("insert_one small", "mgconn (asyncio)", n, n * small_bytes, repeat,
                       lambda: loop.run_until_complete(async_insert()), fresh))
    out.append(measure("insert_one small", "pymongo", n, n * small_bytes, repeat,
                       lambda: [pm.smalls.insert_one(dict(small)) for _ in range(n)], fresh))
    out.append(measure("insert_one small", "pymongo (async)", n, n * small_bytes, repeat,
                       lambda: loop.run_until_complete(pm_async_insert()), fresh))

    # multi-document tasks
    out.append(measure("find all tweets", "mgconn", n, n * tweet_bytes, repeat,
                       lambda: tweets.find().to_list().result()))
    out.append(measure("find all tweets", "pymongo", n, n * tweet_bytes, repeat, lambda: list(pm_tweets.find())))
    out.append(measure("insert_many small", "mgconn", n, n * small_bytes, repeat,
                       lambda: smalls.insert_many([dict(small_m) for _ in range(n)]).result(), fresh))
    out.append(measure("insert_many small", "pymongo", n, n * small_bytes, repeat,
                       lambda: pm.smalls.insert_many([dict(small) for _ in range(n)]), fresh))
    larges = conn.collection("larges")
    if large_count:
        out.append(measure("insert_many large", "mgconn", large_count, large_count * large_bytes, repeat,
                           lambda: larges.insert_many([dict(large_m) for _ in range(large_count)]).result(300),
                           lambda: pm.larges.drop()))
        out.append(measure("insert_many large", "pymongo", large_count, large_count * large_bytes, repeat,
                           lambda: pm.larges.insert_many([dict(large) for _ in range(large_count)]),
                           lambda: pm.larges.drop()))

    # 64 concurrent asyncio tasks doing find_one
    async def concurrent(find):
        queue = list(range(1, n + 1))

        async def worker():
            while queue:
                await find(queue.pop())
        await asyncio.gather(*[worker() for _ in range(64)])

    out.append(measure("64 tasks find_one", "mgconn (asyncio)", n, n * tweet_bytes, repeat,
                       lambda: loop.run_until_complete(concurrent(lambda i: tweets.find_one({"_id": i})))))
    out.append(measure("64 tasks find_one", "pymongo (async)", n, n * tweet_bytes, repeat,
                       lambda: loop.run_until_complete(
                           concurrent(lambda i: apm["bench"]["tweets"].find_one({"_id": i})))))

    loop.run_until_complete(apm.close())
    conn.close().result(30)
    loop.close()
    return out


# ---- 7. host stall ----

def stall_task(server: Any, seconds: float = 6.0) -> List[Dict[str, Any]]:
    """A 60 Hz loop issuing one find_one per frame; the server dies at 1/3 and returns at 2/3. What is
    measured is the time spent inside the client's calls in each frame. mgconn's loop polls with a cap
    of 8 completions per frame, as a game host does, so the operations buffered during the outage are
    delivered over the following frames instead of in one."""
    out = []
    frame = 1 / 60
    for client in ("mgconn", "pymongo"):
        if client == "mgconn":
            conn = mgconn.create_connection(server.uri + "stall", heartbeatFrequencyMS=500,
                                            bufferTimeoutMS=10000).wait_open(30)
            coll = conn.collection("c")
            pending: list = []

            def step(i: int) -> None:
                pending.append(coll.find_one({"_id": i}))
                mgconn.poll(8)  # a frame runs at most 8 completions (docs/embedding.md): a burst spreads
        else:
            pmc = pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=1000, heartbeatFrequencyMS=500)
            pcoll = pmc["stall"]["c"]

            def step(i: int) -> None:
                try:
                    pcoll.find_one({"_id": i})
                except pymongo.errors.PyMongoError:
                    pass
        inside: List[float] = []
        frames = int(seconds * 60)
        start = time.perf_counter()
        killed = restarted = False
        for i in range(frames):
            t = time.perf_counter()
            if not killed and t - start > seconds / 3:
                server.kill()
                killed = True
            if not restarted and t - start > 2 * seconds / 3:
                server.start()
                restarted = True
            t0 = time.perf_counter()
            step(i)
            inside.append(time.perf_counter() - t0)
            left = start + (i + 1) * frame - time.perf_counter()
            if left > 0:
                time.sleep(left)
        inside.sort()
        out.append({"task": "60 Hz loop, server killed", "client": client, "frames": frames,
                    "worst_ms": inside[-1] * 1e3, "p99_ms": inside[int(len(inside) * 0.99) - 1] * 1e3,
                    "median_ms": inside[len(inside) // 2] * 1e3})
        if client == "mgconn":
            conn.close(force=True).result(30)
        else:
            pmc.close()
    return out
