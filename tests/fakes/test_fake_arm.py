"""Tests of the fake ARM (tests/fakes/fake_arm.py): the token endpoint, ARM's
checks and errors, long-running operations, the resource rules, throttling
and faults, driven by plain HTTP and by bodies the Azure SDK serialises.

Run: /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/fakes
"""
import base64
import datetime
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest
import requests
from azure.mgmt.compute.v2022_08_01 import models as cm
from azure.mgmt.network.v2022_07_01 import models as nm
from azure.mgmt.resource.resources.v2022_09_01 import models as rm

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import fake_arm  # noqa: E402

SUB = fake_arm.DEFAULT_SUBSCRIPTION
TENANT, CLIENT, SECRET = fake_arm.DEFAULT_TENANT, fake_arm.DEFAULT_CLIENT_ID, fake_arm.DEFAULT_CLIENT_SECRET
OTHER = fake_arm.Principal("0c0ffee0-0000-4000-8000-000000000002", "0c0ffee0-0000-4000-8000-0000000000c2",
                           "other~secret", "0c0ffee0-0000-4000-8000-0000000000b2")
LOC = "westeurope"
LRO_S = 1.0
PASSWORD = "Dexter-Pa55"
TAGS = {"dexter:cluster": "c1", "dexter:role": "master", "dexter:group": "masters", "dexter:host": "c1-master-0"}


# ---------------------------------------------------------------- helpers

@pytest.fixture
def srv():
    default = fake_arm.Principal(TENANT, CLIENT, SECRET, SUB)
    with fake_arm.FakeArmServer(principals=[default, OTHER], seed=11, lro_ms=int(LRO_S * 1000)) as s:
        yield s


@pytest.fixture
def arm(srv):
    return Arm(srv)


def get_token(srv, tenant=TENANT, client=CLIENT, secret=SECRET, scope=None, **extra):
    data = {"grant_type": "client_credentials", "client_id": client, "client_secret": secret,
            "scope": scope or srv.endpoint_url + "/.default", **extra}
    data = {k: v for k, v in data.items() if v is not None}
    return requests.post("%s/%s/oauth2/v2.0/token" % (srv.endpoint_url, tenant), data=data, timeout=10)


class Reply:
    def __init__(self, r):
        self.status, self.headers = r.status_code, r.headers
        self.json = r.json() if r.content else None
        self.code = (self.json or {}).get("error", {}).get("code") if isinstance(self.json, dict) else None

    def __repr__(self):
        return "Reply(%d, %s)" % (self.status, json.dumps(self.json)[:400])


class Arm:
    """Plain HTTP against the fake ARM with a bearer token; paths are ids."""

    def __init__(self, srv, token=None):
        self.srv, self.fake, self.url = srv, srv.fake, srv.endpoint_url
        self.token = token or get_token(srv).json()["access_token"]
        self.http = requests.Session()

    @staticmethod
    def api_of(path):
        if "/Microsoft.Compute/disks" in path:
            return fake_arm.DISK_API
        if "/Microsoft.Compute/" in path:
            return fake_arm.COMPUTE_API
        if "/Microsoft.Network/" in path:
            return fake_arm.NETWORK_API
        return fake_arm.RESOURCES_API

    def call(self, method, path, body=None, api="auto", headers=None, data=None, params=None):
        url = path if path.startswith("http") else self.url + path
        query = dict(params or {})
        if api == "auto" and "api-version=" not in url:
            query["api-version"] = self.api_of(path)
        elif api not in ("auto", None):
            query["api-version"] = api
        hdrs = {"Authorization": "Bearer " + self.token, **(headers or {})}
        if data is None and body is not None:
            data, hdrs["Content-Type"] = json.dumps(body), "application/json"
        return Reply(self.http.request(method, url, data=data, headers=hdrs, params=query, timeout=10))

    def put(self, path, body, **kw):
        return self.call("PUT", path, body, **kw)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    def settle(self):
        """Lets every running operation end (the fake's clock moves)."""
        self.fake.advance(LRO_S + 0.5)

    def ok(self, method, path, body=None):
        r = self.call(method, path, body)
        assert r.status < 300, r
        self.settle()
        return r


def rg(name="dexter-c1"):
    return "/subscriptions/%s/resourceGroups/%s" % (SUB, name)


def net(kind, name, group="dexter-c1"):
    return "%s/providers/Microsoft.Network/%s/%s" % (rg(group), kind, name)


def vm_id(name, group="dexter-c1"):
    return "%s/providers/Microsoft.Compute/virtualMachines/%s" % (rg(group), name)


def disk_id(name, group="dexter-c1"):
    return "%s/providers/Microsoft.Compute/disks/%s" % (rg(group), name)


SUBNET = net("virtualNetworks", "vnet") + "/subnets/masters"
AGENTS = net("virtualNetworks", "vnet") + "/subnets/agents"


def vnet_body(subnets=(("masters", "10.0.0.0/24"), ("agents", "10.0.16.0/20")), nsg=None):
    return {"location": LOC, "tags": TAGS, "properties": {
        "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
        "subnets": [{"name": n, "properties": {"addressPrefix": p, **(
            {"networkSecurityGroup": {"id": nsg}} if nsg else {})}} for n, p in subnets]}}


def rule(name, priority, port, protocol="Tcp"):
    return {"name": name, "properties": {"protocol": protocol, "access": "Allow", "direction": "Inbound",
                                         "priority": priority, "sourceAddressPrefix": "*", "sourcePortRange": "*",
                                         "destinationAddressPrefix": "*", "destinationPortRange": port}}


def nic_body(subnet=SUBNET, ip=None, pip=None):
    props = {"subnet": {"id": subnet}}
    if ip:
        props.update(privateIPAllocationMethod="Static", privateIPAddress=ip)
    if pip:
        props["publicIPAddress"] = {"id": pip}
    return {"location": LOC, "tags": TAGS, "properties": {"ipConfigurations": [{"name": "ipconfig1",
                                                                                "properties": props}]}}


def vm_body(nic, size="Standard_D2s_v3", disks=(), sku="server", delete="Delete", **os_extra):
    return {"location": LOC, "tags": TAGS, "properties": {
        "hardwareProfile": {"vmSize": size},
        "storageProfile": {
            "imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": sku,
                               "version": "latest"},
            "osDisk": {"createOption": "FromImage", "diskSizeGB": 64, "deleteOption": delete,
                       "managedDisk": {"storageAccountType": "StandardSSD_LRS"}},
            "dataDisks": [{"lun": i, "createOption": "Empty", "diskSizeGB": gb, "deleteOption": delete,
                           "managedDisk": {"storageAccountType": sat}} for i, (gb, sat) in enumerate(disks)]},
        "osProfile": {"computerName": "c1-master-0", "adminUsername": "dexter", "adminPassword": PASSWORD,
                      "customData": base64.b64encode(b"#cloud-config\n").decode(),
                      "linuxConfiguration": {"disablePasswordAuthentication": False}, **os_extra},
        "networkProfile": {"networkInterfaces": [{"id": nic, "properties": {"deleteOption": delete}}]}}}


def network(arm, nsg=True):
    """Group, NSG, VNet with two subnets, a static public IP: the worker's network steps."""
    arm.ok("PUT", rg(), {"location": LOC, "tags": TAGS})
    nsg_id = net("networkSecurityGroups", "nsg") if nsg else None
    if nsg:
        arm.ok("PUT", nsg_id, {"location": LOC, "tags": TAGS, "properties": {
            "securityRules": [rule("ssh", 100, "22"), rule("openvpn", 110, "1194", "Udp")]}})
    arm.ok("PUT", net("virtualNetworks", "vnet"), vnet_body(nsg=nsg_id))
    arm.ok("PUT", net("publicIPAddresses", "access-ip"), {"location": LOC, "tags": TAGS, "sku": {"name": "Standard"},
                                                          "properties": {"publicIPAllocationMethod": "Static"}})


