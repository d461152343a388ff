"""Tests of the fake EC2 (tests/fakes/fake_ec2.py), driven by a real botocore
client and by hand-signed raw requests.

Run: /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/fakes
"""
import base64
import datetime
import http.client
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import botocore.serialize
import botocore.session
import pytest
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fake_ec2  # noqa: E402

KEY, SECRET = "AKIDFAKEEC2TEST00001", "secret/for+the+fake+ec2"
KEY2, SECRET2 = "AKIDFAKEEC2TEST00002", "another-secret"
TMP_KEY, TMP_SECRET, TMP_TOKEN = "ASIAFAKEEC2TEMP00003", "temp-secret", "FwoGZXIvYXdzEJr//////////token=="
CREDS = [fake_ec2.Credential(KEY, SECRET), fake_ec2.Credential(KEY2, SECRET2),
         fake_ec2.Credential(TMP_KEY, TMP_SECRET, TMP_TOKEN)]
REGION = "us-west-2"
SSH_KEY = ("ssh-ed25519 " + base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes(range(32))).decode()
           + " dexter@test")
# Note: retries={"max_attempts": 1} would still allow one *retry*; botocore
# counts the first attempt only in total_max_attempts.
NO_RETRY = botocore.config.Config(retries={"total_max_attempts": 1})


# ---------------------------------------------------------------- helpers

@pytest.fixture
def srv():
    """A fake without EC2's token buckets (the tests of those turn them on):
    most tests launch faster than RunInstances' 2 per second."""
    with fake_ec2.FakeEc2Server(credentials=CREDS, seed=7, pending_ms=0, shutdown_ms=0, ec2_limits=False) as s:
        yield s


_SESSION = botocore.session.get_session()  # one session: loading the EC2 model is slow
_SESSION_LOCK = threading.Lock()


def client(srv, key=KEY, secret=SECRET, token=None, config=NO_RETRY, region=REGION):
    with _SESSION_LOCK:
        return _SESSION.create_client(
        "ec2", region_name=region, endpoint_url=srv.endpoint_url, aws_access_key_id=key,
        aws_secret_access_key=secret, aws_session_token=token, config=config)


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def http_status(excinfo):
    return excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


def tags(cluster="c1", role="master", name=None):
    return [{"Key": "dexter:cluster", "Value": cluster}, {"Key": "dexter:group", "Value": "g1"},
            {"Key": "dexter:role", "Value": role}, {"Key": "Name", "Value": name or "%s-%s" % (cluster, role)}]


def spec(resource_type, **kw):
    return [{"ResourceType": resource_type, "Tags": tags(**kw)}]


def sign(request, key, secret, token=None, region=REGION, when=None):
    """botocore's SigV4Auth.add_auth, with a chosen timestamp."""
    signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret, token), "ec2", region)
    when = when or datetime.datetime.utcnow()
    request.context["timestamp"] = when.strftime(botocore.auth.SIGV4_TIMESTAMP)
    signer._modify_request_before_signing(request)
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    signer._inject_signature_to_request(request, signature)


def raw(srv, params, key=KEY, secret=SECRET, token=None, region=REGION, when=None, body_after_signing=None,
        headers=None, drop_header=None):
    """A hand-made, signed POST; returns (HTTP status, error code or None, XML root)."""
    body = urllib.parse.urlencode(params).encode()
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=srv.endpoint_url + "/", data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", **(headers or {})})
    if key is not None:
        sign(req, key, secret, token, region, when)
    prepared = req.prepare()
    sent = {k: v for k, v in prepared.headers.items() if k != drop_header}
    r = requests.post(prepared.url, data=body_after_signing or prepared.body, headers=sent, timeout=10)
    root = ET.fromstring(r.content)
    code = root.find("Errors/Error/Code")
    return r.status_code, (code.text if code is not None else None), root


def error_message(root):
    return root.find("Errors/Error/Message").text


def admin(srv, path, data=None):
    url = srv.endpoint_url + "/_fake/" + path
    r = requests.post(url, json=data, timeout=10) if data is not None else requests.get(url, timeout=10)
    r.raise_for_status()
    return r.json()


def network(ec2, cluster="c1", cidr="10.0.0.0/16"):
    """VPC, subnet, IGW, route table, security group: what the worker builds."""
    vpc = ec2.create_vpc(CidrBlock=cidr, TagSpecifications=spec("vpc", cluster=cluster))["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr.replace("0.0/16", "1.0/24"), AvailabilityZone="us-west-2a",
                               TagSpecifications=spec("subnet", cluster=cluster))["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway(TagSpecifications=spec("internet-gateway", cluster=cluster))
    igw = igw["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    sg = ec2.create_security_group(GroupName=cluster + "-sg", Description="dexter " + cluster, VpcId=vpc,
                                   TagSpecifications=spec("security-group", cluster=cluster))["GroupId"]
    return vpc, subnet, igw, sg


def ubuntu(ec2):
    images = ec2.describe_images(Owners=[fake_ec2.CANONICAL_OWNER], Filters=[
        {"Name": "name", "Values": ["ubuntu/images/hvm-ssd/ubuntu-*-22.04-amd64-server-*"]},
        {"Name": "state", "Values": ["available"]}])["Images"]
    return max(images, key=lambda i: i["CreationDate"])["ImageId"]


def run(ec2, subnet, sg, token, count=1, **kw):
    return ec2.run_instances(ImageId=ubuntu(ec2), InstanceType="m5.large", MinCount=count, MaxCount=count,
                             SubnetId=subnet, SecurityGroupIds=[sg], ClientToken=token,
                             TagSpecifications=spec("instance") + spec("volume"), **kw)


# ------------------------------------------- the decoder against botocore's serializer

def _example(shape, rng, depth=0):
    """A random value valid for the shape (botocore's validator checks it)."""
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            if name in shape.required_members or (depth < 4 and rng.random() < 0.45):
                out[name] = _example(member, rng, depth + 1)
        if not out and shape.members:  # an empty structure never reaches the wire
            name = rng.choice(sorted(shape.members))
            out[name] = _example(shape.members[name], rng, depth + 1)
        return out
    if kind == "list":
        lo = max(shape.metadata.get("min", 0), 1 if depth < 5 else 0)
        hi = min(shape.metadata.get("max", 3), max(lo, 3 if depth < 5 else 0))
        return [_example(shape.member, rng, depth + 1) for _ in range(rng.randint(lo, hi))]
    if kind == "string":
        if shape.enum:
            return rng.choice(shape.enum)
        lo, hi = shape.metadata.get("min", 1), shape.metadata.get("max", 24)
        n = rng.randint(max(lo, 1), max(min(hi, 24), max(lo, 1)))
        return "".join(rng.choice("aZ09 -_.~/=&+%:*?é") for _ in range(n))
    if kind in ("integer", "long"):
        return rng.randint(shape.metadata.get("min", -5), shape.metadata.get("max", 100000))
    if kind == "boolean":
        return rng.random() < 0.5
    if kind in ("float", "double"):
        return rng.choice([0.5, 1.25, 100.0])
    if kind == "timestamp":
        return datetime.datetime(2023, 12, 7, 10, 5, rng.randint(0, 59), tzinfo=datetime.timezone.utc)
    if kind == "blob":
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))
    raise AssertionError(kind)


def _prune(value):
    """What survives EC2 serialisation: empty lists and empty structures leave
    nothing on the wire (an empty list element just leaves a gap in the .N)."""
    if isinstance(value, dict):
        out = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in ([], {})}
    if isinstance(value, list):
        return [v for v in map(_prune, value) if v not in ([], {})]
    return value


