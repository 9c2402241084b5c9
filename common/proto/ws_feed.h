/*
 * ws_feed: the byte plumbing between a wslay event context and a caller that already holds the
 * bytes (worker/ws/ws_conn.c, which reads them itself, and the WebSocket fuzzer). Reads hand wslay
 * a borrowed window of input, then WOULDBLOCK once it is used up; writes append wslay's output to a
 * buf_t and take everything, so wslay never holds a half-sent frame. The callers' wslay callbacks
 * are one-line wrappers around these.
 *
 * A wslay context costs about 8.8 KiB (two 4 KiB buffers) while an idle Socket.IO client sends a
 * few bytes a minute, so callers hold one only while a message is in flight: the feed follows
 * the frame grammar (RFC 6455 §5.2) over every byte it hands to wslay, and ws_feed_at_rest tells
 * when the context holds nothing worth keeping and may be freed, to be created afresh on the next
 * bytes. wslay still enforces every rule; the scan only finds the frame boundaries.
 */
#ifndef STREAMIO_COMMON_PROTO_WS_FEED_H
#define STREAMIO_COMMON_PROTO_WS_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <wslay/wslay.h>

#include "common/buf.h"

/* Where the bytes handed to wslay so far stand in the frame grammar; zeroed = between messages. */
typedef struct ws_scan {
    uint64_t n;      /* payload bytes still to come, or the extended length being read */
    uint8_t part;    /* which part of a frame comes next (ws_feed.c) */
    uint8_t need;    /* bytes left of the extended length or of the mask key */
    uint8_t b0;      /* the frame's first byte: FIN and opcode */
    bool masked;     /* the frame has a mask key */
    bool fragmented; /* a data message began with FIN clear and has not ended */
} ws_scan_t;

/* Input wslay may read: borrowed, valid only while wslay_event_recv runs. Zero-initialise it
 * once per connection; ws_feed_window sets the bytes of one read. */
typedef struct ws_feed {
    const char *p;
    size_t len;
    ws_scan_t scan; /* persists across reads and across wslay contexts */
} ws_feed_t;

/* Offers p[0..len) (borrowed) to the next wslay_event_recv; (NULL, 0) withdraws what is left. */
void ws_feed_window(ws_feed_t *f, const char *p, size_t len);

/* For a wslay recv_callback: copies up to len bytes from f (advancing it and the scan); when f
 * is empty, sets WSLAY_ERR_WOULDBLOCK and returns -1. */
ssize_t ws_feed_read(wslay_event_context_ptr ws, ws_feed_t *f, uint8_t *buf, size_t len);
/* For a wslay send_callback: appends data to out and returns len (it takes everything). */
ssize_t ws_feed_write(wslay_event_context_ptr ws, buf_t *out, const uint8_t *data, size_t len);

/*
 * Creates a server context with the given callbacks and maximum message length (wslay answers a
 * longer one with Close 1009). Never NULL.
 */
wslay_event_context_ptr ws_feed_context_new(const struct wslay_event_callbacks *cb, void *ud,
                                            uint64_t max_msg);

/*
 * True when ws, after a wslay_event_recv that returned 0 with f's window used up, holds nothing a
 * fresh context would lack: every byte read ends a whole frame and no fragmented message is
 * open (so every complete message was delivered), nothing is queued for output, and neither
 * side has sent a Close. Freeing it then and creating a new one for the next bytes is invisible
 * to the peer.
 */
bool ws_feed_at_rest(const ws_feed_t *f, wslay_event_context_ptr ws);

/* Longest payload ws_feed_small takes: the 7-bit length form. */
#define WS_FEED_SMALL_MAX 125

/*
 * The common message without a wslay context (a handshake's `40` and join, a heartbeat's `3`):
 * with no context held and f between messages, a frame at the front of p[0..len) that is whole,
 * final, masked, TEXT or BINARY, without RSV bits, at most WS_FEED_SMALL_MAX and max_msg bytes long
 * and, for TEXT, valid UTF-8 is a message wslay would deliver as it is, and nothing else. Unmasks
 * its payload into out[0..*plen), sets *opcode (WSLAY_TEXT_FRAME or WSLAY_BINARY_FRAME) and
 * returns the frame's length; 0 for anything else (a partial frame, a control frame, a longer one,
 * a protocol error), which the caller hands to a wslay context from that byte on.
 */
size_t ws_feed_small(const ws_feed_t *f, const char *p, size_t len, uint64_t max_msg,
                     uint8_t out[WS_FEED_SMALL_MAX], size_t *plen, uint8_t *opcode);

#endif
