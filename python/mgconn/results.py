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
