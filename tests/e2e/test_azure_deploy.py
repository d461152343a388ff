"""Azure deployments end to end: the reference's "Mesos on Azure" and "DCOS on
Azure" scenarios, line by line, against a real redis-server,
dexter-scheduler, dexter-api and dexter-azure-worker, with only Azure faked
(tests/fakes/fake_arm.py, which judges every PUT body by the Azure SDK's
models and keeps ARM's rules).

Each reference line runs verbatim through bash exactly as test_reference.py
runs it (its run_line: `localhost:5555` becomes the api's port, a `curl`
shell function adds -sS and the status), with cluster_name, group_name,
ssh_user and ssh_password in the environment and, in the working
directory, the `credentials` file `az ad sp create-for-rbac --sdk-auth`
would write for the fake's principal (its endpoints are the fake's
http://127.0.0.1:PORT, which is how the worker is pointed at it).

After each deploy or destroy the test waits (bounded) for the deployment to
end and compares what the fake ARM holds with the spec (azure_helpers.py).
Steps that are not reference lines are marked "extra": data disks on the
group, a resize up and down (the newest VMs go with their NICs and disks)
and an unchanged redeploy that writes nothing.

Also bad input: credentials without subscriptionId (400 at the PUT), an
image URN that does not exist and a location that lacks the size
(deploy_failed with the reason; the destroy after leaves nothing), and a
wrong client secret (deploy_failed with Entra's AADSTS7000215, nothing
created).
"""
import json
import os

from aws_helpers import api, get_deployment, short, wait_finished_event
from azure_helpers import (DESTROY_STEPS, SSH_PASSWORD, SSH_USER, assert_no_secret_in_logs, check_cluster,
                           check_events, check_nothing_created, check_nothing_left, credentials_file, deploy,
                           fail_reason, hosts_for, make_azure_cluster, of_type, planned_steps,
                           put_deployment, put_group, resources_of_host, vm_ids, wait_deployment, writes, VM_TYPE)
from conftest import FAKE_AZ_SECRET
from test_aws_deploy import scenario_lines
from test_reference import run_line

MESOS = "Common usage scenario for Mesos on Azure"
DCOS = "Common usage scenario for DCOS on Azure"
GROUP = "slaves1"
# customhwconf given to the reference's group in an extra step (the
# reference's lines have none): one disk with the defaults, one with its own
# device and type.
CUSTOMHWCONF = {"disks": [{"size": 20}, {"size": 30, "type": "StandardSSD_LRS", "device": "xvdh"}]}
DISKS = [{"size": 20, "type": "Standard_LRS", "device": "xvdf"},
         {"size": 30, "type": "StandardSSD_LRS", "device": "xvdh"}]
SMALL = {"name": "g1", "instance_type": "Standard_A2_v2", "cpus": 2, "ram": 4}   # 1 host


def user_env(stack, root):
    """A HOME, a working directory holding the fake's `credentials` file,
    and the variables the reference uses."""
    home = os.path.join(str(root), "home")
    cwd = os.path.join(str(root), "cwd")
    os.makedirs(home)
    os.makedirs(cwd)
    with open(os.path.join(cwd, "credentials"), "w") as f:
        json.dump(credentials_file(stack), f, indent=2)
        f.write("\n")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8",
           "DX_ARGV": os.path.join(str(root), "argv"), "group_name": GROUP,
           "ssh_user": SSH_USER, "ssh_password": SSH_PASSWORD}
    return {"env": env, "cwd": cwd}


def start_azure_stack(stack_factory, **fake_options):
    stack = stack_factory()
    stack.start_fake_arm(**fake_options)
    stack.start_azure_worker()
    return stack


def group_spec(g, disks_on=None):
    spec = {"hosts": g["hosts"], "instance_type": g["instance_type"], "disk_size": g["disk_size"],
            "disks": g["customhwconf"]["disks"]}
    if disks_on is not None:
        spec["disks_on"] = disks_on
    return spec


def after_put(ran, prev_generation, command):
    assert ran.status == 202, ran
    b = ran.json
    assert b["state"] == ("deploying" if command == "deploy" else "destroying") and b["command"] == command, b
    assert b["generation"] == prev_generation + 1, b
    assert FAKE_AZ_SECRET not in ran.raw, "credential shown: %s" % ran.raw
    return b["generation"]


