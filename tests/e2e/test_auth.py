"""Access control and request size limits (docs/api.md, "Requests").

- An api told to listen on a non-loopback address without DEXTER_API_TOKEN
  refuses to start: non-zero exit and a log line that says why.
- With DEXTER_API_TOKEN every request needs `Authorization: Bearer <token>`:
  missing or wrong -> 401 JSON UNAUTHORIZED with a WWW-Authenticate header,
  right -> served (connecting through 127.0.0.1 to an api bound to 0.0.0.0).
- Bodies over 1 MiB -> 413 TOO_LARGE, however they are sent.
"""
import os
import socket
import time

import requests

from conftest import BIN_DIR, Proc, free_port, wait_until

TOKEN = "s3cr3t-T0ken.for_e2e~tests"
MIB = 1024 * 1024
HTTP_TIMEOUT = 30


def json_error(r, status, code):
    assert r.status_code == status, "expected %d, got %d %s" % (status, r.status_code, r.text[:300])
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert body.get("code") == code and isinstance(body.get("message"), str) and body["message"], body
    return body


def start_api_expecting_exit(stack, extra_env, label):
    env = stack.env(extra_env)
    proc = Proc("api-" + label, [os.path.join(BIN_DIR, "dexter-api")], env,
                os.path.join(stack.dir, "api-%s.log" % label)).start()
    stack.procs.append(proc)      # its log is checked for sanitizer reports too
    try:
        wait_until(lambda: not proc.alive(), 15, "dexter-api to refuse to start (%s)" % label)
    finally:
        proc.kill()
    return proc


# ------------------------------------------------------------- refusals --

def test_non_loopback_without_token_refuses_to_start(stack_factory):
    stack = stack_factory(start=False)
    stack.start_redis()
    stack.start_scheduler()
    for label, addr in (("any", "0.0.0.0:%d" % free_port()),):
        proc = start_api_expecting_exit(stack, {"DEXTER_API_ADDR": addr}, label)
        rc = proc.popen.returncode
        assert rc is not None and rc != 0, "%s: dexter-api exited with %r" % (addr, rc)
        assert rc > 0, "%s: dexter-api died of signal %d instead of exiting" % (addr, -rc)
        log = proc.log()
        assert "DEXTER_API_TOKEN" in log, "%s: the log does not say DEXTER_API_TOKEN is needed:\n%s" % (addr, log[-2000:])
        port = int(addr.rsplit(":", 1)[1])
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, "something listens on %d after the refusal" % port


