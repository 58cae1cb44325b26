"""A throw-away PostgreSQL cluster for FerretDB's PostgreSQL backend (`run.py --backend postgresql`).

FerretDB's SQLite backend scans a collection for find_one by _id, so over SQLite the server, not the
client, sets every operations-per-second figure; over PostgreSQL the _id lookup uses an index. The
cluster lives in a scratch folder, listens on a free loopback port and its own unix-socket folder
(never the system's /var/run/postgresql), trusts local connections, and is removed on exit. PostgreSQL
refuses to run as root: as root, the cluster is owned and run by the `postgres` user (Debian's
package creates it), through runuser.
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import List, Optional

from mgconn.ferretdb import free_port


def _bindir() -> Path:
    """Debian installs the server programs outside PATH: /usr/lib/postgresql/<major>/bin."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent  # a link on PATH to the version's bin/, beside initdb
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if not versions:
        raise RuntimeError("--backend postgresql needs PostgreSQL's server programs (Debian: apt-get install "
                           "postgresql); no pg_ctl on PATH or in /usr/lib/postgresql/*/bin")
    return versions[-1].parent


class LocalPostgres:
    def __init__(self) -> None:
        self.bindir = _bindir()
        self.user: Optional[str] = "postgres" if os.geteuid() == 0 else None
        self.dir = Path(tempfile.mkdtemp(prefix="mgconn-bench-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.started = False

    def _run(self, *cmd: str) -> None:
        argv: List[str] = [str(self.bindir / cmd[0]), *cmd[1:]]
        if self.user:
            argv = ["runuser", "-u", self.user, "--", *argv]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed (code {out.returncode}):\n{out.stdout}\n{out.stderr}")

    @property
    def url(self) -> str:
        """The URL FerretDB's --postgresql-url takes (database `ferretdb`, made at start)."""
        who = self.user or pwd.getpwuid(os.geteuid()).pw_name
        return f"postgres://{who}@127.0.0.1:{self.port}/ferretdb"

    def start(self) -> "LocalPostgres":
        if self.user:
            os.chmod(self.dir, 0o755)
            shutil.chown(self.dir, self.user)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-E", "UTF8", "--no-sync")
        # fsync off: a scratch cluster for measuring clients; nothing in it outlives the run.
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.dir} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "postgres.log"), "-w", "-t", "60",
                  "-o", opts, "start")
        self.started = True
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "ferretdb")
        return self

    def stop(self) -> None:
        if self.started:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "LocalPostgres":
        try:
            return self.start()
        except BaseException:
            self.stop()  # a cluster started before a later step failed is not left running
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