def test_decoder_inverts_botocore_serializer_for_every_operation():
    model = fake_ec2.service_model()
    serializer = botocore.serialize.create_serializer("ec2", include_validation=True)
    decoder = fake_ec2.QueryDecoder()
    rng = random.Random(2016)
    checked = 0
    for name in model.operation_names:
        op = model.operation_model(name)
        if op.input_shape is None:
            continue
        for _ in range(3):
            params = _example(op.input_shape, rng)
            body = serializer.serialize_to_request(params, op)["body"]
            assert body.pop("Action") == name and body.pop("Version") == "2016-11-15"
            pairs = urllib.parse.parse_qsl(urllib.parse.urlencode(body), keep_blank_values=True)
            assert decoder.decode(op, pairs) == _prune(params), name
            checked += 1
    assert len(model.operation_names) > 500 and checked > 1500


def test_decoder_rejects_what_the_model_does_not_allow():
    model = fake_ec2.service_model()
    decoder = fake_ec2.QueryDecoder()
    run = model.operation_model("RunInstances")
    ok = [("MinCount", "1"), ("MaxCount", "1")]

    def code(pairs, op=run):
        with pytest.raises(fake_ec2.ApiError) as e:
            decoder.decode(op, pairs)
        return e.value.code, e.value.message

    assert code(ok + [("Bogus", "1")]) == ("UnknownParameter", "The parameter Bogus is not recognized")
    assert code(ok + [("TagSpecification.1.Tag.1.Colour", "x")])[0] == "UnknownParameter"
    assert code([("MinCount", "1")]) == ("MissingParameter", "The request must contain the parameter MaxCount")
    assert code(ok + [("MinCount", "1")])[0] == "InvalidParameterValue"  # given twice
    assert code([("MinCount", "one"), ("MaxCount", "1")])[0] == "InvalidParameterValue"
    assert code(ok + [("DryRun", "yes")])[0] == "InvalidParameterValue"
    assert code(ok + [("InstanceType", "m5.huge")]) == ("InvalidParameterValue", "Invalid value 'm5.huge' for InstanceType")
    assert code(ok + [("SecurityGroupId", "sg-1")])[0] == "UnknownParameter"       # list without .N
    assert code(ok + [("SecurityGroupId.0", "sg-1")])[0] == "UnknownParameter"     # lists count from 1
    assert code(ok + [("SecurityGroupIds.1", "sg-1")])[0] == "UnknownParameter"    # member name, not locationName
    assert code(ok + [("Monitoring.Enabled", "true"), ("Monitoring", "x")])[0] == "UnknownParameter"
    assert code(ok + [("Monitoring.Foo", "true")])[0] == "UnknownParameter"
    assert code(ok + [("BlockDeviceMapping.1.Ebs.VolumeSize", "10GB")])[0] == "InvalidParameterValue"
    assert code(ok + [("InstanceMarketOptions.SpotOptions.ValidUntil", "tomorrow")])[0] == "InvalidParameterValue"
    assert code(ok + [("Monitoring.Foo", "1")])[0] == "UnknownParameter"
    assert code(ok + [("Monitoring.Enabled", "true"), ("ElasticGpuSpecification.1.Foo", "x")])[0] == "UnknownParameter"
    assert code([("MinCount", "1"), ("MaxCount", "1"), ("Monitoring.Enabled", "")])[0] == "InvalidParameterValue"
    # required members of nested structures
    assert code(ok + [("ElasticGpuSpecification.1.Type", "eg1.medium"), ("ElasticGpuSpecification.2.Foo", "x")])[0] \
        == "UnknownParameter"
    assert code(ok + [("CreditSpecification.Foo", "x")])[0] == "UnknownParameter"
    mapped = decoder.decode(run, ok + [("TagSpecification.1.ResourceType", "instance"),
                                       ("TagSpecification.1.Tag.2.Key", "b"), ("TagSpecification.1.Tag.1.Key", "a"),
                                       ("TagSpecification.1.Tag.1.Value", ""),
                                       ("InstanceMarketOptions.SpotOptions.ValidUntil", "2024-01-02T03:04:05.123Z"),
                                       ("UserData", "IyEvYmluL3No")])
    assert mapped["TagSpecifications"] == [{"ResourceType": "instance", "Tags": [{"Key": "a", "Value": ""}, {"Key": "b"}]}]
    assert mapped["InstanceMarketOptions"]["SpotOptions"]["ValidUntil"] == datetime.datetime(
        2024, 1, 2, 3, 4, 5, 123000, tzinfo=datetime.timezone.utc)
    describe = model.operation_model("DescribeVpcs")
    assert code([("MaxResults", "4")], describe)[0] == "InvalidParameterValue"  # model: min 5
    blob = model.operation_model("ImportKeyPair")
    assert code([("KeyName", "k"), ("PublicKeyMaterial", "not base64!")], blob)[0] == "InvalidParameterValue"


# ------------------------------------------------------- the full lifecycle

