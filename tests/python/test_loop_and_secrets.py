"""The event loop is never blocked by mgconn, and passwords appear nowhere."""
from __future__ import annotations

import asyncio
import logging
import time

import mgconn
from conftest import Recorder, closed_port


async def _ticker(stalls: list, stop: asyncio.Event) -> None:
    last = time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(0.01)
        now = time.monotonic()
        stalls.append(now - last - 0.01)
        last = now


def test_a_10ms_ticker_never_stalls_while_operations_run_and_the_server_is_down(ferretdb, run):
    async def main():
        stalls: list = []
        stop = asyncio.Event()
        ticker = asyncio.ensure_future(_ticker(stalls, stop))
        conn = mgconn.create_connection(ferretdb.uri + "loop", heartbeatFrequencyMS=500, bufferTimeoutMS=3000)
        rec = Recorder(conn)
        await conn
        items = conn.collection("items")
        await asyncio.gather(*[items.insert_one({"n": i}) for i in range(200)])
        busy_worst = max(stalls)
        await asyncio.to_thread(ferretdb.kill)  # the test's own blocking work stays off the loop
        await rec.wait_for("disconnected", timeout=5)
        down = [items.find_one({"n": i}) for i in range(200)]  # buffered while down
        await asyncio.sleep(1.0)
        await asyncio.to_thread(ferretdb.start)
        await asyncio.gather(*down)
        stop.set()
        await ticker
        worst = max(stalls)
        print(f"ticker worst stall {worst * 1000:.1f} ms (with 200 operations: {busy_worst * 1000:.1f} ms), "
              f"{len(stalls)} ticks")
        assert worst < 0.05, f"the loop stalled {worst * 1000:.1f} ms"
        await conn.close()
    run(main())


def test_password_appears_in_no_error_or_debug_or_log_line(run, caplog):
    secret = "Sup3rS3cretPa55"
    lines = []
    port = closed_port()
    caplog.set_level(logging.DEBUG, logger="mgconn")

    async def main():
        mgconn.set("debug", lines.append)
        try:
            conn = mgconn.create_connection(f"mongodb://ada:{secret}@127.0.0.1:{port}/x?bufferCommands=false",
                                            serverSelectionTimeoutMS=300)
            texts = []
            try:
                await conn
            except mgconn.MgconnError as e:
                texts += [str(e), repr(e.reason)]
            for bad in ({"heartbeatFrequencyMS": 100}, {"frobnicate": 1}):
                try:
                    mgconn.create_connection(f"mongodb://ada:{secret}@127.0.0.1:{port}/x", **bad)
                except mgconn.OptionError as e:
                    texts.append(str(e))
            try:  # refused for the connection string itself: the message quotes it, masked
                mgconn.create_connection(f"mongodb://ada:{secret}@127.0.0.1:{port}/x?heartbeatFrequencyMS=100")
            except mgconn.OptionError as e:
                texts.append(str(e))
            try:
                mgconn.create_connection(f"mongodb://127.0.0.1:{port}/x", user="ada", password=secret)
            except mgconn.OptionError as e:
                texts.append(str(e))
            other = mgconn.create_connection(f"mongodb://127.0.0.1:{port}/x", user="ada", **{"pass": secret},
                                             serverSelectionTimeoutMS=300)
            try:
                await other.collection("c").insert_one({"a": 1})
            except mgconn.MgconnError as e:
                texts.append(str(e))
            await other.close(force=True)
            await conn.close(force=True)
            return texts
        finally:
            mgconn.set("debug", False)

    texts = run(main())
    everything = "\n".join(texts + lines + [r.getMessage() for r in caplog.records])
    assert "ada:****@" in everything
    assert secret not in everything
