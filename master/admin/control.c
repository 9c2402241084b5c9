/* control: see control.h. */
#include "master/admin/control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

struct control {
    int fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    buf_t req, store, out;
};

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
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd >= 0)
        unlink(path); /* a stale one: a live master also holds the port and the pid file */
    if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0660) < 0 ||
        listen(c->fd, 16) < 0) {
        int rc = -errno;
        buf_printf(err, "streamio: cannot listen on the control socket %s: %s", path,
                   strerror(errno));
        if (c->fd >= 0)
            close(c->fd);
        free(c);
        return rc;
    }
    buf_init(&c->req);
    buf_init(&c->store);
    buf_init(&c->out);
    *out = c;
    return 0;
}

void control_forget(control_t *c)
{
    if (c && c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

void control_close(control_t *c)
{
    if (!c)
        return;
    if (c->fd >= 0) {
        unlink(c->path);
        close(c->fd);
    }
    buf_free(&c->req);
    buf_free(&c->store);
    buf_free(&c->out);
    free(c);
}

int control_fd(const control_t *c)
{
    return c ? c->fd : -1;
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

static void write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        len -= (size_t)w;
    }
}

static void serve_one(control_t *c, int fd, control_fn fn, void *arg)
{
    struct timeval tv = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    buf_reset(&c->req);
    for (;;) {
        if (buf_reserve(&c->req, 4096))
            return;
        ssize_t r = read(fd, c->req.data + c->req.len, c->req.cap - c->req.len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return;
        if (r == 0)
            break;
        c->req.len += (size_t)r;
        if (c->req.len > CONTROL_MAX_REQUEST) {
            write_all(fd, "ERR request too large\n", 22);
            return;
        }
    }
    int argc;
    char *argv[CONTROL_MAX_ARGS];
    size_t lens[CONTROL_MAX_ARGS];
    buf_reset(&c->out);
    if (control_parse(c->req.data ? c->req.data : "", c->req.len, &c->store, &argc, argv, lens) ||
        argc == 0) {
        write_all(fd, "ERR malformed request\n", 22);
        return;
    }
    int rc = fn(argc, argv, lens, &c->out, arg);
    if (rc) {
        write_all(fd, "ERR ", 4);
        write_all(fd, c->out.data ? c->out.data : "failed", c->out.data ? c->out.len : 6);
        write_all(fd, "\n", 1);
        return;
    }
    write_all(fd, "OK\n", 3);
    if (c->out.len)
        write_all(fd, c->out.data, c->out.len);
}

void control_serve(control_t *c, control_fn fn, void *arg)
{
    for (;;) {
        int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0 && errno == EINTR)
            continue;
        if (fd < 0)
            return;
        serve_one(c, fd, fn, arg);
        close(fd);
    }
}
