/* redis_slot: see redis_slot.h. Bitwise CRC; a table would be faster but this is not hot:
 * keys are hashed once per routed command, never per entry or per recipient. */
#include "common/redis/redis_slot.h"

#include <string.h>

uint16_t redis_crc16(const char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((uint16_t)(unsigned char)p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

unsigned redis_slot(const char *key, size_t len)
{
    if (len == 0)
        return 0;
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        /* "{}" is not a tag: the whole key is hashed (cluster spec, "Hash tags") */
        if (close && close > open + 1)
            return redis_crc16(open + 1, (size_t)(close - open - 1)) & (REDIS_SLOTS - 1);
    }
    return redis_crc16(key, len) & (REDIS_SLOTS - 1);
}
