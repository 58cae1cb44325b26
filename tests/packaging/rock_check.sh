#!/usr/bin/env bash
# The Lua source rock builds away from the repository: scripts/rock.sh packs it, then only the
# .src.rock is copied to an empty folder and `luarocks build` installs it into a tree there; a Lua
# with nothing but that tree on its path loads the module and reads its core's version.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash "$top/scripts/rock.sh" "$work/out" > /dev/null
mkdir "$work/elsewhere"
cp "$work/out/mgconn-0.1.0-1.src.rock" "$work/elsewhere/"
cd "$work/elsewhere"
# The rock carries the pinned driver and builds it once per machine into the deps cache (keyed by its
# checksum): pointed at this machine's cache, it finds the build there instead of taking minutes.
MGCONN_DEPS="${MGCONN_DEPS:-$(readlink -f "$top/.deps")}" \
  luarocks --lua-version=5.4 build --tree "$work/elsewhere/tree" mgconn-0.1.0-1.src.rock > build.log 2>&1 ||
  { cat build.log; exit 1; }
version=$(LUA_PATH="$work/elsewhere/tree/share/lua/5.4/?.lua" LUA_CPATH="$work/elsewhere/tree/lib/lua/5.4/?.so" \
  lua5.4 -e 'local m = require "mgconn"; io.write(m.version)')
[[ $version == 0.1.0 ]] || { echo "rock check: the installed module says version '$version'"; exit 1; }
echo "rock check: mgconn-0.1.0-1.src.rock built from the rock alone; the module loads (core $version)"
