"""VPN users end to end on the fake EC2 (and the delivery of a CRL on the
fake ARM too): a real redis-server, dexter-scheduler, dexter-api,
dexter-aws-worker (dexter-azure-worker) and dexter-vpn.

POST …/deployment/vpn/users issues a certificate through a job of the vpn
worker and answers the profile once; GET lists the users; DELETE revokes,
and the answer, the list and the deployment say the CRL is pending until a
deploy writes it into the running access node's tags (access.crl), where the
node's dexter-crl timer reads it; a relaunched access node has it in its
user data. Errors: before the first
deploy 409, a duplicate 409, a bad name 400, an unknown user or cluster 404,
each a JSON body naming the field, and nothing changes.

With the real openvpn (test_openvpn.py's server and client, the server on
the access IP with the config and files of the access node's user data): an
issued user's profile completes the TLS handshake, another cluster's user's
profile does not; a revoked user still connects while the server has the
old CRL, and is refused by the same access node, not launched again, once
it has the CRL a deploy wrote into its tags, as the node's own dexter-crl
(from its user data, in a sandbox with the instance metadata stubbed to
answer those tags) installs it.
"""
import base64
import json
import os
import subprocess

import botocore.session
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import aws_helpers
import azure_helpers
from aws_helpers import FAKE_KEY_ID, FAKE_SECRET, live_instances, make_aws_cluster, pem_key
from test_openvpn import CONNECTED, OPENVPN, Client, tun_refused, write
from test_provision import IMDS_TAGS_CURL
from test_vpn_deploy import AccessNode, block, write_files

GROUP = [{"name": "g1", "instance_type": "m5.large", "cpus": 2, "ram": 8}]


def users_url(stack, name, user=None):
    path = "/clusters/%s/deployment/vpn/users" % name
    return stack.url(path + ("/" + user if user else ""))


def add(stack, name, user, form=False, status=201):
    kw = {"data": {"name": user}} if form else {"json": {"name": user}}
    r = requests.post(users_url(stack, name), headers=stack.auth_headers(), timeout=30, **kw)
    assert r.status_code == status, (r.status_code, r.text)
    return r.json()


def listed(stack, name, status=200):
    r = requests.get(users_url(stack, name), headers=stack.auth_headers(), timeout=10)
    assert r.status_code == status, (r.status_code, r.text)
    return r.json()


def revoke(stack, name, user, status=200):
    r = requests.delete(users_url(stack, name, user), headers=stack.auth_headers(), timeout=30)
    assert r.status_code == status, (r.status_code, r.text)
    return r.json()


