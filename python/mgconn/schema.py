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
    if value is object:
        return "Mixed"  # Python's "anything", not a subdocument
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
    """A model's definition, as Mongoose's Schema:
    ``Schema({"name": str, "tags": [str]}, bufferCommands=True, capped=4096, collection="people")``.

    The definition maps each path to its type: a Python type (``str``, ``int``, ``float``, ``bool``,
    ``datetime.datetime``, ``bytes``, ``uuid.UUID``, ``dict``, ``list``, ``mgconn.ObjectId``,
    ``mgconn.Int64``, ``mgconn.Decimal128``, ...), a nested dict (a subdocument), a list of one
    type (every element), or ``{"type": T}``. A model's writes are checked against it: a value of
    another type fails the operation with ValidationError, naming the path (nothing is cast;
    None is always accepted; see the guide's "Schema field types").

    Args:
        definition: the field definition (default: none, nothing is checked).
        **options: ``collection`` (the collection name), ``bufferCommands``,
            ``bufferTimeoutMS``, ``autoCreate``, ``autoIndex``, ``capped`` (bytes, or
            ``{"size": n, "max": m}``), ``collation`` (``{"locale": "en"}``).

    Raises:
        OptionError: an unknown option or a value of the wrong type.

    Models compare schemas by identity, as in Mongoose: registering a name again with an equal
    but different Schema object is an OverwriteModelError.
    """

    def __init__(self, definition: Optional[Mapping[str, Any]] = None, **options: Any) -> None:
        self.definition: Dict[str, Any] = dict(definition or {})
        self.options: Dict[str, Any] = dict(options)
        self._indexes: List[Tuple[Dict[str, Any], Dict[str, Any]]] = []
        self._ext = _mgconn.Schema(_describe(self.definition), self.options)

    def index(self, keys: Mapping[str, Any], **options: Any) -> "Schema":
        """Declares an index that the model's autoIndex builds: ``schema.index({"email": 1}, unique=True)``.

        Args:
            keys: the index keys in order (``{"last": 1, "first": -1}``).
            **options: index options (``unique``, ``name``, ``sparse``, ``expireAfterSeconds``, ...).

        Returns:
            The schema, for chaining.

        Raises:
            ValueError: no key.
        """
        self._ext.index(dict(keys), options or None)
        self._indexes.append((dict(keys), dict(options)))
        return self

    def indexes(self) -> List[Tuple[Dict[str, Any], Dict[str, Any]]]:
        """The declared indexes as ``(keys, options)`` pairs, in order (Mongoose's ``schema.indexes()``)."""
        return list(self._indexes)

    def __repr__(self) -> str:
        return f"Schema({self.definition!r}, **{self.options!r})"
