"""AWS deployments under faults, end to end (real redis, scheduler, api and
aws-workers; fake EC2):

(a) two aws-workers, one SIGKILLed while it runs host steps: its jobs are
    re-queued (step.requeued) and finished by the other worker, and the cluster
    has exactly the right instances, none twice (one instance and one client
    token per dexter:host, terminated ones included);
(b) the scheduler SIGKILLed mid-deployment and restarted on the same ports:
    the deployment resumes and ends with exactly the right resources;
(c) 10 % throttling and 5 % 5xx from EC2: deploy and destroy still finish;
(d) three aws-workers: one deployment's steps run on several of them; a PUT
    while the destroy runs is refused (409);
(e) a deployment requested before any aws-worker exists waits, says why, and
    runs once one starts; the events read page by page equal one read.

The scheduler runs with DEXTER_HEARTBEAT_MS=200 and DEXTER_LEASE_MS=3000 so
a dead worker's jobs come back within about a second.
"""
import datetime
import time
from collections import Counter, defaultdict

from aws_helpers import (api, assert_deferred, check_cluster, check_events, check_no_duplicates,
                         check_nothing_left, deploy, diagnose, events, generation_events, get_deployment,
                         make_aws_cluster, pem_key, planned_steps, put_deployment, run_instances_tokens,
                         short, wait_deployment, wait_finished_event)

FAST = {"DEXTER_HEARTBEAT_MS": "200", "DEXTER_LEASE_MS": "3000"}
ENDED = ("step.done", "step.failed", "step.retry", "step.requeued")


def in_flight(evs, younger_than=None):
    """{worker: [(step, attempt, kind)]}: steps started and not ended yet
    (and, with younger_than, started less than that many seconds ago)."""
    running = {}
    for e in evs:
        key = (e.get("step"), str(e.get("attempt")))
        if e["type"] == "step.started":
            running[key] = (e["worker"], e.get("kind"), e["time"])
        elif e["type"] in ENDED:
            running.pop(key, None)
    out = defaultdict(list)
    now = time.time()
    for (step, attempt), (worker, kind, at) in running.items():
        if younger_than is None or now - iso_seconds(at) < younger_than:
            out[worker].append((step, attempt, kind))
    return out


