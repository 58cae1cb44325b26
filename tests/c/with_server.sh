#!/usr/bin/env bash
# Runs COMMAND URI against a FerretDB started for it (through the project's launcher), then stops it.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
data=$(mktemp -d)
exec 3< <(exec python3 "$top/python/mgconn/ferretdb.py" serve --data "$data" --no-stdin)
read -r word port pid uri <&3
trap 'kill -9 "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
[[ $word == ready ]] || { echo "FerretDB did not start" >&2; exit 1; }
"$@" "${uri}mgconn_test"
