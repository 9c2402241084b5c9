/* session_sio: the Socket.IO layer of sessions (packets, namespaces, seed events). See
 * session_int.h. */
#include "worker/session_int.h"

static void emit_error(session_t *s, const char *message)
{
    sessions_t *ss = s->ss;
    buf_reset(&ss->tmp);
    buf_puts(&ss->tmp, "{\"message\":");
    json_write_string(&ss->tmp, message, strlen(message));
    buf_putc(&ss->tmp, '}');
    buf_reset(&ss->out);
    sio_packet_encode_event(&ss->out, "/", 1, "error", ss->tmp.data, ss->tmp.len);
    sess_send_text(s, &ss->out);
}

/* ack({ok:true, roomId}) / ack({ok:false, error}); room_json NULL drops the key like undefined */
static void send_ack(session_t *s, uint64_t id, bool ok, const char *room_json, size_t room_len,
                     const char *error)
{
    sessions_t *ss = s->ss;
    buf_reset(&ss->tmp);
    buf_puts(&ss->tmp, ok ? "[{\"ok\":true" : "[{\"ok\":false");
    if (room_json) {
        buf_puts(&ss->tmp, ",\"roomId\":");
        json_minify(&ss->tmp, room_json, room_len);
    }
    if (error) {
        buf_puts(&ss->tmp, ",\"error\":");
        json_write_string(&ss->tmp, error, strlen(error));
    }
    buf_puts(&ss->tmp, "}]");
    buf_reset(&ss->out);
    sio_packet_encode(&ss->out, SIO_ACK, "/", 1, &id, ss->tmp.data, ss->tmp.len);
    sess_send_text(s, &ss->out);
}

static size_t utf16_units(const char *p, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c & 0xC0) != 0x80)
            n += c >= 0xF0 ? 2 : 1; /* 4-byte sequences are surrogate pairs in JS */
    }
    return n;
}

/* ---- seed events ---- */

static void on_room_event(session_t *s, bool join, const json_span_t *arg, const sio_packet_t *pk)
{
    sessions_t *ss = s->ss;
    const char *err = NULL;
    limits_verdict_t verdict = LIMITS_PASS;
    buf_t *name = &ss->name;
    buf_reset(name);
    bool is_str =
        arg && arg->type == JSON_STRING && json_string_decode(arg->p, arg->len, name) == 0;
    const char *room = name->data ? name->data : "";
    size_t room_len = name->len;
    if (join) {
        if (!is_str || room_len == 0 || utf16_units(room, room_len) > ROOM_ID_MAX_UNITS) {
            err = "Invalid room id";
        } else if ((verdict = limits_join(ss->limits, &s->lim)) != LIMITS_PASS) {
            err = LIMITS_ERR_RATE;
            sess_count_limit(ss, STATS_LIMIT_RATE_JOINS);
        } else if (!auth_room_allowed(ss->auth, s->grant, room, room_len)) {
            err = AUTH_ERR_ROOM_DENIED;
        } else if (!rooms_is_member(&s->rooms, room, room_len) &&
                   s->rooms.count >= (size_t)ss->cfg->max_rooms_per_socket) {
            err = "Max rooms limit reached";
        } else {
            int rc = rooms_join(ss->rooms, &s->rooms, s, room, room_len);
            if (rc < 0)
                err = "Server out of memory";
            if (rc == 0)
                sess_recovery_joined(s, room, room_len);
            sess_host_joined(ss, rc, room, room_len);
        }
    } else if (is_str) {
        sess_host_left(ss, rooms_leave(ss->rooms, &s->rooms, room, room_len), room, room_len);
    }
    STATS_SET(ss->stats->rooms, rooms_count(ss->rooms));
    if (verdict == LIMITS_KICK) {
        sess_fail(s);
        return;
    }
    if (err && verdict != LIMITS_DROP)
        emit_error(s, err);
    if (pk->has_id)
        send_ack(s, pk->id, err == NULL, err ? NULL : (arg ? arg->p : NULL), arg ? arg->len : 0,
                 err);
}

static int nsp_index(const sessions_t *ss, const char *nsp, size_t len)
{
    for (unsigned i = 0; i < ss->nnsp; i++) {
        if (ss->nsp[i].len == len && memcmp(ss->nsp[i].name, nsp, len) == 0)
            return (int)i;
    }
    return -1;
}

/*
 * Conformance handlers (§7.1): `message` → `message-back` with the same arguments,
 * `message-with-ack` → the ack with the same arguments. `args` is the JSON text after the event
 * name (",a,b]" or "]"); attachments (binary packets) are sent back unchanged after the packet.
 */
