#!/usr/bin/env bash
# The scaling pair of the performance issue: fan-out to 1,000 and to 10,000 subscribers, with
# each BUILD taking turns, ROUNDS times, a fresh server per run (so the machine's drift falls on
# all alike). Prints each build's median server CPU per delivery at both sizes and the median
# of the rounds' 10,000 / 1,000 ratios.
#   bash scripts/bench-scale-pair.sh ROUNDS BUILD [BUILD...]
#   bash scripts/bench-scale-pair.sh 5 /tmp/pubsub-old .build/release/pubsub
# Server pinned to CPU 0 with one event-loop thread and the queue at 20,000 messages / 64 MiB,
# as in scripts/ab-bench.sh; the bench (the last build's) on CPU 1.
set -euo pipefail
ROUNDS=$1; shift
BENCH=${!#}
PORT=${PORT:-18090}
ulimit -n "$(ulimit -Hn)"
for round in $(seq "$ROUNDS"); do
  for size in "1000 20000" "10000 2000"; do
    read -r subs msgs <<<"$size"
    for build in "$@"; do
      taskset -c 0 "$build" serve --port "$PORT" --threads 1 --max-queue 20000 --max-queue-bytes 67108864 \
        --log-level warning & SRV=$!
      sleep 0.7
      result=$(taskset -c 1 "$BENCH" bench fanout --subs "$subs" --msgs "$msgs" --url "http://127.0.0.1:$PORT" --pid "$SRV" 2>&1 | tail -1)
      kill "$SRV"; wait "$SRV" 2>/dev/null || true
      echo "$round $build $subs $result"
    done
  done
done | python3 -c '
import json, statistics, sys
runs = {}
for line in sys.stdin:
    round, build, subs, result = line.split(" ", 3)
    r = json.loads(result)
    runs.setdefault(build, {}).setdefault(int(subs), {})[round] = (r["server_us_per_delivery"], r["lost"])
for build, sizes in runs.items():
    small, large = sizes[1000], sizes[10000]
    ratios = [large[k][0] / small[k][0] for k in small if k in large]
    lost = sum(v[1] for size in sizes.values() for v in size.values())
    print(f"{build}: 1,000 median {statistics.median(v[0] for v in small.values())} us, "
          f"10,000 median {statistics.median(v[0] for v in large.values())} us, "
          f"ratio {statistics.median(ratios):.2f}x (rounds {min(ratios):.2f}-{max(ratios):.2f}), lost {lost}")
'
