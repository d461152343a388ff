"""The user data of every role x type x provider (common/dx_provision), as
cloud-init and the host see it.

The documents are the ones the unit test test_dx_provision renders (it writes
them to DX_PROVISION_RENDER_DIR: each host of a three-master cluster, a
gzipped one, one full of hostile values and an agent of an aws batch, whose
sandbox answers the instance metadata with a stub). Here:
  - cloud-init's own user-data reader (Debian's cloud-init) takes each user
    data, gzipped or not, apart into the #cloud-config and the shell part;
  - every #cloud-config passes `cloud-init schema --config-file`, and the
    hostile one's files read back exactly through YAML;
  - every shell part, and every file of write_files that is a script, passes
    shellcheck;
  - each shell part runs in a throwaway sandbox (bwrap: a tmpfs root, the
    host's /usr read-only, /etc, /var, /opt, /hdd and /usr/local from a
    scratch directory), after cloud-init's own write_files module wrote the
    files there, with apt-get, systemctl, mkfs, mount, docker, curl and the
    like replaced by stubs that record their calls; the test then checks the
    files the script left and the calls it made.
"""
import email
import json
import os
import shutil
import stat
import subprocess
import tempfile

import pytest
import yaml

from conftest import BIN_DIR

RENDER_TEST = os.path.join(os.path.dirname(BIN_DIR), "tests", "test_dx_provision")
HOSTS = ["%s-%s-%s" % (role, kind, provider)
         for role in ("access", "master", "agent")
         for kind in ("mesos", "dcos")
         for provider in ("aws", "azure")]
MASTERS = ["10.0.0.11", "10.0.0.12", "10.0.0.13"]
ZK = ",".join("%s:2181" % ip for ip in MASTERS)

# The commands the sandbox replaces, each a script that appends its argv to
# /record/calls; some answer as the real one would on a fresh host.
STUB = r"""#!/bin/bash
printf '%s' "$(basename "$0")" >>/record/calls
printf ' %s' "$@" >>/record/calls
echo >>/record/calls
"""
STUB_ANSWERS = {
    # a fresh disk has no file system; then it has this UUID
    "blkid": 'for a in "$@"; do [ "$a" = UUID ] && { echo 0e1f-test-uuid; exit 0; }; done; exit 2\n',
    "mountpoint": "exit 1\n",
    # no rule is there yet
    "iptables": 'for a in "$@"; do [ "$a" = -C ] && exit 1; done; exit 0\n',
    # a download is a script that records how it is run
    "curl": ('out=""; prev=""\n'
             'for a in "$@"; do [ "$prev" = -o ] && out=$a; prev=$a; done\n'
             'if [ -n "$out" ]; then\n'
             '    printf \'#!/bin/bash\\necho "%s $*" >>/record/calls\\n\' "$(basename "$out")" >"$out"\n'
             'fi\n'
             # the instance metadata (IMDSv2): a session token, then this
             # instance's launch index, only with the token
             'case "$*" in\n'
             '    *"-X PUT"*latest/api/token) echo imds-token ;;\n'
             '    *"X-aws-ec2-metadata-token: imds-token"*meta-data/ami-launch-index) echo 2 ;;\n'
             '    *169.254.169.254*) exit 22 ;;\n'
             'esac\n'),
}
STUBBED = ["apt-get", "systemctl", "hostnamectl", "hostname", "mkfs.ext4", "blkid", "mount",
           "mountpoint", "docker", "curl", "sysctl", "iptables", "nvme", "sleep", "groupadd"]


