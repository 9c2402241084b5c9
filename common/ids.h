/*
 * ids: random identifiers for Engine.IO and Socket.IO session ids (and any other opaque token),
 * drawn from getrandom(2) and spelled in the URL-safe base64 alphabet [A-Za-z0-9_-] that Node
 * uses. Each character carries 6 fresh random bits, so there is no modulo bias. Stateless: no
 * seeding, no buffering, nothing that a fork could duplicate.
 */
#ifndef STREAMIO_COMMON_IDS_H
#define STREAMIO_COMMON_IDS_H

#include <stddef.h>

/* Length of Engine.IO and Socket.IO sids; Node's sharded adapter treats 20-char rooms as sids. */
#define IDS_SID_LEN 20

/*
 * Writes n random characters from [A-Za-z0-9_-] to out[0..n) and a NUL at out[n] (out holds
 * n + 1 bytes). May block only before the kernel's entropy pool is first initialised.
 * Returns 0, -EINVAL (out NULL), or getrandom's -errno (out is then unspecified).
 */
int ids_random(char *out, size_t n);

#endif
