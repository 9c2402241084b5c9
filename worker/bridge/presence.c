/* presence: see presence.h. */
#include "worker/bridge/presence.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/bridge/presence_store.h"
#include "common/bridge/rcmd.h"
#include "common/glob.h"
#include "common/log.h"
#include "common/strmap.h"
#include "common/xalloc.h"

#define SERVER_MAX 256

struct presence {
    bridge_redis_t redis;
    const cfg_t *cfg;
    stats_worker_t *stats;
    char server[SERVER_MAX];
    buf_t prefix, channel, msg;
    glob_list_t *event_rooms; /* PRESENCE_ROOMS */
    int max;                  /* MAX_CONNECTIONS_PER_USER; 0 = none */
    strmap_t *users;          /* user -> connections here (uintptr_t) */
    strmap_t *rooms;          /* room -> strmap_t of user -> connections here */
    size_t members;           /* (room, user) pairs */
    rcmd_t cmd;
    uint64_t next_beat;
    size_t sweeps;   /* silent writers being removed */
    uint64_t errors; /* unexpected replies (log sampling) */
};

typedef enum sock_state { PS_NEW, PS_WAITING, PS_COUNTED } sock_state_t;

typedef struct conn_req conn_req_t;

struct presence_sock {
    presence_t *p;
    sock_state_t state;
    conn_req_t *req; /* PS_WAITING */
    size_t len;
    char user[];
};

/* A command about a user or a room; names copied, as the socket may go meanwhile. */
struct conn_req {
    presence_t *p;
    presence_sock_t *s; /* NULL once the socket went */
    presence_done_fn done;
    void *arg;
    int delta;
    size_t room_len, user_len;
    char names[]; /* room, then user */
};

static conn_req_t *req_new(presence_t *p, int delta, const char *room, size_t room_len,
                           const char *user, size_t user_len)
{
    conn_req_t *q = xcalloc(1, sizeof(*q) + room_len + user_len + 1);
    q->p = p;
    q->delta = delta;
    q->room_len = room_len;
    q->user_len = user_len;
    memcpy(q->names, room, room_len);
    memcpy(q->names + room_len, user, user_len);
    return q;
}

static const char *req_room(const conn_req_t *q)
{
    return q->names;
}

static const char *req_user(const conn_req_t *q)
{
    return q->names + q->room_len;
}

/* Sends c; cb(reply, arg) later, or -errno now (cb never runs then). */
static int send_cmd(presence_t *p, redis_reply_fn cb, void *arg)
{
    size_t klen;
    const char **argv = rcmd_argv(&p->cmd);
    const char *key = rcmd_key(&p->cmd, &klen);
    return p->redis.command(p->redis.ctx, key, klen, cb, arg, rcmd_argc(&p->cmd), argv,
                            rcmd_lens(&p->cmd));
}

static void odd_reply(presence_t *p, const char *what, const redisReply *r)
{
    if (log_sampled(&p->errors))
        LOG_WARN("presence: %s: %s (%llu so far)", what,
                 !r                             ? "the Redis connection was lost"
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "unexpected reply",
                 (unsigned long long)p->errors);
}

presence_t *presence_new(const bridge_redis_t *redis, const cfg_t *cfg, const char *server,
                         stats_worker_t *stats)
{
    if (!cfg->presence && cfg->max_connections_per_user <= 0)
        return NULL;
    presence_t *p = xcalloc(1, sizeof(*p));
    p->redis = *redis;
    p->cfg = cfg;
    p->stats = stats;
    snprintf(p->server, sizeof(p->server), "%s", server);
    buf_init(&p->prefix);
    buf_init(&p->channel);
    buf_init(&p->msg);
    presence_prefix(&p->prefix, cfg->redis_key);
    presence_channel(&p->channel, cfg->redis_key);
    /* validated by config_load */
    if (glob_list_from_csv(cfg->presence_rooms, CONFIG_MAX_GLOBS, CONFIG_MAX_GLOB, &p->event_rooms))
        p->event_rooms = NULL;
    p->max = cfg->max_connections_per_user;
    p->users = strmap_new();
    p->rooms = strmap_new();
    rcmd_init(&p->cmd);
    return p;
}

