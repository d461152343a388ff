/*  aws_steps: the steps of proto/PROTOCOL.md as idempotent EC2 calls.
    See aws_steps.h and docs/aws.md.

    One s_run_t per job: the EC2 client made from the job's credentials
    and the step's region, the step's maps, the result. Each step function
    (s_step_network ... s_step_destroy_network) returns 0 when done, or -1
    with the outcome set. Calls go through s_call, which also waits out the
    "not ready yet" codes a caller names (eventual consistency after a
    create, DependencyViolation while destroying, IncorrectInstanceState),
    polling every poll_ms until wait_ms or the job's cancellation. */
#include "aws_steps.h"
#include "aws_ec2.h"
#include "dx_log.h"
#include "dx_provision.h"
#include "dx_util.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/tree.h>
#include <sodium.h>

#define S_CANONICAL     "099720109477"
#define S_UBUNTU_IMAGES "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"
#define S_VPC_CIDR      "10.0.0.0/16"

/*  Two subnets (PROTOCOL.md "Network plan"): the access node and masters
    have fixed addresses in the first, where nothing else runs, so an
    address AWS picks for an agent can never take one of theirs. */
static const struct {
    const char *key;                    /* resource and context key */
    const char *cidr;
    const char *suffix;                 /* of the Name tag, NAME-suffix */
} s_subnets [] = {
    { "subnet", "10.0.0.0/24", "subnet" },
    { "subnet.agents", "10.0.16.0/20", "subnet-agents" },
};
#define S_SUBNETS (sizeof s_subnets / sizeof s_subnets [0])
#define S_ANYWHERE      "0.0.0.0/0"

typedef struct {
    const aws_steps_config_t *config;
    aws_ec2_t *ec2;
    const json_t *step;
    const json_t *context;
    const json_t *credentials;
    const char *cluster;
    const char *uid;
    const char *region;
    aws_step_out_t *out;
    aws_error_t err;                    /* the last failed call's */
} s_run_t;

//  ---------------------------------------------------------------------
//  Results

void
aws_step_out_init (aws_step_out_t *self, aws_step_cancel_fn *cancelled, void *arg)
{
    memset (self, 0, sizeof *self);
    self->outcome = AWS_STEP_DONE;
    self->resources = json_array ();
    self->cancelled = cancelled;
    self->cancel_arg = arg;
}

void
aws_step_out_reset (aws_step_out_t *self)
{
    json_decref (self->resources);
    aws_step_out_init (self, self->cancelled, self->cancel_arg);
}

void
aws_step_out_fini (aws_step_out_t *self)
{
    json_decref (self->resources);
    self->resources = NULL;
}

const char *
aws_step_outcome_name (aws_step_outcome_t outcome)
{
    return outcome == AWS_STEP_DONE? "done": outcome == AWS_STEP_RETRY? "retry": "failed";
}

static int
s_outcome (s_run_t *run, aws_step_outcome_t outcome, int permanent, const char *code,
           const char *fmt, ...) __attribute__ ((format (printf, 5, 6)));

/*  Sets the outcome (the first one set wins) and returns -1. */
static int
s_outcome (s_run_t *run, aws_step_outcome_t outcome, int permanent, const char *code,
           const char *fmt, ...)
{
    aws_step_out_t *out = run->out;
    if (out->outcome != AWS_STEP_DONE)
        return -1;
    out->outcome = outcome;
    out->permanent = outcome == AWS_STEP_FAILED && permanent;
    snprintf (out->code, sizeof out->code, "%s", code);
    va_list args;
    va_start (args, fmt);
    vsnprintf (out->message, sizeof out->message, fmt, args);
    va_end (args);
    return -1;
}

static int
s_cancelled (s_run_t *run)
{
    return run->out->cancelled && run->out->cancelled (run->out->cancel_arg);
}

/*  A resource {key, kind, provider_id} added to the result; borrowed, to
    add attributes to. */
static json_t *
s_resource (s_run_t *run, const char *key, const char *kind, const char *id)
{
    json_t *resource = json_pack ("{s:s, s:s, s:s}", "key", key, "kind", kind,
                                  "provider_id", id? id: "");
    json_array_append_new (run->out->resources, resource);
    return resource;
}

static void
s_attr (json_t *resource, const char *name, const char *value)
{
    json_object_set_new (resource, name, json_string (value? value: ""));
}

//  ---------------------------------------------------------------------
//  Errors

/*  Codes no retry can fix (PROTOCOL.md "Outcomes"); and any *LimitExceeded
    but RequestLimitExceeded (throttling, retryable). */
static const char *const s_permanent_codes [] = {
    "AuthFailure", "UnauthorizedOperation", "InvalidParameterValue",
    "InvalidParameterCombination", "Unsupported", "UnsupportedOperation",
    "MissingParameter", "UnknownParameter", "InvalidKeyPair.NotFound",
    "SignatureDoesNotMatch", "InvalidClientTokenId", "OptInRequired", "Blocked",
    "InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable",
    "InvalidKey.Format", "InvalidBlockDeviceMapping", "InvalidInstanceType",
    "InvalidAction", "InvalidUserData.Malformed", NULL
};

/*  Capacity and other conditions AWS itself calls temporary, and the "not
    ready yet" codes a step waited out for wait_ms in vain: later, then. */
static const char *const s_retry_codes [] = {
    "InsufficientInstanceCapacity", "InsufficientAddressCapacity",
    "InsufficientFreeAddressesInSubnet", "PendingVerification",
    "DependencyViolation", "IncorrectInstanceState", "InvalidIPAddress.InUse", NULL
};

static int
s_code_listed (const char *const *list, const char *code)
{
    for (; list && *list; list++) {
        size_t len = strlen (*list);
        //  "*.NotFound" matches any code ending in ".NotFound"
        if ((*list) [0] == '*' && strlen (code) >= len - 1
        &&  strcmp (code + strlen (code) - (len - 1), *list + 1) == 0)
            return 1;
        if (strcmp (*list, code) == 0)
            return 1;
    }
    return 0;
}

/*  The outcome of the last failed call of action (run->err); -1. */
static int
s_fail_call (s_run_t *run, const char *action)
{
    const aws_error_t *err = &run->err;
    size_t len = strlen (err->code);
    if (s_cancelled (run))
        return s_outcome (run, AWS_STEP_RETRY, 0, "CANCELLED", "the job was cancelled "
                          "during %s", action);
    if (err->retryable || s_code_listed (s_retry_codes, err->code))
        return s_outcome (run, AWS_STEP_RETRY, 0, err->code, "%s: %s (after %d tries)",
                          action, err->message, err->attempts);
    if (s_code_listed (s_permanent_codes, err->code)
    ||  (len > 13 && strcmp (err->code + len - 13, "LimitExceeded") == 0
         && strcmp (err->code, "RequestLimitExceeded") != 0))
        return s_outcome (run, AWS_STEP_FAILED, 1, err->code, "%s", err->message);
    return s_outcome (run, AWS_STEP_FAILED, 0, err->code, "%s: %s", action, err->message);
}

static int
s_code_is (s_run_t *run, const char *code)
{
    return strcmp (run->err.code, code) == 0;
}

//  ---------------------------------------------------------------------
//  Calls

static const char *const s_not_found [] = { "*.NotFound", NULL };
static const char *const s_dependency [] = { "DependencyViolation", NULL };

/*  Calls action; while it fails with one of wait_codes, polls again every
    poll_ms until wait_ms has passed or the job is cancelled. The answer,
    or NULL with run->err filled (the outcome is the caller's to set). */
static xmlDocPtr
s_call (s_run_t *run, const char *action, const aws_params_t *params,
        const char *const *wait_codes)
{
    int64_t deadline = dx_mono_ms () + run->config->wait_ms;
    int waits = 0;
    while (1) {
        if (s_cancelled (run)) {
            snprintf (run->err.code, sizeof run->err.code, "CANCELLED");
            snprintf (run->err.message, sizeof run->err.message, "the job was cancelled");
            run->err.retryable = 0;
            return NULL;
        }
        xmlDocPtr doc = aws_ec2_call (run->ec2, action, params, &run->err);
        if (doc)
            return doc;
        if (!s_code_listed (wait_codes, run->err.code) || dx_mono_ms () >= deadline)
            return NULL;
        //  One line when the wait starts, the polls at debug level
        dx_log (waits++? DX_LOG_DEBUG: DX_LOG_INFO, "cluster %s: ec2 %s: %s, not ready yet; "
                "trying every %lld ms for at most %lld ms", run->cluster, action,
                run->err.code, (long long) run->config->poll_ms,
                (long long) run->config->wait_ms);
        dx_sleep_ms (run->config->poll_ms);
    }
}

