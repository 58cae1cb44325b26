#!/usr/bin/env bash
# The benchmark: mgconn against PyMongo 4, Mongoose 9, lua-mongo and libmongoc used directly from C,
# side by side on one FerretDB. Writes docs/benchmarks.md, docs/benchmarks.json and docs/benchmarks/*.png;
# with --smoke (every task, tiny counts) it writes them to build/bench-smoke/ instead.
#   ./scripts/bench.sh [--n 2000] [--repeat 3] [--large 2] [--smoke] [--backend postgresql]
# (arguments go to run.py; --backend postgresql runs FerretDB on a scratch cluster of the system's
# PostgreSQL instead of SQLite).
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build -j2 > build.bench.log 2>&1 || { cat build.bench.log; exit 1; }
# lua-mongo, the Lua peer, from its archive in the repository (against the system's libmongoc-dev)
tests/bench/peers/lua-mongo/build.sh build/peers/lua-mongo
[[ -x build-venv/bin/python ]] || python3 -m venv build-venv
build-venv/bin/pip install -q -r tests/bench/requirements.txt
build-venv/bin/pip install -q --force-reinstall --no-deps .
MGCONN_FERRETDB="${MGCONN_DEPS:-$top/.deps}/bin/ferretdb" build-venv/bin/python tests/bench/run.py "$@"