static void free_room(void *users)
{
    strmap_free(users);
}

void presence_free(presence_t *p)
{
    if (!p)
        return;
    strmap_free_values(p->rooms, free_room);
    strmap_free(p->rooms);
    strmap_free(p->users);
    glob_list_free(p->event_rooms);
    rcmd_free(&p->cmd);
    buf_free(&p->prefix);
    buf_free(&p->channel);
    buf_free(&p->msg);
    free(p);
}

/* ---- what back ends and members are told ---- */

static void publish(presence_t *p, bool join, const char *room, size_t room_len, const char *user,
                    size_t user_len)
{
    if (!glob_list_match(p->event_rooms, room, room_len))
        return;
    presence_event_encode(&p->msg, join, room, room_len, user, user_len);
    const char *argv[] = {"PUBLISH", p->channel.data, p->msg.data};
    size_t lens[] = {7, p->channel.len, p->msg.len};
    if (p->redis.command(p->redis.ctx, NULL, 0, NULL, NULL, 3, argv, lens) == 0)
        STATS_ADD(p->stats->presence_events, 1);
    else
        odd_reply(p, "cannot publish a presence event", NULL);
}

static void state_entry(presence_t *p, const char *user, size_t len, bool online, uint64_t ts)
{
    if (!p->cfg->presence || !p->cfg->presence_stream[0])
        return;
    presence_cmd_state(&p->cmd, p->cfg->presence_stream, p->cfg->presence_stream_maxlen, user, len,
                       online, ts);
    if (send_cmd(p, NULL, NULL))
        odd_reply(p, "cannot add to PRESENCE_STREAM", NULL);
}

/* ---- users ---- */

static void user_count(presence_t *p, const char *user, size_t len, int delta)
{
    uintptr_t n = (uintptr_t)strmap_get(p->users, user, len);
    if (delta > 0 && n == 0) {
        presence_cmd_index_add(&p->cmd, p->prefix.data, p->server, 'u', user, len);
        send_cmd(p, NULL, NULL);
    }
    n = delta > 0 ? n + 1 : n ? n - 1 : 0;
    if (n)
        strmap_put(p->users, user, len, (void *)n);
    else
        strmap_del(p->users, user, len);
    STATS_SET(p->stats->presence_users, strmap_size(p->users));
}

static void user_change(presence_t *p, const char *user, size_t len, int delta);

/* A disconnect's answer: offline after the user's last connection. */
static void on_user_change(const redisReply *r, void *arg)
{
    conn_req_t *q = arg;
    presence_t *p = q->p;
    int64_t total, mine;
    uint64_t ts;
    if (presence_reply_user(r, &total, &mine, &ts) != 0)
        odd_reply(p, "a connection count was not changed", r);
    else if (total == 0 && mine >= 0)
        state_entry(p, req_user(q), q->user_len, false, ts);
    free(q);
}

/*
 * A connect's answer: online after the user's first connection, and the verdict of a waiting
 * CONNECT. No answer (a lost connection) lets it in, as when Redis cannot be reached.
 */
static void on_user_connect(const redisReply *r, void *arg)
{
    conn_req_t *q = arg;
    presence_t *p = q->p;
    presence_sock_t *s = q->s;
    int64_t total = 0, mine;
    uint64_t ts;
    bool answered = presence_reply_user(r, &total, &mine, &ts) == 0;
    if (!answered)
        odd_reply(p, "a connection is let in uncounted by Redis", r);
    if (answered && total < 0) {
        /* over the limit: nothing was counted in Redis */
        user_count(p, req_user(q), q->user_len, -1);
        STATS_ADD(p->stats->limit_rejections[STATS_LIMIT_PER_USER], 1);
        if (s) {
            s->req = NULL;
            s->state = PS_NEW;
            q->done(q->arg, false);
        }
        free(q);
        return;
    }
    if (answered && total == 1)
        state_entry(p, req_user(q), q->user_len, true, ts);
    if (s) {
        s->req = NULL;
        s->state = PS_COUNTED;
        if (q->done)
            q->done(q->arg, true);
    } else {
        /* the socket went while Redis decided: take its connection back */
        user_change(p, req_user(q), q->user_len, -1);
    }
    free(q);
}

