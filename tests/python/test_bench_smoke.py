"""The benchmark in its smoke mode: every task and every peer with tiny counts, so it never rots."""
from __future__ import annotations

import json
import os
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
            "libmongoc (C)", "mongoose"} <= clients, clients
    assert {s["client"] for s in data["stall"]} == {"mgconn", "pymongo"}
    table = (tmp_path / "benchmarks.md").read_text()
    assert "| find_one by _id | mgconn (sync) | pymongo |" in table and "Targets" in table
