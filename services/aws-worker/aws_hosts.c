/*  aws_hosts: the steps that make and remove a cluster's hosts: image (the
    AMI to boot), keypair, host (one instance, and the access node's
    Elastic IP), remove, and on destroy destroy.instances and
    destroy.addresses; the batch steps (aws_batch.c) share its launch
    parameters and its reading of an instance's slot. docs/aws.md says
    what each step calls. */
#include "aws_run.h"
#include "dx_log.h"
#include "dx_provision.h"
#include "dx_sshkey.h"
#include "dx_util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CANONICAL     "099720109477"
#define S_UBUNTU_IMAGES "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"

//  ---------------------------------------------------------------------
//  image

int
aws_step_image (aws_run_t *run)
{
    const char *wanted = dx_step_str (json_object_get (run->job.step, "config"), "image");
    bool by_id = wanted && *wanted;
    aws_params_t *p = aws_params_new ();
    if (by_id)
        aws_params_add (p, "ImageId.1", wanted);
    else {
        aws_params_add (p, "Owner.1", S_CANONICAL);
        aws_params_filter (p, "name", S_UBUNTU_IMAGES, NULL);
        aws_params_filter (p, "architecture", "x86_64", NULL);
        aws_params_filter (p, "state", "available", NULL);
    }
    xmlDocPtr doc = aws_run_ask (run, "DescribeImages", &p, NULL);
    if (!doc)
        return -1;
    //  The newest: ISO 8601 dates compare as text
    xmlNodePtr best = NULL;
    const char *best_date = "";
    for (xmlNodePtr i = aws_xml_child (xmlDocGetRootElement (doc), "imagesSet/item"); i;
         i = aws_xml_next (i)) {
        const char *date = aws_xml_text (i, "creationDate");
        const char *owner = aws_xml_text (i, "imageOwnerId");
        if (!owner)
            owner = aws_xml_text (i, "ownerId");
        if (!by_id && (!owner || strcmp (owner, S_CANONICAL) != 0))
            continue;                   /* trust nobody else's "ubuntu" */
        if (date && strcmp (date, best_date) > 0) {
            best = i;
            best_date = date;
        }
    }
    int rc = 0;
    if (!best)
        rc = by_id
           ? dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidAMIID.NotFound",
                              "The image id '[%s]' does not exist", wanted)
           : dx_step_outcome (run->out, DX_STEP_FAILED, 1, "ImageNotFound", "no Canonical "
                              "Ubuntu 22.04 amd64 server image in region %s", run->region);
    else {
        json_t *res = dx_step_resource (run->out, "image", "image",
                                        aws_xml_text (best, "imageId"));
        dx_step_attr (res, "name", aws_xml_text (best, "name"));
        dx_step_attr (res, "created", best_date);
        dx_step_attr (res, "root_device_name", aws_xml_text (best, "rootDeviceName"));
    }
    xmlFreeDoc (doc);
    return rc;
}

//  ---------------------------------------------------------------------
//  keypair

/*  1 when the key pair called name exists (and is reported), 0 when it
    does not, -1 with the outcome set. */
static int
s_key_found (aws_run_t *run, const char *name)
{
    aws_params_t *p = aws_params_new ();
    aws_params_filter (p, "key-name", name, NULL);
    xmlDocPtr doc = aws_run_ask (run, "DescribeKeyPairs", &p, NULL);
    if (!doc)
        return -1;
    xmlNodePtr key = aws_xml_child (xmlDocGetRootElement (doc), "keySet/item");
    if (key) {
        json_t *res = dx_step_resource (run->out, "keypair", "key_pair", name);
        dx_step_attr (res, "fingerprint", aws_xml_text (key, "keyFingerprint"));
        const char *by = aws_xml_tag (key, "dexter:imported-by");
        if (by)
            dx_step_attr (res, "imported_by", by);
    }
    xmlFreeDoc (doc);
    return key? 1: 0;
}

int
aws_step_keypair (aws_run_t *run)
{
    const char *name = dx_step_str (json_object_get (run->job.step, "config"), "sshkey");
    if (!name || !*name)
        return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "MissingParameter",
                                "the config has no sshkey (the key pair's name)");
    int found = s_key_found (run, name);
    if (found != 0)
        return found > 0? 0: -1;
    const char *pem = dx_step_str (run->job.credentials, "sshkeydata");
    if (!pem || !*pem)
        return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidKeyPair.NotFound",
                                "The key pair '%s' does not exist, and there is no "
                                "sshkeydata to import it from", name);
    char err [256];
    char *line = dx_sshkey_public (pem, err, sizeof err);
    if (!line)
        return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidKey.Format", "%s", err);
    char *material = dx_base64_encode ((const unsigned char *) line, strlen (line));
    free (line);
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "KeyName", name);
    aws_params_add (p, "PublicKeyMaterial", material? material: "");
    free (material);
    //  Not owned (destroy keeps it): tagged only with who imported it
    aws_params_add (p, "TagSpecification.1.ResourceType", "key-pair");
    aws_params_tag (p, "TagSpecification.1", "dexter:imported-by", run->job.cluster);
    if (aws_run_act (run, "ImportKeyPair", &p, NULL, "InvalidKeyPair.Duplicate", NULL))
        return -1;
    found = s_key_found (run, name);
    if (found == 0)
        return dx_step_outcome (run->out, DX_STEP_RETRY, 0, "InvalidKeyPair.NotFound",
                                "the key pair '%s' was imported but is not visible yet", name);
    return found > 0? 0: -1;
}

