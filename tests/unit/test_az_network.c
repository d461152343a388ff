/*  Tests of services/azure-worker/az_network.c, the steps network,
    security and destroy.group, against tests/fakes/fake_arm.py (which
    judges every PUT body by the Azure SDK's models): what they make and
    report, all tagged; that a second run writes nothing; that destroy
    leaves nothing of the cluster and refuses a group that is not its
    own; and throttling, 5xx, a failed operation, a group still being
    deleted and a token that expires mid-step. Each test has a cluster of
    its own in one fake. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "../../services/azure-worker/az_run.h"
#include "harness_az.h"

#define SECRET  "Net~Secret.Marker"
#define UID     "0123456789ab"

static th_fake_t s_fake;

/*  Short waits, reproducible. */
static const dx_retry_policy_t s_fast = { 5, 40, 4, 1 };
static const az_run_config_t s_config = { NULL, NULL, 20, 60000, &s_fast, NULL };

//  ---------------------------------------------------------------------
//  A step's run

/*  A job.assign of kind for cluster in westeurope, credentials for the
    fake. */
static json_t *
s_assign (const char *cluster, const char *kind)
{
    char job [64];
    snprintf (job, sizeof job, "%s:1:%s", cluster, kind);
    return json_pack ("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:{s:s}, s:{}}, s:o}",
                      "job", job, "cluster", cluster,
                      "step", "kind", kind, "id", kind, "provider", "azure", "uid", UID,
                      "config", "location", "westeurope", "context",
                      "credentials", tz_credentials (&s_fake, SECRET));
}

/*  Starts a step of kind for cluster with config (NULL: s_config). */
static void
s_job_start (tz_job_t *job, const char *cluster, const char *kind, const az_run_config_t *config)
{
    tz_job_start (job, s_assign (cluster, kind), config? config: &s_config, NULL);
}

/*  Runs fn as a step of kind for cluster, started, and its outcome into
    *job (s_job_end it). */
static void
s_run (tz_job_t *job, az_step_fn *fn, const char *cluster, const char *kind,
       const az_run_config_t *config)
{
    s_job_start (job, cluster, kind, config);
    int rc = fn (&job->run);
    assert_int_equal (rc, job->out.outcome == DX_STEP_DONE? 0: -1);
}

/*  Runs fn for cluster and expects it done. */
static void
s_done (az_step_fn *fn, const char *cluster, const char *kind)
{
    tz_job_t job;
    s_run (&job, fn, cluster, kind, NULL);
    tz_expect (&job.out, DX_STEP_DONE, 0, "");
    tz_job_end (&job);
}

//  ---------------------------------------------------------------------
//  The fake

static int
s_group_setup (void **state)
{
    *state = &s_fake;
    return tz_fake_up (&s_fake, "az-network", SECRET, "5", "50", true);
}

static long
s_count (const char *table, const char *key)
{
    long n = th_fake_calls (s_fake.endpoint, table, key);
    assert_true (n >= 0);
    return n;
}

/*  The fake's resources (children too) and groups; tagged: only those
    with dexter:cluster = cluster. Caller decrefs. */
static json_t *
s_state (const char *cluster)
{
    char what [96] = "state";
    if (cluster)
        snprintf (what, sizeof what, "state?tag=dexter:cluster=%s", cluster);
    return th_fake_ask (&s_fake, "GET", what, NULL);
}

/*  The fake's resource of group dexter-CLUSTER called name, or NULL. */
static const json_t *
s_resource (const json_t *state, const char *cluster, const char *type, const char *name)
{
    char group [64];
    snprintf (group, sizeof group, "dexter-%s", cluster);
    size_t i;
    json_t *res;
    json_array_foreach (json_object_get (state, "resources"), i, res)
        if (strcmp (tz_field (res, "resourceGroup"), group) == 0
        &&  strcmp (tz_field (res, "type"), type) == 0 && strcmp (tz_field (res, "name"), name) == 0)
            return res;
    return NULL;
}

