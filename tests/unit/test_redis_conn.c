/* Unit tests for common/redis/redis_conn: the connection state machine against a scripted RESP
 * server (tests/unit/redis_fake.c): handshake, pipelining, AUTH refusals, reconnects, command
 * and connect deadlines, pub/sub confirmations and pushes (sunsubscribe when a slot moves),
 * ROLE checks, bounds, graceful close, protocol errors and re-targeting. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <cmocka.h>

#include "common/redis/redis_conn.h"
#include "tests/unit/redis_fake.h"

typedef struct fx {
    uv_loop_t loop;
    fake_t *srv;
    redis_conn_t *c;
    /* server script */
    const char *auth_reply;    /* reply to AUTH, NULL = +OK */
    const char *setname_reply; /* reply to CLIENT SETNAME, NULL = +OK */
    const char *role;          /* "master" (default) or "slave" */
    bool silent;               /* answer nothing at all */
    bool ignore_slow;          /* never answer SLOW */
    unsigned slow_ms;          /* answer SLOW after this long (when not ignored) */
    bool slow_sub;             /* confirm SUBSCRIBE only 50 ms later */
    /* what the client saw */
    int ev[5];
    fake_replies_t rep;
    redis_push_t msg;
    char msg_data[64];
    size_t msg_lens[8];   /* the first messages' lengths */
    char msg_tails[8][8]; /* and their last bytes */
    size_t msgs;
    size_t lost;
    char lost_ch[64];
    redis_sub_kind_t lost_kind;
    bool lost_err;
    bool closed;
    int order_bad;
    long long next_expected;
    struct in_order *order; /* test_many_replies_in_one_read */
} fx_t;

/* ---- the scripted server ---- */

typedef struct later {
    uv_timer_t t;
    fake_conn_t *fc;
    char resp[64];
} later_t;

static void on_later_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_later(uv_timer_t *t)
{
    later_t *l = t->data;
    fake_send(l->fc, l->resp);
    uv_close((uv_handle_t *)t, on_later_closed);
}

static void send_later(fx_t *f, fake_conn_t *fc, unsigned ms, const char *resp)
{
    later_t *l = calloc(1, sizeof(*l));
    l->fc = fc;
    snprintf(l->resp, sizeof(l->resp), "%s", resp);
    uv_timer_init(&f->loop, &l->t);
    l->t.data = l;
    uv_timer_start(&l->t, on_later, ms, 0);
}

