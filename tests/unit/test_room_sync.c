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
    buf_t sent;        /* "<kind><room> " per notice sent ("?<slot> " for an ASK, "=<rooms in the
                        * list> " for a DONE) */
    uint64_t next_seq; /* the number the next notice sent must carry */
    buf_t applied;     /* "<slot><+|-><room> " per room change, "<slot>x " per forget, "<slot>? "
                        * when its rooms are put in doubt, "<slot>! " when those left go */
    bool live[N];
    const char *own[4];
} rec_t;

static void r_send(void *arg, char kind, uint64_t seq, const char *room, size_t len)
{
    rec_t *r = arg;
    assert_int_equal(seq, r->next_seq); /* numbered one by one */
    r->next_seq++;
    uint32_t slot;
    if (kind == ROOM_SYNC_ASK && len == sizeof(slot)) {
        memcpy(&slot, room, sizeof(slot));
        buf_printf(&r->sent, "?%u ", slot);
        return;
    }
    uint64_t first;
    if (kind == ROOM_SYNC_DONE && len == sizeof(first)) {
        memcpy(&first, room, sizeof(first));
        buf_printf(&r->sent, "=%d ", (int)(seq - first)); /* the rooms in the list */
        return;
    }
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

static void r_doubt(void *arg, uint32_t slot, bool sweep)
{
    rec_t *r = arg;
    buf_printf(&r->applied, "%u%c ", slot, sweep ? '!' : '?');
}

static bool r_live(void *arg, uint32_t slot)
{
    return ((rec_t *)arg)->live[slot];
}

/* Each sibling numbers its notices from its own base; notice() sends the next number. */
static uint64_t seqs[N];

static room_sync_t *start(rec_t *r, uint32_t me)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->sent);
    buf_init(&r->applied);
    for (int i = 0; i < N; i++)
        r->live[i] = true;
    room_sync_io_t io = {r_send, r_own, r_room, r_forget, r_doubt, r_live, r};
    for (int i = 0; i < N; i++)
        seqs[i] = 1000 * (uint64_t)(i + 1);
    r->next_seq = 500;
    return room_sync_new(N, me, 500, &io);
}

static void notice_n(room_sync_t *s, uint32_t from, char kind, uint64_t seq, const char *room,
                     uint64_t now)
{
    room_sync_notice(s, from, kind, seq, room, strlen(room), now);
    if (from < N)
        seqs[from] = seq + 1;
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
    notice_n(s, from, kind, from < N ? seqs[from] : 1, room, 0);
}

/* Sibling `from` ends a list of `rooms` rooms, its notices just before: DONE numbered `seq`. */
static void done_n(room_sync_t *s, uint32_t from, uint64_t seq, unsigned rooms, uint64_t now)
{
    uint64_t first = seq - rooms;
    room_sync_notice(s, from, ROOM_SYNC_DONE, seq, (const char *)&first, sizeof(first), now);
    seqs[from] = seq + 1;
}

static void done(room_sync_t *s, uint32_t from, unsigned rooms)
{
    done_n(s, from, seqs[from], rooms, 0);
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
    assert_string_equal(take(&r.sent), "! =0 ");
    assert_false(room_sync_complete(s));
    notice(s, 0, ROOM_SYNC_ADD, "a");
    done(s, 0, 1);
    assert_false(room_sync_complete(s)); /* slot 2 has not answered */
    done(s, 2, 0);
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
    done(s, 1, 0);
    notice(s, 2, ROOM_SYNC_ADD, "old");
    done(s, 2, 1);
    assert_true(room_sync_complete(s));
    take(&r.applied);
    notice(s, 2, ROOM_SYNC_HELLO, "#");
    assert_string_equal(take(&r.applied), "2x ");
    assert_string_equal(take(&r.sent), "+x +y =2 ");
    assert_false(room_sync_complete(s));
    done(s, 2, 0);
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
    done(s, 1, 0);
    notice(s, 2, ROOM_SYNC_ADD, "r");
    done(s, 2, 1);
    room_sync_tick(s, 0);
    take(&r.applied);
    r.live[2] = false;
    room_sync_tick(s, 0);
    room_sync_tick(s, 0);
    assert_string_equal(take(&r.applied), "2x ");
    assert_true(room_sync_complete(s));
    r.live[2] = true; /* respawned, its HELLO not read yet */
    room_sync_tick(s, 0);
    assert_false(room_sync_complete(s));
    notice(s, 2, ROOM_SYNC_HELLO, "#");
    done(s, 2, 0);
    assert_true(room_sync_complete(s));
    finish(s, &r);
}

