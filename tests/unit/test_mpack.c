/* Unit tests for common/mpack: notepack.io byte compatibility, bounded reader, converters. */
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
#include "common/mpack.h"

#define BYTES(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

static void check_bytes(const buf_t *b, const uint8_t *want, size_t n)
{
    assert_int_equal(b->len, n);
    assert_memory_equal(b->data, want, n);
}

typedef void (*write_fn)(buf_t *, double);

static void write_int_fn(buf_t *b, double v)
{
    mpack_write_int(b, (int64_t)v);
}

static void check_write(write_fn fn, double v, const uint8_t *want, size_t n)
{
    buf_t b;
    buf_init(&b);
    fn(&b, v);
    check_bytes(&b, want, n);
    buf_free(&b);
}

static void test_write_ints(void **state)
{
    (void)state;
    check_write(write_int_fn, 0, BYTES(0x00));
    check_write(write_int_fn, 127, BYTES(0x7f));
    check_write(write_int_fn, 128, BYTES(0xcc, 0x80));
    check_write(write_int_fn, 255, BYTES(0xcc, 0xff));
    check_write(write_int_fn, 256, BYTES(0xcd, 0x01, 0x00));
    check_write(write_int_fn, 65535, BYTES(0xcd, 0xff, 0xff));
    check_write(write_int_fn, 65536, BYTES(0xce, 0x00, 0x01, 0x00, 0x00));
    check_write(write_int_fn, 4294967295.0, BYTES(0xce, 0xff, 0xff, 0xff, 0xff));
    check_write(write_int_fn, 4294967296.0, BYTES(0xcf, 0, 0, 0, 1, 0, 0, 0, 0));
    check_write(write_int_fn, -1, BYTES(0xff));
    check_write(write_int_fn, -32, BYTES(0xe0));
    check_write(write_int_fn, -33, BYTES(0xd0, 0xdf));
    check_write(write_int_fn, -128, BYTES(0xd0, 0x80));
    check_write(write_int_fn, -129, BYTES(0xd1, 0xff, 0x7f));
    check_write(write_int_fn, -32768, BYTES(0xd1, 0x80, 0x00));
    check_write(write_int_fn, -32769, BYTES(0xd2, 0xff, 0xff, 0x7f, 0xff));
    check_write(write_int_fn, -2147483648.0, BYTES(0xd2, 0x80, 0, 0, 0));
    check_write(write_int_fn, -2147483649.0,
                BYTES(0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff));

    buf_t b;
    buf_init(&b);
    mpack_write_uint(&b, UINT64_MAX);
    mpack_write_int(&b, INT64_MIN);
    check_bytes(&b, BYTES(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xd3, 0x80, 0, 0, 0,
                          0, 0, 0, 0));
    buf_free(&b);
}

static void test_write_double(void **state)
{
    (void)state;
    /* Same bytes notepack.io 3.0.1 writes for these JS numbers. */
    check_write(mpack_write_double, 1.0, BYTES(0x01));
    check_write(mpack_write_double, -0.0, BYTES(0x00));
    check_write(mpack_write_double, 300.0, BYTES(0xcd, 0x01, 0x2c));
    check_write(mpack_write_double, -5.0, BYTES(0xfb));
    check_write(mpack_write_double, 1.5, BYTES(0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0));
    check_write(mpack_write_double, 0.1,
                BYTES(0xcb, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a));
    check_write(mpack_write_double, 9223372036854775808.0, BYTES(0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0));
    check_write(mpack_write_double, -9223372036854775808.0, BYTES(0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0));
    /* Beyond 64 bits notepack wraps; the value is kept as float64 instead. */
    check_write(mpack_write_double, 1e20,
                BYTES(0xcb, 0x44, 0x15, 0xaf, 0x1d, 0x78, 0xb5, 0x8c, 0x40));
    check_write(mpack_write_double, -18446744073709551616.0,
                BYTES(0xcb, 0xc3, 0xf0, 0, 0, 0, 0, 0, 0));
    check_write(mpack_write_double, INFINITY, BYTES(0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0));
    check_write(mpack_write_double, -NAN, BYTES(0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0));
}