def check_destroy(stack, name, ran, prev_generation):
    gen = after_put(ran, prev_generation, "destroy")
    wait_deployment(stack, name, gen, "destroy")
    evs = wait_finished_event(stack, name, gen)
    check_events(evs, gen, "destroyed", DESTROY_STEPS, command="destroy")
    check_nothing_left(stack, name)
    d = get_deployment(stack, name)
    assert d["state"] == "destroyed" and d["_accessip"] is None, d
    return gen


def check_deleted(stack, name, ran):
    assert ran.status == 200, ran
    assert ran.json == {"deleted": name}, ran.json
    st, _ = api(stack, "GET", "/clusters/" + name)
    assert st == 404
    st, _ = api(stack, "GET", "/clusters/%s/deployment" % name)
    assert st == 404


# ------------------------------------------------------------------ tests --

def test_mesos_on_azure(stack_factory, tmp_path):
    """The reference's "Mesos on Azure" scenario, verbatim (Standard_D11
    agents, 12 cpus and 16 GB: 6 hosts; 3 Basic_A2 masters in Central US),
    plus extra steps after the group line (two data disks) and after the
    deploy (grow to 8 hosts, an unchanged redeploy, shrink back to 6)."""
    stack = start_azure_stack(stack_factory)
    env = user_env(stack, tmp_path)
    name = "mesosazure"
    commands, kinds = scenario_lines(MESOS)
    assert kinds == ["create", "config", "group", "deploy", "destroy", "delete"], kinds
    generation = 0
    for line, kind in zip(commands, kinds):
        ran = run_line(stack, env, line, name)
        if kind in ("create", "config", "group"):
            assert stack.arm_calls()["total"] == 0, "ARM called before any deploy"
        if kind == "create":
            assert ran.status == 201 and ran.json["provider"] == "azure", ran
        elif kind == "config":
            assert ran.status == 200, ran
            assert ran.json["location"] == "centralus" and ran.json["masters"] == 3, ran.json
            assert ran.json["master_type"] == "Basic_A2" and ran.json["ssh_user"] == SSH_USER, ran.json
        elif kind == "group":
            assert ran.status == 201, ran
            assert ran.json["hosts"] == 6 == hosts_for("Standard_D11", 12, 16), ran.json
            # extra: data disks on the group
            g = put_group(stack, name, GROUP, customhwconf=CUSTOMHWCONF)
            assert g["customhwconf"] == {"disks": DISKS}, g
        elif kind == "deploy":
            generation = after_put(ran, generation, "deploy")
            d = wait_deployment(stack, name, generation)
            evs = wait_finished_event(stack, name, generation)
            check_events(evs, generation, "deployed", planned_steps(3, {GROUP: 6}))
            # long-running operations show in the events as the steps run
            progress = [e for e in evs if e["type"] == "step.progress" and e["step"].startswith("host.")]
            assert any("virtualMachines/%s-%s-0" % (name, GROUP) in e.get("message", "") for e in progress), \
                short(progress)
            _, g = api(stack, "GET", "/clusters/%s/groups/%s" % (name, GROUP), 200)
            by_group, st = check_cluster(stack, name, 3, {GROUP: group_spec(g)}, master_type="Basic_A2",
                                         location="centralus", deployment=d, provision={GROUP: g})
            generation = extra_resize(stack, name, generation, by_group, st)
        elif kind == "destroy":
            generation = check_destroy(stack, name, ran, generation)
        elif kind == "delete":
            check_deleted(stack, name, ran)
    assert_no_secret_in_logs(stack, [FAKE_AZ_SECRET, SSH_PASSWORD])


