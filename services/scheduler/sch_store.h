/*  sch_store: all of the scheduler's Redis access, and so the key schema
    (docs/redis.md is its description for operators; keep the two in step).

    Every key of a cluster carries its name as a hash tag, dexter:{NAME}:...,
    so one cluster lives in one Redis Cluster slot; the index of clusters is
    the sorted set dexter:clusters. Reads of one request are one pipelined
    round trip, and the reads of many requests can share one (read
    batches, below); every change is one MULTI/EXEC transaction that also appends
    its event to the cluster's stream. The scheduler is the only writer and
    handles one request at a time, so a read followed by a transaction is a
    safe read-modify-write.

    Functions returning int give 0 on success and -1 on failure; failures
    set the store's error (sch_store_status: UNAVAILABLE when Redis cannot be
    reached, INTERNAL for anything else) and sch_store_error_reply turns it
    into a reply. Values given to and returned by this module are never
    plaintext secrets: the caller seals them first. */
#ifndef SCH_STORE_H
#define SCH_STORE_H

#include <jansson.h>
#include <stdint.h>

typedef struct sch_store sch_store_t;

/*  Parses url (redis://[[user]:password@]host[:port][/db] or
    unix:///path/to.sock[?db=N]) and tries to connect once; Redis being down
    is not a failure (requests get UNAVAILABLE and sch_store_tick retries).
    NULL only when the URL is malformed (logged). */
sch_store_t *sch_store_new (const char *url);

void sch_store_destroy (sch_store_t **self_p);

/*  Connects if not connected. 0 when connected. Attempts are spaced by at
    least 100 ms so a storm of requests cannot hammer a Redis that is down. */
int sch_store_connect (sch_store_t *self);

/*  Cron: reconnects when disconnected (logs when Redis comes back). */
void sch_store_tick (sch_store_t *self);

/*  1 when a connection is up. */
int sch_store_connected (sch_store_t *self);

/*  "host:port" or the socket path: what logs and messages name. Borrowed. */
const char *sch_store_address (sch_store_t *self);

/*  Status code (DX_UNAVAILABLE or DX_INTERNAL) and sentence of the last
    failure. Borrowed. */
const char *sch_store_status (sch_store_t *self);
const char *sch_store_error (sch_store_t *self);

/*  Error reply to request for the last failure. Caller owns. */
json_t *sch_store_error_reply (sch_store_t *self, const json_t *request);


//  ---------------------------------------------------------------------
//  Reads

/*  What sch_store_load reads, or-ed together. */
#define SCH_LOAD_CLUSTER     0x01
#define SCH_LOAD_CONFIG      0x02
#define SCH_LOAD_SECRETS     0x04
#define SCH_LOAD_GROUPS      0x08
#define SCH_LOAD_DEPLOYMENT  0x10
#define SCH_LOAD_JOBS        0x20
#define SCH_LOAD_RESOURCES   0x40
#define SCH_LOAD_ALL         0x7f

/*  Reads the parts of cluster name that `what` asks for, in one round trip,
    into a new object (caller owns) with these members:
      cluster:    {name, provider, type, created_at, updated_at} or null
      config:     the typed config object (masters a number, the
                  <secret>_fingerprint fields, updated_at) or null
      secrets:    {secret name: sealed value}
      groups:     {group name: group object}
      deployment: {state, command, generation, observed_generation,
                  parallelism, steps_done, steps_total, current, waiting,
                  last_error, created_at, updated_at, accessip}, numbers as
                  numbers, "" as null; null if there is no record
      jobs:       {step id: job record} of the current plan
      resources:  {resource key: resource} as the workers reported them
    Members not asked for are absent. NULL on failure. */
json_t *sch_store_load (sch_store_t *self, const char *name, unsigned what);

/*  Every cluster, sorted by name, as [{name, provider, type, state,
    created_at}] (caller owns). One ZRANGE, then one pipelined HMGET of the
    cluster hash per cluster (it mirrors the deployment state). NULL on
    failure. */
json_t *sch_store_cluster_list (sch_store_t *self);

/*  One generation's snapshot of the spec, as stored (caller owns). NULL with
    no error set when there is none, NULL with the error set on failure. */
