#!/usr/bin/python3
"""bench/deploy/bench.py: how long AWS deployments of 100 and 1,000 agents
take, with each group's agents launched in batches and, for comparison in
the same run, with one host step per agent; beside the lower bound that the
plan's dependency chain, the instances' boot and EC2's token buckets allow.

For each case it starts, on free loopback ports and from DEXTER_BIN_DIR
(default build/bin): redis-server (appendonly yes, appendfsync always, as in
production), dexter-scheduler (DEXTER_AWS_BATCH_MAX as the case says),
dexter-api, dexter-vpn, the fake EC2 (tests/fakes/fake_ec2.py: 50 ms per
call, 5 s from pending to running, EC2's token buckets on: RunInstances
requests 5 + 2/s and instances 1,000 + 2/s, per account and region) and the
aws-workers; creates cluster `benchdeploy` (3 m5.large masters and the
case's agent groups; the access node with an Elastic IP), then for each of
the case's parallelisms deploys (PUT → deployed) and destroys (PUT →
destroyed) from an empty account, and records

  * the wall time of each, as the client sees it (PUT sent → GET shows the
    end state, polled every 50 ms) and as the scheduler's events tell it
    (deployment.requested → deployment.finished);
  * the EC2 calls the fake counted (by action, errors, what its buckets
    refused);
  * CPU seconds (utime + stime from /proc/PID/stat) of the scheduler and of
    the workers over the deploy + destroy, and their peak RSS (VmHWM from
    /proc/PID/status, reset through /proc/PID/clear_refs before each run
    where the kernel allows). Each case has fresh processes.

Cases (BENCH_CASES, in this order by default: before,100,1000):
  before   3 masters + 100 agents (5 groups of 20), DEXTER_AWS_BATCH_MAX=0:
           one host step per agent, as before batches; parallelism 100
  100      the same cluster with batches (the scheduler's default
           DEXTER_AWS_BATCH_MAX); parallelism 5 and 100
  1000     3 masters + 1,000 agents (10 groups of 100), batches;
           parallelism 5 and 100
  before1000  1,000 agents, one host step each (not run by default: at
           2 launches per second it takes over 8 minutes); parallelism 100

It prints a table and writes it into docs/BENCHMARKS.md between
<!-- bench:deploy:start --> and <!-- bench:deploy:end --> (BENCH_DOC), leaving
the rest of the file alone. Not part of `make test`. Exit status: 0 when
measured (a missed target is printed as MISSED), 1 when the measurement is
invalid (a process died, a deployment failed or timed out).

Environment (defaults in brackets):
  DEXTER_BIN_DIR          binaries [build/bin, the release build]
  BENCH_CASES             comma-separated cases [before,100,1000]
  BENCH_PARALLELISM       comma-separated parallelisms for every case
                          [each case's own, above]
  BENCH_BATCH_MAX         DEXTER_AWS_BATCH_MAX of the batched cases
                          [unset: the scheduler's default]
  BENCH_WORKERS           aws-worker processes [1]
  BENCH_WORKER_CAPACITY   DEXTER_WORKER_CAPACITY of each [100]
  BENCH_POLL_MS           DEXTER_AWS_POLL_MS of the workers [unset: the worker's default, 1000]
  BENCH_LATENCY_MS        fake EC2 latency per call [50]
  BENCH_PENDING_MS        fake EC2 pending → running [5000]
  BENCH_SHUTDOWN_MS       fake EC2 shutting-down → terminated [1000]
  BENCH_TIMEOUT           seconds allowed per deploy or destroy [900]
  BENCH_STALL             fail when no step ends for this many seconds [120]
  BENCH_DOC               the file to write [docs/BENCHMARKS.md]
  BENCH_KEEP=1            keep the work directory (logs, results.json)

`bench.py --report RESULTS.json` rewrites the section from a kept results.json.

Targets (issue 18): the 100-agent batched deploy at parallelism 100 within
1.3× of its bound and at least 4× faster than the `before` deploy of the
same run; the 1,000-agent deploy at parallelism 100 within 1.3× of its
bound; peak RSS of the scheduler and the worker under 64 MB at 1,000 agents.

The lower bound (bench/README.md gives the reasoning):

  deploy(p) = C·L + max( T + 2L + P,   ceil(S/p)·(P + 2L),
                         (2S − W·Bd)/(W·Rd) )
  T         = max( 0, (S − B)/R, (N − Bi)/Ri )
  destroy   = K·L + Sd + max( 0, (N − Bt)/Rt )

  L latency per call, P pending time, Sd shutting-down time, p the
  parallelism, W workers; N = 1 + M + A instances (the access node, M = 3
  masters, A agents); S the steps that launch, one RunInstances call each:
  1 + M + Σ_g ceil(n_g / X) for groups of n_g agents and X =
  DEXTER_AWS_BATCH_MAX (X = 0: one step per agent, S = N); T the least time
  from the first launch call to the last that EC2's RunInstances buckets
  allow: requests B = 5, R = 2 per s (S calls), instances Bi = 1,000, Ri =
  2 per s (N instances); then the last call (L), its boot (P) and one
  DescribeInstances that sees it running (L). Each launch step holds one of
  p slots for at least P + 2L. Describe bucket Bd = 100, Rd = 20 per s per
  worker, at least 2 calls per launch step. C = 16 calls on the chain before
  the first host can start (network: CreateVpc, ModifyVpcAttribute,
  2 × CreateSubnet, CreateInternetGateway, AttachInternetGateway,
  CreateRouteTable, CreateRoute, 2 × AssociateRouteTable; then security:
  3 × CreateSecurityGroup, 3 × AuthorizeSecurityGroupIngress); K = 12 calls
  on the destroy chain (TerminateInstances, DisassociateAddress,
  ReleaseAddress, 3 × DeleteSecurityGroup, DisassociateRouteTable,
  DeleteRouteTable, DeleteSubnet, DetachInternetGateway,
  DeleteInternetGateway, DeleteVpc), and TerminateInstances' instance bucket
  Bt = 1,000, Rt = 20 per s.
"""
import base64
import datetime
import http.client
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchdoc  # noqa: E402  (bench/benchdoc.py)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START, END = benchdoc.markers("deploy")
KEY_ID, SECRET = "AKIADEXTERBENCH00001", "dexterBench/fake+Secret0123456789abcdefAB"
CLUSTER = "benchdeploy"
MASTERS, MASTER_TYPE = 3, "m5.large"
# Agent groups (hosts = max(ceil(cpus/vCPUs), ceil(ram/GiB of one host))).
GROUP_TYPES = [
    ("web", "m5.large", 2, 8),       # name, type, vCPUs, GiB
    ("app", "m5.xlarge", 4, 16),
    ("batch", "c5.large", 2, 4),
    ("cache", "r5.large", 2, 16),
    ("edge", "t3.medium", 2, 4),     # with one extra 100 GB EBS volume
]


