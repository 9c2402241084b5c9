/* session_recovery: Socket.IO connection state recovery for sessions. See session_int.h. */
#include "worker/session_int.h"

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
void sess_recovery_joined(session_t *s, const char *room, size_t len)
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
bool sess_recovery_gate(session_t *s, recovery_id_t id)
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
void sess_recovery_save(session_t *s)
{
    sessions_t *ss = s->ss;
    if (!ss->rio || !s->rlog || !s->pid[0] || !(s->nsp_mask & 1u))
        return;
    save_rooms_t r = {xcalloc(s->rooms.count + 1, sizeof(*r.v)), 0, s->rooms.count};
    buf_t rec;
    buf_init(&rec);
    rooms_sock_foreach_mark(&s->rooms, save_room, &r);
    int rc = recovery_encode(&rec, s->sio_sid, SID_LEN, s->rlog, r.v, r.n);
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
        if (!memchr(SID_DIGITS, p[i], sizeof(SID_DIGITS) - 1))
            return false;
    }
    return true;
}

/*
 * A main CONNECT with recovery on: when its auth carries a pid of ours, asks for that session's
 * record and returns 0 (the reply comes later); 1 when there is nothing to recover.
 */
int sess_recovery_begin(session_t *s, const sio_packet_t *pk)
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
    sess_host_joined(ss, rc, r->name, r->len);
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
    payload_packet(&ss->out, rp->name, rp->len, id, id_len, fields, nfields, true);
    sess_send_text(s, &ss->out);
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
        sess_maybe_free(s);
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
    replay_t *rp = xmalloc(sizeof(*rp) + len);
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
    if (sess_connect_reply(s, 0, s->sio_sid))
        sess_fail(s);
}

/* Restores s from its record: 0 when the replay started, 1 when it cannot be recovered. */
static int restore(session_t *s, const char *rec, size_t len)
{
    sessions_t *ss = s->ss;
    const char *sid;
    size_t sid_len;
    uint32_t pos;
    if (!rec)
        return 1;
    recovery_log_t *log = xmalloc(sizeof(*log));
    if (recovery_decode(rec, len, &sid, &sid_len, log, NULL, NULL) || !id_text_ok(sid, sid_len) ||
        sess_host_by_id(ss, sid, SID_LEN) ||
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
        sess_maybe_free(s);
        return;
    }
    int rc = restore(s, rec, len);
    if (rc > 0) {
        s->pid[0] = '\0';
        rc = sess_connect_reply(s, 0, NULL);
    }
    if (rc < 0)
        sess_fail(s);
}
