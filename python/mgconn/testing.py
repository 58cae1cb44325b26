"""pytest plugin (entry point ``pytest11``): a MongoDB to test against.

Fixtures:
    mongodb_uri: a URI with a database of its own for each test: ``$MGCONN_TEST_URI`` when set,
        otherwise a disposable FerretDB started once per session on a free loopback port.
    ferretdb: a FerretDB of the test's own (mgconn.ferretdb.FerretDB), to kill and restart.

Without a server to test against (FerretDB not built, a bad ``$MGCONN_FERRETDB``, no
``$MGCONN_TEST_URI``) every test that uses these fixtures fails saying what to do; with
``--mgconn-skip-without-server`` (or ``MGCONN_TEST_SKIP_WITHOUT_SERVER=1``) they are skipped instead.
"""
from __future__ import annotations

import os
import re
import uuid
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from .ferretdb import FerretDB


_SKIP_ENV = "MGCONN_TEST_SKIP_WITHOUT_SERVER"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Adds ``--mgconn-skip-without-server`` (pytest calls this hook)."""
    parser.addoption("--mgconn-skip-without-server", action="store_true",
                     help=f"skip the tests that need a MongoDB when there is none (also: {_SKIP_ENV}=1)")


def _start_ferretdb(config: pytest.Config) -> FerretDB:
    """A started FerretDB, or the test fails (or is skipped, when asked) saying how to get one."""
    try:
        return FerretDB().start()
    except (OSError, RuntimeError) as exc:
        reason = str(exc)
    message = (f"mgconn.testing: no MongoDB to test against ({reason}). Build FerretDB with scripts/setup.sh "
               "in mgconn's source tree (or set MGCONN_FERRETDB to a FerretDB binary), or set MGCONN_TEST_URI "
               "to a MongoDB server the tests may use (each test gets a database of its own). To skip these "
               f"tests instead: pytest --mgconn-skip-without-server, or {_SKIP_ENV}=1.")
    if config.getoption("mgconn_skip_without_server") or os.environ.get(_SKIP_ENV, "") not in ("", "0"):
        pytest.skip(message)
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def _mgconn_session_server(pytestconfig: pytest.Config) -> Iterator[str]:
    env = os.environ.get("MGCONN_TEST_URI")
    if env:
        yield env
        return
    server = _start_ferretdb(pytestconfig)
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
def ferretdb(pytestconfig: pytest.Config) -> Iterator[FerretDB]:
    """A FerretDB of this test's own: .uri, .port, .kill(), .restart(), .start()."""
    server = _start_ferretdb(pytestconfig)
    try:
        yield server
    finally:
        server.stop()
