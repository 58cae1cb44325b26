"""Where completions and events run: the host thread that dispatches the runtime.

Inside asyncio the runtime's wake-up fd is watched with ``loop.add_reader``, so callbacks run on the
loop thread between tasks. Scripts without a loop dispatch while they wait (``Future.result()``) or by
calling ``mgconn.poll()``. One runtime serves one loop at a time: using a second running loop while
the first is alive is an error that says so.
"""
from __future__ import annotations

import asyncio
import select
import sys
import time
from typing import Any, Callable, Optional

from . import _fork, _mgconn


class Host:
    def __init__(self, runtime: "_mgconn.Runtime") -> None:
        self.runtime = runtime
        self.loop: Optional[asyncio.AbstractEventLoop] = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Makes `loop` the one that dispatches (once per loop)."""
        if self.loop is loop:
            return
        if _fork.remade_for(self):  # the parent's runtime: its fd never becomes readable here
            raise RuntimeError("this mgconn operation was issued before os.fork(), in the parent, and finishes "
                               "there only; the connections, models and collections are remade in this "
                               "process: issue it again on them")
        if self.loop is not None and not self.loop.is_closed() and self.loop.is_running():
            raise RuntimeError(
                "mgconn is already used from another running event loop; a runtime serves one loop at a "
                "time (create the connection inside the loop that uses it)")
        self.loop = loop
        loop.add_reader(self.runtime.fd(), self.dispatch)

    def dispatch(self, limit: int = 0) -> int:
        return int(self.runtime.dispatch(limit))

    def in_loop_thread(self) -> bool:
        # asyncio's own None-returning query: get_running_loop() raises outside a loop, and raising
        # and catching that on every blocking .result() was a visible share of a sync operation.
        running = asyncio._get_running_loop()
        return running is not None and running is self.loop

    def wait_until(self, is_done: Callable[[], bool], timeout: Optional[float]) -> bool:
        """Dispatches until is_done() or the timeout; the GIL is free while waiting in select()."""
        deadline = None if timeout is None else time.monotonic() + timeout
        fd = self.runtime.fd()
        while True:
            try:
                self.runtime.dispatch(0)
            except RuntimeError:  # the parent's runtime, in the child of a fork: a first use remakes
                _fork.remade_for(self)
                raise
            if is_done():
                return True
            left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if left <= 0:
                return False
            select.select([fd], [], [], left)


def report_unraisable(what: str, obj: Any) -> None:
    """A listener or callback that raised (call it in the `except` block): reported as Python reports
    such errors, through sys.unraisablehook with real UnraisableHookArgs ("Exception ignored in
    <what> <obj>" and the traceback on stderr by default), and dispatch goes on with the next one."""
    exc = sys.exc_info()[1]
    if exc is not None:
        _mgconn.report_unraisable(exc, what, obj)
