/*
 * health: renders GET /health for the whole server from the shared stats, so the answer is the
 * same whichever worker the request lands on. Keeps the Node server's fields (status, uptime,
 * messagesProcessed, connectedClients, redisConnected) and adds streamio's own.
 */
#ifndef STREAMIO_SHM_HEALTH_H
#define STREAMIO_SHM_HEALTH_H

#include <stdint.h>

#include "common/buf.h"
#include "shm/region.h"

/* Appends the JSON document. `slot` is the answering worker. */
void health_render(buf_t *out, shm_region_t *region, uint32_t slot);

#endif
