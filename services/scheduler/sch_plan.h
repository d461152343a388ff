/*  sch_plan: turns a spec snapshot (one generation) and the recorded actual
    resources into the steps of a deployment, in dependency order. A pure
    function of its inputs: no Redis, no clock, no randomness, so the same
    inputs always give the same plan, and tests call it directly.

    The steps and what each asks a worker to do are proto/PROTOCOL.md,
    "Steps: what a job asks a worker to do". A plan is a sequence of jobs:

        {"id": "host.g1.3", "kind": "host", "needs": ["network", ...],
         "step": { the step map of PROTOCOL.md, without `context` }}

    in an order where every job comes after the jobs it needs.

    Deploy: the provider's leading steps, network; security (needs
    network); image; keypair (aws only); then vpn.server (the cluster's
    PKI and the access node's server bundle, run by the vpn service);
    the access node (needs every leading step and vpn.server);
    vpn.profile (needs host.access, whose public address it names);
    access.crl (needs host.access) when the snapshot has `vpn_crl`, a
    CRL the running access node does not have yet: the provider's worker
    writes it into the access node's tags, which the node reads;
    every master and every host of every group (each needs every
    leading step); the host steps of a dcos cluster carry the snapshot's
    `dcos_installer_url` (the scheduler's DEXTER_DCOS_INSTALLER_URL when
    the snapshot was taken);
    and a `remove` for every recorded host
    that is no longer wanted: a group that shrank loses its highest slots
    (its newest hosts), a deleted group all of them. On aws, with the
    snapshot's `aws_batch_max` above 0 (the scheduler's setting when the
    snapshot was taken, so a plan made again is the same), an agent
    group's hosts are `hosts` steps (hosts.GROUP.FIRST, up to
    aws_batch_max slots each, ascending): first those of its recorded
    slots (which find their hosts and launch none; one step for all of
    them, where host steps would each wait for the scheduler's launch
    pacing), then those of the slots that no recorded host holds; and a
    group's removals are one step, remove.GROUP, with the slots and host
    names. A group of n hosts keeps its n lowest recorded slots and fills
    up with the lowest free slot numbers, so a host whose step ran but
    whose result was lost is found again (by its host name tag, or its
    batch tag and launch index) rather than duplicated.
    Destroy, each step after the one before: aws destroy.instances,
    destroy.addresses, destroy.security, destroy.network; azure
    destroy.group (the cluster's resource group, dexter-NAME). A destroy
    has no vpn step: the cluster's PKI is a recorded resource, deleted
    with the others once the destroy has finished.

    A plan is made a slice at a time (sch_plan_next), so that a big one
    never holds the scheduler's loop: its size is known at once, and since
    the same inputs give the same sequence, a plan interrupted after k jobs
    (a scheduler restart) goes on from a new plan of the same inputs that
    skips k. */
#ifndef SCH_PLAN_H
#define SCH_PLAN_H

#include <stddef.h>
#include <jansson.h>

/*  Defaults for the hosts the spec does not describe. The access node's
    sizes are offered in every region and location and run the images
    the workers pick by default (Azure's: generation 1). A config without
    master_type gets dx_spec.h's DX_SPEC_MASTER_TYPE_* for its masters. */
#define SCH_PLAN_ACCESS_TYPE_AWS   "t3.small"
#define SCH_PLAN_ACCESS_TYPE_AZURE "Standard_A1_v2"
#define SCH_PLAN_ACCESS_DISK       20
#define SCH_PLAN_MASTER_DISK       50

/*  The VPN's steps, on every provider (services/vpn, docs/vpn.md). */
#define SCH_PLAN_VPN_SERVER        "vpn.server"
#define SCH_PLAN_VPN_PROFILE       "vpn.profile"

/*  The step that delivers a new CRL to the running access node, run by
    the provider's worker (docs/vpn.md, "The CRL and the access node"). */
#define SCH_PLAN_ACCESS_CRL        "access.crl"

/*  The most agents one aws `hosts` step launches: the default of the
    scheduler's DEXTER_AWS_BATCH_MAX, and its upper limit (EC2 launches up
    to 1,000 instances at once, docs/aws.md). */
#define SCH_PLAN_AWS_BATCH_MAX     1000

typedef struct sch_plan sch_plan_t;

/*  The plan for snapshot (the JSON of dexter:{NAME}:specs, see
    docs/redis.md) given resources (object: resource key -> resource, as
    recorded from job results; NULL for none), ready to be made from its
    first job. It keeps what it needs of both (the caller may free them).
    NULL with err (size errlen) saying why: a snapshot without a config,
    or of a provider other than aws and azure, cannot be deployed. */
sch_plan_t *sch_plan_new (const json_t *snapshot, const json_t *resources,
                          char *err, size_t errlen);

/*  Frees the plan; safe on NULL; sets *self_p to NULL. */
void sch_plan_destroy (sch_plan_t **self_p);

/*  The number of jobs of the whole plan. */
size_t sch_plan_size (const sch_plan_t *self);

/*  Appends the next jobs of the plan, at most count, to the array jobs
    (new objects, the caller's to change), or, with jobs NULL, skips them.
    Returns how many; 0 once the plan is complete. */
size_t sch_plan_next (sch_plan_t *self, size_t count, json_t *jobs);

/*  The cluster's incarnation id (12 hex digits into buf of 13 bytes):
    BLAKE2b of its name and creation time, so a cluster created again
    under the same name never reuses the old one's client tokens. */
char *sch_plan_uid (const char *name, const char *created_at, char *buf);

#endif
