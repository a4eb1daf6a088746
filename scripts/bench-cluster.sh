#!/usr/bin/env bash
# The Redis engine beside the memory engine, in one sitting (docs/performance.md, "A cluster
# on Redis"):
#   1. one node: ../shared/bench-peers S1 and S4 (acked) against a memory node and against a
#      redis-engine node, REPEAT times each, taking turns; Redis's own CPU is measured apart;
#   2. the S5 shape (1,000 subscribers, 100 msg/s for 10 s, 10 probes) with `pubsub bench
#      latency`: one memory node, then three redis-engine nodes on one Redis with the
#      subscribers spread over them (--urls), CPU summed over the nodes (--pids).
# Servers (nodes and Redis) on CPU 0, clients on CPU 1.
#   bash scripts/bench-cluster.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-helpers.sh
OUT=${1:-/tmp/bench-cluster}
mkdir -p "$OUT"
rm -f "$OUT"/*.jsonl "$OUT"/*.json
PEERS=../shared/bench-peers
bash "$PEERS/setup.sh" >/dev/null
swift build -c release --product pubsub >/dev/null
ulimit -n "$(ulimit -Hn)"
REPEAT=${REPEAT:-3}
BIN=.build/release/pubsub
REDIS_PORT=16379
NODE_FLAGS=(--threads 1 --max-queue 20000 --max-queue-bytes 67108864 --log-level warning)
declare -A FLAGS=([S1]="" [S4]="--window 10000 --e2e-window 20000")

# A node of engine $1 on port $2 (pid in NODE); waits until it is ready.
start_node() {
  local engine=$1 port=$2
  if [ "$engine" = redis ]; then
    taskset -c 0 $BIN serve --port "$port" "${NODE_FLAGS[@]}" --engine redis --redis-url "redis://127.0.0.1:$REDIS_PORT/0" & NODE=$!
  else
    taskset -c 0 $BIN serve --port "$port" "${NODE_FLAGS[@]}" & NODE=$!
  fi
  wait_ready "$port"
}

# 1. One node, S1 and S4.
for sc in S1 S4; do
  for rep in $(seq "$REPEAT"); do
    for engine in memory redis; do
      [ "$engine" = redis ] && start_redis
      start_node "$engine" 18080
      [ "$engine" = redis ] && before=$(cpu_seconds "$REDIS")
      taskset -c 1 python3 "$PEERS/run.py" --system ours --port 18080 --pid "$NODE" --scenario "$sc" ${FLAGS[$sc]} \
        --repeat 1 --tag "$engine" --out "$OUT/peers.jsonl" >/dev/null
      if [ "$engine" = redis ]; then
        after=$(cpu_seconds "$REDIS")
        echo "{\"scenario\":\"$sc\",\"redis_cpu_s\":$(python3 -c "print($after-$before)")}" >> "$OUT/redis-cpu.jsonl"
        stop "$NODE" "$REDIS"
      else
        stop "$NODE"
      fi
    done
  done
done

# 2. The S5 shape: one memory node, then three redis nodes.
S5=(--subs 1000 --rate 100 --duration 10 --probes 10 --payload 100)
for rep in $(seq "$REPEAT"); do
  start_node memory 18080
  taskset -c 1 $BIN bench latency --url http://127.0.0.1:18080 --pid "$NODE" "${S5[@]}" 2>/dev/null | tail -1 >> "$OUT/s5-memory.jsonl"
  stop "$NODE"

  start_redis
  start_node redis 18081; A=$NODE
  start_node redis 18082; B=$NODE
  start_node redis 18083; C=$NODE
  before=$(cpu_seconds "$REDIS")
  taskset -c 1 $BIN bench latency --urls http://127.0.0.1:18081,http://127.0.0.1:18082,http://127.0.0.1:18083 \
    --pids "$A,$B,$C" "${S5[@]}" 2>/dev/null | tail -1 >> "$OUT/s5-cluster.jsonl"
  after=$(cpu_seconds "$REDIS")
  echo "{\"scenario\":\"S5-cluster\",\"redis_cpu_s\":$(python3 -c "print($after-$before)")}" >> "$OUT/redis-cpu.jsonl"
  stop "$A" "$B" "$C" "$REDIS"
done

python3 - "$OUT" <<'EOF'
import json, statistics, sys
out = sys.argv[1]
med = statistics.median
def rows(name):
    try:
        return [json.loads(l) for l in open(f"{out}/{name}") if l.strip().startswith("{")]
    except FileNotFoundError:
        return []
peers = rows("peers.jsonl")
redis_cpu = rows("redis-cpu.jsonl")
print("| run | memory engine | redis engine (node) | Redis's own CPU |")
print("|---|---|---|---|")
for sc in ("S1", "S4"):
    figures = {}
    for engine in ("memory", "redis"):
        runs = [r for r in peers if r["scenario"] == sc and r.get("tag") == engine]
        us = med(r.get("server_cpu_s_schedstat", r["server_cpu_s"]) * 1e6 / max(1, r["received"]) for r in runs)
        rate = med(r["deliveries_per_s"] for r in runs)
        figures[engine] = (rate, us, [r["received"] for r in runs])
    extra = [r["redis_cpu_s"] for r in redis_cpu if r["scenario"] == sc]
    received = figures["redis"][2]
    redis_us = med(c * 1e6 / max(1, n) for c, n in zip(extra, received)) if extra else float("nan")
    print(f"| {sc} | {figures['memory'][0]:,.0f}/s, {figures['memory'][1]:.3f} µs CPU per delivery | "
          f"{figures['redis'][0]:,.0f}/s, {figures['redis'][1]:.3f} µs | {redis_us:.3f} µs per delivery |")
for name, label in (("s5-memory.jsonl", "S5 shape, 1 memory node"), ("s5-cluster.jsonl", "S5 shape, 3 redis nodes")):
    runs = rows(name)
    if not runs:
        continue
    extra = [r["redis_cpu_s"] for r in redis_cpu if r["scenario"] == "S5-cluster"] if "cluster" in name else []
    line = (f"| {label} | p50 {med(r['p50_ms'] for r in runs)} ms, p99 {med(r['p99_ms'] for r in runs)} ms, "
            f"p99.9 {med(r['p999_ms'] for r in runs)} ms, {med(r['server_us_per_delivery'] for r in runs)} µs node CPU per delivery, "
            f"lost {sum(r['lost'] for r in runs)}")
    if extra:
        line += f"; Redis {med(c * 1e6 / max(1, r['received']) for c, r in zip(extra, runs)):.3f} µs per delivery"
    print(line + f" | {len(runs)} runs |")
EOF
