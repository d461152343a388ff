/*  Tests of services/azure-worker/az_hosts.c against tests/fakes/fake_arm.py:
    the image step (default, explicit, missing), the host step (the access
    node's public IP, NIC and VM; an agent's tagged data disks at LUNs in
    device order; a second run that writes nothing; sizes the location
    lacks or that take fewer disks; throttling and 5xx absorbed; a VM
    operation that fails; a cancel) and the remove step. The network the
    hosts need is made here with plain ARM PUTs, as the network and
    security steps would. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "../../services/azure-worker/az_run.h"
#include "dx_util.h"
#include "harness_az.h"

#define SECRET   "Hosts~Secret.Marker"
#define PASSWORD "Dexter-Pa55word!"
#define UID      "0123456789ab"
#define IMAGE    "Canonical:ubuntu-24_04-lts:server-gen1:24.04.202411030"
#define RG       "/subscriptions/" TZ_SUB "/resourceGroups/dexter-c1/providers/"

static th_fake_t s_fake;

/*  Short waits, reproducible. */
static const dx_retry_policy_t s_fast = { 5, 40, 6, 1 };
static const az_run_config_t s_config = { NULL, NULL, 20, 60000, &s_fast, NULL };

static int s_cancel_flag;

static int
s_cancelled (void *arg)
{
    (void) arg;
    return s_cancel_flag;
}

//  ---------------------------------------------------------------------
//  Jobs

/*  A job.assign of cluster c1 in westeurope for step (taken), with the
    credentials of the fake and the admin password. */
static json_t *
s_assign (json_t *step)
{
    json_t *credentials = tz_credentials (&s_fake, SECRET);
    json_object_set_new (credentials, "ssh_password", json_string (PASSWORD));
    json_t *assign = json_pack ("{s:s, s:s, s:o, s:o}", "job", "c1:1:step", "cluster", "c1",
                                "step", step, "credentials", credentials);
    assert_non_null (assign);
    return assign;
}

/*  A step map of kind with the cluster's config and the context the
    network, security and image steps give. */
static json_t *
s_step (const char *kind, const char *id)
{
    json_t *step = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:i},"
                              " s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s}}",
                              "kind", kind, "id", id, "uid", UID, "cluster_type", "mesos",
                              "provider", "azure",
                              "config", "location", "westeurope", "ssh_user", "dexter",
                              "master_type", "Basic_A2", "masters", 1,
                              "context", "subnet", RG "Microsoft.Network/virtualNetworks/c1-vnet/"
                                                   "subnets/hosts",
                              "subnet.agents", RG "Microsoft.Network/virtualNetworks/c1-vnet/"
                                                  "subnets/agents",
                              "nsg.cluster", RG "Microsoft.Network/networkSecurityGroups/"
                                                "c1-nsg-cluster",
                              "nsg.access", RG "Microsoft.Network/networkSecurityGroups/"
                                               "c1-nsg-access",
                              "nsg.public", RG "Microsoft.Network/networkSecurityGroups/"
                                               "c1-nsg-public",
                              "image", IMAGE, "masters_ips", "10.0.0.11");
    assert_non_null (step);
    return step;
}

/*  The host step of the access node. */
static json_t *
s_access (void)
{
    json_t *step = s_step ("host", "host.access");
    json_t *fields = json_pack ("{s:s, s:s, s:i, s:s, s:s, s:i, s:[], s:s, s:b, s:s,"
                                " s:{}, s:{}, s:s}",
                                "role", "access", "group", "access", "slot", 0,
                                "hostname", "c1-access", "instance_type", "Basic_A2",
                                "disk_size", 40, "disks", "private_ip", "10.0.0.10",
                                "public", 0, "group_role", "", "attributes", "vars",
                                "client_token", "c1-access-tok");
    json_object_update (step, fields);
    json_decref (fields);
    return step;
}

/*  The host step of agent g1.slot of size, with disks (taken, may be
    NULL: none). */
static json_t *
s_agent (int slot, const char *size, int public, json_t *disks)
{
    char id [32], host [32];
    snprintf (id, sizeof id, "host.g1.%d", slot);
    snprintf (host, sizeof host, "c1-g1-%d", slot);
    json_t *step = s_step ("host", id);
    json_t *fields = json_pack ("{s:s, s:s, s:i, s:s, s:s, s:i, s:o, s:b, s:s,"
                                " s:{s:s}, s:{}, s:s}",
                                "role", "agent", "group", "g1", "slot", slot,
                                "hostname", host, "instance_type", size, "disk_size", 8,
                                "disks", disks? disks: json_array (), "public", public,
                                "group_role", public? "slave_public": "slave",
                                "attributes", "rack", "r1", "vars", "client_token", host);
    json_object_update (step, fields);
    json_decref (fields);
    return step;
}

/*  One step run with az_hosts' function fn: its result in out (caller
    finis it). */
