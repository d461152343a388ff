/*  aws_network: the steps that make and remove a cluster's network and its
    firewall: network (VPC, subnets, internet gateway, route table),
    security (three security groups and their rules), and on destroy
    destroy.security and destroy.network. The network plan is
    common/dx_netplan.h; docs/aws.md says what each step calls. */
#include "aws_run.h"
#include "dx_netplan.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ANYWHERE      "0.0.0.0/0"

/*  The two subnets of the network plan, by the key they are reported and
    looked up under, and the suffix of their Name tag (NAME-suffix). */
static const struct {
    const char *key;
    const char *cidr;
    const char *suffix;
} s_subnets [] = {
    { "subnet", DX_NET_SUBNET_CIDR, "subnet" },
    { "subnet.agents", DX_NET_AGENTS_CIDR, "subnet-agents" },
};
#define S_SUBNETS (sizeof s_subnets / sizeof s_subnets [0])

/*  While destroying, a resource still in use (an instance shutting down
    holds its subnet and groups, an address the gateway) is waited for. */
static const char *const s_dependency [] = { "DependencyViolation", NULL };

//  ---------------------------------------------------------------------
//  network

/*  A part of the network: how it is looked for and how it is made. */
typedef struct {
    const char *type;                   /* TagSpecification's ResourceType */
    const char *describe;               /* the action that finds it, */
    const char *set;                    /* the items of its answer, */
    const char *id_field;               /* an item's id, */
    const char *id_param;               /* and the parameter that asks for one id */
    const char *create;                 /* the action that makes it, */
    const char *created;                /* and the new id's path in its answer */
    bool by_name;                       /* found by its Name too (one of two) */
} s_part_t;

static const s_part_t s_vpc_part = {
    "vpc", "DescribeVpcs", "vpcSet/item", "vpcId", "VpcId", "CreateVpc", "vpc/vpcId", false
};
static const s_part_t s_subnet_part = {
    "subnet", "DescribeSubnets", "subnetSet/item", "subnetId", "SubnetId",
    "CreateSubnet", "subnet/subnetId", true
};
static const s_part_t s_gateway_part = {
    "internet-gateway", "DescribeInternetGateways", "internetGatewaySet/item",
    "internetGatewayId", "InternetGatewayId", "CreateInternetGateway",
    "internetGateway/internetGatewayId", false
};
static const s_part_t s_route_table_part = {
    "route-table", "DescribeRouteTables", "routeTableSet/item", "routeTableId",
    "RouteTableId", "CreateRouteTable", "routeTable/routeTableId", false
};

/*  Finds the part called name that the cluster owns (in vpc unless vpc is
    NULL), or creates it with the params *create_p, tagged. Its id into
    id; 0, or -1 with the outcome set. Takes the params. */
static int
s_find_or_create (aws_run_t *run, const s_part_t *part, const char *vpc, const char *name,
                  aws_params_t **create_p, char *id, size_t size)
{
    aws_params_t *p = aws_params_new ();
    if (vpc)
        aws_params_filter (p, "vpc-id", vpc, NULL);
    aws_run_owned (run, p, "network");
    if (part->by_name)
        aws_params_filter (p, "tag:Name", name, NULL);
    xmlDocPtr doc = aws_run_ask (run, part->describe, &p, NULL);
    if (!doc) {
        aws_params_destroy (create_p);
        return -1;
    }
    int found = aws_doc_text (doc, part->set, part->id_field, id, size) == 0;
    xmlFreeDoc (doc);
    if (found) {
        aws_params_destroy (create_p);
        return 0;
    }
    aws_run_tag_spec (run, *create_p, part->type, "network", NULL, NULL, name);
    if (!(doc = aws_run_ask (run, part->create, create_p, aws_run_not_found)))
        return -1;
    found = aws_doc_text (doc, part->created, NULL, id, size) == 0;
    xmlFreeDoc (doc);
    if (!found)
        return dx_step_outcome (run->out, DX_STEP_FAILED, 0, "InvalidResponse", "%s answered "
                                "without %s", part->create, part->created);
    return 0;
}

/*  The part of id, described by its id (just made, it may not be visible
    yet): the answer, or NULL with the outcome set. */
static xmlDocPtr
s_describe (aws_run_t *run, const s_part_t *part, const char *id)
{
    aws_params_t *p = aws_params_new ();
    aws_params_addf (p, id, "%s.1", part->id_param);
    return aws_run_ask (run, part->describe, &p, aws_run_not_found);
}

