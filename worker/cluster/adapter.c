/* adapter: see adapter.h. */
#include "worker/cluster/adapter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/redis/redis_client.h"
#include "common/xalloc.h"

#define UID_LEN 16
#define ACK_DEFAULT_TIMEOUT_MS 10000
#define ACK_GRACE_MS 1000
#define ACK_ID_MAX 64 /* longest request id or requester uid whose acks are forwarded */

/* A cluster broadcast whose client acks are still forwarded to its requester: each socket it
 * reached may answer once; nobody else may. */
typedef struct pending_ack {
    struct pending_ack *next;
    uint64_t ack_id;
    unsigned nsp;      /* the namespace of the broadcast (its responses' channel) */
    uint64_t deadline; /* loop time */
    size_t remaining;  /* clients that may still answer */
    size_t rid_len, uid_len;
    char rid[ACK_ID_MAX];
    char uid[ACK_ID_MAX]; /* sharded: the requester's uid (its response channel); classic: unused */
    size_t nsockets;      /* the recipients: their socket ids sorted, and whether each answered */
    bool *answered;       /* nsockets entries, after the ids */
    char ids[][IDS_SID_LEN];
} pending_ack_t;

struct adapter {
    uv_loop_t *loop;
    const cfg_t *cfg;
    adapter_mode_t mode;
    adapter_host_t host;
    stats_worker_t *stats;
    redis_client_t *sub; /* every subscription, kept across reconnects and slot moves */
    redis_client_t *pub; /* responses (NULL in private mode) */
    char prefix[160];    /* "<key>#/#" */
    size_t prefix_len;
    size_t key_len;          /* "<key>#": what every namespace's channels start with */
    char request_chan[176];  /* classic "<key>-request#/#" */
    char response_chan[176]; /* classic "<key>-response#/#" */
    char uid[UID_LEN + 1];
    adapter_uid_fn is_sibling; /* see adapter_set_sibling_filter */
    void *sibling_arg;
    uint64_t dropped;
    uint64_t next_ack_id;
    pending_ack_t *acks;
    buf_t ackers; /* socket ids of a broadcast with acks, IDS_SID_LEN bytes each */
    uv_timer_t ack_timer;
    buf_t msg;     /* encoded outgoing message */
    buf_t chan;    /* outgoing channel name */
    buf_t text;    /* Engine.IO text of an incoming broadcast */
    buf_t scratch; /* decoded strings of an incoming JSON message */
    buf_t body;    /* JSON body of a response */
    buf_t atts;    /* attachments of an incoming binary broadcast */
    bool closing;
    size_t open_parts;
    void (*done)(void *arg);
    void *done_arg;
};

static void drop(adapter_t *a, const char *why, const char *chan, size_t len)
{
    /* one line for the first drop, then one per power of two: visible, never a flood */
    a->dropped++;
    if ((a->dropped & (a->dropped - 1)) == 0)
        LOG_WARN("adapter: dropped a message on %.*s: %s (%llu dropped so far)", (int)len, chan,
                 why, (unsigned long long)a->dropped);
}

static const char *decode_error(int rc)
{
    switch (rc) {
    case -E2BIG:
        return "too many rooms";
    case -ENOTSUP:
        return "binary content is not supported";
    default:
        return "malformed message";
    }
}

/* ---- outgoing ---- */

static void channel_for(adapter_t *a, const char *room, size_t len)
{
    buf_reset(&a->chan);
    buf_append(&a->chan, a->prefix, a->prefix_len);
    if (len == 0)
        return; /* the main channel: "<key>#/#" */
    buf_append(&a->chan, room, len);
    buf_putc(&a->chan, '#');
}

/* "<key>#<nsp>#" of namespace i then, unless len is 0, "<room>#", into a->chan. */
static void nsp_channel_for(adapter_t *a, unsigned i, const char *room, size_t len)
{
    if (i == 0) {
        channel_for(a, room, len);
        return;
    }
    const adapter_str_t *n = &a->host.nsps[i];
    buf_reset(&a->chan);
    buf_append(&a->chan, a->prefix, a->key_len);
    buf_append(&a->chan, n->p, n->len);
    buf_putc(&a->chan, '#');
    if (len == 0)
        return;
    buf_append(&a->chan, room, len);
    buf_putc(&a->chan, '#');
}

