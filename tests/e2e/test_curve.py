"""CurveZMQ on the scheduler's two links (proto/PROTOCOL.md, "Security"), end
to end, as an attacker on the same host would try them with pyzmq:

(1) a process that connects to the workers' port and announces itself as a
    worker, with no key or with a fresh key nobody listed, is never sent the
    job.assign (cloud credentials included) of a deployment waiting for a
    worker; a key listed in the workers' directory is (so the messages sent
    here are the real thing), and the scheduler logs each refusal once, not
    once per try;
(2) one that connects to the api port and sends cluster.delete with force gets
    no reply and the cluster is still there; a listed api key gets replies;
(3) workers started before the scheduler, each with its own data directory
    and only the shared DEXTER_CURVE_DIR, join once it is up, with nothing
    set by hand (a scaled worker);
(4) every key and certificate file is 0600, every directory 0700;
(5) docker-compose.yml shares the certificates, and only them, between the
    scheduler, the api and every worker.

(1) and (2) fail on the code before CURVE: a DEALER with no key was welcomed
and sent the job, and its cluster.delete was carried out and answered.
"""
import os
import re
import stat
import struct
import time
import uuid

import yaml
import zmq

from aws_helpers import api, make_aws_cluster, pem_key, put_deployment
from conftest import FAKE_SECRET, REPO, wait_until

QUIET = 1.5      # seconds a refused peer listens for anything at all
ATTEMPTS = 3     # tries of each kind of stranger (a refusal is logged once)


def pack(obj):
    """msgpack of the maps, strings, integers and booleans the protocol uses."""
    if obj is True or obj is False:
        return b"\xc3" if obj else b"\xc2"
    if isinstance(obj, int):
        assert 0 <= obj < 2 ** 64
        return bytes([obj]) if obj < 128 else b"\xcf" + struct.pack(">Q", obj)
    if isinstance(obj, str):
        raw = obj.encode()
        assert len(raw) < 256
        return (bytes([0xa0 | len(raw)]) if len(raw) < 32 else b"\xd9" + bytes([len(raw)])) + raw
    if isinstance(obj, dict):
        assert len(obj) < 16
        return bytes([0x80 | len(obj)]) + b"".join(pack(k) + pack(v) for k, v in obj.items())
    raise TypeError(obj)


def message(type_, **fields):
    return pack(dict({"v": 1, "type": type_, "id": uuid.uuid4().hex}, **fields))


def curve_dir(stack):
    return os.path.join(stack.dir, "data", "curve")


def scheduler_key(stack):
    """The scheduler's public key, from the certificate it publishes."""
    with open(os.path.join(curve_dir(stack), "scheduler.cert")) as f:
        return re.search(r'public-key = "(.{40})"', f.read()).group(1).encode()


def list_key(stack, link, public):
    """Admits public on link the way a client does: its certificate in the
    link's directory."""
    path = os.path.join(curve_dir(stack), link, "listed-%s.cert" % uuid.uuid4().hex[:8])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write('metadata\ncurve\n    public-key = "%s"\n' % public.decode())


class Peer:
    """A DEALER to one of the scheduler's ports: with no key (keys None),
    or a CURVE client with keys (public, secret)."""

    def __init__(self, ctx, stack, port, keys=None):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        if keys:
            self.sock.curve_publickey, self.sock.curve_secretkey = keys
            self.sock.curve_serverkey = scheduler_key(stack)
        self.sock.connect("tcp://127.0.0.1:%d" % port)

    def heard(self, seconds):
        """Every frame received within seconds."""
        frames, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.sock.poll(int(max(1, (deadline - time.monotonic()) * 1000))):
                frames.append(self.sock.recv())
        return frames

    def heard_until(self, wanted, seconds):
        """Frames received until one holds wanted (bounded)."""
        frames, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline and not any(wanted in f for f in frames):
            if self.sock.poll(100):
                frames.append(self.sock.recv())
        return frames

    def close(self):
        self.sock.close()


def refusals(stack, text):
    return [line for line in stack.scheduler.log().splitlines() if text in line]


def assert_logged_once(stack, text):
    wait_until(lambda: refusals(stack, text), 5, "the scheduler to log '%s'" % text)
    time.sleep(0.5)
    lines = refusals(stack, text)
    assert len(lines) == 1, "'%s' logged %d times, not once:\n%s" % (text, len(lines), "\n".join(lines))
    return lines[0]


