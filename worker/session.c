/* session: see session.h. */
#include "worker/session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "worker/health.h"
#include "worker/metrics.h"
#include "worker/sio_packet.h"
#include "worker/timerq.h"

#define ROOM_ID_MAX_UNITS 512 /* the Node server's limit, in UTF-16 code units */
#define SID_LEN 20

/* conn data is either the sessions (plain HTTP) or a session (WebSocket): the tag tells */
enum owner_kind { OWNER_SESSIONS = 1, OWNER_SESSION = 2 };

typedef struct session {
    enum owner_kind kind;
    struct sessions *ss;
    conn_t *conn;
    struct session *prev, *next;
    rooms_sock_t rooms;
    timerq_node_t ping_node;    /* next ping due */
    timerq_node_t pong_node;    /* waiting for the pong */
    timerq_node_t connect_node; /* waiting for the namespace CONNECT */
    uint64_t mark;              /* last broadcast this socket was queued */
    unsigned pending_binary;    /* attachments still expected (ignored events) */
    bool connected;             /* main namespace connected */
    char sid[SID_LEN + 1];
} session_t;

struct sessions {
    enum owner_kind kind;
    uv_loop_t *loop;
    const cfg_t *cfg;
    shm_region_t *region;
    uint32_t slot;
    stats_worker_t *stats;
    conn_ctx_t *conns;
    rooms_t *rooms;
    timerq_t *pingq, *pongq, *connectq;
    session_t *head;
    size_t nconns;    /* every accepted connection, websocket or not */
    size_t nsessions; /* WebSocket sessions */
    bool freeing;     /* sessions_free ran; the last on_close releases the memory */
    uint64_t epoch;
    bool closing;
    void (*closed)(void *arg);
    void *closed_arg;
    buf_t out; /* scratch for per-socket packets */
    buf_t tmp;
    buf_t name; /* decoded room name of the event being handled */
};

/* ---- helpers ---- */

static void send_text(session_t *s, const buf_t *b)
{
    conn_ws_send_text(s->conn, b->data, b->len);
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
    buf_t *name = &ss->name;
    buf_reset(name);
    bool is_str =
        arg && arg->type == JSON_STRING && json_string_decode(arg->p, arg->len, name) == 0;
    const char *room = name->data ? name->data : "";
    size_t room_len = name->len;
    if (join) {
        if (!is_str || room_len == 0 || utf16_units(room, room_len) > ROOM_ID_MAX_UNITS) {
            err = "Invalid room id";
        } else if (!rooms_is_member(&s->rooms, room, room_len) &&
                   s->rooms.count >= (size_t)ss->cfg->max_rooms_per_socket) {
            err = "Max rooms limit reached";
        } else if (rooms_join(ss->rooms, &s->rooms, s, room, room_len) < 0) {
            err = "Server out of memory";
        }
    } else if (is_str) {
        rooms_leave(ss->rooms, &s->rooms, room, room_len);
    }
    STATS_SET(ss->stats->rooms, rooms_count(ss->rooms));
    if (err)
        emit_error(s, err);
    if (pk->has_id)
        send_ack(s, pk->id, err == NULL, err ? NULL : (arg ? arg->p : NULL), arg ? arg->len : 0,
                 err);
}

static int on_event(session_t *s, const sio_packet_t *pk)
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
    const json_span_t *arg = n > 1 ? &items[1] : NULL;
    if (items[0].len == 11 && memcmp(items[0].p, "\"join-room\"", 11) == 0)
        on_room_event(s, true, arg, pk);
    else if (items[0].len == 12 && memcmp(items[0].p, "\"leave-room\"", 12) == 0)
        on_room_event(s, false, arg, pk);
    return 0;
}

static int on_connect_packet(session_t *s, const sio_packet_t *pk)
{
    sessions_t *ss = s->ss;
    buf_reset(&ss->out);
    if (pk->nsp_len != 1) {
        sio_packet_encode(&ss->out, SIO_CONNECT_ERROR, pk->nsp, pk->nsp_len, NULL,
                          "{\"message\":\"Invalid namespace\"}", 31);
        send_text(s, &ss->out);
        return 0;
    }
    if (s->connected)
        return -EPROTO; /* a second CONNECT for the same namespace: Node closes */
    char sio_sid[SID_LEN + 1];
    if (ids_random(sio_sid, SID_LEN))
        return -EIO;
    char json[64];
    int n = snprintf(json, sizeof(json), "{\"sid\":\"%s\"}", sio_sid);
    sio_packet_encode(&ss->out, SIO_CONNECT, "/", 1, NULL, json, (size_t)n);
    send_text(s, &ss->out);
    s->connected = true;
    timerq_remove(ss->connectq, &s->connect_node);
    return 0;
}

