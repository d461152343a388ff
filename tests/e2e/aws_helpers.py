"""Helpers of the AWS end-to-end tests (test_aws_deploy.py, test_aws_faults.py):
the API calls they make, bounded waits on a deployment, its event stream, and
the checks of what the fake EC2 holds against what the spec asks for.

The contract checked here is proto/PROTOCOL.md ("Steps: what a job asks a
worker to do": ownership tags, the network plan, fixed private addresses) and
docs/api.md (deployment object, events, a group's `hosts`).
"""
import base64
import json
import math
import os
import re
import subprocess
import time
from collections import Counter, defaultdict

import requests

from conftest import FAKE_KEY_ID, FAKE_SECRET

HTTP_TIMEOUT = 30
# vCPUs and GiB of the instance types these tests use (AWS's published figures,
# as common/dx_catalog.def has them).
INSTANCES = {"m3.large": (2, 7.5), "m5.large": (2, 8), "m5.xlarge": (4, 16), "r3.xlarge": (4, 30.5),
             "t3.medium": (2, 4), "c5.large": (2, 4)}
EXTRA_DEVICE = re.compile(r"^/dev/xvd[f-z]$")
DEPLOY_DONE = {"deploy": "deployed", "destroy": "destroyed"}
DEPLOY_FAILED = {"deploy": "deploy_failed", "destroy": "destroy_failed"}
CREATING_ACTIONS = ("RunInstances", "CreateVpc", "CreateSubnet", "CreateInternetGateway", "CreateRouteTable",
                    "CreateSecurityGroup", "AllocateAddress", "ImportKeyPair")
RESOURCE_KINDS = ("vpcs", "subnets", "internet_gateways", "route_tables", "security_groups", "instances",
                  "volumes", "addresses", "key_pairs")


# ------------------------------------------------------------------- API --

def api(stack, method, path, expect=None, **kw):
    """(status, JSON body) of one API request; asserts the status if given."""
    kw.setdefault("timeout", HTTP_TIMEOUT)
    r = requests.request(method, stack.url(path), headers=stack.auth_headers(), **kw)
    try:
        body = r.json()
    except ValueError:
        body = None
    if expect is not None:
        assert r.status_code == expect, "%s %s: expected %d, got %d %s" % (
            method, path, expect, r.status_code, r.text[:1000])
    return r.status_code, body


def hosts_for(instance_type, cpus, ram):
    vcpus, mem = INSTANCES[instance_type]
    return max(math.ceil(cpus / vcpus), math.ceil(ram / mem))


def pem_key(path, traditional=True):
    """Writes a fresh 2048-bit RSA key (openssl genrsa) to path; returns its text."""
    argv = ["openssl", "genrsa", "-out", path] + (["-traditional"] if traditional else []) + ["2048"]
    subprocess.run(argv, check=True, capture_output=True, timeout=120)
    os.chmod(path, 0o600)
    with open(path) as f:
        return f.read()


def public_key_blob(pem_path):
    """The base64 blob of the OpenSSH public key of a private key file."""
    out = subprocess.run(["ssh-keygen", "-y", "-f", pem_path], check=True, capture_output=True,
                         timeout=60).stdout.decode()
    return out.split()[1]


def make_aws_cluster(stack, name, pem_text, groups, masters=1, master_type="m5.large", ctype="mesos",
                     sshkey=None):
    """Creates a configured aws cluster with groups [{name, instance_type, cpus,
    ram, disk_size, customhwconf?}] through the API; returns {group: hosts}."""
    api(stack, "POST", "/clusters", 201, data={"name": name, "provider": "aws", "type": ctype})
    api(stack, "PUT", "/clusters/%s/config" % name, 200,
        data={"master_type": master_type, "masters": str(masters), "region": "us-west-2",
              "sshkey": sshkey or (name + "-key"),
              "sshkeydata": base64.urlsafe_b64encode(pem_text.encode()).decode()})
    hosts = {}
    for g in groups:
        body = {"name": g["name"], "role": g.get("role", "*"), "attributes": g.get("attributes", {}),
                "vars": g.get("vars", {}), "instance_type": g["instance_type"], "cpus": g["cpus"],
                "ram": g["ram"], "disk_size": g.get("disk_size", 20)}
        if "customhwconf" in g:
            body["customhwconf"] = g["customhwconf"]
        _, out = api(stack, "POST", "/clusters/%s/groups" % name, 201, json=body)
        assert out["hosts"] == hosts_for(g["instance_type"], g["cpus"], g["ram"]), out
        hosts[g["name"]] = out["hosts"]
    return hosts


