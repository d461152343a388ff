/*  sch_vpn: VPN users as jobs of the vpn workers. See sch_vpn.h.

    A job's id is NAME:users:SEQ, SEQ unique to this scheduler's run (its
    start time and a counter), so no result of another run's job passes
    for one of ours; the engine never claims such an id. */
#include "sch_vpn.h"
#include "dx_log.h"
#include "dx_msg.h"
#include "dx_spec.h"
#include "dx_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_IDLE_MS 1000

/*  One user request, queued or running. */
typedef struct {
    char cluster [DX_NAME_MAX + 1];
    char user [DX_NAME_MAX + 1];
    const char *kind;                   /* vpn.user.add, vpn.user.revoke */
    char id [96];                       /* the job id */
    json_t *request;                    /* for the reply's envelope */
    void *waiter;
    int64_t deadline;                   /* the request's, epoch ms */
    char *worker;                       /* while it runs */
    int64_t lease_expiry;               /* dx_mono_ms */
} s_user_job_t;

struct sch_vpn {
    sch_store_t *store;
    sch_read_t *read;
    dx_seal_t *seal;
    sch_broker_t *broker;
    sch_engine_t *engine;
    int64_t lease_ms;
    zlistx_t *jobs;                     /* s_user_job_t, in the order they came */
    sch_vpn_answer_fn *answer;
    void *answer_arg;
    uint64_t seq;
};

static const char *const s_add = "vpn.user.add";
static const char *const s_revoke = "vpn.user.revoke";


//  ---------------------------------------------------------------------
//  Jobs

static void
s_job_destroy (void **item_p)
{
    s_user_job_t *job = (s_user_job_t *) *item_p;
    if (job) {
        json_decref (job->request);
        free (job->worker);
        free (job);
        *item_p = NULL;
    }
}

/*  Answers job's requester with reply (taken; NULL: none) and forgets the
    job. */
static void
s_finish (sch_vpn_t *self, s_user_job_t *job, json_t *reply)
{
    if (self->answer)
        self->answer (self->answer_arg, job->waiter, reply);
    else
        json_decref (reply);
    job->waiter = NULL;
    void *handle = zlistx_find (self->jobs, job);
    if (handle)
        zlistx_delete (self->jobs, handle);
}

/*  The running job of id, or NULL. */
static s_user_job_t *
s_find (sch_vpn_t *self, const char *id)
{
    for (s_user_job_t *job = (s_user_job_t *) zlistx_first (self->jobs); job && id;
         job = (s_user_job_t *) zlistx_next (self->jobs))
        if (job->worker && strcmp (job->id, id) == 0)
            return job;
    return NULL;
}

/*  1 if a user job of cluster runs. */
static int
s_cluster_busy (sch_vpn_t *self, const char *cluster)
{
    for (s_user_job_t *job = (s_user_job_t *) zlistx_first (self->jobs); job;
         job = (s_user_job_t *) zlistx_next (self->jobs))
        if (job->worker && strcmp (job->cluster, cluster) == 0)
            return 1;
    return 0;
}


/*  The jobs as they are now, in order (caller frees; *count set), so that
    a loop may finish the job it is at. NULL when there are none. */
static s_user_job_t **
s_snapshot (sch_vpn_t *self, size_t *count)
{
    *count = zlistx_size (self->jobs);
    s_user_job_t **jobs = *count? (s_user_job_t **) calloc (*count, sizeof *jobs): NULL;
    size_t i = 0;
    for (s_user_job_t *job = (s_user_job_t *) zlistx_first (self->jobs); jobs && job;
         job = (s_user_job_t *) zlistx_next (self->jobs))
        jobs [i++] = job;
    if (!jobs)
        *count = 0;
    return jobs;
}


//  ---------------------------------------------------------------------
//  What Redis holds