static bool is(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

static void on_cmd(fake_conn_t *fc, int argc, char **argv, size_t *lens, void *arg)
{
    (void)lens;
    fx_t *f = arg;
    if (f->silent)
        return;
    if (is(argv[0], "AUTH") && f->auth_reply) {
        fake_send(fc, f->auth_reply);
    } else if (argc == 3 && is(argv[0], "CLIENT") && is(argv[1], "SETNAME") && f->setname_reply) {
        fake_send(fc, f->setname_reply);
    } else if (is(argv[0], "ROLE") && f->role && is(f->role, "slave")) {
        fake_send(fc, "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:1\r\n$9\r\nconnected\r\n:0\r\n");
    } else if (fake_handshake(fc, argc, argv)) {
        /* answered */
    } else if (is(argv[0], "GET")) {
        fake_send(fc, "$1\r\nv\r\n");
    } else if (is(argv[0], "ECHO")) {
        char head[32];
        snprintf(head, sizeof(head), "$%zu\r\n", strlen(argv[1]));
        fake_send(fc, head);
        fake_send_bytes(fc, argv[1], strlen(argv[1]));
        fake_send(fc, "\r\n");
    } else if (is(argv[0], "SLOW")) {
        if (!f->ignore_slow)
            send_later(f, fc, f->slow_ms, "+DONE\r\n");
    } else if (is(argv[0], "WRITE")) {
        fake_send(fc, "-READONLY You can't write against a read only replica.\r\n");
    } else if (is(argv[0], "GARBAGE")) {
        fake_send(fc, "!nonsense\r\n");
    } else if (is(argv[0], "SUBSCRIBE") && f->slow_sub) {
        char resp[64];
        snprintf(resp, sizeof(resp), "*3\r\n$9\r\nsubscribe\r\n$%zu\r\n%s\r\n:1\r\n",
                 strlen(argv[1]), argv[1]);
        send_later(f, fc, 50, resp);
    } else if (is(argv[0], "SUBSCRIBE") || is(argv[0], "PSUBSCRIBE") ||
               is(argv[0], "UNSUBSCRIBE")) {
        fake_sub_confirm(fc,
                         argv[0][0] == 'S'   ? "subscribe"
                         : argv[0][0] == 'P' ? "psubscribe"
                                             : "unsubscribe",
                         argv[1], 1);
    } else if (is(argv[0], "SSUBSCRIBE")) {
        if (strcmp(argv[1], "elsewhere") == 0)
            fake_send(fc, "-MOVED 1234 127.0.0.1:7777\r\n");
        else
            fake_sub_confirm(fc, "ssubscribe", argv[1], 1);
    } else {
        fake_send(fc, "-ERR unknown command\r\n");
    }
}

/* ---- the client side ---- */

static void on_event(redis_conn_t *c, redis_conn_event_t ev, void *arg)
{
    (void)c;
    fx_t *f = arg;
    assert_false(f->closed);
    f->ev[ev]++;
}

static void on_message(redis_conn_t *c, const redis_push_t *m, void *arg)
{
    (void)c;
    fx_t *f = arg;
    /* NUL-terminated, as hiredis' strings are, however the message was read */
    assert_int_equal(strlen(m->channel), m->channel_len);
    assert_int_equal(strlen(m->data), m->len);
    if (f->msgs < 8) {
        f->msg_lens[f->msgs] = m->len;
        size_t tail = m->len < 7 ? m->len : 7;
        snprintf(f->msg_tails[f->msgs], 8, "%.*s", (int)tail, m->data + m->len - tail);
    }
    f->msgs++;
    f->msg = *m;
    snprintf(f->msg_data, sizeof(f->msg_data), "%.*s", (int)m->len, m->data);
}

static void on_sub_lost(redis_conn_t *c, redis_sub_kind_t kind, const char *ch, size_t len,
                        const redisReply *err, void *arg)
{
    (void)c;
    fx_t *f = arg;
    f->lost++;
    f->lost_kind = kind;
    f->lost_err = err != NULL;
    snprintf(f->lost_ch, sizeof(f->lost_ch), "%.*s", (int)len, ch);
}

static const redis_conn_cbs_t cbs = {
    .event = on_event, .message = on_message, .sub_lost = on_sub_lost};

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    f->srv = fake_new(&f->loop, on_cmd, f);
    *state = f;
    return 0;
}

static void on_done(void *arg)
{
    ((fx_t *)arg)->closed = true;
}

