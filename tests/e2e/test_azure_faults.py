"""Azure deployments under faults, end to end (real redis, scheduler, api and
azure-workers; fake ARM):

(a) the azure-worker SIGKILLed while it runs host steps whose VMs are being
    created, and a second one started: the jobs are re-queued (step.requeued)
    and finished by the new worker, and the cluster has exactly the right
    resources: one VM and one NIC per host, nothing orphaned;
(b) the scheduler SIGKILLed mid-deployment and restarted on the same ports:
    the deployment resumes and ends with exactly the right resources;
(c) 10 % injected 429 and 5 % 500/503 on every ARM call: deploy and destroy
    still finish, with the right resources and then none;
(d) every token expires mid-deployment (the fake's /_fake/expire-tokens):
    the worker fetches a new one and the deployment ends right.

The scheduler runs with DEXTER_HEARTBEAT_MS=400 and DEXTER_LEASE_MS=3000 so
a dead worker's jobs come back within about 1.2 s (three missed heartbeats),
while a live worker slowed by ASan on a busy machine is not taken for dead.
"""
import time

from aws_helpers import events, generation_events, short
from azure_helpers import (NIC_TYPE, VM_TYPE, api, check_cluster, check_events, check_nothing_left, deploy,
                           diagnose, make_azure_cluster, of_type, planned_steps, put_deployment, wait_deployment,
                           wait_finished_event)
from test_aws_faults import in_flight

FAST = {"DEXTER_HEARTBEAT_MS": "400", "DEXTER_LEASE_MS": "3000"}


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
        hit = pred(evs, stack.arm_state())
        if hit:
            return hit, evs
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s:\n%s" % (what, diagnose(stack, name)))


def creating_vms(state):
    return [r for r in of_type(state, VM_TYPE) if r["provisioningState"] != "Succeeded"]


def check_exact(stack, name, masters, deployment):
    """The cluster as the spec says, and no VM or NIC beyond one per host."""
    spec = specs(stack, name)
    by_group, st = check_cluster(stack, name, masters, spec, deployment=deployment)
    hosts = 1 + masters + sum(g["hosts"] for g in spec.values())
    assert len(of_type(st, VM_TYPE)) == hosts and len(of_type(st, NIC_TYPE)) == hosts, \
        "%d VMs and %d NICs for %d hosts" % (len(of_type(st, VM_TYPE)), len(of_type(st, NIC_TYPE)), hosts)
    return by_group, st


# ------------------------------------------------------------------ tests --

def test_worker_killed_mid_deployment(stack_factory):
    """(a) SIGKILL the only azure-worker while it runs host steps and VMs
    are being created, then start a second one: the dead worker's jobs are
    re-queued and done by the new one, nothing made twice or left over.
    Operations take 1.2 s, so the new worker finds VMs still being made
    (it waits for them, and writes nothing: check_cluster wants every VM
    changed by one PUT only)."""
    stack = stack_factory(sched_env=FAST)
    stack.start_fake_arm(lro_ms=1200, seed=21)
    first = stack.start_azure_worker()
    first_name = stack.worker_name(first)
    name = "killworker"
    hosts = make_azure_cluster(stack, name, [
        {"name": "g1", "instance_type": "Standard_A2_v2", "cpus": 12, "ram": 4,       # 6 hosts
         "customhwconf": {"disks": [{"size": 10}]}}])
    assert hosts == {"g1": 6}
    gen = put_deployment(stack, name, parallelism=10)["generation"]

    def victim(evs, state):
        # host steps running on the worker while VMs are being created
        if not creating_vms(state):
            return None
        running = [s for s in in_flight(evs).get(first_name, []) if s[0].startswith("host.")]
        return running or None
    killed_steps, evs = wait_mid_deployment(stack, name, gen, victim,
                                            "host steps running while VMs are created")
    n_before = len(evs)
    first.kill()
    print("killed %s while it ran %s" % (first_name, killed_steps))
    second = stack.start_azure_worker()
    second_name = stack.worker_name(second)

    d = wait_deployment(stack, name, gen, timeout=90)
    evs = wait_finished_event(stack, name, gen)
    check_events(evs, gen, "deployed", planned_steps(1, hosts))
    later = evs[n_before:]
    assert not [e for e in later if e.get("worker") == first_name and e["type"] == "step.done"], \
        "a SIGKILLed worker cannot finish steps:\n" + short(later)
    for step, attempt, _ in killed_steps:
        requeued = [e for e in later if e["type"] == "step.requeued" and e["step"] == step
                    and int(e["attempt"]) >= int(attempt)]
        assert requeued and requeued[0].get("reason"), "%s (attempt %s) of the dead worker was not " \
            "re-queued:\n%s" % (step, attempt, short(later))
        redone = [e for e in later if e["type"] == "step.done" and e["step"] == step]
        assert redone and redone[-1]["worker"] == second_name and int(redone[-1]["attempt"]) > int(attempt), \
            "%s was not finished by %s with a higher attempt:\n%s" % (step, second_name, short(later))
    check_exact(stack, name, 1, d)


