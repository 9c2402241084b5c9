/*
 * conn: states, output queue and close sequence.
 *
 * Output: a per-connection ring of (refbuf, offset) slots. Shared frames are referenced, owned
 * bytes (HTTP responses, per-socket frames, wslay's control frames) are refbufs of their own.
 * Queuing marks the connection dirty; the context's check handle flushes every dirty connection
 * once per loop iteration. An idle handle is active while the dirty list is non-empty so that
 * output queued outside the poll phase (timers, other check handles) does not wait for the next
 * I/O event: libuv polls with a zero timeout while an idle handle is active.
 *
 * With io_uring (the default where the kernel allows it), the check handle hands every dirty
 * connection's queue to the kernel as one send SQE each and submits them together: one syscall
 * per loop iteration instead of one per connection, which is most of a delivery's CPU on a box
 * where syscalls are dear. MSG_DONTWAIT makes the kernel complete each send inline, whole, in part
 * or with -EAGAIN, so the completions are reaped right after the submit; what a send left is
 * written the libuv way (uv_write waits for writability). The queued bytes stay in their slots
 * until the completion says how many went, so a connection has at most one write in progress of
 * either kind and its bytes go out in order. A completion that is not there after the submit (the
 * kernel deferred the send) is reaped when the ring's fd turns readable; until then the
 * connection counts as writing and is not released.
 *
 * Close: conn_close is immediate (uv_close). The graceful path drains the queue, shuts the write
 * side down, and waits for the peer's FIN, bounded by close_timeout_ms. The memory is released
 * once the handles are closed and no write or shutdown request is pending.
 */
#include "worker/net/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include "common/ilist.h"
#include "common/xalloc.h"
#include "worker/net/timerq.h"

#define READ_BUF_SIZE 65536
#define FLUSH_IOV_MAX 64
/* uv_write_t stores up to 4 buffers inline (bufsml); more would make libuv malloc per write. */
#define WRITE_IOV_INLINE 4
#define SLOTS_MIN 8
/* Slots inside conn_t: the handshake's answers and a quiet connection's sends fit without an
 * array of their own; a busier one grows to the heap once and keeps it. */
#define SLOTS_INLINE 2
/* Write and shutdown requests kept for reuse; more idle ones than this are freed. */
#define FREE_REQS_MAX 1024
/* io_uring: SQ entries (one submit per this many dirty connections at most), and buffers that
 * the sends prepared before one submit may point at (the kernel copies them at submit). */
#define RING_ENTRIES 256
#define RING_IOV 1024
/* completions: inline, or -EAGAIN instead of waiting; no SIGPIPE from a reset peer */
#define RING_SEND_FLAGS (MSG_DONTWAIT | MSG_NOSIGNAL)

enum conn_state {
    ST_OPEN,     /* reading; the protocol decides what the bytes mean */
    ST_DRAINING, /* flushing the queue, then shutdown */
    ST_LINGER,   /* write side shut down; waiting for the peer's FIN */
    ST_CLOSED,   /* uv_close called; waiting for the callbacks */
};

typedef struct oslot {
    refbuf_t *rb;
    size_t off;
} oslot_t;

/* A write or a shutdown in progress. Only a connection waiting on libuv holds one, taken from
 * the context's free list, so an idle connection carries no uv_write_t (192 bytes). */
typedef union req {
    uv_write_t w;
    uv_shutdown_t s;
    union req *next_free;
} req_t;

