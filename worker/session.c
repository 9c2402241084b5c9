/* session: see session.h. */
#include "worker/session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strmap.h"
#include "worker/adapter.h"
#include "worker/auth.h"
#include "worker/debug_page.h"
#include "worker/eio_payload.h"
#include "worker/handoff.h"
#include "worker/health.h"
#include "worker/http_gzip.h"
#include "worker/limits.h"
#include "worker/metrics.h"
#include "worker/sio_packet.h"
#include "worker/timerq.h"
#include "worker/ws_frame.h"

#define ROOM_ID_MAX_UNITS 512 /* the Node server's limit, in UTF-16 code units */
#define SID_LEN 20
#define NSP_MAX 32            /* namespaces served, "/" included (one bit each per session) */
#define AUTH_EMIT_DELAY_MS 20 /* conformance mode: the `auth` emit goes in a later write (§7.4) */
#define UPGRADE_TIMEOUT_MS 10000 /* Node's upgradeTimeout */
#define POLLQ_MAX (4u << 20)     /* packets waiting for a GET; past it more are dropped */

/* conn data is either the sessions (plain HTTP) or a session (WebSocket): the tag tells */
enum owner_kind { OWNER_SESSIONS = 1, OWNER_SESSION = 2 };

enum { TR_POLLING = 1, TR_WEBSOCKET = 2 };

typedef struct session {
    enum owner_kind kind;
    struct sessions *ss;
    conn_t *conn;  /* the WebSocket transport (WebSocket-only or upgraded); NULL while polling */
    conn_t *probe; /* a WebSocket upgrading this polling session */
    conn_t *get;   /* the held polling GET */
    struct session *prev, *next;
    rooms_sock_t rooms;
    timerq_node_t ping_node;    /* next ping due */
    timerq_node_t pong_node;    /* waiting for the pong */
    timerq_node_t connect_node; /* waiting for the namespace CONNECT */
    timerq_node_t auth_node;    /* conformance mode: `auth` emits due */
    timerq_node_t upgrade_node; /* the probing WebSocket must finish the upgrade */
    uint64_t mark;              /* last broadcast this socket was queued */
    buf_t pollq;                /* packets waiting for a GET, as a polling payload */
    buf_t bin_pkt;              /* BINARY_EVENT/BINARY_ACK text waiting for its attachments */
    buf_t bin_att;              /* attachments received so far, each as u32 length + bytes */
    unsigned bin_want;          /* attachments still expected */
    unsigned bin_have;
    uint32_t nsp_mask;     /* connected namespaces (bit i = ss->nsp[i]); bit 0 is "/" */
    uint32_t auth_pending; /* conformance mode: namespaces whose `auth` emit is due */
    char *auth[NSP_MAX];   /* CONNECT payload per connected namespace ("{}" when absent) */
    unsigned refs;         /* connections whose data is this session */
    unsigned busy;         /* inside a handler that still uses the session */
    bool ended;            /* the Engine.IO session is over: no longer in the sid map */
    bool probed;           /* the probe answered 3probe: polling is paused */
    bool raw;              /* /engine.io/ echo endpoint (conformance mode) */
    char sid[SID_LEN + 1];
    char sio_sid[SID_LEN + 1];    /* Socket.IO id on the main namespace: the adapter's socket id */
    auth_grant_t *grant;          /* rooms the client's token allows (auth on); NULL: none */
    buf_t qtoken;                 /* `token` query parameter of the handshake, if any */
    limits_socket_t lim;          /* event and join token buckets */
    struct sockaddr_storage peer; /* counted against MAX_CONNECTIONS_PER_IP while admitted */
    bool admitted;
} session_t;

typedef struct nsp_name {
    char name[64];
    size_t len;
} nsp_name_t;

struct sessions {
    enum owner_kind kind;
    uv_loop_t *loop;
    const cfg_t *cfg;
    shm_region_t *region;
    uint32_t slot;
    stats_worker_t *stats;
    conn_ctx_t *conns;
    rooms_t *rooms;
    strmap_t *sids;
    handoff_t *handoff; /* CLUSTER_WORKERS > 1: requests for another worker's sid go there */
    buf_t fwd;          /* a request rebuilt for its owner */
    timerq_t *pingq, *pongq, *connectq, *authq, *upgradeq;
    session_t *head;
    size_t nconns;    /* every accepted connection, websocket or not */
    size_t nsessions; /* Engine.IO sessions still in memory */
    bool freeing;     /* sessions_free ran; the last on_close releases the memory */
    uint64_t epoch;
    bool closing;
    bool conformance;    /* STREAMIO_CONFORMANCE=1: the official suites' test handlers */
    bool debug_page;     /* STREAMIO_DEBUG_PAGE=1: /debug serves a page to watch a room */
    unsigned transports; /* TR_* bits allowed */
    char *cors;          /* SOCKETIO_CORS_ORIGINS: "*" or a comma-separated list; NULL: none */
    nsp_name_t nsp[NSP_MAX];
    unsigned nnsp;
    void (*closed)(void *arg);
    void *closed_arg;
    buf_t out; /* scratch for per-socket packets */
    buf_t tmp;
    buf_t name;         /* decoded room name of the event being handled */
    buf_t bin;          /* decoded binary record of a polling POST */
    buf_t hdrs;         /* extra response headers (CORS, Content-Encoding) */
    buf_t gz;           /* a compressed response body */
    adapter_t *adapter; /* told about rooms created/deleted and client acks; NULL: none */
    auth_t *auth;       /* JWT verifier; auth_enabled() false when no secret/key is set */
    limits_t *limits;   /* connection counts and per-socket rate limits */
};

static void session_end(session_t *s, bool client_close);
static void fail(session_t *s);
static size_t host_broadcast(void *ctx, const adapter_target_t *t, refbuf_t *frame);
static void host_joined(sessions_t *ss, int rc, const char *room, size_t len);
static void host_left(sessions_t *ss, int rc, const char *room, size_t len);
static void host_leave_all(sessions_t *ss, session_t *s);

/* ---- output: WebSocket frames, or a polling payload for the next GET ---- */

/* Fills ss->hdrs with the CORS headers for this request (empty when none apply). */
static void cors_headers(sessions_t *ss, const http_req_t *req)
{
    buf_reset(&ss->hdrs);
    const char *origin = http_req_header(req, HTTP_REQ_ORIGIN);
    if (!ss->cors || !origin)
        return;
    bool ok = strcmp(ss->cors, "*") == 0;
    size_t olen = strlen(origin);
    for (const char *p = ss->cors; !ok && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        ok = n == olen && memcmp(p, origin, n) == 0;
        p = e ? e + 1 : p + n;
    }
    if (!ok || strpbrk(origin, "\r\n"))
        return;
    buf_printf(&ss->hdrs,
               "Access-Control-Allow-Origin: %s\r\nAccess-Control-Allow-Credentials: true\r\n"
               "Vary: Origin\r\n",
               origin);
}

/*
 * Answers an Engine.IO HTTP request with the CORS headers its Origin earns, gzip-compressed
 * when it is large enough and the request accepts it (the request is the one held by c).
 */
static void http_answer(sessions_t *ss, conn_t *c, int status, const char *ctype, const char *body,
                        size_t len)
{
    const http_req_t *req = conn_request(c);
    if (!req) {
        conn_close(c);
        return;
    }
    cors_headers(ss, req);
    if (len >= HTTP_GZIP_THRESHOLD &&
        http_gzip_accepted(http_req_header(req, HTTP_REQ_ACCEPT_ENCODING)) &&
        http_gzip_compress(&ss->gz, body, len) == 0 &&
        buf_puts(&ss->hdrs, "Content-Encoding: gzip\r\n") == 0) {
        body = ss->gz.data;
        len = ss->gz.len;
    }
    conn_http_respond(c, status, ctype, ss->hdrs.len ? ss->hdrs.data : NULL, body, len);
}

static void poll_respond(session_t *s, conn_t *c, const char *body, size_t len)
{
    http_answer(s->ss, c, 200, "text/plain; charset=UTF-8", body, len);
}

static void detach(session_t *s, conn_t *c)
{
    conn_set_data(c, s->ss);
    s->refs--;
}

