/*  az_cred: a service principal read from a job's credentials, and the
    worker's cache of its tokens. See az_cred.h. */
#include "az_cred.h"
#include "dx_http.h"
#include "dx_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

//  ---------------------------------------------------------------------
//  Credentials

struct az_cred {
    char *client_id;
    char *client_secret;
    char *tenant;
    char *subscription;
    char *ad;                   /* the endpoints, without a trailing '/' */
    char *arm;
    char *token_url;
    char *scope;
    char digest [crypto_generichash_BYTES * 2 + 1];
};

/*  1 when text is 1 to max characters, all of them in set; set "" means
    printable ASCII but blanks, NULL anything. */
static int
s_cred_text_ok (const char *text, size_t max, const char *set)
{
    size_t len = text? strlen (text): 0;
    if (len == 0 || len > max)
        return 0;
    for (const char *c = text; set && *c; c++)
        if (*set? !strchr (set, *c): (*c <= ' ' || *c > '~'))
            return 0;
    return 1;
}

/*  The fields that must be there. Those that go into a URL are held to
    the characters their rule allows. */
static const struct {
    const char *key;
    size_t max;
    const char *set;            /* as s_cred_text_ok */
    const char *rule;
} s_cred_fields [] = {
    { "clientId", 256, "", "printable text without blanks" },
    { "clientSecret", 4096, NULL, "a non-empty string" },
    { "tenantId", 256, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-",
      "a GUID or a domain name" },
    { "subscriptionId", 64, "0123456789abcdefABCDEF-", "a GUID" },
};
#define S_CRED_FIELDS (sizeof s_cred_fields / sizeof s_cred_fields [0])

/*  The endpoint field key, or deflt when absent: an http(s) URL, copied
    without its trailing slashes. NULL (why set) when malformed. */
static char *
s_cred_endpoint (const json_t *credentials, const char *key, const char *deflt,
                 char *why, size_t why_size)
{
    json_t *member = json_object_get (credentials, key);
    const char *url = member? json_string_value (member): deflt;
    const char *host = !url? NULL
                     : strncmp (url, "https://", 8) == 0? url + 8
                     : strncmp (url, "http://", 7) == 0? url + 7: NULL;
    if (!host || !*host || *host == '/' || !s_cred_text_ok (url, 512, "")) {
        snprintf (why, why_size, "credentials: %s must be an http:// or https:// URL", key);
        return NULL;
    }
    size_t len = strlen (url);
    while (url [len - 1] == '/')
        len--;
    return strndup (url, len);
}

/*  The digest of az_cred_digest: every part once, each with its NUL, so
    that no two principals meet. */
static void
s_cred_digest (az_cred_t *self)
{
    const char *parts [] = { self->ad, self->arm, self->tenant, self->client_id,
                             self->client_secret, self->scope };
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, crypto_generichash_BYTES);
    for (size_t i = 0; i < sizeof parts / sizeof parts [0]; i++)
        crypto_generichash_update (&state, (const unsigned char *) parts [i],
                                   strlen (parts [i]) + 1);
    unsigned char hash [crypto_generichash_BYTES];
    crypto_generichash_final (&state, hash, sizeof hash);
    sodium_bin2hex (self->digest, sizeof self->digest, hash, sizeof hash);
    sodium_memzero (&state, sizeof state);
}

az_cred_t *
az_cred_new (const json_t *credentials, char *why, size_t why_size)
{
    char scratch [256];
    if (!why || !why_size) {
        why = scratch;
        why_size = sizeof scratch;
    }
    *why = 0;
    const char *values [S_CRED_FIELDS];
    for (size_t i = 0; i < S_CRED_FIELDS; i++) {
        values [i] = json_string_value (json_object_get (credentials, s_cred_fields [i].key));
        if (!values [i] || !s_cred_text_ok (values [i], s_cred_fields [i].max,
                                            s_cred_fields [i].set)) {
            if (values [i])
                snprintf (why, why_size, "credentials: %s must be %s",
                          s_cred_fields [i].key, s_cred_fields [i].rule);
            else
                snprintf (why, why_size, "credentials: %s is missing", s_cred_fields [i].key);
            return NULL;
        }
    }
    char *ad = s_cred_endpoint (credentials, "activeDirectoryEndpointUrl",
                                AZ_CRED_AD_DEFAULT, why, why_size);
    char *arm = ad? s_cred_endpoint (credentials, "resourceManagerEndpointUrl",
                                     AZ_CRED_ARM_DEFAULT, why, why_size): NULL;
    az_cred_t *self = ad && arm? calloc (1, sizeof *self): NULL;
    if (!self) {
        free (ad);
        free (arm);
        return NULL;
    }
    self->ad = ad;
    self->arm = arm;
    self->client_id = strdup (values [0]);
    self->client_secret = strdup (values [1]);
    self->tenant = strdup (values [2]);
    self->subscription = strdup (values [3]);
    if (asprintf (&self->token_url, "%s/%s/oauth2/v2.0/token", ad, values [2]) < 0)
        self->token_url = NULL;
    if (asprintf (&self->scope, "%s/.default", arm) < 0)
        self->scope = NULL;
    if (!self->client_id || !self->client_secret || !self->tenant || !self->subscription
    ||  !self->token_url || !self->scope)
        az_cred_destroy (&self);
    else
        s_cred_digest (self);
    return self;
}

