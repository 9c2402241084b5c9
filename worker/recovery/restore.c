/* restore: see restore.h. Memberships carry their recovery marks in rooms_mark_t (sio's rooms
 * keep them for us): first, last and held ids as ms/seq pairs, a tag per membership, and where
 * the session's cell keeps the room. */
#include "worker/recovery/restore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "worker/recovery/recovery.h"
#include "worker/recovery/recovery_cell.h"
#include "worker/recovery/recovery_io.h"

#define REPLAY_ROUNDS_MAX 8 /* re-reads of entries held back during a replay */

struct restore {
    sio_t *sio;
    stats_worker_t *stats;
    recovery_io_t *io;
    shm_sessions_t *cells; /* NULL: sessions do not outlive this process */
    uint32_t block;
    int slot; /* ours in each socket */
    buf_t tmp;
    buf_t name;
    buf_t out;  /* a replayed packet */
    buf_t kept; /* the record of a session claimed from a dead worker's cell */
};

/* One socket's recovery state. */
typedef struct rsock {
    restore_t *r;
    sio_socket_t *s;
    recovery_log_t *log;   /* the last room:message sends; NULL until the main CONNECT */
    recovery_cell_t *cell; /* the session in shared memory (log inside), or NULL (log on heap) */
    uint32_t cell_idx;
    char pid[SIO_ID_LEN + 1]; /* private id the client resends to recover this session */
    stream_id_t offset;       /* the offset a recovering client sent */
    bool has_offset;          /* it sent one */
    bool replaying;           /* restored; missed entries go out before the CONNECT reply */
    bool rejoining;           /* its record's rooms are being joined: marks are set here */
    unsigned replays;         /* XRANGEs in flight */
    unsigned replay_rounds;   /* re-reads of entries held back during the replay */
    unsigned replayed;        /* entries replayed */
    uint32_t next_tag;        /* numbers the memberships for the log */
} rsock_t;

static stream_id_t mark_id(const uint64_t v[2])
{
    return (stream_id_t){v[0], v[1]};
}