struct conn {
    uv_tcp_t tcp;
    int fd; /* the socket's, kept at accept or adopt: a ring send needs it each time */
    /* the pending write or shutdown (never both: the shutdown waits for the last write, and
     * nothing is written after); NULL when neither */
    req_t *req;
    timerq_node_t close_node; /* close_timeout_ms deadline of a graceful close */
    conn_ctx_t *ctx;
    const conn_proto_t *proto;
    void *pstate;
    conn_close_fn on_close;
    void *ud;
    ilist_t link;  /* in ctx->conns */
    ilist_t dlink; /* in ctx->dirty while it has output to flush */
    oslot_t *slots;
    uint32_t cap; /* power of two */
    uint32_t head;
    uint32_t count;
    uint32_t inflight; /* slots at the head owned by the pending uv_write or ring send */
    size_t outq_bytes;
    enum conn_state st;
    uint8_t handles; /* open libuv handles: tcp */
    bool announced;  /* accepted: the owner's close callback is owed */
    bool writing;    /* a uv_write is pending */
    bool sending;    /* a ring send is in flight: its completion is not reaped yet */
    bool shutting;
    bool peer_eof;
    bool close_armed;  /* close_node was armed once (re-armed only while a write progresses) */
    size_t close_mark; /* the write queue's size at the deadline's last look */
    /* slots points here until the connection needs more at once (then to the heap) */
    oslot_t inl[SLOTS_INLINE];
};

struct conn_ctx {
    uv_loop_t *loop;
    conn_limits_t lim;
    stats_worker_t *limit_stats;
    uv_check_t check;
    uv_idle_t idle;
    timerq_t *closeq; /* graceful close deadlines */
    int handles;
    bool freeing;
    ilist_t conns; /* every connection not yet released, the newest first */
    ilist_t dirty; /* the connections to flush, the last marked first */
    conn_stats_t stats;
    uv_buf_t iov[FLUSH_IOV_MAX];
    char *rbuf;
    req_t *free_reqs; /* FREE_REQS_MAX at most */
    unsigned nfree_reqs;
    /* io_uring (ring_on): sends prepared since the last submit point into msgs and riov */
    bool ring_on;
    bool ring_polling; /* ring_poll started: completions are owed after a submit */
    struct io_uring ring;
    uv_poll_t ring_poll; /* the ring's fd, for completions that come after the submit */
    unsigned ring_sent;  /* sends submitted (or prepared) and not reaped */
    unsigned nmsgs, nriov;
    struct msghdr *msgs; /* RING_ENTRIES */
    uv_buf_t *riov;      /* RING_IOV; uv_buf_t is laid out as struct iovec on Unix */
};

static void flush(conn_t *c);
static void write_rest(conn_t *c);
static void on_close_late(timerq_node_t *n, void *arg);
static bool ring_queue(conn_ctx_t *ctx, conn_t *c);
static void ring_submit(conn_ctx_t *ctx);
static unsigned ring_reap(conn_ctx_t *ctx);

/* ==== Context ==== */

static void ctx_maybe_free(conn_ctx_t *ctx)
{
    if (!ctx->freeing || ctx->handles || !ilist_empty(&ctx->conns))
        return;
    while (ctx->free_reqs) {
        req_t *r = ctx->free_reqs;
        ctx->free_reqs = r->next_free;
        free(r);
    }
    if (ctx->ring_on)
        io_uring_queue_exit(&ctx->ring);
    free(ctx->msgs);
    free(ctx->riov);
    free(ctx->rbuf);
    free(ctx);
}

static void on_ctx_handle_closed(uv_handle_t *h)
{
    conn_ctx_t *ctx = h->data;
    ctx->handles--;
    ctx_maybe_free(ctx);
}

/* The next connection with output to flush, off the dirty list; NULL when none is left. */
static conn_t *dirty_pop(conn_ctx_t *ctx)
{
    ilist_t *l = ilist_pop_front(&ctx->dirty);
    return l ? ILIST_ENTRY(l, conn_t, dlink) : NULL;
}

/* Flushes every dirty connection: as one ring send each, submitted together, where the ring has
 * room; with syscalls otherwise (no ring, the ring full, or nothing to send but a drain). The
 * submit reaps completions, and one can release a closed connection whose owner then queues
 * output elsewhere (a departure told to the others): that output goes in another round. */