//  ---------------------------------------------------------------------
//  Instances

const char *const aws_live_states [] = {
    "pending", "running", "stopping", "stopped", NULL
};


/*  Instance ids per call: a filter takes at most 200 values
    (FilterLimitExceeded beyond), and a destroy of a big cluster has more
    instances than that. */
#define S_IDS_PER_CALL 100
#define S_PAGE "100"                    /* DescribeInstances' MaxResults, the same */

/*  The key of the step's host: host.access, or host.GROUP.SLOT. */
static void
s_step_key (aws_run_t *run, char *key, size_t size)
{
    const char *role = dx_step_str (run->job.step, "role");
    if (role && strcmp (role, "access") == 0)
        snprintf (key, size, "host.access");
    else
        snprintf (key, size, "host.%s.%lld", dx_step_str (run->job.step, "group"),
                  (long long) json_integer_value (json_object_get (run->job.step, "slot")));
}

/*  A decimal number of at most 9 digits, or -1. */
static long long
s_number (const char *text)
{
    if (!text || !*text || strlen (text) > 9 || strspn (text, "0123456789") != strlen (text))
        return -1;
    return strtoll (text, NULL, 10);
}

long long
aws_instance_slot (xmlNodePtr instance)
{
    const char *host = aws_xml_tag (instance, "dexter:host");
    if (host) {
        const char *dash = strrchr (host, '-');
        return dash? s_number (dash + 1): -1;
    }
    long long batch = s_number (aws_xml_tag (instance, "dexter:batch"));
    long long index = s_number (aws_xml_text (instance, "amiLaunchIndex"));
    return batch >= 0 && index >= 0? batch + index: -1;
}

/*  The key of an instance's resource from its tags: host.access, or
    host.GROUP.SLOT (aws_instance_slot). */
static void
s_instance_key (xmlNodePtr instance, char *key, size_t size)
{
    const char *role = aws_xml_tag (instance, "dexter:role");
    const char *group = aws_xml_tag (instance, "dexter:group");
    long long slot = aws_instance_slot (instance);
    if (role && strcmp (role, "access") == 0)
        snprintf (key, size, "host.access");
    else
    if (group && slot >= 0)
        snprintf (key, size, "host.%s.%lld", group, slot);
    else
        snprintf (key, size, "host.%s", aws_xml_text (instance, "instanceId"));
}

/*  Adds the filter of the states looked for: live, and shutting-down when
    with_shutting_down. */
static void
s_state_filter (aws_params_t *p, bool with_shutting_down)
{
    int n = aws_params_next (p, "Filter"), m = 0;
    aws_params_addf (p, "instance-state-name", "Filter.%d.Name", n);
    for (const char *const *s = aws_live_states; *s; s++)
        aws_params_addf (p, *s, "Filter.%d.Value.%d", n, ++m);
    if (with_shutting_down)
        aws_params_addf (p, "shutting-down", "Filter.%d.Value.%d", n, ++m);
}

/*  Instances of the cluster (host NULL: all of them) in a live state, or
    in any state but terminated when with_shutting_down. An agent found by
    no dexter:host tag is looked for among its group's batch instances, by
    its slot (aws_instance_slot): the answer then keeps only it. The
    answer, or NULL with the outcome set. */
static xmlDocPtr
s_find_instances (aws_run_t *run, const char *host, bool with_shutting_down)
{
    aws_params_t *p = aws_params_new ();
    aws_run_owned (run, p, NULL);
    if (host)
        aws_params_filter (p, "tag:dexter:host", host, NULL);
    s_state_filter (p, with_shutting_down);
    xmlDocPtr doc = aws_run_ask (run, "DescribeInstances", &p, NULL);
    const char *role = dx_step_str (run->job.step, "role");
    const char *group = dx_step_str (run->job.step, "group");
    if (!doc || !host || !group || (role && strcmp (role, "agent") != 0)
    ||  !json_is_integer (json_object_get (run->job.step, "slot"))
    ||  aws_xml_child (xmlDocGetRootElement (doc), "reservationSet/item"))
        return doc;
    xmlFreeDoc (doc);
    p = aws_params_new ();
    aws_run_owned (run, p, NULL);
    aws_params_filter (p, "tag:dexter:group", group, NULL);
    aws_params_filter (p, "tag-key", "dexter:batch", NULL);
    s_state_filter (p, with_shutting_down);
    if (!(doc = aws_run_ask (run, "DescribeInstances", &p, NULL)))
        return NULL;
    //  The slot's instances only; a reservation left empty goes too
    long long slot = json_integer_value (json_object_get (run->job.step, "slot"));
    xmlNodePtr r = aws_xml_child (xmlDocGetRootElement (doc), "reservationSet/item");
    while (r) {
        xmlNodePtr next_r = aws_xml_next (r);
        xmlNodePtr inst = aws_xml_child (r, "instancesSet/item");
        while (inst) {
            xmlNodePtr next = aws_xml_next (inst);
            if (aws_xml_tag (inst, "dexter:host") || aws_instance_slot (inst) != slot) {
                xmlUnlinkNode (inst);
                xmlFreeNode (inst);
            }
            inst = next;
        }
        if (!aws_xml_child (r, "instancesSet/item")) {
            xmlUnlinkNode (r);
            xmlFreeNode (r);
        }
        r = next_r;
    }
    return doc;
}

