"""The HTTP edge under attack (docs/api.md "Errors", docs/api-service.md
"The edge"): each attack an attacker on the same host could make, over raw
sockets (HTTP libraries tidy up what they send), and what the api must do.

- A query of hundreds of parameters: 414 URI_TOO_LONG, nothing leaked
  (LeakSanitizer reads the api's exit); more than 64 header fields: 431.
- 990 connections each declaring a 1 MiB body and sending 1 KiB: memory
  grows with the bytes received, not with the bytes declared.
- 1,000 connections sending a byte at a time: one source address holds at
  most DEXTER_API_CONNECTIONS_PER_IP of them, ordinary requests are served
  meanwhile, and each is cut off at DEXTER_API_REQUEST_DEADLINE_MS.
- A NUL in the request line, raw or %00: 400, nothing done.
- A repeated Content-Length, a Transfer-Encoding other than chunked, an
  HTTP version other than 1.0 and 1.1: a 4xx or 505 and the connection
  closed, so no second request hides in the body.
- ?after= beyond 64-bit stream ids: 400; no 5xx carries the store's text;
  an encoded '/' is part of a name, not a path separator.

After each attack the api's RSS comes back to within 10 % of what it was
before (measured once the attack's connections have closed).
"""
import json
import os
import resource
import shutil
import socket
import tempfile
import threading
import time

import pytest
import requests

from conftest import Stack, wait_until

TOKEN = "edge-T0ken"
DEADLINE_MS = 3000
PER_IP = 64
# Under ASan a freed block waits in a quarantine (256 MB by default) before
# it can be given back, so the RSS would say nothing of what the api holds.
# Here it goes back at once; LeakSanitizer still reads the api's exit.
ASAN = ("detect_leaks=1:halt_on_error=1:quarantine_size_mb=0:"
        "thread_local_quarantine_size_kb=0:allocator_release_to_os_interval_ms=0")
EDGE_ENV = {"DEXTER_API_TOKEN": TOKEN, "DEXTER_API_REQUEST_DEADLINE_MS": str(DEADLINE_MS),
            "DEXTER_API_CONNECTIONS_PER_IP": str(PER_IP), "ASAN_OPTIONS": ASAN}
AUTH = "Authorization: Bearer %s\r\n" % TOKEN
RSS_SLACK = 1.10


# ---------------------------------------------------------------- helpers --

def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def open_sockets(pid):
    count = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            count += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
        except OSError:
            pass
    return count


