/* Unit tests for worker/recovery: stream ids, the send log and its resolution of a client's
 * offset per room, record bytes, bad records, keys, replay argv. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/recovery_seen.h"
#include "worker/recovery/recovery.h"

#define ID(m, s) ((stream_id_t){(m), (s)})

static void assert_id(stream_id_t got, uint64_t ms, uint64_t seq)
{
    assert_int_equal(got.ms, ms);
    assert_int_equal(got.seq, seq);
}

/* Field by field: the structs have padding. */
static void assert_sends_equal(const recovery_send_t *a, const recovery_send_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(a[i].tag, b[i].tag);
        assert_true(stream_id_cmp(a[i].id, b[i].id) == 0);
        assert_true(stream_id_cmp(a[i].prev, b[i].prev) == 0);
    }
}

/* Two rooms (tags 1 = A, 2 = B) whose ids do not arrive in id order across rooms. */
static void fill_two_rooms(recovery_log_t *l)
{
    memset(l, 0, sizeof(*l));
    recovery_log_add(l, 1, ID(100, 0), ID(50, 0));  /* 0: A 100 */
    recovery_log_add(l, 2, ID(90, 0), ID(40, 0));   /* 1: B 90 (older id, later send) */
    recovery_log_add(l, 1, ID(110, 0), ID(100, 0)); /* 2: A 110 */
    recovery_log_add(l, 2, ID(95, 0), ID(90, 0));   /* 3: B 95 */
    recovery_log_add(l, 2, ID(120, 0), ID(95, 0));  /* 4: B 120 */
}

static stream_id_t received(const recovery_log_t *l, uint32_t pos, uint32_t tag, stream_id_t first,
                            stream_id_t last)
{
    recovery_room_t r = {"r", 1, tag, first, last};
    return recovery_log_received(l, pos, &r);
}

static void test_log_resolves_each_room(void **state)
{
    (void)state;
    recovery_log_t l;
    fill_two_rooms(&l);
    uint32_t pos;
    /* the client's last was B 90 (send 1): A got 100, B got 90; A 110 and B 95, 120 are due */
    stream_id_t off = ID(90, 0);
    assert_int_equal(recovery_log_locate(&l, &off, &pos), 0);
    assert_int_equal(pos, 2);
    assert_id(received(&l, pos, 1, ID(50, 0), ID(110, 0)), 100, 0);
    assert_id(received(&l, pos, 2, ID(40, 0), ID(120, 0)), 90, 0);
    /* a room with no send after the offset: everything it was sent was received */
    off = ID(95, 0);
    assert_int_equal(recovery_log_locate(&l, &off, &pos), 0);
    assert_int_equal(pos, 4);
    assert_id(received(&l, pos, 1, ID(50, 0), ID(110, 0)), 110, 0);
    assert_id(received(&l, pos, 2, ID(40, 0), ID(120, 0)), 95, 0);
    /* everything received */
    off = ID(120, 0);
    assert_int_equal(recovery_log_locate(&l, &off, &pos), 0);
    assert_int_equal(pos, 5);
    assert_id(received(&l, pos, 2, ID(40, 0), ID(120, 0)), 120, 0);
    /* no offset: nothing received, each room from where it was joined */
    assert_int_equal(recovery_log_locate(&l, NULL, &pos), 0);
    assert_int_equal(pos, 0);
    assert_id(received(&l, pos, 1, ID(50, 0), ID(110, 0)), 50, 0);
    assert_id(received(&l, pos, 2, ID(40, 0), ID(120, 0)), 40, 0);
    /* a room never sent anything: where it was joined */
    off = ID(95, 0);
    assert_int_equal(recovery_log_locate(&l, &off, &pos), 0);
    assert_id(received(&l, pos, 3, ID(7, 0), ID(7, 0)), 7, 0);
    /* an offset never sent cannot be placed */
    off = ID(105, 0);
    assert_int_equal(recovery_log_locate(&l, &off, &pos), -ENOENT);
}

