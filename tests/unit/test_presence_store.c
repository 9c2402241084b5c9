/*
 * Unit tests for common/bridge/presence_store: the commands (keys, hash tags and their escaping,
 * routing keys, arguments), the reply readers on good and malformed replies, and the presence
 * event codec and packet. The scripts themselves run against a real Redis in
 * tests/integration/presence.test.js.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bridge/presence_store.h"
#include "common/json.h"

/* argv[from..] joined by spaces, the routing key first: "<key> | a b c" */
static const char *show(rcmd_t *c, int from)
{
    static char out[2048];
    const char **argv = rcmd_argv(c);
    const size_t *lens = rcmd_lens(c);
    size_t klen, o = 0;
    const char *key = rcmd_key(c, &klen);
    o += (size_t)snprintf(out, sizeof(out), "%.*s |", (int)klen, key ? key : "");
    for (int i = from; i < rcmd_argc(c); i++)
        o += (size_t)snprintf(out + o, sizeof(out) - o, " %.*s", (int)lens[i], argv[i]);
    return out;
}

static void test_commands(void **state)
{
    (void)state;
    rcmd_t c;
    rcmd_init(&c);
    buf_t p;
    buf_init(&p);
    presence_prefix(&p, "socket.io");
    assert_string_equal(p.data, "socket.io:presence");
    /* EVAL <script> 2 keys... args: the script text is left out */
    presence_cmd_room_change(&c, p.data, "h:3000:0:42", "a{b}%c", 6, "alice", 5, 1);
    assert_string_equal(rcmd_argv(&c)[0], "EVAL");
    assert_string_equal(show(&c, 2), "socket.io:presence:room:{a%7Bb%7D%25c} | 2 "
                                     "socket.io:presence:room:{a%7Bb%7D%25c} "
                                     "socket.io:presence:room:{a%7Bb%7D%25c}:h:3000:0:42 "
                                     "h:3000:0:42 alice 1");
    presence_cmd_user_change(&c, p.data, "S", "u}1", 3, -1, 3);
    assert_string_equal(show(&c, 2), "socket.io:presence:user:{u%7D1} | 1 "
                                     "socket.io:presence:user:{u%7D1} S -1 3");
    const char *dead[] = {"D1", "D2"};
    presence_cmd_room_query(&c, p.data, "r", 1, dead, 2);
    assert_string_equal(show(&c, 2),
                        "socket.io:presence:room:{r} | 1 socket.io:presence:room:{r} D1 D2");
    presence_cmd_room_clean(&c, p.data, "r", 1, "D1", 2);
    assert_string_equal(show(&c, 2), "socket.io:presence:room:{r} | 2 socket.io:presence:room:{r} "
                                     "socket.io:presence:room:{r}:D1 D1");
    const char *users[] = {"u1", "u2"};
    size_t ulens[] = {2, 2};
    uint64_t counts[] = {2, 1};
    presence_cmd_room_set(&c, p.data, "S", "r", 1, users, ulens, counts, 2);
    assert_string_equal(show(&c, 2), "socket.io:presence:room:{r} | 2 socket.io:presence:room:{r} "
                                     "socket.io:presence:room:{r}:S S u1 2 u2 1");
    presence_cmd_user_clean(&c, p.data, "u", 1, "D", 1);
    assert_string_equal(show(&c, 2), "socket.io:presence:user:{u} | 1 socket.io:presence:user:{u} D");
    presence_cmd_user_set(&c, p.data, "S", "u", 1, 4);
    assert_string_equal(show(&c, 2), "socket.io:presence:user:{u} | 1 socket.io:presence:user:{u} S 4");
    presence_cmd_heartbeat(&c, p.data, "S", 1700000000000);
    assert_string_equal(show(&c, 0), "socket.io:presence:servers | ZADD socket.io:presence:servers "
                                     "1700000000000 S");
    presence_cmd_expired(&c, p.data, 1700000000000, 16);
    assert_string_equal(show(&c, 0), "socket.io:presence:servers | ZRANGEBYSCORE "
                                     "socket.io:presence:servers -inf (1700000000000 LIMIT 0 16");
    presence_cmd_forget(&c, p.data, "S", 1);
    assert_string_equal(show(&c, 0),
                        "socket.io:presence:servers | ZREM socket.io:presence:servers S");
    presence_cmd_index_drop(&c, p.data, "S", 1);
    assert_string_equal(show(&c, 0), "socket.io:presence:srv:{S} | DEL socket.io:presence:srv:{S}");
    presence_cmd_index_add(&c, p.data, "S", 'r', "chat.1", 6);
    assert_string_equal(show(&c, 0),
                        "socket.io:presence:srv:{S} | HSET socket.io:presence:srv:{S} r:chat.1 1");
    presence_cmd_index_read(&c, p.data, "S", 1);
    assert_string_equal(show(&c, 0),
                        "socket.io:presence:srv:{S} | HGETALL socket.io:presence:srv:{S}");
    presence_cmd_state(&c, "pres", 1000, "alice", 5, false, 17);
    assert_string_equal(show(&c, 0), "pres | XADD pres MAXLEN ~ 1000 * user alice state offline ts 17");
    presence_cmd_state(&c, "pres", 0, "alice", 5, true, 18);
    assert_string_equal(show(&c, 0), "pres | XADD pres * user alice state online ts 18");
    buf_free(&p);
    rcmd_free(&c);
}

