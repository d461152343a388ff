"""Helpers of the Azure end-to-end tests (test_azure_deploy.py,
test_azure_faults.py): the API calls they make, bounded waits on a
deployment, and the checks of what the fake ARM holds against what the spec
asks for.

The API, events and waits are aws_helpers' (they know no cloud); what is
Azure's is here. The contract checked is issue 15 ("Resources"),
proto/PROTOCOL.md ("Steps": ownership tags, the network plan, fixed private
addresses) and docs/api.md (deployment object, events, a group's `hosts`):
one resource group dexter-NAME; a virtual network NAME-vnet with the
subnets `hosts` (10.0.0.0/24) and `agents` (10.0.32.0/19); the network
security groups NAME-nsg-{cluster,access,public}; the access node's static
public IP NAME-access-ip, whose address is the deployment's `_accessip`;
per host a NIC HOSTNAME-nic and a VM HOSTNAME, its OS disk of `disk_size`
GB and one managed data disk per `customhwconf` disk; every resource the
worker makes carries the ownership tags.
"""
import base64
import email
import gzip
import ipaddress
import json
import math
from collections import Counter, defaultdict

import yaml

import aws_helpers
from aws_helpers import api, events, get_deployment, short, wait_finished_event

# vCPUs and GiB of the sizes these tests use (Azure's published figures, as
# common/dx_catalog.def has them).
SIZES = {"Basic_A2": (2, 3.5), "Standard_D11": (2, 14), "Standard_A2_v2": (2, 4), "Standard_D2_v3": (2, 8)}
SSH_USER = "dexter"
SSH_PASSWORD = "Secr3t.Passw0rd"
LOCATION = "westeurope"
HOSTS_CIDR, AGENTS_CIDR, VNET_CIDR = "10.0.0.0/24", "10.0.32.0/19", "10.0.0.0/16"
NSG_SUFFIXES = ("cluster", "access", "public")
DESTROY_STEPS = ["destroy.group"]
IMAGE_OS_DISK_GB = 30   # the OS disk of the images Dexter boots
VM_TYPE = "Microsoft.Compute/virtualMachines"
NIC_TYPE = "Microsoft.Network/networkInterfaces"
DISK_TYPE = "Microsoft.Compute/disks"
PIP_TYPE = "Microsoft.Network/publicIPAddresses"
NSG_TYPE = "Microsoft.Network/networkSecurityGroups"
VNET_TYPE = "Microsoft.Network/virtualNetworks"


def hosts_for(size, cpus, ram):
    vcpus, mem = SIZES[size]
    return max(math.ceil(cpus / vcpus), math.ceil(ram / mem))


# ------------------------------------------------------------ credentials --

def credentials_file(stack, drop=(), **changes):
    """The fake's `--sdk-auth` file (endpoints at the fake ARM), without the
    fields in `drop` and with `changes`."""
    creds = stack.arm_credentials()
    for k in drop:
        creds.pop(k)
    creds.update(changes)
    return creds


def encode_credentials(creds):
    """What a user sends as `credentials`: base64url of the file."""
    return base64.urlsafe_b64encode((json.dumps(creds, indent=2) + "\n").encode()).decode()


# ------------------------------------------------------------------- API --

def make_azure_cluster(stack, name, groups, masters=1, master_type="Standard_A2_v2", location=LOCATION,
                       image=None, ctype="mesos"):
    """Creates a configured azure cluster with groups [{name, instance_type,
    cpus, ram, disk_size?, customhwconf?, role?, attributes?, vars?}];
    returns {group: hosts}."""
    api(stack, "POST", "/clusters", 201, data={"name": name, "provider": "azure", "type": ctype})
    config = {"location": location, "masters": str(masters), "master_type": master_type,
              "ssh_user": SSH_USER, "ssh_password": SSH_PASSWORD}
    if image:
        config["image"] = image
    api(stack, "PUT", "/clusters/%s/config" % name, 200, data=config)
    hosts = {}
    for g in groups:
        body = {"name": g["name"], "role": g.get("role", "*"), "attributes": g.get("attributes", {}),
                "vars": g.get("vars", {}), "instance_type": g["instance_type"], "cpus": g["cpus"],
                "ram": g["ram"], "disk_size": g.get("disk_size", 30)}
        if "customhwconf" in g:
            body["customhwconf"] = g["customhwconf"]
        _, out = api(stack, "POST", "/clusters/%s/groups" % name, 201, json=body)
        assert out["hosts"] == hosts_for(g["instance_type"], g["cpus"], g["ram"]), out
        hosts[g["name"]] = out["hosts"]
    return hosts


