"""Event listeners as Node's EventEmitter has them, kept by the core for both hosts: the same
callback added twice is two listeners and off() removes one, once() hears one event, a model's
listeners follow the same rules, and a listener that refers to its connection does not keep it
alive."""
from __future__ import annotations

import gc
import weakref
from typing import List, Optional

import mgconn


def test_the_same_callback_twice_is_two_listeners_and_off_removes_one(mongodb_uri):
    conn = mgconn.create_connection(mongodb_uri)
    heard: List[str] = []

    def on_open() -> None:
        heard.append("open")

    conn.on("open", on_open).on("open", on_open).off("open", on_open)
    conn.once("connected", lambda: heard.append("connected once"))
    conn.off("reconnected", on_open)  # never added: nothing happens
    conn.wait_open(20)
    mgconn.poll()
    assert heard == ["connected once", "open"]
    conn.close().result(20)
    mgconn.poll()
    assert heard == ["connected once", "open"]


def test_a_models_listeners_follow_the_same_rules(mongodb_uri):
    conn = mgconn.create_connection(mongodb_uri)
    Thing = conn.model("Thing", mgconn.Schema({"n": int}))
    heard: List[Optional[BaseException]] = []
    once: List[Optional[BaseException]] = []

    def on_index(err: Optional[BaseException]) -> None:
        heard.append(err)

    Thing.on("index", on_index).on("index", on_index).off("index", on_index)
    Thing.once("index", once.append)
    conn.wait_open(20)
    Thing.init().result(20)
    mgconn.poll()
    assert heard == [None] and once == [None]
    conn.close().result(20)
    conn.open_uri(mongodb_uri).wait_open(20)  # a second open runs the init again
    Thing.init().result(20)
    mgconn.poll()
    assert heard == [None, None] and once == [None]
    conn.close().result(20)


def test_a_listener_that_refers_to_its_connection_does_not_keep_it_alive(mongodb_uri):
    conn = mgconn.create_connection(mongodb_uri)
    conn.wait_open(20)
    child = conn.use_db("other")
    child.on("close", lambda: print(child.name))  # the listener refers to the connection it is on
    gone = weakref.ref(child)
    del child
    gc.collect()
    assert gone() is None, "a use_db child with a listener that refers to it was never collected"
    conn.close().result(20)