static void
s_run_with (const az_run_config_t *config, az_step_fn *fn, json_t *step, dx_step_out_t *out)
{
    json_t *assign = s_assign (step);
    dx_step_out_init (out, s_cancelled, NULL);
    az_run_t run;
    az_run_init (&run, config, assign, out);
    if (az_run_start (&run) == 0)
        fn (&run);
    az_run_fini (&run);
    json_decref (assign);
}

static void
s_run (az_step_fn *fn, json_t *step, dx_step_out_t *out)
{
    s_run_with (&s_config, fn, step, out);
}

//  ---------------------------------------------------------------------
//  The fake

/*  The side channel, its answer dropped. */
static void
s_side (const char *method, const char *what, const char *json)
{
    json_decref (th_fake_ask (&s_fake, method, what, json));
}

/*  The fake's resource named name (of type, "" for any), or NULL; in
    *state (caller decrefs). */
static json_t *
s_fake_resource (json_t **state, const char *type, const char *name)
{
    *state = th_fake_ask (&s_fake, "GET", "state", NULL);
    size_t i;
    json_t *res;
    json_array_foreach (json_object_get (*state, "resources"), i, res)
        if (strcmp (tz_field (res, "name"), name) == 0
        &&  (!*type || strcmp (tz_field (res, "type"), type) == 0))
            return res;
    return NULL;
}

/*  Resources of the fake whose dexter:host tag or name starts with host. */
static int
s_fake_count_host (const char *host)
{
    json_t *state = th_fake_ask (&s_fake, "GET", "state", NULL);
    int count = 0;
    size_t i;
    json_t *res;
    json_array_foreach (json_object_get (state, "resources"), i, res) {
        const char *tag = tz_field (json_object_get (res, "tags"), "dexter:host");
        const char *name = tz_field (res, "name");
        if (strcmp (tag, host) == 0 || strncmp (name, host, strlen (host)) == 0)
            count++;
    }
    json_decref (state);
    return count;
}

static long
s_puts (void)
{
    return th_fake_calls (s_fake.endpoint, "by_method", "PUT");
}

/*  PUT path with body (taken), waited for. */
static void
s_arm_put (az_run_t *run, const char *path, const char *api, json_t *body)
{
    json_t *answer = az_run_ask (run, "PUT", path, api, body);
    if (!answer)
        print_error ("PUT %s: %s\n", path, run->out->message);
    assert_non_null (answer);
    json_decref (answer);
    json_decref (body);
}

/*  The network and security steps' resources: the group, the VNet with
    subnets hosts and agents, the three NSGs. */
static void
s_make_network (void)
{
    dx_step_out_t out;
    json_t *assign = s_assign (s_step ("network", "network"));
    dx_step_out_init (&out, NULL, NULL);
    az_run_t run;
    az_run_init (&run, &s_config, assign, &out);
    assert_int_equal (az_run_start (&run), 0);
    s_arm_put (&run, "resourceGroups/dexter-c1", AZ_API_RESOURCES,
               json_pack ("{s:s, s:o}", "location", "westeurope", "tags",
                          az_run_tags (&run, "network", NULL, NULL)));
    char path [256];
    s_arm_put (&run, az_run_path (&run, path, sizeof path, "Microsoft.Network/virtualNetworks",
                                  "c1-vnet"), AZ_API_NETWORK,
               json_pack ("{s:s, s:o, s:{s:{s:[s]}, s:[{s:s, s:{s:s}}, {s:s, s:{s:s}}]}}",
                          "location", "westeurope", "tags",
                          az_run_tags (&run, "network", NULL, NULL), "properties",
                          "addressSpace", "addressPrefixes", "10.0.0.0/16", "subnets",
                          "name", "hosts", "properties", "addressPrefix", "10.0.0.0/24",
                          "name", "agents", "properties", "addressPrefix", "10.0.32.0/19"));
    const char *const nsgs [] = { "c1-nsg-cluster", "c1-nsg-access", "c1-nsg-public" };
    for (int i = 0; i < 3; i++)
        s_arm_put (&run, az_run_path (&run, path, sizeof path,
                                      "Microsoft.Network/networkSecurityGroups", nsgs [i]),
                   AZ_API_NETWORK, json_pack ("{s:s, s:o}", "location", "westeurope", "tags",
                                              az_run_tags (&run, "security", NULL, NULL)));
    az_run_fini (&run);
    dx_step_out_fini (&out);
    json_decref (assign);
}

static int
s_group_setup (void **state)
{
    *state = &s_fake;
    if (tz_fake_up (&s_fake, "az-hosts", SECRET, "5", "60", true))
        return -1;
    s_make_network ();
    return 0;
}

//  ---------------------------------------------------------------------
//  image

static void
s_image (const char *image, dx_step_out_t *out)
{
    json_t *step = s_step ("image", "image");
    if (image)
        json_object_set_new (json_object_get (step, "config"), "image", json_string (image));
    s_run (az_step_image, step, out);
}