def iso_seconds(t):
    return datetime.datetime.strptime(t.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def specs(stack, name):
    _, gl = api(stack, "GET", "/clusters/%s/groups" % name, 200)
    return {g["name"]: {"hosts": g["hosts"], "instance_type": g["instance_type"], "disk_size": g["disk_size"],
                        "disks": g["customhwconf"]["disks"]} for g in gl["groups"]}


def wait_mid_deployment(stack, name, generation, pred, what, timeout=60):
    """Polls the events of `generation` until pred(evs, state) is true; fails
    if the deployment ends first (the fault would not be mid-deployment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        evs = generation_events(events(stack, name), generation)
        if any(e["type"] == "deployment.finished" for e in evs):
            raise AssertionError("the deployment ended before %s:\n%s" % (what, short(evs[-30:])))
        hit = pred(evs, stack.fake_state())
        if hit:
            return hit, evs
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s:\n%s" % (what, diagnose(stack, name)))


def cluster(stack, tmp_path, name, groups, masters=1):
    pem = pem_key(str(tmp_path / ("%s.pem" % name)))
    return make_aws_cluster(stack, name, pem, groups, masters=masters)


# ------------------------------------------------------------------ tests --

def test_worker_killed_mid_deployment(stack_factory, tmp_path):
    """(a) Two workers; SIGKILL the one running host steps whose instances
    already exist (pending): its jobs are re-queued and done by the other,
    no instance twice."""
    stack = stack_factory(sched_env=FAST)
    stack.start_fake_ec2(latency_ms=60, pending_ms=1500, seed=11)
    workers = [stack.start_aws_worker(), stack.start_aws_worker()]
    names = {stack.worker_name(w): w for w in workers}
    name = "killworker"
    hosts = cluster(stack, tmp_path, name, [
        {"name": "g1", "instance_type": "m5.large", "cpus": 24, "ram": 8},    # 12 hosts
        {"name": "g2", "instance_type": "c5.large", "cpus": 8, "ram": 4}])   # 4 hosts
    assert hosts == {"g1": 12, "g2": 4}
    body = put_deployment(stack, name, parallelism=20)
    gen = body["generation"]
    # a second PUT while it runs: 409
    again = put_deployment(stack, name, parallelism=20, expect=409)
    assert again["code"] == "CONFLICT", again
    assert get_deployment(stack, name)["generation"] == gen

    def victim(evs, state):
        # a worker whose host steps started less than 0.8 s ago (so they are
        # still running when it dies: instances take 1.5 s to run) while
        # launched instances are pending
        pending = [i for i in state["instances"] if i["state"] == "pending"]
        if not pending:
            return None
        for worker, steps in in_flight(evs, younger_than=0.8).items():
            hosts_running = [s for s in steps if s[0].startswith("host.")]
            if worker in names and hosts_running:
                return worker, hosts_running
        return None
    (worker, killed_steps), evs = wait_mid_deployment(
        stack, name, gen, victim, "a worker running host steps with pending instances")
    n_before = len(evs)
    names[worker].kill()
    survivor = next(n for n in names if n != worker)
    print("killed %s while it ran %s" % (worker, killed_steps))

    d = wait_deployment(stack, name, gen, timeout=90)
    evs = wait_finished_event(stack, name, gen)
    check_events(evs, gen, "deployed", planned_steps(1, hosts))
    later = evs[n_before:]
    assert not [e for e in later if e.get("worker") == worker and e["type"] == "step.done"], \
        "a SIGKILLed worker cannot finish steps:\n" + short(later)
    for step, attempt, _ in killed_steps:
        # (its attempt: the one taken back, or the next one; the contract does not say)
        requeued = [e for e in later if e["type"] == "step.requeued" and e["step"] == step
                    and int(e["attempt"]) >= int(attempt)]
        assert requeued and requeued[0].get("reason"), "%s (attempt %s) of the dead worker was not " \
            "re-queued:\n%s" % (step, attempt, short(later))
        redone = [e for e in later if e["type"] == "step.done" and e["step"] == step]
        assert redone and redone[-1]["worker"] == survivor and int(redone[-1]["attempt"]) > int(attempt), \
            "%s was not finished by %s with a higher attempt:\n%s" % (step, survivor, short(later))
    by_group, st = check_cluster(stack, name, 1, specs(stack, name), deployment=d)
    check_no_duplicates(st, name, 1 + 1 + 16)
    tokens = run_instances_tokens(stack)
    assert len(set(tokens)) == 18, "RunInstances succeeded with %d distinct client tokens: %s" % (
        len(set(tokens)), Counter(tokens))
    assert_deferred(stack)


def test_scheduler_killed_mid_deployment(stack_factory, tmp_path):
    """(b) SIGKILL the scheduler while host steps run, restart it on the same
    ports: the deployment resumes and ends right, nothing twice."""
    stack = stack_factory(sched_env=FAST)
    stack.start_fake_ec2(latency_ms=60, pending_ms=1500, seed=12)
    stack.start_aws_worker()
    stack.start_aws_worker()
    name = "killsched"
    hosts = cluster(stack, tmp_path, name, [
        {"name": "g1", "instance_type": "m5.large", "cpus": 20, "ram": 8}])   # 10 hosts
    body = put_deployment(stack, name, parallelism=20)
    gen = body["generation"]

    def mid(evs, state):
        done = [e for e in evs if e["type"] == "step.done" and e["step"].startswith("host.")]
        running = [s for steps in in_flight(evs).values() for s in steps if s[0].startswith("host.")]
        return (done, running) if done and running else None
    (done, running), evs = wait_mid_deployment(stack, name, gen, mid,
                                               "some host steps done and others running")
    stack.scheduler.kill()
    print("killed the scheduler with %d host steps done and %s running" % (len(done), running))
    time.sleep(0.5)
    stack.start_scheduler()
    stack.wait_ready(30)

    d = wait_deployment(stack, name, gen, timeout=90)
    assert d["generation"] == gen, d
    evs = wait_finished_event(stack, name, gen)
    check_events(evs, gen, "deployed", planned_steps(1, hosts))
    by_group, st = check_cluster(stack, name, 1, specs(stack, name), deployment=d)
    check_no_duplicates(st, name, 1 + 1 + 10)
    tokens = run_instances_tokens(stack)
    assert len(set(tokens)) == 12, Counter(tokens)
    assert_deferred(stack)


def test_throttling_and_server_errors(stack_factory, tmp_path):
    """(c) 10 % RequestLimitExceeded and 5 % InternalError on every EC2 call:
    the deployment and the destroy still finish, with the right resources."""
    stack = stack_factory(sched_env=FAST)
    stack.start_fake_ec2(throttle_rate=0.1, error_rate=0.05, seed=13)
    stack.start_aws_worker()
    name = "flaky"
    hosts = cluster(stack, tmp_path, name, [
        {"name": "g1", "instance_type": "m5.large", "cpus": 8, "ram": 8,     # 4 hosts
         "customhwconf": {"disks": [{"size": 10}]}}])
    d, evs = deploy(stack, name, parallelism=10, timeout=120)
    check_events(evs, d["generation"], "deployed", planned_steps(1, hosts))
    by_group, st = check_cluster(stack, name, 1, specs(stack, name), deployment=d)
    check_no_duplicates(st, name, 1 + 1 + 4)
    errors = stack.fake_calls()["by_error_code"]
    assert errors.get("RequestLimitExceeded", 0) > 0 and errors.get("InternalError", 0) > 0, \
        "the fake injected no faults? %s" % errors
    d, evs = deploy(stack, name, "destroy", timeout=120)
    check_events(evs, d["generation"], "destroyed", command="destroy")
    check_nothing_left(stack, name)
    assert_deferred(stack)


def test_three_workers_share_a_deployment(stack_factory, tmp_path):
    """(d) Three aws-workers: the steps of one deployment run on several of
    them (step.started names the worker, host:pid)."""
    stack = stack_factory(sched_env=FAST)
    stack.start_fake_ec2(latency_ms=50, pending_ms=500, seed=14)
    workers = [stack.start_aws_worker() for _ in range(3)]
    names = {stack.worker_name(w) for w in workers}
    name = "spread"
    hosts = cluster(stack, tmp_path, name, [
        {"name": "g1", "instance_type": "m5.large", "cpus": 24, "ram": 8},    # 12 hosts
        {"name": "g2", "instance_type": "m5.large", "cpus": 16, "ram": 8}])   # 8 hosts
    d, evs = deploy(stack, name, parallelism=30, timeout=120)
    check_events(evs, d["generation"], "deployed", planned_steps(1, hosts))
    check_cluster(stack, name, 1, specs(stack, name), deployment=d)
    # The vpn steps run on the stack's vpn worker, every other on the aws-workers
    vpn = {stack.worker_name(w) for w in stack.vpn_workers}
    assert {e["worker"] for e in evs if e["type"] == "step.started"
            and e["kind"].startswith("vpn.")} <= vpn, short(evs)
    per_worker = Counter(e["worker"] for e in evs if e["type"] == "step.started"
                         and not e["kind"].startswith("vpn."))
    print("steps started per worker: %s" % dict(per_worker))
    assert set(per_worker) <= names, "unknown workers in the events: %s vs %s" % (per_worker, names)
    assert len(per_worker) >= 2, "one deployment of %d steps ran on one worker of three: %s" % (
        sum(per_worker.values()), dict(per_worker))
    # destroy; a PUT while it runs is refused
    body = put_deployment(stack, name, "destroy")
    again = put_deployment(stack, name, "deploy", expect=409)
    assert again["code"] == "CONFLICT", again
    wait_deployment(stack, name, body["generation"], "destroy", timeout=60)
    check_events(wait_finished_event(stack, name, body["generation"]), body["generation"], "destroyed",
                 command="destroy")
    check_nothing_left(stack, name)
    assert_deferred(stack)


def test_deployment_waits_for_a_worker(stack_factory, tmp_path):
    """(e) Deploy with no aws-worker connected: the deployment is accepted and
    says why it waits; once a worker starts it runs to the end (workers and the
    scheduler may start in any order). The events read page by page (after,
    count) are the events read at once."""
    stack = stack_factory(sched_env=FAST)
    stack.start_fake_ec2()
    name = "late"
    hosts = cluster(stack, tmp_path, name, [{"name": "g1", "instance_type": "m5.large", "cpus": 4, "ram": 8}])
    body = put_deployment(stack, name)
    gen = body["generation"]
    time.sleep(1.0)
    d = get_deployment(stack, name)
    assert d["state"] == "deploying" and isinstance(d["waiting"], str) and d["waiting"], d
    assert d["progress"]["steps_done"] == 0, d
    assert stack.fake_calls()["total"] == 0
    stack.start_aws_worker()
    d = wait_deployment(stack, name, gen, timeout=60)
    assert d["waiting"] is None, d
    evs = wait_finished_event(stack, name, gen)
    check_events(evs, gen, "deployed", planned_steps(1, hosts))
    check_cluster(stack, name, 1, specs(stack, name), deployment=d)
    # paging
    everything = events(stack, name)
    paged, after = [], None
    for _ in range(len(everything) + 2):
        params = {"count": "3"}
        if after:
            params["after"] = after
        _, page = api(stack, "GET", "/clusters/%s/deployment/events" % name, 200, params=params)
        assert len(page["events"]) <= 3, page
        if not page["events"]:
            break
        paged += page["events"]
        after = page["events"][-1]["id"]
    assert paged == everything
    assert_deferred(stack)
