#!/usr/bin/env bash
# prometheus_scrape.sh - the metrics endpoint scraped by a real Prometheus.
#
# Usage: prometheus_scrape.sh <metrics_server>   (ctest: prometheus_scrape)
#
# Starts tests/metrics_server.c (a runtime with its endpoint on a free
# 127.0.0.1 port, a little work done, up until its stdin closes), writes a
# prometheus.yml scraping it every second, starts Debian's prometheus on
# 127.0.0.1 with a free port and a temporary TSDB, and polls Prometheus's
# query API (a bounded number of tries) until rustyray_workers,
# rustyray_tasks_finished_total and up read back with the values the server
# printed. Then it stops both and removes everything it made.
#
# Exit: 0 pass, 1 fail, 77 skip (prometheus not installed: the test command
# installs the Debian package "prometheus"; curl is needed too).
set -u

server=${1:?usage: prometheus_scrape.sh <metrics_server>}
if ! command -v prometheus >/dev/null 2>&1; then
  echo "SKIP: prometheus is not installed (Debian: apt-get install prometheus)"
  exit 77
fi
if ! command -v curl >/dev/null 2>&1; then
  echo "SKIP: curl is not installed"
  exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rustyray-prom.XXXXXX")
spid=""
ppid_=""
cleanup() {
  if [ -n "$ppid_" ]; then
    kill "$ppid_" 2>/dev/null
    wait "$ppid_" 2>/dev/null
  fi
  exec 3>&- 2>/dev/null # EOF on the server's stdin: it shuts down
  if [ -n "$spid" ]; then
    wait "$spid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  for f in server.err prometheus.log; do
    if [ -s "$tmp/$f" ]; then
      echo "--- $f (last lines)"
      tail -n 20 "$tmp/$f"
    fi
  done
  exit 1
}

# ---- The runtime, its stdin a FIFO we hold open.
mkfifo "$tmp/stdin"
"$server" <"$tmp/stdin" >"$tmp/server.out" 2>"$tmp/server.err" &
spid=$!
exec 3>"$tmp/stdin"
for _ in $(seq 1 600); do
  grep -q '^tasks ' "$tmp/server.out" 2>/dev/null && break
  kill -0 "$spid" 2>/dev/null || fail "metrics_server exited early"
  sleep 0.1
done
port=$(sed -n 's/^port //p' "$tmp/server.out")
workers=$(sed -n 's/^workers //p' "$tmp/server.out")
tasks=$(sed -n 's/^tasks //p' "$tmp/server.out")
[ -n "$port" ] && [ -n "$workers" ] && [ -n "$tasks" ] || fail "metrics_server printed no port"
echo "metrics_server: port $port, workers $workers, tasks $tasks"

cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: rustyray
    static_configs:
      - targets: ['127.0.0.1:$port']
EOF

# ---- Prometheus on a free loopback port: pick one nobody answers on; if
# another process takes it first, Prometheus exits and we try another.
pport=""
for attempt in 1 2 3 4 5; do
  p=$((20000 + RANDOM % 40000))
  if (exec 9<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then continue; fi
  prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
    --web.listen-address="127.0.0.1:$p" --log.level=warn >"$tmp/prometheus.log" 2>&1 &
  ppid_=$!
  for _ in $(seq 1 300); do
    if curl -fs --max-time 2 "http://127.0.0.1:$p/-/ready" >/dev/null 2>&1; then
      pport=$p
      break
    fi
    kill -0 "$ppid_" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$pport" ] && break
  kill "$ppid_" 2>/dev/null
  wait "$ppid_" 2>/dev/null
  ppid_=""
  echo "prometheus did not come up on port $p (attempt $attempt)"
done
[ -n "$pport" ] || fail "prometheus did not start"
echo "prometheus: 127.0.0.1:$pport"

# ---- Read the metrics back through the query API.
# The value of an instant query's first sample, or nothing.
query() {
  curl -fs --max-time 5 "http://127.0.0.1:$pport/api/v1/query" --data-urlencode "query=$1" |
    sed -n 's/.*"value":\[[^,]*,"\([^"]*\)"\].*/\1/p'
}

got_up="" got_workers="" got_tasks=""
for _ in $(seq 1 120); do
  got_up=$(query 'up{job="rustyray"}')
  got_workers=$(query 'rustyray_workers{job="rustyray"}')
  got_tasks=$(query 'rustyray_tasks_finished_total{job="rustyray"}')
  if [ "$got_up" = 1 ] && [ "$got_workers" = "$workers" ] && [ "$got_tasks" = "$tasks" ]; then
    echo "through Prometheus: up 1, rustyray_workers $got_workers," \
      "rustyray_tasks_finished_total $got_tasks"
    # Stop both; the server must shut down cleanly.
    kill "$ppid_" 2>/dev/null
    wait "$ppid_" 2>/dev/null
    ppid_=""
    exec 3>&-
    wait "$spid"
    st=$?
    spid=""
    [ "$st" = 0 ] || fail "metrics_server exited with status $st"
    echo "PASS"
    exit 0
  fi
  kill -0 "$ppid_" 2>/dev/null || fail "prometheus exited"
  kill -0 "$spid" 2>/dev/null || fail "metrics_server exited"
  sleep 0.5
done
fail "after 120 tries: up '$got_up' (want 1), rustyray_workers '$got_workers' (want $workers)," \
  "rustyray_tasks_finished_total '$got_tasks' (want $tasks)"
