#!/usr/bin/env bash
# A/B of two pubsub builds: ROUNDS rounds, each starting a server of A, running one
# `pubsub bench` against it, stopping it, then the same for B (so the machine's drift falls on
# both alike). Prints each build's median and best server CPU per delivery, and the runs.
#   bash scripts/ab-bench.sh BUILD_A BUILD_B ROUNDS BENCH_ARGS...
#   bash scripts/ab-bench.sh /tmp/pubsub-old .build/release/pubsub 7 pipe --no-ack --msgs 1000000
# A_EXTRA / B_EXTRA: more bench arguments for one side only (A and B may then be one build):
#   B_EXTRA="--patterns 1000" bash scripts/ab-bench.sh .build/release/pubsub .build/release/pubsub 7 fanout --subs 100
# Server pinned to CPU 0 with one event-loop thread, the bench (B's binary) to CPU 1, the
# queue at 20,000 messages / 64 MiB as in scripts/bench-vs-peers.sh.
set -euo pipefail
A=$1; B=$2; ROUNDS=$3; shift 3
PORT=${PORT:-18090}
ulimit -n "$(ulimit -Hn)"
for _ in $(seq "$ROUNDS"); do
  for side in A B; do
    build=${!side}; extra_name=${side}_EXTRA
    # shellcheck disable=SC2206  # split on purpose: several arguments
    extra=(${!extra_name:-})
    taskset -c 0 "$build" serve --port "$PORT" --threads 1 --max-queue 20000 --max-queue-bytes 67108864 \
      --log-level warning & SRV=$!
    sleep 0.7
    result=$(taskset -c 1 "$B" bench "$@" ${extra[@]+"${extra[@]}"} --url "http://127.0.0.1:$PORT" --pid "$SRV" 2>&1 | tail -1)
    kill "$SRV"; wait "$SRV" 2>/dev/null || true
    label="$side:$build"; joined=$(IFS=,; echo "${extra[*]:-}")
    [ -n "$joined" ] && label="$label($joined)"
    echo "$label $result"
  done
done | python3 -c '
import json, statistics, sys
runs = {}
for line in sys.stdin:
    build, result = line.split(" ", 1)
    r = json.loads(result)
    runs.setdefault(build, []).append((r["server_us_per_delivery"], r["lost"]))
for build, values in runs.items():
    us = [v[0] for v in values]
    print(f"{build}: median {statistics.median(us)} us/delivery, best {min(us)}, runs {us}, lost {sum(v[1] for v in values)}")
'