/*  The recorded PKI of a loaded cluster (caller owns), or NULL. */
static json_t *
s_pki (const json_t *loaded)
{
    const json_t *resource = json_object_get (json_object_get (loaded, "resources"), "vpn.pki");
    const char *text = json_string_value (json_object_get (resource, "pki"));
    json_t *pki = text? json_loads (text, 0, NULL): NULL;
    if (pki && !json_is_array (json_object_get (pki, "users"))) {
        json_decref (pki);
        pki = NULL;
    }
    return pki;
}

/*  The PKI's entry of user (borrowed from pki), or NULL. */
static const json_t *
s_pki_user (const json_t *pki, const char *user)
{
    size_t i;
    json_t *entry;
    json_array_foreach (json_object_get (pki, "users"), i, entry) {
        const char *name = json_string_value (json_object_get (entry, "name"));
        if (name && strcmp (name, user) == 0)
            return entry;
    }
    return NULL;
}

/*  A member of the loaded deployment record (borrowed), or "". */
static const char *
s_record (const json_t *loaded, const char *field)
{
    const char *value = json_string_value (json_object_get (json_object_get (loaded,
                                                                             "deployment"),
                                                            field));
    return value? value: "";
}

/*  The reply when the loaded cluster cannot take kind for user now, else
    NULL: it has a PKI (a deploy made it), is not being destroyed, and,
    to add, has an access node's address and no user of that name; to
    revoke, has the user. */
static json_t *
s_check (const json_t *request, const json_t *loaded, const char *kind, const char *user)
{
    const char *name = dx_msg_str (request, "name");
    json_t *pki = s_pki (loaded);
    json_t *reply = NULL;
    if (!pki)
        reply = dx_reply_error (request, DX_CONFLICT, NULL,
                                "cluster %s has no VPN PKI yet: it is made by its first "
                                "deploy (the vpn.server step); deploy first", name);
    else
    if (strcmp (s_record (loaded, "state"), "destroying") == 0)
        reply = dx_reply_error (request, DX_CONFLICT, NULL,
                                "cluster %s is being destroyed, its PKI with it", name);
    else
    if (kind == s_add && !*s_record (loaded, "accessip"))
        reply = dx_reply_error (request, DX_CONFLICT, NULL,
                                "cluster %s has no access node address yet, which a profile "
                                "names; deploy first", name);
    else
    if (kind == s_add && s_pki_user (pki, user))
        reply = dx_reply_error (request, DX_CONFLICT, "name",
                                "cluster %s has a VPN user %s already (a name once issued "
                                "stays taken, revoked or not)", name, user);
    else
    if (kind == s_revoke && !s_pki_user (pki, user))
        reply = dx_reply_error (request, DX_NOT_FOUND, "name",
                                "cluster %s has no VPN user %s", name, user);
    json_decref (pki);
    return reply;
}


//  ---------------------------------------------------------------------
//  Dispatch

/*  The job.assign of job on the loaded cluster (caller owns). */
static json_t *
s_assign (sch_vpn_t *self, const s_user_job_t *job, const json_t *loaded)
{
    const json_t *resource = json_object_get (json_object_get (loaded, "resources"), "vpn.pki");
    json_t *context = json_pack ("{s:O}", "vpn_pki", json_object_get (resource, "pki"));
    const char *ip = s_record (loaded, "accessip");
    if (*ip)
        json_object_set_new (context, "access_ip", json_string (ip));
    json_int_t generation = json_integer_value (json_object_get (json_object_get (loaded,
                                                                 "deployment"), "generation"));
    json_t *msg = dx_msg_new ("job.assign", NULL);
    json_object_set_new (msg, "job", json_string (job->id));
    json_object_set_new (msg, "attempt", json_integer (1));
    json_object_set_new (msg, "cluster", json_string (job->cluster));
    json_object_set_new (msg, "generation", json_integer (generation > 0? generation: 0));
    json_object_set_new (msg, "step", json_pack ("{s:s, s:s, s:s, s:o}", "id", job->kind,
                                                 "kind", job->kind, "user", job->user,
                                                 "context", context));
    json_object_set_new (msg, "credentials", json_object ());
    json_object_set_new (msg, "lease_ms", json_integer (self->lease_ms));
    return msg;
}