#define S_INSTANCES "reservationSet/item/instancesSet/item"

/*  Counts an instance that is not terminated. */
static void
s_count_one (xmlNodePtr instance, void *arg)
{
    const char *state = aws_xml_text (instance, "instanceState/name");
    if (state && strcmp (state, "terminated") != 0)
        (*(long *) arg)++;
}

/*  Instances of ids[0..count) not terminated yet, asked S_IDS_PER_CALL at a
    time, the answers streamed; -1 with the outcome set when a call fails. */
static long
s_count_alive (aws_run_t *run, const char *const *ids, size_t count)
{
    long alive = 0;
    for (size_t from = 0; from < count; from += S_IDS_PER_CALL) {
        aws_params_t *p = aws_params_new ();
        int n = aws_params_next (p, "Filter");
        aws_params_addf (p, "instance-id", "Filter.%d.Name", n);
        for (size_t i = from; i < count && i < from + S_IDS_PER_CALL; i++)
            aws_params_addf (p, ids [i], "Filter.%d.Value.%zu", n, i - from + 1);
        int rc = aws_run_stream (run, "DescribeInstances", p, NULL, S_INSTANCES, s_count_one,
                                 &alive, NULL, 0);
        aws_params_destroy (&p);
        if (rc)
            return aws_run_failed (run, "DescribeInstances");
    }
    return alive;
}

/*  Waits until every instance of ids is terminated (or gone). 0, or -1
    with the outcome set. */
static int
s_wait_terminated (aws_run_t *run, const char *const *ids, size_t count)
{
    if (count == 0)
        return 0;
    int64_t deadline = dx_mono_ms () + run->config->wait_ms;
    while (1) {
        long alive = s_count_alive (run, ids, count);
        if (alive <= 0)
            return alive < 0? -1: 0;
        if (dx_step_cancelled (run->out))
            return dx_step_outcome (run->out, DX_STEP_RETRY, 0, "CANCELLED", "the job was "
                                    "cancelled while waiting for %ld instance(s) to "
                                    "terminate", alive);
        if (dx_mono_ms () >= deadline)
            return dx_step_outcome (run->out, DX_STEP_RETRY, 0, "WaitTimeout", "%ld instance(s) "
                                    "still not terminated after %lld ms", alive,
                                    (long long) run->config->wait_ms);
        dx_sleep_ms (run->config->poll_ms);
    }
}

/*  Terminates ids, S_IDS_PER_CALL at a time, and waits until they are
    terminated. */
static int
s_terminate (aws_run_t *run, const char *const *ids, size_t count)
{
    for (size_t from = 0; from < count; from += S_IDS_PER_CALL) {
        size_t n = count - from < S_IDS_PER_CALL? count - from: S_IDS_PER_CALL;
        aws_params_t *p = aws_params_new ();
        aws_params_list (p, "InstanceId", ids + from, n);
        if (aws_run_act (run, "TerminateInstances", &p, NULL, "InvalidInstanceID.NotFound",
                         NULL))
            return -1;
    }
    return s_wait_terminated (run, ids, count);
}

/*  What a termination keeps of each instance it found: its id, the key of
    its resource and its host name. The answers are freed as soon as they
    are read, so what a destroy holds is these and one page, whatever the
    size of the cluster. */
typedef struct {
    char id [32];
    char key [128];
    char hostname [128];
} s_found_t;

typedef struct {
    s_found_t *items;
    size_t count, cap;
} s_found_list_t;

/*  Adds instance to list, under fixed_key or, when fixed_key is NULL,
    its key from its tags. 0, or -1 when out of memory. */
static int
s_found_one (s_found_list_t *list, xmlNodePtr instance, const char *fixed_key)
{
    const char *id = aws_xml_text (instance, "instanceId");
    if (!id || !*id)
        return 0;
    if (list->count == list->cap) {
        size_t cap = list->cap? 2 * list->cap: 16;
        s_found_t *more = realloc (list->items, cap * sizeof *more);
        if (!more)
            return -1;
        list->items = more;
        list->cap = cap;
    }
    s_found_t *found = &list->items [list->count++];
    snprintf (found->id, sizeof found->id, "%s", id);
    if (fixed_key)
        snprintf (found->key, sizeof found->key, "%s", fixed_key);
    else
        s_instance_key (instance, found->key, sizeof found->key);
    const char *host = aws_xml_tag (instance, "dexter:host");
    snprintf (found->hostname, sizeof found->hostname, "%s", host? host: "");
    return 0;
}

/*  Adds the instances of doc to list (s_found_one). 0, or -1 when out of
    memory. */
static int
s_found_add (s_found_list_t *list, xmlDocPtr doc, const char *fixed_key)
{
    AWS_FOREACH_INSTANCE (doc, inst)
        if (s_found_one (list, inst, fixed_key))
            return -1;
    return 0;
}

