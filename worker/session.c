/* session: see session.h; Engine.IO sessions, transports, lifecycle. See session_int.h. */
#include "worker/session_int.h"

/* ---- limit counters (streamio_limit_rejections_total) ---- */

void sess_count_limit(sessions_t *ss, enum stats_limit l)
{
    STATS_ADD(ss->stats->limit_rejections[l], 1);
}

/* conn's own refusals; ud is the sessions (conn_handlers_t.ud). */
static void on_conn_refused(conn_refusal_t why, void *ud)
{
    static const enum stats_limit map[] = {
        [CONN_REFUSED_HEADER_SIZE] = STATS_LIMIT_HEADER_SIZE,
        [CONN_REFUSED_BODY_SIZE] = STATS_LIMIT_BODY_SIZE,
        [CONN_REFUSED_WS_MESSAGE] = STATS_LIMIT_WS_MESSAGE,
        [CONN_REFUSED_OUTPUT] = STATS_LIMIT_OUTPUT_BUFFER,
        [CONN_REFUSED_HEADER_TIMEOUT] = STATS_LIMIT_HEADER_TIMEOUT,
        [CONN_REFUSED_BODY_TIMEOUT] = STATS_LIMIT_BODY_TIMEOUT,
    };
    sess_count_limit(ud, map[why]);
}

/* ---- output: WebSocket frames, or a polling payload for the next GET ---- */

void sess_poll_respond(session_t *s, conn_t *c, const char *body, size_t len)
{
    sess_http_answer(s->ss, c, 200, "text/plain; charset=UTF-8", body, len);
}

static void detach(session_t *s, conn_t *c)
{
    conn_set_data(c, s->ss);
    s->refs--;
}

void sess_attach(session_t *s, conn_t *c)
{
    conn_set_data(c, s);
    s->refs++;
}

/* Answers the held GET with the queued packets, or with `fallback` when none is queued. */
void sess_poll_flush(session_t *s, const char *fallback)
{
    conn_t *c = s->get;
    if (!c || (!s->pollq.len && !fallback))
        return;
    s->get = NULL;
    detach(s, c);
    if (s->pollq.len)
        sess_poll_respond(s, c, s->pollq.data, s->pollq.len);
    else
        sess_poll_respond(s, c, fallback, strlen(fallback));
    buf_reset(&s->pollq);
}

void sess_send_packet(session_t *s, const char *p, size_t len)
{
    if (s->conn) {
        conn_ws_send_text(s->conn, p, len);
        return;
    }
    /* a client that stopped polling stops answering pings too: the heartbeat ends it, and
     * meanwhile what it would receive is dropped (ending it here could be inside a room walk) */
    if (s->ended || s->pollq.len > POLLQ_MAX || eio_payload_add_text(&s->pollq, p, len) != 0)
        return;
    sess_poll_flush(s, NULL);
}

void sess_send_binary(session_t *s, const void *p, size_t len)
{
    if (s->conn) {
        refbuf_t *f = ws_frame_new(WS_FRAME_BINARY, p, len);
        if (f) {
            conn_ws_send_frame(s->conn, f);
            refbuf_unref(f);
        }
        return;
    }
    if (s->ended || s->pollq.len > POLLQ_MAX || eio_payload_add_binary(&s->pollq, p, len) != 0)
        return;
    sess_poll_flush(s, NULL);
}

void sess_send_text(session_t *s, const buf_t *b)
{
    sess_send_packet(s, b->data, b->len);
}

/* ---- Engine.IO packets, whatever the transport ---- */

/* One text packet from the client; negative: the session must close. */
int sess_eio_text(session_t *s, const char *msg, size_t len)
{
    sessions_t *ss = s->ss;
    if (len == 0)
        return -EPROTO;
    if (timerq_armed(&s->pong_node) && msg[0] != '3')
        timerq_add(ss->pongq, &s->pong_node); /* Node refreshes the deadline on any packet */
    switch (msg[0]) {
    case '3': /* pong: the next ping is pingInterval from now */
        timerq_remove(ss->pongq, &s->pong_node);
        timerq_add(ss->pingq, &s->ping_node);
        return 0;
    case '4':
        if (s->raw) {
            sess_send_packet(s, msg, len);
            return 0;
        }
        return sess_on_sio(s, msg + 1, len - 1);
    case '1':
        sess_end(s, true);
        return 0;
    case '6':
        return 0;
    default: /* a client ping ('2') is the wrong direction in v4; anything else is garbage */
        return -EPROTO;
    }
}

