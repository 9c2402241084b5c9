/*
 * redis_slot: the Redis Cluster key slot of a key: CRC16 (XMODEM: poly 0x1021, init 0) of the
 * key, or of its hash tag (the bytes between the first '{' and the next '}', when not empty),
 * modulo 16384. Pure functions, any thread, no allocation; never looks at the cluster itself.
 */
#ifndef STREAMIO_COMMON_REDIS_SLOT_H
#define STREAMIO_COMMON_REDIS_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define REDIS_SLOTS 16384

/* CRC16-XMODEM of n bytes (Redis' crc16.c: crc16("123456789") == 0x31C3). */
uint16_t redis_crc16(const char *p, size_t n);
/* The slot (0..16383) of a binary-safe key; the empty key is slot 0. */
unsigned redis_slot(const char *key, size_t len);

#endif