/*  Starts job on worker with the PKI as Redis has it now. 0 sent, 1 the
    job was answered (it ended), -1 not now (Redis). */
static int
s_start (sch_vpn_t *self, s_user_job_t *job, const char *worker)
{
    json_t *loaded = sch_read_load (self->read, job->cluster, SCH_LOAD_CLUSTER
                                    | SCH_LOAD_DEPLOYMENT | SCH_LOAD_RESOURCES);
    if (!loaded)
        return -1;
    json_t *reply = !json_is_object (json_object_get (loaded, "cluster"))
                  ? dx_reply_error (job->request, DX_NOT_FOUND, NULL, "no cluster named %s",
                                    job->cluster)
                  : s_check (job->request, loaded, job->kind, job->user);
    if (reply) {
        json_decref (loaded);
        s_finish (self, job, reply);
        return 1;
    }
    json_t *msg = s_assign (self, job, loaded);
    json_decref (loaded);
    job->worker = strdup (worker);
    job->lease_expiry = dx_mono_ms () + self->lease_ms;
    sch_broker_adopt (self->broker, worker);
    if (sch_broker_send_to (self->broker, worker, msg, 0)) {
        sch_broker_release (self->broker, worker);
        s_finish (self, job, dx_reply_error (job->request, DX_UNAVAILABLE, NULL,
                                             "the job could not be sent to a vpn worker; "
                                             "nothing was changed: try again"));
        return 1;
    }
    dx_info ("cluster %s: %s %s -> worker %s", job->cluster, job->kind, job->user,
             sch_broker_name (self->broker, worker)? sch_broker_name (self->broker, worker)
                                                   : "?");
    return 0;
}

/*  Starts, in order, every queued job whose cluster is free: no job of
    its own runs or came before it, and its vpn.server step does not run.
    Jobs past their request's deadline are dropped first. */
static void
s_dispatch (sch_vpn_t *self)
{
    int64_t now = dx_now_ms ();
    zlistx_t *blocked = zlistx_new ();  /* clusters whose next job must wait */
    zlistx_set_comparator (blocked, (zlistx_comparator_fn *) strcmp);
    size_t count;
    s_user_job_t **jobs = s_snapshot (self, &count);
    for (size_t i = 0; i < count; i++) {
        s_user_job_t *job = jobs [i];
        if (!job->worker && job->deadline < now) {
            dx_debug ("cluster %s: %s %s dropped: its deadline passed while it waited",
                      job->cluster, job->kind, job->user);
            s_finish (self, job, NULL);
        }
        else
        if (job->worker || zlistx_find (blocked, job->cluster)
        ||  sch_engine_running (self->engine, job->cluster, "vpn.server"))
            zlistx_add_end (blocked, job->cluster);
        else {
            const char *worker = sch_broker_pick (self->broker, "vpn");
            if (!worker)
                break;
            int rc = s_start (self, job, worker);
            if (rc < 0)
                break;
            if (rc == 0)
                zlistx_add_end (blocked, job->cluster);
        }
    }
    free (jobs);
    zlistx_destroy (&blocked);
}

/*  Queues a checked request as a job; the reply when it cannot be. */
static json_t *
s_submit (sch_vpn_t *self, const json_t *request, void *waiter, const char *kind,
          const char *user)
{
    s_user_job_t *job = (s_user_job_t *) calloc (1, sizeof *job);
    if (!job || !zlistx_add_end (self->jobs, job)) {
        free (job);
        return dx_reply_error (request, DX_INTERNAL, NULL, "out of memory");
    }
    snprintf (job->cluster, sizeof job->cluster, "%s", dx_msg_str (request, "name"));
    snprintf (job->user, sizeof job->user, "%s", user);
    job->kind = kind;
    snprintf (job->id, sizeof job->id, "%s:users:%" PRId64 "-%" PRIu64, job->cluster,
              dx_now_ms (), ++self->seq);
    job->request = json_deep_copy (request);
    json_object_del (job->request, "fields");
    job->waiter = waiter;
    job->deadline = dx_msg_int (request, "deadline", 0);
    s_dispatch (self);
    return NULL;
}

