/* room_union: see room_union.h. */
#include "worker/cluster/room_union.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/strmap.h"
#include "common/xalloc.h"

#define WORDS (ROOM_UNION_SLOTS / 64)

typedef struct holders {
    uint64_t bits[WORDS];
    uint64_t doubt[WORDS]; /* the slots for which it is in doubt (room_union_doubt) */
    bool confirmed;
} holders_t;

struct room_union {
    strmap_t *rooms; /* name -> holders_t */
    size_t unconfirmed;
};

room_union_t *room_union_new(void)
{
    room_union_t *u = xcalloc(1, sizeof(*u));
    u->rooms = strmap_new();
    return u;
}

void room_union_free(room_union_t *u)
{
    if (!u)
        return;
    strmap_free_values(u->rooms, NULL);
    strmap_free(u->rooms);
    free(u);
}

static bool empty(const holders_t *h)
{
    for (unsigned i = 0; i < WORDS; i++)
        if (h->bits[i])
            return false;
    return true;
}

static void drop(room_union_t *u, const char *room, size_t len)
{
    holders_t *h = strmap_del(u->rooms, room, len);
    if (h && !h->confirmed)
        u->unconfirmed--;
    free(h);
}

int room_union_set(room_union_t *u, uint32_t slot, const char *room, size_t len, bool on)
{
    if (slot >= ROOM_UNION_SLOTS || len == 0)
        return -EINVAL;
    uint64_t bit = 1ull << (slot % 64);
    holders_t *h = strmap_get(u->rooms, room, len);
    if (h)
        h->doubt[slot / 64] &= ~bit;
    if (on) {
        if (h) {
            h->bits[slot / 64] |= bit;
            return 0;
        }
        h = xcalloc(1, sizeof(*h));
        h->bits[slot / 64] = bit;
        strmap_put(u->rooms, room, len, h);
        u->unconfirmed++;
        return 1;
    }
    if (!h || !(h->bits[slot / 64] & bit))
        return 0;
    h->bits[slot / 64] &= ~bit;
    if (!empty(h))
        return 0;
    drop(u, room, len);
    return 1;
}

typedef struct forget {
    uint32_t slot;
    bool doubted; /* only the rooms in doubt for the slot */
    buf_t gone;   /* length-prefixed names of the rooms that emptied */
} forget_t;

static void clear_slot(const char *key, size_t len, void *value, void *arg)
{
    forget_t *f = arg;
    holders_t *h = value;
    uint64_t bit = 1ull << (f->slot % 64);
    bool doubted = h->doubt[f->slot / 64] & bit;
    h->doubt[f->slot / 64] &= ~bit;
    if (!(h->bits[f->slot / 64] & bit) || (f->doubted && !doubted))
        return;
    h->bits[f->slot / 64] &= ~bit;
    if (empty(h)) {
        buf_append(&f->gone, &len, sizeof(len));
        buf_append(&f->gone, key, len);
    }
}

static void forget(room_union_t *u, uint32_t slot, bool doubted, room_union_fn fn, void *arg)
{
    if (slot >= ROOM_UNION_SLOTS)
        return;
    forget_t f = {.slot = slot, .doubted = doubted};
    buf_init(&f.gone);
    strmap_foreach(u->rooms, clear_slot, &f);
    for (size_t off = 0; off < f.gone.len;) {
        size_t len;
        memcpy(&len, f.gone.data + off, sizeof(len));
        const char *room = f.gone.data + off + sizeof(len);
        drop(u, room, len);
        if (fn)
            fn(room, len, arg);
        off += sizeof(len) + len;
    }
    buf_free(&f.gone);
}

void room_union_forget(room_union_t *u, uint32_t slot, room_union_fn fn, void *arg)
{
    forget(u, slot, false, fn, arg);
}

static void doubt_slot(const char *key, size_t len, void *value, void *arg)
{
    (void)key;
    (void)len;
    holders_t *h = value;
    uint32_t slot = *(const uint32_t *)arg;
    h->doubt[slot / 64] |= h->bits[slot / 64] & (1ull << (slot % 64));
}

void room_union_doubt(room_union_t *u, uint32_t slot)
{
    if (slot < ROOM_UNION_SLOTS)
        strmap_foreach(u->rooms, doubt_slot, &slot);
}

void room_union_sweep(room_union_t *u, uint32_t slot, room_union_fn fn, void *arg)
{
    forget(u, slot, true, fn, arg);
}

bool room_union_has(const room_union_t *u, const char *room, size_t len)
{
    return strmap_get(u->rooms, room, len) != NULL;
}

size_t room_union_size(const room_union_t *u)
{
    return strmap_size(u->rooms);
}

typedef struct each {
    room_union_fn fn;
    void *arg;
} each_t;

static void each_one(const char *key, size_t len, void *value, void *arg)
{
    (void)value;
    each_t *e = arg;
    e->fn(key, len, e->arg);
}

void room_union_each(const room_union_t *u, room_union_fn fn, void *arg)
{
    each_t e = {fn, arg};
    strmap_foreach(u->rooms, each_one, &e);
}

void room_union_confirm(room_union_t *u, const char *room, size_t len, bool confirmed)
{
    holders_t *h = strmap_get(u->rooms, room, len);
    if (!h || h->confirmed == confirmed)
        return;
    h->confirmed = confirmed;
    if (confirmed)
        u->unconfirmed--;
    else
        u->unconfirmed++;
}

static void unconfirm(const char *key, size_t len, void *value, void *arg)
{
    (void)key;
    (void)len;
    holders_t *h = value;
    size_t *n = arg;
    h->confirmed = false;
    (*n)++;
}

void room_union_unconfirm_all(room_union_t *u)
{
    u->unconfirmed = 0;
    strmap_foreach(u->rooms, unconfirm, &u->unconfirmed);
}

size_t room_union_unconfirmed(const room_union_t *u)
{
    return u->unconfirmed;
}
