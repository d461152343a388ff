#!/usr/bin/env bash
# bench/api/run.sh: the API benchmark (`make bench` runs it after `make services`).
#
# Starts redis-server (appendonly yes, appendfsync always, as in production),
# dexter-scheduler and dexter-api (release build, DEXTER_LOG_LEVEL=warn) and a
# bare libmicrohttpd server (bench/api/bare.c, the HTTP ceiling), all on free
# loopback ports, then measures:
#   1. GET /api/v1.0/clusters/bench1 end to end vs the same GET on the bare server
#      (wrk, 64 connections, 2 threads, --latency): req/s, p50, p99, ratio;
#   2. a create/delete cycle (bench/api/create_delete.lua): POST then DELETE;
#   3. with 10,000 clusters: VmRSS/VmHWM of the api and the scheduler, and the
#      time of GET /api/v1.0/clusters (median of 5, count checked).
# and writes the table into docs/BENCHMARKS.md (between the bench:api markers)
# and to stdout. A missed target is printed as MISSED but the exit status is 0:
# this is a measurement. Non-2xx answers during the GET run, a service dying or
# a step timing out are failures (exit 1) and leave the logs in the work dir.
#
# Environment:
#   DEXTER_BIN_DIR  binaries (default build/bin, the release build)
#   BENCH_SECONDS   seconds per wrk run (default 15)
#   BENCH_ROUNDS    rounds of (end-to-end GET, ceiling GET), alternating (default 3);
#                   the report takes the median round of each
#   BENCH_DOC       the file to write (default docs/BENCHMARKS.md)
#   BENCH_KEEP=1    keep the work dir (logs, wrk outputs, results.json)
#   DEXTER_API_THREADS  passed on to dexter-api (its event loops; unset: its default)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
PY=/usr/bin/python3
BIN_DIR=${DEXTER_BIN_DIR:-$ROOT/build/bin}
SECS=${BENCH_SECONDS:-15}
ROUNDS=${BENCH_ROUNDS:-3}
DOC=${BENCH_DOC:-$ROOT/docs/BENCHMARKS.md}
CONNS=64
THREADS=2
CLUSTERS=10000
POPULATE_CLIENTS=32
LIST_RUNS=5

say() { printf 'bench: %s\n' "$*"; }
fail() { printf '\nbench: FAILED: %s\n' "$*" >&2; exit 1; }
helper() { "$PY" "$ROOT/bench/api/bench.py" "$@"; }

# -- preflight ----------------------------------------------------------------------
for tool in wrk redis-server redis-cli curl gcc pkg-config; do
    command -v "$tool" >/dev/null || fail "$tool is not installed"
done
for exe in dexter-scheduler dexter-api; do
    [ -x "$BIN_DIR/$exe" ] || fail "$BIN_DIR/$exe is missing: run 'make services' (or set DEXTER_BIN_DIR)"
done
[[ "$SECS" =~ ^[1-9][0-9]*$ ]] || fail "BENCH_SECONDS must be a whole number of seconds, not '$SECS'"
[[ "$ROUNDS" =~ ^[1-9]$ ]] || fail "BENCH_ROUNDS must be 1 to 9, not '$ROUNDS'"
# Only what this script sets reaches the services (and DEXTER_API_THREADS, to
# compare event loop counts).
API_THREADS=${DEXTER_API_THREADS:-}
for v in $(compgen -e | grep '^DEXTER_' || true); do unset "$v"; done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dexter-bench.XXXXXX")
RESULTS=$WORK/results.json

