/* siblings: see siblings.h. */
#include "worker/fanout/siblings.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "shm/local_sock.h"
#include "shm/stats.h"

#define MAGIC "sib2"
/* top bit of a record's room length: a redis-adapter message relayed (see siblings.h) */
#define RELAYED_BIT 0x80000000u
#define MAGIC_FD "sibG" /* the datagram is in the memfd this one carries (SCM_RIGHTS) */
#define RECORD_HEAD 12  /* room, id and text lengths */
#define RECV_ROUNDS 64  /* datagrams per readable event before yielding to clients */

/* A datagram a sibling's queue had no room for yet. */
typedef struct pending {
    struct pending *next;
    int fd;        /* our duplicate of a memfd to pass along, or -1 */
    size_t weight; /* what it counts against the bounds: len, or the memfd's size */
    size_t len;
    char bytes[];
} pending_t;

typedef struct peer {
    pending_t *head, *tail;
    size_t bytes;
    bool overflowing; /* dropped datagrams since its queue last emptied: logged once */
} peer_t;

struct siblings {
    uv_loop_t *loop;
    uv_poll_t poll;
    uv_check_t flush; /* sends the batch after the iteration's I/O callbacks */
    uv_timer_t retry; /* resends queued datagrams while any wait */
    unsigned open_handles;
    int fd; /* this block's receiving end (borrowed from socks) */
    const local_sock_t *socks;
    shm_region_t *region;
    uint32_t slot, nslots;
    peer_t *peers;  /* per slot */
    size_t backlog; /* bytes over all queues */
    buf_t batch;
    size_t max_dgram; /* what this host's socket buffers allow */
    char *rbuf;       /* max_dgram bytes */
    siblings_cb cb;
    void *ud;
    uint64_t strangers, malformed; /* dropped datagrams, for log_sampled */
};

/* ---- codec ---- */

void siblings_encode_header(buf_t *out, uint32_t slot)
{
    buf_reset(out);
    buf_append(out, MAGIC, 4);
    buf_append(out, &slot, sizeof(slot));
}

/* The record's three lengths; the room's carries the relayed mark in its top bit. */
static void record_head(const siblings_entry_t *e, uint32_t head[3])
{
    head[0] = (uint32_t)e->room_len | (e->relayed ? RELAYED_BIT : 0);
    head[1] = (uint32_t)e->id_len;
    head[2] = (uint32_t)e->text_len;
}

int siblings_encode_record(buf_t *out, const siblings_entry_t *e)
{
    if (!e->room_len || !e->text_len || e->room_len >= RELAYED_BIT || e->id_len > UINT32_MAX ||
        e->text_len > UINT32_MAX)
        return -EINVAL;
    uint32_t head[3];
    record_head(e, head);
    buf_reserve(out, RECORD_HEAD + e->room_len + e->id_len + e->text_len);
    buf_append(out, head, sizeof(head));
    buf_append(out, e->room, e->room_len);
    buf_append(out, e->id, e->id_len);
    buf_append(out, e->text, e->text_len);
    return 0;
}

/* Walks the records; with fn NULL only checks them. */
static int walk(const char *p, size_t len, uint32_t from, siblings_record_fn fn, void *arg)
{
    size_t off = SIBLINGS_HEADER_LEN;
    if (off == len)
        return -EPROTO;
    while (off < len) {
        uint32_t head[3];
        if (len - off < RECORD_HEAD)
            return -EPROTO;
        memcpy(head, p + off, sizeof(head));
        off += RECORD_HEAD;
        bool relayed = head[0] & RELAYED_BIT;
        head[0] &= ~RELAYED_BIT;
        uint64_t n = (uint64_t)head[0] + head[1] + head[2];
        if (!head[0] || !head[2] || len - off < n)
            return -EPROTO;
        siblings_entry_t e = {
            p + off, head[0], p + off + head[0], head[1], p + off + head[0] + head[1], head[2],
            relayed, from};
        if (fn)
            fn(&e, arg);
        off += (size_t)n;
    }
    return 0;
}

