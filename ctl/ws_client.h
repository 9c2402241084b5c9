/*
 * ws_client: the client side of a WebSocket (RFC 6455) over one blocking TCP socket, for the
 * command-line tools: the URL of a server, the HTTP upgrade and its answer, masked frames out,
 * unmasked server frames in (parsed by worker/ws_frame, the same code that writes them). Pings
 * are answered here; a server close ends the connection. Plain ws/http only (no TLS), no
 * extensions, no fragmented server messages. Errors come back with a line of text in `err`.
 */
#ifndef STREAMIO_CTL_WS_CLIENT_H
#define STREAMIO_CTL_WS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Largest server message accepted (streamio's SOCKETIO_MAX_HTTP_BUFFER_SIZE tops out lower). */
#define WS_CLIENT_MAX_MESSAGE (64u << 20)

typedef struct ws_url {
    char host[256]; /* without the brackets of an IPv6 literal */
    char port[6];
    char path[512]; /* "" for the root, else "/prefix" without a trailing '/' */
} ws_url_t;

/*
 * Parses http://host[:port][/path] (ws:// is the same; the port defaults to 80). 0, or -EINVAL
 * with the reason in err (https/wss: TLS is not supported; a missing host; a bad port).
 */
int ws_url_parse(const char *url, ws_url_t *out, buf_t *err);

/*
 * Writes one masked client frame (FIN set) of `opcode` with payload[0..len) and masking key
 * `mask` into out (appended).
 */
void ws_client_frame(buf_t *out, uint8_t opcode, const void *payload, size_t len,
                     const uint8_t mask[4]);

/*
 * Checks a server's answer to the upgrade whose Sec-WebSocket-Key was `key`: `resp` holds the
 * whole head (up to the blank line). 0; -EPROTO with the status line and a hint in err (a
 * refusal such as 403 Origin not allowed, 400 Transport unknown, 503 a connection limit).
 */
int ws_client_check_upgrade(const char *resp, size_t len, const char *key, buf_t *err);

typedef struct ws_client ws_client_t;

/*
 * Connects to u and upgrades `target` (path and query, e.g. "/socket.io/?EIO=4&..."), within
 * timeout_ms for each step. 0 and *out (free with ws_client_free); -ECONNREFUSED and friends
 * (nobody listens), -ETIMEDOUT, -EPROTO (not a WebSocket answer), each with err filled.
 */
int ws_client_open(ws_client_t **out, const ws_url_t *u, const char *target, int timeout_ms,
                   buf_t *err);

/* Sends one text message, masked. 0 or a negative errno (the connection is then unusable). */
int ws_client_send_text(ws_client_t *c, const char *p, size_t len);

/*
 * Waits up to timeout_ms for the next text message. 0: *msg and *len borrow it until the next call;
 * -ETIMEDOUT: nothing arrived; -ECONNRESET: closed by the server (err tells the close code);
 * -EPROTO: a frame this client does not accept. Binary messages are skipped.
 */
int ws_client_recv(ws_client_t *c, int timeout_ms, const char **msg, size_t *len, buf_t *err);

/* Closes the socket (sending a close frame first, best effort). NULL is a no-op. */
void ws_client_free(ws_client_t *c);

#endif
