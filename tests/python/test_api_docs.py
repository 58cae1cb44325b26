"""The API references are generated from the code and checked against it: docs/python-api.md from
the package's docstrings (every public name has one), docs/lua-api.md from the structured comments
of lua/mgconn.lua (every function the module exports has an entry, and every entry is exported)."""
from __future__ import annotations

import importlib.util
import os
import re
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
    for type_name in ["Runtime", "Connection", "Collection", "Model", "Schema", "Op", "Cursor", "Session"]:
        cls = getattr(_mgconn, type_name)
        assert cls.__doc__, type_name
        for name, member in vars(cls).items():
            if not name.startswith("_") and not (getattr(member, "__doc__", None) or "").strip():
                undocumented.append(f"_mgconn.{type_name}.{name}")
    for name in ["encode", "decode", "pluralize"]:
        if not getattr(_mgconn, name).__doc__:
            undocumented.append(f"_mgconn.{name}")
    assert undocumented == []


# ---- Lua -----------------------------------------------------------------------------------------

# What the module exports, as "<object><. or :><name>" lines: the module's own functions and values,
# the methods of each kind of object (from its metatable: Connection's __index is a function, whose
# method table is its upvalue), the fields of objects that hold them, and, for every name the page
# documents, whether the object answers it (the module's connection and models, and a connection's
# readyState, are made on access). Private names start with "_".
LUA_EXPORTS = r"""
local mgconn = require "mgconn"
local function public(k) return type(k) == "string" and not k:find("^_") end
local function methods(prefix, t)
  for k in pairs(t) do if public(k) and type(t[k]) == "function" then print(prefix .. ":" .. k) end end
end
local function fields(prefix, obj, except)
  for k, v in pairs(obj) do
    if public(k) and type(v) ~= "function" and not (except and except[k]) then print(prefix .. "." .. k) end
  end
end
for k in pairs(mgconn) do if public(k) then print("mgconn." .. k) end end
local conn = mgconn.createConnection()
local index = getmetatable(conn).__index
for i = 1, math.huge do
  local name, value = debug.getupvalue(index, i)
  if not name then break end
  if name == "Connection" then methods("conn", value) end
end
local coll = conn:collection("things")
methods("coll", getmetatable(coll).__index)
fields("coll", coll)
local schema = mgconn.Schema({})
methods("schema", getmetatable(schema).__index)
fields("schema", schema)
local model = conn:model("Thing", schema)
local own = {}
for k, v in pairs(getmetatable(model).__index) do if v ~= getmetatable(coll).__index[k] then own[k] = v end end
methods("model", own)
fields("model", model, coll)
local cursor = coll:find({})
methods("cursor", getmetatable(cursor).__index)
local op = coll:insertOne({})
methods("op", getmetatable(op).__index)
local session = conn:startSession()
methods("session", getmetatable(session).__index)
local stream = coll:watch()
methods("stream", getmetatable(stream).__index)
local _, err = coll:findOne({}):wait(0.01)
fields("err", err)
local objects = { mgconn = mgconn, conn = conn, coll = coll, schema = schema, model = model, cursor = cursor,
                  op = op, err = err, session = session, stream = stream }
for _, entry in ipairs(arg) do
  local object, name = entry:match("^(%w+)[.:](%w+)$")
  if objects[object][name] ~= nil then print("has " .. entry) end
end
conn:close(true)
"""

LUA_HEADING = re.compile(r"^#{3,4} `(mgconn|conn|coll|model|cursor|op|schema|err|session|stream)([.:])(\w+)", re.M)


def _lua_exports(documented):
    lua = shutil.which("lua5.4")
    if not lua:
        pytest.skip("lua5.4 is not installed")
    env = dict(os.environ, LUA_CPATH=f"{BUILD}/lua/?.so;;", LUA_PATH=f"{ROOT}/lua/?.lua;;")
    out = subprocess.run([lua, "-e", LUA_EXPORTS, "-", *sorted(documented)], input="", capture_output=True,
                         text=True, env=env, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    exported = {line for line in out.stdout.splitlines() if not line.startswith("has ")}
    answered = {line[4:] for line in out.stdout.splitlines() if line.startswith("has ")}
    return exported, answered, lines


def test_the_lua_page_has_an_entry_for_every_export_and_exports_every_entry():
    page = (ROOT / "docs" / "lua-api.md").read_text()
    documented = {f"{o}{sep}{n}" for o, sep, n in LUA_HEADING.findall(page)}
    exported, answered, _ = _lua_exports(documented)
    assert len(exported) > 60, exported
    undocumented = sorted(exported - documented)
    not_there = sorted(documented - exported - answered)
    assert undocumented == [], f"exported by the Lua module, missing from docs/lua-api.md: {undocumented}"
    assert not_there == [], f"in docs/lua-api.md, not exported by the Lua module: {not_there}"
    for name in ["coll:insertOne", "coll:updateOne", "coll:aggregate", "cursor:toArray", "cursor:iter",
                 "mgconn.ObjectId", "mgconn.Decimal128", "op:await", "err.category"]:
        assert name in documented, name


def test_the_lua_page_lists_every_error_category():
    """The core's categories (Python's error classes, and Type and InvalidArgument, which Python
    raises as TypeError and ValueError) and those the Lua module makes itself."""
    from mgconn import errors

    errors_section = (ROOT / "docs" / "lua-api.md").read_text().split("\n## Errors\n")[1]
    listed = set(re.findall(r"^\| `(\w+)` \| ", errors_section, re.M))
    core = {cls.category for cls in errors._BY_CATEGORY.values()} | {"Type", "InvalidArgument"}
    lua_own = set(re.findall(r'make_error\("(\w+)"', (ROOT / "lua" / "mgconn.lua").read_text()))
    assert "Timeout" in lua_own
    assert listed == core | lua_own


def test_the_lua_check_sees_a_missing_entry():
    page = (ROOT / "docs" / "lua-api.md").read_text()
    documented = {f"{o}{sep}{n}" for o, sep, n in LUA_HEADING.findall(page)} - {"coll:countDocuments"}
    exported, _, _ = _lua_exports(documented)
    assert "coll:countDocuments" in exported - documented
