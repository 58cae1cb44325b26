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
    "CancelledError", "InternalError", "OutcomeUnknownError",
]


class MgconnError(Exception):
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
        return label in self.labels


class OptionError(MgconnError, ValueError):
    category = "Option"


class ServerSelectionError(MgconnError):
    category = "ServerSelection"


class BufferTimeoutError(MgconnError):
    category = "BufferTimeout"


class NotConnectedError(MgconnError):
    category = "NotConnected"


class ConnectionClosedError(MgconnError):
    category = "ConnectionClosed"


class OverwriteModelError(MgconnError):
    category = "OverwriteModel"


class MissingSchemaError(MgconnError):
    category = "MissingSchema"


class OperationError(MgconnError):
    category = "Operation"


class DuplicateKeyError(OperationError):
    category = "DuplicateKey"


class WriteError(OperationError):
    category = "Write"


class NetworkError(MgconnError):
    category = "Network"


class AuthenticationError(MgconnError):
    category = "Authentication"


class DocumentTooLargeError(MgconnError):
    category = "DocumentTooLarge"


class CancelledError(MgconnError):
    category = "Cancelled"


class InternalError(MgconnError):
    category = "Internal"


class OutcomeUnknownError(MgconnError):
    """A write whose connection failed before the reply and that was not sent again (it is not
    idempotent, or re-sending is off, or its bufferTimeoutMS passed): it may or may not have been
    applied. Read the document back before deciding to write it again."""
    category = "OutcomeUnknown"


_BY_CATEGORY: Dict[str, Type[MgconnError]] = {
    cls.category: cls for cls in [
        OptionError, ServerSelectionError, BufferTimeoutError, NotConnectedError, ConnectionClosedError,
        OverwriteModelError, MissingSchemaError, OperationError, DuplicateKeyError, WriteError, NetworkError,
        AuthenticationError, DocumentTooLargeError, CancelledError, InternalError, OutcomeUnknownError,
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
