#!/usr/bin/env bash
# Everything CI checks, from a fresh clone (the README's test command; .ci/run runs it):
#   1. what the suite needs beyond Swift (scripts/install-test-deps.sh);
#   2. the test suite (`swift test`: unit, end-to-end against the real server, a minute of
#      each abuse path against a server process), the suites that drive headless Chromium and
#      schemathesis apart, after the rest: they take both cores while they run, and beside them
#      timing-bound tests ran past their limits;
#   3. the suite again under AddressSanitizer and ThreadSanitizer (scripts/sanitizers.sh);
#   4. a short run of every libFuzzer target, FUZZ_SECONDS each (default 30; scripts/fuzz.sh).
# About 30 minutes on 2 cores from a fresh clone; `swift test` alone is step 2.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
heavy="DashboardTests|SSEBrowserTests|OpenAPITests"
swift test --skip "$heavy"
swift test --skip-build --filter "$heavy"
bash scripts/sanitizers.sh all
bash scripts/fuzz.sh all "${FUZZ_SECONDS:-30}"
