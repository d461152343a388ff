/*  az_hosts: the steps that make and remove a cluster's hosts on Azure:
    image (the platform image to boot), host (one VM with its NIC, its
    data disks and, for the access node and public agents, its public IP)
    and remove. docs/azure.md says what each step calls.

    Every resource is named from the cluster, group and slot, so a step
    run twice finds what the first run made. Each is read first and
    written only when it is missing or differs from what the step wants:
    a repeated deploy of an unchanged spec makes no write at all. */
#include "az_run.h"
#include "dx_log.h"
#include "dx_provision.h"
#include "dx_util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sodium.h>

/*  Microsoft.Compute/disks has api-versions of its own; 2022-08-01 is
    not one of them. */
#define S_API_DISKS "2022-07-02"

/*  The default image: the current Ubuntu LTS from Canonical, Hyper-V
    generation 1, so that it boots on the classic sizes (Basic_A2,
    Standard_D11) as well as on the newer ones. */
#define S_DEFAULT_IMAGE "Canonical:ubuntu-24_04-lts:server-gen1:latest"

/*  The OS disk of the images Dexter boots is 30 GB; a smaller disk_size
    leaves the size to the image. */
#define S_IMAGE_OS_DISK_GB 30

#define S_OS_DISK_TYPE "StandardSSD_LRS"

//  ---------------------------------------------------------------------
//  Shared helpers

/*  The step's location as ARM names it (westeurope for "West Europe")
    into buf; 0, or -1 with the outcome set. */
static int
s_location (az_run_t *run, char *buf, size_t size)
{
    const char *given = run->location;
    size_t len = 0;
    for (const char *c = given? given: ""; *c && len + 1 < size; c++) {
        if (*c == ' ')
            continue;
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidLocation",
                                    "the config's location '%s' is not an Azure location", given);
        buf [len++] = (char) (*c >= 'A' && *c <= 'Z'? *c - 'A' + 'a': *c);
    }
    buf [len] = 0;
    if (len == 0)
        return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "LocationRequired",
                                "the config has no location");
    return 0;
}

/*  An image URN, publisher:offer:sku:version. */
typedef struct {
    char publisher [80], offer [80], sku [80], version [80];
} s_urn_t;

/*  Splits text into urn; 0, or -1 when it is not four parts of letters,
    digits, '.', '_' and '-' (the characters that go into ARM's paths). */
static int
s_urn_parse (const char *text, s_urn_t *urn)
{
    char *parts [4] = { urn->publisher, urn->offer, urn->sku, urn->version };
    size_t sizes [4] = { sizeof urn->publisher, sizeof urn->offer, sizeof urn->sku,
                         sizeof urn->version };
    const char *c = text? text: "";
    for (int i = 0; i < 4; i++) {
        size_t len = 0;
        for (; *c && *c != ':'; c++) {
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
            ||    *c == '.' || *c == '_' || *c == '-') || len + 1 >= sizes [i])
                return -1;
            parts [i][len++] = *c;
        }
        parts [i][len] = 0;
        if (len == 0 || (i < 3 && *c++ != ':'))
            return -1;
    }
    return *c? -1: 0;
}

/*  Members of a request body that ARM never answers with (secrets, the
    custom data) or answers in its own spelling (the location). */
static bool
s_unanswered (const char *key)
{
    return strcmp (key, "adminPassword") == 0 || strcmp (key, "customData") == 0
        || strcmp (key, "location") == 0;
}

/*  1 when everything of want is in have: ARM's answer holds what was PUT
    plus what ARM adds. Strings compare without case (ids, enums), unless
    exact (tag values). */
