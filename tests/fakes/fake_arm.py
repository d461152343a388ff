#!/usr/bin/python3
"""A fake Azure for tests: Azure Resource Manager and the Entra ID token
endpoint on loopback, one server.

Requests are judged by the Azure SDK's published models, not by what our
worker happens to send:

* every PUT body is walked against the msrest model of Debian's python3-azure
  for the request's api-version (_attribute_map, _validation, the enums of the
  __init__ signatures): unknown members, wrong JSON types, enum values outside
  the model, missing required and client-set read-only properties answer ARM's
  400 InvalidRequestContent;
* bearer tokens come from a client-credentials grant at
  /{tenant}/oauth2/v2.0/token, as Entra ID issues them, and expire;
* answers are what ARM sends: resource JSON, 201/200 + Azure-AsyncOperation
  for long-running PUTs, 202 + Location for deletes, ARM's error body
  {"error": {"code", "message", "target"?}} with its codes.

Resources live in memory with ARM's naming, reference and in-use rules
(resource groups, virtual networks and subnets, network security groups,
public IPs, NICs, virtual machines, managed disks), a VM size list per
location and a platform image catalogue. Latency, throttling (ARM's token
buckets per subscription, or injected 429), 5xx, failed operations and
expired tokens can be injected; a side channel under /_fake/ shows the state
and counts the calls.

Run:    /usr/bin/python3 tests/fakes/fake_arm.py --port 0 --port-file F
Import: with FakeArmServer(lro_ms=0) as srv: ... srv.endpoint_url ...
See tests/fakes/README.md.
"""

import argparse
import base64
import binascii
import copy
import datetime
import hmac
import importlib
import inspect
import ipaddress
import json
import math
import os
import random
import re
import sys
import threading
import time
import traceback
import urllib.parse
import uuid

import fake_ec2  # the fakes' loopback HTTP plumbing: request handler and threading server

# api-versions the issue names; older ones are served where the SDK has the model.
COMPUTE_API = "2022-08-01"
DISK_API = "2022-07-02"        # Microsoft.Compute/disks has its own versions
NETWORK_API = "2022-07-01"
RESOURCES_API = "2022-09-01"

PUBLIC_AUTHORITY = "https://login.microsoftonline.com"
PUBLIC_ARM = "https://management.azure.com"
# Audiences Entra knows for ARM in the public cloud (besides the fake's own URL).
ARM_AUDIENCES = ("https://management.azure.com", "https://management.core.windows.net")

# The service principal used when none is given on the command line.
DEFAULT_TENANT = "72f988bf-0000-4000-8000-00000000fa4e"
DEFAULT_CLIENT_ID = "2a4e7c10-0000-4000-8000-00000000c11e"
DEFAULT_CLIENT_SECRET = "fake8Q~arm-client-secret.0123456789abcdef"
DEFAULT_SUBSCRIPTION = "5ab5c21b-0000-4000-8000-00000000005b"

DEFAULT_CONFIG = {
    "latency_ms": 0,          # added to every ARM and token call
    "lro_ms": 5000,           # how long a long-running operation runs
    "retry_after_s": -1,      # Retry-After of LROs; -1: ceil(lro_ms / 1000), at least 1
    "token_ttl_s": 3599,      # expires_in of new tokens
    "throttle_rate": 0.0,     # probability of an injected 429
    "error_rate": 0.0,        # probability of an injected 500/503
    "page_size": 100,         # list answers longer than this page with nextLink
    "arm_limits": True,       # ARM's per-subscription token buckets
    "read_burst": 250, "read_rate": 25.0,
    "write_burst": 200, "write_rate": 10.0,
    "delete_burst": 200, "delete_rate": 10.0,
}

# --------------------------------------------------------------------------
# What Azure offers: locations, VM sizes, platform images
# --------------------------------------------------------------------------

LOCATIONS = {
    "eastus": "East US", "eastus2": "East US 2", "centralus": "Central US",
    "northcentralus": "North Central US", "southcentralus": "South Central US",
    "westcentralus": "West Central US", "westus": "West US", "westus2": "West US 2",
    "westus3": "West US 3", "canadacentral": "Canada Central", "canadaeast": "Canada East",
    "brazilsouth": "Brazil South", "brazilsoutheast": "Brazil Southeast",
    "mexicocentral": "Mexico Central", "chilecentral": "Chile Central",
    "northeurope": "North Europe", "westeurope": "West Europe", "uksouth": "UK South",
    "ukwest": "UK West", "francecentral": "France Central", "francesouth": "France South",
    "germanywestcentral": "Germany West Central", "germanynorth": "Germany North",
    "switzerlandnorth": "Switzerland North", "switzerlandwest": "Switzerland West",
    "norwayeast": "Norway East", "norwaywest": "Norway West", "swedencentral": "Sweden Central",
    "swedensouth": "Sweden South", "polandcentral": "Poland Central", "italynorth": "Italy North",
    "spaincentral": "Spain Central", "eastasia": "East Asia", "southeastasia": "Southeast Asia",
    "japaneast": "Japan East", "japanwest": "Japan West", "koreacentral": "Korea Central",
    "koreasouth": "Korea South", "centralindia": "Central India", "southindia": "South India",
    "westindia": "West India", "jioindiawest": "Jio India West",
    "jioindiacentral": "Jio India Central", "australiaeast": "Australia East",
    "australiasoutheast": "Australia Southeast", "australiacentral": "Australia Central",
    "australiacentral2": "Australia Central 2", "newzealandnorth": "New Zealand North",
    "indonesiacentral": "Indonesia Central", "malaysiawest": "Malaysia West",
    "uaenorth": "UAE North", "uaecentral": "UAE Central", "qatarcentral": "Qatar Central",
    "israelcentral": "Israel Central", "southafricanorth": "South Africa North",
    "southafricawest": "South Africa West",
}

# Regions opened on current hardware only: no classic A, D and DS v1 sizes.
NEW_LOCATIONS = {"westus3", "mexicocentral", "chilecentral", "brazilsoutheast", "germanynorth",
                 "switzerlandwest", "norwaywest", "swedencentral", "swedensouth", "polandcentral",
                 "italynorth", "spaincentral", "jioindiawest", "jioindiacentral", "newzealandnorth",
                 "indonesiacentral", "malaysiawest", "uaecentral", "qatarcentral", "israelcentral"}

OS_DISK_MB = 1047552  # osDiskSizeInMB of every size


def _sizes():
    """name -> size facts: Azure's published vCPUs, memory, data disk count and
    temporary disk; premium (Premium_LRS) and Hyper-V generation 2 support."""
    rows = []

    def family(names, premium, gen2, classic=False):
        for name, cores, mem_gib, disks, temp_mb in names:
            rows.append({"name": name, "numberOfCores": cores, "memoryInMB": int(mem_gib * 1024),
                         "maxDataDiskCount": disks, "resourceDiskSizeInMB": temp_mb,
                         "osDiskSizeInMB": OS_DISK_MB, "premium": premium, "gen2": gen2, "classic": classic})

    family([("Basic_A0", 1, 0.75, 1, 20480), ("Basic_A1", 1, 1.75, 2, 40960), ("Basic_A2", 2, 3.5, 4, 61440),
            ("Basic_A3", 4, 7, 8, 122880), ("Basic_A4", 8, 14, 16, 245760)], False, False, True)
    family([("Standard_A0", 1, 0.75, 1, 20480), ("Standard_A1", 1, 1.75, 2, 71680),
            ("Standard_A2", 2, 3.5, 4, 138240), ("Standard_A3", 4, 7, 8, 291840),
            ("Standard_A4", 8, 14, 16, 619520), ("Standard_A5", 2, 14, 4, 138240),
            ("Standard_A6", 4, 28, 8, 291840), ("Standard_A7", 8, 56, 16, 619520),
            ("Standard_A8", 8, 56, 32, 391168), ("Standard_A9", 16, 112, 64, 391168),
            ("Standard_A10", 8, 56, 32, 391168), ("Standard_A11", 16, 112, 64, 391168)], False, False, True)
    family([("Standard_A1_v2", 1, 2, 2, 10240), ("Standard_A2_v2", 2, 4, 4, 20480),
            ("Standard_A4_v2", 4, 8, 8, 40960), ("Standard_A8_v2", 8, 16, 16, 81920),
            ("Standard_A2m_v2", 2, 16, 4, 20480), ("Standard_A4m_v2", 4, 32, 8, 40960),
            ("Standard_A8m_v2", 8, 64, 16, 81920)], False, False)
    family([("Standard_D1", 1, 3.5, 4, 51200), ("Standard_D2", 2, 7, 8, 102400),
            ("Standard_D3", 4, 14, 16, 204800), ("Standard_D4", 8, 28, 32, 409600),
            ("Standard_D11", 2, 14, 8, 102400), ("Standard_D12", 4, 28, 16, 204800),
            ("Standard_D13", 8, 56, 32, 409600), ("Standard_D14", 16, 112, 64, 819200)], False, False, True)
    family([("Standard_DS1", 1, 3.5, 4, 7168), ("Standard_DS2", 2, 7, 8, 14336),
            ("Standard_DS3", 4, 14, 16, 28672), ("Standard_DS4", 8, 28, 32, 57344),
            ("Standard_DS11", 2, 14, 8, 28672), ("Standard_DS12", 4, 28, 16, 57344),
            ("Standard_DS13", 8, 56, 32, 114688), ("Standard_DS14", 16, 112, 64, 229376)], True, False, True)
    family([("Standard_D2_v3", 2, 8, 4, 51200), ("Standard_D4_v3", 4, 16, 8, 102400),
            ("Standard_D8_v3", 8, 32, 16, 204800), ("Standard_D16_v3", 16, 64, 32, 409600),
            ("Standard_D32_v3", 32, 128, 32, 819200), ("Standard_D48_v3", 48, 192, 32, 1228800),
            ("Standard_D64_v3", 64, 256, 32, 1638400)], False, False)
    family([("Standard_D2s_v3", 2, 8, 4, 16384), ("Standard_D4s_v3", 4, 16, 8, 32768),
            ("Standard_D8s_v3", 8, 32, 16, 65536), ("Standard_D16s_v3", 16, 64, 32, 131072)], True, True)
    family([("Standard_D2s_v5", 2, 8, 4, 0), ("Standard_D4s_v5", 4, 16, 8, 0),
            ("Standard_D8s_v5", 8, 32, 16, 0), ("Standard_D16s_v5", 16, 64, 32, 0),
            ("Standard_D32s_v5", 32, 128, 32, 0), ("Standard_D48s_v5", 48, 192, 32, 0),
            ("Standard_D64s_v5", 64, 256, 32, 0), ("Standard_D96s_v5", 96, 384, 32, 0)], True, True)
    family([("Standard_B1s", 1, 1, 2, 4096), ("Standard_B1ms", 1, 2, 2, 4096),
            ("Standard_B2s", 2, 4, 4, 8192), ("Standard_B2ms", 2, 8, 4, 16384)], True, True)
    family([("Standard_E2s_v5", 2, 16, 4, 0), ("Standard_E4s_v5", 4, 32, 8, 0),
            ("Standard_E8s_v5", 8, 64, 16, 0)], True, True)
    return {r["name"].lower(): r for r in rows}


SIZES = _sizes()
SIZE_FIELDS = ("name", "numberOfCores", "osDiskSizeInMB", "resourceDiskSizeInMB", "memoryInMB",
               "maxDataDiskCount")


def default_location_sizes():
    """location -> set of size keys it offers."""
    return {loc: {k for k, s in SIZES.items() if not (s["classic"] and loc in NEW_LOCATIONS)}
            for loc in LOCATIONS}


# Platform images: (publisher, offer, sku) -> Hyper-V generation, versions
# (ascending). Canonical's current LTS is ubuntu-24_04-lts; its "server" SKU is
# generation 2 only, "server-gen1" the generation 1 build.
IMAGES = {
    ("Canonical", "ubuntu-24_04-lts", "server"): ("V2", ["24.04.202404230", "24.04.202411030"]),
    ("Canonical", "ubuntu-24_04-lts", "server-gen1"): ("V1", ["24.04.202404230", "24.04.202411030"]),
    ("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2"): ("V2", ["22.04.202311150", "22.04.202312060"]),
    ("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts"): ("V1", ["22.04.202311150", "22.04.202312060"]),
    ("Canonical", "0001-com-ubuntu-server-focal", "20_04-lts-gen2"): ("V2", ["20.04.202312080"]),
    ("Canonical", "0001-com-ubuntu-server-focal", "20_04-lts"): ("V1", ["20.04.202312080"]),
    ("Canonical", "UbuntuServer", "18.04-LTS"): ("V1", ["18.04.202306070"]),
}
IMAGE_OS_DISK_GB = 30


def find_image(publisher, offer, sku):
    for (p, o, s), value in IMAGES.items():
        if (p.lower(), o.lower(), s.lower()) == (publisher.lower(), offer.lower(), sku.lower()):
            return (p, o, s), value
    return None, None


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

class ArmError(Exception):
    """An ARM error answer: {"error": {"code", "message", "target"?, "details"?}}."""

    def __init__(self, status, code, message, target=None, headers=None):
        super().__init__("%s: %s" % (code, message))
        self.status, self.code, self.message, self.target = status, code, message, target
        self.headers = headers or {}

    def body(self):
        err = {"code": self.code, "message": self.message}
        if self.target is not None:
            err["target"] = self.target
        return {"error": err}


def invalid_content(detail, target=None):
    return ArmError(400, "InvalidRequestContent",
                    "The request content was invalid and could not be deserialized: '%s'" % detail, target)


def invalid_parameter(message, target=None):
    return ArmError(400, "InvalidParameter", message, target)


class EntraError(Exception):
    """An Entra ID token endpoint error: {"error", "error_description", "error_codes", ...}."""

    def __init__(self, status, error, aadsts, description):
        super().__init__("%s AADSTS%d" % (error, aadsts))
        self.status, self.error, self.aadsts, self.description = status, error, aadsts, description

    def body(self, now):
        trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        return {"error": self.error,
                "error_description": "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s"
                                     % (self.aadsts, self.description, trace, corr, stamp),
                "error_codes": [self.aadsts], "timestamp": stamp, "trace_id": trace,
                "correlation_id": corr, "error_uri": "%s/error?code=%d" % (PUBLIC_AUTHORITY, self.aadsts)}


# --------------------------------------------------------------------------
# Bodies against the SDK's models (the one place that judges PUT bodies)
# --------------------------------------------------------------------------

SDK_PACKAGES = {"compute": "azure.mgmt.compute", "network": "azure.mgmt.network",
                "resources": "azure.mgmt.resource.resources"}
_MODELS = {}
_MODELS_LOCK = threading.Lock()


def sdk_versions(package):
    """The api-versions the SDK package has models for, newest first."""
    root = importlib.import_module(SDK_PACKAGES[package]).__path__[0]
    out = []
    for name in os.listdir(root):
        m = re.fullmatch(r"v(\d{4})_(\d\d)_(\d\d)(_preview)?", name)
        if m:
            out.append("%s-%s-%s%s" % (m.group(1), m.group(2), m.group(3), "-preview" if m.group(4) else ""))
    return sorted(out, reverse=True)


def sdk_models(package, api_version):
    """The models module of that api-version, or None."""
    key = (package, api_version)
    with _MODELS_LOCK:
        if key not in _MODELS:
            if api_version not in sdk_versions(package):
                _MODELS[key] = None
            else:
                mod = "%s.v%s.models" % (SDK_PACKAGES[package], api_version.replace("-", "_"))
                _MODELS[key] = BodyChecker(importlib.import_module(mod))
        return _MODELS[key]


# Enums whose SDK list is older than the service: checked elsewhere, or not at all.
_OPEN_ENUMS = {"VirtualMachineSizeTypes"}
_NET_TYPES = {"str": "System.String", "int": "System.Int32", "long": "System.Int64", "bool": "System.Boolean",
              "float": "System.Double", "iso-8601": "System.DateTime", "rfc-1123": "System.DateTime",
              "duration": "System.TimeSpan", "date": "System.DateTime", "bytearray": "System.Byte[]",
              "base64": "System.Byte[]"}


