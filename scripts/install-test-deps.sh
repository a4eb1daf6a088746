#!/usr/bin/env bash
# Installs what the test suite needs beyond Swift: the third-party Phoenix Channels client
# used by the interoperability test. Idempotent; run as a user that may pip install.
set -euo pipefail
PY=${PYTHON:-python3}
if ! "$PY" -c 'import phoenix_channels_python_client' 2>/dev/null; then
  "$PY" -m pip install --quiet 'phoenix-channels-python-client==0.4.1' \
    || "$PY" -m pip install --quiet --break-system-packages 'phoenix-channels-python-client==0.4.1'
fi
