"""HTTPS (docs/api-service.md, "HTTPS"): the api with DEXTER_API_TLS_CERT and
DEXTER_API_TLS_KEY, against real TLS clients (curl, requests, Python's ssl),
with a CA and certificates the test makes with the openssl command.

- The reference's curl lines work over HTTPS (`curl --cacert`).
- A client that trusts another CA refuses the api; TLS 1.0 and 1.1 are
  refused by the api, 1.2 and 1.3 served; plain HTTP to the HTTPS port gets
  no answer, and the api serves on.
- SIGHUP rotates the certificate under load: no request fails, new
  connections see the new certificate, the old daemons go once drained; a
  pair that cannot be used keeps the current certificate.
- A non-loopback address needs TLS (or DEXTER_API_INSECURE_HTTP=1, logged as
  a warning) besides the token; the two TLS settings go together; an
  unusable pair stops the start.
"""
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest
import requests

import test_reference as ref
from conftest import BIN_DIR, Proc, Stack, free_port, wait_until

TOKEN = "tls-e2e-T0ken"
user_env = ref.user_env     # the reference's HOME, cwd and variables


# --------------------------------------------------------------- the PKI --

def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca(d, name):
    """A self-signed CA: (cert, key) paths."""
    cert, key = os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=" + name)
    return cert, key


def make_server(d, name, ca):
    """A server certificate for localhost and 127.0.0.1 signed by ca: (cert, key)."""
    cert, key, csr = (os.path.join(d, name + ext) for ext in (".pem", ".key", ".csr"))
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=" + name)
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
            "-days", "2", "-extfile", ext, "-out", cert)
    return cert, key


def der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


@pytest.fixture(scope="module")
def pki():
    d = tempfile.mkdtemp(prefix="dexter-pki-")
    ca = make_ca(d, "ca")
    pki = {"dir": d, "ca": ca[0], "other_ca": make_ca(d, "other-ca")[0]}
    for name in ("first", "second", "third"):
        pki[name] = make_server(d, name, ca)
    yield pki
    shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- stacks --

class TlsStack(Stack):
    """A stack whose api serves HTTPS with its own copy of a certificate
    and key (so that a test may replace them)."""

    def __init__(self, workdir, pki, api_env=None):
        self.cert, self.key = os.path.join(workdir, "api.pem"), os.path.join(workdir, "api.key")
        shutil.copy(pki["first"][0], self.cert)
        shutil.copy(pki["first"][1], self.key)
        env = {"DEXTER_API_TLS_CERT": self.cert, "DEXTER_API_TLS_KEY": self.key}
        super().__init__(workdir, api_env=dict(env, **(api_env or {})))

    @property
    def base(self):
        return "https://127.0.0.1:%d/api/v1.0" % self.api_port

    def use(self, pair):
        """Puts pair (cert, key) in the api's files, each in one rename."""
        for src, dst in zip(pair, (self.cert, self.key)):
            shutil.copy(src, dst + ".new")
            os.replace(dst + ".new", dst)


def tls_stack(pki, api_env=None):
    """A TlsStack in a temp dir, not started; stop_stack stops it."""
    return TlsStack(tempfile.mkdtemp(prefix="dexter-e2e-"), pki, api_env)


def stop_stack(stack):
    try:
        stack.stop()
    finally:
        shutil.rmtree(stack.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def shared_tls(pki):
    """One HTTPS stack for the module's read-mostly tests. requests (the
    reference test's helpers included) trusts the test CA meanwhile."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REQUESTS_CA_BUNDLE", pki["ca"])
        stack = tls_stack(pki)
        try:
            yield stack.start()
        finally:
            stop_stack(stack)


@pytest.fixture
def tls_factory(pki, monkeypatch):
    """Starts HTTPS stacks of the test's own (their files may be replaced)
    and stops them at its end."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", pki["ca"])
    stacks = []

    def make(api_env=None):
        stacks.append(tls_stack(pki, api_env))
        return stacks[-1].start()
    yield make
    errors = []
    for stack in stacks:
        try:
            stop_stack(stack)
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


