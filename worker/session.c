/* session: see session.h. */
#include "worker/session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strmap.h"
#include "worker/adapter.h"
#include "worker/auth.h"
#include "worker/deadlineq.h"
#include "worker/debug_page.h"
#include "worker/eio_payload.h"
#include "worker/handoff.h"
#include "worker/handshake.h"
#include "worker/health.h"
#include "worker/http_gzip.h"
#include "worker/limits.h"
#include "worker/metrics.h"
#include "worker/payload.h"
#include "worker/recovery.h"
#include "worker/recovery_io.h"
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
    char *handshake; /* fetchSockets' handshake members (worker/handshake); NULL: out of memory */
    /* connection state recovery (CONNECTION_RECOVERY); see "connection state recovery" below */
    recovery_log_t *rlog;   /* the last room:message sends; NULL until the main CONNECT */
    char pid[SID_LEN + 1];  /* private id the client resends to recover this session */
    recovery_id_t offset;   /* the offset a recovering client sent */
    bool has_offset;        /* it sent one */
    bool restoring;         /* the main CONNECT waits for the record of its pid */
    bool replaying;         /* restored; missed entries go out before the CONNECT reply */
    unsigned replays;       /* XRANGEs in flight */
    unsigned replay_rounds; /* re-reads of entries held back during the replay */
    unsigned replayed;      /* entries replayed */
    uint32_t next_tag;      /* numbers the memberships for rlog */
    deadline_node_t expiry_node; /* auth on: the token's exp (+ leeway) disconnects the socket */
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
    adapter_str_t nsp_view[NSP_MAX]; /* the namespaces as the adapter host lists them */
    auth_t *auth;       /* JWT verifier; auth_enabled() false when no secret/key is set */
    limits_t *limits;   /* connection counts and per-socket rate limits */

    /* connection state recovery: records and replays (NULL when off), and during a room walk
     * the visited member's mark for that room */
    recovery_io_t *rio;
    rooms_mark_t *visit_mark;
    /* token expiries of authenticated sessions */
    deadlineq_t *expiryq;
};

static void session_end(session_t *s, bool client_close);
static void fail(session_t *s);
static size_t host_broadcast(void *ctx, const adapter_target_t *t, refbuf_t *frame);
static void host_joined(sessions_t *ss, int rc, const char *room, size_t len);
static void host_left(sessions_t *ss, int rc, const char *room, size_t len);
static void host_leave_all(sessions_t *ss, session_t *s);
static int recovery_begin(session_t *s, const sio_packet_t *pk);
static void recovery_joined(session_t *s, const char *room, size_t len);
static void recovery_save(session_t *s);

/* ---- limit counters (streamio_limit_rejections_total) ---- */

static void count_limit(sessions_t *ss, enum stats_limit l)
{
    STATS_ADD(ss->stats->limit_rejections[l], 1);
}

/* conn's own refusals; ud is the sessions (conn_handlers_t.ud). */
static void on_conn_refused(conn_refusal_t why, void *ud)
{
    static const enum stats_limit map[] = {
        [CONN_REFUSED_HEADER_SIZE] = STATS_LIMIT_HEADER_SIZE,
        [CONN_REFUSED_BODY_SIZE] = STATS_LIMIT_BODY_SIZE,
        [CONN_REFUSED_WS_MESSAGE] = STATS_LIMIT_WS_MESSAGE,
        [CONN_REFUSED_OUTPUT] = STATS_LIMIT_OUTPUT_BUFFER,
        [CONN_REFUSED_HEADER_TIMEOUT] = STATS_LIMIT_HEADER_TIMEOUT,
        [CONN_REFUSED_BODY_TIMEOUT] = STATS_LIMIT_BODY_TIMEOUT,
    };
    count_limit(ud, map[why]);
}

/* ---- output: WebSocket frames, or a polling payload for the next GET ---- */

/* Fills ss->hdrs with the CORS headers for this request (empty when none apply). */
/* SOCKETIO_CORS_ORIGINS is "*" or lists `origin` (false when it is unset). */
static bool origin_listed(const sessions_t *ss, const char *origin)
{
    if (!ss->cors)
        return false;
    bool ok = strcmp(ss->cors, "*") == 0;
    size_t olen = strlen(origin);
    for (const char *p = ss->cors; !ok && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        ok = n == olen && memcmp(p, origin, n) == 0;
        p = e ? e + 1 : p + n;
    }
    return ok;
}

