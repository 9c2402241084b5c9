/* handoff: see handoff.h. */
#include "worker/net/handoff.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "worker/net/local_sock.h"

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
    int fd;      /* bound, non-blocking: receives */
    int send_fd; /* unbound, non-blocking: sends */
    pending_t *head, *tail;
    unsigned open_handles;
    unsigned long server_id;
    handoff_cb cb;
    void *ud;
    char *rbuf; /* HANDOFF_MAX_BYTES, allocated once */
};

static void on_readable(uv_poll_t *p, int status, int events)
{
    handoff_t *h = p->data;
    if (status < 0 || !(events & UV_READABLE))
        return;
    for (int round = 0; round < 64; round++) {
        char ctl[CMSG_SPACE(sizeof(int))];
        struct iovec iov = {h->rbuf, HANDOFF_MAX_BYTES};
        struct msghdr m = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
        ssize_t n = recvmsg(h->fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0)
            return; /* EAGAIN: drained */
        int fd = -1;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
                c->cmsg_len == CMSG_LEN(sizeof(int)))
                memcpy(&fd, CMSG_DATA(c), sizeof(int));
        }
        if (fd < 0)
            continue; /* a datagram without a descriptor: not ours */
        if (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
            close(fd);
            continue;
        }
        h->cb(fd, h->rbuf, (size_t)n, h->ud);
    }
}

int handoff_new(handoff_t **out, uv_loop_t *loop, unsigned long server_id, uint32_t slot,
                handoff_cb cb, void *ud)
{
    if (!out || !loop || !cb)
        return -EINVAL;
    handoff_t *h = xcalloc(1, sizeof(*h));
    h->rbuf = xmalloc(HANDOFF_MAX_BYTES);
    h->fd = h->send_fd = -1;
    int rc = local_sock_open(&h->fd, &h->send_fd, server_id, slot, "", (int)HANDOFF_MAX_BYTES * 4);
    if (!rc) {
        rc = uv_poll_init(loop, &h->poll, h->fd);
        if (!rc)
            uv_timer_init(loop, &h->retry);
    }
    if (rc) {
        if (h->fd >= 0)
            close(h->fd);
        if (h->send_fd >= 0)
            close(h->send_fd);
        free(h->rbuf);
        free(h);
        return rc;
    }
    h->poll.data = h;
    h->retry.data = h;
    h->loop = loop;
    h->open_handles = 2;
    h->server_id = server_id;
    h->cb = cb;
    h->ud = ud;
    uv_poll_start(&h->poll, UV_READABLE, on_readable);
    *out = h;
    return 0;
}

static int send_now(handoff_t *h, uint32_t slot, int fd, const void *p, size_t len)
{
    return local_sock_send(h->send_fd, h->server_id, slot, "", p, len, fd);
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
 * Resends what waits, in order. The owner's queue holds few datagrams
 * (net.unix.max_dgram_qlen, often 10) and both workers may hand requests to each other at
 * once: waiting inside the loop would stall the very worker that has to drain it.
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
    close(h->fd);
    close(h->send_fd);
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