void
az_cred_destroy (az_cred_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    az_cred_t *self = *self_p;
    dx_free_wiped (self->client_secret);
    free (self->client_id);
    free (self->tenant);
    free (self->subscription);
    free (self->ad);
    free (self->arm);
    free (self->token_url);
    free (self->scope);
    free (self);
    *self_p = NULL;
}

const char *
az_cred_subscription (const az_cred_t *self)
{
    return self->subscription;
}

const char *
az_cred_arm (const az_cred_t *self)
{
    return self->arm;
}

const char *
az_cred_token_url (const az_cred_t *self)
{
    return self->token_url;
}

const char *
az_cred_digest (const az_cred_t *self)
{
    return self->digest;
}

char *
az_cred_grant_body (const az_cred_t *self)
{
    const char *names [] = { "&client_id=", "&client_secret=", "&scope=" };
    const char *values [] = { self->client_id, self->client_secret, self->scope };
    size_t size = sizeof "grant_type=client_credentials";
    for (size_t i = 0; i < 3; i++)
        size += strlen (names [i]) + 3 * strlen (values [i]);
    char *body = malloc (size);
    if (!body)
        return NULL;
    char *p = stpcpy (body, "grant_type=client_credentials");
    for (size_t i = 0; i < 3; i++)
        p = dx_http_escape_into (stpcpy (p, names [i]), values [i]);
    return body;
}

//  ---------------------------------------------------------------------
//  The token cache

/*  A fetching thread that hangs longer than this (its HTTP tries have
    timeouts of their own) no longer holds the others back. */
#define S_FETCH_WAIT_MS 60000

typedef struct s_entry {
    struct s_entry *next;
    char digest [crypto_generichash_BYTES * 2 + 1];
    char *token;                /* NULL when none */
    int64_t fresh_until;        /* dx_mono_ms; handed out before it */
    int fetching;               /* a thread fetches a token */
    int waiters;                /* threads waiting for it: the entry stays */
} s_entry_t;

struct az_tokens {
    pthread_mutex_t lock;
    pthread_cond_t fetched;     /* a fetch ended */
    s_entry_t *head;
};

az_tokens_t *
az_tokens_new (void)
{
    az_tokens_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->fetched, &attr);
    pthread_condattr_destroy (&attr);
    return self;
}

static void
s_entry_destroy (s_entry_t *entry)
{
    dx_free_wiped (entry->token);
    free (entry);
}

void
az_tokens_destroy (az_tokens_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    az_tokens_t *self = *self_p;
    for (s_entry_t *e = self->head, *next; e; e = next) {
        next = e->next;
        s_entry_destroy (e);
    }
    pthread_cond_destroy (&self->fetched);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

/*  The entry of digest, made when missing unless make is 0 (NULL then, or
    when memory is short). Drops the entries nobody uses whose tokens are
    no longer handed out, so that the cache holds only live principals.
    Under the lock. */
static s_entry_t *
s_entry (az_tokens_t *self, const char *digest, int make, int64_t now)
{
    s_entry_t *found = NULL;
    for (s_entry_t **e_p = &self->head; *e_p; ) {
        s_entry_t *e = *e_p;
        if (strcmp (e->digest, digest) == 0)
            found = e;
        else
        if (!e->fetching && !e->waiters && (!e->token || now >= e->fresh_until)) {
            *e_p = e->next;
            s_entry_destroy (e);
            continue;
        }
        e_p = &e->next;
    }
    if (found || !make || !(found = calloc (1, sizeof *found)))
        return found;
    memcpy (found->digest, digest, sizeof found->digest);
    found->next = self->head;
    self->head = found;
    return found;
}

char *
az_tokens_acquire (az_tokens_t *self, const az_cred_t *cred, const char *stale)
{
    pthread_mutex_lock (&self->lock);
    int64_t now = dx_mono_ms (), deadline = now + S_FETCH_WAIT_MS;
    s_entry_t *e = s_entry (self, az_cred_digest (cred), 1, now);
    char *token = NULL;
    while (e) {
        if (e->token && stale && strcmp (e->token, stale) == 0) {
            dx_free_wiped (e->token);
            e->token = NULL;
        }
        if (e->token && now < e->fresh_until) {
            token = strdup (e->token);
            break;
        }
        if (!e->fetching || now >= deadline) {
            e->fetching = 1;
            break;
        }
        struct timespec until = { (time_t) (deadline / 1000), (long) (deadline % 1000) * 1000000 };
        e->waiters++;
        pthread_cond_timedwait (&self->fetched, &self->lock, &until);
        e->waiters--;
        now = dx_mono_ms ();
    }
    pthread_mutex_unlock (&self->lock);
    return token;
}

void
az_tokens_release (az_tokens_t *self, const az_cred_t *cred, const char *token,
                   int64_t lifetime_s)
{
    pthread_mutex_lock (&self->lock);
    int64_t now = dx_mono_ms ();
    s_entry_t *e = s_entry (self, az_cred_digest (cred), token != NULL, now);
    char *copy = token? strdup (token): NULL;
    if (e) {
        e->fetching = 0;
        if (copy) {
            int64_t life = lifetime_s > 0? lifetime_s * 1000: 0;
            dx_free_wiped (e->token);
            e->token = copy;
            e->fresh_until = now + life - (life >= 600000? 300000: life / 2);
            copy = NULL;
        }
    }
    dx_free_wiped (copy);
    pthread_cond_broadcast (&self->fetched);
    pthread_mutex_unlock (&self->lock);
}
