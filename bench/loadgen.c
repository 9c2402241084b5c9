/*
 * loadgen: Socket.IO WebSocket load generator for `make bench` (libuv, one loop, one process).
 *
 * Opens --clients raw WebSocket Socket.IO v5 clients to 127.0.0.1:--port (HTTP upgrade,
 * Engine.IO open, `40`, `420["join-room",room]` with an ack), client i in room
 * <prefix><i % rooms>, answers Engine.IO pings. Once every client has its ack it records the
 * server's RSS, then (fan-out mode) runs --exec through /bin/sh (the producer) and counts every
 * `room:message`: each entry carries field b = "<seq>:<CLOCK_MONOTONIC ns>", so latency is
 * receive time minus producer time (same host) and every client checks that it saw each
 * sequence number of its room exactly once. Entry k of the producer goes to room k % rooms
 * with seq k / rooms. Stops when all expected deliveries arrived, after --idle-ms without
 * traffic once the producer exited, or at --timeout. Prints one JSON object on stdout and a
 * table on stderr. Loopback only; never writes anything but its own frames.
 *
 * Several loadgens can share one broadcast (bench.sh's connect-100k): each connects from its own
 * --bind address, writes --ready-file once its clients joined, and starts timing (and its
 * --exec, if given) only once --go-file exists. --lat-out writes the latency distribution.
 *
 * The clients' sockets are read and written with plain system calls from one edge-triggered epoll
 * set (libuv keeps the timers and the producer and polls that set): per connection socket,
 * connect, one epoll_ctl, a write per message and a read per answer, and close, so that the load
 * generator's own cost does not hide the server's on a small box. Every message still waits for
 * the server's answer to the previous one, as a socket.io client's do.
 *
 * --deflate offers permessage-deflate (RFC 7692) as npm ws does and inflates compressed frames
 * with one zlib stream per client (kept between messages unless the server answered
 * server_no_context_takeover). The bytes read from the sockets over the measured window are
 * reported per delivery either way (wire_bytes_per_delivery).
 */
#include "bench/procstat.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <zlib.h>

enum cstate { C_IDLE, C_CONNECTING, C_HTTP, C_OPEN, C_NSP, C_JOINING, C_JOINED, C_DEAD };

typedef struct client client_t;
typedef struct lg lg_t;

struct client {
    int fd; /* -1 before the connect and once closed */
    lg_t *lg;
    enum cstate state;
    uint32_t room;
    uint8_t *seen; /* one bit per expected seq of the room */
    char *pend;    /* bytes of an incomplete frame or HTTP header */
    size_t plen, pcap;
    char *out; /* bytes the socket did not take yet (sent on its next EPOLLOUT) */
    size_t olen, ocap;
    bool deflate;     /* the server accepted permessage-deflate */
    bool no_takeover; /* ... with server_no_context_takeover: reset between messages */
    z_stream *inf;    /* NULL until the first compressed frame */
};

struct lg {
    uv_loop_t *loop;
    int port;
    uint32_t nclients, nrooms, parallel;
    uint64_t entries;
    const char *prefix, *exec, *label, *mode, *lat_out;
    const char *bind_addr;            /* source address of every connection (several processes,
                                       * several addresses: past one address' ephemeral ports) */
    const char *ready_file, *go_file; /* barrier between loadgens sharing one broadcast */
    bool offer_deflate;               /* --deflate */
    uint32_t deflated;                /* clients that negotiated it */
    uint64_t compressed;              /* compressed messages received */
    unsigned char *zbuf;              /* one inflated message */
    size_t zcap;
    bool ready_written;
    pid_t server_pid, redis_pid;
    uint32_t idle_ms, timeout_s, hold_ms;

    client_t *clients;
    uint32_t next_connect, inflight, joined, nsp_ok, failed;
    uint64_t t_start, t_all_nsp, t_all_joined, t_prod_start, t_prod_end, t_last_msg;
    bool producer_running, producer_done, finished;
    int producer_status;

    uint64_t received, dups, unexpected, warm, pings, bytes_in, bytes_in_prod_start;
    double *lat_us;
    size_t nlat, caplat;

    procstat_t srv_before_conn, srv_after_conn, srv_prod_start, srv_end;
    procstat_t redis_prod_start, redis_end;
    struct rusage self_prod_start;

