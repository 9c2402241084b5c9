/*
 * sio: sockets, namespaces, CONNECT/DISCONNECT, authentication, limits, attachments and the
 * target walk. A socket lives from its session's open until its session ended and every hold
 * (an observer's asynchronous work) was released.
 */
#include "worker/sio/sio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/ids.h"
#include "common/ilist.h"
#include "common/proto/handshake.h"
#include "common/strmap.h"
#include "common/xalloc.h"
#include "worker/sio/attachments.h"
#include "worker/sio/sio_auth.h"

/* A client's address: the families a listening socket accepts, without sockaddr_storage's
 * 128 bytes per socket. */
typedef union peer_addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
} peer_addr_t;

/* A socket's token, the grant, the expiry: only when authentication is on. */
typedef struct auth_part {
    sio_auth_socket_t as;
    sio_socket_t *s;
} auth_part_t;

/* The payload of a CONNECT without one, shared rather than copied per socket. */
static char NO_AUTH[] = "{}";

struct sio_socket {
    sio_t *sio;
    eio_session_t *es;            /* NULL once the session ended */
    ilist_t link;                 /* in sio->sockets while its session is not over */
    uint64_t mark;                /* the last walk that visited it */
    unsigned refs;                /* the session's, and holds */
    uint32_t nsp_mask;            /* connected namespaces (bit i = sio->nsp[i]); bit 0 is "/" */
    bool closed;                  /* its session ended */
    bool deferred;                /* the main CONNECT waits for an observer's reply */
    bool refused;                 /* its last main CONNECT got a CONNECT_ERROR */
    unsigned deferred_by;         /* that observer's index */
    char id[SIO_ID_LEN + 1];      /* Socket.IO id on the main namespace: the cluster's socket id */
    rooms_sock_t rooms;           /* its memberships */
    attachments_t *bin;           /* a binary packet's attachments; NULL until the first one */
    char *auth0;                  /* CONNECT payload on "/" (NO_AUTH when it had none) */
    char **auth_nsp;              /* ... on the others: SIO_NSP_MAX - 1, made on first use */
    struct auth_part *auth_state; /* its token (AUTH_JWT_SECRET set; else NULL) */
    limits_socket_t lim;          /* event and join token buckets */
    peer_addr_t peer;             /* counted against MAX_CONNECTIONS_PER_IP */
    char *handshake;              /* fetchSockets' handshake (handshake_capture) */
    void *ext[SIO_SLOTS_MAX];     /* the observers' per-socket state */
};

typedef struct nsp_name {
    char name[64];
    size_t len;
} nsp_name_t;

struct sio {
    uv_loop_t *loop;
    const cfg_t *cfg;
    stats_worker_t *stats;
    eio_handlers_t handlers;
    sio_auth_t *auth; /* JWT verification and token expiries */
    limits_t *limits; /* connection counts and per-socket rate limits */
    rooms_t *rooms;
    strmap_t *by_id; /* main-namespace socket id -> its socket: io.to(id) without a scan */
    ids_pool_t ids;  /* the sockets' ids (zeroed: empty) */
    ilist_t sockets; /* sockets whose session is not over, the newest first */
    uint64_t epoch;  /* numbers the walks */
    sio_observer_t obs[SIO_OBSERVERS_MAX];
    unsigned nobs;
    unsigned nslots; /* per-socket slots handed out */
    bool room_hooks; /* an observer wants room_deleted: leaving all rooms names each */
    bool keep_atts;  /* an observer reads attachments: collect their bytes */
    nsp_name_t nsp[SIO_NSP_MAX];
    adapter_str_t nsp_view[SIO_NSP_MAX];
    unsigned nnsp;
    buf_t out;  /* a packet being encoded */
    buf_t json; /* its JSON payload */
    buf_t tmp;  /* decoded strings */
};

#define EACH_OBSERVER(sio, o)                                                                      \
    for (sio_observer_t *o = (sio)->obs; o < (sio)->obs + (sio)->nobs; o++)

static void count_limit(sio_t *sio, enum stats_limit l)
{
    STATS_ADD(sio->stats->limit_rejections[l], 1);
}

static void rooms_stat(sio_t *sio)
{
    STATS_SET(sio->stats->rooms, rooms_count(sio->rooms));
}

/* The id index holds the sockets connected to "/"; a restored socket may take an id another one
 * still holds, so only the socket indexed under an id removes it. */
static void id_index(sio_socket_t *s)
{
    strmap_put(s->sio->by_id, s->id, SIO_ID_LEN, s);
}

