/*  sch_handlers: one function per request type of proto/PROTOCOL.md.

    A handler gets a decoded, schema-checked request and returns its reply
    (caller owns; never NULL unless out of memory). It reads what it needs
    with one sch_store_load (a read handler: one queued load), applies the state rules of docs/api.md, and
    makes its change in one sch_store transaction. Reply bodies have exactly
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
    dx_seal_t *seal;            /* borrowed */
    sch_broker_t *broker;       /* borrowed; NULL: no worker endpoint (tests) */
    sch_engine_t *engine;       /* borrowed; NULL: deployments never run (tests) */
} sch_ctx_t;

typedef json_t *(sch_handler_fn) (sch_ctx_t *ctx, const json_t *request);

/*  A read-only request type is served in two halves, so that the reads of a
    burst of requests share one Redis round trip (see sch_server.c):
    queue appends the request's reads to the store's read batch and sets
    *ticket, or returns the reply at once when no read is needed (an
    invalid request, say); after the flush, reply builds the reply from the
    results of that ticket. Neither may change anything. A read that only
    loads its cluster has no queue half: its row in sch_server.c names what
    to load, and the loop queues that with sch_queue_cluster. */
typedef json_t *(sch_queue_fn) (sch_ctx_t *ctx, const json_t *request, int *ticket);
typedef json_t *(sch_reply_fn) (sch_ctx_t *ctx, const json_t *request, int ticket);

/*  sch_cluster.c: clusters, their config and their groups. */
json_t *sch_cluster_list_queue (sch_ctx_t *ctx, const json_t *request, int *ticket);
json_t *sch_cluster_list_reply (sch_ctx_t *ctx, const json_t *request, int ticket);
json_t *sch_cluster_create (sch_ctx_t *ctx, const json_t *request);
json_t *sch_cluster_get_reply (sch_ctx_t *ctx, const json_t *request, int ticket);
json_t *sch_cluster_delete (sch_ctx_t *ctx, const json_t *request);
json_t *sch_config_get_reply (sch_ctx_t *ctx, const json_t *request, int ticket);
json_t *sch_config_put (sch_ctx_t *ctx, const json_t *request);
json_t *sch_config_delete (sch_ctx_t *ctx, const json_t *request);
json_t *sch_group_list_reply (sch_ctx_t *ctx, const json_t *request, int ticket);
json_t *sch_group_upsert (sch_ctx_t *ctx, const json_t *request);
json_t *sch_group_get_reply (sch_ctx_t *ctx, const json_t *request, int ticket);
json_t *sch_group_update (sch_ctx_t *ctx, const json_t *request);
json_t *sch_group_delete (sch_ctx_t *ctx, const json_t *request);

/*  sch_deployment.c: the deployment record, its snapshots and events. */
json_t *sch_deployment_get_reply (sch_ctx_t *ctx, const json_t *request, int ticket);
json_t *sch_deployment_put (sch_ctx_t *ctx, const json_t *request);
json_t *sch_deployment_delete (sch_ctx_t *ctx, const json_t *request);
json_t *sch_deployment_vpn_reply (sch_ctx_t *ctx, const json_t *request, int ticket);
json_t *sch_deployment_events_queue (sch_ctx_t *ctx, const json_t *request, int *ticket);
json_t *sch_deployment_events_reply (sch_ctx_t *ctx, const json_t *request, int ticket);

/*  Shared by both files (sch_cluster.c). */

/*  The current time as ISO 8601 UTC with milliseconds into buf (32 bytes). */
char *sch_now (char *buf, size_t size);

/*  Loads cluster `name` with `what` (SCH_LOAD_CLUSTER is always added).
    Returns the loaded object, or NULL with *reply_p set to the reply to
    send: NOT_FOUND naming the cluster, or the store's error. */
json_t *sch_load_cluster (sch_ctx_t *ctx, const json_t *request, unsigned what,
                          json_t **reply_p);

/*  The two halves of sch_load_cluster for read handlers: queues the load
    (NULL, or the reply when it cannot be queued), then gets it from the
    flushed batch (as sch_load_cluster). */
json_t *sch_queue_cluster (sch_ctx_t *ctx, const json_t *request, unsigned what,
                           int *ticket);
json_t *sch_loaded_cluster (sch_ctx_t *ctx, const json_t *request, int ticket,
                            json_t **reply_p);

/*  NULL if provider (from the request) matches the cluster's, else the
    CONFLICT reply to send. */
json_t *sch_check_provider (const json_t *request, const json_t *loaded);

/*  The deployment object of docs/api.md built from a loaded record. */
json_t *sch_deployment_object (const char *name, const json_t *record);

#endif
