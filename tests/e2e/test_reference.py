"""The reference (shared/reference/dexter-cluster-api.txt) is the compatibility
contract: every curl line in it must work exactly as written.

The lines are read from the reference file itself at test time, split into its
sections by their headings, and run verbatim through `bash -c`. The only
changes are `localhost:5555` -> `127.0.0.1:<api port>`, the environment
(cluster_name, group_name, key_id, secret, ssh_user, ssh_password, a HOME with
.ssh/reference.pem, a cwd with an Azure `credentials` file) and a shell
function named `curl` that records its argv and adds `-sS -w "\\n%{http_code}"`
(and a time limit) to the real curl, so the text of each line stays as it is.

What each line did is judged from its own arguments (method, path, -d fields)
against docs/api.md: statuses, and that the resource afterwards shows it.
"""
import base64
import json
import math
import os
import re
import subprocess
import tempfile
import time
import uuid

import pytest
import requests

import openapi_check
from conftest import REFERENCE, SHARED_REFERENCE, wait_until

SECTIONS = [
    "Cluster List API Requests",
    "Cluster Entity API Requests",
    "Cluster Config API Requests",
    "Cluster Slave group list API Requests",
    "Cluster Slave group API Requests",
    "Cluster Deployment API Requests",
    "Common usage scenario for Mesos on AWS",
    "Common usage scenario for Mesos on Azure",
    "Common usage scenario for DCOS on AWS",
    "Common usage scenario for DCOS on Azure",
    "Mesos Cluster VPN Access",
    "DCOS Cluster VPN Access",
]
# The first six sections list independent examples: each line runs against a
# fresh cluster prepared so that the example makes sense on its own. The four
# scenarios run top to bottom against one cluster, as a user would.
REQUEST_SECTIONS = SECTIONS[:6]
SCENARIOS = SECTIONS[6:10]
VPN_SECTIONS = SECTIONS[10:]

# Lines mentioning curl that are deliberately not run, each with the reason.
SKIPPED = [
    # "go to curl -X http://…/deployment": `-X` takes the URL as the request
    # method, so curl has no URL at all; the line cannot work as written. The
    # DCOS section has the same sentence without `-X`, and that one is run.
    (re.compile(r"go to curl -X http://"), "malformed: -X takes the URL as the method"),
    # echo -e `curl -qs …/deployment/vpn | tr -d '"'`: needs a deployed access
    # node (no worker runs in these tests). test_vpn_profile_not_yet instead
    # checks that GET …/deployment/vpn answers 404 with a clear JSON message.
    (re.compile(r"^echo -e \\`curl -qs .*/deployment/vpn"), "needs a deployed access node"),
]

# Lines of the reference that contain "curl", counted when this test was
# written; the parser must find at least this many (guards against reading
# the wrong file or a parser that silently drops lines).
MIN_CURL_MENTIONS = 46
MIN_RUNNABLE = 43

ENV_VALUES = {
    "group_name": "slaves1",
    "key_id": "AKIAIOSFODNN7EXAMPLE",
    # Has '/' and an unencoded '+': curl -d sends '+', which a form decoder
    # reads as a space, which docs/api.md says is read back as '+'.
    "secret": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "ssh_user": "dexter",
    "ssh_password": "Secr3t.Passw0rd",
}

# vCPUs and GiB of the instance types the reference uses (published figures).
INSTANCES = {
    "m3.large": (2, 7.5), "m5.xlarge": (4, 16), "r3.xlarge": (4, 30.5),
    "Basic_A2": (2, 3.5), "Standard_D11": (2, 14),
}
IN_PROGRESS = ("deploying", "destroying")
RESOURCES_MAY_EXIST = ("deploying", "deployed", "deploy_failed", "destroying", "destroy_failed")
FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")


# ---------------------------------------------------------------- parsing --

def read_reference():
    with open(REFERENCE, encoding="utf-8") as f:
        return f.read()