static void
test_image_default (void **state)
{
    (void) state;
    dx_step_out_t out;
    s_image (NULL, &out);
    tz_expect (&out, DX_STEP_DONE, 0, "");
    json_t *res = tz_reported (&out, "image");
    assert_non_null (res);
    assert_string_equal (tz_field (res, "kind"), "image");
    /* the newest version of Canonical's current LTS, generation 1 */
    assert_string_equal (tz_field (res, "provider_id"), IMAGE);
    assert_string_equal (tz_field (res, "hyperVGeneration"), "V1");
    dx_step_out_fini (&out);
}

static void
test_image_explicit (void **state)
{
    (void) state;
    dx_step_out_t out;
    s_image ("Canonical:0001-com-ubuntu-server-jammy:22_04-lts:22.04.202311150", &out);
    tz_expect (&out, DX_STEP_DONE, 0, "");
    json_t *res = tz_reported (&out, "image");
    assert_string_equal (tz_field (res, "provider_id"),
                         "Canonical:0001-com-ubuntu-server-jammy:22_04-lts:22.04.202311150");
    assert_string_equal (tz_field (res, "hyperVGeneration"), "V1");
    dx_step_out_fini (&out);

    s_image ("Canonical:ubuntu-24_04-lts:server:latest", &out);
    tz_expect (&out, DX_STEP_DONE, 0, "");
    res = tz_reported (&out, "image");
    assert_string_equal (tz_field (res, "provider_id"),
                         "Canonical:ubuntu-24_04-lts:server:24.04.202411030");
    assert_string_equal (tz_field (res, "hyperVGeneration"), "V2");
    dx_step_out_fini (&out);
}

static void
test_image_missing (void **state)
{
    (void) state;
    const char *const missing [] = {
        "Canonical:no-such-offer:server:latest",
        "Canonical:ubuntu-24_04-lts:server-gen1:24.04.199901010",
    };
    for (size_t i = 0; i < sizeof missing / sizeof missing [0]; i++) {
        dx_step_out_t out;
        s_image (missing [i], &out);
        tz_expect (&out, DX_STEP_FAILED, 1, "PlatformImageNotFound");
        assert_non_null (strstr (out.message, missing [i]));
        assert_non_null (strstr (out.message, "westeurope"));
        assert_int_equal (json_array_size (out.resources), 0);
        dx_step_out_fini (&out);
    }
    dx_step_out_t out;
    s_image ("ubuntu", &out);
    tz_expect (&out, DX_STEP_FAILED, 1, "InvalidImage");
    assert_non_null (strstr (out.message, "'ubuntu'"));
    dx_step_out_fini (&out);
}

//  ---------------------------------------------------------------------
//  host

/*  Every tag of the ownership set on res, for host (role, group). */
static void
s_expect_tags (const json_t *res, const char *role, const char *group, const char *host)
{
    const json_t *tags = json_object_get (res, "tags");
    if (strcmp (tz_field (tags, "dexter:host"), host))
        print_error ("%s has tags %s\n", tz_field (res, "name"),
                     json_dumps (tags, JSON_COMPACT));
    assert_string_equal (tz_field (tags, "dexter:cluster"), "c1");
    assert_string_equal (tz_field (tags, "dexter:uid"), UID);
    assert_string_equal (tz_field (tags, "dexter:role"), role);
    assert_string_equal (tz_field (tags, "dexter:group"), group);
    assert_string_equal (tz_field (tags, "dexter:host"), host);
}

static void
test_host_access (void **state)
{
    (void) state;
    dx_step_out_t out;
    s_run (az_step_host, s_access (), &out);
    tz_expect (&out, DX_STEP_DONE, 0, "");
    json_t *host = tz_reported (&out, "host.access");
    json_t *eip = tz_reported (&out, "eip.access");
    assert_non_null (host);
    assert_non_null (eip);
    assert_string_equal (tz_field (host, "kind"), "virtual_machine");
    assert_string_equal (tz_field (host, "provider_id"),
                         RG "Microsoft.Compute/virtualMachines/c1-access");
    assert_string_equal (tz_field (host, "private_ip"), "10.0.0.10");
    assert_string_equal (tz_field (host, "state"), "running");
    assert_string_equal (tz_field (host, "hostname"), "c1-access");
    assert_string_equal (tz_field (host, "group"), "access");
    assert_string_equal (tz_field (host, "role"), "access");
    assert_string_equal (tz_field (host, "instance_type"), "Basic_A2");
    assert_int_equal (json_integer_value (json_object_get (host, "slot")), 0);
    /* ISO 8601 UTC, as every launched_at */
    const char *launched = tz_field (host, "launched_at");
    assert_int_equal (strlen (launched), 24);
    assert_int_equal (launched [23], 'Z');
    assert_string_equal (tz_field (eip, "kind"), "public_ip");
    assert_string_equal (tz_field (eip, "provider_id"),
                         RG "Microsoft.Network/publicIPAddresses/c1-access-ip");
    assert_true (*tz_field (eip, "public_ip"));
    assert_string_equal (tz_field (eip, "public_ip"), tz_field (host, "public_ip"));
    dx_step_out_fini (&out);

    //  In the fake: tags on everything the step made, and what they hold
    const char *const made [] = { "c1-access-ip", "c1-access-nic", "c1-access",
                                  "c1-access-osdisk" };
    for (size_t i = 0; i < 4; i++) {
        json_t *st;
        json_t *res = s_fake_resource (&st, "", made [i]);
        assert_non_null (res);
        s_expect_tags (res, "access", "access", "c1-access");
        assert_string_equal (tz_field (res, "provisioningState"), "Succeeded");
        json_decref (st);
    }
    json_t *st;
    json_t *nic = s_fake_resource (&st, "Microsoft.Network/networkInterfaces", "c1-access-nic");
    const char *nsg = json_string_value (json_object_get (json_object_get (json_object_get (
                          json_object_get (nic, "body"), "properties"), "networkSecurityGroup"),
                          "id"));
    assert_string_equal (nsg, RG "Microsoft.Network/networkSecurityGroups/c1-nsg-access");
    json_decref (st);
    json_t *vm = s_fake_resource (&st, "Microsoft.Compute/virtualMachines", "c1-access");
    json_t *props = json_object_get (json_object_get (vm, "body"), "properties");
    json_t *os = json_object_get (props, "osProfile");
    assert_string_equal (tz_field (os, "adminUsername"), "dexter");
    assert_string_equal (tz_field (os, "adminPassword"), PASSWORD);
    size_t len = 0;
    unsigned char *script = dx_base64_decode (tz_field (os, "customData"), &len);
    assert_non_null (script);
    assert_true (len > 20 && memcmp (script, "Content-Type: multipart/mixed", 29) == 0);
    assert_non_null (strstr ((char *) script, "c1-access"));
    free (script);
    json_t *disk = json_object_get (json_object_get (props, "storageProfile"), "osDisk");
    assert_int_equal (json_integer_value (json_object_get (disk, "diskSizeGB")), 40);
    assert_string_equal (tz_field (disk, "deleteOption"), "Delete");
    json_decref (st);
}

