"""Bad inputs, one row each: the status, error code and `field` docs/api.md
calls for, and that a refused request leaves nothing behind (the clusters,
configs, groups and deployments visible through the API are unchanged, and no
Redis key of a refused cluster name exists).

Every row runs against fresh clusters (an aws and an azure one, each with a
config and a group "g1"), so a request wrongly accepted cannot make later
rows fail for the wrong reason.
"""
import base64
import json
import subprocess
import uuid

import pytest
import requests

CODES = {400: "INVALID", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 409: "CONFLICT",
         413: "TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE"}
ANY = object()   # field not checked: the contract does not say which one


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def openssl(*args, stdin=None):
    return subprocess.run(["openssl"] + list(args), input=stdin, check=True,
                          capture_output=True, timeout=60).stdout


KEYS = {}


def keys():
    """PEM texts, made once: a good key, a PKCS#8 encrypted one and a
    traditional (Proc-Type: 4,ENCRYPTED) encrypted one."""
    if not KEYS:
        good = openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
        KEYS["good"] = good.decode()
        KEYS["pkcs8enc"] = openssl("genpkey", "-algorithm", "RSA", "-pkeyopt",
                                   "rsa_keygen_bits:2048", "-aes256", "-pass", "pass:x").decode()
        KEYS["tradenc"] = openssl("rsa", "-aes256", "-passout", "pass:x", "-traditional",
                                  stdin=good).decode()
        assert "ENCRYPTED" in KEYS["pkcs8enc"] and "Proc-Type: 4,ENCRYPTED" in KEYS["tradenc"]
    return KEYS


def aws_cfg(**kw):
    c = {"master_type": "m3.large", "masters": "3", "region": "us-west-2",
         "sshkey": "reference", "sshkeydata": b64(keys()["good"])}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


def az_cfg(**kw):
    c = {"location": "Central US", "masters": "3", "ssh_user": "dexter",
         "ssh_password": "Secr3t.Passw0rd", "master_type": "Basic_A2"}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


def grp(**kw):
    g = {"name": "g2", "role": "role1", "attributes": '{"foo":"bar"}', "vars": '{"foo":"bar"}',
         "instance_type": "r3.xlarge", "cpus": "10", "ram": "64", "disk_size": "50"}
    g.update(kw)
    return {k: v for k, v in g.items() if v is not None}


def azgrp(**kw):
    return grp(**dict({"instance_type": "Standard_D11"}, **kw))


def creds(**kw):
    c = {"clientId": str(uuid.uuid4()), "clientSecret": "secret-value",
         "tenantId": str(uuid.uuid4()), "subscriptionId": str(uuid.uuid4())}
    c.update(kw)
    return b64(json.dumps({k: v for k, v in c.items() if v is not None}))


def aws_dep(**kw):
    d = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
         "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "command": "deploy"}
    d.update(kw)
    return {k: v for k, v in d.items() if v is not None}


def az_dep(**kw):
    d = {"credentials": creds(), "command": "deploy"}
    d.update(kw)
    return {k: v for k, v in d.items() if v is not None}


def disks(n, **extra):
    return json.dumps({"disks": [dict({"size": 10}, **extra) for _ in range(n)]})


C = "/clusters"
AWS_CFG, AZ_CFG = "/clusters/{aws}/config", "/clusters/{az}/config"
AWS_GRP, AZ_GRP = "/clusters/{aws}/groups", "/clusters/{az}/groups"
AWS_DEP, AZ_DEP = "/clusters/{aws}/deployment", "/clusters/{az}/deployment"
FORM = "application/x-www-form-urlencoded"
NEWC = {"provider": "aws", "type": "mesos"}