def crowd(port, count, per_source, first_source):
    """count non-blocking connections to the api, per_source of them from
    each loopback address 127.0.0.<first_source>, <first_source + 1>, ..."""
    socks = []
    for i in range(count):
        s = socket.socket()
        s.bind(("127.0.0.%d" % (first_source + i // per_source), 0))
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        socks.append(s)
    return socks


def closed_by_peer(sock):
    """True if the api has closed sock (end of input or reset), without waiting."""
    try:
        return sock.recv(65536, socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


def parse_answer(data):
    """(status, headers with lower-case names, body, the bytes after it)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep, "no complete answer in %r" % data[:300]
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict((k.strip().lower(), v.strip()) for k, v in (l.split(":", 1) for l in lines[1:]))
    length = int(headers.get("content-length", "0"))
    return status, headers, rest[:length], rest[length:]


def ask_closed(stack, raw, timeout=5):
    """Sends raw on a new connection and reads until the api closes it,
    which it must within timeout. Returns parse_answer of what came."""
    data = b""
    with socket.create_connection(("127.0.0.1", stack.api_port), timeout=timeout) as s:
        s.sendall(raw)
        deadline = time.monotonic() + timeout
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                chunk = None
            except ConnectionResetError:
                chunk = b""
            if chunk == b"":
                break
            assert chunk is not None and time.monotonic() < deadline, \
                "the api kept the connection open %ss after %r; it sent %r" % (timeout, raw[:80], data[:300])
            data += chunk
    assert data, "the api closed the connection without an answer to %r" % raw[:80]
    return parse_answer(data)


def assert_error(answer, status, code):
    got, headers, body, _ = answer
    assert got == status, "expected %d, got %d %r" % (status, got, body[:300])
    assert headers.get("content-type") == "application/json", headers
    error = json.loads(body)
    assert error["code"] == code and error["message"], error
    return error


def call(stack, method, path, **kw):
    return requests.request(method, stack.url(path), headers=stack.auth_headers(), timeout=10, **kw)


def create_cluster(stack, name):
    r = call(stack, "POST", "/clusters", data={"name": name, "provider": "aws", "type": "mesos"})
    assert r.status_code == 201, r.text


def settle(stack, sockets):
    """Waits until the api holds no more sockets than it did before an
    attack (its connections are closed), then asks a few ordinary requests:
    allocators give freed pages back as they go on allocating."""
    wait_until(lambda: open_sockets(stack.api.pid) <= sockets, 15,
               "the api to close the attack's connections")
    for _ in range(5):
        assert call(stack, "GET", "/clusters").status_code == 200


def assert_rss_back(stack, start_kib, sockets, what):
    settle(stack, sockets)
    # Trimming the heap follows the last close by a moment (api_http.c).
    try:
        wait_until(lambda: rss_kib(stack.api.pid) <= start_kib * RSS_SLACK, 5,
                   "the RSS to come back")
    except AssertionError:
        raise AssertionError("after %s the api's RSS is %d KiB, more than 10 %% over the "
                             "%d KiB before" % (what, rss_kib(stack.api.pid), start_kib))


@pytest.fixture(scope="module")
def nofile():
    """Room for a thousand connections and more, in this process and in the
    apis it starts (they inherit the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(4096, hard)), hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= 2500, \
        "cannot raise the descriptor limit to open a thousand connections"
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture(scope="module")
def edge(nofile):
    """One stack for the attacks: token, a short deadline, a small cap per
    source. The first crowd of connections makes the allocators map what
    they keep for the next (under ASan, the shadow of that memory too), so
    one comes and goes before any RSS is taken."""
    d = tempfile.mkdtemp(prefix="dexter-e2e-")
    stack = Stack(d, api_env=EDGE_ENV)
    try:
        stack.start()
        sockets = open_sockets(stack.api.pid)
        socks = crowd(stack.api_port, 700, PER_IP, 100)
        for s in socks:
            try:
                s.send(b"GET /api/v1.0/clu")
            except OSError:
                pass
        time.sleep(0.5)
        for s in socks:
            s.close()
        settle(stack, sockets)
        yield stack
    finally:
        try:
            stack.stop()
        finally:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(autouse=True)
def rss_returns(request):
    """After each attack on the module's stack the RSS comes back."""
    if "edge" not in request.fixturenames:
        yield
        return
    stack = request.getfixturevalue("edge")
    sockets = open_sockets(stack.api.pid)
    start = rss_kib(stack.api.pid)
    yield
    assert_rss_back(stack, start, sockets, request.node.name)


# ------------------------------------------------------- 2. query, headers --

def test_long_query_is_414_and_leaks_nothing(edge):
    # Before auth: no token.
    query = "&".join("p%d=1" % i for i in range(300))
    raw = ("GET /api/v1.0/clusters?%s HTTP/1.1\r\nHost: x\r\n\r\n" % query).encode()
    assert_error(ask_closed(edge, raw), 414, "URI_TOO_LONG")
    query17 = "&".join("p%d=1" % i for i in range(17))
    assert_error(ask_closed(edge, ("GET /api/v1.0/clusters?%s HTTP/1.1\r\nHost: x\r\n\r\n"
                                   % query17).encode()), 414, "URI_TOO_LONG")
    assert_error(ask_closed(edge, ("GET /api/v1.0/clusters/%s HTTP/1.1\r\nHost: x\r\n\r\n"
                                   % ("a" * 3000)).encode()), 414, "URI_TOO_LONG")

    # Many of them, from several clients at once: every one answered, and
    # nothing kept (the RSS check after the test, LeakSanitizer at exit).
    failures = []

    def client():
        for _ in range(500):
            try:
                status = ask_closed(edge, raw)[0]
            except (AssertionError, OSError) as e:
                failures.append(str(e))
                return
            if status != 414:
                failures.append("answered %d" % status)
                return
    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "clients still running"
    assert not failures, failures[:5]


def test_header_limits(edge):
    fields = "".join("X-Field-%d: 1\r\n" % i for i in range(100))
    raw = ("GET /api/v1.0/clusters HTTP/1.1\r\nHost: x\r\n%s%s\r\n" % (AUTH, fields)).encode()
    assert_error(ask_closed(edge, raw), 431, "HEADERS_TOO_LARGE")
    # More than a connection's memory holds: libmicrohttpd's own 431 (not
    # JSON), and the connection closed.
    raw = ("GET /api/v1.0/clusters HTTP/1.1\r\nHost: x\r\nX-Large: %s\r\n\r\n" % ("a" * 20000)).encode()
    assert ask_closed(edge, raw)[0] == 431


# -------------------------------------------------- 3. declared, not sent --

def minor_faults(pid):
    """Pages the process has touched for the first time (or again, once
    given back): field 10 of /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


def test_declared_length_is_not_allocated(nofile, stack_factory):
    # Its own api: no cap per source and a deadline longer than the attack,
    # so that all 990 connections stay open until the client closes them.
    stack = stack_factory(api_env=dict(EDGE_ENV, DEXTER_API_CONNECTIONS_PER_IP="0",
                                       DEXTER_API_REQUEST_DEADLINE_MS="120000"))
    head = ("POST /api/v1.0/clusters HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % (AUTH, 1024 * 1024)).encode()
    sockets = open_sockets(stack.api.pid)

    def attack():
        socks = crowd(stack.api_port, 990, 990, 2)
        time.sleep(0.5)
        for s in socks:
            s.setblocking(True)
            s.sendall(head + b"{" + b" " * 1023)
        time.sleep(1)
        for s in socks:
            s.close()
        settle(stack, sockets)

    attack()                # the first crowd maps what the allocators keep
    start = rss_kib(stack.api.pid)
    faults = minor_faults(stack.api.pid)
    attack()
    # What the api touched: per connection its 16 KiB memory pool, its
    # context and the kilobyte received; not the megabyte declared, neither
    # when the body buffer is made nor when it is wiped.
    touched = (minor_faults(stack.api.pid) - faults) * resource.getpagesize() // 1024
    assert touched < 990 * 64, \
        "the api touched %d KiB for 990 connections that sent 1 KiB each" % touched
    assert_rss_back(stack, start, sockets, "990 connections declaring 1 MiB")


# ------------------------------------------------------------ 4. slowloris --

def test_slow_clients_are_cut_off(edge):
    # 1,000 connections from ten addresses, each sending its request a byte
    # at a time: the head, or, for one in ten, the head at once and then
    # the body. The cap per source holds 10 x 64 of them.
    get = ("GET /api/v1.0/clusters HTTP/1.1\r\nHost: x\r\n%s\r\n" % AUTH).encode()
    post = ("POST /api/v1.0/clusters HTTP/1.1\r\nHost: x\r\n%sContent-Length: 40\r\n\r\n"
            % AUTH).encode()
    socks = crowd(edge.api_port, 1000, 100, 2)
    heads = [post if i % 10 == 0 else b"" for i in range(len(socks))]
    slow = [b"n" * 40 if i % 10 == 0 else get for i in range(len(socks))]
    sent = [0] * len(socks)
    alive = set(range(len(socks)))
    started = time.monotonic()
    time.sleep(0.3)

    def trickle():
        """One more byte on each connection the api has not closed (never
        the last of a request: none may arrive whole)."""
        for i in list(alive):
            if closed_by_peer(socks[i]):
                alive.discard(i)
                continue
            try:
                if heads[i]:
                    socks[i].sendall(heads[i])
                    heads[i] = b""
                if sent[i] < len(slow[i]) - 1:
                    sent[i] += socks[i].send(slow[i][sent[i]:sent[i] + 1])
            except BlockingIOError:
                pass
            except OSError:
                alive.discard(i)
    try:
        trickle()
        time.sleep(0.5)
        trickle()
        held = len(alive)
        assert held <= 10 * PER_IP, "%d slow connections held, more than %d per source" % (held, PER_IP)
        assert held >= 5 * PER_IP, "only %d slow connections held" % held
        # Ordinary requests keep being answered while the slow ones trickle.
        served = 0
        while time.monotonic() - started < DEADLINE_MS / 1000.0 - 0.5:
            r = call(edge, "GET", "/clusters")
            assert r.status_code == 200, r.text
            served += 1
            trickle()
            time.sleep(0.2)
        assert served, "no ordinary request was answered before the deadline"

        # Then each slow one is cut off at its deadline.
        def all_cut():
            trickle()
            return not alive
        wait_until(all_cut, DEADLINE_MS / 1000.0 + 5, "the slow connections to be cut off")
        assert "cut off" in edge.api.log()
    finally:
        for s in socks:
            s.close()
    assert call(edge, "GET", "/clusters").status_code == 200


def read_answer(sock):
    """One answer on a kept-alive connection."""
    data = b""
    while True:
        if b"\r\n\r\n" in data:
            answer = parse_answer(data)
            if len(answer[2]) == int(answer[1].get("content-length", "0")):
                return answer
        chunk = sock.recv(65536)
        assert chunk, "the api closed the connection"
        data += chunk


def test_idle_time_between_requests_is_not_counted(edge):
    # The deadline is for a request to arrive; a kept-alive connection may
    # wait longer than that between two requests (the idle timeout is 30 s).
    get = ("GET /api/v1.0/clusters HTTP/1.1\r\nHost: x\r\n%s\r\n" % AUTH).encode()
    with socket.create_connection(("127.0.0.1", edge.api_port), timeout=10) as s:
        for _ in range(2):
            s.sendall(get)
            assert read_answer(s)[0] == 200
            time.sleep(DEADLINE_MS / 1000.0 + 1)


# ------------------------------------------------------------------ 5. NUL --

def test_nul_in_request_line_is_400(edge):
    create_cluster(edge, "nul1")
    for target in (b"/api/v1.0/clusters/nul1\x00/config", b"/api/v1.0/clusters/nul1%00/config",
                   b"/api/v1.0/clusters/nul1?force=true\x00", b"/api/v1.0/clusters/nul1?force=%00"):
        raw = b"DELETE " + target + b" HTTP/1.1\r\nHost: x\r\n" + AUTH.encode() + b"\r\n"
        assert_error(ask_closed(edge, raw), 400, "BAD_REQUEST")
    assert call(edge, "GET", "/clusters/nul1").status_code == 200, "cluster nul1 was deleted"


# -------------------------------------------------------------- 6. framing --

def test_duplicate_content_length_closes(edge):
    # The first length says no body, the second that a DELETE follows as
    # the body: a proxy taking the second would pass it on as one request.
    create_cluster(edge, "smug1")
    inner = ("DELETE /api/v1.0/clusters/smug1?force=true HTTP/1.1\r\nHost: x\r\n%s\r\n" % AUTH).encode()
    for lengths in (("0", str(len(inner))), (str(len(inner)), str(len(inner)))):
        raw = ("POST /api/v1.0/clusters HTTP/1.1\r\nHost: x\r\n%sContent-Length: %s\r\n"
               "Content-Length: %s\r\n\r\n" % ((AUTH,) + lengths)).encode() + inner
        answer = ask_closed(edge, raw)
        assert_error(answer, 400, "BAD_REQUEST")
        assert answer[3] == b"", "a second answer came: %r" % answer[3][:200]
    assert call(edge, "GET", "/clusters/smug1").status_code == 200, "cluster smug1 was deleted"


def test_transfer_encodings_other_than_chunked(edge):
    for encoding in ("gzip", "gzip, chunked", "chunked, gzip", "identity"):
        raw = ("POST /api/v1.0/clusters HTTP/1.1\r\nHost: x\r\n%sTransfer-Encoding: %s\r\n\r\n"
               "name=te1&provider=aws&type=mesos" % (AUTH, encoding)).encode()
        assert_error(ask_closed(edge, raw), 400, "BAD_REQUEST")
    raw = ("POST /api/v1.0/clusters HTTP/1.1\r\nHost: x\r\n%sTransfer-Encoding: chunked\r\n"
           "Content-Length: 5\r\n\r\n0\r\n\r\n" % AUTH).encode()
    assert_error(ask_closed(edge, raw), 400, "BAD_REQUEST")
    # chunked alone is taken.
    body = b"name=te2&provider=aws&type=mesos"
    raw = ("POST /api/v1.0/clusters HTTP/1.1\r\nHost: x\r\n%sTransfer-Encoding: chunked\r\n"
           "Connection: close\r\n\r\n" % AUTH).encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    assert ask_closed(edge, raw)[0] == 201
    assert call(edge, "GET", "/clusters/te1").status_code == 404


def test_unsupported_http_versions(edge):
    path = b"/api/v1.0/clusters"
    auth = AUTH.encode()
    # 1.2 to 1.9 reach the api: 505 with a JSON body.
    for version in (b"HTTP/1.2", b"HTTP/1.9"):
        raw = b"GET " + path + b" " + version + b"\r\nHost: x\r\n" + auth + b"\r\n"
        assert_error(ask_closed(edge, raw), 505, "VERSION_NOT_SUPPORTED")
    # Others libmicrohttpd answers itself (docs/api.md): 505 for a version
    # it knows of but does not speak, 400 for no version or a malformed one.
    for raw, status in ((b"GET " + path + b" HTTP/2.0\r\nHost: x\r\n\r\n", 505),
                        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
                        (b"GET " + path + b" HTTP/0.9\r\n\r\n", 505),
                        (b"GET " + path + b" HTTP/3\r\nHost: x\r\n\r\n", 400),
                        (b"GET " + path + b"\r\n\r\n", 400)):
        assert ask_closed(edge, raw)[0] == status, raw


# ---------------------------------------------------------- 7. the others --

def test_after_beyond_64_bits_is_400(edge):
    create_cluster(edge, "ev64")
    for after in ("18446744073709551616-0", "1-18446744073709551616", "99999999999999999999-0",
                  "18446744073709551615-18446744073709551615"):
        r = call(edge, "GET", "/clusters/ev64/deployment/events", params={"after": after})
        assert r.status_code == 400, (after, r.status_code, r.text)
        assert r.json()["field"] == "after", r.text
    r = call(edge, "GET", "/clusters/ev64/deployment/events",
             params={"after": "18446744073709551615-18446744073709551614"})
    assert r.status_code == 200 and r.json()["events"] == [], r.text


def test_store_errors_are_not_answered(edge):
    # The store fails under the scheduler (a key of the wrong type): a 500,
    # whose message says nothing of the store's own error text.
    create_cluster(edge, "werr1")
    rc = edge.redis_client()
    key = "dexter:{werr1}:events"
    try:
        rc.delete(key)
        rc.set(key, "not a stream")
        r = call(edge, "GET", "/clusters/werr1/deployment/events")
        assert r.status_code == 500, r.text
        text = r.text.lower()
        for word in ("wrongtype", "redis", "err ", "operation against a key"):
            assert word not in text, "the answer quotes the store: %s" % r.text
    finally:
        rc.delete(key)
        rc.close()
    assert call(edge, "DELETE", "/clusters/werr1").status_code == 200


def test_encoded_slash_is_part_of_a_name(edge):
    create_cluster(edge, "sl1")
    for path in ("/clusters/sl1%2Fgroups", "/clusters/sl1%2fgroups"):
        raw = ("GET /api/v1.0%s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n" % (path, AUTH)).encode()
        error = assert_error(ask_closed(edge, raw), 404, "NOT_FOUND")
        assert "no cluster named 'sl1%2" in error["message"], error
    raw = ("GET /api/v1.0/clusters%%2Fsl1 HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n" % AUTH).encode()
    assert_error(ask_closed(edge, raw), 404, "NOT_FOUND")
