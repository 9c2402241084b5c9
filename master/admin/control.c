/* control: see control.h. */
#include "master/admin/control.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/decimal.h"
#include "common/ilist.h"
#include "common/xalloc.h"

#define MAX_CONNS 32
#define IDLE_MS 1000     /* the longest silence while a request comes in */
#define REQUEST_MS 10000 /* the whole request */
#define ANSWER_MS 10000  /* the whole answer */

typedef enum conn_state { READING, RUNNING, WRITING, CLOSING } conn_state_t;

struct control_req {
    ilist_t link; /* in c->conns until its handles are closed */
    control_t *c;
    uv_pipe_t pipe;
    uv_timer_t timer;
    uv_write_t wreq;
    conn_state_t state;
    uint64_t deadline; /* of the whole request (READING) */
    bool orphan;       /* the control socket closed while the handler ran */
    int open;          /* handles still open */
    buf_t in, store, out, answer;
};

struct control {
    uv_loop_t *loop;
    uv_pipe_t server;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    control_fn fn;
    void *arg;
    ilist_t conns; /* the newest first */
    unsigned nconns;
    int open; /* the listener and the connections */
};

static void release(control_t *c)
{
    if (--c->open == 0)
        free(c);
}

static void on_conn_closed(uv_handle_t *h)
{
    control_req_t *r = h->data;
    if (--r->open > 0)
        return;
    control_t *c = r->c;
    ilist_remove(&r->link);
    c->nconns--;
    buf_free(&r->in);
    buf_free(&r->store);
    buf_free(&r->out);
    buf_free(&r->answer);
    free(r);
    release(c);
}

static void conn_close(control_req_t *r)
{
    if (r->state == CLOSING)
        return;
    r->state = CLOSING;
    uv_close((uv_handle_t *)&r->pipe, on_conn_closed);
    uv_close((uv_handle_t *)&r->timer, on_conn_closed);
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    conn_close(w->data);
}

/* Sends `answer` and closes once written (or ANSWER_MS later). */
static void send_answer(control_req_t *r);

static void on_timeout(uv_timer_t *t)
{
    control_req_t *r = t->data;
    if (r->state != READING) {
        conn_close(r);
        return;
    }
    buf_reset(&r->answer);
    buf_puts(&r->answer, "ERR request timed out\n");
    send_answer(r);
}

static void send_answer(control_req_t *r)
{
    uv_read_stop((uv_stream_t *)&r->pipe);
    r->state = WRITING;
    uv_buf_t b = uv_buf_init(r->answer.data, (unsigned)r->answer.len);
    r->wreq.data = r;
    if (uv_write(&r->wreq, (uv_stream_t *)&r->pipe, &b, 1, on_written)) {
        conn_close(r);
        return;
    }
    uv_timer_start(&r->timer, on_timeout, ANSWER_MS, 0);
}

static void answer_line(control_req_t *r, const char *line)
{
    buf_reset(&r->answer);
    buf_puts(&r->answer, line);
    send_answer(r);
}

void control_done(control_req_t *r, int rc)
{
    if (r->orphan) {
        conn_close(r);
        return;
    }
    buf_reset(&r->answer);
    if (rc == 0) {
        buf_puts(&r->answer, "OK\n");
        buf_append(&r->answer, r->out.data ? r->out.data : "", r->out.len);
    } else {
        buf_puts(&r->answer, "ERR ");
        buf_append(&r->answer, r->out.data ? r->out.data : "failed", r->out.data ? r->out.len : 6);
        buf_putc(&r->answer, '\n');
    }
    send_answer(r);
}

/* The whole request is in: run it. */
static void run(control_req_t *r)
{
    int argc;
    char *argv[CONTROL_MAX_ARGS];
    size_t lens[CONTROL_MAX_ARGS];
    if (control_parse(r->in.data ? r->in.data : "", r->in.len, &r->store, &argc, argv, lens) ||
        argc == 0) {
        answer_line(r, "ERR malformed request\n");
        return;
    }
    uv_read_stop((uv_stream_t *)&r->pipe);
    uv_timer_stop(&r->timer);
    r->state = RUNNING;
    r->c->fn(r, argc, argv, lens, &r->out, r->c->arg);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    control_req_t *r = h->data;
    buf_reserve(&r->in, 4096);
    *b = uv_buf_init(r->in.data + r->in.len, (unsigned)(r->in.cap - r->in.len - 1));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    control_req_t *r = s->data;
    if (n == UV_EOF) {
        run(r);
        return;
    }
    if (n < 0) {
        conn_close(r);
        return;
    }
    r->in.len += (size_t)n;
    if (r->in.len > CONTROL_MAX_REQUEST) {
        answer_line(r, "ERR request too large\n");
        return;
    }
    uint64_t now = uv_now(r->c->loop);
    if (now >= r->deadline) {
        on_timeout(&r->timer);
        return;
    }
    uint64_t left = r->deadline - now;
    uv_timer_start(&r->timer, on_timeout, left < IDLE_MS ? left : IDLE_MS, 0);
}