/*  What both changes check before a job: the cluster exists and may take
    kind for user now, and a vpn worker is connected. */
static json_t *
s_request (sch_ctx_t *ctx, const json_t *request, void *waiter, const char *kind,
           const char *user)
{
    sch_vpn_t *self = ctx->vpn;
    if (!self || !ctx->broker)
        return dx_reply_error (request, DX_UNAVAILABLE, NULL,
                               "this scheduler runs no jobs (no worker endpoint)");
    json_t *reply = NULL;
    json_t *loaded = sch_load_cluster (ctx, request, SCH_LOAD_DEPLOYMENT | SCH_LOAD_RESOURCES,
                                       &reply);
    if (!loaded)
        return reply;
    reply = s_check (request, loaded, kind, user);
    json_decref (loaded);
    if (!reply && sch_broker_workers (ctx->broker, "vpn", NULL) == 0)
        reply = dx_reply_error (request, DX_UNAVAILABLE, NULL,
                                "no vpn worker is connected: users are issued and revoked "
                                "by the vpn service (dexter-vpn); start one and try again");
    return reply? reply: s_submit (self, request, waiter, kind, user);
}

json_t *
sch_vpn_user_add (sch_ctx_t *ctx, const json_t *request, void *waiter)
{
    const json_t *fields = json_object_get (request, "fields");
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) fields, key, value)
        if (strcmp (key, "name"))
            return dx_reply_error (request, DX_INVALID, key,
                                   "unknown field '%.64s': a user takes only name", key);
    const char *user = json_string_value (json_object_get (fields, "name"));
    if (!user)
        return dx_reply_error (request, DX_INVALID, "name", "name is required: the user's "
                               "name, which becomes its certificate's CN");
    if (!dx_spec_name_valid (user))
        return dx_reply_error (request, DX_INVALID, "name",
                               "user names must start with a lowercase letter and hold "
                               "only lowercase letters and digits, at most %d", DX_NAME_MAX);
    return s_request (ctx, request, waiter, s_add, user);
}

json_t *
sch_vpn_user_revoke (sch_ctx_t *ctx, const json_t *request, void *waiter)
{
    const char *user = dx_msg_str (request, "user");
    if (!dx_spec_name_valid (user))
        return dx_reply_error (request, DX_NOT_FOUND, "name",
                               "no VPN user named '%.32s': user names are 1 to %d lowercase "
                               "letters and digits, starting with a letter",
                               user? user: "", DX_NAME_MAX);
    return s_request (ctx, request, waiter, s_revoke, user);
}

json_t *
sch_vpn_user_list (sch_ctx_t *ctx, const json_t *request, json_t *loaded)
{
    (void) ctx;
    json_t *pki = s_pki (loaded);
    if (!pki)
        return dx_reply_error (request, DX_CONFLICT, NULL,
                               "cluster %s has no VPN PKI yet: it is made by its first "
                               "deploy (the vpn.server step); deploy first",
                               dx_msg_str (request, "name"));
    json_t *users = json_array ();
    size_t i;
    json_t *entry;
    json_array_foreach (json_object_get (pki, "users"), i, entry) {
        json_t *at = json_object_get (entry, "revoked_at");
        json_array_append_new (users, json_pack ("{s:O, s:O, s:O, s:b, s:O}",
                                                 "name", json_object_get (entry, "name"),
                                                 "serial", json_object_get (entry, "serial"),
                                                 "expires", json_object_get (entry, "expiry"),
                                                 "revoked", json_is_true (json_object_get (entry,
                                                                                  "revoked")),
                                                 "revoked_at", at? at: json_null ()));
    }
    json_decref (pki);
    const char *crl = sch_vpn_crl_pending (json_object_get (loaded, "deployment"))
                    ? "pending": "current";
    return dx_reply_new (request, DX_OK, json_pack ("{s:o, s:s}", "users", users, "crl", crl));
}


