/* redis_client: see redis_client.h. */
#include "common/redis/redis_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/redis/redis_slot.h"
#include "common/strmap.h"
#include "common/xalloc.h"

#define MAX_REDIRECTS 5
#define RETRY_WINDOW_MS 10000 /* TRYAGAIN/CLUSTERDOWN and waits for a redirect's node */
#define RETRY_FIRST_MS 50
#define RETRY_MAX_MS 1000
#define TICK_MS 100
#define EVERY_FLAG 0x80 /* in a subscription key: on every primary */

struct redis_node {
    redis_client_t *c;
    redis_node_t *next;
    redis_addr_t addr;
    char label[272]; /* "host:port" */
    redis_conn_t *cmd;
    redis_conn_t *sub; /* created with the first subscription placed here */
    bool master;       /* announced through the master callback */
    bool dropped;      /* out of the list, connections closing */
    int open;          /* connections not yet released */
};

typedef struct csub {
    redis_sub_kind_t kind;
    bool every;
    redis_node_t *on; /* where it is wanted (not `every`); NULL: to be placed */
    size_t len;
    char ch[];
} csub_t;

/* A CLUSTER command, kept (formatted) until its final answer, for redirects and retries. */
typedef struct creq {
    redis_client_t *c;
    struct creq *next;
    redis_reply_fn cb;
    void *arg;
    char *cmd;
    size_t len;
    int slot; /* -1: any primary */
    uint32_t block_ms;
    redis_addr_t target; /* MOVED/ASK destination or the fixed node; host "" = by slot */
    redis_addr_t sent;   /* where the last attempt went */
    bool fixed;          /* to one node: never redirected */
    bool asking;
    uint8_t redirects, retries;
    uint64_t due_ms, deadline_ms;
} creq_t;

struct redis_client {
    redis_topology_t *t;
    uv_loop_t *loop;
    redis_mode_t mode;
    char *name;
    const redis_client_cbs_t *cbs;
    void *arg;
    redis_node_t *nodes;
    strmap_t *subs; /* key: kind | EVERY_FLAG, then the channel -> csub_t */
    size_t unplaced;
    creq_t *wait; /* redirected or retried commands waiting for their node or their time */
    uv_timer_t tick;
    bool reconcile; /* run the topology change at the next tick */
    bool up;
    bool closing;
    int parts; /* the timer + live nodes */
    redis_client_stats_t stats;
    uint64_t primaries_changed; /* see redis_client_primaries_changed */
    _Atomic uint64_t *reconnects;
    void (*done)(void *arg);
    void *done_arg;
};

static void on_topology(void *arg);
static void on_tick(uv_timer_t *t);
static void place_subs(redis_client_t *c);
static void dispatch(creq_t *q);

/* ---- lifecycle plumbing ---- */

static void part_done(redis_client_t *c)
{
    if (--c->parts)
        return;
    void (*done)(void *) = c->done;
    void *done_arg = c->done_arg;
    strmap_free(c->subs);
    free(c->name);
    free(c);
    if (done)
        done(done_arg);
}

static void on_tick_closed(uv_handle_t *h)
{
    part_done(h->data);
}

static void on_conn_closed(void *arg)
{
    redis_node_t *n = arg;
    if (--n->open)
        return;
    redis_client_t *c = n->c;
    free(n);
    part_done(c);
}

static void kick(redis_client_t *c)
{
    if (!c->closing && !uv_is_active((uv_handle_t *)&c->tick))
        uv_timer_start(&c->tick, on_tick, 0, 0);
}

/* ---- state ---- */

static bool node_up(const redis_node_t *n)
{
    return redis_conn_up(n->cmd) && (!n->sub || redis_conn_up(n->sub));
}

static bool compute_up(const redis_client_t *c)
{
    if (c->closing)
        return false;
    if (c->mode == REDIS_MODE_CLUSTER) {
        const redis_slotmap_t *m = redis_topology_slotmap(c->t);
        if (!m || !redis_slotmap_complete(m))
            return false;
    }
    bool any = false;
    for (const redis_node_t *n = c->nodes; n; n = n->next) {
        if (!n->master)
            continue;
        any = true;
        if (!node_up(n))
            return false;
    }
    return any;
}

