/* redis_link: see redis_link.h. */
#include "common/redis/redis_link.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/keepalive.h"
#include "common/xalloc.h"

#define READ_CHUNK 16384
/* A plain link's read buffer starts at READ_CHUNK and doubles, up to READ_MAX, each time a read
 * fills it: a busy link (the subscription that gets every broadcast's echo, the replies of large
 * XREADGROUP batches) then costs one read system call per 256 KB instead of per 16 KB, and an
 * idle one keeps 16 KB. */
#define READ_MAX (256 * 1024)
/* A plain link whose queue reaches EARLY_WRITE while nothing is in flight writes it at once
 * instead of at the end of the loop iteration: a read batch's thousands of PUBLISHes then reuse
 * the same warm 256 KB instead of a queue of megabytes, for one more write(2) per 256 KB. */
#define EARLY_WRITE (256 * 1024)

typedef struct bytes {
    char *p;
    size_t len, cap;
} bytes_t;

struct redis_link {
    uv_loop_t *loop;
    const redis_link_cbs_t *cbs;
    void *arg;
    redis_tls_session_t *tls; /* NULL: plain TCP */
    char host[256];
    char port[8];
    uv_getaddrinfo_t gai;
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    uv_prepare_t flush;
    bytes_t out;    /* plaintext queued by the owner */
    bytes_t wire;   /* bytes of the write in flight */
    bool connected; /* TCP up */
    bool open;      /* and TLS done: the owner's bytes may go */
    bool writing;
    bool early_full; /* an early write was cut short: none until the next flush */
    bool resolving;
    bool dead;              /* failed or closed: no more callbacks */
    bool held;              /* reads stopped (redis_link_hold_reads) */
    bool closing;           /* redis_link_close called: freed when refs reach 0 */
    int early_err;          /* resolver refused at once: reported from the loop, not from open */
    int refs;               /* handles and the resolver request still owned by libuv */
    unsigned dead_after_ms; /* keepalive_set's; 0 = its default */
    char *rbuf;             /* rcap bytes: what one read(2) may fill */
    size_t rcap;
    char *pbuf; /* decrypted bytes (TLS only) */
};

