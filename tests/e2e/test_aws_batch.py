"""Batched aws deploys end to end (issue 18): with DEXTER_AWS_BATCH_MAX on,
an agent group's hosts are launched by one `hosts` step, one RunInstances per
run of missing slots, against a real redis-server, dexter-scheduler,
dexter-api and dexter-aws-worker, with only EC2 faked (tests/fakes/fake_ec2.py,
its RunInstances buckets on).

Two groups deploy with one RunInstances each (plus the access node's and the
master's), every agent found at its slot by its dexter:batch tag and launch
index, no dexter:host tag on it, and the events name each host (host.done:
its host.GROUP.SLOT, the batch, the instance, its private IP). A repeated
deploy launches nothing and keeps every instance. Scale up launches only the
new slots, in one new batch; scale down terminates the newest in one
remove.GROUP step and one TerminateInstances; a changed instance type is
reported in the batch's step.done, naming a host. Destroy leaves nothing.
The scheduler's step counters count each batch once, by kind hosts. A worker
SIGKILLed while its batch's instances are pending: the batch runs again on
the other worker, which finds them; no slot gets a second instance. The
scheduler SIGKILLed mid-batch and restarted with DEXTER_AWS_BATCH_MAX=0
keeps the plan begun; the next deploy's host steps find the batch's agents.
"""
import base64
from collections import Counter

from aws_helpers import (api, check_events, check_nothing_left, deploy, live_instances, make_aws_cluster,
                         ok_counts, pem_key, put_deployment, short, tagged, wait_deployment,
                         wait_finished_event)
from conftest import wait_until
from test_aws_faults import FAST, in_flight, wait_mid_deployment
from test_metrics import scrape

NAME = "batch1"
GROUPS = [{"name": "g1", "instance_type": "m5.large", "cpus": 24, "ram": 8},    # 12 hosts
          {"name": "g2", "instance_type": "m5.large", "cpus": 10, "ram": 8}]    # 5 hosts


def agents_by_slot(st, name, group):
    """{slot: instance} of a group's live agents, the slot read as the
    worker reads it: dexter:batch + the launch index. Each slot once."""
    out = {}
    for i in live_instances(st, name):
        t = i["tags"]
        if t.get("dexter:group") != group:
            continue
        assert t.get("dexter:role") == "agent", t
        assert "dexter:host" not in t, "a batch's agent carries no host name tag: %s" % t
        assert t.get("dexter:batch", "").isdigit(), "agent %s lacks dexter:batch: %s" % (i["id"], t)
        slot = int(t["dexter:batch"]) + int(i["launch_index"])
        assert slot not in out, "two live agents at slot %d of %s: %s, %s" % (slot, group, out[slot]["id"], i["id"])
        assert i["state"] == "running", i
        out[slot] = i
    return out


def host_done(evs):
    """{host step: host.done event} of one generation's events; each host once."""
    done = [e for e in evs if e["type"] == "host.done"]
    steps = Counter(e["step"] for e in done)
    assert all(n == 1 for n in steps.values()), "a host named twice: %s" % steps
    return {e["step"]: e for e in done}


def check_hosts_events(evs, agents, group, batches, name=NAME):
    """Each live agent of group has its host.done, from one of batches, with
    its instance id and private IP; the batch's step.done comes after its
    hosts' events, and no host step ran for an agent."""
    named = host_done(evs)
    for slot, inst in agents.items():
        e = named.get("host.%s.%d" % (group, slot))
        assert e, "no host.done for host.%s.%d:\n%s" % (group, slot, short(evs))
        assert e["batch"] in batches and e["instance"] == inst["id"], (e, inst["id"])
        assert e["private_ip"] == inst["private_ip"] and e["hostname"] == "%s-%s-%d" % (name, group, slot), e
        done_at = [k for k, x in enumerate(evs) if x["type"] == "step.done" and x["step"] == e["batch"]]
        assert done_at and evs.index(e) < done_at[0], "host.done after its batch's step.done"
    ran = {e["step"] for e in evs if e["type"] == "step.started"}
    assert not [s for s in ran if s.startswith("host.%s." % group)], sorted(ran)


def steps_done(evs, prefix):
    return sorted(e["step"] for e in evs if e["type"] == "step.done" and e["step"].startswith(prefix))


def set_group(stack, name, group, cpus):
    g = dict(next(x for x in GROUPS if x["name"] == group), cpus=cpus)
    _, out = api(stack, "PUT", "/clusters/%s/groups/%s" % (name, group), 200,
                 json={"name": group, "role": "*", "attributes": {}, "vars": {},
                       "instance_type": g["instance_type"], "cpus": cpus, "ram": g["ram"], "disk_size": 20})
    return out["hosts"]