/* Root and the server's own user only (the socket's mode says the same; this holds even if
 * someone loosens it). */
static bool peer_allowed(const uv_pipe_t *p)
{
    uv_os_fd_t fd;
    struct ucred cr;
    socklen_t len = sizeof(cr);
    return uv_fileno((const uv_handle_t *)p, &fd) == 0 &&
           getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 &&
           (cr.uid == 0 || cr.uid == geteuid());
}

static void on_connection(uv_stream_t *server, int status)
{
    control_t *c = server->data;
    if (status < 0)
        return;
    control_req_t *r = xcalloc(1, sizeof(*r));
    r->c = c;
    uv_pipe_init(c->loop, &r->pipe, 0);
    uv_timer_init(c->loop, &r->timer);
    r->pipe.data = r->timer.data = r;
    r->open = 2;
    ilist_push_front(&c->conns, &r->link);
    c->nconns++;
    c->open++;
    if (uv_accept(server, (uv_stream_t *)&r->pipe)) {
        conn_close(r);
        return;
    }
    if (!peer_allowed(&r->pipe)) {
        answer_line(r, "ERR permission denied\n");
        return;
    }
    if (c->nconns > MAX_CONNS) {
        answer_line(r, "ERR too many control connections\n");
        return;
    }
    r->deadline = uv_now(c->loop) + REQUEST_MS;
    uv_timer_start(&r->timer, on_timeout, IDLE_MS, 0);
    if (uv_read_start((uv_stream_t *)&r->pipe, on_alloc, on_read))
        conn_close(r);
}

/* A unix stream socket bound at path, listening; -1 with errno set. Bound under umask 0177: the
 * socket is 0600 from its first moment (no chmod afterwards, no window). */
static int bind_socket(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    unlink(path); /* a stale one: a live master also holds the port and the pid file */
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || listen(fd, 16) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void on_failed_closed(uv_handle_t *h)
{
    free(h->data);
}

int control_open(control_t **out, uv_loop_t *loop, const char *path, control_fn fn, void *arg,
                 buf_t *err)
{
    control_t *c = xcalloc(1, sizeof(*c));
    ilist_init(&c->conns);
    if (strlen(path) >= sizeof(c->path)) {
        buf_printf(err, "streamio: control socket path too long: %s", path);
        free(c);
        return -ENAMETOOLONG;
    }
    memcpy(c->path, path, strlen(path) + 1);
    int fd = bind_socket(path);
    if (fd < 0) {
        int e = errno;
        buf_printf(err, "streamio: cannot listen on the control socket %s: %s", path, strerror(e));
        free(c);
        return -e;
    }
    uv_pipe_init(loop, &c->server, 0);
    c->server.data = c;
    int rc = uv_pipe_open(&c->server, fd);
    if (rc)
        close(fd);
    else
        rc = uv_listen((uv_stream_t *)&c->server, 16, on_connection);
    if (rc) {
        buf_printf(err, "streamio: cannot listen on the control socket %s: %s", path,
                   uv_strerror(rc));
        unlink(path);
        uv_close((uv_handle_t *)&c->server, on_failed_closed);
        return rc;
    }
    c->loop = loop;
    c->fn = fn;
    c->arg = arg;
    c->open = 1;
    *out = c;
    return 0;
}

static void on_server_closed(uv_handle_t *h)
{
    release(h->data);
}

void control_close(control_t *c)
{
    if (!c)
        return;
    unlink(c->path);
    uv_close((uv_handle_t *)&c->server, on_server_closed);
    ILIST_FOREACH(l, &c->conns)
    {
        control_req_t *r = ILIST_ENTRY(l, control_req_t, link);
        if (r->state == RUNNING)
            r->orphan = true; /* closed by its control_done */
        else
            conn_close(r);
    }
}

int control_parse(const char *req, size_t len, buf_t *store, int *argc, char **argv, size_t *lens)
{
    buf_reset(store);
    buf_reserve(store, len + CONTROL_MAX_ARGS);
    size_t offs[CONTROL_MAX_ARGS];
    int n = 0;
    size_t i = 0;
    while (i < len) {
        uint64_t l;
        size_t digits = decimal_read(req + i, len - i, 8, &l);
        i += digits;
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