static void on_check(uv_check_t *h)
{
    conn_ctx_t *ctx = h->data;
    do {
        for (conn_t *c; (c = dirty_pop(ctx));) {
            if (!ring_queue(ctx, c))
                flush(c);
        }
        if (ctx->ring_on)
            ring_submit(ctx);
    } while (!ilist_empty(&ctx->dirty));
    uv_check_stop(&ctx->check);
    uv_idle_stop(&ctx->idle);
}

static void on_idle(uv_idle_t *h)
{
    (void)h; /* only active to keep the next poll from blocking while output is pending */
}

static void on_ring_readable(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    conn_ctx_t *ctx = h->data;
    ctx->stats.ring_late += ring_reap(ctx);
}

/* The ring sends and copies what it is given at submit (the msghdrs are reused after each):
 * kernels from 5.6 on. */
static bool ring_usable(struct io_uring *ring, const struct io_uring_params *p)
{
    if (!(p->features & IORING_FEAT_SUBMIT_STABLE))
        return false;
    struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
    bool ok = probe && io_uring_opcode_supported(probe, IORING_OP_SEND) &&
              io_uring_opcode_supported(probe, IORING_OP_SENDMSG);
    io_uring_free_probe(probe);
    return ok;
}

/* A ring where the kernel allows one (not under a seccomp filter, io_uring_disabled, a kernel
 * before 5.6); otherwise ring_on stays false and io_uring_err says why. */
static void ring_init(conn_ctx_t *ctx)
{
    struct io_uring_params p = {.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN};
    int rc = io_uring_queue_init_params(RING_ENTRIES, &ctx->ring, &p);
    if (rc == -EINVAL) { /* before 5.19: without the flags */
        memset(&p, 0, sizeof(p));
        rc = io_uring_queue_init_params(RING_ENTRIES, &ctx->ring, &p);
    }
    if (rc == 0 && !ring_usable(&ctx->ring, &p)) {
        io_uring_queue_exit(&ctx->ring);
        rc = -EOPNOTSUPP;
    }
    if (rc == 0 && (rc = uv_poll_init(ctx->loop, &ctx->ring_poll, ctx->ring.ring_fd)) != 0)
        io_uring_queue_exit(&ctx->ring);
    if (rc) {
        ctx->stats.io_uring_err = rc;
        return;
    }
    ctx->ring_poll.data = ctx;
    ctx->handles++;
    ctx->ring_on = true;
    ctx->stats.io_uring = true;
    ctx->msgs = xcalloc(RING_ENTRIES, sizeof(*ctx->msgs));
    ctx->riov = xmalloc(RING_IOV * sizeof(*ctx->riov));
}

