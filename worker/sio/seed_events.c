/* seed_events: see seed_events.h. */
#include "worker/sio/seed_events.h"

#include <stdlib.h>
#include <string.h>

#include "common/auth.h"
#include "common/xalloc.h"

#define ROOM_ID_MAX_UNITS 512 /* the Node server's limit, in UTF-16 code units */

struct seed_events {
    buf_t name; /* the decoded room id */
    buf_t ack;  /* an ack's JSON */
};

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

/* ack({ok:true, roomId}) / ack({ok:false, error}); room_json NULL drops the key like undefined */
static void send_ack(seed_events_t *e, sio_socket_t *s, uint64_t id, const char *room_json,
                     size_t room_len, const char *error)
{
    buf_t *b = &e->ack;
    buf_reset(b);
    buf_puts(b, error ? "[{\"ok\":false" : "[{\"ok\":true");
    if (room_json) {
        buf_puts(b, ",\"roomId\":");
        json_minify(b, room_json, room_len);
    }
    if (error) {
        buf_puts(b, ",\"error\":");
        json_write_string(b, error, strlen(error));
    }
    buf_puts(b, "}]");
    sio_socket_ack(s, 0, id, b->data, b->len);
}

/*
 * Why room may not be joined, or NULL when it was joined; *verdict: the joins bucket's. The
 * seed's own refusals come first and cost no join token: only a join that would happen is rate
 * limited, so a client joining its rooms at connect sees exactly the seed's answers (its
 * MAX_ROOMS_PER_SOCKET-th join passes, the next says "Max rooms limit reached") as long as the
 * join burst is at least MAX_ROOMS_PER_SOCKET, as the defaults are. A flood of refused joins is
 * still bounded by the events bucket every packet goes through.
 */
static const char *join(sio_socket_t *s, bool is_str, const char *room, size_t len,
                        limits_verdict_t *verdict)
{
    if (!is_str || len == 0 || utf16_units(room, len) > ROOM_ID_MAX_UNITS)
        return "Invalid room id";
    if (sio_socket_rooms_full(s, room, len))
        return "Max rooms limit reached";
    if (!sio_socket_room_allowed(s, room, len))
        return AUTH_ERR_ROOM_DENIED;
    if ((*verdict = sio_socket_rate_join(s)) != LIMITS_PASS)
        return LIMITS_ERR_RATE;
    sio_socket_join(s, room, len);
    return NULL;
}

static void on_room_event(seed_events_t *e, sio_socket_t *s, bool is_join, const json_span_t *arg,
                          const sio_packet_t *pk)
{
    buf_t *name = &e->name;
    buf_reset(name);
    bool is_str =
        arg && arg->type == JSON_STRING && json_string_decode(arg->p, arg->len, name) == 0;
    const char *room = name->data ? name->data : "";
    limits_verdict_t verdict = LIMITS_PASS;
    const char *err = NULL;
    if (is_join)
        err = join(s, is_str, room, name->len, &verdict);
    else if (is_str)
        sio_socket_leave(s, room, name->len);
    if (verdict == LIMITS_KICK) {
        sio_socket_close(s);
        return;
    }
    if (err && verdict != LIMITS_DROP)
        sio_socket_emit_error(s, err);
    if (pk->has_id)
        send_ack(e, s, pk->id, err ? NULL : (arg ? arg->p : NULL), arg ? arg->len : 0, err);
}

static void on_event(void *arg, sio_socket_t *s, const sio_event_t *ev)
{
    if (ev->nsp != 0)
        return; /* rooms live on the main namespace */
    const json_span_t *name = &ev->args[0];
    const json_span_t *room = ev->nargs > 1 ? &ev->args[1] : NULL;
    if (name->len == 11 && memcmp(name->p, "\"join-room\"", 11) == 0)
        on_room_event(arg, s, true, room, ev->pk);
    else if (name->len == 12 && memcmp(name->p, "\"leave-room\"", 12) == 0)
        on_room_event(arg, s, false, room, ev->pk);
}

seed_events_t *seed_events_new(sio_t *sio)
{
    seed_events_t *e = xcalloc(1, sizeof(*e));
    buf_init(&e->name);
    buf_init(&e->ack);
    sio_observe(sio, &(sio_observer_t){.arg = e, .event = on_event});
    return e;
}

void seed_events_free(seed_events_t *e)
{
    if (!e)
        return;
    buf_free(&e->name);
    buf_free(&e->ack);
    free(e);
}
