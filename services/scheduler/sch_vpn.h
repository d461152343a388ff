/*  sch_vpn: a cluster's VPN users (proto/PROTOCOL.md, "VPN users";
    docs/vpn.md, "Users"). Issuing and revoking need the cluster's CA key,
    which only the vpn service opens, so each request becomes a job of
    the vpn workers, sent through the deployment engine's broker like any
    step (job.assign, job.renew, job.result, leases), and is answered when
    its result comes:

        api --vpnuser.add--> server --job vpn.user.add--> vpn worker
        api <--reply------- sch_vpn <--job.result-------

    - vpnuser.add and vpnuser.revoke are checked first against what Redis
      holds (the cluster, its recorded PKI, the user); a request that
      fails a check is answered at once and changes nothing. One that
      passes is queued; sch_server keeps its requester (the waiter) until
      sch_vpn answers through the answer callback.
    - One job of a cluster at a time, in the order they came, and none
      while the cluster's vpn.server step runs; the engine in turn holds
      back vpn.server while one runs (sch_engine_set_side). Each job gets
      the PKI as Redis has it when it starts.
    - A done result is recorded in one store transaction: the `vpn.pki`
      resource with the new PKI (users, CRL), an event, and, for a
      revocation, the deployment's `vpn_crl`, the new CRL's number: the
      CRL is pending (sch_vpn_crl_pending) until an access node is
      launched with a bundle that has it (the engine records
      `vpn_crl_delivered`). A deployment in progress sees the new
      resource (sch_engine_resource_set).
      The user's profile (sealed by the worker) is opened into the reply
      and never recorded.
    - A refusal of the worker maps to INVALID, CONFLICT or NOT_FOUND; a
      worker lost, a lease run out, or a failure for now is UNAVAILABLE:
      nothing was recorded. A job still queued when its request's
      deadline passes is dropped unanswered (the api has answered 503).
    - vpnuser.list answers the recorded users at once.

    The scheduler has one sch_vpn, made by sch_server_set_engine. */
#ifndef SCH_VPN_H
#define SCH_VPN_H

#include <stdint.h>
#include <jansson.h>
#include "sch_handlers.h"

typedef struct sch_vpn sch_vpn_t;

/*  Answers waiter with reply (taken); reply NULL: frees waiter unanswered. */
typedef void (sch_vpn_answer_fn) (void *arg, void *waiter, json_t *reply);

/*  The users' jobs on store, seal, broker and engine (all borrowed): sets
    the engine's side (sch_engine_set_side). NULL when out of memory. */
sch_vpn_t *sch_vpn_new (sch_store_t *store, dx_seal_t *seal, sch_broker_t *broker,
                        sch_engine_t *engine);

/*  Frees every waiter unanswered and unsets the engine's side; safe on
    NULL; sets *self_p to NULL. */
void sch_vpn_destroy (sch_vpn_t **self_p);

void sch_vpn_set_answer (sch_vpn_t *self, sch_vpn_answer_fn *fn, void *arg);

/*  vpnuser.add (fields.name) and vpnuser.revoke (user): the reply when
    the request is answered at once (refused), else NULL: waiter (owned
    by the caller until answered) gets the reply later. */
json_t *sch_vpn_user_add (sch_ctx_t *ctx, const json_t *request, void *waiter);
json_t *sch_vpn_user_revoke (sch_ctx_t *ctx, const json_t *request, void *waiter);

/*  vpnuser.list: the users of the recorded PKI (a loaded handler: loaded
    holds the deployment and its resources). */
json_t *sch_vpn_user_list (sch_ctx_t *ctx, const json_t *request, json_t *loaded);

/*  1 if the deployment record (borrowed) says the access node lacks the
    newest CRL: `vpn_crl`, the number of the CRL of the last revocation,
    is above `vpn_crl_delivered`, that of the bundle the access node was
    launched with (the empty CRL, 1, when it was launched before any). */
int sch_vpn_crl_pending (const json_t *record);

/*  Starts the jobs that may start, expires leases and drops the jobs
    whose requests are past their deadline. Returns the monotonic time
    (dx_mono_ms) by which it wants to be called again. */
int64_t sch_vpn_tick (sch_vpn_t *self);

#endif
