"""Where a Lua client's CPU goes, by profile: one task through one client under `perf record`.

bench.lua runs the task alone (MGCONN_BENCH_PROFILE) and switches perf on around the measured body only,
through perf's control fifos, so the set-up is not in the profile. perf samples the process's CPU clock
(task-clock) every PERIOD_NS of CPU on any of its threads, so a sample count times the period is CPU
time, comparable with the benchmark's getrusage figures. Each sample is charged to the thread it was
taken on (the host thread, whose id is the process id, or any other) and to a component: the library
its instruction sits in, or for the kernel, the system call its call chain passes through.
"""
from __future__ import annotations

import collections
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

PERIOD_NS = 200_000  # 5,000 samples per CPU-second: sampling more often costs this VM more than the work measured

# mgconn's Lua module has libmgconn, libmongoc and libbson linked in: (pattern on the symbol, component)
STATIC_MODULE = r"/mgconn/core\.so$|/mgconn\.so$"
STATIC_PARTS = [
    (r"_?mgconn_|mg_", "libmgconn"),
    (r"_?mongoc_|_?mcd_|mlib_|_?mcommon_(?!utf8)", "libmongoc"),
    (r"_?bson|jsonsl|_?mcommon_utf8", "libbson"),
]
# (pattern on the library's path, component); the first match wins
LIBRARIES = [
    (STATIC_MODULE, "mgconn's Lua module"),
    (r"libmgconn\.so", "libmgconn"),
    (r"/lua-mongo/mongo\.so$", "lua-mongo's module"),
    (r"libmongoc", "libmongoc"),
    (r"libbson", "libbson"),
    (r"liblua|luajit|/lua5\.\d$", "Lua interpreter"),
    (r"libc\.so|libc-|libpthread|ld-linux", "libc"),
]
# (pattern on a kernel frame's symbol, component), searched from the leaf up the kernel call chain
# a kernel frame of the scheduler putting a thread to sleep or waking one: what a hand-off between threads
# costs beyond the work itself, whichever system call it happens in
SWITCHING = r"__schedule|finish_task_switch|try_to_wake_up|ttwu_|wake_up_q|schedule_hrtimeout"
SYSCALLS = [
    (r"exc_page_fault|handle_mm_fault", "kernel: page faults"),
    (r"futex", "kernel: futex (a thread sleeping or waking another)"),
    (r"eventfd", "kernel: eventfd (waking the host)"),
    (r"poll|select|epoll", "kernel: poll"),
    (r"tcp_sendmsg|sendto|sendmsg|sock_write", "kernel: send"),
    (r"tcp_recvmsg|recvfrom|recvmsg|sock_read", "kernel: receive"),
    (r"pipe|ksys_read|ksys_write|vfs_read|vfs_write", "kernel: other read/write"),
    (r"clone|fork|exec|mmap|brk|munmap|madvise|exit", "kernel: process and memory"),
    (r"do_syscall_64", "kernel: other system calls"),
]


def unavailable() -> Optional[str]:
    """Why perf cannot profile here, or None when it can."""
    if not shutil.which("perf"):
        return "perf is not installed (Debian: linux-perf)"
    out = subprocess.run(["perf", "stat", "-e", "task-clock", "true"], capture_output=True, text=True)
    if out.returncode != 0:
        return f"perf cannot count here: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"
    return None


def component(sym: str, lib: str, kernel_chain: List[str]) -> str:
    """The component of a sample whose instruction is SYM in LIB; KERNEL_CHAIN: its kernel frames, leaf first."""
    if lib == "[kernel.kallsyms]":
        for frame in kernel_chain or [sym]:
            for pattern, name in SYSCALLS:
                if re.search(pattern, frame):
                    return name
        return "kernel: interrupts and scheduling"
    if re.search(STATIC_MODULE, lib):  # mgconn's module links libmgconn, libmongoc and libbson in
        for pattern, name in STATIC_PARTS:
            if re.match(pattern, sym):
                return name
    for pattern, name in LIBRARIES:
        if re.search(pattern, lib):
            return name
    return "other: " + os.path.basename(lib) if lib and lib != "[unknown]" else "other: unknown"


def parse(leaves: str, chains: str) -> List[Dict[str, Any]]:
    """`perf script -G -F comm,pid,tid,ip,sym,dso` (one line per sample: its instruction) and the same
    without -G (each sample's kernel call chain, empty for a sample taken in user space), in the same
    order -> [{comm, pid, tid, sym, lib, kernel_chain}]."""
    leaf = re.compile(r"^\s*(\S.*?)\s+(\d+)/(\d+)\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")
    head = re.compile(r"^(\S.*?)\s+(\d+)/(\d+)\s*$")
    frame = re.compile(r"^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")
    samples = []
    for line in leaves.splitlines():
        m = leaf.match(line)
        if m:
            samples.append({"comm": m.group(1), "pid": int(m.group(2)), "tid": int(m.group(3)), "sym": m.group(4),
                            "lib": m.group(5), "kernel_chain": []})
    index = -1
    for line in chains.splitlines():
        if head.match(line):
            index += 1
        elif index >= 0 and (m := frame.match(line)) and m.group(2) == "[kernel.kallsyms]":
            samples[index]["kernel_chain"].append(m.group(1))
    if index + 1 != len(samples):
        raise RuntimeError(f"perf script: {len(samples)} samples but {index + 1} call chains")
    return samples


