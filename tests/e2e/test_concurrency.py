"""200 concurrent clients creating, updating and deleting clusters and groups
on overlapping names, then checking that

- no answer is a 5xx, and every answer is a status docs/api.md allows for
  that operation (with the JSON error code that goes with it);
- each client's exclusively owned names end exactly as its own last
  acknowledged writes say;
- on contended names, every value found at the end is one some client wrote
  and had acknowledged, and no later acknowledged operation (by real time:
  it started after the write's answer arrived) should have replaced it;
- there is no phantom: every listed cluster reads back whole (cluster,
  config, groups consistent), every unlisted name has no Redis key left, the
  Redis index `dexter:clusters` holds exactly the clusters that have a
  `dexter:{NAME}:cluster` key, which are exactly the listed ones, and each
  cluster's keys (docs/redis.md) agree with what the API shows.

The api timeout is raised for this test: it is about correctness under
contention, not speed, so a slow (ASan, 2-CPU) machine must not turn into 503s.
"""
import base64
import json
import random
import re
import subprocess
import threading
import time

import requests

CLIENTS = 200
SHARED = ["shr%d" % k for k in range(8)]        # contended cluster names
SHARED_GROUPS = ["ga", "gb", "gc"]              # contended group names
SHARED_OPS_PER_CLIENT = 14
RUN_DEADLINE_S = 420
HTTP_TIMEOUT = 90

# docs/redis.md: every key a cluster may have.
DOCUMENTED_KEYS = {"cluster", "config", "secrets", "groups", "deployment", "specs", "credentials", "events"}

ERROR_CODES = {400: "INVALID", 404: "NOT_FOUND", 409: "CONFLICT", 413: "TOO_LARGE"}

# The statuses docs/api.md allows for each operation given valid input and
# no deployment ever started (so no 409 on deletes, no 400 at all).
ALLOWED = {
    "cluster.create": {201, 409},
    "cluster.get": {200, 404},
    "cluster.list": {200},
    "cluster.delete": {200, 404},
    "config.put": {200, 404},
    "config.get": {200, 404},
    "config.delete": {200, 404},
    "group.post": {200, 201, 404},
    "group.put": {200, 404, 409},
    "group.get": {200, 404},
    "group.list": {200, 404},
    "group.delete": {200, 404},
}


def pem_b64():
    pem = subprocess.run(["openssl", "genrsa", "-traditional", "2048"],
                         capture_output=True, check=True, timeout=120).stdout
    return base64.urlsafe_b64encode(pem).decode()


def provider_of(name):
    return "aws" if int(re.sub(r"\D", "", name) or 0) % 2 == 0 else "azure"


class Op:
    __slots__ = ("client", "kind", "name", "group", "target", "value", "status", "body", "t0", "t1")

    def __init__(self, client, kind, name, group=None, target=None, value=None):
        self.client, self.kind, self.name, self.group = client, kind, name, group
        self.target, self.value = target, value
        self.status = self.body = None
        self.t0 = self.t1 = 0.0

    @property
    def acked(self):
        return self.status is not None and 200 <= self.status < 300

    def __repr__(self):
        return "<%s c%d %s/%s->%s %r => %s %r>" % (self.kind, self.client, self.name, self.group,
                                                  self.target, self.value, self.status, self.body)


