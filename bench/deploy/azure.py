#!/usr/bin/python3
"""bench/deploy/azure.py: how long a 104-VM Azure deployment takes, beside
the lower bound that the plan's dependency chain and ARM's request limits
allow.

Starts, on free loopback ports, what bench/deploy/bench.py starts for AWS
(redis-server with appendfsync always, dexter-scheduler, dexter-api; its
processes, polling, CPU/RSS readings and report helpers are the ones used
here), the fake ARM (tests/fakes/fake_arm.py: 50 ms per call, 5 s per
long-running operation, ARM's per-subscription buckets on) and the
azure-workers, all from DEXTER_BIN_DIR (default build/bin). Creates cluster
`benchdeploy` on Azure (location westeurope; 3 Standard_D2_v3 masters; 5
groups of 20 agents = 100 agents; the access node, a Standard_A1_v2 with a
static public IP: 104 VMs, none with a data disk), then for each
parallelism (5, 20, 100) deploys (PUT → deployed) and destroys (PUT →
destroyed) from an empty subscription and records

  * the wall time of each as the client sees it (PUT sent → GET shows the
    end state, polled every 50 ms) and from the scheduler's events, and
    when the network, security and last host steps ended;
  * CPU seconds of the scheduler and the workers over the deploy and the
    destroy, and their peak RSS (VmHWM, reset before each run);
  * the fake's call counts (PUT, GET, operation polls, 429s, errors).

Before each deploy but the first it waits 20 s, so that the worker's
client-side buckets are full again, as the bound assumes. It prints a table
and writes it into docs/BENCHMARKS.md between <!-- bench:azure:start -->
and <!-- bench:azure:end --> (BENCH_DOC), leaving the rest alone. Not part
of `make test`. Exit status: 0 when measured (a missed target is printed as
MISSED), 1 when the measurement is invalid (a process died, a deployment
failed or stalled: the work directory with every log is kept).

Environment (defaults in brackets):
  DEXTER_BIN_DIR          binaries [build/bin, the release build]
  BENCH_PARALLELISM       comma-separated parallelisms [5,20,100]
  BENCH_WORKERS           azure-worker processes [1]
  BENCH_WORKER_CAPACITY   DEXTER_WORKER_CAPACITY of each [100]
  BENCH_POLL_MS           DEXTER_AZURE_POLL_MS [unset: the worker's default]
  BENCH_LATENCY_MS        fake ARM latency per call [50]
  BENCH_LRO_MS            fake ARM long-running operation time [5000]
  BENCH_TIMEOUT           seconds allowed per deploy or destroy [900]
  BENCH_STALL             fail when no step ends for this many seconds [120]
  BENCH_DOC               the file to write [docs/BENCHMARKS.md]
  BENCH_KEEP=1            keep the work directory (logs, results.json)

`azure.py --report RESULTS.json` rewrites the section from a kept results.json.

The lower bound (bench/README.md gives the reasoning), with O = P + 2L the
least time of one long-running write (its PUT, the operation, one poll that
sees it end):

  deploy(p) = L + 2·O + max( ceil(N/p)·H,  H + O,
                             (Wh − Bw)/Rw + L,  (Rh − Br)/Rr + L )
  destroy   = O

  L latency per call, P operation time, N = 104 VMs, p the parallelism;
  L + 2·O the chain before any host: the resource group's PUT (synchronous),
  the virtual network, then (the plan's order) the three network security
  groups, independent of each other: one O; H = 2·O + L a host: its NIC,
  then its VM, then the tags of the OS disk the VM made (a PATCH, which the
  fake answers at once; data disks would run beside the NIC); the access
  node a public IP first (H + O); ARM's write bucket Bw = 200, Rw = 10/s
  and read bucket Br = 250, Rr = 25/s, per subscription, full when the
  hosts start; Wh = 3N + 1 host writes (NIC and VM PUTs, OS disk PATCHes,
  the public IP), Rh = 3N + 1 host reads (a look-up per host, a poll per
  operation). Destroy: DELETE of the resource group, its operation, one
  poll.
"""
import base64
import json
import math
import os
import sys
import textwrap
import time

