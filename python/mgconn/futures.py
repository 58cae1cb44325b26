"""mgconn.Future: the result of an operation.

Awaitable inside a running asyncio loop (it completes on that loop's thread), or waited for with
``.result(timeout)`` in scripts, which blocks with the GIL released while dispatching other
completions. Cancelling a task that awaits an operation cancels the operation if it has not been
sent yet.

A Future is also a coroutine (``send``/``throw``/``close``, registered as a
``collections.abc.Coroutine``), as PyMongo's async operations are: ``asyncio.create_task(op)``,
``TaskGroup.create_task(op)``, ``gather``, ``wait_for``, ``shield`` and ``as_completed`` take it as
it is; ``asyncio.wait`` takes tasks (``asyncio.create_task(op)``), as for any coroutine. Unlike an
``async def`` coroutine it may be awaited more than once and waited for with ``.result()``.
"""
from __future__ import annotations

import asyncio
import collections.abc
from typing import Any, Callable, Generator, Generic, List, Optional, TypeVar

from . import _fork
from ._host import Host, report_unraisable

T = TypeVar("T")

_PENDING, _DONE = 0, 1


class Future(Generic[T]):
    """The result of an operation, returned at once by every operation (PyMongo async's awaitable).

    ``await fut`` inside asyncio; ``fut.result(timeout)`` in a script (blocks, dispatching other
    completions, with the GIL released); ``fut.add_done_callback(fn)`` for callback style. It is
    also a coroutine, so ``asyncio.create_task(fut)``, ``gather``, ``wait_for``, ``shield`` and
    ``as_completed`` take it as it is; unlike a coroutine it may be awaited more than once.
    Cancelling a task that awaits it cancels the operation if it has not been sent yet.
    """

    __slots__ = ("_host", "_op", "_transform", "_state", "_result", "_exception", "_callbacks", "_aio", "_driver",
                 "__weakref__")

    def __init__(self, host: Host, transform: Optional[Callable[[Any], T]] = None) -> None:
        self._host = host
        self._op: Any = None
        self._transform = transform
        self._state = _PENDING
        self._result: Any = None
        self._exception: Optional[BaseException] = None
        self._callbacks: Optional[List[Callable[["Future[T]"], None]]] = None  # made by the first add
        self._aio: Optional[asyncio.Future[Any]] = None
        self._driver: Optional[Generator[Any, None, T]] = None  # the coroutine a Task drives, made on first send

    # -- completion (runs on the dispatching thread) --

    def _on_op_done(self, op: Any) -> None:
        err = op.error()
        if err is not None:
            self._set_exception(err)
            return
        try:
            value = op.reply() if self._transform is None else self._transform(op)
        except BaseException as exc:  # a transform that fails fails the future, not dispatch
            self._set_exception(exc)
            return
        self._set_result(value)

    def _set_result(self, value: Any) -> None:
        if self._state == _DONE:
            return
        self._state, self._result = _DONE, value
        self._finish()

    def _set_exception(self, exc: BaseException) -> None:
        if self._state == _DONE:
            return
        self._state, self._exception = _DONE, exc
        self._finish()

    def _finish(self) -> None:
        aio = self._aio
        if aio is not None and not aio.done():
            loop = aio.get_loop()
            if self._host.in_loop_thread():
                self._settle(aio)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(self._settle, aio)
        callbacks, self._callbacks = self._callbacks, None
        for cb in callbacks or ():
            try:
                cb(self)
            except Exception:
                report_unraisable("an mgconn.Future done callback", cb)

    def _settle(self, aio: "asyncio.Future[Any]") -> None:
        if aio.done():
            return
        if self._exception is not None:
            aio.set_exception(self._exception)
        else:
            aio.set_result(self._result)

    # -- the public surface --

    def done(self) -> bool:
        """True once the operation has finished (succeeded or failed) and its completion has run."""
        return self._state == _DONE

    def result(self, timeout: Optional[float] = None) -> T:
        """Waits until done, dispatching other completions meanwhile, and returns the result.

        Args:
            timeout: seconds to wait at most (None: no limit).

        Returns:
            The operation's result (an InsertOneResult, a document, a count, ...).

        Raises:
            MgconnError: the operation's error (a subclass: DuplicateKeyError,
                BufferTimeoutError, ServerSelectionError, ValidationError, ...).
            TimeoutError: ``timeout`` passed first (the operation goes on).
            RuntimeError: called inside the event loop that dispatches (``await`` there).
        """
        if self._state != _DONE:
            if self._host.in_loop_thread():
                raise RuntimeError("Future.result() would block the running event loop: use `await` instead")
            if self._op is not None:
                try:
                    self._op.wait(timeout)
                except RuntimeError:  # issued before os.fork(): the parent's, refused; a first use remakes
                    _fork.remade_for(self._host)
                    raise
            else:
                self._host.wait_until(self.done, timeout)
            if self._state != _DONE:
                raise TimeoutError(f"the operation did not finish within {timeout} s")
        if self._exception is not None:
            raise self._exception
        return self._result  # type: ignore[no-any-return]

    def exception(self) -> Optional[BaseException]:
        """The operation's error, or None (also while it is pending: this never waits)."""
        return self._exception

    def cancel(self) -> bool:
        """Cancels the operation if it has not been sent yet (still buffered or queued): it then
        fails with mgconn.CancelledError. Returns True when it was cancelled, False when it had
        been sent or had finished."""
        return bool(self._op is not None and self._state != _DONE and self._op.cancel())

    def add_done_callback(self, fn: Callable[["Future[T]"], None]) -> None:
        """Calls ``fn(future)`` on the host thread when the operation finishes (at once when it has).
        An exception it raises goes to ``sys.unraisablehook``.

        Raises:
            TypeError: ``fn`` is not callable.
        """
        if not callable(fn):
            raise TypeError(f"a done callback must be callable, not {type(fn).__name__}")
        if self._state == _DONE:
            fn(self)
        elif self._callbacks is None:
            self._callbacks = [fn]
        else:
            self._callbacks.append(fn)

    def __await__(self) -> Generator[Any, None, T]:
        # Bound even when already done: the loop that awaits is the one that dispatches from now on
        # (so a .result() inside it is refused rather than blocking it).
        loop = asyncio.get_running_loop()
        try:
            self._host.bind(loop)
        except RuntimeError:  # issued before os.fork(): only its result, if it has one, is here
            if self._state != _DONE or not self._host.runtime.foreign():
                raise
        if self._state != _DONE:
            if self._aio is None:
                self._aio = loop.create_future()
                self._aio.add_done_callback(self._aio_done)
            yield from self._aio.__await__()
        return self.result()

    def _aio_done(self, aio: "asyncio.Future[Any]") -> None:
        if aio.cancelled():
            self.cancel()  # the awaiting task was cancelled: drop the op if it was not sent

    # -- the coroutine protocol, for asyncio.create_task(op) and everything that makes a task of it --

    def send(self, value: Any) -> Any:
        """The coroutine protocol (for asyncio's tasks); not called by user code."""
        if self._driver is None:
            self._driver = self.__await__()
        return self._driver.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        """The coroutine protocol (for asyncio's tasks); not called by user code."""
        if self._driver is None:
            self._driver = self.__await__()
        if val is None and tb is None:
            return self._driver.throw(typ)
        return self._driver.throw(typ, val, tb)

    def close(self) -> None:
        """The coroutine protocol: closes the awaiting driver; the operation itself goes on."""
        if self._driver is not None:
            self._driver.close()


collections.abc.Coroutine.register(Future)
