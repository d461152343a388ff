/*  sch_handlers: one function per request type of proto/PROTOCOL.md, and
    what they share (sch_handlers.c).

    A handler gets a decoded, schema-checked request and returns its reply
    (caller owns; never NULL unless out of memory). A change loads what it
    needs with one sch_read_load, checks in the order users see (the
    cluster exists: NOT_FOUND; the request's fields are valid for the
    cluster's provider: INVALID; the state rules of docs/api.md: CONFLICT
    ...), and makes its change in one sch_store transaction. A read only
    reads, through the read batch (sch_read.h). Reply bodies have exactly
    the shapes of docs/api.md. Handlers never log or return a secret. */
#ifndef SCH_HANDLERS_H
#define SCH_HANDLERS_H

#include <jansson.h>
#include "dx_seal.h"
#include "sch_store.h"
#include "sch_broker.h"
#include "sch_engine.h"

typedef struct {
    sch_store_t *store;         /* borrowed */
    sch_read_t *read;           /* borrowed: the store's reads */
    dx_seal_t *seal;            /* borrowed */
    sch_broker_t *broker;       /* borrowed; NULL: no worker endpoint (tests) */
    sch_engine_t *engine;       /* borrowed; NULL: deployments never run (tests) */
    const char *dcos_installer_url;  /* DEXTER_DCOS_INSTALLER_URL; NULL or "": a dcos
                                        deploy is refused (sch_deployment.c) */
    struct sch_vpn *vpn;        /* the VPN users' jobs (sch_vpn.h); NULL without an engine */
    int aws_batch_max;          /* DEXTER_AWS_BATCH_MAX, for aws snapshots (sch_plan.h) */
} sch_ctx_t;

/*  A change. */
typedef json_t *(sch_change_fn) (sch_ctx_t *ctx, const json_t *request);

/*  A read is served in two halves, so that the reads of a burst of
    requests share one Redis round trip (see sch_server.c): queue appends
    the request's reads to the read batch and sets *ticket, or returns the
    reply at once when no read is needed (an invalid request, say); after
    the flush, reply builds the reply from the results of that ticket. */
typedef json_t *(sch_queue_fn) (sch_ctx_t *ctx, const json_t *request, int *ticket);
typedef json_t *(sch_reply_fn) (sch_ctx_t *ctx, const json_t *request, int ticket);

/*  A read that only loads its cluster: its row in sch_server.c names the
    parts to load, the loop queues the load and, when the cluster exists,
    has the handler answer from loaded (borrowed; the handler may add or
    replace members, never change one). */
typedef json_t *(sch_loaded_fn) (sch_ctx_t *ctx, const json_t *request, json_t *loaded);

/*  A change answered later: returns the reply when it is answered at
    once, else NULL, and then whoever took waiter (sch_vpn) answers it
    through the server (sch_server.c). */
typedef json_t *(sch_defer_fn) (sch_ctx_t *ctx, const json_t *request, void *waiter);

/*  sch_cluster.c: clusters, their config and their groups (the list of
    clusters is read in slices: sch_list.h). */
json_t *sch_cluster_create (sch_ctx_t *ctx, const json_t *request);
json_t *sch_cluster_get (sch_ctx_t *ctx, const json_t *request, json_t *loaded);
json_t *sch_cluster_delete (sch_ctx_t *ctx, const json_t *request);
json_t *sch_config_get (sch_ctx_t *ctx, const json_t *request, json_t *loaded);
json_t *sch_config_put (sch_ctx_t *ctx, const json_t *request);
json_t *sch_config_delete (sch_ctx_t *ctx, const json_t *request);
json_t *sch_group_list (sch_ctx_t *ctx, const json_t *request, json_t *loaded);
json_t *sch_group_upsert (sch_ctx_t *ctx, const json_t *request);
json_t *sch_group_get (sch_ctx_t *ctx, const json_t *request, json_t *loaded);
json_t *sch_group_update (sch_ctx_t *ctx, const json_t *request);
json_t *sch_group_delete (sch_ctx_t *ctx, const json_t *request);