static void id_unindex(sio_socket_t *s)
{
    if (strmap_get(s->sio->by_id, s->id, SIO_ID_LEN) == s)
        strmap_del(s->sio->by_id, s->id, SIO_ID_LEN);
}

/* ==== Output ==== */

void sio_socket_send_text(sio_socket_t *s, const char *p, size_t len)
{
    if (s->es)
        eio_session_send_text(s->es, p, len);
}

bool sio_socket_send_msg(sio_socket_t *s, eio_msg_t *m)
{
    return s->es && eio_session_send_msg(s->es, m);
}

size_t sio_socket_backlog(const sio_socket_t *s)
{
    return s->es ? eio_session_backlog(s->es) : 0;
}

static void send_out(sio_socket_t *s)
{
    sio_socket_send_text(s, s->sio->out.data, s->sio->out.len);
}

void sio_socket_emit(sio_socket_t *s, unsigned nsp, const char *event, const char *args_json,
                     size_t len)
{
    sio_t *sio = s->sio;
    buf_reset(&sio->out);
    sio_packet_encode_event(&sio->out, sio->nsp[nsp].name, sio->nsp[nsp].len, event, args_json,
                            len);
    send_out(s);
}

void sio_socket_emit_error(sio_socket_t *s, const char *message)
{
    sio_t *sio = s->sio;
    buf_reset(&sio->json);
    buf_puts(&sio->json, "{\"message\":");
    json_write_string(&sio->json, message, strlen(message));
    buf_putc(&sio->json, '}');
    sio_socket_emit(s, 0, "error", sio->json.data, sio->json.len);
}

void sio_socket_ack(sio_socket_t *s, unsigned nsp, uint64_t id, const char *json, size_t len)
{
    sio_t *sio = s->sio;
    buf_reset(&sio->out);
    sio_packet_encode(&sio->out, SIO_ACK, sio->nsp[nsp].name, sio->nsp[nsp].len, &id, json, len);
    send_out(s);
}

void sio_socket_close(sio_socket_t *s)
{
    if (s->es)
        eio_session_close(s->es);
}

/* ==== Sockets ==== */

const char *sio_socket_id(const sio_socket_t *s)
{
    return s->id;
}

bool sio_socket_connected(const sio_socket_t *s, unsigned nsp)
{
    return !s->closed && (s->nsp_mask & (1u << nsp));
}

bool sio_socket_closed(const sio_socket_t *s)
{
    return s->closed;
}

static char **auth_slot(sio_socket_t *s, unsigned nsp)
{
    if (nsp == 0)
        return &s->auth0;
    if (!s->auth_nsp)
        s->auth_nsp = xcalloc(SIO_NSP_MAX - 1, sizeof(*s->auth_nsp));
    return &s->auth_nsp[nsp - 1];
}

static void auth_drop(sio_socket_t *s, unsigned nsp)
{
    if (nsp && !s->auth_nsp)
        return;
    char **a = auth_slot(s, nsp);
    if (*a != NO_AUTH)
        free(*a);
    *a = NULL;
}

const char *sio_socket_auth(const sio_socket_t *s, unsigned nsp)
{
    if (nsp == 0)
        return s->auth0;
    return s->auth_nsp ? s->auth_nsp[nsp - 1] : NULL;
}

const auth_grant_t *sio_socket_grant(const sio_socket_t *s)
{
    return s->auth_state ? s->auth_state->as.grant : NULL;
}

const rooms_sock_t *sio_socket_rooms(const sio_socket_t *s)
{
    return &s->rooms;
}

void *sio_socket_ext(const sio_socket_t *s, int slot)
{
    return s->ext[slot];
}

void sio_socket_set_ext(sio_socket_t *s, int slot, void *p)
{
    s->ext[slot] = p;
}

void sio_socket_hold(sio_socket_t *s)
{
    s->refs++;
}

void sio_socket_release(sio_socket_t *s)
{
    if (--s->refs)
        return;
    sio_t *sio = s->sio;
    EACH_OBSERVER(sio, o)
    {
        if (o->freed)
            o->freed(o->arg, s);
    }
    for (unsigned i = 0; i < SIO_NSP_MAX; i++)
        auth_drop(s, i);
    free(s->auth_nsp);
    if (s->bin)
        attachments_free(s->bin);
    free(s->bin);
    free(s->handshake);
    if (s->auth_state)
        sio_auth_close(&s->auth_state->as);
    free(s->auth_state);
    limits_conn_release(sio->limits, &s->peer.sa);
    free(s);
}

