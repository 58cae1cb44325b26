"""The write requests of :meth:`Collection.bulk_write` and find-and-modify's ``ReturnDocument``, as
PyMongo's ``pymongo.operations`` spells them. Each request turns into the one shape core takes
(Mongoose's: ``{"updateOne": {"filter": ..., "update": ...}}``)."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

Document = Mapping[str, Any]


class ReturnDocument:
    """Which document ``find_one_and_update`` / ``_replace`` return: the one before the change
    (PyMongo's default) or after it."""

    BEFORE = False
    AFTER = True


class _Request:
    _kind = ""

    def __init__(self, **body: Any) -> None:
        self._body = {k: v for k, v in body.items() if v is not None}

    def _doc(self) -> Dict[str, Any]:
        return {self._kind: self._body}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._body == self._body  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._body!r})"


class InsertOne(_Request):
    """Inserts ``document`` (an ObjectId ``_id`` is added when it has none)."""

    _kind = "insertOne"

    def __init__(self, document: Document) -> None:
        super().__init__(document=dict(document))


class _Update(_Request):
    def __init__(self, filter: Document, update: Union[Document, Sequence[Document]], upsert: bool = False,
                 collation: Optional[Document] = None, array_filters: Optional[List[Document]] = None,
                 hint: Any = None) -> None:
        super().__init__(filter=dict(filter), update=update if isinstance(update, Mapping) else list(update),
                         upsert=upsert or None, collation=collation, arrayFilters=array_filters, hint=hint)


class UpdateOne(_Update):
    """Updates the first document matching ``filter``."""

    _kind = "updateOne"


class UpdateMany(_Update):
    """Updates every document matching ``filter``."""

    _kind = "updateMany"


class ReplaceOne(_Request):
    """Replaces the first document matching ``filter`` with ``replacement``."""

    _kind = "replaceOne"

    def __init__(self, filter: Document, replacement: Document, upsert: bool = False,
                 collation: Optional[Document] = None, hint: Any = None) -> None:
        super().__init__(filter=dict(filter), replacement=dict(replacement), upsert=upsert or None,
                         collation=collation, hint=hint)


class _Delete(_Request):
    def __init__(self, filter: Document, collation: Optional[Document] = None, hint: Any = None) -> None:
        super().__init__(filter=dict(filter), collation=collation, hint=hint)


class DeleteOne(_Delete):
    """Deletes the first document matching ``filter``."""

    _kind = "deleteOne"


class DeleteMany(_Delete):
    """Deletes every document matching ``filter``."""

    _kind = "deleteMany"


def request_document(request: Any, index: int) -> Dict[str, Any]:
    """The core shape of one request; a TypeError names the index of anything else."""
    if not isinstance(request, _Request):
        raise TypeError(f"bulk_write: request {index} must be InsertOne, UpdateOne, UpdateMany, ReplaceOne, "
                        f"DeleteOne or DeleteMany, not {type(request).__name__}")
    return request._doc()
