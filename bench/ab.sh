#!/usr/bin/env bash
# Alternating A/B: Gatehouse (defaults) and the thin undici proxy, ROUNDS times each, in turn,
# against one backend, so that drift on a noisy machine hits both alike. Prints req/s and the
# proxy's CPU time per request for every run. Usage: bash bench/ab.sh [ROUNDS] [SECONDS]
# Same pinning as bench/run.ts: proxy on core 0, backend and wrk on core 1. Needs wrk and taskset.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-4}
seconds=${2:-4}
node=node_modules/.bin/node
backend_port=19101
proxy_port=19100
declare -A command=(
  [gatehouse]="$node src/cli.ts proxy --from 127.0.0.1:$proxy_port --to http://127.0.0.1:$backend_port"
  [thin-undici]="$node bench/peers/thin-undici.ts --port $proxy_port --target http://127.0.0.1:$backend_port"
)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

taskset -c 1 $node bench/backend.ts --port $backend_port & backend=$!
trap 'kill $backend 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf -o /dev/null "127.0.0.1:$backend_port/small" && break; sleep 0.1; done
for round in $(seq "$rounds"); do
  for name in gatehouse thin-undici; do
    taskset -c 0 ${command[$name]} > /dev/null 2>&1 & proxy=$!
    for _ in $(seq 100); do curl -sf -o /dev/null "127.0.0.1:$proxy_port/small" && break; sleep 0.1; done
    taskset -c 1 wrk -t1 -c50 -d1s "http://127.0.0.1:$proxy_port/small" > /dev/null
    before=$(cpu_ticks $proxy)
    out=$(taskset -c 1 wrk -t1 -c50 -d"${seconds}s" "http://127.0.0.1:$proxy_port/small")
    after=$(cpu_ticks $proxy)
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    rate=$(echo "$out" | awk '/Requests\/sec/ {print int($2)}')
    # /proc ticks are 10 ms.
    echo "round $round  $name  $rate req/s  $(( (after - before) * 10000 / requests )) us cpu/request"
    kill -TERM $proxy; wait $proxy 2>/dev/null || true
  done
done
