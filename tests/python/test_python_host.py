"""mgconn as a Python program meets it outside the test framework: each scenario runs in a child
interpreter of its own (no pytest hook on sys.unraisablehook, real threads, a real fork, a real
interpreter exit) and the parent checks what that program printed and what the server holds."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path
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
        conn = mgconn.create_connection()  # not opened until after the cancel: the insert is buffered
        task = asyncio.create_task(conn.collection("cancel").insert_one({"k": 1}))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await conn.open_uri(mongodb_uri)
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


# -- options as keywords --

def test_every_connection_string_option_works_as_a_keyword(mongodb_uri):
    conn = mgconn.create_connection(mongodb_uri, readConcernLevel="local", compressors="zlib",
                                    socketCheckIntervalMS=1000, serverSelectionTryOnce=False,
                                    readPreference="secondaryPreferred",
                                    readPreferenceTags=[{"dc": "ny", "rack": "1"}, {}],
                                    maxStalenessSeconds=120, w="majority", wtimeoutMS=5000, journal=True,
                                    authMechanismProperties={"SERVICE_NAME": "mongodb"})
    try:
        conn.wait_open(20)
        assert conn.collection("kw").count_documents({}).result(20) == 0
    finally:
        conn.close().result(20)


def test_list_and_dict_options_of_the_wrong_shape_are_named_without_their_secrets():
    def refused(**options: Any) -> str:
        with pytest.raises(mgconn.OptionError) as caught:
            mgconn.create_connection("mongodb://127.0.0.1:1/x", **options)
        return str(caught.value)

    message = refused(readPreference="nearest", readPreferenceTags={"dc": "ny"})
    assert '"readPreferenceTags"' in message and "a list of tag sets" in message, message
    message = refused(readPreference="nearest", readPreferenceTags=["dc:ny"])
    assert '"readPreferenceTags"' in message and "position 0" in message, message
    message = refused(readPreferenceTags=[{"dc": "ny"}])  # the default readPreference is primary
    assert '"readPreferenceTags"' in message and '"primary"' in message, message
    message = refused(authMechanism="MONGODB-AWS",
                      authMechanismProperties={"AWS_SESSION_TOKEN": "t0ken-s3cret", "PORT": 5})
    assert '"authMechanismProperties"' in message and '"PORT"' in message, message
    assert "t0ken-s3cret" not in message, message
    message = refused(authMechanismProperties="AWS_SESSION_TOKEN:t0ken-s3cret")
    assert '"authMechanismProperties"' in message and "t0ken-s3cret" not in message, message


def test_pass_with_a_trailing_underscore_is_the_pass_option():
    # the guide's example: the credentials are taken, and the error is the one about tls="yes"
    with pytest.raises(mgconn.OptionError) as caught:
        mgconn.create_connection("mongodb://127.0.0.1:1/guide", user="ada", pass_="s3cret!", tls="yes")
    assert '"tls"' in str(caught.value) and "s3cret!" not in str(caught.value), caught.value
    conn = mgconn.create_connection("mongodb://127.0.0.1:1/guide", user="ada", pass_="s3cret!",
                                    serverSelectionTimeoutMS=100)
    conn.close().result(20)


# -- messages a Python user reads --

def test_option_values_are_named_as_python_spells_them():
    for value, spelled in ((None, "None"), (True, "True"), (False, "False")):
        with pytest.raises(mgconn.OptionError) as caught:
            mgconn.create_connection("mongodb://127.0.0.1:1/x", maxPoolSize=value)
        assert f"got {spelled}" in str(caught.value), caught.value
    with pytest.raises(mgconn.OptionError) as caught:
        mgconn.create_connection("mongodb://127.0.0.1:1/x", bufferCommands=None)
    assert "True or False, got None" in str(caught.value), caught.value


def test_a_key_that_is_not_a_str_is_named_itself():
    conn = mgconn.create_connection("mongodb://127.0.0.1:1/x", serverSelectionTimeoutMS=100)
    try:
        with pytest.raises(TypeError, match=r"doc\.a: 42 \(int\)"):
            conn.collection("c").insert_one({"a": {42: "x"}})
    finally:
        conn.close().result(20)


def test_none_for_a_document_is_a_type_error_naming_the_argument():
    conn = mgconn.create_connection("mongodb://127.0.0.1:1/x", serverSelectionTimeoutMS=100)
    coll = conn.collection("c")
    try:
        with pytest.raises(TypeError, match=r"insert_one\(\): the argument 'document' must be a dict"):
            coll.insert_one(None)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"update_one\(\): the argument 'update'"):
            coll.update_one({}, None)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"delete_many\(\): the argument 'filter'"):
            coll.delete_many(None)  # type: ignore[arg-type]
    finally:
        conn.close().result(20)


def test_a_document_of_the_wrong_type_is_a_type_error_naming_the_method_and_argument():
    conn = mgconn.create_connection("mongodb://127.0.0.1:1/x", serverSelectionTimeoutMS=100)
    coll = conn.collection("c")
    try:
        with pytest.raises(TypeError, match=r"^insert_one\(\): the argument 'document' must be a dict .*not int$"):
            coll.insert_one(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^find_one\(\): the argument 'filter' must be a dict .*not str$"):
            coll.find_one("abc")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^replace_one\(\): the argument 'replacement' .*not list$"):
            coll.replace_one({}, [1])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^insert_many\(\): the argument 'documents' must be a list, not int$"):
            coll.insert_many(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^insert_many\(\): the argument 'documents' must be a list, not dict$"):
            coll.insert_many({"a": 1})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^aggregate\(\): the argument 'pipeline' must be a list, not dict$"):
            coll.aggregate({"$match": {}})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^find\(\): batch_size must be an int, not str$"):
            coll.find(batch_size="x")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"^find\(\): limit must be >= 0, got -1$"):
            coll.find(limit=-1)
        with pytest.raises(TypeError, match=r"^aggregate\(\): max_time_ms must be an int, not float$"):
            coll.aggregate([], max_time_ms=1.5)  # type: ignore[arg-type]
        assert coll.insert_many(iter([{"a": 1}])) is not None  # another iterable is still taken
        with pytest.raises(TypeError, match=r"^insert_one\(\): the argument 'document'.*not str$"):
            conn.model("WrongType", mgconn.Schema({})).insert_one("x")  # type: ignore[arg-type]
    finally:
        conn.close().result(20)


def test_a_listener_that_is_not_callable_is_refused_at_the_call():
    conn = mgconn.create_connection()
    with pytest.raises(TypeError, match="'open' must be callable, not int"):
        conn.on("open", 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        conn.once("close", None)  # type: ignore[arg-type]


def test_the_keepalive_warning_is_logged_once_per_process_without_a_doubled_prefix():
    out = child("""
        import logging
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
        for _ in range(3):
            c = mgconn.create_connection("mongodb://127.0.0.1:1/x", keepAlive=True, serverSelectionTimeoutMS=200)
            try:
                c.wait_open(10)
            except Exception:
                pass
        c.close().result(10)
    """)
    lines = [line for line in out.stderr.splitlines() if "keepAlive" in line]
    assert lines == ['WARNING mgconn: Option "keepAlive" is deprecated and ignored: TCP keep-alive is always on'], \
        out.stderr


def test_model_create_collection_makes_the_capped_collection_of_its_schema(mongodb_uri):
    conn = mgconn.create_connection(mongodb_uri)
    try:
        schema = mgconn.Schema({"name": str}, capped={"size": 1024}, bufferCommands=False, autoCreate=False)
        Test = conn.model("Test", schema)
        conn.wait_open(20)
        Test.create_collection().result(20)
        info = conn.run_command({"listCollections": 1, "filter": {"name": Test.collection_name}}).result(20)
        options = info["cursor"]["firstBatch"][0]["options"]
        assert options.get("capped") is True and options.get("size") == 1024, options
    finally:
        conn.close().result(20)


# -- ferretdb.py as a command --

def test_ferretdb_py_serve_runs_as_a_script_from_the_virtual_environment(tmp_path):
    script = Path(__file__).resolve().parents[2] / "python" / "mgconn" / "ferretdb.py"
    proc = subprocess.Popen([sys.executable, str(script), "serve", "--data", str(tmp_path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline() if proc.stdout else ""  # the server prints it once it answers ping
        assert first.startswith("ready "), first + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        assert count(first.split()[3] + "cli", "c") == 0
    finally:
        if proc.stdin:
            proc.stdin.close()  # closing its standard input stops it
        proc.wait(30)


# -- fire and forget at exit --

def test_operations_never_awaited_on_a_connection_not_yet_open_are_applied_before_exit(mongodb_uri):
    out = child("""
        conn = mgconn.create_connection(uri)  # still opening when the script ends
        for i in range(100):
            conn.collection("forgotten").insert_one({"i": i, "pad": "x" * 1000})
    """, mongodb_uri)
    ok(out)
    assert count(mongodb_uri, "forgotten") == 100, out.stderr
    assert "Warning" not in out.stderr, out.stderr


def test_operations_that_cannot_finish_before_exit_are_named_in_a_warning():
    out = child("""
        mgconn.exit_flush_timeout = 0.5
        conn = mgconn.create_connection("mongodb://127.0.0.1:1/x", bufferTimeoutMS=60000)
        conn.collection("c").insert_one({"i": 1})
    """)
    ok(out)
    assert "1 operation(s) had not finished when the interpreter exited" in out.stderr, out.stderr


# -- fork --

FORK = """
    import os, time
    conn = mgconn.connect(uri)
    User = mgconn.model("User", mgconn.Schema({"name": str}))
    raw = conn.collection("raw")
    other = mgconn.create_connection(uri)
    conn.wait_open(20); other.wait_open(20)
    User.insert_one({"name": "parent"}).result(20)
    nowhere = mgconn.create_connection("mongodb://127.0.0.1:1/x", serverSelectionTimeoutMS=3000)
    pending = nowhere.collection("c").insert_one({"who": "before the fork"})  # pending at the fork
    heard = []
    other.on("open", lambda: heard.append("other open"))
    User.on("index", lambda err: heard.append("User index"))
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            heard.clear()  # what the child's remade connection and model tell their listeners
            t0 = time.monotonic()
            try:
                pending.result(5)
                early = "finished?"
            except RuntimeError as exc:
                early = "refused" if time.monotonic() - t0 < 1 and "os.fork()" in str(exc) else repr(exc)
            User.insert_one({"name": "child"}).result(20)
            raw.insert_one({"who": "child"}).result(20)
            other.collection("o").insert_one({"who": "child"}).result(20)
            fresh = mgconn.create_connection(uri)
            fresh.collection("fresh").insert_one({"who": "child"}).result(20)
            n = User.count_documents({}).result(20)
            print("child", early, n, flush=True)
            until = time.monotonic() + 10
            while len(set(heard)) < 2 and time.monotonic() < until:
                mgconn.poll()
                time.sleep(0.01)
            print("child heard", sorted(set(heard)), flush=True)
            code = 0
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        print("child hung")
    print("parent", os.waitstatus_to_exitcode(status) if done else "killed", User.count_documents({}).result(20))
    mgconn.disconnect().result(20)
