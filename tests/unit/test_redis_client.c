/* Unit tests for common/redis/redis_client (with redis_topology, redis_cluster and
 * redis_sentinel): routing against scripted servers (tests/unit/redis_fake.c) playing a single
 * Redis, two cluster masters with a slot table of their own (MOVED, ASK + ASKING, TRYAGAIN,
 * CLUSTERDOWN, sunsubscribe when a slot moves), and a sentinel that announces a failover. */
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

#include "common/buf.h"
#include "common/redis/redis_client.h"
#include "common/redis/redis_slot.h"
#include "common/redis/redis_topology.h"
#include "tests/unit/redis_fake.h"

#define NODES 3 /* A, B (data) and S (sentinel) */

typedef struct fx fx_t;

typedef struct node {
    fx_t *f;
    int idx;
    fake_t *srv;
    char name;
    fake_conn_t *getter; /* the connection of the last GET: a command connection */
} node_t;

struct fx {
    uv_loop_t loop;
    node_t n[NODES];
    int8_t owner[REDIS_SLOTS]; /* node index serving each slot, -1 none */
    int migrating_slot;        /* -1, or a slot moving from its owner to migrate_to */
    int migrate_to;
    int tryagain;    /* TRYAGAIN answers still to give */
    int clusterdown; /* CLUSTERDOWN answers still to give */
    int primary;     /* the sentinel's answer */
    redis_topology_t *t;
    redis_client_t *c, *c2;
    fake_replies_t rep;
    int masters_up, masters_down;
    char last_master[64];
    size_t msgs;
    char msg[64];
    int confirmed; /* subscribed callbacks */
    char confirmed_ch[64];
    int unconfirmed; /* unconfirmed callbacks */
    char unconfirmed_ch[64];
    int downs; /* state callbacks saying down */
    int closed;
    bool up;
};

