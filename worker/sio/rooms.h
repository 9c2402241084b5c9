/*
 * rooms: one worker's room registry, room name -> member sockets and socket -> its rooms.
 * Intrusive: each socket embeds a rooms_sock_t, and each membership is one node linked both
 * into the socket's list and into the room's list, so join and leave are O(1) once the room is
 * found and broadcasting to a room walks its members without allocating. Rooms live in a
 * growing hash table keyed by the name bytes (any bytes, NULs included; hashed with a per-
 * registry random key so names chosen by peers cannot force collisions). A room exists exactly
 * while it has members: it is created by the first join and freed by the last leave.
 * The registry belongs to one worker loop; nothing here is thread-safe, and it never logs.
 */
#ifndef STREAMIO_WORKER_SIO_ROOMS_H
#define STREAMIO_WORKER_SIO_ROOMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rooms rooms_t;
typedef struct room room_t;
struct rooms_member;

/* Per-membership bookkeeping that belongs to the caller (connection state recovery keeps stream
 * entry ids there as ms/seq pairs). Zeroed by a join; this module never reads it. */
typedef struct rooms_mark {
    uint64_t first[2];
    uint64_t last[2];
    uint64_t held[2];
    uint32_t tag;
    uint32_t kept; /* where recovery keeps a copy that outlives the process (0: none) */
} rooms_mark_t;

/* Embed one in each socket. Zero-initialised = in no room. Only this module writes it. */
typedef struct rooms_sock {
    struct rooms_member *first;
    size_t count; /* number of rooms the socket is in */
} rooms_sock_t;

/* Returns an empty registry, or NULL with errno set when getrandom fails for the hash key. */
rooms_t *rooms_new(void);
/*
 * Frees the registry, every room and every membership node still in it. Sockets that were still
 * members are not touched: their rooms_sock_t is stale afterwards and must be zeroed before any
 * reuse. NULL is a no-op.
 */
void rooms_free(rooms_t *r);

/*
 * Adds socket `s` (whose owner pointer, handed back by rooms_foreach, is `owner`) to the room
 * named name[0..len) (borrowed; copied when the room is created). Allocates the membership node
 * and, for a new room, the room. Returns 0 when joined, 1 when `s` already was a member
 * (nothing changes).
 */
int rooms_join(rooms_t *r, rooms_sock_t *s, void *owner, const char *name, size_t len);
/* Removes `s` from the room; the room is freed if it becomes empty. 0, or -ENOENT if `s` was not
 * a member. */
int rooms_leave(rooms_t *r, rooms_sock_t *s, const char *name, size_t len);
/* Removes `s` from every room it is in (on disconnect); `s` is left zeroed. */
void rooms_leave_all(rooms_t *r, rooms_sock_t *s);
/* Whether `s` is in the named room. Walks the socket's own rooms. */
bool rooms_is_member(const rooms_sock_t *s, const char *name, size_t len);

/* The room with that name, or NULL. The pointer is valid until the room's last member leaves. */
room_t *rooms_find(rooms_t *r, const char *name, size_t len);
size_t rooms_count(const rooms_t *r);
size_t rooms_members(const room_t *room);
/* The room's name bytes (NUL-terminated for convenience; may hold NULs) and length. */
const char *rooms_name(const room_t *room, size_t *len);

/*
 * Calls fn(owner, arg) once for each member of `room`, most recent joiner first. fn must not
 * join, leave or free anything in this registry during the walk.
 */
void rooms_foreach(const room_t *room, void (*fn)(void *owner, void *arg), void *arg);
/*
 * Calls fn(name, len, arg) once for each room `s` is in, most recent first; `name` is
 * NUL-terminated and valid during the call. Same restriction as rooms_foreach.
 */
void rooms_sock_foreach(const rooms_sock_t *s, void (*fn)(const char *name, size_t len, void *arg),
                        void *arg);

/* rooms_foreach, with each member's mark for this room. */
void rooms_foreach_mark(const room_t *room, void (*fn)(void *owner, rooms_mark_t *mark, void *arg),
                        void *arg);
/* rooms_sock_foreach, with the socket's mark for each room. */
void rooms_sock_foreach_mark(const rooms_sock_t *s,
                             void (*fn)(const char *name, size_t len, rooms_mark_t *mark,
                                        void *arg),
                             void *arg);
/* The socket's mark for the named room, or NULL when it is not a member. */
rooms_mark_t *rooms_sock_mark(const rooms_sock_t *s, const char *name, size_t len);

#endif