"""


def test_after_os_fork_the_child_uses_its_connections_and_models_again(mongodb_uri):
    out = ok(child(FORK, mongodb_uri))
    assert "child hung" not in out, out
    assert "parent 0 2" in out, out
    assert "child refused 2" in out, out  # the parent's operation: refused at once, no hang
    assert "child heard ['User index', 'other open']" in out, out  # listeners made before the fork
    assert count(mongodb_uri, "raw", {"who": "child"}) == 1
    assert count(mongodb_uri, "o") == 1 and count(mongodb_uri, "fresh") == 1


POOL = """
    import multiprocessing
    conn = mgconn.connect(uri)
    Job = mgconn.model("Job", mgconn.Schema({"n": int}))
    conn.wait_open(20)
    Job.insert_one({"n": -1}).result(20)

    def work(n):
        Job.insert_one({"n": n}).result(20)
        return Job.count_documents({"n": n}).result(20)

    if __name__ == "__main__":
        with multiprocessing.get_context("fork").Pool(2) as pool:
            print("results", pool.map_async(work, range(8)).get(60))
        print("total", Job.count_documents({}).result(20))
        mgconn.disconnect().result(20)
"""


def test_a_multiprocessing_fork_pool_uses_the_parents_model(mongodb_uri):
    out = ok(child(POOL, mongodb_uri))
    assert "results [1, 1, 1, 1, 1, 1, 1, 1]" in out and "total 9" in out, out


PREEXEC = """
    import os, subprocess
    conn = mgconn.create_connection(uri)
    conn.wait_open(20)
    coll = conn.collection("pre")
    coll.insert_one({"n": 1}).result(20)
    read, write = os.pipe()
    def count_threads():  # runs in the child between fork and exec, after the at-fork handlers
        os.write(write, str(len(os.listdir("/proc/self/task"))).encode())
    says = "import sys; sys.stderr.write('only this')"
    quiet = subprocess.run([sys.executable, "-c", says], preexec_fn=lambda: None, capture_output=True, text=True)
    counted = subprocess.run([sys.executable, "-c", says], preexec_fn=count_threads, capture_output=True, text=True)
    os.close(write)
    print("subprocess stderr", repr(quiet.stderr), repr(counted.stderr))
    print(f"threads between fork and exec: [{os.read(read, 100).decode()}]")
    coll.insert_one({"n": 2}).result(20)
    print("parent count", coll.count_documents({}).result(20))
    conn.close().result(20)
