#!/usr/bin/env python3
"""A hostile MongoDB server on loopback: a scripted peer for fault injection (mockupdb scripts
topologies; this one breaks the wire protocol). Standard library only..

It answers like a healthy standalone server (hello, ping, insert, find, endSessions, anything else
{ok: 1}) except while its control file says "hostile": then the first message naming the chosen
command (`--on hello` or `--on insert`, ...) gets the scenario's crafted reply instead:

  huge_length     a header claiming a 2 GB message, then nothing more
  section_overrun an OP_MSG whose document is longer than the message that carries it
  truncated       the first 20 bytes of a valid reply, then the connection is closed
  corrupt_type    a well-framed reply whose first element has an invalid BSON type (no readable ok)
  no_ok           a well-framed, valid reply without an ok field
  silence         no reply at all (the connection stays open)
  slow_drip       a valid reply sent one byte every 0.25 s
  claim_then_flood a header claiming 1.75 GB, then 300 MB of bytes as fast as the peer takes them

Writing "behave" into the control file makes it healthy again for every new message. It prints
its port on stdout once it listens, and stops when stdin closes (its parent is gone).
"""
import argparse
import socket
import struct
import sys
import threading
import time


OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013
HELLO_NAMES = {"hello", "ismaster", "isMaster"}


def encode(doc):
    """BSON for the few types the replies use (no dependency: this runs before any venv exists)."""
    out = b""
    for key, value in doc.items():
        k = key.encode() + b"\0"
        if isinstance(value, bool):
            out += b"\x08" + k + (b"\x01" if value else b"\x00")
        elif isinstance(value, int):
            out += b"\x12" + k + struct.pack("<q", value) if abs(value) >= 2**31 else b"\x10" + k + struct.pack("<i", value)
        elif isinstance(value, float):
            out += b"\x01" + k + struct.pack("<d", value)
        elif isinstance(value, str):
            v = value.encode()
            out += b"\x02" + k + struct.pack("<i", len(v) + 1) + v + b"\0"
        elif isinstance(value, dict):
            out += b"\x03" + k + encode(value)
        elif isinstance(value, list):
            out += b"\x04" + k + encode({str(i): v for i, v in enumerate(value)})
        else:
            raise TypeError(type(value))
    return struct.pack("<i", len(out) + 5) + out + b"\0"


def first_key(doc_bytes):
    return doc_bytes[5:doc_bytes.index(b"\0", 5)].decode()


def hello_reply():
    return {"ismaster": True, "isWritablePrimary": True, "helloOk": True, "maxBsonObjectSize": 16 * 1024 * 1024,
            "maxMessageSizeBytes": 48000000, "maxWriteBatchSize": 100000,
            "logicalSessionTimeoutMinutes": 30, "connectionId": 1, "minWireVersion": 0, "maxWireVersion": 21,
            "readOnly": False, "ok": 1.0}


def healthy_reply(name, sequences):
    if name in HELLO_NAMES:
        return hello_reply()
    if name == "insert":
        return {"n": sequences.get("documents", 1), "ok": 1.0}
    if name == "find":
        return {"cursor": {"id": 0, "ns": "db.coll", "firstBatch": []}, "ok": 1.0}
    return {"ok": 1.0}


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("peer closed")
        data += chunk
    return data


def parse(op_code, body):
    """The command's name and the number of documents in each OP_MSG document sequence."""
    sequences = {}
    if op_code == OP_QUERY:
        pos = body.index(b"\0", 4) + 1 + 8  # flags, collection name, skip, return
        return first_key(body[pos:]), sequences
    flags = struct.unpack_from("<I", body, 0)[0]
    end = len(body) - (4 if flags & 1 else 0)
    pos, name = 4, ""
    while pos < end:
        kind = body[pos]
        pos += 1
        size = struct.unpack_from("<i", body, pos)[0]
        if kind == 0:
            name = first_key(body[pos:pos + size])
        else:
            ident_end = body.index(b"\0", pos + 4)
            count, p = 0, ident_end + 1
            while p < pos + size:
                p += struct.unpack_from("<i", body, p)[0]
                count += 1
            sequences[body[pos + 4:ident_end].decode()] = count
        pos += size
    return name, sequences


