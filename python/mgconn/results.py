"""Operation results, shaped like PyMongo's."""
from __future__ import annotations

from typing import Any, Dict, List, Optional


# `resent`: how many times the operation was sent again because its connection failed before the
# reply (0: it ran once).


class InsertOneResult:
    __slots__ = ("inserted_id", "resent")
    acknowledged = True

    def __init__(self, inserted_id: Any, resent: int = 0) -> None:
        self.inserted_id = inserted_id
        self.resent = resent

    def __repr__(self) -> str:
        return f"InsertOneResult({self.inserted_id!r})"


class InsertManyResult:
    __slots__ = ("inserted_ids", "resent")
    acknowledged = True

    def __init__(self, inserted_ids: List[Any], resent: int = 0) -> None:
        self.inserted_ids = inserted_ids
        self.resent = resent

    def __repr__(self) -> str:
        return f"InsertManyResult({self.inserted_ids!r})"


class UpdateResult:
    __slots__ = ("raw_result",)
    acknowledged = True

    def __init__(self, raw_result: Dict[str, Any]) -> None:
        self.raw_result = raw_result

    @property
    def matched_count(self) -> int:
        return int(self.raw_result.get("matchedCount", 0))

    @property
    def modified_count(self) -> int:
        return int(self.raw_result.get("modifiedCount", 0))

    @property
    def upserted_id(self) -> Optional[Any]:
        return self.raw_result.get("upsertedId")

    @property
    def resent(self) -> int:
        return int(self.raw_result.get("resent", 0))

    def __repr__(self) -> str:
        return f"UpdateResult({self.raw_result!r})"


class DeleteResult:
    __slots__ = ("raw_result",)
    acknowledged = True

    def __init__(self, raw_result: Dict[str, Any]) -> None:
        self.raw_result = raw_result

    @property
    def deleted_count(self) -> int:
        return int(self.raw_result.get("deletedCount", 0))

    @property
    def resent(self) -> int:
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
