/* adapter: see adapter.h. */
#include "worker/adapter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/ids.h"
#include "common/log.h"
#include "worker/adapter_msg.h"
#include "worker/ws_frame.h"

#define UID_LEN 16

struct adapter {
    const cfg_t *cfg;
    sessions_t *sessions;
    stats_worker_t *stats;
    rds_t *sub;
    char prefix[160]; /* "<key>#/#" */
    size_t prefix_len;
    char pattern[168]; /* "<key>#/#*" */
    char uid[UID_LEN + 1];
    uint64_t dropped;
    buf_t msg;  /* encoded outgoing message */
    buf_t chan; /* outgoing channel name */
    buf_t text; /* Engine.IO text of an incoming broadcast */
    bool closing;
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

static void on_broadcast(adapter_t *a, const char *chan, size_t chan_len, const char *msg,
                         size_t msg_len)
{
    if (chan_len < a->prefix_len || memcmp(chan, a->prefix, a->prefix_len) != 0)
        return;
    const char *room = chan + a->prefix_len;
    size_t room_len = chan_len - a->prefix_len;
    if (room_len > 0) {
        if (room[room_len - 1] != '#')
            return; /* another namespace's channel: "<key>#/admin#..." never matches "#/#" */
        room_len--;
        if (!sessions_has_room(a->sessions, room, room_len))
            return; /* nobody here is in that room */
    }
    adapter_msg_t m;
    int rc = adapter_msg_decode_broadcast((const uint8_t *)msg, msg_len, &m);
    if (rc) {
        drop(a, rc == -E2BIG ? "too many rooms" : "malformed msgpack", chan, chan_len);
        return;
    }
    if (m.uid.len == UID_LEN && memcmp(m.uid.p, a->uid, UID_LEN) == 0)
        return; /* our own publication, already delivered locally */
    if (m.nsp.len != 1 || m.nsp.p[0] != '/')
        return;
    buf_reset(&a->text);
    if (m.packet_type != 2 || adapter_msg_sio_text(&a->text, &m)) {
        drop(a, "unsupported packet (binary or not an event)", chan, chan_len);
        return;
    }
    refbuf_t *frame = ws_frame_new(0x1, a->text.data, a->text.len);
    if (!frame)
        return;
    sessions_broadcast(a->sessions, m.rooms, m.nrooms, m.except, m.nexcept, frame);
    refbuf_unref(frame);
    STATS_ADD(a->stats->adapter_in, 1);
}

static void on_message(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    adapter_t *a = privdata;
    redisReply *r = reply;
    if (!r || a->closing || r->type != REDIS_REPLY_ARRAY || r->elements != 4)
        return;
    redisReply **e = r->element;
    if (e[0]->type != REDIS_REPLY_STRING || strcmp(e[0]->str, "pmessage") != 0 ||
        e[2]->type != REDIS_REPLY_STRING || e[3]->type != REDIS_REPLY_STRING)
        return;
    on_broadcast(a, e[2]->str, e[2]->len, e[3]->str, e[3]->len);
}

static void on_sub_state(rds_t *conn, bool connected, void *arg)
{
    adapter_t *a = arg;
    if (!connected)
        return;
    const char *argv[] = {"PSUBSCRIBE", a->pattern};
    if (rds_command(conn, on_message, a, 2, argv, NULL))
        LOG_ERROR("adapter: cannot subscribe to %s", a->pattern);
}

int adapter_new(adapter_t **out, uv_loop_t *loop, const cfg_t *cfg, const char *prefix,
                sessions_t *sessions, stats_worker_t *stats)
{
    adapter_t *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->cfg = cfg;
    a->sessions = sessions;
    a->stats = stats;
    a->prefix_len = (size_t)snprintf(a->prefix, sizeof(a->prefix), "%s#/#", prefix);
    snprintf(a->pattern, sizeof(a->pattern), "%s#/#*", prefix);
    buf_init(&a->msg);
    buf_init(&a->chan);
    buf_init(&a->text);
    if (ids_random(a->uid, UID_LEN) || rds_new(&a->sub, loop, cfg, "adapter", on_sub_state, a)) {
        free(a);
        return -ENOMEM;
    }
    *out = a;
    return 0;
}

int adapter_publish(adapter_t *a, rds_t *conn, const char *room, size_t room_len,
                    const char *data_json, size_t data_len)
{
    adapter_str_t r = {room, room_len};
    buf_reset(&a->msg);
    int rc =
        adapter_msg_encode_broadcast(&a->msg, a->uid, UID_LEN, "/", 1, data_json, data_len, &r, 1);
    if (rc)
        return rc;
    buf_reset(&a->chan);
    buf_append(&a->chan, a->prefix, a->prefix_len);
    buf_append(&a->chan, room, room_len);
    if (buf_putc(&a->chan, '#'))
        return -ENOMEM;
    const char *argv[] = {"PUBLISH", a->chan.data, a->msg.data};
    size_t lens[] = {7, a->chan.len, a->msg.len};
    return rds_command(conn, NULL, NULL, 3, argv, lens);
}

bool adapter_connected(const adapter_t *a)
{
    return rds_connected(a->sub);
}

static void on_sub_closed(void *arg)
{
    adapter_t *a = arg;
    void (*done)(void *) = a->done;
    void *done_arg = a->done_arg;
    buf_free(&a->msg);
    buf_free(&a->chan);
    buf_free(&a->text);
    free(a);
    if (done)
        done(done_arg);
}

void adapter_close(adapter_t *a, void (*done)(void *arg), void *arg)
{
    a->closing = true;
    a->done = done;
    a->done_arg = arg;
    rds_close(a->sub, on_sub_closed, a);
}
