"""Renders docs/python-api.md, the Python API reference, from the docstrings of the mgconn package.

    python3 docs/tools/python_api.py           writes docs/python-api.md (mgconn must be importable)
    python3 docs/tools/python_api.py --check   fails when the page is not what this renders, or when a
                                               public name has no docstring

A public name is every name of ``mgconn.__all__`` (and of mgconn.types, mgconn.errors,
mgconn.ferretdb and the pytest plugin mgconn.testing) and every member of their classes that does
not start with "_": functions, classes, methods and properties need a docstring of their own; data
attributes (``inserted_id``, ``category``, module attributes) are named in the docstring of their
class or module. tests/python/test_api_docs.py runs the check, so the page cannot drift from the code.

Docstrings use Google's sections (Args:, Returns:, Raises:, Attributes:) and reST literals
(``x``, :class:`X`), turned into Markdown here.
"""
from __future__ import annotations

import argparse
import inspect
import re
import sys
import types
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / "docs" / "python-api.md"
SECTIONS = ("Args", "Returns", "Raises", "Attributes", "Fixtures")


def _public_classes() -> List[Tuple[str, List[type]]]:
    import mgconn
    from mgconn import errors, ferretdb, types as bson_types

    return [
        ("Connections", [mgconn.Connection]),
        ("Collections and models", [mgconn.Collection, mgconn.Model, mgconn.Cursor]),
        ("Sessions and change streams", [mgconn.ClientSession, mgconn.ChangeStream]),
        ("Operations", [mgconn.Future]),
        ("Results", [mgconn.InsertOneResult, mgconn.InsertManyResult, mgconn.UpdateResult, mgconn.DeleteResult]),
        ("Schemas", [mgconn.Schema]),
        ("BSON types", [getattr(bson_types, n) for n in bson_types.__all__]),
        ("Errors", [getattr(errors, n) for n in errors.__all__]),
        ("Test servers (mgconn.ferretdb)", [ferretdb.FerretDB]),
    ]


def _module_functions() -> List[Tuple[str, Any]]:
    import mgconn
    from mgconn import ferretdb, testing

    out = [(f"mgconn.{n}", getattr(mgconn, n)) for n in mgconn.__all__
           if inspect.isfunction(getattr(mgconn, n, None))]
    out += [(f"mgconn.ferretdb.{n}", getattr(ferretdb, n)) for n in ferretdb.__all__ if inspect.isfunction(getattr(ferretdb, n))]
    out += [(f"mgconn.testing.{n}", getattr(testing, n)) for n in ("mongodb_uri", "ferretdb", "pytest_addoption")]
    return out


def _own_members(cls: type) -> Iterator[Tuple[str, Any]]:
    """The class's public members defined in the class itself, in source order."""
    for name, value in vars(cls).items():
        if not name.startswith("_"):
            yield name, value


def _is_data(value: Any) -> bool:
    return not (inspect.isfunction(value) or isinstance(value, (property, classmethod, staticmethod)))


def _doc(obj: Any) -> str:
    if isinstance(obj, (classmethod, staticmethod)):
        obj = obj.__func__
    if isinstance(obj, property):
        obj = obj.fget
    doc = getattr(obj, "__doc__", None)
    return inspect.cleandoc(doc) if doc else ""


def _fixture_function(obj: Any) -> Any:
    """pytest's fixture wrapper around the function it was made from."""
    return getattr(obj, "_fixture_function", None) or getattr(obj, "__wrapped__", None) or obj


def missing_docstrings() -> List[str]:
    """Every public name without a docstring (data attributes: not named in their class's doc)."""
    import mgconn

    missing: List[str] = []
    module_doc = _doc(mgconn)
    for name in mgconn.__all__:
        value = vars(mgconn).get(name)  # not getattr: `connection` would make the default connection
        if isinstance(value, (type, types.ModuleType)) or inspect.isfunction(value):
            if not _doc(value):
                missing.append(f"mgconn.{name}")
        elif not re.search(rf"\b{re.escape(name)}\b", module_doc):
            missing.append(f"mgconn.{name} (not named in the package docstring)")
    for qual, fn in _module_functions():
        if not _doc(_fixture_function(fn)):
            missing.append(qual)
    for _, classes in _public_classes():
        for cls in classes:
            if not _doc(cls):
                missing.append(cls.__qualname__)
            docs = " ".join(_doc(c) for c in cls.__mro__ if c.__module__.startswith("mgconn"))
            for name, value in _own_members(cls):
                if _is_data(value):
                    if not re.search(rf"\b{re.escape(name)}\b", docs):
                        missing.append(f"{cls.__qualname__}.{name} (not named in the class docstring)")
                elif not _doc(value):
                    missing.append(f"{cls.__qualname__}.{name}")
    return missing


