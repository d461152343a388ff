/*  Unit tests for common/dx_provision.c: the first-boot script of each
    role holds the host name, the disks and /etc/dexter; the JSON written
    comes back exactly; hostile attribute and vars values cannot run
    anything (the here-documents are run by bash into a temporary
    directory and nothing else happens); every script passes `bash -n`;
    unsafe values and oversized scripts are refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dx_provision.h"

static json_t *
s_step (const char *role, const char *hostname)
{
    json_t *step = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s}}",
        "kind", "host", "role", role, "hostname", hostname, "cluster_type", "mesos",
        "group", strcmp (role, "agent") == 0? "g1": strcmp (role, "master") == 0? "masters": "access",
        "group_role", strcmp (role, "agent") == 0? "slave_public": "",
        "context", "masters_ips", "10.0.0.11,10.0.0.12,10.0.0.13");
    json_object_set_new (step, "disks", strcmp (role, "agent") == 0
        ? json_pack ("[{s:i, s:s, s:s}, {s:i, s:s, s:s}]", "size", 100, "type", "gp2",
                     "device", "xvdf", "size", 20, "type", "gp3", "device", "xvdg")
        : json_array ());
    json_object_set_new (step, "attributes", strcmp (role, "agent") == 0
        ? json_pack ("{s:s, s:i}", "rack", "r1", "cores", 8): json_object ());
    json_object_set_new (step, "vars", strcmp (role, "agent") == 0
        ? json_pack ("{s:{s:[i, i]}}", "nested", "list", 1, 2): json_object ());
    return step;
}

static char *
s_script (const json_t *step)
{
    char err [256];
    char *script = dx_provision_script ("c1", step, err, sizeof err);
    if (!script)
        print_error ("dx_provision_script: %s\n", err);
    assert_non_null (script);
    assert_true (strlen (script) <= DX_PROVISION_MAX_BYTES);
    assert_true (strncmp (script, "#!/bin/bash\n", 12) == 0);
    return script;
}

/*  The here-document that writes path, as text (caller frees), or NULL. */
static char *
s_heredoc (const char *script, const char *path)
{
    char head [256];
    snprintf (head, sizeof head, "cat >%s <<'DEXTER_EOF'\n", path);
    const char *start = strstr (script, head);
    if (!start)
        return NULL;
    start += strlen (head);
    const char *end = strstr (start, "\nDEXTER_EOF\n");
    assert_non_null (end);
    return strndup (start, (size_t) (end - start));
}

/*  The JSON of path in script equals expected. */
static void
s_json_round_trip (const char *script, const char *path, const json_t *expected)
{
    char *text = s_heredoc (script, path);
    assert_non_null (text);
    json_error_t error;
    json_t *loaded = json_loads (text, 0, &error);
    if (!loaded)
        print_error ("%s: %s in %s\n", path, error.text, text);
    assert_non_null (loaded);
    assert_true (json_equal (loaded, expected));
    json_decref (loaded);
    free (text);
}

/*  Writes text to a temporary file; returns its path (static buffer). */
static const char *
s_temp_file (const char *text, char *path, size_t size)
{
    snprintf (path, size, "/tmp/dx-provision-XXXXXX");
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    size_t len = strlen (text);
    assert_int_equal (write (fd, text, len), (ssize_t) len);
    close (fd);
    return path;
}

/*  `bash -n` on the script: its syntax is sound. */
static void
s_bash_syntax (const char *script)
{
    char path [64], cmd [128];
    s_temp_file (script, path, sizeof path);
    snprintf (cmd, sizeof cmd, "/bin/bash -n %s", path);
    int rc = system (cmd);
    unlink (path);
    assert_int_equal (rc, 0);
}

