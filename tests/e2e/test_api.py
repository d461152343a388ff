"""The HTTP contract of docs/api.md, endpoint by endpoint, with `requests`
against real dexter-api, dexter-scheduler and redis-server processes.

Tests written from the contract, not from the code: statuses, body shapes,
normalization, conflicts, secrets hidden behind fingerprints, and that a
cluster delete leaves nothing of the cluster in Redis.
"""
import base64
import json
import re
import resource
import socket
import subprocess
import tempfile
import uuid

import pytest
import requests

from conftest import wait_until

FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
ERROR_CODES = {400: "INVALID", 401: "UNAUTHORIZED", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
               409: "CONFLICT", 413: "TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE",
               503: "UNAVAILABLE"}
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SSH_PASSWORD = "Secr3t.Passw0rd"


# ---------------------------------------------------------------- helpers --

def uniq(prefix="t"):
    """A fresh valid cluster/group name: ^[a-z][a-z0-9]{0,15}$."""
    return prefix + uuid.uuid4().hex[:8]


def call(stack, method, path, **kw):
    kw.setdefault("timeout", 10)
    kw.setdefault("allow_redirects", False)
    headers = dict(stack.auth_headers(), **kw.pop("headers", {}))
    return requests.request(method, stack.url(path), headers=headers, **kw)


def ok(r, status):
    """Asserts the status and a JSON answer; returns the body."""
    assert r.status_code == status, "%s %s: expected %d, got %d %s" % (
        r.request.method, r.request.url, status, r.status_code, r.text[:600])
    assert r.headers.get("Content-Type", "").split(";")[0].strip() == "application/json", r.headers
    return r.json()


def err(r, status, field=None):
    """Asserts an error answer of docs/api.md: status, code, message, field."""
    body = ok(r, status)
    assert body.get("code") == ERROR_CODES[status], body
    assert isinstance(body.get("message"), str) and body["message"].strip(), body
    if field is not None:
        assert body.get("field") == field, "expected field %r: %s" % (field, body)
    return body


@pytest.fixture(scope="module")
def pem():
    """A real unencrypted RSA private key (PKCS#8 PEM)."""
    p = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048"], check=True, capture_output=True, timeout=60)
    return p.stdout.decode()


@pytest.fixture(scope="module")
def pem2():
    p = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048"], check=True, capture_output=True, timeout=60)
    return p.stdout.decode()


def b64(text):
    return base64.b64encode(text.encode()).decode()


def b64url(text):
    return base64.urlsafe_b64encode(text.encode()).decode()


def azure_credentials(**override):
    c = {"clientId": str(uuid.uuid4()), "clientSecret": "cs~" + uuid.uuid4().hex,
         "tenantId": str(uuid.uuid4()), "subscriptionId": str(uuid.uuid4()),
         "activeDirectoryEndpointUrl": "https://login.microsoftonline.com",
         "resourceManagerEndpointUrl": "https://management.azure.com/"}
    c.update(override)
    return b64url(json.dumps(c))


def aws_config(pem, **kw):
    c = {"master_type": "m3.large", "masters": "3", "region": "us-west-2", "sshkey": "reference",
         "sshkeydata": b64url(pem)}
    c.update(kw)
    return c


def azure_config(**kw):
    c = {"location": "Central US", "masters": "3", "ssh_user": "dexter",
         "ssh_password": SSH_PASSWORD, "master_type": "Basic_A2"}
    c.update(kw)
    return c


def group(name="slaves", **kw):
    g = {"name": name, "role": "role1", "attributes": '{"foo":"bar"}', "vars": '{"foo":"bar"}',
         "instance_type": "r3.xlarge", "cpus": "10", "ram": "64", "disk_size": "50"}
    g.update(kw)
    return {k: v for k, v in g.items() if v is not None}


def create(stack, provider="aws", ctype="mesos", name=None):
    name = name or uniq()
    ok(call(stack, "POST", "/clusters", data={"name": name, "provider": provider, "type": ctype}), 201)
    return name


def deployable(stack, pem, provider="aws"):
    """A cluster with a config and one group, ready to deploy."""
    name = create(stack, provider)
    cfg = aws_config(pem) if provider == "aws" else azure_config()
    ok(call(stack, "PUT", "/clusters/%s/config" % name, data=cfg), 200)
    g = group() if provider == "aws" else group(instance_type="Standard_D11", cpus="4", ram="8")
    ok(call(stack, "POST", "/clusters/%s/groups" % name, data=g), 201)
    return name


def deploy(stack, name, provider="aws", **kw):
    if provider == "aws":
        data = {"aws_access_key_id": AWS_KEY_ID, "aws_secret_access_key": AWS_SECRET,
                "command": "deploy"}
    else:
        data = {"credentials": azure_credentials(), "command": "deploy"}
    data.update(kw)
    return call(stack, "PUT", "/clusters/%s/deployment" % name, data=data)


def redis_leftovers(stack, name):
    rc = stack.redis_client()
    try:
        keys = sorted(rc.scan_iter("dexter:{%s}*" % name, count=1000))
        score = rc.zscore("dexter:clusters", name)
    finally:
        rc.close()
    return keys, score


def redis_dump(stack):
    """Every value under dexter:* as text, to search for plaintext secrets."""
    rc = stack.redis_client()
    out = []
    try:
        for key in rc.scan_iter("dexter:*", count=1000):
            t = rc.type(key)
            out.append(key)
            if t == "string":
                out.append(rc.get(key) or "")
            elif t == "hash":
                out.extend("%s=%s" % kv for kv in rc.hgetall(key).items())
            elif t == "list":
                out.extend(rc.lrange(key, 0, -1))
            elif t == "set":
                out.extend(rc.smembers(key))
            elif t == "zset":
                out.extend(m for m, _ in rc.zrange(key, 0, -1, withscores=True))
            elif t == "stream":
                for _, fields in rc.xrange(key):
                    out.extend("%s=%s" % kv for kv in fields.items())
    finally:
        rc.close()
    return "\n".join(out)