/*  A PEM CRL of base64 body length len (the worker takes it as it is:
    the access node checks it against the CA). Caller frees. */
static char *
s_pem_crl (size_t len)
{
    char *pem = malloc (len + len / 64 + 64);
    size_t at = (size_t) sprintf (pem, "-----BEGIN X509 CRL-----\n");
    for (size_t i = 0; i < len; i++) {
        pem [at++] = "MIIBQUJD+/09"[i % 12];
        if (i % 64 == 63 || i + 1 == len)
            pem [at++] = '\n';
    }
    sprintf (pem + at, "-----END X509 CRL-----\n");
    return pem;
}

/*  The access.crl step on the access VM, with the context the scheduler
    gives it. */
static json_t *
s_access_crl (const char *pem, const char *number)
{
    json_t *step = s_step ("access.crl", "access.crl");
    json_t *context = json_object_get (step, "context");
    json_object_set_new (context, "access", json_string (RG "Microsoft.Compute/virtualMachines/"
                                                            "c1-access"));
    json_object_set_new (context, "vpn_crl", json_string (pem));
    json_object_set_new (context, "vpn_crl_number", json_string (number));
    return step;
}

/*  access.crl: the CRL goes into the access VM's tags with a PATCH (the
    fake checks it against VirtualMachineUpdate), its ownership tags kept:
    dexter:crl NUMBER:CHUNKS and the PEM body 256 characters a tag; a
    shorter CRL after a longer one leaves no chunk of the longer; too big
    and not a CRL fail for good. */
static void
test_access_crl (void **state)
{
    (void) state;
    const size_t lens [] = { 2900, 600 };
    for (size_t n = 0; n < 2; n++) {
        char *pem = s_pem_crl (lens [n]);
        char number [8];
        snprintf (number, sizeof number, "%zu", n + 2);
        dx_step_out_t out;
        s_run (az_step_access_crl, s_access_crl (pem, number), &out);
        tz_expect (&out, DX_STEP_DONE, 0, "");
        size_t chunks = (lens [n] + 255) / 256;
        char want [32];
        json_t *res = tz_reported (&out, "access.crl");
        assert_non_null (res);
        assert_string_equal (tz_field (res, "provider_id"),
                             RG "Microsoft.Compute/virtualMachines/c1-access");
        assert_string_equal (tz_field (res, "crl_number"), number);
        snprintf (want, sizeof want, "%zu", chunks);
        assert_string_equal (tz_field (res, "chunks"), want);
        dx_step_out_fini (&out);
        json_t *st;
        json_t *vm = s_fake_resource (&st, "Microsoft.Compute/virtualMachines", "c1-access");
        assert_non_null (vm);
        s_expect_tags (vm, "access", "access", "c1-access");
        const json_t *tags = json_object_get (vm, "tags");
        snprintf (want, sizeof want, "%s:%zu", number, chunks);
        assert_string_equal (tz_field (tags, "dexter:crl"), want);
        char *body = calloc (1, lens [n] + 1);
        size_t crl_tags = 0;
        const char *key;
        json_t *value;
        json_object_foreach ((json_t *) tags, key, value)
            crl_tags += strncmp (key, "dexter:crl.", 11) == 0;
        assert_int_equal (crl_tags, chunks);
        for (size_t i = 0; i < chunks; i++) {
            char name [32];
            snprintf (name, sizeof name, "dexter:crl.%zu", i);
            assert_true (strlen (tz_field (tags, name)) <= 256);
            strcat (body, tz_field (tags, name));
        }
        assert_int_equal (strlen (body), lens [n]);
        for (size_t i = 0; i < lens [n]; i++)
            assert_int_equal (body [i], "MIIBQUJD+/09"[i % 12]);
        free (body);
        free (pem);
        json_decref (st);
    }
    dx_step_out_t out;
    char *pem = s_pem_crl (40 * 256 + 4);
    s_run (az_step_access_crl, s_access_crl (pem, "9"), &out);
    tz_expect (&out, DX_STEP_FAILED, 1, "CrlTooLarge");
    dx_step_out_fini (&out);
    free (pem);
    s_run (az_step_access_crl, s_access_crl ("-----BEGIN CERTIFICATE-----\n", "9"), &out);
    tz_expect (&out, DX_STEP_FAILED, 1, "InvalidCrl");
    dx_step_out_fini (&out);
}

