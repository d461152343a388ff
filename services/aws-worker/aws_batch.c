/*  aws_batch: the steps that launch and remove many agents of one group at
    once: `hosts` (the agents of a run of slots, one RunInstances per
    contiguous run of the slots that have no instance) and `remove` with
    `slots` (one TerminateInstances). docs/aws.md says what each calls.

    An instance launched in a batch carries no dexter:host tag: its slot
    is its dexter:batch tag (the first slot of its RunInstances call) plus
    its amiLaunchIndex (aws_instance_slot), and its user data, the same
    for the whole call, works its host name out the same way. Both steps
    find the group's instances with one DescribeInstances per page of
    1,000 (tags dexter:cluster and dexter:group), and wait the same way,
    so a poll is one call whatever the number of hosts.

    A call's ClientToken is derived from the step's client_token, the
    call's first slot and its count: a step run again after a crash or a
    lost lease, when its instances are not visible yet, asks for the same
    runs with the same tokens and gets the same reservations back. */
#include "aws_run.h"
#include "dx_log.h"
#include "dx_util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

/*  Slots per step: RunInstances' MaxCount, TerminateInstances' ids and a
    DescribeInstances page all take 1,000. */
#define S_SLOTS_MAX 1000

typedef struct {
    long long slot;
    const char *hostname;               /* borrowed from the step */
    char id [32];                       /* its instance; "" while none */
    char state [24];
    bool reported;                      /* running, and said so */
    json_t *res;                        /* its resource, borrowed from run->out */
} s_host_t;

typedef struct {
    aws_run_t *run;
    const char *group;
    s_host_t *hosts;                    /* by slot, ascending */
    size_t count;
    char prefix [64];                   /* the host names but the slot */
    char **ids;                         /* hosts: twins; remove: what is terminated */
    size_t id_count;
    size_t alive;                       /* remove: of ids, not terminated yet */
    size_t running;                     /* hosts: of hosts, running and said so */
} s_batch_t;

//  ---------------------------------------------------------------------
//  The step's slots

/*  Reads slots and hostnames (same length, slots ascending, each name the
    common prefix and its slot). 0, or -1 with the outcome set. */
static int
s_batch_read (s_batch_t *self, aws_run_t *run)
{
    memset (self, 0, sizeof *self);
    self->run = run;
    const json_t *step = run->job.step;
    const json_t *slots = json_object_get (step, "slots");
    const json_t *names = json_object_get (step, "hostnames");
    self->group = dx_step_str (step, "group");
    size_t count = json_array_size (slots);
    if (!self->group || !*self->group || count == 0 || count > S_SLOTS_MAX
    ||  json_array_size (names) != count)
        return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidStep", "the step needs "
                                "group, and slots and hostnames of the same length, 1 to %d",
                                S_SLOTS_MAX);
    self->hosts = calloc (count, sizeof *self->hosts);
    if (!self->hosts)
        return dx_step_outcome (run->out, DX_STEP_RETRY, 0, "OutOfMemory", "out of memory");
    self->count = count;
    for (size_t i = 0; i < count; i++) {
        s_host_t *h = &self->hosts [i];
        const json_t *slot = json_array_get (slots, i);
        h->slot = json_is_integer (slot)? (long long) json_integer_value (slot): -1;
        h->hostname = json_string_value (json_array_get (names, i));
        char digits [24];
        snprintf (digits, sizeof digits, "%lld", h->slot);
        size_t len = h->hostname? strlen (h->hostname): 0, tail = strlen (digits);
        if (i == 0 && len > tail && len - tail < sizeof self->prefix)
            snprintf (self->prefix, sizeof self->prefix, "%.*s", (int) (len - tail), h->hostname);
        if (h->slot < 0 || (i > 0 && h->slot <= self->hosts [i - 1].slot) || !*self->prefix
        ||  len != strlen (self->prefix) + tail
        ||  strncmp (h->hostname, self->prefix, len - tail) != 0
        ||  strcmp (h->hostname + len - tail, digits) != 0)
            return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidStep", "slots must "
                                    "ascend, and each host name be one prefix and its slot "
                                    "(entry %zu)", i);
    }
    return 0;
}

