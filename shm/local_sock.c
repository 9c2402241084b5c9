/* local_sock: see local_sock.h. */
#include "shm/local_sock.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "shm/stats.h"

/* One socketpair: the block's worker reads rx, the others write tx. */
typedef struct chan {
    int rx, tx;
} chan_t;

struct local_sock {
    uint32_t nblocks;
    chan_t *chans; /* nblocks * LOCAL_SOCK_KINDS */
};

static chan_t *chan_at(const local_sock_t *t, uint32_t block, local_kind_t kind)
{
    return t && block < t->nblocks && (unsigned)kind < LOCAL_SOCK_KINDS
               ? &t->chans[(size_t)block * LOCAL_SOCK_KINDS + kind]
               : NULL;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Every channel costs two descriptors in the master and about one per block in each worker:
 * with many workers that can pass a shell's default soft limit (systemd's unit sets it high). */
static void make_room(size_t fds)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < fds + 1024 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int local_sock_new(local_sock_t **out, uint32_t nblocks)
{
    if (!nblocks)
        return -EINVAL;
    local_sock_t *t = xcalloc(1, sizeof(*t));
    size_t n = (size_t)nblocks * LOCAL_SOCK_KINDS;
    t->chans = xmalloc(n * sizeof(*t->chans));
    t->nblocks = nblocks;
    for (size_t i = 0; i < n; i++)
        t->chans[i] = (chan_t){-1, -1};
    make_room(2 * n);
    int one = 1;
    for (size_t i = 0; i < n; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
            int rc = -errno;
            local_sock_free(t);
            return rc;
        }
        t->chans[i] = (chan_t){sv[0], sv[1]};
        if (setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) != 0) {
            int rc = -errno;
            local_sock_free(t);
            return rc;
        }
    }
    *out = t;
    return 0;
}

void local_sock_free(local_sock_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < (size_t)t->nblocks * LOCAL_SOCK_KINDS; i++) {
        close_fd(&t->chans[i].rx);
        close_fd(&t->chans[i].tx);
    }
    free(t->chans);
    free(t);
}

void local_sock_child_keep(local_sock_t *t, uint32_t block)
{
    for (uint32_t b = 0; t && b < t->nblocks; b++) {
        for (int k = 0; k < LOCAL_SOCK_KINDS; k++) {
            chan_t *c = chan_at(t, b, (local_kind_t)k);
            close_fd(b == block ? &c->tx : &c->rx);
        }
    }
}

void local_sock_drain(local_sock_t *t, uint32_t block)
{
    for (int k = 0; k < LOCAL_SOCK_KINDS; k++) {
        chan_t *c = chan_at(t, block, (local_kind_t)k);
        if (!c || c->rx < 0)
            continue;
        for (;;) {
            union {
                char buf[CMSG_SPACE(sizeof(int) * 8)];
                struct cmsghdr align;
            } ctl;
            char byte;
            struct iovec iov = {&byte, 1};
            struct msghdr m = {.msg_iov = &iov,
                               .msg_iovlen = 1,
                               .msg_control = ctl.buf,
                               .msg_controllen = sizeof(ctl.buf)};
            if (recvmsg(c->rx, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) < 0)
                break; /* EAGAIN: empty */
            for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
                if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
                    continue;
                for (size_t j = 0; j < (h->cmsg_len - CMSG_LEN(0)) / sizeof(int); j++) {
                    int fd;
                    memcpy(&fd, CMSG_DATA(h) + j * sizeof(int), sizeof(int));
                    close(fd);
                }
            }
        }
    }
}

int local_sock_rx(const local_sock_t *t, uint32_t block, local_kind_t kind)
{
    const chan_t *c = chan_at(t, block, kind);
    return !c ? -EINVAL : c->rx >= 0 ? c->rx : -EBADF;
}

int local_sock_tx(const local_sock_t *t, uint32_t block, local_kind_t kind)
{
    const chan_t *c = chan_at(t, block, kind);
    return !c ? -EINVAL : c->tx >= 0 ? c->tx : -EBADF;
}

void local_sock_set_buffers(const local_sock_t *t, local_kind_t kind, int bytes)
{
    for (uint32_t b = 0; t && b < t->nblocks; b++) {
        const chan_t *c = chan_at(t, b, kind);
        if (c->rx >= 0)
            (void)setsockopt(c->rx, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
        if (c->tx >= 0)
            (void)setsockopt(c->tx, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
    }
}

int local_sock_send(int tx, const void *p, size_t len, int fd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct iovec iov = {(void *)p, len};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        m.msg_control = ctl.buf;
        m.msg_controllen = sizeof(ctl.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    if (sendmsg(tx, &m, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        return errno == EWOULDBLOCK || errno == ENOBUFS ? -EAGAIN : -errno;
    return 0;
}

/* A process of our user whose pid a slot of the region holds. */
static bool from_worker(shm_region_t *region, const struct ucred *cr)
{
    if (!cr || cr->uid != geteuid() || cr->pid <= 0)
        return false;
    for (uint32_t i = 0; i < shm_region_slots(region); i++) {
        stats_worker_t *st = shm_region_slot_stats(region, i);
        /* a worker reaped a moment ago: its datagrams still queued here were sent while it lived
         * (entries it may have acknowledged already, sockets it handed over) */
        if (st &&
            ((pid_t)STATS_GET(st->pid) == cr->pid || (pid_t)STATS_GET(st->exited_pid) == cr->pid))
            return true;
    }
    return false;
}

int local_sock_recv(int rx, shm_region_t *region, void *buf, size_t cap, size_t *len, int *fd)
{
    union {
        char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {buf, cap};
    struct msghdr m = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = ctl.buf,
                       .msg_controllen = sizeof(ctl.buf)};
    ssize_t n = recvmsg(rx, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    struct ucred cr, *crp = NULL;
    int got = -1, extra = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET)
            continue;
        if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(cr))) {
            memcpy(&cr, CMSG_DATA(c), sizeof(cr));
            crp = &cr;
        } else if (c->cmsg_type == SCM_RIGHTS) {
            for (size_t j = 0; j < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); j++) {
                int f;
                memcpy(&f, CMSG_DATA(c) + j * sizeof(int), sizeof(int));
                if (got < 0) {
                    got = f;
                } else {
                    close(f); /* ours carry one */
                    extra++;
                }
            }
        }
    }
    int rc = !from_worker(region, crp)                                ? -EPERM
             : extra || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 ? -EMSGSIZE
                                                                      : 0;
    if (rc) {
        if (got >= 0)
            close(got);
        return rc;
    }
    *len = (size_t)n;
    *fd = got;
    return 0;
}
