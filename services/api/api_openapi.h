/*  api_openapi: the api's OpenAPI document, docs/openapi.yaml as JSON text,
    built into the binary (scripts/openapi-embed.py writes it at build
    time) and answered by GET /api/v1.0/openapi.json. */
#ifndef API_OPENAPI_H
#define API_OPENAPI_H

#include <stddef.h>

extern const char api_openapi_json [];
extern const size_t api_openapi_json_len;     /* its length, without the NUL */

#endif
