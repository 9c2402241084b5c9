/* eio_endpoint: see eio_endpoint.h. */
#include "worker/eio/eio_endpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/proto/relay_hello.h"
#include "common/xalloc.h"
#include "worker/net/handoff.h"
#include "worker/net/peer_dir.h"
#include "worker/net/splice.h"
#include "worker/ws/ws_conn.h"

#define MAX_APPS 4 /* paths served */

typedef struct binding {
    eio_endpoint_t *ep;
    const eio_handlers_t *h;
} binding_t;

struct eio_endpoint {
    eio_endpoint_config_t cfg;
    http_server_t *hs;
    stats_worker_t *stats;
    eio_t *sessions;
    const cors_t *cors;
    handoff_t *handoff;        /* workers > 1: requests for another worker's sid go there */
    uint64_t handoff_failures; /* counted for log_sampled */
    uint64_t cors_refusals;    /* cross-origin requests SOCKETIO_CORS_ORIGINS keeps out (sampled) */
    peer_dir_t *peers;         /* set: requests for another server's sid are relayed there */
    splice_set_t *splices;     /* ... by these relays */
    splice_stats_t relays;
    struct relay *retrying;  /* relays whose server was not found yet, looked up again ... */
    uv_timer_t *retry;       /* ... when this fires (its own allocation: it outlives a free) */
    uint64_t relay_failures; /* counted for log_sampled */
    binding_t apps[MAX_APPS];
    unsigned napps;
    buf_t hdrs; /* extra headers of an answer (CORS) */
    buf_t q;    /* a query parameter */
    buf_t fwd;  /* a request rebuilt for its owner */
};

enum { TR_POLLING = 1, TR_WEBSOCKET = 2 };

/* Marks a relayed request: its receiver relays it no further (a wrong announced address that
 * points back would otherwise loop). */
#define RELAY_PARAM "streamio_relayed"

/* ==== The production transport ==== */

static void on_ws_text(conn_t *c, const char *msg, size_t len, void *ud)
{
    if (!ud) {
        conn_close(c); /* a WebSocket accepted only to be closed (see eio_session_probe) */
        return;
    }
    eio_ws_text(c, ud, msg, len);
}

static void on_ws_binary(conn_t *c, const uint8_t *msg, size_t len, void *ud)
{
    if (!ud) {
        if (ws_conn_close(c, 0))
            conn_close(c);
        return;
    }
    eio_ws_binary(c, ud, msg, len);
}

static const ws_handlers_t ws_handlers = {on_ws_text, on_ws_binary};

static void on_conn_closed(conn_t *c, void *ud)
{
    eio_conn_closed(c, ud);
}

static int tr_ws_text(void *arg, conn_t *c, const char *p, size_t len)
{
    (void)arg;
    return ws_conn_send_text(c, p, len);
}

static int tr_ws_msg(void *arg, conn_t *c, eio_msg_t *m)
{
    (void)arg;
    ws_deflate_t *d = ws_conn_deflater(c);
    return ws_conn_send_frame(c, d ? eio_msg_frames_deflated(m, d) : eio_msg_frames(m));
}

static int tr_ws_close(void *arg, conn_t *c, uint16_t code)
{
    (void)arg;
    return ws_conn_close(c, code);
}

static size_t tr_backlog(void *arg, conn_t *c)
{
    (void)arg;
    return conn_outq_bytes(c);
}

static bool tr_open(void *arg, conn_t *c)
{
    (void)arg;
    return conn_is_open(c);
}

/* An Engine.IO answer: the CORS headers its Origin earns, gzip when large enough. */
static void answer(eio_endpoint_t *ep, conn_t *c, int status, const char *ctype, const char *body,
                   size_t len)
{
    const http_req_t *req = http_request(c);
    if (!req) {
        conn_close(c);
        return;
    }
    buf_reset(&ep->hdrs);
    cors_headers(ep->cors, req, &ep->hdrs);
    http_respond_gzip(c, status, ctype, ep->hdrs.len ? ep->hdrs.data : NULL, body, len);
}

static void tr_respond(void *arg, conn_t *c, int status, const char *ctype, const char *body,
                       size_t len, bool cors)
{
    if (cors)
        answer(arg, c, status, ctype, body, len);
    else
        http_respond(c, status, ctype, NULL, body, len);
}

