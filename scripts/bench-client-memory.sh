#!/usr/bin/env bash
# What a Swift client holds for a consumer that does not read (docs/clients.md): `pubsub sub`
# with its stdout a fifo nobody reads, against a memory node, while `pubsub bench fanout --subs 1
# --payload 100` publishes MSGS events; prints the sub's resident memory once it stops growing.
#
#   bash scripts/bench-client-memory.sh [MSGS] [SUB_BIN]
#
# MSGS defaults to 300000; SUB_BIN (the `pubsub` whose `sub` is measured) to a release build of
# this tree, which also runs the server and the publisher.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-helpers.sh
MSGS=${1:-300000}
swift build -c release --product pubsub >/dev/null
BIN=.build/release/pubsub
SUB_BIN=${2:-$BIN}
PORT=18093
FIFO=$(mktemp -u /tmp/pubsub-sub-XXXXXX)

"$BIN" serve --port $PORT --threads 1 --log-level warning --max-queue 1000000 --max-queue-bytes 1073741824 \
  >/dev/null 2>&1 &
SERVER=$!
SUB=""
cleanup() {
  stop $SUB $SERVER
  rm -f "$FIFO"
}
trap cleanup EXIT
wait_ready $PORT
curl -sf -X POST -H 'content-type: application/json' -d '{"name":"bench"}' "http://127.0.0.1:$PORT/api/topics" >/dev/null

# The fifo is held open for reading and never read: the sub's writes block once it is full.
mkfifo "$FIFO"
exec 7<>"$FIFO"
"$SUB_BIN" sub bench --url "http://127.0.0.1:$PORT" >"$FIFO" 2>/dev/null &
SUB=$!
sleep 2
"$BIN" bench fanout --url "http://127.0.0.1:$PORT" --subs 1 --msgs "$MSGS" --payload 100 >/dev/null 2>&1
previous=0
rss=0
for _ in $(seq 120); do
  sleep 1
  rss=$(awk '/VmRSS/{print $2}' "/proc/$SUB/status")
  [ "$rss" = "$previous" ] && break
  previous=$rss
done
echo "events=$MSGS sub_rss_mib=$(python3 -c "print(round($rss / 1024, 1))")"
