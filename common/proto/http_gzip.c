/* http_gzip: see http_gzip.h. */
#include "common/proto/http_gzip.h"

#include "common/xalloc.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

bool http_gzip_accepted(const char *ae)
{
    for (const char *p = ae; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        size_t name = strcspn(p, " \t;,");
        if ((name == 4 && strncasecmp(p, "gzip", 4) == 0) || (name == 1 && p[0] == '*')) {
            const char *q = memchr(p, 'q', n);
            /* "q=0", "q=0.0", "q=0.000" refuse it */
            if (!q || q[1] != '=' || strspn(q + 2, "0.") < strcspn(q + 2, ", \t"))
                return true;
        }
        p += n;
    }
    return false;
}

int http_gzip_compress(buf_t *out, const void *p, size_t len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    /* 15 + 16: a gzip header and trailer around the deflate stream */
    /* fixed, valid parameters: only its allocation can fail */
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        xalloc_die(sizeof z);
    uLong bound = deflateBound(&z, (uLong)len);
    buf_reset(out);
    buf_reserve(out, bound);
    z.next_in = (Bytef *)p;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out->data;
    z.avail_out = (uInt)bound;
    int rc = deflate(&z, Z_FINISH);
    out->len = z.total_out;
    out->data[out->len] = '\0';
    deflateEnd(&z);
    return rc == Z_STREAM_END ? 0 : -EIO;
}
