/* member: see member.h. */
#include "worker/cluster/member.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/xalloc.h"

#define ACK_DEFAULT_TIMEOUT_MS 10000
#define ACK_GRACE_MS 1000
#define ACK_ID_MAX 64 /* longest request id or requester uid whose acks are forwarded */

/* A cluster broadcast whose client acks are still forwarded to its requester. */
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
    char uid[ACK_ID_MAX]; /* the requester's uid (its response channel) */
    size_t nsockets;      /* the recipients: their socket ids sorted, and whether each answered */
    bool *answered;       /* nsockets entries, after the ids */
    char ids[][IDS_SID_LEN];
} pending_ack_t;

struct member {
    uv_loop_t *loop;
    adapter_host_t host;
    stats_worker_t *stats;
    member_respond_fn respond;
    void *respond_arg;
    uint64_t dropped;
    uint64_t next_ack_id;
    pending_ack_t *acks;
    uv_timer_t ack_timer;
    buf_t text;   /* Engine.IO text of an incoming broadcast */
    buf_t body;   /* JSON body of a response */
    buf_t atts;   /* attachments of an incoming binary broadcast */
    buf_t ackers; /* socket ids of a broadcast with acks, IDS_SID_LEN bytes each */
    void (*done)(void *arg);
    void *done_arg;
};

member_t *member_new(uv_loop_t *loop, const adapter_host_t *host, stats_worker_t *stats,
                     member_respond_fn respond, void *arg)
{
    member_t *mb = xcalloc(1, sizeof(*mb));
    mb->loop = loop;
    mb->host = *host;
    if (mb->host.nnsp == 0) { /* a host that names none serves "/" */
        static const adapter_str_t main_nsp = {"/", 1};
        mb->host.nsps = &main_nsp;
        mb->host.nnsp = 1;
    }
    mb->stats = stats;
    mb->respond = respond;
    mb->respond_arg = arg;
    mb->next_ack_id = ADAPTER_ACK_ID_BASE;
    buf_init(&mb->text);
    buf_init(&mb->body);
    buf_init(&mb->atts);
    buf_init(&mb->ackers);
    uv_timer_init(loop, &mb->ack_timer);
    mb->ack_timer.data = mb;
    return mb;
}

const adapter_host_t *member_host(const member_t *mb)
{
    return &mb->host;
}

void member_drop(member_t *mb, const char *why, const char *from, size_t len)
{
    /* one line for the first drop, then one per power of two: visible, never a flood */
    mb->dropped++;
    if ((mb->dropped & (mb->dropped - 1)) == 0)
        LOG_WARN("adapter: dropped a message on %.*s: %s (%llu dropped so far)", (int)len, from,
                 why, (unsigned long long)mb->dropped);
}

const char *member_decode_error(int rc)
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

