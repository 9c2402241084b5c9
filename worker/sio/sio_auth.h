/*
 * sio_auth: the authentication side of Socket.IO sockets (AUTH_JWT_*, common/auth): the token of
 * a CONNECT (its payload's `token`, else the handshake's `token` query parameter) verified once,
 * the grant it carries kept for join-room decisions, and a deadline at its expiry (exp plus
 * AUTH_JWT_LEEWAY) that tells the owner to disconnect the socket. The per-socket state is a
 * sio_auth_socket_t embedded in the socket. Without a secret or key it allows everything.
 * One loop only; logs only a key-file error at creation.
 */
#ifndef STREAMIO_WORKER_SIO_SIO_AUTH_H
#define STREAMIO_WORKER_SIO_SIO_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "common/auth.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/proto/http_req.h"
#include "worker/net/deadlineq.h"

typedef struct sio_auth sio_auth_t;

/* One per socket while auth is on (sio_auth_enabled); start it with sio_auth_open. */
typedef struct sio_auth_socket {
    auth_grant_t *grant;    /* rooms the client's token allows (auth on); NULL: none */
    buf_t qtoken;           /* `token` query parameter of the handshake, if any */
    deadline_node_t expiry; /* the token's exp (+ leeway) */
} sio_auth_socket_t;

/* Called when a socket's token expired (its deadline already disarmed). */
typedef void (*sio_auth_expired_fn)(sio_auth_socket_t *as, void *arg);

/*
 * From cfg (borrowed): the verifier (a bad key file: -EINVAL, logged) and the expiry deadlines
 * on loop. 0, -EINVAL, or a libuv error.
 */
int sio_auth_new(sio_auth_t **out, uv_loop_t *loop, const cfg_t *cfg, sio_auth_expired_fn fn,
                 void *arg);
/* NULL: no-op. */
void sio_auth_free(sio_auth_t *a);

/* AUTH_JWT_SECRET is set: sockets need a sio_auth_socket_t (without it, none is ever used). */
bool sio_auth_enabled(const sio_auth_t *a);
/* Starts a socket's state from its handshake request (borrowed for the call). */
void sio_auth_open(const sio_auth_t *a, sio_auth_socket_t *as, const http_req_t *req);
/*
 * Verifies a CONNECT with payload json[0..len) (NULL: none): NULL when allowed (the grant is kept
 * and its expiry armed), else the AUTH_ERR_* reason to send back. Always NULL with auth off.
 */
const char *sio_auth_connect(sio_auth_t *a, sio_auth_socket_t *as, const char *json, size_t len);
/* The grant allows room (true with auth off). */
bool sio_auth_room_allowed(const sio_auth_t *a, const sio_auth_socket_t *as, const char *room,
                           size_t len);
/* The session ended: no expiry any more. */
void sio_auth_stop(sio_auth_t *a, sio_auth_socket_t *as);
/* Releases the socket's state. */
void sio_auth_close(sio_auth_socket_t *as);

#endif
