#!/usr/bin/env bash
# Authentication's cost (docs/performance.md): `pubsub bench fanout` and `pipe` against a
# server with --auth none and with --auth token (clients holding a JWT), taking turns, REPEAT
# times each (default 3). Server on CPU 0, bench on CPU 1. Prints one JSON line per run.
#   bash scripts/bench-auth.sh [OUT.jsonl]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/bench-auth.jsonl}
: > "$OUT"
swift build -c release --product pubsub >/dev/null
BIN=.build/release/pubsub
SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
TOKEN=$($BIN token --secret "$SECRET" --sub bench --subscribe bench --publish bench --admin --ttl 3600)
REPEAT=${REPEAT:-3}
run() {  # $1: none|token, then the bench arguments
  local mode=$1; shift
  local auth=() client=()
  if [ "$mode" = token ]; then auth=(--auth token --jwt-secret "$SECRET"); client=(--token "$TOKEN"); fi
  taskset -c 0 $BIN serve --port 18095 --threads 1 --max-queue 20000 --max-queue-bytes 67108864 --log-level warning "${auth[@]}" & SRV=$!
  sleep 1
  taskset -c 1 $BIN bench "$@" --url http://127.0.0.1:18095 --pid "$SRV" "${client[@]}" 2>/dev/null | tail -1 \
    | python3 -c "import json,sys; r=json.loads(sys.stdin.read()); r['auth']='$mode'; print(json.dumps(r))" >> "$OUT"
  kill "$SRV"; wait "$SRV" 2>/dev/null || true
}
for rep in $(seq "$REPEAT"); do
  for mode in none token; do
    run "$mode" fanout --subs 1000 --msgs 20000
    run "$mode" pipe --msgs 200000
  done
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for mode in ("fanout", "pipe"):
    for auth in ("none", "token"):
        runs = [r for r in rows if r["mode"] == mode and r["auth"] == auth]
        keys = [k for k in runs[0] if "per_s" in k or "us_per" in k]
        print(mode, auth, {k: statistics.median(r[k] for r in runs) for k in keys}, "lost", sum(r.get("lost", 0) for r in runs))
PY