# (id, method, path, body, content type, status, field). A body is a dict (a
# form), a list of pairs (a form with repeats), ("json", value), a callable
# returning one of those (for bodies needing generated keys), or bytes.
CASES = [
    # -- cluster create: names, provider, type, unknown and repeated fields
    ("name-uppercase", "POST", C, dict(NEWC, name="Abc"), None, 400, "name"),
    ("name-too-long", "POST", C, dict(NEWC, name="a" * 17), None, 400, "name"),
    ("name-starts-digit", "POST", C, dict(NEWC, name="1abc"), None, 400, "name"),
    ("name-empty", "POST", C, dict(NEWC, name=""), None, 400, "name"),
    ("name-dash", "POST", C, dict(NEWC, name="ab-c"), None, 400, "name"),
    ("name-space", "POST", C, dict(NEWC, name="ab c"), None, 400, "name"),
    ("name-unicode", "POST", C, dict(NEWC, name="caf\u00e9"), None, 400, "name"),
    ("name-json-number", "POST", C, ("json", dict(NEWC, name=5)), None, 400, "name"),
    ("provider-unknown", "POST", C, {"name": "okname", "provider": "gcp", "type": "mesos"},
     None, 400, "provider"),
    ("provider-case", "POST", C, {"name": "okname", "provider": "AWS", "type": "mesos"},
     None, 400, "provider"),
    ("type-unknown", "POST", C, {"name": "okname", "provider": "aws", "type": "k8s"},
     None, 400, "type"),
    ("cluster-unknown-field", "POST", C, dict(NEWC, name="okname", master="3"), None, 400, "master"),
    ("cluster-duplicate-field", "POST", C,
     [("name", "okname"), ("name", "other"), ("provider", "aws"), ("type", "mesos")],
     None, 400, "name"),
    # -- aws config
    ("masters-even", "PUT", AWS_CFG, aws_cfg(masters="2"), None, 400, "masters"),
    ("masters-zero", "PUT", AWS_CFG, aws_cfg(masters="0"), None, 400, "masters"),
    ("masters-eleven", "PUT", AWS_CFG, aws_cfg(masters="11"), None, 400, "masters"),
    ("masters-word", "PUT", AWS_CFG, aws_cfg(masters="three"), None, 400, "masters"),
    ("masters-float", "PUT", AWS_CFG, aws_cfg(masters="3.0"), None, 400, "masters"),
    ("masters-json-float", "PUT", AWS_CFG, lambda: ("json", dict(aws_cfg(), masters=3.5)),
     None, 400, "masters"),
    ("masters-negative", "PUT", AWS_CFG, aws_cfg(masters="-3"), None, 400, "masters"),
    ("region-unknown", "PUT", AWS_CFG, aws_cfg(region="us-west-9"), None, 400, "region"),
    ("region-azure-name", "PUT", AWS_CFG, aws_cfg(region="centralus"), None, 400, "region"),
    ("master-type-unknown", "PUT", AWS_CFG, aws_cfg(master_type="m9.huge"), None, 400, "master_type"),
    ("master-type-azure-on-aws", "PUT", AWS_CFG, aws_cfg(master_type="Basic_A2"),
     None, 400, "master_type"),
    ("sshkey-too-long", "PUT", AWS_CFG, aws_cfg(sshkey="k" * 256), None, 400, "sshkey"),
    ("sshkey-control-char", "PUT", AWS_CFG, aws_cfg(sshkey="key\x01name"), None, 400, "sshkey"),
    ("sshkeydata-not-base64", "PUT", AWS_CFG, aws_cfg(sshkeydata="not*base64!"), None, 400, "sshkeydata"),
    ("sshkeydata-not-pem", "PUT", AWS_CFG, aws_cfg(sshkeydata=b64("hello, world\n")),
     None, 400, "sshkeydata"),
    ("sshkeydata-pkcs8-encrypted", "PUT", AWS_CFG,
     lambda: aws_cfg(sshkeydata=b64(keys()["pkcs8enc"])), None, 400, "sshkeydata"),
    ("sshkeydata-traditional-encrypted", "PUT", AWS_CFG,
     lambda: aws_cfg(sshkeydata=b64(keys()["tradenc"])), None, 400, "sshkeydata"),
    ("aws-image-short", "PUT", AWS_CFG, aws_cfg(image="ami-123"), None, 400, "image"),
    ("aws-image-not-hex", "PUT", AWS_CFG, aws_cfg(image="ami-0123456z"), None, 400, "image"),
    ("aws-image-azure-form", "PUT", AWS_CFG,
     aws_cfg(image="Canonical:UbuntuServer:16.04-LTS:latest"), None, 400, "image"),
    ("aws-config-azure-param", "PUT", AWS_CFG, aws_cfg(location="centralus"), None, 400, "location"),
    ("aws-config-unknown-field", "PUT", AWS_CFG, aws_cfg(master="3"), None, 400, "master"),
    ("aws-config-duplicate-field", "PUT", AWS_CFG,
     lambda: list(aws_cfg().items()) + [("masters", "5")], None, 400, "masters"),
    ("aws-config-missing-sshkey", "PUT", AWS_CFG, aws_cfg(sshkey=None), None, 400, "sshkey"),
    # -- azure config
    ("location-unknown", "PUT", AZ_CFG, az_cfg(location="Mars Central"), None, 400, "location"),
    ("location-aws-region", "PUT", AZ_CFG, az_cfg(location="us-west-2"), None, 400, "location"),
    ("ssh-user-root", "PUT", AZ_CFG, az_cfg(ssh_user="root"), None, 400, "ssh_user"),
    ("ssh-user-admin", "PUT", AZ_CFG, az_cfg(ssh_user="admin"), None, 400, "ssh_user"),
    ("ssh-user-space", "PUT", AZ_CFG, az_cfg(ssh_user="bad user"), None, 400, "ssh_user"),
    ("ssh-user-upper", "PUT", AZ_CFG, az_cfg(ssh_user="Dexter"), None, 400, "ssh_user"),
    ("ssh-user-too-long", "PUT", AZ_CFG, az_cfg(ssh_user="u" * 33), None, 400, "ssh_user"),
    ("ssh-password-weak", "PUT", AZ_CFG, az_cfg(ssh_password="password"), None, 400, "ssh_password"),
    ("ssh-password-short", "PUT", AZ_CFG, az_cfg(ssh_password="Ab1.x"), None, 400, "ssh_password"),
    ("ssh-password-long", "PUT", AZ_CFG, az_cfg(ssh_password="Ab1." * 19), None, 400, "ssh_password"),
    # curl -d "ssh_password=Dexter+2024" sends a '+', which form encoding reads as a space
    ("ssh-password-plus-as-space", "PUT", AZ_CFG,
     b"location=Central US&masters=3&ssh_user=dexter&ssh_password=Dexter+2024", FORM, 400,
     "ssh_password"),
    ("azure-image-three-parts", "PUT", AZ_CFG, az_cfg(image="Canonical:UbuntuServer:16.04-LTS"),
     None, 400, "image"),
    ("azure-image-ami", "PUT", AZ_CFG, az_cfg(image="ami-0123456789abcdef0"), None, 400, "image"),
    ("azure-master-type-aws", "PUT", AZ_CFG, az_cfg(master_type="m3.large"), None, 400, "master_type"),
    ("azure-config-aws-param", "PUT", AZ_CFG, az_cfg(region="us-west-2"), None, 400, "region"),
    ("azure-config-sshkeydata", "PUT", AZ_CFG, lambda: az_cfg(sshkeydata=b64(keys()["good"])),
     None, 400, "sshkeydata"),
    ("azure-config-missing-password", "PUT", AZ_CFG, az_cfg(ssh_password=None),
     None, 400, "ssh_password"),
    # -- groups
    ("group-name-upper", "POST", AWS_GRP, grp(name="G2"), None, 400, "name"),
    ("group-name-long", "POST", AWS_GRP, grp(name="g" * 17), None, 400, "name"),
    ("group-name-masters", "POST", AWS_GRP, grp(name="masters"), None, 400, "name"),
    ("group-name-master", "POST", AZ_GRP, azgrp(name="master"), None, 400, "name"),
    ("group-name-access", "POST", AWS_GRP, grp(name="access"), None, 400, "name"),
    ("group-rename-masters", "PUT", AWS_GRP + "/g1", grp(name="masters"), None, 400, "name"),
    ("role-space", "POST", AWS_GRP, grp(role="bad role"), None, 400, "role"),
    ("role-dot", "POST", AWS_GRP, grp(role="."), None, 400, "role"),
    ("role-dotdot", "POST", AWS_GRP, grp(role=".."), None, 400, "role"),
    ("role-too-long", "POST", AWS_GRP, grp(role="r" * 65), None, 400, "role"),
    ("role-slash", "POST", AWS_GRP, grp(role="a/b"), None, 400, "role"),
    ("attributes-not-json", "POST", AWS_GRP, grp(attributes="{foo:bar}"), None, 400, "attributes"),
    ("attributes-array", "POST", AWS_GRP, grp(attributes="[1,2]"), None, 400, "attributes"),
    ("attributes-nested", "POST", AWS_GRP, grp(attributes='{"a":{"b":"c"}}'), None, 400, "attributes"),
    ("attributes-bool", "POST", AWS_GRP, grp(attributes='{"a":true}'), None, 400, "attributes"),
    ("attributes-too-big", "POST", AWS_GRP,
     grp(attributes=json.dumps({"k%d" % i: "v" * 100 for i in range(200)})), None, 400, "attributes"),
    ("vars-array", "POST", AWS_GRP, grp(vars="[1]"), None, 400, "vars"),
    ("vars-not-json", "POST", AWS_GRP, grp(vars="x_factor=42"), None, 400, "vars"),
    ("vars-json-string", "POST", AWS_GRP, ("json", dict(grp(), vars='"str"')), None, 400, "vars"),
    ("vars-too-big", "POST", AWS_GRP, grp(vars=json.dumps({"v": "x" * 70000})), None, 400, "vars"),
    ("instance-type-unknown", "POST", AWS_GRP, grp(instance_type="x9.mega"), None, 400, "instance_type"),
    ("instance-type-azure-on-aws", "POST", AWS_GRP, grp(instance_type="Standard_D11"),
     None, 400, "instance_type"),
    ("instance-type-aws-on-azure", "POST", AZ_GRP, azgrp(instance_type="r3.xlarge"),
     None, 400, "instance_type"),
    ("instance-type-missing-azure", "POST", AZ_GRP, azgrp(instance_type=None),
     None, 400, "instance_type"),
    ("cpus-zero", "POST", AWS_GRP, grp(cpus="0"), None, 400, "cpus"),
    ("cpus-negative", "POST", AWS_GRP, grp(cpus="-4"), None, 400, "cpus"),
    ("cpus-huge", "POST", AWS_GRP, grp(cpus="4097"), None, 400, "cpus"),
    ("cpus-overflow", "POST", AWS_GRP, grp(cpus="99999999999999999999999"), None, 400, "cpus"),
    ("ram-zero", "POST", AWS_GRP, grp(ram="0"), None, 400, "ram"),
    ("ram-huge", "POST", AWS_GRP, grp(ram="65537"), None, 400, "ram"),
    ("ram-float", "POST", AWS_GRP, grp(ram="1.5"), None, 400, "ram"),
    ("disk-size-small", "POST", AWS_GRP, grp(disk_size="7"), None, 400, "disk_size"),
    ("disk-size-negative", "POST", AWS_GRP, grp(disk_size="-50"), None, 400, "disk_size"),
    ("disk-size-huge", "POST", AWS_GRP, grp(disk_size="16385"), None, 400, "disk_size"),
    # m3.large has 2 vCPUs: 4096 cpus is 2048 hosts, over 1000. The contract
    # does not name the field; the one at fault is one of these.
    ("hosts-over-1000", "POST", AWS_GRP, grp(instance_type="m3.large", cpus="4096", ram="8"),
     None, 400, ("hosts", "cpus", "ram", "instance_type")),
    ("customhwconf-malformed", "POST", AWS_GRP, grp(customhwconf='{"disks":['), None, 400, "customhwconf"),
    ("customhwconf-not-object", "POST", AWS_GRP, grp(customhwconf='[{"size":10}]'), None, 400, "customhwconf"),
    ("customhwconf-bad-device", "POST", AWS_GRP, grp(customhwconf=disks(1, device="sda")),
     None, 400, "customhwconf"),
    ("customhwconf-device-xvda", "POST", AWS_GRP, grp(customhwconf=disks(1, device="xvda")),
     None, 400, "customhwconf"),
    ("customhwconf-dup-device", "POST", AWS_GRP,
     grp(customhwconf='{"disks":[{"size":1,"device":"xvdh"},{"size":2,"device":"xvdh"}]}'),
     None, 400, "customhwconf"),
    ("customhwconf-17-disks", "POST", AWS_GRP, grp(customhwconf=disks(17)), None, 400, "customhwconf"),
    ("customhwconf-size-zero", "POST", AWS_GRP, grp(customhwconf=disks(1, size=0)),
     None, 400, "customhwconf"),
    ("customhwconf-size-huge", "POST", AWS_GRP, grp(customhwconf=disks(1, size=16385)),
     None, 400, "customhwconf"),
    ("customhwconf-bad-type", "POST", AWS_GRP, grp(customhwconf=disks(1, type="Premium_LRS")),
     None, 400, "customhwconf"),
    ("customhwconf-ebs-on-azure", "POST", AZ_GRP,
     azgrp(customhwconf='{"ebs_block_device":[{"device_name":"/dev/xvdh","volume_size":100}]}'),
     None, 400, "customhwconf"),
    ("customhwconf-unknown-key", "POST", AWS_GRP, grp(customhwconf='{"volumes":[]}'),
     None, 400, "customhwconf"),
    ("group-unknown-field", "POST", AWS_GRP, grp(instances="3"), None, 400, "instances"),
    ("group-duplicate-field", "POST", AWS_GRP, lambda: list(grp().items()) + [("cpus", "2")],
     None, 400, "cpus"),
    ("group-missing-cpus", "POST", AWS_GRP, grp(cpus=None), None, 400, "cpus"),
    ("group-put-bad-ram", "PUT", AWS_GRP + "/g1", grp(name="g1", ram="0"), None, 400, "ram"),
    ("group-put-bad-name", "PUT", AWS_GRP + "/g1", grp(name="G1"), None, 400, "name"),
    # -- deployment
    ("parallelism-zero", "PUT", AWS_DEP, aws_dep(parallelism="0"), None, 400, "parallelism"),
    ("parallelism-101", "PUT", AWS_DEP, aws_dep(parallelism="101"), None, 400, "parallelism"),
    ("parallelism-abc", "PUT", AWS_DEP, aws_dep(parallelism="abc"), None, 400, "parallelism"),
    ("command-unknown", "PUT", AWS_DEP, aws_dep(command="start"), None, 400, "command"),
    ("command-missing", "PUT", AWS_DEP, aws_dep(command=None), None, 400, "command"),
    ("aws-key-id-lowercase", "PUT", AWS_DEP, aws_dep(aws_access_key_id="akiaiosfodnn7example"),
     None, 400, "aws_access_key_id"),
    ("aws-key-id-short", "PUT", AWS_DEP, aws_dep(aws_access_key_id="AKIA123"),
     None, 400, "aws_access_key_id"),
    ("aws-secret-missing", "PUT", AWS_DEP, aws_dep(aws_secret_access_key=None),
     None, 400, "aws_secret_access_key"),
    ("aws-secret-bad-chars", "PUT", AWS_DEP, aws_dep(aws_secret_access_key="abc$def%ghi^jkl*mno"),
     None, 400, "aws_secret_access_key"),
    ("aws-session-token-long", "PUT", AWS_DEP, aws_dep(aws_session_token="A" * 4097),
     None, 400, "aws_session_token"),
    ("aws-deploy-credentials", "PUT", AWS_DEP, lambda: aws_dep(credentials=creds()),
     None, 400, "credentials"),
    ("azure-credentials-not-base64", "PUT", AZ_DEP, az_dep(credentials="not*base64!"),
     None, 400, "credentials"),
    ("azure-credentials-not-json", "PUT", AZ_DEP, az_dep(credentials=b64("clientId=x")),
     None, 400, "credentials"),
    ("azure-credentials-array", "PUT", AZ_DEP, az_dep(credentials=b64("[1,2]")),
     None, 400, "credentials"),
    ("azure-credentials-no-client-id", "PUT", AZ_DEP,
     lambda: az_dep(credentials=creds(clientId=None)), None, 400, "credentials"),
    ("azure-credentials-bad-endpoint", "PUT", AZ_DEP,
     lambda: az_dep(credentials=creds(resourceManagerEndpointUrl="ftp://x")), None, 400, "credentials"),
    ("azure-credentials-missing", "PUT", AZ_DEP, az_dep(credentials=None), None, 400, "credentials"),
    ("azure-deploy-aws-key", "PUT", AZ_DEP, az_dep(aws_access_key_id="AKIAIOSFODNN7EXAMPLE"),
     None, 400, "aws_access_key_id"),
    # -- the body and the query string
    ("body-over-1mib", "POST", C, b"name=" + b"a" * (1024 * 1024 + 16) + b"&provider=aws&type=mesos",
     FORM, 413, None),
    ("json-over-1mib", "POST", AWS_GRP,
     json.dumps(dict(grp(), vars=json.dumps({"v": "x" * (1024 * 1024)}))).encode(),
     "application/json", 413, None),
    ("content-type-text", "POST", C, b"name=okname&provider=aws&type=mesos", "text/plain", 415, None),
    ("content-type-multipart", "POST", C, b"--x\r\n\r\n--x--\r\n", "multipart/form-data; boundary=x",
     415, None),
    ("json-malformed", "POST", C, b'{"name": "okname", "provider": "aws",', "application/json", 400, None),
    ("json-array", "POST", C, b'[{"name":"okname","provider":"aws","type":"mesos"}]',
     "application/json", 400, None),
    ("json-string", "POST", C, b'"name=okname"', "application/json", 400, None),
    ("json-duplicate-key", "POST", C, b'{"name":"okname","name":"other","provider":"aws","type":"mesos"}',
     "application/json", 400, ("name", None)),  # a JSON parser may refuse it before fields exist
    ("chunked-over-1mib", "POST", C,
     ("chunked", b"name=" + b"a" * (2 * 1024 * 1024) + b"&provider=aws&type=mesos"), FORM, 413, None),
    ("json-deep-nesting", "POST", C, b'{"name":' + b"[" * 100000 + b"]" * 100000 + b"}",
     "application/json", 400, ANY),
    ("vars-deep-nesting", "POST", AWS_GRP, grp(vars='{"a":' + "[" * 50000 + "]" * 50000 + "}"),
     None, 400, "vars"),
    ("json-not-utf8", "POST", C, b'{"name":"ok\xff\xfe","provider":"aws","type":"mesos"}',
     "application/json", 400, ANY),
    ("form-not-utf8", "POST", C, b"name=ok%FF%FEname&provider=aws&type=mesos", FORM, 400, "name"),
    ("form-nul-in-value", "PUT", AWS_CFG, lambda: dict(aws_cfg(), sshkey="ab\x00cd"), None, 400, "sshkey"),
    ("json-masters-bool", "PUT", AWS_CFG, lambda: ("json", dict(aws_cfg(), masters=True)),
     None, 400, "masters"),
    ("json-cpus-overflow", "POST", AWS_GRP, b'{"name":"g2","role":"r","attributes":{},"vars":{},'
     b'"cpus":1e400,"ram":8,"disk_size":50}', "application/json", 400,
     ("cpus", None)),  # RFC 8259 lets a parser refuse numbers out of its range
    ("json-cpus-float", "POST", AWS_GRP, ("json", dict(grp(), cpus=10.5)), None, 400, "cpus"),
    ("json-attributes-null", "POST", AWS_GRP, ("json", dict(grp(), attributes=None)),
     None, 400, "attributes"),
    ("events-after-garbage", "GET", "/clusters/{aws}/deployment/events?after=garbage", None, None, 400, ANY),
    ("events-count-1001", "GET", "/clusters/{aws}/deployment/events?count=1001", None, None, 400, ANY),
    ("delete-extra-query", "DELETE", "/clusters/{aws}?force=true&x=1", None, None, 400, ANY),
    ("bad-percent-escape", "POST", C, b"name=ok%zzname&provider=aws&type=mesos", FORM, 400, ANY),
    ("truncated-percent-escape", "POST", C, b"provider=aws&type=mesos&name=okname%4", FORM, 400, ANY),
    ("query-on-get", "GET", C + "?name=okname", None, None, 400, ANY),
    ("force-not-bool", "DELETE", "/clusters/{aws}?force=yes", None, None, 400, ANY),
    ("events-count-zero", "GET", "/clusters/{aws}/deployment/events?count=0", None, None, 400, ANY),
]