def put_group(stack, name, group, **changes):
    """PUT the group as it is, with `changes` (JSON body); returns it."""
    _, g = api(stack, "GET", "/clusters/%s/groups/%s" % (name, group), 200)
    body = {k: g[k] for k in ("name", "role", "attributes", "vars", "instance_type", "cpus", "ram", "disk_size",
                              "customhwconf")}
    body.update(changes)
    _, out = api(stack, "PUT", "/clusters/%s/groups/%s" % (name, group), 200, json=body)
    return out


def put_deployment(stack, name, command="deploy", credentials=None, parallelism=None, expect=202):
    """PUT deployment with the fake's credentials (or `credentials`, a file
    as a dict or already encoded)."""
    creds = credentials if credentials is not None else credentials_file(stack)
    data = {"command": command,
            "credentials": creds if isinstance(creds, str) else encode_credentials(creds)}
    if parallelism is not None:
        data["parallelism"] = str(parallelism)
    _, body = api(stack, "PUT", "/clusters/%s/deployment" % name, expect, data=data)
    if expect == 202:
        assert body["started_at"] and body["finished_at"] is None, body
    return body


def diagnose(stack, name, tail=40):
    """What to print when a deployment does not end as it should: the
    deployment, its last events, the scheduler's and azure-workers' logs and
    the fake ARM's error counts."""
    parts = []
    try:
        parts.append("deployment: " + json.dumps(get_deployment(stack, name), indent=1))
        parts.append("last events:\n" + short(events(stack, name)[-tail:]))
    except Exception as e:  # the point is to show what we can
        parts.append("(could not read the deployment: %s)" % e)
    for proc in [stack.scheduler] + list(stack.azure_workers):
        if proc is not None:
            lines = [l for l in proc.log().splitlines()
                     if "request type=deployment.get " not in l and "request type=deployment.events " not in l]
            parts.append("---- %s (%s) log tail:\n%s" % (
                proc.name, "alive" if proc.alive() else "exit %s" % proc.popen.returncode,
                "\n".join(lines[-25:])))
    try:
        calls = stack.arm_calls()
        parts.append("fake ARM calls: by request %s\n  errors %s\n  last: %s" % (
            calls["by_request"], calls["by_error_code"],
            "\n    ".join(json.dumps(e) for e in calls["log"][-15:])))
    except Exception:
        pass
    return "\n".join(parts)


def wait_deployment(stack, name, generation, command="deploy", timeout=90, allow_failure=False):
    """aws_helpers.wait_deployment, with the Azure side's logs and calls
    added to its failure."""
    try:
        return aws_helpers.wait_deployment(stack, name, generation, command, timeout, allow_failure)
    except AssertionError as e:
        raise AssertionError("%s\n==== azure side:\n%s" % (e, diagnose(stack, name))) from None


def deploy(stack, name, command="deploy", parallelism=None, timeout=90, credentials=None):
    """PUT deployment, wait for it to end well; returns (deployment, its events)."""
    body = put_deployment(stack, name, command, credentials, parallelism)
    assert body["state"] == ("deploying" if command == "deploy" else "destroying"), body
    gen = body["generation"]
    d = wait_deployment(stack, name, gen, command, timeout)
    return d, wait_finished_event(stack, name, gen)


# The events of one generation: requested first, finished last, every step
# started by a named worker and, in a success, done (no cloud in it).
check_events = aws_helpers.check_events


def planned_steps(masters, groups):
    """The steps of a first Azure deploy: network, security, image (no key
    pair), the vpn's server bundle, the access node, its vpn profile,
    masters and every group's hosts."""
    steps = ["network", "security", "image", "vpn.server", "host.access", "vpn.profile"]
    steps += ["host.masters.%d" % i for i in range(masters)]
    for g, n in groups.items():
        steps += ["host.%s.%d" % (g, i) for i in range(n)]
    return steps