static void test_log_shared_id_takes_the_earliest_send(void **state)
{
    (void)state;
    recovery_log_t l = {0};
    recovery_log_add(&l, 1, ID(5, 0), ID(1, 0)); /* A 5-0 */
    recovery_log_add(&l, 2, ID(3, 0), ID(1, 0)); /* B 3-0 */
    recovery_log_add(&l, 2, ID(5, 0), ID(3, 0)); /* B 5-0: same id as A's */
    stream_id_t off = ID(5, 0);
    uint32_t pos;
    assert_int_equal(recovery_log_locate(&l, &off, &pos), 0);
    /* the client may have stopped at A's 5-0: B 3-0 is replayed (maybe a duplicate, never a skip)
     */
    assert_int_equal(pos, 1);
    assert_id(received(&l, pos, 2, ID(1, 0), ID(5, 0)), 1, 0);
}

static void test_log_wraps(void **state)
{
    (void)state;
    recovery_log_t l = {0};
    for (uint64_t i = 1; i <= RECOVERY_LOG_LEN + 6; i++)
        recovery_log_add(&l, (uint32_t)(i % 2 + 1), ID(i, 0), ID(i >= 2 ? i - 2 : 0, 0));
    assert_int_equal(l.count, RECOVERY_LOG_LEN + 6);
    uint32_t pos;
    stream_id_t off = ID(3, 0); /* overwritten */
    assert_int_equal(recovery_log_locate(&l, &off, &pos), -ENOENT);
    /* nothing received: the first sends are gone, the rooms' join points are not */
    assert_int_equal(recovery_log_locate(&l, NULL, &pos), 0);
    assert_int_equal(pos, 0);
    assert_id(received(&l, pos, 2, ID(0, 0), ID(69, 0)), 0, 0);
    off = ID(7, 0); /* the oldest kept send */
    assert_int_equal(recovery_log_locate(&l, &off, &pos), 0);
    assert_int_equal(pos, 7);
    assert_id(received(&l, pos, 2, ID(0, 0), ID(69, 0)), 7, 0); /* odd ids: tag 2 */
    assert_id(received(&l, pos, 1, ID(0, 0), ID(70, 0)), 6, 0);
    recovery_log_truncate(&l, pos);
    assert_int_equal(l.count, 7);
    off = ID(7, 0);
    assert_int_equal(recovery_log_locate(&l, &off, &pos), 0);
    off = ID(8, 0);
    assert_int_equal(recovery_log_locate(&l, &off, &pos), -ENOENT);
}

static void test_encode_exact_bytes_and_round_trip(void **state)
{
    (void)state;
    recovery_log_t l;
    fill_two_rooms(&l);
    buf_t b;
    buf_init(&b);
    recovery_room_t rooms[] = {{"chat.user.1", 11, 1, ID(50, 0), ID(110, 0)},
                               {"a,b:c", 5, 2, ID(40, 0), ID(120, 0)},
                               {"", 0, 3, ID(7, 1), ID(7, 1)}};
    assert_int_equal(recovery_encode(&b, "sid12", 5, &l, rooms, 3), 0);
    const char want[] = "2"
                        "5:sid12,"
                        "65:5;1,100-0,50-0;2,90-0,40-0;1,110-0,100-0;2,95-0,90-0;2,120-0,95-0,"
                        "24:1,50-0,110-0,chat.user.1,"
                        "18:2,40-0,120-0,a,b:c,"
                        "10:3,7-1,7-1,,";
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_memory_equal(b.data, want, b.len);
    const char *sid;
    size_t sid_len;
    recovery_log_t got;
    rooms_seen_t seen = {0};
    assert_int_equal(recovery_decode(b.data, b.len, &sid, &sid_len, &got, on_room, &seen), 0);
    assert_int_equal(sid_len, 5);
    assert_memory_equal(sid, "sid12", 5);
    assert_int_equal(got.count, 5);
    assert_sends_equal(got.e, l.e, 5);
    assert_int_equal(seen.n, 3);
    assert_string_equal(seen.names[0], "chat.user.1");
    assert_string_equal(seen.names[1], "a,b:c");
    assert_string_equal(seen.names[2], "");
    assert_int_equal(seen.tags[1], 2);
    assert_id(seen.first[0], 50, 0);
    assert_id(seen.last[0], 110, 0);
    assert_id(seen.last[2], 7, 1);
    buf_free(&b);
}