/*  The VPC, with DNS host names on (set every time: it is idempotent). */
static int
s_vpc (aws_run_t *run, char *vpc, size_t size)
{
    char name [128];
    snprintf (name, sizeof name, "%s-vpc", run->job.cluster);
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "CidrBlock", DX_NET_CIDR);
    if (s_find_or_create (run, &s_vpc_part, NULL, name, &p, vpc, size))
        return -1;
    dx_step_attr (dx_step_resource (run->out, "vpc", "vpc", vpc), "cidr", DX_NET_CIDR);
    p = aws_params_new ();
    aws_params_add (p, "VpcId", vpc);
    aws_params_add (p, "EnableDnsHostnames.Value", "true");
    return aws_run_act (run, "ModifyVpcAttribute", &p, aws_run_not_found, NULL);
}

/*  Subnet n of the plan, in the region's first zone. */
static int
s_subnet (aws_run_t *run, const char *vpc, size_t n, char *id, size_t size)
{
    char name [128], zone [64];
    snprintf (name, sizeof name, "%s-%s", run->job.cluster, s_subnets [n].suffix);
    snprintf (zone, sizeof zone, "%sa", run->region);
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "VpcId", vpc);
    aws_params_add (p, "CidrBlock", s_subnets [n].cidr);
    aws_params_add (p, "AvailabilityZone", zone);
    if (s_find_or_create (run, &s_subnet_part, vpc, name, &p, id, size))
        return -1;
    json_t *res = dx_step_resource (run->out, s_subnets [n].key, "subnet", id);
    dx_step_attr (res, "cidr", s_subnets [n].cidr);
    dx_step_attr (res, "zone", zone);
    return 0;
}

/*  The internet gateway, attached to the VPC. */
static int
s_gateway (aws_run_t *run, const char *vpc, char *igw, size_t size)
{
    char name [128];
    snprintf (name, sizeof name, "%s-igw", run->job.cluster);
    aws_params_t *p = aws_params_new ();
    if (s_find_or_create (run, &s_gateway_part, NULL, name, &p, igw, size))
        return -1;
    dx_step_resource (run->out, "igw", "internet_gateway", igw);
    xmlDocPtr doc = s_describe (run, &s_gateway_part, igw);
    if (!doc)
        return -1;
    char attached [64] = "";
    aws_doc_text (doc, "internetGatewaySet/item/attachmentSet/item", "vpcId",
                  attached, sizeof attached);
    xmlFreeDoc (doc);
    if (strcmp (attached, vpc) == 0)
        return 0;
    p = aws_params_new ();
    aws_params_add (p, "InternetGatewayId", igw);
    aws_params_add (p, "VpcId", vpc);
    return aws_run_act (run, "AttachInternetGateway", &p, aws_run_not_found, NULL);
}

/*  The route table: 0.0.0.0/0 to the gateway, associated with each subnet. */
static int
s_route_table (aws_run_t *run, const char *vpc, const char *igw,
               char subnets [S_SUBNETS][64])
{
    char rtb [64], name [128];
    snprintf (name, sizeof name, "%s-rtb", run->job.cluster);
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "VpcId", vpc);
    if (s_find_or_create (run, &s_route_table_part, vpc, name, &p, rtb, sizeof rtb))
        return -1;
    dx_step_resource (run->out, "rtb", "route_table", rtb);
    xmlDocPtr doc = s_describe (run, &s_route_table_part, rtb);
    if (!doc)
        return -1;
    bool routed = false, associated [S_SUBNETS] = { false };
    xmlNodePtr table = aws_xml_child (xmlDocGetRootElement (doc), "routeTableSet/item");
    for (xmlNodePtr r = aws_xml_child (table, "routeSet/item"); r; r = aws_xml_next (r)) {
        const char *dest = aws_xml_text (r, "destinationCidrBlock");
        if (dest && strcmp (dest, S_ANYWHERE) == 0)
            routed = true;
    }
    for (xmlNodePtr a = aws_xml_child (table, "associationSet/item"); a; a = aws_xml_next (a)) {
        const char *id = aws_xml_text (a, "subnetId");
        for (size_t n = 0; id && n < S_SUBNETS; n++)
            if (strcmp (id, subnets [n]) == 0)
                associated [n] = true;
    }
    xmlFreeDoc (doc);
    if (!routed) {
        p = aws_params_new ();
        aws_params_add (p, "RouteTableId", rtb);
        aws_params_add (p, "DestinationCidrBlock", S_ANYWHERE);
        aws_params_add (p, "GatewayId", igw);
        if (aws_run_act (run, "CreateRoute", &p, aws_run_not_found, "RouteAlreadyExists", NULL))
            return -1;
    }
    for (size_t n = 0; n < S_SUBNETS; n++) {
        if (associated [n])
            continue;
        p = aws_params_new ();
        aws_params_add (p, "RouteTableId", rtb);
        aws_params_add (p, "SubnetId", subnets [n]);
        if (aws_run_act (run, "AssociateRouteTable", &p, aws_run_not_found, NULL))
            return -1;
    }
    return 0;
}

