"""AWS deployments end to end: the reference's "Mesos on AWS" and "DCOS on AWS"
scenarios, line by line, against a real redis-server, dexter-scheduler,
dexter-api and dexter-aws-worker, with only EC2 faked (tests/fakes/fake_ec2.py,
which judges every request by botocore's EC2 model and signer).

Each reference line runs verbatim through bash exactly as test_reference.py
runs it (its run_line: `localhost:5555` becomes the api's port, a `curl`
shell function adds -sS and the status), with cluster_name, group_name,
key_id and secret (the fake's credential) in the environment and a HOME whose
~/.ssh/reference.pem is a fresh RSA key from `openssl genrsa`.

After each deploy or destroy the test waits (bounded) for the deployment to
end and compares what the fake EC2 holds with the spec (aws_helpers.py):
instances per dexter:group = the group's computed `hosts`, masters, the
access node's Elastic IP = `_accessip`, volumes = root disk + customhwconf,
ownership tags on everything, the network plan of PROTOCOL.md, fixed
private addresses; after a resize the group changed by exactly the
difference and, shrinking, lost its newest hosts; a repeated deploy creates
nothing; after destroy nothing of the cluster is left, the imported key pair
aside. Steps that are not reference lines are marked "extra".

Also: bad credentials (deploy_failed, AWS's AuthFailure, nothing created) and
the fixed addresses of access node and masters staying free when the masters
grow after agents exist.
"""
import base64
import os
import re

from aws_helpers import (api, assert_deferred, assert_no_secret_in_logs, check_cluster, check_events,
                         check_key_pair, check_no_duplicates, check_nothing_left, deploy, get_deployment,
                         hosts_for, live_instances, make_aws_cluster, ok_counts, pem_key, planned_steps, put_deployment,
                         resource_ids, short, tagged, wait_deployment, wait_finished_event)
from conftest import FAKE_KEY_ID, FAKE_SECRET
from test_reference import all_commands, run_line

MESOS = "Common usage scenario for Mesos on AWS"
DCOS = "Common usage scenario for DCOS on AWS"
GROUP = "slaves1"
# customhwconf given to the reference's group in an extra step (the reference's
# lines have none): one disk with the defaults, one with its own device and type.
CUSTOMHWCONF = {"disks": [{"size": 20}, {"size": 30, "type": "gp3", "device": "xvdh"}]}
DISKS = [{"size": 20, "type": "gp2", "device": "xvdf"}, {"size": 30, "type": "gp3", "device": "xvdh"}]
DESTROY_ORDER = ["destroy.instances", "destroy.addresses", "destroy.security", "destroy.network"]


def user_env(root, traditional):
    """HOME with ~/.ssh/reference.pem and the variables the reference uses."""
    home = os.path.join(str(root), "home")
    cwd = os.path.join(str(root), "cwd")
    os.makedirs(os.path.join(home, ".ssh"))
    os.makedirs(cwd)
    pem_path = os.path.join(home, ".ssh", "reference.pem")
    pem = pem_key(pem_path, traditional=traditional)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8",
           "DX_ARGV": os.path.join(str(root), "argv"), "group_name": GROUP,
           "key_id": FAKE_KEY_ID, "secret": FAKE_SECRET}
    return {"env": env, "cwd": cwd, "pem": pem, "pem_path": pem_path}


def classify(line):
    """What a scenario line does, from its text."""
    if "-X DELETE" in line:
        return "delete"
    if "/deployment" in line:
        return "deploy" if "command=deploy" in line else "destroy"
    if "/config" in line:
        return "config"
    if "/groups" in line:
        return "group"
    if re.search(r"/api/v1\.0/clusters( |$)", line):
        return "create"
    raise AssertionError("unknown scenario line: %s" % line)


def scenario_lines(section):
    commands, skipped = all_commands()[section]
    assert not skipped, skipped
    kinds = [classify(c) for c in commands]
    return commands, kinds