def put_deployment(stack, name, command="deploy", parallelism=None, key_id=FAKE_KEY_ID, secret=FAKE_SECRET,
                   expect=202):
    data = {"aws_access_key_id": key_id, "aws_secret_access_key": secret, "command": command}
    if parallelism is not None:
        data["parallelism"] = str(parallelism)
    _, body = api(stack, "PUT", "/clusters/%s/deployment" % name, expect, data=data)
    if expect == 202:
        assert body["started_at"] and body["finished_at"] is None, body
    return body


def get_deployment(stack, name):
    _, d = api(stack, "GET", "/clusters/%s/deployment" % name, 200)
    return d


# ---------------------------------------------------------------- events --

def events(stack, name, after=None):
    """Every event of the cluster (after `after`), oldest first, paging by 1000."""
    out, cursor = [], after
    for _ in range(1000):
        params = {"count": "1000"}
        if cursor:
            params["after"] = cursor
        _, body = api(stack, "GET", "/clusters/%s/deployment/events" % name, 200, params=params)
        page = body["events"]
        for e in page:
            assert {"id", "type", "time"} <= set(e), e
        out += page
        if len(page) < 1000:
            return out
        cursor = page[-1]["id"]
    raise AssertionError("more than a million events?")


def generation_events(evs, generation):
    """The events from deployment.requested of `generation` on."""
    for i, e in enumerate(evs):
        if e["type"] == "deployment.requested" and int(e.get("generation", -1)) == generation:
            return evs[i:]
    raise AssertionError("no deployment.requested of generation %d in %s" % (generation, short(evs[-20:])))


def short(evs):
    return "\n".join("  " + json.dumps(e, sort_keys=True) for e in evs)


def diagnose(stack, name, tail=40):
    """What to print when a deployment does not end as it should."""
    parts = []
    try:
        parts.append("deployment: " + json.dumps(get_deployment(stack, name), indent=1))
        parts.append("last events:\n" + short(events(stack, name)[-tail:]))
    except Exception as e:  # the point is to show what we can
        parts.append("(could not read the deployment: %s)" % e)
    for proc in [stack.scheduler] + list(stack.aws_workers):
        if proc is not None:
            # the test's own polling is noise here
            lines = [l for l in proc.log().splitlines()
                     if "request type=deployment.get " not in l and "request type=deployment.events " not in l]
            parts.append("---- %s (%s) log tail:\n%s" % (
                proc.name, "alive" if proc.alive() else "exit %s" % proc.popen.returncode,
                "\n".join(lines[-25:])))
    try:
        calls = stack.fake_calls()
        parts.append("fake EC2 calls: ok %s errors %s" % (calls["by_action_ok"], calls["by_error_code"]))
    except Exception:
        pass
    return "\n".join(parts)


def wait_deployment(stack, name, generation, command="deploy", timeout=90, allow_failure=False):
    """Polls GET deployment until generation `generation` has ended
    (deployed/destroyed, or *_failed). Fails at once on a failure unless
    allow_failure, and on timeout, printing the deployment and the last events."""
    want, failed = DEPLOY_DONE[command], DEPLOY_FAILED[command]
    deadline = time.monotonic() + timeout
    d = None
    while time.monotonic() < deadline:
        d = get_deployment(stack, name)
        assert d["generation"] >= generation, d
        if d["generation"] == generation and d["state"] in (want, failed):
            assert d["started_at"] and d["finished_at"] and d["started_at"] <= d["finished_at"], d
            if d["state"] == failed and not allow_failure:
                raise AssertionError("generation %d of %s ended %s:\n%s" % (
                    generation, name, d["state"], diagnose(stack, name)))
            if d["state"] == want:
                assert d["observed_generation"] == generation, d
                assert d["last_error"] is None, d
            return d
        time.sleep(0.1)
    raise AssertionError("timed out after %ds waiting for %s of generation %d of %s:\n%s" % (
        timeout, want, generation, name, diagnose(stack, name)))


