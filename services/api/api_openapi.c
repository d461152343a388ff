/*  api_openapi: docs/openapi.yaml as JSON text (api_openapi.h). */
#include "api_openapi.h"

/*  The generated string literal: $(OBJ)/gen/api_openapi.inc. */
const char api_openapi_json [] =
#include "api_openapi.inc"
;

const size_t api_openapi_json_len = sizeof api_openapi_json - 1;