def put_group(stack, name, group, **changes):
    """Extra step: PUT the group as it is, with `changes` (JSON body)."""
    _, g = api(stack, "GET", "/clusters/%s/groups/%s" % (name, group), 200)
    body = {k: g[k] for k in ("name", "role", "attributes", "vars", "instance_type", "cpus", "ram", "disk_size")}
    body["customhwconf"] = g["customhwconf"]
    body.update(changes)
    _, out = api(stack, "PUT", "/clusters/%s/groups/%s" % (name, group), 200, json=body)
    return out


def group_spec(g):
    return {"hosts": g["hosts"], "instance_type": g["instance_type"], "disk_size": g["disk_size"],
            "disks": g["customhwconf"]["disks"]}


def start_aws_stack(stack_factory, **fake_options):
    stack = stack_factory()
    stack.start_fake_ec2(**fake_options)
    stack.start_aws_worker()
    return stack


def after_deploy_put(ran, prev_generation):
    assert ran.status == 202, ran
    b = ran.json
    assert b["state"] == "deploying" and b["command"] == "deploy", b
    assert b["generation"] == prev_generation + 1, b
    for s in (FAKE_SECRET, FAKE_KEY_ID):
        assert s not in ran.raw, "credential shown: %s" % ran.raw
    return b["generation"]


def check_destroy(stack, name, ran, prev_generation, key_name, pem_path):
    assert ran.status == 202, ran
    b = ran.json
    assert b["state"] == "destroying" and b["command"] == "destroy", b
    assert b["generation"] == prev_generation + 1, b
    gen = b["generation"]
    wait_deployment(stack, name, gen, "destroy")
    evs = wait_finished_event(stack, name, gen)
    check_events(evs, gen, "destroyed", DESTROY_ORDER, command="destroy")
    # each destroy step starts after the previous one is done
    pos = {}
    for i, e in enumerate(evs):
        if e["type"] in ("step.started", "step.done") and e["step"] in DESTROY_ORDER:
            pos.setdefault((e["type"], e["step"]), i)
            if e["type"] == "step.done":
                pos[("step.done", e["step"])] = i
    for a, b_ in zip(DESTROY_ORDER, DESTROY_ORDER[1:]):
        assert pos[("step.done", a)] < pos[("step.started", b_)], "%s started before %s was done:\n%s" % (
            b_, a, short(evs))
    st = check_nothing_left(stack, name)
    # the imported key pair is not the cluster's: destroy keeps it
    check_key_pair(st, key_name, name, pem_path)
    d = get_deployment(stack, name)
    assert d["state"] == "destroyed" and d["_accessip"] is None, d
    return gen


def check_deleted(stack, name, ran):
    assert ran.status == 200, ran
    assert ran.json == {"deleted": name}, ran.json
    st, _ = api(stack, "GET", "/clusters/" + name)
    assert st == 404


# ------------------------------------------------------------------ tests --