def wait_waiting(stack, name):
    def waiting():
        d = call(stack, "GET", "/clusters/%s/deployment" % name).json()
        return d if isinstance(d.get("waiting"), str) and d["waiting"].strip() else None
    return wait_until(waiting, 5, "the deployment to say why it waits")


# ------------------------------------------------------------- /clusters --

def test_list_empty_then_sorted_with_count(stack):
    body = ok(call(stack, "GET", "/clusters"), 200)
    assert body == {"clusters": [], "count": 0}
    for n in ("zeta", "alpha", "mid1"):
        create(stack, name=n, provider="azure" if n == "mid1" else "aws")
    body = ok(call(stack, "GET", "/clusters"), 200)
    assert body["count"] == 3
    assert [c["name"] for c in body["clusters"]] == ["alpha", "mid1", "zeta"]
    for c in body["clusters"]:
        assert set(c) >= {"name", "provider", "type", "state", "created_at"}, c
        assert c["state"] == "init", c
    assert body["clusters"][1]["provider"] == "azure"


def test_create_cluster(shared_stack):
    name = uniq()
    b = ok(call(shared_stack, "POST", "/clusters",
                data={"name": name, "provider": "azure", "type": "dcos"}), 201)
    assert (b["name"], b["provider"], b["type"]) == (name, "azure", "dcos"), b
    c = ok(call(shared_stack, "GET", "/clusters/" + name), 200)
    assert set(c) >= {"name", "provider", "type", "created_at", "updated_at", "configured",
                      "groups", "hosts", "deployment"}, c
    assert (c["name"], c["provider"], c["type"]) == (name, "azure", "dcos")
    assert c["configured"] is False and c["groups"] == [], c
    assert c["deployment"] == {"state": "init", "generation": 0} or \
        (c["deployment"]["state"], c["deployment"]["generation"]) == ("init", 0), c
    assert set(c["hosts"]) >= {"masters", "agents"} and c["hosts"]["agents"] == 0, c
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", c["created_at"]), c


def test_create_existing_is_409(shared_stack):
    name = create(shared_stack)
    err(call(shared_stack, "POST", "/clusters",
             data={"name": name, "provider": "azure", "type": "mesos"}), 409)
    c = ok(call(shared_stack, "GET", "/clusters/" + name), 200)
    assert c["provider"] == "aws", "the failed create changed the cluster: %s" % c


def test_json_body_accepted(shared_stack, pem):
    name = uniq()
    ok(call(shared_stack, "POST", "/clusters",
            json={"name": name, "provider": "aws", "type": "mesos"}), 201)
    cfg = aws_config(pem)
    cfg["masters"] = 5      # a number, not a string
    b = ok(call(shared_stack, "PUT", "/clusters/%s/config" % name, json=cfg), 200)
    assert b["masters"] == 5
    g = ok(call(shared_stack, "POST", "/clusters/%s/groups" % name, json={
        "name": "g1", "role": "*", "attributes": {"rack": "r1", "weight": 3},
        "vars": {"nested": {"ok": [1, 2]}}, "instance_type": "r3.xlarge",
        "cpus": 8, "ram": "61", "disk_size": 100,
        "customhwconf": {"disks": [{"size": 10}]}}), 201)
    assert g["attributes"] == {"rack": "r1", "weight": 3}, g
    assert g["vars"] == {"nested": {"ok": [1, 2]}}, g
    assert (g["cpus"], g["ram"], g["disk_size"]) == (8, 61, 100), g
    assert g["role"] == "*"
    assert [d["device"] for d in g["customhwconf"]["disks"]] == ["xvdf"], g
    # attributes/vars/customhwconf as strings holding JSON inside a JSON body
    g = ok(call(shared_stack, "POST", "/clusters/%s/groups" % name, json={
        "name": "g2", "role": "r", "attributes": '{"a":"b"}', "vars": '{"v":1}',
        "cpus": "4", "ram": "16", "disk_size": "8",
        "customhwconf": '{"disks":[{"size":1}]}'}), 201)
    assert g["attributes"] == {"a": "b"} and g["vars"] == {"v": 1}, g
    assert g["instance_type"] == "m5.xlarge" and g["hosts"] == 1, g


def test_form_without_content_type_and_encoded_values(shared_stack):
    name = uniq()
    raw = ("name=%s&provider=aws&type=mesos" % name).encode()
    r = requests.post(shared_stack.url("/clusters"), data=raw, timeout=10)
    assert "Content-Type" not in r.request.headers
    ok(r, 201)
    # URL-encoded JSON in a form value, and the same unencoded (what curl -d sends).
    enc = ("name=g1&role=role1&attributes=%7B%22foo%22%3A%22b%20ar%22%7D&vars=%7B%7D"
           "&instance_type=r3.xlarge&cpus=10&ram=64&disk_size=50")
    g = ok(call(shared_stack, "POST", "/clusters/%s/groups" % name, data=enc,
                headers={"Content-Type": "application/x-www-form-urlencoded"}), 201)
    assert g["attributes"] == {"foo": "b ar"}, g
    plain = ('name=g2&role=role1&attributes={"foo":"bar"}&vars={"x_factor":"42"}'
             '&instance_type=r3.xlarge&cpus=10&ram=64&disk_size=50')
    g = ok(call(shared_stack, "POST", "/clusters/%s/groups" % name, data=plain.encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}), 201)
    assert g["vars"] == {"x_factor": "42"}, g


def test_large_request_headers(shared_stack):
    # The api's per-connection memory (API_CONNECTION_MEMORY) holds headers
    # of 12 KiB; beyond what it holds, libmicrohttpd answers 431.
    big = {"X-Large": "a" * 12 * 1024}
    ok(call(shared_stack, "GET", "/clusters", headers=big), 200)
    name = uniq()
    ok(call(shared_stack, "POST", "/clusters", headers=big,
            data={"name": name, "provider": "aws", "type": "mesos"}), 201)
    r = call(shared_stack, "GET", "/clusters", headers={"X-Large": "a" * 64 * 1024})
    assert r.status_code == 431, r.status_code


