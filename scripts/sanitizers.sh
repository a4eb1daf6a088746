#!/usr/bin/env bash
# The test suite under AddressSanitizer (with LeakSanitizer) and/or ThreadSanitizer.
#
# Usage: bash scripts/sanitizers.sh [address|thread|all]      (default: all)
#
# Each sanitizer builds in a scratch path of its own, .build-asan and .build-tsan (never the
# default .build), then runs `swift test` there; from a fresh clone the first run resolves and
# builds everything. Exits non-zero on a build failure, a test failure or
# any sanitizer report, and prints how long each build and each test run took.
#
# Reports from every process: the tests start the `pubsub` executable built beside them (a
# sanitized server too) and read its standard error themselves, so a report there would go
# unseen. Every process therefore writes its reports to files (log_path=) in
# <scratch path>/sanitizer-logs/, which this script scans and prints after the tests.
#
# What each run sets, and why:
#   both     --disable-xctest: the suite is Swift Testing only; the empty XCTest pass only adds
#            a process whose own leaks LeakSanitizer reports (swift-corelibs-xctest#521).
#            The browser and schemathesis suites (DashboardTests, SSEBrowserTests, OpenAPITests) run apart,
#            after the rest: Chromium and schemathesis take both cores, and beside them the
#            sanitized suite's timing-bound tests ran past their limits.
#   address  ASAN_OPTIONS=log_path=...:detect_leaks=1; LSAN_OPTIONS=suppressions=
#            scripts/lsan-suppressions.txt (Foundation.Process's own leaks; see the file).
#            Skips "Abuse keeps memory bounded" (AbuseMemoryTests): it asserts on the resident
#            memory of a server process, and an instrumented server's RSS (redzones, ASan's
#            quarantine of freed memory, shadow pages) says nothing about the server's bound.
#   thread   -Xswiftc -DPUBSUB_TSAN: shows Synchronization.Mutex's contended hand-overs to
#            TSan (Sources/PubSubCore/MutexTSan.swift says why it cannot see them).
#            TSAN_OPTIONS=log_path=...:suppressions=scripts/tsan-suppressions.txt (false
#            positives only, each explained there):halt_on_error=0:print_suppressions=1.
#            Runs "Abuse keeps memory bounded" apart, shortened (PUBSUB_ABUSE_SECONDS, default
#            10 here) and with its memory bound off (PUBSUB_ABUSE_MEMORY_CHECK=off), for the
#            abuse paths' concurrency: TSan's shadow memory and per-thread histories make the
#            server's RSS incomparable too.
#
# Environment: PUBSUB_ABUSE_SECONDS (thread run's abuse suite, default 10);
# SANITIZER_TEST_ARGS (more arguments for `swift test`, e.g. --filter; the runs apart are then
# left out).
#
# Times: printed at the end of each run (build, then tests, per sanitizer).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

which=${1:-all}
case "$which" in
address | thread | all) ;;
*)
  echo "usage: bash scripts/sanitizers.sh [address|thread|all]" >&2
  exit 64
  ;;
esac

bash scripts/install-test-deps.sh || echo "warning: scripts/install-test-deps.sh failed: the Phoenix and browser tests will fail" >&2

failed=0
summary=()
read -r -a extra_test_args <<<"${SANITIZER_TEST_ARGS:-}"

