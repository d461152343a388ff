"""docs/openapi.yaml: the api serves it, it is a sound OpenAPI 3.1 document,
every route it lists is the api's (those at its root too: the probes and
/metrics), the reference's curl lines are valid
requests by it, and its copies of the catalog and error codes are the
code's. (Every answer of every e2e test is checked against it as well:
openapi_check.py.)"""
import json
import os
import re
import subprocess
import urllib.parse

import jsonschema
import requests
import yaml
from requests.structures import CaseInsensitiveDict

from conftest import REPO
from openapi_check import PREFIX, Contract, at_root, load_spec
from test_reference import SECTIONS, all_commands, parse_argv, user_env  # noqa: F401

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
ROOT_PATHS = {"/healthz", "/readyz", "/metrics"}    # at the api's root
JSON = CaseInsensitiveDict({"Content-Type": "application/json"})
JSON_TEXT = ("attributes", "vars", "customhwconf")   # JSON text in a form


def spec_refs(node, found=None):
    """Every $ref value in a document."""
    found = [] if found is None else found
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                found.append(value)
            else:
                spec_refs(value, found)
    elif isinstance(node, list):
        for value in node:
            spec_refs(value, found)
    return found


def operations(spec):
    for template, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield template, method, item[method]


# ------------------------------------------------------------ the document --

