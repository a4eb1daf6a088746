# Shell functions the benchmark scripts share; `source "$(dirname "$0")/bench-helpers.sh"`.

# utime + stime of PID, in seconds.
cpu_seconds() {
  python3 -c "import os,sys; f=open('/proc/%s/stat'%sys.argv[1]).read().rsplit(')',1)[1].split(); print((int(f[11])+int(f[12]))/os.sysconf('SC_CLK_TCK'))" "$1"
}

# Ends each PID (this script's own children) and waits for it.
stop() { for pid in "$@"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; }

# Waits (10 s at most) until the server on 127.0.0.1:PORT answers /api/ready with 200; exits
# the script if it never does.
wait_ready() {
  local port=$1
  for _ in $(seq 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/ready")" = 200 ] && return
    sleep 0.05
  done
  echo "the server on port $port is not ready" >&2
  exit 1
}

# Starts a redis-server without persistence on 127.0.0.1:$REDIS_PORT, pinned to CPU 0 (beside the
# server), its pid in REDIS; waits until it answers, or exits the script.
start_redis() {
  taskset -c 0 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --protected-mode no \
    --loglevel warning >/dev/null &
  REDIS=$!
  for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return; sleep 0.05; done
  echo "redis-server did not start" >&2
  exit 1
}

# BINS: the builds given as arguments, or a release build of this tree when none is.
builds_or_release() {
  BINS=("$@")
  if [ "${#BINS[@]}" -eq 0 ]; then
    swift build -c release --product pubsub >/dev/null
    BINS=(.build/release/pubsub)
  fi
}

# Waits (120 s at most) until the topic at URL (…/api/topics/NAME) counts at least MIN
# subscribers; prints the last count it read.
wait_subscribers() {
  local url=$1 min=$2 count=0
  for _ in $(seq 1200); do
    count=$(curl -sf "$url" | python3 -c "import json,sys; print(json.load(sys.stdin).get('subscriber_count',0))" 2>/dev/null || echo 0)
    [ "$count" -ge "$min" ] && break
    sleep 0.1
  done
  echo "$count"
}