def test_more_connections_than_the_api_holds(stack_factory):
    # The api polls its connections in select mode, so it holds at most 1000
    # at once (descriptors below 1024); one more is closed at once. Those it
    # holds are answered, and it goes on answering when the crowd leaves.
    # The api must be able to open more descriptors than that, so the limit
    # is raised before it starts (it inherits it).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), max(hard, 4096)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    crowd = []
    try:
        # every connection comes from 127.0.0.1: no per-address cap here
        stack = stack_factory(api_env={"DEXTER_API_CONNECTIONS_PER_IP": "0"})
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= 1300, \
            "cannot raise the descriptor limit to open 1,200 connections"
        get = ("GET /api/v1.0/clusters HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n"
               % "".join("%s: %s\r\n" % kv for kv in stack.auth_headers().items())).encode()

        def answer(sock):
            """The status of one GET on sock, or None if the api closed it."""
            try:
                sock.sendall(get)
                head = sock.recv(4096)
            except (ConnectionResetError, BrokenPipeError):
                return None
            return int(head.split()[1]) if head else None

        for _ in range(1200):
            crowd.append(socket.create_connection(("127.0.0.1", stack.api_port), timeout=10))
        statuses = [answer(sock) for sock in crowd]
        held = [s for s in statuses if s is not None]
        assert set(held) == {200}, set(held)
        assert 990 <= len(held) <= 1000, "the api held %d connections" % len(held)
        assert statuses [:990] == [200] * 990
        for sock in crowd:
            sock.close()
        crowd = []
        wait_until(lambda: call(stack, "GET", "/clusters").status_code == 200, 10,
                   "the api to answer once the crowd has gone")
    finally:
        for sock in crowd:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_trailing_slash(shared_stack):
    name = uniq()
    ok(call(shared_stack, "POST", "/clusters/",
            data={"name": name, "provider": "aws", "type": "mesos"}), 201)
    assert name in [c["name"] for c in ok(call(shared_stack, "GET", "/clusters/"), 200)["clusters"]]
    assert ok(call(shared_stack, "GET", "/clusters/%s/" % name), 200)["name"] == name
    ok(call(shared_stack, "GET", "/clusters/%s/groups/" % name), 200)
    ok(call(shared_stack, "GET", "/clusters/%s/deployment/" % name), 200)
    assert ok(call(shared_stack, "DELETE", "/clusters/%s/" % name), 200) == {"deleted": name}


def test_delete_cluster_removes_every_key(shared_stack, pem):
    name = create(shared_stack)
    ok(call(shared_stack, "PUT", "/clusters/%s/config" % name, data=aws_config(pem)), 200)
    ok(call(shared_stack, "POST", "/clusters/%s/groups" % name, data=group("ga")), 201)
    ok(call(shared_stack, "POST", "/clusters/%s/groups" % name, data=group("gb")), 201)
    keys, score = redis_leftovers(shared_stack, name)
    assert keys and score is not None, "the cluster is not under dexter:{%s} in Redis" % name
    assert ok(call(shared_stack, "DELETE", "/clusters/" + name), 200) == {"deleted": name}
    assert redis_leftovers(shared_stack, name) == ([], None)
    err(call(shared_stack, "GET", "/clusters/" + name), 404)
    err(call(shared_stack, "DELETE", "/clusters/" + name), 404)
    assert name not in [c["name"] for c in ok(call(shared_stack, "GET", "/clusters"), 200)["clusters"]]
    # The name is free again.
    create(shared_stack, name=name, provider="azure")


# --------------------------------------------------------------- config --

def test_aws_config(shared_stack, pem, pem2):
    name = create(shared_stack)
    err(call(shared_stack, "GET", "/clusters/%s/config" % name), 404)
    err(call(shared_stack, "DELETE", "/clusters/%s/config" % name), 404)
    b = ok(call(shared_stack, "PUT", "/clusters/%s/config" % name, data=aws_config(pem)), 200)
    assert (b["master_type"], b["masters"], b["region"], b["sshkey"]) == \
        ("m3.large", 3, "us-west-2", "reference"), b
    assert "updated_at" in b
    fp = b["sshkeydata"]
    assert fp["set"] is True and FINGERPRINT.match(fp["fingerprint"]), b
    assert "PRIVATE" not in json.dumps(b) and b64url(pem)[30:60] not in json.dumps(b)
    g = ok(call(shared_stack, "GET", "/clusters/%s/config" % name), 200)
    assert g["sshkeydata"] == fp and g["region"] == "us-west-2" and g["masters"] == 3, g
    c = ok(call(shared_stack, "GET", "/clusters/" + name), 200)
    assert c["configured"] is True and c["hosts"]["masters"] == 3, c
    # Same secret: same fingerprint; another key: another fingerprint.
    b = ok(call(shared_stack, "PUT", "/clusters/%s/config" % name,
                data=aws_config(pem, sshkeydata=b64(pem), masters="5")), 200)
    assert b["sshkeydata"]["fingerprint"] == fp["fingerprint"], (b, fp)
    b = ok(call(shared_stack, "PUT", "/clusters/%s/config" % name,
                data=aws_config(pem2, image="ami-0123456789abcdef0")), 200)
    assert b["sshkeydata"]["fingerprint"] != fp["fingerprint"], (b, fp)
    assert b["image"] == "ami-0123456789abcdef0"
    # PUT replaces the whole config: an omitted optional field goes back to default.
    cfg = aws_config(pem2)
    del cfg["master_type"]
    b = ok(call(shared_stack, "PUT", "/clusters/%s/config" % name, data=cfg), 200)
    assert b["master_type"] == "m3.large" and b.get("image") in (None, ""), b
    assert ok(call(shared_stack, "DELETE", "/clusters/%s/config" % name), 200) == {"deleted": "config"}
    err(call(shared_stack, "GET", "/clusters/%s/config" % name), 404)
    assert ok(call(shared_stack, "GET", "/clusters/" + name), 200)["configured"] is False


