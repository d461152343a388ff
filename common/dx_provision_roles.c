/*  dx_provision_roles: what a host does as its role on its cluster type
    (docs/provision.md, "Roles"). See dx_provision_host.h.

                 mesos                          dcos
    access       OpenVPN (with a bundle),       the same, and the DC/OS
                 forwarding and NAT             bootstrap node (installer
                                                served on port 8080)
    master       ZooKeeper (ensemble over all   DC/OS master from the
                 masters, id by address),       bootstrap node
                 mesos-master (quorum n/2+1),
                 Marathon
    agent        mesos-agent (attributes,       DC/OS agent (slave or
                 role, the masters' zk URL)     slave_public), attributes
                                                and role

    Files go to write_files; the shell installs packages, puts the files
    the packages own in place and starts the services. Mesos, Marathon
    and the DC/OS pieces run from systemd units of Dexter's own
    (dexter-*.service), whose environment files hold their flags, so
    nothing depends on a package's init wrapper. */
#include "dx_provision_host.h"
#include "dx_netplan.h"

#include <stdlib.h>
#include <string.h>

#define S_BOOTSTRAP_PORT 8080
#define S_BOOTSTRAP_DIR  "/opt/dcos-bootstrap"
#define S_INSTALL_DIR    "/opt/dcos-install"
#define S_OPENVPN_CONF   "/etc/openvpn/server/dexter.conf"
#define S_OPENVPN_DIR    "/etc/openvpn/server/dexter"

static int
s_compare (const void *a, const void *b)
{
    return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/*  The Mesos attributes of the group: "key:value;..." of the attributes
    whose key and value Mesos takes as they are (text of letters, digits
    and _-./, or a number or boolean); `left_out` counts the others.
    Caller frees. */
static char *
s_mesos_attributes (dx_prov_t *self, size_t *left_out)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    if (!out) {
        dx_prov_fail (self, "out of memory");
        return NULL;
    }
    *left_out = 0;
    const char *key;
    json_t *value;
    size_t written = 0;
    //  Sorted, for the same document every time
    size_t count = json_object_size (self->attributes), n = 0;
    const char **sorted = calloc (count + 1, sizeof *sorted);
    json_object_foreach ((json_t *) self->attributes, key, value)
        if (sorted)
            sorted [n++] = key;
    if (sorted)
        qsort (sorted, count, sizeof *sorted, s_compare);
    else
        dx_prov_fail (self, "out of memory");
    for (size_t i = 0; sorted && i < count; i++) {
        value = json_object_get (self->attributes, sorted [i]);
        char scalar [64] = "";
        const char *text_value = dx_prov_scalar (value, scalar, sizeof scalar);
        bool ok = text_value && *text_value && strlen (sorted [i]) <= 128
                  && strlen (text_value) <= 256;
        for (const char *c = sorted [i]; ok && *c; c++)
            ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
                 || strchr ("_-./", *c);
        for (const char *c = text_value; ok && *c; c++)
            ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
                 || strchr ("_-./", *c);
        if (ok)
            fprintf (out, "%s%s:%s", written++? ";": "", sorted [i], text_value);
        else
            (*left_out)++;
    }
    free (sorted);
    if (fclose (out) != 0) {
        free (text);
        dx_prov_fail (self, "out of memory");
        return NULL;
    }
    return text;
}

/*  A systemd unit of Dexter's own. */
static void
s_unit (dx_prov_t *self, const char *name, const char *description, const char *after,
        const char *service)
{
    char path [128];
    snprintf (path, sizeof path, "/etc/systemd/system/%s.service", name);
    dx_prov_file_fmt (self, path, "0644",
        "# Written by Dexter (common/dx_provision)\n"
        "[Unit]\nDescription=%s\nWants=network-online.target\nAfter=network-online.target%s%s\n\n"
        "[Service]\n%s\n[Install]\nWantedBy=multi-user.target\n",
        description, *after? " ": "", after, service);
}

