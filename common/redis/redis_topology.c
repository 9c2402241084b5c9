/* redis_topology: see redis_topology.h. */
#include "common/redis/redis_topology.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/redis/redis_cluster.h"
#include "common/redis/redis_sentinel.h"
#include "common/xalloc.h"

typedef struct listener {
    redis_topology_fn fn; /* NULL: removed while the list was being walked */
    void *arg;
} listener_t;

struct redis_topology {
    uv_loop_t *loop;
    redis_mode_t mode;
    redis_addr_t addr;
    redis_tls_t *tls;
    redis_conn_opts_t conn; /* strings point to the copies below */
    char *username, *password, *server_name;
    redis_cluster_t *cluster;
    redis_sentinel_t *sentinel;
    listener_t *ls;
    size_t nls, capls;
    int walking;
    bool removed;
    bool closing;
    void (*done)(void *arg);
    void *done_arg;
};

static char *dup_or_null(const char *s)
{
    return s && *s ? xmemdup(s, strlen(s)) : NULL;
}

void redis_topology_opts_from_cfg(redis_topology_opts_t *o, const cfg_t *cfg)
{
    memset(o, 0, sizeof(*o));
    if (cfg->redis_cluster_nodes.n) {
        o->mode = REDIS_MODE_CLUSTER;
        o->nodes = cfg->redis_cluster_nodes.a;
        o->nnodes = cfg->redis_cluster_nodes.n;
    } else if (cfg->redis_sentinels.n) {
        o->mode = REDIS_MODE_SENTINEL;
        o->nodes = cfg->redis_sentinels.a;
        o->nnodes = cfg->redis_sentinels.n;
        o->sentinel_name = cfg->redis_sentinel_name;
        o->sentinel_password = cfg->redis_sentinel_password;
    } else {
        o->mode = REDIS_MODE_SINGLE;
    }
    snprintf(o->addr.host, sizeof(o->addr.host), "%s", cfg->redis_host);
    o->addr.port = cfg->redis_port;
    o->tls = cfg->redis_tls;
    o->tls_opts.ca_file = cfg->redis_tls_ca_file;
    o->tls_opts.cert_file = cfg->redis_tls_cert_file;
    o->tls_opts.key_file = cfg->redis_tls_key_file;
    o->tls_opts.insecure = cfg->redis_tls_insecure;
    o->conn.username = cfg->redis_username;
    o->conn.password = cfg->redis_password;
    o->conn.db = cfg->redis_db;
    o->conn.tls_server_name = cfg->redis_tls_server_name;
}

static void notify(void *arg)
{
    redis_topology_t *t = arg;
    if (t->closing)
        return;
    t->walking++;
    for (size_t i = 0; i < t->nls; i++) {
        if (t->ls[i].fn)
            t->ls[i].fn(t->ls[i].arg);
    }
    if (--t->walking == 0 && t->removed) {
        size_t k = 0;
        for (size_t i = 0; i < t->nls; i++) {
            if (t->ls[i].fn)
                t->ls[k++] = t->ls[i];
        }
        t->nls = k;
        t->removed = false;
    }
}

int redis_topology_new(redis_topology_t **out, uv_loop_t *loop, const redis_topology_opts_t *o,
                       buf_t *err)
{
    redis_tls_t *tls = NULL;
    if (o->tls) {
        int rc = redis_tls_new(&tls, &o->tls_opts, err);
        if (rc)
            return rc;
    }
    redis_topology_t *t = xcalloc(1, sizeof(*t));
    t->loop = loop;
    t->mode = o->mode;
    t->addr = o->addr;
    t->tls = tls;
    t->conn = o->conn;
    t->username = dup_or_null(o->conn.username);
    t->password = dup_or_null(o->conn.password);
    t->server_name = dup_or_null(o->conn.tls_server_name);
    t->conn.username = t->username;
    t->conn.password = t->password;
    t->conn.tls_server_name = t->server_name;
    t->conn.tls = tls;
    t->conn.require_primary = o->mode == REDIS_MODE_SENTINEL;
    t->conn.name = NULL;
    if (o->mode == REDIS_MODE_CLUSTER) {
        redis_conn_opts_t c = t->conn;
        t->cluster = redis_cluster_new(loop, o->nodes, o->nnodes, &c, o->refresh_ms, notify, t);
    } else if (o->mode == REDIS_MODE_SENTINEL) {
        /* the sentinels have their own password; TLS and timeouts are the data ones */
        redis_conn_opts_t s = t->conn;
        s.username = NULL;
        s.password = o->sentinel_password;
        t->sentinel = redis_sentinel_new(loop, o->nodes, o->nnodes, o->sentinel_name, &s,
                                         o->refresh_ms, notify, t);
    }
    *out = t;
    return 0;
}

