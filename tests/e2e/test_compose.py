"""docker-compose.yml and the Dockerfile against the Makefile and the sources.

No Docker engine runs here, so these checks are static (but for the scripts
the Dockerfile writes, which are run here as they would be in the image), and
each one ties the deployment files to something the code or the build really
does:
- every service's command is a binary the Makefile builds
  (build/bin/dexter-X from services/X/main.c), or a script the Dockerfile
  installs beside them (dexter-api-cert);
- every DEXTER_* variable compose sets is one the C code reads
  (dx_config_str/dx_config_int("X") or getenv("DEXTER_X"));
- the published port is DEXTER_API_ADDR's port; a non-loopback api gets a
  mandatory DEXTER_API_TOKEN and serves HTTPS with the certificate api-cert
  makes in a volume before the api starts (and the api takes it, and a client
  trusting the CA beside it accepts it); the scheduler binds the endpoint the api
  connects to; Redis is the compose service named in DEXTER_REDIS_URL;
- the Dockerfile is Debian 12 based and installs from scripts/packages.txt,
  copies only paths that exist, and its entrypoint picks the service.
"""
import glob
import os
import re
import subprocess
import tempfile
from urllib.parse import urlparse

import requests
import yaml

from conftest import BIN_DIR, REPO, Proc, free_port, wait_until

COMPOSE = os.path.join(REPO, "docker-compose.yml")
DOCKERFILE = os.path.join(REPO, "Dockerfile")
DOCKERIGNORE = os.path.join(REPO, ".dockerignore")
VAR_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def compose():
    with open(COMPOSE) as f:
        return yaml.safe_load(f)


def dockerfile_lines():
    """Instructions with continuation lines joined, comments dropped."""
    with open(DOCKERFILE) as f:
        text = f.read()
    out, cur = [], ""
    for line in text.splitlines():
        if not cur and line.strip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        cur += line
        if cur.strip():
            out.append(cur.strip())
        cur = ""
    return out


def written_script(path):
    """The text of the file a Dockerfile RUN step writes with
    `printf '%s\\n' 'line' ... > path`."""
    runs = [l for l in dockerfile_lines() if "> " + path in l and "printf" in l]
    assert runs, "%s is not written by a RUN printf step (update this test)" % path
    m = re.search(r"printf '%s\\n' (.*?) > " + re.escape(path), runs[0])
    assert m, runs[0]
    return subprocess.run(["sh", "-c", "printf '%s\\n' " + m.group(1)], capture_output=True,
                          text=True, check=True, timeout=10).stdout


def image_scripts():
    """X for every /opt/dexter/bin/dexter-X script the Dockerfile writes."""
    return set(re.findall(r"> /opt/dexter/bin/dexter-([a-z0-9-]+)", "\n".join(dockerfile_lines())))


def env_of(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def variables_read_by_code():
    found = set()
    files = glob.glob(os.path.join(REPO, "common", "*.c")) + glob.glob(os.path.join(REPO, "services", "*", "*.c"))
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            src = f.read()
        found |= {"DEXTER_" + m for m in re.findall(r'dx_config_(?:str|int)\s*\(\s*"([A-Z0-9_]+)"', src)}
        found |= set(re.findall(r'getenv\s*\(\s*"(DEXTER_[A-Z0-9_]+)"', src))
    return found


def built_services():
    """X for every services/X/main.c: the Makefile's rule builds dexter-X."""
    with open(os.path.join(REPO, "Makefile")) as f:
        makefile = f.read()
    assert "services/%/main.c" in makefile and "bin/dexter-%" in makefile, \
        "the Makefile no longer builds bin/dexter-X from services/X/main.c; update this test"
    return {os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(REPO, "services", "*", "main.c"))}


def command_service(command):
    """The Dexter service a compose command runs (via the image entrypoint)."""
    argv = command if isinstance(command, list) else command.split()
    first = argv[0]
    return first[len("dexter-"):] if first.startswith("dexter-") else first


def dexter_services(c):
    """The compose services run from the Dockerfile's image."""
    return {name: svc for name, svc in c["services"].items() if "build" in svc}


def resolved(value):
    """A ${VAR:-default} value with its default (or the value itself)."""
    m = VAR_REF.fullmatch(value or "")
    if m and m.group(2) == ":-":
        return m.group(3)
    return value