def test_full_lifecycle_covers_every_action(srv):
    ec2 = client(srv)
    ec2.describe_vpcs()  # nothing yet, and no error
    vpc, subnet, igw, sg = network(ec2)
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
    rtb = ec2.create_route_table(VpcId=vpc, TagSpecifications=spec("route-table"))["RouteTable"]["RouteTableId"]
    assert ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)["Return"] is True
    assoc = ec2.associate_route_table(RouteTableId=rtb, SubnetId=subnet)["AssociationId"]
    assert assoc.startswith("rtbassoc-")
    rules = ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "ssh"}]},
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": sg}]}])["SecurityGroupRules"]
    assert len(rules) == 2 and rules[0]["SecurityGroupRuleId"].startswith("sgr-")
    ec2.authorize_security_group_ingress(GroupId=sg, IpProtocol="tcp", FromPort=443, ToPort=443, CidrIp="10.1.0.0/16")
    key = ec2.import_key_pair(KeyName="c1-key", PublicKeyMaterial=SSH_KEY.encode(),
                              TagSpecifications=spec("key-pair"))
    assert key["KeyPairId"].startswith("key-") and key["KeyFingerprint"]

    image = ubuntu(ec2)
    assert image == "ami-0c1f0a2b3c4d50003"  # newest Canonical jammy amd64 server, not the traps
    reservation = ec2.run_instances(
        ImageId=image, InstanceType="m5.xlarge", MinCount=2, MaxCount=2, KeyName="c1-key", SubnetId=subnet,
        SecurityGroupIds=[sg], UserData="#cloud-config\nruncmd: [echo hi]\n", ClientToken="c1-g1-master",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 50, "VolumeType": "gp3"}},
                             {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 200, "VolumeType": "gp3",
                                                                "DeleteOnTermination": True}},
                             {"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 100, "DeleteOnTermination": False}}],
        TagSpecifications=spec("instance") + spec("volume"))
    assert reservation["ReservationId"].startswith("r-")
    ids = [i["InstanceId"] for i in reservation["Instances"]]
    assert len(ids) == 2 and all(len(i) == 19 and i.startswith("i-") for i in ids)
    assert {i["State"]["Name"] for i in reservation["Instances"]} == {"pending"}
    first = reservation["Instances"][0]
    assert first["PrivateIpAddress"] == "10.0.1.4" and first["PublicIpAddress"]  # subnet maps public IPs
    assert {t["Key"]: t["Value"] for t in first["Tags"]}["dexter:cluster"] == "c1"

    found = ec2.describe_instances(Filters=[{"Name": "tag:dexter:cluster", "Values": ["c1"]},
                                            {"Name": "instance-state-name", "Values": ["pending", "running"]},
                                            {"Name": "vpc-id", "Values": [vpc]}])
    assert sorted(i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]) == sorted(ids)
    assert {i["State"]["Name"] for r in found["Reservations"] for i in r["Instances"]} == {"running"}
    state = admin(srv, "state")
    assert state["instances"][0]["user_data"].startswith("#cloud-config")
    volumes = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [ids[0]]}])["Volumes"]
    assert sorted((v["Size"], v["VolumeType"]) for v in volumes) == [(50, "gp3"), (100, "gp2"), (200, "gp3")]
    assert all(v["VolumeId"].startswith("vol-") for v in volumes)

    eip = ec2.allocate_address(Domain="vpc", TagSpecifications=spec("elastic-ip"))
    assert eip["AllocationId"].startswith("eipalloc-")
    association = ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=ids[0])["AssociationId"]
    assert association.startswith("eipassoc-")
    described = ec2.describe_addresses(Filters=[{"Name": "tag:dexter:cluster", "Values": ["c1"]}])["Addresses"]
    assert described[0]["InstanceId"] == ids[0] and described[0]["AssociationId"] == association
    inst = ec2.describe_instances(InstanceIds=[ids[0]])["Reservations"][0]["Instances"][0]
    assert inst["PublicIpAddress"] == eip["PublicIp"]

    ec2.create_tags(Resources=[ids[0], vpc], Tags=[{"Key": "extra", "Value": "1"}])
    described_tags = ec2.describe_tags(Filters=[{"Name": "key", "Values": ["extra"]}])["Tags"]
    assert sorted(t["ResourceId"] for t in described_tags) == sorted([ids[0], vpc])
    ec2.delete_tags(Resources=[vpc], Tags=[{"Key": "extra"}])
    assert [t["ResourceId"] for t in ec2.describe_tags(Filters=[{"Name": "key", "Values": ["extra"]}])["Tags"]] == [ids[0]]

    for call, field in ((ec2.describe_vpcs, "Vpcs"), (ec2.describe_subnets, "Subnets"),
                        (ec2.describe_internet_gateways, "InternetGateways"),
                        (ec2.describe_route_tables, "RouteTables"), (ec2.describe_security_groups, "SecurityGroups"),
                        (ec2.describe_key_pairs, "KeyPairs")):
        got = call(Filters=[{"Name": "tag:dexter:cluster", "Values": ["c1"]}])[field]
        assert len(got) == 1, field
    groups = ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"][0]
    assert {(p["IpProtocol"], p.get("FromPort")) for p in groups["IpPermissions"]} == {("tcp", 22), ("-1", None), ("tcp", 443)}
    routes = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]["Routes"]
    assert [r.get("GatewayId") for r in routes] == ["local", igw]

    # Destroy in reverse dependency order, as the worker must.
    ec2.disassociate_address(AssociationId=association)
    ec2.release_address(AllocationId=eip["AllocationId"])
    changes = ec2.terminate_instances(InstanceIds=ids)["TerminatingInstances"]
    assert {c["CurrentState"]["Name"] for c in changes} == {"shutting-down"}
    gone = ec2.describe_instances(InstanceIds=ids)["Reservations"][0]["Instances"]
    assert {i["State"]["Name"] for i in gone} == {"terminated"}
    left = ec2.describe_volumes(Filters=[{"Name": "tag:dexter:cluster", "Values": ["c1"]}])["Volumes"]
    assert [(v["Size"], v["State"]) for v in left] == [(100, "available"), (100, "available")]
    ec2.delete_security_group(GroupId=sg)
    ec2.disassociate_route_table(AssociationId=assoc)
    ec2.delete_route_table(RouteTableId=rtb)
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ec2.delete_internet_gateway(InternetGatewayId=igw)
    ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc)
    ec2.delete_key_pair(KeyName="c1-key")
    assert ec2.describe_vpcs()["Vpcs"] == [] and ec2.describe_key_pairs()["KeyPairs"] == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_vpcs(VpcIds=[vpc])
    assert error_code(e) == "InvalidVpcID.NotFound"

    calls = admin(srv, "calls")
    assert set(fake_ec2.HANDLERS) <= set(calls["by_action_ok"]), set(fake_ec2.HANDLERS) - set(calls["by_action_ok"])
    assert calls["by_error_code"] == {"InvalidVpcID.NotFound": 1}


def test_responses_are_ec2_shaped_xml(srv):
    status, code, root = raw(srv, {"Action": "DescribeVpcs", "Version": "2016-11-15"})
    assert status == 200 and code is None
    assert root.tag == "{http://ec2.amazonaws.com/doc/2016-11-15/}DescribeVpcsResponse"
    ns = {"e": "http://ec2.amazonaws.com/doc/2016-11-15/"}
    assert root.find("e:requestId", ns).text and root.find("e:vpcSet", ns) is not None
    status, code, root = raw(srv, {"Action": "CreateVpc", "Version": "2016-11-15", "CidrBlock": "10.9.0.0/16",
                                   "TagSpecification.1.ResourceType": "vpc",
                                   "TagSpecification.1.Tag.1.Key": "dexter:cluster",
                                   "TagSpecification.1.Tag.1.Value": "raw"})
    assert status == 200
    item = root.find("e:vpc/e:tagSet/e:item", ns)
    assert item.find("e:key", ns).text == "dexter:cluster" and item.find("e:value", ns).text == "raw"
    assert root.find("e:vpc/e:vpcId", ns).text.startswith("vpc-")
    status, code, root = raw(srv, {"Action": "DeleteVpc", "Version": "2016-11-15", "VpcId": "vpc-0123456789abcdef0"})
    assert (status, code) == (400, "InvalidVpcID.NotFound")
    assert root.tag == "Response" and root.find("RequestID").text
    assert error_message(root) == "The vpc ID 'vpc-0123456789abcdef0' does not exist"


# ------------------------------------------------------- idempotency

def test_client_token_idempotency(srv):
    ec2 = client(srv)
    vpc, subnet, igw, sg = network(ec2)
    first = run(ec2, subnet, sg, "c1-g1-worker-0001", count=3)
    again = run(ec2, subnet, sg, "c1-g1-worker-0001", count=3)
    assert again["ReservationId"] == first["ReservationId"]
    assert [i["InstanceId"] for i in again["Instances"]] == [i["InstanceId"] for i in first["Instances"]]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        run(ec2, subnet, sg, "c1-g1-worker-0001", count=2)
    assert error_code(e) == "IdempotentParameterMismatch"
    assert len(admin(srv, "state")["instances"]) == 3
    calls = admin(srv, "calls")
    assert calls["by_action"]["RunInstances"] == 3 and calls["by_action_ok"]["RunInstances"] == 2
    assert [c["client_token"] for c in calls["log"] if c["action"] == "RunInstances"] == ["c1-g1-worker-0001"] * 3

    # The answer is lost after the instances were created: a retry with the
    # same token must not create more.
    srv.fake.inject("RunInstances", "InternalError", after=True)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        run(ec2, subnet, sg, "c1-g1-worker-0002")
    assert (error_code(e), http_status(e)) == ("InternalError", 500)
    assert len(admin(srv, "state")["instances"]) == 4
    retried = run(ec2, subnet, sg, "c1-g1-worker-0002")
    assert len(admin(srv, "state")["instances"]) == 4
    assert admin(srv, "state")["client_tokens"]["c1-g1-worker-0002"] == retried["ReservationId"]

    # botocore's own retry (standard mode) with its auto-generated token.
    srv.fake.inject("RunInstances", "InternalError", after=True)
    retrying = client(srv, config=botocore.config.Config(retries={"max_attempts": 3, "mode": "standard"}))
    retrying.run_instances(ImageId=ubuntu(ec2), InstanceType="t3.medium", MinCount=1, MaxCount=1, SubnetId=subnet)
    assert len(admin(srv, "state")["instances"]) == 5