/* The namespace whose channels `chan` belongs to ("<key>#<nsp>#..."), or -1; *rest = the offset
 * just past "<key>#<nsp>#". */
static int channel_nsp(const adapter_t *a, const char *chan, size_t len, size_t *rest)
{
    if (len < a->key_len || memcmp(chan, a->prefix, a->key_len) != 0)
        return -1;
    for (size_t i = 0; i < a->host.nnsp; i++) {
        const adapter_str_t *n = &a->host.nsps[i];
        size_t end = a->key_len + n->len;
        if (len > end && memcmp(chan + a->key_len, n->p, n->len) == 0 && chan[end] == '#') {
            *rest = end + 1;
            return (int)i;
        }
    }
    return -1;
}

/* Sends the response in a->msg to the requester (classic: the response channel). */
static void send_response(adapter_t *a, unsigned nsp, const char *req_uid, size_t req_uid_len)
{
    const char *argv[3];
    size_t lens[3];
    if (a->mode == ADAPTER_MODE_SHARDED) {
        nsp_channel_for(a, nsp, req_uid, req_uid_len);
        argv[0] = "SPUBLISH";
        argv[1] = a->chan.data;
        lens[1] = a->chan.len;
    } else {
        argv[0] = "PUBLISH";
        argv[1] = a->response_chan;
        lens[1] = strlen(a->response_chan);
    }
    lens[0] = strlen(argv[0]);
    argv[2] = a->msg.data;
    lens[2] = a->msg.len;
    if (redis_client_command(a->pub, argv[1], lens[1], NULL, NULL, 3, argv, lens))
        LOG_WARN("adapter: cannot send a response: Redis not connected");
}

/* Answers m in its namespace (index nsp). */
static void respond_in(adapter_t *a, unsigned nsp, const adapter_msg_t *m, adapter_resp_t kind,
                       const char *body, size_t body_len, uint64_t count)
{
    bool sharded = a->mode == ADAPTER_MODE_SHARDED;
    const adapter_str_t *n = &a->host.nsps[nsp];
    buf_reset(&a->msg);
    int rc = adapter_msg_encode_response(&a->msg, kind, sharded, a->uid, UID_LEN, n->p, n->len,
                                         &m->request_id, body, body_len, count);
    if (rc) {
        LOG_WARN("adapter: cannot encode a response: %s", strerror(-rc));
        return;
    }
    send_response(a, nsp, m->uid.p, m->uid.len);
}

static void respond(adapter_t *a, const adapter_msg_t *m, adapter_resp_t kind, const char *body,
                    size_t body_len, uint64_t count)
{
    respond_in(a, 0, m, kind, body, body_len, count);
}

bool adapter_wants_mpack(const adapter_t *a)
{
    return a->mode != ADAPTER_MODE_SHARDED;
}

int adapter_publish(adapter_t *a, adapter_send_fn send, void *send_arg, const char *room,
                    size_t room_len, const adapter_data_t *data)
{
    adapter_str_t r = {room, room_len};
    buf_reset(&a->msg);
    bool sharded = a->mode == ADAPTER_MODE_SHARDED;
    int rc;
    if (sharded)
        rc = adapter_msg_encode_cluster_broadcast(&a->msg, a->uid, UID_LEN, "/", 1, data->json,
                                                  data->json_len, &r, 1);
    else if (data->mpack)
        rc = adapter_msg_encode_broadcast_mpack(&a->msg, a->uid, UID_LEN, "/", 1, data->mpack,
                                                data->mpack_len, &r, 1);
    else
        rc = adapter_msg_encode_broadcast(&a->msg, a->uid, UID_LEN, "/", 1, data->json,
                                          data->json_len, &r, 1);
    if (rc)
        return rc;
    /* Node publishers send 20-character rooms (socket ids) on the main sharded channel */
    bool main_chan = sharded && room_len == IDS_SID_LEN;
    channel_for(a, room, main_chan ? 0 : room_len);
    const char *argv[] = {sharded ? "SPUBLISH" : "PUBLISH", a->chan.data, a->msg.data};
    size_t lens[] = {strlen(argv[0]), a->chan.len, a->msg.len};
    rc = send(3, argv, lens, send_arg);
    if (rc == 0)
        STATS_ADD(a->stats->adapter_out_bytes, a->msg.len);
    return rc;
}

