#!/usr/bin/env bash
# bench/getpid/run.sh: what common/dx_util.c's getpid() from memory saves.
#
# Builds the services twice (as they are, and with -DDX_GETPID_UNCACHED,
# which leaves glibc's getpid in place), and for each build starts
# redis-server, dexter-scheduler and dexter-api on free loopback ports,
# creates one cluster, and counts with strace the getpid system calls the
# api and the scheduler make while wrk GETs that cluster for BENCH_SECONDS.
# It also times one getpid system call on this machine (a loop of 2,000,000)
# and writes the figures into docs/BENCHMARKS.md (section getpid).
#
# Environment: BENCH_SECONDS (default 5), BENCH_DOC (default docs/BENCHMARKS.md).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
PY=/usr/bin/python3
SECS=${BENCH_SECONDS:-5}
DOC=${BENCH_DOC:-$ROOT/docs/BENCHMARKS.md}
for tool in wrk strace redis-server curl gcc; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is not installed" >&2; exit 1; }
done
for v in $(compgen -e | grep '^DEXTER_' || true); do unset "$v"; done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dexter-getpid.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

make -s BUILDROOT="$WORK/cached" services >/dev/null
make -s BUILDROOT="$WORK/uncached" CFLAGS_EXTRA=-DDX_GETPID_UNCACHED services >/dev/null

# One build: prints "requests api_getpid scheduler_getpid".
measure() {
    local bin=$1 dir=$WORK/run-$2
    mkdir -p "$dir"
    local rp ap sp wp
    rp=$(free_port); ap=$(free_port); sp=$(free_port); wp=$(free_port)
    redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
        --daemonize no >"$dir/redis.log" 2>&1 & pids+=($!)
    for _ in $(seq 100); do redis-cli -p "$rp" ping >/dev/null 2>&1 && break; sleep 0.05; done
    local env=(DEXTER_REDIS_URL=redis://127.0.0.1:$rp/0 DEXTER_DATA_DIR=$dir DEXTER_LOG_LEVEL=warn
               DEXTER_SCHEDULER_ENDPOINT=tcp://127.0.0.1:$sp DEXTER_WORKER_ENDPOINT=tcp://127.0.0.1:$wp
               DEXTER_API_ADDR=127.0.0.1:$ap)
    env "${env[@]}" "$bin/dexter-scheduler" 2>"$dir/scheduler.log" & local s=$!; pids+=($s)
    env "${env[@]}" "$bin/dexter-api" 2>"$dir/api.log" & local a=$!; pids+=($a)
    local url=http://127.0.0.1:$ap/api/v1.0/clusters
    for _ in $(seq 100); do curl -sf "$url" >/dev/null && break; sleep 0.05; done
    curl -sf -X POST -d name=bench1 -d provider=aws -d type=mesos "$url" >/dev/null
    curl -sf "$url/bench1" >/dev/null
    strace -f -c -e trace=getpid -o "$dir/api.strace" -p "$a" 2>/dev/null & local t1=$!
    strace -f -c -e trace=getpid -o "$dir/scheduler.strace" -p "$s" 2>/dev/null & local t2=$!
    sleep 1
    wrk -t1 -c16 -d"${SECS}s" "$url/bench1" >"$dir/wrk.txt"
    kill -INT "$t1" "$t2"; wait "$t1" "$t2" 2>/dev/null || true
    kill "$a" "$s"; wait "$a" "$s" 2>/dev/null || true
    local calls
    calls() { awk '$NF == "getpid" { print $4 }' "$1"; }
    echo "$(awk '/requests in/ { print $1 }' "$dir/wrk.txt") $(calls "$dir/api.strace") $(calls "$dir/scheduler.strace")"
}

read -r c_req c_api c_sch < <(measure "$WORK/cached/bin" cached)
read -r u_req u_api u_sch < <(measure "$WORK/uncached/bin" uncached)

cat >"$WORK/cost.c" <<'C'
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
int main (void) {
    struct timespec a, b; const int n = 2000000;
    clock_gettime (CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++) syscall (SYS_getpid);
    clock_gettime (CLOCK_MONOTONIC, &b);
    printf ("%.3f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n / 1000.0);
    return 0;
}
C
gcc -O2 -o "$WORK/cost" "$WORK/cost.c"
cost=$("$WORK/cost")

"$PY" - "$DOC" "$c_req" "${c_api:-0}" "${c_sch:-0}" "$u_req" "${u_api:-0}" "${u_sch:-0}" "$cost" "$SECS" <<'PY'
import datetime, os, platform, subprocess, sys
sys.path.insert(0, os.path.join(os.getcwd(), "bench"))
import benchdoc
doc, c_req, c_api, c_sch, u_req, u_api, u_sch, cost, secs = sys.argv[1:]
c_req, c_api, c_sch, u_req, u_api, u_sch = map(int, (c_req, c_api, c_sch, u_req, u_api, u_sch))
cost = float(cost)
per_get_c = (c_api + c_sch) / max(c_req, 1)
per_get_u = (u_api + u_sch) / max(u_req, 1)
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
start, end = benchdoc.markers("getpid")
section = f"""{start}
## getpid from memory

`bench/getpid/run.sh`, {datetime.date.today()}, commit {commit}, {platform.node()},
{os.cpu_count()} cores. wrk GETs one cluster for {secs} s over 16 connections while
strace counts the getpid system calls of the api and the scheduler (strace
slows both, so the request counts are not throughput figures).

| build | GETs | getpid calls (api + scheduler) | per GET |
|---|---|---|---|
| as shipped (getpid from memory) | {c_req} | {c_api} + {c_sch} | {per_get_c:.2f} |
| `-DDX_GETPID_UNCACHED` (glibc's) | {u_req} | {u_api} + {u_sch} | {per_get_u:.2f} |

One getpid system call costs {cost:.2f} µs on this machine, so answering it
from memory saves about {per_get_u * cost:.1f} µs of CPU per GET; the API
section gives the CPU a GET costs in all.
{end}"""
benchdoc.write_section(doc, "getpid", section)
print(section)
PY