/*  A master: its fixed address in the hosts' subnet, the cluster's NSG,
    no public IP; the admin password in no log line. */
static void
test_host_master (void **state)
{
    (void) state;
    json_t *step = s_step ("host", "host.masters.1");
    json_t *fields = json_pack ("{s:s, s:s, s:i, s:s, s:s, s:i, s:[], s:s, s:b, s:s,"
                                " s:{}, s:{}, s:s}",
                                "role", "master", "group", "masters", "slot", 1,
                                "hostname", "c1-master-1", "instance_type", "Standard_D11",
                                "disk_size", 30, "disks", "private_ip", "10.0.0.12",
                                "public", 0, "group_role", "", "attributes", "vars",
                                "client_token", "c1-master-1");
    json_object_update (step, fields);
    json_decref (fields);
    json_object_set_new (json_object_get (step, "context"), "masters_ips",
                         json_string ("10.0.0.11,10.0.0.12"));
    char path [128];
    snprintf (path, sizeof path, "%s/master.log", s_fake.dir);
    int saved = th_log_capture (path);
    assert_true (saved >= 0);
    dx_step_out_t out;
    s_run (az_step_host, step, &out);
    char *log = th_log_release (saved, path);
    assert_non_null (log);
    assert_non_null (strstr (log, "virtualMachines/c1-master-1"));
    assert_null (strstr (log, PASSWORD));
    assert_null (strstr (log, SECRET));
    free (log);
    tz_expect (&out, DX_STEP_DONE, 0, "");
    json_t *host = tz_reported (&out, "host.masters.1");
    assert_non_null (host);
    assert_string_equal (tz_field (host, "private_ip"), "10.0.0.12");
    assert_string_equal (tz_field (host, "public_ip"), "");
    assert_string_equal (tz_field (host, "role"), "master");
    assert_null (tz_reported (&out, "eip.access"));
    dx_step_out_fini (&out);
    json_t *st;
    json_t *nic = s_fake_resource (&st, "Microsoft.Network/networkInterfaces", "c1-master-1-nic");
    s_expect_tags (nic, "master", "masters", "c1-master-1");
    json_t *props = json_object_get (json_object_get (nic, "body"), "properties");
    assert_string_equal (tz_field (json_object_get (props, "networkSecurityGroup"), "id"),
                         RG "Microsoft.Network/networkSecurityGroups/c1-nsg-cluster");
    assert_null (json_object_get (json_object_get (json_array_get (json_object_get (
                     props, "ipConfigurations"), 0), "properties"), "publicIPAddress"));
    json_decref (st);
    assert_null (s_fake_resource (&st, "", "c1-master-1-ip"));
    json_decref (st);
}

/*  An agent with two disks given out of order: xvdf at LUN 0, xvdg at 1,
    each a tagged disk of its own. */
