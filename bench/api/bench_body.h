/* bench/api/bench_body.h: what the stand-in servers of the api benchmark
 * share (bare.c, floor.c): the fixed answer, about the size of a cluster
 * object, and libmicrohttpd's handler result type across its versions. */
#ifndef BENCH_BODY_H
#define BENCH_BODY_H

#include <microhttpd.h>

#if MHD_VERSION < 0x00097002
typedef int MHD_Result_t;
#else
typedef enum MHD_Result MHD_Result_t;
#endif

static const char BODY[] =
    "{\"name\":\"bench1\",\"provider\":\"aws\",\"type\":\"mesos\","
    "\"created_at\":\"2024-01-01T00:00:00Z\",\"updated_at\":\"2024-01-01T00:00:00Z\","
    "\"configured\":false,\"groups\":[],\"hosts\":{\"masters\":0,\"agents\":0},"
    "\"deployment\":{\"state\":\"init\",\"generation\":0}}";

#endif
