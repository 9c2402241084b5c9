/*
 * Unit tests for worker/cluster/relay_role: which worker holds the broadcast subscription and
 * relays, against an array of slot states: start, a crash, a rolling replacement (drain), a
 * respawn below the holder, a whole server draining.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "worker/cluster/relay_role.h"

#define N 4

static void view(uint32_t i, relay_slot_t *out, void *arg)
{
    *out = ((const relay_slot_t *)arg)[i];
}

static bool sub(relay_slot_t *s, uint32_t me)
{
    return relay_role_subscribe(N, me, view, s);
}

/* The lowest live slot holding the whole role, or -1. */
static int64_t holder(relay_slot_t *s)
{
    for (uint32_t i = 0; i < N; i++)
        if (s[i].live && s[i].up)
            return i;
    return -1;
}

/* Every worker applies its decision; a subscribing worker's subscription comes up. */
static void settle(relay_slot_t *s)
{
    for (int round = 0; round < 3; round++)
        for (uint32_t i = 0; i < N; i++)
            if (s[i].live)
                s[i].up = sub(s, i);
}

static void test_start_and_crash(void **state)
{
    (void)state;
    relay_slot_t s[N] = {{true, false, false, false}, {true, false, false, false}, {0}, {0}};
    assert_int_equal(holder(s), -1);
    assert_true(sub(s, 0));
    assert_false(sub(s, 1)); /* one subscriber per server */
    settle(s);
    assert_int_equal(holder(s), 0);
    assert_false(s[1].up);
    /* slot 0 crashed (the master cleared its pid): slot 1 takes over */
    s[0] = (relay_slot_t){0};
    assert_int_equal(holder(s), -1);
    assert_true(sub(s, 1));
    settle(s);
    assert_int_equal(holder(s), 1);
    /* its replacement starts in slot 0: it subscribes; slot 1 keeps relaying until it is up */
    s[0] = (relay_slot_t){true, false, false, false};
    assert_true(sub(s, 0));
    assert_true(sub(s, 1)); /* nobody else is up yet */
    assert_int_equal(holder(s), 1);
    s[0].up = true;
    assert_int_equal(holder(s), 0); /* the lowest relays: never two at once */
    /* a holder keeps its subscription until relay_cut lets it go (at its successor's marker) */
    assert_true(sub(s, 1));
    s[1].up = false;
    assert_false(sub(s, 1));
    settle(s);
    assert_int_equal(holder(s), 0);
    assert_false(s[1].up);
}

static void test_drain_hands_over_without_gap(void **state)
{
    (void)state;
    relay_slot_t s[N] = {{true, false, false, false}, {true, false, false, false}, {0}, {0}};
    settle(s);
    assert_int_equal(holder(s), 0);
    /* SIGHUP: slot 0 drains, its replacement starts in slot 2 */
    s[0].draining = true;
    s[2] = (relay_slot_t){true, false, false, false};
    assert_true(sub(s, 0)); /* still the only one up: keeps relaying */
    assert_true(sub(s, 1)); /* the new candidate */
    assert_false(sub(s, 2));
    assert_true(relay_role_candidate(N, 1, view, s));
    assert_false(relay_role_candidate(N, 0, view, s));
    s[1].holds = true; /* its marker is on its way */
    assert_true(sub(s, 0));
    s[1].up = true;
    assert_int_equal(holder(s), 0); /* until slot 0 lets go */
    assert_true(sub(s, 0));         /* ... at that marker (relay_cut) */
    relay_others_t o;
    relay_role_others(N, 1, view, s, &o);
    assert_true(o.all && o.any && o.successor); /* slot 0 holds; slot 2 would take over */
    s[1].draining = true;
    relay_role_others(N, 0, view, s, &o);
    assert_true(o.successor); /* slot 2 */
    s[1].draining = false;
    s[0].up = false;
    assert_false(sub(s, 0));
    relay_role_others(N, 1, view, s, &o);
    assert_false(o.all || o.any);
    assert_int_equal(holder(s), 1);
    settle(s);
    assert_int_equal(holder(s), 1);
    assert_false(s[2].up);
}

static void test_whole_server_draining(void **state)
{
    (void)state;
    relay_slot_t s[N] = {{true, false, false, false}, {true, false, false, false}, {0}, {0}};
    settle(s);
    s[0].draining = s[1].draining = true;
    assert_true(sub(s, 0)); /* nobody to hand over to: the holder stays */
    assert_false(sub(s, 1));
    settle(s);
    assert_int_equal(holder(s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_and_crash),
        cmocka_unit_test(test_drain_hands_over_without_gap),
        cmocka_unit_test(test_whole_server_draining),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
