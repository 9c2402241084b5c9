/* streams_restore: see streams_restore.h. */
#include "worker/cluster/streams_restore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/proto/stream_id.h"
#include "common/proto/streams_msg.h"
#include "common/redis/redis_client.h"
#include "common/xalloc.h"
#include "worker/fanout/fanout_packet.h"

#define PAGE "1000"    /* entries per XRANGE, as the adapter reads them */
#define ROUNDS_MAX 100 /* XRANGEs per restore (the adapter's RESTORE_SESSION_MAX_XRANGE_CALLS) */
#define WAIT_MS 10     /* a client ahead of the reader looks again after this */
#define WAITS_MAX 500  /* ... this many times at most */
#define KEY_MAX 256

struct streams_restore {
    const cfg_t *cfg;
    sio_t *sio;
    streams_adapter_t *sa;
    stats_worker_t *stats;
    redis_client_t *c;
    int slot; /* ours in each socket */
    uv_timer_t wait;
    struct rsock *waiting; /* clients ahead of the reader */
    size_t inflight;       /* sessions being stored */
    bool closing, wait_closed, client_closing;
    void (*done)(void *arg);
    void *done_arg;
    buf_t tmp, name, text, atts, scratch, bin, key;
    payload_field_t *fields;
    size_t fields_cap;
};

/* One socket's state: its pid, and while it is restored, the restore. */
typedef struct rsock {
    streams_restore_t *r;
    sio_socket_t *s;
    char pid[SIO_ID_LEN + 1];
    uint8_t
        *data; /* socket.data of the session it was restored from (msgpack), kept for the next */
    size_t data_len;
    /* a restore in progress (the socket is held meanwhile) */
    bool restoring;
    unsigned replies; /* GETDEL and the offset check still awaited */
    char *session;    /* the stored session text (base64) */
    size_t session_len;
    bool offset_found;
    stream_id_t offset; /* the client's */
    stream_id_t from;   /* read up to here */
    buf_t bin;          /* the decoded session's bytes */
    streams_session_t sess;
    eio_msg_t **missed;
    size_t nmissed, cap;
    unsigned rounds, waits;
    struct rsock *next_waiting;
} rsock_t;

static rsock_t *state(streams_restore_t *r, sio_socket_t *s)
{
    rsock_t *st = sio_socket_ext(s, r->slot);
    if (!st) {
        st = xcalloc(1, sizeof(*st));
        st->r = r;
        st->s = s;
        buf_init(&st->bin);
        sio_socket_set_ext(s, r->slot, st);
    }
    return st;
}

static void session_key(streams_restore_t *r, const char *pid)
{
    buf_reset(&r->key);
    buf_printf(&r->key, "%s%.*s", "sio:session:", SIO_ID_LEN, pid);
}

/* ==== storing ==== */

typedef struct rooms_list {
    adapter_str_t *v;
    size_t n, cap;
} rooms_list_t;

static void add_room(const char *name, size_t len, void *arg)
{
    rooms_list_t *l = arg;
    if (l->n < l->cap)
        l->v[l->n++] = (adapter_str_t){name, len};
}

static void on_client_closed(void *arg);

/* At close: once the timer is closed and every session stored. */
static void close_client(streams_restore_t *r)
{
    if (!r->closing || !r->wait_closed || r->inflight || r->client_closing)
        return;
    r->client_closing = true;
    redis_client_close(r->c, on_client_closed, r);
}

static void on_stored(const redisReply *reply, void *arg)
{
    streams_restore_t *r = arg;
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        LOG_WARN("recovery: a session was not stored: %s",
                 reply && reply->str ? reply->str : "Redis connection lost");
    r->inflight--;
    close_client(r);
}

/* The transport is gone while "/" is connected: the session is kept as the adapter keeps it. */
static void on_lost(void *arg, sio_socket_t *s)
{
    streams_restore_t *r = arg;
    rsock_t *st = sio_socket_ext(s, r->slot);
    if (!st || !st->pid[0] || st->restoring)
        return;
    const rooms_sock_t *rooms = sio_socket_rooms(s);
    const char *sid = sio_socket_id(s);
    rooms_list_t l = {xcalloc(rooms->count + 1, sizeof(*l.v)), 0, rooms->count + 1};
    add_room(sid, SIO_ID_LEN, &l); /* socket.io lists the socket's own room first */
    rooms_sock_foreach(rooms, add_room, &l);
    buf_reset(&r->text);
    int rc = streams_msg_encode_session(&r->text, sid, SIO_ID_LEN, st->pid, SIO_ID_LEN, l.v, l.n,
                                        st->data, st->data_len);
    free(l.v);
    if (!rc) {
        char px[24];
        snprintf(px, sizeof(px), "%d", r->cfg->recovery_window_ms);
        session_key(r, st->pid);
        const char *argv[] = {"SET", r->key.data, r->text.data, "PX", px};
        const size_t lens[] = {3, r->key.len, r->text.len, 2, strlen(px)};
        rc = redis_client_command(r->c, r->key.data, r->key.len, on_stored, r, 5, argv, lens);
    }
    if (rc)
        LOG_WARN("recovery: cannot keep session %s: %s", sid, strerror(-rc));
    else
        r->inflight++;
}