/*  The apt source of the Mesos and Marathon packages, and their pins. */
static void
s_mesos_source (dx_prov_t *self)
{
    const dx_prov_settings_t *s = &self->settings;
    const char *pins [][2] = { { "mesos", s->mesos_version }, { "marathon", s->marathon_version } };
    char *prefs = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&prefs, &size);
    if (!out) {
        dx_prov_fail (self, "out of memory");
        return;
    }
    fprintf (out, "# Written by Dexter: DEXTER_MESOS_VERSION, DEXTER_MARATHON_VERSION\n");
    for (size_t i = 0; i < 2; i++)
        if (*pins [i][1])
            fprintf (out, "\nPackage: %s\nPin: version %s*\nPin-Priority: 1001\n",
                     pins [i][0], pins [i][1]);
    if (fclose (out) != 0) {
        dx_prov_fail (self, "out of memory");
        free (prefs);
        return;
    }
    if (*s->mesos_version || *s->marathon_version)
        dx_prov_file (self, "/etc/apt/preferences.d/dexter-mesos", "0644", prefs);
    free (prefs);
    dx_prov_sh (self, "# Mesos packages: DEXTER_MESOS_APT_REPO, _DIST, _KEY_URL (docs/provision.md)");
    if (*s->mesos_apt_dist)
        dx_prov_sh (self, "dx_dist='%s'", s->mesos_apt_dist);
    else
        dx_prov_sh (self, "dx_dist=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release)");
    if (*s->mesos_apt_key_url) {
        dx_prov_sh (self, "mkdir -p /etc/apt/keyrings");
        dx_prov_sh (self, "curl -fsSL --retry 5 -o /etc/apt/keyrings/dexter-mesos.asc '%s'",
                    s->mesos_apt_key_url);
        dx_prov_sh (self, "echo \"deb [signed-by=/etc/apt/keyrings/dexter-mesos.asc] %s $dx_dist main\" "
                    ">/etc/apt/sources.list.d/dexter-mesos.list", s->mesos_apt_repo);
    }
    else
        dx_prov_sh (self, "echo \"deb %s $dx_dist main\" >/etc/apt/sources.list.d/dexter-mesos.list",
                    s->mesos_apt_repo);
    dx_prov_sh (self, "dx_apt update");
}

/*  Docker, which the DC/OS nodes and the Mesos agents' docker
    containerizer need, from the image's own archive. */
static void
s_docker (dx_prov_t *self, const char *more)
{
    dx_prov_sh (self, "dx_apt install docker.io%s%s", *more? " ": "", more);
    dx_prov_sh (self, "systemctl enable --now docker");
}

/*  The instance metadata that says this host's tags: IMDSv2 on aws (with
    InstanceMetadataTags, which the aws-worker enables for the access
    node), Azure's IMDS tagsList on azure. The script's `tag KEY`. */
static const char *const s_crl_tag_aws =
    "token=$(curl -fsS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' \"$imds/latest/api/token\")\n"
    "# tag KEY: the value of this instance's tag KEY; fails when there is none\n"
    "tag() {\n"
    "    curl -fsS -H \"X-aws-ec2-metadata-token: $token\" \"$imds/latest/meta-data/tags/instance/$1\"\n"
    "}\n";
static const char *const s_crl_tag_azure =
    "curl -fsS -H 'Metadata: true' \\\n"
    "    \"$imds/metadata/instance/compute/tagsList?api-version=2021-02-01\" >\"$work/tags.json\"\n"
    "# tag KEY: the value of this VM's tag KEY; fails when there is none\n"
    "tag() {\n"
    "    python3 -c 'import json, sys\n"
    "tags = {t[\"name\"]: t[\"value\"] for t in json.load(open(sys.argv[1]))}\n"
    "if sys.argv[2] not in tags:\n"
    "    sys.exit(1)\n"
    "sys.stdout.write(tags[sys.argv[2]])' \"$work/tags.json\" \"$1\"\n"
    "}\n";

/*  The CRL a deploy writes into the access node's tags (common/dx_crltags.h:
    dexter:crl "NUMBER:CHUNKS", dexter:crl.0 ... the DER CRL in base64),
    installed by a timer every minute once it checks against the
    cluster's CA, as the file OpenVPN's crl-verify reads on every new
    connection (docs/vpn.md, "The CRL and the access node"). */