static bool
s_matches_as (const json_t *want, const json_t *have, bool exact)
{
    if (json_is_object (want)) {
        if (!json_is_object (have))
            return false;
        const char *key;
        json_t *value;
        json_object_foreach ((json_t *) want, key, value)
            if (!s_unanswered (key)
            &&  !s_matches_as (value, json_object_get (have, key), exact
                                                                || strcmp (key, "tags") == 0))
                return false;
        return true;
    }
    if (json_is_array (want)) {
        if (!json_is_array (have) || json_array_size (want) != json_array_size (have))
            return false;
        for (size_t i = 0; i < json_array_size (want); i++)
            if (!s_matches_as (json_array_get (want, i), json_array_get (have, i), exact))
                return false;
        return true;
    }
    if (json_is_string (want) && !exact)
        return json_is_string (have)
            && strcasecmp (json_string_value (want), json_string_value (have)) == 0;
    if (json_is_number (want))
        return json_is_number (have) && json_number_value (want) == json_number_value (have);
    return json_equal (want, have);
}

static bool
s_matches (const json_t *want, const json_t *have)
{
    return s_matches_as (want, have, false);
}

/*  properties.<name> of a resource, as a string or NULL. */
static const char *
s_prop (const json_t *resource, const char *name)
{
    return dx_step_str (json_object_get (resource, "properties"), name);
}

/*  The resource at path, or NULL: with *missing set when ARM says it
    does not exist, else with the outcome set. */
static json_t *
s_get (az_run_t *run, const char *path, const char *api, bool *missing)
{
    *missing = false;
    json_t *json = az_run_call (run, "GET", path, api, NULL);
    if (json)
        return json;
    if (az_run_gone (run))
        *missing = true;
    else
        az_run_failed (run, "GET", path);
    return NULL;
}

/*  1 when existing is there, provisioned, and holds everything of body. */
static bool
s_current (const json_t *existing, const json_t *body)
{
    const char *state = s_prop (existing, "provisioningState");
    return existing && (!state || strcasecmp (state, "Succeeded") == 0)
        && s_matches (body, existing);
}

/*  The resource at path as body says: the one there when it matches
    (no write), else what a PUT of body made, followed to its end. The
    resource (caller decrefs), or NULL with the outcome set. */
static json_t *
s_ensure (az_run_t *run, const char *path, const char *api, const json_t *body)
{
    bool missing;
    json_t *existing = s_get (run, path, api, &missing);
    if (!existing && !missing)
        return NULL;
    if (s_current (existing, body))
        return existing;
    json_decref (existing);
    dx_debug ("cluster %s: PUT %s", run->job.cluster, path);
    return az_run_ask (run, "PUT", path, api, body);
}

/*  ARM's timeCreated (2026-12-07T11:46:44.1234567+00:00) as UTC with
    milliseconds, like every launched_at (dx_time_iso); now when there is
    none or it cannot be read. */
static void
s_launched_at (const char *created, char *buf, size_t size)
{
    struct tm tm = { 0 };
    int used = 0;
    if (created
    &&  sscanf (created, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) == 6) {
        const char *c = created + used;
        int64_t ms = 0;
        if (*c == '.') {
            int digits = 0;
            for (c++; *c >= '0' && *c <= '9'; c++)
                if (digits++ < 3)
                    ms = ms * 10 + (*c - '0');
            for (; digits < 3; digits++)
                ms *= 10;
        }
        int sign = 0, oh = 0, om = 0;
        if (*c == 'Z' || *c == 'z')
            sign = 1;
        else
        if ((*c == '+' || *c == '-') && sscanf (c + 1, "%2d:%2d", &oh, &om) == 2)
            sign = *c == '+'? 1: -1;
        if (sign) {
            tm.tm_year -= 1900;
            tm.tm_mon -= 1;
            int64_t epoch = (int64_t) timegm (&tm) - sign * (oh * 3600 + om * 60);
            dx_time_iso (epoch * 1000 + ms, buf, size);
            return;
        }
    }
    dx_time_iso (dx_now_ms (), buf, size);
}

/*  The key of the step's host: host.access, or host.GROUP.SLOT. */
static void
s_step_key (az_run_t *run, char *key, size_t size)
{
    const char *role = dx_step_str (run->job.step, "role");
    const char *group = dx_step_str (run->job.step, "group");
    if ((role && strcmp (role, "access") == 0) || (group && strcmp (group, "access") == 0))
        snprintf (key, size, "host.access");
    else
        snprintf (key, size, "host.%s.%lld", group? group: "",
                  (long long) json_integer_value (json_object_get (run->job.step, "slot")));
}

