/* adapter: see adapter.h. */
#include "worker/cluster/adapter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "common/log.h"
#include "common/redis/redis_client.h"
#include "common/xalloc.h"
#include "worker/cluster/member.h"
#include "worker/cluster/room_union.h"

#define UID_LEN 16
/* The room of a relay handover marker: "<MARKER_ROOM><uid>" (see adapter_relay_mark). */
#define MARKER_ROOM "streamio-handover:"
#define MARKER_ROOM_LEN (sizeof(MARKER_ROOM) - 1)
/* Sharded mode: the message of a marker, on the channel it cuts (see adapter_relay_mark_channel),
 * "<MARKER_HEAD><uid><MARKER_TAIL>". */
#define MARKER_HEAD "{\"type\":0,\"uid\":\"\",\"nsp\":\"" MARKER_ROOM
#define MARKER_TAIL "\"}"
#define MARKER_HEAD_LEN (sizeof(MARKER_HEAD) - 1)
#define MARKER_LEN (MARKER_HEAD_LEN + UID_LEN + sizeof(MARKER_TAIL) - 1)

struct adapter {
    uv_loop_t *loop;
    redis_topology_t *topo;
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
    adapter_relay_fn relay; /* see adapter_set_relay; NULL: every worker subscribes */
    adapter_marker_fn marked;
    adapter_channel_fn channel;
    void *relay_arg;
    bool patterns_wanted; /* the broadcast subscriptions are held (see adapter_set_relay) */
    uint32_t patterns_up; /* bit i: namespace i's pattern (sharded: channel, i > 0) confirmed */
    room_union_t *rooms;  /* sharded with a relay: the server's rooms, subscribed by the holder */
    bool rooms_held;      /* ... and all of them were confirmed once since wanted (see relay_up) */
    member_t *member;     /* what is done with each message received */
    buf_t msg;            /* encoded outgoing message */
    buf_t chan;           /* outgoing channel name */
    buf_t scratch;        /* decoded strings of an incoming JSON message */
    bool closing;
    size_t open_parts;
    void (*done)(void *arg);
    void *done_arg;
};

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

