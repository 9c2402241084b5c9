/* Unit tests for worker/payload: the seed MessageProcessor.processMessage output, byte for byte. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/mpack.h"
#include "common/proto/payload.h"

#define F(n, v)                                                                                    \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }

static void check_payload(const char *stream, const char *id, const payload_field_t *f, size_t n,
                          const char *want)
{
    buf_t b;
    buf_init(&b);
    payload_build(&b, stream, strlen(stream), id, strlen(id), f, n);
    if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
        fail_msg("got  %s\nwant %s", b.data, want);
    buf_free(&b);
}

static void test_seed_example(void **state)
{
    (void)state;
    const payload_field_t f[] = {F("event", "user.message"),
                                 F("data", "{\"user_id\": 123, \"message\": \"Hello\"}")};
    check_payload("chat.user.123", "1727524800000-0", f, 2,
                  "{\"from\":\"service\",\"message\":{\"event\":\"user.message\",\"data\":{"
                  "\"user_id\":123,\"message\":\"Hello\"}},\"roomId\":\"chat.user.123\","
                  "\"event\":\"user.message\",\"messageId\":\"1727524800000-0\"}");
}

static void check_data(const char *data, size_t len, const char *want_data)
{
    payload_field_t f[] = {F("event", "e"), {"data", 4, data, len}};
    char want[512];
    snprintf(want, sizeof want,
             "{\"from\":\"service\",\"message\":{\"event\":\"e\",\"data\":%s},\"roomId\":\"s\","
             "\"event\":\"e\",\"messageId\":\"1-0\"}",
             want_data);
    check_payload("s", "1-0", f, 2, want);
}

static void test_data_values(void **state)
{
    (void)state;
    /* JSON.parse failures stay strings. */
    check_data("hello", 5, "\"hello\"");
    check_data("", 0, "\"\"");
    check_data("{bad", 4, "\"{bad\"");
    check_data("{\"a\":1,}", 8, "\"{\\\"a\\\":1,}\"");
    check_data("NaN", 3, "\"NaN\"");
    check_data(" ", 1, "\" \"");
    /* Any JSON text is parsed: numbers, strings, literals, containers. */
    check_data("123", 3, "123");
    check_data(" -1.50e1 ", 9, "-1.50e1");
    check_data("\"x\"", 3, "\"x\"");
    check_data("null", 4, "null");
    check_data("true", 4, "true");
    check_data("[1, \"two\" ,{ }]", 15, "[1,\"two\",{}]");
    check_data("{ \"k\" : \"a b\\n\" }", 17, "{\"k\":\"a b\\n\"}");
    /* Invalid UTF-8 inside a JSON string is repaired, as ioredis decodes it before JSON.parse. */
    check_data("[\"\xff\"]", 5, "[\"\xef\xbf\xbd\"]");
    /* Outside strings it makes the text invalid JSON: a string then. */
    check_data("[1]\xff", 4, "\"[1]\xef\xbf\xbd\"");
}

static void test_no_event(void **state)
{
    (void)state;
    const payload_field_t f[] = {F("data", "7"), F("kind", "x")};
    check_payload(
        "room", "5-1", f, 2,
        "{\"from\":\"service\",\"message\":{\"data\":7,\"kind\":\"x\"},\"roomId\":\"room\","
        "\"messageId\":\"5-1\"}");
    check_payload(
        "room", "5-1", NULL, 0,
        "{\"from\":\"service\",\"message\":{},\"roomId\":\"room\",\"messageId\":\"5-1\"}");
}

static void test_js_object_semantics(void **state)
{
    (void)state;
    /* Duplicates keep the first position and the last value; index names sort first;
     * "__proto__" never becomes a property. */
    const payload_field_t f[] = {F("event", "a"),     F("data", "bad{"), F("2", "two"),
                                 F("__proto__", "p"), F("event", "b"),   F("data", "[1]"),
                                 F("10", "ten"),      F("01", "x")};
    check_payload(
        "s", "1-1", f, 8,
        "{\"from\":\"service\",\"message\":{\"2\":\"two\",\"10\":\"ten\",\"event\":\"b\","
        "\"data\":[1],\"01\":\"x\"},\"roomId\":\"s\",\"event\":\"b\",\"messageId\":\"1-1\"}");
}

static void test_escaping(void **state)
{
    (void)state;
    const payload_field_t f[] = {F("event", "q\"\\\n"), F("na\xffme", "v\x01\xe2\x82"),
                                 F("data", "\"\\u00e9\"")};
    check_payload(
        "st\xc3\xa9\xc0", "9-9", f, 3,
        "{\"from\":\"service\",\"message\":{\"event\":\"q\\\"\\\\\\n\",\"na\xef\xbf\xbdme\":"
        "\"v\\u0001\xef\xbf\xbd\",\"data\":\"\\u00e9\"},\"roomId\":\"st\xc3\xa9\xef\xbf\xbd\","
        "\"event\":\"q\\\"\\\\\\n\",\"messageId\":\"9-9\"}");
}