/* ==== Rooms ==== */

/* A socket is always in the room of its own id, as in Node (where socket.rooms holds it): joining
 * it changes nothing and counts against no limit. */
static bool own_id(const sio_socket_t *s, const char *room, size_t len)
{
    return len == SIO_ID_LEN && sio_socket_connected(s, 0) && memcmp(s->id, room, len) == 0;
}

int sio_socket_join(sio_socket_t *s, const char *room, size_t len)
{
    sio_t *sio = s->sio;
    if (own_id(s, room, len))
        return 1;
    int rc = rooms_join(sio->rooms, &s->rooms, s, room, len);
    if (rc == 0) {
        room_t *r = rooms_find(sio->rooms, room, len);
        rooms_mark_t *m = rooms_sock_mark(&s->rooms, room, len);
        EACH_OBSERVER(sio, o)
        {
            if (o->joined)
                o->joined(o->arg, s, room, len, m);
            if (o->room_created && rooms_members(r) == 1)
                o->room_created(o->arg, room, len);
        }
    }
    rooms_stat(sio);
    return rc;
}

int sio_socket_leave(sio_socket_t *s, const char *room, size_t len)
{
    sio_t *sio = s->sio;
    int rc = rooms_leave(sio->rooms, &s->rooms, room, len);
    EACH_OBSERVER(sio, o)
    {
        if (rc == 0 && o->left)
            o->left(o->arg, s, room, len);
    }
    if (rc == 0 && !rooms_find(sio->rooms, room, len)) {
        EACH_OBSERVER(sio, o)
        {
            if (o->room_deleted)
                o->room_deleted(o->arg, room, len);
        }
    }
    rooms_stat(sio);
    return rc;
}

static void copy_room_name(const char *name, size_t len, void *arg)
{
    buf_t *names = arg;
    uint32_t n = (uint32_t)len;
    buf_append(names, (const char *)&n, sizeof(n));
    buf_append(names, name, len);
}

/* Leaves every room, naming each to the observers that want to know which emptied. */
static void leave_all(sio_socket_t *s)
{
    sio_t *sio = s->sio;
    if (!sio->room_hooks) {
        rooms_leave_all(sio->rooms, &s->rooms);
        rooms_stat(sio);
        return;
    }
    buf_t names;
    buf_init(&names);
    rooms_sock_foreach(&s->rooms, copy_room_name, &names);
    for (size_t off = 0; off + sizeof(uint32_t) <= names.len;) {
        uint32_t n;
        memcpy(&n, names.data + off, sizeof(n));
        off += sizeof(n);
        sio_socket_leave(s, names.data + off, n);
        off += n;
    }
    buf_free(&names);
    rooms_stat(sio);
}

bool sio_socket_room_allowed(const sio_socket_t *s, const char *room, size_t len)
{
    return !s->auth_state || sio_auth_room_allowed(s->sio->auth, &s->auth_state->as, room, len);
}

bool sio_socket_rooms_full(const sio_socket_t *s, const char *room, size_t len)
{
    return !own_id(s, room, len) && !rooms_is_member(&s->rooms, room, len) &&
           s->rooms.count >= (size_t)s->sio->cfg->max_rooms_per_socket;
}

limits_verdict_t sio_socket_rate_join(sio_socket_t *s)
{
    limits_verdict_t v = limits_join(s->sio->limits, &s->lim);
    if (v != LIMITS_PASS)
        count_limit(s->sio, STATS_LIMIT_RATE_JOINS);
    return v;
}

/* ==== Namespaces ==== */

static int nsp_index(const sio_t *sio, const char *nsp, size_t len)
{
    for (unsigned i = 0; i < sio->nnsp; i++) {
        if (sio->nsp[i].len == len && memcmp(sio->nsp[i].name, nsp, len) == 0)
            return (int)i;
    }
    return -1;
}

const adapter_str_t *sio_namespaces(const sio_t *sio, size_t *n)
{
    *n = sio->nnsp;
    return sio->nsp_view;
}

static void nsp_disconnect(sio_socket_t *s, unsigned i)
{
    s->nsp_mask &= ~(1u << i);
    auth_drop(s, i);
    if (i == 0) {
        s->deferred = false;
        id_unindex(s);
        leave_all(s);
    }
}

