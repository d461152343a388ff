"""End-to-end fixtures: real redis-server, dexter-scheduler and dexter-api
processes on free loopback ports, each started as a user would and stopped by
its pid, every wait bounded by a deadline.

Binaries come from $DEXTER_BIN_DIR (make test points it at the ASan/UBSan
build, so a memory error or leak in a service fails the test that stops it).
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

import pytest
import requests

# Every answer of the api is checked against docs/openapi.yaml (openapi_check.py).
from openapi_check import openapi_checked, openapi_contract  # noqa: F401

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.environ.get("DEXTER_BIN_DIR", os.path.join(REPO, "build", "bin"))
# The reference the curl lines are read from: the repo's copy, so the tests run
# in any clone; test_reference.py checks it still equals ../shared's original
# whenever that is beside the repo.
REFERENCE = os.path.join(REPO, "docs", "reference", "dexter-cluster-api.txt")
SHARED_REFERENCE = os.path.join(os.path.dirname(REPO), "shared", "reference",
                                "dexter-cluster-api.txt")
MASTER_KEY = "5a" * 32  # tests use a fixed master key; secrets tests search for plaintext

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer")

# The fake EC2 (tests/fakes/README.md) and the credentials it accepts in the
# AWS tests. The key matches the api's ^[A-Z0-9]{16,128}$; the secret has '/'
# and '+' (curl -d sends '+' unencoded, the api reads the space back as '+').
FAKE_EC2 = os.path.join(REPO, "tests", "fakes", "fake_ec2.py")
FAKE_KEY_ID = "AKIADEXTERE2ETEST001"
FAKE_SECRET = "dexterE2E/fake+Secret0123456789abcdefABCD"

# The fake ARM and Entra token endpoint (tests/fakes/README.md) and the one
# service principal the Azure tests give it (TENANT:CLIENT_ID:SUBSCRIPTION:SECRET).
FAKE_ARM = os.path.join(REPO, "tests", "fakes", "fake_arm.py")

# The scheduler's DC/OS installer source (docs/provision.md): a dcos deploy is
# refused without one. Nothing downloads it in the tests.
DCOS_INSTALLER_URL = "https://dcos-mirror.example.com/dcos_generate_config.sh"
FAKE_AZ_TENANT = "4c1d5e2a-0000-4000-8000-00000000e2e0"
FAKE_AZ_CLIENT = "9b7f3c11-0000-4000-8000-00000000e2e1"
FAKE_AZ_SUBSCRIPTION = "0d5c2f7e-0000-4000-8000-00000000e2e2"
FAKE_AZ_SECRET = "e2e8Q~fake.Azure-client_secret.0123456789ab"


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _side_channel(base_url, method, path, body=None):
    """One request to a fake's side channel (/_fake/...): its JSON (200 only)."""
    with requests.Session() as s:
        s.trust_env = False  # never through a proxy
        r = s.request(method, base_url + path, json=body, timeout=30)
    assert r.status_code == 200, "%s %s: %d %s" % (method, path, r.status_code, r.text[:500])
    return r.json()


def wait_until(predicate, timeout, what):
    """Polls predicate until it returns a true value or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(0.05)


class Proc:
    """One child process with its output in a log file."""

    def __init__(self, name, argv, env, log_path):
        self.name, self.argv, self.env, self.log_path = name, argv, env, log_path
        self.popen = None

    def start(self):
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=log,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        return self

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, timeout=15):
        """SIGTERM, wait, and return the exit status (SIGKILL after timeout)."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
                raise AssertionError("%s did not stop within %ss of SIGTERM" % (self.name, timeout))
        return self.popen.returncode

    def kill(self):
        """SIGKILL: a crash, as far as everyone else can tell."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(5)

    def assert_clean(self):
        """No sanitizer report in the log."""
        text = self.log()
        for marker in SANITIZER_MARKERS:
            assert marker not in text, "%s log has a sanitizer report:\n%s" % (self.name, text[-6000:])


class WorkerProc(Proc):
    """A worker process; remembers whether the test killed it on purpose."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.killed_by_test = False

    def kill(self):
        self.killed_by_test = True
        super().kill()


