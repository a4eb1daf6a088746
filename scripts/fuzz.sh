#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/ (a package of its own, on the server's PubSubProtocol
# and PubSubCore) and runs them, each for SECONDS, one after another.
#
#   scripts/fuzz.sh [TARGET|all] [SECONDS]     # defaults: all, 60
#   scripts/fuzz.sh FuzzDeflate 600
#   scripts/fuzz.sh --list                     # the targets
#
# Targets: FuzzNativeCommand, FuzzPhoenix, FuzzWebSocketReader, FuzzDeflate, FuzzRESTBodies,
# FuzzRESP, FuzzJWT.
# Each starts from its committed seeds (Fuzz/Corpus/TARGET), copied into a working corpus
# (Fuzz/.build/corpus/TARGET, kept between runs and out of git) that libFuzzer grows, so the
# seeds stay small. Prints each target's executions and corpus size; exits non-zero when a
# target crashes or breaks an invariant, after printing the file that reproduces it (re-run
# it with `Fuzz/.build/release/TARGET FILE`; minimize with `-minimize_crash=1 -runs=100000`).
#
# Environment: FUZZ_CONFIGURATION=debug for a debug build (exclusivity checks on, slower;
# default release), FUZZ_RSS_LIMIT_MB (default 2048), FUZZ_MAX_LEN (default 16384 bytes).
# Needs nothing beyond the Swift toolchain: libFuzzer is its clang runtime's
# libclang_rt.fuzzer. Keep it out of `swift test`: CI time.
set -euo pipefail

TARGETS=(FuzzNativeCommand FuzzPhoenix FuzzWebSocketReader FuzzDeflate FuzzRESTBodies FuzzRESP FuzzJWT)
root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$root/Fuzz"
configuration="${FUZZ_CONFIGURATION:-release}"
rss_limit="${FUZZ_RSS_LIMIT_MB:-2048}"
max_len="${FUZZ_MAX_LEN:-16384}"

target="${1:-all}"
seconds="${2:-60}"
case "$target" in
  --list) printf '%s\n' "${TARGETS[@]}"; exit 0 ;;
  -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
  all) selected=("${TARGETS[@]}") ;;
  *)
    if [[ " ${TARGETS[*]} " != *" $target "* ]]; then
      echo "unknown target '$target'; one of: ${TARGETS[*]} all" >&2
      exit 2
    fi
    selected=("$target")
    ;;
esac
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "SECONDS must be a whole number, not '$seconds'" >&2; exit 2; }

dictionary() {
  case "$1" in
    FuzzNativeCommand|FuzzPhoenix) echo "$fuzz/Dictionaries/json.dict" ;;
    FuzzDeflate) echo "$fuzz/Dictionaries/extensions.dict" ;;
    FuzzRESTBodies) echo "$fuzz/Dictionaries/rest.dict" ;;
    *) echo "" ;;
  esac
}

# Swift 6.3.1 needs all of these:
# - --sanitize=fuzzer links libFuzzer's main and keeps SwiftPM's own entry point out (with
#   only `-Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library`, SwiftPM links the
#   executables against a missing TARGET_main);
# - -Xswiftc -sanitize=fuzzer,address as well: SwiftPM passes its sanitizers as separate
#   flags in no fixed order, and when `-sanitize=address` comes last swiftc drops `fuzzer`
#   from the compile: no coverage counters in the Swift code, and libFuzzer fuzzes blind;
# - -use-ld=lld: linked by gold, a binary registers one object's counters (446 of ~36,000);
# - -enable-testing: the targets reach internal entry points (the general JSON scan).
# The check after the build refuses binaries with too few counters.
build=(swift build -c "$configuration" --package-path "$fuzz" --scratch-path "$fuzz/.build"
  --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld
  -Xswiftc -enable-testing)
start=$SECONDS
# Product by product: a plain `swift build` would also build every target of the server
# package beside it (Hummingbird, TLS, the Redis engine) with the fuzzer's flags, which no
# target needs; after the first, each build reuses what the others compiled.
for name in "${selected[@]}"; do
  "${build[@]}" --product "$name"
done
echo "build: $((SECONDS - start)) s"
bin="$fuzz/.build/$configuration"
for name in "${selected[@]}"; do
  counters="$(SWIFT_BACKTRACE=enable=no "$bin/$name" -runs=0 2>&1 | grep -o 'Loaded 1 modules *([0-9]*' | grep -o '[0-9]*$' || true)"
  if [[ -z "$counters" || "$counters" -lt 5000 ]]; then
    echo "$name has ${counters:-no} coverage counters: the decoders are not instrumented; not fuzzing blind" >&2
    exit 3
  fi
done

failed=0
summary=()
for name in "${selected[@]}"; do
  corpus="$fuzz/.build/corpus/$name"
  artifacts="$fuzz/.build/artifacts/$name"
  mkdir -p "$corpus" "$artifacts"
  cp -n "$fuzz/Corpus/$name/"* "$corpus/" 2>/dev/null || true
  log="$fuzz/.build/logs/$name.log"
  mkdir -p "$(dirname "$log")"
  args=(-max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb="$rss_limit" -max_len="$max_len"
    -timeout=10 -artifact_prefix="$artifacts/")
  dict="$(dictionary "$name")"
  [[ -n "$dict" ]] && args+=(-dict="$dict")
  echo "== $name: ${seconds}s on $corpus"
  set +e
  # The Swift runtime's backtracer reads the stack in a way ASan reports: libFuzzer's own
  # handler reports the failure instead.
  SWIFT_BACKTRACE=enable=no "$bin/$name" "${args[@]}" "$corpus" >"$log" 2>&1
  status=$?
  set -e
  executions="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)"
  # libFuzzer's corpus (the units it keeps) and the files written for it (reduced ones too).
  units="$(grep -o 'corp: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)"
  size="${units:-?} units, $(find "$corpus" -type f | wc -l) files"
  if [[ $status -ne 0 ]]; then
    failed=1
    crash="$(grep -o 'Test unit written to .*' "$log" | tail -1 | sed 's/Test unit written to //')"
    grep -E 'invariant failed|Fatal error|ERROR: (libFuzzer|AddressSanitizer)' "$log" | head -5 || true
    echo "$name: FAILED (exit $status) after ${executions:-?} executions; reproducer: ${crash:-see $log}"
    summary+=("$name: FAILED, ${executions:-?} executions, corpus $size, reproducer ${crash:-?}")
  else
    echo "$name: ${executions:-?} executions, corpus $size"
    summary+=("$name: ok, ${executions:-?} executions, corpus $size")
  fi
done

echo "== summary (${seconds}s each, $((SECONDS - start)) s in all with the build; logs in $fuzz/.build/logs)"
printf '%s\n' "${summary[@]}"
exit $failed
