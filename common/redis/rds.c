/* rds: see rds.h. */
#include "common/redis/rds.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/keepalive.h"
#include "common/log.h"
#include "common/xalloc.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 3000

/*
 * Event glue between hiredis and libuv. hiredis 0.14's own libuv adapter drops poll errors, and
 * libuv stops a poll handle after reporting one, so a refused connect would hang forever; here
 * an error is handed to hiredis as readiness, and hiredis finds the socket error itself.
 */
typedef struct rds_poll {
    uv_poll_t poll;
    redisAsyncContext *ac; /* NULL once hiredis cleaned up */
    int events;
} rds_poll_t;

static void on_poll(uv_poll_t *h, int status, int events)
{
    rds_poll_t *p = h->data;
    int ev = status < 0 ? p->events : events;
    if (p->ac && (ev & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac && (ev & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

static void poll_update(rds_poll_t *p, int add, int del)
{
    int was = p->events;
    p->events = (p->events | add) & ~del;
    /* hiredis asks for write interest once per command; libuv's uv_poll_start re-registers the
     * descriptor (epoll_ctl) every time, a fifth of what a PUBLISH cost. A handle libuv stopped
     * after an error is restarted all the same. */
    if (p->events == was && (!was || uv_is_active((uv_handle_t *)&p->poll)))
        return;
    if (p->events)
        uv_poll_start(&p->poll, p->events, on_poll);
    else
        uv_poll_stop(&p->poll);
}

static void ev_add_read(void *d)
{
    poll_update(d, UV_READABLE, 0);
}

static void ev_del_read(void *d)
{
    poll_update(d, 0, UV_READABLE);
}

static void ev_add_write(void *d)
{
    poll_update(d, UV_WRITABLE, 0);
}

static void ev_del_write(void *d)
{
    poll_update(d, 0, UV_WRITABLE);
}

static void on_poll_closed(uv_handle_t *h)
{
    free(h->data);
}

static void ev_cleanup(void *d)
{
    rds_poll_t *p = d;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->poll, on_poll_closed);
}

static int attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    rds_poll_t *p = xcalloc(1, sizeof(*p));
    int rc = uv_poll_init(loop, &p->poll, ac->c.fd);
    if (rc) {
        free(p);
        return rc;
    }
    p->poll.data = p;
    p->ac = ac;
    ac->ev.data = p;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return 0;
}

struct rds {
    uv_loop_t *loop;
    const cfg_t *cfg;
    char name[64];
    rds_state_fn fn;
    void *arg;
    redisAsyncContext *ac; /* NULL while disconnected */
    bool linked;           /* hiredis connected; `connected` waits for AUTH as well */
    bool connected;
    bool closing;
    bool warned;
    bool auth_warned; /* an AUTH refusal was logged: once until Redis accepts us */
    bool ever_connected;
    _Atomic uint64_t *reconnects; /* NULL: not counted */
    uint32_t backoff_ms;
    uv_timer_t timer; /* reconnect, and the deferred free */
    void (*done)(void *arg);
    void *done_arg;
};

static void start_connect(rds_t *r);
static void schedule_reconnect(rds_t *r);
static void on_connect_timeout(uv_timer_t *t);

/* A connect that neither succeeds nor fails (a silent host): give up on it and retry. */
static void on_connect_timeout(uv_timer_t *t)
{
    rds_t *r = t->data;
    if (!r->ac || r->linked)
        return;
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    ac->onConnect = NULL;
    redisAsyncFree(ac);
    if (!r->warned)
        LOG_WARN("redis %s: connect to %s:%d timed out", r->name, r->cfg->redis_host,
                 r->cfg->redis_port);
    r->warned = true;
    schedule_reconnect(r);
}

static void on_reconnect_timer(uv_timer_t *t)
{
    start_connect(t->data);
}

static void on_timer_closed(uv_handle_t *h)
{
    rds_t *r = h->data;
    if (r->done)
        r->done(r->done_arg);
    free(r);
}

static void finish_close(rds_t *r)
{
    uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}

static void schedule_reconnect(rds_t *r)
{
    if (r->closing) {
        finish_close(r);
        return;
    }
    uint32_t jitter = (uint32_t)rand() % (r->backoff_ms / 2 + 1);
    uv_timer_start(&r->timer, on_reconnect_timer, r->backoff_ms + jitter, 0);
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

static void on_select(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    rds_t *r = privdata;
    redisReply *rep = reply;
    /* after a refused AUTH, SELECT fails with NOAUTH on every retry: already said */
    if (rep && rep->type == REDIS_REPLY_ERROR && !r->auth_warned)
        LOG_ERROR("redis %s: %s", r->name, rep->str);
}

/* Usable: AUTH accepted (or not needed) and SELECT queued. */
static void on_ready(rds_t *r)
{
    if (r->warned)
        LOG_INFO("redis %s: connected", r->name);
    r->warned = false;
    r->auth_warned = false;
    r->connected = true;
    r->backoff_ms = BACKOFF_MIN_MS;
    if (r->ever_connected && r->reconnects)
        atomic_fetch_add_explicit(r->reconnects, 1, memory_order_relaxed);
    r->ever_connected = true;
    if (r->fn)
        r->fn(r, true, r->arg);
}

/*
 * A refused AUTH is logged once and the connection is dropped and retried with the backoff, so
 * nobody sends commands that would all fail with NOAUTH, and a wrong password does not spam.
 */
static void on_auth(redisAsyncContext *ac, void *reply, void *privdata)
{
    rds_t *r = privdata;
    redisReply *rep = reply;
    if (!rep || r->closing)
        return; /* the connection went away first */
    if (rep->type != REDIS_REPLY_ERROR) {
        on_ready(r);
        return;
    }
    if (!r->auth_warned)
        LOG_ERROR("redis %s: AUTH refused: %s (check REDIS_USERNAME and REDIS_PASSWORD); "
                  "retrying quietly",
                  r->name, rep->str);
    r->auth_warned = true;
    r->warned = true;
    redisAsyncDisconnect(ac); /* on_disconnect schedules the retry */
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    rds_t *r = ac->data;
    uv_timer_stop(&r->timer);
    if (status != REDIS_OK) {
        /* hiredis frees the context itself after this callback */
        if (!r->warned)
            LOG_WARN("redis %s: cannot connect to %s:%d: %s", r->name, r->cfg->redis_host,
                     r->cfg->redis_port, ac->errstr);
        r->warned = true;
        r->ac = NULL;
        schedule_reconnect(r);
        return;
    }
    r->linked = true;
    const char *auth[3];
    int nauth = config_redis_auth(r->cfg, auth);
    if (nauth)
        redisAsyncCommandArgv(r->ac, on_auth, r, nauth, auth, NULL);
    if (r->cfg->redis_db) {
        char db[16];
        snprintf(db, sizeof(db), "%d", r->cfg->redis_db);
        const char *argv[] = {"SELECT", db};
        redisAsyncCommandArgv(r->ac, on_select, r, 2, argv, NULL);
    }
    if (!nauth)
        on_ready(r);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    rds_t *r = ac->data;
    r->ac = NULL;
    bool was = r->connected;
    r->connected = false;
    r->linked = false;
    if (status != REDIS_OK && !r->closing) {
        LOG_WARN("redis %s: connection lost: %s", r->name, ac->errstr);
        r->warned = true;
    }
    if (was && r->fn && !r->closing)
        r->fn(r, false, r->arg);
    schedule_reconnect(r);
}

static void start_connect(rds_t *r)
{
    redisAsyncContext *ac = redisAsyncConnect(r->cfg->redis_host, r->cfg->redis_port);
    if (!ac) /* hiredis returns no context only when it cannot allocate one */
        xalloc_die(sizeof(*ac));
    if (ac->err) {
        if (!r->warned)
            LOG_WARN("redis %s: %s", r->name, ac->errstr);
        r->warned = true;
        redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    if (attach(ac, r->loop)) {
        redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    (void)keepalive_set(ac->c.fd); /* a partition must end a blocked XREADGROUP */
    ac->data = r;
    r->ac = ac;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    uv_timer_start(&r->timer, on_connect_timeout, CONNECT_TIMEOUT_MS, 0);
}

rds_t *rds_new(uv_loop_t *loop, const cfg_t *cfg, const char *name, rds_state_fn fn, void *arg)
{
    rds_t *r = xcalloc(1, sizeof(*r));
    r->loop = loop;
    r->cfg = cfg;
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->fn = fn;
    r->arg = arg;
    r->backoff_ms = BACKOFF_MIN_MS;
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    start_connect(r);
    return r;
}

int rds_command(rds_t *r, redisCallbackFn *cb, void *privdata, int argc, const char **argv,
                const size_t *argvlen)
{
    if (!r->connected || !r->ac || (r->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)))
        return -ENOTCONN;
    /* a context that takes commands refuses one only when formatting it runs out of memory */
    if (redisAsyncCommandArgv(r->ac, cb, privdata, argc, argv, argvlen) != REDIS_OK) {
        size_t n = 0;
        for (int i = 0; i < argc; i++)
            n += argvlen ? argvlen[i] : strlen(argv[i]);
        xalloc_die(n);
    }
    return 0;
}

bool rds_connected(const rds_t *r)
{
    return r->connected;
}

void rds_count_reconnects(rds_t *r, _Atomic uint64_t *counter)
{
    r->reconnects = counter;
}

void rds_close(rds_t *r, void (*done)(void *arg), void *arg)
{
    r->closing = true;
    r->done = done;
    r->done_arg = arg;
    uv_timer_stop(&r->timer);
    if (r->ac && r->linked) {
        redisAsyncDisconnect(r->ac); /* on_disconnect finishes the close */
        return;
    }
    if (r->ac) {
        /* still connecting: hiredis would never call on_disconnect for it */
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        ac->onConnect = NULL;
        redisAsyncFree(ac);
    }
    finish_close(r);
}