@pytest.mark.parametrize("encode", [
    lambda p: base64.b64encode(p.encode()).decode(),
    lambda p: base64.b64encode(p.encode()).decode().rstrip("="),
    lambda p: base64.urlsafe_b64encode(p.encode()).decode().rstrip("="),
    lambda p: base64.encodebytes(p.encode()).decode(),          # 76-column lines
    lambda p: base64.b64encode(p.encode()).decode().replace("A", "A "),
], ids=["std", "std-nopad", "url-nopad", "line-breaks", "spaces"])
def test_sshkeydata_encodings(shared_stack, pem, encode):
    name = create(shared_stack)
    b = ok(call(shared_stack, "PUT", "/clusters/%s/config" % name,
                data=aws_config(pem, sshkeydata=encode(pem))), 200)
    ref = ok(call(shared_stack, "PUT", "/clusters/%s/config" % name, data=aws_config(pem)), 200)
    assert b["sshkeydata"]["fingerprint"] == ref["sshkeydata"]["fingerprint"], \
        "the same key, differently encoded, must be the same secret"


def test_azure_config(shared_stack):
    name = create(shared_stack, provider="azure")
    b = ok(call(shared_stack, "PUT", "/clusters/%s/config" % name, data=azure_config()), 200)
    assert (b["location"], b["location_name"], b["ssh_user"], b["masters"], b["master_type"]) == \
        ("centralus", "Central US", "dexter", 3, "Basic_A2"), b
    fp = b["ssh_password"]
    assert fp["set"] is True and FINGERPRINT.match(fp["fingerprint"]), b
    assert SSH_PASSWORD not in json.dumps(b)
    cfg = azure_config(location="centralus", ssh_password="Other.Passw0rd")
    del cfg["master_type"]
    b = ok(call(shared_stack, "PUT", "/clusters/%s/config" % name, data=cfg), 200)
    assert (b["location"], b["location_name"], b["master_type"]) == \
        ("centralus", "Central US", "Basic_A2"), b
    assert b["ssh_password"]["fingerprint"] != fp["fingerprint"]
    b = ok(call(shared_stack, "PUT", "/clusters/%s/config" % name,
                data=azure_config(location="WEST europe", image="Canonical:UbuntuServer:16.04-LTS:latest")), 200)
    assert b["location"] == "westeurope" and b["ssh_password"]["fingerprint"] == fp["fingerprint"], b
    assert b["image"] == "Canonical:UbuntuServer:16.04-LTS:latest"
    g = ok(call(shared_stack, "GET", "/clusters/%s/config" % name), 200)
    assert g["ssh_password"] == b["ssh_password"] and g["location"] == "westeurope", g


def test_config_unknown_cluster_404(shared_stack, pem):
    n = uniq()
    err(call(shared_stack, "PUT", "/clusters/%s/config" % n, data=aws_config(pem)), 404)
    assert redis_leftovers(shared_stack, n) == ([], None)


# --------------------------------------------------------------- groups --

def test_group_lifecycle(shared_stack, pem):
    name = create(shared_stack)
    assert ok(call(shared_stack, "GET", "/clusters/%s/groups" % name), 200) == {"groups": []}
    g = ok(call(shared_stack, "POST", "/clusters/%s/groups" % name, data=group("web")), 201)
    assert set(g) >= {"name", "role", "attributes", "vars", "instance_type", "cpus", "ram",
                      "disk_size", "customhwconf", "hosts", "instance", "created_at", "updated_at"}, g
    assert (g["name"], g["role"], g["attributes"], g["vars"]) == \
        ("web", "role1", {"foo": "bar"}, {"foo": "bar"}), g
    assert (g["instance_type"], g["cpus"], g["ram"], g["disk_size"], g["hosts"]) == \
        ("r3.xlarge", 10, 64, 50, 3), g
    assert g["instance"]["vcpus"] == 4 and float(g["instance"]["memory_gib"]) == 30.5, g
    assert g["customhwconf"] == {"disks": []}, g
    ok(call(shared_stack, "POST", "/clusters/%s/groups" % name, data=group("app")), 201)
    # POST of an existing name replaces it: 200.
    u = ok(call(shared_stack, "POST", "/clusters/%s/groups" % name,
                data=group("web", cpus="20", ram="128", attributes='{"purpose":"x"}')), 200)
    assert (u["cpus"], u["ram"], u["hosts"], u["attributes"]) == (20, 128, 5, {"purpose": "x"}), u
    lst = ok(call(shared_stack, "GET", "/clusters/%s/groups" % name), 200)["groups"]
    assert [x["name"] for x in lst] == ["app", "web"], lst
    assert lst[1]["cpus"] == 20
    c = ok(call(shared_stack, "GET", "/clusters/" + name), 200)
    assert c["groups"] == ["app", "web"] and c["hosts"]["agents"] == 3 + 5, c
    assert ok(call(shared_stack, "GET", "/clusters/%s/groups/web" % name), 200)["cpus"] == 20
    # PUT without rename, then rename, then rename onto a taken name.
    p = ok(call(shared_stack, "PUT", "/clusters/%s/groups/web" % name,
                data=group("web", cpus="4", ram="8")), 200)
    assert (p["cpus"], p["hosts"]) == (4, 1), p
    p = ok(call(shared_stack, "PUT", "/clusters/%s/groups/web" % name,
                data=group("front", cpus="4", ram="8")), 200)
    assert p["name"] == "front"
    err(call(shared_stack, "GET", "/clusters/%s/groups/web" % name), 404)
    assert ok(call(shared_stack, "GET", "/clusters/%s/groups/front" % name), 200)["cpus"] == 4
    err(call(shared_stack, "PUT", "/clusters/%s/groups/front" % name, data=group("app")), 409)
    assert ok(call(shared_stack, "GET", "/clusters/%s/groups/front" % name), 200)["cpus"] == 4
    assert ok(call(shared_stack, "GET", "/clusters/%s/groups/app" % name), 200)["cpus"] == 10
    err(call(shared_stack, "PUT", "/clusters/%s/groups/nosuch" % name, data=group("nosuch")), 404)
    err(call(shared_stack, "PUT", "/clusters/%s/groups/nosuch" % name, data=group("other")), 404)
    err(call(shared_stack, "GET", "/clusters/%s/groups/nosuch" % name), 404)
    assert ok(call(shared_stack, "DELETE", "/clusters/%s/groups/front" % name), 200) == {"deleted": "front"}
    err(call(shared_stack, "DELETE", "/clusters/%s/groups/front" % name), 404)
    c = ok(call(shared_stack, "GET", "/clusters/" + name), 200)
    assert c["groups"] == ["app"] and c["hosts"]["agents"] == 3, c


