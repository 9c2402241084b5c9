/* discovery: see discovery.h. */
#include "master/discovery/discovery.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

struct discovery {
    const cfg_t *cfg;
    redisContext *rc;
    char cursor[32];
    bool warned; /* one log line per outage, not one per retry */
    uint64_t connects;
};

discovery_t *discovery_new(const cfg_t *cfg)
{
    discovery_t *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->cfg = cfg;
    strcpy(d->cursor, "0");
    return d;
}

static void drop(discovery_t *d)
{
    if (d->rc)
        redisFree(d->rc);
    d->rc = NULL;
    strcpy(d->cursor, "0");
}

void discovery_free(discovery_t *d)
{
    if (!d)
        return;
    drop(d);
    free(d);
}

static bool reply_ok(discovery_t *d, redisReply *r, const char *what)
{
    if (r && r->type != REDIS_REPLY_ERROR)
        return true;
    if (!d->warned)
        LOG_WARN("redis %s failed: %s", what, r ? r->str : d->rc->errstr);
    d->warned = true;
    return false;
}

static int connect_redis(discovery_t *d)
{
    struct timeval tv = {1, 0};
    d->rc = redisConnectWithTimeout(d->cfg->redis_host, d->cfg->redis_port, tv);
    if (!d->rc || d->rc->err) {
        if (!d->warned)
            LOG_WARN("redis %s:%d unreachable: %s", d->cfg->redis_host, d->cfg->redis_port,
                     d->rc ? d->rc->errstr : "out of memory");
        d->warned = true;
        drop(d);
        return -ECONNREFUSED;
    }
    struct timeval cmd = {5, 0};
    redisSetTimeout(d->rc, cmd);
    bool ok = true;
    const char *auth[3];
    int nauth = config_redis_auth(d->cfg, auth);
    if (nauth) {
        redisReply *r = redisCommandArgv(d->rc, nauth, auth, NULL);
        ok = reply_ok(d, r, "AUTH (check REDIS_USERNAME and REDIS_PASSWORD)");
        freeReplyObject(r);
    }
    if (ok && d->cfg->redis_db) {
        redisReply *r = redisCommand(d->rc, "SELECT %d", d->cfg->redis_db);
        ok = reply_ok(d, r, "SELECT");
        freeReplyObject(r);
    }
    if (!ok) {
        drop(d);
        return -EACCES;
    }
    if (d->warned)
        LOG_INFO("redis %s:%d reachable again", d->cfg->redis_host, d->cfg->redis_port);
    d->warned = false;
    d->connects++;
    return 0;
}

int discovery_step(discovery_t *d, discovery_key_fn fn, void *arg)
{
    if (!d->rc && connect_redis(d))
        return -ECONNREFUSED;
    char count[16];
    snprintf(count, sizeof(count), "%d", d->cfg->scan_count);
    const char *argv[] = {"SCAN",  d->cursor, "MATCH", d->cfg->stream_pattern,
                          "COUNT", count,     "TYPE",  "stream"};
    redisReply *r = redisCommandArgv(d->rc, 8, argv, NULL);
    if (!reply_ok(d, r, "SCAN") || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY ||
        r->element[0]->len >= sizeof(d->cursor)) {
        freeReplyObject(r);
        drop(d);
        return -EIO;
    }
    memcpy(d->cursor, r->element[0]->str, r->element[0]->len + 1);
    redisReply *keys = r->element[1];
    for (size_t i = 0; i < keys->elements; i++) {
        if (keys->element[i]->type == REDIS_REPLY_STRING)
            fn(keys->element[i]->str, keys->element[i]->len, arg);
    }
    freeReplyObject(r);
    return strcmp(d->cursor, "0") == 0;
}

int discovery_is_stream(discovery_t *d, const char *key)
{
    if (!d->rc && connect_redis(d))
        return -ECONNREFUSED;
    const char *argv[] = {"TYPE", key};
    redisReply *r = redisCommandArgv(d->rc, 2, argv, NULL);
    if (!reply_ok(d, r, "TYPE") || r->type != REDIS_REPLY_STATUS) {
        freeReplyObject(r);
        drop(d);
        return -EIO;
    }
    int is = strcmp(r->str, "stream") == 0;
    freeReplyObject(r);
    return is;
}

bool discovery_connected(const discovery_t *d)
{
    return d->rc != NULL;
}

uint64_t discovery_reconnects(const discovery_t *d)
{
    return d->connects ? d->connects - 1 : 0;
}