def fail_reason(stack, name, generation, timeout=60):
    """Waits for generation to end deploy_failed; returns (last_error, events)."""
    d = wait_deployment(stack, name, generation, allow_failure=True, timeout=timeout)
    assert d["state"] == "deploy_failed", "expected deploy_failed:\n%s" % diagnose(stack, name)
    err = d["last_error"]
    assert isinstance(err, dict) and err.get("step") and err.get("code") and err.get("message"), d
    evs = wait_finished_event(stack, name, generation)
    check_events(evs, generation, "deploy_failed")
    fin = [e for e in evs if e["type"] == "deployment.finished"][0]
    assert fin.get("code") == err["code"], (fin, err)
    return err, evs


# ---------------------------------------------------------- fake's state --

def of_type(st, type_name):
    return [r for r in st["resources"] if r["type"].lower() == type_name.lower()]


def top_level(st):
    """Resources that are not children (subnets, security rules)."""
    return [r for r in st["resources"] if r["parent"] is None]


def custom_data_text(raw):
    """A VM's custom data as text to search: the document, and, when it
    is MIME multipart or #cloud-config (cloud-init's formats), every part
    and the content of every file its write_files writes."""
    if not raw:
        return ""
    data = base64.b64decode(raw)
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    text = data.decode("utf-8", "replace")
    parts = [text]
    if text.startswith(("Content-Type: multipart", "MIME-Version")):
        for part in email.message_from_string(text).walk():
            if not part.is_multipart():
                parts.append(part.get_payload(decode=True).decode("utf-8", "replace"))
    for part in list(parts):
        if part.startswith("#cloud-config"):
            for f in (yaml.safe_load(part) or {}).get("write_files") or []:
                content = f.get("content") or ""
                encoding = (f.get("encoding") or "").lower()
                if encoding in ("b64", "base64", "gz+b64", "gzip+base64", "gz+base64", "gzip+b64"):
                    content = base64.b64decode(content)
                    if content[:2] == b"\x1f\x8b":
                        content = gzip.decompress(content)
                    content = content.decode("utf-8", "replace")
                parts.append(content)
    return "\n".join(parts)


def vm_props(vm):
    return vm["body"].get("properties") or {}


def nic_config(nic):
    """(the first IP configuration's properties, its private address)."""
    configs = (nic["body"].get("properties") or {}).get("ipConfigurations") or []
    assert len(configs) == 1, "NIC %s has %d IP configurations" % (nic["name"], len(configs))
    addrs = list(nic["privateIPAddresses"].values())
    return configs[0].get("properties") or {}, (addrs[0] if addrs else None)