static void mark_set(uint64_t v[2], stream_id_t id)
{
    v[0] = id.ms;
    v[1] = id.seq;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* shm_sessions' clock, the same in every process */
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static rsock_t *state(restore_t *r, sio_socket_t *s)
{
    rsock_t *st = sio_socket_ext(s, r->slot);
    if (!st) {
        st = xcalloc(1, sizeof(*st));
        st->r = r;
        st->s = s;
        sio_socket_set_ext(s, r->slot, st);
    }
    return st;
}

/* ==== The cell: the session's state where a sibling finds it if this process dies ==== */

static void cell_add_room(const char *name, size_t len, rooms_mark_t *m, void *arg)
{
    m->kept = recovery_cell_room_add(arg, name, len, m->tag, mark_id(m->first), mark_id(m->last));
}

static void cell_rooms(rsock_t *st)
{
    recovery_cell_rooms_begin(st->cell);
    rooms_sock_foreach_mark(sio_socket_rooms(st->s), cell_add_room, st->cell);
    recovery_cell_rooms_end(st->cell);
}

/* Gives the session its log: in a cell when one is free (a copy of log when given), else on
 * the heap. Takes log. */
static void keep(rsock_t *st, recovery_log_t *log)
{
    restore_t *r = st->r;
    if (r->cells)
        st->cell =
            shm_sessions_alloc(r->cells, r->block, st->pid, SIO_ID_LEN, now_ms(), &st->cell_idx);
    if (!st->cell) {
        st->log = log ? log : xcalloc(1, sizeof(*st->log));
        return;
    }
    recovery_cell_init(st->cell, st->pid, SIO_ID_LEN);
    if (log)
        st->cell->log = *log;
    free(log);
    st->log = &st->cell->log;
    cell_rooms(st);
}

/* The session no longer needs its cell (saved elsewhere, or gone). */
static void unkeep(rsock_t *st)
{
    if (st->cell) {
        shm_sessions_release(st->r->cells, st->cell_idx);
        st->cell = NULL;
        st->log = NULL;
    } else {
        free(st->log);
        st->log = NULL;
    }
}

/* A send reached the socket through m: logged, and the room's last id moves. */
static void note_send(rsock_t *st, rooms_mark_t *m, stream_id_t id)
{
    recovery_log_add(st->log, m->tag, id, mark_id(m->last));
    if (stream_id_cmp(id, mark_id(m->last)) > 0) {
        mark_set(m->last, id);
        if (st->cell)
            recovery_cell_set_last(st->cell, m->kept, id);
    }
}

/* ==== sio's side ==== */

/* A join starts the room's record at the wall clock: entries added from now on are due. */
static void on_joined(void *arg, sio_socket_t *s, const char *room, size_t len, rooms_mark_t *m)
{
    rsock_t *st = state(arg, s);
    if (st->rejoining)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    stream_id_t start =
        stream_id_before_ms((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
    m->tag = ++st->next_tag;
    mark_set(m->first, start);
    mark_set(m->last, start);
    if (st->cell)
        m->kept = recovery_cell_room_add(st->cell, room, len, m->tag, start, start);
}

/* The main namespace connected: the session's sid is known now (after the reply hooks). */
static void on_connected(void *arg, sio_socket_t *s, unsigned nsp)
{
    restore_t *r = arg;
    rsock_t *st = sio_socket_ext(s, r->slot);
    if (nsp == 0 && st && st->cell)
        recovery_cell_set_sid(st->cell, sio_socket_id(s), SIO_ID_LEN);
}

/* A room left: the cell's rooms are written again (never while the session is ending). */
static void on_left(void *arg, sio_socket_t *s, const char *room, size_t len)
{
    (void)room;
    (void)len;
    restore_t *r = arg;
    rsock_t *st = sio_socket_ext(s, r->slot);
    if (st && st->cell && !sio_socket_closed(s))
        cell_rooms(st);
}

/* The main CONNECT reply hands out the pid (and starts the log). */
static void on_reply(void *arg, sio_socket_t *s, buf_t *json)
{
    rsock_t *st = state(arg, s);
    if (!st->pid[0] && ids_random(st->pid, SIO_ID_LEN))
        return;
    if (!st->log)
        keep(st, NULL);
    buf_printf(json, ",\"pid\":\"%s\"", st->pid);
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
static void on_lost(void *arg, sio_socket_t *s)
{
    restore_t *r = arg;
    rsock_t *st = sio_socket_ext(s, r->slot);
    if (!st || !st->log || !st->pid[0])
        return;
    const rooms_sock_t *rooms = sio_socket_rooms(s);
    save_rooms_t sr = {xcalloc(rooms->count + 1, sizeof(*sr.v)), 0, rooms->count};
    buf_t rec;
    buf_init(&rec);
    rooms_sock_foreach_mark(rooms, save_room, &sr);
    const char *sid = sio_socket_id(s);
    int rc = recovery_encode(&rec, sid, SIO_ID_LEN, st->log, sr.v, sr.n);
    if (!rc)
        rc = recovery_io_save(r->io, st->pid, SIO_ID_LEN, rec.data, rec.len);
    if (rc)
        LOG_WARN("recovery: cannot keep session %s: %s", sid, strerror(-rc));
    unkeep(st); /* the record in Redis is the one to recover from now */
    buf_free(&rec);
    free(sr.v);
}

static void on_freed(void *arg, sio_socket_t *s)
{
    restore_t *r = arg;
    rsock_t *st = sio_socket_ext(s, r->slot);
    if (!st)
        return;
    unkeep(st);
    free(st);
}

static void on_record(void *arg, const char *rec, size_t len);

/*
 * A main CONNECT: when its auth carries a pid of ours, asks for that session's record and
 * returns 0 (the reply comes later); 1 when there is nothing to recover.
 */
static int on_connecting(void *arg, sio_socket_t *s, const sio_packet_t *pk)
{
    restore_t *r = arg;
    json_span_t pid, off;
    buf_t *tmp = &r->tmp;
    if (!pk->data || json_validate(pk->data, pk->data_len) ||
        json_member_get(pk->data, pk->data_len, "pid", &pid, tmp) || pid.type != JSON_STRING)
        return 1;
    buf_reset(&r->name);
    if (json_string_decode(pid.p, pid.len, &r->name) || !sio_id_ok(r->name.data, r->name.len))
        return 1;
    rsock_t *st = state(r, s);
    st->has_offset = false;
    if (json_member_get(pk->data, pk->data_len, "offset", &off, tmp) == 0) {
        buf_reset(tmp);
        /* an offset that is not an entry id cannot be placed in the log */
        if (off.type != JSON_STRING || json_string_decode(off.p, off.len, tmp) ||
            tmp->len > STREAM_ID_MAX || !stream_id_parse(tmp->data, tmp->len, &st->offset))
            return 1;
        st->has_offset = true;
    }
    memcpy(st->pid, r->name.data, SIO_ID_LEN);
    st->pid[SIO_ID_LEN] = '\0';
    sio_socket_hold(s);
    if (recovery_io_take(r->io, st->pid, SIO_ID_LEN, on_record, st)) {
        sio_socket_release(s);
        st->pid[0] = '\0';
        return 1;
    }
    return 0;
}

/* ==== fanout's side ==== */

/*
 * Whether an entry reaching s through its membership m goes out now. While s replays, it is held
 * back (the replay reads it from the stream, in order); after, ids up to the replay's end were
 * already sent. Sends are logged. No allocation.
 */
static bool on_gate(void *arg, sio_socket_t *s, rooms_mark_t *m, const fanout_packet_t *pk)
{
    restore_t *r = arg;
    rsock_t *st = sio_socket_ext(s, r->slot);
    if (!st || !st->log)
        return true;
    stream_id_t id = pk->entry_id;
    if (st->replaying) {
        if (stream_id_cmp(id, mark_id(m->held)) > 0)
            mark_set(m->held, id);
        return false;
    }
    if (stream_id_cmp(id, mark_id(m->held)) <= 0)
        return false;
    note_send(st, m, id);
    return true;
}

/* ==== Restoring ==== */

typedef struct rejoin {
    sio_socket_t *s;
    rsock_t *st;
    const recovery_log_t *log;
    uint32_t pos;
} rejoin_t;

/* Rejoins one room of the record where the client's offset says it stopped. */
static void rejoin_room(void *arg, const recovery_room_t *rr)
{
    rejoin_t *c = arg;
    sio_socket_t *s = c->s;
    if (sio_socket_rooms_full(s, rr->name, rr->len) ||
        !sio_socket_room_allowed(s, rr->name, rr->len))
        return;
    c->st->rejoining = true;
    int rc = sio_socket_join(s, rr->name, rr->len);
    c->st->rejoining = false;
    rooms_mark_t *m = rc == 0 ? rooms_sock_mark(sio_socket_rooms(s), rr->name, rr->len) : NULL;
    if (!m)
        return;
    m->tag = rr->tag;
    mark_set(m->last, recovery_log_received(c->log, c->pos, rr));
    memcpy(m->first, m->last, sizeof(m->first)); /* what the client has: a later start point */
    if (rr->tag > c->st->next_tag)
        c->st->next_tag = rr->tag;
}

typedef struct replay {
    restore_t *r;
    sio_socket_t *s;
    size_t len;
    char name[];
} replay_t;

static void replay_room(restore_t *r, sio_socket_t *s, const char *name, size_t len,
                        stream_id_t after);

static void on_replay_entry(void *arg, const char *id, size_t id_len, const payload_field_t *fields,
                            size_t nfields)
{
    replay_t *rp = arg;
    restore_t *r = rp->r;
    sio_socket_t *s = rp->s;
    rsock_t *st = sio_socket_ext(s, r->slot);
    rooms_mark_t *m =
        sio_socket_closed(s) ? NULL : rooms_sock_mark(sio_socket_rooms(s), rp->name, rp->len);
    stream_id_t rid;
    if (!m || id_len > STREAM_ID_MAX || !stream_id_parse(id, id_len, &rid) ||
        stream_id_cmp(rid, mark_id(m->last)) <= 0)
        return;
    buf_reset(&r->out);
    payload_packet(&r->out, rp->name, rp->len, id, id_len, fields, nfields, true);
    sio_socket_send_text(s, r->out.data, r->out.len);
    note_send(st, m, rid);
    st->replayed++;
    STATS_ADD(r->stats->deliveries, 1);
}

static void replay_finish(restore_t *r, sio_socket_t *s, rsock_t *st);

static void on_replay_done(void *arg, int n)
{
    replay_t *rp = arg;
    restore_t *r = rp->r;
    sio_socket_t *s = rp->s;
    rsock_t *st = sio_socket_ext(s, r->slot);
    st->replays--;
    if (sio_socket_closed(s)) {
        free(rp);
        sio_socket_release(s);
        return;
    }
    rooms_mark_t *m = rooms_sock_mark(sio_socket_rooms(s), rp->name, rp->len);
    if (n < 0 && n != -EPROTO)
        LOG_WARN("recovery: replay of %.*s for %s failed: %s", (int)rp->len, rp->name,
                 sio_socket_id(s), strerror(-n));
    if (m && n == RECOVERY_IO_PAGE)
        replay_room(r, s, rp->name, rp->len, mark_id(m->last));
    free(rp);
    if (st->replays == 0)
        replay_finish(r, s, st);
    sio_socket_release(s);
}

static void replay_room(restore_t *r, sio_socket_t *s, const char *name, size_t len,
                        stream_id_t after)
{
    rsock_t *st = sio_socket_ext(s, r->slot);
    replay_t *rp = xmalloc(sizeof(*rp) + len);
    rp->r = r;
    rp->s = s;
    rp->len = len;
    memcpy(rp->name, name, len);
    sio_socket_hold(s);
    st->replays++;
    int rc = recovery_io_range(r->io, name, len, after, on_replay_entry, on_replay_done, rp);
    if (rc) {
        st->replays--;
        sio_socket_release(s);
        free(rp);
        LOG_WARN("recovery: cannot replay %.*s for %s: %s", (int)len, name, sio_socket_id(s),
                 strerror(-rc));
    }
}

typedef struct walk {
    restore_t *r;
    sio_socket_t *s;
} walk_t;

static void replay_start(const char *name, size_t len, rooms_mark_t *m, void *arg)
{
    walk_t *w = arg;
    replay_room(w->r, w->s, name, len, mark_id(m->last));
}

/* Entries held back after their room's read ended: read them (a bounded number of rounds). */
static void replay_recheck(const char *name, size_t len, rooms_mark_t *m, void *arg)
{
    walk_t *w = arg;
    if (stream_id_cmp(mark_id(m->held), mark_id(m->last)) > 0)
        replay_room(w->r, w->s, name, len, mark_id(m->last));
}

/* From now on the ids up to what was replayed are duplicates. */
static void replay_settle(const char *name, size_t len, rooms_mark_t *m, void *arg)
{
    (void)name;
    (void)len;
    (void)arg;
    memcpy(m->held, m->last, sizeof(m->held));
}

static void replay_finish(restore_t *r, sio_socket_t *s, rsock_t *st)
{
    walk_t w = {r, s};
    if (st->replay_rounds++ < REPLAY_ROUNDS_MAX)
        rooms_sock_foreach_mark(sio_socket_rooms(s), replay_recheck, &w);
    if (st->replays)
        return;
    rooms_sock_foreach_mark(sio_socket_rooms(s), replay_settle, NULL);
    st->replaying = false;
    if (!sio_socket_connected(s, 0))
        return; /* disconnected by the cluster meanwhile */
    LOG_DEBUG("recovery: session %s restored, %u entries replayed", sio_socket_id(s), st->replayed);
    if (sio_connect_reply(s, 0, sio_socket_id(s)))
        sio_socket_close(s);
}

/* Restores s from its record: 0 when the replay started, 1 when it cannot be recovered. */
static int restore(restore_t *r, sio_socket_t *s, rsock_t *st, const char *rec, size_t len)
{
    const char *sid;
    size_t sid_len;
    uint32_t pos;
    if (!rec)
        return 1;
    recovery_log_t *log = xmalloc(sizeof(*log));
    if (recovery_decode(rec, len, &sid, &sid_len, log, NULL, NULL) || !sio_id_ok(sid, sid_len) ||
        sio_socket_by_id(r->sio, sid, SIO_ID_LEN) ||
        recovery_log_locate(log, st->has_offset ? &st->offset : NULL, &pos)) {
        free(log);
        return 1;
    }
    char id[SIO_ID_LEN + 1];
    memcpy(id, sid, SIO_ID_LEN);
    id[SIO_ID_LEN] = '\0';
    rejoin_t c = {s, st, log, pos};
    recovery_decode(rec, len, &sid, &sid_len, log, rejoin_room, &c);
    /* new joins get tags no logged send uses, rooms left since included */
    for (size_t k = 0; k < RECOVERY_LOG_LEN; k++) {
        if (log->e[k].tag > st->next_tag)
            st->next_tag = log->e[k].tag;
    }
    recovery_log_truncate(log, pos);
    unkeep(st);
    /* connected for broadcasts (held back per room until the replay is over), not yet replied */
    sio_socket_restore(s, id);
    keep(st, log);
    if (st->cell) /* killed while replaying, it recovers again */
        recovery_cell_set_sid(st->cell, id, SIO_ID_LEN);
    st->replaying = true;
    walk_t w = {r, s};
    rooms_sock_foreach_mark(sio_socket_rooms(s), replay_start, &w);
    if (st->replays == 0)
        replay_finish(r, s, st);
    return 0;
}

static void on_record(void *arg, const char *rec, size_t len)
{
    rsock_t *st = arg;
    sio_socket_t *s = st->s;
    restore_t *r = st->r;
    if (sio_socket_closed(s)) {
        sio_socket_release(s);
        return;
    }
    /* Without a record in Redis, the session may be one a dead worker left in its cell (claimed
     * only now: the GETDEL's round trip gave the master time to reap it). With one, an older
     * copy in a cell (killed between saving and freeing it) is dropped: one pid, one recovery. */
    uint32_t cell;
    const recovery_cell_t *c =
        r->cells ? shm_sessions_claim(r->cells, st->pid, SIO_ID_LEN, now_ms(), &cell) : NULL;
    if (c) {
        buf_reset(&r->kept);
        if (!rec && recovery_cell_encode(c, st->pid, SIO_ID_LEN, &r->kept) == 0) {
            rec = r->kept.data;
            len = r->kept.len;
        }
        shm_sessions_release(r->cells, cell);
    }
    int rc = restore(r, s, st, rec, len);
    if (rc > 0) {
        st->pid[0] = '\0';
        rc = sio_connect_reply(s, 0, NULL);
    }
    if (rc < 0)
        sio_socket_close(s);
    sio_socket_release(s);
}

/* ==== Lifetime ==== */

restore_t *restore_new(redis_topology_t *topo, const cfg_t *cfg, sio_t *sio, fanout_t *f,
                       stats_worker_t *stats, shm_sessions_t *cells, uint32_t block)
{
    restore_t *r = xcalloc(1, sizeof(*r));
    r->sio = sio;
    r->cells = cells;
    r->block = block;
    r->stats = stats;
    r->io = recovery_io_new(topo, cfg);
    buf_init(&r->tmp);
    buf_init(&r->name);
    buf_init(&r->out);
    buf_init(&r->kept);
    r->slot = sio_observe(sio, &(sio_observer_t){.arg = r,
                                                 .connecting = on_connecting,
                                                 .reply = on_reply,
                                                 .connected = on_connected,
                                                 .joined = on_joined,
                                                 .left = on_left,
                                                 .lost = on_lost,
                                                 .freed = on_freed});
    fanout_observe(f, &(fanout_observer_t){.arg = r, .gate = on_gate});
    return r;
}

typedef struct closing {
    restore_t *r;
    void (*done)(void *arg);
    void *arg;
} closing_t;

static void on_io_closed(void *arg)
{
    closing_t c = *(closing_t *)arg;
    free(arg);
    buf_free(&c.r->tmp);
    buf_free(&c.r->name);
    buf_free(&c.r->out);
    buf_free(&c.r->kept);
    free(c.r);
    if (c.done)
        c.done(c.arg);
}

void restore_close(restore_t *r, void (*done)(void *arg), void *arg)
{
    closing_t *c = xmalloc(sizeof(*c));
    *c = (closing_t){r, done, arg};
    recovery_io_close(r->io, on_io_closed, c);
}