/* ---- subscriptions ---- */

static bool dynamic_room(const adapter_t *a, size_t len)
{
    return a->mode == ADAPTER_MODE_SHARDED && len != IDS_SID_LEN && len > 0;
}

static void room_subscription(adapter_t *a, bool on, const char *room, size_t len)
{
    if (!dynamic_room(a, len))
        return;
    channel_for(a, room, len);
    if (on)
        redis_client_subscribe(a->sub, REDIS_SUB_SHARD, a->chan.data, a->chan.len);
    else
        redis_client_unsubscribe(a->sub, REDIS_SUB_SHARD, a->chan.data, a->chan.len);
}

void adapter_room_created(adapter_t *a, const char *room, size_t len)
{
    if (a && !a->closing)
        room_subscription(a, true, room, len);
}

void adapter_room_deleted(adapter_t *a, const char *room, size_t len)
{
    if (a && !a->closing)
        room_subscription(a, false, room, len);
}

static void subscribe_room(const char *room, size_t len, void *arg)
{
    room_subscription(arg, true, room, len);
}

static void want(adapter_t *a, redis_sub_kind_t kind, const char *ch)
{
    redis_client_subscribe(a->sub, kind, ch, strlen(ch));
}

/* Once: the client keeps them across reconnects, and moves shard channels with their slot. */
static void subscribe_all(adapter_t *a)
{
    if (a->mode == ADAPTER_MODE_SHARDED) {
        char own[sizeof(a->prefix) + UID_LEN + 1];
        snprintf(own, sizeof(own), "%s%s#", a->prefix, a->uid);
        want(a, REDIS_SUB_SHARD, a->prefix);
        want(a, REDIS_SUB_SHARD, own);
        a->host.rooms(a->host.ctx, subscribe_room, a);
        for (unsigned i = 1; i < a->host.nnsp; i++) {
            nsp_channel_for(a, i, NULL, 0);
            want(a, REDIS_SUB_SHARD, a->chan.data);
        }
        return;
    }
    for (unsigned i = 0; i < a->host.nnsp; i++) {
        nsp_channel_for(a, i, NULL, 0);
        buf_putc(&a->chan, '*');
        want(a, REDIS_SUB_PATTERN, a->chan.data);
    }
    if (a->mode == ADAPTER_MODE_CLASSIC)
        want(a, REDIS_SUB_CHANNEL, a->request_chan);
}

/* ---- broadcasts ---- */

static void target_of(const adapter_msg_t *m, adapter_target_t *t)
{
    t->nsp = 0;
    t->rooms = m->rooms;
    t->nrooms = m->nrooms;
    t->except = m->except;
    t->nexcept = m->nexcept;
    t->skip_busy = m->flag_volatile;
}

static void sweep_acks(adapter_t *a)
{
    uint64_t now = uv_now(a->loop);
    for (pending_ack_t **pp = &a->acks; *pp;) {
        pending_ack_t *p = *pp;
        if (p->remaining == 0 || now >= p->deadline) {
            *pp = p->next;
            free(p);
        } else {
            pp = &p->next;
        }
    }
    if (!a->acks)
        uv_timer_stop(&a->ack_timer);
}

static void on_ack_timer(uv_timer_t *t)
{
    sweep_acks(t->data);
}

static int cmp_id(const void *x, const void *y)
{
    return memcmp(x, y, IDS_SID_LEN);
}

