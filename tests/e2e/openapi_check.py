"""Every answer the end-to-end tests get from the API is checked against
docs/openapi.yaml, so the contract and the code cannot drift.

conftest.py imports the two fixtures below. `openapi_contract` (session,
autouse) wraps requests.Session.send, which every requests call goes
through: an answer to a path under /api/v1.0, or to one of the paths the
document puts at the api's root (those whose `servers` is the root:
/healthz, /readyz, /metrics), is checked, by method and path template, for
its status (one the operation lists), its headers (the required ones the
response lists) and its body (the schema of its Content-Type, with
Debian's python3-jsonschema, Draft 2020-12 as OpenAPI 3.1 says).
`openapi_checked` (autouse) fails each test whose answers, or its
fixtures' answers, broke the contract, listing them.

A method a path does not list must be a 405; a path under /api/v1.0 that no
template matches a 404; HEAD is checked as GET without a body; an HTML page
without a Content-Type is libmicrohttpd's own answer (text/html in the
document); a media type with parameters in the document (`text/plain;
version=0.0.4`) needs them in the answer's Content-Type. The other paths
outside /api/v1.0 are not this contract's. Requests sent through raw
sockets are not seen here; test_reference.py hands its curl answers to
`answer`.
"""
import json
import os
import re
import threading
import urllib.parse

import jsonschema
import pytest
import requests
import yaml
from requests.structures import CaseInsensitiveDict

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC_PATH = os.path.join(REPO, "docs", "openapi.yaml")
PREFIX = "/api/v1.0"
# What any request can get before its path is looked at (docs/api.md,
# "Requests"): a refused request line or head, or no token.
BEFORE_ROUTING = ("400", "401", "414", "431", "505")


def load_spec(path=SPEC_PATH):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def at_root(item):
    """True if a path item is at the api's root, not under /api/v1.0: it
    has servers of its own, the root."""
    return [s.get("url") for s in item.get("servers", [])] == ["/"]


def media_type(text):
    """(type, {parameter: value}) of a Content-Type or a media type key,
    in lower case but for the values."""
    parts = text.split(";")
    params = {}
    for part in parts[1:]:
        name, _, value = part.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    return parts[0].strip().lower(), params