def deploy(stack, name, command="deploy", parallelism=None, timeout=90):
    """PUT deployment, wait for it to end well; returns (deployment, its events)."""
    body = put_deployment(stack, name, command, parallelism)
    assert body["state"] == ("deploying" if command == "deploy" else "destroying"), body
    gen = body["generation"]
    d = wait_deployment(stack, name, gen, command, timeout)
    return d, wait_finished_event(stack, name, gen)


def wait_finished_event(stack, name, generation, timeout=10):
    """The events of `generation`, once deployment.finished is among them."""
    deadline = time.monotonic() + timeout
    while True:
        evs = generation_events(events(stack, name), generation)
        if any(e["type"] == "deployment.finished" for e in evs):
            return evs
        if time.monotonic() > deadline:
            raise AssertionError("no deployment.finished event for generation %d:\n%s" % (generation, short(evs)))
        time.sleep(0.1)


def check_events(evs, generation, state, expected_steps=(), command="deploy"):
    """The events of one generation: requested first, finished last with the
    state; every step.started by a named worker, and (for a success) every
    step that started at last done; `expected_steps` all done."""
    req = evs[0]
    assert req["type"] == "deployment.requested" and req["command"] == command, req
    assert req["generation"] == generation and isinstance(req["parallelism"], int), req
    fin = [e for e in evs if e["type"] == "deployment.finished"]
    assert len(fin) == 1, "one deployment.finished per generation:\n" + short(evs)
    assert fin[0]["state"] == state and fin[0]["generation"] == generation, fin
    started = [e for e in evs if e["type"] == "step.started"]
    done = [e for e in evs if e["type"] == "step.done"]
    for e in started:
        assert e.get("step") and e.get("kind") and e.get("worker"), e
        assert re.fullmatch(r".+:\d+", e["worker"]), "worker is host:pid: %r" % e
        assert isinstance(e["attempt"], int) and e["attempt"] >= 1, e
    for e in done:
        assert e.get("step") and e.get("worker"), e
        # the scenarios never change a group's instance type under its hosts
        assert "warning" not in e, e
    done_steps = {e["step"] for e in done}
    if state in DEPLOY_DONE.values():
        missing = {e["step"] for e in started} - done_steps
        assert not missing, "steps started but never done in a successful deployment: %s\n%s" % (
            sorted(missing), short(evs))
        # events after deployment.finished belong to no one
        assert evs.index(fin[0]) == max(i for i, e in enumerate(evs)
                                        if e["type"].startswith(("step.", "deployment."))), short(evs)
    for s in expected_steps:
        assert s in done_steps, "step %s not done; done: %s" % (s, sorted(done_steps))
    return done_steps


def planned_steps(masters, groups):
    """The steps of a first deploy: network, security, image, keypair, the
    vpn's server bundle, the access node, its vpn profile, masters and every
    group's hosts (PROTOCOL.md)."""
    steps = ["network", "security", "image", "keypair", "vpn.server", "host.access",
             "vpn.profile"]
    steps += ["host.masters.%d" % i for i in range(masters)]
    for g, n in groups.items():
        steps += ["host.%s.%d" % (g, i) for i in range(n)]
    return steps


# ---------------------------------------------------------- fake's state --

def defer(stack, ok, message):
    """A check that must hold but need not stop the test at once: the fixed
    private addresses (the fake EC2 assigns addresses itself, and a test that
    stopped there would hide everything after). assert_deferred() at the end
    of the test fails it; Stack.stop() reports any left."""
    if not ok and message not in stack.deferred:
        stack.deferred.append(message)


def assert_deferred(stack):
    left, stack.deferred = list(stack.deferred), []
    assert not left, "contract checks failed during the test:\n  " + "\n  ".join(left)


def tagged(items, name):
    return [r for r in items if r.get("tags", {}).get("dexter:cluster") == name]


def live_instances(state, name):
    return [i for i in tagged(state["instances"], name) if i["state"] != "terminated"]


