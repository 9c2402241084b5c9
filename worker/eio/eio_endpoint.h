/*
 * eio_endpoint: the HTTP side of Engine.IO in a worker. Its routes (one per application path:
 * "/socket.io/", and "/engine.io/" for the conformance echo) check each request as Node does
 * (protocol.md §1.2, §1.8: EIO, transport, sid, method, Origin, CORS preflight), hand a request
 * for another worker's sid to that worker (handoff: long-polling without sticky sessions) and
 * adopt the ones handed to it, relay one for another server's sid to that server (worker/net
 * splice: a load balancer without sticky sessions in front of several servers), admit and open
 * sessions, and pass polling GETs/POSTs and upgrade probes to eio_session. It is also the
 * production eio_transport_t: answers through worker/http (CORS, gzip), WebSockets through
 * worker/ws. Logs only sampled handoff failures and sampled cross-origin refusals (which origin,
 * which setting: a browser only says "xhr poll error").
 */
#ifndef STREAMIO_WORKER_EIO_EIO_ENDPOINT_H
#define STREAMIO_WORKER_EIO_EIO_ENDPOINT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "shm/local_sock.h"
#include "shm/region.h"
#include "shm/stats.h"
#include "worker/eio/eio_session.h"
#include "worker/http/cors.h"
#include "worker/http/http_server.h"
#include "worker/http/router.h"
#include "worker/net/peer_dir.h"

typedef struct eio_endpoint eio_endpoint_t;

typedef struct eio_endpoint_config {
    eio_config_t sessions;
    bool polling, websocket;   /* transports served (SOCKETIO_TRANSPORTS) */
    const cors_t *cors;        /* SOCKETIO_CORS_ORIGINS (borrowed, as long as the endpoint) */
    int workers;               /* CLUSTER_WORKERS: more than 1 hands requests over */
    const local_sock_t *socks; /* the workers' handoff channels (borrowed) */
    shm_region_t *region;      /* the live workers (borrowed) */
} eio_endpoint_config_t;

/*
 * Creates the endpoint and its sessions on `loop`, answering through hs (borrowed; it must
 * outlive the endpoint). stats borrowed. 0, the error of libuv setting up the timers, or (with
 * more than one worker) handoff_new's: a worker that cannot receive the requests the others
 * hand it must not run.
 */
int eio_endpoint_new(eio_endpoint_t **out, uv_loop_t *loop, const eio_endpoint_config_t *cfg,
                     http_server_t *hs, stats_worker_t *stats);
/* Serves application h (borrowed, as long as the endpoint) at path (a prefix ending in '/'). */
void eio_endpoint_serve(eio_endpoint_t *ep, router_t *r, const char *path, const eio_handlers_t *h);
/*
 * From now on a request whose sid carries another server's tag (eio_config_t.tag) is relayed to
 * that server, found in pd (borrowed: it must stay open while the endpoint serves; close it
 * before eio_endpoint_free, or pass NULL first: relaying stops). A server not found is looked up
 * again for about a second (it may not have announced itself yet); one that cannot be found or
 * reached then answers the client as Node does for a sid it does not know (400, code 1): the
 * client reconnects.
 */
void eio_endpoint_relay(eio_endpoint_t *ep, peer_dir_t *pd);
/* The sessions (for shutdown). */
eio_t *eio_endpoint_sessions(eio_endpoint_t *ep);
/* Stops handing over and frees the endpoint and its sessions (see eio_free). NULL: no-op. */
void eio_endpoint_free(eio_endpoint_t *ep);

#endif