/* Counts a connection of user here and in Redis (a connect waits for on_user_connect). */
static void user_change(presence_t *p, const char *user, size_t len, int delta)
{
    user_count(p, user, len, delta);
    presence_cmd_user_change(&p->cmd, p->prefix.data, p->server, user, len, delta, 0);
    conn_req_t *q = req_new(p, delta, "", 0, user, len);
    if (send_cmd(p, on_user_change, q))
        free(q); /* written when Redis is back */
}

presence_sock_t *presence_sock_new(presence_t *p, const char *user, size_t len)
{
    if (!p || len == 0 || len > PRESENCE_USER_MAX)
        return NULL;
    presence_sock_t *s = xcalloc(1, sizeof(*s) + len + 1);
    s->p = p;
    s->len = len;
    memcpy(s->user, user, len);
    return s;
}

const char *presence_sock_user(const presence_sock_t *s)
{
    return s->user;
}

int presence_sock_connect(presence_sock_t *s, presence_done_fn done, void *arg)
{
    presence_t *p = s->p;
    if (s->state != PS_NEW)
        return 1;
    /* counted here at once: a refusal takes it back */
    user_count(p, s->user, s->len, 1);
    presence_cmd_user_change(&p->cmd, p->prefix.data, p->server, s->user, s->len, 1, p->max);
    conn_req_t *q = req_new(p, 1, "", 0, s->user, s->len);
    q->s = s;
    q->done = p->max > 0 ? done : NULL;
    q->arg = arg;
    if (send_cmd(p, on_user_connect, q)) {
        /* Redis cannot be reached: let it in, counted here; written when Redis is back */
        free(q);
        s->state = PS_COUNTED;
        odd_reply(p, "a connection is let in uncounted by Redis", NULL);
        return 1;
    }
    s->req = q;
    s->state = PS_WAITING;
    return p->max > 0 ? 0 : 1;
}

void presence_sock_free(presence_sock_t *s)
{
    if (!s)
        return;
    if (s->state == PS_WAITING)
        s->req->s = NULL; /* its answer takes the connection back */
    else if (s->state == PS_COUNTED)
        user_change(s->p, s->user, s->len, -1);
    free(s);
}

/* ---- rooms ---- */

static void on_room_change(const redisReply *r, void *arg)
{
    conn_req_t *q = arg;
    presence_t *p = q->p;
    int64_t total, mine;
    if (presence_reply_change(r, &total, &mine) != 0)
        odd_reply(p, "a room count was not changed", r);
    else if (q->delta > 0 && total == 1)
        publish(p, true, req_room(q), q->room_len, req_user(q), q->user_len);
    else if (q->delta < 0 && total == 0 && mine >= 0)
        publish(p, false, req_room(q), q->room_len, req_user(q), q->user_len);
    free(q);
}

static void room_count(presence_t *p, const char *room, size_t room_len, const char *user,
                       size_t user_len, int delta)
{
    strmap_t *users = strmap_get(p->rooms, room, room_len);
    if (!users) {
        if (delta < 0)
            return;
        users = strmap_new();
        strmap_put(p->rooms, room, room_len, users);
        presence_cmd_index_add(&p->cmd, p->prefix.data, p->server, 'r', room, room_len);
        send_cmd(p, NULL, NULL);
    }
    uintptr_t n = (uintptr_t)strmap_get(users, user, user_len);
    if (delta < 0 && n == 0)
        return;
    if (delta > 0 && n == 0)
        p->members++;
    n = delta > 0 ? n + 1 : n - 1;
    if (n) {
        strmap_put(users, user, user_len, (void *)n);
    } else {
        strmap_del(users, user, user_len);
        p->members--;
        if (strmap_size(users) == 0) {
            strmap_del(p->rooms, room, room_len);
            strmap_free(users);
        }
    }
    STATS_SET(p->stats->presence_members, p->members);
}