static void
s_batch_fini (s_batch_t *self)
{
    for (size_t i = 0; i < self->id_count; i++)
        free (self->ids [i]);
    free (self->ids);
    free (self->hosts);
}

/*  The host of slot, or NULL when it is not one of the step's. */
static s_host_t *
s_host_of (s_batch_t *self, long long slot)
{
    size_t low = 0, high = self->count;
    while (low < high) {
        size_t mid = (low + high) / 2;
        if (self->hosts [mid].slot == slot)
            return &self->hosts [mid];
        if (self->hosts [mid].slot < slot)
            low = mid + 1;
        else
            high = mid;
    }
    return NULL;
}

static bool
s_state_is (const char *state, const char *const *list)
{
    for (; state && *list; list++)
        if (strcmp (state, *list) == 0)
            return true;
    return false;
}

//  ---------------------------------------------------------------------
//  The group's instances

/*  What is done with each instance of the group. */
typedef void (s_instance_fn) (s_batch_t *self, xmlNodePtr instance);

typedef struct {
    s_batch_t *batch;
    s_instance_fn *fn;
} s_each_t;

static void
s_each_item (xmlNodePtr instance, void *arg)
{
    s_each_t *each = arg;
    each->fn (each->batch, instance);
}

/*  Calls fn on each instance of the group (only those in a live state
    when live), one DescribeInstances per page of 1,000. The answers are
    streamed: one instance's tree at a time, not the page's. 0, or -1
    with the outcome set. */
static int
s_each_in_group (s_batch_t *self, bool live, s_instance_fn *fn)
{
    s_each_t each = { self, fn };
    char token [2048] = "";
    do {
        aws_params_t *p = aws_params_new ();
        aws_run_owned (self->run, p, NULL);
        aws_params_filter (p, "tag:dexter:group", self->group, NULL);
        if (live) {
            int n = aws_params_next (p, "Filter"), m = 0;
            aws_params_addf (p, "instance-state-name", "Filter.%d.Name", n);
            for (const char *const *s = aws_live_states; *s; s++)
                aws_params_addf (p, *s, "Filter.%d.Value.%d", n, ++m);
        }
        aws_params_add (p, "MaxResults", "1000");
        if (*token)
            aws_params_add (p, "NextToken", token);
        int rc = aws_run_stream (self->run, "DescribeInstances", p, NULL,
                                 "reservationSet/item/instancesSet/item", s_each_item, &each,
                                 token, sizeof token);
        aws_params_destroy (&p);
        if (rc)
            return aws_run_failed (self->run, "DescribeInstances");
    } while (*token);
    return 0;
}

/*  Adds a copy of id to self->ids (out of memory: left out, and logged). */
static void
s_push (s_batch_t *self, const char *id)
{
    char **more = realloc (self->ids, (self->id_count + 1) * sizeof *more);
    if (more)
        self->ids = more;
    char *copy = more? strdup (id): NULL;
    if (copy)
        self->ids [self->id_count++] = copy;
    else
        dx_warn ("cluster %s: out of memory: instance %s left out", self->run->job.cluster, id);
}

/*  Maps a live instance to its slot; the lowest id wins a slot (the same
    one every time), the others are its twins, in self->ids. */
static void
s_map (s_batch_t *self, xmlNodePtr instance)
{
    const char *id = aws_xml_text (instance, "instanceId");
    const char *state = aws_xml_text (instance, "instanceState/name");
    s_host_t *h = s_host_of (self, aws_instance_slot (instance));
    if (!h || !id || !*id || !s_state_is (state, aws_live_states))
        return;
    if (*h->id && strcmp (id, h->id) > 0) {
        s_push (self, id);
        return;
    }
    if (*h->id)
        s_push (self, h->id);
    snprintf (h->id, sizeof h->id, "%s", id);
    snprintf (h->state, sizeof h->state, "%s", state);
}