static xmlNodePtr
s_doc_root (xmlDocPtr doc)
{
    return xmlDocGetRootElement (doc);
}

/*  Text at path below the first item of set in doc, copied into buf; 0
    if there is one, -1 if none. */
static int
s_first_text (xmlDocPtr doc, const char *set, const char *path, char *buf, size_t size)
{
    xmlNodePtr item = aws_xml_child (s_doc_root (doc), set);
    const char *text = item? aws_xml_text (item, path): NULL;
    if (!text || !*text)
        return -1;
    snprintf (buf, size, "%s", text);
    return 0;
}

/*  Filters that select what this cluster owns: dexter:cluster, and
    dexter:role when role is not NULL. */
static void
s_owned (s_run_t *run, aws_params_t *p, const char *role)
{
    aws_params_filter (p, "tag:dexter:cluster", run->cluster, NULL);
    if (role)
        aws_params_filter (p, "tag:dexter:role", role, NULL);
}

/*  TagSpecification.N for type with the ownership tags of PROTOCOL.md;
    group and host may be NULL. */
static void
s_tag_spec (s_run_t *run, aws_params_t *p, const char *type, const char *role,
            const char *group, const char *host, const char *name)
{
    char prefix [64];
    snprintf (prefix, sizeof prefix, "TagSpecification.%d",
              aws_params_next (p, "TagSpecification"));
    aws_params_addf (p, type, "%s.ResourceType", prefix);
    aws_params_tag (p, prefix, "dexter:cluster", run->cluster);
    aws_params_tag (p, prefix, "dexter:uid", run->uid);
    aws_params_tag (p, prefix, "dexter:role", role);
    if (group)
        aws_params_tag (p, prefix, "dexter:group", group);
    if (host)
        aws_params_tag (p, prefix, "dexter:host", host);
    aws_params_tag (p, prefix, "Name", name);
}

static const char *
s_str (const json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

/*  A context entry the step needs; NULL with the outcome set if missing. */
static const char *
s_need (s_run_t *run, const char *key)
{
    const char *value = s_str (run->context, key);
    if (!value || !*value)
        s_outcome (run, AWS_STEP_FAILED, 1, "InvalidStep", "the step's context has no %s "
                   "(the step that makes it has not run)", key);
    return value && *value? value: NULL;
}

//  ---------------------------------------------------------------------
//  network

/*  Finds (describe with p) or creates (create with cp) one resource. Its
    id is id_field of the first item of set in the describe answer, or the
    text at create_path in the create answer. */
static int
s_find_or_create (s_run_t *run, const char *describe, aws_params_t *p, const char *set,
                  const char *id_field, const char *create, aws_params_t *cp,
                  const char *create_path, char *id, size_t size, bool *created)
{
    *created = false;
    xmlDocPtr doc = s_call (run, describe, p, NULL);
    if (!doc)
        return s_fail_call (run, describe);
    int found = s_first_text (doc, set, id_field, id, size);
    xmlFreeDoc (doc);
    if (found == 0)
        return 0;
    doc = s_call (run, create, cp, s_not_found);
    if (!doc)
        return s_fail_call (run, create);
    xmlNodePtr node = aws_xml_child (s_doc_root (doc), create_path);
    const char *text = node? aws_xml_text (node, NULL): NULL;
    snprintf (id, size, "%s", text? text: "");
    xmlFreeDoc (doc);
    if (!*id)
        return s_outcome (run, AWS_STEP_FAILED, 0, "InvalidResponse", "%s answered "
                          "without %s", create, create_path);
    *created = true;
    return 0;
}

static int
s_step_network (s_run_t *run)
{
    char vpc [64], igw [64], rtb [64], name [128];
    bool created;
    int rc = -1;
    aws_params_t *p = aws_params_new (), *cp = aws_params_new ();

    //  VPC, DNS host names on
    s_owned (run, p, "network");
    aws_params_add (cp, "CidrBlock", S_VPC_CIDR);
    snprintf (name, sizeof name, "%s-vpc", run->cluster);
    s_tag_spec (run, cp, "vpc", "network", NULL, NULL, name);
    if (s_find_or_create (run, "DescribeVpcs", p, "vpcSet/item", "vpcId",
                          "CreateVpc", cp, "vpc/vpcId", vpc, sizeof vpc, &created))
        goto done;
    json_t *res = s_resource (run, "vpc", "vpc", vpc);
    s_attr (res, "cidr", S_VPC_CIDR);
    aws_params_destroy (&p);
    aws_params_destroy (&cp);
    p = aws_params_new ();
    aws_params_add (p, "VpcId", vpc);
    aws_params_add (p, "EnableDnsHostnames.Value", "true");
    xmlDocPtr doc = s_call (run, "ModifyVpcAttribute", p, s_not_found);
    if (!doc) {
        s_fail_call (run, "ModifyVpcAttribute");
        goto done;
    }
    xmlFreeDoc (doc);

    //  The subnets, in the region's first zone
    char subnets [S_SUBNETS][64];
    char zone [64];
    snprintf (zone, sizeof zone, "%sa", run->region);
    for (size_t n = 0; n < S_SUBNETS; n++) {
        aws_params_destroy (&p);
        aws_params_destroy (&cp);
        p = aws_params_new ();
        cp = aws_params_new ();
        snprintf (name, sizeof name, "%s-%s", run->cluster, s_subnets [n].suffix);
        aws_params_filter (p, "vpc-id", vpc, NULL);
        s_owned (run, p, "network");
        aws_params_filter (p, "tag:Name", name, NULL);
        aws_params_add (cp, "VpcId", vpc);
        aws_params_add (cp, "CidrBlock", s_subnets [n].cidr);
        aws_params_add (cp, "AvailabilityZone", zone);
        s_tag_spec (run, cp, "subnet", "network", NULL, NULL, name);
        if (s_find_or_create (run, "DescribeSubnets", p, "subnetSet/item", "subnetId",
                              "CreateSubnet", cp, "subnet/subnetId", subnets [n],
                              sizeof subnets [n], &created))
            goto done;
        res = s_resource (run, s_subnets [n].key, "subnet", subnets [n]);
        s_attr (res, "cidr", s_subnets [n].cidr);
        s_attr (res, "zone", zone);
    }

    //  Internet gateway, attached
    aws_params_destroy (&p);
    aws_params_destroy (&cp);
    p = aws_params_new ();
    cp = aws_params_new ();
    s_owned (run, p, "network");
    snprintf (name, sizeof name, "%s-igw", run->cluster);
    s_tag_spec (run, cp, "internet-gateway", "network", NULL, NULL, name);
    if (s_find_or_create (run, "DescribeInternetGateways", p, "internetGatewaySet/item",
                          "internetGatewayId", "CreateInternetGateway", cp,
                          "internetGateway/internetGatewayId", igw, sizeof igw, &created))
        goto done;
    s_resource (run, "igw", "internet_gateway", igw);
    aws_params_destroy (&p);
    p = aws_params_new ();
    aws_params_add (p, "InternetGatewayId.1", igw);
    if (!(doc = s_call (run, "DescribeInternetGateways", p, s_not_found))) {
        s_fail_call (run, "DescribeInternetGateways");
        goto done;
    }
    char attached [64] = "";
    s_first_text (doc, "internetGatewaySet/item/attachmentSet/item", "vpcId", attached, sizeof attached);
    xmlFreeDoc (doc);
    if (strcmp (attached, vpc) != 0) {
        aws_params_destroy (&p);
        p = aws_params_new ();
        aws_params_add (p, "InternetGatewayId", igw);
        aws_params_add (p, "VpcId", vpc);
        if (!(doc = s_call (run, "AttachInternetGateway", p, s_not_found))) {
            s_fail_call (run, "AttachInternetGateway");
            goto done;
        }
        xmlFreeDoc (doc);
    }

    //  Route table: 0.0.0.0/0 to the gateway, associated with the subnet
    aws_params_destroy (&p);
    aws_params_destroy (&cp);
    p = aws_params_new ();
    cp = aws_params_new ();
    aws_params_filter (p, "vpc-id", vpc, NULL);
    s_owned (run, p, "network");
    aws_params_add (cp, "VpcId", vpc);
    snprintf (name, sizeof name, "%s-rtb", run->cluster);
    s_tag_spec (run, cp, "route-table", "network", NULL, NULL, name);
    if (s_find_or_create (run, "DescribeRouteTables", p, "routeTableSet/item", "routeTableId",
                          "CreateRouteTable", cp, "routeTable/routeTableId", rtb, sizeof rtb,
                          &created))
        goto done;
    s_resource (run, "rtb", "route_table", rtb);
    aws_params_destroy (&p);
    p = aws_params_new ();
    aws_params_add (p, "RouteTableId.1", rtb);
    if (!(doc = s_call (run, "DescribeRouteTables", p, s_not_found))) {
        s_fail_call (run, "DescribeRouteTables");
        goto done;
    }
    bool routed = false, associated [S_SUBNETS] = { false };
    xmlNodePtr table = aws_xml_child (s_doc_root (doc), "routeTableSet/item");
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
        aws_params_destroy (&p);
        p = aws_params_new ();
        aws_params_add (p, "RouteTableId", rtb);
        aws_params_add (p, "DestinationCidrBlock", S_ANYWHERE);
        aws_params_add (p, "GatewayId", igw);
        doc = s_call (run, "CreateRoute", p, s_not_found);
        if (!doc && !s_code_is (run, "RouteAlreadyExists")) {
            s_fail_call (run, "CreateRoute");
            goto done;
        }
        xmlFreeDoc (doc);
    }
    for (size_t n = 0; n < S_SUBNETS; n++) {
        if (associated [n])
            continue;
        aws_params_destroy (&p);
        p = aws_params_new ();
        aws_params_add (p, "RouteTableId", rtb);
        aws_params_add (p, "SubnetId", subnets [n]);
        if (!(doc = s_call (run, "AssociateRouteTable", p, s_not_found))) {
            s_fail_call (run, "AssociateRouteTable");
            goto done;
        }
        xmlFreeDoc (doc);
    }
    rc = 0;
done:
    aws_params_destroy (&p);
    aws_params_destroy (&cp);
    return rc;
}

