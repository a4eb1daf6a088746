#!/usr/bin/env bash
# What an idle cluster's presence lists cost Redis (docs/design.md, "Figures behind the choices"):
# one redis-engine node holds SUBS subscribers of one topic (each an entry of the topic's
# presence list) while `pubsub bench latency` publishes once a second; over a 10 s window, Redis's
# CPU and the commands and bytes it took in, per second. The node and Redis on CPU 0, the
# subscribers on CPU 1.
#
#   bash scripts/bench-presence.sh [SUBS] [BIN ...]
#
# SUBS defaults to 10000; each BIN (default: a release build of this tree) is measured in turn,
# REPEAT times (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-helpers.sh
SUBS=${1:-10000}
shift || true
builds_or_release "$@"
REPEAT=${REPEAT:-3}
REDIS_PORT=16392
PORT=18092
ulimit -n "$(ulimit -Hn)"

# total_commands_processed total_net_input_bytes
redis_counts() {
  redis-cli -p $REDIS_PORT info stats | tr -d '\r' | awk -F: '/^total_commands_processed:/{c=$2} /^total_net_input_bytes:/{b=$2} END{print c, b}'
}

for rep in $(seq "$REPEAT"); do
  for bin in "${BINS[@]}"; do
    start_redis
    taskset -c 0 "$bin" serve --port $PORT --threads 1 --log-level warning --engine redis \
      --redis-url "redis://127.0.0.1:$REDIS_PORT/0" >/dev/null 2>&1 &
    NODE=$!
    wait_ready $PORT
    taskset -c 1 "$bin" bench latency --url "http://127.0.0.1:$PORT" --subs "$SUBS" --rate 1 --duration 60 --probes 10 \
      >/dev/null 2>&1 &
    BENCH=$!
    subscribed=$(wait_subscribers "http://127.0.0.1:$PORT/api/topics/bench" "$SUBS")
    sleep 3
    cpu0=$(cpu_seconds $REDIS)
    read -r commands0 bytes0 < <(redis_counts)
    sleep 10
    cpu1=$(cpu_seconds $REDIS)
    read -r commands1 bytes1 < <(redis_counts)
    stop $BENCH $NODE $REDIS
    python3 -c "
import sys
cpu0, cpu1, c0, c1, b0, b1 = map(float, sys.argv[4:10])
print(f'{sys.argv[1]} subs={sys.argv[2]} subscribed={sys.argv[3]} redis_cpu_ms_per_s={(cpu1-cpu0)*100:.1f} '
      f'commands_per_s={(c1-c0)/10:.0f} input_kb_per_s={(b1-b0)/10/1000:.0f}')
" "$bin" "$SUBS" "$subscribed" "$cpu0" "$cpu1" "$commands0" "$commands1" "$bytes0" "$bytes1"
  done
done