def test_batched_deploy_scale_destroy(stack_factory, tmp_path):
    stack = stack_factory(sched_env={"DEXTER_AWS_BATCH_MAX": "1000"})
    stack.start_fake_ec2(ec2_limits="true")
    stack.start_aws_worker({"DEXTER_AWS_WAIT_MS": "30000"})
    pem = pem_key(str(tmp_path / "k.pem"))
    hosts = make_aws_cluster(stack, NAME, pem, GROUPS, masters=1)
    assert hosts == {"g1": 12, "g2": 5}
    metrics_before = scrape(stack)

    # Deploy: the access node, the master, and one call per group
    before = ok_counts(stack)
    d, evs = deploy(stack, NAME, parallelism=10, timeout=120)
    check_events(evs, d["generation"], "deployed", ["host.access", "host.masters.0", "hosts.g1.0", "hosts.g2.0"])
    assert steps_done(evs, "host") == ["host.access", "host.masters.0", "hosts.g1.0", "hosts.g2.0"], short(evs)
    assert d["progress"]["steps_total"] == 4 + 2 + 1 + 1 + 2, d
    after = ok_counts(stack)
    assert after["RunInstances"] - before["RunInstances"] == 4, (before, after)
    st = stack.fake_state()
    agents = {g: agents_by_slot(st, NAME, g) for g in hosts}
    for g, n in hosts.items():
        assert sorted(agents[g]) == list(range(n)), (g, sorted(agents[g]))
        check_hosts_events(evs, agents[g], g, {"hosts.%s.0" % g})
        # one launch call: one client token, one user data for the batch
        assert len({i["client_token"] for i in agents[g].values()}) == 1, g
        assert len({i.get("user_data_b64") for i in agents[g].values()}) == 1, g
    assert len(host_done(evs)) == 17
    ids = {i["id"] for i in live_instances(st, NAME)}
    assert len(ids) == 1 + 1 + 17

    # The step counters count a batch once, by kind hosts
    def counted():
        s = scrape(stack)
        return s if s.value("dexter_scheduler_steps_total", provider="aws", kind="hosts", event="done") \
            - metrics_before.value("dexter_scheduler_steps_total", provider="aws", kind="hosts",
                                   event="done") == 2 else None
    metrics = wait_until(counted, 20, "two hosts steps done in /metrics")
    assert metrics.value("dexter_scheduler_steps_total", provider="aws", kind="host", event="done") - \
        metrics_before.value("dexter_scheduler_steps_total", provider="aws", kind="host", event="done") == 2

    # A repeated deploy launches nothing and names every host again
    d, evs = deploy(stack, NAME, parallelism=10, timeout=120)
    check_events(evs, d["generation"], "deployed", ["hosts.g1.0", "hosts.g2.0"])
    assert ok_counts(stack)["RunInstances"] == after["RunInstances"], ok_counts(stack)
    st = stack.fake_state()
    assert {i["id"] for i in live_instances(st, NAME)} == ids
    for g in hosts:
        check_hosts_events(evs, agents_by_slot(st, NAME, g), g, {"hosts.%s.0" % g})

    # Scale up g1 to 15: the 12 found by their batch, the 3 new in one call
    assert set_group(stack, NAME, "g1", 30) == 15
    d, evs = deploy(stack, NAME, parallelism=10, timeout=120)
    check_events(evs, d["generation"], "deployed", ["hosts.g1.0", "hosts.g1.12"])
    assert ok_counts(stack)["RunInstances"] == after["RunInstances"] + 1, ok_counts(stack)
    st = stack.fake_state()
    g1 = agents_by_slot(st, NAME, "g1")
    assert sorted(g1) == list(range(15))
    assert {g1[s]["id"] for s in range(12)} == {agents["g1"][s]["id"] for s in range(12)}
    assert {g1[s]["tags"]["dexter:batch"] for s in range(12, 15)} == {"12"}
    check_hosts_events(evs, g1, "g1", {"hosts.g1.0", "hosts.g1.12"})
    assert host_done(evs)["host.g1.13"]["batch"] == "hosts.g1.12"

    # Scale down g2 to 2: its newest three go in one step and one call
    terminate = stack.fake_calls()["by_action_ok"].get("TerminateInstances", 0)
    assert set_group(stack, NAME, "g2", 4) == 2
    d, evs = deploy(stack, NAME, parallelism=10, timeout=120)
    check_events(evs, d["generation"], "deployed", ["remove.g2"])
    assert steps_done(evs, "remove.") == ["remove.g2"], short(evs)
    assert stack.fake_calls()["by_action_ok"].get("TerminateInstances", 0) == terminate + 1
    st = stack.fake_state()
    g2 = agents_by_slot(st, NAME, "g2")
    assert sorted(g2) == [0, 1]
    assert {g2[s]["id"] for s in (0, 1)} == {agents["g2"][s]["id"] for s in (0, 1)}
    resources = stack.redis_client().hkeys("dexter:{%s}:resources" % NAME)
    assert sorted(k for k in resources if k.startswith("host.g2.")) == ["host.g2.0", "host.g2.1"]
    assert len([k for k in resources if k.startswith("host.g1.")]) == 15

    # A changed instance type rebuilds nothing; the batch's step.done says so
    api(stack, "PUT", "/clusters/%s/groups/g2" % NAME, 200,
        json={"name": "g2", "role": "*", "attributes": {}, "vars": {}, "instance_type": "m5.xlarge",
              "cpus": 8, "ram": 8, "disk_size": 20})
    d, evs = deploy(stack, NAME, parallelism=10, timeout=120)
    assert ok_counts(stack)["RunInstances"] == after["RunInstances"] + 1
    warned = [e for e in evs if e["type"] == "step.done" and "warning" in e]
    assert [e["step"] for e in warned] == ["hosts.g2.0"], short(evs)
    assert "m5.large" in warned[0]["warning"] and "m5.xlarge" in warned[0]["warning"], warned
    assert "%s-g2-" % NAME in warned[0]["warning"], warned

    # Destroy leaves nothing
    d, evs = deploy(stack, NAME, command="destroy", timeout=120)
    check_events(evs, d["generation"], "destroyed", command="destroy")
    check_nothing_left(stack, NAME)