//  ---------------------------------------------------------------------
//  security

typedef struct {
    const char *proto;                  /* "-1": all traffic from the group itself */
    int from, to;
} s_rule_t;

typedef struct {
    const char *suffix;                 /* cluster, access, public */
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

static int
s_security_group (s_run_t *run, const char *vpc, const s_group_t *group)
{
    char name [128], id [64] = "", key [32];
    snprintf (name, sizeof name, "%s-sg-%s", run->cluster, group->suffix);
    snprintf (key, sizeof key, "sg.%s", group->suffix);
    aws_params_t *p = aws_params_new ();
    aws_params_filter (p, "vpc-id", vpc, NULL);
    aws_params_filter (p, "group-name", name, NULL);
    int rc = -1;
    xmlDocPtr found = NULL;
    for (int round = 0; round < 2 && !*id; round++) {
        xmlFreeDoc (found);
        if (!(found = s_call (run, "DescribeSecurityGroups", p, NULL))) {
            s_fail_call (run, "DescribeSecurityGroups");
            goto done;
        }
        if (s_first_text (found, "securityGroupInfo/item", "groupId", id, sizeof id) == 0 || round)
            break;
        aws_params_t *cp = aws_params_new ();
        aws_params_add (cp, "GroupName", name);
        aws_params_add (cp, "GroupDescription", group->description);
        aws_params_add (cp, "VpcId", vpc);
        s_tag_spec (run, cp, "security-group", "security", NULL, NULL, name);
        xmlDocPtr doc = s_call (run, "CreateSecurityGroup", cp, s_not_found);
        aws_params_destroy (&cp);
        if (doc) {
            const char *text = aws_xml_text (s_doc_root (doc), "groupId");
            snprintf (id, sizeof id, "%s", text? text: "");
            xmlFreeDoc (doc);
            xmlFreeDoc (found);
            found = NULL;
        }
        else
        if (!s_code_is (run, "InvalidGroup.Duplicate")) {   /* a twin made it: read it */
            s_fail_call (run, "CreateSecurityGroup");
            goto done;
        }
    }
    if (!*id) {
        s_outcome (run, AWS_STEP_FAILED, 0, "InvalidResponse", "security group %s: no id", name);
        goto done;
    }
    json_t *res = s_resource (run, key, "security_group", id);
    s_attr (res, "name", name);

    //  The rules that are missing, in one call
    xmlNodePtr item = found? aws_xml_child (s_doc_root (found), "securityGroupInfo/item"): NULL;
    aws_params_t *ap = aws_params_new ();
    aws_params_add (ap, "GroupId", id);
    int n = 0;
    for (const s_rule_t *rule = group->rules; rule->proto; rule++) {
        if (item && s_has_rule (item, rule, id))
            continue;
        n++;
        aws_params_addf (ap, rule->proto, "IpPermissions.%d.IpProtocol", n);
        if (strcmp (rule->proto, "-1") == 0)
            aws_params_addf (ap, id, "IpPermissions.%d.Groups.1.GroupId", n);
        else {
            char port [16];
            snprintf (port, sizeof port, "%d", rule->from);
            aws_params_addf (ap, port, "IpPermissions.%d.FromPort", n);
            snprintf (port, sizeof port, "%d", rule->to);
            aws_params_addf (ap, port, "IpPermissions.%d.ToPort", n);
            aws_params_addf (ap, S_ANYWHERE, "IpPermissions.%d.IpRanges.1.CidrIp", n);
        }
    }
    if (n > 0) {
        xmlDocPtr doc = s_call (run, "AuthorizeSecurityGroupIngress", ap, s_not_found);
        if (!doc && !s_code_is (run, "InvalidPermission.Duplicate")) {
            aws_params_destroy (&ap);
            s_fail_call (run, "AuthorizeSecurityGroupIngress");
            goto done;
        }
        xmlFreeDoc (doc);
    }
    aws_params_destroy (&ap);
    rc = 0;
done:
    xmlFreeDoc (found);
    aws_params_destroy (&p);
    return rc;
}

static int
s_step_security (s_run_t *run)
{
    const char *vpc = s_need (run, "vpc");
    if (!vpc)
        return -1;
    for (size_t i = 0; i < sizeof s_groups / sizeof s_groups [0]; i++)
        if (s_security_group (run, vpc, &s_groups [i]))
            return -1;
    return 0;
}

//  ---------------------------------------------------------------------
//  image

static int
s_step_image (s_run_t *run)
{
    const char *wanted = s_str (json_object_get (run->step, "config"), "image");
    bool by_id = wanted && *wanted;
    aws_params_t *p = aws_params_new ();
    if (by_id)
        aws_params_add (p, "ImageId.1", wanted);
    else {
        aws_params_add (p, "Owner.1", S_CANONICAL);
        aws_params_filter (p, "name", S_UBUNTU_IMAGES, NULL);
        aws_params_filter (p, "architecture", "x86_64", NULL);
        aws_params_filter (p, "state", "available", NULL);
    }
    xmlDocPtr doc = s_call (run, "DescribeImages", p, NULL);
    aws_params_destroy (&p);
    if (!doc)
        return s_fail_call (run, "DescribeImages");
    //  The newest: ISO 8601 dates compare as text
    xmlNodePtr best = NULL;
    const char *best_date = "";
    for (xmlNodePtr i = aws_xml_child (s_doc_root (doc), "imagesSet/item"); i; i = aws_xml_next (i)) {
        const char *date = aws_xml_text (i, "creationDate");
        const char *owner = aws_xml_text (i, "imageOwnerId");
        if (!owner)
            owner = aws_xml_text (i, "ownerId");
        if (!by_id && (!owner || strcmp (owner, S_CANONICAL) != 0))
            continue;                   /* trust nobody else's "ubuntu" */
        if (date && strcmp (date, best_date) > 0) {
            best = i;
            best_date = date;
        }
    }
    int rc = 0;
    if (!best)
        rc = by_id
           ? s_outcome (run, AWS_STEP_FAILED, 1, "InvalidAMIID.NotFound",
                        "The image id '[%s]' does not exist", wanted)
           : s_outcome (run, AWS_STEP_FAILED, 1, "ImageNotFound", "no Canonical Ubuntu "
                        "22.04 amd64 server image in region %s", run->region);
    else {
        json_t *res = s_resource (run, "image", "image", aws_xml_text (best, "imageId"));
        s_attr (res, "name", aws_xml_text (best, "name"));
        s_attr (res, "created", best_date);
        s_attr (res, "root_device_name", aws_xml_text (best, "rootDeviceName"));
    }
    xmlFreeDoc (doc);
    return rc;
}

//  ---------------------------------------------------------------------
//  keypair

static int
s_key_found (s_run_t *run, const char *name)
{
    aws_params_t *p = aws_params_new ();
    aws_params_filter (p, "key-name", name, NULL);
    xmlDocPtr doc = s_call (run, "DescribeKeyPairs", p, NULL);
    aws_params_destroy (&p);
    if (!doc)
        return s_fail_call (run, "DescribeKeyPairs");
    xmlNodePtr key = aws_xml_child (s_doc_root (doc), "keySet/item");
    if (key) {
        json_t *res = s_resource (run, "keypair", "key_pair", name);
        s_attr (res, "fingerprint", aws_xml_text (key, "keyFingerprint"));
        const char *by = aws_xml_tag (key, "dexter:imported-by");
        if (by)
            s_attr (res, "imported_by", by);
    }
    xmlFreeDoc (doc);
    return key? 1: 0;
}

static int
s_step_keypair (s_run_t *run)
{
    const char *name = s_str (json_object_get (run->step, "config"), "sshkey");
    if (!name || !*name)
        return s_outcome (run, AWS_STEP_FAILED, 1, "MissingParameter",
                          "the config has no sshkey (the key pair's name)");
    int found = s_key_found (run, name);
    if (found != 0)
        return found > 0? 0: -1;
    const char *pem = s_str (run->credentials, "sshkeydata");
    if (!pem || !*pem)
        return s_outcome (run, AWS_STEP_FAILED, 1, "InvalidKeyPair.NotFound",
                          "The key pair '%s' does not exist, and there is no sshkeydata "
                          "to import it from", name);
    char err [256];
    char *line = aws_sshkey_public (pem, err, sizeof err);
    if (!line)
        return s_outcome (run, AWS_STEP_FAILED, 1, "InvalidKey.Format", "%s", err);
    char *material = dx_base64_encode ((const unsigned char *) line, strlen (line));
    free (line);
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "KeyName", name);
    aws_params_add (p, "PublicKeyMaterial", material? material: "");
    free (material);
    aws_params_add (p, "TagSpecification.1.ResourceType", "key-pair");
    aws_params_tag (p, "TagSpecification.1", "dexter:imported-by", run->cluster);
    xmlDocPtr doc = s_call (run, "ImportKeyPair", p, NULL);
    aws_params_destroy (&p);
    if (!doc && !s_code_is (run, "InvalidKeyPair.Duplicate"))   /* a twin imported it */
        return s_fail_call (run, "ImportKeyPair");
    xmlFreeDoc (doc);
    found = s_key_found (run, name);
    if (found == 0)
        return s_outcome (run, AWS_STEP_RETRY, 0, "InvalidKeyPair.NotFound",
                          "the key pair '%s' was imported but is not visible yet", name);
    return found > 0? 0: -1;
}