class World:
    """Everything every client did, for the checks at the end."""

    def __init__(self, stack, pem):
        self.stack, self.pem = stack, pem
        self.lock = threading.Lock()
        self.ops = []
        self.violations = []
        self.own = {}             # client -> {"config": body, "group": body}
        self.deadline = time.monotonic() + RUN_DEADLINE_S

    def violation(self, text):
        with self.lock:
            self.violations.append(text)

    # -- requests -----------------------------------------------------------
    def do(self, session, op, method, path, data=None):
        op.t0 = time.monotonic()
        try:
            r = session.request(method, self.stack.url(path), data=data, timeout=HTTP_TIMEOUT,
                                headers=self.stack.auth_headers())
            op.status = r.status_code
            try:
                op.body = r.json()
            except ValueError:
                op.body = None
            if op.body is None or not r.headers.get("Content-Type", "").startswith("application/json"):
                self.violation("%s %s: %d answer is not JSON (%r): %r" % (
                    method, path, r.status_code, r.headers.get("Content-Type"), r.text[:200]))
        except requests.RequestException as e:
            self.violation("%s %s: transport error %s" % (method, path, e))
        op.t1 = time.monotonic()
        with self.lock:
            self.ops.append(op)
        if op.status is None:
            return op
        if op.status >= 500:
            self.violation("%s %s: %d %r" % (method, path, op.status, op.body))
        elif op.status not in ALLOWED[op.kind]:
            self.violation("%s %s (%s): status %d not allowed %r" % (method, path, op.kind, op.status, op.body))
        elif op.status >= 400:
            code = ERROR_CODES.get(op.status)
            if not isinstance(op.body, dict) or op.body.get("code") != code or not op.body.get("message"):
                self.violation("%s %s: %d body is not {code: %s, message}: %r" % (method, path, op.status, code, op.body))
        return op

    def expect(self, op, status):
        if op.status != status:
            self.violation("c%d %s %s/%s: expected %d, got %s %r" % (op.client, op.kind, op.name, op.group,
                                                                  status, op.status, op.body))
        return op

    # -- request bodies -----------------------------------------------------
    def config_data(self, name, tag):
        if provider_of(name) == "aws":
            return {"masters": "3", "region": "us-west-2", "sshkey": tag, "sshkeydata": self.pem,
                    "master_type": "m3.large"}
        return {"masters": "3", "location": "Central US", "ssh_user": tag,
                "ssh_password": "Conc!Passw0rd", "master_type": "Basic_A2"}

    @staticmethod
    def config_tag(name, body):
        return body.get("sshkey") if provider_of(name) == "aws" else body.get("ssh_user")

    @staticmethod
    def group_data(name, group, role, cpus=8):
        data = {"name": group, "role": role, "attributes": '{"w":"%s"}' % role, "vars": "{}",
                "cpus": str(cpus), "ram": "16", "disk_size": "50"}
        data["instance_type"] = "m5.xlarge" if provider_of(name) == "aws" else "Standard_D11"
        return data


# ---------------------------------------------------------------- clients --

def own_script(world, session, i):
    """Steps on names only client i uses; statuses are exact."""
    name, tmp = "own%d" % i, "tmp%d" % i
    prov = provider_of(name)
    steps = []

    def step(kind, method, path, status, data=None, **kw):
        def run():
            op = world.do(session, Op(i, kind, name, **kw), method, path, data)
            world.expect(op, status)
            return op
        steps.append(run)

    def remember(key):
        def wrap(run):
            def inner():
                op = run()
                if op.acked:
                    world.own.setdefault(i, {})[key] = op.body
            return inner
        steps[-1] = wrap(steps[-1])

    base = "/clusters/" + name
    step("cluster.create", "POST", "/clusters", 201, {"name": name, "provider": prov, "type": "mesos"})
    step("cluster.create", "POST", "/clusters", 409, {"name": name, "provider": prov, "type": "dcos"})
    step("config.get", "GET", base + "/config", 404)
    step("config.put", "PUT", base + "/config", 200, world.config_data(name, "first%d" % i))
    step("config.put", "PUT", base + "/config", 200, world.config_data(name, "last%d" % i))
    remember("config")
    step("group.post", "POST", base + "/groups", 201, world.group_data(name, "ga", "one"))
    step("group.post", "POST", base + "/groups", 200, world.group_data(name, "ga", "two", cpus=16))
    step("group.post", "POST", base + "/groups", 201, world.group_data(name, "gb", "three"))
    step("group.put", "PUT", base + "/groups/gb", 409, world.group_data(name, "ga", "taken"))
    step("group.put", "PUT", base + "/groups/gb", 200, world.group_data(name, "gc", "four", cpus=24))
    remember("group")
    step("group.get", "GET", base + "/groups/gb", 404)
    step("group.delete", "DELETE", base + "/groups/ga", 200)
    step("group.delete", "DELETE", base + "/groups/ga", 404)
    tbase = "/clusters/" + tmp
    for round_ in range(2):
        step("cluster.create", "POST", "/clusters", 201, {"name": tmp, "provider": prov, "type": "dcos"})
        step("config.put", "PUT", tbase + "/config", 200, world.config_data(tmp, "tmp%dr%d" % (i, round_)))
        step("group.post", "POST", tbase + "/groups", 201, world.group_data(tmp, "gx", "tmp"))
        step("cluster.delete", "DELETE", tbase, 200)
        step("cluster.get", "GET", tbase, 404)
        step("group.list", "GET", tbase + "/groups", 404)
        step("config.get", "GET", tbase + "/config", 404)
    return steps