# ------------------------------------------------------------------ tests --

def test_compose_shape():
    c = compose()
    assert str(c.get("version")) == "3.8"
    assert {"redis", "scheduler", "api"} <= set(c["services"])
    for name in ("scheduler", "api"):
        svc = c["services"][name]
        assert svc.get("build") in (".", {"context": "."}), "%s does not use the Dockerfile image" % name
    for name, svc in c["services"].items():
        for dep in svc.get("depends_on") or []:
            assert dep in c["services"], "%s depends on unknown %s" % (name, dep)


def test_commands_name_built_binaries():
    services = built_services() | image_scripts()
    for name, svc in dexter_services(compose()).items():
        assert "command" in svc, "%s has no command: the image would not know which service to run" % name
        svc_name = command_service(svc["command"])
        assert svc_name in services, \
            "%s runs dexter-%s, but the Makefile builds only %r" % (name, svc_name, sorted("dexter-" + s for s in services))
    assert command_service(compose()["services"]["scheduler"]["command"]) == "scheduler"
    assert command_service(compose()["services"]["api"]["command"]) == "api"


def test_dexter_variables_are_read_by_the_code():
    read = variables_read_by_code()
    assert read, "no DEXTER_* variable found in the C sources"
    for name, svc in compose()["services"].items():
        for var in env_of(svc):
            if var.startswith("DEXTER_"):
                assert var in read, "%s sets %s, which no C source reads (read: %s)" % (name, var, sorted(read))


def test_redis_service_and_url():
    c = compose()
    redis_svc = c["services"]["redis"]
    command = redis_svc.get("command") or []
    command = command if isinstance(command, list) else command.split()
    assert "redis-server" in command[0] and "--appendonly" in command and \
        command[command.index("--appendonly") + 1] == "yes", "redis must run with its AOF on: %r" % command
    assert any(str(v).split(":")[-1] == "/data" for v in redis_svc.get("volumes", [])), "redis data not on a volume"
    for name in ("scheduler",):
        url = urlparse(env_of(c["services"][name])["DEXTER_REDIS_URL"])
        assert url.scheme == "redis" and url.hostname in c["services"] and url.port == 6379, url
    # The api never talks to Redis (DESIGN.md).
    assert "DEXTER_REDIS_URL" not in env_of(c["services"]["api"])


def test_api_port_and_token():
    c = compose()
    api = c["services"]["api"]
    env = env_of(api)
    addr = env["DEXTER_API_ADDR"]
    host, port = addr.rsplit(":", 1)
    published = [str(p) for p in api.get("ports", [])]
    assert published, "the api publishes no port"
    for p in published:
        assert p.split(":")[-1] == port, "published %s does not reach DEXTER_API_ADDR's port %s" % (p, port)
    assert "%s:%s" % (port, port) in published
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
        token = env.get("DEXTER_API_TOKEN") or ""
        m = VAR_REF.fullmatch(token)
        assert m and m.group(1) == "DEXTER_API_TOKEN" and m.group(2) == ":?", \
            "a non-loopback api needs DEXTER_API_TOKEN, required from the environment (${DEXTER_API_TOKEN:?...}): %r" % token
    with open(COMPOSE) as f:
        assert "DEXTER_API_TOKEN" in "".join(l for l in f if l.lstrip().startswith("#")), \
            "the compose file does not explain the token in a comment"


def openssl(*args, check=True):
    return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60,
                          check=check)


