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
"""
from __future__ import annotations

import atexit as _atexit
import datetime as _datetime
import logging as _logging
import os as _os
import sys as _sys
import uuid as _uuid
import warnings as _warnings
from typing import Any, Callable, Dict, List, Mapping, Optional

from . import _mgconn
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


def _host() -> _Host:
    if _state["host"] is None:
        runtime = _mgconn.Runtime(method_case="snake")
        runtime.set_log_handler(_on_log)
        if _state["settings"]:
            runtime.set(dict(_state["settings"]))
        _state["host"] = _Host(runtime)
    return _state["host"]  # type: ignore[no-any-return]


def _after_fork_in_child() -> None:
    """os.fork() (multiprocessing, gunicorn --preload, Celery prefork): the parent's runtime has no
    threads in the child and must not be touched there. The child gets a runtime of its own (at once
    when connections exist, else on first use), and every connection made before the fork is made
    again on it, opening with the same URI and options, with its models and collections (as
    PyMongo's clients reconnect in a child, with a warning). What was in flight at the fork finishes in the parent only: such an operation's
    .result() in the child raises a RuntimeError at once."""
    if _state["host"] is None:
        return
    _state["host"] = None
    if not connections:
        return
    host = _host()
    for conn in connections:
        conn._remake_after_fork(host)
    _warnings.warn("mgconn was in use before os.fork(): this process has its own mgconn runtime, and the "
                   "connections made before the fork open again in it", RuntimeWarning, stacklevel=2)


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
    if _state["default"] is None:
        _state["default"] = Connection(_host(), _mgconn.Connection(_host().runtime), connections)
    return _state["default"]  # type: ignore[no-any-return]


def __getattr__(name: str) -> Any:
    if name == "connection":  # the default connection, made on first use (as mongoose.connection)
        return _default()
    if name == "models":
        return _default().models
    raise AttributeError(f"module 'mgconn' has no attribute {name!r}")


def connect(uri: str, **options: Any) -> Connection:
    """Opens the default connection and returns it (awaitable: waits for open). Calling it again
    with the same URI returns the same connection; another URI is refused and changes nothing."""
    return _default().open_uri(uri, **options)


def create_connection(uri: Optional[str] = None, **options: Any) -> Connection:
    """A new connection with its own pool, opening at once when a URI is given."""
    options = dict(options)
    tz_aware = _codec_options(options)
    listeners = _listener_option(options)
    opts = _keyword_options(options)
    conn = Connection(_host(), _mgconn.Connection(_host().runtime, uri, opts), connections)
    if tz_aware is not None:
        conn._tz_aware = tz_aware
    for listener in listeners:
        conn.add_command_listener(listener)
    if uri is not None:
        conn._open_args = (uri, opts)
    return conn


def disconnect() -> Future[None]:
    """Closes every connection."""
    fut: Future[None] = Future(_host(), lambda op: None)
    fut._op = _host().runtime.disconnect(fut._on_op_done)
    for conn in connections:
        conn._closed = True  # not opened again in a child forked later
    return fut


def model(name: str, schema: Optional[Schema] = None, collection: Optional[str] = None) -> Model:
    """A model on the default connection (see Connection.model)."""
    return _default().model(name, schema, collection)


def delete_model(name: str) -> None:
    _default().delete_model(name)


def set(name: str, value: Any) -> None:  # noqa: A001  (Mongoose's name)
    """Runtime-wide settings: bufferCommands, bufferTimeoutMS, autoIndex, autoCreate, pluralization,
    overwriteModels, debug (True prints one line per operation to stderr; a callable receives it)."""
    key = _SETTING_NAMES.get(name, name)
    if key == "debug":
        _state["debug"] = value if callable(value) else None
        value = bool(value)
    _host().runtime.set({key: value})
    _state["settings"][key] = value  # set again on the runtime a forked child makes


def get(name: str) -> Any:
    key = _SETTING_NAMES.get(name, name)
    value = _host().runtime.get(key)
    if key == "bufferTimeoutMS" or value is None:
        return value
    return bool(value)


def poll(max: Optional[int] = None) -> int:  # noqa: A002
    """Runs due callbacks and events now, for scripts and game loops without asyncio. Never blocks."""
    return _host().dispatch(max or 0)


def fd() -> int:
    """The file descriptor that becomes readable when poll() has work (for hosts with their own loop)."""
    return int(_host().runtime.fd())


def pluralize(name: str) -> str:
    """The collection name Mongoose makes from a model name."""
    return str(_mgconn.pluralize(name))


__all__ = [
    "connect", "create_connection", "connection", "connections", "disconnect", "model", "delete_model", "models",
    "set", "get", "poll", "fd", "pluralize", "version", "Schema", "Connection", "Collection", "Model", "Cursor",
    "Future", "InsertOneResult", "InsertManyResult", "UpdateResult", "DeleteResult", "ObjectId", "Int64",
    "Decimal128", "Binary", "Regex", "Timestamp", "MinKey", "MaxKey", "errors", "BulkWriteResult", "InsertOne",
    "UpdateOne", "UpdateMany", "ReplaceOne", "DeleteOne", "DeleteMany", "ReturnDocument", "monitoring",
]
__all__ += errors.__all__
