#!/usr/bin/env bash
# Counts the server's calls to swift_retain, swift_release and swift_bridgeObjectRetain per
# message of one `pubsub bench` run, exactly (uprobes, not samples). Needs perf and root.
#   bash scripts/count-retains.sh [BUILD] MSGS BENCH_ARGS...
#   bash scripts/count-retains.sh .build/release/pubsub 100000 pipe --no-ack
# The counts include the run's setup (one connection or a few): with 100,000 messages that
# is in the second decimal. For the callers and the objects' types, record the same probes
# with `perf record -e 'probe_libswiftCore:*' --call-graph fp -p PID`.
set -euo pipefail
BUILD=$1; MSGS=$2; shift 2
PORT=${PORT:-18091}
RUNTIME=$(ldd "$BUILD" | awk '/libswiftCore.so/ {print $3}')
for fn in swift_retain swift_release swift_bridgeObjectRetain; do
  perf probe -q -x "$RUNTIME" --add "$fn" 2>/dev/null || true  # already there is fine
done
ulimit -n "$(ulimit -Hn)"
taskset -c 0 "$BUILD" serve --port "$PORT" --threads 1 --max-queue 20000 --max-queue-bytes 67108864 \
  --log-level warning & SRV=$!
sleep 0.8
STAT=$(mktemp)
perf stat -e probe_libswiftCore:swift_retain,probe_libswiftCore:swift_release,probe_libswiftCore:swift_bridgeObjectRetain \
  -p "$SRV" -o "$STAT" -- taskset -c 1 "$BUILD" bench "$@" --msgs "$MSGS" --url "http://127.0.0.1:$PORT" --pid "$SRV" >/dev/null
kill "$SRV"; wait "$SRV" 2>/dev/null || true
python3 - "$MSGS" "$STAT" <<'PY'
import re, sys
msgs, path = int(sys.argv[1]), sys.argv[2]
for line in open(path):
    m = re.match(r"\s*([\d,]+)\s+probe_libswiftCore:(\S+)", line)
    if m:
        print(f"{m.group(2)}: {int(m.group(1).replace(',', '')) / msgs:.2f} per message")
PY
rm -f "$STAT"
