#!/usr/bin/python3
"""Writes the seed corpus of tests/fuzz/fuzz_msg.c into tests/fuzz/msg/.

One valid message of every type in proto/PROTOCOL.md, replies, and a set of
malformed messages, one per decoder rule. The msgpack bytes come from the
small packer below (python3-msgpack is not a dependency), and malformed
parts are spliced in as Raw bytes. Run it from anywhere:
    /usr/bin/python3 tests/fuzz/make_corpus.py
"""
import os
import struct


class Raw(bytes):
    """Bytes written to the output as they are, not packed as bin."""


def pack(value):
    """Packs a Python value into msgpack in the smallest form."""
    if isinstance(value, Raw):
        return bytes(value)
    if value is None:
        return b"\xc0"
    if value is True:
        return b"\xc3"
    if value is False:
        return b"\xc2"
    if isinstance(value, int):
        if 0 <= value < 0x80:
            return bytes([value])
        if -32 <= value < 0:
            return struct.pack("b", value)
        if 0 <= value <= 0xFFFFFFFF:
            return b"\xce" + struct.pack(">I", value)
        if 0 <= value <= 0xFFFFFFFFFFFFFFFF:
            return b"\xcf" + struct.pack(">Q", value)
        return b"\xd3" + struct.pack(">q", value)
    if isinstance(value, float):
        return b"\xcb" + struct.pack(">d", value)
    if isinstance(value, (str, bytes)):
        data = value.encode() if isinstance(value, str) else value
        if len(data) < 32:
            return bytes([0xA0 | len(data)]) + data
        if len(data) < 256:
            return b"\xd9" + bytes([len(data)]) + data
        return b"\xda" + struct.pack(">H", len(data)) + data
    if isinstance(value, list):
        head = bytes([0x90 | len(value)]) if len(value) < 16 else \
            b"\xdc" + struct.pack(">H", len(value))
        return head + b"".join(pack(v) for v in value)
    if isinstance(value, (dict, Pairs)):
        items = value.items()
        head = bytes([0x80 | len(items)]) if len(items) < 16 else \
            b"\xde" + struct.pack(">H", len(items))
        return head + b"".join(pack(k) + pack(v) for k, v in items)
    raise TypeError(type(value))


class Pairs:
    """A map given as a list of pairs: allows repeated or non-string keys."""

    def __init__(self, *pairs):
        self.pairs = pairs

    def items(self):
        return self.pairs


DEADLINE = 1795574400123
GROUP = {"name": "workers", "cpus": 16, "ram": 64, "role": "*",
         "attributes": {"rack": "r1"}, "disks": [{"size": 100, "device": "xvdf"}]}


def request(type_, **fields):
    msg = {"v": 1, "type": type_, "id": "0123456789abcdef0123456789abcdef",
           "deadline": DEADLINE}
    msg.update(fields)
    return msg


VALID = {
    "cluster.list": request("cluster.list"),
    "cluster.create": request("cluster.create", cluster={
        "name": "c1", "provider": "aws", "type": "mesos"}),
    "cluster.get": request("cluster.get", name="c1"),
    "cluster.delete": request("cluster.delete", name="c1", force=True),
    "config.get": request("config.get", name="c1"),
    "config.put": request("config.put", name="c1",
                          fields={"region": "us-west-2", "masters": "3", "image": None,
                                  "sshkeydata": "LS0tLS1CRUdJTg=="}),
    "config.delete": request("config.delete", name="c1"),
    "group.list": request("group.list", name="c1"),
    "group.upsert": request("group.upsert", name="c1", fields=GROUP),
    "group.get": request("group.get", name="c1", group="workers"),
    "group.update": request("group.update", name="c1", group="workers", fields=GROUP),
    "group.delete": request("group.delete", name="c1", group="workers"),
    "deployment.get": request("deployment.get", name="c1"),
    "deployment.put": request("deployment.put", name="c1", fields={
                                  "command": "deploy", "parallelism": 5,
                                  "aws_access_key_id": "AKIAABCDEFGHIJKLMNOP",
                                  "aws_secret_access_key": "abc/def+ghi="}),
    "deployment.delete": request("deployment.delete", name="c1", force=False),
    "deployment.vpn": request("deployment.vpn", name="c1"),
    "deployment.events": request("deployment.events", name="c1",
                                 after="1795574400123-0", count=100),
    "reply-ok": {"v": 1, "type": "reply", "id": "0123456789abcdef", "status": "OK",
                 "body": {"name": "c1", "groups": ["g1"], "hosts": {"masters": 3},
                          "load": -1.5, "configured": True}},
    "cluster.get-text": request("cluster.get", name="c1", text=True),
    "reply-text": {"v": 1, "type": "reply", "id": "0123456789abcdef", "status": "OK",
                   "text": '{"name":"c1","groups":["g1"],"hosts":{"masters":3}}'},
    "reply-errors": {"v": 1, "type": "reply", "id": "r", "status": "INVALID",
                     "field": "masters", "message": "masters is required",
                     "errors": [{"field": "masters", "message": "masters is required"},
                                {"field": "region", "message": "region is required"}]},
}


