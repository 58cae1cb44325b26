"""Shared helpers for the Python suite; the fixtures come from the mgconn.testing plugin."""
from __future__ import annotations

import asyncio
import socket
import time
from typing import Any, Callable, List, Optional

import pytest

import mgconn


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """Records a connection's events in order."""

    EVENTS = ("connecting", "connected", "open", "disconnecting", "disconnected", "close", "reconnected", "error")

    def __init__(self, conn: mgconn.Connection) -> None:
        self.names: List[str] = []
        self.errors: List[Any] = []
        for name in self.EVENTS:
            conn.on(name, self._make(name))

    def _make(self, name: str) -> Callable[..., None]:
        def listener(*args: Any) -> None:
            self.names.append(name)
            self.errors.append(args[0] if args else None)
        return listener

    async def wait_for(self, name: str, after: int = 0, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if name in self.names[after:]:
                return self.names.index(name, after)
            await asyncio.sleep(0.01)
        raise AssertionError(f"no {name!r} within {timeout} s; saw {self.names}")


@pytest.fixture
def run() -> Callable[..., Any]:
    """Runs a coroutine in a fresh event loop (the suite needs no asyncio plugin)."""
    def runner(coro: Any) -> Any:
        return asyncio.run(coro)
    return runner
