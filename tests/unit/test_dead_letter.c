/*
 * Unit tests for common/proto/dead_letter: the XADD of a dead letter (exact argv), reading it
 * back, the JSON of `streamioctl dead-letter list` (truncation, invalid UTF-8), the replay XADD,
 * and entries that are not dead letters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "common/proto/dead_letter.h"

#define F(n, v) {n, sizeof(n) - 1, v, sizeof(v) - 1}

static void join(const char **argv, const size_t *lens, size_t argc, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < argc; i++) {
        o += (size_t)snprintf(out + o, cap - o, "%s%.*s", i ? " " : "", (int)lens[i], argv[i]);
        assert_true(o < cap);
    }
}

static void test_xadd_and_back(void **state)
{
    (void)state;
    payload_field_t fields[] = {F("event", "user.message"), F("data", "{\"a\":1}")};
    dead_letter_t d = {"chat.1", 6, "1700000000000-0", 15, DEAD_LETTER_POISON, 11, 0, 1700000001234,
                       fields, 2};
    d.bytes = dead_letter_entry_bytes(fields, 2);
    assert_int_equal(d.bytes, 5 + 12 + 4 + 7);
    size_t argc = dead_letter_argc(2);
    assert_int_equal(argc, 19);
    const char *argv[19];
    size_t lens[19];
    buf_t scratch;
    buf_init(&scratch);
    dead_letter_xadd("streamio:dead", 13, &d, &scratch, argv, lens);
    char line[512];
    join(argv, lens, argc, line, sizeof(line));
    assert_string_equal(line, "XADD streamio:dead * stream chat.1 id 1700000000000-0 reason poison "
                              "deliveries 11 bytes 28 ts 1700000001234 field:event user.message "
                              "field:data {\"a\":1}");
    /* read back as pairs (argv[3..]) */
    payload_field_t pairs[8], got[8];
    size_t np = 0;
    for (size_t i = 3; i + 1 < argc; i += 2)
        pairs[np++] = (payload_field_t){argv[i], lens[i], argv[i + 1], lens[i + 1]};
    dead_letter_t back;
    assert_int_equal(dead_letter_decode(pairs, np, &back, got), 0);
    assert_int_equal(back.reason, DEAD_LETTER_POISON);
    assert_int_equal(back.deliveries, 11);
    assert_int_equal(back.bytes, 28);
    assert_int_equal(back.ts_ms, 1700000001234ull);
    assert_int_equal(back.nfields, 2);
    assert_memory_equal(back.fields[1].name, "data", 4);
    assert_memory_equal(back.fields[1].value, "{\"a\":1}", 7);
    /* replay: the original fields, in order, to the original stream */
    const char *rv[7];
    size_t rl[7];
    assert_int_equal(dead_letter_replay_argc(2), 7);
    dead_letter_replay(&back, rv, rl);
    join(rv, rl, 7, line, sizeof(line));
    assert_string_equal(line, "XADD chat.1 * event user.message data {\"a\":1}");
    /* list JSON */
    buf_t j;
    buf_init(&j);
    dead_letter_json(&j, "1-1", 3, &back, 1024);
    assert_string_equal(j.data, "{\"id\":\"1-1\",\"stream\":\"chat.1\",\"entryId\":\"1700000000000-0\","
                                "\"reason\":\"poison\",\"deliveries\":11,\"bytes\":28,"
                                "\"ts\":1700000001234,\"fields\":{\"event\":\"user.message\","
                                "\"data\":\"{\\\"a\\\":1}\"}}");
    assert_int_equal(json_validate(j.data, j.len), 0);
    buf_free(&j);
    buf_free(&scratch);
}

