/*
 * shm_ledger: which stream entries each worker process delivered to its own sockets, so that an
 * entry read again from a pending list (its reader killed with SIGKILL, or its connection lost,
 * between the delivery and the XACK) is not handed out twice.
 *
 * Why exact records and not "the last id delivered": a stream's entries can reach a worker out
 * of id order (claims of another consumer's entries, ownership moving at a restart, a reload
 * running two processes of one worker number), so an id below a high-water mark proves nothing.
 * A record here names one entry exactly (stream, id, and a digest of the packet bytes built for
 * it) and one process (its pid), and says only that this process queued that very entry to its
 * sockets in that room. A missing, replaced or torn record means "not proven": the entry goes
 * again, a duplicate, never a loss.
 *
 * The master maps the ledger (anonymous, MAP_SHARED|MAP_NORESERVE, inherited through fork only)
 * before the first fork and keeps it across respawns, so a block's records outlive the process
 * that wrote them. Per process block, SHM_LEDGER_RECORDS records in buckets of 8 chosen by a
 * hash of (stream, id): a new record replaces the oldest of its bucket, so a record lives until
 * 8 later ones hashed to its bucket. Only a block's own process writes its records; any process
 * reads any block's. Each record has a state word (0 while being written; else a stamp unique in
 * its block) read before and after its fields, so a reader never trusts a record that changed
 * under it (a seqlock) or that a kill cut short.
 *
 * Publishing to the other servers (the adapter's PUBLISH, SPUBLISH or XADD) has records of its
 * own kind, which never count as "queued" nor the reverse: one is written when the command is
 * sent (shm_ledger_sending) and marked published only when Redis' reply to it came
 * (shm_ledger_sent), so a process killed or a connection lost in between leaves it unpublished
 * (published again: a duplicate, never a loss). A published record proves a fact about Redis,
 * not about its writer: Redis executed a publish of exactly that entry. So shm_ledger_published
 * asks every block and ignores the pid: a dead predecessor's record proves it as well as the
 * current process's, and neither pid reuse nor two processes of one worker number during a
 * reload can make it false.
 *
 * No function allocates after shm_ledger_new, logs, or makes a syscall.
 */
#ifndef STREAMIO_SHM_LEDGER_H
#define STREAMIO_SHM_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHM_LEDGER_RECORDS 4096u /* per block, a power of two */
#define SHM_LEDGER_NAME_MAX 88u  /* stream name bytes a record holds; longer ones go unrecorded */

typedef struct shm_ledger shm_ledger_t;

/* One stream entry as the ledger knows it; stream is borrowed. */
typedef struct shm_ledger_entry {
    const char *stream;
    size_t stream_len;
    uint64_t ms, seq; /* its id */
    uint64_t digest;  /* shm_ledger_digest of the packet bytes built for it */
} shm_ledger_entry_t;

/* Master, before fork: maps `nblocks` (1..SHM_REGION_MAX_SLOTS) empty ledgers. 0, -EINVAL, or
 * mmap's -errno. */
int shm_ledger_new(shm_ledger_t **out, uint32_t nblocks);
/* Unmaps this process's view; NULL is a no-op. */
void shm_ledger_free(shm_ledger_t *l);

/* A 64-bit digest of len bytes (not cryptographic: it tells apart two entries that a stream
 * re-created with the same ids would carry). */
uint64_t shm_ledger_digest(const void *p, size_t len);

/* Block's process `pid`: it has queued e to its sockets. False when e cannot be recorded (a bad
 * block, a name over SHM_LEDGER_NAME_MAX). */
bool shm_ledger_note(shm_ledger_t *l, uint32_t block, int32_t pid, const shm_ledger_entry_t *e);
/* Any process: whether block's records prove that process `pid` queued exactly e (stream, id and
 * digest) to its sockets. */
bool shm_ledger_holds(shm_ledger_t *l, uint32_t block, int32_t pid, const shm_ledger_entry_t *e);

/* Block's process `pid`, before sending the publish of e: its ticket for shm_ledger_sent, 0 when
 * e cannot be recorded. */
uint64_t shm_ledger_sending(shm_ledger_t *l, uint32_t block, int32_t pid,
                            const shm_ledger_entry_t *e);
/* Block's process, once Redis replied (no error) to the publish it got `ticket` for: the record
 * says published. False when it was replaced meanwhile (or already marked). */
bool shm_ledger_sent(shm_ledger_t *l, uint32_t block, uint64_t ticket);
/* Any process: whether any block's records prove that Redis executed a publish of exactly e. */
bool shm_ledger_published(shm_ledger_t *l, const shm_ledger_entry_t *e);

#endif
