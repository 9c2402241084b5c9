/* ws_client: see ws_client.h. */
#include "ctl/ws_client.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/base64.h"
#include "common/proto/ws_frame.h"
#include "common/xalloc.h"
#include "ctl/term_text.h"

#define KEY_BYTES 16
#define HEAD_MAX 8192

struct ws_client {
    int fd;
    bool open;  /* upgraded: a close frame is due on the way out */
    buf_t in;   /* bytes read and not yet consumed */
    size_t off; /* start of the unconsumed part of `in` */
    buf_t out;  /* frames being written */
};

int ws_url_parse(const char *url, ws_url_t *out, buf_t *err)
{
    memset(out, 0, sizeof(*out));
    const char *p = url;
    if (strncmp(p, "http://", 7) == 0 || strncmp(p, "ws://", 5) == 0) {
        p = strchr(p, '/') + 2;
    } else if (strncmp(p, "https://", 8) == 0 || strncmp(p, "wss://", 6) == 0) {
        buf_printf(err, "%s: TLS is not supported here; use the server's plain http address", url);
        return -EINVAL;
    } else if (strstr(p, "://")) {
        buf_printf(err, "%s: expected an http:// URL", url);
        return -EINVAL;
    }
    const char *host = p, *host_end;
    if (*p == '[') {
        host = p + 1;
        host_end = strchr(host, ']');
        p = host_end ? host_end + 1 : NULL;
    } else {
        host_end = p + strcspn(p, ":/?#");
        p = host_end;
    }
    if (!p || host_end == host || (size_t)(host_end - host) >= sizeof(out->host)) {
        buf_printf(err, "%s: no host", url);
        return -EINVAL;
    }
    memcpy(out->host, host, (size_t)(host_end - host));
    strcpy(out->port, "80");
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535 || (*end && *end != '/')) {
            buf_printf(err, "%s: bad port", url);
            return -EINVAL;
        }
        snprintf(out->port, sizeof(out->port), "%ld", port);
        p = end;
    }
    if (*p && *p != '/') {
        buf_printf(err, "%s: unexpected \"%s\" after the address", url, p);
        return -EINVAL;
    }
    size_t plen = strcspn(p, "?#");
    while (plen && p[plen - 1] == '/')
        plen--;
    if (plen >= sizeof(out->path)) {
        buf_printf(err, "%s: path too long", url);
        return -EINVAL;
    }
    memcpy(out->path, p, plen);
    return 0;
}

void ws_client_frame(buf_t *out, uint8_t opcode, const void *payload, size_t len,
                     const uint8_t mask[4])
{
    uint8_t hdr[WS_FRAME_HEADER_MAX];
    size_t hl = ws_frame_header(hdr, opcode, len);
    hdr[1] |= 0x80; /* RFC 6455 §5.3: every client frame is masked */
    buf_reserve(out, hl + 4 + len);
    buf_append(out, hdr, hl);
    buf_append(out, mask, 4);
    const uint8_t *src = payload;
    uint8_t *dst = (uint8_t *)out->data + out->len;
    for (size_t i = 0; i < len; i++)
        dst[i] = src[i] ^ mask[i & 3];
    out->len += len;
    out->data[out->len] = '\0';
}

/* The value of header `name` (case-insensitive) in a response head, or NULL; *vlen its length. */
static const char *header_value(const char *head, size_t len, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *end = head + len;
    for (const char *line = memchr(head, '\n', len); line && line + 1 < end;
         line = memchr(line + 1, '\n', (size_t)(end - line - 1))) {
        const char *h = line + 1;
        if ((size_t)(end - h) > nlen && strncasecmp(h, name, nlen) == 0 && h[nlen] == ':') {
            const char *v = h + nlen + 1, *e = memchr(v, '\r', (size_t)(end - v));
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            *vlen = (size_t)((e ? e : end) - v);
            return v;
        }
    }
    return NULL;
}