static void attach(session_t *s, conn_t *c)
{
    conn_set_data(c, s);
    s->refs++;
}

/* Answers the held GET with the queued packets, or with `fallback` when none is queued. */
static void poll_flush(session_t *s, const char *fallback)
{
    conn_t *c = s->get;
    if (!c || (!s->pollq.len && !fallback))
        return;
    s->get = NULL;
    detach(s, c);
    if (s->pollq.len)
        poll_respond(s, c, s->pollq.data, s->pollq.len);
    else
        poll_respond(s, c, fallback, strlen(fallback));
    buf_reset(&s->pollq);
}

static void send_packet(session_t *s, const char *p, size_t len)
{
    if (s->conn) {
        conn_ws_send_text(s->conn, p, len);
        return;
    }
    /* a client that stopped polling stops answering pings too: the heartbeat ends it, and
     * meanwhile what it would receive is dropped (ending it here could be inside a room walk) */
    if (s->ended || s->pollq.len > POLLQ_MAX || eio_payload_add_text(&s->pollq, p, len) != 0)
        return;
    poll_flush(s, NULL);
}

static void send_binary(session_t *s, const void *p, size_t len)
{
    if (s->conn) {
        refbuf_t *f = ws_frame_new(WS_FRAME_BINARY, p, len);
        if (f) {
            conn_ws_send_frame(s->conn, f);
            refbuf_unref(f);
        }
        return;
    }
    if (s->ended || s->pollq.len > POLLQ_MAX || eio_payload_add_binary(&s->pollq, p, len) != 0)
        return;
    poll_flush(s, NULL);
}

static void send_text(session_t *s, const buf_t *b)
{
    send_packet(s, b->data, b->len);
}

static void emit_error(session_t *s, const char *message)
{
    sessions_t *ss = s->ss;
    buf_reset(&ss->tmp);
    buf_puts(&ss->tmp, "{\"message\":");
    json_write_string(&ss->tmp, message, strlen(message));
    buf_putc(&ss->tmp, '}');
    buf_reset(&ss->out);
    sio_packet_encode_event(&ss->out, "/", 1, "error", ss->tmp.data, ss->tmp.len);
    send_text(s, &ss->out);
}

/* ack({ok:true, roomId}) / ack({ok:false, error}); room_json NULL drops the key like undefined */
static void send_ack(session_t *s, uint64_t id, bool ok, const char *room_json, size_t room_len,
                     const char *error)
{
    sessions_t *ss = s->ss;
    buf_reset(&ss->tmp);
    buf_puts(&ss->tmp, ok ? "[{\"ok\":true" : "[{\"ok\":false");
    if (room_json) {
        buf_puts(&ss->tmp, ",\"roomId\":");
        json_minify(&ss->tmp, room_json, room_len);
    }
    if (error) {
        buf_puts(&ss->tmp, ",\"error\":");
        json_write_string(&ss->tmp, error, strlen(error));
    }
    buf_puts(&ss->tmp, "}]");
    buf_reset(&ss->out);
    sio_packet_encode(&ss->out, SIO_ACK, "/", 1, &id, ss->tmp.data, ss->tmp.len);
    send_text(s, &ss->out);
}

static size_t utf16_units(const char *p, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c & 0xC0) != 0x80)
            n += c >= 0xF0 ? 2 : 1; /* 4-byte sequences are surrogate pairs in JS */
    }
    return n;
}

/* ---- seed events ---- */

static void on_room_event(session_t *s, bool join, const json_span_t *arg, const sio_packet_t *pk)
{
    sessions_t *ss = s->ss;
    const char *err = NULL;
    limits_verdict_t verdict = LIMITS_PASS;
    buf_t *name = &ss->name;
    buf_reset(name);
    bool is_str =
        arg && arg->type == JSON_STRING && json_string_decode(arg->p, arg->len, name) == 0;
    const char *room = name->data ? name->data : "";
    size_t room_len = name->len;
    if (join) {
        if (!is_str || room_len == 0 || utf16_units(room, room_len) > ROOM_ID_MAX_UNITS) {
            err = "Invalid room id";
        } else if ((verdict = limits_join(ss->limits, &s->lim)) != LIMITS_PASS) {
            err = LIMITS_ERR_RATE;
        } else if (!auth_room_allowed(ss->auth, s->grant, room, room_len)) {
            err = AUTH_ERR_ROOM_DENIED;
        } else if (!rooms_is_member(&s->rooms, room, room_len) &&
                   s->rooms.count >= (size_t)ss->cfg->max_rooms_per_socket) {
            err = "Max rooms limit reached";
        } else {
            int rc = rooms_join(ss->rooms, &s->rooms, s, room, room_len);
            if (rc < 0)
                err = "Server out of memory";
            host_joined(ss, rc, room, room_len);
        }
    } else if (is_str) {
        host_left(ss, rooms_leave(ss->rooms, &s->rooms, room, room_len), room, room_len);
    }
    STATS_SET(ss->stats->rooms, rooms_count(ss->rooms));
    if (verdict == LIMITS_KICK) {
        fail(s);
        return;
    }
    if (err && verdict != LIMITS_DROP)
        emit_error(s, err);
    if (pk->has_id)
        send_ack(s, pk->id, err == NULL, err ? NULL : (arg ? arg->p : NULL), arg ? arg->len : 0,
                 err);
}

static int nsp_index(const sessions_t *ss, const char *nsp, size_t len)
{
    for (unsigned i = 0; i < ss->nnsp; i++) {
        if (ss->nsp[i].len == len && memcmp(ss->nsp[i].name, nsp, len) == 0)
            return (int)i;
    }
    return -1;
}

/*
 * Conformance handlers (§7.1): `message` → `message-back` with the same arguments,
 * `message-with-ack` → the ack with the same arguments. `args` is the JSON text after the event
 * name (",a,b]" or "]"); attachments (binary packets) are sent back unchanged after the packet.
 */
static void conformance_event(session_t *s, const sio_packet_t *pk, const json_span_t *name,
                              const char *args, size_t args_len, unsigned natt)
{
    sessions_t *ss = s->ss;
    bool back = name->len == 9 && memcmp(name->p, "\"message\"", 9) == 0;
    bool ack = name->len == 18 && memcmp(name->p, "\"message-with-ack\"", 18) == 0;
    if (!back && !(ack && pk->has_id))
        return;
    buf_reset(&ss->tmp);
    if (back) {
        buf_puts(&ss->tmp, "[\"message-back\"");
        buf_append(&ss->tmp, args, args_len);
    } else {
        buf_putc(&ss->tmp, '[');
        buf_append(&ss->tmp, args[0] == ',' ? args + 1 : args,
                   args[0] == ',' ? args_len - 1 : args_len);
    }
    buf_reset(&ss->out);
    const uint64_t *id = ack ? &pk->id : NULL;
    if (natt)
        sio_packet_encode_binary(&ss->out, back ? SIO_BINARY_EVENT : SIO_BINARY_ACK, natt, pk->nsp,
                                 pk->nsp_len, id, ss->tmp.data, ss->tmp.len);
    else
        sio_packet_encode(&ss->out, back ? SIO_EVENT : SIO_ACK, pk->nsp, pk->nsp_len, id,
                          ss->tmp.data, ss->tmp.len);
    send_text(s, &ss->out);
    size_t off = 0;
    for (unsigned i = 0; i < natt; i++) {
        uint32_t n;
        memcpy(&n, s->bin_att.data + off, sizeof(n));
        send_binary(s, s->bin_att.data + off + sizeof(n), n);
        off += sizeof(n) + n;
    }
}

static int on_event(session_t *s, const sio_packet_t *pk, unsigned natt)
{
    json_span_t items[3];
    size_t n = 0;
    int rc = json_array_items(pk->data, pk->data_len, items, 3, &n);
    if (rc == -E2BIG)
        n = 3; /* extra arguments are ignored, as by the Node handlers */
    else if (rc)
        return rc;
    if (n == 0 || items[0].type != JSON_STRING)
        return 0;
    if (s->ss->conformance) {
        const char *args = items[0].p + items[0].len;
        size_t args_len = (size_t)(pk->data + pk->data_len - args);
        conformance_event(s, pk, &items[0], args, args_len, natt);
    }
    if (pk->nsp_len != 1)
        return 0; /* rooms live on the main namespace */
    const json_span_t *arg = n > 1 ? &items[1] : NULL;
    if (items[0].len == 11 && memcmp(items[0].p, "\"join-room\"", 11) == 0)
        on_room_event(s, true, arg, pk);
    else if (items[0].len == 12 && memcmp(items[0].p, "\"leave-room\"", 12) == 0)
        on_room_event(s, false, arg, pk);
    return 0;
}

