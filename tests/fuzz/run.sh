#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan+UBSan, the whole library instrumented) and runs each:
# first every input in tests/fuzz/regressions/<target>/ (each once made a target fail: it must pass
# now), then a fuzzing run of SECONDS (default 20: the test command's short run; a longer run for a
# release: tests/fuzz/run.sh 1800). The corpus grows in build-fuzz/corpus/ from tests/fuzz/seeds/.
# A failure leaves its input in build-fuzz/artifacts/: fix the bug, then add the input to
# tests/fuzz/regressions/<target>/ with a name that says what it found.
set -euo pipefail
shopt -s nullglob
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
seconds=${1:-20}
build="$top/build-fuzz"
cmake -S "$top" -B "$build" -DCMAKE_C_COMPILER=clang-14 -DMGCONN_SANITIZE=fuzz -DMGCONN_BUILD_TESTS=OFF > /dev/null
cmake --build "$build" -j2 --target fuzz_options fuzz_lua_codec > "$build.log" 2>&1 || { cat "$build.log"; exit 1; }

for target in options lua_codec; do
  bin="$build/tests/fuzz/fuzz_$target"
  regressions=("$top/tests/fuzz/regressions/$target"/*)
  if ((${#regressions[@]})); then
    "$bin" "${regressions[@]}" > "$build/regressions-$target.log" 2>&1 ||
      { cat "$build/regressions-$target.log"; echo "fuzz_$target: a regression input fails again"; exit 1; }
  fi
  mkdir -p "$build/corpus/$target" "$build/artifacts"
  if ! "$bin" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$build/artifacts/$target-" \
      "$build/corpus/$target" "$top/tests/fuzz/seeds/$target" > "$build/fuzz-$target.log" 2>&1; then
    tail -40 "$build/fuzz-$target.log"
    echo "fuzz_$target: failed; the input is in $build/artifacts/"
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/fuzz-$target.log")
  echo "fuzz_$target: ${#regressions[@]} regression inputs pass; $runs executions in ${seconds} s, no failure" \
       "(corpus: $(ls "$build/corpus/$target" | wc -l) inputs)"
  grep -h "^fuzz_lua_codec:" "$build/fuzz-$target.log" | tail -1 || true
done