# ---- rendering ---------------------------------------------------------------------------------

def _inline(text: str) -> str:
    text = re.sub(r":(?:class|meth|func|mod|attr|exc):`~?([^`]+)`", r"`\1`", text)
    return re.sub(r"``(.+?)``(?!`)", lambda m: f"`` {m.group(1)} ``" if "`" in m.group(1) else f"`{m.group(1)}`", text)


def _item_start(line: str) -> Optional[Tuple[str, str]]:
    m = re.match(r"^([\w.*]+(?:,\s*[\w.*]+)*):\s+(.*)$", line)
    return (m.group(1), m.group(2)) if m else None


def render_doc(doc: str) -> List[str]:
    """A docstring as Markdown: paragraphs, indented blocks as code, and its sections as lists."""
    out: List[str] = []
    lines = doc.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        head = line.strip().rstrip(":")
        if line.endswith(":") and head in SECTIONS and not line.startswith(" "):
            out += [f"**{head}**", ""]
            i += 1
            items: List[List[str]] = []
            while i < len(lines) and (lines[i].startswith(" ") or not lines[i].strip()):
                body = lines[i]
                if not body.strip():
                    i += 1
                    continue
                indent = len(body) - len(body.lstrip())
                item = _item_start(body.strip()) if indent <= 4 and head != "Returns" else None
                if item:
                    names = ", ".join(f"`{n.strip()}`" for n in item[0].split(","))
                    items.append([f"- {names}: {item[1].strip()}"])
                elif items:
                    items[-1].append(body.strip())
                else:
                    items.append([body.strip()])
                i += 1
            for it in items:
                out.append(_inline(" ".join(it)))
            out.append("")
            continue
        if line.startswith("    ") and (i == 0 or not lines[i - 1].strip()):
            block = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                block.append(lines[i][4:])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            out += ["```python", *block, "```", ""]
            continue
        if not line.strip():
            if out and out[-1] != "":
                out.append("")
            i += 1
            continue
        para = []
        while i < len(lines) and lines[i].strip() and not (
                lines[i].endswith(":") and lines[i].strip().rstrip(":") in SECTIONS):
            para.append(lines[i].strip())
            i += 1
        out += [_inline(" ".join(para)), ""]
    while out and out[-1] == "":
        out.pop()
    return out + [""]


def _signature(fn: Any, name: str, skip_self: bool) -> str:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return f"{name}(...)"
    parts = []
    star_done = False
    params = list(sig.parameters.values())
    if skip_self and params and params[0].name in ("self", "cls"):
        params = params[1:]
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            parts.append(f"*{p.name}")
            star_done = True
        elif p.kind is p.VAR_KEYWORD:
            parts.append(f"**{p.name}")
        else:
            if p.kind is p.KEYWORD_ONLY and not star_done:
                parts.append("*")
                star_done = True
            parts.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    ret = sig.return_annotation
    if isinstance(ret, str):
        ret = re.sub(r"['\"]", "", ret)  # postponed annotations: "'Connection'" is Connection
    ret_text = "" if ret is sig.empty or ret in ("None", None) else f" -> {ret if isinstance(ret, str) else ret.__name__}"
    return f"{name}({', '.join(parts)}){ret_text}"


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", text.lower()).replace(" ", "-")


