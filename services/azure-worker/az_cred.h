/*  az_cred: who the azure-worker is to Azure, and the bearer tokens that
    say so.

    An az_cred_t is one deployment's service principal: the fields of the
    file `az ad sp create-for-rbac --sdk-auth` writes, which the api took
    as base64 and the job brings decoded in its credentials map (clientId,
    clientSecret, tenantId, subscriptionId, and optionally
    activeDirectoryEndpointUrl and resourceManagerEndpointUrl, http or
    https; the public cloud's when absent). It knows where a token comes
    from and what it is for:

        POST {activeDirectoryEndpointUrl}/{tenantId}/oauth2/v2.0/token
        grant_type=client_credentials&client_id=..&client_secret=..
        &scope={resourceManagerEndpointUrl}/.default

    An az_tokens_t is a worker's token cache, shared by its job threads: a
    token serves every job of the same principal until shortly before it
    expires, and while one thread fetches a principal's token the others
    wait for it instead of asking Entra too. az_arm does the asking.

    Secrets (the client secret, tokens) are wiped when freed and never
    logged; the cache keys hold a digest, never a secret. */
#ifndef AZ_CRED_H
#define AZ_CRED_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define AZ_CRED_AD_DEFAULT  "https://login.microsoftonline.com"
#define AZ_CRED_ARM_DEFAULT "https://management.azure.com"

//  ---------------------------------------------------------------------
//  Credentials

typedef struct az_cred az_cred_t;

/*  The principal of a job's credentials map (read, copied). NULL when a
    field is missing or malformed, with the reason (naming the field,
    never its value) in why (may be NULL), or when memory is short. */
az_cred_t *az_cred_new (const json_t *credentials, char *why, size_t why_size);

/*  Wipes the secret and frees. Safe on NULL. */
void az_cred_destroy (az_cred_t **self_p);

/*  The subscription id. Borrowed. */
const char *az_cred_subscription (const az_cred_t *self);

/*  The Resource Manager endpoint, without a trailing '/'
    ("https://management.azure.com"). Borrowed. */
const char *az_cred_arm (const az_cred_t *self);

/*  The token endpoint (see above). Borrowed. */
const char *az_cred_token_url (const az_cred_t *self);

/*  The client-credentials grant's form body. Caller wipes and frees it
    (it holds the secret); NULL when memory is short. */
char *az_cred_grant_body (const az_cred_t *self);

/*  A digest of everything that makes the token (endpoints, tenant,
    client, secret, scope): 64 hex digits, the principal's cache key.
    Borrowed. */
const char *az_cred_digest (const az_cred_t *self);

//  ---------------------------------------------------------------------
//  The token cache

typedef struct az_tokens az_tokens_t;

az_tokens_t *az_tokens_new (void);

/*  Wipes every token and frees. Safe on NULL. */
void az_tokens_destroy (az_tokens_t **self_p);

/*  A copy of cred's cached token (caller wipes and frees it), unless it
    is stale (the token the caller was just refused with: it is dropped)
    or near its expiry. Otherwise NULL, and the caller is the one to
    fetch a token and must hand the outcome to az_tokens_release; when
    another thread fetches one already, this waits for it first (a
    bounded wait: after it, the caller fetches too). */
char *az_tokens_acquire (az_tokens_t *self, const az_cred_t *cred, const char *stale);

/*  Ends a fetch az_tokens_acquire asked for: token (copied) lives
    lifetime_s seconds, and is handed out until 5 minutes before that (half
    the lifetime of a token that lives less than 10); NULL: the fetch
    failed, nothing is cached, and a waiting thread fetches next. Wakes
    the waiting threads. */
void az_tokens_release (az_tokens_t *self, const az_cred_t *cred, const char *token,
                        int64_t lifetime_s);

#endif