int ws_client_check_upgrade(const char *resp, size_t len, const char *key, buf_t *err)
{
    size_t sl = strcspn(resp, "\r\n");
    if (sl > len)
        sl = len;
    if (len < 12 || strncmp(resp, "HTTP/1.1 ", 9) != 0) {
        buf_puts(err, "not an HTTP answer: \"");
        term_text_put(err, resp, sl > 80 ? 80 : sl);
        buf_putc(err, '"');
        return -EPROTO;
    }
    if (strncmp(resp + 9, "101", 3) != 0) {
        /* the body (after the head) is the server's reason, e.g. {"message":"Origin not allowed"}
         */
        const char *body = strstr(resp, "\r\n\r\n");
        buf_puts(err, "the server refused the WebSocket: ");
        term_text_put(err, resp, sl);
        if (body && body[4]) {
            buf_putc(err, ' ');
            term_text_put(err, body + 4, strcspn(body + 4, "\r\n"));
        }
        return -EPROTO;
    }
    char want[WS_ACCEPT_KEY_SIZE];
    size_t alen = 0;
    const char *accept = header_value(resp, len, "Sec-WebSocket-Accept", &alen);
    if (ws_accept_key(key, strlen(key), want) || !accept || alen != strlen(want) ||
        memcmp(accept, want, alen) != 0) {
        buf_puts(err, "the server answered 101 without the right Sec-WebSocket-Accept");
        return -EPROTO;
    }
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until the deadline. 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

static int send_all(int fd, const char *p, size_t len, int64_t deadline)
{
    while (len) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            int rc = wait_fd(fd, POLLOUT, deadline);
            if (rc)
                return rc;
            continue;
        }
        if (w < 0)
            return -errno;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Reads what is there (at most once) into c->in. 0, -ECONNRESET on EOF, -errno. */
static int read_some(ws_client_t *c)
{
    if (c->off) { /* what was handed out is no longer borrowed: drop it */
        memmove(c->in.data, c->in.data + c->off, c->in.len - c->off);
        c->in.len -= c->off;
        c->off = 0;
    }
    buf_reserve(&c->in, 65536);
    ssize_t r = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len - 1, MSG_DONTWAIT);
    if (r == 0)
        return -ECONNRESET;
    if (r < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    c->in.len += (size_t)r;
    c->in.data[c->in.len] = '\0';
    return 0;
}

static int dial(const ws_url_t *u, int64_t deadline, buf_t *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(u->host, u->port, &hints, &res);
    if (gai) {
        buf_printf(err, "cannot resolve %s: %s", u->host, gai_strerror(gai));
        return -EHOSTUNREACH;
    }
    int rc = -ECONNREFUSED, fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        rc = errno == EINPROGRESS ? wait_fd(fd, POLLOUT, deadline) : -errno;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr)
            rc = -soerr;
        if (rc) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        buf_printf(err, "cannot connect to %s port %s: %s", u->host, u->port, strerror(-rc));
    return fd < 0 ? rc : fd;
}

int ws_client_open(ws_client_t **out, const ws_url_t *u, const char *target, int timeout_ms,
                   buf_t *err)
{
    int64_t deadline = now_ms() + timeout_ms;
    ws_client_t *c = xcalloc(1, sizeof(*c));
    buf_init(&c->in);
    buf_init(&c->out);
    c->fd = dial(u, deadline, err);
    if (c->fd < 0) {
        int rc = c->fd;
        c->fd = -1;
        ws_client_free(c);
        return rc;
    }
    uint8_t raw[KEY_BYTES];
    char key[32];
    int rc = getrandom(raw, sizeof(raw), 0) == (ssize_t)sizeof(raw) ? 0 : -EIO;
    base64_encode_to(key, raw, sizeof(raw));
    bool v6 = strchr(u->host, ':') != NULL;
    if (!rc)
        buf_printf(&c->out,
                   "GET %s%s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n",
                   u->path, target, v6 ? "[" : "", u->host, v6 ? "]" : "", u->port, key);
    if (!rc)
        rc = send_all(c->fd, c->out.data, c->out.len, deadline);
    const char *end = NULL;
    while (!rc && !(end = c->in.len ? strstr(c->in.data, "\r\n\r\n") : NULL)) {
        if (c->in.len > HEAD_MAX) {
            rc = -EPROTO;
            buf_puts(err, "the server's answer to the upgrade is too long");
            break;
        }
        rc = wait_fd(c->fd, POLLIN, deadline);
        if (!rc)
            rc = read_some(c);
    }
    if (!rc) {
        size_t head = (size_t)(end - c->in.data) + 4;
        /* give a refusal's one-line body a moment to arrive, for the message */
        if (strncmp(c->in.data, "HTTP/1.1 101", 12) != 0 && c->in.len == head &&
            wait_fd(c->fd, POLLIN, now_ms() + 200) == 0)
            read_some(c);
        rc = ws_client_check_upgrade(c->in.data, c->in.len, key, err);
        c->off = head;
    } else if (rc == -ETIMEDOUT || rc == -ECONNRESET) {
        buf_printf(err, "no WebSocket answer from %s port %s (%s)", u->host, u->port,
                   rc == -ETIMEDOUT ? "timed out" : "connection closed");
    } else if (!err->len) {
        buf_printf(err, "upgrade failed: %s", strerror(-rc));
    }
    if (rc) {
        ws_client_free(c);
        return rc;
    }
    c->open = true;
    *out = c;
    return 0;
}