/* Answers m in its namespace (index nsp): the member's respond callback. */
static void respond(void *arg, unsigned nsp, const adapter_msg_t *m, adapter_resp_t kind,
                    const char *body, size_t body_len, uint64_t count)
{
    adapter_t *a = arg;
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
    if (sharded && data->json_compact)
        rc = adapter_msg_encode_cluster_broadcast_compact(&a->msg, a->uid, UID_LEN, "/", 1,
                                                          data->json, data->json_len, &r, 1);
    else if (sharded)
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

/* Sharded mode with a relay: the holder's subscription counts as up once every channel it wants
 * was confirmed, and stays up while it is wanted. A room's channel that moves with its slot, or
 * whose node's connection is lost, is subscribed again by the Redis layer meanwhile; demoting the
 * holder for it would drop every other room's broadcasts until then. */
static void sharded_latch(adapter_t *a)
{
    uint32_t all = a->host.nnsp >= 32 ? UINT32_MAX : (1u << a->host.nnsp) - 1;
    if (a->patterns_wanted && a->patterns_up == (all & ~1u) &&
        room_union_unconfirmed(a->rooms) == 0)
        a->rooms_held = true;
}

/* Sharded mode with a relay: what happens to a channel the holder's subscription covers. */
static void relay_channel(adapter_t *a, relay_cut_chan_t ev, const char *ch, size_t len)
{
    if (a->rooms && a->channel && !a->closing)
        a->channel(ch, len, ev, a->relay_arg);
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
    relay_channel(a, on ? RELAY_CUT_CHAN_WANTED : RELAY_CUT_CHAN_GONE, a->chan.data, a->chan.len);
}

void adapter_room_created(adapter_t *a, const char *room, size_t len)
{
    if (a && !a->closing && !a->rooms)
        room_subscription(a, true, room, len);
}

void adapter_room_deleted(adapter_t *a, const char *room, size_t len)
{
    if (a && !a->closing && !a->rooms)
        room_subscription(a, false, room, len);
}

static void subscribe_room(const char *room, size_t len, void *arg)
{
    room_subscription(arg, true, room, len);
}

static void unsubscribe_room(const char *room, size_t len, void *arg)
{
    room_subscription(arg, false, room, len);
}

void adapter_relay_room(adapter_t *a, uint32_t slot, const char *room, size_t len, bool on)
{
    if (!a || a->closing || !a->rooms || !dynamic_room(a, len))
        return;
    if (room_union_set(a->rooms, slot, room, len, on) == 1 && a->patterns_wanted)
        room_subscription(a, on, room, len);
    sharded_latch(a);
}

void adapter_relay_forget(adapter_t *a, uint32_t slot)
{
    if (a && !a->closing && a->rooms) {
        room_union_forget(a->rooms, slot, a->patterns_wanted ? unsubscribe_room : NULL, a);
        sharded_latch(a);
    }
}

void adapter_relay_doubt(adapter_t *a, uint32_t slot, bool sweep)
{
    if (!a || a->closing || !a->rooms)
        return;
    if (!sweep) {
        room_union_doubt(a->rooms, slot);
        return;
    }
    room_union_sweep(a->rooms, slot, a->patterns_wanted ? unsubscribe_room : NULL, a);
    sharded_latch(a);
}

static void want(adapter_t *a, redis_sub_kind_t kind, const char *ch)
{
    redis_client_subscribe(a->sub, kind, ch, strlen(ch));
}

/* "<key>#<nsp>#*" of namespace i, into a->chan. */
static void pattern_for(adapter_t *a, unsigned i)
{
    nsp_channel_for(a, i, NULL, 0);
    buf_putc(&a->chan, '*');
}

/* Sharded mode with a relay: the other namespaces' channels and the server's rooms. */
static void sharded_broadcasts(adapter_t *a, bool on)
{
    a->rooms_held = false;
    for (unsigned i = 1; i < a->host.nnsp; i++) {
        nsp_channel_for(a, i, NULL, 0);
        if (on)
            redis_client_subscribe(a->sub, REDIS_SUB_SHARD, a->chan.data, a->chan.len);
        else
            redis_client_unsubscribe(a->sub, REDIS_SUB_SHARD, a->chan.data, a->chan.len);
        relay_channel(a, on ? RELAY_CUT_CHAN_WANTED : RELAY_CUT_CHAN_GONE, a->chan.data,
                      a->chan.len);
    }
    room_union_unconfirm_all(a->rooms);
    room_union_each(a->rooms, on ? subscribe_room : unsubscribe_room, a);
    sharded_latch(a); /* nothing to confirm: held at once */
}

/* Classic and private modes: every namespace's broadcasts, one pattern each; sharded mode with a
 * relay: the channels of the other namespaces and of every room of this server. */
static void broadcast_patterns(adapter_t *a, bool on)
{
    if ((a->mode == ADAPTER_MODE_SHARDED && !a->rooms) || a->patterns_wanted == on)
        return;
    a->patterns_wanted = on;
    a->patterns_up = 0;
    if (a->rooms) {
        sharded_broadcasts(a, on);
        return;
    }
    for (unsigned i = 0; i < a->host.nnsp; i++) {
        pattern_for(a, i);
        if (on)
            redis_client_subscribe(a->sub, REDIS_SUB_PATTERN, a->chan.data, a->chan.len);
        else
            redis_client_unsubscribe(a->sub, REDIS_SUB_PATTERN, a->chan.data, a->chan.len);
    }
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
    broadcast_patterns(a, true);
    if (a->mode == ADAPTER_MODE_CLASSIC)
        want(a, REDIS_SUB_CHANNEL, a->request_chan);
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

static bool own_uid(const adapter_t *a, const adapter_str_t *uid)
{
    return uid->len == UID_LEN && memcmp(uid->p, a->uid, UID_LEN) == 0;
}

/* A broadcast a sibling worker also handed us over local IPC. */
static bool sibling_uid(const adapter_t *a, const adapter_str_t *uid)
{
    return a->is_sibling && a->is_sibling(uid->p, uid->len, a->sibling_arg);
}

/* This server's own broadcasts come back from Redis on every delivery: they are recognised from
 * the message's first (classic) or last (sharded) bytes and dropped before any channel lookup or
 * decoding, so the echo costs a memcmp. A message laid out otherwise is decoded and checked. */
static bool from_this_server(const adapter_t *a, const uint8_t *msg, size_t msg_len)
{
    adapter_str_t uid;
    if (a->mode == ADAPTER_MODE_SHARDED) {
        int type = -1;
        if (adapter_msg_peek_cluster(msg, msg_len, &type, &uid))
            return false;
        /* a sibling's requests are for this worker too; only broadcasts came over IPC */
        return own_uid(a, &uid) || (type == ADAPTER_CLUSTER_BROADCAST && sibling_uid(a, &uid));
    }
    return adapter_msg_peek_broadcast_uid(msg, msg_len, &uid) == 0 &&
           (own_uid(a, &uid) || sibling_uid(a, &uid));
}

/* A broadcast on a channel of namespace nsp ("<key>#<nsp>#" ends at rest). */
static void classic_broadcast(adapter_t *a, int nsp, size_t rest, const char *chan, size_t chan_len,
                              const uint8_t *msg, size_t msg_len)
{
    const char *room = chan + rest;
    size_t room_len = chan_len - rest;
    if (room_len > 0) {
        if (room[room_len - 1] != '#')
            return; /* not a channel of this namespace ("#/#x" for "#/#x#") */
        room_len--;
        if (nsp || !a->host.has_room(a->host.ctx, room, room_len))
            return; /* nobody here is in that room (other namespaces have none) */
    }
    adapter_msg_t m;
    int rc = adapter_msg_decode_broadcast(msg, msg_len, &m);
    if (rc) {
        member_drop(a->member, rc == -E2BIG ? "too many rooms" : "malformed msgpack", chan,
                    chan_len);
        return;
    }
    if (own_uid(a, &m.uid) || sibling_uid(a, &m.uid) || !in_nsp(a, (unsigned)nsp, &m))
        return; /* our own or a sibling's publication (already delivered), or another namespace */
    member_apply(a->member, (unsigned)nsp, &m, NULL, chan, chan_len);
}

static void on_classic_broadcast(adapter_t *a, const char *chan, size_t chan_len,
                                 const uint8_t *msg, size_t msg_len)
{
    size_t rest = 0;
    int nsp = channel_nsp(a, chan, chan_len, &rest);
    if (nsp >= 0) /* else a namespace not served here */
        classic_broadcast(a, nsp, rest, chan, chan_len, msg, msg_len);
}

static void on_classic_request(adapter_t *a, const char *chan, size_t chan_len, const uint8_t *msg,
                               size_t msg_len)
{
    adapter_msg_t m;
    int rc = adapter_msg_decode_request(msg, msg_len, &a->scratch, &m);
    if (rc) {
        member_drop(a->member, member_decode_error(rc), chan, chan_len);
        return;
    }
    if (m.op == ADAPTER_OP_BROADCAST && !is_main_nsp(&m))
        return;
    member_apply(a->member, 0, &m, NULL, chan, chan_len);
}

static void on_cluster(adapter_t *a, const char *chan, size_t chan_len, const uint8_t *msg,
                       size_t msg_len, bool relayed)
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
    adapter_msg_t m;
    int rc = adapter_msg_decode_cluster(msg, msg_len, &a->scratch, &m);
    if (rc) {
        member_drop(a->member, member_decode_error(rc), chan, chan_len);
        return;
    }
    if ((relayed && m.op != ADAPTER_OP_BROADCAST) || own_uid(a, &m.uid) ||
        (m.op == ADAPTER_OP_BROADCAST && sibling_uid(a, &m.uid)) || !in_nsp(a, (unsigned)nsp, &m))
        return;
    member_apply(a->member, (unsigned)nsp, &m, NULL, chan, chan_len);
}

/* A handover marker of the relay role (the room after "<key>#<nsp>#" is "<MARKER_ROOM><uid>#"):
 * this worker's own or a sibling's goes to the marker callback; another server's is dropped, as
 * Node servers drop it (a room they do not have). Never applied, never relayed. */
static bool relay_marker(adapter_t *a, unsigned nsp, const char *room, size_t len)
{
    if (len != MARKER_ROOM_LEN + UID_LEN + 1 || room[len - 1] != '#' ||
        memcmp(room, MARKER_ROOM, MARKER_ROOM_LEN) != 0)
        return false;
    const char *uid = room + MARKER_ROOM_LEN;
    if (a->marked)
        a->marked(nsp, NULL, 0, uid, UID_LEN, memcmp(uid, a->uid, UID_LEN) == 0, a->relay_arg);
    return true;
}

static bool is_request_chan(const adapter_t *a, const char *chan, size_t chan_len)
{
    return a->mode == ADAPTER_MODE_CLASSIC && chan_len == strlen(a->request_chan) &&
           memcmp(chan, a->request_chan, chan_len) == 0;
}

/* Sharded mode: a channel only the relay holder subscribes to (a room's, another namespace's);
 * the main and uid channels are every worker's own. */
static bool relayed_channel(const adapter_t *a, const char *chan, size_t chan_len,
                            unsigned *nsp_out)
{
    size_t rest = 0;
    int nsp = channel_nsp(a, chan, chan_len, &rest);
    *nsp_out = (unsigned)nsp;
    if (nsp < 0 || (nsp == 0 && rest == chan_len))
        return false;
    return !(nsp == 0 && chan_len == a->prefix_len + UID_LEN + 1 &&
             memcmp(chan + a->prefix_len, a->uid, UID_LEN) == 0);
}

/* Sharded mode: a handover marker (see adapter_relay_mark_channel) on a relayed channel: this
 * worker's own or a sibling's goes to the marker callback; another server's is dropped, as Node
 * servers drop it (a namespace they do not have). Never applied, never relayed. */
static bool sharded_marker(adapter_t *a, unsigned nsp, const char *chan, size_t chan_len,
                           const uint8_t *msg, size_t msg_len)
{
    if (msg_len != MARKER_LEN || memcmp(msg, MARKER_HEAD, MARKER_HEAD_LEN) != 0 ||
        memcmp(msg + MARKER_HEAD_LEN + UID_LEN, MARKER_TAIL, sizeof(MARKER_TAIL) - 1) != 0)
        return false;
    const char *uid = (const char *)msg + MARKER_HEAD_LEN;
    if (a->marked)
        a->marked(nsp, chan, chan_len, uid, UID_LEN, memcmp(uid, a->uid, UID_LEN) == 0,
                  a->relay_arg);
    return true;
}

/* Sharded mode: a broadcast on a relayed channel. A message laid out otherwise is relayed and
 * left to the siblings' decoding. */
static bool relayable(const adapter_t *a, const char *chan, size_t chan_len, const uint8_t *msg,
                      size_t msg_len, unsigned *nsp_out)
{
    if (!relayed_channel(a, chan, chan_len, nsp_out))
        return false;
    int type = -1;
    adapter_str_t uid;
    return adapter_msg_peek_cluster(msg, msg_len, &type, &uid) != 0 ||
           type == ADAPTER_CLUSTER_BROADCAST;
}

void adapter_receive(adapter_t *a, const char *chan, size_t chan_len, const uint8_t *msg,
                     size_t msg_len)
{
    if (a->closing)
        return;
    STATS_ADD(a->stats->adapter_in_bytes, msg_len);
    if (from_this_server(a, msg, msg_len))
        return;
    if (a->mode == ADAPTER_MODE_SHARDED) {
        unsigned nsp;
        if (a->relay && relayed_channel(a, chan, chan_len, &nsp) &&
            sharded_marker(a, nsp, chan, chan_len, msg, msg_len))
            return;
        if (a->relay && relayable(a, chan, chan_len, msg, msg_len, &nsp) &&
            !a->relay(nsp, chan, chan_len, msg, msg_len, a->relay_arg))
            return; /* the holder relays it to this worker */
        on_cluster(a, chan, chan_len, msg, msg_len, false);
        return;
    }
    if (is_request_chan(a, chan, chan_len)) {
        on_classic_request(a, chan, chan_len, msg, msg_len);
        return;
    }
    if (!a->relay) {
        on_classic_broadcast(a, chan, chan_len, msg, msg_len);
        return;
    }
    size_t rest = 0;
    int nsp = channel_nsp(a, chan, chan_len, &rest);
    if (nsp < 0 || relay_marker(a, (unsigned)nsp, chan + rest, chan_len - rest))
        return; /* a namespace not served here, or a handover marker */
    if (!a->relay((unsigned)nsp, chan, chan_len, msg, msg_len, a->relay_arg))
        return; /* the holder relays it to this worker */
    classic_broadcast(a, nsp, rest, chan, chan_len, msg, msg_len);
}

void adapter_receive_relayed(adapter_t *a, const char *chan, size_t chan_len, const uint8_t *msg,
                             size_t msg_len)
{
    if (a->closing || is_request_chan(a, chan, chan_len))
        return; /* only broadcasts are relayed */
    if (a->mode == ADAPTER_MODE_SHARDED)
        on_cluster(a, chan, chan_len, msg, msg_len, true);
    else
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
        LOG_WARN("adapter: Redis connection lost; local delivery continues, reconnecting");
}

/* The namespaces whose broadcast pattern is ch (a bit per namespace; 0: none). */
static uint32_t pattern_bits(adapter_t *a, redis_sub_kind_t kind, const char *ch, size_t len)
{
    uint32_t bits = 0;
    if (kind != REDIS_SUB_PATTERN || !a->patterns_wanted)
        return 0;
    for (unsigned i = 0; i < a->host.nnsp && i < 32; i++) {
        pattern_for(a, i);
        if (a->chan.len == len && memcmp(a->chan.data, ch, len) == 0)
            bits |= 1u << i;
    }
    return bits;
}

/* Sharded mode with a relay: another namespace's channel (its bit) or a room's, confirmed or no
 * longer in effect. */
static uint32_t sharded_confirm(adapter_t *a, redis_sub_kind_t kind, const char *ch, size_t len,
                                bool confirmed)
{
    size_t rest = 0;
    if (kind != REDIS_SUB_SHARD || !a->rooms || !a->patterns_wanted)
        return 0;
    int nsp = channel_nsp(a, ch, len, &rest);
    relay_cut_chan_t ev = confirmed ? RELAY_CUT_CHAN_CONFIRMED : RELAY_CUT_CHAN_LOST;
    if (nsp > 0 && nsp < 32 && rest == len) {
        relay_channel(a, ev, ch, len);
        return 1u << nsp;
    }
    if (nsp == 0 && len > rest + 1 && ch[len - 1] == '#' &&
        room_union_has(a->rooms, ch + rest, len - rest - 1)) {
        room_union_confirm(a->rooms, ch + rest, len - rest - 1, confirmed);
        relay_channel(a, ev, ch, len);
    }
    return 0;
}

static void on_subscribed(redis_client_t *c, redis_sub_kind_t kind, const char *ch, size_t len,
                          void *arg)
{
    (void)c;
    adapter_t *a = arg;
    a->patterns_up |= pattern_bits(a, kind, ch, len) | sharded_confirm(a, kind, ch, len, true);
    if (a->rooms)
        sharded_latch(a);
}

/* Only the loss of the subscription itself counts: one that outlives a partition (its command
 * connection was lost, the pub/sub one kept, see REDIS_PUBSUB_DEAD_AFTER_MS) still delivers what
 * Redis kept for it, and nothing would confirm it again. */
static void on_unconfirmed(redis_client_t *c, redis_sub_kind_t kind, const char *ch, size_t len,
                           void *arg)
{
    (void)c;
    adapter_t *a = arg;
    uint32_t bits = pattern_bits(a, kind, ch, len) | sharded_confirm(a, kind, ch, len, false);
    if (bits && (a->patterns_up & bits))
        LOG_WARN("adapter: broadcast subscription lost; subscribing again");
    a->patterns_up &= ~bits;
}

static const redis_client_cbs_t sub_cbs = {.state = on_sub_state,
                                           .message = on_message,
                                           .subscribed = on_subscribed,
                                           .unconfirmed = on_unconfirmed};

/* ---- lifecycle ---- */

/* The connection responses (and relay handover markers) are published on. */
static void open_pub(adapter_t *a)
{
    a->pub = redis_client_new(a->topo, "adapter-pub", NULL, NULL);
    a->open_parts++;
    redis_client_count_reconnects(a->pub, &a->stats->redis_reconnects);
}

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
    buf_init(&a->scratch);
    a->member = member_new(loop, &a->host, stats, respond, a);
    a->open_parts = 1; /* the member */
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
    a->topo = topo;
    if (mode != ADAPTER_MODE_PRIVATE)
        open_pub(a);
    a->sub = redis_client_new(topo, "adapter", &sub_cbs, a);
    redis_client_count_reconnects(a->sub, &stats->redis_reconnects);
    a->open_parts++;
    subscribe_all(a);
    *out = a;
    return 0;
}