static void bytes_reserve(bytes_t *b, size_t n)
{
    if (b->len + n <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
        cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

static void release(redis_link_t *l)
{
    if (--l->refs || !l->closing)
        return;
    redis_tls_session_free(l->tls);
    free(l->pbuf);
    free(l->rbuf);
    free(l->out.p);
    free(l->wire.p);
    free(l);
}

static void on_handle_closed(uv_handle_t *h)
{
    release(h->data);
}

static void fail(redis_link_t *l, int err, const char *why)
{
    if (l->dead)
        return;
    l->dead = true;
    l->cbs->error(l, err, why, l->arg);
}

static void on_written(uv_write_t *req, int status);

/* Hands the front of b to the socket without a write request (uv_try_write) and keeps what it did
 * not take at b's start, so what is queued stays exact (redis_link_queued). Returns the bytes
 * taken, UV_EAGAIN when none, or another negative error (the caller decides what it costs). */
static int write_front(redis_link_t *l, bytes_t *b)
{
    int n = uv_try_write((uv_stream_t *)&l->tcp, &(uv_buf_t){.base = b->p, .len = b->len}, 1);
    if (n > 0) {
        b->len -= (size_t)n;
        memmove(b->p, b->p + n, b->len);
    }
    return n;
}

/* With TLS, encrypts what the owner queued (once open) and collects the records to send. */
static void flush(redis_link_t *l)
{
    l->early_full = false;
    if (l->dead || !l->connected || l->writing)
        return;
    if (l->tls) {
        if (l->open && l->out.len) {
            if (redis_tls_session_write(l->tls, l->out.p, l->out.len)) {
                fail(l, -EPROTO, redis_tls_session_error(l->tls));
                return;
            }
            l->out.len = 0;
        }
        size_t n;
        while ((n = redis_tls_session_pending(l->tls)) > 0) {
            bytes_reserve(&l->wire, n);
            l->wire.len += redis_tls_session_take(l->tls, l->wire.p + l->wire.len, n);
        }
    } else if (l->open && l->out.len) {
        bytes_t t = l->wire;
        l->wire = l->out;
        l->out = t;
        l->out.len = 0;
    }
    if (!l->wire.len)
        return;
    /* What the socket takes at once needs no write request: uv_write would also arm and disarm
     * the writable watch (an epoll_ctl) and take one more loop turn for its callback, for each
     * flush, that is, each paced read and its acknowledgements. The rest waits for writability. */
    int n = write_front(l, &l->wire);
    if (n < 0 && n != UV_EAGAIN) {
        fail(l, n, uv_strerror(n));
        return;
    }
    if (!l->wire.len)
        return;
    uv_buf_t b = uv_buf_init(l->wire.p, (unsigned)l->wire.len);
    int rc = uv_write(&l->wreq, (uv_stream_t *)&l->tcp, &b, 1, on_written);
    if (rc) {
        fail(l, rc, uv_strerror(rc));
        return;
    }
    l->writing = true;
}

static void on_written(uv_write_t *req, int status)
{
    redis_link_t *l = req->data;
    l->writing = false;
    l->wire.len = 0;
    if (status < 0) {
        fail(l, status, uv_strerror(status));
        return;
    }
    flush(l);
}

static void on_prepare(uv_prepare_t *h)
{
    redis_link_t *l = h->data;
    uv_prepare_stop(h);
    if (l->early_err) {
        fail(l, l->early_err, uv_strerror(l->early_err));
        return;
    }
    flush(l);
}

static void want_flush(redis_link_t *l)
{
    if (!l->closing)
        uv_prepare_start(&l->flush, on_prepare);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    redis_link_t *l = h->data;
    *buf = uv_buf_init(l->rbuf, (unsigned)l->rcap);
}

static void became_open(redis_link_t *l)
{
    l->open = true;
    want_flush(l);
    l->cbs->open(l, l->arg);
}

/* TLS: feeds what came in, finishes the handshake, hands over the plaintext. */
static void tls_input(redis_link_t *l, const char *p, size_t n)
{
    redis_tls_session_feed(l->tls, p, n);
    if (!l->open) {
        int rc = redis_tls_session_handshake(l->tls);
        if (rc == -EAGAIN) {
            want_flush(l);
            return;
        }
        if (rc) {
            fail(l, -EPROTO, redis_tls_session_error(l->tls));
            return;
        }
        became_open(l);
        if (l->dead)
            return;
    }
    for (;;) {
        ssize_t r = redis_tls_session_read(l->tls, l->pbuf, READ_CHUNK);
        if (r == -EAGAIN)
            break;
        if (r <= 0) {
            fail(l, r ? (int)r : UV_EOF,
                 r ? redis_tls_session_error(l->tls) : "TLS closed by the server");
            return;
        }
        l->cbs->data(l, l->pbuf, (size_t)r, l->arg);
        if (l->dead)
            return;
    }
    if (redis_tls_session_pending(l->tls))
        want_flush(l);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    redis_link_t *l = s->data;
    if (l->dead || n == 0)
        return;
    if (n < 0) {
        fail(l, (int)n, n == UV_EOF ? "connection closed by the server" : uv_strerror((int)n));
        return;
    }
    if (l->tls)
        tls_input(l, buf->base, (size_t)n);
    else
        l->cbs->data(l, buf->base, (size_t)n, l->arg);
    /* the bytes were consumed: the buffer may be replaced before the next read */
    if ((size_t)n == l->rcap && l->rcap < READ_MAX) {
        free(l->rbuf);
        l->rcap *= 2;
        l->rbuf = xmalloc(l->rcap);
    }
}

static void set_keepalive(redis_link_t *l)
{
    uv_tcp_nodelay(&l->tcp, 1);
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&l->tcp, &fd) == 0)
        (void)keepalive_set(fd, l->dead_after_ms);
}

void redis_link_set_dead_after(redis_link_t *l, unsigned ms)
{
    l->dead_after_ms = ms;
    if (l->connected)
        set_keepalive(l);
}

