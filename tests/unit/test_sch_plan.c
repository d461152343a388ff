/*  Tests of services/scheduler/sch_plan.c: the steps a spec snapshot and
    the recorded resources give, in dependency order, whole or in slices
    (the same jobs, however cut, and a plan that skips what an earlier one
    made goes on where it stopped). The planner is a pure function, so
    these are plain calls with hand-written snapshots. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../services/scheduler/sch_plan.h"

/*  A snapshot of cluster c1 (aws, mesos) with 3 masters and groups given
    as "name:hosts:role" strings, NULL-terminated. */
static json_t *
s_snapshot (const char *command, int generation, ...)
{
    json_t *groups = json_array ();
    va_list args;
    va_start (args, generation);
    for (const char *spec = va_arg (args, const char *); spec; spec = va_arg (args, const char *)) {
        char name [32], role [32];
        int hosts;
        assert_int_equal (sscanf (spec, "%31[^:]:%d:%31s", name, &hosts, role), 3);
        json_array_append_new (groups, json_pack (
            "{s:s, s:s, s:{s:s}, s:{s:s}, s:s, s:i, s:i, s:i, s:{s:[{s:i, s:s, s:s}]}, s:i}",
            "name", name, "role", role, "attributes", "foo", "bar", "vars", "x", "1",
            "instance_type", "r3.xlarge", "cpus", 10, "ram", 64, "disk_size", 50,
            "customhwconf", "disks", "size", 100, "type", "gp2", "device", "xvdf",
            "hosts", hosts));
    }
    va_end (args);
    return json_pack ("{s:i, s:s, s:{s:s, s:s, s:s, s:s}, s:{s:s, s:i, s:s, s:s, s:s, s:s}, "
                      "s:{s:s}, s:o}",
                      "generation", generation, "command", command,
                      "cluster", "name", "c1", "provider", "aws", "type", "mesos",
                      "created_at", "2026-12-03T08:00:00.000Z",
                      "config", "master_type", "m3.large", "masters", 3, "region", "us-west-2",
                      "sshkey", "reference", "sshkeydata_fingerprint", "0123456789abcdef",
                      "updated_at", "2026-12-03T08:00:00.000Z",
                      "secrets", "sshkeydata", "dx1:sealed",
                      "groups", groups);
}

/*  s_snapshot's cluster and groups on azure: an azure config in
    centralus without master_type (master_type NULL) or with it, and the
    groups of Azure sizes and disks. */
static json_t *
s_azure (json_t *snapshot, const char *master_type)
{
    json_object_set_new (json_object_get (snapshot, "cluster"), "provider",
                         json_string ("azure"));
    json_t *config = json_pack ("{s:i, s:s, s:s, s:s, s:s, s:s}", "masters", 3,
                                "location", "centralus", "location_name", "Central US",
                                "ssh_user", "dexter", "ssh_password_fingerprint",
                                "0123456789abcdef", "updated_at", "2026-12-03T08:00:00.000Z");
    if (master_type)
        json_object_set_new (config, "master_type", json_string (master_type));
    json_object_set_new (snapshot, "config", config);
    json_object_set_new (snapshot, "secrets", json_pack ("{s:s}", "ssh_password", "dx1:sealed"));
    size_t i;
    json_t *group;
    json_array_foreach (json_object_get (snapshot, "groups"), i, group) {
        json_object_set_new (group, "instance_type", json_string ("Standard_D11"));
        json_t *disk = json_array_get (json_object_get (json_object_get (group, "customhwconf"),
                                                        "disks"), 0);
        json_object_set_new (disk, "type", json_string ("Standard_LRS"));
    }
    return snapshot;
}

/*  The whole plan at once (NULL with err when it cannot be planned). */
static json_t *
s_build (const json_t *snapshot, const json_t *resources, char *err, size_t errlen)
{
    sch_plan_t *plan = sch_plan_new (snapshot, resources, err, errlen);
    if (!plan)
        return NULL;
    json_t *jobs = json_array ();
    assert_int_equal (sch_plan_next (plan, SIZE_MAX, jobs), sch_plan_size (plan));
    assert_int_equal (sch_plan_next (plan, SIZE_MAX, jobs), 0);
    sch_plan_destroy (&plan);
    assert_null (plan);
    return jobs;
}

/*  The ids of a plan, space-separated, into buf. */
static const char *
s_ids (const json_t *plan, char *buf, size_t size)
{
    buf [0] = 0;
    size_t i;
    json_t *job;
    json_array_foreach (plan, i, job) {
        size_t len = strlen (buf);
        snprintf (buf + len, size - len, "%s%s", i? " ": "",
                  json_string_value (json_object_get (job, "id")));
    }
    return buf;
}

/*  The needs of a job, space-separated, into buf. */
static const char *
s_needs (const json_t *job, char *buf, size_t size)
{
    buf [0] = 0;
    size_t i;
    json_t *need;
    json_array_foreach (json_object_get (job, "needs"), i, need) {
        size_t len = strlen (buf);
        snprintf (buf + len, size - len, "%s%s", i? " ": "", json_string_value (need));
    }
    return buf;
}

static json_t *
s_job (const json_t *plan, const char *id)
{
    size_t i;
    json_t *job;
    json_array_foreach (plan, i, job)
        if (strcmp (json_string_value (json_object_get (job, "id")), id) == 0)
            return job;
    return NULL;
}

/*  Every job comes after each job it needs, ids are unique, every step map
    carries the cluster-wide fields of provider (aws: s_snapshot's, azure:
    s_azure's) and no secret or bookkeeping. */
static void
s_check_order_of (const json_t *plan, const char *provider)
{
    size_t i;
    json_t *job;
    json_array_foreach (plan, i, job) {
        const char *id = json_string_value (json_object_get (job, "id"));
        for (size_t j = i + 1; j < json_array_size (plan); j++)
            assert_string_not_equal (id, json_string_value (json_object_get (
                                         json_array_get (plan, j), "id")));
        size_t n;
        json_t *need;
        json_array_foreach (json_object_get (job, "needs"), n, need) {
            int before = 0;
            for (size_t j = 0; j < i; j++)
                if (strcmp (json_string_value (need), json_string_value (json_object_get (
                                json_array_get (plan, j), "id"))) == 0)
                    before = 1;
            assert_true (before);
        }
        const json_t *step = json_object_get (job, "step");
        assert_string_equal (json_string_value (json_object_get (step, "id")), id);
        assert_string_equal (json_string_value (json_object_get (step, "provider")), provider);
        assert_string_equal (json_string_value (json_object_get (step, "cluster_type")), "mesos");
        assert_int_equal (strlen (json_string_value (json_object_get (step, "uid"))), 12);
        const json_t *config = json_object_get (step, "config");
        if (strcmp (provider, "aws") == 0)
            assert_string_equal (json_string_value (json_object_get (config, "region")),
                                 "us-west-2");
        else
            assert_string_equal (json_string_value (json_object_get (config, "location")),
                                 "centralus");
        assert_null (json_object_get (config, "sshkeydata_fingerprint"));
        assert_null (json_object_get (config, "ssh_password_fingerprint"));
        assert_null (json_object_get (config, "updated_at"));
        assert_null (json_object_get (step, "secrets"));
        char *text = json_dumps (job, 0);
        assert_null (strstr (text, "dx1:"));
        free (text);
    }
}