"""


def test_a_subprocess_with_preexec_fn_gets_no_mgconn_runtime_threads_or_warning(mongodb_uri):
    # At-fork handlers run in the child of subprocess's preexec_fn too, between fork and exec: there
    # mgconn makes nothing (no runtime, no threads, no warning); it is remade on first use only.
    out = child(PREEXEC, mongodb_uri)
    stdout = ok(out)
    assert "subprocess stderr 'only this' 'only this'" in stdout, stdout
    assert "threads between fork and exec: [1]" in stdout, stdout + out.stderr
    assert "parent count 2" in stdout, stdout
    assert "mgconn" not in out.stderr and "Warning" not in out.stderr, out.stderr


FIRST_USE = """
    import os, time, warnings
    warnings.simplefilter("always")  # a second warning would be shown too
    conn = mgconn.connect(uri)
    User = mgconn.model("User", mgconn.Schema({"name": str}))
    conn.wait_open(20)
    User.insert_one({"name": "parent"}).result(20)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            threads = len(os.listdir("/proc/self/task"))
            sys.stderr.write(f"child forked with {threads} thread(s), mgconn not used yet\\n")
            sys.stderr.flush()
            state = mgconn.connection.ready_state  # the first use: the child's runtime is made now
            sys.stderr.write("child after its first use\\n")
            User.insert_one({"name": "child"}).result(20)
            conn.on("close", lambda: None)
            print("child", state in (1, 2), User.count_documents({}).result(20), mgconn.connection.ready_state,
                  flush=True)
            mgconn.disconnect().result(20)
            code = 0
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    print("parent", os.waitstatus_to_exitcode(status), User.count_documents({}).result(20))
    mgconn.disconnect().result(20)