static void
test_roles (void **state)
{
    (void) state;
    const char *roles [][2] = {
        { "access", "c1-access" }, { "master", "c1-master-0" }, { "agent", "c1-g1-3" }
    };
    for (size_t r = 0; r < 3; r++) {
        json_t *step = s_step (roles [r][0], roles [r][1]);
        char *script = s_script (step);
        char expect [128];
        snprintf (expect, sizeof expect, "hostnamectl set-hostname '%s'", roles [r][1]);
        assert_non_null (strstr (script, expect));
        assert_non_null (strstr (script, "DEXTER_MASTERS=10.0.0.11,10.0.0.12,10.0.0.13\n"));
        assert_non_null (strstr (script, "DEXTER_CLUSTER=c1\n"));
        snprintf (expect, sizeof expect, "DEXTER_ROLE=%s\n", roles [r][0]);
        assert_non_null (strstr (script, expect));
        snprintf (expect, sizeof expect, "# ---- Role: %s", r == 0? "access node": roles [r][0]);
        assert_non_null (strstr (script, expect));
        s_json_round_trip (script, "/etc/dexter/attributes.json", json_object_get (step, "attributes"));
        s_json_round_trip (script, "/etc/dexter/vars.json", json_object_get (step, "vars"));
        if (r == 2) {
            assert_non_null (strstr (script, "\ndx_disk xvdf 0\ndx_disk xvdg 1\n"));
            assert_non_null (strstr (script, "/dev/disk/azure/scsi1/lun$lun"));
            assert_non_null (strstr (script, "/hdd/$name"));
            assert_non_null (strstr (script, "mkfs.ext4"));
            assert_non_null (strstr (script, "/etc/fstab"));
            assert_non_null (strstr (script, "nvme-Amazon_Elastic_Block_Store_"));
            assert_non_null (strstr (script, "echo 'slave_public' >/etc/dexter/role"));
            assert_non_null (strstr (script, "/etc/mesos/zk"));
        }
        else {
            assert_null (strstr (script, "dx_disk "));
            snprintf (expect, sizeof expect, "echo '%s' >/etc/dexter/role", roles [r][0]);
            assert_non_null (strstr (script, expect));
        }
        if (r == 0)
            assert_null (strstr (script, "/etc/mesos/zk"));
        s_bash_syntax (script);
        free (script);
        json_decref (step);
    }
    //  DC/OS: no Mesos zk file, the masters list is there
    json_t *step = s_step ("master", "c1-master-1");
    json_object_set_new (step, "cluster_type", json_string ("dcos"));
    char *script = s_script (step);
    assert_null (strstr (script, "/etc/mesos/zk"));
    assert_non_null (strstr (script, "/etc/dexter/masters"));
    s_bash_syntax (script);
    free (script);
    json_decref (step);
}

/*  Runs every here-document of the script (paths moved into dir) with
    bash, so whatever could escape would run. */
static void
s_run_heredocs (const char *script, const char *dir)
{
    const char *paths [] = { "/etc/dexter/attributes.json", "/etc/dexter/vars.json",
                             "/etc/dexter/cluster" };
    char *program = strdup ("set -e\n");
    for (size_t i = 0; i < 3; i++) {
        char head [256];
        snprintf (head, sizeof head, "cat >%s <<'DEXTER_EOF'\n", paths [i]);
        const char *start = strstr (script, head);
        assert_non_null (start);
        const char *end = strstr (start + strlen (head) - 1, "\nDEXTER_EOF\n");
        assert_non_null (end);
        end += strlen ("\nDEXTER_EOF\n");
        const char *base = strrchr (paths [i], '/') + 1;
        char *block = NULL;
        assert_true (asprintf (&block, "%scat >%s/%s <<'DEXTER_EOF'\n%.*s", program, dir, base,
                               (int) (end - start - strlen (head)), start + strlen (head)) > 0);
        free (program);
        program = block;
    }
    char path [64], cmd [160];
    s_temp_file (program, path, sizeof path);
    snprintf (cmd, sizeof cmd, "cd %s && /bin/bash %s", dir, path);
    assert_int_equal (system (cmd), 0);
    unlink (path);
    free (program);
}