static void send_auth(session_t *s, unsigned i)
{
    sessions_t *ss = s->ss;
    buf_reset(&ss->out);
    sio_packet_encode_event(&ss->out, ss->nsp[i].name, ss->nsp[i].len, "auth", s->auth[i],
                            strlen(s->auth[i]));
    send_text(s, &ss->out);
}

/*
 * With authentication on, verifies the token of a CONNECT: the `auth` payload's `token`, else the
 * handshake's `token` query parameter. NULL when allowed (the grant is kept for join-room), else
 * the reason to send back.
 */
static const char *authorize(session_t *s, const sio_packet_t *pk)
{
    sessions_t *ss = s->ss;
    if (!auth_enabled(ss->auth))
        return NULL;
    buf_reset(&ss->tmp);
    int rc = auth_token_from_connect(pk->data, pk->data_len, &ss->tmp);
    const char *tok = ss->tmp.data;
    size_t len = ss->tmp.len;
    if (rc == -ENOENT) {
        tok = s->qtoken.data;
        len = s->qtoken.len;
        if (len == 0)
            return AUTH_ERR_MISSING;
    } else if (rc) {
        return AUTH_ERR_INVALID;
    }
    auth_grant_t *g = NULL;
    const char *why = NULL;
    if (auth_verify(ss->auth, tok, len, (int64_t)time(NULL), &g, &why))
        return why ? why : AUTH_ERR_INVALID;
    auth_grant_free(s->grant);
    s->grant = g;
    return NULL;
}

static int on_connect_packet(session_t *s, const sio_packet_t *pk)
{
    sessions_t *ss = s->ss;
    buf_reset(&ss->out);
    int i = nsp_index(ss, pk->nsp, pk->nsp_len);
    if (i < 0) {
        sio_packet_encode(&ss->out, SIO_CONNECT_ERROR, pk->nsp, pk->nsp_len, NULL,
                          "{\"message\":\"Invalid namespace\"}", 31);
        send_text(s, &ss->out);
        return 0;
    }
    uint32_t bit = 1u << i;
    if (s->nsp_mask & bit)
        return -EPROTO; /* a second CONNECT for the same namespace: Node closes */
    const char *why = authorize(s, pk);
    if (why) {
        /* refused like a Node middleware refusal: CONNECT_ERROR, the session stays open */
        buf_reset(&ss->tmp);
        buf_puts(&ss->tmp, "{\"message\":");
        json_write_string(&ss->tmp, why, strlen(why));
        buf_putc(&ss->tmp, '}');
        sio_packet_encode(&ss->out, SIO_CONNECT_ERROR, pk->nsp, pk->nsp_len, NULL, ss->tmp.data,
                          ss->tmp.len);
        send_text(s, &ss->out);
        return 0;
    }
    char sio_sid[SID_LEN + 1];
    if (ids_random(sio_sid, SID_LEN))
        return -EIO;
    s->auth[i] = strndup(pk->data ? pk->data : "{}", pk->data ? pk->data_len : 2);
    if (!s->auth[i])
        return -ENOMEM;
    char json[64];
    int n = snprintf(json, sizeof(json), "{\"sid\":\"%s\"}", sio_sid);
    sio_packet_encode(&ss->out, SIO_CONNECT, pk->nsp, pk->nsp_len, NULL, json, (size_t)n);
    send_text(s, &ss->out);
    s->nsp_mask |= bit;
    if (i == 0)
        memcpy(s->sio_sid, sio_sid, sizeof(sio_sid));
    timerq_remove(ss->connectq, &s->connect_node);
    if (ss->conformance) {
        s->auth_pending |= bit;
        if (!timerq_armed(&s->auth_node))
            timerq_add(ss->authq, &s->auth_node);
    }
    return 0;
}

static void nsp_disconnect(session_t *s, unsigned i)
{
    s->nsp_mask &= ~(1u << i);
    s->auth_pending &= ~(1u << i);
    free(s->auth[i]);
    s->auth[i] = NULL;
    if (i == 0) {
        host_leave_all(s->ss, s);
        STATS_SET(s->ss->stats->rooms, rooms_count(s->ss->rooms));
    }
}

/* A complete Socket.IO packet (attachments collected); negative: close (Node's behaviour). */
static int sio_dispatch(session_t *s, const sio_packet_t *pk, unsigned natt)
{
    if (pk->type == SIO_CONNECT)
        return on_connect_packet(s, pk);
    int i = nsp_index(s->ss, pk->nsp, pk->nsp_len);
    if (i < 0 || !(s->nsp_mask & (1u << i)))
        return -EPROTO; /* packet for a namespace this client is not connected to */
    switch (pk->type) {
    case SIO_DISCONNECT:
        nsp_disconnect(s, (unsigned)i);
        return 0;
    case SIO_EVENT:
    case SIO_BINARY_EVENT:
        return on_event(s, pk, natt);
    case SIO_ACK:
        /* only cluster broadcasts with acks (main namespace) ask clients for acks */
        if (i == 0)
            adapter_client_ack(s->ss->adapter, pk->id, pk->data, pk->data_len);
        return 0;
    case SIO_BINARY_ACK:
        return 0; /* the server asks no binary acks: unknown ids are ignored */
    default:
        return -EPROTO; /* CONNECT_ERROR from a client */
    }
}

/* Every placeholder {"_placeholder":true,"num":k} must have k < n (Node's reconstruction). */
static bool placeholders_ok(const char *p, size_t len, unsigned n)
{
    static const char key[] = "\"num\":";
    const char *end = p + len;
    const char *q = p;
    while ((q = memmem(q, (size_t)(end - q), key, sizeof(key) - 1)) != NULL) {
        q += sizeof(key) - 1;
        unsigned long k = 0;
        const char *d = q;
        while (d < end && *d >= '0' && *d <= '9' && k <= n)
            k = k * 10 + (unsigned long)(*d++ - '0');
        if (d == q || k >= n)
            return false;
    }
    return true;
}

static int on_sio(session_t *s, const char *p, size_t len)
{
    sio_packet_t pk;
    if (s->bin_want || sio_packet_decode(p, len, &pk))
        return -EPROTO;
    switch (limits_event(s->ss->limits, &s->lim)) {
    case LIMITS_PASS:
        break;
    case LIMITS_NOTIFY:
        emit_error(s, LIMITS_ERR_RATE);
        return 0; /* the packet is dropped */
    case LIMITS_DROP:
        return 0;
    case LIMITS_KICK:
        return -EACCES; /* persistent abuse: the caller closes the connection */
    }
    if (pk.type != SIO_BINARY_EVENT && pk.type != SIO_BINARY_ACK)
        return sio_dispatch(s, &pk, 0);
    if (!placeholders_ok(pk.data, pk.data_len, pk.attachments))
        return -EPROTO;
    buf_reset(&s->bin_pkt);
    buf_reset(&s->bin_att);
    if (buf_append(&s->bin_pkt, p, len))
        return -ENOMEM;
    s->bin_want = pk.attachments;
    s->bin_have = 0;
    return 0;
}

static int on_sio_binary(session_t *s, const uint8_t *p, size_t len)
{
    if (s->bin_want == 0 || len > UINT32_MAX)
        return -EPROTO;
    uint32_t n = (uint32_t)len;
    if (buf_append(&s->bin_att, &n, sizeof(n)) || buf_append(&s->bin_att, p, len))
        return -ENOMEM;
    s->bin_have++;
    if (--s->bin_want)
        return 0;
    sio_packet_t pk;
    if (sio_packet_decode(s->bin_pkt.data, s->bin_pkt.len, &pk))
        return -EPROTO;
    int rc = sio_dispatch(s, &pk, s->bin_have);
    buf_reset(&s->bin_pkt);
    buf_reset(&s->bin_att);
    s->bin_have = 0;
    return rc;
}

