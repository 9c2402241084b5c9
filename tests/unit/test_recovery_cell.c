/* Unit tests for worker/recovery/recovery_cell: a cell written as a session runs (rooms, sends)
 * turns into the record recovery_decode reads; a room's last id is repaired from the log; rooms
 * that do not fit, a rewrite cut short, a garbled area and another session's pid leave the cell
 * unrecoverable. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/recovery_seen.h"
#include "worker/recovery/recovery_cell.h"

#define ID(m, s) ((stream_id_t){(m), (s)})
#define SID "sid00000000000000001"
#define PID "pid00000000000000001"

/* A cell as a session's start leaves it, over what a previous session left (sid NULL: the
 * session has no id yet). */
static recovery_cell_t *cell_new(const char *sid)
{
    recovery_cell_t *c = malloc(SHM_SESSIONS_CELL_BYTES);
    memset(c, 0x5A, SHM_SESSIONS_CELL_BYTES);
    recovery_cell_init(c, PID, 20);
    if (sid)
        recovery_cell_set_sid(c, sid, 20);
    return c;
}

/* ... in one room, "a" (tag 1), with nothing sent */
static recovery_cell_t *cell_in_room_a(const char *sid)
{
    recovery_cell_t *c = cell_new(sid);
    recovery_cell_room_add(c, "a", 1, 1, ID(1, 0), ID(1, 0));
    recovery_cell_rooms_end(c);
    return c;
}

/* The cell's record, read back: its rooms in *s, its log in *log. */
static void read_back(const recovery_cell_t *c, rooms_seen_t *s, recovery_log_t *log)
{
    buf_t b;
    buf_init(&b);
    assert_int_equal(recovery_cell_encode(c, PID, 20, &b), 0);
    const char *sid;
    size_t sid_len;
    memset(s, 0, sizeof(*s));
    assert_int_equal(recovery_decode(b.data, b.len, &sid, &sid_len, log, on_room, s), 0);
    assert_int_equal(sid_len, 20);
    assert_memory_equal(sid, SID, 20);
    buf_free(&b);
}

static void test_a_running_session_round_trips(void **state)
{
    (void)state;
    recovery_cell_t *c = cell_new(SID);
    recovery_cell_rooms_begin(c);
    uint32_t ha = recovery_cell_room_add(c, "chat.a", 6, 1, ID(10, 0), ID(10, 0));
    uint32_t hb = recovery_cell_room_add(c, "chat.bb", 7, 2, ID(11, 0), ID(11, 0));
    recovery_cell_rooms_end(c);
    assert_true(ha > 0 && hb > 0 && ha != hb);
    recovery_log_add(&c->log, 1, ID(20, 0), ID(10, 0));
    recovery_cell_set_last(c, ha, ID(20, 0));
    recovery_log_add(&c->log, 2, ID(21, 0), ID(11, 0));
    recovery_cell_set_last(c, hb, ID(21, 0));
    rooms_seen_t s;
    recovery_log_t log;
    read_back(c, &s, &log);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.names[0], "chat.a");
    assert_string_equal(s.names[1], "chat.bb");
    assert_int_equal(s.tags[1], 2);
    assert_int_equal(s.first[0].ms, 10);
    assert_int_equal(s.last[0].ms, 20);
    assert_int_equal(s.last[1].ms, 21);
    assert_int_equal(log.count, 2);
    assert_int_equal(log.e[1].id.ms, 21);
    free(c);
}

/* Killed between logging a send and storing the room's last id: the log wins. */
static void test_last_id_repaired_from_the_log(void **state)
{
    (void)state;
    recovery_cell_t *c = cell_new(SID);
    uint32_t h = recovery_cell_room_add(c, "r", 1, 5, ID(1, 0), ID(1, 0));
    recovery_cell_rooms_end(c);
    recovery_log_add(&c->log, 5, ID(7, 3), ID(1, 0)); /* no set_last */
    (void)h;
    rooms_seen_t s;
    recovery_log_t log;
    read_back(c, &s, &log);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.last[0].ms, 7);
    assert_int_equal(s.last[0].seq, 3);
    free(c);
}