def split_sections(text):
    """{heading: [lines]} for every heading in SECTIONS, in file order."""
    lines = text.splitlines()
    starts = []
    for i, line in enumerate(lines):
        if line.strip() in SECTIONS:
            starts.append((i, line.strip()))
    found = [h for _, h in starts]
    assert found == SECTIONS, "section headings missing or out of order: %r" % found
    out = {}
    for n, (i, heading) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        out[heading] = lines[i + 1:end]
    return out


def parse_commands(section_lines):
    """(commands, skipped): the runnable curl command lines of a section, in
    order, and the (line, reason) of those deliberately not run. Any line that
    mentions curl and fits neither is an error, never silently dropped."""
    commands, skipped = [], []
    for line in section_lines:
        if "curl" not in line:
            continue
        text = line.strip()
        reason = next((why for rx, why in SKIPPED if rx.search(text)), None)
        if reason:
            skipped.append((text, reason))
        elif text.startswith("curl "):
            commands.append(text)
        else:
            # A command inside a sentence: "go to curl http://… and save …".
            m = re.search(r"\b(curl http://\S+) and save\b", text)
            assert m, "a line mentions curl in a form the parser does not know: %r" % text
            commands.append(m.group(1))
    return commands, skipped


def all_commands():
    sections = split_sections(read_reference())
    return {h: parse_commands(sections[h]) for h in SECTIONS}


# ------------------------------------------------------------- environment --

@pytest.fixture(scope="module")
def user_env():
    """HOME with ~/.ssh/reference.pem, a cwd with an Azure `credentials` file,
    and the variables the reference uses."""
    root = tempfile.mkdtemp(prefix="dexter-ref-")
    home = os.path.join(root, "home")
    cwd = os.path.join(root, "cwd")
    os.makedirs(os.path.join(home, ".ssh"))
    os.makedirs(cwd)
    pem = os.path.join(home, ".ssh", "reference.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", pem], check=True, capture_output=True, timeout=60)
    creds = {
        "clientId": str(uuid.uuid4()),
        "clientSecret": "x8Q~reference.client-secret_" + uuid.uuid4().hex[:8],
        "subscriptionId": str(uuid.uuid4()),
        "tenantId": str(uuid.uuid4()),
        "activeDirectoryEndpointUrl": "https://login.microsoftonline.com",
        "resourceManagerEndpointUrl": "https://management.azure.com/",
        "activeDirectoryGraphResourceId": "https://graph.windows.net/",
        "sqlManagementEndpointUrl": "https://management.core.windows.net:8443/",
        "galleryEndpointUrl": "https://gallery.azure.com/",
        "managementEndpointUrl": "https://management.core.windows.net/",
    }
    with open(os.path.join(cwd, "credentials"), "w") as f:
        json.dump(creds, f, indent=2)
        f.write("\n")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8",
           "DX_ARGV": os.path.join(root, "argv")}
    env.update(ENV_VALUES)
    with open(pem) as f:
        pem_text = f.read()
    yield {"env": env, "cwd": cwd, "root": root, "pem": pem_text, "creds": creds}
    subprocess.run(["rm", "-rf", root], timeout=30)


class Ran:
    """One line as run: its argv as curl saw it, the status and the body."""

    def __init__(self, line, argv, status, body):
        self.line, self.argv, self.status, self.raw = line, argv, status, body
        self.method, self.url, self.fields = parse_argv(argv)
        self.path = re.sub(r"^http://[^/]+/api/v1\.0", "", self.url).rstrip("/") or "/"

    @property
    def json(self):
        try:
            return json.loads(self.raw)
        except ValueError:
            raise AssertionError("not JSON (%s) from %s:\n%r" % (self.status, self.line, self.raw[:500]))

    def __repr__(self):
        return "%s %s -> %s %s" % (self.method, self.path, self.status, self.raw[:400])


