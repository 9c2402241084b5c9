/* session_http: the HTTP routes, Engine.IO handshakes and polling requests. See session_int.h. */
#include "worker/session_int.h"

#include "worker/monitor.h"

/* SOCKETIO_CORS_ORIGINS is "*" or lists `origin` (false when it is unset). */
static bool origin_listed(const sessions_t *ss, const char *origin)
{
    if (!ss->cors)
        return false;
    bool ok = strcmp(ss->cors, "*") == 0;
    size_t olen = strlen(origin);
    for (const char *p = ss->cors; !ok && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        ok = n == olen && memcmp(p, origin, n) == 0;
        p = e ? e + 1 : p + n;
    }
    return ok;
}

/* Fills ss->hdrs with the CORS headers for this request (empty when none apply). */
static void cors_headers(sessions_t *ss, const http_req_t *req)
{
    buf_reset(&ss->hdrs);
    const char *origin = http_req_header(req, HTTP_REQ_ORIGIN);
    if (!ss->cors || !origin)
        return;
    if (!origin_listed(ss, origin) || strpbrk(origin, "\r\n"))
        return;
    buf_printf(&ss->hdrs,
               "Access-Control-Allow-Origin: %s\r\nAccess-Control-Allow-Credentials: true\r\n"
               "Vary: Origin\r\n",
               origin);
}

/*
 * Answers an Engine.IO HTTP request with the CORS headers its Origin earns, gzip-compressed
 * when it is large enough and the request accepts it (the request is the one held by c).
 */
void sess_http_answer(sessions_t *ss, conn_t *c, int status, const char *ctype, const char *body,
                      size_t len)
{
    const http_req_t *req = conn_request(c);
    if (!req) {
        conn_close(c);
        return;
    }
    cors_headers(ss, req);
    if (len >= HTTP_GZIP_THRESHOLD &&
        http_gzip_accepted(http_req_header(req, HTTP_REQ_ACCEPT_ENCODING)) &&
        http_gzip_compress(&ss->gz, body, len) == 0) {
        buf_puts(&ss->hdrs, "Content-Encoding: gzip\r\n");
        body = ss->gz.data;
        len = ss->gz.len;
    }
    conn_http_respond(c, status, ctype, ss->hdrs.len ? ss->hdrs.data : NULL, body, len);
}

static void respond_error(sessions_t *ss, conn_t *c, int code, const char *message)
{
    char body[96];
    int n = snprintf(body, sizeof(body), "{\"code\":%d,\"message\":\"%s\"}", code, message);
    int status = code == 4 ? 403 : 400;
    sess_http_answer(ss, c, status, "application/json", body, (size_t)n);
}

/* A WebSocket upgrade refused before the 101 (§1.8). */
static void refuse_ws(conn_t *c, const char *message)
{
    conn_http_respond(c, 400, "text/html", NULL, message, strlen(message));
}

#define WS_ORIGIN_REFUSED "{\"message\":\"Origin not allowed\"}"

/*
 * A browser's WebSocket is not bound by CORS, so a list in SOCKETIO_CORS_ORIGINS also decides
 * which pages may open one. Without a list, or with "*", any origin is fine; a client that sends
 * no Origin (not a browser) is always allowed, and so is a page of this server (same origin).
 */
static bool same_origin(const http_req_t *req, const char *origin)
{
    const char *host = http_req_header(req, HTTP_REQ_HOST);
    const char *rest = strncmp(origin, "http://", 7) == 0    ? origin + 7
                       : strncmp(origin, "https://", 8) == 0 ? origin + 8
                                                             : NULL;
    return host && rest && strcasecmp(rest, host) == 0;
}

static bool ws_origin_allowed(const sessions_t *ss, const http_req_t *req)
{
    const char *origin = http_req_header(req, HTTP_REQ_ORIGIN);
    return !ss->cors || !origin || origin_listed(ss, origin) || same_origin(req, origin);
}

/*
 * A page of another origin that the settings keep out fails in the browser with a bare "xhr poll
 * error" or "websocket error": say here which origin and which setting (sampled: a page retries).
 */
