/*  sch_store: the scheduler's state in Redis. It holds the connection
    (sch_redis), the read cache (sch_cache) and the reads (sch_read), and is
    here the key schema and every change (docs/redis.md describes the
    schema for operators; keep the two in step).

    Every key of a cluster carries its name as a hash tag, dexter:{NAME}:...,
    so one cluster lives in one Redis Cluster slot; the index of clusters is
    the sorted set dexter:clusters. Every change is one MULTI/EXEC
    transaction that also appends its event to the cluster's stream, and
    the read cache forgets the cluster before it is sent, whatever becomes
    of it. The scheduler is the only writer and handles one request at a
    time, so a read followed by a transaction is a safe read-modify-write.

    A change a request asks for is answered only once Redis has it; one
    that fails is not kept (the request is answered UNAVAILABLE: it may or
    may not have been made). A transition of a deployment has no one to
    answer: it is kept for Redis when Redis cannot take it (the outbox of
    sch_redis.h) and made later, in order.

    Functions returning int give 0 on success and -1 on failure; a failure
    of the store or of its parts is its connection's (sch_store_error, and
    sch_store_error_reply turns it into a reply: UNAVAILABLE when Redis
    cannot be reached, INTERNAL for anything else). Values given to this
    module are never plaintext secrets: the caller seals them first. */
#ifndef SCH_STORE_H
#define SCH_STORE_H

#include <jansson.h>
#include <stdint.h>
#include "sch_redis.h"
#include "sch_cache.h"
#include "sch_read.h"
#include "sch_states.h"

typedef struct sch_store sch_store_t;

/*  Connects to Redis at url (sch_redis_new: Redis being down is not a
    failure) with an empty read cache. NULL when the URL is malformed
    (logged) or out of memory. */
sch_store_t *sch_store_new (const char *url);

/*  Frees the store and its parts; safe on NULL; sets *self_p to NULL. */
void sch_store_destroy (sch_store_t **self_p);

/*  The store's parts, borrowed: its connection (the cron ticks it), its
    read cache (to purge after a change made behind the scheduler's back),
    and its reads. */
sch_redis_t *sch_store_redis (sch_store_t *self);
sch_cache_t *sch_store_cache (sch_store_t *self);
sch_read_t *sch_store_read (sch_store_t *self);

/*  Every cluster's deployment state and the count per state, borrowed
    (sch_states.h): the store sets a cluster's state with each change that
    writes it, and drops a deleted cluster. */
sch_states_t *sch_store_states (sch_store_t *self);

/*  The sentence of the last failure (borrowed), for logs, and the error
    reply to request for it (caller owns). The reply says what failed in
    words of its own, never Redis's text or address, which it logs. */
const char *sch_store_error (sch_store_t *self);
json_t *sch_store_error_reply (sch_store_t *self, const json_t *request);


//  ---------------------------------------------------------------------
//  Key schema

#define SCH_STORE_INDEX "dexter:clusters"

/*  Writes dexter:{name}:part into buf. Returns buf. */
char *sch_store_key (char *buf, size_t size, const char *name, const char *part);


//  ---------------------------------------------------------------------
//  Changes: each one transaction, with its event

/*  Creates the cluster: cluster hash, deployment record in state init,
    index member, event cluster.created. cluster is {name, provider, type}. */
int sch_store_cluster_create (sch_store_t *self, const json_t *cluster, const char *now);

/*  Deletes every key of the cluster and its index member. */
int sch_store_cluster_delete (sch_store_t *self, const char *name);

/*  Replaces the config: config is the normalized object (its values are
    stored as strings), fingerprints {secret: 16 hex}, sealed {secret:
    sealed value}. Bumps the cluster's updated_at; event config.updated. */
int sch_store_config_put (sch_store_t *self, const char *name, const json_t *config,
                          const json_t *fingerprints, const json_t *sealed,
                          const char *now);

/*  Deletes config and secrets; event config.deleted. */
int sch_store_config_delete (sch_store_t *self, const char *name, const char *now);

/*  Writes group (an object with name, created_at, updated_at ...) under its
    name, removing old_name first when it differs (a rename). event is the
    event type (group.created, group.updated, group.renamed). */
int sch_store_group_put (sch_store_t *self, const char *name, const char *old_name,
                         const json_t *group, const char *event, const char *now);

/*  Deletes group; event group.deleted. */
int sch_store_group_delete (sch_store_t *self, const char *name, const char *group,
                            const char *now);

/*  Starts a deployment: stores snapshot (a JSON object, no plaintext) as
    generation, the sealed credentials, and the deployment record fields of
    deployment (merged into the hash), and the plan: jobs (array of job
    records with `id`) replaces the previous plan; event
    deployment.requested. */
int sch_store_deployment_start (sch_store_t *self, const char *name, int64_t generation,
                                const json_t *snapshot, const char *sealed_credentials,
                                const json_t *deployment, const json_t *jobs,
                                const char *now);

/*  What one transition of a running deployment changes (sch_engine), all
    in one transaction. Every member may be NULL (nothing of that kind):
      deployment:    fields of the record to set (null written as ""); its
                     `state`, when present, is mirrored into the cluster
      jobs:          {step id: job record} to set
      resources_set: {key: resource} to set; resources_del: [key] to delete
      drop_credentials: delete the sealed credentials (the deployment ended)
      drop_resources:   delete every resource record (all destroyed)
      event_type, event: one event appended to the stream (string and
                     integer members of event become its fields)
      events_type, events: more events of that type (an array of
                     objects), appended before event (a batch step's
                     host.done, one per host)
    Returns 0 when Redis has it, 1 when it is kept for Redis (numbered
    *serial, when not NULL: sch_redis_written), -1 when Redis refused it
    for good (logged; sch_redis_write). */
typedef struct {
    const json_t *deployment;
    const json_t *jobs;
    const json_t *resources_set;
    const json_t *resources_del;
    int drop_credentials;
    int drop_resources;
    const char *event_type;
    const json_t *event;
    const char *events_type;
    const json_t *events;
} sch_store_change_t;

int sch_store_deployment_change (sch_store_t *self, const char *name,
                                 const sch_store_change_t *change, const char *now,
                                 uint64_t *serial);

/*  Forgets the deployment: record back to init (created_at = now) but at
    generation, the last one requested (numbers are never used twice),
    specs, credentials, the plan and the recorded resources deleted; event
    deployment.deleted. */
int sch_store_deployment_reset (sch_store_t *self, const char *name, const char *now,
                                long long generation);

#endif
