"""A whole session through ctypes alone: no extension module, no compiler, no BSON package.

    python3 ctypes_scenario.py LIBRARY MANIFEST URI

The binding below is generated at run time from the ABI manifest (argument and return types from
its vocabulary, the error struct from its layout), which is all a compiler-free host needs. Events
are read by polling, so no Python function is ever handed to C.
"""
from __future__ import annotations

import ctypes
import json
import struct
import sys
import time
from typing import Any

# ---- the binding, from the manifest ----------------------------------------------------------------

CTYPES = {"int": ctypes.c_int, "int32": ctypes.c_int32, "int64": ctypes.c_int64, "size": ctypes.c_size_t,
          "string": ctypes.c_char_p, "void": None}


class Mgconn:
    def __init__(self, library: str, manifest_path: str) -> None:
        with open(manifest_path) as f:
            self.manifest = json.load(f)
        self.lib = ctypes.CDLL(library)
        self.c = self.manifest["constants"]
        for fn in self.manifest["functions"]:
            cfn = getattr(self.lib, fn["name"])
            cfn.argtypes = [CTYPES.get(p["type"], ctypes.c_void_p) for p in fn["params"]]
            cfn.restype = CTYPES.get(fn["returns"]["type"], ctypes.c_void_p)
        layout = self.manifest["structs"]["mgconn_error"]
        self.error_size = layout["size_lp64"]
        self.fields = {f["name"]: f for f in layout["fields"]}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lib, "mgconn_" + name)

    def new_error(self) -> ctypes.Array[ctypes.c_char]:
        return ctypes.create_string_buffer(self.error_size)

    def error_fields(self, address: int) -> tuple[int, str]:
        raw = ctypes.string_at(address, self.error_size)
        category = struct.unpack_from("<i", raw, self.fields["category"]["offset"])[0]
        off = self.fields["message"]["offset"]
        message = raw[off : off + self.fields["message"]["count"]].split(b"\0", 1)[0].decode()
        return category, message


# ---- enough BSON for the scenario ------------------------------------------------------------------

def encode(doc: dict[str, Any]) -> bytes:
    body = b""
    for key, value in doc.items():
        k = key.encode() + b"\0"
        if isinstance(value, bool):
            body += b"\x08" + k + (b"\x01" if value else b"\x00")
        elif isinstance(value, int):
            body += b"\x12" + k + struct.pack("<q", value)
        elif isinstance(value, float):
            body += b"\x01" + k + struct.pack("<d", value)
        elif isinstance(value, str):
            s = value.encode() + b"\0"
            body += b"\x02" + k + struct.pack("<i", len(s)) + s
        elif isinstance(value, dict):
            body += b"\x03" + k + encode(value)
        else:
            raise TypeError(f"{key}: cannot encode {type(value).__name__}")
    return struct.pack("<i", len(body) + 5) + body + b"\0"