//  ---------------------------------------------------------------------
//  Results

/*  The reported resource of key (borrowed from msg), or NULL. */
static const json_t *
s_reported (const json_t *msg, const char *key)
{
    size_t i;
    json_t *resource;
    json_array_foreach (json_object_get (msg, "resources"), i, resource)
        if (streq (json_string_value (json_object_get (resource, "key")), key))
            return resource;
    return NULL;
}

static const char *
s_attr (const json_t *resource, const char *name)
{
    const char *value = json_string_value (json_object_get (resource, name));
    return value? value: "";
}

/*  The reply to a refusal or failure of the worker. */
static json_t *
s_refusal (const s_user_job_t *job, const json_t *msg)
{
    const json_t *error = json_object_get (msg, "error");
    const char *code = json_string_value (json_object_get (error, "code"));
    const char *message = json_string_value (json_object_get (error, "message"));
    static const struct { const char *code, *status, *field; } map [] = {
        { "VpnUserInvalid", DX_INVALID, "name" },
        { "VpnUserExists", DX_CONFLICT, "name" },
        { "VpnUserNotFound", DX_NOT_FOUND, "name" },
        { "VpnNoPki", DX_CONFLICT, NULL },
    };
    for (size_t i = 0; code && i < sizeof map / sizeof map [0]; i++)
        if (strcmp (code, map [i].code) == 0)
            return dx_reply_error (job->request, map [i].status, map [i].field, "%s",
                                   message? message: code);
    if (!json_is_true (json_object_get (error, "permanent")))
        return dx_reply_error (job->request, DX_UNAVAILABLE, NULL,
                               "the vpn worker could not do it now (%s); nothing was "
                               "changed: try again", code? code: "no code");
    return dx_reply_error (job->request, DX_INTERNAL, NULL, "%s %s failed: %s: %s", job->kind,
                           job->user, code? code: "?", message? message: "");
}

