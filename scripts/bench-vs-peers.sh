#!/usr/bin/env bash
# Side-by-side run of ../shared/bench-peers (S1 to S5) for NATS over WebSocket and pubsub, in
# one sitting, 3 repetitions each (REPEAT=N for more), taking turns, and S4 with "ack": false
# publishes (the harness's --ours-no-ack); then the Markdown summary. Server on CPU 0, harness
# on CPU 1.
#   bash scripts/bench-vs-peers.sh [OUT.jsonl] [extra run.py flags]
# pubsub runs with a 20,000-message / 64 MiB queue (NATS's default max_pending is 64 MB) so
# the harness's windows (up to 20,000 messages ahead in S4) measure throughput, not drops.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/bench-vs-peers.jsonl}
shift || true
PEERS=../shared/bench-peers
bash "$PEERS/setup.sh" >/dev/null
swift build -c release --product pubsub >/dev/null
ulimit -n "$(ulimit -Hn)"
REPEAT=${REPEAT:-3}
declare -A FLAGS=([S1]="" [S2]="--rate 200" [S3]="" [S4]="--window 10000 --e2e-window 20000" [S5]="")
# One pubsub run of scenario $1 (more run.py flags after it), on its own server.
ours() {
  local sc=$1; shift
  taskset -c 0 .build/release/pubsub serve --port 18080 --threads 1 --max-queue 20000 --max-queue-bytes 67108864 \
    --log-level warning & SRV=$!
  sleep 1
  python3 "$PEERS/run.py" --system ours --port 18080 --pid "$SRV" --scenario "$sc" ${FLAGS[$sc]} --repeat 1 --out "$OUT" "$@" \
    "${EXTRA[@]}" >/dev/null
  kill "$SRV"; wait "$SRV" 2>/dev/null || true
}
EXTRA=("$@")
# The systems take turns, repetition by repetition, so the machine's drift over the sitting
# falls on all of them alike. S4 also runs with "ack": false publishes and ping/pong barriers,
# as the harness drives NATS (--ours-no-ack; summarize-peers.py lists it as ours-noack).
for sc in S1 S2 S3 S4 S5; do
  for rep in $(seq "$REPEAT"); do
    python3 "$PEERS/run.py" --system nats-ws --scenario "$sc" ${FLAGS[$sc]} --repeat 1 --out "$OUT" "$@" >/dev/null
    ours "$sc"
    if [ "$sc" = S4 ]; then ours S4 --ours-no-ack; fi
    # S1 at 10,000 subscribers, as many deliveries as the 1,000-subscriber run: pubsub only
    # (the target compares it with pubsub's own 1,000-subscriber figure), listed as ours@10k.
    if [ "$sc" = S1 ]; then ours S1 --subs 10000 --msgs 2000 --tag 10k; fi
  done
done
# The harness's summarize.py has no S5 columns; this one covers S1 to S5 (medians).
python3 scripts/summarize-peers.py "$OUT"
