/*  Unit tests for common/dx_provision*.c: the user data of every role x
    type x provider holds what the host needs (ZooKeeper ensemble and id,
    quorum, attributes, role, disks, the OpenVPN files), each file's
    content comes back exactly from the #cloud-config part, hostile
    attributes and vars reach no shell, every shell part passes `bash -n`,
    the user data is gzipped exactly when over the provider's limit, and
    unsafe values, missing settings and oversized documents are refused.

    With DX_PROVISION_RENDER_DIR set, the tests also write what they made
    to that directory, for tests/e2e/test_provision.py (cloud-init schema,
    shellcheck, a sandboxed run): each host's document (ROLE-TYPE-PROVIDER
    .mime) and user data (.userdata, base64-decoded), a gzipped one
    (gzipped.*), the hostile one (hostile.mime) and an aws agent of a
    batch (batch.*). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "dx_provision.h"
#include "dx_util.h"

#define BOUNDARY "--==DEXTER-USER-DATA-7f3a9c=="
#define DCOS_INSTALLER_URL "https://mirror.example.com/dcos/dcos_generate_config.sh"

static const char *s_pem_cert = "-----BEGIN CERTIFICATE-----\nMIIBdTCCARugAwIBAgIU\n-----END CERTIFICATE-----\n";
static const char *s_pem_key = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----\n";
static const char *s_tls_crypt = "-----BEGIN OpenVPN Static key V1-----\n0123456789abcdef\n-----END OpenVPN Static key V1-----\n";
static const char *s_crl = "-----BEGIN X509 CRL-----\nMIIBCDCBrwIBATAKBggq\n-----END X509 CRL-----\n";
static const char *s_server_conf = "port 1194\nproto udp\ndev tun\nserver 10.8.0.0 255.255.255.0\n"
    "ca /etc/openvpn/server/dexter/ca.crt\ncert /etc/openvpn/server/dexter/server.crt\n"
    "key /etc/openvpn/server/dexter/server.key\ntls-crypt /etc/openvpn/server/dexter/tls-crypt.key\n"
    "crl-verify /etc/openvpn/server/dexter/crl.pem\nscript-security 2\n"
    "auth-user-pass-verify /etc/openvpn/server/dexter/auth.py via-file\n";
static const char *s_auth = "#!/usr/bin/env python3\nimport sys\nsys.exit(1)\n";

static json_t *
s_vpn (void)
{
    return json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "ca", s_pem_cert, "cert", s_pem_cert,
                      "key", s_pem_key, "tls_crypt", s_tls_crypt, "crl", s_crl,
                      "server_conf", s_server_conf, "auth", s_auth);
}

/*  The host step of role on type and provider, as the scheduler plans it:
    master 1 of three, agent 3 of a public group with two disks. */
static json_t *
s_step (const char *role, const char *type, const char *provider)
{
    bool agent = strcmp (role, "agent") == 0, master = strcmp (role, "master") == 0;
    json_t *step = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s}}",
        "kind", "host", "role", role, "cluster_type", type, "provider", provider,
        "hostname", agent? "c1-g1-3": master? "c1-master-1": "c1-access",
        "group", agent? "g1": master? "masters": "access",
        "group_role", agent? "slave_public": "",
        "context", "masters_ips", "10.0.0.11,10.0.0.12,10.0.0.13");
    if (!agent)
        json_object_set_new (step, "private_ip", json_string (master? "10.0.0.12": "10.0.0.10"));
    json_object_set_new (step, "slot", json_integer (agent? 3: master? 1: 0));
    json_object_set_new (step, "disks", agent
        ? json_pack ("[{s:i, s:s, s:s}, {s:i, s:s, s:s}]", "size", 100, "type", "gp2",
                     "device", "xvdg", "size", 20, "type", "gp3", "device", "xvdf")
        : json_array ());
    json_object_set_new (step, "attributes", agent
        ? json_pack ("{s:s, s:i, s:s, s:o}", "rack", "r1", "cores", 8, "zone", "eu west",
                     "gpu", json_true ()): json_object ());
    json_object_set_new (step, "vars", agent
        ? json_pack ("{s:s, s:i, s:{s:[i, i]}, s:s}", "APP_ENV", "prod", "WORKERS", 4,
                     "nested", "list", 1, 2, "quoted", "a'b")
        : json_object ());
    if (strcmp (role, "access") == 0)
        json_object_set_new (step, "vpn", s_vpn ());
    if (strcmp (type, "dcos") == 0)
        json_object_set_new (step, "dcos_installer_url", json_string (DCOS_INSTALLER_URL));
    return step;
}

static void
s_settings (void)
{
    setenv ("DEXTER_MESOS_APT_REPO", "http://mirror.example.com/mesos/ubuntu", 1);
    setenv ("DEXTER_MESOS_VERSION", "1.11.0", 1);
    unsetenv ("DEXTER_MESOS_APT_DIST");
    setenv ("DEXTER_MESOS_APT_KEY_URL", "none", 1);
    unsetenv ("DEXTER_MARATHON_VERSION");
}

