/* Unit tests for master/discovery/pools: sizing, MAX_POOLS overflow, priority pools, balance,
 * sweep. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "master/discovery/pools.h"

static int add(pools_t *p, const char *name, bool prio, uint64_t cycle, uint32_t *pool,
               uint32_t *slot)
{
    return pools_add(p, name, strlen(name), prio, cycle, pool, slot);
}

static void test_pools_fill_then_grow(void **state)
{
    (void)state;
    pools_t *p = pools_new(2, 3, 2);
    uint32_t pool, slot, seen[8];
    char name[16];
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        assert_int_equal(add(p, name, false, 1, &pool, &slot), 1);
        seen[i] = pool;
    }
    /* 2 per pool for the first 6, then the 3 pools grow instead of dropping streams */
    assert_int_equal(seen[0], seen[1]);
    assert_int_not_equal(seen[1], seen[2]);
    assert_int_equal(seen[2], seen[3]);
    assert_true(seen[6] < 3 && seen[7] < 3);
    assert_int_equal(pools_count(p), 3);
    assert_int_equal(pools_streams(p), 8);
    assert_int_equal(add(p, "s0", false, 2, &pool, &slot), 0); /* known */
    pools_free(p);
}

typedef struct counter {
    int per_slot[4];
    int calls;
} counter_t;

static void count_slot(uint32_t pool, uint32_t slot, const char *name, size_t len, void *arg)
{
    (void)pool;
    (void)name;
    (void)len;
    counter_t *c = arg;
    c->per_slot[slot]++;
    c->calls++;
}

static void test_pools_balance_slots(void **state)
{
    (void)state;
    pools_t *p = pools_new(1, 100, 2);
    uint32_t pool, slot;
    char name[16];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "k%d", i);
        add(p, name, false, 1, &pool, &slot);
    }
    counter_t c0 = {0}, c1 = {0};
    pools_foreach_in_slot(p, 0, count_slot, &c0);
    pools_foreach_in_slot(p, 1, count_slot, &c1);
    assert_int_equal(c0.per_slot[0], 5);
    assert_int_equal(c1.per_slot[1], 5);
    pools_free(p);
}

static void test_priority_streams_get_their_own_pools(void **state)
{
    (void)state;
    pools_t *p = pools_new(10, 10, 1);
    uint32_t vip, normal, slot;
    add(p, "vip", true, 1, &vip, &slot);
    add(p, "plain", false, 1, &normal, &slot);
    assert_int_not_equal(vip, normal);
    uint32_t vip2;
    add(p, "vip2", true, 1, &vip2, &slot);
    assert_int_equal(vip, vip2);
    pools_free(p);
}

static void test_sweep_forgets_unseen_streams(void **state)
{
    (void)state;
    pools_t *p = pools_new(10, 10, 1);
    uint32_t pool, slot;
    add(p, "a", false, 1, &pool, &slot);
    add(p, "b", false, 1, &pool, &slot);
    add(p, "a", false, 2, &pool, &slot); /* only a seen in pass 2 */
    counter_t c = {0};
    assert_int_equal(pools_sweep(p, 2, count_slot, &c), 1);
    assert_int_equal(c.calls, 1);
    assert_int_equal(pools_streams(p), 1);
    /* the freed place is reused by the next stream */
    assert_int_equal(add(p, "c", false, 3, &pool, &slot), 1);
    assert_int_equal(pools_count(p), 1);
    pools_free(p);
}

static void test_count_by_slot_skips_empty_pools(void **state)
{
    (void)state;
    pools_t *p = pools_new(1, 10, 2);
    uint32_t pool, slot, by_slot[3] = {7, 7, 7};
    add(p, "a", false, 1, &pool, &slot); /* slot 0 */
    add(p, "b", false, 1, &pool, &slot); /* slot 1 */
    add(p, "c", false, 1, &pool, &slot); /* slot 0 */
    pools_count_by_slot(p, by_slot, 3);
    assert_int_equal(by_slot[0], 2);
    assert_int_equal(by_slot[1], 1);
    assert_int_equal(by_slot[2], 0);
    add(p, "a", false, 2, &pool, &slot);
    add(p, "c", false, 2, &pool, &slot);
    counter_t c = {0};
    assert_int_equal(pools_sweep(p, 2, count_slot, &c), 1); /* b's pool empties */
    pools_count_by_slot(p, by_slot, 2);
    assert_int_equal(by_slot[0], 2);
    assert_int_equal(by_slot[1], 0);
    pools_free(p);
}

static void count_in_slot(uint32_t pool, uint32_t slot, const char *name, size_t len, void *arg)
{
    (void)pool;
    (void)slot;
    (void)name;
    (void)len;
    (*(size_t *)arg)++;
}

static size_t in_slot(const pools_t *p, uint32_t slot)
{
    size_t n = 0;
    pools_foreach_in_slot(p, slot, count_in_slot, &n);
    return n;
}