static void update_state(redis_client_t *c)
{
    bool up = compute_up(c);
    if (up == c->up)
        return;
    c->up = up;
    if (c->cbs && c->cbs->state)
        c->cbs->state(c, up, c->arg);
}

/* ---- nodes ---- */

static void on_cmd_event(redis_conn_t *conn, redis_conn_event_t ev, void *arg);
static void on_sub_event(redis_conn_t *conn, redis_conn_event_t ev, void *arg);
static void on_message(redis_conn_t *conn, const redis_push_t *m, void *arg);
static void on_sub_lost(redis_conn_t *conn, redis_sub_kind_t kind, const char *ch, size_t len,
                        const redisReply *err, void *arg);
static void on_subscribed(redis_conn_t *conn, redis_sub_kind_t kind, const char *ch, size_t len,
                          void *arg);

static const redis_conn_cbs_t cmd_cbs = {.event = on_cmd_event};
static const redis_conn_cbs_t sub_cbs = {.event = on_sub_event,
                                         .message = on_message,
                                         .sub_lost = on_sub_lost,
                                         .subscribed = on_subscribed};

static bool same_addr(const redis_addr_t *a, const redis_addr_t *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static redis_conn_t *new_conn(redis_client_t *c, redis_node_t *n, const redis_conn_cbs_t *cbs)
{
    redis_conn_opts_t o;
    redis_topology_conn_opts(c->t, c->name, &o);
    redis_conn_t *conn =
        redis_conn_new(c->loop, n->addr.host[0] ? n->addr.host : NULL, n->addr.port, &o, cbs, n);
    redis_conn_count_reconnects(conn, c->reconnects);
    n->open++;
    return conn;
}

static redis_node_t *find_node(redis_client_t *c, const redis_addr_t *a)
{
    for (redis_node_t *n = c->nodes; n; n = n->next) {
        if (same_addr(&n->addr, a))
            return n;
    }
    return NULL;
}

static void set_label(redis_node_t *n)
{
    redis_addr_format(&n->addr, n->label, sizeof(n->label));
}

/* The node for addr, created (command connection started) when new. host "" = not known yet. */
static redis_node_t *get_node(redis_client_t *c, const redis_addr_t *a)
{
    redis_node_t *n = find_node(c, a);
    if (n)
        return n;
    n = xcalloc(1, sizeof(*n));
    n->c = c;
    n->addr = *a;
    set_label(n);
    n->cmd = new_conn(c, n, &cmd_cbs);
    n->next = c->nodes;
    c->nodes = n;
    c->parts++;
    return n;
}

static redis_conn_t *sub_conn(redis_node_t *n)
{
    if (!n->sub)
        n->sub = new_conn(n->c, n, &sub_cbs);
    return n->sub;
}

static void announce(redis_client_t *c, redis_node_t *n, bool up)
{
    if (n->master == up)
        return;
    n->master = up;
    c->primaries_changed++;
    if (c->cbs && c->cbs->master && !c->closing)
        c->cbs->master(c, n, up, c->arg);
}

static void unplace_from(redis_client_t *c, redis_node_t *gone);
static void unconfirm_on(redis_client_t *c, redis_node_t *n);

/* Takes n out of the client: its connections close (replies in flight still delivered). */
static void drop_node(redis_client_t *c, redis_node_t *n)
{
    announce(c, n, false);
    for (redis_node_t **p = &c->nodes; *p; p = &(*p)->next) {
        if (*p == n) {
            *p = n->next;
            break;
        }
    }
    n->dropped = true;
    if (n->sub && redis_conn_up(n->sub))
        unconfirm_on(c, n);
    unplace_from(c, n);
    redis_conn_close(n->cmd, on_conn_closed, n);
    if (n->sub)
        redis_conn_close(n->sub, on_conn_closed, n);
}

/* ---- routing ---- */

/* The primary serving slot (any primary for -1), created when the map names a new one. */
static redis_node_t *route(redis_client_t *c, int slot)
{
    if (c->mode != REDIS_MODE_CLUSTER)
        return c->nodes;
    const redis_slotmap_t *m = redis_topology_slotmap(c->t);
    if (slot < 0) {
        redis_node_t *any = NULL;
        for (redis_node_t *n = c->nodes; n; n = n->next) {
            if (n->master && (!any || (redis_conn_up(n->cmd) && !redis_conn_up(any->cmd))))
                any = n;
        }
        return any;
    }
    int owner = m ? redis_slotmap_owner(m, (unsigned)slot) : -1;
    return owner < 0 ? NULL : get_node(c, redis_slotmap_addr(m, (size_t)owner));
}

static redis_node_t *route_req(creq_t *q)
{
    if (q->target.host[0])
        return get_node(q->c, &q->target);
    return route(q->c, q->slot);
}

static void creq_free(creq_t *q)
{
    free(q->cmd);
    free(q);
}

static void deliver(creq_t *q, const redisReply *r)
{
    if (q->cb)
        q->cb(r, q->arg);
    creq_free(q);
}

static void park(creq_t *q, uint32_t delay_ms)
{
    redis_client_t *c = q->c;
    q->due_ms = uv_now(c->loop) + delay_ms;
    q->next = c->wait;
    c->wait = q;
    kick(c);
}

static void on_creq_reply(const redisReply *r, void *arg)
{
    creq_t *q = arg;
    redis_client_t *c = q->c;
    redis_redirect_t rd;
    redis_fault_t f = c->closing || q->fixed ? REDIS_FAULT_NONE : redis_reply_fault(r, &rd);
    uint64_t now = uv_now(c->loop);
    switch (f) {
    case REDIS_FAULT_MOVED:
    case REDIS_FAULT_ASK:
        if (!rd.addr.host[0])
            snprintf(rd.addr.host, sizeof(rd.addr.host), "%s", q->sent.host);
        if (f == REDIS_FAULT_MOVED)
            redis_topology_moved(c->t, &rd, q->sent.host);
        if (q->redirects++ >= MAX_REDIRECTS)
            break;
        if (f == REDIS_FAULT_MOVED)
            c->stats.moved++;
        else
            c->stats.asked++;
        q->target = rd.addr;
        q->asking = f == REDIS_FAULT_ASK;
        dispatch(q);
        return;
    case REDIS_FAULT_CLUSTERDOWN:
    case REDIS_FAULT_TRYAGAIN:
    case REDIS_FAULT_LOADING:
    case REDIS_FAULT_MASTERDOWN:
        if (now >= q->deadline_ms)
            break;
        if (f == REDIS_FAULT_CLUSTERDOWN)
            redis_topology_refresh(c->t);
        c->stats.retried++;
        uint32_t delay = RETRY_FIRST_MS << (q->retries < 5 ? q->retries : 5);
        q->retries++;
        q->target.host[0] = '\0';
        q->asking = false;
        park(q, delay > RETRY_MAX_MS ? RETRY_MAX_MS : delay);
        return;
    default:
        break;
    }
    if (!r && !c->closing)
        redis_topology_refresh(c->t); /* a lost connection may mean a failover */
    deliver(q, r);
}

/* Sends q where it belongs now, or parks it until that node is up (bounded by its deadline). */
static void dispatch(creq_t *q)
{
    redis_client_t *c = q->c;
    if (c->closing) {
        deliver(q, NULL);
        return;
    }
    redis_node_t *n = route_req(q);
    if (n && redis_conn_up(n->cmd)) {
        q->sent = n->addr;
        bool asking = q->asking;
        q->asking = false;
        if (redis_conn_send(n->cmd, q->cmd, q->len, q->block_ms, asking, on_creq_reply, q) == 0)
            return;
        q->asking = asking;
    }
    park(q, RETRY_FIRST_MS);
}

static void run_waiting(redis_client_t *c)
{
    creq_t *list = c->wait;
    c->wait = NULL;
    uint64_t now = uv_now(c->loop);
    while (list) {
        creq_t *q = list;
        list = q->next;
        q->next = NULL;
        if (now >= q->deadline_ms) {
            c->stats.expired++;
            deliver(q, NULL);
        } else if (now >= q->due_ms) {
            dispatch(q);
        } else {
            q->next = c->wait;
            c->wait = q;
        }
    }
}

static int cluster_send(redis_client_t *c, redis_node_t *fixed, int slot, uint32_t block_ms,
                        redis_reply_fn cb, void *arg, int argc, const char **argv,
                        const size_t *lens)
{
    redis_node_t *n = fixed ? fixed : route(c, slot);
    if (!n || !redis_conn_up(n->cmd))
        return -ENOTCONN;
    creq_t *q = xcalloc(1, sizeof(*q));
    int len = redisFormatCommandArgv(&q->cmd, argc, argv, lens);
    if (len < 0)
        xalloc_die(0);
    q->len = (size_t)len;
    q->c = c;
    q->cb = cb;
    q->arg = arg;
    q->slot = slot;
    q->block_ms = block_ms;
    q->fixed = fixed != NULL;
    if (fixed)
        q->target = fixed->addr;
    q->sent = n->addr;
    q->deadline_ms = uv_now(c->loop) + RETRY_WINDOW_MS + block_ms;
    int rc = redis_conn_send(n->cmd, q->cmd, q->len, block_ms, false, on_creq_reply, q);
    if (rc)
        creq_free(q);
    return rc;
}

int redis_client_command_blocking(redis_client_t *c, const char *key, size_t key_len,
                                  uint32_t block_ms, redis_reply_fn cb, void *arg, int argc,
                                  const char **argv, const size_t *lens)
{
    if (c->closing)
        return -ESHUTDOWN;
    if (c->mode != REDIS_MODE_CLUSTER)
        return redis_conn_command_blocking(c->nodes->cmd, block_ms, cb, arg, argc, argv, lens);
    int slot = key ? (int)redis_slot(key, key_len) : -1;
    return cluster_send(c, NULL, slot, block_ms, cb, arg, argc, argv, lens);
}

int redis_client_command(redis_client_t *c, const char *key, size_t key_len, redis_reply_fn cb,
                         void *arg, int argc, const char **argv, const size_t *lens)
{
    return redis_client_command_blocking(c, key, key_len, 0, cb, arg, argc, argv, lens);
}

int redis_client_command_node(redis_client_t *c, redis_node_t *n, redis_reply_fn cb, void *arg,
                              int argc, const char **argv, const size_t *lens)
{
    if (c->closing)
        return -ESHUTDOWN;
    if (n->dropped)
        return -ENOTCONN;
    if (c->mode != REDIS_MODE_CLUSTER)
        return redis_conn_command(n->cmd, cb, arg, argc, argv, lens);
    return cluster_send(c, n, -1, 0, cb, arg, argc, argv, lens);
}

int redis_client_unblock(redis_client_t *via, redis_client_t *blocked, const char *key,
                         size_t key_len)
{
    if (via->closing || blocked->closing)
        return -ESHUTDOWN;
    redis_node_t *b =
        route(blocked, key && via->mode == REDIS_MODE_CLUSTER ? (int)redis_slot(key, key_len) : -1);
    long long id = b ? redis_conn_id(b->cmd) : 0;
    redis_node_t *v = b ? find_node(via, &b->addr) : NULL;
    if (!id || !v || !redis_conn_up(v->cmd))
        return -ENOTCONN;
    char num[24];
    snprintf(num, sizeof(num), "%lld", id);
    const char *argv[3] = {"CLIENT", "UNBLOCK", num};
    return redis_conn_command(v->cmd, NULL, NULL, 3, argv, NULL);
}

redis_node_t *redis_client_node_for_key(redis_client_t *c, const char *key, size_t key_len)
{
    if (c->closing)
        return NULL;
    return route(c, c->mode == REDIS_MODE_CLUSTER ? (int)redis_slot(key, key_len) : -1);
}

/* ---- subscriptions ---- */

static void unconfirm(redis_client_t *c, const csub_t *s)
{
    if (!c->closing && c->cbs && c->cbs->unconfirmed)
        c->cbs->unconfirmed(c, s->kind, s->ch, s->len, c->arg);
}

typedef struct on_node {
    redis_client_t *c;
    redis_node_t *n;
} on_node_t;

static void unconfirm_each(const char *key, size_t len, void *value, void *arg)
{
    (void)key;
    (void)len;
    on_node_t *o = arg;
    csub_t *s = value;
    if (s->every || s->on == o->n)
        unconfirm(o->c, s);
}

/* Every subscription n's pub/sub connection held is gone with it. */
static void unconfirm_on(redis_client_t *c, redis_node_t *n)
{
    on_node_t o = {c, n};
    strmap_foreach(c->subs, unconfirm_each, &o);
}

static size_t csub_key(char *key, redis_sub_kind_t kind, bool every, const char *ch, size_t len)
{
    key[0] = (char)(kind | (every ? EVERY_FLAG : 0));
    if (len)
        memcpy(key + 1, ch, len);
    return len + 1;
}

static csub_t *csub_get(redis_client_t *c, redis_sub_kind_t kind, bool every, const char *ch,
                        size_t len)
{
    char *key = xmalloc(len + 1);
    csub_t *s = strmap_get(c->subs, key, csub_key(key, kind, every, ch, len));
    free(key);
    return s;
}

/* The node a (non-every) subscription belongs on now, NULL when unknown. */
static redis_node_t *home_of(redis_client_t *c, const csub_t *s)
{
    if (c->mode != REDIS_MODE_CLUSTER)
        return c->nodes;
    return route(c, (int)redis_slot(s->ch, s->len));
}

static void place_one(redis_client_t *c, csub_t *s)
{
    if (s->every) {
        for (redis_node_t *n = c->nodes; n; n = n->next) {
            if (n->master)
                redis_conn_subscribe(sub_conn(n), s->kind, s->ch, s->len);
        }
        return;
    }
    redis_node_t *home = home_of(c, s);
    if (home && home == s->on)
        return;
    if (s->on) {
        unconfirm(c, s);
        redis_conn_unsubscribe(s->on->sub, s->kind, s->ch, s->len);
        c->stats.sub_moves++; /* moved by a slot map change */
    }
    s->on = home;
    if (home)
        redis_conn_subscribe(sub_conn(home), s->kind, s->ch, s->len);
    else
        c->unplaced++;
}

static void place_each(const char *key, size_t len, void *value, void *arg)
{
    (void)key;
    (void)len;
    place_one(arg, value);
}

static void place_subs(redis_client_t *c)
{
    c->unplaced = 0;
    strmap_foreach(c->subs, place_each, c);
    if (c->unplaced)
        kick(c);
}

static void unplace_each(const char *key, size_t len, void *value, void *arg)
{
    (void)key;
    (void)len;
    csub_t *s = value;
    if (s->on == arg)
        s->on = NULL;
}

static void unplace_from(redis_client_t *c, redis_node_t *gone)
{
    strmap_foreach(c->subs, unplace_each, gone);
}

static int want(redis_client_t *c, bool sub, bool every, redis_sub_kind_t kind, const char *ch,
                size_t len)
{
    if (c->closing)
        return -ESHUTDOWN;
    if ((unsigned)kind > REDIS_SUB_SHARD || (every && kind == REDIS_SUB_SHARD))
        return -EINVAL;
    char *key = xmalloc(len + 1);
    size_t klen = csub_key(key, kind, every, ch, len);
    csub_t *s = strmap_get(c->subs, key, klen);
    if (sub && !s) {
        s = xcalloc(1, sizeof(*s) + len + 1);
        s->kind = kind;
        s->every = every;
        s->len = len;
        if (len)
            memcpy(s->ch, ch, len);
        strmap_put(c->subs, key, klen, s);
        place_one(c, s);
        if (!s->every && !s->on)
            kick(c);
    } else if (!sub && s) {
        strmap_del(c->subs, key, klen);
        for (redis_node_t *n = c->nodes; n; n = n->next) {
            if (n->sub && (every || s->on == n))
                redis_conn_unsubscribe(n->sub, kind, ch, len);
        }
        free(s);
    }
    free(key);
    update_state(c);
    return 0;
}

int redis_client_subscribe(redis_client_t *c, redis_sub_kind_t kind, const char *ch, size_t len)
{
    return want(c, true, false, kind, ch, len);
}

int redis_client_unsubscribe(redis_client_t *c, redis_sub_kind_t kind, const char *ch, size_t len)
{
    return want(c, false, false, kind, ch, len);
}

int redis_client_subscribe_masters(redis_client_t *c, redis_sub_kind_t kind, const char *ch,
                                   size_t len)
{
    return want(c, true, true, kind, ch, len);
}

int redis_client_unsubscribe_masters(redis_client_t *c, redis_sub_kind_t kind, const char *ch,
                                     size_t len)
{
    return want(c, false, true, kind, ch, len);
}

/* ---- connection callbacks ---- */

static void on_cmd_event(redis_conn_t *conn, redis_conn_event_t ev, void *arg)
{
    (void)conn;
    redis_node_t *n = arg;
    redis_client_t *c = n->c;
    if (c->closing || n->dropped)
        return;
    if (ev == REDIS_CONN_UP && c->wait)
        kick(c);
    if (ev == REDIS_CONN_DOWN || ev == REDIS_CONN_NOT_PRIMARY ||
        (ev == REDIS_CONN_FAILED && c->mode == REDIS_MODE_CLUSTER))
        redis_topology_refresh(c->t);
    if (c->cbs && c->cbs->node_event && (ev == REDIS_CONN_UP || ev == REDIS_CONN_DOWN))
        c->cbs->node_event(c, n, ev, c->arg);
    update_state(c);
}

static void on_sub_event(redis_conn_t *conn, redis_conn_event_t ev, void *arg)
{
    (void)conn;
    redis_node_t *n = arg;
    if (n->c->closing || n->dropped)
        return;
    if (ev == REDIS_CONN_DOWN)
        unconfirm_on(n->c, n); /* re-sent and confirmed again once it is back */
    update_state(n->c);
}

static void on_message(redis_conn_t *conn, const redis_push_t *m, void *arg)
{
    (void)conn;
    redis_node_t *n = arg;
    redis_client_t *c = n->c;
    if (!c->closing && c->cbs && c->cbs->message)
        c->cbs->message(c, m, c->arg);
}

static void on_subscribed(redis_conn_t *conn, redis_sub_kind_t kind, const char *ch, size_t len,
                          void *arg)
{
    (void)conn;
    redis_node_t *n = arg;
    redis_client_t *c = n->c;
    if (!c->closing && !n->dropped && c->cbs && c->cbs->subscribed)
        c->cbs->subscribed(c, kind, ch, len, c->arg);
}

static void on_sub_lost(redis_conn_t *conn, redis_sub_kind_t kind, const char *ch, size_t len,
                        const redisReply *err, void *arg)
{
    (void)conn;
    redis_node_t *n = arg;
    redis_client_t *c = n->c;
    if (c->closing || n->dropped)
        return;
    redis_redirect_t rd;
    redis_fault_t f = redis_reply_fault(err, &rd);
    if (err && f == REDIS_FAULT_OTHER) {
        /* refused for good (NOPERM, a bad pattern): retrying would only repeat it */
        LOG_WARN("redis %s (%s): subscription to %.*s refused: %.200s", c->name, n->label,
                 (int)(len > 200 ? 200 : len), ch, err->str);
        return;
    }
    csub_t *s = csub_get(c, kind, false, ch, len);
    if (!s || s->on != n)
        return;
    /* the slot moved (Redis' sunsubscribe, or MOVED): placed again by the tick on the new map */
    unconfirm(c, s);
    s->on = NULL;
    c->stats.sub_moves++;
    if (f == REDIS_FAULT_MOVED)
        redis_topology_moved(c->t, &rd, n->addr.host);
    else
        redis_topology_refresh(c->t);
    c->unplaced++;
    kick(c);
}

/* ---- topology changes and the tick ---- */

static void reconcile(redis_client_t *c)
{
    if (c->mode != REDIS_MODE_CLUSTER) {
        redis_node_t *n = c->nodes;
        const redis_addr_t *p = redis_topology_primary(c->t);
        if (p && !same_addr(p, &n->addr)) {
            n->addr = *p;
            set_label(n);
            c->primaries_changed++;
            redis_conn_retarget(n->cmd, p->host, p->port, true);
            if (n->sub)
                redis_conn_retarget(n->sub, p->host, p->port, true);
        }
        announce(c, n, true);
        place_subs(c); /* `_masters` ones wanted before the primary was announced */
        return;
    }
    const redis_slotmap_t *m = redis_topology_slotmap(c->t);
    if (!m)
        return;
    for (size_t i = 0; i < redis_slotmap_count(m); i++) {
        if (redis_slotmap_is_master(m, i))
            announce(c, get_node(c, redis_slotmap_addr(m, i)), true);
    }
    for (redis_node_t *n = c->nodes, *next; n; n = next) {
        next = n->next;
        int i = redis_slotmap_find(m, &n->addr);
        bool master = i >= 0 && redis_slotmap_is_master(m, (size_t)i);
        /* a node outside the map (an ASK target with no slot yet) stays while it is busy */
        if (!master && (n->master || redis_conn_inflight(n->cmd) == 0))
            drop_node(c, n);
    }
    place_subs(c);
}

static void on_tick(uv_timer_t *t)
{
    redis_client_t *c = t->data;
    if (c->closing)
        return;
    if (c->reconcile) {
        c->reconcile = false;
        reconcile(c);
    } else if (c->unplaced) {
        place_subs(c);
    }
    run_waiting(c);
    update_state(c);
    if (c->wait || c->unplaced)
        uv_timer_start(&c->tick, on_tick, TICK_MS, 0);
}

static void on_topology(void *arg)
{
    redis_client_t *c = arg;
    c->reconcile = true;
    uv_timer_start(&c->tick, on_tick, 0, 0);
}

redis_client_t *redis_client_new(redis_topology_t *t, const char *name,
                                 const redis_client_cbs_t *cbs, void *arg)
{
    redis_client_t *c = xcalloc(1, sizeof(*c));
    c->t = t;
    c->loop = redis_topology_loop(t);
    c->mode = redis_topology_mode(t);
    c->name = xmemdup(name, strlen(name));
    c->cbs = cbs;
    c->arg = arg;
    c->subs = strmap_new();
    uv_timer_init(c->loop, &c->tick);
    c->tick.data = c;
    c->parts = 1;
    if (c->mode != REDIS_MODE_CLUSTER) {
        /* Sentinel: the node exists before its address is known; it connects once it is */
        const redis_addr_t *p = redis_topology_primary(t);
        redis_addr_t none = {.host = "", .port = 0};
        get_node(c, p ? p : &none);
    }
    redis_topology_listen(t, on_topology, c);
    on_topology(c); /* first reconcile from the loop: no callback runs from here */
    return c;
}

bool redis_client_up(const redis_client_t *c)
{
    return compute_up(c);
}

void redis_client_hold_messages(redis_client_t *c, bool hold)
{
    for (redis_node_t *n = c->nodes; n; n = n->next) {
        if (n->sub)
            redis_conn_hold_reads(n->sub, hold);
    }
}

void redis_client_each_master(redis_client_t *c, void (*fn)(redis_node_t *n, void *arg), void *arg)
{
    for (redis_node_t *n = c->nodes, *next; n; n = next) {
        next = n->next;
        if (n->master)
            fn(n, arg);
    }
}

uint64_t redis_client_primaries_changed(const redis_client_t *c)
{
    return c->primaries_changed;
}

const char *redis_node_addr(const redis_node_t *n)
{
    return n->label;
}

bool redis_node_up(const redis_node_t *n)
{
    return !n->dropped && redis_conn_up(n->cmd);
}

void redis_client_stats(const redis_client_t *c, redis_client_stats_t *out)
{
    *out = c->stats;
}

void redis_client_count_reconnects(redis_client_t *c, _Atomic uint64_t *counter)
{
    c->reconnects = counter;
    for (redis_node_t *n = c->nodes; n; n = n->next) {
        redis_conn_count_reconnects(n->cmd, counter);
        if (n->sub)
            redis_conn_count_reconnects(n->sub, counter);
    }
}

void redis_client_close(redis_client_t *c, void (*done)(void *arg), void *arg)
{
    if (c->closing)
        return;
    c->closing = true;
    c->done = done;
    c->done_arg = arg;
    redis_topology_unlisten(c->t, on_topology, c);
    while (c->wait) {
        creq_t *q = c->wait;
        c->wait = q->next;
        deliver(q, NULL);
    }
    while (c->nodes)
        drop_node(c, c->nodes);
    strmap_free_values(c->subs, NULL);
    uv_close((uv_handle_t *)&c->tick, on_tick_closed);
}