def test_batch_size_splits_and_zero_plans_host_steps(stack_factory, tmp_path):
    """DEXTER_AWS_BATCH_MAX=5 cuts a group of 12 into batches of 5, 5 and 2
    (their own steps, one call each); 0 plans a host step per agent, as
    without batches."""
    stack = stack_factory(sched_env={"DEXTER_AWS_BATCH_MAX": "5"})
    stack.start_fake_ec2()
    stack.start_aws_worker({"DEXTER_AWS_WAIT_MS": "30000"})
    pem = pem_key(str(tmp_path / "k.pem"))
    make_aws_cluster(stack, "split", pem, GROUPS[:1], masters=1)
    before = ok_counts(stack)
    d, evs = deploy(stack, "split", parallelism=10, timeout=120)
    check_events(evs, d["generation"], "deployed", ["hosts.g1.0", "hosts.g1.5", "hosts.g1.10"])
    assert steps_done(evs, "hosts.") == ["hosts.g1.0", "hosts.g1.10", "hosts.g1.5"], short(evs)
    assert ok_counts(stack)["RunInstances"] - before["RunInstances"] == 2 + 3
    g1 = agents_by_slot(stack.fake_state(), "split", "g1")
    assert sorted(g1) == list(range(12))
    assert Counter(i["tags"]["dexter:batch"] for i in g1.values()) == {"0": 5, "5": 5, "10": 2}
    assert len(host_done(evs)) == 12

    stack.scheduler.stop()
    stack.start_scheduler({"DEXTER_AWS_BATCH_MAX": "0"})
    api(stack, "POST", "/clusters", 201, data={"name": "single", "provider": "aws", "type": "mesos"})
    api(stack, "PUT", "/clusters/single/config", 200,
        data={"master_type": "m5.large", "masters": "1", "region": "us-west-2", "sshkey": "single-key",
              "sshkeydata": base64.urlsafe_b64encode(pem.encode()).decode()})
    api(stack, "POST", "/clusters/single/groups", 201,
        json={"name": "g1", "role": "*", "attributes": {}, "vars": {}, "instance_type": "m5.large",
              "cpus": 6, "ram": 8, "disk_size": 20})
    d, evs = deploy(stack, "single", parallelism=10, timeout=120)
    check_events(evs, d["generation"], "deployed", ["host.g1.0", "host.g1.1", "host.g1.2"])
    assert not [e for e in evs if e["type"] == "host.done" or e.get("step", "").startswith("hosts.")], short(evs)