/* The main CONNECT reply hands out the pid (a restored socket keeps its session's). */
static void on_reply(void *arg, sio_socket_t *s, buf_t *json)
{
    rsock_t *st = state(arg, s);
    if (!st->pid[0] && ids_random(st->pid, SIO_ID_LEN))
        return;
    buf_printf(json, ",\"pid\":\"%s\"", st->pid);
}

/* ==== restoring ==== */

static void forget(rsock_t *st)
{
    for (size_t i = 0; i < st->nmissed; i++)
        eio_msg_unref(st->missed[i]);
    free(st->missed);
    st->missed = NULL;
    st->nmissed = st->cap = 0;
    free(st->session);
    st->session = NULL;
    st->restoring = false;
}

static void on_freed(void *arg, sio_socket_t *s)
{
    streams_restore_t *r = arg;
    rsock_t *st = sio_socket_ext(s, r->slot);
    if (!st)
        return;
    forget(st);
    buf_free(&st->bin);
    free(st->data);
    free(st);
}

/* The end of a restore: recovered or not, the CONNECT is answered and the socket let go. */
static void finish(rsock_t *st, bool recovered)
{
    sio_socket_t *s = st->s;
    int rc = 0;
    if (!recovered && !sio_socket_closed(s)) {
        st->pid[0] = '\0'; /* a new pid with the reply */
        rc = sio_connect_reply(s, 0, NULL);
    }
    forget(st);
    if (rc < 0)
        sio_socket_close(s);
    sio_socket_release(s);
}

static void rejoin(const char *room, size_t len, void *arg)
{
    sio_socket_t *s = arg;
    if (len == SIO_ID_LEN && memcmp(room, sio_socket_id(s), SIO_ID_LEN) == 0)
        return; /* its own room: implied */
    if (!sio_socket_rooms_full(s, room, len) && sio_socket_room_allowed(s, room, len))
        (void)sio_socket_join(s, room, len);
}

/* Everything the session missed is read: in one turn of the loop it takes the session's id and
 * rooms (live broadcasts reach it from now on), gets what it missed, then its CONNECT reply. */
static void complete(rsock_t *st)
{
    sio_socket_t *s = st->s;
    char sid[SIO_ID_LEN + 1];
    memcpy(sid, st->sess.sid.p, SIO_ID_LEN);
    sid[SIO_ID_LEN] = '\0';
    if (sio_socket_by_id(st->r->sio, sid, SIO_ID_LEN)) {
        finish(st, false); /* that socket is back already */
        return;
    }
    free(st->data);
    st->data = NULL;
    st->data_len = st->sess.data_len;
    if (st->sess.data) {
        st->data = xmalloc(st->sess.data_len);
        memcpy(st->data, st->sess.data, st->sess.data_len);
    }
    sio_socket_restore(s, sid);
    streams_msg_session_rooms(&st->sess, rejoin, s);
    for (size_t i = 0; i < st->nmissed; i++)
        sio_socket_send_msg(s, st->missed[i]);
    STATS_ADD(st->r->stats->deliveries, st->nmissed);
    LOG_DEBUG("recovery: session %s restored, %zu packets replayed", sid, st->nmissed);
    bool ok = sio_socket_connected(s, 0) && sio_connect_reply(s, 0, sid) == 0;
    forget(st);
    if (!ok)
        sio_socket_close(s);
    sio_socket_release(s);
}