adapter_ack_t adapter_client_ack(adapter_t *a, const char *sock_id, uint64_t ack_id,
                                 const char *args_json, size_t args_len)
{
    return a ? member_client_ack(a->member, sock_id, ack_id, args_json, args_len)
             : ADAPTER_ACK_HOST;
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

void adapter_set_relay(adapter_t *a, adapter_relay_fn relay, adapter_marker_fn marked,
                       adapter_channel_fn channel, void *arg)
{
    a->relay = relay;
    a->marked = marked;
    a->channel = channel;
    a->relay_arg = arg;
    if (a->mode == ADAPTER_MODE_SHARDED && !a->rooms) {
        /* what subscribe_all took for this worker alone becomes the holder's */
        a->host.rooms(a->host.ctx, unsubscribe_room, a);
        a->rooms = room_union_new();
        sharded_broadcasts(a, false);
        return;
    }
    if (!a->pub && marked)
        open_pub(a);              /* private mode: for the markers */
    broadcast_patterns(a, false); /* until adapter_relay_subscribe says this worker holds them */
}

int adapter_relay_mark(adapter_t *a)
{
    if (a->closing || !a->pub || a->mode == ADAPTER_MODE_SHARDED)
        return -EINVAL;
    char room[MARKER_ROOM_LEN + UID_LEN];
    memcpy(room, MARKER_ROOM, MARKER_ROOM_LEN);
    memcpy(room + MARKER_ROOM_LEN, a->uid, UID_LEN);
    /* msgpack [uid]: no packet, so even a decoder that got this far ignores it */
    uint8_t body[2 + UID_LEN] = {0x91, 0xa0 | UID_LEN};
    memcpy(body + 2, a->uid, UID_LEN);
    for (unsigned i = 0; i < a->host.nnsp; i++) {
        nsp_channel_for(a, i, room, sizeof(room));
        const char *argv[] = {"PUBLISH", a->chan.data, (const char *)body};
        size_t lens[] = {7, a->chan.len, sizeof(body)};
        int rc = redis_client_command(a->pub, a->chan.data, a->chan.len, NULL, NULL, 3, argv, lens);
        if (rc)
            return rc;
    }
    return 0;
}

int adapter_relay_mark_channel(adapter_t *a, const char *chan, size_t len)
{
    if (a->closing || a->mode != ADAPTER_MODE_SHARDED)
        return -EINVAL;
    char body[MARKER_LEN];
    memcpy(body, MARKER_HEAD, MARKER_HEAD_LEN);
    memcpy(body + MARKER_HEAD_LEN, a->uid, UID_LEN);
    memcpy(body + MARKER_HEAD_LEN + UID_LEN, MARKER_TAIL, sizeof(MARKER_TAIL) - 1);
    const char *argv[] = {"SPUBLISH", chan, body};
    size_t lens[] = {8, len, sizeof(body)};
    return redis_client_command(a->pub, chan, len, NULL, NULL, 3, argv, lens);
}

void adapter_relay_subscribe(adapter_t *a, bool on)
{
    if (!a->closing)
        broadcast_patterns(a, on);
}

bool adapter_relay_up(const adapter_t *a)
{
    uint32_t all = a->host.nnsp >= 32 ? UINT32_MAX : (1u << a->host.nnsp) - 1;
    if (a->rooms)
        return a->patterns_wanted && a->rooms_held;
    return a->patterns_wanted && a->patterns_up == all;
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
    buf_free(&a->msg);
    buf_free(&a->chan);
    buf_free(&a->scratch);
    room_union_free(a->rooms);
    free(a);
    if (done)
        done(done_arg);
}

void adapter_close(adapter_t *a, void (*done)(void *arg), void *arg)
{
    a->closing = true;
    a->done = done;
    a->done_arg = arg;
    member_close(a->member, on_part_closed, a);
    if (a->pub)
        redis_client_close(a->pub, on_part_closed, a);
    if (a->sub)
        redis_client_close(a->sub, on_part_closed, a);
}