def message(type_, **fields):
    msg = {"v": 1, "type": type_, "id": "fedcba9876543210fedcba9876543210"}
    msg.update(fields)
    return msg


#  scheduler <-> workers
JOB = {"job": "job-0123", "attempt": 2}
VALID.update({
    "worker.ready": message("worker.ready", service="aws", capacity=8,
                            worker="host1:4242", active=["job-0123"]),
    "worker.welcome": message("worker.welcome", heartbeat_ms=1000, lease_ms=30000),
    "heartbeat": message("heartbeat", active=["job-0123", "job-4567"]),
    "worker.reconnect": message("worker.reconnect"),
    "job.assign": message("job.assign", cluster="c1", generation=3,
                          step={"kind": "instances", "group": "workers", "count": 4},
                          credentials={"aws_access_key_id": "AKIAABCDEFGHIJKLMNOP",
                                       "aws_secret_access_key": "abc/def+ghi="},
                          lease_ms=30000, **JOB),
    "job.renew": message("job.renew", **JOB),
    "job.result-done": message("job.result", outcome="done", resources=[
        {"kind": "vpc", "provider_id": "vpc-0123", "cidr": "10.0.0.0/16"}], **JOB),
    "job.result-failed": message("job.result", outcome="failed", resources=[],
                                 error={"code": "AuthFailure", "message": "bad keys",
                                        "permanent": True}, **JOB),
    "job.cancel": message("job.cancel", **JOB),
    "worker.bye": message("worker.bye"),
})


def nested(depth):
    """{"x": {"x": ...}} with the deepest map at the given level."""
    value = {}
    for _ in range(depth - 2):
        value = {"x": value}
    return request("cluster.list", x=value)


#  Edge cases that must decode
VALID["edge-depth-32"] = nested(32)
VALID["edge-int64-min-max"] = request("cluster.list", x=[-2 ** 63, 2 ** 63 - 1, 1.5])
#  An empty first string: msgpack-c gives it a NULL pointer (found by the fuzzer)
VALID["edge-empty-strings"] = Pairs(("", ""), ("v", 1), ("type", "cluster.list"),
                                    ("id", "r"), ("deadline", 1), ("x", ""))

GET = request("cluster.get", name="c1")
BAD = {
    "trailing-byte": pack(GET) + b"\xc0",
    "truncated": pack(GET)[:-3],
    "top-array": pack([1, 2, 3]),
    "top-string": pack("hello"),
    "int-key": pack(Pairs(("v", 1), ("type", "cluster.list"), ("id", "r"),
                          ("deadline", 1), (7, 1))),
    "duplicate-key": pack(Pairs(("v", 1), ("type", "cluster.list"), ("id", "r"),
                                ("deadline", 1), ("v", 1))),
    "depth-33": pack(nested(33)),
    "bin": pack(request("cluster.list", x=Raw(b"\xc4\x02ab"))),
    "ext": pack(request("cluster.list", x=Raw(b"\xd4\x01\x00"))),
    "bad-utf8": pack(request("cluster.get", name=Raw(b"\xa2\xc3\x28"))),
    "nul-in-string": pack(request("cluster.get", name="c\x001")),
    "uint-over-int64": pack(request("cluster.list", deadline=2 ** 63)),
    "float32-nan": pack(request("cluster.list", x=Raw(b"\xca\x7f\xc0\x00\x00"))),
    "version-2": pack(dict(GET, v=2)),
    "unknown-type": pack(dict(GET, type="cluster.explode")),
    "missing-field": pack(request("cluster.get")),
    "wrong-type": pack(request("cluster.delete", name="c1", force="yes")),
    "text-not-bool": pack(request("cluster.get", name="c1", text="yes")),
    "count-range": pack(dict(VALID["deployment.events"], count=1001)),
    "worker-service": pack(dict(VALID["worker.ready"], service="gcp")),
    "job-outcome": pack(dict(VALID["job.result-done"], outcome="maybe")),
    "job-credentials": pack(dict(VALID["job.assign"], credentials={"k": 1})),
    "huge-map-header": b"\xdf\xff\xff\xff\xff" + pack("v") + b"\x01",
    "huge-str-header": b"\x81" + pack("v") + b"\xdb\xff\xff\xff\xff",
    "byte-c1": b"\x81\xa1v\xc1",
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "msg")
    os.makedirs(out, exist_ok=True)
    for name, msg in VALID.items():
        with open(os.path.join(out, "valid-" + name + ".mp"), "wb") as f:
            f.write(pack(msg))
    for name, data in BAD.items():
        with open(os.path.join(out, "bad-" + name + ".mp"), "wb") as f:
            f.write(data)
    print("wrote %d files to %s" % (len(VALID) + len(BAD), out))


if __name__ == "__main__":
    main()
