/* keyevents: see keyevents.h. */
#include "master/discovery/keyevents.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/redis/subconn.h"
#include "common/xalloc.h"

#define EXPECT_MAX 8
#define NEEDED_FLAGS "Egt" /* E: key events; g: del; t: stream commands (xadd) */

/* What the next reply that is not an event answers. */
typedef enum expect { EX_SKIP, EX_CFG_GET, EX_CFG_SET, EX_SUB } expect_t;

struct keyevents {
    const cfg_t *cfg;
    subconn_t *sub;
    keyevents_fn fn;
    void *arg;
    void (*done)(void *arg);
    void *done_arg;
    bool warned_config; /* one line per process: CONFIG refused */
    expect_t expect[EXPECT_MAX];
    unsigned ex_head, ex_n;
    unsigned subs_left; /* subscribe confirmations still to come */
    char chan_xadd[48];
    char chan_del[48];
    char want[64]; /* the CONFIG SET value in flight */
};

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

static bool is(const redisReply *r, const char *s)
{
    return r->type == REDIS_REPLY_STRING && r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

int keyevents_parse(int db, const void *reply, keyevent_kind_t *kind, const char **key, size_t *len)
{
    const redisReply *r = reply;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return -EINVAL;
    const redisReply *ch = r->element[1], *kr = r->element[2];
    if (!is(r->element[0], "message") || kr->type != REDIS_REPLY_STRING)
        return -EINVAL;
    char chan[48];
    snprintf(chan, sizeof(chan), "__keyevent@%d__:xadd", db);
    if (is(ch, chan)) {
        *kind = KEYEVENT_XADD;
    } else {
        snprintf(chan, sizeof(chan), "__keyevent@%d__:del", db);
        if (!is(ch, chan))
            return -EINVAL;
        *kind = KEYEVENT_DEL;
    }
    *key = kr->str;
    *len = kr->len;
    return 0;
}

/* ---- the connection ---- */

/* The one way this module talks to Redis: a command whose reply is `ex`. */
static int redis_send(keyevents_t *k, expect_t ex, int argc, const char **argv)
{
    if (k->ex_n == EXPECT_MAX)
        return -ENOBUFS;
    int rc = subconn_command(k->sub, argc, argv, NULL);
    if (rc == 0)
        k->expect[(k->ex_head + k->ex_n++) % EXPECT_MAX] = ex;
    return rc;
}

static void expect(keyevents_t *k, expect_t ex)
{
    if (k->ex_n < EXPECT_MAX)
        k->expect[(k->ex_head + k->ex_n++) % EXPECT_MAX] = ex;
}

static void subscribe(keyevents_t *k)
{
    const char *argv[] = {"SUBSCRIBE", k->chan_xadd, k->chan_del};
    k->subs_left = 2;
    if (redis_send(k, EX_SUB, 3, argv) == 0)
        expect(k, EX_SUB); /* one SUBSCRIBE with two channels answers twice */
}

static void config_refused(keyevents_t *k, const char *what, const char *err)
{
    if (k->warned_config)
        return;
    k->warned_config = true;
    LOG_WARN("keyspace events: %s refused (%s): make sure notify-keyspace-events includes \"%s\" "
             "in the Redis configuration, or new and deleted streams are only seen by SCAN "
             "(every DISCOVERY_INTERVAL, longer on big keyspaces)",
             what, err, NEEDED_FLAGS);
}

/* CONFIG GET answered: add the missing flags, then subscribe. */
static void on_config(keyevents_t *k, const redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR) {
        config_refused(k, "CONFIG GET notify-keyspace-events", r->str);
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
               r->element[1]->type == REDIS_REPLY_STRING) {
        const char *have = r->element[1]->str;
        if (keyevents_flags(have, k->want, sizeof(k->want)) == 1) {
            LOG_INFO("keyspace events: setting notify-keyspace-events to \"%s\" (was \"%s\")",
                     k->want, have);
            const char *set[] = {"CONFIG", "SET", "notify-keyspace-events", k->want};
            redis_send(k, EX_CFG_SET, 4, set);
        }
    }
    subscribe(k);
}

/* A reply that is not an event, in the order the commands went out. */
static void on_answer(keyevents_t *k, const redisReply *r)
{
    if (k->ex_n == 0)
        return; /* a late confirmation of a connection already gone */
    expect_t ex = k->expect[k->ex_head];
    k->ex_head = (k->ex_head + 1) % EXPECT_MAX;
    k->ex_n--;
    if (ex == EX_CFG_GET) {
        on_config(k, r);
    } else if (ex == EX_CFG_SET && r->type == REDIS_REPLY_ERROR) {
        config_refused(k, "CONFIG SET notify-keyspace-events", r->str);
    } else if (ex == EX_SUB && r->type != REDIS_REPLY_ERROR && --k->subs_left == 0) {
        LOG_INFO("keyspace events: subscribed to %s and %s: new and deleted streams are seen at "
                 "once",
                 k->chan_xadd, k->chan_del);
    }
}

static void on_reply(const redisReply *r, void *arg)
{
    keyevents_t *k = arg;
    keyevent_kind_t kind;
    const char *key;
    size_t len;
    /* an event may come between the two subscribe confirmations */
    if (keyevents_parse(k->cfg->redis_db, r, &kind, &key, &len) == 0)
        k->fn(kind, key, len, k->arg);
    else
        on_answer(k, r);
}

static void on_state(bool connected, void *arg)
{
    keyevents_t *k = arg;
    if (!connected) {
        LOG_WARN("keyspace events: connection to redis lost; new streams wait for SCAN until it "
                 "is back");
        return;
    }
    k->ex_head = k->ex_n = 0;
    /* subconn sent AUTH and SELECT first: their replies come before ours */
    const char *auth[3];
    if (config_redis_auth(k->cfg, auth))
        expect(k, EX_SKIP);
    if (k->cfg->redis_db)
        expect(k, EX_SKIP);
    const char *get[] = {"CONFIG", "GET", "notify-keyspace-events"};
    redis_send(k, EX_CFG_GET, 3, get);
}

keyevents_t *keyevents_new(uv_loop_t *loop, const cfg_t *cfg, keyevents_fn fn, void *arg)
{
    keyevents_t *k = xcalloc(1, sizeof(*k));
    k->cfg = cfg;
    k->fn = fn;
    k->arg = arg;
    snprintf(k->chan_xadd, sizeof(k->chan_xadd), "__keyevent@%d__:xadd", cfg->redis_db);
    snprintf(k->chan_del, sizeof(k->chan_del), "__keyevent@%d__:del", cfg->redis_db);
    k->sub = subconn_new(loop, cfg, "keyevents", on_reply, on_state, k);
    return k;
}

static void on_closed(void *arg)
{
    keyevents_t *k = arg;
    if (k->done)
        k->done(k->done_arg);
    free(k);
}

void keyevents_close(keyevents_t *k, void (*done)(void *arg), void *arg)
{
    k->done = done;
    k->done_arg = arg;
    subconn_close(k->sub, on_closed, k);
}
