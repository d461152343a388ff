#!/usr/bin/python3
"""bench/metrics/bench.py: what metrics cost the API's GET throughput.

Starts, on free loopback ports: redis-server (appendonly yes, appendfsync
always, as in production), then in alternating rounds dexter-scheduler and
dexter-api from DEXTER_BIN_DIR (default build/bin, the release build;
DEXTER_LOG_LEVEL=warn) with metrics off (DEXTER_METRICS=0) and on, started
afresh for each round on the same Redis. Each round: wrk, 64 connections,
2 threads, --latency, GET /api/v1.0/clusters/bench1 for BENCH_SECONDS
(after a 1 s warm-up); in the rounds with metrics on, a scraper also reads
GET /metrics once a second, as a Prometheus scraping 15 times more often
than its default would. Over each measured run it reads the CPU time of
the api and the scheduler (/proc/PID/stat) and reports µs per GET.

The table gives the median round of each side. The cost is 1 - the median,
over the rounds, of on / off of each round's pair (a round with metrics on
and the round with them off just before it): the machine's speed drifts
between rounds by more than the cost, and a pair shares its moment.
Target: at most 5 % (docs/metrics.md). It prints a table and writes it
into docs/BENCHMARKS.md between <!-- bench:metrics:start --> and
<!-- bench:metrics:end --> (BENCH_DOC). Not part of `make test`. Exit
status: 0 when measured (a missed target is printed as MISSED), 1 when the
measurement is invalid (a process died, a step timed out, a GET was not a
200, a scrape failed).

Environment (defaults in brackets):
  DEXTER_BIN_DIR   binaries [build/bin]
  BENCH_SECONDS    seconds of each measured run [10]
  BENCH_ROUNDS     rounds of each side, 1 to 9 [3]
  BENCH_DOC        the file to write [docs/BENCHMARKS.md]
  BENCH_KEEP=1     keep the work directory (logs, wrk outputs, results.json)

Helpers: bench/common.py (the services, the command line),
bench/deploy/bench.py (processes, /proc, the report) and bench/api/bench.py
(wrk's output).
"""
import json
import os
import statistics
import subprocess
import sys
import threading
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))    # bench/
import benchdoc  # noqa: E402
import common  # noqa: E402
from common import Failed, api, apibench, deploy, say  # noqa: E402

START, END = benchdoc.markers("metrics")
TARGET_COST = 0.05
CONNECTIONS, THREADS = 64, 2


def wrk(seconds, url, out):
    argv = ["wrk", "-t%d" % THREADS, "-c%d" % CONNECTIONS, "-d%ds" % seconds, "--latency", url]
    with open(out, "w") as f:
        p = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, timeout=seconds + 120,
                           check=False)
    with open(out) as f:
        text = f.read()
    if p.returncode != 0:
        raise Failed("wrk failed: %s" % text[-1000:])
    return apibench.parse_wrk(text), argv


class Scraper(threading.Thread):
    """GET /metrics once a second until stopped; counts and checks them."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.stopping = url, threading.Event()
        self.count, self.bad, self.bytes = 0, [], 0

    def run(self):
        while not self.stopping.wait(1.0):
            try:
                with urllib.request.urlopen(self.url, timeout=10) as r:
                    body = r.read()
                    if r.status != 200 or b"\ndexter_api_scheduler_scrape_ok 1\n" not in body:
                        self.bad.append("status %d, or no answer of the scheduler" % r.status)
                    self.count += 1
                    self.bytes = len(body)
            except OSError as e:
                self.bad.append(str(e))


def one_round(bin_dir, env, work, metrics, index, seconds):
    """Starts the scheduler and the api with metrics on or off, measures,
    stops them. The figures of the run."""
    side = "on" if metrics else "off"
    procs = deploy.Procs(work)
    renv = dict(env, DEXTER_METRICS="1" if metrics else "0")
    try:
        sched, api_p, base = common.start_services(procs, bin_dir, renv, "/clusters/bench1")
        url = base + "/clusters/bench1"
        wrk(1, url, os.path.join(work, "warmup-%s-%d.txt" % (side, index)))
        scraper = Scraper(base.rsplit("/api/", 1)[0] + "/metrics") if metrics else None
        if scraper:
            scraper.start()
        hz = os.sysconf("SC_CLK_TCK")
        cpu0 = {n: deploy.cpu_seconds(p.pid) for n, p in (("api", api_p), ("scheduler", sched))}
        figures, argv = wrk(seconds, url, os.path.join(work, "get-%s-%d.txt" % (side, index)))
        cpu1 = {n: deploy.cpu_seconds(p.pid) for n, p in (("api", api_p), ("scheduler", sched))}
        if scraper:
            scraper.stopping.set()
            scraper.join(15)
            if scraper.bad or not scraper.count:
                raise Failed("scrapes of /metrics failed: %s" % (scraper.bad[:3] or "none made"))
            figures["scrapes"], figures["scrape_bytes"] = scraper.count, scraper.bytes
        procs.check()
        if figures["non2xx"]:
            raise Failed("%d GETs were not 2xx with metrics %s" % (figures["non2xx"], side))
        requests = figures.get("requests") or 1
        figures["cpu_us"] = {n: (cpu1[n] - cpu0[n]) * 1e6 / requests for n in cpu0}
        figures["hz"] = hz
        say("metrics %-3s round %d: %8.0f req/s  p99 %.2f ms  CPU/GET api %.1f µs, scheduler %.1f µs"
            % (side, index, figures["rps"], figures["p99"], figures["cpu_us"]["api"],
               figures["cpu_us"]["scheduler"]))
        return figures, argv
    finally:
        procs.stop()


def median_of(runs):
    ranked = sorted(runs, key=lambda f: f["rps"])
    return ranked[(len(ranked) - 1) // 2]


def report(r, doc):
    off, on = median_of(r["off"]), median_of(r["on"])
    cost = 1 - statistics.median(b["rps"] / a["rps"] for a, b in zip(r["off"], r["on"]))
    missed = cost > TARGET_COST
    rows = []
    for side, fig, runs in (("off (`DEXTER_METRICS=0`)", off, r["off"]),
                            ("on, `/metrics` scraped every second", on, r["on"])):
        rows.append([side, "%.0f" % fig["rps"], ", ".join("%.0f" % f["rps"] for f in runs),
                     "%.2f" % fig["p50"], "%.2f" % fig["p99"],
                     "%.1f" % fig["cpu_us"]["api"], "%.1f" % fig["cpu_us"]["scheduler"]])
    head = ["metrics", "req/s (median round)", "req/s of each round", "p50 ms", "p99 ms",
            "api CPU µs/GET", "scheduler CPU µs/GET"]
    table = "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] +
                      ["| " + " | ".join(row) + " |" for row in rows])
    verdict = ("%s metrics cost %.1f %% of the GET throughput (1 − the median of on / off over "
               "each round's pair; target ≤ 5 %%%s)." % ("**MISSED:**" if missed else "Result:",
                                                        100 * cost, "" if missed else ": pass"))
    cpu = {side: statistics.mean(f["cpu_us"]["api"] + f["cpu_us"]["scheduler"] for f in r[side])
           for side in ("off", "on")}
    verdict += (" CPU of the api and the scheduler per GET, mean of every round: %.1f µs off, "
                "%.1f µs on (%+.1f %%)." % (cpu["off"], cpu["on"], 100 * (cpu["on"] / cpu["off"] - 1)))
    section = """{start}
