/*  api_body: form and JSON request bodies into a JSON object of fields. */
#include "api_body.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*  Length of the valid UTF-8 sequence starting at s (at most n bytes), or 0
    when the bytes there are not one (overlong forms, surrogates and code
    points above U+10FFFF included). Shared by validation and sanitizing. */
static size_t
s_utf8_seq (const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    unsigned char c = s [0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned long cp;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else
    if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
    else
    if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s [i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s [i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)
    ||  (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return 0;
    return len;
}

/*  1 if the n bytes at s are UTF-8 without NUL: what a field name or value
    must be to travel as a JSON (and msgpack) string. */
static bool
s_utf8_text (const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t i = 0;
    while (i < n) {
        if (p [i] == 0)
            return false;
        size_t len = s_utf8_seq (p + i, n - i);
        if (len == 0)
            return false;
        i += len;
    }
    return true;
}

void
api_text_copy (char *dst, size_t size, const char *src)
{
    const unsigned char *p = (const unsigned char *) src;
    size_t n = strlen (src), i = 0, o = 0;
    while (i < n) {
        size_t len = s_utf8_seq (p + i, n - i);
        if (len == 0) {
            if (o + 1 >= size)
                break;
            dst [o++] = '?';
            i++;
            continue;
        }
        if (o + len >= size)
            break;
        memcpy (dst + o, p + i, len);
        o += len;
        i += len;
    }
    dst [o] = 0;
}

int
api_fault_set (api_fault_t *fault, const char *field, const char *fmt, ...)
{
    if (!fault)
        return -1;
    char text [sizeof fault->message];
    va_list args;
    va_start (args, fmt);
    vsnprintf (text, sizeof text, fmt, args);
    va_end (args);
    api_text_copy (fault->message, sizeof fault->message, text);
    api_text_copy (fault->field, sizeof fault->field, field ? field : "");
    return -1;
}

api_body_type_t
api_body_type (const char *content_type)
{
    if (!content_type)
        return API_BODY_FORM;
    const char *s = content_type;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == 0)
        return API_BODY_FORM;
    size_t len = strcspn (s, "; \t");
    /* After the media type only white space or parameters may follow. */
    const char *rest = s + len;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (*rest && *rest != ';')
        return API_BODY_UNSUPPORTED;
    if (len == strlen ("application/x-www-form-urlencoded")
    &&  strncasecmp (s, "application/x-www-form-urlencoded", len) == 0)
        return API_BODY_FORM;
    if (len == strlen ("application/json")
    &&  strncasecmp (s, "application/json", len) == 0)
        return API_BODY_JSON;
    return API_BODY_UNSUPPORTED;
}

/*  Value of one hex digit, or -1. */
static int
s_hex (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*  Form-decodes n bytes at s into out (n + 1 bytes): '+' is a space, %XX a
    byte. Returns the decoded length, or -1 on a malformed % sequence. */
static long
s_form_decode (const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s [i] == '+')
            out [o++] = ' ';
        else
        if (s [i] == '%') {
            int a = i + 1 < n ? s_hex (s [i + 1]) : -1;
            int b = i + 2 < n ? s_hex (s [i + 2]) : -1;
            if (a < 0 || b < 0)
                return -1;
            out [o++] = (char) (a * 16 + b);
            i += 2;
        }
        else
            out [o++] = s [i];
    }
    out [o] = 0;
    return (long) o;
}

/*  Frees a scratch buffer after wiping it: form values may be credentials. */
static void
s_wipe_free (char *buf, size_t size)
{
    if (buf) {
        sodium_memzero (buf, size);
        free (buf);
    }
}

json_t *
api_body_parse_form (const char *data, size_t len, api_fault_t *fault)
{
    json_t *fields = json_object ();
    if (!fields) {
        api_fault_set (fault, NULL, "out of memory");
        return NULL;
    }
    /* Decoded text is never longer than its source. */
    char *name = malloc (len + 1);
    char *value = malloc (len + 1);
    if (!name || !value) {
        api_fault_set (fault, NULL, "out of memory");
        goto fail;
    }
    size_t pos = 0;
    while (pos < len) {
        const char *pair = data + pos;
        const char *amp = memchr (pair, '&', len - pos);
        size_t pair_len = amp ? (size_t) (amp - pair) : len - pos;
        pos += pair_len + 1;
        if (pair_len == 0)
            continue;           /* "a=1&&b=2", a trailing '&' */

        const char *eq = memchr (pair, '=', pair_len);
        size_t name_len = eq ? (size_t) (eq - pair) : pair_len;
        const char *raw_value = eq ? eq + 1 : pair + pair_len;
        size_t value_len = eq ? pair_len - name_len - 1 : 0;

        long n = s_form_decode (pair, name_len, name);
        if (n < 0) {
            api_fault_set (fault, NULL, "malformed %% escape in a field name "
                           "(%% must be followed by two hex digits)");
            goto fail;
        }
        if (n == 0) {
            api_fault_set (fault, NULL, "a form field has an empty name");
            goto fail;
        }
        if (!s_utf8_text (name, (size_t) n)) {
            api_fault_set (fault, NULL,
                           "a form field name is not UTF-8 text without NUL");
            goto fail;
        }
        if (json_object_get (fields, name)) {
            api_fault_set (fault, name, "field '%s' is given more than once", name);
            goto fail;
        }
        long m = s_form_decode (raw_value, value_len, value);
        if (m < 0) {
            api_fault_set (fault, name, "malformed %% escape in field '%s' "
                           "(%% must be followed by two hex digits; "
                           "write a literal %% as %%25)", name);
            goto fail;
        }
        if (!s_utf8_text (value, (size_t) m)) {
            api_fault_set (fault, name,
                           "field '%s' is not UTF-8 text without NUL", name);
            goto fail;
        }
        json_t *string = json_stringn (value, (size_t) m);
        if (!string || json_object_set_new (fields, name, string)) {
            api_fault_set (fault, name, "out of memory");
            goto fail;
        }
    }
    s_wipe_free (name, len + 1);
    s_wipe_free (value, len + 1);
    return fields;

fail:
    s_wipe_free (name, len + 1);
    s_wipe_free (value, len + 1);
    json_decref (fields);
    return NULL;
}

/*  A JSON body: one object, no repeated keys, not too deep. */
static json_t *
s_parse_json (const char *data, size_t len, api_fault_t *fault)
{
    json_error_t error;
    json_t *body = json_loadb (data, len, JSON_REJECT_DUPLICATES, &error);
    if (!body) {
        //  Without jansson's "near '<text>'": the text may be a secret's
        char *near = strstr (error.text, " near '");
        if (near)
            *near = 0;
        api_fault_set (fault, NULL, "the body is not valid JSON: %s (line %d, column %d)",
                       error.text, error.line, error.column);
        return NULL;
    }
    if (!json_is_object (body)) {
        api_fault_set (fault, NULL, "the JSON body must be an object of fields");
        json_decref (body);
        return NULL;
    }
    if (dx_msg_too_deep (body, DX_MSG_BODY_DEPTH)) {
        api_fault_set (fault, NULL, "the JSON body is nested more than %d levels deep",
                       DX_MSG_BODY_DEPTH);
        json_decref (body);
        return NULL;
    }
    return body;
}

json_t *
api_body_parse (api_body_type_t type, const char *data, size_t len,
                api_fault_t *fault)
{
    if (type == API_BODY_FORM)
        return api_body_parse_form (data, len, fault);
    if (type == API_BODY_JSON)
        return s_parse_json (data, len, fault);
    api_fault_set (fault, NULL, "the body must be a form or JSON");
    return NULL;
}
