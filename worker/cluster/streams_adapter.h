/*
 * streams_adapter: makes this worker one member of a cluster of socket.io servers on
 * @socket.io/redis-streams-adapter 0.3 (SOCKETIO_REDIS_ADAPTER=streams), Node servers included
 * (docs/protocol.md §3.1). The transport only; what a message asks of the sockets is member.c's,
 * as for the classic and sharded adapter.
 *  - It reads the adapter's stream, SOCKETIO_REDIS_STREAM_NAME (with SOCKETIO_REDIS_STREAM_COUNT
 *    > 1, the stream of each namespace served), with `XREAD COUNT 100 BLOCK 5000` on a connection
 *    of its own per stream, as every member does: no consumer group, every member reads every
 *    entry. It starts at the stream's last entry (the adapter's `$`, pinned to an id with one
 *    XREVRANGE so nothing written meanwhile is skipped) and resumes after a lost connection from
 *    the last id it read.
 *  - It subscribes to `<SOCKETIO_REDIS_KEY>#<nsp>#` for the ephemeral messages (broadcasts with
 *    acks, serverSideEmit, fetchSockets), which makes each worker one member in PUBSUB NUMSUB, and
 *    answers in msgpack on `<SOCKETIO_REDIS_KEY>#<nsp>#<requester uid>#`.
 *  - streams_adapter_publish appends this server's stream entries to the stream, encoded once.
 *    They are never delivered locally first: every worker of every server, this one included,
 *    delivers an entry when XREAD returns it, so every client gets the stream's order and, with
 *    CONNECTION_RECOVERY, each packet carries its entry id as the offset any server can resume
 *    from. That is also why entries of this worker's own uid are not skipped, as Node's are.
 * Redis is reached through redis_client on the worker's topology (single, Sentinel or Cluster).
 */
#ifndef STREAMIO_WORKER_CLUSTER_STREAMS_ADAPTER_H
#define STREAMIO_WORKER_CLUSTER_STREAMS_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/redis/redis_topology.h"
#include "shm/stats.h"
#include "worker/cluster/adapter.h"

#define STREAMS_ADAPTER_READ_COUNT 100 /* the adapter's readCount */
#define STREAMS_ADAPTER_BLOCK_MS 5000  /* its blockTimeInMs */

typedef struct streams_adapter streams_adapter_t;

/*
 * Starts reading and subscribing at once (again after every reconnect). Borrows topo (which must
 * outlive it), cfg and stats; copies *host. 0, or -EIO when no random uid can be drawn.
 */
int streams_adapter_new(streams_adapter_t **out, redis_topology_t *topo, const cfg_t *cfg,
                        const adapter_host_t *host, stats_worker_t *stats);
/*
 * Appends an EVENT with data_json ([event, ...args], borrowed) for `room` of "/" to the stream,
 * `XADD <stream> MAXLEN ~ <SOCKETIO_REDIS_STREAM_MAXLEN> * uid <uid> nsp / type 3 data <data>`,
 * through send(…, send_arg) (argv[1] is the stream: route by it), so the caller orders it before
 * its later commands. 0, send's error, or -EINVAL (data not JSON).
 */
int streams_adapter_publish(streams_adapter_t *sa, adapter_send_fn send, void *send_arg,
                            const char *room, size_t room_len, const char *data_json,
                            size_t data_len);
/* Socket sock_id answered ack `ack_id` (see adapter_client_ack). NULL sa: the host's. */
adapter_ack_t streams_adapter_client_ack(streams_adapter_t *sa, const char *sock_id,
                                         uint64_t ack_id, const char *args_json, size_t args_len);
/* Reading every stream and subscribed (the /health "redisConnected" of this worker). */
bool streams_adapter_connected(const streams_adapter_t *sa);
/* The stream of "/" (its key), and the id of the last entry read from it and delivered ("" until
 * reading starts): later entries reach the sockets from here on, those up to it did already. Both
 * NUL-terminated, owned by sa. */
const char *streams_adapter_main_stream(const streams_adapter_t *sa);
const char *streams_adapter_main_last(const streams_adapter_t *sa);
/* The random uid this member answers with (16 characters, NUL-terminated). */
const char *streams_adapter_uid(const streams_adapter_t *sa);
/* Stops reading, closes its connections; done(arg) runs once everything is released. */
void streams_adapter_close(streams_adapter_t *sa, void (*done)(void *arg), void *arg);

#endif
