"""Collections and models: PyMongo's method names and results, Mongoose's buffering and registry.

Every operation returns an :class:`mgconn.Future` at once; ``find`` and ``aggregate`` return a
:class:`Cursor` that fetches batch by batch. Nothing here blocks.
"""
from __future__ import annotations

import collections
import collections.abc
from typing import (TYPE_CHECKING, Any, AsyncIterator, Callable, Deque, Dict, Generator, Iterator, List, Mapping,
                    Optional, Sequence, Tuple, Union)

from . import _fork, _mgconn
from ._host import report_unraisable
from .futures import Future
from .operations import ReturnDocument, request_document
from .results import BulkWriteResult, DeleteResult, InsertManyResult, InsertOneResult, UpdateResult

if TYPE_CHECKING:
    from ._connection import Connection
    from .schema import Schema
    from .change_stream import ChangeStream
    from .session import ClientSession

Document = Dict[str, Any]
SortSpec = Union[None, str, Sequence[Tuple[str, int]], Mapping[str, int]]


def _sort_doc(sort: SortSpec) -> Optional[Dict[str, int]]:
    if sort is None:
        return None
    if isinstance(sort, str):
        return {sort: 1}
    if isinstance(sort, Mapping):
        return dict(sort)
    return {k: d for k, d in sort}


def _projection(projection: Any) -> Optional[Dict[str, Any]]:
    if projection is None or isinstance(projection, Mapping):
        return None if projection is None else dict(projection)
    return {field: 1 for field in projection}


def _with_session(options: Optional[Dict[str, Any]], session: "ClientSession") -> Dict[str, Any]:
    """The options with the session's number, which the core takes out and runs the op in."""
    from .session import ClientSession
    if not isinstance(session, ClientSession):
        raise TypeError(f"session must be a ClientSession (conn.start_session()), not {type(session).__name__}")
    out = dict(options or {})
    out.update(session._options())
    return out


def _options(**kw: Any) -> Optional[Dict[str, Any]]:
    opts = {k: v for k, v in kw.items() if v is not None}
    return opts or None


# What each operation's reply becomes. Module-level functions rather than a lambda per call: an
# operation then allocates nothing for its transform (the host thread's cost per call is what a game
# loop feels).
def _insert_one_result(op: Any) -> InsertOneResult:
    reply = op.reply()
    return InsertOneResult(reply["insertedId"], reply.get("resent", 0))


def _insert_many_result(op: Any) -> InsertManyResult:
    reply = op.reply()
    return InsertManyResult(reply["insertedIds"], reply.get("resent", 0))


def _update_result(op: Any) -> UpdateResult:
    return UpdateResult(op.reply())


def _delete_result(op: Any) -> DeleteResult:
    return DeleteResult(op.reply())


def _reply_document(op: Any) -> Optional[Document]:
    return op.reply()["document"]  # type: ignore[no-any-return]


def _reply_count(op: Any) -> int:
    return int(op.reply()["count"])


def _reply_names(op: Any) -> List[str]:
    return list(op.reply()["names"])


def _nothing(op: Any) -> None:
    return None


class _NaiveReplies:
    """An op whose reply decodes datetimes naive, in UTC (a connection made with tz_aware=False)."""

    __slots__ = ("_op",)

    def __init__(self, op: Any) -> None:
        self._op = op

    def reply(self) -> Any:
        return self._op.reply_naive()

    def cursor(self) -> Any:
        return self._op.cursor()


