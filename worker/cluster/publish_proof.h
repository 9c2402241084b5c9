/*
 * publish_proof: whether a stream entry read again (this consumer's pending list after a kill -9
 * or a lost connection, or a claim) must be published to the other servers again (the adapter's
 * PUBLISH, SPUBLISH or XADD on the reading connection, ahead of the entry's XACK).
 *
 * Each publish of an entry is noted in this process's ledger block (shm/ledger.h) before it is
 * sent, and marked published from the reply callback of that very command, when Redis' reply is
 * not an error: so a re-read entry is skipped only once Redis has executed its publish. A process
 * killed, or a connection lost (callbacks run with NULL), before the reply leaves the entry
 * unproven: it is published again, a duplicate and never a loss. The proof names the entry
 * exactly (stream, id, a digest of the adapter's packet.data bytes) and where its publish went
 * (the `target`: a reload may point the next process at another adapter, key or Redis, whose
 * subscribers a proof of the old one says nothing about; and the nodes that executed it: after a
 * failover a publish the demoted primary executed, or an XADD it lost unreplicated, reached
 * nobody now subscribed or reading on the new one), and holds whichever process of this server
 * wrote it (see shm_ledger_published).
 *
 * The callbacks' contexts come from a fixed pool made by publish_proof_new (no allocation per
 * entry); while all of them are in flight a publish goes unnoted (a re-read sends it again).
 * Counts skips in stats->reread_unpublished and marks in stats->adapter_confirmed.
 */
#ifndef STREAMIO_WORKER_CLUSTER_PUBLISH_PROOF_H
#define STREAMIO_WORKER_CLUSTER_PUBLISH_PROOF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shm/ledger.h"
#include "shm/stats.h"
#include "worker/stream/reader.h"

#define PUBLISH_PROOF_INFLIGHT 4096u /* publishes awaiting their reply that can be noted */

typedef struct publish_proof publish_proof_t;

/* Over `ledger` (borrowed) as the process `pid` of `block`, publishing to `target` (bytes
 * naming the adapter, its key and the Redis server; read during the call); stats borrowed.
 * Never NULL. */
publish_proof_t *publish_proof_new(shm_ledger_t *ledger, uint32_t block, int32_t pid,
                                   const char *target, size_t target_len, stats_worker_t *stats);
/* Only once no callback it handed out can run any more (the reader closed). NULL: no-op. */
void publish_proof_free(publish_proof_t *p);

/* The entry as the ledger names it, published to p's target through the nodes `where` names
 * (reader_where of the connection the publish goes on): stream and data (the adapter's
 * packet.data) borrowed for the ledger calls. False when the id does not parse. */
bool publish_proof_entry(const publish_proof_t *p, shm_ledger_entry_t *e, uint64_t where,
                         const char *stream, size_t stream_len, const char *id, size_t id_len,
                         const char *data, size_t data_len);
/* Whether e, read again, has a publish that Redis executed (then counted as skipped). */
bool publish_proof_done(publish_proof_t *p, const shm_ledger_entry_t *e);

/* Before sending e's publish: the reply callback and argument to send it with (*cb NULL when it
 * goes unnoted). A command refused at once never gets its callback: hand *arg back then with
 * publish_proof_cancel. */
void publish_proof_begin(publish_proof_t *p, const shm_ledger_entry_t *e, reader_reply_fn *cb,
                         void **arg);
void publish_proof_cancel(void *arg);

#endif