static void cors_headers(sessions_t *ss, const http_req_t *req)
{
    buf_reset(&ss->hdrs);
    const char *origin = http_req_header(req, HTTP_REQ_ORIGIN);
    if (!ss->cors || !origin)
        return;
    if (!origin_listed(ss, origin) || strpbrk(origin, "\r\n"))
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
            count_limit(ss, STATS_LIMIT_RATE_JOINS);
        } else if (!auth_room_allowed(ss->auth, s->grant, room, room_len)) {
            err = AUTH_ERR_ROOM_DENIED;
        } else if (!rooms_is_member(&s->rooms, room, room_len) &&
                   s->rooms.count >= (size_t)ss->cfg->max_rooms_per_socket) {
            err = "Max rooms limit reached";
        } else {
            int rc = rooms_join(ss->rooms, &s->rooms, s, room, room_len);
            if (rc < 0)
                err = "Server out of memory";
            if (rc == 0)
                recovery_joined(s, room, room_len);
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

/* Disconnects the session when the token it authenticated with expires (exp + AUTH_JWT_LEEWAY). */
static void arm_expiry(session_t *s, int64_t exp_s)
{
    sessions_t *ss = s->ss;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t left = (exp_s + ss->cfg->auth_jwt_leeway_s) * 1000 - now_ms;
    uv_update_time(ss->loop); /* the cached loop time may lag: never cut a token off early */
    deadlineq_add(ss->expiryq, &s->expiry_node, uv_now(ss->loop) + (uint64_t)(left > 0 ? left : 0));
}

/*
 * The token expired while connected: the `error` event {message: "Token expired"} and a
 * DISCONNECT on every connected namespace (the client sees "io server disconnect" and does not
 * reconnect by itself), then the session ends.
 */
static void on_token_expired(deadline_node_t *n, void *arg)
{
    sessions_t *ss = arg;
    session_t *s = (session_t *)((char *)n - offsetof(session_t, expiry_node));
    count_limit(ss, STATS_LIMIT_TOKEN_EXPIRED);
    emit_error(s, AUTH_ERR_EXPIRED);
    for (unsigned i = 0; i < ss->nnsp; i++) {
        if (!(s->nsp_mask & (1u << i)))
            continue;
        buf_reset(&ss->out);
        sio_packet_encode(&ss->out, SIO_DISCONNECT, ss->nsp[i].name, ss->nsp[i].len, NULL, NULL, 0);
        send_text(s, &ss->out);
    }
    session_end(s, false);
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
    arm_expiry(s, auth_grant_expires(g));
    return NULL;
}

/*
 * Completes a namespace CONNECT whose auth[i] is set: the reply with the Socket.IO id (sid, or
 * a new one when NULL) and, with recovery on the main namespace, the private id.
 */
static int connect_reply(session_t *s, unsigned i, const char *sid)
{
    sessions_t *ss = s->ss;
    char sio_sid[SID_LEN + 1];
    if (sid)
        memcpy(sio_sid, sid, sizeof(sio_sid));
    else if (ids_random(sio_sid, SID_LEN))
        return -EIO;
    char json[96];
    int n = snprintf(json, sizeof(json), "{\"sid\":\"%s\"}", sio_sid);
    if (i == 0 && ss->rio) {
        if (!s->pid[0] && ids_random(s->pid, SID_LEN))
            return -EIO;
        if (!s->rlog && !(s->rlog = calloc(1, sizeof(*s->rlog))))
            return -ENOMEM;
        n = snprintf(json, sizeof(json), "{\"sid\":\"%s\",\"pid\":\"%s\"}", sio_sid, s->pid);
    }
    buf_reset(&ss->out);
    sio_packet_encode(&ss->out, SIO_CONNECT, ss->nsp[i].name, ss->nsp[i].len, NULL, json,
                      (size_t)n);
    send_text(s, &ss->out);
    uint32_t bit = 1u << i;
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
    if ((s->nsp_mask & bit) || (i == 0 && s->restoring))
        return -EPROTO; /* a second CONNECT for the same namespace: Node closes */
    const char *why = authorize(s, pk);
    if (why) {
        count_limit(ss, STATS_LIMIT_AUTH);
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
    s->auth[i] = strndup(pk->data ? pk->data : "{}", pk->data ? pk->data_len : 2);
    if (!s->auth[i])
        return -ENOMEM;
    if (i == 0 && ss->rio) {
        int rc = recovery_begin(s, pk);
        if (rc <= 0)
            return rc; /* 0: the reply waits for the session's record */
    }
    return connect_reply(s, (unsigned)i, NULL);
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
        /* only cluster broadcasts with acks ask clients for acks (in any namespace) */
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
    limits_verdict_t verdict = limits_event(s->ss->limits, &s->lim);
    if (verdict != LIMITS_PASS)
        count_limit(s->ss, STATS_LIMIT_RATE_EVENTS);
    switch (verdict) {
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
    free(s->handshake);
    auth_grant_free(s->grant);
    free(s->rlog);
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
    recovery_save(s);
    s->ended = true;
    strmap_del(ss->sids, s->sid, strlen(s->sid));
    host_leave_all(ss, s);
    timerq_remove(ss->pingq, &s->ping_node);
    timerq_remove(ss->pongq, &s->pong_node);
    timerq_remove(ss->connectq, &s->connect_node);
    timerq_remove(ss->authq, &s->auth_node);
    timerq_remove(ss->upgradeq, &s->upgrade_node);
    deadlineq_remove(ss->expiryq, &s->expiry_node);
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

#define WS_ORIGIN_REFUSED "{\"message\":\"Origin not allowed\"}"

/*
 * A browser's WebSocket is not bound by CORS, so a list in SOCKETIO_CORS_ORIGINS also decides
 * which pages may open one. Without a list, or with "*", any origin is fine; a client that sends
 * no Origin (not a browser) is always allowed, and so is a page of this server (same origin).
 */
static bool ws_origin_allowed(const sessions_t *ss, const http_req_t *req)
{
    const char *origin = http_req_header(req, HTTP_REQ_ORIGIN);
    if (!ss->cors || !origin || origin_listed(ss, origin))
        return true;
    const char *host = http_req_header(req, HTTP_REQ_HOST);
    const char *rest = strncmp(origin, "http://", 7) == 0    ? origin + 7
                       : strncmp(origin, "https://", 8) == 0 ? origin + 8
                                                             : NULL;
    return host && rest && strcasecmp(rest, host) == 0;
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
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    s->handshake = handshake_render(
        req, peer, (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000, &ss->tmp);
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
static void refuse_limits(sessions_t *ss, conn_t *c, int rc)
{
    if (rc == -EMFILE || rc == -ENFILE || rc == -EBUSY)
        count_limit(ss, rc == -EMFILE   ? STATS_LIMIT_PER_IP
                        : rc == -ENFILE ? STATS_LIMIT_TOTAL
                                        : STATS_LIMIT_MEMORY);
    char body[128];
    int n = snprintf(body, sizeof(body), "{\"message\":\"%s\"}", limits_strerror(rc));
    conn_http_respond(c, 503, "application/json", NULL, body, (size_t)n);
}

static void ws_handshake(sessions_t *ss, conn_t *c, const http_req_t *req, bool raw)
{
    struct sockaddr_storage peer;
    int rc = admit(ss, c, &peer);
    if (rc) {
        refuse_limits(ss, c, rc);
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
    if (ws && !ws_origin_allowed(ss, req)) {
        count_limit(ss, STATS_LIMIT_ORIGIN);
        conn_http_respond(c, 403, "application/json", NULL, WS_ORIGIN_REFUSED,
                          sizeof(WS_ORIGIN_REFUSED) - 1);
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
        refuse_limits(ss, c, rc);
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

static void on_rio_closed(void *arg)
{
    (void)arg;
}

static void release(sessions_t *ss)
{
    if (ss->rio)
        recovery_io_close(ss->rio, on_rio_closed, NULL);
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
        if (ss->rio) {
            /* the records of the sessions just closed are sent before the worker goes */
            recovery_io_t *io = ss->rio;
            ss->rio = NULL;
            recovery_io_close(io, fn, ss->closed_arg);
            return;
        }
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
    count_limit(arg, STATS_LIMIT_FIRST_PACKET_TIMEOUT);
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

/* ---- options: SOCKETIO_* come validated in cfg (common/config); test switches from env ---- */

static int parse_options(sessions_t *ss)
{
    const cfg_t *cfg = ss->cfg;
    const char *v = getenv("STREAMIO_CONFORMANCE");
    ss->conformance = v && strcmp(v, "1") == 0;
    v = getenv("STREAMIO_DEBUG_PAGE");
    ss->debug_page = v && strcmp(v, "1") == 0;
    _Static_assert(CONFIG_MAX_NAMESPACES <= NSP_MAX, "one nsp_mask bit per namespace");
    _Static_assert(CONFIG_NAMESPACE_SIZE <= sizeof(ss->nsp[0].name), "namespace size");
    ss->nnsp = 0;
    for (int i = 0; i < cfg->nnamespaces; i++) {
        size_t n = strlen(cfg->namespaces[i]);
        memcpy(ss->nsp[ss->nnsp].name, cfg->namespaces[i], n + 1);
        ss->nsp[ss->nnsp++].len = n;
    }
    if (ss->conformance && !getenv("SOCKETIO_NAMESPACES") && ss->nnsp < NSP_MAX)
        ss->nsp[ss->nnsp++] = (nsp_name_t){"/custom", 7};
    ss->transports = ((cfg->transports & CONFIG_TRANSPORT_POLLING) ? TR_POLLING : 0) |
                     ((cfg->transports & CONFIG_TRANSPORT_WEBSOCKET) ? TR_WEBSOCKET : 0);
    if (cfg->cors_origins[0] && !(ss->cors = strdup(cfg->cors_origins)))
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
        .header_timeout_ms = (uint64_t)cfg->http_header_timeout_ms,
        .body_timeout_ms = (uint64_t)cfg->http_body_timeout_ms,
    };
    conn_handlers_t h = {on_request, on_ws_text, on_ws_binary, on_close, ss, on_conn_refused};
    ss->rooms = rooms_new();
    ss->sids = strmap_new();
    if (!ss->rooms || !ss->sids || conn_ctx_new(&ss->conns, loop, &lim, &h) ||
        timerq_new(&ss->pingq, loop, (uint64_t)cfg->ping_interval_ms, on_ping_due, ss) ||
        timerq_new(&ss->pongq, loop, (uint64_t)cfg->ping_timeout_ms, on_pong_late, ss) ||
        timerq_new(&ss->connectq, loop, (uint64_t)cfg->connect_timeout_ms, on_connect_late, ss) ||
        timerq_new(&ss->authq, loop, AUTH_EMIT_DELAY_MS, on_auth_due, ss) ||
        timerq_new(&ss->upgradeq, loop, UPGRADE_TIMEOUT_MS, on_upgrade_late, ss) ||
        deadlineq_new(&ss->expiryq, loop, on_token_expired, ss)) {
        sessions_free(ss);
        return -ENOMEM;
    }
    if (cfg->connection_recovery && (rc = recovery_io_new(&ss->rio, loop, cfg))) {
        sessions_free(ss);
        return rc;
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

/* The payload of the server-built (unmasked) frame at d, NULL when it does not fit in end - d. */
static const uint8_t *frame_at(const uint8_t *d, const uint8_t *end, size_t *plen)
{
    if (end - d < 2)
        return NULL;
    uint64_t len = d[1] & 0x7f;
    size_t hl = len == 126 ? 4 : len == 127 ? 10 : 2;
    if ((size_t)(end - d) < hl)
        return NULL;
    if (hl > 2) {
        len = 0;
        for (size_t i = 2; i < hl; i++)
            len = len << 8 | d[i];
    }
    if (len > (uint64_t)(end - d) - hl)
        return NULL;
    *plen = (size_t)len;
    return d + hl;
}

/* The first frame's payload: the packet text of a broadcast. NULL on a malformed frame. */
static const char *frame_payload(refbuf_t *frame, size_t *len)
{
    const uint8_t *d = (const uint8_t *)refbuf_data(frame);
    return (const char *)frame_at(d, d + refbuf_len(frame), len);
}

/* Queues shared frames on whichever transport the session has: one text frame, or (a binary
 * packet) a text frame then its attachments' binary frames, built by this server, unmasked.
 * True when queued. */
static bool send_frame(session_t *s, refbuf_t *frame)
{
    if (s->conn)
        return conn_ws_send_frame(s->conn, frame) == 0;
    const uint8_t *d = (const uint8_t *)refbuf_data(frame);
    const uint8_t *end = d + refbuf_len(frame);
    const uint8_t *p;
    size_t len;
    while ((p = frame_at(d, end, &len)) != NULL) {
        if ((d[0] & 0x0f) == WS_FRAME_BINARY)
            send_binary(s, p, len);
        else
            send_packet(s, (const char *)p, len);
        d = p + len;
    }
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
    adapter_target_t t = {rooms, nrooms, except, nexcept, false, 0};
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
    deadlineq_close(ss->expiryq);
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
    if (s->mark == v->ss->epoch || !(s->nsp_mask & (1u << v->t->nsp)) || s->ended)
        return;
    s->mark = v->ss->epoch;
    /* volatile: a transport with a backlog cannot take the packet now (bytes queued during this
     * loop turn are not a backlog: they leave with the next writev) */
    if (v->t->skip_busy && (s->conn ? conn_outq_bytes(s->conn) : s->pollq.len) > 16384)
        return;
    v->fn(s, v->arg);
}

static void host_visit_member(void *owner, rooms_mark_t *mark, void *arg)
{
    host_visit_t *v = arg;
    v->ss->visit_mark = mark;
    host_visit_one(owner, arg);
    v->ss->visit_mark = NULL;
}

/* Calls fn once per connected socket matching t (rooms, socket ids, except). */
static void host_match(sessions_t *ss, const adapter_target_t *t,
                       void (*fn)(session_t *s, void *arg), void *arg)
{
    host_visit_t v = {ss, t, fn, arg};
    ss->epoch++;
    if (t->nsp) {
        /* another namespace: no rooms there, so only "every socket of it" names anyone */
        for (session_t *s = ss->head; s && t->nrooms == 0; s = s->next)
            host_visit_one(s, &v);
        return;
    }
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
            rooms_foreach_mark(room, host_visit_member, &v);
        else if (one)
            host_visit_one(one, &v);
    }
}

typedef struct host_send {
    refbuf_t *frame;
    size_t queued;
    const recovery_id_t *offset; /* the frame's stream entry id (recovery on, one room) */
} host_send_t;

static bool recovery_gate(session_t *s, recovery_id_t id);

static void host_send_one(session_t *s, void *arg)
{
    host_send_t *b = arg;
    if (b->offset && !recovery_gate(s, *b->offset))
        return;
    if (send_frame(s, b->frame))
        b->queued++;
}

/* The stream entry id a room:message frame carries as its offset. */
static bool frame_offset(refbuf_t *frame, recovery_id_t *id)
{
    size_t len, pre = sizeof(PAYLOAD_PACKET_PREFIX) - 1;
    const char *p = frame_payload(frame, &len);
    if (!p || len < pre + 6 || memcmp(p, PAYLOAD_PACKET_PREFIX, pre) != 0 || p[len - 1] != ']' ||
        p[len - 2] != '"')
        return false;
    size_t end = len - 2, start = end;
    while (start > pre && end - start <= RECOVERY_ID_MAX && p[start - 1] != '"')
        start--;
    return start > pre + 1 && p[start - 1] == '"' && p[start - 2] == ',' &&
           memchr(p + start, '-', end - start) && recovery_id_parse(p + start, end - start, id);
}

static size_t host_broadcast(void *ctx, const adapter_target_t *t, refbuf_t *frame)
{
    sessions_t *ss = ctx;
    recovery_id_t id;
    bool has_id = ss->rio && t->nrooms == 1 && frame_offset(frame, &id);
    host_send_t b = {frame, 0, has_id ? &id : NULL};
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
    /* auth: the main namespace's CONNECT payload, as Node keeps it */
    int rc = buf_printf(out, "{\"id\":\"%s\",\"handshake\":{%s%s\"auth\":%s},\"rooms\":[\"%s\"",
                        s->sio_sid, s->handshake ? s->handshake : "", s->handshake ? "," : "",
                        s->auth[0] ? s->auth[0] : "{}", s->sio_sid);
    if (!rc)
        rooms_sock_foreach(&s->rooms, host_describe_room, out);
    return rc ? rc : buf_puts(out, "],\"data\":{}}");
}

static int host_join(void *ctx, void *sock, const char *room, size_t len)
{
    sessions_t *ss = ctx;
    session_t *s = sock;
    int rc = rooms_join(ss->rooms, &s->rooms, s, room, len);
    if (rc == 0)
        recovery_joined(s, room, len);
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
    for (unsigned i = 0; i < ss->nnsp; i++)
        ss->nsp_view[i] = (adapter_str_t){ss->nsp[i].name, ss->nsp[i].len};
    *out = (adapter_host_t){
        .ctx = ss,
        .nsps = ss->nsp_view,
        .nnsp = ss->nnsp,
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

/* ---- connection state recovery (CONNECTION_RECOVERY; the scheme is in recovery.h) ---- */

static recovery_id_t mark_id(const uint64_t v[2])
{
    return (recovery_id_t){v[0], v[1]};
}

static void mark_set(uint64_t v[2], recovery_id_t id)
{
    v[0] = id.ms;
    v[1] = id.seq;
}

/* A join starts the room's record at the wall clock: entries added from now on are due. */
static void recovery_joined(session_t *s, const char *room, size_t len)
{
    rooms_mark_t *m = s->ss->rio ? rooms_sock_mark(&s->rooms, room, len) : NULL;
    if (!m)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    recovery_id_t start =
        recovery_id_before_ms((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
    m->tag = ++s->next_tag;
    mark_set(m->first, start);
    mark_set(m->last, start);
}

/*
 * Whether a room:message with entry id `id`, reaching s through its membership visit_mark, goes
 * out now. While s replays, it is held back (the replay reads it from the stream, in order);
 * after, ids up to the replay's end were already sent. Sends are logged. No allocation.
 */
static bool recovery_gate(session_t *s, recovery_id_t id)
{
    rooms_mark_t *m = s->ss->visit_mark;
    if (!m || !s->rlog)
        return true;
    if (s->replaying) {
        if (recovery_id_cmp(id, mark_id(m->held)) > 0)
            mark_set(m->held, id);
        return false;
    }
    if (recovery_id_cmp(id, mark_id(m->held)) <= 0)
        return false;
    recovery_log_add(s->rlog, m->tag, id, mark_id(m->last));
    if (recovery_id_cmp(id, mark_id(m->last)) > 0)
        mark_set(m->last, id);
    return true;
}

typedef struct save_rooms {
    recovery_room_t *v;
    size_t n, cap;
} save_rooms_t;

static void save_room(const char *name, size_t len, rooms_mark_t *m, void *arg)
{
    save_rooms_t *r = arg;
    if (r->n < r->cap)
        r->v[r->n++] = (recovery_room_t){name, len, m->tag, mark_id(m->first), mark_id(m->last)};
}

/* The transport is gone while the main namespace is connected: keep the session for its pid. */
static void recovery_save(session_t *s)
{
    sessions_t *ss = s->ss;
    if (!ss->rio || !s->rlog || !s->pid[0] || !(s->nsp_mask & 1u))
        return;
    save_rooms_t r = {calloc(s->rooms.count + 1, sizeof(*r.v)), 0, s->rooms.count};
    buf_t rec;
    buf_init(&rec);
    int rc = -ENOMEM;
    if (r.v) {
        rooms_sock_foreach_mark(&s->rooms, save_room, &r);
        rc = recovery_encode(&rec, s->sio_sid, SID_LEN, s->rlog, r.v, r.n);
    }
    if (!rc)
        rc = recovery_io_save(ss->rio, s->pid, SID_LEN, rec.data, rec.len);
    if (rc)
        LOG_WARN("recovery: cannot keep session %s: %s", s->sio_sid, strerror(-rc));
    buf_free(&rec);
    free(r.v);
}

static void on_record(void *arg, const char *rec, size_t len);

/* A sid or pid as this server makes them (they go into the CONNECT reply unescaped). */
static bool id_text_ok(const char *p, size_t len)
{
    if (len != SID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!memchr(sid_digits, p[i], sizeof(sid_digits) - 1))
            return false;
    }
    return true;
}

/*
 * A main CONNECT with recovery on: when its auth carries a pid of ours, asks for that session's
 * record and returns 0 (the reply comes later); 1 when there is nothing to recover.
 */
static int recovery_begin(session_t *s, const sio_packet_t *pk)
{
    sessions_t *ss = s->ss;
    json_span_t pid, off;
    buf_t *tmp = &ss->tmp;
    if (!pk->data || json_validate(pk->data, pk->data_len) ||
        json_member_get(pk->data, pk->data_len, "pid", &pid, tmp) || pid.type != JSON_STRING)
        return 1;
    buf_reset(&ss->name);
    if (json_string_decode(pid.p, pid.len, &ss->name) || !id_text_ok(ss->name.data, ss->name.len))
        return 1;
    s->has_offset = false;
    if (json_member_get(pk->data, pk->data_len, "offset", &off, tmp) == 0) {
        buf_reset(tmp);
        /* an offset that is not an entry id cannot be placed in the log */
        if (off.type != JSON_STRING || json_string_decode(off.p, off.len, tmp) ||
            tmp->len > RECOVERY_ID_MAX || !recovery_id_parse(tmp->data, tmp->len, &s->offset))
            return 1;
        s->has_offset = true;
    }
    memcpy(s->pid, ss->name.data, SID_LEN);
    s->pid[SID_LEN] = '\0';
    s->restoring = true;
    s->busy++;
    if (recovery_io_take(ss->rio, s->pid, SID_LEN, on_record, s)) {
        s->busy--;
        s->restoring = false;
        s->pid[0] = '\0';
        return 1;
    }
    return 0;
}

typedef struct restore {
    session_t *s;
    const recovery_log_t *log;
    uint32_t pos;
} restore_t;

/* Rejoins one room of the record where the client's offset says it stopped. */
static void restore_room(void *arg, const recovery_room_t *r)
{
    restore_t *c = arg;
    session_t *s = c->s;
    sessions_t *ss = s->ss;
    if (s->rooms.count >= (size_t)ss->cfg->max_rooms_per_socket ||
        !auth_room_allowed(ss->auth, s->grant, r->name, r->len))
        return;
    int rc = rooms_join(ss->rooms, &s->rooms, s, r->name, r->len);
    host_joined(ss, rc, r->name, r->len);
    rooms_mark_t *m = rc == 0 ? rooms_sock_mark(&s->rooms, r->name, r->len) : NULL;
    if (!m)
        return;
    m->tag = r->tag;
    mark_set(m->last, recovery_log_received(c->log, c->pos, r));
    memcpy(m->first, m->last, sizeof(m->first)); /* what the client has: a later start point */
    if (r->tag > s->next_tag)
        s->next_tag = r->tag;
}

typedef struct replay {
    session_t *s;
    size_t len;
    char name[];
} replay_t;

static void replay_room(session_t *s, const char *name, size_t len, recovery_id_t after);

static void on_replay_entry(void *arg, const char *id, size_t id_len, const payload_field_t *fields,
                            size_t nfields)
{
    replay_t *rp = arg;
    session_t *s = rp->s;
    sessions_t *ss = s->ss;
    rooms_mark_t *m = s->ended ? NULL : rooms_sock_mark(&s->rooms, rp->name, rp->len);
    recovery_id_t rid;
    if (!m || id_len > RECOVERY_ID_MAX || !recovery_id_parse(id, id_len, &rid) ||
        recovery_id_cmp(rid, mark_id(m->last)) <= 0)
        return;
    buf_reset(&ss->out);
    if (payload_packet(&ss->out, rp->name, rp->len, id, id_len, fields, nfields, true))
        return;
    send_text(s, &ss->out);
    recovery_log_add(s->rlog, m->tag, rid, mark_id(m->last));
    mark_set(m->last, rid);
    s->replayed++;
    STATS_ADD(ss->stats->deliveries, 1);
}

static void replay_finish(session_t *s);

static void on_replay_done(void *arg, int n)
{
    replay_t *rp = arg;
    session_t *s = rp->s;
    s->busy--;
    s->replays--;
    if (s->ended) {
        free(rp);
        maybe_free(s);
        return;
    }
    rooms_mark_t *m = rooms_sock_mark(&s->rooms, rp->name, rp->len);
    if (n < 0 && n != -EPROTO)
        LOG_WARN("recovery: replay of %.*s for %s failed: %s", (int)rp->len, rp->name, s->sio_sid,
                 strerror(-n));
    if (m && n == RECOVERY_IO_PAGE)
        replay_room(s, rp->name, rp->len, mark_id(m->last));
    free(rp);
    if (s->replays == 0)
        replay_finish(s);
}

static void replay_room(session_t *s, const char *name, size_t len, recovery_id_t after)
{
    replay_t *rp = malloc(sizeof(*rp) + len);
    if (!rp) {
        LOG_WARN("recovery: out of memory replaying %s", s->sio_sid);
        return;
    }
    rp->s = s;
    rp->len = len;
    memcpy(rp->name, name, len);
    s->busy++;
    s->replays++;
    int rc = recovery_io_range(s->ss->rio, name, len, after, on_replay_entry, on_replay_done, rp);
    if (rc) {
        s->busy--;
        s->replays--;
        free(rp);
        LOG_WARN("recovery: cannot replay %.*s for %s: %s", (int)len, name, s->sio_sid,
                 strerror(-rc));
    }
}

static void replay_start(const char *name, size_t len, rooms_mark_t *m, void *arg)
{
    replay_room(arg, name, len, mark_id(m->last));
}

/* Entries held back after their room's read ended: read them (a bounded number of rounds). */
static void replay_recheck(const char *name, size_t len, rooms_mark_t *m, void *arg)
{
    if (recovery_id_cmp(mark_id(m->held), mark_id(m->last)) > 0)
        replay_room(arg, name, len, mark_id(m->last));
}

/* From now on the ids up to what was replayed are duplicates. */
static void replay_settle(const char *name, size_t len, rooms_mark_t *m, void *arg)
{
    (void)name;
    (void)len;
    (void)arg;
    memcpy(m->held, m->last, sizeof(m->held));
}

static void replay_finish(session_t *s)
{
    if (s->replay_rounds++ < 8)
        rooms_sock_foreach_mark(&s->rooms, replay_recheck, s);
    if (s->replays)
        return;
    rooms_sock_foreach_mark(&s->rooms, replay_settle, NULL);
    s->replaying = false;
    if (!(s->nsp_mask & 1u))
        return; /* disconnected by the cluster meanwhile */
    LOG_DEBUG("recovery: session %s restored, %u entries replayed", s->sio_sid, s->replayed);
    if (connect_reply(s, 0, s->sio_sid))
        fail(s);
}

/* Restores s from its record: 0 when the replay started, 1 when it cannot be recovered. */
static int restore(session_t *s, const char *rec, size_t len)
{
    sessions_t *ss = s->ss;
    const char *sid;
    size_t sid_len;
    uint32_t pos;
    recovery_log_t *log = rec ? malloc(sizeof(*log)) : NULL;
    if (!log || recovery_decode(rec, len, &sid, &sid_len, log, NULL, NULL) ||
        !id_text_ok(sid, sid_len) || host_by_id(ss, sid, SID_LEN) ||
        recovery_log_locate(log, s->has_offset ? &s->offset : NULL, &pos)) {
        free(log);
        return 1;
    }
    memcpy(s->sio_sid, sid, SID_LEN);
    s->sio_sid[SID_LEN] = '\0';
    restore_t c = {s, log, pos};
    recovery_decode(rec, len, &sid, &sid_len, log, restore_room, &c);
    /* new joins get tags no logged send uses, rooms left since included */
    for (size_t k = 0; k < RECOVERY_LOG_LEN; k++) {
        if (log->e[k].tag > s->next_tag)
            s->next_tag = log->e[k].tag;
    }
    recovery_log_truncate(log, pos);
    free(s->rlog);
    s->rlog = log;
    STATS_SET(ss->stats->rooms, rooms_count(ss->rooms));
    /* connected for broadcasts (held back per room until the replay is over), not yet replied */
    s->nsp_mask |= 1u;
    s->replaying = true;
    rooms_sock_foreach_mark(&s->rooms, replay_start, s);
    if (s->replays == 0)
        replay_finish(s);
    return 0;
}

static void on_record(void *arg, const char *rec, size_t len)
{
    session_t *s = arg;
    s->busy--;
    s->restoring = false;
    if (s->ended) {
        maybe_free(s);
        return;
    }
    int rc = restore(s, rec, len);
    if (rc > 0) {
        s->pid[0] = '\0';
        rc = connect_reply(s, 0, NULL);
    }
    if (rc < 0)
        fail(s);
}
