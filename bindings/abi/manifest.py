"""The ABI manifest of libmgconn, read from its public header.

`build(header_text, previous)` turns core/include/mgconn.h into the manifest committed as
bindings/abi/mgconn.abi.json: every function with its return and parameter types from a closed
vocabulary, ownership tags, thread affinity and the version it appeared in; every callback type;
every constant. A type outside the vocabulary is an error, not a guess: a binding generated from the
manifest must never meet a type it does not know.

Ownership and thread rules are the header's own (its opening comment); the few functions that depart
from the default are listed here, next to the rule they depart from.
"""
from __future__ import annotations

import json
import re
from typing import Any

# ---- the closed vocabulary ------------------------------------------------------------------------

VOCABULARY = {
    "void": "nothing",
    "int": "C int (32 bits on every supported platform): 0 or a count on success, a negative "
    "mgconn_error_category on failure",
    "int32": "int32_t",
    "int64": "int64_t",
    "size": "size_t",
    "string": "const char *: NUL-terminated UTF-8",
    "char_buffer": "char *: a caller's buffer the function writes a NUL-terminated string into",
    "bytes": "const uint8_t *: BSON bytes in, always followed by a `size` parameter with their length",
    "byte_buffer": "uint8_t *: a caller's buffer the function writes BSON into",
    "bytes_out": "const uint8_t **: receives a pointer to BSON bytes",
    "size_out": "size_t *: receives a length",
    "int64_out": "int64_t *: receives a value",
    "int32_out": "int32_t *: receives a value",
    "handle": "an opaque handle (T *), named by `handle`",
    "handle_out": "T **: receives a new handle, named by `handle`",
    "error": "mgconn_error *: a caller-owned error struct of MGCONN_ERROR_SIZE bytes",
    "error_const": "const mgconn_error *",
    "callback": "a function pointer of the type named by `callback`",
    "userdata": "void *: passed back to the callback untouched, always the last parameter",
    "host_data": "void *: the host's own pointer, kept and handed back untouched (no callback)",
}

OWNERSHIP = {
    "value": "a plain value",
    "borrowed": "owned by the library or by the handle it came from; the caller must not free it",
    "out-owned": "the caller owns what is written and frees it with `freed_by`",
    "out-borrowed": "what is written is borrowed from the first handle parameter",
    "consumed": "the call frees the handle; it must not be used afterwards",
    "copied": "read during the call and copied: the caller may reuse the memory at once",
    "caller-owned": "the caller's memory, filled by the call",
    "called-on-dispatch": "called later, on the thread that runs mgconn_runtime_dispatch()",
    "passed-through": "handed back to the callback untouched",
}

THREADS = {
    "any": "any thread, at any time",
    "host": "a host thread (never from inside a worker); the handle's owner serialises calls",
    "listener": "only inside the event listener that received the event",
}

HANDLES = ["runtime", "connection", "event", "op", "collection", "cursor", "schema", "model", "session"]
FREED_BY = {h: f"mgconn_{h}_free" for h in HANDLES if h != "event"}

# Functions callable from any thread: they touch no handle, or only the caller's own error struct
# (mgconn_last_error is thread-local).
ANY_THREAD = {
    "mgconn_init", "mgconn_shutdown", "mgconn_version", "mgconn_version_number", "mgconn_constant",
    "mgconn_error_init", "mgconn_error_cleanup", "mgconn_error_copy", "mgconn_error_labels",
    "mgconn_error_reason", "mgconn_error_category_name", "mgconn_last_error",
    "mgconn_event_type_name", "mgconn_pluralize", "mgconn_runtime_post",
    "mgconn_operation_name", "mgconn_operation_flags", "mgconn_operation_document",
}
# An event is borrowed for the duration of the listener call.
LISTENER_ONLY = {"mgconn_event_type_of", "mgconn_event_name", "mgconn_event_error"}
# Returned strings that are static (not borrowed from a handle).
STATIC_RETURNS = {"mgconn_version", "mgconn_error_category_name", "mgconn_event_type_name",
                  "mgconn_operation_name", "mgconn_operation_document"}