int sess_eio_binary(session_t *s, const uint8_t *msg, size_t len)
{
    if (s->raw) {
        sess_send_binary(s, msg, len);
        return 0;
    }
    return sess_on_sio_binary(s, msg, len);
}

/* ---- session lifecycle ---- */

void sess_maybe_free(session_t *s)
{
    if (!s->ended || s->refs || s->busy)
        return;
    sessions_t *ss = s->ss;
    if (s->prev)
        s->prev->next = s->next;
    else
        ss->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    for (unsigned i = 0; i < NSP_MAX; i++)
        free(s->auth[i]);
    buf_free(&s->pollq);
    buf_free(&s->bin_pkt);
    buf_free(&s->bin_att);
    buf_free(&s->qtoken);
    free(s->handshake);
    auth_grant_free(s->grant);
    free(s->rlog);
    if (s->admitted)
        limits_conn_release(ss->limits, (const struct sockaddr *)&s->peer);
    ss->nsessions--;
    free(s);
}

/* Ends the Engine.IO session: the sid is forgotten, transports closed, memory freed once no
 * connection refers to it. client_close: the client sent `1` (a held GET gets a noop). */
void sess_end(session_t *s, bool client_close)
{
    if (s->ended)
        return;
    sessions_t *ss = s->ss;
    sess_recovery_save(s);
    s->ended = true;
    strmap_del(ss->sids, s->sid, strlen(s->sid));
    sess_host_leave_all(ss, s);
    timerq_remove(ss->pingq, &s->ping_node);
    timerq_remove(ss->pongq, &s->pong_node);
    timerq_remove(ss->connectq, &s->connect_node);
    timerq_remove(ss->authq, &s->auth_node);
    timerq_remove(ss->upgradeq, &s->upgrade_node);
    deadlineq_remove(ss->expiryq, &s->expiry_node);
    STATS_SUB(ss->stats->connections, 1);
    STATS_ADD(ss->stats->disconnects, 1);
    STATS_SET(ss->stats->rooms, rooms_count(ss->rooms));
    buf_reset(&s->pollq);
    if (s->get)
        sess_poll_flush(s, client_close ? "6" : "1");
    if (s->probe)
        conn_ws_close(s->probe, 0);
    if (s->conn)
        conn_ws_close(s->conn, ss->closing ? 1001 : (client_close ? 1000 : 0));
    sess_maybe_free(s);
}

void sess_fail(session_t *s)
{
    sess_end(s, false);
}

/* ---- connection callbacks ---- */

static session_t *session_of_ud(void *ud)
{
    return *(enum owner_kind *)ud == OWNER_SESSION ? ud : NULL;
}

static void on_probe_text(session_t *s, conn_t *c, const char *msg, size_t len)
{
    if (len == 6 && memcmp(msg, "2probe", 6) == 0 && !s->probed) {
        conn_ws_send_text(c, "3probe", 6);
        s->probed = true;
        sess_poll_flush(s, "6");
        return;
    }
    if (len == 1 && msg[0] == '5' && s->probed) {
        timerq_remove(s->ss->upgradeq, &s->upgrade_node);
        s->probe = NULL;
        s->conn = c;
        sess_poll_flush(s, "6");
        /* what waited for a GET now goes over the WebSocket, in order */
        buf_t q = s->pollq;
        buf_init(&s->pollq);
        size_t pos = 0, rlen;
        const char *rec;
        while (q.len && eio_payload_next(q.data, q.len, &pos, &rec, &rlen)) {
            if (rlen && rec[0] == 'b') {
                if (eio_payload_b64_decode(rec + 1, rlen - 1, &s->ss->bin) == 0)
                    sess_send_binary(s, s->ss->bin.data, s->ss->bin.len);
            } else {
                conn_ws_send_text(c, rec, rlen);
            }
        }
        buf_free(&q);
        return;
    }
    conn_ws_close(c, 0); /* anything else aborts the upgrade */
}

static void on_ws_text(conn_t *c, const char *msg, size_t len, void *ud)
{
    session_t *s = session_of_ud(ud);
    if (!s) {
        conn_close(c);
        return;
    }
    if (s->ended)
        return;
    if (c == s->probe) {
        on_probe_text(s, c, msg, len);
        return;
    }
    if (c != s->conn)
        return;
    s->busy++;
    if (sess_eio_text(s, msg, len) < 0)
        sess_fail(s);
    s->busy--;
    sess_maybe_free(s);
}

