/* subconn: see subconn.h. */
#include "common/redis/subconn.h"

#include <errno.h>
#include <hiredis/read.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keepalive.h"
#include "common/log.h"
#include "common/xalloc.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 3000
#define READ_CHUNK 65536

/* One connection attempt; freed when its handle is closed, so late callbacks find it dead. */
typedef struct link {
    uv_tcp_t tcp;
    uv_connect_t creq;
    struct subconn *c; /* NULL once abandoned */
    redisReader *reader;
} link_t;

struct subconn {
    uv_loop_t *loop;
    const cfg_t *cfg;
    char name[64];
    subconn_reply_fn on_reply;
    subconn_state_fn on_state;
    void *arg;
    link_t *link; /* NULL while waiting to reconnect */
    uv_getaddrinfo_t gai;
    bool resolving;
    bool connected; /* TCP up: commands can be sent */
    bool up;        /* and Redis answered one without an error */
    bool warned;
    bool closing;
    bool auth_pending; /* the next reply answers AUTH */
    bool auth_warned;  /* the refusal was logged: once until Redis accepts us */
    bool ever_up;
    _Atomic uint64_t *reconnects; /* NULL: not counted */
    uint32_t backoff_ms;
    uv_timer_t timer; /* reconnect delay and connect timeout */
    char *rbuf;
    void (*done)(void *arg);
    void *done_arg;
};

typedef struct wreq {
    uv_write_t req;
    char *cmd;
} wreq_t;

static void start_connect(subconn_t *c);

static void on_link_closed(uv_handle_t *h)
{
    link_t *l = h->data;
    if (l->reader)
        redisReaderFree(l->reader);
    free(l);
}

static void schedule(subconn_t *c, void (*fn)(uv_timer_t *), uint64_t ms)
{
    uv_timer_start(&c->timer, fn, ms, 0);
}

static void on_retry(uv_timer_t *t)
{
    start_connect(t->data);
}

/* Abandons the current link (if any) and schedules the next attempt. */
static void lose(subconn_t *c, const char *why)
{
    bool was = c->up;
    c->connected = false;
    c->up = false;
    c->auth_pending = false;
    if (c->link) {
        c->link->c = NULL;
        uv_close((uv_handle_t *)&c->link->tcp, on_link_closed);
        c->link = NULL;
    }
    if (!c->warned)
        LOG_WARN("redis %s: %s", c->name, why);
    c->warned = true;
    if (c->closing)
        return;
    if (was && c->on_state)
        c->on_state(false, c->arg);
    uint32_t jitter = (uint32_t)rand() % (c->backoff_ms / 2 + 1);
    schedule(c, on_retry, c->backoff_ms + jitter);
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    link_t *l = h->data;
    buf->base = l->c ? l->c->rbuf : NULL;
    buf->len = l->c ? READ_CHUNK : 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    link_t *l = s->data;
    subconn_t *c = l->c;
    if (!c || n == 0)
        return;
    if (n < 0) {
        lose(c, n == UV_EOF ? "connection closed by the server" : uv_strerror((int)n));
        return;
    }
    /* the reader fails for a protocol error or, like xalloc, when it cannot allocate */
    int rc = redisReaderFeed(l->reader, c->rbuf, (size_t)n);
    for (;;) {
        void *reply = NULL;
        if (rc == REDIS_OK)
            rc = redisReaderGetReply(l->reader, &reply);
        if (rc != REDIS_OK && l->reader->err == REDIS_ERR_OOM)
            xalloc_die((size_t)n);
        if (rc != REDIS_OK) {
            lose(c, "protocol error");
            return;
        }
        if (!reply)
            return;
        if (c->auth_pending) {
            c->auth_pending = false;
            if (((redisReply *)reply)->type == REDIS_REPLY_ERROR) {
                if (!c->auth_warned)
                    LOG_ERROR("redis %s: AUTH refused: %s (check REDIS_USERNAME and "
                              "REDIS_PASSWORD); retrying quietly",
                              c->name, ((redisReply *)reply)->str);
                c->auth_warned = true;
                c->warned = true;
                freeReplyObject(reply);
                lose(c, "AUTH refused");
                return;
            }
        }
        /* a server that accepts and then refuses (maxclients, auth) must not reset the backoff */
        if (((redisReply *)reply)->type != REDIS_REPLY_ERROR && !c->up) {
            if (c->warned)
                LOG_INFO("redis %s: connected", c->name);
            c->warned = false;
            c->auth_warned = false;
            c->up = true;
            c->backoff_ms = BACKOFF_MIN_MS;
            if (c->ever_up && c->reconnects)
                atomic_fetch_add_explicit(c->reconnects, 1, memory_order_relaxed);
            c->ever_up = true;
        }
        c->on_reply(reply, c->arg);
        freeReplyObject(reply);
        if (l->c != c)
            return; /* the callback dropped or closed the connection */
    }
}

static void on_written(uv_write_t *req, int status)
{
    (void)status; /* a failed write also fails the read side, which handles the loss */
    wreq_t *w = (wreq_t *)req;
    redisFreeCommand(w->cmd);
    free(w);
}