/* One missed entry: kept rendered when the session's rooms would have received it. */
static void keep_entry(rsock_t *st, const redisReply *e)
{
    streams_restore_t *r = st->r;
    const redisReply *id = e->element[0], *fv = e->element[1];
    if (r->fields_cap < fv->elements / 2 + 1) {
        r->fields_cap = fv->elements / 2 + 1;
        r->fields = xrealloc(r->fields, r->fields_cap * sizeof(*r->fields));
    }
    size_t n = 0;
    for (size_t j = 0; j + 1 < fv->elements; j += 2) {
        const redisReply *f = fv->element[j], *v = fv->element[j + 1];
        if (f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
            r->fields[n++] = (payload_field_t){f->str, f->len, v->str, v->len};
    }
    adapter_msg_t m;
    if (streams_msg_decode_entry(r->fields, n, &r->scratch, &r->bin, &m) ||
        m.op != ADAPTER_OP_BROADCAST || m.nsp.len != 1 || m.nsp.p[0] != '/' ||
        !streams_msg_session_missed(&st->sess, &m))
        return;
    unsigned natt = 0;
    buf_reset(&r->text);
    buf_reset(&r->atts);
    int rc = adapter_msg_sio_text_offset(&r->text, &m, id->str, id->len);
    if (rc == -ENOTSUP) {
        buf_reset(&r->text);
        rc = adapter_msg_sio_binary_offset(&r->text, &r->atts, &m, id->str, id->len, &natt);
    }
    if (rc)
        return; /* as live delivery drops it */
    fanout_packet_t pk;
    fanout_packet_cluster(&pk, r->text.data, r->text.len, r->atts.data, r->atts.len, natt);
    if (st->nmissed == st->cap) {
        st->cap = st->cap ? 2 * st->cap : 16;
        st->missed = xrealloc(st->missed, st->cap * sizeof(*st->missed));
    }
    st->missed[st->nmissed++] = eio_msg_ref(pk.msg);
    fanout_packet_release(&pk);
}

static void step(rsock_t *st);

/* XRANGE <stream> (<from> <to> COUNT 1000: oldest first. */
static void on_range(const redisReply *reply, void *arg)
{
    rsock_t *st = arg;
    if (sio_socket_closed(st->s) || !reply || reply->type != REDIS_REPLY_ARRAY) {
        finish(st, false);
        return;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        stream_id_t id;
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY ||
            !stream_id_parse(e->element[0]->str, e->element[0]->len, &id))
            continue;
        keep_entry(st, e);
        st->from = id;
    }
    step(st);
}

static stream_id_t reader_at(const rsock_t *st, bool *ok)
{
    const char *last = streams_adapter_main_last(st->r->sa);
    stream_id_t id = {0, 0};
    *ok = last[0] && stream_id_parse(last, strlen(last), &id);
    return id;
}

static void on_wait(uv_timer_t *t);

/* Reads what the session missed up to where this worker's reader is, until it stands still. */
static void step(rsock_t *st)
{
    streams_restore_t *r = st->r;
    bool ok;
    stream_id_t at = reader_at(st, &ok);
    if (!ok || r->closing) {
        finish(st, false);
        return;
    }
    if (stream_id_cmp(at, st->offset) < 0) {
        /* the client came from a server whose reader is ahead: this one's catches up first */
        if (st->waits++ >= WAITS_MAX) {
            finish(st, false);
            return;
        }
        st->next_waiting = r->waiting;
        r->waiting = st;
        if (!uv_is_active((uv_handle_t *)&r->wait))
            uv_timer_start(&r->wait, on_wait, WAIT_MS, 0);
        return;
    }
    if (stream_id_cmp(at, st->from) <= 0) {
        complete(st);
        return;
    }
    if (st->rounds++ >= ROUNDS_MAX) {
        finish(st, false);
        return;
    }
    char from[STREAM_ID_MAX + 2], to[STREAM_ID_MAX + 1];
    from[0] = '(';
    stream_id_format(st->from, from + 1);
    stream_id_format(at, to);
    const char *key = streams_adapter_main_stream(r->sa);
    const char *argv[] = {"XRANGE", key, from, to, "COUNT", PAGE};
    if (redis_client_command(r->c, key, strlen(key), on_range, st, 6, argv, NULL))
        finish(st, false);
}

static void on_wait(uv_timer_t *t)
{
    streams_restore_t *r = t->data;
    rsock_t *st = r->waiting;
    r->waiting = NULL;
    while (st) {
        rsock_t *next = st->next_waiting;
        st->next_waiting = NULL;
        if (sio_socket_closed(st->s))
            finish(st, false);
        else
            step(st);
        st = next;
    }
}

/* Both the session and the offset check are in: restore, or answer without. */
static void on_checked(rsock_t *st)
{
    if (sio_socket_closed(st->s) || !st->session || !st->offset_found ||
        streams_msg_decode_session(st->session, st->session_len, &st->bin, &st->sess) ||
        !sio_id_ok(st->sess.sid.p, st->sess.sid.len)) {
        finish(st, false);
        return;
    }
    st->from = st->offset;
    step(st);
}

static void on_session(const redisReply *reply, void *arg)
{
    rsock_t *st = arg;
    if (reply && reply->type == REDIS_REPLY_STRING) {
        st->session = xmalloc(reply->len + 1);
        memcpy(st->session, reply->str, reply->len);
        st->session_len = reply->len;
    }
    if (--st->replies == 0)
        on_checked(st);
}