/* ---- Engine.IO packets, whatever the transport ---- */

/* One text packet from the client; negative: the session must close. */
static int eio_text(session_t *s, const char *msg, size_t len)
{
    sessions_t *ss = s->ss;
    if (len == 0)
        return -EPROTO;
    if (timerq_armed(&s->pong_node) && msg[0] != '3')
        timerq_add(ss->pongq, &s->pong_node); /* Node refreshes the deadline on any packet */
    switch (msg[0]) {
    case '3': /* pong: the next ping is pingInterval from now */
        timerq_remove(ss->pongq, &s->pong_node);
        timerq_add(ss->pingq, &s->ping_node);
        return 0;
    case '4':
        if (s->raw) {
            send_packet(s, msg, len);
            return 0;
        }
        return on_sio(s, msg + 1, len - 1);
    case '1':
        session_end(s, true);
        return 0;
    case '6':
        return 0;
    default: /* a client ping ('2') is the wrong direction in v4; anything else is garbage */
        return -EPROTO;
    }
}

static int eio_binary(session_t *s, const uint8_t *msg, size_t len)
{
    if (s->raw) {
        send_binary(s, msg, len);
        return 0;
    }
    return on_sio_binary(s, msg, len);
}

/* ---- session lifecycle ---- */

static void maybe_free(session_t *s)
{
    if (!s->ended || s->refs || s->busy)
        return;
    sessions_t *ss = s->ss;
    if (s->prev)
        s->prev->next = s->next;
    else
        ss->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    for (unsigned i = 0; i < NSP_MAX; i++)
        free(s->auth[i]);
    buf_free(&s->pollq);
    buf_free(&s->bin_pkt);
    buf_free(&s->bin_att);
    buf_free(&s->qtoken);
    auth_grant_free(s->grant);
    if (s->admitted)
        limits_conn_release(ss->limits, (const struct sockaddr *)&s->peer);
    ss->nsessions--;
    free(s);
}

/* Ends the Engine.IO session: the sid is forgotten, transports closed, memory freed once no
 * connection refers to it. client_close: the client sent `1` (a held GET gets a noop). */
static void session_end(session_t *s, bool client_close)
{
    if (s->ended)
        return;
    sessions_t *ss = s->ss;
    s->ended = true;
    strmap_del(ss->sids, s->sid, strlen(s->sid));
    host_leave_all(ss, s);
    timerq_remove(ss->pingq, &s->ping_node);
    timerq_remove(ss->pongq, &s->pong_node);
    timerq_remove(ss->connectq, &s->connect_node);
    timerq_remove(ss->authq, &s->auth_node);
    timerq_remove(ss->upgradeq, &s->upgrade_node);
    STATS_SUB(ss->stats->connections, 1);
    STATS_ADD(ss->stats->disconnects, 1);
    STATS_SET(ss->stats->rooms, rooms_count(ss->rooms));
    buf_reset(&s->pollq);
    if (s->get)
        poll_flush(s, client_close ? "6" : "1");
    if (s->probe)
        conn_ws_close(s->probe, 0);
    if (s->conn)
        conn_ws_close(s->conn, ss->closing ? 1001 : (client_close ? 1000 : 0));
    maybe_free(s);
}

static void fail(session_t *s)
{
    session_end(s, false);
}

/* ---- connection callbacks ---- */

static session_t *session_of_ud(void *ud)
{
    return *(enum owner_kind *)ud == OWNER_SESSION ? ud : NULL;
}

static void on_probe_text(session_t *s, conn_t *c, const char *msg, size_t len)
{
    if (len == 6 && memcmp(msg, "2probe", 6) == 0 && !s->probed) {
        conn_ws_send_text(c, "3probe", 6);
        s->probed = true;
        poll_flush(s, "6");
        return;
    }
    if (len == 1 && msg[0] == '5' && s->probed) {
        timerq_remove(s->ss->upgradeq, &s->upgrade_node);
        s->probe = NULL;
        s->conn = c;
        poll_flush(s, "6");
        /* what waited for a GET now goes over the WebSocket, in order */
        buf_t q = s->pollq;
        buf_init(&s->pollq);
        size_t pos = 0, rlen;
        const char *rec;
        while (q.len && eio_payload_next(q.data, q.len, &pos, &rec, &rlen)) {
            if (rlen && rec[0] == 'b') {
                if (eio_payload_b64_decode(rec + 1, rlen - 1, &s->ss->bin) == 0)
                    send_binary(s, s->ss->bin.data, s->ss->bin.len);
            } else {
                conn_ws_send_text(c, rec, rlen);
            }
        }
        buf_free(&q);
        return;
    }
    conn_ws_close(c, 0); /* anything else aborts the upgrade */
}

static void on_ws_text(conn_t *c, const char *msg, size_t len, void *ud)
{
    session_t *s = session_of_ud(ud);
    if (!s) {
        conn_close(c);
        return;
    }
    if (s->ended)
        return;
    if (c == s->probe) {
        on_probe_text(s, c, msg, len);
        return;
    }
    if (c != s->conn)
        return;
    s->busy++;
    if (eio_text(s, msg, len) < 0)
        fail(s);
    s->busy--;
    maybe_free(s);
}

static void on_ws_binary(conn_t *c, const uint8_t *msg, size_t len, void *ud)
{
    session_t *s = session_of_ud(ud);
    if (!s || (c != s->conn && c != s->probe)) {
        if (conn_ws_close(c, 0))
            conn_close(c);
        return;
    }
    if (s->ended)
        return;
    if (c == s->probe) {
        conn_ws_close(c, 0);
        return;
    }
    s->busy++;
    if (eio_binary(s, msg, len) < 0)
        fail(s);
    s->busy--;
    maybe_free(s);
}

static void respond_error(sessions_t *ss, conn_t *c, int code, const char *message)
{
    char body[96];
    int n = snprintf(body, sizeof(body), "{\"code\":%d,\"message\":\"%s\"}", code, message);
    int status = code == 4 ? 403 : 400;
    http_answer(ss, c, status, "application/json", body, (size_t)n);
}

/* A WebSocket upgrade refused before the 101 (§1.8). */
static void refuse_ws(conn_t *c, const char *message)
{
    conn_http_respond(c, 400, "text/html", NULL, message, strlen(message));
}

static bool query_is(const http_req_t *req, const char *key, const char *want, buf_t *tmp)
{
    buf_reset(tmp);
    return http_req_query(req, key, tmp) == 0 && tmp->data && strcmp(tmp->data, want) == 0;
}

static const char sid_digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The worker slot a sid names, or -1 when it names none. */
static int sid_slot(const char *sid, size_t len)
{
    const char *a = len == SID_LEN && sid[0] ? strchr(sid_digits, sid[0]) : NULL;
    const char *b = a && sid[1] ? strchr(sid_digits, sid[1]) : NULL;
    return b ? (int)((a - sid_digits) * 64 + (b - sid_digits)) : -1;
}

/* Session ids name their worker: 2 characters of slot, then 18 random ones (see handoff). */
static int new_sid(sessions_t *ss, char sid[SID_LEN + 1])
{
    const char *digits = sid_digits;
    if (ids_random(sid + 2, SID_LEN - 2))
        return -EIO;
    sid[0] = digits[(ss->slot >> 6) & 63];
    sid[1] = digits[ss->slot & 63];
    sid[SID_LEN] = '\0';
    return 0;
}

/* Counts a new session against the connection limits; 0, or the limits_conn_admit error. */
static int admit(sessions_t *ss, conn_t *c, struct sockaddr_storage *peer)
{
    memset(peer, 0, sizeof(*peer));
    conn_peer(c, peer); /* an unknown family only counts towards the total */
    return limits_conn_admit(ss->limits, (const struct sockaddr *)peer);
}

