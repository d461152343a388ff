"""GET /metrics end to end (docs/metrics.md): a real redis-server,
dexter-scheduler, dexter-api and aws-worker on the fake EC2. The answer is
parsed with Debian's python3-prometheus-client (its text format parser);
the families and their types are the documented ones, label values are
bounded (no cluster name), histograms are consistent, and after a deploy
the values moved as they should: steps done by kind, the fake's own count
of RunInstances and other calls, the api's requests by route template and
code, the workers connected. The clusters by deployment state follow a
cluster from init through deploying, deployed, destroying and destroyed,
across a scheduler restart, to its delete. Also: the same auth as the API,
and DEXTER_METRICS=0 turns it off."""
import base64

import requests
from prometheus_client.parser import text_string_to_metric_families

from aws_helpers import api, deploy, hosts_for, pem_key, put_deployment, wait_deployment
from conftest import wait_until

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STATES = ("init", "deploying", "deployed", "deploy_failed", "destroying", "destroyed",
          "destroy_failed")

# Family (as the parser names it: a counter without _total) -> type
FAMILIES = {
    "dexter_api_requests": "counter",
    "dexter_api_request_duration_seconds": "histogram",
    "dexter_api_open_connections": "gauge",
    "dexter_api_scheduler_timeouts": "counter",
    "dexter_api_scheduler_scrape_ok": "gauge",
    "dexter_scheduler_clusters": "gauge",
    "dexter_scheduler_deployments": "gauge",
    "dexter_scheduler_deployments_finished": "counter",
    "dexter_scheduler_steps": "counter",
    "dexter_scheduler_jobs_queued": "gauge",
    "dexter_scheduler_jobs_running": "gauge",
    "dexter_scheduler_workers": "gauge",
    "dexter_scheduler_lease_expiries": "counter",
    "dexter_scheduler_redis_roundtrip_seconds": "histogram",
    "dexter_scheduler_redis_errors": "counter",
    "dexter_scheduler_redis_outbox": "gauge",
    "dexter_scheduler_cache_lookups": "counter",
    "dexter_cloud_calls": "counter",
    "dexter_cloud_call_duration_seconds": "histogram",
    "dexter_cloud_retries": "counter",
    "dexter_cloud_ratelimit_wait_seconds": "histogram",
}