int
aws_step_network (aws_run_t *run)
{
    char vpc [64], subnets [S_SUBNETS][64], igw [64];
    if (s_vpc (run, vpc, sizeof vpc))
        return -1;
    for (size_t n = 0; n < S_SUBNETS; n++)
        if (s_subnet (run, vpc, n, subnets [n], sizeof subnets [n]))
            return -1;
    if (s_gateway (run, vpc, igw, sizeof igw))
        return -1;
    return s_route_table (run, vpc, igw, subnets);
}

//  ---------------------------------------------------------------------
//  security

typedef struct {
    const char *proto;                  /* "-1": all traffic from the group itself */
    int from, to;
} s_rule_t;

typedef struct {
    const char *suffix;                 /* of the name NAME-sg-suffix and key sg.suffix */
    const char *description;
    s_rule_t rules [4];
} s_group_t;

static const s_group_t s_groups [] = {
    { "cluster", "Dexter: all traffic between the cluster's hosts",
      { { "-1", 0, 0 }, { NULL, 0, 0 } } },
    { "access", "Dexter: ssh and OpenVPN to the access node",
      { { "tcp", 22, 22 }, { "udp", 1194, 1194 }, { NULL, 0, 0 } } },
    { "public", "Dexter: HTTP, HTTPS and service ports of public agents",
      { { "tcp", 80, 80 }, { "tcp", 443, 443 }, { "tcp", 10000, 10100 }, { NULL, 0, 0 } } },
};

#define S_GROUP_ITEM "securityGroupInfo/item"

/*  1 if group (an item of DescribeSecurityGroups) already allows rule. */
static int
s_has_rule (xmlNodePtr group, const s_rule_t *rule, const char *self_id)
{
    for (xmlNodePtr perm = aws_xml_child (group, "ipPermissions/item"); perm;
         perm = aws_xml_next (perm)) {
        const char *proto = aws_xml_text (perm, "ipProtocol");
        if (!proto || strcmp (proto, rule->proto) != 0)
            continue;
        if (strcmp (rule->proto, "-1") == 0) {
            for (xmlNodePtr g = aws_xml_child (perm, "groups/item"); g; g = aws_xml_next (g)) {
                const char *id = aws_xml_text (g, "groupId");
                if (id && strcmp (id, self_id) == 0)
                    return 1;
            }
            continue;
        }
        const char *from = aws_xml_text (perm, "fromPort"), *to = aws_xml_text (perm, "toPort");
        if (!from || !to || atoi (from) != rule->from || atoi (to) != rule->to)
            continue;
        for (xmlNodePtr c = aws_xml_child (perm, "ipRanges/item"); c; c = aws_xml_next (c)) {
            const char *cidr = aws_xml_text (c, "cidrIp");
            if (cidr && strcmp (cidr, S_ANYWHERE) == 0)
                return 1;
        }
    }
    return 0;
}

/*  The rules of group that item (the group's DescribeSecurityGroups
    entry; NULL: a group just made) lacks, added in one call. */
static int
s_authorize (aws_run_t *run, const char *id, const s_group_t *group, xmlNodePtr item)
{
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "GroupId", id);
    int n = 0;
    for (const s_rule_t *rule = group->rules; rule->proto; rule++) {
        if (item && s_has_rule (item, rule, id))
            continue;
        n++;
        aws_params_addf (p, rule->proto, "IpPermissions.%d.IpProtocol", n);
        if (strcmp (rule->proto, "-1") == 0)
            aws_params_addf (p, id, "IpPermissions.%d.Groups.1.GroupId", n);
        else {
            char port [16];
            snprintf (port, sizeof port, "%d", rule->from);
            aws_params_addf (p, port, "IpPermissions.%d.FromPort", n);
            snprintf (port, sizeof port, "%d", rule->to);
            aws_params_addf (p, port, "IpPermissions.%d.ToPort", n);
            aws_params_addf (p, S_ANYWHERE, "IpPermissions.%d.IpRanges.1.CidrIp", n);
        }
    }
    if (n == 0) {
        aws_params_destroy (&p);
        return 0;
    }
    return aws_run_act (run, "AuthorizeSecurityGroupIngress", &p, aws_run_not_found,
                        "InvalidPermission.Duplicate", NULL);
}

