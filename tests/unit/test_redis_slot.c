/* Unit tests for common/redis/redis_slot: CRC16 and key slots against values from Redis itself
 * (CLUSTER KEYSLOT on redis-server 7.0), hash tags included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/redis/redis_slot.h"

static unsigned slot_of(const char *k)
{
    return redis_slot(k, strlen(k));
}

static void test_crc16_reference_value(void **state)
{
    (void)state;
    /* the check value of CRC-16/XMODEM, also in Redis' crc16.c */
    assert_int_equal(redis_crc16("123456789", 9), 0x31C3);
    assert_int_equal(redis_crc16("", 0), 0);
}

static void test_slots_match_redis(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        unsigned slot;
    } v[] = {
        {"123456789", 12739},    {"foo", 12182},          {"bar", 5061},
        {"hello", 866},          {"somekey", 11058},      {"foo{}{bar}", 8363},
        {"foo{{bar}}zap", 4015}, {"foo{bar}{zap}", 5061}, {"{}", 15257},
        {"a{b", 13340},          {"}{x}", 16287},         {"", 0},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        assert_int_equal(slot_of(v[i].key), v[i].slot);
}

static void test_hash_tags_group_keys(void **state)
{
    (void)state;
    assert_int_equal(slot_of("{user1000}.following"), 3443);
    assert_int_equal(slot_of("{user1000}.followers"), 3443);
    /* only the first tag counts, and a tag is what hashes */
    assert_int_equal(slot_of("{bar}anything"), slot_of("bar"));
    assert_int_equal(slot_of("x{bar}{zap}"), slot_of("bar"));
}

static void test_binary_keys(void **state)
{
    (void)state;
    const char k[] = {'a', '\0', '{', 'b', '}'};
    assert_int_equal(redis_slot(k, sizeof(k)), slot_of("b"));
    for (unsigned i = 0; i < 256; i++) {
        char c = (char)i;
        assert_true(redis_slot(&c, 1) < REDIS_SLOTS);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16_reference_value),
        cmocka_unit_test(test_slots_match_redis),
        cmocka_unit_test(test_hash_tags_group_keys),
        cmocka_unit_test(test_binary_keys),
    };
    return cmocka_run_group_tests_name("redis_slot", tests, NULL, NULL);
}
