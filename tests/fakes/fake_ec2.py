#!/usr/bin/python3
"""A fake Amazon EC2 for tests: the EC2 Query API on loopback.

Requests are judged by botocore's published EC2 service model and signer, not
by what our worker happens to send:

* the form body is decoded against the operation's input shape exactly the way
  botocore.serialize.EC2Serializer encodes it (Name.N lists, queryName or
  capitalised locationName), rejecting unknown parameters, bad types, enum
  values outside the model and missing required members;
* the SigV4 Authorization header is recomputed with botocore.auth.SigV4Auth;
* answers are XML built from the operation's output shape, so anything botocore
  can parse the worker's parser must parse too.

Resources live in memory with AWS's ID formats, states and dependency rules.
EC2's token buckets of RunInstances and TerminateInstances (requests and
instances, per account and region) are on unless turned off (ec2_limits). Latency,
throttling (503 RequestLimitExceeded), 500 InternalError and short capacity
can be injected at random (deterministic with a seed) or scripted, and a
side channel under /_fake/ shows the state and counts the calls.

Run:    /usr/bin/python3 tests/fakes/fake_ec2.py --port 0 --port-file F
Import: with FakeEc2Server(pending_ms=0) as srv: ... srv.endpoint_url ...
See tests/fakes/README.md.
"""

import argparse
import base64
import binascii
import copy
import datetime
import hashlib
import hmac
import http.server
import ipaddress
import json
import os
import random
import re
import signal
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.loaders
import botocore.model
from botocore.compat import HTTPHeaders

API_VERSION = "2016-11-15"
XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/"
CANONICAL_OWNER = "099720109477"
AMAZON_OWNER = "137112412989"
DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-west-2"
# AWS's documentation example keys: the defaults when no --access-key is given.
DEFAULT_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
DEFAULT_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
MAX_CLOCK_SKEW_S = 15 * 60

DEFAULT_CONFIG = {
    "latency_ms": 0,            # added to every EC2 call
    "throttle_rate": 0.0,       # probability of 503 RequestLimitExceeded
    "error_rate": 0.0,          # probability of 500 InternalError
    "pending_ms": 5000,         # pending -> running
    "shutdown_ms": 1000,        # shutting-down -> terminated
    "terminated_ttl_ms": 3600 * 1000,  # terminated instances stay visible this long
    "vpc_limit": 5,             # VpcLimitExceeded beyond this
    "eip_limit": 5,             # AddressLimitExceeded beyond this
    "instance_limit": 64,       # InstanceLimitExceeded beyond this many live instances
    # EC2's token buckets (see THROTTLING below), per account and region:
    # True models them (the fake is never kinder than AWS), False turns them off.
    "ec2_limits": True,
    "run_request_burst": 5, "run_request_rate": 2.0,
    "run_resource_burst": 1000, "run_resource_rate": 2.0,
    "terminate_request_burst": 100, "terminate_request_rate": 5.0,
    "terminate_resource_burst": 1000, "terminate_resource_rate": 20.0,
}


class ApiError(Exception):
    """An EC2 error answer: <Response><Errors><Error>..."""

    def __init__(self, code, message, status=400):
        super().__init__("%s: %s" % (code, message))
        self.code, self.message, self.status = code, message, status


def invalid(message):
    return ApiError("InvalidParameterValue", message)


# --------------------------------------------------------------------------
# The service model and the request decoder (the one place that judges
# parameters; a mirror of botocore.serialize.EC2Serializer).
# --------------------------------------------------------------------------

_MODEL = None


def service_model():
    global _MODEL
    if _MODEL is None:
        raw = botocore.loaders.Loader().load_service_model("ec2", "service-2")
        _MODEL = botocore.model.ServiceModel(raw, service_name="ec2")
        assert _MODEL.metadata["apiVersion"] == API_VERSION
    return _MODEL


def query_name(shape, default):
    """EC2Serializer._get_serialized_name: queryName, else the locationName
    with its first letter capitalised, else the member name."""
    ser = shape.serialization
    if "queryName" in ser:
        return ser["queryName"]
    if "name" in ser:
        name = ser["name"]
        return name[0].upper() + name[1:]
    return default


_ISO8601 = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)$")


class QueryDecoder:
    """x-www-form-urlencoded EC2 query parameters -> typed values keyed by the
    model's member names, or ApiError."""

    _LEAF = ""  # key of a node's own value; real segments are never empty

    def decode(self, operation, pairs):
        tree = {}
        for key, value in pairs:
            parts = key.split(".")
            if "" in parts:
                raise ApiError("UnknownParameter", "The parameter %s is not recognized" % key)
            node = tree
            for part in parts:
                node = node.setdefault(part, {})
            if self._LEAF in node:
                raise invalid("The parameter %s is given more than once" % key)
            node[self._LEAF] = value
        shape = operation.input_shape
        if shape is None:
            if tree:
                name = sorted(tree)[0]
                raise ApiError("UnknownParameter", "The parameter %s is not recognized" % name)
            return {}
        return self._structure(tree, shape, "")

    def _value(self, node, shape, path):
        kind = shape.type_name
        if kind == "structure":
            return self._structure(node, shape, path)
        if kind == "list":
            return self._list(node, shape, path)
        if kind == "map":
            return self._map(node, shape, path)
        children = [k for k in node if k != self._LEAF]
        if children:
            raise ApiError("UnknownParameter", "The parameter %s.%s is not recognized"
                           % (path, children[0]))
        return self._scalar(node[self._LEAF], shape, path)

    def _structure(self, node, shape, path):
        if self._LEAF in node:
            raise ApiError("UnknownParameter", "The parameter %s is not recognized" % path)
        names = {query_name(m, n): n for n, m in shape.members.items()}
        out = {}
        for key, child in node.items():
            full = "%s.%s" % (path, key) if path else key
            member = names.get(key)
            if member is None:
                raise ApiError("UnknownParameter", "The parameter %s is not recognized" % full)
            out[member] = self._value(child, shape.members[member], full)
        for req in shape.required_members:
            if req not in out:
                name = query_name(shape.members[req], req)
                raise ApiError("MissingParameter", "The request must contain the parameter %s"
                               % ("%s.%s" % (path, name) if path else name))
        return out

    def _indexed(self, node, path):
        if self._LEAF in node:
            raise ApiError("UnknownParameter", "The parameter %s is not recognized "
                           "(lists are sent as %s.1, %s.2, ...)" % (path, path, path))
        for key in node:
            if not re.fullmatch(r"[1-9][0-9]{0,5}", key):
                raise ApiError("UnknownParameter", "The parameter %s.%s is not recognized" % (path, key))
        return sorted(node, key=int)

    def _list(self, node, shape, path):
        out = [self._value(node[k], shape.member, "%s.%s" % (path, k)) for k in self._indexed(node, path)]
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
        if (lo is not None and len(out) < lo) or (hi is not None and len(out) > hi):
            raise invalid("The parameter %s must have between %s and %s members"
                          % (path, lo if lo is not None else 0, hi if hi is not None else "any"))
        return out

    def _map(self, node, shape, path):
        # QuerySerializer._serialize_type_map (EC2 has no maps today; kept for completeness).
        if not shape.serialization.get("flattened"):
            node = node.get("entry", {})
            path += ".entry"
        kname, vname = query_name(shape.key, "key"), query_name(shape.value, "value")
        out = {}
        for k in self._indexed(node, path):
            entry = dict(node[k])
            p = "%s.%s" % (path, k)
            if kname not in entry:
                raise ApiError("MissingParameter", "The request must contain the parameter %s.%s" % (p, kname))
            key = self._value(entry.pop(kname), shape.key, "%s.%s" % (p, kname))
            val = self._value(entry.pop(vname), shape.value, "%s.%s" % (p, vname)) if vname in entry else None
            if entry:
                raise ApiError("UnknownParameter", "The parameter %s.%s is not recognized" % (p, sorted(entry)[0]))
            out[key] = val
        return out

    def _scalar(self, raw, shape, path):
        kind = shape.type_name
        bad = "Invalid value '%s' for %s" % (raw, path)
        if kind == "string":
            if shape.enum and raw not in shape.enum:
                raise invalid(bad)
            lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
            if (lo is not None and len(raw) < lo) or (hi is not None and len(raw) > hi):
                raise invalid(bad + ": length must be between %s and %s" % (lo or 0, hi or "any"))
            return raw
        if kind in ("integer", "long"):
            if not re.fullmatch(r"-?[0-9]+", raw):
                raise invalid(bad + ": expected an integer")
            value = int(raw)
            lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
            if kind == "integer" and not -2**31 <= value < 2**31:
                raise invalid(bad + ": out of range for an integer")
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                raise invalid(bad + ": must be between %s and %s" % (lo, hi))
            return value
        if kind == "boolean":
            if raw not in ("true", "false"):
                raise invalid(bad + ": expected true or false")
            return raw == "true"
        if kind in ("float", "double"):
            try:
                return float(raw)
            except ValueError:
                raise invalid(bad + ": expected a number") from None
        if kind == "timestamp":
            m = _ISO8601.match(raw)
            if not m:
                raise invalid(bad + ": expected an ISO 8601 timestamp")
            try:
                iso = raw.replace("Z", "+00:00")
                value = datetime.datetime.fromisoformat(iso if "." not in iso else _trim_fraction(iso))
            except ValueError:
                raise invalid(bad + ": expected an ISO 8601 timestamp") from None
            return value.astimezone(datetime.timezone.utc)
        if kind == "blob":
            try:
                return base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise invalid(bad + ": expected base64") from None
        raise invalid("%s: unsupported type %s" % (path, kind))


def _trim_fraction(iso):
    head, frac = iso.split(".", 1)
    digits = re.match(r"\d+", frac).group(0)
    return head + "." + (digits + "000000")[:6] + frac[len(digits):]


# --------------------------------------------------------------------------
# Response encoding, driven by the output shape
# --------------------------------------------------------------------------

def iso_time(t):
    """Epoch seconds -> EC2's 2023-12-07T10:00:00.000Z."""
    dt = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


# Values real EC2 sends although the model's enum lacks them.
_ENUM_QUIRKS = {("AttachmentStatus", "available")}  # internet gateway attachments


class XmlEncoder:
    """Result dicts keyed by member names -> EC2 XML. An unknown member or a
    value of the wrong type is a bug in the fake and raises."""

    def encode(self, operation, result, request_id):
        root = ET.Element(operation.name + "Response", {"xmlns": XMLNS})
        ET.SubElement(root, "requestId").text = request_id
        shape = operation.output_shape
        if shape is None or not shape.members:
            ET.SubElement(root, "return").text = "true"
        else:
            self._members(root, shape, result or {})
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")

    def _members(self, parent, shape, value):
        for name, v in value.items():
            if v is None:
                continue
            if name not in shape.members:
                raise AssertionError("fake bug: %s has no member %s" % (shape.name, name))
            member = shape.members[name]
            self._value(parent, member.serialization.get("name", name), member, v)

    def _value(self, parent, tag, shape, v):
        el = ET.SubElement(parent, tag)
        kind = shape.type_name
        if kind == "structure":
            assert isinstance(v, dict), (shape.name, v)
            self._members(el, shape, v)
        elif kind == "list":
            assert isinstance(v, list), (shape.name, v)
            for item in v:
                self._value(el, shape.member.serialization.get("name", "member"), shape.member, item)
        elif kind == "boolean":
            assert isinstance(v, bool), (shape.name, v)
            el.text = "true" if v else "false"
        elif kind in ("integer", "long"):
            assert isinstance(v, int) and not isinstance(v, bool), (shape.name, v)
            el.text = str(v)
        elif kind in ("float", "double"):
            el.text = repr(float(v))
        elif kind == "timestamp":
            el.text = iso_time(v)
        elif kind == "blob":
            el.text = base64.b64encode(v).decode()
        else:
            assert isinstance(v, str), (shape.name, v)
            if shape.enum and v not in shape.enum and (shape.name, v) not in _ENUM_QUIRKS:
                raise AssertionError("fake bug: %r not in enum %s" % (v, shape.name))
            el.text = v


def error_xml(err, request_id):
    root = ET.Element("Response")
    e = ET.SubElement(ET.SubElement(root, "Errors"), "Error")
    ET.SubElement(e, "Code").text = err.code
    ET.SubElement(e, "Message").text = err.message
    ET.SubElement(root, "RequestID").text = request_id
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")


# --------------------------------------------------------------------------
# SigV4, recomputed with botocore's signer
# --------------------------------------------------------------------------

class Credential:
    def __init__(self, access_key, secret_key, session_token=None):
        self.access_key, self.secret_key, self.session_token = access_key, secret_key, session_token

    def __repr__(self):
        return "Credential(%r, token=%s)" % (self.access_key, bool(self.session_token))


class _ReceivedRequestSigner(botocore.auth.SigV4Auth):
    """botocore's SigV4Auth, but over exactly the headers the client says it
    signed (botocore itself picks 'all but a blacklist')."""

    def __init__(self, credentials, region, signed_headers):
        super().__init__(credentials, "ec2", region)
        self._signed = signed_headers

    def headers_to_sign(self, request):
        chosen = HTTPHeaders()
        for name in self._signed:
            for value in request.headers.get_all(name) or []:
                chosen[name] = value
        return chosen


_AUTH_FAILURE = "AWS was not able to validate the provided access credentials"


