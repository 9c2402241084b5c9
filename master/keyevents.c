/* keyevents: see keyevents.h. */
#include "master/keyevents.h"

#include <errno.h>
#include <fnmatch.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/keepalive.h"
#include "common/log.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 10000
#define CONNECT_TIMEOUT_MS 2000
#define EXPECT_MAX 8
#define NEEDED_FLAGS "Egt" /* E: key events; g: del; t: stream commands (xadd) */

typedef enum ke_state { KE_DOWN, KE_CONNECTING, KE_SETUP, KE_SUBSCRIBED } ke_state_t;

/* What the next reply in the pipeline answers. */
typedef enum ke_expect { EX_AUTH, EX_CFG_GET, EX_CFG_SET, EX_SUB } ke_expect_t;

struct keyevents {
    const cfg_t *cfg;
    redisContext *rc;
    ke_state_t state;
    bool write_pending;
    uint64_t due_ms; /* next connect attempt (KE_DOWN) or connect deadline (KE_CONNECTING) */
    uint32_t backoff_ms;
    bool warned_down;   /* one line per outage */
    bool warned_config; /* one line per process: CONFIG refused */
    ke_expect_t expect[EXPECT_MAX];
    unsigned ex_head, ex_n;
    unsigned subs_left; /* subscribe confirmations still to come */
    char chan_xadd[48];
    char chan_del[48];
    char want[64]; /* the CONFIG SET value in flight */
};

keyevents_t *keyevents_new(const cfg_t *cfg)
{
    keyevents_t *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->cfg = cfg;
    snprintf(k->chan_xadd, sizeof(k->chan_xadd), "__keyevent@%d__:xadd", cfg->redis_db);
    snprintf(k->chan_del, sizeof(k->chan_del), "__keyevent@%d__:del", cfg->redis_db);
    return k;
}

static void drop(keyevents_t *k, uint64_t now_ms, const char *why)
{
    if (k->rc) {
        if (!k->warned_down)
            LOG_WARN("keyspace events: connection to redis lost (%s); new streams wait for SCAN "
                     "until it is back",
                     why);
        k->warned_down = true;
        redisFree(k->rc);
    }
    k->rc = NULL;
    k->state = KE_DOWN;
    k->write_pending = false;
    k->ex_head = k->ex_n = 0;
    k->subs_left = 0;
    k->backoff_ms = k->backoff_ms ? k->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (k->backoff_ms > BACKOFF_MAX_MS)
        k->backoff_ms = BACKOFF_MAX_MS;
    k->due_ms = now_ms + k->backoff_ms;
}

void keyevents_free(keyevents_t *k)
{
    if (!k)
        return;
    if (k->rc)
        redisFree(k->rc);
    free(k);
}

int keyevents_fd(const keyevents_t *k)
{
    return k->rc ? k->rc->fd : -1;
}

short keyevents_events(const keyevents_t *k)
{
    if (!k->rc)
        return 0;
    return (short)(POLLIN | (k->state == KE_CONNECTING || k->write_pending ? POLLOUT : 0));
}

uint64_t keyevents_due_ms(const keyevents_t *k)
{
    return k->state == KE_DOWN || k->state == KE_CONNECTING ? k->due_ms : UINT64_MAX;
}

bool keyevents_subscribed(const keyevents_t *k)
{
    return k->state == KE_SUBSCRIBED;
}

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

int keyevents_parse(const keyevents_t *k, const void *reply, keyevent_kind_t *kind,
                    const char **key, size_t *len)
{
    const redisReply *r = reply;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return -EINVAL;
    const redisReply *t = r->element[0], *ch = r->element[1], *kr = r->element[2];
    if (t->type != REDIS_REPLY_STRING || ch->type != REDIS_REPLY_STRING ||
        kr->type != REDIS_REPLY_STRING || t->len != 7 || memcmp(t->str, "message", 7) != 0)
        return -EINVAL;
    if (ch->len == strlen(k->chan_xadd) && memcmp(ch->str, k->chan_xadd, ch->len) == 0)
        *kind = KEYEVENT_XADD;
    else if (ch->len == strlen(k->chan_del) && memcmp(ch->str, k->chan_del, ch->len) == 0)
        *kind = KEYEVENT_DEL;
    else
        return -EINVAL;
    *key = kr->str;
    *len = kr->len;
    return 0;
}

/* ---- connection ---- */

static int queue(keyevents_t *k, ke_expect_t ex, int argc, const char **argv)
{
    if (k->ex_n == EXPECT_MAX || redisAppendCommandArgv(k->rc, argc, argv, NULL) != REDIS_OK)
        return -ENOMEM;
    k->expect[(k->ex_head + k->ex_n++) % EXPECT_MAX] = ex;
    k->write_pending = true;
    return 0;
}

static void start_connect(keyevents_t *k, uint64_t now_ms)
{
    k->rc = redisConnectNonBlock(k->cfg->redis_host, k->cfg->redis_port);
    if (!k->rc || k->rc->err) {
        char why[128];
        snprintf(why, sizeof(why), "%s", k->rc ? k->rc->errstr : "out of memory");
        drop(k, now_ms, why);
        return;
    }
    (void)keepalive_set(k->rc->fd); /* a subscribed link is idle: only probes find a partition */
    k->state = KE_CONNECTING;
    k->due_ms = now_ms + CONNECT_TIMEOUT_MS;
}