def deployment(stack, name):
    r = requests.get(stack.url("/clusters/%s/deployment" % name), headers=stack.auth_headers(),
                     timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def recorded_pki(stack, name):
    r = stack.redis_client()
    return json.loads(json.loads(r.hget("dexter:{%s}:resources" % name, "vpn.pki"))["pki"])


def access_node(stack, name):
    access = [i for i in live_instances(stack.fake_state(), name)
              if i["tags"].get("dexter:role") == "access"]
    assert len(access) == 1, access
    return access[0]


def access_crl(stack, name):
    """The CRL the access node's user data writes."""
    files = write_files(access_node(stack, name)["user_data_b64"])
    return files["/etc/openvpn/server/dexter/crl.pem"][1]


def tagged_crl(node):
    """The CRL a deploy wrote into the access node's tags (common/dx_crltags.h),
    as its dexter-crl timer reassembles it: (number, DER)."""
    number, chunks = node["tags"]["dexter:crl"].split(":")
    text = "".join(node["tags"]["dexter:crl.%d" % i] for i in range(int(chunks)))
    assert all(len(node["tags"]["dexter:crl.%d" % i]) <= 256 for i in range(int(chunks)))
    return int(number), base64.b64decode(text, validate=True)


def crl_der(pem):
    return x509.load_pem_x509_crl(pem.encode()).public_bytes(serialization.Encoding.DER)


def run_crl_timer(work, root, script, tags):
    """The access node's dexter-crl (from its user data) in a sandbox whose
    /etc/openvpn is root's, its instance metadata (curl) answering tags as
    IMDSv2 does (test_provision.py's stub)."""
    box = os.path.join(work, "crl-timer")
    os.makedirs(os.path.join(box, "stubs"), exist_ok=True)
    write(os.path.join(box, "stubs", "curl"), IMDS_TAGS_CURL, 0o755)
    write(os.path.join(box, "dexter-crl"), script, 0o755)
    with open(os.path.join(box, "tags.json"), "w") as f:
        json.dump(tags, f)
    cmd = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
           "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
           "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
           "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
           "--bind", os.path.join(root, "etc", "openvpn"), "/etc/openvpn",
           "--ro-bind", os.path.join(box, "stubs"), "/stubs",
           "--ro-bind", os.path.join(box, "tags.json"), "/record/tags.json",
           "--ro-bind", os.path.join(box, "dexter-crl"), "/dexter-crl",
           "--clearenv", "--setenv", "PATH", "/stubs:/usr/sbin:/usr/bin"]
    if os.getuid() != 0:
        cmd += ["--unshare-user", "--uid", "0", "--gid", "0"]
    return subprocess.run(cmd + ["/bin/bash", "/dexter-crl"], capture_output=True, text=True,
                          timeout=60)


def deployment_jobs(stack, name):
    return [k.decode() if isinstance(k, bytes) else k
            for k in stack.redis_client().hkeys("dexter:{%s}:jobs" % name)]


def relaunch_access_node(stack, name):
    """Terminates the access node behind Dexter's back and deploys: the
    deploy launches it again, with the bundle of now."""
    ec2 = botocore.session.get_session().create_client(
        "ec2", region_name="us-west-2", endpoint_url=stack.fake_ec2_url,
        aws_access_key_id=FAKE_KEY_ID, aws_secret_access_key=FAKE_SECRET)
    old = access_node(stack, name)["id"]
    ec2.terminate_instances(InstanceIds=[old])
    d, _ = aws_helpers.deploy(stack, name)
    assert access_node(stack, name)["id"] != old
    return d


def deployed_cluster(stack, name, tmp_path):
    pem = pem_key(str(tmp_path / ("%s.pem" % name)))
    make_aws_cluster(stack, name, pem, GROUP)
    d, _ = aws_helpers.deploy(stack, name)
    return d


