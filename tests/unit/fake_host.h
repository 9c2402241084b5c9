/*
 * A fake adapter_host_t for the unit tests of worker/cluster (adapter, member, streams): it records
 * what a member asks of the sockets (the last broadcast's packet and target, joins, leaves,
 * disconnects) and pretends `each_sockets` sockets match every target, one local room "here".
 * Header-only: each test binary includes it once.
 */
#ifndef STREAMIO_TESTS_UNIT_FAKE_HOST_H
#define STREAMIO_TESTS_UNIT_FAKE_HOST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "worker/cluster/adapter.h"

typedef struct host_fake {
    int broadcasts;
    buf_t last_text;   /* text packet of the last broadcast */
    bool last_has_id;  /* it carried an entry id (a room:message with its offset) */
    buf_t last_frames; /* its WebSocket form: the text frame, then one per attachment */
    size_t nrooms, nexcept;
    char room0[64];
    bool skip_busy;
    unsigned nsp; /* target namespace of the last broadcast */
    int joins, leaves, disconnects;
    char joined[64];
    bool closed;
    size_t each_sockets; /* sockets `each` pretends to find */
    int room_lookups;    /* has_room calls: what a received message cost before decoding */
} host_fake_t;

static size_t f_broadcast(void *ctx, const adapter_target_t *t, const fanout_packet_t *pk)
{
    host_fake_t *f = ctx;
    f->broadcasts++;
    f->nrooms = t->nrooms;
    f->nexcept = t->nexcept;
    f->skip_busy = t->skip_busy;
    f->nsp = t->nsp;
    f->room0[0] = '\0';
    if (t->nrooms)
        snprintf(f->room0, sizeof(f->room0), "%.*s", (int)t->rooms[0].len, t->rooms[0].p);
    size_t len;
    const char *text = eio_msg_text(pk->msg, &len);
    assert_int_equal(pk->kind, FANOUT_CLUSTER);
    buf_reset(&f->last_text);
    buf_append(&f->last_text, text, len);
    f->last_has_id = pk->has_id;
    refbuf_t *frames = eio_msg_frames(pk->msg);
    buf_reset(&f->last_frames);
    buf_append(&f->last_frames, refbuf_data(frames), refbuf_len(frames));
    return 2;
}

/* The fake's sockets are 1..each_sockets (as pointers); their ids differ in the last letter. */
static const char *const fake_ids[] = {"AAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAB",
                                       "AAAAAAAAAAAAAAAAAAAC", "AAAAAAAAAAAAAAAAAAAD"};

static void f_each(void *ctx, const adapter_target_t *t, void (*fn)(void *sock, void *arg),
                   void *arg)
{
    host_fake_t *f = ctx;
    (void)t;
    for (size_t i = 0; i < f->each_sockets; i++)
        fn((void *)(uintptr_t)(i + 1), arg);
}

static const char *f_id(void *ctx, void *sock)
{
    (void)ctx;
    return fake_ids[((uintptr_t)sock - 1) % 4];
}

static void f_describe(void *ctx, void *sock, buf_t *out)
{
    (void)ctx;
    (void)sock;
    buf_puts(out, "{\"id\":\"AAAAAAAAAAAAAAAAAAAA\"}");
}

static void f_join(void *ctx, void *sock, const char *room, size_t len)
{
    (void)sock;
    host_fake_t *f = ctx;
    f->joins++;
    snprintf(f->joined, sizeof(f->joined), "%.*s", (int)len, room);
}

static void f_leave(void *ctx, void *sock, const char *room, size_t len)
{
    (void)sock;
    (void)room;
    (void)len;
    ((host_fake_t *)ctx)->leaves++;
}

static void f_disconnect(void *ctx, void *sock, bool close)
{
    (void)sock;
    host_fake_t *f = ctx;
    f->disconnects++;
    f->closed = close;
}

static void f_rooms(void *ctx, void (*fn)(const char *room, size_t len, void *arg), void *arg)
{
    (void)ctx;
    fn("here", 4, arg);
}

static bool f_has_room(void *ctx, const char *room, size_t len)
{
    ((host_fake_t *)ctx)->room_lookups++;
    return len == 4 && memcmp(room, "here", 4) == 0;
}

static adapter_host_t fake_host(host_fake_t *f, const adapter_str_t *nsps, size_t nnsp)
{
    buf_init(&f->last_text);
    buf_init(&f->last_frames);
    adapter_host_t host = {f,       f_broadcast,  f_each,  f_id,       f_describe, f_join,
                           f_leave, f_disconnect, f_rooms, f_has_room, nsps,       nnsp};
    return host;
}

#endif