static void test_a_rewrite_drops_a_left_room(void **state)
{
    (void)state;
    recovery_cell_t *c = cell_new(SID);
    recovery_cell_room_add(c, "a", 1, 1, ID(1, 0), ID(1, 0));
    recovery_cell_room_add(c, "b", 1, 2, ID(1, 0), ID(1, 0));
    recovery_cell_rooms_end(c);
    recovery_cell_rooms_begin(c);
    buf_t b;
    buf_init(&b);
    assert_int_equal(recovery_cell_encode(c, PID, 20, &b), -EPROTO); /* cut short here: not valid */
    uint32_t h = recovery_cell_room_add(c, "b", 1, 2, ID(1, 0), ID(1, 0));
    recovery_cell_rooms_end(c);
    recovery_cell_set_last(c, h, ID(9, 0));
    buf_free(&b);
    rooms_seen_t s;
    recovery_log_t log;
    read_back(c, &s, &log);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.names[0], "b");
    assert_int_equal(s.last[0].ms, 9);
    free(c);
}

static void test_rooms_that_do_not_fit(void **state)
{
    (void)state;
    recovery_cell_t *c = cell_new(SID);
    char name[512];
    memset(name, 'x', sizeof(name));
    recovery_cell_rooms_begin(c);
    size_t added = 0;
    while (recovery_cell_room_add(c, name, sizeof(name), (uint32_t)added + 1, ID(1, 0), ID(1, 0)))
        added++;
    recovery_cell_rooms_end(c);
    assert_true(added > 4);
    buf_t b;
    buf_init(&b);
    assert_int_equal(recovery_cell_encode(c, PID, 20, &b), -EPROTO);
    /* a later rewrite that fits makes it whole again */
    recovery_cell_rooms_begin(c);
    assert_true(recovery_cell_room_add(c, "a", 1, 1, ID(1, 0), ID(1, 0)) > 0);
    recovery_cell_rooms_end(c);
    assert_int_equal(recovery_cell_encode(c, PID, 20, &b), 0);
    buf_free(&b);
    free(c);
}

static void test_garbled_cells_are_refused(void **state)
{
    (void)state;
    recovery_cell_t *c = cell_in_room_a(SID);
    buf_t b;
    buf_init(&b);
    uint32_t *len = (uint32_t *)(c->rooms + 4);
    *len = 1u << 30; /* a name longer than the area */
    assert_int_equal(recovery_cell_encode(c, PID, 20, &b), -EPROTO);
    *len = 1;
    c->used = SHM_SESSIONS_CELL_BYTES; /* beyond the area */
    assert_int_equal(recovery_cell_encode(c, PID, 20, &b), -EPROTO);
    recovery_cell_t *none = cell_in_room_a(NULL); /* no sid yet */
    assert_int_equal(recovery_cell_encode(none, PID, 20, &b), -EPROTO);
    recovery_cell_set_sid(none, SID, 20);
    assert_int_equal(recovery_cell_encode(none, PID, 20, &b), 0);
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    buf_free(&b);
    free(none);
    free(c);
}

/* A cell reused for a new session and killed before its init ended still holds the old one: it
 * is never given to the new session's pid. */
static void test_another_sessions_cell_is_refused(void **state)
{
    (void)state;
    recovery_cell_t *c = cell_in_room_a(SID);
    buf_t b;
    buf_init(&b);
    assert_int_equal(recovery_cell_encode(c, "pid00000000000000002", 20, &b), -EPROTO);
    assert_int_equal(recovery_cell_encode(c, PID, 19, &b), -EPROTO);
    assert_int_equal(recovery_cell_encode(c, PID, 0, &b), -EPROTO);
    assert_int_equal(b.len, 0);
    assert_int_equal(recovery_cell_encode(c, PID, 20, &b), 0);
    buf_free(&b);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_running_session_round_trips),
        cmocka_unit_test(test_last_id_repaired_from_the_log),
        cmocka_unit_test(test_a_rewrite_drops_a_left_room),
        cmocka_unit_test(test_rooms_that_do_not_fit),
        cmocka_unit_test(test_garbled_cells_are_refused),
        cmocka_unit_test(test_another_sessions_cell_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
