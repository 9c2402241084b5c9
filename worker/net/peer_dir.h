/*
 * peer_dir: where the other streamio servers of a deployment can be reached, so a request for a
 * session another server owns can be relayed to it (worker/net/splice). Each server has a short
 * tag (it is in its session ids) and an internal address (STREAMIO_INTERNAL_ADDRESS, an IP
 * literal and port); every worker announces it as `<SOCKETIO_REDIS_KEY>:server:<tag>` with
 * `SET ... PX PEER_DIR_TTL_MS`, again every PEER_DIR_REFRESH_MS, so the key outlives no server by
 * long. Lookups are answered from a small cache (PEER_DIR_CACHE_MS) or with one GET.
 * Only IP literals are accepted from Redis, never a name to resolve. Never logs a lookup.
 */
#ifndef STREAMIO_WORKER_NET_PEER_DIR_H
#define STREAMIO_WORKER_NET_PEER_DIR_H

#include <stddef.h>
#include <sys/socket.h>

#include "common/config.h"
#include "common/redis/redis_topology.h"

#define PEER_DIR_TAG_LEN 4 /* characters of the server id that name the server in session ids */
#define PEER_DIR_TTL_MS 30000
#define PEER_DIR_REFRESH_MS 10000
#define PEER_DIR_CACHE_MS 10000

typedef struct peer_dir peer_dir_t;

/* A lookup's answer: the peer's address, or NULL when it is unknown or Redis failed. */
typedef void (*peer_dir_fn)(const struct sockaddr *addr, void *arg);

/*
 * Announces this server's tag (PEER_DIR_TAG_LEN characters, copied) at cfg's internal address,
 * now and periodically. Borrows topo (which must outlive it) and cfg. Never NULL.
 */
peer_dir_t *peer_dir_new(redis_topology_t *topo, const cfg_t *cfg, const char *tag);
/*
 * Where the server tagged `tag` (PEER_DIR_TAG_LEN characters) listens: 1 with *out filled from
 * the cache (fn not called); 0 when a GET was sent (fn called later, once); -ENOTCONN (Redis is
 * out of reach: fn not called).
 */
int peer_dir_lookup(peer_dir_t *pd, const char *tag, struct sockaddr_storage *out, peer_dir_fn fn,
                    void *arg);
/* Stops announcing and closes; done(arg) once released. The announcement expires by itself. */
void peer_dir_close(peer_dir_t *pd, void (*done)(void *arg), void *arg);

/* Parses an announced "host:port" (an IP literal, IPv6 in brackets) into *out. 0 or -EINVAL. */
int peer_dir_parse(const char *s, size_t len, struct sockaddr_storage *out);

#endif
