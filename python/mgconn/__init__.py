"""mgconn: MongoDB connections for Python with Mongoose's behaviour — buffering, events, models —
on a C core whose host thread never waits for the database.

    import asyncio, mgconn
    async def main():
        conn = mgconn.connect("mongodb://127.0.0.1:27017/app")
        User = mgconn.model("User", mgconn.Schema({"name": str}))
        await User.insert_one({"name": "ada"})       # buffered until the connection is open
        print(await User.find_one({"name": "ada"}))
        await mgconn.disconnect()
    asyncio.run(main())

Every operation returns an :class:`mgconn.Future` at once (``await`` it, or ``.result()`` in a
script); the host thread never waits for the database.

Attributes:
    connection: the default connection (``mongoose.connection``), made on first use;
        :func:`connect` opens it.
    connections: every connection made (the default one and each ``create_connection()``), in
        creation order.
    models: the default connection's model registry, a read-only mapping of name to :class:`Model`.
    version, __version__: the package's version ("0.1.0").
    core_version: libmgconn's version.
    exit_flush_timeout: seconds the interpreter's exit waits for operations still pending (10.0);
        any left are named in a RuntimeWarning.
"""
from __future__ import annotations

import atexit as _atexit
import datetime as _datetime
import logging as _logging
import os as _os
import sys as _sys
import threading as _threading
import uuid as _uuid
import warnings as _warnings
from typing import Any, Callable, Dict, List, Mapping, Optional

from . import _fork, _mgconn
from . import errors
from ._host import Host as _Host
from .collection import Collection, Cursor, Model
from ._connection import Connection, codec_options as _codec_options, keyword_options as _keyword_options
from ._connection import listener_option as _listener_option
from . import monitoring
from .errors import *  # noqa: F401,F403  (the hierarchy, re-exported)
from .futures import Future
from .operations import DeleteMany, DeleteOne, InsertOne, ReplaceOne, ReturnDocument, UpdateMany, UpdateOne
from .results import BulkWriteResult, DeleteResult, InsertManyResult, InsertOneResult, UpdateResult
from .schema import Schema
from .session import ClientSession
from .change_stream import ChangeStream
from .types import Binary, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp

__version__ = "0.1.0"  # the distribution's version (setup.py), checked by tests/python/test_packaging.py
version = __version__
core_version: str = _mgconn.core_version

_mgconn._setup(ObjectId=ObjectId, Int64=Int64, Decimal128=Decimal128, Binary=Binary, Regex=Regex,
               Timestamp=Timestamp, MinKey=MinKey, MaxKey=MaxKey, UUID=_uuid.UUID, datetime=_datetime.datetime,
               utc=_datetime.timezone.utc, make_error=errors._make_error)

_log = _logging.getLogger("mgconn")
_state: Dict[str, Any] = {"host": None, "default": None, "debug": None, "settings": {}}
connections: List[Connection] = []

_SETTING_NAMES = {"buffer_commands": "bufferCommands", "buffer_timeout_ms": "bufferTimeoutMS",
                  "auto_index": "autoIndex", "auto_create": "autoCreate", "overwrite_models": "overwriteModels"}


def _on_log(level: int, domain: str, message: str) -> None:
    if level == 4 and domain == "debug":  # one line per operation as it is sent
        sink = _state["debug"]
        if callable(sink):
            sink(message)
        else:
            print(message, file=_sys.stderr)
        return
    py_level = {1: _logging.ERROR, 2: _logging.WARNING, 3: _logging.INFO}.get(level, _logging.DEBUG)
    if domain == "mgconn":  # the logger's name says it already
        _log.log(py_level, "%s", message)
    else:  # libmongoc's domains ("stream", "cluster", ...)
        _log.log(py_level, "%s: %s", domain, message)


def _new_host() -> _Host:
    runtime = _mgconn.Runtime(method_case="snake")
    runtime.set_log_handler(_on_log)
    if _state["settings"]:
        runtime.set(dict(_state["settings"]))
    return _Host(runtime)


def _host() -> _Host:
    host = _state["host"]
    if host is None:
        host = _state["host"] = _new_host()
    elif host.runtime.foreign():  # the child of a fork, using mgconn for the first time
        _remake_after_fork()
        host = _state["host"]
    return host  # type: ignore[no-any-return]


_remake_lock = _threading.Lock()


