/* splice: see splice.h. */
#include "worker/net/splice.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xalloc.h"

typedef struct side {
    uv_tcp_t tcp;
    uv_write_t wr;
    struct side *other;
    char buf[SPLICE_BUF];
    bool eof;     /* it sent everything it will send */
    bool writing; /* a write of its bytes to the other side is in flight */
} side_t;

typedef struct splice {
    side_t client, peer;
    struct splice *next, **pprev; /* in its set until it starts closing */
    uv_connect_t connect;
    uv_shutdown_t shut[2];
    uv_write_t hello_wr, first_wr, fallback_wr;
    uv_timer_t timer; /* the connect and answer deadline, then the idle check */
    splice_stats_t *stats;
    char *hello, *expect, *first, *fallback; /* in bytes[] */
    size_t hello_len, expect_len, first_len, fallback_len;
    size_t got;    /* bytes of the peer's answer matched so far */
    uint64_t last; /* loop time of the last byte either way */
    bool verified; /* the peer gave the expected answer: bytes flow both ways */
    bool closing;
    int open; /* handles not yet closed */
    char bytes[];
} splice_t;

struct splice_set {
    uv_loop_t *loop;
    splice_t *head;
};

static splice_t *of(const side_t *s)
{
    return (splice_t *)s->tcp.data;
}

static void on_closed(uv_handle_t *h)
{
    splice_t *sp = h->data;
    if (--sp->open)
        return;
    free(sp);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_closed);
}