@pytest.mark.parametrize("provider,itype,cpus,ram,hosts,vcpus,mem", [
    ("aws", "r3.xlarge", 10, 64, 3, 4, 30.5),     # ceil(10/4)=3, ceil(64/30.5)=3
    ("aws", None, 10, 64, 4, 4, 16),              # default m5.xlarge: ceil(64/16)=4
    ("aws", "m3.large", 1, 1, 1, 2, 7.5),
    ("aws", "m5.xlarge", 4000, 16, 1000, 4, 16),  # exactly 1000 hosts is allowed
    ("azure", "Standard_D11", 12, 16, 6, 2, 14),
    ("azure", "Basic_A2", 12, 60, 18, 2, 3.5),    # ceil(60/3.5)=18
    ("azure", "Standard_DS2", 2, 14, 2, 2, 7),
])
def test_hosts_computation(shared_stack, provider, itype, cpus, ram, hosts, vcpus, mem):
    name = create(shared_stack, provider)
    g = ok(call(shared_stack, "POST", "/clusters/%s/groups" % name,
                data=group(instance_type=itype, cpus=str(cpus), ram=str(ram))), 201)
    assert g["instance_type"] == (itype or "m5.xlarge"), g
    assert g["hosts"] == hosts, g
    assert g["instance"]["vcpus"] == vcpus and float(g["instance"]["memory_gib"]) == mem, g
    assert ok(call(shared_stack, "GET", "/clusters/" + name), 200)["hosts"]["agents"] == hosts


@pytest.mark.parametrize("provider,conf,want", [
    ("aws", {"disks": [{"size": 100}, {"size": 200, "type": "gp3"}, {"size": 50, "device": "xvdh"}]},
     [(100, "gp2", "xvdf"), (200, "gp3", "xvdg"), (50, "gp2", "xvdh")]),
    ("aws", {"disks": [{"size": 10, "device": "xvdf"}, {"size": 20}]},
     [(10, "gp2", "xvdf"), (20, "gp2", "xvdg")]),
    ("aws", {"ebs_block_device": [{"device_name": "/dev/xvdh", "volume_size": 100,
                                   "volume_type": "gp2"}]},
     [(100, "gp2", "xvdh")]),
    ("aws", {"ebs_block_device": [{"device_name": "/dev/xvdz", "volume_size": 16384,
                                   "volume_type": "io1"}, {"volume_size": 1}]},
     [(16384, "io1", "xvdz"), (1, "gp2", "xvdf")]),
    ("azure", {"disks": [{"size": 128}, {"size": 256, "type": "Premium_LRS"}]},
     [(128, "Standard_LRS", "xvdf"), (256, "Premium_LRS", "xvdg")]),
], ids=["aws-defaults", "aws-after-explicit", "aws-ebs", "aws-ebs-defaults", "azure"])
def test_customhwconf_normalized(shared_stack, provider, conf, want):
    """Both forms are stored as {"disks": [{size, type, device}]}, defaults
    filled in; given as a form string and as a JSON object."""
    name = create(shared_stack, provider)
    itype = "r3.xlarge" if provider == "aws" else "Standard_D11"
    g = ok(call(shared_stack, "POST", "/clusters/%s/groups" % name,
                data=group(instance_type=itype, customhwconf=json.dumps(conf))), 201)
    assert set(g["customhwconf"]) == {"disks"}, g["customhwconf"]
    assert [(d["size"], d["type"], d["device"]) for d in g["customhwconf"]["disks"]] == want, g
    body = group(instance_type=itype)
    body["customhwconf"] = conf
    g = ok(call(shared_stack, "POST", "/clusters/%s/groups" % name, json=body), 200)
    assert [(d["size"], d["type"], d["device"]) for d in g["customhwconf"]["disks"]] == want, g
    got = ok(call(shared_stack, "GET", "/clusters/%s/groups/slaves" % name), 200)
    assert [(d["size"], d["type"], d["device"]) for d in got["customhwconf"]["disks"]] == want


# ------------------------------------------------------------ deployment --