/* Remembers who may answer ack_id: the sockets listed in a->ackers (one allocation). */
static void track_acks(adapter_t *a, unsigned nsp, const adapter_msg_t *m, uint64_t ack_id)
{
    if (m->request_id.len > ACK_ID_MAX || m->uid.len > ACK_ID_MAX)
        return;
    size_t n = a->ackers.len / IDS_SID_LEN;
    pending_ack_t *p = xcalloc(1, sizeof(*p) + n * (IDS_SID_LEN + sizeof(bool)));
    memcpy(p->ids, a->ackers.data, n * IDS_SID_LEN);
    qsort(p->ids, n, IDS_SID_LEN, cmp_id);
    p->answered = (bool *)(p->ids + n);
    p->nsockets = n;
    p->ack_id = ack_id;
    p->nsp = nsp;
    p->remaining = n;
    uint64_t timeout = m->timeout_ms ? m->timeout_ms : ACK_DEFAULT_TIMEOUT_MS;
    p->deadline = uv_now(a->loop) + timeout + ACK_GRACE_MS;
    memcpy(p->rid, m->request_id.p, m->request_id.len);
    p->rid_len = m->request_id.len;
    memcpy(p->uid, m->uid.p, m->uid.len);
    p->uid_len = m->uid.len;
    p->next = a->acks;
    a->acks = p;
    if (!uv_is_active((uv_handle_t *)&a->ack_timer))
        uv_timer_start(&a->ack_timer, on_ack_timer, 1000, 1000);
}

static void add_acker(void *sock, void *arg)
{
    adapter_t *a = arg;
    const char *id = a->host.id(a->host.ctx, sock);
    if (id && strlen(id) == IDS_SID_LEN)
        buf_append(&a->ackers, id, IDS_SID_LEN);
}

static void broadcast(adapter_t *a, unsigned nsp, const adapter_msg_t *m, const char *chan,
                      size_t chan_len)
{
    bool with_ack = m->request_id.len > 0;
    uint64_t ack_id = a->next_ack_id;
    unsigned natt = 0;
    buf_reset(&a->text);
    buf_reset(&a->atts);
    int rc = with_ack ? adapter_msg_sio_text_ack(&a->text, m, ack_id)
                      : adapter_msg_sio_text(&a->text, m);
    if (rc == -ENOTSUP) {
        /* bin values in its data: the text packet and its attachments */
        buf_reset(&a->text);
        rc = adapter_msg_sio_binary(&a->text, &a->atts, m, with_ack ? &ack_id : NULL, &natt);
    }
    if (rc) {
        drop(a,
             rc == -ENOTSUP ? "binary content of this kind is not supported"
                            : "undeliverable packet",
             chan, chan_len);
        if (with_ack)
            respond_in(a, nsp, m, ADAPTER_RESP_CLIENT_COUNT, NULL, 0, 0);
        return;
    }
    fanout_packet_t pk;
    fanout_packet_cluster(&pk, a->text.data, a->text.len, a->atts.data, a->atts.len, natt);
    adapter_target_t t;
    target_of(m, &t);
    t.nsp = nsp;
    /* the sockets the packet reaches: the same set, listed before it makes them busy */
    buf_reset(&a->ackers);
    if (with_ack)
        a->host.each(a->host.ctx, &t, add_acker, a);
    size_t n = a->host.broadcast(a->host.ctx, &t, &pk);
    fanout_packet_release(&pk);
    STATS_ADD(a->stats->adapter_in, 1);
    if (!with_ack)
        return;
    a->next_ack_id++;
    respond_in(a, nsp, m, ADAPTER_RESP_CLIENT_COUNT, NULL, 0, n);
    if (n)
        track_acks(a, nsp, m, ack_id);
}

