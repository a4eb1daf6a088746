#!/usr/bin/env bash
# What an idle cluster's subscriber counts cost Redis (docs/design.md, "Figures behind the
# choices"): NODES redis-engine nodes (default 3) each hold one `pubsub sub` subscribed to the
# same TOPICS topics, and nothing is published; over a 10 s window, Redis's CPU and the
# commands and bytes it took in and sent, per second. The nodes and Redis on CPU 0, the
# subscribers on CPU 1.
#
#   bash scripts/bench-cluster-counts.sh [TOPICS] [BIN ...]
#
# TOPICS defaults to 10000; each BIN (default: a release build of this tree) is measured in
# turn, REPEAT times (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-helpers.sh
TOPICS=${1:-10000}
shift || true
builds_or_release "$@"
REPEAT=${REPEAT:-3}
NODES=${NODES:-3}
REDIS_PORT=16393
FIRST_PORT=18093
ulimit -n "$(ulimit -Hn)"
mapfile -t NAMES < <(seq -f "t%g" 0 $((TOPICS - 1)))

# total_commands_processed total_net_input_bytes total_net_output_bytes
redis_counts() {
  redis-cli -p $REDIS_PORT info stats | tr -d '\r' |
    awk -F: '/^total_commands_processed:/{c=$2} /^total_net_input_bytes:/{i=$2} /^total_net_output_bytes:/{o=$2} END{print c, i, o}'
}

for rep in $(seq "$REPEAT"); do
  for bin in "${BINS[@]}"; do
    start_redis
    PIDS=()
    for n in $(seq 0 $((NODES - 1))); do
      port=$((FIRST_PORT + n))
      taskset -c 0 "$bin" serve --port $port --threads 1 --log-level warning --engine redis \
        --redis-url "redis://127.0.0.1:$REDIS_PORT/0" --auto-create-topics true \
        --max-subscriptions-per-connection 0 >/dev/null 2>&1 &
      PIDS+=($!)
      wait_ready $port
      taskset -c 1 "$bin" sub "${NAMES[@]}" --url "http://127.0.0.1:$port" >/dev/null 2>&1 &
      PIDS+=($!)
    done
    # Subscribed everywhere, and every node's counts seen by the others.
    counted=$(wait_subscribers "http://127.0.0.1:$FIRST_PORT/api/topics/t$((TOPICS - 1))" "$NODES")
    sleep 3
    cpu0=$(cpu_seconds $REDIS)
    read -r commands0 in0 out0 < <(redis_counts)
    sleep 10
    cpu1=$(cpu_seconds $REDIS)
    read -r commands1 in1 out1 < <(redis_counts)
    stop "${PIDS[@]}" $REDIS
    python3 -c "
import sys
cpu0, cpu1, c0, c1, i0, i1, o0, o1 = map(float, sys.argv[5:13])
print(f'{sys.argv[1]} nodes={sys.argv[2]} topics={sys.argv[3]} counted={sys.argv[4]} redis_cpu_ms_per_s={(cpu1-cpu0)*100:.1f} '
      f'commands_per_s={(c1-c0)/10:.0f} input_kb_per_s={(i1-i0)/10/1000:.0f} output_kb_per_s={(o1-o0)/10/1000:.0f}')
" "$bin" "$NODES" "$TOPICS" "$counted" "$cpu0" "$cpu1" "$commands0" "$commands1" "$in0" "$in1" "$out0" "$out1"
  done
done
