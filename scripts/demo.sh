#!/usr/bin/env bash
# The main job: an embedded FerretDB (data kept under var/ferretdb) and the examples against it.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build -j2 > build.demo.log 2>&1 || { cat build.demo.log; exit 1; }

mkdir -p var
coproc SERVER { exec python3 python/mgconn/ferretdb.py serve --data var/ferretdb --port "${MGCONN_DEMO_PORT:-0}"; }
trap 'kill "$SERVER_PID" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
read -r word port pid uri <&"${SERVER[0]}"
[[ $word == ready ]] || { echo "demo: FerretDB did not start" >&2; exit 1; }
echo "demo: FerretDB $pid on 127.0.0.1:$port (data in var/ferretdb)"

echo; echo "---- C quickstart: events, a buffered insert, a find"
./build/docs/examples/c/quickstart "mongodb://127.0.0.1:$port/demo"