static void
s_crl_timer (dx_prov_t *self)
{
    dx_prov_file_fmt (self, "/usr/local/sbin/dexter-crl", "0755",
        "#!/bin/bash\n"
        "# Written by Dexter (common/dx_provision): installs the CRL that a deploy\n"
        "# wrote into this access node's tags, read from the instance metadata, once\n"
        "# it is the cluster CA's, as " S_OPENVPN_DIR "/crl.pem. Run every\n"
        "# minute by dexter-crl.timer.\n"
        "set -eu\n"
        "dir=" S_OPENVPN_DIR "\n"
        "imds=http://169.254.169.254\n"
        "work=$(mktemp -d)\n"
        "trap 'rm -rf \"$work\"' EXIT\n"
        "%s"
        "# No CRL in the tags: the one the user data wrote stands\n"
        "head=$(tag dexter:crl) || exit 0\n"
        "number=${head%%%%:*} chunks=${head#*:}\n"
        "case $number:$chunks in\n"
        "    :* | *: | *[!0-9:]* | *:*:*) echo \"dexter-crl: dexter:crl is not NUMBER:CHUNKS: $head\" >&2; exit 1 ;;\n"
        "esac\n"
        "[ \"$(cat \"$dir/crl.number\" 2>/dev/null || true)\" != \"$number\" ] || exit 0\n"
        "i=0\n"
        ": >\"$work/crl.b64\"\n"
        "while [ \"$i\" -lt \"$chunks\" ]; do\n"
        "    tag \"dexter:crl.$i\" >>\"$work/crl.b64\"\n"
        "    i=$((i + 1))\n"
        "done\n"
        "base64 -d \"$work/crl.b64\" >\"$work/crl.der\"\n"
        "# openssl says whether the signature is the CA's, and exits 0 either way\n"
        "verify=$(openssl crl -inform DER -in \"$work/crl.der\" -CAfile \"$dir/ca.crt\" -noout 2>&1) || true\n"
        "if [ \"$verify\" != \"verify OK\" ]; then\n"
        "    echo \"dexter-crl: CRL $number of the tags is not the cluster CA's: $verify\" >&2\n"
        "    exit 1\n"
        "fi\n"
        "have=$(openssl crl -inform DER -in \"$work/crl.der\" -noout -crlnumber)\n"
        "have=$((${have#crlNumber=}))\n"
        "if [ \"$have\" != \"$number\" ]; then\n"
        "    echo \"dexter-crl: the tags say CRL $number, the CRL is number $have\" >&2\n"
        "    exit 1\n"
        "fi\n"
        "openssl crl -inform DER -in \"$work/crl.der\" -out \"$work/crl.pem\"\n"
        "chmod 0644 \"$work/crl.pem\"\n"
        "# One rename: OpenVPN reads the old file or the new one, never half\n"
        "mv -f \"$work/crl.pem\" \"$dir/crl.pem.new\"\n"
        "mv -f \"$dir/crl.pem.new\" \"$dir/crl.pem\"\n"
        "echo \"$number\" >\"$dir/crl.number\"\n"
        "echo \"dexter-crl: installed CRL $number\"\n",
        strcmp (self->provider, "aws") == 0? s_crl_tag_aws: s_crl_tag_azure);
    dx_prov_file (self, "/etc/systemd/system/dexter-crl.service", "0644",
        "# Written by Dexter (common/dx_provision)\n"
        "[Unit]\nDescription=Dexter: the CRL of the access node's tags for OpenVPN\n"
        "Wants=network-online.target\nAfter=network-online.target\n\n"
        "[Service]\nType=oneshot\nExecStart=/usr/local/sbin/dexter-crl\n");
    dx_prov_file (self, "/etc/systemd/system/dexter-crl.timer", "0644",
        "# Written by Dexter (common/dx_provision)\n"
        "[Unit]\nDescription=Dexter: the CRL of the access node's tags, every minute\n\n"
        "[Timer]\nOnBootSec=1min\nOnUnitActiveSec=1min\n\n"
        "[Install]\nWantedBy=timers.target\n");
    dx_prov_sh (self, "# The CRL of the access node's tags, every minute");
    dx_prov_sh (self, "systemctl daemon-reload");
    dx_prov_sh (self, "systemctl enable --now dexter-crl.timer");
}

/*  The access node's OpenVPN server, from the vpn service's bundle: the
    config as /etc/openvpn/server/dexter.conf (openvpn-server@dexter), the
    files it names under /etc/openvpn/server/dexter/, keys readable by
    root alone. */