static bool is(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

static size_t seen(fx_t *f, int idx, const char *line)
{
    return fake_count(f->n[idx].srv, line);
}

static void send_slots(fx_t *f, fake_conn_t *fc)
{
    buf_t b, body;
    buf_init(&b);
    buf_init(&body);
    int ranges = 0;
    for (int s = 0; s < REDIS_SLOTS;) {
        int o = f->owner[s], e = s;
        while (e + 1 < REDIS_SLOTS && f->owner[e + 1] == o)
            e++;
        if (o >= 0) {
            buf_printf(&body, "*3\r\n:%d\r\n:%d\r\n*3\r\n$9\r\n127.0.0.1\r\n:%d\r\n$2\r\nn%c\r\n",
                       s, e, fake_port(f->n[o].srv), f->n[o].name);
            ranges++;
        }
        s = e + 1;
    }
    buf_printf(&b, "*%d\r\n", ranges);
    buf_append(&b, body.data ? body.data : "", body.len);
    fake_send(fc, b.data);
    buf_free(&b);
    buf_free(&body);
}

static void reply_str(fake_conn_t *fc, const char *s)
{
    char buf[300];
    snprintf(buf, sizeof(buf), "$%zu\r\n%s\r\n", strlen(s), s);
    fake_send(fc, buf);
}

/* A data node: answers by its slot table, like a cluster master (or a single server). */
static void data_cmd(node_t *n, fake_conn_t *fc, int argc, char **argv)
{
    fx_t *f = n->f;
    void **slot_data = fake_conn_data(fc);
    if (!*slot_data)
        *slot_data = calloc(1, sizeof(bool));
    bool *asking = *slot_data; /* ASKING applies to the connection's next command */
    char buf[200];
    if (is(argv[0], "ASKING")) {
        *asking = true;
        fake_send(fc, "+OK\r\n");
        return;
    }
    if (fake_handshake(fc, argc, argv))
        return;
    if (argc == 2 && is(argv[0], "CLUSTER") && is(argv[1], "SLOTS")) {
        send_slots(f, fc);
        return;
    }
    if (is(argv[0], "SSUBSCRIBE") || is(argv[0], "SUBSCRIBE") || is(argv[0], "SUNSUBSCRIBE")) {
        unsigned slot = redis_slot(argv[1], strlen(argv[1]));
        if (argv[0][0] == 'S' && argv[0][1] == 'S' && f->owner[slot] != n->idx) {
            snprintf(buf, sizeof(buf), "-MOVED %u 127.0.0.1:%d\r\n", slot,
                     fake_port(f->n[f->owner[slot]].srv));
            fake_send(fc, buf);
            return;
        }
        fake_sub_confirm(fc,
                         is(argv[0], "SSUBSCRIBE")  ? "ssubscribe"
                         : is(argv[0], "SUBSCRIBE") ? "subscribe"
                                                    : "sunsubscribe",
                         argv[1], 1);
        return;
    }
    if ((is(argv[0], "GET") || is(argv[0], "SET")) && argc >= 2) {
        n->getter = fc;
        unsigned slot = redis_slot(argv[1], strlen(argv[1]));
        bool was_asking = *asking;
        *asking = false;
        if (f->tryagain > 0) {
            f->tryagain--;
            fake_send(fc, "-TRYAGAIN Multiple keys request during rehashing of slot\r\n");
            return;
        }
        if (f->clusterdown > 0) {
            f->clusterdown--;
            fake_send(fc, "-CLUSTERDOWN The cluster is down\r\n");
            return;
        }
        if ((int)slot == f->migrating_slot && f->owner[slot] == n->idx) {
            snprintf(buf, sizeof(buf), "-ASK %u 127.0.0.1:%d\r\n", slot,
                     fake_port(f->n[f->migrate_to].srv));
            fake_send(fc, buf);
            return;
        }
        bool importing = (int)slot == f->migrating_slot && f->migrate_to == n->idx && was_asking;
        if (f->owner[slot] >= 0 && f->owner[slot] != n->idx && !importing) {
            snprintf(buf, sizeof(buf), "-MOVED %u 127.0.0.1:%d\r\n", slot,
                     fake_port(f->n[f->owner[slot]].srv));
            fake_send(fc, buf);
            return;
        }
        snprintf(buf, sizeof(buf), "%c:%s", n->name, argv[1]);
        reply_str(fc, buf);
        return;
    }
    if (is(argv[0], "CLIENT") && argc == 3 && is(argv[1], "UNBLOCK")) {
        fake_send(fc, ":1\r\n");
        return;
    }
    fake_send(fc, "-ERR unknown command\r\n");
}

/* The sentinel: knows one primary, confirms +switch-master subscriptions. */
static void sentinel_cmd(node_t *n, fake_conn_t *fc, int argc, char **argv)
{
    fx_t *f = n->f;
    char buf[128];
    if (argc == 3 && is(argv[0], "SENTINEL")) {
        if (strcmp(argv[2], "mymaster") != 0) {
            fake_send(fc, "*-1\r\n");
            return;
        }
        char port[16];
        snprintf(port, sizeof(port), "%d", fake_port(f->n[f->primary].srv));
        snprintf(buf, sizeof(buf), "*2\r\n$9\r\n127.0.0.1\r\n$%zu\r\n%s\r\n", strlen(port), port);
        fake_send(fc, buf);
    } else if (is(argv[0], "SUBSCRIBE")) {
        *fake_conn_data(fc) = strdup("events"); /* marks the pub/sub connection */
        fake_sub_confirm(fc, "subscribe", argv[1], 1);
    } else if (!fake_handshake(fc, argc, argv)) {
        fake_send(fc, "-ERR unknown command\r\n");
    }
}

static void on_node_cmd(fake_conn_t *fc, int argc, char **argv, size_t *lens, void *arg)
{
    (void)lens;
    node_t *n = arg;
    if (n->name == 'S')
        sentinel_cmd(n, fc, argc, argv);
    else
        data_cmd(n, fc, argc, argv);
}

/* ---- client callbacks ---- */

static void on_state(redis_client_t *c, bool up, void *arg)
{
    fx_t *f = arg;
    if (c == f->c) {
        f->up = up;
        f->downs += !up;
    }
}

static void on_master(redis_client_t *c, redis_node_t *n, bool up, void *arg)
{
    fx_t *f = arg;
    if (c != f->c)
        return;
    if (up)
        f->masters_up++;
    else
        f->masters_down++;
    snprintf(f->last_master, sizeof(f->last_master), "%s", redis_node_addr(n));
}

static void on_message(redis_client_t *c, const redis_push_t *m, void *arg)
{
    (void)c;
    fx_t *f = arg;
    f->msgs++;
    snprintf(f->msg, sizeof(f->msg), "%.*s", (int)m->len, m->data);
}

static void on_subscribed(redis_client_t *c, redis_sub_kind_t kind, const char *ch, size_t len,
                          void *arg)
{
    (void)c;
    (void)kind;
    fx_t *f = arg;
    f->confirmed++;
    snprintf(f->confirmed_ch, sizeof(f->confirmed_ch), "%.*s", (int)len, ch);
}

static void on_unconfirmed(redis_client_t *c, redis_sub_kind_t kind, const char *ch, size_t len,
                           void *arg)
{
    (void)c;
    (void)kind;
    fx_t *f = arg;
    f->unconfirmed++;
    snprintf(f->unconfirmed_ch, sizeof(f->unconfirmed_ch), "%.*s", (int)len, ch);
}

static const redis_client_cbs_t cbs = {.state = on_state,
                                       .master = on_master,
                                       .message = on_message,
                                       .subscribed = on_subscribed,
                                       .unconfirmed = on_unconfirmed};

/* ---- fixture ---- */

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    const char names[NODES] = {'A', 'B', 'S'};
    for (int i = 0; i < NODES; i++) {
        f->n[i] = (node_t){.f = f, .idx = i, .name = names[i]};
        f->n[i].srv = fake_new(&f->loop, on_node_cmd, &f->n[i]);
    }
    memset(f->owner, 0, sizeof(f->owner)); /* A serves everything */
    f->migrating_slot = -1;
    *state = f;
    return 0;
}