def client_context(ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    return ctx


def get(port, ctx, path="/api/v1.0/clusters"):
    """GET on a new connection: (status, the server's certificate, DER)."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=20)
    try:
        conn.request("GET", path)
        cert = conn.sock.getpeercert(binary_form=True)
        r = conn.getresponse()
        r.read()
        return r.status, cert
    finally:
        conn.close()


# ------------------------------------------------------ the reference --

@pytest.fixture(scope="module")
def https_env(user_env, pki):
    """The reference test's environment with a `curl` first on PATH that
    sends what test_reference.run_line asks of http://127.0.0.1:PORT to
    https://localhost:PORT, with --cacert: the lines run as written, but
    over HTTPS (the api speaks nothing else)."""
    bindir = os.path.join(user_env["root"], "https-bin")
    os.makedirs(bindir, exist_ok=True)
    with open(os.path.join(bindir, "curl"), "w") as f:
        f.write('#!/bin/sh\n'
                'for a; do shift\n'
                '  case "$a" in http://127.0.0.1:*) a="https://localhost:${a#http://127.0.0.1:}" ;; esac\n'
                '  set -- "$@" "$a"\n'
                'done\n'
                'exec /usr/bin/curl --cacert "%s" "$@"\n' % pki["ca"])
    os.chmod(os.path.join(bindir, "curl"), 0o755)
    return dict(user_env, env=dict(user_env["env"], PATH=bindir + ":" + user_env["env"]["PATH"]))


@pytest.mark.parametrize("section", ref.SECTIONS)
def test_reference_over_https(shared_tls, https_env, section):
    """Every runnable line of the reference, run and judged as
    test_reference.py does, over HTTPS."""
    if section in ref.REQUEST_SECTIONS:
        ref.test_request_examples(shared_tls, https_env, section)
    elif section in ref.SCENARIOS:
        ref.test_usage_scenario(shared_tls, https_env, section)
    else:
        ref.test_vpn_section(shared_tls, https_env, section)


# -------------------------------------------------------------- clients --

def test_client_trusting_another_ca_refuses(shared_tls, pki):
    with pytest.raises(ssl.SSLCertVerificationError):
        get(shared_tls.api_port, client_context(pki["other_ca"]))
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(shared_tls.url("/clusters"), verify=pki["other_ca"], timeout=20)
    # The api's own CA is fine, of course.
    status, cert = get(shared_tls.api_port, client_context(pki["ca"]))
    assert status == 200 and cert == der(pki["first"][0])


def handshake(port, ca, lowest, highest):
    """The TLS version a handshake with at most `highest` agrees on. The
    client lowers its own security level so that it offers TLS 1.0 and 1.1
    at all: what refuses them must be the api."""
    ctx = client_context(ca)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version, ctx.maximum_version = lowest, highest
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.version()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_1_0_and_1_1_refused(shared_tls, pki):
    V = ssl.TLSVersion
    for highest in (V.TLSv1, V.TLSv1_1):
        with pytest.raises((ssl.SSLError, ConnectionResetError)) as e:
            handshake(shared_tls.api_port, pki["ca"], V.TLSv1, highest)
        # Refused by the server, not by the client before it sent anything.
        assert "NO_PROTOCOLS_AVAILABLE" not in str(e.value), e.value
        assert "NO_SUPPORTED_VERSIONS" not in str(e.value), e.value
    # The same client agrees on 1.2 when it may, and 1.3 is served.
    assert handshake(shared_tls.api_port, pki["ca"], V.TLSv1, V.TLSv1_2) == "TLSv1.2"
    assert handshake(shared_tls.api_port, pki["ca"], V.TLSv1_3, V.TLSv1_3) == "TLSv1.3"
    assert shared_tls.api.alive()


def test_plain_http_to_the_https_port(shared_tls, pki):
    """No answer in clear (the connection closes), no crash, no harm: the
    api serves HTTPS on."""
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", shared_tls.api_port), timeout=20) as s:
            s.sendall(b"GET /api/v1.0/clusters HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            try:
                while True:
                    part = s.recv(4096)
                    if not part:
                        break
                    data += part
            except ConnectionResetError:
                pass
        assert not data.startswith(b"HTTP/"), "plain HTTP was answered in clear: %r" % data[:200]
    assert shared_tls.api.alive()
    r = requests.get(shared_tls.url("/clusters"), timeout=20)
    assert r.status_code == 200, r.text
    # Nor does requests, speaking HTTP to it, get anything but an error.
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get("http://127.0.0.1:%d/api/v1.0/clusters" % shared_tls.api_port, timeout=20)


# ------------------------------------------------------------- rotation --

class Load:
    """Clients GETting the cluster list until stopped: some over keep-alive
    sessions, some on a new connection each time (which record the
    certificate they were shown)."""

    def __init__(self, stack, ca, clients=2):
        self.stack, self.ca = stack, ca
        self.stop = threading.Event()
        self.ok = {"keep-alive": 0, "new": 0}
        self.failures = []
        self.seen = []          # (time, DER) of each new connection's certificate
        self.threads = [threading.Thread(target=target, daemon=True)
                        for target in (self._keep_alive, self._new_connections)
                        for _ in range(clients)]

    def _keep_alive(self):
        with requests.Session() as s:
            s.verify = self.ca
            while not self.stop.is_set():
                try:
                    r = s.get(self.stack.url("/clusters"), timeout=20)
                    assert r.status_code == 200, r.status_code
                    self.ok["keep-alive"] += 1
                except Exception as e:   # noqa: BLE001 - every failure counts
                    self.failures.append("keep-alive: %r" % e)

    def _new_connections(self):
        ctx = client_context(self.ca)
        while not self.stop.is_set():
            try:
                status, cert = get(self.stack.api_port, ctx)
                assert status == 200, status
                self.ok["new"] += 1
                self.seen.append((time.monotonic(), cert))
            except Exception as e:   # noqa: BLE001
                self.failures.append("new connection: %r" % e)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def wait_for(self, cert, since):
        wait_until(lambda: any(t > since and c == cert for t, c in self.seen), 20,
                   "a new connection to be shown the new certificate")


@pytest.mark.parametrize("threads", ["1", "2"])
def test_rotation_under_load(tls_factory, pki, threads):
    """Two rotations while clients keep asking: every request is answered,
    old connections finish on the old certificate, new ones get the new."""
    stack = tls_factory({"DEXTER_API_THREADS": threads})
    with Load(stack, pki["ca"]) as load:
        wait_until(lambda: load.ok["new"] >= 20 and load.ok["keep-alive"] >= 20, 20,
                   "the clients to get going")
        for name in ("second", "third"):
            stack.use(pki[name])
            since = time.monotonic()
            stack.api.popen.send_signal(signal.SIGHUP)
            load.wait_for(der(pki[name][0]), since)
            before = dict(load.ok)
            wait_until(lambda: all(load.ok[k] >= before[k] + 20 for k in before), 20,
                       "more requests after the reload")
    assert not load.failures, "%d failed requests, first: %s" % (len(load.failures), load.failures[:5])
    # The last certificate is the only one new connections get now...
    assert get(stack.api_port, client_context(pki["ca"]))[1] == der(pki["third"][0])
    # ...and the daemons it replaced (two per event loop) went once their
    # clients had left.
    loops = int(stack.api_env.get("DEXTER_API_THREADS", "1"))
    wait_until(lambda: stack.api.log().count("replaced on reload closed its last") == 2 * loops,
               40, "the replaced daemons to be closed")
    assert stack.api.log().count("SIGHUP: new connections get the certificate") == 2


def test_unusable_pair_on_sighup_keeps_the_certificate(tls_factory, pki):
    stack = tls_factory()
    ctx = client_context(pki["ca"])

    def refused(what, n):
        stack.api.popen.send_signal(signal.SIGHUP)
        wait_until(lambda: stack.api.log().count("still get the previous certificate") == n, 20,
                   "the api to refuse " + what)
        status, shown = get(stack.api_port, ctx)
        assert status == 200 and shown == der(pki["first"][0]), what

    stack.use((pki["second"][0], pki["third"][1]))
    refused("a key that is not the certificate's", 1)
    os.unlink(stack.cert)
    refused("a missing certificate file", 2)
    # Good files again: taken.
    stack.use(pki["second"])
    stack.api.popen.send_signal(signal.SIGHUP)
    wait_until(lambda: get(stack.api_port, ctx)[1] == der(pki["second"][0]), 20,
               "the api to take the good pair")


# ------------------------------------------------------------- start-up --

def start_api(stack, env, label):
    proc = Proc("api-" + label, [os.path.join(BIN_DIR, "dexter-api")], stack.env(env),
                os.path.join(stack.dir, "api-%s.log" % label)).start()
    stack.procs.append(proc)      # its log is checked for sanitizer reports too
    return proc


def refused(stack, env, label):
    """Starts an api that must refuse to: its exit status and log."""
    proc = start_api(stack, env, label)
    try:
        wait_until(lambda: not proc.alive(), 15, "dexter-api to refuse to start (%s)" % label)
    finally:
        proc.kill()
    return proc.popen.returncode, proc.log()


def test_start_up_rules(stack_factory, pki):
    stack = stack_factory(start=False)
    public = {"DEXTER_API_ADDR": "0.0.0.0:%d" % free_port(), "DEXTER_API_TOKEN": TOKEN}
    cert, key = pki["first"]

    rc, log = refused(stack, public, "plain")
    assert rc == 2, (rc, log)
    for setting in ("DEXTER_API_TLS_CERT", "DEXTER_API_TLS_KEY", "DEXTER_API_INSECURE_HTTP"):
        assert setting in log, "the refusal does not name %s:\n%s" % (setting, log)
    rc, log = refused(stack, {"DEXTER_API_TLS_CERT": cert}, "half")
    assert rc == 2 and "DEXTER_API_TLS_KEY" in log, (rc, log)
    rc, log = refused(stack, {"DEXTER_API_TLS_CERT": cert, "DEXTER_API_TLS_KEY": pki["second"][1]},
                      "mismatch")
    assert rc == 2 and "not a usable certificate and key" in log, (rc, log)
    rc, log = refused(stack, {"DEXTER_API_TLS_CERT": cert + ".missing", "DEXTER_API_TLS_KEY": key},
                      "missing")
    assert rc == 2 and cert + ".missing" in log, (rc, log)
    rc, log = refused(stack, {"DEXTER_API_INSECURE_HTTP": "yes"}, "bad-flag")
    assert rc == 2 and "DEXTER_API_INSECURE_HTTP" in log, (rc, log)

    # Behind a TLS-terminating proxy: plain HTTP, said in a warning.
    port = free_port()
    proc = start_api(stack, dict(public, DEXTER_API_ADDR="0.0.0.0:%d" % port,
                                 DEXTER_API_INSECURE_HTTP="1"), "insecure")
    wait_until(lambda: "listening on http://0.0.0.0:%d" % port in proc.log() or not proc.alive(),
               15, "the api behind a proxy to listen")
    assert "WARN" in proc.log() and "DEXTER_API_INSECURE_HTTP=1" in proc.log(), proc.log()
    r = requests.get("http://127.0.0.1:%d/api/v1.0/clusters" % port, timeout=20)
    assert r.status_code == 401, r.text
    assert proc.stop() == 0, proc.log()

    # With TLS: HTTPS on every interface, the token still required.
    port = free_port()
    proc = start_api(stack, dict(public, DEXTER_API_ADDR="0.0.0.0:%d" % port,
                                 DEXTER_API_TLS_CERT=cert, DEXTER_API_TLS_KEY=key), "https")
    wait_until(lambda: "listening on https://0.0.0.0:%d" % port in proc.log() or not proc.alive(),
               15, "the api with TLS to listen")
    r = requests.get("https://127.0.0.1:%d/api/v1.0/clusters" % port, verify=pki["ca"], timeout=20)
    assert r.status_code == 401, r.text
    assert "WARN" not in proc.log(), proc.log()
    assert proc.stop() == 0, proc.log()
