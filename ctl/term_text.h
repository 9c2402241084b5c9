/*
 * term_text: what a server says, made safe for the operator's terminal. streamioctl quotes a
 * server's words in its messages (a refusal, a close reason, an error event); a hostile server
 * must not reach the terminal with escape sequences through them, so control bytes are shown as
 * \xNN and everything else is kept as it is.
 */
#ifndef STREAMIO_CTL_TERM_TEXT_H
#define STREAMIO_CTL_TERM_TEXT_H

#include <stddef.h>

#include "common/buf.h"

/* Appends the n bytes at p (borrowed; p may be NULL when n is 0) to b, each byte below 0x20 and
 * 0x7f as \xNN. Aborts on out-of-memory, as buf does. */
void term_text_put(buf_t *b, const char *p, size_t n);

#endif