def render() -> str:
    import mgconn

    out: List[str] = [
        "# mgconn Python API reference",
        "",
        "Generated from the package's docstrings by `docs/tools/python_api.py`; the test suite fails when",
        "it is out of date or when a public name has no docstring. How the pieces behave together",
        "(buffering, events, errors, options) is in the [guide](guide.md); the C API beneath is in",
        "[c-api.md](c-api.md), Lua's in [lua-api.md](lua-api.md).",
        "",
        "Every operation returns at once; its result comes through a `Future` (`await` it, or",
        "`.result()` in a script) or, for `find` and `aggregate`, a `Cursor`. *Raises* lists what the",
        "call raises at once and, marked \"through the Future\", what awaiting it raises.",
        "",
        "## Contents",
        "",
        "- [The mgconn module](#the-mgconn-module)",
    ]
    groups = _public_classes()
    for title, classes in groups:
        out.append(f"- [{title}](#{_anchor(title)}): " + ", ".join(f"`{c.__name__}`" for c in classes))
    out += ["- [The pytest plugin (mgconn.testing)](#the-pytest-plugin-mgconntesting)", ""]

    out += ["## The mgconn module", ""] + render_doc(_doc(mgconn))
    functions = _module_functions()
    for qual, fn in functions:
        if qual.startswith("mgconn.") and qual.count(".") == 1:
            out += [f"### `{_signature(fn, qual, False)}`", ""] + render_doc(_doc(fn))

    for title, classes in groups:
        out += [f"## {title}", ""]
        if title == "BSON types":
            out += render_doc(_doc(sys.modules["mgconn.types"]))
        if title == "Errors":
            out += render_doc(_doc(sys.modules["mgconn.errors"]))
            out += ["| class | base | category |", "| --- | --- | --- |"]
            for cls in classes:
                out.append(f"| `mgconn.{cls.__name__}` | {', '.join(f'`{b.__name__}`' for b in cls.__bases__)} "
                           f"| `{cls.category}` |")
            out.append("")
        if title.startswith("Test servers"):
            out += render_doc(_doc(sys.modules["mgconn.ferretdb"]).split("\n\n")[0])
        for cls in classes:
            module = "mgconn.ferretdb" if cls.__module__ == "mgconn.ferretdb" else "mgconn"
            init = cls.__dict__.get("__init__")
            public_init = init is not None and cls.__name__ not in ("Connection", "Collection", "Model", "Cursor",
                                                                     "Future", "ClientSession", "ChangeStream") and not issubclass(cls, BaseException)
            head = _signature(init, f"{module}.{cls.__name__}", True) if public_init else f"{module}.{cls.__name__}"
            out += [f"### `{head}`", ""]
            base = cls.__bases__[0]
            if base.__module__.startswith("mgconn") and not base.__name__.startswith("_") and \
                    not issubclass(cls, BaseException):
                out += [f"A `{base.__name__}`: everything it has, and what follows.", ""]
            out += render_doc(_doc(cls))
            for name, value in _own_members(cls):
                if _is_data(value):
                    continue
                if isinstance(value, property):
                    out += [f"#### `{cls.__name__}.{name}` (property)", ""] + render_doc(_doc(value))
                else:
                    fn = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
                    out += [f"#### `{_signature(fn, f'{cls.__name__}.{name}', True)}`", ""] + render_doc(_doc(value))
        for qual, fn in functions:
            if title.startswith("Test servers") and qual.startswith("mgconn.ferretdb."):
                out += [f"### `{_signature(fn, qual, False)}`", ""] + render_doc(_doc(fn))

    out += ["## The pytest plugin (mgconn.testing)", ""] + render_doc(_doc(sys.modules["mgconn.testing"]))
    for qual, fn in functions:
        if qual.startswith("mgconn.testing."):
            real = _fixture_function(fn)
            kind = " (fixture)" if real is not fn else " (hook)"
            out += [f"### `{qual.rsplit('.', 1)[1]}`{kind}", ""] + render_doc(_doc(real))
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="fail when the page is out of date or a name is undocumented")
    args = ap.parse_args(argv)
    missing = missing_docstrings()
    text = render()
    if args.check:
        problems = [f"no docstring: {m}" for m in missing]
        if not TARGET.exists() or TARGET.read_text() != text:
            problems.append(f"{TARGET.relative_to(ROOT)} is out of date: run python3 docs/tools/python_api.py")
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    TARGET.write_text(text)
    print(f"{TARGET.relative_to(ROOT)} written" + (f"; {len(missing)} names without a docstring" if missing else ""))
    for m in missing:
        print(f"  no docstring: {m}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