def test_mesos_on_aws(stack_factory, tmp_path):
    """The reference's "Mesos on AWS" scenario, verbatim, plus extra steps:
    customhwconf on the group, a repeated identical deploy, and a shrink."""
    stack = start_aws_stack(stack_factory)
    env = user_env(tmp_path, traditional=True)
    name = "mesosaws"
    commands, kinds = scenario_lines(MESOS)
    assert kinds == ["create", "config", "group", "deploy", "group", "deploy", "destroy", "delete"], kinds

    generation, groups_posted, deploys = 0, 0, 0
    gen1_ids = None
    for line, kind in zip(commands, kinds):
        ran = run_line(stack, env, line, name)
        if kind == "create":
            assert ran.status == 201, ran
        elif kind == "config":
            assert ran.status == 200, ran
            assert ran.json["masters"] == 3 and ran.json["master_type"] == "m3.large", ran.json
        elif kind == "group":
            groups_posted += 1
            assert ran.status == (201 if groups_posted == 1 else 200), ran
            # m5.xlarge (the default): 10 cpus, 64 GB -> 4 hosts; 20, 128 -> 8
            assert ran.json["hosts"] == (4 if groups_posted == 1 else 8), ran.json
            assert ran.json["hosts"] == hosts_for("m5.xlarge", int(ran.json["cpus"]), int(ran.json["ram"]))
            # extra: the group's customhwconf (the POST replaced the group, so
            # again after "Change slaves group size")
            g = put_group(stack, name, GROUP, customhwconf=CUSTOMHWCONF)
            assert g["customhwconf"] == {"disks": DISKS}, g
        elif kind == "deploy":
            deploys += 1
            generation = after_deploy_put(ran, generation)
            d = wait_deployment(stack, name, generation)
            evs = wait_finished_event(stack, name, generation)
            _, g = api(stack, "GET", "/clusters/%s/groups/%s" % (name, GROUP), 200)
            spec = {GROUP: group_spec(g)}
            assert spec[GROUP]["disks"] == DISKS, spec
            # (the first deploy launched every host from one spec)
            by_group, st = check_cluster(stack, name, 3, spec, master_type="m3.large", deployment=d,
                                         provision={GROUP: g} if deploys == 1 else None)
            check_key_pair(st, "reference", name, env["pem_path"])
            if deploys == 1:
                check_events(evs, generation, "deployed", planned_steps(3, {GROUP: 4}))
                gen1_ids = {i["tags"]["dexter:host"]: i["id"] for i in by_group[GROUP]}
                assert len(gen1_ids) == 4
                check_no_duplicates(st, name, 1 + 3 + 4)
            else:
                # "Apply changes": 4 more hosts; the first 4 are the same instances
                check_events(evs, generation, "deployed", ["host.%s.%d" % (GROUP, i) for i in range(4, 8)])
                now_ids = {i["tags"]["dexter:host"]: i["id"] for i in by_group[GROUP]}
                assert set(gen1_ids.items()) <= set(now_ids.items()), (gen1_ids, now_ids)
                assert len(now_ids) == 8
                check_no_duplicates(st, name, 1 + 3 + 8)
                generation = extra_repeat_and_shrink(stack, name, generation, gen1_ids, by_group[GROUP])
        elif kind == "destroy":
            generation = check_destroy(stack, name, ran, generation, "reference", env["pem_path"])
        elif kind == "delete":
            check_deleted(stack, name, ran)
    assert deploys == 2
    pem_b64 = base64.b64encode(env["pem"].encode()).decode()
    assert_no_secret_in_logs(stack, [FAKE_SECRET, env["pem"].splitlines()[5], pem_b64[100:160]])
    assert_deferred(stack)


def extra_repeat_and_shrink(stack, name, generation, gen1_ids, gen2_instances):
    """Extra steps after "Apply changes": (1) the same deploy again creates
    nothing; (2) back to 10 cpus / 64 GB (4 hosts) removes the 4 newest."""
    before = ok_counts(stack)
    state_before = stack.fake_state()
    d, evs = deploy(stack, name)
    generation += 1
    assert d["generation"] == generation
    check_events(evs, generation, "deployed")
    after = ok_counts(stack)
    assert after == before, "an identical deploy called EC2 to create: before %s after %s" % (before, after)
    _, g = api(stack, "GET", "/clusters/%s/groups/%s" % (name, GROUP), 200)
    check_cluster(stack, name, 3, {GROUP: group_spec(g)}, master_type="m3.large", deployment=d)
    state_after = stack.fake_state()
    assert resource_ids(state_after) == resource_ids(state_before), "an identical deploy changed the resources"
    assert state_after["client_tokens"] == state_before["client_tokens"]

    g = put_group(stack, name, GROUP, cpus=10, ram=64)
    assert g["hosts"] == 4, g
    d, evs = deploy(stack, name)
    generation += 1
    removed_steps = {e["step"] for e in evs if e["type"] == "step.done" and e["step"].startswith("remove.")}
    assert removed_steps == {"remove.%s.%d" % (GROUP, i) for i in range(4, 8)}, short(evs)
    check_events(evs, generation, "deployed")
    by_group, st = check_cluster(stack, name, 3, {GROUP: group_spec(g)}, master_type="m3.large", deployment=d)
    kept = {i["tags"]["dexter:host"]: i["id"] for i in by_group[GROUP]}
    assert kept == gen1_ids, "the oldest 4 hosts must stay: kept %s, first deploy's %s" % (kept, gen1_ids)
    newest = {i["id"] for i in gen2_instances} - set(gen1_ids.values())
    terminated = {i["id"] for i in tagged(st["instances"], name) if i["state"] == "terminated"}
    assert terminated == newest, "removed %s, the newest were %s" % (terminated, newest)
    launch = {i["id"]: i["launch_time"] for i in tagged(st["instances"], name)}
    assert min(launch[i] for i in terminated) >= max(launch[i] for i in kept.values())
    # their volumes went with them (DeleteOnTermination)
    assert not [v for v in st["volumes"] if (v.get("attachment") or {}).get("instance_id") in terminated]
    return generation