static void respond(member_t *mb, unsigned nsp, const adapter_msg_t *m, adapter_resp_t kind,
                    const char *body, size_t body_len, uint64_t count)
{
    mb->respond(mb->respond_arg, nsp, m, kind, body, body_len, count);
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

static void sweep_acks(member_t *mb)
{
    uint64_t now = uv_now(mb->loop);
    for (pending_ack_t **pp = &mb->acks; *pp;) {
        pending_ack_t *p = *pp;
        if (p->remaining == 0 || now >= p->deadline) {
            *pp = p->next;
            free(p);
        } else {
            pp = &p->next;
        }
    }
    if (!mb->acks)
        uv_timer_stop(&mb->ack_timer);
}

static void on_ack_timer(uv_timer_t *t)
{
    sweep_acks(t->data);
}

static int cmp_id(const void *x, const void *y)
{
    return memcmp(x, y, IDS_SID_LEN);
}

/* Remembers who may answer ack_id: the sockets listed in mb->ackers (one allocation). */
static void track_acks(member_t *mb, unsigned nsp, const adapter_msg_t *m, uint64_t ack_id)
{
    if (m->request_id.len > ACK_ID_MAX || m->uid.len > ACK_ID_MAX)
        return;
    size_t n = mb->ackers.len / IDS_SID_LEN;
    pending_ack_t *p = xcalloc(1, sizeof(*p) + n * (IDS_SID_LEN + sizeof(bool)));
    memcpy(p->ids, mb->ackers.data, n * IDS_SID_LEN);
    qsort(p->ids, n, IDS_SID_LEN, cmp_id);
    p->answered = (bool *)(p->ids + n);
    p->nsockets = n;
    p->ack_id = ack_id;
    p->nsp = nsp;
    p->remaining = n;
    uint64_t timeout = m->timeout_ms ? m->timeout_ms : ACK_DEFAULT_TIMEOUT_MS;
    p->deadline = uv_now(mb->loop) + timeout + ACK_GRACE_MS;
    memcpy(p->rid, m->request_id.p, m->request_id.len);
    p->rid_len = m->request_id.len;
    if (m->uid.len) /* a message without uid has {NULL, 0}: memcpy from NULL is UB even for 0 */
        memcpy(p->uid, m->uid.p, m->uid.len);
    p->uid_len = m->uid.len;
    p->next = mb->acks;
    mb->acks = p;
    if (!uv_is_active((uv_handle_t *)&mb->ack_timer))
        uv_timer_start(&mb->ack_timer, on_ack_timer, 1000, 1000);
}

static void add_acker(void *sock, void *arg)
{
    member_t *mb = arg;
    const char *id = mb->host.id(mb->host.ctx, sock);
    if (strlen(id) == IDS_SID_LEN)
        buf_append(&mb->ackers, id, IDS_SID_LEN);
}

/* Node's ClusterAdapter adds an offset to EVENT packets without an ack id that are not volatile
 * (addOffsetIfNecessary). */
static bool takes_offset(const adapter_msg_t *m)
{
    return m->packet_type == 2 && !m->has_id && !m->flag_volatile && m->request_id.len == 0;
}

static void broadcast(member_t *mb, unsigned nsp, const adapter_msg_t *m,
                      const adapter_str_t *offset, const char *from, size_t from_len)
{
    bool with_ack = m->request_id.len > 0;
    uint64_t ack_id = mb->next_ack_id;
    if (offset && !takes_offset(m))
        offset = NULL;
    unsigned natt = 0;
    buf_reset(&mb->text);
    buf_reset(&mb->atts);
    int rc = with_ack ? adapter_msg_sio_text_ack(&mb->text, m, ack_id)
             : offset ? adapter_msg_sio_text_offset(&mb->text, m, offset->p, offset->len)
                      : adapter_msg_sio_text(&mb->text, m);
    if (rc == -ENOTSUP) {
        /* bin values in its data: the text packet and its attachments */
        buf_reset(&mb->text);
        rc = offset ? adapter_msg_sio_binary_offset(&mb->text, &mb->atts, m, offset->p, offset->len,
                                                    &natt)
                    : adapter_msg_sio_binary(&mb->text, &mb->atts, m, with_ack ? &ack_id : NULL,
                                             &natt);
    }
    if (rc) {
        member_drop(mb,
                    rc == -ENOTSUP ? "binary content of this kind is not supported"
                                   : "undeliverable packet",
                    from, from_len);
        if (with_ack)
            respond(mb, nsp, m, ADAPTER_RESP_CLIENT_COUNT, NULL, 0, 0);
        return;
    }
    fanout_packet_t pk;
    fanout_packet_cluster(&pk, mb->text.data, mb->text.len, mb->atts.data, mb->atts.len, natt);
    adapter_target_t t;
    target_of(m, &t);
    t.nsp = nsp;
    /* the sockets the packet reaches: the same set, listed before it makes them busy */
    buf_reset(&mb->ackers);
    if (with_ack)
        mb->host.each(mb->host.ctx, &t, add_acker, mb);
    size_t n = mb->host.broadcast(mb->host.ctx, &t, &pk);
    fanout_packet_release(&pk);
    STATS_ADD(mb->stats->adapter_in, 1);
    if (!with_ack)
        return;
    mb->next_ack_id++;
    respond(mb, nsp, m, ADAPTER_RESP_CLIENT_COUNT, NULL, 0, n);
    if (n)
        track_acks(mb, nsp, m, ack_id);
}

adapter_ack_t member_client_ack(member_t *mb, const char *sock_id, uint64_t ack_id,
                                const char *args_json, size_t args_len)
{
    if (ack_id < ADAPTER_ACK_ID_BASE)
        return ADAPTER_ACK_HOST;
    pending_ack_t *p = mb->acks;
    while (p && p->ack_id != ack_id)
        p = p->next;
    if (!p)
        return ack_id < mb->next_ack_id ? ADAPTER_ACK_DROPPED /* a late ack of ours */
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
    respond(mb, p->nsp, &m, ADAPTER_RESP_BROADCAST_ACK, has ? first.p : NULL, has ? first.len : 0,
            0);
    return ADAPTER_ACK_FORWARDED;
}

/* ---- requests ---- */

typedef struct walk {
    member_t *mb;
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
    const char *id = w->mb->host.id(w->mb->host.ctx, sock);
    put_sep(w);
    json_write_string(w->out, id, strlen(id));
}

static void collect_socket(void *sock, void *arg)
{
    walk_t *w = arg;
    put_sep(w);
    w->mb->host.describe(w->mb->host.ctx, sock, w->out);
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
        w->mb->host.join(w->mb->host.ctx, sock, w->m->targets[i].p, w->m->targets[i].len);
    w->n++;
}

static void apply_leave(void *sock, void *arg)
{
    walk_t *w = arg;
    for (size_t i = 0; i < w->m->ntargets; i++)
        w->mb->host.leave(w->mb->host.ctx, sock, w->m->targets[i].p, w->m->targets[i].len);
    w->n++;
}

static void apply_disconnect(void *sock, void *arg)
{
    walk_t *w = arg;
    w->mb->host.disconnect(w->mb->host.ctx, sock, w->m->close);
    w->n++;
}

/* Collects a JSON array of ids, sockets or rooms into mb->body. */
static void collect(member_t *mb, const adapter_msg_t *m, void (*fn)(void *, void *))
{
    walk_t w = {mb, m, &mb->body, 0};
    adapter_target_t t;
    target_of(m, &t);
    t.skip_busy = false;
    buf_reset(&mb->body);
    mb->host.each(mb->host.ctx, &t, fn, &w);
    if (w.n == 0)
        buf_putc(&mb->body, '[');
    buf_putc(&mb->body, ']');
}

/* A request in another namespace: its sockets have no rooms or ids known here; answered empty
 * so that the requester does not wait, join/leave/disconnect have nothing to act on. */
static void apply_other_nsp(member_t *mb, unsigned nsp, const adapter_msg_t *m)
{
    switch (m->op) {
    case ADAPTER_OP_SOCKETS:
    case ADAPTER_OP_FETCH:
        respond(mb, nsp, m, ADAPTER_RESP_FETCH, "[]", 2, 0);
        return;
    case ADAPTER_OP_SERVER_SIDE_EMIT:
        if (m->request_id.len)
            respond(mb, nsp, m, ADAPTER_RESP_SSE, NULL, 0, 0);
        return;
    default:
        return;
    }
}

void member_apply(member_t *mb, unsigned nsp, const adapter_msg_t *m, const adapter_str_t *offset,
                  const char *from, size_t from_len)
{
    walk_t w = {mb, m, &mb->body, 0};
    adapter_target_t t;
    target_of(m, &t);
    t.skip_busy = false;
    if (m->op == ADAPTER_OP_BROADCAST) {
        broadcast(mb, nsp, m, offset, from, from_len);
        return;
    }
    if (nsp) {
        apply_other_nsp(mb, nsp, m);
        return;
    }
    switch (m->op) {
    case ADAPTER_OP_BROADCAST:
        return;
    case ADAPTER_OP_SOCKETS:
        collect(mb, m, collect_id);
        respond(mb, 0, m, ADAPTER_RESP_SOCKETS, mb->body.data, mb->body.len, 0);
        return;
    case ADAPTER_OP_FETCH:
        collect(mb, m, collect_socket);
        respond(mb, 0, m, ADAPTER_RESP_FETCH, mb->body.data, mb->body.len, 0);
        return;
    case ADAPTER_OP_ALL_ROOMS:
        buf_reset(&mb->body);
        mb->host.rooms(mb->host.ctx, collect_room, &w);
        if (w.n == 0)
            buf_putc(&mb->body, '[');
        buf_putc(&mb->body, ']');
        respond(mb, 0, m, ADAPTER_RESP_ALL_ROOMS, mb->body.data, mb->body.len, 0);
        return;
    case ADAPTER_OP_JOIN:
    case ADAPTER_OP_LEAVE:
    case ADAPTER_OP_DISCONNECT:
        mb->host.each(mb->host.ctx, &t,
                      m->op == ADAPTER_OP_JOIN    ? apply_join
                      : m->op == ADAPTER_OP_LEAVE ? apply_leave
                                                  : apply_disconnect,
                      &w);
        /* the legacy form names one socket and is answered by the server that has it */
        if (m->legacy && w.n && m->request_id.len)
            respond(mb, 0, m, ADAPTER_RESP_SOCKETS, NULL, 0, 0);
        return;
    case ADAPTER_OP_SERVER_SIDE_EMIT:
        /* no server-side handlers here: acknowledge with no value so the caller never waits */
        if (m->request_id.len)
            respond(mb, 0, m, ADAPTER_RESP_SSE, NULL, 0, 0);
        return;
    case ADAPTER_OP_NONE:
        return;
    }
}

/* ---- lifecycle ---- */

static void on_timer_closed(uv_handle_t *h)
{
    member_t *mb = h->data;
    void (*done)(void *) = mb->done;
    void *done_arg = mb->done_arg;
    while (mb->acks) {
        pending_ack_t *p = mb->acks;
        mb->acks = p->next;
        free(p);
    }
    buf_free(&mb->text);
    buf_free(&mb->body);
    buf_free(&mb->atts);
    buf_free(&mb->ackers);
    free(mb);
    if (done)
        done(done_arg);
}

void member_close(member_t *mb, void (*done)(void *arg), void *arg)
{
    mb->done = done;
    mb->done_arg = arg;
    uv_close((uv_handle_t *)&mb->ack_timer, on_timer_closed);
}