def groups_of(hosts, copies=1):
    """The 5 group types, `copies` times (names numbered from the second
    copy on), each of `hosts` agents."""
    out = []
    for n in range(copies):
        for name, itype, cpus, ram in GROUP_TYPES:
            g = {"name": name + (str(n + 1) if copies > 1 else ""), "instance_type": itype,
                 "cpus": cpus * hosts, "ram": ram}
            if name == "edge":
                g["customhwconf"] = {"disks": [{"size": 100}]}
            out.append(g)
    return out


GROUPS = groups_of(20)        # 5 groups of 20: 100 agents
# name -> agent groups, DEXTER_AWS_BATCH_MAX (None: the scheduler's default), parallelisms
CASES = {
    "before": {"groups": groups_of(20), "batch_max": 0, "parallelism": [100]},
    "100": {"groups": groups_of(20), "batch_max": None, "parallelism": [5, 100]},
    "1000": {"groups": groups_of(100, 2), "batch_max": None, "parallelism": [5, 100]},
    "before1000": {"groups": groups_of(100, 2), "batch_max": 0, "parallelism": [100]},
}
DEFAULT_CASES = "before,100,1000"
SCHEDULER_BATCH_MAX = 1000    # the scheduler's DEXTER_AWS_BATCH_MAX default
# EC2's RunInstances buckets (the worker keeps the same client-side: common/dx_netplan.h)
RUN_BURST, RUN_RATE = 5, 2.0
LAUNCH_BURST, LAUNCH_RATE = 1000, 2.0
# TerminateInstances' instance bucket
TERMINATE_BURST, TERMINATE_RATE = 1000, 20.0
# the workers' Describe* bucket (services/aws-worker/aws_ec2.c, aws_ec2_action_class)
DESCRIBE_BURST, DESCRIBE_RATE = 100, 20.0
DEPLOY_CHAIN_CALLS = 10 + 6
DESTROY_CHAIN_CALLS = 12
TARGET_RATIO = 1.3
STALL_S = int(os.environ.get("BENCH_STALL") or 120)   # no step done for this long: fail
FAKE_URL = None    # for stall_errors()


def say(msg):
    print("bench: " + msg, flush=True)


class Failed(Exception):
    pass


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