/*  Terminates the instances of list and waits until they are terminated;
    reports each under its key with `state` (or shutting-down when the
    wait did not end well). */
static int
s_terminate_all (aws_run_t *run, const s_found_list_t *list, const char *state)
{
    const char **ids = calloc (list->count + 1, sizeof *ids);
    for (size_t i = 0; ids && i < list->count; i++)
        ids [i] = list->items [i].id;
    int rc = ids? s_terminate (run, ids, list->count)
                : dx_step_outcome (run->out, DX_STEP_RETRY, 0, "OutOfMemory", "out of memory");
    for (size_t i = 0; i < list->count; i++) {
        const s_found_t *found = &list->items [i];
        json_t *res = dx_step_resource (run->out, found->key, "instance", found->id);
        dx_step_attr (res, "hostname", found->hostname);
        dx_step_attr (res, "state", rc == 0? state: "shutting-down");
    }
    free (ids);
    return rc;
}

//  ---------------------------------------------------------------------
//  host

/*  The root device of image (DescribeImages rootDeviceName, else
    /dev/sda1) into buf; 0, or -1 with the outcome set. */
static int
s_root_device (aws_run_t *run, const char *image, char *buf, size_t size)
{
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "ImageId.1", image);
    xmlDocPtr doc = aws_run_ask (run, "DescribeImages", &p, NULL);
    if (!doc)
        return -1;
    int none = aws_doc_text (doc, "imagesSet/item", "imageId", buf, size);
    if (aws_doc_text (doc, "imagesSet/item", "rootDeviceName", buf, size))
        snprintf (buf, size, "/dev/sda1");
    xmlFreeDoc (doc);
    if (none)
        return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidAMIID.NotFound",
                                "The image id '[%s]' does not exist", image);
    return 0;
}

/*  Adds the root volume, then one EBS volume per disk of the step; all go
    with the instance. */
static void
s_block_devices (aws_run_t *run, aws_params_t *p, const char *root)
{
    json_int_t disk_size = json_integer_value (json_object_get (run->job.step, "disk_size"));
    char size [32];
    snprintf (size, sizeof size, "%lld", (long long) (disk_size > 0? disk_size: 8));
    aws_params_add (p, "BlockDeviceMapping.1.DeviceName", root);
    aws_params_add (p, "BlockDeviceMapping.1.Ebs.VolumeSize", size);
    aws_params_add (p, "BlockDeviceMapping.1.Ebs.VolumeType", "gp2");
    aws_params_add (p, "BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true");
    size_t i;
    json_t *disk;
    json_array_foreach (json_object_get (run->job.step, "disks"), i, disk) {
        int n = (int) i + 2;
        const char *device = dx_step_str (disk, "device"), *type = dx_step_str (disk, "type");
        json_int_t gb = json_integer_value (json_object_get (disk, "size"));
        char path [32];
        snprintf (path, sizeof path, "/dev/%s", device? device: "");
        snprintf (size, sizeof size, "%lld", (long long) gb);
        aws_params_addf (p, path, "BlockDeviceMapping.%d.DeviceName", n);
        aws_params_addf (p, size, "BlockDeviceMapping.%d.Ebs.VolumeSize", n);
        aws_params_addf (p, type? type: "gp2", "BlockDeviceMapping.%d.Ebs.VolumeType", n);
        aws_params_addf (p, "true", "BlockDeviceMapping.%d.Ebs.DeleteOnTermination", n);
        if (type && (strcmp (type, "io1") == 0 || strcmp (type, "io2") == 0)) {
            //  Provisioned IOPS are required: 3000, within 100 and 50 per GB
            json_int_t iops = gb * 50 < 3000? gb * 50: 3000;
            snprintf (size, sizeof size, "%lld", (long long) (iops < 100? 100: iops));
            aws_params_addf (p, size, "BlockDeviceMapping.%d.Ebs.Iops", n);
        }
    }
}

/*  The subnet of the step's host: agents in theirs, the access node and
    masters (fixed addresses) in the other. Its context key. */
static const char *
s_subnet_key (aws_run_t *run)
{
    const char *role = dx_step_str (run->job.step, "role");
    return role && strcmp (role, "agent") == 0? "subnet.agents": "subnet";
}

