/* ids: getrandom(2) bytes, 6 bits each, mapped onto the URL-safe base64 alphabet. */
#include "common/ids.h"

#include <errno.h>
#include <sys/random.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
_Static_assert(sizeof(alphabet) == 64 + 1, "one symbol per 6 random bits");

int ids_random(char *out, size_t n)
{
    if (!out)
        return -EINVAL;
    unsigned char rnd[64];
    size_t done = 0;
    while (done < n) {
        size_t want = n - done < sizeof(rnd) ? n - done : sizeof(rnd);
        ssize_t got = getrandom(rnd, want, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        for (ssize_t i = 0; i < got; i++)
            out[done++] = alphabet[rnd[i] & 63];
    }
    out[n] = '\0';
    return 0;
}