static void
s_openvpn (dx_prov_t *self)
{
    static const struct {
        const char *field, *path, *mode, *begins;
        bool optional;
    } parts [] = {
        { "server_conf", S_OPENVPN_CONF,               "0644", NULL, false },
        { "ca",          S_OPENVPN_DIR "/ca.crt",        "0644", "-----BEGIN CERTIFICATE-----", false },
        { "cert",        S_OPENVPN_DIR "/server.crt",    "0644", "-----BEGIN CERTIFICATE-----", false },
        { "key",         S_OPENVPN_DIR "/server.key",    "0600", "-----BEGIN ", false },
        { "tls_crypt",   S_OPENVPN_DIR "/tls-crypt.key", "0600", "-----BEGIN OpenVPN Static key V1-----", false },
        { "crl",         S_OPENVPN_DIR "/crl.pem",       "0644", "-----BEGIN X509 CRL-----", false },
        { "auth",        S_OPENVPN_DIR "/auth.py",       "0755", "#!", true },
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts [0]; i++) {
        const char *text = json_string_value (json_object_get (self->vpn, parts [i].field));
        if (parts [i].optional && !json_object_get (self->vpn, parts [i].field))
            continue;
        if (!text || !*text || strlen (text) > 65536
        || (parts [i].begins && !strstr (text, parts [i].begins))) {
            dx_prov_fail (self, "host step: vpn.%s is missing or is not what the access "
                          "node's OpenVPN server takes", parts [i].field);
            return;
        }
        dx_prov_file (self, parts [i].path, parts [i].mode, text);
    }
    const char *conf = json_string_value (json_object_get (self->vpn, "server_conf"));
    if (!strstr (conf, "\nserver ") && strncmp (conf, "server ", 7) != 0
    &&  !strstr (conf, "mode server")) {
        dx_prov_fail (self, "host step: vpn.server_conf is not a server configuration "
                      "(no `server` or `mode server`)");
        return;
    }
    dx_prov_sh (self, "# OpenVPN server on UDP 1194: " S_OPENVPN_CONF);
    dx_prov_sh (self, "dx_apt install openvpn");
    dx_prov_sh (self, "systemctl enable --now openvpn-server@dexter");
    s_crl_timer (self);
}