static void close_all(splice_t *sp)
{
    if (sp->closing)
        return;
    sp->closing = true;
    if (sp->pprev) {
        *sp->pprev = sp->next;
        if (sp->next)
            sp->next->pprev = sp->pprev;
        sp->pprev = NULL;
    }
    close_handle((uv_handle_t *)&sp->client.tcp);
    close_handle((uv_handle_t *)&sp->peer.tcp);
    close_handle((uv_handle_t *)&sp->timer);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    side_t *s = (side_t *)h; /* tcp is the first member */
    *buf = uv_buf_init(s->buf, sizeof(s->buf));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

static void on_written(uv_write_t *w, int status)
{
    side_t *from = w->data;
    splice_t *sp = of(from);
    from->writing = false;
    if (status < 0 || sp->closing) {
        close_all(sp);
        return;
    }
    uv_read_start((uv_stream_t *)&from->tcp, on_alloc, on_read); /* its buffer is free again */
}

static void on_shutdown(uv_shutdown_t *r, int status)
{
    splice_t *sp = r->data;
    if (status < 0 || (sp->client.eof && sp->peer.eof))
        close_all(sp);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    side_t *from = (side_t *)st;
    splice_t *sp = of(from);
    if (n == 0 || sp->closing)
        return;
    if (n < 0) {
        if (n != UV_EOF) {
            close_all(sp);
            return;
        }
        from->eof = true;
        uv_read_stop(st);
        uv_shutdown_t *r = &sp->shut[from == &sp->client ? 0 : 1];
        r->data = sp;
        if (uv_shutdown(r, (uv_stream_t *)&from->other->tcp, on_shutdown))
            close_all(sp);
        return;
    }
    sp->last = uv_now(st->loop);
    if (sp->stats) {
        if (from == &sp->client)
            sp->stats->bytes_in += (uint64_t)n;
        else
            sp->stats->bytes_out += (uint64_t)n;
    }
    /* one write in flight per direction: reading waits for it, so the buffer stays valid */
    uv_read_stop(st);
    from->writing = true;
    from->wr.data = from;
    uv_buf_t out = uv_buf_init(from->buf, (unsigned)n);
    if (uv_write(&from->wr, (uv_stream_t *)&from->other->tcp, &out, 1, on_written))
        close_all(sp);
}

static void on_fallback_written(uv_write_t *w, int status)
{
    (void)status;
    close_all(w->data);
}

/* The peer is out of reach: the client gets the fallback answer instead. */
static void fail(splice_t *sp)
{
    if (sp->stats)
        sp->stats->failed++;
    uv_buf_t b = uv_buf_init(sp->fallback, (unsigned)sp->fallback_len);
    sp->fallback_wr.data = sp;
    uv_timer_stop(&sp->timer);
    if (!sp->fallback_len ||
        uv_write(&sp->fallback_wr, (uv_stream_t *)&sp->client.tcp, &b, 1, on_fallback_written))
        close_all(sp);
}

static void on_first_written(uv_write_t *w, int status)
{
    if (status < 0)
        close_all(w->data);
}

static void on_timer_idle(uv_timer_t *t);

/* The peer is the server meant: the request goes, then bytes flow both ways. */
static void relay(splice_t *sp)
{
    sp->verified = true;
    if (sp->stats)
        sp->stats->relayed++;
    sp->last = uv_now(sp->timer.loop);
    uv_timer_start(&sp->timer, on_timer_idle, SPLICE_IDLE_MS / 4, SPLICE_IDLE_MS / 4);
    uv_buf_t b = uv_buf_init(sp->first, (unsigned)sp->first_len);
    sp->first_wr.data = sp;
    if (uv_write(&sp->first_wr, (uv_stream_t *)&sp->peer.tcp, &b, 1, on_first_written) ||
        uv_read_start((uv_stream_t *)&sp->client.tcp, on_alloc, on_read) ||
        uv_read_start((uv_stream_t *)&sp->peer.tcp, on_alloc, on_read))
        close_all(sp);
}

/* Not the server meant (or gone): its connection ends, the client gets the fallback. */
static void refuse(splice_t *sp)
{
    if (uv_is_closing((uv_handle_t *)&sp->peer.tcp))
        return; /* refused already: its pending callbacks end here */
    close_handle((uv_handle_t *)&sp->peer.tcp); /* also cancels a connect still in flight */
    fail(sp);
}

static void on_timer_idle(uv_timer_t *t)
{
    splice_t *sp = t->data;
    if (uv_now(t->loop) - sp->last >= SPLICE_IDLE_MS)
        close_all(sp);
}

static void on_timer_connect(uv_timer_t *t)
{
    refuse(t->data);
}

/* The answer is read into the peer's buffer, never past its expected length. */
static void on_alloc_answer(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    side_t *s = (side_t *)h;
    splice_t *sp = of(s);
    *buf = uv_buf_init(s->buf + sp->got, (unsigned)(sp->expect_len - sp->got));
}

static void on_read_answer(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    splice_t *sp = of((side_t *)st);
    if (n == 0 || sp->closing)
        return;
    if (n < 0 || memcmp(buf->base, sp->expect + sp->got, (size_t)n) != 0) {
        refuse(sp);
        return;
    }
    sp->got += (size_t)n;
    if (sp->got < sp->expect_len)
        return;
    uv_read_stop(st);
    relay(sp);
}

static void on_hello_written(uv_write_t *w, int status)
{
    splice_t *sp = w->data;
    if (status < 0 && !sp->closing)
        refuse(sp);
}

static void on_connect(uv_connect_t *c, int status)
{
    splice_t *sp = c->data;
    if (status == UV_ECANCELED || sp->closing)
        return;
    if (status < 0) {
        fail(sp);
        return;
    }
    if (!sp->expect_len) {
        relay(sp);
        return;
    }
    uv_buf_t b = uv_buf_init(sp->hello, (unsigned)sp->hello_len);
    sp->hello_wr.data = sp;
    if ((sp->hello_len &&
         uv_write(&sp->hello_wr, (uv_stream_t *)&sp->peer.tcp, &b, 1, on_hello_written)) ||
        uv_read_start((uv_stream_t *)&sp->peer.tcp, on_alloc_answer, on_read_answer))
        refuse(sp);
}

/* Copies the next part into bytes[] at *at; returns where it went. */
static char *place(splice_t *sp, size_t *at, const void *p, size_t len)
{
    char *to = sp->bytes + *at;
    if (len)
        memcpy(to, p, len);
    *at += len;
    return to;
}

splice_set_t *splice_set_new(uv_loop_t *loop)
{
    splice_set_t *set = xcalloc(1, sizeof(*set));
    set->loop = loop;
    return set;
}

void splice_set_free(splice_set_t *set)
{
    if (!set)
        return;
    while (set->head)
        close_all(set->head); /* unlinks it */
    free(set);
}

int splice_start(splice_set_t *set, int client_fd, const struct sockaddr *peer,
                 const splice_msgs_t *m, splice_stats_t *stats)
{
    if (m->expect_len > SPLICE_BUF) { /* the answer is read into one side's buffer */
        close(client_fd);
        return UV_EINVAL;
    }
    uv_loop_t *loop = set->loop;
    splice_t *sp =
        xcalloc(1, sizeof(*sp) + m->hello_len + m->expect_len + m->first_len + m->fallback_len);
    sp->next = set->head;
    if (sp->next)
        sp->next->pprev = &sp->next;
    sp->pprev = &set->head;
    set->head = sp;
    sp->client.other = &sp->peer;
    sp->peer.other = &sp->client;
    sp->stats = stats;
    uv_tcp_init(loop, &sp->client.tcp);
    uv_tcp_init(loop, &sp->peer.tcp);
    uv_timer_init(loop, &sp->timer);
    sp->client.tcp.data = sp->peer.tcp.data = sp->timer.data = sp;
    sp->open = 3;
    int rc = uv_tcp_open(&sp->client.tcp, client_fd);
    if (rc) {
        close(client_fd);
        close_all(sp);
        return rc;
    }
    if (stats)
        stats->bytes_in += m->first_len;
    size_t at = 0;
    sp->hello = place(sp, &at, m->hello, sp->hello_len = m->hello_len);
    sp->expect = place(sp, &at, m->expect, sp->expect_len = m->expect_len);
    sp->first = place(sp, &at, m->first, sp->first_len = m->first_len);
    sp->fallback = place(sp, &at, m->fallback, sp->fallback_len = m->fallback_len);
    uv_tcp_nodelay(&sp->peer.tcp, 1);
    sp->connect.data = sp;
    rc = uv_tcp_connect(&sp->connect, &sp->peer.tcp, peer, on_connect);
    if (rc) {
        fail(sp);
        return 0;
    }
    uv_timer_start(&sp->timer, on_timer_connect, SPLICE_CONNECT_MS, 0);
    return 0;
}