static char *
s_document (const json_t *step)
{
    char err [256];
    char *document = dx_provision_document ("c1", step, NULL, err, sizeof err);
    if (!document)
        print_error ("dx_provision_document: %s\n", err);
    assert_non_null (document);
    return document;
}

/*  Part `index` (0: cloud-config, 1: shell) of document (caller frees). */
static char *
s_part (const char *document, int index)
{
    const char *at = document;
    for (int i = 0; i <= index; i++) {
        at = strstr (at, "\n" BOUNDARY "\n");
        assert_non_null (at);
        at += strlen ("\n" BOUNDARY "\n");
    }
    at = strstr (at, "\n\n");
    assert_non_null (at);
    at += 2;
    const char *end = strstr (at - 1, "\n" BOUNDARY);
    assert_non_null (end);
    return strndup (at, (size_t) (end + 1 - at));
}

/*  The content of write_files' path in config, unescaped (caller frees),
    or NULL; its permissions in mode. */
static char *
s_file (const char *config, const char *path, char *mode)
{
    char head [256];
    snprintf (head, sizeof head, "  - path: %s\n", path);
    const char *at = strstr (config, head);
    if (!at)
        return NULL;
    const char *perm = strstr (at, "    permissions: '");
    assert_non_null (perm);
    if (mode)
        snprintf (mode, 5, "%s", perm + strlen ("    permissions: '"));
    at = strstr (at, "    content: \"");
    assert_non_null (at);
    at += strlen ("    content: \"");
    char *out = calloc (1, strlen (at) + 1);
    size_t n = 0;
    for (; *at != '"'; at++) {
        assert_true (*at != 0);
        if (*at != '\\') {
            out [n++] = *at;
            continue;
        }
        at++;
        switch (*at) {
            case 'n': out [n++] = '\n'; break;
            case 't': out [n++] = '\t'; break;
            case '"': out [n++] = '"'; break;
            case '\\': out [n++] = '\\'; break;
            case '\n':                  /* a fold: the next line's indentation goes */
                while (at [1] == ' ')
                    at++;
                break;
            default: fail_msg ("unexpected escape \\%c", *at);
        }
    }
    return out;
}

/*  The file's content equals expected, with mode. */
static void
s_file_is (const char *config, const char *path, const char *mode, const char *expected)
{
    char got_mode [8] = "";
    char *content = s_file (config, path, got_mode);
    if (!content)
        print_error ("no %s in write_files\n", path);
    assert_non_null (content);
    if (expected && strcmp (content, expected) != 0)
        print_error ("%s is\n%s\nnot\n%s\n", path, content, expected);
    if (expected)
        assert_string_equal (content, expected);
    assert_string_equal (got_mode, mode);
    free (content);
}

/*  The file's content holds needle. */
static void
s_file_has (const char *config, const char *path, const char *needle)
{
    char *content = s_file (config, path, NULL);
    if (!content || !strstr (content, needle))
        print_error ("%s does not hold '%s':\n%s\n", path, needle, content? content: "(none)");
    assert_non_null (content);
    assert_non_null (strstr (content, needle));
    free (content);
}

static void
s_has (const char *text, const char *needle)
{
    if (!strstr (text, needle))
        print_error ("missing '%s' in:\n%s\n", needle, text);
    assert_non_null (strstr (text, needle));
}

static void
s_write (const char *dir, const char *name, const char *suffix, const void *data, size_t size)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s.%s", dir, name, suffix);
    FILE *f = fopen (path, "wb");
    assert_non_null (f);
    assert_int_equal (fwrite (data, 1, size, f), size);
    fclose (f);
}

/*  `bash -n` on the script. */
static void
s_bash_syntax (const char *script)
{
    char path [] = "/tmp/dx-provision-XXXXXX";
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    assert_int_equal (write (fd, script, strlen (script)), (ssize_t) strlen (script));
    close (fd);
    char cmd [128];
    snprintf (cmd, sizeof cmd, "/bin/bash -n %s", path);
    int rc = system (cmd);
    unlink (path);
    assert_int_equal (rc, 0);
}