class BodyChecker:
    """A JSON body -> nothing, or ArmError InvalidRequestContent, judged by
    one api-version's msrest models. msrest's own from_dict ignores unknown
    members and never checks types, so the walk is done here, over
    _attribute_map (flattened "properties.x" keys become nested objects),
    _validation (required, readonly, constant, lengths, patterns, ranges,
    item counts), _subtype_map and the enums named in __init__'s
    annotations. Enum values match case-insensitively, as ARM's do."""

    def __init__(self, models):
        self.models = models
        self.classes = {k: v for k, v in vars(models).items() if isinstance(v, type)}
        self._trees = {}

    def check(self, body, class_name, answer=False):
        """answer=True judges what the service sends: read-only members allowed."""
        self._object(body, self.classes[class_name], "", answer)

    def has(self, class_name):
        return class_name in self.classes

    # -- the shape of one class: nested JSON keys -> (attr, type, rules, enum)
    def _tree(self, cls):
        if cls not in self._trees:
            enums = self._enums(cls)
            tree, lenient = {}, False
            for attr, spec in cls._attribute_map.items():
                if spec["key"] == "":  # additional_properties
                    lenient = True
                    continue
                parts = [p.replace("\\.", ".") for p in re.split(r"(?<!\\)\.", spec["key"])]
                node = tree
                for p in parts[:-1]:
                    node = node.setdefault(p, {})
                node[parts[-1]] = (attr, spec["type"], cls._validation.get(attr, {}), enums.get(attr), parts)
            self._trees[cls] = (tree, lenient)
        return self._trees[cls]

    def _enums(self, cls):
        out = {}
        try:
            params = inspect.signature(cls.__init__).parameters
        except (TypeError, ValueError):
            return out
        for name, p in params.items():
            for ref in re.findall(r"_models\.(\w+)", str(p.annotation)):
                enum = self.classes.get(ref)
                if enum is not None and issubclass(enum, str) and ref not in _OPEN_ENUMS:
                    out[name] = enum
        return out

    def _subtype(self, cls, value):
        sub = getattr(cls, "_subtype_map", None)
        if not sub:
            return cls
        (attr, mapping), = sub.items()
        key = cls._attribute_map[attr]["key"]
        name = mapping.get(value.get(key))
        return self._subtype(self.classes[name], value) if name in self.classes and self.classes[name] is not cls \
            else cls

    def _object(self, value, cls, path, answer):
        if not isinstance(value, dict):
            raise self._convert(value, cls.__name__, path)
        cls = self._subtype(cls, value)
        tree, lenient = self._tree(cls)
        self._node(value, tree, cls, path, lenient, answer)
        for attr, rules in cls._validation.items():
            if rules.get("required") and not rules.get("readonly") and not answer:
                parts = re.split(r"(?<!\\)\.", cls._attribute_map[attr]["key"])
                node = value
                for p in parts:
                    node = node.get(p.replace("\\.", ".")) if isinstance(node, dict) else None
                if node is None:
                    raise invalid_content("Required property '%s' not found in JSON. Path '%s'."
                                          % (parts[-1], path or "$"), _join(path, ".".join(parts)))

    def _node(self, value, tree, cls, path, lenient, answer):
        for key, v in value.items():
            here = _join(path, key)
            entry = tree.get(key)
            if entry is None:
                if lenient:
                    continue
                raise invalid_content("Could not find member '%s' on object of type '%s'. Path '%s'."
                                      % (key, cls.__name__, here), here)
            if v is None:
                continue
            if isinstance(entry, dict):
                if not isinstance(v, dict):
                    raise self._convert(v, cls.__name__ + "Properties", here)
                self._node(v, entry, cls, here, lenient, answer)
                continue
            attr, typ, rules, enum, _ = entry
            if rules.get("readonly") and not answer:
                raise invalid_content("The property '%s' is read-only and cannot be set. Path '%s'."
                                      % (key, here), here)
            if rules.get("constant") and v != getattr(cls, attr):
                raise invalid_content("The property '%s' must be '%s'. Path '%s'." % (key, getattr(cls, attr), here),
                                      here)
            self._value(v, typ, here, answer, rules, enum)

    def _value(self, v, typ, path, answer, rules=None, enum=None):
        rules = rules or {}
        if typ.startswith("[") and typ.endswith("]"):
            if not isinstance(v, list):
                raise self._convert(v, "List<%s>" % typ[1:-1], path)
            lo, hi = rules.get("min_items"), rules.get("max_items")
            if (lo is not None and len(v) < lo) or (hi is not None and len(v) > hi):
                raise invalid_content("The array at path '%s' must have between %s and %s items."
                                      % (path, lo or 0, hi if hi is not None else "any"), path)
            for i, item in enumerate(v):
                if item is not None:
                    self._value(item, typ[1:-1], "%s[%d]" % (path, i), answer, enum=enum)
            return
        if typ.startswith("{") and typ.endswith("}"):
            if not isinstance(v, dict):
                raise self._convert(v, "Dictionary<String,%s>" % typ[1:-1], path)
            for k, item in v.items():
                if item is not None:
                    self._value(item, typ[1:-1], _join(path, k), answer)
            return
        if typ == "object":
            return
        if typ in ("str", "iso-8601", "rfc-1123", "duration", "date", "bytearray", "base64"):
            if not isinstance(v, str):
                raise self._convert(v, _NET_TYPES[typ], path)
            self._string_rules(v, path, rules, enum)
            return
        if typ in ("int", "long"):
            if not isinstance(v, int) or isinstance(v, bool) or not -2**63 <= v < 2**63 \
                    or (typ == "int" and not answer and not -2**31 <= v < 2**31):  # ARM sends longs
                raise self._convert(v, _NET_TYPES[typ], path)
            self._range(v, path, rules)
            return
        if typ == "float":
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise self._convert(v, _NET_TYPES[typ], path)
            self._range(v, path, rules)
            return
        if typ == "bool":
            if not isinstance(v, bool):
                raise self._convert(v, _NET_TYPES[typ], path)
            return
        cls = self.classes.get(typ)
        if cls is None:
            raise AssertionError("fake bug: unknown msrest type %r at %s" % (typ, path))
        if issubclass(cls, str):  # an enum used as a type
            if not isinstance(v, str):
                raise self._convert(v, typ, path)
            self._string_rules(v, path, rules, cls)
            return
        self._object(v, cls, path, answer)

    def _string_rules(self, v, path, rules, enum):
        if enum is not None and v.lower() not in {e.value.lower() for e in enum}:
            raise invalid_content("Error converting value \"%s\" to type '%s'. Path '%s'."
                                  % (v, enum.__name__, path), path)
        lo, hi = rules.get("min_length"), rules.get("max_length")
        if (lo is not None and len(v) < lo) or (hi is not None and len(v) > hi):
            raise invalid_content("The value at path '%s' must be between %s and %s characters long."
                                  % (path, lo or 0, hi if hi is not None else "any"), path)
        if rules.get("pattern") and not re.match(rules["pattern"], v):
            raise invalid_content("The value at path '%s' does not match the pattern '%s'."
                                  % (path, rules["pattern"]), path)

    @staticmethod
    def _range(v, path, rules):
        lo, hi = rules.get("minimum"), rules.get("maximum")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise invalid_content("The value %s at path '%s' must be between %s and %s." % (v, path, lo, hi), path)

    @staticmethod
    def _convert(v, type_name, path):
        return invalid_content("Error converting value %s to type '%s'. Path '%s'."
                               % (json.dumps(v)[:80], type_name, path), path)


def _join(path, key):
    return "%s.%s" % (path, key) if path else key


# --------------------------------------------------------------------------
# Entra ID: service principals and the client-credentials grant
# --------------------------------------------------------------------------

class Principal:
    """A service principal: what `az ad sp create-for-rbac` makes, with the
    one subscription it has a role on."""

    def __init__(self, tenant_id, client_id, client_secret, subscription_id):
        self.tenant_id, self.client_id = tenant_id.lower(), client_id.lower()
        self.client_secret, self.subscription_id = client_secret, subscription_id.lower()
        self.object_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "sp:" + self.client_id))

    def __repr__(self):  # never the secret
        return "Principal(%s, tenant %s, subscription %s)" % (self.client_id, self.tenant_id, self.subscription_id)

    def public(self):
        return {"tenantId": self.tenant_id, "clientId": self.client_id, "subscriptionId": self.subscription_id,
                "objectId": self.object_id}


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _net_time(t):
    """.NET's en-US general date: 12/7/2023 10:05:00 AM (as ARM's messages print)."""
    dt = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return "%d/%d/%d %d:%02d:%02d %s" % (dt.month, dt.day, dt.year, (dt.hour % 12) or 12, dt.minute, dt.second,
                                         "AM" if dt.hour < 12 else "PM")