static void
s_check_order (const json_t *plan)
{
    s_check_order_of (plan, "aws");
}

static json_t *
s_host (const char *state)
{
    return json_pack ("{s:s, s:s, s:s}", "kind", "instance", "provider_id", "i-0123",
                      "state", state);
}

static void
test_fresh_deploy (void **state)
{
    (void) state;
    json_t *snapshot = s_snapshot ("deploy", 1, "g1:3:role1", "pub:2:slave_public", NULL);
    char err [256], ids [2048];
    json_t *plan = s_build (snapshot, NULL, err, sizeof err);
    assert_non_null (plan);
    assert_string_equal (s_ids (plan, ids, sizeof ids),
                         "network security image keypair vpn.server host.access vpn.profile "
                         "host.masters.0 host.masters.1 host.masters.2 "
                         "host.g1.0 host.g1.1 host.g1.2 host.pub.0 host.pub.1");
    s_check_order (plan);

    const json_t *access = json_object_get (s_job (plan, "host.access"), "step");
    assert_string_equal (json_string_value (json_object_get (access, "role")), "access");
    assert_string_equal (json_string_value (json_object_get (access, "private_ip")), "10.0.0.10");
    assert_string_equal (json_string_value (json_object_get (access, "hostname")), "c1-access");
    assert_string_equal (json_string_value (json_object_get (access, "instance_type")),
                         SCH_PLAN_ACCESS_TYPE_AWS);
    const json_t *master = json_object_get (s_job (plan, "host.masters.2"), "step");
    assert_string_equal (json_string_value (json_object_get (master, "private_ip")), "10.0.0.13");
    assert_string_equal (json_string_value (json_object_get (master, "instance_type")), "m3.large");
    assert_string_equal (json_string_value (json_object_get (master, "hostname")), "c1-master-2");
    const json_t *agent = json_object_get (s_job (plan, "host.g1.1"), "step");
    assert_string_equal (json_string_value (json_object_get (agent, "hostname")), "c1-g1-1");
    assert_null (json_object_get (agent, "private_ip"));
    assert_int_equal (json_integer_value (json_object_get (agent, "disk_size")), 50);
    assert_int_equal (json_array_size (json_object_get (agent, "disks")), 1);
    assert_string_equal (json_string_value (json_object_get (agent, "group_role")), "role1");
    assert_false (json_is_true (json_object_get (agent, "public")));
    assert_true (json_is_true (json_object_get (json_object_get (s_job (plan, "host.pub.0"),
                                                                 "step"), "public")));
    assert_string_equal (json_string_value (json_object_get (json_object_get (agent, "attributes"),
                                                             "foo")), "bar");
    //  Hosts need the network, security, image and key pair; security the network
    char needs [256];
    assert_string_equal (s_needs (s_job (plan, "host.g1.1"), needs, sizeof needs),
                         "network security image keypair");
    //  The access node also needs its server bundle; its profile needs it
    assert_string_equal (s_needs (s_job (plan, "host.access"), needs, sizeof needs),
                         "network security image keypair vpn.server");
    assert_string_equal (s_needs (s_job (plan, "vpn.server"), needs, sizeof needs), "");
    assert_string_equal (s_needs (s_job (plan, "vpn.profile"), needs, sizeof needs),
                         "host.access");
    assert_int_equal (json_array_size (json_object_get (s_job (plan, "security"), "needs")), 1);
    assert_int_equal (json_array_size (json_object_get (s_job (plan, "image"), "needs")), 0);

    //  Client tokens: unique, at most 64 characters, and new in a new generation
    json_t *tokens = json_object ();
    size_t i;
    json_t *job;
    json_array_foreach (plan, i, job) {
        const char *token = json_string_value (json_object_get (json_object_get (job, "step"),
                                                                "client_token"));
        if (!token)
            continue;
        assert_true (strlen (token) <= 64);
        assert_null (json_object_get (tokens, token));
        json_object_set_new (tokens, token, json_true ());
    }
    assert_int_equal (json_object_size (tokens), 9);
    json_t *again = s_snapshot ("deploy", 2, "g1:3:role1", "pub:2:slave_public", NULL);
    json_t *plan2 = s_build (again, NULL, err, sizeof err);
    const char *token2 = json_string_value (json_object_get (json_object_get (
                             s_job (plan2, "host.g1.0"), "step"), "client_token"));
    assert_null (json_object_get (tokens, token2));
    json_decref (plan2);
    json_decref (again);
    json_decref (tokens);
    json_decref (plan);
    json_decref (snapshot);
}

