#!/usr/bin/env bash
# Instructions per message of the publish path, counted by callgrind (exact and repeatable, where
# this machine's timings drift by 30 %): decoding a publish frame, or decode + publish to one
# subscriber + drain (Benchmarks/Benchmarks/PublishLoop). Needs valgrind (apt install valgrind).
#   bash scripts/count-instructions.sh [decode|pipe] [MESSAGES]
# Runs the loop with MESSAGES and 2 x MESSAGES and divides the difference by MESSAGES, so the
# process's start-up is left out. valgrind 3.19 cannot read the DWARF 5 that Swift 6.3 writes:
# it runs a stripped copy of the loop.
set -euo pipefail
MODE=${1:-pipe}; MESSAGES=${2:-20000}
cd "$(dirname "$0")/../Benchmarks"
STRIPPED=$(mktemp)
trap 'rm -f "$STRIPPED" "$STRIPPED".out "$STRIPPED".log' EXIT
swift build -c release --product PublishLoop >"$STRIPPED.log" 2>&1 || { cat "$STRIPPED.log"; exit 1; }
BIN=$(swift build -c release --show-bin-path 2>/dev/null)/PublishLoop
strip -o "$STRIPPED" "$BIN"
count() {
  valgrind --tool=callgrind --callgrind-out-file="$STRIPPED.out" "$STRIPPED" "$MODE" "$1" 2>&1 \
    | awk '/Collected/ {gsub(",", "", $4); print $4}'
}
ONE=$(count "$MESSAGES"); TWO=$(count $((MESSAGES * 2)))
echo "$MODE: $(( (TWO - ONE) / MESSAGES )) instructions per message"