//  ---------------------------------------------------------------------
//  Instances

static const char *const s_live_states [] = {
    "pending", "running", "stopping", "stopped", NULL
};

/*  The key of an instance's resource from its tags: host.access, or
    host.GROUP.SLOT with the slot from the host name's last part. */
static void
s_host_key (xmlNodePtr instance, char *key, size_t size)
{
    const char *role = aws_xml_tag (instance, "dexter:role");
    const char *group = aws_xml_tag (instance, "dexter:group");
    const char *host = aws_xml_tag (instance, "dexter:host");
    const char *dash = host? strrchr (host, '-'): NULL;
    if (role && strcmp (role, "access") == 0)
        snprintf (key, size, "host.access");
    else
    if (group && dash && dash [1])
        snprintf (key, size, "host.%s.%s", group, dash + 1);
    else
        snprintf (key, size, "host.%s", aws_xml_text (instance, "instanceId"));
}

/*  Instances of the cluster (host NULL: all of them) in a live state, or
    in any state but terminated when with_shutting_down. The answer, or
    NULL with the outcome set. */
static xmlDocPtr
s_find_instances (s_run_t *run, const char *host, bool with_shutting_down)
{
    aws_params_t *p = aws_params_new ();
    s_owned (run, p, NULL);
    if (host)
        aws_params_filter (p, "tag:dexter:host", host, NULL);
    int n = aws_params_next (p, "Filter"), m = 0;
    aws_params_addf (p, "instance-state-name", "Filter.%d.Name", n);
    for (const char *const *s = s_live_states; *s; s++)
        aws_params_addf (p, *s, "Filter.%d.Value.%d", n, ++m);
    if (with_shutting_down)
        aws_params_addf (p, "shutting-down", "Filter.%d.Value.%d", n, ++m);
    xmlDocPtr doc = s_call (run, "DescribeInstances", p, NULL);
    aws_params_destroy (&p);
    if (!doc)
        s_fail_call (run, "DescribeInstances");
    return doc;
}

/*  Each instance of a DescribeInstances or RunInstances answer. */
#define S_FOREACH_INSTANCE(doc, inst) \
    for (xmlNodePtr s_r_ = aws_xml_child (s_doc_root (doc), "reservationSet/item"); s_r_; \
         s_r_ = aws_xml_next (s_r_)) \
        for (xmlNodePtr inst = aws_xml_child (s_r_, "instancesSet/item"); inst; \
             inst = aws_xml_next (inst))

/*  Instance ids per call: a filter takes at most 200 values
    (FilterLimitExceeded beyond), and a destroy of a big cluster has more
    instances than that. */
#define S_IDS_PER_CALL 100

/*  Instances of ids[0..count) not terminated yet, asked S_IDS_PER_CALL at a
    time; -1 with the outcome set when a call fails. */
static long
s_count_alive (s_run_t *run, const char *const *ids, size_t count)
{
    long alive = 0;
    for (size_t from = 0; from < count; from += S_IDS_PER_CALL) {
        aws_params_t *p = aws_params_new ();
        int n = aws_params_next (p, "Filter");
        aws_params_addf (p, "instance-id", "Filter.%d.Name", n);
        for (size_t i = from; i < count && i < from + S_IDS_PER_CALL; i++)
            aws_params_addf (p, ids [i], "Filter.%d.Value.%zu", n, i - from + 1);
        xmlDocPtr doc = s_call (run, "DescribeInstances", p, NULL);
        aws_params_destroy (&p);
        if (!doc) {
            s_fail_call (run, "DescribeInstances");
            return -1;
        }
        S_FOREACH_INSTANCE (doc, inst) {
            const char *state = aws_xml_text (inst, "instanceState/name");
            if (state && strcmp (state, "terminated") != 0)
                alive++;
        }
        xmlFreeDoc (doc);
    }
    return alive;
}

/*  Waits until every instance of ids is terminated (or gone). 0, or -1
    with the outcome set. */
static int
s_wait_terminated (s_run_t *run, const char *const *ids, size_t count)
{
    if (count == 0)
        return 0;
    int64_t deadline = dx_mono_ms () + run->config->wait_ms;
    while (1) {
        long alive = s_count_alive (run, ids, count);
        if (alive <= 0)
            return alive < 0? -1: 0;
        if (s_cancelled (run))
            return s_outcome (run, AWS_STEP_RETRY, 0, "CANCELLED", "the job was cancelled "
                              "while waiting for %ld instance(s) to terminate", alive);
        if (dx_mono_ms () >= deadline)
            return s_outcome (run, AWS_STEP_RETRY, 0, "WaitTimeout", "%ld instance(s) still "
                              "not terminated after %lld ms", alive,
                              (long long) run->config->wait_ms);
        dx_sleep_ms (run->config->poll_ms);
    }
}

/*  Terminates ids, S_IDS_PER_CALL at a time, and waits until they are
    terminated. */
static int
s_terminate (s_run_t *run, const char *const *ids, size_t count)
{
    for (size_t from = 0; from < count; from += S_IDS_PER_CALL) {
        size_t n = count - from < S_IDS_PER_CALL? count - from: S_IDS_PER_CALL;
        aws_params_t *p = aws_params_new ();
        aws_params_list (p, "InstanceId", ids + from, n);
        xmlDocPtr doc = s_call (run, "TerminateInstances", p, NULL);
        aws_params_destroy (&p);
        if (!doc && !s_code_is (run, "InvalidInstanceID.NotFound"))
            return s_fail_call (run, "TerminateInstances");
        xmlFreeDoc (doc);
    }
    return s_wait_terminated (run, ids, count);
}

/*  Waits until instance id runs; its DescribeInstances item's document
    (caller frees), or NULL with the outcome set. */