static void warn_cross_origin(sessions_t *ss, const http_req_t *req, bool ws)
{
    const char *origin = http_req_header(req, HTTP_REQ_ORIGIN);
    if (!origin || (!ws && (ss->hdrs.len || same_origin(req, origin))) ||
        !log_sampled(&ss->cors_refusals))
        return;
    char shown[128]; /* the header as sent, cut short and with control bytes replaced */
    size_t n = 0;
    for (; origin[n] && n + 1 < sizeof(shown); n++)
        shown[n] = (unsigned char)origin[n] < 0x20 || origin[n] == 0x7f ? '?' : origin[n];
    shown[n] = '\0';
    LOG_WARN("refused a cross-origin %s from Origin %s: SOCKETIO_CORS_ORIGINS %s; add the origin "
             "to it to allow that page (%llu so far)",
             ws ? "WebSocket upgrade" : "polling request", shown,
             ss->cors ? "does not list it" : "is not set", (unsigned long long)ss->cors_refusals);
}

static bool query_is(const http_req_t *req, const char *key, const char *want, buf_t *tmp)
{
    buf_reset(tmp);
    return http_req_query(req, key, tmp) == 0 && tmp->data && strcmp(tmp->data, want) == 0;
}

/* The worker slot a sid names, or -1 when it names none. */
static int sid_slot(const char *sid, size_t len)
{
    const char *a = len == SID_LEN && sid[0] ? strchr(SID_DIGITS, sid[0]) : NULL;
    const char *b = a && sid[1] ? strchr(SID_DIGITS, sid[1]) : NULL;
    return b ? (int)((a - SID_DIGITS) * 64 + (b - SID_DIGITS)) : -1;
}

/* Session ids name their worker: 2 characters of slot, then 18 random ones (see handoff). */
static int new_sid(sessions_t *ss, char sid[SID_LEN + 1])
{
    const char *digits = SID_DIGITS;
    if (ids_random(sid + 2, SID_LEN - 2))
        return -EIO;
    sid[0] = digits[(ss->slot >> 6) & 63];
    sid[1] = digits[ss->slot & 63];
    sid[SID_LEN] = '\0';
    return 0;
}

/* Counts a new session against the connection limits; 0, or the limits_conn_admit error. */
static int admit(sessions_t *ss, conn_t *c, struct sockaddr_storage *peer)
{
    memset(peer, 0, sizeof(*peer));
    conn_peer(c, peer); /* an unknown family only counts towards the total */
    return limits_conn_admit(ss->limits, (const struct sockaddr *)peer);
}