/*  Terminates ids, 1,000 a call. With ignore_errors a failure is only
    logged (twins: a destroy finds any that linger by their tags); else
    it is the outcome. 0, or -1 with the outcome set. */
static int
s_terminate (s_batch_t *self, bool ignore_errors)
{
    for (size_t from = 0; from < self->id_count; from += S_SLOTS_MAX) {
        size_t n = self->id_count - from;
        n = n < S_SLOTS_MAX? n: S_SLOTS_MAX;
        aws_params_t *p = aws_params_new ();
        aws_params_list (p, "InstanceId", (const char *const *) self->ids + from, n);
        xmlDocPtr done = aws_run_call (self->run, "TerminateInstances", p, NULL);
        aws_params_destroy (&p);
        if (ignore_errors)
            for (size_t i = from; i < from + n; i++)
                dx_warn ("cluster %s: group %s: instance %s is the twin of a host's; %s",
                         self->run->job.cluster, self->group, self->ids [i],
                         done? "it is terminated": "it could not be terminated (a destroy will)");
        else
        if (!done && !aws_run_code_is (self->run, "InvalidInstanceID.NotFound"))
            return aws_run_failed (self->run, "TerminateInstances");
        xmlFreeDoc (done);
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  hosts

/*  The token (65 bytes) of the call for count slots from first: the
    step's token when all fits in 64 characters, else a hash of it, then
    first, count and, for a token whose instances are gone, the last of
    them. */
static void
s_token (s_batch_t *self, long long first, size_t count, const char *dead, char *token)
{
    const char *base = dx_step_str (self->run->job.step, "client_token");
    char suffix [48], hex [25];
    snprintf (suffix, sizeof suffix, "-%lld-%zu%s%s", first, count, dead? "-": "",
              dead? dead + (strlen (dead) > 8? strlen (dead) - 8: 0): "");
    if (strlen (base) + strlen (suffix) > 64) {
        unsigned char hash [12];
        crypto_generichash (hash, sizeof hash, (const unsigned char *) base, strlen (base),
                            NULL, 0);
        sodium_bin2hex (hex, sizeof hex, hash, sizeof hash);
        base = hex;
    }
    size_t len = strlen (base);
    memcpy (token, base, len);
    snprintf (token + len, 65 - len, "%s", suffix);
}

/*  The user data's input for a call from slot first: the step with the
    host name's prefix and first in place of the slots and names
    (dx_provision.h). Caller decrefs; NULL when out of memory. */
static json_t *
s_provision_step (s_batch_t *self, long long first)
{
    json_t *step = json_copy ((json_t *) self->run->job.step);
    if (!step)
        return NULL;
    json_object_del (step, "slots");
    json_object_del (step, "hostnames");
    json_object_del (step, "client_token");
    json_object_set_new (step, "hostname_prefix", json_string (self->prefix));
    json_object_set_new (step, "batch", json_integer (first));
    return step;
}

/*  RunInstances' parameters for count slots from first; NULL with the
    outcome set. */
static aws_params_t *
s_run_params (s_batch_t *self, long long first, size_t count, const char *token)
{
    aws_run_t *run = self->run;
    json_t *provision = s_provision_step (self, first);
    if (!provision)
        return dx_step_outcome (run->out, DX_STEP_RETRY, 0, "OutOfMemory", "out of memory"),
               NULL;
    aws_params_t *p = aws_host_params (run, provision);
    json_decref (provision);
    if (!p)
        return NULL;
    char text [32], name [160];
    aws_params_add (p, "MinCount", "1");
    snprintf (text, sizeof text, "%zu", count);
    aws_params_add (p, "MaxCount", text);
    aws_params_add (p, "ClientToken", token);
    snprintf (text, sizeof text, "%lld", first);
    snprintf (name, sizeof name, "%s%lld+%zu", self->prefix, first, count);
    static const char *const types [] = { "instance", "volume" };
    for (size_t i = 0; i < 2; i++) {
        aws_run_tag_spec (run, p, types [i], "agent", self->group, NULL, name);
        char prefix [48];
        snprintf (prefix, sizeof prefix, "TagSpecification.%d",
                  aws_params_next (p, "TagSpecification") - 1);
        aws_params_tag (p, prefix, "dexter:batch", text);
    }
    return p;
}

/*  What one RunInstances call gave, read from its answer as a stream. */
typedef struct {
    s_batch_t *batch;
    long long first;                    /* the call's first slot */
    size_t taken;                       /* instances that filled a slot */
    size_t made;                        /* instances in the answer */
    char dead [32];                     /* the last instance id seen */
} s_launched_t;

/*  Takes an instance of the answer (one reservation) into its slot. */
static void
s_take (xmlNodePtr inst, void *arg)
{
    s_launched_t *launched = arg;
    s_batch_t *self = launched->batch;
    const char *id = aws_xml_text (inst, "instanceId");
    const char *state = aws_xml_text (inst, "instanceState/name");
    const char *index = aws_xml_text (inst, "amiLaunchIndex");
    launched->made++;
    if (id)
        snprintf (launched->dead, sizeof launched->dead, "%s", id);
    long long slot = index? launched->first + strtoll (index, NULL, 10): -1;
    s_host_t *h = s_host_of (self, slot);
    if (!h || !id || !s_state_is (state, aws_live_states))
        return;
    if (!*h->id) {
        snprintf (h->id, sizeof h->id, "%s", id);
        snprintf (h->state, sizeof h->state, "%s", state);
        launched->taken++;
    }
    else
    if (strcmp (h->id, id) != 0)
        s_push (self, id);              /* a reservation of old, the slot found filled */
}

/*  Launches count slots from self->hosts[at] (a contiguous run with no
    instance) in one call, and takes the instances of its answer, read as
    a stream (a thousand instances are megabytes of tree). A token whose
    instances are all gone (terminated by hand, say) gives that dead
    reservation forever, so then it calls once more with a token derived
    from the dead one. 0 when at least one slot has its instance now, or
    -1 with the outcome set. */
static int
s_launch (s_batch_t *self, size_t at, size_t count)
{
    aws_run_t *run = self->run;
    s_launched_t launched = { self, self->hosts [at].slot, 0, 0, "" };
    long long first = launched.first;
    char token [65];
    s_token (self, first, count, NULL, token);
    for (int round = 0; round < 2; round++) {
        aws_params_t *p = s_run_params (self, first, count, token);
        if (!p)
            return -1;
        launched.taken = launched.made = 0;
        int rc = aws_run_stream (run, "RunInstances", p, aws_run_not_found, "instancesSet/item",
                                 s_take, &launched, NULL, 0);
        aws_params_destroy (&p);
        if (rc)
            return aws_run_failed (run, "RunInstances");
        dx_info ("cluster %s: group %s: slots %lld to %lld: %zu of %zu launched (token %s)",
                 run->job.cluster, self->group, first, first + (long long) count - 1,
                 launched.taken, count, token);
        if (launched.taken > 0)
            return 0;
        s_token (self, first, count, *launched.dead? launched.dead: "none", token);
        dx_info ("cluster %s: group %s: the %zu instance(s) of the client token of slot %lld "
                 "are gone; launching anew", run->job.cluster, self->group, launched.made, first);
    }
    return dx_step_outcome (run->out, DX_STEP_RETRY, 0, "IncorrectInstanceState",
                            "the instances of the client tokens of slots %lld to %lld are gone",
                            first, first + (long long) count - 1);
}

/*  Launches every run of slots with no instance, one call each; a call
    EC2 filled in part leaves a shorter run, launched by the next. */
static int
s_launch_missing (s_batch_t *self)
{
    for (size_t rounds = 0; rounds <= self->count; rounds++) {
        size_t at = 0;
        while (at < self->count && *self->hosts [at].id)
            at++;
        if (at == self->count)
            return 0;
        size_t end = at + 1;
        while (end < self->count && !*self->hosts [end].id
           &&  self->hosts [end].slot == self->hosts [end - 1].slot + 1)
            end++;
        if (s_launch (self, at, end - at))
            return -1;
    }
    return dx_step_outcome (self->run->out, DX_STEP_RETRY, 0, "InsufficientInstanceCapacity",
                            "group %s: slots are still without an instance after %zu calls",
                            self->group, self->count + 1);
}

/*  Takes a running instance's addresses into its resource, once. */
static void
s_watch (s_batch_t *self, xmlNodePtr instance)
{
    const char *id = aws_xml_text (instance, "instanceId");
    const char *state = aws_xml_text (instance, "instanceState/name");
    s_host_t *h = s_host_of (self, aws_instance_slot (instance));
    if (!h || !id || !state || strcmp (h->id, id) != 0)
        return;
    snprintf (h->state, sizeof h->state, "%s", state);
    if (strcmp (state, "running") != 0 || h->reported)
        return;
    h->reported = true;
    self->running++;
    const char *private_ip = aws_xml_text (instance, "privateIpAddress");
    dx_step_attr (h->res, "state", "running");
    dx_step_attr (h->res, "private_ip", private_ip);
    dx_step_attr (h->res, "public_ip", aws_xml_text (instance, "ipAddress"));
    dx_step_attr (h->res, "launched_at", aws_xml_text (instance, "launchTime"));
    dx_step_attr (h->res, "instance_type", aws_xml_text (instance, "instanceType"));
    //  The newest text that has not left yet is the one sent (dx_worker),
    //  so each says how far the batch is too
    dx_step_progress (self->run->out, "host %s runs: %s at %s; %zu of %zu hosts run",
                      h->hostname, id, private_ip? private_ip: "?", self->running, self->count);
}

/*  Waits until every host's instance runs: one DescribeInstances (a page)
    per poll for all of them; an instance not visible yet is pending. */
static int
s_wait_running (s_batch_t *self)
{
    aws_run_t *run = self->run;
    int64_t deadline = dx_mono_ms () + run->config->wait_ms;
    static const char *const down [] = {
        "shutting-down", "terminated", "stopping", "stopped", NULL
    };
    while (1) {
        if (s_each_in_group (self, false, s_watch))
            return -1;
        size_t running = self->running;
        for (size_t i = 0; i < self->count; i++) {
            s_host_t *h = &self->hosts [i];
            if (s_state_is (h->state, down))
                return dx_step_outcome (run->out, DX_STEP_RETRY, 0, "IncorrectInstanceState",
                                        "instance %s of host %s is %s, not running", h->id,
                                        h->hostname, h->state);
        }
        if (running == self->count)
            return 0;
        if (dx_step_cancelled (run->out))
            return dx_step_outcome (run->out, DX_STEP_RETRY, 0, "CANCELLED", "the job was "
                                    "cancelled while %zu of %zu instances were starting",
                                    self->count - running, self->count);
        if (dx_mono_ms () >= deadline)
            return dx_step_outcome (run->out, DX_STEP_RETRY, 0, "WaitTimeout", "%zu of %zu "
                                    "instances still not running after %lld ms",
                                    self->count - running, self->count,
                                    (long long) run->config->wait_ms);
        dx_sleep_ms (run->config->poll_ms);
    }
}

/*  Records host's resource as the host step does. */
static void
s_record (s_batch_t *self, s_host_t *h)
{
    char key [160];
    snprintf (key, sizeof key, "host.%s.%lld", self->group, h->slot);
    h->res = dx_step_resource (self->run->out, key, "instance", h->id);
    dx_step_attr (h->res, "hostname", h->hostname);
    dx_step_attr (h->res, "group", self->group);
    dx_step_attr (h->res, "role", "agent");
    json_object_set_new (h->res, "slot", json_integer (h->slot));
    dx_step_attr (h->res, "state", "pending");
}

int
aws_step_hosts (aws_run_t *run)
{
    const char *role = dx_step_str (run->job.step, "role");
    const char *token = dx_step_str (run->job.step, "client_token");
    if (!role || strcmp (role, "agent") != 0)
        return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidStep", "a hosts step "
                                "launches agents only (role agent)");
    if (!token || !*token || strlen (token) > 64)
        return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidStep",
                                "the hosts step's client_token is missing or longer than 64");
    s_batch_t batch;
    int rc = s_batch_read (&batch, run);
    if (rc == 0)
        rc = s_each_in_group (&batch, true, s_map);
    if (rc == 0) {
        rc = s_launch_missing (&batch);
        s_terminate (&batch, true);         /* a slot has one instance */
        //  What is there is reported whatever the outcome
        for (size_t i = 0; i < batch.count; i++)
            if (*batch.hosts [i].id)
                s_record (&batch, &batch.hosts [i]);
    }
    if (rc == 0)
        rc = s_wait_running (&batch);
    s_batch_fini (&batch);
    return rc;
}

