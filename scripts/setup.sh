#!/usr/bin/env bash
# Installs what a fresh machine lacks for building, testing and running the demo, and is quick
# when everything is already there. Safe to run again at any time.
#
#   system packages  Debian's, through apt-get (root, as on the project's machines)
#   FerretDB         built from the Go module proxy into the deps cache, once per machine
#   mongo-c-driver   the pinned one (third_party/), built into the deps cache once per machine
#
# The deps cache is $MGCONN_DEPS, else the source tree's .deps; a clone without .deps gets it as a
# link to the machine's cache (${XDG_CACHE_HOME:-~/.cache}/mgconn), so a fresh clone (as CI makes
# one per run) finds what an earlier clone built.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z ${MGCONN_DEPS:-} && ! -e $top/.deps && ! -L $top/.deps ]]; then
  machine_cache=${XDG_CACHE_HOME:-$HOME/.cache}/mgconn
  mkdir -p "$machine_cache"
  ln -s "$machine_cache" "$top/.deps"
fi
deps=${MGCONN_DEPS:-$top/.deps}
ferretdb_version=v1.24.2

debian_packages=(
  build-essential cmake pkg-config
  libssl-dev libsasl2-dev
  lua5.4 liblua5.4-dev lua-busted luarocks
  lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev luajit libluajit-5.1-dev
  love xvfb xauth libgl1-mesa-dri
  libffi-dev abigail-tools valgrind
  clang-14 libclang-rt-14-dev openssl
  libmongoc-dev libbson-dev # lua-mongo, the Lua benchmark peer, builds on Debian's driver (mgconn does not)
  linux-perf # the benchmark's profiles of the Lua tasks that miss their targets
)

say() { echo "setup: $*"; }
# Stops with what is missing, what needs it and how to get it, before anything half-runs.
require() { # command, what needs it, how to get it
  command -v "$1" > /dev/null 2>&1 && return 0
  say "missing: $1 (needed for $2)"
  say "  get it: $3"
  exit 1
}

missing=()
for p in "${debian_packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == *"install ok installed"* ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  require apt-get "installing the system packages" "on a system without apt, install the equivalents of: ${missing[*]}"
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
require cc "building libmgconn and the extension modules" "apt-get install build-essential"
require cmake "building libmgconn and the tests" "apt-get install cmake"
require pkg-config "finding libmongoc" "apt-get install pkg-config"

mkdir -p "$deps/bin"
# Read whole, not piped into `grep -q`: grep's early exit can SIGPIPE the writer, and pipefail then
# takes an installed package or a built FerretDB for a missing one (a rebuild, at random).
ferretdb_found=$("$deps/bin/ferretdb" --version 2>/dev/null || true)
if [[ ! -x $deps/bin/ferretdb || $ferretdb_found != *"$ferretdb_version"* ]]; then
  say "building FerretDB $ferretdb_version into $deps/bin (one time, a few minutes)"
  require go "building the test server, FerretDB $ferretdb_version" \
    "Go 1.24 or newer: https://go.dev/dl/ (Debian 13's golang-go; Debian 12's is too old)"
  # A plain `go install ...@version` builds, but the binary panics at start: the module zip lacks
  # build/version/version.txt, which FerretDB's release process generates. So build the same module
  # source from the Go module proxy after writing that one file.
  say "  downloading github.com/FerretDB/FerretDB@$ferretdb_version from the Go module proxy"
  download=$(GOFLAGS=-mod=mod go mod download -json "github.com/FerretDB/FerretDB@$ferretdb_version") ||
    { say "the download failed (above): is the network or GOPROXY reachable?"; exit 1; }
  module_dir=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])' <<< "$download")
  src="$deps/src/ferretdb-$ferretdb_version"
  rm -rf "$src"; mkdir -p "$deps/src"
  cp -r "$module_dir" "$src"; chmod -R u+w "$src"
  echo "$ferretdb_version" > "$src/build/version/version.txt"
  say "  compiling (go build ./cmd/ferretdb)"
  (cd "$src" && GOFLAGS=-buildvcs=false go build -trimpath -o "$deps/bin/ferretdb" ./cmd/ferretdb)
  rm -rf "$src"
fi
driver=$(bash "$top/scripts/build-driver.sh" "$deps")
driver_tsan=$(bash "$top/scripts/build-driver.sh" "$deps" tsan)
# The Node peers, pinned by their lock files: Mongoose for the benchmarks and the conformance suite.
# Installed once per lock file: a stamp of the lock file's hash in node_modules says it is done, so a
# rerun does no network work.
for dir in tests/bench/node tests/conformance/node; do
  lock_hash=$(sha256sum "$top/$dir/package-lock.json" | cut -d' ' -f1)
  stamp="$top/$dir/node_modules/.mgconn-lock-sha256"
  [[ -f $stamp && $(< "$stamp") == "$lock_hash" ]] && continue
  require npm "the Mongoose peer of the benchmark and the conformance suite" \
    "Node.js 20.19 or newer with npm: Debian 13's nodejs and npm packages (Debian 12's are too old), or https://nodejs.org/"
  say "installing Mongoose into $dir/node_modules (npm ci, once per lock file)"
  npm ci --prefix "$top/$dir" --no-audit --no-fund --loglevel=error > /dev/null
  echo "$lock_hash" > "$stamp"
done

say "ok (FerretDB at $deps/bin/ferretdb; mongo-c-driver at $driver and $driver_tsan; Mongoose in tests/*/node)"