/*  How many resources of group dexter-CLUSTER the fake holds. */
static size_t
s_in_group (const json_t *state, const char *cluster)
{
    char group [64];
    snprintf (group, sizeof group, "dexter-%s", cluster);
    size_t i, n = 0;
    json_t *res;
    json_array_foreach (json_object_get (state, "resources"), i, res)
        n += strcmp (tz_field (res, "resourceGroup"), group) == 0;
    return n;
}

/*  The fake's group called name, or NULL. */
static const json_t *
s_fake_group (const json_t *state, const char *name)
{
    size_t i;
    json_t *group;
    json_array_foreach (json_object_get (state, "resourceGroups"), i, group)
        if (strcmp (tz_field (group, "name"), name) == 0)
            return group;
    return NULL;
}

/*  network, then security, for cluster: both done. */
static void
s_deploy (const char *cluster)
{
    s_done (az_step_network, cluster, "network");
    s_done (az_step_security, cluster, "security");
}

//  ---------------------------------------------------------------------
//  network and security

/*  Exactly the plan's resources, reported by their ARM ids, all tagged. */
static void
test_create (void **state)
{
    (void) state;
    tz_job_t job;
    s_run (&job, az_step_network, "c1", "network", NULL);
    tz_expect (&job.out, DX_STEP_DONE, 0, "");
    const char *rg = "/subscriptions/" TZ_SUB "/resourceGroups/dexter-c1";
    const char *vnet = "/subscriptions/" TZ_SUB "/resourceGroups/dexter-c1/providers/"
                       "Microsoft.Network/virtualNetworks/c1-vnet";
    assert_int_equal (json_array_size (job.out.resources), 4);
    const json_t *res = tz_reported (&job.out, "rg");
    assert_string_equal (tz_field (res, "kind"), "resource_group");
    assert_string_equal (tz_field (res, "provider_id"), rg);
    assert_string_equal (tz_field (res, "location"), "westeurope");
    res = tz_reported (&job.out, "vnet");
    assert_string_equal (tz_field (res, "kind"), "virtual_network");
    assert_string_equal (tz_field (res, "provider_id"), vnet);
    assert_string_equal (tz_field (res, "cidr"), "10.0.0.0/16");
    char id [256];
    snprintf (id, sizeof id, "%s/subnets/hosts", vnet);
    res = tz_reported (&job.out, "subnet");
    assert_string_equal (tz_field (res, "kind"), "subnet");
    assert_string_equal (tz_field (res, "provider_id"), id);
    assert_string_equal (tz_field (res, "cidr"), "10.0.0.0/24");
    snprintf (id, sizeof id, "%s/subnets/agents", vnet);
    res = tz_reported (&job.out, "subnet.agents");
    assert_string_equal (tz_field (res, "provider_id"), id);
    assert_string_equal (tz_field (res, "cidr"), "10.0.32.0/19");
    tz_job_end (&job);

    json_t *calls = th_fake_ask (&s_fake, "GET", "calls", NULL);
    size_t before = json_array_size (json_object_get (calls, "log"));
    json_decref (calls);
    s_run (&job, az_step_security, "c1", "security", NULL);
    tz_expect (&job.out, DX_STEP_DONE, 0, "");
    assert_int_equal (json_array_size (job.out.resources), 3);
    //  The three groups' PUTs went out before any of their operations was
    //  polled: ARM ran the three at once
    calls = th_fake_ask (&s_fake, "GET", "calls", NULL);
    const json_t *log = json_object_get (calls, "log");
    int puts = 0, polled_first = 0;
    for (size_t i = before; i < json_array_size (log); i++) {
        const json_t *call = json_array_get (log, i);
        const char *method = tz_field (call, "method"), *path = tz_field (call, "path");
        if (strcmp (method, "PUT") == 0 && strstr (path, "networkSecurityGroups"))
            puts++;
        else
        if (strcmp (method, "GET") == 0 && strstr (path, "/operations/") && puts < 3)
            polled_first = 1;
    }
    json_decref (calls);
    assert_int_equal (puts, 3);
    assert_false (polled_first);
    const char *const suffixes [] = { "cluster", "access", "public" };
    for (size_t i = 0; i < 3; i++) {
        char key [32];
        snprintf (key, sizeof key, "nsg.%s", suffixes [i]);
        snprintf (id, sizeof id, "/subscriptions/" TZ_SUB "/resourceGroups/dexter-c1/providers/"
                  "Microsoft.Network/networkSecurityGroups/c1-nsg-%s", suffixes [i]);
        res = tz_reported (&job.out, key);
        assert_string_equal (tz_field (res, "kind"), "network_security_group");
        assert_string_equal (tz_field (res, "provider_id"), id);
    }
    tz_job_end (&job);

    //  The fake holds the group, the VNet with its two subnets, the three
    //  groups with 0, 2 and 3 rules: nothing else
    json_t *all = s_state (NULL);
    const json_t *group = s_fake_group (all, "dexter-c1");
    assert_non_null (group);
    assert_string_equal (tz_field (group, "location"), "westeurope");
    assert_int_equal (s_in_group (all, "c1"), 1 + 2 + 3 + 0 + 2 + 3);
    const json_t *net = s_resource (all, "c1", "Microsoft.Network/virtualNetworks", "c1-vnet");
    assert_non_null (net);
    const json_t *prefixes = json_object_get (json_object_get (json_object_get (json_object_get (
        net, "body"), "properties"), "addressSpace"), "addressPrefixes");
    assert_int_equal (json_array_size (prefixes), 1);
    assert_string_equal (json_string_value (json_array_get (prefixes, 0)), "10.0.0.0/16");
    const char *subnets [][2] = { { "c1-vnet/hosts", "10.0.0.0/24" },
                                  { "c1-vnet/agents", "10.0.32.0/19" } };
    for (size_t i = 0; i < 2; i++) {
        const char *name = strchr (subnets [i][0], '/') + 1;
        res = s_resource (all, "c1", "Microsoft.Network/virtualNetworks/subnets", name);
        assert_non_null (res);
        assert_string_equal (tz_field (json_object_get (json_object_get (res, "body"),
                                                       "properties"), "addressPrefix"),
                             subnets [i][1]);
        assert_string_equal (tz_field (res, "provisioningState"), "Succeeded");
    }
    const char *rules [][4] = {
        { "access", "ssh", "Tcp", "22" }, { "access", "openvpn", "Udp", "1194" },
        { "public", "http", "Tcp", "80" }, { "public", "https", "Tcp", "443" },
        { "public", "services", "Tcp", "10000-10100" },
    };
    for (size_t i = 0; i < sizeof rules / sizeof rules [0]; i++) {
        res = s_resource (all, "c1", "Microsoft.Network/networkSecurityGroups/securityRules",
                          rules [i][1]);
        assert_non_null (res);
        snprintf (id, sizeof id, "/subscriptions/" TZ_SUB "/resourceGroups/dexter-c1/providers/"
                  "Microsoft.Network/networkSecurityGroups/c1-nsg-%s", rules [i][0]);
        assert_string_equal (tz_field (res, "parent"), id);
        const json_t *props = json_object_get (json_object_get (res, "body"), "properties");
        assert_string_equal (tz_field (props, "protocol"), rules [i][2]);
        assert_string_equal (tz_field (props, "destinationPortRange"), rules [i][3]);
        assert_string_equal (tz_field (props, "sourceAddressPrefix"), "*");
        assert_string_equal (tz_field (props, "access"), "Allow");
        assert_string_equal (tz_field (props, "direction"), "Inbound");
    }
    //  Every top-level resource and the group carry the ownership tags
    size_t i, tagged = 0;
    json_t *item;
    json_array_foreach (json_object_get (all, "resources"), i, item) {
        if (strcmp (tz_field (item, "resourceGroup"), "dexter-c1") || json_is_string (
                json_object_get (item, "parent")))
            continue;
        const json_t *tags = json_object_get (item, "tags");
        const char *role = strstr (tz_field (item, "type"), "networkSecurityGroups")
                         ? "security": "network";
        assert_string_equal (tz_field (tags, "dexter:cluster"), "c1");
        assert_string_equal (tz_field (tags, "dexter:uid"), UID);
        assert_string_equal (tz_field (tags, "dexter:role"), role);
        tagged++;
    }
    assert_int_equal (tagged, 4);
    assert_string_equal (tz_field (json_object_get (group, "tags"), "dexter:cluster"), "c1");
    assert_string_equal (tz_field (json_object_get (group, "tags"), "dexter:role"), "network");
    json_decref (all);
}