static session_t *open_session(sessions_t *ss, const http_req_t *req, bool raw,
                               const struct sockaddr_storage *peer)
{
    session_t *s = calloc(1, sizeof(*s));
    if (!s || new_sid(ss, s->sid) || strmap_put(ss->sids, s->sid, SID_LEN, s)) {
        free(s);
        limits_conn_release(ss->limits, (const struct sockaddr *)peer);
        return NULL;
    }
    s->peer = *peer;
    s->admitted = true;
    limits_socket_init(ss->limits, &s->lim);
    buf_init(&s->qtoken);
    if (auth_enabled(ss->auth) && http_req_query(req, "token", &s->qtoken) != 0)
        buf_reset(&s->qtoken);
    s->kind = OWNER_SESSION;
    s->ss = ss;
    s->raw = raw;
    buf_init(&s->pollq);
    buf_init(&s->bin_pkt);
    buf_init(&s->bin_att);
    s->next = ss->head;
    if (ss->head)
        ss->head->prev = s;
    ss->head = s;
    ss->nsessions++;
    STATS_ADD(ss->stats->connections, 1);
    STATS_ADD(ss->stats->handshakes, 1);
    timerq_add(ss->pingq, &s->ping_node);
    if (!raw)
        timerq_add(ss->connectq, &s->connect_node);
    return s;
}

static void open_packet(sessions_t *ss, const session_t *s, bool upgrades)
{
    buf_reset(&ss->out);
    buf_printf(&ss->out,
               "0{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%d,\"pingTimeout\":%d,"
               "\"maxPayload\":%d}",
               s->sid, upgrades ? "\"websocket\"" : "", ss->cfg->ping_interval_ms,
               ss->cfg->ping_timeout_ms, ss->cfg->max_payload);
}

/* A connection over the limits: 503 with the reason (see limits_strerror). */
static void refuse_limits(conn_t *c, int rc)
{
    char body[128];
    int n = snprintf(body, sizeof(body), "{\"message\":\"%s\"}", limits_strerror(rc));
    conn_http_respond(c, 503, "application/json", NULL, body, (size_t)n);
}

static void ws_handshake(sessions_t *ss, conn_t *c, const http_req_t *req, bool raw)
{
    struct sockaddr_storage peer;
    int rc = admit(ss, c, &peer);
    if (rc) {
        refuse_limits(c, rc);
        return;
    }
    if (conn_ws_accept(c)) {
        limits_conn_release(ss->limits, (const struct sockaddr *)&peer);
        return;
    }
    session_t *s = open_session(ss, req, raw, &peer);
    if (!s) {
        conn_close(c);
        return;
    }
    s->conn = c;
    attach(s, c);
    open_packet(ss, s, false);
    send_text(s, &ss->out);
}

static void ws_upgrade(conn_t *c, session_t *s)
{
    if (conn_ws_accept(c))
        return;
    if (s->conn || s->probe) {
        conn_ws_close(c, 0); /* accepted then closed: the suites expect no HTTP 400 (§7.4) */
        return;
    }
    s->probe = c;
    attach(s, c);
    timerq_add(s->ss->upgradeq, &s->upgrade_node);
}

/* A polling POST: every record of the body in order. */
static void poll_post(sessions_t *ss, conn_t *c, session_t *s, const http_req_t *req)
{
    size_t blen;
    const char *body = http_req_body(req, &blen);
    size_t pos = 0, rlen;
    const char *rec;
    int rc = blen ? 0 : -EPROTO;
    s->busy++;
    while (!rc && !s->ended && eio_payload_next(body, blen, &pos, &rec, &rlen)) {
        if (rlen && rec[0] == 'b') {
            rc = eio_payload_b64_decode(rec + 1, rlen - 1, &ss->bin);
            if (!rc)
                rc = eio_binary(s, (const uint8_t *)ss->bin.data, ss->bin.len);
        } else {
            rc = eio_text(s, rec, rlen);
        }
    }
    if (rc) {
        fail(s);
        http_answer(ss, c, 400, "text/html", NULL, 0);
    } else {
        http_answer(ss, c, 200, "text/html", "ok", 2);
    }
    s->busy--;
    maybe_free(s);
}

static void poll_get(sessions_t *ss, conn_t *c, session_t *s)
{
    (void)ss;
    if (s->get) {
        /* overlapping GETs: the new one fails, the held one gets `1`, the session ends */
        conn_http_respond(c, 400, "text/html", NULL, NULL, 0);
        fail(s);
        return;
    }
    if (s->pollq.len || s->probed) {
        s->get = c;
        attach(s, c);
        poll_flush(s, "6");
        return;
    }
    if (conn_http_defer(c)) {
        conn_close(c);
        return;
    }
    s->get = c;
    attach(s, c);
}

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
 * Hands the connection to the worker that owns the sid: the request is rebuilt from what was
 * parsed (method, target, kept headers, body) and sent with the socket. 0: the connection is
 * gone from this worker; otherwise it is still ours to answer.
 */
static int forward(sessions_t *ss, conn_t *c, const http_req_t *req, uint32_t slot)
{
    buf_t *b = &ss->fwd;
    size_t blen;
    const char *body = http_req_body(req, &blen);
    buf_reset(b);
    int rc = buf_printf(b, "%s %s?%s HTTP/1.1\r\n", http_req_method(req), http_req_path(req),
                        http_req_query_string(req));
    for (size_t i = 0; !rc && i < sizeof(fwd_headers) / sizeof(fwd_headers[0]); i++) {
        const char *v = http_req_header(req, fwd_headers[i].h);
        if (v)
            rc = buf_printf(b, "%s: %s\r\n", fwd_headers[i].name, v);
    }
    if (!rc && !http_req_keep_alive(req) && !http_req_header(req, HTTP_REQ_CONNECTION))
        rc = buf_puts(b, "Connection: close\r\n");
    if (!rc && (blen || strcmp(http_req_method(req), "POST") == 0))
        rc = buf_printf(b, "Content-Length: %zu\r\n", blen);
    if (!rc)
        rc = buf_puts(b, "\r\n");
    if (!rc)
        rc = buf_append(b, body, blen);
    int fd = rc ? -1 : conn_fileno(c);
    if (fd < 0)
        return -EBADF;
    rc = handoff_send(ss->handoff, slot, fd, b->data, b->len);
    if (rc) {
        LOG_WARN("handing a request to worker %u failed: %s", (unsigned)slot, strerror(-rc));
        return rc;
    }
    conn_close(c); /* our copy of the descriptor only: the owner now holds the socket */
    return 0;
}

static void on_handoff(int fd, const char *p, size_t len, void *ud)
{
    sessions_t *ss = ud;
    if (ss->closing) {
        close(fd);
        return;
    }
    ss->nconns++;
    int rc = conn_adopt(ss->conns, fd, p, len, NULL);
    if (rc) {
        ss->nconns--;
        if (rc == -ENOMEM)
            close(fd);
    }
}

/* The client's pong (or the first CONNECT) is overdue, measured on the current time. */
static bool heartbeat_expired(session_t *s)
{
    sessions_t *ss = s->ss;
    uv_update_time(ss->loop);
    uint64_t now = uv_now(ss->loop);
    uint64_t timeout = (uint64_t)ss->cfg->ping_timeout_ms;
    return (timerq_armed(&s->pong_node) && now >= s->pong_node.due) ||
           (timerq_armed(&s->ping_node) && now >= s->ping_node.due + timeout) ||
           (timerq_armed(&s->connect_node) && now >= s->connect_node.due);
}