static int tr_hold(void *arg, conn_t *c)
{
    (void)arg;
    return http_defer(c);
}

static void tr_close(void *arg, conn_t *c)
{
    (void)arg;
    conn_close(c);
}

static void tr_own(void *arg, conn_t *c, eio_session_t *s)
{
    (void)arg;
    conn_set_owner(c, s ? on_conn_closed : NULL, s);
}

/* ==== Answers ==== */

static void respond_error(eio_endpoint_t *ep, conn_t *c, int code, const char *message)
{
    char body[96];
    int n = snprintf(body, sizeof(body), "{\"code\":%d,\"message\":\"%s\"}", code, message);
    answer(ep, c, code == 4 ? 403 : 400, "application/json", body, (size_t)n);
}

/* A WebSocket upgrade refused before the 101 (§1.8). */
static void refuse_ws(conn_t *c, const char *message)
{
    http_respond(c, 400, "text/html", NULL, message, strlen(message));
}

#define WS_ORIGIN_REFUSED "{\"message\":\"Origin not allowed\"}"

/* Admission (the application's); 0, or the connection was answered 503 with the reason. */
static int admit(const eio_handlers_t *h, conn_t *c, struct sockaddr_storage *peer)
{
    memset(peer, 0, sizeof(*peer));
    conn_peer(c, peer); /* an unknown family only counts towards the total */
    const char *why = NULL;
    int rc = h->admit ? h->admit(h->arg, peer, &why) : 0;
    if (rc) {
        char body[128];
        int n = snprintf(body, sizeof(body), "{\"message\":\"%s\"}", why ? why : "Unavailable");
        http_respond(c, 503, "application/json", NULL, body, (size_t)n);
    }
    return rc;
}

static void release(const eio_handlers_t *h, const struct sockaddr_storage *peer)
{
    if (h->release)
        h->release(h->arg, peer);
}

/*
 * A page of another origin that the settings keep out fails in the browser with a bare "xhr poll
 * error" or "websocket error": say here which origin and which setting (sampled: a page retries).
 */
static void warn_cross_origin(eio_endpoint_t *ep, const http_req_t *req, bool ws)
{
    const char *origin = http_req_header(req, HTTP_REQ_ORIGIN);
    if (!origin || (!ws && (ep->hdrs.len || cors_same_origin(req, origin))) ||
        !log_sampled(&ep->cors_refusals))
        return;
    char shown[128]; /* the header as sent, cut short and with control bytes replaced */
    size_t n = 0;
    for (; origin[n] && n + 1 < sizeof(shown); n++)
        shown[n] = (unsigned char)origin[n] < 0x20 || origin[n] == 0x7f ? '?' : origin[n];
    shown[n] = '\0';
    LOG_WARN("refused a cross-origin %s from Origin %s: SOCKETIO_CORS_ORIGINS %s; add the origin "
             "to it to allow that page (%llu so far)",
             ws ? "WebSocket upgrade" : "polling request", shown,
             cors_enabled(ep->cors) ? "does not list it" : "is not set",
             (unsigned long long)ep->cors_refusals);
}

static bool query_is(eio_endpoint_t *ep, const http_req_t *req, const char *key, const char *want)
{
    buf_reset(&ep->q);
    return http_req_query(req, key, &ep->q) == 0 && ep->q.data && strcmp(ep->q.data, want) == 0;
}

/* ==== Handoff ==== */

static const struct {
    http_req_hdr_t h;
    const char *name;
} fwd_headers[] = {
    {HTTP_REQ_HOST, "Host"},
    {HTTP_REQ_UPGRADE, "Upgrade"},
    {HTTP_REQ_CONNECTION, "Connection"},
    {HTTP_REQ_WS_KEY, "Sec-WebSocket-Key"},
    {HTTP_REQ_WS_VERSION, "Sec-WebSocket-Version"},
    {HTTP_REQ_ORIGIN, "Origin"},
    {HTTP_REQ_ACCEPT_ENCODING, "Accept-Encoding"},
};