//  ---------------------------------------------------------------------
//  image

/*  The image's version resource (caller decrefs); NULL with *missing set
    when it does not exist, else with the outcome set. "latest" is
    looked up among the sku's versions, newest first (ARM refuses
    versions/latest: it means something only in a VM's imageReference). */
static json_t *
s_image_version (az_run_t *run, const char *location, s_urn_t *urn, bool *missing)
{
    char path [512];
    snprintf (path, sizeof path, "providers/Microsoft.Compute/locations/%s/publishers/%s/"
              "artifacttypes/vmimage/offers/%s/skus/%s/versions", location, urn->publisher,
              urn->offer, urn->sku);
    *missing = false;
    if (strcasecmp (urn->version, "latest") == 0) {
        char list [600];
        snprintf (list, sizeof list, "%s?$top=1&$orderby=name%%20desc", path);
        bool gone;
        json_t *versions = s_get (run, list, AZ_API_COMPUTE, &gone);
        if (!versions) {
            *missing = gone;
            return NULL;
        }
        const char *newest = dx_step_str (json_array_get (versions, 0), "name");
        if (!newest || strlen (newest) >= sizeof urn->version) {
            json_decref (versions);
            *missing = true;
            return NULL;
        }
        snprintf (urn->version, sizeof urn->version, "%s", newest);
        json_decref (versions);
    }
    size_t len = strlen (path);
    snprintf (path + len, sizeof path - len, "/%s", urn->version);
    return s_get (run, path, AZ_API_COMPUTE, missing);
}

int
az_step_image (az_run_t *run)
{
    const char *wanted = dx_step_str (run->job.config, "image");
    if (!wanted || !*wanted)
        wanted = S_DEFAULT_IMAGE;
    char location [64];
    if (s_location (run, location, sizeof location))
        return -1;
    s_urn_t urn;
    if (s_urn_parse (wanted, &urn))
        return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidImage", "the image '%s' is "
                                "not a URN publisher:offer:sku:version (version may be latest)",
                                wanted);
    bool missing;
    json_t *image = s_image_version (run, location, &urn, &missing);
    if (!image)
        return missing
             ? dx_step_outcome (run->out, DX_STEP_FAILED, 1, "PlatformImageNotFound", "the image "
                                "'%s' does not exist in location %s", wanted, location)
             : -1;
    char id [400];
    snprintf (id, sizeof id, "%s:%s:%s:%s", urn.publisher, urn.offer, urn.sku, urn.version);
    json_t *res = dx_step_resource (run->out, "image", "image", id);
    const char *generation = s_prop (image, "hyperVGeneration");
    if (generation)
        dx_step_attr (res, "hyperVGeneration", generation);
    dx_step_attr (res, "urn", wanted);
    json_decref (image);
    return 0;
}

//  ---------------------------------------------------------------------
//  host

/*  What a host step makes, by name. */
typedef struct {
    const char *role, *group, *host, *size;
    bool access, public;
    char location [64];
    char key [96];              /* host.GROUP.SLOT, host.access */
    char ip_name [128];         /* its public IP's, or "" */
} s_host_t;

/*  Reads the host step; 0, or -1 with the outcome set. */
static int
s_host_read (az_run_t *run, s_host_t *h, bool for_remove)
{
    memset (h, 0, sizeof *h);
    const json_t *step = run->job.step;
    h->role = dx_step_str (step, "role");
    h->group = dx_step_str (step, "group");
    h->host = dx_step_str (step, "hostname");
    h->size = dx_step_str (step, "instance_type");
    h->access = (h->role && strcmp (h->role, "access") == 0)
             || (for_remove && h->group && strcmp (h->group, "access") == 0);
    h->public = json_is_true (json_object_get (step, "public"));
    s_step_key (run, h->key, sizeof h->key);
    if (for_remove) {
        if (!h->host || !*h->host || !h->group)
            return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidStep",
                                    "the remove step needs group and hostname");
    }
    else
    if (!h->role || !h->group || !h->host || !*h->host
    ||  (!h->access && strcmp (h->role, "master") != 0 && strcmp (h->role, "agent") != 0))
        return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidStep", "the host step needs "
                                "role (access, master, agent), group and hostname");
    else
    if (!h->size || !*h->size)
        return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "MissingParameter",
                                "the host step has no instance_type");
    if (h->access)
        snprintf (h->ip_name, sizeof h->ip_name, "%s-access-ip", run->job.cluster);
    else
    if (h->public || for_remove)
        snprintf (h->ip_name, sizeof h->ip_name, "%s-ip", h->host);
    return for_remove? 0: s_location (run, h->location, sizeof h->location);
}

