/*  sch_health: health.get, answered without Redis. See sch_health.h. */
#include "sch_health.h"
#include "sch_redis.h"
#include "dx_msg.h"

/*  The services whose workers the answer counts (worker.ready's). */
static const char *const s_services [] = { "aws", "azure", "vpn" };

json_t *
sch_health_get (sch_ctx_t *ctx, const json_t *request)
{
    char why [256];
    const char *redis = sch_redis_health (sch_store_redis (ctx->store), why, sizeof why);
    json_t *workers = json_object ();
    for (size_t i = 0; workers && i < sizeof s_services / sizeof s_services [0]; i++) {
        size_t count = ctx->broker? sch_broker_workers (ctx->broker, s_services [i], NULL): 0;
        if (json_object_set_new (workers, s_services [i], json_integer ((json_int_t) count))) {
            json_decref (workers);
            workers = NULL;
        }
    }
    json_t *body = workers? json_pack ("{s:s, s:o}", "redis", redis? redis: "ok",
                                       "workers", workers): NULL;
    return body? dx_reply_new (request, DX_OK, body): NULL;
}