int conn_ctx_new(conn_ctx_t **out, uv_loop_t *loop, const conn_limits_t *lim, stats_worker_t *stats)
{
    if (!out || !loop)
        return -EINVAL;
    conn_ctx_t *ctx = xcalloc(1, sizeof(*ctx));
    ilist_init(&ctx->conns);
    ilist_init(&ctx->dirty);
    ctx->rbuf = xmalloc(READ_BUF_SIZE);
    ctx->loop = loop;
    ctx->limit_stats = stats;
    if (lim)
        ctx->lim = *lim;
    if (!ctx->lim.max_outq_bytes)
        ctx->lim.max_outq_bytes = CONN_DEFAULT_MAX_OUTQ_BYTES;
    if (!ctx->lim.close_timeout_ms)
        ctx->lim.close_timeout_ms = CONN_DEFAULT_CLOSE_TIMEOUT_MS;
    int rc = uv_check_init(loop, &ctx->check);
    if (rc) {
        free(ctx->rbuf);
        free(ctx);
        return rc;
    }
    ctx->check.data = ctx;
    ctx->handles = 1;
    rc = uv_idle_init(loop, &ctx->idle);
    if (rc) {
        ctx->freeing = true;
        uv_close((uv_handle_t *)&ctx->check, on_ctx_handle_closed);
        return rc;
    }
    ctx->idle.data = ctx;
    ctx->handles = 2;
    if (!ctx->lim.no_io_uring)
        ring_init(ctx);
    rc = timerq_new(&ctx->closeq, loop, ctx->lim.close_timeout_ms, on_close_late, ctx);
    if (rc) {
        conn_ctx_free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

void conn_ctx_free(conn_ctx_t *ctx)
{
    if (!ctx)
        return;
    ctx->freeing = true;
    ILIST_FOREACH_SAFE(l, &ctx->conns)
    {
        conn_close(ILIST_ENTRY(l, conn_t, link));
    }
    timerq_close(ctx->closeq);
    uv_close((uv_handle_t *)&ctx->check, on_ctx_handle_closed);
    uv_close((uv_handle_t *)&ctx->idle, on_ctx_handle_closed);
    if (ctx->ring_on && !ctx->ring_sent) /* else once the last completion is reaped */
        uv_close((uv_handle_t *)&ctx->ring_poll, on_ctx_handle_closed);
}

void conn_ctx_stats(const conn_ctx_t *ctx, conn_stats_t *out)
{
    *out = ctx->stats;
}

/* ==== Requests ==== */

static req_t *req_take(conn_ctx_t *ctx)
{
    req_t *r = ctx->free_reqs;
    if (!r)
        return xmalloc(sizeof(*r));
    ctx->free_reqs = r->next_free;
    ctx->nfree_reqs--;
    return r;
}

static void req_put(conn_ctx_t *ctx, req_t *r)
{
    if (ctx->nfree_reqs >= FREE_REQS_MAX) {
        free(r);
        return;
    }
    r->next_free = ctx->free_reqs;
    ctx->free_reqs = r;
    ctx->nfree_reqs++;
}

/* Gives the connection's request back (called first in its callback). */
static conn_t *req_done(void *data)
{
    conn_t *c = data;
    req_put(c->ctx, c->req);
    c->req = NULL;
    return c;
}

/* ==== Output queue ==== */

static void mark_dirty(conn_t *c)
{
    conn_ctx_t *ctx = c->ctx;
    if (ilist_linked(&c->dlink) || c->st == ST_CLOSED)
        return;
    if (ilist_empty(&ctx->dirty)) {
        uv_check_start(&ctx->check, on_check);
        uv_idle_start(&ctx->idle, on_idle);
    }
    ilist_push_front(&ctx->dirty, &c->dlink);
}

static oslot_t *slot_at(const conn_t *c, uint32_t i)
{
    return &c->slots[(c->head + i) & (c->cap - 1)];
}

static size_t slot_left(const oslot_t *s)
{
    return refbuf_len(s->rb) - s->off;
}

void conn_push(conn_t *c, refbuf_t *rb)
{
    if (c->count == c->cap) {
        uint32_t ncap = c->cap * 2 < SLOTS_MIN ? SLOTS_MIN : c->cap * 2;
        oslot_t *ns = xmalloc(ncap * sizeof(*ns));
        for (uint32_t i = 0; i < c->count; i++)
            ns[i] = *slot_at(c, i);
        if (c->slots != c->inl)
            free(c->slots);
        c->slots = ns;
        c->cap = ncap;
        c->head = 0;
    }
    *slot_at(c, c->count) = (oslot_t){.rb = rb, .off = 0};
    c->count++;
    c->outq_bytes += refbuf_len(rb);
    mark_dirty(c);
}

static void q_pop(conn_t *c)
{
    oslot_t *s = slot_at(c, 0);
    c->outq_bytes -= slot_left(s);
    refbuf_unref(s->rb);
    c->head = (c->head + 1) & (c->cap - 1);
    c->count--;
}

static void q_consume(conn_t *c, size_t n)
{
    while (n > 0) {
        oslot_t *s = slot_at(c, 0);
        size_t left = slot_left(s);
        if (n < left) {
            s->off += n;
            c->outq_bytes -= n;
            return;
        }
        n -= left;
        q_pop(c);
    }
}

static uint32_t fill_iov(conn_t *c, uv_buf_t *iov, uint32_t max, size_t *bytes)
{
    uint32_t n = c->count < max ? c->count : max;
    *bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        oslot_t *s = slot_at(c, i);
        iov[i] = uv_buf_init(refbuf_data(s->rb) + s->off, (unsigned int)slot_left(s));
        *bytes += slot_left(s);
    }
    return n;
}

/* What waits behind the head slot (the one the kernel takes from next, or is taking). */
static size_t behind_head(const conn_t *c)
{
    return c->count ? c->outq_bytes - slot_left(slot_at(c, 0)) : 0;
}

bool conn_fits(const conn_t *c, size_t len)
{
    size_t max = c->ctx->lim.max_outq_bytes;
    size_t behind = behind_head(c);
    /* a frame larger than the limit (shared by every recipient: no copy each) makes no reader
     * slow: it is taken when nothing waits behind the head */
    return behind == 0 || (len <= max && behind <= max - len);
}

/* ==== Close sequence ==== */

static void maybe_release(conn_t *c)
{
    if (c->st != ST_CLOSED || c->handles || c->writing || c->sending || c->shutting)
        return;
    conn_ctx_t *ctx = c->ctx;
    if (c->announced) {
        if (c->on_close)
            c->on_close(c, c->ud);
        ctx->stats.closed++;
    }
    if (c->proto && c->proto->on_release)
        c->proto->on_release(c, c->pstate);
    while (c->count)
        q_pop(c);
    if (c->slots != c->inl)
        free(c->slots);
    ilist_remove(&c->link);
    ctx->stats.live--;
    free(c);
    ctx_maybe_free(ctx);
}

static void on_handle_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    c->handles--;
    maybe_release(c);
}