/*
 * The request rebuilt from what was parsed (method, target, kept headers, body) into ep->fwd.
 * `once`: a relayed request that is not an upgrade asks the owner to close after its answer, so
 * the relay ends with it and the client's next request is routed again.
 */
static void rebuild(eio_endpoint_t *ep, const http_req_t *req, bool once, bool relayed)
{
    buf_t *b = &ep->fwd;
    size_t blen;
    const char *body = http_req_body(req, &blen);
    buf_reset(b);
    buf_printf(b, "%s %s?%s%s HTTP/1.1\r\n", http_req_method(req), http_req_path(req),
               http_req_query_string(req), relayed ? "&" RELAY_PARAM "=1" : "");
    for (size_t i = 0; i < sizeof(fwd_headers) / sizeof(fwd_headers[0]); i++) {
        const char *v = http_req_header(req, fwd_headers[i].h);
        if (v && !(once && fwd_headers[i].h == HTTP_REQ_CONNECTION))
            buf_printf(b, "%s: %s\r\n", fwd_headers[i].name, v);
    }
    if (once || (!http_req_keep_alive(req) && !http_req_header(req, HTTP_REQ_CONNECTION)))
        buf_puts(b, "Connection: close\r\n");
    if (blen || strcmp(http_req_method(req), "POST") == 0)
        buf_printf(b, "Content-Length: %zu\r\n", blen);
    buf_puts(b, "\r\n");
    buf_append(b, body, blen);
}

/*
 * Hands the connection to the worker that owns the sid: the request is rebuilt and sent with
 * the socket. 0: the connection is gone from this worker; otherwise it is still ours to answer.
 */
static int forward(eio_endpoint_t *ep, conn_t *c, const http_req_t *req, uint32_t slot)
{
    buf_t *b = &ep->fwd;
    rebuild(ep, req, false, false);
    int fd = conn_fileno(c);
    if (fd < 0)
        return -EBADF;
    int rc = handoff_send(ep->handoff, slot, fd, b->data, b->len);
    if (rc) {
        if (log_sampled(&ep->handoff_failures))
            LOG_WARN("handing a request to worker %u failed: %s (%llu so far)", (unsigned)slot,
                     strerror(-rc), (unsigned long long)ep->handoff_failures);
        return rc;
    }
    conn_close(c); /* our copy of the descriptor only: the owner now holds the socket */
    return 0;
}

/* ==== Relay to another server ==== */

_Static_assert(EIO_SID_TAG_LEN == RELAY_HELLO_TAG_LEN, "a relay hello names the sid's server");

/* What a client whose server cannot be reached gets: its session is gone, as Node says it. */
#define RELAY_FALLBACK_BODY "{\"code\":1,\"message\":\"Session ID unknown\"}"
#define RELAY_FALLBACK                                                                             \
    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"          \
    "Content-Length: 41\r\n\r\n" RELAY_FALLBACK_BODY
_Static_assert(sizeof(RELAY_FALLBACK_BODY) - 1 == 41, "Content-Length of the fallback");

/* A server announces itself once its Redis connection is up, which may come after its first
 * handshakes: a server not found is looked up again a few times before the client is answered. */
#define RELAY_TRIES 5
#define RELAY_RETRY_MS 200

/* A relay waiting for the owner's address (a GET to Redis): the client's socket and request. */
typedef struct relay {
    eio_endpoint_t *ep;
    int fd;
    unsigned tries;
    char tag[EIO_SID_TAG_LEN];
    struct relay *next; /* in ep->retrying */
    size_t len;
    char req[];
} relay_t;