/* A sibling whose list does not come (its answer to the HELLO was lost, or the HELLO itself) is
 * asked again every ROOM_SYNC_RETRY_MS until it comes: the union completes, and a new relay
 * holder takes over, instead of waiting for good. */
static void test_a_list_that_does_not_come_is_asked_again(void **state)
{
    (void)state;
    rec_t r;
    room_sync_t *s = start(&r, 1);
    r.own[0] = "m";
    room_sync_start(s);
    take(&r.sent);
    done(s, 0, 0);
    room_sync_tick(s, 10000); /* slot 2's list is on its way, or lost */
    room_sync_tick(s, 10999);
    assert_string_equal(take(&r.sent), "");
    room_sync_tick(s, 11000);
    assert_string_equal(take(&r.sent), "?2 ");
    room_sync_tick(s, 11500);
    assert_string_equal(take(&r.sent), "");
    room_sync_tick(s, 12000); /* lost again: asked again */
    assert_string_equal(take(&r.sent), "?2 ");
    assert_false(room_sync_complete(s));
    notice(s, 2, ROOM_SYNC_ADD, "z");
    done(s, 2, 1);
    assert_true(room_sync_complete(s));
    assert_string_equal(take(&r.applied), "2+z ");
    room_sync_tick(s, 20000);
    assert_string_equal(take(&r.sent), ". "); /* no ASK: only the quiet period's BEAT */
    /* an ASK naming this worker is answered with its list; one naming another is not */
    uint32_t me = 1, other = 2;
    room_sync_notice(s, 0, ROOM_SYNC_ASK, seqs[0]++, (const char *)&other, sizeof(other), 20001);
    assert_string_equal(take(&r.sent), "");
    room_sync_notice(s, 0, ROOM_SYNC_ASK, seqs[0]++, (const char *)&me, sizeof(me), 20002);
    assert_string_equal(take(&r.sent), "+m =1 ");
    assert_true(room_sync_complete(s));
    finish(s, &r);
}

/* A notice lost in between (a gap in the sender's numbers) makes that sibling's list unknown: it
 * is asked for once, and a DONE after the gap does not complete it; the list sent again does. */
static void test_a_gap_in_the_numbers_asks_for_the_list(void **state)
{
    (void)state;
    rec_t r;
    room_sync_t *s = start(&r, 0);
    done_n(s, 1, 70, 0, 0);
    notice_n(s, 2, ROOM_SYNC_ADD, 90, "a", 0);
    done_n(s, 2, 91, 1, 0);
    assert_true(room_sync_complete(s));
    take(&r.applied);
    notice_n(s, 2, ROOM_SYNC_ADD, 93, "c", 5000); /* 92 ("+b") was lost */
    assert_false(room_sync_complete(s));
    assert_string_equal(take(&r.sent), "?2 ");
    notice_n(s, 2, ROOM_SYNC_ADD, 95, "d", 5001); /* lost again: asked already */
    done_n(s, 2, 96, 4, 5002);                    /* a list begun at 92 */
    assert_string_equal(take(&r.sent), "");
    assert_false(room_sync_complete(s)); /* that DONE came after a gap */
    notice(s, 2, ROOM_SYNC_ADD, "a");    /* its answer to the ASK */
    notice(s, 2, ROOM_SYNC_ADD, "b");
    notice(s, 2, ROOM_SYNC_ADD, "c");
    notice(s, 2, ROOM_SYNC_ADD, "d");
    done(s, 2, 4);
    assert_true(room_sync_complete(s));
    /* its rooms in doubt at each gap, and those not named again let go once the list came */
    assert_string_equal(take(&r.applied), "2? 2+c 2? 2+d 2+a 2+b 2+c 2+d 2! ");
    /* a successor in slot 2 whose HELLO was lost: its numbers do not continue its predecessor's */
    notice_n(s, 2, ROOM_SYNC_ADD, 7000, "new", 9000);
    assert_false(room_sync_complete(s));
    assert_string_equal(take(&r.sent), "?2 ");
    finish(s, &r);
}