def naive_transform(transform: Optional[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """`transform` reading the op's reply with naive datetimes."""
    if transform is None:
        return lambda op: op.reply_naive()
    return lambda op: transform(_NaiveReplies(op))


def _bulk_write_result(op: Any) -> BulkWriteResult:
    return BulkWriteResult(op.reply())


def _reply_values(op: Any) -> List[Any]:
    return list(op.reply()["values"])


def _reply_indexes(op: Any) -> List[Document]:
    return list(op.reply()["indexes"])


def _index_name(index: Any) -> Any:
    """drop_index's argument: a name, or keys as create_index takes them (a dict or (key, dir) pairs)."""
    if isinstance(index, str):
        return index
    keys = _sort_doc(index)
    if not keys:
        raise TypeError(f"drop_index: the index must be its name or its keys, not {index!r}")
    return keys


def _count(method: str, name: str, value: Optional[int]) -> Optional[int]:
    """A count option (batch_size, skip, limit, max_time_ms) checked at the call, as PyMongo does,
    rather than refused by the server when the cursor is first read."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise TypeError(f"{method}(): {name} must be an int, not {type(value).__name__}")
    if value is not None and value < 0:
        raise ValueError(f"{method}(): {name} must be >= 0, got {value}")
    return value


def _document_list(method: str, name: str, value: Any) -> Any:
    """The documents or stages of insert_many / aggregate: a list (or another iterable), never a
    single document or a string."""
    if isinstance(value, (list, tuple)):
        return value
    if isinstance(value, (Mapping, str, bytes)) or not isinstance(value, collections.abc.Iterable):
        raise TypeError(f"{method}(): the argument '{name}' must be a list, not {type(value).__name__}")
    return list(value)


def _cursor_options(hint: Any, collation: Optional[Mapping[str, Any]], max_time_ms: Optional[int],
                    comment: Any, method: str = "find") -> Dict[str, Any]:
    _count(method, "max_time_ms", max_time_ms)
    return {"hint": _sort_doc(hint) if hint is not None and not isinstance(hint, str) else hint,
            "collation": dict(collation) if collation is not None else None, "maxTimeMS": max_time_ms,
            "comment": comment}


class Collection:
    """A collection of a connection's database, with PyMongo's method names and results.

    ``conn.collection(name)`` gives a raw one; a :class:`Model` is one with a schema. Every method
    returns at once: writes and counts a :class:`mgconn.Future` (``await`` it, or ``.result()``),
    ``find`` and ``aggregate`` a :class:`Cursor`. Operations are buffered while the connection is
    not open (see ``bufferCommands``, ``bufferTimeoutMS``). Documents are dicts (order kept);
    BSON types without a Python type are in :mod:`mgconn.types`.

    Errors come through the Future: DuplicateKeyError, WriteError and OperationError from the
    server, BufferTimeoutError, NotConnectedError, ConnectionClosedError, NetworkError,
    OutcomeUnknownError (a write whose connection failed before its reply and that was not sent
    again), DocumentTooLargeError, and a model's ValidationError. A value that cannot be encoded as BSON
    raises TypeError at the call, naming the argument and the key; nothing is sent.

    The reads and writes (inserts, updates, replaces, deletes, find, find_one, aggregate,
    distinct, count_documents, bulk_write, the find-and-modify methods) take ``session=`` (a
    :class:`~mgconn.ClientSession`): they then run in that session, in its transaction when one is
    in progress.
    """

    def __init__(self, ext: Any, connection: "Connection") -> None:
        self._ext = ext
        self._connection = connection

    def _rebind(self, ext: Any) -> None:
        """After a fork: the same collection of the connection remade in the child."""
        self._ext = ext

    @property
    def collection_name(self) -> str:
        """The collection's name (Mongoose's ``Model.collection.collectionName``)."""
        return str(self._ext.name)

    @property
    def name(self) -> str:
        """The collection's name (PyMongo's ``Collection.name``)."""
        return str(self._ext.name)

    @property
    def db(self) -> "Connection":
        """The :class:`Connection` this collection belongs to (Mongoose's ``Model.db``)."""
        return self._connection

    def _call(self, name: str, a: Any = None, b: Any = None, options: Optional[Dict[str, Any]] = None,
              transform: Optional[Callable[[Any], Any]] = None, session: Optional["ClientSession"] = None
              ) -> Future[Any]:
        if session is not None:
            options = _with_session(options, session)
        if not self._connection._tz_aware:
            transform = naive_transform(transform)
        fut: Future[Any] = Future(self._connection._host, transform)
        try:
            fut._op = self._ext.call(name, a, b, options, fut._on_op_done)
        except RuntimeError:  # made before os.fork(), first used in the child: issued again, remade
            if not _fork.remade_for(fut._host):
                raise
            fut = Future(self._connection._host, transform)
            fut._op = self._ext.call(name, a, b, options, fut._on_op_done)
        return fut

    # -- writes --
    def insert_one(self, document: Document, *, bypass_document_validation: Optional[bool] = None,
                   session: Optional["ClientSession"] = None) -> Future[InsertOneResult]:
        """Inserts one document; an ObjectId ``_id`` is added first when it has none.

        Args:
            document: the document.
            bypass_document_validation: skip the server's collection validator.

        Returns:
            A Future of :class:`InsertOneResult` (``inserted_id``).

        Raises:
            TypeError: a value that cannot be encoded, naming its key (at the call; nothing is
                sent).
            DuplicateKeyError: through the Future, on a unique index; also WriteError,
                DocumentTooLargeError, and a model's ValidationError.
        """
        options = None if bypass_document_validation is None else {"bypassDocumentValidation": bypass_document_validation}
        return self._call("insert_one", document, None, options, _insert_one_result, session=session)

    def insert_many(self, documents: Sequence[Document], *, ordered: bool = True,
                    session: Optional["ClientSession"] = None) -> Future[InsertManyResult]:
        """Inserts documents in one operation; each without an ``_id`` gets an ObjectId.

        Args:
            documents: a non-empty sequence (or iterable) of documents.
            ordered: stop at the first failed document (True, the default) or try every one.

        Returns:
            A Future of :class:`InsertManyResult` (``inserted_ids``, in order).

        Raises:
            ValueError: no documents, or an element that is not a document.
            TypeError: a value that cannot be encoded.
            DuplicateKeyError: through the Future, as for :meth:`insert_one` (a model's
                ValidationError names the document's index).
        """
        documents = _document_list("insert_many", "documents", documents)
        return self._call("insert_many", documents, None, None if ordered else {"ordered": False},
                          _insert_many_result, session=session)

    def update_one(self, filter: Document, update: Document, *, upsert: bool = False,
                   array_filters: Optional[List[Document]] = None,
                   session: Optional["ClientSession"] = None) -> Future[UpdateResult]:
        """Updates the first document matching ``filter``.

        Args:
            filter: the query (``{"_id": 1}``; ``{}`` matches any).
            update: update operators (``{"$set": {"name": "ada"}, "$inc": {"n": 1}}``) or a
                pipeline; a model checks ``$set``/``$setOnInsert`` values against its schema.
            upsert: insert a document when none matches.
            array_filters: filters for ``$[identifier]`` in the update.

        Returns:
            A Future of :class:`UpdateResult` (``matched_count``, ``modified_count``,
            ``upserted_id``).

        Raises:
            TypeError: a value that cannot be encoded.
            ValueError: through the Future, for an update without operators.
            WriteError: through the Future; also DuplicateKeyError, and a model's
                ValidationError.
        """
        return self._call("update_one", filter, update, _options(upsert=upsert or None, arrayFilters=array_filters),
                          _update_result, session=session)

    def update_many(self, filter: Document, update: Document, *, upsert: bool = False,
                    array_filters: Optional[List[Document]] = None,
                    session: Optional["ClientSession"] = None) -> Future[UpdateResult]:
        """Updates every document matching ``filter``; arguments, result and errors as for
        :meth:`update_one`."""
        return self._call("update_many", filter, update, _options(upsert=upsert or None, arrayFilters=array_filters),
                          _update_result, session=session)

    def replace_one(self, filter: Document, replacement: Document, *, upsert: bool = False,
                    session: Optional["ClientSession"] = None) -> Future[UpdateResult]:
        """Replaces the first document matching ``filter`` by ``replacement`` (no operators; its
        ``_id`` is kept).

        Args:
            filter: the query.
            replacement: the new document; a model checks it against its schema.
            upsert: insert it when none matches.

        Returns:
            A Future of :class:`UpdateResult`.

        Raises:
            TypeError: a value that cannot be encoded.
            WriteError: through the Future, as for :meth:`update_one`.
        """
        return self._call("replace_one", filter, replacement, _options(upsert=upsert or None),
                          _update_result, session=session)

    def delete_one(self, filter: Document, *, session: Optional["ClientSession"] = None) -> Future[DeleteResult]:
        """Deletes the first document matching ``filter``.

        Returns:
            A Future of :class:`DeleteResult` (``deleted_count``).
        """
        return self._call("delete_one", filter, None, None, _delete_result, session=session)

    def delete_many(self, filter: Document, *, session: Optional["ClientSession"] = None) -> Future[DeleteResult]:
        """Deletes every document matching ``filter`` (``{}``: all of them).

        Returns:
            A Future of :class:`DeleteResult` (``deleted_count``).
        """
        return self._call("delete_many", filter, None, None, _delete_result, session=session)

    # -- reads --
    def find_one(self, filter: Optional[Document] = None, projection: Any = None, *, sort: SortSpec = None,
                 skip: Optional[int] = None, session: Optional["ClientSession"] = None) -> Future[Optional[Document]]:
        """The first document matching ``filter``, or None.

        Args:
            filter: the query (default ``{}``).
            projection: a dict (``{"name": 1, "_id": 0}``) or a list of field names to return.
            sort: a field name, a list of ``(field, 1 | -1)`` pairs or a dict.
            skip: documents to skip first.

        Returns:
            A Future of the document (a dict) or None.

        Raises:
            TypeError: a value that cannot be encoded.
            OperationError: through the Future, for a query the server refuses.
        """
        options = None
        if projection is not None or sort is not None or skip is not None:
            options = _options(projection=_projection(projection), sort=_sort_doc(sort), skip=skip)
        return self._call("find_one", filter or {}, None, options, _reply_document, session=session)

    def find(self, filter: Optional[Document] = None, projection: Any = None, *, sort: SortSpec = None,
             skip: Optional[int] = None, limit: Optional[int] = None, batch_size: Optional[int] = None,
             hint: Any = None, collation: Optional[Mapping[str, Any]] = None, max_time_ms: Optional[int] = None,
             comment: Any = None, session: Optional["ClientSession"] = None) -> "Cursor":
        """A :class:`Cursor` over the documents matching ``filter``; nothing is sent until it is
        iterated.

        Args:
            filter: the query (default ``{}``).
            projection: a dict or a list of field names.
            sort: a field name, a list of ``(field, direction)`` pairs or a dict.
            skip: documents to skip.
            limit: at most this many (0 or None: no limit).
            batch_size: documents per batch from the server.
            hint: an index name or its keys.
            collation, max_time_ms, comment: sent to the server as PyMongo sends them.

        Returns:
            The Cursor: ``async for doc in cursor``, ``await cursor.to_list()``, ``await cursor``
            for the list of every document (Mongoose's habit), or plain ``for`` in a script (which
            blocks).
        """
        opts = _options(projection=_projection(projection), sort=_sort_doc(sort),
                        skip=_count("find", "skip", skip), limit=_count("find", "limit", limit) or None,
                        batchSize=_count("find", "batch_size", batch_size),
                        **_cursor_options(hint, collation, max_time_ms, comment))
        return Cursor(self, "find", filter or {}, opts, session=session)

    def aggregate(self, pipeline: Sequence[Document], *, batch_size: Optional[int] = None,
                  allow_disk_use: Optional[bool] = None, hint: Any = None,
                  collation: Optional[Mapping[str, Any]] = None, max_time_ms: Optional[int] = None,
                  comment: Any = None, session: Optional["ClientSession"] = None) -> "Cursor":
        """Runs an aggregation pipeline; the results come through a :class:`Cursor`, as for
        :meth:`find`.

        Args:
            pipeline: the stages (``[{"$match": {...}}, {"$group": {...}}]``).
            batch_size: documents per batch.
            allow_disk_use: let stages write temporary files on the server.
            hint, collation, max_time_ms, comment: as for :meth:`find`.
        """
        return Cursor(self, "aggregate", list(_document_list("aggregate", "pipeline", pipeline)),
                      _options(batchSize=_count("aggregate", "batch_size", batch_size), allowDiskUse=allow_disk_use,
                               **_cursor_options(hint, collation, max_time_ms, comment, "aggregate")), session=session)

    def distinct(self, key: str, filter: Optional[Document] = None, *,
                 session: Optional["ClientSession"] = None) -> Future[List[Any]]:
        """The distinct values of the field ``key`` among the documents matching ``filter``."""
        if not isinstance(key, str):
            raise TypeError(f"distinct(): the key must be a str, not {type(key).__name__}")
        return self._call("distinct", filter or {}, None, {"key": key}, _reply_values, session=session)

    def watch(self, pipeline: Optional[Sequence[Document]] = None, full_document: Optional[str] = None,
              full_document_before_change: Optional[str] = None, resume_after: Any = None, start_after: Any = None,
              start_at_operation_time: Any = None, batch_size: Optional[int] = None,
              max_await_time_ms: Optional[int] = None, show_expanded_events: Optional[bool] = None,
              collation: Any = None, comment: Any = None, session: Optional["ClientSession"] = None) -> "ChangeStream":
        """A change stream over this collection (PyMongo's ``watch``, Mongoose's ``Model.watch()``):
        see :class:`~mgconn.ChangeStream`. It opens at once; its changes are those from then on.

        Args:
            pipeline: stages after $changeStream (``[{"$match": {"operationType": "insert"}}]``); a
                ``$project`` must keep ``_id``, the resume token.
            full_document: "updateLookup" (the document after an update), "whenAvailable", "required".
            full_document_before_change: "whenAvailable", "required".
            resume_after, start_after: a resume token to start after; start_at_operation_time: a
                :class:`~mgconn.types.Timestamp`.
            batch_size, max_await_time_ms: events per batch; how long the server waits for one.
            show_expanded_events, collation, comment: as the server takes them.
            session: a :class:`~mgconn.ClientSession` to read in.

        Raises:
            OptionError: an unknown option, or one of the wrong type (at the call).
            NotSupportedError: through the first read, from a server without change streams.
        """
        from .change_stream import ChangeStream, watch_options
        options = watch_options(full_document, full_document_before_change, resume_after, start_after,
                                start_at_operation_time, batch_size, max_await_time_ms, show_expanded_events,
                                collation, comment)
        if session is not None:
            options = _with_session(options, session)
        stages = list(_document_list("watch", "pipeline", pipeline)) if pipeline else None
        naive = (lambda t: t) if self._connection._tz_aware else naive_transform
        return ChangeStream(self._connection._host, lambda cb: self._ext.call("watch", stages, None, options, cb),
                            naive)

    # -- find and modify --
    def find_one_and_update(self, filter: Document, update: Any, projection: Any = None, *, sort: SortSpec = None,
                            upsert: bool = False, return_document: bool = ReturnDocument.BEFORE,
                            array_filters: Optional[List[Document]] = None, hint: Any = None,
                            session: Optional["ClientSession"] = None) -> Future[Optional[Document]]:
        """Updates the first document matching ``filter`` (in ``sort`` order) and gives it as it was
        before the update, or after it with ``return_document=ReturnDocument.AFTER``; None when
        nothing matched (and nothing was upserted)."""
        return self._call("find_one_and_update", filter, update,
                          self._fam_options(projection, sort, upsert, return_document, hint,
                                            arrayFilters=array_filters),
                          _reply_document, session=session)

    def find_one_and_replace(self, filter: Document, replacement: Document, projection: Any = None, *,
                             sort: SortSpec = None, upsert: bool = False,
                             return_document: bool = ReturnDocument.BEFORE, hint: Any = None,
                             session: Optional["ClientSession"] = None) -> Future[Optional[Document]]:
        """Replaces the first document matching ``filter``; the result as :meth:`find_one_and_update`'s."""
        return self._call("find_one_and_replace", filter, replacement,
                          self._fam_options(projection, sort, upsert, return_document, hint), _reply_document,
                          session=session)

    def find_one_and_delete(self, filter: Document, projection: Any = None, *, sort: SortSpec = None,
                            hint: Any = None, session: Optional["ClientSession"] = None) -> Future[Optional[Document]]:
        """Deletes the first document matching ``filter`` and gives it; None when nothing matched."""
        return self._call("find_one_and_delete", filter, None,
                          self._fam_options(projection, sort, False, False, hint), _reply_document, session=session)

    @staticmethod
    def _fam_options(projection: Any, sort: SortSpec, upsert: bool, return_document: bool, hint: Any,
                     **more: Any) -> Optional[Dict[str, Any]]:
        return _options(fields=_projection(projection), sort=_sort_doc(sort), upsert=upsert or None,
                        new=True if return_document else None,
                        hint=_sort_doc(hint) if hint is not None and not isinstance(hint, str) else hint, **more)

    # -- bulk --
    def bulk_write(self, requests: Sequence[Any], *, ordered: bool = True,
                   session: Optional["ClientSession"] = None) -> Future[BulkWriteResult]:
        """Runs InsertOne, UpdateOne, UpdateMany, ReplaceOne, DeleteOne and DeleteMany requests in one
        go, in order (``ordered=False``: the server may run them in any order and goes on past a
        failure). A bulk write is never sent again after a fault: its outcome is then unknown."""
        docs = [request_document(r, i) for i, r in enumerate(requests)]
        return self._call("bulk_write", docs, None, None if ordered else {"ordered": False}, _bulk_write_result,
                          session=session)

    def count_documents(self, filter: Optional[Document] = None, *, skip: Optional[int] = None,
                        limit: Optional[int] = None, session: Optional["ClientSession"] = None) -> Future[int]:
        """How many documents match ``filter`` (an aggregation on the server: exact).

        Args:
            filter: the query (default ``{}``: every document).
            skip: documents to skip before counting.
            limit: count at most this many.

        Returns:
            A Future of the count.
        """
        return self._call("count_documents", filter or {}, None, _options(skip=skip, limit=limit),
                          _reply_count, session=session)

    def estimated_document_count(self) -> Future[int]:
        """The collection's document count from its metadata (fast, without a filter). Returns a
        Future of the count."""
        return self._call("estimated_document_count", None, None, None, _reply_count)

    # -- admin --
    def create_indexes(self, indexes: Sequence[Mapping[str, Any]]) -> Future[List[str]]:
        """Creates indexes in one command.

        Args:
            indexes: each either a key document (``{"email": 1}``) or an index model with its
                options (``{"key": {"email": 1}, "unique": True, "name": "by_email"}``); an index
                without a name gets one from its keys ("email_1").

        Returns:
            A Future of the index names, in order.

        Raises:
            ValueError: no index, or one without a key document.
            OperationError: through the Future, when the server refuses one (conflicting options,
                for one).
        """
        models = [dict(ix) if "key" in ix else {"key": dict(ix)} for ix in indexes]
        return self._call("create_indexes", models, None, None, _reply_names)

    def create_index(self, keys: Any, **kwargs: Any) -> Future[str]:
        """Creates one index (keys as a field name, (field, direction) pairs or a dict; options such as
        ``unique=True`` or ``name=...``) and gives its name."""
        model = {"key": _sort_doc(keys), **kwargs}
        return self._call("create_indexes", [model], None, None, lambda op: _reply_names(op)[0])

    def index_information(self) -> Future[Dict[str, Dict[str, Any]]]:
        """The indexes by name, each with its ``key`` as (field, direction) pairs, as PyMongo's."""
        def shape(op: Any) -> Dict[str, Dict[str, Any]]:
            out: Dict[str, Dict[str, Any]] = {}
            for ix in _reply_indexes(op):
                info = {k: v for k, v in ix.items() if k != "name"}
                info["key"] = list(ix["key"].items())
                out[ix["name"]] = info
            return out
        return self._call("list_indexes", None, None, None, shape)

    def drop(self) -> Future[None]:
        """Drops the collection (a collection that does not exist is not an error). Returns a
        Future of None."""
        return self._call("drop", None, None, None, _nothing)

    def list_indexes(self) -> Future[List[Document]]:
        """The collection's indexes as the server describes them (``{"v", "key", "name", ...}``), as a
        list (PyMongo gives a cursor over the same documents); none for a collection not there."""
        return self._call("list_indexes", None, None, None, _reply_indexes)

    def drop_index(self, index: Any) -> Future[None]:
        """Drops one index, named or given by its keys; IndexNotFound when there is none such."""
        return self._call("drop_indexes", None, None, {"index": _index_name(index)}, _nothing)

    def drop_indexes(self) -> Future[None]:
        """Drops every index but ``_id_``."""
        return self._call("drop_indexes", None, None, None, _nothing)


class Model(Collection):
    """A registered model: a :class:`Collection` with a schema, as Mongoose's Model.

    Made by :func:`mgconn.model` or :meth:`Connection.model`. Every collection method works on it
    (``User.insert_one(...)``, ``User.find(...)``), with the schema's options (bufferCommands,
    bufferTimeoutMS) and its declared field types checked on writes (ValidationError). Once the
    connection is open the model's init runs: autoCreate (the collection, with ``capped`` and
    ``collation``) then autoIndex (the schema's indexes), and the model's operations wait for its
    autoCreate. The ``index`` event reports the init's end.
    """

    def __init__(self, ext_model: Any, connection: "Connection", schema: "Schema") -> None:
        super().__init__(ext_model.collection, connection)
        self._model = ext_model
        self._schema = schema

    def _rebind(self, ext_model: Any) -> None:
        """After a fork: the model registered again on the connection remade in the child."""
        parent_model, self._model = self._model, ext_model
        self._ext = ext_model.collection
        for _, callback, once in parent_model.listeners():
            ext_model.on(callback, once)

    @property
    def model_name(self) -> str:
        """The model's name ("User")."""
        return str(self._model.name)

    @property
    def schema(self) -> "Schema":
        """The :class:`Schema` the model was registered with."""
        return self._schema

    def create_collection(self) -> Future[Collection]:
        """Creates this model's collection with the schema's ``capped`` and ``collation`` options
        (Mongoose's ``Model.createCollection()``, for models with autoCreate off).

        Returns:
            A Future of the :class:`Collection`; it fails with OperationError (NamespaceExists)
            when the collection exists.
        """
        options: Dict[str, Any] = {}
        capped = self._schema.options.get("capped")
        if isinstance(capped, Mapping):
            options.update(capped=True, **{k: capped[k] for k in ("size", "max") if k in capped})
        elif capped:
            options.update(capped=True, size=capped)
        if "collation" in self._schema.options:
            options["collation"] = self._schema.options["collation"]
        return self._connection.create_collection(self.collection_name, **options)

    def init(self) -> Future[None]:
        """A Future that completes when this model's init (autoCreate, then autoIndex) for the current
        open has finished (Mongoose's ``Model.init()``); it fails with the init's error (an index
        the server refused, for one)."""
        _fork.remade_for(self._connection._host)
        fut: Future[None] = Future(self._connection._host, _nothing)
        fut._op = self._model.init(fut._on_op_done)
        return fut

    def sync_indexes(self) -> Future[List[str]]:
        """Mongoose's syncIndexes: creates the schema's indexes, then drops every other index of the
        collection but ``_id_``; the names of those dropped."""
        fut: Future[List[str]] = Future(self._connection._host, lambda op: list(op.reply()["dropped"]))
        fut._op = self._model.sync_indexes(fut._on_op_done)
        return fut

    def on(self, event: str, callback: Callable[..., Any]) -> "Model":
        """Listens to the model's ``index`` event: ``callback(error_or_None)`` after each init.

        Returns:
            The model.

        Raises:
            ValueError: an event other than "index".
            TypeError: a callback that is not callable.
        """
        if event != "index":
            raise ValueError(f"a model's only event is 'index', not {event!r}")
        _fork.remade_for(self._connection._host)
        self._model.on(callback)
        return self

    def once(self, event: str, callback: Callable[..., Any]) -> "Model":
        """As :meth:`on`, for the next ``index`` event only. Returns the model."""
        if event != "index":
            raise ValueError(f"a model's only event is 'index', not {event!r}")
        _fork.remade_for(self._connection._host)
        self._model.on(callback, True)
        return self

    def off(self, event: str, callback: Callable[..., Any]) -> "Model":
        """Removes an ``index`` listener: the first one added with ``callback``. Returns the model."""
        _fork.remade_for(self._connection._host)
        self._model.off(callback)
        return self

    def __repr__(self) -> str:
        return f"<Model {self.model_name} -> {self.collection_name}>"


class Cursor:
    """The results of :meth:`Collection.find` or :meth:`Collection.aggregate`, fetched batch by
    batch (PyMongo's AsyncCursor).

    ``async for doc in cursor`` inside asyncio; ``await cursor.to_list()`` for all of them; plain
    ``for doc in cursor`` in a script (each new batch blocks, dispatching meanwhile). Nothing is
    sent before the first document is asked for. A failure (OperationError, BufferTimeoutError,
    NetworkError, ...) is raised by the iteration or the ``to_list()`` Future.
    """

    def __init__(self, collection: Collection, kind: str, arg: Any, options: Optional[Dict[str, Any]],
                 session: Optional["ClientSession"] = None) -> None:
        self._collection = collection
        self._kind = kind
        self._arg = arg
        self._options = options if session is None else _with_session(options, session)
        self._buffer: Deque[Document] = collections.deque()
        self._ext_cursor: Any = None
        self._started = False
        self._exhausted = False

    def _fetch(self) -> Future[None]:
        """The next batch into the buffer (the query itself the first time)."""
        take = self._take_batch if self._collection._connection._tz_aware else naive_transform(self._take_batch)
        fut: Future[None] = Future(self._collection._connection._host, take)
        try:
            if not self._started:
                fut._op = self._collection._ext.call(self._kind, self._arg, None, self._options, fut._on_op_done)
                self._started = True
            else:
                fut._op = self._ext_cursor.next(fut._on_op_done)
        except RuntimeError:  # made before os.fork(), first used in the child: the query is issued again,
            # remade; a server cursor the parent opened stays the parent's and is refused
            if not _fork.remade_for(fut._host) or self._started:
                raise
            return self._fetch()
        return fut

    def _take_batch(self, op: Any) -> None:
        reply = op.reply()
        self._buffer.extend(reply["batch"])
        if reply["done"]:
            self._exhausted = True
            self._ext_cursor = None
        elif self._ext_cursor is None:
            self._ext_cursor = op.cursor()

    def _more(self) -> bool:
        return not self._exhausted

    def __aiter__(self) -> AsyncIterator[Document]:
        return self._aiter()

    def __await__(self) -> Generator[Any, None, List[Document]]:
        """``await coll.find(...)`` is the list of every document (Mongoose's habit)."""
        return self.to_list().__await__()

    async def _aiter(self) -> AsyncIterator[Document]:
        while True:
            while self._buffer:
                yield self._buffer.popleft()
            if not self._more():
                return
            await self._fetch()

    def __iter__(self) -> Iterator[Document]:
        while True:
            while self._buffer:
                yield self._buffer.popleft()
            if not self._more():
                return
            self._fetch().result()

    def to_list(self, length: Optional[int] = None) -> Future[List[Document]]:
        """Every document (or the first ``length``) as a list, fetched batch after batch.

        Args:
            length: stop after this many (None: all); the cursor is closed then.

        Returns:
            A Future of the list of documents.
        """
        out: List[Document] = []
        _fork.remade_for(self._collection._connection._host)
        result: Future[List[Document]] = Future(self._collection._connection._host)

        def step(_: Optional[Future[None]] = None) -> None:
            if _ is not None and _.exception() is not None:
                result._set_exception(_.exception())  # type: ignore[arg-type]
                return
            if length is None:  # the whole batch at once: a Python step per document was a visible share
                out.extend(self._buffer)
                self._buffer.clear()
            while self._buffer and length is not None and len(out) < length:
                out.append(self._buffer.popleft())
            if (length is not None and len(out) >= length) or not self._more():
                self.close()
                result._set_result(out)
                return
            self._fetch().add_done_callback(step)

        step()
        return result

    def close(self) -> None:
        """Ends the cursor: the server forgets it (killCursors), what is buffered is dropped and
        nothing more is read. Calling it again does nothing."""
        if self._ext_cursor is not None:
            self._ext_cursor.close()
            self._ext_cursor = None
        self._buffer.clear()
        self._exhausted = True
