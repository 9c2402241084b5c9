/* redis_fake: see redis_fake.h. */
#include "tests/unit/redis_fake.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fake_conn {
    uv_tcp_t tcp;
    fake_t *f;
    fake_conn_t *next;
    redisReader *reader;
    bool closed;
    void *data;
    long long id;
    char name[32];   /* CLIENT SETNAME */
    bool subscribed; /* answered a subscription by fake_pubsub */
};

struct fake {
    uv_loop_t *loop;
    uv_tcp_t srv;
    int port;
    fake_cmd_fn fn;
    void *arg;
    fake_conn_t *conns;
    size_t accepted;
    bool closing;
    int refs; /* the listener + open connections */
    char **seen;
    size_t nseen, capseen;
};

typedef struct wreq {
    uv_write_t req;
    char bytes[];
} wreq_t;

static void release(fake_t *f)
{
    if (--f->refs)
        return;
    for (size_t i = 0; i < f->nseen; i++)
        free(f->seen[i]);
    free(f->seen);
    free(f);
}

static void record(fake_t *f, int argc, char **argv)
{
    char line[256] = "";
    for (int i = 0; i < argc; i++) {
        if (i)
            strncat(line, " ", sizeof(line) - strlen(line) - 1);
        strncat(line, argv[i], sizeof(line) - strlen(line) - 1);
    }
    if (f->nseen == f->capseen) {
        f->capseen = f->capseen ? f->capseen * 2 : 64;
        f->seen = realloc(f->seen, f->capseen * sizeof(*f->seen));
    }
    f->seen[f->nseen++] = strdup(line);
}

size_t fake_nseen(const fake_t *f)
{
    return f->nseen;
}

const char *fake_seen(const fake_t *f, size_t i)
{
    return i < f->nseen ? f->seen[i] : NULL;
}

size_t fake_count(const fake_t *f, const char *line)
{
    size_t n = 0;
    for (size_t i = 0; i < f->nseen; i++)
        n += strcmp(f->seen[i], line) == 0;
    return n;
}

size_t fake_count_prefix(const fake_t *f, const char *prefix)
{
    size_t n = 0;
    for (size_t i = 0; i < f->nseen; i++)
        n += strncmp(f->seen[i], prefix, strlen(prefix)) == 0;
    return n;
}

static void on_conn_closed(uv_handle_t *h)
{
    fake_conn_t *fc = h->data;
    fake_t *f = fc->f;
    for (fake_conn_t **p = &f->conns; *p; p = &(*p)->next) {
        if (*p == fc) {
            *p = fc->next;
            break;
        }
    }
    redisReaderFree(fc->reader);
    free(fc->data);
    free(fc);
    release(f);
}

void fake_drop(fake_conn_t *fc)
{
    if (fc->closed)
        return;
    fc->closed = true;
    uv_close((uv_handle_t *)&fc->tcp, on_conn_closed);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

void fake_send_bytes(fake_conn_t *fc, const char *p, size_t n)
{
    if (fc->closed)
        return;
    wreq_t *w = malloc(sizeof(*w) + n);
    memcpy(w->bytes, p, n);
    uv_buf_t b = uv_buf_init(w->bytes, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&fc->tcp, &b, 1, on_written))
        free(w);
}

void fake_send(fake_conn_t *fc, const char *resp)
{
    fake_send_bytes(fc, resp, strlen(resp));
}

static void on_shut(uv_shutdown_t *req, int status)
{
    (void)status; /* cancelled when the connection was dropped meanwhile: fake_drop is a no-op */
    fake_drop(req->data);
    free(req);
}

void fake_send_last(fake_conn_t *fc, const char *p, size_t n)
{
    fake_send_bytes(fc, p, n);
    if (fc->closed)
        return;
    uv_shutdown_t *req = malloc(sizeof(*req));
    req->data = fc;
    if (uv_shutdown(req, (uv_stream_t *)&fc->tcp, on_shut)) {
        free(req);
        fake_drop(fc);
    }
}

void **fake_conn_data(fake_conn_t *fc)
{
    return &fc->data;
}