adapter_ack_t adapter_client_ack(adapter_t *a, const char *sock_id, uint64_t ack_id,
                                 const char *args_json, size_t args_len)
{
    if (!a || ack_id < ADAPTER_ACK_ID_BASE)
        return ADAPTER_ACK_HOST;
    pending_ack_t *p = a->acks;
    while (p && p->ack_id != ack_id)
        p = p->next;
    if (!p)
        return ack_id < a->next_ack_id ? ADAPTER_ACK_DROPPED /* a late ack of ours */
                                       : ADAPTER_ACK_HOST;
    const char(*hit)[IDS_SID_LEN] = sock_id && strlen(sock_id) == IDS_SID_LEN
                                        ? bsearch(sock_id, p->ids, p->nsockets, IDS_SID_LEN, cmp_id)
                                        : NULL;
    if (!hit || p->answered[hit - p->ids])
        return ADAPTER_ACK_DROPPED; /* not a recipient, or it answered already */
    p->answered[hit - p->ids] = true;
    p->remaining--;
    json_span_t first;
    size_t n = 0;
    int rc = json_array_items(args_json, args_len, &first, 1, &n);
    adapter_msg_t m = {0};
    m.request_id.p = p->rid;
    m.request_id.len = p->rid_len;
    m.uid.p = p->uid;
    m.uid.len = p->uid_len;
    bool has = (rc == 0 || rc == -E2BIG) && n > 0;
    respond_in(a, p->nsp, &m, ADAPTER_RESP_BROADCAST_ACK, has ? first.p : NULL, has ? first.len : 0,
               0);
    return ADAPTER_ACK_FORWARDED;
}

/* ---- requests ---- */

typedef struct walk {
    adapter_t *a;
    const adapter_msg_t *m;
    buf_t *out;
    size_t n;
} walk_t;

static void put_sep(walk_t *w)
{
    buf_putc(w->out, w->n++ ? ',' : '[');
}

static void collect_id(void *sock, void *arg)
{
    walk_t *w = arg;
    const char *id = w->a->host.id(w->a->host.ctx, sock);
    put_sep(w);
    json_write_string(w->out, id, strlen(id));
}

static void collect_socket(void *sock, void *arg)
{
    walk_t *w = arg;
    put_sep(w);
    w->a->host.describe(w->a->host.ctx, sock, w->out);
}

static void collect_room(const char *room, size_t len, void *arg)
{
    walk_t *w = arg;
    put_sep(w);
    json_write_string(w->out, room, len);
}

static void apply_join(void *sock, void *arg)
{
    walk_t *w = arg;
    for (size_t i = 0; i < w->m->ntargets; i++)
        w->a->host.join(w->a->host.ctx, sock, w->m->targets[i].p, w->m->targets[i].len);
    w->n++;
}

static void apply_leave(void *sock, void *arg)
{
    walk_t *w = arg;
    for (size_t i = 0; i < w->m->ntargets; i++)
        w->a->host.leave(w->a->host.ctx, sock, w->m->targets[i].p, w->m->targets[i].len);
    w->n++;
}

static void apply_disconnect(void *sock, void *arg)
{
    walk_t *w = arg;
    w->a->host.disconnect(w->a->host.ctx, sock, w->m->close);
    w->n++;
}

/* Collects a JSON array of ids, sockets or rooms into a->body. */
static void collect(adapter_t *a, const adapter_msg_t *m, void (*fn)(void *, void *))
{
    walk_t w = {a, m, &a->body, 0};
    adapter_target_t t;
    target_of(m, &t);
    t.skip_busy = false;
    buf_reset(&a->body);
    a->host.each(a->host.ctx, &t, fn, &w);
    if (w.n == 0)
        buf_putc(&a->body, '[');
    buf_putc(&a->body, ']');
}

/* A request in another namespace: its sockets have no rooms or ids known here; answered empty
 * so that the requester does not wait, join/leave/disconnect have nothing to act on. */
static void apply_other_nsp(adapter_t *a, unsigned nsp, const adapter_msg_t *m)
{
    switch (m->op) {
    case ADAPTER_OP_SOCKETS:
    case ADAPTER_OP_FETCH:
        respond_in(a, nsp, m, ADAPTER_RESP_FETCH, "[]", 2, 0);
        return;
    case ADAPTER_OP_SERVER_SIDE_EMIT:
        if (m->request_id.len)
            respond_in(a, nsp, m, ADAPTER_RESP_SSE, NULL, 0, 0);
        return;
    default:
        return;
    }
}

