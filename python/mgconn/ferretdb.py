"""A disposable FerretDB for tests, examples and the demo: start, kill, restart, stop.

Standard library only, so that it runs before mgconn is built and from hosts that are not Python
(the Lua specs and the demo call its command line). FerretDB runs with its SQLite backend on a
127.0.0.1 port; its binary is ``$MGCONN_FERRETDB``, else ``.deps/bin/ferretdb`` in the source tree,
which ``scripts/setup.sh`` builds.

Command line::

    python3 ferretdb.py serve --data DIR [--port PORT]

prints ``ready <port> <pid> <uri>`` once the server answers ping, then keeps it running until it
receives SIGTERM or SIGINT, or its standard input closes (so a parent that dies takes it along).
"""
from __future__ import annotations

import os
import sys

if __name__ == "__main__" and sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    # Run as a script, this file's folder (the mgconn package) comes first on sys.path, and the
    # package's types.py would shadow the standard library's for every module imported below.
    del sys.path[0]

import argparse
import ctypes
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["FerretDB", "binary_path", "free_port"]

_PR_SET_PDEATHSIG = 1


def binary_path() -> str:
    """The FerretDB binary: ``$MGCONN_FERRETDB``, else ``.deps/bin/ferretdb`` of the source tree,
    else ``ferretdb`` on PATH.

    Raises:
        FileNotFoundError: none of them, or a ``$MGCONN_FERRETDB`` that is not an executable file
            (the message says how to get one).
    """
    env = os.environ.get("MGCONN_FERRETDB")
    if env:
        if not (os.path.isfile(env) and os.access(env, os.X_OK)):
            raise FileNotFoundError(
                f"MGCONN_FERRETDB={env}: {'not executable' if os.path.exists(env) else 'no such file'} (point it "
                "at a FerretDB binary, or unset it to use .deps/bin/ferretdb, which scripts/setup.sh builds)")
        return env
    import shutil

    # The source tree's .deps (from this file when run in place, else from the working directory up),
    # then PATH.
    for start in (Path(__file__).resolve(), Path.cwd().resolve() / "x"):
        for parent in start.parents:
            candidate = parent / ".deps" / "bin" / "ferretdb"
            if candidate.exists():
                return str(candidate)
    found = shutil.which("ferretdb")
    if found:
        return found
    raise FileNotFoundError(
        "FerretDB is not built: run scripts/setup.sh, or set MGCONN_FERRETDB to its binary")


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    # The server must not outlive whoever started it, even when that process is SIGKILLed.
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _answers_ping(port: int, timeout: float = 0.5) -> bool:
    """Sends an OP_MSG {ping: 1, $db: "admin"} and checks for an ok reply."""
    body = b""

    def cstring(s: str) -> bytes:
        return s.encode() + b"\0"

    doc = (b"\x10" + cstring("ping") + struct.pack("<i", 1) +
           b"\x02" + cstring("$db") + struct.pack("<i", 6) + b"admin\0")
    doc = struct.pack("<i", len(doc) + 5) + doc + b"\0"
    body = struct.pack("<I", 0) + b"\0" + doc
    msg = struct.pack("<iiii", 16 + len(body), 1, 0, 2013) + body
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(msg)
            head = s.recv(16)
            if len(head) < 16:
                return False
            length = struct.unpack("<i", head[:4])[0]
            rest = b""
            while len(rest) < length - 16:
                chunk = s.recv(length - 16 - len(rest))
                if not chunk:
                    return False
                rest += chunk
            return b"ok\0" in rest
    except OSError:
        return False


class FerretDB:
    """One FerretDB process (SQLite backend) with its data directory, on a 127.0.0.1 port:
    restartable on the same port with the same data. A context manager: ``with FerretDB() as db:``
    starts it and stops it.

    Args:
        data_dir: where its data lives (default: a new temporary directory, removed by stop()).
        port: the port (default: a free one).
        extra_args: more FerretDB flags (``--repl-set-name=rs0``, ``--listen-tls=...``, the
            ``--setup-*`` flags of authentication).
        backend_args: the storage flags, instead of SQLite in the data directory (e.g.
            ``["--handler=postgresql", "--postgresql-url=postgres://..."]``).
    """

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, port: int | None = None,
                 extra_args: list[str] | None = None, backend_args: list[str] | None = None) -> None:
        self.extra_args = list(extra_args or [])
        self.backend_args = list(backend_args) if backend_args is not None else None
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="mgconn-ferretdb-"))
        self.port = port or free_port()  # 0 or None: any free port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        """``mongodb://127.0.0.1:PORT/``: add a database name to it."""
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 20.0) -> "FerretDB":
        """Starts the server and waits until it answers ping; returns self.

        Raises:
            FileNotFoundError: no FerretDB binary (see binary_path()).
            RuntimeError: it exited at start (its log is named).
            TimeoutError: it did not answer within ``timeout`` seconds.
        """
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / "ferretdb.log", "ab")
        self.process = subprocess.Popen(
            [binary_path(), *(self.backend_args if self.backend_args is not None
                              else ["--handler=sqlite", f"--sqlite-url=file:{self.data_dir}/data/"]),
             f"--listen-addr=127.0.0.1:{self.port}", "--telemetry=disable", "--debug-addr=-",
             f"--state-dir={self.data_dir}", "--log-level=warn", *self.extra_args],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=_die_with_parent)
        log.close()
        deadline = time.monotonic() + timeout
        while not _answers_ping(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"FerretDB exited at start (code {self.process.returncode}); "
                                   f"see {self.data_dir / 'ferretdb.log'}")
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"FerretDB did not answer ping on port {self.port} within {timeout} s")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown, no goodbye to clients."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> "FerretDB":
        """Kills it if it runs and starts it again on the same port with the same data; returns self."""
        self.kill()
        return self.start()

    def stop(self) -> None:
        """Kills it and removes its data directory when it made that directory itself."""
        self.kill()
        if self._own_dir:
            import shutil
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "FerretDB":
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve(args: argparse.Namespace) -> int:
    import select

    server = FerretDB(args.data, args.port).start()
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    assert server.process is not None
    print(f"ready {server.port} {server.process.pid} {server.uri}", flush=True)
    watch = [] if args.no_stdin else [sys.stdin.fileno()]
    while not stop:
        try:
            readable, _, _ = select.select(watch, [], [], 0.2)
        except InterruptedError:
            continue
        if readable and not os.read(watch[0], 4096):
            break  # standard input closed: whoever started us is gone
        if server.process is None or server.process.poll() is not None:
            print("ferretdb exited", file=sys.stderr)
            return 1
    server.kill()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run FerretDB in the foreground until told to stop")
    s.add_argument("--data", required=True, help="data directory (kept across runs)")
    s.add_argument("--port", type=int, default=None, help="127.0.0.1 port (default: a free one)")
    s.add_argument("--no-stdin", action="store_true", help="do not stop when standard input closes")
    return _serve(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