def test_deployment_lifecycle(shared_stack, pem):
    name = create(shared_stack)
    d = ok(call(shared_stack, "GET", "/clusters/%s/deployment" % name), 200)
    assert set(d) >= {"cluster", "state", "command", "generation", "observed_generation",
                      "parallelism", "progress", "waiting", "last_error", "created_at",
                      "updated_at", "started_at", "finished_at", "_accessip"}, d
    assert (d["cluster"], d["state"], d["generation"]) == (name, "init", 0), d
    assert d["started_at"] is None and d["finished_at"] is None, d
    assert set(d["progress"]) >= {"steps_done", "steps_total", "current"}, d
    # No config yet: a deploy is a conflict; nothing ever deployed: so is a destroy.
    b = err(deploy(shared_stack, name), 409)
    assert "config" in b["message"].lower(), b
    ok(call(shared_stack, "PUT", "/clusters/%s/config" % name, data=aws_config(pem)), 200)
    ok(call(shared_stack, "POST", "/clusters/%s/groups" % name, data=group()), 201)
    err(deploy(shared_stack, name, command="destroy"), 409)
    assert ok(call(shared_stack, "GET", "/clusters/%s/deployment" % name), 200)["generation"] == 0
    # DELETE of a deployment never started: forgets nothing, 200.
    assert ok(call(shared_stack, "DELETE", "/clusters/%s/deployment" % name), 200) == \
        {"deleted": "deployment"}

    d = ok(deploy(shared_stack, name, parallelism="7"), 202)
    assert (d["cluster"], d["state"], d["command"], d["generation"], d["parallelism"]) == \
        (name, "deploying", "deploy", 1, 7), d
    assert d["started_at"] and d["finished_at"] is None, d
    assert AWS_SECRET not in json.dumps(d) and AWS_KEY_ID not in json.dumps(d)
    d = wait_waiting(shared_stack, name)
    assert (d["state"], d["generation"]) == ("deploying", 1), d
    assert "worker" in d["waiting"].lower() or "aws" in d["waiting"].lower(), d
    c = ok(call(shared_stack, "GET", "/clusters/" + name), 200)
    assert (c["deployment"]["state"], c["deployment"]["generation"]) == ("deploying", 1), c
    lst = ok(call(shared_stack, "GET", "/clusters"), 200)["clusters"]
    assert [x["state"] for x in lst if x["name"] == name] == ["deploying"], lst

    # While in progress: another deploy, a destroy, a deployment DELETE: 409.
    for r in (deploy(shared_stack, name), deploy(shared_stack, name, command="destroy"),
              call(shared_stack, "DELETE", "/clusters/%s/deployment" % name),
              call(shared_stack, "DELETE", "/clusters/%s/deployment?force=false" % name)):
        b = err(r, 409)
        assert "progress" in b["message"].lower(), b
    d = ok(call(shared_stack, "GET", "/clusters/%s/deployment" % name), 200)
    assert (d["state"], d["generation"], d["parallelism"]) == ("deploying", 1, 7), d
    # Spec changes during a deploy are allowed; the snapshot is generation 1.
    ok(call(shared_stack, "POST", "/clusters/%s/groups" % name, data=group(cpus="20")), 200)

    # Cluster DELETE: resources may exist, destroy first.
    for q in ("", "?force=false"):
        b = err(call(shared_stack, "DELETE", "/clusters/%s%s" % (name, q)), 409)
        assert "destroy" in b["message"].lower(), b
    assert ok(call(shared_stack, "GET", "/clusters/" + name), 200)["name"] == name
    secrets = redis_dump(shared_stack)
    for s in (AWS_SECRET, "PRIVATE KEY", b64url(pem)[40:80]):
        assert s not in secrets, "plaintext secret %r in Redis" % s[:12]
    assert ok(call(shared_stack, "DELETE", "/clusters/%s?force=true" % name), 200) == {"deleted": name}
    assert redis_leftovers(shared_stack, name) == ([], None)
    err(call(shared_stack, "GET", "/clusters/%s/deployment" % name), 404)


def test_azure_deploy_with_credentials(shared_stack, pem):
    name = deployable(shared_stack, pem, "azure")
    d = ok(deploy(shared_stack, name, "azure"), 202)
    assert (d["state"], d["generation"], d["parallelism"]) == ("deploying", 1, 5), d
    wait_waiting(shared_stack, name)
    ok(call(shared_stack, "DELETE", "/clusters/%s?force=true" % name), 200)


def test_deployment_unknown_cluster(shared_stack):
    n = uniq()
    err(call(shared_stack, "GET", "/clusters/%s/deployment" % n), 404)
    err(deploy(shared_stack, n), 404)
    err(call(shared_stack, "DELETE", "/clusters/%s/deployment" % n), 404)
    err(call(shared_stack, "GET", "/clusters/%s/deployment/events" % n), 404)
    err(call(shared_stack, "GET", "/clusters/%s/deployment/vpn" % n), 404)
    assert redis_leftovers(shared_stack, n) == ([], None)


def test_vpn_before_access_node_is_404(shared_stack, pem):
    name = deployable(shared_stack, pem)
    b = err(call(shared_stack, "GET", "/clusters/%s/deployment/vpn" % name), 404)
    assert "vpn" in b["message"].lower() or "access" in b["message"].lower(), b
    ok(deploy(shared_stack, name), 202)
    err(call(shared_stack, "GET", "/clusters/%s/deployment/vpn" % name), 404)
    ok(call(shared_stack, "DELETE", "/clusters/%s?force=true" % name), 200)


def test_events(shared_stack, pem):
    name = deployable(shared_stack, pem)
    ok(deploy(shared_stack, name), 202)
    ev = ok(call(shared_stack, "GET", "/clusters/%s/deployment/events" % name), 200)["events"]
    assert ev, "no events"
    for e in ev:
        assert set(e) >= {"id", "time", "type"}, e
    types = [e["type"] for e in ev]
    assert types[0] == "cluster.created", types
    assert len(ev) >= 4, "create, config, group and deploy should each be an event: %s" % types
    ids = [tuple(int(x) for x in e["id"].split("-")) for e in ev]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
    one = ok(call(shared_stack, "GET", "/clusters/%s/deployment/events?count=1" % name), 200)["events"]
    assert [e["id"] for e in one] == [ev[0]["id"]], one
    rest = ok(call(shared_stack, "GET", "/clusters/%s/deployment/events" % name,
                   params={"after": ev[0]["id"]}), 200)["events"]
    assert [e["id"] for e in rest] == [e["id"] for e in ev[1:]], rest
    # Events carry no secret.
    assert AWS_SECRET not in json.dumps(ev) and "PRIVATE" not in json.dumps(ev)
    ok(call(shared_stack, "DELETE", "/clusters/%s?force=true" % name), 200)


# ----------------------------------------------------- routing, methods --

ROUTES = {
    "/clusters": {"GET", "POST"},
    "/clusters/{n}": {"GET", "DELETE"},
    "/clusters/{n}/config": {"GET", "PUT", "DELETE"},
    "/clusters/{n}/groups": {"GET", "POST"},
    "/clusters/{n}/groups/{g}": {"GET", "PUT", "DELETE"},
    "/clusters/{n}/deployment": {"GET", "PUT", "DELETE"},
    "/clusters/{n}/deployment/events": {"GET"},
    "/clusters/{n}/deployment/vpn": {"GET"},
}


