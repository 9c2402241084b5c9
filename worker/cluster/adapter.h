/*
 * adapter: makes this worker one member of a cluster of socket.io servers that share rooms
 * through Redis: the other workers of this server, other streamio servers, Node servers using
 * @socket.io/redis-adapter 8.x (classic or sharded) and the @socket.io/redis-emitter 5.x.
 *
 * Classic mode (docs/protocol.md §4): broadcasts are msgpack [uid, packet, opts] PUBLISHed on
 * `<prefix>#/#<room>#` and received through `PSUBSCRIBE <prefix>#/#*`; requests arrive on
 * `<prefix>-request#/#` (SUBSCRIBE) and are answered on `<prefix>-response#/#`. Sharded mode (§5):
 * ClusterAdapter JSON messages, SSUBSCRIBE to `<prefix>#/#`, to `<prefix>#/#<uid>#` and, dynamic
 * subscription, to `<prefix>#/#<room>#` for every local room whose name is not 20 characters
 * long; responses are SPUBLISHed on the requester's uid channel. Private mode (adapter off, several
 * workers): classic broadcasts on a per-server prefix, no requests. In classic and private modes
 * one worker per server may hold the broadcast patterns and relay to the others (see
 * adapter_set_relay).
 *
 * The adapter owns its two Redis connections (pub/sub, and one for responses), the requests'
 * bookkeeping (broadcasts waiting for client acks) and the wire formats. It never touches a socket
 * itself: every socket-level operation goes through an adapter_host_t (worker/fanout/adapter_host:
 * the lower layers implement it), so the layers underneath can change. Rooms, requests and acks
 * live in the main namespace "/"; broadcasts for the other namespaces the host serves travel on
 * their own channels
 * (`<prefix>#/admin#...`, subscribed like the main ones) and reach all sockets of that namespace
 * (there are no rooms there); sharded requests arriving on such a channel are answered empty so
 * no Node caller waits, and classic ones are not subscribed to (so not counted). Requests of
 * types it cannot serve (server-side events: streamio has no server-side handlers) are still
 * answered so that no Node caller waits for its timeout.
 */
#ifndef STREAMIO_WORKER_CLUSTER_ADAPTER_H
#define STREAMIO_WORKER_CLUSTER_ADAPTER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/proto/adapter_msg.h"
#include "common/redis/redis_topology.h"
#include "shm/stats.h"
#include "worker/cluster/relay_cut.h"
#include "worker/fanout/adapter_host.h"

typedef struct adapter adapter_t;

typedef enum adapter_mode {
    ADAPTER_MODE_PRIVATE, /* classic broadcasts between this server's workers only */
    ADAPTER_MODE_CLASSIC, /* PUBLISH/PSUBSCRIBE + request/response channels */
    ADAPTER_MODE_SHARDED  /* SPUBLISH/SSUBSCRIBE, dynamic per-room subscriptions */
} adapter_mode_t;

/*
 * Connects and subscribes at once through the Redis layer on topo (which keeps the subscriptions
 * across reconnects and failovers, rooms included). Borrows topo, cfg, stats; copies prefix and
 * *host. 0, or -EIO when no random uid can be drawn.
 */
int adapter_new(adapter_t **out, redis_topology_t *topo, const cfg_t *cfg, adapter_mode_t mode,
                const char *prefix, const adapter_host_t *host, stats_worker_t *stats);
/* Sends one command (binary-safe argv, borrowed for the call) where the caller wants it
 * ordered. 0, or a negative errno. */
typedef int (*adapter_send_fn)(int argc, const char **argv, const size_t *lens, void *arg);
/* An EVENT's packet.data, the JSON array [event, ...args], and optionally the same as msgpack
 * (classic mode then copies it instead of converting the JSON). Borrowed. */
