/*  Unit tests for services/api/api_body.c: Content-Type classification, form
    bodies as the reference's curl lines send them (values not URL-encoded:
    raw JSON, spaces, line breaks, base64url), %-decoding, '+', duplicates,
    malformed input, and JSON bodies, which at the limits of depth and size
    can still be sent on as messages. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include "../../services/api/api_body.h"

/*  Parses a NUL-terminated form; asserts success; caller owns. */
static json_t *
s_form_ok (const char *text)
{
    api_fault_t fault;
    json_t *fields = api_body_parse_form (text, strlen (text), &fault);
    if (!fields)
        fail_msg ("form '%s' refused: %s (%s)", text, fault.message, fault.field);
    return fields;
}

/*  Parses a form that must be refused; returns the fault. */
static api_fault_t
s_form_bad (const char *text, size_t len)
{
    api_fault_t fault;
    memset (&fault, 0, sizeof fault);
    json_t *fields = api_body_parse_form (text, len, &fault);
    if (fields) {
        json_decref (fields);
        fail_msg ("form '%.*s' was accepted", (int) len, text);
    }
    assert_true (strlen (fault.message) > 0);
    return fault;
}

static void
s_assert_field (const json_t *fields, const char *name, const char *value)
{
    const char *got = json_string_value (json_object_get (fields, name));
    if (!got)
        fail_msg ("field '%s' missing", name);
    assert_string_equal (got, value);
}

static void
test_content_types (void **state)
{
    (void) state;
    assert_int_equal (api_body_type (NULL), API_BODY_FORM);
    assert_int_equal (api_body_type (""), API_BODY_FORM);
    assert_int_equal (api_body_type ("application/x-www-form-urlencoded"), API_BODY_FORM);
    assert_int_equal (api_body_type ("application/x-www-form-urlencoded; charset=UTF-8"),
                      API_BODY_FORM);
    assert_int_equal (api_body_type ("Application/X-WWW-Form-Urlencoded"), API_BODY_FORM);
    assert_int_equal (api_body_type ("application/json"), API_BODY_JSON);
    assert_int_equal (api_body_type ("application/json;charset=utf-8"), API_BODY_JSON);
    assert_int_equal (api_body_type ("APPLICATION/JSON ; charset=utf-8"), API_BODY_JSON);
    assert_int_equal (api_body_type ("text/plain"), API_BODY_UNSUPPORTED);
    assert_int_equal (api_body_type ("multipart/form-data; boundary=x"), API_BODY_UNSUPPORTED);
    assert_int_equal (api_body_type ("application/jsonx"), API_BODY_UNSUPPORTED);
    assert_int_equal (api_body_type ("application/json x"), API_BODY_UNSUPPORTED);
    assert_int_equal (api_body_type ("application/merge-patch+json"), API_BODY_UNSUPPORTED);
}

/*  What `curl -X POST -d "name=c1" -d "provider=aws" -d "type=mesos"` sends. */
static void
test_form_reference_cluster (void **state)
{
    (void) state;
    json_t *fields = s_form_ok ("name=c1&provider=aws&type=mesos");
    assert_int_equal (json_object_size (fields), 3);
    s_assert_field (fields, "name", "c1");
    s_assert_field (fields, "provider", "aws");
    s_assert_field (fields, "type", "mesos");
    json_decref (fields);
}

/*  The group lines: raw JSON values, a space inside one, unencoded. */
static void
test_form_raw_json_values (void **state)
{
    (void) state;
    json_t *fields = s_form_ok ("name=slaves&role=role1&attributes={\"foo\":\" bar\"}"
                                "&vars={\"foo\":\"bar\"}&cpus=10&ram=64&disk_size=50");
    s_assert_field (fields, "attributes", "{\"foo\":\" bar\"}");
    s_assert_field (fields, "vars", "{\"foo\":\"bar\"}");
    s_assert_field (fields, "disk_size", "50");
    json_decref (fields);
}

/*  Azure config: `-d "location=Central US"` arrives with a raw space. */
static void
test_form_raw_space (void **state)
{
    (void) state;
    json_t *fields = s_form_ok ("location=Central US&masters=3&ssh_user=dexter");
    s_assert_field (fields, "location", "Central US");
    json_decref (fields);
    fields = s_form_ok ("location=Central+US");
    s_assert_field (fields, "location", "Central US");
    json_decref (fields);
}