static void
test_scale_down_removes_newest (void **state)
{
    (void) state;
    json_t *snapshot = s_snapshot ("deploy", 2, "g1:3:role1", NULL);
    json_t *resources = json_object ();
    for (int slot = 0; slot < 5; slot++) {
        char key [32];
        snprintf (key, sizeof key, "host.g1.%d", slot);
        json_object_set_new (resources, key, s_host ("running"));
    }
    char err [256], ids [2048];
    json_t *plan = s_build (snapshot, resources, err, sizeof err);
    assert_string_equal (s_ids (plan, ids, sizeof ids),
                         "network security image keypair vpn.server host.access vpn.profile "
                         "host.masters.0 host.masters.1 host.masters.2 "
                         "host.g1.0 host.g1.1 host.g1.2 remove.g1.3 remove.g1.4");
    s_check_order (plan);
    const json_t *remove = json_object_get (s_job (plan, "remove.g1.4"), "step");
    assert_string_equal (json_string_value (json_object_get (remove, "kind")), "remove");
    assert_string_equal (json_string_value (json_object_get (remove, "hostname")), "c1-g1-4");
    assert_int_equal (json_array_size (json_object_get (s_job (plan, "remove.g1.4"), "needs")), 0);
    json_decref (plan);

    //  With launch times: slot 1 was replaced last, slot 3 is the oldest;
    //  the two newest (1, then 4 of the rest) go, whatever their slots
    const char *launched [] = { "2026-12-01T10:00:00.000Z", "2026-12-03T09:00:00.000Z",
                                "2026-12-01T10:00:00.000Z", "2026-11-30T08:00:00.000Z",
                                "2026-12-01T10:00:01.000Z" };
    for (int slot = 0; slot < 5; slot++) {
        char key [32];
        snprintf (key, sizeof key, "host.g1.%d", slot);
        json_object_set_new (json_object_get (resources, key), "launched_at",
                             json_string (launched [slot]));
    }
    plan = s_build (snapshot, resources, err, sizeof err);
    assert_string_equal (s_ids (plan, ids, sizeof ids),
                         "network security image keypair vpn.server host.access vpn.profile "
                         "host.masters.0 host.masters.1 host.masters.2 "
                         "host.g1.0 host.g1.2 host.g1.3 remove.g1.1 remove.g1.4");
    json_decref (plan);
    //  Equal launch times: the higher slot counts as newer (0 and 2 above)
    json_decref (snapshot);
    snapshot = s_snapshot ("deploy", 2, "g1:4:role1", NULL);
    json_object_set_new (json_object_get (resources, "host.g1.1"), "launched_at",
                         json_string ("2026-11-29T00:00:00.000Z"));
    json_object_set_new (json_object_get (resources, "host.g1.4"), "launched_at",
                         json_string ("2026-11-29T00:00:00.000Z"));
    plan = s_build (snapshot, resources, err, sizeof err);
    assert_non_null (strstr (s_ids (plan, ids, sizeof ids), "host.g1.0 host.g1.1 host.g1.3 "
                             "host.g1.4 remove.g1.2"));
    json_decref (plan);
    json_decref (resources);
    json_decref (snapshot);

    //  Masters go by slot alone, launch times or not: their addresses
    //  (10.0.0.11 + slot) must stay the first ones
    snapshot = s_snapshot ("deploy", 2, NULL);
    resources = json_object ();
    for (int slot = 0; slot < 5; slot++) {
        char key [32];
        snprintf (key, sizeof key, "host.masters.%d", slot);
        json_t *host = s_host ("running");
        json_object_set_new (host, "launched_at", json_string (slot == 0? "2026-12-03T00:00:00.000Z"
                                                                         : "2026-12-01T00:00:00.000Z"));
        json_object_set_new (resources, key, host);
    }
    plan = s_build (snapshot, resources, err, sizeof err);
    assert_non_null (strstr (s_ids (plan, ids, sizeof ids), "host.masters.0 host.masters.1 "
                             "host.masters.2 remove.masters.3 remove.masters.4"));
    json_decref (plan);
    json_decref (resources);
    json_decref (snapshot);
}

static void
test_scale_up_fills_gaps (void **state)
{
    (void) state;
    //  Slot 1 was terminated, slot 3 recorded: 4 hosts wanted -> 0 1 2 3
    json_t *snapshot = s_snapshot ("deploy", 3, "g1:4:role1", NULL);
    json_t *resources = json_pack ("{s:o, s:o, s:o}", "host.g1.0", s_host ("running"),
                                   "host.g1.1", s_host ("terminated"),
                                   "host.g1.3", s_host ("pending"));
    char err [256], ids [2048];
    json_t *plan = s_build (snapshot, resources, err, sizeof err);
    assert_non_null (strstr (s_ids (plan, ids, sizeof ids),
                             "host.g1.0 host.g1.1 host.g1.2 host.g1.3"));
    assert_null (strstr (ids, "remove"));
    json_decref (plan);
    json_decref (snapshot);

    //  2 wanted of recorded 0 and 3: both kept (they exist), none added
    snapshot = s_snapshot ("deploy", 4, "g1:2:role1", NULL);
    plan = s_build (snapshot, resources, err, sizeof err);
    assert_non_null (strstr (s_ids (plan, ids, sizeof ids), "host.g1.0 host.g1.3"));
    assert_null (strstr (ids, "host.g1.1"));
    assert_null (strstr (ids, "remove"));
    json_decref (plan);
    json_decref (resources);
    json_decref (snapshot);
}

static void
test_deleted_group_and_masters (void **state)
{
    (void) state;
    json_t *snapshot = s_snapshot ("deploy", 2, "keep:1:role1", NULL);
    json_t *resources = json_pack ("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                                   "host.keep.0", s_host ("running"),
                                   "host.old.0", s_host ("running"),
                                   "host.old.1", s_host ("running"),
                                   "host.access", s_host ("running"),
                                   "host.masters.3", s_host ("running"),
                                   "host.masters.4", s_host ("running"),
                                   "vpc", json_pack ("{s:s, s:s}", "kind", "vpc",
                                                     "provider_id", "vpc-1"));
    char err [256], ids [2048];
    json_t *plan = s_build (snapshot, resources, err, sizeof err);
    //  Masters 3 and 4 recorded: they are the ones kept (they exist), and
    //  the third is the lowest free slot
    s_ids (plan, ids, sizeof ids);
    assert_non_null (strstr (ids, "host.masters.0 host.masters.3 host.masters.4 "));
    assert_non_null (strstr (ids, "host.keep.0 remove.old.0 remove.old.1"));
    assert_null (strstr (ids, "remove.access"));
    assert_null (strstr (ids, "remove.masters"));
    s_check_order (plan);
    json_decref (plan);
    json_decref (resources);
    json_decref (snapshot);
}

static void
test_destroy_and_errors (void **state)
{
    (void) state;
    json_t *snapshot = s_snapshot ("destroy", 5, "g1:3:role1", NULL);
    char err [256], ids [2048];
    json_t *plan = s_build (snapshot, NULL, err, sizeof err);
    assert_string_equal (s_ids (plan, ids, sizeof ids),
                         "destroy.instances destroy.addresses destroy.security destroy.network");
    s_check_order (plan);
    assert_string_equal (json_string_value (json_array_get (json_object_get (
                             s_job (plan, "destroy.network"), "needs"), 0)), "destroy.security");
    json_decref (plan);

    json_object_set_new (snapshot, "config", json_null ());
    assert_null (s_build (snapshot, NULL, err, sizeof err));
    assert_non_null (strstr (err, "no config"));
    json_object_del (snapshot, "cluster");
    assert_null (s_build (snapshot, NULL, err, sizeof err));
    json_decref (snapshot);
}

/*  Every deploy, first or again, on either provider, has the vpn steps
    around the access node: the recorded PKI and profile are the vpn
    service's to load, not hosts to keep or remove. A destroy has none. */