/*  Run again on what is there, the steps read and write nothing, and
    report the same. */
static void
test_again_writes_nothing (void **state)
{
    (void) state;
    s_deploy ("c2");
    long puts = s_count ("by_method", "PUT");
    long deletes = s_count ("by_method", "DELETE");
    tz_job_t job;
    s_run (&job, az_step_network, "c2", "network", NULL);
    tz_expect (&job.out, DX_STEP_DONE, 0, "");
    assert_int_equal (json_array_size (job.out.resources), 4);
    assert_string_equal (tz_field (tz_reported (&job.out, "subnet.agents"), "provider_id"),
                         "/subscriptions/" TZ_SUB "/resourceGroups/dexter-c2/providers/"
                         "Microsoft.Network/virtualNetworks/c2-vnet/subnets/agents");
    tz_job_end (&job);
    s_run (&job, az_step_security, "c2", "security", NULL);
    tz_expect (&job.out, DX_STEP_DONE, 0, "");
    assert_int_equal (json_array_size (job.out.resources), 3);
    tz_job_end (&job);
    assert_int_equal (s_count ("by_method", "PUT"), puts);
    assert_int_equal (s_count ("by_method", "DELETE"), deletes);

    //  A rule changed behind Dexter's back is put back, with one write
    json_t *all = s_state (NULL);
    const json_t *nsg = s_resource (all, "c2", "Microsoft.Network/networkSecurityGroups",
                                    "c2-nsg-access");
    assert_non_null (nsg);
    json_t *body = json_deep_copy (json_object_get (nsg, "body"));
    json_decref (all);
    json_t *rules = json_array ();
    json_array_append_new (rules, json_pack ("{s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s}}",
                           "name", "ssh", "properties", "protocol", "Tcp", "sourcePortRange", "*",
                           "destinationPortRange", "2222", "sourceAddressPrefix", "*",
                           "destinationAddressPrefix", "*", "access", "Allow", "priority", 100,
                           "direction", "Inbound"));
    json_object_set_new (json_object_get (body, "properties"), "securityRules", rules);
    s_job_start (&job, "c2", "security", NULL);
    json_t *answer = az_run_ask (&job.run, "PUT", "resourceGroups/dexter-c2/providers/Microsoft."
                                 "Network/networkSecurityGroups/c2-nsg-access", AZ_API_NETWORK,
                                 body);
    assert_non_null (answer);
    json_decref (answer);
    json_decref (body);
    tz_job_end (&job);
    puts = s_count ("by_method", "PUT");
    s_done (az_step_security, "c2", "security");
    assert_int_equal (s_count ("by_method", "PUT"), puts + 1);
    all = s_state (NULL);
    const json_t *rule = s_resource (all, "c2", "Microsoft.Network/networkSecurityGroups/"
                                     "securityRules", "openvpn");
    assert_non_null (rule);
    rule = s_resource (all, "c2", "Microsoft.Network/networkSecurityGroups/securityRules", "ssh");
    assert_string_equal (tz_field (json_object_get (json_object_get (rule, "body"), "properties"),
                                  "destinationPortRange"), "22");
    json_decref (all);
}

