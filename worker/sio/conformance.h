/*
 * conformance: the handlers the official socket.io conformance suite expects (protocol.md §7.1,
 * STREAMIO_CONFORMANCE=1): right after a namespace connects, the `auth` event with its CONNECT
 * payload — sent AUTH_EMIT_DELAY_MS later, in a write of its own, since the suite's client loses a
 * frame that shares a TCP read with the CONNECT reply (§7.4) — and on any namespace `message`
 * answered with `message-back`, `message-with-ack` with its ack, both with the same arguments and
 * attachments. A sio observer with a timer queue.
 */
#ifndef STREAMIO_WORKER_SIO_CONFORMANCE_H
#define STREAMIO_WORKER_SIO_CONFORMANCE_H

#include <uv.h>

#include "worker/sio/sio.h"

#define AUTH_EMIT_DELAY_MS 20

typedef struct conformance conformance_t;

/* Observes sio (borrowed). 0, or the libuv error of its timer. */
int conformance_new(conformance_t **out, uv_loop_t *loop, sio_t *sio);
/* After sio_free (the sockets' slots are released by then). NULL: no-op. */
void conformance_free(conformance_t *c);

#endif