def test_api_https():
    """The api serves HTTPS with the files api-cert makes, before the api
    starts, in a volume they share (its CA key in one the api does not
    mount). The script, run here as compose runs it, makes a pair the api
    takes and a client trusting ca.pem accepts; a later run keeps it, renews
    it near its end, and leaves a certificate of another CA alone."""
    c = compose()
    api, maker = c["services"]["api"], c["services"]["api-cert"]
    env = env_of(api)
    assert "DEXTER_API_INSECURE_HTTP" not in env, "the api is published: it must not serve plain HTTP"
    cert, key = env["DEXTER_API_TLS_CERT"], env["DEXTER_API_TLS_KEY"]
    tls_dir = os.path.dirname(cert)
    assert (os.path.basename(cert), os.path.dirname(key), os.path.basename(key)) == \
        ("api.pem", tls_dir, "api.key"), (cert, key)
    assert command_service(maker["command"]) == "api-cert"
    tls_arg, ca_arg, names = (resolved(a) for a in maker["command"][1:])
    assert tls_arg == tls_dir, (tls_arg, tls_dir)

    def mounts(svc):
        return {str(v).split(":")[1]: str(v).split(":")[0] for v in svc.get("volumes", [])}
    declared = set((c.get("volumes") or {}).keys())
    assert mounts(api).get(tls_dir) == mounts(maker).get(tls_dir) and mounts(api)[tls_dir] in declared, \
        "the api and api-cert do not share a volume at %s" % tls_dir
    assert mounts(maker).get(ca_arg) in declared and mounts(maker)[ca_arg] not in mounts(api).values(), \
        "the CA's key must be on a volume of its own, which the api does not mount"
    assert api["depends_on"]["api-cert"]["condition"] == "service_completed_successfully"
    assert str(maker.get("restart", "no")) == "no", "api-cert runs once per start"

    with tempfile.TemporaryDirectory() as d:
        tls, ca = os.path.join(d, "tls"), os.path.join(d, "ca")
        os.makedirs(tls)
        os.makedirs(ca)
        script = os.path.join(d, "dexter-api-cert")
        with open(script, "w") as f:
            f.write(written_script("/opt/dexter/bin/dexter-api-cert"))
        os.chmod(script, 0o755)

        def make():
            subprocess.run([script, tls, ca, names], check=True, capture_output=True, timeout=60)
            with open(os.path.join(tls, "api.pem")) as f:
                return f.read()

        def verifies():
            return openssl("verify", "-CAfile", os.path.join(tls, "ca.pem"), "-verify_hostname",
                           "localhost", os.path.join(tls, "api.pem"), check=False).returncode == 0

        first = make()
        assert verifies()
        assert os.stat(os.path.join(tls, "api.key")).st_mode & 0o077 == 0, "api.key is readable by others"
        assert not os.path.exists(os.path.join(tls, "ca.key")), "the CA key must stay in the CA volume"
        assert make() == first, "a second start must keep the certificate"

        # The api takes the pair; a client trusting ca.pem accepts it.
        port = free_port()
        proc_env = {k: v for k, v in os.environ.items() if not k.startswith("DEXTER_")}
        proc_env.update({"DEXTER_API_ADDR": "127.0.0.1:%d" % port, "DEXTER_API_TOKEN": "t0ken",
                         "DEXTER_API_TLS_CERT": os.path.join(tls, "api.pem"),
                         "DEXTER_API_TLS_KEY": os.path.join(tls, "api.key"),
                         "DEXTER_DATA_DIR": os.path.join(d, "data"),
                         "DEXTER_SCHEDULER_ENDPOINT": "tcp://127.0.0.1:%d" % free_port(),
                         "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1"})
        proc = Proc("api", [os.path.join(BIN_DIR, "dexter-api")], proc_env,
                    os.path.join(d, "api.log")).start()
        try:
            wait_until(lambda: "listening on https://" in proc.log() or not proc.alive(), 15,
                       "dexter-api to listen")
            r = requests.get("https://localhost:%d/api/v1.0/clusters" % port, timeout=20,
                             verify=os.path.join(tls, "ca.pem"))
            assert r.status_code == 401, r.text
        finally:
            assert proc.stop() == 0, proc.log()
        proc.assert_clean()

        # Near its end, renewed from the same CA; another CA's, kept.
        openssl("req", "-new", "-key", os.path.join(tls, "api.key"), "-subj", "/CN=soon",
                "-out", os.path.join(d, "soon.csr"))
        openssl("x509", "-req", "-in", os.path.join(d, "soon.csr"), "-CA", os.path.join(ca, "ca.pem"),
                "-CAkey", os.path.join(ca, "ca.key"), "-days", "1", "-out", os.path.join(tls, "api.pem"))
        renewed = make()
        assert renewed != first and verifies()
        assert openssl("x509", "-checkend", str(30 * 86400), "-noout", "-in",
                       os.path.join(tls, "api.pem"), check=False).returncode == 0
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-days", "1", "-subj", "/CN=elsewhere", "-keyout", os.path.join(d, "other.key"),
                "-out", os.path.join(tls, "api.pem"))
        with open(os.path.join(tls, "api.pem")) as f:
            other = f.read()
        assert make() == other, "api-cert replaced a certificate it did not sign"