def call(stack, method, path, **kw):
    kw.setdefault("timeout", 20)
    return requests.request(method, stack.url(path), allow_redirects=False, **kw)


def snapshot(stack, names):
    """What the API shows of the clusters (list and each named cluster)."""
    out = {"list": call(stack, "GET", "/clusters").json()}
    for n in names:
        out[n] = {p: (r.status_code, r.json()) for p, r in
                  ((p, call(stack, "GET", "/clusters/%s%s" % (n, p)))
                   for p in ("", "/config", "/groups", "/deployment"))}
    return out


def redis_keys(stack, name):
    rc = stack.redis_client()
    try:
        return sorted(rc.scan_iter("dexter:{%s}*" % name, count=1000)), rc.zscore("dexter:clusters", name)
    finally:
        rc.close()


def make_targets(stack):
    """A fresh aws and azure cluster, each with a config and a group g1."""
    aws, az = "b" + uuid.uuid4().hex[:10], "z" + uuid.uuid4().hex[:10]
    for name, prov, cfg, g in ((aws, "aws", aws_cfg(), grp(name="g1")),
                               (az, "azure", az_cfg(), azgrp(name="g1"))):
        for m, p, body, want in (("POST", "/clusters", {"name": name, "provider": prov, "type": "mesos"}, 201),
                                 ("PUT", "/clusters/%s/config" % name, cfg, 200),
                                 ("POST", "/clusters/%s/groups" % name, g, 201)):
            r = call(stack, m, p, data=body)
            assert r.status_code == want, "setup %s %s: %s %s" % (m, p, r.status_code, r.text[:300])
    return aws, az


