#!/usr/bin/env bash
# scripts/fuzz.sh - build the libFuzzer targets of tests/fuzz with clang and
# run each for a bounded time (docs/fuzzing.md).
#
#   bash scripts/fuzz.sh [target...]   default: every ray_add_fuzz() target
#
# Environment: RAY_FUZZ_SECONDS (default 30) per target; RAY_FUZZ_JOBS
# (default: the number of CPUs) for the build.
#
# Each target runs over a fresh copy of its checked-in corpus in
# build/fuzz/run/<target>/corpus (the repository is never written), with
# ASan+UBSan and leak checks, a 10 s per-input timeout and a 2 GB RSS limit.
# Prints per target: executions, exec/s, corpus size (files and bytes)
# before and after. Exits non-zero on any crash, leak, timeout or
# out-of-memory; the reproducer is kept in build/fuzz/run/<target>/ (copy it
# into tests/fuzz/corpus/<target>/ once the bug is fixed, see the docs).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${RAY_FUZZ_SECONDS:-30}
jobs=${RAY_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
dir=build/fuzz

command -v clang >/dev/null || {
  echo "fuzz.sh: clang is needed (Debian: clang libclang-rt-dev)" >&2
  exit 2
}
case "$seconds" in
  '' | *[!0-9]*)
    echo "fuzz.sh: RAY_FUZZ_SECONDS must be a whole number of seconds" >&2
    exit 2
    ;;
esac

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(sed -n 's/^ray_add_fuzz(\([a-z0-9_]*\)).*/\1/p' tests/fuzz/CMakeLists.txt)
fi

echo "== fuzz: configure and build ($dir, clang)"
cmake -S "$root" -B "$dir" -DCMAKE_C_COMPILER=clang -DRAY_FUZZ=ON -DRAY_WERROR=ON \
  -DRAY_BUILD_BENCH=OFF -DRAY_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$dir" -j "$jobs" --target fuzz >/dev/null

# files and bytes of a directory
size_of() {
  local n b
  n=$(find "$1" -type f | wc -l)
  b=$(find "$1" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
  echo "$n files, $b bytes"
}

status=0
summary=()
for t in "${targets[@]}"; do
  bin="$dir/tests/fuzz/fuzz_$t"
  seeds="tests/fuzz/corpus/$t"
  run="$dir/run/$t"
  [ -x "$bin" ] || { echo "fuzz.sh: no fuzz target $t ($bin)" >&2; exit 2; }
  rm -rf "$run"
  mkdir -p "$run/corpus"
  cp -r "$seeds/." "$run/corpus/"
  before=$(size_of "$run/corpus")
  echo "== fuzz_$t: ${seconds}s over a copy of $seeds ($before)"
  rc=0
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:allocator_may_return_null=1" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$run/" "$run/corpus" >"$run/log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$run/log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$run/log" | tail -1)
  after=$(size_of "$run/corpus")
  line=$(printf 'fuzz: %-16s executions %10s  exec/s %7s  corpus %s -> %s' \
    "$t" "${execs:-?}" "${speed:-?}" "$before" "$after")
  if [ "$rc" -ne 0 ]; then
    status=1
    line="$line  FAILED (exit $rc)"
    echo "$line"
    grep -E "ERROR|SUMMARY|fuzz check failed|Test unit written|runtime error" "$run/log" | head -20 || true
    echo "   full log: $run/log"
  else
    echo "$line"
  fi
  summary+=("$line")
done

echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
if [ "$status" -ne 0 ]; then
  echo "== fuzz: FAILED (reproducers under $dir/run/<target>/)" >&2
fi
exit "$status"
