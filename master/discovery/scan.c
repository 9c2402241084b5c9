/* scan: see scan.h. */
#include "master/discovery/scan.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ilist.h"
#include "common/xalloc.h"

/* One command in flight. It outlives the scan when the scan is freed first: Redis still calls back
 * (with a NULL reply when the connection closes), and the request is freed then. */
typedef struct req {
    ilist_t link; /* in s->reqs while s lives */
    scan_t *s;    /* NULL once the scan is gone */
    scan_key_fn key;
    scan_step_fn step_done;
    scan_type_fn type_done;
    void *arg;
} req_t;

#define ADDR_MAX 272 /* "host:port" */

/* A pass walks the primaries it started with, one after the other (a Redis Cluster keeps each
 * key on one primary, and SCAN only sees the keys of the node that answers it). */
struct scan {
    redis_client_t *redis;
    char cursor[32];
    bool stepping;
    ilist_t reqs;
    char (*addrs)[ADDR_MAX]; /* the pass's primaries, by address: nodes may leave meanwhile */
    size_t naddrs, cap;
    size_t cur; /* the primary being scanned */
};

scan_t *scan_new(redis_client_t *redis)
{
    scan_t *s = xcalloc(1, sizeof(*s));
    ilist_init(&s->reqs);
    s->redis = redis;
    strcpy(s->cursor, "0");
    return s;
}

void scan_free(scan_t *s)
{
    if (!s)
        return;
    for (ilist_t *l; (l = ilist_pop_front(&s->reqs));)
        ILIST_ENTRY(l, req_t, link)->s = NULL;
    free(s->addrs);
    free(s);
}

static void note_master(redis_node_t *n, void *arg)
{
    scan_t *s = arg;
    if (s->naddrs == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 4;
        s->addrs = xrealloc(s->addrs, s->cap * sizeof(*s->addrs));
    }
    snprintf(s->addrs[s->naddrs++], ADDR_MAX, "%s", redis_node_addr(n));
}

typedef struct find {
    const char *addr;
    redis_node_t *node;
} find_t;

static void match_master(redis_node_t *n, void *arg)
{
    find_t *f = arg;
    if (!f->node && strcmp(redis_node_addr(n), f->addr) == 0)
        f->node = n;
}

/* The primary to send the next step to (starting a pass when none runs), skipping the ones
 * that left; NULL when no primary is left to scan. */
static redis_node_t *step_node(scan_t *s)
{
    if (s->naddrs == 0) {
        s->cur = 0;
        strcpy(s->cursor, "0");
        redis_client_each_master(s->redis, note_master, s);
    }
    for (; s->cur < s->naddrs; s->cur++, strcpy(s->cursor, "0")) {
        find_t f = {s->addrs[s->cur], NULL};
        redis_client_each_master(s->redis, match_master, &f);
        if (f.node)
            return f.node;
    }
    s->naddrs = 0;
    return NULL;
}

/* The one way this module talks to Redis: a command whose reply comes to `cb`, to the primary
 * serving key, or to `node` when key is NULL. */
static int redis_send(scan_t *s, redis_reply_fn cb, req_t *r, redis_node_t *node, const char *key,
                      int argc, const char **argv)
{
    r->s = s;
    ilist_push_front(&s->reqs, &r->link);
    int rc = key ? redis_client_command(s->redis, key, strlen(key), cb, r, argc, argv, NULL)
                 : redis_client_command_node(s->redis, node, cb, r, argc, argv, NULL);
    if (rc) {
        ilist_remove(&r->link);
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
    if (strcmp(s->cursor, "0") != 0)
        return 0;
    /* that primary is done: the pass is when it was the last one */
    if (++s->cur < s->naddrs)
        return 0;
    s->naddrs = 0;
    return 1;
}

static void on_scan(const redisReply *reply, void *privdata)
{
    req_t *r = privdata;
    scan_t *s = r->s;
    ilist_remove(&r->link);
    if (s) {
        s->stepping = false;
        int rc = step_reply(s, reply, r);
        if (rc < 0) {
            strcpy(s->cursor, "0");
            s->naddrs = 0; /* the pass restarts from the first primary */
        }
        r->step_done(rc, r->arg);
    }
    free(r);
}

int scan_step(scan_t *s, const cfg_t *cfg, scan_key_fn key, scan_step_fn done, void *arg)
{
    if (s->stepping)
        return -EBUSY;
    redis_node_t *node = step_node(s);
    if (!node)
        return -ENOTCONN;
    req_t *r = xcalloc(1, sizeof(*r));
    *r = (req_t){.key = key, .step_done = done, .arg = arg};
    char count[16];
    snprintf(count, sizeof(count), "%d", cfg->scan_count);
    const char *argv[] = {"SCAN",  s->cursor, "MATCH", cfg->stream_pattern,
                          "COUNT", count,     "TYPE",  "stream"};
    int rc = redis_send(s, on_scan, r, node, NULL, 8, argv);
    s->stepping = rc == 0;
    return rc;
}

static void on_type(const redisReply *rep, void *privdata)
{
    req_t *r = privdata;
    ilist_remove(&r->link);
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
    return redis_send(s, on_type, r, NULL, key, 2, argv);
}