/*  The size named name in a vmSizes list, or NULL. Borrowed. */
static const json_t *
s_size (const json_t *sizes, const char *name)
{
    size_t i;
    json_t *size;
    json_array_foreach (sizes, i, size) {
        const char *its = dx_step_str (size, "name");
        if (its && strcasecmp (its, name) == 0)
            return size;
    }
    return NULL;
}

/*  The size must be offered in the location and take the host's data
    disks. 0, or -1 with the outcome set (failed for good: no retry
    brings the size there). */
static int
s_check_size (az_run_t *run, s_host_t *h, size_t disks)
{
    char path [256], key [512];
    snprintf (path, sizeof path, "providers/Microsoft.Compute/locations/%s/vmSizes",
              h->location);
    const az_cred_t *cred = az_arm_cred (run->arm);
    snprintf (key, sizeof key, "%s|%s|%s", az_cred_arm (cred), az_cred_subscription (cred),
              h->location);
    json_t *sizes = az_sizes_get (run->config->sizes, key);
    const json_t *found = sizes? s_size (sizes, h->size): NULL;
    if (!found) {
        //  Not kept, or not in what was kept: ARM's own list decides
        json_decref (sizes);
        sizes = az_arm_list (run->arm, path, AZ_API_COMPUTE, &run->err);
        if (!sizes)
            return az_run_failed (run, "GET", path);
        az_sizes_put (run->config->sizes, key, sizes);
        found = s_size (sizes, h->size);
    }
    int rc = 0;
    json_int_t most = json_integer_value (json_object_get (found, "maxDataDiskCount"));
    if (!found)
        rc = dx_step_outcome (run->out, DX_STEP_FAILED, 1, "SkuNotAvailable", "the size %s is not "
                              "offered in location %s (host %s)", h->size, h->location, h->host);
    else
    if ((json_int_t) disks > most)
        rc = dx_step_outcome (run->out, DX_STEP_FAILED, 1, "OperationNotAllowed", "the size %s "
                              "takes at most %lld data disks; host %s asks for %zu (location %s)",
                              h->size, (long long) most, h->host, disks, h->location);
    json_decref (sizes);
    return rc;
}

/*  A top-level resource's body: location and ownership tags, plus more. */
static json_t *
s_body (az_run_t *run, s_host_t *h)
{
    return json_pack ("{s:s, s:o}", "location", h->location, "tags",
                      az_run_tags (run, h->role, h->group, h->host));
}

/*  The host's public IP: static, Standard. The resource, or NULL with the
    outcome set. */
static json_t *
s_public_ip (az_run_t *run, s_host_t *h)
{
    json_t *body = s_body (run, h);
    json_object_set_new (body, "sku", json_pack ("{s:s, s:s}", "name", "Standard",
                                                 "tier", "Regional"));
    json_object_set_new (body, "properties", json_pack ("{s:s, s:s}",
                         "publicIPAllocationMethod", "Static",
                         "publicIPAddressVersion", "IPv4"));
    char path [512];
    json_t *ip = s_ensure (run, az_run_path (run, path, sizeof path,
                           "Microsoft.Network/publicIPAddresses", h->ip_name),
                           AZ_API_NETWORK, body);
    json_decref (body);
    return ip;
}

/*  The host's NIC in its subnet with its role's NSG: fixed address for
    the access node and masters, one ARM picks for agents. The resource,
    or NULL with the outcome set. */