def parse_argv(argv):
    method, url, fields, data = None, None, {}, False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-X":
            method = argv[i + 1]
            i += 1
        elif a == "-d":
            key, _, value = argv[i + 1].partition("=")
            assert key not in fields, "a reference line repeats %s" % key
            fields[key] = value
            data = True
            i += 1
        elif a.startswith("http://"):
            url = a
        else:
            raise AssertionError("unexpected curl argument %r in %r" % (a, argv))
        i += 1
    assert url, "no URL in %r" % argv
    return method or ("POST" if data else "GET"), url, fields


def run_line(stack, user_env, line, cluster_name):
    """Runs one reference line verbatim (but for the address) in bash."""
    port_line = line.replace("localhost:5555", "127.0.0.1:%d" % stack.api_port)
    assert port_line != line, "line has no localhost:5555: %r" % line
    wrapper = ('curl() { printf "%s\\0" "$@" > "$DX_ARGV"; '
               'command curl -sS -m 20 -D "$DX_ARGV.head" -w "\\n%{http_code}" "$@"; }; ')
    env = dict(user_env["env"], cluster_name=cluster_name)
    for stale in (env["DX_ARGV"], env["DX_ARGV"] + ".head"):
        try:
            os.unlink(stale)
        except FileNotFoundError:
            pass
    p = subprocess.run(["bash", "-c", wrapper + port_line], cwd=user_env["cwd"], env=env,
                       capture_output=True, timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, "line failed (rc %s): %s\nstderr: %s\nstdout: %s" % (
        p.returncode, line, p.stderr.decode("utf-8", "replace"), out)
    with open(env["DX_ARGV"], "rb") as f:
        argv = [a.decode("utf-8") for a in f.read().split(b"\0")[:-1]]
    body, _, status = out.rpartition("\n")
    assert re.fullmatch(r"\d{3}", status), "no status from %s: %r" % (line, out)
    ran = Ran(line, argv, int(status), body)
    # The answer's head (the last, after any 100 Continue) for the check
    # against docs/openapi.yaml.
    with open(env["DX_ARGV"] + ".head", "rb") as f:
        head = f.read().decode("latin-1").replace("\r\n", "\n").strip().split("\n\n")[-1]
    headers = dict(h.split(":", 1) for h in head.split("\n")[1:] if ":" in h)
    openapi_check.answer(ran.method, ran.url, ran.status,
                         {k.strip(): v.strip() for k, v in headers.items()}, body.encode("utf-8"))
    return ran


# ----------------------------------------------------------------- checks --

def api(stack, method, path, **kw):
    return requests.request(method, stack.url(path), timeout=10, **kw)


def get_json(stack, path):
    r = api(stack, "GET", path)
    return r.status_code, (r.json() if r.content else None)


def assert_error(body, status, code):
    assert isinstance(body, dict), body
    assert body.get("code") == code, "expected code %s in %s" % (code, body)
    assert isinstance(body.get("message"), str) and body["message"], body


def hosts_for(instance_type, cpus, ram):
    assert instance_type in INSTANCES, "test table lacks %s" % instance_type
    vcpus, mem = INSTANCES[instance_type]
    return max(math.ceil(cpus / vcpus), math.ceil(ram / mem))


def cluster_of(path):
    m = re.match(r"^/clusters/([^/]+)", path)
    return m.group(1) if m else None


def pre_state(stack, method, path, fields):
    """What the api knows before a line runs, to say what the line must do."""
    state = {}
    name = cluster_of(path)
    if name:
        st, body = get_json(stack, "/clusters/" + name)
        state["cluster"] = body if st == 200 else None
        if st == 200:
            st, dep = get_json(stack, "/clusters/%s/deployment" % name)
            assert st == 200, (st, dep)
            state["deployment"] = dep
            if path.endswith("/groups") and method == "POST":
                st, _ = get_json(stack, "/clusters/%s/groups/%s" % (name, fields.get("name")))
                state["group_exists"] = st == 200
    return state


def check(stack, ran, pre):
    """Asserts that the line's answer and the resulting state are what
    docs/api.md says this request does. Returns a note for the log."""
    m, path, f = ran.method, ran.path, ran.fields
    name = cluster_of(path)
    dep_state = (pre.get("deployment") or {}).get("state")

    if path == "/clusters" and m == "GET":
        assert ran.status == 200, ran
        b = ran.json
        assert isinstance(b["clusters"], list) and b["count"] == len(b["clusters"]), b
        names = [c["name"] for c in b["clusters"]]
        assert names == sorted(names), names
        for c in b["clusters"]:
            assert set(c) >= {"name", "provider", "type", "state", "created_at"}, c
        return

    if path == "/clusters" and m == "POST":
        assert ran.status == 201, ran
        b = ran.json
        assert (b["name"], b["provider"], b["type"]) == (f["name"], f["provider"], f["type"]), b
        st, c = get_json(stack, "/clusters/" + f["name"])
        assert st == 200 and c["provider"] == f["provider"] and c["type"] == f["type"], c
        assert c["deployment"]["state"] == "init" and c["configured"] is False, c
        st, lst = get_json(stack, "/clusters")
        assert f["name"] in [x["name"] for x in lst["clusters"]], lst
        return

    if re.fullmatch(r"/clusters/[^/]+", path) and m == "GET":
        assert ran.status == 200, ran
        b = ran.json
        assert b["name"] == name, b
        assert set(b) >= {"name", "provider", "type", "created_at", "updated_at", "configured",
                          "groups", "hosts", "deployment"}, b
        return

    if re.fullmatch(r"/clusters/[^/]+", path) and m == "DELETE":
        if dep_state in RESOURCES_MAY_EXIST:
            # Resources may exist in the cloud: docs/api.md wants 409 and a
            # message telling to destroy first; then the test forces it.
            assert ran.status == 409, ran
            assert_error(ran.json, 409, "CONFLICT")
            assert "destroy" in ran.json["message"].lower(), ran.json
            r = api(stack, "DELETE", "/clusters/%s?force=true" % name)
            assert r.status_code == 200 and r.json() == {"deleted": name}, r.text
        else:
            assert ran.status == 200, ran
            assert ran.json == {"deleted": name}, ran.json
        st, body = get_json(stack, "/clusters/" + name)
        assert st == 404, (st, body)
        assert_error(body, 404, "NOT_FOUND")
        rc = stack.redis_client()
        try:
            left = list(rc.scan_iter("dexter:{%s}*" % name, count=1000))
            assert left == [], "keys of deleted cluster %s remain: %s" % (name, left)
            assert rc.zscore("dexter:clusters", name) is None, "still in dexter:clusters"
        finally:
            rc.close()
        return

    if path.endswith("/config"):
        if m == "GET":
            assert ran.status == 200, ran
            check_config_shape(ran.json, pre["cluster"]["provider"])
        elif m == "DELETE":
            assert ran.status == 200, ran
            assert ran.json == {"deleted": "config"}, ran.json
            st, body = get_json(stack, path)
            assert st == 404, (st, body)
            assert_error(body, 404, "NOT_FOUND")
        elif m == "PUT":
            assert ran.status == 200, ran
            provider = pre["cluster"]["provider"]
            check_config_matches(ran.json, provider, f)
            st, body = get_json(stack, path)
            assert st == 200, (st, body)
            check_config_matches(body, provider, f)
            assert body["sshkeydata" if provider == "aws" else "ssh_password"] == \
                ran.json["sshkeydata" if provider == "aws" else "ssh_password"]
            st, c = get_json(stack, "/clusters/" + name)
            assert c["configured"] is True and c["hosts"]["masters"] == int(f["masters"]), c
        else:
            raise AssertionError("no check for %r" % ran)
        return

    if path.endswith("/groups"):
        if m == "GET":
            assert ran.status == 200, ran
            groups = ran.json["groups"]
            names = [g["name"] for g in groups]
            assert names == sorted(names), names
            assert names == pre["cluster"]["groups"], (names, pre["cluster"])
        elif m == "POST":
            # New group: 201; an existing name replaces the group: 200.
            assert ran.status == (200 if pre["group_exists"] else 201), ran
            check_group_matches(ran.json, pre["cluster"]["provider"], f)
            st, g = get_json(stack, "%s/%s" % (path, f["name"]))
            assert st == 200, (st, g)
            check_group_matches(g, pre["cluster"]["provider"], f)
            check_cluster_hosts(stack, name)
        else:
            raise AssertionError("no check for %r" % ran)
        return

    gm = re.fullmatch(r"/clusters/[^/]+/groups/([^/]+)", path)
    if gm:
        group = gm.group(1)
        if m == "GET":
            assert ran.status == 200, ran
            assert ran.json["name"] == group, ran.json
        elif m == "DELETE":
            assert ran.status == 200, ran
            assert ran.json == {"deleted": group}, ran.json
            st, body = get_json(stack, path)
            assert st == 404, (st, body)
            assert_error(body, 404, "NOT_FOUND")
        elif m == "PUT":
            assert ran.status == 200, ran
            check_group_matches(ran.json, pre["cluster"]["provider"], f)
            st, g = get_json(stack, "/clusters/%s/groups/%s" % (name, f["name"]))
            assert st == 200, (st, g)
            check_group_matches(g, pre["cluster"]["provider"], f)
            if f["name"] != group:   # a rename: the old name is gone
                st, body = get_json(stack, path)
                assert st == 404, (st, body)
            check_cluster_hosts(stack, name)
        else:
            raise AssertionError("no check for %r" % ran)
        return

    if path.endswith("/deployment"):
        if m == "GET":
            assert ran.status == 200, ran
            check_deployment_shape(ran.json, name)
            assert "_accessip" in ran.json, ran.json
        elif m == "DELETE":
            assert dep_state == "init", "this check expects a line run before any deploy"
            assert ran.status == 200, ran
            assert ran.json == {"deleted": "deployment"}, ran.json
            st, d = get_json(stack, path)
            assert st == 200 and d["state"] == "init", d
        elif m == "PUT":
            check_deployment_put(stack, ran, pre, name)
        else:
            raise AssertionError("no check for %r" % ran)
        return

    raise AssertionError("the test has no check for %r" % ran)


def check_config_shape(b, provider):
    common = {"master_type", "masters", "updated_at"}
    if provider == "aws":
        assert set(b) >= common | {"region", "sshkey", "sshkeydata"}, b
        secret = b["sshkeydata"]
    else:
        assert set(b) >= common | {"location", "location_name", "ssh_user", "ssh_password"}, b
        secret = b["ssh_password"]
    assert secret["set"] is True and FINGERPRINT.match(secret["fingerprint"]), secret
    assert isinstance(b["masters"], int), b


def check_config_matches(b, provider, f):
    check_config_shape(b, provider)
    assert b["masters"] == int(f["masters"]), b
    assert b["master_type"] == f.get("master_type", "m3.large" if provider == "aws" else "Basic_A2"), b
    if provider == "aws":
        assert (b["region"], b["sshkey"]) == (f["region"], f["sshkey"]), b
        text = json.dumps(b)
        assert "PRIVATE KEY" not in text and f["sshkeydata"][:40] not in text, "secret shown: %s" % b
    else:
        assert b["ssh_user"] == f["ssh_user"], b
        if f["location"] == "Central US":
            assert (b["location"], b["location_name"]) == ("centralus", "Central US"), b
        assert f["ssh_password"] not in json.dumps(b), "password shown: %s" % b


def check_group_matches(g, provider, f):
    assert set(g) >= {"name", "role", "attributes", "vars", "instance_type", "cpus", "ram",
                      "disk_size", "customhwconf", "hosts", "instance", "created_at",
                      "updated_at"}, g
    assert g["name"] == f["name"] and g["role"] == f["role"], g
    assert g["attributes"] == json.loads(f["attributes"]), g
    assert g["vars"] == json.loads(f["vars"]), g
    itype = f.get("instance_type") or ("m5.xlarge" if provider == "aws" else None)
    assert itype, "azure groups in the reference always name an instance type"
    assert g["instance_type"] == itype, g
    assert (g["cpus"], g["ram"], g["disk_size"]) == (int(f["cpus"]), int(f["ram"]),
                                                     int(f["disk_size"])), g
    assert g["hosts"] == hosts_for(itype, int(f["cpus"]), int(f["ram"])), g
    vcpus, mem = INSTANCES[itype]
    assert g["instance"]["vcpus"] == vcpus and float(g["instance"]["memory_gib"]) == mem, g
    assert g["customhwconf"] == {"disks": []}, g


def check_cluster_hosts(stack, name):
    """The cluster's agent count is the sum of its groups' hosts."""
    st, c = get_json(stack, "/clusters/" + name)
    st2, gl = get_json(stack, "/clusters/%s/groups" % name)
    assert st == 200 and st2 == 200, (c, gl)
    assert c["groups"] == [g["name"] for g in gl["groups"]], (c, gl)
    assert c["hosts"]["agents"] == sum(g["hosts"] for g in gl["groups"]), (c, gl)


def check_deployment_shape(d, name):
    assert set(d) >= {"cluster", "state", "command", "generation", "observed_generation",
                      "parallelism", "progress", "waiting", "last_error", "created_at",
                      "updated_at", "started_at", "finished_at", "_accessip"}, d
    assert d["cluster"] == name, d
    assert set(d["progress"]) >= {"steps_done", "steps_total", "current"}, d


def check_deployment_put(stack, ran, pre, name):
    dep = pre["deployment"]
    f = ran.fields
    if dep["state"] in IN_PROGRESS:
        # This issue has no workers: the previous deploy of the scenario is
        # still waiting, and docs/api.md says 409 while one is in progress.
        assert ran.status == 409, ran
        assert_error(ran.json, 409, "CONFLICT")
        assert "in progress" in ran.json["message"].lower(), ran.json
        st, d = get_json(stack, "/clusters/%s/deployment" % name)
        assert d["generation"] == dep["generation"] and d["state"] == dep["state"], d
        return
    assert f["command"] == "deploy", "only a deploy can start from state %s" % dep["state"]
    assert ran.status == 202, ran
    b = ran.json
    check_deployment_shape(b, name)
    assert b["generation"] == dep["generation"] + 1, (dep, b)
    assert b["state"] == "deploying" and b["command"] == "deploy", b
    assert b["parallelism"] == int(f.get("parallelism", 5)), b
    text = json.dumps(b)
    for secret in ("secret", "key_id"):
        assert ENV_VALUES[secret] not in text, "credential shown: %s" % b

    def waiting():
        st, d = get_json(stack, "/clusters/%s/deployment" % name)
        return d if st == 200 and isinstance(d.get("waiting"), str) and d["waiting"] else None
    d = wait_until(waiting, 5, "GET deployment to say why it waits (no worker connected)")
    assert d["state"] == "deploying" and d["generation"] == b["generation"], d


# ------------------------------------------------------------ preparation --

class Namer:
    def __init__(self, prefix):
        self.prefix, self.n = prefix, 0

    def __call__(self):
        self.n += 1
        return "%s%d" % (self.prefix, self.n)


def text_route(line):
    """Method, path and field names of a line, read from its text (before it
    runs, to prepare what the example assumes exists)."""
    m = re.search(r"-X (\w+)", line)
    url = re.search(r"http://localhost:5555/api/v1\.0(\S*)", line)
    assert url, line
    fields = re.findall(r'-d "?(\w+)=', line)
    method = m.group(1) if m else ("POST" if fields else "GET")
    path = url.group(1).replace("${cluster_name}", "N").replace("${group_name}", "G")
    return method, path, fields


def aws_config(user_env):
    pem64 = base64.b64encode(user_env["pem"].encode()).decode()
    return {"master_type": "m3.xlarge", "masters": "1", "region": "eu-west-1",
            "sshkey": "other", "sshkeydata": pem64}


def azure_config():
    return {"location": "westeurope", "masters": "1", "ssh_user": "prep",
            "ssh_password": "Prep.Passw0rd", "master_type": "Basic_A2"}


def prepare(stack, user_env, line, name):
    """Creates what the example line assumes exists, for a fresh `name`."""
    method, path, fields = text_route(line)
    provider = "azure" if ("credentials" in fields or "location" in fields) else "aws"
    if path == "/clusters":
        return
    with_config = (path.endswith("/config") and method in ("GET", "DELETE")
                   or path.endswith("/deployment") and method == "PUT")
    with_group = path.endswith("/groups/G") or path.endswith("/deployment") and method == "PUT"
    make_cluster(stack, user_env, name, provider, with_config, with_group)


def make_cluster(stack, user_env, name, provider, with_config, with_group):
    r = api(stack, "POST", "/clusters", data={"name": name, "provider": provider, "type": "mesos"})
    assert r.status_code == 201, r.text
    if with_config:
        cfg = aws_config(user_env) if provider == "aws" else azure_config()
        r = api(stack, "PUT", "/clusters/%s/config" % name, data=cfg)
        assert r.status_code == 200, r.text
    if with_group:
        g = {"name": ENV_VALUES["group_name"], "role": "*", "attributes": "{}", "vars": "{}",
             "instance_type": "m3.large" if provider == "aws" else "Basic_A2",
             "cpus": "2", "ram": "4", "disk_size": "20"}
        r = api(stack, "POST", "/clusters/%s/groups" % name, data=g)
        assert r.status_code == 201, r.text


# ------------------------------------------------------------------ tests --

RUN_COUNT = {}


def test_parser_finds_every_curl_line():
    text = read_reference()
    mentions = [l for l in text.splitlines() if "curl" in l]
    assert len(mentions) >= MIN_CURL_MENTIONS, "reference shrank? %d" % len(mentions)
    parsed = all_commands()
    runnable = sum(len(c) for c, _ in parsed.values())
    skipped = sum(len(s) for _, s in parsed.values())
    # Every mention is either run or skipped with a reason, none lost.
    assert runnable + skipped == len(mentions), (runnable, skipped, len(mentions))
    assert skipped == 3, [s for _, ss in parsed.values() for s in ss]
    assert runnable >= MIN_RUNNABLE, runnable
    # Mentions before the first heading would be lost by the split.
    first = text.index(SECTIONS[0])
    assert "curl" not in text[:first]
    for h in REQUEST_SECTIONS + SCENARIOS:
        assert parsed[h][0], "no curl line in section %r" % h


@pytest.mark.parametrize("section", REQUEST_SECTIONS)
def test_request_examples(shared_stack, user_env, section):
    """Each example line of the API reference sections, on a fresh cluster
    holding what the example assumes."""
    commands, skipped = all_commands()[section]
    assert commands and not skipped
    namer = Namer("ref%dl" % REQUEST_SECTIONS.index(section))
    ran = 0
    for line in commands:
        name = namer()
        prepare(shared_stack, user_env, line, name)
        method, path, fields = text_route(line)
        pre = pre_state(shared_stack, method, path.replace("/N", "/" + name, 1)
                        .replace("/G", "/" + ENV_VALUES["group_name"]),
                        {"name": ENV_VALUES["group_name"]})
        result = run_line(shared_stack, user_env, line, name)
        check(shared_stack, result, pre)
        ran += 1
    RUN_COUNT[section] = ran
    assert ran == len(commands)


@pytest.mark.parametrize("section", SCENARIOS)
def test_usage_scenario(shared_stack, user_env, section):
    """A usage scenario, line after line, on one cluster, as a user runs it."""
    commands, skipped = all_commands()[section]
    assert commands and not skipped
    name = "scen%d" % SCENARIOS.index(section)
    ran = 0
    deployed = False
    for line in commands:
        method, path, _ = text_route(line)
        real = path.replace("/N", "/" + name, 1)
        # The field values a line sends are only known once bash expands it;
        # the pre-state needs the group name, which is ${group_name}.
        pre = pre_state(shared_stack, method, real, {"name": ENV_VALUES["group_name"]})
        result = run_line(shared_stack, user_env, line, name)
        check(shared_stack, result, pre)
        if result.path.endswith("/deployment") and result.status == 202:
            deployed = True
        ran += 1
    RUN_COUNT[section] = ran
    assert ran == len(commands)
    assert deployed, "the scenario never started a deployment"
    st, _ = get_json(shared_stack, "/clusters/" + name)
    assert st == 404, "the scenario ends with the cluster deleted"


@pytest.mark.parametrize("section", VPN_SECTIONS)
def test_vpn_section(shared_stack, user_env, section):
    """The runnable lines of a VPN section (GET deployment for _accessip), and
    in place of the skipped `echo -e \\`curl …/deployment/vpn\\`` line: before an
    access node exists the profile answers 404 with a clear JSON message."""
    commands, skipped = all_commands()[section]
    assert len(skipped) == (2 if section.startswith("Mesos") else 1), skipped
    name = "vpn%d" % VPN_SECTIONS.index(section)
    make_cluster(shared_stack, user_env, name, "aws", True, True)
    r = api(shared_stack, "PUT", "/clusters/%s/deployment" % name,
            data={"aws_access_key_id": ENV_VALUES["key_id"],
                  "aws_secret_access_key": ENV_VALUES["secret"], "command": "deploy"})
    assert r.status_code == 202, r.text
    ran = 0
    for line in commands:
        result = run_line(shared_stack, user_env, line, name)
        check(shared_stack, result, pre_state(shared_stack, result.method, result.path, {}))
        assert result.json["_accessip"] is None, result.json   # nothing deployed yet
        ran += 1
    RUN_COUNT[section] = ran
    r = api(shared_stack, "GET", "/clusters/%s/deployment/vpn" % name)
    assert r.status_code == 404, r.text
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    assert_error(r.json(), 404, "NOT_FOUND")
    msg = r.json()["message"].lower()
    assert "vpn" in msg or "access" in msg, "404 message should say why: %r" % msg
    r = api(shared_stack, "DELETE", "/clusters/%s?force=true" % name)
    assert r.status_code == 200, r.text


def test_every_runnable_line_ran():
    """All runnable lines were run by the tests above (this runs last)."""
    parsed = all_commands()
    expected = {h: len(c) for h, (c, _) in parsed.items()}
    if set(RUN_COUNT) != set(SECTIONS):
        pytest.skip("only part of the module ran: %s" % sorted(RUN_COUNT))
    assert RUN_COUNT == expected
    assert sum(RUN_COUNT.values()) >= MIN_RUNNABLE


def test_reference_copy_matches_shared():
    """The repo's copy of the reference is the shared original, byte for byte,
    wherever the shared one is beside the repo (it is in CI)."""
    with open(REFERENCE, "rb") as f:
        ours = f.read()
    assert ours.count(b"curl ") >= 46
    if os.path.exists(SHARED_REFERENCE):
        with open(SHARED_REFERENCE, "rb") as f:
            assert f.read() == ours, "docs/reference/ is out of date: copy ../shared/reference/ again"