static xmlDocPtr
s_wait_running (s_run_t *run, const char *id)
{
    int64_t deadline = dx_mono_ms () + run->config->wait_ms;
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "InstanceId.1", id);
    xmlDocPtr result = NULL;
    while (1) {
        //  Just after RunInstances the id may not be visible yet
        xmlDocPtr doc = s_call (run, "DescribeInstances", p, s_not_found);
        if (!doc) {
            s_fail_call (run, "DescribeInstances");
            break;
        }
        char state [32] = "";
        S_FOREACH_INSTANCE (doc, inst) {
            const char *text = aws_xml_text (inst, "instanceState/name");
            snprintf (state, sizeof state, "%s", text? text: "");
        }
        if (strcmp (state, "running") == 0) {
            result = doc;
            break;
        }
        xmlFreeDoc (doc);
        if (strcmp (state, "shutting-down") == 0 || strcmp (state, "terminated") == 0
        ||  strcmp (state, "stopped") == 0 || strcmp (state, "stopping") == 0) {
            s_outcome (run, AWS_STEP_RETRY, 0, "IncorrectInstanceState",
                       "instance %s is %s, not running", id, state);
            break;
        }
        if (s_cancelled (run)) {
            s_outcome (run, AWS_STEP_RETRY, 0, "CANCELLED", "the job was cancelled while "
                       "instance %s was starting", id);
            break;
        }
        if (dx_mono_ms () >= deadline) {
            s_outcome (run, AWS_STEP_RETRY, 0, "WaitTimeout", "instance %s is still %s "
                       "after %lld ms", id, state, (long long) run->config->wait_ms);
            break;
        }
        dx_sleep_ms (run->config->poll_ms);
    }
    aws_params_destroy (&p);
    return result;
}

//  ---------------------------------------------------------------------
//  host

/*  The root device of image (DescribeImages rootDeviceName, else
    /dev/sda1) into buf; 0, or -1 with the outcome set. */
static int
s_root_device (s_run_t *run, const char *image, char *buf, size_t size)
{
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "ImageId.1", image);
    xmlDocPtr doc = s_call (run, "DescribeImages", p, NULL);
    aws_params_destroy (&p);
    if (!doc)
        return s_fail_call (run, "DescribeImages");
    int none = s_first_text (doc, "imagesSet/item", "imageId", buf, size);
    if (s_first_text (doc, "imagesSet/item", "rootDeviceName", buf, size))
        snprintf (buf, size, "/dev/sda1");
    xmlFreeDoc (doc);
    if (none)
        return s_outcome (run, AWS_STEP_FAILED, 1, "InvalidAMIID.NotFound",
                          "The image id '[%s]' does not exist", image);
    return 0;
}

/*  RunInstances' parameters for the host step; NULL with the outcome set. */
static aws_params_t *
s_run_params (s_run_t *run, const char *token)
{
    const json_t *step = run->step;
    const char *role = s_str (step, "role"), *group = s_str (step, "group");
    const char *host = s_str (step, "hostname"), *type = s_str (step, "instance_type");
    const char *private_ip = s_str (step, "private_ip");
    bool public = json_is_true (json_object_get (step, "public"));
    json_int_t disk_size = json_integer_value (json_object_get (step, "disk_size"));
    //  Agents in theirs, the access node and masters (fixed addresses) in the other
    const char *subnet = s_need (run, strcmp (role, "agent") == 0? "subnet.agents": "subnet");
    const char *sg_cluster = s_need (run, "sg.cluster");
    const char *image = s_need (run, "image"), *key = s_need (run, "keypair");
    const char *sg_access = strcmp (role, "access") == 0? s_need (run, "sg.access"): NULL;
    const char *sg_public = public? s_need (run, "sg.public"): NULL;
    if (!subnet || !sg_cluster || !image || !key || (strcmp (role, "access") == 0 && !sg_access)
    ||  (public && !sg_public))
        return NULL;
    if (!type || !*type)
        return s_outcome (run, AWS_STEP_FAILED, 1, "MissingParameter", "the host step "
                          "has no instance_type"), NULL;
    char root [64];
    if (s_root_device (run, image, root, sizeof root))
        return NULL;

    char err [256];
    char *script = dx_provision_script (run->cluster, step, err, sizeof err);
    if (!script)
        return s_outcome (run, AWS_STEP_FAILED, 1, "InvalidUserData", "%s", err), NULL;
    char *user_data = dx_base64_encode ((const unsigned char *) script, strlen (script));
    free (script);

    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "ImageId", image);
    aws_params_add (p, "InstanceType", type);
    aws_params_add (p, "MinCount", "1");
    aws_params_add (p, "MaxCount", "1");
    aws_params_add (p, "KeyName", key);
    aws_params_add (p, "ClientToken", token);
    aws_params_add (p, "UserData", user_data? user_data: "");
    free (user_data);

    //  Root volume, then one EBS volume per disk; all go with the instance
    char size [32];
    snprintf (size, sizeof size, "%lld", (long long) (disk_size > 0? disk_size: 8));
    aws_params_add (p, "BlockDeviceMapping.1.DeviceName", root);
    aws_params_add (p, "BlockDeviceMapping.1.Ebs.VolumeSize", size);
    aws_params_add (p, "BlockDeviceMapping.1.Ebs.VolumeType", "gp2");
    aws_params_add (p, "BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true");
    size_t i;
    json_t *disk;
    json_array_foreach (json_object_get (step, "disks"), i, disk) {
        int n = (int) i + 2;
        const char *device = s_str (disk, "device"), *vtype = s_str (disk, "type");
        json_int_t gb = json_integer_value (json_object_get (disk, "size"));
        char path [32];
        snprintf (path, sizeof path, "/dev/%s", device? device: "");
        snprintf (size, sizeof size, "%lld", (long long) gb);
        aws_params_addf (p, path, "BlockDeviceMapping.%d.DeviceName", n);
        aws_params_addf (p, size, "BlockDeviceMapping.%d.Ebs.VolumeSize", n);
        aws_params_addf (p, vtype? vtype: "gp2", "BlockDeviceMapping.%d.Ebs.VolumeType", n);
        aws_params_addf (p, "true", "BlockDeviceMapping.%d.Ebs.DeleteOnTermination", n);
        if (vtype && (strcmp (vtype, "io1") == 0 || strcmp (vtype, "io2") == 0)) {
            //  Provisioned IOPS are required: 3000, within 100 and 50 per GB
            json_int_t iops = gb * 50 < 3000? gb * 50: 3000;
            snprintf (size, sizeof size, "%lld", (long long) (iops < 100? 100: iops));
            aws_params_addf (p, size, "BlockDeviceMapping.%d.Ebs.Iops", n);
        }
    }

    //  Network: a public agent's public address comes with its interface
    const char *groups [] = { sg_cluster, sg_access? sg_access: sg_public, sg_public };
    size_t group_count = 1 + (sg_access || sg_public) + (sg_access && sg_public);
    if (public) {
        aws_params_add (p, "NetworkInterface.1.DeviceIndex", "0");
        aws_params_add (p, "NetworkInterface.1.SubnetId", subnet);
        aws_params_add (p, "NetworkInterface.1.AssociatePublicIpAddress", "true");
        aws_params_add (p, "NetworkInterface.1.DeleteOnTermination", "true");
        aws_params_list (p, "NetworkInterface.1.SecurityGroupId", groups, group_count);
        if (private_ip && *private_ip)
            aws_params_add (p, "NetworkInterface.1.PrivateIpAddress", private_ip);
    }
    else {
        aws_params_add (p, "SubnetId", subnet);
        aws_params_list (p, "SecurityGroupId", groups, group_count);
        if (private_ip && *private_ip)
            aws_params_add (p, "PrivateIpAddress", private_ip);
    }
    s_tag_spec (run, p, "instance", role, group, host, host);
    s_tag_spec (run, p, "volume", role, group, host, host);
    return p;
}

/*  Who holds the host's fixed private address in its subnet, when
    RunInstances says InvalidIPAddress.InUse: 1 to wait (an instance of
    this cluster shutting down, say a replaced master, or none seen yet:
    AWS's lists lag), 0 when a live instance holds it, with the outcome
    set (failed and permanent: no wait frees it; the message names the
    holder), -1 when the lookup failed (outcome set). */