static json_t *
s_nic (az_run_t *run, s_host_t *h, const json_t *ip)
{
    const json_t *ctx = run->job.context;
    const char *subnet = dx_step_need (run->out, ctx, strcmp (h->role, "agent") == 0
                                                      ? "subnet.agents": "subnet");
    const char *nsg = dx_step_need (run->out, ctx, h->access? "nsg.access"
                                                   : h->public? "nsg.public": "nsg.cluster");
    if (!subnet || !nsg)
        return NULL;
    const char *private_ip = dx_step_str (run->job.step, "private_ip");
    json_t *config = json_pack ("{s:s, s:{s:{s:s}, s:b}}", "name", "ipconfig1", "properties",
                                "subnet", "id", subnet, "primary", 1);
    json_t *props = json_object_get (config, "properties");
    if (private_ip && *private_ip) {
        json_object_set_new (props, "privateIPAllocationMethod", json_string ("Static"));
        json_object_set_new (props, "privateIPAddress", json_string (private_ip));
    }
    else
        json_object_set_new (props, "privateIPAllocationMethod", json_string ("Dynamic"));
    if (ip)
        json_object_set_new (props, "publicIPAddress",
                             json_pack ("{s:s}", "id", dx_step_str (ip, "id")));
    json_t *body = s_body (run, h);
    json_object_set_new (body, "properties", json_pack ("{s:[o], s:{s:s}}",
                         "ipConfigurations", config, "networkSecurityGroup", "id", nsg));
    char name [160], path [512];
    snprintf (name, sizeof name, "%s-nic", h->host);
    json_t *nic = s_ensure (run, az_run_path (run, path, sizeof path,
                            "Microsoft.Network/networkInterfaces", name), AZ_API_NETWORK, body);
    json_decref (body);
    return nic;
}

/*  Disks in device order (xvdf, xvdg, ...): their LUNs. */
static int
s_by_device (const void *a, const void *b)
{
    const char *x = dx_step_str (*(json_t *const *) a, "device");
    const char *y = dx_step_str (*(json_t *const *) b, "device");
    return strcmp (x? x: "", y? y: "");
}

/*  The host's managed data disks, one per entry of the step's disks,
    made as disks of their own so that they carry the ownership tags
    (disks a VM makes inline have none), in device order; their
    dataDisks entries (LUN 0, 1, ... by device) are appended to data.
    0, or -1 with the outcome set. */
static int
s_data_disks (az_run_t *run, s_host_t *h, json_t *data)
{
    const json_t *disks = json_object_get (run->job.step, "disks");
    size_t count = json_array_size (disks);
    if (count == 0)
        return 0;
    json_t **order = calloc (count, sizeof *order);
    if (!order)
        return dx_step_outcome (run->out, DX_STEP_RETRY, 0, "OutOfMemory", "out of memory");
    for (size_t i = 0; i < count; i++)
        order [i] = json_array_get (disks, i);
    qsort (order, count, sizeof *order, s_by_device);
    int rc = 0;
    for (size_t lun = 0; lun < count && rc == 0; lun++) {
        const char *device = dx_step_str (order [lun], "device");
        const char *type = dx_step_str (order [lun], "type");
        json_int_t gb = json_integer_value (json_object_get (order [lun], "size"));
        if (!device || !*device || gb < 1) {
            rc = dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidStep", "host %s: disk %zu "
                                  "needs a device and a size", h->host, lun + 1);
            break;
        }
        char name [160], path [512];
        snprintf (name, sizeof name, "%s-%s", h->host, device);
        json_t *body = s_body (run, h);
        json_object_set_new (body, "sku", json_pack ("{s:s}", "name",
                                                     type && *type? type: "Standard_LRS"));
        json_object_set_new (body, "properties", json_pack ("{s:{s:s}, s:I}", "creationData",
                                                            "createOption", "Empty",
                                                            "diskSizeGB", gb));
        json_t *disk = s_ensure (run, az_run_path (run, path, sizeof path,
                                 "Microsoft.Compute/disks", name), S_API_DISKS, body);
        json_decref (body);
        if (!disk) {
            rc = -1;
            break;
        }
        json_array_append_new (data, json_pack ("{s:I, s:s, s:s, s:{s:s}}", "lun",
                                                (json_int_t) lun, "name", name,
                                                "createOption", "Attach", "managedDisk",
                                                "id", dx_step_str (disk, "id")));
        json_decref (disk);
    }
    free (order);
    return rc;
}

