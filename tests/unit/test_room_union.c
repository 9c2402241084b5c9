/*
 * Unit tests for worker/cluster/room_union: the union of the rooms of a server's workers, which
 * the sharded relay holder subscribes to: a room enters with its first holder and leaves with its
 * last, a slot that is gone takes only its own rooms along, confirmations are counted.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "worker/cluster/room_union.h"

static int set(room_union_t *u, uint32_t slot, const char *room, bool on)
{
    return room_union_set(u, slot, room, strlen(room), on);
}

static void count(const char *room, size_t len, void *arg)
{
    (void)room;
    (void)len;
    (*(int *)arg)++;
}

static void test_first_and_last_holder(void **state)
{
    (void)state;
    room_union_t *u = room_union_new();
    assert_int_equal(set(u, 0, "a", true), 1); /* the union gains it: subscribe */
    assert_int_equal(set(u, 3, "a", true), 0);
    assert_int_equal(set(u, 3, "a", true), 0);  /* repeated: no change */
    assert_int_equal(set(u, 0, "a", false), 0); /* slot 3 still holds it */
    assert_true(room_union_has(u, "a", 1));
    assert_int_equal(set(u, 0, "a", false), 0); /* not slot 0's any more */
    assert_int_equal(set(u, 3, "a", false), 1); /* the last holder: unsubscribe */
    assert_false(room_union_has(u, "a", 1));
    assert_int_equal(set(u, 5, "never", false), 0);
    assert_int_equal(set(u, ROOM_UNION_SLOTS, "a", true), -EINVAL);
    assert_int_equal(room_union_set(u, 1, "", 0, true), -EINVAL);
    assert_int_equal(set(u, ROOM_UNION_SLOTS - 1, "high", true), 1); /* the last word's bit */
    assert_int_equal(set(u, 64, "high", true), 0);
    assert_int_equal(set(u, ROOM_UNION_SLOTS - 1, "high", false), 0);
    assert_int_equal(set(u, 64, "high", false), 1);
    assert_int_equal(room_union_size(u), 0);
    room_union_free(u);
    room_union_free(NULL);
}

typedef struct lost {
    int n;
    char last[32];
} lost_t;

static void on_lost(const char *room, size_t len, void *arg)
{
    lost_t *l = arg;
    l->n++;
    snprintf(l->last, sizeof(l->last), "%.*s", (int)len, room);
}

/* A crashed worker's rooms leave the union, except those another worker also holds. */
static void test_forget_slot(void **state)
{
    (void)state;
    room_union_t *u = room_union_new();
    set(u, 1, "shared", true);
    set(u, 2, "shared", true);
    set(u, 1, "only1", true);
    set(u, 2, "only2", true);
    lost_t l = {0};
    room_union_forget(u, 1, on_lost, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.last, "only1");
    assert_true(room_union_has(u, "shared", 6));
    assert_true(room_union_has(u, "only2", 5));
    assert_int_equal(room_union_size(u), 2);
    room_union_forget(u, 1, on_lost, &l); /* nothing left of it */
    assert_int_equal(l.n, 1);
    int n = 0;
    room_union_each(u, count, &n);
    assert_int_equal(n, 2);
    room_union_forget(u, 2, NULL, NULL);
    assert_int_equal(room_union_size(u), 0);
    room_union_free(u);
}

/* The holder's subscription is up only once every room of the union is confirmed. */
static void test_confirmations(void **state)
{
    (void)state;
    room_union_t *u = room_union_new();
    set(u, 0, "a", true);
    set(u, 1, "b", true);
    assert_int_equal(room_union_unconfirmed(u), 2);
    room_union_confirm(u, "a", 1, true);
    room_union_confirm(u, "a", 1, true);   /* twice: counted once */
    room_union_confirm(u, "zzz", 3, true); /* not in the union */
    assert_int_equal(room_union_unconfirmed(u), 1);
    room_union_confirm(u, "b", 1, true);
    assert_int_equal(room_union_unconfirmed(u), 0);
    set(u, 2, "c", true); /* a new room is not confirmed yet */
    assert_int_equal(room_union_unconfirmed(u), 1);
    set(u, 2, "c", false); /* gone before its confirmation */
    assert_int_equal(room_union_unconfirmed(u), 0);
    room_union_confirm(u, "b", 1, false); /* its connection was lost */
    assert_int_equal(room_union_unconfirmed(u), 1);
    room_union_forget(u, 1, NULL, NULL);
    assert_int_equal(room_union_unconfirmed(u), 0);
    room_union_unconfirm_all(u); /* subscribed again */
    assert_int_equal(room_union_unconfirmed(u), 1);
    room_union_free(u);
}

/* A slot's rooms in doubt (a notice of its was lost): those named again stay, the others leave
 * that slot at the sweep, and the union loses only those no other slot holds. */
static void test_doubt_and_sweep(void **state)
{
    (void)state;
    room_union_t *u = room_union_new();
    set(u, 2, "kept", true);
    set(u, 2, "deleted", true);
    set(u, 2, "shared", true);
    set(u, 1, "shared", true);
    room_union_doubt(u, 2);
    set(u, 1, "shared", true); /* another slot naming it: still in doubt for slot 2 */
    set(u, 2, "kept", true);   /* named again (its list) */
    int lost = 0;
    room_union_sweep(u, 2, count, &lost);
    assert_int_equal(lost, 1); /* "deleted"; "shared" stays with slot 1 */
    assert_true(room_union_has(u, "kept", 4));
    assert_false(room_union_has(u, "deleted", 7));
    assert_int_equal(set(u, 1, "shared", false), 1); /* slot 2 let go of it */
    /* a second sweep without a doubt before it: nothing */
    room_union_sweep(u, 2, count, &lost);
    assert_int_equal(lost, 1);
    assert_true(room_union_has(u, "kept", 4));
    room_union_free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_and_last_holder),
        cmocka_unit_test(test_doubt_and_sweep),
        cmocka_unit_test(test_forget_slot),
        cmocka_unit_test(test_confirmations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
