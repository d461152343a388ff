"""bench/common.py: what the benches that start their own redis-server,
dexter-scheduler and dexter-api share (bench/metrics/bench.py,
bench/slices/bench.py): bench/deploy/bench.py's and bench/api/bench.py's
helpers, loaded once so that every bench catches the one Failed, the
services' start and environment, and the command line around a run.
"""
import importlib.util
import os
import shutil
import signal
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _module(name, path):
    """Loads the script at path (from ROOT) as module name."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


deploy = _module("deploy_bench", "bench/deploy/bench.py")
apibench = _module("api_bench", "bench/api/bench.py")
say, Failed, api = deploy.say, deploy.Failed, deploy.api


def start_redis(procs, work, api_timeout_ms):
    """Starts redis-server (appendonly yes, appendfsync always, as in
    production) on a free loopback port with the caller's environment less
    its DEXTER_ and AWS_ variables. Returns the services' environment: that
    Redis, free ports for the scheduler and the api, DEXTER_LOG_LEVEL=warn
    and DEXTER_API_TIMEOUT_MS=api_timeout_ms."""
    redis_port, sched_port, api_port = (deploy.free_port() for _ in range(3))
    os.makedirs(os.path.join(work, "redis"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("DEXTER_", "AWS_"))}
    procs.start("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port),
                          "--dir", os.path.join(work, "redis"), "--appendonly", "yes",
                          "--appendfsync", "always", "--save", "", "--protected-mode", "yes"], base_env)
    return dict(base_env, DEXTER_REDIS_URL="redis://127.0.0.1:%d/0" % redis_port,
                DEXTER_SCHEDULER_ENDPOINT="tcp://127.0.0.1:%d" % sched_port,
                DEXTER_API_ADDR="127.0.0.1:%d" % api_port, DEXTER_DATA_DIR=os.path.join(work, "data"),
                DEXTER_MASTER_KEY=os.urandom(32).hex(), DEXTER_API_TIMEOUT_MS=str(api_timeout_ms),
                DEXTER_LOG_LEVEL="warn")


def api_base(env):
    """The URL of /api/v1.0 on the api that env configures."""
    return "http://127.0.0.1:%s/api/v1.0" % env["DEXTER_API_ADDR"].rsplit(":", 1)[1]


def start_services(procs, bin_dir, env, ready="/clusters"):
    """Starts dexter-scheduler and dexter-api from bin_dir with env. Returns
    both processes and the api's base URL once GET base + ready answers 200
    (30 s at the most)."""
    sched = procs.start("scheduler", [os.path.join(bin_dir, "dexter-scheduler")], env)
    api_p = procs.start("api", [os.path.join(bin_dir, "dexter-api")], env)
    base = api_base(env)
    deploy.wait_for(lambda: deploy.up(base + ready), 30, "the api", procs)
    return sched, api_p, base


def main(doc, name, settings, measure):
    """The command line of a bench: any argument prints doc (status 0 for
    -h and --help, else 2). Without one: settings() reads the bench's own
    settings (or exits), the binaries and wrk must be there, then
    measure(procs, work, bin_dir, doc_path, settings) runs in a new work
    directory with procs stopped at the end, also on SIGTERM or SIGINT.
    Returns the exit status: 0 when measured, 1 when it raised Failed."""
    if len(sys.argv) > 1:
        print(doc.strip())
        return 0 if sys.argv[1] in ("-h", "--help") else 2
    bin_dir = deploy.bin_dir()
    out = os.environ.get("BENCH_DOC") or os.path.join(ROOT, "docs", "BENCHMARKS.md")
    s = settings()
    for exe in ("dexter-scheduler", "dexter-api"):
        if not os.access(os.path.join(bin_dir, exe), os.X_OK):
            sys.exit("bench: %s/%s is missing: run 'make services' (or set DEXTER_BIN_DIR)" % (bin_dir, exe))
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is not installed")

    def interrupted(signum, frame):
        raise Failed("interrupted by signal %d" % signum)
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    work = tempfile.mkdtemp(prefix="dexter-bench-%s." % name)
    procs = deploy.Procs(work)
    ok = False
    try:
        measure(procs, work, bin_dir, out, s)
        ok = True
    except Failed as e:
        print("\nbench: FAILED: %s" % e, file=sys.stderr)
    finally:
        deploy.finish(procs, work, ok)
    return 0 if ok else 1
