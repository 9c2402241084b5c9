/*
 * eio_session: sessions, their transports, polling queues and timers. A session's memory is
 * kept while a connection still refers to it (refs) or a handler using it runs (busy), and goes
 * once it has ended and neither holds.
 */
#include "worker/eio/eio_session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "common/ilist.h"
#include "common/proto/eio_payload.h"
#include "common/strmap.h"
#include "common/xalloc.h"

struct eio_session {
    eio_t *e;
    const eio_handlers_t *h;
    void *app;     /* on_open's; NULL once on_close ran */
    conn_t *conn;  /* the WebSocket transport (WebSocket-only or upgraded); NULL while polling */
    conn_t *probe; /* a WebSocket upgrading this polling session */
    conn_t *get;   /* the held polling GET */
    ilist_t link;  /* in e->sessions */
    timerq_node_t ping_node;    /* next ping due */
    timerq_node_t pong_node;    /* waiting for the pong */
    timerq_node_t ready_node;   /* waiting for the application's eio_session_ready */
    timerq_node_t upgrade_node; /* the probing WebSocket must finish the upgrade */
    eio_msg_t **pollq;          /* messages waiting for a GET */
    uint32_t qn, qcap;
    size_t qbytes; /* their polling payload, separators included */
    unsigned refs; /* connections owned by this session */
    unsigned busy; /* inside a handler that still uses the session */
    bool ended;    /* over: no longer in the sid map */
    bool probed;   /* the probe answered 3probe: polling is paused */
    char sid[EIO_SID_LEN + 1];
};

struct eio {
    uv_loop_t *loop;
    const timerq_clock_t *clk;
    eio_config_t cfg;
    eio_transport_t tr;
    stats_worker_t *stats;
    strmap_t *sids;
    timerq_t *pingq, *pongq, *readyq, *upgradeq;
    ilist_t sessions; /* the newest first */
    ids_pool_t ids;   /* the sessions' ids (zeroed: empty) */
    size_t nsessions;
    bool closing;
    bool ending;  /* eio_close_all is ending the sessions: done runs after, never inside */
    bool freeing; /* eio_free ran: the last session freed releases the memory */
    void (*closed)(void *arg);
    void *closed_arg;
    buf_t body; /* the payload of one polling answer */
    buf_t bin;  /* a binary record of a POST, decoded */
    buf_t open; /* an open packet */
    /* what follows the sid in an open packet, encoded once: without and with the websocket
     * upgrade offered */
    buf_t open_tail[2];
};

static void session_end(eio_session_t *s, bool client_close);

/* ==== Server ==== */

static void release(eio_t *e)
{
    strmap_free(e->sids);
    buf_free(&e->body);
    buf_free(&e->bin);
    buf_free(&e->open);
    buf_free(&e->open_tail[0]);
    buf_free(&e->open_tail[1]);
    free(e);
}

static void maybe_closed(eio_t *e)
{
    if (e->closing && !e->ending && e->nsessions == 0 && e->closed) {
        void (*fn)(void *) = e->closed;
        e->closed = NULL;
        fn(e->closed_arg);
    }
}

/* The current time, not the loop's cached one: a deadline is never judged on stale time. */
static uint64_t now_ms(eio_t *e)
{
    if (e->clk)
        return e->clk->now(e->clk->arg);
    uv_update_time(e->loop);
    return uv_now(e->loop);
}

static eio_session_t *session_of(timerq_node_t *n, size_t offset)
{
    return (eio_session_t *)((char *)n - offset);
}

static void on_ping_due(timerq_node_t *n, void *arg)
{
    eio_t *e = arg;
    eio_session_t *s = session_of(n, offsetof(eio_session_t, ping_node));
    timerq_add(e->pongq, &s->pong_node);
    eio_session_send_text(s, "2", 1);
}

static void on_pong_late(timerq_node_t *n, void *arg)
{
    (void)arg;
    session_end(session_of(n, offsetof(eio_session_t, pong_node)), false);
}