class TokenIssuer:
    """POST /{tenant}/oauth2/v2.0/token, and the check of ARM's bearer
    tokens. Tokens are JWT-shaped (header.claims.signature, RS256 claimed,
    random signature) and known by value; the secret is compared, never
    stored in a token or logged."""

    def __init__(self, principals, rng):
        self.principals = {}
        self.tokens = {}
        self.rng = rng
        for p in principals:
            self.add(p)

    def add(self, principal):
        self.principals[principal.client_id] = principal

    def tenants(self):
        return {p.tenant_id for p in self.principals.values()}

    def grant(self, tenant, form, authorization, own_resources, now, ttl):
        tenant = tenant.lower()
        if tenant not in self.tenants():
            raise EntraError(400, "invalid_request", 90002,
                             "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing "
                             "into the correct cloud. Check with your subscription administrator, this may happen if "
                             "there are no active subscriptions for the tenant." % tenant)
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization.lower().startswith("basic "):  # client_secret_basic
            try:
                user, _, pw = base64.b64decode(authorization[6:].strip()).decode().partition(":")
                client_id, secret = urllib.parse.unquote(user), urllib.parse.unquote(pw)
            except (binascii.Error, UnicodeDecodeError):
                raise EntraError(401, "invalid_client", 7000218, "The request body must contain the following "
                                 "parameter: 'client_assertion' or 'client_secret'.") from None
        grant_type = form.get("grant_type")
        for name, value in (("grant_type", grant_type), ("client_id", client_id)):
            if not value:
                raise EntraError(400, "invalid_request", 900144,
                                 "The request body must contain the following parameter: '%s'." % name)
        if grant_type != "client_credentials":
            raise EntraError(400, "unsupported_grant_type", 70003,
                             "The app requested an unsupported grant type '%s'." % grant_type)
        sp = self.principals.get(client_id.lower())
        if sp is None or sp.tenant_id != tenant:
            raise EntraError(400, "unauthorized_client", 700016,
                             "Application with identifier '%s' was not found in the directory '%s'. This can happen "
                             "if the application has not been installed by the administrator of the tenant or "
                             "consented to by any user in the tenant. You may have sent your authentication request "
                             "to the wrong tenant." % (client_id, tenant))
        if not secret:
            raise EntraError(401, "invalid_client", 7000218, "The request body must contain the following "
                             "parameter: 'client_assertion' or 'client_secret'.")
        if not _same_secret(secret, sp.client_secret):
            raise EntraError(401, "invalid_client", 7000215,
                             "Invalid client secret provided. Ensure the secret being sent in the request is the "
                             "client secret value, not the client secret ID, for a secret added to app '%s'."
                             % sp.client_id)
        scope = form.get("scope")
        if not scope:
            raise EntraError(400, "invalid_request", 900144,
                             "The request body must contain the following parameter: 'scope'.")
        if not scope.endswith("/.default") or " " in scope.strip():
            raise EntraError(400, "invalid_scope", 1002012,
                             "The provided value for scope %s is not valid. Client credential flows must have a "
                             "scope value with /.default suffixed to the resource identifier (application ID URI)."
                             % scope)
        resource = scope[:-len("/.default")].rstrip("/")
        if resource.lower() not in {r.lower() for r in ARM_AUDIENCES + tuple(own_resources)}:
            raise EntraError(400, "invalid_resource", 500011,
                             "The resource principal named %s was not found in the tenant named %s. This can happen "
                             "if the application has not been installed by the administrator of the tenant or "
                             "consented to by any user in the tenant. You might have sent your authentication "
                             "request to the wrong tenant." % (resource, tenant))
        exp = int(now) + ttl
        claims = {"aud": resource, "iss": "https://sts.windows.net/%s/" % tenant, "iat": int(now),
                  "nbf": int(now), "exp": exp, "appid": sp.client_id, "appidacr": "1", "idtyp": "app",
                  "oid": sp.object_id, "sub": sp.object_id, "tid": tenant, "ver": "1.0",
                  "uti": _b64url(self.rng.getrandbits(128).to_bytes(16, "big"))}
        token = ".".join([_b64url(json.dumps({"typ": "JWT", "alg": "RS256", "kid": "fake-arm"}).encode()),
                          _b64url(json.dumps(claims, separators=(",", ":")).encode()),
                          _b64url(self.rng.getrandbits(2048).to_bytes(256, "big"))])
        self.tokens[token] = {"client_id": sp.client_id, "tenant": tenant, "exp": exp, "oid": sp.object_id}
        return {"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl, "access_token": token}

    def verify(self, authorization, now):
        """The token's record, or ArmError 401 with WWW-Authenticate."""
        def fail(code, message, description):
            www = 'Bearer authorization_uri="https://login.windows.net/", error="invalid_token", ' \
                  'error_description="%s"' % description
            return ArmError(401, code, message, headers={"WWW-Authenticate": www})

        if not authorization:
            raise fail("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.",
                       "The authentication failed because of missing 'Authorization' header.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise fail("AuthenticationFailedInvalidHeader",
                       "Authentication failed. The 'Authorization' header is provided in an invalid format.",
                       "The authentication failed because of an invalid 'Authorization' header.")
        rec = self.tokens.get(token.strip())
        if rec is None:
            raise fail("InvalidAuthenticationToken", "The access token is invalid.", "The access token is invalid.")
        if rec["exp"] <= now:
            raise fail("ExpiredAuthenticationToken",
                       "The access token expiry UTC time '%s' is earlier than current UTC time '%s'."
                       % (_net_time(rec["exp"]), _net_time(now)), "The access token has expired.")
        return rec

    def expire_all(self, now):
        for rec in self.tokens.values():
            rec["exp"] = min(rec["exp"], int(now) - 1)
        return len(self.tokens)


def _same_secret(a, b):
    return hmac.compare_digest(a.encode(), b.encode())


# --------------------------------------------------------------------------
# State: resources, long-running operations, throttling buckets
# --------------------------------------------------------------------------

def _get(d, *path):
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def canonical(body):
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def iso_time(t):
    dt = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%07d+00:00" % (dt.microsecond * 10)


def norm_location(value):
    """ARM accepts a location's name or display name, in any case."""
    if not isinstance(value, str):
        return None
    key = value.replace(" ", "").lower()
    return key if key in LOCATIONS else None


class Resource:
    """One ARM resource (resource groups included). `body` is what the
    client last PUT, `extra` what the service added (addresses, attached
    VM, disks), `op` the long-running operation it is part of."""

    def __init__(self, kind, rid, now, guid):
        self.kind, self.id, self.key = kind, rid.id, rid.key
        self.sub, self.rg, self.name, self.parent = rid.sub, rid.rg, rid.name, rid.parent_key
        self.location, self.tags, self.body, self.body_canon = None, None, {}, None
        self.state, self.op, self.last_op = None, None, None  # None: not provisioned yet
        self.writes, self.changes, self.created, self.guid = 0, 0, now, guid
        self.extra = {}

    def busy(self):
        return self.op is not None and not self.op.done

    def snapshot(self, st):
        out = {"id": self.id, "type": self.kind.type, "name": self.name, "resourceGroup": self.rg,
               "location": self.location, "tags": dict(self.tags or {}), "provisioningState": self.state,
               "writes": self.writes, "changes": self.changes, "parent": st.res[self.parent].id if self.parent else None,
               "body": copy.deepcopy(self.body)}
        out.update(self.kind.snapshot_extra(st, self))
        return out


class Rid:
    """A resource's identity from its URL: subscription, group, kind, names."""

    def __init__(self, sub, rg, kind, names):
        self.sub, self.rg, self.kind, self.names = sub.lower(), rg, kind, names
        self.name = names[-1] if names else rg
        if kind.type == GROUP_TYPE:
            self.id = "/subscriptions/%s/resourceGroups/%s" % (self.sub, rg)
            self.parent_key = None
        else:
            ns, _, types = kind.type.partition("/")
            segs = "/".join("%s/%s" % (t, n) for t, n in zip(types.split("/"), names))
            self.id = "/subscriptions/%s/resourceGroups/%s/providers/%s/%s" % (self.sub, rg, ns, segs)
            self.parent_key = self.id.rsplit("/", 2)[0].lower() if len(names) > 1 else None
        self.key = self.id.lower()


class Operation:
    """An ARM long-running operation: InProgress until `end`, then `final`."""

    def __init__(self, op_id, sub, provider, location, action, start, end, api_version):
        self.id, self.sub, self.provider, self.location = op_id, sub, provider, location
        self.action, self.start, self.end, self.api_version = action, start, end, api_version
        self.final, self.error, self.error_status, self.done = "Succeeded", None, 400, False

    def finish(self, when, final=None):
        self.done, self.end = True, when
        if final is not None:
            self.final = final

    def body(self):
        out = {"name": self.id, "status": self.final if self.done else "InProgress",
               "startTime": iso_time(self.start)}
        if self.done:
            out["endTime"] = iso_time(self.end)
            if self.error:
                out["error"] = dict(self.error)
        return out


class Bucket:
    """A token bucket: ARM's per-subscription request limits."""

    def __init__(self, burst, rate, now):
        self.burst, self.rate, self.tokens, self.last = burst, rate, float(burst), now

    def take(self, now):
        """(allowed, remaining, seconds until one token)."""
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True, int(self.tokens), 0
        wait = (1 - self.tokens) / self.rate if self.rate > 0 else 3600
        return False, 0, max(1, math.ceil(wait))


class ArmState:
    def __init__(self, seed, clock):
        self.rng = random.Random(seed)
        self.clock = clock
        self.res = {}            # key -> Resource, in creation order
        self.ops = {}            # id -> Operation
        self.pending = []        # the operations still running
        self.buckets = {}        # (subscription, reads|writes|deletes) -> Bucket
        self.location_sizes = default_location_sizes()
        self.next_public = 0

    def now(self):
        return self.clock()

    def new_guid(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hex(self, n=32):
        return "%0*x" % (n, self.rng.getrandbits(4 * n))

    def public_ip(self):
        """Static public addresses from a documentation-like block, in order."""
        self.next_public += 1
        n = self.next_public
        return "20.%d.%d.%d" % (50 + n // 65024, (n // 254) % 256, n % 254 + 1)

    # -- look-ups
    def group(self, sub, rg):
        g = self.res.get(("/subscriptions/%s/resourcegroups/%s" % (sub, rg)).lower())
        if g is None:
            raise ArmError(404, "ResourceGroupNotFound", "Resource group '%s' could not be found." % rg)
        return g

    def in_group(self, g):
        prefix = g.key + "/"
        return [r for r in self.res.values() if r.key.startswith(prefix)]

    def children(self, res):
        return [r for r in self.res.values() if r.parent == res.key]

    def descendants(self, res):
        out = []
        for c in self.children(res):
            out += [c] + self.descendants(c)
        return out

    def of_type(self, type_name, sub=None):
        return [r for r in self.res.values() if r.kind.type == type_name and (sub is None or r.sub == sub)]

    def referrers(self, target):
        """(resource, source id, path) of every reference to target."""
        out = []
        for r in self.res.values():
            if r.sub != target.sub or r is target:
                continue
            for key, source, path in r.kind.refs(self, r):
                if key == target.key:
                    out.append((r, source, path))
        return out

    # -- operations
    def start_op(self, provider, location, action, resources, api_version, lro_ms, fault=None):
        now = self.now()
        op = Operation(self.new_guid(), resources[0].sub, provider, location, action, now, now + lro_ms / 1000.0,
                       api_version)
        if fault is not None:
            op.final, op.error_status = fault["status"], fault["http_status"]
            op.error = {"code": fault["code"], "message": fault["message"]}
        self.ops[op.id] = op
        self.pending.append(op)
        for r in resources:
            if r.busy() and r.op.action == "put" and action == "delete":
                self._preempt(r.op)
            r.op = op
            r.state = "Deleting" if action == "delete" else r.kind.creating if r.state is None else "Updating"
        return op

    def _preempt(self, op):
        op.finish(self.now(), "Canceled")
        self.pending.remove(op)
        op.error = {"code": "OperationPreempted",
                    "message": "Operation execution has been preempted by a more recent operation."}
        for r in self.res.values():
            if r.op is op:
                r.op, r.state = None, "Succeeded"

    def tick(self):
        """Ends every operation that is due, oldest first."""
        now = self.now()
        due = sorted((o for o in self.pending if o.end <= now), key=lambda o: o.end)
        self.pending = [o for o in self.pending if o.end > now]
        for op in due:
            op.finish(op.end)
            mine = [r for r in self.res.values() if r.op is op]
            if op.action == "delete" and op.final == "Succeeded":
                for r in mine:
                    r.kind.deleted(self, r)
                for r in mine:
                    self.res.pop(r.key, None)
                continue
            for r in mine:
                r.op, r.state = None, op.final

    # -- throttling
    def take(self, sub, kind, config):
        now = time.monotonic()
        b = self.buckets.get((sub, kind))
        if b is None:
            b = self.buckets[(sub, kind)] = Bucket(config[kind[:-1] + "_burst"], config[kind[:-1] + "_rate"], now)
        return b.take(now)


# --------------------------------------------------------------------------
# Resource kinds: the rules of each type (one class each)
# --------------------------------------------------------------------------

GROUP_TYPE = "Microsoft.Resources/resourceGroups"
_NET_NAME = re.compile(r"\w(?:[\w.-]{0,78}\w)?\Z")
_RESERVED_USERS = {"administrator", "admin", "user", "user1", "test", "user2", "test1", "user3", "admin1", "1",
                   "123", "a", "actuser", "adm", "admin2", "aspnet", "backup", "console", "david", "guest", "john",
                   "owner", "root", "server", "sql", "support", "support_388945a0", "sys", "test2", "test3",
                   "user4", "user5"}
_BANNED_PASSWORDS = {"abc@123", "p@$$w0rd", "p@ssw0rd", "p@ssword123", "pa$$word", "pass@word1", "password!",
                     "password1", "password22", "iloveyou!"}


def not_found(kind_type, name, rg):
    return ArmError(404, "ResourceNotFound", "The Resource '%s/%s' under resource group '%s' was not found. For more "
                    "details please go to https://aka.ms/ARMResourceNotFoundFix" % (kind_type, name, rg))


def parse_ref(value, path):
    """A fully qualified resource id in a body -> its lower-case key."""
    if not isinstance(value, str) or not re.match(r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/[^/]+/\S+",
                                                  value, re.I):
        raise ArmError(400, "LinkedInvalidPropertyId", "Property id '%s' at path '%s' is invalid. Expect fully "
                       "qualified resource Id that start with '/subscriptions/{subscriptionId}' or "
                       "'/providers/{resourceProviderNamespace}/'." % (value, path))
    return value.rstrip("/").lower()


class Kind:
    """What every resource type shares; subclasses hold the rules."""
    type = ""
    package = ""
    model = ""
    provider = ""
    tracked = True            # top level: location and tags
    lro = True
    creating = "Updating"     # provisioningState of a new resource while its PUT runs
    op_name = ""              # the network RP's name of the PUT operation, in its messages

    def check_name(self, name):
        if not _NET_NAME.match(name):
            raise ArmError(400, "InvalidResourceName", "Resource name %s is invalid. The name can be up to 80 "
                           "characters long. It must begin with a word character, and it must end with a word "
                           "character or with '_'. The name may contain word characters or '.', '-', '_'." % name)

    def canon(self, body):
        """The body as compared for "the same PUT again"."""
        return canonical(body)

    def unchanged(self, st, res, body):
        return res.body_canon == self.canon(body)

    def prepare(self, st, res, body, old, parent):
        """Checks the body; returns a function that applies it and returns
        the resources the operation covers. Raises before changing anything."""
        def apply():
            res.body = copy.deepcopy(body)
            return [res]
        return apply

    def refs(self, st, res):
        """(target key, source id, path) of the references the resource holds."""
        return []

    def check_delete(self, st, res, leaving):
        pass

    def deleted(self, st, res):
        pass

    def render(self, st, res):
        out = {"name": res.name, "id": res.id, "type": self.type}
        if self.tracked:
            out["location"] = res.location
            if res.tags:
                out["tags"] = dict(res.tags)
        if self.package == "network":
            out["etag"] = 'W/"%s"' % res.guid
        props = copy.deepcopy(res.body.get("properties") or {})
        props["provisioningState"] = res.state
        out["properties"] = props
        return out

    def snapshot_extra(self, st, res):
        return {}

    # -- shared checks
    def ready(self, st, target, source_id):
        """A referenced resource must have finished its own operation."""
        owner = st.res.get(target.parent) if target.parent else None
        for r in (target, owner):
            if r is not None and (r.busy() or r.state != "Succeeded"):
                raise ArmError(400, "ReferencedResourceNotProvisioned", "Cannot proceed with operation because "
                               "resource %s used by resource %s is not in Succeeded state. Resource is in %s state "
                               "and the last operation that updated/is updating the resource is %s."
                               % (target.id, source_id, r.state, r.last_op or "Put" + r.kind.model + "Operation"))

    def referenced(self, st, value, path, want_type, source_id, location):
        key = parse_ref(value, path)
        target = st.res.get(key)
        if target is None or target.kind.type != want_type or (location and target.kind.tracked
                                                                 and target.location != location):
            raise ArmError(400, "InvalidResourceReference", "Resource %s referenced by resource %s was not found. "
                           "Please make sure that the referenced resource exists, and that both resources are in "
                           "the same region." % (value, source_id))
        self.ready(st, target, source_id)
        return target

    def in_use(self, st, res, leaving, code, message):
        for r, source, _ in st.referrers(res):
            if r.key not in leaving:
                raise ArmError(400, code, message % {"id": res.id, "name": res.name, "by": source})


class GroupKind(Kind):
    type, package, model = GROUP_TYPE, "resources", "ResourceGroup"
    lro, creating = False, "Succeeded"

    def check_name(self, name):
        bad = "".join(sorted({c for c in name if not (c.isalnum() or c in "-._()")}))
        if bad or not 1 <= len(name) <= 90 or name.endswith("."):
            raise ArmError(400, "InvalidResourceGroup", "The provided resource group name '%s' has these invalid "
                           "characters: '%s'. The name can only be a letter, digit, '-', '.', '(', ')' or '_'."
                           % (name, bad) if bad else "The provided resource group name '%s' is invalid: it must be "
                           "1-90 characters long and must not end in a period." % name)

    def render(self, st, res):
        out = {"id": res.id, "name": res.name, "type": self.type, "location": res.location,
               "properties": {"provisioningState": res.state}}
        if res.tags:
            out["tags"] = dict(res.tags)
        if res.body.get("managedBy"):
            out["managedBy"] = res.body["managedBy"]
        return out


class VirtualNetworkKind(Kind):
    type, package, model, provider = "Microsoft.Network/virtualNetworks", "network", "VirtualNetwork", "Microsoft.Network"
    op_name = "PutVirtualNetworkOperation"

    def check_name(self, name):
        super().check_name(name)
        if not 2 <= len(name) <= 64:
            raise ArmError(400, "InvalidResourceName", "Resource name %s is invalid. A virtual network name must "
                           "be 2 to 64 characters long." % name)

    def prepare(self, st, res, body, old, parent):
        prefixes = _get(body, "properties", "addressSpace", "addressPrefixes") or []
        nets = [_cidr(p, res.id) for p in prefixes]
        if not nets:
            raise ArmError(400, "InvalidAddressPrefixFormat", "The virtual network %s must have at least one "
                           "address prefix in addressSpace." % res.id)
        # A PUT is the whole resource: subnets it leaves out are removed, as ARM does.
        plans, seen = [], set()
        for i, sb in enumerate(_get(body, "properties", "subnets") or []):
            name = sb.get("name")
            if not name:
                raise ArmError(400, "InvalidRequestFormat", "Cannot parse the request. Subnet at index %d of "
                               "%s has no name." % (i, res.id))
            SUBNET.check_name(name)
            if name.lower() in seen:
                raise ArmError(400, "DuplicateResourceName", "Subnet %s appears twice in %s." % (name, res.id))
            seen.add(name.lower())
            plans.append((name, SUBNET.own(sb)))
        SUBNET.layout(st, res, nets, plans)
        leaving = {}
        if old is not None:
            keep = {("%s/subnets/%s" % (res.key, n)).lower() for n, _ in plans}
            for c in st.children(old):
                if c.key not in keep:
                    SUBNET.check_delete(st, c, set())
                    leaving[c.key] = c

        def apply():
            for c in leaving.values():
                st.res.pop(c.key, None)
            touched = [res]
            for name, sbody in plans:
                rid = Rid(res.sub, res.rg, SUBNET, [res.name, name])
                child = st.res.get(rid.key) or Resource(SUBNET, rid, st.now(), st.new_guid())
                child.body, child.body_canon = sbody, canonical(sbody)
                child.last_op = self.op_name
                st.res[child.key] = child
                touched.append(child)
            res.body = _without_children(body, "subnets")  # they live as children
            res.extra["nets"] = [str(n) for n in nets]
            return touched
        return apply

    def canon(self, body):
        return canonical(_without_children(body, "subnets"))

    def unchanged(self, st, res, body):
        return super().unchanged(st, res, body) and SUBNET.same_children(st, res, _get(body, "properties", "subnets"))

    def check_delete(self, st, res, leaving):
        for c in st.children(res):
            SUBNET.check_delete(st, c, leaving)

    def render(self, st, res):
        out = super().render(st, res)
        out["properties"]["resourceGuid"] = res.guid
        out["properties"]["subnets"] = [SUBNET.render(st, c) for c in st.children(res)]
        out["properties"].setdefault("virtualNetworkPeerings", [])
        out["properties"].setdefault("enableDdosProtection", False)
        return out


def _without_children(body, member):
    out = copy.deepcopy(body)
    out.setdefault("properties", {}).pop(member, None)
    return out


def _cidr(text, rid):
    try:
        return ipaddress.IPv4Network(text, strict=True)
    except ValueError:
        try:
            net = ipaddress.IPv4Network(text, strict=False)
        except ValueError:
            raise ArmError(400, "InvalidAddressPrefixFormat", "Address prefix %s of resource %s is not formatted "
                           "correctly. It should follow CIDR notation, for example 10.0.0.0/24." % (text, rid)) from None
        raise ArmError(400, "InvalidCIDRNotation", "The address prefix %s in resource %s has an invalid CIDR "
                       "notation. For the given prefix length, the address prefix should be %s."
                       % (text, rid, net)) from None


class ChildKind(Kind):
    """A resource inside its parent's body (subnets, security rules): its
    identity is its URL, not the name, id or type its body may repeat."""
    tracked = False

    @staticmethod
    def own(body):
        return {k: v for k, v in body.items() if k not in ("name", "id", "type")}

    def canon(self, body):
        return canonical(self.own(body))

    def same_children(self, st, res, given):
        """Whether the parent's children are exactly `given` (its body's list)."""
        have = sorted((c.name.lower(), c.body_canon) for c in st.children(res))
        return have == sorted((g.get("name", "").lower(), self.canon(g)) for g in given or [])


class SubnetKind(ChildKind):
    type, package, model, provider = ("Microsoft.Network/virtualNetworks/subnets", "network", "Subnet",
                                      "Microsoft.Network")
    op_name = "PutSubnetOperation"

    def layout(self, st, vnet, nets, plans):
        """Checks a VNet's subnets (name, body) against its address space:
        inside it, no overlaps, referenced NSGs present."""
        placed = []
        for name, sbody in plans:
            prefix = _get(sbody, "properties", "addressPrefix")
            if prefix is None:
                prefixes = _get(sbody, "properties", "addressPrefixes") or []
                prefix = prefixes[0] if prefixes else None
            if prefix is None:
                raise ArmError(400, "InvalidRequestFormat", "Cannot parse the request. Subnet %s has no "
                               "addressPrefix." % name)
            sid = "%s/subnets/%s" % (vnet.id, name)
            net = _cidr(prefix, sid)
            if not any(net.subnet_of(n) for n in nets):
                raise ArmError(400, "NetcfgSubnetRangeOutsideVnet", "Subnet '%s' is not valid because its IP address "
                               "range is outside the IP address range of virtual network '%s'." % (name, vnet.name))
            for other, onet in placed:
                if net.overlaps(onet):
                    raise ArmError(400, "NetcfgSubnetRangesOverlap", "Subnet '%s' is not valid in virtual network "
                                   "'%s' because its IP address range overlaps with that of an existing subnet '%s' "
                                   "in virtual network." % (name, vnet.name, other))
            placed.append((name, net))
            nsg = _get(sbody, "properties", "networkSecurityGroup", "id")
            if nsg is not None:
                self.referenced(st, nsg, "properties.subnets[%s].properties.networkSecurityGroup.id" % name,
                                NSG.type, sid, vnet.location)

    def prepare(self, st, res, body, old, parent):
        nets = [ipaddress.IPv4Network(n) for n in parent.extra.get("nets", [])]
        siblings = [(c.name, c.body) for c in st.children(parent) if c.key != res.key]
        self.layout(st, parent, nets, siblings + [(res.name, body)])
        if old is not None:
            new_net = ipaddress.IPv4Network(_get(body, "properties", "addressPrefix")
                                            or (_get(body, "properties", "addressPrefixes") or ["0.0.0.0/0"])[0])
            for r, source, _ in st.referrers(res):
                ip = r.extra.get("ips", {}).get(source.rsplit("/", 1)[-1])
                if ip and ipaddress.IPv4Address(ip) not in new_net:
                    raise ArmError(400, "InUseSubnetCannotBeUpdated", "Subnet %s is in use by %s and its address "
                                   "prefix cannot be changed." % (res.name, source))

        def apply():
            res.body = self.own(body)
            return [res, parent]
        return apply

    def net(self, res):
        p = _get(res.body, "properties", "addressPrefix") or (_get(res.body, "properties", "addressPrefixes") or [])[0]
        return ipaddress.IPv4Network(p)

    def refs(self, st, res):
        nsg = _get(res.body, "properties", "networkSecurityGroup", "id")
        return [(nsg.lower(), res.id, "networkSecurityGroup")] if nsg else []

    def check_delete(self, st, res, leaving):
        for r, source, _ in st.referrers(res):
            if r.key not in leaving:
                raise ArmError(400, "InUseSubnetCannotBeDeleted", "Subnet %s is in use by %s and cannot be deleted. "
                               "In order to delete the subnet, delete all the resources within the subnet. See "
                               "aka.ms/deletesubnet." % (res.name, source))

    def render(self, st, res):
        out = super().render(st, res)
        out["properties"]["ipConfigurations"] = [{"id": src} for r, src, path in st.referrers(res)
                                                 if path == "subnet"]
        out["properties"].setdefault("delegations", [])
        out["properties"].setdefault("privateEndpointNetworkPolicies", "Disabled")
        out["properties"].setdefault("privateLinkServiceNetworkPolicies", "Enabled")
        return out


_DEFAULT_RULES = [("AllowVnetInBound", "Inbound", 65000, "VirtualNetwork", "VirtualNetwork", "Allow"),
                  ("AllowAzureLoadBalancerInBound", "Inbound", 65001, "AzureLoadBalancer", "*", "Allow"),
                  ("DenyAllInBound", "Inbound", 65500, "*", "*", "Deny"),
                  ("AllowVnetOutBound", "Outbound", 65000, "VirtualNetwork", "VirtualNetwork", "Allow"),
                  ("AllowInternetOutBound", "Outbound", 65001, "*", "Internet", "Allow"),
                  ("DenyAllOutBound", "Outbound", 65500, "*", "*", "Deny")]


class NsgKind(Kind):
    type, package, model, provider = ("Microsoft.Network/networkSecurityGroups", "network", "NetworkSecurityGroup",
                                      "Microsoft.Network")
    op_name = "PutNetworkSecurityGroupOperation"

    def prepare(self, st, res, body, old, parent):
        rules = []
        for i, rule in enumerate(_get(body, "properties", "securityRules") or []):
            if not rule.get("name"):
                raise ArmError(400, "InvalidRequestFormat", "Cannot parse the request. Security rule at index %d "
                               "of %s has no name." % (i, res.id))
            RULE.check_name(rule["name"])
            rules.append((rule["name"], RULE.own(rule)))
        RULE.check_rules(res, rules)

        def apply():
            for c in st.children(res):
                st.res.pop(c.key, None)
            touched = [res]
            for name, rbody in rules:
                child = Resource(RULE, Rid(res.sub, res.rg, RULE, [res.name, name]), st.now(), st.new_guid())
                child.body, child.body_canon, child.last_op = rbody, canonical(rbody), self.op_name
                st.res[child.key] = child
                touched.append(child)
            res.body = _without_children(body, "securityRules")  # they live as children
            return touched
        return apply

    def canon(self, body):
        return canonical(_without_children(body, "securityRules"))

    def unchanged(self, st, res, body):
        return super().unchanged(st, res, body) and RULE.same_children(st, res,
                                                                       _get(body, "properties", "securityRules"))

    def check_delete(self, st, res, leaving):
        users = [src for r, src, _ in st.referrers(res) if r.key not in leaving]
        if users:
            raise ArmError(400, "InUseNetworkSecurityGroupCannotBeDeleted", "Network security group %s cannot be "
                           "deleted because it is in use by the following resources: %s. In order to delete the "
                           "Network security group, remove the association with the resource(s). To learn how to do "
                           "this, see aka.ms/deletensg." % (res.id, ", ".join(users)))

    def render(self, st, res):
        out = super().render(st, res)
        p = out["properties"]
        p["resourceGuid"] = res.guid
        p["securityRules"] = [RULE.render(st, c) for c in st.children(res)]
        p["defaultSecurityRules"] = [
            {"name": n, "id": "%s/defaultSecurityRules/%s" % (res.id, n),
             "type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
             "properties": {"provisioningState": "Succeeded", "protocol": "*", "sourcePortRange": "*",
                            "destinationPortRange": "*", "sourceAddressPrefix": src,
                            "destinationAddressPrefix": dst, "access": acc, "priority": pri, "direction": d}}
            for n, d, pri, src, dst, acc in _DEFAULT_RULES]
        refs = st.referrers(res)
        p["networkInterfaces"] = [{"id": r.id} for r, _, path in refs if r.kind is NIC]
        p["subnets"] = [{"id": r.id} for r, _, path in refs if r.kind is SUBNET]
        return out


_PORTS = re.compile(r"\*|\d{1,5}(-\d{1,5})?\Z")


class SecurityRuleKind(ChildKind):
    type, package, model, provider = ("Microsoft.Network/networkSecurityGroups/securityRules", "network",
                                      "SecurityRule", "Microsoft.Network")
    op_name = "PutSecurityRuleOperation"

    def check_rules(self, nsg, rules):
        """The network RP's rule checks: priority, ports, one priority per direction."""
        taken = {}
        for name, body in rules:
            p = body.get("properties") or {}
            for field in ("protocol", "access", "direction"):
                if p.get(field) is None:
                    raise ArmError(400, "SecurityRuleParameterNotSpecified", "Security rule %s/securityRules/%s "
                                   "must specify %s." % (nsg.id, name, field))
            pri = p.get("priority")
            if pri is None or not 100 <= pri <= 4096:
                raise ArmError(400, "SecurityRuleInvalidPriority", "Security rule has invalid Priority. Value "
                               "provided: %s. Allowed range 100-4096." % pri)
            for field in ("sourcePortRange", "destinationPortRange"):
                values = [p[field]] if p.get(field) is not None else p.get(field + "s") or []
                if not values:
                    raise ArmError(400, "SecurityRuleParameterNotSpecified", "Security rule %s/securityRules/%s "
                                   "must specify %s or %ss." % (nsg.id, name, field, field))
                for v in values:
                    ok = _PORTS.match(v) and all(0 <= int(x) <= 65535 for x in re.findall(r"\d+", v))
                    if not ok:
                        raise ArmError(400, "SecurityRuleInvalidPortRange", "Security rule has invalid Port range. "
                                       "Value provided: %s. Value should be an integer OR integer range with '-' "
                                       "delimiter. Valid range 0-65535." % v)
            for field in ("sourceAddressPrefix", "destinationAddressPrefix"):
                if p.get(field) is None and not p.get(field + "es"):
                    raise ArmError(400, "SecurityRuleParameterNotSpecified", "Security rule %s/securityRules/%s "
                                   "must specify %s or %ses." % (nsg.id, name, field, field))
            slot = (p["direction"].lower(), pri)
            if slot in taken:
                raise ArmError(400, "SecurityRuleConflict", "Security rule %s conflicts with rule %s. Rules cannot "
                               "have the same Priority and Direction. To learn more, see aka.ms/nsgrules."
                               % (name, taken[slot]))
            taken[slot] = name

    def prepare(self, st, res, body, old, parent):
        siblings = [(c.name, c.body) for c in st.children(parent) if c.key != res.key]
        self.check_rules(parent, siblings + [(res.name, body)])

        def apply():
            res.body = self.own(body)
            return [res, parent]
        return apply


class PublicIpKind(Kind):
    type, package, model, provider = ("Microsoft.Network/publicIPAddresses", "network", "PublicIPAddress",
                                      "Microsoft.Network")
    op_name = "PutPublicIpAddressOperation"

    def prepare(self, st, res, body, old, parent):
        method = (_get(body, "properties", "publicIPAllocationMethod") or "Dynamic").lower()
        sku = (_get(body, "sku", "name") or "Basic").lower()
        if sku == "standard" and method != "static":
            raise ArmError(400, "StandardSkuPublicIPAddressesMustBeStatic", "Standard sku publicIp %s must have "
                           "AllocationMethod set to Static." % res.id)
        if old is not None and (_get(old.body, "sku", "name") or "Basic").lower() != sku:
            raise ArmError(400, "PublicIPAddressSkuCannotBeChanged", "Sku of public IP address %s cannot be "
                           "changed." % res.id)

        def apply():
            res.body = copy.deepcopy(body)
            if method == "static" and not res.extra.get("ip"):
                res.extra["ip"] = st.public_ip()
            elif method != "static":
                res.extra.pop("ip", None)
            return [res]
        return apply

    def check_delete(self, st, res, leaving):
        for r, src, _ in st.referrers(res):
            if r.key not in leaving:
                raise ArmError(400, "PublicIPAddressCannotBeDeleted", "Public IP address %s can not be deleted "
                               "since it is still allocated to resource %s. In order to delete the public IP, "
                               "disassociate/detach the Public IP address from the resource.  To learn how to do "
                               "this, see aka.ms/deletepublicip." % (res.id, src))

    def address(self, st, res):
        if res.extra.get("ip"):
            return res.extra["ip"]
        for r, _, _ in st.referrers(res):  # dynamic: allocated while a VM uses the NIC
            if r.kind is NIC and r.extra.get("vm"):
                res.extra.setdefault("dynamic_ip", st.public_ip())
                return res.extra["dynamic_ip"]
        res.extra.pop("dynamic_ip", None)
        return None

    def render(self, st, res):
        out = super().render(st, res)
        sku = _get(res.body, "sku", "name") or "Basic"
        out["sku"] = {"name": sku, "tier": _get(res.body, "sku", "tier") or "Regional"}
        p = out["properties"]
        p["resourceGuid"] = res.guid
        p.setdefault("publicIPAddressVersion", "IPv4")
        p.setdefault("publicIPAllocationMethod", "Dynamic")
        p.setdefault("idleTimeoutInMinutes", 4)
        p.setdefault("ipTags", [])
        ip = self.address(st, res)
        if ip:
            p["ipAddress"] = ip
        users = st.referrers(res)
        if users:
            p["ipConfiguration"] = {"id": users[0][1]}
        return out

    def snapshot_extra(self, st, res):
        return {"ipAddress": self.address(st, res)}


class NicKind(Kind):
    type, package, model, provider = ("Microsoft.Network/networkInterfaces", "network", "NetworkInterface",
                                      "Microsoft.Network")
    op_name = "PutNicOperation"

    def prepare(self, st, res, body, old, parent):
        configs = _get(body, "properties", "ipConfigurations") or []
        if not configs:
            raise ArmError(400, "NetworkInterfaceMustHaveAtLeastOneIpConfiguration", "Network interface %s must "
                           "have at least one IP configuration." % res.id)
        primaries = [c for c in configs if _get(c, "properties", "primary")]
        if len(configs) > 1 and len(primaries) != 1:
            raise ArmError(400, "OnlyOnePrimaryIpConfigurationAllowed" if primaries else
                           "NetworkInterfaceMustHavePrimaryIpConfiguration",
                           "Network interface %s must have exactly one primary IP configuration." % res.id)
        ips, names, pips = {}, set(), set()
        for i, c in enumerate(configs):
            name = c.get("name")
            path = "properties.ipConfigurations[%d]" % i
            if not name:
                raise ArmError(400, "InvalidRequestFormat", "Cannot parse the request. IP configuration at index %d "
                               "of %s has no name." % (i, res.id))
            self.check_name(name)
            if name.lower() in names:
                raise ArmError(400, "DuplicateResourceName", "IP configuration %s appears twice in %s." % (name, res.id))
            names.add(name.lower())
            cid = "%s/ipConfigurations/%s" % (res.id, name)
            sub_id = _get(c, "properties", "subnet", "id")
            if sub_id is None:
                raise ArmError(400, "SubnetMustBeSpecifiedForIpConfiguration", "IP configuration %s must reference "
                               "a subnet." % cid)
            subnet = self.referenced(st, sub_id, path + ".properties.subnet.id", SUBNET.type, res.id, None)
            vnet = st.res[subnet.parent]
            if vnet.location != res.location:
                raise ArmError(400, "InvalidResourceReference", "Resource %s referenced by resource %s was not found. "
                               "Please make sure that the referenced resource exists, and that both resources are "
                               "in the same region." % (sub_id, res.id))
            pip = _get(c, "properties", "publicIPAddress", "id")
            if pip is not None:
                target = self.referenced(st, pip, path + ".properties.publicIPAddress.id", PIP.type, res.id,
                                         res.location)
                for r, src, _ in st.referrers(target):
                    if r.key != res.key or src.lower() != cid.lower():
                        raise ArmError(400, "PublicIPAddressInUse", "Resource %s is referenced by %s and cannot be "
                                       "used by %s." % (target.id, src, cid))
                if target.key in pips:
                    raise ArmError(400, "PublicIPAddressInUse", "Resource %s is used twice in %s." % (pip, res.id))
                pips.add(target.key)
            ips[name] = self._address(st, res, subnet, c, cid, ips, old)
        nsg = _get(body, "properties", "networkSecurityGroup", "id")
        if nsg is not None:
            self.referenced(st, nsg, "properties.networkSecurityGroup.id", NSG.type, res.id, res.location)

        def apply():
            res.body = copy.deepcopy(body)
            res.extra["ips"] = ips
            return [res]
        return apply

    def _address(self, st, res, subnet, config, cid, taken_here, old):
        """The private address of an IP configuration: the static one asked
        for, else the one it had, else the lowest free one (Azure keeps the
        first four and the last address of each subnet)."""
        net = SUBNET.net(subnet)
        used = {}
        for r, src, path in st.referrers(subnet):
            if path == "subnet" and r.key != res.key:
                ip = r.extra.get("ips", {}).get(src.rsplit("/", 1)[-1])
                if ip:
                    used[ip] = src
        for name, ip in taken_here.items():
            used[ip] = "%s/ipConfigurations/%s" % (res.id, name)
        hosts = list(net)
        reserved = set(map(str, hosts[:4] + hosts[-1:]))
        method = (_get(config, "properties", "privateIPAllocationMethod") or "Dynamic").lower()
        if method == "static":
            ip = _get(config, "properties", "privateIPAddress")
            try:
                addr = ipaddress.IPv4Address(ip or "")
            except ValueError:
                raise ArmError(400, "PrivateIPAddressInvalid", "IP configuration %s has an invalid private IP "
                               "address %s." % (cid, ip)) from None
            if addr not in net:
                raise ArmError(400, "PrivateIPAddressNotInSubnet", "IP configuration %s is referencing a private IP "
                               "address %s which does not belong to subnet %s." % (cid, ip, subnet.id))
            if str(addr) in reserved:
                raise ArmError(400, "PrivateIPAddressIsReserved", "IP configuration %s is referencing a private IP "
                               "address %s which is reserved by Azure in subnet %s." % (cid, ip, subnet.id))
            if str(addr) in used:
                raise ArmError(400, "PrivateIPAddressInUse", "IP configuration %s is using the private IP address "
                               "%s which is already allocated to resource %s." % (cid, ip, used[str(addr)]))
            return str(addr)
        name = cid.rsplit("/", 1)[-1]
        kept = (old.extra.get("ips", {}).get(name) if old is not None else None)
        if kept and ipaddress.IPv4Address(kept) in net and kept not in used:
            return kept
        for h in hosts[4:-1]:
            if str(h) not in used:
                return str(h)
        raise ArmError(400, "SubnetIsFull", "Subnet %s with address prefix %s does not have enough capacity for 1 IP "
                       "addresses." % (subnet.name, net))

    def refs(self, st, res):
        out = []
        for c in _get(res.body, "properties", "ipConfigurations") or []:
            cid = "%s/ipConfigurations/%s" % (res.id, c.get("name"))
            for field, path in (("subnet", "subnet"), ("publicIPAddress", "publicIPAddress")):
                ref = _get(c, "properties", field, "id")
                if ref:
                    out.append((ref.lower(), cid, path))
        nsg = _get(res.body, "properties", "networkSecurityGroup", "id")
        if nsg:
            out.append((nsg.lower(), res.id, "networkSecurityGroup"))
        return out

    def check_delete(self, st, res, leaving):
        vm = res.extra.get("vm")
        if vm and vm not in leaving:
            raise ArmError(400, "NicInUse", "Network Interface %s is used by existing resource %s. In order to delete "
                           "the network interface, it must be dissociated from the resource. To learn more, see "
                           "aka.ms/deletenic." % (res.id, st.res[vm].id))

    def render(self, st, res):
        out = super().render(st, res)
        p = out["properties"]
        p["resourceGuid"] = res.guid
        configs = []
        for c in p.get("ipConfigurations") or []:
            cp = c.setdefault("properties", {})
            c["id"] = "%s/ipConfigurations/%s" % (res.id, c["name"])
            c["etag"] = out["etag"]
            c["type"] = "Microsoft.Network/networkInterfaces/ipConfigurations"
            cp["provisioningState"] = res.state
            cp["privateIPAddress"] = res.extra.get("ips", {}).get(c["name"])
            cp.setdefault("privateIPAllocationMethod", "Dynamic")
            cp.setdefault("privateIPAddressVersion", "IPv4")
            cp.setdefault("primary", len(p["ipConfigurations"]) == 1)
            configs.append(c)
        p["ipConfigurations"] = configs
        p.setdefault("dnsSettings", {})
        p["dnsSettings"].setdefault("dnsServers", [])
        p["dnsSettings"]["appliedDnsServers"] = []
        p["dnsSettings"]["internalDomainNameSuffix"] = "%s.bx.internal.cloudapp.net" % res.guid.replace("-", "")[:26]
        p.setdefault("enableAcceleratedNetworking", False)
        p.setdefault("enableIPForwarding", False)
        p["vnetEncryptionSupported"] = False
        p["hostedWorkloads"], p["tapConfigurations"] = [], []
        p.setdefault("nicType", "Standard")
        vm = res.extra.get("vm")
        if vm and vm in st.res:
            p["virtualMachine"] = {"id": st.res[vm].id}
            p["macAddress"] = res.extra.setdefault("mac", "00-0D-3A-%s" % "-".join(
                res.guid.replace("-", "")[i:i + 2].upper() for i in (0, 2, 4)))
            p["primary"] = True
        return out

    def snapshot_extra(self, st, res):
        vm = res.extra.get("vm")
        return {"privateIPAddresses": dict(res.extra.get("ips", {})),
                "virtualMachine": st.res[vm].id if vm in st.res else None}


_VM_NAME = re.compile(r"[^_\W][\w.-]{0,63}\Z")
_DISK_NAME = re.compile(r"\w[\w.-]{0,79}\Z")
_HOST_BAD = set("`~!@#$%^&*()=+_[]{}\\|;:'\",<>/?")
_USER_BAD = set("\\/\"[]:|<>+=;,?*@")


def _entity_name(name, pattern, target="name"):
    if not pattern.match(name) or name.endswith((".", "-")):
        raise invalid_parameter("The entity name '%s' is invalid according to its validation rule: "
                                "^[^_\\W][\\w-._]{0,79}(?<![-.])$." % name, target)


class VirtualMachineKind(Kind):
    type, package, model, provider = ("Microsoft.Compute/virtualMachines", "compute", "VirtualMachine",
                                      "Microsoft.Compute")
    creating = "Creating"

    def check_name(self, name):
        _entity_name(name, _VM_NAME)

    def prepare(self, st, res, body, old, parent):
        p = body.get("properties") or {}
        size = self._size(st, res, p)
        disks = self._storage(st, res, p, size, old)
        self._os_profile(res, p, old)
        nics = self._network(st, res, p)

        def apply():
            for key in (old.extra.get("nics", []) if old is not None else []):
                if key in st.res and key not in nics:
                    st.res[key].extra.pop("vm", None)
            for key in nics:
                st.res[key].extra["vm"] = res.key
            res.body = copy.deepcopy(body)
            res.extra["nics"] = nics
            res.extra.setdefault("vm_id", st.new_guid())
            res.extra.setdefault("time_created", st.now())
            touched = [res]
            before = dict(res.extra.get("disks", {}))
            res.extra["disks"] = {}
            for slot, spec in disks.items():
                disk = spec.pop("existing", None)
                if disk is None:
                    disk = Resource(DISK, Rid(res.sub, res.rg, DISK, [spec["name"]]), st.now(), st.new_guid())
                    disk.location, disk.tags = res.location, None
                    disk.extra["spec"] = spec["disk"]
                    st.res[disk.key] = disk
                    touched.append(disk)
                disk.extra["vm"] = res.key
                disk.extra["delete_option"] = spec["delete_option"]
                res.extra["disks"][slot] = disk.key
            for slot, key in before.items():  # detached by this PUT
                if key not in res.extra["disks"].values() and key in st.res:
                    st.res[key].extra.pop("vm", None)
            return touched
        return apply

    # -- checks, in the order the compute RP reports them
    def _size(self, st, res, p):
        name = _get(p, "hardwareProfile", "vmSize")
        if not name:
            raise invalid_parameter("Required parameter 'hardwareProfile.vmSize' is missing (null).", "vmSize")
        size = SIZES.get(name.lower())
        here = st.location_sizes.get(res.location, set())
        if size is None:
            raise invalid_parameter("The value %s provided for the VM size is not valid. The valid sizes in the "
                                    "current region are: %s." % (name, ",".join(sorted(SIZES[k]["name"] for k in here))),
                                    "vmSize")
        if name.lower() not in here:
            raise ArmError(409, "SkuNotAvailable", "The requested VM size '%s' is currently not available in location "
                           "'%s'. Please try another size or deploy to a different location or zones. See "
                           "https://aka.ms/azureskunotavailable for details." % (size["name"], res.location))
        return size

    def _storage(self, st, res, p, size, old):
        """slot ("os", "lun0", ...) -> {"name", "disk" spec, "delete_option", "existing"?}."""
        sp = p.get("storageProfile") or {}
        ref = sp.get("imageReference")
        os_disk = sp.get("osDisk") or {}
        create = (os_disk.get("createOption") or "").lower()
        if create != "fromimage":
            raise invalid_parameter("The fake serves VMs created from platform images only: osDisk.createOption "
                                    "must be FromImage.", "osDisk.createOption")
        if not ref:
            raise invalid_parameter("Required parameter 'imageReference' is missing (null).", "imageReference")
        if ref.get("id") or ref.get("sharedGalleryImageId") or ref.get("communityGalleryImageId"):
            raise ArmError(404, "NotFound", "The fake serves platform images only (publisher, offer, sku, version).")
        urn = ":".join(str(ref.get(k)) for k in ("publisher", "offer", "sku", "version"))
        key, image = find_image(ref.get("publisher") or "", ref.get("offer") or "", ref.get("sku") or "")
        version = (ref.get("version") or "").lower()
        if image is None or (version != "latest" and version not in image[1]):
            raise ArmError(404, "PlatformImageNotFound", "The platform image '%s' is not available. Verify that all "
                           "fields in the storage profile are correct. For more details about storage profile "
                           "information, please refer to https://aka.ms/storageprofile" % urn, "imageReference")
        if image[0] == "V2" and not size["gen2"]:
            raise ArmError(400, "BadRequest", "The selected VM size '%s' cannot boot Hypervisor Generation '2'. If "
                           "this was a Create operation please check that the Hypervisor Generation of the Image "
                           "matches the Hypervisor Generation of the selected VM Size. If this was an Update "
                           "operation please select a Hypervisor Generation '2' VM Size. For more information, see "
                           "https://aka.ms/azuregen2vm" % size["name"])
        if old is not None:
            self._unchanged(old, "storageProfile.imageReference", {k: str(v).lower() for k, v in ref.items()},
                            {k: str(v).lower() for k, v in (_get(old.body, "properties", "storageProfile",
                                                                 "imageReference") or {}).items()})
        gb = os_disk.get("diskSizeGB")
        if gb is not None and gb < IMAGE_OS_DISK_GB:
            raise ArmError(409, "OperationNotAllowed", "The specified disk size %d GB is smaller than the size of the "
                           "corresponding disk in the VM image: %d GB. This is not allowed. Please choose equal or "
                           "greater size or do not specify an explicit size." % (gb, IMAGE_OS_DISK_GB),
                           "osDisk.diskSizeGB")
        if gb is not None and gb > 4095:
            raise invalid_parameter("The specified disk size %d GB is larger than 4095 GB, the largest OS disk "
                                    "Azure supports." % gb, "osDisk.diskSizeGB")
        before = {slot: st.res[k] for slot, k in (old.extra.get("disks", {}) if old is not None else {}).items()
                  if k in st.res}
        out = {}
        os_sat = _get(os_disk, "managedDisk", "storageAccountType") or "Standard_LRS"
        os_name = os_disk.get("name")
        if "os" in before:
            if os_name and os_name.lower() != before["os"].name.lower():
                raise ArmError(409, "PropertyChangeNotAllowed", "Changing property 'osDisk.name' is not allowed.",
                               "osDisk.name")
            if (gb or IMAGE_OS_DISK_GB) != before["os"].extra["spec"]["diskSizeGB"]:
                raise ArmError(409, "OperationNotAllowed", "Disk resizing is allowed only when creating a VM or when "
                               "the VM is deallocated.", "osDisk.diskSizeGB")
            out["os"] = {"existing": before["os"], "name": before["os"].name,
                         "delete_option": os_disk.get("deleteOption") or "Detach"}
        else:
            os_name = os_name or "%s_OsDisk_1_%s" % (res.name, st.hex())
            _entity_name(os_name, _DISK_NAME, "osDisk.name")
            out["os"] = {"name": os_name, "delete_option": os_disk.get("deleteOption") or "Detach",
                         "disk": {"sku": os_sat, "diskSizeGB": gb or IMAGE_OS_DISK_GB, "osType": "Linux",
                                  "hyperVGeneration": image[0],
                                  "creationData": {"createOption": "FromImage", "imageReference": {
                                      "id": "/Subscriptions/%s/Providers/Microsoft.Compute/Locations/%s/Publishers/%s"
                                            "/ArtifactTypes/VMImage/Offers/%s/Skus/%s/Versions/%s"
                                            % (res.sub, res.location, key[0], key[1], key[2],
                                               image[1][-1] if version == "latest" else version)}}}}
        self._premium(size, os_sat, out["os"]["name"])
        data = sp.get("dataDisks") or []
        if len(data) > size["maxDataDiskCount"]:
            raise ArmError(409, "OperationNotAllowed", "The maximum number of data disks allowed to be attached to a "
                           "VM of this size is %d." % size["maxDataDiskCount"], "dataDisks")
        names = {out["os"]["name"].lower()}
        for d in data:
            lun = d["lun"]
            slot = "lun%d" % lun
            if not 0 <= lun <= 63:
                raise invalid_parameter("The value %d of parameter 'dataDisk.lun' is out of range. Value must be "
                                        "between 0 and 63, inclusive." % lun, "dataDisk.lun")
            if slot in out:
                raise invalid_parameter("A disk at LUN %d already exists." % lun, "dataDisks")
            sat = _get(d, "managedDisk", "storageAccountType") or "Standard_LRS"
            opt = d["createOption"].lower()
            if slot in before and opt in ("empty", "attach"):
                disk = before[slot]
                if d.get("name") and d["name"].lower() != disk.name.lower():
                    raise invalid_parameter("A disk at LUN %d already exists." % lun, "dataDisks")
                if d.get("diskSizeGB") is not None and d["diskSizeGB"] != disk.extra["spec"]["diskSizeGB"]:
                    raise ArmError(409, "OperationNotAllowed", "Disk resizing is allowed only when creating a VM or "
                                   "when the VM is deallocated.", "dataDisk.diskSizeGB")
                out[slot] = {"existing": disk, "name": disk.name, "delete_option": d.get("deleteOption") or "Detach"}
            elif opt == "empty":
                gb = d.get("diskSizeGB")
                if gb is None:
                    raise invalid_parameter("Required parameter 'dataDisk.diskSizeGB' is missing (null).",
                                            "dataDisk.diskSizeGB")
                if not 1 <= gb <= 32767:
                    raise invalid_parameter("The specified disk size %d GB is not valid: a data disk has 1 to 32767 "
                                            "GB." % gb, "dataDisk.diskSizeGB")
                name = d.get("name") or "%s_DataDisk_%d_%s" % (res.name, lun, st.hex())
                _entity_name(name, _DISK_NAME, "dataDisk.name")
                clash = st.res.get(Rid(res.sub, res.rg, DISK, [name]).key)
                if clash is not None:
                    owner = clash.extra.get("vm")
                    raise ArmError(409, "ConflictingUserInput", "A disk with name %s already exists in Resource Group "
                                   "%s%s. 'Name' is an optional property for a disk and a unique name will be "
                                   "generated if not provided." % (name, res.rg.upper(), " and is attached to VM %s"
                                                                   % st.res[owner].id if owner in st.res else ""),
                                   "dataDisk.name")
                out[slot] = {"name": name, "delete_option": d.get("deleteOption") or "Detach",
                             "disk": {"sku": sat, "diskSizeGB": gb, "creationData": {"createOption": "Empty"}}}
            elif opt == "attach":
                ref = _get(d, "managedDisk", "id")
                if not ref:
                    raise invalid_parameter("Required parameter 'dataDisk.managedDisk.id' is missing (null).",
                                            "dataDisk.managedDisk.id")
                disk = st.res.get(parse_ref(ref, "properties.storageProfile.dataDisks[%d].managedDisk.id" % lun))
                if disk is None or disk.kind is not DISK:
                    raise ArmError(404, "NotFound", "Disk %s was not found." % ref)
                owner = disk.extra.get("vm")
                if owner and owner != res.key:
                    raise ArmError(409, "OperationNotAllowed", "Disk %s is attached to VM %s." % (disk.name,
                                                                                                   st.res[owner].id))
                self.ready(st, disk, res.id)
                sat = disk.extra["spec"]["sku"]
                out[slot] = {"existing": disk, "name": disk.name, "delete_option": d.get("deleteOption") or "Detach"}
            else:
                raise invalid_parameter("StorageProfile.dataDisks.lun does not have required value(s) for image "
                                        "specified in storage profile.", "storageProfile")
            if out[slot]["name"].lower() in names:
                raise invalid_parameter("Disk name %s is used twice in the storage profile." % out[slot]["name"],
                                        "dataDisks")
            names.add(out[slot]["name"].lower())
            self._premium(size, sat, out[slot]["name"])
        return out

    @staticmethod
    def _premium(size, sat, disk_name):
        if sat.lower().startswith("premium") and not size["premium"]:
            raise ArmError(400, "BadRequest", "Requested operation cannot be performed because the VM size %s does "
                           "not support the storage account type %s of disk '%s'. Consider updating the VM to a size "
                           "that supports Premium storage." % (size["name"], sat, disk_name))

    def _os_profile(self, res, p, old):
        osp = p.get("osProfile")
        if old is not None:
            before = _get(old.body, "properties", "osProfile") or {}
            for field in ("computerName", "adminUsername", "customData"):
                self._unchanged(old, "osProfile." + field, (osp or {}).get(field, before.get(field)),
                                before.get(field))
            return
        if not osp:
            raise invalid_parameter("Required parameter 'osProfile' is missing (null).", "osProfile")
        host = osp.get("computerName")
        if not host:
            raise invalid_parameter("Required parameter 'osProfile.computerName' is missing (null).", "computerName")
        if len(host) > 64 or set(host) & _HOST_BAD or host.isdigit() or host.endswith((".", "-")):
            raise invalid_parameter("Linux host name cannot exceed 64 characters in length or contain the following "
                                    "characters: ` ~ ! @ # $ % ^ & * ( ) = + _ [ ] { } \\ | ; : ' \" , < > / ?.",
                                    "computerName")
        user = osp.get("adminUsername")
        if not user:
            raise invalid_parameter("Required parameter 'adminUsername' is missing (null).", "adminUsername")
        if len(user) > 64 or user.endswith(".") or set(user) & _USER_BAD:
            raise invalid_parameter("Linux admin user name cannot be longer than 64 characters, end with a period(.), "
                                    "or contain the following characters: \\ / \" [ ] : | < > + = ; , ? * @.",
                                    "adminUsername")
        if user.lower() in _RESERVED_USERS:
            raise invalid_parameter("The Admin Username specified is not allowed.", "adminUsername")
        password = osp.get("adminPassword")
        if password is not None:
            classes = sum([any(c.islower() for c in password), any(c.isupper() for c in password),
                           any(c.isdigit() for c in password), any(not c.isalnum() for c in password)])
            if not 6 <= len(password) <= 72 or classes < 3 or any(ord(c) < 32 for c in password) \
                    or password.lower() in _BANNED_PASSWORDS:
                raise invalid_parameter("The supplied password must be between 6-72 characters long and must satisfy "
                                        "at least 3 of password complexity requirements from the following:\r\n1) "
                                        "Contains an uppercase character\r\n2) Contains a lowercase character\r\n3) "
                                        "Contains a numeric digit\r\n4) Contains a special character\r\n5) Control "
                                        "characters are not allowed", "adminPassword")
        linux = osp.get("linuxConfiguration") or {}
        keys = _get(linux, "ssh", "publicKeys") or []
        for k in keys:
            want = "/home/%s/.ssh/authorized_keys" % user
            if k.get("path") != want:
                raise invalid_parameter("Destination path for SSH public keys is currently limited to its default "
                                        "value %s  due to a known issue in Linux provisioning agent." % want,
                                        "linuxConfiguration.ssh.publicKeys.path")
        if (linux.get("disablePasswordAuthentication") or password is None) and not keys:
            raise invalid_parameter("Authentication using either SSH or by user name and password must be enabled in "
                                    "Linux profile.", "linuxConfiguration")
        data = osp.get("customData")
        if data is not None:
            try:
                base64.b64decode(data, validate=True)
                ok = len(data) <= 87380
            except (binascii.Error, ValueError):
                ok = False
            if not ok:
                raise invalid_parameter("Custom data in OSProfile must be in Base64 encoding and with a maximum "
                                        "length of 87380 characters.", "customData")

    @staticmethod
    def _unchanged(old, prop, new, before):
        if new != before:
            raise ArmError(409, "PropertyChangeNotAllowed", "Changing property '%s' is not allowed." % prop, prop)

    def _network(self, st, res, p):
        refs = _get(p, "networkProfile", "networkInterfaces") or []
        if not refs:
            raise invalid_parameter("Required parameter 'networkProfile' is missing (null).", "networkProfile")
        if len(refs) > 1 and sum(1 for r in refs if _get(r, "properties", "primary")) != 1:
            raise invalid_parameter("Virtual machine %s must have one network interface set as the primary."
                                    % res.name, "networkInterfaces")
        keys = []
        for i, ref in enumerate(refs):
            if not ref.get("id"):
                raise invalid_parameter("Required parameter 'networkInterfaces[%d].id' is missing (null)." % i,
                                        "networkInterfaces")
            nic = st.res.get(parse_ref(ref["id"], "properties.networkProfile.networkInterfaces[%d].id" % i))
            if nic is None or nic.kind is not NIC:
                raise ArmError(404, "NotFound", "Resource %s not found." % ref["id"])
            if nic.location != res.location:
                raise invalid_parameter("The network interface %s is in location '%s'; virtual machine %s is in "
                                        "'%s'. They must be in the same location." % (nic.id, nic.location, res.name,
                                                                                     res.location), "networkInterfaces")
            owner = nic.extra.get("vm")
            if owner and owner != res.key:
                raise ArmError(400, "NicInUse", "Network Interface %s is used by existing resource %s. In order to "
                               "use it for virtual machine %s, it must be dissociated from that resource."
                               % (nic.id, st.res[owner].id, res.id))
            self.ready(st, nic, res.id)
            keys.append(nic.key)
        return keys

    def refs(self, st, res):
        out = [(k, res.id, "virtualMachine") for k in res.extra.get("nics", [])]
        return out + [(k, res.id, "managedBy") for k in res.extra.get("disks", {}).values()]

    def deleted(self, st, res):
        """Deleting a VM deletes the disks and NICs marked deleteOption
        Delete and detaches the others."""
        options = {}
        for r in _get(res.body, "properties", "networkProfile", "networkInterfaces") or []:
            options[r["id"].lower()] = (_get(r, "properties", "deleteOption") or "Detach").lower()
        for key in res.extra.get("nics", []):
            nic = st.res.get(key)
            if nic is not None:
                nic.extra.pop("vm", None)
                if options.get(key) == "delete":
                    st.res.pop(key, None)
        for key in res.extra.get("disks", {}).values():
            disk = st.res.get(key)
            if disk is not None:
                disk.extra.pop("vm", None)
                if disk.extra.get("delete_option", "Detach").lower() == "delete":
                    st.res.pop(key, None)

    def render(self, st, res):
        out = super().render(st, res)
        p = out["properties"]
        p["vmId"] = res.extra.get("vm_id")
        p["timeCreated"] = iso_time(res.extra.get("time_created", res.created))
        osp = p.get("osProfile") or {}
        osp.pop("adminPassword", None)  # never returned by ARM
        osp.pop("customData", None)
        linux = osp.setdefault("linuxConfiguration", {})
        linux.setdefault("disablePasswordAuthentication", False)
        linux.setdefault("provisionVMAgent", True)
        linux.setdefault("patchSettings", {"patchMode": "ImageDefault", "assessmentMode": "ImageDefault"})
        osp.setdefault("secrets", [])
        osp.setdefault("allowExtensionOperations", True)
        osp.setdefault("requireGuestProvisionSignal", True)
        sp = p.setdefault("storageProfile", {})
        disks = res.extra.get("disks", {})
        ref = sp.get("imageReference") or {}
        os_disk = st.res.get(disks.get("os"))
        if os_disk is not None:
            ref["exactVersion"] = os_disk.extra["spec"]["creationData"]["imageReference"]["id"].rsplit("/", 1)[-1]
            sp["osDisk"] = self._disk_out(os_disk, sp.get("osDisk") or {})
            sp["osDisk"].update({"osType": "Linux", "createOption": "FromImage"})
            sp["osDisk"].setdefault("caching", "ReadWrite")
        data = []
        for d in sp.get("dataDisks") or []:
            disk = st.res.get(disks.get("lun%d" % d["lun"]))
            if disk is not None:
                d = self._disk_out(disk, d)
                d.setdefault("caching", "None")
                d["toBeDetached"] = False
            data.append(d)
        sp["dataDisks"] = data
        return out

    @staticmethod
    def _disk_out(disk, given):
        out = dict(given)
        out["name"] = disk.name
        out["diskSizeGB"] = disk.extra["spec"]["diskSizeGB"]
        out["managedDisk"] = {"storageAccountType": disk.extra["spec"]["sku"], "id": disk.id}
        out["deleteOption"] = disk.extra.get("delete_option", "Detach")
        return out

    def snapshot_extra(self, st, res):
        return {"vmId": res.extra.get("vm_id"),
                "disks": {slot: st.res[k].id for slot, k in res.extra.get("disks", {}).items() if k in st.res},
                "networkInterfaces": [st.res[k].id for k in res.extra.get("nics", []) if k in st.res]}


class DiskKind(Kind):
    type, package, model, provider = "Microsoft.Compute/disks", "compute", "Disk", "Microsoft.Compute"
    creating = "Updating"

    def check_name(self, name):
        _entity_name(name, _DISK_NAME)

    def prepare(self, st, res, body, old, parent):
        cd = _get(body, "properties", "creationData") or {}
        if (cd.get("createOption") or "").lower() != "empty":
            raise invalid_parameter("The fake creates empty disks only: creationData.createOption must be Empty.",
                                    "creationData.createOption")
        gb = _get(body, "properties", "diskSizeGB")
        if gb is None or not 1 <= gb <= 32767:
            raise invalid_parameter("Disk size must be given for an empty disk, 1 to 32767 GB.", "diskSizeGB")
        if old is not None and old.extra.get("vm") and gb != old.extra["spec"]["diskSizeGB"]:
            raise ArmError(409, "OperationNotAllowed", "Disk resizing is allowed only when creating a VM or when the "
                           "VM is deallocated.", "diskSizeGB")

        def apply():
            res.body = copy.deepcopy(body)
            res.extra["spec"] = {"sku": _get(body, "sku", "name") or "Standard_LRS", "diskSizeGB": gb,
                                 "creationData": {"createOption": "Empty"}}
            return [res]
        return apply

    def check_delete(self, st, res, leaving):
        vm = res.extra.get("vm")
        if vm and vm not in leaving:
            raise ArmError(409, "OperationNotAllowed", "Disk %s is attached to VM %s." % (res.name, st.res[vm].id))

    def render(self, st, res):
        spec = res.extra["spec"]
        out = {"name": res.name, "id": res.id, "type": self.type, "location": res.location,
               "sku": {"name": spec["sku"], "tier": "Premium" if spec["sku"].startswith("Premium") else "Standard"}}
        if res.tags:
            out["tags"] = dict(res.tags)
        vm = res.extra.get("vm")
        if vm in st.res:
            out["managedBy"] = st.res[vm].id
        p = {k: copy.deepcopy(spec[k]) for k in ("osType", "hyperVGeneration") if k in spec}
        p.update({"creationData": copy.deepcopy(spec["creationData"]), "diskSizeGB": spec["diskSizeGB"],
                  "diskSizeBytes": spec["diskSizeGB"] << 30, "uniqueId": res.guid,
                  "provisioningState": res.state, "diskState": "Attached" if vm in st.res else "Unattached",
                  "timeCreated": iso_time(res.created), "networkAccessPolicy": "AllowAll",
                  "publicNetworkAccess": "Enabled", "encryption": {"type": "EncryptionAtRestWithPlatformKey"}})
        out["properties"] = p
        return out

    def snapshot_extra(self, st, res):
        vm = res.extra.get("vm")
        return {"managedBy": st.res[vm].id if vm in st.res else None, "diskSizeGB": res.extra["spec"]["diskSizeGB"],
                "sku": res.extra["spec"]["sku"], "deleteOption": res.extra.get("delete_option")}


GROUP, VNET, SUBNET, NSG, RULE = GroupKind(), VirtualNetworkKind(), SubnetKind(), NsgKind(), SecurityRuleKind()
PIP, NIC, VM, DISK = PublicIpKind(), NicKind(), VirtualMachineKind(), DiskKind()
KINDS = {k.type.lower(): k for k in (VNET, SUBNET, NSG, RULE, PIP, NIC, VM, DISK)}


# --------------------------------------------------------------------------
# The service: auth, api-versions, throttling, faults, dispatch, statistics
# --------------------------------------------------------------------------

CONFIG_TYPES = {"latency_ms": (int, float), "lro_ms": (int, float), "retry_after_s": int, "token_ttl_s": int,
                "throttle_rate": (int, float), "error_rate": (int, float), "page_size": int, "arm_limits": bool,
                "read_burst": int, "read_rate": (int, float), "write_burst": int, "write_rate": (int, float),
                "delete_burst": int, "delete_rate": (int, float)}

_FAULT_MESSAGES = {
    429: ("TooManyRequests", "The request is being throttled as the limit has been reached for this operation."),
    500: ("InternalServerError", "Encountered internal server error. Please try again."),
    502: ("BadGateway", "The gateway did not receive a response within the specified time period."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Please try again later."),
}


def sdk_has(package, api_version, model):
    """Whether that api-version's models define `model` (read from the
    package's __init__, so that no module is imported to answer)."""
    path = os.path.join(importlib.import_module(SDK_PACKAGES[package]).__path__[0],
                        "v" + api_version.replace("-", "_"), "models", "__init__.py")
    try:
        with open(path) as f:
            return re.search(r"\b%s\b" % model, f.read()) is not None
    except OSError:
        return False


class Route:
    """What a URL addresses: a handler, its subscription, a label for the
    statistics and the way its api-version is judged."""

    def __init__(self, handler, sub, label, args=(), api=None):
        self.handler, self.sub, self.label, self.args, self.api = handler, sub, label, args, api


class Ctx:
    """One ARM request."""

    def __init__(self, method, path, query, headers, body, base_url):
        self.method, self.path, self.query, self.headers, self.body = method, path, query, headers, body
        self.base_url, self.api_version, self.principal = base_url, query.get("api-version"), None
        self.out_headers = {}


class FakeArm:
    """ARM and Entra minus HTTP: handle() maps a request to (status,
    headers, body). One lock around the state: every call is short."""

    def __init__(self, principals=None, seed=None, log=None, **config):
        self.log = log or (lambda msg: None)
        self.seed = seed
        self.lock = threading.RLock()
        self.clock_offset = 0.0
        self.config = dict(DEFAULT_CONFIG)
        self.issuer = TokenIssuer(principals or [Principal(DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET,
                                                           DEFAULT_SUBSCRIPTION)], random.Random(seed))
        self.state = ArmState(seed, self.now)
        self.fault_rng = random.Random(None if seed is None else seed + 1)
        self.scripted = []
        self.reset_calls()
        self.set_config(**config)

    def now(self):
        return time.time() + self.clock_offset

    # -- configuration and test helpers (the side channel calls these)
    def set_config(self, **changes):
        with self.lock:
            for k, v in changes.items():
                if k == "seed":
                    self.fault_rng = random.Random(v)
                    continue
                want = CONFIG_TYPES.get(k)
                if want is None or not isinstance(v, want) or (isinstance(v, bool) and want is not bool):
                    raise ValueError("bad config %s=%r (known: %s, seed)" % (k, v, ", ".join(CONFIG_TYPES)))
                if k != "retry_after_s" and not isinstance(v, bool) and v < 0:
                    raise ValueError("%s must not be negative" % k)
                if k.endswith("_rate") and k in ("throttle_rate", "error_rate") and v > 1:
                    raise ValueError("%s must be a probability" % k)
                self.config[k] = v
                if k.startswith(("read_", "write_", "delete_")) or k == "arm_limits":
                    self.state.buckets = {}
            return dict(self.config)

    def inject(self, kind="http", method="*", type="*", status=None, code=None, message=None, count=1,
               after=False, retry_after=1, name=None):
        """Scripts the next `count` matching calls. kind "http": answer
        `status` (429, 500, 503, ...) with ARM's error body; with after=True
        the call is carried out first (a lost reply). kind "operation": the
        long-running operation started by the matching PUT or DELETE ends
        `status` "Failed" or "Canceled" with `code` and `message`."""
        if kind == "http":
            status = int(status or 500)
            default = _FAULT_MESSAGES.get(status, ("InternalServerError", "Injected fault."))
            fault = {"kind": kind, "method": method.upper(), "type": type, "status": status,
                     "code": code or default[0], "message": message or default[1], "count": int(count),
                     "after": bool(after), "retry_after": int(retry_after)}
        elif kind == "operation":
            status = status or "Failed"
            if status not in ("Failed", "Canceled"):
                raise ValueError("an operation ends Failed or Canceled")
            fault = {"kind": kind, "method": method.upper(), "type": type, "name": name, "status": status,
                     "code": code or ("OperationCanceled" if status == "Canceled" else "InternalOperationError"),
                     "message": message or "Injected operation failure.", "count": int(count),
                     "http_status": 409 if status == "Canceled" else 400}
        else:
            raise ValueError("a fault's kind is http or operation")
        with self.lock:
            self.scripted.append(fault)
        return fault

    def expire_tokens(self):
        with self.lock:
            return self.issuer.expire_all(self.now())

    def add_principal(self, tenant_id, client_id, client_secret, subscription_id):
        with self.lock:
            self.issuer.add(Principal(tenant_id, client_id, client_secret, subscription_id))

    def advance(self, seconds):
        """Moves the fake's clock: operations end, tokens expire."""
        with self.lock:
            self.clock_offset += float(seconds)

    def set_location_sizes(self, location, sizes=None, add=(), remove=()):
        loc = norm_location(location)
        if loc is None:
            raise ValueError("unknown location %r" % location)
        with self.lock:
            have = self.state.location_sizes[loc]
            if sizes is not None:
                have = set()
                add = list(sizes)
            for name in list(add) + list(remove):
                if name.lower() not in SIZES:
                    raise ValueError("unknown VM size %r" % name)
            have = (have | {n.lower() for n in add}) - {n.lower() for n in remove}
            self.state.location_sizes[loc] = have
            return sorted(SIZES[k]["name"] for k in have)

    def reset(self):
        """Empties resources, operations, faults and counts; principals,
        tokens, configuration and location sizes stay."""
        with self.lock:
            sizes = self.state.location_sizes
            self.state = ArmState(self.seed, self.now)
            self.state.location_sizes = sizes
            self.scripted = []
            self.reset_calls()

    def reset_calls(self):
        self.calls = {"total": 0, "by_method": {}, "by_request": {}, "by_request_ok": {}, "by_status": {},
                      "by_error_code": {}, "by_client": {}, "log": []}

    def get_state(self, tag=None):
        """Every resource group and resource; with tag=(name, value) only
        those carrying that tag."""
        with self.lock:
            self.state.tick()
            st = self.state
            items = [r for r in st.res.values() if r.state is not None]
            if tag is not None:
                items = [r for r in items if any(k.lower() == tag[0].lower() and v == tag[1]
                                                 for k, v in (r.tags or {}).items())]
            return {"resourceGroups": [r.snapshot(st) for r in items if r.kind is GROUP],
                    "resources": [r.snapshot(st) for r in items if r.kind is not GROUP],
                    "operations": {"pending": [{"id": o.id, "action": o.action, "end": o.end} for o in st.pending],
                                   "done": len(st.ops) - len(st.pending)}}

    def get_calls(self):
        with self.lock:
            return json.loads(json.dumps(self.calls))

    def sdk_auth(self, base_url, client_id=None):
        """The file `az ad sp create-for-rbac --sdk-auth` writes, pointing at this fake."""
        with self.lock:
            sps = list(self.issuer.principals.values())
            sp = next((p for p in sps if client_id is None or p.client_id == client_id.lower()), None)
            if sp is None:
                raise ValueError("no principal %s" % client_id)
            return {"clientId": sp.client_id, "clientSecret": sp.client_secret, "subscriptionId": sp.subscription_id,
                    "tenantId": sp.tenant_id, "activeDirectoryEndpointUrl": base_url,
                    "resourceManagerEndpointUrl": base_url + "/",
                    "activeDirectoryGraphResourceId": "https://graph.windows.net/",
                    "sqlManagementEndpointUrl": "https://management.core.windows.net:8443/",
                    "galleryEndpointUrl": "https://gallery.azure.com/",
                    "managementEndpointUrl": "https://management.core.windows.net/"}

    # -- HTTP entry point
    def handle(self, method, raw_path, headers, body):
        split = urllib.parse.urlsplit(raw_path)
        base_url = "http://%s" % (headers.get("Host") or "127.0.0.1")
        if split.path.startswith("/_fake/"):
            return self.handle_admin(method, split, body, base_url)
        latency = self.config["latency_ms"]
        if latency:
            time.sleep(latency / 1000.0)
        m = re.fullmatch(r"/([^/]+)/oauth2/v2\.0/token/?", split.path)
        if m:
            return self._token(method, m.group(1), headers, body, base_url)
        return self._arm(method, split, headers, body, base_url)

    # -- Entra
    def _token(self, method, tenant, headers, body, base_url):
        client, status, code = "-", 200, None
        try:
            form = {}
            if method != "POST":
                raise EntraError(400, "invalid_request", 900561, "The endpoint only accepts POST requests.")
            if (headers.get("Content-Type") or "").split(";")[0].strip().lower() == \
                    "application/x-www-form-urlencoded":
                try:
                    form = dict(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
                except (UnicodeDecodeError, ValueError):
                    form = {}
            client = form.get("client_id") or "-"
            with self.lock:
                fault = self._scripted("http", "POST", "token")
                if fault is not None:
                    raise EntraError(fault["status"], "temporarily_unavailable", 50196, fault["message"])
                hosts = [base_url, base_url.replace("http://", "https://")]
                out = self.issuer.grant(tenant, form, headers.get("Authorization") or "", hosts, self.now(),
                                        self.config["token_ttl_s"])
            payload = out
        except EntraError as e:
            status, code = e.status, e.error
            payload = e.body(self.now())
        self._record("POST", "token", client, status, code, "/%s/oauth2/v2.0/token" % tenant)
        return status, {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store, no-cache",
                        "Pragma": "no-cache"}, json.dumps(payload).encode()

    # -- ARM
    def _arm(self, method, split, headers, body, base_url):
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        ctx = Ctx(method, split.path, query, headers, body, base_url)
        request_id = str(uuid.uuid4())
        label, client, status, code = "-", "-", 200, None
        out_headers, payload = {}, b""
        try:
            with self.lock:
                self.state.tick()
                rec = self.issuer.verify(headers.get("Authorization"), self.now())
                client = rec["client_id"]
                ctx.principal = self.issuer.principals[client]
                route = self._route(method, split.path)
                label = route.label
                self._authorize(ctx, route)
                self._api_version(ctx, route)
                self._throttle(ctx, route)
                after = self._inject_before(method, route.label)
                status, out_headers, result = route.handler(ctx, *route.args)
                out_headers = {**ctx.out_headers, **out_headers}
            if after is not None:
                raise after
            if result is not None:
                payload = json.dumps(result).encode()
        except ArmError as e:
            status, code = e.status, e.code
            out_headers = {**ctx.out_headers, **e.headers}
            payload = json.dumps(e.body()).encode()
        except Exception:  # a bug in the fake: say so loudly
            self.log("fake_arm internal error:\n" + traceback.format_exc())
            status, code = 500, "InternalServerError"
            payload = json.dumps(ArmError(500, code, "fake_arm bug: " + traceback.format_exc(limit=1)).body()).encode()
        self._record(method, label, client, status, code, split.path)
        out_headers.update({"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-cache",
                            "x-ms-request-id": request_id,
                            "x-ms-correlation-request-id": headers.get("x-ms-correlation-request-id") or request_id})
        return status, out_headers, payload

    def _route(self, method, path):
        segs = [urllib.parse.unquote(s) for s in path.strip("/").split("/")]
        low = [s.lower() for s in segs]
        if len(segs) < 2 or low[0] != "subscriptions":
            raise self._no_route(path)
        sub, rest, lrest = low[1], segs[2:], low[2:]
        res_api = ("resources", "ResourceGroup", "InvalidApiVersionParameter")
        if not rest and method == "GET":
            return Route(self._subscription, sub, "subscriptions", (sub,))
        if lrest == ["resourcegroups"] and method == "GET":
            return Route(self._list_groups, sub, GROUP_TYPE, (sub,), res_api)
        if len(rest) == 2 and lrest[0] == "resourcegroups":
            rid = Rid(sub, rest[1], GROUP, [])
            return Route(self._resource, sub, GROUP_TYPE, (GROUP, rid), res_api)
        if lrest == ["resources"] and method == "GET":
            return Route(self._list_resources, sub, "resources", (sub, None), res_api)
        if len(rest) == 3 and lrest[0] == "resourcegroups" and lrest[2] == "resources" and method == "GET":
            return Route(self._list_resources, sub, "resources", (sub, rest[1]), res_api)
        if len(rest) == 2 and lrest[0] == "operationresults" and method == "GET":
            return Route(self._op_result, sub, "operationResults", (sub, rest[1]))
        if len(rest) >= 5 and lrest[0] == "providers" and lrest[2] == "locations" and method == "GET":
            return self._location_route(sub, rest, lrest)
        if len(rest) >= 5 and lrest[0] == "resourcegroups" and lrest[2] == "providers":
            tail = rest[4:]
            type_name = "/".join([rest[3]] + tail[0::2])
            kind = KINDS.get(type_name.lower())
            if kind is None:
                raise ArmError(400, "InvalidResourceType", "The resource type '%s' could not be found in the "
                               "namespace '%s'." % ("/".join(tail[0::2]), rest[3]))
            api = (kind.package, kind.model, "NoRegisteredProviderFound")
            if len(tail) % 2 == 0:
                return Route(self._resource, sub, kind.type, (kind, Rid(sub, rest[1], kind, tail[1::2])), api)
            if method == "GET":
                return Route(self._list_kind, sub, kind.type, (kind, sub, rest[1], tail[1::2]), api)
        raise self._no_route(path)

    def _location_route(self, sub, rest, lrest):
        ns, loc, what = lrest[1], rest[3], lrest[4:]
        if len(what) == 2 and what[0] in ("operations", "operationresults") and ns in ("microsoft.network",
                                                                                      "microsoft.compute"):
            handler = self._op_status if what[0] == "operations" else self._op_result
            return Route(handler, sub, "operations" if what[0] == "operations" else "operationResults",
                         (sub, rest[5]))
        if ns == "microsoft.compute" and what == ["vmsizes"]:
            return Route(self._vm_sizes, sub, "vmSizes", (loc,), ("compute", "VirtualMachineSize",
                                                                   "NoRegisteredProviderFound"))
        if ns == "microsoft.compute" and what[:4] == ["publishers", what[1] if len(what) > 1 else "", "artifacttypes",
                                                      "vmimage"] and lrest[8:9] == ["offers"]:
            tail, ltail = rest[9:], lrest[9:]
            shapes = {0: [], 2: ["skus"], 4: ["skus", "versions"], 5: ["skus", "versions"]}
            if len(tail) in shapes and ltail[1::2][:2] == shapes[len(tail)]:
                return Route(self._images, sub, "images", (loc, [rest[5]] + tail[0::2]),
                             ("compute", "VirtualMachineImage", "NoRegisteredProviderFound"))
        raise self._no_route("/".join(rest))

    @staticmethod
    def _no_route(path):
        return ArmError(404, "InvalidResourceType", "The fake ARM serves no resource at '%s'." % path)

    def _authorize(self, ctx, route):
        owners = {p.subscription_id for p in self.issuer.principals.values()}
        if route.sub not in owners:
            raise ArmError(404, "SubscriptionNotFound", "The subscription '%s' could not be found." % route.sub)
        sp = ctx.principal
        if sp.subscription_id != route.sub:
            raise ArmError(403, "AuthorizationFailed", "The client '%s' with object id '%s' does not have "
                           "authorization to perform action '%s/%s' over scope '/subscriptions/%s' or the scope is "
                           "invalid. If access was recently granted, please refresh your credentials."
                           % (sp.client_id, sp.object_id, route.label, "read" if ctx.method in ("GET", "HEAD")
                              else "delete" if ctx.method == "DELETE" else "write", route.sub))

    def _api_version(self, ctx, route):
        if not ctx.api_version:
            raise ArmError(400, "MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for all requests.")
        if route.api is None:
            return
        package, model, code = route.api
        if sdk_has(package, ctx.api_version, model):
            return
        supported = ", ".join(v for v in sdk_versions(package) if sdk_has(package, v, model))
        if code == "InvalidApiVersionParameter":
            raise ArmError(400, code, "The api-version '%s' is invalid. The supported versions are '%s'."
                           % (ctx.api_version, supported.replace(", ", ",")))
        raise ArmError(400, code, "No registered resource provider found for location '%s' and API version '%s' "
                       "for type '%s'. The supported api-versions are '%s'. The supported locations are '%s'."
                       % (ctx.query.get("location", "westus"), ctx.api_version, route.label.split("/", 1)[-1],
                          supported, ", ".join(LOCATIONS)))

    def _throttle(self, ctx, route):
        bucket = {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}.get(ctx.method, "writes")
        if not self.config["arm_limits"]:
            return
        ok, remaining, wait = self.state.take(route.sub, bucket, self.config)
        header = "x-ms-ratelimit-remaining-subscription-" + bucket
        ctx.out_headers[header] = str(remaining)
        if not ok:
            raise ArmError(429, "SubscriptionRequestsThrottled", "Number of '%s' requests for subscription '%s' actor "
                           "'%s' exceeded. Please try again after '%d' seconds after additional tasks are processed."
                           % (bucket[:-1], route.sub, ctx.principal.object_id, wait),
                           headers={"Retry-After": str(wait), header: "0"})

    def _scripted(self, kind, method, label, name=None):
        for f in self.scripted:
            if f["kind"] != kind or f["count"] <= 0 or f["method"] not in ("*", method):
                continue
            if f["type"] != "*" and f["type"].lower() not in (label.lower(), label.rsplit("/", 1)[-1].lower()):
                continue
            if name is not None and f.get("name") and not re.search(f["name"], name):
                continue
            f["count"] -= 1
            self.scripted = [g for g in self.scripted if g["count"] > 0]
            return f
        return None

    def _inject_before(self, method, label):
        """Raises a fault due now; returns one due after the call, if any."""
        f = self._scripted("http", method, label)
        if f is not None:
            headers = {"Retry-After": str(f["retry_after"])} if f["status"] in (429, 503) else {}
            err = ArmError(f["status"], f["code"], f["message"], headers=headers)
            if f["after"]:
                return err
            raise err
        throttle, error = self.fault_rng.random(), self.fault_rng.random()
        if throttle < self.config["throttle_rate"]:
            raise ArmError(429, *_FAULT_MESSAGES[429], headers={"Retry-After": "1"})
        if error < self.config["error_rate"]:
            status = 500 if self.fault_rng.random() < 0.5 else 503
            raise ArmError(status, *_FAULT_MESSAGES[status])
        return None

    def _record(self, method, label, client, status, code, path):
        with self.lock:
            c = self.calls
            c["total"] += 1
            request = "%s %s" % (method, label)
            for table, key in (("by_method", method), ("by_request", request), ("by_client", client),
                               ("by_status", str(status))):
                c[table][key] = c[table].get(key, 0) + 1
            if status < 400:
                c["by_request_ok"][request] = c["by_request_ok"].get(request, 0) + 1
            else:
                c["by_error_code"][code] = c["by_error_code"].get(code, 0) + 1
            c["log"].append({"method": method, "type": label, "path": path, "client": client, "status": status,
                             "code": code, "time": time.time()})
            del c["log"][:-5000]
        self.log("%s %s %s %d %s" % (client, method, path, status, code or ""))

    # -- handlers: each returns (status, headers, JSON-able body or None)
    def _subscription(self, ctx, sub):
        sp = ctx.principal
        return 200, {}, {"id": "/subscriptions/%s" % sub, "subscriptionId": sub, "tenantId": sp.tenant_id,
                         "displayName": "Fake subscription", "state": "Enabled", "authorizationSource": "RoleBased",
                         "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01",
                                                  "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"}}

    def _resource(self, ctx, kind, rid):
        if ctx.method == "PUT":
            return self._put(ctx, kind, rid)
        if ctx.method in ("GET", "HEAD"):
            return self._get(ctx, kind, rid)
        if ctx.method == "DELETE":
            return self._delete(ctx, kind, rid)
        if ctx.method == "PATCH" and kind in (DISK, VM):
            return self._patch_tags(ctx, kind, rid)
        raise ArmError(405, "MethodNotAllowed", "The fake ARM does not serve %s on %s." % (ctx.method, kind.type))

    def _patch_tags(self, ctx, kind, rid):
        """PATCH of a disk (the SDK's DiskUpdate) or a VM (VirtualMachineUpdate):
        the fake changes its tags only, which the body replaces as a whole, as
        ARM does, synchronously. An OS disk made with its VM has no tags until
        a PATCH gives them."""
        st = self.state
        body = self._json(ctx.body)
        model = "DiskUpdate" if kind is DISK else "VirtualMachineUpdate"
        sdk_models(kind.package, ctx.api_version).check(body, model)
        what = "disk" if kind is DISK else "virtual machine"
        other = sorted(k for k in body if k != "tags")
        if other:
            raise invalid_parameter("The fake updates a %s's tags only, not '%s'." % (what, other[0]), other[0])
        st.group(rid.sub, rid.rg)
        res = st.res.get(rid.key)
        if res is None or res.state is None:
            raise not_found(kind.type, rid.name, rid.rg)
        if res.busy():
            raise self._in_progress(ctx, res.op)
        res.tags = self._tags(body)
        res.state = "Succeeded"  # an update that succeeds provisions it, even after a failed operation
        res.writes += 1
        res.changes += 1
        return 200, {}, kind.render(st, res)

    def _get(self, ctx, kind, rid):
        st = self.state
        if kind is GROUP:
            g = st.res.get(rid.key)
            if ctx.method == "HEAD":
                return (204 if g is not None else 404), {}, None
            if g is None:
                st.group(rid.sub, rid.rg)  # raises ResourceGroupNotFound
            return 200, {}, kind.render(st, g)
        st.group(rid.sub, rid.rg)
        res = st.res.get(rid.key)
        if res is None or res.state is None:
            raise not_found(kind.type, "/".join(rid.names), rid.rg)
        return 200, {}, kind.render(st, res)

    def _put(self, ctx, kind, rid):
        st = self.state
        body = self._json(ctx.body)
        parent = None
        g = st.res.get(rid.key) if kind is GROUP else st.group(rid.sub, rid.rg)
        if g is not None and g.state == "Deleting":
            raise ArmError(409, "ResourceGroupBeingDeleted", "The resource group '%s' is in deprovisioning state and "
                           "cannot perform this operation." % rid.rg)
        if kind is not GROUP:
            if rid.parent_key:
                parent = st.res.get(rid.parent_key)
                if parent is None or parent.state is None:
                    raise not_found(parent_type(kind), rid.names[0], rid.rg)
        kind.check_name(rid.name)
        sdk_models(kind.package, ctx.api_version).check(body, kind.model)
        old = st.res.get(rid.key)
        location = self._location(kind, body, old, rid) if kind.tracked else None
        tags = self._tags(body) if kind.tracked else None
        if old is not None and old.state == "Deleting":
            raise self._in_progress(ctx, old.op)
        canon = kind.canon(body)
        if old is not None and old.state not in ("Failed", "Canceled") and kind.unchanged(st, old, body):
            old.writes += 1  # the same body again: nothing changes
            if old.busy():  # still running: the answer of the first PUT
                return (201 if old.changes == 1 else 200), self._async_headers(ctx, old.op, delete=False), \
                    kind.render(st, old)
            return 200, {}, kind.render(st, old)
        for r in (old, parent):
            if r is not None and r.busy():
                raise self._in_progress(ctx, r.op)
        res = old or Resource(kind, rid, st.now(), st.new_guid())
        res.location = location or (parent.location if parent is not None else None)
        apply = kind.prepare(st, res, body, old, parent)
        fault = self._scripted("operation", "PUT", kind.type, rid.name) if kind.lro else None
        st.res[res.key] = res
        touched = apply()
        res.tags, res.body_canon, res.last_op = tags, canon, kind.op_name or None
        res.writes += 1
        res.changes += 1
        if not kind.lro:
            res.state = "Succeeded"
            return (201 if old is None else 200), {}, kind.render(st, res)
        op = st.start_op(kind.provider, res.location, "put", touched, ctx.api_version, self.config["lro_ms"], fault)
        return (201 if old is None else 200), self._async_headers(ctx, op, delete=False), kind.render(st, res)

    def _delete(self, ctx, kind, rid):
        st = self.state
        if kind is GROUP:
            g = st.group(rid.sub, rid.rg)
            if g.state == "Deleting":
                return 202, self._location_headers(ctx, g.op), None
            op = st.start_op(None, g.location, "delete", [g] + st.in_group(g), ctx.api_version,
                             self.config["lro_ms"], self._scripted("operation", "DELETE", kind.type, rid.name))
            return 202, self._location_headers(ctx, op), None
        st.group(rid.sub, rid.rg)
        res = st.res.get(rid.key)
        if res is None or res.state is None:
            return 204, {}, None
        if res.state == "Deleting":
            return 202, self._async_headers(ctx, res.op, delete=True), None
        parent = st.res.get(res.parent) if res.parent else None
        if parent is not None and parent.busy():
            raise self._in_progress(ctx, parent.op)
        targets = [res] + st.descendants(res)
        leaving = {r.key for r in targets}
        for r in targets:
            r.kind.check_delete(st, r, leaving)
        op = st.start_op(kind.provider, res.location or (parent.location if parent else None), "delete", targets,
                         ctx.api_version, self.config["lro_ms"], self._scripted("operation", "DELETE", kind.type,
                                                                                rid.name))
        return 202, self._async_headers(ctx, op, delete=True), None

    def _list_groups(self, ctx, sub):
        st = self.state
        match = self._filter(ctx.query.get("$filter"))
        items = [GROUP.render(st, r) for r in st.res.values()
                 if r.kind is GROUP and r.sub == sub and r.state is not None and match(r)]
        return 200, {}, self._page(ctx, items)

    def _list_resources(self, ctx, sub, rg):
        """GET …/resources: top-level resources, optionally filtered."""
        st = self.state
        pool = st.in_group(st.group(sub, rg)) if rg is not None else st.res.values()
        match = self._filter(ctx.query.get("$filter"))
        items = []
        for r in pool:
            if r.sub != sub or r.kind is GROUP or not r.kind.tracked or r.state is None or not match(r):
                continue
            item = {"id": r.id, "name": r.name, "type": r.kind.type, "location": r.location}
            if r.tags:
                item["tags"] = dict(r.tags)
            full = r.kind.render(st, r)
            for k in ("sku", "managedBy"):
                if k in full:
                    item[k] = full[k]
            if "provisioningState" in (ctx.query.get("$expand") or ""):
                item["provisioningState"] = r.state
            items.append(item)
        return 200, {}, self._page(ctx, items)

    def _list_kind(self, ctx, kind, sub, rg, parent_names):
        st = self.state
        g = st.group(sub, rg)
        parent_key = None
        if parent_names:
            parent_key = Rid(sub, rg, KINDS[parent_type(kind).lower()], parent_names).key
            if parent_key not in st.res:
                raise not_found(parent_type(kind), parent_names[0], rg)
        items = [kind.render(st, r) for r in st.in_group(g)
                 if r.kind is kind and r.state is not None and r.parent == parent_key]
        return 200, {}, self._page(ctx, items)

    def _op_status(self, ctx, sub, op_id):
        op = self._operation(sub, op_id)
        headers = {} if op.done else {"Retry-After": self._retry_after()}
        return 200, headers, op.body()

    def _op_result(self, ctx, sub, op_id):
        op = self._operation(sub, op_id)
        if not op.done:
            return 202, {"Location": ctx.base_url + ctx.path + "?" + urllib.parse.urlencode(ctx.query),
                         "Retry-After": self._retry_after()}, None
        if op.final != "Succeeded":
            raise ArmError(op.error_status, op.error["code"], op.error["message"])
        return 200, {}, None

    def _operation(self, sub, op_id):
        op = self.state.ops.get(op_id)
        if op is None or op.sub != sub:
            raise ArmError(404, "NotFound", "The operation '%s' was not found." % op_id)
        return op

    def _vm_sizes(self, ctx, location):
        loc = self._known_location(location, "Microsoft.Compute/locations/vmSizes")
        names = sorted(self.state.location_sizes[loc], key=lambda k: SIZES[k]["name"])
        return 200, {}, {"value": [{f: SIZES[k][f] for f in SIZE_FIELDS} for k in names]}

    def _images(self, ctx, location, names):
        """Publisher, offer, sku and version look-ups; list answers are bare
        arrays (as ARM's are), versions ascending unless $orderby=name desc."""
        loc = self._known_location(location, "Microsoft.Compute/locations/publishers")
        missing = ArmError(404, "NotFound", "Artifact: VMImage was not found.")
        want = [n.lower() for n in names]
        rows = [(p, o, s, g, vs) for (p, o, s), (g, vs) in IMAGES.items()
                if [p.lower(), o.lower(), s.lower()][:len(want)] == want[:3]]
        if not rows:
            raise missing
        base = "/Subscriptions/%s/Providers/Microsoft.Compute/Locations/%s/Publishers/%s/ArtifactTypes/VMImage" \
               % (ctx.principal.subscription_id, loc, rows[0][0])

        def item(name, path):
            return {"location": loc, "name": name, "id": base + path}
        if len(names) == 1:
            offers = sorted({r[1] for r in rows})
            return 200, {}, [item(o, "/Offers/" + o) for o in offers]
        if len(names) == 2:
            return 200, {}, [item(r[2], "/Offers/%s/Skus/%s" % (r[1], r[2])) for r in rows]
        p, o, s, gen, versions = rows[0]
        path = "/Offers/%s/Skus/%s/Versions/" % (o, s)
        if len(names) == 3:
            order = sorted(versions, key=lambda v: [int(x) for x in v.split(".")],
                           reverse=(ctx.query.get("$orderby") or "").lower().replace(" ", "") == "namedesc")
            top = ctx.query.get("$top")
            if top is not None:
                order = order[:int(top)] if top.isdigit() else order
            return 200, {}, [item(v, path + v) for v in order]
        version = names[3]
        if version.lower() == "latest":
            raise invalid_parameter("The value of parameter 'version' is invalid.", "version")
        if version not in versions:
            raise missing
        return 200, {}, {**item(version, path + version), "properties": {
            "hyperVGeneration": gen, "architecture": "x64", "osDiskImage": {"operatingSystem": "Linux"},
            "dataDiskImages": [], "automaticOSUpgradeProperties": {"automaticOSUpgradeSupported": False},
            "disallowed": {"vmDiskType": "None"},
            "features": [{"name": "IsAcceleratedNetworkSupported", "value": "True"},
                         {"name": "DiskControllerTypes", "value": "SCSI, NVMe"}]}}

    # -- helpers of the handlers
    @staticmethod
    def _json(raw):
        try:
            body = json.loads(raw.decode("utf-8") if raw else "")
        except (UnicodeDecodeError, ValueError) as e:
            raise invalid_content("Unexpected character encountered while parsing value: %s" % e) from None
        if not isinstance(body, dict):
            raise invalid_content("Cannot deserialize the current JSON value into an object. Path ''.")
        return body

    def _location(self, kind, body, old, rid):
        given = body.get("location")
        if not given:
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        loc = norm_location(given)
        if loc is None:
            if kind is GROUP:
                raise ArmError(400, "LocationNotAvailableForResourceGroup", "The provided location '%s' is not "
                               "available for resource group. List of available regions is '%s'."
                               % (given, ",".join(LOCATIONS)))
            raise ArmError(400, "LocationNotAvailableForResourceType", "The provided location '%s' is not available "
                           "for resource type '%s'. List of available regions for the resource type is '%s'."
                           % (given, kind.type, ",".join(LOCATIONS)))
        if old is not None and old.location != loc:
            if kind is GROUP:
                raise ArmError(409, "InvalidResourceGroupLocation", "Invalid resource group location '%s'. The "
                               "Resource group already exists in location '%s'." % (loc, old.location))
            raise ArmError(409, "InvalidResourceLocation", "The resource '%s' already exists in location '%s' in "
                           "resource group '%s'. A resource with the same name cannot be created in location '%s'. "
                           "Please select a new resource name." % (rid.name, old.location, rid.rg, loc))
        return loc

    @staticmethod
    def _tags(body):
        tags = body.get("tags")
        if not tags:
            return None
        bad = [k for k in tags if any(c in "<>%&\\?/" or ord(c) < 32 for c in k)]
        if bad:
            raise ArmError(400, "InvalidTagNameCharacters", "The tag names '%s' have reserved characters "
                           "'<,>,%%,&,\\,?,/' or control characters." % ",".join(bad))
        long = [v for v in tags.values() if isinstance(v, str) and len(v) > 256]
        if long:
            raise ArmError(400, "InvalidTagValueLength", "Tag value too large.  Following tag value '%s' "
                           "exceeded the maximum length. Maximum allowed length for tag value - '256' "
                           "characters." % long[0])
        if len(tags) > 50:
            raise ArmError(400, "InvalidTagCount", "The resource has %d tags; at most 50 are allowed."
                           % len(tags))
        return dict(tags)

    def _known_location(self, location, type_name):
        loc = norm_location(location)
        if loc is None:
            raise ArmError(400, "LocationNotAvailableForResourceType", "The provided location '%s' is not available "
                           "for resource type '%s'. List of available regions for the resource type is '%s'."
                           % (location, type_name, ",".join(LOCATIONS)))
        return loc

    @staticmethod
    def _filter(expr):
        """ARM's $filter on lists: clauses `field eq 'value'` joined by `and`
        over tagName/tagValue, resourceType, name, location."""
        if not expr:
            return lambda r: True
        tests = {}
        for clause in re.split(r"\s+and\s+", expr.strip(), flags=re.I):
            m = re.fullmatch(r"(\w+)\s+eq\s+'((?:[^']|'')*)'", clause.strip(), re.I)
            field = m.group(1).lower() if m else None
            if field not in ("tagname", "tagvalue", "resourcetype", "name", "location"):
                raise ArmError(400, "InvalidFilterInQueryString", "The $filter '%s' is not supported." % expr)
            tests[field] = m.group(2).replace("''", "'")
        if "tagvalue" in tests and "tagname" not in tests:
            raise ArmError(400, "InvalidFilterInQueryString", "A tagValue filter needs a tagName.")

        def match(r):
            tags = {k.lower(): v for k, v in (r.tags or {}).items()}
            if "tagname" in tests:
                name = tests["tagname"].lower()
                if name not in tags or ("tagvalue" in tests and tags[name] != tests["tagvalue"]):
                    return False
            return (tests.get("resourcetype", r.kind.type).lower() == r.kind.type.lower()
                    and tests.get("name", r.name).lower() == r.name.lower()
                    and norm_location(tests.get("location", r.location or "")) == r.location)
        return match

    def _page(self, ctx, items):
        size = self.config["page_size"]
        try:
            start = int(ctx.query.get("$skiptoken", "0"))
        except ValueError:
            raise ArmError(400, "InvalidSkipToken", "The $skiptoken is invalid.") from None
        out = {"value": items[start:start + size]}
        if start + size < len(items):
            out["nextLink"] = "%s%s?%s" % (ctx.base_url, ctx.path,
                                           urllib.parse.urlencode({**ctx.query, "$skiptoken": start + size}))
        return out

    def _retry_after(self):
        s = self.config["retry_after_s"]
        return str(max(1, math.ceil(self.config["lro_ms"] / 1000.0)) if s < 0 else s)

    def _op_url(self, ctx, op, kind):
        return "%s/subscriptions/%s/providers/%s/locations/%s/%s/%s?api-version=%s" % (
            ctx.base_url, op.sub, op.provider, op.location, kind, op.id, op.api_version)

    def _async_headers(self, ctx, op, delete):
        out = {"Azure-AsyncOperation": self._op_url(ctx, op, "operations"), "Retry-After": self._retry_after()}
        if delete:
            out["Location"] = self._op_url(ctx, op, "operationResults")
        return out

    def _location_headers(self, ctx, op):
        """A resource group's delete: Location only, as ARM answers it."""
        return {"Location": "%s/subscriptions/%s/operationresults/%s?api-version=%s"
                            % (ctx.base_url, op.sub, op.id, op.api_version),
                "Retry-After": self._retry_after()}

    def _in_progress(self, ctx, op):
        return ArmError(409, "AnotherOperationInProgress", "Another operation on this or dependent resource is in "
                        "progress. To retrieve status of the operation use uri: %s."
                        % (self._op_url(ctx, op, "operations") if op.provider else "(resource group deletion)"))

    # -- the side channel
    def handle_admin(self, method, split, body, base_url):
        path, query = split.path.rstrip("/"), dict(urllib.parse.parse_qsl(split.query))
        try:
            data = json.loads(body.decode() or "{}") if method == "POST" else {}
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            route = (method, path)
            if route == ("GET", "/_fake/state"):
                tag = query.get("tag")
                out = self.get_state(tuple(tag.rsplit("=", 1)) if tag and "=" in tag else None)
            elif route == ("GET", "/_fake/calls"):
                out = self.get_calls()
            elif route == ("GET", "/_fake/config"):
                out = dict(self.config)
            elif route == ("POST", "/_fake/config"):
                out = self.set_config(**data)
            elif route == ("POST", "/_fake/faults"):
                self.inject(**data)
                out = {"pending": self.scripted}
            elif route == ("GET", "/_fake/faults"):
                out = {"pending": self.scripted}
            elif route == ("POST", "/_fake/expire-tokens"):
                out = {"expired": self.expire_tokens()}
            elif route == ("GET", "/_fake/principals"):
                out = {"principals": [p.public() for p in self.issuer.principals.values()]}
            elif route == ("POST", "/_fake/principals"):
                self.add_principal(data["tenantId"], data["clientId"], data["clientSecret"], data["subscriptionId"])
                out = {"principals": [p.public() for p in self.issuer.principals.values()]}
            elif route == ("GET", "/_fake/sdk-auth"):
                out = self.sdk_auth(base_url, query.get("client_id"))
            elif route == ("GET", "/_fake/locations"):
                out = {loc: sorted(SIZES[k]["name"] for k in ks) for loc, ks in self.state.location_sizes.items()}
            elif route == ("POST", "/_fake/locations"):
                out = {"sizes": self.set_location_sizes(data["location"], data.get("sizes"), data.get("add", ()),
                                                        data.get("remove", ()))}
            elif route == ("POST", "/_fake/advance"):
                self.advance(data.get("seconds", 0))
                out = {"now": self.now()}
            elif route == ("POST", "/_fake/reset"):
                self.reset()
                out = {"ok": True}
            elif route == ("GET", "/_fake/health"):
                out = {"ok": True}
            else:
                return 404, {"Content-Type": "application/json"}, \
                    json.dumps({"error": "no such endpoint %s %s" % route}).encode()
            return 200, {"Content-Type": "application/json"}, json.dumps(out, default=str, indent=1).encode()
        except (ValueError, TypeError, KeyError) as e:
            return 400, {"Content-Type": "application/json"}, json.dumps({"error": repr(e)}).encode()


def parent_type(kind):
    return kind.type.rsplit("/", 1)[0]


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

class _Handler(fake_ec2._Handler):
    """fake_ec2's loopback request handler (body framing, timeouts, no
    access log) with ARM's verbs, answering from FakeArm."""
    server_version = "Microsoft-HTTPAPI/2.0"

    def do_HEAD(self):
        self._serve("HEAD")

    def do_PUT(self):
        self._serve("PUT")

    def do_PATCH(self):
        self._serve("PATCH")

    def _serve(self, method):
        try:
            body = self._body()
        except (ValueError, OSError):  # bad chunk framing, or a peer that stalls past `timeout`
            self.close_connection = True
            self.send_error(400, "Malformed request body framing")
            return
        status, headers, payload = self.server.fake.handle(method, self.path, self.headers, body)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(payload)


class _Server(fake_ec2._Server):
    request_queue_size = 128  # a worker with 100 parallel jobs connects at once


class FakeArmServer(fake_ec2.FakeEc2Server):
    """FakeArm behind a ThreadingHTTPServer on 127.0.0.1, served from a
    thread; start, stop and `with` are fake_ec2's.

        with FakeArmServer(lro_ms=0, seed=1) as srv:
            srv.endpoint_url                      # token endpoint and ARM
            srv.fake.inject(status=429, count=2)
    """

    def __init__(self, port=0, principals=None, seed=None, log=None, **config):  # not super's: it makes a FakeEc2
        self._listen(FakeArm(principals=principals, seed=seed, log=log, **config), port, _Server, _Handler)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def _principal(text):
    parts = text.split(":", 3)
    if len(parts) != 4 or not all(parts):
        raise argparse.ArgumentTypeError("expected TENANT:CLIENT_ID:SUBSCRIPTION:SECRET")
    tenant, client, sub, secret = parts
    return Principal(tenant, client, secret, sub)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fake Azure Resource Manager and Entra ID token endpoint on 127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 picks a free one")
    ap.add_argument("--port-file", help="write the chosen port here once listening")
    ap.add_argument("--principal", type=_principal, action="append", metavar="TENANT:CLIENT_ID:SUBSCRIPTION:SECRET",
                    help="a service principal (repeatable); default: the README's example principal")
    ap.add_argument("--seed", type=int, help="seed for IDs, addresses and fault injection")
    ap.add_argument("--quiet", action="store_true", help="no per-call log on stderr")
    for name, default in DEFAULT_CONFIG.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            ap.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes", "on"), default=default,
                            metavar="true|false")
        else:
            ap.add_argument(flag, type=type(default), default=default)
    args = ap.parse_args(argv)

    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    config = {name: getattr(args, name) for name in DEFAULT_CONFIG}
    srv = FakeArmServer(args.port, args.principal, args.seed, log, **config)
    for package, api in (("compute", COMPUTE_API), ("compute", DISK_API), ("network", NETWORK_API),
                         ("resources", RESOURCES_API)):
        sdk_models(package, api)  # loaded before the port is announced: no slow first call
    srv.serve_until_signalled(args.port_file, "fake_arm listening on %s (principals %s)" % (
        srv.endpoint_url, ", ".join(p.client_id for p in srv.fake.issuer.principals.values())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