class Scrape:
    """One /metrics answer, parsed."""

    def __init__(self, text):
        self.types, self.samples = {}, {}
        for family in text_string_to_metric_families(text):
            assert family.name not in self.types, "family %s twice" % family.name
            self.types[family.name] = family.type
            for s in family.samples:
                key = (s.name, frozenset(s.labels.items()))
                assert key not in self.samples, "sample %s %s twice" % key
                self.samples[key] = s.value

    def value(self, name, **labels):
        """The sum of the samples named name whose labels include labels."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and want <= ls)

    def labels(self):
        return {v for (_, ls) in self.samples for (_, v) in ls}


def scrape(stack, expect=200):
    r = requests.get("http://127.0.0.1:%d/metrics" % stack.api_port, headers=stack.auth_headers(),
                     timeout=10)
    assert r.status_code == expect, (r.status_code, r.text[:500])
    if expect != 200:
        return r
    assert r.headers["Content-Type"] == CONTENT_TYPE, r.headers
    return Scrape(r.text)


def check_histograms(s):
    """Every histogram series: buckets cumulative, +Inf == count."""
    series = {}
    for (name, ls), v in s.samples.items():
        if name.endswith("_bucket"):
            labels = dict(ls)
            le = labels.pop("le")
            series.setdefault((name[:-7], frozenset(labels.items())), []).append(
                (float("inf") if le == "+Inf" else float(le), v))
    assert series
    for (base, ls), buckets in series.items():
        buckets.sort()
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), (base, buckets)
        assert buckets[-1][0] == float("inf"), (base, buckets)
        assert s.samples[(base + "_count", ls)] == counts[-1], (base, ls)
        assert (base + "_sum", ls) in s.samples


def test_metrics_after_deploy(stack, tmp_path):
    stack.start_fake_ec2(latency_ms=5, seed=21)
    stack.start_aws_worker()
    before = wait_until(lambda: (lambda s: s if s.value("dexter_scheduler_workers", service="aws") == 1
                                 else None)(scrape(stack)), 20, "the aws worker in /metrics")
    for name, kind in FAMILIES.items():
        assert before.types.get(name) == kind, (name, before.types.get(name))
    assert all(name.startswith("dexter_") for name in before.types), before.types
    assert before.value("dexter_api_scheduler_scrape_ok") == 1
    assert before.value("dexter_api_open_connections") >= 1

    name = "metrics1"
    pem = pem_key(str(tmp_path / "key.pem"))
    api(stack, "POST", "/clusters", 201, data={"name": name, "provider": "aws", "type": "mesos"})
    api(stack, "PUT", "/clusters/%s/config" % name, 200,
        data={"master_type": "m5.large", "masters": "1", "region": "us-west-2", "sshkey": name + "-key",
              "sshkeydata": base64.urlsafe_b64encode(pem.encode()).decode()})
    api(stack, "POST", "/clusters/%s/groups" % name, 201,
        json={"name": "g1", "role": "*", "attributes": {}, "vars": {}, "instance_type": "m5.large",
              "cpus": 4, "ram": 8, "disk_size": 20})
    agents = hosts_for("m5.large", 4, 8)
    api(stack, "GET", "/clusters/nosuch", 404)
    deploy(stack, name)
    hosts = 1 + 1 + agents                      # access node, master, agents

    def settled():
        # the worker's counts reach the scheduler with its next heartbeat
        # (the fake is read first: the worker may still be polling, and a
        # scrape taken after the fake's count is never behind it when settled)
        ok = stack.fake_calls()["by_action_ok"]
        s = scrape(stack)
        return s if all(s.value("dexter_cloud_calls_total", provider="aws", action=action,
                                outcome="ok") == ok.get(action) for action in ok) else None
    after = wait_until(settled, 20, "the worker's cloud calls in /metrics")

    def delta(name, **labels):
        return after.value(name, **labels) - before.value(name, **labels)

    # Steps: each kind done as often as the plan has it, and started as often
    steps = "dexter_scheduler_steps_total"
    assert delta(steps, provider="aws", kind="host", event="done") == hosts
    for kind in ("network", "security", "image", "keypair"):
        assert delta(steps, provider="aws", kind=kind, event="done") == 1, kind
    assert delta(steps, provider="aws", event="started") == delta(steps, provider="aws", event="done")
    assert delta(steps, event="failed") == 0
    assert delta("dexter_scheduler_deployments_finished_total", provider="aws", state="deployed") == 1
    assert after.value("dexter_scheduler_deployments", state="deploying") == 0
    assert after.value("dexter_scheduler_deployments", state="deployed") == 1
    assert after.value("dexter_scheduler_jobs_running") == 0
    assert after.value("dexter_scheduler_jobs_queued") == 0
    assert after.value("dexter_scheduler_clusters") == 1

    # Cloud calls: the fake's own counts of what succeeded, action by action
    ok = stack.fake_calls()["by_action_ok"]
    assert ok.get("RunInstances") == hosts, ok
    for action in ("CreateVpc", "RunInstances", "DescribeInstances", "ImportKeyPair"):
        assert after.value("dexter_cloud_calls_total", provider="aws", action=action,
                           outcome="ok") == ok.get(action), (action, ok)
    assert after.value("dexter_cloud_call_duration_seconds_count", provider="aws") == \
        after.value("dexter_cloud_calls_total", provider="aws")

    # The api: requests by route template and code
    route = "/api/v1.0/clusters/{name}/deployment"
    assert delta("dexter_api_requests_total", route=route, method="PUT", code="202") == 1
    assert delta("dexter_api_requests_total", route=route, method="GET", code="200") >= 1
    assert delta("dexter_api_requests_total", route="/api/v1.0/clusters", method="POST", code="201") == 1
    assert delta("dexter_api_requests_total", route="/api/v1.0/clusters/{name}", method="GET",
                 code="404") == 1
    assert delta("dexter_api_requests_total", route="/metrics", method="GET", code="200") >= 1
    assert delta("dexter_api_request_duration_seconds_count", route=route, method="PUT") == 1
    assert delta("dexter_scheduler_redis_roundtrip_seconds_count") > 0
    assert after.value("dexter_scheduler_workers", service="aws") == 1

    # Bounded labels: no cluster or group name, no path
    assert not after.labels() & {name, "g1", "nosuch", "/api/v1.0/clusters/metrics1"}, after.labels()
    check_histograms(after)


def by_state(s):
    """{state: clusters} of dexter_scheduler_deployments: every state there."""
    found = {dict(ls)["state"]: v for (n, ls), v in s.samples.items()
             if n == "dexter_scheduler_deployments"}
    assert set(found) == set(STATES), found
    return found


def states_are(stack, **counts):
    """Scrapes until the clusters by state are counts (the others 0)."""
    want = {state: counts.get(state, 0) for state in STATES}
    return wait_until(lambda: (lambda s: s if by_state(s) == want else None)(scrape(stack)), 20,
                      "clusters by state %s in /metrics" % counts)


def test_deployments_by_state(stack, tmp_path):
    """Every cluster counted in the state of its deployment: a deploy and a
    destroy held in deploying and destroying while no aws worker is there,
    and ending once one is; a restarted scheduler counts the same from the
    start; a deleted cluster is counted no more."""
    stack.start_fake_ec2(latency_ms=5, seed=22)
    assert by_state(scrape(stack)) == {state: 0 for state in STATES}
    name = "states1"
    pem = pem_key(str(tmp_path / "key.pem"))
    api(stack, "POST", "/clusters", 201, data={"name": name, "provider": "aws", "type": "mesos"})
    api(stack, "POST", "/clusters", 201, data={"name": "idle", "provider": "aws", "type": "mesos"})
    api(stack, "PUT", "/clusters/%s/config" % name, 200,
        data={"master_type": "m5.large", "masters": "1", "region": "us-west-2", "sshkey": name + "-key",
              "sshkeydata": base64.urlsafe_b64encode(pem.encode()).decode()})
    api(stack, "POST", "/clusters/%s/groups" % name, 201,
        json={"name": "g1", "role": "*", "attributes": {}, "vars": {}, "instance_type": "m5.large",
              "cpus": 2, "ram": 4, "disk_size": 20})
    states_are(stack, init=2)

    # No aws worker yet: the deploy waits in deploying
    gen = put_deployment(stack, name)["generation"]
    states_are(stack, init=1, deploying=1)
    worker = stack.start_aws_worker()
    wait_deployment(stack, name, gen)
    s = states_are(stack, init=1, deployed=1)
    assert s.value("dexter_scheduler_deployments_finished_total", state="deployed") == 1

    # The worker gone, the destroy waits in destroying
    assert worker.stop() == 0
    wait_until(lambda: scrape(stack).value("dexter_scheduler_workers", service="aws") == 0, 20,
               "the aws worker gone from /metrics")
    gen = put_deployment(stack, name, "destroy")["generation"]
    states_are(stack, init=1, destroying=1)
    stack.start_aws_worker()
    wait_deployment(stack, name, gen, "destroy")
    states_are(stack, init=1, destroyed=1)

    # A restarted scheduler counts them from its first scrape
    assert stack.scheduler.stop() == 0
    stack.start_scheduler()
    s = wait_until(lambda: (lambda s: s if s.value("dexter_api_scheduler_scrape_ok") == 1
                            else None)(scrape(stack)), 20, "the restarted scheduler in /metrics")
    assert by_state(s) == dict({state: 0 for state in STATES}, init=1, destroyed=1)

    api(stack, "DELETE", "/clusters/%s" % name, 200)
    api(stack, "DELETE", "/clusters/idle", 200)
    states_are(stack)


def test_metrics_auth_and_off(stack_factory):
    token = "metrics-token-0123456789abcdef"
    guarded = stack_factory(api_env={"DEXTER_API_TOKEN": token})
    r = requests.get("http://127.0.0.1:%d/metrics" % guarded.api_port, timeout=10)
    assert r.status_code == 401, r.text
    s = scrape(guarded)
    assert s.value("dexter_api_requests_total", route="/metrics", code="401") == 1
    # A path under /metrics is no route; a POST is refused with the allowed methods
    r = requests.post("http://127.0.0.1:%d/metrics" % guarded.api_port, headers=guarded.auth_headers(),
                      timeout=10)
    assert r.status_code == 405 and "GET" in r.headers["Allow"], (r.status_code, r.headers)

    off = stack_factory(api_env={"DEXTER_METRICS": "0"})
    scrape(off, expect=404)
    api(off, "GET", "/clusters", 200)
