"""The fault soak: DURATION seconds (default 60) of mixed Python and Lua work against one FerretDB
that is SIGKILLed every 5-10 s and restarted about a second later.

    python tests/soak/run.py [--seconds 60]

Fails unless: both workers finish (every operation resolved); no idempotent operation (insert,
find_one, $set update) failed and no insert is ambiguous: work in flight at a kill is sent again
after the restart; OutcomeUnknown comes only from the non-idempotent $inc updates (in flight at a
kill, not sent again); the collection holds every acknowledged insert, each once, and nothing else;
every document's counter lies between its acknowledged $inc updates and those plus the ones whose
outcome is unknown (none applied twice); and neither process grew more than 48 MiB after its first
10 s.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BUILD = Path(os.environ.get("MGCONN_BUILD_DIR", ROOT / "build"))
GROWTH_LIMIT_KIB = 48 * 1024

spec = importlib.util.spec_from_file_location("ferretdb_launcher", ROOT / "python" / "mgconn" / "ferretdb.py")
launcher = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
sys.modules["ferretdb_launcher"] = launcher
spec.loader.exec_module(launcher)  # type: ignore[union-attr]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()
    server = launcher.FerretDB().start()
    uri = server.uri + "soak"
    # The database and collection exist before the first kill: FerretDB cannot restart after a kill
    # in the middle of creating a database's file.
    from pymongo import MongoClient
    with MongoClient(uri, serverSelectionTimeoutMS=10000) as c:
        c.soak.soak.insert_one({"_id": "setup"})
        c.soak.soak.delete_one({"_id": "setup"})

    env = dict(os.environ, LUA_CPATH=f"{BUILD}/lua/?.so;;", LUA_PATH=f"{ROOT}/lua/?.lua;;")
    workers = {
        "python": subprocess.Popen([sys.executable, str(HERE / "worker.py"), uri, str(args.seconds), "py"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env),
        "lua": subprocess.Popen(["lua5.4", str(HERE / "worker.lua"), uri, str(args.seconds), "lua"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env),
    }
    kills: List[float] = []
    stop = threading.Event()

    def killer() -> None:
        rng = random.Random(3)
        t0 = time.monotonic()
        while not stop.wait(rng.uniform(5, 10)):
            if time.monotonic() - t0 > args.seconds - 3:
                stop.wait()  # stay: the server this thread started lives as long as the thread
                break
            server.kill()
            kills.append(time.monotonic() - t0)
            time.sleep(rng.uniform(0.5, 1.5))
            server.start()

    thread = threading.Thread(target=killer)
    thread.start()
    outputs: Dict[str, Any] = {}
    failures: List[str] = []
    for name, proc in workers.items():
        try:
            out, err = proc.communicate(timeout=args.seconds + 90)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            failures.append(f"{name}: did not finish: operations never resolved")
        if proc.returncode != 0:
            failures.append(f"{name}: exited with {proc.returncode}: {err[-2000:]}")
            continue
        outputs[name] = json.loads(out.strip().splitlines()[-1])
    stop.set()
    thread.join()
    # A server started by the killer thread dies with it (the launcher ties FerretDB to the thread that
    # started it, so that no test leaves one behind): the final count needs one of this thread's.
    server.kill()
    server.start()

    with MongoClient(uri, serverSelectionTimeoutMS=10000) as c:
        stored = {d["_id"]: d["n"] for d in c.soak.soak.find({})}
    server.stop()

    total_acked = total_found = 0
    for name, r in outputs.items():
        counts = r["counts"]
        if counts["ops"] != counts["ok"] + counts["failed"]:
            failures.append(f"{name}: {counts['ops']} operations, {counts['ok'] + counts['failed']} resolved")
        acked, ambiguous = set(r["acked"]), set(r["ambiguous"])
        mine = {k: v for k, v in stored.items() if k.startswith(("py-" if name == "python" else "lua-"))}
        lost = acked - set(mine)
        unexpected = set(mine) - acked - ambiguous
        if lost:
            failures.append(f"{name}: {len(lost)} acknowledged inserts lost, e.g. {sorted(lost)[:3]}")
        if unexpected:
            failures.append(f"{name}: {len(unexpected)} documents nobody inserted, e.g. {sorted(unexpected)[:3]}")
        ua, ub = r["updates_acked"], r["updates_ambiguous"]
        for _id, value in mine.items():
            low, high = ua.get(_id, 0) if isinstance(ua, dict) else 0, 0
            high = low + (ub.get(_id, 0) if isinstance(ub, dict) else 0)
            if not low <= value <= high:
                failures.append(f"{name}: {_id} counts {value} updates, {low} acknowledged (+{high - low} ambiguous)")
                break
        by_kind, errors_by_kind = r.get("by_kind", {}), r.get("errors_by_kind", {})
        for kind in ("insert", "find", "set"):
            if by_kind.get(kind, {}).get("failed", 0):
                failures.append(f"{name}: {by_kind[kind]['failed']} idempotent {kind} operations failed: "
                                f"{errors_by_kind.get(kind)}")
        if ambiguous:
            failures.append(f"{name}: {len(ambiguous)} inserts ambiguous (failed, maybe stored)")
        for kind, errs in errors_by_kind.items():
            for category in errs:
                if category in ("OutcomeUnknown", "OutcomeUnknownError") and kind != "inc":
                    failures.append(f"{name}: OutcomeUnknown for {kind}, which is idempotent")
                if category in ("Network", "NetworkError") and kind != "find":
                    failures.append(f"{name}: a {kind} failed as a bare NetworkError")
        print(f"  {name}: per kind {json.dumps(by_kind)}; errors {json.dumps(errors_by_kind)}")
        growth = r["rss_kib"]["end"] - r["rss_kib"].get("at_10s", r["rss_kib"]["end"])
        if growth > GROWTH_LIMIT_KIB:
            failures.append(f"{name}: grew {growth} KiB after its first 10 s")
        seen_kinds: Dict[str, Any] = {}
        for entry in r.get("timeline", []):
            t, kind, msg = entry if isinstance(entry, list) else entry.split(" ", 2)
            seen_kinds.setdefault(kind, (t, msg))
        for kind, (t, msg) in sorted(seen_kinds.items()):
            print(f"  {name}: first {kind} at {t} s: {msg}")
        total_acked += len(acked)
        total_found += len(acked & set(mine))
        print(f"{name}: {counts['ops']} operations ({counts['ok']} ok, {counts['failed']} failed: {r['errors']}); "
              f"inserts acknowledged {len(acked)}, found {len(acked & set(mine))}, ambiguous {len(ambiguous)} "
              f"(stored {len(set(mine) & ambiguous)}); RSS {r['rss_kib'].get('at_10s')} KiB at 10 s -> "
              f"{r['rss_kib']['end']} KiB at the end"
              + (f"; worst frame {r['max_frame_us'] / 1000:.2f} ms" if "max_frame_us" in r else ""))
    print(f"soak: {args.seconds:.0f} s, {len(kills)} SIGKILLs at {', '.join(f'{k:.1f}' for k in kills)} s; "
          f"{total_acked} inserts acknowledged, {total_found} found")
    if len(kills) < max(1, int(args.seconds // 10)):
        failures.append(f"only {len(kills)} kills")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