static void
test_hostile_values (void **state)
{
    (void) state;
    char dir [] = "/tmp/dx-provision-dir-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char pwned [128];
    snprintf (pwned, sizeof pwned, "%s/pwned", dir);
    char *evil = NULL;
    assert_true (asprintf (&evil,
        "x'\"$(touch %s)`touch %s`${HOME}\\\n"
        "DEXTER_EOF\ntouch %s\nDEXTER_EOF\n'; touch %s; \xe2\x80\xa8 \\u0000 %%s",
        pwned, pwned, pwned, pwned) > 0);
    json_t *step = s_step ("agent", "c1-g1-0");
    json_object_set_new (json_object_get (step, "attributes"), "evil", json_string (evil));
    json_object_set_new (json_object_get (step, "attributes"), "DEXTER_EOF", json_string ("DEXTER_EOF"));
    json_object_set_new (json_object_get (step, "vars"), evil, json_pack ("[s, s]", evil, "\n"));
    char *script = s_script (step);
    s_bash_syntax (script);
    s_json_round_trip (script, "/etc/dexter/attributes.json", json_object_get (step, "attributes"));
    s_json_round_trip (script, "/etc/dexter/vars.json", json_object_get (step, "vars"));

    s_run_heredocs (script, dir);
    assert_int_equal (access (pwned, F_OK), -1);
    //  What bash wrote is exactly the JSON
    char file [160];
    snprintf (file, sizeof file, "%s/attributes.json", dir);
    json_t *written = json_load_file (file, 0, NULL);
    assert_non_null (written);
    assert_true (json_equal (written, json_object_get (step, "attributes")));
    json_decref (written);
    unlink (file);
    snprintf (file, sizeof file, "%s/vars.json", dir);
    written = json_load_file (file, 0, NULL);
    assert_non_null (written);
    assert_true (json_equal (written, json_object_get (step, "vars")));
    json_decref (written);
    unlink (file);
    snprintf (file, sizeof file, "%s/cluster", dir);
    unlink (file);
    rmdir (dir);
    free (script);
    json_decref (step);
    free (evil);
}

static void
s_refused (json_t *step, const char *field, json_t *value, const char *says)
{
    json_object_set_new (step, field, value);
    char err [256];
    char *script = dx_provision_script ("c1", step, err, sizeof err);
    if (script)
        print_error ("%s was accepted\n", field);
    assert_null (script);
    if (!strstr (err, says))
        print_error ("error '%s' does not say '%s'\n", err, says);
    assert_non_null (strstr (err, says));
}

static void
test_refusals (void **state)
{
    (void) state;
    json_t *step = s_step ("agent", "c1-g1-0");
    s_refused (step, "hostname", json_string ("c1;reboot"), "hostname");
    json_object_set_new (step, "hostname", json_string ("c1-g1-0"));
    s_refused (step, "group", json_string ("g1 $(id)"), "group");
    json_object_set_new (step, "group", json_string ("g1"));
    s_refused (step, "group_role", json_string ("slave'public"), "group_role");
    json_object_set_new (step, "group_role", json_string ("*"));
    s_refused (step, "role", json_string ("boss"), "role");
    json_object_set_new (step, "role", json_string ("agent"));
    s_refused (step, "cluster_type", json_string ("k8s"), "cluster_type");
    json_object_set_new (step, "cluster_type", json_string ("mesos"));
    s_refused (step, "disks", json_pack ("[{s:i, s:s}]", "size", 1, "device", "sda;reboot"), "device");
    s_refused (step, "disks", json_string ("xvdf"), "disks");
    json_object_set_new (step, "disks", json_array ());
    s_refused (step, "attributes", json_string ("a"), "attributes");
    json_object_set_new (step, "attributes", json_object ());
    json_object_set_new (step, "context", json_pack ("{s:s}", "masters_ips", "10.0.0.1;id"));
    s_refused (step, "vars", json_object (), "masters_ips");
    json_object_set_new (step, "context", json_pack ("{s:s}", "masters_ips", ""));
    //  Over 16 KiB
    char *big = malloc (17000);
    memset (big, 'v', 16999);
    big [16999] = 0;
    s_refused (step, "vars", json_pack ("{s:s}", "big", big), "16384");
    free (big);
    json_object_set_new (step, "vars", json_object ());
    char err [256];
    assert_null (dx_provision_script ("c1 x", step, err, sizeof err));
    assert_null (dx_provision_script (NULL, step, err, sizeof err));
    char *script = dx_provision_script ("c1", step, err, sizeof err);
    assert_non_null (script);
    free (script);
    json_decref (step);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_roles),
        cmocka_unit_test (test_hostile_values),
        cmocka_unit_test (test_refusals),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