def user_data_text(inst):
    """An instance's user data as text to search: cloud-init's document read
    as azure_helpers reads a VM's custom data (the same module makes both)."""
    from azure_helpers import custom_data_text
    return custom_data_text(inst.get("user_data_b64"))


def check_cluster(stack, name, masters, groups, master_type=None, deployment=None, provision=None):
    """What the fake holds for a deployed cluster equals the spec.

    groups: {group: {"hosts": N, "instance_type": T, "disk_size": GB, "disks":
    [{"size","type","device"}]}}. provision: {group: group object of the
    API}, when every host of the group was launched from that spec: its
    agents' user data must carry the group's role, attributes and vars.
    Returns (the live instances by group, the fake's state)."""
    st = stack.fake_state()
    d = deployment or get_deployment(stack, name)
    assert d["state"] == "deployed", d
    live = live_instances(st, name)
    by_group = defaultdict(list)
    for i in live:
        by_group[i["tags"].get("dexter:group")].append(i)
    counts = {g: len(v) for g, v in by_group.items()}
    want = dict({"access": 1, "masters": masters}, **{g: spec["hosts"] for g, spec in groups.items()})
    assert counts == want, "live instances per dexter:group %s, the spec wants %s" % (counts, want)

    # no duplicate host; every instance running and fully tagged
    hosts = Counter(i["tags"].get("dexter:host") for i in live)
    dup = {h: n for h, n in hosts.items() if n > 1}
    assert not dup, "more than one live instance per dexter:host: %s" % dup
    uid = None
    for i in live:
        t = i["tags"]
        assert i["state"] == "running", "deployed, but %s is %s" % (i["id"], i["state"])
        for key in ("dexter:cluster", "dexter:role", "dexter:group", "dexter:host", "Name"):
            assert t.get(key), "instance %s lacks tag %s: %s" % (i["id"], key, t)
        assert t["Name"] == t["dexter:host"], t
        uid = uid or t.get("dexter:uid")
        role = {"access": "access", "masters": "master"}.get(t["dexter:group"], "agent")
        assert t["dexter:role"] == role, t
        assert t["dexter:host"] in user_data_text(i), \
            "user data of %s does not set its host name %s" % (i["id"], t["dexter:host"])

    # the access node: 10.0.0.10 with an Elastic IP that the deployment shows
    access = by_group["access"][0]
    defer(stack, access["private_ip"] == "10.0.0.10",
          "the access node's private IP is %s, not 10.0.0.10" % access["private_ip"])
    eips = [a for a in tagged(st["addresses"], name) if a.get("instance_id") == access["id"]]
    assert len(eips) == 1, "the access node needs exactly one Elastic IP: %s" % st["addresses"]
    assert len(tagged(st["addresses"], name)) == 1, st["addresses"]
    assert d["_accessip"] == eips[0]["public_ip"], (d["_accessip"], eips[0])

    # masters: 10.0.0.11 + i, of master_type
    mips = sorted(i["private_ip"] for i in by_group["masters"])
    want_ips = sorted("10.0.0.%d" % (11 + i) for i in range(masters))
    defer(stack, mips == want_ips, "masters' private IPs are %s, not %s" % (mips, want_ips))
    if master_type:
        assert {i["instance_type"] for i in by_group["masters"]} == {master_type}, by_group["masters"]

    # agents: instance type, root volume of disk_size, customhwconf's EBS volumes
    vols_of = defaultdict(list)
    for v in st["volumes"]:
        att = v.get("attachment") or {}
        if att.get("instance_id"):
            vols_of[att["instance_id"]].append(v)
    for g, spec in groups.items():
        for i in by_group[g]:
            assert i["instance_type"] == spec["instance_type"], (g, i["instance_type"])
            vols = vols_of[i["id"]]
            extra = sorted((v["attachment"]["device"], v["size"], v["volume_type"])
                           for v in vols if EXTRA_DEVICE.match(v["attachment"]["device"]))
            root = [v for v in vols if not EXTRA_DEVICE.match(v["attachment"]["device"])]
            want_extra = sorted(("/dev/" + x["device"], x["size"], x["type"]) for x in spec.get("disks", []))
            assert extra == want_extra, "volumes of %s (%s): %s, customhwconf wants %s" % (
                i["id"], i["tags"]["dexter:host"], extra, want_extra)
            assert len(root) == 1 and root[0]["size"] == spec["disk_size"], \
                "root volume of %s should be %d GB: %s" % (i["id"], spec["disk_size"], root)
            for v in vols:
                assert v["attachment"]["delete_on_termination"] is True, v
                assert v["tags"].get("dexter:cluster") == name, "volume untagged: %s" % v
                assert v["tags"].get("dexter:host") == i["tags"]["dexter:host"], v
            text = user_data_text(i)
            if provision and g in provision:
                check_provisioned(i, text, provision[g])
            for x in spec.get("disks", []):
                # mounted at /hdd/<device> (the script may build the path from the name)
                assert "/hdd/" in text and re.search(r"\b%s\b" % x["device"], text), \
                    "user data of %s does not mount %s under /hdd" % (i["id"], x["device"])

    check_network(st, name)
    check_owned_tags(st, name, uid)
    return by_group, st


