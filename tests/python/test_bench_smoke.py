"""The benchmark in its smoke mode: every task and every peer with tiny counts, so it never rots."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("MGCONN_BUILD_DIR", ROOT / "build"))


@pytest.mark.skipif(not (BUILD / "tests" / "bench" / "libmongoc_bench").exists()
                    or not (ROOT / "tests" / "bench" / "node" / "node_modules").exists(),
                    reason="needs the CMake build and `npm ci` in tests/bench/node (scripts/test.sh does both)")
def test_benchmark_smoke_run_measures_every_peer(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "tests/bench/run.py"), "--smoke", "--out", str(tmp_path),
                          "--build", str(BUILD)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads((tmp_path / "benchmarks.json").read_text())
    clients = {r["client"] for r in data["results"]}
    assert {"mgconn", "pymongo", "mgconn (sync)", "mgconn (asyncio)", "pymongo (async)", "mgconn (Lua)",
            "lua-mongo", "libmongoc (C)", "mongoose"} <= clients, clients
    assert {s["client"] for s in data["stall"]} == {"mgconn", "pymongo"}
    table = (tmp_path / "benchmarks.md").read_text()
    assert "| find_one by _id | mgconn (sync) | pymongo |" in table and "Targets" in table
    for task in ("find_one by _id", "insert_one small", "find all tweets", "insert_many small"):
        assert f"| {task} | mgconn (Lua) | lua-mongo |" in table, table
    # the smoke run profiles one Lua task through both clients, where perf can sample this machine
    assert "### Where the rest goes" in table, table
    perf_works = shutil.which("perf") and subprocess.run(["perf", "stat", "-e", "task-clock", "true"],
                                                         capture_output=True).returncode == 0
    if not perf_works:
        assert "Not profiled in this run (insert_one small)" in table, table
        return
    profiled = data["profiles"]["insert_one small"]
    for client, name in (("mgconn", "mgconn (Lua)"), ("lm", "lua-mongo")):
        assert profiled[client]["client"] == name
        # samples were taken and charged to components, most of them on the benchmark's threads
        assert sum(profiled[client]["components"].values()) > 0.3 * profiled[client]["cpu_us_per_op"], profiled
    def share(client, thread):
        return sum(v for k, v in profiled[client]["components"].items() if k.startswith(thread + ": "))
    # mgconn's workers do the sending; lua-mongo does it all on the host thread
    assert share("mgconn", "other") > 0.2 * share("mgconn", "host"), profiled
    assert share("lm", "other") < 0.1 * share("lm", "host"), profiled
    assert "| kernel: poll |" in table and "#### insert_one small" in table, table


def test_benchmark_smoke_run_never_writes_over_the_published_results():
    published = {p: p.read_bytes() for p in [ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "benchmarks.json"]}
    out = subprocess.run([sys.executable, str(ROOT / "tests/bench/run.py"), "--smoke", "--out", str(ROOT / "docs")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "not for publishing" in out.stderr, out.stdout + out.stderr
    assert {p: p.read_bytes() for p in published} == published


def test_benchmark_names_a_missing_data_folder(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "tests/bench/run.py"), "--smoke", "--data", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and f"--data {tmp_path}: no DriverBench documents" in out.stderr, out.stderr