def send(stack, method, path, body, ctype):
    kw = {}
    if callable(body):
        body = body()
    if isinstance(body, tuple) and body[0] == "json":
        kw["json"] = body[1]
    elif isinstance(body, tuple) and body[0] == "chunked":
        data = body[1]
        kw["data"] = (data[i:i + 65536] for i in range(0, len(data), 65536))
    elif isinstance(body, (dict, list)):
        kw["data"] = body
    elif isinstance(body, bytes):
        kw["data"] = body
    if ctype:
        kw["headers"] = {"Content-Type": ctype}
    try:
        return call(stack, method, path, **kw)
    except requests.ConnectionError as e:
        raise AssertionError("%s %s: the api dropped the connection instead of answering: %s"
                             % (method, path, e))


def test_table_size():
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES), "duplicate case ids"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(shared_stack, case):
    cid, method, path, body, ctype, status, field = case
    aws, az = make_targets(shared_stack)
    path = path.format(aws=aws, az=az)
    before = snapshot(shared_stack, (aws, az))

    r = send(shared_stack, method, path, body, ctype)
    assert r.status_code == status, "%s %s: expected %d, got %d %s" % (
        method, path, status, r.status_code, r.text[:800])
    assert r.headers.get("Content-Type", "").split(";")[0] == "application/json", r.headers
    b = r.json()
    assert b.get("code") == CODES[status], b
    assert isinstance(b.get("message"), str) and b["message"].strip(), b
    if isinstance(field, tuple):
        assert b.get("field") in field, "expected field in %r: %s" % (field, b)
    elif field is not ANY:
        assert b.get("field") == field, "expected field %r: %s" % (field, b)
    if "errors" in b:
        assert isinstance(b["errors"], list) and b["errors"], b
        assert all(set(e) >= {"field", "message"} for e in b["errors"]), b
        assert b["errors"][0]["field"] == b.get("field"), b
    # Secrets sent in a refused request are not echoed back.
    raw = r.text
    for secret in ("Secr3t.Passw0rd", "wJalrXUtnFEMI", "PRIVATE KEY"):
        assert secret not in raw, "error answer echoes a secret: %s" % raw[:300]

    # Nothing left behind.
    assert snapshot(shared_stack, (aws, az)) == before, "%s changed state" % cid
    if path == C and method == "POST":
        for n in ("okname", "other", "Abc", "1abc", "a" * 17):
            assert redis_keys(shared_stack, n) == ([], None), "%s: keys of %s left" % (cid, n)
    for n in (aws, az):
        call(shared_stack, "DELETE", "/clusters/%s?force=true" % n)


