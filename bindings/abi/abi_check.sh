#!/usr/bin/env bash
# The ABI stability check: the library against the committed abidw baseline of its SONAME.
#
#   abi_check.sh LIB             fails when LIB's ABI differs from bindings/abi/<SONAME>.abi
#   abi_check.sh --update LIB    writes that baseline; refuses an incompatible change under the
#                                same SONAME (bump MGCONN_SOVERSION in CMakeLists.txt instead)
#
# The rule it enforces: an incompatible change (a removed function, a changed parameter or return
# type, a changed size or layout of a public struct) needs a new SONAME, and the new SONAME needs
# a baseline of its own, so the two always move together. A compatible change (an added function)
# keeps the SONAME and updates the baseline. Only types reachable from core/include count.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
headers="$here/../../core/include"
update=0
if [[ ${1:-} == --update ]]; then update=1; shift; fi
lib=${1:?usage: abi_check.sh [--update] LIB}
baseline_dir=${MGCONN_ABI_BASELINE_DIR:-$here}

soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[[ -n $soname ]] || { echo "FAIL: $lib has no SONAME" >&2; exit 1; }
baseline="$baseline_dir/$soname.abi"

dump() { abidw --headers-dir "$headers" --drop-private-types --no-corpus-path --no-show-locs "$1"; }

if [[ ! -f $baseline ]]; then
   if ((update)); then
      dump "$lib" > "$baseline" && echo "wrote the first baseline for $soname: $baseline"
      exit $?
   fi
   echo "FAIL: no ABI baseline for $soname ($baseline). A new SONAME needs its own baseline:" \
        "run bindings/abi/abi_check.sh --update $lib and commit it." >&2
   exit 1
fi

report=$(abidiff --headers-dir1 "$headers" --headers-dir2 "$headers" "$baseline" "$lib")
rc=$?
if ((rc & 3)); then
   echo "FAIL: abidiff could not compare ($rc): $report" >&2
   exit 1
fi
# abidiff flags only removals as incompatible (bit 8); a changed parameter, return type or struct
# layout is "a change" (bit 4), as an addition is. Here anything removed or changed is incompatible,
# and only additions are compatible.
summary() { sed -n "s/^$1 changes summary: \([0-9]*\) Removed, \([0-9]*\) Changed.*/\1 \2/p" <<<"$report"; }
read -r fn_removed fn_changed <<<"$(summary Functions)"
read -r var_removed var_changed <<<"$(summary Variables)"
if ((rc & 8)) || ((${fn_removed:-0} + ${fn_changed:-0} + ${var_removed:-0} + ${var_changed:-0} > 0)); then
   echo "FAIL: an incompatible ABI change under the same SONAME $soname. Bump MGCONN_SOVERSION" \
        "(CMakeLists.txt) and write the new SONAME's baseline with --update. abidiff says:" >&2
   echo "$report" >&2
   exit 1
fi
if ((rc & 4)); then
   if ((update)); then
      dump "$lib" > "$baseline" && echo "updated $baseline (compatible changes)"
      exit $?
   fi
   echo "FAIL: compatible ABI changes not yet in the baseline $baseline: run" \
        "bindings/abi/abi_check.sh --update $lib and commit it. abidiff says:" >&2
   echo "$report" >&2
   exit 1
fi
echo "ABI of $(basename "$lib") matches the $soname baseline"