import bench  # noqa: E402  (bench/deploy/bench.py: processes, polling, /proc, report helpers)
from bench import Failed, api, env_int, fake, say  # noqa: E402
import benchdoc  # noqa: E402  (bench/benchdoc.py, on the path bench.py set)

CLUSTER = bench.CLUSTER
START, END = benchdoc.markers("azure")
LOCATION = "westeurope"
MASTERS, MASTER_TYPE = 3, "Standard_D2_v3"
ACCESS_TYPE = "Standard_A1_v2"           # the scheduler's (sch_plan.c)
# 5 groups of 20 agents each (hosts = max(ceil(cpus/vCPUs), ceil(ram/GiB))), no data disks
GROUPS = [
    {"name": "web", "instance_type": "Standard_D2_v3", "cpus": 40, "ram": 8},      # 2 vCPU, 8 GiB
    {"name": "app", "instance_type": "Standard_D4_v3", "cpus": 80, "ram": 16},     # 4 vCPU, 16 GiB
    {"name": "batch", "instance_type": "Standard_D2s_v5", "cpus": 40, "ram": 8},   # 2 vCPU, 8 GiB
    {"name": "cache", "instance_type": "Standard_D4s_v5", "cpus": 80, "ram": 16},  # 4 vCPU, 16 GiB
    {"name": "edge", "instance_type": "Standard_A2_v2", "cpus": 40, "ram": 4},     # 2 vCPU, 4 GiB
]
DISK_SIZE = 50                           # GB, the OS disk (the image's is 30)
AGENTS = 100
INSTANCES = 1 + MASTERS + AGENTS
DATA_DISKS = 0
SSH_USER, SSH_PASSWORD = "dexter", "Bench-Pa55word.2026"
# ARM's request limits per subscription (docs/azure.md; the worker's buckets are the same)
WRITE_BURST, WRITE_RATE = 200, 10.0
READ_BURST, READ_RATE = 250, 25.0
REFILL_S = max(WRITE_BURST / WRITE_RATE, READ_BURST / READ_RATE)
HOST_WRITES = 3 * INSTANCES + 1 + DATA_DISKS     # NIC, VM, OS disk tags each; the public IP; disks
HOST_READS = 3 * INSTANCES + 1 + DATA_DISKS      # a look-up each, a poll per operation
TARGET_RATIO = 1.3
NOT_FOUND = ("ResourceNotFound", "ResourceGroupNotFound", "NotFound")


# -- the bound ----------------------------------------------------------------------

def deploy_bound(p, latency, lro):
    L, P = latency / 1000.0, lro / 1000.0
    O = P + 2 * L
    chain = L + 2 * O
    H = 2 * O + L
    terms = {"parallelism waves": math.ceil(INSTANCES / p) * H,
             "access node's chain": H + O,
             "write bucket": max(0.0, (HOST_WRITES - WRITE_BURST) / WRITE_RATE) + L,
             "read bucket": max(0.0, (HOST_READS - READ_BURST) / READ_RATE) + L}
    binding = max(terms, key=terms.get)
    return chain + terms[binding], binding, terms


def destroy_bound(latency, lro):
    return lro / 1000.0 + 2 * latency / 1000.0


# -- one run --------------------------------------------------------------------------

def phases(base, generation):
    """Seconds from the deployment's request to the end of its network,
    security and last host step, and the host steps' mean and longest
    time (step.started → step.done), from the events."""
    evs = bench.events(base)
    req = [i for i, e in enumerate(evs) if e["type"] == "deployment.requested"
           and int(e["generation"]) == generation]
    if not req:
        return {}
    mine = evs[req[-1]:]
    t0 = bench.iso_seconds(mine[0]["time"])
    started = {e["step"]: bench.iso_seconds(e["time"]) for e in mine if e["type"] == "step.started"}
    kinds = {e["step"]: e.get("kind") for e in mine if e["type"] == "step.started"}
    done = {e["step"]: bench.iso_seconds(e["time"]) for e in mine if e["type"] == "step.done"}
    out = {}
    for kind in ("network", "security", "image"):
        ends = [t for s, t in done.items() if kinds.get(s) == kind]
        if ends:
            out[kind] = max(ends) - t0
    hosts = [(done[s] - started[s]) for s in done if kinds.get(s) == "host" and s in started]
    if hosts:
        out["hosts_last"] = max(t for s, t in done.items() if kinds.get(s) == "host") - t0
        out["host_mean"] = sum(hosts) / len(hosts)
        out["host_max"] = max(hosts)
    return out


