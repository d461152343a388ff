#!/usr/bin/python3
"""Helpers for bench/api/run.sh: everything that is easier in Python than in
shell. Each subcommand reads or adds to a results file (JSON) so that run.sh
stays a readable sequence of steps, and `report` turns the results into the
table printed to stdout and written to docs/BENCHMARKS.md.

Subcommands (all waits are bounded):
  free-port [COUNT]                       COUNT distinct free TCP ports on 127.0.0.1
  wait-http URL SECONDS [STATUS]          until GET URL answers STATUS (200)
  wrk RESULTS KEY FILE [strict]           parse wrk output into RESULTS[KEY];
                                          strict: fail on any non-2xx answer
  populate RESULTS BASE N THREADS PREFIX  create N clusters concurrently
  delete-all BASE                         DELETE every cluster (force=true)
  list-time RESULTS BASE RUNS EXPECTED    time GET /clusters with curl
  proc RESULTS KEY PID                    VmRSS/VmHWM of PID into RESULTS[KEY]
  set RESULTS KEY VALUE                   RESULTS[KEY] = VALUE (string)
  report RESULTS DOC                      table to stdout and into DOC
"""
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchdoc  # noqa: E402  (bench/benchdoc.py)


def die(msg):
    sys.stderr.write("bench: " + msg + "\n")
    sys.exit(1)


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def save(path, results):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def update(path, key, value):
    results = load(path)
    results[key] = value
    save(path, results)


# -- small HTTP client (keep-alive, no dependencies) ---------------------------

class Client:
    def __init__(self, base, timeout=10):
        u = urllib.parse.urlsplit(base)
        self.host, self.port, self.prefix = u.hostname, u.port, u.path.rstrip("/")
        self.timeout = timeout
        self.conn = None

    def call(self, method, path, body=None, headers=None):
        for attempt in (1, 2):  # one retry on a connection the server closed
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, self.prefix + path, body=body, headers=headers or {})
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp.status, data
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


# -- subcommands ------------------------------------------------------------------

def cmd_free_port(count="1"):
    """COUNT distinct free ports (all held open until printed)."""
    socks = []
    try:
        for _ in range(int(count)):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        print(" ".join(str(s.getsockname()[1]) for s in socks))
    finally:
        for s in socks:
            s.close()