def test_concurrent_runs_with_one_token_make_one_reservation(srv):
    ec2 = client(srv)
    vpc, subnet, igw, sg = network(ec2)
    image = ubuntu(ec2)
    results, errors = [], []

    def launch(token):
        try:
            c = client(srv)
            results.append(c.run_instances(ImageId=image, InstanceType="t3.large", MinCount=1, MaxCount=1,
                                           SubnetId=subnet, SecurityGroupIds=[sg], ClientToken=token)["ReservationId"])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=launch, args=("same",)) for _ in range(8)]
    threads += [threading.Thread(target=launch, args=("tok-%d" % n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len(results) == 16 and len(set(results)) == 9
    assert len(admin(srv, "state")["instances"]) == 9


# ------------------------------------------------------- AWS's rules

def test_dependency_violations_and_state_rules(srv):
    ec2 = client(srv)
    srv.fake.set_config(pending_ms=60_000, shutdown_ms=10_000)
    vpc, subnet, igw, sg = network(ec2)
    other_sg = ec2.create_security_group(GroupName="peer", Description="peer", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=other_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5050, "ToPort": 5050, "UserIdGroupPairs": [{"GroupId": sg}]}])
    iid = run(ec2, subnet, sg, "dep-1")["Instances"][0]["InstanceId"]
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]

    def fails(code, fn, **kw):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            fn(**kw)
        assert error_code(e) == code, e.value.response["Error"]
        return e.value.response["Error"]["Message"]

    assert fails("DependencyViolation", ec2.delete_vpc, VpcId=vpc) == \
        "The vpc '%s' has dependencies and cannot be deleted." % vpc
    fails("DependencyViolation", ec2.delete_subnet, SubnetId=subnet)
    fails("DependencyViolation", ec2.delete_security_group, GroupId=sg)
    fails("DependencyViolation", ec2.delete_internet_gateway, InternetGatewayId=igw)
    default_sg = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                       {"Name": "group-name", "Values": ["default"]}])
    fails("CannotDelete", ec2.delete_security_group, GroupId=default_sg["SecurityGroups"][0]["GroupId"])
    fails("InvalidGroup.NotFound", ec2.delete_security_group, GroupName="c1-sg")  # names: default VPC only
    fails("InvalidGroup.Duplicate", ec2.create_security_group, GroupName="c1-sg", Description="x", VpcId=vpc)
    fails("IncorrectInstanceState", ec2.associate_address, AllocationId=eip, InstanceId=iid)  # still pending
    srv.fake.advance(61)
    assoc = ec2.associate_address(AllocationId=eip, InstanceId=iid)["AssociationId"]
    fails("DependencyViolation", ec2.detach_internet_gateway, InternetGatewayId=igw, VpcId=vpc)
    fails("InvalidIPAddress.InUse", ec2.release_address, AllocationId=eip)
    fails("InvalidPermission.Duplicate", ec2.authorize_security_group_ingress, GroupId=other_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5050, "ToPort": 5050, "UserIdGroupPairs": [{"GroupId": sg}]}])
    fails("InvalidSubnet.Conflict", ec2.create_subnet, VpcId=vpc, CidrBlock="10.0.1.128/25")
    fails("InvalidSubnet.Range", ec2.create_subnet, VpcId=vpc, CidrBlock="10.1.0.0/24")
    fails("InvalidParameterCombination", ec2.modify_vpc_attribute, VpcId=vpc, EnableDnsSupport={"Value": True},
          EnableDnsHostnames={"Value": True})

    ec2.terminate_instances(InstanceIds=[iid])
    shutting = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert shutting["State"] == {"Code": 32, "Name": "shutting-down"}
    fails("DependencyViolation", ec2.delete_security_group, GroupId=sg)  # shutting-down still uses it
    srv.fake.advance(11)
    terminated = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert terminated["State"] == {"Code": 48, "Name": "terminated"}
    assert "VpcId" not in terminated and terminated["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
    assert ec2.describe_addresses(AllocationIds=[eip])["Addresses"][0].get("AssociationId") is None
    fails("InvalidAssociationID.NotFound", ec2.disassociate_address, AssociationId=assoc)
    fails("DependencyViolation", ec2.delete_security_group, GroupId=sg)  # other_sg's rule refers to it
    ec2.delete_security_group(GroupId=other_sg)
    ec2.delete_security_group(GroupId=sg)
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    fails("Gateway.NotAttached", ec2.detach_internet_gateway, InternetGatewayId=igw, VpcId=vpc)
    fails("DependencyViolation", ec2.delete_vpc, VpcId=vpc)  # the subnet is still there
    ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_internet_gateway(InternetGatewayId=igw)
    ec2.release_address(AllocationId=eip)
    ec2.delete_vpc(VpcId=vpc)
    # Terminated instances stay visible (as terminated) for a while, then vanish.
    assert ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["terminated"]}])["Reservations"]
    srv.fake.advance(3601)
    assert ec2.describe_instances()["Reservations"] == []
    fails("InvalidInstanceID.NotFound", ec2.describe_instances, InstanceIds=[iid])


def test_instances_go_pending_then_running_by_the_clock(srv):
    ec2 = client(srv)
    srv.fake.set_config(pending_ms=800)
    vpc, subnet, igw, sg = network(ec2)
    launched = time.monotonic()
    iid = run(ec2, subnet, sg, "clock-1")["Instances"][0]["InstanceId"]

    def state():
        return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]

    first = state()
    assert first == "pending" or time.monotonic() - launched >= 0.8
    deadline = launched + 10
    while state() != "running":
        assert time.monotonic() < deadline, "never became running"
        time.sleep(0.05)
    assert time.monotonic() - launched >= 0.8
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 2})


def test_run_instances_checks(srv):
    ec2 = client(srv)
    vpc, subnet, igw, sg = network(ec2)
    other_vpc = ec2.create_vpc(CidrBlock="10.5.0.0/16")["Vpc"]["VpcId"]
    foreign_sg = ec2.create_security_group(GroupName="x", Description="x", VpcId=other_vpc)["GroupId"]
    image = ubuntu(ec2)
    base = dict(ImageId=image, InstanceType="m5.large", MinCount=1, MaxCount=1, SubnetId=subnet)

    def fails(code, **kw):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec2.run_instances(**dict(base, **kw))
        assert error_code(e) == code, e.value.response["Error"]
        return e.value.response["Error"]["Message"]

    assert fails("InvalidParameterValue", InstanceType="cc2.8xlarge") == "Invalid value 'cc2.8xlarge' for InstanceType"
    assert "architecture" in fails("InvalidParameterValue", InstanceType="m6g.large")
    fails("InvalidAMIID.NotFound", ImageId="ami-0123456789abcdef0")
    fails("InvalidAMIID.Malformed", ImageId="ami-xyz")
    fails("InvalidKeyPair.NotFound", KeyName="nope")
    fails("InvalidSubnetID.NotFound", SubnetId="subnet-0123456789abcdef0")
    fails("InvalidParameterValue", SecurityGroupIds=[foreign_sg])
    fails("InvalidParameterValue", MinCount=3, MaxCount=2)
    fails("InvalidParameterValue", TagSpecifications=spec("vpc"))
    fails("InvalidParameterValue", TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "aws:x", "Value": "1"}]}])
    fails("InvalidBlockDeviceMapping", BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1}},
                                                            {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 2}}])
    fails("InvalidParameterValue", BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 4}}])
    fails("InvalidParameterValue", BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 10,
                                                                                           "VolumeType": "io1"}}])
    fails("InvalidParameterCombination", NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet}])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.run_instances(ImageId=image, InstanceType="m5.large", MinCount=1, MaxCount=1)
    assert error_code(e) == "VPCIdNotSpecified"  # no default VPC in this account
    srv.fake.set_config(instance_limit=2)
    fails("InstanceLimitExceeded", MinCount=3, MaxCount=3)
    partial = ec2.run_instances(**dict(base, MinCount=1, MaxCount=5))
    assert len(partial["Instances"]) == 2  # as many as the limit allows
    default_sg = [g["id"] for g in admin(srv, "state")["security_groups"] if g["vpc_id"] == vpc and g["name"] == "default"]
    assert admin(srv, "state")["instances"][0]["sg_ids"] == default_sg  # the VPC's default group when none given


