/* eio_payload: see eio_payload.h. */
#include "common/proto/eio_payload.h"

#include <errno.h>
#include <string.h>

#include "common/base64.h"

int eio_payload_add_text(buf_t *out, const char *p, size_t len)
{
    if (len && memchr(p, EIO_PAYLOAD_SEP, len))
        return -EINVAL;
    if (out->len)
        buf_putc(out, EIO_PAYLOAD_SEP);
    buf_append(out, p, len);
    return 0;
}

void eio_payload_add_binary(buf_t *out, const void *p, size_t len)
{
    if (out->len)
        buf_putc(out, EIO_PAYLOAD_SEP);
    buf_putc(out, 'b');
    base64_encode(out, p, len);
}

bool eio_payload_next(const char *body, size_t len, size_t *pos, const char **rec, size_t *rlen)
{
    if (*pos > len || (len == 0 && *pos == 0))
        return false;
    const char *start = body + *pos;
    const char *sep = memchr(start, EIO_PAYLOAD_SEP, len - *pos);
    size_t n = sep ? (size_t)(sep - start) : len - *pos;
    *rec = start;
    *rlen = n;
    *pos += n + 1; /* past the end when this was the last record */
    return true;
}

int eio_payload_b64_decode(const char *p, size_t len, buf_t *out)
{
    buf_reset(out);
    return base64_decode(out, p, len);
}