static void
s_access (dx_prov_t *self)
{
    dx_prov_sh (self, "# ---- Role: access node ----------------------------------------------");
    dx_prov_sh (self, "dx_apt update");
    //  Forwarding and NAT into the cluster network, for VPN clients
    dx_prov_file (self, "/etc/sysctl.d/60-dexter-forward.conf", "0644",
                  "# Written by Dexter: the access node routes VPN clients into the cluster\n"
                  "net.ipv4.ip_forward = 1\n");
    dx_prov_file (self, "/usr/local/sbin/dexter-nat", "0755",
        "#!/bin/sh\n"
        "# Written by Dexter: traffic from outside the cluster network (VPN\n"
        "# clients) into it leaves with this host's address, so the hosts answer\n"
        "# without routes of their own. Run by dexter-nat.service.\n"
        "set -eu\n"
        "net=" DX_NET_CIDR "\n"
        "# rule TABLE CHAIN RULE...: the rule first in its chain, once\n"
        "rule() {\n"
        "    table=$1 chain=$2\n"
        "    shift 2\n"
        "    iptables -t \"$table\" -C \"$chain\" \"$@\" 2>/dev/null ||\n"
        "        iptables -t \"$table\" -I \"$chain\" 1 \"$@\"\n"
        "}\n"
        "rule nat POSTROUTING ! -s \"$net\" -d \"$net\" -j MASQUERADE\n"
        "rule filter FORWARD -d \"$net\" -j ACCEPT\n"
        "rule filter FORWARD -s \"$net\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n");
    s_unit (self, "dexter-nat", "Dexter: NAT from VPN clients into the cluster network",
            "docker.service", "Type=oneshot\nRemainAfterExit=yes\n"
            "ExecStart=/usr/local/sbin/dexter-nat\n");
    dx_prov_sh (self, "# Forwarding and NAT into " DX_NET_CIDR);
    dx_prov_sh (self, "dx_apt install iptables");
    dx_prov_sh (self, "sysctl -p /etc/sysctl.d/60-dexter-forward.conf");
    if (self->vpn)
        s_openvpn (self);
    else
        dx_prov_sh (self, "echo 'dexter: no OpenVPN server bundle came with this host; "
                    "OpenVPN is not installed'");

    if (strcmp (self->type, "dcos") == 0) {
        //  The bootstrap node: the installer's genconf, served over HTTP
        static const char *const resolvers [][2] = {
            { "aws", "169.254.169.253" },     /* the VPC's DNS */
            { "azure", "168.63.129.16" },     /* Azure's DNS */
        };
        const char *resolver = strcmp (self->provider, "aws") == 0? resolvers [0][1]
                                                                  : resolvers [1][1];
        char *list = NULL;
        size_t size = 0;
        FILE *out = open_memstream (&list, &size);
        for (size_t i = 0; out && i < self->master_count; i++)
            fprintf (out, "- %s\n", self->masters [i]);
        if (!out || fclose (out) != 0) {
            dx_prov_fail (self, "out of memory");
            return;
        }
        dx_prov_file_fmt (self, S_BOOTSTRAP_DIR "/genconf/config.yaml", "0644",
            "# Written by Dexter: DC/OS advanced install, static masters\n"
            "bootstrap_url: http://" DX_NET_ACCESS_IP ":%d\n"
            "cluster_name: %s\n"
            "exhibitor_storage_backend: static\n"
            "master_discovery: static\n"
            "master_list:\n%s"
            "resolvers:\n- %s\n",
            S_BOOTSTRAP_PORT, self->cluster, list, resolver);
        free (list);
        dx_prov_file (self, S_BOOTSTRAP_DIR "/genconf/ip-detect", "0755",
            "#!/bin/sh\n"
            "# Written by Dexter: a node's address in the cluster network\n"
            "set -eu\n"
            "ip -4 -o route get " DX_NET_ACCESS_IP " | sed -n 's/.* src \\([0-9.]*\\).*/\\1/p' | head -n 1\n");
        char service [256];
        snprintf (service, sizeof service,
                  "ExecStart=/usr/bin/python3 -m http.server %d --bind 0.0.0.0 --directory "
                  S_BOOTSTRAP_DIR "/genconf/serve\nRestart=always\nRestartSec=5\n",
                  S_BOOTSTRAP_PORT);
        s_unit (self, "dexter-dcos-bootstrap", "Dexter: the DC/OS installer for the cluster's "
                "nodes", "", service);
        dx_prov_sh (self, "# DC/OS bootstrap node: DEXTER_DCOS_INSTALLER_URL, served on port %d",
                    S_BOOTSTRAP_PORT);
        s_docker (self, "curl python3");
        dx_prov_sh (self, "curl -fsSL --retry 5 -o " S_BOOTSTRAP_DIR "/dcos_generate_config.sh '%s'",
                    self->settings.dcos_installer_url);
        dx_prov_sh (self, "(cd " S_BOOTSTRAP_DIR " && bash dcos_generate_config.sh)");
        dx_prov_sh (self, "systemctl daemon-reload");
        dx_prov_sh (self, "systemctl enable --now dexter-dcos-bootstrap");
    }
    dx_prov_sh (self, "systemctl daemon-reload");
    dx_prov_sh (self, "systemctl enable --now dexter-nat");
}

/*  A DC/OS master or agent: dcos_install.sh from the bootstrap node. */
static void
s_dcos_node (dx_prov_t *self, const char *node_role)
{
    dx_prov_sh (self, "dx_apt update");
    s_docker (self, "curl ipset unzip xz-utils");
    dx_prov_sh (self, "# DC/OS %s from the bootstrap node (the access node)", node_role);
    dx_prov_sh (self, "mkdir -p " S_INSTALL_DIR);
    dx_prov_sh (self, "for _ in $(seq 1 720); do");
    dx_prov_sh (self, "    curl -fsS -o " S_INSTALL_DIR "/dcos_install.sh "
                "http://" DX_NET_ACCESS_IP ":%d/dcos_install.sh && break", S_BOOTSTRAP_PORT);
    dx_prov_sh (self, "    sleep 5");
    dx_prov_sh (self, "done");
    dx_prov_sh (self, "[ -s " S_INSTALL_DIR "/dcos_install.sh ] || "
                "{ echo 'dexter: the bootstrap node did not serve dcos_install.sh'; exit 1; }");
    dx_prov_sh (self, "(cd " S_INSTALL_DIR " && bash dcos_install.sh %s)", node_role);
}

