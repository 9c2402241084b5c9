/* decimal: see decimal.h. */
#include "common/decimal.h"

size_t decimal_read(const char *p, size_t len, size_t max_digits, uint64_t *out)
{
    size_t n = len < max_digits ? len : max_digits, i = 0;
    uint64_t v = 0;
    /* v * 10 + d wraps past these (no division per digit: stream ids are read several times
     * per entry) */
    const uint64_t top = UINT64_MAX / 10, top_digit = UINT64_MAX % 10;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > top || (v == top && d > top_digit)) /* one more digit would wrap */
            break;
        v = v * 10 + d;
    }
    *out = v;
    return i;
}