json_t *sch_store_snapshot (sch_store_t *self, const char *name, int64_t generation);

/*  The sealed deployment credentials (caller frees), NULL when none (error
    unset) or on failure (error set). */
char *sch_store_credentials (sch_store_t *self, const char *name);

/*  Events of the cluster's stream after id `after` (exclusive; NULL from the
    start), at most count, oldest first, as [{id, time, type, ...}] (caller
    owns). NULL on failure. */
json_t *sch_store_events (sch_store_t *self, const char *name, const char *after,
                          int64_t count);


//  ---------------------------------------------------------------------
//  Read batches: the reads of many requests in one round trip
//
//  sch_store_queue_* appends a read to the store's batch and returns its
//  ticket (>= 0, consecutive in queue order; -1 with the error set when out
//  of memory); nothing is sent.
//  sch_store_read_flush sends every queued read in one pipelined write and
//  reads all the replies (-1 with the error set, UNAVAILABLE when Redis is
//  down: every read of the batch failed). sch_store_*_result then decodes
//  one ticket's replies exactly as the one-shot read above would (caller
//  owns; NULL with the error set on failure), and sch_store_read_reset
//  forgets the batch. Reads have no effect, so the order within a batch is
//  free; the caller flushes before any change so that a read sees every
//  change requested before it.
//
//  Queued loads of the parts CLUSTER, CONFIG, GROUPS and DEPLOYMENT only
//  are kept in a read cache and served from it, without Redis, until a
//  change names the cluster (at most SCH_CACHE_TTL_MS; see sch_store.c).
//  The object sch_store_load_result returns is the caller's, but the
//  parts in it may be shared with the cache: a caller may add or replace
//  members of the object, never change a part. The one-shot reads above,
//  which changes and the engine use, always read Redis.

int sch_store_queue_load (sch_store_t *self, const char *name, unsigned what);
int sch_store_queue_list (sch_store_t *self);
int sch_store_queue_events (sch_store_t *self, const char *name, const char *after,
                            int64_t count);

int sch_store_read_flush (sch_store_t *self);

json_t *sch_store_load_result (sch_store_t *self, int ticket);
/*  The list needs the names first: its HMGETs are a second round trip. */
json_t *sch_store_list_result (sch_store_t *self, int ticket);
json_t *sch_store_events_result (sch_store_t *self, int ticket);

void sch_store_read_reset (sch_store_t *self);

/*  Memos: what a caller made of a kept load (e.g. an answer's JSON text),
    kept beside it under key and forgotten with it, so that the next
    request served from the same kept read need not make it again. A memo
    must depend on nothing but the parts and the key. sch_store_memo gives
    the memo (borrowed, valid until the next call on the store), NULL when
    there is none or the ticket's load is not the read the cache holds;
    sch_store_memo_put keeps text (a reference is taken) when it is, after
    sch_store_load_result. */
json_t *sch_store_memo (sch_store_t *self, int ticket, const char *key);
void sch_store_memo_put (sch_store_t *self, int ticket, const char *key, json_t *text);


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
                     integer members of event become its fields) */
typedef struct {
    const json_t *deployment;
    const json_t *jobs;
    const json_t *resources_set;
    const json_t *resources_del;
    int drop_credentials;
    int drop_resources;
    const char *event_type;
    const json_t *event;
} sch_store_change_t;

int sch_store_deployment_change (sch_store_t *self, const char *name,
                                 const sch_store_change_t *change, const char *now);

/*  Forgets the deployment: record back to init (created_at = now) but at
    generation, the last one requested (numbers are never used twice),
    specs, credentials, the plan and the recorded resources deleted; event
    deployment.deleted. */
int sch_store_deployment_reset (sch_store_t *self, const char *name, const char *now,
                                long long generation);


//  ---------------------------------------------------------------------
//  Key names, for tests and tools

/*  Writes dexter:{name}:part into buf. Returns buf. */
char *sch_store_key (char *buf, size_t size, const char *name, const char *part);

/*  NULL-terminated list of the per-cluster key parts (cluster, config, ...):
    what cluster delete removes. */
extern const char *sch_store_parts [];

#define SCH_STORE_INDEX "dexter:clusters"
#define SCH_EVENTS_MAXLEN "10000"

#endif