# Parameters that may be NULL, beyond the general rule below (ops' `out`, options, errors,
# callbacks, userdata).
NULLABLE = {
    ("mgconn_connection_new", "uri"), ("mgconn_connection_open", "uri"), ("mgconn_run_command", "db"),
    ("mgconn_connection_on", "name"), ("mgconn_connection_off", "name"),
    ("mgconn_connection_model", "schema"), ("mgconn_connection_model", "collection"),
    ("mgconn_connection_next_event", "error"), ("mgconn_constant", "value"),
    ("mgconn_runtime_set_log_handler", "cb"), ("mgconn_runtime_post", "drop"),
    ("mgconn_collection_call", "first"), ("mgconn_collection_call", "second"),
}
NULLABLE_NAMES = {"opts", "options", "settings", "error", "userdata"}


class ManifestError(Exception):
    pass


# ---- parsing --------------------------------------------------------------------------------------

FUNCTION_RE = re.compile(r"^MGCONN_EXTERN\s*\(([^)]*)\)\s*(\w+)\s*\(([^;]*?)\)\s*;", re.S | re.M)
CALLBACK_RE = re.compile(r"typedef\s+(\w+)\s*\(\*\s*(\w+)\)\s*\(([^;]*?)\)\s*;", re.S | re.M)
DEFINE_RE = re.compile(r"^#define\s+(MGCONN_\w+)\s+(-?\d+)\b", re.M)
ENUMERATOR_RE = re.compile(r"^\s+(MGCONN_\w+)\s*=\s*(-?\d+)", re.M)
SECTION_RE = re.compile(r"/\* ---- (.+?) -+")


def _ctype(text: str) -> str:
    return " ".join(text.replace("*", " * ").split()).replace(" *", "*")


def classify(ctype: str, where: str) -> dict[str, Any]:
    """Maps one C type to the vocabulary."""
    t = _ctype(ctype)
    simple = {
        "void": "void", "int": "int", "int32_t": "int32", "int64_t": "int64", "size_t": "size",
        "const char*": "string", "char*": "char_buffer", "const uint8_t*": "bytes",
        "uint8_t*": "byte_buffer", "const uint8_t**": "bytes_out", "size_t*": "size_out",
        "int64_t*": "int64_out", "int32_t*": "int32_out", "mgconn_error*": "error",
        "const mgconn_error*": "error_const", "void*": "userdata",
    }
    if t in simple:
        return {"type": simple[t]}
    m = re.fullmatch(r"(const )?mgconn_(\w+)(\*{1,2})", t)
    if m and m.group(2) in HANDLES:
        kind = "handle" if m.group(3) == "*" else "handle_out"
        out: dict[str, Any] = {"type": kind, "handle": m.group(2)}
        if m.group(1):
            out["const"] = True
        return out
    m = re.fullmatch(r"mgconn_\w+_cb", t)
    if m:
        return {"type": "callback", "callback": t}
    raise ManifestError(f"{where}: the C type `{ctype.strip()}` is outside the manifest's vocabulary")


def _split_params(text: str, where: str) -> list[tuple[str, str]]:
    text = " ".join(text.split())
    if text in ("void", ""):
        return []
    params = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(.*?)\s*\b(\w+)\s*", part)
        if not m:
            raise ManifestError(f"{where}: cannot read the parameter `{part.strip()}`")
        params.append((m.group(1), m.group(2)))
    return params