/* A Socket.IO packet; a negative return closes the connection (Node's behaviour). */
static int on_sio(session_t *s, const char *p, size_t len)
{
    sio_packet_t pk;
    if (s->pending_binary || sio_packet_decode(p, len, &pk))
        return -EPROTO;
    if (pk.type == SIO_CONNECT)
        return on_connect_packet(s, &pk);
    if (pk.nsp_len != 1 || !s->connected)
        return -EPROTO; /* packet for a namespace this client is not connected to */
    switch (pk.type) {
    case SIO_DISCONNECT:
        s->connected = false;
        rooms_leave_all(s->ss->rooms, &s->rooms);
        STATS_SET(s->ss->stats->rooms, rooms_count(s->ss->rooms));
        return 0;
    case SIO_EVENT:
        return on_event(s, &pk);
    case SIO_ACK:
        return 0; /* the server never asks for acks: unknown ids are ignored */
    case SIO_BINARY_EVENT:
    case SIO_BINARY_ACK:
        s->pending_binary = pk.attachments; /* no binary events are handled: drop them */
        return 0;
    default:
        return -EPROTO; /* CONNECT_ERROR from a client */
    }
}

/* ---- connection callbacks ---- */

static void on_ws_text(conn_t *c, const char *msg, size_t len, void *ud)
{
    session_t *s = *(enum owner_kind *)ud == OWNER_SESSION ? ud : NULL;
    if (!s || len == 0) {
        conn_close(c);
        return;
    }
    sessions_t *ss = s->ss;
    int rc = 0;
    switch (msg[0]) {
    case '3': /* pong: the next ping is pingInterval from now */
        timerq_remove(ss->pongq, &s->pong_node);
        timerq_add(ss->pingq, &s->ping_node);
        break;
    case '4':
        rc = on_sio(s, msg + 1, len - 1);
        break;
    case '1':
        conn_ws_close(c, 1000);
        return;
    default: /* a client ping ('2') is the wrong direction in v4; anything else is garbage */
        rc = -EPROTO;
        break;
    }
    if (rc)
        conn_ws_close(c, 0);
}

static void on_ws_binary(conn_t *c, const uint8_t *msg, size_t len, void *ud)
{
    session_t *s = *(enum owner_kind *)ud == OWNER_SESSION ? ud : NULL;
    (void)msg;
    (void)len;
    if (!s || s->pending_binary == 0) {
        conn_ws_close(c, 0);
        return;
    }
    s->pending_binary--;
}

static void respond_error(conn_t *c, int code, const char *message)
{
    char body[96];
    int n = snprintf(body, sizeof(body), "{\"code\":%d,\"message\":\"%s\"}", code, message);
    conn_http_respond(c, 400, "application/json", NULL, body, (size_t)n);
}

static bool query_is(const http_req_t *req, const char *key, const char *want, buf_t *tmp)
{
    buf_reset(tmp);
    return http_req_query(req, key, tmp) == 0 && tmp->data && strcmp(tmp->data, want) == 0;
}

static void open_session(sessions_t *ss, conn_t *c)
{
    session_t *s = calloc(1, sizeof(*s));
    if (!s || ids_random(s->sid, SID_LEN) || conn_ws_accept(c)) {
        free(s);
        conn_close(c);
        return;
    }
    s->kind = OWNER_SESSION;
    s->ss = ss;
    s->conn = c;
    conn_set_data(c, s);
    s->next = ss->head;
    if (ss->head)
        ss->head->prev = s;
    ss->head = s;
    ss->nsessions++;
    STATS_ADD(ss->stats->connections, 1);
    buf_reset(&ss->out);
    buf_printf(&ss->out,
               "0{\"sid\":\"%s\",\"upgrades\":[],\"pingInterval\":%d,\"pingTimeout\":%d,"
               "\"maxPayload\":%d}",
               s->sid, ss->cfg->ping_interval_ms, ss->cfg->ping_timeout_ms, ss->cfg->max_payload);
    send_text(s, &ss->out);
    timerq_add(ss->pingq, &s->ping_node);
    timerq_add(ss->connectq, &s->connect_node);
}

static void on_engine_request(sessions_t *ss, conn_t *c, const http_req_t *req)
{
    buf_t *q = &ss->tmp;
    if (!query_is(req, "EIO", "4", q)) {
        respond_error(c, 5, "Unsupported protocol version");
        return;
    }
    if (!query_is(req, "transport", "websocket", q)) {
        respond_error(c, 0, "Transport unknown"); /* long-polling is not served by this build */
        return;
    }
    buf_reset(q);
    if (http_req_query(req, "sid", q) == 0) {
        respond_error(c, 1, "Session ID unknown"); /* no polling session can exist to upgrade */
        return;
    }
    if (!http_req_is_websocket(req)) {
        respond_error(c, 3, "Bad request");
        return;
    }
    if (ss->closing) {
        conn_http_respond(c, 503, "text/plain", NULL, "Shutting down", 13);
        return;
    }
    open_session(ss, c);
}

