"""BSON value types that Python has no type of its own for.

``datetime.datetime`` (dates), ``uuid.UUID`` (binary subtype 4), ``bytes`` (binary subtype 0),
``None`` (null) and ``dict`` (documents, order kept) are used as they are.
"""
from __future__ import annotations

import binascii
import decimal
import os
import struct
import threading
import time
from typing import Any, ClassVar, Optional, Union

__all__ = ["ObjectId", "Int64", "Decimal128", "Binary", "Regex", "Timestamp", "MinKey", "MaxKey"]


class ObjectId:
    """A 12-byte BSON ObjectId (PyMongo's ``bson.ObjectId``): 4 bytes of seconds, 5 random bytes for
    the process, a 3-byte counter. Hashable, ordered, ``str()`` is its 24 hex digits.

    Args:
        oid: None for a new one; 24 hex digits, 12 bytes, or another ObjectId to copy.

    Raises:
        ValueError: anything else ("'xyz' is not a valid ObjectId: ...").
    """

    __slots__ = ("_bytes",)
    _random: ClassVar[bytes] = os.urandom(5)
    _pid: ClassVar[int] = os.getpid()
    _counter: ClassVar[int] = int.from_bytes(os.urandom(3), "big")
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, oid: Union[str, bytes, "ObjectId", None] = None) -> None:
        if oid is None:
            with ObjectId._lock:
                if os.getpid() != ObjectId._pid:  # a forked child must not repeat its parent's ids
                    ObjectId._pid, ObjectId._random = os.getpid(), os.urandom(5)
                ObjectId._counter = (ObjectId._counter + 1) & 0xFFFFFF
                counter = ObjectId._counter
            self._bytes = struct.pack(">I", int(time.time()) & 0xFFFFFFFF) + ObjectId._random + counter.to_bytes(3, "big")
        elif isinstance(oid, ObjectId):
            self._bytes = oid._bytes
        elif isinstance(oid, bytes) and len(oid) == 12:
            self._bytes = oid
        elif isinstance(oid, str) and len(oid) == 24:
            try:
                self._bytes = binascii.unhexlify(oid)
            except binascii.Error:
                raise ValueError(f"{oid!r} is not a valid ObjectId: 24 hex digits expected") from None
        else:
            raise ValueError(f"{oid!r} is not a valid ObjectId: 12 bytes or 24 hex digits expected")

    @property
    def binary(self) -> bytes:
        """The 12 bytes."""
        return self._bytes

    @property
    def generation_time(self) -> float:
        """When it was made: its first 4 bytes, in seconds since the epoch."""
        return float(struct.unpack(">I", self._bytes[:4])[0])

    def __str__(self) -> str:
        return self._bytes.hex()

    def __repr__(self) -> str:
        return f"ObjectId('{self._bytes.hex()}')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectId) and other._bytes == self._bytes

    def __lt__(self, other: "ObjectId") -> bool:
        return self._bytes < other._bytes

    def __hash__(self) -> int:
        return hash(self._bytes)