def decode(data: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pos, end = 4, struct.unpack_from("<i", data)[0] - 1
    while pos < end:
        kind = data[pos]
        key_end = data.index(b"\0", pos + 1)
        key = data[pos + 1 : key_end].decode()
        pos = key_end + 1
        if kind == 0x01:
            out[key] = struct.unpack_from("<d", data, pos)[0]; pos += 8
        elif kind == 0x02:
            n = struct.unpack_from("<i", data, pos)[0]
            out[key] = data[pos + 4 : pos + 3 + n].decode(); pos += 4 + n
        elif kind in (0x03, 0x04):
            n = struct.unpack_from("<i", data, pos)[0]
            out[key] = decode(data[pos : pos + n]); pos += n
        elif kind == 0x07:
            out[key] = data[pos : pos + 12].hex(); pos += 12
        elif kind == 0x08:
            out[key] = data[pos] == 1; pos += 1
        elif kind == 0x0A:
            out[key] = None
        elif kind == 0x10:
            out[key] = struct.unpack_from("<i", data, pos)[0]; pos += 4
        elif kind == 0x12:
            out[key] = struct.unpack_from("<q", data, pos)[0]; pos += 8
        else:
            raise ValueError(f"{key}: BSON type {kind:#x} not needed here")
    return out


# ---- the scenario ------------------------------------------------------------------------------------

def main() -> None:
    library, manifest_path, uri = sys.argv[1:4]
    m = Mgconn(library, manifest_path)
    c = m.c
    err = m.new_error()

    assert m.init() >= 1
    rt = ctypes.c_void_p()
    assert m.runtime_new(ctypes.byref(rt), None, 0, err) == 0, m.error_fields(ctypes.addressof(err))

    # A bad option: refused at once with a message naming it (and never the password).
    conn = ctypes.c_void_p()
    bad = encode({"serverSelectionTimeoutMS": "soon"})
    rc = m.connection_new(ctypes.byref(conn), rt, b"mongodb://u:hunter2@127.0.0.1:1/x", bad, len(bad), err)
    category, message = m.error_fields(ctypes.addressof(err))
    assert rc == -c["MGCONN_ERR_OPTION"] and category == c["MGCONN_ERR_OPTION"], (rc, message)
    assert "serverSelectionTimeoutMS" in message and "hunter2" not in message, message
    print("   bad option:", message)
    m.error_cleanup(err)

    assert m.connection_new(ctypes.byref(conn), rt, uri.encode(), None, 0, err) == 0, m.error_fields(ctypes.addressof(err))
    assert m.connection_queue_events(conn, 32) == 0
    coll = ctypes.c_void_p()
    assert m.connection_collection(ctypes.byref(coll), conn, b"ctypes_players", err) == 0

    doc = encode({"name": "grace", "level": 12, "pos": {"x": 1.5, "y": -2.0}})
    insert = ctypes.c_void_p()
    assert m.collection_insert_one(ctypes.byref(insert), coll, doc, len(doc), None, 0, None, None) == 0

    def poll_until(last: int) -> list[str]:
        seen: list[str] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not seen or seen[-1] != m.event_type_name(last).decode()):
            m.runtime_dispatch(rt, 0)
            while (t := m.connection_next_event(conn, err)) != 0:
                seen.append(m.event_type_name(t).decode())
            time.sleep(0.002)
        return seen

    assert poll_until(c["MGCONN_EVENT_OPEN"]) == ["connecting", "connected", "open"]

    def finish(op: ctypes.c_void_p) -> dict[str, Any]:
        status = m.op_wait(op, 10000)
        if status != c["MGCONN_OP_SUCCEEDED"]:
            raise AssertionError(m.error_fields(m.op_error(op)))
        data = ctypes.POINTER(ctypes.c_uint8)()
        size = ctypes.c_size_t()
        assert m.op_reply(op, ctypes.byref(data), ctypes.byref(size)) == 0
        return decode(ctypes.string_at(data, size.value))

    assert "insertedId" in finish(insert)

    find = ctypes.c_void_p()
    flt = encode({"name": "grace"})
    assert m.collection_find_one(ctypes.byref(find), coll, flt, len(flt), None, 0, None, None) == 0
    found = finish(find)["document"]
    assert found["level"] == 12 and found["pos"] == {"x": 1.5, "y": -2.0}, found

    # An operation the server refuses fails clearly, and the connection goes on.
    cmd = encode({"noSuchCommand": 1})
    failed = ctypes.c_void_p()
    assert m.run_command(ctypes.byref(failed), conn, None, cmd, len(cmd), None, None) == 0
    assert m.op_wait(failed, 10000) == c["MGCONN_OP_FAILED"]
    category, message = m.error_fields(m.op_error(failed))
    assert category == c["MGCONN_ERR_OPERATION"] and "noSuchCommand" in message, (category, message)
    print("   refused command:", message)
    count = ctypes.c_void_p()
    assert m.collection_count_documents(ctypes.byref(count), coll, flt, len(flt), None, 0, None, None) == 0
    assert finish(count)["count"] == 1

    closing = ctypes.c_void_p()
    assert m.connection_close(ctypes.byref(closing), conn, 0, None, None) == 0
    assert poll_until(c["MGCONN_EVENT_CLOSE"]) == ["disconnecting", "disconnected", "close"]
    finish(closing)
    assert m.connection_ready_state(conn) == c["MGCONN_STATE_DISCONNECTED"]

    for op in (insert, find, failed, count, closing):
        m.op_free(op)
    m.collection_free(coll)
    m.connection_free(conn)
    m.runtime_free(rt)
    m.error_cleanup(err)
    assert m.shutdown() >= 0
    print(f"   scenario passed through ctypes alone ({len(m.manifest['functions'])} functions bound from the manifest)")


if __name__ == "__main__":
    main()
