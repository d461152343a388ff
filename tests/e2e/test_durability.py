"""Durability: every acknowledged record survives a crash of any process.

(a) The scheduler and the api are SIGKILLed between requests and while a
    burst of requests is in flight; after a restart every acknowledged record
    reads back exactly as before.
(b) Redis is stopped (SIGTERM) and killed (SIGKILL) and restarted on the same
    port and directory from its AOF, with the scheduler running throughout
    (it must reconnect); while Redis is down the api answers 503 JSON in time.
(c) With the scheduler down the api answers 503 with a JSON message within
    DEXTER_API_TIMEOUT_MS (3 s in conftest) + a margin; once it is back the
    same request succeeds, and a write answered 503 is never carried out
    later (requests carry deadlines, proto/PROTOCOL.md).

"Acknowledged" means a 2xx answer. A request answered 503 may or may not have
happened (docs/api.md), so only (c) judges those, where the deadline rule
makes the answer certain.
"""
import base64
import json
import os
import signal
import subprocess
import threading
import time

import requests

from conftest import wait_until

API_TIMEOUT_S = 3.0     # DEXTER_API_TIMEOUT_MS in conftest
MARGIN_S = 2.0          # scheduling slack on a loaded machine (ASan build)
HTTP_TIMEOUT = 30       # a hung api fails the test instead of hanging it
RECOVERY_S = 30         # bound on a restarted process becoming usable

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYDURABILITY1"
AZURE_SECRET = "azSecret~Durability.0123456789"
SSH_PASSWORD = "Dur4ble!Passw0rd"


# ----------------------------------------------------------------- helpers --

def pem_b64url():
    """A fresh unencrypted RSA key as the reference sends it:
    `base64 -w 0 | tr '+/' '-_'`."""
    pem = subprocess.run(["openssl", "genrsa", "-traditional", "2048"],
                         capture_output=True, check=True, timeout=120).stdout
    return base64.urlsafe_b64encode(pem).decode()


def azure_credentials():
    blob = {"clientId": "0f2a8c7e-1111-4a4b-9c9d-0123456789ab",
            "clientSecret": AZURE_SECRET,
            "tenantId": "7d1e6b2a-2222-4c4d-8e8f-0123456789ab",
            "subscriptionId": "3c9b1f0d-3333-4e4f-a0a1-0123456789ab"}
    return base64.urlsafe_b64encode(json.dumps(blob).encode()).decode()


def call(stack, method, path, session=None, **kw):
    """(status, json body or None). Raises on a transport error."""
    kw.setdefault("timeout", HTTP_TIMEOUT)
    headers = dict(stack.auth_headers())
    headers.update(kw.pop("headers", {}))
    r = (session or requests).request(method, stack.url(path), headers=headers, **kw)
    try:
        body = r.json()
    except ValueError:
        body = None
    # Every answer is JSON (docs/api.md), 503s included.
    assert body is not None and r.headers.get("Content-Type", "").startswith("application/json"), \
        "%s %s: %d answer is not JSON (%r): %r" % (method, path, r.status_code,
                                                    r.headers.get("Content-Type"), r.text[:300])
    return r.status_code, body


def ok(stack, method, path, expect, **kw):
    status, body = call(stack, method, path, **kw)
    assert status == expect, "%s %s: expected %d, got %d %r" % (method, path, expect, status, body)
    return body