static void finish(void *arg)
{
    redis_topology_t *t = arg;
    void (*done)(void *) = t->done;
    void *done_arg = t->done_arg;
    redis_tls_free(t->tls);
    free(t->username);
    free(t->password);
    free(t->server_name);
    free(t->ls);
    free(t);
    if (done)
        done(done_arg);
}

static void on_deferred(uv_handle_t *h)
{
    void *t = h->data;
    free(h);
    finish(t);
}

void redis_topology_close(redis_topology_t *t, void (*done)(void *arg), void *arg)
{
    if (t->closing)
        return;
    t->closing = true;
    t->done = done;
    t->done_arg = arg;
    if (t->cluster) {
        redis_cluster_close(t->cluster, finish, t);
    } else if (t->sentinel) {
        redis_sentinel_close(t->sentinel, finish, t);
    } else {
        /* nothing to wait for, but done never runs from this call */
        uv_timer_t *h = xcalloc(1, sizeof(*h));
        uv_timer_init(t->loop, h);
        h->data = t;
        uv_close((uv_handle_t *)h, on_deferred);
    }
}

redis_mode_t redis_topology_mode(const redis_topology_t *t)
{
    return t->mode;
}

uv_loop_t *redis_topology_loop(const redis_topology_t *t)
{
    return t->loop;
}

void redis_topology_conn_opts(const redis_topology_t *t, const char *name, redis_conn_opts_t *o)
{
    *o = t->conn;
    o->name = name;
}

const redis_addr_t *redis_topology_primary(const redis_topology_t *t)
{
    if (t->mode == REDIS_MODE_SINGLE)
        return &t->addr;
    return t->sentinel ? redis_sentinel_primary(t->sentinel) : NULL;
}

const redis_slotmap_t *redis_topology_slotmap(const redis_topology_t *t)
{
    return t->cluster ? redis_cluster_map(t->cluster) : NULL;
}

void redis_topology_refresh(redis_topology_t *t)
{
    if (t->closing)
        return;
    if (t->cluster)
        redis_cluster_refresh(t->cluster);
    else if (t->sentinel)
        redis_sentinel_check(t->sentinel);
}

void redis_topology_moved(redis_topology_t *t, const redis_redirect_t *r, const char *from_host)
{
    if (t->cluster && !t->closing)
        redis_cluster_moved(t->cluster, r, from_host);
}

uint64_t redis_topology_changes(const redis_topology_t *t)
{
    if (t->cluster)
        return redis_cluster_changes(t->cluster);
    return t->sentinel ? redis_sentinel_switches(t->sentinel) : 0;
}

void redis_topology_listen(redis_topology_t *t, redis_topology_fn fn, void *arg)
{
    if (t->nls == t->capls) {
        t->capls = t->capls ? t->capls * 2 : 8;
        t->ls = xrealloc(t->ls, t->capls * sizeof(*t->ls));
    }
    t->ls[t->nls++] = (listener_t){fn, arg};
}

void redis_topology_unlisten(redis_topology_t *t, redis_topology_fn fn, void *arg)
{
    for (size_t i = 0; i < t->nls; i++) {
        if (t->ls[i].fn != fn || t->ls[i].arg != arg)
            continue;
        if (t->walking) {
            t->ls[i].fn = NULL;
            t->removed = true;
        } else {
            t->ls[i] = t->ls[--t->nls];
        }
        return;
    }
}