//  ---------------------------------------------------------------------
//  remove (with slots)

/*  Every instance of the step's slots not terminated yet, twins too;
    the lowest id names its slot. */
static void
s_map_all (s_batch_t *self, xmlNodePtr instance)
{
    const char *id = aws_xml_text (instance, "instanceId");
    const char *state = aws_xml_text (instance, "instanceState/name");
    s_host_t *h = s_host_of (self, aws_instance_slot (instance));
    if (!h || !id || !*id || !state || strcmp (state, "terminated") == 0)
        return;
    s_push (self, id);
    if (!*h->id || strcmp (id, h->id) < 0)
        snprintf (h->id, sizeof h->id, "%s", id);
}

static int
s_compare_ids (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

/*  Counts an instance of self->ids (sorted) that is not terminated. */
static void
s_count_alive (s_batch_t *self, xmlNodePtr instance)
{
    const char *id = aws_xml_text (instance, "instanceId");
    const char *state = aws_xml_text (instance, "instanceState/name");
    if (id && state && strcmp (state, "terminated") != 0
    &&  bsearch (&id, self->ids, self->id_count, sizeof *self->ids, s_compare_ids))
        self->alive++;
}

/*  Waits until every instance of self->ids is terminated (or gone): one
    DescribeInstances (a page) per poll for all of them. */
static int
s_wait_terminated (s_batch_t *self)
{
    aws_run_t *run = self->run;
    if (self->id_count == 0)
        return 0;
    qsort (self->ids, self->id_count, sizeof *self->ids, s_compare_ids);
    int64_t deadline = dx_mono_ms () + run->config->wait_ms;
    while (1) {
        self->alive = 0;
        if (s_each_in_group (self, false, s_count_alive))
            return -1;
        if (self->alive == 0)
            return 0;
        if (dx_step_cancelled (run->out))
            return dx_step_outcome (run->out, DX_STEP_RETRY, 0, "CANCELLED", "the job was "
                                    "cancelled while waiting for %zu instance(s) to "
                                    "terminate", self->alive);
        if (dx_mono_ms () >= deadline)
            return dx_step_outcome (run->out, DX_STEP_RETRY, 0, "WaitTimeout", "%zu instance(s) "
                                    "still not terminated after %lld ms", self->alive,
                                    (long long) run->config->wait_ms);
        dx_sleep_ms (run->config->poll_ms);
    }
}

int
aws_step_remove_batch (aws_run_t *run)
{
    s_batch_t batch;
    int rc = s_batch_read (&batch, run);
    if (rc == 0)
        rc = s_each_in_group (&batch, false, s_map_all);
    if (rc == 0)
        rc = s_terminate (&batch, false);
    if (rc == 0)
        rc = s_wait_terminated (&batch);
    //  Each slot, gone already or not, so that it is forgotten
    for (size_t i = 0; i < batch.count && (rc == 0 || batch.id_count); i++) {
        s_host_t *h = &batch.hosts [i];
        if (rc != 0 && !*h->id)
            continue;
        char key [160];
        snprintf (key, sizeof key, "host.%s.%lld", batch.group, h->slot);
        json_t *res = dx_step_resource (run->out, key, "instance", h->id);
        dx_step_attr (res, "hostname", h->hostname);
        dx_step_attr (res, "state", rc == 0? "terminated": "shutting-down");
    }
    s_batch_fini (&batch);
    return rc;
}