def extra_resize(stack, name, generation, by_group, st1):
    """Extra steps after the first deploy: (1) 16 cpus: 8 hosts, the 6 VMs
    stay as they are; (2) the same deploy again writes nothing; (3) back to
    12 cpus: the 2 newest VMs go with their NICs and disks."""
    first = vm_ids(by_group[GROUP])
    others = vm_ids(by_group["access"] + by_group["masters"])

    g = put_group(stack, name, GROUP, cpus=16)
    assert g["hosts"] == 8, g
    d, evs = deploy(stack, name)
    generation += 1
    check_events(evs, generation, "deployed", ["host.%s.%d" % (GROUP, i) for i in (6, 7)])
    by_group, st2 = check_cluster(stack, name, 3, {GROUP: group_spec(g)}, master_type="Basic_A2",
                                  location="centralus", deployment=d)
    now = vm_ids(by_group[GROUP])
    assert set(first.items()) < set(now.items()) and len(now) == 8, (first, now)
    assert vm_ids(by_group["access"] + by_group["masters"]) == others
    new_hosts = sorted(set(now) - set(first))
    assert new_hosts == ["%s-%s-%d" % (name, GROUP, i) for i in (6, 7)], new_hosts

    # the same spec again: no write at all
    before, state_before = writes(stack), stack.arm_state()
    d, evs = deploy(stack, name)
    generation += 1
    check_events(evs, generation, "deployed")
    after = writes(stack)
    assert after == before, "an unchanged deploy wrote to ARM: before %s after %s" % (before, after)
    state_after = stack.arm_state()
    assert [(r["id"], r["writes"]) for r in state_after["resources"]] == \
        [(r["id"], r["writes"]) for r in state_before["resources"]]

    # back to 6 hosts: the 2 newest go, with their NICs and disks
    doomed = set().union(*(resources_of_host(state_after, h) for h in new_hosts))
    assert len(doomed) == 2 * (1 + 1 + 1 + len(DISKS)), doomed   # VM, NIC, OS disk, data disks
    g = put_group(stack, name, GROUP, cpus=12)
    assert g["hosts"] == 6, g
    d, evs = deploy(stack, name)
    generation += 1
    removed = {e["step"] for e in evs if e["type"] == "step.done" and e["step"].startswith("remove.")}
    assert removed == {"remove.%s.%d" % (GROUP, i) for i in (6, 7)}, short(evs)
    check_events(evs, generation, "deployed")
    by_group, st3 = check_cluster(stack, name, 3, {GROUP: group_spec(g)}, master_type="Basic_A2",
                                  location="centralus", deployment=d)
    assert vm_ids(by_group[GROUP]) == first, "the oldest 6 VMs must stay"
    left = {r["id"].lower() for r in st3["resources"]} & doomed
    assert not left, "removed hosts left these behind: %s" % sorted(left)
    assert {r["id"].lower() for r in st3["resources"]} == {r["id"].lower() for r in st1["resources"]}
    return generation


def test_dcos_on_azure(stack_factory, tmp_path):
    """The reference's "DCOS on Azure" scenario, verbatim: Basic_A2 agents
    (12 cpus, 60 GB -> 18 hosts) with 200 GB OS disks, 3 Basic_A2 masters
    in Central US."""
    stack = start_azure_stack(stack_factory)
    env = user_env(stack, tmp_path)
    name = "dcosazure"
    commands, kinds = scenario_lines(DCOS)
    assert kinds == ["create", "config", "group", "deploy", "destroy", "delete"], kinds
    generation = 0
    for line, kind in zip(commands, kinds):
        ran = run_line(stack, env, line, name)
        if kind in ("create", "config", "group"):
            assert stack.arm_calls()["total"] == 0, "ARM called before any deploy"
        if kind == "create":
            assert ran.status == 201 and ran.json["type"] == "dcos", ran
        elif kind == "config":
            assert ran.status == 200 and ran.json["location"] == "centralus", ran
        elif kind == "group":
            assert ran.status == 201, ran
            assert ran.json["hosts"] == 18 == hosts_for("Basic_A2", 12, 60), ran.json
        elif kind == "deploy":
            generation = after_put(ran, generation, "deploy")
            d = wait_deployment(stack, name, generation)
            evs = wait_finished_event(stack, name, generation)
            check_events(evs, generation, "deployed", planned_steps(3, {GROUP: 18}))
            _, g = api(stack, "GET", "/clusters/%s/groups/%s" % (name, GROUP), 200)
            assert g["customhwconf"] == {"disks": []} and g["disk_size"] == 200, g
            check_cluster(stack, name, 3, {GROUP: group_spec(g)}, master_type="Basic_A2", location="centralus",
                          deployment=d, provision={GROUP: g})
        elif kind == "destroy":
            generation = check_destroy(stack, name, ran, generation)
        elif kind == "delete":
            check_deleted(stack, name, ran)
    assert_no_secret_in_logs(stack, [FAKE_AZ_SECRET, SSH_PASSWORD])


def test_credentials_without_subscription(stack_factory):
    """A credentials file without subscriptionId: 400 at the PUT, naming the
    field; the deployment is not started and ARM is never called."""
    stack = start_azure_stack(stack_factory)
    name = "nosub"
    make_azure_cluster(stack, name, [SMALL])
    body = put_deployment(stack, name, credentials=credentials_file(stack, drop=["subscriptionId"]), expect=400)
    assert body["code"] == "INVALID" and body["field"] == "credentials", body
    assert "subscriptionId" in body["message"], body
    d = get_deployment(stack, name)
    assert d["state"] == "init" and d["generation"] == 0, d
    assert stack.arm_calls()["total"] == 0
    assert FAKE_AZ_SECRET not in json.dumps(body)