/*  A location given by its display name is the same location: no write
    the second time. */
static void
test_display_name (void **state)
{
    (void) state;
    long puts = 0;
    for (int run = 0; run < 2; run++) {
        tz_job_t job;
        job.assign = s_assign ("c11", "network");
        json_object_set_new (json_object_get (json_object_get (job.assign, "step"), "config"),
                             "location", json_string ("West Europe"));
        dx_step_out_init (&job.out, NULL, NULL);
        az_run_init (&job.run, &s_config, job.assign, &job.out);
        assert_int_equal (az_run_start (&job.run), 0);
        assert_int_equal (az_step_network (&job.run), 0);
        assert_string_equal (tz_field (tz_reported (&job.out, "rg"), "location"), "westeurope");
        tz_job_end (&job);
        if (run == 0)
            puts = s_count ("by_method", "PUT");
    }
    assert_int_equal (s_count ("by_method", "PUT"), puts);
    s_done (az_step_destroy_group, "c11", "destroy.group");
}

//  ---------------------------------------------------------------------
//  destroy.group

/*  The group goes with everything in it; nothing tagged is left; a
    second destroy is done too. */
static void
test_destroy (void **state)
{
    (void) state;
    s_deploy ("c3");
    tz_job_t job;
    s_run (&job, az_step_destroy_group, "c3", "destroy.group", NULL);
    tz_expect (&job.out, DX_STEP_DONE, 0, "");
    assert_int_equal (json_array_size (job.out.resources), 1);
    const json_t *res = tz_reported (&job.out, "rg");
    assert_string_equal (tz_field (res, "kind"), "resource_group");
    assert_string_equal (tz_field (res, "provider_id"), "/subscriptions/" TZ_SUB "/resourceGroups/dexter-c3");
    assert_string_equal (tz_field (res, "state"), "deleted");
    tz_job_end (&job);

    json_t *tagged = s_state ("c3");
    assert_int_equal (json_array_size (json_object_get (tagged, "resourceGroups")), 0);
    assert_int_equal (json_array_size (json_object_get (tagged, "resources")), 0);
    json_decref (tagged);
    json_t *all = s_state (NULL);
    assert_null (s_fake_group (all, "dexter-c3"));
    assert_int_equal (s_in_group (all, "c3"), 0);
    json_decref (all);

    long deletes = s_count ("by_method", "DELETE");
    s_run (&job, az_step_destroy_group, "c3", "destroy.group", NULL);
    tz_expect (&job.out, DX_STEP_DONE, 0, "");
    res = tz_reported (&job.out, "rg");
    assert_string_equal (tz_field (res, "provider_id"), "");
    assert_string_equal (tz_field (res, "state"), "deleted");
    tz_job_end (&job);
    assert_int_equal (s_count ("by_method", "DELETE"), deletes);
}