static void relay_to(eio_endpoint_t *ep, int fd, const char *tag, const struct sockaddr *addr,
                     const char *req, size_t len)
{
    char nonce[RELAY_HELLO_NONCE_LEN + 1], hello[RELAY_HELLO_LEN], expect[RELAY_ANSWER_LEN];
    if (addr && ids_random(nonce, RELAY_HELLO_NONCE_LEN) != 0)
        addr = NULL; /* no nonce, no relay: the client is answered as if the peer were gone */
    if (!addr) {     /* unknown server, or Redis out of reach: best effort, the socket is ours */
        ep->relays.failed++;
        if (write(fd, RELAY_FALLBACK, sizeof(RELAY_FALLBACK) - 1) < 0 &&
            log_sampled(&ep->relay_failures))
            LOG_DEBUG("relay fallback not written: %s", strerror(errno));
        close(fd);
        return;
    }
    relay_hello_build(hello, tag, nonce);
    relay_answer_build(expect, tag, nonce);
    splice_msgs_t m = {hello, sizeof(hello), expect,         sizeof(expect),
                       req,   len,           RELAY_FALLBACK, sizeof(RELAY_FALLBACK) - 1};
    int rc = splice_start(ep->splices, fd, addr, &m, &ep->relays);
    if (rc && log_sampled(&ep->relay_failures))
        LOG_WARN("relaying a request to another server failed: %s (%llu so far)", uv_strerror(rc),
                 (unsigned long long)ep->relay_failures);
}

static void on_retry(uv_timer_t *t);

static void on_peer_found(const struct sockaddr *addr, void *arg)
{
    relay_t *r = arg;
    eio_endpoint_t *ep = r->ep;
    if (!addr && ep->peers && r->tries++ < RELAY_TRIES) {
        r->next = ep->retrying;
        ep->retrying = r;
        if (!uv_is_active((uv_handle_t *)ep->retry))
            uv_timer_start(ep->retry, on_retry, RELAY_RETRY_MS, 0);
        return;
    }
    relay_to(ep, r->fd, r->tag, addr, r->req, r->len);
    free(r);
}

/* Looks each waiting relay up again (without a directory any more: answered at once). */
static void on_retry(uv_timer_t *t)
{
    eio_endpoint_t *ep = t->data;
    relay_t *r = ep->retrying;
    ep->retrying = NULL;
    while (r) {
        relay_t *next = r->next;
        struct sockaddr_storage addr;
        int rc = ep->peers ? peer_dir_lookup(ep->peers, r->tag, &addr, on_peer_found, r) : -1;
        if (rc != 0)
            on_peer_found(rc == 1 ? (const struct sockaddr *)&addr : NULL, r);
        r = next;
    }
}

/*
 * Relays the connection to the server whose tag the sid carries, through a copy of its socket:
 * this worker lets go of the connection at once, the copy is answered by the owner (or with the
 * fallback). 0, or an error with the connection still ours.
 */
static int relay(eio_endpoint_t *ep, conn_t *c, const http_req_t *req, const char *tag)
{
    int fd = conn_fileno(c);
    int copy = fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0)
        return -EBADF;
    rebuild(ep, req, !http_req_is_upgrade(req), true);
    conn_close(c); /* our descriptor only: the copy carries the connection on */
    struct sockaddr_storage addr;
    relay_t *r = xmalloc(sizeof(*r) + ep->fwd.len);
    *r = (relay_t){.ep = ep, .fd = copy, .len = ep->fwd.len};
    memcpy(r->tag, tag, EIO_SID_TAG_LEN);
    memcpy(r->req, ep->fwd.data, ep->fwd.len);
    int rc = peer_dir_lookup(ep->peers, tag, &addr, on_peer_found, r);
    if (rc == 0)
        return 0; /* on_peer_found goes on */
    on_peer_found(rc == 1 ? (const struct sockaddr *)&addr : NULL, r);
    return 0;
}

void eio_endpoint_relay(eio_endpoint_t *ep, peer_dir_t *pd)
{
    ep->peers = pd;
    if (!pd)
        on_retry(ep->retry); /* the waiting relays are answered now */
}

static void on_retry_closed(uv_handle_t *h)
{
    free(h);
}

static void on_handoff(int fd, const char *p, size_t len, void *ud)
{
    eio_endpoint_t *ep = ud;
    if (eio_closing(ep->sessions)) {
        close(fd);
        return;
    }
    http_server_adopt(ep->hs, fd, p, len, NULL); /* on failure it closed fd */
}

/* ==== Requests ==== */

static void ws_handshake(eio_endpoint_t *ep, const eio_handlers_t *h, conn_t *c,
                         const http_req_t *req)
{
    struct sockaddr_storage peer;
    if (admit(h, c, &peer))
        return;
    if (http_ws_accept(c, &ws_handlers)) {
        release(h, &peer);
        return;
    }
    if (eio_session_open(ep->sessions, h, c, req, &peer, true, false, NULL)) {
        release(h, &peer);
        conn_close(c);
    }
}