void sio_socket_disconnect(sio_socket_t *s, bool close)
{
    if (!sio_socket_connected(s, 0))
        return;
    sio_socket_send_text(s, "41", 2);
    nsp_disconnect(s, 0);
    if (close)
        sio_socket_close(s);
}

static void describe_room(const char *name, size_t len, void *arg)
{
    buf_t *out = arg;
    buf_putc(out, ',');
    json_write_string(out, name, len);
}

void sio_socket_describe(const sio_socket_t *s, buf_t *out)
{
    /* auth: the main namespace's CONNECT payload, as Node keeps it */
    buf_printf(out, "{\"id\":\"%s\",\"handshake\":{", s->id);
    handshake_write(out, s->handshake, &s->peer.sa);
    buf_printf(out, ",\"auth\":%s},\"rooms\":[\"%s\"", s->auth0 ? s->auth0 : "{}", s->id);
    rooms_sock_foreach(&s->rooms, describe_room, out);
    buf_puts(out, "],\"data\":{}}");
}

/* ==== Authentication ==== */

/*
 * The token expired while connected: the `error` event {message: "Token expired"} and a
 * DISCONNECT on every connected namespace (the client sees "io server disconnect" and does not
 * reconnect by itself), then the session ends.
 */
static void on_token_expired(sio_auth_socket_t *as, void *arg)
{
    sio_t *sio = arg;
    sio_socket_t *s = ((auth_part_t *)((char *)as - offsetof(auth_part_t, as)))->s;
    count_limit(sio, STATS_LIMIT_TOKEN_EXPIRED);
    sio_socket_emit_error(s, AUTH_ERR_EXPIRED);
    for (unsigned i = 0; i < sio->nnsp; i++) {
        if (!(s->nsp_mask & (1u << i)))
            continue;
        buf_reset(&sio->out);
        sio_packet_encode(&sio->out, SIO_DISCONNECT, sio->nsp[i].name, sio->nsp[i].len, NULL, NULL,
                          0);
        send_out(s);
    }
    sio_socket_close(s);
}

/* ==== Packets ==== */

int sio_connect_reply(sio_socket_t *s, unsigned i, const char *sid)
{
    sio_t *sio = s->sio;
    char id[SIO_ID_LEN + 1];
    if (sid)
        memcpy(id, sid, sizeof(id));
    else if (ids_pool_random(&sio->ids, id, SIO_ID_LEN))
        return -EIO;
    id[SIO_ID_LEN] = '\0';
    buf_reset(&sio->json);
    buf_append(&sio->json, "{\"sid\":\"", 8);
    buf_append(&sio->json, id, SIO_ID_LEN);
    buf_putc(&sio->json, '"');
    if (i == 0) {
        EACH_OBSERVER(sio, o)
        {
            if (o->reply)
                o->reply(o->arg, s, &sio->json);
        }
    }
    buf_putc(&sio->json, '}');
    buf_reset(&sio->out);
    sio_packet_encode(&sio->out, SIO_CONNECT, sio->nsp[i].name, sio->nsp[i].len, NULL,
                      sio->json.data, sio->json.len);
    send_out(s);
    s->nsp_mask |= 1u << i;
    if (i == 0) {
        id_unindex(s);
        memcpy(s->id, id, sizeof(id));
        id_index(s);
        s->deferred = false;
    }
    if (s->es)
        eio_session_ready(s->es);
    EACH_OBSERVER(sio, o)
    {
        if (o->connected)
            o->connected(o->arg, s, i);
    }
    return 0;
}

void sio_socket_restore(sio_socket_t *s, const char *sid)
{
    id_unindex(s);
    memcpy(s->id, sid, SIO_ID_LEN);
    s->id[SIO_ID_LEN] = '\0';
    s->nsp_mask |= 1u;
    id_index(s);
}

/* The connecting observers of the main namespace from the one at index `from`, then the reply
 * (see sio_observer_t.connecting). */
static int run_connecting(sio_socket_t *s, const sio_packet_t *pk, unsigned from)
{
    sio_t *sio = s->sio;
    for (unsigned k = from; k < sio->nobs; k++) {
        sio_observer_t *o = &sio->obs[k];
        if (!o->connecting)
            continue;
        int rc = o->connecting(o->arg, s, pk);
        if (rc == 0) {
            s->deferred = true;
            s->deferred_by = k;
        }
        if (rc <= 0)
            return rc; /* 0: the observer answers */
    }
    return sio_connect_reply(s, 0, NULL);
}