def check_cluster(stack, name, masters, groups, master_type=None, location=LOCATION, deployment=None,
                  provision=None):
    """What the fake ARM holds for a deployed cluster equals the spec.

    groups: {group: {"hosts": N, "instance_type": T, "disk_size": GB,
    "disks": [{"size","type","device"}]}} (a group's disks are checked on
    the hosts listed in its "disks_on", default all). provision: {group:
    group object of the API}: its agents' custom data must carry the group's
    role, attributes and vars. Returns ({group: [VM]}, the fake's state)."""
    st = stack.arm_state()
    d = deployment or get_deployment(stack, name)
    assert d["state"] == "deployed", d
    rg_name = "dexter-" + name

    # one resource group, in the location, tagged
    groups_here = st["resourceGroups"]
    assert [g["name"] for g in groups_here] == [rg_name], "resource groups: %s" % [g["name"] for g in groups_here]
    rg = groups_here[0]
    assert rg["location"] == location, rg
    uid = rg["tags"].get("dexter:uid")
    assert rg["tags"].get("dexter:cluster") == name and uid, rg["tags"]
    assert all(r["resourceGroup"].lower() == rg_name for r in st["resources"]), \
        "resources outside %s: %s" % (rg_name, [r["id"] for r in st["resources"]
                                              if r["resourceGroup"].lower() != rg_name])
    for r in top_level(st):
        assert r["location"] == location, "%s is in %s" % (r["id"], r["location"])
        assert r["provisioningState"] == "Succeeded", "deployed, but %s is %s" % (r["id"], r["provisioningState"])

    # VMs per dexter:group; one per host name, named after it
    vms = of_type(st, VM_TYPE)
    by_group = defaultdict(list)
    for vm in vms:
        by_group[vm["tags"].get("dexter:group")].append(vm)
    counts = {g: len(v) for g, v in by_group.items()}
    want = dict({"access": 1, "masters": masters}, **{g: spec["hosts"] for g, spec in groups.items()})
    assert counts == want, "VMs per dexter:group %s, the spec wants %s" % (counts, want)
    hosts = Counter(vm["tags"].get("dexter:host") for vm in vms)
    assert max(hosts.values()) == 1, "more than one VM per dexter:host: %s" % hosts
    for vm in vms:
        t = vm["tags"]
        for key in ("dexter:cluster", "dexter:uid", "dexter:role", "dexter:group", "dexter:host"):
            assert t.get(key), "VM %s lacks tag %s: %s" % (vm["name"], key, t)
        assert vm["name"] == t["dexter:host"], (vm["name"], t)
        role = {"access": "access", "masters": "master"}.get(t["dexter:group"], "agent")
        assert t["dexter:role"] == role, t
        os_profile = vm_props(vm).get("osProfile") or {}
        assert os_profile.get("adminUsername") == SSH_USER, os_profile.get("adminUsername")
        assert os_profile.get("computerName") == t["dexter:host"], os_profile.get("computerName")
        # made by one PUT and never changed (a step run again, a twin
        # attempt, an unchanged deploy: they find it as it is)
        assert vm["changes"] == 1, "VM %s was changed by %d PUTs" % (vm["name"], vm["changes"])
        assert os_profile.get("adminPassword") == SSH_PASSWORD, "VM %s: password %r, not the config's" % (
            vm["name"], os_profile.get("adminPassword"))
        assert t["dexter:host"] in custom_data_text(os_profile.get("customData")), \
            "custom data of %s does not set its host name" % vm["name"]

    # network
    vnets = of_type(st, VNET_TYPE)
    assert [v["name"] for v in vnets] == [name + "-vnet"], [v["name"] for v in vnets]
    vnet = vnets[0]
    assert (vnet["body"]["properties"]["addressSpace"]["addressPrefixes"]) == [VNET_CIDR], vnet["body"]
    subnets = {s["name"]: s for s in of_type(st, VNET_TYPE + "/subnets")}
    assert sorted(subnets) == ["agents", "hosts"], sorted(subnets)
    for sname, cidr in (("hosts", HOSTS_CIDR), ("agents", AGENTS_CIDR)):
        s = subnets[sname]
        assert s["parent"].lower() == vnet["id"].lower(), s
        assert (s["body"].get("properties") or {}).get("addressPrefix") == cidr, (sname, s["body"])
    nsgs = {n["name"]: n for n in of_type(st, NSG_TYPE)}
    assert sorted(nsgs) == sorted("%s-nsg-%s" % (name, x) for x in NSG_SUFFIXES), sorted(nsgs)
    check_access_rules(st, nsgs["%s-nsg-access" % name])

    # per host: its NIC (name, subnet, address), OS disk, data disks
    nics = {n["name"]: n for n in of_type(st, NIC_TYPE)}
    assert len(nics) == len(vms), "%d NICs for %d VMs: %s" % (len(nics), len(vms), sorted(nics))
    disks_of = defaultdict(list)
    for disk in of_type(st, DISK_TYPE):
        disks_of[(disk["managedBy"] or "").lower()].append(disk)
    assert not disks_of.get(""), "disks attached to no VM: %s" % [x["name"] for x in disks_of[""]]
    master_ips = []
    for vm in vms:
        host, group = vm["tags"]["dexter:host"], vm["tags"]["dexter:group"]
        nic = nics.get(host + "-nic")
        assert nic is not None, "no NIC %s-nic: %s" % (host, sorted(nics))
        assert [x.lower() for x in vm["networkInterfaces"]] == [nic["id"].lower()], (host, vm["networkInterfaces"])
        assert (nic["virtualMachine"] or "").lower() == vm["id"].lower(), nic
        assert nic["tags"].get("dexter:host") == host, nic["tags"]
        assert nic["changes"] == 1, "NIC %s was changed by %d PUTs" % (nic["name"], nic["changes"])
        props, ip = nic_config(nic)
        subnet = (props.get("subnet") or {}).get("id", "")
        assert ip, "NIC %s has no private address" % nic["name"]
        if group == "access":
            assert subnet.lower() == subnets["hosts"]["id"].lower(), (host, subnet)
            assert ip == "10.0.0.10", "the access node's address is %s, not 10.0.0.10" % ip
        elif group == "masters":
            assert subnet.lower() == subnets["hosts"]["id"].lower(), (host, subnet)
            master_ips.append(ip)
        else:
            assert subnet.lower() == subnets["agents"]["id"].lower(), (host, subnet)
            assert ipaddress.ip_address(ip) in ipaddress.ip_network(AGENTS_CIDR), (host, ip)
        size = vm_props(vm)["hardwareProfile"]["vmSize"]
        if group == "masters" and master_type:
            assert size == master_type, (host, size)
        spec = groups.get(group)
        if spec:
            assert size == spec["instance_type"], (host, size, spec)
        attached = disks_of.get(vm["id"].lower(), [])
        os_disks = [x for x in attached if x["id"].lower() == (vm["disks"].get("os") or "").lower()]
        assert len(os_disks) == 1, "VM %s: OS disk %s among %s" % (host, vm["disks"], [x["name"] for x in attached])
        if spec:
            # (a disk_size under the image's 30 GB leaves the size to the image)
            want_gb = max(spec["disk_size"], IMAGE_OS_DISK_GB)
            assert os_disks[0]["diskSizeGB"] == want_gb, (host, os_disks[0]["diskSizeGB"], spec)
        assert os_disks[0]["deleteOption"] == "Delete", "%s's OS disk would outlive it: %s" % (host, os_disks[0])
        assert os_disks[0]["tags"].get("dexter:host") == host, "OS disk of %s: %s" % (host, os_disks[0]["tags"])
        data = [x for x in attached if x is not os_disks[0]]
        want_disks = spec.get("disks", []) if spec and host in spec.get("disks_on", [host]) else []
        lun_of = {v.lower(): int(k[3:]) for k, v in vm["disks"].items() if k.startswith("lun")}
        got = sorted((lun_of[x["id"].lower()], x["diskSizeGB"], x["sku"]) for x in data)
        assert got == [(i, w["size"], w["type"]) for i, w in enumerate(want_disks)], \
            "data disks of %s (lun, GB, sku): %s; customhwconf wants %s" % (host, got, want_disks)
        text = custom_data_text(vm_props(vm)["osProfile"].get("customData"))
        for x in data:
            assert x["tags"].get("dexter:cluster") == name and x["tags"].get("dexter:host") == host, \
                "data disk %s is not tagged with its cluster and host: %s" % (x["name"], x["tags"])
        for w in want_disks:
            assert "/hdd/" in text and w["device"] in text, \
                "custom data of %s does not mount %s under /hdd" % (host, w["device"])
        if provision and group in provision:
            check_provisioned(host, text, provision[group])
    assert sorted(master_ips, key=ipaddress.ip_address) == ["10.0.0.%d" % (11 + i) for i in range(masters)], \
        "masters' addresses %s" % master_ips

    # the access node's public IP is the deployment's _accessip
    # (public agents have one each, HOSTNAME-ip; the tests' groups are private)
    pips = of_type(st, PIP_TYPE)
    assert [p["name"] for p in pips] == [name + "-access-ip"], [p["name"] for p in pips]
    pip = pips[0]
    assert (pip["body"].get("properties") or {}).get("publicIPAllocationMethod") == "Static", pip["body"]
    assert pip["ipAddress"] and d["_accessip"] == pip["ipAddress"], (d["_accessip"], pip["ipAddress"])
    access_nic = nics[by_group["access"][0]["name"] + "-nic"]
    props, _ = nic_config(access_nic)
    assert ((props.get("publicIPAddress") or {}).get("id") or "").lower() == pip["id"].lower(), props

    check_owned(st, name, uid)
    return by_group, st


