"""mgconn as a Python program meets it outside the test framework: each scenario runs in a child
interpreter of its own (no pytest hook on sys.unraisablehook, real threads, a real fork, a real
interpreter exit) and the parent checks what that program printed and what the server holds."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from typing import Any, Dict

import pytest

import mgconn


def child(code: str, *args: str, timeout: float = 120) -> "subprocess.CompletedProcess[str]":
    """Runs `code` (with `import mgconn, sys` and `uri = sys.argv[1]` done) in a new interpreter."""
    prelude = "import sys, mgconn\nuri = sys.argv[1] if len(sys.argv) > 1 else ''\n"
    env = dict(os.environ)
    env.pop("PYTEST_CURRENT_TEST", None)
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code), *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def ok(out: "subprocess.CompletedProcess[str]") -> str:
    assert out.returncode == 0, f"exit {out.returncode}\n--- stdout\n{out.stdout}\n--- stderr\n{out.stderr}"
    return out.stdout


def count(uri: str, collection: str, query: Dict[str, Any] | None = None) -> int:
    conn = mgconn.create_connection(uri)
    try:
        conn.wait_open(20)
        return conn.collection(collection).count_documents(query or {}).result(20)
    finally:
        conn.close().result(20)


# -- a raising listener or done-callback --

def test_raising_listener_and_callback_are_reported_and_the_next_ones_still_run(mongodb_uri):
    out = child("""
        seen = []
        conn = mgconn.create_connection(uri)
        conn.on("open", lambda: 1 / 0)
        conn.on("open", lambda: seen.append("second listener"))
        conn.wait_open(20)
        fut = conn.collection("c").insert_one({"a": 1})
        fut.add_done_callback(lambda f: [][1])
        fut.add_done_callback(lambda f: seen.append("second callback"))
        fut.result(20)
        print(seen)
        conn.close().result(20)
    """, mongodb_uri)
    assert "['second listener', 'second callback']" in ok(out), out.stderr
    assert "ZeroDivisionError" in out.stderr and "IndexError" in out.stderr, out.stderr
    assert "UnraisableHookArgs" not in out.stderr, out.stderr


def test_a_users_unraisablehook_receives_the_error_and_the_callback(mongodb_uri):
    out = child("""
        got = []
        sys.unraisablehook = lambda args: got.append((type(args).__name__, args.exc_type.__name__,
                                                      getattr(args.object, "__name__", None)))
        def bad_listener():
            raise KeyError("boom")
        conn = mgconn.create_connection(uri)
        conn.on("open", bad_listener)
        conn.wait_open(20)
        print(got)
        conn.close().result(20)
    """, mongodb_uri)
    assert "[('UnraisableHookArgs', 'KeyError', 'bad_listener')]" in ok(out), out.stderr


# -- threads --

THREADS = """
    import threading, time
    sys.setswitchinterval(1e-5)  # threads take turns often, as on a busy machine
    conn = mgconn.create_connection(uri)
    conn.wait_open(20)
    coll = conn.collection("t")
    early, failures = [], []
    def work(n):
        for i in range(1000):
            t0 = time.monotonic()
            fut = coll.insert_one({"t": n, "i": i, "pad": "x" * 2000}) if i % 2 == 0 else coll.find_one({"t": n})
            try:
                fut.result(20)
            except TimeoutError:
                early.append(round(time.monotonic() - t0, 3))
            except Exception as exc:
                failures.append(repr(exc))
    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    print("early", len(early), early[:5], "failures", failures[:3])
    conn.close().result(20)
"""


@pytest.mark.parametrize("run_no", [1, 2, 3])
def test_eight_threads_times_1000_operations_get_no_early_timeout(mongodb_uri, run_no):
    out = ok(child(THREADS, mongodb_uri, timeout=300))
    assert "early 0 [] failures []" in out, out
    assert count(mongodb_uri, "t") == 8 * 500


# -- asyncio --

def test_operations_are_coroutines_every_asyncio_api_accepts(mongodb_uri, run):
    async def main():
        conn = await mgconn.create_connection(mongodb_uri)
        coll = conn.collection("aio")
        await asyncio.create_task(coll.insert_one({"k": 1}))
        async with asyncio.TaskGroup() as tg:
            t1 = tg.create_task(coll.insert_one({"k": 2}))
            t2 = tg.create_task(coll.count_documents({}))
        assert t1.result().inserted_id is not None and t2.result() in (1, 2)
        done, pending = await asyncio.wait([asyncio.create_task(coll.find_one({"k": 1})),
                                            asyncio.ensure_future(coll.find_one({"k": 2}))])
        assert not pending and sorted(t.result()["k"] for t in done) == [1, 2]
        a, b = await asyncio.gather(coll.find_one({"k": 1}), coll.count_documents({}))
        assert a["k"] == 1 and b == 2
        assert (await asyncio.wait_for(coll.find_one({"k": 2}), 20))["k"] == 2
        assert await asyncio.shield(coll.count_documents({})) == 2
        assert [await f for f in asyncio.as_completed([coll.count_documents({})])] == [2]
        op = coll.count_documents({})
        assert await op == 2 and await op == 2 and op.result() == 2  # awaited twice, then .result()
        await conn.close()
    run(main())


def test_a_task_made_of_an_operation_can_be_cancelled(mongodb_uri, run):
    async def main():
        conn = mgconn.create_connection(mongodb_uri)  # not open yet: the insert is buffered
        task = asyncio.create_task(conn.collection("cancel").insert_one({"k": 1}))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await conn
        assert await conn.collection("cancel").count_documents({}) == 0
        await conn.close()
    run(main())


# -- connection strings --

def test_a_password_with_an_unescaped_at_is_refused_naming_the_fix_and_showing_none_of_it():
    with pytest.raises(mgconn.OptionError) as caught:
        mgconn.create_connection("mongodb://bob:s3cr@t@127.0.0.1:1/db")
    message = str(caught.value)
    assert "percent-encode" in message and "%40" in message, message
    for part in ("s3cr", "t@127", "bob:"):
        assert part not in message, message
    # escaped, the same password is accepted
    conn = mgconn.create_connection("mongodb://bob:s3cr%40t@127.0.0.1:1/db", serverSelectionTimeoutMS=100)
    conn.close().result(20)
