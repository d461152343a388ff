#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets of user input:
tests/fuzz/body/ (fuzz_body.c), tests/fuzz/route/ (fuzz_route.c) and
tests/fuzz/spec/ (fuzz_spec.c).

Seeds are what the reference's curl lines send (forms with values not
URL-encoded, JSON bodies), every route, and one input per rule near a
limit (nesting of 15, 16 and 40, a bad % escape, a repeated field...).
The ssh key is an OpenSSH key by structure only (dx_sshkey judges no
more), so no real key is kept in git. Run it from anywhere:
    /usr/bin/python3 tests/fuzz/make_corpus_api.py
"""
import base64
import json
import os
import struct

PREFIX = "/api/v1.0"
#  fuzz_route's first byte: the method's index, | 8 for the API prefix
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get"]
#  fuzz_spec's first byte: the validator, | 4 for azure, | 8 for JSON
KINDS = ["cluster", "config", "group", "deployment"]
BODY_DEPTH = 16     # DX_MSG_BODY_DEPTH in common/dx_msg.h


def ssh_string(data):
    return struct.pack(">I", len(data)) + data


def openssh_key():
    """An unencrypted OpenSSH private key block of made-up bytes."""
    public = ssh_string(b"ssh-ed25519") + ssh_string(bytes(range(32)))
    private = struct.pack(">II", 7, 7) + public + ssh_string(bytes(64)) + \
        ssh_string(b"seed") + b"\x01\x02\x03"
    blob = b"openssh-key-v1\0" + ssh_string(b"none") + ssh_string(b"none") + \
        ssh_string(b"") + struct.pack(">I", 1) + ssh_string(public) + ssh_string(private)
    return "-----BEGIN OPENSSH PRIVATE KEY-----\n" + \
        base64.b64encode(blob).decode() + "\n-----END OPENSSH PRIVATE KEY-----\n"


def b64url(text):
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def nested(depth):
    """JSON text of an object nested depth levels ({"a":{}} is 2)."""
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


CREDENTIALS = json.dumps({
    "clientId": "0b6d8e2a-1c3f-4e5a-9b7c-2d4e6f8a0b1c",
    "clientSecret": "cl13nt~S3cr3t.value",
    "subscriptionId": "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
    "tenantId": "contoso.onmicrosoft.com",
    "resourceManagerEndpointUrl": "https://management.azure.com/"})

#  Forms as curl -d sends them: raw JSON, spaces, base64url, unencoded
FORMS = {
    "cluster": "name=demo&provider=aws&type=mesos",
    "config-aws": "master_type=m3.large&masters=3&region=us-west-2&sshkey=reference"
                  "&sshkeydata=" + b64url(openssh_key()),
    "config-azure": "masters=1&location=Central US&ssh_user=dexter"
                    "&ssh_password=Sup3r-Secret&image=Canonical:UbuntuServer:16.04-LTS:latest",
    "group-aws": 'name=slaves&role=role1&attributes={"foo":"bar"}&vars={"foo":"bar"}'
                 "&instance_type=r3.xlarge&cpus=10&ram=64&disk_size=50",
    "group-aws-ebs": 'name=g&role=*&attributes={}&vars={}&cpus=2&ram=8&disk_size=8'
                     '&customhwconf={"ebs_block_device":[{"device_name":"/dev/xvdh",'
                     '"volume_size":100,"volume_type":"gp2"}]}',
    "deployment-aws": "command=deploy&parallelism=5&aws_access_key_id=AKIAIOSFODNN7EXAMPLE"
                      "&aws_secret_access_key=wJalrXUtnFEMI/K7MDENG bPxRfiCYEXAMPLEKEY",
    "deployment-azure": "command=destroy&credentials=" + b64url(CREDENTIALS),
    "vars-depth-15": "name=g&role=*&attributes={}&cpus=2&ram=8&disk_size=8"
                     "&vars=" + nested(BODY_DEPTH - 1),
    "vars-depth-16": "name=g&role=*&attributes={}&cpus=2&ram=8&disk_size=8"
                     "&vars=" + nested(BODY_DEPTH),
    "vars-depth-40": "name=g&role=*&attributes={}&cpus=2&ram=8&disk_size=8"
                     "&vars=" + nested(40),
    "cluster-percent": "name=de%6Do&provider=a%77s&type=mesos+x&x=%41%42",
}

JSONS = {
    "cluster": {"name": "demo", "provider": "azure", "type": "dcos"},
    "group-azure": {"name": "analytics", "role": "*",
                    "attributes": {"purpose": "analytics", "rack": 3, "w": 0.5},
                    "vars": {"y": "43", "nested": {"a": [1, None, True, 1.5e300]}},
                    "instance_type": "Standard_D11", "cpus": 12, "ram": 16,
                    "disk_size": 50, "customhwconf": {"disks": [
                        {"size": 100, "type": "Premium_LRS"}, {"size": "5"}]}},
    "deployment-aws": {"command": "deploy", "parallelism": 100,
                       "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
                       "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                       "aws_session_token": "FwoGZXIvYXdzEBY+a/b="},
}


def body_seeds():
    """fuzz_body: a Content-Type line, then the body."""
    form = "application/x-www-form-urlencoded"
    seeds = {"form-" + name: form + "\n" + text for name, text in FORMS.items()}
    seeds.update({"json-" + name: "application/json; charset=utf-8\n" + json.dumps(value)
                  for name, value in JSONS.items()})
    seeds.update({
        "no-content-type": FORMS["cluster"],
        "empty-content-type": "\n" + FORMS["cluster"],
        "json-depth-16": "application/json\n" + '{"vars":' + nested(BODY_DEPTH - 1) + "}",
        "json-depth-17": "application/json\n" + '{"vars":' + nested(BODY_DEPTH) + "}",
        "json-vars-text-40": "application/json\n" + json.dumps({"vars": nested(40)}),
        "json-array": "application/json\n[1,2]",
        "json-syntax": 'application/json\n{"aws_secret_access_key": wJalr}',
        "json-duplicate": 'application/json\n{"a": 1, "a": 2}',
        "json-escapes": 'application/json\n{"name": "\\u00e9\\ud83d\\ude00", "x": "\\u0000"}',
        "form-bad-percent": form + "\nname=%zz",
        "form-duplicate": form + "\nname=a&name=b",
        "form-not-utf8": form + "\nname=%C3%28",
        "form-empty-name": form + "\n=x&&a",
        "unsupported": "text/plain\nname=demo",
    })
    return {name: text.encode() for name, text in seeds.items()}


def route_seeds():
    """fuzz_route: the method byte, then the path and the query."""
    paths = {
        "clusters": "/clusters", "cluster": "/clusters/demo",
        "config": "/clusters/demo/config", "groups": "/clusters/demo/groups",
        "group": "/clusters/demo/groups/workers",
        "deployment": "/clusters/demo/deployment",
        "events": "/clusters/demo/deployment/events?after=1700000000000-0&count=10",
        "vpn": "/clusters/demo/deployment/vpn",
        "force": "/clusters/demo?force=true", "slash": "/clusters/demo/",
        "page": "/clusters?limit=10&after=demo", "page-bad": "/clusters?limit=0&after=Demo",
        "bad-name": "/clusters/Demo", "long-name": "/clusters/abcdefghijklmnopq",
        "bad-group": "/clusters/demo/groups/access%",
        "unknown": "/clusters/demo/nodes", "double-slash": "/clusters//demo",
        "query-twice": "/clusters/demo?force=true&force=false",
        "query-unknown": "/clusters/demo/deployment/events?count=1001&x=1",
        "query-percent": "/clusters/demo?force=%74rue",
        "query-bad-percent": "/clusters/demo?force=%",
    }
    seeds = {}
    for name, path in paths.items():
        for method in ("GET", "POST", "PUT", "DELETE", "OPTIONS"):
            seeds[method.lower() + "-" + name] = bytes([METHODS.index(method) | 8]) + \
                path.encode()
    seeds["head-clusters"] = bytes([1 | 8]) + b"/clusters"
    seeds["patch-cluster"] = bytes([6 | 8]) + b"/clusters/demo"
    seeds["full-url"] = bytes([0]) + (PREFIX + "/clusters/demo").encode()
    seeds["no-prefix"] = bytes([0]) + b"/clusters"
    return seeds


def spec_seeds():
    """fuzz_spec: the validator byte, then the body."""
    seeds = {}
    for name, text in FORMS.items():
        kind = next((k for k in KINDS if name.startswith(k)), "group")
        azure = 4 if name.endswith("azure") else 0
        seeds["form-" + name] = bytes([KINDS.index(kind) | azure]) + text.encode()
    for name, value in JSONS.items():
        kind = KINDS.index(name.split("-")[0])
        azure = 4 if name.endswith("azure") or value.get("provider") == "azure" else 0
        seeds["json-" + name] = bytes([kind | azure | 8]) + json.dumps(value).encode()
    return seeds


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    for target, seeds in (("body", body_seeds()), ("route", route_seeds()),
                          ("spec", spec_seeds())):
        out = os.path.join(here, target)
        os.makedirs(out, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(out, name), "wb") as f:
                f.write(data)
        print("wrote %d files to %s" % (len(seeds), out))


if __name__ == "__main__":
    main()
