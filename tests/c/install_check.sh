#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds a consumer against it twice, each in the one
# line docs/c-api.md gives: through the CMake package (find_package(mgconn) and mgconn::mgconn) and
# through pkg-config (`cc app.c $(pkg-config --cflags --libs mgconn)`); both must build and run.
set -euo pipefail
build_dir=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" > /dev/null
mkdir -p "$work/consumer"
# A consumer as the quickstart is written: its documents are built with libbson, which mgconn's
# package brings along (nothing about libbson is added below by hand).
cat > "$work/consumer/main.c" <<'C'
#include <bson/bson.h>
#include <mgconn.h>
#include <stdio.h>
#include <string.h>
int main (void) {
   mgconn_runtime *rt = NULL;
   bson_t *opts = BCON_NEW ("workers", BCON_INT32 (2));
   if (mgconn_runtime_new (&rt, bson_get_data (opts), opts->len, NULL) != 0) return 1;
   bson_destroy (opts);
   printf ("mgconn %s fd %d\n", mgconn_version (), mgconn_runtime_fd (rt));
   mgconn_runtime_free (rt);
   return strcmp (mgconn_version (), MGCONN_VERSION_STRING) != 0;
}
C
cat > "$work/consumer/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(consumer C)
find_package(mgconn REQUIRED)
add_executable(consumer main.c)
target_link_libraries(consumer mgconn::mgconn)
CM
cmake -S "$work/consumer" -B "$work/consumer/build" -DCMAKE_PREFIX_PATH="$work/prefix" > /dev/null
cmake --build "$work/consumer/build" > /dev/null
LD_LIBRARY_PATH="$work/prefix/lib" "$work/consumer/build/consumer"

export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
cc -o "$work/consumer/pc" "$work/consumer/main.c" $(pkg-config --cflags --libs mgconn)
LD_LIBRARY_PATH="$work/prefix/lib" "$work/consumer/pc"
echo "install check: CMake package and pkg-config consumers built and ran"