void conn_close(conn_t *c)
{
    if (c->st == ST_CLOSED)
        return;
    c->st = ST_CLOSED;
    ilist_remove(&c->dlink);
    /* Slots owned by a pending uv_write (or ring send) are released by its (cancelled)
     * callback (its completion). */
    while (c->count > c->inflight) {
        oslot_t *s = slot_at(c, c->count - 1);
        c->outq_bytes -= slot_left(s);
        refbuf_unref(s->rb);
        c->count--;
    }
    timerq_remove(c->ctx->closeq, &c->close_node);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

void conn_overflow(conn_t *c)
{
    c->ctx->stats.slow_consumers++;
    if (c->ctx->limit_stats)
        STATS_ADD(c->ctx->limit_stats->limit_rejections[STATS_LIMIT_OUTPUT_BUFFER], 1);
    conn_close(c);
}

static void on_close_late(timerq_node_t *n, void *arg)
{
    (void)arg;
    conn_t *c = (conn_t *)((char *)n - offsetof(conn_t, close_node));
    /* a peer still taking a large answer (a write in progress that shrank since the last look)
     * gets another close_timeout_ms: only one that stopped reading is cut off */
    size_t left = c->writing ? uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) : 0;
    if (c->writing && left < c->close_mark) {
        c->close_mark = left;
        timerq_add(c->ctx->closeq, &c->close_node);
        return;
    }
    conn_close(c);
}

void conn_close_deadline(conn_t *c)
{
    if (c->close_armed || c->st == ST_CLOSED)
        return;
    c->close_mark = SIZE_MAX;
    timerq_add(c->ctx->closeq, &c->close_node);
    c->close_armed = true;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn_t *c = req_done(req->data);
    c->shutting = false;
    if (c->st == ST_CLOSED) {
        maybe_release(c);
        return;
    }
    if (status < 0 || c->peer_eof)
        conn_close(c);
}

