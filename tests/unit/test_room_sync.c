/*
 * Unit tests for worker/cluster/room_sync: how the workers of a server learn each other's rooms
 * for the sharded relay holder, with recorders for what is sent and applied: the announcement at
 * start, a sibling's HELLO answered with the full list, notices applied per slot, a respawned
 * sibling's predecessor forgotten, a crashed one forgotten at the tick, and when the union counts
 * as complete.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "worker/cluster/room_sync.h"

#define N 3

typedef struct rec {
    buf_t sent;    /* "<kind><room> " per notice sent */
    buf_t applied; /* "<slot><+|-><room> " per room change, "<slot>x " per forget */
    bool live[N];
    const char *own[4];
} rec_t;

static void r_send(void *arg, char kind, const char *room, size_t len)
{
    rec_t *r = arg;
    buf_printf(&r->sent, "%c%.*s ", kind, (int)len, room);
}

static void r_own(void *arg, void (*fn)(const char *room, size_t len, void *fnarg), void *fnarg)
{
    rec_t *r = arg;
    for (size_t i = 0; i < 4 && r->own[i]; i++)
        fn(r->own[i], strlen(r->own[i]), fnarg);
}

static void r_room(void *arg, uint32_t slot, const char *room, size_t len, bool on)
{
    rec_t *r = arg;
    buf_printf(&r->applied, "%u%c%.*s ", slot, on ? '+' : '-', (int)len, room);
}

static void r_forget(void *arg, uint32_t slot)
{
    rec_t *r = arg;
    buf_printf(&r->applied, "%ux ", slot);
}

static bool r_live(void *arg, uint32_t slot)
{
    return ((rec_t *)arg)->live[slot];
}

static room_sync_t *start(rec_t *r, uint32_t me)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->sent);
    buf_init(&r->applied);
    for (int i = 0; i < N; i++)
        r->live[i] = true;
    room_sync_io_t io = {r_send, r_own, r_room, r_forget, r_live, r};
    return room_sync_new(N, me, &io);
}

static const char *take(buf_t *b)
{
    static char out[256];
    snprintf(out, sizeof(out), "%.*s", (int)b->len, b->data ? b->data : "");
    buf_reset(b);
    return out;
}

static void notice(room_sync_t *s, uint32_t from, char kind, const char *room)
{
    room_sync_notice(s, from, kind, room, strlen(room));
}

static void finish(room_sync_t *s, rec_t *r)
{
    room_sync_free(s);
    buf_free(&r->sent);
    buf_free(&r->applied);
}

/* A worker that starts says HELLO with its (empty) list; it knows the union once every live
 * sibling has sent its list, and its own rooms go to the union under its slot and to the others. */
static void test_start_and_own_rooms(void **state)
{
    (void)state;
    rec_t r;
    room_sync_t *s = start(&r, 1);
    room_sync_start(s);
    assert_string_equal(take(&r.sent), "! = ");
    assert_false(room_sync_complete(s));
    notice(s, 0, ROOM_SYNC_ADD, "a");
    notice(s, 0, ROOM_SYNC_DONE, "");
    assert_false(room_sync_complete(s)); /* slot 2 has not answered */
    notice(s, 2, ROOM_SYNC_DONE, "");
    assert_true(room_sync_complete(s));
    assert_string_equal(take(&r.applied), "0+a ");
    room_sync_own(s, "mine", 4, true);
    room_sync_own(s, "mine", 4, false);
    assert_string_equal(take(&r.applied), "1+mine 1-mine ");
    assert_string_equal(take(&r.sent), "+mine -mine ");
    notice(s, 1, ROOM_SYNC_ADD, "echo"); /* its own slot: ignored */
    notice(s, 7, ROOM_SYNC_ADD, "far");  /* no such slot */
    notice(s, 0, 'z', "what");           /* unknown kind */
    assert_string_equal(take(&r.applied), "");
    finish(s, &r);
}

/* A sibling restarted in a slot: what its predecessor held is forgotten, and it is told this
 * worker's rooms; the union is not complete again until its own list arrives. */
static void test_sibling_hello(void **state)
{
    (void)state;
    rec_t r;
    room_sync_t *s = start(&r, 0);
    r.own[0] = "x";
    r.own[1] = "y";
    notice(s, 1, ROOM_SYNC_DONE, "");
    notice(s, 2, ROOM_SYNC_ADD, "old");
    notice(s, 2, ROOM_SYNC_DONE, "");
    assert_true(room_sync_complete(s));
    take(&r.applied);
    notice(s, 2, ROOM_SYNC_HELLO, "#");
    assert_string_equal(take(&r.applied), "2x ");
    assert_string_equal(take(&r.sent), "+x +y = ");
    assert_false(room_sync_complete(s));
    notice(s, 2, ROOM_SYNC_DONE, "#");
    assert_true(room_sync_complete(s));
    finish(s, &r);
}

/* A sibling that is gone is forgotten once, at the tick that sees its slot empty; a slot that
 * stays empty does not hold completeness back, and one that comes back must send its list. */
static void test_crashed_sibling(void **state)
{
    (void)state;
    rec_t r;
    room_sync_t *s = start(&r, 0);
    notice(s, 1, ROOM_SYNC_DONE, "");
    notice(s, 2, ROOM_SYNC_ADD, "r");
    notice(s, 2, ROOM_SYNC_DONE, "");
    room_sync_tick(s);
    take(&r.applied);
    r.live[2] = false;
    room_sync_tick(s);
    room_sync_tick(s);
    assert_string_equal(take(&r.applied), "2x ");
    assert_true(room_sync_complete(s));
    r.live[2] = true; /* respawned, its HELLO not read yet */
    room_sync_tick(s);
    assert_false(room_sync_complete(s));
    notice(s, 2, ROOM_SYNC_HELLO, "#");
    notice(s, 2, ROOM_SYNC_DONE, "#");
    assert_true(room_sync_complete(s));
    finish(s, &r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_and_own_rooms),
        cmocka_unit_test(test_sibling_hello),
        cmocka_unit_test(test_crashed_sibling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