def profile(cmd: List[str], env: Dict[str, str], task: str, client: str) -> Dict[str, Any]:
    """Runs bench.lua's TASK through CLIENT ("mgconn" or "lm") under perf; returns CPU µs per op by
    (thread, component) and by (thread, symbol), and the run's own JSON result."""
    with tempfile.TemporaryDirectory(prefix="mgconn-perf-") as tmp:
        ctl, ack, data = Path(tmp, "ctl"), Path(tmp, "ack"), Path(tmp, "perf.data")
        os.mkfifo(ctl)
        os.mkfifo(ack)
        run_env = dict(os.environ, **env, MGCONN_BENCH_PROFILE=f"{task}={client}", MGCONN_BENCH_PERF_CTL=str(ctl),
                       MGCONN_BENCH_PERF_ACK=str(ack))
        out = subprocess.run(["perf", "record", "-q", "-e", "task-clock", "-c", str(PERIOD_NS), "-g", "--kernel-callchains", "-D", "-1",
                              f"--control=fifo:{ctl},{ack}", "-o", str(data), "--", *cmd],
                             capture_output=True, text=True, env=run_env, timeout=1800)
        if out.returncode != 0:
            raise RuntimeError(f"perf record of {task} ({client}) failed:\n{out.stdout}\n{out.stderr}")
        result = next(json.loads(line) for line in out.stdout.splitlines() if line.startswith("{"))
        def script(*extra: str) -> str:
            return subprocess.run(["perf", "script", "-i", str(data), *extra, "-F", "comm,pid,tid,ip,sym,dso"],
                                  capture_output=True, text=True, timeout=1800, check=True).stdout
        samples = parse(script("-G"), script())
    # the benchmark's own process, the one with the most samples (the `cat` it starts to read the context
    # switches is another, and is named lua5.4 too between its fork and its exec)
    main = collections.Counter(s["pid"] for s in samples).most_common(1)[0][0] if samples else None
    by_component: Dict[Tuple[str, str], float] = collections.Counter()
    by_symbol: Dict[Tuple[str, str], float] = collections.Counter()
    switching: Dict[str, float] = collections.Counter()
    per_sample_us = PERIOD_NS / 1000 / (result["ops"] * result["iterations"])
    for s in samples:
        if s["pid"] != main:
            continue
        thread = "host" if s["tid"] == main else "other"
        by_component[(thread, component(s["sym"], s["lib"], s["kernel_chain"]))] += per_sample_us
        by_symbol[(thread, f"{s['sym']} ({os.path.basename(s['lib'])})")] += per_sample_us
        if any(re.search(SWITCHING, frame) for frame in s["kernel_chain"]):
            switching[thread] += per_sample_us
    return {"task": task, "client": result["client"], "ops": result["ops"], "cpu_us_per_op":
            result["cpu_seconds"] / result["ops"] * 1e6, "components": by_component, "symbols": by_symbol,
            "switching": switching}


def as_json(p: Dict[str, Any]) -> Dict[str, Any]:
    return dict(p, components={f"{t}: {c}": v for (t, c), v in p["components"].items()},
                symbols={f"{t}: {c}": v for (t, c), v in sorted(p["symbols"].items(), key=lambda kv: -kv[1])[:40]})


def report(task: str, ours: Dict[str, Any], theirs: Dict[str, Any], top: int = 6) -> List[str]:
    """The markdown for one task: CPU µs/op per component, mgconn's host thread and other threads against
    the peer's, and the symbols mgconn spends the most on."""
    def total(p: Dict[str, Any], thread: Optional[str] = None) -> float:
        return sum(v for (t, _), v in p["components"].items() if thread in (None, t))
    names = sorted({c for _, c in ours["components"]} | {c for _, c in theirs["components"]},
                   key=lambda c: -(sum(v for (_, k), v in ours["components"].items() if k == c)
                                   - sum(v for (_, k), v in theirs["components"].items() if k == c)))
    lines = [f"#### {task}", "",
             f"Profiled CPU µs/op: mgconn (Lua) {total(ours):.1f} (host thread {total(ours, 'host'):.1f}, other "
             f"threads {total(ours, 'other'):.1f}); lua-mongo {total(theirs):.1f} (getrusage in the same profiled "
             f"runs: {ours['cpu_us_per_op']:.1f} and {theirs['cpu_us_per_op']:.1f}). Rows by what mgconn spends "
             "beyond lua-mongo, largest first:", "",
             "| component | mgconn host thread | mgconn other threads | lua-mongo | mgconn − lua-mongo |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name in names:
        h, o = ours["components"].get(("host", name), 0.0), ours["components"].get(("other", name), 0.0)
        t = sum(v for (_, k), v in theirs["components"].items() if k == name)
        if max(h + o, t) < 0.1:
            continue
        lines.append(f"| {name} | {h:.1f} | {o:.1f} | {t:.1f} | {h + o - t:+.1f} |")
    lines += ["", f"Of the kernel rows, in the scheduler putting threads to sleep and waking them (any system call): mgconn "
              f"{ours['switching']['host']:.1f} on the host thread and {ours['switching']['other']:.1f} on the others, "
              f"lua-mongo {sum(theirs['switching'].values()):.1f}."]
    lines += ["", f"mgconn's {top} costliest functions (µs/op, thread): " + "; ".join(
        f"{sym} {v:.1f} ({thread})" for (thread, sym), v in
        sorted(ours["symbols"].items(), key=lambda kv: -kv[1])[:top]) + ".", ""]
    return lines