static void
test_host_agent_disks (void **state)
{
    (void) state;
    json_t *disks = json_pack ("[{s:i, s:s, s:s}, {s:i, s:s, s:s}]",
                               "size", 20, "type", "StandardSSD_LRS", "device", "xvdg",
                               "size", 10, "type", "Standard_LRS", "device", "xvdf");
    dx_step_out_t out;
    s_run (az_step_host, s_agent (1, "Standard_D11", 0, disks), &out);
    tz_expect (&out, DX_STEP_DONE, 0, "");
    json_t *host = tz_reported (&out, "host.g1.1");
    assert_non_null (host);
    assert_null (tz_reported (&out, "eip.access"));
    /* dynamic: the lowest free address of the agents' subnet */
    assert_string_equal (tz_field (host, "private_ip"), "10.0.32.4");
    assert_string_equal (tz_field (host, "public_ip"), "");
    assert_int_equal (json_integer_value (json_object_get (host, "slot")), 1);
    dx_step_out_fini (&out);

    json_t *st;
    json_t *vm = s_fake_resource (&st, "Microsoft.Compute/virtualMachines", "c1-g1-1");
    assert_non_null (vm);
    s_expect_tags (vm, "agent", "g1", "c1-g1-1");
    json_t *data = json_object_get (json_object_get (json_object_get (json_object_get (
                       vm, "body"), "properties"), "storageProfile"), "dataDisks");
    assert_int_equal (json_array_size (data), 2);
    assert_int_equal (json_integer_value (json_object_get (json_array_get (data, 0), "lun")), 0);
    assert_string_equal (tz_field (json_array_get (data, 0), "name"), "c1-g1-1-xvdf");
    assert_int_equal (json_integer_value (json_object_get (json_array_get (data, 1), "lun")), 1);
    assert_string_equal (tz_field (json_array_get (data, 1), "name"), "c1-g1-1-xvdg");
    /* the first boot finds each disk at its LUN */
    json_t *os_profile = json_object_get (json_object_get (json_object_get (vm, "body"),
                                                           "properties"), "osProfile");
    size_t len = 0;
    char *script = (char *) dx_base64_decode (tz_field (os_profile, "customData"), &len);
    assert_non_null (script);
    assert_non_null (strstr (script, "\ndx_disk xvdg 1\ndx_disk xvdf 0\n"));
    free (script);
    /* no OS disk size below the image's: the image's */
    json_t *os = json_object_get (json_object_get (json_object_get (json_object_get (
                     vm, "body"), "properties"), "storageProfile"), "osDisk");
    assert_null (json_object_get (os, "diskSizeGB"));
    json_decref (st);
    const char *const names [] = { "c1-g1-1-xvdf", "c1-g1-1-xvdg" };
    const char *const skus [] = { "Standard_LRS", "StandardSSD_LRS" };
    const int sizes [] = { 10, 20 };
    for (int i = 0; i < 2; i++) {
        json_t *disk = s_fake_resource (&st, "Microsoft.Compute/disks", names [i]);
        assert_non_null (disk);
        s_expect_tags (disk, "agent", "g1", "c1-g1-1");
        assert_string_equal (tz_field (disk, "sku"), skus [i]);
        assert_int_equal (json_integer_value (json_object_get (disk, "diskSizeGB")), sizes [i]);
        assert_string_equal (tz_field (disk, "managedBy"), RG "Microsoft.Compute/virtualMachines/"
                                                         "c1-g1-1");
        json_decref (st);
    }
    json_t *nic = s_fake_resource (&st, "Microsoft.Network/networkInterfaces", "c1-g1-1-nic");
    s_expect_tags (nic, "agent", "g1", "c1-g1-1");
    json_decref (st);
}

/*  A public agent: a public IP of its own, the public NSG. */
static void
test_host_public_agent (void **state)
{
    (void) state;
    dx_step_out_t out;
    s_run (az_step_host, s_agent (2, "Standard_D2s_v3", 1, NULL), &out);
    tz_expect (&out, DX_STEP_DONE, 0, "");
    json_t *host = tz_reported (&out, "host.g1.2");
    assert_true (*tz_field (host, "public_ip"));
    assert_null (tz_reported (&out, "eip.access"));
    dx_step_out_fini (&out);
    json_t *st;
    json_t *ip = s_fake_resource (&st, "Microsoft.Network/publicIPAddresses", "c1-g1-2-ip");
    assert_non_null (ip);
    s_expect_tags (ip, "agent", "g1", "c1-g1-2");
    json_decref (st);
    json_t *nic = s_fake_resource (&st, "Microsoft.Network/networkInterfaces", "c1-g1-2-nic");
    const char *nsg = json_string_value (json_object_get (json_object_get (json_object_get (
                          json_object_get (nic, "body"), "properties"), "networkSecurityGroup"),
                          "id"));
    assert_string_equal (nsg, RG "Microsoft.Network/networkSecurityGroups/c1-nsg-public");
    json_decref (st);
}

/*  A host made already: found, not written. */
static void
test_host_again_writes_nothing (void **state)
{
    (void) state;
    long before = s_puts ();
    assert_true (before > 0);
    dx_step_out_t out;
    s_run (az_step_host, s_access (), &out);
    tz_expect (&out, DX_STEP_DONE, 0, "");
    assert_string_equal (tz_field (tz_reported (&out, "host.access"), "private_ip"), "10.0.0.10");
    assert_true (*tz_field (tz_reported (&out, "eip.access"), "public_ip"));
    dx_step_out_fini (&out);
    json_t *disks = json_pack ("[{s:i, s:s, s:s}, {s:i, s:s, s:s}]",
                               "size", 20, "type", "StandardSSD_LRS", "device", "xvdg",
                               "size", 10, "type", "Standard_LRS", "device", "xvdf");
    s_run (az_step_host, s_agent (1, "Standard_D11", 0, disks), &out);
    tz_expect (&out, DX_STEP_DONE, 0, "");
    assert_string_equal (tz_field (tz_reported (&out, "host.g1.1"), "private_ip"), "10.0.32.4");
    dx_step_out_fini (&out);
    s_run (az_step_host, s_agent (2, "Standard_D2s_v3", 1, NULL), &out);
    tz_expect (&out, DX_STEP_DONE, 0, "");
    dx_step_out_fini (&out);
    assert_int_equal (s_puts (), before);
}