/*  A group of the cluster's name that another owns (or no one) is left
    alone: destroy and network fail for good and write nothing. */
static void
test_not_ours (void **state)
{
    (void) state;
    const char *const owners [] = { "{\"dexter:cluster\": \"someone-else\"}", "{}" };
    const char *const clusters [] = { "c4", "c5" };
    for (size_t i = 0; i < 2; i++) {
        tz_job_t job;
        s_job_start (&job, clusters [i], "network", NULL);
        char path [64];
        snprintf (path, sizeof path, "resourceGroups/dexter-%s", clusters [i]);
        json_t *body = json_pack ("{s:s, s:o}", "location", "westeurope", "tags",
                                  json_loads (owners [i], 0, NULL));
        json_t *answer = az_run_ask (&job.run, "PUT", path, AZ_API_RESOURCES, body);
        assert_non_null (answer);
        json_decref (answer);
        json_decref (body);
        tz_job_end (&job);

        long puts = s_count ("by_method", "PUT"), deletes = s_count ("by_method", "DELETE");
        s_run (&job, az_step_destroy_group, clusters [i], "destroy.group", NULL);
        tz_expect (&job.out, DX_STEP_FAILED, 1, "ResourceGroupNotOwned");
        char want [160];
        snprintf (want, sizeof want, "resource group dexter-%s exists and is not cluster %s's",
                  clusters [i], clusters [i]);
        assert_non_null (strstr (job.out.message, want));
        assert_non_null (strstr (job.out.message, i == 0? "'someone-else'": "missing"));
        assert_int_equal (json_array_size (job.out.resources), 0);
        tz_job_end (&job);
        s_run (&job, az_step_network, clusters [i], "network", NULL);
        tz_expect (&job.out, DX_STEP_FAILED, 1, "ResourceGroupNotOwned");
        tz_job_end (&job);
        assert_int_equal (s_count ("by_method", "PUT"), puts);
        assert_int_equal (s_count ("by_method", "DELETE"), deletes);

        json_t *all = s_state (NULL);
        const json_t *group = s_fake_group (all, path + strlen ("resourceGroups/"));
        assert_non_null (group);
        assert_string_equal (tz_field (group, "provisioningState"), "Succeeded");
        json_decref (all);
    }
}