static void check_str_header(size_t len, const uint8_t *want, size_t n)
{
    char *s = malloc(len + 1);
    assert_non_null(s);
    memset(s, 'x', len);
    buf_t b;
    buf_init(&b);
    assert_int_equal(mpack_write_str(&b, s, len), 0);
    assert_int_equal(b.len, n + len);
    assert_memory_equal(b.data, want, n);
    buf_reset(&b);
    assert_int_equal(mpack_write_bin(&b, s, len), 0);
    assert_int_equal(b.data[0] & 0xff, len < 0x100 ? 0xc4 : len < 0x10000 ? 0xc5 : 0xc6);
    buf_free(&b);
    free(s);
}

static void test_write_containers(void **state)
{
    (void)state;
    check_str_header(0, BYTES(0xa0));
    check_str_header(31, BYTES(0xbf));
    check_str_header(32, BYTES(0xd9, 0x20));
    check_str_header(255, BYTES(0xd9, 0xff));
    check_str_header(256, BYTES(0xda, 0x01, 0x00));
    check_str_header(65535, BYTES(0xda, 0xff, 0xff));
    check_str_header(65536, BYTES(0xdb, 0x00, 0x01, 0x00, 0x00));

    buf_t b;
    buf_init(&b);
    mpack_write_array(&b, 15);
    mpack_write_array(&b, 16);
    mpack_write_array(&b, 65536);
    mpack_write_map(&b, 0);
    mpack_write_map(&b, 16);
    mpack_write_map(&b, 70000);
    mpack_write_nil(&b);
    mpack_write_bool(&b, false);
    mpack_write_bool(&b, true);
    assert_int_equal(mpack_write_bin(&b, "\x01\x02\x03", 3), 0);
    check_bytes(&b, BYTES(0x9f, 0xdc, 0x00, 0x10, 0xdd, 0x00, 0x01, 0x00, 0x00, 0x80, 0xde, 0x00,
                          0x10, 0xdf, 0x00, 0x01, 0x11, 0x70, 0xc0, 0xc2, 0xc3, 0xc4, 0x03, 0x01,
                          0x02, 0x03));
    buf_free(&b);
}

static void test_read_all_types(void **state)
{
    (void)state;
    const uint8_t in[] = {0x05, 0xcc, 0xff, 0xd0, 0x05, 0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                          0xff, 0xfe, 0xf0, 0xca, 0x3f, 0xc0, 0x00, 0x00, 0xa2, 'h',  'i',  0xc4,
                          0x01, 0x09, 0x92, 0x81, 0xc0, 0xc3, 0xd6, 0xff, 1,    2,    3,    4};
    mpack_reader_t r;
    mpack_item_t it;
    mpack_reader_init(&r, in, sizeof in);
    assert_int_equal(mpack_read(&r, &it), 0);
    assert_int_equal(it.type, MPACK_UINT);
    assert_int_equal(it.u, 5);
    assert_int_equal(mpack_read(&r, &it), 0);
    assert_int_equal(it.u, 255);
    assert_int_equal(mpack_read(&r, &it), 0);
    assert_int_equal(it.type, MPACK_UINT); /* int8 5 is still non-negative */
    assert_int_equal(it.u, 5);
    assert_int_equal(mpack_read(&r, &it), 0);
    assert_int_equal(it.type, MPACK_INT);
    assert_true(it.i == -2);
    assert_int_equal(mpack_read(&r, &it), 0);
    assert_true(it.type == MPACK_INT && it.i == -16);
    assert_int_equal(mpack_read(&r, &it), 0);
    assert_true(it.type == MPACK_FLOAT && it.f == 1.5);
    assert_int_equal(mpack_read(&r, &it), 0);
    assert_true(it.type == MPACK_STR && it.len == 2 && !memcmp(it.p, "hi", 2));
    assert_int_equal(mpack_read(&r, &it), 0);
    assert_true(it.type == MPACK_BIN && it.len == 1 && it.p[0] == 9);
    assert_int_equal(mpack_read(&r, &it), 0);
    assert_true(it.type == MPACK_ARRAY && it.count == 2);
    assert_int_equal(mpack_read(&r, &it), 0);
    assert_true(it.type == MPACK_MAP && it.count == 1);
    assert_int_equal(mpack_read(&r, &it), 0);
    assert_int_equal(it.type, MPACK_NIL);
    assert_int_equal(mpack_read(&r, &it), 0);
    assert_true(it.type == MPACK_BOOL && it.b);
    assert_int_equal(mpack_read(&r, &it), 0);
    assert_true(it.type == MPACK_EXT && it.ext_type == -1 && it.len == 4 && it.p[3] == 4);
    assert_ptr_equal(r.p, r.end);
    assert_int_equal(mpack_read(&r, &it), -EPROTO);
}

