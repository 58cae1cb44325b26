"""The game-loop host (C embedding Lua) keeps its 60 Hz pace while the server is killed and restarted,
and every save lands once the server is back."""
from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("MGCONN_BUILD_DIR", ROOT / "build"))
HOST = BUILD / "docs" / "examples" / "game_host" / "game_host"


@pytest.mark.skipif(not HOST.exists(), reason="the game host is built by CMake (scripts/test.sh builds it)")
def test_game_host_keeps_its_frame_pace_through_a_server_kill(ferretdb):
    env = dict(os.environ, LUA_CPATH=f"{BUILD}/lua/?.so;;", LUA_PATH=f"{ROOT}/lua/?.lua;;")
    host = subprocess.Popen([str(HOST), str(ROOT / "docs/examples/game_host/game.lua"), ferretdb.uri + "game",
                             "240", "8"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    # The scenario's own timing: the server dies about a second into the 4 s run and returns a
    # second later, while the host keeps drawing frames.
    time.sleep(1.0)
    ferretdb.kill()
    time.sleep(1.0)
    ferretdb.start()
    out, _ = host.communicate(timeout=60)
    print(out)
    assert host.returncode == 0, out
    worst = float(re.search(r"worst ([0-9.]+) ms", out).group(1))
    assert worst < 8.0, out
    assert "failed 0" in out and "saves 24/24" in out, out