static void poll_handshake(eio_endpoint_t *ep, const eio_handlers_t *h, conn_t *c,
                           const http_req_t *req)
{
    if (strcmp(http_req_method(req), "GET") != 0) {
        respond_error(ep, c, 2, "Bad handshake method");
        return;
    }
    if (eio_closing(ep->sessions)) {
        http_respond(c, 503, "text/plain", NULL, "Shutting down", 13);
        return;
    }
    struct sockaddr_storage peer;
    if (admit(h, c, &peer))
        return;
    if (eio_session_open(ep->sessions, h, c, req, &peer, false, ep->cfg.websocket, NULL)) {
        release(h, &peer);
        http_respond(c, 500, "text/plain", NULL, "Internal error", 14);
    }
}

/* A request for an existing session. */
static void session_request(eio_endpoint_t *ep, eio_session_t *s, conn_t *c, const http_req_t *req,
                            unsigned tr)
{
    if (tr == TR_WEBSOCKET) {
        if (http_ws_accept(c, &ws_handlers) == 0)
            eio_session_probe(s, c);
        return;
    }
    if (eio_session_upgraded(s)) {
        respond_error(ep, c, 3, "Bad request"); /* upgraded: polling is over */
        return;
    }
    const char *method = http_req_method(req);
    if (strcmp(method, "GET") == 0) {
        eio_session_poll_get(s, c);
    } else if (strcmp(method, "POST") == 0) {
        size_t blen;
        const char *body = http_req_body(req, &blen);
        eio_session_poll_post(s, c, body, blen);
    } else {
        http_respond(c, 500, NULL, NULL, NULL, 0);
    }
}

static void on_request(conn_t *c, const http_req_t *req, void *arg)
{
    binding_t *b = arg;
    eio_endpoint_t *ep = b->ep;
    bool ws = http_req_is_upgrade(req);
    buf_reset(&ep->hdrs);
    cors_headers(ep->cors, req, &ep->hdrs);
    if (!ws)
        warn_cross_origin(ep, req, false);
    if (strcmp(http_req_method(req), "OPTIONS") == 0 && ep->hdrs.len) {
        buf_puts(&ep->hdrs, "Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\n"
                            "Access-Control-Allow-Headers: content-type\r\n");
        http_respond(c, 204, NULL, ep->hdrs.data, NULL, 0);
        return;
    }
    if (ws && !cors_ws_allowed(ep->cors, req)) {
        warn_cross_origin(ep, req, true);
        STATS_ADD(ep->stats->limit_rejections[STATS_LIMIT_ORIGIN], 1);
        http_respond(c, 403, "application/json", NULL, WS_ORIGIN_REFUSED,
                     sizeof(WS_ORIGIN_REFUSED) - 1);
        return;
    }
    if (!query_is(ep, req, "EIO", "4")) {
        if (ws)
            refuse_ws(c, "Unsupported protocol version");
        else
            respond_error(ep, c, 5, "Unsupported protocol version");
        return;
    }
    unsigned tr = query_is(ep, req, "transport", "polling")     ? TR_POLLING
                  : query_is(ep, req, "transport", "websocket") ? TR_WEBSOCKET
                                                                : 0;
    unsigned served = (ep->cfg.polling ? TR_POLLING : 0) | (ep->cfg.websocket ? TR_WEBSOCKET : 0);
    if (!(tr & served)) {
        if (ws)
            refuse_ws(c, "Transport unknown");
        else
            respond_error(ep, c, 0, "Transport unknown");
        return;
    }
    bool relayed = ep->peers && query_is(ep, req, RELAY_PARAM, "1");
    buf_t *q = &ep->q;
    buf_reset(q);
    bool has_sid = http_req_query(req, "sid", q) == 0;
    const char *tag = has_sid && ep->peers ? eio_sid_tag(q->data, q->len) : NULL;
    if (tag && memcmp(tag, ep->cfg.sessions.tag, EIO_SID_TAG_LEN) != 0) {
        if (relayed) { /* relayed here for another server: not ours to pass on again */
            if (ws)
                refuse_ws(c, "Session ID unknown");
            else
                respond_error(ep, c, 1, "Session ID unknown");
            return;
        }
        if (relay(ep, c, req, tag) == 0)
            return;
    }
    int owner = has_sid ? eio_sid_slot(q->data, q->len) : -1;
    /* owner is a process block (up to twice CLUSTER_WORKERS after a reload): handoff_send
     * refuses a block with no live worker */
    if (owner >= 0 && (uint32_t)owner != ep->cfg.sessions.slot && ep->handoff &&
        forward(ep, c, req, (uint32_t)owner) == 0)
        return;
    eio_session_t *s = has_sid ? eio_find(ep->sessions, q->data, q->len) : NULL;
    if (has_sid && !s) {
        if (ws)
            refuse_ws(c, "Session ID unknown");
        else
            respond_error(ep, c, 1, "Session ID unknown");
        return;
    }
    if (s && eio_session_handlers(s) != b->h) {
        respond_error(ep, c, 1, "Session ID unknown");
        return;
    }
    if (tr == TR_WEBSOCKET && !http_req_is_websocket(req)) {
        respond_error(ep, c, 3, "Bad request");
        return;
    }
    if (s)
        session_request(ep, s, c, req, tr);
    else if (tr == TR_WEBSOCKET && eio_closing(ep->sessions))
        refuse_ws(c, "Shutting down");
    else if (tr == TR_WEBSOCKET)
        ws_handshake(ep, b->h, c, req);
    else
        poll_handshake(ep, b->h, c, req);
}

