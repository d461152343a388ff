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

import pytest
import requests

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


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


class Stack:
    """redis + scheduler + api, each restartable on the same ports."""

    def __init__(self, workdir, api_env=None, sched_env=None):
        self.dir = workdir
        self.redis_port = free_port()
        self.sched_port = free_port()
        self.worker_port = free_port()  # the scheduler's workers' ROUTER
        self.api_port = free_port()
        self.api_env = api_env or {}
        self.sched_env = sched_env or {}
        self.redis = self.scheduler = self.api = None
        self.procs = []  # every Proc ever started, for log checks

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
        env = self.env(dict(self.sched_env, **(extra_env or {})))
        self.scheduler = Proc("scheduler", [os.path.join(BIN_DIR, "dexter-scheduler")], env,
                              os.path.join(self.dir, "scheduler.log")).start()
        self.procs.append(self.scheduler)
        # Until its ROUTER accepts connections: a SIGTERM sent before main()
        # installed its handler (ASan start-up is slow) would kill it instead.
        wait_until(lambda: self._port_open(self.sched_port) or not self.scheduler.alive(), 10,
                   "dexter-scheduler to bind")
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
        for proc in (self.api, self.scheduler):
            if proc is not None and proc.alive():
                rc = proc.stop()
                if rc != 0:
                    problems.append("%s exited with %s:\n%s" % (proc.name, rc, proc.log()[-4000:]))
        if self.redis is not None:
            self.redis.stop()
        for proc in self.procs:
            if proc.name != "redis":
                try:
                    proc.assert_clean()
                except AssertionError as e:
                    problems.append(str(e))
        assert not problems, "\n".join(problems)

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