/*  base64url with '=' padding (split on the first '=' only), and base64
    without -w 0, which puts line breaks into the value. */
static void
test_form_base64_and_line_breaks (void **state)
{
    (void) state;
    json_t *fields = s_form_ok ("sshkeydata=LS0tLS1CRUdJTi_-AA==&sshkey=reference");
    s_assert_field (fields, "sshkeydata", "LS0tLS1CRUdJTi_-AA==");
    json_decref (fields);
    fields = s_form_ok ("command=deploy&credentials=eyJjbGllbnRJZCI6\nICJ4In0K\n");
    s_assert_field (fields, "credentials", "eyJjbGllbnRJZCI6\nICJ4In0K\n");
    s_assert_field (fields, "command", "deploy");
    json_decref (fields);
    fields = s_form_ok ("a=x\r\ny");
    s_assert_field (fields, "a", "x\r\ny");
    json_decref (fields);
}

static void
test_form_decoding (void **state)
{
    (void) state;
    json_t *fields = s_form_ok ("attributes=%7B%22foo%22%3A%22bar%22%7D"
                                "&aws_secret_access_key=ab+cd%2Bef&%6Eame=x%20y&u=%C3%A9");
    s_assert_field (fields, "attributes", "{\"foo\":\"bar\"}");
    s_assert_field (fields, "aws_secret_access_key", "ab cd+ef");
    s_assert_field (fields, "name", "x y");
    s_assert_field (fields, "u", "\xC3\xA9");
    json_decref (fields);
}

static void
test_form_empty_pieces (void **state)
{
    (void) state;
    json_t *fields = s_form_ok ("");
    assert_int_equal (json_object_size (fields), 0);
    json_decref (fields);
    fields = s_form_ok ("&&a=1&&b=&flag&");
    assert_int_equal (json_object_size (fields), 3);
    s_assert_field (fields, "a", "1");
    s_assert_field (fields, "b", "");
    s_assert_field (fields, "flag", "");
    json_decref (fields);
    fields = s_form_ok ("a==b=c");
    s_assert_field (fields, "a", "=b=c");
    json_decref (fields);
}

/*  Only len bytes are read: what follows is not part of the body. */
static void
test_form_length_bounded (void **state)
{
    (void) state;
    const char buf [] = "a=1&b=2GARBAGE";
    api_fault_t fault;
    json_t *fields = api_body_parse_form (buf, 7, &fault);
    assert_non_null (fields);
    s_assert_field (fields, "b", "2");
    json_decref (fields);
}

static void
test_form_duplicates (void **state)
{
    (void) state;
    api_fault_t fault = s_form_bad ("name=a&provider=aws&name=b", 26);
    assert_string_equal (fault.field, "name");
    assert_non_null (strstr (fault.message, "more than once"));
    fault = s_form_bad ("name=a&%6Eame=b", 15);
    assert_string_equal (fault.field, "name");
    fault = s_form_bad ("x=&x=", 5);
    assert_string_equal (fault.field, "x");
}

static void
test_form_bad_percent (void **state)
{
    (void) state;
    const char *bad [] = { "a=%", "a=%4", "a=%zz", "a=%4g", "a=1%", "b=ok&a=x%2" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        api_fault_t fault = s_form_bad (bad [i], strlen (bad [i]));
        assert_string_equal (fault.field, "a");
        assert_non_null (strstr (fault.message, "%"));
    }
    api_fault_t fault = s_form_bad ("a%=1", 4);
    assert_string_equal (fault.field, "");
}

static void
test_form_not_text (void **state)
{
    (void) state;
    api_fault_t fault = s_form_bad ("a=%00", 5);
    assert_string_equal (fault.field, "a");
    fault = s_form_bad ("a=x\0y", 5);               /* a raw NUL byte */
    assert_string_equal (fault.field, "a");
    fault = s_form_bad ("a=%FF", 5);
    assert_string_equal (fault.field, "a");
    fault = s_form_bad ("a=\xC3", 3);               /* cut sequence */
    fault = s_form_bad ("a=%C0%AF", 8);             /* overlong '/' */
    fault = s_form_bad ("a=%ED%A0%80", 11);         /* surrogate */
    fault = s_form_bad ("a=%F4%90%80%80", 14);      /* above U+10FFFF */
    fault = s_form_bad ("%FF=1", 5);                /* a name */
    assert_string_equal (fault.field, "");
    fault = s_form_bad ("=x", 2);                   /* empty name */
    fault = s_form_bad ("a=1&=x", 6);
    /* Four-byte characters are fine. */
    json_t *fields = s_form_ok ("a=%F0%9F%98%80");
    s_assert_field (fields, "a", "\xF0\x9F\x98\x80");
    json_decref (fields);
}