/*  sch_deployment.c: the deployment record, its snapshots and events. */
json_t *sch_deployment_get (sch_ctx_t *ctx, const json_t *request, json_t *loaded);
json_t *sch_deployment_put (sch_ctx_t *ctx, const json_t *request);
json_t *sch_deployment_delete (sch_ctx_t *ctx, const json_t *request);
json_t *sch_deployment_vpn (sch_ctx_t *ctx, const json_t *request, json_t *loaded);
json_t *sch_deployment_events_queue (sch_ctx_t *ctx, const json_t *request, int *ticket);
json_t *sch_deployment_events_reply (sch_ctx_t *ctx, const json_t *request, int ticket);


//  ---------------------------------------------------------------------
//  Shared by the handlers (sch_handlers.c)

/*  The current time as ISO 8601 UTC with milliseconds into buf (32 bytes). */
char *sch_now (char *buf, size_t size);

/*  Loads cluster `name` with `what` (SCH_LOAD_CLUSTER is always added).
    Returns the loaded object (caller owns), or NULL with *reply_p set to
    the reply to send: NOT_FOUND naming the cluster, or the store's error. */
json_t *sch_load_cluster (sch_ctx_t *ctx, const json_t *request, unsigned what,
                          json_t **reply_p);

/*  The two halves of sch_load_cluster for reads: queues the load (NULL,
    or the reply when it cannot be queued), then gets it from the flushed
    batch (as sch_load_cluster). */
json_t *sch_queue_cluster (sch_ctx_t *ctx, const json_t *request, unsigned what,
                           int *ticket);
json_t *sch_loaded_cluster (sch_ctx_t *ctx, const json_t *request, int ticket,
                            json_t **reply_p);

/*  The provider of a loaded cluster (borrowed), NULL if it has none. */
const char *sch_provider (const json_t *loaded);

/*  The groups of a loaded object as an array sorted by name (caller owns;
    the groups are shared). */
json_t *sch_groups (const json_t *groups);

/*  What the request's `fields` are validated as. */
typedef enum { SCH_FIELDS_CONFIG, SCH_FIELDS_GROUP, SCH_FIELDS_DEPLOYMENT } sch_fields_t;

/*  The request's `fields` (the body as the api parsed it) validated and
    normalized by common/dx_spec for the loaded cluster's provider: the
    object (caller owns), the secret values, for a config or a deployment,
    added to secrets (plaintext: wipe them with sch_wipe before freeing).
    NULL with *reply_p set to INVALID with the field and message of the
    first fault and errors, every fault (NULL when out of memory). */
json_t *sch_fields (sch_fields_t kind, const json_t *request, const json_t *loaded,
                    json_t *secrets, json_t **reply_p);

/*  INVALID when the groups of a loaded cluster (name -> group), once spec
    (may be NULL) takes the place of the group named replaced (may be
    NULL), are more than DX_CLUSTER_GROUPS_MAX (field `name`) or hold more
    than DX_CLUSTER_HOSTS_MAX hosts together (field `hosts`), else NULL. */
json_t *sch_groups_check (const json_t *request, const json_t *groups, const json_t *spec,
                          const char *replaced);

/*  Overwrites the string members of object (a plaintext secret's last
    copies) with zeroes; safe on NULL. */
void sch_wipe (json_t *object);

/*  The deployment state of a loaded cluster, "init" without a record.
    Borrowed from loaded. */
const char *sch_state (const json_t *loaded);

/*  1 if a deployment runs in state (deploying, destroying). */
int sch_state_running (const char *state);

/*  1 if cloud resources may exist in state: a deployment started and its
    destroy did not end (deploying, deployed, deploy_failed, destroying,
    destroy_failed). */
int sch_state_holds (const char *state);

#define SCH_STATE_SIZE 32               /* holds any deployment state */

/*  What a delete checks first, as it may lose track of cloud resources:
    reads the deployment state of the request's cluster (into state, of
    SCH_STATE_SIZE) and, when generation is not NULL, its generation. NULL
    when the delete may go on, else the reply: NOT_FOUND, the store's
    error, or CONFLICT while a deployment runs (if running_refuses) or
    while resources may exist and the request is not forced. */
json_t *sch_delete_check (sch_ctx_t *ctx, const json_t *request, int running_refuses,
                          char *state, json_int_t *generation);

#endif