"""


def test_a_fork_child_is_warned_once_on_its_first_use_of_mgconn_not_at_the_fork(mongodb_uri):
    out = child(FIRST_USE, mongodb_uri)
    stdout = ok(out)
    assert "child True 2 1" in stdout and "parent 0 2" in stdout, stdout + out.stderr
    assert "child forked with 1 thread(s), mgconn not used yet" in out.stderr, out.stderr
    warning = "RuntimeWarning: mgconn was in use before os.fork()"
    assert out.stderr.count(warning) == 1, out.stderr
    # given at the first use (between the child's two lines), naming the user's line, not mgconn's
    before, after = out.stderr.split(warning)
    assert "mgconn not used yet" in before and "child after its first use" in after, out.stderr
    assert before.splitlines()[-1].startswith("<string>:"), out.stderr


FORK_ASYNCIO = """
    import asyncio, os
    conn = mgconn.create_connection(uri)
    conn.wait_open(20)
    coll = conn.collection("c")
    coll.insert_many([{"i": i} for i in range(7)]).result(20)
    counted = coll.count_documents({})
    counted.result(20)  # done before the fork: its result is the child's too
    unstarted = coll.find({}, batch_size=2)
    opened = iter(coll.find({}, batch_size=2))
    next(opened)  # a server cursor the parent holds
    sub = conn.use_db(conn.name + "_sub").collection("s")
    pid = os.fork()
    if pid == 0:
        code = 1
        async def main():
            print("child awaits", await counted, len(await asyncio.wait_for(unstarted.to_list(), 20)),
                  (await asyncio.wait_for(sub.insert_one({"s": 1}), 20)).inserted_id is not None,
                  await asyncio.wait_for(sub.count_documents({}), 20), flush=True)
        try:
            asyncio.run(main())
            try:
                list(opened)
            except RuntimeError as exc:
                print("child refused the parent's cursor:", "os.fork()" in str(exc), flush=True)
            code = 0
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    print("parent", os.waitstatus_to_exitcode(status), len(list(opened)), sub.count_documents({}).result(20))
    conn.close().result(20)
