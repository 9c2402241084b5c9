/*
 * ws_feed: the byte plumbing between a wslay event context and a caller that already holds the
 * bytes (conn.c, which reads them itself, and the WebSocket fuzzer). Reads hand wslay a borrowed
 * window of input, then WOULDBLOCK once it is used up; writes append wslay's output to a buf_t
 * and take everything, so wslay never holds a half-sent frame. The callers' wslay callbacks are
 * one-line wrappers around these.
 */
#ifndef STREAMIO_WORKER_WS_FEED_H
#define STREAMIO_WORKER_WS_FEED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <wslay/wslay.h>

#include "common/buf.h"

/* Input wslay may read: borrowed, valid only while wslay_event_recv runs. */
typedef struct ws_feed {
    const char *p;
    size_t len;
} ws_feed_t;

/* For a wslay recv_callback: copies up to len bytes from f (advancing it); when f is empty, sets
 * WSLAY_ERR_WOULDBLOCK and returns -1. */
ssize_t ws_feed_read(wslay_event_context_ptr ws, ws_feed_t *f, uint8_t *buf, size_t len);
/* For a wslay send_callback: appends data to out; on -ENOMEM sets WSLAY_ERR_CALLBACK_FAILURE and
 * returns -1, otherwise returns len. */
ssize_t ws_feed_write(wslay_event_context_ptr ws, buf_t *out, const uint8_t *data, size_t len);

#endif