class SigV4Verifier:
    def __init__(self, credentials, region, log):
        self.credentials = {c.access_key: c for c in credentials}
        self.region = region  # None: any region
        self.log = log

    @staticmethod
    def access_key_of(headers):
        m = re.search(r"Credential=([^/,\s]+)/", headers.get("Authorization", ""))
        return m.group(1) if m else None

    def verify(self, method, raw_path, headers, body):
        """Raises ApiError unless the request is signed right; returns the
        region of its credential scope."""
        auth = headers.get("Authorization")
        if not auth:
            raise ApiError("MissingAuthenticationToken", "The request must contain either a valid "
                           "(registered) AWS access key ID or X.509 certificate.", 401)
        algo, _, rest = auth.strip().partition(" ")
        if algo != "AWS4-HMAC-SHA256":
            raise ApiError("IncompleteSignature", "Unsupported authorization type: %s" % algo, 400)
        fields = {}
        for part in rest.split(","):
            k, _, v = part.strip().partition("=")
            fields[k] = v
        for k in ("Credential", "SignedHeaders", "Signature"):
            if not fields.get(k):
                raise ApiError("IncompleteSignature", "Authorization header requires '%s' parameter. "
                               "Authorization=%s" % (k, auth), 400)
        scope = fields["Credential"].split("/")
        if len(scope) != 5:
            raise ApiError("IncompleteSignature", "Credential should have 5 parts: %s" % fields["Credential"], 400)
        akid, scope_date, region, service, terminator = scope
        cred = self.credentials.get(akid)
        if cred is None:
            self.log("auth: unknown access key %s" % akid)
            raise ApiError("AuthFailure", _AUTH_FAILURE, 401)
        if service != "ec2" or terminator != "aws4_request":
            raise ApiError("SignatureDoesNotMatch", "Credential should be scoped to correct service: 'ec2'.", 403)
        if self.region is not None and region != self.region:
            raise ApiError("SignatureDoesNotMatch", "Credential should be scoped to a valid region, not '%s'. "
                           "(this fake serves %s)" % (region, self.region), 403)
        signed = fields["SignedHeaders"].split(";")
        if "host" not in signed:
            raise ApiError("SignatureDoesNotMatch", "'Host' must be a signed header.", 403)
        amz_date = headers.get("X-Amz-Date")
        try:
            if amz_date:
                when = datetime.datetime.strptime(amz_date, botocore.auth.SIGV4_TIMESTAMP)
            elif headers.get("Date"):
                when = datetime.datetime.strptime(headers["Date"], "%a, %d %b %Y %H:%M:%S GMT")
                amz_date = when.strftime(botocore.auth.SIGV4_TIMESTAMP)
            else:
                raise ApiError("IncompleteSignature", "Authorization header requires existence of "
                               "either a 'X-Amz-Date' or a 'Date' header.", 400)
        except ValueError:
            raise ApiError("IncompleteSignature", "Date must be in ISO-8601 'basic format'. Got '%s'."
                           % amz_date, 400) from None
        when = when.replace(tzinfo=datetime.timezone.utc)
        if scope_date != amz_date[:8]:
            raise ApiError("SignatureDoesNotMatch", "Date in Credential scope does not match YYYYMMDD "
                           "from ISO-8601 version of date from HTTP: '%s' != '%s'"
                           % (scope_date, amz_date[:8]), 403)
        if abs(time.time() - when.timestamp()) > MAX_CLOCK_SKEW_S:
            raise ApiError("RequestExpired", "Request has expired.", 403)
        token = headers.get("X-Amz-Security-Token")
        if (cred.session_token or None) != (token or None):
            self.log("auth: session token %s for %s" % ("missing" if token is None else "wrong/unexpected", akid))
            raise ApiError("AuthFailure", _AUTH_FAILURE, 401)

        request = botocore.awsrequest.AWSRequest(
            method=method, url="http://%s%s" % (headers.get("Host", ""), raw_path),
            headers=headers, data=body)
        request.context["timestamp"] = amz_date
        signer = _ReceivedRequestSigner(
            botocore.credentials.Credentials(cred.access_key, cred.secret_key, cred.session_token),
            region, signed)
        canonical = signer.canonical_request(request)
        string_to_sign = signer.string_to_sign(request, canonical)
        expected = signer.signature(string_to_sign, request)
        if not hmac.compare_digest(expected, fields["Signature"]):
            self.log("auth: signature mismatch for %s\n--- canonical request\n%s\n--- string to sign\n%s\n---"
                     % (akid, canonical, string_to_sign))
            raise ApiError("SignatureDoesNotMatch", "The request signature we calculated does not match "
                           "the signature you provided. Check your AWS Secret Access Key and signing "
                           "method. Consult the service documentation for details.", 403)
        return region
        return cred, region


# --------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------

class Kind:
    def __init__(self, prefix, not_found_code, not_found_msg, malformed_code, resource_type, plural):
        self.prefix, self.resource_type, self.plural = prefix, resource_type, plural
        self.not_found_code, self.not_found_msg, self.malformed_code = not_found_code, not_found_msg, malformed_code


KINDS = {
    "vpc": Kind("vpc", "InvalidVpcID.NotFound", "The vpc ID '%s' does not exist",
                "InvalidVpcID.Malformed", "vpc", "vpcs"),
    "subnet": Kind("subnet", "InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist",
                   "InvalidSubnetID.Malformed", "subnet", "subnets"),
    "igw": Kind("igw", "InvalidInternetGatewayID.NotFound", "The internetGateway ID '%s' does not exist",
                "InvalidInternetGatewayID.Malformed", "internet-gateway", "internet_gateways"),
    "rtb": Kind("rtb", "InvalidRouteTableID.NotFound", "The routeTable ID '%s' does not exist",
                "InvalidRouteTableID.Malformed", "route-table", "route_tables"),
    "sg": Kind("sg", "InvalidGroup.NotFound", "The security group '%s' does not exist",
               "InvalidGroupId.Malformed", "security-group", "security_groups"),
    "key": Kind("key", "InvalidKeyPair.NotFound", "The key pair '%s' does not exist",
                "InvalidKeyPair.Malformed", "key-pair", "key_pairs"),
    "instance": Kind("i", "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist",
                     "InvalidInstanceID.Malformed", "instance", "instances"),
    "volume": Kind("vol", "InvalidVolume.NotFound", "The volume '%s' does not exist.",
                   "InvalidVolumeID.Malformed", "volume", "volumes"),
    "eip": Kind("eipalloc", "InvalidAllocationID.NotFound", "The allocation ID '%s' does not exist",
                "InvalidAllocationID.Malformed", "elastic-ip", "addresses"),
    "image": Kind("ami", "InvalidAMIID.NotFound", "The image id '[%s]' does not exist",
                  "InvalidAMIID.Malformed", "image", "images"),
}
KIND_BY_PREFIX = {k.prefix: name for name, k in KINDS.items()}
TAGGABLE = ("vpc", "subnet", "igw", "rtb", "sg", "key", "instance", "volume", "eip")

INSTANCE_STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48,
                        "stopping": 64, "stopped": 80}

# Families RunInstances accepts (all also in the model's InstanceType enum).
ACCEPTED_FAMILIES = set("""m3 r3 t2 t3 t3a t4g m4 m5 m5a m5ad m5d m5dn m5n m5zn m6a m6g m6gd m6i m6id
    c4 c5 c5a c5ad c5d c5n c6a c6g c6gd c6gn c6i c6id c7g r4 r5 r5a r5ad r5b r5d r5dn r5n r6a r6g
    r6gd r6i r6id i3 i3en i4i d3 g4dn g5 p3 p4d x2idn z1d""".split())
ARM_FAMILIES = set("a1 t4g m6g m6gd c6g c6gd c6gn c7g r6g r6gd x2gd im4gn is4gen g5g".split())

# Canonical's Ubuntu images plus two traps: a newer Canonical "minimal" image
# and a newer image with Ubuntu's name published by somebody else.
SEED_IMAGES = [
    ("ami-0c1f0a2b3c4d50001", CANONICAL_OWNER, None,
     "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-20231011", "x86_64", "2023-10-11T12:30:00.000Z"),
    ("ami-0c1f0a2b3c4d50002", CANONICAL_OWNER, None,
     "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20230919", "x86_64", "2023-09-19T08:12:00.000Z"),
    ("ami-0c1f0a2b3c4d50003", CANONICAL_OWNER, None,
     "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20231207", "x86_64", "2023-12-07T10:05:00.000Z"),
    ("ami-0c1f0a2b3c4d50004", CANONICAL_OWNER, None,
     "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-20231207", "arm64", "2023-12-07T10:07:00.000Z"),
    ("ami-0c1f0a2b3c4d50005", CANONICAL_OWNER, None,
     "ubuntu-minimal/images/hvm-ssd/ubuntu-jammy-22.04-amd64-minimal-20231213", "x86_64",
     "2023-12-13T09:00:00.000Z"),
    ("ami-0c1f0a2b3c4d50006", "111122223333", None,
     "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240101", "x86_64", "2024-01-01T00:00:00.000Z"),
    ("ami-0c1f0a2b3c4d50007", AMAZON_OWNER, "amazon",
     "al2023-ami-2023.3.20231218.0-kernel-6.1-x86_64", "x86_64", "2023-12-18T20:00:00.000Z"),
]


class Res:
    """One resource: kind, id, tags and free-form attributes (JSON-friendly)."""

    def __init__(self, kind, id, **attrs):
        self.kind, self.id, self.tags = kind, id, {}
        self.__dict__.update(attrs)

    def to_json(self):
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