/*  The VM's body, without the data disks' entries (in data). NULL with
    the outcome set. */
static json_t *
s_vm_body (az_run_t *run, s_host_t *h, const json_t *nic, json_t *data)
{
    const char *image = dx_step_need (run->out, run->job.context, "image");
    if (!image)
        return NULL;
    s_urn_t urn;
    if (s_urn_parse (image, &urn))
        return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidImage", "the image '%s' of "
                                "the image step is not a URN publisher:offer:sku:version",
                                image), NULL;
    const char *user = dx_step_str (run->job.config, "ssh_user");
    const char *password = dx_step_str (run->job.credentials, "ssh_password");
    if (!user || !*user || !password || !*password)
        return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "MissingParameter", "host %s needs "
                                "the config's ssh_user and ssh_password", h->host), NULL;
    char err [256];
    char *custom = dx_provision_user_data (run->job.cluster, run->job.step,
                                           run->job.credentials, err, sizeof err);
    if (!custom)
        return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidUserData", "%s", err), NULL;

    char os_disk [160];
    snprintf (os_disk, sizeof os_disk, "%s-osdisk", h->host);
    json_t *os = json_pack ("{s:s, s:s, s:s, s:s, s:{s:s}}", "name", os_disk,
                            "createOption", "FromImage", "deleteOption", "Delete",
                            "caching", "ReadWrite", "managedDisk",
                            "storageAccountType", S_OS_DISK_TYPE);
    json_int_t gb = json_integer_value (json_object_get (run->job.step, "disk_size"));
    if (gb >= S_IMAGE_OS_DISK_GB)
        json_object_set_new (os, "diskSizeGB", json_integer (gb));
    json_t *body = s_body (run, h);
    json_object_set_new (body, "properties", json_pack (
        "{s:{s:s},"
        " s:{s:{s:s, s:s, s:s, s:s}, s:o, s:O},"
        " s:{s:s, s:s, s:s, s:s, s:{s:b}},"
        " s:{s:[{s:s, s:{s:b}}]}}",
        "hardwareProfile", "vmSize", h->size,
        "storageProfile", "imageReference", "publisher", urn.publisher, "offer", urn.offer,
                          "sku", urn.sku, "version", urn.version,
                          "osDisk", os, "dataDisks", data,
        "osProfile", "computerName", h->host, "adminUsername", user,
                     "adminPassword", password, "customData", custom,
                     "linuxConfiguration", "disablePasswordAuthentication", 0,
        "networkProfile", "networkInterfaces", "id", dx_step_str (nic, "id"),
                          "properties", "primary", 1));
    dx_free_wiped (custom);             /* it may hold the vpn server key */
    if (!json_object_get (body, "properties")) {
        json_decref (body);
        return dx_step_outcome (run->out, DX_STEP_RETRY, 0, "OutOfMemory", "out of memory"),
               NULL;
    }
    return body;
}

/*  Wipes the admin password of a VM body (jansson frees without wiping
    unless the process says otherwise). */
static void
s_wipe_password (json_t *body)
{
    json_t *os = json_object_get (json_object_get (body, "properties"), "osProfile");
    json_t *password = json_object_get (os, "adminPassword");
    if (json_is_string (password))
        sodium_memzero ((char *) json_string_value (password), json_string_length (password));
    json_object_del (os, "adminPassword");
}

/*  The VM: the one there when it matches, else a PUT. Once made, its
    admin password and custom data cannot change, so an update sends
    neither. The VM (caller decrefs), or NULL with the outcome set;
    *made when there was none before. */
