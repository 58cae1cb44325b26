#!/usr/bin/env bash
# Builds the pinned mongo-c-driver (third_party/mongo-c-driver-*/) once per machine into the deps
# cache, under a folder named by its version and checksum, and prints that folder. Quick when the
# build is already there; a changed tarball or version gets a new folder, never a stale build.
#
#   usage: scripts/build-driver.sh DEPS_DIR [tsan]
#
# The tsan variant is compiled with -fsanitize=thread (static libraries only) for the TSan build of
# the tests: ThreadSanitizer sees the driver's own memory accesses and locks, so it needs no
# suppressions for the driver.
#
# The build has OpenSSL, Cyrus SASL and the bundled zlib, no tests, examples or docs; its static
# libraries are position-independent so the Python and Lua modules can take them in whole.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
deps=${1:?usage: build-driver.sh DEPS_DIR [tsan]}
variant=${2:-}
pin_dir=$(echo "$top"/third_party/mongo-c-driver-*/)
pin_dir=${pin_dir%/}
version=$(sed -n 's/^version=//p' "$pin_dir/pin")
sha256=$(sed -n 's/^sha256=//p' "$pin_dir/pin")
tarball="$pin_dir/mongo-c-driver-$version.tar.gz"
prefix="$deps/mongo-c-driver-$version-${sha256:0:12}${variant:+-$variant}"
variant_flags=()
case $variant in
  "") ;;
  tsan) variant_flags=(-DCMAKE_C_FLAGS="-fsanitize=thread -fno-omit-frame-pointer" -DENABLE_SHARED=OFF) ;;
  *) echo "build-driver: unknown variant '$variant'" >&2; exit 2 ;;
esac

if [[ -f $prefix/.complete ]]; then
  echo "$prefix"
  exit 0
fi

mkdir -p "$deps"
# Two clones set up at once on one machine: the second waits for the first's build.
exec 9> "$deps/.mongo-c-driver.lock"
flock 9
if [[ -f $prefix/.complete ]]; then
  echo "$prefix"
  exit 0
fi

echo "$sha256  $tarball" | sha256sum -c --quiet - >&2 ||
  { echo "build-driver: $tarball does not match the checksum in $pin_dir/pin" >&2; exit 1; }

work=$(mktemp -d "$deps/.mongo-c-driver-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "build-driver: building mongo-c-driver $version${variant:+ ($variant)} into $prefix (one time per machine, a few minutes)" >&2
start=$SECONDS
tar xzf "$tarball" -C "$work"
cmake -S "$work/mongo-c-driver-$version" -B "$work/build" -G "Unix Makefiles" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib \
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
  -DENABLE_TESTS=OFF -DBUILD_TESTING=OFF -DENABLE_EXAMPLES=OFF -DENABLE_STATIC=ON \
  -DENABLE_SASL=CYRUS -DENABLE_SNAPPY=OFF -DENABLE_ZSTD=OFF -DENABLE_ZLIB=BUNDLED \
  -DENABLE_SSL=OPENSSL -DENABLE_CLIENT_SIDE_ENCRYPTION=OFF -DENABLE_SRV=ON \
  -DENABLE_MAN_PAGES=OFF -DENABLE_HTML_DOCS=OFF -DENABLE_UNINSTALL=OFF "${variant_flags[@]}" >&2
cmake --build "$work/build" -j"${MGCONN_BUILD_JOBS:-2}" >&2
cmake --install "$work/build" >&2
cp "$pin_dir/COPYING" "$pin_dir/THIRD_PARTY_NOTICES" "$prefix/"
touch "$prefix/.complete"
echo "build-driver: mongo-c-driver $version built in $((SECONDS - start)) s" >&2
echo "$prefix"
