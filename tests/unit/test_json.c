/* Unit tests for common/json: JSON.parse acceptance, JSON.stringify spelling, JS key order. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/json.h"

/* Runs f on an exact-size heap copy of s, so ASan catches any read past the end. */
static int validate_copy(const char *s, size_t n)
{
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, s, n);
    int rc = json_validate(copy, n);
    free(copy);
    return rc;
}

static void test_validate_accepts(void **state)
{
    (void)state;
    static const char *ok[] = {
        "0",
        "-0",
        "1",
        "-1",
        "123",
        "1.5",
        "-1.5e10",
        "1E+2",
        "1e-2",
        "0.0",
        "0e0",
        "true",
        "false",
        "null",
        "\"\"",
        "\"abc\"",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
        "\"\\u0041\\uD83D\\ude00\"",
        "\"\\ud800\"",
        "\"\xc3\xa9\"",
        "\"\xff\"",
        "\"\x7f\"",
        "[]",
        "{}",
        "[1,2,3]",
        "{\"a\":1,\"a\":2}",
        " \t\r\n[ 1 , { \"k\" : [ ] } ] \n",
        "{\"\":{\"\":[null,true,false]}}",
        "[[[[[]]]]]",
        "1.7976931348623157e308",
        "1e999",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (validate_copy(ok[i], strlen(ok[i])) != 0)
            fail_msg("rejected: %s", ok[i]);
    }
}

static void test_utf8_valid(void **state)
{
    (void)state;
    assert_true(json_utf8_valid("", 0));
    assert_true(json_utf8_valid("plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 17));
    assert_false(json_utf8_valid("\xc3\x28", 2));         /* bad continuation */
    assert_false(json_utf8_valid("\xf0\x90\x80", 3));     /* truncated, same length as U+FFFD */
    assert_false(json_utf8_valid("\xed\xa0\x80", 3));     /* a surrogate */
    assert_false(json_utf8_valid("\xc0\xaf", 2));         /* overlong */
    assert_false(json_utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
    assert_false(json_utf8_valid("ok\x80", 3));
}

static void test_validate_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        " ",
        "01",
        "-",
        "+1",
        ".5",
        "1.",
        "1e",
        "1e+",
        "0x10",
        "NaN",
        "Infinity",
        "-Infinity",
        "tru",
        "nul",
        "True",
        "'a'",
        "\"abc",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\u12g4\"",
        "\"a\nb\"",
        "\"\t\"",
        "[1,]",
        "[,1]",
        "[1 2]",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{a:1}",
        "{1:1}",
        "[",
        "]",
        "{",
        "}",
        "[}",
        "{]",
        "1 2",
        "[] []",
        "\xef\xbb\xbf{}",
        "\v1",
        "\f1",
        "1\v",
        "\xc2\xa0"
        "1",
        "[1]x",
        "//",
        "/* */1",
        "{\"a\":1\"b\":2}",
        "\"\\\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (validate_copy(bad[i], strlen(bad[i])) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
    }
    assert_int_equal(validate_copy("\"a\0b\"", 5), -EINVAL);
    assert_int_equal(validate_copy("1\0", 2), -EINVAL);
}

static char *nested(size_t depth, const char *open, const char *inner, const char *close)
{
    size_t lo = strlen(open), lc = strlen(close), li = strlen(inner);
    char *s = malloc(depth * (lo + lc) + li + 1);
    assert_non_null(s);
    char *p = s;
    for (size_t i = 0; i < depth; i++, p += lo)
        memcpy(p, open, lo);
    memcpy(p, inner, li);
    p += li;
    for (size_t i = 0; i < depth; i++, p += lc)
        memcpy(p, close, lc);
    *p = '\0';
    return s;
}

static void test_validate_depth(void **state)
{
    (void)state;
    char *s = nested(JSON_MAX_DEPTH, "[", "1", "]");
    assert_int_equal(json_validate(s, strlen(s)), 0);
    free(s);
    s = nested(JSON_MAX_DEPTH + 1, "[", "1", "]");
    assert_int_equal(json_validate(s, strlen(s)), -EINVAL);
    free(s);
    s = nested(JSON_MAX_DEPTH, "{\"a\":", "{}", "}");
    assert_int_equal(json_validate(s, strlen(s)), -EINVAL);
    free(s);
    s = nested(JSON_MAX_DEPTH - 1, "{\"a\":", "{}", "}");
    assert_int_equal(json_validate(s, strlen(s)), 0);
    free(s);
    /* A megabyte of openers: rejected without recursion. */
    s = nested(1 << 20, "[", "", "");
    assert_int_equal(json_validate(s, strlen(s)), -EINVAL);
    free(s);
}

static void test_type_of(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        json_type_t t;
    } cases[] = {
        {"null", JSON_NULL}, {"false", JSON_FALSE},    {" true", JSON_TRUE}, {"-1", JSON_NUMBER},
        {"7", JSON_NUMBER},  {"\n\"x\"", JSON_STRING}, {"[1]", JSON_ARRAY},  {"{}", JSON_OBJECT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_type_t t;
        assert_int_equal(json_type_of(cases[i].s, strlen(cases[i].s), &t), 0);
        assert_int_equal(t, cases[i].t);
    }
    json_type_t t;
    assert_int_equal(json_type_of("  ", 2, &t), -EINVAL);
    assert_int_equal(json_type_of("x", 1, &t), -EINVAL);
}

static void test_minify(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    const char *in = " {\n \"a b\" : [ 1 , 2.50 ,\t\"x  y\" ] ,\r\"\\u0041\" : { } } ";
    assert_int_equal(json_minify(&b, in, strlen(in)), 0);
    assert_string_equal(b.data, "{\"a b\":[1,2.50,\"x  y\"],\"\\u0041\":{}}");
    /* Invalid input leaves what was there. */
    buf_reset(&b);
    buf_puts(&b, "keep");
    assert_int_equal(json_minify(&b, "[1, 2", 5), -EINVAL);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "keep");
    /* Byte-exact string contents, even invalid UTF-8. */
    buf_reset(&b);
    assert_int_equal(json_minify(&b, "[ \"\xff\" ]", 7), 0);
    assert_string_equal(b.data, "[\"\xff\"]");
    buf_free(&b);
}