def test_every_built_service_runs():
    """Every binary the Makefile builds has a compose service running it."""
    run = {command_service(svc["command"]) for svc in compose()["services"].values() if "command" in svc}
    missing = built_services() - run
    assert not missing, "no compose service runs dexter-%s" % ", dexter-".join(sorted(missing))


def test_worker_endpoint_bind_vs_connect():
    """The scheduler binds the workers' endpoint on every interface; every
    worker service connects to it by the scheduler's service name."""
    c = compose()
    bind = urlparse(env_of(c["services"]["scheduler"])["DEXTER_WORKER_ENDPOINT"])
    assert bind.scheme == "tcp" and bind.hostname in ("0.0.0.0", "*"), bind
    workers = [name for name, svc in c["services"].items()
               if command_service(svc.get("command", [""])) in ("aws-worker", "azure-worker", "vpn")]
    assert workers, "no worker service in compose"
    for name in workers:
        connect = urlparse(env_of(c["services"][name])["DEXTER_WORKER_ENDPOINT"])
        assert connect.hostname == "scheduler" and connect.port == bind.port, (name, bind, connect)
    with open(os.path.join(REPO, "common", "dx_worker.c"), encoding="utf-8") as f:
        assert re.search(r'"WORKER_ENDPOINT"|"DEXTER_WORKER_ENDPOINT"', f.read()), \
            "dx_worker.c no longer reads DEXTER_WORKER_ENDPOINT"


def test_scheduler_endpoint_bind_vs_connect():
    c = compose()
    bind = urlparse(env_of(c["services"]["scheduler"])["DEXTER_SCHEDULER_ENDPOINT"])
    connect = urlparse(env_of(c["services"]["api"])["DEXTER_SCHEDULER_ENDPOINT"])
    assert bind.scheme == connect.scheme == "tcp"
    assert bind.hostname in ("0.0.0.0", "*"), "the scheduler must bind every interface of its container: %r" % bind
    assert connect.hostname == "scheduler" and connect.port == bind.port, (bind, connect)
    # The scheduler really binds that variable (and the api connects to it).
    for svc in ("scheduler", "api"):
        text = ""
        for path in glob.glob(os.path.join(REPO, "services", svc, "*.c")):
            with open(path, encoding="utf-8", errors="replace") as f:
                text += f.read()
        assert re.search(r'dx_config_str\s*\(\s*"SCHEDULER_ENDPOINT"|getenv\s*\(\s*"DEXTER_SCHEDULER_ENDPOINT"', text), \
            "services/%s does not read DEXTER_SCHEDULER_ENDPOINT" % svc


def test_volumes():
    c = compose()
    declared = set((c.get("volumes") or {}).keys())

    def named(svc):
        return {str(v).split(":")[0]: str(v).split(":")[1] for v in svc.get("volumes", []) if ":" in str(v)}

    redis_vols = named(c["services"]["redis"])
    assert redis_vols and set(redis_vols) <= declared, redis_vols
    sched = c["services"]["scheduler"]
    data_dir = env_of(sched).get("DEXTER_DATA_DIR")
    assert data_dir, "the scheduler's DEXTER_DATA_DIR (master key) is not set"
    vols = named(sched)
    assert data_dir in vols.values(), "DEXTER_DATA_DIR %s is not on a volume: %r" % (data_dir, vols)
    assert {k for k, v in vols.items() if v == data_dir} <= declared