def check_provisioned(inst, text, group):
    """The user data writes the group's role, attributes and vars to the host
    (the issue: "write the group's role, attributes and vars")."""
    host = inst["tags"]["dexter:host"]
    assert group["role"] in text, "user data of %s lacks the group's role %r" % (host, group["role"])
    for what in ("attributes", "vars"):
        for k, v in group[what].items():
            assert json.dumps(k) in text and (json.dumps(v) if isinstance(v, str) else str(v)) in text, \
                "user data of %s lacks %s %s=%r" % (host, what, k, v)


def check_network(st, name):
    """PROTOCOL.md's network plan: one VPC 10.0.0.0/16; subnet 10.0.0.0/24 for
    the hosts with fixed addresses (access, masters) and 10.0.32.0/19 for the
    agents; one attached gateway; one route table 0.0.0.0/0 -> gateway
    associated with both subnets; three security groups; every instance in
    its subnet."""
    vpcs = tagged(st["vpcs"], name)
    assert len(vpcs) == 1 and vpcs[0]["cidr"] == "10.0.0.0/16", vpcs
    vpc = vpcs[0]["id"]
    subnets = {s["cidr"]: s for s in tagged(st["subnets"], name)}
    assert sorted(subnets) == ["10.0.0.0/24", "10.0.32.0/19"] and len(tagged(st["subnets"], name)) == 2, \
        "subnets: %s" % tagged(st["subnets"], name)
    assert all(s["vpc_id"] == vpc for s in subnets.values()), subnets
    fixed, agents = subnets["10.0.0.0/24"]["id"], subnets["10.0.32.0/19"]["id"]
    igws = tagged(st["internet_gateways"], name)
    assert len(igws) == 1 and igws[0]["vpc_id"] == vpc, igws
    rtbs = tagged(st["route_tables"], name)
    assert len(rtbs) == 1 and rtbs[0]["vpc_id"] == vpc, rtbs
    assert {"destination": "0.0.0.0/0", "target": igws[0]["id"]} in rtbs[0]["routes"], rtbs[0]
    assert sorted(a["subnet_id"] for a in rtbs[0]["associations"]) == sorted([fixed, agents]), rtbs[0]
    sgs = tagged(st["security_groups"], name)
    assert len(sgs) == 3 and all(g["vpc_id"] == vpc for g in sgs), sgs
    # nothing of ours in another VPC (the fake holds one cluster per test)
    assert all(s["vpc_id"] == vpc for s in st["subnets"]), st["subnets"]
    for i in live_instances(st, name):
        want = agents if i["tags"].get("dexter:role") == "agent" else fixed
        assert i["subnet_id"] == want, "%s (%s) is in subnet %s, not %s" % (
            i["id"], i["tags"].get("dexter:host"), i["subnet_id"], want)


