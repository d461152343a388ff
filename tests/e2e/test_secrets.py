"""Secrets never rest in plain text, never reach a log, never come back.

A full scenario through both providers uses distinctive secret values (the
ssh key PEM, the Azure ssh password, the AWS secret key and session token,
the Azure clientSecret), including deployment PUTs and secret changes. Then
every Redis key (SCAN everything; every value of every type, and its DUMP
bytes), every log line of every process and the AOF files on disk are
searched for each secret, its base64/base64url encodings (at every byte
alignment, so it is found inside a larger encoded blob), its URL-encoded and
hex forms, and each body line of the PEM. Every GET answer is searched too.
"""
import base64
import binascii
import glob
import json
import os
import re
import subprocess
import urllib.parse

import requests

FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
HTTP_TIMEOUT = 30

AWS_KEY_ID = "AKIAZ7SECRETTESTKEY9"
AWS_SECRET = "Zx9/SeCrEt+AwsKeyQ7mW2pL4vN8rT1yU3iO5eA6"
AWS_SECRET_2 = "Pq2+OtHeR/AwsSecretK3yJ8hG5fD1sA0zX7cV4b"
AWS_TOKEN = ("FwoGZXIvYXdzEJr//////////wEaDMySessionTokenSecretValue+9/" +
             "IQoJb3JpZ2luX2VjEHUaCXVzLXdlc3QtMiJHMEUCIQD" * 3)
AZURE_CLIENT_SECRET = "az.CLIENT~secret_Value-4f8d2c7b9e1a6053"
SSH_PASSWORD = "Kq7#mZ!pW2xsecretPwd"
SSH_PASSWORD_2 = "Rv4$nY@qX9zOtherPwd"
# Invalid values: rejected with 400, and the rejection must not echo them.
BAD_SSH_PASSWORD = "onlylowercasesecretvaluexyzzy"
BAD_AWS_SECRET = "Inv@lid!SecretKey#Value$12345"


def make_pem():
    return subprocess.run(["openssl", "genrsa", "-traditional", "2048"],
                          capture_output=True, check=True, timeout=120).stdout.decode()


def b64url(text):
    return base64.urlsafe_b64encode(text.encode()).decode()


def azure_credentials(secret):
    blob = {"clientId": "5b0d7c3e-aaaa-4bbb-8ccc-0123456789ab", "clientSecret": secret,
            "tenantId": "9e8f7a6b-dddd-4eee-8fff-0123456789ab",
            "subscriptionId": "1a2b3c4d-eeee-4fff-8aaa-0123456789ab"}
    return base64.urlsafe_b64encode(json.dumps(blob).encode()).decode()


# ------------------------------------------------------------ the needles --

def b64_cores(data):
    """Base64 and base64url substrings present in ANY base64 encoding of a
    text containing data, whatever its byte alignment there."""
    out = []
    for k in range(3):
        chunk = data[k:]
        chunk = chunk[:len(chunk) - len(chunk) % 3]
        if len(chunk) >= 9:
            enc = base64.b64encode(chunk)
            out += [enc, enc.replace(b"+", b"-").replace(b"/", b"_")]
    return out


def needles_for(secret):
    """(bytes, label) for every form of one secret that must not appear."""
    raw = secret.encode()
    forms = [(raw, "plain")]
    forms += [(c, "base64") for c in b64_cores(raw)]
    forms.append((urllib.parse.quote(secret, safe="").encode(), "url-encoded"))
    forms.append((urllib.parse.quote_plus(secret).encode(), "form-encoded"))
    forms.append((binascii.hexlify(raw), "hex"))
    forms.append((json.dumps(secret)[1:-1].encode(), "json-escaped"))
    return forms


def pem_needles(pem):
    forms = needles_for(pem)
    body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    forms += [(line.encode(), "PEM body line") for line in body if len(line) >= 16]
    der = base64.b64decode("".join(body))
    forms.append((der[300:348], "DER private exponent bytes"))
    return forms