seconds() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# Prints each sanitizer report in DIR; returns 1 if there is any. A crash is a report too: a
# sanitized process that takes a deadly signal writes only "ThreadSanitizer:DEADLYSIGNAL" to its
# standard error, and the report with its stack ("ERROR: ThreadSanitizer: SEGV ...") to the file.
scan_logs() {
  local dir=$1 found=0 file
  shopt -s nullglob
  for file in "$dir"/*; do
    if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer)|WARNING: ThreadSanitizer|runtime error:' "$file"; then
      found=1
      echo "---- sanitizer report: $file ($(grep -cE '^(==[0-9]+==ERROR|WARNING: ThreadSanitizer)' "$file") report(s))"
      head -n 400 "$file"
      [ "$(wc -l <"$file")" -gt 400 ] && echo "... ($(wc -l <"$file") lines in all; the file is kept)"
      grep -E '^SUMMARY:' "$file" | sort | uniq -c | sort -rn | head -n 50
    fi
  done
  # Suppressions that matched (false positives, each explained in its file), for the record.
  for file in "$dir"/*; do
    if grep -qE 'Suppressions used:|ThreadSanitizer: Matched' "$file"; then
      echo "---- suppressed in $(basename "$file"):"
      grep -A 4 -E 'Suppressions used:|ThreadSanitizer: Matched' "$file" | grep -vE '^-+$|^--$'
    fi
  done
  shopt -u nullglob
  return $found
}

# Waits (at most 60 s) until no server process started from SCRATCH's binaries is left: the
# tests end them with SIGTERM, and one still shutting down has not yet written what its
# sanitizer finds at exit (leaks, for one).
wait_for_children() {
  local scratch=$1 deadline=$((SECONDS + 60)) pid exe left
  while :; do
    left=0
    for pid in /proc/[0-9]*; do
      exe=$(readlink "$pid/exe" 2>/dev/null) || continue
      case "$exe" in "$root/$scratch"/*) left=1 ;; esac
    done
    [ "$left" = 0 ] && return 0
    [ "$SECONDS" -ge "$deadline" ] && { echo "warning: processes from $scratch still running after 60 s" >&2; return 0; }
    sleep 0.5
  done
}

# run NAME SANITIZER SCRATCH "BUILD FLAGS" "SKIP REGEX" ENV...
run() {
  local name=$1 sanitizer=$2 scratch=$3 flags=$4 skip=$5
  shift 5
  local logs="$root/$scratch/sanitizer-logs"
  local -a build_flags=()
  [ -n "$flags" ] && read -r -a build_flags <<<"$flags"
  echo "==== $name: building (swift build --build-tests --sanitize=$sanitizer --scratch-path $scratch ${build_flags[*]})"
  local start=$SECONDS
  if ! swift build --build-tests --sanitize="$sanitizer" --scratch-path "$scratch" "${build_flags[@]}"; then
    summary+=("$name: BUILD FAILED after $(seconds $((SECONDS - start)))")
    failed=1
    return
  fi
  local built=$((SECONDS - start))

  rm -rf "$logs" && mkdir -p "$logs"
  local -a skip_args=()
  [ -n "$skip" ] && skip_args=(--skip "$skip")
  echo "==== $name: testing ($* swift test --skip-build --disable-xctest ${skip_args[*]})"
  start=$SECONDS
  local output="$root/$scratch/sanitizer-test-output.txt"
  env "$@" swift test --skip-build --disable-xctest --sanitize="$sanitizer" --scratch-path "$scratch" \
    "${build_flags[@]}" "${skip_args[@]}" "${extra_test_args[@]}" 2>&1 | tee "$output"
  local status=${PIPESTATUS[0]}
  wait_for_children "$scratch"
  local tested=$((SECONDS - start))
  local count
  count=$(grep -oE 'Test run with [0-9]+ tests?' "$output" | tail -n 1 | grep -oE '[0-9]+' || echo "?")

  local reports=ok
  if ! scan_logs "$logs"; then reports="REPORTS (see above; files in $scratch/sanitizer-logs)"; fi
  local verdict=passed
  [ "$status" -ne 0 ] && verdict="FAILED (swift test exit $status)"
  [ "$status" -ne 0 ] || [ "$reports" != ok ] && failed=1
  summary+=("$name: build $(seconds "$built"), tests $(seconds "$tested") ($count tests, $verdict), sanitizer reports: $reports")
}

# apart LABEL SANITIZER SCRATCH "BUILD FLAGS" FILTER LOGS ENV...: the suites FILTER names, run on
# their own after the main run (its build reused), their logs scanned like the main run's.
apart() {
  local label=$1 sanitizer=$2 scratch=$3 flags=$4 filter=$5 logs=$6
  shift 6
  local -a build_flags=()
  [ -n "$flags" ] && read -r -a build_flags <<<"$flags"
  rm -rf "$logs" && mkdir -p "$logs"
  echo "==== $label ($filter)"
  local start=$SECONDS
  env "$@" swift test --skip-build --disable-xctest --sanitize="$sanitizer" --scratch-path "$scratch" "${build_flags[@]}" \
    --filter "$filter" 2>&1 | tee "$logs.txt"
  local status=${PIPESTATUS[0]}
  wait_for_children "$scratch"
  local reports=ok
  if ! scan_logs "$logs"; then reports="REPORTS (see above; files in $logs)"; fi
  local verdict=passed
  [ "$status" -ne 0 ] && verdict="FAILED (swift test exit $status)"
  { [ "$status" -ne 0 ] || [ "$reports" != ok ]; } && failed=1
  summary+=("$label: tests $(seconds $((SECONDS - start))) ($verdict), sanitizer reports: $reports")
}

# The suites that drive headless Chromium and schemathesis run apart too: beside the rest of
# a sanitized suite, the two cores they take slowed timing-bound tests past their limits (Redis
# engines not ready within 10 s, a close handshake past its 10 s wait).
heavy="DashboardTests|SSEBrowserTests|OpenAPITests"

if [ "$which" = address ] || [ "$which" = all ]; then
  asan_logs="$root/.build-asan/sanitizer-logs"
  run address address .build-asan "" "AbuseMemoryTests|$heavy" \
    ASAN_OPTIONS="log_path=$asan_logs/asan:detect_leaks=1" \
    LSAN_OPTIONS="suppressions=$root/scripts/lsan-suppressions.txt"
  if [ "${#extra_test_args[@]}" -eq 0 ]; then
    apart "address, browser and schemathesis" address .build-asan "" "$heavy" "$asan_logs-heavy" \
      ASAN_OPTIONS="log_path=$asan_logs-heavy/asan:detect_leaks=1" LSAN_OPTIONS="suppressions=$root/scripts/lsan-suppressions.txt"
  fi
fi

if [ "$which" = thread ] || [ "$which" = all ]; then
  tsan_logs="$root/.build-tsan/sanitizer-logs"
  tsan_options="suppressions=$root/scripts/tsan-suppressions.txt:halt_on_error=0:print_suppressions=1"
  run thread thread .build-tsan "-Xswiftc -DPUBSUB_TSAN" "AbuseMemoryTests|$heavy" TSAN_OPTIONS="log_path=$tsan_logs/tsan:$tsan_options"
  if [ "${#extra_test_args[@]}" -eq 0 ]; then
    # The abuse suite apart, shortened, memory bound off.
    apart "thread, abuse suite" thread .build-tsan "-Xswiftc -DPUBSUB_TSAN" AbuseMemoryTests "$tsan_logs-abuse" \
      TSAN_OPTIONS="log_path=$tsan_logs-abuse/tsan:$tsan_options" PUBSUB_ABUSE_SECONDS="${PUBSUB_ABUSE_SECONDS:-10}" \
      PUBSUB_ABUSE_MEMORY_CHECK=off
    apart "thread, browser and schemathesis" thread .build-tsan "-Xswiftc -DPUBSUB_TSAN" "$heavy" "$tsan_logs-heavy" \
      TSAN_OPTIONS="log_path=$tsan_logs-heavy/tsan:$tsan_options"
  fi
fi

echo
echo "==== sanitizers: summary"
for line in "${summary[@]}"; do echo "$line"; done
exit $failed