def test_worker_killed_mid_batch(stack_factory, tmp_path):
    """Two workers; SIGKILL the one running a hosts step while the batch's
    instances are pending: the step is re-queued and done by the other
    worker, which finds the batch by its tags; every slot has one instance,
    ever (terminated ones included)."""
    stack = stack_factory(sched_env=dict(FAST, DEXTER_AWS_BATCH_MAX="1000"))
    stack.start_fake_ec2(latency_ms=60, pending_ms=1500, seed=18)
    workers = [stack.start_aws_worker(), stack.start_aws_worker()]
    names = {stack.worker_name(w): w for w in workers}
    name = "killbatch"
    pem = pem_key(str(tmp_path / "k.pem"))
    hosts = make_aws_cluster(stack, name, pem, GROUPS[:1], masters=1)
    gen = put_deployment(stack, name, parallelism=10)["generation"]

    def victim(evs, state):
        pending = [i for i in tagged(state["instances"], name)
                   if i["state"] == "pending" and i["tags"].get("dexter:group") == "g1"]
        if not pending:
            return None
        for worker, steps in in_flight(evs).items():
            if worker in names and [s for s in steps if s[0] == "hosts.g1.0"]:
                return worker
        return None
    worker, evs = wait_mid_deployment(stack, name, gen, victim, "a worker running hosts.g1.0 with pending agents")
    n_before = len(evs)
    names[worker].kill()
    survivor = next(n for n in names if n != worker)

    wait_deployment(stack, name, gen, timeout=90)
    evs = wait_finished_event(stack, name, gen)
    check_events(evs, gen, "deployed", ["hosts.g1.0"])
    later = evs[n_before:]
    assert [e for e in later if e["type"] == "step.requeued" and e["step"] == "hosts.g1.0"], short(later)
    redone = [e for e in later if e["type"] == "step.done" and e["step"] == "hosts.g1.0"]
    assert redone and redone[-1]["worker"] == survivor, short(later)
    st = stack.fake_state()
    ever = [i for i in tagged(st["instances"], name) if i["tags"].get("dexter:group") == "g1"]
    slots = Counter(int(i["tags"]["dexter:batch"]) + int(i["launch_index"]) for i in ever)
    assert sorted(slots) == list(range(hosts["g1"])) and max(slots.values()) == 1, \
        "instances per slot, terminated ones included: %s" % slots
    agents = agents_by_slot(st, name, "g1")
    assert sorted(agents) == list(range(hosts["g1"]))
    check_hosts_events(evs, agents, "g1", {"hosts.g1.0"}, name)


def test_scheduler_killed_mid_batch_restarts_with_another_size(stack_factory, tmp_path):
    """SIGKILL the scheduler while a batch's agents are pending and restart
    it with DEXTER_AWS_BATCH_MAX=0: the deployment goes on with the plan its
    snapshot fixed (the batch, not host steps), and ends with one instance
    per slot."""
    stack = stack_factory(sched_env=dict(FAST, DEXTER_AWS_BATCH_MAX="1000"))
    stack.start_fake_ec2(latency_ms=60, pending_ms=1500, seed=19)
    stack.start_aws_worker()
    name = "killsched"
    pem = pem_key(str(tmp_path / "k.pem"))
    hosts = make_aws_cluster(stack, name, pem, GROUPS[:1], masters=1)
    gen = put_deployment(stack, name, parallelism=10)["generation"]

    def mid(evs, state):
        pending = [i for i in tagged(state["instances"], name)
                   if i["state"] == "pending" and i["tags"].get("dexter:group") == "g1"]
        running = [s for steps in in_flight(evs).values() for s in steps if s[0] == "hosts.g1.0"]
        return running if pending and running else None
    wait_mid_deployment(stack, name, gen, mid, "hosts.g1.0 running with pending agents")
    stack.scheduler.kill()
    stack.start_scheduler({"DEXTER_AWS_BATCH_MAX": "0"})
    stack.wait_ready(30)

    d = wait_deployment(stack, name, gen, timeout=90)
    assert d["progress"]["steps_total"] == 4 + 2 + 1 + 1 + 1, d
    evs = wait_finished_event(stack, name, gen)
    check_events(evs, gen, "deployed", ["hosts.g1.0"])
    assert not [e for e in evs if e["type"] == "step.started" and e["step"].startswith("host.g1.")], short(evs)
    st = stack.fake_state()
    ever = [i for i in tagged(st["instances"], name) if i["tags"].get("dexter:group") == "g1"]
    slots = Counter(int(i["tags"]["dexter:batch"]) + int(i["launch_index"]) for i in ever)
    assert sorted(slots) == list(range(hosts["g1"])) and max(slots.values()) == 1, slots
    check_hosts_events(evs, agents_by_slot(st, name, "g1"), "g1", {"hosts.g1.0"}, name)

    # The next deploy plans with 0: a host step per agent, each finding its
    # batch-launched instance; nothing is launched
    launched = ok_counts(stack)["RunInstances"]
    d, evs = deploy(stack, name, parallelism=10, timeout=120)
    check_events(evs, d["generation"], "deployed", ["host.g1.%d" % i for i in range(hosts["g1"])])
    assert ok_counts(stack)["RunInstances"] == launched
    assert {i["id"] for i in live_instances(stack.fake_state(), name)} == \
        {i["id"] for i in live_instances(st, name)}