/* DRAINING with an empty queue and no write pending. */
static void drained(conn_t *c)
{
    if (c->peer_eof) {
        conn_close(c);
        return;
    }
    /* A FIN first and a close after the peer's own FIN: closing with unread input would send
     * an RST that can destroy the response still in flight. */
    c->req = req_take(c->ctx);
    c->req->s.data = c;
    if (uv_shutdown(&c->req->s, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        req_done(c);
        conn_close(c);
        return;
    }
    c->shutting = true;
    c->st = ST_LINGER;
}

void conn_drain(conn_t *c)
{
    if (c->st >= ST_DRAINING)
        return;
    c->st = ST_DRAINING;
    conn_close_deadline(c);
    if (c->writing || c->sending)
        return;
    if (c->count)
        mark_dirty(c);
    else
        drained(c);
}

/* ==== Write path ==== */

static void on_write(uv_write_t *req, int status)
{
    conn_t *c = req_done(req->data);
    size_t wrote = 0;
    c->writing = false;
    while (c->inflight) {
        wrote += slot_left(slot_at(c, 0));
        q_pop(c);
        c->inflight--;
    }
    if (status == 0)
        c->ctx->stats.bytes_out += wrote;
    if (c->st == ST_CLOSED) {
        maybe_release(c);
        return;
    }
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->count)
        mark_dirty(c);
    else if (c->st == ST_DRAINING)
        drained(c);
}

static void flush(conn_t *c)
{
    if (c->st == ST_CLOSED || c->writing || c->sending)
        return;
    uv_stream_t *s = (uv_stream_t *)&c->tcp;
    while (c->count) {
        size_t want;
        uint32_t n = fill_iov(c, c->ctx->iov, FLUSH_IOV_MAX, &want);
        int r = uv_try_write(s, c->ctx->iov, n);
        if (r == UV_EAGAIN)
            break;
        if (r < 0) {
            conn_close(c);
            return;
        }
        c->ctx->stats.bytes_out += (size_t)r;
        q_consume(c, (size_t)r);
        if ((size_t)r < want)
            break;
    }
    write_rest(c);
}

/* What the kernel did not take now goes through libuv, which waits for writability. */
static void write_rest(conn_t *c)
{
    if (!c->count) {
        if (c->st == ST_DRAINING)
            drained(c);
        return;
    }
    uv_stream_t *s = (uv_stream_t *)&c->tcp;
    size_t want;
    uint32_t n = fill_iov(c, c->ctx->iov, WRITE_IOV_INLINE, &want);
    c->req = req_take(c->ctx);
    c->req->w.data = c;
    if (uv_write(&c->req->w, s, c->ctx->iov, n, on_write) != 0) {
        req_done(c);
        conn_close(c);
        return;
    }
    c->writing = true;
    c->inflight = n;
}

/* ==== Write path through io_uring ==== */

/* Hands what the kernel has prepared to it and reaps what completed (normally every send: they
 * complete inline). The msghdrs and buffers are free again once it returns. */
static void ring_submit(conn_ctx_t *ctx)
{
    while (io_uring_sq_ready(&ctx->ring)) {
        int r = io_uring_submit(&ctx->ring);
        /* with at most RING_ENTRIES sends owed the CQ never overflows (-EBUSY): the only
         * failure left is the kernel's own allocation (-EAGAIN, -ENOMEM), the OOM policy's */
        if (r < 0 && r != -EINTR)
            xalloc_die(sizeof(struct io_uring_sqe));
    }
    ctx->nmsgs = 0;
    ctx->nriov = 0;
    ring_reap(ctx);
}

/* Prepares one send of c's queue; false when there is no ring, nothing for it to send now, or no
 * room (c stays as it is: flush() then does what is left, if anything). */
