"""Renders docs/c-api.md, the C API reference, from the ABI manifest: one entry per public symbol.

    python3 bindings/abi/reference.py          writes docs/c-api.md
check_manifest.py fails when the committed reference is not what this renders, so the reference
cannot drift from the header it documents.
"""
from __future__ import annotations

import json
import pathlib
from typing import Any, Dict, List

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TARGET = ROOT / "docs" / "c-api.md"

THREAD_TEXT = {
    "any": "any thread",
    "host": "host thread (the thread that owns the handle; never a worker)",
    "listener": "inside the listener that received the event only",
}


def _c_param(p: Dict[str, Any]) -> str:
    """`const uint8_t*` + `data` -> `const uint8_t *data` (the header's spelling)."""
    base = p["c_type"].rstrip("*")
    stars = len(p["c_type"]) - len(base)
    return f"{base} {'*' * stars}{p['name']}"


def _synopsis(fn: Dict[str, Any]) -> str:
    params = ", ".join(_c_param(p) for p in fn["params"]) or "void"
    ret = fn["returns"]["c_type"]
    base = ret.rstrip("*")
    ret = f"{base} {'*' * (len(ret) - len(base))}" if ret != base else f"{ret} "
    return f"{ret}{fn['name']} ({params});"


def _ownership(p: Dict[str, Any], manifest: Dict[str, Any]) -> str:
    text = p["ownership"]
    if p.get("freed_by"):
        text += f", freed by `{p['freed_by']}`"
    if p.get("length_of"):
        text = f"the length of `{p['length_of']}`"
    if p.get("nullable"):
        text += "; may be NULL"
    return text


def _errors(fn: Dict[str, Any]) -> str:
    r = fn["returns"]
    if r["type"] == "int" and fn["name"] not in ("mgconn_init", "mgconn_shutdown", "mgconn_version_number",
                                                   "mgconn_runtime_fd", "mgconn_runtime_dispatch"):
        has_error = any(p["type"] == "error" for p in fn["params"])
        where = "in `error` when given, and in `mgconn_last_error()`" if has_error else "in `mgconn_last_error()`"
        return f"0 (or the count the text names) on success; a negative `mgconn_error_category` on failure, the details {where}."
    if r["type"] in ("string", "handle", "error_const"):
        return "NULL when the argument is NULL or has none; never sets an error."
    if r["type"] == "void":
        return "none (NULL arguments are ignored)."
    return "none; see the description."


def render(manifest: Dict[str, Any]) -> str:
    out: List[str] = [
        "# libmgconn C API reference",
        "",
        "Generated from `core/include/mgconn.h` through the ABI manifest (`bindings/abi/mgconn.abi.json`) by",
        "`bindings/abi/reference.py`; the test suite fails when it is out of date. The rules every function",
        "follows (handles, BSON as bytes and length, errors, threads) are at the top of the header and in",
        "[abi.md](abi.md).",
        "",
        "## Building against libmgconn",
        "",
        "An installed libmgconn brings what its users need with it. The driver (libmongoc and libbson,",
        "the pinned mongo-c-driver) is linked into libmgconn and kept private; libbson, which a program",
        "uses to build and read mgconn's BSON documents, is installed beside it as the driver's",
        "`libbson2.so.2` with its headers, and `mgconn.pc` and the CMake package (`mgconn::mgconn`) carry",
        "it. The static library also needs the driver's archives (`Libs.private`). Either way is one line",
        "(`tests/c/install_check.sh` builds a consumer each way):",
        "",
        "```sh",
        "cc app.c $(pkg-config --cflags --libs mgconn)",
        "```",
        "",
        "```cmake",
        "find_package(mgconn REQUIRED)",
        "target_link_libraries(app mgconn::mgconn)   # or mgconn::mgconn_static",
        "```",
        "",
        "Vocabulary of the ownership column below:",
        "",
    ]
    for k, v in manifest["ownership"].items():
        out.append(f"- **{k}**: {v}")
    out += ["", f"{len(manifest['functions'])} functions, {len(manifest['callbacks'])} callback types, "
            f"{len(manifest['constants'])} constants, {len(manifest['structs'])} caller-allocated struct.", ""]

    section = None
    for fn in manifest["functions"]:
        if fn["section"] != section:
            section = fn["section"]
            out += [f"## {section}", ""]
        out += [f"### `{fn['name']}`", "", "```text", _synopsis(fn), "```", "", fn["doc"] or "(no description)", ""]
        if fn["params"]:
            out += ["| parameter | type | ownership |", "| --- | --- | --- |"]
            for p in fn["params"]:
                kind = p["type"] + (f" ({p['handle']})" if p.get("handle") else "") + (
                    f" ({p['callback']})" if p.get("callback") else "")
                out.append(f"| `{p['name']}` | {kind} | {_ownership(p, manifest)} |")
            out.append("")
        ret = fn["returns"]
        out += [f"- **Returns**: {ret['type']}" + (f", {ret['ownership']}" if ret["ownership"] != "value" else ""),
                f"- **Errors**: {_errors(fn)}",
                f"- **Thread**: {THREAD_TEXT[fn['thread']]}",
                f"- **Since**: {fn['since']}", ""]

    out += ["## Callback types", ""]
    for name, cb in manifest["callbacks"].items():
        params = ", ".join(_c_param(p) for p in cb["params"])
        out += [f"### `{name}`", "", "```text", f"{cb['returns']} (*{name}) ({params});", "```", "",
                "Runs on the thread that calls `mgconn_runtime_dispatch()` (or a blocking wait), never on a "
                "worker; `userdata` is the pointer given when it was registered.", ""]

    out += ["## The error struct", "", "`mgconn_error` is allocated by the caller (`MGCONN_ERROR_SIZE` bytes on "
            "64-bit platforms, asserted at build time). Layout on LP64:", "",
            "| field | type | offset |", "| --- | --- | ---: |"]
    for f in manifest["structs"]["mgconn_error"]["fields"]:
        t = f["type"] + (f"[{f['count']}]" if f.get("count") else "")
        out.append(f"| `{f['name']}` | {t} | {f['offset']} |")
    out += ["", "## Constants", "", "Every one is also available at run time through `mgconn_constant(name, &value)`.", "",
            "| name | value |", "| --- | ---: |"]
    for name, value in manifest["constants"].items():
        out.append(f"| `{name}` | {value} |")
    return "\n".join(out) + "\n"


def main() -> None:
    manifest = json.loads((HERE / "mgconn.abi.json").read_text())
    TARGET.write_text(render(manifest))
    print(f"{TARGET.relative_to(ROOT)}: {len(manifest['functions'])} functions")


if __name__ == "__main__":
    main()
