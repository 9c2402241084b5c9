/* Unit tests for common/redis/redis_reply: the replies the layer acts on, read from RESP bytes
 * through hiredis' reader (fed in one piece and byte by byte), malformed ones included; and the
 * raw scan of a subscribed connection's items, against what hiredis reads from the same bytes. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/redis/redis_reply.h"

/* The readers whose reply a test still holds (a reply lives as long as its reader's arena). */
#define HELD 8
static redisReader *held_rd[HELD];
static redisReply *held_r[HELD];

/* One reply from RESP text; fed byte by byte when `trickle` (a reply split anywhere). */
static redisReply *resp(const char *text, bool trickle)
{
    redisReader *rd = redis_reply_reader_new();
    void *r = NULL;
    size_t n = strlen(text);
    if (trickle) {
        for (size_t i = 0; i < n && !r; i++) {
            assert_int_equal(redisReaderFeed(rd, text + i, 1), REDIS_OK);
            assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
        }
    } else {
        redisReaderFeed(rd, text, n);
        assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
    }
    assert_non_null(r);
    for (size_t i = 0; i < HELD; i++) {
        if (!held_rd[i]) {
            held_rd[i] = rd;
            held_r[i] = r;
            return r;
        }
    }
    fail_msg("too many replies held");
    return NULL;
}

/* Done with a reply of resp(): its reader goes, and the reply with it. */
static void put(redisReply *r)
{
    for (size_t i = 0; i < HELD; i++) {
        if (held_r[i] == r) {
            redis_reply_reader_free(held_rd[i]);
            held_rd[i] = NULL;
            held_r[i] = NULL;
            return;
        }
    }
    fail_msg("not a reply of resp()");
}

static void test_reader_bounds_announced_arrays(void **state)
{
    (void)state;
    static const char *const bombs[] = {"*2147483647\r\n", "*4194305\r\n:1\r\n",
                                        "*1\r\n*9999999999\r\n", "*1\r\n*-2\r\n"};
    for (size_t i = 0; i < sizeof(bombs) / sizeof(bombs[0]); i++) {
        redisReader *rd = redis_reply_reader_new();
        void *r = NULL;
        redisReaderFeed(rd, bombs[i], strlen(bombs[i]));
        if (redisReaderGetReply(rd, &r) != REDIS_ERR)
            fail_msg("accepted: %s", bombs[i]);
        assert_null(r);
        redis_reply_reader_free(rd);
    }
    redis_reply_reader_free(NULL);
    /* nested and at the bound's edge are fine */
    redisReply *r = resp("*2\r\n*1\r\n:7\r\n*0\r\n", true);
    assert_int_equal(r->element[0]->element[0]->integer, 7);
    put(r);
}

static redis_fault_t fault(const char *text, redis_redirect_t *rd)
{
    redisReply *r = resp(text, false);
    redis_fault_t f = redis_reply_fault(r, rd);
    put(r);
    return f;
}