"""


def test_a_fork_child_awaits_pre_fork_cursors_use_db_children_and_finished_operations(mongodb_uri):
    out = ok(child(FORK_ASYNCIO, mongodb_uri, timeout=90))
    assert "child awaits 7 7 True 1" in out, out
    assert "child refused the parent's cursor: True" in out, out
    assert "parent 0 6 1" in out, out


# -- libmongoc's socket warnings during an outage --

OUTAGE = """
    import logging
    from mgconn.ferretdb import FerretDB
    if sys.argv[1] == "debug":
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    server = FerretDB().start()
    try:
        conn = mgconn.create_connection(server.uri + "outage", heartbeatFrequencyMS=500)
        conn.wait_open(20)
        coll = conn.collection("c")
        coll.insert_one({"a": 1}).result(20)
        server.kill()  # the pooled socket breaks under the next operation
        during = coll.insert_one({"a": 2})
        server.restart()
        try:  # failed, or sent again once the server is back: either way it has finished
            during.result(20)
            print("the insert during the outage: applied")
        except mgconn.NetworkError:
            print("the insert during the outage: network error")
        coll.insert_one({"a": 3}).result(20)
        print("after the outage: working")
        conn.close().result(20)
    finally:
        server.stop()
"""


def test_the_drivers_socket_warnings_in_an_outage_are_debug_lines_not_stderr():
    quiet = child(OUTAGE, "default")
    assert "after the outage: working" in ok(quiet)
    assert "Failed to" not in quiet.stderr and "stream" not in quiet.stderr, quiet.stderr
    assert "the insert during the outage: " in quiet.stdout, quiet.stdout
    # With every level shown, the driver's socket lines (if this driver logs any) are DEBUG only.
    verbose = child(OUTAGE, "debug")
    assert "after the outage: working" in ok(verbose)
    above_debug = [line for line in verbose.stderr.splitlines()
                   if line.split(" ")[0] in ("INFO", "WARNING", "ERROR", "CRITICAL")
                   and line.split(": ")[1:2] in (["stream"], ["socket"])]
    assert above_debug == [], verbose.stderr