static void on_engine_request(sessions_t *ss, conn_t *c, const http_req_t *req, bool raw)
{
    buf_t *q = &ss->tmp;
    const char *method = http_req_method(req);
    bool ws = http_req_is_upgrade(req);
    cors_headers(ss, req);
    if (strcmp(method, "OPTIONS") == 0 && ss->hdrs.len) {
        buf_puts(&ss->hdrs, "Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\n"
                            "Access-Control-Allow-Headers: content-type\r\n");
        conn_http_respond(c, 204, NULL, ss->hdrs.data, NULL, 0);
        return;
    }
    if (!query_is(req, "EIO", "4", q)) {
        if (ws)
            refuse_ws(c, "Unsupported protocol version");
        else
            respond_error(ss, c, 5, "Unsupported protocol version");
        return;
    }
    unsigned tr = 0;
    if (query_is(req, "transport", "polling", q))
        tr = TR_POLLING;
    else if (query_is(req, "transport", "websocket", q))
        tr = TR_WEBSOCKET;
    if (!(tr & ss->transports)) {
        if (ws)
            refuse_ws(c, "Transport unknown");
        else
            respond_error(ss, c, 0, "Transport unknown");
        return;
    }
    buf_reset(q);
    bool has_sid = http_req_query(req, "sid", q) == 0;
    int owner = has_sid ? sid_slot(q->data, q->len) : -1;
    if (owner >= 0 && (uint32_t)owner != ss->slot && owner < ss->cfg->cluster_workers &&
        ss->handoff && forward(ss, c, req, (uint32_t)owner) == 0)
        return;
    session_t *s = has_sid && q->len ? strmap_get(ss->sids, q->data, q->len) : NULL;
    if (has_sid && !s) {
        if (ws)
            refuse_ws(c, "Session ID unknown");
        else
            respond_error(ss, c, 1, "Session ID unknown");
        return;
    }
    if (s && heartbeat_expired(s)) {
        fail(s); /* its timer is due but has not fired yet in this loop turn */
        s = NULL;
    }
    if (has_sid && !s) {
        if (ws)
            refuse_ws(c, "Session ID unknown");
        else
            respond_error(ss, c, 1, "Session ID unknown");
        return;
    }
    if (s && s->raw != raw) {
        respond_error(ss, c, 1, "Session ID unknown");
        return;
    }
    if (tr == TR_WEBSOCKET) {
        if (!http_req_is_websocket(req)) {
            respond_error(ss, c, 3, "Bad request");
            return;
        }
        if (s) {
            ws_upgrade(c, s);
            return;
        }
        if (ss->closing) {
            refuse_ws(c, "Shutting down");
            return;
        }
        ws_handshake(ss, c, req, raw);
        return;
    }
    if (s) {
        if (s->conn) {
            respond_error(ss, c, 3, "Bad request"); /* upgraded: polling is over */
            return;
        }
        if (strcmp(method, "GET") == 0)
            poll_get(ss, c, s);
        else if (strcmp(method, "POST") == 0)
            poll_post(ss, c, s, req);
        else
            conn_http_respond(c, 500, NULL, NULL, NULL, 0);
        return;
    }
    if (strcmp(method, "GET") != 0) {
        respond_error(ss, c, 2, "Bad handshake method");
        return;
    }
    if (ss->closing) {
        conn_http_respond(c, 503, "text/plain", NULL, "Shutting down", 13);
        return;
    }
    struct sockaddr_storage peer;
    int rc = admit(ss, c, &peer);
    if (rc) {
        refuse_limits(c, rc);
        return;
    }
    s = open_session(ss, req, raw, &peer);
    if (!s) {
        conn_http_respond(c, 500, "text/plain", NULL, "Internal error", 14);
        return;
    }
    open_packet(ss, s, (ss->transports & TR_WEBSOCKET) != 0);
    poll_respond(s, c, ss->out.data, ss->out.len);
}

static bool path_is(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) == 0 ||
           (strlen(path) == n - 1 && !strncmp(path, prefix, n - 1));
}

static void on_request(conn_t *c, const http_req_t *req, void *ud)
{
    sessions_t *ss = *(enum owner_kind *)ud == OWNER_SESSIONS ? ud : ((session_t *)ud)->ss;
    const char *path = http_req_path(req);
    if (path_is(path, "/socket.io/")) {
        on_engine_request(ss, c, req, false);
        return;
    }
    if (ss->conformance && path_is(path, "/engine.io/")) {
        on_engine_request(ss, c, req, true);
        return;
    }
    if (ss->debug_page && strcmp(path, "/debug") == 0) {
        size_t n;
        const char *html = debug_page_html(&n);
        conn_http_respond(c, 200, "text/html; charset=utf-8", NULL, html, n);
        return;
    }
    if (strcmp(path, "/health") == 0) {
        buf_reset(&ss->out);
        if (health_render(&ss->out, ss->region, ss->slot) == 0) {
            conn_http_respond(c, 200, "application/json", NULL, ss->out.data, ss->out.len);
            return;
        }
        conn_http_respond(c, 500, "text/plain", NULL, "Internal error", 14);
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        buf_reset(&ss->out);
        if (metrics_render(&ss->out, ss->region) == 0)
            conn_http_respond(c, 200, METRICS_CONTENT_TYPE, NULL, ss->out.data, ss->out.len);
        else
            conn_http_respond(c, 500, "text/plain", NULL, "Internal error", 14);
        return;
    }
    conn_http_respond(c, 404, "text/plain", NULL, "Not found", 9);
}

static void release(sessions_t *ss)
{
    auth_free(ss->auth);
    limits_free(ss->limits);
    rooms_free(ss->rooms);
    strmap_free(ss->sids);
    free(ss->cors);
    buf_free(&ss->out);
    buf_free(&ss->tmp);
    buf_free(&ss->name);
    buf_free(&ss->bin);
    buf_free(&ss->hdrs);
    buf_free(&ss->gz);
    buf_free(&ss->fwd);
    free(ss);
}

static void maybe_closed(sessions_t *ss)
{
    if (ss->closing && ss->nsessions == 0 && ss->closed) {
        void (*fn)(void *) = ss->closed;
        ss->closed = NULL;
        fn(ss->closed_arg);
    }
}

static void on_close(conn_t *c, void *ud)
{
    session_t *s = session_of_ud(ud);
    sessions_t *ss = s ? s->ss : ud;
    ss->nconns--;
    if (s) {
        s->refs--;
        s->busy++;
        if (c == s->get) {
            s->get = NULL;
        } else if (c == s->probe) {
            s->probe = NULL;
            s->probed = false;
            timerq_remove(ss->upgradeq, &s->upgrade_node);
        } else if (c == s->conn) {
            s->conn = NULL;
            session_end(s, false);
        }
        s->busy--;
        maybe_free(s);
    }
    if (ss->freeing) {
        if (ss->nconns == 0)
            release(ss);
        return;
    }
    maybe_closed(ss);
}

/* ---- heartbeat ---- */

static session_t *session_of(timerq_node_t *n, size_t offset)
{
    return (session_t *)((char *)n - offset);
}

static void on_ping_due(timerq_node_t *n, void *arg)
{
    sessions_t *ss = arg;
    session_t *s = session_of(n, offsetof(session_t, ping_node));
    timerq_add(ss->pongq, &s->pong_node);
    send_packet(s, "2", 1);
}

static void on_pong_late(timerq_node_t *n, void *arg)
{
    (void)arg;
    fail(session_of(n, offsetof(session_t, pong_node)));
}

static void on_connect_late(timerq_node_t *n, void *arg)
{
    (void)arg;
    fail(session_of(n, offsetof(session_t, connect_node)));
}

static void on_upgrade_late(timerq_node_t *n, void *arg)
{
    (void)arg;
    session_t *s = session_of(n, offsetof(session_t, upgrade_node));
    if (s->probe)
        conn_ws_close(s->probe, 0); /* polling resumes once it is gone */
}

static void on_auth_due(timerq_node_t *n, void *arg)
{
    (void)arg;
    session_t *s = session_of(n, offsetof(session_t, auth_node));
    for (unsigned i = 0; i < NSP_MAX; i++) {
        if (s->auth_pending & (1u << i))
            send_auth(s, i);
    }
    s->auth_pending = 0;
}

/* ---- options from the environment ---- */