    bool connecting;   /* connect_more runs */
    int ep;            /* every client socket, edge-triggered */
    uv_poll_t ep_poll; /* libuv's wake-up when ep has events */
    uv_timer_t tick, hard;
    uv_process_t proc;
    char rbuf[256 * 1024];
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t room_count(const lg_t *lg, uint32_t room)
{
    return lg->entries / lg->nrooms + (room < lg->entries % lg->nrooms ? 1 : 0);
}

static void finish(lg_t *lg);
static void connect_more(lg_t *lg);

static void client_fail(client_t *c);

/* Makes *buf (of *cap bytes) hold at least need; false when memory ran out. */
static bool reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return true;
    char *q = realloc(*buf, need);
    if (!q)
        return false;
    *buf = q;
    *cap = need;
    return true;
}

/* Writes p[0..n) behind what is still queued; what the socket does not take now waits for its
 * next EPOLLOUT. */
static void send_bytes(client_t *c, const void *p, size_t n)
{
    ssize_t w = 0;
    if (c->olen == 0) {
        w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            client_fail(c);
            return;
        }
        if (w < 0)
            w = 0;
    }
    size_t left = n - (size_t)w;
    if (left == 0)
        return;
    if (!reserve(&c->out, &c->ocap, c->olen + left)) {
        client_fail(c);
        return;
    }
    memcpy(c->out + c->olen, (const char *)p + w, left);
    c->olen += left;
}

/* The socket has room again: what waited goes. */
static void send_queued(client_t *c)
{
    if (c->olen == 0)
        return;
    ssize_t w = send(c->fd, c->out, c->olen, MSG_NOSIGNAL);
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR)
            client_fail(c);
        return;
    }
    memmove(c->out, c->out + w, c->olen - (size_t)w);
    c->olen -= (size_t)w;
}

/* Sends one masked frame (payload < 126 bytes) of opcode op. */
static void send_frame(client_t *c, unsigned char op, const void *p, size_t n)
{
    unsigned char f[6 + 125];
    static const unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    if (n > 125)
        n = 125;
    f[0] = (unsigned char)(0x80 | op);
    f[1] = (unsigned char)(0x80 | n);
    memcpy(f + 2, mask, 4);
    for (size_t i = 0; i < n; i++)
        f[6 + i] = ((const unsigned char *)p)[i] ^ mask[i & 3];
    send_bytes(c, f, 6 + n);
}

static void send_text(client_t *c, const char *s)
{
    send_frame(c, 0x1, s, strlen(s));
}

static void send_pong_frame(client_t *c, const unsigned char *p, size_t n)
{
    send_frame(c, 0xa, p, n);
}

static void client_fail(client_t *c)
{
    lg_t *lg = c->lg;
    if (c->state == C_DEAD)
        return;
    if (c->state < C_JOINED)
        lg->failed++;
    if (c->state >= C_CONNECTING && c->state < C_NSP && lg->inflight)
        lg->inflight--;
    c->state = C_DEAD;
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    connect_more(lg);
}

static void lat_push(lg_t *lg, double us)
{
    if (lg->nlat == lg->caplat) {
        size_t cap = lg->caplat ? lg->caplat * 2 : 65536;
        double *p = realloc(lg->lat_us, cap * sizeof(*p));
        if (!p)
            return;
        lg->lat_us = p;
        lg->caplat = cap;
    }
    lg->lat_us[lg->nlat++] = us;
}

static void on_room_message(client_t *c, const char *p, size_t n, uint64_t t_rx)
{
    lg_t *lg = c->lg;
    const char *b = memmem(p, n, "\"b\":\"", 5);
    if (!b) {
        lg->unexpected++;
        return;
    }
    b += 5;
    if (*b == 'w') {
        lg->warm++;
        return;
    }
    char *end;
    unsigned long long seq = strtoull(b, &end, 10);
    if (*end != ':') {
        lg->unexpected++;
        return;
    }
    unsigned long long t = strtoull(end + 1, NULL, 10);
    if (seq >= room_count(lg, c->room)) {
        lg->unexpected++;
        return;
    }
    uint8_t bit = (uint8_t)(1u << (seq & 7));
    if (c->seen[seq >> 3] & bit) {
        lg->dups++;
        return;
    }
    c->seen[seq >> 3] |= bit;
    lg->received++;
    lg->t_last_msg = t_rx;
    lat_push(lg, t_rx > t ? (double)(t_rx - t) / 1000.0 : 0.0);
}

static void on_all_joined(lg_t *lg);

