"""scripts/run.sh, what `make run` runs after installing and building.

It is started as a user would (its own session, SIGTERM/SIGINT to its pid),
with DEXTER_DATA_DIR in a temp dir, free ports and DEXTER_BIN_DIR. Its
children are found through /proc (by parent pid), so every process it started
can be checked gone, by pid, within a deadline.
"""
import glob
import os
import signal
import socket
import stat
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import BIN_DIR, REPO, SANITIZER_MARKERS, free_port, wait_until

RUN_SH = os.path.join(REPO, "scripts", "run.sh")
START_S = 30
STOP_S = 30


# ------------------------------------------------------------------ /proc --

def proc_stat(pid):
    """(ppid, state, starttime) of pid, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2:].split()
    return int(rest[1]), rest[0], int(rest[19])


def exe_name(pid):
    """The program's name by argv[0] (Debian's redis-server is a symlink to
    redis-check-rdb, so /proc/PID/exe would not say redis-server; and Redis
    rewrites its title to "redis-server 127.0.0.1:PORT")."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv0 = f.read().split(b"\0")[0].decode("utf-8", "replace")
        return os.path.basename(argv0.split()[0]) if argv0.strip() else "?"
    except OSError:
        return "?"


def descendants(root):
    """{pid: (name, starttime)} of every living descendant of root."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st:
                children.setdefault(st[0], []).append((int(entry), st))
    out, todo = {}, [root]
    while todo:
        for pid, st in children.get(todo.pop(), []):
            if st[1] != "Z":
                out[pid] = (exe_name(pid), st[2])
            todo.append(pid)
    return out


def still_running(pid, starttime):
    st = proc_stat(pid)
    return st is not None and st[2] == starttime and st[1] != "Z"


def listening(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# ------------------------------------------------------------------ runner --

class Run:
    """One run.sh in its own session with its output in a log file."""

    def __init__(self, tmp, env_extra=None, data_dir=None):
        self.tmp = tmp
        self.data_dir = data_dir or os.path.join(tmp, "data")
        self.redis_port, self.api_port, self.sched_port = free_port(), free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEXTER_")}
        env.update({
            "DEXTER_DATA_DIR": self.data_dir,
            "DEXTER_REDIS_PORT": str(self.redis_port),
            "DEXTER_API_ADDR": "127.0.0.1:%d" % self.api_port,
            "DEXTER_SCHEDULER_ENDPOINT": "tcp://127.0.0.1:%d" % self.sched_port,
            "DEXTER_WORKER_ENDPOINT": "tcp://127.0.0.1:%d" % free_port(),
            "DEXTER_BIN_DIR": BIN_DIR,
            "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        })
        env.update(env_extra or {})
        self.env = env
        self.log_path = os.path.join(tmp, "run-%d.log" % time.monotonic_ns())
        self.popen = None
        self.seen = {}            # every descendant ever seen: pid -> (name, starttime)

    def start(self):
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(["bash", RUN_SH], env=self.env, cwd=self.tmp,
                                          stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                          start_new_session=True)
        return self

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def base(self):
        return "http://127.0.0.1:%d/api/v1.0" % self.api_port

    def refresh(self):
        self.seen.update(descendants(self.popen.pid))
        return self.seen

    def names(self):
        return sorted(name for name, _ in self.refresh().values())

    def wait_ready(self):
        def ready():
            assert self.popen.poll() is None, "run.sh exited %r:\n%s" % (self.popen.returncode, self.log()[-4000:])
            self.refresh()
            try:
                return requests.get(self.base() + "/clusters", timeout=2).status_code == 200
            except requests.RequestException:
                return False
        wait_until(ready, START_S, "the api started by run.sh to answer through the scheduler")
        self.refresh()

    def pid_of(self, name):
        pids = [pid for pid, (n, _) in self.refresh().items() if n == name]
        assert len(pids) == 1, "expected one %s under run.sh, found %r (%r)" % (name, pids, self.seen)
        return pids[0]

    def wait_exit(self, timeout=STOP_S):
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("run.sh still running %ss after the signal:\n%s" % (timeout, self.log()[-3000:]))

    def assert_all_gone(self, timeout=STOP_S):
        def gone():
            return not [p for p, (_, t) in self.seen.items() if still_running(p, t)]
        try:
            wait_until(gone, timeout, "every process run.sh started to exit")
        except AssertionError:
            alive = {p: n for p, (n, t) in self.seen.items() if still_running(p, t)}
            raise AssertionError("still running after %ss: %r" % (timeout, alive))
        for port in (self.api_port, self.sched_port):
            assert not listening(port), "port %d still listening" % port

    def cleanup(self):
        """Kills by pid whatever of ours is left (after a failed test)."""
        if self.popen and self.popen.poll() is None:
            self.refresh()
            self.popen.kill()
            self.popen.wait(5)
        for pid, (_, t) in self.seen.items():
            if still_running(pid, t):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def assert_no_sanitizer_report(self):
        text = self.log()
        for marker in SANITIZER_MARKERS:
            assert marker not in text, "run.sh output has a sanitizer report:\n" + text[-6000:]


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="dexter-run-")
    yield d
    subprocess.run(["rm", "-rf", d], check=False)


@pytest.fixture
def runs():
    started = []
    yield started
    for r in started:
        r.cleanup()


def create_cluster(run, name):
    r = requests.post(run.base() + "/clusters", data={"name": name, "provider": "aws", "type": "mesos"}, timeout=30)
    assert r.status_code == 201, r.text
    r = requests.get(run.base() + "/clusters/" + name, timeout=30)
    assert r.status_code == 200 and r.json()["name"] == name, r.text


# ------------------------------------------------------------------ tests --

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_starts_everything_and_stops_it(tmp, runs, sig):
    run = Run(tmp).start()
    runs.append(run)
    run.wait_ready()
    create_cluster(run, "runcluster")
    names = run.names()
    # every built service (the aws-worker too), and redis
    built = sorted(os.path.basename(p) for p in glob.glob(os.path.join(BIN_DIR, "dexter-*")))
    assert {"dexter-scheduler", "dexter-api", "dexter-aws-worker", "dexter-vpn"} <= set(built), built
    for expected in ["redis-server"] + built:
        assert expected in names, "run.sh did not start %s (children: %r)" % (expected, names)
    # and the aws-worker found the scheduler (the endpoint both read)
    wait_until(lambda: "worker joined service=aws" in run.log(), 15,
               "the aws-worker to join the scheduler")
    # and the vpn worker, with the scheduler's master key and nothing set
    wait_until(lambda: "worker joined service=vpn" in run.log(), 15,
               "the vpn worker to join the scheduler")
    assert listening(run.redis_port), "redis is not on DEXTER_REDIS_PORT"

    # The data lives under DEXTER_DATA_DIR: Redis's AOF, the master key.
    redis_dir = os.path.join(run.data_dir, "redis")
    aof = glob.glob(os.path.join(redis_dir, "**", "*.aof*"), recursive=True)
    assert aof, "no AOF under %s: %r" % (redis_dir, os.listdir(redis_dir) if os.path.isdir(redis_dir) else None)
    wait_until(lambda: any(b"runcluster" in open(p, "rb").read() for p in aof if os.path.isfile(p)),
               10, "the created cluster to be in the AOF under DEXTER_DATA_DIR/redis")
    key = os.path.join(run.data_dir, "master.key")
    assert os.path.isfile(key), "no generated master key at %s" % key
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600, oct(os.stat(key).st_mode)

    run.refresh()
    os.kill(run.popen.pid, sig)
    rc = run.wait_exit()
    assert rc == 0, "run.sh exited %d on %s:\n%s" % (rc, sig.name, run.log()[-3000:])
    run.assert_all_gone()
    assert not listening(run.redis_port), "redis still listening after run.sh stopped"
    run.assert_no_sanitizer_report()

    # Started again on the same data dir, the cluster is still there.
    again = Run(tmp, data_dir=run.data_dir).start()
    runs.append(again)
    again.wait_ready()
    r = requests.get(again.base() + "/clusters/runcluster", timeout=30)
    assert r.status_code == 200, r.text
    os.kill(again.popen.pid, signal.SIGTERM)
    assert again.wait_exit() == 0
    again.assert_all_gone()


def test_run_with_external_redis_starts_none(tmp, runs, stack_factory):
    external = stack_factory(start=False)
    external.start_redis()
    run = Run(tmp, env_extra={"DEXTER_REDIS_URL": "redis://127.0.0.1:%d/0" % external.redis_port}).start()
    runs.append(run)
    run.wait_ready()
    create_cluster(run, "extcluster")
    names = run.names()
    assert "redis-server" not in names, "run.sh started its own redis despite DEXTER_REDIS_URL: %r" % names
    assert "dexter-scheduler" in names and "dexter-api" in names, names
    assert not listening(run.redis_port), "something listens on DEXTER_REDIS_PORT"
    assert not os.path.exists(os.path.join(run.data_dir, "redis")), "run.sh prepared a redis dir it does not use"
    rc = external.redis_client()
    assert any("extcluster" in k for k in rc.scan_iter(match="dexter:*")), "the cluster is not in the external redis"

    os.kill(run.popen.pid, signal.SIGTERM)
    assert run.wait_exit() == 0
    run.assert_all_gone()
    assert external.redis.alive(), "run.sh stopped a redis it did not start"
    assert rc.ping()
    run.assert_no_sanitizer_report()


def test_run_stops_everything_when_a_service_dies(tmp, runs):
    run = Run(tmp).start()
    runs.append(run)
    run.wait_ready()
    os.kill(run.pid_of("dexter-api"), signal.SIGKILL)
    rc = run.wait_exit()
    assert rc != 0, "run.sh exited 0 although the api died:\n" + run.log()[-3000:]
    run.assert_all_gone()
    assert not listening(run.redis_port)