static session_t *open_session(sessions_t *ss, const http_req_t *req, bool raw,
                               const struct sockaddr_storage *peer)
{
    session_t *s = xcalloc(1, sizeof(*s));
    if (new_sid(ss, s->sid)) {
        free(s);
        limits_conn_release(ss->limits, (const struct sockaddr *)peer);
        return NULL;
    }
    strmap_put(ss->sids, s->sid, SID_LEN, s);
    s->peer = *peer;
    s->admitted = true;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    s->handshake = handshake_render(
        req, peer, (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000, &ss->tmp);
    limits_socket_init(ss->limits, &s->lim);
    buf_init(&s->qtoken);
    if (auth_enabled(ss->auth) && http_req_query(req, "token", &s->qtoken) != 0)
        buf_reset(&s->qtoken);
    s->kind = OWNER_SESSION;
    s->ss = ss;
    s->raw = raw;
    buf_init(&s->pollq);
    buf_init(&s->bin_pkt);
    buf_init(&s->bin_att);
    s->next = ss->head;
    if (ss->head)
        ss->head->prev = s;
    ss->head = s;
    ss->nsessions++;
    STATS_ADD(ss->stats->connections, 1);
    STATS_ADD(ss->stats->handshakes, 1);
    timerq_add(ss->pingq, &s->ping_node);
    if (!raw)
        timerq_add(ss->connectq, &s->connect_node);
    return s;
}

static void open_packet(sessions_t *ss, const session_t *s, bool upgrades)
{
    buf_reset(&ss->out);
    buf_printf(&ss->out,
               "0{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%d,\"pingTimeout\":%d,"
               "\"maxPayload\":%d}",
               s->sid, upgrades ? "\"websocket\"" : "", ss->cfg->ping_interval_ms,
               ss->cfg->ping_timeout_ms, ss->cfg->max_payload);
}

/* A connection over the limits: 503 with the reason (see limits_strerror). */
static void refuse_limits(sessions_t *ss, conn_t *c, int rc)
{
    if (rc == -EMFILE || rc == -ENFILE || rc == -EBUSY)
        sess_count_limit(ss, rc == -EMFILE   ? STATS_LIMIT_PER_IP
                             : rc == -ENFILE ? STATS_LIMIT_TOTAL
                                             : STATS_LIMIT_MEMORY);
    char body[128];
    int n = snprintf(body, sizeof(body), "{\"message\":\"%s\"}", limits_strerror(rc));
    conn_http_respond(c, 503, "application/json", NULL, body, (size_t)n);
}

static void ws_handshake(sessions_t *ss, conn_t *c, const http_req_t *req, bool raw)
{
    struct sockaddr_storage peer;
    int rc = admit(ss, c, &peer);
    if (rc) {
        refuse_limits(ss, c, rc);
        return;
    }
    if (conn_ws_accept(c)) {
        limits_conn_release(ss->limits, (const struct sockaddr *)&peer);
        return;
    }
    session_t *s = open_session(ss, req, raw, &peer);
    if (!s) {
        conn_close(c);
        return;
    }
    s->conn = c;
    sess_attach(s, c);
    open_packet(ss, s, false);
    sess_send_text(s, &ss->out);
}

static void ws_upgrade(conn_t *c, session_t *s)
{
    if (conn_ws_accept(c))
        return;
    if (s->conn || s->probe) {
        conn_ws_close(c, 0); /* accepted then closed: the suites expect no HTTP 400 (§7.4) */
        return;
    }
    s->probe = c;
    sess_attach(s, c);
    timerq_add(s->ss->upgradeq, &s->upgrade_node);
}

/* A polling POST: every record of the body in order. */
static void poll_post(sessions_t *ss, conn_t *c, session_t *s, const http_req_t *req)
{
    size_t blen;
    const char *body = http_req_body(req, &blen);
    size_t pos = 0, rlen;
    const char *rec;
    int rc = blen ? 0 : -EPROTO;
    s->busy++;
    while (!rc && !s->ended && eio_payload_next(body, blen, &pos, &rec, &rlen)) {
        if (rlen && rec[0] == 'b') {
            rc = eio_payload_b64_decode(rec + 1, rlen - 1, &ss->bin);
            if (!rc)
                rc = sess_eio_binary(s, (const uint8_t *)ss->bin.data, ss->bin.len);
        } else {
            rc = sess_eio_text(s, rec, rlen);
        }
    }
    if (rc) {
        sess_fail(s);
        sess_http_answer(ss, c, 400, "text/html", NULL, 0);
    } else {
        sess_http_answer(ss, c, 200, "text/html", "ok", 2);
    }
    s->busy--;
    sess_maybe_free(s);
}

static void poll_get(sessions_t *ss, conn_t *c, session_t *s)
{
    (void)ss;
    if (s->get) {
        /* overlapping GETs: the new one fails, the held one gets `1`, the session ends */
        conn_http_respond(c, 400, "text/html", NULL, NULL, 0);
        sess_fail(s);
        return;
    }
    if (s->pollq.len || s->probed) {
        s->get = c;
        sess_attach(s, c);
        sess_poll_flush(s, "6");
        return;
    }
    if (conn_http_defer(c)) {
        conn_close(c);
        return;
    }
    s->get = c;
    sess_attach(s, c);
}

static const struct {
    http_req_hdr_t h;
    const char *name;
} fwd_headers[] = {
    {HTTP_REQ_HOST, "Host"},
    {HTTP_REQ_UPGRADE, "Upgrade"},
    {HTTP_REQ_CONNECTION, "Connection"},
    {HTTP_REQ_WS_KEY, "Sec-WebSocket-Key"},
    {HTTP_REQ_WS_VERSION, "Sec-WebSocket-Version"},
    {HTTP_REQ_ORIGIN, "Origin"},
    {HTTP_REQ_ACCEPT_ENCODING, "Accept-Encoding"},
};

/*
 * Hands the connection to the worker that owns the sid: the request is rebuilt from what was
 * parsed (method, target, kept headers, body) and sent with the socket. 0: the connection is
 * gone from this worker; otherwise it is still ours to answer.
 */
static int forward(sessions_t *ss, conn_t *c, const http_req_t *req, uint32_t slot)
{
    buf_t *b = &ss->fwd;
    size_t blen;
    const char *body = http_req_body(req, &blen);
    buf_reset(b);
    buf_printf(b, "%s %s?%s HTTP/1.1\r\n", http_req_method(req), http_req_path(req),
               http_req_query_string(req));
    for (size_t i = 0; i < sizeof(fwd_headers) / sizeof(fwd_headers[0]); i++) {
        const char *v = http_req_header(req, fwd_headers[i].h);
        if (v)
            buf_printf(b, "%s: %s\r\n", fwd_headers[i].name, v);
    }
    if (!http_req_keep_alive(req) && !http_req_header(req, HTTP_REQ_CONNECTION))
        buf_puts(b, "Connection: close\r\n");
    if (blen || strcmp(http_req_method(req), "POST") == 0)
        buf_printf(b, "Content-Length: %zu\r\n", blen);
    buf_puts(b, "\r\n");
    buf_append(b, body, blen);
    int fd = conn_fileno(c);
    if (fd < 0)
        return -EBADF;
    int rc = handoff_send(ss->handoff, slot, fd, b->data, b->len);
    if (rc) {
        if (log_sampled(&ss->handoff_failures))
            LOG_WARN("handing a request to worker %u failed: %s (%llu so far)", (unsigned)slot,
                     strerror(-rc), (unsigned long long)ss->handoff_failures);
        return rc;
    }
    conn_close(c); /* our copy of the descriptor only: the owner now holds the socket */
    return 0;
}

void sess_on_handoff(int fd, const char *p, size_t len, void *ud)
{
    sessions_t *ss = ud;
    if (ss->closing) {
        close(fd);
        return;
    }
    ss->nconns++;
    if (conn_adopt(ss->conns, fd, p, len, NULL))
        ss->nconns--; /* conn_adopt closed fd */
}

/* The client's pong (or the first CONNECT) is overdue, measured on the current time. */
static bool heartbeat_expired(session_t *s)
{
    sessions_t *ss = s->ss;
    uv_update_time(ss->loop);
    uint64_t now = uv_now(ss->loop);
    uint64_t timeout = (uint64_t)ss->cfg->ping_timeout_ms;
    return (timerq_armed(&s->pong_node) && now >= s->pong_node.due) ||
           (timerq_armed(&s->ping_node) && now >= s->ping_node.due + timeout) ||
           (timerq_armed(&s->connect_node) && now >= s->connect_node.due);
}

static void on_engine_request(sessions_t *ss, conn_t *c, const http_req_t *req, bool raw)
{
    buf_t *q = &ss->tmp;
    const char *method = http_req_method(req);
    bool ws = http_req_is_upgrade(req);
    cors_headers(ss, req);
    if (!ws)
        warn_cross_origin(ss, req, false);
    if (strcmp(method, "OPTIONS") == 0 && ss->hdrs.len) {
        buf_puts(&ss->hdrs, "Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\n"
                            "Access-Control-Allow-Headers: content-type\r\n");
        conn_http_respond(c, 204, NULL, ss->hdrs.data, NULL, 0);
        return;
    }
    if (ws && !ws_origin_allowed(ss, req)) {
        warn_cross_origin(ss, req, true);
        sess_count_limit(ss, STATS_LIMIT_ORIGIN);
        conn_http_respond(c, 403, "application/json", NULL, WS_ORIGIN_REFUSED,
                          sizeof(WS_ORIGIN_REFUSED) - 1);
        return;
    }
    if (!query_is(req, "EIO", "4", q)) {
        if (ws)
            refuse_ws(c, "Unsupported protocol version");
        else
            respond_error(ss, c, 5, "Unsupported protocol version");
        return;
    }
    unsigned tr = 0;
    if (query_is(req, "transport", "polling", q))
        tr = TR_POLLING;
    else if (query_is(req, "transport", "websocket", q))
        tr = TR_WEBSOCKET;
    if (!(tr & ss->transports)) {
        if (ws)
            refuse_ws(c, "Transport unknown");
        else
            respond_error(ss, c, 0, "Transport unknown");
        return;
    }
    buf_reset(q);
    bool has_sid = http_req_query(req, "sid", q) == 0;
    int owner = has_sid ? sid_slot(q->data, q->len) : -1;
    if (owner >= 0 && (uint32_t)owner != ss->slot && owner < ss->cfg->cluster_workers &&
        ss->handoff && forward(ss, c, req, (uint32_t)owner) == 0)
        return;
    session_t *s = has_sid && q->len ? strmap_get(ss->sids, q->data, q->len) : NULL;
    if (s && heartbeat_expired(s)) {
        sess_fail(s); /* its timer is due but has not fired yet in this loop turn */
        s = NULL;
    }
    if (has_sid && !s) {
        if (ws)
            refuse_ws(c, "Session ID unknown");
        else
            respond_error(ss, c, 1, "Session ID unknown");
        return;
    }
    if (s && s->raw != raw) {
        respond_error(ss, c, 1, "Session ID unknown");
        return;
    }
    if (tr == TR_WEBSOCKET) {
        if (!http_req_is_websocket(req)) {
            respond_error(ss, c, 3, "Bad request");
            return;
        }
        if (s) {
            ws_upgrade(c, s);
            return;
        }
        if (ss->closing) {
            refuse_ws(c, "Shutting down");
            return;
        }
        ws_handshake(ss, c, req, raw);
        return;
    }
    if (s) {
        if (s->conn) {
            respond_error(ss, c, 3, "Bad request"); /* upgraded: polling is over */
            return;
        }
        if (strcmp(method, "GET") == 0)
            poll_get(ss, c, s);
        else if (strcmp(method, "POST") == 0)
            poll_post(ss, c, s, req);
        else
            conn_http_respond(c, 500, NULL, NULL, NULL, 0);
        return;
    }
    if (strcmp(method, "GET") != 0) {
        respond_error(ss, c, 2, "Bad handshake method");
        return;
    }
    if (ss->closing) {
        conn_http_respond(c, 503, "text/plain", NULL, "Shutting down", 13);
        return;
    }
    struct sockaddr_storage peer;
    int rc = admit(ss, c, &peer);
    if (rc) {
        refuse_limits(ss, c, rc);
        return;
    }
    s = open_session(ss, req, raw, &peer);
    if (!s) {
        conn_http_respond(c, 500, "text/plain", NULL, "Internal error", 14);
        return;
    }
    open_packet(ss, s, (ss->transports & TR_WEBSOCKET) != 0);
    sess_poll_respond(s, c, ss->out.data, ss->out.len);
}

static bool path_is(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) == 0 ||
           (strlen(path) == n - 1 && !strncmp(path, prefix, n - 1));
}