static void apply(adapter_t *a, unsigned nsp, const adapter_msg_t *m, const char *chan,
                  size_t chan_len)
{
    walk_t w = {a, m, &a->body, 0};
    adapter_target_t t;
    target_of(m, &t);
    t.skip_busy = false;
    if (m->op == ADAPTER_OP_BROADCAST) {
        broadcast(a, nsp, m, chan, chan_len);
        return;
    }
    if (nsp) {
        apply_other_nsp(a, nsp, m);
        return;
    }
    switch (m->op) {
    case ADAPTER_OP_BROADCAST:
        return;
    case ADAPTER_OP_SOCKETS:
        collect(a, m, collect_id);
        respond(a, m, ADAPTER_RESP_SOCKETS, a->body.data, a->body.len, 0);
        return;
    case ADAPTER_OP_FETCH:
        collect(a, m, collect_socket);
        respond(a, m, ADAPTER_RESP_FETCH, a->body.data, a->body.len, 0);
        return;
    case ADAPTER_OP_ALL_ROOMS:
        buf_reset(&a->body);
        a->host.rooms(a->host.ctx, collect_room, &w);
        if (w.n == 0)
            buf_putc(&a->body, '[');
        buf_putc(&a->body, ']');
        respond(a, m, ADAPTER_RESP_ALL_ROOMS, a->body.data, a->body.len, 0);
        return;
    case ADAPTER_OP_JOIN:
    case ADAPTER_OP_LEAVE:
    case ADAPTER_OP_DISCONNECT:
        a->host.each(a->host.ctx, &t,
                     m->op == ADAPTER_OP_JOIN    ? apply_join
                     : m->op == ADAPTER_OP_LEAVE ? apply_leave
                                                 : apply_disconnect,
                     &w);
        /* the legacy form names one socket and is answered by the server that has it */
        if (m->legacy && w.n && m->request_id.len)
            respond(a, m, ADAPTER_RESP_SOCKETS, NULL, 0, 0);
        return;
    case ADAPTER_OP_SERVER_SIDE_EMIT:
        /* no server-side handlers here: acknowledge with no value so the caller never waits */
        if (m->request_id.len)
            respond(a, m, ADAPTER_RESP_SSE, NULL, 0, 0);
        return;
    case ADAPTER_OP_NONE:
        return;
    }
}

/* ---- incoming ---- */

static bool is_main_nsp(const adapter_msg_t *m)
{
    return m->nsp.len == 1 && m->nsp.p[0] == '/';
}

/* The message is for namespace i (the channel's): Node drops the others. */
static bool in_nsp(const adapter_t *a, unsigned i, const adapter_msg_t *m)
{
    const adapter_str_t *n = &a->host.nsps[i];
    return m->nsp.len == n->len && memcmp(m->nsp.p, n->p, n->len) == 0;
}

static bool is_own(const adapter_t *a, const adapter_str_t *uid)
{
    return uid->len == UID_LEN && memcmp(uid->p, a->uid, UID_LEN) == 0;
}

/* A broadcast a sibling worker also handed us over local IPC. */
static bool from_sibling(const adapter_t *a, const adapter_str_t *uid)
{
    return a->is_sibling && a->is_sibling(uid->p, uid->len, a->sibling_arg);
}

static bool own_uid(const adapter_t *a, const adapter_msg_t *m)
{
    return is_own(a, &m->uid);
}

static bool sibling_uid(const adapter_t *a, const adapter_msg_t *m)
{
    return from_sibling(a, &m->uid);
}

static void on_classic_broadcast(adapter_t *a, const char *chan, size_t chan_len,
                                 const uint8_t *msg, size_t msg_len)
{
    size_t rest = 0;
    int nsp = channel_nsp(a, chan, chan_len, &rest);
    if (nsp < 0)
        return; /* a namespace not served here */
    const char *room = chan + rest;
    size_t room_len = chan_len - rest;
    if (room_len > 0) {
        if (room[room_len - 1] != '#')
            return; /* not a channel of this namespace ("#/#x" for "#/#x#") */
        room_len--;
        if (nsp || !a->host.has_room(a->host.ctx, room, room_len))
            return; /* nobody here is in that room (other namespaces have none) */
    }
    /* this server's own broadcasts (every entry read here) are dropped before decoding */
    adapter_str_t uid;
    bool peeked = adapter_msg_peek_broadcast_uid(msg, msg_len, &uid) == 0;
    if (peeked && (is_own(a, &uid) || from_sibling(a, &uid)))
        return;
    adapter_msg_t m;
    int rc = adapter_msg_decode_broadcast(msg, msg_len, &m);
    if (rc) {
        drop(a, rc == -E2BIG ? "too many rooms" : "malformed msgpack", chan, chan_len);
        return;
    }
    if ((!peeked && (own_uid(a, &m) || sibling_uid(a, &m))) || !in_nsp(a, (unsigned)nsp, &m))
        return; /* our own or a sibling's publication (already delivered), or another namespace */
    broadcast(a, (unsigned)nsp, &m, chan, chan_len);
}