static int on_connect_packet(sio_socket_t *s, const sio_packet_t *pk)
{
    sio_t *sio = s->sio;
    buf_reset(&sio->out);
    int i = nsp_index(sio, pk->nsp, pk->nsp_len);
    if (i < 0) {
        sio_packet_encode(&sio->out, SIO_CONNECT_ERROR, pk->nsp, pk->nsp_len, NULL,
                          "{\"message\":\"Invalid namespace\"}", 31);
        send_out(s);
        return 0;
    }
    if ((s->nsp_mask & (1u << i)) || (i == 0 && s->deferred))
        return -EPROTO; /* a second CONNECT for the same namespace: Node closes */
    const char *why = s->auth_state
                          ? sio_auth_connect(sio->auth, &s->auth_state->as, pk->data, pk->data_len)
                          : NULL;
    s->refused = i == 0 && why;
    if (why) {
        count_limit(sio, STATS_LIMIT_AUTH);
        /* refused like a Node middleware refusal: CONNECT_ERROR, the session stays open */
        buf_reset(&sio->json);
        buf_puts(&sio->json, "{\"message\":");
        json_write_string(&sio->json, why, strlen(why));
        buf_putc(&sio->json, '}');
        sio_packet_encode(&sio->out, SIO_CONNECT_ERROR, pk->nsp, pk->nsp_len, NULL, sio->json.data,
                          sio->json.len);
        send_out(s);
        return 0;
    }
    *auth_slot(s, (unsigned)i) = pk->data ? xmemdup(pk->data, pk->data_len) : NO_AUTH;
    return i == 0 ? run_connecting(s, pk, 0) : sio_connect_reply(s, (unsigned)i, NULL);
}

void sio_connect_resume(sio_socket_t *s)
{
    if (s->closed || !s->deferred)
        return;
    s->deferred = false;
    /* the CONNECT as it came: its payload is the one kept for the namespace */
    sio_packet_t pk = {.type = SIO_CONNECT,
                       .nsp = "/",
                       .nsp_len = 1,
                       .data = s->auth0,
                       .data_len = s->auth0 ? strlen(s->auth0) : 0};
    if (run_connecting(s, &pk, s->deferred_by + 1) < 0)
        sio_socket_close(s);
}

void sio_connect_refuse(sio_socket_t *s, const char *message)
{
    sio_t *sio = s->sio;
    if (s->closed || !s->deferred)
        return;
    s->deferred = false;
    s->refused = true;
    auth_drop(s, 0);
    buf_reset(&sio->json);
    buf_puts(&sio->json, "{\"message\":");
    json_write_string(&sio->json, message, strlen(message));
    buf_putc(&sio->json, '}');
    buf_reset(&sio->out);
    sio_packet_encode(&sio->out, SIO_CONNECT_ERROR, "/", 1, NULL, sio->json.data, sio->json.len);
    send_out(s);
}

static int on_event(sio_socket_t *s, unsigned nsp, const sio_packet_t *pk, unsigned natt)
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
    const char *rest = items[0].p + items[0].len;
    sio_event_t ev = {
        .nsp = nsp,
        .pk = pk,
        .args = items,
        .nargs = n,
        .rest = rest,
        .rest_len = (size_t)(pk->data + pk->data_len - rest),
        .atts = natt ? s->bin->atts.data : NULL,
        .atts_len = natt ? s->bin->atts.len : 0,
        .natt = natt,
    };
    EACH_OBSERVER(s->sio, o)
    {
        if (o->event && !s->closed)
            o->event(o->arg, s, &ev);
    }
    return 0;
}

/* A complete Socket.IO packet (attachments collected); negative: close (Node's behaviour). */
static int dispatch(sio_socket_t *s, const sio_packet_t *pk, unsigned natt)
{
    if (pk->type == SIO_CONNECT)
        return on_connect_packet(s, pk);
    int i = nsp_index(s->sio, pk->nsp, pk->nsp_len);
    if (i < 0 || !(s->nsp_mask & (1u << i)))
        return -EPROTO; /* packet for a namespace this client is not connected to */
    switch (pk->type) {
    case SIO_DISCONNECT:
        nsp_disconnect(s, (unsigned)i);
        return 0;
    case SIO_EVENT:
    case SIO_BINARY_EVENT:
        return on_event(s, (unsigned)i, pk, natt);
    case SIO_ACK:
        /* only cluster broadcasts with acks ask clients for acks (in any namespace) */
        EACH_OBSERVER(s->sio, o)
        {
            if (o->client_ack)
                o->client_ack(o->arg, s, pk->id, pk->data, pk->data_len);
        }
        return 0;
    case SIO_BINARY_ACK:
        return 0; /* the server asks no binary acks: unknown ids are ignored */
    default:
        return -EPROTO; /* CONNECT_ERROR from a client */
    }
}

