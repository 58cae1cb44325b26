#!/usr/bin/env bash
# Proves the ABI check fails when it should: builds libmgconn from a copy of the sources with one
# parameter widened (mgconn_runtime_dispatch's `max`, int32_t -> int64_t: an incompatible change)
# and with one function added (compatible), and checks what abi_check.sh says of each, including
# that a moved SONAME with its own baseline passes. Nothing in the tree is touched.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$top/core" "$work/core"

build() { # build SONAME OUTPUT
   gcc -std=c11 -D_GNU_SOURCE -g -O0 -fPIC -fvisibility=hidden -shared -w \
       -I"$work/core/include" -I"$work/core/src" $(pkg-config --cflags mongoc2-static) \
       "$work"/core/src/*.c -o "$2" -Wl,-soname,"$1" -Wl,--exclude-libs,ALL $(pkg-config --libs mongoc2-static) -lpthread
}
expect_fail() { # expect_fail WHAT TEXT LIB [ENV...]
   local what=$1 text=$2 lib=$3 out
   shift 3
   if out=$(env "$@" "$here/abi_check.sh" "$lib" 2>&1); then
      echo "FAIL: the check passed $what"; exit 1
   fi
   grep -q "$text" <<<"$out" || { echo "FAIL: for $what the check said: $out"; exit 1; }
   echo "ok: $what -> $(head -c 160 <<<"$out")..."
}

# An incompatible change under the same SONAME.
sed -i 's/mgconn_runtime_dispatch (mgconn_runtime \*rt, int32_t max)/mgconn_runtime_dispatch (mgconn_runtime *rt, int64_t max)/' \
   "$work/core/include/mgconn.h" "$work/core/src/runtime.c"
grep -q "int64_t max" "$work/core/src/runtime.c" || { echo "FAIL: the edit did not apply"; exit 1; }
build libmgconn.so.0 "$work/libmgconn.so.0"
expect_fail "a widened parameter under the same SONAME" "incompatible ABI change under the same SONAME" \
   "$work/libmgconn.so.0"

# The same change with the SONAME moved: refused until the new SONAME has a baseline, then passes.
build libmgconn.so.1 "$work/libmgconn.so.1"
mkdir "$work/baselines"
cp "$here"/*.abi "$work/baselines/"
expect_fail "a moved SONAME without its baseline" "no ABI baseline for libmgconn.so.1" "$work/libmgconn.so.1" \
   MGCONN_ABI_BASELINE_DIR="$work/baselines"
MGCONN_ABI_BASELINE_DIR="$work/baselines" "$here/abi_check.sh" --update "$work/libmgconn.so.1" >/dev/null
MGCONN_ABI_BASELINE_DIR="$work/baselines" "$here/abi_check.sh" "$work/libmgconn.so.1" >/dev/null ||
   { echo "FAIL: a moved SONAME with its own baseline did not pass"; exit 1; }
echo "ok: SONAME and baseline moved together -> passes"
# --update refuses to hide an incompatible change under the old SONAME.
if MGCONN_ABI_BASELINE_DIR="$work/baselines" "$here/abi_check.sh" --update "$work/libmgconn.so.0" >/dev/null 2>&1; then
   echo "FAIL: --update rewrote the baseline over an incompatible change"; exit 1
fi
echo "ok: --update refuses an incompatible change under the same SONAME"

# A compatible change: an added function.
rm -rf "$work/core" && cp -r "$top/core" "$work/core"
printf '\n__attribute__ ((visibility ("default"))) int mgconn_added_later (void) { return 1; }\n' >> "$work/core/src/init.c"
perl -0pi -e 's/(#ifdef __cplusplus\n\})/MGCONN_EXTERN (int) mgconn_added_later (void);\n\n$1/' "$work/core/include/mgconn.h"
grep -q mgconn_added_later "$work/core/include/mgconn.h" || { echo "FAIL: the header edit did not apply"; exit 1; }
build libmgconn.so.0 "$work/libmgconn-added.so"
expect_fail "an added function not yet in the baseline" "compatible ABI changes not yet in the baseline" \
   "$work/libmgconn-added.so"
