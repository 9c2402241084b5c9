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
    uv_write_t first_wr, fallback_wr;
    uv_timer_t timer; /* the connect deadline, then the idle check */
    splice_stats_t *stats;
    char *first, *fallback;
    size_t first_len, fallback_len;
    uint64_t last; /* loop time of the last byte either way */
    bool connected, closing;
    int open; /* handles not yet closed */
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
    free(sp->first);
    free(sp->fallback);
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

static void on_timer(uv_timer_t *t)
{
    splice_t *sp = t->data;
    if (!sp->connected) {
        /* closing the peer handle cancels the connect: on_connect sees UV_ECANCELED */
        close_handle((uv_handle_t *)&sp->peer.tcp);
        fail(sp);
        return;
    }
    if (uv_now(t->loop) - sp->last >= SPLICE_IDLE_MS)
        close_all(sp);
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
    sp->connected = true;
    if (sp->stats)
        sp->stats->relayed++;
    sp->last = uv_now(c->handle->loop);
    uv_timer_start(&sp->timer, on_timer, SPLICE_IDLE_MS / 4, SPLICE_IDLE_MS / 4);
    uv_buf_t b = uv_buf_init(sp->first, (unsigned)sp->first_len);
    sp->first_wr.data = sp;
    if (uv_write(&sp->first_wr, (uv_stream_t *)&sp->peer.tcp, &b, 1, on_first_written) ||
        uv_read_start((uv_stream_t *)&sp->client.tcp, on_alloc, on_read) ||
        uv_read_start((uv_stream_t *)&sp->peer.tcp, on_alloc, on_read))
        close_all(sp);
}

static char *copy(const void *p, size_t len)
{
    char *c = xmalloc(len ? len : 1);
    if (len)
        memcpy(c, p, len);
    return c;
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

int splice_start(splice_set_t *set, int client_fd, const struct sockaddr *peer, const void *first,
                 size_t first_len, const void *fallback, size_t fallback_len, splice_stats_t *stats)
{
    uv_loop_t *loop = set->loop;
    splice_t *sp = xcalloc(1, sizeof(*sp));
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
        stats->bytes_in += first_len;
    sp->first = copy(first, first_len);
    sp->first_len = first_len;
    sp->fallback = copy(fallback, fallback_len);
    sp->fallback_len = fallback_len;
    uv_tcp_nodelay(&sp->peer.tcp, 1);
    sp->connect.data = sp;
    rc = uv_tcp_connect(&sp->connect, &sp->peer.tcp, peer, on_connect);
    if (rc) {
        fail(sp);
        return 0;
    }
    uv_timer_start(&sp->timer, on_timer, SPLICE_CONNECT_MS, 0);
    return 0;
}