static void on_classic_request(adapter_t *a, const char *chan, size_t chan_len, const uint8_t *msg,
                               size_t msg_len)
{
    adapter_msg_t m;
    int rc = adapter_msg_decode_request(msg, msg_len, &a->scratch, &m);
    if (rc) {
        drop(a, decode_error(rc), chan, chan_len);
        return;
    }
    if (m.op == ADAPTER_OP_BROADCAST && !is_main_nsp(&m))
        return;
    apply(a, 0, &m, chan, chan_len);
}

static void on_cluster(adapter_t *a, const char *chan, size_t chan_len, const uint8_t *msg,
                       size_t msg_len)
{
    size_t rest = 0;
    int nsp = channel_nsp(a, chan, chan_len, &rest);
    if (nsp < 0 || (nsp > 0 && rest != chan_len))
        return; /* other namespaces: only their main channel is subscribed */
    if (nsp == 0 && chan_len > a->prefix_len + 1 && chan[chan_len - 1] == '#') {
        const char *room = chan + a->prefix_len;
        size_t room_len = chan_len - a->prefix_len - 1;
        bool ours = room_len == UID_LEN && memcmp(room, a->uid, UID_LEN) == 0;
        if (!ours && !a->host.has_room(a->host.ctx, room, room_len))
            return; /* a room we just left: its SUNSUBSCRIBE is on its way */
    }
    /* as in classic mode, without decoding; the same test as below on the decoded message */
    adapter_str_t uid;
    int type;
    bool peeked = adapter_msg_peek_cluster(msg, msg_len, &type, &uid) == 0;
    if (peeked && (is_own(a, &uid) || (type == ADAPTER_CLUSTER_BROADCAST && from_sibling(a, &uid))))
        return;
    adapter_msg_t m;
    int rc = adapter_msg_decode_cluster(msg, msg_len, &a->scratch, &m);
    if (rc) {
        drop(a, decode_error(rc), chan, chan_len);
        return;
    }
    if ((!peeked && (own_uid(a, &m) || (m.op == ADAPTER_OP_BROADCAST && sibling_uid(a, &m)))) ||
        !in_nsp(a, (unsigned)nsp, &m))
        return;
    apply(a, (unsigned)nsp, &m, chan, chan_len);
}

void adapter_receive(adapter_t *a, const char *chan, size_t chan_len, const uint8_t *msg,
                     size_t msg_len)
{
    if (a->closing)
        return;
    STATS_ADD(a->stats->adapter_in_bytes, msg_len);
    if (a->mode == ADAPTER_MODE_SHARDED) {
        on_cluster(a, chan, chan_len, msg, msg_len);
        return;
    }
    if (a->mode == ADAPTER_MODE_CLASSIC && chan_len == strlen(a->request_chan) &&
        memcmp(chan, a->request_chan, chan_len) == 0) {
        on_classic_request(a, chan, chan_len, msg, msg_len);
        return;
    }
    on_classic_broadcast(a, chan, chan_len, msg, msg_len);
}

static void on_message(redis_client_t *c, const redis_push_t *m, void *arg)
{
    (void)c;
    if (m->type == REDIS_PUSH_MESSAGE)
        adapter_receive(arg, m->channel, m->channel_len, (const uint8_t *)m->data, m->len);
}

static void on_sub_state(redis_client_t *c, bool up, void *arg)
{
    (void)c;
    (void)arg;
    if (!up)
        LOG_WARN("adapter: pub/sub connection lost; local delivery continues, reconnecting");
}

