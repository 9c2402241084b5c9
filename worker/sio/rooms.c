/*
 * rooms: chained hash table of rooms; each room and each socket heads a doubly linked list of
 * membership nodes. Lists use a pointer to the previous node's `next` field (pprev) so a node
 * can be unlinked without knowing which head it hangs from.
 */
#include "worker/sio/rooms.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/xalloc.h"

#define MIN_BUCKETS 16

struct rooms_member {
    struct rooms_member *s_next, **s_pprev; /* in the socket's list */
    struct rooms_member *r_next, **r_pprev; /* in the room's list */
    room_t *room;
    rooms_sock_t *sock;
    void *owner;
    rooms_mark_t mark;
};

struct room {
    room_t *chain; /* next room in the same bucket */
    uint64_t hash;
    struct rooms_member *first;
    size_t count;
    size_t len;
    char name[]; /* len bytes + NUL */
};

struct rooms {
    room_t **buckets;
    size_t mask; /* bucket count - 1; the count is a power of two */
    size_t count;
    uint64_t key[2];
};

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static void sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = rotl(v[1], 13) ^ v[0];
    v[0] = rotl(v[0], 32);
    v[2] += v[3];
    v[3] = rotl(v[3], 16) ^ v[2];
    v[0] += v[3];
    v[3] = rotl(v[3], 21) ^ v[0];
    v[2] += v[1];
    v[1] = rotl(v[1], 17) ^ v[2];
    v[2] = rotl(v[2], 32);
}

/* SipHash-1-3: keyed, so peers that pick room names cannot aim them at one bucket. */
static uint64_t hash_name(const rooms_t *r, const char *name, size_t len)
{
    uint64_t v[4] = {r->key[0] ^ 0x736f6d6570736575ULL, r->key[1] ^ 0x646f72616e646f6dULL,
                     r->key[0] ^ 0x6c7967656e657261ULL, r->key[1] ^ 0x7465646279746573ULL};
    const unsigned char *p = (const unsigned char *)name;
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        uint64_t m = 0;
        for (int b = 7; b >= 0; b--)
            m = (m << 8) | p[i + (size_t)b];
        v[3] ^= m;
        sip_round(v);
        v[0] ^= m;
    }
    uint64_t last = (uint64_t)(len & 0xff) << 56;
    for (size_t b = 0; i + b < len; b++)
        last |= (uint64_t)p[i + b] << (8 * b);
    v[3] ^= last;
    sip_round(v);
    v[0] ^= last;
    v[2] ^= 0xff;
    for (int k = 0; k < 3; k++)
        sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

rooms_t *rooms_new(void)
{
    rooms_t *r = xcalloc(1, sizeof(*r));
    r->buckets = xcalloc(MIN_BUCKETS, sizeof(*r->buckets));
    r->mask = MIN_BUCKETS - 1;
    uint8_t *k = (uint8_t *)r->key;
    size_t got = 0;
    while (got < sizeof(r->key)) {
        ssize_t n = getrandom(k + got, sizeof(r->key) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;
            free(r->buckets);
            free(r);
            errno = err;
            return NULL;
        }
        got += (size_t)n;
    }
    return r;
}

void rooms_free(rooms_t *r)
{
    if (!r)
        return;
    for (size_t b = 0; b <= r->mask; b++) {
        room_t *room = r->buckets[b];
        while (room) {
            room_t *next_room = room->chain;
            struct rooms_member *m = room->first;
            while (m) {
                struct rooms_member *next = m->r_next;
                free(m);
                m = next;
            }
            free(room);
            room = next_room;
        }
    }
    free(r->buckets);
    free(r);
}

static room_t *lookup(const rooms_t *r, const char *name, size_t len, uint64_t h)
{
    for (room_t *room = r->buckets[h & r->mask]; room; room = room->chain) {
        if (room->hash == h && room->len == len && (len == 0 || memcmp(room->name, name, len) == 0))
            return room;
    }
    return NULL;
}

/* Doubles the table once rooms outnumber buckets; at the size limit chains just get longer. */
static void maybe_grow(rooms_t *r)
{
    size_t n = r->mask + 1;
    if (r->count <= n || n > SIZE_MAX / 2 / sizeof(room_t *))
        return;
    room_t **nb = xcalloc(n * 2, sizeof(*nb));
    size_t mask = n * 2 - 1;
    for (size_t b = 0; b < n; b++) {
        room_t *room = r->buckets[b];
        while (room) {
            room_t *next = room->chain;
            room->chain = nb[room->hash & mask];
            nb[room->hash & mask] = room;
            room = next;
        }
    }
    free(r->buckets);
    r->buckets = nb;
    r->mask = mask;
}

static room_t *room_create(rooms_t *r, const char *name, size_t len, uint64_t h)
{
    if (len > SIZE_MAX - sizeof(room_t) - 1)
        xalloc_die(len);
    room_t *room = xmalloc(sizeof(*room) + len + 1);
    room->hash = h;
    room->first = NULL;
    room->count = 0;
    room->len = len;
    if (len)
        memcpy(room->name, name, len);
    room->name[len] = '\0';
    room->chain = r->buckets[h & r->mask];
    r->buckets[h & r->mask] = room;
    r->count++;
    maybe_grow(r);
    return room;
}

