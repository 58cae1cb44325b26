"""Operation results, shaped like PyMongo's."""
from __future__ import annotations

from typing import Any, Dict, List, Optional


# `resent`: how many times the operation was sent again because its connection failed before the
# reply (0: it ran once).


class InsertOneResult:
    """What insert_one gives (PyMongo's): ``inserted_id``, the document's ``_id`` (the ObjectId
    added when it had none); ``resent``, how many times it was sent again because its connection
    failed before the reply (0: it ran once); ``acknowledged`` is always True."""

    __slots__ = ("inserted_id", "resent")
    acknowledged = True

    def __init__(self, inserted_id: Any, resent: int = 0) -> None:
        self.inserted_id = inserted_id
        self.resent = resent

    def __repr__(self) -> str:
        return f"InsertOneResult({self.inserted_id!r})"


class InsertManyResult:
    """What insert_many gives: ``inserted_ids``, the ``_id`` of every document in order; ``resent``,
    as for InsertOneResult; ``acknowledged`` is always True."""

    __slots__ = ("inserted_ids", "resent")
    acknowledged = True

    def __init__(self, inserted_ids: List[Any], resent: int = 0) -> None:
        self.inserted_ids = inserted_ids
        self.resent = resent

    def __repr__(self) -> str:
        return f"InsertManyResult({self.inserted_ids!r})"


class UpdateResult:
    """What update_one, update_many and replace_one give: the counts and the upserted id;
    ``raw_result`` is the server's reply; ``acknowledged`` is always True."""

    __slots__ = ("raw_result",)
    acknowledged = True

    def __init__(self, raw_result: Dict[str, Any]) -> None:
        self.raw_result = raw_result

    @property
    def matched_count(self) -> int:
        """How many documents matched the filter."""
        return int(self.raw_result.get("matchedCount", 0))

    @property
    def modified_count(self) -> int:
        """How many documents were changed (a match already equal to the update is not)."""
        return int(self.raw_result.get("modifiedCount", 0))

    @property
    def upserted_id(self) -> Optional[Any]:
        """The ``_id`` of the document an upsert inserted, else None."""
        return self.raw_result.get("upsertedId")

    @property
    def resent(self) -> int:
        """How many times the operation was sent again because its connection failed before the
        reply (0: it ran once)."""
        return int(self.raw_result.get("resent", 0))

    def __repr__(self) -> str:
        return f"UpdateResult({self.raw_result!r})"


class DeleteResult:
    """What delete_one and delete_many give: ``deleted_count``; ``raw_result`` is the server's
    reply; ``acknowledged`` is always True."""

    __slots__ = ("raw_result",)
    acknowledged = True

    def __init__(self, raw_result: Dict[str, Any]) -> None:
        self.raw_result = raw_result

    @property
    def deleted_count(self) -> int:
        """How many documents were deleted."""
        return int(self.raw_result.get("deletedCount", 0))

    @property
    def resent(self) -> int:
        """How many times the operation was sent again because its connection failed before the
        reply (0: it ran once)."""
        return int(self.raw_result.get("resent", 0))

    def __repr__(self) -> str:
        return f"DeleteResult({self.raw_result!r})"


class BulkWriteResult:
    """What a ``bulk_write`` did, as PyMongo's: counts of each kind and the upserted ``_id`` of each
    request that upserted (keyed by the request's index). ``inserted_ids`` (keyed the same way) is
    mgconn's addition: every inserted document has its ``_id`` before it is sent."""

    __slots__ = ("bulk_api_result",)
    acknowledged = True

    def __init__(self, raw_result: Dict[str, Any]) -> None:
        self.bulk_api_result = raw_result

    def _count(self, key: str) -> int:
        return int(self.bulk_api_result.get(key, 0))

    @property
    def inserted_count(self) -> int:
        return self._count("insertedCount")

    @property
    def matched_count(self) -> int:
        return self._count("matchedCount")

    @property
    def modified_count(self) -> int:
        return self._count("modifiedCount")

    @property
    def deleted_count(self) -> int:
        return self._count("deletedCount")

    @property
    def upserted_count(self) -> int:
        return self._count("upsertedCount")

    @property
    def upserted_ids(self) -> Dict[int, Any]:
        return {int(k): v for k, v in self.bulk_api_result.get("upsertedIds", {}).items()}

    @property
    def inserted_ids(self) -> Dict[int, Any]:
        return {int(k): v for k, v in self.bulk_api_result.get("insertedIds", {}).items()}

    def __repr__(self) -> str:
        return f"BulkWriteResult({self.bulk_api_result!r})"