/*  Records a done result and builds its reply. */
static json_t *
s_record_result (sch_vpn_t *self, const s_user_job_t *job, const json_t *msg)
{
    const json_t *pki = s_reported (msg, "vpn.pki");
    const json_t *user = s_reported (msg, "vpn.user");
    json_t *loaded = sch_read_load (self->read, job->cluster, SCH_LOAD_CLUSTER
                                    | SCH_LOAD_DEPLOYMENT | SCH_LOAD_RESOURCES);
    if (!loaded)
        return sch_store_error_reply (self->store, job->request);
    const json_t *recorded = json_object_get (json_object_get (loaded, "resources"), "vpn.pki");
    //  Only the PKI it was given, changed: the same CA
    if (!pki || !user || !recorded
    ||  !streq (s_attr (pki, "provider_id"), s_attr (recorded, "provider_id"))
    ||  !*s_attr (pki, "pki")) {
        json_decref (loaded);
        dx_error ("cluster %s: %s %s: the vpn worker's result is not the recorded PKI's; "
                  "nothing recorded", job->cluster, job->kind, job->user);
        return dx_reply_error (job->request, DX_INTERNAL, NULL, "the vpn worker's result "
                               "for %s is not of the recorded PKI", job->cluster);
    }
    json_t *resource = json_deep_copy (recorded);
    int add = job->kind == s_add;
    //  The record as it is once this is recorded, for the CRL's state
    json_t *record = json_deep_copy (json_object_get (loaded, "deployment"));
    if (!add)
        json_object_set_new (record, "vpn_crl", json_string (s_attr (user, "crl_number")));
    int pending = sch_vpn_crl_pending (record);
    json_decref (record);
    json_decref (loaded);
    json_object_set_new (resource, "pki", json_string (s_attr (pki, "pki")));
    json_t *fields = add? json_object (): json_pack ("{s:s}", "vpn_crl",
                                                     s_attr (user, "crl_number"));
    json_t *set = json_pack ("{s:O}", "vpn.pki", resource);
    json_t *event = add? json_pack ("{s:s, s:s}", "user", job->user,
                                    "serial", s_attr (user, "serial"))
                       : json_pack ("{s:s, s:s, s:s}", "user", job->user,
                                    "serial", s_attr (user, "serial"),
                                    "crl_number", s_attr (user, "crl_number"));
    sch_store_change_t change = {
        .deployment = fields, .resources_set = set,
        .event_type = add? "vpn.user.added": "vpn.user.revoked", .event = event
    };
    char now [32];
    int rc = sch_store_deployment_change (self->store, job->cluster, &change,
                                          sch_now (now, sizeof now), NULL);
    json_decref (fields);
    json_decref (set);
    json_decref (event);
    if (rc < 0) {
        json_decref (resource);
        dx_error ("cluster %s: %s %s done but not recorded: %s", job->cluster, job->kind,
                  job->user, sch_store_error (self->store));
        return sch_store_error_reply (self->store, job->request);
    }
    sch_engine_resource_set (self->engine, job->cluster, "vpn.pki", resource);
    json_decref (resource);
    long long serial = strtoll (s_attr (user, "serial"), NULL, 10);
    dx_info ("cluster %s: vpn user %s %s (serial %lld)", job->cluster, job->user,
             add? "issued": "revoked", serial);
    if (!add)
        return dx_reply_new (job->request, DX_OK,
                             json_pack ("{s:s, s:I, s:s, s:b, s:s, s:s}", "name", job->user,
                                        "serial", (json_int_t) serial,
                                        "revoked_at", s_attr (user, "revoked_at"),
                                        "revoked", 1, "crl", pending? "pending": "current",
                                        "message", pending
                                        ? "the certificate is on the cluster's new CRL, which "
                                          "is pending: the next deploy writes it into the "
                                          "access node's tags, which the node reads within a "
                                          "minute (docs/vpn.md, \"Users\")"
                                        : "the certificate is on the CRL the access node "
                                          "has already"));
    size_t len = 0;
    char *profile = dx_seal_open (self->seal, s_attr (user, "profile"), &len);
    if (!profile)
        return dx_reply_error (job->request, DX_INTERNAL, NULL, "the profile of vpn user %s "
                               "cannot be opened: the vpn worker and the scheduler must "
                               "have the same master key", job->user);
    json_t *body = json_pack ("{s:s, s:I, s:s, s:s%}", "name", job->user,
                              "serial", (json_int_t) serial,
                              "expires", s_attr (user, "expires"),
                              "profile", profile, len);
    dx_seal_free (profile, len);
    json_t *reply = dx_reply_new (job->request, DX_CREATED, body);
    return reply;
}

int
sch_vpn_crl_pending (const json_t *record)
{
    const char *newest = json_string_value (json_object_get (record, "vpn_crl"));
    const char *delivered = json_string_value (json_object_get (record, "vpn_crl_delivered"));
    long long n = newest? strtoll (newest, NULL, 10): 0;
    long long at = delivered && *delivered? strtoll (delivered, NULL, 10): 1;
    return n > at;
}

/*  The engine's side: job messages of our jobs. */
static int
s_on_job (void *arg, const char *worker, const char *name, const json_t *msg)
{
    sch_vpn_t *self = (sch_vpn_t *) arg;
    (void) name;
    s_user_job_t *job = s_find (self, dx_msg_str (msg, "job"));
    if (!job || dx_msg_int (msg, "attempt", 0) != 1)
        return 0;
    const char *type = dx_msg_type (msg);
    if (strcmp (type, "job.renew") == 0)
        job->lease_expiry = dx_mono_ms () + self->lease_ms;
    if (strcmp (type, "job.result"))
        return 1;
    sch_broker_release (self->broker, job->worker);
    (void) worker;
    const char *outcome = dx_msg_str (msg, "outcome");
    json_t *reply = streq (outcome, "done")? s_record_result (self, job, msg)
                                           : s_refusal (job, msg);
    s_finish (self, job, reply);
    s_dispatch (self);
    return 1;
}