def _remake_after_fork() -> None:
    """The child's first use of mgconn after os.fork() (the rule: mgconn/_fork.py): a runtime of its
    own, and every connection made before the fork made again on it, opening with the same URI and
    options, with its models and collections; a RuntimeWarning says so, once. What was in flight at
    the fork finishes in the parent only: such an operation's .result() here raises a RuntimeError."""
    with _remake_lock:  # two threads of the child may meet their first use at once: one remakes
        old = _state["host"]
        if old is None or not old.runtime.foreign():
            return  # remade already (or nothing was made before the fork)
        host = _state["host"] = _new_host()
        for conn in connections:
            conn._remake_after_fork(host)
    if connections:
        _warnings.warn("mgconn was in use before os.fork(): this process has its own mgconn runtime, and the "
                       "connections made before the fork open again in it", RuntimeWarning,
                       stacklevel=_stacklevel_of_the_caller())


def _stacklevel_of_the_caller() -> int:
    """The warning's stacklevel that names the user's line, however deep in the package the first
    use was noticed."""
    package = _os.path.dirname(__file__) + _os.sep
    frame, level = _sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level


def _after_fork_in_child() -> None:
    # Only what the child's first use needs: a lock no thread of the parent can be holding. No
    # runtime, no threads, no warning here (this runs in subprocess's preexec_fn children too).
    global _remake_lock
    _remake_lock = _threading.Lock()


_fork.remake = _remake_after_fork
_os.register_at_fork(after_in_child=_after_fork_in_child)

exit_flush_timeout = 10.0
"""Seconds the interpreter's exit waits for operations still pending (an insert never awaited)."""


def _flush_at_exit() -> None:
    """Operations still pending at exit (issued and never awaited, often on a connection that is not
    open yet) are waited for, dispatching, up to exit_flush_timeout; any left are named in a warning
    instead of being dropped without a word."""
    host = _state["host"]
    if host is None or host.runtime.foreign():
        return
    host.wait_until(lambda: host.runtime.pending() == 0, exit_flush_timeout)
    left = host.runtime.pending()
    if left:
        _warnings.warn(f"mgconn: {left} operation(s) had not finished when the interpreter exited "
                       f"(waited {exit_flush_timeout:g} s) and may not have been applied; await them or call "
                       f".result() before exiting", RuntimeWarning, stacklevel=1)


_atexit.register(_flush_at_exit)


def _default() -> Connection:
    host = _host()  # in the child of a fork, the first use remakes the default connection too
    if _state["default"] is None:
        _state["default"] = Connection(host, _mgconn.Connection(host.runtime), connections)
    return _state["default"]  # type: ignore[no-any-return]


def __getattr__(name: str) -> Any:
    if name == "connection":  # the default connection, made on first use (as mongoose.connection)
        return _default()
    if name == "models":
        return _default().models
    raise AttributeError(f"module 'mgconn' has no attribute {name!r}")


def connect(uri: str, **options: Any) -> Connection:
    """Opens the default connection (``mgconn.connection``), as ``mongoose.connect()`` does.

    Returns at once; the connection opens in the background and operations issued meanwhile are
    buffered. ``await mgconn.connect(uri)`` (or ``.wait_open()``) waits for ``open``.

    Args:
        uri: a MongoDB connection string (``mongodb://`` or ``mongodb+srv://``).
        **options: connection options in Mongoose's spelling (``serverSelectionTimeoutMS=500``,
            ``bufferCommands=False``, ``maxPoolSize=20``, ``dbName="app"``, ...); a Python keyword
            takes a trailing underscore (``pass_=``).

    Returns:
        The default :class:`Connection`, awaitable. Calling ``connect`` again with the same URI
        returns the same connection.

    Raises:
        OptionError: a malformed URI, an unknown option or a bad value (nothing is opened).
        ValueError: the default connection is already open to another URI (close it first).
        ServerSelectionError: not raised here; awaiting the connection raises it when no server
            can be reached.
    """
    return _default().open_uri(uri, **options)


def create_connection(uri: Optional[str] = None, **options: Any) -> Connection:
    """A new connection with its own pool (``mongoose.createConnection()``).

    Args:
        uri: the connection string; without one the connection is made unopened (open it later
            with :meth:`Connection.open_uri`; models and operations may be defined before).
        **options: connection options, as for :func:`connect`.

    Returns:
        The new :class:`Connection`, opening in the background; ``await`` it for ``open``.

    Raises:
        OptionError: a malformed URI, an unknown option or a bad value.
    """
    options = dict(options)
    tz_aware = _codec_options(options)
    listeners = _listener_option(options)
    opts = _keyword_options(options)
    host = _host()
    conn = Connection(host, _mgconn.Connection(host.runtime, uri, opts), connections)
    if tz_aware is not None:
        conn._tz_aware = tz_aware
    for listener in listeners:
        conn.add_command_listener(listener)
    if uri is not None:
        conn._open_args = (uri, opts)
    return conn