static int
s_address_free_soon (s_run_t *run)
{
    const char *role = s_str (run->step, "role"), *ip = s_str (run->step, "private_ip");
    const char *subnet = s_str (run->context, strcmp (role, "agent") == 0? "subnet.agents": "subnet");
    aws_params_t *p = aws_params_new ();
    aws_params_filter (p, "subnet-id", subnet? subnet: "", NULL);
    aws_params_filter (p, "private-ip-address", ip? ip: "", NULL);
    xmlDocPtr doc = s_call (run, "DescribeInstances", p, NULL);
    aws_params_destroy (&p);
    if (!doc)
        return s_fail_call (run, "DescribeInstances");
    char holder [64] = "", state [32] = "", owner [128] = "";
    S_FOREACH_INSTANCE (doc, inst) {
        const char *st = aws_xml_text (inst, "instanceState/name");
        if (!st || strcmp (st, "terminated") == 0 || strcmp (st, "shutting-down") == 0)
            continue;
        const char *text = aws_xml_text (inst, "instanceId");
        snprintf (holder, sizeof holder, "%s", text? text: "?");
        snprintf (state, sizeof state, "%s", st);
        for (xmlNodePtr tag = aws_xml_child (inst, "tagSet/item"); tag; tag = aws_xml_next (tag)) {
            const char *k = aws_xml_text (tag, "key"), *v = aws_xml_text (tag, "value");
            if (k && v && strcmp (k, "dexter:cluster") == 0)
                snprintf (owner, sizeof owner, "%s", v);
        }
    }
    xmlFreeDoc (doc);
    if (!*holder)
        return 1;
    return s_outcome (run, AWS_STEP_FAILED, 1, "InvalidIPAddress.InUse",
                      "host %s needs the private address %s, which instance %s (%s%s%s) "
                      "holds; terminate that instance or free the address, then deploy again",
                      s_str (run->step, "hostname"), ip? ip: "", holder, state,
                      *owner? ", of cluster ": ", not Dexter's", owner), 0;
}

/*  Runs the instance with the step's client token. A token whose instance
    is already gone (terminated by hand, say) gives the same dead
    reservation forever, so then it runs once more with a token derived
    from the dead instance's id, still the same on every retry. The new
    instance's id into id; 0, or -1 with the outcome set. */
static int
s_run_instance (s_run_t *run, char *id, size_t size)
{
    const char *base = s_str (run->step, "client_token");
    if (!base || !*base || strlen (base) > 64)
        return s_outcome (run, AWS_STEP_FAILED, 1, "InvalidStep",
                          "the host step's client_token is missing or longer than 64");
    char token [65];
    snprintf (token, sizeof token, "%s", base);
    for (int round = 0; round < 2; round++) {
        aws_params_t *p = s_run_params (run, token);
        if (!p)
            return -1;
        //  A fixed private address may still be held by an instance that
        //  is shutting down (a replaced master): wait until it is free; a
        //  live holder fails the step at once
        int64_t deadline = dx_mono_ms () + run->config->wait_ms;
        int waits = 0;
        xmlDocPtr doc;
        while (!(doc = s_call (run, "RunInstances", p, s_not_found))
        &&  s_code_is (run, "InvalidIPAddress.InUse") && dx_mono_ms () < deadline
        &&  !s_cancelled (run)) {
            aws_error_t in_use = run->err;
            int wait = s_address_free_soon (run);
            if (wait <= 0) {
                aws_params_destroy (&p);
                return -1;
            }
            run->err = in_use;
            dx_log (waits++? DX_LOG_DEBUG: DX_LOG_INFO, "host %s: address %s is still held "
                    "by an instance shutting down; waiting", s_str (run->step, "hostname"),
                    s_str (run->step, "private_ip"));
            dx_sleep_ms (run->config->poll_ms);
        }
        aws_params_destroy (&p);
        if (!doc)
            return s_fail_call (run, "RunInstances");
        char state [32] = "";
        *id = 0;
        for (xmlNodePtr inst = aws_xml_child (s_doc_root (doc), "instancesSet/item"); inst;
             inst = aws_xml_next (inst)) {
            const char *text = aws_xml_text (inst, "instanceId");
            const char *st = aws_xml_text (inst, "instanceState/name");
            snprintf (id, size, "%s", text? text: "");
            snprintf (state, sizeof state, "%s", st? st: "");
        }
        xmlFreeDoc (doc);
        if (*id && strcmp (state, "terminated") != 0 && strcmp (state, "shutting-down") != 0)
            return 0;
        //  The token's instance is gone: derive a token from it
        const char *dead = *id? id: "none";
        size_t dead_len = strlen (dead);
        snprintf (token, sizeof token, "%.55s-%s", base,
                  dead + (dead_len > 8? dead_len - 8: 0));
        dx_info ("host %s: client token's instance %s is %s; running anew",
                 s_str (run->step, "hostname"), dead, *state? state: "gone");
    }
    return s_outcome (run, AWS_STEP_RETRY, 0, "IncorrectInstanceState",
                      "the instances of this host's client tokens are gone");
}

/*  The access node's Elastic IP: found by tag or allocated, then
    associated with instance. Its public IP into ip. */
static int
s_access_address (s_run_t *run, const char *instance, char *ip, size_t size)
{
    aws_params_t *p = aws_params_new ();
    s_owned (run, p, "access");
    xmlDocPtr doc = s_call (run, "DescribeAddresses", p, NULL);
    aws_params_destroy (&p);
    if (!doc)
        return s_fail_call (run, "DescribeAddresses");
    char alloc [64] = "", owner [64] = "";
    s_first_text (doc, "addressesSet/item", "allocationId", alloc, sizeof alloc);
    s_first_text (doc, "addressesSet/item", "publicIp", ip, size);
    s_first_text (doc, "addressesSet/item", "instanceId", owner, sizeof owner);
    xmlFreeDoc (doc);
    if (!*alloc) {
        char name [128];
        snprintf (name, sizeof name, "%s-eip-access", run->cluster);
        p = aws_params_new ();
        aws_params_add (p, "Domain", "vpc");
        s_tag_spec (run, p, "elastic-ip", "access", "access", NULL, name);
        doc = s_call (run, "AllocateAddress", p, NULL);
        aws_params_destroy (&p);
        if (!doc)
            return s_fail_call (run, "AllocateAddress");
        const char *text = aws_xml_text (s_doc_root (doc), "allocationId");
        snprintf (alloc, sizeof alloc, "%s", text? text: "");
        text = aws_xml_text (s_doc_root (doc), "publicIp");
        snprintf (ip, size, "%s", text? text: "");
        xmlFreeDoc (doc);
    }
    json_t *res = s_resource (run, "eip.access", "address", alloc);
    s_attr (res, "public_ip", ip);
    if (strcmp (owner, instance) == 0)
        return 0;
    p = aws_params_new ();
    aws_params_add (p, "AllocationId", alloc);
    aws_params_add (p, "InstanceId", instance);
    aws_params_add (p, "AllowReassociation", "true");
    const char *const waits [] = { "IncorrectInstanceState", "InvalidInstanceID.NotFound",
                                   "InvalidAllocationID.NotFound", NULL };
    doc = s_call (run, "AssociateAddress", p, waits);
    aws_params_destroy (&p);
    if (!doc)
        return s_fail_call (run, "AssociateAddress");
    xmlFreeDoc (doc);
    return 0;
}

/*  A host has one instance. Twins (an attempt of an earlier generation
    that launched after this one looked, say) are billed for nothing: all
    but keep are terminated, without waiting (a destroy finds any that
    linger by their tags). A failure is logged, not fatal to the step. */
static void
s_terminate_twins (s_run_t *run, xmlDocPtr doc, const char *host, const char *keep)
{
    const char *twins [16];
    size_t count = 0;
    S_FOREACH_INSTANCE (doc, inst) {
        const char *text = aws_xml_text (inst, "instanceId");
        if (text && strcmp (text, keep) && count < sizeof twins / sizeof twins [0])
            twins [count++] = text;
    }
    if (count == 0)
        return;
    aws_params_t *p = aws_params_new ();
    aws_params_list (p, "InstanceId", twins, count);
    xmlDocPtr done = s_call (run, "TerminateInstances", p, NULL);
    aws_params_destroy (&p);
    for (size_t i = 0; i < count; i++)
        dx_warn ("cluster %s: host %s runs as %s; its twin %s %s", run->cluster, host, keep,
                 twins [i], done? "is terminated": "could not be terminated (a destroy will)");
    xmlFreeDoc (done);
}