def frame(op_code, request_id, response_to, doc_bytes):
    if op_code == OP_QUERY:  # legacy hello: OP_REPLY
        payload = struct.pack("<iqii", 8, 0, 0, 1) + doc_bytes
        code = OP_REPLY
    else:
        payload = struct.pack("<I", 0) + b"\0" + doc_bytes
        code = OP_MSG
    return struct.pack("<iiii", 16 + len(payload), request_id, response_to, code) + payload


class Server:
    def __init__(self, scenario, on, control):
        self.scenario, self.on, self.control = scenario, on, control
        self.next_id = 1000
        self.lock = threading.Lock()

    def hostile(self):
        try:
            with open(self.control) as f:
                return f.read().strip() == "hostile"
        except OSError:
            return False

    def serve(self, sock):
        try:
            while True:
                header = recv_exact(sock, 16)
                length, request_id, _, op_code = struct.unpack("<iiii", header)
                body = recv_exact(sock, length - 16)
                name, sequences = parse(op_code, body)
                matches = name in HELLO_NAMES if self.on == "hello" else name == self.on
                with self.lock:
                    self.next_id += 1
                    rid = self.next_id
                if matches and self.hostile():
                    if not self.attack(sock, op_code, rid, request_id, name, sequences):
                        return
                    continue
                reply = frame(op_code, rid, request_id, encode(healthy_reply(name, sequences)))
                sock.sendall(reply)
        except (ConnectionError, OSError, ValueError, struct.error):
            pass
        finally:
            sock.close()

    def attack(self, sock, op_code, rid, request_id, name, sequences):
        """Sends the scenario's reply; False when the connection is to be dropped afterwards."""
        good = encode(healthy_reply(name, sequences))
        s = self.scenario
        if s == "huge_length":
            sock.sendall(struct.pack("<iiii", 0x7FFFFFF0, rid, request_id, OP_MSG) + b"\0" * 64)
            time.sleep(30)
            return False
        if s == "section_overrun":
            doc = struct.pack("<i", 4096) + good[4:]  # claims 4 kB, carries a few bytes
            payload = struct.pack("<I", 0) + b"\0" + doc
            sock.sendall(struct.pack("<iiii", 16 + len(payload), rid, request_id, OP_MSG) + payload)
            return True
        if s == "truncated":
            sock.sendall(frame(op_code, rid, request_id, good)[:20])
            return False
        if s == "corrupt_type":
            doc = bytearray(good)
            doc[4] = 0x7E  # the first element's type byte
            sock.sendall(frame(op_code, rid, request_id, bytes(doc)))
            return True
        if s == "no_ok":
            reply = {k: v for k, v in healthy_reply(name, sequences).items() if k != "ok"}
            sock.sendall(frame(op_code, rid, request_id, encode(reply)))
            return True
        if s == "silence":
            time.sleep(30)
            return False
        if s == "slow_drip":
            for byte in frame(op_code, rid, request_id, good):
                sock.sendall(bytes([byte]))
                time.sleep(0.25)
            return True
        if s == "claim_then_flood":
            sock.sendall(struct.pack("<iiii", 1879048192, rid, request_id, OP_MSG))
            chunk = b"\xAB" * (1 << 20)
            for _ in range(300):
                sock.sendall(chunk)
            return False
        raise SystemExit(f"unknown scenario {s}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--on", default="insert")
    ap.add_argument("--control", required=True)
    args = ap.parse_args()
    server = Server(args.scenario, args.on, args.control)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print(listener.getsockname()[1], flush=True)

    def accept():
        while True:
            sock, _ = listener.accept()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=server.serve, args=(sock,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    sys.stdin.read()  # until the parent goes away


if __name__ == "__main__":
    main()
