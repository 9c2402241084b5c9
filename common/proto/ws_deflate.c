/* ws_deflate: see ws_deflate.h. */
#include "common/proto/ws_deflate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "common/xalloc.h"

#define WINDOW_BITS 15
#define INFLATE_CHUNK 16384

struct ws_deflate {
    z_stream def;
    z_stream inf;
};

/* ---- the offer ---- */

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static size_t skip_ows(const char *p, size_t i, size_t n)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    return i;
}

/* A parameter's value, a token or a quoted-string (whose quotes the value does not include). */
typedef struct span {
    const char *p;
    size_t len;
} span_t;

/* Window bits 8..15 with no leading zeros, as RFC 7692 §7.1.2 writes them. */
static bool window_bits(const span_t *v, int *bits)
{
    if (v->len == 1 && v->p[0] >= '8' && v->p[0] <= '9') {
        *bits = v->p[0] - '0';
        return true;
    }
    if (v->len == 2 && v->p[0] == '1' && v->p[1] >= '0' && v->p[1] <= '5') {
        *bits = 10 + v->p[1] - '0';
        return true;
    }
    return false;
}

enum { P_SERVER_NCT = 1, P_CLIENT_NCT = 2, P_SERVER_BITS = 4, P_CLIENT_BITS = 8 };

/* One parameter of a permessage-deflate offer; false makes the whole offer invalid. */
static bool offer_param(const span_t *name, bool has_value, const span_t *value, unsigned *seen,
                        bool *acceptable)
{
    unsigned bit;
    int bits = 0;
    if (name->len == 26 && strncasecmp(name->p, "server_no_context_takeover", 26) == 0) {
        bit = P_SERVER_NCT;
        if (has_value)
            return false;
    } else if (name->len == 26 && strncasecmp(name->p, "client_no_context_takeover", 26) == 0) {
        bit = P_CLIENT_NCT;
        if (has_value)
            return false;
    } else if (name->len == 22 && strncasecmp(name->p, "server_max_window_bits", 22) == 0) {
        bit = P_SERVER_BITS;
        if (!has_value || !window_bits(value, &bits))
            return false;
        if (bits < WINDOW_BITS)
            *acceptable = false; /* valid, but every recipient shares one compressed frame */
    } else if (name->len == 22 && strncasecmp(name->p, "client_max_window_bits", 22) == 0) {
        bit = P_CLIENT_BITS;
        if (has_value && !window_bits(value, &bits))
            return false;
    } else {
        return false;
    }
    if (*seen & bit)
        return false;
    *seen |= bit;
    return true;
}

/*
 * Parses the extension starting at p[*i] up to the next top-level comma (consumed). True when it
 * is a valid permessage-deflate offer this server accepts.
 */
static bool one_extension(const char *p, size_t n, size_t *i)
{
    size_t k = skip_ows(p, *i, n), start = k;
    while (k < n && is_tchar(p[k]))
        k++;
    bool ok = k > start;
    bool deflate = k - start == 18 && strncasecmp(p + start, "permessage-deflate", 18) == 0;
    bool acceptable = true;
    unsigned seen = 0;
    k = skip_ows(p, k, n);
    while (ok && k < n && p[k] == ';') {
        k = skip_ows(p, k + 1, n);
        span_t name = {p + k, 0}, value = {NULL, 0};
        while (k < n && is_tchar(p[k]))
            k++;
        name.len = (size_t)(p + k - name.p);
        k = skip_ows(p, k, n);
        bool has_value = k < n && p[k] == '=';
        if (has_value) {
            k = skip_ows(p, k + 1, n);
            if (k < n && p[k] == '"') { /* quoted-string: no escapes in a valid value */
                value.p = p + ++k;
                while (k < n && p[k] != '"' && p[k] != '\\')
                    k++;
                ok = k < n && p[k] == '"';
                value.len = (size_t)(p + k - value.p);
                k++;
            } else {
                value.p = p + k;
                while (k < n && is_tchar(p[k]))
                    k++;
                value.len = (size_t)(p + k - value.p);
            }
            ok = ok && value.len > 0;
        }
        ok = ok && name.len > 0;
        if (ok && deflate)
            ok = offer_param(&name, has_value, &value, &seen, &acceptable);
        k = skip_ows(p, k, n);
    }
    ok = ok && (k == n || p[k] == ',');
    /* resynchronise on the next comma outside a quoted string */
    for (bool quoted = false; k < n && (quoted || p[k] != ','); k++)
        if (p[k] == '"')
            quoted = !quoted;
    *i = k < n ? k + 1 : n;
    return ok && deflate && acceptable;
}

