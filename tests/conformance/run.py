"""The differential conformance suite: each scenario through Mongoose, mgconn-Python and mgconn-Lua,
against the same FerretDB build, and a verdict per scenario.

    python tests/conformance/run.py [--only NAME ...] [--write-docs] [--traces DIR]

For every scenario and every implementation a fresh FerretDB is started; the implementation runs the
scenario (node/mongoose.js, mgconn_python.py, mgconn_lua.lua: the same steps in each) and prints a
trace; faults it asks for (`CONTROL kill|restart|pause|resume`) are done here. Traces are normalised
(see normalise()) and compared with Mongoose's:

  same                 the normalised traces are equal;
  deliberately better  they differ exactly as a departure marked "(better than Mongoose)" in
                       shared/spec/behaviour.md says, asserted by the scenario's rule below;
  different            anything else.

Exit status 0 only when every scenario is "same" or "deliberately better" for both mgconn hosts.
--write-docs writes docs/conformance.md; --check-docs (the test command's) fails unless the committed
table is the one this run produces.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def _load_launcher() -> Any:
    """The project's FerretDB launcher, loaded from its file: the harness does not import mgconn."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("ferretdb_launcher", ROOT / "python" / "mgconn" / "ferretdb.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["ferretdb_launcher"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


FerretDB = _load_launcher().FerretDB

BUILD = Path(os.environ.get("MGCONN_BUILD_DIR", ROOT / "build"))
Trace = Dict[str, Any]

# ---- the pluralisation inputs: the appendix's examples and 50 generated names ------------------------

# The results behaviour.md's appendix lists, then a name for each uncountable and each rule.
APPENDIX = ["User", "Person", "Mouse", "Category", "Index", "Matrix", "Bus", "Goose", "Leaf", "Datum", "Octopus",
            "Quiz", "Data", "CamelCase", "Sheep1",
            "system.profile", "system.indexes", "Advice", "Information", "Species", "Moose", "Media", "Status",
            "Human", "Woman", "Child", "Ox", "Axis", "Testis", "Cactus", "Alias", "Virus", "Tomato", "Medium",
            "Analysis", "Knife", "Wolf", "Hive", "Party", "Soliloquy", "Box", "Vertex", "Louse", "Wife", "Class"]


def generated_names() -> List[str]:
    """50 names a game or tool would give its models: a prefix and a word of every pluraliser rule."""
    prefixes = ["Player", "Guild", "Save", "Level", "Item"]
    words = ["Quest", "Box", "Batch", "Party", "Key", "Wolf", "Life", "Index", "Man", "Status"]
    return [f"{p}{w}" for p in prefixes for w in words]


# ---- normalisation --------------------------------------------------------------------------------------

