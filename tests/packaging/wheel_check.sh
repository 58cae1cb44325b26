#!/usr/bin/env bash
# The release wheel runs where no libmongoc is installed, and the sdist builds from itself alone:
#  1. scripts/wheel.sh builds a manylinux wheel for python3;
#  2. a fresh venv gets only that wheel (pip --no-index: nothing else is reachable), and ldd shows
#     the extension's libmongoc and libbson resolving inside the venv, with LD_LIBRARY_PATH empty;
#  3. the smoke test runs against FerretDB with the system's libmongoc and libbson hidden (their
#     files masked in a private mount namespace, where unshare is allowed);
#  4. the sdist, unpacked in an empty folder, holds LICENSE, docs and scripts/setup.sh and builds a wheel.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "wheel check: $*"; exit 1; }

bash "$top/scripts/wheel.sh" "$work/dist" > "$work/wheel.log" 2>&1 || { cat "$work/wheel.log"; exit 1; }
whl=$(ls "$work"/dist/mgconn-*-manylinux*.whl) || fail "no manylinux wheel in $work/dist"
echo "wheel check: built ${whl##*/}"

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --no-index --no-deps "$whl"
ext=$("$work/venv/bin/python" -c 'import importlib.util as u; print(u.find_spec("mgconn._mgconn").origin)')
links=$(cd "$work" && LD_LIBRARY_PATH= ldd "$ext")
echo "$links" | grep -q "not found" && fail "unresolved libraries: $links"
if echo "$links" | grep -E 'lib(mongoc|bson)' | grep -v "=> $work/venv/"; then
  fail "the extension loads a libmongoc or libbson from outside the wheel (above)"
fi

# The system's copies, wherever the loader would find them: masked for the smoke test.
mapfile -t system_libs < <(ldconfig -p | awk '/lib(mongoc|bson)/ {print $NF}' | xargs -r readlink -f | sort -u)
smoke=(env LD_LIBRARY_PATH= MGCONN_FERRETDB="${MGCONN_FERRETDB:-$top/.deps/bin/ferretdb}"
       "$work/venv/bin/python" "$top/tests/packaging/wheel_smoke.py")
if ((${#system_libs[@]})) && unshare -m true 2> /dev/null; then
  echo "wheel check: hiding ${system_libs[*]}"
  (cd "$work" && unshare -m bash -c 'for f in "${@:2:$1}"; do mount --bind /dev/null "$f"; done; shift $(($1 + 1)); "$@"' \
    hide "${#system_libs[@]}" "${system_libs[@]}" "${smoke[@]}")
else
  echo "wheel check: cannot hide the system's libmongoc here (no unshare); ldd above showed it unused"
  (cd "$work" && "${smoke[@]}")
fi

(cd "$top" && build-wheel-tools/bin/python -m build --sdist -o "$work/sdist" . > "$work/sdist.log" 2>&1) ||
  { cat "$work/sdist.log"; exit 1; }
mkdir "$work/unpacked" && tar xzf "$work"/sdist/mgconn-*.tar.gz -C "$work/unpacked"
src=$(ls -d "$work"/unpacked/mgconn-*)
for f in LICENSE README.md CHANGELOG.md docs/guide.md docs/c-api.md scripts/setup.sh; do
  [[ -f $src/$f ]] || fail "the sdist lacks $f"
done
# The driver the sdist carries is built into the machine's deps cache (keyed by its checksum), as a
# clone's build finds it there: a rebuild would prove nothing more and take minutes.
(cd "$src" && MGCONN_DEPS="${MGCONN_DEPS:-$(readlink -f "$top/.deps")}" "$work/venv/bin/pip" wheel -q --no-deps -w "$work/from-sdist" . > "$work/sdist-build.log" 2>&1) ||
  { cat "$work/sdist-build.log"; fail "the sdist does not build from itself"; }
echo "wheel check: the sdist holds its licence, docs and set-up script and builds $(ls "$work/from-sdist")"
