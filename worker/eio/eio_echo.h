/*
 * eio_echo: the raw Engine.IO application the engine.io conformance suite expects at
 * /engine.io/ (protocol.md §7.1, STREAMIO_CONFORMANCE=1): every message goes back unchanged,
 * text as text, binary as binary. No state beyond one scratch buffer.
 */
#ifndef STREAMIO_WORKER_EIO_EIO_ECHO_H
#define STREAMIO_WORKER_EIO_EIO_ECHO_H

#include "worker/eio/eio_session.h"

typedef struct eio_echo eio_echo_t;

/* Never NULL. */
eio_echo_t *eio_echo_new(void);
/* Its handler table (valid until eio_echo_free). */
const eio_handlers_t *eio_echo_handlers(const eio_echo_t *x);
/* After its sessions are gone. NULL: no-op. */
void eio_echo_free(eio_echo_t *x);

#endif
