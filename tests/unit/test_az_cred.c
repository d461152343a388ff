/*  Tests of services/azure-worker/az_cred.c: reading a job's credentials
    (the fields of `az ad sp create-for-rbac --sdk-auth`), the endpoints and
    their defaults, the grant's form body, the cache keys; and the token
    cache: expiry margins, stale tokens, principals kept apart, and one
    fetch per principal while other threads wait for it. The grant itself
    is test_az_arm's, against tests/fakes/fake_arm.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "../../services/azure-worker/az_cred.h"
#include "dx_util.h"

#define TENANT  "72f988bf-0000-4000-8000-00000000fa4e"
#define CLIENT  "2a4e7c10-0000-4000-8000-00000000c11e"
#define SECRET  "Secret+Marker/=&~x y"
#define SUB     "5ab5c21b-0000-4000-8000-00000000005b"

/*  The credentials map of a job, with fields replaced or (value NULL)
    removed: key, value, ..., NULL. */
static json_t *
s_credentials (const char *key, ...)
{
    json_t *map = json_pack ("{s:s, s:s, s:s, s:s}", "clientId", CLIENT, "clientSecret", SECRET,
                             "tenantId", TENANT, "subscriptionId", SUB);
    va_list args;
    va_start (args, key);
    for (; key; key = va_arg (args, const char *)) {
        const char *value = va_arg (args, const char *);
        if (value)
            json_object_set_new (map, key, json_string (value));
        else
            json_object_del (map, key);
    }
    va_end (args);
    return map;
}

static az_cred_t *
s_cred_ok (json_t *map)
{
    char why [256] = "unset";
    az_cred_t *cred = az_cred_new (map, why, sizeof why);
    if (!cred)
        print_error ("az_cred_new: %s\n", why);
    assert_non_null (cred);
    assert_string_equal (why, "");
    json_decref (map);
    return cred;
}

//  ---------------------------------------------------------------------
//  Credentials

