"""The probes (docs/api.md, "Probes"): GET /healthz and GET /readyz on the
api, outside /api/v1.0 and without the token, and `dexter-scheduler
--probe`, the scheduler's health check (docker-compose.yml).

- /healthz is 200 {"status": "ok"} whatever else is down: it checks
  nothing but the api itself;
- /readyz is 200 only while the scheduler answers and its Redis serves,
  and its body names what is missing: `redis` while Redis is stopped (and
  200 again once it is back), `scheduler` while the scheduler is stopped;
  the workers of each service are counted, and none is no fault;
- the probes need no token, and open nothing else: the API still wants it;
- `dexter-scheduler --probe` exits 0 when its scheduler answers and Redis
  serves, 1 otherwise, saying why.
"""
import os
import subprocess

import requests

from conftest import BIN_DIR, wait_until

TOKEN = "t0ken-for-the-probes"


def root(stack, path):
    return "http://127.0.0.1:%d%s" % (stack.api_port, path)


def readyz(stack):
    r = requests.get(root(stack, "/readyz"), timeout=20)
    assert r.status_code in (200, 503), (r.status_code, r.text)
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Cache-Control"] == "no-store"
    body = r.json()
    assert set(body) == {"ready", "scheduler", "redis", "workers"}, body
    assert body["ready"] is (r.status_code == 200), (r.status_code, body)
    return r.status_code, body


def healthz(stack):
    r = requests.get(root(stack, "/healthz"), timeout=20)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok"}
    return r


def probe(stack):
    """dexter-scheduler --probe with the stack's settings: (status, output)."""
    out = subprocess.run([os.path.join(BIN_DIR, "dexter-scheduler"), "--probe"],
                         env=stack.env(), capture_output=True, text=True, timeout=30)
    return out.returncode, out.stdout + out.stderr


def test_ready_with_everything_up_and_workers_counted(stack_factory):
    stack = stack_factory(api_env={"DEXTER_API_TOKEN": TOKEN})
    status, body = readyz(stack)
    assert status == 200 and body["scheduler"] == "ok" and body["redis"] == "ok", body
    assert body["workers"] == {"aws": 0, "azure": 0, "vpn": 0}, body

    # Workers join: counted by service; no azure worker is no fault.
    stack.start_aws_worker()            # and a vpn worker with it
    stack.start_aws_worker()
    wait_until(lambda: readyz(stack)[1]["workers"] == {"aws": 2, "azure": 0, "vpn": 1}, 15,
               "two aws workers and a vpn worker in /readyz")
    status, body = readyz(stack)
    assert status == 200 and body["ready"] is True, body

    # One leaves: counted out.
    assert stack.aws_workers[1].stop() == 0
    wait_until(lambda: readyz(stack)[1]["workers"]["aws"] == 1, 15, "an aws worker gone from /readyz")

    # HEAD is GET without the body; OPTIONS lists the methods.
    head = requests.head(root(stack, "/readyz"), timeout=20)
    assert head.status_code == 200 and head.content == b""
    options = requests.options(root(stack, "/healthz"), timeout=20)
    assert options.status_code == 204
    assert options.headers["Allow"] == "GET, HEAD, OPTIONS"

    code, out = probe(stack)
    assert code == 0, out
    assert '"redis":"ok"' in out and '"aws":1' in out, out


def test_probes_need_no_token_and_open_nothing_else(stack_factory):
    stack = stack_factory(api_env={"DEXTER_API_TOKEN": TOKEN})
    healthz(stack)
    assert readyz(stack)[0] == 200
    assert requests.head(root(stack, "/healthz/"), timeout=20).status_code == 200
    # The API keeps its token; so does another method on a probe's path.
    r = requests.get(stack.url("/clusters"), timeout=20)
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED"
    r = requests.post(root(stack, "/healthz"), timeout=20)
    assert r.status_code == 401, r.text
    r = requests.post(root(stack, "/readyz"), headers=stack.auth_headers(), timeout=20)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD, OPTIONS", r.text
    # Not under the API's prefix, and nothing else outside it.
    r = requests.get(stack.url("/healthz"), headers=stack.auth_headers(), timeout=20)
    assert r.status_code == 404, r.text
    r = requests.get(root(stack, "/livez"), headers=stack.auth_headers(), timeout=20)
    assert r.status_code == 404, r.text
    r = requests.get(root(stack, "/healthz?verbose=1"), timeout=20)
    assert r.status_code == 400 and r.json()["field"] == "verbose", r.text


def test_redis_stopped_then_back(stack_factory):
    stack = stack_factory()
    assert readyz(stack)[0] == 200
    stack.redis.stop()

    status, body = readyz(stack)
    assert status == 503 and body["ready"] is False, body
    assert body["scheduler"] == "ok", body
    assert body["redis"].startswith("unreachable"), body
    # It says what is missing, not where: no address of Redis.
    assert str(stack.redis_port) not in body["redis"] and "127.0.0.1" not in body["redis"], body
    assert body["workers"] == {"aws": 0, "azure": 0, "vpn": 0}, body
    healthz(stack)
    code, out = probe(stack)
    assert code == 1 and "unreachable" in out, out

    stack.start_redis()                 # same port, same data
    wait_until(lambda: readyz(stack)[0] == 200, 15, "/readyz to be 200 with redis back")
    status, body = readyz(stack)
    assert body == {"ready": True, "scheduler": "ok", "redis": "ok",
                    "workers": {"aws": 0, "azure": 0, "vpn": 0}}, body
    code, out = probe(stack)
    assert code == 0, out


def test_scheduler_stopped_then_back(stack_factory):
    stack = stack_factory(api_env={"DEXTER_API_TIMEOUT_MS": "1000"})
    assert readyz(stack)[0] == 200
    assert stack.scheduler.stop() == 0

    status, body = readyz(stack)
    assert status == 503 and body["ready"] is False, body
    assert "did not answer within 1000 ms" in body["scheduler"], body
    assert body["redis"] == "unknown" and body["workers"] is None, body
    healthz(stack)
    code, out = probe(stack)
    assert code == 1 and "no answer" in out, out

    stack.start_scheduler()
    wait_until(lambda: readyz(stack)[0] == 200, 15, "/readyz to be 200 with the scheduler back")
    code, out = probe(stack)
    assert code == 0, out
