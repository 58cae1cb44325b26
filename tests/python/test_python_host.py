"""mgconn as a Python program meets it outside the test framework: each scenario runs in a child
interpreter of its own (no pytest hook on sys.unraisablehook, real threads, a real fork, a real
interpreter exit) and the parent checks what that program printed and what the server holds."""
from __future__ import annotations

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