def cmd_wait_http(url, seconds, status="200"):
    u = urllib.parse.urlsplit(url)
    deadline = time.monotonic() + float(seconds)
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
            c.request("GET", u.path or "/")
            r = c.getresponse()
            r.read()
            c.close()
            if r.status == int(status):
                return
            last = "status %d" % r.status
        except (http.client.HTTPException, OSError) as e:
            last = str(e)
        time.sleep(0.1)
    die("timed out after %ss waiting for GET %s to answer %s (last: %s)" % (seconds, url, status, last))


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def to_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        die("cannot read wrk latency %r" % text)
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(text):
    """The figures of one wrk --latency run."""
    out = {"non2xx": 0, "socket_errors": {}}
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if not m:
        die("no Requests/sec in wrk output:\n" + text)
    out["rps"] = float(m.group(1))
    for pct in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % pct, text, re.M)
        if not m:
            die("no %s%% latency in wrk output (was --latency given?):\n%s" % (pct, text))
        out["p" + pct] = to_ms(m.group(1))
    m = re.search(r"^\s+(\d+) requests in ([\d.]+\w+)", text, re.M)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        out["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    m = re.search(r"^CYCLE posts=(\d+) deletes=(\d+) created=(\d+) deleted=(\d+) bad=(\d+)", text, re.M)
    if m:
        out["cycle"] = dict(zip(("posts", "deletes", "created", "deleted", "bad"), map(int, m.groups())))
    m = re.search(r"^CYCLE first unexpected answer: (.*)$", text, re.M)
    if m:
        out["cycle_first_bad"] = m.group(1)
    return out


def cmd_wrk(results, key, path, mode=""):
    with open(path) as f:
        figures = parse_wrk(f.read())
    update(results, key, figures)
    errs = sum(figures["socket_errors"].values())
    print("bench: %-8s %10.0f req/s  p50 %.2f ms  p99 %.2f ms  non-2xx %d  socket errors %d"
          % (key, figures["rps"], figures["p50"], figures["p99"], figures["non2xx"], errs))
    if errs:
        print("bench: WARNING: %s: wrk socket errors %s" % (key, figures["socket_errors"]))
    if mode == "strict" and figures["non2xx"]:
        die("\n\n*** FAILED: %s: %d of %d answers were not 2xx: the figures measure errors, not the "
            "service. wrk output in %s ***\n" % (key, figures["non2xx"], figures.get("requests", 0), path))


def cmd_populate(results, base, n, threads, prefix):
    n, threads = int(n), int(threads)
    names = ["%s%d" % (prefix, i) for i in range(n)]
    lock = threading.Lock()
    state = {"next": 0, "created": 0, "bad": 0, "first_bad": ""}

    def work():
        c = Client(base)
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= n:
                return
            body = "name=%s&provider=aws&type=mesos" % names[i]
            try:
                status, data = c.call("POST", "/clusters", body,
                                      {"Content-Type": "application/x-www-form-urlencoded"})
            except (http.client.HTTPException, OSError) as e:
                status, data = 0, str(e).encode()
            with lock:
                if status == 201:
                    state["created"] += 1
                else:
                    state["bad"] += 1
                    if not state["first_bad"]:
                        state["first_bad"] = "%s %s" % (status, data[:200].decode("utf-8", "replace"))

    t0 = time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    secs = time.perf_counter() - t0
    update(results, "populate", {"n": n, "threads": threads, "seconds": secs,
                                 "created": state["created"], "bad": state["bad"],
                                 "first_bad": state["first_bad"]})
    print("bench: created %d/%d clusters in %.1f s (%.0f/s, %d threads)"
          % (state["created"], n, secs, state["created"] / secs, threads))
    if state["bad"]:
        die("%d creates failed; first: %s" % (state["bad"], state["first_bad"]))


def cmd_delete_all(base):
    """Deletes every cluster, until the list stays empty: requests that wrk had
    in flight when it stopped may still land after the first listing."""
    c = Client(base)
    total, empty_since = 0, None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, data = c.call("GET", "/clusters")
        if status != 200:
            die("GET /clusters answered %d: %s" % (status, data[:300]))
        names = [x["name"] for x in json.loads(data)["clusters"]]
        for name in names:
            status, data = c.call("DELETE", "/clusters/%s?force=true" % name)
            if status not in (200, 404):
                die("DELETE /clusters/%s answered %d: %s" % (name, status, data[:300]))
        total += len(names)
        if names:
            empty_since = None
        elif empty_since is None:
            empty_since = time.monotonic()
        elif time.monotonic() - empty_since >= 1.0:
            print("bench: deleted %d clusters" % total)
            return
        time.sleep(0.2)
    die("clusters kept appearing for 60 s after the load stopped")


def cmd_list_time(results, base, runs, expected):
    runs, expected = int(runs), int(expected)
    url = base + "/clusters"
    body = os.path.join(os.path.dirname(os.path.abspath(results)), "list.json")
    times = []
    for _ in range(runs):
        out = subprocess.run(["curl", "-s", "-o", body, "-w", "%{http_code} %{time_total}",
                              "--max-time", "30", url],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            die("curl %s failed (%d): %s" % (url, out.returncode, out.stderr))
        code, secs = out.stdout.split()
        if code != "200":
            die("GET %s answered %s" % (url, code))
        times.append(float(secs) * 1e3)
        with open(body, "rb") as f:
            doc = json.load(f)
        if doc.get("count") != expected or len(doc.get("clusters", [])) != expected:
            die("GET /clusters: count %s, %d clusters listed, expected %d"
                % (doc.get("count"), len(doc.get("clusters", [])), expected))
    size = os.path.getsize(body)
    update(results, "list", {"runs_ms": times, "median_ms": statistics.median(times),
                             "count": expected, "bytes": size})
    print("bench: GET /clusters (%d clusters, %d bytes): median %.1f ms of %s"
          % (expected, size, statistics.median(times), ", ".join("%.1f" % t for t in times)))


def read_status(pid):
    fields = {}
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                fields[k] = int(v.split()[0])
    return fields


def cmd_proc(results, key, pid):
    try:
        fields = read_status(pid)
    except FileNotFoundError:
        die("process %s (%s) is gone" % (pid, key))
    update(results, key, fields)
    print("bench: %-9s VmRSS %6d kB  VmHWM %6d kB  threads %d"
          % (key, fields["VmRSS"], fields["VmHWM"], fields.get("Threads", 0)))


def cmd_set(results, key, value):
    update(results, key, value)


# -- report -----------------------------------------------------------------------

START, END = benchdoc.markers("api")


def mb(kb):
    return kb * 1024 / 1e6


def cpu_per_request(text, requests, hz):
    """{process: µs of CPU per request} from 'name=ticks ...' over a run."""
    if not text or not requests:
        return {}
    spent = {}
    for item in text.split():
        name, _, ticks = item.partition("=")
        spent[name] = int(ticks) * 1e6 / hz / requests
    return spent


def median_round(r, key):
    """(key of the median run by req/s, its figures, every run's req/s) among
    key_1, key_2, ... (or key alone, as older results have it)."""
    keys = sorted((k for k in r if re.fullmatch(re.escape(key) + r"_\d", k)), key=lambda k: int(k[-1]))
    if not keys:
        keys = [key]
    ranked = sorted(keys, key=lambda k: r[k]["rps"])
    mid = ranked[(len(ranked) - 1) // 2]
    return mid, r[mid], [r[k]["rps"] for k in keys]


def build_table(r):
    """Rows: measure, figure, target, verdict ('' for figures without a target)."""
    rows = []
    api_key, api, api_all = median_round(r, "get_api")
    bare_key, bare, bare_all = median_round(r, "get_bare")
    cyc = r["cycle"]
    ratio = api["rps"] / bare["rps"] if bare["rps"] else 0.0

    def verdict(ok):
        return "pass" if ok else "**MISSED**"

    rows.append(("GET /clusters/bench1, end to end (api → scheduler), median round",
                 "%.0f req/s" % api["rps"], "", ""))
    rows.append(("GET, bare libmicrohttpd ceiling (bare.c), median round",
                 "%.0f req/s" % bare["rps"], "", ""))
    if len(api_all) > 1:
        rows.append(("GET req/s of each round, end to end / ceiling",
                     "%s / %s" % (", ".join("%.0f" % x for x in api_all),
                                  ", ".join("%.0f" % x for x in bare_all)), "", ""))
    rows.append(("end-to-end GET / ceiling", "%.1f %%" % (100 * ratio), "≥ 40 %", verdict(ratio >= 0.40)))
    rows.append(("GET end to end, p50", "%.2f ms" % api["p50"], "", ""))
    rows.append(("GET end to end, p99", "%.2f ms" % api["p99"], "< 5 ms", verdict(api["p99"] < 5.0)))
    rows.append(("GET ceiling, p50 / p99", "%.2f / %.2f ms" % (bare["p50"], bare["p99"]), "", ""))
    hz = int(r.get("clk_tck", "100"))
    for key, label, names in ((api_key, "CPU per GET end to end", ("api", "scheduler", "redis", "wrk")),
                              (bare_key, "CPU per GET on the ceiling", ("bare", "wrk"))):
        spent = cpu_per_request(r.get(key + "_cpu", ""), r[key].get("requests", 0), hz)
        if spent:
            rows.append((label + ": " + " / ".join(names) + " (total)",
                         " / ".join("%.0f" % spent.get(n, 0) for n in names)
                         + " µs (%.0f µs)" % sum(spent.get(n, 0) for n in names), "", ""))
    c = cyc.get("cycle", {})
    rows.append(("create/delete cycle (appendfsync always)",
                 "%.0f req/s (%d created, %d deleted)" % (cyc["rps"], c.get("created", 0), c.get("deleted", 0)),
                 "", ""))
    rows.append(("create/delete cycle, p50 / p99",
                 "%.2f / %.2f ms" % (cyc["p50"], cyc["p99"]), "", ""))
    rows.append(("create/delete cycle, non-2xx answers", "%d" % cyc["non2xx"], "", ""))
    p = r.get("populate")
    if p:
        rows.append(("create 10,000 clusters (%d clients)" % p["threads"],
                     "%.1f s (%.0f creates/s)" % (p["seconds"], p["created"] / p["seconds"]), "", ""))
    for key, name in (("rss_api", "dexter-api"), ("rss_scheduler", "dexter-scheduler")):
        created, listed = r[key + "_created"], r[key]
        worst = max(mb(created["VmRSS"]), mb(listed["VmRSS"]))
        rows.append(("%s VmRSS, 10,000 clusters: created / listed (peak)" % name,
                     "%.1f / %.1f MB (peak %.1f MB)"
                     % (mb(created["VmRSS"]), mb(listed["VmRSS"]), mb(listed["VmHWM"])),
                     "< 20 MB", verdict(worst < 20.0)))
    if "redis_used_memory" in r:
        rows.append(("redis used_memory, 10,000 clusters",
                     "%.1f MB" % (int(r["redis_used_memory"]) / 1e6), "", ""))
    li = r["list"]
    rows.append(("GET /clusters, 10,000 listed (median of %d, %.0f kB)" % (len(li["runs_ms"]), li["bytes"] / 1e3),
                 "%.1f ms" % li["median_ms"], "< 100 ms", verdict(li["median_ms"] < 100.0)))
    if "log_lines" in r:
        rows.append(("log lines at warn+, api / scheduler", r["log_lines"], "", ""))
    return rows


def markdown_table(rows):
    lines = ["| measure | figure | target | result |", "|---|---|---|---|"]
    for m, fig, target, v in rows:
        lines.append("| %s | %s | %s | %s |" % (m, fig, target or "—", v or "—"))
    return "\n".join(lines)


def text_table(rows):
    w = [max(len(x[i]) for x in rows) for i in range(3)]
    out = []
    for m, fig, target, v in rows:
        out.append("  %-*s  %-*s  %-*s  %s" % (w[0], m, w[1], fig, w[2], target or "", v.replace("*", "")))
    return "\n".join(out)


def cmd_report(results, doc):
    r = load(results)
    rows = build_table(r)
    missed = [row[0] for row in rows if "MISSED" in row[3]]

    print()
    print("Dexter API benchmark — %s, %s, commit %s" % (r["date"], r["machine"], r["commit"]))
    print(text_table(rows))
    if missed:
        print("\nMISSED %d target(s): %s" % (len(missed), "; ".join(missed)))
    else:
        print("\nAll targets met.")

    cmds = r.get("commands", "").strip("\n")
    section = """{start}
## API

Measured by `bench/api/run.sh` (`make bench`) on {date}.{short}

- Machine: {machine}; load average {loadavg} when the run began
- Commit: `{commit}`{dirty}
- Software: {software}
- Setup: redis-server with `appendonly yes`, `appendfsync always` (as in
  production: every write is fsynced before it is acknowledged), its data on
  {fs}; dexter-scheduler and dexter-api release builds (`{bindir}`) with
  `DEXTER_LOG_LEVEL=warn` (no per-request log line); the bare ceiling server
  `bench/api/bare.c` (libmicrohttpd's fastest setup here: a 4-thread pool with
  epoll; dexter-api runs libmicrohttpd in select mode, in one event loop of
  its own). Everything on
  loopback, wrk on the same {nproc} cores as the servers, so each figure
  includes the load generator's share of the CPU.
- Load: wrk, {conns} connections, {threads} threads, {secs} s per run; the GETs
  in {rounds} alternating rounds (end to end, then ceiling), each figure from
  the median round.

{table}

{verdict}

Notes: MB are 10^6 bytes. "CPU per GET" is the user and system time each
process spent during the measured run (from /proc, in clock ticks), divided by
the requests wrk counted; on {nproc} cores the throughput can be no more than
{nproc} s of CPU over the total. VmRSS is read once the 10,000 clusters are created
("created") and again after the five lists ("listed"); the target is judged on
the larger; "peak" is VmHWM over the whole run, the wrk runs included. wrk
keeps every connection busy (a closed loop), so the mean latency is about
connections / throughput: a p99 under 5 ms at 64 connections needs well over
13,000 req/s. The GETs ask for one cluster over and over, so all but the
first few are answered from the scheduler's read cache (`docs/redis.md`),
which keeps the answer's JSON text beside the read, and Redis does no work
for them; the api sends that text as it comes (`text` in
`proto/PROTOCOL.md`). A GET that misses the cache (the first after a change
of the cluster, or a second after the cached read) also costs the scheduler
four HGETALLs in one Redis round trip and the making of its text. Figures
from a machine that was doing other work are noise; compare runs from the
same quiet machine only.

Commands (ports as in this run):

```
{cmds}
```
{end}""".format(start=START, end=END, date=r["date"], machine=r["machine"], commit=r["commit"],
                dirty=" plus uncommitted changes in the measured code" if r.get("dirty") == "yes" else "",
                loadavg=r.get("loadavg", "?"),
                software=r.get("software", ""), fs=r.get("redis_fs", "local disk"),
                bindir=r.get("bin_dir", "build/bin"), nproc=r.get("nproc", "?"),
                conns=r.get("connections", "64"), threads=r.get("wrk_threads", "2"),
                secs=r.get("seconds", "15"), rounds=r.get("rounds", "1"), table=markdown_table(rows),
                verdict=("**MISSED:** " + "; ".join(missed)) if missed else "All targets met.",
                cmds=cmds,
                short=("\n**A %s s trial run (BENCH_SECONDS): not a figure to compare.**" % r.get("seconds")
                       if int(r.get("seconds", "15")) < 15 else ""))

    benchdoc.write_section(doc, "api", section)
    print("bench: wrote %s" % doc)


COMMANDS = {
    "free-port": (cmd_free_port, 0, 1),
    "wait-http": (cmd_wait_http, 2, 3),
    "wrk": (cmd_wrk, 3, 4),
    "populate": (cmd_populate, 5, 5),
    "delete-all": (cmd_delete_all, 1, 1),
    "list-time": (cmd_list_time, 4, 4),
    "proc": (cmd_proc, 3, 3),
    "set": (cmd_set, 3, 3),
    "report": (cmd_report, 2, 2),
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        die("usage: bench.py {%s} ..." % "|".join(COMMANDS))
    fn, lo, hi = COMMANDS[sys.argv[1]]
    args = sys.argv[2:]
    if not lo <= len(args) <= hi:
        die("%s takes %d to %d arguments" % (sys.argv[1], lo, hi))
    fn(*args)