aws_params_t *
aws_host_params (aws_run_t *run, const json_t *provision)
{
    const json_t *step = run->job.step;
    const char *role = dx_step_str (step, "role"), *type = dx_step_str (step, "instance_type");
    const char *private_ip = dx_step_str (step, "private_ip");
    bool public = json_is_true (json_object_get (step, "public"));
    bool access = strcmp (role, "access") == 0;
    const char *subnet = dx_step_need (run->out, run->job.context, s_subnet_key (run));
    const char *sg_cluster = dx_step_need (run->out, run->job.context, "sg.cluster");
    const char *image = dx_step_need (run->out, run->job.context, "image");
    const char *key = dx_step_need (run->out, run->job.context, "keypair");
    const char *sg_access = access? dx_step_need (run->out, run->job.context, "sg.access"): NULL;
    const char *sg_public = public? dx_step_need (run->out, run->job.context, "sg.public"): NULL;
    if (!subnet || !sg_cluster || !image || !key || (access && !sg_access)
    ||  (public && !sg_public))
        return NULL;
    if (!type || !*type)
        return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "MissingParameter", "the host "
                                "step has no instance_type"), NULL;
    char root [64];
    if (s_root_device (run, image, root, sizeof root))
        return NULL;

    char err [256];
    char *user_data = dx_provision_user_data (run->job.cluster, provision, run->job.credentials,
                                              err, sizeof err);
    if (!user_data)
        return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidUserData", "%s", err), NULL;

    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "ImageId", image);
    aws_params_add (p, "InstanceType", type);
    aws_params_add (p, "KeyName", key);
    aws_params_add (p, "UserData", user_data? user_data: "");
    dx_free_wiped (user_data);          /* it may hold the vpn server key */
    s_block_devices (run, p, root);

    //  Network: a public agent's public address comes with its interface
    const char *groups [] = { sg_cluster, sg_access? sg_access: sg_public, sg_public };
    size_t group_count = 1 + (sg_access || sg_public) + (sg_access && sg_public);
    if (public) {
        aws_params_add (p, "NetworkInterface.1.DeviceIndex", "0");
        aws_params_add (p, "NetworkInterface.1.SubnetId", subnet);
        aws_params_add (p, "NetworkInterface.1.AssociatePublicIpAddress", "true");
        aws_params_add (p, "NetworkInterface.1.DeleteOnTermination", "true");
        aws_params_list (p, "NetworkInterface.1.SecurityGroupId", groups, group_count);
        if (private_ip && *private_ip)
            aws_params_add (p, "NetworkInterface.1.PrivateIpAddress", private_ip);
    }
    else {
        aws_params_add (p, "SubnetId", subnet);
        aws_params_list (p, "SecurityGroupId", groups, group_count);
        if (private_ip && *private_ip)
            aws_params_add (p, "PrivateIpAddress", private_ip);
    }
    return p;
}

/*  RunInstances' parameters for the host step; NULL with the outcome set. */
static aws_params_t *
s_run_params (aws_run_t *run, const char *token)
{
    const json_t *step = run->job.step;
    const char *role = dx_step_str (step, "role"), *group = dx_step_str (step, "group");
    const char *host = dx_step_str (step, "hostname");
    aws_params_t *p = aws_host_params (run, step);
    if (!p)
        return NULL;
    aws_params_add (p, "MinCount", "1");
    aws_params_add (p, "MaxCount", "1");
    aws_params_add (p, "ClientToken", token);
    aws_run_tag_spec (run, p, "instance", role, group, host, host);
    aws_run_tag_spec (run, p, "volume", role, group, host, host);
    //  The access node reads the CRL a deploy writes into its tags (aws_crl.c)
    if (strcmp (role, "access") == 0)
        aws_params_add (p, "MetadataOptions.InstanceMetadataTags", "enabled");
    return p;
}

/*  Who holds the host's fixed private address in its subnet, when
    RunInstances says InvalidIPAddress.InUse: 1 to wait (an instance of
    this cluster shutting down, say a replaced master, or none seen yet:
    AWS's lists lag), 0 when a live instance holds it, with the outcome
    set (failed and permanent: no wait frees it; the message names the
    holder), -1 when the lookup failed (outcome set). */
static int
s_address_free_soon (aws_run_t *run)
{
    const char *ip = dx_step_str (run->job.step, "private_ip");
    const char *subnet = dx_step_str (run->job.context, s_subnet_key (run));
    aws_params_t *p = aws_params_new ();
    aws_params_filter (p, "subnet-id", subnet? subnet: "", NULL);
    aws_params_filter (p, "private-ip-address", ip? ip: "", NULL);
    xmlDocPtr doc = aws_run_ask (run, "DescribeInstances", &p, NULL);
    if (!doc)
        return -1;
    char holder [64] = "", state [32] = "", owner [128] = "";
    AWS_FOREACH_INSTANCE (doc, inst) {
        const char *st = aws_xml_text (inst, "instanceState/name");
        if (!st || strcmp (st, "terminated") == 0 || strcmp (st, "shutting-down") == 0)
            continue;
        const char *text = aws_xml_text (inst, "instanceId");
        const char *cluster = aws_xml_tag (inst, "dexter:cluster");
        snprintf (holder, sizeof holder, "%s", text? text: "?");
        snprintf (state, sizeof state, "%s", st);
        snprintf (owner, sizeof owner, "%s", cluster? cluster: "");
    }
    xmlFreeDoc (doc);
    if (!*holder)
        return 1;
    return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidIPAddress.InUse",
                            "host %s needs the private address %s, which instance %s (%s%s%s) "
                            "holds; terminate that instance or free the address, then deploy "
                            "again", dx_step_str (run->job.step, "hostname"), ip? ip: "", holder,
                            state, *owner? ", of cluster ": ", not Dexter's", owner), 0;
}

/*  Runs the instance with the step's client token. A token whose instance
    is already gone (terminated by hand, say) gives the same dead
    reservation forever, so then it runs once more with a token derived
    from the dead instance's id, still the same on every retry. The new
    instance's id into id; 0, or -1 with the outcome set. */