static void test_round_trip_of_a_wrapped_log(void **state)
{
    (void)state;
    recovery_log_t l = {0}, got;
    for (uint64_t i = 1; i <= 3 * RECOVERY_LOG_LEN + 5; i++)
        recovery_log_add(&l, (uint32_t)(i % 3), ID(1000 + i, i), ID(1000 + i - 3, i - 3));
    buf_t b;
    buf_init(&b);
    assert_int_equal(recovery_encode(&b, "s", 1, &l, NULL, 0), 0);
    const char *sid;
    size_t sid_len;
    assert_int_equal(recovery_decode(b.data, b.len, &sid, &sid_len, &got, NULL, NULL), 0);
    assert_int_equal(got.count, l.count);
    assert_sends_equal(got.e, l.e, RECOVERY_LOG_LEN);
    /* same answers from the decoded log */
    stream_id_t off = ID(1000 + 3 * RECOVERY_LOG_LEN, 3 * RECOVERY_LOG_LEN);
    uint32_t p1, p2;
    assert_int_equal(recovery_log_locate(&l, &off, &p1), 0);
    assert_int_equal(recovery_log_locate(&got, &off, &p2), 0);
    assert_int_equal(p1, p2);
    buf_free(&b);
}

static void test_encode_refuses_an_empty_sid(void **state)
{
    (void)state;
    recovery_log_t l = {0};
    buf_t b;
    buf_init(&b);
    assert_int_equal(recovery_encode(&b, "", 0, &l, NULL, 0), -EINVAL);
    assert_int_equal(recovery_encode(&b, "s", 1, &l, NULL, 0), 0); /* nothing sent yet */
    assert_memory_equal(b.data, "21:s,1:0,", 9);
    assert_int_equal(b.len, 9);
    buf_free(&b);
}

/* Builds `2` + sid + log + rooms with correct netstring lengths around the given texts. */
static void make_record(buf_t *out, const char *log, const char *room)
{
    buf_reset(out);
    buf_printf(out, "21:s,%zu:%s,", strlen(log), log);
    if (room)
        buf_printf(out, "%zu:%s,", strlen(room), room);
}

static void expect_bad(const char *p, size_t len, const char *what)
{
    const char *sid;
    size_t sid_len;
    recovery_log_t l;
    rooms_seen_t seen = {0};
    if (recovery_decode(p, len, &sid, &sid_len, &l, on_room, &seen) != -EPROTO)
        fail_msg("accepted: %s", what);
    assert_int_equal(seen.n, 0);
}