static void test_read_rejects(void **state)
{
    (void)state;
    static const struct {
        uint8_t b[8];
        size_t n;
    } bad[] = {
        {{0xc1}, 1},                         /* never used */
        {{0xa3, 'a', 'b'}, 3},               /* fixstr past the end */
        {{0xd9}, 1},                         /* str8 without length */
        {{0xdb, 0xff, 0xff, 0xff, 0xff}, 5}, /* 4 GiB str */
        {{0xcd, 0x01}, 2},                   /* truncated uint16 */
        {{0xcb, 0, 0, 0}, 4},                /* truncated float64 */
        {{0x93, 0x01}, 2},                   /* 3 elements, 1 byte left */
        {{0x82, 0x01, 0x02, 0x03}, 4},       /* 2 pairs need 4 bytes */
        {{0xdd, 0xff, 0xff, 0xff, 0xff}, 5}, /* 4-billion-element array */
        {{0xdf, 0x7f, 0xff, 0xff, 0xff, 0x00}, 6},
        {{0xd6, 0xff, 1, 2}, 4}, /* fixext4 short */
        {{0xc7, 0x05, 0x01}, 3}, /* ext8 short */
        {{0xc8, 0x00}, 2},       /* ext16 header short */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mpack_reader_t r;
        mpack_item_t it;
        mpack_reader_init(&r, bad[i].b, bad[i].n);
        if (mpack_read(&r, &it) != -EPROTO)
            fail_msg("case %zu accepted", i);
        assert_ptr_equal(r.p, bad[i].b);
        mpack_reader_init(&r, bad[i].b, bad[i].n);
        assert_int_equal(mpack_skip(&r), -EPROTO);
    }
}

static void test_skip(void **state)
{
    (void)state;
    const uint8_t in[] = {0x93, 0x81, 0xa1, 'k', 0x92, 0xc0, 0xcb, 0,    0,    0,
                          0,    0,    0,    0,   0,    0xa0, 0xd4, 0x00, 0x00, 0x2a};
    mpack_reader_t r;
    mpack_reader_init(&r, in, sizeof in);
    assert_int_equal(mpack_skip(&r), 0);
    assert_int_equal(r.p - in, sizeof in - 1);
    assert_int_equal(mpack_skip(&r), 0);
    assert_ptr_equal(r.p, r.end);
    assert_int_equal(mpack_skip(&r), -EPROTO);

    /* A million nested fixarrays: iterative, no stack growth; truncated version fails cleanly. */
    size_t n = 1000000;
    uint8_t *deep = malloc(n + 1);
    assert_non_null(deep);
    memset(deep, 0x91, n);
    deep[n] = 0xc0;
    mpack_reader_init(&r, deep, n + 1);
    assert_int_equal(mpack_skip(&r), 0);
    mpack_reader_init(&r, deep, n);
    assert_int_equal(mpack_skip(&r), -EPROTO);
    free(deep);
}

static void check_from_json(const char *json, const uint8_t *want, size_t n)
{
    buf_t b;
    buf_init(&b);
    int rc = mpack_from_json(&b, json, strlen(json));
    if (rc)
        fail_msg("%s: rc %d", json, rc);
    check_bytes(&b, want, n);
    buf_free(&b);
}