def test_dcos_on_aws(stack_factory, tmp_path):
    """The reference's "DCOS on AWS" scenario, verbatim: r3.xlarge agents
    (12 cpus, 60 GB -> 3 hosts), 3 m3.large masters, us-east-1 (the fake
    serves that region: its availability zones are the region's); the key is
    PKCS#8 here (`openssl genrsa` without -traditional)."""
    stack = start_aws_stack(stack_factory, region="us-east-1")
    env = user_env(tmp_path, traditional=False)
    name = "dcosaws"
    commands, kinds = scenario_lines(DCOS)
    assert kinds == ["create", "config", "group", "deploy", "destroy", "delete"], kinds
    generation = 0
    for line, kind in zip(commands, kinds):
        ran = run_line(stack, env, line, name)
        if kind == "create":
            assert ran.status == 201 and ran.json["type"] == "dcos", ran
        elif kind == "config":
            assert ran.status == 200 and ran.json["region"] == "us-east-1", ran
        elif kind == "group":
            assert ran.status == 201, ran
            assert ran.json["hosts"] == 3 == hosts_for("r3.xlarge", 12, 60), ran.json
        elif kind == "deploy":
            generation = after_deploy_put(ran, generation)
            d = wait_deployment(stack, name, generation)
            evs = wait_finished_event(stack, name, generation)
            check_events(evs, generation, "deployed", planned_steps(3, {GROUP: 3}))
            _, g = api(stack, "GET", "/clusters/%s/groups/%s" % (name, GROUP), 200)
            assert g["customhwconf"] == {"disks": []} and g["disk_size"] == 200, g
            by_group, st = check_cluster(stack, name, 3, {GROUP: group_spec(g)}, master_type="m3.large",
                                         deployment=d, provision={GROUP: g})
            check_no_duplicates(st, name, 1 + 3 + 3)
            check_key_pair(st, "reference", name, env["pem_path"])
        elif kind == "destroy":
            generation = check_destroy(stack, name, ran, generation, "reference", env["pem_path"])
        elif kind == "delete":
            check_deleted(stack, name, ran)
    assert_no_secret_in_logs(stack, [FAKE_SECRET, env["pem"].splitlines()[5]])
    assert_deferred(stack)