/* Seed 004's /socket-health and /socket-metrics (see monitor.h). */
static void answer_monitor(sessions_t *ss, conn_t *c, const http_req_t *req, bool health)
{
    bool prom = !health && query_is(req, "format", "prometheus", &ss->tmp);
    int status = 200;
    buf_reset(&ss->out);
    if (health)
        monitor_socket_health(&ss->out, ss->region, &status);
    else
        monitor_socket_metrics(&ss->out, ss->region, prom);
    sess_http_answer(ss, c, status, prom ? METRICS_CONTENT_TYPE : "application/json", ss->out.data,
                     ss->out.len);
}

void sess_on_request(conn_t *c, const http_req_t *req, void *ud)
{
    sessions_t *ss = *(enum owner_kind *)ud == OWNER_SESSIONS ? ud : ((session_t *)ud)->ss;
    const char *path = http_req_path(req);
    if (path_is(path, "/socket.io/")) {
        on_engine_request(ss, c, req, false);
        return;
    }
    if (ss->conformance && path_is(path, "/engine.io/")) {
        on_engine_request(ss, c, req, true);
        return;
    }
    if (ss->debug_page && strcmp(path, "/debug") == 0) {
        size_t n;
        const char *html = debug_page_html(&n);
        conn_http_respond(c, 200, "text/html; charset=utf-8", NULL, html, n);
        return;
    }
    if (strcmp(path, "/health") == 0) {
        buf_reset(&ss->out);
        health_render(&ss->out, ss->region, ss->slot);
        conn_http_respond(c, 200, "application/json", NULL, ss->out.data, ss->out.len);
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        buf_reset(&ss->out);
        metrics_render(&ss->out, ss->region);
        conn_http_respond(c, 200, METRICS_CONTENT_TYPE, NULL, ss->out.data, ss->out.len);
        return;
    }
    if (strcmp(path, MONITOR_HEALTH_PATH) == 0 || strcmp(path, MONITOR_METRICS_PATH) == 0) {
        answer_monitor(ss, c, req, strcmp(path, MONITOR_HEALTH_PATH) == 0);
        return;
    }
    conn_http_respond(c, 404, "text/plain", NULL, "Not found", 9);
}