@pytest.fixture(scope="module")
def rendered():
    """The directory of the rendered documents."""
    assert os.access(RENDER_TEST, os.X_OK), \
        "%s is missing: build it (make unit, or make asan for DEXTER_BIN_DIR=build/asan/bin)" % RENDER_TEST
    out = tempfile.mkdtemp(prefix="dx-provision-")
    run = subprocess.run([RENDER_TEST], env=dict(os.environ, DX_PROVISION_RENDER_DIR=out),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    yield out
    shutil.rmtree(out)


def parts_of(text):
    """{content type: payload} of a MIME multipart document."""
    msg = email.message_from_string(text)
    assert msg.get_content_type() == "multipart/mixed"
    return {p.get_content_type(): p.get_payload() for p in msg.walk() if not p.is_multipart()}


def document(rendered, name):
    with open(os.path.join(rendered, name + ".mime")) as f:
        return parts_of(f.read())


def cloud_init_parts(raw):
    """What cloud-init's user-data reader makes of raw user data: {type: payload}."""
    from cloudinit import helpers, user_data
    tmp = tempfile.mkdtemp(prefix="dx-ci-")
    try:
        paths = helpers.Paths({"cloud_dir": tmp, "run_dir": tmp})
        msg = user_data.UserDataProcessor(paths).process(raw)
    finally:
        shutil.rmtree(tmp)
    found = {}
    for part in msg.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True).decode()
        found[part.get_content_type()] = payload
    return found


@pytest.mark.parametrize("name", HOSTS + ["gzipped", "batch"])
def test_cloud_init_reads_the_user_data(rendered, name):
    with open(os.path.join(rendered, name + ".userdata"), "rb") as f:
        raw = f.read()
    if name == "gzipped":
        assert raw[:2] == b"\x1f\x8b" and len(raw) <= 16384
    else:
        assert raw.startswith(b"Content-Type: multipart/mixed")
    got = cloud_init_parts(raw)
    want = document(rendered, name)
    assert set(want) == {"text/cloud-config", "text/x-shellscript"}
    assert got["text/cloud-config"] == want["text/cloud-config"]
    assert got["text/x-shellscript"] == want["text/x-shellscript"]


def test_cloud_config_schema(rendered, tmp_path):
    """Every #cloud-config passes Debian's `cloud-init schema` (run side by
    side: each takes a second)."""
    runs = []
    for name in HOSTS + ["hostile", "gzipped", "batch"]:
        path = tmp_path / (name + ".yaml")
        path.write_text(document(rendered, name)["text/cloud-config"])
        runs.append((name, subprocess.Popen(["cloud-init", "schema", "--config-file", str(path)],
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                            text=True)))
    for name, proc in runs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "Valid cloud-config" in out, (name, out)


def test_hostile_values_read_back_exactly(rendered):
    """YAML gives back exactly the JSON the module wrote, hostile as it is."""
    import json
    config = yaml.safe_load(document(rendered, "hostile")["text/cloud-config"])
    files = {f["path"]: f for f in config["write_files"]}
    assert not any(p.startswith("/etc/passwd") for p in files)
    vars_ = json.loads(files["/etc/dexter/vars.json"]["content"])
    evil = [k for k in vars_ if "pwned" in k]
    assert len(evil) == 1 and vars_["EVIL"] == evil[0] and "\u2028" in evil[0]
    attributes = json.loads(files["/etc/dexter/attributes.json"]["content"])
    assert attributes["evil"] == evil[0] and attributes[evil[0]] == "r1"
    assert "\U0001F600" in evil[0]
    assert "pwned" not in document(rendered, "hostile")["text/x-shellscript"]