static void test_from_json(void **state)
{
    (void)state;
    /* The `data` of the §4.2 capture. */
    check_from_json("[\"room:message\",{\"id\":1,\"text\":\"hi\"}]",
                    BYTES(0x92, 0xac, 'r', 'o', 'o', 'm', ':', 'm', 'e', 's', 's', 'a', 'g', 'e',
                          0x82, 0xa2, 'i', 'd', 0x01, 0xa4, 't', 'e', 'x', 't', 0xa2, 'h', 'i'));
    check_from_json(" [ 1.0 , 1e2, -0, 0.5, -1.5e0, 1e400, true, false, null ] ",
                    BYTES(0x99, 0x01, 0x64, 0x00, 0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0, 0xcb, 0xbf,
                          0xf8, 0, 0, 0, 0, 0, 0, 0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0, 0xc3, 0xc2,
                          0xc0));
    check_from_json("\"\\u00e9\\n\\ud83d\\ude00\\ud800\"",
                    BYTES(0xaa, 0xc3, 0xa9, 0x0a, 0xf0, 0x9f, 0x98, 0x80, 0xef, 0xbf, 0xbd));
    /* JS object semantics: index keys first, duplicates at first position with the last value. */
    check_from_json("{\"b\":1,\"a\":2,\"b\":3,\"10\":4,\"2\":5,\"01\":6}",
                    BYTES(0x85, 0xa1, '2', 0x05, 0xa2, '1', '0', 0x04, 0xa1, 'b', 0x03, 0xa1, 'a',
                          0x02, 0xa2, '0', '1', 0x06));
    /* Escaped and raw spellings of one key are the same key; JSON.parse keeps "__proto__". */
    check_from_json(
        "{\"a\":1,\"\\u0061\":{\"__proto__\":[]}}",
        BYTES(0x81, 0xa1, 'a', 0x81, 0xa9, '_', '_', 'p', 'r', 'o', 't', 'o', '_', '_', 0x90));
    check_from_json("{}", BYTES(0x80));
    check_from_json("\"\"", BYTES(0xa0));
    check_from_json("\"\xff\"", BYTES(0xa3, 0xef, 0xbf, 0xbd));

    buf_t b;
    buf_init(&b);
    buf_puts(&b, "keep");
    assert_int_equal(mpack_from_json(&b, "{\"a\":}", 6), -EINVAL);
    assert_int_equal(mpack_from_json(&b, "", 0), -EINVAL);
    assert_int_equal(b.len, 4);
    buf_free(&b);
}

static void test_from_json_large(void **state)
{
    (void)state;
    /* 40 keys with escapes overflow the inline key stack and use the arena. */
    buf_t json, b;
    buf_init(&json);
    buf_init(&b);
    buf_putc(&json, '{');
    for (int i = 0; i < 40; i++)
        buf_printf(&json, "%s\"k\\u00%02x\":{\"x\":%d}", i ? "," : "", 0x41 + (i % 20), i);
    buf_putc(&json, '}');
    assert_int_equal(mpack_from_json(&b, json.data, json.len), 0);
    /* 20 distinct keys "kA".."kT", each holding the value of its second occurrence. */
    assert_int_equal((uint8_t)b.data[0], 0xde);
    assert_int_equal((uint8_t)b.data[2], 20);
    assert_memory_equal(b.data + 3, "\xa2kA\x81\xa1x\x14", 7);
    buf_free(&json);
    buf_free(&b);
}

static void check_to_json(const uint8_t *in, size_t n, const char *want)
{
    buf_t b;
    size_t used = 0;
    uint8_t *copy = malloc(n);
    assert_non_null(copy);
    memcpy(copy, in, n);
    buf_init(&b);
    int rc = mpack_to_json(&b, copy, n, &used);
    if (rc)
        fail_msg("rc %d, want %s", rc, want);
    assert_int_equal(used, n);
    assert_string_equal(b.data, want);
    buf_free(&b);
    free(copy);
}

static void check_to_json_err(const uint8_t *in, size_t n, int want)
{
    buf_t b;
    size_t used = 0;
    buf_init(&b);
    buf_puts(&b, "keep");
    assert_int_equal(mpack_to_json(&b, in, n, &used), want);
    assert_string_equal(b.data, "keep");
    buf_free(&b);
}