static void on_request(conn_t *c, const http_req_t *req, void *ud)
{
    sessions_t *ss = ud;
    const char *path = http_req_path(req);
    if (strncmp(path, "/socket.io/", 11) == 0 || strcmp(path, "/socket.io") == 0) {
        on_engine_request(ss, c, req);
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
    rooms_free(ss->rooms);
    buf_free(&ss->out);
    buf_free(&ss->tmp);
    buf_free(&ss->name);
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
    (void)c;
    session_t *s = *(enum owner_kind *)ud == OWNER_SESSION ? ud : NULL;
    sessions_t *ss = s ? s->ss : ud;
    ss->nconns--;
    if (s) {
        rooms_leave_all(ss->rooms, &s->rooms);
        timerq_remove(ss->pingq, &s->ping_node);
        timerq_remove(ss->pongq, &s->pong_node);
        timerq_remove(ss->connectq, &s->connect_node);
        if (s->prev)
            s->prev->next = s->next;
        else
            ss->head = s->next;
        if (s->next)
            s->next->prev = s->prev;
        STATS_SUB(ss->stats->connections, 1);
        STATS_SET(ss->stats->rooms, rooms_count(ss->rooms));
        ss->nsessions--;
        free(s);
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
    conn_ws_send_text(s->conn, "2", 1);
    timerq_add(ss->pongq, &s->pong_node);
}

static void on_pong_late(timerq_node_t *n, void *arg)
{
    (void)arg;
    session_t *s = session_of(n, offsetof(session_t, pong_node));
    conn_ws_close(s->conn, 0);
}

static void on_connect_late(timerq_node_t *n, void *arg)
{
    (void)arg;
    session_t *s = session_of(n, offsetof(session_t, connect_node));
    conn_ws_close(s->conn, 0);
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
    conn_limits_t lim = {
        .max_header_bytes = 8192,
        .max_ws_message = (size_t)cfg->max_payload,
        .max_outq_bytes = 4u << 20,
        .close_timeout_ms = 1000,
    };
    conn_handlers_t h = {on_request, on_ws_text, on_ws_binary, on_close, ss};
    ss->rooms = rooms_new();
    if (!ss->rooms || conn_ctx_new(&ss->conns, loop, &lim, &h) ||
        timerq_new(&ss->pingq, loop, (uint64_t)cfg->ping_interval_ms, on_ping_due, ss) ||
        timerq_new(&ss->pongq, loop, (uint64_t)cfg->ping_timeout_ms, on_pong_late, ss) ||
        timerq_new(&ss->connectq, loop, (uint64_t)cfg->connect_timeout_ms, on_connect_late, ss)) {
        sessions_free(ss);
        return -ENOMEM;
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

typedef struct bcast {
    sessions_t *ss;
    refbuf_t *frame;
    size_t queued;
} bcast_t;

static void deliver(void *owner, void *arg)
{
    session_t *s = owner;
    bcast_t *b = arg;
    if (s->mark == b->ss->epoch || !s->connected)
        return;
    s->mark = b->ss->epoch;
    if (conn_ws_send_frame(s->conn, b->frame) == 0)
        b->queued++;
}

static void exclude(void *owner, void *arg)
{
    session_t *s = owner;
    s->mark = ((sessions_t *)arg)->epoch;
}

size_t sessions_broadcast(sessions_t *ss, const adapter_str_t *rooms, size_t nrooms,
                          const adapter_str_t *except, size_t nexcept, refbuf_t *frame)
{
    bcast_t b = {ss, frame, 0};
    ss->epoch++;
    for (size_t i = 0; i < nexcept; i++) {
        room_t *room = rooms_find(ss->rooms, except[i].p, except[i].len);
        if (room)
            rooms_foreach(room, exclude, ss);
    }
    if (nrooms == 0) {
        for (session_t *s = ss->head; s; s = s->next)
            deliver(s, &b);
    }
    for (size_t i = 0; i < nrooms; i++) {
        room_t *room = rooms_find(ss->rooms, rooms[i].p, rooms[i].len);
        if (room)
            rooms_foreach(room, deliver, &b);
    }
    STATS_ADD(ss->stats->deliveries, b.queued);
    return b.queued;
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
    for (session_t *s = ss->head; s; s = s->next)
        conn_ws_close(s->conn, 1001);
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
    /* connections still open close asynchronously and their on_close needs ss */
    ss->freeing = true;
    conn_ctx_free(ss->conns);
    if (ss->nconns == 0)
        release(ss);
}
