/*  dx_netplan: the facts about a cluster's cloud that the scheduler's
    planner and the cloud workers must agree on, written once.

    The network plan (proto/PROTOCOL.md, "Network plan"): one private
    network with two subnets. The access node and the masters have fixed
    addresses in the first, where nothing else runs, so an address the
    cloud picks for an agent can never take one of theirs.

    Launch pacing: the provider's published rate of instance launches per
    account and region. The scheduler paces host steps with it, however
    many workers run them; each worker also holds the same bucket for its
    own calls. */
#ifndef DX_NETPLAN_H
#define DX_NETPLAN_H

#define DX_NET_CIDR            "10.0.0.0/16"
#define DX_NET_SUBNET_CIDR     "10.0.0.0/24"    /* access node, masters */
#define DX_NET_AGENTS_CIDR     "10.0.32.0/19"   /* agents: 8,187 addresses, room
                                                   for DX_CLUSTER_HOSTS_MAX */
#define DX_NET_ACCESS_IP       "10.0.0.10"
#define DX_NET_MASTER_PREFIX   "10.0.0."
#define DX_NET_MASTER_IP_BASE  11               /* master i is 10.0.0.(11 + i) */

/*  EC2's RunInstances request bucket (docs/aws.md). */
#define DX_AWS_LAUNCH_BURST    5
#define DX_AWS_LAUNCH_RATE     2                /* per second */

#endif
