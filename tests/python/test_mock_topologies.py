"""Scripted topologies with mockupdb (the wire-protocol test server MongoDB's drivers use): a
three-member replica set with a step-down and an election, a set with no primary, two mongos with
one down, and the replica-set host-name pitfall.

Each member answers hello from a reply the test changes as it goes, and every other command with
{ok: 1}. The replies carry no topologyVersion, so libmongoc polls (every heartbeatFrequencyMS)
instead of streaming hello: mockupdb 1.8 does not stream, and it is the polling path that a server
without the streaming protocol gets anyway.
"""
from __future__ import annotations

import datetime
import time
from typing import Any, Dict, Iterator, List

import pytest
from bson import ObjectId
from mockupdb import MockupDB

import mgconn
from conftest import Recorder, closed_port


class Member:
    """One mocked server; `hello` is the reply it gives to hello/isMaster right now."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.server = MockupDB(auto_ismaster=False)
        self.server._address = (host, None)  # mockupdb binds "localhost"; the tests need exact addresses
        self.port = self.server.run()
        self.address = f"{host}:{self.port}"
        self.hello: Dict[str, Any] = {}
        self.server.autoresponds(lambda r: r.ok())  # anything else: {ok: 1}
        for name in ("hello", "ismaster", "isMaster"):
            self.server.autoresponds(name, lambda r: r.ok(**self.hello))

    def stop(self) -> None:
        self.server.stop()


BASE = {"minWireVersion": 0, "maxWireVersion": 13, "maxBsonObjectSize": 16 * 1024 * 1024,
        "maxMessageSizeBytes": 48_000_000, "maxWriteBatchSize": 100_000, "logicalSessionTimeoutMinutes": 30}


def rs_hello(me: str, hosts: List[str], primary: bool, election: int = 1, primary_name: str = "") -> Dict[str, Any]:
    reply = dict(BASE, setName="rs0", hosts=hosts, me=me, setVersion=1, ismaster=primary, isWritablePrimary=primary,
                 secondary=not primary, localTime=datetime.datetime.now(datetime.timezone.utc))
    if primary:
        reply["electionId"] = ObjectId(f"{election:024x}")
    if primary_name:
        reply["primary"] = primary_name
    return reply


@pytest.fixture
def members() -> Iterator[List[Member]]:
    made: List[Member] = []
    yield made
    for m in made:
        m.stop()


def three(members: List[Member]) -> List[Member]:
    members.extend(Member() for _ in range(3))
    return members


def test_a_step_down_then_an_election_gives_disconnected_then_reconnected(members, run):
    m1, m2, m3 = three(members)
    hosts = [m.address for m in members]
    m1.hello = rs_hello(m1.address, hosts, primary=True, election=1)
    m2.hello = rs_hello(m2.address, hosts, primary=False, primary_name=m1.address)
    m3.hello = rs_hello(m3.address, hosts, primary=False, primary_name=m1.address)

    async def main():
        conn = mgconn.create_connection(f"mongodb://{m1.address},{m2.address}/app?replicaSet=rs0",
                                        heartbeatFrequencyMS=500, serverSelectionTimeoutMS=5000)
        rec = Recorder(conn)
        await conn
        assert rec.names == ["connecting", "connected", "open"]
        # the primary steps down: no writable member is left
        m1.hello = rs_hello(m1.address, hosts, primary=False)
        m2.hello = rs_hello(m2.address, hosts, primary=False)
        m3.hello = rs_hello(m3.address, hosts, primary=False)
        t0 = time.monotonic()
        at = await rec.wait_for("disconnected", after=3, timeout=10)
        lost = time.monotonic() - t0
        # m2 wins an election (a newer electionId)
        m2.hello = rs_hello(m2.address, hosts, primary=True, election=2)
        m1.hello = rs_hello(m1.address, hosts, primary=False, primary_name=m2.address)
        m3.hello = rs_hello(m3.address, hosts, primary=False, primary_name=m2.address)
        t1 = time.monotonic()
        await rec.wait_for("reconnected", after=at, timeout=10)
        back = time.monotonic() - t1
        assert rec.names[at:] == ["disconnected", "connected", "reconnected", "open"], rec.names
        print(f"step-down seen after {lost * 1000:.0f} ms, new primary after {back * 1000:.0f} ms")
        assert (await conn.run_command({"ping": 1}))["ok"] == 1  # served by the new primary
        await conn.close()
    run(main())


def test_no_primary_is_a_server_selection_error_listing_every_member_with_its_type(members, run):
    m1, m2, m3 = three(members)
    hosts = [m.address for m in members]
    for m in members:
        m.hello = rs_hello(m.address, hosts, primary=False)

    async def main():
        conn = mgconn.create_connection(f"mongodb://{m1.address}/app?replicaSet=rs0", heartbeatFrequencyMS=500,
                                        serverSelectionTimeoutMS=1500)
        with pytest.raises(mgconn.ServerSelectionError) as info:
            await conn
        reason = info.value.reason
        assert reason["type"] == "ReplicaSetNoPrimary", reason
        assert {a: s["type"] for a, s in reason["servers"].items()} == {a: "RSSecondary" for a in hosts}, reason
        await conn.close()
    run(main())


def test_two_mongos_with_one_down_stays_connected(members, run):
    mongos = Member()
    members.append(mongos)
    mongos.hello = dict(BASE, ismaster=True, isWritablePrimary=True, msg="isdbgrid",
                        localTime=datetime.datetime.now(datetime.timezone.utc))
    down = f"127.0.0.1:{closed_port()}"

    async def main():
        conn = mgconn.create_connection(f"mongodb://{mongos.address},{down}/app", heartbeatFrequencyMS=500,
                                        serverSelectionTimeoutMS=3000)
        rec = Recorder(conn)
        await conn
        for _ in range(5):
            assert (await conn.run_command({"ping": 1}))["ok"] == 1
        time.sleep(1.2)  # two heartbeats: the down mongos is known to be down by now
        mgconn.poll()
        assert conn.ready_state == 1 and "disconnected" not in rec.names, rec.names
        await conn.close()
    run(main())


def test_members_known_by_other_names_than_the_seeds_give_a_hint_naming_the_mismatch(members, run):
    # The member listens on 127.0.0.2, but the set's configuration calls it localhost:PORT, which leads
    # to 127.0.0.1 (or ::1), where nothing listens: the guide's host-name pitfall.
    m = Member(host="127.0.0.2")
    members.append(m)
    configured = f"localhost:{m.port}"
    m.hello = rs_hello(configured, [configured], primary=True)

    async def main():
        conn = mgconn.create_connection(f"mongodb://{m.address}/app?replicaSet=rs0", heartbeatFrequencyMS=500,
                                        serverSelectionTimeoutMS=1500)
        with pytest.raises(mgconn.ServerSelectionError) as info:
            await conn
        message = str(info.value)
        assert f"names its members {configured}" in message and m.address in message, (message, info.value.reason)
        assert configured in info.value.reason["servers"], info.value.reason
        print(message)
        await conn.close()
    run(main())