//  ---------------------------------------------------------------------
//  Faults

/*  429 with Retry-After and 5xx, some after the write was made (a lost
    answer): absorbed, and the same resources as without them. */
static void
test_faults_absorbed (void **state)
{
    (void) state;
    long throttled = s_count ("by_error_code", "TooManyRequests");
    long failed = s_count ("by_error_code", "InternalServerError")
                + s_count ("by_error_code", "ServiceUnavailable");
    tz_fault (&s_fake, "{\"method\": \"GET\", \"type\": \"resourceGroups\", \"status\": 503, "
                       "\"retry_after\": 0, \"count\": 2}");
    tz_fault (&s_fake, "{\"method\": \"PUT\", \"type\": \"resourceGroups\", \"status\": 500, "
                       "\"after\": true}");
    tz_fault (&s_fake, "{\"method\": \"PUT\", \"type\": \"virtualNetworks\", \"status\": 429, "
                       "\"retry_after\": 0, \"count\": 2}");
    tz_fault (&s_fake, "{\"method\": \"GET\", \"type\": \"operations\", \"status\": 503, "
                       "\"retry_after\": 0}");
    s_done (az_step_network, "c6", "network");
    tz_fault (&s_fake, "{\"method\": \"PUT\", \"type\": \"networkSecurityGroups\", \"status\": 500, "
                       "\"after\": true, \"count\": 2}");
    tz_fault (&s_fake, "{\"method\": \"GET\", \"type\": \"networkSecurityGroups\", \"status\": 429, "
                       "\"retry_after\": 0}");
    s_done (az_step_security, "c6", "security");
    json_t *pending = th_fake_ask (&s_fake, "GET", "faults", NULL);
    assert_int_equal (json_array_size (json_object_get (pending, "faults")), 0);
    json_decref (pending);
    assert_int_equal (s_count ("by_error_code", "TooManyRequests"), throttled + 3);
    assert_int_equal (s_count ("by_error_code", "InternalServerError")
                      + s_count ("by_error_code", "ServiceUnavailable"), failed + 6);

    json_t *all = s_state (NULL);
    assert_non_null (s_fake_group (all, "dexter-c6"));
    assert_int_equal (s_in_group (all, "c6"), 1 + 2 + 3 + 0 + 2 + 3);
    json_decref (all);
}

/*  An operation that ends Failed fails the step with ARM's code and
    message; the step run again makes the resource anew. */
