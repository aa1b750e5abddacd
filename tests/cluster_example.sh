#!/bin/sh
# cluster_example.sh MPIEXEC NP PROGRAM: run an example once in one process
# and once as an MPI job of NP ranks with cluster mode set by the
# environment alone (RAY_CLUSTER=mpi: the other ranks serve inside ray_init),
# and check that both succeed and print the same results. Lines that carry
# times, speeds, worker counts or where the work went differ between the
# runs and are left out of the comparison; everything else must be equal.
# ctest runs it as cluster_example_<program> (label mpi).
set -eu
mpiexec=$1
np=$2
program=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
volatile='[0-9] s\b|[0-9] s[,;)]|ran on the|worker|speed:'

RAY_EXAMPLE_SMALL=1 "$program" >"$dir/one" 2>"$dir/one.err" ||
  { echo "one process failed:"; cat "$dir/one" "$dir/one.err"; exit 1; }
RAY_EXAMPLE_SMALL=1 RAY_CLUSTER=mpi "$mpiexec" --oversubscribe -np "$np" "$program" \
  >"$dir/mpi" 2>"$dir/mpi.err" ||
  { echo "mpirun -np $np failed:"; cat "$dir/mpi" "$dir/mpi.err"; exit 1; }
grep -vE "$volatile" "$dir/one" >"$dir/one.results" || true
grep -vE "$volatile" "$dir/mpi" >"$dir/mpi.results" || true
if ! diff -u "$dir/one.results" "$dir/mpi.results"; then
  echo "the results differ (- one process, + $np ranks)"
  exit 1
fi
# A result that was printed at all: the comparison must not pass on empty output.
test -s "$dir/one.results" || { echo "no output to compare"; exit 1; }
echo "same results in one process and on $np ranks:"
cat "$dir/mpi"