# -- process bookkeeping: everything started here is stopped on exit -----------------
PIDS=()    # in start order; stopped in reverse
NAMES=()
start() {  # start NAME CMD...: runs CMD in the background, output in $WORK/NAME.log
    local name=$1; shift
    "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=("$!")
    NAMES+=("$name")
}
pid_of() {
    local i
    for i in "${!NAMES[@]}"; do [ "${NAMES[$i]}" = "$1" ] && { echo "${PIDS[$i]}"; return; }; done
    return 1
}
alive() { kill -0 "$(pid_of "$1")" 2>/dev/null; }
check_alive() {  # every service still running, else fail with its log
    local name
    for name in "$@"; do
        alive "$name" || { tail -n 40 "$WORK/$name.log" >&2; fail "$name died (log above, in $WORK/$name.log)"; }
    done
}
CHILD=""  # the long step in progress (wrk, populate), run so that a signal stops it at once
in_step() {  # in_step OUT CMD...: runs CMD (output to file OUT, or - for ours) in the
             # background and waits for it: a signal's trap interrupts wait, not a child
    local out=$1; shift
    if [ "$out" = - ]; then "$@" & else "$@" >"$out" 2>&1 & fi
    CHILD=$!
    local rc=0
    wait "$CHILD" || rc=$?
    CHILD=""
    return "$rc"
}
cleanup() {
    local rc=$? i pid _
    trap - EXIT INT TERM
    if [ -n "$CHILD" ]; then
        kill -TERM "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid=${PIDS[$i]}
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            say "${NAMES[$i]} (pid $pid) ignored SIGTERM for 5 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    if [ "$rc" -ne 0 ] || [ "${BENCH_KEEP:-0}" = 1 ]; then
        say "logs and raw outputs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_redis() {  # bounded: 10 s
    local _
    for _ in $(seq 100); do
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0
        check_alive redis
        sleep 0.1
    done
    fail "redis-server did not answer PING within 10 s ($WORK/redis.log)"
}

CMDS=""
record() { CMDS+="$*"$'\n'; }     # a line for the report's list of commands
record_cmd() {                     # record_cmd CMD...: the command, quoted as typed
    local q
    q=$(printf '%q ' "$@")
    record "${q% }"
}

# -- build the ceiling server ---------------------------------------------------------
say "building bench/api/bare.c"
pkg-config --exists libmicrohttpd || fail "pkg-config knows no libmicrohttpd (apt-get install libmicrohttpd-dev)"
read -r -a mhd <<<"$(pkg-config --cflags --libs libmicrohttpd)"
build=(gcc -std=c11 -O2 -Wall -Wextra -o "$WORK/bare" bench/api/bare.c "${mhd[@]}" -lpthread)
"${build[@]}" || fail "cannot build bench/api/bare.c"

# -- start everything -------------------------------------------------------------------
ports=$(helper free-port 4) || fail "no free ports"
read -r REDIS_PORT SCHED_PORT API_PORT BARE_PORT <<<"$ports"
mkdir -p "$WORK/redis" "$WORK/data"

redis=(redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$WORK/redis"
       --appendonly yes --appendfsync always --save '' --protected-mode yes)
start redis "${redis[@]}"
wait_redis

export DEXTER_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export DEXTER_SCHEDULER_ENDPOINT="tcp://127.0.0.1:$SCHED_PORT"
export DEXTER_API_ADDR="127.0.0.1:$API_PORT"
export DEXTER_DATA_DIR="$WORK/data"
DEXTER_MASTER_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export DEXTER_MASTER_KEY
export DEXTER_API_TIMEOUT_MS=5000
export DEXTER_LOG_LEVEL=warn
[ -z "$API_THREADS" ] || export DEXTER_API_THREADS=$API_THREADS

start scheduler "$BIN_DIR/dexter-scheduler"
start api "$BIN_DIR/dexter-api"
start bare "$WORK/bare" "$BARE_PORT"

record_cmd "${build[@]}"
record_cmd "${redis[@]}"
record "export DEXTER_REDIS_URL=$DEXTER_REDIS_URL DEXTER_SCHEDULER_ENDPOINT=$DEXTER_SCHEDULER_ENDPOINT \\"
record "       DEXTER_API_ADDR=$DEXTER_API_ADDR DEXTER_API_TIMEOUT_MS=$DEXTER_API_TIMEOUT_MS \\"
record "       DEXTER_LOG_LEVEL=$DEXTER_LOG_LEVEL DEXTER_DATA_DIR=$DEXTER_DATA_DIR DEXTER_MASTER_KEY=<random 32 bytes, hex>"
record "$(printf '%q' "$BIN_DIR/dexter-scheduler") &  $(printf '%q' "$BIN_DIR/dexter-api") &  $WORK/bare $BARE_PORT &"

API=http://127.0.0.1:$API_PORT/api/v1.0
BARE=http://127.0.0.1:$BARE_PORT/api/v1.0/clusters/bench1
helper wait-http "$API/clusters" 20 || { check_alive scheduler api; fail "the api did not answer"; }
helper wait-http "$BARE" 10 || { check_alive bare; fail "the bare server did not answer"; }
check_alive redis scheduler api bare
say "redis :$REDIS_PORT  scheduler :$SCHED_PORT  api :$API_PORT  bare :$BARE_PORT  (work dir $WORK)"