def test_network_interface_launch_and_dry_run(srv):
    ec2 = client(srv)
    vpc, subnet, igw, sg = network(ec2)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.run_instances(ImageId=ubuntu(ec2), InstanceType="t3.micro", MinCount=1, MaxCount=1, DryRun=True,
                          SubnetId=subnet)
    assert (error_code(e), http_status(e)) == ("DryRunOperation", 412)
    r = ec2.run_instances(ImageId=ubuntu(ec2), InstanceType="t3.micro", MinCount=1, MaxCount=1,
                          NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet, "Groups": [sg],
                                              "AssociatePublicIpAddress": True}])
    inst = r["Instances"][0]
    assert inst["PublicIpAddress"] and inst["SecurityGroups"] == [{"GroupName": "c1-sg", "GroupId": sg}]
    assert len(admin(srv, "state")["instances"]) == 1  # the dry run created nothing


def test_instance_metadata_tags(srv):
    """MetadataOptions.InstanceMetadataTags is kept and answered; with it,
    tag keys are the ones instance metadata can serve; 50 tags at most."""
    ec2 = client(srv)
    vpc, subnet, igw, sg = network(ec2)
    plain = run(ec2, subnet, sg, "plain")["Instances"][0]["InstanceId"]
    on = run(ec2, subnet, sg, "imds", MetadataOptions={"InstanceMetadataTags": "enabled"})
    on = on["Instances"][0]["InstanceId"]
    got = {i["InstanceId"]: i["MetadataOptions"]["InstanceMetadataTags"]
           for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    assert got == {plain: "disabled", on: "enabled"}
    ec2.create_tags(Resources=[on], Tags=[{"Key": "dexter:crl", "Value": "2:1"},
                                          {"Key": "dexter:crl.0", "Value": "A" * 256}])
    ec2.create_tags(Resources=[plain], Tags=[{"Key": "a/b c", "Value": "x"}])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_tags(Resources=[on], Tags=[{"Key": "a/b", "Value": "x"}])
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_tags(Resources=[on], Tags=[{"Key": "k%d" % n, "Value": "x"} for n in range(45)])
    assert error_code(e) == "TagLimitExceeded"
    tags = {t["Key"]: t["Value"] for t in ec2.describe_tags(
        Filters=[{"Name": "resource-id", "Values": [on]}])["Tags"]}
    assert tags["dexter:crl"] == "2:1" and len(tags) == 6


def test_limits(srv):
    ec2 = client(srv)
    for n in range(5):
        ec2.create_vpc(CidrBlock="10.%d.0.0/16" % n)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_vpc(CidrBlock="10.9.0.0/16")
    assert error_code(e) == "VpcLimitExceeded"
    for n in range(5):
        ec2.allocate_address(Domain="vpc")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.allocate_address(Domain="vpc")
    assert error_code(e) == "AddressLimitExceeded"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_vpc(CidrBlock="10.0.0.0/8")
    assert error_code(e) in ("InvalidVpc.Range", "VpcLimitExceeded")


# ------------------------------------------------------- filters and pages

def test_filters_and_pagination(srv):
    ec2 = client(srv)
    srv.fake.set_config(vpc_limit=20)
    for n in range(12):
        ec2.create_vpc(CidrBlock="10.%d.0.0/16" % n, TagSpecifications=spec("vpc", cluster="c%d" % (n % 3)))
    page = ec2.describe_vpcs(MaxResults=5)
    assert len(page["Vpcs"]) == 5 and page["NextToken"]
    everything = [v["VpcId"] for p in ec2.get_paginator("describe_vpcs").paginate(PaginationConfig={"PageSize": 5})
                  for v in p["Vpcs"]]
    assert len(everything) == len(set(everything)) == 12
    assert len(ec2.describe_vpcs(Filters=[{"Name": "tag:dexter:cluster", "Values": ["c1", "c2"]}])["Vpcs"]) == 8
    assert len(ec2.describe_vpcs(Filters=[{"Name": "tag:dexter:cluster", "Values": ["c*"]},
                                          {"Name": "cidr", "Values": ["10.1?.0.0/16"]}])["Vpcs"]) == 2
    assert len(ec2.describe_vpcs(Filters=[{"Name": "tag-key", "Values": ["dexter:role"]}])["Vpcs"]) == 12
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_vpcs(Filters=[{"Name": "colour", "Values": ["red"]}])
    assert error_code(e) == "InvalidParameterValue" and "colour" in e.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_vpcs(MaxResults=5, NextToken="garbage")
    assert error_code(e) == "InvalidPaginationToken"

    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["CidrBlock"]
                               .replace("0.0/16", "0.0/24"))["Subnet"]["SubnetId"]
    ec2.run_instances(ImageId=ubuntu(ec2), InstanceType="c5.large", MinCount=7, MaxCount=7, SubnetId=subnet)
    pages = list(ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 5}))
    assert [sum(len(r["Instances"]) for r in p["Reservations"]) for p in pages] == [5, 2]
    status, code, _ = raw(srv, {"Action": "DescribeInstances", "Version": "2016-11-15", "MaxResults": "2"})
    assert (status, code) == (400, "InvalidParameterValue")
    status, code, _ = raw(srv, {"Action": "DescribeVpcs", "Version": "2016-11-15", "MaxResults": "4"})
    assert (status, code) == (400, "InvalidParameterValue")  # the model's minimum


