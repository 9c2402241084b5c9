/* session_host: broadcasts to local sockets and the adapter host over them. See session_int.h. */
#include "worker/session_int.h"

static size_t host_broadcast(void *ctx, const adapter_target_t *t, refbuf_t *frame);

/* The first frame's payload: the packet text of a broadcast. NULL on a malformed frame. */
static const char *frame_payload(refbuf_t *frame, size_t *len)
{
    const uint8_t *p;
    return ws_frame_parse((const uint8_t *)refbuf_data(frame), refbuf_len(frame), &p, len)
               ? (const char *)p
               : NULL;
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
    while (ws_frame_parse(d, (size_t)(end - d), &p, &len)) {
        if ((d[0] & 0x0f) == WS_FRAME_BINARY)
            sess_send_binary(s, p, len);
        else
            sess_send_packet(s, (const char *)p, len);
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

/* ---- cluster adapter host ---- */

/* Hook: a join made a new local room. */
void sess_host_joined(sessions_t *ss, int rc, const char *room, size_t len)
{
    room_t *r = rc == 0 ? rooms_find(ss->rooms, room, len) : NULL;
    if (r && rooms_members(r) == 1)
        adapter_room_created(ss->adapter, room, len);
}

/* Hook: a leave emptied a local room. */
void sess_host_left(sessions_t *ss, int rc, const char *room, size_t len)
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
void sess_host_leave_all(sessions_t *ss, session_t *s)
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
        sess_host_left(ss, rooms_leave(ss->rooms, &s->rooms, names.data + off, n), names.data + off,
                       n);
        off += n;
    }
    buf_free(&names);
}

/* The connected socket whose Socket.IO id is `id` (ids are rooms too, as in Node). */
session_t *sess_host_by_id(sessions_t *ss, const char *id, size_t len)
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
        session_t *one = room ? NULL : sess_host_by_id(ss, t->except[i].p, t->except[i].len);
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
        session_t *one = room ? NULL : sess_host_by_id(ss, t->rooms[i].p, t->rooms[i].len);
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

static void host_send_one(session_t *s, void *arg)
{
    host_send_t *b = arg;
    if (b->offset && !sess_recovery_gate(s, *b->offset))
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
} host_list_t;

static void host_list_add(session_t *s, void *arg)
{
    host_list_t *l = arg;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = s;
}

static void host_each(void *ctx, const adapter_target_t *t, void (*fn)(void *sock, void *arg),
                      void *arg)
{
    host_list_t l = {0};
    host_match(ctx, t, host_list_add, &l);
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

static void host_describe(void *ctx, void *sock, buf_t *out)
{
    (void)ctx;
    session_t *s = sock;
    /* auth: the main namespace's CONNECT payload, as Node keeps it */
    buf_printf(out, "{\"id\":\"%s\",\"handshake\":{%s,\"auth\":%s},\"rooms\":[\"%s\"", s->sio_sid,
               s->handshake, s->auth[0] ? s->auth[0] : "{}", s->sio_sid);
    rooms_sock_foreach(&s->rooms, host_describe_room, out);
    buf_puts(out, "],\"data\":{}}");
}

static void host_join(void *ctx, void *sock, const char *room, size_t len)
{
    sessions_t *ss = ctx;
    session_t *s = sock;
    int rc = rooms_join(ss->rooms, &s->rooms, s, room, len);
    if (rc == 0)
        sess_recovery_joined(s, room, len);
    sess_host_joined(ss, rc, room, len);
    STATS_SET(ss->stats->rooms, rooms_count(ss->rooms));
}

static void host_leave(void *ctx, void *sock, const char *room, size_t len)
{
    sessions_t *ss = ctx;
    session_t *s = sock;
    sess_host_left(ss, rooms_leave(ss->rooms, &s->rooms, room, len), room, len);
    STATS_SET(ss->stats->rooms, rooms_count(ss->rooms));
}

static void host_disconnect(void *ctx, void *sock, bool close)
{
    (void)ctx;
    session_t *s = sock;
    if (!main_connected(s))
        return;
    sess_send_packet(s, "41", 2);
    sess_nsp_disconnect(s, 0);
    if (close)
        sess_end(s, false);
}

typedef struct host_rooms_walk {
    strmap_t *seen;
    void (*fn)(const char *room, size_t len, void *arg);
    void *arg;
} host_rooms_walk_t;

static void host_room_once(const char *name, size_t len, void *arg)
{
    host_rooms_walk_t *w = arg;
    if (strmap_get(w->seen, name, len))
        return;
    strmap_put(w->seen, name, len, w);
    w->fn(name, len, w->arg);
}

static void host_rooms(void *ctx, void (*fn)(const char *room, size_t len, void *arg), void *arg)
{
    sessions_t *ss = ctx;
    host_rooms_walk_t w = {strmap_new(), fn, arg};
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
    return rooms_find(ss->rooms, room, len) || sess_host_by_id(ss, room, len);
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