static void test_minify_utf8(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    const char *in = "{ \"k\xff\" : [\"a\xe2\x82\" , \"\xc3\xa9\\n\"] }";
    assert_int_equal(json_minify_utf8(&b, in, strlen(in)), 0);
    assert_string_equal(b.data, "{\"k\xef\xbf\xbd\":[\"a\xef\xbf\xbd\",\"\xc3\xa9\\n\"]}");
    buf_reset(&b);
    assert_int_equal(json_minify_utf8(&b, "[\xff]", 3), -EINVAL);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void test_array_items(void **state)
{
    (void)state;
    json_span_t it[4];
    size_t n = 99;
    const char *in = " [ \"a,]\" , {\"x\":[1,2]} ,-1.5e3, [ ] ] ";
    assert_int_equal(json_array_items(in, strlen(in), it, 4, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(it[0].type, JSON_STRING);
    assert_int_equal(it[0].len, 5);
    assert_memory_equal(it[0].p, "\"a,]\"", 5);
    assert_int_equal(it[1].type, JSON_OBJECT);
    assert_memory_equal(it[1].p, "{\"x\":[1,2]}", it[1].len);
    assert_int_equal(it[2].type, JSON_NUMBER);
    assert_memory_equal(it[2].p, "-1.5e3", it[2].len);
    assert_int_equal(it[3].type, JSON_ARRAY);
    assert_memory_equal(it[3].p, "[ ]", it[3].len);

    assert_int_equal(json_array_items("[]", 2, it, 4, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(json_array_items("[1,2,3]", 7, it, 2, &n), -E2BIG);
    assert_int_equal(n, 2);
    assert_memory_equal(it[1].p, "2", 1);
    assert_int_equal(json_array_items("{}", 2, it, 4, &n), -EINVAL);
    assert_int_equal(json_array_items("[1,]", 4, it, 4, &n), -EINVAL);
    assert_int_equal(json_array_items("\"[1]\"", 5, it, 4, &n), -EINVAL);
}

static void check_string(const char *in, size_t n, const char *want)
{
    buf_t b;
    buf_init(&b);
    json_write_string(&b, in, n);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    buf_free(&b);
}

static void test_write_string(void **state)
{
    (void)state;
    check_string("", 0, "\"\"");
    check_string(NULL, 0, "\"\"");
    check_string("a\"b\\c/", 6, "\"a\\\"b\\\\c/\"");
    check_string("\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"");
    check_string("\x00\x01\x1f\x7f", 4, "\"\\u0000\\u0001\\u001f\x7f\"");
    check_string("\x1b", 1, "\"\\u001b\"");
    check_string("\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\xe2\x80\xa8", 12,
                 "\"\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\xe2\x80\xa8\"");
    /* WHATWG replacement: one U+FFFD per maximal invalid subpart. */
    check_string("\xff", 1, "\"\xef\xbf\xbd\"");
    check_string("\x80\x80", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    check_string("\xe2\x82"
                 "A",
                 3,
                 "\"\xef\xbf\xbd"
                 "A\"");
    check_string("\xe2\x82", 2, "\"\xef\xbf\xbd\"");
    check_string("\xc0\x80", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    check_string("\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    check_string("\xf4\x90\x80\x80", 4, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    check_string("\xf0\x9f\x98\"", 4, "\"\xef\xbf\xbd\\\"\"");
    check_string("a\xf5z", 3, "\"a\xef\xbf\xbdz\"");
}

static void check_number(double v, const char *want)
{
    buf_t b;
    buf_init(&b);
    json_write_number(&b, v);
    if (strcmp(b.data, want) != 0)
        fail_msg("%.17g printed as %s, want %s", v, b.data, want);
    buf_free(&b);
}

static void test_write_number(void **state)
{
    (void)state;
    check_number(0.1, "0.1");
    check_number(1e21, "1e+21");
    check_number(1e-7, "1e-7");
    check_number(123456789012345680000.0, "123456789012345680000");
    check_number(-0.0, "0");
    check_number(0.0, "0");
    check_number(5e-324, "5e-324");
    check_number(1.7976931348623157e308, "1.7976931348623157e+308");
    check_number(0.000001, "0.000001");
    check_number(1.5e-7, "1.5e-7");
    check_number(0.0000015, "0.0000015");
    check_number(1e20, "100000000000000000000");
    check_number(1.5e21, "1.5e+21");
    check_number(-2.5, "-2.5");
    check_number(0.3, "0.3");
    check_number(0.1 + 0.2, "0.30000000000000004");
    check_number(2.0 / 3.0, "0.6666666666666666");
    check_number(123.456, "123.456");
    check_number(9007199254740993.0, "9007199254740992");
    check_number(18446744073709551616.0, "18446744073709552000");
    check_number(1e23, "1e+23");
    check_number(-1e-300, "-1e-300");
    check_number(4.35, "4.35");
    check_number(2.2250738585072014e-308, "2.2250738585072014e-308");
    /* Powers of two where the rounding interval is asymmetric. */
    check_number(ldexp(1, -1074), "5e-324");
    check_number(ldexp(1, 1023), "8.98846567431158e+307");
    check_number(ldexp(1, -1022), "2.2250738585072014e-308");
    check_number(NAN, "null");
    check_number(INFINITY, "null");
    check_number(-INFINITY, "null");
}

static void check_decode(const char *lit, size_t n, const char *want, size_t want_len)
{
    buf_t b;
    size_t dlen;
    buf_init(&b);
    assert_int_equal(json_string_decode(lit, n, &b), 0);
    assert_int_equal(b.len, want_len);
    assert_memory_equal(b.data, want, want_len);
    assert_int_equal(json_string_decoded_len(lit, n, &dlen), 0);
    assert_int_equal(dlen, want_len);
    buf_free(&b);
}

static void test_string_decode(void **state)
{
    (void)state;
    check_decode("\"\"", 2, "", 0);
    check_decode("\"abc\"", 5, "abc", 3);
    check_decode("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", 18, "\"\\/\b\f\n\r\t", 8);
    check_decode("\"\\u0041\\u00e9\\u65E5\"", 20, "A\xc3\xa9\xe6\x97\xa5", 6);
    check_decode("\"\\u0000\"", 8, "\0", 1);
    check_decode("\"\\ud83d\\ude00\"", 14, "\xf0\x9f\x98\x80", 4);
    check_decode("\"\\ud83d\"", 8, "\xef\xbf\xbd", 3);
    check_decode("\"\\ude00\\ud83d\"", 14, "\xef\xbf\xbd\xef\xbf\xbd", 6);
    check_decode("\"\\ud83dx\"", 9, "\xef\xbf\xbdx", 4);
    check_decode("\"\\ud83d\\u0041\"", 14,
                 "\xef\xbf\xbd"
                 "A",
                 4);
    check_decode("\"\xc3\xa9\xff\"", 5, "\xc3\xa9\xef\xbf\xbd", 5);

    buf_t b;
    buf_init(&b);
    buf_puts(&b, "keep");
    static const char *bad[] = {"",        "\"",        "abc",      "\"a",   "\"\\\"",
                                "\"\\q\"", "\"\\u12\"", "\"a\"b\"", "\"\n\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (json_string_decode(bad[i], strlen(bad[i]), &b) != -EINVAL)
            fail_msg("decoded: %s", bad[i]);
    }
    assert_string_equal(b.data, "keep");
    buf_free(&b);
}

static void test_number_parse(void **state)
{
    (void)state;
    double v;
    assert_int_equal(json_number_parse("-0", 2, &v), 0);
    assert_true(v == 0 && signbit(v));
    assert_int_equal(json_number_parse("1e2", 3, &v), 0);
    assert_true(v == 100);
    assert_int_equal(json_number_parse("1e999", 5, &v), 0);
    assert_true(isinf(v));
    assert_int_equal(json_number_parse("0.1", 3, &v), 0);
    assert_true(v == 0.1);
    /* Longer than the stack copy. */
    char big[200];
    memset(big, '0', sizeof big);
    big[0] = '1';
    big[1] = '.';
    assert_int_equal(json_number_parse(big, sizeof big, &v), 0);
    assert_true(v == 1.0);
    assert_int_equal(json_number_parse("12", 1, &v), 0);
    assert_true(v == 1.0);
    assert_int_equal(json_number_parse("01", 2, &v), -EINVAL);
    assert_int_equal(json_number_parse("1 ", 2, &v), -EINVAL);
    assert_int_equal(json_number_parse("", 0, &v), -EINVAL);
}

/* Integer literals (read without strtod up to 15 digits) give exactly what strtod gives, at
 * every length, signed or not, past 2^53 included (rounded there, as JSON.parse does). */
static void test_number_parse_integers(void **state)
{
    (void)state;
    char lit[32];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int digits = 1; digits <= 20; digits++) {
        for (int k = 0; k < 50; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            size_t n = 0;
            if (k & 1)
                lit[n++] = '-';
            lit[n++] = (char)('1' + (x >> 60) % 9); /* no leading zero */
            for (int d = 1; d < digits; d++)
                lit[n++] = (char)('0' + (x >> (d % 50)) % 10);
            lit[n] = '\0';
            double v;
            assert_int_equal(json_number_parse(lit, n, &v), 0);
            assert_true(v == strtod(lit, NULL));
        }
    }
    double v;
    assert_int_equal(json_number_parse("9007199254740993", 16, &v), 0); /* 2^53 + 1 */
    assert_true(v == 9007199254740992.0);
    assert_int_equal(json_number_parse("-7", 2, &v), 0);
    assert_true(v == -7);
    assert_int_equal(json_number_parse("0", 1, &v), 0);
    assert_true(v == 0 && !signbit(v));
}

static void test_walkers(void **state)
{
    (void)state;
    const char *s = "[ {\"a\":\"]}\"}, 12 ,null]";
    size_t len = strlen(s);
    assert_int_equal(json_skip_ws(s, len, 1), 2);
    assert_int_equal(json_value_end(s, len, 2), 12);
    assert_int_equal(json_value_end(s, len, 14), 16);
    assert_int_equal(json_value_end(s, len, 18), 22);
    assert_int_equal(json_value_end(s, len, 0), len);
    /* Bounded on truncated text. */
    assert_int_equal(json_value_end("[\"ab", 4, 0), 4);
    assert_int_equal(json_value_end("\"a\\", 3, 0), 3);
}

static size_t order(json_key_t *k, const char **names, size_t n, bool drop_proto)
{
    for (size_t i = 0; i < n; i++) {
        k[i].p = names[i];
        k[i].len = strlen(names[i]);
        k[i].key_ref = 100 + i;
        k[i].val_ref = 200 + i;
    }
    return json_keys_order(k, n, drop_proto);
}

static void test_keys_order(void **state)
{
    (void)state;
    json_key_t k[64];
    const char *a[] = {"b", "a", "b", "10", "2", "4294967294", "4294967295", "01", "c", "a", "0"};
    size_t n = order(k, a, 11, false);
    const char *want[] = {"0", "2", "10", "4294967294", "b", "a", "4294967295", "01", "c"};
    const size_t key[] = {110, 104, 103, 105, 100, 101, 106, 107, 108};
    const size_t val[] = {210, 204, 203, 205, 202, 209, 206, 207, 208};
    assert_int_equal(n, 9);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(k[i].len, strlen(want[i]));
        assert_memory_equal(k[i].p, want[i], k[i].len);
        assert_int_equal(k[i].key_ref, key[i]);
        assert_int_equal(k[i].val_ref, val[i]);
    }

    const char *p[] = {"x", "__proto__", "y", "__proto__"};
    assert_int_equal(order(k, p, 4, true), 2);
    assert_memory_equal(k[1].p, "y", 1);
    assert_int_equal(order(k, p, 4, false), 3);
    assert_int_equal(k[1].val_ref, 203);

    /* Trivial fast path keeps input order. */
    const char *t[] = {"z", "y", "x"};
    assert_int_equal(order(k, t, 3, false), 3);
    assert_memory_equal(k[0].p, "z", 1);
    assert_int_equal(k[2].val_ref, 202);

    /* Many duplicates through the heapsort path. */
    const char *many[40];
    for (size_t i = 0; i < 40; i++)
        many[i] = (i % 2) ? "odd" : (i % 4 ? "two" : "zero");
    assert_int_equal(order(k, many, 40, false), 3);
    assert_memory_equal(k[0].p, "zero", 4);
    assert_int_equal(k[0].val_ref, 236);
    assert_memory_equal(k[1].p, "odd", 3);
    assert_int_equal(k[1].val_ref, 239);
    assert_memory_equal(k[2].p, "two", 3);
    assert_int_equal(k[2].key_ref, 102);
    assert_int_equal(k[2].val_ref, 238);

    const char *empty[] = {"", "a", ""};
    assert_int_equal(order(k, empty, 3, false), 2);
    assert_int_equal(k[0].len, 0);
    assert_int_equal(k[0].val_ref, 202);
    assert_int_equal(json_keys_order(k, 0, true), 0);
}

static void test_object_get(void **state)
{
    (void)state;
    buf_t tmp;
    buf_init(&tmp);
    json_span_t v;
    const char *o =
        " { \"pid\" : \"abc\", \"offset\":1, \"p\\u0069d\":\"last\", \"n\":{\"pid\":2} } ";
    assert_int_equal(json_validate(o, strlen(o)), 0);
    assert_int_equal(json_member_get(o, strlen(o), "pid", &v, &tmp), 0);
    assert_int_equal(v.type, JSON_STRING);
    assert_int_equal(v.len, 6); /* the escaped key repeats "pid": the last value wins */
    assert_memory_equal(v.p, "\"last\"", 6);
    assert_int_equal(json_member_get(o, strlen(o), "offset", &v, &tmp), 0);
    assert_int_equal(v.type, JSON_NUMBER);
    assert_memory_equal(v.p, "1", 1);
    assert_int_equal(json_member_get(o, strlen(o), "n", &v, &tmp), 0);
    assert_int_equal(v.type, JSON_OBJECT);
    assert_int_equal(json_member_get(o, strlen(o), "missing", &v, &tmp), -ENOENT);
    assert_int_equal(json_member_get("{}", 2, "pid", &v, &tmp), -ENOENT);
    assert_int_equal(json_member_get("[\"pid\"]", 7, "pid", &v, &tmp), -ENOENT);
    assert_int_equal(json_member_get("\"pid\"", 5, "pid", &v, &tmp), -ENOENT);
    buf_free(&tmp);
}

/* The string JSON.parse gives for a string written by json_write_string: repaired, unescaped. */
static void test_write_utf8(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"", ""},
        {"plain \"quoted\" \\ \n", "plain \"quoted\" \\ \n"},
        {"\xc3\xa9\xf0\x9f\x98\x80", "\xc3\xa9\xf0\x9f\x98\x80"},
        {"a\xff"
         "b",
         "a\xef\xbf\xbd"
         "b"},
        {"\xe2\x82", "\xef\xbf\xbd"},                             /* one maximal subpart */
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* a surrogate: three */
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_t b;
        buf_init(&b);
        json_write_utf8(&b, cases[i].in, strlen(cases[i].in));
        assert_int_equal(b.len, strlen(cases[i].want));
        assert_memory_equal(b.data, cases[i].want, b.len);
        assert_int_equal(json_utf8_len(cases[i].in, strlen(cases[i].in)), b.len);
        /* the same as decoding what json_write_string wrote */
        buf_t lit, dec;
        buf_init(&lit);
        buf_init(&dec);
        json_write_string(&lit, cases[i].in, strlen(cases[i].in));
        assert_int_equal(json_string_decode(lit.data, lit.len, &dec), 0);
        assert_int_equal(dec.len, b.len);
        assert_memory_equal(dec.data, b.data, b.len);
        buf_free(&lit);
        buf_free(&dec);
        buf_free(&b);
    }
}

/* Decoding can grow: each invalid byte becomes U+FFFD. json_decoded_max bounds it, tightly for
 * a string of lone continuation bytes, and escapes only ever shrink. */
static void test_decoded_max(void **state)
{
    (void)state;
    const char lit[] = "\"\x80\x80\x80\\n\\u00e9\"";
    size_t n = sizeof(lit) - 1, dlen;
    assert_int_equal(json_string_decoded_len(lit, n, &dlen), 0);
    assert_int_equal(dlen, 3 * 3 + 1 + 2);
    assert_true(dlen > n - 2); /* longer than the literal's contents */
    assert_int_equal(json_decoded_max(lit, n), n + 3 * 2);
    assert_true(dlen <= json_decoded_max(lit, n));
    assert_int_equal(json_decoded_max("\"\\ud83d\\ude00\"", 14), 14);
}

/* String literals are scanned 8 bytes at a time: a quote, a backslash or a control character
 * must be found at every offset of a word, and in the bytes after the last whole word. */
static void test_string_scan_at_every_offset(void **state)
{
    (void)state;
    for (size_t k = 0; k < 24; k++) {
        char in[64];
        size_t n;
        memset(in, 'a', sizeof(in));
        in[0] = '"';
        in[1 + k] = '"'; /* the literal ends after k plain bytes */
        n = 2 + k;
        assert_int_equal(json_value_end(in, sizeof(in), 0), n);
        assert_int_equal(json_validate(in, n), 0);
        in[1 + k] = '\\'; /* an escaped quote at k, then the end */
        in[2 + k] = '"';
        in[3 + k] = '"';
        assert_int_equal(json_value_end(in, sizeof(in), 0), 4 + k);
        in[2 + k] = 'q'; /* an invalid escape at k */
        assert_int_not_equal(json_validate(in, 4 + k), 0);
        in[1 + k] = 0x1f; /* a raw control character at k */
        in[2 + k] = 'a';
        in[3 + k] = '"';
        assert_int_not_equal(json_validate(in, 4 + k), 0);
        in[1 + k] = (char)0xc3; /* bytes >= 0x80 are plain: "...é..." */
        in[2 + k] = (char)0xa9;
        assert_int_equal(json_value_end(in, sizeof(in), 0), 4 + k);
        assert_int_equal(json_validate(in, 4 + k), 0);
        in[3 + k] = 'a'; /* unterminated */
        assert_int_not_equal(json_validate(in, 4 + k), 0);
    }
}

/* Decoding and measuring take plain ASCII a word at a time: a special byte at every offset of a
 * word and in the tail is still seen (decoded, repaired, measured or refused). */
static void test_decode_specials(void **state)
{
    (void)state;
    static const struct {
        const char *raw, *decoded; /* the special bytes in the literal, what they decode to */
        int rc;                    /* 0, or decoding refuses the literal */
    } cases[] = {
        {"\\n", "\n", 0},
        {"\xc3\xa9", "\xc3\xa9", 0},
        {"\xff", "\xef\xbf\xbd", 0}, /* invalid UTF-8: U+FFFD */
        {"\x1f", "", -EINVAL},
        {"\"", "", -EINVAL},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (size_t k = 0; k < 24; k++) {
            char lit[64], want[64];
            size_t rl = strlen(cases[c].raw), dl = strlen(cases[c].decoded), n, d;
            memset(lit, 'a', sizeof(lit));
            memset(want, 'a', sizeof(want));
            lit[0] = '"';
            memcpy(lit + 1 + k, cases[c].raw, rl);
            n = 1 + 24 + rl + 1; /* 24 plain bytes around the special ones, then the quote */
            lit[n - 1] = '"';
            memcpy(want + k, cases[c].decoded, dl);
            assert_int_equal(json_string_decoded_len(lit, n, &d), cases[c].rc);
            buf_t out;
            buf_init(&out);
            assert_int_equal(json_string_decode(lit, n, &out), cases[c].rc);
            if (!cases[c].rc) {
                assert_int_equal(d, 24 + dl);
                assert_int_equal(out.len, 24 + dl);
                assert_memory_equal(out.data, want, out.len);
            }
            buf_free(&out);
            if (cases[c].raw[0] & 0x80) /* the raw bytes, measured as repaired UTF-8 */
                assert_int_equal(json_utf8_len(lit + 1, n - 2), 24 + dl);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_utf8),       cmocka_unit_test(test_validate_accepts),
        cmocka_unit_test(test_validate_rejects), cmocka_unit_test(test_validate_depth),
        cmocka_unit_test(test_type_of),          cmocka_unit_test(test_minify),
        cmocka_unit_test(test_minify_utf8),      cmocka_unit_test(test_array_items),
        cmocka_unit_test(test_write_string),     cmocka_unit_test(test_write_number),
        cmocka_unit_test(test_string_decode),    cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_number_parse),     cmocka_unit_test(test_walkers),
        cmocka_unit_test(test_keys_order),       cmocka_unit_test(test_object_get),
        cmocka_unit_test(test_decoded_max),      cmocka_unit_test(test_number_parse_integers),
        cmocka_unit_test(test_decode_specials),  cmocka_unit_test(test_string_scan_at_every_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