static void test_binary_fields_and_truncation(void **state)
{
    (void)state;
    payload_field_t fields[] = {{"b\0n", 3, "\xff\x00z", 3}, F("big", "0123456789")};
    dead_letter_t d = {"s", 1, "1-0", 3, DEAD_LETTER_OVERSIZED, 0, 16, 5, fields, 2};
    const char *argv[19];
    size_t lens[19];
    buf_t scratch, j;
    buf_init(&scratch);
    buf_init(&j);
    dead_letter_xadd("dl", 2, &d, &scratch, argv, lens);
    assert_int_equal(lens[15], 9);
    assert_memory_equal(argv[15], "field:b\0n", 9);
    assert_memory_equal(argv[16], "\xff\x00z", 3);
    assert_memory_equal(argv[8], "oversized", 9);
    dead_letter_json(&j, "9-9", 3, &d, 4);
    assert_string_equal(j.data, "{\"id\":\"9-9\",\"stream\":\"s\",\"entryId\":\"1-0\",\"reason\":"
                                "\"oversized\",\"deliveries\":0,\"bytes\":16,\"ts\":5,\"fields\":{"
                                "\"b\\u0000n\":\"\xef\xbf\xbd\\u0000z\",\"big\":\"0123\"},"
                                "\"truncated\":true}");
    assert_int_equal(json_validate(j.data, j.len), 0);
    buf_free(&j);
    buf_free(&scratch);
}

static int decode(payload_field_t *pairs, size_t n)
{
    dead_letter_t d;
    payload_field_t f[8];
    return dead_letter_decode(pairs, n, &d, f);
}

static void test_not_dead_letters(void **state)
{
    (void)state;
    payload_field_t ok[] = {F("stream", "s"), F("id", "1-0"), F("reason", "oversized")};
    assert_int_equal(decode(ok, 3), 0);
    assert_int_equal(decode(ok, 2), -EINVAL); /* no reason */
    payload_field_t a[] = {F("stream", "s"), F("id", "1-0"), F("reason", "other")};
    assert_int_equal(decode(a, 3), -EINVAL);
    payload_field_t b[] = {F("stream", "s"), F("id", "1-0"), F("reason", "poison"),
                           F("deliveries", "x1")};
    assert_int_equal(decode(b, 4), -EINVAL);
    payload_field_t c[] = {F("stream", "s"), F("id", "1-0"), F("reason", "poison"),
                           F("event", "e")};
    assert_int_equal(decode(c, 4), -EINVAL); /* an unprefixed field: someone else's entry */
    payload_field_t d[] = {F("stream", "s"), F("id", "1-0"), F("reason", "poison"),
                           F("ts", "99999999999999999999")};
    assert_int_equal(decode(d, 4), -EINVAL);
    payload_field_t e[] = {F("id", "1-0"), F("reason", "poison"), F("field:", "v")};
    assert_int_equal(decode(e, 3), -EINVAL);
}

/* deliveries, bytes and ts: 1 to 19 digits, leading zeros allowed, nothing else */
static void test_numbers(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t value;
    } ok[] = {{"0", 0},
              {"007", 7},
              {"1234", 1234},
              {"9999999999999999999", 9999999999999999999ULL},
              {"0000000000000000001", 1}};
    static const char *const bad[] = {"",
                                      "-1",
                                      "+1",
                                      " 1",
                                      "1 ",
                                      "1.0",
                                      "0x1",
                                      "12a",
                                      "10000000000000000000",
                                      "00000000000000000001"};
    static const char *const names[] = {"deliveries", "bytes", "ts"};
    for (size_t n = 0; n < 3; n++) {
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
            payload_field_t p[] = {F("stream", "s"),
                                   F("id", "1-0"),
                                   F("reason", "poison"),
                                   {names[n], strlen(names[n]), ok[i].text, strlen(ok[i].text)}};
            dead_letter_t d;
            payload_field_t f[8];
            assert_int_equal(dead_letter_decode(p, 4, &d, f), 0);
            uint64_t got = n == 0 ? d.deliveries : n == 1 ? d.bytes : d.ts_ms;
            assert_true(got == ok[i].value);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            payload_field_t p[] = {F("stream", "s"),
                                   F("id", "1-0"),
                                   F("reason", "poison"),
                                   {names[n], strlen(names[n]), bad[i], strlen(bad[i])}};
            assert_int_equal(decode(p, 4), -EINVAL);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xadd_and_back),
        cmocka_unit_test(test_binary_fields_and_truncation),
        cmocka_unit_test(test_not_dead_letters),
        cmocka_unit_test(test_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