static void
test_operation_failed (void **state)
{
    (void) state;
    tz_fault (&s_fake, "{\"kind\": \"operation\", \"method\": \"PUT\", \"type\": \"virtualNetworks\", "
                       "\"code\": \"NetcfgInternalError\", \"message\": \"Injected: the network could not "
                       "be provisioned.\"}");
    tz_job_t job;
    s_run (&job, az_step_network, "c7", "network", NULL);
    tz_expect (&job.out, DX_STEP_FAILED, 0, "NetcfgInternalError");
    assert_non_null (strstr (job.out.message, "PUT resourceGroups/dexter-c7/providers/"
                             "Microsoft.Network/virtualNetworks/c7-vnet"));
    assert_non_null (strstr (job.out.message, "Injected: the network could not be provisioned."));
    assert_non_null (tz_reported (&job.out, "rg"));
    assert_null (tz_reported (&job.out, "vnet"));
    tz_job_end (&job);
    json_t *all = s_state (NULL);
    const json_t *net = s_resource (all, "c7", "Microsoft.Network/virtualNetworks", "c7-vnet");
    assert_string_equal (tz_field (net, "provisioningState"), "Failed");
    json_decref (all);

    long puts = s_count ("by_method", "PUT");
    s_run (&job, az_step_network, "c7", "network", NULL);
    tz_expect (&job.out, DX_STEP_DONE, 0, "");
    assert_non_null (tz_reported (&job.out, "subnet.agents"));
    tz_job_end (&job);
    assert_int_equal (s_count ("by_method", "PUT"), puts + 1);      /* the VNet, not the group */
    all = s_state (NULL);
    net = s_resource (all, "c7", "Microsoft.Network/virtualNetworks", "c7-vnet");
    assert_string_equal (tz_field (net, "provisioningState"), "Succeeded");
    json_decref (all);
}

/*  A destroy that outlasts its wait is retried and converges on the same
    deletion. Meanwhile network waits for the group to go (here past its
    wait: retry) and writes nothing; once it is gone, network makes it
    again. */
static void
test_group_being_deleted (void **state)
{
    (void) state;
    s_deploy ("c8");
    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"lro_ms\": 600000}"));
    static const az_run_config_t impatient = { NULL, NULL, 20, 1, &s_fast, NULL };
    tz_job_t job;
    s_run (&job, az_step_destroy_group, "c8", "destroy.group", &impatient);
    tz_expect (&job.out, DX_STEP_RETRY, 0, "OperationTimedOut");
    tz_job_end (&job);

    long puts = s_count ("by_method", "PUT");
    s_run (&job, az_step_network, "c8", "network", &impatient);
    tz_expect (&job.out, DX_STEP_RETRY, 0, "OperationTimedOut");
    assert_non_null (strstr (job.out.message, "GET resourceGroups/dexter-c8"));
    assert_non_null (strstr (job.out.message, "Deleting"));
    tz_job_end (&job);
    assert_int_equal (s_count ("by_method", "PUT"), puts);

    json_decref (th_fake_ask (&s_fake, "POST", "advance", "{\"seconds\": 601}"));
    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"lro_ms\": 50}"));
    s_done (az_step_destroy_group, "c8", "destroy.group");
    s_done (az_step_network, "c8", "network");
    json_t *all = s_state (NULL);
    assert_non_null (s_fake_group (all, "dexter-c8"));
    assert_int_equal (s_in_group (all, "c8"), 1 + 2);
    json_decref (all);
}

/*  A progress callback that calls the fake's side channel once, the
    first time an operation is followed: s_once_what with s_once_json. */
static const char *s_once_what, *s_once_json;
static int s_once_calls;

static void
s_once (const az_progress_t *progress, void *arg)
{
    (void) progress;
    (void) arg;
    if (s_once_calls++ == 0)
        json_decref (th_fake_side (s_fake.endpoint, "POST", s_once_what, s_once_json));
}

/*  A twin attempt's PUT still runs: the step's GET waits for it to end,
    finds the VNet as wanted, and writes nothing. */