## Metrics: the GET throughput with metrics on and off

Measured by `bench/metrics/bench.py` on {date}.

- Machine: {machine}; load average {loadavg} when the run began
- Commit: `{commit}`{dirty}
- Binaries: `{bindir}`, `DEXTER_LOG_LEVEL=warn`; redis `appendonly yes`,
  `appendfsync always`; no worker.
- {rounds} rounds of each side, alternating (off first), the scheduler and the api
  started afresh for each on the same Redis; each round {seconds} s of
  `{cmd}` after a 1 s warm-up. With metrics on, a client also read `GET /metrics`
  once a second ({scrape_bytes:,} bytes per answer at the end).

{table}

{verdict}
{end}""".format(start=START, end=END, date=r["date"], machine=r["machine"], loadavg=r["loadavg"],
                commit=r["commit"], dirty=" plus uncommitted changes" if r.get("dirty") else "",
                bindir=r["bin_dir"], rounds=len(r["on"]), seconds=r["seconds"], cmd=r["cmd"],
                scrape_bytes=on.get("scrape_bytes", 0), table=table, verdict=verdict)
    print()
    for row in rows:
        print("  " + "  ".join(row))
    print("  " + verdict.replace("*", ""))
    benchdoc.write_section(doc, "metrics", section)
    say("wrote %s" % doc)


def settings():
    """BENCH_SECONDS and BENCH_ROUNDS (1 to 9, else it exits)."""
    seconds = deploy.env_int("BENCH_SECONDS", 10)
    rounds = deploy.env_int("BENCH_ROUNDS", 3)
    if not 1 <= rounds <= 9:
        sys.exit("bench: BENCH_ROUNDS must be 1 to 9")
    return {"seconds": seconds, "rounds": rounds}


def measure(procs, work, bin_dir, doc, s):
    """Starts redis through procs, makes cluster bench1 through a first
    api, runs the rounds, writes results.json and the section into doc."""
    env = common.start_redis(procs, work, 5000)
    # The cluster every round reads, made once through a first api
    setup = deploy.Procs(work)
    try:
        _, _, base = common.start_services(setup, bin_dir, env)
        api(base, "POST", "/clusters", 201, form={"name": "bench1", "provider": "aws", "type": "mesos"})
    finally:
        setup.stop()
    say("work dir %s; api :%s" % (work, env["DEXTER_API_ADDR"].rsplit(":", 1)[1]))
    r = {"off": [], "on": [],
         "loadavg": " ".join(open("/proc/loadavg").read().split()[:3])}
    cmd = None
    for i in range(1, s["rounds"] + 1):
        for metrics in (False, True):
            figures, argv = one_round(bin_dir, env, work, metrics, i, s["seconds"])
            r["on" if metrics else "off"].append(figures)
            cmd = " ".join(argv).replace(base, "$API")
            procs.check()
    r.update(deploy.run_info("bench/metrics/bench.py"), loadavg=r["loadavg"], seconds=s["seconds"], cmd=cmd)
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump(r, f, indent=1)
    report(r, doc)


def main():
    return common.main(__doc__, "metrics", settings, measure)


if __name__ == "__main__":
    sys.exit(main())
