#!/usr/bin/env bash
# Starts the whole Dexter system in the foreground (what `make run` does after
# installing and building): a local Redis with its data and AOF under
# $DEXTER_DATA_DIR/redis (unless DEXTER_REDIS_URL points elsewhere), the
# scheduler, the api and every other built service. Ctrl-C or SIGTERM stops
# everything it started; so does any of them dying. The services make their
# CurveZMQ key pairs in $DEXTER_DATA_DIR on first start and share their
# public certificates in $DEXTER_DATA_DIR/curve (proto/PROTOCOL.md, "Security").
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
bin=${DEXTER_BIN_DIR:-build/bin}
export DEXTER_DATA_DIR=${DEXTER_DATA_DIR:-$PWD/var}
mkdir -p "$DEXTER_DATA_DIR"

pids=()
stopping=0
stop_all() {
    stopping=1
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
}
trap 'echo "dexter: stopping" >&2; stop_all; exit 0' INT TERM

if [ -z "${DEXTER_REDIS_URL:-}" ]; then
    port=${DEXTER_REDIS_PORT:-6379}
    mkdir -p "$DEXTER_DATA_DIR/redis"
    redis-server --bind 127.0.0.1 --port "$port" --dir "$DEXTER_DATA_DIR/redis" \
        --appendonly yes --appendfsync always --save '' --daemonize no \
        --logfile "$DEXTER_DATA_DIR/redis/redis.log" &
    pids+=($!)
    export DEXTER_REDIS_URL="redis://127.0.0.1:$port/0"
    for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        kill -0 "${pids[0]}" 2>/dev/null || { echo "dexter: redis-server failed to start, see $DEXTER_DATA_DIR/redis/redis.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "dexter: redis on 127.0.0.1:$port, data in $DEXTER_DATA_DIR/redis" >&2
fi

start() {
    [ -x "$bin/$1" ] || return 0
    "$bin/$1" &
    pids+=($!)
}
start dexter-scheduler
# The others read the scheduler's public certificate when they connect: with
# it there first, they connect at once instead of at their next try.
cert=${DEXTER_CURVE_DIR:-$DEXTER_DATA_DIR/curve}/scheduler.cert
if [ -x "$bin/dexter-scheduler" ]; then
    for _ in $(seq 100); do
        [ -s "$cert" ] || ! kill -0 "${pids[-1]}" 2>/dev/null && break
        sleep 0.1
    done
fi
for exe in "$bin"/dexter-*; do
    name=$(basename "$exe")
    case "$name" in dexter-scheduler|dexter-api) ;; *) start "$name" ;; esac
done
start dexter-api
echo "dexter: API on http://${DEXTER_API_ADDR:-127.0.0.1:5555}/api/v1.0/clusters (Ctrl-C stops)" >&2

# Any service dying stops the rest: a half-running system hides failures.
# A short wait on a sleep, not `wait -n` on the services: bash runs the
# INT/TERM trap at the latest when the sleep ends, even where a signal
# fails to interrupt the wait builtin.
rc=0
while :; do
    for pid in "${pids[@]}"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid"
            rc=$?
            break 2
        fi
    done
    sleep 0.5 &
    wait $!
done
[ "$stopping" -eq 1 ] || echo "dexter: a service exited (status $rc); stopping the others" >&2
stop_all
exit "$rc"
