/* ids: getrandom(2) bytes, 6 bits each, mapped onto the URL-safe base64 alphabet. */
#include "common/ids.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
_Static_assert(sizeof(alphabet) == 64 + 1, "one symbol per 6 random bits");

static int fill(uint8_t *b, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t got = getrandom(b + done, n - done, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        done += (size_t)got;
    }
    return 0;
}

void ids_pool_init(ids_pool_t *p)
{
    memset(p, 0, sizeof(*p));
}

int ids_pool_random(ids_pool_t *p, char *out, size_t n)
{
    if (!p || !out)
        return -EINVAL;
    for (size_t done = 0; done < n;) {
        if (p->left == 0) {
            int rc = fill(p->b, sizeof(p->b));
            if (rc)
                return rc;
            p->left = sizeof(p->b);
        }
        uint8_t *b = p->b + sizeof(p->b) - p->left;
        size_t take = n - done < p->left ? n - done : p->left;
        for (size_t i = 0; i < take; i++)
            out[done++] = alphabet[b[i] & 63];
        memset(b, 0, take); /* an id's bytes do not outlive their use */
        p->left -= take;
    }
    out[n] = '\0';
    return 0;
}

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
