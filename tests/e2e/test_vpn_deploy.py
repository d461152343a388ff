"""The vpn service end to end, on the fake EC2 and the fake ARM: a real
redis-server, dexter-scheduler, dexter-api, the cloud worker and dexter-vpn.

After a deploy the access node's user data (the fake EC2 keeps UserData,
the fake ARM customData: tests/fakes/README.md) writes the OpenVPN server
files of the cluster's CA: the server certificate is the CA's and its key
is the certificate's; GET …/deployment/vpn answers the client profile as a
JSON string, with `remote <_accessip> 1194`, the same CA and tls-crypt key,
and the reference's `echo -e` line turns it into the file byte for byte;
with `Accept: application/x-openvpn-profile` it answers that file. A
redeploy keeps the PKI (the same CA, the same recorded PKI); a destroy
drops it, and the profile with it. Redis holds no key in clear and no
service logs one (docs/vpn.md).

And with the real openvpn (test_openvpn.py's server and client): the
server runs the config and files the access node's user data writes, on
the access IP (an address of its private network namespace), and a
password user connects with the profile the reference's line makes of
GET …/deployment/vpn; a wrong password is refused.
"""
import base64
import email
import gzip
import json
import os
import re
import subprocess
import tempfile

import requests
import yaml

import aws_helpers
import azure_helpers
import pytest
from aws_helpers import hosts_for, live_instances, make_aws_cluster, pem_key
from test_openvpn import (CHECK_PASSWORD, CONNECTED, OPENVPN, PAM_LOGIN, Client, Server,
                          tun_refused, write)

SERVER_DIR = "/etc/openvpn/server/dexter"
SERVER_CONF = "/etc/openvpn/server/dexter.conf"
PROFILE_TYPE = "application/x-openvpn-profile"


def write_files(user_data_b64):
    """The write_files of a user data document: {path: (permissions,
    content)}, and its shell part under the key "#!"."""
    data = base64.b64decode(user_data_b64)
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    text = data.decode()
    files = {}
    for part in email.message_from_string(text).walk():
        if part.is_multipart():
            continue
        body = part.get_payload(decode=True).decode()
        if body.startswith("#cloud-config"):
            for f in yaml.safe_load(body).get("write_files") or []:
                files[f["path"]] = (f.get("permissions"), f.get("content"))
        if body.startswith("#!"):
            files["#!"] = (None, body)
    return files


def block(text, tag):
    """The text between the <tag> and </tag> lines of a profile."""
    m = re.search(r"^<%s>\n(.*?)</%s>$" % (tag, tag), text, re.S | re.M)
    assert m, "no <%s> block in:\n%s" % (tag, text)
    return m.group(1)


def openssl(*args, stdin=None):
    return subprocess.run(("openssl",) + args, input=stdin, capture_output=True, text=True,
                          timeout=60, check=True).stdout


def check_server_files(files):
    """The access node's OpenVPN files: all there, the keys root's alone, the
    server certificate the CA's and the key the certificate's. Returns them
    by name."""
    want = {"ca.crt": "0644", "server.crt": "0644", "server.key": "0600",
            "tls-crypt.key": "0600", "crl.pem": "0644", "auth.py": "0755"}
    got = {}
    for name, mode in want.items():
        path = SERVER_DIR + "/" + name
        assert path in files, "the access node's user data lacks %s: %s" % (path, sorted(files))
        assert files[path][0] == mode, (path, files[path][0])
        got[name] = files[path][1]
    assert SERVER_CONF in files, sorted(files)
    conf = files[SERVER_CONF][1]
    assert re.search(r"^port 1194$", conf, re.M) and re.search(r"^proto udp", conf, re.M), conf
    assert "ca %s/ca.crt" % SERVER_DIR in conf and "crl-verify %s/crl.pem" % SERVER_DIR in conf, conf
    with tempfile.TemporaryDirectory() as d:
        for name, text in got.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        out = openssl("verify", "-CAfile", os.path.join(d, "ca.crt"), os.path.join(d, "server.crt"))
        assert out.strip().endswith(": OK"), out
        cert_key = openssl("x509", "-in", os.path.join(d, "server.crt"), "-noout", "-pubkey")
        key_key = openssl("pkey", "-in", os.path.join(d, "server.key"), "-pubout")
        assert cert_key == key_key, "the server key is not the server certificate's"
        openssl("crl", "-in", os.path.join(d, "crl.pem"), "-noout", "-CAfile", os.path.join(d, "ca.crt"))
    assert "OpenVPN Static key V1" in got["tls-crypt.key"]
    # and the shell part starts the server
    assert re.search(r"^systemctl enable --now openvpn-server@dexter$", files["#!"][1], re.M), \
        files["#!"][1]
    return got


