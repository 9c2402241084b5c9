/*
 * attachments: collects the binary attachments of a BINARY_EVENT / BINARY_ACK (protocol.md
 * §2.3): the packet's text is kept until the n binary messages it announced have arrived, in
 * order; a placeholder numbered beyond n, a text packet while attachments are pending, or a
 * binary message nobody announced is a protocol error (the caller closes, as Node does). The
 * attachments' bytes are kept only when someone reads them: otherwise they are counted and
 * dropped, so an unfinished packet holds its text alone, not up to SIO_MAX_ATTACHMENTS messages
 * of the largest size a peer may send. Embed one per socket. No I/O.
 */
#ifndef STREAMIO_WORKER_SIO_ATTACHMENTS_H
#define STREAMIO_WORKER_SIO_ATTACHMENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/proto/sio_packet.h"

typedef struct attachments {
    buf_t packet;  /* the packet text waiting for its attachments */
    buf_t atts;    /* attachments received so far, each as u32 length (host order) + bytes */
    unsigned want; /* attachments still expected */
    unsigned have; /* attachments received */
    bool keep;     /* their bytes go to atts; otherwise only counted */
} attachments_t;

void attachments_init(attachments_t *a);
void attachments_free(attachments_t *a);
/* True while a packet waits for attachments. */
bool attachments_pending(const attachments_t *a);
/* Starts collecting for the binary packet p[0..len) (decoded as pk), keeping the attachments'
 * bytes in atts when keep (else atts stays empty). 0 or -EPROTO. */
int attachments_start(attachments_t *a, const char *p, size_t len, const sio_packet_t *pk,
                      bool keep);
/* Adds one binary message: 0 (more expected), 1 (complete: handle a->packet with a->atts, then
 * attachments_reset), or -EPROTO (none was expected). */
int attachments_add(attachments_t *a, const uint8_t *p, size_t len);
/* Forgets the packet and its attachments (keeps the storage). */
void attachments_reset(attachments_t *a);

#endif