def test_shellcheck(rendered, tmp_path):
    """Every shell part and every script among the files passes shellcheck."""
    scripts = []
    for name in HOSTS + ["hostile", "batch"]:
        parts = document(rendered, name)
        path = tmp_path / (name + ".sh")
        path.write_text(parts["text/x-shellscript"])
        scripts.append(str(path))
        for i, f in enumerate(yaml.safe_load(parts["text/cloud-config"])["write_files"]):
            if f["content"].startswith(("#!/bin/sh", "#!/bin/bash")):
                path = tmp_path / ("%s-file%d" % (name, i))
                path.write_text(f["content"])
                scripts.append(str(path))
    assert len(scripts) > len(HOSTS) + 1
    run = subprocess.run(["shellcheck", "--severity=style"] + scripts, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


def block_device():
    """A block device of this machine, to stand for the extra disks (the
    stubs format and mount nothing; the script only tests `-b`)."""
    for name in sorted(os.listdir("/dev")):
        path = os.path.join("/dev", name)
        try:
            if stat.S_ISBLK(os.stat(path).st_mode):
                return path
        except OSError:
            continue
    pytest.fail("no block device in /dev to stand for the extra disks")


class Sandbox:
    """A scratch root for one host: its files, the calls it made."""

    def __init__(self, base, name, parts):
        self.root = os.path.join(base, name)
        for d in ("etc/apt/sources.list.d", "var/log", "opt", "hdd", "usrlocal", "stubs",
                  "record"):
            os.makedirs(os.path.join(self.root, d))
        # What a fresh Ubuntu has in /etc that the script and cloud-init read
        for name, text in (("os-release", 'NAME="Ubuntu"\nVERSION_ID="22.04"\n'
                                          'VERSION_CODENAME=jammy\nID=ubuntu\n'),
                           ("passwd", "root:x:0:0:root:/root:/bin/bash\n"),
                           ("hosts", "127.0.0.1 localhost\n"),
                           ("group", "root:x:0:\nnogroup:x:65534:\n")):
            with open(os.path.join(self.root, "etc", name), "w") as f:
                f.write(text)
        for tool in STUBBED:
            path = os.path.join(self.root, "stubs", tool)
            with open(path, "w") as f:
                f.write(STUB + STUB_ANSWERS.get(tool, "exit 0\n"))
            os.chmod(path, 0o755)
        open(os.path.join(self.root, "record", "calls"), "w").close()
        self.config = os.path.join(self.root, "record", "cloud-config.yaml")
        with open(self.config, "w") as f:
            f.write(parts["text/cloud-config"])
        self.script = os.path.join(self.root, "record", "dexter.sh")
        with open(self.script, "w") as f:
            f.write(parts["text/x-shellscript"])

    def run(self, provider, *argv):
        r = self.root
        cmd = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
               "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
               "--symlink", "usr/sbin", "/sbin", "--symlink", "usr/lib", "/lib",
               "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev",
               "--tmpfs", "/tmp", "--bind", r + "/etc", "/etc", "--bind", r + "/var", "/var",
               "--bind", r + "/opt", "/opt", "--bind", r + "/hdd", "/hdd",
               "--bind", r + "/usrlocal", "/usr/local", "--ro-bind", r + "/stubs", "/stubs",
               "--bind", r + "/record", "/record", "--clearenv",
               "--setenv", "PATH", "/stubs:/usr/local/sbin:/usr/sbin:/usr/bin",
               "--setenv", "HOME", "/root", "--setenv", "LANG", "C.UTF-8"]
        if os.getuid() != 0:
            cmd += ["--unshare-user", "--uid", "0", "--gid", "0"]
        # The extra disks: /dev/xvdX on Xen-style AWS; at their LUNs on Azure
        dev = block_device()
        if provider == "aws":
            cmd += ["--dev-bind", dev, "/dev/xvdf", "--dev-bind", dev, "/dev/xvdg"]
        else:
            cmd += ["--dev-bind", dev, "/dev/sdc", "--dev-bind", dev, "/dev/sdd",
                    "--symlink", "/dev/sdc", "/dev/disk/azure/scsi1/lun0",
                    "--symlink", "/dev/sdd", "/dev/disk/azure/scsi1/lun1"]
        return subprocess.run(cmd + list(argv), capture_output=True, text=True, timeout=60)

    def write_files(self, provider):
        """cloud-init's own write_files module writes the files, in the sandbox."""
        code = ("import yaml\n"
                "from cloudinit.config.cc_write_files import write_files\n"
                "cfg = yaml.safe_load(open('/record/cloud-config.yaml'))\n"
                "write_files('write_files', cfg['write_files'], 'root:root')\n")
        run = self.run(provider, "/usr/bin/python3", "-c", code)
        assert run.returncode == 0, run.stdout + run.stderr

    def path(self, path):
        for prefix, local in (("/usr/local/", "usrlocal/"), ("/", "")):
            if path.startswith(prefix):
                return os.path.join(self.root, local + path[len(prefix):])

    def read(self, path):
        with open(self.path(path)) as f:
            return f.read()

    def mode(self, path):
        return stat.S_IMODE(os.stat(self.path(path)).st_mode)

    def calls(self):
        with open(os.path.join(self.root, "record", "calls")) as f:
            return f.read().splitlines()