def shared_script(world, session, i, rng):
    """Random operations on the contended names."""
    steps = []
    for n in range(SHARED_OPS_PER_CLIENT):
        name = rng.choice(SHARED)
        base = "/clusters/" + name
        tag = "c%dn%d" % (i, n)               # identifies this write everywhere
        roll = rng.random()
        if roll < 0.16:
            args = ("cluster.create", "POST", "/clusters", {"name": name, "provider": provider_of(name), "type": "mesos"})
            kw = {}
        elif roll < 0.22:
            args, kw = ("cluster.delete", "DELETE", base, None), {}
        elif roll < 0.40:
            args, kw = ("config.put", "PUT", base + "/config", world.config_data(name, tag)), {"value": tag}
        elif roll < 0.44:
            args, kw = ("config.delete", "DELETE", base + "/config", None), {}
        elif roll < 0.64:
            g = rng.choice(SHARED_GROUPS)
            args = ("group.post", "POST", base + "/groups", world.group_data(name, g, tag))
            kw = {"group": g, "target": g, "value": tag}
        elif roll < 0.76:
            g, h = rng.choice(SHARED_GROUPS), rng.choice(SHARED_GROUPS)
            args = ("group.put", "PUT", "%s/groups/%s" % (base, g), world.group_data(name, h, tag))
            kw = {"group": g, "target": h, "value": tag}
        elif roll < 0.82:
            g = rng.choice(SHARED_GROUPS)
            args, kw = ("group.delete", "DELETE", "%s/groups/%s" % (base, g), None), {"group": g}
        else:
            kind = rng.choice(["cluster.get", "config.get", "group.list", "cluster.list", "group.get"])
            path = {"cluster.get": base, "config.get": base + "/config", "group.list": base + "/groups",
                    "cluster.list": "/clusters", "group.get": base + "/groups/ga"}[kind]
            args, kw = (kind, "GET", path, None), {}

        def run(args=args, kw=kw, name=name):
            kind, method, path, data = args
            world.do(session, Op(i, kind, name, **kw), method, path, data)
        steps.append(run)
    return steps


def client(world, i, barrier):
    rng = random.Random(1000 + i)
    session = requests.Session()
    own = own_script(world, session, i)
    shared = shared_script(world, session, i, rng)
    # Interleave the two scripts, keeping each one's order.
    order = [0] * len(own) + [1] * len(shared)
    rng.shuffle(order)
    try:
        barrier.wait(60)
    except threading.BrokenBarrierError:
        pass
    try:
        for which in order:
            if time.monotonic() > world.deadline:
                world.violation("client %d ran out of time" % i)
                return
            (own if which == 0 else shared).pop(0)()
    except Exception as e:  # a bug in the test itself must not pass silently
        world.violation("client %d crashed: %r" % (i, e))
    finally:
        session.close()


# ----------------------------------------------------------------- checks --

def get(stack, path):
    r = requests.get(stack.url(path), timeout=HTTP_TIMEOUT, headers=stack.auth_headers())
    return r.status_code, r.json()


def members(rc, key):
    """Members of an index key whatever its Redis type."""
    kind = rc.type(key)
    if kind == "set":
        return set(rc.smembers(key))
    if kind == "zset":
        return set(rc.zrange(key, 0, -1))
    if kind == "hash":
        return set(rc.hkeys(key))
    if kind == "list":
        return set(rc.lrange(key, 0, -1))
    if kind == "none":
        return set()
    raise AssertionError("dexter:clusters has unexpected type %s" % kind)


def later(ops, t):
    """Acknowledged ops that started after time t (so they follow it in any
    linearization)."""
    return [o for o in ops if o.acked and o.t0 > t]