static void
s_master (dx_prov_t *self)
{
    dx_prov_sh (self, "# ---- Role: master -----------------------------------------------------");
    if (strcmp (self->type, "dcos") == 0) {
        s_dcos_node (self, "master");
        return;
    }
    const char *ip = self->masters [self->zk_id - 1];
    char *zk_mesos = dx_prov_zk_url (self, "/mesos");
    char *zk_marathon = dx_prov_zk_url (self, "/marathon");
    //  ZooKeeper: the ensemble over every master, this one's id
    char *servers = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&servers, &size);
    for (size_t i = 0; out && i < self->master_count; i++)
        fprintf (out, "server.%zu=%s:2888:3888\n", i + 1, self->masters [i]);
    if (!out || fclose (out) != 0 || !zk_mesos || !zk_marathon) {
        dx_prov_fail (self, "out of memory");
        free (zk_mesos);
        free (zk_marathon);
        free (servers);
        return;
    }
    dx_prov_file_fmt (self, "/etc/dexter/zookeeper/zoo.cfg", "0644",
        "# Written by Dexter: the ensemble of the cluster's %zu masters\n"
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\n"
        "dataDir=/var/lib/zookeeper\nclientPort=2181\n%s",
        self->master_count, servers);
    dx_prov_file_fmt (self, "/etc/dexter/zookeeper/myid", "0644", "%zu\n", self->zk_id);
    free (servers);
    dx_prov_file_fmt (self, "/etc/dexter/mesos-master.env", "0644",
        "# Written by Dexter: mesos-master's flags (MESOS_<FLAG>)\n"
        "MESOS_ZK=%s\nMESOS_QUORUM=%zu\nMESOS_IP=%s\nMESOS_HOSTNAME=%s\n"
        "MESOS_CLUSTER=%s\nMESOS_WORK_DIR=/var/lib/mesos/master\nMESOS_LOG_DIR=/var/log/mesos\n",
        zk_mesos, self->master_count / 2 + 1, ip, ip, self->cluster);
    dx_prov_file_fmt (self, "/etc/dexter/marathon.env", "0644",
        "# Written by Dexter: Marathon's flags (MARATHON_<FLAG>)\n"
        "MARATHON_MASTER=%s\nMARATHON_ZK=%s\nMARATHON_HOSTNAME=%s\nMARATHON_HTTP_PORT=8080\n",
        zk_mesos, zk_marathon, ip);
    free (zk_mesos);
    free (zk_marathon);
    s_unit (self, "dexter-mesos-master", "Dexter: Mesos master", "zookeeper.service",
            "EnvironmentFile=/etc/dexter/mesos-master.env\n"
            "ExecStart=/usr/sbin/mesos-master\nRestart=always\nRestartSec=5\nLimitNOFILE=65536\n");
    s_unit (self, "dexter-marathon", "Dexter: Marathon", "dexter-mesos-master.service",
            "EnvironmentFile=/etc/dexter/marathon.env\n"
            "ExecStart=/usr/share/marathon/bin/marathon\nRestart=always\nRestartSec=5\n");
    s_mesos_source (self);
    dx_prov_sh (self, "dx_apt install zookeeperd mesos marathon");
    dx_prov_sh (self, "# The packages' own services give way to Dexter's");
    dx_prov_sh (self, "systemctl disable --now mesos-master mesos-slave marathon || true");
    dx_prov_sh (self, "# ZooKeeper %zu of %zu", self->zk_id, self->master_count);
    dx_prov_sh (self, "mkdir -p /etc/zookeeper/conf /var/lib/zookeeper");
    dx_prov_sh (self, "install -m 0644 /etc/dexter/zookeeper/zoo.cfg /etc/zookeeper/conf/zoo.cfg");
    dx_prov_sh (self, "install -m 0644 /etc/dexter/zookeeper/myid /etc/zookeeper/conf/myid");
    dx_prov_sh (self, "install -m 0644 /etc/dexter/zookeeper/myid /var/lib/zookeeper/myid");
    dx_prov_sh (self, "systemctl enable zookeeper");
    dx_prov_sh (self, "systemctl restart zookeeper");
    dx_prov_sh (self, "systemctl daemon-reload");
    dx_prov_sh (self, "systemctl enable --now dexter-mesos-master dexter-marathon");
}