static int parse_options(sessions_t *ss)
{
    const char *v = getenv("STREAMIO_CONFORMANCE");
    ss->conformance = v && strcmp(v, "1") == 0;
    v = getenv("STREAMIO_DEBUG_PAGE");
    ss->debug_page = v && strcmp(v, "1") == 0;
    ss->nsp[0] = (nsp_name_t){"/", 1};
    ss->nnsp = 1;
    v = getenv("SOCKETIO_NAMESPACES");
    if (ss->conformance && !v)
        v = "/,/custom";
    for (const char *p = v; p && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || p[0] != '/' || n >= sizeof(ss->nsp[0].name)) {
            LOG_ERROR("SOCKETIO_NAMESPACES=%s: each namespace starts with '/', at most 63 bytes",
                      v);
            return -EINVAL;
        }
        if (nsp_index(ss, p, n) < 0) {
            if (ss->nnsp == NSP_MAX) {
                LOG_ERROR("SOCKETIO_NAMESPACES=%s: at most %d namespaces", v, NSP_MAX);
                return -EINVAL;
            }
            memcpy(ss->nsp[ss->nnsp].name, p, n);
            ss->nsp[ss->nnsp].name[n] = '\0';
            ss->nsp[ss->nnsp++].len = n;
        }
        p = e ? e + 1 : p + n;
    }
    ss->transports = TR_POLLING | TR_WEBSOCKET;
    v = getenv("SOCKETIO_TRANSPORTS");
    if (v && *v) {
        ss->transports = 0;
        for (const char *p = v; *p;) {
            const char *e = strchr(p, ',');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            if (n == 7 && !memcmp(p, "polling", 7))
                ss->transports |= TR_POLLING;
            else if (n == 9 && !memcmp(p, "websocket", 9))
                ss->transports |= TR_WEBSOCKET;
            else {
                LOG_ERROR("SOCKETIO_TRANSPORTS=%s: allowed: polling,websocket", v);
                return -EINVAL;
            }
            p = e ? e + 1 : p + n;
        }
    }
    v = getenv("SOCKETIO_CORS_ORIGINS");
    if (v && *v && !(ss->cors = strdup(v)))
        return -ENOMEM;
    return 0;
}

/* ---- public ---- */

int sessions_new(sessions_t **out, uv_loop_t *loop, const cfg_t *cfg, shm_region_t *region,
                 uint32_t slot)
{
    sessions_t *ss = calloc(1, sizeof(*ss));
    if (!ss)
        return -ENOMEM;
    ss->kind = OWNER_SESSIONS;
    ss->loop = loop;
    ss->cfg = cfg;
    ss->region = region;
    ss->slot = slot;
    ss->stats = shm_region_slot_stats(region, slot);
    buf_init(&ss->out);
    buf_init(&ss->tmp);
    buf_init(&ss->name);
    buf_init(&ss->bin);
    buf_init(&ss->hdrs);
    buf_init(&ss->gz);
    buf_init(&ss->fwd);
    int rc = parse_options(ss);
    buf_t err;
    buf_init(&err);
    if (rc == 0 && (rc = auth_new(&ss->auth, cfg, &err)) != 0)
        LOG_ERROR("%s", err.data ? err.data : "cannot set up authentication");
    buf_free(&err);
    if (rc == 0) {
        limits_config_t lc;
        limits_config_from_cfg(&lc, cfg, cfg->cluster_workers);
        rc = limits_new(&ss->limits, &lc);
    }
    if (rc) {
        release(ss);
        return rc;
    }
    conn_limits_t lim = {
        .max_header_bytes = 8192,
        .max_ws_message = (size_t)cfg->max_payload,
        .max_outq_bytes = 4u << 20,
        .close_timeout_ms = 1000,
        .max_body = (size_t)cfg->max_payload,
    };
    conn_handlers_t h = {on_request, on_ws_text, on_ws_binary, on_close, ss};
    ss->rooms = rooms_new();
    ss->sids = strmap_new();
    if (!ss->rooms || !ss->sids || conn_ctx_new(&ss->conns, loop, &lim, &h) ||
        timerq_new(&ss->pingq, loop, (uint64_t)cfg->ping_interval_ms, on_ping_due, ss) ||
        timerq_new(&ss->pongq, loop, (uint64_t)cfg->ping_timeout_ms, on_pong_late, ss) ||
        timerq_new(&ss->connectq, loop, (uint64_t)cfg->connect_timeout_ms, on_connect_late, ss) ||
        timerq_new(&ss->authq, loop, AUTH_EMIT_DELAY_MS, on_auth_due, ss) ||
        timerq_new(&ss->upgradeq, loop, UPGRADE_TIMEOUT_MS, on_upgrade_late, ss)) {
        sessions_free(ss);
        return -ENOMEM;
    }
    if (cfg->cluster_workers > 1) {
        rc = handoff_new(&ss->handoff, loop, (unsigned long)getppid(), slot, on_handoff, ss);
        if (rc)
            LOG_WARN("polling handoff between workers unavailable: %s", strerror(-rc));
    }
    *out = ss;
    return 0;
}

int sessions_accept(sessions_t *ss, uv_stream_t *server)
{
    conn_t *c;
    int rc = conn_accept(ss->conns, server, &c);
    if (rc == 0)
        ss->nconns++;
    return rc;
}

/* The payload of a pre-framed server frame (unmasked, see ws_frame_header). */
static const char *frame_payload(refbuf_t *frame, size_t *len)
{
    const uint8_t *d = (const uint8_t *)refbuf_data(frame);
    size_t hl = (d[1] & 0x7f) == 126 ? 4 : (d[1] & 0x7f) == 127 ? 10 : 2;
    *len = refbuf_len(frame) - hl;
    return (const char *)d + hl;
}

/* Queues a shared text frame on whichever transport the session has. True when queued. */
static bool send_frame(session_t *s, refbuf_t *frame)
{
    if (s->conn)
        return conn_ws_send_frame(s->conn, frame) == 0;
    size_t len;
    const char *p = frame_payload(frame, &len);
    send_packet(s, p, len);
    return true;
}

/* On the main namespace and not over: a socket broadcasts reach. */
static bool main_connected(const session_t *s)
{
    return (s->nsp_mask & 1u) && !s->ended;
}

static void exclude(void *owner, void *arg)
{
    session_t *s = owner;
    s->mark = ((sessions_t *)arg)->epoch;
}

size_t sessions_broadcast(sessions_t *ss, const adapter_str_t *rooms, size_t nrooms,
                          const adapter_str_t *except, size_t nexcept, refbuf_t *frame)
{
    if (refbuf_len(frame) < 2)
        return 0;
    adapter_target_t t = {rooms, nrooms, except, nexcept, false};
    return host_broadcast(ss, &t, frame);
}

bool sessions_has_room(const sessions_t *ss, const char *room, size_t len)
{
    return rooms_find(ss->rooms, room, len) != NULL;
}

void sessions_close_all(sessions_t *ss, void (*done)(void *arg), void *arg)
{
    ss->closing = true;
    ss->closed = done;
    ss->closed_arg = arg;
    for (session_t *s = ss->head, *next; s; s = next) {
        next = s->next;
        session_end(s, false);
    }
    maybe_closed(ss);
}

void sessions_conn_stats(const sessions_t *ss, conn_stats_t *out)
{
    conn_ctx_stats(ss->conns, out);
}

void sessions_free(sessions_t *ss)
{
    if (!ss)
        return;
    if (ss->pingq)
        timerq_close(ss->pingq);
    if (ss->pongq)
        timerq_close(ss->pongq);
    if (ss->connectq)
        timerq_close(ss->connectq);
    if (ss->authq)
        timerq_close(ss->authq);
    if (ss->upgradeq)
        timerq_close(ss->upgradeq);
    handoff_free(ss->handoff);
    ss->handoff = NULL;
    /* connections still open close asynchronously and their on_close needs ss */
    ss->freeing = true;
    for (session_t *s = ss->head, *next; s; s = next) {
        next = s->next;
        session_end(s, false);
    }
    conn_ctx_free(ss->conns);
    if (ss->nconns == 0)
        release(ss);
}

/* ---- cluster adapter host ---- */

/* Hook: a join made a new local room. */
static void host_joined(sessions_t *ss, int rc, const char *room, size_t len)
{
    room_t *r = rc == 0 ? rooms_find(ss->rooms, room, len) : NULL;
    if (r && rooms_members(r) == 1)
        adapter_room_created(ss->adapter, room, len);
}

/* Hook: a leave emptied a local room. */
static void host_left(sessions_t *ss, int rc, const char *room, size_t len)
{
    if (rc == 0 && !rooms_find(ss->rooms, room, len))
        adapter_room_deleted(ss->adapter, room, len);
}

static void copy_room_name(const char *name, size_t len, void *arg)
{
    buf_t *names = arg;
    uint32_t n = (uint32_t)len;
    buf_append(names, (const char *)&n, sizeof(n));
    buf_append(names, name, len);
}