static void test_to_json_scalars(void **state)
{
    (void)state;
    check_to_json(BYTES(0x93, 0xc0, 0xc2, 0xc3), "[null,false,true]");
    check_to_json(BYTES(0xcf, 0x00, 0x20, 0, 0, 0, 0, 0, 0x01), "9007199254740992");
    check_to_json(BYTES(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
                  "18446744073709552000");
    check_to_json(BYTES(0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0), "-9223372036854776000");
    check_to_json(BYTES(0xd3, 0xff, 0xe0, 0, 0, 0, 0, 0, 0), "-9007199254740992");
    check_to_json(BYTES(0xca, 0x3d, 0xcc, 0xcc, 0xcd), "0.10000000149011612");
    check_to_json(BYTES(0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0), "null");
    check_to_json(BYTES(0xcb, 0x80, 0, 0, 0, 0, 0, 0, 0), "0");
    check_to_json(BYTES(0xa5, 'a', '"', '\n', 0xc3, 0xa9), "\"a\\\"\\n\xc3\xa9\"");
    check_to_json(BYTES(0xa3, 0xff, 'A', 0xe2), "\"\xef\xbf\xbd"
                                                "A\xef\xbf\xbd\"");
    check_to_json(BYTES(0xd4, 0x00, 0x00), "null");
    check_to_json(BYTES(0x93, 0x01, 0xd4, 0x00, 0x00, 0x02), "[1,null,2]");
}

static void test_to_json_dates(void **state)
{
    (void)state;
    /* notepack.encode(new Date(...)) for each form, and Date#toJSON of the decoded value. */
    check_to_json(BYTES(0xd7, 0xff, 0xa1, 0xa5, 0xd6, 0x00, 0x65, 0x93, 0x7d, 0x25),
                  "\"2024-01-02T03:04:05.678Z\"");
    check_to_json(BYTES(0xd6, 0xff, 0x65, 0x93, 0x7d, 0x25), "\"2024-01-02T03:04:05.000Z\"");
    check_to_json(BYTES(0xc7, 0x0c, 0xff, 0x3b, 0x8b, 0x87, 0xc0, 0xff, 0xff, 0xff, 0xff, 0xff,
                        0xff, 0xff, 0xff),
                  "\"1969-12-31T23:59:59.999Z\"");
    check_to_json(BYTES(0xc7, 0x0c, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x3a, 0xff, 0xf4, 0x41, 0x80),
                  "\"+010000-01-01T00:00:00.000Z\"");
    check_to_json(BYTES(0xc7, 0x0c, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0),
                  "\"1833-11-24T17:31:44.000Z\"");
    check_to_json(BYTES(0xc7, 0x0c, 0xff, 0, 0, 0, 0, 0, 0, 0x0f, 0x00, 0xff, 0xff, 0xff, 0xff),
                  "null");
    check_to_json(BYTES(0xd7, 0xff, 0xff, 0xff, 0xff, 0xfc, 0xff, 0xff, 0xff, 0xff),
                  "\"2106-02-07T06:28:16.073Z\"");
    check_to_json(BYTES(0xd7, 0x00, 0, 0, 0, 0, 0, 0, 0x03, 0xe8), "\"1970-01-01T00:00:01.000Z\"");
    check_to_json(
        BYTES(0xc7, 0x0c, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xf1, 0x84, 0xaa, 0x50, 0x80),
        "\"-000001-01-01T00:00:00.000Z\"");
    check_to_json_err(BYTES(0xc7, 0x08, 0xff, 0, 0, 0, 0, 0, 0, 0, 0), -EPROTO);
}

static void test_to_json_maps(void **state)
{
    (void)state;
    /* Integer keys become strings; index keys sort first; duplicates: first place, last value. */
    check_to_json(
        BYTES(0x85, 0xa1, 'b', 0x01, 0x0a, 0x02, 0xa1, 'a', 0x03, 0xa1, 'b', 0x04, 0xff, 0x05),
        "{\"10\":2,\"b\":4,\"a\":3,\"-1\":5}");
    /* An undefined value omits the key, a later defined one brings it back at its first place. */
    check_to_json(BYTES(0x84, 0xa1, 'a', 0xd4, 0x00, 0x00, 0xa1, 'b', 0x01, 0xa1, 'a', 0x02, 0xa1,
                        'c', 0xd4, 0x00, 0x00),
                  "{\"a\":2,\"b\":1}");
    /* "__proto__": object/null values set the prototype, primitives are ignored... */
    check_to_json(BYTES(0x83, 0xa9, '_', '_', 'p', 'r', 'o', 't', 'o', '_', '_', 0x05, 0xa1, 'a',
                        0x01, 0xa9, '_', '_', 'p', 'r', 'o', 't', 'o', '_', '_', 0x80),
                  "{\"a\":1}");
    /* ...and after a null prototype they are plain own properties. */
    check_to_json(BYTES(0x83, 0xa9, '_', '_', 'p', 'r', 'o', 't', 'o', '_', '_', 0xc0, 0xa1, 'a',
                        0x01, 0xa9, '_', '_', 'p', 'r', 'o', 't', 'o', '_', '_', 0x80),
                  "{\"a\":1,\"__proto__\":{}}");
    /* A Date prototype makes JSON.stringify throw in Node... */
    check_to_json_err(BYTES(0x82, 0xa9, '_', '_', 'p', 'r', 'o', 't', 'o', '_', '_', 0xd6, 0xff, 0,
                            0, 0, 0, 0xa1, 'a', 0x01),
                      -EPROTO);
    /* ...unless an own toJSON shadows it. */
    check_to_json(BYTES(0x82, 0xa9, '_', '_', 'p', 'r', 'o', 't', 'o', '_', '_', 0xd6, 0xff, 0, 0,
                        0, 0, 0xa6, 't', 'o', 'J', 'S', 'O', 'N', 0x01),
                  "{\"toJSON\":1}");
    check_to_json(BYTES(0x80), "{}");
    check_to_json(BYTES(0x81, 0xa0, 0xa0), "{\"\":\"\"}");
    check_to_json_err(BYTES(0x81, 0xc0, 0x01), -EPROTO);
    check_to_json_err(BYTES(0x81, 0x90, 0x01), -EPROTO);
    check_to_json_err(BYTES(0x81, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0x01), -EPROTO);
}

static void test_to_json_rejects(void **state)
{
    (void)state;
    check_to_json_err(BYTES(0x91, 0xc4, 0x03, 0x01, 0x02, 0x03), -ENOTSUP);
    check_to_json_err(BYTES(0xd5, 0x05, 0x01, 0x02), -ENOTSUP);
    check_to_json_err(BYTES(0xc7, 0x01, 0x00, 0x00), -ENOTSUP);
    check_to_json_err(BYTES(0xc1), -EPROTO);
    check_to_json_err(BYTES(0x92, 0x01), -EPROTO);
    check_to_json_err(BYTES(0x81, 0xa1, 'a'), -EPROTO);
    check_to_json_err(BYTES(0xdd, 0xff, 0xff, 0xff, 0xff, 0x01), -EPROTO);

    /* Trailing bytes are left for the caller: *used says where the value ended. */
    buf_t b;
    size_t used;
    buf_init(&b);
    assert_int_equal(mpack_to_json(&b, BYTES(0x01, 0x02), &used), 0);
    assert_int_equal(used, 1);
    buf_free(&b);
}

static void test_to_json_depth(void **state)
{
    (void)state;
    uint8_t in[MPACK_MAX_DEPTH + 2];
    memset(in, 0x91, sizeof in);
    in[MPACK_MAX_DEPTH] = 0x01;
    buf_t b;
    size_t used;
    buf_init(&b);
    assert_int_equal(mpack_to_json(&b, in, MPACK_MAX_DEPTH + 1, &used), 0);
    assert_int_equal(b.len, 2 * MPACK_MAX_DEPTH + 1);
    buf_reset(&b);
    in[MPACK_MAX_DEPTH] = 0x91;
    in[MPACK_MAX_DEPTH + 1] = 0x01;
    assert_int_equal(mpack_to_json(&b, in, sizeof in, &used), -EPROTO);
    assert_int_equal(b.len, 0);
    /* Maps nest the same way; deep "__proto__" chains are bounded too. */
    uint8_t maps[12 * (MPACK_MAX_DEPTH + 1) + 1];
    size_t n = 0;
    for (int i = 0; i <= MPACK_MAX_DEPTH; i++) {
        memcpy(maps + n, "\x81\xa9__proto__", 11);
        n += 11;
    }
    maps[n++] = 0x80;
    assert_int_equal(mpack_to_json(&b, maps, n, &used), -EPROTO);
    buf_free(&b);
}

static void test_to_json_prefixes(void **state)
{
    (void)state;
    /* Every strict prefix of a valid value fails without touching bytes past its end. */
    const uint8_t full[] = {0x84, 0xa1, 'a',  0x92, 0xcd, 0x01, 0x00, 0xcb, 0x3f, 0xf8,
                            0,    0,    0,    0,    0,    0,    0x03, 0xa2, 'h',  'i',
                            0xa1, 'd',  0xd7, 0xff, 0xa1, 0xa5, 0xd6, 0x00, 0x65, 0x93,
                            0x7d, 0x25, 0xa1, 'u',  0xd4, 0x00, 0x00};
    buf_t b;
    size_t used;
    buf_init(&b);
    assert_int_equal(mpack_to_json(&b, full, sizeof full, &used), 0);
    assert_string_equal(b.data,
                        "{\"3\":\"hi\",\"a\":[256,1.5],\"d\":\"2024-01-02T03:04:05.678Z\"}");
    for (size_t n = 0; n < sizeof full; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, full, n);
        buf_reset(&b);
        assert_int_equal(mpack_to_json(&b, copy, n, &used), -EPROTO);
        assert_int_equal(b.len, 0);
        free(copy);
    }
    buf_free(&b);
}