def build_aws(stack, name, pem):
    ok(stack, "POST", "/clusters", 201, data={"name": name, "provider": "aws", "type": "mesos"})
    ok(stack, "PUT", "/clusters/%s/config" % name, 200,
       data={"master_type": "m3.large", "masters": "3", "region": "us-west-2",
             "sshkey": "reference", "sshkeydata": pem})
    ok(stack, "POST", "/clusters/%s/groups" % name, 201,
       data={"name": "slaves1", "role": "role1", "attributes": '{"foo":"bar"}',
             "vars": '{"foo":"bar"}', "instance_type": "r3.xlarge", "cpus": "10",
             "ram": "64", "disk_size": "50"})
    ok(stack, "POST", "/clusters/%s/groups" % name, 201,
       data={"name": "slaves2", "role": "role2", "attributes": '{"rack":"r1","n":3}',
             "vars": '{"x_factor":"42"}', "cpus": "20", "ram": "128", "disk_size": "100",
             "customhwconf": '{"disks":[{"size":100,"type":"gp2"},{"size":200,"type":"io1"}]}'})
    # "Change slaves group size": POST onto an existing name replaces it.
    ok(stack, "POST", "/clusters/%s/groups" % name, 200,
       data={"name": "slaves1", "role": "role1", "attributes": '{"purpose":"log_storing"}',
             "vars": '{"x_factor":"42"}', "cpus": "20", "ram": "128", "disk_size": "50"})
    ok(stack, "PUT", "/clusters/%s/deployment" % name, 202,
       data={"aws_access_key_id": "AKIAIOSFODNN7DURABLE", "aws_secret_access_key": AWS_SECRET,
             "command": "deploy", "parallelism": "3"})


def build_azure(stack, name):
    ok(stack, "POST", "/clusters", 201, data={"name": name, "provider": "azure", "type": "dcos"})
    ok(stack, "PUT", "/clusters/%s/config" % name, 200,
       data={"location": "Central US", "masters": "3", "ssh_password": SSH_PASSWORD,
             "ssh_user": "dexter", "master_type": "Basic_A2"})
    ok(stack, "POST", "/clusters/%s/groups" % name, 201,
       data={"name": "analytics", "role": "role1", "attributes": '{"purpose":"analytics"}',
             "vars": '{"y_factor":"43"}', "cpus": "12", "ram": "16", "disk_size": "50",
             "instance_type": "Standard_D11"})
    # A rename through PUT.
    ok(stack, "PUT", "/clusters/%s/groups/analytics" % name, 200,
       data={"name": "crunch", "role": "role1", "attributes": '{"purpose":"analytics"}',
             "vars": '{"y_factor":"44"}', "cpus": "12", "ram": "16", "disk_size": "60",
             "instance_type": "Standard_D11"})
    ok(stack, "PUT", "/clusters/%s/deployment" % name, 202,
       data={"command": "deploy", "credentials": azure_credentials()})


def build_spec_only(stack, name):
    """A cluster with config and groups but no deployment."""
    ok(stack, "POST", "/clusters", 201, data={"name": name, "provider": "azure", "type": "mesos"})
    ok(stack, "PUT", "/clusters/%s/config" % name, 200,
       data={"location": "westeurope", "masters": "1", "ssh_password": SSH_PASSWORD,
             "ssh_user": "ops"})
    ok(stack, "POST", "/clusters/%s/groups" % name, 201,
       data={"name": "small", "role": "*", "attributes": "{}", "vars": "{}",
             "instance_type": "Basic_A3", "cpus": "4", "ram": "7", "disk_size": "30"})


# Fields of a deployment that the scheduler may legitimately move on its own
# while it works (or waits for a worker); everything else is the record.
DEPLOYMENT_VOLATILE = ("progress", "waiting", "updated_at", "observed_generation", "last_error")


def snapshot(stack, names):
    """Every GET answer that shows the acknowledged records of names."""
    listing = ok(stack, "GET", "/clusters", 200)
    assert listing["count"] == len(listing["clusters"]), listing
    snap = {"list": [c for c in listing["clusters"] if c["name"] in names]}
    for name in names:
        base = "/clusters/" + name
        snap[base] = ok(stack, "GET", base, 200)
        snap[base + "/config"] = ok(stack, "GET", base + "/config", 200)
        groups = ok(stack, "GET", base + "/groups", 200)
        snap[base + "/groups"] = groups
        for g in groups["groups"]:
            path = "%s/groups/%s" % (base, g["name"])
            snap[path] = ok(stack, "GET", path, 200)
        dep = ok(stack, "GET", base + "/deployment", 200)
        snap[base + "/deployment"] = {k: v for k, v in dep.items() if k not in DEPLOYMENT_VOLATILE}
        snap[base + "/events"] = ok(stack, "GET", base + "/deployment/events?count=1000", 200)["events"]
    return snap