static void on_text(client_t *c, const char *p, size_t n, uint64_t t_rx)
{
    lg_t *lg = c->lg;
    if (n == 0)
        return;
    if (p[0] == '2' && n == 1) {
        lg->pings++;
        send_text(c, "3");
        return;
    }
    if (n >= 2 && p[0] == '4' && p[1] == '2') {
        on_room_message(c, p, n, t_rx);
        return;
    }
    if (p[0] == '0' && c->state == C_OPEN) {
        c->state = C_NSP;
        send_text(c, "40");
        return;
    }
    if (n >= 2 && p[0] == '4' && p[1] == '0' && c->state == C_NSP) {
        char msg[128];
        c->state = C_JOINING;
        lg->nsp_ok++;
        if (lg->inflight)
            lg->inflight--;
        if (lg->nsp_ok == lg->nclients)
            lg->t_all_nsp = now_ns();
        snprintf(msg, sizeof(msg), "420[\"join-room\",\"%s%u\"]", lg->prefix, c->room);
        send_text(c, msg);
        connect_more(lg);
        return;
    }
    if (n >= 3 && memcmp(p, "430", 3) == 0 && c->state == C_JOINING) {
        if (!memmem(p, n, "\"ok\":true", 9)) {
            client_fail(c);
            return;
        }
        c->state = C_JOINED;
        if (++lg->joined + lg->failed == lg->nclients)
            on_all_joined(lg);
        return;
    }
    if (p[0] == '1' || (n >= 2 && p[0] == '4' && p[1] == '1'))
        client_fail(c);
}

/* Inflates one compressed message (RFC 7692 §7.2.2: its payload plus 00 00 ff ff) into lg->zbuf;
 * returns its length, or -1 (the client then fails). */
static long inflate_message(client_t *c, const unsigned char *p, size_t n)
{
    lg_t *lg = c->lg;
    if (!c->inf) {
        c->inf = calloc(1, sizeof(*c->inf));
        if (!c->inf || inflateInit2(c->inf, -15) != Z_OK)
            return -1;
    } else if (c->no_takeover) {
        inflateReset(c->inf);
    }
    static const unsigned char tail[4] = {0, 0, 0xff, 0xff};
    size_t out = 0;
    int rc = Z_OK;
    for (int part = 0; part < 2 && rc == Z_OK; part++) {
        c->inf->next_in = (unsigned char *)(part ? tail : p);
        c->inf->avail_in = (uInt)(part ? 4 : n);
        do {
            if (lg->zcap - out < 65536) {
                size_t cap = lg->zcap ? lg->zcap * 2 : 1 << 20;
                unsigned char *q = realloc(lg->zbuf, cap);
                if (!q || cap > (64u << 20))
                    return -1;
                lg->zbuf = q;
                lg->zcap = cap;
            }
            c->inf->next_out = lg->zbuf + out;
            c->inf->avail_out = (uInt)(lg->zcap - out);
            rc = inflate(c->inf, Z_SYNC_FLUSH);
            out = lg->zcap - c->inf->avail_out;
            if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END)
                return -1;
        } while (rc == Z_OK && (c->inf->avail_in > 0 || c->inf->avail_out == 0));
        if (rc == Z_BUF_ERROR)
            rc = Z_OK; /* this part's input is used up */
    }
    if (rc == Z_STREAM_END)
        inflateReset(c->inf); /* a final block: the next message starts a new stream */
    lg->compressed++;
    return (long)out;
}

