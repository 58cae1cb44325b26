"""Every code example in the docs runs, against a real server, and checks what the text claims.

Fenced blocks tagged python, lua or c in README.md and docs/*.md are complete programs: Python runs
in this interpreter, Lua in lua5.4 with the built module, C is compiled against the built library.
Each example asserts its own claims (and exits non-zero when one fails). Examples run from the
repository's root, with libmgconn on the library path. `mongodb://127.0.0.1:27017/DB`
becomes this suite's server with a database of the example's own. A block right after the line
`<!-- excerpt: PATH -->` is an excerpt of PATH instead (a file that is itself run by the tests): its
lines must appear in PATH, in order. Blocks in other languages (sh, text, json) are not run.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import List, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("MGCONN_BUILD_DIR", ROOT / "build"))
RUNNABLE = {"python", "lua", "c"}
GENERATED = {"benchmarks.md", "conformance.md", "c-api.md", "python-api.md", "lua-api.md"}  # written by tools


class Example(NamedTuple):
    doc: str
    line: int
    lang: str
    code: str
    excerpt_of: str


def collect() -> List[Example]:
    docs = [ROOT / "README.md"] + sorted(p for p in (ROOT / "docs").rglob("*.md") if p.name not in GENERATED)
    found = []
    for doc in docs:
        lines = doc.read_text().split("\n")
        i = 0
        while i < len(lines):
            m = re.match(r"^```(\w+)\s*$", lines[i])
            if not m:
                i += 1
                continue
            start, lang = i, m.group(1)
            end = lines.index("```", start + 1)
            prev = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
            em = re.match(r"<!-- excerpt: (\S+) -->", prev)
            if lang in RUNNABLE:
                found.append(Example(str(doc.relative_to(ROOT)), start + 1, lang, "\n".join(lines[start + 1 : end]) + "\n",
                                     em.group(1) if em else ""))
            i = end + 1
    return found


EXAMPLES = collect()


def localize(code: str, server_uri: str) -> str:
    hostport = re.match(r"mongodb://([^/]+)/", server_uri).group(1)  # type: ignore[union-attr]
    suffix = uuid.uuid4().hex[:8]
    code = re.sub(r"mongodb://127\.0\.0\.1:27017/(\w+)", lambda m: f"mongodb://{hostport}/{m.group(1)}_{suffix}", code)
    return code.replace("127.0.0.1:27017", hostport)


def test_the_docs_have_examples_in_every_language():
    langs = {e.lang for e in EXAMPLES}
    assert langs == RUNNABLE, langs
    guide = [e for e in EXAMPLES if e.doc == "docs/guide.md"]
    assert len([e for e in guide if e.lang == "python"]) >= 13 and len([e for e in guide if e.lang == "lua"]) >= 13


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{e.doc}:{e.line}:{e.lang}" for e in EXAMPLES])
def test_example(example: Example, _mgconn_session_server: str, tmp_path: Path) -> None:
    if example.excerpt_of:
        source = [line.strip() for line in (ROOT / example.excerpt_of).read_text().split("\n")]
        pos = 0
        for line in (line.strip() for line in example.code.split("\n")):
            if not line or line == "...":
                continue
            line = line.split("/*")[0].split("--")[0].split("# ")[0].strip()  # comments may differ
            at = next((i for i in range(pos, len(source)) if line in source[i]), None)
            assert at is not None, f"{example.doc}:{example.line}: not in {example.excerpt_of} (in order): {line}"
            pos = at + 1
        return

    code = localize(example.code, _mgconn_session_server)
    env = dict(os.environ)
    if example.lang == "python":
        cmd = [sys.executable, "-c", code]
    elif example.lang == "lua":
        env.update(LUA_CPATH=f"{BUILD}/lua/?.so;;", LUA_PATH=f"{ROOT}/lua/?.lua;;")
        cmd = [shutil.which("lua5.4") or "lua5.4", "-e", code]
    else:
        src = tmp_path / "example.c"
        src.write_text(code)
        packages = ["bson2-static"] + (["lua5.4"] if "#include <lua.h>" in code else [])
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", *packages], capture_output=True, text=True,
                               check=True).stdout.split()
        env.update(LUA_CPATH=f"{BUILD}/lua-single/?.so;;", LUA_PATH="/nonexistent/?.lua")
        exe = tmp_path / "example"
        subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", "-D_GNU_SOURCE", f"-I{ROOT}/core/include", str(src),
                        "-o", str(exe), f"-L{BUILD}/core", "-lmgconn", f"-Wl,-rpath,{BUILD}/core", *flags],
                       check=True)
        cmd = [str(exe)]
    env["LD_LIBRARY_PATH"] = f"{BUILD}/core"  # as if libmgconn were installed
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert out.returncode == 0, f"{example.doc}:{example.line} ({example.lang}) failed:\n{out.stdout}\n{out.stderr}"