static void
test_vpn_steps (void **state)
{
    (void) state;
    json_t *resources = json_pack ("{s:{s:s, s:s, s:s, s:s}, s:{s:s, s:s, s:s}, s:o}",
                                   "vpn.pki", "key", "vpn.pki", "kind", "vpn.pki",
                                   "provider_id", "ab12", "pki", "{}",
                                   "vpn.profile", "key", "vpn.profile", "kind", "vpn.profile",
                                   "remote", "203.0.113.9",
                                   "host.access", s_host ("running"));
    const char *providers [] = { "aws", "azure" };
    for (int p = 0; p < 2; p++) {
        json_t *snapshot = s_snapshot ("deploy", 2, "g1:1:role1", NULL);
        if (p)
            snapshot = s_azure (snapshot, NULL);
        char err [256], ids [2048], needs [256];
        json_t *plan = s_build (snapshot, resources, err, sizeof err);
        assert_non_null (plan);
        s_check_order_of (plan, providers [p]);
        assert_string_equal (s_ids (plan, ids, sizeof ids),
                             p? "network security image vpn.server host.access vpn.profile "
                                "host.masters.0 host.masters.1 host.masters.2 host.g1.0"
                              : "network security image keypair vpn.server host.access "
                                "vpn.profile host.masters.0 host.masters.1 host.masters.2 "
                                "host.g1.0");
        const json_t *server = s_job (plan, "vpn.server");
        const json_t *profile = s_job (plan, "vpn.profile");
        assert_string_equal (json_string_value (json_object_get (server, "kind")), "vpn.server");
        assert_string_equal (json_string_value (json_object_get (json_object_get (
                                 profile, "step"), "kind")), "vpn.profile");
        assert_string_equal (s_needs (server, needs, sizeof needs), "");
        assert_string_equal (s_needs (profile, needs, sizeof needs), "host.access");
        assert_non_null (strstr (s_needs (s_job (plan, "host.access"), needs, sizeof needs),
                                 " vpn.server"));
        //  Masters and agents do not wait for the VPN
        assert_null (strstr (s_needs (s_job (plan, "host.masters.0"), needs, sizeof needs),
                             "vpn"));
        assert_null (s_job (plan, "access.crl"));
        json_decref (plan);
        //  A CRL the running access node lacks: access.crl after it, on
        //  the provider's workers (a kind not vpn.*)
        json_object_set_new (snapshot, "vpn_crl", json_string ("3"));
        plan = s_build (snapshot, resources, err, sizeof err);
        s_check_order_of (plan, providers [p]);
        assert_non_null (strstr (s_ids (plan, ids, sizeof ids),
                                 "host.access vpn.profile access.crl host.masters.0"));
        const json_t *crl = s_job (plan, "access.crl");
        assert_string_equal (json_string_value (json_object_get (crl, "kind")), "access.crl");
        assert_string_equal (s_needs (crl, needs, sizeof needs), "host.access");
        json_decref (plan);
        json_object_set_new (snapshot, "command", json_string ("destroy"));
        plan = s_build (snapshot, resources, err, sizeof err);
        assert_null (strstr (s_ids (plan, ids, sizeof ids), "vpn"));
        assert_null (s_job (plan, "access.crl"));
        json_decref (plan);
        json_decref (snapshot);
    }
    json_decref (resources);
}

/*  Resources of a cluster deployed before: g1 of 5 (shrinks to 3, with
    launch times), a deleted group, masters 3 and 4, terminated hosts. */
static json_t *
s_history (void)
{
    json_t *resources = json_object ();
    for (int slot = 0; slot < 5; slot++) {
        char key [32], at [32];
        snprintf (key, sizeof key, "host.g1.%d", slot);
        snprintf (at, sizeof at, "2026-12-0%dT10:00:00.000Z", 5 - slot % 3);
        json_t *host = s_host (slot == 2? "terminated": "running");
        json_object_set_new (host, "launched_at", json_string (at));
        json_object_set_new (resources, key, host);
        snprintf (key, sizeof key, "host.gone.%d", slot);
        json_object_set_new (resources, key, s_host ("running"));
    }
    json_object_set_new (resources, "host.masters.3", s_host ("running"));
    json_object_set_new (resources, "host.masters.4", s_host ("pending"));
    json_object_set_new (resources, "host.access", s_host ("running"));
    return resources;
}

/*  Azure: network, security, image and no key pair; every host needs the
    three; the access node of the default size, masters of the config's
    master_type or else the api's default. */
static void
test_azure_deploy (void **state)
{
    (void) state;
    json_t *snapshot = s_azure (s_snapshot ("deploy", 1, "g1:3:role1", "pub:2:slave_public",
                                            NULL), NULL);
    char err [256], ids [2048], needs [256];
    json_t *plan = s_build (snapshot, NULL, err, sizeof err);
    assert_non_null (plan);
    assert_string_equal (s_ids (plan, ids, sizeof ids),
                         "network security image vpn.server host.access vpn.profile "
                         "host.masters.0 host.masters.1 host.masters.2 "
                         "host.g1.0 host.g1.1 host.g1.2 host.pub.0 host.pub.1");
    s_check_order_of (plan, "azure");
    assert_string_equal (s_needs (s_job (plan, "network"), needs, sizeof needs), "");
    assert_string_equal (s_needs (s_job (plan, "security"), needs, sizeof needs), "network");
    assert_string_equal (s_needs (s_job (plan, "image"), needs, sizeof needs), "");
    size_t i;
    json_t *job;
    json_array_foreach (plan, i, job) {
        const json_t *step = json_object_get (job, "step");
        const char *kind = json_string_value (json_object_get (step, "kind"));
        assert_string_equal (json_string_value (json_object_get (job, "kind")), kind);
        if (strcmp (kind, "host") == 0)
            assert_string_equal (s_needs (job, needs, sizeof needs),
                                 strcmp (json_string_value (json_object_get (job, "id")),
                                         "host.access") == 0
                                 ? "network security image vpn.server"
                                 : "network security image");
        char *text = json_dumps (job, 0);
        assert_null (strstr (text, "keypair"));
        assert_null (strstr (text, "ssh_password"));
        free (text);
    }
    const json_t *access = json_object_get (s_job (plan, "host.access"), "step");
    assert_string_equal (json_string_value (json_object_get (access, "instance_type")),
                         SCH_PLAN_ACCESS_TYPE_AZURE);
    assert_string_equal (SCH_PLAN_ACCESS_TYPE_AZURE, "Standard_A1_v2");
    assert_string_equal (json_string_value (json_object_get (access, "private_ip")), "10.0.0.10");
    assert_string_equal (json_string_value (json_object_get (access, "hostname")), "c1-access");
    assert_int_equal (json_integer_value (json_object_get (access, "disk_size")),
                      SCH_PLAN_ACCESS_DISK);
    const json_t *master = json_object_get (s_job (plan, "host.masters.1"), "step");
    assert_string_equal (json_string_value (json_object_get (master, "instance_type")), "Basic_A2");
    assert_string_equal (json_string_value (json_object_get (master, "private_ip")), "10.0.0.12");
    assert_string_equal (json_string_value (json_object_get (master, "hostname")), "c1-master-1");
    const json_t *agent = json_object_get (s_job (plan, "host.pub.1"), "step");
    assert_string_equal (json_string_value (json_object_get (agent, "instance_type")),
                         "Standard_D11");
    assert_true (json_is_true (json_object_get (agent, "public")));
    assert_string_equal (json_string_value (json_object_get (json_array_get (json_object_get (
                             agent, "disks"), 0), "type")), "Standard_LRS");
    assert_null (json_object_get (agent, "private_ip"));
    assert_non_null (json_object_get (agent, "client_token"));
    json_decref (plan);
    json_decref (snapshot);

    //  The config's master_type wins over the default
    snapshot = s_azure (s_snapshot ("deploy", 1, NULL), "Standard_D11");
    plan = s_build (snapshot, NULL, err, sizeof err);
    assert_string_equal (s_ids (plan, ids, sizeof ids),
                         "network security image vpn.server host.access vpn.profile "
                         "host.masters.0 host.masters.1 host.masters.2");
    assert_string_equal (json_string_value (json_object_get (json_object_get (
                             s_job (plan, "host.masters.0"), "step"), "instance_type")),
                         "Standard_D11");
    json_decref (plan);
    json_decref (snapshot);
}