typedef struct adapter_data {
    const char *json;
    size_t json_len;
    bool json_compact;    /* json is the host's own encoding: valid, minified, copied as is */
    const uint8_t *mpack; /* NULL: converted from json when needed */
    size_t mpack_len;
} adapter_data_t;
/* Whether adapter_publish uses adapter_data_t.mpack (classic mode): build it only then. */
bool adapter_wants_mpack(const adapter_t *a);
/*
 * Publishes an EVENT with `data` to one room through send(…, send_arg), so the caller orders it
 * before its later commands (classic: PUBLISH of the msgpack message; sharded: SPUBLISH of the
 * JSON message on the room's channel, or the main channel for a 20-character room). 0, send's
 * error, -EINVAL (data not convertible), -E2BIG.
 */
int adapter_publish(adapter_t *a, adapter_send_fn send, void *send_arg, const char *room,
                    size_t room_len, const adapter_data_t *data);
/*
 * Hooks for the host. A local room was created (first member) or deleted (last member left):
 * sharded mode SSUBSCRIBEs / SUNSUBSCRIBEs its channel; other modes ignore it. Never fails
 * (a subscription that cannot be sent now is restored on the next reconnect).
 */
void adapter_room_created(adapter_t *a, const char *room, size_t len);
void adapter_room_deleted(adapter_t *a, const char *room, size_t len);
typedef enum adapter_ack {
    ADAPTER_ACK_HOST,      /* not a cluster broadcast's id: the host's own */
    ADAPTER_ACK_FORWARDED, /* sent on to the broadcast's requester */
    ADAPTER_ACK_DROPPED    /* a broadcast's id, but that socket was not sent it, already
                            * answered, or answered too late */
} adapter_ack_t;
/*
 * The socket whose Socket.IO id is `sock_id` (NUL-terminated, borrowed) answered ack `ack_id`
 * with the JSON array `args_json` (borrowed). Each socket a broadcast with acks reached may
 * answer it once; only that is forwarded to the requester.
 */
adapter_ack_t adapter_client_ack(adapter_t *a, const char *sock_id, uint64_t ack_id,
                                 const char *args_json, size_t args_len);
/* Ack ids the adapter hands out are >= this, so a host's own ids below it never collide. */
#define ADAPTER_ACK_ID_BASE 1000000000ull
/*
 * Handles one pub/sub message as if it had been received on `chan` ("pmessage"/"message" in
 * classic and private modes, "smessage" in sharded mode). Exposed for tests; never fails: a
 * malformed message is dropped with a log line.
 */
void adapter_receive(adapter_t *a, const char *chan, size_t chan_len, const uint8_t *msg,
                     size_t msg_len);
/*
 * Broadcasts whose uid is_sibling(uid, len, arg) accepts are dropped on arrival: the other workers
 * of this server hand their stream entries over local IPC (see siblings.h) and still PUBLISH them
 * for other servers, so the pub/sub copy would be a duplicate. Requests are not filtered. NULL
 * (the default): only this adapter's own uid is dropped. The uid of a message laid out as this
 * module writes it is read from its first (classic) or last (sharded) bytes, so this server's
 * own echoes are dropped before any room lookup or decoding.
 */
typedef bool (*adapter_uid_fn)(const char *uid, size_t len, void *arg);
void adapter_set_sibling_filter(adapter_t *a, adapter_uid_fn is_sibling, void *arg);
/*
 * One broadcast subscriber per server. After adapter_set_relay (called before any room exists)
 * the broadcast subscriptions are held only while adapter_relay_subscribe(a, true) says so
 * (worker/cluster/relay_role decides which worker): classic and private modes, every namespace's
 * pattern; sharded mode, the channels of the other namespaces and of every room that any worker
 * of this server holds (the union, fed by adapter_relay_room for each worker's slot, this one's
 * included: adapter_room_created/deleted then do nothing). A broadcast received from Redis that
 * is not this server's own (sharded: on those channels only; the main and uid channels stay
 * every worker's own) is passed to relay(nsp, chan, msg, arg) first (nsp: the index of its
 * namespace; borrowed for the call): it hands it to the siblings and returns true to apply it
 * here too, or false to drop it (another worker relays now). The siblings apply what they are
 * handed with adapter_receive_relayed. Requests are never relayed: every worker keeps its own
 * subscription to them.
 * A handover marker (classic and private modes: adapter_relay_mark; sharded: on a relayed
 * channel, adapter_relay_mark_channel) of this worker or of any other worker of any server goes to
 * marked(nsp, chan, uid, mine, arg) instead (chan: sharded, the channel it came on, else NULL;
 * uid: the publisher's; both borrowed; mine: this adapter's own); the caller tells this server's
 * from the others'. NULL marked: markers are dropped. Private mode opens the connection the
 * markers go out on here. Sharded mode: channel(chan, ev, arg) follows each channel of the holder's
 * subscription (wanted, confirmed, lost, gone; see relay_cut.h), may be NULL.
 */