static void conformance_event(session_t *s, const sio_packet_t *pk, const json_span_t *name,
                              const char *args, size_t args_len, unsigned natt)
{
    sessions_t *ss = s->ss;
    bool back = name->len == 9 && memcmp(name->p, "\"message\"", 9) == 0;
    bool ack = name->len == 18 && memcmp(name->p, "\"message-with-ack\"", 18) == 0;
    if (!back && !(ack && pk->has_id))
        return;
    buf_reset(&ss->tmp);
    if (back) {
        buf_puts(&ss->tmp, "[\"message-back\"");
        buf_append(&ss->tmp, args, args_len);
    } else {
        buf_putc(&ss->tmp, '[');
        buf_append(&ss->tmp, args[0] == ',' ? args + 1 : args,
                   args[0] == ',' ? args_len - 1 : args_len);
    }
    buf_reset(&ss->out);
    const uint64_t *id = ack ? &pk->id : NULL;
    if (natt)
        sio_packet_encode_binary(&ss->out, back ? SIO_BINARY_EVENT : SIO_BINARY_ACK, natt, pk->nsp,
                                 pk->nsp_len, id, ss->tmp.data, ss->tmp.len);
    else
        sio_packet_encode(&ss->out, back ? SIO_EVENT : SIO_ACK, pk->nsp, pk->nsp_len, id,
                          ss->tmp.data, ss->tmp.len);
    sess_send_text(s, &ss->out);
    size_t off = 0;
    for (unsigned i = 0; i < natt; i++) {
        uint32_t n;
        memcpy(&n, s->bin_att.data + off, sizeof(n));
        sess_send_binary(s, s->bin_att.data + off + sizeof(n), n);
        off += sizeof(n) + n;
    }
}

static int on_event(session_t *s, const sio_packet_t *pk, unsigned natt)
{
    json_span_t items[3];
    size_t n = 0;
    int rc = json_array_items(pk->data, pk->data_len, items, 3, &n);
    if (rc == -E2BIG)
        n = 3; /* extra arguments are ignored, as by the Node handlers */
    else if (rc)
        return rc;
    if (n == 0 || items[0].type != JSON_STRING)
        return 0;
    if (s->ss->conformance) {
        const char *args = items[0].p + items[0].len;
        size_t args_len = (size_t)(pk->data + pk->data_len - args);
        conformance_event(s, pk, &items[0], args, args_len, natt);
    }
    if (pk->nsp_len != 1)
        return 0; /* rooms live on the main namespace */
    const json_span_t *arg = n > 1 ? &items[1] : NULL;
    if (items[0].len == 11 && memcmp(items[0].p, "\"join-room\"", 11) == 0)
        on_room_event(s, true, arg, pk);
    else if (items[0].len == 12 && memcmp(items[0].p, "\"leave-room\"", 12) == 0)
        on_room_event(s, false, arg, pk);
    return 0;
}

void sess_send_auth(session_t *s, unsigned i)
{
    sessions_t *ss = s->ss;
    buf_reset(&ss->out);
    sio_packet_encode_event(&ss->out, ss->nsp[i].name, ss->nsp[i].len, "auth", s->auth[i],
                            strlen(s->auth[i]));
    sess_send_text(s, &ss->out);
}

/* Disconnects the session when the token it authenticated with expires (exp + AUTH_JWT_LEEWAY). */
static void arm_expiry(session_t *s, int64_t exp_s)
{
    sessions_t *ss = s->ss;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t left = (exp_s + ss->cfg->auth_jwt_leeway_s) * 1000 - now_ms;
    uv_update_time(ss->loop); /* the cached loop time may lag: never cut a token off early */
    deadlineq_add(ss->expiryq, &s->expiry_node, uv_now(ss->loop) + (uint64_t)(left > 0 ? left : 0));
}

/*
 * The token expired while connected: the `error` event {message: "Token expired"} and a
 * DISCONNECT on every connected namespace (the client sees "io server disconnect" and does not
 * reconnect by itself), then the session ends.
 */
void sess_on_token_expired(deadline_node_t *n, void *arg)
{
    sessions_t *ss = arg;
    session_t *s = (session_t *)((char *)n - offsetof(session_t, expiry_node));
    sess_count_limit(ss, STATS_LIMIT_TOKEN_EXPIRED);
    emit_error(s, AUTH_ERR_EXPIRED);
    for (unsigned i = 0; i < ss->nnsp; i++) {
        if (!(s->nsp_mask & (1u << i)))
            continue;
        buf_reset(&ss->out);
        sio_packet_encode(&ss->out, SIO_DISCONNECT, ss->nsp[i].name, ss->nsp[i].len, NULL, NULL, 0);
        sess_send_text(s, &ss->out);
    }
    sess_end(s, false);
}