# -- what the report says about this run -----------------------------------------------
cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/^MemTotal/ {printf "%.0f GB RAM", $2 / 1048576}' /proc/meminfo)
helper set "$RESULTS" date "$(date -u '+%Y-%m-%d %H:%M UTC')"
helper set "$RESULTS" machine "$(nproc) cores, ${cpu:-unknown CPU}, $mem, Linux $(uname -r)"
helper set "$RESULTS" nproc "$(nproc)"
helper set "$RESULTS" clk_tck "$(getconf CLK_TCK)"
helper set "$RESULTS" loadavg "$(cut -d' ' -f1-3 /proc/loadavg)"
helper set "$RESULTS" commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
# uncommitted or untracked changes in what is measured (read-only: no index refresh)
if [ -n "$(GIT_OPTIONAL_LOCKS=0 git status --porcelain -- Makefile common services proto bench 2>/dev/null)" ]; then
    helper set "$RESULTS" dirty yes
fi
helper set "$RESULTS" software "$(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2), \
$(redis-server --version | cut -d' ' -f1-3), libmicrohttpd $(pkg-config --modversion libmicrohttpd), gcc $(gcc -dumpversion)"
helper set "$RESULTS" redis_fs "$(df -T "$WORK/redis" | awk 'NR == 2 {print $2 " (" $1 ")"}')"
helper set "$RESULTS" bin_dir "${BIN_DIR#"$ROOT"/}"
helper set "$RESULTS" seconds "$SECS"
helper set "$RESULTS" rounds "$ROUNDS"
helper set "$RESULTS" connections "$CONNS"
helper set "$RESULTS" wrk_threads "$THREADS"

# -- 1. GET: end to end vs the ceiling ---------------------------------------------------
cmd=(curl -sS -o "$WORK/create.json" -w '%{http_code}' --max-time 10
     -d name=bench1 -d provider=aws -d type=mesos "$API/clusters")
record "curl -d name=bench1 -d provider=aws -d type=mesos $API/clusters   # 201 expected"
code=$("${cmd[@]}") || fail "POST /clusters failed"
[ "$code" = 201 ] || fail "POST /clusters name=bench1 answered $code: $(cat "$WORK/create.json")"
code=$(curl -sS -o "$WORK/get.json" -w '%{http_code}' --max-time 10 "$API/clusters/bench1") || fail "GET failed"
if [ "$code" != 200 ] || ! grep -q '"bench1"' "$WORK/get.json"; then
    fail "GET /clusters/bench1 answered $code: $(cat "$WORK/get.json")"
fi

wrk_run() {  # wrk_run KEY [strict] -- WRK-ARGS... [-- SCRIPT-ARGS]: a 1 s warm-up, then the measured run
    local key=$1 mode=""; shift
    [ "$1" = strict ] && { mode=strict; shift; }
    [ "$1" = -- ] && shift
    local args=("$@")
    [ -n "${WARMUP_ARGS:-}" ] && args+=(-- "$WARMUP_ARGS")
    in_step /dev/null wrk -t"$THREADS" -c"$CONNS" -d1s "${args[@]}" || true
    args=("$@")
    [ -n "${RUN_ARGS:-}" ] && args+=(-- "$RUN_ARGS")
    local cmd=(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency "${args[@]}")
    record_cmd "${cmd[@]}"
    say "${cmd[*]}"
    local before after wrk_before wrk_spent
    before=$(cpu_ticks)
    children_ticks; wrk_before=$CHILD_TICKS
    in_step "$WORK/wrk-$key.txt" "${cmd[@]}" || { cat "$WORK/wrk-$key.txt" >&2; fail "wrk failed ($key)"; }
    children_ticks; wrk_spent=$((CHILD_TICKS - wrk_before))
    after=$(cpu_ticks)
    helper set "$RESULTS" "${key}_cpu" "$(cpu_spent "$before" "$after") wrk=$wrk_spent"
    helper wrk "$RESULTS" "$key" "$WORK/wrk-$key.txt" $mode
}

