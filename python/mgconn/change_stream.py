"""Change streams (PyMongo's ``ChangeStream``, Mongoose's ``Model.watch()``).

``coll.watch()`` (or ``conn.watch()`` for the whole database) returns a :class:`ChangeStream` at
once and opens it (the aggregate is sent, as PyMongo and Mongoose do): its changes are those from
then on. It resumes by itself: after a resumable error it opens the
stream again after the last event's resume token, and through an outage its next batch waits in
the buffer and is sent after the reconnect, so no event is lost or seen twice. A server without
change streams (a standalone server, FerretDB) fails the first read with
:class:`~mgconn.errors.NotSupportedError`.
"""
from __future__ import annotations

import collections
from typing import Any, AsyncIterator, Callable, Deque, Dict, Iterator, Optional

from .futures import Future

Document = Dict[str, Any]

# A read that failed for these leaves the stream open: the connection was down, and the next read
# resumes it after the last change seen.
_CONNECTION_DOWN = ("BufferTimeout", "Network", "ServerSelection", "NotConnected", "ConnectionClosed")


class ChangeStream:
    """The changes to a collection or a database, in order.

    ``async for change in stream`` inside asyncio; ``for change in stream`` in a script (each batch
    blocks, dispatching meanwhile); ``await stream.next()`` for one change; ``await
    stream.try_next()`` for one change or None when a batch brought none. ``resume_token`` is the
    token to start a later stream after (``watch(resume_after=...)``): the ``_id`` of the last change
    returned, or the server's token once a batch has been read to its end. ``close()`` (or ``with``
    / ``async with``) ends it. Iteration ends only when the stream does: it is closed, the server
    invalidates it (the collection was dropped), or a read fails with an error that is not the
    connection's (NotSupportedError, OperationError: the stream is closed then). A read that fails
    because the connection is down (BufferTimeoutError, NetworkError, ServerSelectionError) leaves
    the stream open: the next read resumes it.
    """

    def __init__(self, host: Any, start: Callable[[Callable[[Any], None]], Any], naive: Callable[[Any], Any]) -> None:
        self._host = host
        self._start = start
        self._naive = naive  # the connection's codec choice (tz_aware) applied to a batch
        self._buffer: Deque[Document] = collections.deque()
        self._ext_cursor: Any = None
        self._closed = False
        self._token: Optional[Document] = None
        self._batch_token: Optional[Document] = None
        self._in_flight: Optional[Future[None]] = None
        self._closed_by_caller = False
        # Opened at once, as PyMongo's and Mongoose's are: the changes from now on are the stream's,
        # and a bad option raises here. The first read takes this batch.
        self._pending: Optional[Future[None]] = self._fetch()

    @property
    def resume_token(self) -> Optional[Document]:
        """The token to resume after: the ``_id`` of the last change returned, or, once a batch is
        read to its end, the server's postBatchResumeToken; None before the first batch."""
        return self._token

    @property
    def alive(self) -> bool:
        """False once closed or ended by the server."""
        return not self._closed

    def _fetch(self) -> Future[None]:
        fut: Future[None] = Future(self._host, self._naive(self._take_batch))
        if self._ext_cursor is None:  # the first batch, or again after the stream could not be opened
            fut._op = self._start(fut._on_op_done)
        else:
            fut._op = self._ext_cursor.next(fut._on_op_done)
        self._in_flight = fut
        fut.add_done_callback(self._after_read)
        return fut

    def _after_read(self, fut: Future[None]) -> None:
        if self._in_flight is fut:
            self._in_flight = None
        err = fut.exception()
        if err is not None and getattr(err, "category", "") not in _CONNECTION_DOWN:
            self._end()  # the server refused the stream: reading on would only fail again

    def _take_batch(self, op: Any) -> None:
        reply = op.reply()
        if self._closed_by_caller:  # closed while this batch was on the way: its cursor goes too
            cursor = None if reply["done"] else op.cursor()
            if cursor is not None:
                cursor.close()
            return
        self._buffer.extend(reply["batch"])
        self._batch_token = reply.get("resumeToken") or self._batch_token
        if not self._buffer:
            self._token = self._batch_token
        if reply["done"]:  # invalidated (the collection was dropped or renamed)
            self._closed = True
            self._ext_cursor = None
        elif self._ext_cursor is None:
            self._ext_cursor = op.cursor()

    def _read(self) -> Future[None]:
        """The batch opened with the stream the first time, then the next one."""
        pending, self._pending = self._pending, None
        return pending if pending is not None else self._fetch()

    def _pop(self) -> Document:
        change = self._buffer.popleft()
        self._token = self._batch_token if not self._buffer else change.get("_id", self._token)
        return change

    def try_next(self) -> Future[Optional[Document]]:
        """The next change, or None when the next batch (up to maxAwaitTimeMS on the server) brought
        none. A Future."""
        result: Future[Optional[Document]] = Future(self._host)
        if self._buffer or (self._closed and self._pending is None):
            result._set_result(self._pop() if self._buffer else None)
            return result

        def done(f: Future[None]) -> None:
            if f.exception() is not None and not self._closed_by_caller:
                result._set_exception(f.exception())  # type: ignore[arg-type]
            else:
                result._set_result(self._pop() if self._buffer else None)
        self._read().add_done_callback(done)
        return result

    async def next(self) -> Document:
        """The next change, waiting for one (a coroutine: ``await stream.next()``; in a script,
        ``for change in stream``). Raises StopAsyncIteration when the stream has ended."""
        while not self._buffer:
            if self._closed and self._pending is None:
                raise StopAsyncIteration
            try:
                await self._read()
            except Exception:
                if self._closed_by_caller:  # close() ended the read it was waiting for
                    raise StopAsyncIteration from None
                raise
        return self._pop()

    def __aiter__(self) -> AsyncIterator[Document]:
        return self

    async def __anext__(self) -> Document:
        return await self.next()

    def __iter__(self) -> Iterator[Document]:
        while True:
            while self._buffer:
                yield self._pop()
            if self._closed and self._pending is None:
                return
            try:
                self._read().result()
            except Exception:
                if self._closed_by_caller:
                    return
                raise

    def close(self) -> None:
        """Ends the stream: the server forgets its cursor and nothing more is read. A read waiting
        for its batch ends too (``next()`` raises StopAsyncIteration, ``try_next()`` gives None)."""
        self._closed_by_caller = True
        self._pending = None
        if self._in_flight is not None and self._in_flight._op is not None:
            self._in_flight._op.cancel()  # not sent yet (waiting in the buffer): it ends now
        self._end()

    def _end(self) -> None:
        self._closed = True
        if self._ext_cursor is not None:
            self._ext_cursor.close()
            self._ext_cursor = None
        self._buffer.clear()

    def __enter__(self) -> "ChangeStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> "ChangeStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


def watch_options(full_document: Optional[str], full_document_before_change: Optional[str], resume_after: Any,
                  start_after: Any, start_at_operation_time: Any, batch_size: Optional[int],
                  max_await_time_ms: Optional[int], show_expanded_events: Optional[bool], collation: Any,
                  comment: Any) -> Optional[Dict[str, Any]]:
    """PyMongo's watch() arguments as the core's options."""
    pairs = {"fullDocument": full_document, "fullDocumentBeforeChange": full_document_before_change,
             "resumeAfter": resume_after, "startAfter": start_after, "startAtOperationTime": start_at_operation_time,
             "batchSize": batch_size, "maxAwaitTimeMS": max_await_time_ms, "showExpandedEvents": show_expanded_events,
             "collation": collation, "comment": comment}
    out = {k: v for k, v in pairs.items() if v is not None}
    return out or None
