/*  api_health: /healthz and /readyz. See api_health.h. */
#include "api_health.h"
#include "dx_msg.h"

#include <stdio.h>
#include <string.h>

void
api_health_alive (api_answer_t *answer)
{
    answer->text = NULL;
    answer->body = json_pack ("{s:s}", "status", "ok");
    answer->status = answer->body ? 200 : 500;
}

json_t *
api_health_request (void)
{
    return dx_msg_new ("health.get", NULL);
}

/*  1 if value is the string "ok". */
static int
s_ok (const json_t *value)
{
    const char *text = json_string_value (value);
    return text && strcmp (text, "ok") == 0;
}

void
api_health_ready (const json_t *reply, api_answer_t *answer)
{
    answer->text = NULL;
    const char *status = json_string_value (json_object_get (reply, "status"));
    const json_t *body = json_object_get (reply, "body");
    if (status && strcmp (status, DX_OK) == 0 && json_is_object (body)
    &&  json_is_string (json_object_get (body, "redis"))
    &&  json_is_object (json_object_get (body, "workers"))) {
        json_t *redis = json_object_get (body, "redis");
        answer->body = json_pack ("{s:b, s:s, s:O, s:O}", "ready", s_ok (redis),
                                  "scheduler", "ok", "redis", redis,
                                  "workers", json_object_get (body, "workers"));
        answer->status = s_ok (redis) ? 200 : 503;
    }
    else {
        /* No answer in time, or one that is no health: the scheduler is
           what is missing. Its message, up to the advice for other
           requests ("; the request was not carried out"). */
        const char *message = json_string_value (json_object_get (reply, "message"));
        char why [200];
        size_t len = message ? strcspn (message, ";") : 0;
        if (len >= sizeof why)
            len = sizeof why - 1;
        if (len)
            memcpy (why, message, len);
        else
            len = (size_t) snprintf (why, sizeof why, "the scheduler gave no health");
        why [len] = 0;
        answer->body = json_pack ("{s:b, s:o, s:s, s:n}", "ready", 0,
                                  "scheduler", dx_msg_string_new (why),
                                  "redis", "unknown", "workers");
        answer->status = 503;
    }
    if (!answer->body) {
        answer->body = api_error_body (DX_INTERNAL, NULL, "out of memory");
        answer->status = 500;
    }
}