static void
s_agent (dx_prov_t *self)
{
    dx_prov_sh (self, "# ---- Role: agent ------------------------------------------------------");
    size_t left_out = 0;
    char *attributes = s_mesos_attributes (self, &left_out);
    if (!attributes)
        return;
    if (left_out)
        dx_prov_sh (self, "echo 'dexter: %zu of the group attributes are not Mesos attributes "
                    "(text of letters, digits and _-./, or numbers): left out of --attributes, "
                    "kept in /etc/dexter/attributes.json'", left_out);
    bool has_role = strcmp (self->group_role, "*") != 0;
    if (strcmp (self->type, "dcos") == 0) {
        bool public = strcmp (self->group_role, "slave_public") == 0;
        bool role_line = has_role && !public;
        dx_prov_file_fmt (self, "/var/lib/dcos/mesos-slave-common", "0644",
            "# Written by Dexter: the group's attributes and role\n%s%s%s%s%s%s",
            *attributes? "MESOS_ATTRIBUTES=": "", attributes, *attributes? "\n": "",
            role_line? "MESOS_DEFAULT_ROLE=": "", role_line? self->group_role: "",
            role_line? "\n": "");
        const char *units [] = { "dcos-mesos-slave", "dcos-mesos-slave-public" };
        for (size_t i = 0; i < 2; i++) {
            char path [128];
            snprintf (path, sizeof path, "/etc/systemd/system/%s.service.d/dexter-vars.conf",
                      units [i]);
            dx_prov_file (self, path, "0644", "# Written by Dexter: the group's vars\n"
                          "[Service]\nEnvironmentFile=-/etc/dexter/vars.env\n");
        }
        s_dcos_node (self, public? "slave_public": "slave");
        free (attributes);
        return;
    }
    char *zk = dx_prov_zk_url (self, "/mesos");
    if (!zk) {
        free (attributes);
        dx_prov_fail (self, "out of memory");
        return;
    }
    dx_prov_file_fmt (self, "/etc/dexter/mesos-agent.env", "0644",
        "# Written by Dexter: mesos-agent's flags (MESOS_<FLAG>)\n"
        "MESOS_MASTER=%s\nMESOS_WORK_DIR=/var/lib/mesos/agent\nMESOS_LOG_DIR=/var/log/mesos\n"
        "MESOS_CONTAINERIZERS=docker,mesos\n%s%s%s%s%s%s",
        zk, *attributes? "MESOS_ATTRIBUTES=": "", attributes, *attributes? "\n": "",
        has_role? "MESOS_DEFAULT_ROLE=": "", has_role? self->group_role: "", has_role? "\n": "");
    free (zk);
    free (attributes);
    //  The vars first: the agent's own flags win over a var of the same name
    s_unit (self, "dexter-mesos-agent", "Dexter: Mesos agent", "docker.service",
            "EnvironmentFile=-/etc/dexter/vars.env\n"
            "EnvironmentFile=/etc/dexter/mesos-agent.env\n"
            "ExecStart=/usr/sbin/mesos-agent\nRestart=always\nRestartSec=5\n"
            "KillMode=process\nDelegate=true\nLimitNOFILE=65536\n");
    s_mesos_source (self);
    s_docker (self, "mesos");
    dx_prov_sh (self, "# The package's own services give way to Dexter's");
    dx_prov_sh (self, "systemctl disable --now mesos-master mesos-slave || true");
    dx_prov_sh (self, "systemctl daemon-reload");
    dx_prov_sh (self, "systemctl enable --now dexter-mesos-agent");
}

void
dx_prov_role (dx_prov_t *self)
{
    if (strcmp (self->role, "access") == 0)
        s_access (self);
    else
    if (strcmp (self->role, "master") == 0)
        s_master (self);
    else
        s_agent (self);
}