int siblings_decode(const char *p, size_t len, uint32_t *slot, siblings_record_fn fn, void *arg)
{
    if (len < SIBLINGS_HEADER_LEN || memcmp(p, MAGIC, 4) != 0 || walk(p, len, 0, NULL, NULL))
        return -EPROTO;
    uint32_t from;
    memcpy(&from, p + 4, sizeof(from));
    if (slot)
        *slot = from;
    return walk(p, len, from, fn, arg);
}

/* ---- sending ---- */

static pid_t slot_pid(const siblings_t *s, uint32_t i)
{
    stats_worker_t *st = shm_region_slot_stats(s->region, i);
    return st ? (pid_t)STATS_GET(st->pid) : 0;
}

static bool live(const siblings_t *s, uint32_t i)
{
    return i != s->slot && slot_pid(s, i) != 0;
}

/* A sibling that is gone reads nothing more: its successor in that block has new clients. */
static int send_now(siblings_t *s, uint32_t i, const char *p, size_t len, int fd)
{
    int tx = local_sock_tx(s->socks, i, LOCAL_SOCK_SIBLINGS);
    if (!live(s, i))
        return -ECONNREFUSED;
    return tx < 0 ? tx : local_sock_send(tx, p, len, fd);
}

static void drop_head(siblings_t *s, peer_t *q)
{
    pending_t *d = q->head;
    q->head = d->next;
    if (!q->head) {
        q->tail = NULL;
        q->overflowing = false;
    }
    q->bytes -= d->weight;
    s->backlog -= d->weight;
    if (d->fd >= 0)
        close(d->fd);
    free(d);
}

static void drop_queue(siblings_t *s, peer_t *q)
{
    while (q->head)
        drop_head(s, q);
}