static int send_argv(subconn_t *c, int argc, const char **argv, const size_t *lens)
{
    wreq_t *w = xmalloc(sizeof(*w));
    int n = redisFormatCommandArgv(&w->cmd, argc, argv, lens);
    if (n < 0) /* its only failure: the command's buffer */
        xalloc_die(sizeof(*w));
    uv_buf_t b = uv_buf_init(w->cmd, (unsigned)n);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->link->tcp, &b, 1, on_written);
    if (rc) {
        redisFreeCommand(w->cmd);
        free(w);
        return -ENOTCONN;
    }
    return 0;
}

static void on_connected(uv_connect_t *req, int status)
{
    link_t *l = req->data;
    subconn_t *c = l->c;
    if (!c || status == UV_ECANCELED)
        return;
    uv_timer_stop(&c->timer);
    if (status < 0) {
        lose(c, uv_strerror(status));
        return;
    }
    if (uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read)) {
        lose(c, "cannot read");
        return;
    }
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&l->tcp, &fd) == 0)
        (void)keepalive_set(fd); /* a subscribed link is idle: only probes find a partition */
    c->connected = true;
    const char *auth[3];
    int nauth = config_redis_auth(c->cfg, auth);
    if (nauth)
        c->auth_pending = send_argv(c, nauth, auth, NULL) == 0;
    if (c->cfg->redis_db) {
        char db[16];
        snprintf(db, sizeof(db), "%d", c->cfg->redis_db);
        const char *argv[] = {"SELECT", db};
        send_argv(c, 2, argv, NULL);
    }
    if (c->on_state)
        c->on_state(true, c->arg);
}

static void on_connect_timeout(uv_timer_t *t)
{
    lose(t->data, "connect timed out");
}

static void dial(subconn_t *c, const struct sockaddr *sa)
{
    link_t *l = xcalloc(1, sizeof(*l));
    if (!(l->reader = redisReaderCreate())) /* NULL only when it cannot allocate */
        xalloc_die(sizeof(redisReader));
    uv_tcp_init(c->loop, &l->tcp);
    l->tcp.data = l;
    l->creq.data = l;
    l->c = c;
    c->link = l;
    uv_tcp_nodelay(&l->tcp, 1);
    int rc = uv_tcp_connect(&l->creq, &l->tcp, sa, on_connected);
    if (rc) {
        lose(c, uv_strerror(rc));
        return;
    }
    schedule(c, on_connect_timeout, CONNECT_TIMEOUT_MS);
}

static void on_timer_closed(uv_handle_t *h)
{
    subconn_t *c = h->data;
    void (*done)(void *) = c->done;
    void *done_arg = c->done_arg;
    free(c->rbuf);
    free(c);
    if (done)
        done(done_arg);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    subconn_t *c = req->data;
    c->resolving = false;
    if (c->closing) {
        uv_freeaddrinfo(res);
        uv_close((uv_handle_t *)&c->timer, on_timer_closed);
        return;
    }
    if (status < 0 || !res) {
        uv_freeaddrinfo(res);
        lose(c, "cannot resolve the Redis host");
        return;
    }
    dial(c, res->ai_addr);
    uv_freeaddrinfo(res);
}

static void start_connect(subconn_t *c)
{
    /* a numeric address needs no resolver: libuv's resolver runs on its threadpool, and a master
     * with threads running forks workers that inherit the pool's bookkeeping without them */
    struct sockaddr_storage numeric;
    if (uv_ip4_addr(c->cfg->redis_host, c->cfg->redis_port, (struct sockaddr_in *)&numeric) == 0 ||
        uv_ip6_addr(c->cfg->redis_host, c->cfg->redis_port, (struct sockaddr_in6 *)&numeric) == 0) {
        dial(c, (const struct sockaddr *)&numeric);
        return;
    }
    char port[16];
    snprintf(port, sizeof(port), "%d", c->cfg->redis_port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    c->gai.data = c;
    c->resolving = true;
    int rc = uv_getaddrinfo(c->loop, &c->gai, on_resolved, c->cfg->redis_host, port, &hints);
    if (rc) {
        c->resolving = false;
        lose(c, uv_strerror(rc));
    }
}

subconn_t *subconn_new(uv_loop_t *loop, const cfg_t *cfg, const char *name,
                       subconn_reply_fn on_reply, subconn_state_fn on_state, void *arg)
{
    subconn_t *c = xcalloc(1, sizeof(*c));
    c->rbuf = xmalloc(READ_CHUNK);
    c->loop = loop;
    c->cfg = cfg;
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->on_reply = on_reply;
    c->on_state = on_state;
    c->arg = arg;
    c->backoff_ms = BACKOFF_MIN_MS;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    start_connect(c);
    return c;
}

int subconn_command(subconn_t *c, int argc, const char **argv, const size_t *lens)
{
    if (!c->connected || !c->link)
        return -ENOTCONN;
    return send_argv(c, argc, argv, lens);
}

bool subconn_connected(const subconn_t *c)
{
    return c->up;
}

void subconn_count_reconnects(subconn_t *c, _Atomic uint64_t *counter)
{
    c->reconnects = counter;
}

void subconn_close(subconn_t *c, void (*done)(void *arg), void *arg)
{
    c->closing = true;
    c->done = done;
    c->done_arg = arg;
    c->warned = true; /* no "connection dropped" line for a deliberate close */
    if (c->link)
        lose(c, "closing");
    uv_timer_stop(&c->timer);
    if (c->resolving) {
        uv_cancel((uv_req_t *)&c->gai); /* on_resolved closes the timer */
        return;
    }
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}
