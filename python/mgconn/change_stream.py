"""Change streams (PyMongo's ``ChangeStream``, Mongoose's ``Model.watch()``).

``coll.watch()`` (or ``conn.watch()`` for the whole database) returns a :class:`ChangeStream` at
once; nothing is sent until it is read. It resumes by itself: after a resumable error it opens the
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


class ChangeStream:
    """The changes to a collection or a database, in order.

    ``async for change in stream`` inside asyncio; ``for change in stream`` in a script (each batch
    blocks, dispatching meanwhile); ``await stream.next()`` for one change; ``await
    stream.try_next()`` for one change or None when a batch brought none. ``resume_token`` is the
    token to start a later stream after (``watch(resume_after=...)``). ``close()`` (or ``with`` /
    ``async with``) ends it. Iteration ends only when the stream does (it is closed, or the server
    invalidates it: the collection was dropped).
    """

    def __init__(self, host: Any, start: Callable[[Callable[[Any], None]], Any], naive: Callable[[Any], Any]) -> None:
        self._host = host
        self._start = start
        self._naive = naive  # the connection's codec choice (tz_aware) applied to a batch
        self._buffer: Deque[Document] = collections.deque()
        self._ext_cursor: Any = None
        self._started = False
        self._closed = False
        self._token: Optional[Document] = None

    @property
    def resume_token(self) -> Optional[Document]:
        """The token after the last batch read (the last event's ``_id`` or the server's
        postBatchResumeToken), or None before the first batch."""
        return self._token

    @property
    def alive(self) -> bool:
        """False once closed or ended by the server."""
        return not self._closed

    def _fetch(self) -> Future[None]:
        fut: Future[None] = Future(self._host, self._naive(self._take_batch))
        if not self._started:
            self._started = True
            fut._op = self._start(fut._on_op_done)
        else:
            fut._op = self._ext_cursor.next(fut._on_op_done)
        return fut

    def _take_batch(self, op: Any) -> None:
        reply = op.reply()
        self._buffer.extend(reply["batch"])
        if reply.get("resumeToken"):
            self._token = reply["resumeToken"]
        if reply["done"]:  # invalidated (the collection was dropped or renamed)
            self._closed = True
            self._ext_cursor = None
        elif self._ext_cursor is None:
            self._ext_cursor = op.cursor()

    def try_next(self) -> Future[Optional[Document]]:
        """The next change, or None when the next batch (up to maxAwaitTimeMS on the server) brought
        none. A Future."""
        result: Future[Optional[Document]] = Future(self._host)
        if self._buffer or self._closed:
            result._set_result(self._buffer.popleft() if self._buffer else None)
            return result

        def done(f: Future[None]) -> None:
            if f.exception() is not None:
                result._set_exception(f.exception())  # type: ignore[arg-type]
            else:
                result._set_result(self._buffer.popleft() if self._buffer else None)
        self._fetch().add_done_callback(done)
        return result

    async def next(self) -> Document:
        """The next change, waiting for one. Raises StopAsyncIteration when the stream has ended."""
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            await self._fetch()
        return self._buffer.popleft()

    def __aiter__(self) -> AsyncIterator[Document]:
        return self

    async def __anext__(self) -> Document:
        return await self.next()

    def __iter__(self) -> Iterator[Document]:
        while True:
            while self._buffer:
                yield self._buffer.popleft()
            if self._closed:
                return
            self._fetch().result()

    def close(self) -> None:
        """Ends the stream: the server forgets its cursor and nothing more is read."""
        if self._ext_cursor is not None:
            self._ext_cursor.close()
            self._ext_cursor = None
        self._buffer.clear()
        self._closed = True

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