def calls_summary(c):
    by = c["by_request"]
    return {"total": c["total"], "by_method": c["by_method"], "by_status": c["by_status"],
            "errors": c["by_error_code"], "polls": by.get("GET operations", 0) + by.get("GET operationResults", 0),
            "by_request": by}


def measure(base, fake_url, parallelism, timeout, procs, services, creds):
    cpu0 = bench.usage_start(services)
    dep = bench.run_command(base, "deploy", parallelism, timeout, procs, creds)
    dep["phases"] = phases(base, dep["generation"])
    st = fake(fake_url, "GET", "/_fake/state")
    vms = [r for r in st["resources"] if r["type"].lower() == "microsoft.compute/virtualmachines"]
    ok = [r for r in vms if (r.get("provisioningState") or "").lower() == "succeeded"]
    if len(vms) != INSTANCES or len(ok) != INSTANCES:
        raise Failed("deployed with %d VMs (%d Succeeded), want %d" % (len(vms), len(ok), INSTANCES))
    calls_deploy = calls_summary(fake(fake_url, "GET", "/_fake/calls"))
    des = bench.run_command(base, "destroy", parallelism, timeout, procs, creds)
    st = fake(fake_url, "GET", "/_fake/state")
    if st["resourceGroups"] or st["resources"]:
        raise Failed("destroyed, but %d groups and %d resources are left" % (len(st["resourceGroups"]),
                                                                          len(st["resources"])))
    cpu, hwm = bench.usage_end(services, cpu0)
    calls = calls_summary(fake(fake_url, "GET", "/_fake/calls"))
    fake(fake_url, "POST", "/_fake/reset")   # the next run: an empty subscription, zero counts, full buckets
    return {"parallelism": parallelism, "deploy": dep, "destroy": des, "cpu": cpu, "hwm_kb": hwm,
            "calls_deploy": calls_deploy, "calls": {"total": calls["total"], "errors": calls["errors"],
                                                    "by_status": calls["by_status"]}}