def assert_no_key_logged_once(stack, link):
    """A peer with no key is refused in one of two ways, each logged once at
    most: the scheduler reads its greeting first (a mechanism mismatch), or
    the peer reads the scheduler's first and hangs up (common on a busy
    host)."""
    texts = ["refused a connection without CURVE to the %s link" % link,
             "refused a connection to the %s link (tcp://" % link]
    hung_up = "the peer hung up during the handshake"
    wait_until(lambda: refusals(stack, texts[0]) or
               [line for line in refusals(stack, texts[1]) if hung_up in line], 5,
               "the scheduler to log a peer with no key on the %s link" % link)
    time.sleep(0.5)
    lines = refusals(stack, texts[0]) + refusals(stack, texts[1])
    assert all(hung_up in line for line in refusals(stack, texts[1])), lines
    assert len(refusals(stack, texts[0])) <= 1 and len(refusals(stack, texts[1])) <= 1, (
        "a peer with no key logged more than once per way:\n" + "\n".join(lines))


def test_worker_port_gives_strangers_no_job(stack_factory, tmp_path):
    """(1) A deployment waits for a worker; strangers on the workers' port
    get nothing, a listed key gets the job."""
    stack = stack_factory(sched_env={"DEXTER_HEARTBEAT_MS": "200", "DEXTER_LEASE_MS": "3000"})
    stack.start_fake_ec2()
    make_aws_cluster(stack, "guarded", pem_key(str(tmp_path / "guarded.pem")),
                     [{"name": "g1", "instance_type": "m5.large", "cpus": 2, "ram": 4}])
    put_deployment(stack, "guarded")            # no worker yet: its first job waits
    ready = message("worker.ready", service="aws", capacity=4, worker="intruder:1")
    ctx = zmq.Context()
    try:
        stranger = zmq.curve_keypair()
        for keys in [None] * ATTEMPTS + [stranger] * ATTEMPTS:
            peer = Peer(ctx, stack, stack.worker_port, keys)
            peer.sock.send(ready)
            frames = peer.heard(QUIET)
            peer.close()
            assert frames == [], "a worker with %s was sent %r" % (
                "a key nobody listed" if keys else "no key", [f[:60] for f in frames])
        _, d = api(stack, "GET", "/clusters/guarded/deployment", 200)
        assert d["state"] == "deploying" and d["waiting"] and d["progress"]["steps_done"] == 0, d
        assert stack.fake_calls()["total"] == 0
        assert "127.0.0.1" in assert_logged_once(stack, "refused a client of the workers link")
        assert_no_key_logged_once(stack, "workers")

        # The same message from a listed key is welcomed and given the job
        listed = zmq.curve_keypair()
        list_key(stack, "workers", listed[0])
        peer = Peer(ctx, stack, stack.worker_port, listed)
        peer.sock.send(ready)
        frames = peer.heard_until(b"job.assign", 10)
        peer.close()
        assert any(b"worker.welcome" in f for f in frames), frames
        assert any(b"job.assign" in f and FAKE_SECRET.encode() in f for f in frames), frames
    finally:
        ctx.destroy(linger=0)
    for line in stack.scheduler.log().splitlines():
        assert stranger[0].decode() not in line and listed[0].decode() not in line, line


def test_api_port_carries_out_nothing_for_strangers(stack):
    """(2) cluster.delete with force from strangers on the api port: no
    reply, the cluster stays; a listed key is answered."""
    api(stack, "POST", "/clusters", 201, data={"name": "keep", "provider": "aws", "type": "mesos"})
    ctx = zmq.Context()
    try:
        for keys in [None] * ATTEMPTS + [zmq.curve_keypair()] * ATTEMPTS:
            peer = Peer(ctx, stack, stack.sched_port, keys)
            peer.sock.send(message("cluster.delete", name="keep", force=True,
                                   deadline=int(time.time() * 1000) + 30000))
            frames = peer.heard(QUIET)
            peer.close()
            assert frames == [], "cluster.delete %s was answered %r" % (
                "with a key nobody listed" if keys else "with no key", [f[:60] for f in frames])
        api(stack, "GET", "/clusters/keep", 200)
        assert_logged_once(stack, "refused a client of the api link")
        assert_no_key_logged_once(stack, "api")

        listed = zmq.curve_keypair()
        list_key(stack, "api", listed[0])
        peer = Peer(ctx, stack, stack.sched_port, listed)
        peer.sock.send(message("cluster.get", name="keep", deadline=int(time.time() * 1000) + 30000))
        frames = peer.heard_until(b"keep", 10)
        peer.close()
        assert any(b"keep" in f for f in frames), frames
    finally:
        ctx.destroy(linger=0)
    api(stack, "GET", "/clusters/keep", 200)