@pytest.fixture(scope="module")
def sandboxes(rendered):
    base = tempfile.mkdtemp(prefix="dx-sandbox-")
    yield base
    shutil.rmtree(base)


@pytest.mark.parametrize("name", HOSTS)
def test_shell_part_in_a_sandbox(rendered, sandboxes, name):
    role, kind, provider = name.split("-")
    box = Sandbox(sandboxes, name, document(rendered, name))
    box.write_files(provider)
    run = box.run(provider, "/bin/bash", "/record/dexter.sh")
    log = box.read("/var/log/dexter-provision.log")
    assert run.returncode == 0, log + run.stderr
    assert "dexter: provisioning ends" in log and "failed" not in log, log
    calls = box.calls()

    def called(line):
        assert line in calls, "%s not in:\n%s\n%s" % (line, "\n".join(calls), log)

    def not_called(prefix):
        assert not [c for c in calls if c.startswith(prefix)], calls

    hostname = {"access": "c1-access", "master": "c1-master-1", "agent": "c1-g1-3"}[role]
    called("hostnamectl set-hostname %s" % hostname)
    assert box.read("/etc/hostname") == hostname + "\n"
    assert box.read("/etc/hosts") == "127.0.0.1 localhost\n127.0.1.1 %s\n" % hostname
    assert "DEXTER_CLUSTER_TYPE=%s\n" % kind in box.read("/etc/dexter/cluster")
    assert box.read("/etc/dexter/masters") == "".join(ip + "\n" for ip in MASTERS)

    if role == "access":
        # OpenVPN from the bundle, its keys private; forwarding and NAT
        assert box.mode("/etc/openvpn/server/dexter/server.key") == 0o600
        assert box.mode("/etc/openvpn/server/dexter/tls-crypt.key") == 0o600
        assert box.mode("/etc/openvpn/server/dexter/ca.crt") == 0o644
        assert box.mode("/etc/openvpn/server/dexter/auth.py") == 0o755
        conf = box.read("/etc/openvpn/server/dexter.conf")
        assert "server 10.8.0.0 255.255.255.0" in conf
        # every file the config names is there
        for line in conf.splitlines():
            words = line.split()
            if words and words[0] in ("ca", "cert", "key", "tls-crypt", "crl-verify",
                                      "auth-user-pass-verify"):
                assert os.path.isfile(box.path(words[1])), line
        called("systemctl enable --now openvpn-server@dexter")
        called("apt-get -q -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold "
               "install openvpn")
        # the CRL of the access node's tags, every minute
        called("systemctl enable --now dexter-crl.timer")
        assert box.mode("/usr/local/sbin/dexter-crl") == 0o755
        assert "OnUnitActiveSec=1min" in box.read("/etc/systemd/system/dexter-crl.timer")
        assert "ExecStart=/usr/local/sbin/dexter-crl\n" in \
            box.read("/etc/systemd/system/dexter-crl.service")
        called("sysctl -p /etc/sysctl.d/60-dexter-forward.conf")
        assert "net.ipv4.ip_forward = 1" in box.read("/etc/sysctl.d/60-dexter-forward.conf")
        called("systemctl enable --now dexter-nat")
        assert box.mode("/usr/local/sbin/dexter-nat") == 0o755
        # The NAT script itself, run against the iptables stub
        nat = box.run(provider, "/usr/local/sbin/dexter-nat")
        assert nat.returncode == 0, nat.stderr
        calls = box.calls()
        called("iptables -t nat -I POSTROUTING 1 ! -s 10.0.0.0/16 -d 10.0.0.0/16 -j MASQUERADE")
        called("iptables -t filter -I FORWARD 1 -d 10.0.0.0/16 -j ACCEPT")
        called("iptables -t filter -I FORWARD 1 -s 10.0.0.0/16 -m conntrack --ctstate "
               "RELATED,ESTABLISHED -j ACCEPT")
        if kind == "dcos":
            called("curl -fsSL --retry 5 -o /opt/dcos-bootstrap/dcos_generate_config.sh "
                   "https://mirror.example.com/dcos/dcos_generate_config.sh")
            called("dcos_generate_config.sh ")
            called("systemctl enable --now dexter-dcos-bootstrap")
            genconf = yaml.safe_load(box.read("/opt/dcos-bootstrap/genconf/config.yaml"))
            assert genconf["master_list"] == MASTERS
            assert genconf["bootstrap_url"] == "http://10.0.0.10:8080"
            assert genconf["resolvers"] == (["169.254.169.253"] if provider == "aws"
                                            else ["168.63.129.16"])
            assert box.mode("/opt/dcos-bootstrap/genconf/ip-detect") == 0o755
        else:
            not_called("curl")
            not_called("docker")
    elif role == "master" and kind == "mesos":
        # ZooKeeper 2 of the ensemble of 3, quorum 2, Marathon
        assert box.read("/etc/zookeeper/conf/myid") == "2\n"
        assert box.read("/var/lib/zookeeper/myid") == "2\n"
        zoo = box.read("/etc/zookeeper/conf/zoo.cfg")
        for i, ip in enumerate(MASTERS):
            assert "server.%d=%s:2888:3888\n" % (i + 1, ip) in zoo
        env = box.read("/etc/dexter/mesos-master.env")
        assert "MESOS_QUORUM=2\n" in env and "MESOS_ZK=zk://%s/mesos\n" % ZK in env
        assert "MARATHON_MASTER=zk://%s/mesos\n" % ZK in box.read("/etc/dexter/marathon.env")
        assert "Package: mesos\nPin: version 1.11.0*\n" in box.read("/etc/apt/preferences.d/dexter-mesos")
        assert box.read("/etc/apt/sources.list.d/dexter-mesos.list") == \
            "deb http://mirror.example.com/mesos/ubuntu jammy main\n"
        called("apt-get -q -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold "
               "install zookeeperd mesos marathon")
        called("systemctl restart zookeeper")
        called("systemctl enable --now dexter-mesos-master dexter-marathon")
        assert calls.index("systemctl daemon-reload") < \
            calls.index("systemctl enable --now dexter-mesos-master dexter-marathon")
    elif role == "master":
        called("curl -fsS -o /opt/dcos-install/dcos_install.sh http://10.0.0.10:8080/dcos_install.sh")
        called("dcos_install.sh master")
        called("systemctl enable --now docker")
    else:
        # Extra disks: formatted, in fstab by UUID, mounted at /hdd/<device>
        disks = [("xvdf", "sdc"), ("xvdg", "sdd")]
        for device, azure_name in disks:
            dev = "/dev/" + (device if provider == "aws" else azure_name)
            called("mkfs.ext4 -q -F %s" % dev)
            called("mount /hdd/%s" % device)
            assert os.path.isdir(box.path("/hdd/" + device))
            assert "UUID=0e1f-test-uuid /hdd/%s ext4 defaults,nofail 0 2\n" % device \
                in box.read("/etc/fstab")
        # The group's vars: JSON, and the plain ones in the environment
        assert box.read("/etc/dexter/vars.env") == "APP_ENV=prod\nWORKERS=4\n"
        assert "# dexter vars\nAPP_ENV=prod\nWORKERS=4\n" in box.read("/etc/environment")
        assert box.read("/etc/dexter/role") == "slave_public\n"
        if kind == "mesos":
            env = box.read("/etc/dexter/mesos-agent.env")
            assert "MESOS_MASTER=zk://%s/mesos\n" % ZK in env
            assert "MESOS_ATTRIBUTES=cores:8;gpu:true;rack:r1\n" in env
            assert "MESOS_DEFAULT_ROLE=slave_public\n" in env
            unit = box.read("/etc/systemd/system/dexter-mesos-agent.service")
            assert unit.index("EnvironmentFile=-/etc/dexter/vars.env") < \
                unit.index("EnvironmentFile=/etc/dexter/mesos-agent.env")
            called("systemctl enable --now dexter-mesos-agent")
            called("apt-get -q -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold "
                   "install docker.io mesos")
        else:
            assert "MESOS_ATTRIBUTES=cores:8;gpu:true;rack:r1\n" in \
                box.read("/var/lib/dcos/mesos-slave-common")
            called("dcos_install.sh slave_public")
            not_called("systemctl enable --now dexter-mesos-agent")