def test_scheduler_killed_mid_deployment(stack_factory):
    """(b) SIGKILL the scheduler while host steps run, restart it on the same
    ports: the deployment resumes and ends right, nothing twice."""
    stack = stack_factory(sched_env=FAST)
    stack.start_fake_arm(lro_ms=500, seed=22)
    stack.start_azure_worker()
    name = "killsched"
    hosts = make_azure_cluster(stack, name, [
        {"name": "g1", "instance_type": "Standard_A2_v2", "cpus": 16, "ram": 4}])   # 8 hosts
    gen = put_deployment(stack, name, parallelism=4)["generation"]

    def mid(evs, state):
        done = [e for e in evs if e["type"] == "step.done" and e["step"].startswith("host.")]
        running = [s for steps in in_flight(evs).values() for s in steps if s[0].startswith("host.")]
        return (done, running) if done and running else None
    (done, running), evs = wait_mid_deployment(stack, name, gen, mid, "some host steps done and others running")
    stack.scheduler.kill()
    print("killed the scheduler with %d host steps done and %s running" % (len(done), running))
    stack.start_scheduler()
    stack.wait_ready(30)

    d = wait_deployment(stack, name, gen, timeout=90)
    assert d["generation"] == gen, d
    evs = wait_finished_event(stack, name, gen)
    check_events(evs, gen, "deployed", planned_steps(1, hosts))
    check_exact(stack, name, 1, d)


def test_throttling_and_server_errors(stack_factory):
    """(c) 10 % TooManyRequests and 5 % InternalServerError or
    ServiceUnavailable on every ARM call: the deployment and the destroy
    still finish, with the right resources and then none."""
    stack = stack_factory(sched_env=FAST)
    stack.start_fake_arm(throttle_rate=0.1, error_rate=0.05, seed=23)
    stack.start_azure_worker()
    name = "flaky"
    hosts = make_azure_cluster(stack, name, [
        {"name": "g1", "instance_type": "Standard_A2_v2", "cpus": 8, "ram": 4,       # 4 hosts
         "customhwconf": {"disks": [{"size": 10}]}}])
    d, evs = deploy(stack, name, parallelism=10, timeout=120)
    check_events(evs, d["generation"], "deployed", planned_steps(1, hosts))
    check_exact(stack, name, 1, d)
    errors = stack.arm_calls()["by_error_code"]
    assert errors.get("TooManyRequests", 0) > 0, "the fake injected no 429? %s" % errors
    assert errors.get("InternalServerError", 0) + errors.get("ServiceUnavailable", 0) > 0, \
        "the fake injected no 5xx? %s" % errors
    d, evs = deploy(stack, name, "destroy", timeout=120)
    check_events(evs, d["generation"], "destroyed", ["destroy.group"], command="destroy")
    check_nothing_left(stack, name)


def test_token_expires_mid_deployment(stack_factory):
    """(d) Every token the fake issued expires while host steps run: ARM
    answers 401 ExpiredAuthenticationToken, the worker fetches a new token
    and the deployment ends right."""
    stack = stack_factory(sched_env=FAST)
    stack.start_fake_arm(lro_ms=500, seed=24)
    stack.start_azure_worker()
    name = "expiry"
    hosts = make_azure_cluster(stack, name, [
        {"name": "g1", "instance_type": "Standard_A2_v2", "cpus": 8, "ram": 4}])    # 4 hosts
    gen = put_deployment(stack, name, parallelism=3)["generation"]

    def mid(evs, state):
        running = [s for steps in in_flight(evs).values() for s in steps if s[0].startswith("host.")]
        return running if running and creating_vms(state) else None
    wait_mid_deployment(stack, name, gen, mid, "host steps running while VMs are created")
    tokens_before = stack.arm_calls()["by_request"].get("POST token", 0)
    assert stack.arm("POST", "/_fake/expire-tokens")["expired"] >= 1

    d = wait_deployment(stack, name, gen, timeout=90)
    evs = wait_finished_event(stack, name, gen)
    check_events(evs, gen, "deployed", planned_steps(1, hosts))
    check_exact(stack, name, 1, d)
    calls = stack.arm_calls()
    assert calls["by_error_code"].get("ExpiredAuthenticationToken", 0) >= 1, calls["by_error_code"]
    assert calls["by_request"].get("POST token", 0) > tokens_before, calls["by_request"]
    failed = [e for e in evs if e["type"] in ("step.failed", "step.retry")]
    assert not failed, "an expired token must be replaced inside the call:\n" + short(failed)