static int packet(sio_socket_t *s, const char *p, size_t len)
{
    sio_t *sio = s->sio;
    sio_packet_t pk;
    if ((s->bin && attachments_pending(s->bin)) || sio_packet_decode(p, len, &pk))
        return -EPROTO;
    limits_verdict_t verdict = limits_event(sio->limits, &s->lim);
    if (verdict != LIMITS_PASS)
        count_limit(sio, STATS_LIMIT_RATE_EVENTS);
    switch (verdict) {
    case LIMITS_PASS:
        break;
    case LIMITS_NOTIFY:
        sio_socket_emit_error(s, LIMITS_ERR_RATE);
        return 0; /* the packet is dropped */
    case LIMITS_DROP:
        return 0;
    case LIMITS_KICK:
        return -EACCES; /* persistent abuse: the caller closes the connection */
    }
    if (pk.type != SIO_BINARY_EVENT && pk.type != SIO_BINARY_ACK)
        return dispatch(s, &pk, 0);
    if (!s->bin) {
        s->bin = xmalloc(sizeof(*s->bin));
        attachments_init(s->bin);
    }
    return attachments_start(s->bin, p, len, &pk, sio->keep_atts);
}

static int attachment(sio_socket_t *s, const uint8_t *p, size_t len)
{
    if (!s->bin)
        return -EPROTO; /* no binary packet announced it */
    int rc = attachments_add(s->bin, p, len);
    if (rc <= 0)
        return rc;
    sio_packet_t pk;
    rc = sio_packet_decode(s->bin->packet.data, s->bin->packet.len, &pk)
             ? -EPROTO
             : dispatch(s, &pk, s->bin->have);
    attachments_reset(s->bin);
    return rc;
}

/* ==== The endpoint's handlers ==== */

static int on_admit(void *arg, const struct sockaddr_storage *peer, const char **why)
{
    sio_t *sio = arg;
    int rc = limits_conn_admit(sio->limits, (const struct sockaddr *)peer);
    if (rc == -EMFILE || rc == -ENFILE || rc == -EBUSY)
        count_limit(sio, rc == -EMFILE   ? STATS_LIMIT_PER_IP
                         : rc == -ENFILE ? STATS_LIMIT_TOTAL
                                         : STATS_LIMIT_MEMORY);
    if (rc)
        *why = limits_strerror(rc);
    return rc;
}

static void on_release(void *arg, const struct sockaddr_storage *peer)
{
    sio_t *sio = arg;
    limits_conn_release(sio->limits, (const struct sockaddr *)peer);
}

