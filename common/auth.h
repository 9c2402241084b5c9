/*
 * auth: who may connect and which rooms they may join. It owns the verification key (an HS256
 * secret, or an RS256/ES256 public key read from a PEM file) and turns a client's JWT into an
 * auth_grant_t: the room patterns of its `rooms` claim and its expiry. Signatures are checked by
 * libjwt; the algorithm is pinned by the key (a token whose header names another algorithm is
 * refused, so a public key can never be used as an HMAC secret, and "none" is never accepted);
 * exp is required, nbf, iss and aud are checked here against the caller's clock.
 *
 * It never logs, never does network I/O and never keeps a pointer to a caller's bytes. The reason
 * strings it returns are fixed, say nothing about the key, and are meant for the client's
 * CONNECT_ERROR {message} and the `join-room` error.
 */
#ifndef STREAMIO_COMMON_AUTH_H
#define STREAMIO_COMMON_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/config.h"

typedef struct auth auth_t;
typedef struct auth_grant auth_grant_t;

/* Longest token accepted (a JWT travels in a CONNECT packet or a query string). */
#define AUTH_MAX_TOKEN 8192
/* Most entries of the `rooms` claim, and longest entry (the longest room id is 512 bytes). */
#define AUTH_MAX_ROOM_PATTERNS 256
#define AUTH_MAX_PATTERN 512

/* Reasons, for CONNECT_ERROR {message} and for the `join-room` error. */
#define AUTH_ERR_MISSING "Authentication required"
#define AUTH_ERR_INVALID "Invalid token"
#define AUTH_ERR_EXPIRED "Token expired"
#define AUTH_ERR_NOT_YET "Token not yet valid"
#define AUTH_ERR_ISSUER "Invalid token issuer"
#define AUTH_ERR_AUDIENCE "Invalid token audience"
#define AUTH_ERR_ROOMS "Invalid rooms claim"
#define AUTH_ERR_ROOM_DENIED "Room not allowed"
#define AUTH_ERR_PUBLISH "Invalid publish claim"
/* Longest `sub` kept as the user id (presence, per-user limits, inbound events). */
#define AUTH_MAX_SUBJECT 256

/*
 * Builds the verifier from cfg (AUTH_ENABLED, AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY_FILE,
 * AUTH_JWT_ISSUER, AUTH_JWT_AUDIENCE, AUTH_JWT_LEEWAY; config_load already checked that exactly
 * one key is set). The key file is read and parsed now: an RSA key of 2048 bits or more gives
 * RS256, a P-256 EC key gives ES256. With auth disabled, the result only answers
 * auth_enabled() == false. Call it in the master before fork so a bad key stops startup.
 * Returns 0; -EINVAL with one line in err (`streamio: invalid AUTH_JWT_PUBLIC_KEY_FILE="..."`:
 * unreadable, not PEM, another key type).
 */
int auth_new(auth_t **out, const cfg_t *cfg, buf_t *err);
/* NULL is a no-op. */
void auth_free(auth_t *a);
bool auth_enabled(const auth_t *a);

/*
 * Verifies token[0..len) (borrowed; any bytes) at time now_s (Unix seconds) and on success
 * stores a new grant in *out (the caller frees it with auth_grant_free). The token must be a
 * compact JWS signed with the configured algorithm and key, carry a numeric `exp` later than
 * now_s - leeway, no `nbf` later than now_s + leeway, the configured `iss` (string equality) and
 * `aud` (equal string, or an array holding it) when those are set. The `rooms` claim is a string
 * or an array of strings, each 1..AUTH_MAX_PATTERN bytes, at most AUTH_MAX_ROOM_PATTERNS; when it
 * is absent the grant allows no room. The `publish` claim, when present, has the same shape
 * (AUTH_ERR_PUBLISH otherwise). A `sub` that is a string (or a number, kept as its JSON text) of
 * 1..AUTH_MAX_SUBJECT bytes without NUL is kept as the subject; any other `sub` is ignored. Returns
 * 0; -EACCES with *reason set to one of the AUTH_ERR_* strings; -EINVAL when auth is disabled.
 */
int auth_verify(const auth_t *a, const char *token, size_t len, int64_t now_s, auth_grant_t **out,
                const char **reason);

/* NULL is a no-op. */
void auth_grant_free(auth_grant_t *g);
/* The latest expiry a grant reports (9999-12-31T23:59:59Z): any later exp (1e300, Infinity)
 * means the same, and callers can add a leeway and convert it to milliseconds safely. */
#define AUTH_EXP_MAX 253402300799ll
/* The token's exp (Unix seconds), at most AUTH_EXP_MAX. */
int64_t auth_grant_expires(const auth_grant_t *g);
/* Whether room[0..len) matches one of the grant's `rooms` patterns (common/glob). */
bool auth_grant_allows(const auth_grant_t *g, const char *room, size_t len);
/* The token's `sub` (NUL-terminated, borrowed from g), or NULL. */
const char *auth_grant_subject(const auth_grant_t *g);
/* Whether the token carries a `publish` claim. */
bool auth_grant_gates_publish(const auth_grant_t *g);
/* Whether name[0..len) (an event name or a room) may be published: true without a `publish`
 * claim, else when it matches one of its patterns. False for a NULL grant. */
bool auth_grant_may_publish(const auth_grant_t *g, const char *name, size_t len);

/*
 * The join-room decision in one call: true when auth is disabled, else auth_grant_allows (a NULL
 * grant allows nothing). Borrows everything.
 */
bool auth_room_allowed(const auth_t *a, const auth_grant_t *g, const char *room, size_t len);

/*
 * Extracts the token a socket.io-client sends with `auth: {token}`: json[0..len) is the CONNECT
 * packet's payload (may be NULL/0 when absent); the value of its top-level "token" member, a JSON
 * string, is decoded into out (reset first). Returns 0; -ENOENT when there is no payload, it is
 * not an object, or it has no string "token"; -E2BIG over AUTH_MAX_TOKEN bytes.
 * (A token in the query string is read with http_req_query(r, "token", out).)
 */
int auth_token_from_connect(const char *json, size_t len, buf_t *out);

#endif