typedef bool (*adapter_relay_fn)(unsigned nsp, const char *chan, size_t chan_len,
                                 const uint8_t *msg, size_t msg_len, void *arg);
typedef void (*adapter_marker_fn)(unsigned nsp, const char *chan, size_t chan_len, const char *uid,
                                  size_t uid_len, bool mine, void *arg);
typedef void (*adapter_channel_fn)(const char *chan, size_t chan_len, relay_cut_chan_t ev,
                                   void *arg);
void adapter_set_relay(adapter_t *a, adapter_relay_fn relay, adapter_marker_fn marked,
                       adapter_channel_fn channel, void *arg);
void adapter_relay_subscribe(adapter_t *a, bool on);
/*
 * Classic and private modes: publishes a relay handover marker on every namespace, through the
 * broadcast subscription's own channels, so that every worker of this server subscribed to them
 * receives it at the same place among the broadcasts (see worker/cluster/relay_cut.h). It is
 * `PUBLISH <key>#<nsp>#streamio-handover:<uid>#` with the msgpack [uid]: a room no socket is in,
 * which @socket.io/redis-adapter servers drop before decoding. 0, -EINVAL (sharded mode, or
 * closing), or the Redis layer's error (-ENOTCONN...).
 */
int adapter_relay_mark(adapter_t *a);
/*
 * Sharded mode: publishes a relay handover marker on one relayed channel (a room's, another
 * namespace's), on the node that owns it, so that every worker of this server subscribed to it
 * receives it at the same place among that channel's broadcasts. It is `SPUBLISH <chan>
 * {"type":0,"uid":"","nsp":"streamio-handover:<uid>"}`: a namespace no server has, so Node's
 * ClusterAdapter drops it right after its uid check (an empty uid: counted as no server by
 * adapters that count them), and so do other streamio servers. 0, -EINVAL (not sharded, or
 * closing), or the Redis layer's error.
 */
int adapter_relay_mark_channel(adapter_t *a, const char *chan, size_t len);
/* Sharded mode with a relay: the worker in `slot` holds the room (on) or no longer does; a slot
 * whose worker is gone is forgotten. Only the holder's subscriptions follow. */
void adapter_relay_room(adapter_t *a, uint32_t slot, const char *room, size_t len, bool on);
void adapter_relay_forget(adapter_t *a, uint32_t slot);
/* A notice of the worker in `slot` may have been lost: its rooms are in doubt until named again
 * (sweep false); its whole list came: it no longer holds those still in doubt (sweep true). */
void adapter_relay_doubt(adapter_t *a, uint32_t slot, bool sweep);
/* The broadcast subscriptions are wanted and every one is confirmed and still in effect (its
 * pub/sub connection not lost since; the command connection plays no part). */
bool adapter_relay_up(const adapter_t *a);
/* A broadcast relayed by the holder (never filtered by uid again, never relayed on). */
void adapter_receive_relayed(adapter_t *a, const char *chan, size_t chan_len, const uint8_t *msg,
                             size_t msg_len);
/* Both connections up and subscribed (the /health "redisConnected" of this worker). */
bool adapter_connected(const adapter_t *a);
/* The random uid this adapter publishes with (16 characters, NUL-terminated). */
const char *adapter_uid(const adapter_t *a);
/* Unsubscribes and closes; done(arg) runs once closed and the adapter is freed after it. */
void adapter_close(adapter_t *a, void (*done)(void *arg), void *arg);

#endif