/*  The same spec and resources make on azure the plan they make on aws,
    without the key pair: the same hosts, slots and removals. */
static void
test_azure_resize (void **state)
{
    (void) state;
    json_t *resources = s_history ();
    json_object_set_new (resources, "host.g1.6", s_host ("deleted"));
    json_object_set_new (resources, "rg", json_pack ("{s:s, s:s}", "kind", "resource_group",
                                                     "provider_id", "/subscriptions/x/"
                                                     "resourceGroups/dexter-c1"));
    json_t *aws = s_snapshot ("deploy", 2, "g1:3:role1", "pub:4:slave_public", NULL);
    json_t *azure = s_azure (s_snapshot ("deploy", 2, "g1:3:role1", "pub:4:slave_public",
                                         NULL), "Standard_D11");
    char err [256], aws_ids [2048], azure_ids [2048];
    json_t *aws_plan = s_build (aws, resources, err, sizeof err);
    json_t *azure_plan = s_build (azure, resources, err, sizeof err);
    s_check_order_of (azure_plan, "azure");
    s_ids (aws_plan, aws_ids, sizeof aws_ids);
    s_ids (azure_plan, azure_ids, sizeof azure_ids);
    assert_string_equal (azure_ids, "network security image vpn.server host.access vpn.profile host.masters.0 "
                         "host.masters.3 host.masters.4 host.g1.0 host.g1.1 host.g1.4 "
                         "remove.g1.3 host.pub.0 host.pub.1 host.pub.2 host.pub.3 "
                         "remove.gone.0 remove.gone.1 remove.gone.2 remove.gone.3 remove.gone.4");
    char *keypair = strstr (aws_ids, "keypair ");
    assert_non_null (keypair);
    memmove (keypair, keypair + strlen ("keypair "), strlen (keypair + strlen ("keypair ")) + 1);
    assert_string_equal (aws_ids, azure_ids);
    //  Removals: the same step maps but for the provider and its config
    size_t i;
    json_t *job;
    json_array_foreach (azure_plan, i, job) {
        const char *id = json_string_value (json_object_get (job, "id"));
        if (strncmp (id, "remove.", 7))
            continue;
        json_t *mine = json_deep_copy (json_object_get (job, "step"));
        json_t *theirs = json_deep_copy (json_object_get (s_job (aws_plan, id), "step"));
        assert_string_equal (json_string_value (json_object_get (mine, "provider")), "azure");
        assert_int_equal (json_array_size (json_object_get (job, "needs")), 0);
        json_object_del (mine, "provider");
        json_object_del (mine, "config");
        json_object_del (theirs, "provider");
        json_object_del (theirs, "config");
        assert_true (json_equal (mine, theirs));
        json_decref (mine);
        json_decref (theirs);
    }
    assert_string_equal (json_string_value (json_object_get (json_object_get (
                             s_job (azure_plan, "remove.g1.3"), "step"), "hostname")), "c1-g1-3");
    json_decref (azure_plan);
    json_decref (aws_plan);
    json_decref (azure);
    json_decref (aws);
    json_decref (resources);
}

/*  Azure's destroy is one step: the cluster's resource group goes, with
    everything in it. Another provider has no plan. */
static void
test_azure_destroy_and_providers (void **state)
{
    (void) state;
    json_t *snapshot = s_azure (s_snapshot ("destroy", 3, "g1:3:role1", NULL), NULL);
    json_t *resources = s_history ();
    char err [256], ids [256];
    json_t *plan = s_build (snapshot, resources, err, sizeof err);
    assert_non_null (plan);
    assert_string_equal (s_ids (plan, ids, sizeof ids), "destroy.group");
    s_check_order_of (plan, "azure");
    const json_t *job = json_array_get (plan, 0);
    assert_string_equal (json_string_value (json_object_get (job, "kind")), "destroy.group");
    assert_string_equal (json_string_value (json_object_get (json_object_get (job, "step"),
                                                             "kind")), "destroy.group");
    assert_int_equal (json_array_size (json_object_get (job, "needs")), 0);
    json_decref (plan);
    sch_plan_t *whole = sch_plan_new (snapshot, NULL, err, sizeof err);
    assert_int_equal (sch_plan_size (whole), 1);
    sch_plan_destroy (&whole);

    json_object_set_new (json_object_get (snapshot, "cluster"), "provider", json_string ("gcp"));
    assert_null (s_build (snapshot, resources, err, sizeof err));
    assert_non_null (strstr (err, "no plan for provider gcp"));
    json_decref (resources);
    json_decref (snapshot);
}

/*  The plan made in slices of any size is the plan made at once, and its
    size is known before any job is made. */
static void
test_slices_equal_whole (void **state)
{
    (void) state;
    json_t *snapshot = s_snapshot ("deploy", 2, "g1:3:role1", "pub:4:slave_public",
                                   "g2:2:role1", NULL);
    json_t *resources = s_history ();
    char err [256];
    json_t *whole = s_build (snapshot, resources, err, sizeof err);
    assert_non_null (whole);
    s_check_order (whole);
    size_t sizes [] = { 1, 2, 3, 7, 100 };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes [0]; s++) {
        sch_plan_t *plan = sch_plan_new (snapshot, resources, err, sizeof err);
        assert_non_null (plan);
        assert_int_equal (sch_plan_size (plan), json_array_size (whole));
        json_t *jobs = json_array ();
        size_t made, slices = 0;
        while ((made = sch_plan_next (plan, sizes [s], jobs)) > 0) {
            assert_true (made <= sizes [s]);
            slices++;
        }
        assert_int_equal (slices, (json_array_size (whole) + sizes [s] - 1) / sizes [s]);
        assert_true (json_equal (jobs, whole));
        json_decref (jobs);
        sch_plan_destroy (&plan);
    }
    json_decref (whole);
    json_decref (resources);
    json_decref (snapshot);
}