/*  DescribeSecurityGroups for the group called name in vpc (caller frees;
    it may list none), or NULL with the outcome set. */
static xmlDocPtr
s_describe_group (aws_run_t *run, const char *vpc, const char *name)
{
    aws_params_t *p = aws_params_new ();
    aws_params_filter (p, "vpc-id", vpc, NULL);
    aws_params_filter (p, "group-name", name, NULL);
    return aws_run_ask (run, "DescribeSecurityGroups", &p, NULL);
}

/*  One group, found by its name or made, with its rules. */
static int
s_security_group (aws_run_t *run, const char *vpc, const s_group_t *group)
{
    char name [128], id [64] = "", key [32];
    snprintf (name, sizeof name, "%s-sg-%s", run->job.cluster, group->suffix);
    snprintf (key, sizeof key, "sg.%s", group->suffix);
    xmlDocPtr found = s_describe_group (run, vpc, name);
    if (!found)
        return -1;
    if (aws_doc_text (found, S_GROUP_ITEM, "groupId", id, sizeof id)) {
        xmlFreeDoc (found);
        found = NULL;
        aws_params_t *p = aws_params_new ();
        aws_params_add (p, "GroupName", name);
        aws_params_add (p, "GroupDescription", group->description);
        aws_params_add (p, "VpcId", vpc);
        aws_run_tag_spec (run, p, "security-group", "security", NULL, NULL, name);
        xmlDocPtr doc = aws_run_call (run, "CreateSecurityGroup", p, aws_run_not_found);
        aws_params_destroy (&p);
        if (doc) {
            aws_doc_text (doc, "groupId", NULL, id, sizeof id);
            xmlFreeDoc (doc);
        }
        else
        if (!aws_run_code_is (run, "InvalidGroup.Duplicate"))
            return aws_run_failed (run, "CreateSecurityGroup");
        else {                          /* a twin attempt made it: read it */
            if (!(found = s_describe_group (run, vpc, name)))
                return -1;
            aws_doc_text (found, S_GROUP_ITEM, "groupId", id, sizeof id);
        }
    }
    int rc = -1;
    if (!*id)
        dx_step_outcome (run->out, DX_STEP_FAILED, 0, "InvalidResponse",
                         "security group %s: no id", name);
    else {
        dx_step_attr (dx_step_resource (run->out, key, "security_group", id), "name", name);
        xmlNodePtr item = found? aws_xml_child (xmlDocGetRootElement (found), S_GROUP_ITEM): NULL;
        rc = s_authorize (run, id, group, item);
    }
    xmlFreeDoc (found);
    return rc;
}

int
aws_step_security (aws_run_t *run)
{
    const char *vpc = dx_step_need (run->out, run->job.context, "vpc");
    if (!vpc)
        return -1;
    for (size_t i = 0; i < sizeof s_groups / sizeof s_groups [0]; i++)
        if (s_security_group (run, vpc, &s_groups [i]))
            return -1;
    return 0;
}

//  ---------------------------------------------------------------------
//  destroy.security, destroy.network
//
//  Each deletes what the cluster owns by its tag, tolerating "already
//  gone", and reports it deleted under the key it was made with.

/*  Deletes resource id with action (param = id), waiting out
    DependencyViolation; gone_code counts as done. Reports it. */
static int
s_delete (aws_run_t *run, const char *action, const char *param, const char *id,
          const char *gone_code, const char *key, const char *kind)
{
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, param, id);
    if (aws_run_act (run, action, &p, s_dependency, gone_code, NULL))
        return -1;
    dx_step_attr (dx_step_resource (run->out, key, kind, id), "state", "deleted");
    return 0;
}