/* ---- replies ---- */

static redisReply *mk(int type)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = type;
    return r;
}

static redisReply *ri(long long v)
{
    redisReply *r = mk(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}

static redisReply *rs(const char *s)
{
    redisReply *r = mk(REDIS_REPLY_STRING);
    r->str = strdup(s);
    r->len = strlen(s);
    return r;
}

static redisReply *ra(size_t n, ...)
{
    redisReply *r = mk(REDIS_REPLY_ARRAY);
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof(*r->element));
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        r->element[i] = va_arg(ap, redisReply *);
    va_end(ap);
    return r;
}

static void rfree(redisReply *r)
{
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        rfree(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

static void collect(const char *p, size_t len, void *arg)
{
    buf_t *b = arg;
    buf_append(b, p, len);
    buf_putc(b, ';');
}

static void collect_index(char kind, const char *p, size_t len, void *arg)
{
    buf_t *b = arg;
    buf_putc(b, kind);
    buf_append(b, p, len);
    buf_putc(b, ';');
}

static void test_replies(void **state)
{
    (void)state;
    int64_t total, mine;
    uint64_t ts;
    redisReply *r = ra(2, ri(3), ri(1));
    assert_int_equal(presence_reply_change(r, &total, &mine), 0);
    assert_int_equal(total, 3);
    assert_int_equal(mine, 1);
    assert_int_equal(presence_reply_user(r, &total, &mine, &ts), -EPROTO);
    rfree(r);
    r = ra(3, ri(-1), ri(0), ri(1700000000123));
    assert_int_equal(presence_reply_user(r, &total, &mine, &ts), 0);
    assert_int_equal(total, -1);
    assert_int_equal(ts, 1700000000123ull);
    rfree(r);
    r = ra(2, ri(1), rs("x"));
    assert_int_equal(presence_reply_change(r, &total, &mine), -EPROTO);
    rfree(r);
    r = mk(REDIS_REPLY_ERROR);
    assert_int_equal(presence_reply_change(r, &total, &mine), -EPROTO);
    assert_int_equal(presence_reply_change(NULL, &total, &mine), -EPROTO);
    rfree(r);
    buf_t b;
    buf_init(&b);
    r = ra(2, rs("a"), rs("b"));
    assert_int_equal(presence_reply_names(r, collect, &b), 0);
    assert_string_equal(b.data, "a;b;");
    rfree(r);
    r = ra(2, rs("a"), ri(1));
    buf_reset(&b);
    assert_int_equal(presence_reply_names(r, collect, &b), -EPROTO);
    assert_int_equal(b.len, 0); /* nothing reported from a malformed reply */
    rfree(r);
    r = ra(6, rs("r:chat.1"), rs("1"), rs("u:alice"), rs("1"), rs("zz"), rs("1"));
    buf_reset(&b);
    assert_int_equal(presence_reply_index(r, collect_index, &b), 0);
    assert_string_equal(b.data, "rchat.1;ualice;");
    rfree(r);
    r = ra(4, rs("alice"), ri(2), rs("b\"ob"), ri(1));
    buf_reset(&b);
    assert_int_equal(presence_reply_users(r, "chat.1", 6, &b), 0);
    assert_string_equal(b.data, "{\"roomId\":\"chat.1\",\"users\":[{\"user\":\"alice\","
                                "\"connections\":2},{\"user\":\"b\\\"ob\",\"connections\":1}],"
                                "\"userCount\":2,\"connectionCount\":3}");
    assert_int_equal(json_validate(b.data, b.len), 0);
    rfree(r);
    r = ra(0);
    buf_reset(&b);
    assert_int_equal(presence_reply_users(r, "x", 1, &b), 0);
    assert_string_equal(b.data,
                        "{\"roomId\":\"x\",\"users\":[],\"userCount\":0,\"connectionCount\":0}");
    rfree(r);
    r = ra(1, rs("alice"));
    assert_int_equal(presence_reply_users(r, "x", 1, &b), -EPROTO);
    rfree(r);
    buf_free(&b);
}

/* Counts are Redis content: a total that long long cannot hold is refused (it was summed with
 * signed overflow, found by fuzz_redis_reply), nothing written; the extremes alone still sum. */
static void test_users_total_overflow(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    redisReply *r = ra(4, rs("a"), ri(LLONG_MAX), rs("b"), ri(1));
    assert_int_equal(presence_reply_users(r, "x", 1, &b), -EPROTO);
    assert_int_equal(b.len, 0);
    rfree(r);
    r = ra(4, rs("a"), ri(LLONG_MIN), rs("b"), ri(-1));
    assert_int_equal(presence_reply_users(r, "x", 1, &b), -EPROTO);
    rfree(r);
    r = ra(4, rs("a"), ri(LLONG_MAX), rs("b"), ri(LLONG_MIN));
    assert_int_equal(presence_reply_users(r, "x", 1, &b), 0);
    assert_non_null(strstr(b.data, "\"connectionCount\":-1}"));
    assert_int_equal(json_validate(b.data, b.len), 0);
    rfree(r);
    buf_free(&b);
}

static void test_events(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    presence_channel(&b, "socket.io");
    assert_string_equal(b.data, "socket.io-presence");
    presence_event_encode(&b, true, "chat:1", 6, "al:ice", 6);
    assert_string_equal(b.data, "j6:chat:1al:ice");
    bool join;
    const char *room, *user;
    size_t rl, ul;
    assert_int_equal(presence_event_decode(b.data, b.len, &join, &room, &rl, &user, &ul), 0);
    assert_true(join);
    assert_int_equal(rl, 6);
    assert_memory_equal(room, "chat:1", 6);
    assert_int_equal(ul, 6);
    assert_memory_equal(user, "al:ice", 6);
    static const char *const bad[] = {"", "j", "x1:ab", "j:ab", "j01:ab", "j0:ab", "j3:ab",
                                      "j2:ab", "j99999999:ab", "l1ab"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(
            presence_event_decode(bad[i], strlen(bad[i]), &join, &room, &rl, &user, &ul), -EINVAL);
    assert_int_equal(presence_event_decode("l1:ab", 5, &join, &room, &rl, &user, &ul), 0);
    assert_false(join);
    /* the room's length: 1 to 7 digits, no leading zero, then ':' */
    static const char seven[] = "j1000000:";
    char *big = malloc(sizeof(seven) - 1 + 1000000 + 1);
    memcpy(big, seven, sizeof(seven) - 1);
    memset(big + sizeof(seven) - 1, 'r', 1000000 + 1);
    assert_int_equal(
        presence_event_decode(big, sizeof(seven) - 1 + 1000000 + 1, &join, &room, &rl, &user, &ul),
        0);
    assert_int_equal(rl, 1000000);
    assert_int_equal(ul, 1);
    free(big);
    assert_int_equal(presence_event_decode("j10:0123456789u", 15, &join, &room, &rl, &user, &ul),
                     0);
    assert_int_equal(rl, 10);
    static const char *const bad_len[] = {"j00:ab", "j010:0123456789u", "j-1:ab",       "j+1:ab",
                                          "j 1:ab", "j1 :ab",           "j10000000:ab", "j1"};
    for (size_t i = 0; i < sizeof(bad_len) / sizeof(bad_len[0]); i++)
        assert_int_equal(
            presence_event_decode(bad_len[i], strlen(bad_len[i]), &join, &room, &rl, &user, &ul),
            -EINVAL);
    presence_event_packet(&b, false, "r\"1", 3, "u\xff", 2);
    assert_string_equal(b.data, "42[\"presence:leave\",{\"roomId\":\"r\\\"1\",\"user\":\"u\xef\xbf\xbd\"}]");
    presence_event_packet(&b, true, "r", 1, "u", 1);
    assert_string_equal(b.data, "42[\"presence:join\",{\"roomId\":\"r\",\"user\":\"u\"}]");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_users_total_overflow),
        cmocka_unit_test(test_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