static void test_decode_rejects_malformed_records(void **state)
{
    (void)state;
    static const char *const framing[] = {
        "", /* empty */
        "1"
        "1:s,1:0,", /* unknown version */
        "2"
        "1:s,1:0", /* truncated after the log */
        "2"
        "0:,1:0,", /* empty sid */
        "2"
        "1:s,1:0,12:1,1-0,1-0,x,", /* room shorter than its length */
        "2"
        "1:s,1:0,11:1,1-0,1-0,x;", /* wrong terminator */
        "2"
        "1:s,1:0,x:ab,", /* no length */
        "2"
        "1:s,1:0,9999999999:a,", /* absurd length */
        "2"
        "0000000001:s,1:0,", /* a length of more than 9 digits, leading zeros included */
    };
    for (size_t i = 0; i < sizeof(framing) / sizeof(framing[0]); i++)
        expect_bad(framing[i], strlen(framing[i]), framing[i]);
    static const char *const logs[] = {
        "",                   /* no send count */
        "x",                  /* send count not a number */
        "1",                  /* one send counted, none kept */
        "0;1,1-0,0-0",        /* a send not counted */
        "1;1,1-0",            /* a send without its prev */
        "1;1,1-0,0-0;",       /* an empty send */
        "1;x,1-0,0-0",        /* tag not a number */
        "1;1,abc,0-0",        /* id not an id */
        "1;1,1-0,0-0,9",      /* a send with 4 fields */
        "1;4294967296,1-0,0", /* tag over 32 bits */
    };
    buf_t b;
    buf_init(&b);
    for (size_t i = 0; i < sizeof(logs) / sizeof(logs[0]); i++) {
        make_record(&b, logs[i], NULL);
        expect_bad(b.data, b.len, logs[i]);
    }
    static const char *const rooms[] = {
        "1,1-0,1-0",  /* no name part */
        "1,1-0,",     /* no last */
        "x,1-0,1-0,", /* tag not a number */
        "1,y,1-0,",   /* first not an id */
        "1,1-0,y,",   /* last not an id */
        "",           /* nothing */
    };
    for (size_t i = 0; i < sizeof(rooms) / sizeof(rooms[0]); i++) {
        make_record(&b, "0", rooms[i]);
        expect_bad(b.data, b.len, rooms[i]);
    }
    /* the controls: the same framing with valid texts is accepted */
    const char *sid;
    size_t sid_len;
    recovery_log_t l;
    make_record(&b, "1;1,1-0,0", "1,0-1,1-0,");
    assert_int_equal(recovery_decode(b.data, b.len, &sid, &sid_len, &l, NULL, NULL), 0);
    const char *framed = "2"
                         "1:s,1:0,11:1,1-0,1-0,x,";
    assert_int_equal(recovery_decode(framed, strlen(framed), &sid, &sid_len, &l, NULL, NULL), 0);
    framed = "2"
             "000000001:s,1:0,"; /* 9 digits */
    assert_int_equal(recovery_decode(framed, strlen(framed), &sid, &sid_len, &l, NULL, NULL), 0);
    assert_int_equal(sid_len, 1);
    /* more kept sends than the log holds */
    buf_t t;
    buf_init(&t);
    buf_puts(&t, "1000");
    for (int i = 0; i <= RECOVERY_LOG_LEN; i++)
        buf_puts(&t, ";1,1-0,0-0");
    make_record(&b, t.data, NULL);
    expect_bad(b.data, b.len, "65 kept sends");
    buf_free(&t);
    buf_free(&b);
}

static void test_key(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    recovery_key(&b, "socket.io", "pid-xyz", 7);
    assert_string_equal(b.data, "socket.io:recovery:pid-xyz");
    buf_free(&b);
}

static void test_replay_argv(void **state)
{
    (void)state;
    const char *argv[6];
    size_t lens[6];
    char excl[STREAM_ID_MAX + 2];
    recovery_replay_argv("room", 4, ID(5, 1), "100", excl, argv, lens);
    assert_string_equal(argv[0], "XRANGE");
    assert_memory_equal(argv[1], "room", lens[1]);
    assert_string_equal(argv[2], "(5-1");
    assert_int_equal(lens[2], 4);
    assert_string_equal(argv[3], "+");
    assert_string_equal(argv[4], "COUNT");
    assert_string_equal(argv[5], "100");
    recovery_replay_argv("r", 1, ID(UINT64_MAX, UINT64_MAX), "1", excl, argv, lens);
    assert_string_equal(argv[2], "(18446744073709551615-18446744073709551615");
    assert_int_equal(lens[2], STREAM_ID_MAX + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_resolves_each_room),
        cmocka_unit_test(test_log_shared_id_takes_the_earliest_send),
        cmocka_unit_test(test_log_wraps),
        cmocka_unit_test(test_encode_exact_bytes_and_round_trip),
        cmocka_unit_test(test_round_trip_of_a_wrapped_log),
        cmocka_unit_test(test_encode_refuses_an_empty_sid),
        cmocka_unit_test(test_decode_rejects_malformed_records),
        cmocka_unit_test(test_key),
        cmocka_unit_test(test_replay_argv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