def test_describe_images_picks_newest_canonical(srv):
    ec2 = client(srv)
    everything = ec2.describe_images()["Images"]
    assert len(everything) == len(fake_ec2.SEED_IMAGES)
    canonical = ec2.describe_images(Owners=["099720109477"])["Images"]
    assert {i["OwnerId"] for i in canonical} == {"099720109477"}
    amazon = ec2.describe_images(Owners=["amazon"])["Images"]
    assert [i["ImageOwnerAlias"] for i in amazon] == ["amazon"]
    arm = ec2.describe_images(Owners=["099720109477"], Filters=[{"Name": "architecture", "Values": ["arm64"]}])
    assert [i["Name"] for i in arm["Images"]] == ["ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-20231207"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_images(ImageIds=["ami-0000000000000dead"])
    assert error_code(e) == "InvalidAMIID.NotFound"


# ------------------------------------------------------- authentication

def test_signature_failures(srv):
    ec2 = client(srv, secret="wrong-secret")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_vpcs()
    assert (error_code(e), http_status(e)) == ("SignatureDoesNotMatch", 403)
    ec2 = client(srv, key="AKIDUNKNOWN000000000", secret=SECRET)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_vpcs()
    assert (error_code(e), http_status(e)) == ("AuthFailure", 401)
    assert e.value.response["Error"]["Message"] == "AWS was not able to validate the provided access credentials"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client(srv, region="eu-west-1").describe_vpcs()
    assert error_code(e) == "SignatureDoesNotMatch"

    params = {"Action": "DescribeVpcs", "Version": "2016-11-15"}
    assert raw(srv, params)[:2] == (200, None)
    assert raw(srv, params, key=None)[:2] == (401, "MissingAuthenticationToken")
    old = datetime.datetime.utcnow() - datetime.timedelta(minutes=16)
    assert raw(srv, params, when=old)[:2] == (403, "RequestExpired")
    assert raw(srv, params, when=datetime.datetime.utcnow() - datetime.timedelta(minutes=14))[:2] == (200, None)
    tampered = urllib.parse.urlencode(dict(params, Action="DescribeSubnets")).encode()
    assert raw(srv, params, body_after_signing=tampered)[:2] == (403, "SignatureDoesNotMatch")
    # Extra signed headers count; a signed header that does not arrive breaks the signature.
    assert raw(srv, params, headers={"X-Dexter-Trace": "abc"})[:2] == (200, None)
    assert raw(srv, params, headers={"X-Dexter-Trace": "abc"}, drop_header="X-Dexter-Trace")[:2] == \
        (403, "SignatureDoesNotMatch")
    # Chunked bodies (no Content-Length) are read and verified like any other.
    body = urllib.parse.urlencode(params).encode()
    req = botocore.awsrequest.AWSRequest(method="POST", url=srv.endpoint_url + "/", data=body,
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    sign(req, KEY, SECRET)
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("POST", "/", body=iter([body[:7], body[7:]]), encode_chunked=True,
                 headers={k: v for k, v in req.prepare().headers.items() if k != "Content-Length"})
    assert conn.getresponse().status == 200
    conn.close()

    # Session tokens: required iff the key was configured with one.
    assert client(srv, TMP_KEY, TMP_SECRET, TMP_TOKEN).describe_vpcs()["Vpcs"] == []
    for token in (None, "some-other-token"):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            client(srv, TMP_KEY, TMP_SECRET, token).describe_vpcs()
        assert error_code(e) == "AuthFailure"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client(srv, KEY, SECRET, "unexpected-token").describe_vpcs()
    assert error_code(e) == "AuthFailure"
    calls = admin(srv, "calls")
    assert calls["by_error_code"]["SignatureDoesNotMatch"] == 4 and calls["by_error_code"]["AuthFailure"] == 4


def test_hand_made_requests_judged_by_the_model(srv):
    v = {"Version": "2016-11-15"}
    cases = [
        ({"Action": "DescribeVpcs", "Colour": "red"}, "UnknownParameter", "The parameter Colour is not recognized"),
        ({"Action": "DescribeInstances", "InstanceId": "i-0123456789abcdef0"}, "UnknownParameter", None),
        ({"Action": "RunInstances", "ImageId": "ami-0c1f0a2b3c4d50003", "MinCount": "1"}, "MissingParameter",
         "The request must contain the parameter MaxCount"),
        ({"Action": "RunInstances", "MinCount": "one", "MaxCount": "1"}, "InvalidParameterValue", None),
        ({"Action": "DescribeVpcs", "DryRun": "yes"}, "InvalidParameterValue", None),
        ({"Action": "AllocateAddress", "Domain": "cloud"}, "InvalidParameterValue", "Invalid value 'cloud' for Domain"),
        ({"Action": "CreateVpc", "CidrBlock": "10.0.0.0/16", "TagSpecification.1.ResourceType": "spaceship"},
         "InvalidParameterValue", None),
        ({"Action": "CreateTags", "ResourceId.1": "vpc-0123456789abcdef0"}, "MissingParameter", None),
        ({"Action": "LaunchRocket"}, "InvalidAction", "The action LaunchRocket is not valid for this web service."),
    ]
    for params, code, message in cases:
        status, got, root = raw(srv, dict(v, **params))
        assert (status, got) == (400, code), (params, error_message(root))
        if message:
            assert error_message(root) == message
    assert raw(srv, {"Action": "DescribeVpcs", "Version": "2015-10-01"})[:2] == (400, "NoSuchVersion")
    assert raw(srv, {"Action": "DescribeVpcs"})[:2] == (400, "MissingParameter")
    assert raw(srv, {"Version": "2016-11-15"})[:2] == (400, "MissingAction")
    # In the model but not in the fake: say so rather than pretend.
    assert raw(srv, dict(v, Action="DescribeNatGateways"))[:2] == (400, "UnsupportedOperation")
    # Lists are sent with their locationName, capitalised: DescribeInternetGateways uses
    # InternetGatewayId.N, DescribeSecurityGroups GroupId.N, DeleteTags ResourceId.N and Tag.N.
    assert raw(srv, dict(v, Action="DescribeInternetGateways", **{"InternetGatewayId.1": "igw-0123456789abcdef0"}))[1] \
        == "InvalidInternetGatewayID.NotFound"
    assert raw(srv, dict(v, Action="DescribeInternetGateways", **{"InternetGatewayIds.1": "igw-0123456789abcdef0"}))[1] \
        == "UnknownParameter"


# ------------------------------------------------------- faults

def test_throttling_and_errors_reach_botocore(srv):
    ec2 = client(srv)
    srv.fake.set_config(throttle_rate=1.0)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_vpcs()
    assert (error_code(e), http_status(e)) == ("RequestLimitExceeded", 503)
    admin(srv, "config", {"throttle_rate": 0.0, "error_rate": 1.0})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_vpc(CidrBlock="10.0.0.0/16")
    assert (error_code(e), http_status(e)) == ("InternalError", 500)
    assert admin(srv, "state")["vpcs"] == []  # a failed call changes nothing
    admin(srv, "config", {"error_rate": 0.0})
    assert ec2.describe_vpcs()["Vpcs"] == []

    # Scripted: one throttle, which botocore's standard retry absorbs.
    admin(srv, "faults", {"action": "DescribeVpcs", "code": "RequestLimitExceeded", "count": 1})
    retrying = client(srv, config=botocore.config.Config(retries={"max_attempts": 3, "mode": "standard"}))
    assert retrying.describe_vpcs()["Vpcs"] == []
    calls = admin(srv, "calls")
    assert calls["by_error_code"]["RequestLimitExceeded"] == 2 and calls["by_action"]["DescribeVpcs"] == 4


def test_latency_and_seeded_faults_are_deterministic():
    def outcomes(seed):
        with fake_ec2.FakeEc2Server(credentials=CREDS, seed=seed, throttle_rate=0.3, error_rate=0.3) as s:
            ec2 = client(s)
            out = []
            for _ in range(20):
                try:
                    ec2.describe_vpcs()
                    out.append("ok")
                except botocore.exceptions.ClientError as e:
                    out.append(e.response["Error"]["Code"])
            return out

    first = outcomes(42)
    assert first == outcomes(42)
    assert {"ok", "RequestLimitExceeded", "InternalError"} <= set(first)
    assert first != outcomes(43)
    with fake_ec2.FakeEc2Server(credentials=CREDS, latency_ms=150) as s:
        ec2 = client(s)
        start = time.monotonic()
        ec2.describe_vpcs()
        assert time.monotonic() - start >= 0.15
        s.fake.set_config(latency_ms=0)


# ------------------------------------------------------- EC2's token buckets

# Refill rates this slow make a test independent of how long its calls take:
# only /_fake/advance (the fake's clock) refills.
SLOW = 0.0001


def limited(srv, **figures):
    """Turns EC2's buckets on; the figures not given keep AWS's capacities
    and refill (almost) never."""
    cfg = {"ec2_limits": True, "run_request_rate": SLOW, "run_resource_rate": SLOW,
           "terminate_request_rate": SLOW, "terminate_resource_rate": SLOW}
    cfg.update(figures)
    return admin(srv, "config", cfg)


def launch(ec2, subnet, sg, low, high, token=None, **kw):
    """RunInstances with MinCount low, MaxCount high; the instances' IDs."""
    extra = {"ClientToken": token} if token else {}
    r = ec2.run_instances(ImageId=ubuntu(ec2), InstanceType="m5.large", MinCount=low, MaxCount=high,
                          SubnetId=subnet, SecurityGroupIds=[sg], **extra, **kw)
    return [i["InstanceId"] for i in r["Instances"]]


def refused(fn, code="RequestLimitExceeded"):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn()
    assert error_code(e) == code, e.value.response["Error"]
    return e


def test_buckets_are_aws_figures_and_on_unless_turned_off():
    fake = fake_ec2.FakeEc2(credentials=CREDS)
    assert {k: v for k, v in fake.config.items() if k.startswith(("run_", "terminate_"))} == {
        "run_request_burst": 5, "run_request_rate": 2.0, "run_resource_burst": 1000, "run_resource_rate": 2.0,
        "terminate_request_burst": 100, "terminate_request_rate": 5.0,
        "terminate_resource_burst": 1000, "terminate_resource_rate": 20.0}
    assert fake.config["ec2_limits"] is True


def test_run_instances_request_bucket(srv):
    ec2 = client(srv)
    vpc, subnet, igw, sg = network(ec2)
    image = ubuntu(ec2)
    limited(srv)
    for n in range(5):                                   # the burst
        launch(ec2, subnet, sg, 1, 1)
    e = refused(lambda: launch(ec2, subnet, sg, 1, 1))   # the sixth: no request token
    assert http_status(e) == 503
    # a refused call takes nothing and launches nothing; a call the model refuses still takes its token
    assert len(admin(srv, "state")["instances"]) == 5
    srv.fake.advance(1 / SLOW)                           # one token back
    refused(lambda: ec2.run_instances(ImageId=image, InstanceType="m9.huge", MinCount=1, MaxCount=1,
                                      SubnetId=subnet), "InvalidParameterValue")
    refused(lambda: launch(ec2, subnet, sg, 1, 1))
    srv.fake.advance(1 / SLOW)
    launch(ec2, subnet, sg, 1, 1)
    # other actions have no bucket here
    for _ in range(20):
        ec2.describe_instances()
    b = admin(srv, "buckets")
    assert b["enabled"] is True and b["refused"] == {"RunInstances request": 2}
    run = b["buckets"]["%s/%s RunInstances request" % (fake_ec2.DEFAULT_ACCOUNT, REGION)]
    assert run["burst"] == 5 and run["tokens"] < 1
    # 6 launched, 2 refilled by the clock's 2 steps
    assert b["buckets"]["%s/%s RunInstances resource" % (fake_ec2.DEFAULT_ACCOUNT, REGION)]["tokens"] == \
        pytest.approx(1000 - 6 + 2, abs=0.01)
    calls = admin(srv, "calls")
    assert calls["by_error_code"]["RequestLimitExceeded"] == 2 and calls["by_action_ok"]["RunInstances"] == 6


def test_buckets_are_per_region_and_off_switch():
    with fake_ec2.FakeEc2Server(credentials=CREDS, region="any", pending_ms=0, ec2_limits=True,
                                run_request_burst=1, run_request_rate=SLOW) as s:
        ec2 = client(s)
        vpc, subnet, igw, sg = network(ec2)
        launch(ec2, subnet, sg, 1, 1)
        refused(lambda: launch(ec2, subnet, sg, 1, 1))
        # another region's bucket is full (the fake keeps one state for all regions)
        launch(client(s, region="eu-west-1"), subnet, sg, 1, 1)
        s.fake.set_config(ec2_limits=False)
        for _ in range(3):
            launch(ec2, subnet, sg, 1, 1)
        s.fake.set_config(ec2_limits=True)                # new figures or switch: full buckets
        launch(ec2, subnet, sg, 1, 1)
        refused(lambda: launch(ec2, subnet, sg, 1, 1))


def test_run_instances_resource_bucket_and_min_count(srv):
    ec2 = client(srv)
    vpc, subnet, igw, sg = network(ec2)
    limited(srv, run_request_burst=100, run_resource_burst=10)
    assert len(launch(ec2, subnet, sg, 1, 4)) == 4         # 6 tokens left
    first = launch(ec2, subnet, sg, 2, 10, token="part")    # MinCount met: as many as there are tokens
    assert len(first) == 6
    refused(lambda: launch(ec2, subnet, sg, 1, 1))          # no token left
    # the same token again: the same reservation, launching (and taking) nothing
    assert launch(ec2, subnet, sg, 2, 10, token="part") == first
    srv.fake.advance(3 / SLOW)                              # 3 tokens back
    refused(lambda: launch(ec2, subnet, sg, 4, 8))          # fewer than MinCount: none launched
    assert len(admin(srv, "state")["instances"]) == 10
    assert len(launch(ec2, subnet, sg, 3, 8)) == 3
    assert admin(srv, "buckets")["refused"] == {"RunInstances resource": 2}
    # a launch larger than the bucket can ever hold
    srv.fake.advance(10 / SLOW)
    assert len(launch(ec2, subnet, sg, 1, 50)) == 10
    srv.fake.advance(10 / SLOW)
    refused(lambda: launch(ec2, subnet, sg, 11, 11))


def test_launch_index_of_each_instance(srv):
    ec2 = client(srv)
    vpc, subnet, igw, sg = network(ec2)
    limited(srv)
    r = run(ec2, subnet, sg, "five", count=5)
    assert [i["AmiLaunchIndex"] for i in r["Instances"]] == [0, 1, 2, 3, 4]
    ids = [i["InstanceId"] for i in r["Instances"]]
    # on the wire it is <amiLaunchIndex> (the Instance shape's member AmiLaunchIndex)
    status, code, root = raw(srv, {"Action": "DescribeInstances", "Version": fake_ec2.API_VERSION,
                                   "InstanceId.1": ids[3]})
    assert status == 200 and root.find(".//{%s}amiLaunchIndex" % fake_ec2.XMLNS).text == "3"
    found = ec2.describe_instances(Filters=[{"Name": "launch-index", "Values": ["2"]},
                                            {"Name": "reservation-id", "Values": [r["ReservationId"]]}])
    assert [i["InstanceId"] for rr in found["Reservations"] for i in rr["Instances"]] == [ids[2]]
    again = run(ec2, subnet, sg, "five", count=5)
    assert again["ReservationId"] == r["ReservationId"]
    assert [(i["InstanceId"], i["AmiLaunchIndex"]) for i in again["Instances"]] == list(zip(ids, range(5)))


def test_capacity_knob_fills_a_call_in_part(srv):
    ec2 = client(srv)
    vpc, subnet, igw, sg = network(ec2)
    limited(srv, run_request_burst=100)
    assert admin(srv, "capacity", {"capacity": 3})["pending"] == [3]
    got = launch(ec2, subnet, sg, 2, 10, token="short")
    assert len(got) == 3
    assert admin(srv, "capacity")["pending"] == []
    assert launch(ec2, subnet, sg, 2, 10, token="short") == got  # the token's reservation, as filled
    assert len(launch(ec2, subnet, sg, 2, 10)) == 10              # one call only
    srv.fake.set_capacity(1, count=2)
    e = refused(lambda: launch(ec2, subnet, sg, 2, 10), "InsufficientInstanceCapacity")
    assert "m5.large" in e.value.response["Error"]["Message"]
    assert len(launch(ec2, subnet, sg, 1, 10)) == 1
    assert len(admin(srv, "state")["instances"]) == 14
    # the resource bucket paid for what was launched only
    assert admin(srv, "buckets")["buckets"]["%s/%s RunInstances resource" % (
        fake_ec2.DEFAULT_ACCOUNT, REGION)]["tokens"] == pytest.approx(1000 - 14, abs=0.01)
    for bad in ({"capacity": -1}, {"capacity": 2, "count": 0}, {"capacity": "3"}):
        assert requests.post(srv.endpoint_url + "/_fake/capacity", json=bad, timeout=5).status_code == 400


def test_terminate_instances_buckets(srv):
    ec2 = client(srv)
    vpc, subnet, igw, sg = network(ec2)
    ids = launch(ec2, subnet, sg, 6, 6)
    limited(srv, terminate_resource_burst=3, terminate_request_burst=3)
    refused(lambda: ec2.terminate_instances(InstanceIds=ids[:4]))   # 4 instances, 3 tokens
    assert {i["state"] for i in admin(srv, "state")["instances"]} == {"running"}
    ec2.terminate_instances(InstanceIds=ids[:3])
    ec2.terminate_instances(InstanceIds=ids[:3])                      # already shutting down: no token
    refused(lambda: ec2.terminate_instances(InstanceIds=ids[3:4]))    # request bucket empty now
    assert admin(srv, "buckets")["refused"] == {"TerminateInstances resource": 1, "TerminateInstances request": 1}
    srv.fake.set_config(ec2_limits=False)
    many = ["i-%017x" % n for n in range(1001)]
    e = refused(lambda: ec2.terminate_instances(InstanceIds=many), "InvalidParameterValue")
    assert "1000" in e.value.response["Error"]["Message"]


def test_failed_launch_or_terminate_changes_nothing(srv):
    # RunInstances and TerminateInstances check everything before they change anything
    ec2 = client(srv)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/28")["Subnet"]["SubnetId"]  # 11 addresses
    sg = ec2.create_security_group(GroupName="s", Description="s", VpcId=vpc)["GroupId"]
    kept = launch(ec2, subnet, sg, 2, 2, DisableApiTermination=False)
    locked = launch(ec2, subnet, sg, 1, 1, DisableApiTermination=True)
    limited(srv, run_request_burst=100, terminate_request_burst=100)

    def census():
        st = admin(srv, "state")
        return {k: v for k, v in st.items() if k not in ("now", "config")}

    before = census()
    refused(lambda: launch(ec2, subnet, sg, 9, 9), "InsufficientFreeAddressesInSubnet")
    refused(lambda: launch(ec2, subnet, sg, 1, 1, PrivateIpAddress=admin(srv, "state")["instances"][0]["private_ip"]),
            "InvalidIPAddress.InUse")
    refused(lambda: ec2.terminate_instances(InstanceIds=kept + locked), "OperationNotPermitted")
    refused(lambda: ec2.terminate_instances(InstanceIds=kept + ["i-%017x" % 99]), "InvalidInstanceID.NotFound")
    assert census() == before
    buckets = admin(srv, "buckets")["buckets"]
    assert buckets["%s/%s RunInstances resource" % (fake_ec2.DEFAULT_ACCOUNT, REGION)]["tokens"] == \
        pytest.approx(1000, abs=0.01)
    assert buckets["%s/%s TerminateInstances resource" % (fake_ec2.DEFAULT_ACCOUNT, REGION)]["tokens"] == \
        pytest.approx(1000, abs=0.01)
    assert len(launch(ec2, subnet, sg, 8, 8)) == 8   # what the subnet has left


def test_describe_instances_of_a_thousand(srv):
    ec2 = client(srv)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.32.0/19")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="big", Description="big", VpcId=vpc)["GroupId"]
    limited(srv, instance_limit=1100)
    ids = launch(ec2, subnet, sg, 1000, 1000, TagSpecifications=spec("instance"))  # one call: the whole bucket
    assert len(ids) == 1000 and len(set(ids)) == 1000

    def described(**kw):
        out, pages = [], 0
        while True:
            r = ec2.describe_instances(**kw)
            pages += 1
            out += [i["InstanceId"] for rr in r["Reservations"] for i in rr["Instances"]]
            if not r.get("NextToken"):
                return out, pages
            kw["NextToken"] = r["NextToken"]

    # an instance-id filter: at most 200 values in the call, all filters together
    assert sorted(described(Filters=[{"Name": "instance-id", "Values": ids[:200]}])[0]) == sorted(ids[:200])
    refused(lambda: ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": ids[:201]}]),
            "FilterLimitExceeded")
    refused(lambda: ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": ids[:199]},
                                                    {"Name": "instance-state-name", "Values": ["pending", "running"]}]),
            "FilterLimitExceeded")
    # unknown IDs in a filter are left out; in InstanceId.N they fail the call
    gone = "i-%017x" % 12345
    assert described(Filters=[{"Name": "instance-id", "Values": [gone, ids[7]]}])[0] == [ids[7]]
    refused(lambda: ec2.describe_instances(InstanceIds=[gone, ids[7]]), "InvalidInstanceID.NotFound")
    # InstanceId.N: all thousand in one answer, and no MaxResults beside it
    assert sorted(described(InstanceIds=ids)[0]) == sorted(ids)
    refused(lambda: ec2.describe_instances(InstanceIds=ids[:5], MaxResults=5), "InvalidParameterCombination")
    # pages of a tag filter, each instance once
    seen, pages = described(Filters=[{"Name": "tag:dexter:cluster", "Values": ["c1"]}], MaxResults=300)
    assert pages == 4 and sorted(seen) == sorted(ids)
    for bad in (4, 1001):
        refused(lambda: ec2.describe_instances(MaxResults=bad), "InvalidParameterValue")
    # every instance in one reservation, by launch index
    r = ec2.describe_instances(Filters=[{"Name": "launch-index", "Values": ["999"]}])
    assert [i["InstanceId"] for rr in r["Reservations"] for i in rr["Instances"]] == [ids[999]]