def check_access_rules(st, nsg):
    """The access NSG lets in SSH (tcp 22) and OpenVPN (udp 1194)."""
    rules = [r for r in of_type(st, NSG_TYPE + "/securityRules") if r["parent"].lower() == nsg["id"].lower()]
    rules += [r for r in (nsg["body"].get("properties") or {}).get("securityRules") or []]
    seen = set()
    for r in rules:
        p = r.get("properties") or (r.get("body") or {}).get("properties") or {}
        if p.get("access") == "Allow" and p.get("direction") == "Inbound":
            ports = [p.get("destinationPortRange")] + list(p.get("destinationPortRanges") or [])
            for port in ports:
                seen.add(((p.get("protocol") or "").lower(), port))
    assert ("tcp", "22") in seen and ("udp", "1194") in seen, "access NSG's inbound rules: %s" % sorted(
        seen, key=str)


def check_provisioned(host, text, group):
    """The custom data writes the group's role, attributes and vars."""
    assert group["role"] in text, "custom data of %s lacks the group's role %r" % (host, group["role"])
    for what in ("attributes", "vars"):
        for k, v in group[what].items():
            assert json.dumps(k) in text and (json.dumps(v) if isinstance(v, str) else str(v)) in text, \
                "custom data of %s lacks %s %s=%r" % (host, what, k, v)