static int
s_delete_security_group (aws_run_t *run, xmlNodePtr group)
{
    const char *id = aws_xml_text (group, "groupId");
    if (!id)
        return 0;                       /* nothing to delete it by */
    const char *name = aws_xml_text (group, "groupName");
    const char *dash = name? strrchr (name, '-'): NULL;
    char key [96];
    snprintf (key, sizeof key, "sg.%s", dash? dash + 1: id);
    return s_delete (run, "DeleteSecurityGroup", "GroupId", id, "InvalidGroup.NotFound",
                     key, "security_group");
}

int
aws_step_destroy_security (aws_run_t *run)
{
    return aws_run_each_owned (run, "DescribeSecurityGroups", S_GROUP_ITEM,
                               s_delete_security_group);
}

/*  A route table, after its associations (the main one goes with the VPC). */
static int
s_delete_route_table (aws_run_t *run, xmlNodePtr table)
{
    for (xmlNodePtr a = aws_xml_child (table, "associationSet/item"); a; a = aws_xml_next (a)) {
        const char *assoc = aws_xml_text (a, "routeTableAssociationId");
        const char *main_flag = aws_xml_text (a, "main");
        if (!assoc || (main_flag && strcmp (main_flag, "true") == 0))
            continue;
        aws_params_t *p = aws_params_new ();
        aws_params_add (p, "AssociationId", assoc);
        if (aws_run_act (run, "DisassociateRouteTable", &p, NULL,
                         "InvalidAssociationID.NotFound", NULL))
            return -1;
    }
    return s_delete (run, "DeleteRouteTable", "RouteTableId", aws_xml_text (table, "routeTableId"),
                     "InvalidRouteTableID.NotFound", "rtb", "route_table");
}

/*  A subnet, under the key its Name says it was made with. */
static int
s_delete_subnet (aws_run_t *run, xmlNodePtr subnet)
{
    const char *key = "subnet";
    const char *name = aws_xml_tag (subnet, "Name");
    for (size_t n = 0; name && n < S_SUBNETS; n++) {
        size_t len = strlen (name), suffix = strlen (s_subnets [n].suffix);
        if (len > suffix && strcmp (name + len - suffix, s_subnets [n].suffix) == 0
        &&  name [len - suffix - 1] == '-')
            key = s_subnets [n].key;
    }
    return s_delete (run, "DeleteSubnet", "SubnetId", aws_xml_text (subnet, "subnetId"),
                     "InvalidSubnetID.NotFound", key, "subnet");
}

/*  An internet gateway, after it is detached. */
static int
s_delete_gateway (aws_run_t *run, xmlNodePtr gateway)
{
    const char *igw = aws_xml_text (gateway, "internetGatewayId");
    for (xmlNodePtr a = aws_xml_child (gateway, "attachmentSet/item"); a; a = aws_xml_next (a)) {
        aws_params_t *p = aws_params_new ();
        aws_params_add (p, "InternetGatewayId", igw);
        aws_params_add (p, "VpcId", aws_xml_text (a, "vpcId"));
        if (aws_run_act (run, "DetachInternetGateway", &p, s_dependency, "Gateway.NotAttached",
                         "InvalidInternetGatewayID.NotFound", "InvalidVpcID.NotFound", NULL))
            return -1;
    }
    return s_delete (run, "DeleteInternetGateway", "InternetGatewayId", igw,
                     "InvalidInternetGatewayID.NotFound", "igw", "internet_gateway");
}

static int
s_delete_vpc (aws_run_t *run, xmlNodePtr vpc)
{
    return s_delete (run, "DeleteVpc", "VpcId", aws_xml_text (vpc, "vpcId"),
                     "InvalidVpcID.NotFound", "vpc", "vpc");
}

/*  What destroy.network deletes, in this order: route tables, subnets
    (their instances are gone: destroy.instances ran first), gateways (the
    addresses that held them are released: destroy.addresses ran), VPCs
    (their main route table and default group go with them). */
static const struct {
    const s_part_t *part;
    aws_item_fn *delete;
} s_teardown [] = {
    { &s_route_table_part, s_delete_route_table },
    { &s_subnet_part, s_delete_subnet },
    { &s_gateway_part, s_delete_gateway },
    { &s_vpc_part, s_delete_vpc },
};

int
aws_step_destroy_network (aws_run_t *run)
{
    for (size_t i = 0; i < sizeof s_teardown / sizeof s_teardown [0]; i++) {
        const s_part_t *part = s_teardown [i].part;
        if (aws_run_each_owned (run, part->describe, part->set, s_teardown [i].delete))
            return -1;
    }
    return 0;
}