class Ec2State:
    """All resources of one fake account in one region, plus the clock."""

    def __init__(self, region=DEFAULT_REGION, account=DEFAULT_ACCOUNT, seed=None, config=None):
        self.region, self.account = region, account
        self.config = dict(DEFAULT_CONFIG, **(config or {}))
        self.rng = random.Random(seed)
        self.clock_offset = 0.0
        self.res = {kind: {} for kind in KINDS}
        self.client_tokens = {}   # ClientToken -> (fingerprint, reservation id)
        self.reservations = {}    # reservation id -> [instance ids]
        self.eip_assocs = {}      # eipassoc id -> eipalloc id
        self.rtb_assocs = {}      # rtbassoc id -> rtb id
        self.next_public = 0
        self.issued = set()
        for image_id, owner, alias, name, arch, created in SEED_IMAGES:
            self.add(Res("image", image_id, owner_id=owner, owner_alias=alias, name=name,
                         architecture=arch, creation_date=created, state="available",
                         snapshot_id="snap-" + hashlib.sha1(image_id.encode()).hexdigest()[:17]))

    # -- basics
    def now(self):
        return time.time() + self.clock_offset

    def new_id(self, prefix):
        """prefix-<17 hex digits>, never handed out twice."""
        while True:
            rid = "%s-%017x" % (prefix, self.rng.getrandbits(68))
            if rid not in self.issued:
                self.issued.add(rid)
                return rid

    def add(self, r):
        if not hasattr(r, "owner_id"):
            r.owner_id = self.account
        self.res[r.kind][r.id] = r
        return r

    def all(self, kind):
        return list(self.res[kind].values())

    def get(self, kind, rid):
        k = KINDS[kind]
        if not isinstance(rid, str) or not re.fullmatch(r"%s-([0-9a-f]{8}|[0-9a-f]{17})" % k.prefix, rid):
            raise ApiError(k.malformed_code, 'Invalid id: "%s"' % rid)
        r = self.res[kind].get(rid)
        if r is None:
            raise ApiError(k.not_found_code, k.not_found_msg % rid)
        return r

    def get_many(self, kind, ids):
        return [self.get(kind, i) for i in ids]

    def by_id_any(self, rid):
        """A taggable resource from its id, whatever its kind."""
        prefix = rid.rsplit("-", 1)[0] if "-" in rid else ""
        kind = KIND_BY_PREFIX.get(prefix)
        if kind not in TAGGABLE:
            raise ApiError("InvalidID", "The ID '%s' is not valid" % rid)
        return self.get(kind, rid)

    def public_ip(self):
        pools = [ipaddress.ip_network("203.0.113.0/24"), ipaddress.ip_network("198.51.100.0/24")]
        n = self.next_public
        self.next_public += 1
        pool = pools[(n // 250) % 2]
        return str(pool.network_address + 4 + n % 250)

    # -- time-driven transitions, applied lazily before every call
    def tick(self):
        now = self.now()
        cfg = self.config
        for inst in list(self.res["instance"].values()):
            if inst.state == "pending" and now >= inst.ready_at:
                inst.state = "running"
            if inst.state == "shutting-down" and now >= inst.gone_at:
                self._terminated(inst, now)
            if inst.state == "terminated" and now >= inst.terminated_at + cfg["terminated_ttl_ms"] / 1000.0:
                del self.res["instance"][inst.id]

    def _terminated(self, inst, now):
        inst.state = "terminated"
        inst.terminated_at = now
        for eip in self.all("eip"):
            if eip.instance_id == inst.id:
                self.disassociate(eip)
        for bd in inst.block_devices:
            vol = self.res["volume"].get(bd["volume_id"])
            if vol is None:
                continue
            if bd["delete_on_termination"]:
                del self.res["volume"][vol.id]
            else:
                vol.state, vol.attachment = "available", None
        inst.block_devices = []
        inst.public_ip = None
        inst.private_ip = inst.subnet_id = inst.vpc_id = inst.eni_id = None
        inst.sg_ids = []

    def disassociate(self, eip):
        self.eip_assocs.pop(eip.association_id, None)
        eip.instance_id = eip.association_id = eip.private_ip = eip.eni_id = None

    def live_instances(self):
        return [i for i in self.all("instance") if i.state != "terminated"]

    def eip_of(self, inst):
        for eip in self.all("eip"):
            if eip.instance_id == inst.id:
                return eip
        return None

    def igw_of(self, vpc_id):
        for igw in self.all("igw"):
            if igw.vpc_id == vpc_id:
                return igw
        return None

    def snapshot(self):
        out = {"region": self.region, "account": self.account, "now": self.now(),
               "config": dict(self.config),
               "client_tokens": {t: r for t, (_, r) in self.client_tokens.items()}}
        for name, kind in KINDS.items():
            out[kind.plural] = [r.to_json() for r in self.res[name].values()]
        return out


# --------------------------------------------------------------------------
# Shared helpers for handlers: tags, filters, pagination
# --------------------------------------------------------------------------

def tags_out(r):
    return [{"Key": k, "Value": v} for k, v in r.tags.items()]


def check_tags(tags):
    out = {}
    for t in tags:
        key, value = t.get("Key"), t.get("Value", "")
        if key is None:
            raise ApiError("MissingParameter", "The request must contain the parameter Tag.N.Key")
        if not 1 <= len(key) <= 128:
            raise invalid("Tag key exceeds the maximum length of 128 characters" if key else
                          "Tag key cannot be empty")
        if len(value) > 256:
            raise invalid("Tag value exceeds the maximum length of 256 characters")
        if key.lower().startswith("aws:"):
            raise invalid("Tag keys starting with 'aws:' are reserved for internal use")
        if key in out:
            raise invalid("Duplicate tag key '%s' specified." % key)
        out[key] = value
    return out


IMDS_TAG_KEY = re.compile(r"^[A-Za-z0-9+=._:@-]+$")


def check_imds_tag_keys(tags):
    """An instance whose tags its metadata serves (InstanceMetadataTags
    enabled) takes only keys of letters, digits and + - = . _ : @, and not
    '.', '..' or '_index' (the EC2 user guide, "Work with instance tags in
    instance metadata")."""
    for key in tags:
        if not IMDS_TAG_KEY.match(key) or key in (".", "..", "_index"):
            raise invalid("The tag key '%s' is not allowed on an instance with instance metadata "
                          "tags enabled" % key)


def apply_tags(r, tags):
    merged = dict(r.tags)
    merged.update(tags)
    if len(merged) > 50:
        raise ApiError("TagLimitExceeded", "The maximum number of Tags for a resource has been reached.")
    if getattr(r, "metadata_tags", "disabled") == "enabled":
        check_imds_tag_keys(tags)
    r.tags = merged


def tag_specs(p, allowed):
    """TagSpecifications -> {resource type: tags}; types must suit the action."""
    out = {}
    for spec in p.get("TagSpecifications", []):
        rtype = spec.get("ResourceType")
        if rtype is None:
            raise ApiError("MissingParameter", "The request must contain the parameter TagSpecification.N.ResourceType")
        if rtype not in allowed:
            raise invalid("'%s' is not a valid taggable resource type for this operation." % rtype)
        if rtype in out:
            raise invalid("The same resource type may not be specified more than once in tag specifications.")
        out[rtype] = check_tags(spec.get("Tags", []))
    return out


def _strs(v):
    if v is None:
        return []
    if isinstance(v, bool):
        return ["true" if v else "false"]
    if isinstance(v, (list, tuple, set)):
        return [s for x in v for s in _strs(x)]
    return [str(v)]


def _wildcard(pattern):
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + r"\Z")


# EC2 refuses a call with more filter values than this, all its filters
# together (error code FilterLimitExceeded, in EC2's published error codes;
# the number and "on a single call" are its message's). So an instance-id
# filter holds at most 200 IDs, fewer beside other filters; InstanceId.N has
# no such limit, but cannot be paged (MaxResults) and fails on an unknown ID.
MAX_FILTER_VALUES = 200


def filtered(items, filters, table):
    """AWS filter semantics: values of one filter OR'ed (with * and ?
    wildcards), filters AND'ed; tag:KEY, tag-key and tag-value everywhere."""
    tests = []
    if sum(len(f.get("Values", [])) for f in filters or []) > MAX_FILTER_VALUES:
        raise ApiError("FilterLimitExceeded", "The maximum number of filter values specified "
                       "on a single call is %d" % MAX_FILTER_VALUES)
    for f in filters or []:
        name, values = f.get("Name"), f.get("Values", [])
        if not name:
            raise ApiError("MissingParameter", "The request must contain the parameter Filter.N.Name")
        if not values:
            raise invalid("The filter '%s' requires at least one value" % name)
        if name.startswith("tag:"):
            key = name[4:]
            get = (lambda key: lambda r: [r.tags[key]] if key in r.tags else [])(key)
        elif name == "tag-key":
            get = lambda r: list(r.tags)
        elif name == "tag-value":
            get = lambda r: list(r.tags.values())
        elif name in table:
            get = (lambda fn: lambda r: _strs(fn(r)))(table[name])
        else:
            raise invalid("The filter '%s' is invalid" % name)
        tests.append((get, [_wildcard(v) for v in values]))
    return [r for r in items
            if all(any(rx.match(s) for s in get(r) for rx in rxs) for get, rxs in tests)]


def paginate(items, p, action):
    """MaxResults/NextToken over an ordered list; returns (page, next token)."""
    if "MaxResults" not in p and "NextToken" not in p:
        return items, None
    start = 0
    if p.get("NextToken"):
        try:
            tag, _, offset = base64.urlsafe_b64decode(p["NextToken"].encode()).decode().rpartition(":")
            start = int(offset)
            if tag != "fake-ec2:" + action or start < 0:
                raise ValueError
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise ApiError("InvalidPaginationToken", "The specified pagination token is not valid or is expired.") from None
    size = p.get("MaxResults", 1000)
    page = items[start:start + size]
    more = start + size < len(items)
    token = base64.urlsafe_b64encode(("fake-ec2:%s:%d" % (action, start + size)).encode()).decode() if more else None
    return page, token


def select(st, kind, p, ids_param, table, action=None):
    """The common Describe*: IDs (each must exist), then filters, then pages."""
    items = st.get_many(kind, p[ids_param]) if p.get(ids_param) else st.all(kind)
    items = filtered(items, p.get("Filters"), table)
    if action is None:
        return items, None
    return paginate(items, p, action)


def _ip_net(cidr, what):
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise invalid("Value (%s) for parameter %s is invalid. This is not a valid CIDR block." % (cidr, what)) from None


# --------------------------------------------------------------------------
# Handlers: one per action; each gets (state, params, ctx) and returns the
# output shape as a dict (or None for actions answering <return>true</return>).
# --------------------------------------------------------------------------

HANDLERS = {}


def action(name):
    def register(fn):
        assert name in service_model().operation_names, name
        HANDLERS[name] = fn
        return fn
    return register


# ---- VPCs

def vpc_out(st, v):
    return {"CidrBlock": v.cidr, "DhcpOptionsId": v.dhcp_options_id, "State": v.state, "VpcId": v.id,
            "OwnerId": st.account, "InstanceTenancy": v.tenancy, "IsDefault": False,
            "CidrBlockAssociationSet": [{"AssociationId": v.cidr_assoc_id, "CidrBlock": v.cidr,
                                         "CidrBlockState": {"State": "associated"}}],
            "Tags": tags_out(v)}


VPC_FILTERS = {"vpc-id": lambda v: v.id, "cidr": lambda v: v.cidr, "cidr-block": lambda v: v.cidr,
               "cidr-block-association.cidr-block": lambda v: v.cidr, "state": lambda v: v.state,
               "is-default": lambda v: False, "owner-id": lambda v: v.owner_id,
               "dhcp-options-id": lambda v: v.dhcp_options_id}


@action("CreateVpc")
def create_vpc(st, p, ctx):
    if "CidrBlock" not in p:
        raise ApiError("MissingParameter", "Either 'cidrBlock' or 'ipv4IpamPoolId' should be provided.")
    net = _ip_net(p["CidrBlock"], "cidrBlock")
    if net.version != 4 or not 16 <= net.prefixlen <= 28:
        raise ApiError("InvalidVpc.Range", "The CIDR '%s' is invalid." % p["CidrBlock"])
    tags = tag_specs(p, {"vpc"})
    if len(st.all("vpc")) >= st.config["vpc_limit"]:
        raise ApiError("VpcLimitExceeded", "The maximum number of VPCs has been reached.")
    vpc = st.add(Res("vpc", st.new_id("vpc"), cidr=str(net), state="available",
                     tenancy=p.get("InstanceTenancy", "default"), dhcp_options_id=st.new_id("dopt"),
                     cidr_assoc_id=st.new_id("vpc-cidr-assoc"), enable_dns_support=True,
                     enable_dns_hostnames=False))
    vpc.tags = tags.get("vpc", {})
    # Like AWS: every VPC comes with a main route table and a default security group.
    main = st.add(Res("rtb", st.new_id("rtb"), vpc_id=vpc.id, main=True, routes=[], associations=[]))
    assoc = st.new_id("rtbassoc")
    main.associations.append({"id": assoc, "subnet_id": None, "main": True})
    st.rtb_assocs[assoc] = main.id
    sg = st.add(Res("sg", st.new_id("sg"), name="default", description="default VPC security group",
                    vpc_id=vpc.id, ingress=[], egress=[]))
    sg.ingress.append(_rule(st, "-1", None, None, "group", sg.id))
    sg.egress.append(_rule(st, "-1", None, None, "cidr", "0.0.0.0/0"))
    return {"Vpc": vpc_out(st, vpc)}


@action("DescribeVpcs")
def describe_vpcs(st, p, ctx):
    page, token = select(st, "vpc", p, "VpcIds", VPC_FILTERS, "DescribeVpcs")
    return {"Vpcs": [vpc_out(st, v) for v in page], "NextToken": token}


@action("ModifyVpcAttribute")
def modify_vpc_attribute(st, p, ctx):
    vpc = st.get("vpc", p["VpcId"])
    attrs = [a for a in ("EnableDnsSupport", "EnableDnsHostnames", "EnableNetworkAddressUsageMetrics") if a in p]
    if len(attrs) != 1:
        raise ApiError("InvalidParameterCombination", "Fields for multiple attribute types specified: %s"
                       % ", ".join(attrs) if attrs else "No attributes specified.")
    value = p[attrs[0]].get("Value")
    if value is None:
        raise ApiError("MissingParameter", "The request must contain the parameter %s.Value" % attrs[0])
    if attrs[0] == "EnableDnsHostnames" and value and not vpc.enable_dns_support:
        raise invalid("DNS hostnames require DNS support to be enabled for the VPC")
    setattr(vpc, {"EnableDnsSupport": "enable_dns_support", "EnableDnsHostnames": "enable_dns_hostnames",
                  "EnableNetworkAddressUsageMetrics": "enable_network_address_usage_metrics"}[attrs[0]], value)


@action("DeleteVpc")
def delete_vpc(st, p, ctx):
    vpc = st.get("vpc", p["VpcId"])
    deps = ([s for s in st.all("subnet") if s.vpc_id == vpc.id]
            + [g for g in st.all("igw") if g.vpc_id == vpc.id]
            + [g for g in st.all("sg") if g.vpc_id == vpc.id and g.name != "default"]
            + [t for t in st.all("rtb") if t.vpc_id == vpc.id and not t.main])
    if deps:
        raise ApiError("DependencyViolation", "The vpc '%s' has dependencies and cannot be deleted." % vpc.id)
    for kind in ("sg", "rtb"):
        for r in st.all(kind):
            if r.vpc_id == vpc.id:
                del st.res[kind][r.id]
                for a in getattr(r, "associations", []):
                    st.rtb_assocs.pop(a["id"], None)
    del st.res["vpc"][vpc.id]


# ---- Subnets

def subnet_out(st, s):
    return {"AvailabilityZone": s.az, "AvailabilityZoneId": _az_id(st, s.az),
            "AvailableIpAddressCount": s.size - 5 - len([i for i in st.live_instances() if i.subnet_id == s.id]),
            "CidrBlock": s.cidr, "DefaultForAz": False, "MapPublicIpOnLaunch": s.map_public_ip,
            "MapCustomerOwnedIpOnLaunch": False, "State": s.state, "SubnetId": s.id, "VpcId": s.vpc_id,
            "OwnerId": st.account, "AssignIpv6AddressOnCreation": False, "Ipv6CidrBlockAssociationSet": [],
            "SubnetArn": "arn:aws:ec2:%s:%s:subnet/%s" % (st.region, st.account, s.id),
            "EnableDns64": False, "Ipv6Native": False, "Tags": tags_out(s)}


def _azs(st):
    return [st.region + z for z in "abcd"]


def _az_id(st, az):
    parts = st.region.split("-")
    short = parts[0] + "".join(w[0] for w in parts[1:-1]) + parts[-1]
    return "%s-az%d" % (short, "abcd".index(az[-1]) + 1)


SUBNET_FILTERS = {"subnet-id": lambda s: s.id, "vpc-id": lambda s: s.vpc_id, "cidr-block": lambda s: s.cidr,
                  "cidr": lambda s: s.cidr, "cidrBlock": lambda s: s.cidr, "availability-zone": lambda s: s.az,
                  "availabilityZone": lambda s: s.az, "state": lambda s: s.state,
                  "default-for-az": lambda s: False, "map-public-ip-on-launch": lambda s: s.map_public_ip,
                  "owner-id": lambda s: s.owner_id}


@action("CreateSubnet")
def create_subnet(st, p, ctx):
    vpc = st.get("vpc", p["VpcId"])
    if "CidrBlock" not in p:
        raise ApiError("MissingParameter", "The request must contain the parameter cidrBlock")
    net = _ip_net(p["CidrBlock"], "cidrBlock")
    vnet = ipaddress.ip_network(vpc.cidr)
    if net.version != 4 or not 16 <= net.prefixlen <= 28 or not net.subnet_of(vnet):
        raise ApiError("InvalidSubnet.Range", "The CIDR '%s' is invalid." % p["CidrBlock"])
    for other in st.all("subnet"):
        if other.vpc_id == vpc.id and ipaddress.ip_network(other.cidr).overlaps(net):
            raise ApiError("InvalidSubnet.Conflict", "The CIDR '%s' conflicts with another subnet" % p["CidrBlock"])
    az = p.get("AvailabilityZone", st.region + "a")
    if az not in _azs(st):
        raise invalid("Value (%s) for parameter availabilityZone is invalid. Subnets can currently only be "
                      "created in the following availability zones: %s." % (az, ", ".join(_azs(st))))
    tags = tag_specs(p, {"subnet"})
    s = st.add(Res("subnet", st.new_id("subnet"), vpc_id=vpc.id, cidr=str(net), az=az, state="available",
                   map_public_ip=False, size=net.num_addresses, next_host=4))
    s.tags = tags.get("subnet", {})
    return {"Subnet": subnet_out(st, s)}


@action("DescribeSubnets")
def describe_subnets(st, p, ctx):
    page, token = select(st, "subnet", p, "SubnetIds", SUBNET_FILTERS, "DescribeSubnets")
    return {"Subnets": [subnet_out(st, s) for s in page], "NextToken": token}


@action("ModifySubnetAttribute")
def modify_subnet_attribute(st, p, ctx):
    s = st.get("subnet", p["SubnetId"])
    attrs = [a for a in p if a not in ("SubnetId", "DryRun")]
    if len(attrs) != 1:
        raise ApiError("InvalidParameterCombination", "You can only modify one attribute at a time "
                       "(got %s)" % (", ".join(attrs) or "none"))
    if attrs[0] == "MapPublicIpOnLaunch":
        if "Value" not in p["MapPublicIpOnLaunch"]:
            raise ApiError("MissingParameter", "The request must contain the parameter MapPublicIpOnLaunch.Value")
        s.map_public_ip = p["MapPublicIpOnLaunch"]["Value"]
    elif attrs[0] == "AssignIpv6AddressOnCreation" and p[attrs[0]].get("Value"):
        raise invalid("Subnet %s does not have an IPv6 CIDR block" % s.id)


@action("DeleteSubnet")
def delete_subnet(st, p, ctx):
    s = st.get("subnet", p["SubnetId"])
    if any(i.subnet_id == s.id for i in st.live_instances()):
        raise ApiError("DependencyViolation", "The subnet '%s' has dependencies and cannot be deleted." % s.id)
    for rtb in st.all("rtb"):
        for a in [a for a in rtb.associations if a["subnet_id"] == s.id]:
            rtb.associations.remove(a)
            st.rtb_assocs.pop(a["id"], None)
    del st.res["subnet"][s.id]


# ---- Internet gateways

def igw_out(st, g):
    return {"Attachments": [{"State": "available", "VpcId": g.vpc_id}] if g.vpc_id else [],
            "InternetGatewayId": g.id, "OwnerId": st.account, "Tags": tags_out(g)}


IGW_FILTERS = {"internet-gateway-id": lambda g: g.id, "attachment.vpc-id": lambda g: g.vpc_id,
               "attachment.state": lambda g: "available" if g.vpc_id else None,
               "owner-id": lambda g: g.owner_id}


@action("CreateInternetGateway")
def create_internet_gateway(st, p, ctx):
    tags = tag_specs(p, {"internet-gateway"})
    g = st.add(Res("igw", st.new_id("igw"), vpc_id=None))
    g.tags = tags.get("internet-gateway", {})
    return {"InternetGateway": igw_out(st, g)}


@action("DescribeInternetGateways")
def describe_internet_gateways(st, p, ctx):
    page, token = select(st, "igw", p, "InternetGatewayIds", IGW_FILTERS, "DescribeInternetGateways")
    return {"InternetGateways": [igw_out(st, g) for g in page], "NextToken": token}


@action("AttachInternetGateway")
def attach_internet_gateway(st, p, ctx):
    g, vpc = st.get("igw", p["InternetGatewayId"]), st.get("vpc", p["VpcId"])
    if g.vpc_id is not None:
        raise ApiError("Resource.AlreadyAssociated", "resource %s is already attached to network %s" % (g.id, g.vpc_id))
    other = st.igw_of(vpc.id)
    if other is not None:
        raise ApiError("InvalidParameterValue", "Network %s already has an internet gateway attached" % vpc.id)
    g.vpc_id = vpc.id


@action("DetachInternetGateway")
def detach_internet_gateway(st, p, ctx):
    g, vpc = st.get("igw", p["InternetGatewayId"]), st.get("vpc", p["VpcId"])
    if g.vpc_id != vpc.id:
        raise ApiError("Gateway.NotAttached", "resource %s is not attached to network %s" % (g.id, vpc.id))
    mapped = [i for i in st.live_instances() if i.vpc_id == vpc.id and (i.public_ip or st.eip_of(i))]
    if mapped:
        raise ApiError("DependencyViolation", "Network %s has some mapped public address(es). Please unmap "
                       "those public address(es) before detaching the gateway." % vpc.id)
    g.vpc_id = None


@action("DeleteInternetGateway")
def delete_internet_gateway(st, p, ctx):
    g = st.get("igw", p["InternetGatewayId"])
    if g.vpc_id is not None:
        raise ApiError("DependencyViolation", "The internetGateway '%s' has dependencies and cannot be deleted." % g.id)
    del st.res["igw"][g.id]


# ---- Route tables

def rtb_out(st, t):
    vpc = st.res["vpc"].get(t.vpc_id)
    routes = [{"DestinationCidrBlock": vpc.cidr if vpc else "", "GatewayId": "local",
               "Origin": "CreateRouteTable", "State": "active"}]
    for r in t.routes:
        out = {"DestinationCidrBlock": r["destination"], "Origin": "CreateRoute"}
        target = r["target"]
        if target.startswith("igw-"):
            igw = st.res["igw"].get(target)
            out["GatewayId"] = target
            out["State"] = "active" if igw is not None and igw.vpc_id == t.vpc_id else "blackhole"
        else:
            inst = st.res["instance"].get(target)
            out["InstanceId"] = target
            out["InstanceOwnerId"] = st.account
            out["State"] = "active" if inst is not None and inst.state != "terminated" else "blackhole"
        routes.append(out)
    assocs = []
    for a in t.associations:
        d = {"Main": a["main"], "RouteTableAssociationId": a["id"], "RouteTableId": t.id,
             "AssociationState": {"State": "associated"}}
        if a["subnet_id"]:
            d["SubnetId"] = a["subnet_id"]
        assocs.append(d)
    return {"Associations": assocs, "PropagatingVgws": [], "RouteTableId": t.id, "Routes": routes,
            "Tags": tags_out(t), "VpcId": t.vpc_id, "OwnerId": st.account}


RTB_FILTERS = {"route-table-id": lambda t: t.id, "vpc-id": lambda t: t.vpc_id,
               "association.subnet-id": lambda t: [a["subnet_id"] for a in t.associations if a["subnet_id"]],
               "association.route-table-association-id": lambda t: [a["id"] for a in t.associations],
               "association.route-table-id": lambda t: t.id if t.associations else None,
               "association.main": lambda t: t.main,
               "route.gateway-id": lambda t: [r["target"] for r in t.routes] + ["local"],
               "route.destination-cidr-block": lambda t: [r["destination"] for r in t.routes]}


@action("CreateRouteTable")
def create_route_table(st, p, ctx):
    vpc = st.get("vpc", p["VpcId"])
    tags = tag_specs(p, {"route-table"})
    t = st.add(Res("rtb", st.new_id("rtb"), vpc_id=vpc.id, main=False, routes=[], associations=[]))
    t.tags = tags.get("route-table", {})
    return {"RouteTable": rtb_out(st, t)}


@action("DescribeRouteTables")
def describe_route_tables(st, p, ctx):
    page, token = select(st, "rtb", p, "RouteTableIds", RTB_FILTERS, "DescribeRouteTables")
    return {"RouteTables": [rtb_out(st, t) for t in page], "NextToken": token}


@action("CreateRoute")
def create_route(st, p, ctx):
    t = st.get("rtb", p["RouteTableId"])
    if "DestinationCidrBlock" not in p:
        raise ApiError("MissingParameter", "The request must contain the parameter destinationCidrBlock "
                       "(this fake supports IPv4 routes only)")
    dest = str(_ip_net(p["DestinationCidrBlock"], "destinationCidrBlock"))
    targets = [k for k in ("GatewayId", "InstanceId", "NatGatewayId", "NetworkInterfaceId", "TransitGatewayId",
                           "VpcPeeringConnectionId", "EgressOnlyInternetGatewayId", "LocalGatewayId",
                           "CarrierGatewayId", "VpcEndpointId", "CoreNetworkArn") if k in p]
    if len(targets) != 1:
        raise ApiError("InvalidParameterCombination" if targets else "MissingParameter",
                       "The request must contain exactly one route target (got %s)" % (", ".join(targets) or "none"))
    if targets[0] == "GatewayId":
        g = st.get("igw", p["GatewayId"])
        if g.vpc_id != t.vpc_id:
            raise invalid("route table %s and network gateway %s belong to different networks" % (t.id, g.id))
        target = g.id
    elif targets[0] == "InstanceId":
        inst = st.get("instance", p["InstanceId"])
        if inst.vpc_id != t.vpc_id:
            raise invalid("route table %s and instance %s belong to different networks" % (t.id, inst.id))
        target = inst.id
    else:
        raise ApiError("UnsupportedOperation", "This fake only routes to internet gateways and instances")
    vpc = st.res["vpc"][t.vpc_id]
    if dest == vpc.cidr or any(r["destination"] == dest for r in t.routes):
        raise ApiError("RouteAlreadyExists", "The route identified by %s already exists." % dest)
    t.routes.append({"destination": dest, "target": target})
    return {"Return": True}


@action("AssociateRouteTable")
def associate_route_table(st, p, ctx):
    t = st.get("rtb", p["RouteTableId"])
    if "SubnetId" not in p:
        raise ApiError("MissingParameter", "The request must contain the parameter subnetId "
                       "(this fake does not associate gateways)")
    s = st.get("subnet", p["SubnetId"])
    if s.vpc_id != t.vpc_id:
        raise invalid("Route table %s and subnet %s belong to different networks" % (t.id, s.id))
    for other in st.all("rtb"):
        for a in other.associations:
            if a["subnet_id"] == s.id:
                if other.id == t.id:
                    return {"AssociationId": a["id"], "AssociationState": {"State": "associated"}}
                raise ApiError("Resource.AlreadyAssociated", "the specified association for route table %s "
                               "conflicts with an existing association" % t.id)
    assoc = st.new_id("rtbassoc")
    t.associations.append({"id": assoc, "subnet_id": s.id, "main": False})
    st.rtb_assocs[assoc] = t.id
    return {"AssociationId": assoc, "AssociationState": {"State": "associated"}}


@action("DisassociateRouteTable")
def disassociate_route_table(st, p, ctx):
    assoc = p["AssociationId"]
    t = st.res["rtb"].get(st.rtb_assocs.get(assoc))
    if t is None:
        raise ApiError("InvalidAssociationID.NotFound", "The association ID '%s' does not exist" % assoc)
    a = next(a for a in t.associations if a["id"] == assoc)
    if a["main"]:
        raise invalid("cannot disassociate the main route table association %s" % assoc)
    t.associations.remove(a)
    del st.rtb_assocs[assoc]


@action("DeleteRouteTable")
def delete_route_table(st, p, ctx):
    t = st.get("rtb", p["RouteTableId"])
    if t.main or t.associations:
        raise ApiError("DependencyViolation", "The routeTable '%s' has dependencies and cannot be deleted." % t.id)
    del st.res["rtb"][t.id]


# ---- Security groups

PROTOCOLS = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp",
             "-1": "-1", "all": "-1", "icmpv6": "icmpv6", "58": "icmpv6"}