def disconnect() -> Future[None]:
    """Closes every connection (``mongoose.disconnect()``).

    Returns:
        A Future that completes when all are closed. Their buffered operations fail with
        ConnectionClosedError.
    """
    host = _host()
    fut: Future[None] = Future(host, lambda op: None)
    fut._op = host.runtime.disconnect(fut._on_op_done)
    for conn in connections:
        conn._closed = True  # not opened again in a child forked later
    return fut


def model(name: str, schema: Optional[Schema] = None, collection: Optional[str] = None) -> Model:
    """Registers or looks up a model on the default connection (``mongoose.model()``).

    Args:
        name: the model name; its collection is the pluralised, lower-cased name ("User" ->
            "users") unless ``collection`` or the schema's ``collection`` option says otherwise.
        schema: the :class:`Schema` to register it with; without one, the registered model is
            returned.
        collection: the collection name to use instead.

    Returns:
        The :class:`Model`; the same object again for the same name and schema.

    Raises:
        MissingSchemaError: no schema given and no model of that name registered.
        OverwriteModelError: the name is registered with another schema (unless the
            ``overwriteModels`` setting is on).
    """
    return _default().model(name, schema, collection)


def delete_model(name: str) -> None:
    """Removes the model ``name`` from the default connection's registry (``mongoose.deleteModel()``).

    Raises:
        MissingSchemaError: no model of that name is registered.
    """
    _default().delete_model(name)


def set(name: str, value: Any) -> None:  # noqa: A001  (Mongoose's name)
    """Sets a runtime-wide setting (``mongoose.set()``); a connection's or a schema's option beats it.

    Args:
        name: ``bufferCommands``, ``bufferTimeoutMS``, ``autoIndex``, ``autoCreate``,
            ``pluralization``, ``overwriteModels`` or ``debug`` (the snake_case spellings
            ``buffer_commands``, ``buffer_timeout_ms``, ... are accepted too).
        value: the value; None unsets it. ``debug=True`` prints one line per operation as it is
            sent to stderr; a callable receives each line instead.

    Raises:
        OptionError: an unknown name or a value of the wrong type.
    """
    key = _SETTING_NAMES.get(name, name)
    if key == "debug":
        _state["debug"] = value if callable(value) else None
        value = bool(value)
    _host().runtime.set({key: value})
    _state["settings"][key] = value  # set again on the runtime a forked child makes


def get(name: str) -> Any:
    """The runtime-wide setting ``name`` (see :func:`set`): a bool, an int for bufferTimeoutMS, or
    None when it is not set.

    Raises:
        OptionError: an unknown name.
    """
    key = _SETTING_NAMES.get(name, name)
    value = _host().runtime.get(key)
    if key == "bufferTimeoutMS" or value is None:
        return value
    return bool(value)


def poll(max: Optional[int] = None) -> int:  # noqa: A002
    """Runs the completions and events that are due now, for scripts and game loops without asyncio.

    Never blocks. Inside asyncio this happens by itself (the runtime's fd is watched by the loop).

    Args:
        max: run at most this many (None: all that are due).

    Returns:
        How many ran.
    """
    host = _state["host"] or _host()
    try:
        return host.dispatch(max or 0)
    except RuntimeError:  # the parent's runtime, in the child of a fork: remade, then dispatched
        if not _fork.remade_for(host):
            raise
        return _host().dispatch(max or 0)


def fd() -> int:
    """The file descriptor that becomes readable when :func:`poll` has work, for hosts with a loop of
    their own (select, epoll, a GUI toolkit): watch it, then call ``poll()``."""
    return int(_host().runtime.fd())


def pluralize(name: str) -> str:
    """The collection name Mongoose makes from a model name: ``pluralize("Person") == "people"``."""
    return str(_mgconn.pluralize(name))


__all__ = [
    "connect", "create_connection", "connection", "connections", "disconnect", "model", "delete_model", "models",
    "set", "get", "poll", "fd", "pluralize", "version", "Schema", "Connection", "Collection", "Model", "Cursor",
    "Future", "InsertOneResult", "InsertManyResult", "UpdateResult", "DeleteResult", "ObjectId", "Int64",
    "Decimal128", "Binary", "Regex", "Timestamp", "MinKey", "MaxKey", "errors", "BulkWriteResult", "InsertOne",
    "UpdateOne", "UpdateMany", "ReplaceOne", "DeleteOne", "DeleteMany", "ReturnDocument", "monitoring",
    "ClientSession", "ChangeStream",
]
__all__ += errors.__all__