def test_image_that_does_not_exist(stack_factory):
    """An image URN the location does not have: deploy_failed with the
    reason (the URN named); the destroy after it leaves nothing."""
    stack = start_azure_stack(stack_factory)
    name = "noimage"
    urn = "Canonical:no-such-offer:22_04-lts:latest"
    make_azure_cluster(stack, name, [SMALL], image=urn)
    gen = put_deployment(stack, name)["generation"]
    err, evs = fail_reason(stack, name, gen)
    assert err["step"] == "image" and "no-such-offer" in err["message"], err
    failed = [e for e in evs if e["type"] == "step.failed"]
    assert failed and all(e["permanent"] is True for e in failed), short(evs)
    assert not of_type(stack.arm_state(), VM_TYPE)
    d, evs = deploy(stack, name, "destroy")
    check_events(evs, d["generation"], "destroyed", DESTROY_STEPS, command="destroy")
    check_nothing_left(stack, name)


def test_location_without_the_size(stack_factory):
    """A location that lacks the group's size (the fake's /_fake/locations):
    deploy_failed naming size and location, permanent, no VM of that size
    made; the destroy after it leaves nothing."""
    stack = start_azure_stack(stack_factory)
    stack.arm("POST", "/_fake/locations", {"location": "westeurope", "remove": ["Standard_D2_v3"]})
    name = "nosize"
    make_azure_cluster(stack, name, [{"name": "g1", "instance_type": "Standard_D2_v3", "cpus": 4, "ram": 8}])
    gen = put_deployment(stack, name)["generation"]
    err, evs = fail_reason(stack, name, gen)
    assert "Standard_D2_v3" in err["message"] and "westeurope" in err["message"].replace(" ", "").lower(), err
    assert err["step"].startswith("host.g1."), err
    failed = [e for e in evs if e["type"] == "step.failed"]
    assert failed and all(e["permanent"] is True for e in failed), short(evs)
    vms = of_type(stack.arm_state(), VM_TYPE)
    assert not [vm for vm in vms if vm["body"]["properties"]["hardwareProfile"]["vmSize"] == "Standard_D2_v3"], vms
    d, evs = deploy(stack, name, "destroy")
    check_events(evs, d["generation"], "destroyed", DESTROY_STEPS, command="destroy")
    check_nothing_left(stack, name)


def test_wrong_client_secret(stack_factory):
    """A wrong client secret: deploy_failed with Entra's AADSTS7000215,
    permanent, nothing created; then the right one deploys."""
    stack = start_azure_stack(stack_factory)
    name = "badsecret"
    hosts = make_azure_cluster(stack, name, [SMALL])
    wrong = credentials_file(stack, clientSecret="e2e8Q~wrong.secret-0123456789abcdefghijklm")
    gen = put_deployment(stack, name, credentials=wrong)["generation"]
    err, evs = fail_reason(stack, name, gen)
    assert err["code"] == "AADSTS7000215", err
    failed = [e for e in evs if e["type"] == "step.failed"]
    assert failed and all(e["code"] == "AADSTS7000215" and e["permanent"] is True for e in failed), short(evs)
    # No cloud step got anywhere; the vpn service's vpn.server needs no cloud
    assert not [e for e in evs if e["type"] == "step.done" and e["step"] != "vpn.server"], short(evs)
    check_nothing_created(stack)
    calls = stack.arm_calls()
    assert set(calls["by_request"]) == {"POST token"}, calls["by_request"]
    # a permanent error fails the step at once: at most one token request per step started
    started = len([e for e in evs if e["type"] == "step.started"])
    assert 1 <= calls["by_request"]["POST token"] <= started, (calls["by_request"], started)

    d, evs = deploy(stack, name)
    check_events(evs, gen + 1, "deployed", planned_steps(1, hosts))
    _, g = api(stack, "GET", "/clusters/%s/groups/g1" % name, 200)
    check_cluster(stack, name, 1, {"g1": group_spec(g)}, master_type="Standard_A2_v2", deployment=d)
    assert_no_secret_in_logs(stack, [FAKE_AZ_SECRET, wrong["clientSecret"], SSH_PASSWORD])

