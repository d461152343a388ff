/*  api_head: the request line and framing checks made before routing. */
#include "api_head.h"

#include <string.h>
#include <strings.h>

/*  A limit's number as text, for the messages. */
#define S_TEXT(x) #x
#define S_NUMBER(x) S_TEXT (x)

bool
api_head_too_long (const char *uri)
{
    if (strlen (uri) > API_URI_MAX)
        return true;
    const char *query = strchr (uri, '?');
    if (!query)
        return false;
    unsigned params = 1;
    while ((query = strchr (query + 1, '&')))
        params++;
    return params > API_QUERY_MAX;
}

/*  Fills refusal; returns -1 for the caller to return. */
static int
s_refuse (api_refusal_t *refusal, int status, const char *code, const char *message)
{
    refusal->status = status;
    refusal->code = code;
    refusal->message = message;
    return -1;
}

int
api_head_check (const api_head_t *head, api_refusal_t *refusal)
{
    if (strcmp (head->version, "HTTP/1.1") != 0 && strcmp (head->version, "HTTP/1.0") != 0)
        return s_refuse (refusal, 505, "VERSION_NOT_SUPPORTED",
                         "this api speaks HTTP/1.1 and HTTP/1.0 only");
    if (head->nul || strstr (head->uri, "%00"))
        return s_refuse (refusal, 400, "BAD_REQUEST",
                         "the request line holds a NUL byte (raw or %00)");
    if (api_head_too_long (head->uri))
        return s_refuse (refusal, 414, "URI_TOO_LONG",
                         "the URI is longer than " S_NUMBER (API_URI_MAX)
                         " bytes or has more than " S_NUMBER (API_QUERY_MAX)
                         " query parameters");
    if (head->fields > API_FIELDS_MAX)
        return s_refuse (refusal, 431, "HEADERS_TOO_LARGE",
                         "the request has more than "
                         S_NUMBER (API_FIELDS_MAX) " header fields");
    if (head->lengths > 1)
        return s_refuse (refusal, 400, "BAD_REQUEST",
                         "Content-Length is given more than once");
    if (head->encodings > 1 || (head->encodings && strcasecmp (head->encoding, "chunked") != 0))
        return s_refuse (refusal, 400, "BAD_REQUEST",
                         "the only Transfer-Encoding taken is chunked, alone");
    if (head->encodings && head->lengths)
        return s_refuse (refusal, 400, "BAD_REQUEST",
                         "a request has Content-Length or Transfer-Encoding, "
                         "not both");
    return 0;
}