/*
 * With authentication on, verifies the token of a CONNECT: the `auth` payload's `token`, else the
 * handshake's `token` query parameter. NULL when allowed (the grant is kept for join-room), else
 * the reason to send back.
 */
static const char *authorize(session_t *s, const sio_packet_t *pk)
{
    sessions_t *ss = s->ss;
    if (!auth_enabled(ss->auth))
        return NULL;
    buf_reset(&ss->tmp);
    int rc = auth_token_from_connect(pk->data, pk->data_len, &ss->tmp);
    const char *tok = ss->tmp.data;
    size_t len = ss->tmp.len;
    if (rc == -ENOENT) {
        tok = s->qtoken.data;
        len = s->qtoken.len;
        if (len == 0)
            return AUTH_ERR_MISSING;
    } else if (rc) {
        return AUTH_ERR_INVALID;
    }
    auth_grant_t *g = NULL;
    const char *why = NULL;
    if (auth_verify(ss->auth, tok, len, (int64_t)time(NULL), &g, &why))
        return why ? why : AUTH_ERR_INVALID;
    auth_grant_free(s->grant);
    s->grant = g;
    arm_expiry(s, auth_grant_expires(g));
    return NULL;
}

/*
 * Completes a namespace CONNECT whose auth[i] is set: the reply with the Socket.IO id (sid, or
 * a new one when NULL) and, with recovery on the main namespace, the private id.
 */
int sess_connect_reply(session_t *s, unsigned i, const char *sid)
{
    sessions_t *ss = s->ss;
    char sio_sid[SID_LEN + 1];
    if (sid)
        memcpy(sio_sid, sid, sizeof(sio_sid));
    else if (ids_random(sio_sid, SID_LEN))
        return -EIO;
    char json[96];
    int n = snprintf(json, sizeof(json), "{\"sid\":\"%s\"}", sio_sid);
    if (i == 0 && ss->rio) {
        if (!s->pid[0] && ids_random(s->pid, SID_LEN))
            return -EIO;
        if (!s->rlog && !(s->rlog = calloc(1, sizeof(*s->rlog))))
            return -ENOMEM;
        n = snprintf(json, sizeof(json), "{\"sid\":\"%s\",\"pid\":\"%s\"}", sio_sid, s->pid);
    }
    buf_reset(&ss->out);
    sio_packet_encode(&ss->out, SIO_CONNECT, ss->nsp[i].name, ss->nsp[i].len, NULL, json,
                      (size_t)n);
    sess_send_text(s, &ss->out);
    uint32_t bit = 1u << i;
    s->nsp_mask |= bit;
    if (i == 0)
        memcpy(s->sio_sid, sio_sid, sizeof(sio_sid));
    timerq_remove(ss->connectq, &s->connect_node);
    if (ss->conformance) {
        s->auth_pending |= bit;
        if (!timerq_armed(&s->auth_node))
            timerq_add(ss->authq, &s->auth_node);
    }
    return 0;
}

static int on_connect_packet(session_t *s, const sio_packet_t *pk)
{
    sessions_t *ss = s->ss;
    buf_reset(&ss->out);
    int i = nsp_index(ss, pk->nsp, pk->nsp_len);
    if (i < 0) {
        sio_packet_encode(&ss->out, SIO_CONNECT_ERROR, pk->nsp, pk->nsp_len, NULL,
                          "{\"message\":\"Invalid namespace\"}", 31);
        sess_send_text(s, &ss->out);
        return 0;
    }
    uint32_t bit = 1u << i;
    if ((s->nsp_mask & bit) || (i == 0 && s->restoring))
        return -EPROTO; /* a second CONNECT for the same namespace: Node closes */
    const char *why = authorize(s, pk);
    if (why) {
        sess_count_limit(ss, STATS_LIMIT_AUTH);
        /* refused like a Node middleware refusal: CONNECT_ERROR, the session stays open */
        buf_reset(&ss->tmp);
        buf_puts(&ss->tmp, "{\"message\":");
        json_write_string(&ss->tmp, why, strlen(why));
        buf_putc(&ss->tmp, '}');
        sio_packet_encode(&ss->out, SIO_CONNECT_ERROR, pk->nsp, pk->nsp_len, NULL, ss->tmp.data,
                          ss->tmp.len);
        sess_send_text(s, &ss->out);
        return 0;
    }
    s->auth[i] = strndup(pk->data ? pk->data : "{}", pk->data ? pk->data_len : 2);
    if (!s->auth[i])
        return -ENOMEM;
    if (i == 0 && ss->rio) {
        int rc = sess_recovery_begin(s, pk);
        if (rc <= 0)
            return rc; /* 0: the reply waits for the session's record */
    }
    return sess_connect_reply(s, (unsigned)i, NULL);
}