def test_served_document_equals_the_file(shared_stack):
    r = requests.get(shared_stack.url("/openapi.json"), timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == load_spec()
    assert {t for t, item in r.json()["paths"].items() if at_root(item)} == ROOT_PATHS
    head = requests.head(shared_stack.url("/openapi.json/"), timeout=10)
    assert head.status_code == 200 and head.content == b""


def test_served_under_the_api_token(stack_factory):
    stack = stack_factory(api_env={"DEXTER_API_TOKEN": "t0ken-for-openapi"})
    r = requests.get(stack.url("/openapi.json"), timeout=10)
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "UNAUTHORIZED"
    r = requests.get(stack.url("/openapi.json"), headers=stack.auth_headers(), timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["openapi"].startswith("3.1.")


def test_is_an_openapi_3_1_document():
    spec = load_spec()
    assert re.fullmatch(r"3\.1\.\d+", spec["openapi"]), spec["openapi"]
    assert spec["info"]["title"] and spec["info"]["version"]
    assert spec["servers"][0]["url"] == PREFIX
    # Every $ref points into the document.
    resolver = jsonschema.RefResolver.from_schema(spec)
    refs = spec_refs(spec)
    assert len(refs) > 100
    for ref in set(refs):
        assert ref.startswith("#/"), ref
        resolver.resolve(ref)
    # Every schema is a valid JSON Schema 2020-12 (OpenAPI 3.1's dialect).
    for name, schema in spec["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
    ids = []
    for template, method, op in operations(spec):
        assert template.startswith("/") and not template.endswith("/"), template
        ids.append(op["operationId"])
        assert op["responses"] and all(re.fullmatch(r"[1-5]\d\d", s) for s in op["responses"])
        # Each {param} of the template is a required path parameter.
        item = spec["paths"][template]
        params = [resolver.resolve(p["$ref"])[1] if "$ref" in p else p
                  for p in item.get("parameters", []) + op.get("parameters", [])]
        in_path = {p["name"] for p in params if p["in"] == "path"}
        assert in_path == set(re.findall(r"\{(\w+)\}", template)), (template, in_path)
        assert all(p["required"] for p in params if p["in"] == "path")
        for p in params:
            jsonschema.Draft202012Validator.check_schema(p["schema"])
        for media in (op.get("requestBody") or {}).get("content", {}).values():
            jsonschema.Draft202012Validator.check_schema(media["schema"])
    assert len(ids) == len(set(ids)), "operationIds repeat"
    # The paths outside /api/v1.0 say so with servers of their own, the
    # api's root; the probes need no token, /metrics the API's.
    for template, item in spec["paths"].items():
        assert "servers" not in item or at_root(item), template
    assert {t for t, item in spec["paths"].items() if at_root(item)} == ROOT_PATHS
    for template in ("/healthz", "/readyz"):
        for method, op in spec["paths"][template].items():
            if method in METHODS:
                assert op["security"] == [{}] and "401" not in op["responses"], (template, method)
    assert "security" not in spec["paths"]["/metrics"]["get"]
    assert "401" in spec["paths"]["/metrics"]["get"]["responses"]


def test_every_listed_route_is_the_apis(shared_stack):
    """OPTIONS on each template answers exactly the listed methods (with
    HEAD beside GET); a GET is routed (not 'unknown path'); the other
    listed methods reach their checks (a 400 for a missing field or a bad
    query parameter, nothing written); PATCH is a 405."""
    s = shared_stack
    spec = load_spec()
    r = requests.post(s.url("/clusters"), data={"name": "oapi", "provider": "aws",
                                                "type": "mesos"}, timeout=10)
    assert r.status_code == 201, r.text
    r = requests.post(s.url("/clusters/oapi/groups"),
                      data={"name": "g1", "role": "*", "attributes": "{}", "vars": "{}",
                            "cpus": "2", "ram": "4", "disk_size": "20"}, timeout=10)
    assert r.status_code == 201, r.text
    for template, item in spec["paths"].items():
        path = template.replace("{name}", "oapi").replace("{group}", "g1").replace("{user}", "alice")
        url = "http://127.0.0.1:%d%s" % (s.api_port, path) if at_root(item) else s.url(path)
        listed = [m.upper() for m in METHODS if m in item]
        r = requests.options(url, timeout=10)
        assert r.status_code == 204, (template, r.status_code, r.text)
        allow = [m.strip() for m in r.headers["Allow"].split(",")]
        want = listed + (["HEAD"] if "GET" in listed else [])
        assert sorted(allow) == sorted(want), (template, allow, want)
        for method in listed:
            if method == "GET":
                r = requests.get(url, timeout=10)
                assert r.status_code != 404 or "unknown path" not in r.json()["message"], \
                    (template, r.text)
            elif method in ("POST", "PUT"):
                r = requests.request(method, url, json={}, timeout=10)
                assert r.status_code == 400 and r.json()["code"] == "INVALID", (template, r.text)
            elif method == "DELETE":
                r = requests.delete(url + "?force=maybe", timeout=10)
                assert r.status_code == 400 and r.json()["code"] == "INVALID", (template, r.text)
        r = requests.patch(url, timeout=10)
        assert r.status_code == 405, (template, r.text)
    r = requests.delete(s.url("/clusters/oapi?force=true"), timeout=10)
    assert r.status_code == 200, r.text


def test_the_reference_lines_are_valid_requests(user_env):  # noqa: F811
    """Each runnable curl line of the reference, expanded by bash as a user
    runs it (a `curl` function records the arguments), is a request the
    document lists, and its -d fields are valid by the form schema."""
    spec = load_spec()
    contract = Contract(spec)
    checked = 0
    for section in SECTIONS:
        for line in all_commands()[section][0]:
            record = 'curl() { printf "%s\\0" "$@" > "$DX_ARGV"; }; '
            env = dict(user_env["env"], cluster_name="refcluster")
            subprocess.run(["bash", "-c", record + line], cwd=user_env["cwd"], env=env,
                           check=True, timeout=30, capture_output=True)
            with open(env["DX_ARGV"], "rb") as f:
                argv = [a.decode("utf-8") for a in f.read().split(b"\0")[:-1]]
            method, url, fields = parse_argv(argv)
            what, op = contract.operation(method, url)
            assert "operationId" in op, "%s: %s" % (what, line)
            query = urllib.parse.urlsplit(url).query
            assert not query, line
            body = op.get("requestBody")
            if not fields:
                assert not body, "%s: no body for %s" % (line, what)
                continue
            schema = body["content"]["application/x-www-form-urlencoded"]["schema"]
            errors = contract.validate(schema, fields)
            assert not errors, "%s\n%s" % (line, "\n".join(e.message for e in errors))
            # The JSON text a form carries is valid as the objects it holds
            # (contentSchema is an annotation only).
            decoded = {k: json.loads(v) if k in JSON_TEXT else v for k, v in fields.items()}
            errors = contract.validate(body["content"]["application/json"]["schema"], decoded)
            assert not errors, "%s\n%s" % (line, "\n".join(e.message for e in errors))
            checked += 1
    assert checked >= 25, checked


def test_every_answer_goes_through_the_check(shared_stack, openapi_contract):
    """The session's requests are checked: each API answer counts once, and
    so does each of the paths at the api's root; another answer outside
    /api/v1.0 is not the contract's."""
    before = openapi_contract.checked
    root = "http://127.0.0.1:%d" % shared_stack.api_port
    requests.get(shared_stack.url("/clusters"), timeout=10)
    requests.request("PATCH", shared_stack.url("/clusters"), timeout=10)
    with requests.Session() as session:
        session.get(shared_stack.url("/clusters/nosuch"), timeout=10)
    requests.get(root + "/healthz", timeout=10)
    requests.get(root + "/readyz/", timeout=10)
    requests.get(root + "/metrics", timeout=10)
    requests.get(root + "/elsewhere", timeout=10)
    requests.get(root + "/healthz/deeper", timeout=10)
    assert openapi_contract.checked == before + 6
    assert openapi_contract.problems == []


def test_the_check_finds_what_breaks_the_contract():
    """The check of openapi_check.py fails answers that break it."""
    c = Contract(load_spec())
    ok = b'{"clusters": [], "count": 0}'
    assert c.check("GET", "http://h" + PREFIX + "/clusters", 200, JSON, ok) == []
    assert c.check("GET", "http://h" + PREFIX + "/clusters", 200, JSON, b'{"clusters": []}')
    assert c.check("GET", "http://h" + PREFIX + "/clusters", 201, JSON, ok)
    assert c.check("GET", "http://h" + PREFIX + "/clusters", 200,
                   CaseInsensitiveDict({"Content-Type": "text/plain"}), ok)
    notfound = b'{"code": "NOT_FOUND", "message": "no cluster"}'
    assert c.check("GET", "http://h" + PREFIX + "/clusters/c1", 404, JSON, notfound) == []
    assert c.check("GET", "http://h" + PREFIX + "/clusters/c1", 404, JSON,
                   b'{"code": "CONFLICT", "message": "no cluster"}')
    assert c.check("GET", "http://h" + PREFIX + "/clusters/c1", 404, JSON,
                   b'{"code": "NOT_FOUND", "message": "x", "extra": 1}')
    # A path no template matches is a 404; a method a path does not list a
    # 405 with Allow.
    assert c.check("GET", "http://h" + PREFIX + "/nothing", 404, JSON, notfound) == []
    assert c.check("GET", "http://h" + PREFIX + "/nothing", 200, JSON, b"{}")
    refused = b'{"code": "METHOD_NOT_ALLOWED", "message": "no"}'
    allow = CaseInsensitiveDict({"Content-Type": "application/json", "Allow": "GET, HEAD, OPTIONS"})
    assert c.check("PATCH", "http://h" + PREFIX + "/clusters", 405, allow, refused) == []
    assert c.check("PATCH", "http://h" + PREFIX + "/clusters", 405, JSON, refused)
    assert c.check("GET", "http://h" + PREFIX + "/clusters", 405, allow, refused)
    # libmicrohttpd's own page: HTML without a Content-Type, for the
    # statuses the document gives it.
    page = b"<html><head><title>Request too big</title></head><body>...</body></html>"
    none = CaseInsensitiveDict()
    assert c.check("GET", "http://h" + PREFIX + "/clusters", 431, none, page) == []
    assert c.check("GET", "http://h" + PREFIX + "/clusters", 431, none, b"too big")
    assert c.check("GET", "http://h" + PREFIX + "/clusters", 409, none, page)
    # HEAD: no body.
    assert c.check("HEAD", "http://h" + PREFIX + "/clusters", 200, JSON, b"") == []
    assert c.check("HEAD", "http://h" + PREFIX + "/clusters", 200, JSON, ok)
    # The paths at the root: the probes' bodies, and /metrics's text in the
    # exposition format 0.0.4; under /api/v1.0 they are unknown paths.
    store = CaseInsensitiveDict({"Content-Type": "application/json", "Cache-Control": "no-store"})
    alive = b'{"status": "ok"}'
    assert c.check("GET", "http://h/healthz", 200, store, alive) == []
    assert c.check("GET", "http://h/healthz", 200, JSON, alive)          # no Cache-Control
    assert c.check("GET", "http://h/healthz", 200, store, b'{"status": "fine"}')
    denied = CaseInsensitiveDict({"Content-Type": "application/json",
                                  "WWW-Authenticate": 'Bearer realm="dexter"'})
    unauthorized = b'{"code": "UNAUTHORIZED", "message": "no token"}'
    assert c.check("GET", "http://h/healthz", 401, denied, unauthorized)  # needs no token
    assert c.check("GET", "http://h" + PREFIX + "/healthz", 404, JSON, notfound) == []
    assert c.check("GET", "http://h" + PREFIX + "/healthz", 200, store, alive)
    down = (b'{"ready": false, "scheduler": "the scheduler did not answer within 5000 ms",'
            b' "redis": "unknown", "workers": null}')
    assert c.check("GET", "http://h/readyz", 503, store, down) == []
    assert c.check("GET", "http://h/readyz", 200, store, down.replace(b"false", b"true"))
    assert c.check("GET", "http://h/readyz", 503, store, down.replace(b"null", b"{}"))
    up = b'{"ready": true, "scheduler": "ok", "redis": "ok", "workers": {"aws": 1, "azure": 0, "vpn": 1}}'
    assert c.check("GET", "http://h/readyz/", 200, store, up) == []
    text = b"# HELP dexter_api_open_connections HTTP connections open now.\n"
    exposition = CaseInsensitiveDict({"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
    assert c.check("GET", "http://h/metrics", 200, exposition, text) == []
    assert c.check("GET", "http://h/metrics", 200,
                   CaseInsensitiveDict({"Content-Type": "text/plain"}), text)
    assert c.check("GET", "http://h/metrics", 200, exposition, b"up 1\n")
    assert c.check("GET", "http://h/metrics", 401, denied, unauthorized) == []
    assert c.check("DELETE", "http://h/metrics", 405, allow, refused) == []


# ------------------------------------------------- copies of the code's lists --

def test_enums_are_the_catalogs():
    with open(os.path.join(REPO, "common", "dx_catalog.def")) as f:
        text = f.read()
    schemas = load_spec()["components"]["schemas"]
    assert schemas["AwsInstanceType"]["enum"] == re.findall(
        r'^DX_INSTANCE \(aws, "([^"]+)"', text, re.M)
    assert schemas["AzureInstanceType"]["enum"] == re.findall(
        r'^DX_INSTANCE \(azure, "([^"]+)"', text, re.M)
    assert schemas["AwsRegion"]["enum"] == re.findall(r'^DX_AWS_REGION \("([^"]+)"\)', text, re.M)


def test_error_codes_are_api_md_s():
    with open(os.path.join(REPO, "docs", "api.md")) as f:
        text = f.read()
    table = re.findall(r"^\| (\d{3}) \| `([A-Z_]+)` \|", text, re.M)
    assert len(table) == 13, table
    schema = load_spec()["components"]["schemas"]["Error"]
    assert sorted(schema["properties"]["code"]["enum"]) == sorted(code for _, code in table)
    responses = load_spec()["components"]["responses"]
    codes = {}
    for response in responses.values():
        body = (response.get("content") or {}).get("application/json")
        if body:
            code = body["schema"]["allOf"][1]["properties"]["code"]
            for c in code.get("enum", [code.get("const")]):
                codes[c] = response
    assert set(codes) == {code for _, code in table}


def test_embedded_text_is_the_file(tmp_path):
    """scripts/openapi-embed.py writes a C string whose text is the file's JSON."""
    out = tmp_path / "api_openapi.inc"
    subprocess.run(["/usr/bin/python3", os.path.join(REPO, "scripts", "openapi-embed.py"),
                    os.path.join(REPO, "docs", "openapi.yaml"), str(out)], check=True, timeout=60)
    c_file = tmp_path / "dump.c"
    c_file.write_text('#include <stdio.h>\nstatic const char s [] =\n#include "api_openapi.inc"\n'
                      ';\nint main (void) { fputs (s, stdout); return 0; }\n')
    exe = tmp_path / "dump"
    subprocess.run(["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", str(tmp_path),
                    str(c_file), "-o", str(exe)], check=True, timeout=60)
    text = subprocess.run([str(exe)], check=True, capture_output=True, timeout=30).stdout
    assert json.loads(text.decode("utf-8")) == load_spec()
    yaml.safe_load(text)    # JSON is YAML: the same document either way