def test_loopback_without_token_is_open(stack):
    r = requests.get(stack.url("/clusters"), timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text


# ------------------------------------------------------------------ token --

def token_stack(stack_factory):
    stack = stack_factory(start=False)
    # Plain HTTP on every interface, as behind a TLS-terminating proxy
    # (test_tls.py covers the api's own HTTPS).
    stack.api_env.update({"DEXTER_API_TOKEN": TOKEN, "DEXTER_API_ADDR": "0.0.0.0:%d" % stack.api_port,
                          "DEXTER_API_INSECURE_HTTP": "1"})
    return stack.start()


def test_bearer_token_required(stack_factory):
    stack = token_stack(stack_factory)
    url = stack.url("/clusters")
    bad_headers = [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer " + TOKEN[:-1]},
        {"Authorization": "Bearer " + TOKEN + "x"},
        {"Authorization": "Bearer " + TOKEN.upper()},
        {"Authorization": "Basic " + TOKEN},
        {"Authorization": TOKEN},
        {"X-Api-Token": TOKEN},
    ]
    for headers in bad_headers:
        for method, path, data in (("GET", "/clusters", None),
                                   ("POST", "/clusters", {"name": "sneaky", "provider": "aws", "type": "mesos"}),
                                   ("DELETE", "/clusters/sneaky", None),
                                   ("GET", "/no/such/path", None)):
            r = requests.request(method, stack.url(path), headers=headers, data=data, timeout=HTTP_TIMEOUT)
            json_error(r, 401, "UNAUTHORIZED")
            challenge = r.headers.get("WWW-Authenticate", "")
            assert challenge.lower().startswith("bearer"), \
                "%s %s with %r: WWW-Authenticate is %r" % (method, path, headers, challenge)

    good = {"Authorization": "Bearer " + TOKEN}
    r = requests.get(url, headers=good, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    assert "sneaky" not in [c["name"] for c in r.json()["clusters"]], "an unauthenticated POST created a cluster"
    # The scheme name is case-insensitive (RFC 7235).
    r = requests.get(url, headers={"Authorization": "bearer " + TOKEN}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    r = requests.post(url, headers=good, data={"name": "allowed", "provider": "aws", "type": "mesos"},
                      timeout=HTTP_TIMEOUT)
    assert r.status_code == 201, r.text
    r = requests.get(stack.url("/clusters/allowed"), headers=good, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200 and r.json()["name"] == "allowed"
    # Authorized requests still get the ordinary errors.
    json_error(requests.get(stack.url("/clusters/nosuch"), headers=good, timeout=HTTP_TIMEOUT), 404, "NOT_FOUND")


# ------------------------------------------------------------ body limits --

def raw_request(port, head, body_chunks, timeout=20):
    """Sends a request by hand (for bodies requests cannot shape) and
    returns (status, headers, body) of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head)
        try:
            for chunk in body_chunks:
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass   # the server may answer and close before reading it all
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                part = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not part:
                break
            data += part
            head_end = data.find(b"\r\n\r\n")
            if head_end >= 0:
                headers = data[:head_end].decode("latin-1").split("\r\n")
                length = [int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:")]
                if length and len(data) >= head_end + 4 + length[0]:
                    break
    assert data, "no answer within %ds" % timeout
    head_end = data.find(b"\r\n\r\n")
    lines = data[:head_end].decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {h.split(":", 1)[0].lower(): h.split(":", 1)[1].strip() for h in lines[1:] if ":" in h}
    return status, headers, data[head_end + 4:]


def test_bodies_over_one_mebibyte(stack):
    headers = stack.auth_headers()
    url = stack.url("/clusters")
    # Just over the limit, as a form, as JSON, and on other write paths.
    form = b"name=" + b"a" * (MIB - 5 + 1)
    assert len(form) == MIB + 1
    for path, body, ctype in (("/clusters", form, "application/x-www-form-urlencoded"),
                              ("/clusters", b'{"name":"' + b"a" * MIB + b'"}', "application/json"),
                              ("/clusters/big/config", form, "application/x-www-form-urlencoded"),
                              ("/clusters/big/groups", form, None)):
        h = dict(headers)
        if ctype:
            h["Content-Type"] = ctype
        method = "PUT" if path.endswith("config") else "POST"
        r = requests.request(method, stack.url(path), data=body, headers=h, timeout=HTTP_TIMEOUT)
        json_error(r, 413, "TOO_LARGE")

    # Chunked (no Content-Length): the limit still holds.
    def chunks():
        for _ in range(17):
            yield b"b" * (64 * 1024)
    r = requests.post(url, data=chunks(), timeout=HTTP_TIMEOUT,
                      headers=dict(headers, **{"Content-Type": "application/x-www-form-urlencoded"}))
    json_error(r, 413, "TOO_LARGE")

    # A Content-Length far over the limit is refused without waiting for the body.
    auth = "".join("%s: %s\r\n" % kv for kv in headers.items())
    head = ("POST /api/v1.0/clusters HTTP/1.1\r\nHost: 127.0.0.1\r\n%s"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n"
            "Connection: close\r\n\r\n" % (auth, 64 * MIB)).encode()
    status, resp_headers, body = raw_request(stack.api_port, head, [b"name=" + b"c" * 1000])
    assert status == 413, (status, body[:200])

    # Exactly 1 MiB is not "over": it is read and judged (an invalid name here).
    exact = b"name=" + b"a" * (MIB - 5)
    assert len(exact) == MIB
    r = requests.post(url, data=exact, timeout=HTTP_TIMEOUT,
                      headers=dict(headers, **{"Content-Type": "application/x-www-form-urlencoded"}))
    json_error(r, 400, "INVALID")

    # And the api is unharmed.
    r = requests.get(url, headers=headers, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200 and "big" not in [c["name"] for c in r.json()["clusters"]]


def test_oversized_body_with_token(stack_factory):
    """With a token, an authorized oversized body is 413; an unauthorized
    one is refused either way (401 or 413) and never served."""
    stack = token_stack(stack_factory)
    good = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/x-www-form-urlencoded"}
    body = b"name=" + b"a" * MIB
    json_error(requests.post(stack.url("/clusters"), data=body, headers=good, timeout=HTTP_TIMEOUT),
               413, "TOO_LARGE")
    r = requests.post(stack.url("/clusters"), data=body, timeout=HTTP_TIMEOUT,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code in (401, 413), r.text[:300]