static void
s_check_master (const char *type, const char *config, const char *shell)
{
    if (strcmp (type, "dcos") == 0) {
        s_has (shell, "curl -fsS -o /opt/dcos-install/dcos_install.sh http://10.0.0.10:8080/dcos_install.sh");
        s_has (shell, "bash dcos_install.sh master)");
        assert_null (strstr (config, "zoo.cfg"));
        return;
    }
    s_file_is (config, "/etc/dexter/zookeeper/myid", "0644", "2\n");
    s_file_has (config, "/etc/dexter/zookeeper/zoo.cfg",
                "server.1=10.0.0.11:2888:3888\nserver.2=10.0.0.12:2888:3888\n"
                "server.3=10.0.0.13:2888:3888\n");
    const char *zk = "zk://10.0.0.11:2181,10.0.0.12:2181,10.0.0.13:2181";
    char expect [256];
    snprintf (expect, sizeof expect, "MESOS_ZK=%s/mesos\nMESOS_QUORUM=2\nMESOS_IP=10.0.0.12\n", zk);
    s_file_has (config, "/etc/dexter/mesos-master.env", expect);
    snprintf (expect, sizeof expect, "MARATHON_MASTER=%s/mesos\nMARATHON_ZK=%s/marathon\n", zk, zk);
    s_file_has (config, "/etc/dexter/marathon.env", expect);
    s_file_has (config, "/etc/systemd/system/dexter-mesos-master.service",
                "ExecStart=/usr/sbin/mesos-master\n");
    s_file_has (config, "/etc/apt/preferences.d/dexter-mesos", "Package: mesos\nPin: version 1.11.0*\n");
    s_has (shell, "echo \"deb http://mirror.example.com/mesos/ubuntu $dx_dist main\"");
    s_has (shell, "dx_apt install zookeeperd mesos marathon\n");
    s_has (shell, "systemctl enable --now dexter-mesos-master dexter-marathon\n");
}

static void
s_check_agent (const char *type, const char *config, const char *shell)
{
    s_has (shell, "\ndx_disk xvdg 1\ndx_disk xvdf 0\n");
    s_has (shell, "/dev/disk/azure/scsi1/lun$lun");
    s_has (shell, "nvme-Amazon_Elastic_Block_Store_");
    s_file_is (config, "/etc/dexter/role", "0644", "slave_public\n");
    //  "zone" has a space: not a Mesos attribute, left out and said so
    s_has (shell, "1 of the group attributes are not Mesos attributes");
    if (strcmp (type, "dcos") == 0) {
        s_file_is (config, "/var/lib/dcos/mesos-slave-common", "0644",
                   "# Written by Dexter: the group's attributes and role\n"
                   "MESOS_ATTRIBUTES=cores:8;gpu:true;rack:r1\n");
        s_file_has (config, "/etc/systemd/system/dcos-mesos-slave-public.service.d/dexter-vars.conf",
                    "EnvironmentFile=-/etc/dexter/vars.env\n");
        s_has (shell, "bash dcos_install.sh slave_public)");
        return;
    }
    s_file_has (config, "/etc/dexter/mesos-agent.env",
                "MESOS_MASTER=zk://10.0.0.11:2181,10.0.0.12:2181,10.0.0.13:2181/mesos\n");
    s_file_has (config, "/etc/dexter/mesos-agent.env",
                "MESOS_ATTRIBUTES=cores:8;gpu:true;rack:r1\nMESOS_DEFAULT_ROLE=slave_public\n");
    s_has (shell, "dx_apt install docker.io mesos\n");
    s_has (shell, "systemctl enable --now dexter-mesos-agent\n");
}

static void
s_check_access (const char *type, const char *provider, const char *config, const char *shell)
{
    s_file_is (config, "/etc/openvpn/server/dexter/ca.crt", "0644", s_pem_cert);
    s_file_is (config, "/etc/openvpn/server/dexter/server.crt", "0644", s_pem_cert);
    s_file_is (config, "/etc/openvpn/server/dexter/server.key", "0600", s_pem_key);
    s_file_is (config, "/etc/openvpn/server/dexter/tls-crypt.key", "0600", s_tls_crypt);
    s_file_is (config, "/etc/openvpn/server/dexter/crl.pem", "0644", s_crl);
    s_file_is (config, "/etc/openvpn/server/dexter/auth.py", "0755", s_auth);
    s_file_is (config, "/etc/openvpn/server/dexter.conf", "0644", s_server_conf);
    s_file_is (config, "/etc/sysctl.d/60-dexter-forward.conf", "0644", NULL);
    s_file_has (config, "/usr/local/sbin/dexter-nat", "rule nat POSTROUTING ! -s \"$net\" -d \"$net\" -j MASQUERADE");
    s_file_has (config, "/usr/local/sbin/dexter-nat", "net=10.0.0.0/16\n");
    s_has (shell, "systemctl enable --now openvpn-server@dexter\n");
    s_has (shell, "systemctl enable --now dexter-nat\n");
    if (strcmp (type, "dcos") == 0) {
        s_file_has (config, "/opt/dcos-bootstrap/genconf/config.yaml",
                    "bootstrap_url: http://10.0.0.10:8080\ncluster_name: c1\n");
        s_file_has (config, "/opt/dcos-bootstrap/genconf/config.yaml",
                    "master_list:\n- 10.0.0.11\n- 10.0.0.12\n- 10.0.0.13\n");
        s_file_has (config, "/opt/dcos-bootstrap/genconf/config.yaml", strcmp (provider, "aws") == 0
                    ? "resolvers:\n- 169.254.169.253\n": "resolvers:\n- 168.63.129.16\n");
        s_has (shell, "'https://mirror.example.com/dcos/dcos_generate_config.sh'");
        s_has (shell, "systemctl enable --now dexter-dcos-bootstrap\n");
    }
    else
        assert_null (strstr (shell, "dcos"));
}

