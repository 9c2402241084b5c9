/* peer_dir: see peer_dir.h. */
#include "worker/net/peer_dir.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/redis/redis_client.h"
#include "common/redis_url.h"
#include "common/xalloc.h"

#define CACHE_SLOTS 64

typedef struct cached {
    char tag[PEER_DIR_TAG_LEN];
    uint64_t until; /* loop time; 0 = empty */
    struct sockaddr_storage addr;
} cached_t;

struct peer_dir {
    uv_loop_t *loop;
    const cfg_t *cfg;
    redis_client_t *c;
    uv_timer_t refresh;
    char tag[PEER_DIR_TAG_LEN + 1];
    char key[200];
    cached_t cache[CACHE_SLOTS];
    bool closing;
    int open;
    void (*done)(void *arg);
    void *done_arg;
};

typedef struct lookup {
    peer_dir_t *pd;
    char tag[PEER_DIR_TAG_LEN];
    peer_dir_fn fn;
    void *arg;
} lookup_t;

int peer_dir_parse(const char *s, size_t len, struct sockaddr_storage *out)
{
    redis_addr_t a;
    const char *why;
    if (redis_addr_parse(s, len, 0, &a, &why) || a.port <= 0)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, a.host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)a.port);
        return 0;
    }
    if (inet_pton(AF_INET6, a.host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)a.port);
        return 0;
    }
    return -EINVAL; /* a name: never resolved here */
}

static void key_of(const peer_dir_t *pd, char *out, size_t cap, const char *tag)
{
    snprintf(out, cap, "%s:server:%.*s", pd->cfg->redis_key, PEER_DIR_TAG_LEN, tag);
}

static void announce(peer_dir_t *pd)
{
    char px[16];
    snprintf(px, sizeof(px), "%d", PEER_DIR_TTL_MS);
    const char *argv[] = {"SET", pd->key, pd->cfg->internal_address, "PX", px};
    (void)redis_client_command(pd->c, pd->key, strlen(pd->key), NULL, NULL, 5, argv, NULL);
}

static void on_refresh(uv_timer_t *t)
{
    announce(t->data);
}

static void on_state(redis_client_t *c, bool up, void *arg)
{
    (void)c;
    if (up)
        announce(arg); /* at once after a (re)connect: a restarted Redis forgot it */
}

static const redis_client_cbs_t cbs = {.state = on_state};

peer_dir_t *peer_dir_new(redis_topology_t *topo, const cfg_t *cfg, const char *tag)
{
    peer_dir_t *pd = xcalloc(1, sizeof(*pd));
    pd->loop = redis_topology_loop(topo);
    pd->cfg = cfg;
    memcpy(pd->tag, tag, PEER_DIR_TAG_LEN);
    key_of(pd, pd->key, sizeof(pd->key), tag);
    pd->c = redis_client_new(topo, "peers", &cbs, pd);
    uv_timer_init(pd->loop, &pd->refresh);
    pd->refresh.data = pd;
    uv_timer_start(&pd->refresh, on_refresh, PEER_DIR_REFRESH_MS, PEER_DIR_REFRESH_MS);
    pd->open = 2;
    return pd;
}

static cached_t *find(peer_dir_t *pd, const char *tag)
{
    uint64_t now = uv_now(pd->loop);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        cached_t *e = &pd->cache[i];
        if (e->until > now && memcmp(e->tag, tag, PEER_DIR_TAG_LEN) == 0)
            return e;
    }
    return NULL;
}

static void remember(peer_dir_t *pd, const char *tag, const struct sockaddr_storage *addr)
{
    cached_t *slot = &pd->cache[0];
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (pd->cache[i].until < slot->until)
            slot = &pd->cache[i]; /* the oldest (or an empty) one goes */
    }
    memcpy(slot->tag, tag, PEER_DIR_TAG_LEN);
    slot->addr = *addr;
    slot->until = uv_now(pd->loop) + PEER_DIR_CACHE_MS;
}

static void on_get(const redisReply *r, void *arg)
{
    lookup_t *q = arg;
    peer_dir_t *pd = q->pd;
    struct sockaddr_storage addr;
    bool ok = r && r->type == REDIS_REPLY_STRING && peer_dir_parse(r->str, r->len, &addr) == 0;
    if (ok && !pd->closing)
        remember(pd, q->tag, &addr);
    q->fn(ok ? (const struct sockaddr *)&addr : NULL, q->arg);
    free(q);
}

int peer_dir_lookup(peer_dir_t *pd, const char *tag, struct sockaddr_storage *out, peer_dir_fn fn,
                    void *arg)
{
    const cached_t *e = find(pd, tag);
    if (e) {
        *out = e->addr;
        return 1;
    }
    lookup_t *q = xmalloc(sizeof(*q));
    *q = (lookup_t){pd, {0}, fn, arg};
    memcpy(q->tag, tag, PEER_DIR_TAG_LEN);
    char key[200];
    key_of(pd, key, sizeof(key), tag);
    const char *argv[] = {"GET", key};
    int rc = redis_client_command(pd->c, key, strlen(key), on_get, q, 2, argv, NULL);
    if (rc) {
        free(q);
        return -ENOTCONN;
    }
    return 0;
}

static void on_part_closed(void *arg)
{
    peer_dir_t *pd = arg;
    if (--pd->open)
        return;
    void (*done)(void *) = pd->done;
    void *done_arg = pd->done_arg;
    free(pd);
    if (done)
        done(done_arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    on_part_closed(h->data);
}

void peer_dir_close(peer_dir_t *pd, void (*done)(void *arg), void *arg)
{
    pd->closing = true;
    pd->done = done;
    pd->done_arg = arg;
    uv_close((uv_handle_t *)&pd->refresh, on_timer_closed);
    redis_client_close(pd->c, on_part_closed, pd);
}