/*  The engine's side: a worker gone takes its jobs with it. */
static void
s_on_gone (void *arg, const char *worker, const char *name)
{
    sch_vpn_t *self = (sch_vpn_t *) arg;
    size_t count;
    s_user_job_t **jobs = s_snapshot (self, &count);
    for (size_t i = 0; i < count; i++)
        if (jobs [i]->worker && strcmp (jobs [i]->worker, worker) == 0) {
            dx_warn ("cluster %s: %s %s lost its worker %s", jobs [i]->cluster,
                     jobs [i]->kind, jobs [i]->user, name? name: worker);
            s_finish (self, jobs [i], dx_reply_error (jobs [i]->request, DX_UNAVAILABLE, NULL,
                                                      "the vpn worker running it is gone; "
                                                      "nothing was changed: try again"));
        }
    free (jobs);
}

/*  The engine's side: vpn.server waits while a user job of its cluster
    runs. */
static int
s_holds (void *arg, const char *cluster, const char *kind)
{
    return strcmp (kind, "vpn.server") == 0 && s_cluster_busy ((sch_vpn_t *) arg, cluster);
}


//  ---------------------------------------------------------------------
//  The module

sch_vpn_t *
sch_vpn_new (sch_store_t *store, dx_seal_t *seal, sch_broker_t *broker, sch_engine_t *engine)
{
    sch_vpn_t *self = (sch_vpn_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->store = store;
    self->read = sch_store_read (store);
    self->seal = seal;
    self->broker = broker;
    self->engine = engine;
    self->lease_ms = sch_engine_lease_ms (engine);
    self->jobs = zlistx_new ();
    if (!self->jobs) {
        free (self);
        return NULL;
    }
    zlistx_set_destructor (self->jobs, s_job_destroy);
    sch_engine_side_t side = { .job = s_on_job, .gone = s_on_gone, .holds = s_holds };
    sch_engine_set_side (engine, &side, self);
    return self;
}

void
sch_vpn_destroy (sch_vpn_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sch_vpn_t *self = *self_p;
    sch_engine_set_side (self->engine, NULL, NULL);
    s_user_job_t *job;
    while ((job = (s_user_job_t *) zlistx_first (self->jobs)))
        s_finish (self, job, NULL);
    zlistx_destroy (&self->jobs);
    free (self);
    *self_p = NULL;
}

void
sch_vpn_set_answer (sch_vpn_t *self, sch_vpn_answer_fn *fn, void *arg)
{
    self->answer = fn;
    self->answer_arg = arg;
}

int64_t
sch_vpn_tick (sch_vpn_t *self)
{
    int64_t now = dx_mono_ms ();
    size_t count;
    s_user_job_t **jobs = s_snapshot (self, &count);
    for (size_t i = 0; i < count; i++) {
        s_user_job_t *job = jobs [i];
        if (!job->worker || job->lease_expiry > now)
            continue;
        dx_warn ("cluster %s: %s %s: its lease expired", job->cluster, job->kind, job->user);
        json_t *cancel = dx_msg_new ("job.cancel", NULL);
        json_object_set_new (cancel, "job", json_string (job->id));
        json_object_set_new (cancel, "attempt", json_integer (1));
        sch_broker_send_to (self->broker, job->worker, cancel, 0);
        sch_broker_release (self->broker, job->worker);
        s_finish (self, job, dx_reply_error (job->request, DX_UNAVAILABLE, NULL,
                                             "the vpn worker did not finish in time; "
                                             "nothing was changed: try again"));
    }
    free (jobs);
    s_dispatch (self);
    int64_t next = now + S_IDLE_MS;
    for (s_user_job_t *job = (s_user_job_t *) zlistx_first (self->jobs); job;
         job = (s_user_job_t *) zlistx_next (self->jobs))
        if (job->worker && job->lease_expiry < next)
            next = job->lease_expiry;
    return next;
}