static void on_ready_late(timerq_node_t *n, void *arg)
{
    eio_t *e = arg;
    eio_session_t *s = session_of(n, offsetof(eio_session_t, ready_node));
    /* a WebSocket already failed (1009, 1007...) is only waiting for its peer's FIN: that
     * refusal was counted once, where it happened */
    if (!s->conn || e->tr.open(e->tr.arg, s->conn))
        STATS_ADD(e->stats->limit_rejections[STATS_LIMIT_FIRST_PACKET_TIMEOUT], 1);
    session_end(s, false);
}

static void on_upgrade_late(timerq_node_t *n, void *arg)
{
    eio_t *e = arg;
    eio_session_t *s = session_of(n, offsetof(eio_session_t, upgrade_node));
    if (s->probe)
        e->tr.ws_close(e->tr.arg, s->probe, 0); /* polling resumes once it is gone */
}

static int queue_new(eio_t *e, timerq_t **q, uint64_t ms, void (*fire)(timerq_node_t *n, void *arg))
{
    return e->clk ? timerq_new_on(q, e->clk, ms, fire, e) : timerq_new(q, e->loop, ms, fire, e);
}

int eio_new(eio_t **out, uv_loop_t *loop, const timerq_clock_t *clk, const eio_config_t *cfg,
            const eio_transport_t *tr, stats_worker_t *stats)
{
    eio_t *e = xcalloc(1, sizeof(*e));
    ilist_init(&e->sessions);
    e->loop = loop;
    e->clk = clk;
    e->cfg = *cfg;
    e->tr = *tr;
    e->stats = stats;
    e->sids = strmap_new();
    buf_init(&e->body);
    buf_init(&e->bin);
    buf_init(&e->open);
    for (int up = 0; up < 2; up++) {
        buf_init(&e->open_tail[up]);
        buf_printf(&e->open_tail[up],
                   "\",\"upgrades\":[%s],\"pingInterval\":%llu,\"pingTimeout\":%llu,"
                   "\"maxPayload\":%d}",
                   up ? "\"websocket\"" : "", (unsigned long long)cfg->ping_interval_ms,
                   (unsigned long long)cfg->ping_timeout_ms, cfg->max_payload);
    }
    int rc = queue_new(e, &e->pingq, cfg->ping_interval_ms, on_ping_due);
    if (!rc)
        rc = queue_new(e, &e->pongq, cfg->ping_timeout_ms, on_pong_late);
    if (!rc)
        rc = queue_new(e, &e->readyq, cfg->ready_timeout_ms, on_ready_late);
    if (!rc)
        rc = queue_new(e, &e->upgradeq, cfg->upgrade_timeout_ms, on_upgrade_late);
    if (rc) {
        eio_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void eio_close_all(eio_t *e, void (*done)(void *arg), void *arg)
{
    e->closing = true;
    e->closed = done;
    e->closed_arg = arg;
    e->ending = true;
    ILIST_FOREACH_SAFE(l, &e->sessions)
    {
        session_end(ILIST_ENTRY(l, eio_session_t, link), false);
    }
    e->ending = false;
    maybe_closed(e); /* last: done may free e */
}

bool eio_closing(const eio_t *e)
{
    return e->closing;
}

size_t eio_sessions(const eio_t *e)
{
    return e->nsessions;
}

void eio_free(eio_t *e)
{
    if (!e)
        return;
    timerq_close(e->pingq);
    timerq_close(e->pongq);
    timerq_close(e->readyq);
    timerq_close(e->upgradeq);
    ILIST_FOREACH_SAFE(l, &e->sessions)
    {
        session_end(ILIST_ENTRY(l, eio_session_t, link), false);
    }
    /* sessions still holding connections go when those close: eio_conn_closed needs e */
    e->freeing = true;
    if (e->nsessions == 0)
        release(e);
}

/* ==== Transports and output ==== */

static void attach(eio_session_t *s, conn_t *c)
{
    s->e->tr.own(s->e->tr.arg, c, s);
    s->refs++;
}

static void detach(eio_session_t *s, conn_t *c)
{
    s->e->tr.own(s->e->tr.arg, c, NULL);
    s->refs--;
}

static void pollq_reset(eio_session_t *s)
{
    for (uint32_t i = 0; i < s->qn; i++)
        eio_msg_unref(s->pollq[i]);
    s->qn = 0;
    s->qbytes = 0;
}

static void respond(eio_session_t *s, conn_t *c, int status, const char *ctype, const char *body,
                    size_t len)
{
    s->e->tr.respond(s->e->tr.arg, c, status, ctype, body, len, true);
}

/* c is the session's held GET: counted in stats->polls_held, so the number of GETs waiting for
 * data can be seen from outside, until unhold. */
static void hold(eio_session_t *s, conn_t *c)
{
    s->get = c;
    attach(s, c);
    STATS_ADD(s->e->stats->polls_held, 1);
}

/* The held GET is over, answered or closed. */
static void unhold(eio_session_t *s)
{
    s->get = NULL;
    STATS_SUB(s->e->stats->polls_held, 1);
}

/* Answers the GET c with the queued packets, or with `fallback` when none is queued. */
static void poll_answer(eio_session_t *s, conn_t *c, const char *fallback)
{
    static const char ctype[] = "text/plain; charset=UTF-8";
    if (!s->qn) {
        respond(s, c, 200, ctype, fallback, strlen(fallback));
        return;
    }
    buf_t *b = &s->e->body;
    buf_reset(b);
    for (uint32_t i = 0; i < s->qn; i++) {
        refbuf_t *rec = eio_msg_records(s->pollq[i]);
        if (i)
            buf_putc(b, EIO_PAYLOAD_SEP);
        buf_append(b, refbuf_data(rec), refbuf_len(rec));
    }
    pollq_reset(s);
    respond(s, c, 200, ctype, b->data, b->len);
}

/* Answers the held GET as poll_answer does, when there is something to answer it with. */
static void poll_flush(eio_session_t *s, const char *fallback)
{
    conn_t *c = s->get;
    if (!c || (!s->qn && !fallback))
        return;
    unhold(s);
    detach(s, c);
    poll_answer(s, c, fallback);
}

/* Queues m for the next GET (answering a held one now). A client that stopped polling stops
 * answering pings too: the heartbeat ends it, and meanwhile what it would receive is dropped
 * (ending it here could be inside a broadcast's walk). */
static void poll_queue(eio_session_t *s, eio_msg_t *m)
{
    if (s->ended || s->qbytes > s->e->cfg.max_poll_queue)
        return;
    refbuf_t *rec = eio_msg_records(m);
    if (!rec)
        return;
    if (s->qn == s->qcap) {
        s->qcap = s->qcap ? s->qcap * 2 : 4;
        s->pollq = xrealloc(s->pollq, s->qcap * sizeof(*s->pollq));
    }
    s->qbytes += refbuf_len(rec) + (s->qn ? 1 : 0);
    s->pollq[s->qn++] = eio_msg_ref(m);
    poll_flush(s, NULL);
}

void eio_session_send_text(eio_session_t *s, const char *p, size_t len)
{
    eio_t *e = s->e;
    if (s->conn) {
        e->tr.ws_text(e->tr.arg, s->conn, p, len);
        return;
    }
    if (s->ended || s->qbytes > e->cfg.max_poll_queue)
        return;
    eio_msg_t *m = eio_msg_new(p, len, NULL, 0, 0);
    poll_queue(s, m);
    eio_msg_unref(m);
}

bool eio_session_send_msg(eio_session_t *s, eio_msg_t *m)
{
    eio_t *e = s->e;
    if (s->conn)
        return e->tr.ws_msg(e->tr.arg, s->conn, m) == 0;
    poll_queue(s, m);
    return true;
}

size_t eio_session_backlog(const eio_session_t *s)
{
    return s->conn ? s->e->tr.backlog(s->e->tr.arg, s->conn) : s->qbytes;
}

/* ==== Lifecycle ==== */

static void maybe_free(eio_session_t *s)
{
    if (!s->ended || s->refs || s->busy)
        return;
    eio_t *e = s->e;
    ilist_remove(&s->link);
    pollq_reset(s);
    free(s->pollq);
    free(s);
    e->nsessions--;
    if (e->freeing) {
        if (e->nsessions == 0)
            release(e);
        return;
    }
    maybe_closed(e);
}

/* Ends the session: the sid is forgotten, the application told, transports closed, memory freed
 * once no connection refers to it. client_close: the client sent `1` (a held GET gets a noop). */
static void session_end(eio_session_t *s, bool client_close)
{
    if (s->ended)
        return;
    eio_t *e = s->e;
    s->ended = true;
    s->busy++;
    strmap_del(e->sids, s->sid, EIO_SID_LEN);
    timerq_remove(e->pingq, &s->ping_node);
    timerq_remove(e->pongq, &s->pong_node);
    timerq_remove(e->readyq, &s->ready_node);
    timerq_remove(e->upgradeq, &s->upgrade_node);
    STATS_SUB(e->stats->connections, 1);
    STATS_ADD(e->stats->disconnects, 1);
    if (s->app) {
        void *app = s->app;
        s->app = NULL;
        s->h->on_close(app);
    }
    pollq_reset(s);
    if (s->get)
        poll_flush(s, client_close ? "6" : "1");
    if (s->probe)
        e->tr.ws_close(e->tr.arg, s->probe, 0);
    if (s->conn)
        e->tr.ws_close(e->tr.arg, s->conn, e->closing ? 1001 : (client_close ? 1000 : 0));
    s->busy--;
    maybe_free(s);
}

void eio_session_close(eio_session_t *s)
{
    session_end(s, false);
}

bool eio_session_closed(const eio_session_t *s)
{
    return s->ended;
}

void eio_session_ready(eio_session_t *s)
{
    timerq_remove(s->e->readyq, &s->ready_node);
}

const char *eio_session_sid(const eio_session_t *s)
{
    return s->sid;
}

const eio_handlers_t *eio_session_handlers(const eio_session_t *s)
{
    return s->h;
}

bool eio_session_upgraded(const eio_session_t *s)
{
    return s->conn != NULL;
}

int eio_sid_slot(const char *sid, size_t len)
{
    const char *a = len == EIO_SID_LEN && sid[0] ? strchr(EIO_SID_DIGITS, sid[0]) : NULL;
    const char *b = a && sid[1] ? strchr(EIO_SID_DIGITS, sid[1]) : NULL;
    return b ? (int)((a - EIO_SID_DIGITS) * 64 + (b - EIO_SID_DIGITS)) : -1;
}

const char *eio_sid_tag(const char *sid, size_t len)
{
    if (len != EIO_SID_LEN)
        return NULL;
    for (size_t i = 2; i < 2 + EIO_SID_TAG_LEN; i++) {
        if (!sid[i] || !strchr(EIO_SID_DIGITS, sid[i]))
            return NULL;
    }
    return sid + 2;
}

/* Session ids name their worker: 2 characters of slot, 4 of server tag, then random ones (see
 * handoff and relay in eio_endpoint). */
static int new_sid(eio_t *e, char sid[EIO_SID_LEN + 1])
{
    const char *digits = EIO_SID_DIGITS;
    if (ids_pool_random(&e->ids, sid + 2, EIO_SID_LEN - 2))
        return -EIO;
    if (strlen(e->cfg.tag) == EIO_SID_TAG_LEN)
        memcpy(sid + 2, e->cfg.tag, EIO_SID_TAG_LEN);
    sid[0] = digits[(e->cfg.slot >> 6) & 63];
    sid[1] = digits[e->cfg.slot & 63];
    sid[EIO_SID_LEN] = '\0';
    return 0;
}

int eio_session_open(eio_t *e, const eio_handlers_t *h, conn_t *c, const http_req_t *req,
                     const struct sockaddr_storage *peer, bool websocket, bool upgrades,
                     eio_session_t **out)
{
    eio_session_t *s = xcalloc(1, sizeof(*s));
    if (new_sid(e, s->sid)) {
        free(s);
        return -EIO;
    }
    s->e = e;
    s->h = h;
    strmap_put(e->sids, s->sid, EIO_SID_LEN, s);
    ilist_push_front(&e->sessions, &s->link);
    e->nsessions++;
    STATS_ADD(e->stats->connections, 1);
    STATS_ADD(e->stats->handshakes, 1);
    timerq_add(e->pingq, &s->ping_node);
    timerq_add(e->readyq, &s->ready_node);
    s->app = h->on_open(h->arg, s, req, peer);
    buf_t *o = &e->open;
    const buf_t *tail = &e->open_tail[upgrades && !websocket];
    buf_reset(o);
    buf_append(o, "0{\"sid\":\"", 9);
    buf_append(o, s->sid, EIO_SID_LEN);
    buf_append(o, tail->data, tail->len);
    if (websocket) {
        s->conn = c;
        attach(s, c);
        eio_session_send_text(s, o->data, o->len);
    } else {
        respond(s, c, 200, "text/plain; charset=UTF-8", o->data, o->len);
    }
    if (out)
        *out = s;
    return 0;
}

eio_session_t *eio_find(eio_t *e, const char *sid, size_t len)
{
    eio_session_t *s = len ? strmap_get(e->sids, sid, len) : NULL;
    if (!s)
        return NULL;
    /* the client's pong (or the application's ready) is overdue but its timer has not fired
     * yet in this loop turn */
    uint64_t now = now_ms(e);
    if ((timerq_armed(&s->pong_node) && now >= s->pong_node.due) ||
        (timerq_armed(&s->ping_node) && now >= s->ping_node.due + e->cfg.ping_timeout_ms) ||
        (timerq_armed(&s->ready_node) && now >= s->ready_node.due)) {
        session_end(s, false);
        return NULL;
    }
    return s;
}

/* ==== Client packets, whatever the transport ==== */

/* One text packet from the client; negative: the session must close. */
static int eio_text(eio_session_t *s, const char *msg, size_t len)
{
    eio_t *e = s->e;
    if (len == 0)
        return -EPROTO;
    if (timerq_armed(&s->pong_node) && msg[0] != '3')
        timerq_add(e->pongq, &s->pong_node); /* Node refreshes the deadline on any packet */
    switch (msg[0]) {
    case '3': /* pong: the next ping is pingInterval from now */
        timerq_remove(e->pongq, &s->pong_node);
        timerq_add(e->pingq, &s->ping_node);
        return 0;
    case '4':
        return s->h->on_text(s->app, msg + 1, len - 1);
    case '1':
        session_end(s, true);
        return 0;
    case '6':
        return 0;
    default: /* a client ping ('2') is the wrong direction in v4; anything else is garbage */
        return -EPROTO;
    }
}

void eio_session_poll_get(eio_session_t *s, conn_t *c)
{
    eio_t *e = s->e;
    if (s->get) {
        /* overlapping GETs: the new one fails, the held one gets `1`, the session ends */
        e->tr.respond(e->tr.arg, c, 400, "text/html", NULL, 0, false);
        session_end(s, false);
        return;
    }
    if (s->qn || s->probed) {
        poll_answer(s, c, "6");
        return;
    }
    if (e->tr.hold(e->tr.arg, c)) {
        e->tr.close(e->tr.arg, c);
        return;
    }
    hold(s, c);
}

void eio_session_poll_post(eio_session_t *s, conn_t *c, const char *body, size_t blen)
{
    eio_t *e = s->e;
    size_t pos = 0, rlen;
    const char *rec;
    int rc = blen ? 0 : -EPROTO;
    s->busy++;
    while (!rc && !s->ended && eio_payload_next(body, blen, &pos, &rec, &rlen)) {
        if (rlen && rec[0] == 'b') {
            rc = eio_payload_b64_decode(rec + 1, rlen - 1, &e->bin);
            if (!rc)
                rc = s->h->on_binary(s->app, (const uint8_t *)e->bin.data, e->bin.len);
        } else {
            rc = eio_text(s, rec, rlen);
        }
    }
    if (rc) {
        session_end(s, false);
        respond(s, c, 400, "text/html", NULL, 0);
    } else {
        respond(s, c, 200, "text/html", "ok", 2);
    }
    s->busy--;
    maybe_free(s);
}

void eio_session_probe(eio_session_t *s, conn_t *c)
{
    eio_t *e = s->e;
    if (s->conn || s->probe) {
        e->tr.ws_close(e->tr.arg, c, 0); /* accepted then closed: the suites expect no 400 */
        return;
    }
    s->probe = c;
    attach(s, c);
    timerq_add(e->upgradeq, &s->upgrade_node);
}

/* ==== Transport events ==== */

static void on_probe_text(eio_session_t *s, conn_t *c, const char *msg, size_t len)
{
    eio_t *e = s->e;
    if (len == 6 && memcmp(msg, "2probe", 6) == 0 && !s->probed) {
        e->tr.ws_text(e->tr.arg, c, "3probe", 6);
        s->probed = true;
        poll_flush(s, "6");
        return;
    }
    if (len == 1 && msg[0] == '5' && s->probed) {
        timerq_remove(e->upgradeq, &s->upgrade_node);
        s->probe = NULL;
        s->conn = c;
        poll_flush(s, "6");
        /* what waited for a GET now goes over the WebSocket, in order */
        for (uint32_t i = 0; i < s->qn; i++)
            e->tr.ws_msg(e->tr.arg, c, s->pollq[i]);
        pollq_reset(s);
        return;
    }
    e->tr.ws_close(e->tr.arg, c, 0); /* anything else aborts the upgrade */
}

void eio_ws_text(conn_t *c, eio_session_t *s, const char *msg, size_t len)
{
    if (s->ended)
        return;
    if (c == s->probe) {
        on_probe_text(s, c, msg, len);
        return;
    }
    if (c != s->conn)
        return;
    s->busy++;
    if (eio_text(s, msg, len) < 0)
        session_end(s, false);
    s->busy--;
    maybe_free(s);
}

void eio_ws_binary(conn_t *c, eio_session_t *s, const uint8_t *msg, size_t len)
{
    eio_t *e = s->e;
    if (c != s->conn && c != s->probe) {
        if (e->tr.ws_close(e->tr.arg, c, 0))
            e->tr.close(e->tr.arg, c);
        return;
    }
    if (s->ended)
        return;
    if (c == s->probe) {
        e->tr.ws_close(e->tr.arg, c, 0);
        return;
    }
    s->busy++;
    if (s->h->on_binary(s->app, msg, len) < 0)
        session_end(s, false);
    s->busy--;
    maybe_free(s);
}

void eio_conn_closed(conn_t *c, eio_session_t *s)
{
    eio_t *e = s->e;
    s->refs--;
    s->busy++;
    if (c == s->get) {
        unhold(s);
    } else if (c == s->probe) {
        s->probe = NULL;
        s->probed = false;
        timerq_remove(e->upgradeq, &s->upgrade_node);
    } else if (c == s->conn) {
        s->conn = NULL;
        session_end(s, false);
    }
    s->busy--;
    maybe_free(s);
}
