/* acceptor: see acceptor.h. */
#include "worker/net/acceptor.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/xalloc.h"

#define ACCEPTOR_BACKLOG 4096

struct acceptor {
    uv_loop_t *loop;
    int fd;             /* the shared socket, kept to dup for each listening period */
    uv_tcp_t *listener; /* on a dup of fd; NULL while paused */
    uv_timer_t recheck;
    size_t max_live;
    acceptor_accept_fn accept;
    acceptor_live_fn live;
    void *arg;
    size_t open_handles; /* handles whose close callback has not run yet */
    bool closing;
};

size_t acceptor_max_live(size_t fd_limit)
{
    size_t reserve = fd_limit / 20 > 64 ? fd_limit / 20 : 64;
    return fd_limit > reserve ? fd_limit - reserve : 1;
}

static void on_handle_closed(uv_handle_t *h)
{
    acceptor_t *a = h->data;
    if (h != (uv_handle_t *)&a->recheck)
        free(h);
    if (--a->open_handles == 0 && a->closing) {
        if (a->fd >= 0)
            close(a->fd);
        free(a);
    }
}

static void stop_listening(acceptor_t *a)
{
    if (!a->listener)
        return;
    uv_close((uv_handle_t *)a->listener, on_handle_closed);
    a->listener = NULL;
}

static void on_recheck(uv_timer_t *t);

static void on_connection(uv_stream_t *server, int status)
{
    acceptor_t *a = server->data;
    if (status < 0 || a->closing)
        return;
    /* this one is taken even when it fills the worker: the reserve has room for it, and a
     * connection libuv already accepted would otherwise be closed with the handle */
    a->accept(server, a->arg);
    if (a->listener && a->live(a->arg) >= a->max_live) {
        stop_listening(a);
        uv_timer_start(&a->recheck, on_recheck, ACCEPTOR_RECHECK_MS, ACCEPTOR_RECHECK_MS);
    }
}

static int start_listening(acceptor_t *a)
{
    int fd = dup(a->fd);
    if (fd < 0)
        return -errno;
    uv_tcp_t *l = xmalloc(sizeof(*l));
    int rc = uv_tcp_init(a->loop, l);
    if (rc) {
        free(l);
        close(fd);
        return rc;
    }
    l->data = a;
    a->open_handles++;
    if ((rc = uv_tcp_open(l, fd)) != 0)
        close(fd);
    else
        rc = uv_listen((uv_stream_t *)l, ACCEPTOR_BACKLOG, on_connection);
    if (rc) {
        uv_close((uv_handle_t *)l, on_handle_closed);
        return rc;
    }
    a->listener = l;
    return 0;
}

static void on_recheck(uv_timer_t *t)
{
    acceptor_t *a = t->data;
    /* resume below 15/16 of the limit, so a worker at the edge does not flap */
    if (a->live(a->arg) >= a->max_live - a->max_live / 16)
        return;
    if (start_listening(a) == 0)
        uv_timer_stop(t);
}

int acceptor_new(acceptor_t **out, uv_loop_t *loop, int listen_fd, size_t max_live,
                 acceptor_accept_fn accept, acceptor_live_fn live, void *arg)
{
    acceptor_t *a = xcalloc(1, sizeof(*a));
    a->loop = loop;
    a->fd = listen_fd;
    a->max_live = max_live ? max_live : 1;
    a->accept = accept;
    a->live = live;
    a->arg = arg;
    uv_timer_init(loop, &a->recheck);
    a->recheck.data = a;
    a->open_handles = 1;
    /* Linux copies TCP_NODELAY from the listening socket to each one it accepts: set once here,
     * it saves a setsockopt per connection (one in the dozen system calls of a handshake). */
    int one = 1;
    (void)setsockopt(listen_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    *out = a;
    return start_listening(a);
}

bool acceptor_paused(const acceptor_t *a)
{
    return !a->listener;
}

void acceptor_close(acceptor_t *a)
{
    if (!a || a->closing)
        return;
    a->closing = true;
    stop_listening(a);
    uv_close((uv_handle_t *)&a->recheck, on_handle_closed);
}