fake_t *fake_of(fake_conn_t *fc)
{
    return fc->f;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(suggested);
    b->len = suggested;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    fake_conn_t *fc = s->data;
    if (n < 0 || fc->closed) {
        free(b->base);
        fake_drop(fc);
        return;
    }
    redisReaderFeed(fc->reader, b->base, (size_t)n);
    free(b->base);
    void *reply;
    while (!fc->closed && redisReaderGetReply(fc->reader, &reply) == REDIS_OK && reply) {
        redisReply *r = reply;
        if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->elements < 64) {
            char *argv[64];
            size_t lens[64];
            for (size_t i = 0; i < r->elements; i++) {
                argv[i] = r->element[i]->str;
                lens[i] = r->element[i]->len;
            }
            record(fc->f, (int)r->elements, argv);
            fc->f->fn(fc, (int)r->elements, argv, lens, fc->f->arg);
        }
        freeReplyObject(r);
    }
}

static void on_connection(uv_stream_t *srv, int status)
{
    fake_t *f = srv->data;
    if (status < 0 || f->closing)
        return;
    fake_conn_t *fc = calloc(1, sizeof(*fc));
    fc->f = f;
    fc->reader = redisReaderCreate();
    uv_tcp_init(f->loop, &fc->tcp);
    fc->tcp.data = fc;
    f->refs++;
    if (uv_accept(srv, (uv_stream_t *)&fc->tcp)) {
        fake_drop(fc);
        return;
    }
    /* as Redis does: an answer written in pieces is not held back for the client's ACK */
    uv_tcp_nodelay(&fc->tcp, 1);
    fc->id = (long long)++f->accepted;
    fc->next = f->conns;
    f->conns = fc;
    uv_read_start((uv_stream_t *)&fc->tcp, on_alloc, on_read);
}

fake_t *fake_new(uv_loop_t *loop, fake_cmd_fn fn, void *arg)
{
    fake_t *f = calloc(1, sizeof(*f));
    f->loop = loop;
    f->fn = fn;
    f->arg = arg;
    uv_tcp_init(loop, &f->srv);
    f->srv.data = f;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&f->srv, (const struct sockaddr *)&a, 0);
    uv_listen((uv_stream_t *)&f->srv, 64, on_connection);
    struct sockaddr_in got;
    int len = sizeof(got);
    uv_tcp_getsockname(&f->srv, (struct sockaddr *)&got, &len);
    f->port = ntohs(got.sin_port);
    f->refs = 1;
    return f;
}

int fake_port(const fake_t *f)
{
    return f->port;
}

size_t fake_accepted(const fake_t *f)
{
    return f->accepted;
}

static fake_conn_t *open_from(fake_conn_t *fc)
{
    while (fc && fc->closed)
        fc = fc->next;
    return fc;
}

fake_conn_t *fake_last(const fake_t *f)
{
    return open_from(f->conns);
}

fake_conn_t *fake_first(const fake_t *f)
{
    return open_from(f->conns);
}

fake_conn_t *fake_next(const fake_conn_t *fc)
{
    return open_from(fc->next);
}

static void on_srv_closed(uv_handle_t *h)
{
    release(h->data);
}

void fake_free(fake_t *f)
{
    f->closing = true;
    for (fake_conn_t *fc = f->conns; fc; fc = fc->next)
        fake_drop(fc);
    uv_close((uv_handle_t *)&f->srv, on_srv_closed);
}

void fake_sub_confirm(fake_conn_t *fc, const char *word, const char *ch, int count)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "*3\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n:%d\r\n", strlen(word), word,
             strlen(ch), ch, count);
    fake_send(fc, buf);
}

void fake_on_reply(const redisReply *r, void *arg)
{
    fake_replies_t *rep = arg;
    if (!r) {
        rep->nulls++;
        return;
    }
    rep->replies++;
    snprintf(rep->last, sizeof(rep->last), "%.*s", (int)r->len, r->str ? r->str : "");
}

