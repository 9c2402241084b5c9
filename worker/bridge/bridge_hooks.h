/*
 * bridge_hooks: the Socket.IO side of client events, presence and per-user limits. A sio
 * observer that
 * - on the main CONNECT, names the socket's user (the token's `sub` with authentication, else
 *   the CONNECT payload's `user_id`, a string or a number) and counts it with presence; with
 *   MAX_CONNECTIONS_PER_USER the CONNECT waits for the verdict and a refusal is a CONNECT_ERROR
 *   {message:'Too many connections for this user'};
 * - tells presence each join and leave of such a socket, and its end;
 * - hands every client event but the seed's own (join-room, leave-room) to inbound, and answers
 *   its ack with {ok:true, id} or {ok:false, error} once Redis answered; an event sent without
 *   an ack gets the `error` event {message} when it is refused or fails (events outside
 *   SOCKETIO_INBOUND_EVENTS are ignored, as the seed's server ignores events it has no handler
 *   for, and only answered when they ask for an ack);
 * and delivers the presence:join / presence:leave events published on the presence channel to
 * this worker's members of their room (one packet, shared by every recipient).
 */
#ifndef STREAMIO_WORKER_BRIDGE_BRIDGE_HOOKS_H
#define STREAMIO_WORKER_BRIDGE_BRIDGE_HOOKS_H

#include <stddef.h>

#include "worker/bridge/inbound.h"
#include "worker/bridge/presence.h"
#include "worker/fanout/fanout.h"
#include "worker/sio/sio.h"

typedef struct bridge_hooks bridge_hooks_t;

/* Observes sio (borrowed, as fanout, presence and inbound, either of which may be NULL). Frees
 * with bridge_hooks_free after sio_free. -ENOSPC when sio has no observer slot left. */
int bridge_hooks_new(bridge_hooks_t **out, sio_t *sio, fanout_t *fanout, presence_t *presence,
                     inbound_t *inbound);
/* NULL: no-op. */
void bridge_hooks_free(bridge_hooks_t *h);
/* A message of the presence channel (borrowed for the call). */
void bridge_hooks_presence_event(bridge_hooks_t *h, const char *msg, size_t len);

#endif