/* rooms_leave_all, telling the adapter about the rooms that disappear. */
static void host_leave_all(sessions_t *ss, session_t *s)
{
    if (!ss->adapter) {
        rooms_leave_all(ss->rooms, &s->rooms);
        return;
    }
    buf_t names;
    buf_init(&names);
    rooms_sock_foreach(&s->rooms, copy_room_name, &names);
    for (size_t off = 0; off + sizeof(uint32_t) <= names.len;) {
        uint32_t n;
        memcpy(&n, names.data + off, sizeof(n));
        off += sizeof(n);
        if (n > names.len - off)
            break; /* a record cut short by a failed append */
        host_left(ss, rooms_leave(ss->rooms, &s->rooms, names.data + off, n), names.data + off, n);
        off += n;
    }
    rooms_leave_all(ss->rooms, &s->rooms); /* whatever could not be copied */
    buf_free(&names);
}

/* The connected socket whose Socket.IO id is `id` (ids are rooms too, as in Node). */
static session_t *host_by_id(sessions_t *ss, const char *id, size_t len)
{
    if (len != SID_LEN)
        return NULL;
    for (session_t *s = ss->head; s; s = s->next)
        if (main_connected(s) && memcmp(s->sio_sid, id, SID_LEN) == 0)
            return s;
    return NULL;
}

typedef struct host_visit {
    sessions_t *ss;
    const adapter_target_t *t;
    void (*fn)(session_t *s, void *arg);
    void *arg;
} host_visit_t;

static void host_visit_one(void *owner, void *arg)
{
    session_t *s = owner;
    host_visit_t *v = arg;
    if (s->mark == v->ss->epoch || !main_connected(s))
        return;
    s->mark = v->ss->epoch;
    /* volatile: a transport with a backlog cannot take the packet now (bytes queued during this
     * loop turn are not a backlog: they leave with the next writev) */
    if (v->t->skip_busy && (s->conn ? conn_outq_bytes(s->conn) : s->pollq.len) > 16384)
        return;
    v->fn(s, v->arg);
}

/* Calls fn once per connected socket matching t (rooms, socket ids, except). */
static void host_match(sessions_t *ss, const adapter_target_t *t,
                       void (*fn)(session_t *s, void *arg), void *arg)
{
    host_visit_t v = {ss, t, fn, arg};
    ss->epoch++;
    for (size_t i = 0; i < t->nexcept; i++) {
        room_t *room = rooms_find(ss->rooms, t->except[i].p, t->except[i].len);
        session_t *one = room ? NULL : host_by_id(ss, t->except[i].p, t->except[i].len);
        if (room)
            rooms_foreach(room, exclude, ss);
        else if (one)
            one->mark = ss->epoch;
    }
    if (t->nrooms == 0) {
        for (session_t *s = ss->head; s; s = s->next)
            host_visit_one(s, &v);
    }
    for (size_t i = 0; i < t->nrooms; i++) {
        room_t *room = rooms_find(ss->rooms, t->rooms[i].p, t->rooms[i].len);
        session_t *one = room ? NULL : host_by_id(ss, t->rooms[i].p, t->rooms[i].len);
        if (room)
            rooms_foreach(room, host_visit_one, &v);
        else if (one)
            host_visit_one(one, &v);
    }
}

typedef struct host_send {
    refbuf_t *frame;
    size_t queued;
} host_send_t;

static void host_send_one(session_t *s, void *arg)
{
    host_send_t *b = arg;
    if (send_frame(s, b->frame))
        b->queued++;
}

static size_t host_broadcast(void *ctx, const adapter_target_t *t, refbuf_t *frame)
{
    sessions_t *ss = ctx;
    host_send_t b = {frame, 0};
    host_match(ss, t, host_send_one, &b);
    STATS_ADD(ss->stats->deliveries, b.queued);
    return b.queued;
}

typedef struct host_list {
    session_t **v;
    size_t n, cap;
    bool oom;
} host_list_t;

static void host_list_add(session_t *s, void *arg)
{
    host_list_t *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        session_t **v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            l->oom = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
}

static void host_each(void *ctx, const adapter_target_t *t, void (*fn)(void *sock, void *arg),
                      void *arg)
{
    host_list_t l = {0};
    host_match(ctx, t, host_list_add, &l);
    if (l.oom)
        LOG_WARN("adapter host: out of memory listing sockets; the request is partly applied");
    for (size_t i = 0; i < l.n; i++)
        fn(l.v[i], arg);
    free(l.v);
}

static const char *host_id(void *ctx, void *sock)
{
    (void)ctx;
    return ((session_t *)sock)->sio_sid;
}

static void host_describe_room(const char *name, size_t len, void *arg)
{
    buf_t *out = arg;
    buf_putc(out, ',');
    json_write_string(out, name, len);
}

static int host_describe(void *ctx, void *sock, buf_t *out)
{
    (void)ctx;
    session_t *s = sock;
    /* the handshake details are not kept by this server: the shape Node peers expect, empty */
    int rc = buf_printf(out,
                        "{\"id\":\"%s\",\"handshake\":{\"headers\":{},\"time\":\"\","
                        "\"address\":\"\",\"xdomain\":false,\"secure\":false,\"issued\":0,"
                        "\"url\":\"/socket.io/\",\"query\":{},\"auth\":{}},\"rooms\":[\"%s\"",
                        s->sio_sid, s->sio_sid);
    if (!rc)
        rooms_sock_foreach(&s->rooms, host_describe_room, out);
    return rc ? rc : buf_puts(out, "],\"data\":{}}");
}

static int host_join(void *ctx, void *sock, const char *room, size_t len)
{
    sessions_t *ss = ctx;
    session_t *s = sock;
    int rc = rooms_join(ss->rooms, &s->rooms, s, room, len);
    host_joined(ss, rc, room, len);
    STATS_SET(ss->stats->rooms, rooms_count(ss->rooms));
    return rc < 0 ? rc : 0;
}

static void host_leave(void *ctx, void *sock, const char *room, size_t len)
{
    sessions_t *ss = ctx;
    session_t *s = sock;
    host_left(ss, rooms_leave(ss->rooms, &s->rooms, room, len), room, len);
    STATS_SET(ss->stats->rooms, rooms_count(ss->rooms));
}

static void host_disconnect(void *ctx, void *sock, bool close)
{
    (void)ctx;
    session_t *s = sock;
    if (!main_connected(s))
        return;
    send_packet(s, "41", 2);
    nsp_disconnect(s, 0);
    if (close)
        session_end(s, false);
}

typedef struct host_rooms_walk {
    strmap_t *seen;
    void (*fn)(const char *room, size_t len, void *arg);
    void *arg;
} host_rooms_walk_t;

static void host_room_once(const char *name, size_t len, void *arg)
{
    host_rooms_walk_t *w = arg;
    if (strmap_get(w->seen, name, len) || strmap_put(w->seen, name, len, w))
        return;
    w->fn(name, len, w->arg);
}

static void host_rooms(void *ctx, void (*fn)(const char *room, size_t len, void *arg), void *arg)
{
    sessions_t *ss = ctx;
    host_rooms_walk_t w = {strmap_new(), fn, arg};
    if (!w.seen)
        return;
    for (session_t *s = ss->head; s; s = s->next) {
        if (!main_connected(s))
            continue;
        fn(s->sio_sid, SID_LEN, arg);
        rooms_sock_foreach(&s->rooms, host_room_once, &w);
    }
    strmap_free(w.seen);
}

static bool host_has_room(void *ctx, const char *room, size_t len)
{
    sessions_t *ss = ctx;
    return rooms_find(ss->rooms, room, len) || host_by_id(ss, room, len);
}

void sessions_adapter_host(sessions_t *ss, adapter_host_t *out)
{
    *out = (adapter_host_t){
        .ctx = ss,
        .broadcast = host_broadcast,
        .each = host_each,
        .id = host_id,
        .describe = host_describe,
        .join = host_join,
        .leave = host_leave,
        .disconnect = host_disconnect,
        .rooms = host_rooms,
        .has_room = host_has_room,
    };
}

void sessions_set_adapter(sessions_t *ss, adapter_t *a)
{
    ss->adapter = a;
}