/* `weight` is what the datagram stands for (a memfd's size): it counts against the bounds. */
static void enqueue(siblings_t *s, uint32_t i, const char *p, size_t len, int fd, size_t weight)
{
    peer_t *q = &s->peers[i];
    if (q->bytes + weight > SIBLINGS_QUEUE_MAX ||
        (fd >= 0 && (fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)) {
        if (!q->overflowing)
            LOG_WARN("siblings: worker slot %u is not reading its queue (%zu bytes waiting): its "
                     "clients miss entries until it catches up",
                     (unsigned)i, q->bytes);
        q->overflowing = true;
        return;
    }
    pending_t *d = xmalloc(sizeof(*d) + len);
    d->next = NULL;
    d->fd = fd;
    d->len = len;
    memcpy(d->bytes, p, len);
    if (q->tail)
        q->tail->next = d;
    else
        q->head = d;
    q->tail = d;
    d->weight = weight;
    q->bytes += weight;
    s->backlog += weight;
}

static void on_retry(uv_timer_t *t);

/* One datagram (with fd: the memfd holding it) to one sibling, behind what waits for it. */
static void deliver(siblings_t *s, uint32_t i, const char *p, size_t len, int fd, size_t weight)
{
    peer_t *q = &s->peers[i];
    int rc = q->head ? -EAGAIN : send_now(s, i, p, len, fd);
    if (rc == -EAGAIN) {
        enqueue(s, i, p, len, fd, weight);
        uv_timer_start(&s->retry, on_retry, 1, 1);
    } else if (rc == -ECONNREFUSED) {
        drop_queue(s, q); /* gone: a new process in that slot has new clients */
    } else if (rc) {
        LOG_WARN("siblings: cannot send %zu bytes to worker slot %u: %s", len, (unsigned)i,
                 strerror(-rc));
    }
}

static void on_retry(uv_timer_t *t)
{
    siblings_t *s = t->data;
    for (uint32_t i = 0; i < s->nslots; i++) {
        peer_t *q = &s->peers[i];
        while (q->head) {
            int rc = send_now(s, i, q->head->bytes, q->head->len, q->head->fd);
            if (rc == -EAGAIN)
                break; /* still full: the timer fires again */
            if (rc == -ECONNREFUSED) {
                drop_queue(s, q);
                break;
            }
            if (rc)
                LOG_WARN("siblings: cannot send %zu bytes to worker slot %u: %s", q->head->len,
                         (unsigned)i, strerror(-rc));
            drop_head(s, q);
        }
    }
    if (!s->backlog)
        uv_timer_stop(t);
}

static void flush(siblings_t *s)
{
    if (s->batch.len > SIBLINGS_HEADER_LEN) {
        for (uint32_t i = 0; i < s->nslots; i++) {
            if (live(s, i))
                deliver(s, i, s->batch.data, s->batch.len, -1, s->batch.len);
        }
    }
    s->batch.len = SIBLINGS_HEADER_LEN;
}

static void on_flush(uv_check_t *h)
{
    siblings_t *s = h->data;
    flush(s);
    uv_check_stop(h);
}

/*
 * A record too big for one datagram: flushed after what is batched (order), written once to a
 * memfd that every sibling receives (SCM_RIGHTS) and reads as if it were the datagram.
 */
static int add_big(siblings_t *s, const siblings_entry_t *e)
{
    flush(s);
    int fd = memfd_create("streamio-sibling", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    uint32_t head[3];
    record_head(e, head);
    struct iovec iov[] = {{s->batch.data, SIBLINGS_HEADER_LEN},
                          {head, sizeof(head)},
                          {(void *)e->room, e->room_len},
                          {(void *)e->id, e->id_len},
                          {(void *)e->text, e->text_len}};
    size_t total = SIBLINGS_HEADER_LEN + RECORD_HEAD + e->room_len + e->id_len + e->text_len;
    ssize_t n = writev(fd, iov, 5);
    if (n < 0 || (size_t)n != total) {
        int rc = n < 0 ? -errno : -EIO;
        close(fd);
        return rc;
    }
    char small[SIBLINGS_HEADER_LEN];
    memcpy(small, MAGIC_FD, 4);
    memcpy(small + 4, s->batch.data + 4, 4);
    for (uint32_t i = 0; i < s->nslots; i++) {
        if (live(s, i))
            deliver(s, i, small, sizeof(small), fd, total);
    }
    close(fd);
    return 0;
}

int siblings_add(siblings_t *s, const siblings_entry_t *e)
{
    size_t rec = RECORD_HEAD + e->room_len + e->id_len + e->text_len;
    if (!e->room_len || !e->text_len)
        return -EINVAL;
    if (e->room_len >= RELAYED_BIT || e->id_len > UINT32_MAX || e->text_len > SIBLINGS_MAX_FRAME)
        return -E2BIG;
    bool any = false;
    for (uint32_t i = 0; i < s->nslots && !any; i++)
        any = live(s, i);
    if (!any)
        return 0;
    if (rec > s->max_dgram - SIBLINGS_HEADER_LEN) {
        int rc = add_big(s, e);
        return rc ? rc : 1;
    }
    if (s->batch.len + rec > SIBLINGS_BATCH_BYTES)
        flush(s);
    int rc = siblings_encode_record(&s->batch, e);
    if (rc)
        return rc;
    uv_check_start(&s->flush, on_flush);
    return 1;
}

bool siblings_backlogged(const siblings_t *s)
{
    return s->backlog > SIBLINGS_BACKLOG_BYTES;
}

/* ---- receiving ---- */

static void on_record(const siblings_entry_t *e, void *arg)
{
    siblings_t *s = arg;
    s->cb(e, s->ud);
}

/* The datagram a memfd holds; closes fd. -EPROTO when it is not one. */
static int read_big(siblings_t *s, int fd)
{
    struct stat st;
    int rc = -EPROTO;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        (uint64_t)st.st_size <= SIBLINGS_MAX_FRAME + (uint64_t)SIBLINGS_MAX_DGRAM) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            rc = siblings_decode(p, (size_t)st.st_size, NULL, on_record, s);
            munmap(p, (size_t)st.st_size);
        }
    }
    close(fd);
    return rc;
}