static int connected(keyevents_t *k)
{
    int err = 0;
    socklen_t elen = sizeof(err);
    if (getsockopt(k->rc->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
        err = errno;
    if (err)
        return -err;
    k->state = KE_SETUP;
    if (k->cfg->redis_password[0]) {
        const char *auth[] = {"AUTH", k->cfg->redis_password};
        if (queue(k, EX_AUTH, 2, auth))
            return -ENOMEM;
    }
    const char *get[] = {"CONFIG", "GET", "notify-keyspace-events"};
    return queue(k, EX_CFG_GET, 3, get);
}

static int subscribe(keyevents_t *k)
{
    const char *argv[] = {"SUBSCRIBE", k->chan_xadd, k->chan_del};
    k->subs_left = 2;
    if (queue(k, EX_SUB, 3, argv))
        return -ENOMEM;
    /* one SUBSCRIBE with two channels answers twice */
    k->expect[(k->ex_head + k->ex_n++) % EXPECT_MAX] = EX_SUB;
    return 0;
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
static int on_config(keyevents_t *k, const redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR) {
        config_refused(k, "CONFIG GET notify-keyspace-events", r->str);
        return subscribe(k);
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_STRING)
        return -EPROTO;
    const char *have = r->element[1]->str;
    int rc = keyevents_flags(have, k->want, sizeof(k->want));
    if (rc < 0)
        return rc;
    if (rc == 1) {
        LOG_INFO("keyspace events: setting notify-keyspace-events to \"%s\" (was \"%s\")", k->want,
                 have);
        const char *set[] = {"CONFIG", "SET", "notify-keyspace-events", k->want};
        if (queue(k, EX_CFG_SET, 4, set))
            return -ENOMEM;
    }
    return subscribe(k);
}

/* One reply of the setup pipeline. 0, or negative errno to drop the connection. */
static int on_setup_reply(keyevents_t *k, const redisReply *r)
{
    if (k->ex_n == 0)
        return -EPROTO;
    ke_expect_t ex = k->expect[k->ex_head];
    k->ex_head = (k->ex_head + 1) % EXPECT_MAX;
    k->ex_n--;
    switch (ex) {
    case EX_AUTH:
        if (r->type == REDIS_REPLY_ERROR) {
            if (!k->warned_down)
                LOG_WARN("keyspace events: AUTH failed: %s", r->str);
            k->warned_down = true;
            return -EACCES;
        }
        return 0;
    case EX_CFG_GET:
        return on_config(k, r);
    case EX_CFG_SET:
        if (r->type == REDIS_REPLY_ERROR)
            config_refused(k, "CONFIG SET notify-keyspace-events", r->str);
        return 0;
    case EX_SUB:
        break;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "subscribe") != 0)
        return -EPROTO;
    if (--k->subs_left == 0) {
        k->state = KE_SUBSCRIBED;
        k->backoff_ms = 0;
        k->warned_down = false;
        LOG_INFO("keyspace events: subscribed to %s and %s: new and deleted streams are seen at "
                 "once",
                 k->chan_xadd, k->chan_del);
    }
    return 0;
}

static void read_replies(keyevents_t *k, uint64_t now_ms, keyevents_fn fn, void *arg)
{
    if (redisBufferRead(k->rc) != REDIS_OK) {
        drop(k, now_ms, k->rc->errstr[0] ? k->rc->errstr : "closed");
        return;
    }
    for (;;) {
        void *reply = NULL;
        if (redisGetReply(k->rc, &reply) != REDIS_OK) {
            drop(k, now_ms, k->rc->errstr[0] ? k->rc->errstr : "protocol error");
            return;
        }
        if (!reply)
            return;
        int rc = 0;
        keyevent_kind_t kind;
        const char *key;
        size_t len;
        /* an event may come between the two subscribe confirmations */
        if (keyevents_parse(k, reply, &kind, &key, &len) == 0) {
            /* STREAM_PATTERN is a Redis glob; a key with a NUL byte cannot match it here */
            if (kind == KEYEVENT_DEL ||
                (strlen(key) == len && fnmatch(k->cfg->stream_pattern, key, 0) == 0))
                fn(kind, key, len, arg);
        } else if (k->ex_n)
            rc = on_setup_reply(k, reply);
        freeReplyObject(reply);
        if (rc) {
            drop(k, now_ms, strerror(-rc));
            return;
        }
    }
}

void keyevents_handle(keyevents_t *k, short revents, uint64_t now_ms, keyevents_fn fn, void *arg)
{
    if (k->state == KE_DOWN) {
        if (now_ms >= k->due_ms)
            start_connect(k, now_ms);
        return;
    }
    if (k->state == KE_CONNECTING) {
        if (!(revents & (POLLOUT | POLLERR | POLLHUP))) {
            if (now_ms >= k->due_ms)
                drop(k, now_ms, "connect timed out");
            return;
        }
        int rc = connected(k);
        if (rc) {
            drop(k, now_ms, strerror(-rc));
            return;
        }
    }
    if (k->write_pending && (revents & POLLOUT || k->state == KE_SETUP)) {
        int done = 0;
        if (redisBufferWrite(k->rc, &done) != REDIS_OK) {
            drop(k, now_ms, k->rc->errstr[0] ? k->rc->errstr : "write failed");
            return;
        }
        k->write_pending = !done;
    }
    if (revents & (POLLIN | POLLERR | POLLHUP))
        read_replies(k, now_ms, fn, arg);
}
