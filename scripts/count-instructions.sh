#!/usr/bin/env bash
# Instructions per message of the publish path, counted by callgrind (exact and repeatable, where
# this machine's timings drift by 30 %): decoding a publish frame, or decode + publish to one
# subscriber + drain (Benchmarks/Benchmarks/PublishLoop; `pipe` publishes each read's 64 frames
# as one batch, as the server does, `pipe-single` one by one). Needs valgrind (apt install valgrind).
#   bash scripts/count-instructions.sh [decode|pipe|pipe-single] [MESSAGES] [--annotate] [--topic NAME]
# Runs the loop with MESSAGES and 2 x MESSAGES and divides the difference by MESSAGES, so the
# process's start-up is left out. valgrind 3.19 cannot read the DWARF 5 that Swift 6.3 writes:
# it runs a stripped copy of the loop.
# --annotate: where they go. The loop is built again (once, in Benchmarks/.build-dwarf4) with
# DWARF 4 debug information, which valgrind reads, and run once under callgrind; prints the
# functions with the most instructions per message, inclusive and self, and keeps callgrind's
# file for `callgrind_annotate --auto=yes FILE` (per source line) or `--tree=caller`.
# --topic NAME: the frames' topic (default `bench`; names over 15 bytes are not small strings).
set -euo pipefail
MODE=pipe; MESSAGES=20000; ANNOTATE=; TOPIC=()
POSITIONAL=0
while [ $# -gt 0 ]; do
  case $1 in
    --annotate) ANNOTATE=--annotate ;;
    --topic) TOPIC=("$2"); shift ;;
    *) if [ $POSITIONAL = 0 ]; then MODE=$1; else MESSAGES=$1; fi; POSITIONAL=$((POSITIONAL + 1)) ;;
  esac
  shift
done
cd "$(dirname "$0")/../Benchmarks"
if [ "$ANNOTATE" = --annotate ]; then
  SCRATCH=.build-dwarf4
  swift build -c release --product PublishLoop --scratch-path "$SCRATCH" \
    -Xswiftc -g -Xswiftc -dwarf-version=4 -Xcc -gdwarf-4 >"/tmp/count-instructions-build.log" 2>&1 \
    || { cat /tmp/count-instructions-build.log; exit 1; }
  OUT=${CALLGRIND_OUT:-/tmp/callgrind.PublishLoop.$MODE.out}
  valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$OUT" "$SCRATCH/release/PublishLoop" "$MODE" "$MESSAGES" "${TOPIC[@]}" \
    >/dev/null 2>&1
  for kind in inclusive self; do
    echo "$MODE: instructions per message, $kind (start-up included: compare functions, not the total)"
    flag=$([ $kind = inclusive ] && echo yes || echo no)
    callgrind_annotate --inclusive=$flag --show-percs=no "$OUT" 2>/dev/null \
      | awk -v n="$MESSAGES" '/^ *[0-9,]+ +[^ ]/ && !/PROGRAM TOTALS/ {
          x = $1; gsub(",", "", x); $1 = ""; sub(/^ +/, "");
          sub(/ \[.*\]$/, ""); sub(/^.*\/Sources\//, ""); sub(/^\?\?\?:/, "");
          if (x / n >= 20 && shown < 40) { printf "%7.0f  %s\n", x / n, substr($0, 1, 150); shown++ } }'
  done
  echo "callgrind's file: $OUT"
  exit 0
fi
STRIPPED=$(mktemp)
trap 'rm -f "$STRIPPED" "$STRIPPED".out "$STRIPPED".log' EXIT
swift build -c release --product PublishLoop >"$STRIPPED.log" 2>&1 || { cat "$STRIPPED.log"; exit 1; }
BIN=$(swift build -c release --show-bin-path 2>/dev/null)/PublishLoop
strip -o "$STRIPPED" "$BIN"
count() {
  valgrind --tool=callgrind --callgrind-out-file="$STRIPPED.out" "$STRIPPED" "$MODE" "$1" "${TOPIC[@]}" 2>&1 \
    | awk '/Collected/ {gsub(",", "", $4); print $4}'
}
ONE=$(count "$MESSAGES"); TWO=$(count $((MESSAGES * 2)))
echo "$MODE: $(( (TWO - ONE) / MESSAGES )) instructions per message"