/* Consumes whole frames from `p`; returns bytes consumed. */
static size_t parse_frames(client_t *c, const unsigned char *p, size_t n, uint64_t t_rx)
{
    size_t off = 0;
    while (n - off >= 2 && c->state != C_DEAD) {
        const unsigned char *f = p + off;
        size_t avail = n - off, hdr = 2;
        uint64_t len = f[1] & 0x7f;
        bool masked = f[1] & 0x80;
        if (len == 126) {
            if (avail < 4)
                break;
            len = ((uint64_t)f[2] << 8) | f[3];
            hdr = 4;
        } else if (len == 127) {
            if (avail < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | f[2 + i];
            hdr = 10;
        }
        if (masked)
            hdr += 4;
        if (len > (64u << 20)) {
            client_fail(c);
            break;
        }
        if (avail < hdr + len)
            break;
        unsigned op = f[0] & 0x0f;
        const unsigned char *pl = f + hdr;
        if (op == 1 && (f[0] & 0x40)) {
            long m = c->deflate ? inflate_message(c, pl, (size_t)len) : -1;
            if (m < 0) {
                client_fail(c);
                break;
            }
            on_text(c, (const char *)c->lg->zbuf, (size_t)m, t_rx);
        } else if (op == 1)
            on_text(c, (const char *)pl, (size_t)len, t_rx);
        else if (op == 9)
            send_pong_frame(c, pl, (size_t)len);
        else if (op == 8)
            client_fail(c);
        off += hdr + (size_t)len;
    }
    return off;
}

static int pend_set(client_t *c, const char *p, size_t n)
{
    if (!reserve(&c->pend, &c->pcap, n))
        return -ENOMEM;
    if (n) /* nothing kept may have no buffer yet */
        memmove(c->pend, p, n);
    c->plen = n;
    return 0;
}

static void handle_bytes(client_t *c, const char *p, size_t n, uint64_t t_rx)
{
    if (c->state == C_HTTP) {
        const char *e = memmem(p, n, "\r\n\r\n", 4);
        if (!e) {
            if (n > 8192)
                client_fail(c);
            else
                pend_set(c, p, n);
            return;
        }
        if (n < 12 || memcmp(p + 9, "101", 3) != 0) {
            client_fail(c);
            return;
        }
        c->state = C_OPEN;
        size_t h = (size_t)(e + 4 - p);
        if (c->lg->offer_deflate && memmem(p, h, "permessage-deflate", 18)) {
            c->deflate = true;
            c->no_takeover = memmem(p, h, "server_no_context_takeover", 26) != NULL;
            c->lg->deflated++;
        }
        p += h;
        n -= h;
    }
    size_t used = parse_frames(c, (const unsigned char *)p, n, t_rx);
    if (c->state != C_DEAD)
        pend_set(c, p + used, n - used);
}

/* nread bytes read into base */
static void on_bytes(client_t *c, const char *base, size_t nread)
{
    lg_t *lg = c->lg;
    lg->bytes_in += (uint64_t)nread;
    uint64_t t_rx = now_ns();
    if (c->plen == 0) {
        handle_bytes(c, base, nread, t_rx);
        return;
    }
    size_t total = c->plen + (size_t)nread;
    if (!reserve(&c->pend, &c->pcap, total)) {
        client_fail(c);
        return;
    }
    memcpy(c->pend + c->plen, base, nread);
    /* handle_bytes rewrites pend: work on a detached copy */
    char *tmp = c->pend;
    c->pend = NULL;
    c->pcap = 0;
    c->plen = 0;
    handle_bytes(c, tmp, total, t_rx);
    free(tmp);
}

/* The connect completed (the socket's first EPOLLOUT): the upgrade request. */
static void on_connect(client_t *c)
{
    c->state = C_HTTP;
    static const char rq[] = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                             "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n";
    /* npm ws' default offer */
    static const char rq_deflate[] =
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
    if (c->lg->offer_deflate)
        send_bytes(c, rq_deflate, sizeof(rq_deflate) - 1);
    else
        send_bytes(c, rq, sizeof(rq) - 1);
}

/* One socket's events. Edge-triggered: read until a read comes back short (the socket is then
 * empty, and more bytes raise a new edge). */
static void on_client_events(client_t *c, uint32_t ev)
{
    lg_t *lg = c->lg;
    if (c->state == C_DEAD)
        return;
    if (c->state == C_CONNECTING) {
        if (ev & (EPOLLERR | EPOLLHUP)) { /* refused, reset */
            client_fail(c);
            return;
        }
        if (!(ev & EPOLLOUT))
            return;
        on_connect(c);
    } else if (ev & EPOLLOUT) {
        send_queued(c);
    }
    if (!(ev & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)))
        return;
    while (c->state != C_DEAD) {
        ssize_t r = read(c->fd, lg->rbuf, sizeof(lg->rbuf));
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r <= 0) {
            client_fail(c);
            return;
        }
        on_bytes(c, lg->rbuf, (size_t)r);
        /* a short read emptied the socket, but a FIN that came with the bytes raises no edge of
         * its own: after one, read on to the end of the stream */
        if ((size_t)r < sizeof(lg->rbuf) && !(ev & (EPOLLRDHUP | EPOLLHUP)))
            return;
    }
}

static void on_epoll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    lg_t *lg = h->data;
    struct epoll_event evs[256];
    int k;
    do {
        k = epoll_wait(lg->ep, evs, 256, 0);
        for (int i = 0; i < k; i++)
            on_client_events(evs[i].data.ptr, evs[i].events);
    } while (k == 256);
}