# ------------------------------------------------------- side channel and CLI

def test_side_channel(srv):
    ec2 = client(srv)
    vpc, subnet, igw, sg = network(ec2)
    client(srv, KEY2, SECRET2).describe_vpcs()
    state = admin(srv, "state")
    assert state["vpcs"][0]["id"] == vpc and state["vpcs"][0]["tags"]["dexter:cluster"] == "c1"
    assert state["subnets"][0]["state"] == "available" and state["internet_gateways"][0]["vpc_id"] == vpc
    assert {g["name"] for g in state["security_groups"]} == {"default", "c1-sg"}
    calls = admin(srv, "calls")
    assert calls["by_access_key"] == {KEY: 5, KEY2: 1}
    assert calls["by_access_key_action"][KEY2] == {"DescribeVpcs": 1}
    assert admin(srv, "config", {"pending_ms": 10})["pending_ms"] == 10
    r = requests.post(srv.endpoint_url + "/_fake/config", json={"pending_ms": "soon"}, timeout=5)
    assert r.status_code == 400
    assert admin(srv, "config", {"ec2_limits": True, "run_request_rate": 0.5})["run_request_rate"] == 0.5
    for bad in ({"ec2_limits": 1}, {"run_request_burst": 1.5}, {"run_resource_rate": True},
                {"terminate_request_rate": -1}):
        assert requests.post(srv.endpoint_url + "/_fake/config", json=bad, timeout=5).status_code == 400, bad
    assert admin(srv, "buckets")["enabled"] is True
    assert requests.get(srv.endpoint_url + "/_fake/nothing", timeout=5).status_code == 404
    admin(srv, "reset", {})
    assert admin(srv, "state")["vpcs"] == [] and admin(srv, "calls")["total"] == 0


