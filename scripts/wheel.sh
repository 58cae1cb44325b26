#!/usr/bin/env bash
# Release wheels that run anywhere: `pip wheel .` for each Python given (default python3), then
# `auditwheel repair`, which copies every library the extension needs beyond the manylinux policy
# (libmongoc and libbson, whichever ones pkg-config gave the build, and what they link) into the
# wheel's mgconn.libs/, points the extension at them with patchelf and tags the wheel manylinux. A
# driver linked statically is inside the extension already; repair then bundles only what it needs.
#   ./scripts/wheel.sh [OUT [PYTHON...]]      (OUT defaults to dist/)
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
out=$(mkdir -p "${1:-dist}" && cd "${1:-dist}" && pwd)
shift || true
pythons=("$@")
((${#pythons[@]})) || pythons=(python3)

tools=build-wheel-tools
[[ -x $tools/bin/auditwheel ]] || python3 -m venv "$tools"
"$tools/bin/pip" install -q -r scripts/wheel-requirements.txt
export PATH="$top/$tools/bin:$PATH" # auditwheel runs patchelf from PATH

raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT
for py in "${pythons[@]}"; do
  echo "wheel: building with $py ($("$py" -c 'import platform; print(platform.python_version())'))"
  "$py" -m pip wheel -q --no-deps -w "$raw" . > "$raw/pip.log" 2>&1 || { cat "$raw/pip.log"; exit 1; }
done
for whl in "$raw"/mgconn-*.whl; do
  auditwheel repair -w "$out" "$whl" > "$raw/repair.log" 2>&1 || { cat "$raw/repair.log"; exit 1; }
  grep -i "fixed-up wheel written to" "$raw/repair.log" | sed 's/^.*written to /wheel: /'
done