static json_t *
s_vm (az_run_t *run, s_host_t *h, json_t *body, bool *made)
{
    char path [512];
    az_run_path (run, path, sizeof path, "Microsoft.Compute/virtualMachines", h->host);
    bool missing;
    json_t *existing = s_get (run, path, AZ_API_COMPUTE, &missing);
    *made = missing;
    if (!existing && !missing)
        return NULL;
    if (s_current (existing, body))
        return existing;
    if (existing) {
        s_wipe_password (body);
        json_object_del (json_object_get (json_object_get (body, "properties"), "osProfile"),
                         "customData");
    }
    json_decref (existing);
    dx_debug ("cluster %s: PUT %s", run->job.cluster, path);
    return az_run_ask (run, "PUT", path, AZ_API_COMPUTE, body);
}

/*  Tags the OS disk the VM made, which ARM makes without tags: a PATCH
    of its tags (those it has, with ours) unless it has ours already. A
    disk its VM made just now has none: no need to look (fresh). 0, or -1
    with the outcome set. */
static int
s_os_disk_tags (az_run_t *run, s_host_t *h, bool fresh)
{
    char name [128], path [512];
    snprintf (name, sizeof name, "%s-osdisk", h->host);
    az_run_path (run, path, sizeof path, "Microsoft.Compute/disks", name);
    bool missing = false;
    json_t *disk = fresh? json_object (): s_get (run, path, S_API_DISKS, &missing);
    if (!disk)
        return missing? 0: -1;          /* none: a VM made from another disk */
    json_t *want = json_pack ("{s:o}", "tags", az_run_tags (run, h->role, h->group, h->host));
    int rc = 0;
    if (!s_matches (want, disk)) {
        json_t *have = json_object_get (disk, "tags");
        if (json_is_object (have))
            json_object_update_missing (json_object_get (want, "tags"), have);
        dx_debug ("cluster %s: PATCH %s", run->job.cluster, path);
        json_t *done = az_run_ask (run, "PATCH", path, S_API_DISKS, want);
        rc = done? 0: -1;
        json_decref (done);
    }
    json_decref (want);
    json_decref (disk);
    return rc;
}

/*  Reports the VM (or, when vm is NULL, the one at the host's path, if
    any: what a failed operation left) under the host's key. */
static void
s_report_vm (az_run_t *run, s_host_t *h, const json_t *vm, const json_t *nic, const json_t *ip)
{
    json_t *found = NULL;
    if (!vm) {
        char path [512];
        az_error_t saved = run->err;
        found = az_run_call (run, "GET", az_run_path (run, path, sizeof path,
                             "Microsoft.Compute/virtualMachines", h->host), AZ_API_COMPUTE, NULL);
        run->err = saved;
        if (!found)
            return;
        vm = found;
    }
    const json_t *props = json_object_get (vm, "properties");
    const char *state = dx_step_str (props, "provisioningState");
    char lower [32] = "";
    for (size_t i = 0; state && state [i] && i + 1 < sizeof lower; i++)
        lower [i] = (char) (state [i] >= 'A' && state [i] <= 'Z'? state [i] - 'A' + 'a': state [i]);
    char launched [40];
    s_launched_at (dx_step_str (props, "timeCreated"), launched, sizeof launched);
    const json_t *config = json_array_get (json_object_get (json_object_get (nic, "properties"),
                                                            "ipConfigurations"), 0);
    json_t *res = dx_step_resource (run->out, h->key, "virtual_machine", dx_step_str (vm, "id"));
    dx_step_attr (res, "private_ip", s_prop (config, "privateIPAddress"));
    dx_step_attr (res, "public_ip", ip? s_prop (ip, "ipAddress"): "");
    dx_step_attr (res, "state", strcmp (lower, "succeeded") == 0? "running": lower);
    dx_step_attr (res, "hostname", h->host);
    dx_step_attr (res, "group", h->group);
    dx_step_attr (res, "role", h->role);
    json_object_set_new (res, "slot", json_integer (json_integer_value (
                                          json_object_get (run->job.step, "slot"))));
    dx_step_attr (res, "launched_at", launched);
    dx_step_attr (res, "instance_type", dx_step_str (json_object_get (props, "hardwareProfile"),
                                                     "vmSize"));
    json_decref (found);
}

