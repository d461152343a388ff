"""Big clusters and long lists against the real processes: no request holds
the scheduler's loop for long (docs/api.md, "Validation" and `/clusters`).

- The host cap: a cluster's groups hold at most 5000 hosts together; a group
  POST or PUT past it, and a deploy of a cluster that holds more (groups
  written before the cap), are a 400 naming `hosts`.
- A deploy of 5000 hosts (no worker connected, so no cloud work happens) is
  accepted with its step count at once and planned a slice at a time: GETs
  of another cluster are answered while the plan is incomplete, and the plan
  recorded at the end is whole. A forced DELETE of the cluster answers, and
  the name can be used again.
- A list of 10,000 clusters answers every one, and GETs of one cluster sent
  beside it are answered while it is built; pages (`?limit=&after=`) walk the same
  clusters in name order.

Only order is asserted (what was answered while what was still going on),
never a duration: the figures are bench/slices/'s (docs/BENCHMARKS.md).
"""
import json
import threading
import time

import requests

from aws_helpers import api, put_deployment
from conftest import FAKE_KEY_ID, FAKE_SECRET

GROUP_HOSTS = 1000          # common/dx_spec.h DX_GROUP_HOSTS_MAX
CLUSTER_HOSTS = 5000        # common/dx_spec.h DX_CLUSTER_HOSTS_MAX
HTTP_TIMEOUT = 120
LIST_CLUSTERS = 10000

KEY_B64 = (  # an unencrypted OpenSSH key of filler bytes (tests/unit/harness.h TH_SSH_KEY_B64)
    "LS0tLS1CRUdJTiBPUEVOU1NIIFBSSVZBVEUgS0VZLS0tLS0KYjNCbGJuTnphQzFyWlhrdGRqRUFBQUFB"
    "Qkc1dmJtVUFBQUFFYm05dVpRQUFBQUFBQUFBQkFBQUFNd0FBQUF0emMyZ3RaVwpReU5UVXhPUUFBQUNB"
    "QUFRSURCQVVHQndnSkNnc01EUTRQRUJFU0V4UVZGaGNZR1JvYkhCMGVId0FBQUJ0YVdscGFXbHBhClBM"
    "QUlOUEVNTUFSS0VSN3FXbHBhV2xwYVdsbz0KLS0tLS1FTkQgT1BFTlNTSCBQUklWQVRFIEtFWS0tLS0t"
    "Cg==")


def make_cluster(stack, name, groups):
    """A configured aws cluster with `groups` groups of 1000 r3.xlarge hosts
    (4 vCPUs each)."""
    api(stack, "POST", "/clusters", 201, data={"name": name, "provider": "aws", "type": "mesos"})
    api(stack, "PUT", "/clusters/%s/config" % name, 200,
        json={"master_type": "m3.large", "masters": 3, "region": "us-west-2",
              "sshkey": "big", "sshkeydata": KEY_B64})
    for i in range(groups):
        _, body = api(stack, "POST", "/clusters/%s/groups" % name, 201, json=group("g%d" % i))
        assert body["hosts"] == GROUP_HOSTS, body


def group(name, hosts=GROUP_HOSTS):
    return {"name": name, "role": "*", "attributes": {}, "vars": {}, "instance_type": "r3.xlarge",
            "cpus": 4 * hosts, "ram": 8, "disk_size": 20}


class Getter(threading.Thread):
    """GETs one cluster over and over until stopped; keeps (monotonic time
    of the answer, status) of each."""

    def __init__(self, stack, path):
        super().__init__(daemon=True)
        self.stack, self.path = stack, path
        self.answers = []
        self.stop = threading.Event()

    def run(self):
        with requests.Session() as s:
            while not self.stop.is_set():
                r = s.get(self.stack.url(self.path), timeout=HTTP_TIMEOUT,
                          headers=self.stack.auth_headers())
                self.answers.append((time.monotonic(), r.status_code))

    def between(self, start, end):
        """Statuses of the answers that came between start and end."""
        return [status for t, status in self.answers if start <= t <= end]

    def finish(self):
        self.stop.set()
        self.join(HTTP_TIMEOUT)
        assert not self.is_alive()
        assert self.answers and all(status == 200 for _, status in self.answers), \
            [a for a in self.answers if a[1] != 200][:5]