static int
s_run_instance (aws_run_t *run, char *id, size_t size)
{
    const char *base = dx_step_str (run->job.step, "client_token");
    const char *host = dx_step_str (run->job.step, "hostname");
    if (!base || !*base || strlen (base) > 64)
        return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidStep",
                                "the host step's client_token is missing or longer than 64");
    char token [65];
    snprintf (token, sizeof token, "%s", base);
    for (int round = 0; round < 2; round++) {
        aws_params_t *p = s_run_params (run, token);
        if (!p)
            return -1;
        //  A fixed private address may still be held by an instance that
        //  is shutting down (a replaced master): wait until it is free; a
        //  live holder fails the step at once
        int64_t deadline = dx_mono_ms () + run->config->wait_ms;
        int waits = 0;
        xmlDocPtr doc;
        while (!(doc = aws_run_call (run, "RunInstances", p, aws_run_not_found))
        &&  aws_run_code_is (run, "InvalidIPAddress.InUse") && dx_mono_ms () < deadline
        &&  !dx_step_cancelled (run->out)) {
            aws_error_t in_use = run->err;
            if (s_address_free_soon (run) <= 0) {
                aws_params_destroy (&p);
                return -1;
            }
            run->err = in_use;
            dx_log (waits++? DX_LOG_DEBUG: DX_LOG_INFO, "host %s: address %s is still held "
                    "by an instance shutting down; waiting", host,
                    dx_step_str (run->job.step, "private_ip"));
            dx_sleep_ms (run->config->poll_ms);
        }
        aws_params_destroy (&p);
        if (!doc)
            return aws_run_failed (run, "RunInstances");
        char state [32] = "";
        *id = 0;
        for (xmlNodePtr inst = aws_xml_child (xmlDocGetRootElement (doc), "instancesSet/item");
             inst; inst = aws_xml_next (inst)) {
            const char *text = aws_xml_text (inst, "instanceId");
            const char *st = aws_xml_text (inst, "instanceState/name");
            snprintf (id, size, "%s", text? text: "");
            snprintf (state, sizeof state, "%s", st? st: "");
        }
        xmlFreeDoc (doc);
        if (*id && strcmp (state, "terminated") != 0 && strcmp (state, "shutting-down") != 0)
            return 0;
        //  The token's instance is gone: derive a token from it
        const char *dead = *id? id: "none";
        size_t dead_len = strlen (dead);
        snprintf (token, sizeof token, "%.55s-%s", base,
                  dead + (dead_len > 8? dead_len - 8: 0));
        dx_info ("host %s: client token's instance %s is %s; running anew", host, dead,
                 *state? state: "gone");
    }
    return dx_step_outcome (run->out, DX_STEP_RETRY, 0, "IncorrectInstanceState",
                            "the instances of this host's client tokens are gone");
}

/*  Waits until instance id runs; its DescribeInstances answer (caller
    frees), or NULL with the outcome set. */
static xmlDocPtr
s_wait_running (aws_run_t *run, const char *id)
{
    int64_t deadline = dx_mono_ms () + run->config->wait_ms;
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "InstanceId.1", id);
    xmlDocPtr result = NULL;
    while (1) {
        //  Just after RunInstances the id may not be visible yet
        xmlDocPtr doc = aws_run_call (run, "DescribeInstances", p, aws_run_not_found);
        if (!doc) {
            aws_run_failed (run, "DescribeInstances");
            break;
        }
        char state [32] = "";
        AWS_FOREACH_INSTANCE (doc, inst) {
            const char *text = aws_xml_text (inst, "instanceState/name");
            snprintf (state, sizeof state, "%s", text? text: "");
        }
        if (strcmp (state, "running") == 0) {
            result = doc;
            break;
        }
        xmlFreeDoc (doc);
        if (strcmp (state, "shutting-down") == 0 || strcmp (state, "terminated") == 0
        ||  strcmp (state, "stopped") == 0 || strcmp (state, "stopping") == 0) {
            dx_step_outcome (run->out, DX_STEP_RETRY, 0, "IncorrectInstanceState",
                             "instance %s is %s, not running", id, state);
            break;
        }
        if (dx_step_cancelled (run->out)) {
            dx_step_outcome (run->out, DX_STEP_RETRY, 0, "CANCELLED", "the job was cancelled "
                             "while instance %s was starting", id);
            break;
        }
        if (dx_mono_ms () >= deadline) {
            dx_step_outcome (run->out, DX_STEP_RETRY, 0, "WaitTimeout", "instance %s is still %s "
                             "after %lld ms", id, state, (long long) run->config->wait_ms);
            break;
        }
        dx_sleep_ms (run->config->poll_ms);
    }
    aws_params_destroy (&p);
    return result;
}

/*  The access node's Elastic IP: found by tag or allocated, then
    associated with instance. Its public IP into ip. */
