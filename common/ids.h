/*
 * ids: random identifiers for Engine.IO and Socket.IO session ids (and any other opaque token),
 * drawn from getrandom(2) and spelled in the URL-safe base64 alphabet [A-Za-z0-9_-] that Node
 * uses. Each character carries 6 fresh random bits, so there is no modulo bias. ids_random is
 * stateless: no seeding, no buffering, nothing that a fork could duplicate. A context that makes
 * an id per connection draws from its own ids_pool_t instead, made after the fork like the rest
 * of the context, so that one getrandom(2) serves many ids.
 */
#ifndef STREAMIO_COMMON_IDS_H
#define STREAMIO_COMMON_IDS_H

#include <stddef.h>
#include <stdint.h>

/* Length of Engine.IO and Socket.IO sids; Node's sharded adapter treats 20-char rooms as sids. */
#define IDS_SID_LEN 20

/*
 * Writes n random characters from [A-Za-z0-9_-] to out[0..n) and a NUL at out[n] (out holds
 * n + 1 bytes). May block only before the kernel's entropy pool is first initialised.
 * Returns 0, -EINVAL (out NULL), or getrandom's -errno (out is then unspecified).
 */
int ids_random(char *out, size_t n);

/* A pool refills with one getrandom(2) every 50 or so ids of 18 to 20 characters (a handshake
 * takes one from the Engine.IO pool and one from the Socket.IO pool): a system call is dear on a
 * paravirtualised guest, a KiB per pool and worker is not. */
#define IDS_POOL_BYTES 1024

/* Random bytes kept for one context; embed it and zero it (or ids_pool_init) before use. Never
 * copy one, nor use one made before a fork in the child. */
typedef struct ids_pool {
    uint8_t b[IDS_POOL_BYTES];
    size_t left; /* unused bytes, at the end of b */
} ids_pool_t;

void ids_pool_init(ids_pool_t *p);
/* As ids_random, from p's bytes (refilled by getrandom(2) when they run out); used bytes are
 * wiped. Returns 0, -EINVAL (p or out NULL) or getrandom's -errno. */
int ids_pool_random(ids_pool_t *p, char *out, size_t n);

#endif