def test_bad_credentials(stack_factory, tmp_path):
    """A key the fake does not know: deploy_failed with AWS's AuthFailure in
    last_error and the events, nothing created, the permanent error not
    retried; then the right key deploys the same cluster."""
    stack = start_aws_stack(stack_factory)
    pem = pem_key(str(tmp_path / "k.pem"))
    name = "badcreds"
    hosts = make_aws_cluster(stack, name, pem, [{"name": "g1", "instance_type": "m5.large", "cpus": 2, "ram": 8,
                                                 "role": "web_tier", "attributes": {"rack": "r1", "weight": 3},
                                                 "vars": {"greeting": "it's \"quoted\""}}])
    body = put_deployment(stack, name, key_id="AKIAUNKNOWNKEY000000", secret="Unknown/Secret+Key0123456789abcdefghijk")
    gen = body["generation"]
    d = wait_deployment(stack, name, gen, allow_failure=True, timeout=60)
    assert d["state"] == "deploy_failed", d
    err = d["last_error"]
    assert isinstance(err, dict) and err["code"] == "AuthFailure", d
    assert err["step"] and err["message"], err
    evs = wait_finished_event(stack, name, gen)
    check_events(evs, gen, "deploy_failed")
    fin = [e for e in evs if e["type"] == "deployment.finished"][0]
    assert fin.get("code") == "AuthFailure" and fin.get("message"), fin
    failed = [e for e in evs if e["type"] == "step.failed"]
    assert failed and all(e["code"] == "AuthFailure" for e in failed), short(evs)
    assert all(e["permanent"] is True for e in failed), short(evs)
    assert not [e for e in evs if e["type"] == "step.done" and e["step"].startswith("host.")], short(evs)

    st = stack.fake_state()
    for kind in ("vpcs", "subnets", "internet_gateways", "route_tables", "security_groups", "instances",
                 "volumes", "addresses", "key_pairs"):
        assert not st[kind], "created with bad credentials: %s %s" % (kind, st[kind])
    calls = stack.fake_calls()
    assert calls["by_action_ok"] == {}, calls["by_action_ok"]
    auth = calls["by_error_code"].get("AuthFailure", 0)
    # a permanent error fails the step at once: at most one call per step in flight
    assert 1 <= auth <= 5, "AuthFailure answered %d times: retried a permanent error?" % auth

    # the same cluster with the right key
    d, evs = deploy(stack, name)
    check_events(evs, gen + 1, "deployed", planned_steps(1, hosts))
    _, g = api(stack, "GET", "/clusters/%s/groups/g1" % name, 200)
    check_cluster(stack, name, 1, {"g1": group_spec(g)}, master_type="m5.large", deployment=d,
                  provision={"g1": g})
    assert_no_secret_in_logs(stack, [FAKE_SECRET, "Unknown/Secret+Key0123456789abcdefghijk"])
    assert_deferred(stack)


def test_masters_grow_and_shrink_group_deleted(stack_factory, tmp_path):
    """The access node (10.0.0.10) and master i (10.0.0.11 + i) have fixed
    private addresses. Growing the masters from 1 to 3 after 10 agents exist
    (and took whatever addresses EC2 gave them) must still end deployed with
    masters at .11-.13: agents never hold a fixed address. Then deleting the
    group and going back to 1 master removes every agent and masters 1 and 2
    (the highest slots), and keeps the access node and master 0."""
    stack = stack_factory()
    stack.start_fake_ec2()
    stack.start_aws_worker({"DEXTER_AWS_WAIT_MS": "5000"})
    pem = pem_key(str(tmp_path / "k.pem"))
    name = "fixedips"
    hosts = make_aws_cluster(stack, name, pem, [{"name": "g1", "instance_type": "m5.large", "cpus": 20,
                                                 "ram": 8}], masters=1)
    assert hosts == {"g1": 10}
    d, evs = deploy(stack, name, parallelism=20, timeout=60)
    spec = {"g1": {"hosts": 10, "instance_type": "m5.large", "disk_size": 20, "disks": []}}
    by_group, _ = check_cluster(stack, name, 1, spec, master_type="m5.large", deployment=d)
    assert_deferred(stack)
    api(stack, "PUT", "/clusters/%s/config" % name, 200,
        data={"master_type": "m5.large", "masters": "3", "region": "us-west-2", "sshkey": name + "-key",
              "sshkeydata": base64.urlsafe_b64encode(pem.encode()).decode()})
    d, evs = deploy(stack, name, parallelism=20, timeout=60)
    check_events(evs, d["generation"], "deployed", ["host.masters.1", "host.masters.2"])
    by_group, _ = check_cluster(stack, name, 3, spec, master_type="m5.large", deployment=d)
    assert_deferred(stack)
    keep = {by_group["access"][0]["id"]} | {i["id"] for i in by_group["masters"] if i["private_ip"] == "10.0.0.11"}
    assert len(keep) == 2, by_group

    api(stack, "DELETE", "/clusters/%s/groups/g1" % name, 200)
    api(stack, "PUT", "/clusters/%s/config" % name, 200,
        data={"master_type": "m5.large", "masters": "1", "region": "us-west-2", "sshkey": name + "-key",
              "sshkeydata": base64.urlsafe_b64encode(pem.encode()).decode()})
    d, evs = deploy(stack, name, parallelism=20, timeout=60)
    removed = {e["step"] for e in evs if e["type"] == "step.done" and e["step"].startswith("remove.")}
    assert removed == {"remove.masters.1", "remove.masters.2"} | {"remove.g1.%d" % i for i in range(10)}, \
        short(evs)
    check_events(evs, d["generation"], "deployed")
    by_group, st = check_cluster(stack, name, 1, {}, master_type="m5.large", deployment=d)
    assert {i["id"] for i in live_instances(st, name)} == keep
    assert_deferred(stack)


