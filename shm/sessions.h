/*
 * shm_sessions: cells of session state that outlive the worker that wrote them, so that a
 * worker killed with SIGKILL (or dead of a crash) leaves its clients' recoverable sessions
 * behind for the other workers of the server.
 *
 * Why shared memory and not Redis: what a session needs to be placed again changes on every
 * send (its send log, each room's last id). Writing it into a mapping costs a few stores on the
 * broadcast path and no syscall; a write-through to Redis would cost a command per recipient.
 *
 * The master maps the cells (anonymous, MAP_SHARED|MAP_NORESERVE: inherited through fork only,
 * never named, so no other uid can open them; pages are committed as cells are first used)
 * before the first fork, and keeps them across every respawn. One pool serves every process
 * block: a cell is {state, owner block, expiry, key} (one 64-byte header, scanned without
 * touching the payloads) and SHM_SESSIONS_CELL_BYTES of payload whose layout is the caller's.
 *
 * States: FREE -> LIVE (a worker allocates it for a session) -> FREE (the session ended or was
 * saved elsewhere). When a block's process is reaped, the master turns that block's LIVE cells
 * into ORPHANs until an expiry (the recovery window); any worker may then claim an orphan by
 * its key (ORPHAN -> TAKEN, one claimer wins), read it, and free it. An orphan past its expiry
 * is a free cell again. Transitions are compare-and-swaps, so processes never lock each other.
 *
 * Times are CLOCK_MONOTONIC milliseconds (one clock for every process of the box). No function
 * logs or decides policy; the only allocation after shm_sessions_new is the process-local list
 * of released cells that shm_sessions_release grows (reused first by shm_sessions_alloc).
 */
#ifndef STREAMIO_SHM_SESSIONS_H
#define STREAMIO_SHM_SESSIONS_H

#include <stddef.h>
#include <stdint.h>

#define SHM_SESSIONS_KEY_MAX 40       /* key bytes (a Socket.IO pid is 20) */
#define SHM_SESSIONS_CELL_BYTES 8192u /* payload of one cell: two pages, page-aligned */
#define SHM_SESSIONS_MAX_CELLS (1u << 20)

typedef struct shm_sessions shm_sessions_t;

/* Master, before fork: maps `ncells` (1..SHM_SESSIONS_MAX_CELLS) free cells. 0, -EINVAL, or
 * mmap's -errno. */
int shm_sessions_new(shm_sessions_t **out, uint32_t ncells);
/* Unmaps this process's view; NULL is a no-op. */
void shm_sessions_free(shm_sessions_t *t);

/*
 * Worker: a cell for `block`'s session keyed `key` (1..SHM_SESSIONS_KEY_MAX bytes): a free cell
 * or an orphan past its expiry, now LIVE; its payload holds what its last user left (zero the
 * first time: the caller initialises what it reads, so untouched pages stay uncommitted). Returns
 * the payload (SHM_SESSIONS_CELL_BYTES, page-aligned) and its index in *cell, or NULL when every
 * cell is taken or the key is too long.
 */
void *shm_sessions_alloc(shm_sessions_t *t, uint32_t block, const char *key, size_t len,
                         uint64_t now_ms, uint32_t *cell);
/* The cell's payload becomes free again (from LIVE or TAKEN). */
void shm_sessions_release(shm_sessions_t *t, uint32_t cell);

/* Master, once `block`'s process is reaped: its LIVE cells become orphans until expires_ms.
 * Returns how many. */
uint32_t shm_sessions_orphan(shm_sessions_t *t, uint32_t block, uint64_t expires_ms);

/*
 * Any worker: claims the unexpired orphan keyed `key`: its payload (stable until
 * shm_sessions_release(cell), which the claimer must call), or NULL when there is none. Costs
 * nothing while no orphan is pending.
 */
void *shm_sessions_claim(shm_sessions_t *t, const char *key, size_t len, uint64_t now_ms,
                         uint32_t *cell);

#endif