@pytest.fixture(scope="module")
def routed(shared_stack, pem):
    name = create(shared_stack)
    ok(call(shared_stack, "POST", "/clusters/%s/groups" % name, data=group("g1")), 201)
    return name


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_wrong_method_is_405_with_allow(shared_stack, routed, route):
    path = route.format(n=routed, g="g1")
    allowed = ROUTES[route]
    for method in sorted({"GET", "POST", "PUT", "DELETE", "PATCH"} - allowed):
        r = call(shared_stack, method, path, data={"name": "x"})
        err(r, 405)
        allow = {m.strip() for m in r.headers.get("Allow", "").split(",") if m.strip()}
        assert allow >= allowed and not (allow & ({"POST", "PUT", "DELETE", "PATCH"} - allowed)), \
            "%s %s: Allow: %r" % (method, path, r.headers.get("Allow"))
    # Nothing changed through a refused method.
    assert ok(call(shared_stack, "GET", "/clusters/%s/groups" % routed), 200)["groups"][0]["name"] == "g1"


@pytest.mark.parametrize("path", [
    "/", "/nope", "/clusters/{n}/nope", "/clusters/{n}/groups/g1/extra",
    "/clusters/{n}/deployment/nope", "/clusters/{n}/config/x",
])
def test_unknown_path_404(shared_stack, routed, path):
    err(call(shared_stack, "GET", path.format(n=routed)), 404)


def test_unknown_prefix_404(shared_stack):
    for p in ("/api/v2.0/clusters", "/api/clusters", "/clusters", "/"):
        r = requests.get("http://127.0.0.1:%d%s" % (shared_stack.api_port, p), timeout=10)
        err(r, 404)


@pytest.mark.parametrize("method,path", [
    ("GET", "/clusters/{u}"), ("DELETE", "/clusters/{u}"), ("GET", "/clusters/{u}/config"),
    ("DELETE", "/clusters/{u}/config"), ("GET", "/clusters/{u}/groups"),
    ("GET", "/clusters/{u}/groups/g1"), ("DELETE", "/clusters/{u}/groups/g1"),
    ("GET", "/clusters/{n}/groups/nosuch"), ("DELETE", "/clusters/{n}/groups/nosuch"),
])
def test_unknown_cluster_or_group_404(shared_stack, routed, method, path):
    u = uniq("u")
    err(call(shared_stack, method, path.format(n=routed, u=u)), 404)
    assert redis_leftovers(shared_stack, u) == ([], None)


def test_group_write_on_unknown_cluster_404(shared_stack):
    u = uniq("u")
    err(call(shared_stack, "POST", "/clusters/%s/groups" % u, data=group()), 404)
    err(call(shared_stack, "PUT", "/clusters/%s/groups/slaves" % u, data=group()), 404)
    assert redis_leftovers(shared_stack, u) == ([], None)


def test_auth_token(stack_factory):
    s = stack_factory(api_env={"DEXTER_API_TOKEN": "s3cr3t-token"})
    url = s.url("/clusters")
    err(requests.get(url, timeout=10), 401)
    err(requests.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10), 401)
    err(requests.get(url, headers={"Authorization": "s3cr3t-token"}, timeout=10), 401)
    r = requests.post(url, data={"name": "x1", "provider": "aws", "type": "mesos"}, timeout=10)
    err(r, 401)
    r = requests.get(url, headers={"Authorization": "Bearer s3cr3t-token"}, timeout=10)
    assert ok(r, 200) == {"clusters": [], "count": 0}


# ------------------------------------------------------- boundary values --

def _edge_cases():
    return [
        ("cluster", {"name": "a" + "0" * 15, "provider": "aws", "type": "dcos"}),
        ("cluster", {"name": "z", "provider": "azure", "type": "mesos"}),
        ("aws-config", {"masters": "1", "region": "ap-southeast-2", "sshkey": "k" * 255,
                        "image": "ami-0123abcd"}),
        ("aws-config", {"masters": "9", "region": "eu-west-1", "sshkey": "my key (prod) #1"}),
        ("azure-config", {"masters": "9", "ssh_user": "_" + "a" * 31, "ssh_password": "Aa1" + "x" * 69}),
        ("azure-config", {"masters": "1", "ssh_user": "ops-user_1", "ssh_password": "aB3.x!"}),
        ("aws-group", {"role": "r" * 64, "cpus": "4096", "ram": "65536", "instance_type": "r6i.32xlarge",
                       "disk_size": "8"}),
        ("aws-group", {"role": "_a.b-c", "cpus": "1", "ram": "1", "disk_size": "16384",
                       "customhwconf": json.dumps({"disks": [{"size": 1}] * 16})}),
        ("aws-group", {"attributes": '{"rack":"r1","zone":2,"w":1.5}', "vars": '{"deep":{"a":[1,{"b":null}]}}'}),
        ("azure-group", {"instance_type": "Standard_DS2", "role": "*",
                         "customhwconf": json.dumps({"disks": [{"size": 16384, "type": "StandardSSD_LRS"}]})}),
        ("aws-deploy", {"parallelism": "1", "aws_secret_access_key": "a" * 16,
                        "aws_access_key_id": "A" * 16}),
        ("aws-deploy", {"parallelism": "100", "aws_secret_access_key": "/" * 128,
                        "aws_access_key_id": "A1" * 64, "aws_session_token": "T+/=" * 1024}),
        ("azure-deploy", {"parallelism": "100"}),
    ]


@pytest.mark.parametrize("kind,fields", _edge_cases(),
                         ids=["%s-%d" % (k, i) for i, (k, _) in enumerate(_edge_cases())])