def get_profile(stack, name):
    r = requests.get(stack.url("/clusters/%s/deployment/vpn" % name), headers=stack.auth_headers(),
                     timeout=10)
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    profile = r.json()
    assert isinstance(profile, str), profile
    return profile


def check_profile(stack, name, accessip, server):
    """The profile served: the cluster's CA and tls-crypt key, the access IP."""
    profile = get_profile(stack, name)
    lines = profile.splitlines()
    for line in ("client", "dev tun", "proto udp", "remote %s 1194" % accessip,
                 "remote-cert-tls server", "auth-user-pass"):
        assert line in lines, "%r not in the profile:\n%s" % (line, profile)
    assert block(profile, "ca") == server["ca.crt"]
    assert block(profile, "tls-crypt") == server["tls-crypt.key"]
    # The reference's line writes the file back, byte for byte (and echo's newline)
    url = stack.url("/clusters/%s/deployment/vpn" % name)
    header = "".join(" -H '%s: %s'" % kv for kv in stack.auth_headers().items())
    out = subprocess.run(["bash", "-c", "echo -e `curl -qs%s %s | tr -d '\"'`" % (header, url)],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert out == profile + "\n"
    # Asked for the file, the file itself
    raw = requests.get(url, headers=dict(stack.auth_headers(), Accept=PROFILE_TYPE), timeout=10)
    assert raw.status_code == 200, raw.text
    assert raw.headers["Content-Type"] == PROFILE_TYPE, raw.headers
    assert raw.content == profile.encode()
    return profile


def check_sealed(stack, name):
    """Redis holds the PKI and the profile with their secrets sealed; no
    service logged a key. Returns the recorded PKI."""
    r = stack.redis_client()
    pki = json.loads(r.hget("dexter:{%s}:resources" % name, "vpn.pki"))
    profile = json.loads(r.hget("dexter:{%s}:resources" % name, "vpn.profile"))
    assert pki["server"].startswith("dx1:") and profile["profile"].startswith("dx1:")
    stored = json.loads(pki["pki"])
    for secret in ("ca_key", "server_key", "tls_crypt"):
        assert stored[secret].startswith("dx1:"), secret
    everything = "\n".join(r.hvals("dexter:{%s}:resources" % name) + r.hvals("dexter:{%s}:jobs" % name))
    for text in ("PRIVATE KEY", "OpenVPN Static key"):
        assert text not in everything, "%s in Redis" % text
        assert text not in stack.logs(), "%s in a service's log" % text
    return stored


def check_destroyed(stack, name):
    r = stack.redis_client()
    assert not r.exists("dexter:{%s}:resources" % name)
    # No profile, in either form: the error is JSON
    for accept in ("application/json", PROFILE_TYPE):
        got = requests.get(stack.url("/clusters/%s/deployment/vpn" % name),
                           headers=dict(stack.auth_headers(), Accept=accept), timeout=10)
        assert got.status_code == 404, got.text
        assert "deploy first" in got.json()["message"], got.json()


def test_aws_vpn(stack_factory, tmp_path):
    stack = stack_factory()
    stack.start_fake_ec2()
    stack.start_aws_worker()
    assert stack.vpn_workers, "no vpn worker started with the aws worker"
    name = "vpnaws"
    pem = pem_key(str(tmp_path / "key.pem"))
    hosts = make_aws_cluster(stack, name, pem, [{"name": "g1", "instance_type": "m5.large",
                                                 "cpus": 2, "ram": 8}])
    assert hosts == {"g1": hosts_for("m5.large", 2, 8)}
    r = requests.get(stack.url("/clusters/%s/deployment/vpn" % name), headers=stack.auth_headers(),
                     timeout=10)
    assert r.status_code == 404 and "deploy first" in r.json()["message"], r.text

    d, evs = aws_helpers.deploy(stack, name)
    aws_helpers.check_events(evs, d["generation"], "deployed", aws_helpers.planned_steps(1, hosts))
    workers = {e["step"]: e["worker"] for e in evs if e["type"] == "step.done"}
    assert workers["vpn.server"] == workers["vpn.profile"] == stack.worker_name(stack.vpn_workers[0])
    access = [i for i in live_instances(stack.fake_state(), name)
              if i["tags"].get("dexter:role") == "access"]
    assert len(access) == 1, access
    server = check_server_files(write_files(access[0]["user_data_b64"]))
    check_profile(stack, name, d["_accessip"], server)
    stored = check_sealed(stack, name)

    # Again: the same PKI, recorded as it was, and the same profile
    d2, evs = aws_helpers.deploy(stack, name)
    assert d2["generation"] == d["generation"] + 1
    assert {"vpn.server", "vpn.profile"} <= {e["step"] for e in evs if e["type"] == "step.done"}
    assert check_sealed(stack, name) == stored
    check_profile(stack, name, d2["_accessip"], server)

    aws_helpers.deploy(stack, name, "destroy")
    check_destroyed(stack, name)


def test_azure_vpn(stack_factory):
    stack = stack_factory()
    stack.start_fake_arm()
    stack.start_azure_worker()
    name = "vpnaz"
    hosts = azure_helpers.make_azure_cluster(stack, name, [{"name": "g1", "instance_type":
                                                            "Standard_A2_v2", "cpus": 2, "ram": 4}])
    d, evs = azure_helpers.deploy(stack, name)
    aws_helpers.check_events(evs, d["generation"], "deployed", azure_helpers.planned_steps(1, hosts))
    vms = [vm for vm in azure_helpers.of_type(stack.arm_state(), azure_helpers.VM_TYPE)
           if vm["tags"].get("dexter:role") == "access"]
    assert len(vms) == 1, vms
    custom = azure_helpers.vm_props(vms[0])["osProfile"]["customData"]
    server = check_server_files(write_files(custom))
    check_profile(stack, name, d["_accessip"], server)
    stored = check_sealed(stack, name)

    azure_helpers.deploy(stack, name)
    assert check_sealed(stack, name) == stored
    check_profile(stack, name, d["_accessip"], server)

    azure_helpers.deploy(stack, name, "destroy")
    check_destroyed(stack, name)


class AccessNode(Server):
    """test_openvpn's server, answering on the access node's address."""

    def __init__(self, workdir, root, address):
        super().__init__(workdir, root)
        script = self.proc.argv[-1].replace("ip link set lo up && ",
                                            "ip link set lo up && ip addr add %s/32 dev lo && "
                                            % address)
        self.proc.argv[-1] = script


def test_aws_vpn_connects(stack_factory, tmp_path):
    assert os.access(OPENVPN, os.X_OK), "openvpn is missing (scripts/packages.txt)"
    why = tun_refused()
    if why:
        pytest.skip(why)
    stack = stack_factory()
    stack.start_fake_ec2()
    stack.start_aws_worker()
    name = "vpnreal"
    pem = pem_key(str(tmp_path / "key.pem"))
    make_aws_cluster(stack, name, pem, [{"name": "g1", "instance_type": "m5.large",
                                         "cpus": 2, "ram": 8}])
    d, _ = aws_helpers.deploy(stack, name)
    access = [i for i in live_instances(stack.fake_state(), name)
              if i["tags"].get("dexter:role") == "access"]
    files = write_files(access[0]["user_data_b64"])

    # The access node's /etc/openvpn/server, as its user data writes it
    work = str(tmp_path / "vpn")
    root = os.path.join(work, "root")
    for path, (mode, content) in files.items():
        if path.startswith("/etc/openvpn/server/"):
            os.makedirs(os.path.dirname(root + path), exist_ok=True)
            write(root + path, content, int(mode, 8))
    os.mkdir(os.path.join(work, "pam.d"))
    write(os.path.join(work, "pam.d", "login"), PAM_LOGIN.format(dir=work), 0o644)
    write(os.path.join(work, "check-password"), CHECK_PASSWORD.format(dir=work), 0o755)
    write(os.path.join(work, "passwords"), "vpnuser1:correct horse battery\n")
    write(os.path.join(work, "good.creds"), "vpnuser1\ncorrect horse battery\n")
    write(os.path.join(work, "bad.creds"), "vpnuser1\nwrong horse\n")

    # The profile as the reference's line writes it
    profile = check_profile(stack, name, d["_accessip"], check_server_files(files))
    write(os.path.join(work, "reference.ovpn"), profile + "\n")

    server = AccessNode(work, root, d["_accessip"])
    server.start()
    try:
        c = Client(server, work, "password", os.path.join(work, "reference.ovpn"),
                   os.path.join(work, "good.creds"))
        assert c.run_until([CONNECTED, "AUTH_FAILED"]) == CONNECTED, c.log()[-4000:]
        assert "Username/Password authentication succeeded for username 'vpnuser1'" \
            in c.server_log()
        assert "link remote: [AF_INET]%s:1194" % d["_accessip"] in c.log(), c.log()[-4000:]
        c = Client(server, work, "badpassword", os.path.join(work, "reference.ovpn"),
                   os.path.join(work, "bad.creds"))
        assert c.run_until([CONNECTED, "AUTH_FAILED"]) == "AUTH_FAILED", c.log()[-4000:]
    finally:
        server.stop()
    assert "Exiting due to fatal error" not in server.log()