static void on_connected(uv_connect_t *req, int status)
{
    redis_link_t *l = req->data;
    if (l->dead)
        return;
    if (status < 0) {
        fail(l, status, uv_strerror(status));
        return;
    }
    l->connected = true;
    set_keepalive(l);
    int rc = uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
    if (rc) {
        fail(l, rc, uv_strerror(rc));
        return;
    }
    if (!l->tls) {
        became_open(l);
        return;
    }
    rc = redis_tls_session_handshake(l->tls);
    if (rc != -EAGAIN) {
        fail(l, -EPROTO, rc ? redis_tls_session_error(l->tls) : "unexpected TLS state");
        return;
    }
    want_flush(l);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    redis_link_t *l = req->data;
    l->resolving = false;
    if (l->dead) {
        uv_freeaddrinfo(res);
        release(l);
        return;
    }
    if (status < 0 || !res) {
        uv_freeaddrinfo(res);
        char why[320];
        snprintf(why, sizeof(why), "cannot resolve %s: %s", l->host,
                 status < 0 ? uv_strerror(status) : "no address");
        fail(l, status < 0 ? status : UV_EAI_NONAME, why);
        release(l);
        return;
    }
    uv_tcp_init(l->loop, &l->tcp);
    l->tcp.data = l;
    l->refs++;
    int rc = uv_tcp_connect(&l->creq, &l->tcp, res->ai_addr, on_connected);
    uv_freeaddrinfo(res);
    release(l); /* the resolver's reference; the TCP handle holds one now */
    if (rc)
        fail(l, rc, uv_strerror(rc));
}

redis_link_t *redis_link_open(uv_loop_t *loop, const char *host, int port, redis_tls_t *tls,
                              const char *server_name, const redis_link_cbs_t *cbs, void *arg)
{
    redis_link_t *l = xcalloc(1, sizeof(*l));
    l->loop = loop;
    l->cbs = cbs;
    l->arg = arg;
    snprintf(l->host, sizeof(l->host), "%s", host);
    snprintf(l->port, sizeof(l->port), "%d", port);
    l->rcap = READ_CHUNK;
    l->rbuf = xmalloc(l->rcap);
    if (tls) {
        l->tls = redis_tls_session_new(tls, server_name && *server_name ? server_name : host);
        l->pbuf = xmalloc(READ_CHUNK);
    }
    l->gai.data = l;
    l->creq.data = l;
    l->wreq.data = l;
    uv_prepare_init(loop, &l->flush);
    l->flush.data = l;
    struct sockaddr_storage sa;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) == 0) {
        /* an address needs no resolver: libuv's resolver is a thread pool, which a process that
         * forks workers afterwards is better without */
        uv_tcp_init(loop, &l->tcp);
        l->tcp.data = l;
        l->refs = 2; /* the prepare handle and the TCP handle */
        int rc = uv_tcp_connect(&l->creq, &l->tcp, (struct sockaddr *)&sa, on_connected);
        if (rc) {
            l->early_err = rc;
            uv_prepare_start(&l->flush, on_prepare);
        }
        return l;
    }
    l->refs = 2; /* the prepare handle and the resolver request */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(loop, &l->gai, on_resolved, l->host, l->port, &hints);
    if (rc) {
        l->refs--;
        l->early_err = rc;
        uv_prepare_start(&l->flush, on_prepare);
    }
    l->resolving = rc == 0;
    return l;
}

char *redis_link_reserve(redis_link_t *l, size_t n)
{
    bytes_reserve(&l->out, n);
    return l->out.p + l->out.len;
}

/* Writes what the kernel takes of the queue now; the rest, and an error, wait for the iteration's
 * flush, as everything did before, with no early write until then. */
static void write_early(redis_link_t *l)
{
    (void)write_front(l, &l->out);
    if (l->out.len)
        l->early_full = true;
}

void redis_link_commit(redis_link_t *l, size_t n)
{
    if (l->dead || n == 0)
        return;
    l->out.len += n;
    if (l->out.len >= EARLY_WRITE && l->open && !l->tls && !l->writing && !l->early_full)
        write_early(l);
    want_flush(l);
}

void redis_link_write(redis_link_t *l, const char *p, size_t n)
{
    if (l->dead || n == 0)
        return;
    memcpy(redis_link_reserve(l, n), p, n);
    redis_link_commit(l, n);
}

size_t redis_link_queued(const redis_link_t *l)
{
    return l->out.len + l->wire.len;
}

void redis_link_hold_reads(redis_link_t *l, bool hold)
{
    if (l->tls || !l->open || l->dead || l->held == hold)
        return;
    l->held = hold;
    if (hold) {
        uv_read_stop((uv_stream_t *)&l->tcp);
        return;
    }
    int rc = uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
    if (rc)
        fail(l, rc, uv_strerror(rc));
}

void redis_link_close(redis_link_t *l)
{
    if (l->closing)
        return;
    l->closing = true;
    l->dead = true;
    /* the resolver's callback still runs (ECANCELED or its result) and drops its reference */
    if (l->resolving)
        uv_cancel((uv_req_t *)&l->gai);
    if (l->tcp.data == l)
        uv_close((uv_handle_t *)&l->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&l->flush, on_handle_closed);
}