/*  The public cloud unless the file names endpoints, http or https. */
static void
test_endpoints (void **state)
{
    (void) state;
    az_cred_t *cred = s_cred_ok (s_credentials (NULL));
    assert_string_equal (az_cred_subscription (cred), SUB);
    assert_string_equal (az_cred_arm (cred), "https://management.azure.com");
    assert_string_equal (az_cred_token_url (cred),
                         "https://login.microsoftonline.com/" TENANT "/oauth2/v2.0/token");
    az_cred_destroy (&cred);
    assert_null (cred);
    az_cred_destroy (&cred);
    az_cred_destroy (NULL);

    /* as the sdk-auth file writes them, with their trailing slashes */
    cred = s_cred_ok (s_credentials ("activeDirectoryEndpointUrl", "http://127.0.0.1:8080/",
                                     "resourceManagerEndpointUrl", "https://management.usgovcloudapi.net/",
                                     "galleryEndpointUrl", "https://gallery.azure.com/", NULL));
    assert_string_equal (az_cred_arm (cred), "https://management.usgovcloudapi.net");
    assert_string_equal (az_cred_token_url (cred), "http://127.0.0.1:8080/" TENANT "/oauth2/v2.0/token");
    az_cred_destroy (&cred);

    cred = s_cred_ok (s_credentials ("tenantId", "contoso.onmicrosoft.com", NULL));
    assert_string_equal (az_cred_token_url (cred),
                         "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
    az_cred_destroy (&cred);
}

/*  What is missing or malformed is named, its value never. */
static void
test_refused (void **state)
{
    (void) state;
    const struct { const char *key, *value, *why; } cases [] = {
        { "subscriptionId", NULL, "credentials: subscriptionId is missing" },
        { "clientSecret", NULL, "credentials: clientSecret is missing" },
        { "clientSecret", "", "credentials: clientSecret must be a non-empty string" },
        { "clientId", NULL, "credentials: clientId is missing" },
        { "tenantId", NULL, "credentials: tenantId is missing" },
        { "subscriptionId", SUB "/../x", "credentials: subscriptionId must be a GUID" },
        { "tenantId", "t/../../evil", "credentials: tenantId must be a GUID or a domain name" },
        { "clientId", "a b", "credentials: clientId must be printable text without blanks" },
        { "activeDirectoryEndpointUrl", "ftp://login", "credentials: activeDirectoryEndpointUrl "
          "must be an http:// or https:// URL" },
        { "resourceManagerEndpointUrl", "https://", "credentials: resourceManagerEndpointUrl "
          "must be an http:// or https:// URL" },
        { "resourceManagerEndpointUrl", "https://arm .example", "credentials: "
          "resourceManagerEndpointUrl must be an http:// or https:// URL" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        json_t *map = s_credentials (cases [i].key, cases [i].value, NULL);
        char why [256] = "";
        assert_null (az_cred_new (map, why, sizeof why));
        assert_string_equal (why, cases [i].why);
        assert_null (strstr (why, "Marker"));
        assert_null (az_cred_new (map, NULL, 0));
        json_decref (map);
    }
    /* not a string at all */
    json_t *map = s_credentials (NULL);
    json_object_set_new (map, "subscriptionId", json_integer (5));
    char why [256];
    assert_null (az_cred_new (map, why, sizeof why));
    assert_string_equal (why, "credentials: subscriptionId is missing");
    json_decref (map);
    assert_null (az_cred_new (NULL, why, sizeof why));
}

/*  The client-credentials grant, every value form-encoded. */
static void
test_grant_body (void **state)
{
    (void) state;
    az_cred_t *cred = s_cred_ok (s_credentials ("resourceManagerEndpointUrl",
                                                "http://127.0.0.1:9/", NULL));
    char *body = az_cred_grant_body (cred);
    assert_string_equal (body, "grant_type=client_credentials&client_id=" CLIENT
                         "&client_secret=Secret%2BMarker%2F%3D%26~x%20y"
                         "&scope=http%3A%2F%2F127.0.0.1%3A9%2F.default");
    free (body);
    az_cred_destroy (&cred);
}

/*  One key per principal: any part that changes the token changes it. */
static void
test_digest (void **state)
{
    (void) state;
    json_t *maps [] = {
        s_credentials (NULL),
        s_credentials ("clientSecret", "another", NULL),
        s_credentials ("tenantId", "contoso.com", NULL),
        s_credentials ("clientId", "someone-else", NULL),
        s_credentials ("activeDirectoryEndpointUrl", "http://127.0.0.1:1", NULL),
        s_credentials ("resourceManagerEndpointUrl", "http://127.0.0.1:1", NULL),
    };
    size_t n = sizeof maps / sizeof maps [0];
    char digests [6][65];
    for (size_t i = 0; i < n; i++) {
        az_cred_t *cred = s_cred_ok (maps [i]);
        snprintf (digests [i], sizeof digests [i], "%s", az_cred_digest (cred));
        assert_int_equal (strlen (digests [i]), 64);
        assert_null (strstr (digests [i], "Marker"));
        az_cred_destroy (&cred);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            assert_string_not_equal (digests [i], digests [j]);
    /* the subscription is not the token's: the same key */
    az_cred_t *a = s_cred_ok (s_credentials (NULL));
    az_cred_t *b = s_cred_ok (s_credentials ("subscriptionId", "00000000-0000-0000-0000-000000000000",
                                             NULL));
    assert_string_equal (az_cred_digest (a), az_cred_digest (b));
    az_cred_destroy (&a);
    az_cred_destroy (&b);
}

//  ---------------------------------------------------------------------
//  The token cache

/*  The first asker fetches; then the token is handed out, to every client
    of the principal, until the margin before its expiry. */
static void
test_cache (void **state)
{
    (void) state;
    az_tokens_t *tokens = az_tokens_new ();
    az_cred_t *cred = s_cred_ok (s_credentials (NULL));
    az_cred_t *twin = s_cred_ok (s_credentials (NULL));
    az_cred_t *other = s_cred_ok (s_credentials ("clientSecret", "another", NULL));

    assert_null (az_tokens_acquire (tokens, cred, NULL));           /* fetch */
    az_tokens_release (tokens, cred, "token-1", 3599);
    char *token = az_tokens_acquire (tokens, twin, NULL);
    assert_string_equal (token, "token-1");
    free (token);
    assert_null (az_tokens_acquire (tokens, other, NULL));          /* its own */
    az_tokens_release (tokens, other, "token-other", 3599);

    /* refused by ARM: the stale token goes, the next asker fetches */
    assert_null (az_tokens_acquire (tokens, cred, "token-1"));
    az_tokens_release (tokens, cred, "token-2", 3599);
    /* a token already replaced is not dropped again */
    token = az_tokens_acquire (tokens, cred, "token-1");
    assert_string_equal (token, "token-2");
    free (token);
    token = az_tokens_acquire (tokens, other, NULL);
    assert_string_equal (token, "token-other");
    free (token);

    /* a failed fetch caches nothing */
    assert_null (az_tokens_acquire (tokens, cred, "token-2"));
    az_tokens_release (tokens, cred, NULL, 0);
    assert_null (az_tokens_acquire (tokens, cred, NULL));

    /* a 2 s token is handed out for half its life */
    az_tokens_release (tokens, cred, "short", 2);
    token = az_tokens_acquire (tokens, cred, NULL);
    assert_string_equal (token, "short");
    free (token);
    usleep (1100 * 1000);
    assert_null (az_tokens_acquire (tokens, cred, NULL));
    az_tokens_release (tokens, cred, NULL, 0);

    az_cred_destroy (&cred);
    az_cred_destroy (&twin);
    az_cred_destroy (&other);
    az_tokens_destroy (&tokens);
    assert_null (tokens);
    az_tokens_destroy (&tokens);
    az_tokens_destroy (NULL);
}

typedef struct {
    az_tokens_t *tokens;
    az_cred_t *cred;
    char *token;
    int64_t took_ms;
} s_asker_t;

static void *
s_ask (void *arg)
{
    s_asker_t *asker = arg;
    int64_t t0 = dx_mono_ms ();
    asker->token = az_tokens_acquire (asker->tokens, asker->cred, NULL);
    asker->took_ms = dx_mono_ms () - t0;
    return NULL;
}

/*  While one thread fetches, the others wait for its token rather than
    fetch their own; when its fetch fails, the next one fetches. */
static void
test_one_fetch (void **state)
{
    (void) state;
    az_tokens_t *tokens = az_tokens_new ();
    az_cred_t *cred = s_cred_ok (s_credentials (NULL));
    assert_null (az_tokens_acquire (tokens, cred, NULL));           /* this thread fetches */
    s_asker_t askers [4];
    pthread_t threads [4];
    for (int i = 0; i < 4; i++) {
        askers [i] = (s_asker_t) { tokens, cred, NULL, 0 };
        assert_int_equal (pthread_create (&threads [i], NULL, s_ask, &askers [i]), 0);
    }
    usleep (200 * 1000);
    az_tokens_release (tokens, cred, "shared", 3599);
    for (int i = 0; i < 4; i++) {
        pthread_join (threads [i], NULL);
        assert_string_equal (askers [i].token, "shared");
        assert_true (askers [i].took_ms >= 150);
        free (askers [i].token);
    }

    /* a fetch that fails hands the fetch to one waiter, which fetches */
    assert_null (az_tokens_acquire (tokens, cred, "shared"));
    askers [0] = (s_asker_t) { tokens, cred, NULL, 0 };
    assert_int_equal (pthread_create (&threads [0], NULL, s_ask, &askers [0]), 0);
    usleep (100 * 1000);
    az_tokens_release (tokens, cred, NULL, 0);
    pthread_join (threads [0], NULL);
    assert_null (askers [0].token);
    az_tokens_release (tokens, cred, "after", 3599);
    char *token = az_tokens_acquire (tokens, cred, NULL);
    assert_string_equal (token, "after");
    free (token);

    az_cred_destroy (&cred);
    az_tokens_destroy (&tokens);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_endpoints),
        cmocka_unit_test (test_refused),
        cmocka_unit_test (test_grant_body),
        cmocka_unit_test (test_digest),
        cmocka_unit_test (test_cache),
        cmocka_unit_test (test_one_fetch),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