static int send_frame(ws_client_t *c, uint8_t opcode, const char *p, size_t len)
{
    uint8_t mask[4];
    if (getrandom(mask, sizeof(mask), 0) != (ssize_t)sizeof(mask))
        return -EIO;
    buf_reset(&c->out);
    ws_client_frame(&c->out, opcode, p, len, mask);
    return send_all(c->fd, c->out.data, c->out.len, now_ms() + 10000);
}

int ws_client_send_text(ws_client_t *c, const char *p, size_t len)
{
    return send_frame(c, WS_FRAME_TEXT, p, len);
}

int ws_client_recv(ws_client_t *c, int timeout_ms, const char **msg, size_t *len, buf_t *err)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        const uint8_t *d = (const uint8_t *)c->in.data + c->off, *payload;
        size_t avail = c->in.len - c->off, plen;
        if (avail >= 2 && (d[1] & 0x80)) {
            buf_puts(err, "the server sent a masked frame");
            return -EPROTO;
        }
        size_t hl = avail >= 2 ? ws_frame_parse(d, avail, &payload, &plen) : 0;
        if (hl) {
            uint8_t op = d[0] & 0x0f;
            c->off += hl + plen;
            if (!(d[0] & 0x80) || op == 0) {
                buf_puts(err,
                         "the server sent a fragmented message, which this client does not read");
                return -EPROTO;
            }
            if (op == WS_FRAME_TEXT) {
                *msg = (const char *)payload;
                *len = plen;
                return 0;
            }
            if (op == WS_FRAME_PING) {
                int rc = send_frame(c, WS_FRAME_PONG, (const char *)payload, plen);
                if (rc)
                    return rc;
            } else if (op == WS_FRAME_CLOSE) {
                unsigned code = plen >= 2 ? (unsigned)payload[0] << 8 | payload[1] : 1005;
                buf_printf(err, "the server closed the WebSocket (code %u", code);
                if (plen > 2) {
                    buf_puts(err, ": ");
                    term_text_put(err, (const char *)payload + 2, plen - 2);
                }
                buf_putc(err, ')');
                return -ECONNRESET;
            }
            continue; /* pong, binary: nothing to hand on */
        }
        if (avail > WS_CLIENT_MAX_MESSAGE + WS_FRAME_HEADER_MAX) {
            buf_puts(err, "a server message larger than this client accepts");
            return -EPROTO;
        }
        int rc = wait_fd(c->fd, POLLIN, deadline);
        if (!rc)
            rc = read_some(c);
        if (rc == -ECONNRESET)
            buf_puts(err, "the server closed the connection");
        else if (rc && rc != -ETIMEDOUT)
            buf_printf(err, "read failed: %s", strerror(-rc));
        if (rc)
            return rc;
    }
}

void ws_client_free(ws_client_t *c)
{
    if (!c)
        return;
    if (c->open) {
        static const char bye[2] = {0x03, (char)0xe8}; /* 1000: normal closure */
        send_frame(c, WS_FRAME_CLOSE, bye, sizeof(bye));
    }
    if (c->fd >= 0)
        close(c->fd);
    buf_free(&c->in);
    buf_free(&c->out);
    free(c);
}