def test_command_line_entry_point():
    with tempfile.TemporaryDirectory() as tmp:
        port_file = os.path.join(tmp, "port")
        proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(HERE, "fake_ec2.py"), "--port", "0", "--port-file", port_file,
             "--access-key", KEY, "--secret-key", SECRET, "--access-key", TMP_KEY, "--secret-key", TMP_SECRET,
             "--session-token", TMP_TOKEN, "--pending-ms", "0", "--seed", "3", "--latency-ms", "1",
             "--ec2-limits", "true", "--run-request-burst", "1", "--run-resource-rate", "0.5"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 20
            while not os.path.exists(port_file):
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
                time.sleep(0.05)
            port = int(open(port_file).read())

            class Endpoint:
                endpoint_url = "http://127.0.0.1:%d" % port

            assert client(Endpoint).create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"].startswith("vpc-")
            assert len(client(Endpoint, TMP_KEY, TMP_SECRET, TMP_TOKEN).describe_vpcs()["Vpcs"]) == 1
            with pytest.raises(botocore.exceptions.ClientError) as e:
                client(Endpoint, TMP_KEY, TMP_SECRET).describe_vpcs()
            assert error_code(e) == "AuthFailure"
            cfg = requests.get(Endpoint.endpoint_url + "/_fake/config", timeout=5).json()
            assert (cfg["ec2_limits"], cfg["run_request_burst"], cfg["run_resource_rate"]) == (True, 1, 0.5)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
            log = proc.stderr.read().decode()
    assert "listening on http://127.0.0.1:%d" % port in log and "CreateVpc 200" in log
