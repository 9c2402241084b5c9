/*
 * seed_events: the events the seed's Node server handles on "/" (seeds/000), on top of sio:
 * `join-room` (a room id string: checked against its length, the joins bucket, the token's rooms
 * claim and MAX_ROOMS_PER_SOCKET) and `leave-room`, each with an optional ack
 * ({ok:true, roomId} or {ok:false, error}) and the `error` event for a refusal. A sio observer;
 * no state beyond scratch buffers.
 */
#ifndef STREAMIO_WORKER_SIO_SEED_EVENTS_H
#define STREAMIO_WORKER_SIO_SEED_EVENTS_H

#include "worker/sio/sio.h"

typedef struct seed_events seed_events_t;

/* Observes sio (borrowed; free this after sio_free). Never NULL. */
seed_events_t *seed_events_new(sio_t *sio);
/* NULL: no-op. */
void seed_events_free(seed_events_t *e);

#endif
