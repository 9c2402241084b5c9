/*
 * sha1: SHA-1 (FIPS 180-4) of a message held in memory, for the WebSocket accept key
 * (RFC 6455 §4.2.2), where it is a checksum, not a security measure. Our own because OpenSSL 3's
 * digests load its provider machinery on first use: about 2.4 MB of libcrypto paged into every
 * worker at its first handshake, and three allocations per handshake after that.
 */
#ifndef STREAMIO_COMMON_PROTO_SHA1_H
#define STREAMIO_COMMON_PROTO_SHA1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA1_DIGEST_LEN 20

/* Writes the digest of p[0..len) to out: with the CPU's SHA extensions where it has them (x86-64
 * SHA-NI, GCC builds: half the time of the portable rounds), else portably. */
void sha1(const void *p, size_t len, uint8_t out[SHA1_DIGEST_LEN]);
/* The same, always with the portable rounds (tests compare both paths). */
void sha1_generic(const void *p, size_t len, uint8_t out[SHA1_DIGEST_LEN]);
/* sha1 uses the SHA extensions on this CPU. */
bool sha1_accelerated(void);

#endif