# -- processes --------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Procs:
    """Every process started here, stopped in reverse order (SIGTERM, then
    SIGKILL after 10 s) by its pid."""

    def __init__(self, work):
        self.work, self.items = work, []

    def start(self, name, argv, env):
        log = open(os.path.join(self.work, name + ".log"), "ab")
        p = subprocess.Popen(argv, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        log.close()
        self.items.append((name, p))
        return p

    def check(self):
        for name, p in self.items:
            if p.poll() is not None:
                raise Failed("%s exited with %s; its log: %s" % (name, p.returncode,
                                                                 os.path.join(self.work, name + ".log")))

    def stop(self, first=0):
        """Stops the processes started since items[first] (all by default)
        and forgets them."""
        for name, p in reversed(self.items[first:]):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    say("%s (pid %d) ignored SIGTERM for 10 s: SIGKILL" % (name, p.pid))
                    p.kill()
                    p.wait(5)
        del self.items[first:]


def wait_for(pred, seconds, what, procs=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        if procs:
            procs.check()
        time.sleep(0.05)
    raise Failed("timed out after %ss waiting for %s" % (seconds, what))


# -- HTTP ---------------------------------------------------------------------------

def request(method, url, body=None, ctype=None, timeout=30):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        path = u.path + ("?" + u.query if u.query else "")
        headers = {"Content-Type": ctype} if ctype else {}
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else None)
    finally:
        c.close()


def api(base, method, path, expect, form=None, js=None):
    body, ctype = None, None
    if form is not None:
        body, ctype = urllib.parse.urlencode(form), "application/x-www-form-urlencoded"
    elif js is not None:
        body, ctype = json.dumps(js), "application/json"
    status, out = request(method, base + path, body, ctype)
    if status != expect:
        raise Failed("%s %s answered %d (expected %d): %s" % (method, path, status, expect, out))
    return out


def up(url):
    try:
        return request("GET", url, timeout=2)[0] == 200
    except (OSError, http.client.HTTPException):
        return False


# -- /proc --------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # after "(comm)": state is field 3, utime 14, stime 15 (1-based in proc(5))
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def vm(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def reset_hwm(pid):
    """Resets VmHWM to the current RSS (Linux ≥ 4.0); False if not allowed."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# -- the bound ----------------------------------------------------------------------

def group_sizes(groups):
    """Agents of each group (the api's rule: hosts = max(ceil(cpus / vCPUs),
    ceil(ram / GiB of one host)))."""
    types = {t: (c, m) for _, t, c, m in GROUP_TYPES}
    return [max(math.ceil(g["cpus"] / types[g["instance_type"]][0]), math.ceil(g["ram"] / types[g["instance_type"]][1]))
            for g in groups]


def launch_steps(sizes, batch_max):
    """S: the steps that launch (one RunInstances call each): the access
    node, the masters, and per group ceil(n / X) batches (X = 0: one per
    agent)."""
    agents = sum(sizes) if batch_max == 0 else sum(math.ceil(n / batch_max) for n in sizes)
    return 1 + MASTERS + agents


def deploy_bound(p, workers, latency, pending, sizes, batch_max):
    """The lower bound of a deploy (the docstring's formula): seconds,
    the binding term's name, and every term."""
    L, P = latency / 1000.0, pending / 1000.0
    n, steps = 1 + MASTERS + sum(sizes), launch_steps(sizes, batch_max)
    chain = DEPLOY_CHAIN_CALLS * L
    launch = max(0.0, (steps - RUN_BURST) / RUN_RATE, (n - LAUNCH_BURST) / LAUNCH_RATE)
    waves = math.ceil(steps / p) * (P + 2 * L)
    describes = max(0.0, (2 * steps - workers * DESCRIBE_BURST) / (workers * DESCRIBE_RATE))
    terms = {"EC2 buckets + boot": launch + 2 * L + P, "parallelism waves": waves,
             "token bucket (Describe)": describes}
    binding = max(terms, key=terms.get)
    return chain + terms[binding], binding, terms


def destroy_bound(latency, shutdown, instances):
    return (DESTROY_CHAIN_CALLS * latency / 1000.0 + shutdown / 1000.0
            + max(0.0, (instances - TERMINATE_BURST) / TERMINATE_RATE))


# -- one run --------------------------------------------------------------------------

def events(base, after=None):
    out = []
    while True:
        q = "?count=1000" + ("&after=" + urllib.parse.quote(after) if after else "")
        page = api(base, "GET", "/clusters/%s/deployment/events%s" % (CLUSTER, q), 200)["events"]
        out += page
        if len(page) < 1000:
            return out
        after = page[-1]["id"]


def iso_seconds(t):
    """Seconds since the epoch of an ISO 8601 UTC time with milliseconds."""
    return datetime.datetime.strptime(t.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def run_command(base, command, parallelism, timeout, procs, creds):
    """Runs a deploy or destroy of CLUSTER (creds: the credentials' form
    fields) to its end state; its wall time, steps and retries."""
    form = dict(creds, command=command, parallelism=str(parallelism))
    t0 = time.monotonic()
    d = api(base, "PUT", "/clusters/%s/deployment" % CLUSTER, 202, form=form)
    gen = d["generation"]
    want, bad = {"deploy": ("deployed", "deploy_failed"), "destroy": ("destroyed", "destroy_failed")}[command]
    deadline = t0 + timeout
    progress, progress_at = None, t0
    while True:
        d = api(base, "GET", "/clusters/%s/deployment" % CLUSTER, 200)
        if d["generation"] == gen and d["state"] in (want, bad):
            break
        now = time.monotonic()
        if d["progress"] != progress:
            progress, progress_at = d["progress"], now
        if now > deadline or now - progress_at > STALL_S:
            raise Failed("%s (parallelism %d) %s: %s; the fake's errors: %s" % (
                command, parallelism, "did not end within %d s" % timeout if now > deadline else
                "made no progress for %d s" % STALL_S, json.dumps(d), stall_errors()))
        procs.check()
        time.sleep(0.05)
    wall = time.monotonic() - t0
    if d["state"] == bad:
        raise Failed("%s (parallelism %d) ended %s: %s" % (command, parallelism, d["state"], d["last_error"]))
    evs = events(base)
    req = [e for e in evs if e["type"] == "deployment.requested" and int(e["generation"]) == gen]
    fin = [e for e in evs if e["type"] == "deployment.finished" and int(e["generation"]) == gen]
    server = iso_seconds(fin[-1]["time"]) - iso_seconds(req[-1]["time"]) if req and fin else None
    mine = evs[evs.index(req[-1]):] if req else []
    steps = len([e for e in mine if e["type"] == "step.done"])
    retries = len([e for e in mine if e["type"] in ("step.retry", "step.requeued")])
    say("%s, parallelism %d: %.1f s (events: %s s), %d steps done, %d retried/re-queued"
        % (command, parallelism, wall, "%.1f" % server if server is not None else "?", steps, retries))
    return {"wall": wall, "server": server, "steps": steps, "retries": retries, "generation": gen}


def stall_errors():
    try:
        return fake(FAKE_URL, "GET", "/_fake/calls")["by_error_code"]
    except (Failed, OSError, http.client.HTTPException) as e:
        return "unknown (%s)" % e


def fake(fake_url, method, path, body=None):
    status, out = request(method, fake_url + path, json.dumps(body) if body is not None else None,
                       "application/json" if body is not None else None)
    if status != 200:
        raise Failed("fake %s %s: %d %s" % (method, path, status, out))
    return out


def usage_start(services):
    """Resets the peak RSS of services ((name, pid) pairs) and returns their
    CPU seconds so far, for usage_end."""
    for _, pid in services:
        reset_hwm(pid)
    return {name: cpu_seconds(pid) for name, pid in services}


def usage_end(services, cpu0):
    """CPU seconds since usage_start, and peak RSS (kB), by service name."""
    return ({name: cpu_seconds(pid) - cpu0[name] for name, pid in services},
            {name: vm(pid, "VmHWM") for name, pid in services})


def measure(base, fake_url, parallelism, timeout, procs, services, instances):
    """Deploys, then destroys, CLUSTER at parallelism (instances: how many
    the deploy must leave running); the figures of both."""
    cpu0 = usage_start(services)
    creds = {"aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET}
    dep = run_command(base, "deploy", parallelism, timeout, procs, creds)
    st = fake(fake_url, "GET", "/_fake/state")
    live = [i for i in st["instances"] if i["state"] != "terminated"]
    if len(live) != instances:
        raise Failed("deployed with %d live instances, want %d" % (len(live), instances))
    calls_deploy = fake(fake_url, "GET", "/_fake/calls")
    refused_deploy = fake(fake_url, "GET", "/_fake/buckets")["refused"]
    des = run_command(base, "destroy", parallelism, timeout, procs, creds)
    st = fake(fake_url, "GET", "/_fake/state")
    if [i for i in st["instances"] if i["state"] != "terminated"] or st["vpcs"]:
        raise Failed("destroyed, but instances or VPCs are left")
    cpu, hwm = usage_end(services, cpu0)
    calls = fake(fake_url, "GET", "/_fake/calls")
    return {"parallelism": parallelism, "deploy": dep, "destroy": des, "cpu": cpu, "hwm_kb": hwm,
            "calls_deploy": {"total": calls_deploy["total"], "by_action": calls_deploy["by_action"],
                             "errors": calls_deploy["by_error_code"], "refused": refused_deploy},
            "calls": {"total": calls["total"], "by_action": calls["by_action"], "errors": calls["by_error_code"],
                      "refused": fake(fake_url, "GET", "/_fake/buckets")["refused"]}}


# -- report -------------------------------------------------------------------------

SPEEDUP_TARGET = 4.0      # the 100-agent batched deploy against `before`, parallelism 100
RSS_TARGET_MB = 64        # scheduler and worker, 1,000 agents


def targets(run, runs):
    """The issue's targets that apply to run: [(text, met)]."""
    out, p, case = [], run["parallelism"], run["case"]
    if p == 100 and case in ("100", "1000"):
        out.append(("≤ %.1f× the bound" % TARGET_RATIO, run["deploy"]["wall"] / run["bound"] <= TARGET_RATIO))
    if p == 100 and case == "100":
        before = [b for b in runs if b["case"] == "before" and b["parallelism"] == 100]
        if before:
            speedup = before[0]["deploy"]["wall"] / run["deploy"]["wall"]
            out.append(("≥ %.0f× faster than before (%.1f×)" % (SPEEDUP_TARGET, speedup), speedup >= SPEEDUP_TARGET))
    if case == "1000":
        peak = max(run["hwm_kb"].values()) / 1024.0
        out.append(("peak RSS < %d MB" % RSS_TARGET_MB, peak < RSS_TARGET_MB))
    return out


def report(r, doc):
    rows, missed = [], []
    for run in r["runs"]:   # targets() compares runs: every bound first
        run["bound"], run["binding"], _ = deploy_bound(run["parallelism"], r["workers"], r["latency_ms"],
                                                       r["pending_ms"], run["sizes"], run["batch_max"])
    for run in r["runs"]:
        p, bound, binding = run["parallelism"], run["bound"], run["binding"]
        ratio = run["deploy"]["wall"] / bound
        checks = targets(run, r["runs"])
        for text, met in checks:
            if not met:
                missed.append("%s agents%s, parallelism %d: %s" % (
                    sum(run["sizes"]), " (before)" if run["batch_max"] == 0 else "", p, text))
        verdict = "; ".join("%s: %s" % (text, "pass" if met else "**MISSED**") for text, met in checks)
        dbound = destroy_bound(r["latency_ms"], r["shutdown_ms"], run["instances"])
        wcpu = sum(v for k, v in run["cpu"].items() if k.startswith("aws-worker"))
        whwm = max(v for k, v in run["hwm_kb"].items() if k.startswith("aws-worker"))
        cd = run["calls_deploy"]
        trouble = ["%s %d" % kv for kv in sorted(cd["errors"].items()) if kv[0] != "RequestLimitExceeded"]
        trouble += ["refused by %s bucket %d" % kv for kv in sorted(cd.get("refused", {}).items())]
        rows.append(["%s" % run["case"], "%d (%d groups)" % (sum(run["sizes"]), len(run["sizes"])),
                     "%d" % run["batch_max"], "%d" % p, "%.1f s" % run["deploy"]["wall"],
                     "%.1f s (%s)" % (bound, binding), "%.2f×" % ratio,
                     "%.1f s (bound %.1f s)" % (run["destroy"]["wall"], dbound),
                     "%d (%d RunInstances, %d Describe*)%s" % (
                         cd["total"], cd["by_action"].get("RunInstances", 0),
                         sum(v for k, v in cd["by_action"].items() if k.startswith("Describe")),
                         ("; " + ", ".join(trouble)) if trouble else ""),
                     "%d" % run["calls"]["total"],
                     "%.2f / %.2f" % (run["cpu"]["scheduler"], wcpu),
                     "%.1f / %.1f" % (run["hwm_kb"]["scheduler"] / 1024.0, whwm / 1024.0),
                     verdict or "—"])
    head = ["case", "agents", "batch max", "parallelism", "deploy (PUT → deployed)", "lower bound (binding term)",
            "deploy / bound", "destroy (PUT → destroyed)", "EC2 calls in the deploy", "EC2 calls, deploy + destroy",
            "CPU s: scheduler / workers", "peak RSS MB: scheduler / worker", "targets"]
    text = print_table("Dexter deployment benchmark", r, head, rows, missed)
    L, P = r["latency_ms"], r["pending_ms"]
    hwm_ok = all(run.get("hwm_reset") for run in r["runs"])
    section = """{start}
## Deployments on AWS (fake EC2)

Measured by `bench/deploy/bench.py` on {date}.

- Machine: {machine}; load average {loadavg} when the run began
- Commit: `{commit}`{dirty}
- Binaries: `{bindir}`; {workers} aws-worker process(es), `DEXTER_WORKER_CAPACITY={capacity}`,
  `DEXTER_AWS_POLL_MS={poll}`; scheduler and workers at `DEXTER_LOG_LEVEL=info`
- Clusters: 3 × {master_type} masters and the access node (with an Elastic IP), plus
  100 agents (5 groups of 20: m5.large, m5.xlarge, c5.large, r5.large, t3.medium with
  one extra 100 GB EBS volume) or 1,000 agents (those 5 group types twice, 100 each).
  Batch max is the scheduler's `DEXTER_AWS_BATCH_MAX`: 0 (case `before`) launches
  each agent in a host step of its own, as before batches.
- Fake EC2 (`tests/fakes/fake_ec2.py`, on the same cores): {L} ms per call,
  {P} ms pending → running, {S} ms shutting-down → terminated, EC2's RunInstances
  buckets on (requests 5 + 2/s, instances 1,000 + 2/s) and TerminateInstances' (100 + 5/s,
  1,000 + 20/s).
- Each row: fresh processes and an empty account (every bucket full), deploy, then
  destroy. Times are as the client sees them (PUT sent → GET shows `deployed`/`destroyed`,
  polled every 50 ms). CPU seconds cover the deploy and the destroy; peak RSS is
  VmHWM over them{hwm_note}.

{table}

{verdict}

Lower bound: `C·L + max(T + 2L + P, ceil(S/p)·(P + 2L), (2S − W·Bd)/(W·Rd))` with
`T = max(0, (S − B)/R, (N − Bi)/Ri)`: L = {L} ms, P = {P} ms, p the parallelism, W = {workers}
worker(s), N instances (agents + 4), S the steps that launch, one RunInstances each
(the access node, the masters, and per group of n agents ceil(n / batch max), or n
when batch max is 0), EC2's RunInstances buckets B = 5, R = 2/s (calls) and Bi = 1,000,
Ri = 2/s (instances), so T is when the last launch can be sent; then it needs its call,
P to boot and one DescribeInstances that sees it run. The Describe bucket Bd = 100,
Rd = 20/s is each worker's; C = 16 calls must follow one another before the first host
can be launched (the network step's 10 creating calls, then the security step's 6).
Destroy: the 12 calls of its chain × L + the shutting-down time (+ (N − 1,000)/20 s of
TerminateInstances' instance bucket). Look-ups and polling intervals are not counted,
so the bound is optimistic: no implementation of the plan can beat it. See
`bench/README.md`.

Command: `{command}`
{end}""".format(start=START, end=END, date=r["date"], machine=r["machine"], loadavg=r["loadavg"],
                commit=r["commit"], dirty=" plus uncommitted changes" if r.get("dirty") else "",
                bindir=r["bin_dir"], workers=r["workers"], capacity=r["capacity"], poll=r["poll_ms"],
                master_type=MASTER_TYPE, L=L, P=P, S=r["shutdown_ms"],
                hwm_note="" if hwm_ok else " (could not reset VmHWM: peaks are since start)",
                table=text, verdict=("**MISSED:** " + "; ".join(missed)) if missed else "All targets met.",
                command=r.get("command", "bench/deploy/bench.py"))
    benchdoc.write_section(doc, "deploy", section)
    say("wrote %s" % doc)


def print_table(title, r, head, rows, missed):
    """Prints rows (lists of cells) and the verdict; returns them as a
    Markdown table under head."""
    md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(row) + " |" for row in rows]
    print()
    print("%s — %s, %s, commit %s" % (title, r["date"], r["machine"], r["commit"]))
    for row in rows:
        print("  " + "  ".join(x.replace("*", "") for x in row))
    print("\nMISSED: " + "; ".join(missed) if missed else "\nAll targets met.")
    return "\n".join(md)


# -- main ---------------------------------------------------------------------------

def git(*args):
    try:
        return subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True, timeout=30,
                              env=dict(os.environ, GIT_OPTIONAL_LOCKS="0")).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def cli(doc, report, measure_all):
    """The command line of a deployment benchmark. `--report RESULTS.json`
    rewrites the section from a kept results.json without measuring; no
    argument measures: measure_all(procs, work) starts what it needs through
    procs and returns the results, which report(results, BENCH_DOC) writes.
    Anything else prints doc. Returns the exit status."""
    out = os.environ.get("BENCH_DOC") or os.path.join(ROOT, "docs", "BENCHMARKS.md")
    if len(sys.argv) == 3 and sys.argv[1] == "--report":
        with open(sys.argv[2]) as f:
            report(json.load(f), out)
        return 0
    if len(sys.argv) > 1:
        # -h, --help, or anything it does not know: the usage, nothing run
        print(doc.strip())
        return 0 if sys.argv[1] in ("-h", "--help") else 2

    def interrupted(signum, frame):
        raise Failed("interrupted by signal %d" % signum)
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    work = tempfile.mkdtemp(prefix="dexter-bench-deploy.")
    procs = Procs(work)
    ok = False
    try:
        r = measure_all(procs, work)
        report(r, out)
        ok = True
    except Failed as e:
        print("\nbench: FAILED: %s" % e, file=sys.stderr)
    finally:
        finish(procs, work, ok)
    return 0 if ok else 1


def parallelisms(default="5,20,100"):
    return [int(x) for x in (os.environ.get("BENCH_PARALLELISM") or default).split(",")]


def bin_dir():
    return os.environ.get("DEXTER_BIN_DIR") or os.path.join(ROOT, "build", "bin")


def check_setup(*binaries, pars=None):
    """Exits with a message when a binary is missing, or when the workers
    (BENCH_WORKERS × BENCH_WORKER_CAPACITY) cannot run the largest
    parallelism's (of pars, else BENCH_PARALLELISM's) jobs at once."""
    for exe in binaries:
        if not os.access(os.path.join(bin_dir(), exe), os.X_OK):
            sys.exit("bench: %s/%s is missing: run 'make services' (or set DEXTER_BIN_DIR)" % (bin_dir(), exe))
    pars = pars or parallelisms()
    workers, capacity = env_int("BENCH_WORKERS", 1), env_int("BENCH_WORKER_CAPACITY", 100)
    if workers * capacity < max(pars):
        sys.exit("bench: %d worker(s) × capacity %d cannot run %d jobs at once" % (workers, capacity, max(pars)))


def start_core(procs, work, drop=("DEXTER_", "AWS_"), scheduler_env=None):
    """Starts redis-server (appendonly yes, appendfsync always),
    dexter-scheduler (with scheduler_env added), dexter-api and dexter-vpn
    on free loopback ports. Returns the environment without the variables
    named by drop's prefixes (for the fake), the services' environment, and
    the api's base URL once it answers."""
    redis_port, sched_port, worker_port, api_port = (free_port() for _ in range(4))
    os.makedirs(os.path.join(work, "redis"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    procs.start("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port),
                          "--dir", os.path.join(work, "redis"), "--appendonly", "yes",
                          "--appendfsync", "always", "--save", "", "--protected-mode", "yes"], base_env)

    def redis_up():
        try:
            with socket.create_connection(("127.0.0.1", redis_port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False
    wait_for(redis_up, 10, "redis-server", procs)
    env = dict(base_env, DEXTER_REDIS_URL="redis://127.0.0.1:%d/0" % redis_port,
               DEXTER_SCHEDULER_ENDPOINT="tcp://127.0.0.1:%d" % sched_port,
               DEXTER_WORKER_ENDPOINT="tcp://127.0.0.1:%d" % worker_port,
               DEXTER_API_ADDR="127.0.0.1:%d" % api_port, DEXTER_DATA_DIR=os.path.join(work, "data"),
               DEXTER_MASTER_KEY=os.urandom(32).hex(), DEXTER_API_TIMEOUT_MS="5000",
               DEXTER_LOG_LEVEL="info")
    procs.start("scheduler", [os.path.join(bin_dir(), "dexter-scheduler")], dict(env, **(scheduler_env or {})))
    procs.start("api", [os.path.join(bin_dir(), "dexter-api")], env)
    # a deploy's vpn steps (the access node's server bundle, the profile)
    procs.start("vpn", [os.path.join(bin_dir(), "dexter-vpn")], env)
    base = "http://127.0.0.1:%d/api/v1.0" % api_port
    wait_for(lambda: up(base + "/clusters"), 20, "the api", procs)
    return base_env, env, base


def start_fake(procs, work, name, argv, env):
    """Starts a fake cloud (argv without --port and --port-file) and
    returns its URL once it answers; sets FAKE_URL."""
    port_file = os.path.join(work, name + ".port")
    procs.start(name, argv + ["--port", "0", "--port-file", port_file], env)
    wait_for(lambda: os.path.exists(port_file), 30, "the %s's port file" % name, procs)
    with open(port_file) as f:
        url = "http://127.0.0.1:%d" % int(f.read())
    wait_for(lambda: up(url + "/_fake/health"), 10, name, procs)
    global FAKE_URL
    FAKE_URL = url
    return url


def add_groups(base, groups, agents):
    """POSTs the groups of CLUSTER; they must add up to agents hosts."""
    total = 0
    for g in groups:
        body = dict({"role": "*", "attributes": {}, "vars": {}}, **g)
        total += api(base, "POST", "/clusters/%s/groups" % CLUSTER, 201, js=body)["hosts"]
    if total != agents:
        raise Failed("the groups have %d hosts, not %d" % (total, agents))


def wait_workers(base, procs, what):
    """Until the scheduler knows a worker of CLUSTER's provider."""
    wait_for(lambda: not api(base, "GET", "/clusters/%s/deployment" % CLUSTER, 200).get("waiting"), 20,
             what + " to register", procs)


def run_info(script):
    """What every results.json says of the run: date, machine, load,
    commit, binaries and the command."""
    bd = bin_dir()
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": "%d cores, %s, Linux %s" % (os.cpu_count(), cpu_model(), os.uname().release),
            "loadavg": " ".join(open("/proc/loadavg").read().split()[:3]),
            "commit": git("rev-parse", "--short", "HEAD") or "unknown",
            "dirty": bool(git("status", "--porcelain", "--", "Makefile", "common", "services", "proto")),
            "bin_dir": os.path.relpath(bd, ROOT) if os.path.abspath(bd).startswith(ROOT + os.sep) else bd,
            "command": " ".join(["DEXTER_BIN_DIR=" + bd] +
                                ["%s=%s" % (k, os.environ[k]) for k in sorted(os.environ)
                                 if k.startswith("BENCH_") and k not in ("BENCH_DOC", "BENCH_KEEP")] +
                                [script])}


def cases():
    names = [c.strip() for c in (os.environ.get("BENCH_CASES") or DEFAULT_CASES).split(",") if c.strip()]
    unknown = [c for c in names if c not in CASES]
    if unknown or not names:
        sys.exit("bench: unknown case(s) %s (known: %s)" % (", ".join(unknown) or "none", ", ".join(CASES)))
    return names


def case_parallelisms(name):
    return parallelisms(",".join(map(str, CASES[name]["parallelism"])))


def case_batch_max(name):
    """The case's DEXTER_AWS_BATCH_MAX: 0 for the cases before batches, else
    BENCH_BATCH_MAX or the scheduler's default."""
    if CASES[name]["batch_max"] == 0:
        return 0
    v = os.environ.get("BENCH_BATCH_MAX", "").strip()
    return int(v) if v else SCHEDULER_BATCH_MAX


def run_one(procs, work, name, p, setup):
    """One deploy + destroy of case `name` at parallelism p, on processes
    of its own (every bucket, client-side and EC2's, full at the start, as
    the bound assumes), stopped at the end."""
    case, first = CASES[name], len(procs.items)
    work = os.path.join(work, "%s-p%d" % (name, p))
    os.makedirs(work)
    procs.work = work
    sizes = group_sizes(case["groups"])
    instances = 1 + MASTERS + sum(sizes)
    sched_env = {}
    if case["batch_max"] == 0 or os.environ.get("BENCH_BATCH_MAX", "").strip():
        sched_env["DEXTER_AWS_BATCH_MAX"] = str(case_batch_max(name))
    try:
        base_env, env, base = start_core(procs, work, scheduler_env=sched_env)
        fake_url = start_fake(procs, work, "fake-ec2", [
            "/usr/bin/python3", os.path.join(ROOT, "tests", "fakes", "fake_ec2.py"),
            "--access-key", KEY_ID, "--secret-key", SECRET, "--region", "any",
            "--latency-ms", str(setup["latency_ms"]), "--pending-ms", str(setup["pending_ms"]),
            "--shutdown-ms", str(setup["shutdown_ms"]), "--instance-limit", str(instances + 100),
            "--ec2-limits", "true", "--seed", "1", "--quiet"], base_env)
        wenv = dict(env, AWS_ENDPOINT_URL_EC2=fake_url, DEXTER_WORKER_CAPACITY=str(setup["capacity"]),
                    NO_PROXY="127.0.0.1")
        if setup["poll"]:
            wenv["DEXTER_AWS_POLL_MS"] = setup["poll"]
        for n in range(setup["workers"]):
            procs.start("aws-worker-%d" % (n + 1), [os.path.join(bin_dir(), "dexter-aws-worker")], wenv)
        say("%s, parallelism %d: work dir %s; api %s, fake EC2 %s, %d worker(s), DEXTER_AWS_BATCH_MAX=%s"
            % (name, p, work, base, fake_url, setup["workers"], sched_env.get("DEXTER_AWS_BATCH_MAX", "default")))
        api(base, "POST", "/clusters", 201, form={"name": CLUSTER, "provider": "aws", "type": "mesos"})
        api(base, "PUT", "/clusters/%s/config" % CLUSTER, 200,
            form={"master_type": MASTER_TYPE, "masters": str(MASTERS), "region": "us-west-2",
                  "sshkey": "bench", "sshkeydata": base64.b64encode(setup["pem"]).decode()})
        add_groups(base, [dict(g, disk_size=20) for g in case["groups"]], sum(sizes))
        wait_workers(base, procs, "the aws-workers")
        services = [(n, pr.pid) for n, pr in procs.items[first:]
                    if n == "scheduler" or n.startswith("aws-worker")]
        hwm_reset = all(reset_hwm(pid) for _, pid in services)
        bound, binding, _ = deploy_bound(p, setup["workers"], setup["latency_ms"], setup["pending_ms"], sizes,
                                         case_batch_max(name))
        say("%s, parallelism %d: %d instances, %d launch steps; lower bound %.1f s (%s)"
            % (name, p, instances, launch_steps(sizes, case_batch_max(name)), bound, binding))
        run = measure(base, fake_url, p, setup["timeout"], procs, services, instances)
        run.update(case=name, sizes=sizes, batch_max=case_batch_max(name), instances=instances, hwm_reset=hwm_reset)
        return run
    finally:
        procs.stop(first)


def measure_aws(procs, work):
    setup = {"workers": env_int("BENCH_WORKERS", 1), "capacity": env_int("BENCH_WORKER_CAPACITY", 100),
             "latency_ms": env_int("BENCH_LATENCY_MS", 50), "pending_ms": env_int("BENCH_PENDING_MS", 5000),
             "shutdown_ms": env_int("BENCH_SHUTDOWN_MS", 1000), "timeout": env_int("BENCH_TIMEOUT", 900),
             "poll": os.environ.get("BENCH_POLL_MS", "").strip()}
    setup["pem"] = subprocess.run(["openssl", "genrsa", "-traditional", "2048"], capture_output=True, check=True,
                                  timeout=120).stdout
    r = dict(run_info("bench/deploy/bench.py"), workers=setup["workers"], capacity=setup["capacity"],
             poll_ms=setup["poll"] or "1000 (default)", latency_ms=setup["latency_ms"],
             pending_ms=setup["pending_ms"], shutdown_ms=setup["shutdown_ms"], runs=[])
    for name in cases():
        for p in case_parallelisms(name):
            r["runs"].append(run_one(procs, work, name, p, setup))
            with open(os.path.join(work, "results.json"), "w") as f:
                json.dump(r, f, indent=1)
    procs.work = work
    return r


def main():
    if len(sys.argv) == 1:
        check_setup("dexter-scheduler", "dexter-api", "dexter-vpn", "dexter-aws-worker",
                    pars=[p for c in cases() for p in case_parallelisms(c)])
    return cli(__doc__, report, measure_aws)


def finish(procs, work, ok):
    """Stops every process (no signal may interrupt that), then removes the
    work directory, or keeps it (BENCH_KEEP=1, or a failed run) and says so."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    procs.stop()
    if ok and os.environ.get("BENCH_KEEP") != "1":
        shutil.rmtree(work, ignore_errors=True)
    else:
        say("logs and results kept in %s" % work)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
