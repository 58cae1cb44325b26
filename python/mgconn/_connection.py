"""Connections: Mongoose's connection object in Python spelling.

A connection is created at once and opens in the background; ``await conn`` (or
``conn.wait_open()`` in scripts) waits for ``open`` or raises the connect error. Events are
delivered on the host thread in order: ``connecting``, ``connected``, ``open``, ``disconnected``,
``reconnected``, ``disconnecting``, ``close``, ``error``.
"""
from __future__ import annotations

import types
import weakref
from typing import Any, Awaitable, Callable, Dict, Generator, List, Mapping, Optional, Tuple

from . import _fork, _mgconn
from ._host import Host, report_unraisable
from .collection import Collection, Model, naive_transform
from .monitoring import EVENTS as COMMAND_EVENTS, CommandListener
from .futures import Future
from .schema import Schema
from .session import ClientSession
from .change_stream import ChangeStream, watch_options



def codec_options(options: Dict[str, Any]) -> Optional[bool]:
    """Takes the codec option tz_aware out of the keyword options (the core does not know it):
    its value, or None when not given."""
    if "tz_aware" not in options:
        return None
    tz_aware = options.pop("tz_aware")
    if not isinstance(tz_aware, bool):
        raise TypeError(f"the option tz_aware must be True or False, not {tz_aware!r}")
    return tz_aware


def listener_option(options: Dict[str, Any]) -> List[CommandListener]:
    """Takes PyMongo's event_listeners out of the keyword options: the command listeners given."""
    given = options.pop("event_listeners", None) or []
    for listener in given:
        if not isinstance(listener, CommandListener):
            raise TypeError(f"event_listeners takes mgconn.monitoring.CommandListener objects, not "
                            f"{type(listener).__name__}")
    return list(given)