class Int64(int):
    """An int stored as BSON int64 whatever its size: ``Int64(5)``. A plain int is stored as int32
    when it fits and int64 otherwise; an int64 read back is a plain int."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Int64({int(self)})"


_D128_CONTEXT = decimal.Context(prec=34, Emax=6144, Emin=-6143, capitals=1, clamp=1,
                                traps=[decimal.InvalidOperation, decimal.Overflow, decimal.Inexact])


class Decimal128:
    """A BSON decimal128 (IEEE 754-2008 BID), exchanged with ``decimal.Decimal``:
    ``Decimal128("9.99")``. Hashable; ``str()`` is its decimal text.

    Args:
        value: a string, a ``decimal.Decimal`` or an int, exact in 34 digits.

    Raises:
        decimal.InvalidOperation, decimal.Inexact, decimal.Overflow, ValueError: a value that is
            not a number or does not fit in a decimal128 exactly.
    """

    __slots__ = ("_bid",)

    def __init__(self, value: Union[str, decimal.Decimal, int]) -> None:
        d = _D128_CONTEXT.create_decimal(value)
        self._bid = _decimal_to_bid(d)

    @classmethod
    def from_bid(cls, bid: bytes) -> "Decimal128":
        """The Decimal128 whose 16 bytes (little-endian BID) are ``bid``."""
        obj = cls.__new__(cls)
        obj._bid = bytes(bid)
        return obj

    @property
    def bid(self) -> bytes:
        """Its 16 bytes, little-endian BID, as BSON stores them."""
        return self._bid

    def to_decimal(self) -> decimal.Decimal:
        """Its value as a ``decimal.Decimal`` (NaN and the infinities included)."""
        return _bid_to_decimal(self._bid)

    def __str__(self) -> str:
        return str(self.to_decimal())

    def __repr__(self) -> str:
        return f"Decimal128('{self}')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Decimal128) and other._bid == self._bid

    def __hash__(self) -> int:
        return hash(self._bid)


_EXP_BIAS = 6176


def _decimal_to_bid(d: decimal.Decimal) -> bytes:
    sign, digits, exponent = d.as_tuple()
    high = (1 << 63) if sign else 0
    if d.is_nan():
        high |= 0x7C00 << 48
        return struct.pack("<QQ", 0, high)
    if d.is_infinite():
        high |= 0x7800 << 48
        return struct.pack("<QQ", 0, high)
    assert isinstance(exponent, int)
    coefficient = int("".join(map(str, digits)) or "0")
    biased = exponent + _EXP_BIAS
    if not 0 <= biased < (1 << 14) or coefficient >= (1 << 113):
        raise ValueError(f"{d} does not fit in a Decimal128")
    high |= (biased << 49) | (coefficient >> 64)
    low = coefficient & 0xFFFFFFFFFFFFFFFF
    return struct.pack("<QQ", low, high)


def _bid_to_decimal(bid: bytes) -> decimal.Decimal:
    low, high = struct.unpack("<QQ", bid)
    sign = (high >> 63) & 1
    if (high >> 58) & 0x1F == 0x1F:
        return decimal.Decimal("NaN")
    if (high >> 58) & 0x1F == 0x1E:
        return decimal.Decimal("-Infinity" if sign else "Infinity")
    if (high >> 61) & 0x3 == 0x3:  # the form with an implicit 100 prefix: never canonical here
        biased = (high >> 47) & 0x3FFF
        coefficient = 0
    else:
        biased = (high >> 49) & 0x3FFF
        coefficient = ((high & 0x1FFFFFFFFFFFF) << 64) | low
    return decimal.Decimal((sign, tuple(int(c) for c in str(coefficient)), biased - _EXP_BIAS))


class Binary:
    """Binary data with a BSON subtype: ``Binary(b"...", 5)``. Subtype 0 reads back as ``bytes``,
    subtype 4 as ``uuid.UUID``; the others as Binary (``data``, ``subtype``).

    Raises:
        ValueError: a subtype outside 0..255.
    """

    __slots__ = ("data", "subtype")

    def __init__(self, data: bytes, subtype: int = 0) -> None:
        if not 0 <= subtype <= 255:
            raise ValueError("a Binary subtype is 0..255")
        self.data = bytes(data)
        self.subtype = subtype

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Binary) and (other.data, other.subtype) == (self.data, self.subtype)

    def __hash__(self) -> int:
        return hash((self.data, self.subtype))

    def __repr__(self) -> str:
        return f"Binary({self.data!r}, {self.subtype})"


class Regex:
    """A BSON regular expression: ``Regex("^ada", "i")``, a pattern and its flags ("i", "m", "x", "s",
    "u", "l"; kept sorted, as BSON stores them). Use it in filters (``{"name": Regex("^a")}``)."""

    __slots__ = ("pattern", "flags")

    def __init__(self, pattern: str, flags: str = "") -> None:
        self.pattern = pattern
        self.flags = "".join(sorted(flags))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Regex) and (other.pattern, other.flags) == (self.pattern, self.flags)

    def __hash__(self) -> int:
        return hash((self.pattern, self.flags))

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r}, {self.flags!r})"


class Timestamp:
    """A BSON timestamp (the server's internal clock, not a date): ``Timestamp(time, inc)``, seconds
    since the epoch and an ordinal within the second. For dates use ``datetime.datetime``.

    Raises:
        ValueError: ``time`` or ``inc`` outside an unsigned 32-bit integer.
    """

    __slots__ = ("time", "inc")

    def __init__(self, time: int, inc: int) -> None:
        if not (0 <= time < 2**32 and 0 <= inc < 2**32):
            raise ValueError("a Timestamp's time and inc are unsigned 32-bit integers")
        self.time = time
        self.inc = inc

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timestamp) and (other.time, other.inc) == (self.time, self.inc)

    def __hash__(self) -> int:
        return hash((self.time, self.inc))

    def __repr__(self) -> str:
        return f"Timestamp({self.time}, {self.inc})"


class _Key:
    __slots__ = ()
    _instance: ClassVar[Optional[Any]] = None

    def __new__(cls) -> Any:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MinKey(_Key):
    """The BSON MinKey: compares less than every other value on the server (``MinKey()`` is one
    shared instance)."""

    _instance: ClassVar[Optional["MinKey"]] = None


class MaxKey(_Key):
    """The BSON MaxKey: compares greater than every other value on the server (``MaxKey()`` is one
    shared instance)."""

    _instance: ClassVar[Optional["MaxKey"]] = None
