/*
 * ws_frame: server-to-client WebSocket frames (RFC 6455 §5.2) built once, outside wslay, and read
 * back (the polling transport sends their payloads), and the handshake's Sec-WebSocket-Accept
 * value (§4.2.2). A broadcast is framed once into a refbuf and the same bytes go to every
 * recipient: server frames are unmasked, so they never differ.
 * This module never does I/O, never masks, never fragments and keeps no state.
 */
#ifndef STREAMIO_COMMON_PROTO_WS_FRAME_H
#define STREAMIO_COMMON_PROTO_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "common/refbuf.h"

#define WS_FRAME_TEXT 0x1
#define WS_FRAME_BINARY 0x2
#define WS_FRAME_CLOSE 0x8
#define WS_FRAME_PING 0x9
#define WS_FRAME_PONG 0xa
/* OR'ed into a TEXT or BINARY opcode: RSV1, the frame of a permessage-deflate message. */
#define WS_FRAME_RSV1 0x40

/* Longest header ws_frame_header writes (2 + 8-byte extended length). */
#define WS_FRAME_HEADER_MAX 10
/* Length of a Sec-WebSocket-Accept value plus its NUL terminator. */
#define WS_ACCEPT_KEY_SIZE 29

/*
 * Writes the header of a final, unmasked frame (FIN set, RSV1 as `opcode` holds WS_FRAME_RSV1,
 * RSV2 and RSV3 clear) with the low 4 bits of `opcode` and the shortest length encoding RFC 6455
 * allows: 7-bit up to 125, 16-bit up to 65535, 64-bit above. Returns the header length (2, 4 or
 * 10). Validates nothing.
 */
size_t ws_frame_header(uint8_t hdr[WS_FRAME_HEADER_MAX], uint8_t opcode, uint64_t payload_len);

/*
 * Reads back a frame this module built (unmasked) at the start of d[0..len): sets *payload and
 * *plen and returns the header length, or 0 when d does not hold a whole frame. The opcode is
 * d[0] & 0x0f. Checks nothing else.
 */
size_t ws_frame_parse(const uint8_t *d, size_t len, const uint8_t **payload, size_t *plen);

/*
 * Returns a new reference to header + a copy of payload[0..len) in one refbuf (one malloc).
 * NULL only for an opcode other than TEXT/BINARY (either may hold WS_FRAME_RSV1)/CLOSE/PING/PONG
 * or a control frame
 * (CLOSE/PING/PONG) longer than 125 bytes, so never for TEXT and BINARY. Borrows payload (may be
 * NULL when len is 0).
 * TEXT payloads are not checked for UTF-8: the caller must only frame valid UTF-8 as TEXT.
 */
refbuf_t *ws_frame_new(uint8_t opcode, const void *payload, size_t len);

/*
 * Computes base64(SHA-1(client_key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) into out as a
 * NUL-terminated 28-character string. Borrows client_key (need not be NUL-terminated).
 * 0, or -EINVAL if len is 0 or over 256.
 */
int ws_accept_key(const char *client_key, size_t len, char out[WS_ACCEPT_KEY_SIZE]);

#endif