/* A lost DEL: seen at the sender's next notice (a gap), its rooms are put in doubt, and the list
 * it sends again lets go of the room it deleted (the holder unsubscribes it); a whole list with
 * no gap before it sweeps nothing. */
static void test_a_lost_del_is_swept(void **state)
{
    (void)state;
    rec_t r;
    room_sync_t *s = start(&r, 0);
    done_n(s, 2, 100, 0, 0);
    notice(s, 2, ROOM_SYNC_ADD, "a");
    notice(s, 2, ROOM_SYNC_ADD, "b");
    done(s, 1, 0);
    assert_true(room_sync_complete(s));
    notice(s, 2, ROOM_SYNC_ASK, "");
    done(s, 2, 0); /* a list of nothing, but no gap: no sweep */
    assert_string_equal(take(&r.applied), "2+a 2+b ");
    seqs[2]++; /* "-b" lost */
    notice_n(s, 2, ROOM_SYNC_BEAT, seqs[2], "", 5000);
    assert_string_equal(take(&r.sent), "?2 ");
    notice(s, 2, ROOM_SYNC_ADD, "a");
    done(s, 2, 1);
    assert_true(room_sync_complete(s));
    assert_string_equal(take(&r.applied), "2? 2+a 2! ");
    finish(s, &r);
}

/* A worker that sent no notice for a period sends a BEAT with its next number, so a sibling
 * sees a lost last notice (here its last ADD) within two periods, and asks for its list. */
static void test_a_quiet_worker_beats(void **state)
{
    (void)state;
    rec_t r;
    room_sync_t *s = start(&r, 0);
    room_sync_start(s);
    done(s, 1, 0);
    done(s, 2, 0);
    take(&r.sent);
    room_sync_tick(s, 5000); /* its list went out in this period */
    room_sync_own(s, "r", 1, true);
    room_sync_tick(s, 5999);
    assert_string_equal(take(&r.sent), "+r ");
    room_sync_tick(s, 6000); /* the ADD went out in this period too */
    assert_string_equal(take(&r.sent), "");
    room_sync_tick(s, 7000);
    assert_string_equal(take(&r.sent), ". ");
    room_sync_tick(s, 8000);
    assert_string_equal(take(&r.sent), ". ");
    /* slot 1's last ADD was lost: its BEAT shows the gap */
    notice(s, 1, ROOM_SYNC_ADD, "x");
    seqs[1]++; /* "+y" never arrived */
    assert_true(room_sync_complete(s));
    notice_n(s, 1, ROOM_SYNC_BEAT, seqs[1], "", 8100);
    assert_false(room_sync_complete(s));
    assert_string_equal(take(&r.sent), "?1 ");
    finish(s, &r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_and_own_rooms),
        cmocka_unit_test(test_sibling_hello),
        cmocka_unit_test(test_crashed_sibling),
        cmocka_unit_test(test_a_list_that_does_not_come_is_asked_again),
        cmocka_unit_test(test_a_gap_in_the_numbers_asks_for_the_list),
        cmocka_unit_test(test_a_lost_del_is_swept),
        cmocka_unit_test(test_a_quiet_worker_beats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
