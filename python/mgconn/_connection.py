"""Connections: Mongoose's connection object in Python spelling.

A connection is created at once and opens in the background; ``await conn`` (or
``conn.wait_open()`` in scripts) waits for ``open`` or raises the connect error. Events are
delivered on the host thread in order: ``connecting``, ``connected``, ``open``, ``disconnected``,
``reconnected``, ``disconnecting``, ``close``, ``error``.
"""
from __future__ import annotations

import types
import weakref
from typing import Any, Callable, Dict, Generator, List, Mapping, Optional, Tuple

from . import _mgconn
from ._host import Host, report_unraisable
from .collection import Collection, Model, naive_transform
from .monitoring import EVENTS as COMMAND_EVENTS, CommandListener
from .futures import Future
from .schema import Schema

EVENTS = ("connecting", "connected", "open", "disconnecting", "disconnected", "close", "reconnected", "error")


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
    def __init__(self, host: Host, ext: Any, registry: Optional[List["Connection"]] = None) -> None:
        self._host = host
        self._ext = ext
        self._listeners: Dict[str, List[Tuple[Callable[..., Any], bool]]] = {}
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
        ext.set_listener(self._on_event)
        if registry is not None:
            registry.append(self)

    # -- state --
    @property
    def ready_state(self) -> int:
        return int(self._ext.ready_state)

    @property
    def name(self) -> str:
        return str(self._ext.name)

    @property
    def host(self) -> str:
        return str(self._ext.host)

    @property
    def port(self) -> int:
        return int(self._ext.port)

    @property
    def id(self) -> int:
        return int(self._ext.id)

    def stats(self) -> Dict[str, Any]:
        """{inFlight, waiting, peakInFlight, maxPoolSize}: the connection's queue right now."""
        return dict(self._ext.stats())

    def __repr__(self) -> str:
        return f"<mgconn.Connection {self.id} {self.name!r} {STATES.get(self.ready_state, '?')}>"

    # -- events --
    def on(self, event: str, callback: Callable[..., Any]) -> "Connection":
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}; the events are {', '.join(EVENTS)}")
        if not callable(callback):
            raise TypeError(f"the listener for {event!r} must be callable, not {type(callback).__name__}")
        self._listeners.setdefault(event, []).append((callback, False))
        return self

    def once(self, event: str, callback: Callable[..., Any]) -> "Connection":
        self.on(event, callback)
        self._listeners[event][-1] = (callback, True)
        return self

    def off(self, event: str, callback: Callable[..., Any]) -> "Connection":
        entries = self._listeners.get(event, [])
        for i, (cb, _) in enumerate(entries):
            if cb is callback:
                del entries[i]
                break
        return self

    def _on_event(self, name: str, error: Optional[BaseException]) -> None:
        for cb, once in list(self._listeners.get(name, [])):
            if once:
                self.off(name, cb)
            try:
                if error is not None or name in ("disconnected", "error"):
                    cb(error)
                else:
                    cb()
            except Exception:
                report_unraisable(f"an mgconn {name!r} listener", cb)

    # -- opening and closing --
    def open_uri(self, uri: str, **options: Any) -> "Connection":
        """Opens this connection (it must not be open to another URI). Returns it, awaitable."""
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
        """A future that completes when the connection is open, or fails with the connect error, or
        with ConnectionClosedError once the connection is closed (at once if it is closed)."""
        fut: Future["Connection"] = Future(self._host, lambda op: self)
        fut._op = self._ext.when_open(fut._on_op_done)
        return fut

    def __await__(self) -> Generator[Any, None, "Connection"]:
        return self.as_promise().__await__()

    def wait_open(self, timeout: Optional[float] = None) -> "Connection":
        """Blocks (dispatching) until open, for scripts without an event loop."""
        return self.as_promise().result(timeout)

    def close(self, force: bool = False) -> Future[None]:
        """disconnecting, disconnected, close; buffered operations fail with ConnectionClosedError.
        With force, operations in flight fail at once too."""
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
        return types.MappingProxyType(self._models)

    def model(self, name: str, schema: Optional[Schema] = None, collection: Optional[str] = None) -> Model:
        """Registers (with a schema) or looks up (without) the model `name` on this connection."""
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
        """A raw collection of this database: buffered like a model's operations, no schema."""
        coll = Collection(self._ext.collection(name), self)
        self._collections.add(coll)
        return coll

    def use_db(self, name: str, use_cache: bool = False) -> "Connection":
        """A connection to another database on the same pool, with its own model registry."""
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
        if ext is None:
            ext = _mgconn.Connection(host.runtime)
            if self._open_args is not None and not self._closed:
                ext.open(*self._open_args)
        self._ext = ext
        ext.set_listener(self._on_event)
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
        fut: Future[Dict[str, Any]] = Future(self._host, None if self._tz_aware else naive_transform(None))
        fut._op = self._ext.run_command(dict(command), db, fut._on_op_done)
        return fut

    def create_collection(self, name: str, **options: Any) -> Future[Collection]:
        fut: Future[Collection] = Future(self._host, lambda op: self.collection(name))
        fut._op = self._ext.create_collection(name, options or None, fut._on_op_done)
        return fut

    def drop_database(self) -> Future[None]:
        fut: Future[None] = Future(self._host, lambda op: None)
        fut._op = self._ext.drop_database(fut._on_op_done)
        return fut

    def drop_collection(self, name: str) -> Future[None]:
        """Drops the collection ``name`` of this database; one that is not there is no error."""
        return self.collection(name).drop()

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