def check_own(world, listed):
    stack = world.stack
    for i in range(CLIENTS):
        name = "own%d" % i
        assert name in listed, "%s missing from the list" % name
        assert "tmp%d" % i not in listed, "tmp%d was deleted but is listed" % i
        mine = world.own.get(i, {})
        status, cluster = get(stack, "/clusters/" + name)
        assert status == 200, (name, status, cluster)
        assert cluster["groups"] == ["gc"], "%s groups: %r" % (name, cluster["groups"])
        assert cluster["configured"] is True
        status, config = get(stack, "/clusters/%s/config" % name)
        assert status == 200 and config == mine["config"], \
            "%s config %r != last acknowledged %r" % (name, config, mine.get("config"))
        status, group = get(stack, "/clusters/%s/groups/gc" % name)
        assert status == 200 and group == mine["group"], \
            "%s group gc %r != last acknowledged %r" % (name, group, mine.get("group"))
        status, groups = get(stack, "/clusters/%s/groups" % name)
        assert status == 200 and groups["groups"] == [mine["group"]], (name, groups)


def check_shared(world, listed):
    stack = world.stack
    for name in SHARED:
        ops = [o for o in world.ops if o.name == name]
        creates = [o for o in ops if o.kind == "cluster.create" and o.status == 201]
        deletes = [o for o in ops if o.kind == "cluster.delete" and o.status == 200]
        if name not in listed:
            for path in ("", "/config", "/groups"):
                status, body = get(stack, "/clusters/" + name + path)
                assert status == 404, "%s%s of an unlisted cluster: %d %r" % (name, path, status, body)
            # Absent: every acknowledged create was followed by a delete.
            for c in creates:
                assert any(d.t1 > c.t0 for d in deletes), \
                    "%s is gone but nothing deleted it after the acknowledged %r" % (name, c)
            continue
        status, cluster = get(stack, "/clusters/" + name)
        assert status == 200, (name, status, cluster)
        assert cluster["provider"] == provider_of(name)
        # Present: it is one acknowledged creation, not deleted after it.
        origin = [c for c in creates if c.body.get("created_at") == cluster["created_at"]]
        assert origin, "%s created_at %r matches no acknowledged create" % (name, cluster["created_at"])
        origin = max(origin, key=lambda o: o.t0)   # two creates in one millisecond: the later one
        assert not later(deletes, origin.t1), \
            "%s exists although a delete was acknowledged after its creation" % name
        assert not later(creates, origin.t1), \
            "%s: a later create was acknowledged, yet the cluster is from %r" % (name, origin)
        since = origin.t0
        # Config: absent, or the value of an acknowledged write that nothing replaced.
        status, config = get(stack, "/clusters/%s/config" % name)
        assert status in (200, 404), (name, status, config)
        assert cluster["configured"] is (status == 200), (name, cluster, status)
        if status == 200:
            tag = World.config_tag(name, config)
            writes = [o for o in ops if o.kind == "config.put" and o.acked and o.value == tag]
            assert writes, "%s config %r was never acknowledged to anyone" % (name, config)
            w = writes[0]
            rivals = [o for o in ops if o.kind in ("config.put", "config.delete", "cluster.delete", "cluster.create")]
            assert not later(rivals, w.t1), \
                "%s config is %r, but later acknowledged ops %r should have replaced it" % (name, tag, later(rivals, w.t1)[:3])
            assert w.t1 > since, "%s config %r predates the cluster's creation (phantom)" % (name, tag)
        # Groups.
        status, groups = get(stack, "/clusters/%s/groups" % name)
        assert status == 200, (name, status, groups)
        names = [g["name"] for g in groups["groups"]]
        assert names == sorted(names) and names == cluster["groups"], \
            "%s: groups list %r vs cluster object %r" % (name, names, cluster["groups"])
        for g in groups["groups"]:
            status, one = get(stack, "/clusters/%s/groups/%s" % (name, g["name"]))
            assert status == 200 and one == g, (name, g["name"], status, one, g)
            writes = [o for o in ops if o.kind in ("group.post", "group.put") and o.acked
                      and o.value == g["role"] and o.target == g["name"]]
            assert writes, "%s group %s role %r was never acknowledged to anyone" % (name, g["name"], g["role"])
            w = writes[0]
            rivals = [o for o in ops if
                      (o.kind in ("group.post", "group.put") and o.target == g["name"]) or
                      (o.kind in ("group.delete", "group.put") and o.group == g["name"]) or
                      o.kind in ("cluster.delete", "cluster.create")]
            assert not later(rivals, w.t1), \
                "%s group %s is %r, but later acknowledged ops %r should have changed it" % (
                    name, g["name"], g["role"], later(rivals, w.t1)[:3])
            assert w.t1 > since, "%s group %s %r predates the cluster's creation (phantom)" % (name, g["name"], g["role"])
        for g in SHARED_GROUPS:
            if g not in names:
                status, body = get(stack, "/clusters/%s/groups/%s" % (name, g))
                assert status == 404, "%s group %s unlisted but GET says %d %r" % (name, g, status, body)