def test_boundary_values_accepted(shared_stack, pem, kind, fields):
    """Values at the edges of docs/api.md's ranges are accepted (off-by-one)."""
    if kind == "cluster":
        name = fields["name"]
        if call(shared_stack, "GET", "/clusters/" + name).status_code == 200:
            ok(call(shared_stack, "DELETE", "/clusters/%s?force=true" % name), 200)
        b = ok(call(shared_stack, "POST", "/clusters", data=fields), 201)
        assert b["name"] == name
        ok(call(shared_stack, "DELETE", "/clusters/" + name), 200)
        return
    provider = "azure" if kind.startswith("azure") else "aws"
    name = deployable(shared_stack, pem, provider) if kind.endswith("deploy") else create(shared_stack, provider)
    if kind.endswith("config"):
        base = aws_config(pem) if provider == "aws" else azure_config()
        b = ok(call(shared_stack, "PUT", "/clusters/%s/config" % name, data=dict(base, **fields)), 200)
        assert b["masters"] == int(fields["masters"]), b
        for k in ("sshkey", "ssh_user", "image"):
            if k in fields:
                assert b[k] == fields[k], b
    elif kind.endswith("group"):
        base = group() if provider == "aws" else group(instance_type="Standard_D11")
        b = ok(call(shared_stack, "POST", "/clusters/%s/groups" % name, data=dict(base, **fields)), 201)
        for k in ("role", "instance_type"):
            if k in fields:
                assert b[k] == fields[k], b
        if kind == "aws-group" and fields.get("cpus") == "4096":
            assert b["hosts"] == 64, b     # r6i.32xlarge: 128 vCPUs, 1024 GiB
        if "attributes" in fields:
            assert b["attributes"] == json.loads(fields["attributes"])
            assert b["vars"] == json.loads(fields["vars"])
        if "customhwconf" in fields:
            want = json.loads(fields["customhwconf"])["disks"]
            assert len(b["customhwconf"]["disks"]) == len(want), b
            assert [d["device"] for d in b["customhwconf"]["disks"]] == \
                ["xvd" + chr(ord("f") + i) for i in range(len(want))], b
    else:
        b = ok(deploy(shared_stack, name, provider, **fields), 202)
        assert b["parallelism"] == int(fields["parallelism"]), b
    ok(call(shared_stack, "DELETE", "/clusters/%s?force=true" % name), 200)


def test_deployment_delete_force_does_not_cancel_progress(shared_stack, pem):
    """force=true only overrides "resources may exist"; in progress is 409."""
    name = deployable(shared_stack, pem)
    ok(deploy(shared_stack, name), 202)
    b = err(call(shared_stack, "DELETE", "/clusters/%s/deployment?force=true" % name), 409)
    assert "progress" in b["message"].lower(), b
    d = ok(call(shared_stack, "GET", "/clusters/%s/deployment" % name), 200)
    assert (d["state"], d["generation"]) == ("deploying", 1), d
    # A fresh cluster in init deletes without force; force on init is fine too.
    n2 = create(shared_stack)
    assert ok(call(shared_stack, "DELETE", "/clusters/%s?force=true" % n2), 200) == {"deleted": n2}
    ok(call(shared_stack, "DELETE", "/clusters/%s?force=true" % name), 200)


def test_json_content_type_with_charset(shared_stack):
    name = uniq()
    r = call(shared_stack, "POST", "/clusters", headers={"Content-Type": "application/json; charset=utf-8"},
             data=json.dumps({"name": name, "provider": "aws", "type": "mesos"}).encode())
    assert ok(r, 201)["name"] == name


def test_scheduler_down_is_503_then_recovers(stack):
    """The api answers 503 UNAVAILABLE within its deadline when the scheduler
    does not answer, and works again once the scheduler is back."""
    import time
    name = create(stack)
    assert stack.scheduler.stop() == 0
    t0 = time.monotonic()
    r = call(stack, "GET", "/clusters/" + name, timeout=30)
    elapsed = time.monotonic() - t0
    err(r, 503)
    assert elapsed < 3.0 + 2.0, "503 took %.1fs with DEXTER_API_TIMEOUT_MS=3000" % elapsed
    # A write refused with 503 must not happen later (deadline in the request).
    r = call(stack, "POST", "/clusters", data={"name": "late1", "provider": "aws", "type": "mesos"},
             timeout=30)
    err(r, 503)
    stack.start_scheduler()
    stack.wait_ready()
    assert ok(call(stack, "GET", "/clusters/" + name), 200)["name"] == name
    time.sleep(0.5)
    err(call(stack, "GET", "/clusters/late1"), 404)


def test_list_has_no_hidden_page_limit(stack):
    names = ["c%03d" % i for i in range(120)]
    for n in reversed(names):
        create(stack, name=n)
    body = ok(call(stack, "GET", "/clusters"), 200)
    assert body["count"] == 120 and [c["name"] for c in body["clusters"]] == names


def test_events_default_count_and_paging(shared_stack):
    name = create(shared_stack)
    for i in range(110):
        ok(call(shared_stack, "POST", "/clusters/%s/groups" % name,
                data=group("g%d" % (i % 3), cpus=str(i + 1))), 201 if i < 3 else 200)
    first = ok(call(shared_stack, "GET", "/clusters/%s/deployment/events" % name), 200)["events"]
    assert len(first) == 100, len(first)
    assert first[0]["type"] == "cluster.created", first[0]
    seen = [e["id"] for e in first]
    after = seen[-1]
    while True:
        page = ok(call(shared_stack, "GET", "/clusters/%s/deployment/events" % name,
                       params={"after": after, "count": "7"}), 200)["events"]
        assert len(page) <= 7
        if not page:
            break
        seen += [e["id"] for e in page]
        after = page[-1]["id"]
    assert len(seen) == len(set(seen)) >= 111, len(seen)


def test_unicode_values_round_trip(shared_stack):
    name = create(shared_stack)
    attrs = {"city": "Z\u00fcrich", "dc": "\u6771\u4eac"}
    g = ok(call(shared_stack, "POST", "/clusters/%s/groups" % name,
                data=group(attributes=json.dumps(attrs, ensure_ascii=False),
                           vars=json.dumps({"emoji": "\U0001F680"}))), 201)
    assert g["attributes"] == attrs and g["vars"] == {"emoji": "\U0001F680"}, g
    g = ok(call(shared_stack, "GET", "/clusters/%s/groups/slaves" % name), 200)
    assert g["attributes"] == attrs and g["vars"] == {"emoji": "\U0001F680"}, g


def test_group_post_replaces_whole_group(shared_stack):
    name = create(shared_stack)
    ok(call(shared_stack, "POST", "/clusters/%s/groups" % name,
            data=group(customhwconf='{"disks":[{"size":10}]}', instance_type="m3.large")), 201)
    g = ok(call(shared_stack, "POST", "/clusters/%s/groups" % name, data=group(instance_type=None)), 200)
    assert g["customhwconf"] == {"disks": []} and g["instance_type"] == "m5.xlarge", g
