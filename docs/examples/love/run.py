"""Runs the LÖVE example game headless (Xvfb, Mesa's software GL) against a FerretDB of its own,
kills the server in the middle of the game and restarts it, and checks what the game printed:
every save landed (and the stored state is the last one saved), and no frame's work inside mgconn
waited for anything and took 4 ms or more (a frame the scheduler only preempted, on a busy machine,
is reported, not failed: the game counts the thread's voluntary context switches). Writes the last frame as a PNG (--screenshot).

    python3 docs/examples/love/run.py [--build build] [--screenshot FILE] [--seconds 8]

The game loads mgconn built for LuaJIT as one file: CMake's build/lua-single-luajit/mgconn.so
(`-DMGCONN_LUA_VERSIONS=all` or `=luajit`).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

here = Path(__file__).resolve().parent
top = here.parents[2]
WORST_MS = 4.0


def load_ferretdb():
    spec = importlib.util.spec_from_file_location("mgconn_ferretdb", top / "python" / "mgconn" / "ferretdb.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default=str(top / "build"), help="the CMake build folder")
    p.add_argument("--screenshot", default=None, help="where to write the last frame (PNG)")
    p.add_argument("--seconds", type=float, default=8.0, help="seconds of play")
    args = p.parse_args()

    module = Path(args.build) / "lua-single-luajit" / "mgconn.so"
    if not module.exists():
        print(f"no {module}: configure with -DMGCONN_LUA_VERSIONS=all (or luajit) and build", file=sys.stderr)
        return 1
    for tool in ("love", "xvfb-run"):
        if not shutil.which(tool):
            print(f"no {tool} (Debian: apt-get install love xvfb xauth; scripts/setup.sh installs them)", file=sys.stderr)
            return 1

    work = Path(tempfile.mkdtemp(prefix="mgconn-love-"))
    screenshot = Path(args.screenshot).resolve() if args.screenshot else work / "last-frame.png"
    server = load_ferretdb().FerretDB(work / "db").start()
    env = dict(os.environ, MGCONN_URI=f"mongodb://127.0.0.1:{server.port}/lovegame",
               MGCONN_LUA_CPATH=str(module.parent / "?.so"), MGCONN_PLAY_SECONDS=str(args.seconds),
               MGCONN_SCREENSHOT=str(screenshot), LIBGL_ALWAYS_SOFTWARE="1", HOME=str(work))
    game = subprocess.Popen(["xvfb-run", "-a", "-s", "-screen 0 640x360x24", "love", str(here)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    opened = threading.Event()

    def read() -> None:
        assert game.stdout
        for line in game.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            print("  game:", line, flush=True)
            if line == "event open":
                opened.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not opened.wait(30):
            print("the game did not open its connection within 30 s")
            return 1
        time.sleep(min(2.0, args.seconds / 4))
        print(f"killing the server (SIGKILL) at {time.strftime('%H:%M:%S')}", flush=True)
        server.kill()
        time.sleep(1.5)
        server.start()
        print(f"server restarted at {time.strftime('%H:%M:%S')}", flush=True)
        game.wait(timeout=args.seconds + 60)
    except subprocess.TimeoutExpired:
        print("the game did not finish in time")
        game.kill()
        return 1
    finally:
        if game.poll() is None:
            game.kill()
        server.stop()
        reader.join(5)

    summary = next((line for line in lines if line.startswith("summary ")), None)
    if game.returncode != 0 or summary is None:
        print(f"the game exited with {game.returncode} without its summary")
        return 1
    figures = dict(re.findall(r"(\w+)=([\d.]+)", summary))
    saves, landed, failed = int(figures["saves"]), int(figures["landed"]), int(figures["failed"])
    stored, worst, frames = int(figures["stored_seq"]), float(figures["worst_ms"]), int(figures["frames"])
    problems = []
    if "event disconnected" not in lines or "event reconnected" not in lines:
        problems.append("the game did not see the outage (no disconnected and reconnected)")
    if saves < 10 or landed != saves or failed != 0:
        problems.append(f"{saves} saves issued, {landed} landed, {failed} failed: not every save landed")
    if stored != saves:
        problems.append(f"the stored state is save {stored}, not the last one ({saves})")
    waiting = float(figures["worst_waiting_ms"])
    if waiting >= WORST_MS:
        problems.append(f"a frame's work inside mgconn waited and took {waiting:.3f} ms (limit {WORST_MS} ms)")
    if not screenshot.exists() or screenshot.stat().st_size == 0:
        problems.append(f"no screenshot at {screenshot}")
    print(f"LÖVE game: {frames} frames, {saves} saves issued, {landed} landed, {failed} failed, stored state "
          f"{stored}; worst frame work in mgconn {worst:.3f} ms (of frames that waited {waiting:.3f} ms), "
          f"p99 {float(figures['p99_ms']):.3f} ms; "
          f"screenshot {screenshot if args.screenshot else 'taken'}")
    for problem in problems:
        print("FAILED:", problem)
    shutil.rmtree(work, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
