"""Schemas: the field definition the application keeps, options that change how a model behaves,
and the indexes its autoIndex builds.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

from . import _mgconn

_OPTION_NAMES = {"collection", "bufferCommands", "bufferTimeoutMS", "autoCreate", "autoIndex", "capped",
                 "collation"}


def _describe(value: Any) -> Any:
    """A BSON-able description of a field definition ({"name": str} -> {"name": "str"})."""
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, Mapping):
        return {str(k): _describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_describe(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


class Schema:
    """``Schema({"name": str}, bufferCommands=True, capped=4096, collection="people")``.

    Options: collection, bufferCommands, bufferTimeoutMS, autoCreate, autoIndex, capped (bytes, or
    ``{"size": n, "max": m}``), collation. Models are compared by schema identity, as in Mongoose.
    """

    def __init__(self, definition: Optional[Mapping[str, Any]] = None, **options: Any) -> None:
        self.definition: Dict[str, Any] = dict(definition or {})
        self.options: Dict[str, Any] = dict(options)
        self._indexes: List[Tuple[Dict[str, Any], Dict[str, Any]]] = []
        self._ext = _mgconn.Schema(_describe(self.definition), self.options)

    def index(self, keys: Mapping[str, Any], **options: Any) -> "Schema":
        """Declares an index, built by autoIndex: ``schema.index({"email": 1}, unique=True)``."""
        self._ext.index(dict(keys), options or None)
        self._indexes.append((dict(keys), dict(options)))
        return self

    def indexes(self) -> List[Tuple[Dict[str, Any], Dict[str, Any]]]:
        return list(self._indexes)

    def __repr__(self) -> str:
        return f"Schema({self.definition!r}, **{self.options!r})"