static void test_resize_moves_pools_of_removed_slots(void **state)
{
    (void)state;
    pools_t *p = pools_new(1, 8, 3);
    uint32_t pool, slot;
    char name[16];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        assert_int_equal(add(p, name, false, 1, &pool, &slot), 1);
    }
    assert_int_equal(in_slot(p, 0), 2);
    assert_int_equal(in_slot(p, 2), 2);
    assert_int_equal(pools_resize(p, 0), -EINVAL);
    /* shrinking: slot 2's pools go to the remaining slots, no stream is lost or duplicated */
    assert_int_equal(pools_resize(p, 2), 0);
    assert_int_equal(in_slot(p, 2), 0);
    assert_int_equal(in_slot(p, 0) + in_slot(p, 1), 6);
    assert_int_equal(in_slot(p, 0), 3);
    assert_int_equal(pools_streams(p), 6);
    /* a known stream keeps its pool, now on its new slot */
    assert_int_equal(add(p, "s2", false, 2, &pool, &slot), 0);
    /* growing: existing pools stay, new pools go to the new, least loaded slots */
    assert_int_equal(pools_resize(p, 4), 0);
    assert_int_equal(add(p, "n1", false, 2, &pool, &slot), 1);
    assert_true(slot >= 2);
    assert_int_equal(in_slot(p, 0) + in_slot(p, 1), 6);
    pools_free(p);
}

static void test_set_limits_applies_to_new_streams(void **state)
{
    (void)state;
    pools_t *p = pools_new(2, 1, 1);
    uint32_t pool, slot;
    assert_int_equal(add(p, "a", false, 1, &pool, &slot), 1);
    assert_int_equal(add(p, "b", false, 1, &pool, &slot), 1);
    assert_int_equal(add(p, "c", false, 1, &pool, &slot), 1);
    assert_int_equal(pools_count(p), 1); /* MAX_POOLS=1: the pool grows */
    assert_int_equal(pools_set_limits(p, 0, 4), -EINVAL);
    assert_int_equal(pools_set_limits(p, 1, 4), 0);
    assert_int_equal(add(p, "d", false, 1, &pool, &slot), 1);
    assert_int_equal(add(p, "e", false, 1, &pool, &slot), 1);
    assert_int_equal(pools_count(p), 3); /* one stream per new pool now */
    /* lowering MAX_POOLS below what exists keeps every pool and stream */
    assert_int_equal(pools_set_limits(p, 1, 1), 0);
    assert_int_equal(add(p, "f", false, 1, &pool, &slot), 1);
    assert_int_equal(pools_count(p), 3);
    assert_int_equal(pools_streams(p), 6);
    pools_free(p);
}

static void test_remove_forgets_one_stream_and_frees_its_place(void **state)
{
    (void)state;
    pools_t *p = pools_new(2, 4, 2);
    uint32_t pool, slot, apool, aslot;
    assert_int_equal(add(p, "a", false, 1, &apool, &aslot), 1);
    assert_int_equal(add(p, "b", false, 1, &pool, &slot), 1);
    /* found where it was put (key events are forwarded there) until it is removed */
    assert_int_equal(pools_find(p, "a", 1, &pool, &slot), 1);
    assert_int_equal(pool, apool);
    assert_int_equal(slot, aslot);
    assert_int_equal(pools_find(p, "zz", 2, &pool, &slot), 0);
    assert_int_equal(pools_remove(p, "a", 1, &pool, &slot), 1);
    assert_int_equal(pool, apool);
    assert_int_equal(slot, aslot);
    assert_int_equal(pools_remove(p, "a", 1, &pool, &slot), 0); /* already gone */
    assert_int_equal(pools_find(p, "a", 1, &pool, &slot), 0);
    assert_int_equal(pools_remove(p, "zz", 2, &pool, &slot), 0);
    assert_int_equal(pools_streams(p), 1);
    assert_int_equal(pools_count(p), 1);
    /* a removed stream is not swept again, and coming back makes it new */
    counter_t c = {{0}, 0};
    assert_int_equal(pools_sweep(p, 2, count_slot, &c), 1); /* only "b" */
    assert_int_equal(c.calls, 1);
    assert_int_equal(pools_count(p), 0);
    assert_int_equal(add(p, "a", false, 2, &pool, &slot), 1);
    assert_int_equal(pools_count(p), 1);
    pools_free(p);
}

static void test_pools_foreach_visits_every_stream(void **state)
{
    (void)state;
    pools_t *p = pools_new(2, 10, 3);
    uint32_t pool, slot;
    char name[16];
    for (int i = 0; i < 9; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        assert_int_equal(add(p, name, i == 0, 1, &pool, &slot), 1);
    }
    counter_t c = {0};
    pools_foreach(p, count_slot, &c);
    assert_int_equal(c.calls, 9);
    counter_t per = {0};
    for (uint32_t s = 0; s < 3; s++)
        pools_foreach_in_slot(p, s, count_slot, &per);
    assert_memory_equal(c.per_slot, per.per_slot, sizeof(c.per_slot));
    pools_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pools_foreach_visits_every_stream),
        cmocka_unit_test(test_pools_fill_then_grow),
        cmocka_unit_test(test_pools_balance_slots),
        cmocka_unit_test(test_priority_streams_get_their_own_pools),
        cmocka_unit_test(test_sweep_forgets_unseen_streams),
        cmocka_unit_test(test_count_by_slot_skips_empty_pools),
        cmocka_unit_test(test_resize_moves_pools_of_removed_slots),
        cmocka_unit_test(test_set_limits_applies_to_new_streams),
        cmocka_unit_test(test_remove_forgets_one_stream_and_frees_its_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