static void test_round_trip(void **state)
{
    (void)state;
    /* JSON.stringify(notepack.decode(notepack.encode(JSON.parse(x)))) normalises like JS. */
    const char *in =
        "{ \"z\":[1.50, 2E3, -0.0, \"\\u0041\\/\"], \"1\":{}, \"z\":null, \"e\":1e-7 }";
    buf_t m, j;
    size_t used;
    buf_init(&m);
    buf_init(&j);
    assert_int_equal(mpack_from_json(&m, in, strlen(in)), 0);
    assert_int_equal(mpack_to_json(&j, (const uint8_t *)m.data, m.len, &used), 0);
    assert_int_equal(used, m.len);
    assert_string_equal(j.data, "{\"1\":{},\"z\":null,\"e\":1e-7}");
    buf_free(&m);
    buf_free(&j);
}

static void test_fuzz_no_crash(void **state)
{
    (void)state;
    /* Mutations of a valid message: every outcome is a result code, never a crash or a leak. */
    const uint8_t seed[] = {0x93, 0xa6, 'f',  'Y',  '_',  's',  'j',  'B',  0x83, 0xa4, 't',
                            'y',  'p',  'e',  0x02, 0xa4, 'd',  'a',  't',  'a',  0x92, 0xa1,
                            'x',  0x82, 0xa2, 'i',  'd',  0x01, 0x0a, 0xd6, 0xff, 0,    0,
                            0,    1,    0xa3, 'n',  's',  'p',  0xa1, '/',  0x80};
    uint8_t buf[sizeof seed];
    uint32_t x = 12345;
    buf_t b;
    buf_init(&b);
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(buf, seed, sizeof seed);
        for (int k = 0; k < 3; k++) {
            x = x * 1103515245 + 12345;
            buf[(x >> 8) % sizeof seed] = (uint8_t)(x >> 20);
        }
        size_t used;
        buf_reset(&b);
        int rc = mpack_to_json(&b, buf, sizeof seed, &used);
        assert_true(rc == 0 || rc == -EPROTO || rc == -ENOTSUP);
        mpack_reader_t r;
        mpack_reader_init(&r, buf, sizeof seed);
        rc = mpack_skip(&r);
        assert_true(rc == 0 || rc == -EPROTO);
    }
    buf_free(&b);
}