static void on_closed(void *arg)
{
    ((fx_t *)arg)->closed++;
}

static bool closed_all(void *arg)
{
    fx_t *f = arg;
    return f->closed == (f->c != NULL) + (f->c2 != NULL) + (f->t != NULL);
}

static bool clients_closed(void *arg)
{
    fx_t *f = arg;
    return f->closed == (f->c != NULL) + (f->c2 != NULL);
}

static int teardown(void **state)
{
    fx_t *f = *state;
    if (f->c)
        redis_client_close(f->c, on_closed, f);
    if (f->c2)
        redis_client_close(f->c2, on_closed, f);
    assert_true(fake_run_until(&f->loop, clients_closed, f, FAKE_WAIT_MS));
    if (f->t)
        redis_topology_close(f->t, on_closed, f);
    assert_true(fake_run_until(&f->loop, closed_all, f, FAKE_WAIT_MS));
    for (int i = 0; i < NODES; i++)
        fake_free(f->n[i].srv);
    assert_int_equal(fake_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static void topology(fx_t *f, redis_mode_t mode, int first, int count)
{
    redis_addr_t nodes[NODES];
    for (int i = 0; i < count; i++) {
        snprintf(nodes[i].host, sizeof(nodes[i].host), "127.0.0.1");
        nodes[i].port = fake_port(f->n[first + i].srv);
    }
    redis_topology_opts_t o = {.mode = mode,
                               .nodes = nodes,
                               .nnodes = (size_t)count,
                               .sentinel_name = "mymaster",
                               .refresh_ms = 100};
    o.addr = nodes[0];
    o.conn.connect_timeout_ms = 500;
    o.conn.command_timeout_ms = 500;
    o.conn.backoff_min_ms = 10;
    o.conn.backoff_max_ms = 50;
    buf_t err;
    buf_init(&err);
    assert_int_equal(redis_topology_new(&f->t, &f->loop, &o, &err), 0);
    buf_free(&err);
    f->c = redis_client_new(f->t, "test", &cbs, f);
}

static bool is_up(void *arg)
{
    return ((fx_t *)arg)->up;
}

static bool got_reply(void *arg)
{
    return ((fx_t *)arg)->rep.replies + ((fx_t *)arg)->rep.nulls > 0;
}

#define WAIT(fn) assert_true(fake_run_until(&f->loop, fn, f, FAKE_WAIT_MS))

static void get(fx_t *f, const char *key)
{
    f->rep.replies = f->rep.nulls = 0;
    const char *argv[2] = {"GET", key};
    assert_int_equal(
        redis_client_command(f->c, key, strlen(key), fake_on_reply, &f->rep, 2, argv, NULL), 0);
    WAIT(got_reply);
}

/* ---- tests ---- */

static bool got_msg(void *arg)
{
    return ((fx_t *)arg)->msgs > 0;
}

static bool subscribed_a(void *arg)
{
    return seen(arg, 0, "SUBSCRIBE news") == 1;
}

static void test_single_server(void **state)
{
    fx_t *f = *state;
    topology(f, REDIS_MODE_SINGLE, 0, 1);
    const char *argv[1] = {"PING"};
    assert_int_equal(redis_client_command(f->c, NULL, 0, fake_on_reply, &f->rep, 1, argv, NULL),
                     -ENOTCONN);
    WAIT(is_up);
    assert_int_equal(f->masters_up, 1);
    get(f, "k");
    assert_string_equal(f->rep.last, "A:k");
    assert_int_equal(redis_client_subscribe(f->c, REDIS_SUB_CHANNEL, "news", 4), 0);
    assert_int_equal(redis_client_subscribe(f->c, 9, "x", 1), -EINVAL);
    WAIT(subscribed_a);
    /* the subscription has a connection of its own, not the command one */
    fake_send(fake_last(f->n[0].srv), "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n");
    WAIT(got_msg);
    assert_string_equal(f->msg, "hello");
    assert_int_equal(fake_accepted(f->n[0].srv), 2);
}

static bool confirmed_once(void *arg)
{
    return ((fx_t *)arg)->confirmed == 1;
}

/* A single server's every-primary subscription wanted before the primary is announced (as the
 * key events are, right after the client is made) is placed once it is, and confirmed. */
static void test_single_server_masters_subscription_and_confirmation(void **state)
{
    fx_t *f = *state;
    topology(f, REDIS_MODE_SINGLE, 0, 1);
    const char *ch = "__keyevent@0__:xadd";
    assert_int_equal(redis_client_subscribe_masters(f->c, REDIS_SUB_CHANNEL, ch, strlen(ch)), 0);
    WAIT(confirmed_once);
    assert_string_equal(f->confirmed_ch, ch);
    assert_int_equal(seen(f, 0, "SUBSCRIBE __keyevent@0__:xadd"), 1);
    fake_send(fake_last(f->n[0].srv),
              "*3\r\n$7\r\nmessage\r\n$19\r\n__keyevent@0__:xadd\r\n$4\r\nroom\r\n");
    WAIT(got_msg);
    assert_string_equal(f->msg, "room");
}

static bool down_then_up(void *arg)
{
    fx_t *f = arg;
    return f->downs == 1 && f->up;
}

static bool unconfirmed_once(void *arg)
{
    return ((fx_t *)arg)->unconfirmed == 1;
}

static bool confirmed_twice(void *arg)
{
    return ((fx_t *)arg)->confirmed == 2;
}

/* A subscription outlives the loss of the command connection (the client reports itself down,
 * the subscription stays in effect and is neither re-sent nor confirmed again); the loss of its
 * own connection unconfirms it, and it is confirmed again on the next. */
static void test_subscription_outlives_the_command_connection(void **state)
{
    fx_t *f = *state;
    topology(f, REDIS_MODE_SINGLE, 0, 1);
    assert_int_equal(redis_client_subscribe(f->c, REDIS_SUB_CHANNEL, "news", 4), 0);
    WAIT(confirmed_once);
    WAIT(is_up);
    get(f, "k");
    fake_conn_t *sub = fake_last(f->n[0].srv); /* the newest: the pub/sub connection */
    assert_ptr_not_equal(sub, f->n[0].getter);
    fake_drop(f->n[0].getter);
    WAIT(down_then_up);
    assert_int_equal(f->unconfirmed, 0);
    assert_int_equal(f->confirmed, 1);
    assert_int_equal(seen(f, 0, "SUBSCRIBE news"), 1);
    fake_send(sub, "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nstill\r\n");
    WAIT(got_msg);
    assert_string_equal(f->msg, "still");
    fake_drop(sub);
    WAIT(unconfirmed_once);
    assert_string_equal(f->unconfirmed_ch, "news");
    WAIT(confirmed_twice);
    assert_int_equal(seen(f, 0, "SUBSCRIBE news"), 2);
}

static bool is_unblocked(void *arg)
{
    fx_t *f = arg;
    return fake_count_prefix(f->n[0].srv, "CLIENT UNBLOCK 100") == 1;
}

static bool both_up(void *arg)
{
    fx_t *f = arg;
    return f->up && redis_client_up(f->c2);
}

static void test_unblock_through_another_client(void **state)
{
    fx_t *f = *state;
    topology(f, REDIS_MODE_SINGLE, 0, 1);
    f->c2 = redis_client_new(f->t, "svc", NULL, NULL);
    WAIT(both_up);
    assert_int_equal(redis_client_unblock(f->c2, f->c, "k", 1), 0);
    WAIT(is_unblocked);
}

static bool masters_two(void *arg)
{
    fx_t *f = arg;
    return f->masters_up == 2;
}

static bool saw_b_master(void *arg)
{
    fx_t *f = arg;
    return f->masters_up >= 2;
}

static void test_cluster_follows_moved(void **state)
{
    fx_t *f = *state;
    topology(f, REDIS_MODE_CLUSTER, 0, 1);
    const char *argv[2] = {"GET", "k"};
    assert_int_equal(redis_client_command(f->c, "k", 1, fake_on_reply, &f->rep, 2, argv, NULL),
                     -ENOTCONN);
    WAIT(is_up);
    assert_int_equal(f->masters_up, 1);
    get(f, "k");
    assert_string_equal(f->rep.last, "A:k");
    /* the slot moves to B behind the client's back */
    f->owner[redis_slot("k", 1)] = 1;
    get(f, "k");
    assert_string_equal(f->rep.last, "B:k");
    redis_client_stats_t s;
    redis_client_stats(f->c, &s);
    assert_int_equal(s.moved, 1);
    WAIT(saw_b_master); /* the refresh confirms B as a master */
    get(f, "k");
    assert_string_equal(f->rep.last, "B:k");
    redis_client_stats(f->c, &s);
    assert_int_equal(s.moved, 1); /* straight to B now */
    assert_true(redis_topology_changes(f->t) >= 2);
}

static void test_cluster_ask_goes_once_with_asking(void **state)
{
    fx_t *f = *state;
    for (int s = 8192; s < REDIS_SLOTS; s++)
        f->owner[s] = 1;
    topology(f, REDIS_MODE_CLUSTER, 0, 1);
    WAIT(is_up);
    assert_int_equal(f->masters_up, 2);
    unsigned slot = redis_slot("k", 1); /* 7629: served by A */
    assert_int_equal(f->owner[slot], 0);
    f->migrating_slot = (int)slot;
    f->migrate_to = 1;
    get(f, "k");
    assert_string_equal(f->rep.last, "B:k");
    assert_int_equal(seen(f, 1, "ASKING"), 1);
    assert_int_equal(seen(f, 1, "GET k"), 1);
    get(f, "k"); /* ASK changes no map: A first again */
    assert_int_equal(seen(f, 1, "ASKING"), 2);
    redis_client_stats_t s;
    redis_client_stats(f->c, &s);
    assert_int_equal(s.asked, 2);
    assert_int_equal(s.moved, 0);
}

static void test_cluster_retries_tryagain_and_clusterdown(void **state)
{
    fx_t *f = *state;
    topology(f, REDIS_MODE_CLUSTER, 0, 1);
    WAIT(is_up);
    f->tryagain = 2;
    get(f, "k");
    assert_string_equal(f->rep.last, "A:k");
    f->clusterdown = 2;
    get(f, "k");
    assert_string_equal(f->rep.last, "A:k");
    redis_client_stats_t s;
    redis_client_stats(f->c, &s);
    assert_int_equal(s.retried, 4);
    assert_int_equal(f->rep.nulls, 0);
}

static bool b_has_shard(void *arg)
{
    return seen(arg, 1, "SSUBSCRIBE room") >= 1;
}

static bool a_has_shard(void *arg)
{
    return seen(arg, 0, "SSUBSCRIBE room") >= 1;
}

static void test_shard_subscription_follows_its_slot(void **state)
{
    fx_t *f = *state;
    for (int s = 8192; s < REDIS_SLOTS; s++)
        f->owner[s] = 1;
    unsigned slot = redis_slot("room", 4);
    f->owner[slot] = 0;
    topology(f, REDIS_MODE_CLUSTER, 0, 1);
    assert_int_equal(redis_client_subscribe(f->c, REDIS_SUB_SHARD, "room", 4), 0);
    WAIT(a_has_shard);
    /* the slot moves to B; A tells its subscribers, as Redis 7 does */
    f->owner[slot] = 1;
    fake_conn_t *sub = fake_last(f->n[0].srv); /* the newest: the pub/sub connection */
    fake_send(sub, "*3\r\n$12\r\nsunsubscribe\r\n$4\r\nroom\r\n:0\r\n");
    WAIT(b_has_shard);
    fake_send(fake_last(f->n[1].srv), "*3\r\n$8\r\nsmessage\r\n$4\r\nroom\r\n$2\r\nhi\r\n");
    WAIT(got_msg);
    assert_string_equal(f->msg, "hi");
    redis_client_stats_t s;
    redis_client_stats(f->c, &s);
    assert_true(s.sub_moves >= 1);
}

static bool every_master_subscribed(void *arg)
{
    fx_t *f = arg;
    return seen(f, 0, "SUBSCRIBE __keyevent@0__:xadd") == 1 &&
           seen(f, 1, "SUBSCRIBE __keyevent@0__:xadd") == 1;
}

static bool b_gone(void *arg)
{
    return ((fx_t *)arg)->masters_down == 1;
}

static void test_masters_subscriptions_and_departures(void **state)
{
    fx_t *f = *state;
    for (int s = 8192; s < REDIS_SLOTS; s++)
        f->owner[s] = 1;
    topology(f, REDIS_MODE_CLUSTER, 0, 1);
    WAIT(masters_two);
    const char *ch = "__keyevent@0__:xadd";
    assert_int_equal(redis_client_subscribe_masters(f->c, REDIS_SUB_CHANNEL, ch, strlen(ch)), 0);
    assert_int_equal(redis_client_subscribe_masters(f->c, REDIS_SUB_SHARD, ch, strlen(ch)),
                     -EINVAL);
    WAIT(every_master_subscribed);
    uint64_t changed = redis_client_primaries_changed(f->c);
    /* B leaves: its slots go back to A */
    memset(f->owner, 0, sizeof(f->owner));
    WAIT(b_gone);
    assert_int_equal(redis_client_primaries_changed(f->c), changed + 1);
    char b[32];
    snprintf(b, sizeof(b), "127.0.0.1:%d", fake_port(f->n[1].srv));
    assert_string_equal(f->last_master, b);
    get(f, "zzz");
    assert_string_equal(f->rep.last, "A:zzz");
}

static bool on_b(void *arg)
{
    fx_t *f = arg;
    char b[32];
    snprintf(b, sizeof(b), "127.0.0.1:%d", fake_port(f->n[1].srv));
    return f->up && redis_client_node_for_key(f->c, "k", 1) &&
           strcmp(redis_node_addr(redis_client_node_for_key(f->c, "k", 1)), b) == 0;
}

static void test_sentinel_failover_moves_the_connections(void **state)
{
    fx_t *f = *state;
    f->primary = 0;
    memset(f->owner, 0xff, sizeof(f->owner)); /* not a cluster: no MOVED */
    topology(f, REDIS_MODE_SENTINEL, 2, 1);
    WAIT(is_up);
    get(f, "k");
    assert_string_equal(f->rep.last, "A:k");
    assert_true(seen(f, 0, "ROLE") >= 1); /* confirmed before use */
    uint64_t changed = redis_client_primaries_changed(f->c);
    assert_true(changed >= 1); /* A announced */
    /* failover: the sentinel names B and says so on +switch-master */
    f->primary = 1;
    fake_conn_t *events = NULL;
    for (int i = 0; i < 4 && !events; i++) {
        fake_conn_t *fc = fake_last(f->n[2].srv);
        if (fc && *fake_conn_data(fc))
            events = fc;
        else
            fake_run_for(&f->loop, 10);
    }
    char msg[128], push[256];
    snprintf(msg, sizeof(msg), "mymaster 127.0.0.1 %d 127.0.0.1 %d", fake_port(f->n[0].srv),
             fake_port(f->n[1].srv));
    snprintf(push, sizeof(push), "*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$%zu\r\n%s\r\n",
             strlen(msg), msg);
    if (events)
        fake_send(events, push); /* else the periodic check finds it */
    WAIT(on_b);
    get(f, "k");
    assert_string_equal(f->rep.last, "B:k");
    assert_int_equal(f->masters_up, 1); /* the same primary, a new address */
    assert_int_equal(redis_topology_changes(f->t), 1);
    /* ... counted as a change of the primaries, by the time commands go to B */
    assert_int_equal(redis_client_primaries_changed(f->c), changed + 1);
}

static void test_close_with_a_parked_redirect(void **state)
{
    fx_t *f = *state;
    topology(f, REDIS_MODE_CLUSTER, 0, 1);
    WAIT(is_up);
    f->clusterdown = 1000;
    const char *argv[2] = {"GET", "k"};
    f->rep.replies = f->rep.nulls = 0;
    assert_int_equal(redis_client_command(f->c, "k", 1, fake_on_reply, &f->rep, 2, argv, NULL), 0);
    fake_run_for(&f->loop, 100);
    if (f->rep.nulls + f->rep.replies)
        fail_msg("early answer: nulls %zu last '%s'", f->rep.nulls, f->rep.last);
    redis_client_close(f->c, on_closed, f);
    assert_int_equal(redis_client_command(f->c, "k", 1, fake_on_reply, &f->rep, 2, argv, NULL),
                     -ESHUTDOWN);
    WAIT(got_reply);
    /* parked between retries: NULL; in flight: its answer, awaited by the graceful close */
    assert_int_equal(f->rep.nulls + f->rep.replies, 1);
    if (f->rep.replies)
        assert_string_equal(f->rep.last, "CLUSTERDOWN The cluster is down");
    assert_true(fake_run_until(&f->loop, clients_closed, f, FAKE_WAIT_MS));
    f->c = NULL; /* closed: teardown closes the topology only */
    f->closed = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_single_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_single_server_masters_subscription_and_confirmation,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscription_outlives_the_command_connection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unblock_through_another_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_follows_moved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_ask_goes_once_with_asking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_retries_tryagain_and_clusterdown, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_shard_subscription_follows_its_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_masters_subscriptions_and_departures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sentinel_failover_moves_the_connections, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_with_a_parked_redirect, setup, teardown),
    };
    return cmocka_run_group_tests_name("redis_client", tests, NULL, NULL);
}