def _doc_before(text: str, start: int) -> str:
    """The comment that ends on the line right above `start`, without its comment markers."""
    end = text.rfind("*/", 0, start)
    if end < 0 or text[end + 2 : start].strip() or text[end + 2 : start].count("\n") > 1:
        return ""
    begin = text.rfind("/*", 0, end)
    body = text[begin + 2 : end]
    if body.lstrip().startswith("----"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
    lines = [re.sub(r"^\s*\* ?", "", line) for line in body.split("\n")]
    return " ".join(" ".join(lines).split())


def _section_at(text: str, start: int) -> str:
    found = ""
    for m in SECTION_RE.finditer(text, 0, start):
        found = m.group(1).strip()
    return found


def _param_entry(fn: str, index: int, ctype: str, name: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "c_type": _ctype(ctype)}
    entry.update(classify(ctype, f"{fn}, parameter `{name}`"))
    if entry["type"] == "userdata" and name == "host_data":
        entry["type"] = "host_data"
    kind = entry["type"]
    if kind == "handle_out":
        if index != 0:
            raise ManifestError(f"{fn}: the out parameter `{name}` must come first")
        entry["ownership"] = "out-owned"
        entry["freed_by"] = FREED_BY[entry["handle"]]
        if entry["handle"] == "op" and fn != "mgconn_op_cursor":
            entry["nullable"] = True  # nobody waits: the op frees itself after its callback
    elif kind == "handle":
        entry["ownership"] = "consumed" if fn == FREED_BY.get(entry["handle"]) else "borrowed"
    elif kind in ("bytes", "string"):
        entry["ownership"] = "copied"
    elif kind in ("bytes_out",):
        entry["ownership"] = "out-borrowed"
    elif kind in ("error", "char_buffer", "byte_buffer", "size_out", "int32_out", "int64_out"):
        entry["ownership"] = "caller-owned"
    elif kind == "callback":
        entry["ownership"] = "called-on-dispatch"
    elif kind in ("userdata", "host_data"):
        entry["ownership"] = "passed-through"
    else:
        entry["ownership"] = "value"
    if kind == "callback" and entry["callback"] == "mgconn_op_cb":
        entry["nullable"] = True  # poll the op (mgconn_op_status, mgconn_op_wait) instead
    if (fn, name) in NULLABLE or name in NULLABLE_NAMES or (kind == "bytes" and name.endswith("opts")):
        entry["nullable"] = True
    return entry


def _check_rules(fn: str, params: list[dict[str, Any]]) -> None:
    kinds = [p["type"] for p in params]
    if "callback" in kinds or "userdata" in kinds:
        if kinds[-1] != "userdata" or kinds[-2] != "callback":
            raise ManifestError(f"{fn}: a callback must be followed by `void *userdata`, the last parameter")
    for i, p in enumerate(params):
        if p["type"] in ("bytes", "byte_buffer", "char_buffer"):
            if i + 1 >= len(params) or params[i + 1]["type"] != "size":
                raise ManifestError(f"{fn}: `{p['name']}` must be followed by its size_t length")
            params[i + 1]["length_of"] = p["name"]
        if p["type"] == "bytes_out":
            if i + 1 >= len(params) or params[i + 1]["type"] != "size_out":
                raise ManifestError(f"{fn}: `{p['name']}` must be followed by a size_t * for its length")


STRUCT_RE = re.compile(r"typedef struct (mgconn_\w+) \{(.*?)\} \1;", re.S)
FIELD_TYPES = {"int32_t": ("int32", 4), "uint32_t": ("uint32", 4), "uint64_t": ("uint64", 8),
               "void*": ("pointer", 8), "char": ("char", 1)}


def _structs(header: str, constants: dict[str, int]) -> dict[str, Any]:
    """Caller-allocated structs with their LP64 layout (natural alignment), for hosts that read
    fields without a compiler; check_manifest.py compares the size with the library's own."""
    structs = {}
    for m in STRUCT_RE.finditer(header):
        offset, align_max, fields = 0, 1, []
        body = re.sub(r"/\*.*?\*/", "", m.group(2), flags=re.S)
        for decl in filter(None, (d.strip() for d in body.split(";"))):
            fm = re.fullmatch(r"(\w+)\s*(\*?)\s*(\w+)(?:\[(\w+)\])?", decl)
            if not fm or (fm.group(1) + fm.group(2)) not in FIELD_TYPES:
                raise ManifestError(f"{m.group(1)}: the field `{decl}` is outside the manifest's vocabulary")
            ftype, size = FIELD_TYPES[fm.group(1) + fm.group(2)]
            count = 1
            if fm.group(4):
                count = int(fm.group(4)) if fm.group(4).isdigit() else constants[fm.group(4)]
            offset = (offset + size - 1) // size * size
            field: dict[str, Any] = {"name": fm.group(3), "type": ftype, "offset": offset}
            if fm.group(4):
                field["count"] = count
            fields.append(field)
            offset += size * count
            align_max = max(align_max, size)
        structs[m.group(1)] = {"size_lp64": (offset + align_max - 1) // align_max * align_max, "fields": fields}
    return structs


def build(header: str, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    version = ".".join(
        re.search(rf"#define MGCONN_VERSION_{part} (\d+)", header).group(1)  # type: ignore[union-attr]
        for part in ("MAJOR", "MINOR", "PATCH")
    )
    since = {f["name"]: f["since"] for f in (previous or {}).get("functions", [])}

    callbacks = {}
    for m in CALLBACK_RE.finditer(header):
        ret, name, params = m.groups()
        entries = []
        for ctype, pname in _split_params(params, name):
            e = {"name": pname, "c_type": _ctype(ctype)}
            e.update(classify(ctype, f"{name}, parameter `{pname}`"))
            entries.append(e)
        if entries[-1]["type"] != "userdata":
            raise ManifestError(f"{name}: `void *userdata` must be the last parameter")
        callbacks[name] = {"returns": classify(ret, name)["type"], "params": entries}

    functions = []
    for m in FUNCTION_RE.finditer(header):
        ret, name, params = m.groups()
        entries = [_param_entry(name, i, c, n) for i, (c, n) in enumerate(_split_params(params, name))]
        _check_rules(name, entries)
        returns: dict[str, Any] = {"c_type": _ctype(ret)}
        returns.update(classify(ret, f"{name}, return type"))
        if returns["type"] in ("string", "handle", "error_const"):
            returns["ownership"] = "borrowed"
            returns["lifetime"] = "static" if name in STATIC_RETURNS else "see doc"
        else:
            returns["ownership"] = "value"
        functions.append({
            "name": name,
            "section": _section_at(header, m.start()),
            "since": since.get(name, version),
            "thread": "any" if name in ANY_THREAD else "listener" if name in LISTENER_ONLY else "host",
            "returns": returns,
            "params": entries,
            "doc": _doc_before(header, m.start()),
        })

    constants = {name: int(value) for name, value in DEFINE_RE.findall(header)}
    constants.update({name: int(value) for name, value in ENUMERATOR_RE.findall(header)})
    structs = _structs(header, constants)
    return {
        "library": "libmgconn",
        "header": "core/include/mgconn.h",
        "version": version,
        "vocabulary": VOCABULARY,
        "ownership": OWNERSHIP,
        "threads": THREADS,
        "handles": {h: {"freed_by": FREED_BY.get(h)} for h in HANDLES},
        "callbacks": callbacks,
        "constants": constants,
        "structs": structs,
        "functions": functions,
    }


def dumps(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=1, sort_keys=False) + "\n"


def main() -> None:
    """python3 bindings/abi/manifest.py: writes mgconn.abi.json from the header, keeping each
    function's `since` from the committed manifest (new functions get the header's version)."""
    import pathlib

    here = pathlib.Path(__file__).resolve().parent
    root = here.parent.parent
    target = here / "mgconn.abi.json"
    previous = json.loads(target.read_text()) if target.exists() else None
    manifest = build((root / "core/include/mgconn.h").read_text(), previous)
    target.write_text(dumps(manifest))
    print(f"{target.relative_to(root)}: {len(manifest['functions'])} functions, "
          f"{len(manifest['callbacks'])} callback types, {len(manifest['constants'])} constants")


if __name__ == "__main__":
    main()
