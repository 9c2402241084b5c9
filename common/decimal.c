/* decimal: see decimal.h. */
#include "common/decimal.h"

size_t decimal_read(const char *p, size_t len, size_t max_digits, uint64_t *out)
{
    size_t n = len < max_digits ? len : max_digits, i = 0;
    uint64_t v = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) /* one more digit would wrap */
            break;
        v = v * 10 + d;
    }
    *out = v;
    return i;
}