class Stack:
    """redis + scheduler + api, each restartable on the same ports."""

    def __init__(self, workdir, api_env=None, sched_env=None):
        self.dir = workdir
        self.redis_port = free_port()
        self.sched_port = free_port()
        self.worker_port = free_port()  # the scheduler's workers' ROUTER
        self.api_port = free_port()
        self.api_env = api_env or {}
        self.sched_env = dict({"DEXTER_DCOS_INSTALLER_URL": DCOS_INSTALLER_URL},
                              **(sched_env or {}))
        self.redis = self.scheduler = self.api = None
        self.procs = []  # every Proc ever started, for log checks
        self.fake_ec2 = None      # the fake EC2 Proc (not in procs: no sanitizer check)
        self.fake_ec2_url = None  # http://127.0.0.1:<port>
        self.aws_workers = []     # every aws-worker Proc ever started
        self.fake_arm = None      # the fake ARM Proc (not in procs: no sanitizer check)
        self.fake_arm_url = None  # http://127.0.0.1:<port>, ARM and the token endpoint
        self.azure_workers = []   # every azure-worker Proc ever started
        self.vpn_workers = []     # every vpn worker Proc ever started
        # Contract checks that failed without stopping the test (aws_helpers.defer):
        # the test asserts them at its end, and stop() reports any left.
        self.deferred = []

    # -- environment -------------------------------------------------------
    def env(self, extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEXTER_")}
        env.update({
            "DEXTER_REDIS_URL": "redis://127.0.0.1:%d/0" % self.redis_port,
            "DEXTER_SCHEDULER_ENDPOINT": "tcp://127.0.0.1:%d" % self.sched_port,
            "DEXTER_WORKER_ENDPOINT": "tcp://127.0.0.1:%d" % self.worker_port,
            "DEXTER_API_ADDR": "127.0.0.1:%d" % self.api_port,
            "DEXTER_DATA_DIR": os.path.join(self.dir, "data"),
            "DEXTER_MASTER_KEY": MASTER_KEY,
            "DEXTER_API_TIMEOUT_MS": "3000",
            "DEXTER_LOG_LEVEL": "debug",
            "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        })
        env.update(extra or {})
        return env

    @property
    def base(self):
        return "http://127.0.0.1:%d/api/v1.0" % self.api_port

    def url(self, path):
        return self.base + path

    # -- processes ----------------------------------------------------------
    def start_redis(self):
        rdir = os.path.join(self.dir, "redis")
        os.makedirs(rdir, exist_ok=True)
        argv = [shutil.which("redis-server") or "/usr/bin/redis-server",
                "--bind", "127.0.0.1", "--port", str(self.redis_port), "--dir", rdir,
                "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                "--protected-mode", "yes"]
        self.redis = Proc("redis", argv, self.env(), os.path.join(self.dir, "redis.log")).start()
        self.procs.append(self.redis)
        wait_until(lambda: self._redis_ping(), 10, "redis-server to answer PING")
        return self.redis

    def _redis_ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.redis_port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start_scheduler(self, extra_env=None):
        # One host step per aws agent unless a test asks for batches
        # (test_aws_batch.py): the others count host steps, host tags and launches
        env = self.env(dict({"DEXTER_AWS_BATCH_MAX": "0"}, **dict(self.sched_env, **(extra_env or {}))))
        log_path = os.path.join(self.dir, "scheduler.log")
        served = self._log_count(log_path, "scheduler serving on")
        self.scheduler = Proc("scheduler", [os.path.join(BIN_DIR, "dexter-scheduler")], env,
                              log_path).start()
        self.procs.append(self.scheduler)
        # Until it says it serves: a SIGTERM sent before main() installed its
        # handler (ASan start-up is slow) would kill it instead. Its log, not
        # a probe of its ports: a bare TCP connection is a refusal it logs.
        wait_until(lambda: self._log_count(log_path, "scheduler serving on") > served
                   or not self.scheduler.alive(), 10, "dexter-scheduler to serve")
        assert self.scheduler.alive(), "dexter-scheduler exited:\n" + self.scheduler.log()[-3000:]
        return self.scheduler

    def start_api(self, extra_env=None):
        env = self.env(dict(self.api_env, **(extra_env or {})))
        self.api = Proc("api", [os.path.join(BIN_DIR, "dexter-api")], env,
                        os.path.join(self.dir, "api.log")).start()
        self.procs.append(self.api)
        wait_until(lambda: self._port_open(self.api_port) or not self.api.alive(), 10,
                   "dexter-api to listen")
        assert self.api.alive(), "dexter-api exited:\n" + self.api.log()[-3000:]
        return self.api

    @staticmethod
    def _log_count(path, text):
        try:
            with open(path, "rb") as f:
                return f.read().count(text.encode())
        except FileNotFoundError:
            return 0

    def _port_open(self, port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    def wait_ready(self, timeout=15):
        """Until the api answers a list request through the scheduler."""
        def ready():
            try:
                return requests.get(self.url("/clusters"), timeout=2,
                                    headers=self.auth_headers()).status_code == 200
            except requests.RequestException:
                return False
        wait_until(ready, timeout, "the api to answer through the scheduler")

    def auth_headers(self):
        token = self.api_env.get("DEXTER_API_TOKEN")
        return {"Authorization": "Bearer " + token} if token else {}

    def start(self):
        self.start_redis()
        self.start_scheduler()
        self.start_api()
        self.wait_ready()
        return self

    def stop(self):
        """Stops everything by pid; services must exit 0 with no sanitizer report."""
        problems = []
        for proc in (self.api,):
            if proc is not None and proc.alive():
                rc = proc.stop()
                if rc != 0:
                    problems.append("%s exited with %s:\n%s" % (proc.name, rc, proc.log()[-4000:]))
        # Workers go before the scheduler (they drain and say worker.bye), and
        # each must exit 0 unless the test killed it on purpose.
        for proc in self.aws_workers + self.azure_workers + self.vpn_workers:
            try:
                rc = proc.stop()
            except AssertionError as e:
                problems.append(str(e) + ":\n" + proc.log()[-4000:])
                continue
            if not proc.killed_by_test and rc != 0:
                problems.append("%s exited with %s:\n%s" % (proc.name, rc, proc.log()[-4000:]))
        for proc in (self.scheduler,):
            if proc is not None and proc.alive():
                rc = proc.stop()
                if rc != 0:
                    problems.append("%s exited with %s:\n%s" % (proc.name, rc, proc.log()[-4000:]))
        if self.fake_ec2 is not None:
            self.fake_ec2.stop()
        if self.fake_arm is not None:
            self.fake_arm.stop()
        problems += ["deferred check failed: " + d for d in self.deferred]
        if self.redis is not None:
            self.redis.stop()
        for proc in self.procs:
            if proc.name != "redis":
                try:
                    proc.assert_clean()
                except AssertionError as e:
                    problems.append(str(e))
        assert not problems, "\n".join(problems)

    # -- the fakes -------------------------------------------------------------
    def _start_fake(self, name, script, argv_opts, env):
        """Starts a fake (python3 SCRIPT --port 0 --port-file F OPTS...) and
        waits until it answers /_fake/health; returns (Proc, its base URL)."""
        port_file = os.path.join(self.dir, "%s.port" % name)
        if os.path.exists(port_file):
            os.unlink(port_file)
        argv = ["/usr/bin/python3", script, "--port", "0", "--port-file", port_file] + argv_opts
        proc = Proc(name, argv, env, os.path.join(self.dir, "%s.log" % name)).start()
        wait_until(lambda: os.path.exists(port_file) or not proc.alive(), 30,
                   "%s to write its port file" % name)
        assert proc.alive(), "%s exited:\n%s" % (script, proc.log()[-3000:])
        with open(port_file) as f:
            url = "http://127.0.0.1:%d" % int(f.read().strip())

        def healthy():
            try:
                return _side_channel(url, "GET", "/_fake/health") == {"ok": True}
            except (requests.RequestException, AssertionError):
                return False
        wait_until(healthy, 10, "%s to answer /_fake/health" % name)
        return proc, url

    @staticmethod
    def _flags(opts, first=()):
        """Command-line flags from options: latency_ms=50 -> --latency-ms 50;
        True -> the bare flag; None/False -> left out; a list repeats the
        flag. The keys in `first` come first, in that order."""
        argv = []
        for key in list(first) + sorted(k for k in opts if k not in first):
            value = opts.get(key)
            if value is None or value is False:
                continue
            for one in (value if isinstance(value, list) else [value]):
                argv.append("--" + key.replace("_", "-"))
                if one is not True:
                    argv.append(str(one))
        return argv

    # -- the fake EC2 and aws-workers -----------------------------------------
    def start_fake_ec2(self, **options):
        """Starts tests/fakes/fake_ec2.py on a free port (it picks one, and
        says which in --port-file). Options are its command-line flags:
        latency_ms=50 -> --latency-ms 50; True -> the bare flag; None/False ->
        left out. Defaults: the FAKE_KEY_ID/FAKE_SECRET credential, any region,
        pending and shutting-down 200 ms, quiet."""
        assert self.fake_ec2 is None or not self.fake_ec2.alive(), "one fake EC2 per stack"
        opts = {"access_key": FAKE_KEY_ID, "secret_key": FAKE_SECRET, "region": "any",
                "pending_ms": 200, "shutdown_ms": 200, "quiet": True}
        opts.update(options)
        # --access-key must come first: --secret-key belongs to the key before it
        argv = self._flags(opts, first=("access_key", "secret_key"))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DEXTER_", "AWS_"))}
        self.fake_ec2, self.fake_ec2_url = self._start_fake("fake-ec2", FAKE_EC2, argv, env)
        return self.fake_ec2

    def fake(self, method, path, body=None):
        """One request to the fake's side channel (/_fake/...): its JSON."""
        assert self.fake_ec2_url, "no fake EC2 started"
        return _side_channel(self.fake_ec2_url, method, path, body)

    def fake_state(self):
        """GET /_fake/state: every resource with its tags and state."""
        return self.fake("GET", "/_fake/state")

    def fake_calls(self):
        """GET /_fake/calls: counts by action (attempts and successes), errors, log."""
        return self.fake("GET", "/_fake/calls")

    def fake_config(self, **changes):
        """POST /_fake/config (GET with no changes)."""
        return self.fake("POST", "/_fake/config", changes) if changes else self.fake("GET", "/_fake/config")

    def start_aws_worker(self, extra_env=None):
        """Starts one more dexter-aws-worker (aws-worker-1, -2, ...) connected
        to this stack's scheduler and pointed at the fake EC2; with the
        first cloud worker, a vpn worker too (a deploy's vpn steps)."""
        if not self.vpn_workers:
            self.start_vpn_worker()
        exe = os.path.join(BIN_DIR, "dexter-aws-worker")
        assert os.access(exe, os.X_OK), "%s is missing: build it (make services)" % exe
        n = len(self.aws_workers) + 1
        extra = {"DEXTER_AWS_POLL_MS": "50", "DEXTER_WORKER_DRAIN_MS": "5000"}
        extra.update(extra_env or {})
        env = {k: v for k, v in self.env(extra).items()
               if not k.startswith("AWS_") and k.lower() not in
               ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        if self.fake_ec2_url:
            env["AWS_ENDPOINT_URL_EC2"] = self.fake_ec2_url
        env.update({k: v for k, v in (extra_env or {}).items() if k.startswith("AWS_")})
        proc = WorkerProc("aws-worker-%d" % n, [exe], env,
                          os.path.join(self.dir, "aws-worker-%d.log" % n)).start()
        self.aws_workers.append(proc)
        self.procs.append(proc)
        # Until it has logged something (it installed its signal handlers by
        # then, so a SIGTERM is a clean stop), or for at most 10 s.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.alive() and not proc.log().strip():
            time.sleep(0.05)
        assert proc.alive(), "%s exited at once:\n%s" % (proc.name, proc.log()[-3000:])
        return proc

    # -- the fake ARM and azure-workers ---------------------------------------
    def start_fake_arm(self, **options):
        """Starts tests/fakes/fake_arm.py on a free port (it picks one, and
        says which in --port-file). Options are its command-line flags, as
        for start_fake_ec2. Defaults: the FAKE_AZ_* principal, 100 ms
        operations polled with Retry-After 0, quiet."""
        assert self.fake_arm is None or not self.fake_arm.alive(), "one fake ARM per stack"
        opts = {"principal": ":".join((FAKE_AZ_TENANT, FAKE_AZ_CLIENT, FAKE_AZ_SUBSCRIPTION, FAKE_AZ_SECRET)),
                "lro_ms": 100, "retry_after_s": 0, "quiet": True}
        opts.update(options)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DEXTER_", "AZURE_"))}
        self.fake_arm, self.fake_arm_url = self._start_fake("fake-arm", FAKE_ARM, self._flags(opts), env)
        return self.fake_arm

    def arm(self, method, path, body=None):
        """One request to the fake ARM's side channel (/_fake/...): its JSON."""
        assert self.fake_arm_url, "no fake ARM started"
        return _side_channel(self.fake_arm_url, method, path, body)

    def arm_state(self, tag=None):
        """GET /_fake/state[?tag=NAME=VALUE]: resource groups, resources
        (children and disks included) and operations."""
        path = "/_fake/state"
        if tag:
            path += "?" + urllib.parse.urlencode({"tag": "%s=%s" % tag})
        return self.arm("GET", path)

    def arm_calls(self):
        """GET /_fake/calls: counts by method, request, status, error code; log."""
        return self.arm("GET", "/_fake/calls")

    def arm_credentials(self, client_id=None):
        """The `--sdk-auth` credentials file of a principal, pointing at the
        fake ARM (GET /_fake/sdk-auth)."""
        return self.arm("GET", "/_fake/sdk-auth" + ("?client_id=" + client_id if client_id else ""))

    def start_azure_worker(self, extra_env=None):
        """Starts one more dexter-azure-worker (azure-worker-1, -2, ...)
        connected to this stack's scheduler. The fake ARM is reached through
        the credentials' endpoints, so nothing here points at it. With the
        first cloud worker, a vpn worker too (a deploy's vpn steps)."""
        if not self.vpn_workers:
            self.start_vpn_worker()
        exe = os.path.join(BIN_DIR, "dexter-azure-worker")
        assert os.access(exe, os.X_OK), "%s is missing: build it (make services)" % exe
        n = len(self.azure_workers) + 1
        extra = {"DEXTER_AZURE_POLL_MS": "50", "DEXTER_AZURE_WAIT_MS": "30000",
                 "DEXTER_WORKER_DRAIN_MS": "5000"}
        extra.update(extra_env or {})
        env = {k: v for k, v in self.env(extra).items()
               if not k.startswith("AZURE_") and k.lower() not in
               ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        proc = WorkerProc("azure-worker-%d" % n, [exe], env,
                          os.path.join(self.dir, "azure-worker-%d.log" % n)).start()
        self.azure_workers.append(proc)
        self.procs.append(proc)
        # Until it has logged something (its signal handlers are installed
        # by then), or for at most 10 s.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.alive() and not proc.log().strip():
            time.sleep(0.05)
        assert proc.alive(), "%s exited at once:\n%s" % (proc.name, proc.log()[-3000:])
        return proc

    # -- vpn workers -----------------------------------------------------------
    def start_vpn_worker(self, extra_env=None):
        """Starts one more dexter-vpn (vpn-1, -2, ...): it seals with the
        stack's master key, as the scheduler does."""
        exe = os.path.join(BIN_DIR, "dexter-vpn")
        assert os.access(exe, os.X_OK), "%s is missing: build it (make services)" % exe
        n = len(self.vpn_workers) + 1
        extra = {"DEXTER_WORKER_DRAIN_MS": "5000"}
        extra.update(extra_env or {})
        proc = WorkerProc("vpn-%d" % n, [exe], self.env(extra),
                          os.path.join(self.dir, "vpn-%d.log" % n)).start()
        self.vpn_workers.append(proc)
        self.procs.append(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.alive() and not proc.log().strip():
            time.sleep(0.05)
        assert proc.alive(), "%s exited at once:\n%s" % (proc.name, proc.log()[-3000:])
        return proc

    @staticmethod
    def worker_name(proc):
        """The name a worker gives itself (worker.ready `worker`, events): host:pid."""
        return "%s:%d" % (socket.gethostname(), proc.pid)

    def redis_client(self):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.redis_port, decode_responses=True)

    def logs(self):
        return "".join(p.log() for p in self.procs)


@pytest.fixture
def stack_factory():
    """Builds stacks in temp dirs and stops them all at the end of the test."""
    stacks, dirs = [], []

    def make(api_env=None, sched_env=None, start=True):
        d = tempfile.mkdtemp(prefix="dexter-e2e-")
        dirs.append(d)
        s = Stack(d, api_env=api_env, sched_env=sched_env)
        stacks.append(s)
        return s.start() if start else s

    yield make
    errors = []
    for s in stacks:
        try:
            s.stop()
        except AssertionError as e:
            errors.append(str(e))
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    assert not errors, "\n".join(errors)


@pytest.fixture
def stack(stack_factory):
    """A fresh running stack for one test."""
    return stack_factory()


@pytest.fixture(scope="module")
def shared_stack():
    """One running stack shared by a module's read-mostly tests."""
    d = tempfile.mkdtemp(prefix="dexter-e2e-")
    s = Stack(d).start()
    yield s
    try:
        s.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)
