"""The codec's fast paths give the same values as the plain ones: decoded keys come from a cache whose
sets are picked by a hash of a key's length and first and last 8 bytes, and mgconn's own types are
recognised by their exact type before isinstance (so subclasses must still be recognised)."""
from __future__ import annotations

import datetime
import uuid

import pytest

from mgconn import Binary, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp, _mgconn


def round_trip(doc):
    return _mgconn.decode(_mgconn.encode(doc))


def test_keys_alike_at_both_ends_are_told_apart():
    # same length, same first and last 8 bytes: the same cache set, so only the byte comparison
    # tells them apart; four of them also evict one another from the two-way set, in turn
    keys = [f"aaaaaaaa{c}bbbbbbbb" for c in "WXYZ"]
    for _ in range(3):
        for k in keys:
            assert list(round_trip({k: 1})) == [k]
        doc = {k: i for i, k in enumerate(keys)}
        assert round_trip(doc) == doc and list(round_trip(doc)) == keys


@pytest.mark.parametrize("key", ["", "a", "abcdefg", "abcdefgh", "abcdefghi", "x" * 64, "x" * 65, "y" * 300])
def test_keys_of_every_length_round_trip(key):
    for _ in range(2):  # the second decode reads the cached key, when it is cached
        assert round_trip({key: key, "k" + key: 1}) == {key: key, "k" + key: 1}


def test_keys_that_differ_only_in_length_or_in_the_middle():
    doc = {"ab": 1, "ab\x01": 2, "abc": 3, "abcdefghXijklmnop": 4, "abcdefghYijklmnop": 5, "abcdefgh": 6}
    for _ in range(2):
        assert round_trip(doc) == doc


def test_non_ascii_keys_are_decoded_each_time_not_cached_wrongly():
    doc = {"clé": 1, "cle": 2, "ключ": 3, "鍵": 4, "aaaaaaaaébbbbbbbb": 5, "aaaaaaaaebbbbbbbb": 6}
    for _ in range(3):
        back = round_trip(doc)
        assert back == doc and list(back) == list(doc)


def test_more_distinct_keys_than_the_cache_holds():
    doc = {f"field_{i:05d}": i for i in range(6000)}
    for _ in range(2):
        assert round_trip(doc) == doc


def test_every_type_round_trips_by_its_exact_type():
    doc = {"oid": ObjectId(), "dec": Decimal128("1.5"), "bin": Binary(b"\x00\x01", 5), "re": Regex("^a", "i"),
           "ts": Timestamp(7, 9), "min": MinKey(), "max": MaxKey(), "uuid": uuid.uuid4(), "i64": Int64(3),
           "dt": datetime.datetime(2020, 1, 2, 3, 4, 5, 6000, tzinfo=datetime.timezone.utc)}
    assert round_trip(doc) == doc


def test_subclasses_of_the_types_are_still_recognised():
    class MyOid(ObjectId):
        pass

    class MyRegex(Regex):
        pass

    class MyBinary(Binary):
        pass

    class MyTimestamp(Timestamp):
        pass

    class MyMax(MaxKey):
        pass

    class MyUUID(uuid.UUID):
        pass

    oid = MyOid()
    u = MyUUID(int=12345)
    back = round_trip({"o": oid, "r": MyRegex("x", "m"), "b": MyBinary(b"z", 9), "t": MyTimestamp(1, 2),
                       "m": MyMax(), "u": u})
    assert back == {"o": ObjectId(oid.binary), "r": Regex("x", "m"), "b": Binary(b"z", 9), "t": Timestamp(1, 2),
                    "m": MaxKey(), "u": uuid.UUID(int=12345)}
    assert type(back["o"]) is ObjectId and type(back["m"]) is MaxKey


def test_an_unknown_type_still_names_its_key_path():
    class Other:
        pass

    with pytest.raises(TypeError, match=r"doc\.a\.b\[1\]: .*Other"):
        _mgconn.encode({"a": {"b": [MaxKey(), Other()]}})


def test_a_broken_value_of_a_known_type_names_its_key_path():
    r = Regex("x")
    r.pattern = 5  # type: ignore[assignment]
    with pytest.raises(ValueError, match=r"a Regex needs a str pattern at doc\.r"):
        _mgconn.encode({"r": r})


def test_int64_values_decode_exactly_and_as_int64():
    values = [Int64(v) for v in (0, 1, -1, 2**31, -2**31 - 1, 2**63 - 1, -2**63, 123456789012345)]
    back = round_trip({"v": values, "one": values[-1], "d": {"x": values[5]}})
    assert back["v"] == values and all(type(v) is Int64 for v in back["v"])
    assert type(back["one"]) is Int64 and back["one"] == 123456789012345 and back["d"]["x"] == 2**63 - 1
    assert [repr(v) for v in back["v"][:3]] == ["Int64(0)", "Int64(1)", "Int64(-1)"]
    kept = [round_trip({"i": Int64(i)})["i"] for i in range(2**40, 2**40 + 1000)]  # none shares another's value
    assert kept == list(range(2**40, 2**40 + 1000))


def test_strings_symbols_doubles_bools_and_int32_decode_through_the_inline_readers():
    doc = {"s": "héllo\x00 wörld", "e": "", "f": -0.5, "t": True, "n": False, "i": -7, "big": 2**31 - 1}
    back = round_trip(doc)
    assert back == doc and type(back["i"]) is int and type(back["big"]) is int


def test_ascii_and_other_strs_encode_alike_and_bad_ones_are_still_refused():
    doc = {"ascii": "plain", "latin": "é", "wide": "鍵 \U0001F600", "nul": "a\x00b", "é": "k", "": ""}
    assert round_trip(doc) == doc
    with pytest.raises(ValueError, match=r"a key that is not valid UTF-8 at doc"):
        _mgconn.encode({"a\ud800": 1})
    with pytest.raises(ValueError, match=r"not valid UTF-8 \(lone surrogates\) at doc\.a"):
        _mgconn.encode({"a": "x\ud800"})
    with pytest.raises(ValueError, match=r"a key with a NUL character at doc\.a"):
        _mgconn.encode({"a\x00b": 1})


def test_short_keys_that_share_bytes_are_told_apart():
    keys = ["a", "b", "ab", "ba", "aa", "abc", "acb", "bac", "abcd", "abdc", "abcde", "abxde", "abcdefg", "abcxefg"]
    doc = {k: i for i, k in enumerate(keys)}
    for _ in range(3):
        back = round_trip(doc)
        assert back == doc and list(back) == keys


def test_documents_of_changing_shape_under_the_same_first_key():
    # the size hint comes from the last document that began with the same key: wrong hints in both
    # directions, empty documents and nested ones must all decode exactly
    shapes = [{"k": 1, **{f"f{i}": i for i in range(n)}} for n in (0, 200, 3, 1000, 0, 50)]
    for doc in shapes + shapes[::-1]:
        assert round_trip(doc) == doc
    assert round_trip({}) == {} and round_trip({"a": {}, "b": [{}, {"k": {}}]}) == {"a": {}, "b": [{}, {"k": {}}]}