static void room_destroy(rooms_t *r, room_t *room)
{
    room_t **pp = &r->buckets[room->hash & r->mask];
    while (*pp != room)
        pp = &(*pp)->chain;
    *pp = room->chain;
    r->count--;
    free(room);
}

/* Walks whichever of the two lists is shorter. */
static struct rooms_member *find_member(const room_t *room, const rooms_sock_t *s)
{
    if (s->count <= room->count) {
        for (struct rooms_member *m = s->first; m; m = m->s_next) {
            if (m->room == room)
                return m;
        }
    } else {
        for (struct rooms_member *m = room->first; m; m = m->r_next) {
            if (m->sock == s)
                return m;
        }
    }
    return NULL;
}

static void unlink_member(struct rooms_member *m)
{
    *m->s_pprev = m->s_next;
    if (m->s_next)
        m->s_next->s_pprev = m->s_pprev;
    *m->r_pprev = m->r_next;
    if (m->r_next)
        m->r_next->r_pprev = m->r_pprev;
    m->sock->count--;
    m->room->count--;
}

int rooms_join(rooms_t *r, rooms_sock_t *s, void *owner, const char *name, size_t len)
{
    uint64_t h = hash_name(r, name, len);
    room_t *room = lookup(r, name, len, h);
    if (room && find_member(room, s))
        return 1;

    struct rooms_member *m = xmalloc(sizeof(*m));
    if (!room)
        room = room_create(r, name, len, h);
    m->room = room;
    m->sock = s;
    m->owner = owner;
    m->mark = (rooms_mark_t){{0, 0}, {0, 0}, {0, 0}, 0, 0};

    m->s_next = s->first;
    m->s_pprev = &s->first;
    if (s->first)
        s->first->s_pprev = &m->s_next;
    s->first = m;
    s->count++;

    m->r_next = room->first;
    m->r_pprev = &room->first;
    if (room->first)
        room->first->r_pprev = &m->r_next;
    room->first = m;
    room->count++;
    return 0;
}

int rooms_leave(rooms_t *r, rooms_sock_t *s, const char *name, size_t len)
{
    room_t *room = lookup(r, name, len, hash_name(r, name, len));
    struct rooms_member *m = room ? find_member(room, s) : NULL;
    if (!m)
        return -ENOENT;
    unlink_member(m);
    free(m);
    if (room->count == 0)
        room_destroy(r, room);
    return 0;
}

void rooms_leave_all(rooms_t *r, rooms_sock_t *s)
{
    while (s->first) {
        struct rooms_member *m = s->first;
        room_t *room = m->room;
        unlink_member(m);
        free(m);
        if (room->count == 0)
            room_destroy(r, room);
    }
}

bool rooms_is_member(const rooms_sock_t *s, const char *name, size_t len)
{
    for (const struct rooms_member *m = s->first; m; m = m->s_next) {
        if (m->room->len == len && (len == 0 || memcmp(m->room->name, name, len) == 0))
            return true;
    }
    return false;
}

room_t *rooms_find(rooms_t *r, const char *name, size_t len)
{
    return lookup(r, name, len, hash_name(r, name, len));
}

size_t rooms_count(const rooms_t *r)
{
    return r->count;
}

size_t rooms_members(const room_t *room)
{
    return room->count;
}

const char *rooms_name(const room_t *room, size_t *len)
{
    *len = room->len;
    return room->name;
}

void rooms_foreach(const room_t *room, void (*fn)(void *owner, void *arg), void *arg)
{
    for (const struct rooms_member *m = room->first; m; m = m->r_next)
        fn(m->owner, arg);
}

void rooms_sock_foreach(const rooms_sock_t *s, void (*fn)(const char *name, size_t len, void *arg),
                        void *arg)
{
    for (const struct rooms_member *m = s->first; m; m = m->s_next)
        fn(m->room->name, m->room->len, arg);
}

void rooms_foreach_mark(const room_t *room, void (*fn)(void *owner, rooms_mark_t *mark, void *arg),
                        void *arg)
{
    for (struct rooms_member *m = room->first; m; m = m->r_next)
        fn(m->owner, &m->mark, arg);
}

void rooms_sock_foreach_mark(const rooms_sock_t *s,
                             void (*fn)(const char *name, size_t len, rooms_mark_t *mark,
                                        void *arg),
                             void *arg)
{
    for (struct rooms_member *m = s->first; m; m = m->s_next)
        fn(m->room->name, m->room->len, &m->mark, arg);
}

rooms_mark_t *rooms_sock_mark(const rooms_sock_t *s, const char *name, size_t len)
{
    for (struct rooms_member *m = s->first; m; m = m->s_next) {
        if (m->room->len == len && (len == 0 || memcmp(m->room->name, name, len) == 0))
            return &m->mark;
    }
    return NULL;
}