static void on_ws_binary(conn_t *c, const uint8_t *msg, size_t len, void *ud)
{
    session_t *s = session_of_ud(ud);
    if (!s || (c != s->conn && c != s->probe)) {
        if (conn_ws_close(c, 0))
            conn_close(c);
        return;
    }
    if (s->ended)
        return;
    if (c == s->probe) {
        conn_ws_close(c, 0);
        return;
    }
    s->busy++;
    if (sess_eio_binary(s, msg, len) < 0)
        sess_fail(s);
    s->busy--;
    sess_maybe_free(s);
}

static void on_rio_closed(void *arg)
{
    (void)arg;
}

static void release(sessions_t *ss)
{
    if (ss->rio)
        recovery_io_close(ss->rio, on_rio_closed, NULL);
    auth_free(ss->auth);
    limits_free(ss->limits);
    rooms_free(ss->rooms);
    strmap_free(ss->sids);
    free(ss->cors);
    buf_free(&ss->out);
    buf_free(&ss->tmp);
    buf_free(&ss->name);
    buf_free(&ss->bin);
    buf_free(&ss->hdrs);
    buf_free(&ss->gz);
    buf_free(&ss->fwd);
    free(ss);
}

static void maybe_closed(sessions_t *ss)
{
    if (ss->closing && ss->nsessions == 0 && ss->closed) {
        void (*fn)(void *) = ss->closed;
        ss->closed = NULL;
        if (ss->rio) {
            /* the records of the sessions just closed are sent before the worker goes */
            recovery_io_t *io = ss->rio;
            ss->rio = NULL;
            recovery_io_close(io, fn, ss->closed_arg);
            return;
        }
        fn(ss->closed_arg);
    }
}