void sess_nsp_disconnect(session_t *s, unsigned i)
{
    s->nsp_mask &= ~(1u << i);
    s->auth_pending &= ~(1u << i);
    free(s->auth[i]);
    s->auth[i] = NULL;
    if (i == 0) {
        sess_host_leave_all(s->ss, s);
        STATS_SET(s->ss->stats->rooms, rooms_count(s->ss->rooms));
    }
}

/* A complete Socket.IO packet (attachments collected); negative: close (Node's behaviour). */
static int sio_dispatch(session_t *s, const sio_packet_t *pk, unsigned natt)
{
    if (pk->type == SIO_CONNECT)
        return on_connect_packet(s, pk);
    int i = nsp_index(s->ss, pk->nsp, pk->nsp_len);
    if (i < 0 || !(s->nsp_mask & (1u << i)))
        return -EPROTO; /* packet for a namespace this client is not connected to */
    switch (pk->type) {
    case SIO_DISCONNECT:
        sess_nsp_disconnect(s, (unsigned)i);
        return 0;
    case SIO_EVENT:
    case SIO_BINARY_EVENT:
        return on_event(s, pk, natt);
    case SIO_ACK:
        /* only cluster broadcasts with acks ask clients for acks (in any namespace) */
        adapter_client_ack(s->ss->adapter, s->sio_sid, pk->id, pk->data, pk->data_len);
        return 0;
    case SIO_BINARY_ACK:
        return 0; /* the server asks no binary acks: unknown ids are ignored */
    default:
        return -EPROTO; /* CONNECT_ERROR from a client */
    }
}

/* Every placeholder {"_placeholder":true,"num":k} must have k < n (Node's reconstruction). */
static bool placeholders_ok(const char *p, size_t len, unsigned n)
{
    static const char key[] = "\"num\":";
    const char *end = p + len;
    const char *q = p;
    while ((q = memmem(q, (size_t)(end - q), key, sizeof(key) - 1)) != NULL) {
        q += sizeof(key) - 1;
        unsigned long k = 0;
        const char *d = q;
        while (d < end && *d >= '0' && *d <= '9' && k <= n)
            k = k * 10 + (unsigned long)(*d++ - '0');
        if (d == q || k >= n)
            return false;
    }
    return true;
}

int sess_on_sio(session_t *s, const char *p, size_t len)
{
    sio_packet_t pk;
    if (s->bin_want || sio_packet_decode(p, len, &pk))
        return -EPROTO;
    limits_verdict_t verdict = limits_event(s->ss->limits, &s->lim);
    if (verdict != LIMITS_PASS)
        sess_count_limit(s->ss, STATS_LIMIT_RATE_EVENTS);
    switch (verdict) {
    case LIMITS_PASS:
        break;
    case LIMITS_NOTIFY:
        emit_error(s, LIMITS_ERR_RATE);
        return 0; /* the packet is dropped */
    case LIMITS_DROP:
        return 0;
    case LIMITS_KICK:
        return -EACCES; /* persistent abuse: the caller closes the connection */
    }
    if (pk.type != SIO_BINARY_EVENT && pk.type != SIO_BINARY_ACK)
        return sio_dispatch(s, &pk, 0);
    if (!placeholders_ok(pk.data, pk.data_len, pk.attachments))
        return -EPROTO;
    buf_reset(&s->bin_pkt);
    buf_reset(&s->bin_att);
    if (buf_append(&s->bin_pkt, p, len))
        return -ENOMEM;
    s->bin_want = pk.attachments;
    s->bin_have = 0;
    return 0;
}

int sess_on_sio_binary(session_t *s, const uint8_t *p, size_t len)
{
    if (s->bin_want == 0 || len > UINT32_MAX)
        return -EPROTO;
    uint32_t n = (uint32_t)len;
    if (buf_append(&s->bin_att, &n, sizeof(n)) || buf_append(&s->bin_att, p, len))
        return -ENOMEM;
    s->bin_have++;
    if (--s->bin_want)
        return 0;
    sio_packet_t pk;
    if (sio_packet_decode(s->bin_pkt.data, s->bin_pkt.len, &pk))
        return -EPROTO;
    int rc = sio_dispatch(s, &pk, s->bin_have);
    buf_reset(&s->bin_pkt);
    buf_reset(&s->bin_att);
    s->bin_have = 0;
    return rc;
}
