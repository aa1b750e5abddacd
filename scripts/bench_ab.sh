#!/usr/bin/env bash
# scripts/bench_ab.sh - compare two or more builds of the microbenchmark in
# one run: each round runs every binary once, in turn, so a noisy machine
# moves them alike; prints each case's median for the first binary and the
# ratio of every other binary's median to it (above 1: faster).
#
#   scripts/bench_ab.sh ROUNDS SECONDS "BIN_A BIN_B ..." CASE_PREFIX...
#   scripts/bench_ab.sh 7 0.4 "/tmp/base/bench/rustyray_microbenchmark \
#       build/release/bench/rustyray_microbenchmark" single_client_tasks
#
# Give the same binary twice for a control: its ratio shows the noise.
set -euo pipefail
if [ $# -lt 4 ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
rounds=$1 seconds=$2
read -r -a bins <<<"$3"
shift 3
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for _ in $(seq 1 "$rounds"); do
  for i in "${!bins[@]}"; do
    "${bins[$i]}" --seconds "$seconds" "$@" 2>/dev/null | grep -v '^#' >>"$out/$i"
  done
done
python3 - "$out" "${#bins[@]}" <<'PY'
import collections, statistics, sys
d, n = sys.argv[1], int(sys.argv[2])
def load(path):
    m = collections.defaultdict(list)
    for line in open(path):
        p = line.split()
        if len(p) >= 2:
            try:
                m[p[0]].append(float(p[1]))
            except ValueError:
                pass
    return m
runs = [load(f"{d}/{i}") for i in range(n)]
for case, values in runs[0].items():
    base = statistics.median(values)
    row = f"{case:46s} {base:11.4g}"
    for other in runs[1:]:
        v = statistics.median(other.get(case, [0.0]))
        row += f"  {v / base if base else 0.0:6.3f}"
    print(row)
PY