static void
test_twin_still_running (void **state)
{
    (void) state;
    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"lro_ms\": 600000}"));
    static const az_run_config_t impatient = { NULL, NULL, 20, 1, &s_fast, NULL };
    tz_job_t job;
    s_run (&job, az_step_network, "c12", "network", &impatient);
    tz_expect (&job.out, DX_STEP_RETRY, 0, "OperationTimedOut");
    tz_job_end (&job);
    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"lro_ms\": 50}"));

    long puts = s_count ("by_method", "PUT");
    s_job_start (&job, "c12", "network", NULL);
    s_once_what = "advance";
    s_once_json = "{\"seconds\": 601}";
    s_once_calls = 0;
    az_arm_set_progress (job.run.arm, s_once, NULL);
    assert_int_equal (az_step_network (&job.run), 0);
    tz_expect (&job.out, DX_STEP_DONE, 0, "");
    assert_true (s_once_calls > 0);
    assert_string_equal (tz_field (tz_reported (&job.out, "subnet"), "provider_id"),
                         "/subscriptions/" TZ_SUB "/resourceGroups/dexter-c12/providers/"
                         "Microsoft.Network/virtualNetworks/c12-vnet/subnets/hosts");
    tz_job_end (&job);
    assert_int_equal (s_count ("by_method", "PUT"), puts);
    s_done (az_step_destroy_group, "c12", "destroy.group");
}

/*  The token expires while the step waits for an operation: a fresh one
    is fetched and the step goes on. */

static void
test_token_expires_mid_step (void **state)
{
    (void) state;
    long expired = s_count ("by_error_code", "ExpiredAuthenticationToken");
    long grants = s_count ("by_request", "POST token");
    tz_job_t job;
    s_job_start (&job, "c9", "network", NULL);
    s_once_what = "expire-tokens";
    s_once_json = NULL;
    s_once_calls = 0;
    az_arm_set_progress (job.run.arm, s_once, NULL);
    assert_int_equal (az_step_network (&job.run), 0);
    tz_expect (&job.out, DX_STEP_DONE, 0, "");
    assert_int_equal (json_array_size (job.out.resources), 4);
    tz_job_end (&job);
    assert_true (s_once_calls > 0);
    assert_int_equal (s_count ("by_error_code", "ExpiredAuthenticationToken"), expired + 1);
    assert_true (s_count ("by_request", "POST token") >= grants + 1);
    s_done (az_step_destroy_group, "c9", "destroy.group");
}

/*  A step without a location fails for good, before any call. */
static void
test_no_location (void **state)
{
    (void) state;
    long gets = s_count ("by_method", "GET");
    tz_job_t job;
    job.assign = s_assign ("c10", "network");
    json_object_del (json_object_get (json_object_get (job.assign, "step"), "config"), "location");
    dx_step_out_init (&job.out, NULL, NULL);
    az_run_init (&job.run, &s_config, job.assign, &job.out);
    assert_int_equal (az_run_start (&job.run), 0);
    assert_int_equal (az_step_network (&job.run), -1);
    tz_expect (&job.out, DX_STEP_FAILED, 1, "InvalidStep");
    assert_int_equal (az_step_security (&job.run), -1);
    tz_job_end (&job);
    assert_int_equal (s_count ("by_method", "GET"), gets);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_create),
        cmocka_unit_test (test_again_writes_nothing),
        cmocka_unit_test (test_display_name),
        cmocka_unit_test (test_destroy),
        cmocka_unit_test (test_not_ours),
        cmocka_unit_test (test_faults_absorbed),
        cmocka_unit_test (test_operation_failed),
        cmocka_unit_test (test_group_being_deleted),
        cmocka_unit_test (test_twin_still_running),
        cmocka_unit_test (test_token_expires_mid_step),
        cmocka_unit_test (test_no_location),
    };
    int rc = cmocka_run_group_tests_name ("az_network against the fake ARM", tests,
                                          s_group_setup, th_fake_teardown);
    th_tmpdir_remove (s_fake.dir, rc != 0);
    return rc;
}