/*  A plan interrupted after k jobs (a scheduler restart) goes on from a
    new plan of the same inputs that skips k: together they make the
    plan, whatever k. */
static void
test_resume_after_restart (void **state)
{
    (void) state;
    json_t *snapshot = s_snapshot ("deploy", 2, "g1:3:role1", "pub:4:slave_public", NULL);
    json_t *resources = s_history ();
    char err [256];
    json_t *whole = s_build (snapshot, resources, err, sizeof err);
    size_t size = json_array_size (whole);
    for (size_t k = 0; k <= size; k++) {
        sch_plan_t *plan = sch_plan_new (snapshot, resources, err, sizeof err);
        json_t *jobs = json_array ();
        assert_int_equal (sch_plan_next (plan, k, jobs), k);
        sch_plan_destroy (&plan);
        plan = sch_plan_new (snapshot, resources, err, sizeof err);
        assert_int_equal (sch_plan_next (plan, k, NULL), k);
        assert_int_equal (sch_plan_next (plan, SIZE_MAX, jobs), size - k);
        assert_true (json_equal (jobs, whole));
        json_decref (jobs);
        sch_plan_destroy (&plan);
    }
    json_decref (whole);
    json_decref (resources);
    json_decref (snapshot);
}

/*  A cluster at the cap: its size is known at once, and a slice makes
    only its own jobs. */
static void
test_big_plan (void **state)
{
    (void) state;
    json_t *snapshot = s_snapshot ("deploy", 1, "a:1000:r", "b:1000:r", "c:1000:r",
                                   "d:1000:r", "e:1000:r", NULL);
    char err [256];
    sch_plan_t *plan = sch_plan_new (snapshot, NULL, err, sizeof err);
    assert_non_null (plan);
    assert_int_equal (sch_plan_size (plan), 4 + 2 + 1 + 3 + 5000);   /* and the vpn's 2 */
    json_t *jobs = json_array ();
    assert_int_equal (sch_plan_next (plan, 2000, NULL), 2000);
    assert_int_equal (sch_plan_next (plan, 2, jobs), 2);
    assert_string_equal (json_string_value (json_object_get (json_array_get (jobs, 0), "id")),
                         "host.b.990");
    assert_int_equal (sch_plan_next (plan, SIZE_MAX, NULL), 5010 - 2002);
    json_decref (jobs);
    sch_plan_destroy (&plan);
    json_decref (snapshot);
}

static void
test_uid (void **state)
{
    (void) state;
    char a [13], b [13], c [13];
    sch_plan_uid ("c1", "2026-12-03T08:00:00.000Z", a);
    sch_plan_uid ("c1", "2026-12-03T08:00:00.001Z", b);
    sch_plan_uid ("c1", "2026-12-03T08:00:00.000Z", c);
    assert_int_equal (strlen (a), 12);
    assert_string_not_equal (a, b);
    assert_string_equal (a, c);
}

/*  s_snapshot with the scheduler's aws batch size. */
static json_t *
s_batched (json_t *snapshot, int batch_max)
{
    json_object_set_new (snapshot, "aws_batch_max", json_integer (batch_max));
    return snapshot;
}

/*  The slots of a step, space-separated, into buf. */
static const char *
s_slots (const json_t *job, char *buf, size_t size)
{
    buf [0] = 0;
    size_t i;
    json_t *slot;
    json_array_foreach (json_object_get (json_object_get (job, "step"), "slots"), i, slot) {
        size_t len = strlen (buf);
        snprintf (buf + len, size - len, "%s%lld", i? " ": "",
                  (long long) json_integer_value (slot));
    }
    return buf;
}

/*  Batches on: an aws agent group's new hosts are hosts steps of at most
    aws_batch_max slots, with the fields of an agent's host step but the
    slots and host names in place of one's; the access node and the
    masters keep a host step each. 0, or no aws_batch_max: host steps. */
static void
test_batch_fresh_deploy (void **state)
{
    (void) state;
    json_t *snapshot = s_batched (s_snapshot ("deploy", 1, "g1:3:role1", "pub:2:slave_public",
                                              NULL), 1000);
    char err [256], ids [4096], slots [4096];
    json_t *plan = s_build (snapshot, NULL, err, sizeof err);
    assert_non_null (plan);
    assert_string_equal (s_ids (plan, ids, sizeof ids),
                         "network security image keypair vpn.server host.access vpn.profile "
                         "host.masters.0 host.masters.1 host.masters.2 hosts.g1.0 hosts.pub.0");
    s_check_order (plan);
    const json_t *job = s_job (plan, "hosts.g1.0");
    const json_t *host = s_job (plan, "host.masters.0");
    char needs [256], host_needs [256];
    assert_string_equal (s_needs (job, needs, sizeof needs),
                         s_needs (host, host_needs, sizeof host_needs));
    const json_t *step = json_object_get (job, "step");
    assert_string_equal (json_string_value (json_object_get (job, "kind")), "hosts");
    assert_string_equal (json_string_value (json_object_get (step, "kind")), "hosts");
    assert_string_equal (s_slots (job, slots, sizeof slots), "0 1 2");
    json_t *names = json_object_get (step, "hostnames");
    assert_int_equal (json_array_size (names), 3);
    assert_string_equal (json_string_value (json_array_get (names, 0)), "c1-g1-0");
    assert_string_equal (json_string_value (json_array_get (names, 2)), "c1-g1-2");
    assert_null (json_object_get (step, "slot"));
    assert_null (json_object_get (step, "hostname"));
    assert_null (json_object_get (step, "private_ip"));
    assert_string_equal (json_string_value (json_object_get (step, "role")), "agent");
    assert_string_equal (json_string_value (json_object_get (step, "group")), "g1");
    assert_string_equal (json_string_value (json_object_get (step, "group_role")), "role1");
    assert_string_equal (json_string_value (json_object_get (step, "instance_type")),
                         "r3.xlarge");
    assert_int_equal (json_integer_value (json_object_get (step, "disk_size")), 50);
    assert_int_equal (json_array_size (json_object_get (step, "disks")), 1);
    assert_string_equal (json_string_value (json_object_get (json_object_get (step, "attributes"),
                                                             "foo")), "bar");
    assert_string_equal (json_string_value (json_object_get (json_object_get (step, "vars"),
                                                             "x")), "1");
    assert_true (json_is_false (json_object_get (step, "public")));
    assert_true (json_is_true (json_object_get (json_object_get (s_job (plan, "hosts.pub.0"),
                                                                 "step"), "public")));
    const char *token = json_string_value (json_object_get (step, "client_token"));
    assert_non_null (token);
    assert_true (strlen (token) <= 64);
    assert_string_not_equal (token, json_string_value (json_object_get (
        json_object_get (s_job (plan, "hosts.pub.0"), "step"), "client_token")));
    //  The masters' steps are a host step's, as without batches
    assert_string_equal (json_string_value (json_object_get (json_object_get (host, "step"),
                                                             "kind")), "host");
    json_decref (plan);

    //  The same snapshot without batches: a host step per agent
    json_t *unbatched [2] = { s_batched (s_snapshot ("deploy", 1, "g1:3:role1",
                                                     "pub:2:slave_public", NULL), 0),
                              s_snapshot ("deploy", 1, "g1:3:role1", "pub:2:slave_public",
                                          NULL) };
    for (int i = 0; i < 2; i++) {
        plan = s_build (unbatched [i], NULL, err, sizeof err);
        assert_string_equal (s_ids (plan, ids, sizeof ids),
                             "network security image keypair vpn.server host.access "
                             "vpn.profile host.masters.0 host.masters.1 host.masters.2 "
                             "host.g1.0 host.g1.1 host.g1.2 host.pub.0 host.pub.1");
        json_decref (plan);
        json_decref (unbatched [i]);
    }
    //  Azure has no batches
    json_decref (snapshot);
    snapshot = s_batched (s_azure (s_snapshot ("deploy", 1, "g1:3:role1", NULL), NULL), 1000);
    plan = s_build (snapshot, NULL, err, sizeof err);
    assert_non_null (strstr (s_ids (plan, ids, sizeof ids), "host.g1.0 host.g1.1 host.g1.2"));
    json_decref (plan);
    json_decref (snapshot);
}