def test_host_cap(stack):
    make_cluster(stack, "capped", CLUSTER_HOSTS // GROUP_HOSTS)
    status, body = api(stack, "POST", "/clusters/capped/groups", json=group("extra", 1))
    assert status == 400 and body["code"] == "INVALID" and body["field"] == "hosts", body
    assert "5000" in body["message"], body
    # In place of the group it replaces, a group counts once
    api(stack, "PUT", "/clusters/capped/groups/g0", 200, json=group("g0"))
    api(stack, "PUT", "/clusters/capped/groups/g1", 200, json=group("g1", GROUP_HOSTS // 2))
    api(stack, "POST", "/clusters/capped/groups", 201, json=group("extra", GROUP_HOSTS // 2))
    status, body = api(stack, "PUT", "/clusters/capped/groups/g1", json=group("g1"))
    assert status == 400 and body["field"] == "hosts", body
    # Groups written before the cap: the deploy is refused, saying why
    r = stack.redis_client()
    r.hset("dexter:{capped}:groups", "old", '{"name":"old","hosts":7}')
    status, body = api(stack, "PUT", "/clusters/capped/deployment",
                       data={"command": "deploy", "aws_access_key_id": FAKE_KEY_ID,
                             "aws_secret_access_key": FAKE_SECRET})
    assert status == 400 and body["field"] == "hosts" and "5007" in body["message"], body
    assert r.hget("dexter:{capped}:deployment", "state") == "init"


def test_deploy_planned_between_requests(stack):
    make_cluster(stack, "big", CLUSTER_HOSTS // GROUP_HOSTS)
    api(stack, "POST", "/clusters", 201, data={"name": "other", "provider": "aws", "type": "mesos"})
    getter = Getter(stack, "/clusters/other")
    getter.start()
    try:
        wait_answers(getter, 3)
        body = put_deployment(stack, "big")
        accepted = time.monotonic()
        steps = body["progress"]["steps_total"]
        assert steps == 4 + 2 + 1 + 3 + CLUSTER_HOSTS, body   # leading, vpn, access, masters
        assert body["state"] == "deploying", body
        # Until the plan is whole the record says how far it is
        seen_planning = False
        deadline = time.monotonic() + 600
        while True:
            _, d = api(stack, "GET", "/clusters/big/deployment", 200)
            current = d["progress"]["current"] or ""
            if not current.startswith("planning"):
                break
            seen_planning = True
            assert time.monotonic() < deadline, d
            time.sleep(0.02)
        planned = time.monotonic()
    finally:
        getter.finish()
    assert seen_planning, "the plan of %d steps was never seen in the making" % steps
    assert getter.between(accepted, planned), "no GET was answered while the plan was made"
    r = stack.redis_client()
    assert r.hlen("dexter:{big}:jobs") == steps
    assert int(r.hget("dexter:{big}:deployment", "steps_total")) == steps
    orders = sorted(json.loads(job)["order"] for job in r.hvals("dexter:{big}:jobs"))
    assert orders == list(range(steps))
    _, d = api(stack, "GET", "/clusters/big/deployment", 200)
    assert d["state"] == "deploying" and d["progress"]["steps_done"] == 0, d
    assert "no aws worker" in (d["waiting"] or ""), d

    # A forced delete of the whole plan answers; the name is free again
    api(stack, "DELETE", "/clusters/big?force=true", 200)
    api(stack, "GET", "/clusters/big", 404)
    assert not r.exists("dexter:{big}:jobs", "dexter:{big}:deployment")
    api(stack, "POST", "/clusters", 201, data={"name": "big", "provider": "aws", "type": "mesos"})
    api(stack, "GET", "/clusters/other", 200)


def wait_answers(getter, count, timeout=60):
    deadline = time.monotonic() + timeout
    while len(getter.answers) < count:
        assert time.monotonic() < deadline, "the getter got no answer"
        time.sleep(0.01)


def test_long_list_lets_requests_through(stack):
    # Written as the scheduler writes them (docs/redis.md), in one pipeline:
    # 10,000 POSTs would take minutes under ASan
    r = stack.redis_client()
    pipe = r.pipeline(transaction=False)
    for i in range(LIST_CLUSTERS):
        name = "c%05d" % i
        pipe.hset("dexter:{%s}:cluster" % name, mapping={
            "name": name, "provider": "aws", "type": "mesos", "state": "init",
            "created_at": "2026-12-07T00:00:00.000Z", "updated_at": "2026-12-07T00:00:00.000Z"})
        pipe.zadd("dexter:clusters", {name: 0})
    pipe.execute()
    api(stack, "POST", "/clusters", 201, data={"name": "probe", "provider": "azure", "type": "dcos"})
    total = LIST_CLUSTERS + 1

    lists = []

    def list_all():
        lists.append(api(stack, "GET", "/clusters", timeout=HTTP_TIMEOUT))
    getter = Getter(stack, "/clusters/probe")
    getter.start()
    try:
        wait_answers(getter, 3)
        started = time.monotonic()
        threads = [threading.Thread(target=list_all) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(HTTP_TIMEOUT)
        listed = time.monotonic()
    finally:
        getter.finish()
    assert len(lists) == 4
    for status, body in lists:
        assert status == 200 and body["count"] == total and len(body["clusters"]) == total
        names = [c["name"] for c in body["clusters"]]
        assert names == sorted(names) and "probe" in names
        assert "next" not in body
    assert getter.between(started, listed), "no GET was answered while the lists were built"

    # Pages of 1000 walk the same clusters, in the same order
    seen, after = [], None
    while True:
        params = {"limit": 1000}
        if after:
            params["after"] = after
        _, page = api(stack, "GET", "/clusters", 200, params=params)
        assert page["count"] == len(page["clusters"]) <= 1000
        seen += [c["name"] for c in page["clusters"]]
        after = page["next"]
        if after is None:
            break
        assert after == seen[-1]
    assert seen == names
    for query, field in (("limit=0", "limit"), ("limit=1001", "limit"), ("after=Nope", "after"),
                         ("limit=5&page=2", "page")):
        status, body = api(stack, "GET", "/clusters?" + query)
        assert status == 400 and body["field"] == field, (query, body)
