"""The vpn library's files with the real openvpn (Debian's) on loopback.

test_vpn_tool (tests/unit/test_vpn_tool.c, built with the unit tests) writes
two clusters' PKIs, the server's files of the first and client profiles. The
server runs in private user, mount and network namespaces (`unshare -rmn`),
where /etc/openvpn/server is the tool's output, bind-mounted, so the config
runs as the access node gets it; and /etc/pam.d/login is a test PAM stack
(pam_exec checking a password file), so the real auth-user-pass-verify
script talks to the real libpam. Clients join the server's network namespace
(nsenter) and need no tun device: --dev null --ifconfig-noexec
--route-noexec.

Asserted: a password user connects with the profile the reference's
`echo -e \\`… | tr -d '"'\\`` makes of the JSON string; an issued user connects
with its certificate and no password; a wrong password, a revoked user,
another cluster's profile and a certificate of another CA are refused. Each
wait ends at a line that says what happened, within a deadline.
"""
import os
import shutil
import subprocess

import pytest

from conftest import BIN_DIR, Proc, wait_until

TOOL = os.path.join(os.path.dirname(os.path.abspath(BIN_DIR)), "tests", "test_vpn_tool")
OPENVPN = shutil.which("openvpn") or "/usr/sbin/openvpn"
DEADLINE = 60
CONNECTED = "Initialization Sequence Completed"

# The test's PAM stack for service "login": pam_exec gives the password on
# stdin (NUL-terminated) to a script that looks the pair up in a file.
PAM_LOGIN = """auth required pam_exec.so expose_authtok quiet {dir}/check-password
account required pam_permit.so
"""
CHECK_PASSWORD = """#!/bin/bash
IFS= read -r -d '' password || true
grep -qxF -- "$PAM_USER:$password" {dir}/passwords
"""


