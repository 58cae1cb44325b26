"""Every Python example of the docs runs against a real server and prints what it promises."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "python"

EXPECT = {
    "quickstart.py": ["{'name': 'ada'}", "{'name': 'grace'}"],
    "retry.py": ["attempt 1 failed", "attempt 2 failed", "connected: True"],
    "events.py": ["event: connecting", "event: connected", "event: open", "event: disconnecting",
                  "event: disconnected", "event: close"],
    "multiple_connections.py": ["users: 1 orders: 1", ": True"],
    "multi_tenant_http.py": ["/a/acme -> acme: 2 visits", "/a/globex -> globex: 1 visits",
                             "/b/globex -> globex: 2 visits"],
    "script_sync.py": ["{'player': 'ada', 'score': 30}"],
}


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECT)


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_example_runs(name, mongodb_uri):
    out = subprocess.run([sys.executable, str(EXAMPLES / name), mongodb_uri], capture_output=True, text=True,
                         timeout=60, env=dict(os.environ))
    assert out.returncode == 0, out.stdout + out.stderr
    for line in EXPECT[name]:
        assert line in out.stdout, out.stdout + out.stderr
