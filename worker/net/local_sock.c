/* local_sock: see local_sock.h. */
#include "worker/net/local_sock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

socklen_t local_sock_addr(struct sockaddr_un *a, unsigned long server_id, uint32_t slot,
                          const char *kind)
{
    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    /* abstract namespace: a leading NUL, no file */
    int n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "streamio.%lu.%u%s", server_id,
                     (unsigned)slot, kind);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

int local_sock_open(int *rx, int *tx, unsigned long server_id, uint32_t slot, const char *kind,
                    int bufsize)
{
    int r = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (r < 0)
        return -errno;
    int t = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un a;
    socklen_t alen = local_sock_addr(&a, server_id, slot, kind);
    if (t < 0 || bind(r, (struct sockaddr *)&a, alen) != 0) {
        int rc = -errno;
        close(r);
        if (t >= 0)
            close(t);
        return rc;
    }
    (void)setsockopt(r, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
    (void)setsockopt(t, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
    *rx = r;
    *tx = t;
    return 0;
}

int local_sock_send(int tx, unsigned long server_id, uint32_t slot, const char *kind, const void *p,
                    size_t len, int fd)
{
    struct sockaddr_un a;
    socklen_t alen = local_sock_addr(&a, server_id, slot, kind);
    char ctl[CMSG_SPACE(sizeof(int))];
    memset(ctl, 0, sizeof(ctl));
    struct iovec iov = {(void *)p, len};
    struct msghdr m = {.msg_name = &a, .msg_namelen = alen, .msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        m.msg_control = ctl;
        m.msg_controllen = sizeof(ctl);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    if (sendmsg(tx, &m, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return 0;
}