def check_owned(st, name, uid=None):
    """Every top-level resource in the subscription is the cluster's
    (dexter:cluster, one dexter:uid of 12 hex digits, dexter:role), the
    OS disks ARM makes untagged included (the worker tags them); nothing is
    orphaned: every NIC and disk is attached to a VM."""
    uids = set()
    for r in top_level(st):
        t = r.get("tags") or {}
        assert t.get("dexter:cluster") == name, "%s is not tagged dexter:cluster=%s: %s" % (r["id"], name, t)
        assert t.get("dexter:role"), "%s has no dexter:role: %s" % (r["id"], t)
        uids.add(t.get("dexter:uid"))
    assert len(uids) == 1, "resources of one cluster carry different dexter:uid tags: %s" % uids
    u = uids.pop()
    assert u and len(u) == 12 and all(c in "0123456789abcdef" for c in u), u
    if uid:
        assert u == uid, (u, uid)
    for nic in of_type(st, NIC_TYPE):
        assert nic["virtualMachine"], "NIC %s is attached to no VM (orphaned)" % nic["name"]
    for disk in of_type(st, DISK_TYPE):
        assert disk["managedBy"], "disk %s is attached to no VM (orphaned)" % disk["name"]


def vm_ids(vms):
    """{host: vmId}: a VM made anew gets another vmId."""
    return {vm["tags"]["dexter:host"]: vm["vmId"] for vm in vms}


def resources_of_host(st, host):
    """Ids of the VM, NIC and disks of one host in a state."""
    out = set()
    for r in st["resources"]:
        if r["name"] in (host, host + "-nic") or (r.get("tags") or {}).get("dexter:host") == host:
            out.add(r["id"].lower())
    for vm in of_type(st, VM_TYPE):
        if vm["name"] == host:
            out |= {v.lower() for v in vm["disks"].values()}
    return out


def check_nothing_left(stack, name):
    """After destroy: nothing tagged with the cluster, and (the fake holding
    one cluster) nothing at all, and no operation still running."""
    st = stack.arm_state()
    mine = stack.arm_state(("dexter:cluster", name))
    assert not mine["resourceGroups"] and not mine["resources"], "left after destroy: %s" % (
        [r["id"] for r in mine["resourceGroups"] + mine["resources"]])
    assert not st["resourceGroups"] and not st["resources"], "left after destroy: %s" % (
        [r["id"] for r in st["resourceGroups"] + st["resources"]])
    assert not st["operations"]["pending"], st["operations"]
    return st


def check_nothing_created(stack):
    """Nothing exists and no write ever succeeded."""
    st = stack.arm_state()
    assert not st["resourceGroups"] and not st["resources"], [r["id"] for r in st["resourceGroups"] +
                                                               st["resources"]]
    calls = stack.arm_calls()
    writes = {k: v for k, v in calls["by_request_ok"].items() if k.split()[0] in ("PUT", "PATCH", "DELETE", "POST")
              and k != "POST token"}
    assert not writes, "writes that succeeded: %s" % writes


def writes(stack):
    """{"PUT": n, "DELETE": n, "PATCH": n, "POST": n} calls of the fake ARM,
    token requests aside."""
    calls = stack.arm_calls()
    out = {m: calls["by_method"].get(m, 0) for m in ("PUT", "DELETE", "PATCH", "POST")}
    out["POST"] -= calls["by_request"].get("POST token", 0)
    return out


assert_no_secret_in_logs = aws_helpers.assert_no_secret_in_logs