/*  A size the location lacks, or one that takes fewer disks: failed for
    good, naming both, before anything is made. */
static void
test_host_size_refused (void **state)
{
    (void) state;
    long before = s_puts ();
    json_t *step = s_agent (7, "Standard_D11", 0, NULL);
    json_object_set_new (json_object_get (step, "config"), "location",
                         json_string ("Sweden Central"));
    dx_step_out_t out;
    s_run (az_step_host, step, &out);
    tz_expect (&out, DX_STEP_FAILED, 1, "SkuNotAvailable");
    assert_non_null (strstr (out.message, "Standard_D11"));
    assert_non_null (strstr (out.message, "swedencentral"));
    dx_step_out_fini (&out);

    json_t *disks = json_pack ("[{s:i, s:s, s:s}, {s:i, s:s, s:s}]",
                               "size", 10, "type", "Standard_LRS", "device", "xvdf",
                               "size", 10, "type", "Standard_LRS", "device", "xvdg");
    s_run (az_step_host, s_agent (8, "Basic_A0", 0, disks), &out);
    tz_expect (&out, DX_STEP_FAILED, 1, "OperationNotAllowed");
    assert_non_null (strstr (out.message, "Basic_A0 takes at most 1 data disks"));
    assert_non_null (strstr (out.message, "asks for 2"));
    dx_step_out_fini (&out);
    assert_int_equal (s_puts (), before);
}

/*  429s and 5xx on every kind of call: absorbed by the retries. */
static void
test_host_faults_absorbed (void **state)
{
    (void) state;
    s_side ("POST", "faults", "{\"status\": 429, \"type\": \"vmSizes\", \"retry_after\": 0}");
    s_side ("POST", "faults", "{\"method\": \"PUT\", \"status\": 503, \"type\": \"disks\"}");
    s_side ("POST", "faults", "{\"method\": \"PUT\", \"status\": 500, "
                              "\"type\": \"networkInterfaces\", \"after\": true}");
    s_side ("POST", "faults", "{\"method\": \"PUT\", \"status\": 429, "
                              "\"type\": \"virtualMachines\", \"retry_after\": 0}");
    s_side ("POST", "faults", "{\"method\": \"GET\", \"status\": 503, \"type\": \"operations\"}");
    json_t *disks = json_pack ("[{s:i, s:s, s:s}]", "size", 5, "type", "Standard_LRS",
                               "device", "xvdf");
    dx_step_out_t out;
    s_run (az_step_host, s_agent (3, "Standard_D11", 0, disks), &out);
    tz_expect (&out, DX_STEP_DONE, 0, "");
    assert_string_equal (tz_field (tz_reported (&out, "host.g1.3"), "state"), "running");
    dx_step_out_fini (&out);
    json_t *faults = th_fake_side (s_fake.endpoint, "GET", "faults", NULL);
    assert_non_null (faults);
    /* every fault was met, and the step still ended done */
    json_t *pending = json_object_get (faults, "pending");
    assert_true (json_is_array (pending));
    assert_int_equal (json_array_size (pending), 0);
    json_decref (faults);
}

/*  A VM whose operation fails: failed, ARM's code and message; what was
    made is reported. */
static void
test_host_vm_failed (void **state)
{
    (void) state;
    s_side ("POST", "faults", "{\"kind\": \"operation\", \"method\": \"PUT\", "
                              "\"type\": \"virtualMachines\", \"name\": \"c1-g1-4$\", "
                              "\"code\": \"VMAgentStatusCommunicationError\", "
                              "\"message\": \"The VM agent did not report.\"}");
    dx_step_out_t out;
    s_run (az_step_host, s_agent (4, "Standard_D11", 0, NULL), &out);
    tz_expect (&out, DX_STEP_FAILED, 0, "VMAgentStatusCommunicationError");
    assert_non_null (strstr (out.message, "The VM agent did not report."));
    json_t *host = tz_reported (&out, "host.g1.4");
    assert_non_null (host);
    assert_string_equal (tz_field (host, "state"), "failed");
    dx_step_out_fini (&out);

    //  Run again, it converges: the same VM, provisioned this time
    s_run (az_step_host, s_agent (4, "Standard_D11", 0, NULL), &out);
    tz_expect (&out, DX_STEP_DONE, 0, "");
    assert_string_equal (tz_field (tz_reported (&out, "host.g1.4"), "state"), "running");
    dx_step_out_fini (&out);
}

/*  A cancelled job stops waiting and is retried later. */
static void
test_host_cancelled (void **state)
{
    (void) state;
    s_cancel_flag = 1;
    dx_step_out_t out;
    s_run (az_step_host, s_agent (5, "Standard_D11", 0, NULL), &out);
    s_cancel_flag = 0;
    tz_expect (&out, DX_STEP_RETRY, 0, "CANCELLED");
    dx_step_out_fini (&out);
}