# The instance metadata of the access node's tags, answered from
# /record/tags.json: IMDSv2 (a token, then one tag a request) on aws, the
# tagsList on azure.
IMDS_TAGS_CURL = r"""#!/bin/bash
url=${*: -1}
case "$url" in
    http://169.254.169.254/latest/api/token)
        [[ "$*" == *"-X PUT"* ]] || exit 22
        echo imds-token; exit 0 ;;
    http://169.254.169.254/latest/meta-data/tags/instance/*)
        [[ "$*" == *"X-aws-ec2-metadata-token: imds-token"* ]] || exit 22
        exec python3 -c 'import json, sys
tags = json.load(open("/record/tags.json"))
sys.exit(22) if sys.argv[1] not in tags else sys.stdout.write(tags[sys.argv[1]])' "${url##*/}" ;;
    "http://169.254.169.254/metadata/instance/compute/tagsList?api-version=2021-02-01")
        [[ "$*" == *"Metadata: true"* ]] || exit 22
        exec python3 -c 'import json
tags = json.load(open("/record/tags.json"))
print(json.dumps([{"name": k, "value": v} for k, v in tags.items()]))' ;;
esac
exit 22
"""


def make_ca(name):
    """A CA like the vpn service's (EC P-256, ECDSA with SHA-256): (key, cert)."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_crl(ca, number, serials):
    """The DER CRL of ca = (key, cert) numbered number, revoking serials."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    key, cert = ca
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateRevocationListBuilder().issuer_name(cert.subject)
         .last_update(now - datetime.timedelta(hours=1))
         .next_update(now + datetime.timedelta(days=30))
         .add_extension(x509.CRLNumber(number), critical=False))
    for serial in serials:
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial)
                                      .revocation_date(now).build())
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def crl_tags(der, number):
    """The tags a deploy writes (common/dx_crltags.h), with the host's own."""
    import base64
    text = base64.b64encode(der).decode()
    chunks = [text[i:i + 256] for i in range(0, len(text), 256)]
    tags = {"Name": "c1-access", "dexter:cluster": "c1", "dexter:role": "access",
            "dexter:crl": "%d:%d" % (number, len(chunks))}
    tags.update(("dexter:crl.%d" % i, c) for i, c in enumerate(chunks))
    return tags