def _rule(st, proto, from_port, to_port, peer_kind, peer, description=None):
    return {"id": st.new_id("sgr"), "proto": proto, "from": from_port, "to": to_port,
            "peer_kind": peer_kind, "peer": peer, "description": description}


def _same_rule(a, b):
    return all(a[k] == b[k] for k in ("proto", "from", "to", "peer_kind", "peer"))


def permissions_out(st, rules):
    grouped = {}
    for r in rules:
        perm = grouped.setdefault((r["proto"], r["from"], r["to"]), {
            "IpProtocol": r["proto"], "FromPort": r["from"], "ToPort": r["to"],
            "IpRanges": [], "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []})
        if r["peer_kind"] == "cidr":
            perm["IpRanges"].append({"CidrIp": r["peer"], "Description": r["description"]})
        elif r["peer_kind"] == "cidr6":
            perm["Ipv6Ranges"].append({"CidrIpv6": r["peer"], "Description": r["description"]})
        else:
            perm["UserIdGroupPairs"].append({"GroupId": r["peer"], "UserId": st.account,
                                             "Description": r["description"]})
    return list(grouped.values())


def sg_out(st, g):
    return {"Description": g.description, "GroupName": g.name, "IpPermissions": permissions_out(st, g.ingress),
            "OwnerId": st.account, "GroupId": g.id, "IpPermissionsEgress": permissions_out(st, g.egress),
            "Tags": tags_out(g), "VpcId": g.vpc_id}


SG_FILTERS = {"group-id": lambda g: g.id, "group-name": lambda g: g.name, "vpc-id": lambda g: g.vpc_id,
              "description": lambda g: g.description, "owner-id": lambda g: g.owner_id,
              "ip-permission.cidr": lambda g: [r["peer"] for r in g.ingress if r["peer_kind"] == "cidr"],
              "ip-permission.protocol": lambda g: [r["proto"] for r in g.ingress],
              "ip-permission.from-port": lambda g: [r["from"] for r in g.ingress],
              "ip-permission.to-port": lambda g: [r["to"] for r in g.ingress],
              "ip-permission.group-id": lambda g: [r["peer"] for r in g.ingress if r["peer_kind"] == "group"]}


def _no_default_vpc(name):
    return ApiError("InvalidGroup.NotFound", "The security group '%s' does not exist in default VPC 'none'" % name)


def _sg_by_id_or_name(st, p):
    if "GroupId" in p:
        return st.get("sg", p["GroupId"])
    if "GroupName" in p:
        # Names only address groups of the default VPC; this account has none.
        raise _no_default_vpc(p["GroupName"])
    raise ApiError("MissingParameter", "The request must contain the parameter groupName or groupId")


@action("CreateSecurityGroup")
def create_security_group(st, p, ctx):
    if "VpcId" not in p:
        raise ApiError("VPCIdNotSpecified", "No default VPC for this user")
    vpc = st.get("vpc", p["VpcId"])
    name = p["GroupName"]
    if name.lower().startswith("sg-"):
        raise invalid("Group names may not be in the format sg-*.")
    if len(name) > 255 or len(p["Description"]) > 255:
        raise invalid("Group name and description are limited to 255 characters")
    if any(g.vpc_id == vpc.id and g.name == name for g in st.all("sg")):
        raise ApiError("InvalidGroup.Duplicate", "The security group '%s' already exists for VPC '%s'" % (name, vpc.id))
    tags = tag_specs(p, {"security-group"})
    g = st.add(Res("sg", st.new_id("sg"), name=name, description=p["Description"], vpc_id=vpc.id,
                   ingress=[], egress=[]))
    g.egress.append(_rule(st, "-1", None, None, "cidr", "0.0.0.0/0"))
    g.tags = tags.get("security-group", {})
    return {"GroupId": g.id, "Tags": tags_out(g)}


def _permissions(st, g, p):
    legacy = [k for k in ("CidrIp", "FromPort", "ToPort", "IpProtocol", "SourceSecurityGroupName",
                          "SourceSecurityGroupOwnerId") if k in p]
    if legacy and "IpPermissions" in p:
        raise ApiError("InvalidParameterCombination", "The parameter IpPermissions cannot be used with the "
                       "parameter %s" % legacy[0])
    if "SourceSecurityGroupName" in p:
        raise _no_default_vpc(p["SourceSecurityGroupName"])
    perms = p.get("IpPermissions")
    if perms is None:
        if "IpProtocol" not in p:
            raise ApiError("MissingParameter", "The request must contain the parameter ipPermissions")
        perms = [{"IpProtocol": p["IpProtocol"], "FromPort": p.get("FromPort"), "ToPort": p.get("ToPort"),
                  "IpRanges": [{"CidrIp": p["CidrIp"]}] if "CidrIp" in p else []}]
    rules = []
    for perm in perms:
        raw = perm.get("IpProtocol")
        if raw is None:
            raise ApiError("MissingParameter", "The request must contain the parameter IpPermissions.N.IpProtocol")
        proto = PROTOCOLS.get(raw.lower(), raw if raw.isdigit() and 0 <= int(raw) <= 255 else None)
        if proto is None:
            raise invalid("Invalid value '%s' for IP protocol. Unknown protocol." % raw)
        lo, hi = perm.get("FromPort"), perm.get("ToPort")
        if proto in ("tcp", "udp"):
            if lo is None or hi is None:
                raise invalid("Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange")
            if not (0 <= lo <= hi <= 65535):
                raise invalid("Invalid value 'from port %s, to port %s' for portRange" % (lo, hi))
        elif proto == "-1":
            lo = hi = None
        peers = ([("cidr", str(_ip_net(r.get("CidrIp", ""), "cidrIp")), r.get("Description"))
                  for r in perm.get("IpRanges", [])]
                 + [("cidr6", str(_ip_net(r.get("CidrIpv6", ""), "cidrIpv6")), r.get("Description"))
                    for r in perm.get("Ipv6Ranges", [])])
        for pair in perm.get("UserIdGroupPairs", []):
            if "GroupId" not in pair:
                raise _no_default_vpc(pair.get("GroupName", ""))
            other = st.get("sg", pair["GroupId"])
            if other.vpc_id != g.vpc_id:
                raise invalid("You have specified two resources that belong to different networks.")
            peers.append(("group", other.id, pair.get("Description")))
        if perm.get("PrefixListIds"):
            raise ApiError("UnsupportedOperation", "This fake does not support prefix lists")
        if not peers:
            raise ApiError("MissingParameter", "The request must contain a source (IpRanges, Ipv6Ranges or "
                           "UserIdGroupPairs)")
        for kind, peer, desc in peers:
            rules.append(_rule(st, proto, lo, hi, kind, peer, desc))
    return rules


@action("AuthorizeSecurityGroupIngress")
def authorize_security_group_ingress(st, p, ctx):
    g = _sg_by_id_or_name(st, p)
    rules = _permissions(st, g, p)
    tags = tag_specs(p, {"security-group-rule"}).get("security-group-rule", {})
    for r in rules:
        if any(_same_rule(r, old) for old in g.ingress) or sum(_same_rule(r, o) for o in rules) > 1:
            peer = r["peer"]
            ports = "ALL" if r["from"] is None else "from port: %s, to port: %s" % (r["from"], r["to"])
            raise ApiError("InvalidPermission.Duplicate", 'the specified rule "peer: %s, %s, %s, ALLOW" already '
                           "exists" % (peer, r["proto"].upper(), ports))
    g.ingress.extend(rules)
    out = []
    for r in rules:
        d = {"SecurityGroupRuleId": r["id"], "GroupId": g.id, "GroupOwnerId": st.account, "IsEgress": False,
             "IpProtocol": r["proto"], "FromPort": -1 if r["from"] is None else r["from"],
             "ToPort": -1 if r["to"] is None else r["to"], "Description": r["description"],
             "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        if r["peer_kind"] == "cidr":
            d["CidrIpv4"] = r["peer"]
        elif r["peer_kind"] == "cidr6":
            d["CidrIpv6"] = r["peer"]
        else:
            d["ReferencedGroupInfo"] = {"GroupId": r["peer"], "UserId": st.account}
        out.append(d)
    return {"Return": True, "SecurityGroupRules": out}


@action("DescribeSecurityGroups")
def describe_security_groups(st, p, ctx):
    if p.get("GroupNames"):
        raise _no_default_vpc(p["GroupNames"][0])
    page, token = select(st, "sg", p, "GroupIds", SG_FILTERS, "DescribeSecurityGroups")
    return {"SecurityGroups": [sg_out(st, g) for g in page], "NextToken": token}


@action("DeleteSecurityGroup")
def delete_security_group(st, p, ctx):
    g = _sg_by_id_or_name(st, p)
    if g.name == "default":
        raise ApiError("CannotDelete", 'the specified group: "%s" name: "default" cannot be deleted by a user' % g.id)
    users = [i for i in st.live_instances() if g.id in i.sg_ids]
    referrers = [o for o in st.all("sg") if o.id != g.id and
                 any(r["peer_kind"] == "group" and r["peer"] == g.id for r in o.ingress + o.egress)]
    if users or referrers:
        raise ApiError("DependencyViolation", "resource %s has a dependent object" % g.id)
    del st.res["sg"][g.id]


# ---- Key pairs

def _parse_public_key(material):
    try:
        text = material.decode("ascii").strip()
    except UnicodeDecodeError:
        text = ""
    parts = text.split()
    kinds = {"ssh-rsa": "rsa", "ssh-ed25519": "ed25519"}
    if len(parts) >= 2 and parts[0] in kinds:
        try:
            blob = base64.b64decode(parts[1], validate=True)
            n = int.from_bytes(blob[:4], "big")
            if blob[4:4 + n].decode("ascii", "replace") == parts[0]:
                return kinds[parts[0]], blob, text
        except (binascii.Error, ValueError):
            pass
    raise ApiError("InvalidKey.Format", "Key is not in valid OpenSSH public key format")


def key_out(st, k, include_public=False):
    return {"KeyPairId": k.id, "KeyFingerprint": k.fingerprint, "KeyName": k.name, "KeyType": k.key_type,
            "Tags": tags_out(k), "PublicKey": k.public_key if include_public else None,
            "CreateTime": k.create_time}


KEY_FILTERS = {"key-pair-id": lambda k: k.id, "key-name": lambda k: k.name,
               "fingerprint": lambda k: k.fingerprint, "key-type": lambda k: k.key_type}


@action("ImportKeyPair")
def import_key_pair(st, p, ctx):
    name = p["KeyName"]
    if not 1 <= len(name) <= 255:
        raise invalid("Key name must be 1 to 255 characters")
    key_type, blob, text = _parse_public_key(p["PublicKeyMaterial"])
    if any(k.name == name for k in st.all("key")):
        raise ApiError("InvalidKeyPair.Duplicate", "The keypair '%s' already exists." % name)
    tags = tag_specs(p, {"key-pair"})
    if key_type == "rsa":
        digest = hashlib.md5(blob).hexdigest()
        fingerprint = ":".join(digest[i:i + 2] for i in range(0, 32, 2))
    else:
        fingerprint = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    k = st.add(Res("key", st.new_id("key"), name=name, fingerprint=fingerprint, key_type=key_type,
                   public_key=text, create_time=st.now()))
    k.tags = tags.get("key-pair", {})
    return {"KeyFingerprint": k.fingerprint, "KeyName": k.name, "KeyPairId": k.id, "Tags": tags_out(k)}


@action("DescribeKeyPairs")
def describe_key_pairs(st, p, ctx):
    items = st.all("key")
    if p.get("KeyNames"):
        wanted = []
        for name in p["KeyNames"]:
            match = [k for k in items if k.name == name]
            if not match:
                raise ApiError("InvalidKeyPair.NotFound", "The key pair '%s' does not exist" % name)
            wanted += match
        items = wanted
    if p.get("KeyPairIds"):
        items = [k for k in st.get_many("key", p["KeyPairIds"]) if k in items]
    items = filtered(items, p.get("Filters"), KEY_FILTERS)
    return {"KeyPairs": [key_out(st, k, p.get("IncludePublicKey", False)) for k in items]}


@action("DeleteKeyPair")
def delete_key_pair(st, p, ctx):
    if "KeyPairId" in p:
        k = st.get("key", p["KeyPairId"])
    elif "KeyName" in p:
        k = next((k for k in st.all("key") if k.name == p["KeyName"]), None)
        if k is None:
            return {"Return": True}  # AWS: deleting a missing key name succeeds
    else:
        raise ApiError("MissingParameter", "The request must contain the parameter KeyName or KeyPairId")
    del st.res["key"][k.id]
    return {"Return": True, "KeyPairId": k.id}


# ---- Images

def image_out(st, im):
    return {"Architecture": im.architecture, "CreationDate": im.creation_date, "ImageId": im.id,
            "ImageLocation": "%s/%s" % (im.owner_alias or im.owner_id, im.name), "ImageType": "machine",
            "Public": True, "OwnerId": im.owner_id, "PlatformDetails": "Linux/UNIX",
            "UsageOperation": "RunInstances", "State": im.state,
            "BlockDeviceMappings": [{"DeviceName": "/dev/sda1",
                                     "Ebs": {"DeleteOnTermination": True, "SnapshotId": im.snapshot_id,
                                             "VolumeSize": 8, "VolumeType": "gp2", "Encrypted": False}},
                                    {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
                                    {"DeviceName": "/dev/sdc", "VirtualName": "ephemeral1"}],
            "Description": "Canonical, Ubuntu" if im.owner_id == CANONICAL_OWNER else None,
            "EnaSupport": True, "Hypervisor": "xen", "ImageOwnerAlias": im.owner_alias, "Name": im.name,
            "RootDeviceName": "/dev/sda1", "RootDeviceType": "ebs", "SriovNetSupport": "simple",
            "VirtualizationType": "hvm", "Tags": tags_out(im)}


IMAGE_FILTERS = {"image-id": lambda i: i.id, "name": lambda i: i.name, "owner-id": lambda i: i.owner_id,
                 "owner-alias": lambda i: i.owner_alias, "architecture": lambda i: i.architecture,
                 "state": lambda i: i.state, "is-public": lambda i: True, "image-type": lambda i: "machine",
                 "virtualization-type": lambda i: "hvm", "root-device-type": lambda i: "ebs",
                 "root-device-name": lambda i: "/dev/sda1", "hypervisor": lambda i: "xen",
                 "ena-support": lambda i: True, "platform-details": lambda i: "Linux/UNIX",
                 "block-device-mapping.volume-type": lambda i: "gp2"}


@action("DescribeImages")
def describe_images(st, p, ctx):
    items = st.all("image")
    if p.get("ImageIds"):
        items = st.get_many("image", p["ImageIds"])
    if p.get("Owners"):
        owners = set(p["Owners"])
        items = [i for i in items if i.owner_id in owners or (i.owner_alias and i.owner_alias in owners)
                 or ("self" in owners and i.owner_id == st.account)]
    items = filtered(items, p.get("Filters"), IMAGE_FILTERS)
    return {"Images": [image_out(st, i) for i in items]}


# ---- Instances and volumes

def _family(instance_type):
    return instance_type.split(".", 1)[0]


def _dns(st, ip, private):
    dashed = ip.replace(".", "-")
    if private:
        return "ip-%s.%s.compute.internal" % (dashed, st.region)
    return "ec2-%s.%s.compute.amazonaws.com" % (dashed, st.region)


def instance_out(st, i):
    eip = st.eip_of(i)
    public = eip.public_ip if eip else i.public_ip
    groups = [{"GroupName": st.res["sg"][g].name if g in st.res["sg"] else "", "GroupId": g} for g in i.sg_ids]
    d = {"AmiLaunchIndex": i.launch_index, "ImageId": i.image_id, "InstanceId": i.id,
         "InstanceType": i.instance_type, "KeyName": i.key_name, "LaunchTime": i.launch_time,
         "Monitoring": {"State": "enabled" if i.monitoring else "disabled"},
         "Placement": {"AvailabilityZone": i.az, "GroupName": "", "Tenancy": "default"},
         "PrivateDnsName": _dns(st, i.private_ip, True) if i.private_ip else "",
         "PrivateIpAddress": i.private_ip, "ProductCodes": [],
         "PublicDnsName": _dns(st, public, False) if public else "", "PublicIpAddress": public,
         "State": {"Code": INSTANCE_STATE_CODES[i.state], "Name": i.state},
         "StateTransitionReason": i.transition_reason if i.state in ("shutting-down", "terminated") else "",
         "SubnetId": i.subnet_id, "VpcId": i.vpc_id, "Architecture": i.architecture,
         "BlockDeviceMappings": [{"DeviceName": b["device"],
                                  "Ebs": {"AttachTime": b["attach_time"], "DeleteOnTermination": b["delete_on_termination"],
                                          "Status": "attached", "VolumeId": b["volume_id"]}}
                                 for b in i.block_devices],
         "ClientToken": i.client_token, "EbsOptimized": i.ebs_optimized, "EnaSupport": True,
         "Hypervisor": "xen", "NetworkInterfaces": [], "RootDeviceName": "/dev/sda1", "RootDeviceType": "ebs",
         "SecurityGroups": groups, "SourceDestCheck": True, "VirtualizationType": "hvm",
         "Tags": tags_out(i), "PlatformDetails": "Linux/UNIX", "UsageOperation": "RunInstances",
         "CpuOptions": {"CoreCount": 1, "ThreadsPerCore": 2},
         "MetadataOptions": {"State": "applied", "HttpTokens": "optional", "HttpPutResponseHopLimit": 1,
                             "HttpEndpoint": "enabled", "HttpProtocolIpv6": "disabled",
                             "InstanceMetadataTags": getattr(i, "metadata_tags", "disabled")}}
    if i.state in ("shutting-down", "terminated"):
        d["StateReason"] = {"Code": "Client.UserInitiatedShutdown",
                            "Message": "Client.UserInitiatedShutdown: User initiated shutdown"}
    if i.eni_id:
        nic = {"Attachment": {"AttachTime": i.launch_time, "AttachmentId": i.eni_attach_id,
                              "DeleteOnTermination": True, "DeviceIndex": 0, "Status": "attached",
                              "NetworkCardIndex": 0},
               "Description": "", "Groups": groups, "Ipv6Addresses": [], "MacAddress": i.mac,
               "NetworkInterfaceId": i.eni_id, "OwnerId": st.account,
               "PrivateDnsName": _dns(st, i.private_ip, True), "PrivateIpAddress": i.private_ip,
               "SourceDestCheck": True, "Status": "in-use", "SubnetId": i.subnet_id, "VpcId": i.vpc_id,
               "InterfaceType": "interface"}
        assoc = None
        if public:
            assoc = {"IpOwnerId": st.account if eip else "amazon", "PublicDnsName": _dns(st, public, False),
                     "PublicIp": public}
            nic["Association"] = assoc
        nic["PrivateIpAddresses"] = [{"Association": assoc, "Primary": True, "PrivateIpAddress": i.private_ip,
                                      "PrivateDnsName": _dns(st, i.private_ip, True)}]
        d["NetworkInterfaces"] = [nic]
    return d


def reservation_out(st, rid, instances):
    return {"Groups": [], "Instances": [instance_out(st, i) for i in instances], "OwnerId": st.account,
            "ReservationId": rid}


INSTANCE_FILTERS = {
    "instance-id": lambda i: i.id, "instance-state-name": lambda i: i.state,
    "instance-state-code": lambda i: INSTANCE_STATE_CODES[i.state], "vpc-id": lambda i: i.vpc_id,
    "subnet-id": lambda i: i.subnet_id, "instance-type": lambda i: i.instance_type,
    "image-id": lambda i: i.image_id, "key-name": lambda i: i.key_name, "client-token": lambda i: i.client_token,
    "reservation-id": lambda i: i.reservation_id, "availability-zone": lambda i: i.az,
    "private-ip-address": lambda i: i.private_ip, "ip-address": lambda i: i.public_ip,
    "instance.group-id": lambda i: i.sg_ids, "group-id": lambda i: i.sg_ids,
    "architecture": lambda i: i.architecture, "launch-index": lambda i: i.launch_index,
    "network-interface.network-interface-id": lambda i: i.eni_id,
}


def _block_devices(st, p, image):
    """RunInstances BlockDeviceMapping -> volume specs [(device, size, type, iops, throughput, dot)]."""
    root = {"device": "/dev/sda1", "size": 8, "type": "gp2", "iops": None, "throughput": None, "dot": True}
    specs, seen = [root], set()
    for n, m in enumerate(p.get("BlockDeviceMappings", []), 1):
        dev = m.get("DeviceName")
        if not dev:
            raise ApiError("MissingParameter", "The request must contain the parameter BlockDeviceMapping.%d.DeviceName" % n)
        if dev in seen:
            raise ApiError("InvalidBlockDeviceMapping", "The device '%s' is used in more than one block-device mapping" % dev)
        seen.add(dev)
        if not re.fullmatch(r"/dev/(sd[a-z][0-9]*|xvd[a-z]+)", dev):
            raise ApiError("InvalidBlockDeviceMapping", "Invalid device name %s" % dev)
        kinds = [k for k in ("Ebs", "VirtualName", "NoDevice") if k in m]
        if len(kinds) != 1:
            raise ApiError("InvalidBlockDeviceMapping", "Exactly one of Ebs, VirtualName or NoDevice must be "
                           "given for %s" % dev)
        if kinds[0] != "Ebs":
            if dev == root["device"]:
                raise ApiError("InvalidBlockDeviceMapping", "The root device cannot be suppressed or ephemeral")
            continue
        ebs = m["Ebs"]
        if ebs.get("SnapshotId"):
            raise ApiError("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist." % ebs["SnapshotId"])
        vtype = ebs.get("VolumeType", "gp2")
        spec = root if dev == root["device"] else {"device": dev, "size": None, "type": vtype, "iops": None,
                                                  "throughput": None, "dot": True}
        spec["type"] = vtype
        if "VolumeSize" in ebs:
            spec["size"] = ebs["VolumeSize"]
        if spec["size"] is None:
            raise ApiError("MissingParameter", "The request must contain the parameter size or snapshotId "
                           "(BlockDeviceMapping.%d.Ebs.VolumeSize)" % n)
        limits = {"gp2": (1, 16384), "gp3": (1, 16384), "io1": (4, 16384), "io2": (4, 16384),
                  "st1": (125, 16384), "sc1": (125, 16384), "standard": (1, 1024)}[vtype]
        if not limits[0] <= spec["size"] <= limits[1]:
            raise invalid("Volume of %sGiB is outside the range %d-%d GiB for %s volumes"
                          % (spec["size"], limits[0], limits[1], vtype))
        if spec is root and spec["size"] < 8:
            raise invalid("Volume of size %dGB is smaller than snapshot '%s', expect size >= 8GB"
                          % (spec["size"], image.snapshot_id))
        if vtype in ("io1", "io2") and "Iops" not in ebs:
            raise invalid("The parameter iops must be specified for %s volumes." % vtype)
        if "Iops" in ebs and vtype not in ("io1", "io2", "gp3"):
            raise ApiError("InvalidParameterCombination", "The parameter iops is not supported for %s volumes." % vtype)
        if "Throughput" in ebs and vtype != "gp3":
            raise ApiError("InvalidParameterCombination", "The parameter throughput is not supported for %s volumes." % vtype)
        spec["iops"], spec["throughput"] = ebs.get("Iops"), ebs.get("Throughput")
        spec["dot"] = ebs.get("DeleteOnTermination", True)
        if spec is not root:
            specs.append(spec)
    return specs


def _network(st, p):
    """Subnet and security groups from SubnetId/SecurityGroupIds or NetworkInterfaces.1."""
    nics = p.get("NetworkInterfaces", [])
    assoc_public = None
    if nics:
        for k in ("SubnetId", "SecurityGroupIds", "SecurityGroups"):
            if k in p:
                raise ApiError("InvalidParameterCombination", "Network interfaces and an instance-level %s may "
                               "not be specified on the same request" % {"SubnetId": "subnet ID"}.get(k, "security groups"))
        if len(nics) != 1 or nics[0].get("DeviceIndex", 0) != 0:
            raise ApiError("UnsupportedOperation", "This fake supports exactly one network interface, device index 0")
        nic = nics[0]
        if "SubnetId" not in nic:
            raise ApiError("MissingParameter", "The request must contain the parameter NetworkInterface.1.SubnetId")
        subnet_id, sg_ids, assoc_public = nic["SubnetId"], nic.get("Groups", []), nic.get("AssociatePublicIpAddress")
    else:
        if "SubnetId" not in p:
            raise ApiError("VPCIdNotSpecified", "No default VPC for this user")
        if p.get("SecurityGroups"):
            raise ApiError("InvalidParameterCombination", "The parameter groupName cannot be used with the parameter subnet")
        subnet_id, sg_ids = p["SubnetId"], p.get("SecurityGroupIds", [])
    subnet = st.get("subnet", subnet_id)
    groups = st.get_many("sg", sg_ids)
    for g in groups:
        if g.vpc_id != subnet.vpc_id:
            raise invalid("Security group %s and subnet %s belong to different networks." % (g.id, subnet.id))
    if not groups:
        groups = [g for g in st.all("sg") if g.vpc_id == subnet.vpc_id and g.name == "default"]
    public = subnet.map_public_ip if assoc_public is None else assoc_public
    return subnet, [g.id for g in groups], public


def _fingerprint(p):
    body = {k: v for k, v in p.items() if k not in ("ClientToken", "DryRun")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


@action("RunInstances")
def run_instances(st, p, ctx):
    token = p.get("ClientToken")
    if token is not None:
        if len(token) > 64 or not token.isascii():
            raise invalid("The client token must be 64 ASCII characters or less")
        if token in st.client_tokens:
            fingerprint, rid = st.client_tokens[token]
            if fingerprint != _fingerprint(p):
                raise ApiError("IdempotentParameterMismatch", "Arguments on this idempotent request are "
                               "inconsistent with arguments used in previous request(s).")
            alive = [st.res["instance"][i] for i in st.reservations[rid] if i in st.res["instance"]]
            return reservation_out(st, rid, alive)
    if p["MinCount"] < 1 or p["MaxCount"] < p["MinCount"]:
        raise invalid("Invalid value for MinCount/MaxCount: need 1 <= MinCount (%d) <= MaxCount (%d)"
                      % (p["MinCount"], p["MaxCount"]))
    if "LaunchTemplate" in p:
        raise ApiError("UnsupportedOperation", "This fake does not support launch templates")
    if "ImageId" not in p:
        raise ApiError("MissingParameter", "The request must contain the parameter ImageId")
    image = st.get("image", p["ImageId"])
    itype = p.get("InstanceType", "m1.small")
    if _family(itype) not in ACCEPTED_FAMILIES:
        raise invalid("Invalid value '%s' for InstanceType" % itype)
    arch = "arm64" if _family(itype) in ARM_FAMILIES else "x86_64"
    if arch != image.architecture:
        raise invalid("The architecture '%s' of the specified instance type does not match the architecture "
                      "'%s' of the specified AMI. Specify an instance type and an AMI that have matching "
                      "architectures, and try again." % (arch, image.architecture))
    subnet, sg_ids, public = _network(st, p)
    placement_az = p.get("Placement", {}).get("AvailabilityZone")
    if placement_az and placement_az != subnet.az:
        raise invalid("Value (%s) for parameter availabilityZone is invalid. Subnet '%s' is in the "
                      "availability zone %s" % (placement_az, subnet.id, subnet.az))
    key_name = p.get("KeyName")
    if key_name is not None and not any(k.name == key_name for k in st.all("key")):
        raise ApiError("InvalidKeyPair.NotFound", "The key pair '%s' does not exist" % key_name)
    user_data = None
    if "UserData" in p:
        try:
            user_data = base64.b64decode(p["UserData"], validate=True)
        except (binascii.Error, ValueError):
            raise invalid("Invalid BASE64 encoding of user data.") from None
        if len(user_data) > 16384:
            raise invalid("User data is limited to 16384 bytes")
    volumes = _block_devices(st, p, image)
    tags = tag_specs(p, {"instance", "volume", "network-interface", "spot-instances-request", "elastic-gpu"})
    # fewer than MinCount launchable: none launched; else as many as can be, up to MaxCount
    resources = ctx.get("resources") or Resources(None, 0)
    count = min(p["MaxCount"], resources.available())
    if count < p["MinCount"]:
        raise resources.refuse()
    capacity = ctx["capacity"]() if ctx.get("capacity") else None
    if capacity is not None:
        if capacity < p["MinCount"]:
            raise ApiError("InsufficientInstanceCapacity", "We currently do not have sufficient %s capacity in "
                           "the Availability Zone you requested (%s). Our system will be working on "
                           "provisioning additional capacity. You can currently get %s capacity by not "
                           "specifying an Availability Zone in your request or choosing %s."
                           % (itype, subnet.az, itype, ", ".join(a for a in _azs(st) if a != subnet.az)))
        count = min(count, capacity)
    live = len(st.live_instances())
    count = min(count, st.config["instance_limit"] - live)
    if count < p["MinCount"]:
        raise ApiError("InstanceLimitExceeded", "You have requested more instances (%d) than your current "
                       "instance limit of %d allows for the specified instance type."
                       % (p["MinCount"], st.config["instance_limit"]))
    net = ipaddress.ip_network(subnet.cidr)
    used = {i.private_ip for i in st.live_instances() if i.subnet_id == subnet.id}
    nics = p.get("NetworkInterfaces", [])
    wanted = nics[0].get("PrivateIpAddress") if nics else p.get("PrivateIpAddress")
    if wanted is not None:
        if count != 1:
            raise invalid("A private IP address can be given for one instance only")
        try:
            addr = ipaddress.ip_address(wanted)
        except ValueError:
            raise invalid("Invalid IPv4 address: %s" % wanted) from None
        if addr not in net or int(addr) - int(net.network_address) < 4 or addr == net.broadcast_address:
            raise invalid("Address %s does not fall within the subnet's address range" % wanted)
        if wanted in used:
            raise ApiError("InvalidIPAddress.InUse", "Address %s is in use." % wanted)
    free = [] if wanted is not None else [
        str(net.network_address + h) for h in range(4, subnet.size - 1)
        if str(net.network_address + h) not in used][:count]
    if wanted is None and len(free) < count:
        raise ApiError("InsufficientFreeAddressesInSubnet", "There are not enough free addresses in subnet "
                       "'%s' to satisfy the requested number of instances." % subnet.id)
    metadata_tags = p.get("MetadataOptions", {}).get("InstanceMetadataTags", "disabled")
    if metadata_tags == "enabled":
        check_imds_tag_keys(tags.get("instance", {}))
    resources.take(count)  # nothing below can fail
    now = st.now()
    rid = st.new_id("r")
    instances = []
    for n in range(count):
        private_ip = wanted if wanted is not None else free[n]
        inst = st.add(Res("instance", st.new_id("i"), reservation_id=rid, image_id=image.id,
                          instance_type=itype, key_name=key_name, launch_time=now, launch_index=n,
                          state="pending", ready_at=now + st.config["pending_ms"] / 1000.0, gone_at=None,
                          terminated_at=None, subnet_id=subnet.id, vpc_id=subnet.vpc_id, az=subnet.az,
                          private_ip=private_ip, public_ip=st.public_ip() if public else None, sg_ids=list(sg_ids),
                          user_data_b64=p.get("UserData"),
                          user_data=user_data.decode("utf-8", "replace") if user_data is not None else None,
                          client_token=token or "", ebs_optimized=p.get("EbsOptimized", False),
                          monitoring=p.get("Monitoring", {}).get("Enabled", False), architecture=arch,
                          eni_id=st.new_id("eni"), eni_attach_id=st.new_id("eni-attach"),
                          mac="0a:%02x:%02x:%02x:%02x:%02x" % tuple(st.rng.getrandbits(8) for _ in range(5)),
                          transition_reason="", disable_api_termination=p.get("DisableApiTermination", False),
                          block_devices=[], metadata_tags=metadata_tags))
        inst.tags = dict(tags.get("instance", {}))
        for spec in volumes:
            size, vtype = spec["size"], spec["type"]
            iops = spec["iops"] or (max(100, min(16000, 3 * size)) if vtype == "gp2" else 3000 if vtype == "gp3" else None)
            vol = st.add(Res("volume", st.new_id("vol"), size=size, volume_type=vtype, iops=iops,
                             throughput=spec["throughput"] or (125 if vtype == "gp3" else None), az=subnet.az,
                             state="in-use", create_time=now, encrypted=False,
                             snapshot_id=image.snapshot_id if spec["device"] == "/dev/sda1" else "",
                             attachment={"instance_id": inst.id, "device": spec["device"], "attach_time": now,
                                         "delete_on_termination": spec["dot"]}))
            vol.tags = dict(tags.get("volume", {}))
            inst.block_devices.append({"device": spec["device"], "volume_id": vol.id, "attach_time": now,
                                       "delete_on_termination": spec["dot"]})
        instances.append(inst)
    st.reservations[rid] = [i.id for i in instances]
    if token is not None:
        st.client_tokens[token] = (_fingerprint(p), rid)
    return reservation_out(st, rid, instances)


def _visible_instances(st, p):
    if p.get("InstanceIds"):
        if "MaxResults" in p:
            raise ApiError("InvalidParameterCombination", "The parameter instancesSet cannot be used with the "
                           "parameter maxResults")
        return st.get_many("instance", p["InstanceIds"])
    return st.all("instance")


@action("DescribeInstances")
def describe_instances(st, p, ctx):
    if "MaxResults" in p and not 5 <= p["MaxResults"] <= 1000:
        raise invalid("Value ( %d ) for parameter maxResults is invalid. Expecting a value between 5 and 1000."
                      % p["MaxResults"])
    items = filtered(_visible_instances(st, p), p.get("Filters"), INSTANCE_FILTERS)
    page, token = paginate(items, p, "DescribeInstances")
    reservations = {}
    for i in page:
        reservations.setdefault(i.reservation_id, []).append(i)
    return {"Reservations": [reservation_out(st, rid, insts) for rid, insts in reservations.items()],
            "NextToken": token}


# TerminateInstances' InstanceId.N (botocore's model: "Constraints: Up to 1000
# instance IDs").
MAX_TERMINATE_IDS = 1000


@action("TerminateInstances")
def terminate_instances(st, p, ctx):
    if len(p["InstanceIds"]) > MAX_TERMINATE_IDS:
        raise invalid("The maximum number of instance IDs in one TerminateInstances call is %d"
                      % MAX_TERMINATE_IDS)
    instances = st.get_many("instance", p["InstanceIds"])
    for i in instances:
        if i.disable_api_termination:
            raise ApiError("OperationNotPermitted", "The instance '%s' may not be terminated. Modify its "
                           "'disableApiTermination' instance attribute and try again." % i.id)
    stopping = {i.id for i in instances if i.state in ("pending", "running", "stopping", "stopped")}
    resources = ctx.get("resources") or Resources(None, 0)
    if resources.available() < len(stopping):
        raise resources.refuse()
    resources.take(len(stopping))
    now = st.now()
    out = []
    for i in instances:
        before = i.state
        if i.state in ("pending", "running", "stopping", "stopped"):
            i.state = "shutting-down"
            i.gone_at = now + st.config["shutdown_ms"] / 1000.0
            i.transition_reason = "User initiated (%s)" % time.strftime("%Y-%m-%d %H:%M:%S GMT", time.gmtime(now))
        out.append({"CurrentState": {"Code": INSTANCE_STATE_CODES[i.state], "Name": i.state}, "InstanceId": i.id,
                    "PreviousState": {"Code": INSTANCE_STATE_CODES[before], "Name": before}})
    return {"TerminatingInstances": out}


def volume_out(st, v):
    a = v.attachment
    return {"Attachments": [{"AttachTime": a["attach_time"], "Device": a["device"], "InstanceId": a["instance_id"],
                             "State": "attached", "VolumeId": v.id, "DeleteOnTermination": a["delete_on_termination"]}]
            if a else [],
            "AvailabilityZone": v.az, "CreateTime": v.create_time, "Encrypted": v.encrypted, "Size": v.size,
            "SnapshotId": v.snapshot_id, "State": v.state, "VolumeId": v.id, "Iops": v.iops, "Tags": tags_out(v),
            "VolumeType": v.volume_type, "MultiAttachEnabled": False, "Throughput": v.throughput}


VOLUME_FILTERS = {"volume-id": lambda v: v.id, "status": lambda v: v.state, "size": lambda v: v.size,
                  "volume-type": lambda v: v.volume_type, "availability-zone": lambda v: v.az,
                  "encrypted": lambda v: v.encrypted, "snapshot-id": lambda v: v.snapshot_id,
                  "attachment.instance-id": lambda v: v.attachment and v.attachment["instance_id"],
                  "attachment.device": lambda v: v.attachment and v.attachment["device"],
                  "attachment.status": lambda v: "attached" if v.attachment else None,
                  "attachment.delete-on-termination": lambda v: v.attachment and v.attachment["delete_on_termination"]}


@action("DescribeVolumes")
def describe_volumes(st, p, ctx):
    if p.get("VolumeIds") and "MaxResults" in p:
        raise ApiError("InvalidParameterCombination", "The parameter volumeSet cannot be used with the parameter maxResults")
    if "MaxResults" in p and not 5 <= p["MaxResults"]:
        raise invalid("Value ( %d ) for parameter maxResults is invalid. Expecting a value greater than 5."
                      % p["MaxResults"])
    if "MaxResults" in p:
        p = dict(p, MaxResults=min(p["MaxResults"], 500))
    page, token = select(st, "volume", p, "VolumeIds", VOLUME_FILTERS, "DescribeVolumes")
    return {"Volumes": [volume_out(st, v) for v in page], "NextToken": token}


# ---- Tags

@action("CreateTags")
def create_tags(st, p, ctx):
    tags = check_tags(p["Tags"])
    targets = [st.by_id_any(rid) for rid in p["Resources"]]
    for r in targets:
        apply_tags(r, tags)


@action("DeleteTags")
def delete_tags(st, p, ctx):
    targets = [st.by_id_any(rid) for rid in p["Resources"]]
    for r in targets:
        if "Tags" not in p:
            r.tags = {}
            continue
        for t in p["Tags"]:
            key = t.get("Key")
            if key in r.tags and ("Value" not in t or r.tags[key] == t["Value"]):
                del r.tags[key]


TAG_FILTERS = {"key": lambda t: t[1], "value": lambda t: t[2], "resource-id": lambda t: t[0].id,
               "resource-type": lambda t: KINDS[t[0].kind].resource_type}


@action("DescribeTags")
def describe_tags(st, p, ctx):
    if "MaxResults" in p and not 5 <= p["MaxResults"] <= 1000:
        raise invalid("Value ( %d ) for parameter maxResults is invalid. Expecting a value between 5 and 1000."
                      % p["MaxResults"])
    rows = [(r, k, v) for kind in TAGGABLE for r in st.all(kind) for k, v in r.tags.items()]

    class Row:  # so that filtered() sees .tags like on resources (tag filters make no sense here)
        def __init__(self, row):
            self.row, self.tags = row, {}

    table = {name: (lambda fn: lambda row: fn(row.row))(fn) for name, fn in TAG_FILTERS.items()}
    matched = filtered([Row(r) for r in rows], p.get("Filters"), table)
    page, token = paginate(matched, p, "DescribeTags")
    return {"Tags": [{"Key": k, "ResourceId": r.id, "ResourceType": KINDS[r.kind].resource_type, "Value": v}
                     for r, k, v in (row.row for row in page)], "NextToken": token}


# ---- Elastic IPs

def address_out(st, a):
    inst = st.res["instance"].get(a.instance_id) if a.instance_id else None
    return {"InstanceId": a.instance_id, "PublicIp": a.public_ip, "AllocationId": a.id,
            "AssociationId": a.association_id, "Domain": "vpc", "NetworkInterfaceId": inst.eni_id if inst else None,
            "NetworkInterfaceOwnerId": st.account if inst else None, "PrivateIpAddress": a.private_ip,
            "Tags": tags_out(a), "PublicIpv4Pool": "amazon", "NetworkBorderGroup": st.region}


ADDRESS_FILTERS = {"allocation-id": lambda a: a.id, "association-id": lambda a: a.association_id,
                   "instance-id": lambda a: a.instance_id, "public-ip": lambda a: a.public_ip,
                   "domain": lambda a: "vpc", "private-ip-address": lambda a: a.private_ip,
                   "network-interface-id": lambda a: a.eni_id, "network-border-group": lambda a: a._region}


@action("AllocateAddress")
def allocate_address(st, p, ctx):
    if p.get("Domain", "vpc") != "vpc":
        raise invalid("EC2-Classic addresses are not available; use Domain=vpc")
    for k in ("Address", "PublicIpv4Pool", "CustomerOwnedIpv4Pool"):
        if k in p:
            raise ApiError("UnsupportedOperation", "This fake does not support %s" % k)
    if p.get("NetworkBorderGroup", st.region) != st.region:
        raise invalid("Invalid value '%s' for NetworkBorderGroup" % p["NetworkBorderGroup"])
    tags = tag_specs(p, {"elastic-ip"})
    if len(st.all("eip")) >= st.config["eip_limit"]:
        raise ApiError("AddressLimitExceeded", "The maximum number of addresses has been reached.")
    a = st.add(Res("eip", st.new_id("eipalloc"), public_ip=st.public_ip(), instance_id=None, association_id=None,
                   private_ip=None, eni_id=None, _region=st.region))
    a.tags = tags.get("elastic-ip", {})
    return {"PublicIp": a.public_ip, "AllocationId": a.id, "PublicIpv4Pool": "amazon",
            "NetworkBorderGroup": st.region, "Domain": "vpc"}


def _address(st, p):
    if "AllocationId" in p:
        return st.get("eip", p["AllocationId"])
    if "PublicIp" in p:
        for a in st.all("eip"):
            if a.public_ip == p["PublicIp"]:
                return a
        raise ApiError("InvalidAddress.NotFound", "Address '%s' not found." % p["PublicIp"])
    raise ApiError("MissingParameter", "The request must contain the parameter AllocationId")


@action("AssociateAddress")
def associate_address(st, p, ctx):
    a = _address(st, p)
    if "NetworkInterfaceId" in p:
        inst = next((i for i in st.live_instances() if i.eni_id == p["NetworkInterfaceId"]), None)
        if inst is None:
            raise ApiError("InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '%s' does not exist"
                           % p["NetworkInterfaceId"])
    elif "InstanceId" in p:
        inst = st.get("instance", p["InstanceId"])
    else:
        raise ApiError("MissingParameter", "Either an instance ID or a network interface ID must be specified")
    if inst.state != "running":
        raise ApiError("IncorrectInstanceState", "The %s instance '%s' is not in a valid state for this operation."
                       % (inst.state, inst.id))
    if "PrivateIpAddress" in p and p["PrivateIpAddress"] != inst.private_ip:
        raise invalid("The private IP address %s is not assigned to instance %s" % (p["PrivateIpAddress"], inst.id))
    if st.igw_of(inst.vpc_id) is None:
        raise ApiError("Gateway.NotAttached", "Network %s is not attached to any internet gateway" % inst.vpc_id)
    if a.instance_id == inst.id:
        return {"AssociationId": a.association_id}
    if a.instance_id is not None and not p.get("AllowReassociation", False):
        raise ApiError("Resource.AlreadyAssociated", "resource %s is already associated with associate-id %s"
                       % (a.id, a.association_id))
    if a.instance_id is not None:
        st.disassociate(a)
    previous = st.eip_of(inst)
    if previous is not None:
        st.disassociate(previous)
    a.instance_id, a.private_ip, a.eni_id = inst.id, inst.private_ip, inst.eni_id
    a.association_id = st.new_id("eipassoc")
    st.eip_assocs[a.association_id] = a.id
    inst.public_ip = None  # an EIP replaces the auto-assigned public address
    return {"AssociationId": a.association_id}


@action("DisassociateAddress")
def disassociate_address(st, p, ctx):
    if "AssociationId" in p:
        a = st.res["eip"].get(st.eip_assocs.get(p["AssociationId"]))
        if a is None:
            raise ApiError("InvalidAssociationID.NotFound", "The association ID '%s' does not exist" % p["AssociationId"])
    elif "PublicIp" in p:
        a = _address(st, p)
        if a.association_id is None:
            return None
    else:
        raise ApiError("MissingParameter", "The request must contain the parameter AssociationId")
    st.disassociate(a)


@action("ReleaseAddress")
def release_address(st, p, ctx):
    a = _address(st, p)
    if a.association_id is not None:
        raise ApiError("InvalidIPAddress.InUse", "Address %s is in use." % a.public_ip)
    del st.res["eip"][a.id]


@action("DescribeAddresses")
def describe_addresses(st, p, ctx):
    items = st.get_many("eip", p["AllocationIds"]) if p.get("AllocationIds") else st.all("eip")
    if p.get("PublicIps"):
        by_ip = {a.public_ip: a for a in st.all("eip")}
        missing = [ip for ip in p["PublicIps"] if ip not in by_ip]
        if missing:
            raise ApiError("InvalidAddress.NotFound", "Address '%s' not found." % missing[0])
        items = [a for a in items if a.public_ip in p["PublicIps"]]
    items = filtered(items, p.get("Filters"), ADDRESS_FILTERS)
    return {"Addresses": [address_out(st, a) for a in items]}


# --------------------------------------------------------------------------
# Throttling: EC2's token buckets
# --------------------------------------------------------------------------
#
# As AWS documents it ("Request throttling for the Amazon EC2 API",
# https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html):
# EC2 throttles each account per region with token buckets. A bucket holds
# at most its maximum capacity and refills at its rate each second; a call
# that finds its bucket empty answers RequestLimitExceeded.
#
# * Request rate limiting: "Each request that you make removes one token
#   from the API's bucket". RunInstances: capacity 5, refill 2/s;
#   TerminateInstances: 100, 5/s (the "Uncategorized actions" table).
# * Resource rate limiting, for RunInstances and TerminateInstances "in
#   addition to request rate limiting": "a separate resource token bucket
#   that depletes based on the number of resources that are impacted by the
#   request". RunInstances: 1000, 2/s ("you can immediately launch 1000
#   instances, using any number of API requests, such as one request for 1000
#   instances or four requests for 250 instances. After the resource token
#   bucket is empty, you can launch up to two instances every second");
#   TerminateInstances: 1000, 20/s.
#
# The guide does not say what a RunInstances call asking for more instances
# than the resource bucket holds gets. Its MinCount/MaxCount are the API's
# answer for any shortfall (RunInstances, botocore's model: "If you specify
# more instances than Amazon EC2 can launch in the target Availability Zone,
# Amazon EC2 launches the largest possible number of instances above
# MinCount"; "If you specify a minimum that is more instances than Amazon
# EC2 can launch [...], Amazon EC2 launches no instances"), and the bucket
# depletes by the instances the call launches. So here: a call is refused
# (RequestLimitExceeded) when fewer than MinCount resource tokens remain;
# otherwise it launches at most as many instances as there are whole
# tokens, and takes one token per instance launched. A TerminateInstances
# call needs a token for every instance it moves to shutting-down.
#
# Every call takes its request token, whether it then succeeds or not (a
# refused call takes none: its bucket was empty); only a call that launches
# or terminates takes resource tokens. A repeated ClientToken returns the
# earlier reservation and launches nothing, so it takes a request token
# only. Other actions' buckets are not modelled. Buckets run on the fake's
# clock, so /_fake/advance refills them.

class Bucket:
    """A token bucket on the fake's clock: `burst` tokens at most, `rate`
    more per second."""

    def __init__(self, burst, rate, now):
        self.burst, self.rate, self.tokens, self.at = float(burst), float(rate), float(burst), now

    def level(self, now):
        if now > self.at:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
        return self.tokens

    def take(self, n, now):
        self.level(now)
        self.tokens -= n

    def wait(self, n, now):
        """Seconds until n tokens are there (inf if never)."""
        short = n - self.level(now)
        if short <= 0:
            return 0.0
        return short / self.rate if self.rate > 0 and n <= self.burst else float("inf")


# (action, kind) -> the config keys of its capacity and refill rate
BUCKETS = {("RunInstances", "request"): ("run_request_burst", "run_request_rate"),
           ("RunInstances", "resource"): ("run_resource_burst", "run_resource_rate"),
           ("TerminateInstances", "request"): ("terminate_request_burst", "terminate_request_rate"),
           ("TerminateInstances", "resource"): ("terminate_resource_burst", "terminate_resource_rate")}


class Limits:
    """The buckets of every account and region seen, made on first use."""

    def __init__(self):
        self.buckets = {}      # (account, region, action, kind) -> Bucket
        self.refused = {}      # "RunInstances request" -> calls refused by that bucket

    def bucket(self, cfg, account, region, action, kind, now):
        key = (account, region, action, kind)
        b = self.buckets.get(key)
        if b is None:
            burst, rate = BUCKETS[(action, kind)]
            b = self.buckets[key] = Bucket(cfg[burst], cfg[rate], now)
        return b

    def refuse(self, action, kind):
        name = "%s %s" % (action, kind)
        self.refused[name] = self.refused.get(name, 0) + 1
        return ApiError("RequestLimitExceeded", "Request limit exceeded.", 503)

    def snapshot(self, now):
        return {"%s/%s %s %s" % k: {"tokens": round(b.level(now), 3), "burst": b.burst, "rate": b.rate}
                for k, b in sorted(self.buckets.items())}


class Resources:
    """What a handler hands out of the resource bucket of its call (ctx
    "resources"): available() whole tokens, take(n) once it can no longer
    fail. Without limits: unlimited."""

    def __init__(self, bucket, now, limits=None, action=None):
        self.bucket, self.now, self.limits, self.action = bucket, now, limits, action

    def available(self):
        return float("inf") if self.bucket is None else int(self.bucket.level(self.now) + 1e-9)

    def refuse(self):
        return self.limits.refuse(self.action, "resource")

    def take(self, n):
        if self.bucket is not None and n:
            self.bucket.take(n, self.now)


# --------------------------------------------------------------------------
# The service: auth, validation, faults, dispatch, statistics
# --------------------------------------------------------------------------

# Handlers that check everything before they change anything, so that no
# copy of the state is needed to undo a failure (a copy costs 0.2 s at 1,000
# instances, with every other call waiting for the lock).
CHECKS_FIRST = {"RunInstances", "TerminateInstances"}

CONFIG_TYPES = {"latency_ms": (int, float), "throttle_rate": (int, float), "error_rate": (int, float),
                "pending_ms": (int, float), "shutdown_ms": (int, float), "terminated_ttl_ms": (int, float),
                "vpc_limit": int, "eip_limit": int, "instance_limit": int, "ec2_limits": bool}
BUCKET_CONFIG = [k for pair in BUCKETS.values() for k in pair]
CONFIG_TYPES.update({k: int if k.endswith("_burst") else (int, float) for k in BUCKET_CONFIG})


class FakeEc2:
    """The EC2 API minus HTTP: handle_ec2() and handle_admin() map a request
    to (status, content type, body)."""

    def __init__(self, credentials=None, region=DEFAULT_REGION, account=DEFAULT_ACCOUNT, seed=None,
                 log=None, **config):
        self.model = service_model()
        self.decoder, self.encoder = QueryDecoder(), XmlEncoder()
        self.log = log or (lambda msg: None)
        creds = credentials or [Credential(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)]
        self.verifier = SigV4Verifier(creds, None if region == "any" else region, self.log)
        self.region = DEFAULT_REGION if region == "any" else region
        self.account, self.seed = account, seed
        self.lock = threading.RLock()
        self.state = Ec2State(self.region, account, seed)
        self.fault_rng = random.Random(None if seed is None else seed + 1)
        self.scripted = []
        self.capacities = []   # capacity of the next RunInstances calls that launch, in order
        self.limits = Limits()
        self.reset_calls()
        self.set_config(**config)

    # -- configuration and side channel
    def set_config(self, **changes):
        with self.lock:
            for k, v in changes.items():
                if k == "seed":
                    self.fault_rng = random.Random(v)
                    continue
                kind = CONFIG_TYPES.get(k)
                if kind is None or not isinstance(v, kind) or (isinstance(v, bool) and kind is not bool) or v < 0:
                    raise ValueError("bad config %s=%r (known: %s, seed)" % (k, v, ", ".join(CONFIG_TYPES)))
                if k in ("throttle_rate", "error_rate") and v > 1:
                    raise ValueError("%s must be a probability" % k)
                if k == "ec2_limits" or k in BUCKET_CONFIG:
                    self.limits = Limits()   # turned on, or new figures: every bucket starts full
                self.state.config[k] = v
            return dict(self.state.config)

    @property
    def config(self):
        return dict(self.state.config)

    def inject(self, action="*", code="InternalError", status=None, message=None, count=1, after=False):
        """Script the next `count` calls of `action` ("*": any) to fail with
        `code`; with after=True the action is carried out first."""
        status = status or {"RequestLimitExceeded": 503, "InternalError": 500, "ServiceUnavailable": 503,
                            "Unavailable": 503}.get(code, 400)
        with self.lock:
            self.scripted.append({"action": action, "code": code, "status": int(status), "count": int(count),
                                  "message": message or _FAULT_MESSAGES.get(code, "Injected fault"),
                                  "after": bool(after)})

    def set_capacity(self, capacity, count=1):
        """The next `count` RunInstances calls that would launch can launch
        at most `capacity` instances each: fewer than MinCount answers
        InsufficientInstanceCapacity, else the call launches that many."""
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0 \
                or isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError("capacity must be an integer >= 0 and count >= 1")
        with self.lock:
            self.capacities += [capacity] * count
            return list(self.capacities)

    def _next_capacity(self):
        with self.lock:
            return self.capacities.pop(0) if self.capacities else None

    def get_buckets(self):
        with self.lock:
            return {"enabled": self.state.config["ec2_limits"], "buckets": self.limits.snapshot(self.state.now()),
                    "refused": dict(self.limits.refused)}

    def advance(self, seconds):
        """Moves the fake's clock forward (instance transitions, TTLs)."""
        with self.lock:
            self.state.clock_offset += float(seconds)

    def reset(self):
        with self.lock:
            config = self.state.config
            self.state = Ec2State(self.region, self.account, self.seed, config)
            self.scripted = []
            self.capacities = []
            self.limits = Limits()
            self.reset_calls()

    def reset_calls(self):
        self.calls = {"total": 0, "by_action": {}, "by_access_key": {}, "by_action_ok": {}, "by_error_code": {},
                      "by_access_key_action": {}, "log": []}

    def get_state(self):
        with self.lock:
            self.state.tick()
            return self.state.snapshot()

    def get_calls(self):
        with self.lock:
            return json.loads(json.dumps(self.calls))

    # -- the EC2 API
    def handle_ec2(self, method, raw_path, headers, body):
        request_id = str(uuid.uuid4())
        latency = self.state.config["latency_ms"]
        if latency:
            time.sleep(latency / 1000.0)
        action, key, token, status, code = "-", SigV4Verifier.access_key_of(headers) or "-", None, 200, None
        try:
            pairs = self._pairs(method, raw_path, headers, body)
            action = next((v for k, v in pairs if k == "Action"), "-")
            token = next((v for k, v in pairs if k == "ClientToken"), None)
            region = self.verifier.verify(method, raw_path, headers, body)
            self._count(action, key)
            op = self._operation(pairs)
            after = self._inject_before(action)
            limited = self.state.config["ec2_limits"] and (action, "request") in BUCKETS
            if limited:
                self._take_request_token(action, region)
            params = self.decoder.decode(op, [(k, v) for k, v in pairs if k not in ("Action", "Version")])
            handler = HANDLERS.get(action)
            if handler is None:
                raise ApiError("UnsupportedOperation", "The fake EC2 does not implement %s" % action)
            if params.get("DryRun"):
                raise ApiError("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412)
            with self.lock:
                self.state.tick()
                # A failed call leaves no trace, even if its handler got half way.
                backup = None if action.startswith("Describe") or action in CHECKS_FIRST \
                    else copy.deepcopy(self.state)
                ctx = {"request_id": request_id, "access_key": key}
                if action == "RunInstances":
                    ctx["capacity"] = self._next_capacity
                if limited and (action, "resource") in BUCKETS:
                    now = self.state.now()
                    ctx["resources"] = Resources(self.limits.bucket(self.state.config, self.account, region,
                                                                    action, "resource", now),
                                                 now, self.limits, action)
                try:
                    result = handler(self.state, params, ctx)
                except ApiError:
                    if backup is not None:
                        self.state = backup
                    raise
            if after is not None:
                raise after
            payload = self.encoder.encode(op, result, request_id)
        except ApiError as e:
            status, code = e.status, e.code
            payload = error_xml(e, request_id)
        except Exception:  # a bug in the fake: say so loudly
            self.log("fake_ec2 internal error:\n" + traceback.format_exc())
            status, code = 500, "InternalError"
            payload = error_xml(ApiError("InternalError", "fake_ec2 bug: " + traceback.format_exc(limit=1)), request_id)
        self._record(action, key, status, code, token)
        self.log("%s %s %d %s" % (key, action, status, code or ""))
        return status, "text/xml;charset=UTF-8", payload, request_id

    @staticmethod
    def _pairs(method, raw_path, headers, body):
        query = urllib.parse.urlsplit(raw_path).query
        try:
            pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
            ctype = headers.get("Content-Type", "")
            if method == "POST" and ctype.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
                text = body.decode("utf-8")
                pairs += urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError("MalformedQueryString", "The query string is malformed: %s" % e) from None
        return pairs

    def _operation(self, pairs):
        action = [v for k, v in pairs if k == "Action"]
        version = [v for k, v in pairs if k == "Version"]
        if not action:
            raise ApiError("MissingAction", "The request must contain the parameter Action")
        if len(action) > 1 or action[0] not in self.model.operation_names:
            raise ApiError("InvalidAction", "The action %s is not valid for this web service." % action[-1])
        if not version:
            raise ApiError("MissingParameter", "The request must contain the parameter Version")
        if version != [API_VERSION]:
            raise ApiError("NoSuchVersion", "The requested version (%s) of service AmazonEC2 does not exist"
                           % version[-1])
        return self.model.operation_model(action[0])

    def _inject_before(self, action):
        """Raises a fault due now; returns one due after the action, if any."""
        with self.lock:
            for f in self.scripted:
                if f["action"] in ("*", action) and f["count"] > 0:
                    f["count"] -= 1
                    self.scripted = [g for g in self.scripted if g["count"] > 0]
                    err = ApiError(f["code"], f["message"], f["status"])
                    if f["after"]:
                        return err
                    raise err
            throttle, error = self.fault_rng.random(), self.fault_rng.random()
            cfg = self.state.config
        if throttle < cfg["throttle_rate"]:
            raise ApiError("RequestLimitExceeded", _FAULT_MESSAGES["RequestLimitExceeded"], 503)
        if error < cfg["error_rate"]:
            raise ApiError("InternalError", _FAULT_MESSAGES["InternalError"], 500)
        return None

    def _take_request_token(self, action, region):
        """One token of the action's request bucket, or RequestLimitExceeded."""
        with self.lock:
            now = self.state.now()
            bucket = self.limits.bucket(self.state.config, self.account, region, action, "request", now)
            if bucket.level(now) < 1:
                raise self.limits.refuse(action, "request")
            bucket.take(1, now)

    def _count(self, action, key):
        with self.lock:
            c = self.calls
            c["total"] += 1
            c["by_action"][action] = c["by_action"].get(action, 0) + 1
            c["by_access_key"][key] = c["by_access_key"].get(key, 0) + 1
            per = c["by_access_key_action"].setdefault(key, {})
            per[action] = per.get(action, 0) + 1

    def _record(self, action, key, status, code, token):
        with self.lock:
            c = self.calls
            if status == 200:
                c["by_action_ok"][action] = c["by_action_ok"].get(action, 0) + 1
            else:
                c["by_error_code"][code] = c["by_error_code"].get(code, 0) + 1
            entry = {"action": action, "access_key": key, "status": status, "code": code, "time": time.time()}
            if token is not None:
                entry["client_token"] = token
            c["log"].append(entry)
            del c["log"][:-5000]

    # -- the side channel
    def handle_admin(self, method, path, body):
        try:
            data = json.loads(body.decode() or "{}") if method == "POST" else {}
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            route = (method, path.rstrip("/"))
            if route == ("GET", "/_fake/state"):
                out = self.get_state()
            elif route == ("GET", "/_fake/calls"):
                out = self.get_calls()
            elif route == ("GET", "/_fake/config"):
                out = self.config
            elif route == ("POST", "/_fake/config"):
                out = self.set_config(**data)
            elif route == ("POST", "/_fake/faults"):
                self.inject(**data)
                out = {"pending": self.scripted}
            elif route == ("GET", "/_fake/faults"):
                out = {"pending": self.scripted}
            elif route == ("GET", "/_fake/capacity"):
                out = {"pending": list(self.capacities)}
            elif route == ("POST", "/_fake/capacity"):
                out = {"pending": self.set_capacity(**data)}
            elif route == ("GET", "/_fake/buckets"):
                out = self.get_buckets()
            elif route == ("POST", "/_fake/advance"):
                self.advance(data.get("seconds", 0))
                out = {"now": self.state.now()}
            elif route == ("POST", "/_fake/reset"):
                self.reset()
                out = {"ok": True}
            elif route == ("GET", "/_fake/health"):
                out = {"ok": True}
            else:
                return 404, "application/json", json.dumps({"error": "no such endpoint %s %s" % route}).encode()
            return 200, "application/json", json.dumps(out, default=str, indent=1).encode()
        except (ValueError, TypeError) as e:
            return 400, "application/json", json.dumps({"error": str(e)}).encode()


_FAULT_MESSAGES = {"RequestLimitExceeded": "Request limit exceeded.",
                   "InternalError": "An internal error has occurred",
                   "Unavailable": "The server is overloaded and can't handle the request."}


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls
    timeout = 60  # seconds a connection may stall mid-request
    server_version = "AmazonEC2"
    sys_version = ""

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_DELETE(self):
        self._serve("DELETE")

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self, method):
        fake = self.server.fake
        try:
            body = self._body()
        except (ValueError, OSError):  # bad chunk framing, or a peer that stalls past `timeout`
            self.close_connection = True
            try:
                self.send_error(400, "Malformed request body framing")
            except OSError:
                pass
            return
        path = urllib.parse.urlsplit(self.path).path
        extra = {}
        if path.startswith("/_fake/"):
            status, ctype, payload = fake.handle_admin(method, path, body)
        else:
            status, ctype, payload, request_id = fake.handle_ec2(method, self.path, self.headers, body)
            extra["x-amzn-RequestId"] = request_id
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, fmt, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):  # clients hanging up is normal
            super().handle_error(request, client_address)


class FakeEc2Server:
    """FakeEc2 behind a ThreadingHTTPServer on 127.0.0.1, served from a thread.

        with FakeEc2Server(pending_ms=0, seed=1) as srv:
            client = boto3/botocore client with endpoint_url=srv.endpoint_url
            srv.fake.inject("RunInstances", "InternalError", after=True)
    """

    def __init__(self, port=0, credentials=None, region=DEFAULT_REGION, seed=None, log=None, **config):
        self._listen(FakeEc2(credentials=credentials, region=region, seed=seed, log=log, **config),
                     port, _Server, _Handler)

    def _listen(self, fake, port, server, handler):
        """Binds 127.0.0.1:port (0: a free one) for fake, served by handler."""
        self.fake = fake
        self.httpd = server(("127.0.0.1", port), handler)
        self.httpd.fake = self.fake
        self.port = self.httpd.server_address[1]
        self.endpoint_url = "http://127.0.0.1:%d" % self.port
        self.thread = None

    def serve_until_signalled(self, port_file, banner):
        """What a fake's command line does: announces the port (written to
        port_file, when given, once listening) and serves until SIGTERM or
        SIGINT."""
        if port_file:
            tmp = port_file + ".tmp"
            with open(tmp, "w") as f:
                f.write("%d\n" % self.port)
            os.replace(tmp, port_file)
        print(banner, file=sys.stderr, flush=True)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.start()
        stop.wait()
        self.stop()

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="fake-ec2", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.thread is not None:
            self.httpd.shutdown()
            self.thread.join()
            self.thread = None
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

class _CredentialAction(argparse.Action):
    """--access-key starts a credential; the following --secret-key and
    --session-token belong to it."""

    def __call__(self, parser, namespace, value, option_string=None):
        creds = getattr(namespace, "credentials", None) or []
        if option_string == "--access-key":
            creds.append({"access_key": value})
        elif not creds or option_string.lstrip("-").replace("-", "_") in creds[-1]:
            parser.error("%s must follow its --access-key" % option_string)
        else:
            creds[-1][option_string.lstrip("-").replace("-", "_")] = value
        namespace.credentials = creds


def _flag_bool(text):
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError("true or false, not %r" % text)
    return text.lower() == "true"


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fake Amazon EC2 (Query API) on 127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 picks a free one")
    ap.add_argument("--port-file", help="write the chosen port here once listening")
    ap.add_argument("--access-key", action=_CredentialAction, dest="credentials", metavar="AKID",
                    help="accepted access key (repeatable); default %s" % DEFAULT_ACCESS_KEY)
    ap.add_argument("--secret-key", action=_CredentialAction, dest="credentials", metavar="SECRET")
    ap.add_argument("--session-token", action=_CredentialAction, dest="credentials", metavar="TOKEN",
                    help="makes X-Amz-Security-Token required for the preceding --access-key")
    ap.add_argument("--region", default=DEFAULT_REGION, help="region of the credential scope ('any': accept all)")
    ap.add_argument("--seed", type=int, help="seed for IDs and fault injection")
    ap.add_argument("--quiet", action="store_true", help="no per-call log on stderr")
    for name, default in DEFAULT_CONFIG.items():
        ap.add_argument("--" + name.replace("_", "-"), type=_flag_bool if isinstance(default, bool) else type(default),
                        default=default, metavar="true|false" if isinstance(default, bool) else None)
    args = ap.parse_args(argv)

    creds = []
    for c in args.credentials or []:
        if "secret_key" not in c:
            ap.error("--access-key %s has no --secret-key" % c["access_key"])
        creds.append(Credential(c["access_key"], c["secret_key"], c.get("session_token")))
    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    config = {name: getattr(args, name) for name in DEFAULT_CONFIG}
    srv = FakeEc2Server(args.port, creds or None, args.region, args.seed, log, **config)
    srv.serve_until_signalled(args.port_file, "fake_ec2 listening on %s (region %s, keys %s)" % (
        srv.endpoint_url, args.region, ", ".join(c.access_key for c in creds) or DEFAULT_ACCESS_KEY))
    return 0


if __name__ == "__main__":
    sys.exit(main())
