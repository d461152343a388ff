"""Redis SIGKILLed and restarted from its AOF at the worst moments of an AWS
deployment, end to end (real redis, scheduler, api and an aws-worker; fake
EC2), with `appendfsync always` and with `everysec`:

(a) during the network step;
(b) during the access node's host step;
(c) just before the deployment ends (its last step running);
(d) during a destroy;
(e) during the access node's host step, the scheduler SIGKILLed too while
    Redis is down (with what it kept for Redis) and started again before
    Redis is back.

Each time the step running when Redis died ends while it is down, so what
the scheduler learns then has to wait for Redis. The final state must equal
an undisturbed run's: the hosts in the fake EC2, the resources and jobs
Redis records, `_accessip` and the VPN answer that depends on it; in the
events every step attempt is started once and ends once, each step is done
once, and no attempt number is used twice, nor sent to a worker twice or
without its start recorded first.

The scheduler runs with DEXTER_LEASE_MS=3000, so what (e) loses comes back
within seconds.
"""
import datetime
import json
import re
import shutil
import tempfile
import time
from collections import Counter

import pytest
import requests

from aws_helpers import (api, assert_deferred, check_cluster, check_events, check_no_duplicates,
                         check_nothing_left, events, generation_events, make_aws_cluster, pem_key,
                         put_deployment, short, wait_deployment, wait_finished_event)
from conftest import Stack, wait_until

FAST = {"DEXTER_HEARTBEAT_MS": "200", "DEXTER_LEASE_MS": "3000"}
NAME = "faults"
GROUPS = [{"name": "g1", "instance_type": "m5.large", "cpus": 8, "ram": 8}]     # 4 hosts
SPECS = {"g1": {"hosts": 4, "instance_type": "m5.large", "disk_size": 20, "disks": []}}
HOSTS = 1 + 1 + 4               # access, one master, the group
ENDED = ("step.done", "step.retry", "step.failed")
OUTAGE_S = 60                   # bound on the step ending while Redis is down
END_S = 120                     # bound on a deployment ending once Redis is back


# ----------------------------------------------------------------- helpers --

def start_stack(stack, fsync):
    """Redis as asked, the fake EC2 (slow enough for a step to be caught
    running) and one aws-worker."""
    set_fsync(stack, fsync)
    stack.start_fake_ec2(latency_ms=100, pending_ms=1000, seed=21)
    stack.start_aws_worker()


def set_fsync(stack, fsync):
    stack.redis_client().config_set("appendfsync", fsync)


def deployment_or_none(stack):
    """GET deployment, or None while the api answers 503 (Redis away)."""
    try:
        r = requests.get(stack.url("/clusters/%s/deployment" % NAME), timeout=30)
    except requests.RequestException:
        return None
    if r.status_code == 503:
        return None
    assert r.status_code == 200, r.text[:500]
    return r.json()


def wait_step_started(stack, generation, step):
    """Until `step` of `generation` has started (and not ended)."""
    def started():
        evs = generation_events(events(stack, NAME), generation)
        assert not any(e["type"] == "deployment.finished" for e in evs), \
            "the deployment ended before %s started:\n%s" % (step, short(evs[-20:]))
        return any(e["type"] == "step.started" and e["step"] == step for e in evs) and \
            not any(e["type"] in ENDED and e["step"] == step for e in evs)
    wait_until(started, 60, "step %s to start" % step)


def wait_all_started(stack, generation, total):
    """Until every step of `generation` has started: the last one runs."""
    def started():
        evs = generation_events(events(stack, NAME), generation)
        assert not any(e["type"] == "deployment.finished" for e in evs), \
            "the deployment ended before its last step was caught:\n" + short(evs[-20:])
        return len({e["step"] for e in evs if e["type"] == "step.started"}) == total
    wait_until(started, 60, "every step to start")


def kill_redis(stack):
    """SIGKILL Redis; the wall-clock time it died."""
    stack.redis.kill()
    return time.time()


def scheduler_heard(stack, line):
    """Until the scheduler's log says `line`: what it learns with Redis down."""
    wait_until(lambda: line in stack.scheduler.log(), OUTAGE_S, "the scheduler to log %r" % line)
    assert stack.scheduler.alive(), "the scheduler died while Redis was down:\n" + \
        stack.scheduler.log()[-3000:]


def restart_redis(stack, fsync):
    stack.start_redis()                 # same port, same dir: loads the AOF
    set_fsync(stack, fsync)


def wait_ended(stack, generation, command="deploy"):
    """Until `generation` has ended, tolerating 503 while Redis comes back:
    the deployment and its events."""
    def ended():
        d = deployment_or_none(stack)
        return d if d and d["generation"] == generation and \
            d["state"] not in ("deploying", "destroying") else None
    wait_until(ended, END_S, "generation %d to end" % generation)
    return wait_deployment(stack, NAME, generation, command), wait_finished_event(stack, NAME, generation)