static void test_faults(void **state)
{
    (void)state;
    redis_redirect_t rd;
    assert_int_equal(fault("-MOVED 3999 127.0.0.1:6381\r\n", &rd), REDIS_FAULT_MOVED);
    assert_int_equal(rd.slot, 3999);
    assert_string_equal(rd.addr.host, "127.0.0.1");
    assert_int_equal(rd.addr.port, 6381);
    assert_int_equal(fault("-ASK 16383 ::1:7000\r\n", &rd), REDIS_FAULT_ASK);
    assert_int_equal(rd.slot, 16383);
    assert_string_equal(rd.addr.host, "::1"); /* Redis prints IPv6 without brackets */
    assert_int_equal(rd.addr.port, 7000);
    assert_int_equal(fault("-MOVED 0 :6380\r\n", &rd), REDIS_FAULT_MOVED);
    assert_string_equal(rd.addr.host, "");
    assert_int_equal(fault("-TRYAGAIN Multiple keys request during rehashing of slot\r\n", NULL),
                     REDIS_FAULT_TRYAGAIN);
    assert_int_equal(fault("-CLUSTERDOWN The cluster is down\r\n", NULL), REDIS_FAULT_CLUSTERDOWN);
    assert_int_equal(fault("-READONLY You can't write against a read only replica.\r\n", NULL),
                     REDIS_FAULT_READONLY);
    assert_int_equal(fault("-NOAUTH Authentication required.\r\n", NULL), REDIS_FAULT_NOAUTH);
    assert_int_equal(fault("-LOADING Redis is loading\r\n", NULL), REDIS_FAULT_LOADING);
    assert_int_equal(fault("-MASTERDOWN Link with MASTER is down\r\n", NULL),
                     REDIS_FAULT_MASTERDOWN);
    assert_int_equal(fault("-ERR unknown command\r\n", NULL), REDIS_FAULT_OTHER);
    assert_int_equal(fault("+MOVED 1 h:1\r\n", NULL), REDIS_FAULT_NONE);
    assert_int_equal(fault(":1\r\n", NULL), REDIS_FAULT_NONE);
    assert_int_equal(redis_reply_fault(NULL, NULL), REDIS_FAULT_NONE);
    /* malformed redirects are passed on, never followed */
    static const char *const broken[] = {
        "-MOVED\r\n",           "-MOVED \r\n",
        "-MOVED 16384 h:1\r\n", "-MOVED 99999999 h:1\r\n",
        "-MOVED x h:1\r\n",     "-MOVED 1 h\r\n",
        "-MOVED 1 h:0\r\n",     "-MOVED 1 h:65536\r\n",
        "-MOVED 1 h:1x\r\n",    "-MOVED 1 h h:1\r\n",
        "-ASK -1 h:1\r\n",      "-MOVEDX 1 h:1\r\n",
        "-TRYAGAINX\r\n",
    };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        if (fault(broken[i], &rd) != REDIS_FAULT_OTHER)
            fail_msg("not OTHER: %s", broken[i]);
    }
}

static redis_push_t push(const char *text, int want_rc)
{
    redisReply *r = resp(text, true);
    redis_push_t p;
    assert_int_equal(redis_reply_push(r, &p), want_rc);
    put(r);
    return p; /* strings dangle: only the scalar fields are looked at */
}

static void test_pushes(void **state)
{
    (void)state;
    redis_push_t p = push("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n", 0);
    assert_int_equal(p.type, REDIS_PUSH_MESSAGE);
    assert_int_equal(p.kind, REDIS_SUB_CHANNEL);
    assert_int_equal(p.channel_len, 2);
    assert_int_equal(p.len, 5);
    p = push("*3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$0\r\n\r\n", 0);
    assert_int_equal(p.kind, REDIS_SUB_SHARD);
    assert_int_equal(p.len, 0);
    p = push("*4\r\n$8\r\npmessage\r\n$3\r\nc.*\r\n$3\r\nc.x\r\n$1\r\nd\r\n", 0);
    assert_int_equal(p.kind, REDIS_SUB_PATTERN);
    assert_int_equal(p.pattern_len, 3);
    assert_int_equal(p.channel_len, 3);
    p = push("*3\r\n$10\r\nssubscribe\r\n$2\r\nch\r\n:1\r\n", 0);
    assert_int_equal(p.type, REDIS_PUSH_SUBSCRIBE);
    assert_int_equal(p.kind, REDIS_SUB_SHARD);
    p = push("*3\r\n$12\r\nsunsubscribe\r\n$2\r\nch\r\n:0\r\n", 0);
    assert_int_equal(p.type, REDIS_PUSH_UNSUBSCRIBE);
    assert_int_equal(p.kind, REDIS_SUB_SHARD);
    p = push("*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n", 0);
    assert_int_equal(p.type, REDIS_PUSH_UNSUBSCRIBE);
    assert_int_equal(p.channel_len, 0);
    p = push("*2\r\n$4\r\npong\r\n$0\r\n\r\n", 0);
    assert_int_equal(p.type, REDIS_PUSH_PONG);
    /* not pub/sub: other arrays, wrong arity or types, unknown words */
    static const char *const other[] = {
        "*3\r\n$3\r\nfoo\r\n$2\r\nch\r\n$1\r\nx\r\n",
        "*2\r\n$7\r\nmessage\r\n$2\r\nch\r\n",
        "*3\r\n$7\r\nmessage\r\n:1\r\n$1\r\nx\r\n",
        "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n$1\r\n1\r\n",
        "*3\r\n$10\r\nxsubscribe\r\n$2\r\nch\r\n:1\r\n",
        "*4\r\n$8\r\npmessage\r\n$1\r\np\r\n:1\r\n$1\r\nx\r\n",
        "*0\r\n",
        "*-1\r\n",
        "$7\r\nmessage\r\n",
        "*1\r\n*0\r\n",
    };
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        redisReply *r = resp(other[i], false);
        redis_push_t q;
        if (redis_reply_push(r, &q) != -EPROTO || q.type != REDIS_PUSH_NONE)
            fail_msg("accepted: %s", other[i]);
        put(r);
    }
}