class Secrets:
    def __init__(self):
        self.pem, self.pem2 = make_pem(), make_pem()
        self.items = {
            "pem": pem_needles(self.pem), "pem2": pem_needles(self.pem2),
            "aws_secret": needles_for(AWS_SECRET), "aws_secret_2": needles_for(AWS_SECRET_2),
            "aws_token": needles_for(AWS_TOKEN),
            "azure_client_secret": needles_for(AZURE_CLIENT_SECRET),
            "ssh_password": needles_for(SSH_PASSWORD), "ssh_password_2": needles_for(SSH_PASSWORD_2),
            "bad_ssh_password": needles_for(BAD_SSH_PASSWORD),
            "bad_aws_secret": needles_for(BAD_AWS_SECRET),
        }
        # The exact strings sent over HTTP, encoded blobs included.
        self.items["sshkeydata_sent"] = needles_for(b64url(self.pem))
        self.items["credentials_sent"] = needles_for(azure_credentials(AZURE_CLIENT_SECRET))

    def find(self, haystack):
        """[(secret, form)] found in haystack (bytes or str)."""
        if isinstance(haystack, str):
            haystack = haystack.encode("utf-8", "surrogateescape")
        hits = []
        for name, forms in self.items.items():
            for needle, label in forms:
                if needle and needle in haystack:
                    hits.append((name, label))
                    break
        return hits


def assert_clean(secrets, where, haystack):
    hits = secrets.find(haystack)
    assert not hits, "%s contains secrets: %r" % (where, hits)


# --------------------------------------------------------------- scenario --

def req(stack, method, path, expect, secrets, **kw):
    r = requests.request(method, stack.url(path), timeout=HTTP_TIMEOUT,
                         headers=stack.auth_headers(), **kw)
    assert r.status_code == expect, "%s %s: expected %d, got %d %s" % (method, path, expect, r.status_code, r.text[:500])
    assert_clean(secrets, "the answer to %s %s" % (method, path), r.content)
    for header, value in r.headers.items():
        assert_clean(secrets, "header %s of %s %s" % (header, method, path), value)
    return r.json()


def scenario(stack, s):
    """Both providers, form and JSON bodies, secrets set, changed, re-sent."""
    # AWS, form bodies as the reference sends them.
    req(stack, "POST", "/clusters", 201, s, data={"name": "secaws", "provider": "aws", "type": "mesos"})
    cfg1 = req(stack, "PUT", "/clusters/secaws/config", 200, s,
               data={"master_type": "m3.large", "masters": "3", "region": "us-west-2",
                     "sshkey": "reference", "sshkeydata": b64url(s.pem)})
    req(stack, "POST", "/clusters/secaws/groups", 201, s,
        data={"name": "slaves", "role": "role1", "attributes": '{"foo":"bar"}', "vars": '{"foo":"bar"}',
              "instance_type": "r3.xlarge", "cpus": "10", "ram": "64", "disk_size": "50"})
    req(stack, "PUT", "/clusters/secaws/deployment", 202, s,
        data={"aws_access_key_id": AWS_KEY_ID, "aws_secret_access_key": AWS_SECRET,
              "aws_session_token": AWS_TOKEN, "command": "deploy"})
    # Same key again (standard base64 with line breaks this time): same fingerprint.
    cfg_same = req(stack, "PUT", "/clusters/secaws/config", 200, s,
                   data={"master_type": "m3.large", "masters": "3", "region": "us-west-2",
                         "sshkey": "reference",
                         "sshkeydata": base64.encodebytes(s.pem.encode()).decode()})
    # DCOS on AWS with a JSON body and the second key and secret.
    req(stack, "POST", "/clusters", 201, s, json={"name": "secdcos", "provider": "aws", "type": "dcos"})
    cfg2 = req(stack, "PUT", "/clusters/secdcos/config", 200, s,
               json={"masters": 1, "region": "us-east-1", "sshkey": "other", "sshkeydata": b64url(s.pem2)})
    req(stack, "PUT", "/clusters/secdcos/deployment", 202, s,
        json={"aws_access_key_id": AWS_KEY_ID, "aws_secret_access_key": AWS_SECRET_2,
              "command": "deploy", "parallelism": 2})

    # Azure.
    req(stack, "POST", "/clusters", 201, s, data={"name": "secazure", "provider": "azure", "type": "mesos"})
    az1 = req(stack, "PUT", "/clusters/secazure/config", 200, s,
              data={"location": "Central US", "masters": "3", "ssh_password": SSH_PASSWORD,
                    "ssh_user": "dexter", "master_type": "Basic_A2"})
    req(stack, "POST", "/clusters/secazure/groups", 201, s,
        data={"name": "analytics", "role": "role1", "attributes": '{"purpose":"analytics"}',
              "vars": '{"y_factor":"43"}', "cpus": "12", "ram": "16", "disk_size": "50",
              "instance_type": "Standard_D11"})
    req(stack, "PUT", "/clusters/secazure/deployment", 202, s,
        data={"command": "deploy", "credentials": azure_credentials(AZURE_CLIENT_SECRET)})
    az2 = req(stack, "PUT", "/clusters/secazure/config", 200, s,
              json={"location": "centralus", "masters": 3, "ssh_password": SSH_PASSWORD_2,
                    "ssh_user": "dexter", "master_type": "Basic_A2"})

    # Rejected secrets are not echoed (400 answers are searched by req()).
    req(stack, "PUT", "/clusters/secazure/config", 400, s,
        data={"location": "Central US", "masters": "3", "ssh_password": BAD_SSH_PASSWORD,
              "ssh_user": "dexter"})
    req(stack, "PUT", "/clusters/secdcos/config", 400, s,
        data={"masters": "1", "region": "us-east-1", "sshkey": "other",
              "sshkeydata": b64url(s.pem2)[:-40] + "!!notbase64!!"})
    err = req(stack, "PUT", "/clusters/secaws/deployment", 409, s,      # in progress
              data={"aws_access_key_id": AWS_KEY_ID, "aws_secret_access_key": AWS_SECRET,
                    "command": "deploy"})
    assert err.get("code") == "CONFLICT"
    req(stack, "POST", "/clusters", 201, s, data={"name": "secbad", "provider": "aws", "type": "mesos"})
    req(stack, "PUT", "/clusters/secbad/deployment", 400, s,
        data={"aws_access_key_id": AWS_KEY_ID, "aws_secret_access_key": BAD_AWS_SECRET,
              "command": "deploy"})
    return {"aws": (cfg1, cfg_same, cfg2), "azure": (az1, az2)}


