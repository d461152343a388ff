/*  libFuzzer target for dx_spec's validators (common/dx_spec.c) on what
    users send.

    The first byte picks the validator (bits 0-1: cluster, config, group,
    deployment), the provider (bit 2: aws, azure) and how the body is
    read (bit 3: JSON, else form); the rest is the body. A body that
    api_body_parse takes goes the way the services take it: POST
    /clusters is checked in the api; the other writes travel in a request
    to the scheduler (through the codec) and are checked there. Every
    validation must end in a result or in errors, never both nor
    neither; the errors' reply must encode; and what is accepted must
    encode wherever the scheduler sends it on: in a reply's list (the
    deepest place) and in a job.assign, whose credentials must all be
    strings. An encode failure after acceptance is a finding: the
    request would be accepted and then could not be carried out. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_body.h"
#include "dx_msg.h"
#include "dx_spec.h"
#include "fz_check.h"

static const char *const s_types [4] = {
    "cluster.create", "config.put", "group.upsert", "deployment.put"
};
static const char *const s_providers [2] = { "aws", "azure" };

/*  Runs validator kind (an index of s_types) on fields. */
static json_t *
s_validate (int kind, const char *provider, const json_t *fields, json_t *secrets,
            json_t *errors)
{
    switch (kind) {
        case 0:  return dx_spec_cluster (fields, errors);
        case 1:  return dx_spec_config (provider, fields, secrets, errors);
        case 2:  return dx_spec_group (provider, fields, errors);
        default: return dx_spec_deployment (provider, fields, secrets, errors);
    }
}

/*  Sends what was accepted on as the scheduler would. */
static void
s_check_accepted (int kind, const json_t *request, json_t *out, json_t *secrets)
{
    json_t *reply = dx_reply_new (request, DX_OK, json_pack ("[O]", out));
    json_decref (fz_send (reply, "a reply listing the result"));
    json_decref (reply);

    json_t *job = dx_msg_new ("job.assign", NULL);
    json_object_set_new (job, "job", json_string ("demo/1/host.workers.1"));
    json_object_set_new (job, "attempt", json_integer (1));
    json_object_set_new (job, "cluster", json_string ("demo"));
    json_object_set_new (job, "generation", json_integer (1));
    json_object_set_new (job, "step", json_pack ("{s:s, s:O}", "kind", "host", "spec", out));
    //  Only a deployment's secrets are a worker's credentials
    json_object_set_new (job, "credentials", kind == 3? json_incref (secrets): json_object ());
    json_object_set_new (job, "lease_ms", json_integer (30000));
    json_decref (fz_send (job, "a job.assign carrying the result"));
    json_decref (job);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int kind = data [0] & 3;
    const char *provider = s_providers [(data [0] >> 2) & 1];
    api_body_type_t type = data [0] & 8? API_BODY_JSON: API_BODY_FORM;
    api_fault_t fault;
    json_t *fields = api_body_parse (type, (const char *) data + 1, size - 1, &fault);
    if (!fields)
        return 0;

    //  The request to the scheduler. POST /clusters is checked before it
    //  is sent; the other writes carry their fields to the scheduler,
    //  which checks its decoded copy of them.
    json_t *request = dx_msg_new (s_types [kind], NULL);
    json_object_set_new (request, "deadline", json_integer (1795574400123));
    json_t *received;
    if (kind == 0)
        received = json_incref (request);
    else {
        json_object_set_new (request, "name", json_string ("demo"));
        json_object_set (request, "fields", fields);
        received = fz_send (request, s_types [kind]);
    }
    const json_t *checked = kind == 0? fields: json_object_get (received, "fields");

    json_t *secrets = json_object ();
    json_t *errors = json_array ();
    json_t *out = s_validate (kind, provider, checked, secrets, errors);
    if ((out != NULL) == (json_array_size (errors) > 0))
        fz_fail ("a validation gave both a result and errors, or neither");
    if (out && kind == 0) {
        json_object_set (request, "cluster", out);
        json_decref (fz_send (request, s_types [kind]));
    }
    if (out)
        s_check_accepted (kind, received, out, secrets);
    else {
        size_t i;
        json_t *error;
        json_array_foreach (errors, i, error)
            if (!json_is_string (json_object_get (error, "field"))
            ||  !json_is_string (json_object_get (error, "message")))
                fz_fail ("an error without a field or a message");
        json_t *reply = dx_reply_errors (received, DX_INVALID, json_incref (errors));
        json_decref (fz_send (reply, "the errors' reply"));
        json_decref (reply);
    }
    json_decref (out);
    json_decref (errors);
    json_decref (secrets);
    json_decref (received);
    json_decref (request);
    json_decref (fields);
    return 0;
}