def after(evs, etype, died, step=None):
    """The first event of type (of step) is there and was made after Redis
    died: what the scheduler learnt while Redis was down was not lost."""
    found = [e for e in evs if e["type"] == etype and (step is None or e["step"] == step)]
    assert found, "no %s %s: lost while Redis was down\n%s" % (etype, step or "", short(evs))
    at = datetime.datetime.strptime(found[0]["time"].replace("Z", "+0000"),
                                    "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    assert at >= died - 0.01, "%s %s came before Redis died: the outage missed it\n%s" % (
        etype, step or "", short(evs))


def recorded(stack):
    """What Redis and the fake EC2 hold of the cluster, in terms that do not
    depend on the run (no ids, no times)."""
    r = stack.redis_client()
    key = "dexter:{%s}:" % NAME
    dep = r.hgetall(key + "deployment")
    live = [i for i in stack.fake_state()["instances"]
            if i["state"] != "terminated" and i.get("tags", {}).get("dexter:cluster") == NAME]
    return {
        "resources": {k: json.loads(v)["kind"] for k, v in r.hgetall(key + "resources").items()},
        "jobs": {k: json.loads(v)["status"] for k, v in r.hgetall(key + "jobs").items()},
        "deployment": {k: dep.get(k) for k in ("state", "command", "generation", "observed_generation",
                                               "steps_done", "steps_total", "current", "waiting",
                                               "last_error")},
        "accessip": bool(dep.get("accessip")),
        "credentials": r.exists(key + "credentials"),
        "hosts": sorted(i["tags"].get("dexter:host") for i in live),
    }


def check_attempts(stack, evs):
    """Every step attempt started once and ended once (done, retry, failed,
    or taken back: requeued as the next attempt); one step.done per step,
    of its last attempt; no attempt sent to a worker twice, nor before its
    start was recorded."""
    started, ended, done = Counter(), Counter(), {}
    for e in evs:
        if e["type"] == "step.started":
            started[(e["step"], e["attempt"])] += 1
        elif e["type"] in ENDED:
            ended[(e["step"], e["attempt"])] += 1
        elif e["type"] == "step.requeued":
            ended[(e["step"], e["attempt"] - 1)] += 1
        if e["type"] == "step.done":
            assert e["step"] not in done, "step %s done twice:\n%s" % (e["step"], short(evs))
            done[e["step"]] = e["attempt"]
    twice = [k for k, n in started.items() if n > 1]
    assert not twice, "attempts started twice: %s\n%s" % (twice, short(evs))
    assert ended == started, "attempts not started and ended once each:\nstarted %s\nended %s\n%s" % (
        sorted(started), sorted(ended), short(evs))
    for step, attempt in done.items():
        assert attempt == max(a for s, a in started if s == step), (step, attempt)
    # what the workers ran: each attempt once, and only attempts recorded first
    ran = Counter()
    for proc in stack.aws_workers:
        for job, attempt in re.findall(r"worker: job (\S+) attempt (\d+) started", proc.log()):
            cluster, generation, step = job.split(":", 2)
            if cluster == NAME and int(generation) == evs[0]["generation"]:
                ran[(step, int(attempt))] += 1
    assert all(n == 1 for n in ran.values()), "attempts run twice: %s" % ran
    unrecorded = set(ran) - set(started)
    assert not unrecorded, "attempts sent before their start was recorded: %s" % sorted(unrecorded)
    return done


def check_deployed(stack, baseline, evs, d):
    check_events(evs, d["generation"], "deployed")
    done = check_attempts(stack, evs)
    assert set(done) == set(baseline["deploy"]["jobs"]), sorted(done)
    assert recorded(stack) == baseline["deploy"]
    _, st = check_cluster(stack, NAME, 1, SPECS, deployment=d)     # _accessip is the EIP's
    check_no_duplicates(st, NAME, HOSTS)
    # The vpn.profile step ran: the profile names the access node
    status, body = api(stack, "GET", "/clusters/%s/deployment/vpn" % NAME)
    assert status == 200 and "\nremote %s 1194\n" % d["_accessip"] in body, (status, body)
    assert_deferred(stack)


def deploy_gen(stack):
    return put_deployment(stack, NAME, parallelism=10)["generation"]


# ---------------------------------------------------------------- baseline --

@pytest.fixture(scope="module")
def pem(tmp_path_factory):
    return pem_key(str(tmp_path_factory.mktemp("faults") / "key.pem"))


@pytest.fixture(scope="module")
def baseline(pem):
    """What an undisturbed deploy and destroy leave."""
    d = tempfile.mkdtemp(prefix="dexter-e2e-")
    stack = Stack(d, sched_env=FAST).start()
    try:
        start_stack(stack, "always")
        make_aws_cluster(stack, NAME, pem, GROUPS)
        gen = deploy_gen(stack)
        wait_deployment(stack, NAME, gen, timeout=END_S)
        deployed = recorded(stack)
        assert deployed["deployment"]["state"] == "deployed" and deployed["accessip"], deployed
        gen = put_deployment(stack, NAME, "destroy")["generation"]
        wait_deployment(stack, NAME, gen, "destroy", timeout=END_S)
        destroyed = recorded(stack)
        yield {"deploy": deployed, "destroy": destroyed}
    finally:
        try:
            stack.stop()
        finally:
            shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------- tests --

