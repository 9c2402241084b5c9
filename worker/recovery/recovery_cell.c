/* recovery_cell: see recovery_cell.h. */
#include "worker/recovery/recovery_cell.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

typedef struct room_entry {
    uint32_t tag;
    uint32_t len;
    stream_id_t first, last;
    char name[];
} room_entry_t;

#define AREA (SHM_SESSIONS_CELL_BYTES - offsetof(recovery_cell_t, rooms))

_Static_assert(sizeof(recovery_cell_t) < SHM_SESSIONS_CELL_BYTES / 2, "room for the rooms");
_Static_assert(sizeof(room_entry_t) % 8 == 0, "entries stay aligned");

static size_t entry_size(size_t len)
{
    return (sizeof(room_entry_t) + len + 7) & ~(size_t)7;
}

void recovery_cell_init(recovery_cell_t *c, const char *pid, size_t pid_len)
{
    if (pid_len > RECOVERY_CELL_SID)
        pid_len = 0; /* never recovered then */
    memset(c, 0, sizeof(*c));
    atomic_signal_fence(memory_order_seq_cst);
    memcpy(c->pid, pid, pid_len);
    c->pid_len = (uint32_t)pid_len;
}

void recovery_cell_set_sid(recovery_cell_t *c, const char *sid, size_t sid_len)
{
    if (sid_len > RECOVERY_CELL_SID)
        sid_len = 0; /* never valid then */
    memcpy(c->sid, sid, sid_len);
    c->sid_len = (uint32_t)sid_len;
    atomic_signal_fence(memory_order_seq_cst);
    c->valid = c->used != UINT32_MAX && sid_len > 0;
}

/* The compiler keeps these stores in order: a kill may land between any two of them. */
void recovery_cell_rooms_begin(recovery_cell_t *c)
{
    c->valid = 0;
    atomic_signal_fence(memory_order_seq_cst);
    c->used = 0;
}

uint32_t recovery_cell_room_add(recovery_cell_t *c, const char *name, size_t len, uint32_t tag,
                                stream_id_t first, stream_id_t last)
{
    size_t sz = entry_size(len);
    if (c->used == UINT32_MAX || sz > AREA - c->used) {
        c->used = UINT32_MAX; /* incomplete until the next rewrite */
        return 0;
    }
    room_entry_t *e = (room_entry_t *)(c->rooms + c->used);
    e->tag = tag;
    e->len = (uint32_t)len;
    e->first = first;
    e->last = last;
    memcpy(e->name, name, len);
    uint32_t handle = c->used + 1;
    atomic_signal_fence(memory_order_seq_cst); /* the entry is whole before it counts */
    c->used += (uint32_t)sz;
    return handle;
}

void recovery_cell_rooms_end(recovery_cell_t *c)
{
    atomic_signal_fence(memory_order_seq_cst);
    c->valid = c->used != UINT32_MAX && c->sid_len > 0;
}

void recovery_cell_set_last(recovery_cell_t *c, uint32_t handle, stream_id_t last)
{
    if (handle && handle - 1 < AREA && c->used != UINT32_MAX)
        ((room_entry_t *)(c->rooms + handle - 1))->last = last;
}

int recovery_cell_encode(const recovery_cell_t *c, const char *pid, size_t pid_len, buf_t *out)
{
    if (!pid_len || c->pid_len != pid_len || memcmp(c->pid, pid, pid_len) || !c->valid ||
        c->used > AREA || !c->sid_len || c->sid_len > RECOVERY_CELL_SID)
        return -EPROTO;
    size_t n = 0;
    for (size_t off = 0; off < c->used; n++) {
        const room_entry_t *e = (const room_entry_t *)(c->rooms + off);
        if (sizeof(*e) > c->used - off || e->len > c->used - off - sizeof(*e))
            return -EPROTO;
        off += entry_size(e->len);
    }
    recovery_room_t *rooms = xcalloc(n + 1, sizeof(*rooms));
    const recovery_log_t *l = &c->log;
    uint32_t from = l->count > RECOVERY_LOG_LEN ? l->count - RECOVERY_LOG_LEN : 0;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const room_entry_t *e = (const room_entry_t *)(c->rooms + off);
        rooms[i] = (recovery_room_t){e->name, e->len, e->tag, e->first, e->last};
        for (uint32_t k = from; k < l->count; k++) {
            const recovery_send_t *s = &l->e[k % RECOVERY_LOG_LEN];
            if (s->tag == e->tag && stream_id_cmp(s->id, rooms[i].last) > 0)
                rooms[i].last = s->id;
        }
        off += entry_size(e->len);
    }
    int rc = recovery_encode(out, c->sid, c->sid_len, l, rooms, n) ? -EPROTO : 0;
    free(rooms);
    return rc;
}