/*  With a worker's size cache, hosts of one location list its sizes
    once; a size not in the kept list is asked of ARM again before it is
    refused, so one Azure added meanwhile is found. */
static void
test_sizes_kept (void **state)
{
    (void) state;
    az_sizes_t *sizes = az_sizes_new (600000);
    az_run_config_t config = s_config;
    config.sizes = sizes;
    s_side ("POST", "locations", "{\"location\": \"westeurope\", "
                                 "\"remove\": [\"Standard_D11\"]}");
    long lists = th_fake_calls (s_fake.endpoint, "by_request", "GET vmSizes");
    dx_step_out_t out;
    for (int i = 0; i < 2; i++) {
        s_run_with (&config, az_step_host, s_agent (11, "Standard_D11", 0, NULL), &out);
        tz_expect (&out, DX_STEP_FAILED, 1, "SkuNotAvailable");
        dx_step_out_fini (&out);
    }
    assert_int_equal (th_fake_calls (s_fake.endpoint, "by_request", "GET vmSizes"), lists + 2);
    s_side ("POST", "locations", "{\"location\": \"westeurope\", "
                                 "\"add\": [\"Standard_D11\"]}");
    for (int slot = 11; slot <= 12; slot++) {
        s_run_with (&config, az_step_host, s_agent (slot, "Standard_D11", 0, NULL), &out);
        tz_expect (&out, DX_STEP_DONE, 0, "");
        dx_step_out_fini (&out);
    }
    //  The first host listed again (its size was not in the kept list),
    //  the second took the kept one
    assert_int_equal (th_fake_calls (s_fake.endpoint, "by_request", "GET vmSizes"), lists + 3);
    az_sizes_destroy (&sizes);
}

//  ---------------------------------------------------------------------
//  remove

static json_t *
s_remove (int slot)
{
    char id [32], host [32];
    snprintf (id, sizeof id, "host.g1.%d", slot);
    snprintf (host, sizeof host, "c1-g1-%d", slot);
    json_t *step = s_step ("remove", id);
    json_t *fields = json_pack ("{s:s, s:i, s:s}", "group", "g1", "slot", slot,
                                "hostname", host);
    json_object_update (step, fields);
    json_decref (fields);
    return step;
}

static void
test_remove (void **state)
{
    (void) state;
    //  A public agent with a disk: VM, NIC, public IP, data and OS disks
    json_t *disks = json_pack ("[{s:i, s:s, s:s}]", "size", 5, "type", "Standard_LRS",
                               "device", "xvdh");
    dx_step_out_t out;
    s_run (az_step_host, s_agent (6, "Standard_D2s_v3", 1, disks), &out);
    tz_expect (&out, DX_STEP_DONE, 0, "");
    dx_step_out_fini (&out);
    assert_int_equal (s_fake_count_host ("c1-g1-6"), 5);

    s_run (az_step_remove, s_remove (6), &out);
    tz_expect (&out, DX_STEP_DONE, 0, "");
    json_t *host = tz_reported (&out, "host.g1.6");
    assert_non_null (host);
    assert_string_equal (tz_field (host, "kind"), "virtual_machine");
    assert_string_equal (tz_field (host, "state"), "deleted");
    assert_string_equal (tz_field (host, "provider_id"),
                         RG "Microsoft.Compute/virtualMachines/c1-g1-6");
    dx_step_out_fini (&out);
    assert_int_equal (s_fake_count_host ("c1-g1-6"), 0);
    /* the others stay */
    assert_true (s_fake_count_host ("c1-g1-1") > 0);

    //  Gone already: done
    s_run (az_step_remove, s_remove (6), &out);
    tz_expect (&out, DX_STEP_DONE, 0, "");
    assert_string_equal (tz_field (tz_reported (&out, "host.g1.6"), "state"), "deleted");
    dx_step_out_fini (&out);

    //  The agent with two data disks
    s_run (az_step_remove, s_remove (1), &out);
    tz_expect (&out, DX_STEP_DONE, 0, "");
    dx_step_out_fini (&out);
    assert_int_equal (s_fake_count_host ("c1-g1-1"), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_image_default),
        cmocka_unit_test (test_image_explicit),
        cmocka_unit_test (test_image_missing),
        cmocka_unit_test (test_host_access),
        cmocka_unit_test (test_access_crl),
        cmocka_unit_test (test_host_master),
        cmocka_unit_test (test_host_agent_disks),
        cmocka_unit_test (test_host_public_agent),
        cmocka_unit_test (test_host_again_writes_nothing),
        cmocka_unit_test (test_host_size_refused),
        cmocka_unit_test (test_host_faults_absorbed),
        cmocka_unit_test (test_host_vm_failed),
        cmocka_unit_test (test_host_cancelled),
        cmocka_unit_test (test_remove),
        cmocka_unit_test (test_sizes_kept),
    };
    int rc = cmocka_run_group_tests_name ("fake ARM", tests, s_group_setup, th_fake_teardown);
    th_tmpdir_remove (s_fake.dir, rc != 0);
    return rc;
}