static void on_offset(const redisReply *reply, void *arg)
{
    rsock_t *st = arg;
    st->offset_found = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 1;
    if (--st->replies == 0)
        on_checked(st);
}

/*
 * A main CONNECT: with {pid, offset} (both as the adapter takes them), the session is looked up
 * and 0 returned (the reply comes later); 1 when there is nothing to recover.
 */
static int on_connecting(void *arg, sio_socket_t *s, const sio_packet_t *pk)
{
    streams_restore_t *r = arg;
    json_span_t pid, off;
    if (r->closing || !pk->data || json_validate(pk->data, pk->data_len) ||
        json_member_get(pk->data, pk->data_len, "pid", &pid, &r->tmp) || pid.type != JSON_STRING ||
        json_member_get(pk->data, pk->data_len, "offset", &off, &r->tmp) || off.type != JSON_STRING)
        return 1;
    buf_reset(&r->name);
    buf_reset(&r->tmp);
    stream_id_t offset;
    if (json_string_decode(pid.p, pid.len, &r->name) || !sio_id_ok(r->name.data, r->name.len) ||
        json_string_decode(off.p, off.len, &r->tmp) || r->tmp.len > STREAM_ID_MAX ||
        !stream_id_parse(r->tmp.data, r->tmp.len, &offset))
        return 1;
    rsock_t *st = state(r, s);
    if (st->restoring)
        return 1;
    memcpy(st->pid, r->name.data, SIO_ID_LEN);
    st->pid[SIO_ID_LEN] = '\0';
    st->offset = offset;
    st->rounds = st->waits = 0;
    st->offset_found = false;
    char id[STREAM_ID_MAX + 1];
    stream_id_format(offset, id);
    session_key(r, st->pid);
    const char *key = streams_adapter_main_stream(r->sa);
    const char *get[] = {"GETDEL", r->key.data};
    const char *check[] = {"XRANGE", key, id, id};
    sio_socket_hold(s);
    st->restoring = true;
    st->replies = 1;
    if (redis_client_command(r->c, r->key.data, r->key.len, on_session, st, 2, get, NULL)) {
        st->restoring = false;
        st->pid[0] = '\0';
        sio_socket_release(s);
        return 1;
    }
    if (redis_client_command(r->c, key, strlen(key), on_offset, st, 4, check, NULL) == 0)
        st->replies++;
    return 0; /* on_session ends it when the check could not be sent: no offset found */
}

/* ==== lifetime ==== */

streams_restore_t *streams_restore_new(const cfg_t *cfg, redis_topology_t *topo, sio_t *sio,
                                       streams_adapter_t *sa, stats_worker_t *stats)
{
    streams_restore_t *r = xcalloc(1, sizeof(*r));
    r->cfg = cfg;
    r->sio = sio;
    r->sa = sa;
    r->stats = stats;
    r->c = redis_client_new(topo, "sessions", NULL, NULL);
    redis_client_count_reconnects(r->c, &stats->redis_reconnects);
    uv_timer_init(redis_topology_loop(topo), &r->wait);
    r->wait.data = r;
    buf_init(&r->tmp);
    buf_init(&r->name);
    buf_init(&r->text);
    buf_init(&r->atts);
    buf_init(&r->scratch);
    buf_init(&r->bin);
    buf_init(&r->key);
    r->slot = sio_observe(sio, &(sio_observer_t){.arg = r,
                                                 .connecting = on_connecting,
                                                 .reply = on_reply,
                                                 .lost = on_lost,
                                                 .freed = on_freed});
    return r;
}

static void on_client_closed(void *arg)
{
    streams_restore_t *r = arg;
    void (*done)(void *) = r->done;
    void *done_arg = r->done_arg;
    buf_free(&r->tmp);
    buf_free(&r->name);
    buf_free(&r->text);
    buf_free(&r->atts);
    buf_free(&r->scratch);
    buf_free(&r->bin);
    buf_free(&r->key);
    free(r->fields);
    free(r);
    if (done)
        done(done_arg);
}

static void on_wait_closed(uv_handle_t *h)
{
    streams_restore_t *r = h->data;
    r->wait_closed = true;
    close_client(r);
}

void streams_restore_close(streams_restore_t *r, void (*done)(void *arg), void *arg)
{
    r->closing = true;
    r->done = done;
    r->done_arg = arg;
    on_wait(&r->wait); /* the waiting restores end, unrecovered */
    uv_close((uv_handle_t *)&r->wait, on_wait_closed);
}
