/*
 * redis_tls: TLS for Redis links with OpenSSL, over memory BIOs so that the transport (libuv
 * TCP in redis_link) stays ours: the caller feeds the bytes it read and sends the bytes it is
 * given. Owns the process's client SSL_CTX (CA file or the system store, optional client
 * certificate for mutual TLS, TLS 1.2 at least, peer verification unless insecure) and one SSL
 * per connection, with SNI and host (or IP) verification against the configured server name.
 * Never touches a socket, never logs, never prints a key.
 *
 * Create the context in the process that uses it (after fork), one per process; sessions borrow
 * it and must be freed before it.
 */
#ifndef STREAMIO_COMMON_REDIS_TLS_H
#define STREAMIO_COMMON_REDIS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/buf.h"

typedef struct redis_tls redis_tls_t;
typedef struct redis_tls_session redis_tls_session_t;

typedef struct redis_tls_opts {
    const char *ca_file;   /* REDIS_TLS_CA_FILE; NULL or "" = the system's default CAs */
    const char *cert_file; /* REDIS_TLS_CERT_FILE + REDIS_TLS_KEY_FILE: both or neither */
    const char *key_file;
    bool insecure; /* REDIS_TLS_INSECURE=true: no certificate or name verification */
} redis_tls_opts_t;

/*
 * Builds the context, loading every file now so that a bad one stops startup. 0, or -EINVAL
 * with one line in err naming the variable (file path shown, never key material), e.g.
 * `streamio: invalid REDIS_TLS_CA_FILE="/x.pem": cannot load CA certificates (no such file)`.
 */
int redis_tls_new(redis_tls_t **out, const redis_tls_opts_t *o, buf_t *err);
/* NULL is a no-op. Every session must be freed first. */
void redis_tls_free(redis_tls_t *t);

/*
 * A client session for one connection. server_name is both the SNI and the name verified in
 * the certificate (an IP address is matched against IP SANs and sends no SNI). Copies
 * server_name. Aborts on out-of-memory.
 */
redis_tls_session_t *redis_tls_session_new(redis_tls_t *t, const char *server_name);
void redis_tls_session_free(redis_tls_session_t *s);

/* Bytes read from the network. Aborts on out-of-memory. */
void redis_tls_session_feed(redis_tls_session_t *s, const char *p, size_t n);
/*
 * Drives the handshake: 0 once it is complete, -EAGAIN while it needs more input (send what
 * redis_tls_session_take gives first), -EPROTO when it failed (see redis_tls_session_error).
 */
int redis_tls_session_handshake(redis_tls_session_t *s);
/*
 * Decrypted bytes into out: the count, -EAGAIN when none are ready, 0 when the peer closed the
 * TLS session, -EPROTO on a TLS error.
 */
ssize_t redis_tls_session_read(redis_tls_session_t *s, char *out, size_t cap);
/* Encrypts n bytes (after the handshake). 0 or -EPROTO. */
int redis_tls_session_write(redis_tls_session_t *s, const char *p, size_t n);
/* Bytes waiting to be sent to the peer. */
size_t redis_tls_session_pending(const redis_tls_session_t *s);
/* Moves up to cap of those bytes into out; returns the count. */
size_t redis_tls_session_take(redis_tls_session_t *s, char *out, size_t cap);
/* Why the last call failed, e.g. "certificate verify failed: unable to get local issuer
 * certificate"; "" when nothing failed. Borrowed, valid until the next call. */
const char *redis_tls_session_error(const redis_tls_session_t *s);

#endif