static bool ring_queue(conn_ctx_t *ctx, conn_t *c)
{
    if (!ctx->ring_on || !c->count || c->st == ST_CLOSED || c->writing || c->sending)
        return false;
    uint32_t n = c->count < FLUSH_IOV_MAX ? c->count : FLUSH_IOV_MAX;
    /* ring_sent counts the prepared sends too: at RING_ENTRIES the SQ is full */
    if (ctx->ring_sent >= RING_ENTRIES || ctx->nriov + n > RING_IOV) {
        ring_submit(ctx);
        /* late completions owed (the CQ holds twice RING_ENTRIES: it never overflows) */
        if (ctx->ring_sent >= RING_ENTRIES)
            return false;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ctx->ring);
    if (!sqe)
        return false;
    int fd = c->fd;
    uv_buf_t *iov = ctx->riov + ctx->nriov;
    size_t want;
    n = fill_iov(c, iov, n, &want);
    if (n == 1) {
        io_uring_prep_send(sqe, fd, iov[0].base, iov[0].len, RING_SEND_FLAGS);
    } else {
        struct msghdr *m = &ctx->msgs[ctx->nmsgs++];
        *m = (struct msghdr){.msg_iov = (struct iovec *)iov, .msg_iovlen = n};
        ctx->nriov += n;
        io_uring_prep_sendmsg(sqe, fd, m, RING_SEND_FLAGS);
    }
    io_uring_sqe_set_data(sqe, c);
    if (ctx->lim.ring_async)
        io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
    c->sending = true;
    c->inflight = n;
    ctx->ring_sent++;
    return true;
}

/* One send's completion: res bytes went, or the send failed with -res. */
static void ring_sent(conn_t *c, int res)
{
    size_t want = 0;
    for (uint32_t i = 0; i < c->inflight; i++)
        want += slot_left(slot_at(c, i));
    c->sending = false;
    c->inflight = 0;
    if (c->st == ST_CLOSED) {
        maybe_release(c);
        return;
    }
    if (res < 0 && res != -EAGAIN && res != -EINTR) {
        conn_close(c);
        return;
    }
    if (res > 0) {
        c->ctx->stats.bytes_out += (size_t)res;
        q_consume(c, (size_t)res);
    }
    if (res < 0 || (size_t)res < want) {
        c->ctx->stats.ring_partial++;
        write_rest(c); /* the socket is full: libuv waits for room */
    } else {
        flush(c); /* more than one send's buffers were queued, or nothing is left */
    }
}

/* Handles every completion there is; how many. */
static unsigned ring_reap(conn_ctx_t *ctx)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&ctx->ring, head, cqe)
    {
        n++;
        ctx->ring_sent--;
        ctx->stats.ring_sends++;
        ring_sent(io_uring_cqe_get_data(cqe), cqe->res);
    }
    io_uring_cq_advance(&ctx->ring, n);
    if (ctx->ring_sent && !ctx->ring_polling) {
        uv_poll_start(&ctx->ring_poll, UV_READABLE, on_ring_readable);
        ctx->ring_polling = true;
    } else if (!ctx->ring_sent && ctx->ring_polling) {
        uv_poll_stop(&ctx->ring_poll);
        ctx->ring_polling = false;
    }
    if (ctx->freeing && !ctx->ring_sent && !uv_is_closing((uv_handle_t *)&ctx->ring_poll))
        uv_close((uv_handle_t *)&ctx->ring_poll, on_ctx_handle_closed);
    return n;
}

/* ==== Accept, read ==== */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn_t *c = h->data;
    *buf = uv_buf_init(c->ctx->rbuf, READ_BUF_SIZE);
}

static void on_read_end(conn_t *c, ssize_t err)
{
    if (err != UV_EOF || c->st == ST_LINGER) {
        conn_close(c);
        return;
    }
    c->peer_eof = true;
    if (c->st == ST_DRAINING)
        return;
    if (c->count == 0 && !c->writing && !c->sending) {
        conn_close(c);
        return;
    }
    conn_drain(c); /* e.g. a response queued just before the client's FIN */
}