/* The scan of one whole item: its length, and the message hiredis reads from it (if any). */
static void scan_whole(const char *text)
{
    size_t n = strlen(text), used = 0;
    redis_push_t m;
    if (redis_reply_scan(text, n, &used, &m) != 0 || used != n)
        fail_msg("not one whole item: %s", text);
    redisReply *r = resp(text, false);
    redis_push_t want;
    bool message = redis_reply_push(r, &want) == 0 && want.type == REDIS_PUSH_MESSAGE;
    assert_int_equal(m.type, message ? REDIS_PUSH_MESSAGE : REDIS_PUSH_NONE);
    if (message) {
        assert_int_equal(m.kind, want.kind);
        assert_int_equal(m.channel_len, want.channel_len);
        assert_memory_equal(m.channel, want.channel, m.channel_len);
        assert_int_equal(m.pattern_len, want.pattern_len);
        if (m.pattern_len)
            assert_memory_equal(m.pattern, want.pattern, m.pattern_len);
        assert_int_equal(m.len, want.len);
        assert_memory_equal(m.data, want.data, m.len);
        assert_true(m.data >= text && m.data + m.len <= text + n); /* in place, not copied */
    }
    put(r);
    for (size_t k = 0; k < n; k++) { /* every proper prefix: not whole yet */
        if (redis_reply_scan(text, k, &used, &m) != -EAGAIN)
            fail_msg("prefix %zu of %s not -EAGAIN", k, text);
    }
}

static void test_scan(void **state)
{
    (void)state;
    static const char *const items[] = {
        "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n",
        "*3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$0\r\n\r\n",
        "*4\r\n$8\r\npmessage\r\n$3\r\nc.*\r\n$3\r\nc.x\r\n$4\r\nd\r\nx\r\n",
        "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\n\x01\xff\x93\r\n",
        "*3\r\n$10\r\nssubscribe\r\n$2\r\nch\r\n:1\r\n",
        "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n",
        "*2\r\n$4\r\npong\r\n$0\r\n\r\n",
        "*3\r\n$7\r\nmessage\r\n:1\r\n$1\r\nx\r\n",
        "*3\r\n$7\r\nmessage\r\n*1\r\n$1\r\nx\r\n$1\r\ny\r\n",
        "-MOVED 3999 127.0.0.1:6381\r\n",
        "+OK\r\n",
        ":-42\r\n",
        "$-1\r\n",
        "*-1\r\n",
        "*0\r\n",
        "*2\r\n*1\r\n*0\r\n$1\r\nz\r\n",
        /* numbers: 0, and up to 18 digits either sign */
        ":0\r\n",
        ":999999999999999999\r\n",
        ":-999999999999999999\r\n",
        "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$10\r\n0123456789\r\n",
    };
    for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++)
        scan_whole(items[i]);
    /* items one after the other: each found where the previous ended */
    const char *run = "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\n1\r\n"
                      "*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
                      "*3\r\n$7\r\nmessage\r\n$1\r\nb\r\n$1\r\n2\r\n";
    size_t off = 0, used, n = strlen(run);
    int messages = 0;
    while (off < n) {
        redis_push_t m;
        assert_int_equal(redis_reply_scan(run + off, n - off, &used, &m), 0);
        messages += m.type == REDIS_PUSH_MESSAGE;
        off += used;
    }
    assert_int_equal(off, n);
    assert_int_equal(messages, 2);
    /* not as Redis writes it: left to hiredis */
    static const char *const odd[] = {
        "$05\r\nhello\r\n",              /* a leading zero */
        "$5\r\nhelloXY",                 /* no CRLF after the bulk */
        "$-2\r\n",                       /* a negative length other than -1 */
        "$+5\r\nhello\r\n",              /* a sign */
        "*1x\r\n",                       /* not a number */
        "?what\r\n",                     /* not a RESP2 type */
        "$1234567890123456789012345678", /* a length that never ends */
        "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", /* 8 deep */
        "*4194305\r\n", /* more elements than the reader accepts */
        /* numbers Redis never writes */
        ":\r\n",
        ":-\r\n",
        ":-0\r\n",
        ":00\r\n",
        ":01\r\n",
        ":-01\r\n",
        ":1000000000000000000\r\n", /* 19 digits */
        ":+1\r\n",
        ": 1\r\n",
        ":1 \r\n",
        ":1a\r\n",
        ":--1\r\n",
        "*01\r\n:1\r\n",
    };
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        redis_push_t m;
        if (redis_reply_scan(odd[i], strlen(odd[i]), &used, &m) != -EPROTO)
            fail_msg("accepted: %s", odd[i]);
    }
}

