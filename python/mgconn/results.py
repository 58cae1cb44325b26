"""Operation results, shaped like PyMongo's."""
from __future__ import annotations

from typing import Any, Dict, List, Optional


class InsertOneResult:
    __slots__ = ("inserted_id",)
    acknowledged = True

    def __init__(self, inserted_id: Any) -> None:
        self.inserted_id = inserted_id

    def __repr__(self) -> str:
        return f"InsertOneResult({self.inserted_id!r})"


class InsertManyResult:
    __slots__ = ("inserted_ids",)
    acknowledged = True

    def __init__(self, inserted_ids: List[Any]) -> None:
        self.inserted_ids = inserted_ids

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

    def __repr__(self) -> str:
        return f"DeleteResult({self.raw_result!r})"