def test_scaled_workers_join_in_any_order(stack_factory, tmp_path):
    """(3) Two workers, each with a data directory of its own and only the
    shared DEXTER_CURVE_DIR, started before the scheduler ever ran: both
    make their keys, wait for the scheduler's certificate and join."""
    stack = stack_factory(start=False)
    stack.start_redis()
    shared = curve_dir(stack)
    workers = [stack.start_aws_worker({"DEXTER_DATA_DIR": str(tmp_path / ("w%d" % i)),
                                       "DEXTER_CURVE_DIR": shared}) for i in (1, 2)]
    stack.start_scheduler()
    stack.start_api()
    stack.wait_ready()
    for w in workers:
        wait_until(lambda: "worker joined service=aws worker=%s " % stack.worker_name(w)
                   in stack.scheduler.log(), 20, "%s to join" % w.name)
    # and the vpn worker the stack starts with its first cloud worker
    certs = os.listdir(os.path.join(shared, "workers"))
    assert len([c for c in certs if c.startswith("aws-worker-")]) == 2, certs
    assert all(c.startswith(("aws-worker-", "vpn-")) for c in certs), certs


def test_key_files_are_private(stack):
    """(4) The key pairs and certificates are 0600, their directories 0700."""
    stack.start_aws_worker()
    data = os.path.join(stack.dir, "data")
    # (and the vpn worker the stack starts with it)
    wait_until(lambda: len(os.listdir(os.path.join(data, "curve", "workers"))) == 2, 10,
               "the workers' certificates")
    keys = sorted(n for n in os.listdir(data) if n.startswith("curve-"))
    assert keys == ["curve-api.key", "curve-aws-worker.key", "curve-scheduler.key",
                    "curve-vpn.key"], keys
    seen = []
    for root, dirs, files in os.walk(data):
        if root == data:
            dirs[:] = [d for d in dirs if d == "curve"]
            files = keys
        for d in dirs:
            assert stat.S_IMODE(os.stat(os.path.join(root, d)).st_mode) == 0o700, d
        for f in files:
            mode = stat.S_IMODE(os.stat(os.path.join(root, f)).st_mode)
            assert mode == 0o600, "%s is %o" % (os.path.join(root, f), mode)
            seen.append(f)
    assert "scheduler.cert" in seen and len(seen) == 8, seen


def test_compose_shares_the_certificates_only():
    """(5) One volume at DEXTER_CURVE_DIR in the scheduler, the api and every
    worker; the key pairs (in each one's DEXTER_DATA_DIR) are not on it."""
    with open(os.path.join(REPO, "docker-compose.yml")) as f:
        c = yaml.safe_load(f)
    services = {name: svc for name, svc in c["services"].items()
                if str(svc.get("command", [""])[0]).startswith("dexter-")}
    assert {"scheduler", "api", "aws-worker"} <= set(services), sorted(services)
    shared = set()
    for name, svc in services.items():
        env = svc.get("environment") or {}
        mounts = dict(reversed(str(v).split(":")[:2]) for v in svc.get("volumes", []))
        curve = env.get("DEXTER_CURVE_DIR")
        assert curve and curve in mounts, "%s has no volume at DEXTER_CURVE_DIR" % name
        shared.add(mounts[curve])
        data = env.get("DEXTER_DATA_DIR", "/var/lib/dexter")      # the image's default
        assert not data.startswith(curve) and mounts.get(data) != mounts[curve], \
            "%s keeps its key pair on the shared volume" % name
    assert len(shared) == 1 and shared <= set(c.get("volumes") or {}), shared
