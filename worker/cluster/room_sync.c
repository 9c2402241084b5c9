/* room_sync: see room_sync.h. */
#include "worker/cluster/room_sync.h"

#include <stdlib.h>

#include "common/xalloc.h"

struct room_sync {
    room_sync_io_t io;
    uint32_t nslots, me;
    bool *known; /* per slot: its DONE arrived and it has stayed live since */
    bool *seen;  /* per slot: live at the last tick, or heard from since */
};

room_sync_t *room_sync_new(uint32_t nslots, uint32_t me, const room_sync_io_t *io)
{
    room_sync_t *s = xcalloc(1, sizeof(*s));
    s->io = *io;
    s->nslots = nslots;
    s->me = me;
    s->known = xcalloc(nslots, sizeof(*s->known));
    s->seen = xcalloc(nslots, sizeof(*s->seen));
    return s;
}

void room_sync_free(room_sync_t *s)
{
    if (!s)
        return;
    free(s->known);
    free(s->seen);
    free(s);
}

static void send_add(const char *room, size_t len, void *arg)
{
    room_sync_t *s = arg;
    s->io.send(s->io.arg, ROOM_SYNC_ADD, room, len);
}

static void send_rooms(room_sync_t *s)
{
    s->io.own_rooms(s->io.arg, send_add, s);
    s->io.send(s->io.arg, ROOM_SYNC_DONE, "", 0);
}

void room_sync_start(room_sync_t *s)
{
    s->io.send(s->io.arg, ROOM_SYNC_HELLO, "", 0);
    send_rooms(s);
}

void room_sync_own(room_sync_t *s, const char *room, size_t len, bool on)
{
    s->io.room(s->io.arg, s->me, room, len, on);
    s->io.send(s->io.arg, on ? ROOM_SYNC_ADD : ROOM_SYNC_DEL, room, len);
}

void room_sync_notice(room_sync_t *s, uint32_t from, char kind, const char *room, size_t len)
{
    if (from >= s->nslots || from == s->me)
        return;
    s->seen[from] = true;
    switch (kind) {
    case ROOM_SYNC_ADD:
    case ROOM_SYNC_DEL:
        s->io.room(s->io.arg, from, room, len, kind == ROOM_SYNC_ADD);
        break;
    case ROOM_SYNC_HELLO: /* a new worker in that slot: what its predecessor held is gone */
        s->known[from] = false;
        s->io.forget(s->io.arg, from);
        send_rooms(s);
        break;
    case ROOM_SYNC_DONE:
        s->known[from] = true;
        break;
    default:
        break;
    }
}

void room_sync_tick(room_sync_t *s)
{
    for (uint32_t i = 0; i < s->nslots; i++) {
        if (i == s->me)
            continue;
        bool live = s->io.live(s->io.arg, i);
        if (!live && s->seen[i]) {
            s->known[i] = false;
            s->io.forget(s->io.arg, i);
        }
        s->seen[i] = live;
    }
}

bool room_sync_complete(const room_sync_t *s)
{
    for (uint32_t i = 0; i < s->nslots; i++)
        if (i != s->me && !s->known[i] && s->io.live(s->io.arg, i))
            return false;
    return true;
}
