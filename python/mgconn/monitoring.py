"""Command monitoring, as PyMongo's ``pymongo.monitoring``: a :class:`CommandListener` gets
``started``, ``succeeded`` and ``failed`` for every command a connection's pool sends, on the host
thread (in dispatch), with the command's name, database, request id and duration; users wire it
into their tracing. Register listeners with ``create_connection(uri, event_listeners=[...])`` (or
``connect``, ``open_uri``) or :meth:`Connection.add_command_listener`. A sensitive command
(authentication, user management) arrives with empty ``command`` and ``reply`` documents."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Tuple


class CommandListener:
    """Subclass and override what you need; each method gets one event."""

    def started(self, event: "CommandStartedEvent") -> None:
        pass

    def succeeded(self, event: "CommandSucceededEvent") -> None:
        pass

    def failed(self, event: "CommandFailedEvent") -> None:
        pass


def _address(server: str) -> Tuple[str, int]:
    host, _, port = server.rpartition(":")
    return (host.strip("[]"), int(port)) if port.isdigit() else (server, 0)


class _CommandEvent:
    __slots__ = ("command_name", "database_name", "request_id", "operation_id", "connection_id")

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.command_name: str = raw["commandName"]
        self.database_name: str = raw["databaseName"]
        self.request_id: int = int(raw["requestId"])
        self.operation_id: int = int(raw["operationId"])
        self.connection_id: Tuple[str, int] = _address(raw["serverAddress"])  # PyMongo's (host, port)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.connection_id} db: {self.database_name!r}, "
                f"command: {self.command_name!r}, request_id: {self.request_id}>")


class CommandStartedEvent(_CommandEvent):
    __slots__ = ("command",)

    def __init__(self, raw: Mapping[str, Any]) -> None:
        super().__init__(raw)
        self.command: Dict[str, Any] = raw["command"]


class CommandSucceededEvent(_CommandEvent):
    __slots__ = ("duration_micros", "reply")

    def __init__(self, raw: Mapping[str, Any]) -> None:
        super().__init__(raw)
        self.duration_micros: int = int(raw["durationMicros"])
        self.reply: Dict[str, Any] = raw["reply"]


class CommandFailedEvent(_CommandEvent):
    __slots__ = ("duration_micros", "failure")

    def __init__(self, raw: Mapping[str, Any]) -> None:
        super().__init__(raw)
        self.duration_micros: int = int(raw["durationMicros"])
        # PyMongo's failure is the server's reply, or {"errmsg": ...} for a network error
        self.failure: Dict[str, Any] = dict(raw["reply"]) or {"errmsg": raw["failure"], "code": raw["code"]}


EVENTS = {"started": CommandStartedEvent, "succeeded": CommandSucceededEvent, "failed": CommandFailedEvent}
