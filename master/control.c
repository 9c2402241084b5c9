/*
 * control: see control.h. Every connection is a small state machine (reading the request, then
 * writing the answer) driven by non-blocking I/O from one epoll set, which also holds the
 * listener and a timerfd for the earliest deadline: the master polls that one descriptor and
 * a client that trickles bytes, or never reads, costs it nothing.
 */
#include "master/control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

typedef struct client {
    int fd; /* -1: a free slot */
    uint64_t deadline_ms;
    buf_t in, out; /* the request so far; the answer */
    size_t sent;
    bool answering;
} client_t;

struct control {
    int fd; /* listening */
    int ep; /* epoll: listener, timer, connections */
    int timer;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    buf_t store;
    client_t clients[CONTROL_MAX_CLIENTS];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int watch(control_t *c, int fd, uint32_t events, uint64_t tag, int op)
{
    struct epoll_event ev = {.events = events, .data.u64 = tag};
    return epoll_ctl(c->ep, op, fd, &ev);
}

#define TAG_LISTENER UINT64_MAX
#define TAG_TIMER (UINT64_MAX - 1)

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Binds with a umask that leaves the socket 0600 from its first moment (no chmod afterwards). */
static int bind_private(int fd, const struct sockaddr_un *sa)
{
    mode_t old = umask(0177);
    int rc = bind(fd, (const struct sockaddr *)sa, sizeof(*sa));
    int e = errno;
    umask(old);
    errno = e;
    return rc;
}

int control_open(control_t **out, const char *path, buf_t *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        buf_printf(err, "streamio: control socket path too long: %s", path);
        return -ENAMETOOLONG;
    }
    control_t *c = calloc(1, sizeof(*c));
    if (!c) {
        buf_puts(err, "streamio: out of memory");
        return -ENOMEM;
    }
    memcpy(sa.sun_path, path, strlen(path));
    memcpy(c->path, path, strlen(path) + 1);
    c->ep = c->timer = -1;
    buf_init(&c->store);
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
        c->clients[i].fd = -1;
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd >= 0)
        unlink(path); /* a stale one: a live master also holds the port and the pid file */
    if (c->fd < 0 || bind_private(c->fd, &sa) < 0 || listen(c->fd, 16) < 0 ||
        (c->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (c->timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0 ||
        watch(c, c->fd, EPOLLIN, TAG_LISTENER, EPOLL_CTL_ADD) < 0 ||
        watch(c, c->timer, EPOLLIN, TAG_TIMER, EPOLL_CTL_ADD) < 0) {
        int rc = -errno;
        buf_printf(err, "streamio: cannot listen on the control socket %s: %s", path,
                   strerror(errno));
        close_fd(&c->fd);
        close_fd(&c->ep);
        close_fd(&c->timer);
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

static void drop(control_t *c, client_t *k)
{
    (void)c;
    close_fd(&k->fd); /* leaves the epoll set with its last descriptor */
    buf_free(&k->in);
    buf_free(&k->out);
    k->sent = 0;
    k->answering = false;
}

void control_forget(control_t *c)
{
    if (!c)
        return;
    close_fd(&c->fd);
    close_fd(&c->ep);
    close_fd(&c->timer);
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
        close_fd(&c->clients[i].fd);
}

void control_close(control_t *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        unlink(c->path);
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
        drop(c, &c->clients[i]);
    control_forget(c);
    buf_free(&c->store);
    free(c);
}

int control_fd(const control_t *c)
{
    return c ? c->ep : -1;
}

int control_parse(const char *req, size_t len, buf_t *store, int *argc, char **argv, size_t *lens)
{
    buf_reset(store);
    if (buf_reserve(store, len + CONTROL_MAX_ARGS))
        return -ENOMEM;
    size_t offs[CONTROL_MAX_ARGS];
    int n = 0;
    size_t i = 0;
    while (i < len) {
        size_t l = 0, digits = 0;
        while (i < len && req[i] >= '0' && req[i] <= '9' && digits < 8) {
            l = l * 10 + (size_t)(req[i++] - '0');
            digits++;
        }
        if (!digits || i >= len || req[i] != ':' || n == CONTROL_MAX_ARGS || len - i - 1 < l + 1 ||
            req[i + 1 + l] != ',')
            return -EPROTO;
        offs[n] = store->len;
        lens[n++] = l;
        buf_append(store, req + i + 1, l);
        buf_putc(store, '\0');
        i += l + 2;
    }
    for (int k = 0; k < n; k++)
        argv[k] = store->data + offs[k];
    *argc = n;
    return 0;
}

/* Only root and the service's own user may drive the server. */
static bool peer_allowed(int fd)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);
    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 &&
           (cr.uid == 0 || cr.uid == geteuid());
}

/* The answer to the request read so far (complete: the client shut its side down). */
static void answer(control_t *c, client_t *k, control_fn fn, void *arg)
{
    int argc;
    char *argv[CONTROL_MAX_ARGS];
    size_t lens[CONTROL_MAX_ARGS];
    buf_t body;
    buf_init(&body);
    buf_reset(&k->out);
    if (control_parse(k->in.data ? k->in.data : "", k->in.len, &c->store, &argc, argv, lens) ||
        argc == 0) {
        buf_puts(&k->out, "ERR malformed request\n");
    } else if (fn(argc, argv, lens, &body, arg)) {
        buf_puts(&k->out, "ERR ");
        buf_append(&k->out, body.data ? body.data : "failed", body.data ? body.len : 6);
        buf_putc(&k->out, '\n');
    } else {
        buf_puts(&k->out, "OK\n");
        buf_append(&k->out, body.data, body.len);
    }
    buf_free(&body);
    k->answering = true;
}

/* Reads what is there; 1 when the request is complete (or refused), 0 for more, -1 to drop. */
static int read_some(client_t *k)
{
    for (;;) {
        if (buf_reserve(&k->in, 4096))
            return -1;
        ssize_t r = read(k->fd, k->in.data + k->in.len, k->in.cap - k->in.len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno == EAGAIN ? 0 : -1;
        if (r == 0)
            return 1;
        k->in.len += (size_t)r;
        if (k->in.len > CONTROL_MAX_REQUEST) {
            buf_reset(&k->out);
            buf_puts(&k->out, "ERR request too large\n");
            k->answering = true;
            return 1;
        }
    }
}

/* Writes what the peer takes; true once everything went out (or it cannot take more). */
static bool write_some(client_t *k)
{
    while (k->sent < k->out.len) {
        ssize_t w = send(k->fd, k->out.data + k->sent, k->out.len - k->sent, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno != EAGAIN;
        k->sent += (size_t)w;
    }
    return true;
}

/* Moves one connection on as far as it can without blocking. */
static void progress(control_t *c, client_t *k, control_fn fn, void *arg)
{
    if (!k->answering) {
        int rc = read_some(k);
        if (rc < 0) {
            drop(c, k);
            return;
        }
        if (rc == 0)
            return;
        if (!k->answering)
            answer(c, k, fn, arg);
        watch(c, k->fd, EPOLLOUT, (uint64_t)(k - c->clients), EPOLL_CTL_MOD);
    }
    if (write_some(k))
        drop(c, k);
}

/* A connection that is refused gets one line, if its buffer takes it, and is closed. */
static void refuse(int fd, const char *line)
{
    (void)send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
}

static void accept_all(control_t *c, control_fn fn, void *arg)
{
    for (;;) {
        int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && errno == EINTR)
            continue;
        if (fd < 0)
            return;
        if (!peer_allowed(fd)) {
            refuse(fd, "ERR permission denied\n");
            continue;
        }
        client_t *k = NULL;
        for (int i = 0; i < CONTROL_MAX_CLIENTS && !k; i++)
            k = c->clients[i].fd < 0 ? &c->clients[i] : NULL;
        if (!k || watch(c, fd, EPOLLIN, (uint64_t)(k - c->clients), EPOLL_CTL_ADD) < 0) {
            refuse(fd, "ERR busy\n");
            continue;
        }
        *k = (client_t){.fd = fd, .deadline_ms = now_ms() + CONTROL_TIMEOUT_MS};
        buf_init(&k->in);
        buf_init(&k->out);
        progress(c, k, fn, arg); /* the request is often there already */
    }
}

/* Closes the connections past their deadline and arms the timer for the next one. */
static void expire(control_t *c)
{
    uint64_t now = now_ms(), next = 0;
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        client_t *k = &c->clients[i];
        if (k->fd >= 0 && now >= k->deadline_ms)
            drop(c, k);
        else if (k->fd >= 0 && (!next || k->deadline_ms < next))
            next = k->deadline_ms;
    }
    uint64_t left = next ? next - now : 0;
    struct itimerspec its = {.it_value = {(time_t)(left / 1000), (long)(left % 1000) * 1000000}};
    (void)timerfd_settime(c->timer, 0, &its, NULL);
}

void control_serve(control_t *c, control_fn fn, void *arg)
{
    struct epoll_event ev[CONTROL_MAX_CLIENTS + 2];
    int n = epoll_wait(c->ep, ev, CONTROL_MAX_CLIENTS + 2, 0);
    for (int i = 0; i < n; i++) {
        uint64_t tag = ev[i].data.u64;
        if (tag == TAG_LISTENER) {
            accept_all(c, fn, arg);
        } else if (tag == TAG_TIMER) {
            uint64_t ticks;
            (void)read(c->timer, &ticks, sizeof(ticks));
        } else if (tag < CONTROL_MAX_CLIENTS && c->clients[tag].fd >= 0) {
            progress(c, &c->clients[tag], fn, arg);
        }
    }
    expire(c);
}
