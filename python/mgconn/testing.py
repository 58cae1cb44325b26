"""pytest plugin (entry point ``pytest11``): a MongoDB to test against.

Fixtures:
  mongodb_uri  a URI with a database of its own for each test: ``$MGCONN_TEST_URI`` when set,
               otherwise a disposable FerretDB started once per session on a free loopback port.
  ferretdb     a FerretDB of the test's own (mgconn.ferretdb.FerretDB), to kill and restart.
"""
from __future__ import annotations

import os
import re
import uuid
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from .ferretdb import FerretDB


@pytest.fixture(scope="session")
def _mgconn_session_server() -> Iterator[str]:
    env = os.environ.get("MGCONN_TEST_URI")
    if env:
        yield env
        return
    server = FerretDB().start()
    try:
        yield server.uri
    finally:
        server.stop()


def _with_database(uri: str, db: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, "/" + db, parts.query, parts.fragment))


@pytest.fixture
def mongodb_uri(_mgconn_session_server: str, request: pytest.FixtureRequest) -> str:
    """A URI whose database is new for this test (a clean database per test)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:40]
    return _with_database(_mgconn_session_server, f"t_{name}_{uuid.uuid4().hex[:8]}")


@pytest.fixture
def ferretdb() -> Iterator[FerretDB]:
    """A FerretDB of this test's own: .uri, .port, .kill(), .restart(), .start()."""
    server = FerretDB().start()
    try:
        yield server
    finally:
        server.stop()