static void *on_open(void *arg, eio_session_t *es, const http_req_t *req,
                     const struct sockaddr_storage *peer)
{
    sio_t *sio = arg;
    sio_socket_t *s = xcalloc(1, sizeof(*s));
    s->sio = sio;
    s->es = es;
    s->refs = 1;
    memcpy(&s->peer, peer,
           peer->ss_family == AF_INET6  ? sizeof(s->peer.in6)
           : peer->ss_family == AF_INET ? sizeof(s->peer.in)
                                        : sizeof(s->peer.sa));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    s->handshake =
        handshake_capture(req, (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000);
    limits_socket_init(sio->limits, &s->lim);
    if (sio_auth_enabled(sio->auth)) {
        s->auth_state = xcalloc(1, sizeof(*s->auth_state));
        s->auth_state->s = s;
        sio_auth_open(sio->auth, &s->auth_state->as, req);
    }
    ilist_push_front(&sio->sockets, &s->link);
    return s;
}

/* A message from the client, with s held: handling it may end the session. */
static int message(sio_socket_t *s, const char *p, size_t len, bool binary)
{
    sio_socket_hold(s);
    int rc = binary ? attachment(s, (const uint8_t *)p, len) : packet(s, p, len);
    sio_socket_release(s);
    return rc;
}

static int on_text(void *app, const char *p, size_t len)
{
    return message(app, p, len, false);
}

static int on_binary(void *app, const uint8_t *p, size_t len)
{
    return message(app, (const char *)p, len, true);
}

static void on_close(void *app)
{
    sio_socket_t *s = app;
    sio_t *sio = s->sio;
    if (s->nsp_mask & 1u) {
        EACH_OBSERVER(sio, o)
        {
            if (o->lost)
                o->lost(o->arg, s);
        }
    }
    id_unindex(s);
    leave_all(s);
    if (s->auth_state)
        sio_auth_stop(sio->auth, &s->auth_state->as);
    s->closed = true;
    s->es = NULL;
    ilist_remove(&s->link);
    sio_socket_release(s);
}

/* ==== The sockets a target names ==== */

static bool main_connected(const sio_socket_t *s)
{
    return sio_socket_connected(s, 0);
}

sio_socket_t *sio_socket_by_id(const sio_t *sio, const char *id, size_t len)
{
    if (len != SIO_ID_LEN)
        return NULL;
    sio_socket_t *s = strmap_get(sio->by_id, id, len);
    return s && main_connected(s) ? s : NULL;
}

bool sio_has_room(const sio_t *sio, const char *room, size_t len)
{
    return rooms_find(sio->rooms, room, len) || sio_socket_by_id(sio, room, len);
}

typedef struct walk {
    sio_t *sio;
    const sio_target_t *t;
    void (*fn)(sio_socket_t *s, rooms_mark_t *mark, void *arg);
    void *arg;
} walk_t;

static void visit(sio_socket_t *s, rooms_mark_t *mark, walk_t *w)
{
    if (s->mark == w->sio->epoch || !sio_socket_connected(s, w->t->nsp))
        return;
    s->mark = w->sio->epoch;
    w->fn(s, mark, w->arg);
}

static void visit_member(void *owner, rooms_mark_t *mark, void *arg)
{
    visit(owner, mark, arg);
}

static void exclude(void *owner, void *arg)
{
    sio_socket_t *s = owner;
    s->mark = ((sio_t *)arg)->epoch;
}

void sio_each(sio_t *sio, const sio_target_t *t,
              void (*fn)(sio_socket_t *s, rooms_mark_t *mark, void *arg), void *arg)
{
    walk_t w = {sio, t, fn, arg};
    sio->epoch++;
    if (t->nsp) {
        /* another namespace: no rooms there, so only "every socket of it" names anyone */
        if (t->nrooms == 0) {
            ILIST_FOREACH(l, &sio->sockets)
            {
                visit(ILIST_ENTRY(l, sio_socket_t, link), NULL, &w);
            }
        }
        return;
    }
    /* The id of a socket here names that socket alone, never a room some client joined under
     * that name: io.to(id) must not reach (nor except(id) spare) anyone else. */
    for (size_t i = 0; i < t->nexcept; i++) {
        sio_socket_t *one = sio_socket_by_id(sio, t->except[i].p, t->except[i].len);
        room_t *room = one ? NULL : rooms_find(sio->rooms, t->except[i].p, t->except[i].len);
        if (one)
            one->mark = sio->epoch;
        else if (room)
            rooms_foreach(room, exclude, sio);
    }
    if (t->nrooms == 0) {
        ILIST_FOREACH(l, &sio->sockets)
        {
            visit(ILIST_ENTRY(l, sio_socket_t, link), NULL, &w);
        }
    }
    for (size_t i = 0; i < t->nrooms; i++) {
        sio_socket_t *one = sio_socket_by_id(sio, t->rooms[i].p, t->rooms[i].len);
        room_t *room = one ? NULL : rooms_find(sio->rooms, t->rooms[i].p, t->rooms[i].len);
        if (one)
            visit(one, NULL, &w);
        else if (room)
            rooms_foreach_mark(room, visit_member, &w);
    }
}

typedef struct list {
    sio_socket_t **v;
    size_t n, cap;
} list_t;

static void list_add(sio_socket_t *s, rooms_mark_t *mark, void *arg)
{
    (void)mark;
    list_t *l = arg;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = s;
}

void sio_each_fixed(sio_t *sio, const sio_target_t *t, void (*fn)(sio_socket_t *s, void *arg),
                    void *arg)
{
    list_t l = {0};
    sio_each(sio, t, list_add, &l);
    for (size_t i = 0; i < l.n; i++)
        sio_socket_hold(l.v[i]);
    for (size_t i = 0; i < l.n; i++) {
        fn(l.v[i], arg);
        sio_socket_release(l.v[i]);
    }
    free(l.v);
}

typedef struct rooms_walk {
    strmap_t *seen;
    void (*fn)(const char *room, size_t len, void *arg);
    void *arg;
} rooms_walk_t;

static void room_once(const char *name, size_t len, void *arg)
{
    rooms_walk_t *w = arg;
    if (strmap_get(w->seen, name, len))
        return;
    strmap_put(w->seen, name, len, w);
    w->fn(name, len, w->arg);
}

void sio_each_room(sio_t *sio, void (*fn)(const char *room, size_t len, void *arg), void *arg)
{
    rooms_walk_t w = {strmap_new(), fn, arg};
    ILIST_FOREACH(l, &sio->sockets)
    {
        sio_socket_t *s = ILIST_ENTRY(l, sio_socket_t, link);
        if (!main_connected(s))
            continue;
        room_once(s->id, SIO_ID_LEN, &w);
        rooms_sock_foreach(&s->rooms, room_once, &w);
    }
    strmap_free(w.seen);
}

/* ==== Server ==== */

int sio_observe(sio_t *sio, const sio_observer_t *o)
{
    if (sio->nobs == SIO_OBSERVERS_MAX || (o->freed && sio->nslots == SIO_SLOTS_MAX))
        return -ENOSPC;
    sio->obs[sio->nobs++] = *o;
    sio->room_hooks = sio->room_hooks || o->room_deleted || o->left;
    sio->keep_atts = sio->keep_atts || o->reads_attachments;
    return o->freed ? (int)sio->nslots++ : 0;
}

const eio_handlers_t *sio_handlers(sio_t *sio)
{
    return &sio->handlers;
}

int sio_new(sio_t **out, uv_loop_t *loop, const cfg_t *cfg, bool extra_custom_nsp,
            stats_worker_t *stats)
{
    sio_t *sio = xcalloc(1, sizeof(*sio));
    ilist_init(&sio->sockets);
    sio->loop = loop;
    sio->cfg = cfg;
    sio->stats = stats;
    sio->handlers = (eio_handlers_t){
        .arg = sio,
        .admit = on_admit,
        .release = on_release,
        .on_open = on_open,
        .on_text = on_text,
        .on_binary = on_binary,
        .on_close = on_close,
    };
    buf_init(&sio->out);
    buf_init(&sio->json);
    buf_init(&sio->tmp);
    _Static_assert(CONFIG_MAX_NAMESPACES <= SIO_NSP_MAX, "one nsp_mask bit per namespace");
    _Static_assert(CONFIG_NAMESPACE_SIZE <= sizeof(sio->nsp[0].name), "namespace size");
    for (int i = 0; i < cfg->nnamespaces; i++) {
        size_t n = strlen(cfg->namespaces[i]);
        memcpy(sio->nsp[sio->nnsp].name, cfg->namespaces[i], n + 1);
        sio->nsp[sio->nnsp++].len = n;
    }
    if (extra_custom_nsp && sio->nnsp < SIO_NSP_MAX)
        sio->nsp[sio->nnsp++] = (nsp_name_t){"/custom", 7};
    for (unsigned i = 0; i < sio->nnsp; i++)
        sio->nsp_view[i] = (adapter_str_t){sio->nsp[i].name, sio->nsp[i].len};
    int rc = sio_auth_new(&sio->auth, loop, cfg, on_token_expired, sio);
    limits_config_t lc;
    limits_config_from_cfg(&lc, cfg, cfg->cluster_workers);
    sio->limits = limits_new(&lc);
    if (!rc) {
        sio->rooms = rooms_new();
        sio->by_id = strmap_new();
        if (!sio->rooms)
            rc = -errno; /* getrandom's */
    }
    if (rc) {
        sio_free(sio);
        return rc;
    }
    *out = sio;
    return 0;
}

bool sio_connecting(const sio_t *sio)
{
    ILIST_FOREACH(l, &sio->sockets)
    {
        const sio_socket_t *s = ILIST_ENTRY(l, const sio_socket_t, link);
        if (!s->closed && s->nsp_mask == 0 && !s->refused)
            return true;
    }
    return false;
}

void sio_free(sio_t *sio)
{
    if (!sio)
        return;
    sio_auth_free(sio->auth);
    limits_free(sio->limits);
    rooms_free(sio->rooms);
    strmap_free(sio->by_id);
    buf_free(&sio->out);
    buf_free(&sio->json);
    buf_free(&sio->tmp);
    free(sio);
}

bool sio_id_ok(const char *p, size_t len)
{
    if (len != SIO_ID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!memchr(EIO_SID_DIGITS, p[i], sizeof(EIO_SID_DIGITS) - 1))
            return false;
    }
    return true;
}