FSYNC = pytest.mark.parametrize("fsync", ["always", "everysec"])


def outage_during_step(stack, fsync, step):
    """Kills Redis while `step` of a new deployment runs, keeps it down
    until the scheduler has heard the step end, and starts it again.
    Returns the generation and when Redis died."""
    gen = deploy_gen(stack)
    wait_step_started(stack, gen, step)
    died = kill_redis(stack)
    scheduler_heard(stack, "deployment %s: step %s attempt 1 done" % (NAME, step))
    restart_redis(stack, fsync)
    return gen, died


@FSYNC
@pytest.mark.parametrize("step", ["network", "host.access"])
def test_redis_killed_during_a_step(stack_factory, baseline, pem, fsync, step):
    """(a), (b) The step's result comes while Redis is down: it is kept and
    written once Redis is back (finding 1: the access node's, and with it
    _accessip)."""
    stack = stack_factory(sched_env=FAST)
    start_stack(stack, fsync)
    make_aws_cluster(stack, NAME, pem, GROUPS)
    gen, died = outage_during_step(stack, fsync, step)
    d, evs = wait_ended(stack, gen)
    after(evs, "step.done", died, step)
    check_deployed(stack, baseline, evs, d)


@FSYNC
def test_redis_killed_before_the_end(stack_factory, baseline, pem, fsync):
    """(c) Redis dies while the last step runs: the end of the deployment
    is written once Redis is back, derived from what is known."""
    stack = stack_factory(sched_env=FAST)
    start_stack(stack, fsync)
    make_aws_cluster(stack, NAME, pem, GROUPS)
    gen = deploy_gen(stack)
    wait_all_started(stack, gen, len(baseline["deploy"]["jobs"]))
    died = kill_redis(stack)
    scheduler_heard(stack, "deployment %s generation %d deployed" % (NAME, gen))
    restart_redis(stack, fsync)
    d, evs = wait_ended(stack, gen)
    after(evs, "deployment.finished", died)
    check_deployed(stack, baseline, evs, d)


@FSYNC
def test_redis_killed_during_a_destroy(stack_factory, baseline, pem, fsync):
    """(d) Redis dies while the instances are destroyed: the destroy ends as
    an undisturbed one does, nothing left anywhere."""
    stack = stack_factory(sched_env=FAST)
    start_stack(stack, fsync)
    make_aws_cluster(stack, NAME, pem, GROUPS)
    wait_deployment(stack, NAME, deploy_gen(stack), timeout=END_S)
    gen = put_deployment(stack, NAME, "destroy")["generation"]
    wait_step_started(stack, gen, "destroy.instances")
    died = kill_redis(stack)
    scheduler_heard(stack, "deployment %s: step destroy.instances attempt 1 done" % NAME)
    restart_redis(stack, fsync)
    d, evs = wait_ended(stack, gen, "destroy")
    after(evs, "step.done", died, "destroy.instances")
    check_events(evs, gen, "destroyed", command="destroy")
    check_attempts(stack, evs)
    assert d["_accessip"] is None, d
    assert recorded(stack) == baseline["destroy"]
    check_nothing_left(stack, NAME)


@FSYNC
def test_scheduler_killed_while_redis_is_down(stack_factory, baseline, pem, fsync):
    """(e) What the scheduler kept for Redis dies with it; the scheduler
    started while Redis is down waits for it, then finds from Redis alone
    what ran: the access node's step, recorded as running, runs again as
    attempt 2, never as 1, and the end is the same."""
    stack = stack_factory(sched_env=FAST)
    start_stack(stack, fsync)
    make_aws_cluster(stack, NAME, pem, GROUPS)
    gen = deploy_gen(stack)
    wait_step_started(stack, gen, "host.access")
    kill_redis(stack)
    scheduler_heard(stack, "deployment %s: step host.access attempt 1 done" % NAME)
    stack.scheduler.kill()
    stack.start_scheduler()
    time.sleep(2.0)                     # it waits for Redis: workers come, nothing is judged
    assert stack.scheduler.alive(), "the scheduler exits when Redis is down:\n" + \
        stack.scheduler.log()[-3000:]
    assert deployment_or_none(stack) is None
    restart_redis(stack, fsync)
    d, evs = wait_ended(stack, gen)
    requeued = [e for e in evs if e["type"] == "step.requeued" and e["step"] == "host.access"]
    assert requeued and requeued[0]["attempt"] == 2, short(evs)
    check_deployed(stack, baseline, evs, d)