static bool is(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

bool fake_handshake(fake_conn_t *fc, int argc, char **argv)
{
    char buf[64];
    if (argc == 3 && is(argv[0], "CLIENT") && is(argv[1], "SETNAME")) {
        snprintf(fc->name, sizeof(fc->name), "%s", argv[2]);
        fake_send(fc, "+OK\r\n");
    } else if (is(argv[0], "AUTH") || is(argv[0], "SELECT") || is(argv[0], "ASKING")) {
        fake_send(fc, "+OK\r\n");
    } else if (argc == 2 && is(argv[0], "CLIENT") && is(argv[1], "ID")) {
        snprintf(buf, sizeof(buf), ":%lld\r\n", 1000 + fc->id);
        fake_send(fc, buf);
    } else if (is(argv[0], "ROLE")) {
        fake_send(fc, "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");
    } else if (is(argv[0], "PING")) {
        fake_send(fc, "+PONG\r\n");
    } else {
        return false;
    }
    return true;
}

bool fake_pubsub(fake_conn_t *fc, int argc, char **argv)
{
    if (fake_handshake(fc, argc, argv))
        return true;
    if (argc != 2)
        return false;
    if (is(argv[0], "SUBSCRIBE") || is(argv[0], "PSUBSCRIBE") || is(argv[0], "SSUBSCRIBE")) {
        fc->subscribed = true;
        char word[16];
        snprintf(word, sizeof(word), "%s", argv[0]);
        for (char *p = word; *p; p++)
            *p = (char)(*p | 0x20); /* Redis confirms in lower case */
        fake_sub_confirm(fc, word, argv[1], 1);
    } else if (is(argv[0], "SUNSUBSCRIBE")) {
        fake_sub_confirm(fc, "sunsubscribe", argv[1], 0);
    } else {
        return false;
    }
    return true;
}

size_t fake_named(const fake_t *f, const char *name, bool subscribed, fake_conn_t **found)
{
    size_t n = 0;
    *found = NULL;
    for (fake_conn_t *fc = fake_first(f); fc; fc = fake_next(fc)) {
        if (strcmp(fc->name, name) == 0 && fc->subscribed == subscribed) {
            *found = fc;
            n++;
        }
    }
    return n;
}

typedef struct guard {
    bool fired;
} guard_t;

static void on_guard(uv_timer_t *t)
{
    ((guard_t *)t->data)->fired = true;
}

static void on_guard_closed(uv_handle_t *h)
{
    (void)h;
}

bool fake_run_until(uv_loop_t *loop, bool (*cond)(void *arg), void *arg, unsigned ms)
{
    guard_t g = {false};
    uv_timer_t t;
    uv_timer_init(loop, &t);
    t.data = &g;
    uv_timer_start(&t, on_guard, ms, 0);
    bool ok;
    while (!(ok = cond(arg)) && !g.fired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, on_guard_closed);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

void fake_run_for(uv_loop_t *loop, unsigned ms)
{
    fake_run_until(loop, never, NULL, ms);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int fake_loop_close(uv_loop_t *loop)
{
    /* everything the test closed properly goes within a few turns (resolver threads too) */
    uint64_t end = uv_hrtime() + 2000000000ull;
    while (uv_loop_alive(loop) && uv_hrtime() < end)
        uv_run(loop, UV_RUN_NOWAIT);
    int rc = uv_loop_close(loop);
    if (rc == 0)
        return 0;
    uv_walk(loop, close_walk, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return rc;
}

redis_topology_t *fake_topology(fake_t *f, uv_loop_t *loop, unsigned timeout_ms)
{
    redis_topology_opts_t o = {.mode = REDIS_MODE_SINGLE};
    snprintf(o.addr.host, sizeof(o.addr.host), "127.0.0.1");
    o.addr.port = fake_port(f);
    o.conn.connect_timeout_ms = timeout_ms;
    o.conn.command_timeout_ms = timeout_ms;
    o.conn.backoff_min_ms = 10;
    o.conn.backoff_max_ms = 50;
    redis_topology_t *t = NULL;
    buf_t err;
    buf_init(&err);
    if (redis_topology_new(&t, loop, &o, &err)) {
        fprintf(stderr, "fake_topology: %s\n", err.data ? err.data : "?");
        abort();
    }
    buf_free(&err);
    return t;
}