int
az_step_host (az_run_t *run)
{
    s_host_t h;
    if (s_host_read (run, &h, false))
        return -1;
    if (s_check_size (run, &h, json_array_size (json_object_get (run->job.step, "disks"))))
        return -1;

    json_t *ip = NULL, *nic = NULL, *vm = NULL, *body = NULL;
    json_t *data = json_array ();
    int rc = -1;
    if (*h.ip_name) {
        if (!(ip = s_public_ip (run, &h)))
            goto done;
        if (h.access)
            dx_step_attr (dx_step_resource (run->out, "eip.access", "public_ip",
                                            dx_step_str (ip, "id")),
                          "public_ip", s_prop (ip, "ipAddress"));
    }
    if (!(nic = s_nic (run, &h, ip)) || !data || s_data_disks (run, &h, data)
    ||  !(body = s_vm_body (run, &h, nic, data)))
        goto done;
    bool made;
    vm = s_vm (run, &h, body, &made);
    rc = vm? s_os_disk_tags (run, &h, made): -1;
done:
    if (nic)
        s_report_vm (run, &h, vm, nic, ip);
    if (body)
        s_wipe_password (body);
    json_decref (body);
    json_decref (data);
    json_decref (vm);
    json_decref (nic);
    json_decref (ip);
    return rc;
}

//  ---------------------------------------------------------------------
//  remove

/*  Deletes type/name in the cluster's group (gone already counts). */
static int
s_delete (az_run_t *run, const char *type, const char *name, const char *api)
{
    char path [512];
    return az_run_delete (run, az_run_path (run, path, sizeof path, type, name), api);
}

/*  Deletes the host's data disks: the disks of the group tagged with its
    host name. 0, or -1 with the outcome set. */
static int
s_delete_data_disks (az_run_t *run, s_host_t *h)
{
    char path [512];
    az_run_path (run, path, sizeof path, "Microsoft.Compute/disks", NULL);
    json_t *disks = az_arm_list (run->arm, path, S_API_DISKS, &run->err);
    if (!disks)
        return az_run_gone (run)? 0: az_run_failed (run, "GET", path);
    int rc = 0;
    size_t i;
    json_t *disk;
    json_array_foreach (disks, i, disk) {
        const char *host = dx_step_str (json_object_get (disk, "tags"), "dexter:host");
        const char *name = dx_step_str (disk, "name");
        if (rc == 0 && host && name && strcmp (host, h->host) == 0)
            rc = s_delete (run, "Microsoft.Compute/disks", name, S_API_DISKS);
    }
    json_decref (disks);
    return rc;
}

int
az_step_remove (az_run_t *run)
{
    s_host_t h;
    if (s_host_read (run, &h, true))
        return -1;
    char path [512], id [512] = "", name [160];
    az_run_path (run, path, sizeof path, "Microsoft.Compute/virtualMachines", h.host);
    json_t *vm = az_run_call (run, "GET", path, AZ_API_COMPUTE, NULL);
    if (!vm && !az_run_gone (run))
        return az_run_failed (run, "GET", path);
    snprintf (id, sizeof id, "%s", vm? dx_step_str (vm, "id"): "");
    json_decref (vm);

    //  The VM first: what it uses cannot be deleted before it is gone
    int rc = az_run_delete (run, path, AZ_API_COMPUTE);
    snprintf (name, sizeof name, "%s-nic", h.host);
    if (rc == 0)
        rc = s_delete (run, "Microsoft.Network/networkInterfaces", name, AZ_API_NETWORK);
    if (rc == 0 && !h.access)   /* the access IP is the deployment's: it stays */
        rc = s_delete (run, "Microsoft.Network/publicIPAddresses", h.ip_name, AZ_API_NETWORK);
    if (rc == 0)
        rc = s_delete_data_disks (run, &h);
    snprintf (name, sizeof name, "%s-osdisk", h.host);
    if (rc == 0)
        rc = s_delete (run, "Microsoft.Compute/disks", name, S_API_DISKS);
    json_t *res = dx_step_resource (run->out, h.key, "virtual_machine", id);
    dx_step_attr (res, "hostname", h.host);
    dx_step_attr (res, "state", rc == 0? "deleted": "deleting");
    return rc;
}