def assert_same(before, after):
    for key, old in before.items():
        new = after[key]
        if key.endswith("/events"):
            # The stream only grows: what was there is still there, unchanged.
            assert new[:len(old)] == old, "%s: events lost or changed\nbefore %r\nafter  %r" % (key, old, new)
        else:
            assert new == old, "%s changed across the restart\nbefore %r\nafter  %r" % (key, old, new)


def wait_recovered(stack, timeout=RECOVERY_S):
    stack.wait_ready(timeout)


# ----------------------------------------------------------- bursts ------

class Burst:
    """n client threads, each creating its own clusters and groups in a loop
    until told to stop (or a deadline), recording every answer."""

    def __init__(self, stack, prefix, pem, n=8, per_client=200, deadline_s=120):
        self.stack, self.prefix, self.pem, self.n, self.per_client = stack, prefix, pem, n, per_client
        self.deadline = time.monotonic() + deadline_s
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.results = []      # (op, name, status, body) with status None on a transport error
        self.acks = 0
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(n)]

    def _record(self, *row):
        with self.lock:
            self.results.append(row)
            if row[2] is not None and 200 <= row[2] < 300:
                self.acks += 1

    def _run(self, i):
        session = requests.Session()
        for k in range(self.per_client):
            if self.stop_flag.is_set() or time.monotonic() > self.deadline:
                break
            name = "%s%dx%d" % (self.prefix, i, k)
            for op, method, path, data in (
                    ("create", "POST", "/clusters", {"name": name, "provider": "aws", "type": "mesos"}),
                    ("config", "PUT", "/clusters/%s/config" % name,
                     {"masters": str(1 + 2 * (k % 4)), "region": "eu-west-1", "sshkey": "key%dx%d" % (i, k),
                      "sshkeydata": self.pem}),
                    ("group", "POST", "/clusters/%s/groups" % name,
                     {"name": "g%d" % k, "role": "r%d" % i, "attributes": '{"k":"%d"}' % k,
                      "vars": "{}", "cpus": str(4 + k % 8), "ram": "16", "disk_size": "50"})):
                try:
                    status, body = call(self.stack, method, path, session=session, data=data)
                except requests.RequestException:
                    status, body = None, None
                    time.sleep(0.05)   # the api is down: do not spin
                self._record(op, name, status, body)
        session.close()

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def wait_acks(self, count, timeout=60):
        wait_until(lambda: self.acks >= count, timeout, "%d acknowledged requests" % count)

    def finish(self, timeout=120):
        self.stop_flag.set()
        for t in self.threads:
            t.join(max(0.1, self.deadline + timeout - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "burst clients did not finish in time"

    def acknowledged(self):
        return [r for r in self.results if r[2] is not None and 200 <= r[2] < 300]


def check_burst(stack, burst, allowed_transport_errors):
    """Statuses are ones the contract allows; every acknowledged record reads
    back as acknowledged."""
    bad = []
    for op, name, status, body in burst.results:
        if status is None:
            if not allowed_transport_errors:
                bad.append((op, name, "transport error"))
            continue
        allowed = {"create": {201, 503}, "config": {200, 404, 503}, "group": {201, 404, 503}}[op]
        if status not in allowed:
            bad.append((op, name, status, body))
        if status == 503:
            assert isinstance(body, dict) and body.get("code") == "UNAVAILABLE" and body.get("message"), \
                "503 without a JSON UNAVAILABLE message: %r" % (body,)
    assert not bad, "statuses outside the contract: %r" % bad[:20]
    acked = burst.acknowledged()
    assert acked, "no request of the burst was acknowledged"
    for op, name, status, body in acked:
        if op == "create":
            got = ok(stack, "GET", "/clusters/" + name, 200)
            for field in ("name", "provider", "type", "created_at"):
                assert got[field] == body[field], "%s: %s %r != acknowledged %r" % (name, field, got[field], body[field])
        elif op == "config":
            got = ok(stack, "GET", "/clusters/%s/config" % name, 200)
            assert got == body, "config of %s: %r != acknowledged %r" % (name, got, body)
        else:
            got = ok(stack, "GET", "/clusters/%s/groups/%s" % (name, body["name"]), 200)
            assert got == body, "group %s/%s: %r != acknowledged %r" % (name, body["name"], got, body)
    listed = {c["name"] for c in ok(stack, "GET", "/clusters", 200)["clusters"]}
    missing = {name for op, name, _, _ in acked if op == "create"} - listed
    assert not missing, "acknowledged clusters missing from the list: %r" % sorted(missing)


# ------------------------------------------------------------------ (a) --

def test_scheduler_sigkill_between_requests(stack):
    pem = pem_b64url()
    build_aws(stack, "durawsone", pem)
    before = snapshot(stack, ["durawsone"])
    first_pid = stack.scheduler.pid
    stack.scheduler.kill()
    stack.start_scheduler()
    assert stack.scheduler.pid != first_pid
    wait_recovered(stack)
    assert_same(before, snapshot(stack, ["durawsone"]))

    # Keep building after the restart, then crash it again.
    build_azure(stack, "durazone")
    build_spec_only(stack, "duraspec")
    names = ["durawsone", "durazone", "duraspec"]
    before = snapshot(stack, names)
    stack.scheduler.kill()
    stack.start_scheduler()
    wait_recovered(stack)
    assert_same(before, snapshot(stack, names))


def test_scheduler_sigkill_during_burst(stack):
    pem = pem_b64url()
    build_aws(stack, "burstaws", pem)
    build_azure(stack, "burstaz")
    before = snapshot(stack, ["burstaws", "burstaz"])

    burst = Burst(stack, "sk", pem).start()
    try:
        burst.wait_acks(30)
        stack.scheduler.kill()                      # requests are in flight
        time.sleep(1.0)                             # some are answered 503 meanwhile
        stack.start_scheduler()
        wait_recovered(stack)
        burst.wait_acks(burst.acks + 30)            # and it serves again
    finally:
        burst.finish()
    assert any(r[2] == 503 for r in burst.results), \
        "no request was answered 503 while the scheduler was dead (the kill did not hit the burst)"
    check_burst(stack, burst, allowed_transport_errors=False)
    assert_same(before, snapshot(stack, ["burstaws", "burstaz"]))


def test_api_sigkill_between_requests_and_during_burst(stack):
    pem = pem_b64url()
    build_aws(stack, "apiaws", pem)
    build_azure(stack, "apiaz")
    names = ["apiaws", "apiaz"]
    before = snapshot(stack, names)
    stack.api.kill()
    stack.start_api()
    wait_recovered(stack)
    assert_same(before, snapshot(stack, names))

    burst = Burst(stack, "ak", pem).start()
    try:
        burst.wait_acks(30)
        stack.api.kill()
        time.sleep(0.5)
        stack.start_api()
        wait_recovered(stack)
        burst.wait_acks(burst.acks + 30)
    finally:
        burst.finish()
    check_burst(stack, burst, allowed_transport_errors=True)
    assert_same(before, snapshot(stack, names))


# ------------------------------------------------------------------ (b) --

def assert_unavailable_while_redis_down(stack, name):
    """Every kind of request answers 503 JSON, in time, while Redis is down."""
    for method, path, data in (
            ("GET", "/clusters", None),
            ("GET", "/clusters/" + name, None),
            ("GET", "/clusters/%s/config" % name, None),
            ("POST", "/clusters", {"name": "whiledown", "provider": "aws", "type": "mesos"}),
            ("POST", "/clusters/%s/groups" % name,
             {"name": "late", "role": "r", "attributes": "{}", "vars": "{}",
              "cpus": "4", "ram": "16", "disk_size": "50"})):
        t0 = time.monotonic()
        status, body = call(stack, method, path, data=data)
        elapsed = time.monotonic() - t0
        assert status == 503, "%s %s with Redis down: expected 503, got %d %r" % (method, path, status, body)
        assert isinstance(body, dict) and body.get("code") == "UNAVAILABLE" and body.get("message"), \
            "%s %s: 503 without a JSON UNAVAILABLE message: %r" % (method, path, body)
        assert elapsed < API_TIMEOUT_S + MARGIN_S, \
            "%s %s: 503 took %.1fs (timeout %.0fs + %.0fs margin)" % (method, path, elapsed, API_TIMEOUT_S, MARGIN_S)


def restart_redis_and_check(stack, names, before, how):
    sched_pid = stack.scheduler.pid
    if how == "term":
        rc = stack.redis.stop()
        assert rc == 0, "redis-server exited %r on SIGTERM" % rc
    else:
        stack.redis.kill()
    assert_unavailable_while_redis_down(stack, names[0])
    assert stack.scheduler.alive(), "the scheduler died while Redis was down:\n" + stack.scheduler.log()[-3000:]
    stack.start_redis()                         # same port, same dir: loads the AOF
    wait_recovered(stack)
    assert stack.scheduler.alive() and stack.scheduler.pid == sched_pid, \
        "the scheduler did not stay up across the Redis restart"
    assert stack.api.alive()
    assert_same(before, snapshot(stack, names))


def test_redis_restart_sigterm_and_sigkill(stack):
    pem = pem_b64url()
    build_aws(stack, "redaws", pem)
    build_azure(stack, "redaz")
    names = ["redaws", "redaz"]
    before = snapshot(stack, names)
    restart_redis_and_check(stack, names, before, "term")

    # New writes after the reconnect are acknowledged through the new
    # connection, then Redis is killed right after the last acknowledgement:
    # with appendfsync always, an acknowledged write is on disk.
    build_spec_only(stack, "redspec")
    ok(stack, "PUT", "/clusters/redspec/groups/small", 200,
       data={"name": "small", "role": "*", "attributes": '{"after":"reconnect"}', "vars": "{}",
             "instance_type": "Basic_A3", "cpus": "8", "ram": "14", "disk_size": "30"})
    names.append("redspec")
    before = snapshot(stack, names)
    restart_redis_and_check(stack, names, before, "kill")

    # And the system keeps working on top of the recovered data.
    ok(stack, "DELETE", "/clusters/redspec/groups/small", 200)
    ok(stack, "GET", "/clusters/redspec/groups/small", 404)
    assert ok(stack, "GET", "/clusters/redspec", 200)["groups"] == []


def test_redis_sigkill_during_burst(stack):
    pem = pem_b64url()
    build_spec_only(stack, "rburst")
    before = snapshot(stack, ["rburst"])
    burst = Burst(stack, "rk", pem).start()
    try:
        burst.wait_acks(30)
        stack.redis.kill()
        time.sleep(1.0)
        stack.start_redis()
        wait_recovered(stack)
        burst.wait_acks(burst.acks + 30)
    finally:
        burst.finish()
    assert stack.scheduler.alive(), "the scheduler died across the Redis crash"
    check_burst(stack, burst, allowed_transport_errors=False)
    assert_same(before, snapshot(stack, ["rburst"]))


def test_scheduler_started_while_redis_down(stack):
    """A scheduler (re)started while Redis is down serves 503 meanwhile and
    everything once Redis is back: processes restart in any order."""
    build_spec_only(stack, "order")
    before = snapshot(stack, ["order"])
    assert stack.scheduler.stop() == 0
    assert stack.redis.stop() == 0
    stack.start_scheduler()
    time.sleep(1.0)
    assert stack.scheduler.alive(), "the scheduler exits when Redis is down at start:\n" + stack.scheduler.log()[-2000:]
    t0 = time.monotonic()
    status, body = call(stack, "GET", "/clusters/order")
    assert status == 503 and body.get("code") == "UNAVAILABLE", (status, body)
    assert time.monotonic() - t0 < API_TIMEOUT_S + MARGIN_S
    stack.start_redis()
    wait_recovered(stack)
    assert_same(before, snapshot(stack, ["order"]))


# ------------------------------------------------------------------ (c) --

def timed_503(stack, method, path, data=None):
    t0 = time.monotonic()
    status, body = call(stack, method, path, data=data)
    elapsed = time.monotonic() - t0
    assert status == 503, "%s %s with the scheduler down: expected 503, got %d %r" % (method, path, status, body)
    assert isinstance(body, dict) and body.get("code") == "UNAVAILABLE", "503 body: %r" % (body,)
    assert isinstance(body.get("message"), str) and body["message"], "503 without a message: %r" % (body,)
    assert elapsed < API_TIMEOUT_S + MARGIN_S, \
        "%s %s: 503 took %.1fs, deadline is %.0fs + %.0fs margin" % (method, path, elapsed, API_TIMEOUT_S, MARGIN_S)
    return body


def assert_never_carried_out(stack, ghost):
    """The scheduler is serving again; requests queued while it was away
    (whose deadlines passed) must have been dropped."""
    # Give queued messages every chance to be delivered and (wrongly) acted on.
    for _ in range(3):
        ok(stack, "GET", "/clusters", 200)
        time.sleep(0.5)
    ok(stack, "GET", "/clusters/" + ghost, 404)
    listed = [c["name"] for c in ok(stack, "GET", "/clusters", 200)["clusters"]]
    assert ghost not in listed, "a write answered 503 was carried out later: %s exists" % ghost


def test_scheduler_killed_503_then_recovers(stack):
    build_spec_only(stack, "alive")
    before = snapshot(stack, ["alive"])
    stack.scheduler.kill()
    timed_503(stack, "GET", "/clusters")
    timed_503(stack, "GET", "/clusters/alive")
    timed_503(stack, "POST", "/clusters", {"name": "ghostone", "provider": "aws", "type": "mesos"})
    timed_503(stack, "DELETE", "/clusters/alive/groups/small")
    stack.start_scheduler()
    wait_recovered(stack)
    ok(stack, "GET", "/clusters", 200)              # the same request now succeeds
    assert_never_carried_out(stack, "ghostone")
    # The delete answered 503 did not happen either.
    assert_same(before, snapshot(stack, ["alive"]))


def test_scheduler_sigterm_503_then_recovers(stack):
    assert stack.scheduler.stop() == 0
    timed_503(stack, "GET", "/clusters")
    timed_503(stack, "POST", "/clusters", {"name": "ghosttwo", "provider": "azure", "type": "dcos"})
    stack.start_scheduler()
    wait_recovered(stack)
    ok(stack, "GET", "/clusters", 200)
    assert_never_carried_out(stack, "ghosttwo")


def test_scheduler_never_started(stack_factory):
    """An api started before any scheduler answers 503, then works once the
    scheduler starts; what it queued meanwhile is not carried out."""
    stack = stack_factory(start=False)
    stack.start_redis()
    stack.start_api()
    timed_503(stack, "GET", "/clusters")
    timed_503(stack, "POST", "/clusters", {"name": "ghostthree", "provider": "aws", "type": "mesos"})
    stack.start_scheduler()
    wait_recovered(stack)
    ok(stack, "GET", "/clusters", 200)
    assert_never_carried_out(stack, "ghostthree")


def test_stalled_scheduler_drops_expired_requests(stack_factory):
    """A scheduler that is alive but stalled (SIGSTOP) receives the requests
    in its socket buffer; when it resumes, after the api answered them 503,
    it must drop every one of them: their deadlines have passed.

    The api keeps one connection to the scheduler per worker thread, made on
    first use, and (rightly) never queues to an unconnected scheduler. With a
    single api thread whose connection is warmed up before the stall, every
    request below really reaches the stalled scheduler."""
    stack = stack_factory(api_env={"DEXTER_API_THREADS": "1"})
    build_spec_only(stack, "stalled")
    before = snapshot(stack, ["stalled"])
    os.kill(stack.scheduler.pid, signal.SIGSTOP)
    try:
        timed_503(stack, "POST", "/clusters", {"name": "ghostfour", "provider": "aws", "type": "mesos"})
        timed_503(stack, "POST", "/clusters/stalled/groups",
                  {"name": "ghostgroup", "role": "r", "attributes": "{}", "vars": "{}",
                   "instance_type": "Basic_A3", "cpus": "4", "ram": "7", "disk_size": "30"})
        timed_503(stack, "DELETE", "/clusters/stalled/groups/small")
        timed_503(stack, "DELETE", "/clusters/stalled/config")
    finally:
        os.kill(stack.scheduler.pid, signal.SIGCONT)
    wait_recovered(stack)
    assert_never_carried_out(stack, "ghostfour")
    ok(stack, "GET", "/clusters/stalled/groups/ghostgroup", 404)
    assert_same(before, snapshot(stack, ["stalled"]))
    # Not a dead end either: the same name can be created now.
    ok(stack, "POST", "/clusters", 201, data={"name": "ghostfour", "provider": "aws", "type": "mesos"})
