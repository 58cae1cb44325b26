"""Client sessions and transactions (PyMongo's ``ClientSession``, Mongoose's ``startSession()`` and
``connection.transaction()``).

A session orders its operations: each one that names it (``session=s``) runs after the one issued
before it, with causal consistency. Nothing is sent when a session or a transaction starts; the
first operation starts it on the server, so a server without transactions (a standalone server,
FerretDB) answers that operation with :class:`~mgconn.errors.NotSupportedError`. A session holds
one of the connection's ``maxPoolSize`` clients from its first operation until it ends: end it
(``end_session()``, ``with``/``async with``) when done.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, Mapping, Optional, TypeVar

from .errors import MgconnError
from .futures import Future

if TYPE_CHECKING:
    from ._connection import Connection

T = TypeVar("T")

# The drivers' convenient transaction API retries for 120 seconds at most (PyMongo's
# with_transaction, the Node driver's withTransaction).
_WITH_TRANSACTION_LIMIT_S = 120.0


def _txn_options(read_concern: Any, write_concern: Any, max_commit_time_ms: Optional[int]) -> Optional[Dict[str, Any]]:
    """Python's shorthands ("snapshot", "majority", 1) as the core's documents; a value of another
    type goes on as it is, and the core names it (OptionError)."""
    out: Dict[str, Any] = {}
    if read_concern is not None:
        out["readConcern"] = {"level": read_concern} if isinstance(read_concern, str) else (
            dict(read_concern) if isinstance(read_concern, Mapping) else read_concern)
    if write_concern is not None:
        out["writeConcern"] = {"w": write_concern} if isinstance(write_concern, (int, str)) and not isinstance(
            write_concern, bool) else (dict(write_concern) if isinstance(write_concern, Mapping) else write_concern)
    if max_commit_time_ms is not None:
        out["maxCommitTimeMS"] = max_commit_time_ms
    return out or None


def _has_label(exc: BaseException, label: str) -> bool:
    return isinstance(exc, MgconnError) and exc.has_error_label(label)


class _Transaction:
    """What :meth:`ClientSession.start_transaction` returns: ``async with`` commits at the end and
    aborts on an exception; ignoring it leaves the commit to the caller."""

    def __init__(self, session: "ClientSession") -> None:
        self._session = session

    async def __aenter__(self) -> "_Transaction":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self._session.in_transaction:
            return
        if exc_type is None:
            await self._session.commit_transaction()
        else:
            await self._session.abort_transaction()

    def __enter__(self) -> "_Transaction":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self._session.in_transaction:
            return
        if exc_type is None:
            self._session.commit_transaction().result()
        else:
            self._session.abort_transaction().result()


class ClientSession:
    """A session of a connection: ``s = conn.start_session()``, then ``session=s`` on operations.

    ``with conn.start_session() as s:`` (or ``async with``) ends it at the block's end. An operation
    given an ended session raises ValueError at the call. Not safe to share between threads (as
    PyMongo's); it does not survive ``os.fork()`` (an operation with it in the child raises
    RuntimeError).
    """

    def __init__(self, connection: "Connection", ext: Any) -> None:
        self._connection = connection
        self._ext = ext
        self._ended = False

    @property
    def session_id(self) -> int:
        """The number this session is known by to its connection."""
        return int(self._ext.id)

    @property
    def client(self) -> "Connection":
        """The connection the session belongs to."""
        return self._connection

    @property
    def in_transaction(self) -> bool:
        """True from :meth:`start_transaction` until a commit or abort is issued."""
        return bool(self._ext.in_transaction)

    @property
    def has_ended(self) -> bool:
        """True once :meth:`end_session` has been called."""
        return self._ended

    def _options(self) -> Dict[str, Any]:
        if self._ended:
            raise ValueError("the session has ended")
        if self._connection._host.runtime.foreign():
            raise RuntimeError("this session was started before os.fork(): a session does not survive a fork "
                               "(its server session is the parent's); start one in the child")
        return {"session": int(self._ext.id)}

    def start_transaction(self, read_concern: Any = None, write_concern: Any = None,
                          max_commit_time_ms: Optional[int] = None) -> _Transaction:
        """Starts a transaction: the operations issued with this session from now until
        :meth:`commit_transaction` or :meth:`abort_transaction` run in it.

        Args:
            read_concern: a level ("snapshot", "majority", ...) or ``{"level": ...}``.
            write_concern: ``w`` (1, "majority") or ``{"w": ..., "j": ..., "wtimeout": ...}``.
            max_commit_time_ms: the commit's time limit on the server.

        Returns:
            A context manager: ``async with s.start_transaction():`` commits at the end and aborts
            on an exception (``with`` in a script).

        Raises:
            ValueError: a transaction is in progress, or the session has ended.
            OptionError: an option of the wrong type.
        """
        self._options()
        self._ext.start_transaction(_txn_options(read_concern, write_concern, max_commit_time_ms))
        return _Transaction(self)

    def commit_transaction(self) -> Future[None]:
        """Commits the transaction after its operations. A Future; its error has the label
        ``UnknownTransactionCommitResult`` when the commit may be tried again (calling this again
        then commits the same transaction again).

        Raises:
            ValueError: no transaction was started, or the session has ended (at the call).
        """
        fut: Future[None] = Future(self._connection._host, lambda op: None)
        fut._op = self._ext.commit(fut._on_op_done)
        return fut

    def abort_transaction(self) -> Future[None]:
        """Aborts the transaction after its operations. A Future.

        Raises:
            ValueError: no transaction is in progress, or the session has ended (at the call).
        """
        fut: Future[None] = Future(self._connection._host, lambda op: None)
        fut._op = self._ext.abort(fut._on_op_done)
        return fut

    async def with_transaction(self, callback: Callable[["ClientSession"], Awaitable[T]],
                               read_concern: Any = None, write_concern: Any = None,
                               max_commit_time_ms: Optional[int] = None) -> T:
        """Runs ``await callback(session)`` in a transaction and commits it, as PyMongo's
        ``with_transaction``: the whole transaction again after an error labelled
        ``TransientTransactionError``, the commit again after ``UnknownTransactionCommitResult``,
        for 120 seconds at most. Returns what the callback returned; any other error aborts the
        transaction and is raised. A coroutine: ``await`` it (``asyncio.run`` in a script)."""
        start = time.monotonic()
        while True:
            self.start_transaction(read_concern, write_concern, max_commit_time_ms)
            try:
                result = await callback(self)
            except BaseException as exc:
                if self.in_transaction:
                    await self.abort_transaction()
                if _has_label(exc, "TransientTransactionError") and time.monotonic() - start < _WITH_TRANSACTION_LIMIT_S:
                    continue
                raise
            if not self.in_transaction:
                return result  # the callback committed or aborted it itself
            while True:
                try:
                    await self.commit_transaction()
                    return result
                except MgconnError as exc:
                    within = time.monotonic() - start < _WITH_TRANSACTION_LIMIT_S
                    if within and exc.has_error_label("UnknownTransactionCommitResult") and exc.code != 50:
                        continue  # 50: MaxTimeMSExpired, the commit's own limit
                    if within and exc.has_error_label("TransientTransactionError"):
                        break
                    raise

    def end_session(self) -> None:
        """Ends the session: operations it issued still run first, then a transaction still open
        is aborted and its client goes back to the pool."""
        if not self._ended:
            self._ended = True
            ext, self._ext = self._ext, _Ended(self._ext)
            del ext  # the handle is freed with the last reference to it

    def __enter__(self) -> "ClientSession":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.end_session()

    async def __aenter__(self) -> "ClientSession":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.end_session()


class _Ended:
    """What an ended session keeps: its number and state for messages, not its handle."""

    def __init__(self, ext: Any) -> None:
        self.id = int(ext.id)
        self.in_transaction = False

    def start_transaction(self, options: Any) -> None:
        raise ValueError("the session has ended")

    def commit(self, cb: Any) -> Any:
        raise ValueError("the session has ended")

    def abort(self, cb: Any) -> Any:
        raise ValueError("the session has ended")