bool ws_deflate_accept(const char *value, size_t len)
{
    for (size_t i = 0; i < len;)
        if (one_extension(value, len, &i))
            return true;
    return false;
}

/* ---- the codecs ---- */

ws_deflate_t *ws_deflate_new(void)
{
    ws_deflate_t *d = xcalloc(1, sizeof(*d));
    /* raw deflate (negative window bits), zlib's default level and memory, as Node's ws */
    if (deflateInit2(&d->def, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -WINDOW_BITS, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK ||
        inflateInit2(&d->inf, -WINDOW_BITS) != Z_OK)
        xalloc_die(sizeof(*d)); /* fixed, valid parameters: only the allocation can fail */
    return d;
}

void ws_deflate_free(ws_deflate_t *d)
{
    if (!d)
        return;
    deflateEnd(&d->def);
    inflateEnd(&d->inf);
    free(d);
}

void ws_deflate_compress(ws_deflate_t *d, const void *in, size_t len, buf_t *out)
{
    /* a sync flush ends the output on a byte boundary with an empty stored block, 00 00 ff ff,
     * which RFC 7692 §7.2.1 has the sender remove; +16 covers it and the flush marker */
    uLong bound = deflateBound(&d->def, (uLong)len) + 16;
    buf_reserve(out, bound);
    d->def.next_in = (Bytef *)in;
    d->def.avail_in = (uInt)len;
    d->def.next_out = (Bytef *)out->data + out->len;
    d->def.avail_out = (uInt)bound;
    (void)deflate(&d->def, Z_SYNC_FLUSH); /* enough room: it consumes everything */
    size_t n = bound - d->def.avail_out;
    if (n >= 4 && memcmp(out->data + out->len + n - 4, "\x00\x00\xff\xff", 4) == 0)
        n -= 4;
    out->len += n;
    out->data[out->len] = '\0';
    deflateReset(&d->def); /* server_no_context_takeover */
}

int ws_deflate_inflate(ws_deflate_t *d, const void *in, size_t len, size_t max, buf_t *out)
{
    static const Bytef tail[4] = {0x00, 0x00, 0xff, 0xff};
    size_t produced = 0;
    int rc = 0;
    bool ended = false;
    /* the payload, then the 4 bytes the sender removed (RFC 7692 §7.2.2) */
    for (int part = 0; part < 2 && rc == 0 && !ended; part++) {
        d->inf.next_in = part ? (Bytef *)tail : (Bytef *)in;
        d->inf.avail_in = part ? (uInt)sizeof(tail) : (uInt)len;
        while (d->inf.avail_in > 0 && rc == 0 && !ended) {
            /* at most one byte past max is ever written: enough to know it is too much */
            size_t room = max - produced < INFLATE_CHUNK ? max - produced + 1 : INFLATE_CHUNK;
            buf_reserve(out, room);
            uInt before = d->inf.avail_in;
            d->inf.next_out = (Bytef *)out->data + out->len;
            d->inf.avail_out = (uInt)room;
            int z = inflate(&d->inf, Z_SYNC_FLUSH);
            size_t n = room - d->inf.avail_out;
            out->len += n;
            produced += n;
            if (produced > max)
                rc = -EMSGSIZE;
            else if (z == Z_STREAM_END)
                ended = true; /* a final block ends the message: what follows is ignored */
            else if ((z != Z_OK && z != Z_BUF_ERROR) || (n == 0 && d->inf.avail_in == before))
                rc = -EINVAL; /* corrupt, or no progress with room on both sides */
        }
    }
    if (out->data)
        out->data[out->len] = '\0';
    inflateReset(&d->inf); /* client_no_context_takeover */
    return rc;
}