def check_redis(world, listed):
    rc = world.stack.redis_client()
    index = members(rc, "dexter:clusters")
    cluster_keys = set()
    tagged = {}
    for key in rc.scan_iter(match="dexter:*", count=1000):
        m = re.match(r"^dexter:\{([^}]*)\}:(.*)$", key)
        if not m:
            continue
        tagged.setdefault(m.group(1), []).append(key)
        if m.group(2) == "cluster":
            cluster_keys.add(m.group(1))
    assert index == set(listed), "dexter:clusters and the API list differ in %r" % sorted(index ^ set(listed))
    assert cluster_keys == set(listed), "dexter:{NAME}:cluster keys differ from the list: %r" % sorted(cluster_keys ^ set(listed))
    leftovers = {n: keys for n, keys in tagged.items() if n not in listed}
    assert not leftovers, "keys of deleted clusters remain: %r" % dict(list(leftovers.items())[:5])

    # Each listed cluster's keys agree with what the API shows (docs/redis.md).
    for name in listed:
        suffixes = {k.split(":", 2)[2] for k in tagged.get(name, [])}
        assert suffixes <= DOCUMENTED_KEYS, "%s has undocumented keys %r" % (name, suffixes - DOCUMENTED_KEYS)
        assert {"cluster", "deployment", "events"} <= suffixes, "%s lacks a key: %r" % (name, suffixes)
        status, _ = get(world.stack, "/clusters/%s/config" % name)
        assert ("config" in suffixes) == (status == 200), \
            "%s: config GET %d but config key %s" % (name, status, "present" if "config" in suffixes else "absent")
        assert ("secrets" in suffixes) == ("config" in suffixes), \
            "%s: secrets key without config or config without secrets: %r" % (name, suffixes)
        status, groups = get(world.stack, "/clusters/%s/groups" % name)
        stored = {g: json.loads(v) for g, v in rc.hgetall("dexter:{%s}:groups" % name).items()}
        assert stored == {g["name"]: g for g in groups["groups"]}, \
            "%s: groups hash %r != API groups %r" % (name, stored, groups["groups"])
    rc.close()


def test_two_hundred_concurrent_clients(stack_factory):
    stack = stack_factory(api_env={"DEXTER_API_TIMEOUT_MS": "60000"})
    world = World(stack, pem_b64())
    barrier = threading.Barrier(CLIENTS)
    threads = [threading.Thread(target=client, args=(world, i, barrier), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.1, world.deadline + 30 - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "clients still running after the deadline"
    assert not world.violations, "%d violations, first ones:\n%s" % (
        len(world.violations), "\n".join(world.violations[:25]))

    acked = sum(1 for o in world.ops if o.acked)
    assert len(world.ops) > CLIENTS * 20 and acked > CLIENTS * 15, (len(world.ops), acked)
    status, body = get(stack, "/clusters")
    assert status == 200 and body["count"] == len(body["clusters"])
    listed = [c["name"] for c in body["clusters"]]
    assert listed == sorted(listed) and len(set(listed)) == len(listed), listed
    assert set(listed) <= {"own%d" % i for i in range(CLIENTS)} | set(SHARED), listed
    check_own(world, listed)
    check_shared(world, listed)
    check_redis(world, listed)
    assert stack.scheduler.alive() and stack.api.alive()