def host(arm, name="c1-master-0", ip="10.0.0.11", **kw):
    """A NIC and a VM on it; returns the VM's id."""
    nic = net("networkInterfaces", name + "-nic")
    arm.ok("PUT", nic, nic_body(ip=ip))
    arm.ok("PUT", vm_id(name), vm_body(nic, **kw))
    return vm_id(name)


def resources(arm, **filters):
    return [r for r in arm.fake.get_state()["resources"] if all(r[k] == v for k, v in filters.items())]


# ---------------------------------------------------------------- Entra ID

def test_token_grant_answers_like_entra(srv):
    r = get_token(srv)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599 and body["ext_expires_in"] == 3599
    header, claims, sig = body["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    assert claims["tid"] == TENANT and claims["appid"] == CLIENT and claims["aud"] == srv.endpoint_url
    assert claims["exp"] - claims["iat"] == 3599
    # Public-cloud scopes (and the az CLI's double slash) are known resources too.
    assert get_token(srv, scope="https://management.azure.com//.default").status_code == 200
    # client_secret_basic instead of the form's secret.
    basic = base64.b64encode(("%s:%s" % (CLIENT, SECRET)).encode()).decode()
    r = requests.post("%s/%s/oauth2/v2.0/token" % (srv.endpoint_url, TENANT), timeout=10,
                      headers={"Authorization": "Basic " + basic},
                      data={"grant_type": "client_credentials", "scope": srv.endpoint_url + "/.default"})
    assert r.status_code == 200


@pytest.mark.parametrize("change, status, error, aadsts", [
    ({"secret": "wrong"}, 401, "invalid_client", 7000215),
    ({"secret": None}, 401, "invalid_client", 7000218),
    ({"client": "11111111-2222-4333-8444-555555555555"}, 400, "unauthorized_client", 700016),
    ({"tenant": "99999999-0000-4000-8000-000000000000"}, 400, "invalid_request", 90002),
    ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
    ({"scope": "https://management.azure.com/user_impersonation"}, 400, "invalid_scope", 1002012),
    ({"scope": "https://graph.microsoft.com/.default"}, 400, "invalid_resource", 500011),
])
def test_token_errors_carry_entra_codes(srv, change, status, error, aadsts):
    r = get_token(srv, **change)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == error and body["error_codes"] == [aadsts]
    assert body["error_description"].startswith("AADSTS%d: " % aadsts)
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= set(body)


def test_wrong_secret_creates_nothing_and_secrets_stay_out_of_the_log(srv):
    lines = []
    srv.fake.log = lines.append
    assert get_token(srv, secret="not-the-secret").status_code == 401
    assert srv.fake.get_state()["resourceGroups"] == []
    arm = Arm(srv)
    network(arm)
    host(arm)
    text = "\n".join(lines)
    assert len(lines) > 5 and all(s not in text for s in (SECRET, "not-the-secret", arm.token, PASSWORD))
    assert srv.fake.get_calls()["by_request"]["POST token"] == 2


# ---------------------------------------------------------------- ARM's front door

def test_bearer_token_is_required_and_checked(srv, arm):
    r = arm.call("GET", rg(), headers={"Authorization": ""})
    assert (r.status, r.code) == (401, "AuthenticationFailed")
    assert r.headers["WWW-Authenticate"].startswith('Bearer authorization_uri="https://login.windows.net/"')
    r = arm.call("GET", rg(), headers={"Authorization": "Basic abc"})
    assert (r.status, r.code) == (401, "AuthenticationFailedInvalidHeader")
    r = arm.call("GET", rg(), headers={"Authorization": "Bearer not.a.token"})
    assert (r.status, r.code) == (401, "InvalidAuthenticationToken")
    assert arm.get(rg()).code == "ResourceGroupNotFound"


def test_tokens_expire_by_clock_and_on_demand(srv, arm):
    assert arm.get(rg()).status == 404
    srv.fake.advance(3600)
    r = arm.get(rg())
    assert (r.status, r.code) == (401, "ExpiredAuthenticationToken")
    assert re.search(r"expiry UTC time '.*' is earlier than current UTC time", r.json["error"]["message"])
    fresh = Arm(srv)
    assert fresh.get(rg()).status == 404
    assert requests.post(srv.endpoint_url + "/_fake/expire-tokens", timeout=5).json()["expired"] == 2
    assert fresh.get(rg()).code == "ExpiredAuthenticationToken"
    assert Arm(srv).get(rg()).status == 404  # a new token works again


def test_subscription_access(srv, arm):
    other = "/subscriptions/%s/resourceGroups/x" % OTHER.subscription_id
    r = arm.get(other)
    assert (r.status, r.code) == (403, "AuthorizationFailed") and CLIENT in r.json["error"]["message"]
    r = arm.get("/subscriptions/00000000-1111-4222-8333-444444444444/resourceGroups/x")
    assert (r.status, r.code) == (404, "SubscriptionNotFound")
    mine = Arm(srv, get_token(srv, OTHER.tenant_id, OTHER.client_id, OTHER.client_secret).json()["access_token"])
    assert mine.get(other).code == "ResourceGroupNotFound"
    assert arm.get("/subscriptions/" + SUB).json["state"] == "Enabled"


def test_api_version_is_required_and_judged_per_type(srv, arm):
    r = arm.call("GET", rg(), api=None)
    assert (r.status, r.code) == (400, "MissingApiVersionParameter")
    r = arm.call("GET", rg(), api="2099-01-01")
    assert (r.status, r.code) == (400, "InvalidApiVersionParameter")
    assert "The api-version '2099-01-01' is invalid. The supported versions are '2022-09-01," in r.json["error"]["message"]
    r = arm.call("GET", vm_id("x"), api="2099-01-01")
    assert (r.status, r.code) == (400, "NoRegisteredProviderFound")
    assert "for type 'virtualMachines'. The supported api-versions are '2022-08-01, " in r.json["error"]["message"]
    # Disks have their own versions: the VMs' 2022-08-01 has no Disk model.
    assert arm.call("GET", disk_id("d"), api="2022-08-01").code == "NoRegisteredProviderFound"
    assert arm.call("GET", disk_id("d"), api="2022-07-02").code == "ResourceGroupNotFound"
    # An older version whose models exist is served, judged by those models.
    arm.ok("PUT", rg(), {"location": LOC})
    r = arm.call("PUT", net("publicIPAddresses", "old"), {"location": LOC}, api="2021-02-01")
    assert r.status == 201, r


# ---------------------------------------------------------------- bodies against the SDK models

def sdk(model):
    return model.serialize()


def test_bodies_the_sdk_serialises_are_accepted(arm):
    arm.ok("PUT", rg(), sdk(rm.ResourceGroup(location=LOC, tags=TAGS)))
    arm.ok("PUT", net("networkSecurityGroups", "nsg"), sdk(nm.NetworkSecurityGroup(location=LOC, tags=TAGS,
           security_rules=[nm.SecurityRule(name="ssh", protocol="Tcp", access="Allow", direction="Inbound",
                                           priority=100, source_address_prefix="*", source_port_range="*",
                                           destination_address_prefix="*", destination_port_range="22")])))
    arm.ok("PUT", net("virtualNetworks", "vnet"), sdk(nm.VirtualNetwork(
        location=LOC, tags=TAGS, address_space=nm.AddressSpace(address_prefixes=["10.0.0.0/16"]),
        subnets=[nm.Subnet(name="masters", address_prefix="10.0.0.0/24",
                           network_security_group=nm.NetworkSecurityGroup(id=net("networkSecurityGroups", "nsg")))])))
    arm.ok("PUT", net("publicIPAddresses", "ip"), sdk(nm.PublicIPAddress(
        location=LOC, tags=TAGS, sku=nm.PublicIPAddressSku(name="Standard"), public_ip_allocation_method="Static")))
    nic = net("networkInterfaces", "nic")
    arm.ok("PUT", nic, sdk(nm.NetworkInterface(location=LOC, tags=TAGS, ip_configurations=[
        nm.NetworkInterfaceIPConfiguration(name="ipconfig1", subnet=nm.Subnet(id=SUBNET),
                                           private_ip_allocation_method="Static", private_ip_address="10.0.0.10",
                                           public_ip_address=nm.PublicIPAddress(id=net("publicIPAddresses", "ip")))])))
    body = sdk(cm.VirtualMachine(
        location=LOC, tags=TAGS, hardware_profile=cm.HardwareProfile(vm_size="Standard_D2s_v3"),
        storage_profile=cm.StorageProfile(
            image_reference=cm.ImageReference(publisher="Canonical", offer="ubuntu-24_04-lts", sku="server",
                                              version="latest"),
            os_disk=cm.OSDisk(name="c1-access-os", create_option="FromImage", disk_size_gb=64, delete_option="Delete",
                              managed_disk=cm.ManagedDiskParameters(storage_account_type="Premium_LRS")),
            data_disks=[cm.DataDisk(lun=0, name="c1-access-sdb", create_option="Empty", disk_size_gb=100,
                                    managed_disk=cm.ManagedDiskParameters(storage_account_type="StandardSSD_LRS"))]),
        os_profile=cm.OSProfile(computer_name="c1-access", admin_username="dexter", admin_password=PASSWORD,
                                custom_data=base64.b64encode(b"#!/bin/sh\n").decode(),
                                linux_configuration=cm.LinuxConfiguration(disable_password_authentication=False)),
        network_profile=cm.NetworkProfile(network_interfaces=[
            cm.NetworkInterfaceReference(id=nic, primary=True, delete_option="Delete")])))
    r = arm.put(vm_id("c1-access"), body)
    assert r.status == 201 and r.json["properties"]["provisioningState"] == "Creating", r
    arm.settle()
    assert arm.get(vm_id("c1-access")).json["properties"]["provisioningState"] == "Succeeded"
    disk = arm.get(disk_id("c1-access-sdb"))
    assert disk.json["properties"]["diskState"] == "Attached" and disk.json["managedBy"] == vm_id("c1-access")


@pytest.mark.parametrize("mutate, code, target", [
    (lambda b: b["properties"].update(foo=1), "InvalidRequestContent", "properties.foo"),
    (lambda b: b["properties"]["storageProfile"]["osDisk"].update(sizeGB=64), "InvalidRequestContent",
     "properties.storageProfile.osDisk.sizeGB"),
    (lambda b: b["properties"]["storageProfile"]["osDisk"].update(diskSizeGB="64"), "InvalidRequestContent",
     "properties.storageProfile.osDisk.diskSizeGB"),
    (lambda b: b["properties"]["storageProfile"]["dataDisks"][0].pop("lun"), "InvalidRequestContent",
     "properties.storageProfile.dataDisks[0].lun"),
    (lambda b: b["properties"].update(vmId="x"), "InvalidRequestContent", "properties.vmId"),
    (lambda b: b["properties"].update(provisioningState="Succeeded"), "InvalidRequestContent",
     "properties.provisioningState"),
    (lambda b: b["properties"]["storageProfile"]["dataDisks"][0]["managedDisk"].update(storageAccountType="Fast_LRS"),
     "InvalidRequestContent", "properties.storageProfile.dataDisks[0].managedDisk.storageAccountType"),
    (lambda b: b.update(tags=["a"]), "InvalidRequestContent", "tags"),
    (lambda b: b.update(properties=[]), "InvalidRequestContent", "properties"),
    (lambda b: b.pop("location"), "InvalidRequestContent", "location"),
    (lambda b: b["properties"]["osProfile"]["linuxConfiguration"].update(disablePasswordAuthentication="no"),
     "InvalidRequestContent", "properties.osProfile.linuxConfiguration.disablePasswordAuthentication"),
])
def test_vm_bodies_the_models_reject(arm, mutate, code, target):
    network(arm)
    nic = net("networkInterfaces", "nic")
    arm.ok("PUT", nic, nic_body())
    body = vm_body(nic, disks=[(100, "Standard_LRS")])
    mutate(body)
    r = arm.put(vm_id("vm"), body)
    assert (r.status, r.code, r.json["error"].get("target")) == (400, code, target), r
    assert r.json["error"]["message"].startswith("The request content was invalid and could not be deserialized: '")
    assert not resources(arm, type="Microsoft.Compute/virtualMachines")


@pytest.mark.parametrize("path, body, code", [
    (net("networkSecurityGroups", "nsg"), {"location": LOC, "properties": {"securityRules": [
        dict(rule("ssh", 100, "22"), properties=dict(rule("ssh", 100, "22")["properties"], protocol="Sctp"))]}},
     "InvalidRequestContent"),
    (net("virtualNetworks", "vnet"), {"location": LOC, "properties": {"addressSpace": {"addressPrefixes": "10.0.0.0/16"}}},
     "InvalidRequestContent"),
    (net("publicIPAddresses", "ip"), {"location": LOC, "properties": {"resourceGuid": "x",
                                                                      "publicIPAllocationMethod": "Static"}},
     "InvalidRequestContent"),
    (net("publicIPAddresses", "ip"), {"location": LOC, "properties": {"publicIPAllocationMethod": "Static"},
                                      "etag": "x"}, "InvalidRequestContent"),
    (rg(), {"location": LOC, "properties": {"provisioningState": "Succeeded"}}, "InvalidRequestContent"),
    (rg(), {"location": LOC, "tag": {}}, "InvalidRequestContent"),
])
def test_network_and_group_bodies_the_models_reject(arm, path, body, code):
    if path != rg():
        arm.ok("PUT", rg(), {"location": LOC})
    r = arm.put(path, body)
    assert (r.status, r.code) == (400, code), r


def test_malformed_json_is_invalid_content(arm):
    r = arm.call("PUT", rg(), data="{not json", headers={"Content-Type": "application/json"})
    assert (r.status, r.code) == (400, "InvalidRequestContent")
    r = arm.call("PUT", rg(), data="[1]", headers={"Content-Type": "application/json"})
    assert (r.status, r.code) == (400, "InvalidRequestContent")


def _example(checker, cls, rng, depth=0):
    """A random instance of an SDK model, read-only members left out."""
    kwargs = {}
    enums = checker._enums(cls)
    for attr, spec in cls._attribute_map.items():
        rules = cls._validation.get(attr, {})
        if rules.get("readonly") or rules.get("constant") or spec["key"] == "":
            continue
        if rules.get("required") or (depth < 3 and rng.random() < 0.4):
            kwargs[attr] = _value(checker, spec["type"], rng, depth, enums.get(attr))
    return cls(**kwargs)


def _value(checker, typ, rng, depth, enum=None):
    if typ.startswith("["):
        return [_value(checker, typ[1:-1], rng, depth + 1, enum) for _ in range(rng.randint(0, 2))]
    if typ.startswith("{"):
        return {"k%d" % i: _value(checker, typ[1:-1], rng, depth + 1) for i in range(rng.randint(0, 2))}
    if enum is not None:
        return rng.choice(list(enum)).value
    simple = {"str": lambda: rng.choice(["abc", "a-b_c", "é"]), "int": lambda: rng.randint(0, 1000),
              "long": lambda: rng.randint(0, 10**12), "float": lambda: 1.5, "bool": lambda: rng.random() < 0.5,
              "object": lambda: {"any": [1, "x"]}, "iso-8601": lambda: datetime.datetime(2023, 12, 7, 10, 5),
              "duration": lambda: datetime.timedelta(minutes=90), "date": lambda: datetime.date(2023, 12, 7),
              "bytearray": lambda: bytearray(b"xyz"), "base64": lambda: b"xyz"}
    if typ in simple:
        return simple[typ]()
    cls = checker.classes[typ]
    if issubclass(cls, str):
        return rng.choice(list(cls)).value
    return _example(checker, cls, rng, depth + 1)


def _dicts(value, path=""):
    """Every JSON object in value with its path."""
    if isinstance(value, dict):
        yield path, value
        for k, v in value.items():
            yield from _dicts(v, "%s.%s" % (path, k) if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _dicts(v, "%s[%d]" % (path, i))


@pytest.mark.parametrize("package, api, model", [
    ("compute", fake_arm.COMPUTE_API, "VirtualMachine"), ("compute", fake_arm.DISK_API, "Disk"),
    ("network", fake_arm.NETWORK_API, "NetworkInterface"), ("network", fake_arm.NETWORK_API, "VirtualNetwork"),
    ("network", fake_arm.NETWORK_API, "NetworkSecurityGroup"), ("network", fake_arm.NETWORK_API, "PublicIPAddress"),
    ("resources", fake_arm.RESOURCES_API, "ResourceGroup"),
])
def test_checker_accepts_what_the_sdk_serialises_and_rejects_one_change(package, api, model):
    """Random model instances, serialised by msrest, are accepted; the same
    bodies with one unknown member, or one value of another JSON type, are not."""
    checker = fake_arm.sdk_models(package, api)
    rng = random.Random(model)
    for _ in range(25):
        try:
            body = _example(checker, checker.classes[model], rng).serialize()
        except Exception:  # msrest's client-side validation refused the random values
            continue
        checker.check(body, model)
        objects = list(_dicts(body))
        path, obj = rng.choice(objects)
        obj["zzUnknownMember"] = 1
        with pytest.raises(fake_arm.ArmError) as e:
            checker.check(body, model)
        assert e.value.code == "InvalidRequestContent" and e.value.target.endswith("zzUnknownMember")
        del obj["zzUnknownMember"]
        leaves = [(o, k) for _, o in objects for k, v in o.items() if isinstance(v, (str, int, bool))
                  and not isinstance(v, bool) and k != "zzUnknownMember"]
        if leaves:
            o, k = rng.choice(leaves)
            o[k] = [o[k]]
            with pytest.raises(fake_arm.ArmError):
                checker.check(body, model)


def test_answers_parse_with_the_sdk_models(arm):
    """What the fake sends is judged by the same models (read-only allowed)."""
    network(arm)
    vm = host(arm, disks=[(10, "Standard_LRS")])
    checks = [(rg(), "resources", fake_arm.RESOURCES_API, "ResourceGroup"),
              (net("virtualNetworks", "vnet"), "network", fake_arm.NETWORK_API, "VirtualNetwork"),
              (net("networkSecurityGroups", "nsg"), "network", fake_arm.NETWORK_API, "NetworkSecurityGroup"),
              (net("publicIPAddresses", "access-ip"), "network", fake_arm.NETWORK_API, "PublicIPAddress"),
              (net("networkInterfaces", "c1-master-0-nic"), "network", fake_arm.NETWORK_API, "NetworkInterface"),
              (SUBNET, "network", fake_arm.NETWORK_API, "Subnet"),
              (vm, "compute", fake_arm.COMPUTE_API, "VirtualMachine")]
    for path, package, api, model in checks:
        fake_arm.sdk_models(package, api).check(arm.get(path).json, model, answer=True)
    disk = arm.get("%s/providers/Microsoft.Compute/disks" % rg()).json["value"][0]
    fake_arm.sdk_models("compute", fake_arm.DISK_API).check(disk, "Disk", answer=True)


# ---------------------------------------------------------------- names, locations, references

@pytest.mark.parametrize("path, code", [
    (rg("bad/name"), None),
    (rg("ends-with-dot."), "InvalidResourceGroup"),
    (rg("a" * 91), "InvalidResourceGroup"),
    (rg("spa ce"), "InvalidResourceGroup"),
])
def test_group_names(arm, path, code):
    r = arm.put(path, {"location": LOC})
    assert r.status in (400, 404) and (code is None or r.code == code), r


def test_resource_names_and_locations(arm):
    arm.ok("PUT", rg(), {"location": "West Europe"})  # display names are accepted, stored as names
    assert arm.get(rg()).json["location"] == LOC
    assert arm.put(net("virtualNetworks", "bad name"), vnet_body()).code == "InvalidResourceName"
    assert arm.put(net("virtualNetworks", "-vnet"), vnet_body()).code == "InvalidResourceName"
    assert arm.put(net("virtualNetworks", "v"), vnet_body()).code == "InvalidResourceName"
    assert arm.put(vm_id("vm-"), {"location": LOC}).code == "InvalidParameter"
    assert arm.put(net("virtualNetworks", "vnet"), dict(vnet_body(), location="atlantis")).code == \
        "LocationNotAvailableForResourceType"
    assert arm.put(rg("g2"), {"location": "atlantis"}).code == "LocationNotAvailableForResourceGroup"
    r = arm.put(rg(), {"location": "eastus"})
    assert (r.status, r.code) == (409, "InvalidResourceGroupLocation")
    assert arm.put(net("virtualNetworks", "vnet"), dict(vnet_body(), location=None)).code == "LocationRequired"
    arm.ok("PUT", net("virtualNetworks", "vnet"), vnet_body())
    r = arm.put(net("virtualNetworks", "vnet"), dict(vnet_body(), location="eastus"))
    assert (r.status, r.code) == (409, "InvalidResourceLocation")
    assert arm.put(rg("g3"), {"location": LOC, "tags": {"a/b": "x"}}).code == "InvalidTagNameCharacters"
    r = arm.put(net("virtualNetworks", "vnet"), vnet_body(subnets=[("m", "10.1.0.0/24")]))
    assert r.code == "NetcfgSubnetRangeOutsideVnet"
    r = arm.put(net("virtualNetworks", "vnet"), vnet_body(subnets=[("m", "10.0.0.0/24"), ("n", "10.0.0.128/25")]))
    assert r.code == "NetcfgSubnetRangesOverlap"
    assert arm.put(net("virtualNetworks", "vnet"), vnet_body(subnets=[("m", "10.0.0.1/24")])).code == \
        "InvalidCIDRNotation"
    assert arm.put(rg("nope") + "/providers/Microsoft.Network/virtualNetworks/v2", vnet_body()).code == \
        "ResourceGroupNotFound"


def test_references_must_exist_be_well_formed_and_ready(arm):
    arm.ok("PUT", rg(), {"location": LOC})
    r = arm.put(net("networkInterfaces", "nic"), nic_body())
    assert (r.status, r.code) == (400, "InvalidResourceReference")
    assert "referenced by resource %s was not found" % net("networkInterfaces", "nic") in r.json["error"]["message"]
    r = arm.put(net("networkInterfaces", "nic"), nic_body(subnet="vnet/subnets/masters"))
    assert r.code == "LinkedInvalidPropertyId"
    r = arm.put(net("virtualNetworks", "vnet"), vnet_body())
    assert r.status == 201
    r = arm.put(net("networkInterfaces", "nic"), nic_body())  # the VNet is still Updating
    assert r.code == "ReferencedResourceNotProvisioned" and "PutVirtualNetworkOperation" in r.json["error"]["message"]
    arm.settle()
    assert arm.put(net("networkInterfaces", "nic"), nic_body(pip=net("publicIPAddresses", "none"))).code == \
        "InvalidResourceReference"
    arm.ok("PUT", net("networkInterfaces", "nic"), nic_body())
    r = arm.put(vm_id("vm"), vm_body(net("networkInterfaces", "missing")))
    assert (r.status, r.code) == (404, "NotFound")
    r = arm.put(net("virtualNetworks", "vnet") + "/subnets/extra", {"properties": {
        "addressPrefix": "10.0.1.0/24", "networkSecurityGroup": {"id": net("networkSecurityGroups", "x")}}})
    assert r.code == "InvalidResourceReference"


# ---------------------------------------------------------------- long-running operations

def test_put_and_delete_run_as_arm_long_running_operations(srv, arm):
    arm.ok("PUT", rg(), {"location": LOC})
    r = arm.put(net("virtualNetworks", "vnet"), vnet_body())
    assert r.status == 201 and r.json["properties"]["provisioningState"] == "Updating"
    assert r.json["properties"]["subnets"][0]["properties"]["provisioningState"] == "Updating"
    op = r.headers["Azure-AsyncOperation"]
    assert re.match(r"%s/subscriptions/%s/providers/Microsoft.Network/locations/westeurope/operations/[-0-9a-f]{36}"
                    r"\?api-version=2022-07-01$" % (srv.endpoint_url, SUB), op)
    assert r.headers["Retry-After"] == "1"
    s = arm.get(op)
    assert (s.status, s.json["status"], s.headers["Retry-After"]) == (200, "InProgress", "1")
    arm.settle()
    s = arm.get(op)
    assert s.json["status"] == "Succeeded" and "endTime" in s.json and "Retry-After" not in s.headers
    assert arm.get(net("virtualNetworks", "vnet")).json["properties"]["provisioningState"] == "Succeeded"
    # A VM is Creating while its PUT runs; an update is Updating and answers 200.
    nic = net("networkInterfaces", "nic")
    arm.ok("PUT", nic, nic_body())
    r = arm.put(vm_id("vm"), vm_body(nic))
    assert r.status == 201 and r.json["properties"]["provisioningState"] == "Creating"
    assert "/providers/Microsoft.Compute/locations/westeurope/operations/" in r.headers["Azure-AsyncOperation"]
    arm.settle()
    r = arm.put(vm_id("vm"), dict(vm_body(nic), tags={**TAGS, "extra": "1"}))
    assert r.status == 200 and r.json["properties"]["provisioningState"] == "Updating"
    arm.settle()
    # DELETE: 202 with Location and Azure-AsyncOperation; the resource goes when the operation ends.
    r = arm.delete(vm_id("vm"))
    assert r.status == 202 and "operationResults" in r.headers["Location"] and r.headers["Azure-AsyncOperation"]
    assert arm.get(vm_id("vm")).json["properties"]["provisioningState"] == "Deleting"
    loc = arm.get(r.headers["Location"])
    assert loc.status == 202 and loc.headers["Location"] == r.headers["Location"]
    arm.settle()
    assert arm.get(r.headers["Location"]).status == 200
    r = arm.get(vm_id("vm"))
    assert (r.status, r.code) == (404, "ResourceNotFound")
    assert arm.delete(vm_id("vm")).status == 204  # already gone


def test_retry_after_follows_the_configuration(srv, arm):
    srv.fake.set_config(lro_ms=4200)
    arm.ok("PUT", rg(), {"location": LOC})
    assert arm.put(net("publicIPAddresses", "a"), {"location": LOC}).headers["Retry-After"] == "5"
    srv.fake.set_config(retry_after_s=0)
    assert arm.put(net("publicIPAddresses", "b"), {"location": LOC}).headers["Retry-After"] == "0"


def test_same_body_again_is_200_and_no_change(srv, arm):
    network(arm)
    body = vnet_body(nsg=net("networkSecurityGroups", "nsg"))
    before = [(r["id"], r["changes"]) for r in resources(arm)]
    r = arm.put(net("virtualNetworks", "vnet"), body)
    assert r.status == 200 and "Azure-AsyncOperation" not in r.headers
    assert r.json["properties"]["provisioningState"] == "Succeeded"
    assert [(r["id"], r["changes"]) for r in resources(arm)] == before
    vnet = resources(arm, type="Microsoft.Network/virtualNetworks")[0]
    assert (vnet["writes"], vnet["changes"]) == (2, 1)
    assert srv.fake.get_calls()["by_request"]["PUT Microsoft.Network/virtualNetworks"] == 2
    # The same PUT while the first still runs joins its operation.
    r1 = arm.put(net("publicIPAddresses", "p"), {"location": LOC})
    r2 = arm.put(net("publicIPAddresses", "p"), {"location": LOC})
    assert r1.headers["Azure-AsyncOperation"] == r2.headers["Azure-AsyncOperation"]
    r3 = arm.put(net("publicIPAddresses", "p"), {"location": LOC, "tags": {"x": "y"}})
    assert (r3.status, r3.code) == (409, "AnotherOperationInProgress")


def test_a_vnet_put_is_the_whole_vnet(arm):
    """Subnets made as children are part of the VNet: the VNet's first body
    again (without them) is a change that would remove them."""
    arm.ok("PUT", rg(), {"location": LOC})
    bare = vnet_body(subnets=())
    arm.ok("PUT", net("virtualNetworks", "vnet"), bare)
    r = arm.put(SUBNET, {"name": "masters", "properties": {"addressPrefix": "10.0.0.0/24"}})
    assert r.status == 201 and r.headers["Azure-AsyncOperation"]
    assert arm.put(AGENTS, {"properties": {"addressPrefix": "10.0.16.0/20"}}).code == "AnotherOperationInProgress"
    arm.settle()
    arm.ok("PUT", AGENTS, {"properties": {"addressPrefix": "10.0.16.0/20"}})
    arm.ok("PUT", net("networkInterfaces", "nic"), nic_body())
    r = arm.put(net("virtualNetworks", "vnet"), bare)
    assert (r.status, r.code) == (400, "InUseSubnetCannotBeDeleted")
    r = arm.put(net("virtualNetworks", "vnet"), vnet_body())  # the VNet as it is now
    assert r.status == 200 and "Azure-AsyncOperation" not in r.headers


def test_deleting_a_group_deletes_everything_in_it(srv, arm):
    network(arm)
    host(arm, disks=[(10, "Standard_LRS")], delete="Detach")
    arm.ok("PUT", rg("other"), {"location": LOC, "tags": {"dexter:cluster": "c2"}})
    assert len(srv.fake.get_state(("dexter:cluster", "c1"))["resources"]) == 5
    r = arm.delete(rg())
    assert r.status == 202 and set(r.headers) >= {"Location", "Retry-After"}
    assert "Azure-AsyncOperation" not in r.headers
    assert re.search(r"/subscriptions/%s/operationresults/" % SUB, r.headers["Location"])
    assert arm.get(rg()).json["properties"]["provisioningState"] == "Deleting"
    assert arm.put(net("publicIPAddresses", "late"), {"location": LOC}).code == "ResourceGroupBeingDeleted"
    assert arm.put(rg(), {"location": LOC}).code == "ResourceGroupBeingDeleted"
    assert arm.delete(rg()).headers["Location"] == r.headers["Location"]  # the same deletion
    assert arm.get(r.headers["Location"]).status == 202
    arm.settle()
    assert arm.get(r.headers["Location"]).status == 200
    assert arm.get(rg()).code == "ResourceGroupNotFound"
    assert arm.call("HEAD", rg()).status == 404 and arm.call("HEAD", rg("other")).status == 204
    state = srv.fake.get_state()
    assert [g["name"] for g in state["resourceGroups"]] == ["other"] and state["resources"] == []
    assert arm.delete(rg()).code == "ResourceGroupNotFound"


# ---------------------------------------------------------------- the resource rules

def test_private_addresses(arm):
    network(arm)
    nic = net("networkInterfaces", "a")
    r = arm.put(nic, nic_body(subnet=AGENTS))
    assert r.json["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] == "10.0.16.4"
    arm.settle()
    r = arm.put(net("networkInterfaces", "b"), nic_body(subnet=AGENTS))
    assert r.json["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] == "10.0.16.5"
    arm.settle()
    arm.ok("PUT", net("networkInterfaces", "m0"), nic_body(ip="10.0.0.11"))
    for ip, code in (("10.0.0.11", "PrivateIPAddressInUse"), ("10.0.0.1", "PrivateIPAddressIsReserved"),
                     ("10.0.0.255", "PrivateIPAddressIsReserved"), ("10.0.1.5", "PrivateIPAddressNotInSubnet")):
        assert arm.put(net("networkInterfaces", "m1"), nic_body(ip=ip)).code == code
    arm.ok("PUT", nic, nic_body(subnet=AGENTS))  # a re-PUT keeps the dynamic address
    assert arm.get(nic).json["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] == "10.0.16.4"
    pip = net("publicIPAddresses", "access-ip")
    arm.ok("PUT", net("networkInterfaces", "access"), nic_body(ip="10.0.0.10", pip=pip))
    assert arm.put(net("networkInterfaces", "m2"), nic_body(pip=pip)).code == "PublicIPAddressInUse"
    ip = arm.get(pip).json["properties"]
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", ip["ipAddress"])
    assert ip["ipConfiguration"]["id"].endswith("/networkInterfaces/access/ipConfigurations/ipconfig1")


def test_things_in_use_cannot_be_deleted(arm):
    network(arm)
    vm = host(arm, delete="Detach")
    nic = net("networkInterfaces", "c1-master-0-nic")
    assert arm.delete(nic).code == "NicInUse"
    assert arm.delete(SUBNET).code == "InUseSubnetCannotBeDeleted"
    assert arm.delete(net("virtualNetworks", "vnet")).code == "InUseSubnetCannotBeDeleted"
    r = arm.put(net("virtualNetworks", "vnet"), dict(vnet_body(), properties={
        "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}))  # a PUT without subnets drops them
    assert r.code == "InUseSubnetCannotBeDeleted"
    assert arm.delete(net("networkSecurityGroups", "nsg")).code == "InUseNetworkSecurityGroupCannotBeDeleted"
    disks = resources(arm, type="Microsoft.Compute/disks")
    assert arm.delete(disks[0]["id"]).code == "OperationNotAllowed"
    arm.ok("PUT", net("networkInterfaces", "access"), nic_body(ip="10.0.0.10", pip=net("publicIPAddresses",
                                                                                         "access-ip")))
    assert arm.delete(net("publicIPAddresses", "access-ip")).code == "PublicIPAddressCannotBeDeleted"
    # Detach: deleting the VM leaves its NIC and disk, which can then go.
    arm.ok("DELETE", vm)
    assert arm.get(nic).status == 200 and "virtualMachine" not in arm.get(nic).json["properties"]
    left = resources(arm, type="Microsoft.Compute/disks")
    assert [d["managedBy"] for d in left] == [None]
    arm.ok("DELETE", left[0]["id"])
    arm.ok("DELETE", nic)
    arm.ok("DELETE", net("networkInterfaces", "access"))
    arm.ok("DELETE", SUBNET)
    assert [s["name"] for s in arm.get(net("virtualNetworks", "vnet")).json["properties"]["subnets"]] == ["agents"]


def test_scaling_down_deletes_a_vm_with_its_nic_and_disks(arm):
    network(arm)
    host(arm, "c1-agent-0", ip=None, disks=[(10, "Standard_LRS")])
    host(arm, "c1-agent-1", ip=None, disks=[(10, "Standard_LRS"), (20, "StandardSSD_LRS")])
    assert len(resources(arm, type="Microsoft.Compute/disks")) == 5
    arm.ok("DELETE", vm_id("c1-agent-1"))
    names = sorted(r["name"] for r in resources(arm) if r["type"] in ("Microsoft.Compute/disks",
                                                                       "Microsoft.Network/networkInterfaces",
                                                                       "Microsoft.Compute/virtualMachines"))
    assert len(names) == 4 and all("agent-0" in n for n in names), names


def test_a_disk_patch_replaces_its_tags_only(arm):
    network(arm)
    host(arm, "c1-agent-0", ip=None)
    os_disk = [d for d in resources(arm, type="Microsoft.Compute/disks")]
    assert len(os_disk) == 1 and not os_disk[0].get("tags"), os_disk   # made with its VM: no tags
    disk = os_disk[0]["id"]
    r = arm.call("PATCH", disk, {"tags": {"dexter:cluster": "c1", "dexter:host": "c1-agent-0"}})
    assert r.status == 200 and r.json["tags"] == {"dexter:cluster": "c1", "dexter:host": "c1-agent-0"}, r
    r = arm.call("PATCH", disk, {"tags": {"dexter:cluster": "c1"}})
    assert arm.get(disk).json["tags"] == {"dexter:cluster": "c1"}
    # What DiskUpdate has not, and what the fake does not change, are refused
    r = arm.call("PATCH", disk, {"tags": {}, "colour": "blue"})
    assert (r.status, r.code) == (400, "InvalidRequestContent"), r
    r = arm.call("PATCH", disk, {"properties": {"diskSizeGB": 64}})
    assert (r.status, r.code) == (400, "InvalidParameter"), r
    r = arm.call("PATCH", disk.replace(os_disk[0]["name"], "nothere"), {"tags": {}})
    assert r.status == 404, r
    # A NIC is not patched
    nic = [n for n in resources(arm, type="Microsoft.Network/networkInterfaces")][0]["id"]
    r = arm.call("PATCH", nic, {"tags": {}})
    assert r.status == 405, r


def test_a_vm_patch_replaces_its_tags_only(arm):
    """A VM's PATCH (VirtualMachineUpdate) sets its tags as a whole; Azure's
    limits on tags hold: values of 256 characters, 50 tags."""
    network(arm)
    host(arm, "c1-agent-0", ip=None)
    vm = vm_id("c1-agent-0")
    tags = dict(arm.get(vm).json["tags"] or {})
    tags.update({"dexter:crl": "2:1", "dexter:crl.0": "A" * 256})
    r = arm.call("PATCH", vm, {"tags": tags})
    assert r.status == 200 and r.json["tags"] == tags, r
    assert arm.get(vm).json["tags"] == tags
    r = arm.call("PATCH", vm, {"tags": {}, "colour": "blue"})
    assert (r.status, r.code) == (400, "InvalidRequestContent"), r
    r = arm.call("PATCH", vm, {"properties": {"hardwareProfile": {"vmSize": "Standard_D4s_v3"}}})
    assert (r.status, r.code) == (400, "InvalidParameter"), r
    r = arm.call("PATCH", vm, {"tags": {"dexter:crl.0": "A" * 257}})
    assert (r.status, r.code) == (400, "InvalidTagValueLength"), r
    r = arm.call("PATCH", vm, {"tags": {"k%d" % n: "v" for n in range(51)}})
    assert (r.status, r.code) == (400, "InvalidTagCount"), r
    assert arm.get(vm).json["tags"] == tags
    r = arm.call("PATCH", vm.replace("c1-agent-0", "nothere"), {"tags": {}})
    assert r.status == 404, r


def test_vm_rules(srv, arm):
    network(arm)
    nic = net("networkInterfaces", "nic")
    arm.ok("PUT", nic, nic_body())
    cases = [
        (dict(size="Standard_Huge"), 400, "InvalidParameter", "vmSize"),
        (dict(size="Standard_A2_v2"), 400, "BadRequest", None),  # generation 2 image on a generation 1 size
        (dict(size="Standard_A2_v2", sku="server-gen1", disks=[(1, "Standard_LRS")] * 5), 409,
         "OperationNotAllowed", "dataDisks"),
        (dict(size="Standard_D2_v3", sku="server-gen1", disks=[(8, "Premium_LRS")]), 400, "BadRequest", None),
        (dict(sku="server-gen3"), 404, "PlatformImageNotFound", "imageReference"),
        (dict(adminPassword="password"), 400, "InvalidParameter", "adminPassword"),
        (dict(adminPassword="Password1"), 400, "InvalidParameter", "adminPassword"),
        (dict(adminUsername="root"), 400, "InvalidParameter", "adminUsername"),
        (dict(computerName="c1_master"), 400, "InvalidParameter", "computerName"),
        (dict(customData="not base64!"), 400, "InvalidParameter", "customData"),
        (dict(adminPassword=None), 400, "InvalidParameter", "linuxConfiguration"),
        (dict(linuxConfiguration={"ssh": {"publicKeys": [{"path": "/root/.ssh/authorized_keys",
                                                          "keyData": "ssh-ed25519 AAAA"}]}}), 400,
         "InvalidParameter", "linuxConfiguration.ssh.publicKeys.path"),
    ]
    for kw, status, code, target in cases:
        vm_kw = {k: kw.pop(k) for k in ("size", "sku", "disks") if k in kw}
        body = vm_body(nic, **vm_kw)
        body["properties"]["osProfile"].update(kw)
        body["properties"]["osProfile"] = {k: v for k, v in body["properties"]["osProfile"].items() if v is not None}
        r = arm.put(vm_id("vm"), body)
        assert (r.status, r.code, r.json["error"].get("target")) == (status, code, target), (kw, r)
    body = vm_body(nic)
    body["properties"]["storageProfile"]["osDisk"]["diskSizeGB"] = 16
    r = arm.put(vm_id("vm"), body)
    assert (r.status, r.code, r.json["error"]["target"]) == (409, "OperationNotAllowed", "osDisk.diskSizeGB")
    # Sizes differ by location: a classic size in a new region, or one the test removes.
    srv.fake.set_location_sizes(LOC, remove=["Standard_D2s_v3"])
    r = arm.put(vm_id("vm"), vm_body(nic))
    assert (r.status, r.code) == (409, "SkuNotAvailable") and "'westeurope'" in r.json["error"]["message"]
    srv.fake.set_location_sizes(LOC, add=["Standard_D2s_v3"])
    arm.ok("PUT", vm_id("vm"), vm_body(nic, disks=[(10, "Standard_LRS")]))
    # Once made, a VM's OS profile and image stay.
    body = vm_body(nic, disks=[(10, "Standard_LRS")])
    body["properties"]["osProfile"]["customData"] = base64.b64encode(b"other").decode()
    r = arm.put(vm_id("vm"), body)
    assert (r.status, r.code, r.json["error"]["target"]) == (409, "PropertyChangeNotAllowed",
                                                              "osProfile.customData")
    body = vm_body(nic, disks=[(20, "Standard_LRS")])
    assert arm.put(vm_id("vm"), body).code == "OperationNotAllowed"  # no resize while running
    body = vm_body(nic, disks=[(10, "Standard_LRS"), (30, "Standard_LRS")])
    r = arm.put(vm_id("vm"), body)
    assert r.status == 200, r
    arm.settle()
    assert len(arm.get(vm_id("vm")).json["properties"]["storageProfile"]["dataDisks"]) == 2
    r = arm.put(vm_id("vm2"), vm_body(nic))
    assert r.code == "NicInUse"


def test_get_of_a_vm_hides_its_secrets(arm):
    network(arm)
    vm = host(arm, disks=[(10, "Standard_LRS")])
    props = arm.get(vm).json["properties"]
    assert "adminPassword" not in props["osProfile"] and "customData" not in props["osProfile"]
    assert props["storageProfile"]["imageReference"]["exactVersion"] == "24.04.202411030"
    assert props["storageProfile"]["osDisk"]["managedDisk"]["id"].startswith(rg() + "/providers/Microsoft.Compute/"
                                                                              "disks/c1-master-0_OsDisk_1_")
    assert props["storageProfile"]["dataDisks"][0]["managedDisk"]["storageAccountType"] == "Standard_LRS"


def test_security_rules(arm):
    arm.ok("PUT", rg(), {"location": LOC})
    path = net("networkSecurityGroups", "nsg")

    def put(*rules):
        return arm.put(path, {"location": LOC, "properties": {"securityRules": list(rules)}})
    assert put(rule("a", 99, "22")).code == "SecurityRuleInvalidPriority"
    assert put(rule("a", 100, "22"), rule("b", 100, "80")).code == "SecurityRuleConflict"
    assert put(rule("a", 100, "70000")).code == "SecurityRuleInvalidPortRange"
    assert put(rule("a", 100, "80-x")).code == "SecurityRuleInvalidPortRange"
    r = put(rule("a", 100, "22"), rule("b", 110, "1194", "Udp"), rule("c", 120, "80-443"))
    assert r.status == 201, r
    assert [x["name"] for x in r.json["properties"]["securityRules"]] == ["a", "b", "c"]
    assert len(r.json["properties"]["defaultSecurityRules"]) == 6


# ---------------------------------------------------------------- look-ups

def test_vm_sizes_per_location_cover_the_catalog(arm):
    catalog = open(os.path.join(REPO, "common", "dx_catalog.def")).read()
    sizes = {m.group(1): (int(m.group(2)), float(m.group(3))) for m in re.finditer(
        r'^DX_INSTANCE \(azure, "([^"]+)",\s*(\d+),\s*([\d.]+)\)', catalog, re.M)}
    locations = re.findall(r'^DX_AZURE_LOCATION \("([^"]+)"', catalog, re.M)
    assert len(sizes) > 40 and len(locations) > 40
    assert set(locations) <= set(fake_arm.LOCATIONS)
    r = arm.get("/subscriptions/%s/providers/Microsoft.Compute/locations/%s/vmSizes" % (SUB, LOC))
    listed = {s["name"]: s for s in r.json["value"]}
    for name, (cores, gib) in sizes.items():
        s = listed[name]
        assert (s["numberOfCores"], s["memoryInMB"]) == (cores, int(gib * 1024)), name
        assert s["maxDataDiskCount"] >= 1 and s["osDiskSizeInMB"] == 1047552
    new = arm.get("/subscriptions/%s/providers/Microsoft.Compute/locations/swedencentral/vmSizes" % SUB).json
    assert "Standard_A2" not in {s["name"] for s in new["value"]} and "Standard_A2_v2" in {s["name"]
                                                                                            for s in new["value"]}


def test_image_lookups(arm):
    base = "/subscriptions/%s/providers/Microsoft.Compute/locations/%s/publishers/Canonical/artifacttypes/vmimage" \
           "/offers" % (SUB, LOC)
    assert "ubuntu-24_04-lts" in [o["name"] for o in arm.get(base).json]
    assert {"server", "server-gen1"} <= {s["name"] for s in arm.get(base + "/ubuntu-24_04-lts/skus").json}
    r = arm.get(base + "/ubuntu-24_04-lts/skus/server/versions", params={"$top": "1", "$orderby": "name desc"})
    assert [v["name"] for v in r.json] == ["24.04.202411030"]
    assert r.json[0]["id"].endswith("/Skus/server/Versions/24.04.202411030")
    one = arm.get(base + "/ubuntu-24_04-lts/skus/server/versions/24.04.202411030").json
    assert one["properties"]["hyperVGeneration"] == "V2"
    r = arm.get(base + "/ubuntu-24_04-lts/skus/server/versions/latest")
    assert (r.status, r.code, r.json["error"]["target"]) == (400, "InvalidParameter", "version")
    assert arm.get(base + "/ubuntu-24_04-lts/skus/nope/versions").status == 404
    assert arm.get(base + "/ubuntu-24_04-lts/skus/server/versions/1.2.3").status == 404


def test_lists_filters_and_paging(srv, arm):
    srv.fake.set_config(page_size=2)
    network(arm)
    arm.ok("PUT", rg("g2"), {"location": LOC, "tags": {"dexter:cluster": "c2"}})
    arm.ok("PUT", net("publicIPAddresses", "x", "g2"), {"location": LOC, "tags": {"dexter:cluster": "c2"}})
    seen, url = [], "/subscriptions/%s/resources" % SUB
    while url:
        r = arm.get(url)
        seen += r.json["value"]
        url = r.json.get("nextLink")
    assert len(seen) == 4 and len({s["id"] for s in seen}) == 4
    r = arm.get("/subscriptions/%s/resources" % SUB, params={"$filter": "tagName eq 'dexter:cluster' and "
                                                                        "tagValue eq 'c2'"})
    assert [x["name"] for x in r.json["value"]] == ["x"]
    r = arm.get("/subscriptions/%s/resourcegroups" % SUB, params={"$filter": "tagName eq 'dexter:cluster' and "
                                                                             "tagValue eq 'c1'"})
    assert [x["name"] for x in r.json["value"]] == ["dexter-c1"]
    r = arm.get(rg() + "/resources", params={"$filter": "resourceType eq 'Microsoft.Network/virtualNetworks'"})
    assert [x["name"] for x in r.json["value"]] == ["vnet"]
    assert arm.get(rg() + "/resources", params={"$filter": "substringof('a', name)"}).code == \
        "InvalidFilterInQueryString"
    assert [s["name"] for s in arm.get(net("virtualNetworks", "vnet") + "/subnets").json["value"]] == \
        ["masters", "agents"]


# ---------------------------------------------------------------- throttling and faults

def test_subscription_token_buckets(srv, arm):
    srv.fake.set_config(write_burst=3, write_rate=0.5)
    arm.ok("PUT", rg(), {"location": LOC})
    ok = [arm.put(net("publicIPAddresses", "p%d" % i), {"location": LOC}) for i in range(2)]
    assert [r.headers["x-ms-ratelimit-remaining-subscription-writes"] for r in ok] == ["1", "0"]
    r = arm.put(net("publicIPAddresses", "p9"), {"location": LOC})
    assert (r.status, r.code) == (429, "SubscriptionRequestsThrottled")
    assert r.headers["Retry-After"] == "2" and r.headers["x-ms-ratelimit-remaining-subscription-writes"] == "0"
    assert "Number of 'write' requests for subscription '%s'" % SUB in r.json["error"]["message"]
    assert not resources(arm, name="p9")
    assert int(arm.get(rg()).headers["x-ms-ratelimit-remaining-subscription-reads"]) == 249
    assert arm.delete(net("publicIPAddresses", "p0")).headers["x-ms-ratelimit-remaining-subscription-deletes"] \
        == "199"


def test_injected_http_faults(srv, arm):
    srv.fake.inject(status=429, count=2, retry_after=3, type="resourceGroups")
    for _ in range(2):
        r = arm.put(rg(), {"location": LOC})
        assert (r.status, r.code, r.headers["Retry-After"]) == (429, "TooManyRequests", "3")
    assert arm.put(rg(), {"location": LOC}).status == 201
    srv.fake.inject(status=503, method="GET")
    assert arm.put(rg(), {"location": LOC}).status == 200
    assert arm.get(rg()).code == "ServiceUnavailable"
    # after=True: the call is carried out, the reply is lost.
    srv.fake.inject(status=500, type="publicIPAddresses", after=True)
    r = arm.put(net("publicIPAddresses", "p"), {"location": LOC})
    assert (r.status, r.code) == (500, "InternalServerError")
    assert arm.put(net("publicIPAddresses", "p"), {"location": LOC}).status in (200, 201)  # it exists
    assert [(p["writes"], p["changes"]) for p in resources(arm, name="p")] == [(2, 1)]
    r = requests.post(srv.endpoint_url + "/_fake/faults", json={"status": 502, "type": "token"}, timeout=5)
    assert r.json()["pending"][0]["type"] == "token"
    assert get_token(srv).status_code == 502
    srv.fake.set_config(throttle_rate=1.0)
    assert arm.get(rg()).status == 429
    srv.fake.set_config(throttle_rate=0.0, error_rate=1.0)
    assert arm.get(rg()).status in (500, 503)
    assert set(srv.fake.get_calls()["by_error_code"]) >= {"TooManyRequests", "ServiceUnavailable",
                                                          "InternalServerError"}


def test_injected_operation_failures(srv, arm):
    network(arm)
    nic = net("networkInterfaces", "nic")
    arm.ok("PUT", nic, nic_body())
    srv.fake.inject(kind="operation", type="virtualMachines", code="OSProvisioningTimedOut",
                    message="OS Provisioning for VM 'vm' did not finish in the allotted time.")
    r = arm.put(vm_id("vm"), vm_body(nic))
    assert r.status == 201
    arm.settle()
    s = arm.get(r.headers["Azure-AsyncOperation"]).json
    assert s["status"] == "Failed" and s["error"]["code"] == "OSProvisioningTimedOut"
    assert arm.get(vm_id("vm")).json["properties"]["provisioningState"] == "Failed"
    assert arm.put(vm_id("vm"), vm_body(nic)).status == 200  # a failed resource may be PUT again
    arm.settle()
    assert arm.get(vm_id("vm")).json["properties"]["provisioningState"] == "Succeeded"
    srv.fake.inject(kind="operation", method="DELETE", type="resourceGroups", status="Canceled")
    r = arm.delete(rg())
    arm.settle()
    res = arm.get(r.headers["Location"])
    assert (res.status, res.code) == (409, "OperationCanceled")
    assert arm.get(rg()).json["properties"]["provisioningState"] == "Canceled"
    arm.ok("DELETE", rg())
    state = srv.fake.get_state()
    assert state["resourceGroups"] == state["resources"] == state["operations"]["pending"] == []


def test_a_delete_preempts_a_running_create(arm):
    network(arm)
    nic = net("networkInterfaces", "nic")
    arm.ok("PUT", nic, nic_body())
    r = arm.put(vm_id("vm"), vm_body(nic))
    assert arm.delete(vm_id("vm")).status == 202
    s = arm.get(r.headers["Azure-AsyncOperation"]).json
    assert s["status"] == "Canceled" and s["error"]["code"] == "OperationPreempted"
    arm.settle()
    assert arm.get(vm_id("vm")).status == 404 and not resources(arm, type="Microsoft.Compute/disks")


# ---------------------------------------------------------------- side channel and command line

def test_side_channel(srv, arm):
    url = srv.endpoint_url + "/_fake/"
    network(arm)
    state = requests.get(url + "state", params={"tag": "dexter:cluster=c1"}, timeout=5).json()
    assert {r["type"] for r in state["resources"]} == {"Microsoft.Network/networkSecurityGroups",
                                                       "Microsoft.Network/virtualNetworks",
                                                       "Microsoft.Network/publicIPAddresses"}
    assert state["resourceGroups"][0]["tags"] == TAGS
    assert requests.post(url + "config", json={"lro_ms": 10}, timeout=5).json()["lro_ms"] == 10
    assert requests.post(url + "config", json={"lro_ms": "x"}, timeout=5).status_code == 400
    auth = requests.get(url + "sdk-auth", timeout=5).json()
    assert auth["resourceManagerEndpointUrl"] == srv.endpoint_url + "/" and auth["clientSecret"] == SECRET
    assert requests.post(url + "principals", json={"tenantId": "t9", "clientId": "c9", "clientSecret": "s9",
                                                   "subscriptionId": "s9"}, timeout=5).status_code == 200
    principals = requests.get(url + "principals", timeout=5).json()["principals"]
    assert "c9" in [p["clientId"] for p in principals] and "clientSecret" not in principals[0]
    assert get_token(srv, "t9", "c9", "s9").status_code == 200
    r = requests.post(url + "locations", json={"location": "eastus", "sizes": ["Standard_B1s"]}, timeout=5)
    assert r.json()["sizes"] == ["Standard_B1s"]
    assert requests.get(url + "locations", timeout=5).json()["eastus"] == ["Standard_B1s"]
    calls = requests.get(url + "calls", timeout=5).json()
    assert calls["by_method"]["PUT"] == 4 and calls["by_client"][CLIENT] == 5 and calls["by_client"]["c9"] == 1
    assert requests.post(url + "reset", timeout=5).json() == {"ok": True}
    assert requests.get(url + "state", timeout=5).json()["resources"] == []
    assert requests.get(url + "nope", timeout=5).status_code == 404


def test_command_line(tmp_path):
    port_file = tmp_path / "port"
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_arm.py"), "--port", "0", "--port-file",
                             str(port_file), "--lro-ms", "0", "--seed", "1", "--arm-limits", "false",
                             "--principal", "t1:c1:s1:a:secret:with:colons"], stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 15
        while not port_file.exists() and time.time() < deadline:
            time.sleep(0.05)
        url = "http://127.0.0.1:%s" % port_file.read_text().strip()
        config = requests.get(url + "/_fake/config", timeout=5).json()
        assert config["lro_ms"] == 0 and config["arm_limits"] is False
        r = requests.post(url + "/t1/oauth2/v2.0/token", timeout=5, data={
            "grant_type": "client_credentials", "client_id": "c1", "client_secret": "a:secret:with:colons",
            "scope": url + "/.default"})
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    assert b"fake_arm listening on http://127.0.0.1:" in proc.stderr.read()