def measure_all(procs, work):
    pars = bench.parallelisms()
    workers = env_int("BENCH_WORKERS", 1)
    capacity = env_int("BENCH_WORKER_CAPACITY", 100)
    latency = env_int("BENCH_LATENCY_MS", 50)
    lro = env_int("BENCH_LRO_MS", 5000)
    timeout = env_int("BENCH_TIMEOUT", 900)
    poll = os.environ.get("BENCH_POLL_MS", "").strip()
    base_env, env, base = bench.start_core(procs, work, drop=("DEXTER_", "AWS_", "AZURE_"))
    fake_url = bench.start_fake(procs, work, "fake-arm", [
        "/usr/bin/python3", os.path.join(bench.ROOT, "tests", "fakes", "fake_arm.py"),
        "--latency-ms", str(latency), "--lro-ms", str(lro), "--seed", "1", "--quiet"], base_env)
    wenv = dict(env, DEXTER_WORKER_CAPACITY=str(capacity), NO_PROXY="127.0.0.1,localhost")
    if poll:
        wenv["DEXTER_AZURE_POLL_MS"] = poll
    for n in range(workers):
        procs.start("azure-worker-%d" % (n + 1), [os.path.join(bench.bin_dir(), "dexter-azure-worker")], wenv)
    say("work dir %s; api %s, fake ARM %s, %d worker(s)" % (work, base, fake_url, workers))

    # the cluster, and the credentials of the fake's service principal
    sdk_auth = fake(fake_url, "GET", "/_fake/sdk-auth")
    creds = {"credentials": base64.b64encode(json.dumps(sdk_auth).encode()).decode()}
    api(base, "POST", "/clusters", 201, form={"name": CLUSTER, "provider": "azure", "type": "mesos"})
    api(base, "PUT", "/clusters/%s/config" % CLUSTER, 200,
        form={"master_type": MASTER_TYPE, "masters": str(MASTERS), "location": LOCATION,
              "ssh_user": SSH_USER, "ssh_password": SSH_PASSWORD})
    bench.add_groups(base, [dict(g, disk_size=DISK_SIZE) for g in GROUPS], AGENTS)
    bench.wait_workers(base, procs, "the azure-workers")

    services = [(name, p.pid) for name, p in procs.items
                if name == "scheduler" or name.startswith("azure-worker")]
    hwm_reset = all(bench.reset_hwm(pid) for _, pid in services)
    r = dict(bench.run_info("bench/deploy/azure.py"), workers=workers, capacity=capacity,
             poll_ms=poll or "unset (the worker's default)", latency_ms=latency, lro_ms=lro,
             hwm_reset=hwm_reset, runs=[])
    for i, p in enumerate(pars):
        if i:
            say("waiting %.0f s for the worker's buckets to refill" % REFILL_S)
            time.sleep(REFILL_S)
        bound, binding, _ = deploy_bound(p, latency, lro)
        say("parallelism %d: lower bound %.1f s (%s)" % (p, bound, binding))
        r["runs"].append(measure(base, fake_url, p, timeout, procs, services, creds))
        with open(os.path.join(work, "results.json"), "w") as f:
            json.dump(r, f, indent=1)
    return r


# -- report -------------------------------------------------------------------------

def fmt_phases(ph):
    if not ph:
        return "—"
    return "%s / %s / %s; host %.1f s mean, %.1f s max" % (
        *("%.1f" % ph[k] if k in ph else "?" for k in ("network", "security", "hosts_last")),
        ph.get("host_mean", 0), ph.get("host_max", 0))


def writes(cd):
    """The writes of ARM's write bucket among the calls: PUT, PATCH, POST
    (the token's POST goes to Entra)."""
    return sum(cd["by_method"].get(m, 0) for m in ("PUT", "PATCH", "POST")) - cd["by_request"].get("POST token", 0)


def breakdown(run, r):
    """Where the deploy of run spent its time beside the bound's terms, in
    words, from its phases and the fake's counts."""
    ph, cd = run["deploy"].get("phases") or {}, run["calls_deploy"]
    if not all(k in ph for k in ("network", "security", "hosts_last", "host_mean")):
        return ""
    L, P = r["latency_ms"] / 1000.0, r["lro_ms"] / 1000.0
    O = P + 2 * L
    by = cd["by_request"]
    chain_ops = by.get("PUT Microsoft.Network/virtualNetworks", 0) + by.get(
        "PUT Microsoft.Network/networkSecurityGroups", 0)
    ops = sum(v for k, v in by.items() if k.startswith("PUT ")) - by.get("PUT Microsoft.Resources/resourceGroups", 0)
    host_reads = sum(by.get("GET " + k, 0) for k in (
        "vmSizes", "Microsoft.Network/networkInterfaces", "Microsoft.Network/publicIPAddresses",
        "Microsoft.Compute/virtualMachines", "Microsoft.Compute/disks")) + cd["polls"] - chain_ops
    p = run["parallelism"]
    hosts = ph["hosts_last"] - ph["security"]
    return textwrap.fill(("Where the time went at parallelism {p} ({wall:.1f} s against {bound:.1f} s): the chain before "
            "the hosts ended at {sec:.1f} s against the bound's {chain:.2f} s; `network` took {net:.1f} s "
            "and `security` {secd:.1f} s, {secops:.1f} × O, where the bound has one O for the three "
            "network security groups, which reference nothing but their resource group. The hosts then took "
            "{hosts:.1f} s against the bound's {waves:.1f} s ({w} × H), a host step {mean:.1f} s on average "
            "(longest {longest:.1f} s) against H = {two:.2f} s: the worker read {rpv:.1f} times per VM "
            "(the bound counts 3: a look-up and a poll per operation), {reads} host reads that ARM's read "
            "bucket (250, 25/s) spreads over at least {rb:.1f} s. Operation polls: {polls} for {ops} "
            "operations ({ppo:.2f} each), so the poll period (each Retry-After, {ra} s, honoured) does not bind. "
            "Writes (PUT, PATCH): {writes} against the bound's {wh} host writes and ARM's write bucket (200, "
            "10/s); 429 answers {t429}.").format(
        p=p, wall=run["deploy"]["wall"], bound=deploy_bound(p, r["latency_ms"], r["lro_ms"])[0],
        sec=ph["security"], chain=L + 2 * O, net=ph["network"], secd=ph["security"] - ph["network"],
        secops=(ph["security"] - ph["network"]) / O, hosts=hosts, waves=math.ceil(INSTANCES / p) * (2 * O + L),
        w=math.ceil(INSTANCES / p), mean=ph["host_mean"], longest=ph["host_max"], two=2 * O + L,
        rpv=host_reads / float(INSTANCES), reads=host_reads, rb=max(0.0, (host_reads - READ_BURST) / READ_RATE),
        polls=cd["polls"], ops=ops, ppo=cd["polls"] / float(ops or 1), ra=max(1, math.ceil(P)),
        writes=writes(cd), wh=HOST_WRITES, t429=cd["by_status"].get("429", 0)), width=88, break_on_hyphens=False)


