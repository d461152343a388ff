/*  harness_aws: the fake EC2 and the scheduler's jobs for the tests of
    services/aws-worker. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_aws.h"

int
ta_fake_up (th_fake_t *fake, const char *prefix, const char *const *args)
{
    if (th_tmpdir (fake->dir, sizeof fake->dir, prefix))
        return -1;
    fake->pid = th_fake_ec2_start (fake->dir, args, fake->endpoint, sizeof fake->endpoint);
    if (fake->pid < 0)
        return -1;
    setenv ("AWS_ENDPOINT_URL_EC2", fake->endpoint, 1);
    unsetenv ("AWS_ENDPOINT_URL");
    return 0;
}

void
ta_cluster_init (ta_cluster_t *c, const char *name, const char *sshkey, const char *akid,
                 const char *secret)
{
    memset (c, 0, sizeof *c);
    c->name = name;
    c->context = json_pack ("{s:s}", "masters_ips", "10.0.0.11");
    c->config = json_pack ("{s:s, s:s, s:s, s:i}", "region", "us-west-2", "sshkey", sshkey,
                           "master_type", "m5.large", "masters", 1);
    snprintf (c->akid, sizeof c->akid, "%s", akid);
    snprintf (c->secret, sizeof c->secret, "%s", secret);
}

void
ta_cluster_fini (ta_cluster_t *c)
{
    json_decref (c->context);
    json_decref (c->config);
}

json_t *
ta_assign (ta_cluster_t *c, const char *kind, const char *id, json_t *extra)
{
    json_t *step = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:O, s:O}",
        "kind", kind, "id", id, "provider", "aws", "cluster_type", "mesos",
        "uid", "0123456789ab", "config", c->config, "context", c->context);
    if (extra)
        json_object_update (step, extra);
    json_decref (extra);
    json_t *credentials = json_pack ("{s:s, s:s}", "aws_access_key_id", c->akid,
                                     "aws_secret_access_key", c->secret);
    if (strcmp (kind, "keypair") == 0 && c->sshkeydata)
        json_object_set_new (credentials, "sshkeydata", json_string (c->sshkeydata));
    char job [128];
    snprintf (job, sizeof job, "%s:1:%s", c->name, id);
    return json_pack ("{s:s, s:i, s:s, s:i, s:o, s:o, s:i}", "job", job, "attempt", 1,
                      "cluster", c->name, "generation", 1, "step", step,
                      "credentials", credentials, "lease_ms", 30000);
}

/*  job.progress of a cluster's step: the text, a line, after the others. */
static void
s_on_progress (void *arg, const char *text)
{
    ta_cluster_t *c = arg;
    size_t len = strlen (c->progress);
    snprintf (c->progress + len, c->progress_size - len, "%s\n", text);
}

void
ta_run (ta_cluster_t *c, const char *kind, const char *id, json_t *extra, dx_step_out_t *out)
{
    json_t *assign = ta_assign (c, kind, id, extra);
    dx_step_out_init (out, NULL, NULL);
    if (c->progress) {
        c->progress [0] = 0;
        out->progress = s_on_progress;
        out->progress_arg = c;
    }
    aws_step_run (c->steps, assign, out);
    json_decref (assign);
    size_t i;
    json_t *r;
    json_array_foreach (out->resources, i, r) {
        const char *key = json_string_value (json_object_get (r, "key"));
        const char *pid = json_string_value (json_object_get (r, "provider_id"));
        assert_non_null (key);
        assert_non_null (pid);
        if (c->strict)
            assert_non_null (json_string_value (json_object_get (r, "kind")));
        if (strncmp (key, "host.", 5) == 0 || strncmp (key, "eip.", 4) == 0)
            continue;
        const char *state = json_string_value (json_object_get (r, "state"));
        if (state && strcmp (state, "deleted") == 0)
            json_object_del (c->context, key);
        else
            json_object_set_new (c->context, key, json_string (pid));
    }
}

json_t *
ta_done (ta_cluster_t *c, const char *kind, const char *id, json_t *extra)
{
    dx_step_out_t out;
    ta_run (c, kind, id, extra, &out);
    if (out.outcome != DX_STEP_DONE)
        print_error ("step %s: %s %s: %s\n", id, dx_step_outcome_name (out.outcome),
                     out.code, out.message);
    assert_int_equal (out.outcome, DX_STEP_DONE);
    if (c->strict)
        assert_string_equal (out.code, "");
    json_t *resources = json_incref (out.resources);
    dx_step_out_fini (&out);
    return resources;
}

void
ta_before_hosts (ta_cluster_t *c)
{
    json_decref (ta_done (c, "network", "network", NULL));
    json_decref (ta_done (c, "security", "security", NULL));
    json_decref (ta_done (c, "image", "image", NULL));
    json_decref (ta_done (c, "keypair", "keypair", NULL));
}

void
ta_destroy_all (ta_cluster_t *c)
{
    json_decref (ta_done (c, "destroy.instances", "destroy.instances", NULL));
    json_decref (ta_done (c, "destroy.addresses", "destroy.addresses", NULL));
    json_decref (ta_done (c, "destroy.security", "destroy.security", NULL));
    json_decref (ta_done (c, "destroy.network", "destroy.network", NULL));
}

json_t *
ta_res (const json_t *resources, const char *key)
{
    size_t i;
    json_t *r;
    json_array_foreach (resources, i, r)
        if (strcmp (json_string_value (json_object_get (r, "key")), key) == 0)
            return r;
    print_error ("no resource %s\n", key);
    fail ();
    return NULL;
}