static void test_write_str_utf8(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_int_equal(mpack_write_str_utf8(&b, "ok", 2), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "\xa2ok", 3);
    buf_reset(&b);
    /* "a\xff" decodes to "a\uFFFD": 4 bytes, and the header says so */
    assert_int_equal(mpack_write_str_utf8(&b, "a\xff", 2), 0);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "\xa4" "a\xef\xbf\xbd", 5);
    buf_reset(&b);
    char big[40];
    memset(big, 0xff, sizeof(big)); /* 40 invalid bytes: 120 bytes, a str 8 */
    assert_int_equal(mpack_write_str_utf8(&b, big, sizeof(big)), 0);
    assert_int_equal(b.len, 2 + 120);
    assert_int_equal((uint8_t)b.data[0], 0xd9);
    assert_int_equal((uint8_t)b.data[1], 120);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_str_utf8),
        cmocka_unit_test(test_write_ints),       cmocka_unit_test(test_write_double),
        cmocka_unit_test(test_write_containers), cmocka_unit_test(test_read_all_types),
        cmocka_unit_test(test_read_rejects),     cmocka_unit_test(test_skip),
        cmocka_unit_test(test_from_json),        cmocka_unit_test(test_from_json_large),
        cmocka_unit_test(test_to_json_scalars),  cmocka_unit_test(test_to_json_dates),
        cmocka_unit_test(test_to_json_maps),     cmocka_unit_test(test_to_json_rejects),
        cmocka_unit_test(test_to_json_depth),    cmocka_unit_test(test_to_json_prefixes),
        cmocka_unit_test(test_round_trip),       cmocka_unit_test(test_fuzz_no_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