def test_dockerfile_base_and_packages():
    lines = dockerfile_lines()
    froms = [l.split()[1] for l in lines if l.upper().startswith("FROM ")]
    assert froms, "no FROM"
    for image in froms:
        assert re.fullmatch(r"debian:(12|bookworm)(-slim)?(@sha256:[0-9a-f]{64})?", image), \
            "base image %s is not Debian 12" % image
    text = "\n".join(lines)
    assert "scripts/packages.txt" in text, "the Dockerfile does not install from scripts/packages.txt"
    runs = [l for l in lines if l.upper().startswith("RUN ")]
    assert any("install-deps.sh" in r or "packages.txt" in r for r in runs), \
        "no RUN step reads scripts/packages.txt"
    assert any("make" in r.split() and "services" in r for r in runs), "the image does not build the services"
    # Every local COPY source exists in the repository.
    for l in lines:
        if l.upper().startswith("COPY ") and "--from" not in l:
            args = [a for a in l.split()[1:] if not a.startswith("--")]
            for src in args[:-1]:
                assert glob.glob(os.path.join(REPO, src.rstrip("/"))), "COPY source %s does not exist" % src
    assert any(l.upper().startswith("ENTRYPOINT ") for l in lines)
    with open(DOCKERIGNORE) as f:
        ignored = {l.strip().strip("/") for l in f if l.strip() and not l.startswith("#")}
    assert {"build", ".git"} <= ignored, "build output or .git would be sent to the image build"


def test_dockerfile_entrypoint_picks_the_service():
    """Runs the entrypoint script the Dockerfile writes, against stub
    binaries, for every command compose uses."""
    with tempfile.TemporaryDirectory() as d:
        script = written_script("/usr/local/bin/dexter-entrypoint")
        script = script.replace("/opt/dexter/bin", os.path.join(d, "bin")).replace(
            "/opt/dexter/scripts/run.sh", os.path.join(d, "run.sh"))
        os.makedirs(os.path.join(d, "bin"))
        for svc in built_services() | image_scripts() | {"scheduler", "api"}:
            stub = os.path.join(d, "bin", "dexter-" + svc)
            with open(stub, "w") as f:
                f.write("#!/bin/sh\necho dexter-%s \"$@\"\n" % svc)
            os.chmod(stub, 0o755)
        with open(os.path.join(d, "run.sh"), "w") as f:
            f.write("#!/bin/sh\necho run.sh \"$@\"\n")
        os.chmod(os.path.join(d, "run.sh"), 0o755)
        entry = os.path.join(d, "entrypoint")
        with open(entry, "w") as f:
            f.write(script)
        os.chmod(entry, 0o755)

        def run(*argv):
            return subprocess.run([entry, *argv], capture_output=True, text=True, timeout=10)

        for name, svc in dexter_services(compose()).items():
            argv = svc["command"] if isinstance(svc["command"], list) else svc["command"].split()
            out = run(*argv)
            assert out.returncode == 0 and out.stdout.split()[0] == "dexter-" + command_service(argv), (name, out)
        assert run("scheduler", "-x").stdout.split() == ["dexter-scheduler", "-x"]
        assert run("run").stdout.split() == ["run.sh"]
        assert run("echo", "hi").stdout.strip() == "hi"
        assert run().returncode != 0