# CPU time (user + system, clock ticks) of each process over a measured run,
# so the report can say where a request's time goes; wrk's from this shell's
# children (it is the only child that ends during a measured run).
CPU_OF="api scheduler redis bare"
cpu_ticks() {  # NAME=TICKS for each of CPU_OF
    local name
    for name in $CPU_OF; do
        printf '%s=%s ' "$name" "$(awk '{print $14 + $15}' "/proc/$(pid_of "$name")/stat")"
    done
}
cpu_spent() {  # cpu_spent BEFORE AFTER: NAME=TICKS spent in between
    local b a out="" name
    declare -A start
    for b in $1; do start[${b%%=*}]=${b#*=}; done
    for a in $2; do name=${a%%=*}; out+="$name=$(( ${a#*=} - ${start[$name]} )) "; done
    printf '%s' "${out% }"
}
children_ticks() {  # CHILD_TICKS: user + system ticks of every child this shell
                   # has waited for (times runs here: in a subshell it would see
                   # only the subshell's children)
    times >"$WORK/times.txt"
    CHILD_TICKS=$(awk -v hz="$(getconf CLK_TCK)" 'NR == 2 {
        split($1, u, /[ms]/); split($2, s, /[ms]/)
        printf "%d", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * hz }' "$WORK/times.txt")
}

# Rounds of (end to end, ceiling), alternating, so that a slow spell of the
# machine weighs on both; the report takes the median round of each.
for round in $(seq "$ROUNDS"); do
    wrk_run "get_api_$round" strict -- "$API/clusters/bench1"
    check_alive scheduler api
    wrk_run "get_bare_$round" strict -- "$BARE"
    check_alive bare
done

# -- 2. create/delete cycle ---------------------------------------------------------------
# names w<thread>x<n> in the warm-up, c<thread>x<n> in the measured run
WARMUP_ARGS=w RUN_ARGS=c wrk_run cycle -- -s bench/api/create_delete.lua "http://127.0.0.1:$API_PORT"
check_alive scheduler api
grep '^CYCLE' "$WORK/wrk-cycle.txt" | sed 's/^/bench: /' || true

# -- 3. 10,000 clusters: memory and the list ----------------------------------------------
helper delete-all "$API"  # what the cycle left (at most one per connection) and bench1
in_step - helper populate "$RESULTS" "$API" "$CLUSTERS" "$POPULATE_CLIENTS" r
record "bench/api/bench.py delete-all $API   # every cluster left, DELETE ?force=true"
record "bench/api/bench.py populate results.json $API $CLUSTERS $POPULATE_CLIENTS r   # POST name=r0..r$((CLUSTERS - 1)) provider=aws type=mesos, $POPULATE_CLIENTS keep-alive clients"
sleep 1  # let both settle after the last answer
record "grep -E 'VmRSS|VmHWM' /proc/<pid of dexter-api and dexter-scheduler>/status   # once created, again after the lists"
helper proc "$RESULTS" rss_api_created "$(pid_of api)"
helper proc "$RESULTS" rss_scheduler_created "$(pid_of scheduler)"
record "curl -s -o list.json -w '%{http_code} %{time_total}' $API/clusters   # $LIST_RUNS times, median; count checked"
helper list-time "$RESULTS" "$API" "$LIST_RUNS" "$CLUSTERS"
check_alive scheduler api
sleep 1
helper proc "$RESULTS" rss_api "$(pid_of api)"
helper proc "$RESULTS" rss_scheduler "$(pid_of scheduler)"
used=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info memory | tr -d '\r' | awk -F: '$1 == "used_memory" {print $2}')
[ -n "$used" ] && helper set "$RESULTS" redis_used_memory "$used"

# -- report -----------------------------------------------------------------------------
for name in api scheduler; do
    if [ -s "$WORK/$name.log" ]; then
        say "$name logged $(wc -l <"$WORK/$name.log") line(s) at warn or above; the last ones:"
        tail -n 5 "$WORK/$name.log" | sed 's/^/    /'
    fi
done
helper set "$RESULTS" log_lines "$(wc -l <"$WORK/api.log") / $(wc -l <"$WORK/scheduler.log")"
CMDS=${CMDS//$WORK/\$WORK}
record "# \$WORK: the run's temporary directory (redis data, logs, wrk outputs)"
helper set "$RESULTS" commands "$CMDS"
helper report "$RESULTS" "$DOC"