def test_users_lifecycle(stack_factory, tmp_path):
    stack = stack_factory()
    stack.start_fake_ec2()
    stack.start_aws_worker()
    name = "vpnusers"
    pem = pem_key(str(tmp_path / "key.pem"))
    make_aws_cluster(stack, name, pem, GROUP)

    # Never deployed: no PKI, 409 saying so, for every operation
    for body in (add(stack, name, "alice", status=409), listed(stack, name, 409),
                 revoke(stack, name, "alice", 409)):
        assert body["code"] == "CONFLICT" and "deploy" in body["message"], body
    # Unknown cluster, and a name that cannot be one
    assert add(stack, "nosuch", "alice", status=404)["code"] == "NOT_FOUND"
    assert listed(stack, "nosuch", 404)["code"] == "NOT_FOUND"
    assert revoke(stack, "nosuch", "alice", 404)["code"] == "NOT_FOUND"

    d, _ = aws_helpers.deploy(stack, name)
    assert d["vpn_crl"] is None
    assert listed(stack, name) == {"users": [], "crl": "current"}

    # Issued: JSON and form bodies; the profile once, with certificate and key
    alice = add(stack, name, "alice")
    assert alice["name"] == "alice" and alice["serial"] == 3, alice
    profile = alice["profile"]
    assert "remote %s 1194" % d["_accessip"] in profile.splitlines(), profile
    assert "-----BEGIN CERTIFICATE-----" in block(profile, "cert")
    assert "PRIVATE KEY-----" in block(profile, "key")
    assert "auth-user-pass" not in profile
    bob = add(stack, name, "bob", form=True)
    assert bob["name"] == "bob" and bob["serial"] == 4, bob
    assert block(bob["profile"], "key") != block(profile, "key")

    # The key is kept nowhere: not in Redis, not in a log
    r = stack.redis_client()
    everything = "\n".join(r.hvals("dexter:{%s}:resources" % name))
    for text in ("PRIVATE KEY", block(profile, "key").splitlines()[1]):
        assert text not in everything
        assert text not in stack.logs()

    # Refusals change nothing
    before = recorded_pki(stack, name)
    dup = add(stack, name, "alice", status=409)
    assert dup["code"] == "CONFLICT" and dup["field"] == "name", dup
    for bad in ("Bad", "a-b", "x" * 17, "1abc", ""):
        body = add(stack, name, bad, status=400)
        assert body["code"] == "INVALID" and body["field"] == "name", body
    r2 = requests.post(users_url(stack, name), json={"name": "carl", "role": "x"},
                       headers=stack.auth_headers(), timeout=10)
    assert r2.status_code == 400 and r2.json()["field"] == "role", r2.text
    r2 = requests.post(users_url(stack, name), json={}, headers=stack.auth_headers(), timeout=10)
    assert r2.status_code == 400 and r2.json()["field"] == "name", r2.text
    unknown = revoke(stack, name, "carol", 404)
    assert unknown["code"] == "NOT_FOUND" and unknown["field"] == "name", unknown
    assert revoke(stack, name, "Bad_Name", 404)["code"] == "NOT_FOUND"
    assert recorded_pki(stack, name) == before

    got = listed(stack, name)
    assert got["crl"] == "current"
    assert [(u["name"], u["serial"], u["revoked"], u["revoked_at"]) for u in got["users"]] == \
        [("alice", 3, False, None), ("bob", 4, False, None)]
    assert got["users"][0]["expires"] == alice["expires"]

    # Revoked: the CRL is pending until a deploy
    gone = revoke(stack, name, "bob")
    assert gone["name"] == "bob" and gone["serial"] == 4 and gone["revoked"] is True, gone
    assert gone["crl"] == "pending" and "next deploy" in gone["message"], gone
    got = listed(stack, name)
    assert got["crl"] == "pending"
    assert got["users"][1]["revoked"] is True and got["users"][1]["revoked_at"], got
    assert deployment(stack, name)["vpn_crl"] == "pending"
    pki = recorded_pki(stack, name)
    assert pki["crl_number"] == before["crl_number"] + 1 and pki["crl"] != before["crl"]
    assert pki["ca_cert"] == before["ca_cert"]
    # Again: no error, nothing new
    assert revoke(stack, name, "bob")["revoked"] is True
    assert recorded_pki(stack, name)["crl_number"] == pki["crl_number"]
    # A revoked name stays taken
    assert add(stack, name, "bob", status=409)["field"] == "name"

    types = [e["type"] for e in aws_helpers.events(stack, name)]
    assert types.count("vpn.user.added") == 2 and types.count("vpn.user.revoked") >= 1, types

    # A deploy writes the new CRL into the running access node's tags (its
    # user data keeps the old one): nothing is pending
    node = access_node(stack, name)
    assert node["metadata_tags"] == "enabled"
    assert "dexter:crl" not in node["tags"]
    old_crl = access_crl(stack, name)
    assert old_crl == before["crl"]
    aws_helpers.deploy(stack, name)
    assert access_node(stack, name)["id"] == node["id"]
    assert access_crl(stack, name) == old_crl
    number, der = tagged_crl(access_node(stack, name))
    assert (number, der) == (pki["crl_number"], crl_der(pki["crl"]))
    assert deployment(stack, name)["vpn_crl"] is None
    assert listed(stack, name)["crl"] == "current"
    assert [e for e in aws_helpers.events(stack, name)
            if e["type"] == "step.done" and '"access.crl"' in json.dumps(e)]
    # A deploy with nothing pending writes no tags
    aws_helpers.deploy(stack, name)
    assert "access.crl" not in deployment_jobs(stack, name)
    # A deploy that launches it gives it the new CRL in its user data
    d2 = relaunch_access_node(stack, name)
    assert d2["_accessip"] == d["_accessip"]
    assert access_crl(stack, name) == pki["crl"]
    assert deployment(stack, name)["vpn_crl"] is None
    assert listed(stack, name)["crl"] == "current"
    assert recorded_pki(stack, name)["crl"] == pki["crl"]
    assert [u["name"] for u in listed(stack, name)["users"]] == ["alice", "bob"]

    # A destroy takes the PKI, and its users, with it
    aws_helpers.deploy(stack, name, "destroy")
    assert listed(stack, name, 409)["code"] == "CONFLICT"


