"""What `pip install mgconn` tells a user about the package: its version, licence and description,
and that it runs on every Python it claims (this file is in the smoke subset run on each of them)."""
from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest

import mgconn
from mgconn import _mgconn

ROOT = Path(__file__).resolve().parents[2]


def test_version_is_the_distributions_and_the_cores():
    assert mgconn.__version__ == metadata.version("mgconn") == mgconn.core_version
    assert mgconn.version == mgconn.__version__


def test_metadata_states_the_licence_and_ships_its_text():
    meta = metadata.metadata("mgconn")
    assert "Apache-2.0" in (meta.get("License-Expression"), meta.get("License"))
    files = [str(f) for f in metadata.files("mgconn") or []]
    licence = [f for f in files if f.endswith("LICENSE")]
    assert licence, files
    text = Path(metadata.distribution("mgconn").locate_file(licence[0])).read_text()
    assert "Apache License" in text and "Version 2.0" in text


def test_long_description_is_the_readme():
    meta = metadata.metadata("mgconn")
    assert meta["Description-Content-Type"] == "text/markdown"
    body = meta.get_payload() or meta.get("Description", "")
    assert body.strip().startswith("# mgconn") and "./scripts/test.sh" in body


def test_classifiers_name_every_supported_python_and_it_is_one_of_them():
    meta = metadata.metadata("mgconn")
    classifiers = meta.get_all("Classifier") or []
    versions = sorted(int(c.rsplit(".", 1)[1]) for c in classifiers
                      if c.startswith("Programming Language :: Python :: 3.") and c.count("::") == 2)
    assert versions == list(range(9, 14))
    assert meta["Requires-Python"] == ">=3.9"
    assert sys.version_info[1] in versions


@pytest.mark.parametrize("name", ["Collection", "Model", "Op", "Cursor"])
def test_handle_types_made_only_by_mgconn_cannot_be_instantiated(name):
    # An instance made by hand would hold no C handle; every supported Python refuses to make one.
    with pytest.raises(TypeError, match="cannot create"):
        getattr(_mgconn, name)()
