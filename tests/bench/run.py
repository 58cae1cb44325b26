"""The benchmark: mgconn against its peers, measured side by side in one run on one FerretDB.

    python tests/bench/run.py [--smoke] [--out DIR] [--data DIR] [--n 10000] [--repeat 5]

Writes OUT/benchmarks.md (the table), OUT/benchmarks.json (every figure) and OUT/benchmarks/*.png:
OUT is docs/ for a full run (the published results) and build/bench-smoke/ for --smoke, which never
writes into docs/. The documents measured are the DriverBench ones in tests/bench/data/driverbench
(their origin and licence: tests/bench/data/README.md); --data names another folder of them.
Each row pairs an mgconn client with its peer (PyMongo 4, Mongoose 9, or libmongoc used directly
from C) doing the same task; ratios are mgconn / peer. Client CPU per operation is the client
process's own user+system time, so the shared server's cost is left out. Each Lua task that misses
its target against lua-mongo is then profiled through both clients with perf (tests/bench/lua_profile.py)
and the report says where mgconn's extra CPU goes. --smoke runs every task with tiny counts (the test
suite does, so the benchmark never rots) and profiles one.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import lua_profile  # noqa: E402
import tasks_python  # noqa: E402
from mgconn.ferretdb import FerretDB  # noqa: E402
from postgres import LocalPostgres  # noqa: E402

PAIRS = {  # mgconn client -> its peers (each row of the report is one pair)
    "mgconn": ["pymongo"], "mgconn (sync)": ["pymongo"], "mgconn (asyncio)": ["pymongo (async)"],
    "mgconn (Lua)": ["lua-mongo", "libmongoc (C)"],
}
PEERS = {peer for peers in PAIRS.values() for peer in peers}
# label: (field, tasks or None for all, "<=" or ">=", bound, mgconn clients, peer)
TARGETS = {
    "single-document client CPU per op (Python) <= 0.5x PyMongo": (
        "cpu_ratio", ["find_one by _id", "insert_one small", "64 tasks find_one"], "<=", 0.5,
        ["mgconn (sync)", "mgconn (asyncio)"], None),
    "find-many client CPU per document (Python) <= 0.5x PyMongo": (
        "cpu_ratio", ["find all tweets"], "<=", 0.5, ["mgconn"], "pymongo"),
    "BSON codec MB/s >= 1.5x PyMongo's bson": (
        "mbps_ratio", ["encode flat", "encode deep", "encode full", "decode flat", "decode deep", "decode full"],
        ">=", 1.5, ["mgconn"], "pymongo"),
    "single-document client CPU per op (Lua) <= 1.2x lua-mongo": (
        "cpu_ratio", ["find_one by _id", "insert_one small"], "<=", 1.2, ["mgconn (Lua)"], "lua-mongo"),
    "conversion-bound client CPU (Lua: find all, insert_many) <= 1.0x lua-mongo": (
        "cpu_ratio", ["find all tweets", "insert_many small", "insert_many large"], "<=", 1.0, ["mgconn (Lua)"],
        "lua-mongo"),
}


def external(cmd: List[str], env: Optional[Dict[str, str]] = None, cwd: Optional[Path] = None) -> List[Dict[str, Any]]:
    """Runs a benchmark program that prints one JSON result per line."""
    out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **(env or {})), cwd=cwd,
                         timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def derive(r: Dict[str, Any]) -> Dict[str, Any]:
    if "ops" in r and r.get("seconds"):
        r["ops_per_s"] = r["ops"] / r["seconds"]
        r["mb_per_s"] = r["bytes"] / r["seconds"] / 1e6
        r["cpu_us_per_op"] = r["cpu_seconds"] / r["ops"] * 1e6
    return r


def pair_rows(results: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    by_key = {(r["task"], r["client"]): r for r in results if "ops" in r}
    rows = []
    for (task, client), r in by_key.items():
        for peer in (by_key.get((task, name)) for name in PAIRS.get(client, [])):
            if peer:
                rows.append({"task": task, "client": client, "peer": peer["client"], "ours": r, "theirs": peer,
                             "cpu_ratio": r["cpu_us_per_op"] / peer["cpu_us_per_op"] if peer["cpu_us_per_op"] else None,
                             "mbps_ratio": r["mb_per_s"] / peer["mb_per_s"] if peer["mb_per_s"] else None,
                             "ops_ratio": r["ops_per_s"] / peer["ops_per_s"]})
    return rows


def check_targets(rows: List[Dict[str, Any]], stall: List[Dict[str, Any]]) -> List[str]:
    lines = []
    for label, (field, tasks, op, bound, clients, peer) in TARGETS.items():
        vals = [(row["task"], row["client"], row[field]) for row in rows
                if row["client"] in clients and (peer is None or row["peer"] == peer)
                and (tasks is None or row["task"] in tasks) and row[field] is not None]
        if not vals:
            lines.append(f"- {label}: not measured in this run")
            continue
        worst = max(vals, key=lambda v: v[2]) if op == "<=" else min(vals, key=lambda v: v[2])
        met = worst[2] <= bound if op == "<=" else worst[2] >= bound
        lines.append(f"- {label}: {'met' if met else 'MISSED'} (weakest: {worst[0]}, {worst[1]}: {worst[2]:.2f}x)")
    ours = next((s for s in stall if s["client"] == "mgconn"), None)
    if ours:
        met = ours["worst_ms"] < 1.0 and ours["p99_ms"] < 0.1
        lines.append(f"- host stall with the server killed: worst < 1 ms and p99 < 0.1 ms inside mgconn per frame: "
                     f"{'met' if met else 'MISSED'} (worst {ours['worst_ms']:.3f} ms, p99 {ours['p99_ms']:.3f} ms)")
    return lines


def missed_lua_tasks(rows: List[Dict[str, Any]]) -> List[str]:
    """The Lua tasks whose client CPU misses its target against lua-mongo, worst first."""
    missed = []
    for field, tasks, op, bound, clients, peer in TARGETS.values():
        if clients != ["mgconn (Lua)"] or field != "cpu_ratio":
            continue
        missed += [(row["cpu_ratio"], row["task"]) for row in rows if row["client"] in clients
                   and row["peer"] == peer and row["task"] in tasks and row["cpu_ratio"] is not None
                   and row["cpu_ratio"] > bound]
    return [task for _, task in sorted(missed, reverse=True)]


def profile_lua(cmd: List[str], env: Dict[str, str], tasks: List[str]) -> Dict[str, Any]:
    """perf profiles of TASKS through both Lua clients, or why there are none."""
    why = lua_profile.unavailable()
    if why:
        return {"unavailable": why, "tasks": tasks}
    profiles = {}
    for task in tasks:
        profiles[task] = {"mgconn": lua_profile.profile(cmd, env, task, "mgconn"),
                          "lm": lua_profile.profile(cmd, env, task, "lm")}
        print(f"bench: profiled {task}", flush=True)
    return {"tasks": tasks, "profiles": profiles}


def write_report(out_dir: Path, results: List[Dict[str, Any]], rows: List[Dict[str, Any]],
                 stall: List[Dict[str, Any]], targets: List[str], meta: Dict[str, Any],
                 profiles: Optional[Dict[str, Any]] = None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    profiles = profiles or {}
    saved = {task: {client: lua_profile.as_json(p) for client, p in pair.items()}
             for task, pair in profiles.get("profiles", {}).items()}
    (out_dir / "benchmarks.json").write_text(json.dumps({"meta": meta, "results": results, "stall": stall,
                                                         "profiles": saved}, indent=1, default=str))
    md = ["# Benchmarks", "",
          f"Measured by `scripts/bench.sh` (`tests/bench/run.py`) on {meta['when']}: {meta['machine']}; FerretDB "
          f"{meta['ferretdb']} ({meta['backend']}) on loopback, shared by every client; load average at the start "
          f"{meta['load']} (1 / 5 / 15 min); n = {meta['n']} (tweets found, "
          f"small documents inserted), {meta['large']} large documents per bulk insert, median of "
          f"{meta['repeat']} iterations. Ratios are mgconn / peer: for client CPU per operation lower is better, "
          "for MB/s and operations per second higher is better. Client CPU is the client process's own "
          "user+system time (getrusage), which leaves the server's work out.", "",
          "| task | mgconn client | peer | mgconn MB/s | peer MB/s | MB/s ratio | mgconn ops/s | peer ops/s | "
          "mgconn CPU µs/op | peer CPU µs/op | CPU ratio |",
          "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in sorted(rows, key=lambda r: (r["task"], r["client"])):
        o, t = row["ours"], row["theirs"]
        md.append(f"| {row['task']} | {row['client']} | {row['peer']} | {o['mb_per_s']:.1f} | {t['mb_per_s']:.1f} | "
                  f"{row['mbps_ratio']:.2f} | {o['ops_per_s']:.0f} | {t['ops_per_s']:.0f} | {o['cpu_us_per_op']:.1f} | "
                  f"{t['cpu_us_per_op']:.1f} | {row['cpu_ratio']:.2f} |")
    others = [r for r in results if "ops" in r and r["client"] not in PAIRS and r["client"] not in PEERS]
    if others:
        md += ["", "Other peers measured in the same run (against mgconn for Python's figure for the same task):", "",
               "| task | client | MB/s | ops/s | CPU µs/op |", "| --- | --- | ---: | ---: | ---: |"]
        for r in others:
            md.append(f"| {r['task']} | {r['client']} | {r['mb_per_s']:.1f} | {r['ops_per_s']:.0f} | "
                      f"{r['cpu_us_per_op']:.1f} |")
    split = [r for r in results if "host_thread_cpu_seconds" in r and r.get("ops") and
             r["task"] in ("find_one by _id", "insert_one small", "insert_many small", "find all tweets")]
    if split:
        md += ["", "Where a Lua client's CPU goes (same run): the host thread's own share (the Lua state's thread: "
               "what a game frame or an OpenResty worker pays), every other thread's (mgconn's workers and the "
               "driver's), and the context switches of the whole process, per operation. lua-mongo does everything "
               "on the host thread; mgconn hands each operation to a worker and back, one wake-up each way, and "
               "each wake-up is a context switch on a thread that was asleep:", "",
               "| task | client | CPU µs/op | host thread µs/op | other threads µs/op | context switches/op |",
               "| --- | --- | ---: | ---: | ---: | ---: |"]
        for r in sorted(split, key=lambda r: (r["task"], r["client"])):
            host = r["host_thread_cpu_seconds"] / r["ops"] * 1e6
            md.append(f"| {r['task']} | {r['client']} | {r['cpu_us_per_op']:.1f} | {host:.1f} | "
                      f"{max(0.0, r['cpu_us_per_op'] - host):.1f} | {r['context_switches'] / r['ops']:.2f} |")
    if profiles.get("tasks"):
        md += ["", "### Where the rest goes", "",
               "What mgconn's Lua client spends beyond lua-mongo's, and on what. For each Lua task that misses "
               "its target in the table above (a smoke run: insert_one small only, whatever its ratio), the same "
               "task runs again through each client alone under `perf record` (the process's CPU clock, one "
               f"sample per {lua_profile.PERIOD_NS // 1000} µs of CPU on any thread, switched on around the "
               "measured loop only; tests/bench/lua_profile.py), and each sample is charged to its thread and "
               "to the component it fell in. How to read the rows: kernel futex and eventfd, and the scheduler "
               "line under each table (which counts samples already in the kernel rows), are the hand-off of "
               "each operation to a worker and back, which lua-mongo, blocking its host thread, does not pay; "
               "the Lua interpreter and mgconn's Lua module are the Lua layer (mgconn's results and promises); "
               "the libraries below them are the work both clients do. mgconn's Lua module has libmgconn, "
               "libmongoc and libbson linked in, and its rows split them by symbol; lua-mongo uses the "
               "system's libmongoc 1.x and runs everything on the host thread, so it has one column. The "
               "profiled totals include perf's own cost (getrusage for the same profiled runs is next to them), "
               "most of it at context switches, where perf stops and restarts its timer: it weighs more on "
               "mgconn, which switches about three times as often. A row is a count of samples times the "
               "period, so a task with few operations (insert_many large) moves in steps of one sample, and "
               "a task whose whole measurement is a few milliseconds (insert_many small) can come out either "
               "way between runs.", ""]
        if profiles.get("unavailable"):
            md += [f"Not profiled in this run ({', '.join(profiles['tasks'])}): {profiles['unavailable']}.", ""]
        for task, pair in profiles.get("profiles", {}).items():
            md += lua_profile.report(task, pair["mgconn"], pair["lm"])
    elif profiles.get("skipped"):
        md += ["", "The missed Lua targets were not profiled in this run (`--skip profile`)."]
    if stall:
        md += ["", "Host stall: a 60 Hz loop issuing one find_one per frame while the server is killed at 1/3 and "
               "restarted at 2/3 of the run; time spent inside the client's calls per frame (mgconn: the find_one call and "
               "mgconn.poll(8), which runs at most 8 completions a frame, as a game host does):", "",
               "| client | frames | worst ms | p99 ms | median ms |", "| --- | ---: | ---: | ---: | ---: |"]
        for s in stall:
            md.append(f"| {s['client']} | {s['frames']} | {s['worst_ms']:.3f} | {s['p99_ms']:.3f} | {s['median_ms']:.4f} |")
    md += ["", "Targets (printed, not enforced):", ""] + targets + [""]
    if (out_dir / "benchmarks").exists() or meta.get("plots"):
        md += ["![client CPU per operation, mgconn / peer](benchmarks/cpu_ratio.png)", "",
               "![MB/s, mgconn / peer](benchmarks/mbps_ratio.png)", ""]
    (out_dir / "benchmarks.md").write_text("\n".join(md))


def plots(out_dir: Path, rows: List[Dict[str, Any]], meta: Dict[str, Any]) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    (out_dir / "benchmarks").mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=lambda r: (r["task"], r["client"], r["peer"]))
    labels = [f"{r['task']}: {r['client']} / {r['peer']}" for r in rows]
    colours = {"lua-mongo": "#cc6677", "libmongoc (C)": "#ddcc77", "pymongo": "#4477aa", "pymongo (async)": "#88ccee"}
    note = f"{meta['when']}; {meta['machine']}; FerretDB {meta['ferretdb']} ({meta['backend']}); n = {meta['n']}"
    for field, title, good in (("cpu_ratio", "client CPU per operation, mgconn / peer (lower is better)", 1.0),
                               ("mbps_ratio", "MB/s, mgconn / peer (higher is better)", 1.0)):
        fig, ax = plt.subplots(figsize=(11, max(3, 0.34 * len(rows) + 1)))
        values = [r[field] or 0 for r in rows]
        bars = ax.barh(labels, values, color=[colours.get(r["peer"], "#999999") for r in rows])
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], padding=3, fontsize=7)
        ax.axvline(good, color="black", linewidth=0.8)
        ax.set_xlim(0, max(values + [good]) * 1.15)
        ax.set_title(f"{title}\n{note}", fontsize=9)
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / "benchmarks" / f"{field}.png", dpi=110)
        plt.close(fig)
    return True


def machine() -> str:
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                     "")
    except OSError:
        pass
    return (f"{platform.machine()}{' ' + model if model else ''}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--smoke", action="store_true", help="every task, tiny counts")
    p.add_argument("--out", default=None, help="default: docs (build/bench-smoke with --smoke)")
    p.add_argument("--data", default=str(HERE / "data" / "driverbench"), help="the DriverBench documents")
    p.add_argument("--n", type=int, default=None)
    p.add_argument("--repeat", type=int, default=None)
    p.add_argument("--large", type=int, default=None, help="large documents in the bulk insert (default 10; smoke 0)")
    p.add_argument("--build", default=str(ROOT / "build"))
    p.add_argument("--skip", default="", help="comma-separated: codec,ops,lua,profile,node,stall (profile: the "
                   "perf profiles of the Lua tasks that miss their targets)")
    p.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite",
                   help="FerretDB's storage: sqlite (default) or postgresql, a scratch cluster of the system's "
                        "PostgreSQL started for the run (tests/bench/postgres.py), whose indexed _id lookups let "
                        "operations per second compare the clients rather than the server")
    a = p.parse_args()
    out = Path(a.out or (ROOT / "build" / "bench-smoke" if a.smoke else ROOT / "docs"))
    if a.smoke and out.resolve() == (ROOT / "docs").resolve():
        p.error("--smoke results are not for publishing: give --out another folder than docs/")
    if not (Path(a.data) / "flat_bson.json").is_file():
        p.error(f"--data {a.data}: no DriverBench documents there (flat_bson.json, tweet.json, ...)")
    n = a.n or (50 if a.smoke else 10000)
    repeat = a.repeat or (1 if a.smoke else 5)
    large = a.large if a.large is not None else (0 if a.smoke else 10)
    skip = set(filter(None, a.skip.split(",")))
    data = a.data
    results: List[Dict[str, Any]] = []
    stall: List[Dict[str, Any]] = []
    profiles: Dict[str, Any] = {}
    load_at_start = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    with contextlib.ExitStack() as stack:
        backend_args = None
        if a.backend == "postgresql":
            pg = stack.enter_context(LocalPostgres())
            backend_args = ["--handler=postgresql", f"--postgresql-url={pg.url}"]
        server = stack.enter_context(FerretDB(backend_args=backend_args))
        def step(name: str, fn: Any) -> None:
            if name in skip:
                return
            t0 = time.perf_counter()
            got = fn()
            print(f"bench: {name}: {len(got)} results in {time.perf_counter() - t0:.1f} s", flush=True)
            results.extend(got)

        step("codec", lambda: tasks_python.codec_tasks(data, n * 10, repeat))
        step("ops", lambda: tasks_python.op_tasks(server.uri, data, n, repeat, large))
        build = Path(a.build)
        lua_env = {"LUA_CPATH": f"{build}/lua/?.so;{build}/peers/lua-mongo/?.so;;", "LUA_PATH": f"{ROOT}/lua/?.lua;;"}
        args = [server.uri, data, str(n), str(repeat), str(large)]
        if "lua" not in skip:  # the lua-mongo peer, built once from its archive (scripts/bench.sh does too)
            subprocess.run(["bash", str(HERE / "peers" / "lua-mongo" / "build.sh"), str(build / "peers" / "lua-mongo")],
                           check=True, timeout=900)
        lua_cmd = ["lua5.4", str(HERE / "bench.lua"), *args]
        step("lua", lambda: external(lua_cmd, lua_env) + external([str(build / "tests" / "bench" / "libmongoc_bench"),
                                                                   *args]))
        if "lua" not in skip and "profile" in skip:
            profiles = {"skipped": True}
        elif "lua" not in skip:
            # smoke profiles one task whatever its ratio, so that the profiling never rots, with enough
            # operations for every component to be sampled
            lua_rows = pair_rows([derive(dict(r)) for r in results if r.get("client") in ("mgconn (Lua)", "lua-mongo")])
            if a.smoke:
                profiles = profile_lua(["lua5.4", str(HERE / "bench.lua"), server.uri, data, "300", "1", "0"], lua_env,
                                       ["insert_one small"])
            else:
                profiles = profile_lua(lua_cmd, lua_env, missed_lua_tasks(lua_rows))
        step("node", lambda: external(["node", str(HERE / "node" / "bench.js"), *args], cwd=HERE / "node"))
        if "stall" not in skip:
            stall = tasks_python.stall_task(server, 1.5 if a.smoke else 6.0)
            print("bench: stall done", flush=True)
    results = [derive(r) for r in results]
    rows = pair_rows(results)
    targets = check_targets(rows, stall)
    meta = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "n": n, "repeat": repeat, "large": large,
            "machine": machine(), "load": load_at_start, "ferretdb": "v1.24.2",
            "backend": {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[a.backend], "smoke": a.smoke}
    meta["plots"] = plots(out, rows, meta)
    write_report(out, results, rows, stall, targets, meta, profiles)
    print((out / "benchmarks.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
