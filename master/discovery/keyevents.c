/* keyevents: see keyevents.h. */
#include "master/discovery/keyevents.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/log.h"
#include "common/redis/redis_client.h"
#include "common/xalloc.h"

#define NEEDED_FLAGS "Egt" /* E: key events; g: del; t: stream commands (xadd) */

struct keyevents {
    const cfg_t *cfg;
    redis_client_t *cl; /* CONFIG on each primary's command connection; the subscriptions */
    keyevents_fn fn;
    void *arg;
    void (*done)(void *arg);
    void *done_arg;
    bool warned_config; /* one line per process: CONFIG refused */
    unsigned confirmed; /* bit 0: xadd, bit 1: del: subscriptions in effect */
    bool config_done;   /* CONFIG GET (and SET) answered since the command connection was up */
    bool said;          /* "subscribed" logged since the last outage */
    bool refused;       /* CONFIG refused since the last outage: events may not be published */
    char chan_xadd[48];
    char chan_del[48];
    uv_loop_t *loop;
    uv_timer_t resume; /* ends a hold of the subscription's reads */
    bool held;
    keyevents_pace_t pace;
};

/* A CONFIG GET in flight, for the primary it asked. */
typedef struct config_req {
    keyevents_t *k;
    redis_node_t *node;
} config_req_t;

int keyevents_flags(const char *have, char *out, size_t cap)
{
    size_t n = strlen(have);
    if (n >= cap)
        return -ENOSPC;
    memcpy(out, have, n + 1);
    bool all = strchr(have, 'A') != NULL; /* A is the alias of every class (g and t among them) */
    int added = 0;
    for (const char *f = NEEDED_FLAGS; *f; f++) {
        if (strchr(out, *f) || (all && *f != 'E'))
            continue;
        if (n + 1 >= cap)
            return -ENOSPC;
        out[n++] = *f;
        out[n] = '\0';
        added = 1;
    }
    return added;
}

static bool is(const char *p, size_t len, const char *s)
{
    return p && len == strlen(s) && memcmp(p, s, len) == 0;
}

int keyevents_parse(int db, const redis_push_t *m, keyevent_kind_t *kind, const char **key,
                    size_t *len)
{
    if (!m || m->type != REDIS_PUSH_MESSAGE || m->kind != REDIS_SUB_CHANNEL || !m->data)
        return -EINVAL;
    char chan[48];
    snprintf(chan, sizeof(chan), "__keyevent@%d__:xadd", db);
    if (is(m->channel, m->channel_len, chan)) {
        *kind = KEYEVENT_XADD;
    } else {
        snprintf(chan, sizeof(chan), "__keyevent@%d__:del", db);
        if (!is(m->channel, m->channel_len, chan))
            return -EINVAL;
        *kind = KEYEVENT_DEL;
    }
    *key = m->data;
    *len = m->len;
    return 0;
}

/* ---- Redis ---- */

static void config_refused(keyevents_t *k, const char *what, const char *err)
{
    k->refused = true;
    if (k->warned_config)
        return;
    k->warned_config = true;
    LOG_WARN("keyspace events: %s refused (%s): make sure notify-keyspace-events includes \"%s\" "
             "in the Redis configuration, or new and deleted streams are only seen by SCAN "
             "(every DISCOVERY_INTERVAL, longer on big keyspaces)",
             what, err, NEEDED_FLAGS);
}

/* Once subscribed and Redis publishes the events (or refused to be told to): events flow. */
static void maybe_ready(keyevents_t *k)
{
    if (k->said || k->confirmed != 3 || !k->config_done)
        return;
    k->said = true;
    LOG_INFO("keyspace events: subscribed to %s and %s: new and deleted streams are seen at "
             "once",
             k->chan_xadd, k->chan_del);
    if (!k->refused)
        k->fn(KEYEVENT_UP, NULL, 0, k->arg);
}

static void config_answered(keyevents_t *k)
{
    k->config_done = true;
    maybe_ready(k);
}

static void on_config_set(const redisReply *r, void *arg)
{
    keyevents_t *k = arg;
    if (r && r->type == REDIS_REPLY_ERROR)
        config_refused(k, "CONFIG SET notify-keyspace-events", r->str);
    if (r)
        config_answered(k);
}

/* CONFIG GET answered: add the missing flags on that primary. */
static void on_config(const redisReply *r, void *arg)
{
    config_req_t q = *(config_req_t *)arg;
    free(arg);
    keyevents_t *k = q.k;
    char want[64];
    if (!r) {
        return; /* lost: asked again when its connection is back */
    } else if (r->type == REDIS_REPLY_ERROR) {
        config_refused(k, "CONFIG GET notify-keyspace-events", r->str);
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
               r->element[1]->type == REDIS_REPLY_STRING &&
               keyevents_flags(r->element[1]->str, want, sizeof(want)) == 1) {
        LOG_INFO("keyspace events: setting notify-keyspace-events to \"%s\" (was \"%s\") on %s",
                 want, r->element[1]->str, redis_node_addr(q.node));
        const char *set[] = {"CONFIG", "SET", "notify-keyspace-events", want};
        if (redis_client_command_node(k->cl, q.node, on_config_set, k, 4, set, NULL) == 0)
            return; /* ready once it answered */
    }
    config_answered(k);
}

