#!/usr/bin/env bash
# Every test of the project, from a fresh machine: set-up, then the C core plain, under ASan+UBSan,
# under TSan and under valgrind, against real FerretDB servers that the tests start themselves.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
bash scripts/setup.sh
deps=${MGCONN_DEPS:-$top/.deps}
driver=$(bash scripts/build-driver.sh "$deps")
# C examples in the docs are compiled against the pinned driver's libbson.
export PKG_CONFIG_PATH=$driver/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}

jobs=2
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$top/tests/tsan.supp

step() { printf '\n==== %s\n' "$*"; }

build() {
  local dir=$1; shift
  cmake -S . -B "$dir" "$@" > "$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; return 1; }
  cmake --build "$dir" -j"$jobs" > "$dir.build.log" 2>&1 || { cat "$dir.build.log"; return 1; }
}

failed=0
# Note: `set -e` does not apply inside a function called from `if` (as run() calls them), so every
# step of a suite function below ends with `|| return 1`.
run() { # name, command...
  local name=$1; shift
  step "$name"
  if "$@"; then results+=("passed  $name"); else results+=("FAILED  $name"); failed=$((failed + 1)); fi
}
results=()

mkdir -p build build-asan build-tsan
run "set-up rerun (no network, nothing rebuilt)" tests/packaging/setup_rerun_check.sh
run "build (RelWithDebInfo)" build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMGCONN_LUA_VERSIONS=all
run "build (ASan+UBSan)" build build-asan -DCMAKE_BUILD_TYPE=Debug -DMGCONN_SANITIZE=address
run "build (TSan)" build build-tsan -DCMAKE_BUILD_TYPE=Debug -DMGCONN_SANITIZE=thread

run "C tests" ctest --test-dir build -j"$jobs" --output-on-failure -LE valgrind
run "C tests under ASan+UBSan" ctest --test-dir build-asan -j"$jobs" --output-on-failure
run "C tests under TSan" ctest --test-dir build-tsan -j"$jobs" --output-on-failure
run "C tests under valgrind" ctest --test-dir build -j"$jobs" --output-on-failure -L valgrind

python_suite() {
  # A fresh virtual environment: `pip install .` as a user would run it, then the pytest suite
  # (through the package's own pytest plugin) and mypy on the package and the api.md example.
  local venv=build-venv
  [[ -x $venv/bin/python ]] || python3 -m venv "$venv" || return 1
  "$venv/bin/pip" install -q -r tests/python/requirements.txt || return 1
  "$venv/bin/pip" install -q --force-reinstall --no-deps . || return 1
  MGCONN_FERRETDB="$deps/bin/ferretdb" MGCONN_BUILD_DIR="$top/build" \
    "$venv/bin/python" -m pytest tests/python -q -p no:cacheprovider || return 1
  "$venv/bin/mypy" --strict docs/examples/python/quickstart.py || return 1
  "$venv/bin/mypy" -p mgconn --python-executable "$venv/bin/python"
}
run "Python package, pytest suite and mypy" python_suite