def test_revoke_reaches_the_azure_access_node(stack_factory):
    """On the fake ARM: a revocation pending, a deploy writes the CRL into
    the running access VM's tags (its ownership tags kept), nothing pending
    then, and a deploy after it writes nothing more."""
    stack = stack_factory()
    stack.start_fake_arm()
    stack.start_azure_worker()
    name = "vpnazcrl"
    azure_helpers.make_azure_cluster(stack, name, [{"name": "g1", "instance_type":
                                                    "Standard_A2_v2", "cpus": 2, "ram": 4}])
    azure_helpers.deploy(stack, name)

    def access_vm():
        vms = [vm for vm in azure_helpers.of_type(stack.arm_state(), azure_helpers.VM_TYPE)
               if vm["tags"].get("dexter:role") == "access"]
        assert len(vms) == 1, vms
        return vms[0]

    vm = access_vm()
    assert "dexter:crl" not in vm["tags"]
    add(stack, name, "alice")
    add(stack, name, "bob")
    gone = revoke(stack, name, "bob")
    assert gone["crl"] == "pending" and "next deploy" in gone["message"], gone
    assert deployment(stack, name)["vpn_crl"] == "pending"
    azure_helpers.deploy(stack, name)
    after = access_vm()
    assert after["id"] == vm["id"]
    assert after["tags"]["dexter:cluster"] == name and after["tags"]["dexter:role"] == "access"
    pki = recorded_pki(stack, name)
    number, der = tagged_crl(after)
    assert (number, der) == (pki["crl_number"], crl_der(pki["crl"]))
    crl = x509.load_der_x509_crl(der)
    assert crl.get_revoked_certificate_by_serial_number(4) is not None     # bob
    assert deployment(stack, name)["vpn_crl"] is None
    assert listed(stack, name)["crl"] == "current"
    azure_helpers.deploy(stack, name)
    assert "access.crl" not in deployment_jobs(stack, name)
    azure_helpers.deploy(stack, name, "destroy")