static int
s_access_address (aws_run_t *run, const char *instance, char *ip, size_t size)
{
    aws_params_t *p = aws_params_new ();
    aws_run_owned (run, p, "access");
    xmlDocPtr doc = aws_run_ask (run, "DescribeAddresses", &p, NULL);
    if (!doc)
        return -1;
    char alloc [64] = "", owner [64] = "";
    aws_doc_text (doc, "addressesSet/item", "allocationId", alloc, sizeof alloc);
    aws_doc_text (doc, "addressesSet/item", "publicIp", ip, size);
    aws_doc_text (doc, "addressesSet/item", "instanceId", owner, sizeof owner);
    xmlFreeDoc (doc);
    if (!*alloc) {
        char name [128];
        snprintf (name, sizeof name, "%s-eip-access", run->job.cluster);
        p = aws_params_new ();
        aws_params_add (p, "Domain", "vpc");
        aws_run_tag_spec (run, p, "elastic-ip", "access", "access", NULL, name);
        if (!(doc = aws_run_ask (run, "AllocateAddress", &p, NULL)))
            return -1;
        aws_doc_text (doc, "allocationId", NULL, alloc, sizeof alloc);
        aws_doc_text (doc, "publicIp", NULL, ip, size);
        xmlFreeDoc (doc);
    }
    dx_step_attr (dx_step_resource (run->out, "eip.access", "address", alloc), "public_ip", ip);
    if (strcmp (owner, instance) == 0)
        return 0;
    p = aws_params_new ();
    aws_params_add (p, "AllocationId", alloc);
    aws_params_add (p, "InstanceId", instance);
    aws_params_add (p, "AllowReassociation", "true");
    static const char *const waits [] = {
        "IncorrectInstanceState", "InvalidInstanceID.NotFound",
        "InvalidAllocationID.NotFound", NULL
    };
    return aws_run_act (run, "AssociateAddress", &p, waits, NULL);
}

/*  A host has one instance. Twins (an attempt of an earlier generation
    that launched after this one looked, say) are billed for nothing: all
    but keep are terminated, without waiting (a destroy finds any that
    linger by their tags). A failure is logged, not fatal to the step. */
static void
s_terminate_twins (aws_run_t *run, xmlDocPtr doc, const char *host, const char *keep)
{
    const char *twins [16];
    size_t count = 0;
    AWS_FOREACH_INSTANCE (doc, inst) {
        const char *text = aws_xml_text (inst, "instanceId");
        if (text && strcmp (text, keep) && count < sizeof twins / sizeof twins [0])
            twins [count++] = text;
    }
    if (count == 0)
        return;
    aws_params_t *p = aws_params_new ();
    aws_params_list (p, "InstanceId", twins, count);
    xmlDocPtr done = aws_run_call (run, "TerminateInstances", p, NULL);
    aws_params_destroy (&p);
    for (size_t i = 0; i < count; i++)
        dx_warn ("cluster %s: host %s runs as %s; its twin %s %s", run->job.cluster, host, keep,
                 twins [i], done? "is terminated": "could not be terminated (a destroy will)");
    xmlFreeDoc (done);
}

int
aws_step_host (aws_run_t *run)
{
    const json_t *step = run->job.step;
    const char *role = dx_step_str (step, "role"), *group = dx_step_str (step, "group");
    const char *host = dx_step_str (step, "hostname");
    if (!role || !group || !host
    ||  (strcmp (role, "access") != 0 && strcmp (role, "master") != 0
         && strcmp (role, "agent") != 0))
        return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidStep", "the host step needs "
                                "role (access, master, agent), group and hostname");

    //  Found by its host name tag (twins: the same one every time), or run
    char id [64] = "";
    xmlDocPtr doc = s_find_instances (run, host, false);
    if (!doc)
        return -1;
    AWS_FOREACH_INSTANCE (doc, inst) {
        const char *text = aws_xml_text (inst, "instanceId");
        if (text && (!*id || strcmp (text, id) < 0))
            snprintf (id, sizeof id, "%s", text);
    }
    s_terminate_twins (run, doc, host, id);
    xmlFreeDoc (doc);
    if (!*id && s_run_instance (run, id, sizeof id))
        return -1;
    char key [96];
    s_step_key (run, key, sizeof key);
    json_t *res = dx_step_resource (run->out, key, "instance", id);
    dx_step_attr (res, "hostname", host);
    dx_step_attr (res, "group", group);
    dx_step_attr (res, "role", role);
    json_object_set_new (res, "slot", json_integer (json_integer_value (
                                          json_object_get (step, "slot"))));
    dx_step_attr (res, "state", "pending");

    if (!(doc = s_wait_running (run, id)))
        return -1;
    dx_step_attr (res, "state", "running");
    char public_ip [64] = "";
    AWS_FOREACH_INSTANCE (doc, inst) {
        const char *text = aws_xml_text (inst, "ipAddress");
        snprintf (public_ip, sizeof public_ip, "%s", text? text: "");
        dx_step_attr (res, "private_ip", aws_xml_text (inst, "privateIpAddress"));
        dx_step_attr (res, "public_ip", public_ip);
        dx_step_attr (res, "launched_at", aws_xml_text (inst, "launchTime"));
        dx_step_attr (res, "instance_type", aws_xml_text (inst, "instanceType"));
    }
    xmlFreeDoc (doc);
    if (strcmp (role, "access") != 0)
        return 0;
    //  The access node is reached at its Elastic IP
    if (s_access_address (run, id, public_ip, sizeof public_ip))
        return -1;
    dx_step_attr (res, "public_ip", public_ip);
    return 0;
}