@pytest.mark.parametrize("kind", ["cluster", "aws-config", "azure-config", "aws-group",
                                  "azure-group", "aws-deploy", "azure-deploy"])
def test_all_required_missing_listed_at_once(shared_stack, kind):
    """An empty body names every missing required field in `errors`, at once."""
    aws, az = make_targets(shared_stack)
    path, want = {
        "cluster": (C, {"name", "provider", "type"}),
        "aws-config": (AWS_CFG, {"masters", "region", "sshkey", "sshkeydata"}),
        "azure-config": (AZ_CFG, {"masters", "location", "ssh_user", "ssh_password"}),
        "aws-group": (AWS_GRP, {"name", "role", "attributes", "vars", "cpus", "ram", "disk_size"}),
        "azure-group": (AZ_GRP, {"name", "role", "attributes", "vars", "instance_type", "cpus",
                                 "ram", "disk_size"}),
        "aws-deploy": (AWS_DEP, {"command", "aws_access_key_id", "aws_secret_access_key"}),
        "azure-deploy": (AZ_DEP, {"command", "credentials"}),
    }[kind]
    path = path.format(aws=aws, az=az)
    method = "POST" if kind in ("cluster", "aws-group", "azure-group") else "PUT"
    before = snapshot(shared_stack, (aws, az))
    for body, ctype in ((b"", FORM), (b"{}", "application/json")):
        r = call(shared_stack, method, path, data=body, headers={"Content-Type": ctype})
        assert r.status_code == 400, (kind, ctype, r.status_code, r.text[:500])
        b = r.json()
        assert b["code"] == "INVALID", b
        got = [e["field"] for e in b.get("errors", [])]
        assert set(got) == want, "%s (%s): errors name %s, want %s" % (kind, ctype, got, sorted(want))
        assert len(got) == len(set(got)), got
        assert all(isinstance(e["message"], str) and e["message"] for e in b["errors"]), b
        assert b["field"] == got[0] and b["message"], b
    assert snapshot(shared_stack, (aws, az)) == before
    for n in (aws, az):
        call(shared_stack, "DELETE", "/clusters/%s?force=true" % n)


def test_several_bad_fields_all_reported(shared_stack):
    """Several faults at once are all listed, first one in field/message."""
    aws, az = make_targets(shared_stack)
    r = call(shared_stack, "POST", "/clusters/%s/groups" % aws,
             data=grp(cpus="0", ram="-1", role="bad role", attributes="[]"))
    assert r.status_code == 400, r.text
    b = r.json()
    assert {e["field"] for e in b["errors"]} == {"cpus", "ram", "role", "attributes"}, b
    assert b["field"] == b["errors"][0]["field"], b
    for n in (aws, az):
        call(shared_stack, "DELETE", "/clusters/%s?force=true" % n)