/*  1000 new hosts are one batch of 1000, 1001 two (1000 and 1); a batch
    size of 3 cuts 7 into 3, 3, 1; every wanted slot in exactly one. */
static void
test_batch_split (void **state)
{
    (void) state;
    const struct { int hosts, batch; const char *ids; size_t last; } cases [] = {
        { 1000, 1000, "hosts.big.0", 1000 },
        { 1001, 1000, "hosts.big.0 hosts.big.1000", 1 },
        { 7, 3, "hosts.big.0 hosts.big.3 hosts.big.6", 1 },
        { 6, 3, "hosts.big.0 hosts.big.3", 3 },
        { 1, 1, "hosts.big.0", 1 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases [0]; c++) {
        char spec [32], err [256], ids [4096];
        snprintf (spec, sizeof spec, "big:%d:role1", cases [c].hosts);
        json_t *snapshot = s_batched (s_snapshot ("deploy", 1, spec, NULL), cases [c].batch);
        json_t *plan = s_build (snapshot, NULL, err, sizeof err);
        assert_non_null (plan);
        const char *all = s_ids (plan, ids, sizeof ids);
        assert_string_equal (strstr (all, "hosts."), cases [c].ids);
        unsigned char seen [1001] = { 0 };
        size_t i, total = 0, batches = 0;
        json_t *job;
        json_array_foreach (plan, i, job) {
            if (strcmp (json_string_value (json_object_get (job, "kind")), "hosts"))
                continue;
            json_t *slots = json_object_get (json_object_get (job, "step"), "slots");
            assert_true (json_array_size (slots) <= (size_t) cases [c].batch);
            char first [32];
            snprintf (first, sizeof first, "hosts.big.%lld",
                      (long long) json_integer_value (json_array_get (slots, 0)));
            assert_string_equal (json_string_value (json_object_get (job, "id")), first);
            size_t s;
            json_t *slot;
            json_array_foreach (slots, s, slot) {
                json_int_t n = json_integer_value (slot);
                assert_true (n >= 0 && n < cases [c].hosts && !seen [n]);
                seen [n] = 1;
                if (s)
                    assert_true (n > json_integer_value (json_array_get (slots, s - 1)));
            }
            total += json_array_size (slots);
            if (++batches == (size_t) (cases [c].hosts + cases [c].batch - 1) / cases [c].batch)
                assert_int_equal (json_array_size (slots), cases [c].last);
        }
        assert_int_equal (total, cases [c].hosts);
        json_decref (plan);
        json_decref (snapshot);
    }
}

/*  Scale up: the recorded hosts are batches of their own (which launch
    nothing), the new ones a batch of the lowest free slots, holes first;
    scale down: one remove.GROUP with the slots and host names that go,
    the same slots as without batches; a deleted group and masters the
    same. */
static void
test_batch_scale (void **state)
{
    (void) state;
    //  Recorded 0 1 3 5 (holes at 2 and 4), 7 wanted: 2 4 6 are added
    json_t *snapshot = s_batched (s_snapshot ("deploy", 2, "g1:7:role1", NULL), 1000);
    json_t *resources = json_object ();
    int recorded [] = { 0, 1, 3, 5 };
    for (int i = 0; i < 4; i++) {
        char key [32];
        snprintf (key, sizeof key, "host.g1.%d", recorded [i]);
        json_object_set_new (resources, key, s_host ("running"));
    }
    char err [256], ids [4096], slots [256];
    json_t *plan = s_build (snapshot, resources, err, sizeof err);
    assert_non_null (strstr (s_ids (plan, ids, sizeof ids),
                             "host.masters.2 hosts.g1.0 hosts.g1.2"));
    assert_null (strstr (ids, "host.g1."));
    assert_string_equal (s_slots (s_job (plan, "hosts.g1.0"), slots, sizeof slots), "0 1 3 5");
    assert_string_equal (s_slots (s_job (plan, "hosts.g1.2"), slots, sizeof slots), "2 4 6");
    json_t *names = json_object_get (json_object_get (s_job (plan, "hosts.g1.2"), "step"),
                                     "hostnames");
    assert_string_equal (json_string_value (json_array_get (names, 1)), "c1-g1-4");
    s_check_order (plan);
    json_decref (plan);
    //  A batch of 2: the holes first, then the rest
    json_object_set_new (snapshot, "aws_batch_max", json_integer (2));
    plan = s_build (snapshot, resources, err, sizeof err);
    assert_non_null (strstr (s_ids (plan, ids, sizeof ids),
                             "host.masters.2 hosts.g1.0 hosts.g1.3 hosts.g1.2 hosts.g1.6"));
    assert_string_equal (s_slots (s_job (plan, "hosts.g1.0"), slots, sizeof slots), "0 1");
    assert_string_equal (s_slots (s_job (plan, "hosts.g1.3"), slots, sizeof slots), "3 5");
    assert_string_equal (s_slots (s_job (plan, "hosts.g1.2"), slots, sizeof slots), "2 4");
    assert_string_equal (s_slots (s_job (plan, "hosts.g1.6"), slots, sizeof slots), "6");
    json_decref (plan);
    //  Nothing missing: the batch of the recorded hosts alone
    json_decref (snapshot);
    snapshot = s_batched (s_snapshot ("deploy", 2, "g1:4:role1", NULL), 1000);
    plan = s_build (snapshot, resources, err, sizeof err);
    assert_string_equal (strstr (s_ids (plan, ids, sizeof ids), "host.masters.2"),
                         "host.masters.2 hosts.g1.0");
    assert_string_equal (s_slots (s_job (plan, "hosts.g1.0"), slots, sizeof slots), "0 1 3 5");
    json_decref (plan);

    //  Scale down to 2: the newest go (3 and 5), in one step
    json_decref (snapshot);
    snapshot = s_batched (s_snapshot ("deploy", 3, "g1:2:role1", NULL), 1000);
    plan = s_build (snapshot, resources, err, sizeof err);
    assert_string_equal (s_ids (plan, ids, sizeof ids),
                         "network security image keypair vpn.server host.access vpn.profile "
                         "host.masters.0 host.masters.1 host.masters.2 "
                         "hosts.g1.0 remove.g1");
    assert_string_equal (s_slots (s_job (plan, "hosts.g1.0"), slots, sizeof slots), "0 1");
    const json_t *remove = s_job (plan, "remove.g1");
    const json_t *step = json_object_get (remove, "step");
    assert_string_equal (json_string_value (json_object_get (step, "kind")), "remove");
    assert_string_equal (json_string_value (json_object_get (step, "group")), "g1");
    assert_string_equal (s_slots (remove, slots, sizeof slots), "3 5");
    names = json_object_get (step, "hostnames");
    assert_int_equal (json_array_size (names), 2);
    assert_string_equal (json_string_value (json_array_get (names, 0)), "c1-g1-3");
    assert_string_equal (json_string_value (json_array_get (names, 1)), "c1-g1-5");
    assert_null (json_object_get (step, "slot"));
    assert_null (json_object_get (step, "hostname"));
    assert_int_equal (json_array_size (json_object_get (remove, "needs")), 0);
    s_check_order (plan);
    json_decref (plan);

    //  A deleted group and masters beyond the config's: one step each
    json_object_set_new (resources, "host.gone.0", s_host ("running"));
    json_object_set_new (resources, "host.gone.1", s_host ("running"));
    json_object_set_new (resources, "host.gone.2", s_host ("terminated"));
    for (int slot = 0; slot < 5; slot++) {
        char key [32];
        snprintf (key, sizeof key, "host.masters.%d", slot);
        json_object_set_new (resources, key, s_host ("running"));
    }
    plan = s_build (snapshot, resources, err, sizeof err);
    assert_string_equal (s_ids (plan, ids, sizeof ids),
                         "network security image keypair vpn.server host.access vpn.profile "
                         "host.masters.0 host.masters.1 host.masters.2 remove.masters "
                         "hosts.g1.0 remove.g1 remove.gone");
    assert_string_equal (s_slots (s_job (plan, "remove.masters"), slots, sizeof slots), "3 4");
    names = json_object_get (json_object_get (s_job (plan, "remove.masters"), "step"),
                             "hostnames");
    assert_string_equal (json_string_value (json_array_get (names, 0)), "c1-master-3");
    assert_string_equal (s_slots (s_job (plan, "remove.gone"), slots, sizeof slots), "0 1");
    json_decref (plan);
    //  Without batches, the same slots go, one step each
    json_object_set_new (snapshot, "aws_batch_max", json_integer (0));
    plan = s_build (snapshot, resources, err, sizeof err);
    assert_string_equal (s_ids (plan, ids, sizeof ids),
                         "network security image keypair vpn.server host.access vpn.profile "
                         "host.masters.0 host.masters.1 host.masters.2 remove.masters.3 "
                         "remove.masters.4 host.g1.0 host.g1.1 remove.g1.3 remove.g1.5 "
                         "remove.gone.0 remove.gone.1");
    json_decref (plan);
    json_decref (resources);
    json_decref (snapshot);
}

/*  A batched plan in slices equals the whole, and one made again skips
    what the first made: batches are fixed by the snapshot. */
static void
test_batch_slices (void **state)
{
    (void) state;
    json_t *snapshot = s_batched (s_snapshot ("deploy", 1, "a:2500:role1", "b:30:role1", NULL),
                                  1000);
    char err [256];
    json_t *whole = s_build (snapshot, NULL, err, sizeof err);
    assert_int_equal (json_array_size (whole), 4 + 2 + 1 + 3 + 3 + 1);
    sch_plan_t *plan = sch_plan_new (snapshot, NULL, err, sizeof err);
    assert_int_equal (sch_plan_size (plan), json_array_size (whole));
    json_t *jobs = json_array ();
    while (sch_plan_next (plan, 2, jobs) > 0)
        ;
    assert_true (json_equal (jobs, whole));
    sch_plan_destroy (&plan);
    json_decref (jobs);
    plan = sch_plan_new (snapshot, NULL, err, sizeof err);
    assert_int_equal (sch_plan_next (plan, 11, NULL), 11);
    jobs = json_array ();
    assert_int_equal (sch_plan_next (plan, SIZE_MAX, jobs), 3);
    assert_true (json_equal (json_array_get (jobs, 0), json_array_get (whole, 11)));
    assert_string_equal (json_string_value (json_object_get (json_array_get (jobs, 1), "id")),
                         "hosts.a.2000");
    sch_plan_destroy (&plan);
    json_decref (jobs);
    json_decref (whole);
    json_decref (snapshot);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_fresh_deploy),
        cmocka_unit_test (test_scale_down_removes_newest),
        cmocka_unit_test (test_scale_up_fills_gaps),
        cmocka_unit_test (test_deleted_group_and_masters),
        cmocka_unit_test (test_destroy_and_errors),
        cmocka_unit_test (test_vpn_steps),
        cmocka_unit_test (test_azure_deploy),
        cmocka_unit_test (test_azure_resize),
        cmocka_unit_test (test_azure_destroy_and_providers),
        cmocka_unit_test (test_slices_equal_whole),
        cmocka_unit_test (test_resume_after_restart),
        cmocka_unit_test (test_big_plan),
        cmocka_unit_test (test_uid),
        cmocka_unit_test (test_batch_fresh_deploy),
        cmocka_unit_test (test_batch_split),
        cmocka_unit_test (test_batch_scale),
        cmocka_unit_test (test_batch_slices),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
