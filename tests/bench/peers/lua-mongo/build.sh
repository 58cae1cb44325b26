#!/usr/bin/env bash
# Builds the lua-mongo peer from its archive (checked against its sha256) into OUT/mongo.so, once:
# a rerun with the same archive and an existing module does nothing.
#   tests/bench/peers/lua-mongo/build.sh OUT
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$1
archive=$here/lua-mongo-74f15a0.tar.gz
sha=4bf511184940e1f3d1bddbf061e8c5d1e176b0b0800706def13ef645d6acaa36
[[ -f $out/mongo.so && -f $out/.built-from && $(cat "$out/.built-from") == "$sha" ]] && exit 0
echo "$sha  $archive" | sha256sum -c --quiet - || { echo "lua-mongo: $archive is not the archive named in README.md" >&2; exit 1; }
src=$out-src
rm -rf "$src" && mkdir -p "$src" "$out"
tar -xzf "$archive" -C "$src"
cmake -S "$src/lua-mongo" -B "$out" -DUSE_LUA_VERSION=5.4 -DCMAKE_BUILD_TYPE=Release > "$out.build.log" 2>&1 &&
  cmake --build "$out" -j2 >> "$out.build.log" 2>&1 || { cat "$out.build.log"; exit 1; }
echo "$sha" > "$out/.built-from"