static void on_close(conn_t *c, void *ud)
{
    session_t *s = session_of_ud(ud);
    sessions_t *ss = s ? s->ss : ud;
    ss->nconns--;
    if (s) {
        s->refs--;
        s->busy++;
        if (c == s->get) {
            s->get = NULL;
        } else if (c == s->probe) {
            s->probe = NULL;
            s->probed = false;
            timerq_remove(ss->upgradeq, &s->upgrade_node);
        } else if (c == s->conn) {
            s->conn = NULL;
            sess_end(s, false);
        }
        s->busy--;
        sess_maybe_free(s);
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
    timerq_add(ss->pongq, &s->pong_node);
    sess_send_packet(s, "2", 1);
}

static void on_pong_late(timerq_node_t *n, void *arg)
{
    (void)arg;
    sess_fail(session_of(n, offsetof(session_t, pong_node)));
}

static void on_connect_late(timerq_node_t *n, void *arg)
{
    sess_count_limit(arg, STATS_LIMIT_FIRST_PACKET_TIMEOUT);
    sess_fail(session_of(n, offsetof(session_t, connect_node)));
}

static void on_upgrade_late(timerq_node_t *n, void *arg)
{
    (void)arg;
    session_t *s = session_of(n, offsetof(session_t, upgrade_node));
    if (s->probe)
        conn_ws_close(s->probe, 0); /* polling resumes once it is gone */
}

static void on_auth_due(timerq_node_t *n, void *arg)
{
    (void)arg;
    session_t *s = session_of(n, offsetof(session_t, auth_node));
    for (unsigned i = 0; i < NSP_MAX; i++) {
        if (s->auth_pending & (1u << i))
            sess_send_auth(s, i);
    }
    s->auth_pending = 0;
}

/* ---- options: SOCKETIO_* come validated in cfg (common/config); test switches from env ---- */

static int parse_options(sessions_t *ss)
{
    const cfg_t *cfg = ss->cfg;
    const char *v = getenv("STREAMIO_CONFORMANCE");
    ss->conformance = v && strcmp(v, "1") == 0;
    v = getenv("STREAMIO_DEBUG_PAGE");
    ss->debug_page = v && strcmp(v, "1") == 0;
    _Static_assert(CONFIG_MAX_NAMESPACES <= NSP_MAX, "one nsp_mask bit per namespace");
    _Static_assert(CONFIG_NAMESPACE_SIZE <= sizeof(ss->nsp[0].name), "namespace size");
    ss->nnsp = 0;
    for (int i = 0; i < cfg->nnamespaces; i++) {
        size_t n = strlen(cfg->namespaces[i]);
        memcpy(ss->nsp[ss->nnsp].name, cfg->namespaces[i], n + 1);
        ss->nsp[ss->nnsp++].len = n;
    }
    if (ss->conformance && !getenv("SOCKETIO_NAMESPACES") && ss->nnsp < NSP_MAX)
        ss->nsp[ss->nnsp++] = (nsp_name_t){"/custom", 7};
    ss->transports = ((cfg->transports & CONFIG_TRANSPORT_POLLING) ? TR_POLLING : 0) |
                     ((cfg->transports & CONFIG_TRANSPORT_WEBSOCKET) ? TR_WEBSOCKET : 0);
    if (cfg->cors_origins[0] && !(ss->cors = strdup(cfg->cors_origins)))
        return -ENOMEM;
    return 0;
}

/* ---- public ---- */

int sessions_new(sessions_t **out, uv_loop_t *loop, const cfg_t *cfg, shm_region_t *region,
                 const local_sock_t *socks, uint32_t slot)
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
    buf_init(&ss->bin);
    buf_init(&ss->hdrs);
    buf_init(&ss->gz);
    buf_init(&ss->fwd);
    int rc = parse_options(ss);
    buf_t err;
    buf_init(&err);
    if (rc == 0 && (rc = auth_new(&ss->auth, cfg, &err)) != 0)
        LOG_ERROR("%s", err.data ? err.data : "cannot set up authentication");
    buf_free(&err);
    if (rc == 0) {
        limits_config_t lc;
        limits_config_from_cfg(&lc, cfg, cfg->cluster_workers);
        rc = limits_new(&ss->limits, &lc);
    }
    if (rc) {
        release(ss);
        return rc;
    }
    conn_limits_t lim = {
        .max_header_bytes = 8192,
        .max_ws_message = (size_t)cfg->max_payload,
        .max_outq_bytes = 4u << 20,
        .close_timeout_ms = 1000,
        .max_body = (size_t)cfg->max_payload,
        .header_timeout_ms = (uint64_t)cfg->http_header_timeout_ms,
        .body_timeout_ms = (uint64_t)cfg->http_body_timeout_ms,
    };
    conn_handlers_t h = {sess_on_request, on_ws_text, on_ws_binary, on_close, ss, on_conn_refused};
    ss->rooms = rooms_new();
    ss->sids = strmap_new();
    if (!ss->rooms || !ss->sids || conn_ctx_new(&ss->conns, loop, &lim, &h) ||
        timerq_new(&ss->pingq, loop, (uint64_t)cfg->ping_interval_ms, on_ping_due, ss) ||
        timerq_new(&ss->pongq, loop, (uint64_t)cfg->ping_timeout_ms, on_pong_late, ss) ||
        timerq_new(&ss->connectq, loop, (uint64_t)cfg->connect_timeout_ms, on_connect_late, ss) ||
        timerq_new(&ss->authq, loop, AUTH_EMIT_DELAY_MS, on_auth_due, ss) ||
        timerq_new(&ss->upgradeq, loop, UPGRADE_TIMEOUT_MS, on_upgrade_late, ss) ||
        deadlineq_new(&ss->expiryq, loop, sess_on_token_expired, ss)) {
        sessions_free(ss);
        return -ENOMEM;
    }
    if (cfg->connection_recovery && (rc = recovery_io_new(&ss->rio, loop, cfg))) {
        sessions_free(ss);
        return rc;
    }
    if (cfg->cluster_workers > 1) {
        rc = handoff_new(&ss->handoff, loop, socks, region, slot, sess_on_handoff, ss);
        if (rc) {
            LOG_ERROR("cannot receive polling requests from the other workers: %s", strerror(-rc));
            sessions_free(ss);
            return rc;
        }
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

void sessions_close_all(sessions_t *ss, void (*done)(void *arg), void *arg)
{
    ss->closing = true;
    ss->closed = done;
    ss->closed_arg = arg;
    for (session_t *s = ss->head, *next; s; s = next) {
        next = s->next;
        sess_end(s, false);
    }
    maybe_closed(ss);
}

void sessions_conn_stats(const sessions_t *ss, conn_stats_t *out)
{
    conn_ctx_stats(ss->conns, out);
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
    if (ss->authq)
        timerq_close(ss->authq);
    if (ss->upgradeq)
        timerq_close(ss->upgradeq);
    deadlineq_close(ss->expiryq);
    handoff_free(ss->handoff);
    ss->handoff = NULL;
    /* connections still open close asynchronously and their on_close needs ss */
    ss->freeing = true;
    for (session_t *s = ss->head, *next; s; s = next) {
        next = s->next;
        sess_end(s, false);
    }
    conn_ctx_free(ss->conns);
    if (ss->nconns == 0)
        release(ss);
}