static void on_readable(uv_poll_t *p, int status, int events)
{
    siblings_t *s = p->data;
    if (status < 0 || !(events & UV_READABLE))
        return;
    for (int round = 0; round < RECV_ROUNDS; round++) {
        size_t n;
        int fd = -1;
        int rc = local_sock_recv(s->fd, s->region, s->rbuf, SIBLINGS_MAX_DGRAM, &n, &fd);
        if (rc == -EAGAIN)
            return;
        if (rc == -EPERM) {
            /* only a process of our user can hold a channel end: count, log a few */
            if (log_sampled(&s->strangers))
                LOG_WARN("siblings: dropped a datagram from a process that is no sibling worker "
                         "(%llu so far)",
                         (unsigned long long)s->strangers);
            continue;
        }
        bool big = !rc && n == SIBLINGS_HEADER_LEN && memcmp(s->rbuf, MAGIC_FD, 4) == 0;
        if (!rc && big && fd >= 0) {
            rc = read_big(s, fd);
            fd = -1;
        } else if (!rc && !big && fd < 0) {
            rc = siblings_decode(s->rbuf, n, NULL, on_record, s);
        } else {
            rc = -EPROTO;
        }
        if (fd >= 0)
            close(fd);
        if (rc && log_sampled(&s->malformed))
            LOG_WARN("siblings: dropped a malformed datagram of %zu bytes (%llu so far)", n,
                     (unsigned long long)s->malformed);
    }
}

/* ---- lifecycle ---- */

/* The largest datagram the send buffers allow (the kernel reports twice the usable size; keep
 * room for its own bookkeeping). */
static size_t max_dgram(const local_sock_t *socks, uint32_t slot)
{
    int sz = 0;
    socklen_t szl = sizeof(sz);
    int tx = local_sock_tx(socks, slot == 0 ? 1 : 0, LOCAL_SOCK_SIBLINGS);
    if (tx < 0 || getsockopt(tx, SOL_SOCKET, SO_SNDBUF, &sz, &szl) != 0 || sz < 2 * 4096)
        sz = 2 * 4096;
    size_t n = (size_t)sz / 2 - 1024;
    return n > SIBLINGS_MAX_DGRAM ? SIBLINGS_MAX_DGRAM : n;
}

int siblings_new(siblings_t **out, uv_loop_t *loop, shm_region_t *region, const local_sock_t *socks,
                 uint32_t slot, siblings_cb cb, void *ud)
{
    if (!out || !loop || !region || !socks || !cb)
        return -EINVAL;
    int rx = local_sock_rx(socks, slot, LOCAL_SOCK_SIBLINGS);
    if (rx < 0)
        return rx;
    siblings_t *s = xcalloc(1, sizeof(*s));
    s->nslots = shm_region_slots(region);
    s->peers = xcalloc(s->nslots ? s->nslots : 1, sizeof(*s->peers));
    buf_init(&s->batch);
    siblings_encode_header(&s->batch, slot);
    local_sock_set_buffers(socks, LOCAL_SOCK_SIBLINGS, (int)SIBLINGS_MAX_DGRAM);
    s->max_dgram = max_dgram(socks, slot);
    s->rbuf = xmalloc(SIBLINGS_MAX_DGRAM);
    int rc = uv_poll_init(loop, &s->poll, rx);
    if (rc) {
        buf_free(&s->batch);
        free(s->rbuf);
        free(s->peers);
        free(s);
        return rc;
    }
    uv_check_init(loop, &s->flush);
    uv_timer_init(loop, &s->retry);
    s->poll.data = s->flush.data = s->retry.data = s;
    s->open_handles = 3;
    s->loop = loop;
    s->fd = rx;
    s->socks = socks;
    s->region = region;
    s->slot = slot;
    s->cb = cb;
    s->ud = ud;
    uv_poll_start(&s->poll, UV_READABLE, on_readable);
    *out = s;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    siblings_t *s = h->data;
    if (--s->open_handles)
        return;
    for (uint32_t i = 0; i < s->nslots; i++)
        drop_queue(s, &s->peers[i]);
    buf_free(&s->batch);
    free(s->rbuf);
    free(s->peers);
    free(s);
}

void siblings_free(siblings_t *s)
{
    if (!s)
        return;
    flush(s);
    uv_close((uv_handle_t *)&s->poll, on_closed);
    uv_close((uv_handle_t *)&s->flush, on_closed);
    uv_close((uv_handle_t *)&s->retry, on_closed);
}
