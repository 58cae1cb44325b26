"""The API references are generated from the code and checked against it: docs/python-api.md from
the package's docstrings (every public name has one), docs/lua-api.md from the structured comments
of lua/mgconn.lua (every function the module exports has an entry, and every entry is exported)."""
from __future__ import annotations

import importlib.util
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import mgconn
from mgconn import _mgconn

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("MGCONN_BUILD_DIR", ROOT / "build"))


def _tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "tools" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_python_api_page_is_current_and_every_public_name_has_a_docstring():
    out = subprocess.run([sys.executable, str(ROOT / "docs" / "tools" / "python_api.py"), "--check"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    page = (ROOT / "docs" / "python-api.md").read_text()
    for name in ["Collection.update_one(", "Collection.aggregate(", "Cursor.to_list(", "Collection.create_indexes(",
                 "mgconn.Decimal128(", "mgconn.ObjectId(", "mgconn.ValidationError", "Future.result(",
                 "UpdateResult.matched_count", "mongodb_uri"]:
        assert name in page, name


def test_the_python_check_names_an_undocumented_member_and_a_stale_page(monkeypatch):
    tool = _tool("python_api")
    assert tool.missing_docstrings() == []
    before = tool.render()
    monkeypatch.setattr(mgconn.Collection.insert_one, "__doc__", None)
    monkeypatch.setattr(mgconn.UpdateResult, "__doc__", "The result of an update.")  # names no raw_result
    missing = tool.missing_docstrings()
    assert "Collection.insert_one" in missing
    assert "UpdateResult.acknowledged (not named in the class docstring)" in missing
    assert tool.render() != before  # the committed page would be out of date


def test_the_extension_types_document_their_methods_and_attributes():
    undocumented = []
    for type_name in ["Runtime", "Connection", "Collection", "Model", "Schema", "Op", "Cursor"]:
        cls = getattr(_mgconn, type_name)
        assert cls.__doc__, type_name
        for name, member in vars(cls).items():
            if not name.startswith("_") and not (getattr(member, "__doc__", None) or "").strip():
                undocumented.append(f"_mgconn.{type_name}.{name}")
    for name in ["encode", "decode", "pluralize"]:
        if not getattr(_mgconn, name).__doc__:
            undocumented.append(f"_mgconn.{name}")
    assert undocumented == []
