/* bridge_hooks: see bridge_hooks.h. */
#include "worker/bridge/bridge_hooks.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/bridge/presence_store.h"
#include "common/json.h"
#include "common/xalloc.h"

struct bridge_hooks {
    sio_t *sio;
    fanout_t *fanout;
    presence_t *presence;
    inbound_t *inbound;
    int slot; /* the sockets' presence_sock_t */
    buf_t name, user, ack, msg;
};

/* An asynchronous answer about socket s (held until it comes). */
typedef struct pending {
    bridge_hooks_t *h;
    sio_socket_t *s;
    unsigned nsp;
    bool has_id;
    uint64_t id;
} pending_t;

static pending_t *pending_new(bridge_hooks_t *h, sio_socket_t *s)
{
    pending_t *p = xcalloc(1, sizeof(*p));
    p->h = h;
    p->s = s;
    sio_socket_hold(s);
    return p;
}

static void pending_free(pending_t *p)
{
    sio_socket_release(p->s);
    free(p);
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- connections and rooms ---- */

/* The socket's user id into h->user: the token's sub, or (without authentication) the CONNECT
 * payload's user_id. False when it has none. */
static bool user_of(bridge_hooks_t *h, sio_socket_t *s)
{
    buf_reset(&h->user);
    const auth_grant_t *g = sio_socket_grant(s);
    if (g) {
        const char *sub = auth_grant_subject(g);
        if (sub)
            buf_puts(&h->user, sub);
        return sub != NULL;
    }
    const char *auth = sio_socket_auth(s, 0);
    json_span_t v;
    buf_t tmp;
    buf_init(&tmp);
    bool ok = auth && json_member_get(auth, strlen(auth), "user_id", &v, &tmp) == 0;
    buf_free(&tmp);
    if (ok && v.type == JSON_STRING)
        ok = json_string_decode(v.p, v.len, &h->user) == 0;
    else if (ok && v.type == JSON_NUMBER)
        buf_append(&h->user, v.p, v.len);
    else
        ok = false;
    return ok && h->user.len && !memchr(h->user.data, '\0', h->user.len);
}

static void on_verdict(void *arg, bool ok)
{
    pending_t *p = arg;
    if (ok)
        sio_connect_resume(p->s);
    else
        sio_connect_refuse(p->s, PRESENCE_ERR_TOO_MANY);
    pending_free(p);
}

static int on_connecting(void *arg, sio_socket_t *s, const sio_packet_t *pk)
{
    (void)pk;
    bridge_hooks_t *h = arg;
    presence_sock_t *ps = sio_socket_ext(s, h->slot);
    if (!ps) {
        if (!h->presence || !user_of(h, s))
            return 1; /* anonymous: neither counted nor limited */
        ps = presence_sock_new(h->presence, h->user.data, h->user.len);
        if (!ps)
            return 1;
        sio_socket_set_ext(s, h->slot, ps);
    }
    pending_t *p = pending_new(h, s);
    if (presence_sock_connect(ps, on_verdict, p) == 1) {
        pending_free(p);
        return 1;
    }
    return 0; /* on_verdict resumes or refuses it */
}

static void on_joined(void *arg, sio_socket_t *s, const char *room, size_t len, rooms_mark_t *m)
{
    (void)m;
    bridge_hooks_t *h = arg;
    presence_sock_t *ps = sio_socket_ext(s, h->slot);
    if (ps)
        presence_sock_join(ps, room, len);
}

static void on_left(void *arg, sio_socket_t *s, const char *room, size_t len)
{
    bridge_hooks_t *h = arg;
    presence_sock_t *ps = sio_socket_ext(s, h->slot);
    if (ps)
        presence_sock_leave(ps, room, len);
}

static void on_freed(void *arg, sio_socket_t *s)
{
    bridge_hooks_t *h = arg;
    presence_sock_free(sio_socket_ext(s, h->slot));
    sio_socket_set_ext(s, h->slot, NULL);
}

/* ---- client events ---- */

static void answer(bridge_hooks_t *h, pending_t *p, const char *id, size_t id_len,
                   const char *error, bool ignored)
{
    if (p->has_id) {
        buf_t *b = &h->ack;
        buf_reset(b);
        if (id) {
            buf_puts(b, "[{\"ok\":true,\"id\":");
            json_write_string(b, id, id_len);
        } else {
            buf_puts(b, "[{\"ok\":false,\"error\":");
            json_write_string(b, error, strlen(error));
        }
        buf_puts(b, "}]");
        sio_socket_ack(p->s, p->nsp, p->id, b->data, b->len);
    } else if (error && !ignored) {
        sio_socket_emit_error(p->s, error);
    }
}

static void on_added(void *arg, const char *id, size_t id_len, const char *error)
{
    pending_t *p = arg;
    answer(p->h, p, id, id_len, error, false);
    pending_free(p);
}

static bool seed_event(const sio_event_t *ev)
{
    const json_span_t *n = &ev->args[0];
    return ev->nsp == 0 && ((n->len == 11 && memcmp(n->p, "\"join-room\"", 11) == 0) ||
                            (n->len == 12 && memcmp(n->p, "\"leave-room\"", 12) == 0));
}

static void on_event(void *arg, sio_socket_t *s, const sio_event_t *ev)
{
    bridge_hooks_t *h = arg;
    if (!h->inbound || seed_event(ev))
        return;
    buf_reset(&h->name);
    if (json_string_decode(ev->args[0].p, ev->args[0].len, &h->name) != 0)
        return;
    size_t nnsp;
    const adapter_str_t *nsps = sio_namespaces(h->sio, &nnsp);
    const auth_grant_t *g = sio_socket_grant(s);
    inbound_event_t e = {
        .name = h->name.data ? h->name.data : "",
        .name_len = h->name.len,
        .args = ev->rest,
        .args_len = ev->rest_len,
        .first = ev->nargs > 1 ? &ev->args[1] : NULL,
        .natt = ev->natt,
        .sid = sio_socket_id(s),
        .user = g ? auth_grant_subject(g) : NULL,
        .nsp = nsps[ev->nsp].p,
        .grant = g,
        .ts_ms = wall_ms(),
    };
    pending_t *p = pending_new(h, s);
    p->nsp = ev->nsp;
    p->has_id = ev->pk->has_id;
    p->id = ev->pk->id;
    const char *error = NULL;
    if (inbound_add(h->inbound, &e, on_added, p, &error) != 0) {
        answer(h, p, NULL, 0, error, strcmp(error, INBOUND_ERR_NOT_ACCEPTED) == 0);
        pending_free(p);
    }
}

/* ---- presence events to the members here ---- */

void bridge_hooks_presence_event(bridge_hooks_t *h, const char *msg, size_t len)
{
    bool join;
    const char *room, *user;
    size_t room_len, user_len;
    if (presence_event_decode(msg, len, &join, &room, &room_len, &user, &user_len) != 0 ||
        !sio_has_room(h->sio, room, room_len))
        return;
    presence_event_packet(&h->msg, join, room, room_len, user, user_len);
    fanout_packet_t pk;
    fanout_packet_cluster(&pk, h->msg.data, h->msg.len, NULL, 0, 0);
    adapter_str_t target_room = {room, room_len};
    sio_target_t t = {.rooms = &target_room, .nrooms = 1};
    fanout_deliver(h->fanout, &t, false, &pk);
    fanout_packet_release(&pk);
}

int bridge_hooks_new(bridge_hooks_t **out, sio_t *sio, fanout_t *fanout, presence_t *presence,
                     inbound_t *inbound)
{
    bridge_hooks_t *h = xcalloc(1, sizeof(*h));
    h->sio = sio;
    h->fanout = fanout;
    h->presence = presence;
    h->inbound = inbound;
    buf_init(&h->name);
    buf_init(&h->user);
    buf_init(&h->ack);
    buf_init(&h->msg);
    sio_observer_t o = {.arg = h, .event = on_event};
    if (presence) {
        o.connecting = on_connecting;
        o.joined = on_joined;
        o.left = on_left;
        o.freed = on_freed;
    }
    int rc = sio_observe(sio, &o);
    if (rc < 0) {
        bridge_hooks_free(h);
        return rc;
    }
    h->slot = rc;
    *out = h;
    return 0;
}

void bridge_hooks_free(bridge_hooks_t *h)
{
    if (!h)
        return;
    buf_free(&h->name);
    buf_free(&h->user);
    buf_free(&h->ack);
    buf_free(&h->msg);
    free(h);
}