/* A primary's command connection came up (again): make sure it publishes the events. Its loss
 * does not stop them: they come over the subscription's own connection (see on_unconfirmed). */
static void on_node_event(redis_client_t *cl, redis_node_t *n, redis_conn_event_t ev, void *arg)
{
    keyevents_t *k = arg;
    if (ev != REDIS_CONN_UP) {
        k->config_done = false;
        return;
    }
    config_req_t *q = xmalloc(sizeof(*q));
    *q = (config_req_t){k, n};
    const char *get[] = {"CONFIG", "GET", "notify-keyspace-events"};
    if (redis_client_command_node(cl, n, on_config, q, 3, get, NULL))
        free(q);
}

bool keyevents_pace_message(keyevents_pace_t *p, uint64_t now_ms, uint64_t window_ms)
{
    if (window_ms == 0)
        return false;
    if (p->count == 0 || now_ms - p->window_start >= window_ms) {
        p->window_start = now_ms;
        p->count = 0;
    }
    return ++p->count > KEYEVENTS_BURST;
}

static uint64_t hold_ms(const keyevents_t *k)
{
    return (uint64_t)k->cfg->batch_delay_ms / 2;
}

static void on_resume(uv_timer_t *t)
{
    keyevents_t *k = t->data;
    k->held = false;
    redis_client_hold_messages(k->cl, false);
}

static void on_message(redis_client_t *cl, const redis_push_t *m, void *arg)
{
    keyevents_t *k = arg;
    keyevent_kind_t kind;
    const char *key;
    size_t len;
    if (keyevents_parse(k->cfg->redis_db, m, &kind, &key, &len) != 0)
        return;
    if (!k->held && keyevents_pace_message(&k->pace, uv_now(k->loop), hold_ms(k))) {
        /* events flow: what comes next waits in the kernel and is read in one go */
        k->held = true;
        redis_client_hold_messages(cl, true);
        uv_timer_start(&k->resume, on_resume, hold_ms(k), 0);
    }
    k->fn(kind, key, len, k->arg);
}

static void on_subscribed(redis_client_t *cl, redis_sub_kind_t kind, const char *ch, size_t len,
                          void *arg)
{
    (void)cl;
    (void)kind;
    keyevents_t *k = arg;
    if (is(ch, len, k->chan_xadd))
        k->confirmed |= 1;
    else if (is(ch, len, k->chan_del))
        k->confirmed |= 2;
    maybe_ready(k);
}

/* A subscription stopped where it was confirmed: events stop until it is confirmed again. */
static void on_unconfirmed(redis_client_t *cl, redis_sub_kind_t kind, const char *ch, size_t len,
                           void *arg)
{
    (void)cl;
    (void)kind;
    keyevents_t *k = arg;
    unsigned bit = is(ch, len, k->chan_xadd) ? 1u : is(ch, len, k->chan_del) ? 2u : 0u;
    if (!(k->confirmed & bit))
        return;
    k->confirmed &= ~bit;
    bool was = k->said && !k->refused;
    if (!k->said)
        return;
    k->said = k->refused = false;
    if (was)
        k->fn(KEYEVENT_DOWN, NULL, 0, k->arg);
    LOG_WARN("keyspace events: subscription lost; new streams wait for SCAN until it is back");
}

static const redis_client_cbs_t cbs = {.node_event = on_node_event,
                                       .message = on_message,
                                       .subscribed = on_subscribed,
                                       .unconfirmed = on_unconfirmed};

keyevents_t *keyevents_new(redis_topology_t *topo, const cfg_t *cfg, keyevents_fn fn, void *arg)
{
    keyevents_t *k = xcalloc(1, sizeof(*k));
    k->cfg = cfg;
    k->fn = fn;
    k->arg = arg;
    snprintf(k->chan_xadd, sizeof(k->chan_xadd), "__keyevent@%d__:xadd", cfg->redis_db);
    snprintf(k->chan_del, sizeof(k->chan_del), "__keyevent@%d__:del", cfg->redis_db);
    k->loop = redis_topology_loop(topo);
    uv_timer_init(k->loop, &k->resume);
    k->resume.data = k;
    k->cl = redis_client_new(topo, "keyevents", &cbs, k);
    /* key events are published by the node that holds the key: every primary's */
    redis_client_subscribe_masters(k->cl, REDIS_SUB_CHANNEL, k->chan_xadd, strlen(k->chan_xadd));
    redis_client_subscribe_masters(k->cl, REDIS_SUB_CHANNEL, k->chan_del, strlen(k->chan_del));
    return k;
}

static void on_timer_closed(uv_handle_t *h)
{
    keyevents_t *k = h->data;
    if (k->done)
        k->done(k->done_arg);
    free(k);
}

static void on_closed(void *arg)
{
    keyevents_t *k = arg;
    uv_close((uv_handle_t *)&k->resume, on_timer_closed);
}

void keyevents_close(keyevents_t *k, void (*done)(void *arg), void *arg)
{
    k->done = done;
    k->done_arg = arg;
    uv_timer_stop(&k->resume);
    redis_client_close(k->cl, on_closed, k);
}
