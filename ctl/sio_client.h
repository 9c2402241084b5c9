/*
 * sio_client: the Socket.IO v5 / Engine.IO v4 client logic of `streamioctl watch`, without I/O:
 * it is fed the text messages of one WebSocket and answers through callbacks. After the Engine.IO
 * open it connects the main namespace (with the auth token, if any), joins every room with an
 * ack, answers pings, and hands each room:message's payload on, minified to one line. Packets are
 * decoded by worker/sio_packet and JSON walked by common/json, the server's own codecs.
 */
#ifndef STREAMIO_CTL_SIO_CLIENT_H
#define STREAMIO_CTL_SIO_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

typedef struct sio_client_cb {
    /* Sends one Engine.IO text message; 0 or a negative errno (fed back by sio_client_feed). */
    int (*send)(void *arg, const char *msg, size_t len);
    /* One room:message payload, minified JSON (valid UTF-8), borrowed for the call. */
    void (*message)(void *arg, const char *json, size_t len);
    /* A line for a person: joined a room, an `error` event from the server. */
    void (*note)(void *arg, const char *text);
    void *arg;
} sio_client_cb_t;

typedef struct sio_client sio_client_t;

/*
 * rooms[0..n) (n >= 1) and token (NULL: none) are copied. 0, or -EINVAL (no room).
 */
int sio_client_new(sio_client_t **out, const char *const *rooms, size_t n, const char *token,
                   const sio_client_cb_t *cb);
void sio_client_free(sio_client_t *c);

/* A new transport: wait for its Engine.IO open, then connect and join again. */
void sio_client_restart(sio_client_t *c);

/*
 * Handles one Engine.IO text message. 0: go on. -ECONNRESET: the server closed the Engine.IO
 * session (reconnect). -EACCES: refused for good (CONNECT_ERROR, a refused join, a disconnect
 * by the server): the reason is in err. -EPROTO: a message that breaks the protocol (err says
 * which). A send error is returned as it is.
 */
int sio_client_feed(sio_client_t *c, const char *msg, size_t len, buf_t *err);

/* pingInterval + pingTimeout from the open packet (ms): silence longer than this means the
 * connection is dead. 0 before the open packet. */
int sio_client_silence_ms(const sio_client_t *c);

/* Every room's join acknowledged on the current transport. */
bool sio_client_joined(const sio_client_t *c);

#endif