static void connect_more(lg_t *lg)
{
    /* a client failing at once below calls back here: the loop running already takes the next
     * one (recursing would take a stack frame per failure: thousands when descriptors run out) */
    if (lg->connecting)
        return;
    lg->connecting = true;
    struct sockaddr_in sa, src;
    uv_ip4_addr("127.0.0.1", lg->port, &sa);
    if (lg->bind_addr)
        uv_ip4_addr(lg->bind_addr, 0, &src);
    while (lg->next_connect < lg->nclients && lg->inflight < lg->parallel && !lg->finished) {
        client_t *c = &lg->clients[lg->next_connect++];
        c->lg = lg;
        c->state = C_CONNECTING;
        lg->inflight++;
        /* No TCP_NODELAY: every message here is written after the server's answer to the
         * previous one acknowledged it, so Nagle never holds one back. */
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
            client_fail(c);
            continue;
        }
        /* the port is picked at connect() from the whole 4-tuple: a bind() to port 0 would scan
         * every port already bound on the address, per connection */
        int one = 1;
        if (lg->bind_addr &&
            (setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) < 0 ||
             bind(c->fd, (const struct sockaddr *)&src, sizeof(src)) < 0)) {
            client_fail(c);
            continue;
        }
        /* in, out and the connect's completion: one registration for the socket's life */
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.ptr = c};
        if ((connect(c->fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0 &&
             errno != EINPROGRESS) ||
            epoll_ctl(lg->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            client_fail(c);
    }
    lg->connecting = false;
    if (lg->joined + lg->failed == lg->nclients && lg->t_all_joined == 0)
        on_all_joined(lg);
}

static void on_proc_exit(uv_process_t *p, int64_t status, int sig)
{
    lg_t *lg = p->data;
    lg->producer_running = false;
    lg->producer_done = true;
    lg->producer_status = sig ? 128 + sig : (int)status;
    lg->t_prod_end = now_ns();
    uv_close((uv_handle_t *)p, NULL);
}

static void start_producer(lg_t *lg)
{
    lg->bytes_in_prod_start = lg->bytes_in;
    procstat_tree(lg->server_pid, &lg->srv_prod_start);
    if (lg->redis_pid)
        procstat_tree(lg->redis_pid, &lg->redis_prod_start);
    getrusage(RUSAGE_SELF, &lg->self_prod_start);
    lg->t_prod_start = now_ns();
    if (!lg->exec) {
        lg->producer_done = true;
        lg->t_prod_end = lg->t_prod_start;
        return;
    }
    char *args[] = {"/bin/sh", "-c", (char *)lg->exec, NULL};
    uv_stdio_container_t io[3] = {{.flags = UV_IGNORE},
                                  {.flags = UV_INHERIT_FD, .data.fd = 2},
                                  {.flags = UV_INHERIT_FD, .data.fd = 2}};
    uv_process_options_t o = {
        .exit_cb = on_proc_exit, .file = "/bin/sh", .args = args, .stdio_count = 3, .stdio = io};
    lg->proc.data = lg;
    int rc = uv_spawn(lg->loop, &lg->proc, &o);
    if (rc < 0) {
        fprintf(stderr, "loadgen: cannot run producer: %s\n", uv_strerror(rc));
        lg->producer_done = true;
        lg->producer_status = 127;
        return;
    }
    lg->producer_running = true;
}

static void on_all_joined(lg_t *lg)
{
    if (lg->t_all_joined)
        return;
    lg->t_all_joined = now_ns();
    if (!lg->t_all_nsp)
        lg->t_all_nsp = lg->t_all_joined;
    fprintf(stderr, "loadgen: %u/%u clients joined in %.3f s (%u failed)\n", lg->joined,
            lg->nclients, (double)(lg->t_all_joined - lg->t_start) / 1e9, lg->failed);
}

static void on_tick(uv_timer_t *t)
{
    lg_t *lg = t->data;
    uint64_t now = now_ns();
    if (!lg->t_all_joined)
        return;
    if (strcmp(lg->mode, "connect") == 0) {
        /* let the server settle, then sample its memory */
        if (now - lg->t_all_joined >= (uint64_t)lg->hold_ms * 1000000ull) {
            procstat_tree(lg->server_pid, &lg->srv_after_conn);
            finish(lg);
        }
        return;
    }
    if (!lg->t_prod_start) {
        if (now - lg->t_all_joined < (uint64_t)lg->hold_ms * 1000000ull)
            return;
        if (lg->ready_file && !lg->ready_written) {
            FILE *f = fopen(lg->ready_file, "w");
            if (f) {
                fprintf(f, "%u %u\n", lg->joined, lg->failed);
                fclose(f);
            }
            lg->ready_written = true;
        }
        if (lg->go_file && access(lg->go_file, F_OK) != 0)
            return;
        procstat_tree(lg->server_pid, &lg->srv_after_conn);
        start_producer(lg);
        return;
    }
    uint64_t expected = 0;
    for (uint32_t r = 0; r < lg->nrooms && r < lg->nclients; r++)
        expected += room_count(lg, r) * ((lg->nclients - r + lg->nrooms - 1) / lg->nrooms);
    if (lg->producer_done && lg->received >= expected) {
        finish(lg);
        return;
    }
    uint64_t last = lg->t_last_msg > lg->t_prod_end ? lg->t_last_msg : lg->t_prod_end;
    if (lg->producer_done && now - last > (uint64_t)lg->idle_ms * 1000000ull)
        finish(lg);
}

static void on_hard(uv_timer_t *t)
{
    lg_t *lg = t->data;
    fprintf(stderr, "loadgen: timeout (%u s) reached\n", lg->timeout_s);
    finish(lg);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *s, size_t n, double p)
{
    if (!n)
        return -1;
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return s[k - 1];
}

static double tv_us(struct timeval tv)
{
    return (double)tv.tv_sec * 1e6 + (double)tv.tv_usec;
}

/* The latency distribution for bench/charts.js: "<percentile> <ms>" per line, every percent up
 * to 99, then finer steps into the tail, then the maximum as 100. */
static void write_latencies(const lg_t *lg)
{
    FILE *f = fopen(lg->lat_out, "w");
    if (!f) {
        fprintf(stderr, "loadgen: cannot write %s\n", lg->lat_out);
        return;
    }
    static const double tail[] = {99.5, 99.9, 99.95, 99.99, 99.995, 99.999};
    for (int p = 1; p <= 99 && lg->nlat; p++)
        fprintf(f, "%d %.4f\n", p, pct(lg->lat_us, lg->nlat, p) / 1000);
    for (size_t i = 0; i < sizeof(tail) / sizeof(tail[0]) && lg->nlat; i++)
        if ((double)lg->nlat * (100 - tail[i]) >= 100) /* at least one sample beyond it */
            fprintf(f, "%g %.4f\n", tail[i], pct(lg->lat_us, lg->nlat, tail[i]) / 1000);
    if (lg->nlat)
        fprintf(f, "100 %.4f\n", lg->lat_us[lg->nlat - 1] / 1000);
    fclose(f);
}

static void close_all(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void finish(lg_t *lg)
{
    if (lg->finished)
        return;
    lg->finished = true;
    uint64_t t_end = now_ns();
    procstat_tree(lg->server_pid, &lg->srv_end);
    if (lg->redis_pid)
        procstat_tree(lg->redis_pid, &lg->redis_end);
    if (lg->producer_running)
        uv_process_kill(&lg->proc, SIGTERM);
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);

    if (lg->nlat) /* no sample may mean no array */
        qsort(lg->lat_us, lg->nlat, sizeof(double), cmp_d);
    if (lg->lat_out)
        write_latencies(lg);
    uint64_t expected = 0;
    uint64_t missing = 0;
    for (uint32_t i = 0; i < lg->nclients; i++) {
        client_t *c = &lg->clients[i];
        uint64_t want = room_count(lg, c->room);
        expected += want;
        if (!c->seen)
            continue;
        for (uint64_t s = 0; s < want; s++)
            if (!(c->seen[s >> 3] & (1u << (s & 7))))
                missing++;
    }
    if (!lg->t_prod_start)
        expected = 0, missing = 0;
    uint64_t t0 = lg->t_prod_start ? lg->t_prod_start : t_end;
    uint64_t tl = lg->t_last_msg > t0 ? lg->t_last_msg : t_end;
    double secs = (double)(tl - t0) / 1e9;
    double srv_cpu = (double)(lg->srv_end.cpu_us - lg->srv_prod_start.cpu_us);
    double redis_cpu =
        lg->redis_pid ? (double)(lg->redis_end.cpu_us - lg->redis_prod_start.cpu_us) : 0;
    double self_cpu = tv_us(self.ru_utime) + tv_us(self.ru_stime) -
                      tv_us(lg->self_prod_start.ru_utime) - tv_us(lg->self_prod_start.ru_stime);
    if (!lg->t_prod_start)
        self_cpu = tv_us(self.ru_utime) + tv_us(self.ru_stime), srv_cpu = 0;
    double kid_cpu = tv_us(kids.ru_utime) + tv_us(kids.ru_stime);
    double conn_s = lg->t_all_nsp ? (double)(lg->t_all_nsp - lg->t_start) / 1e9 : -1;
    uint32_t connected = lg->nsp_ok;
    double rss_per_conn =
        (lg->srv_after_conn.rss_kb && connected)
            ? ((double)lg->srv_after_conn.rss_kb - (double)lg->srv_before_conn.rss_kb) * 1024.0 /
                  connected
            : -1;
    double per_del = lg->received ? srv_cpu / (double)lg->received : -1;
    /* connect + handshake + join, charged to the server (its idle hold time is negligible) */
    double hs_cpu = lg->srv_after_conn.procs
                        ? (double)(lg->srv_after_conn.cpu_us - lg->srv_before_conn.cpu_us)
                        : 0;

    printf("{\"label\":\"%s\",\"mode\":\"%s\",\"clients\":%u,\"rooms\":%u,\"entries\":%" PRIu64
           ",\"connected\":%u,\"joined\":%u,\"failed\":%u,\"connect_s\":%.3f,"
           "\"handshakes_per_s\":%.0f,\"server_procs\":%zu,\"server_rss_kb_before\":%" PRIu64
           ",\"server_rss_kb_after\":%" PRIu64 ",\"rss_bytes_per_conn\":%.0f,"
           "\"expected\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64
           ",\"dups\":%" PRIu64 ",\"unexpected\":%" PRIu64 ",\"warm\":%" PRIu64
           ",\"duration_s\":%.3f,\"deliveries_per_s\":%.0f,\"server_cpu_us\":%.0f,"
           "\"server_cpu_us_per_delivery\":%.3f,\"server_cpu_pct\":%.1f,\"redis_cpu_us\":%.0f,"
           "\"loadgen_cpu_us\":%.0f,\"loadgen_cpu_pct\":%.1f,\"producer_cpu_us\":%.0f,"
           "\"producer_status\":%d,\"lat_p50_ms\":%.3f,\"lat_p99_ms\":%.3f,"
           "\"lat_p999_ms\":%.3f,\"lat_max_ms\":%.3f,\"server_cpu_us_per_handshake\":%.1f,"
           "\"loadgen_cpu_us_per_conn\":%.1f,"
           "\"deflate_clients\":%u,\"compressed_messages\":%" PRIu64
           ",\"wire_bytes_per_delivery\":%.1f}\n",
           lg->label, lg->mode, lg->nclients, lg->nrooms, lg->entries, connected, lg->joined,
           lg->failed, conn_s, conn_s > 0 ? connected / conn_s : 0, lg->srv_end.procs,
           lg->srv_before_conn.rss_kb, lg->srv_after_conn.rss_kb, rss_per_conn, expected,
           lg->received, missing, lg->dups, lg->unexpected, lg->warm, secs,
           secs > 0 ? (double)lg->received / secs : 0, srv_cpu, per_del,
           secs > 0 ? srv_cpu / 1e4 / secs : 0, redis_cpu, self_cpu,
           secs > 0 ? self_cpu / 1e4 / secs : 0, kid_cpu, lg->producer_status,
           pct(lg->lat_us, lg->nlat, 50) / 1000, pct(lg->lat_us, lg->nlat, 99) / 1000,
           pct(lg->lat_us, lg->nlat, 99.9) / 1000, lg->nlat ? lg->lat_us[lg->nlat - 1] / 1000 : -1,
           connected ? hs_cpu / connected : -1,
           !lg->t_prod_start && connected ? self_cpu / connected : -1, lg->deflated, lg->compressed,
           lg->received ? (double)(lg->bytes_in - lg->bytes_in_prod_start) / (double)lg->received
                        : -1);
    fflush(stdout);
    fprintf(stderr,
            "loadgen %s [%s]: %u clients connected in %.3f s; %" PRIu64 "/%" PRIu64
            " deliveries in %.3f s (%.0f/s), lost %" PRIu64 " dup %" PRIu64
            "; server CPU %.3f us/delivery; latency p50 %.3f p99 %.3f p99.9 %.3f ms; "
            "RSS/conn %.0f B; loadgen CPU %.0f%%\n",
            lg->label, lg->mode, connected, conn_s, lg->received, expected, secs,
            secs > 0 ? (double)lg->received / secs : 0, missing, lg->dups, per_del,
            pct(lg->lat_us, lg->nlat, 50) / 1000, pct(lg->lat_us, lg->nlat, 99) / 1000,
            pct(lg->lat_us, lg->nlat, 99.9) / 1000, rss_per_conn,
            secs > 0 ? self_cpu / 1e4 / secs : 0);
    for (uint32_t i = 0; i < lg->nclients; i++) {
        if (lg->clients[i].fd >= 0)
            close(lg->clients[i].fd);
        lg->clients[i].fd = -1;
    }
    uv_walk(lg->loop, close_all, NULL);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen --port P --server-pid PID [--clients N] [--rooms R] [--entries E]\n"
            "         [--prefix bench.r] [--exec 'producer ...'] [--mode fanout|connect]\n"
            "         [--parallel 256] [--idle-ms 2000] [--hold-ms 500] [--timeout 120]\n"
            "         [--redis-pid PID] [--label NAME] [--lat-out FILE] [--bind 127.0.0.x]\n"
            "         [--ready-file FILE --go-file FILE] [--deflate]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static lg_t lgs;
    lg_t *lg = &lgs;
    lg->nclients = 1000;
    lg->nrooms = 100;
    lg->entries = 20000;
    lg->prefix = "bench.r";
    lg->label = "server";
    lg->mode = "fanout";
    lg->parallel = 256;
    lg->idle_ms = 2000;
    lg->hold_ms = 500;
    lg->timeout_s = 120;
    static const struct option opts[] = {{"port", 1, 0, 'p'},       {"clients", 1, 0, 'c'},
                                         {"rooms", 1, 0, 'r'},      {"entries", 1, 0, 'e'},
                                         {"prefix", 1, 0, 'x'},     {"exec", 1, 0, 'X'},
                                         {"mode", 1, 0, 'm'},       {"parallel", 1, 0, 'P'},
                                         {"idle-ms", 1, 0, 'i'},    {"hold-ms", 1, 0, 'H'},
                                         {"timeout", 1, 0, 't'},    {"server-pid", 1, 0, 's'},
                                         {"redis-pid", 1, 0, 'R'},  {"label", 1, 0, 'l'},
                                         {"lat-out", 1, 0, 'L'},    {"bind", 1, 0, 'b'},
                                         {"ready-file", 1, 0, 'y'}, {"go-file", 1, 0, 'g'},
                                         {"deflate", 0, 0, 'z'},    {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'p':
            lg->port = atoi(optarg);
            break;
        case 'c':
            lg->nclients = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            lg->nrooms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'e':
            lg->entries = strtoull(optarg, NULL, 10);
            break;
        case 'x':
            lg->prefix = optarg;
            break;
        case 'X':
            lg->exec = optarg;
            break;
        case 'm':
            lg->mode = optarg;
            break;
        case 'P':
            lg->parallel = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'i':
            lg->idle_ms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'H':
            lg->hold_ms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 't':
            lg->timeout_s = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 's':
            lg->server_pid = (pid_t)atoi(optarg);
            break;
        case 'R':
            lg->redis_pid = (pid_t)atoi(optarg);
            break;
        case 'l':
            lg->label = optarg;
            break;
        case 'L':
            lg->lat_out = optarg;
            break;
        case 'b':
            lg->bind_addr = optarg;
            break;
        case 'y':
            lg->ready_file = optarg;
            break;
        case 'g':
            lg->go_file = optarg;
            break;
        case 'z':
            lg->offer_deflate = true;
            break;
        default:
            usage();
        }
    }
    if (lg->port <= 0 || lg->port > 65535 || !lg->server_pid || !lg->nclients || !lg->nrooms ||
        !lg->parallel || lg->nclients > 1000000 || lg->timeout_s == 0)
        usage();
    if (strcmp(lg->mode, "fanout") != 0 && strcmp(lg->mode, "connect") != 0)
        usage();

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    lg->clients = calloc(lg->nclients, sizeof(client_t));
    if (!lg->clients)
        return 1;
    for (uint32_t i = 0; i < lg->nclients; i++) {
        client_t *c = &lg->clients[i];
        c->room = i % lg->nrooms;
        c->fd = -1;
        if (strcmp(lg->mode, "fanout") == 0) {
            c->seen = calloc(room_count(lg, c->room) / 8 + 1, 1);
            if (!c->seen)
                return 1;
        }
    }
    lg->loop = uv_default_loop();
    lg->ep = epoll_create1(EPOLL_CLOEXEC);
    if (lg->ep < 0 || uv_poll_init(lg->loop, &lg->ep_poll, lg->ep) < 0) {
        fprintf(stderr, "loadgen: epoll: %s\n", strerror(errno));
        return 1;
    }
    lg->ep_poll.data = lg;
    uv_poll_start(&lg->ep_poll, UV_READABLE, on_epoll);
    if (procstat_tree(lg->server_pid, &lg->srv_before_conn) < 0) {
        fprintf(stderr, "loadgen: server pid %d not found\n", (int)lg->server_pid);
        return 1;
    }
    uv_timer_init(lg->loop, &lg->tick);
    lg->tick.data = lg;
    uv_timer_start(&lg->tick, on_tick, 20, 20);
    uv_timer_init(lg->loop, &lg->hard);
    lg->hard.data = lg;
    uv_timer_start(&lg->hard, on_hard, (uint64_t)lg->timeout_s * 1000, 0);
    lg->t_start = now_ns();
    connect_more(lg);
    uv_run(lg->loop, UV_RUN_DEFAULT);
    if (lg->producer_running)
        uv_run(lg->loop, UV_RUN_DEFAULT);
    int bad = lg->failed || lg->joined == 0;
    for (uint32_t i = 0; i < lg->nclients; i++) {
        free(lg->clients[i].seen);
        free(lg->clients[i].pend);
        free(lg->clients[i].out);
    }
    free(lg->clients);
    free(lg->lat_us);
    uv_loop_close(lg->loop);
    close(lg->ep);
    return bad ? 1 : 0;
}
