#!/bin/sh
# mpi_two_hosts.sh MPIEXEC PROGRAM [ARGS...]: run PROGRAM as a 2-rank MPI
# job on two simulated hosts, so that its traffic really crosses TCP between
# machines: two network namespaces, each with its own address on a bridge,
# an orted launched in each (a launch agent stands in for ssh) and MPI's
# byte transfer and out-of-band traffic confined to that network. Passes
# when the job succeeds and at least 1 MiB went each way over the link of
# the second "host" (the tests move larger values both ways).
#
# Needs root (namespaces, links). Without it the test says why and exits 77,
# which ctest reports as skipped (SKIP_RETURN_CODE). ctest runs it as
# mpi_2_hosts_tcp (label mpi).
set -eu
mpiexec=$1
shift
skip() {
  echo "skipped: $*"
  exit 77
}
[ "$(id -u)" = 0 ] || skip "network namespaces need root"
command -v ip >/dev/null 2>&1 || skip "no ip command (iproute2)"

id=$(($$ % 10000))
net=10.77.$(($$ % 250 + 1))
br=rrbr$id
ns_a=rustyray$id-a
ns_b=rustyray$id-b
dir=$(mktemp -d)
cleanup() {
  ip netns del "$ns_a" 2>/dev/null || true
  ip netns del "$ns_b" 2>/dev/null || true
  ip link del "$br" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

ip netns add "$ns_a" 2>/dev/null || skip "cannot create a network namespace here"
ip netns add "$ns_b"
ip link add "$br" type bridge
ip addr add "$net.254/24" dev "$br" # mpirun (this namespace) reaches both orteds
ip link set "$br" up
n=1
for h in a b; do
  ns=rustyray$id-$h
  ip link add "rrh$id$h" type veth peer name "rrn$id$h"
  ip link set "rrn$id$h" netns "$ns"
  ip link set "rrh$id$h" master "$br" up
  ip -n "$ns" addr add "$net.$n/24" dev "rrn$id$h"
  ip -n "$ns" link set "rrn$id$h" up
  ip -n "$ns" link set lo up
  n=$((n + 1))
done

# The launch agent: called as ssh would be (options, host, command), it runs
# the command in the namespace that owns the host's address.
cat >"$dir/agent" <<'AGENT'
#!/bin/sh
while [ $# -gt 0 ]; do case $1 in -*) shift ;; *) break ;; esac; done
host=$1
shift
for ns in $(ip netns list | cut -d' ' -f1); do
  if ip -n "$ns" -o -4 addr show | grep -q " inet $host/"; then
    # Its own session directory: the hosts share a hostname and /tmp, and
    # Open MPI's session directories are named by hostname and job.
    mkdir -p "$RRTMP/$ns"
    exec ip netns exec "$ns" env TMPDIR="$RRTMP/$ns" sh -c "$*"
  fi
done
echo "agent: no namespace owns $host" >&2
exit 255
AGENT
chmod +x "$dir/agent"
printf '%s slots=1\n%s slots=1\n' "$net.1" "$net.2" >"$dir/hosts"

bytes() { # bytes received and sent on the second host's link, as "rx tx"
  ip -s link show "rrh${id}b" | awk '/RX:/ {getline; rx = $1} /TX:/ {getline; tx = $1} END {print rx, tx}'
}
before=$(bytes)
# rtc_hwloc_vmhole none: two orteds on one machine otherwise both share
# hwloc's topology through a memory segment each places in "the biggest
# hole" of its address space, and one of them crashed now and then
# (hwloc_shmem_topology_write, 1 run in 5 or so). Each orted (the agent)
# and mpirun get a TMPDIR of their own: sharing /tmp and a hostname, an
# orted once failed to make its session directory ("File exists").
mkdir -p "$dir/tmp/mpirun"
RRTMP="$dir/tmp" TMPDIR="$dir/tmp/mpirun" \
"$mpiexec" --hostfile "$dir/hosts" -np 2 --mca plm_rsh_agent "$dir/agent" \
  --mca rtc_hwloc_vmhole none \
  --mca btl self,tcp --mca btl_tcp_if_include "$net.0/24" --mca oob_tcp_if_include "$net.0/24" \
  "$@"
after=$(bytes)
set -- $before $after
rx=$(($3 - $1))
tx=$(($4 - $2))
echo "over the second host's link: $rx bytes one way, $tx the other"
[ "$rx" -ge 1048576 ] && [ "$tx" -ge 1048576 ] || {
  echo "less than 1 MiB crossed: the ranks did not talk over TCP between the namespaces"
  exit 1
}