static int role(const char *text)
{
    redisReply *r = resp(text, false);
    int rc = redis_reply_role(r);
    put(r);
    return rc;
}

static void test_role(void **state)
{
    (void)state;
    assert_int_equal(role("*3\r\n$6\r\nmaster\r\n:10\r\n*0\r\n"), REDIS_ROLE_MASTER);
    assert_int_equal(role("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$9\r\nconnected\r\n:1"
                          "\r\n"),
                     REDIS_ROLE_REPLICA);
    assert_int_equal(role("*2\r\n$8\r\nsentinel\r\n*0\r\n"), REDIS_ROLE_SENTINEL);
    assert_int_equal(role("-NOPERM no\r\n"), -EPROTO);
    assert_int_equal(role("*0\r\n"), -EPROTO);
    assert_int_equal(role("*1\r\n:1\r\n"), -EPROTO);
    assert_int_equal(redis_reply_role(NULL), -EPROTO);
}

static void test_sentinel_replies(void **state)
{
    (void)state;
    redis_addr_t a;
    redisReply *r = resp("*2\r\n$8\r\n10.0.0.9\r\n$4\r\n6380\r\n", true);
    assert_int_equal(redis_reply_addr(r, &a), 0);
    assert_string_equal(a.host, "10.0.0.9");
    assert_int_equal(a.port, 6380);
    put(r);
    r = resp("*-1\r\n", false);
    assert_int_equal(redis_reply_addr(r, &a), -ENOENT);
    put(r);
    static const char *const bad[] = {
        "*2\r\n$0\r\n\r\n$4\r\n6380\r\n",  "*2\r\n$1\r\nh\r\n$1\r\n0\r\n",
        "*2\r\n$1\r\nh\r\n:6380\r\n",      "*1\r\n$1\r\nh\r\n",
        "*2\r\n$3\r\nh h\r\n$2\r\n10\r\n", "-ERR x\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = resp(bad[i], false);
        if (redis_reply_addr(r, &a) != -EPROTO)
            fail_msg("accepted: %s", bad[i]);
        put(r);
    }
    const char *msg = "mymaster 127.0.0.1 6379 127.0.0.1 6380";
    assert_int_equal(redis_reply_switch_master(msg, strlen(msg), "mymaster", &a), 0);
    assert_int_equal(a.port, 6380);
    assert_int_equal(redis_reply_switch_master(msg, strlen(msg), "other", &a), -ENOENT);
    assert_int_equal(redis_reply_switch_master(msg, strlen(msg), "mymast", &a), -ENOENT);
    static const char *const badmsg[] = {
        "",
        "mymaster",
        "mymaster a 1 b",
        "mymaster a 1 b 2 c",
        "mymaster  a 1 b 2",
        "mymaster a 1 b 2 ",
        "mymaster a 1 b x",
        "mymaster a 1 b 70000",
        "mymaster a 1 b\t 2",
    };
    for (size_t i = 0; i < sizeof(badmsg) / sizeof(badmsg[0]); i++) {
        if (redis_reply_switch_master(badmsg[i], strlen(badmsg[i]), "mymaster", &a) != -EPROTO)
            fail_msg("accepted: '%s'", badmsg[i]);
    }
}