static const redis_client_cbs_t sub_cbs = {.state = on_sub_state, .message = on_message};

/* ---- lifecycle ---- */

int adapter_new(adapter_t **out, redis_topology_t *topo, const cfg_t *cfg, adapter_mode_t mode,
                const char *prefix, const adapter_host_t *host, stats_worker_t *stats)
{
    adapter_t *a = xcalloc(1, sizeof(*a));
    uv_loop_t *loop = redis_topology_loop(topo);
    a->loop = loop;
    a->cfg = cfg;
    a->mode = mode;
    a->host = *host;
    a->stats = stats;
    a->next_ack_id = ADAPTER_ACK_ID_BASE;
    a->prefix_len = (size_t)snprintf(a->prefix, sizeof(a->prefix), "%s#/#", prefix);
    a->key_len = a->prefix_len - 2;
    if (a->host.nnsp == 0) { /* a host that names none serves "/" */
        static const adapter_str_t main_nsp = {"/", 1};
        a->host.nsps = &main_nsp;
        a->host.nnsp = 1;
    }
    snprintf(a->request_chan, sizeof(a->request_chan), "%s-request#/#", prefix);
    snprintf(a->response_chan, sizeof(a->response_chan), "%s-response#/#", prefix);
    buf_init(&a->msg);
    buf_init(&a->chan);
    buf_init(&a->text);
    buf_init(&a->scratch);
    buf_init(&a->body);
    buf_init(&a->atts);
    buf_init(&a->ackers);
    uv_timer_init(loop, &a->ack_timer);
    a->ack_timer.data = a;
    a->open_parts = 1; /* the timer */
    if (ids_random(a->uid, UID_LEN)) {
        /* nothing is connected yet: closing what exists frees everything */
        adapter_close(a, NULL, NULL);
        return -EIO;
    }
    uint64_t half[2];
    memcpy(half, a->uid, sizeof(half));
    STATS_SET(stats->adapter_uid[0], half[0]);
    STATS_SET(stats->adapter_uid[1], half[1]);
    /* Node's uids are hex in sharded mode; the id only has to be unique and channel-safe */
    if (mode != ADAPTER_MODE_PRIVATE) {
        a->pub = redis_client_new(topo, "adapter-pub", NULL, NULL);
        a->open_parts++;
        redis_client_count_reconnects(a->pub, &stats->redis_reconnects);
    }
    a->sub = redis_client_new(topo, "adapter", &sub_cbs, a);
    redis_client_count_reconnects(a->sub, &stats->redis_reconnects);
    a->open_parts++;
    subscribe_all(a);
    *out = a;
    return 0;
}

bool adapter_connected(const adapter_t *a)
{
    return redis_client_up(a->sub) && (!a->pub || redis_client_up(a->pub));
}

void adapter_set_sibling_filter(adapter_t *a, adapter_uid_fn is_sibling, void *arg)
{
    a->is_sibling = is_sibling;
    a->sibling_arg = arg;
}

const char *adapter_uid(const adapter_t *a)
{
    return a->uid;
}

static void on_part_closed(void *arg)
{
    adapter_t *a = arg;
    if (--a->open_parts)
        return;
    void (*done)(void *) = a->done;
    void *done_arg = a->done_arg;
    while (a->acks) {
        pending_ack_t *p = a->acks;
        a->acks = p->next;
        free(p);
    }
    buf_free(&a->msg);
    buf_free(&a->chan);
    buf_free(&a->text);
    buf_free(&a->scratch);
    buf_free(&a->body);
    buf_free(&a->atts);
    buf_free(&a->ackers);
    free(a);
    if (done)
        done(done_arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    on_part_closed(h->data);
}

void adapter_close(adapter_t *a, void (*done)(void *arg), void *arg)
{
    a->closing = true;
    a->done = done;
    a->done_arg = arg;
    uv_close((uv_handle_t *)&a->ack_timer, on_timer_closed);
    if (a->pub)
        redis_client_close(a->pub, on_part_closed, a);
    if (a->sub)
        redis_client_close(a->sub, on_part_closed, a);
}
