/* session: see session.h. */
#include "worker/session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strmap.h"
#include "worker/adapter.h"
#include "worker/health.h"
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
    char sio_sid[SID_LEN + 1]; /* Socket.IO id of the main namespace (issue 5: adapter host) */
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
    buf_t name;         /* decoded room name of the event being handled */
    adapter_t *adapter; /* issue 5: told about rooms created/deleted and client acks */
};

static void host_joined(sessions_t *ss, int rc, const char *room, size_t len);
static void host_left(sessions_t *ss, int rc, const char *room, size_t len);
static void host_leave_all(sessions_t *ss, session_t *s);

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
    memcpy(s->sio_sid, sio_sid, sizeof(sio_sid));
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
        host_leave_all(s->ss, s);
        STATS_SET(s->ss->stats->rooms, rooms_count(s->ss->rooms));
        return 0;
    case SIO_EVENT:
        return on_event(s, &pk);
    case SIO_ACK:
        /* only cluster broadcasts ask for acks; other ids are ignored */
        adapter_client_ack(s->ss->adapter, pk.id, pk.data, pk.data_len);
        return 0;
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
        host_leave_all(ss, s);
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

/* ---- cluster adapter host (issue 5) ---- */

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
        if (s->connected && memcmp(s->sio_sid, id, SID_LEN) == 0)
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
    if (s->mark == v->ss->epoch || !s->connected)
        return;
    s->mark = v->ss->epoch;
    /* volatile: a transport with a backlog cannot take the packet now (bytes queued during this
     * loop turn are not a backlog: they leave with the next writev) */
    if (v->t->skip_busy && conn_outq_bytes(s->conn) > 16384)
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
    if (conn_ws_send_frame(s->conn, b->frame) == 0)
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
    sessions_t *ss = ctx;
    session_t *s = sock;
    if (!s->connected)
        return;
    conn_ws_send_text(s->conn, "41", 2);
    s->connected = false;
    host_leave_all(ss, s);
    STATS_SET(ss->stats->rooms, rooms_count(ss->rooms));
    if (close)
        conn_ws_close(s->conn, 1000);
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
        if (!s->connected)
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
