#!/usr/bin/env python3
"""A scripted one-member replica set (mockupdb) for the Lua specs' transactions and change streams:
prints
``ready <port>`` once it listens, answers hello as a primary of set "rs0", writes every other
command it receives to the --log file as one JSON line (name, lsid as hex, txnNumber,
startTransaction, autocommit) and answers it {ok: 1}, except as --scenario says:

  commit          every command succeeds
  transient       the first insert fails with WriteConflict labelled TransientTransactionError
  unknown_commit  the first two commitTransaction fail labelled UnknownTransactionCommitResult
  stream          a change stream: aggregate and getMore answer, in turn, no event, events 1 and 2,
                  CursorNotFound (resumable), then event 3 (to the aggregate that resumes it)
  stream_hangup   the same, with the connection closed instead of CursorNotFound
  quiet_stream    a change stream that never has an event (each batch empty, its cursor open)

It prints ``ready <port> <pid>`` and runs until SIGTERM (the spec's kill). Needs the test requirements'
mockupdb (tests/python/requirements.txt), as tests/python/test_transactions.py does.
"""
import argparse
import datetime
import json
import os
import signal
import threading

from mockupdb import MockupDB


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="commit",
                    choices=["commit", "transient", "unknown_commit", "stream", "stream_hangup", "quiet_stream"])
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # waited for below
    failures = {"insert": 1 if args.scenario == "transient" else 0,
                "commitTransaction": 2 if args.scenario == "unknown_commit" else 0}
    lock = threading.Lock()
    log = open(args.log, "a", buffering=1)
    server = MockupDB(auto_ismaster=False)
    server._address = ("127.0.0.1", None)
    port = server.run()
    address = f"127.0.0.1:{port}"
    hello = {"minWireVersion": 0, "maxWireVersion": 13, "maxBsonObjectSize": 16 * 1024 * 1024,
             "maxMessageSizeBytes": 48_000_000, "maxWriteBatchSize": 100_000, "logicalSessionTimeoutMinutes": 30,
             "setName": "rs0", "hosts": [address], "me": address, "setVersion": 1, "ismaster": True,
             "isWritablePrimary": True, "secondary": False,
             "localTime": datetime.datetime.now(datetime.timezone.utc)}

    def event(n: int):
        return {"_id": {"_data": f"T{n}"}, "operationType": "insert", "fullDocument": {"_id": n},
                "documentKey": {"_id": n}}

    stream_steps = [[], [event(1), event(2)], "break", [event(3)]]

    def stream_reply(request, name: str) -> bool:
        with lock:
            step = stream_steps.pop(0) if stream_steps and args.scenario != "quiet_stream" else []
        if step == "break" and args.scenario == "stream_hangup":
            return request.hangup()
        if step == "break":
            return request.reply({"ok": 0, "code": 43, "codeName": "CursorNotFound", "errmsg": "cursor gone"})
        token = step[-1]["_id"] if step else {"_data": "PB"}
        batch = "firstBatch" if name == "aggregate" else "nextBatch"
        return request.reply({"ok": 1, "cursor": {"id": 42, "ns": "shop.orders", batch: step,
                                                  "postBatchResumeToken": token}})

    def respond(request) -> bool:
        doc = request.doc
        name = next(iter(doc))
        lsid = doc.get("lsid", {}).get("id")
        with lock:
            stage = (doc.get("pipeline") or [{}])[0].get("$changeStream") if name == "aggregate" else None
            log.write(json.dumps({"name": name, "lsid": repr(lsid) if lsid is not None else None,
                                  "txnNumber": doc.get("txnNumber"), "startTransaction": doc.get("startTransaction"),
                                  "autocommit": doc.get("autocommit"),
                                  "resumeAfter": (stage or {}).get("resumeAfter")}) + "\n")
            fail = failures.get(name, 0) > 0
            if fail:
                failures[name] -= 1
        if "stream" in args.scenario and name in ("aggregate", "getMore"):
            return stream_reply(request, name)
        if fail and name == "insert":
            return request.reply({"ok": 0, "code": 112, "codeName": "WriteConflict", "errmsg": "write conflict",
                                  "errorLabels": ["TransientTransactionError"]})
        if fail:
            return request.reply({"ok": 0, "code": 79, "codeName": "UnknownReplWriteConcern",
                                  "errmsg": "no such write concern", "errorLabels": ["UnknownTransactionCommitResult"]})
        return request.reply({"ok": 1, "n": 1} if name in ("insert", "update", "delete") else {"ok": 1})

    server.autoresponds(respond)  # first: a responder added later is asked first
    for name in ("hello", "ismaster", "isMaster"):
        server.autoresponds(name, lambda r: r.ok(**hello))
    print(f"ready {port} {os.getpid()}", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    server.stop()


if __name__ == "__main__":
    main()