class Contract:
    """The checks of one OpenAPI document."""

    def __init__(self, spec):
        self.spec = spec
        self.resolver = jsonschema.RefResolver.from_schema(spec)
        self.routes = []            # (regex, template, path item), under /api/v1.0
        self.root_routes = []       # the same, at the api's root
        for template, item in spec["paths"].items():
            rx = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
            routes = self.root_routes if at_root(item) else self.routes
            routes.append((re.compile(rx), template, item))
        responses = spec["components"]["responses"]
        ref = lambda name: {"$ref": "#/components/responses/" + name}
        before = {"400": ref("BadRequest"), "401": ref("Unauthorized"),
                  "414": ref("UriTooLong"), "431": ref("HeadersTooLarge"),
                  "505": ref("VersionNotSupported")}
        assert set(before) == set(BEFORE_ROUTING)
        assert all(r["$ref"].rsplit("/", 1)[1] in responses for r in before.values())
        # The pseudo-operations of a path no template matches, and of a
        # method a path does not list (a name in the path may be refused
        # first: 404).
        self.unknown_path = {"responses": dict(before, **{"404": ref("NotFound")})}
        self.other_method = {"responses": dict(before, **{"404": ref("NotFound"),
                                                          "405": ref("MethodNotAllowed")})}

    def deref(self, obj):
        while isinstance(obj, dict) and "$ref" in obj:
            _, obj = self.resolver.resolve(obj["$ref"])
        return obj

    def route(self, path, routes=None):
        """(template, path item) of an api path (after the prefix; routes:
        self.routes or self.root_routes), or (None, None). One trailing
        slash is the same path without it."""
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        for rx, template, item in self.routes if routes is None else routes:
            if rx.match(path):
                return template, item
        return None, None

    def covers(self, url):
        """True if the answer to a request to url is the document's: a path
        under /api/v1.0, or one of its paths at the api's root."""
        path = urllib.parse.urlsplit(url).path
        return (path.startswith(PREFIX + "/") or path == PREFIX
                or self.route(path, self.root_routes)[0] is not None)

    def operation(self, method, url):
        """(what, operation object) for a request."""
        path = urllib.parse.urlsplit(url).path
        if path.startswith(PREFIX + "/"):
            template, item = self.route(path[len(PREFIX):])
        else:
            template, item = self.route(path, self.root_routes)
        if template is None:
            return "unknown path %s" % path, self.unknown_path
        m = method.lower()
        if m == "head":
            m = "get"
        if m not in item:
            return "%s %s (not listed)" % (method, template), self.other_method
        return "%s %s" % (method, template), item[m]

    def validate(self, schema, instance):
        """The errors of instance against a schema of the document."""
        validator = jsonschema.Draft202012Validator(
            schema, resolver=self.resolver,
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        return sorted(validator.iter_errors(instance), key=lambda e: list(e.path))

    def check(self, method, url, status, headers, body):
        """The problems of one answer (a list of strings, empty when it
        keeps the contract). headers: a case-insensitive mapping; body:
        bytes."""
        what, op = self.operation(method, url)
        problems = []
        response = self.deref(op["responses"].get(str(status)))
        if response is None:
            return ["%s answered %d, which the document does not list for it (%s)"
                    % (what, status, ", ".join(sorted(op["responses"])))]
        for name, header in (response.get("headers") or {}).items():
            header = self.deref(header)
            value = headers.get(name)
            if value is None:
                if header.get("required"):
                    problems.append("%s %d: no %s header" % (what, status, name))
                continue
            for e in self.validate(header.get("schema", {}), value):
                problems.append("%s %d: header %s %r: %s" % (what, status, name, value, e.message))
        content = response.get("content")
        if method.upper() == "HEAD" or status == 204:
            if body:
                problems.append("%s %d: a body where none belongs: %r" % (what, status, body[:200]))
            return problems
        if not content:
            if body:
                problems.append("%s %d: a body the document does not describe: %r"
                                % (what, status, body[:200]))
            return problems
        ctype, params = media_type(headers.get("Content-Type") or "")
        if not ctype and body.startswith(b"<html>"):
            ctype = "text/html"     # libmicrohttpd's own page comes without one
        listed = [key for key in content
                  if media_type(key)[0] == ctype and media_type(key)[1].items() <= params.items()]
        if not listed:
            return problems + ["%s %d: Content-Type %r, the document has %s"
                               % (what, status, headers.get("Content-Type"), ", ".join(content))]
        schema = content[listed[0]].get("schema", {})
        if ctype == "application/json":
            try:
                instance = json.loads(body.decode("utf-8"))
            except ValueError as e:
                return problems + ["%s %d: not JSON (%s): %r" % (what, status, e, body[:200])]
        else:
            instance = body.decode("utf-8", "replace")
        for e in self.validate(schema, instance)[:5]:
            where = "/".join(str(p) for p in e.absolute_path) or "(body)"
            problems.append("%s %d: %s: %s" % (what, status, where, e.message[:300]))
        return problems


class Recorder:
    """The answers that broke the contract since the last look."""

    def __init__(self, contract):
        self.contract = contract
        self.lock = threading.Lock()
        self.problems = []
        self.checked = 0

    def seen(self, response):
        """An answer requests got."""
        if response.request is not None:
            self.answer(response.request.method, response.request.url, response.status_code,
                        response.headers, response.content)

    def answer(self, method, url, status, headers, body):
        """An answer to a request to url: checked if it is the API's."""
        if not self.contract.covers(url):
            return
        problems = self.contract.check(method, url, status, headers, body)
        with self.lock:
            self.checked += 1
            self.problems += ["%s %s: %s" % (method, url, p) for p in problems]

    def take(self):
        with self.lock:
            problems, self.problems = self.problems, []
            return problems


_ACTIVE = []                        # the session's Recorder


def answer(method, url, status, headers, body):
    """Checks an answer that did not come through requests (test_reference.py
    runs curl): headers a mapping (case-insensitive), body bytes."""
    if _ACTIVE:
        _ACTIVE[0].answer(method, url, status, CaseInsensitiveDict(headers), body)


@pytest.fixture(scope="session", autouse=True)
def openapi_contract():
    """Checks every api answer of the session (see the module's doc)."""
    recorder = Recorder(Contract(load_spec()))
    _ACTIVE.append(recorder)
    send = requests.Session.send

    def checked_send(self, request, **kwargs):
        response = send(self, request, **kwargs)
        recorder.seen(response)
        return response

    requests.Session.send = checked_send
    try:
        yield recorder
    finally:
        requests.Session.send = send
        _ACTIVE.remove(recorder)


@pytest.fixture(autouse=True)
def openapi_checked(openapi_contract):
    """Fails the test when an answer it got (or a fixture of it got) broke
    the contract."""
    yield
    problems = openapi_contract.take()
    if problems:
        pytest.fail("%d answer(s) of the api break docs/openapi.yaml:\n%s"
                    % (len(problems), "\n".join(problems[:20])), pytrace=False)