def tool(*args):
    r = subprocess.run([TOOL] + list(args), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "test_vpn_tool %s: %s" % (" ".join(args), r.stderr)


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def read(path):
    with open(path) as f:
        return f.read()


def block(text, tag):
    return text.split("<%s>\n" % tag)[1].split("</%s>\n" % tag)[0]


def tun_refused():
    """Why this kernel will not give a private network namespace a tun
    device, or None when it does."""
    r = subprocess.run(["unshare", "-rmn", "ip", "tuntap", "add", "dev", "dxprobe", "mode", "tun"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return "unshare -rmn + ip tuntap refused: %s" % r.stderr.strip()
    return None


class Server:
    """openvpn with the cluster's server files, in its own namespaces."""

    def __init__(self, workdir, root):
        script = ("ip link set lo up && "
                  "mount --bind {root}/etc/openvpn/server /etc/openvpn/server && "
                  "mount --bind {dir}/pam.d /etc/pam.d && "
                  "exec {openvpn} --config /etc/openvpn/server/dexter.conf"
                  ).format(root=root, dir=workdir, openvpn=OPENVPN)
        self.proc = Proc("openvpn-server", ["unshare", "-rmn", "/bin/sh", "-c", script],
                         dict(os.environ), os.path.join(workdir, "server.log"))

    def start(self):
        # A server started again in the same work dir appends to its log:
        # only what this one writes tells that it is up (and in its
        # namespaces, which the clients' nsenter joins)
        since = os.path.getsize(self.proc.log_path) if os.path.exists(self.proc.log_path) else 0
        self.proc.start()

        def up():
            with open(self.proc.log_path, "rb") as f:
                f.seek(since)
                return CONNECTED in f.read().decode("utf-8", "replace") or not self.proc.alive()
        wait_until(up, DEADLINE, "the openvpn server to start")
        assert self.proc.alive(), self.proc.log()[-4000:]

    def log(self):
        return self.proc.log()

    def stop(self):
        self.proc.stop()


class Client:
    """openvpn with a profile, in the server's network namespace."""

    def __init__(self, server, workdir, name, profile, creds=None):
        argv = ["nsenter", "--preserve-credentials", "-U", "-n", "-t", str(server.proc.pid),
                OPENVPN, "--config", profile, "--dev", "null", "--ifconfig-noexec",
                "--route-noexec", "--verb", "3"]
        if creds:
            argv += ["--auth-user-pass", creds]
        self.server = server
        self.proc = Proc(name, argv, dict(os.environ), os.path.join(workdir, name + ".log"))
        self.server_log_start = len(server.log())

    def run_until(self, client_marks=(), server_marks=()):
        """Starts the client and waits for the first line that tells: one of
        client_marks in its own log, one of server_marks in what the server
        logged since. Returns that mark; the client is stopped."""
        self.proc.start()

        def seen():
            text, server_text = self.proc.log(), self.server.log()[self.server_log_start:]
            for mark in client_marks:
                if mark in text:
                    return mark
            for mark in server_marks:
                if mark in server_text:
                    return mark
            if not self.proc.alive():
                return "exited"
            return None
        try:
            return wait_until(seen, DEADLINE, "%s: one of %s" % (self.proc.name,
                                                                  list(client_marks) + list(server_marks)))
        finally:
            self.proc.kill()

    def log(self):
        return self.proc.log()

    def server_log(self):
        return self.server.log()[self.server_log_start:]


@pytest.fixture(scope="module")
def vpn(tmp_path_factory):
    assert os.access(TOOL, os.X_OK), "%s is missing: make unit (or VARIANT=asan)" % TOOL
    assert os.access(OPENVPN, os.X_OK), "openvpn is missing: apt-get install openvpn " \
                                        "(scripts/packages.txt)"
    assert os.path.isdir("/etc/openvpn/server"), "Debian's openvpn makes /etc/openvpn/server"
    why = tun_refused()
    if why:
        pytest.skip(why)

    d = str(tmp_path_factory.mktemp("openvpn"))
    j = lambda name: os.path.join(d, name)  # noqa: E731
    tool("new", "vpnc1", j("pki.json"))
    tool("new", "vpnc2", j("other.json"))
    tool("profile", j("pki.json"), "127.0.0.1", j("password.ovpn"))
    tool("issue", j("pki.json"), "alice", "127.0.0.1", j("alice.ovpn"))
    tool("issue", j("pki.json"), "bob", "127.0.0.1", j("bob.ovpn"))
    tool("revoke", j("pki.json"), "bob")
    tool("server", j("pki.json"), j("root"))          # after the revocation: its CRL
    tool("profile", j("other.json"), "127.0.0.1", j("other.ovpn"))
    tool("issue", j("other.json"), "carol", "127.0.0.1", j("carol.ovpn"))

    os.mkdir(j("pam.d"))
    write(j("pam.d/login"), PAM_LOGIN.format(dir=d), 0o644)
    write(j("check-password"), CHECK_PASSWORD.format(dir=d), 0o755)
    write(j("passwords"), "vpnuser1:correct horse battery\n")
    write(j("good.creds"), "vpnuser1\ncorrect horse battery\n")
    write(j("bad.creds"), "vpnuser1\nwrong horse\n")

    server = Server(d, j("root"))
    server.start()
    yield {"dir": d, "server": server}
    server.stop()
    assert "Exiting due to fatal error" not in server.log()


def client(vpn, name, profile, creds=None):
    d = vpn["dir"]
    return Client(vpn["server"], d, name, os.path.join(d, profile),
                  os.path.join(d, creds) if creds else None)


def test_password_user_connects_with_the_reference_profile(vpn):
    d = vpn["dir"]
    # GET …/deployment/vpn answers the JSON string; the reference's line
    # turns it into the file.
    r = subprocess.run(["/bin/bash", "-c", "echo -e `cat \"$1\" | tr -d '\"'`", "fetch",
                        os.path.join(d, "password.ovpn.json")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == read(os.path.join(d, "password.ovpn")) + "\n"
    write(os.path.join(d, "reference.ovpn"), r.stdout)
    assert "\nauth-user-pass\n" in r.stdout and "<cert>" not in r.stdout

    c = client(vpn, "password", "reference.ovpn", "good.creds")
    assert c.run_until([CONNECTED, "AUTH_FAILED"]) == CONNECTED, c.log()[-4000:]
    assert "Username/Password authentication succeeded for username 'vpnuser1'" in c.server_log()
    assert "Peer Connection Initiated" in c.server_log()


def test_issued_user_connects_with_its_certificate(vpn):
    assert "auth-user-pass" not in read(os.path.join(vpn["dir"], "alice.ovpn"))
    c = client(vpn, "alice", "alice.ovpn")
    assert c.run_until([CONNECTED, "AUTH_FAILED"]) == CONNECTED, c.log()[-4000:]
    assert "VERIFY OK: depth=0, CN=alice" in c.server_log()
    assert "[alice] Peer Connection Initiated" in c.server_log()


def test_wrong_password_is_refused(vpn):
    c = client(vpn, "badpassword", "password.ovpn", "bad.creds")
    assert c.run_until([CONNECTED, "AUTH_FAILED"]) == "AUTH_FAILED", c.log()[-4000:]
    assert "Username/Password verification failed" in c.server_log()
    assert CONNECTED not in c.log()


def test_revoked_user_is_refused(vpn):
    c = client(vpn, "bob", "bob.ovpn")
    mark = "error=certificate revoked: CN=bob"
    assert c.run_until([CONNECTED], [mark]) == mark, c.server_log()[-4000:]
    assert CONNECTED not in c.log()
    assert "[bob] Peer Connection Initiated" not in c.server_log()


def test_another_clusters_profile_is_refused(vpn):
    c = client(vpn, "other", "other.ovpn", "good.creds")
    mark = "tls-crypt unwrapping failed"
    assert c.run_until([CONNECTED, "AUTH_FAILED"], [mark]) == mark, c.server_log()[-4000:]
    assert CONNECTED not in c.log()
    assert "Peer Connection Initiated" not in c.server_log()


def test_another_cas_certificate_is_refused_even_with_this_tls_crypt_key(vpn):
    """carol of the other cluster, given this cluster's CA and tls-crypt key:
    the server itself must refuse her certificate."""
    d = vpn["dir"]
    ours, carol = read(os.path.join(d, "password.ovpn")), read(os.path.join(d, "carol.ovpn"))
    for tag in ("ca", "tls-crypt"):
        carol = carol.replace(block(carol, tag), block(ours, tag))
    write(os.path.join(d, "carol-forged.ovpn"), carol)
    c = client(vpn, "carol", "carol-forged.ovpn")
    mark = "VERIFY ERROR: depth=0, error=unable to get local issuer certificate: CN=carol"
    assert c.run_until([CONNECTED], [mark]) == mark, c.server_log()[-4000:]
    assert CONNECTED not in c.log()
