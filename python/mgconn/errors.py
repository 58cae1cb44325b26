"""mgconn's errors: one hierarchy for every failure, caught by category.

Every error carries ``category`` (the name of its class without "Error"), a message, and where the
server gave them ``code``, ``code_name``, ``labels``; a server selection error also has ``reason``:
``{"type": ..., "servers": {"host:port": {"type": ..., "error": ...}}}``. No message contains a
password.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Type

__all__ = [
    "MgconnError", "OptionError", "ServerSelectionError", "BufferTimeoutError", "NotConnectedError",
    "ConnectionClosedError", "OverwriteModelError", "MissingSchemaError", "OperationError",
    "DuplicateKeyError", "WriteError", "NetworkError", "AuthenticationError", "DocumentTooLargeError",
    "CancelledError", "InternalError", "OutcomeUnknownError", "ValidationError", "NotSupportedError",
]


class MgconnError(Exception):
    """The base of every error mgconn reports; catch a subclass for one kind of failure.

    Attributes: ``message``; ``category`` (the class name without "Error", as Lua's
    ``err.category``); ``code`` and ``code_name`` (the server's, when it gave them, else 0 and
    ""); ``labels`` (the server's error labels); ``reason`` (a ServerSelectionError's
    ``{"type": ..., "servers": {"host:port": {"type": ..., "error": ...}}}``, else {}).
    """

    category = "Mgconn"

    def __init__(self, message: str, code: int = 0, code_name: str = "", labels: Optional[List[str]] = None,
                 reason: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.code_name = code_name
        self.labels = list(labels or [])
        self.reason: Dict[str, Any] = dict(reason or {})

    def has_error_label(self, label: str) -> bool:
        """True when the server gave this error ``label`` (PyMongo's method; "TransientTransactionError", ...)."""
        return label in self.labels


class OptionError(MgconnError, ValueError):
    """A bad connection string, an unknown option or setting name, or a value of the wrong type;
    raised at the call, before anything is opened. Also a ValueError."""

    category = "Option"


class ServerSelectionError(MgconnError):
    """No suitable server within ``serverSelectionTimeoutMS``: the initial connection failed, or an
    operation found none. ``reason`` says what each server was and its last error."""

    category = "ServerSelection"


class BufferTimeoutError(MgconnError):
    """A buffered operation waited ``bufferTimeoutMS`` for the connection
    ("Operation `users.find_one()` buffering timed out after 10000ms"); it was not sent."""

    category = "BufferTimeout"


class NotConnectedError(MgconnError):
    """``bufferCommands`` is off and the connection is not up: the operation fails at once."""

    category = "NotConnected"


class ConnectionClosedError(MgconnError):
    """The connection was closed: an operation buffered at the close, or issued after it."""

    category = "ConnectionClosed"


class OverwriteModelError(MgconnError):
    """A model name registered again with another schema (``Cannot overwrite `User` model once compiled.``)."""

    category = "OverwriteModel"


class MissingSchemaError(MgconnError):
    """A model looked up that was never registered (``Schema hasn't been registered for model "User".``)."""

    category = "MissingSchema"


class OperationError(MgconnError):
    """The server refused the operation; ``code`` and ``code_name`` say why."""

    category = "Operation"


class DuplicateKeyError(OperationError):
    """A write broke a unique index (server code 11000)."""

    category = "DuplicateKey"


class WriteError(OperationError):
    """A write error or write concern error from the server."""

    category = "Write"


class NetworkError(MgconnError):
    """The network failed while the operation ran (it may or may not have been applied)."""

    category = "Network"


class AuthenticationError(MgconnError):
    """Wrong credentials or mechanism; the message never shows the password."""

    category = "Authentication"


class DocumentTooLargeError(MgconnError):
    """A document over the server's maxBsonObjectSize (16 MiB); nothing was sent."""

    category = "DocumentTooLarge"


class CancelledError(MgconnError):
    """The operation was cancelled (``Future.cancel()``, or its awaiting task) before it was sent."""

    category = "Cancelled"


class InternalError(MgconnError):
    """Out of memory, a thread that could not start: a failure of mgconn itself."""

    category = "Internal"


class OutcomeUnknownError(MgconnError):
    """A write whose connection failed before the reply and that was not sent again (it is not
    idempotent, or re-sending is off, or its bufferTimeoutMS passed): it may or may not have been
    applied. Read the document back before deciding to write it again."""

    category = "OutcomeUnknown"


class ValidationError(MgconnError, ValueError):
    """A model's write holds a value of another type than its schema declares, as Mongoose's
    ValidationError: the message names the model, the path, the declared type and the value's
    ("Cannot run `people.insert_one()`: Person validation failed: path `name` is declared str and
    got int32 ..."). Nothing was sent. Also a ValueError."""

    category = "Validation"


class NotSupportedError(MgconnError):
    """The server has no such feature: transactions on a standalone server or FerretDB (they need a
    replica set or a sharded cluster), change streams. The message names the limitation and
    carries the server's own words."""

    category = "NotSupported"


_BY_CATEGORY: Dict[str, Type[MgconnError]] = {
    cls.category: cls for cls in [
        OptionError, ServerSelectionError, BufferTimeoutError, NotConnectedError, ConnectionClosedError,
        OverwriteModelError, MissingSchemaError, OperationError, DuplicateKeyError, WriteError, NetworkError,
        AuthenticationError, DocumentTooLargeError, CancelledError, InternalError, OutcomeUnknownError,
        ValidationError, NotSupportedError,
    ]
}


def _make_error(category: str, message: str, code: int, code_name: str, labels: List[str],
                reason: Dict[str, Any]) -> MgconnError:
    """Called by the extension for every error it reports."""
    if category == "Type":
        return TypeError(message)  # type: ignore[return-value]
    if category == "InvalidArgument":
        return ValueError(message)  # type: ignore[return-value]
    cls = _BY_CATEGORY.get(category, MgconnError)
    if category == "Option":
        message = _python_values(message)
    return cls(message, code, code_name, labels, reason)


_LITERALS = {"null": "None", "true": "True", "false": "False"}


def _python_values(message: str) -> str:
    """The core describes option values in BSON's words (null, true, false); a Python user passed
    None, True or False."""
    message = re.sub(r"\bgot (null|true|false)\b", lambda m: "got " + _LITERALS[m.group(1)], message)
    return message.replace("must be true or false", "must be True or False")