static void
test_matrix (void **state)
{
    (void) state;
    s_settings ();
    const char *dir = getenv ("DX_PROVISION_RENDER_DIR");
    const char *roles [] = { "access", "master", "agent" };
    const char *types [] = { "mesos", "dcos" };
    const char *providers [] = { "aws", "azure" };
    for (size_t r = 0; r < 3; r++)
    for (size_t t = 0; t < 2; t++)
    for (size_t p = 0; p < 2; p++) {
        json_t *step = s_step (roles [r], types [t], providers [p]);
        char *document = s_document (step);
        char *config = s_part (document, 0);
        char *shell = s_part (document, 1);
        assert_true (strncmp (config, "#cloud-config\n", 14) == 0);
        assert_true (strncmp (shell, "#!/bin/bash\n", 12) == 0);
        //  What every host has
        char expect [256];
        snprintf (expect, sizeof expect, "DEXTER_CLUSTER=c1\nDEXTER_CLUSTER_TYPE=%s\n"
                  "DEXTER_PROVIDER=%s\nDEXTER_ROLE=%s\n", types [t], providers [p], roles [r]);
        s_file_has (config, "/etc/dexter/cluster", expect);
        s_file_is (config, "/etc/dexter/masters", "0644", "10.0.0.11\n10.0.0.12\n10.0.0.13\n");
        char *text = json_dumps (json_object_get (step, "vars"),
                                 JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        snprintf (expect, sizeof expect, "%s\n", text);
        s_file_is (config, "/etc/dexter/vars.json", "0644", expect);
        free (text);
        text = json_dumps (json_object_get (step, "attributes"),
                           JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        snprintf (expect, sizeof expect, "%s\n", text);
        s_file_is (config, "/etc/dexter/attributes.json", "0644", expect);
        free (text);
        s_has (shell, "hostnamectl set-hostname '");
        if (r == 0)
            s_check_access (types [t], providers [p], config, shell);
        else
        if (r == 1)
            s_check_master (types [t], config, shell);
        else {
            s_check_agent (types [t], config, shell);
            //  Plain vars are environment, the others only JSON
            s_file_is (config, "/etc/dexter/vars.env", "0644", "APP_ENV=prod\nWORKERS=4\n");
            s_has (shell, "2 of the group vars are not plain KEY=VALUE");
        }
        s_bash_syntax (shell);
        //  Every line fits a 7bit MIME part
        for (const char *line = document; line; line = strchr (line, '\n')) {
            line += *line == '\n';
            assert_true (strcspn (line, "\n") <= 998);
            if (!*line)
                break;
        }
        //  The same document every time (EC2 matches a ClientToken's user data)
        char *again = s_document (step);
        assert_string_equal (again, document);
        free (again);
        if (dir) {
            char name [64];
            snprintf (name, sizeof name, "%s-%s-%s", roles [r], types [t], providers [p]);
            s_write (dir, name, "mime", document, strlen (document));
            char err [256];
            char *user_data = dx_provision_user_data ("c1", step, NULL, err, sizeof err);
            assert_non_null (user_data);
            size_t size;
            unsigned char *raw = dx_base64_decode (user_data, &size);
            assert_non_null (raw);
            s_write (dir, name, "userdata", raw, size);
            free (raw);
            free (user_data);
        }
        free (config);
        free (shell);
        free (document);
        json_decref (step);
    }
}

/*  The vpn bundle may come with the job's credentials instead; an access
    node without one gets no OpenVPN. */
static void
test_vpn_source (void **state)
{
    (void) state;
    s_settings ();
    json_t *step = s_step ("access", "mesos", "aws");
    json_t *credentials = json_pack ("{s:O}", "vpn", json_object_get (step, "vpn"));
    json_object_del (step, "vpn");
    char err [256];
    char *document = dx_provision_document ("c1", step, credentials, err, sizeof err);
    assert_non_null (document);
    char *config = s_part (document, 0);
    s_file_is (config, "/etc/openvpn/server/dexter/server.key", "0600", s_pem_key);
    free (config);
    free (document);
    //  A job's credentials are strings: there the bundle is its JSON text
    char *text = json_dumps (json_object_get (credentials, "vpn"), JSON_COMPACT);
    json_t *strings = json_pack ("{s:s}", "vpn", text);
    free (text);
    document = dx_provision_document ("c1", step, strings, err, sizeof err);
    assert_non_null (document);
    config = s_part (document, 0);
    s_file_is (config, "/etc/openvpn/server/dexter/tls-crypt.key", "0600", s_tls_crypt);
    free (config);
    free (document);
    json_object_set_new (strings, "vpn", json_string ("{\"ca\": 1"));
    assert_null (dx_provision_document ("c1", step, strings, err, sizeof err));
    s_has (err, "vpn must be an object");
    json_decref (strings);
    document = s_document (step);
    config = s_part (document, 0);
    char *shell = s_part (document, 1);
    assert_null (strstr (config, "/etc/openvpn/"));
    assert_null (strstr (shell, "openvpn-server@"));
    s_has (shell, "systemctl enable --now dexter-nat\n");
    free (config);
    free (shell);
    free (document);
    json_decref (credentials);
    json_decref (step);
}

/*  The user data: plain base64 when it fits, gzipped when over the
    provider's limit (EC2 16 KiB raw, Azure 64 KiB of base64), refused
    when over it even gzipped. */
static void
test_user_data (void **state)
{
    (void) state;
    s_settings ();
    json_t *step = s_step ("agent", "mesos", "aws");
    char err [256];
    size_t size;
    char *document = s_document (step);
    char *user_data = dx_provision_user_data ("c1", step, NULL, err, sizeof err);
    assert_non_null (user_data);
    unsigned char *raw = dx_base64_decode (user_data, &size);
    assert_int_equal (size, strlen (document));
    assert_memory_equal (raw, document, size);
    free (raw);
    free (user_data);
    free (document);

    //  About 30 KB of vars: gzipped on aws, plain on azure
    char *big = malloc (30001);
    for (size_t i = 0; i < 30000; i++)
        big [i] = "abcdefgh" [(i / 7) % 8];
    big [30000] = 0;
    json_object_set_new (json_object_get (step, "vars"), "big", json_string (big));
    document = s_document (step);
    assert_true (strlen (document) > DX_PROVISION_AWS_MAX_BYTES);
    user_data = dx_provision_user_data ("c1", step, NULL, err, sizeof err);
    assert_non_null (user_data);
    raw = dx_base64_decode (user_data, &size);
    assert_true (size <= DX_PROVISION_AWS_MAX_BYTES);
    assert_int_equal (raw [0], 0x1f);
    assert_int_equal (raw [1], 0x8b);
    uLongf plain_size = strlen (document) + 1;
    unsigned char *plain = malloc (plain_size);
    z_stream z = { .next_in = raw, .avail_in = (uInt) size, .next_out = plain,
                   .avail_out = (uInt) plain_size };
    assert_int_equal (inflateInit2 (&z, 15 + 16), Z_OK);
    assert_int_equal (inflate (&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal (z.total_out, strlen (document));
    assert_memory_equal (plain, document, strlen (document));
    inflateEnd (&z);
    const char *dir = getenv ("DX_PROVISION_RENDER_DIR");
    if (dir) {
        s_write (dir, "gzipped", "mime", document, strlen (document));
        s_write (dir, "gzipped", "userdata", raw, size);
    }
    free (plain);
    free (raw);
    free (user_data);
    json_object_set_new (step, "provider", json_string ("azure"));
    free (document);
    document = s_document (step);
    user_data = dx_provision_user_data ("c1", step, NULL, err, sizeof err);
    assert_non_null (user_data);
    assert_true (strlen (user_data) <= 87380);
    raw = dx_base64_decode (user_data, &size);
    assert_int_equal (size, strlen (document));
    free (raw);
    free (user_data);
    free (document);

    //  Vars that do not compress: refused on both, saying the limit
    uint32_t seed = 12345;
    const char *keys [] = { "big", "big2", "big3", "big4" };
    for (size_t k = 0; k < 4; k++) {
        for (size_t i = 0; i < 30000; i++) {
            seed = seed * 1103515245u + 12345u;
            big [i] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
                      [(seed >> 16) % 64];
        }
        json_object_set_new (json_object_get (step, "vars"), keys [k], json_string (big));
    }
    assert_null (dx_provision_user_data ("c1", step, NULL, err, sizeof err));
    s_has (err, "Azure takes at most 65535");
    json_object_set_new (step, "provider", json_string ("aws"));
    for (size_t k = 1; k < 4; k++)
        json_object_del (json_object_get (step, "vars"), keys [k]);
    assert_null (dx_provision_user_data ("c1", step, NULL, err, sizeof err));
    s_has (err, "EC2 takes at most 16384");
    free (big);
    json_decref (step);
}

static void
test_hostile_values (void **state)
{
    (void) state;
    s_settings ();
    const char *evil = "x'\"$(touch /tmp/pwned)`touch /tmp/pwned`${HOME}\\\n"
        "==DEXTER-USER-DATA-7f3a9c==\n--==DEXTER-USER-DATA-7f3a9c==\n'; touch /tmp/pwned; "
        "\xe2\x80\xa8 \\u0000 %s \xf0\x9f\x98\x80 \"\n  - path: /etc/passwd";
    json_t *step = s_step ("agent", "mesos", "azure");
    json_object_set_new (json_object_get (step, "attributes"), "evil", json_string (evil));
    json_object_set_new (json_object_get (step, "attributes"), evil, json_string ("r1"));
    json_object_set_new (json_object_get (step, "vars"), evil, json_pack ("[s, s]", evil, "\n"));
    json_object_set_new (json_object_get (step, "vars"), "EVIL", json_string (evil));
    char *document = s_document (step);
    char *config = s_part (document, 0);
    char *shell = s_part (document, 1);
    //  No user value reaches the shell, and the JSON files come back exactly
    assert_null (strstr (shell, "pwned"));
    assert_null (strstr (config, "\n  - path: /etc/passwd"));
    char *text = json_dumps (json_object_get (step, "vars"),
                             JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    char *content = s_file (config, "/etc/dexter/vars.json", NULL);
    assert_non_null (content);
    assert_int_equal (strlen (content), strlen (text) + 1);
    assert_memory_equal (content, text, strlen (text));
    json_t *loaded = json_loads (content, 0, NULL);
    assert_true (json_equal (loaded, json_object_get (step, "vars")));
    json_decref (loaded);
    free (content);
    free (text);
    content = s_file (config, "/etc/dexter/attributes.json", NULL);
    loaded = json_loads (content, 0, NULL);
    assert_true (json_equal (loaded, json_object_get (step, "attributes")));
    json_decref (loaded);
    free (content);
    //  Neither the evil var nor attribute is in the environment or the flags
    s_file_is (config, "/etc/dexter/vars.env", "0644", "APP_ENV=prod\nWORKERS=4\n");
    s_file_has (config, "/etc/dexter/mesos-agent.env", "MESOS_ATTRIBUTES=cores:8;gpu:true;rack:r1\n");
    s_bash_syntax (shell);
    const char *dir = getenv ("DX_PROVISION_RENDER_DIR");
    if (dir)
        s_write (dir, "hostile", "mime", document, strlen (document));
    free (config);
    free (shell);
    free (document);
    json_decref (step);
}

static void s_refused (json_t *step, const json_t *credentials, const char *says);
static void s_refused_with (json_t *step, const char *field, json_t *value, const char *says);

/*  One document for a batch of aws agents from slot 5: the host works its
    name out from its ami-launch-index (IMDSv2) before anything uses it,
    and /etc/dexter/cluster gets it from the script; batches are aws
    agents only, of a prefix of name characters and a slot. */
static void
test_batch (void **state)
{
    (void) state;
    s_settings ();
    json_t *step = s_step ("agent", "mesos", "aws");
    json_object_del (step, "hostname");
    json_object_del (step, "slot");
    json_object_set_new (step, "hostname_prefix", json_string ("c1-g1-"));
    json_object_set_new (step, "batch", json_integer (5));
    char *document = s_document (step);
    char *config = s_part (document, 0);
    char *shell = s_part (document, 1);
    s_has (shell, "http://169.254.169.254/latest/api/token");
    s_has (shell, "-H 'X-aws-ec2-metadata-token-ttl-seconds: 300'");
    s_has (shell, "http://169.254.169.254/latest/meta-data/$1");
    s_has (shell, "index=$(dx_imds ami-launch-index)\n");
    s_has (shell, "dx_host=\"c1-g1-$((5 + 10#$index))\"\n");
    s_has (shell, "hostnamectl set-hostname \"$dx_host\"");
    s_has (shell, "echo \"DEXTER_HOSTNAME=$dx_host\" >>/etc/dexter/cluster\n");
    //  The name before anything else: disks, packages
    assert_true (strstr (shell, "dx_host=") < strstr (shell, "dx_disk "));
    assert_true (strstr (shell, "dx_host=") < strstr (shell, "dx_apt install"));
    assert_null (strstr (shell, "hostnamectl set-hostname '"));
    s_file_has (config, "/etc/dexter/cluster", "DEXTER_GROUP_ROLE=slave_public\nDEXTER_MASTERS=");
    char *cluster = s_file (config, "/etc/dexter/cluster", NULL);
    assert_non_null (cluster);
    assert_null (strstr (cluster, "DEXTER_HOSTNAME"));
    free (cluster);
    s_check_agent ("mesos", config, shell);
    s_bash_syntax (shell);
    const char *dir = getenv ("DX_PROVISION_RENDER_DIR");
    if (dir) {
        s_write (dir, "batch", "mime", document, strlen (document));
        char err [256];
        char *user_data = dx_provision_user_data ("c1", step, NULL, err, sizeof err);
        assert_non_null (user_data);
        size_t size;
        unsigned char *raw = dx_base64_decode (user_data, &size);
        assert_non_null (raw);
        s_write (dir, "batch", "userdata", raw, size);
        free (raw);
        free (user_data);
    }
    free (config);
    free (shell);
    free (document);

    s_refused_with (step, "hostname_prefix", json_string ("c1-g1;reboot"), "hostname_prefix");
    s_refused_with (step, "hostname_prefix", NULL, "hostname_prefix");
    s_refused_with (step, "batch", json_integer (-1), "batch");
    s_refused_with (step, "batch", json_string ("5"), "batch");
    s_refused_with (step, "provider", json_string ("azure"), "only aws agents");
    json_decref (step);
    step = s_step ("master", "mesos", "aws");
    json_object_set_new (step, "hostname_prefix", json_string ("c1-master-"));
    json_object_set_new (step, "batch", json_integer (0));
    s_refused (step, NULL, "only aws agents");
    json_decref (step);
}

static void
s_refused (json_t *step, const json_t *credentials, const char *says)
{
    char err [256];
    char *document = dx_provision_document ("c1", step, credentials, err, sizeof err);
    if (document)
        print_error ("accepted, expected a refusal saying '%s'\n", says);
    assert_null (document);
    if (!strstr (err, says))
        print_error ("error '%s' does not say '%s'\n", err, says);
    assert_non_null (strstr (err, says));
    assert_null (dx_provision_user_data ("c1", step, credentials, err, sizeof err));
}

static void
s_refused_with (json_t *step, const char *field, json_t *value, const char *says)
{
    json_t *old = json_object_get (step, field);
    json_incref (old);
    if (value)
        json_object_set_new (step, field, value);
    else
        json_object_del (step, field);
    s_refused (step, NULL, says);
    if (old)
        json_object_set_new (step, field, old);
    else
        json_object_del (step, field);
}

static void
test_refusals (void **state)
{
    (void) state;
    s_settings ();
    json_t *step = s_step ("agent", "mesos", "aws");
    s_refused_with (step, "hostname", json_string ("c1;reboot"), "hostname");
    s_refused_with (step, "group", json_string ("g1 $(id)"), "group");
    s_refused_with (step, "group_role", json_string ("slave'public"), "group_role");
    s_refused_with (step, "role", json_string ("boss"), "role");
    s_refused_with (step, "cluster_type", json_string ("k8s"), "cluster_type");
    s_refused_with (step, "provider", json_string ("gcp"), "provider");
    s_refused_with (step, "provider", NULL, "provider");
    s_refused_with (step, "disks", json_pack ("[{s:i, s:s}]", "size", 1, "device", "sda;reboot"), "device");
    s_refused_with (step, "disks", json_string ("xvdf"), "disks");
    s_refused_with (step, "attributes", json_string ("a"), "attributes");
    s_refused_with (step, "vars", json_array (), "vars");
    s_refused_with (step, "private_ip", json_string ("10.0.0.1;id"), "private_ip");
    s_refused_with (step, "context", json_pack ("{s:s}", "masters_ips", "10.0.0.1;id"), "masters_ips");
    s_refused_with (step, "context", json_pack ("{s:s}", "masters_ips", "10.0.0.1,,10.0.0.2"), "masters_ips");
    s_refused_with (step, "context", json_pack ("{s:s}", "masters_ips", ""), "masters_ips is empty");
    s_refused_with (step, "vpn", s_vpn (), "only the access node");
    char err [256];
    assert_null (dx_provision_document ("c1 x", step, NULL, err, sizeof err));
    assert_null (dx_provision_document (NULL, step, NULL, err, sizeof err));
    assert_null (dx_provision_document ("c1", NULL, NULL, err, sizeof err));
    json_decref (step);

    //  A master must be one of the masters
    step = s_step ("master", "mesos", "azure");
    s_refused_with (step, "private_ip", json_string ("10.0.0.99"), "private_ip (10.0.0.99)");
    json_decref (step);

    //  The vpn bundle: every part, each what OpenVPN takes, printable
    step = s_step ("access", "mesos", "aws");
    const char *parts [] = { "ca", "cert", "key", "tls_crypt", "crl", "server_conf" };
    for (size_t i = 0; i < 6; i++) {
        json_t *vpn = s_vpn ();
        json_object_del (vpn, parts [i]);
        char says [64];
        snprintf (says, sizeof says, "vpn.%s", parts [i]);
        s_refused_with (step, "vpn", vpn, says);
    }
    json_t *vpn = s_vpn ();
    json_object_set_new (vpn, "server_conf", json_string ("client\nremote 1.2.3.4\n"));
    s_refused_with (step, "vpn", vpn, "not a server configuration");
    vpn = s_vpn ();
    json_object_set_new (vpn, "key", json_string ("-----BEGIN PRIVATE KEY-----\n\x01\n"));
    s_refused_with (step, "vpn", vpn, "server.key has a character other than printable ASCII");
    vpn = s_vpn ();
    json_object_set_new (vpn, "auth", json_integer (1));
    s_refused_with (step, "vpn", vpn, "vpn.auth");
    //  The auth script is optional
    vpn = s_vpn ();
    json_object_del (vpn, "auth");
    json_object_set_new (step, "vpn", vpn);
    char *document = s_document (step);
    assert_null (strstr (document, "auth.py\n"));
    free (document);
    s_refused_with (step, "vpn", json_string ("x"), "vpn must be an object");
    json_t *credentials = json_pack ("{s:s}", "vpn", "x");
    s_refused (step, credentials, "vpn must be an object");
    json_decref (credentials);
    json_decref (step);

    //  A dcos access node needs the installer from its step (the
    //  scheduler's setting), a URL; the worker's environment is not read
    step = s_step ("access", "dcos", "azure");
    setenv ("DEXTER_DCOS_INSTALLER_URL", DCOS_INSTALLER_URL, 1);
    json_object_del (step, "dcos_installer_url");
    s_refused (step, NULL, "no dcos_installer_url");
    unsetenv ("DEXTER_DCOS_INSTALLER_URL");
    s_refused_with (step, "dcos_installer_url", json_string (""), "no dcos_installer_url");
    s_refused_with (step, "dcos_installer_url", json_integer (1),
                    "dcos_installer_url must be a string");
    s_refused_with (step, "dcos_installer_url", json_string ("ftp://x/y"),
                    "dcos_installer_url is not an http or https URL");
    s_refused_with (step, "dcos_installer_url", json_string ("https://x/y'$(id)"),
                    "dcos_installer_url is not");
    json_decref (step);
    //  Masters and agents of a dcos cluster install from the bootstrap node:
    //  the URL they carry may be empty
    step = s_step ("master", "dcos", "aws");
    json_object_set_new (step, "dcos_installer_url", json_string (""));
    document = s_document (step);
    assert_null (strstr (document, "dcos_generate_config.sh"));
    free (document);
    json_decref (step);
    s_settings ();
    step = s_step ("agent", "mesos", "aws");
    setenv ("DEXTER_MESOS_VERSION", "1.11;id", 1);
    s_refused (step, NULL, "DEXTER_MESOS_VERSION is not");
    s_settings ();
    setenv ("DEXTER_MESOS_APT_REPO", "none", 1);
    s_refused (step, NULL, "DEXTER_MESOS_APT_REPO cannot be none");
    s_settings ();
    setenv ("DEXTER_MESOS_APT_KEY_URL", "https://keys.example.com/k ey", 1);
    s_refused (step, NULL, "DEXTER_MESOS_APT_KEY_URL is not");
    s_settings ();
    //  A mesos cluster needs no installer
    document = s_document (step);
    free (document);
    json_decref (step);
    s_settings ();
}

/*  The defaults, when nothing is set: the Mesosphere layout with its key,
    the host's codename, no pins. */
static void
test_defaults (void **state)
{
    (void) state;
    s_settings ();
    //  Empty is unset (docker compose passes an unset variable as empty)
    setenv ("DEXTER_MESOS_APT_REPO", "", 1);
    unsetenv ("DEXTER_MESOS_APT_KEY_URL");
    setenv ("DEXTER_MESOS_VERSION", "", 1);
    json_t *step = s_step ("master", "mesos", "aws");
    char *document = s_document (step);
    char *config = s_part (document, 0);
    char *shell = s_part (document, 1);
    s_has (shell, "dx_dist=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release)\n");
    s_has (shell, "curl -fsSL --retry 5 -o /etc/apt/keyrings/dexter-mesos.asc '"
           DX_PROVISION_MESOS_APT_KEY_URL "'\n");
    s_has (shell, "echo \"deb [signed-by=/etc/apt/keyrings/dexter-mesos.asc] "
           DX_PROVISION_MESOS_APT_REPO " $dx_dist main\"");
    assert_null (strstr (config, "/etc/apt/preferences.d/dexter-mesos"));
    free (config);
    free (shell);
    free (document);
    setenv ("DEXTER_MESOS_APT_DIST", "bionic", 1);
    setenv ("DEXTER_MARATHON_VERSION", "1.11.24", 1);
    document = s_document (step);
    config = s_part (document, 0);
    shell = s_part (document, 1);
    s_has (shell, "dx_dist='bionic'\n");
    s_file_is (config, "/etc/apt/preferences.d/dexter-mesos", "0644",
               "# Written by Dexter: DEXTER_MESOS_VERSION, DEXTER_MARATHON_VERSION\n\n"
               "Package: marathon\nPin: version 1.11.24*\nPin-Priority: 1001\n");
    free (config);
    free (shell);
    free (document);
    json_decref (step);
    s_settings ();
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_matrix),
        cmocka_unit_test (test_vpn_source),
        cmocka_unit_test (test_user_data),
        cmocka_unit_test (test_hostile_values),
        cmocka_unit_test (test_batch),
        cmocka_unit_test (test_refusals),
        cmocka_unit_test (test_defaults),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
