/*
 * eio_msg: one outgoing Engine.IO message — a text packet and the binary messages that follow it
 * (a Socket.IO packet with its attachments), or binary messages alone — in the form each
 * transport sends: WebSocket frames (one text frame, one binary frame per attachment, back to
 * back in one refbuf that every WebSocket recipient references) and the long-polling payload
 * (the text, then `b`+base64 per attachment, joined by 0x1e). Each form is built the first time
 * a recipient needs it and kept beside the bytes, so no transport ever parses another's form
 * back. Reference-counted, one loop only; it does no I/O.
 */
#ifndef STREAMIO_WORKER_EIO_EIO_MSG_H
#define STREAMIO_WORKER_EIO_EIO_MSG_H

#include <stddef.h>

#include "common/proto/ws_deflate.h"
#include "common/refbuf.h"

typedef struct eio_msg eio_msg_t;

/*
 * Returns a new reference to a message of `text` (NULL: no text packet; otherwise a complete
 * Engine.IO packet such as `42[...]`, valid UTF-8) followed by `natt` binary messages read from
 * atts[0..atts_len) (each a u32 length in host order, then the bytes). Copies everything.
 */
eio_msg_t *eio_msg_new(const char *text, size_t text_len, const void *atts, size_t atts_len,
                       unsigned natt);
/* Takes one more reference; returns m. */
eio_msg_t *eio_msg_ref(eio_msg_t *m);
/* Drops one reference; the last frees the message and its forms. NULL is a no-op. */
void eio_msg_unref(eio_msg_t *m);

/* The text packet (borrowed; NUL-terminated), or NULL when there is none. */
const char *eio_msg_text(const eio_msg_t *m, size_t *len);
/* The WebSocket form (borrowed: take a reference to keep it). */
refbuf_t *eio_msg_frames(eio_msg_t *m);
/*
 * The WebSocket form for permessage-deflate recipients, compressed once with d (shared by every
 * such recipient, so d must be a no-context-takeover stream; see ws_deflate): each message of
 * WS_DEFLATE_THRESHOLD bytes or more compressed into a frame with RSV1, shorter ones as they are.
 * Without any such message it is eio_msg_frames(m). Borrowed likewise.
 */
refbuf_t *eio_msg_frames_deflated(eio_msg_t *m, ws_deflate_t *d);
/* The long-polling form (borrowed), or NULL when the text holds a 0x1e byte and so cannot ride
 * a polling payload. */
refbuf_t *eio_msg_records(eio_msg_t *m);

#endif
