"""Fails when the ABI manifest, the public header and the library's exported symbols disagree.

    python3 bindings/abi/check_manifest.py --lib build/core/libmgconn.so [--selftest]

Checks, each naming what differs:
  1. the committed manifest is what bindings/abi/manifest.py makes from the header today;
  2. the functions of the manifest are exactly the library's exported mgconn_* symbols (nm -D);
  3. docs/c-api.md is what bindings/abi/reference.py renders from the manifest, an entry per function;
  4. every constant of the manifest has the same value through mgconn_constant() (ctypes), and the
     library reports the manifest's size for mgconn_error.
--selftest feeds the check a header with one function renamed and one added, and fails unless the
check reports both: a check that cannot fail proves nothing.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
import manifest as manifest_mod  # noqa: E402
import reference  # noqa: E402


def exported_functions(lib: str) -> set[str]:
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True, capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if " T " in line and line.split()[-1].startswith("mgconn_")}


def check(header_text: str, committed: dict, lib: str) -> list[str]:
    problems: list[str] = []
    try:
        fresh = manifest_mod.build(header_text, committed)
    except manifest_mod.ManifestError as e:
        return [f"the header breaks an ABI rule: {e}"]
    if fresh != committed:
        names_fresh = {f["name"] for f in fresh["functions"]}
        names_committed = {f["name"] for f in committed["functions"]}
        detail = []
        for n in sorted(names_fresh - names_committed):
            detail.append(f"in the header, not in the manifest: {n}")
        for n in sorted(names_committed - names_fresh):
            detail.append(f"in the manifest, not in the header: {n}")
        for f in fresh["functions"]:
            old = next((c for c in committed["functions"] if c["name"] == f["name"]), None)
            if old is not None and old != f:
                detail.append(f"{f['name']} differs")
        for key in ("constants", "callbacks", "structs"):
            if fresh.get(key) != committed.get(key):
                detail.append(f"its {key} differ")
        problems.append("bindings/abi/mgconn.abi.json is out of date with core/include/mgconn.h "
                        "(run python3 bindings/abi/manifest.py): " + "; ".join(detail or ["metadata differs"]))

    if reference.TARGET.read_text() != reference.render(committed):
        problems.append("docs/c-api.md is out of date with the manifest (run python3 bindings/abi/reference.py)")
    documented = {line[5:-1] for line in reference.TARGET.read_text().split("\n") if line.startswith("### `")}
    for n in sorted({f["name"] for f in committed["functions"]} - documented):
        problems.append(f"{n}: no entry in docs/c-api.md")

    declared = {f["name"] for f in committed["functions"]}
    exported = exported_functions(lib)
    for n in sorted(declared - exported):
        problems.append(f"{n}: in the manifest but not exported by {lib}")
    for n in sorted(exported - declared):
        problems.append(f"{n}: exported by {lib} but not in the manifest")

    so = ctypes.CDLL(lib)
    so.mgconn_constant.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int64)]
    so.mgconn_constant.restype = ctypes.c_int
    for name, value in committed["constants"].items():
        got = ctypes.c_int64(-12345)
        if so.mgconn_constant(name.encode(), ctypes.byref(got)) != 0:
            problems.append(f"{name}: in the header but mgconn_constant() does not know it")
        elif got.value != value:
            problems.append(f"{name}: the header says {value}, mgconn_constant() says {got.value}")
    if so.mgconn_constant(b"MGCONN_NO_SUCH_THING", None) == 0:
        problems.append("mgconn_constant() accepted an unknown name")
    size = committed["structs"]["mgconn_error"]["size_lp64"]
    if ctypes.sizeof(ctypes.c_void_p) == 8 and size != committed["constants"]["MGCONN_ERROR_SIZE"]:
        problems.append(f"mgconn_error: the manifest's layout is {size} bytes, MGCONN_ERROR_SIZE says "
                        f"{committed['constants']['MGCONN_ERROR_SIZE']}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--selftest", action="store_true")
    args = ap.parse_args()
    header = (ROOT / "core/include/mgconn.h").read_text()
    committed = json.loads((HERE / "mgconn.abi.json").read_text())

    if args.selftest:
        drifted = header.replace("mgconn_runtime_fd (", "mgconn_runtime_fileno (").replace(
            "#ifdef __cplusplus\n}", "MGCONN_EXTERN (int) mgconn_brand_new (int32_t x);\n\n#ifdef __cplusplus\n}")
        problems = check(drifted, committed, args.lib)
        wanted = ["in the header, not in the manifest: mgconn_brand_new",
                  "in the manifest, not in the header: mgconn_runtime_fd"]
        missing = [w for w in wanted if not any(w in p for p in problems)]
        for w in missing:
            print(f"FAIL: the check did not report: {w}")
        bad = header.replace("mgconn_runtime_fd (const mgconn_runtime *rt)", "mgconn_runtime_fd (const mgconn_runtime *rt, long x)")
        if not any("outside the manifest's vocabulary" in p for p in check(bad, committed, args.lib)):
            print("FAIL: a `long` parameter was not refused")
            missing.append("long")
        print("selftest:", "the check reports drift" if not missing else "the check missed drift")
        return 1 if missing else 0

    problems = check(header, committed, args.lib)
    for p in problems:
        print("FAIL:", p)
    if not problems:
        print(f"manifest, header and {pathlib.Path(args.lib).name} agree: {len(committed['functions'])} functions, "
              f"{len(committed['constants'])} constants")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