def check_owned_tags(st, name, uid=None):
    """Every resource in the fake belongs to the cluster (dexter:cluster, and
    one dexter:uid of 12 hex digits), except what AWS makes by itself (a VPC's
    main route table and default group), images, and the imported key pair."""
    kinds = ("vpcs", "subnets", "internet_gateways", "route_tables", "security_groups", "instances",
             "volumes", "addresses")
    uids = set()
    for kind in kinds:
        for r in st[kind]:
            if kind == "route_tables" and r.get("main"):
                continue
            if kind == "security_groups" and r.get("name") == "default":
                continue
            t = r.get("tags", {})
            assert t.get("dexter:cluster") == name, "%s %s is not tagged dexter:cluster=%s: %s" % (
                kind, r["id"], name, t)
            assert t.get("Name"), "%s %s has no Name tag: %s" % (kind, r["id"], t)
            uids.add(t.get("dexter:uid"))
    assert len(uids) <= 1, "resources of one cluster carry different dexter:uid tags: %s" % uids
    if uids:
        u = uids.pop()
        assert u and re.fullmatch(r"[0-9a-f]{12}", u), "dexter:uid should be 12 hex digits: %r" % u
        if uid:
            assert u == uid, (u, uid)


def check_key_pair(st, key_name, cluster, pem_path):
    """The key pair was imported once from the config's key, tagged
    dexter:imported-by and not owned (dexter:cluster)."""
    keys = [k for k in st["key_pairs"] if k["name"] == key_name]
    assert len(keys) == 1, st["key_pairs"]
    k = keys[0]
    assert k["tags"].get("dexter:imported-by") == cluster, k
    assert "dexter:cluster" not in k["tags"], "an imported key pair must not be owned: %s" % k
    assert k["public_key"].split()[1] == public_key_blob(pem_path), "imported key is not the config's"
    return k


def check_nothing_left(stack, name):
    """After destroy: no live instance, no VPC/subnet/SG/IGW/route table/EIP/
    volume of the cluster (and, the fake holding one cluster, none at all)."""
    st = stack.fake_state()
    left = [i for i in st["instances"] if i["state"] != "terminated"]
    assert not left, "instances left after destroy: %s" % [(i["id"], i["state"], i["tags"]) for i in left]
    for kind in ("vpcs", "subnets", "internet_gateways", "route_tables", "security_groups", "addresses",
                 "volumes"):
        assert not tagged(st[kind], name), "%s of %s left after destroy: %s" % (kind, name, tagged(st[kind], name))
        assert not st[kind], "%s left after destroy: %s" % (kind, st[kind])
    return st


def check_no_duplicates(st, name, expected_hosts):
    """Each host exists exactly once, ever: one instance (terminated ones
    included) per dexter:host, one client token per host, one instance per
    client token, and the hosts are exactly the expected ones."""
    insts = tagged(st["instances"], name)
    by_host = defaultdict(list)
    for i in insts:
        by_host[i["tags"].get("dexter:host")].append(i)
    dup = {h: [(i["id"], i["state"], i["client_token"]) for i in v] for h, v in by_host.items() if len(v) > 1}
    assert not dup, "more than one instance per dexter:host: %s" % dup
    assert len(insts) == expected_hosts, "%d instances ever launched, want %d" % (len(insts), expected_hosts)
    tokens = Counter(i["client_token"] for i in insts)
    assert all(tokens), "RunInstances without a ClientToken: %s" % [i["id"] for i in insts if not i["client_token"]]
    assert max(tokens.values()) == 1, "one client token for several instances: %s" % tokens
    # every reservation of the fake is one of ours and holds one instance
    assert len(st["client_tokens"]) == expected_hosts, st["client_tokens"]


def run_instances_tokens(stack):
    """Client tokens of the RunInstances calls that succeeded, from the call log."""
    return [e.get("client_token") for e in stack.fake_calls()["log"]
            if e["action"] == "RunInstances" and e["status"] == 200]


def resource_ids(st):
    """{kind: sorted ids} of every resource in a fake state (images aside)."""
    return {k: sorted(r["id"] for r in st[k]) for k in RESOURCE_KINDS}


def ok_counts(stack):
    calls = stack.fake_calls()["by_action_ok"]
    return {a: calls.get(a, 0) for a in CREATING_ACTIONS}


def assert_no_secret_in_logs(stack, secrets):
    for proc in stack.procs:
        text = proc.log()
        for s in secrets:
            assert s not in text, "%s logged a secret (%s...)" % (proc.name, s[:6])
