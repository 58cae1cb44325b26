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

uri="mongodb://127.0.0.1:$port/demo"

echo; echo "---- C quickstart: events, a buffered insert, a find"
./build/docs/examples/c/quickstart "$uri"

echo; echo "---- Python: installing the package into build-venv (once)"
[[ -x build-venv/bin/python ]] || python3 -m venv build-venv
build-venv/bin/pip install -q .
for example in quickstart events retry multiple_connections multi_tenant_http script_sync; do
  echo; echo "---- Python: docs/examples/python/$example.py"
  build-venv/bin/python "docs/examples/python/$example.py" "$uri"
done

export LUA_CPATH="$top/build/lua/?.so;;" LUA_PATH="$top/lua/?.lua;;"
echo; echo "---- Lua: docs/examples/lua/quickstart.lua"
lua5.4 docs/examples/lua/quickstart.lua "$uri"

echo; echo "---- The game-loop host: 60 Hz for 6 s; the server is killed at 2 s and back at 4 s"
./build/docs/examples/game_host/game_host docs/examples/game_host/game.lua "$uri" 360 &
game=$!
sleep 2
kill -9 "$pid"; echo "demo: FerretDB killed"
wait "$SERVER_PID" 2>/dev/null || true
sleep 2
coproc SERVER { exec python3 python/mgconn/ferretdb.py serve --data var/ferretdb --port "$port"; }
read -r word port pid uri2 <&"${SERVER[0]}"
echo "demo: FerretDB back on 127.0.0.1:$port"
wait "$game"
