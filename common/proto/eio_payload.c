/* eio_payload: see eio_payload.h. */
#include "common/proto/eio_payload.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

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
    const uint8_t *s = p;
    size_t need = 2 + (len + 2) / 3 * 4;
    buf_reserve(out, need);
    char *d = out->data + out->len;
    if (out->len)
        *d++ = EIO_PAYLOAD_SEP;
    *d++ = 'b';
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *d++ = b64[v >> 18];
        *d++ = b64[(v >> 12) & 63];
        *d++ = b64[(v >> 6) & 63];
        *d++ = b64[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < len ? (uint32_t)s[i + 1] << 8 : 0);
        *d++ = b64[v >> 18];
        *d++ = b64[(v >> 12) & 63];
        *d++ = i + 1 < len ? b64[(v >> 6) & 63] : '=';
        *d++ = '=';
    }
    out->len = (size_t)(d - out->data);
    out->data[out->len] = '\0';
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

static int b64_value(char c)
{
    const char *q = c ? strchr(b64, c) : NULL;
    return q ? (int)(q - b64) : -1;
}

int eio_payload_b64_decode(const char *p, size_t len, buf_t *out)
{
    buf_reset(out);
    while (len && p[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return -EPROTO;
    buf_reserve(out, len / 4 * 3 + 3);
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(p[i]);
        if (v < 0)
            return -EPROTO;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out->data[out->len++] = (char)((acc >> bits) & 0xff);
        }
    }
    out->data[out->len] = '\0';
    return 0;
}