def test_shrink_removes_the_newest_host_even_a_replacement(stack_factory, tmp_path):
    """Scaling down removes the newest hosts by launch time, not merely the
    highest slots: a host terminated by hand is launched anew by the next
    deploy (same slot, a new instance); shrinking the group by one then
    removes that replacement and keeps the two original hosts. A changed
    instance type rebuilds nothing and is reported in step.done."""
    import botocore.session
    stack = stack_factory()
    stack.start_fake_ec2()
    stack.start_aws_worker({"DEXTER_AWS_WAIT_MS": "5000"})
    pem = pem_key(str(tmp_path / "k.pem"))
    name = "replaced"
    group = {"name": "g1", "instance_type": "m5.large", "cpus": 6, "ram": 8}
    assert make_aws_cluster(stack, name, pem, [group]) == {"g1": 3}
    deploy(stack, name, parallelism=10, timeout=60)

    def g1_live():
        st = stack.fake("GET", "/_fake/state")
        return {i["tags"]["dexter:host"]: i for i in live_instances(st, name)
                if i["tags"].get("dexter:group") == "g1"}
    first = g1_live()
    assert sorted(first) == ["replaced-g1-0", "replaced-g1-1", "replaced-g1-2"], first

    # Someone terminates slot 0's instance behind Dexter's back
    ec2 = botocore.session.get_session().create_client(
        "ec2", region_name="us-west-2", endpoint_url=stack.fake_ec2_url,
        aws_access_key_id=FAKE_KEY_ID, aws_secret_access_key=FAKE_SECRET)
    ec2.terminate_instances(InstanceIds=[first["replaced-g1-0"]["id"]])
    d, evs = deploy(stack, name, parallelism=10, timeout=60)
    second = g1_live()
    assert sorted(second) == sorted(first), second
    replacement = second["replaced-g1-0"]
    assert replacement["id"] != first["replaced-g1-0"]["id"], replacement
    assert replacement["launch_time"] > max(i["launch_time"] for i in second.values()
                                            if i is not replacement)

    # One host fewer: the replacement goes, slots 1 and 2 stay
    group["cpus"] = 4
    _, out = api(stack, "POST", "/clusters/%s/groups" % name, 200, json={
        "name": "g1", "role": "*", "attributes": {}, "vars": {}, "instance_type": "m5.large",
        "cpus": 4, "ram": 8, "disk_size": 20})
    assert out["hosts"] == 2, out
    d, evs = deploy(stack, name, parallelism=10, timeout=60)
    removed = [e["step"] for e in evs if e["type"] == "step.done" and e["step"].startswith("remove.")]
    assert removed == ["remove.g1.0"], short(evs)
    third = g1_live()
    assert {h: i["id"] for h, i in third.items()} == \
        {h: first[h]["id"] for h in ("replaced-g1-1", "replaced-g1-2")}, third

    # Another instance type for the same 2 hosts: nothing is rebuilt, and
    # each host's step.done says so
    _, out = api(stack, "POST", "/clusters/%s/groups" % name, 200, json={
        "name": "g1", "role": "*", "attributes": {}, "vars": {}, "instance_type": "m5.xlarge",
        "cpus": 8, "ram": 8, "disk_size": 20})
    assert out["hosts"] == 2, out
    d, evs = deploy(stack, name, parallelism=10, timeout=60)
    assert {h: i["id"] for h, i in g1_live().items()} == {h: i["id"] for h, i in third.items()}
    warned = {e["step"]: e["warning"] for e in evs if e["type"] == "step.done" and "warning" in e}
    assert sorted(warned) == ["host.g1.1", "host.g1.2"], short(evs)
    assert all("m5.large" in w and "m5.xlarge" in w for w in warned.values()), warned