def report(r, doc):
    rows, missed = [], []
    for run in r["runs"]:
        p = run["parallelism"]
        bound, binding, _ = deploy_bound(p, r["latency_ms"], r["lro_ms"])
        ratio = run["deploy"]["wall"] / bound
        verdict = "—"
        if p == 100:
            verdict = "pass" if ratio <= TARGET_RATIO else "**MISSED**"
            if ratio > TARGET_RATIO:
                missed.append("parallelism 100: %.2f× the bound" % ratio)
        wcpu = sum(v for k, v in run["cpu"].items() if k.startswith("azure-worker"))
        whwm = max(v for k, v in run["hwm_kb"].items() if k.startswith("azure-worker"))
        cd = run["calls_deploy"]
        throttled = cd["by_status"].get("429", 0)
        missing = cd["by_status"].get("404", 0)     # look-ups of what is not made yet
        errors = {k: v for k, v in cd["errors"].items() if k not in NOT_FOUND}
        rows.append(["%d" % p, "%.1f s" % run["deploy"]["wall"], "%.1f s (%s)" % (bound, binding),
                     "%.2f×" % ratio, "≤ %.1f×" % TARGET_RATIO if p == 100 else "—", verdict,
                     fmt_phases(run["deploy"].get("phases")),
                     "%.1f s (bound %.1f s)" % (run["destroy"]["wall"], destroy_bound(r["latency_ms"], r["lro_ms"])),
                     "%.2f / %.2f" % (run["cpu"]["scheduler"], wcpu),
                     "%.1f / %.1f" % (run["hwm_kb"]["scheduler"] / 1024.0, whwm / 1024.0),
                     "%d (%d writes: PUT, PATCH; %d GET of which %d polls and %d look-ups answered 404; %d × 429)%s" % (
                         cd["total"], writes(cd), cd["by_method"].get("GET", 0), cd["polls"],
                         missing, throttled, ("; errors " + ", ".join("%s %d" % kv for kv in sorted(errors.items())))
                         if errors else "")])
    head = ["parallelism", "deploy (PUT → deployed)", "lower bound (binding term)", "deploy / bound", "target",
            "result", "network / security / last host done (s); host step", "destroy (PUT → destroyed)",
            "CPU s: scheduler / worker", "peak RSS MB: scheduler / worker", "ARM calls in the deploy"]
    text = bench.print_table("Dexter Azure deployment benchmark", r, head, rows, missed)
    L, P = r["latency_ms"], r["lro_ms"]
    section = """{start}
## Deployments on Azure (fake ARM)

Measured by `bench/deploy/azure.py` on {date}.

- Machine: {machine}; load average {loadavg} when the run began
- Commit: `{commit}`{dirty}
- Binaries: `{bindir}`; {workers} azure-worker process(es), `DEXTER_WORKER_CAPACITY={capacity}`,
  `DEXTER_AZURE_POLL_MS` {poll}; scheduler and worker at `DEXTER_LOG_LEVEL=info`
- Cluster: location {location}; 3 × {master_type} masters, 5 groups of 20 agents
  (Standard_D2_v3, Standard_D4_v3, Standard_D2s_v5, Standard_D4s_v5, Standard_A2_v2),
  OS disks of {disk} GB, no data disks; the access node ({access_type}) with a static
  public IP: {n} VMs, each with its NIC.
- Fake ARM (`tests/fakes/fake_arm.py`, on the same cores): {L} ms per call, {P} ms per
  long-running operation (`Retry-After: {ra}`), ARM's per-subscription buckets on;
  reset between runs, and 20 s between runs so that the worker's buckets are full.
- Each parallelism: deploy, then destroy, from an empty subscription. Times are as the
  client sees them (PUT sent → GET shows `deployed`/`destroyed`, polled every 50 ms);
  the phases are from the scheduler's events (seconds after the request). CPU seconds
  cover the deploy and the destroy; peak RSS is VmHWM over them{hwm_note}.

{table}

{verdict}

{breakdown}

Lower bound, with O = P + 2L = {O:.2f} s the least time of one long-running write (its
PUT, the operation, one poll that sees it end):
`L + 2·O + max(ceil(N/p)·H, H + O, (Wh − Bw)/Rw + L, (Rh − Br)/Rr + L)`
with L = {L} ms, P = {P} ms, N = {n} VMs: `L + 2·O` is the chain before any host (the
resource group's synchronous PUT, the virtual network, then the three network security
groups, which the plan makes after the network and which reference nothing but their
resource group: one O); a host is H = 2·O + L = {H:.2f} s: its NIC, then its VM, then
the tags of the OS disk the VM made (a PATCH the fake answers at once); the access node
makes a public IP before them (H + O); ARM's write bucket Bw = 200, Rw = 10/s and read
bucket Br = 250, Rr = 25/s per subscription, full when the hosts start, against Wh =
{wh} host writes (a NIC, a VM and an OS disk PATCH each, the public IP) and Rh = {rh}
host reads (one look-up per host, one poll per operation). Destroy: O (the resource
group's DELETE, its operation, one poll). Look-ups before each write and the final GET
of each resource are not counted, so no implementation of this plan can beat the bound.
See `bench/README.md`.

Command: `{command}`
{end}""".format(start=START, end=END, date=r["date"], machine=r["machine"], loadavg=r["loadavg"],
                commit=r["commit"], dirty=" plus uncommitted changes" if r.get("dirty") else "",
                bindir=r["bin_dir"], workers=r["workers"], capacity=r["capacity"], poll=r["poll_ms"],
                location=LOCATION, master_type=MASTER_TYPE, disk=DISK_SIZE, access_type=ACCESS_TYPE,
                n=INSTANCES, L=L, P=P, ra=max(1, math.ceil(P / 1000.0)), O=(P + 2 * L) / 1000.0,
                wh=HOST_WRITES, rh=HOST_READS, H=(P + 2 * L) * 2 / 1000.0 + L / 1000.0,
                hwm_note="" if r.get("hwm_reset") else " (could not reset VmHWM: peaks are since start)",
                table=text, breakdown=breakdown(max(r["runs"], key=lambda x: x["parallelism"]), r),
                verdict=("**MISSED:** " + "; ".join(missed)) if missed else "All targets met.",
                command=r.get("command", "bench/deploy/azure.py"))
    benchdoc.write_section(doc, "azure", section)
    say("wrote %s" % doc)


def main():
    if len(sys.argv) == 1:
        bench.check_setup("dexter-scheduler", "dexter-api", "dexter-vpn", "dexter-azure-worker")
    return bench.cli(__doc__, report, measure_all)


if __name__ == "__main__":
    sys.exit(main())
