#!/usr/bin/env bash
# The Lua source rock: `luarocks pack` of lua/mgconn-0.1.0-1.rockspec with a `git archive` of HEAD
# (committed work only) as its source, written to OUT/mgconn-0.1.0-1.src.rock (default build-rock/).
# `luarocks build mgconn-0.1.0-1.src.rock` then builds it on any machine with the rockspec's external
# dependencies; tests/packaging/rock_check.sh does that away from the repository.
#   ./scripts/rock.sh [OUT]
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
out=$(mkdir -p "${1:-build-rock}" && cd "${1:-build-rock}" && pwd)
rockspec=lua/mgconn-0.1.0-1.rockspec
archive=mgconn-0.1.0.tar.gz

rm -f "$out/$archive" "$out"/*.src.rock
git archive --format=tar.gz --prefix=mgconn-0.1.0/ -o "$out/$archive" HEAD
# luarocks pack fetches the source from `url` in a folder of its own, so it needs the archive's
# absolute path: the copy it packs says where this run made it.
sed "s|^source = { url = \"$archive\"|source = { url = \"file://$out/$archive\"|" "$rockspec" > "$out/${rockspec##*/}"
grep -q "file://$out/$archive" "$out/${rockspec##*/}" || { echo "rock: no source line to point at $archive"; exit 1; }
(cd "$out" && luarocks --lua-version=5.4 pack "${rockspec##*/}" > pack.log 2>&1) || { cat "$out/pack.log"; exit 1; }
echo "rock: $out/mgconn-0.1.0-1.src.rock"