/* ==== Endpoint ==== */

int eio_endpoint_new(eio_endpoint_t **out, uv_loop_t *loop, const eio_endpoint_config_t *cfg,
                     http_server_t *hs, stats_worker_t *stats)
{
    eio_endpoint_t *ep = xcalloc(1, sizeof(*ep));
    ep->cfg = *cfg;
    ep->hs = hs;
    ep->stats = stats;
    ep->cors = cfg->cors;
    buf_init(&ep->hdrs);
    buf_init(&ep->q);
    buf_init(&ep->fwd);
    ep->splices = splice_set_new(loop);
    ep->retry = xmalloc(sizeof(*ep->retry));
    uv_timer_init(loop, ep->retry);
    ep->retry->data = ep;
    eio_transport_t tr = {
        .arg = ep,
        .ws_text = tr_ws_text,
        .ws_msg = tr_ws_msg,
        .ws_close = tr_ws_close,
        .backlog = tr_backlog,
        .open = tr_open,
        .respond = tr_respond,
        .hold = tr_hold,
        .close = tr_close,
        .own = tr_own,
    };
    int rc = eio_new(&ep->sessions, loop, NULL, &cfg->sessions, &tr, stats);
    if (rc) {
        ep->sessions = NULL;
        eio_endpoint_free(ep);
        return rc;
    }
    if (cfg->workers > 1) {
        rc = handoff_new(&ep->handoff, loop, cfg->socks, cfg->region, cfg->sessions.slot,
                         on_handoff, ep);
        if (rc) {
            LOG_ERROR("cannot receive polling requests from the other workers: %s", strerror(-rc));
            eio_endpoint_free(ep);
            return rc;
        }
    }
    *out = ep;
    return 0;
}

void eio_endpoint_serve(eio_endpoint_t *ep, router_t *r, const char *path, const eio_handlers_t *h)
{
    if (ep->napps == MAX_APPS)
        return;
    binding_t *b = &ep->apps[ep->napps++];
    *b = (binding_t){ep, h};
    router_add(r, path, on_request, b);
}

eio_t *eio_endpoint_sessions(eio_endpoint_t *ep)
{
    return ep->sessions;
}

void eio_endpoint_free(eio_endpoint_t *ep)
{
    if (!ep)
        return;
    handoff_free(ep->handoff);
    ep->peers = NULL;
    on_retry(ep->retry);
    uv_close((uv_handle_t *)ep->retry, on_retry_closed);
    splice_set_free(ep->splices);
    eio_free(ep->sessions);
    buf_free(&ep->hdrs);
    buf_free(&ep->q);
    buf_free(&ep->fwd);
    free(ep);
}