//  ---------------------------------------------------------------------
//  remove, destroy.instances

int
aws_step_remove (aws_run_t *run)
{
    if (json_object_get (run->job.step, "slots"))
        return aws_step_remove_batch (run);
    const char *host = dx_step_str (run->job.step, "hostname");
    const char *group = dx_step_str (run->job.step, "group");
    if (!host || !*host || !group)
        return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidStep",
                                "the remove step needs group and hostname");
    char key [96];
    s_step_key (run, key, sizeof key);
    xmlDocPtr doc = s_find_instances (run, host, true);
    if (!doc)
        return -1;
    s_found_list_t found = { NULL, 0, 0 };
    int rc = s_found_add (&found, doc, key);
    xmlFreeDoc (doc);
    rc = rc? dx_step_outcome (run->out, DX_STEP_RETRY, 0, "OutOfMemory", "out of memory")
           : s_terminate_all (run, &found, "terminated");
    bool any = found.count > 0;
    free (found.items);
    if (!any) {                         /* already gone: say so, so it is forgotten */
        json_t *res = dx_step_resource (run->out, key, "instance", "");
        dx_step_attr (res, "hostname", host);
        dx_step_attr (res, "state", "terminated");
    }
    return rc;
}

/*  Rounds of find-and-terminate: what is terminated drops out of the
    next; a round sees what was launched while the one before ran. */
#define S_DESTROY_ROUNDS 50

/*  A page of s_find_all: its list, and whether memory ran out. */
typedef struct {
    s_found_list_t *list;
    bool short_of_memory;
} s_page_t;

static void
s_page_one (xmlNodePtr instance, void *arg)
{
    s_page_t *page = arg;
    if (!page->short_of_memory && s_found_one (page->list, instance, NULL))
        page->short_of_memory = true;
}

/*  The cluster's instances not terminated yet into list, one
    DescribeInstances per page of S_PAGE, each answer streamed: a destroy
    holds an instance's tree at a time, not the cluster's. 0, or -1 with
    the outcome set. */
static int
s_find_all (aws_run_t *run, s_found_list_t *list)
{
    s_page_t page = { list, false };
    char token [2048] = "";
    do {
        aws_params_t *p = aws_params_new ();
        aws_run_owned (run, p, NULL);
        s_state_filter (p, true);
        aws_params_add (p, "MaxResults", S_PAGE);
        if (*token)
            aws_params_add (p, "NextToken", token);
        int rc = aws_run_stream (run, "DescribeInstances", p, NULL, S_INSTANCES, s_page_one,
                                 &page, token, sizeof token);
        aws_params_destroy (&p);
        if (rc)
            return aws_run_failed (run, "DescribeInstances");
        if (page.short_of_memory)
            return dx_step_outcome (run->out, DX_STEP_RETRY, 0, "OutOfMemory", "out of memory");
    } while (*token);
    return 0;
}

int
aws_step_destroy_instances (aws_run_t *run)
{
    for (int round = 0; round < S_DESTROY_ROUNDS; round++) {
        s_found_list_t found = { NULL, 0, 0 };
        int rc = s_find_all (run, &found);
        bool any = found.count > 0;
        if (rc == 0 && any)
            rc = s_terminate_all (run, &found, "deleted");
        free (found.items);
        if (rc || !any)
            return rc;
    }
    return dx_step_outcome (run->out, DX_STEP_RETRY, 0, "WaitTimeout", "instances of cluster %s "
                            "were still there after %d rounds of termination", run->job.cluster,
                            S_DESTROY_ROUNDS);
}

//  ---------------------------------------------------------------------
//  destroy.addresses

/*  An Elastic IP, disassociated first when it is associated. */
static int
s_release_address (aws_run_t *run, xmlNodePtr address)
{
    const char *alloc = aws_xml_text (address, "allocationId");
    const char *assoc = aws_xml_text (address, "associationId");
    if (!alloc)
        return 0;                       /* nothing to release it by */
    aws_params_t *p;
    if (assoc && *assoc) {
        p = aws_params_new ();
        aws_params_add (p, "AssociationId", assoc);
        if (aws_run_act (run, "DisassociateAddress", &p, NULL,
                         "InvalidAssociationID.NotFound", NULL))
            return -1;
    }
    p = aws_params_new ();
    aws_params_add (p, "AllocationId", alloc);
    static const char *const in_use [] = { "InvalidIPAddress.InUse", NULL };
    if (aws_run_act (run, "ReleaseAddress", &p, in_use, "InvalidAllocationID.NotFound", NULL))
        return -1;
    const char *role = aws_xml_tag (address, "dexter:role");
    char key [96];
    snprintf (key, sizeof key, "eip.%s", role? role: alloc);
    json_t *res = dx_step_resource (run->out, key, "address", alloc);
    dx_step_attr (res, "public_ip", aws_xml_text (address, "publicIp"));
    dx_step_attr (res, "state", "deleted");
    return 0;
}

int
aws_step_destroy_addresses (aws_run_t *run)
{
    return aws_run_each_owned (run, "DescribeAddresses", "addressesSet/item",
                               s_release_address);
}
