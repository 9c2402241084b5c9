/* room_sync: see room_sync.h. */
#include "worker/cluster/room_sync.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

/* What this worker knows of the sibling in one slot. */
typedef struct peer {
    bool known;       /* its DONE arrived, with no notice missed since its list began */
    bool seen;        /* live at the last tick, or heard from since */
    uint64_t expect;  /* the number of its next notice; 0 before the first */
    uint64_t intact;  /* its lists that begin at this number or later lost nothing */
    uint64_t missing; /* when its list was last asked for (or first missed); 0: not */
    bool doubt;       /* its rooms are in doubt since a gap (io.doubt) */
} peer_t;

struct room_sync {
    room_sync_io_t io;
    uint32_t nslots, me;
    uint64_t seq;     /* the number of this worker's next notice */
    uint64_t beat_at; /* when the last ROOM_SYNC_RETRY_MS period began */
    bool spoke;       /* a notice went out in the current period */
    peer_t *peer;     /* per slot */
};

room_sync_t *room_sync_new(uint32_t nslots, uint32_t me, uint64_t first_seq,
                           const room_sync_io_t *io)
{
    room_sync_t *s = xcalloc(1, sizeof(*s));
    s->io = *io;
    s->nslots = nslots;
    s->me = me;
    s->seq = first_seq;
    s->peer = xcalloc(nslots, sizeof(*s->peer));
    return s;
}

void room_sync_free(room_sync_t *s)
{
    if (!s)
        return;
    free(s->peer);
    free(s);
}

static void emit(room_sync_t *s, char kind, const char *room, size_t len)
{
    s->io.send(s->io.arg, kind, s->seq++, room, len);
    s->spoke = true;
}

static void send_add(const char *room, size_t len, void *arg)
{
    emit(arg, ROOM_SYNC_ADD, room, len);
}

/* The list ends with DONE naming the number of its first notice: a receiver that lost a notice
 * after that one knows this list is not whole. */
static void send_rooms(room_sync_t *s)
{
    uint64_t first = s->seq;
    s->io.own_rooms(s->io.arg, send_add, s);
    emit(s, ROOM_SYNC_DONE, (const char *)&first, sizeof(first));
}

/* Asks the worker in `slot` for its list again (its answer goes to every sibling). */
static void ask(room_sync_t *s, uint32_t slot, uint64_t now_ms)
{
    emit(s, ROOM_SYNC_ASK, (const char *)&slot, sizeof(slot));
    s->peer[slot].missing = now_ms ? now_ms : 1;
}

void room_sync_start(room_sync_t *s)
{
    emit(s, ROOM_SYNC_HELLO, "", 0);
    send_rooms(s);
}

void room_sync_own(room_sync_t *s, const char *room, size_t len, bool on)
{
    s->io.room(s->io.arg, s->me, room, len, on);
    emit(s, on ? ROOM_SYNC_ADD : ROOM_SYNC_DEL, room, len);
}

void room_sync_notice(room_sync_t *s, uint32_t from, char kind, uint64_t seq, const char *room,
                      size_t len, uint64_t now_ms)
{
    if (from >= s->nslots || from == s->me)
        return;
    s->peer[from].seen = true;
    /* a notice of that worker's went missing: its list is incomplete here until sent again */
    bool gap = kind != ROOM_SYNC_HELLO && s->peer[from].expect && seq != s->peer[from].expect;
    s->peer[from].expect = seq + 1;
    if (gap || kind == ROOM_SYNC_HELLO)
        s->peer[from].intact = seq;
    if (gap) {
        s->peer[from].known = false;
        s->peer[from].doubt = true; /* again: a DEL may be lost among those since the last */
        s->io.doubt(s->io.arg, from, false);
        if (!s->peer[from].missing || now_ms - s->peer[from].missing >= ROOM_SYNC_RETRY_MS)
            ask(s, from, now_ms); /* one list at a time: a burst of losses asks once */
    }
    uint64_t first = 0;
    switch (kind) {
    case ROOM_SYNC_ADD:
    case ROOM_SYNC_DEL:
        s->io.room(s->io.arg, from, room, len, kind == ROOM_SYNC_ADD);
        break;
    case ROOM_SYNC_HELLO: /* a new worker in that slot: what its predecessor held is gone */
        s->peer[from].known = s->peer[from].doubt = false;
        s->peer[from].missing = 0;
        s->io.forget(s->io.arg, from);
        send_rooms(s);
        break;
    case ROOM_SYNC_DONE:
        if (len == sizeof(first))
            memcpy(&first, room, sizeof(first));
        if (first && first >= s->peer[from].intact) {
            s->peer[from].known = true;
            s->peer[from].missing = 0;
            if (s->peer[from].doubt)
                s->io.doubt(s->io.arg, from, true);
            s->peer[from].doubt = false;
        }
        break;
    case ROOM_SYNC_ASK:
        if (len == sizeof(uint32_t) && memcmp(room, &s->me, sizeof(uint32_t)) == 0)
            send_rooms(s);
        break;
    default:
        break;
    }
}

void room_sync_tick(room_sync_t *s, uint64_t now_ms)
{
    for (uint32_t i = 0; i < s->nslots; i++) {
        if (i == s->me)
            continue;
        bool live = s->io.live(s->io.arg, i);
        if (!live && s->peer[i].seen) {
            s->peer[i].known = s->peer[i].doubt = false;
            s->peer[i].expect = 0;
            s->peer[i].intact = 0;
            s->io.forget(s->io.arg, i);
        }
        s->peer[i].seen = live;
        if (!live || s->peer[i].known)
            s->peer[i].missing = 0;
        else if (!s->peer[i].missing) /* its list is on its way, or lost: give it a while */
            s->peer[i].missing = now_ms ? now_ms : 1;
        else if (now_ms - s->peer[i].missing >= ROOM_SYNC_RETRY_MS)
            ask(s, i, now_ms);
    }
    /* a period without a notice says the last number, so a lost last one is seen */
    if (now_ms - s->beat_at >= ROOM_SYNC_RETRY_MS) {
        if (!s->spoke)
            emit(s, ROOM_SYNC_BEAT, "", 0);
        s->spoke = false;
        s->beat_at = now_ms;
    }
}

bool room_sync_complete(const room_sync_t *s)
{
    for (uint32_t i = 0; i < s->nslots; i++)
        if (i != s->me && !s->peer[i].known && s->io.live(s->io.arg, i))
            return false;
    return true;
}
