/* handoff: see handoff.h. */
#include "worker/net/handoff.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "shm/stats.h"

/* A handoff the owner's queue had no room for yet: our duplicate of the socket and the bytes. */
typedef struct pending {
    struct pending *next;
    uint32_t slot;
    int fd;
    uint64_t since;
    size_t len;
    char bytes[];
} pending_t;

struct handoff {
    uv_poll_t poll;
    uv_timer_t retry; /* resends pending handoffs while any wait */
    uv_loop_t *loop;
    const local_sock_t *socks;
    shm_region_t *region;
    int fd; /* this block's receiving end (borrowed from socks) */
    pending_t *head, *tail;
    unsigned open_handles;
    handoff_cb cb;
    void *ud;
    char *rbuf; /* HANDOFF_MAX_BYTES, allocated once */
};

/* A connected stream socket: libuv can poll it, so a regular file or a pipe never reaches it. */
static bool is_stream_socket(int fd)
{
    struct stat st;
    int type = 0;
    socklen_t tl = sizeof(type);
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
           getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM;
}

static void on_readable(uv_poll_t *p, int status, int events)
{
    handoff_t *h = p->data;
    if (status < 0 || !(events & UV_READABLE))
        return;
    for (int round = 0; round < 64; round++) {
        size_t n;
        int fd = -1;
        int rc = local_sock_recv(h->fd, h->region, h->rbuf, HANDOFF_MAX_BYTES, &n, &fd);
        if (rc == -EAGAIN)
            return;
        if (rc || fd < 0)
            continue; /* a stranger's, truncated, or without a descriptor: not ours */
        if (!is_stream_socket(fd)) {
            close(fd);
            continue;
        }
        h->cb(fd, h->rbuf, n, h->ud);
    }
}

int handoff_new(handoff_t **out, uv_loop_t *loop, const local_sock_t *socks, shm_region_t *region,
                uint32_t slot, handoff_cb cb, void *ud)
{
    if (!out || !loop || !socks || !region || !cb)
        return -EINVAL;
    int fd = local_sock_rx(socks, slot, LOCAL_SOCK_HANDOFF);
    if (fd < 0)
        return fd;
    handoff_t *h = xcalloc(1, sizeof(*h));
    h->rbuf = xmalloc(HANDOFF_MAX_BYTES);
    int rc = uv_poll_init(loop, &h->poll, fd);
    if (rc) {
        free(h->rbuf);
        free(h);
        return rc;
    }
    local_sock_set_buffers(socks, LOCAL_SOCK_HANDOFF, (int)HANDOFF_MAX_BYTES * 4);
    uv_timer_init(loop, &h->retry);
    h->poll.data = h;
    h->retry.data = h;
    h->loop = loop;
    h->socks = socks;
    h->region = region;
    h->fd = fd;
    h->open_handles = 2;
    h->cb = cb;
    h->ud = ud;
    uv_poll_start(&h->poll, UV_READABLE, on_readable);
    *out = h;
    return 0;
}

/* A block whose worker is gone (or not started) would hold the client's socket in its queue. */
static int send_now(handoff_t *h, uint32_t slot, int fd, const void *p, size_t len)
{
    stats_worker_t *st = shm_region_slot_stats(h->region, slot);
    int tx = local_sock_tx(h->socks, slot, LOCAL_SOCK_HANDOFF);
    if (!st || !STATS_GET(st->pid))
        return -ECONNREFUSED;
    return tx < 0 ? tx : local_sock_send(tx, p, len, fd);
}

static void drop_head(handoff_t *h)
{
    pending_t *q = h->head;
    h->head = q->next;
    if (!h->head)
        h->tail = NULL;
    close(q->fd);
    free(q);
}

/*
 * Resends what waits, in order. The owner's queue holds what the channel's send buffer allows
 * (a few handoffs) and both workers may hand requests to each other at once: waiting inside the
 * loop would stall the very worker that has to drain it.
 */
static void on_retry(uv_timer_t *t)
{
    handoff_t *h = t->data;
    uint64_t now = uv_now(h->loop);
    while (h->head) {
        pending_t *q = h->head;
        int rc = send_now(h, q->slot, q->fd, q->bytes, q->len);
        if (rc == -EAGAIN && now - q->since < HANDOFF_SEND_WAIT_MS)
            return;   /* still full: the timer fires again */
        drop_head(h); /* sent, or the owner is gone or stuck: the client retries */
    }
    uv_timer_stop(t);
}

int handoff_send(handoff_t *h, uint32_t slot, int fd, const void *p, size_t len)
{
    if (len > HANDOFF_MAX_BYTES)
        return -E2BIG;
    int rc = h->head ? -EAGAIN : send_now(h, slot, fd, p, len);
    if (rc != -EAGAIN)
        return rc;
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0)
        return -errno;
    pending_t *q = xmalloc(sizeof(*q) + len);
    q->next = NULL;
    q->slot = slot;
    q->fd = dup_fd;
    q->since = uv_now(h->loop);
    q->len = len;
    memcpy(q->bytes, p, len);
    if (h->tail)
        h->tail->next = q;
    else
        h->head = q;
    h->tail = q;
    uv_timer_start(&h->retry, on_retry, 1, 1);
    return 0;
}

static void on_closed(uv_handle_t *p)
{
    handoff_t *h = p->data;
    if (--h->open_handles)
        return;
    while (h->head)
        drop_head(h);
    free(h->rbuf);
    free(h);
}

void handoff_free(handoff_t *h)
{
    if (!h)
        return;
    uv_poll_stop(&h->poll);
    uv_close((uv_handle_t *)&h->poll, on_closed);
    uv_close((uv_handle_t *)&h->retry, on_closed);
}
