#!/usr/bin/env bash
# Installs what the test suite needs beyond Swift: the third-party Phoenix Channels client
# used by the interoperability test, the Prometheus client library (its text parser),
# schemathesis and openapi-spec-validator for the OpenAPI document's tests, a Redis server
# (Debian's redis-server) that the Redis client's and engine's tests start on free ports, and
# headless Chromium with its driver and selenium for the dashboard's browser test.
# Idempotent; run as a user that may pip install and (for what is missing of Redis and
# Chromium) use apt-get.
set -euo pipefail
PY=${PYTHON:-python3}
if ! "$PY" -c 'import phoenix_channels_python_client' 2>/dev/null; then
  "$PY" -m pip install --quiet 'phoenix-channels-python-client==0.4.1' \
    || "$PY" -m pip install --quiet --break-system-packages 'phoenix-channels-python-client==0.4.1'
fi
# The Prometheus client library's text parser reads /metrics in ObservabilityTests.
if ! "$PY" -c 'import prometheus_client' 2>/dev/null; then
  "$PY" -m pip install --quiet 'prometheus-client==0.21.1' \
    || "$PY" -m pip install --quiet --break-system-packages 'prometheus-client==0.21.1'
fi
# The OpenAPI document's checkers (Tests/OpenAPI): pinned, as a new release may judge the same
# document differently.
if ! "$PY" -c 'import schemathesis, openapi_spec_validator' 2>/dev/null \
  || [ "$("$PY" -c 'import importlib.metadata as m; print(m.version("schemathesis"), m.version("openapi-spec-validator"))')" != "4.32.5 0.9.0" ]; then
  "$PY" -m pip install --quiet 'schemathesis==4.32.5' 'openapi-spec-validator==0.9.0' \
    || "$PY" -m pip install --quiet --break-system-packages 'schemathesis==4.32.5' 'openapi-spec-validator==0.9.0'
fi
SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
if ! "$PY" -c 'import selenium' 2>/dev/null; then
  "$PY" -m pip install --quiet 'selenium==4.38.0' \
    || "$PY" -m pip install --quiet --break-system-packages 'selenium==4.38.0'
fi
if ! command -v redis-server >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
  # The tests start their own servers; the package's service is not needed.
  $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