def camel(name: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


def normalise_message(message: str) -> str:
    """First line only (Mongoose appends hints on further lines); method names in Mongoose's spelling;
    the library's name, numbers, addresses and URIs masked."""
    m = message.split("\n")[0]
    m = re.sub(r"`(\w+)\.(\w+)\(\)`", lambda x: f"`{x.group(1)}.{camel(x.group(2))}()`", m)
    m = re.sub(r"\b(mongoose|mgconn)\b", "LIB", m, flags=re.I)
    m = re.sub(r"mongodb://\S+", "URI", m)
    m = re.sub(r"\b0x[0-9a-f]+\b", "ADDR", m)
    m = re.sub(r"\d+", "N", m)
    return m


def normalise_debug(lines: List[str]) -> List[str]:
    """`Mongoose: users.findOne({ name: 'x' }, {})` and `mgconn: users.find_one({"name": "x"}, {})`
    become `users.findOne({name:x},{})`: the prefix, quoting and spacing are each library's own."""
    out = []
    for line in lines:
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        m = re.match(r"^(?:Mongoose|mgconn): (\w+)\.(\w+)\((.*)\)\s*$", line)
        if m:
            args = re.sub(r"[\s'\"]", "", m.group(3))
            out.append(f"{m.group(1)}.{camel(m.group(2))}({args})")
    return out


def normalise(trace: Trace) -> Trace:
    t = copy.deepcopy(trace)
    for o in t.get("outcomes", []):
        if "message" in o:
            o["message"] = normalise_message(o["message"])
    if "debug" in t:
        t["debug"] = normalise_debug(t["debug"])
    return t


# ---- scenarios ----------------------------------------------------------------------------------------

def drop_messages(t: Trace) -> Trace:
    """For errors worded by the driver underneath (the Node driver or libmongoc), only the category is
    compared."""
    t = copy.deepcopy(t)
    for o in t.get("outcomes", []):
        o.pop("message", None)
    return t


def connecting_first(m: Trace, ours: Trace) -> Optional[str]:
    """behaviour.md §1: `connecting` is delivered through the dispatcher, so a listener attached right
    after the call still hears it; Mongoose emits it before anyone can listen."""
    if ours.get("events", [])[:1] != ["connecting"]:
        return None
    rest = dict(ours, events=ours["events"][1:])
    return "`connecting` heard by a listener attached after the call (§1)" if rest == m else None


def outage_buffered(m: Trace, ours: Trace) -> Optional[str]:
    """behaviour.md §3: operations issued during an outage are buffered and sent on `reconnected`;
    Mongoose's buffering is one-shot, so they fail with a server selection error."""
    if (m["outcomes"][0].get("category") == "ServerSelection" and m["values"]["stored"] == 0
            and ours["outcomes"][0]["ok"] and ours["values"]["stored"] == 1):
        return "the write made during the outage was buffered and stored, not failed (§3)"
    return None


def in_flight_survives(m: Trace, ours: Trace) -> Optional[str]:
    """Work in flight when the server dies: Mongoose fails both writes with a network error; mgconn
    sends the insert again after the restart (stored once) and reports the $inc, which it does not
    send again, as OutcomeUnknown (the guide's "What survives an outage")."""
    mo, oo = m["outcomes"], ours["outcomes"]
    if (all(not o["ok"] and o.get("category") == "Network" for o in mo) and m["values"] == {"stored": 0, "n": 0}
            and oo[0]["ok"] and not oo[1]["ok"] and oo[1].get("category") == "OutcomeUnknown"
            and ours["values"] == {"stored": 1, "n": 0}):
        return ("the insert in flight at the kill was sent again and stored once; the $inc, not sent again, "
                "failed as OutcomeUnknown, not as a bare network error")
    return None


def connect_other_uri_leaves_connection(m: Trace, ours: Trace) -> Optional[str]:
    """behaviour.md §7: connect() with a different URI is an error and the open connection is left
    untouched; Mongoose marks it disconnected."""
    if (m["outcomes"] == ours["outcomes"] and m["values"]["readyStateAfter"] == 0
            and ours["values"]["readyStateAfter"] == 1):
        return "the open connection stays open after the refused connect (§7)"
    return None


def no_transactions_named(m: Trace, ours: Trace) -> Optional[str]:
    """The issue on the operations users reach for: a server without transactions or change streams
    (FerretDB) refuses them with NotSupported, naming the limitation; Mongoose passes the server's
    own error on (a MongoServerError). Both write nothing, and the session's own work is the same."""
    if (m["values"] == ours["values"] and [o["ok"] for o in m["outcomes"]] == [False, False]
            and [o.get("category") for o in ours["outcomes"]] == ["NotSupported", "NotSupported"]):
        return "transactions and watch on FerretDB fail as NotSupported, naming the server's limitation"
    return None


class Scenario:
    def __init__(self, name: str, title: str, compare: Callable[[Trace], Trace] = lambda t: t,
                 better: Optional[Callable[[Trace, Trace], Optional[str]]] = None, arg: Any = None) -> None:
        self.name, self.title, self.compare, self.better, self.arg = name, title, compare, better, arg


SCENARIOS = [
    Scenario("open_order", "open order", better=connecting_first),
    Scenario("initial_failure", "initial failure on a closed port", compare=drop_messages, better=connecting_first),
    Scenario("buffered_before_open", "operations buffered before open"),
    Scenario("buffer_timeout", "buffer timeout (bufferTimeoutMS=300)"),
    Scenario("buffer_commands_off", "bufferCommands off"),
    Scenario("kill_restart", "server SIGKILLed and restarted"),
    Scenario("ops_during_outage", "operations during an outage", compare=drop_messages, better=outage_buffered),
    Scenario("writes_in_flight_at_kill", "writes in flight at a SIGKILL (insert, $inc)", compare=drop_messages,
             better=in_flight_survives),
    Scenario("close_sequence", "close sequence"),
    Scenario("close_force", "close(force) with an operation in flight", compare=drop_messages),
    Scenario("connect_twice", "connect twice (same URI, then another)", compare=drop_messages,
             better=connect_other_uri_leaves_connection),
    Scenario("create_connection_as_promise", "createConnection + asPromise",
             compare=lambda t: {**t, "values": {k: v for k, v in t["values"].items() if k != "name"}}),
    Scenario("use_db", "useDb with and without cache",
             compare=lambda t: {**t, "values": {k: v for k, v in t["values"].items() if k != "childName"}}),
    Scenario("models", "model overwrite and missing model"),
    Scenario("everyday_operations", "bulkWrite, findOneAndUpdate / Delete, distinct, listIndexes"),
    Scenario("sessions_transactions_watch", "a session's writes and reads; a transaction and watch on FerretDB",
             compare=drop_messages, better=no_transactions_named),
    Scenario("pluralize", f"pluralisation ({len(APPENDIX)} appendix names + 50 generated)",
             arg=APPENDIX + generated_names()),
    Scenario("autocreate_capped", "autoCreate of a capped collection"),
    Scenario("debug_format", "debug line format"),
]

IMPLEMENTATIONS = {
    "Mongoose": lambda s, uri, arg: ["node", str(HERE / "node" / "mongoose.js"), s, uri] + ([json.dumps(arg)] if arg else []),
    "mgconn-Python": lambda s, uri, arg: [sys.executable, str(HERE / "mgconn_python.py"), s, uri] + (
        [json.dumps(arg)] if arg else []),
    "mgconn-Lua": lambda s, uri, arg: ["lua5.4", str(HERE / "mgconn_lua.lua"), s, uri] + ([json.dumps(arg)] if arg else []),
}


def run_one(impl: str, scenario: Scenario, timeout: float = 90.0) -> Tuple[Optional[Trace], str]:
    """Runs one implementation of one scenario against a fresh FerretDB; returns (trace, output)."""
    server = FerretDB().start()
    env = dict(os.environ, LUA_CPATH=f"{BUILD}/lua/?.so;;", LUA_PATH=f"{ROOT}/lua/?.lua;;")
    uri = server.uri + f"conf_{scenario.name}"
    proc = subprocess.Popen(IMPLEMENTATIONS[impl](scenario.name, uri, scenario.arg), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=HERE)
    trace: Optional[Trace] = None
    output: List[str] = []
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout and proc.stdin
        for line in proc.stdout:
            output.append(line)
            if line.startswith("CONTROL "):
                what = line.split()[1]
                if what == "kill":
                    server.kill()
                elif what == "restart":
                    server.start()
                elif what == "pause" and server.process:
                    os.kill(server.process.pid, signal.SIGSTOP)
                elif what == "resume" and server.process:
                    os.kill(server.process.pid, signal.SIGCONT)
                proc.stdin.write("done\n")
                proc.stdin.flush()
            elif line.startswith("TRACE "):
                trace = json.loads(line[6:])
            if time.monotonic() > deadline:
                break
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
    finally:
        if server.process and server.process.poll() is None:
            os.kill(server.process.pid, signal.SIGCONT)
        server.stop()
    err = proc.stderr.read() if proc.stderr else ""
    if trace is not None:
        debug = [ln for ln in "".join(output).split("\n") + err.split("\n")
                 if re.match(r"^(\x1b\[[0-9;]*m)*(Mongoose|mgconn):", ln)]
        if debug or scenario.name == "debug_format":
            trace["debug"] = debug
    return trace, "".join(output) + err


def verdict(scenario: Scenario, reference: Optional[Trace], ours: Optional[Trace]) -> Tuple[str, str]:
    if reference is None or ours is None:
        return "different", "no trace" + (" from Mongoose" if reference is None else "")
    m, o = scenario.compare(normalise(reference)), scenario.compare(normalise(ours))
    if m == o:
        return "same", ""
    if scenario.better:
        why = scenario.better(m, o)
        if why:
            return "deliberately better", why
    return "different", f"Mongoose {json.dumps(m, sort_keys=True)} vs {json.dumps(o, sort_keys=True)}"


def table(results: List[Tuple[Scenario, Dict[str, Tuple[str, str]]]]) -> str:
    lines = ["| scenario | Mongoose | mgconn-Python | mgconn-Lua | departure |", "| --- | --- | --- | --- | --- |"]
    for s, per_impl in results:
        notes = sorted({why for v, why in per_impl.values() if v == "deliberately better"})
        lines.append(f"| {s.title} | reference | {per_impl['mgconn-Python'][0]} | {per_impl['mgconn-Lua'][0]} | "
                     f"{'; '.join(notes)} |")
    return "\n".join(lines) + "\n"


DOC_HEAD = """# Conformance with Mongoose

Generated by `tests/conformance/run.py --write-docs`; the test suite runs the same scenarios and fails
when a verdict differs from this table. Each scenario runs through Mongoose 9.12.1 itself (Node), through
mgconn from Python and through mgconn from Lua, each against a fresh FerretDB of the same build; every
run writes a trace (events in order, each operation's outcome as ok or an error category and message,
scenario values such as the final database content), and the traces are compared after
normalisation: messages on their first line with numbers, addresses and URIs masked and the library's
own name (`Mongoose`/`mgconn`) and method spelling (`find_one`/`findOne`) made alike; debug lines
without their prefix, quoting and spacing; errors worded by the driver underneath (the Node driver or
libmongoc: server selection, force close) by category only.

"Deliberately better" is a difference that is exactly one of the departures marked *(better than
Mongoose)* in the behaviour contract, asserted by the scenario's rule in `run.py`.

"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--check-docs", action="store_true", help="fail unless docs/conformance.md has this run's table")
    ap.add_argument("--traces", type=Path, default=BUILD / "conformance")
    args = ap.parse_args()
    args.traces.mkdir(parents=True, exist_ok=True)
    results = []
    failed = False
    for s in SCENARIOS:
        if args.only and s.name not in args.only:
            continue
        traces = {}
        for impl in IMPLEMENTATIONS:
            t0 = time.monotonic()
            trace, output = run_one(impl, s)
            traces[impl] = trace
            (args.traces / f"{s.name}.{impl}.json").write_text(json.dumps(trace, indent=1, sort_keys=True) + "\n")
            if trace is None:
                print(f"  {s.name} / {impl}: no trace after {time.monotonic() - t0:.1f} s:\n{output}")
        per_impl = {impl: verdict(s, traces["Mongoose"], traces[impl]) for impl in ("mgconn-Python", "mgconn-Lua")}
        results.append((s, per_impl))
        for impl, (v, why) in per_impl.items():
            print(f"{s.name:30} {impl:14} {v}{': ' + why if why else ''}")
            failed |= v == "different"
    text = table(results)
    print(text)
    (args.traces / "table.md").write_text(text)
    doc = ROOT / "docs" / "conformance.md"
    if args.write_docs:
        doc.write_text(DOC_HEAD + text)
    if args.check_docs and (not doc.exists() or text not in doc.read_text()):
        print("FAIL: docs/conformance.md does not hold this run's table (run.py --write-docs to publish it)")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
