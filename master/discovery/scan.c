/* scan: see scan.h. */
#include "master/discovery/scan.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

/* One command in flight. It outlives the scan when the scan is freed first: Redis still calls back
 * (with a NULL reply when the connection closes), and the request is freed then. */
typedef struct req {
    struct req *prev, *next;
    scan_t *s; /* NULL once the scan is gone */
    scan_key_fn key;
    scan_step_fn step_done;
    scan_type_fn type_done;
    void *arg;
} req_t;

struct scan {
    redis_client_t *redis;
    char cursor[32];
    bool stepping;
    req_t *reqs;
};

scan_t *scan_new(redis_client_t *redis)
{
    scan_t *s = xcalloc(1, sizeof(*s));
    s->redis = redis;
    strcpy(s->cursor, "0");
    return s;
}

void scan_free(scan_t *s)
{
    if (!s)
        return;
    for (req_t *r = s->reqs; r; r = r->next)
        r->s = NULL;
    free(s);
}

static void unlink_req(req_t *r)
{
    if (!r->s)
        return;
    if (r->prev)
        r->prev->next = r->next;
    else
        r->s->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

/* The one way this module talks to Redis: a command whose reply comes to `cb`. */
static int redis_send(scan_t *s, redis_reply_fn cb, req_t *r, const char *key, int argc,
                      const char **argv)
{
    r->s = s;
    r->next = s->reqs;
    if (s->reqs)
        s->reqs->prev = r;
    s->reqs = r;
    int rc = redis_client_command(s->redis, key, key ? strlen(key) : 0, cb, r, argc, argv, NULL);
    if (rc) {
        unlink_req(r);
        free(r);
    }
    return rc;
}

/* The reply to SCAN: [cursor, [key...]]; anything else fails the step. */
static int step_reply(scan_t *s, const redisReply *rep, const req_t *r)
{
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING || rep->element[1]->type != REDIS_REPLY_ARRAY ||
        rep->element[0]->len >= sizeof(s->cursor))
        return rep ? -EIO : -ENOTCONN;
    memcpy(s->cursor, rep->element[0]->str, rep->element[0]->len + 1);
    const redisReply *keys = rep->element[1];
    for (size_t i = 0; i < keys->elements; i++) {
        if (keys->element[i]->type == REDIS_REPLY_STRING)
            r->key(keys->element[i]->str, keys->element[i]->len, r->arg);
    }
    return strcmp(s->cursor, "0") == 0;
}

static void on_scan(const redisReply *reply, void *privdata)
{
    req_t *r = privdata;
    scan_t *s = r->s;
    unlink_req(r);
    if (s) {
        s->stepping = false;
        int rc = step_reply(s, reply, r);
        if (rc < 0)
            strcpy(s->cursor, "0");
        r->step_done(rc, r->arg);
    }
    free(r);
}

int scan_step(scan_t *s, const cfg_t *cfg, scan_key_fn key, scan_step_fn done, void *arg)
{
    if (s->stepping)
        return -EBUSY;
    req_t *r = xcalloc(1, sizeof(*r));
    *r = (req_t){.key = key, .step_done = done, .arg = arg};
    char count[16];
    snprintf(count, sizeof(count), "%d", cfg->scan_count);
    const char *argv[] = {"SCAN",  s->cursor, "MATCH", cfg->stream_pattern,
                          "COUNT", count,     "TYPE",  "stream"};
    int rc = redis_send(s, on_scan, r, NULL, 8, argv);
    s->stepping = rc == 0;
    return rc;
}

static void on_type(const redisReply *rep, void *privdata)
{
    req_t *r = privdata;
    unlink_req(r);
    if (r->s) {
        int rc = !rep                              ? -ENOTCONN
                 : rep->type != REDIS_REPLY_STATUS ? -EIO
                                                   : strcmp(rep->str, "stream") == 0;
        r->type_done(rc, r->arg);
    }
    free(r);
}

int scan_is_stream(scan_t *s, const char *key, scan_type_fn done, void *arg)
{
    req_t *r = xcalloc(1, sizeof(*r));
    *r = (req_t){.type_done = done, .arg = arg};
    const char *argv[] = {"TYPE", key};
    return redis_send(s, on_type, r, key, 2, argv);
}