/* A paced read's reply: n entries of stream s, each [id, [event, e, data, d<i>]]. */
static size_t xread_reply(char *out, size_t cap, size_t n)
{
    size_t o = (size_t)snprintf(out, cap, "*1\r\n*2\r\n$1\r\ns\r\n*%zu\r\n", n);
    for (size_t i = 0; i < n; i++) {
        char data[32];
        int dl = snprintf(data, sizeof(data), "d%zu", i);
        o += (size_t)snprintf(out + o, cap - o,
                              "*2\r\n$3\r\n1-%zu\r\n*4\r\n$5\r\nevent\r\n$1\r\ne\r\n"
                              "$4\r\ndata\r\n$%d\r\n%s\r\n",
                              i % 10, dl, data);
    }
    return o;
}

static void check_xread(const redisReply *r, size_t n)
{
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    const redisReply *entries = r->element[0]->element[1];
    assert_string_equal(r->element[0]->element[0]->str, "s");
    assert_int_equal(entries->elements, n);
    for (size_t i = 0; i < n; i++) {
        const redisReply *fv = entries->element[i]->element[1];
        char data[32];
        snprintf(data, sizeof(data), "d%zu", i);
        assert_int_equal(fv->elements, 4);
        assert_string_equal(fv->element[1]->str, "e");
        assert_int_equal(fv->element[3]->len, strlen(data));
        assert_string_equal(fv->element[3]->str, data);
    }
}

/* Replies, one after another on one reader, each released before the next: every object and
 * string is as hiredis' own, a reply larger than the arena's chunk included, a reply split across
 * feeds too; and once the first reply sized the arena, the next ones allocate nothing. */
static void test_reader_replies_come_from_its_arena(void **state)
{
    (void)state;
    static char big[1 << 20];
    redisReader *rd = redis_reply_reader_new();
    const size_t sizes[] = {20, 20, 3000, 20, 0};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t len = xread_reply(big, sizeof(big), sizes[k]);
        /* split in the middle: the reply is half built between the feeds */
        assert_int_equal(redisReaderFeed(rd, big, len / 2), REDIS_OK);
        void *r = NULL;
        assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
        if (len > 40)
            assert_null(r);
        assert_int_equal(redisReaderFeed(rd, big + len / 2, len - len / 2), REDIS_OK);
#ifndef __SANITIZE_ADDRESS__ /* ASan's allocator keeps no such counts, and chunks go back */
        size_t before = mallinfo2().uordblks;
#endif
        if (!r)
            assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
#ifndef __SANITIZE_ADDRESS__
        if (k == 1) /* the same size as the one before: the kept chunk holds it */
            assert_int_equal(mallinfo2().uordblks, before);
#endif
        assert_non_null(r);
        check_xread(r, sizes[k]);
        redis_reply_release(rd);
    }
    /* status, error, integer, nil and nested empties */
    const char *mixed = "*6\r\n+OK\r\n-ERR no\r\n:-42\r\n$-1\r\n*0\r\n*1\r\n*-1\r\n";
    assert_int_equal(redisReaderFeed(rd, mixed, strlen(mixed)), REDIS_OK);
    void *v = NULL;
    assert_int_equal(redisReaderGetReply(rd, &v), REDIS_OK);
    redisReply *m = v;
    assert_int_equal(m->elements, 6);
    assert_int_equal(m->element[0]->type, REDIS_REPLY_STATUS);
    assert_string_equal(m->element[0]->str, "OK");
    assert_int_equal(m->element[1]->type, REDIS_REPLY_ERROR);
    assert_string_equal(m->element[1]->str, "ERR no");
    assert_int_equal(m->element[2]->integer, -42);
    assert_int_equal(m->element[3]->type, REDIS_REPLY_NIL);
    assert_int_equal(m->element[4]->elements, 0);
    assert_null(m->element[4]->element);
    assert_int_equal(m->element[5]->element[0]->type, REDIS_REPLY_NIL);
    redis_reply_release(rd);
    /* a reader freed with a reply half read */
    assert_true(xread_reply(big, sizeof(big), 20) > 100);
    assert_int_equal(redisReaderFeed(rd, big, 100), REDIS_OK);
    v = NULL;
    assert_int_equal(redisReaderGetReply(rd, &v), REDIS_OK);
    assert_null(v);
    redis_reply_reader_free(rd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_bounds_announced_arrays),
        cmocka_unit_test(test_reader_replies_come_from_its_arena),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_pushes),
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_role),
        cmocka_unit_test(test_sentinel_replies),
    };
    return cmocka_run_group_tests_name("redis_reply", tests, NULL, NULL);
}