static int
s_step_host (s_run_t *run)
{
    const json_t *step = run->step;
    const char *role = s_str (step, "role"), *group = s_str (step, "group");
    const char *host = s_str (step, "hostname");
    if (!role || !group || !host
    ||  (strcmp (role, "access") != 0 && strcmp (role, "master") != 0
         && strcmp (role, "agent") != 0))
        return s_outcome (run, AWS_STEP_FAILED, 1, "InvalidStep",
                          "the host step needs role (access, master, agent), group and hostname");
    bool access = strcmp (role, "access") == 0;
    char key [96];
    if (access)
        snprintf (key, sizeof key, "host.access");
    else
        snprintf (key, sizeof key, "host.%s.%lld", group,
                  (long long) json_integer_value (json_object_get (step, "slot")));

    //  Found by its host name tag, or run
    char id [64] = "";
    xmlDocPtr doc = s_find_instances (run, host, false);
    if (!doc)
        return -1;
    S_FOREACH_INSTANCE (doc, inst) {
        const char *text = aws_xml_text (inst, "instanceId");
        if (text && (!*id || strcmp (text, id) < 0))    /* twins: the same one every time */
            snprintf (id, sizeof id, "%s", text);
    }
    s_terminate_twins (run, doc, host, id);
    xmlFreeDoc (doc);
    if (!*id && s_run_instance (run, id, sizeof id))
        return -1;
    json_t *res = s_resource (run, key, "instance", id);
    s_attr (res, "hostname", host);
    s_attr (res, "group", group);
    s_attr (res, "role", role);
    json_object_set_new (res, "slot", json_integer (json_integer_value (json_object_get (step, "slot"))));
    s_attr (res, "state", "pending");

    doc = s_wait_running (run, id);
    if (!doc)
        return -1;
    char private_ip [64] = "", public_ip [64] = "", launched [64] = "", type [64] = "";
    S_FOREACH_INSTANCE (doc, inst) {
        const char *text = aws_xml_text (inst, "privateIpAddress");
        snprintf (private_ip, sizeof private_ip, "%s", text? text: "");
        text = aws_xml_text (inst, "ipAddress");
        snprintf (public_ip, sizeof public_ip, "%s", text? text: "");
        text = aws_xml_text (inst, "launchTime");
        snprintf (launched, sizeof launched, "%s", text? text: "");
        text = aws_xml_text (inst, "instanceType");
        snprintf (type, sizeof type, "%s", text? text: "");
    }
    xmlFreeDoc (doc);
    s_attr (res, "state", "running");
    s_attr (res, "private_ip", private_ip);
    s_attr (res, "public_ip", public_ip);
    s_attr (res, "launched_at", launched);
    s_attr (res, "instance_type", type);
    if (access) {
        if (s_access_address (run, id, public_ip, sizeof public_ip))
            return -1;
        s_attr (res, "public_ip", public_ip);
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  remove and destroy.instances

/*  Terminates the instances of doc (an answer of s_find_instances) and
    waits until they are terminated; reports each under fixed_key, or its
    key from its tags (s_host_key) when fixed_key is NULL, with `state`
    (or shutting-down when the wait did not end well). */
static int
s_terminate_all (s_run_t *run, xmlDocPtr doc, const char *fixed_key, const char *state)
{
    size_t count = 0, cap = 16;
    const char **ids = calloc (cap, sizeof *ids);
    int rc = 0;
    S_FOREACH_INSTANCE (doc, inst) {
        const char *id = aws_xml_text (inst, "instanceId");
        if (!id || !*id)
            continue;
        if (count == cap) {
            const char **more = realloc (ids, 2 * cap * sizeof *ids);
            if (!more)
                break;
            ids = more;
            cap *= 2;
        }
        ids [count++] = id;
    }
    if (ids)
        rc = s_terminate (run, ids, count);
    else
        rc = s_outcome (run, AWS_STEP_RETRY, 0, "OutOfMemory", "out of memory");
    S_FOREACH_INSTANCE (doc, inst) {
        char key [128];
        if (fixed_key)
            snprintf (key, sizeof key, "%s", fixed_key);
        else
            s_host_key (inst, key, sizeof key);
        json_t *res = s_resource (run, key, "instance", aws_xml_text (inst, "instanceId"));
        s_attr (res, "hostname", aws_xml_tag (inst, "dexter:host"));
        s_attr (res, "state", rc == 0? state: "shutting-down");
    }
    free (ids);
    return rc;
}

static int
s_step_remove (s_run_t *run)
{
    const char *host = s_str (run->step, "hostname"), *group = s_str (run->step, "group");
    if (!host || !*host || !group)
        return s_outcome (run, AWS_STEP_FAILED, 1, "InvalidStep",
                          "the remove step needs group and hostname");
    char key [96];
    snprintf (key, sizeof key, "host.%s.%lld", group,
              (long long) json_integer_value (json_object_get (run->step, "slot")));
    xmlDocPtr doc = s_find_instances (run, host, true);
    if (!doc)
        return -1;
    bool any = aws_xml_child (s_doc_root (doc), "reservationSet/item") != NULL;
    int rc = s_terminate_all (run, doc, key, "terminated");
    xmlFreeDoc (doc);
    if (!any) {                         /* already gone: say so, so it is forgotten */
        json_t *res = s_resource (run, key, "instance", "");
        s_attr (res, "hostname", host);
        s_attr (res, "state", "terminated");
    }
    return rc;
}

/*  Rounds of find-and-terminate: one DescribeInstances answer holds at
    most 1000 instances, and what is terminated drops out of the next. */
#define S_DESTROY_ROUNDS 50

static int
s_step_destroy_instances (s_run_t *run)
{
    for (int round = 0; round < S_DESTROY_ROUNDS; round++) {
        xmlDocPtr doc = s_find_instances (run, NULL, true);
        if (!doc)
            return -1;
        bool any = aws_xml_child (s_doc_root (doc), "reservationSet/item") != NULL;
        int rc = any? s_terminate_all (run, doc, NULL, "deleted"): 0;
        xmlFreeDoc (doc);
        if (rc || !any)
            return rc;
    }
    return s_outcome (run, AWS_STEP_RETRY, 0, "WaitTimeout", "instances of cluster %s "
                      "were still there after %d rounds of termination", run->cluster,
                      S_DESTROY_ROUNDS);
}

//  ---------------------------------------------------------------------
//  destroy.addresses, destroy.security, destroy.network

static int
s_step_destroy_addresses (s_run_t *run)
{
    aws_params_t *p = aws_params_new ();
    s_owned (run, p, NULL);
    xmlDocPtr doc = s_call (run, "DescribeAddresses", p, NULL);
    aws_params_destroy (&p);
    if (!doc)
        return s_fail_call (run, "DescribeAddresses");
    int rc = 0;
    for (xmlNodePtr a = aws_xml_child (s_doc_root (doc), "addressesSet/item"); a && rc == 0;
         a = aws_xml_next (a)) {
        const char *alloc = aws_xml_text (a, "allocationId");
        const char *assoc = aws_xml_text (a, "associationId");
        if (!alloc)
            continue;
        if (assoc && *assoc) {
            p = aws_params_new ();
            aws_params_add (p, "AssociationId", assoc);
            xmlDocPtr r = s_call (run, "DisassociateAddress", p, NULL);
            aws_params_destroy (&p);
            if (!r && !s_code_is (run, "InvalidAssociationID.NotFound")) {
                rc = s_fail_call (run, "DisassociateAddress");
                break;
            }
            xmlFreeDoc (r);
        }
        p = aws_params_new ();
        aws_params_add (p, "AllocationId", alloc);
        const char *const waits [] = { "InvalidIPAddress.InUse", NULL };
        xmlDocPtr r = s_call (run, "ReleaseAddress", p, waits);
        aws_params_destroy (&p);
        if (!r && !s_code_is (run, "InvalidAllocationID.NotFound")) {
            rc = s_fail_call (run, "ReleaseAddress");
            break;
        }
        xmlFreeDoc (r);
        const char *role = aws_xml_tag (a, "dexter:role");
        char key [96];
        snprintf (key, sizeof key, "eip.%s", role? role: alloc);
        json_t *res = s_resource (run, key, "address", alloc);
        s_attr (res, "public_ip", aws_xml_text (a, "publicIp"));
        s_attr (res, "state", "deleted");
    }
    xmlFreeDoc (doc);
    return rc;
}

/*  Deletes resource id with action (param = id), tolerating "already gone"
    (gone_code) and waiting out DependencyViolation; reports it deleted. */
static int
s_delete (s_run_t *run, const char *action, const char *param, const char *id,
          const char *gone_code, const char *key, const char *kind)
{
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, param, id);
    xmlDocPtr doc = s_call (run, action, p, s_dependency);
    aws_params_destroy (&p);
    if (!doc && !s_code_is (run, gone_code))
        return s_fail_call (run, action);
    xmlFreeDoc (doc);
    json_t *res = s_resource (run, key, kind, id);
    s_attr (res, "state", "deleted");
    return 0;
}

/*  The cluster's resources of a Describe action (all with the ownership
    tag); NULL with the outcome set. */
static xmlDocPtr
s_describe_owned (s_run_t *run, const char *action)
{
    aws_params_t *p = aws_params_new ();
    s_owned (run, p, NULL);
    xmlDocPtr doc = s_call (run, action, p, NULL);
    aws_params_destroy (&p);
    if (!doc)
        s_fail_call (run, action);
    return doc;
}

static int
s_step_destroy_security (s_run_t *run)
{
    xmlDocPtr doc = s_describe_owned (run, "DescribeSecurityGroups");
    if (!doc)
        return -1;
    int rc = 0;
    for (xmlNodePtr g = aws_xml_child (s_doc_root (doc), "securityGroupInfo/item"); g && rc == 0;
         g = aws_xml_next (g)) {
        const char *id = aws_xml_text (g, "groupId");
        const char *name = aws_xml_text (g, "groupName");
        const char *dash = name? strrchr (name, '-'): NULL;
        char key [96];
        snprintf (key, sizeof key, "sg.%s", dash? dash + 1: id);
        if (id)
            rc = s_delete (run, "DeleteSecurityGroup", "GroupId", id, "InvalidGroup.NotFound",
                           key, "security_group");
    }
    xmlFreeDoc (doc);
    return rc;
}

static int
s_step_destroy_network (s_run_t *run)
{
    int rc = 0;
    //  Route tables, after their associations
    xmlDocPtr doc = s_describe_owned (run, "DescribeRouteTables");
    if (!doc)
        return -1;
    for (xmlNodePtr t = aws_xml_child (s_doc_root (doc), "routeTableSet/item"); t && rc == 0;
         t = aws_xml_next (t)) {
        for (xmlNodePtr a = aws_xml_child (t, "associationSet/item"); a && rc == 0;
             a = aws_xml_next (a)) {
            const char *assoc = aws_xml_text (a, "routeTableAssociationId");
            const char *main_flag = aws_xml_text (a, "main");
            if (!assoc || (main_flag && strcmp (main_flag, "true") == 0))
                continue;
            aws_params_t *p = aws_params_new ();
            aws_params_add (p, "AssociationId", assoc);
            xmlDocPtr r = s_call (run, "DisassociateRouteTable", p, NULL);
            aws_params_destroy (&p);
            if (!r && !s_code_is (run, "InvalidAssociationID.NotFound"))
                rc = s_fail_call (run, "DisassociateRouteTable");
            xmlFreeDoc (r);
        }
        if (rc == 0)
            rc = s_delete (run, "DeleteRouteTable", "RouteTableId",
                           aws_xml_text (t, "routeTableId"), "InvalidRouteTableID.NotFound",
                           "rtb", "route_table");
    }
    xmlFreeDoc (doc);
    if (rc)
        return rc;

    //  Subnets (instances are gone: destroy.instances ran first)
    if (!(doc = s_describe_owned (run, "DescribeSubnets")))
        return -1;
    for (xmlNodePtr s = aws_xml_child (s_doc_root (doc), "subnetSet/item"); s && rc == 0;
         s = aws_xml_next (s)) {
        //  Reported under the key it was made with (its Name says which)
        const char *key = "subnet";
        const char *name = aws_xml_tag (s, "Name");
        for (size_t n = 0; name && n < S_SUBNETS; n++) {
            size_t len = strlen (name), suffix = strlen (s_subnets [n].suffix);
            if (len > suffix && strcmp (name + len - suffix, s_subnets [n].suffix) == 0
            &&  name [len - suffix - 1] == '-')
                key = s_subnets [n].key;
        }
        rc = s_delete (run, "DeleteSubnet", "SubnetId", aws_xml_text (s, "subnetId"),
                       "InvalidSubnetID.NotFound", key, "subnet");
    }
    xmlFreeDoc (doc);
    if (rc)
        return rc;

    //  Internet gateways: detached (after the addresses are released), deleted
    if (!(doc = s_describe_owned (run, "DescribeInternetGateways")))
        return -1;
    for (xmlNodePtr g = aws_xml_child (s_doc_root (doc), "internetGatewaySet/item"); g && rc == 0;
         g = aws_xml_next (g)) {
        const char *igw = aws_xml_text (g, "internetGatewayId");
        for (xmlNodePtr a = aws_xml_child (g, "attachmentSet/item"); a && rc == 0;
             a = aws_xml_next (a)) {
            aws_params_t *p = aws_params_new ();
            aws_params_add (p, "InternetGatewayId", igw);
            aws_params_add (p, "VpcId", aws_xml_text (a, "vpcId"));
            xmlDocPtr r = s_call (run, "DetachInternetGateway", p, s_dependency);
            aws_params_destroy (&p);
            if (!r && !s_code_is (run, "Gateway.NotAttached")
            &&  !s_code_is (run, "InvalidInternetGatewayID.NotFound")
            &&  !s_code_is (run, "InvalidVpcID.NotFound"))
                rc = s_fail_call (run, "DetachInternetGateway");
            xmlFreeDoc (r);
        }
        if (rc == 0)
            rc = s_delete (run, "DeleteInternetGateway", "InternetGatewayId", igw,
                           "InvalidInternetGatewayID.NotFound", "igw", "internet_gateway");
    }
    xmlFreeDoc (doc);
    if (rc)
        return rc;

    //  VPCs (their main route table and default group go with them)
    if (!(doc = s_describe_owned (run, "DescribeVpcs")))
        return -1;
    for (xmlNodePtr v = aws_xml_child (s_doc_root (doc), "vpcSet/item"); v && rc == 0;
         v = aws_xml_next (v))
        rc = s_delete (run, "DeleteVpc", "VpcId", aws_xml_text (v, "vpcId"),
                       "InvalidVpcID.NotFound", "vpc", "vpc");
    xmlFreeDoc (doc);
    return rc;
}

//  ---------------------------------------------------------------------
//  Dispatch

typedef int (s_step_fn) (s_run_t *run);

static const struct {
    const char *kind;
    s_step_fn *fn;
} s_steps [] = {
    { "network", s_step_network },
    { "security", s_step_security },
    { "image", s_step_image },
    { "keypair", s_step_keypair },
    { "host", s_step_host },
    { "remove", s_step_remove },
    { "destroy.instances", s_step_destroy_instances },
    { "destroy.addresses", s_step_destroy_addresses },
    { "destroy.security", s_step_destroy_security },
    { "destroy.network", s_step_destroy_network },
};

int
aws_step_run (const aws_steps_config_t *config, const json_t *assign, aws_step_out_t *out)
{
    aws_steps_config_t defaults = AWS_STEPS_CONFIG_DEFAULT;
    s_run_t run = {
        .config = config? config: &defaults,
        .step = json_object_get (assign, "step"),
        .credentials = json_object_get (assign, "credentials"),
        .cluster = s_str (assign, "cluster"),
        .out = out,
    };
    run.context = json_object_get (run.step, "context");
    run.uid = s_str (run.step, "uid");
    run.region = s_str (json_object_get (run.step, "config"), "region");
    const char *kind = s_str (run.step, "kind");
    s_step_fn *fn = NULL;
    for (size_t i = 0; kind && i < sizeof s_steps / sizeof s_steps [0]; i++)
        if (strcmp (s_steps [i].kind, kind) == 0)
            fn = s_steps [i].fn;
    if (!fn)
        return s_outcome (&run, AWS_STEP_FAILED, 1, "InvalidStep", "unknown step kind %s",
                          kind? kind: "(none)");
    if (!run.cluster || !*run.cluster || !run.uid)
        return s_outcome (&run, AWS_STEP_FAILED, 1, "InvalidStep",
                          "the job has no cluster or its step no uid");
    const char *akid = s_str (run.credentials, "aws_access_key_id");
    const char *secret = s_str (run.credentials, "aws_secret_access_key");
    const char *token = s_str (run.credentials, "aws_session_token");
    if (!akid || !*akid || !secret || !*secret)
        return s_outcome (&run, AWS_STEP_FAILED, 1, "AuthFailure", "the deployment's "
                          "credentials lack aws_access_key_id or aws_secret_access_key");
    //  The client copies the credentials and wipes its copies when destroyed
    run.ec2 = aws_ec2_new (run.region? run.region: "", akid, secret, token);
    if (!run.ec2)
        return s_outcome (&run, AWS_STEP_FAILED, 1, "InvalidParameterValue",
                          "config.region '%s' is not an AWS region name",
                          run.region? run.region: "");
    aws_ec2_set_limits (run.ec2, run.config->limits);
    if (run.config->retry)
        aws_ec2_set_retry (run.ec2, run.config->retry);
    aws_ec2_set_cancel (run.ec2, out->cancelled, out->cancel_arg);
    fn (&run);
    aws_ec2_destroy (&run.ec2);
    sodium_memzero (&run.err, sizeof run.err);
    return out->outcome == AWS_STEP_DONE? 0: -1;
}