@pytest.mark.parametrize("provider", ["aws", "azure"])
def test_crl_timer_in_a_sandbox(rendered, sandboxes, provider):
    """The access node's dexter-crl, with the instance metadata stubbed:
    nothing to do without the tags; the CRL of the tags installed when it
    is the cluster CA's (the DER of crl.pem equals the tags'); a CRL that
    another key signed (under the same CA name) is not installed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    name = "access-mesos-" + provider
    box = Sandbox(sandboxes, "crl-" + provider, document(rendered, name))
    box.write_files(provider)
    with open(os.path.join(box.root, "stubs", "curl"), "w") as f:
        f.write(IMDS_TAGS_CURL)
    ca = make_ca("c1-ca")
    with open(box.path("/etc/openvpn/server/dexter/ca.crt"), "wb") as f:
        f.write(ca[1].public_bytes(serialization.Encoding.PEM))
    crl_path = "/etc/openvpn/server/dexter/crl.pem"
    tags_path = os.path.join(box.root, "record", "tags.json")

    def timer(tags):
        with open(tags_path, "w") as f:
            json.dump(tags, f)
        return box.run(provider, "/usr/local/sbin/dexter-crl")

    # no CRL in the tags: the user data's stands
    first = box.read(crl_path)
    run = timer({"Name": "c1-access"})
    assert run.returncode == 0, run.stderr
    assert box.read(crl_path) == first
    # the CA's CRL 3, revoking 3 and 4, is installed
    der = make_crl(ca, 3, [3, 4])
    run = timer(crl_tags(der, 3))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "installed CRL 3" in run.stdout
    installed = x509.load_pem_x509_crl(box.read(crl_path).encode())
    assert installed.public_bytes(serialization.Encoding.DER) == der
    assert box.mode(crl_path) == 0o644
    assert box.read("/etc/openvpn/server/dexter/crl.number") == "3\n"
    # a big CRL in many chunks, the same way
    der = make_crl(ca, 4, range(3, 203))
    tags = crl_tags(der, 4)
    assert int(tags["dexter:crl"].split(":")[1]) > 10
    run = timer(tags)
    assert run.returncode == 0, run.stdout + run.stderr
    installed = x509.load_pem_x509_crl(box.read(crl_path).encode())
    assert installed.public_bytes(serialization.Encoding.DER) == der
    # another key's CRL, with the CA's name: refused, crl.pem as it was
    before = box.read(crl_path)
    other = (make_ca("c1-ca")[0], ca[1])
    run = timer(crl_tags(make_crl(other, 5, [3, 4, 5]), 5))
    assert run.returncode != 0
    assert "not the cluster CA's" in run.stderr, run.stderr
    assert box.read(crl_path) == before
    assert box.read("/etc/openvpn/server/dexter/crl.number") == "4\n"
    # tags whose number is not the CRL's: refused
    run = timer(crl_tags(make_crl(ca, 6, [3]), 7))
    assert run.returncode != 0 and "the CRL is number 6" in run.stderr, run.stderr
    assert box.read(crl_path) == before


def test_batch_agent_in_a_sandbox(rendered, sandboxes):
    """An agent of a batch from slot 5 whose ami-launch-index is 2 (the
    stubbed metadata) is host c1-g1-7, named before anything else, and
    /etc/dexter/cluster says so."""
    box = Sandbox(sandboxes, "batch", document(rendered, "batch"))
    box.write_files("aws")
    run = box.run("aws", "/bin/bash", "/record/dexter.sh")
    log = box.read("/var/log/dexter-provision.log")
    assert run.returncode == 0, log + run.stderr
    assert "dexter: provisioning ends" in log and "failed" not in log, log
    calls = box.calls()
    token = ("curl -fsS --retry 10 --retry-connrefused -X PUT -H "
             "X-aws-ec2-metadata-token-ttl-seconds: 300 http://169.254.169.254/latest/api/token")
    index = ("curl -fsS --retry 10 --retry-connrefused -H X-aws-ec2-metadata-token: imds-token "
             "http://169.254.169.254/latest/meta-data/ami-launch-index")
    assert calls[:3] == [token, index, "hostnamectl set-hostname c1-g1-7"], calls
    assert box.read("/etc/hostname") == "c1-g1-7\n"
    assert box.read("/etc/hosts") == "127.0.0.1 localhost\n127.0.1.1 c1-g1-7\n"
    cluster = box.read("/etc/dexter/cluster")
    assert cluster.endswith("DEXTER_HOSTNAME=c1-g1-7\n") and cluster.count("DEXTER_HOSTNAME") == 1
    assert "DEXTER_GROUP=g1\n" in cluster
    assert "systemctl enable --now dexter-mesos-agent" in calls


def test_batch_agent_without_metadata_fails(rendered, sandboxes):
    """No launch index from the metadata: the script stops before it names
    the host."""
    box = Sandbox(sandboxes, "batch-no-imds", document(rendered, "batch"))
    with open(os.path.join(box.root, "stubs", "curl"), "w") as f:
        f.write(STUB + "exit 7\n")
    box.write_files("aws")
    run = box.run("aws", "/bin/bash", "/record/dexter.sh")
    log = box.read("/var/log/dexter-provision.log")
    assert run.returncode != 0
    assert "dexter: provisioning failed" in log, log
    assert not [c for c in box.calls() if c.startswith(("hostnamectl", "apt-get"))]
    assert "DEXTER_HOSTNAME" not in box.read("/etc/dexter/cluster")


def test_scheduler_refuses_a_bad_installer_url(stack_factory):
    """A DEXTER_DCOS_INSTALLER_URL that is no http(s) URL of the characters
    a setting may hold stops the scheduler at start, naming it."""
    stack = stack_factory(start=False)
    os.makedirs(os.path.join(stack.dir, "data"), exist_ok=True)
    for url in ("ftp://mirror.example.com/dcos_generate_config.sh",
                "https://mirror.example.com/x'$(id)"):
        run = subprocess.run([os.path.join(BIN_DIR, "dexter-scheduler")],
                             env=stack.env({"DEXTER_DCOS_INSTALLER_URL": url}),
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 1, (url, run.stdout, run.stderr)
        assert "cannot start: DEXTER_DCOS_INSTALLER_URL must be an http or https URL" in \
            run.stderr + run.stdout, (url, run.stderr)


def test_dcos_without_installer_is_refused_at_put(stack_factory, tmp_path):
    """A scheduler without DEXTER_DCOS_INSTALLER_URL refuses the deploy of
    a dcos cluster at PUT, 409 naming the setting, and changes nothing (no
    generation, no event, no machine); restarted with the setting, the same
    PUT deploys the cluster on the fake EC2: every host step carries the
    URL, and the access node's user data downloads the installer from it."""
    from aws_helpers import (events, get_deployment, live_instances, make_aws_cluster, pem_key,
                             put_deployment, user_data_text, wait_deployment)
    stack = stack_factory(sched_env={"DEXTER_DCOS_INSTALLER_URL": ""})
    stack.start_fake_ec2()
    stack.start_aws_worker()
    name = "dcosnourl"
    make_aws_cluster(stack, name, pem_key(str(tmp_path / "k.pem")),
                     [{"name": "g1", "instance_type": "m5.large", "cpus": 2, "ram": 8}], ctype="dcos")
    before, evs = get_deployment(stack, name), events(stack, name)
    body = put_deployment(stack, name, expect=409)
    assert body["code"] == "CONFLICT" and body["field"] == "command", body
    assert "DEXTER_DCOS_INSTALLER_URL" in body["message"] and "dcos" in body["message"], body
    assert get_deployment(stack, name) == before and before["state"] == "init", before
    assert events(stack, name) == evs
    assert live_instances(stack.fake_state(), name) == []

    url = "https://dcos-mirror.example.com/2.2/dcos_generate_config.sh"
    assert stack.scheduler.stop() == 0
    stack.start_scheduler({"DEXTER_DCOS_INSTALLER_URL": url})
    gen = put_deployment(stack, name)["generation"]
    assert gen == before["generation"] + 1
    d = wait_deployment(stack, name, gen, timeout=90)
    assert d["state"] == "deployed", d
    jobs = [json.loads(j) for j in stack.redis_client().hgetall("dexter:{%s}:jobs" % name).values()]
    hosts = [j["step"] for j in jobs if j["kind"] in ("host", "hosts")]
    assert len(hosts) >= 3, jobs                    # the access node, a master, the agents
    assert all(h["dcos_installer_url"] == url for h in hosts), hosts
    access = [i for i in live_instances(stack.fake_state(), name)
              if i["tags"].get("dexter:role") == "access"]
    assert len(access) == 1
    assert "-o /opt/dcos-bootstrap/dcos_generate_config.sh '%s'" % url in user_data_text(access[0])