static bool is_closed(void *arg)
{
    return ((fx_t *)arg)->closed;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    if (f->c && !f->closed) {
        redis_conn_close(f->c, on_done, f);
        assert_true(fake_run_until(&f->loop, is_closed, f, 2000));
    }
    fake_free(f->srv);
    assert_int_equal(fake_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static redis_conn_opts_t fast_opts(void)
{
    return (redis_conn_opts_t){.name = "t conn",
                               .connect_timeout_ms = 300,
                               .command_timeout_ms = 200,
                               .backoff_min_ms = 10,
                               .backoff_max_ms = 40};
}

static void start(fx_t *f, const redis_conn_opts_t *o)
{
    f->c = redis_conn_new(&f->loop, "127.0.0.1", fake_port(f->srv), o, &cbs, f);
}

static bool up(void *arg)
{
    fx_t *f = arg;
    return redis_conn_up(f->c);
}

static bool saw(fx_t *f, const char *line)
{
    return fake_count(f->srv, line) > 0;
}

static size_t count_seen(fx_t *f, const char *line)
{
    return fake_count(f->srv, line);
}

static int cmd(fx_t *f, const char *a0, const char *a1)
{
    const char *argv[2] = {a0, a1};
    return redis_conn_command(f->c, fake_on_reply, &f->rep, a1 ? 2 : 1, argv, NULL);
}

#define WAIT(cond_fn) assert_true(fake_run_until(&f->loop, cond_fn, f, FAKE_WAIT_MS))

static bool got_reply(void *arg)
{
    return ((fx_t *)arg)->rep.replies > 0;
}

static bool got_null(void *arg)
{
    return ((fx_t *)arg)->rep.nulls > 0;
}

/* ---- tests ---- */

static void test_handshake_then_pipelined_commands(void **state)
{
    fx_t *f = *state;
    redis_conn_opts_t o = fast_opts();
    o.username = "app";
    o.password = "pw";
    o.db = 2;
    start(f, &o);
    assert_int_equal(cmd(f, "GET", "k"), -ENOTCONN); /* not up yet */
    WAIT(up);
    assert_int_equal(f->ev[REDIS_CONN_UP], 1);
    assert_string_equal(fake_seen(f->srv, 0), "AUTH app pw");
    assert_string_equal(fake_seen(f->srv, 1), "SELECT 2");
    assert_string_equal(fake_seen(f->srv, 2), "CLIENT SETNAME t-conn");
    assert_string_equal(fake_seen(f->srv, 3), "CLIENT ID");
    assert_int_equal(redis_conn_id(f->c), 1001);
    assert_string_equal(redis_conn_host(f->c), "127.0.0.1");
    assert_int_equal(redis_conn_port(f->c), fake_port(f->srv));
    /* replies come back in order, one callback each */
    char num[200][8];
    for (int i = 0; i < 200; i++) {
        snprintf(num[i], sizeof(num[i]), "%d", i);
        const char *argv[2] = {"ECHO", num[i]};
        assert_int_equal(redis_conn_command(f->c, fake_on_reply, &f->rep, 2, argv, NULL), 0);
    }
    assert_int_equal(redis_conn_inflight(f->c), 200);
    fake_run_until(&f->loop, got_reply, f, 3000);
    while (f->rep.replies < 200 && fake_run_until(&f->loop, got_reply, f, 100))
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->rep.replies, 200);
    assert_string_equal(f->rep.last, "199");
    assert_int_equal(f->rep.nulls, 0);
    /* one accepted connection: the commands were pipelined on it */
    assert_int_equal(fake_accepted(f->srv), 1);
}

/* Replies in order, each whole, checked against the one its command asked for. */
typedef struct in_order {
    size_t next, wrong;
    char big[10000];
} in_order_t;

static void reply_in_order(const redisReply *r, void *arg)
{
    in_order_t *o = arg;
    char want[16];
    const char *w = want;
    size_t wl;
    if (o->next == 1000) {
        w = o->big;
        wl = sizeof(o->big);
    } else {
        wl = (size_t)snprintf(want, sizeof(want), "%zu", o->next);
    }
    if (!r || r->type != REDIS_REPLY_STRING || r->len != wl || memcmp(r->str, w, wl))
        o->wrong++;
    o->next++;
}

static bool all_in_order(void *arg)
{
    return ((fx_t *)arg)->order->next >= 3000;
}

/* Many replies read at once reach hiredis a few kilobytes at a time (it moves what it holds at
 * each reply): replies cut between those slices, and one spanning several, come whole and in
 * order. */
static void test_many_replies_in_one_read(void **state)
{
    fx_t *f = *state;
    redis_conn_opts_t o = fast_opts();
    start(f, &o);
    WAIT(up);
    static in_order_t order; /* static: 10 KB, and the numbers below, off the stack */
    memset(&order, 0, sizeof(order));
    memset(order.big, 'b', sizeof(order.big));
    f->order = &order;
    static char num[3000][8];
    for (int i = 0; i < 3000; i++) {
        snprintf(num[i], sizeof(num[i]), "%d", i);
        const char *argv[2] = {"ECHO", i == 1000 ? order.big : num[i]};
        size_t lens[2] = {4, i == 1000 ? sizeof(order.big) : strlen(num[i])};
        assert_int_equal(redis_conn_command(f->c, reply_in_order, &order, 2, argv, lens), 0);
    }
    WAIT(all_in_order);
    assert_int_equal(order.next, 3000);
    assert_int_equal(order.wrong, 0);
    assert_true(redis_conn_up(f->c));
}

static bool auth_failed_twice(void *arg)
{
    return ((fx_t *)arg)->ev[REDIS_CONN_AUTH_FAILED] >= 2;
}

static void test_auth_refused_is_retried_never_up(void **state)
{
    fx_t *f = *state;
    f->auth_reply = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    redis_conn_opts_t o = fast_opts();
    o.password = "wrong";
    start(f, &o);
    WAIT(auth_failed_twice);
    assert_int_equal(f->ev[REDIS_CONN_UP], 0);
    assert_true(fake_accepted(f->srv) >= 2);
    assert_int_equal(cmd(f, "GET", "k"), -ENOTCONN);
    /* the password is accepted once it is right (the server changes its mind) */
    f->auth_reply = NULL;
    WAIT(up);
}

static bool auth_failed(void *arg)
{
    return ((fx_t *)arg)->ev[REDIS_CONN_AUTH_FAILED] >= 1;
}

static void test_missing_password_is_an_auth_failure(void **state)
{
    fx_t *f = *state;
    f->setname_reply = "-NOAUTH Authentication required.\r\n";
    redis_conn_opts_t o = fast_opts();
    start(f, &o);
    WAIT(auth_failed);
    assert_false(saw(f, "AUTH"));
    assert_int_equal(f->ev[REDIS_CONN_UP], 0);
}

static bool up_twice(void *arg)
{
    fx_t *f = arg;
    return f->ev[REDIS_CONN_UP] >= 2 && redis_conn_up(f->c);
}

static bool subscribed_once(void *arg)
{
    return count_seen(arg, "SUBSCRIBE news") == 1;
}

static bool resubscribed(void *arg)
{
    return count_seen(arg, "SUBSCRIBE news") >= 2;
}

static void test_reconnects_and_resubscribes_after_a_drop(void **state)
{
    fx_t *f = *state;
    f->ignore_slow = true;
    redis_conn_opts_t o = fast_opts();
    o.command_timeout_ms = 5000;
    start(f, &o);
    WAIT(up);
    assert_int_equal(cmd(f, "SLOW", NULL), 0);
    assert_int_equal(redis_conn_subscribe(f->c, REDIS_SUB_CHANNEL, "news", 4), 0);
    WAIT(subscribed_once);
    fake_drop(fake_last(f->srv));
    WAIT(got_null); /* the command in flight gets NULL: it may or may not have run */
    assert_int_equal(f->ev[REDIS_CONN_DOWN], 1);
    WAIT(up_twice);
    WAIT(resubscribed);
    assert_true(redis_conn_subscribed(f->c, REDIS_SUB_CHANNEL, "news", 4));
    assert_int_equal(fake_accepted(f->srv), 2);
}

static void test_command_timeout_drops_the_connection(void **state)
{
    fx_t *f = *state;
    f->ignore_slow = true;
    redis_conn_opts_t o = fast_opts();
    o.command_timeout_ms = 100;
    start(f, &o);
    WAIT(up);
    uint64_t t0 = uv_now(&f->loop);
    assert_int_equal(cmd(f, "SLOW", NULL), 0);
    WAIT(got_null);
    assert_true(uv_now(&f->loop) - t0 >= 100);
    assert_int_equal(f->ev[REDIS_CONN_DOWN], 1);
    WAIT(up_twice);
}

static bool got_done(void *arg)
{
    return strcmp(((fx_t *)arg)->rep.last, "DONE") == 0;
}

static void test_blocking_command_gets_its_block_time(void **state)
{
    fx_t *f = *state;
    f->slow_ms = 250; /* longer than the command timeout, shorter than timeout + BLOCK */
    redis_conn_opts_t o = fast_opts();
    o.command_timeout_ms = 100;
    start(f, &o);
    WAIT(up);
    const char *argv[1] = {"SLOW"};
    assert_int_equal(redis_conn_command_blocking(f->c, 400, fake_on_reply, &f->rep, 1, argv, NULL),
                     0);
    WAIT(got_done);
    assert_int_equal(f->ev[REDIS_CONN_DOWN], 0);
    assert_int_equal(f->rep.nulls, 0);
}

static bool failed_twice(void *arg)
{
    return ((fx_t *)arg)->ev[REDIS_CONN_FAILED] >= 2;
}

static void test_connect_timeout_when_the_server_is_mute(void **state)
{
    fx_t *f = *state;
    f->silent = true;
    redis_conn_opts_t o = fast_opts();
    o.connect_timeout_ms = 80;
    start(f, &o);
    WAIT(failed_twice);
    assert_int_equal(f->ev[REDIS_CONN_UP], 0);
    assert_true(fake_accepted(f->srv) >= 2);
}

static void test_unreachable_server_backs_off(void **state)
{
    fx_t *f = *state;
    /* a port nobody listens on: the fake's, once it is closed */
    fake_t *gone = fake_new(&f->loop, on_cmd, f);
    int port = fake_port(gone);
    fake_free(gone);
    fake_run_for(&f->loop, 20);
    redis_conn_opts_t o = fast_opts();
    f->c = redis_conn_new(&f->loop, "127.0.0.1", port, &o, &cbs, f);
    WAIT(failed_twice);
    assert_int_equal(f->ev[REDIS_CONN_UP], 0);
    assert_int_equal(f->ev[REDIS_CONN_DOWN], 0);
}

static bool got_msg(void *arg)
{
    return ((fx_t *)arg)->msgs > 0;
}

static bool got_lost(void *arg)
{
    return ((fx_t *)arg)->lost > 0;
}

static bool saw_ssub(void *arg)
{
    return saw(arg, "SSUBSCRIBE room");
}

/* Every command sent has its reply, subscriptions and unsubscriptions their confirmation: what
 * was sent has been seen by the server, and what it answered has been read. */
static bool settled(void *arg)
{
    return redis_conn_inflight(((fx_t *)arg)->c) == 0;
}

static void test_pubsub_confirmations_pushes_and_moves(void **state)
{
    fx_t *f = *state;
    redis_conn_opts_t o = fast_opts();
    start(f, &o);
    assert_int_equal(redis_conn_subscribe(f->c, REDIS_SUB_SHARD, "room", 4), 0); /* before up */
    WAIT(up);
    assert_int_equal(redis_conn_subscribe(f->c, REDIS_SUB_CHANNEL, "a", 1), 0);
    assert_int_equal(redis_conn_subscribe(f->c, REDIS_SUB_PATTERN, "p.*", 3), 0);
    assert_int_equal(redis_conn_subscribe(f->c, REDIS_SUB_CHANNEL, "a", 1), 0); /* once */
    WAIT(saw_ssub);
    WAIT(settled);
    assert_int_equal(count_seen(f, "SUBSCRIBE a"), 1);
    assert_true(saw(f, "PSUBSCRIBE p.*"));
    assert_int_equal(f->lost, 0);
    fake_conn_t *fc = fake_last(f->srv);
    fake_send(fc, "*3\r\n$8\r\nsmessage\r\n$4\r\nroom\r\n$2\r\nhi\r\n");
    WAIT(got_msg);
    assert_int_equal(f->msg.kind, REDIS_SUB_SHARD);
    assert_string_equal(f->msg_data, "hi");
    fake_send(fc, "*4\r\n$8\r\npmessage\r\n$3\r\np.*\r\n$3\r\np.x\r\n$3\r\nyes\r\n");
    f->msgs = 0;
    WAIT(got_msg);
    assert_int_equal(f->msg.kind, REDIS_SUB_PATTERN);
    assert_string_equal(f->msg_data, "yes");
    /* the server ends a shard subscription (its slot moved): reported, no longer wanted */
    fake_send(fc, "*3\r\n$12\r\nsunsubscribe\r\n$4\r\nroom\r\n:2\r\n");
    WAIT(got_lost);
    assert_int_equal(f->lost_kind, REDIS_SUB_SHARD);
    assert_string_equal(f->lost_ch, "room");
    assert_false(f->lost_err);
    assert_false(redis_conn_subscribed(f->c, REDIS_SUB_SHARD, "room", 4));
    /* an error to SSUBSCRIBE (MOVED) is reported with the error */
    f->lost = 0;
    assert_int_equal(redis_conn_subscribe(f->c, REDIS_SUB_SHARD, "elsewhere", 9), 0);
    WAIT(got_lost);
    assert_true(f->lost_err);
    assert_string_equal(f->lost_ch, "elsewhere");
    /* our own UNSUBSCRIBE's confirmation is not a loss */
    f->lost = 0;
    assert_int_equal(redis_conn_unsubscribe(f->c, REDIS_SUB_CHANNEL, "a", 1), 0);
    WAIT(settled);
    assert_true(saw(f, "UNSUBSCRIBE a"));
    assert_int_equal(f->lost, 0);
    assert_true(redis_conn_up(f->c));
}

static bool one_reply(void *arg)
{
    return ((fx_t *)arg)->rep.replies >= 1;
}

/* Replies nobody reads (no callback) are passed over where they lie, errors included, and the
 * next command still gets its own reply. */
static void test_unread_replies_keep_the_order(void **state)
{
    fx_t *f = *state;
    redis_conn_opts_t o = fast_opts();
    start(f, &o);
    WAIT(up);
    const char *echo[2] = {"ECHO", "ignored"};
    const char *nope[1] = {"NOPE"};
    for (int i = 0; i < 50; i++) {
        assert_int_equal(redis_conn_command(f->c, NULL, NULL, 2, echo, NULL), 0);
        if (i % 10 == 0)
            assert_int_equal(redis_conn_command(f->c, NULL, NULL, 1, nope, NULL), 0);
    }
    const char *want[2] = {"ECHO", "wanted"};
    assert_int_equal(redis_conn_command(f->c, fake_on_reply, &f->rep, 2, want, NULL), 0);
    WAIT(one_reply);
    assert_string_equal(f->rep.last, "wanted");
    assert_int_equal(redis_conn_inflight(f->c), 0);
    assert_true(redis_conn_up(f->c));
}

static bool got_two_msgs(void *arg)
{
    return ((fx_t *)arg)->msgs >= 2;
}

static bool got_three_msgs(void *arg)
{
    return ((fx_t *)arg)->msgs >= 3;
}

/* Starts a connection subscribed to shard channel "room"; returns the server's side of it. */
static fake_conn_t *subscribed_to_room(fx_t *f)
{
    redis_conn_opts_t o = fast_opts();
    start(f, &o);
    assert_int_equal(redis_conn_subscribe(f->c, REDIS_SUB_SHARD, "room", 4), 0);
    WAIT(up);
    WAIT(saw_ssub);
    WAIT(settled);
    return fake_last(f->srv);
}

/* A subscribed connection reads messages without hiredis: whole however the bytes are cut, in
 * order with what hiredis reads (a subscription ended by the server between two messages). */
static void test_messages_cut_anywhere(void **state)
{
    fx_t *f = *state;
    fake_conn_t *fc = subscribed_to_room(f);
    const char *run = "*3\r\n$8\r\nsmessage\r\n$4\r\nroom\r\n$3\r\none\r\n"
                      "*3\r\n$8\r\nsmessage\r\n$4\r\nroom\r\n$14\r\ntwo\r\n\r\n$1\r\nx\r\n\r\n"
                      "*3\r\n$8\r\nsmessage\r\n$4\r\nroom\r\n$5\r\nthree\r\n";
    size_t n = strlen(run);
    for (size_t cut = 1; cut < n; cut += 7) {
        char head[256];
        memcpy(head, run, cut);
        head[cut] = '\0';
        f->msgs = 0;
        fake_send(fc, head);
        fake_run_for(&f->loop, 5);
        fake_send(fc, run + cut);
        WAIT(got_three_msgs);
        assert_int_equal(f->msgs, 3);
        assert_string_equal(f->msg_data, "three");
    }
    /* a CRLF inside a message's data ends nothing */
    f->msgs = 0;
    fake_send(fc, "*3\r\n$8\r\nsmessage\r\n$4\r\nroom\r\n$14\r\ntwo\r\n\r\n$1\r\nx\r\n\r\n");
    WAIT(got_msg);
    assert_string_equal(f->msg_data, "two\r\n\r\n$1\r\nx\r\n");
    /* the server ends the subscription between two messages: each in its place */
    f->msgs = 0;
    fake_send(fc, "*3\r\n$8\r\nsmessage\r\n$4\r\nroom\r\n$1\r\na\r\n"
                  "*3\r\n$12\r\nsunsubscribe\r\n$4\r\nroom\r\n:0\r\n"
                  "*3\r\n$8\r\nsmessage\r\n$4\r\nroom\r\n$1\r\nb\r\n");
    WAIT(got_lost);
    WAIT(got_two_msgs);
    assert_int_equal(f->msgs, 2);
    assert_string_equal(f->msg_data, "b");
    assert_string_equal(f->lost_ch, "room");
    assert_true(redis_conn_up(f->c));
}

/* A message larger than what one read brings waits in carry over several reads, while only the
 * bytes it needs are copied there; what follows it in the same read (a message, a server's
 * sunsubscribe, another message) is read in place, each in its order. */
static void test_big_message_over_several_reads(void **state)
{
    fx_t *f = *state;
    fake_conn_t *fc = subscribed_to_room(f);
    enum { BIG = 20000 };
    const char *head = "*3\r\n$8\r\nsmessage\r\n$4\r\nroom\r\n$20000\r\n";
    const char *after = "\r\n*3\r\n$8\r\nsmessage\r\n$4\r\nroom\r\n$4\r\nnext\r\n"
                        "*3\r\n$12\r\nsunsubscribe\r\n$4\r\nroom\r\n:0\r\n"
                        "*3\r\n$8\r\nsmessage\r\n$4\r\nroom\r\n$4\r\nlast\r\n";
    size_t hl = strlen(head), al = strlen(after), n = hl + BIG + al;
    char *run = malloc(n + 1);
    memcpy(run, head, hl);
    for (size_t i = 0; i < BIG; i++)
        run[hl + i] = (char)('a' + i % 26);
    memcpy(run + hl + BIG - 3, "END", 3);
    memcpy(run + hl + BIG, after, al + 1);
    /* cut in the header, then in the data (still not whole), then the rest */
    size_t cuts[] = {hl - 3, hl + 9000, n};
    size_t from = 0;
    for (size_t i = 0; i < 3; i++) {
        char saved = run[cuts[i]];
        run[cuts[i]] = '\0';
        fake_send(fc, run + from);
        run[cuts[i]] = saved;
        from = cuts[i];
        fake_run_for(&f->loop, 5);
    }
    free(run);
    WAIT(got_lost);
    WAIT(got_three_msgs);
    fake_run_for(&f->loop, 20);
    assert_int_equal(f->msgs, 3);
    assert_int_equal(f->msg_lens[0], BIG);
    assert_string_equal(f->msg_tails[0], "zabcEND");
    assert_int_equal(f->msg_lens[1], 4);
    assert_string_equal(f->msg_tails[1], "next");
    assert_string_equal(f->msg_data, "last");
    assert_string_equal(f->lost_ch, "room");
    assert_true(redis_conn_up(f->c));
}

/* Held reads leave the messages in the kernel; resumed, they all come (one read). */
static void test_held_reads_deliver_on_resume(void **state)
{
    fx_t *f = *state;
    redis_conn_opts_t o = fast_opts();
    start(f, &o);
    WAIT(up);
    assert_int_equal(redis_conn_subscribe(f->c, REDIS_SUB_CHANNEL, "a", 1), 0);
    WAIT(settled);
    assert_true(saw(f, "SUBSCRIBE a"));
    fake_conn_t *fc = fake_last(f->srv);
    redis_conn_hold_reads(f->c, true);
    for (int i = 0; i < 3; i++)
        fake_send(fc, "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n");
    fake_run_for(&f->loop, 50);
    assert_int_equal(f->msgs, 0);
    redis_conn_hold_reads(f->c, false);
    WAIT(got_three_msgs);
    assert_int_equal(f->msgs, 3);
    assert_true(redis_conn_up(f->c));
}

static bool not_primary_twice(void *arg)
{
    return ((fx_t *)arg)->ev[REDIS_CONN_NOT_PRIMARY] >= 2;
}

static bool down_once(void *arg)
{
    return ((fx_t *)arg)->ev[REDIS_CONN_DOWN] >= 1;
}

static void test_require_primary_checks_role_and_readonly(void **state)
{
    fx_t *f = *state;
    f->role = "slave";
    redis_conn_opts_t o = fast_opts();
    o.require_primary = true;
    start(f, &o);
    WAIT(not_primary_twice);
    assert_int_equal(f->ev[REDIS_CONN_UP], 0);
    assert_true(saw(f, "ROLE"));
    f->role = "master"; /* promoted */
    WAIT(up);
    /* a write answered READONLY: this server was demoted; the caller sees the error */
    assert_int_equal(cmd(f, "WRITE", NULL), 0);
    WAIT(down_once);
    assert_int_equal(f->rep.replies, 1);
    assert_string_equal(f->rep.last, "READONLY You can't write against a read only replica.");
}

static void test_bounds_refuse_with_enobufs(void **state)
{
    fx_t *f = *state;
    f->ignore_slow = true;
    redis_conn_opts_t o = fast_opts();
    o.max_inflight = 2;
    o.command_timeout_ms = 300; /* bounds the graceful close of teardown */
    start(f, &o);
    WAIT(up);
    assert_int_equal(cmd(f, "SLOW", NULL), 0);
    assert_int_equal(cmd(f, "SLOW", NULL), 0);
    assert_int_equal(cmd(f, "SLOW", NULL), -ENOBUFS);
}

static void test_graceful_close_delivers_replies_then_done(void **state)
{
    fx_t *f = *state;
    f->slow_ms = 50;
    redis_conn_opts_t o = fast_opts();
    start(f, &o);
    WAIT(up);
    assert_int_equal(cmd(f, "SLOW", NULL), 0);
    redis_conn_close(f->c, on_done, f);
    assert_false(f->closed); /* never from the call */
    assert_int_equal(cmd(f, "GET", "k"), -ESHUTDOWN);
    assert_int_equal(redis_conn_subscribe(f->c, REDIS_SUB_CHANNEL, "x", 1), -ESHUTDOWN);
    WAIT(is_closed);
    assert_string_equal(f->rep.last, "DONE");
    assert_int_equal(f->rep.nulls, 0);
    assert_int_equal(f->ev[REDIS_CONN_DOWN], 0); /* no event after close */
}

/* A subscription confirmation that was the last thing the closing connection waited for ends it. */
static void test_close_waiting_for_a_confirmation(void **state)
{
    fx_t *f = *state;
    f->slow_sub = true;
    redis_conn_opts_t o = fast_opts();
    start(f, &o);
    WAIT(up);
    assert_int_equal(redis_conn_subscribe(f->c, REDIS_SUB_CHANNEL, "news", 4), 0);
    redis_conn_close(f->c, on_done, f);
    WAIT(is_closed);
}

static void test_close_without_address(void **state)
{
    fx_t *f = *state;
    redis_conn_opts_t o = fast_opts();
    f->c = redis_conn_new(&f->loop, NULL, 0, &o, &cbs, f);
    fake_run_for(&f->loop, 20);
    assert_false(redis_conn_up(f->c));
    assert_string_equal(redis_conn_host(f->c), "");
    redis_conn_close(f->c, on_done, f);
    WAIT(is_closed);
    assert_int_equal(fake_accepted(f->srv), 0);
}

static void test_protocol_error_drops_and_reconnects(void **state)
{
    fx_t *f = *state;
    redis_conn_opts_t o = fast_opts();
    start(f, &o);
    WAIT(up);
    assert_int_equal(cmd(f, "GARBAGE", NULL), 0);
    WAIT(got_null);
    WAIT(up_twice);
}

static void test_retarget_moves_to_the_new_address(void **state)
{
    fx_t *f = *state;
    redis_conn_opts_t o = fast_opts();
    start(f, &o);
    WAIT(up);
    fake_t *other = fake_new(&f->loop, on_cmd, f);
    redis_conn_retarget(f->c, "127.0.0.1", fake_port(other), true);
    assert_false(redis_conn_up(f->c));
    WAIT(up_twice);
    assert_int_equal(redis_conn_port(f->c), fake_port(other));
    assert_int_equal(fake_accepted(other), 1);
    assert_int_equal(f->ev[REDIS_CONN_DOWN], 1);
    /* the same address of a live link: nothing happens */
    redis_conn_retarget(f->c, "127.0.0.1", fake_port(other), true);
    assert_true(redis_conn_up(f->c));
    redis_conn_close(f->c, on_done, f);
    WAIT(is_closed);
    fake_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handshake_then_pipelined_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_replies_in_one_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_refused_is_retried_never_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_password_is_an_auth_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnects_and_resubscribes_after_a_drop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_command_timeout_drops_the_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocking_command_gets_its_block_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_timeout_when_the_server_is_mute, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_server_backs_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pubsub_confirmations_pushes_and_moves, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_messages_cut_anywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_message_over_several_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unread_replies_keep_the_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_reads_deliver_on_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_require_primary_checks_role_and_readonly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bounds_refuse_with_enobufs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graceful_close_delivers_replies_then_done, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_waiting_for_a_confirmation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_without_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_error_drops_and_reconnects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retarget_moves_to_the_new_address, setup, teardown),
    };
    return cmocka_run_group_tests_name("redis_conn", tests, NULL, NULL);
}