static void test_appends_and_many_fields(void **state)
{
    (void)state;
    /* More fields than the inline array; names f0..f99 with f0 repeated at the end. */
    enum { N = 101 };
    payload_field_t f[N];
    char names[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "f%d", i % 100);
        f[i] = (payload_field_t){names[i], strlen(names[i]), i == 100 ? "last" : "v",
                                 i == 100 ? 4 : 1};
    }
    buf_t b;
    buf_init(&b);
    buf_puts(&b, "42[\"room:message\",");
    payload_build(&b, "s", 1, "1-0", 3, f, N);
    const char *head =
        "42[\"room:message\",{\"from\":\"service\",\"message\":{\"f0\":\"last\",\"f1\":\"v\",";
    assert_memory_equal(b.data, head, strlen(head));
    assert_non_null(strstr(b.data, "\"f99\":\"v\"},\"roomId\":\"s\",\"messageId\":\"1-0\"}"));
    assert_null(strstr(b.data + strlen(head), "\"f0\""));
    /* Reuse without growth: same result after a reset. */
    size_t len = b.len, cap = b.cap;
    buf_reset(&b);
    buf_puts(&b, "42[\"room:message\",");
    payload_build(&b, "s", 1, "1-0", 3, f, N);
    assert_int_equal(b.len, len);
    assert_int_equal(b.cap, cap);
    buf_free(&b);
}

static void test_packet_with_and_without_offset(void **state)
{
    (void)state;
    payload_field_t f[] = {F("event", "tick"), F("data", "{\"n\":1}")};
    buf_t b;
    buf_init(&b);
    buf_puts(&b, "x");
    payload_packet(&b, "room", 4, "1700000000000-3", 15, f, 2, false);
    assert_string_equal(b.data, "x42[\"room:message\",{\"from\":\"service\",\"message\":"
                                "{\"event\":\"tick\",\"data\":{\"n\":1}},\"roomId\":\"room\","
                                "\"event\":\"tick\",\"messageId\":\"1700000000000-3\"}]");
    buf_reset(&b);
    payload_packet(&b, "room", 4, "1700000000000-3", 15, f, 2, true);
    assert_string_equal(b.data, "42[\"room:message\",{\"from\":\"service\",\"message\":"
                                "{\"event\":\"tick\",\"data\":{\"n\":1}},\"roomId\":\"room\","
                                "\"event\":\"tick\",\"messageId\":\"1700000000000-3\"},"
                                "\"1700000000000-3\"]");
    assert_memory_equal(b.data, PAYLOAD_PACKET_PREFIX, strlen(PAYLOAD_PACKET_PREFIX));
    buf_free(&b);
}

/* The msgpack built from the fields is what converting the packet's JSON would give. */
static void check_msgpack_matches_json(const char *stream, const char *id,
                                       const payload_field_t *f, size_t n)
{
    for (int offset = 0; offset < 2; offset++) {
        buf_t json, want, got;
        buf_init(&json);
        buf_init(&want);
        buf_init(&got);
        payload_packet_pair(&json, &got, stream, strlen(stream), id, strlen(id), f, n, offset);
        assert_int_equal(mpack_from_json(&want, json.data + 2, json.len - 2), 0);
        assert_int_equal(got.len, want.len);
        assert_memory_equal(got.data, want.data, want.len);
        buf_free(&json);
        buf_free(&want);
        buf_free(&got);
    }
}

static void test_msgpack_is_the_json_converted(void **state)
{
    (void)state;
    const payload_field_t seed[] = {F("event", "user.message"),
                                    F("data", "{\"user_id\": 123, \"message\": \"Hello\"}")};
    check_msgpack_matches_json("chat.user.123", "1727524800000-0", seed, 2);
    /* data: numbers notepack writes as ints or doubles, escapes, nesting, invalid JSON, bad UTF-8 */
    static const char *const data[] = {
        "[1, -1, 1.5, 1e400, -0, 4294967296, 18446744073709551616, true, null]",
        "{\"a\": {\"b\": [\"\\u00e9\\ud83d\\ude00\\ud800\", \"\\n\"]}, \"1\": 2, \"0\": 1}",
        "{\"k\": 1, \"k\": 2, \"__proto__\": 3}",
        "\"just a string\"",
        "{not json",
        "{\"s\": \"\xff\xfe bad \xc3\"}",
        "",
        "   ",
    };
    for (size_t i = 0; i < sizeof(data) / sizeof(data[0]); i++) {
        const payload_field_t f[] = {{"data", 4, data[i], strlen(data[i])},
                                     F("event", "e")};
        check_msgpack_matches_json("s", "1-0", f, 2);
    }
    /* names and values: repeats, array indices, __proto__, invalid UTF-8, no event, many fields */
    const payload_field_t odd[] = {
        F("b", "1"),           F("10", "ten"),       F("2", "two"),   F("b", "again"),
        F("__proto__", "x"),   F("n\xff" "ame", "v\xc0"), F("event", "\xe2\x82"), F("\"q\"", "\\"),
        F("data", "{\"x\":1}"), F("event", "last"),
    };
    check_msgpack_matches_json("room\xff", "9-9", odd, sizeof(odd) / sizeof(odd[0]));
    check_msgpack_matches_json("room", "1-1", odd, 3);
    check_msgpack_matches_json("room", "1-1", NULL, 0);
    payload_field_t many[PAYLOAD_INLINE_FIELDS + 6];
    char names[PAYLOAD_INLINE_FIELDS + 6][8];
    for (size_t i = 0; i < PAYLOAD_INLINE_FIELDS + 6; i++) {
        snprintf(names[i], sizeof(names[i]), "f%zu", i % 50);
        many[i] = (payload_field_t){names[i], strlen(names[i]), "v", 1};
    }
    check_msgpack_matches_json("room", "1-1", many, PAYLOAD_INLINE_FIELDS + 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_example),
        cmocka_unit_test(test_data_values),
        cmocka_unit_test(test_no_event),
        cmocka_unit_test(test_js_object_semantics),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_appends_and_many_fields),
        cmocka_unit_test(test_packet_with_and_without_offset),
        cmocka_unit_test(test_msgpack_is_the_json_converted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