static void
test_json_object (void **state)
{
    (void) state;
    const char *text = "{\"name\":\"c1\",\"masters\":3,\"attributes\":{\"a\":\"b\"}}";
    api_fault_t fault;
    json_t *fields = api_body_parse (API_BODY_JSON, text, strlen (text), &fault);
    assert_non_null (fields);
    assert_int_equal (json_integer_value (json_object_get (fields, "masters")), 3);
    assert_true (json_is_object (json_object_get (fields, "attributes")));
    json_decref (fields);
    fields = api_body_parse (API_BODY_JSON, "{}", 2, &fault);
    assert_non_null (fields);
    json_decref (fields);
}

static void
test_json_refused (void **state)
{
    (void) state;
    const char *bad [] = {
        "", "[1]", "1", "\"x\"", "null", "{bad", "{\"a\":1,\"a\":2}",
        "{\"a\":\"\\u0000\"}", "{\"a\":1} x", "{\"a\":\"\xFF\"}"
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        api_fault_t fault;
        memset (&fault, 0, sizeof fault);
        json_t *fields = api_body_parse (API_BODY_JSON, bad [i], strlen (bad [i]), &fault);
        if (fields)
            fail_msg ("JSON '%s' was accepted", bad [i]);
        assert_true (strlen (fault.message) > 0);
        /* The message must itself be valid text for a JSON answer. */
        json_t *s = json_string (fault.message);
        assert_non_null (s);
        json_decref (s);
    }
    api_fault_t fault;
    assert_null (api_body_parse (API_BODY_JSON, "{bad", 4, &fault));
    assert_non_null (strstr (fault.message, "line 1"));
    assert_null (api_body_parse (API_BODY_JSON, "[1]", 3, &fault));
    assert_non_null (strstr (fault.message, "object"));
    assert_null (api_body_parse (API_BODY_UNSUPPORTED, "{}", 2, &fault));
    //  What the parser stopped at is not quoted back: it may be a secret
    const char *broken = "{\"aws_secret_access_key\": \"wJalrXUtnFEMI\nK7MDENG\"}";
    assert_null (api_body_parse (API_BODY_JSON, broken, strlen (broken), &fault));
    assert_null (strstr (fault.message, "wJalr"));
    assert_non_null (strstr (fault.message, "line 1"));
    broken = "{\"aws_secret_access_key\": wJalrXUtnFEMI}";
    assert_null (api_body_parse (API_BODY_JSON, broken, strlen (broken), &fault));
    assert_null (strstr (fault.message, "wJalr"));
}

/*  Fails unless fields travel where messages carry a body: in the request
    the api sends (group.upsert's fields) and two levels down (a reply's
    list of groups), each decoding back equal. */
static void
s_assert_sendable (json_t *fields)
{
    json_t *request = dx_msg_new ("group.upsert", NULL);
    json_object_set_new (request, "name", json_string ("demo"));
    json_object_set_new (request, "deadline", json_integer (1795574400123));
    json_object_set (request, "fields", fields);
    json_t *reply = dx_reply_new (request, DX_OK, json_pack ("[O]", fields));
    const json_t *messages [] = { request, reply };
    for (size_t i = 0; i < 2; i++) {
        char *buf = NULL;
        size_t len = 0;
        assert_int_equal (dx_msg_encode (messages [i], &buf, &len), 0);
        char err [DX_ERR_LEN];
        json_t *back = dx_msg_decode (buf, len, err, sizeof err);
        if (!back)
            fail_msg ("message did not decode: %s", err);
        assert_true (json_equal (back, messages [i]));
        json_decref (back);
        free (buf);
    }
    json_decref (reply);
    json_decref (request);
}