def test_users_connect_with_the_real_openvpn(stack_factory, tmp_path):
    assert os.access(OPENVPN, os.X_OK), "openvpn is missing (scripts/packages.txt)"
    why = tun_refused()
    if why:
        pytest.skip(why)
    stack = stack_factory()
    stack.start_fake_ec2()
    stack.start_aws_worker()
    name, other = "vpnconn", "vpnother"
    d = deployed_cluster(stack, name, tmp_path)
    deployed_cluster(stack, other, tmp_path)

    work = str(tmp_path / "vpn")
    os.makedirs(work)
    profiles = {"alice": add(stack, name, "alice")["profile"],
                "bob": add(stack, name, "bob")["profile"],
                "carol": add(stack, other, "carol")["profile"]}
    # carol's profile names her cluster's access node: aimed at this one
    o = deployment(stack, other)["_accessip"]
    assert o != d["_accessip"]
    profiles["carol"] = profiles["carol"].replace("remote %s 1194" % o,
                                                  "remote %s 1194" % d["_accessip"])
    for user, text in profiles.items():
        write(os.path.join(work, user + ".ovpn"), text)
    revoke(stack, name, "bob")

    os.mkdir(os.path.join(work, "pam.d"))
    write(os.path.join(work, "pam.d", "login"), "auth required pam_deny.so\n"
          "account required pam_deny.so\n", 0o644)

    def run(crl_label, timer=False):
        # The access node's /etc/openvpn/server, as its user data writes it,
        # and with timer the CRL its dexter-crl installs from its tags
        root = os.path.join(work, "root-" + crl_label)
        node = access_node(stack, name)
        files = write_files(node["user_data_b64"])
        for path, (mode, content) in files.items():
            if path.startswith("/etc/openvpn/server/"):
                os.makedirs(os.path.dirname(root + path), exist_ok=True)
                write(root + path, content, int(mode, 8))
        if timer:
            script = files["/usr/local/sbin/dexter-crl"][1]
            ran = run_crl_timer(work, root, script, node["tags"])
            assert ran.returncode == 0, ran.stdout + ran.stderr
            assert "installed CRL %d" % recorded_pki(stack, name)["crl_number"] in ran.stdout
        server = AccessNode(work, root, d["_accessip"])
        server.start()
        try:
            results = {}
            for user in ("alice", "bob", "carol"):
                c = Client(server, work, "%s-%s" % (user, crl_label),
                           os.path.join(work, user + ".ovpn"))
                results[user] = (c.run_until([CONNECTED, "AUTH_FAILED"],
                                             ["certificate revoked: CN=bob",
                                              "tls-crypt unwrapping failed"]), c)
            return results
        finally:
            server.stop()

    # The access node launched before the revocation: bob still gets in
    assert deployment(stack, name)["vpn_crl"] == "pending"
    old = run("old")
    assert old["alice"][0] == CONNECTED, old["alice"][1].log()[-3000:]
    assert "VERIFY OK: depth=0, CN=alice" in old["alice"][1].server_log()
    assert old["bob"][0] == CONNECTED, old["bob"][1].log()[-3000:]
    assert old["carol"][0] == "tls-crypt unwrapping failed", old["carol"][1].server_log()[-3000:]

    # A deploy writes the new CRL into the running node's tags: the CRL
    # reassembled from them is the CA's, and with it bob is refused by the
    # same access node, never launched again
    launched = access_node(stack, name)["id"]
    aws_helpers.deploy(stack, name)
    assert access_node(stack, name)["id"] == launched
    assert deployment(stack, name)["vpn_crl"] is None
    number, der = tagged_crl(access_node(stack, name))
    pki = recorded_pki(stack, name)
    assert number == pki["crl_number"] and der == crl_der(pki["crl"])
    crl = x509.load_der_x509_crl(der)
    ca = x509.load_pem_x509_certificate(pki["ca_cert"].encode())
    assert crl.is_signature_valid(ca.public_key())
    assert crl.get_revoked_certificate_by_serial_number(4) is not None     # bob
    new = run("new", timer=True)
    installed = os.path.join(work, "root-new", "etc/openvpn/server/dexter/crl.pem")
    with open(installed, "rb") as f:
        assert x509.load_pem_x509_crl(f.read()).public_bytes(serialization.Encoding.DER) == der
    assert new["alice"][0] == CONNECTED, new["alice"][1].log()[-3000:]
    assert new["bob"][0] == "certificate revoked: CN=bob", new["bob"][1].server_log()[-3000:]
    assert CONNECTED not in new["bob"][1].log()
    assert new["carol"][0] == "tls-crypt unwrapping failed", new["carol"][1].server_log()[-3000:]
    assert "Peer Connection Initiated" not in new["carol"][1].server_log()