def seconds(duration):
    """A compose duration such as 10s, 1m30s or 500ms, in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(duration))
    assert parts and "".join(n + u for n, u in parts) == str(duration), duration
    return sum(float(n) * units[u] for n, u in parts)


def image_packages():
    """The Debian packages of scripts/packages.txt that the runtime image
    installs (the Dockerfile's filter: no -dev, no build or python tools)."""
    with open(os.path.join(REPO, "scripts", "packages.txt")) as f:
        names = [l.split("#")[0].strip() for l in f]
    return {n for n in names if n and not n.endswith("-dev")
            and not re.fullmatch(r"gcc|make|pkg-config|python3.*", n)}


def test_healthchecks_and_start_order():
    """`docker compose up` starts in order: Redis; the scheduler once Redis
    is healthy; the api and every worker once the scheduler is. Each
    healthcheck runs a program its image has, on what the code serves, and
    waits longer than the probe it runs."""
    c = compose()
    services = c["services"]

    def waits_for(name, dep):
        deps = services[name].get("depends_on") or {}
        assert isinstance(deps, dict) and (deps.get(dep) or {}).get("condition") == "service_healthy", \
            "%s must wait for %s to be healthy: %r" % (name, dep, deps)
        assert services[dep].get("healthcheck"), "%s has no healthcheck to wait for" % dep

    waits_for("scheduler", "redis")
    waits_for("api", "scheduler")
    workers = [name for name, svc in services.items()
               if command_service(svc.get("command", [""])) in ("aws-worker", "azure-worker", "vpn")]
    assert workers
    for name in workers:
        waits_for(name, "scheduler")
    for name in ("redis", "scheduler", "api"):
        check = services[name]["healthcheck"]
        assert check["test"][0] == "CMD", (name, check)
        assert seconds(check["interval"]) > 0 and int(check["retries"]) >= 1, (name, check)

    assert services["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]

    # The scheduler: its own binary's probe, given longer than it waits.
    check = services["scheduler"]["healthcheck"]
    assert check["test"][1:] == ["dexter-scheduler", "--probe"], check
    assert "scheduler" in built_services()
    with open(os.path.join(REPO, "services", "scheduler", "main.c")) as f:
        assert '"--probe"' in f.read(), "dexter-scheduler takes no --probe"
    with open(os.path.join(REPO, "services", "scheduler", "sch_probe.h")) as f:
        probe_ms = int(re.search(r"#define SCH_PROBE_TIMEOUT_MS\s+(\d+)", f.read()).group(1))
    assert seconds(check["timeout"]) * 1000 > probe_ms, (check, probe_ms)

    # The api: curl (which the image installs) on /readyz, at the port and
    # with the scheme the api serves, failing on a 503, given longer than
    # the api waits for the scheduler.
    check = services["api"]["healthcheck"]
    argv = check["test"][1:]
    assert argv[0] == "curl" and "curl" in image_packages(), argv
    assert any(a.startswith("-") and not a.startswith("--") and "f" in a for a in argv), \
        "curl must fail on a 503 (-f): %r" % argv
    url = urlparse(argv[-1])
    env = env_of(services["api"])
    assert url.scheme == ("https" if env.get("DEXTER_API_TLS_CERT") else "http"), url
    assert url.hostname == "localhost" and str(url.port) == env["DEXTER_API_ADDR"].rsplit(":", 1)[1]
    assert url.path == "/readyz", url
    with open(os.path.join(REPO, "services", "api", "api_route.c")) as f:
        assert '"/readyz"' in f.read(), "the api routes no /readyz"
    api_timeout_ms = int(resolved(env["DEXTER_API_TIMEOUT_MS"]))
    assert seconds(check["timeout"]) * 1000 > api_timeout_ms, (check, api_timeout_ms)


def test_api_healthcheck_runs():
    """The api's healthcheck command, run here against an HTTPS api whose
    certificate does not name localhost (API_CERT_NAMES may leave it out):
    it fails while no scheduler answers (/readyz: 503), and the same
    command on /healthz succeeds."""
    argv = compose()["services"]["api"]["healthcheck"]["test"][1:]
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "api.pem"), os.path.join(d, "api.key")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-days", "1", "-subj", "/CN=dexter.example.com", "-addext",
                "subjectAltName=DNS:dexter.example.com", "-keyout", key, "-out", cert)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEXTER_")}
        env.update({"DEXTER_API_ADDR": "127.0.0.1:%d" % port, "DEXTER_API_TOKEN": "t0ken",
                    "DEXTER_API_TLS_CERT": cert, "DEXTER_API_TLS_KEY": key,
                    "DEXTER_API_TIMEOUT_MS": "300", "DEXTER_DATA_DIR": os.path.join(d, "data"),
                    "DEXTER_SCHEDULER_ENDPOINT": "tcp://127.0.0.1:%d" % free_port(),
                    "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1"})
        proc = Proc("api", [os.path.join(BIN_DIR, "dexter-api")], env,
                    os.path.join(d, "api.log")).start()
        try:
            wait_until(lambda: "listening on https://" in proc.log() or not proc.alive(), 15,
                       "dexter-api to listen")
            local = [a.replace("localhost:%s" % urlparse(argv[-1]).port, "localhost:%d" % port)
                     for a in argv]
            ready = subprocess.run(local, capture_output=True, text=True, timeout=30)
            assert ready.returncode == 22, (ready.returncode, ready.stderr)     # HTTP 503
            assert "503" in ready.stderr, ready.stderr
            alive = subprocess.run(local[:-1] + [local[-1].replace("/readyz", "/healthz")],
                                   capture_output=True, text=True, timeout=30)
            assert alive.returncode == 0 and '"status":"ok"' in alive.stdout, (alive.returncode,
                                                                              alive.stderr)
        finally:
            assert proc.stop() == 0, proc.log()
        proc.assert_clean()