void conn_feed(conn_t *c, const char *p, size_t n)
{
    if (c->st == ST_OPEN && n)
        c->proto->on_data(c, c->pstate, p, n);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    if (nread == 0 || c->st == ST_CLOSED)
        return;
    if (nread < 0) {
        on_read_end(c, nread);
        return;
    }
    c->ctx->stats.bytes_in += (uint64_t)nread;
    conn_feed(c, buf->base, (size_t)nread); /* draining or lingering: no longer wanted */
}

/* Allocates a connection and its TCP handle; the handle still has no socket. */
static int conn_alloc(conn_ctx_t *ctx, const conn_proto_t *p, void *state, conn_t **out)
{
    conn_t *c = xcalloc(1, sizeof(*c));
    c->ctx = ctx;
    c->proto = p;
    c->pstate = state;
    c->slots = c->inl;
    c->cap = SLOTS_INLINE;
    int rc = uv_tcp_init(ctx->loop, &c->tcp);
    if (rc) {
        if (p->on_release)
            p->on_release(c, state);
        free(c);
        return rc;
    }
    c->tcp.data = c;
    c->handles = 1;
    ilist_push_front(&ctx->conns, &c->link);
    ctx->stats.live++;
    *out = c;
    return 0;
}

static int conn_start(conn_t *c, bool nodelay, conn_t **out)
{
    uv_os_fd_t fd;
    int rc = uv_fileno((const uv_handle_t *)&c->tcp, &fd);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc) {
        conn_close(c); /* not announced: released without the close callback */
        return rc;
    }
    if (nodelay) /* latency only: frames are already batched per turn */
        (void)uv_tcp_nodelay(&c->tcp, 1);
    c->fd = fd;
    c->announced = true;
    c->ctx->stats.accepted++;
    if (out)
        *out = c;
    return 0;
}

int conn_accept(conn_ctx_t *ctx, uv_stream_t *server, const conn_proto_t *p, void *state,
                conn_t **out)
{
    conn_t *c;
    int rc = conn_alloc(ctx, p, state, &c);
    if (rc)
        return rc;
    rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rc) {
        conn_close(c);
        return rc;
    }
    return conn_start(c, false, out); /* Nagle is off from the listener (acceptor_new) */
}

int conn_adopt(conn_ctx_t *ctx, int fd, const conn_proto_t *p, void *state, conn_t **out)
{
    conn_t *c;
    int rc = conn_alloc(ctx, p, state, &c);
    if (rc) {
        close(fd);
        return rc;
    }
    rc = uv_tcp_open(&c->tcp, fd);
    if (rc) {
        close(fd);
        conn_close(c);
        return rc;
    }
    return conn_start(c, true, out);
}

/* ==== Accessors ==== */

void conn_set_proto(conn_t *c, const conn_proto_t *p, void *state)
{
    c->proto = p;
    c->pstate = state;
}

void *conn_proto_state(const conn_t *c, const conn_proto_t *p)
{
    return c->proto == p ? c->pstate : NULL;
}

void conn_set_owner(conn_t *c, conn_close_fn on_close, void *ud)
{
    c->on_close = on_close;
    c->ud = ud;
}

void *conn_data(const conn_t *c)
{
    return c->ud;
}

bool conn_is_open(const conn_t *c)
{
    return c->st == ST_OPEN;
}

bool conn_is_closed(const conn_t *c)
{
    return c->st == ST_CLOSED;
}

int conn_fileno(const conn_t *c)
{
    return c->st == ST_CLOSED ? -EBADF : c->fd;
}

size_t conn_outq_bytes(const conn_t *c)
{
    return c->outq_bytes;
}

int conn_peer(const conn_t *c, struct sockaddr_storage *out)
{
    int len = sizeof(*out);
    return uv_tcp_getpeername(&c->tcp, (struct sockaddr *)out, &len);
}