def check_secret_fields(configs):
    cfg1, cfg_same, cfg2 = configs["aws"]
    az1, az2 = configs["azure"]
    for cfg, field in ((cfg1, "sshkeydata"), (cfg_same, "sshkeydata"), (cfg2, "sshkeydata"),
                       (az1, "ssh_password"), (az2, "ssh_password")):
        value = cfg.get(field)
        assert isinstance(value, dict) and value.get("set") is True, "%s: %r" % (field, cfg)
        assert FINGERPRINT.match(value.get("fingerprint", "")), "%s fingerprint: %r" % (field, value)
        assert set(value) == {"set", "fingerprint"}, "%s carries more than set/fingerprint: %r" % (field, value)
    assert cfg1["sshkeydata"]["fingerprint"] == cfg_same["sshkeydata"]["fingerprint"], \
        "the same key sent in another base64 form got another fingerprint"
    assert cfg1["sshkeydata"]["fingerprint"] != cfg2["sshkeydata"]["fingerprint"]
    assert az1["ssh_password"]["fingerprint"] != az2["ssh_password"]["fingerprint"], \
        "changing the password did not change its fingerprint"


# ------------------------------------------------------------------ dumps --

def dump_redis(stack):
    """[(key, bytes)] of every value of every key, plus DUMP bytes."""
    import redis
    rc = redis.Redis(host="127.0.0.1", port=stack.redis_port, decode_responses=False)
    out = []
    keys = list(rc.scan_iter(match="*", count=1000))
    assert keys, "Redis holds no key at all after the scenario"
    for key in keys:
        kind = rc.type(key).decode()
        parts = [key]
        if kind == "string":
            parts.append(rc.get(key) or b"")
        elif kind == "hash":
            for f, v in rc.hgetall(key).items():
                parts += [f, v]
        elif kind == "list":
            parts += rc.lrange(key, 0, -1)
        elif kind == "set":
            parts += list(rc.smembers(key))
        elif kind == "zset":
            parts += [m for m, _ in rc.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            for entry_id, fields in rc.xrange(key, "-", "+"):
                parts.append(entry_id)
                for f, v in fields.items():
                    parts += [f, v]
        elif kind != "none":
            raise AssertionError("key %r has a type this test cannot read: %s" % (key, kind))
        dumped = rc.dump(key)
        out.append((key.decode("utf-8", "replace"), b"\x00".join(parts)))
        if dumped:
            out.append((key.decode("utf-8", "replace") + " (DUMP)", dumped))
    rc.close()
    return keys, out


def read_aof(stack):
    files = [p for p in glob.glob(os.path.join(stack.dir, "redis", "**", "*"), recursive=True) if os.path.isfile(p)]
    aof = [p for p in files if ".aof" in os.path.basename(p)]
    assert aof, "no AOF file under %s: %r" % (os.path.join(stack.dir, "redis"), files)
    data = []
    for p in files:
        with open(p, "rb") as f:
            data.append((p, f.read()))
    return data


def every_get(stack, secrets):
    """GET every resource of every cluster; each answer is searched."""
    listing = req(stack, "GET", "/clusters", 200, secrets)
    for c in listing["clusters"]:
        base = "/clusters/" + c["name"]
        req(stack, "GET", base, 200, secrets)
        r = requests.get(stack.url(base + "/config"), timeout=HTTP_TIMEOUT, headers=stack.auth_headers())
        assert r.status_code in (200, 404)
        assert_clean(secrets, "GET %s/config" % base, r.content)
        groups = req(stack, "GET", base + "/groups", 200, secrets)
        for g in groups["groups"]:
            req(stack, "GET", "%s/groups/%s" % (base, g["name"]), 200, secrets)
        dep = req(stack, "GET", base + "/deployment", 200, secrets)
        for field in ("aws_secret_access_key", "aws_session_token", "credentials", "clientSecret",
                      "ssh_password", "sshkeydata"):
            assert field not in dep, "deployment GET shows %s: %r" % (field, dep)
        req(stack, "GET", base + "/deployment/events?count=1000", 200, secrets)
        r = requests.get(stack.url(base + "/deployment/vpn"), timeout=HTTP_TIMEOUT, headers=stack.auth_headers())
        assert_clean(secrets, "GET %s/deployment/vpn" % base, r.content)
    return [c["name"] for c in listing["clusters"]]


# ------------------------------------------------------------------ tests --

def test_needles_find_what_they_should():
    """The search itself can fail: each form is found where it is planted."""
    s = Secrets()
    blob = b"prefix:" + base64.b64encode(b"xy{\"clientSecret\": \"" + AZURE_CLIENT_SECRET.encode() + b"\"}")
    assert ("azure_client_secret", "base64") in s.find(blob)
    assert s.find(b"..." + base64.urlsafe_b64encode(b"z" + AWS_SECRET.encode()) + b"...")
    assert s.find(s.pem.splitlines()[5])
    assert s.find("log line ssh_password=" + urllib.parse.quote_plus(SSH_PASSWORD))
    assert not s.find(b"dx1:" + base64.b64encode(os.urandom(200)))


def test_secrets_never_stored_logged_or_returned(stack):
    s = Secrets()
    configs = scenario(stack, s)
    check_secret_fields(configs)
    names = every_get(stack, s)
    assert {"secaws", "secdcos", "secazure"} <= set(names)

    # The secrets did reach Redis in some (sealed) form: a key exists per cluster.
    keys, values = dump_redis(stack)
    for name in ("secaws", "secdcos", "secazure"):
        assert any(("{%s}" % name).encode() in k for k in keys), "no Redis key for %s: %r" % (name, keys[:20])
    for where, data in values:
        assert_clean(s, "Redis key %s" % where, data)
    for path, data in read_aof(stack):
        assert_clean(s, "file %s" % path, data)
    for proc in stack.procs:
        text = proc.log()
        for n, line in enumerate(text.splitlines(), 1):
            hits = s.find(line)
            assert not hits, "%s log line %d leaks %r:\n%s" % (proc.name, n, hits, line[:400])

    # Restart the scheduler (it reads the sealed secrets back under the same
    # master key): still nothing in any log, fingerprints unchanged.
    stack.scheduler.kill()
    stack.start_scheduler()
    stack.wait_ready(30)
    again = req(stack, "GET", "/clusters/secazure/config", 200, s)
    assert again["ssh_password"] == configs["azure"][1]["ssh_password"]
    every_get(stack, s)
    assert_clean(s, "logs after the restart", stack.logs())
    for path, data in read_aof(stack):
        assert_clean(s, "file %s" % path, data)