other_pythons_suite() {
  # The package under every other supported Python installed here (pyenv's, or pythonX.Y on PATH):
  # `pip install .` into a venv of that version, then the suite's smoke subset (the extension and
  # its codec, asyncio, the pytest plugin, bad input). The full suite ran above, on python3, with
  # the loop-stall measurement, which is left out here: on a busy machine a timing is noise, and
  # repeating it per version only repeats the noise.
  local main v py venv tested=() failed_versions=()
  main=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  for v in 3.9 3.10 3.11 3.12 3.13; do
    [[ $v == "$main" ]] && continue
    py=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$v".*/bin/python"$v" 2>/dev/null | sort -V | tail -1)
    [[ -n $py ]] || py=$(command -v "python$v") || continue
    "$py" -c pass 2> /dev/null || continue # a pyenv shim of a version that is not installed
    venv=build-venv-$v
    [[ -x $venv/bin/python ]] || "$py" -m venv "$venv" || return 1
    "$venv/bin/pip" install -q -r tests/python/requirements-smoke.txt || return 1
    "$venv/bin/pip" install -q --force-reinstall --no-deps . || return 1
    echo "Python $v ($py):"
    MGCONN_FERRETDB="$top/.deps/bin/ferretdb" MGCONN_BUILD_DIR="$top/build" \
      "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/python/test_packaging.py tests/python/test_pytest_plugin.py \
      tests/python/test_operations.py tests/python/test_buffering.py tests/python/test_connection.py \
      tests/python/test_models.py tests/python/test_bad_input.py tests/python/test_loop_and_secrets.py \
      tests/python/test_examples.py -k "not test_a_10ms_ticker_never_stalls" || failed_versions+=("$v")
    tested+=("$v")
  done
  echo "other Pythons tested: ${tested[*]:-none installed}; failed: ${failed_versions[*]:-none}"
  ((${#failed_versions[@]} == 0))
}
run "Python 3.9 to 3.13 besides python3 (pip install ., the suite's smoke subset)" other_pythons_suite
run "Portable wheel (scripts/wheel.sh; installed alone, the system's libmongoc hidden) and sdist" \
  tests/packaging/wheel_check.sh

conformance_suite() {
  # Every scenario through Mongoose itself, mgconn-Python and mgconn-Lua; fails on any "different"
  # verdict, or when the verdicts are not the ones docs/conformance.md publishes.
  MGCONN_FERRETDB="$deps/bin/ferretdb" MGCONN_BUILD_DIR="$top/build" \
    build-venv/bin/python tests/conformance/run.py --check-docs
}
run "Conformance with Mongoose (tests/conformance)" conformance_suite

lua_suite() {
  # `luarocks make` from the rockspec, as a user installs it, into a tree of the build's own; then
  # the busted specs against that installed module.
  local tree=build-luarocks
  luarocks --lua-version=5.4 make --tree "$tree" lua/mgconn-0.1.0-1.rockspec > "$tree.log" 2>&1 ||
    { cat "$tree.log"; return 1; }
  MGCONN_SOURCE_DIR="$top" MGCONN_LUA=lua5.4 LUA_CPATH="$top/$tree/lib/lua/5.4/?.so;;" \
    LUA_PATH="$top/$tree/share/lua/5.4/?.lua;$top/lua/spec/?.lua;;" lua5.4 /usr/bin/busted lua/spec
}
run "Lua module (luarocks make) and busted specs" lua_suite

other_luas_suite() {
  # The same specs under every other Lua found here (5.1, 5.2, 5.3, LuaJIT), each against the module
  # `luarocks --lua-version=V make` installed into a tree of its own (LuaJIT loads 5.1's), all the
  # specs but install_spec (the 5.4 run above checks the README's command as written); and the two
  # forms CMake built for each (build/lua-V/mgconn/core.so, build/lua-single-V/mgconn.so), loaded.
  # lifetime_spec (a minute of open/close and garbage-collection loops) runs under 5.1 and LuaJIT,
  # whose collectors and userdata differ from 5.4's, and not under 5.2 and 5.3, to keep the time down.
  local v lua rocks tree skip tested=() failed_versions=()
  for v in 5.1 5.2 5.3 luajit; do
    lua=lua$v rocks=$v skip=(--exclude-pattern=install_spec)
    [[ $v == luajit ]] && lua=luajit rocks=5.1
    [[ $v == 5.2 || $v == 5.3 ]] && skip+=(--exclude-pattern=lifetime_spec)
    command -v "$lua" > /dev/null || continue
    echo "== $lua"
    tree=build-luarocks-$rocks
    if [[ ! -f $tree/lib/lua/$rocks/mgconn/core.so || $v != luajit ]]; then
      luarocks --lua-version="$rocks" make --tree "$tree" lua/mgconn-0.1.0-1.rockspec > "$tree.log" 2>&1 ||
        { cat "$tree.log"; failed_versions+=("$v"); continue; }
    fi
    LUA_CPATH="$top/build/lua-single-$v/?.so" LUA_PATH="/nonexistent/?.lua" \
      "$lua" -e 'local m = require "mgconn"; assert(m.Int64 and m.connect and m.version)' || failed_versions+=("$v")
    LUA_CPATH="$top/build/lua-$v/?.so" LUA_PATH="$top/lua/?.lua" \
      "$lua" -e 'local m = require "mgconn"; assert(m.Int64 and m.connect and m.version)' || failed_versions+=("$v")
    MGCONN_SOURCE_DIR="$top" MGCONN_LUA=$lua LUA_CPATH="$top/$tree/lib/lua/$rocks/?.so;;" \
      LUA_PATH="$top/$tree/share/lua/$rocks/?.lua;$top/lua/spec/?.lua;;" \
      "$lua" /usr/bin/busted "${skip[@]}" lua/spec || failed_versions+=("$v")
    tested+=("$v")
  done
  echo "other Luas tested: ${tested[*]:-none installed}; failed: ${failed_versions[*]:-none}"
  ((${#failed_versions[@]} == 0))
}
run "Lua 5.1, 5.2, 5.3 and LuaJIT besides 5.4 (the specs; the single-file module)" other_luas_suite
run "A LÖVE game (LuaJIT) under Xvfb, saving through a server kill (docs/examples/love)" \
  docs/examples/love/run.sh
run "Lua source rock (scripts/rock.sh, then built from the rock alone)" tests/packaging/rock_check.sh

soak_suite() {
  # 60 s of Python and Lua work through SIGKILLs of the server (its C part runs in the sanitizer
  # builds above, as test_soak.kills).
  MGCONN_FERRETDB="$deps/bin/ferretdb" MGCONN_BUILD_DIR="$top/build" \
    build-venv/bin/python tests/soak/run.py --seconds 60
}
run "Fault soak (60 s, Python and Lua, the server killed every 5-10 s)" soak_suite

run "Fuzzing (libFuzzer: the options parser, the Lua converters; 20 s each)" tests/fuzz/run.sh 20

step "summary"
printf '%s\n' "${results[@]}"
echo "suites: $(( ${#results[@]} - failed )) passed, $failed failed"
exit $(( failed > 0 ))
