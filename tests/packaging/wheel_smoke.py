"""Run by tests/packaging/wheel_check.sh with the Python of a fresh venv holding only the repaired
wheel: mgconn loads from that venv and works against a FerretDB ($MGCONN_FERRETDB)."""
import sys

import mgconn
from mgconn import _mgconn
from mgconn.ferretdb import FerretDB

assert _mgconn.__file__.startswith(sys.prefix), (_mgconn.__file__, sys.prefix)
with FerretDB() as server:
    conn = mgconn.create_connection(server.uri + "wheel_smoke").wait_open(30)
    items = conn.collection("items")
    items.insert_one({"name": "ada", "n": 1}).result(10)
    found = items.find_one({"name": "ada"}).result(10)
    assert found is not None and found["n"] == 1, found
    conn.close().result(10)
print(f"wheel smoke: mgconn {mgconn.__version__} from {_mgconn.__file__} inserted and found a document")