static void room_change(presence_sock_t *s, const char *room, size_t len, int delta)
{
    presence_t *p = s->p;
    if (!p->cfg->presence || s->state == PS_NEW)
        return;
    room_count(p, room, len, s->user, s->len, delta);
    presence_cmd_room_change(&p->cmd, p->prefix.data, p->server, room, len, s->user, s->len, delta);
    conn_req_t *q = req_new(p, delta, room, len, s->user, s->len);
    if (send_cmd(p, on_room_change, q)) {
        free(q); /* counted here: written when Redis is back */
        odd_reply(p, "a room count is kept here until Redis is back", NULL);
    }
}

void presence_sock_join(presence_sock_t *s, const char *room, size_t len)
{
    room_change(s, room, len, 1);
}

void presence_sock_leave(presence_sock_t *s, const char *room, size_t len)
{
    room_change(s, room, len, -1);
}

/* ---- silent writers ---- */

typedef struct sweep {
    presence_t *p;
    size_t pending;
    size_t len;
    char dead[];
} sweep_t;

typedef struct sweep_item {
    sweep_t *sw;
    size_t len;
    char name[];
} sweep_item_t;

static void sweep_done(sweep_t *sw)
{
    if (--sw->pending)
        return;
    presence_t *p = sw->p;
    /* every count of the writer is gone: now its index and its heartbeat */
    presence_cmd_index_drop(&p->cmd, p->prefix.data, sw->dead, sw->len);
    send_cmd(p, NULL, NULL);
    presence_cmd_forget(&p->cmd, p->prefix.data, sw->dead, sw->len);
    send_cmd(p, NULL, NULL);
    LOG_INFO("presence: removed the counts of %.*s, silent for %d ms", (int)sw->len, sw->dead,
             p->cfg->presence_ttl_ms);
    p->sweeps--;
    free(sw);
}

static sweep_item_t *item_new(sweep_t *sw, const char *name, size_t len)
{
    sweep_item_t *it = xmalloc(sizeof(*it) + len);
    it->sw = sw;
    it->len = len;
    memcpy(it->name, name, len);
    return it;
}

typedef struct gone_ctx {
    presence_t *p;
    const sweep_item_t *room;
} gone_ctx_t;

static void on_gone(const char *user, size_t len, void *arg)
{
    gone_ctx_t *g = arg;
    STATS_ADD(g->p->stats->presence_expired, 1);
    publish(g->p, false, g->room->name, g->room->len, user, len);
}

static void on_room_clean(const redisReply *r, void *arg)
{
    sweep_item_t *it = arg;
    gone_ctx_t g = {it->sw->p, it};
    if (presence_reply_names(r, on_gone, &g) != 0)
        odd_reply(it->sw->p, "a silent writer's room was not cleaned", r);
    sweep_done(it->sw);
    free(it);
}

static void on_user_clean(const redisReply *r, void *arg)
{
    sweep_item_t *it = arg;
    presence_t *p = it->sw->p;
    int64_t total, before;
    uint64_t ts;
    if (presence_reply_user(r, &total, &before, &ts) != 0)
        odd_reply(p, "a silent writer's user was not cleaned", r);
    else if (before > 0 && total == 0)
        state_entry(p, it->name, it->len, false, ts);
    sweep_done(it->sw);
    free(it);
}

static void on_index_entry(char kind, const char *name, size_t len, void *arg)
{
    sweep_t *sw = arg;
    presence_t *p = sw->p;
    sweep_item_t *it = item_new(sw, name, len);
    if (kind == 'r')
        presence_cmd_room_clean(&p->cmd, p->prefix.data, name, len, sw->dead, sw->len);
    else
        presence_cmd_user_clean(&p->cmd, p->prefix.data, name, len, sw->dead, sw->len);
    if (send_cmd(p, kind == 'r' ? on_room_clean : on_user_clean, it) == 0)
        sw->pending++;
    else
        free(it);
}

static void on_index(const redisReply *r, void *arg)
{
    sweep_t *sw = arg;
    if (presence_reply_index(r, on_index_entry, sw) != 0) {
        odd_reply(sw->p, "a silent writer's index was not read", r);
        sw->p->sweeps--;
        free(sw);
        return;
    }
    sweep_done(sw); /* the index's own share of pending */
}

