#!/usr/bin/env bash
# A rerun of scripts/setup.sh on a set-up machine does no network work and rebuilds nothing: it
# runs with no network at all (a private network namespace, where unshare is allowed), prints only
# its final line, and leaves the Node peers' installs untouched.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$top"
bash scripts/setup.sh > /dev/null # the first run may do the one-time work
stamp() { stat -c '%n %Y' tests/bench/node/node_modules tests/conformance/node/node_modules; }
before=$(stamp)
offline=()
unshare -n true 2> /dev/null && offline=(unshare -n)
start=$(date +%s%N)
out=$("${offline[@]}" bash scripts/setup.sh 2>&1) || { echo "$out"; echo "setup rerun failed${offline:+ without network}"; exit 1; }
ms=$((($(date +%s%N) - start) / 1000000))
[[ $(echo "$out" | grep -vc '^setup: ok') == 0 ]] || { echo "$out"; echo "setup rerun did more than check"; exit 1; }
[[ $(stamp) == "$before" ]] || { echo "setup rerun reinstalled the Node peers"; exit 1; }
echo "setup rerun: $ms ms${offline:+, with no network}, nothing rebuilt"