def keyword_options(options: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """Keyword arguments as option names: a trailing underscore, Python's way to spell a keyword that
    is reserved (``pass_=``), is dropped."""
    if not options:
        return None
    return {k[:-1] if k.endswith("_") and not k.endswith("__") else k: v for k, v in options.items()}


STATES = {0: "disconnected", 1: "connected", 2: "connecting", 3: "disconnecting", 99: "uninitialized"}


class Connection:
    """A connection to a MongoDB deployment with its own pool, as Mongoose's Connection.

    Made by :func:`mgconn.connect` (the default one) or :func:`mgconn.create_connection`; never
    constructed directly. It opens in the background: ``await conn`` (or ``async with conn:``)
    waits for ``open`` and raises the connect error; ``conn.wait_open()`` does the same in a
    script. Operations issued before it is open, or during an outage, are buffered (up to
    ``bufferTimeoutMS``) unless ``bufferCommands`` is off. Events (``on``/``once``/``off``) run on
    the host thread in order: connecting, connected, open, disconnected, reconnected,
    disconnecting, close, error.
    """

    def __init__(self, host: Host, ext: Any, registry: Optional[List["Connection"]] = None) -> None:
        self._host = host
        self._ext = ext
        self._models: Dict[str, Model] = {}
        self._children: Dict[str, "Connection"] = {}
        # What a fork needs to make this connection again in the child (see _remake_after_fork).
        self._open_args: Optional[Tuple[str, Optional[Dict[str, Any]]]] = None
        self._closed = False
        self._collections: "weakref.WeakSet[Collection]" = weakref.WeakSet()
        self._other_children: "weakref.WeakSet[Connection]" = weakref.WeakSet()
        self._parent: Optional[Tuple["Connection", str]] = None
        # The codec option tz_aware (PyMongo's): False gives datetimes naive, in UTC; mgconn's
        # default is True (aware, in UTC). A use_db child takes its parent's.
        self._tz_aware = True
        self._command_listeners: List[CommandListener] = []
        if registry is not None:
            registry.append(self)

    # Every method that reaches the runtime starts with _fork.remade_for(self._host): in the child of
    # a fork, the first use of a connection made before it remakes mgconn (see mgconn/_fork.py).

    # -- state --
    @property
    def ready_state(self) -> int:
        """0 disconnected, 1 connected, 2 connecting, 3 disconnecting, 99 uninitialized (Mongoose's
        ``readyState``)."""
        _fork.remade_for(self._host)
        return int(self._ext.ready_state)

    @property
    def name(self) -> str:
        """The database name: ``dbName``, else the URI's database, else "test" ("" before a URI is
        given)."""
        _fork.remade_for(self._host)
        return str(self._ext.name)

    @property
    def host(self) -> str:
        """The first host of the URI ("" before one is given)."""
        _fork.remade_for(self._host)
        return str(self._ext.host)

    @property
    def port(self) -> int:
        """The first port of the URI (27017 when it names none; 0 before a URI is given)."""
        _fork.remade_for(self._host)
        return int(self._ext.port)

    @property
    def id(self) -> int:
        """The connection's number, unique in the process (Mongoose's ``conn.id``)."""
        _fork.remade_for(self._host)
        return int(self._ext.id)

    def stats(self) -> Dict[str, Any]:
        """The connection's queue right now: ``{"inFlight": running operations, "waiting": buffered or
        queued ones, "peakInFlight": the most that ran at once, "maxPoolSize": the pool's size,
        "openCursors": queries running plus cursors left open on the server, "maxOpenCursors": the
        most of those at once (past it a further find waits; the guide's "Connection pools")}``."""
        _fork.remade_for(self._host)
        return dict(self._ext.stats())

    def __repr__(self) -> str:
        return f"<mgconn.Connection {self.id} {self.name!r} {STATES.get(self.ready_state, '?')}>"

    # -- events --
    def on(self, event: str, callback: Callable[..., Any]) -> "Connection":
        """Calls ``callback`` for every ``event``, on the host thread (``conn.on("error", fn)``).

        Args:
            event: connecting, connected, open, disconnecting, disconnected, close, reconnected
                or error.
            callback: called with no argument, except for ``error`` and ``disconnected``, which
                pass the error (or None). An exception it raises goes to ``sys.unraisablehook``
                and the next listener runs.

        Returns:
            The connection, for chaining.

        Raises:
            ValueError: an unknown event name.
            TypeError: a callback that is not callable.
        """
        _fork.remade_for(self._host)
        self._ext.on(event, callback)
        return self

    def once(self, event: str, callback: Callable[..., Any]) -> "Connection":
        """As :meth:`on`, for the next ``event`` only. Returns the connection."""
        _fork.remade_for(self._host)
        self._ext.on(event, callback, True)
        return self

    def off(self, event: str, callback: Callable[..., Any]) -> "Connection":
        """Removes a listener added with :meth:`on` or :meth:`once`: the first one added with
        ``callback`` (nothing when there is none). Returns the connection."""
        _fork.remade_for(self._host)
        self._ext.off(event, callback)
        return self

    # -- opening and closing --
    def open_uri(self, uri: str, **options: Any) -> "Connection":
        """Opens this connection (``conn.openUri()``): for one made without a URI, or closed.

        Args:
            uri: the connection string.
            **options: connection options, as for :func:`mgconn.connect`.

        Returns:
            The connection, awaitable (waits for ``open``).

        Raises:
            OptionError: a malformed URI, an unknown option or a bad value.
            ValueError: the connection is already open to another URI.
        """
        _fork.remade_for(self._host)
        options = dict(options)
        tz_aware = codec_options(options)
        listeners = listener_option(options)
        opts = keyword_options(options)
        self._ext.open(uri, opts)
        if tz_aware is not None:
            self._tz_aware = tz_aware
        for listener in listeners:
            self.add_command_listener(listener)
        self._open_args, self._closed = (uri, opts), False
        return self

    def as_promise(self) -> Future["Connection"]:
        """A Future that completes with the connection once it is open (``conn.asPromise()``).

        It fails with the initial connect error (ServerSelectionError, AuthenticationError, ...)
        or with ConnectionClosedError once the connection is closed (at once when it is closed
        already). ``await conn`` is the same.
        """
        _fork.remade_for(self._host)
        fut: Future["Connection"] = Future(self._host, lambda op: self)
        fut._op = self._ext.when_open(fut._on_op_done)
        return fut

    def __await__(self) -> Generator[Any, None, "Connection"]:
        return self.as_promise().__await__()

    def wait_open(self, timeout: Optional[float] = None) -> "Connection":
        """Blocks until the connection is open, for scripts without an event loop (dispatching other
        completions meanwhile). Not inside a running asyncio loop: ``await conn`` there.

        Args:
            timeout: seconds to wait at most (None: no limit).

        Returns:
            The connection.

        Raises:
            ServerSelectionError: no server could be reached (``err.reason`` says why, per server).
            AuthenticationError: the credentials were refused.
            TimeoutError: ``timeout`` passed first.
            RuntimeError: called inside the running event loop.
        """
        return self.as_promise().result(timeout)

    def close(self, force: bool = False) -> Future[None]:
        """Closes the connection: ``disconnecting``, ``disconnected``, then ``close``.

        Buffered operations fail with ConnectionClosedError; operations already sent finish first.

        Args:
            force: fail the operations in flight at once too.

        Returns:
            A Future that completes once the pool is gone.
        """
        _fork.remade_for(self._host)
        fut: Future[None] = Future(self._host, lambda op: None)
        fut._op = self._ext.close(force, fut._on_op_done)
        self._closed = True
        return fut

    async def __aenter__(self) -> "Connection":
        return await self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # -- models and collections --
    @property
    def models(self) -> Mapping[str, Model]:
        """This connection's model registry: a read-only mapping of name to :class:`Model`."""
        return types.MappingProxyType(self._models)

    def model(self, name: str, schema: Optional[Schema] = None, collection: Optional[str] = None) -> Model:
        """Registers (with a schema) or looks up (without) the model ``name`` on this connection.

        Args:
            name: the model name ("User": its collection is "users").
            schema: the :class:`Schema`; without one, the registered model is returned.
            collection: a collection name instead of the schema's option or the pluralised name.

        Returns:
            The :class:`Model`; the same object for the same name and schema. Once the connection
            is open, the model's init runs (autoCreate, then autoIndex).

        Raises:
            MissingSchemaError: ``Schema hasn't been registered for model "User".``
            OverwriteModelError: ``Cannot overwrite `User` model once compiled.`` (unless the
                ``overwriteModels`` setting is on, which replaces it).
        """
        _fork.remade_for(self._host)
        if schema is None:
            if name in self._models:
                return self._models[name]
            self._ext.model(name)  # raises MissingSchemaError
        assert schema is not None
        known = self._models.get(name)
        ext_model = self._ext.model(name, schema._ext, collection)  # raises OverwriteModelError
        if known is not None and known.schema is schema and (collection is None or collection == known.collection_name):
            return known
        m = Model(ext_model, self, schema)
        self._models[name] = m
        return m

    def delete_model(self, name: str) -> "Connection":
        """Removes ``name`` from the registry (the Model objects handed out go on working).

        Returns:
            The connection.

        Raises:
            MissingSchemaError: no model of that name is registered.
        """
        _fork.remade_for(self._host)
        self._ext.delete_model(name)
        self._models.pop(name, None)
        return self

    # -- command monitoring --
    def add_command_listener(self, listener: CommandListener) -> "Connection":
        """Adds a command listener (PyMongo's CommandListener): started / succeeded / failed for
        every command this connection's pool sends, its use_db children's included."""
        if not isinstance(listener, CommandListener):
            raise TypeError(f"a command listener is a mgconn.monitoring.CommandListener, not {type(listener).__name__}")
        if self._parent is not None:
            raise ValueError("command listeners are added to the connection itself, not to a use_db child "
                             "(the child's commands reach its connection's listeners)")
        if not self._command_listeners:
            self._ext.set_command_listener(self._on_command)
        self._command_listeners.append(listener)
        return self

    def remove_command_listener(self, listener: CommandListener) -> "Connection":
        """Removes a command listener added with :meth:`add_command_listener` (no error when it was
        not added); with none left, the pool's commands are no longer copied for the host."""
        self._command_listeners = [x for x in self._command_listeners if x is not listener]
        if not self._command_listeners:
            self._ext.set_command_listener(None)
        return self

    def _on_command(self, raw: Dict[str, Any]) -> None:
        kind = raw["type"]
        event = COMMAND_EVENTS[kind](raw)
        for listener in list(self._command_listeners):
            try:
                getattr(listener, kind)(event)
            except Exception:
                report_unraisable("an mgconn command listener", listener)

    def model_names(self) -> List[str]:
        """The names of the models registered on this connection, in registration order (Mongoose's
        modelNames())."""
        return list(self._models)

    def collection(self, name: str) -> Collection:
        """A raw :class:`Collection` of this connection's database (PyMongo's ``db[name]``): buffered
        like a model's operations, without a schema.

        Raises:
            ValueError: an empty name, or one containing "$" or a NUL.
        """
        _fork.remade_for(self._host)
        coll = Collection(self._ext.collection(name), self)
        self._collections.add(coll)
        return coll

    # -- sessions --
    def start_session(self, *, causal_consistency: Optional[bool] = None,
                      default_transaction_options: Optional[Dict[str, Any]] = None) -> ClientSession:
        """Starts a session (PyMongo's ``start_session``, Mongoose's ``startSession()``); pass it as
        ``session=`` to operations. Sends nothing: its first operation starts it.

        Args:
            causal_consistency: reads see the session's own writes (default True).
            default_transaction_options: ``{"readConcern": {"level": ...}, "writeConcern":
                {"w": ...}, "maxCommitTimeMS": n}`` for its transactions.

        Returns:
            A :class:`ClientSession`; ``with``/``async with`` ends it.
        """
        _fork.remade_for(self._host)
        options: Dict[str, Any] = {}
        if causal_consistency is not None:
            options["causalConsistency"] = causal_consistency
        if default_transaction_options is not None:
            options["defaultTransactionOptions"] = dict(default_transaction_options)
        return ClientSession(self, self._ext.start_session(options or None))

    async def transaction(self, callback: Callable[[ClientSession], Awaitable[Any]], **options: Any) -> Any:
        """Mongoose's ``connection.transaction(fn)``: ``await callback(session)`` in a transaction
        on a new session, committed, retried as :meth:`ClientSession.with_transaction` does; the
        session ends after. Returns what the callback returned. ``options``: read_concern,
        write_concern, max_commit_time_ms. A coroutine: ``await`` it (``asyncio.run`` in a
        script)."""
        with self.start_session() as session:
            return await session.with_transaction(callback, **options)

    def use_db(self, name: str, use_cache: bool = False) -> "Connection":
        """A connection to another database on the same pool (``conn.useDb()``), with its own model
        registry and the same events; for multi-tenant use.

        Args:
            name: the database name.
            use_cache: return the same child for the same name (Mongoose's ``useCache``).

        Returns:
            A :class:`Connection`; closing the parent closes it.

        Raises:
            ValueError: an empty or invalid database name.
        """
        _fork.remade_for(self._host)
        if use_cache and name in self._children:
            return self._children[name]
        child = Connection(self._host, self._ext.use_db(name, use_cache))
        child._tz_aware = self._tz_aware
        child._parent = (self, name)
        if use_cache:
            self._children[name] = child
        else:
            self._other_children.add(child)
        return child

    # -- fork --
    def _remake_after_fork(self, host: Host, ext: Optional[Any] = None) -> None:
        """In the child of a fork: the same connection on the child's runtime. It opens again (with its
        URI and options) unless it was closed; its models, collections and use_db children are
        remade on it. Operations issued before the fork belong to the parent and stay there."""
        self._host = host
        parent_ext = self._ext
        if ext is None:
            ext = _mgconn.Connection(host.runtime)
            if self._open_args is not None and not self._closed:
                ext.open(*self._open_args)
        self._ext = ext
        for event, callback, once in parent_ext.listeners():
            ext.on(event, callback, once)
        for name, m in self._models.items():
            m._rebind(ext.model(name, m.schema._ext, m.collection_name))
        for coll in list(self._collections):
            coll._rebind(ext.collection(coll.name))
        for name, child in self._children.items():
            child._remake_after_fork(host, ext.use_db(name, True))
        for child in list(self._other_children):
            if child._parent is not None:
                child._remake_after_fork(host, ext.use_db(child._parent[1], False))

    # -- database operations --
    def run_command(self, command: Mapping[str, Any], db: Optional[str] = None) -> Future[Dict[str, Any]]:
        """Runs a database command (PyMongo's ``db.command()``), buffered like every operation.

        Args:
            command: the command document, its name first (``{"ping": 1}``; keep the order).
            db: the database to run it in (default: this connection's).

        Returns:
            A Future of the server's reply document.

        Raises:
            ValueError: an empty command.
            OperationError: through the Future, when the server refuses it (with its ``code``
                and ``code_name``).
        """
        _fork.remade_for(self._host)
        fut: Future[Dict[str, Any]] = Future(self._host, None if self._tz_aware else naive_transform(None))
        fut._op = self._ext.run_command(dict(command), db, fut._on_op_done)
        return fut

    def create_collection(self, name: str, **options: Any) -> Future[Collection]:
        """Creates a collection explicitly (``capped=True, size=4096``, ``collation={...}``, ...).

        Returns:
            A Future of the new :class:`Collection`; it fails with OperationError (NamespaceExists)
            when the collection exists.
        """
        _fork.remade_for(self._host)
        fut: Future[Collection] = Future(self._host, lambda op: self.collection(name))
        fut._op = self._ext.create_collection(name, options or None, fut._on_op_done)
        return fut

    def drop_database(self) -> Future[None]:
        """Drops this connection's database. Returns a Future of None."""
        _fork.remade_for(self._host)
        fut: Future[None] = Future(self._host, lambda op: None)
        fut._op = self._ext.drop_database(fut._on_op_done)
        return fut

    def drop_collection(self, name: str) -> Future[None]:
        """Drops the collection ``name`` of this database; one that is not there is no error."""
        return self.collection(name).drop()

    def watch(self, pipeline: Optional[List[Mapping[str, Any]]] = None, full_document: Optional[str] = None,
              full_document_before_change: Optional[str] = None, resume_after: Any = None, start_after: Any = None,
              start_at_operation_time: Any = None, batch_size: Optional[int] = None,
              max_await_time_ms: Optional[int] = None, show_expanded_events: Optional[bool] = None,
              collation: Any = None, comment: Any = None, session: Optional[ClientSession] = None) -> ChangeStream:
        """A change stream over every collection of this database (Mongoose's ``conn.watch()``,
        PyMongo's ``Database.watch``); the arguments as :meth:`Collection.watch`'s."""
        _fork.remade_for(self._host)
        options = watch_options(full_document, full_document_before_change, resume_after, start_after,
                                start_at_operation_time, batch_size, max_await_time_ms, show_expanded_events,
                                collation, comment)
        if session is not None:
            options = dict(options or {}, **session._options())
        stages = [dict(s) for s in pipeline] if pipeline else None
        naive = (lambda t: t) if self._tz_aware else naive_transform
        return ChangeStream(self._host, lambda cb: self._ext.watch(stages, options, cb), naive)

    def list_collections(self, filter: Optional[Mapping[str, Any]] = None) -> Future[List[Dict[str, Any]]]:
        """This database's collections as the server describes them (``{"name", "type", "options",
        ...}``), as a list; ``filter`` matches those documents (``{"name": "users"}``)."""
        fut: Future[List[Dict[str, Any]]] = Future(self._host, lambda op: list(op.reply()["collections"]))
        fut._op = self._ext.list("collections", dict(filter) if filter else None, None, fut._on_op_done)
        return fut

    def list_collection_names(self, filter: Optional[Mapping[str, Any]] = None) -> Future[List[str]]:
        """The names of this database's collections."""
        fut: Future[List[str]] = Future(self._host, lambda op: [c["name"] for c in op.reply()["collections"]])
        fut._op = self._ext.list("collections", dict(filter) if filter else None, {"nameOnly": True},
                                 fut._on_op_done)
        return fut

    def list_databases(self) -> Future[List[Dict[str, Any]]]:
        """The server's databases (``{"name", "sizeOnDisk", "empty"}``), as a list."""
        fut: Future[List[Dict[str, Any]]] = Future(self._host, lambda op: list(op.reply()["databases"]))
        fut._op = self._ext.list("databases", None, None, fut._on_op_done)
        return fut

    def list_database_names(self) -> Future[List[str]]:
        """The names of the server's databases."""
        fut: Future[List[str]] = Future(self._host, lambda op: [d["name"] for d in op.reply()["databases"]])
        fut._op = self._ext.list("databases", None, {"nameOnly": True}, fut._on_op_done)
        return fut