static void on_expired_name(const char *name, size_t len, void *arg)
{
    presence_t *p = arg;
    if (len == strlen(p->server) && memcmp(name, p->server, len) == 0)
        return; /* this worker, late with its own heartbeat: not dead */
    sweep_t *sw = xmalloc(sizeof(*sw) + len);
    sw->p = p;
    sw->pending = 1;
    sw->len = len;
    memcpy(sw->dead, name, len);
    presence_cmd_index_read(&p->cmd, p->prefix.data, name, len);
    if (send_cmd(p, on_index, sw) == 0)
        p->sweeps++;
    else
        free(sw);
}

static void on_expired(const redisReply *r, void *arg)
{
    presence_t *p = arg;
    p->sweeps--;
    if (presence_reply_names(r, on_expired_name, p) != 0)
        odd_reply(p, "silent writers were not listed", r);
}

void presence_tick(presence_t *p, uint64_t wall_ms)
{
    if (!p || wall_ms < p->next_beat)
        return;
    uint64_t ttl = (uint64_t)p->cfg->presence_ttl_ms;
    p->next_beat = wall_ms + ttl / 3;
    presence_cmd_heartbeat(&p->cmd, p->prefix.data, p->server, wall_ms);
    send_cmd(p, NULL, NULL);
    if (p->sweeps || wall_ms <= ttl)
        return; /* the last sweep is still going */
    presence_cmd_expired(&p->cmd, p->prefix.data, wall_ms - ttl, PRESENCE_SWEEP_BATCH);
    if (send_cmd(p, on_expired, p) == 0)
        p->sweeps++;
}

/* ---- after a reconnect ---- */

typedef struct set_ctx {
    const char **users;
    size_t *lens;
    uint64_t *counts;
    size_t n;
} set_ctx_t;

static void resync_user(const char *user, size_t len, void *value, void *arg)
{
    presence_t *p = arg;
    presence_cmd_index_add(&p->cmd, p->prefix.data, p->server, 'u', user, len);
    send_cmd(p, NULL, NULL);
    presence_cmd_user_set(&p->cmd, p->prefix.data, p->server, user, len, (uintptr_t)value);
    send_cmd(p, NULL, NULL);
}

static void collect_member(const char *user, size_t len, void *value, void *arg)
{
    set_ctx_t *c = arg;
    c->users[c->n] = user;
    c->lens[c->n] = len;
    c->counts[c->n++] = (uintptr_t)value;
}

static void resync_room(const char *room, size_t len, void *value, void *arg)
{
    presence_t *p = arg;
    strmap_t *users = value;
    size_t n = strmap_size(users);
    set_ctx_t c = {xmalloc(n * sizeof(char *)), xmalloc(n * sizeof(size_t)),
                   xmalloc(n * sizeof(uint64_t)), 0};
    strmap_foreach(users, collect_member, &c);
    presence_cmd_index_add(&p->cmd, p->prefix.data, p->server, 'r', room, len);
    send_cmd(p, NULL, NULL);
    presence_cmd_room_set(&p->cmd, p->prefix.data, p->server, room, len, c.users, c.lens, c.counts,
                          c.n);
    send_cmd(p, NULL, NULL);
    free(c.users);
    free(c.lens);
    free(c.counts);
}

void presence_resync(presence_t *p, uint64_t wall_ms)
{
    if (!p)
        return;
    p->next_beat = 0;
    presence_tick(p, wall_ms);
    strmap_foreach(p->users, resync_user, p);
    if (p->cfg->presence)
        strmap_foreach(p->rooms, resync_room, p);
}

void presence_stop(presence_t *p)
{
    if (!p)
        return;
    presence_cmd_index_drop(&p->cmd, p->prefix.data, p->server, strlen(p->server));
    send_cmd(p, NULL, NULL);
    presence_cmd_forget(&p->cmd, p->prefix.data, p->server, strlen(p->server));
    send_cmd(p, NULL, NULL);
}