/*  Nesting: DX_MSG_BODY_DEPTH levels are fine and can be sent on, one
    more is refused. */
static void
test_json_depth (void **state)
{
    (void) state;
    char text [256];
    for (int depth = DX_MSG_BODY_DEPTH; depth <= DX_MSG_BODY_DEPTH + 1; depth++) {
        size_t n = 0;
        for (int i = 0; i < depth; i++)
            n += (size_t) sprintf (text + n, "{\"a\":");
        n += (size_t) sprintf (text + n, "1");
        for (int i = 0; i < depth; i++)
            text [n++] = '}';
        text [n] = 0;
        api_fault_t fault;
        json_t *fields = api_body_parse (API_BODY_JSON, text, n, &fault);
        if (depth == DX_MSG_BODY_DEPTH) {
            assert_non_null (fields);
            s_assert_sendable (fields);
        }
        else {
            assert_null (fields);
            assert_non_null (strstr (fault.message, "nested"));
        }
        json_decref (fields);
    }
    /* Arrays count too. */
    api_fault_t fault;
    assert_null (api_body_parse (API_BODY_JSON, "{\"a\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}", 38, &fault));
}

/*  Size: a body of API_BODY_MAX bytes made of what msgpack writes longest
    for its JSON size (doubles, 4 bytes of JSON to 9 of msgpack) and a
    form of that size both parse and can be sent on. */
static void
test_body_max_sendable (void **state)
{
    (void) state;
    char *text = malloc (API_BODY_MAX);
    assert_non_null (text);
    size_t n = (size_t) sprintf (text, "{\"a\":[1e1");
    while (n + 4 + 2 <= API_BODY_MAX)
        n += (size_t) sprintf (text + n, ",1e1");
    memset (text + n, ' ', API_BODY_MAX - 2 - n);
    memcpy (text + API_BODY_MAX - 2, "]}", 2);
    api_fault_t fault;
    json_t *fields = api_body_parse (API_BODY_JSON, text, API_BODY_MAX, &fault);
    if (!fields)
        fail_msg ("largest JSON body refused: %s", fault.message);
    s_assert_sendable (fields);
    json_decref (fields);

    //  A form of distinct names without values: the most fields
    n = 0;
    for (unsigned i = 0; n + 5 <= API_BODY_MAX; i++)
        n += (size_t) sprintf (text + n, "%c%c%c%c&", 'a' + i % 26, 'a' + i / 26 % 26,
                               'a' + i / 676 % 26, 'a' + i / 17576 % 26);
    memset (text + n, '&', API_BODY_MAX - n);
    fields = api_body_parse (API_BODY_FORM, text, API_BODY_MAX, &fault);
    assert_non_null (fields);
    s_assert_sendable (fields);
    json_decref (fields);
    free (text);
}

static void
test_text_copy (void **state)
{
    (void) state;
    char out [8];
    api_text_copy (out, sizeof out, "a\xFF" "b");
    assert_string_equal (out, "a?b");
    api_text_copy (out, sizeof out, "abcdef\xC3\xA9");     /* é would not fit */
    assert_string_equal (out, "abcdef");
    api_text_copy (out, sizeof out, "abcde\xC3\xA9");
    assert_string_equal (out, "abcde\xC3\xA9");
    api_fault_t fault;
    assert_int_equal (api_fault_set (&fault, NULL, "n=%d", 5), -1);
    assert_string_equal (fault.field, "");
    assert_string_equal (fault.message, "n=5");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_content_types),
        cmocka_unit_test (test_form_reference_cluster),
        cmocka_unit_test (test_form_raw_json_values),
        cmocka_unit_test (test_form_raw_space),
        cmocka_unit_test (test_form_base64_and_line_breaks),
        cmocka_unit_test (test_form_decoding),
        cmocka_unit_test (test_form_empty_pieces),
        cmocka_unit_test (test_form_length_bounded),
        cmocka_unit_test (test_form_duplicates),
        cmocka_unit_test (test_form_bad_percent),
        cmocka_unit_test (test_form_not_text),
        cmocka_unit_test (test_json_object),
        cmocka_unit_test (test_json_refused),
        cmocka_unit_test (test_json_depth),
        cmocka_unit_test (test_body_max_sendable),
        cmocka_unit_test (test_text_copy),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
