/* mpack: notepack.io-compatible MessagePack writer, bounded reader and JSON converters. */
#include "common/mpack.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/xalloc.h"

/* ------------------------------------------------------------------ writer */

/* tag followed by the low n bytes of v, big-endian, written in place (a classic adapter writes
 * a dozen headers per entry). */
static void put_be(buf_t *out, uint8_t tag, uint64_t v, int n)
{
    buf_reserve(out, (size_t)n + 1);
    uint8_t *b = (uint8_t *)out->data + out->len;
    b[0] = tag;
    for (int i = 0; i < n; i++)
        b[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    out->len += (size_t)n + 1;
    out->data[out->len] = '\0';
}

void mpack_write_nil(buf_t *out)
{
    buf_putc(out, (char)0xc0);
}

void mpack_write_bool(buf_t *out, bool v)
{
    buf_putc(out, (char)(v ? 0xc3 : 0xc2));
}

void mpack_write_uint(buf_t *out, uint64_t v)
{
    if (v < 0x80)
        buf_putc(out, (char)v);
    else if (v < 0x100)
        put_be(out, 0xcc, v, 1);
    else if (v < 0x10000)
        put_be(out, 0xcd, v, 2);
    else if (v < 0x100000000)
        put_be(out, 0xce, v, 4);
    else
        put_be(out, 0xcf, v, 8);
}

void mpack_write_int(buf_t *out, int64_t v)
{
    if (v >= 0)
        mpack_write_uint(out, (uint64_t)v);
    else if (v >= -0x20)
        buf_putc(out, (char)(uint8_t)v);
    else if (v >= -0x80)
        put_be(out, 0xd0, (uint64_t)v, 1);
    else if (v >= -0x8000)
        put_be(out, 0xd1, (uint64_t)v, 2);
    else if (v >= -0x80000000LL)
        put_be(out, 0xd2, (uint64_t)v, 4);
    else
        put_be(out, 0xd3, (uint64_t)v, 8);
}

void mpack_write_double(buf_t *out, double v)
{
    if (isfinite(v) && v == floor(v)) {
        if (v >= 0 && v < 18446744073709551616.0) {
            mpack_write_uint(out, (uint64_t)v);
            return;
        }
        if (v < 0 && v >= -9223372036854775808.0) {
            mpack_write_int(out, (int64_t)v);
            return;
        }
    }
    uint64_t bits = 0x7ff8000000000000ULL;
    if (!isnan(v))
        memcpy(&bits, &v, sizeof bits);
    put_be(out, 0xcb, bits, 8);
}

/* The caller checked len <= UINT32_MAX. */
static void put_len(buf_t *out, size_t len, uint8_t fix, uint8_t fixmax, uint8_t t8, uint8_t t16,
                    uint8_t t32)
{
    if (fix && len <= fixmax)
        buf_putc(out, (char)(fix | len));
    else if (t8 && len < 0x100)
        put_be(out, t8, len, 1);
    else if (len < 0x10000)
        put_be(out, t16, len, 2);
    else
        put_be(out, t32, len, 4);
}

static void put_str_header(buf_t *out, size_t len)
{
    put_len(out, len, 0xa0, 0x1f, 0xd9, 0xda, 0xdb);
}

int mpack_write_str(buf_t *out, const char *s, size_t len)
{
    if (len > UINT32_MAX)
        return -E2BIG;
    buf_reserve(out, len + 5);
    if (len <= 0x1f) /* fixstr, the common case: header and bytes in place */
        out->data[out->len++] = (char)(0xa0 | len);
    else
        put_str_header(out, len);
    memcpy(out->data + out->len, s, len);
    out->len += len;
    out->data[out->len] = '\0';
    return 0;
}

int mpack_write_str_utf8(buf_t *out, const char *s, size_t len)
{
    size_t n = json_utf8_len(s, len);
    if (n == len)
        return mpack_write_str(out, s, len);
    if (n > UINT32_MAX)
        return -E2BIG;
    buf_reserve(out, n + 5);
    put_str_header(out, n);
    json_write_utf8(out, s, len);
    return 0;
}

int mpack_write_bin(buf_t *out, const void *p, size_t len)
{
    if (len > UINT32_MAX)
        return -E2BIG;
    buf_reserve(out, len + 5);
    put_len(out, len, 0, 0, 0xc4, 0xc5, 0xc6);
    buf_append(out, p, len);
    return 0;
}

void mpack_write_array(buf_t *out, uint32_t n)
{
    put_len(out, n, 0x90, 0x0f, 0, 0xdc, 0xdd);
}

void mpack_write_map(buf_t *out, uint32_t n)
{
    put_len(out, n, 0x80, 0x0f, 0, 0xde, 0xdf);
}

/* ------------------------------------------------------------------ reader */

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Sets a signed value: negative as INT, otherwise UINT. */
static void set_int(mpack_item_t *it, int64_t v)
{
    if (v < 0) {
        it->type = MPACK_INT;
        it->i = v;
    } else {
        it->type = MPACK_UINT;
        it->u = (uint64_t)v;
    }
}

/* Size of the length field (and ext type byte) after tag c for str/bin/ext/array/map, else -1. */
static int var_header(uint8_t c, mpack_type_t *type, int *lenbytes, int *fixlen)
{
    static const struct {
        uint8_t tag;
        mpack_type_t type;
        int lenbytes, fixlen;
    } t[] = {
        {0xc4, MPACK_BIN, 1, -1},   {0xc5, MPACK_BIN, 2, -1}, {0xc6, MPACK_BIN, 4, -1},
        {0xc7, MPACK_EXT, 1, -1},   {0xc8, MPACK_EXT, 2, -1}, {0xc9, MPACK_EXT, 4, -1},
        {0xd4, MPACK_EXT, 0, 1},    {0xd5, MPACK_EXT, 0, 2},  {0xd6, MPACK_EXT, 0, 4},
        {0xd7, MPACK_EXT, 0, 8},    {0xd8, MPACK_EXT, 0, 16}, {0xd9, MPACK_STR, 1, -1},
        {0xda, MPACK_STR, 2, -1},   {0xdb, MPACK_STR, 4, -1}, {0xdc, MPACK_ARRAY, 2, -1},
        {0xdd, MPACK_ARRAY, 4, -1}, {0xde, MPACK_MAP, 2, -1}, {0xdf, MPACK_MAP, 4, -1},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (t[i].tag == c) {
            *type = t[i].type;
            *lenbytes = t[i].lenbytes;
            *fixlen = t[i].fixlen;
            return 0;
        }
    }
    return -1;
}

/* Fixed-size scalars: returns the payload size after tag c, or -1. */
static int read_scalar(uint8_t c, const uint8_t *p, size_t left, mpack_item_t *it)
{
    static const int size[] = {1, 2, 4, 8};
    if (c == 0xca || c == 0xcb) {
        size_t n = c == 0xca ? 4 : 8;
        if (left < n)
            return -EPROTO;
        uint64_t bits = get_be(p, (int)n);
        it->type = MPACK_FLOAT;
        if (n == 4) {
            uint32_t b32 = (uint32_t)bits;
            float f;
            memcpy(&f, &b32, sizeof f);
            it->f = f;
        } else {
            memcpy(&it->f, &bits, sizeof it->f);
        }
        return (int)n;
    }
    if (c < 0xcc || c > 0xd3)
        return -1;
    int n = size[(c - 0xcc) & 3];
    if (left < (size_t)n)
        return -EPROTO;
    uint64_t v = get_be(p, n);
    if (c <= 0xcf) {
        it->type = MPACK_UINT;
        it->u = v;
    } else {
        /* Sign-extend the n-byte two's complement value. */
        int shift = 64 - 8 * n;
        set_int(it, (int64_t)(v << shift) >> shift);
    }
    return n;
}

static int read_var(uint8_t c, const uint8_t *p, size_t left, mpack_item_t *it)
{
    mpack_type_t type;
    int lenbytes, fixlen;
    if (var_header(c, &type, &lenbytes, &fixlen))
        return -EPROTO;
    size_t hdr = (size_t)lenbytes + (type == MPACK_EXT);
    if (left < hdr)
        return -EPROTO;
    uint64_t n = fixlen >= 0 ? (uint64_t)fixlen : get_be(p, lenbytes);
    it->type = type;
    left -= hdr;
    if (type == MPACK_ARRAY || type == MPACK_MAP) {
        if (n > left / (type == MPACK_MAP ? 2 : 1))
            return -EPROTO;
        it->count = (uint32_t)n;
        return (int)hdr;
    }
    if (n > left)
        return -EPROTO;
    if (type == MPACK_EXT)
        it->ext_type = (int8_t)p[lenbytes];
    it->p = p + hdr;
    it->len = (uint32_t)n;
    return (int)(hdr + n);
}

int mpack_read(mpack_reader_t *r, mpack_item_t *it)
{
    memset(it, 0, sizeof *it);
    if (r->p >= r->end)
        return -EPROTO;
    uint8_t c = r->p[0];
    const uint8_t *p = r->p + 1;
    size_t left = (size_t)(r->end - p);
    long used = 0;
    if (c < 0x80) {
        it->type = MPACK_UINT;
        it->u = c;
    } else if (c < 0xa0) {
        it->type = c < 0x90 ? MPACK_MAP : MPACK_ARRAY;
        it->count = c & 0x0f;
        if (it->count > left / (it->type == MPACK_MAP ? 2 : 1))
            return -EPROTO;
    } else if (c < 0xc0) {
        it->type = MPACK_STR;
        it->len = c & 0x1f;
        if (it->len > left)
            return -EPROTO;
        it->p = p;
        used = it->len;
    } else if (c >= 0xe0) {
        set_int(it, (int8_t)c);
    } else if (c == 0xc0) {
        it->type = MPACK_NIL;
    } else if (c == 0xc2 || c == 0xc3) {
        it->type = MPACK_BOOL;
        it->b = c == 0xc3;
    } else if ((used = read_scalar(c, p, left, it)) == -1) {
        used = read_var(c, p, left, it);
    }
    if (used < 0)
        return -EPROTO;
    r->p = p + used;
    return 0;
}

int mpack_skip(mpack_reader_t *r)
{
    mpack_reader_t t = *r;
    uint64_t pending = 1;
    while (pending) {
        mpack_item_t it;
        int rc = mpack_read(&t, &it);
        if (rc)
            return rc;
        pending--;
        if (it.type == MPACK_ARRAY)
            pending += it.count;
        else if (it.type == MPACK_MAP)
            pending += 2 * (uint64_t)it.count;
        if (pending > (uint64_t)(t.end - t.p))
            return -EPROTO;
    }
    *r = t;
    return 0;
}

/* ------------------------------------------------------------------ converter scratch */

/*
 * Keys of the maps/objects open on the current nesting path, used as a stack (indices stay valid
 * when it grows), plus an arena for key bytes that are not in the input as such.
 */
typedef struct conv {
    buf_t *out;
    json_key_t *keys;
    size_t nkeys, cap;
    json_key_t inline_keys[32];
    buf_t arena;
} conv_t;

static void conv_init(conv_t *c, buf_t *out)
{
    c->out = out;
    c->keys = c->inline_keys;
    c->nkeys = 0;
    c->cap = sizeof c->inline_keys / sizeof c->inline_keys[0];
    buf_init(&c->arena);
}

static int conv_finish(conv_t *c, size_t mark, int rc)
{
    if (c->keys != c->inline_keys)
        free(c->keys);
    buf_free(&c->arena);
    if (rc && c->out->data) {
        c->out->len = mark;
        c->out->data[mark] = '\0';
    }
    return rc;
}

static json_key_t *conv_push_key(conv_t *c)
{
    if (c->nkeys == c->cap) {
        size_t cap = c->cap * 2;
        json_key_t *k = c->keys == c->inline_keys ? xmalloc(cap * sizeof *k)
                                                  : xrealloc(c->keys, cap * sizeof *k);
        if (c->keys == c->inline_keys)
            memcpy(k, c->inline_keys, sizeof c->inline_keys);
        c->keys = k;
        c->cap = cap;
    }
    json_key_t *k = &c->keys[c->nkeys++];
    memset(k, 0, sizeof *k);
    return k;
}

/* ------------------------------------------------------------------ JSON -> msgpack */

typedef struct jconv {
    conv_t c;
    const char *in;
    size_t len;
} jconv_t;

static int fj_value(jconv_t *j, size_t pos, size_t *end);

/* A string literal [pos, end) as msgpack str. */
static int fj_string(jconv_t *j, size_t pos, size_t end)
{
    const char *lit = j->in + pos;
    size_t n = end - pos, dlen;
    int rc = json_string_decoded_len(lit, n, &dlen);
    if (rc)
        return rc;
    /* Without escapes, decoding can only grow the text (U+FFFD), so equal length means verbatim. */
    if (dlen == n - 2 && !memchr(lit, '\\', n))
        return mpack_write_str(j->c.out, lit + 1, dlen);
    if (dlen > UINT32_MAX)
        return -E2BIG;
    put_str_header(j->c.out, dlen);
    return json_string_decode(lit, n, j->c.out);
}

static int fj_array(jconv_t *j, size_t pos, size_t *end)
{
    const char *in = j->in;
    size_t first = json_skip_ws(in, j->len, pos + 1), p = first, n = 0;
    while (in[p] != ']') {
        n++;
        p = json_skip_ws(in, j->len, json_value_end(in, j->len, p));
        if (in[p] == ',')
            p = json_skip_ws(in, j->len, p + 1);
    }
    *end = p + 1;
    if (n > UINT32_MAX)
        return -E2BIG;
    mpack_write_array(j->c.out, (uint32_t)n);
    int rc = 0;
    for (p = first; !rc && n--;) {
        size_t e;
        rc = fj_value(j, p, &e);
        p = json_skip_ws(in, j->len, e);
        if (in[p] == ',')
            p = json_skip_ws(in, j->len, p + 1);
    }
    return rc;
}

/* Records one member (key literal at pos) on the key stack; returns the offset after it. */
static int fj_member(jconv_t *j, size_t pos, size_t *next)
{
    const char *in = j->in;
    size_t kend = json_value_end(in, j->len, pos);
    size_t v = json_skip_ws(in, j->len, json_skip_ws(in, j->len, kend) + 1);
    size_t dlen;
    json_key_t *k = conv_push_key(&j->c);
    int rc = json_string_decoded_len(in + pos, kend - pos, &dlen);
    k->key_ref = pos;
    k->val_ref = v;
    k->len = dlen;
    if (!rc && dlen == kend - pos - 2 && !memchr(in + pos, '\\', kend - pos)) {
        k->p = in + pos + 1;
    } else if (!rc) {
        /* The arena may move while keys are collected: keep the offset, resolve it later. */
        k->seq = j->c.arena.len;
        rc = json_string_decode(in + pos, kend - pos, &j->c.arena);
    }
    size_t p = json_skip_ws(in, j->len, json_value_end(in, j->len, v));
    if (in[p] == ',')
        p = json_skip_ws(in, j->len, p + 1);
    *next = p;
    return rc;
}

static int fj_object(jconv_t *j, size_t pos, size_t *end)
{
    size_t base = j->c.nkeys, abase = j->c.arena.len;
    size_t p = json_skip_ws(j->in, j->len, pos + 1);
    int rc = 0;
    while (!rc && j->in[p] != '}')
        rc = fj_member(j, p, &p);
    *end = p + 1;
    size_t n = j->c.nkeys - base;
    for (size_t i = 0; !rc && i < n; i++) {
        json_key_t *k = &j->c.keys[base + i];
        if (!k->p)
            k->p = j->c.arena.data + k->seq;
    }
    if (!rc) {
        n = json_keys_order(j->c.keys + base, n, false);
        if (n > UINT32_MAX)
            rc = -E2BIG;
        else
            mpack_write_map(j->c.out, (uint32_t)n);
    }
    for (size_t i = 0; !rc && i < n; i++) {
        /* Re-read through the stack: nested objects may have moved it. */
        const json_key_t *k = &j->c.keys[base + i];
        size_t kpos = k->key_ref, vpos = k->val_ref, e;
        /* verbatim in the input (fj_member): written without a second scan */
        if (k->p == j->in + kpos + 1)
            rc = mpack_write_str(j->c.out, k->p, k->len);
        else
            rc = fj_string(j, kpos, json_value_end(j->in, j->len, kpos));
        if (!rc)
            rc = fj_value(j, vpos, &e);
    }
    j->c.nkeys = base;
    j->c.arena.len = abase;
    return rc;
}

static int fj_value(jconv_t *j, size_t pos, size_t *end)
{
    buf_t *out = j->c.out;
    switch (j->in[pos]) {
    case '{':
        return fj_object(j, pos, end);
    case '[':
        return fj_array(j, pos, end);
    case 't':
        *end = pos + 4;
        mpack_write_bool(out, true);
        return 0;
    case 'f':
        *end = pos + 5;
        mpack_write_bool(out, false);
        return 0;
    case 'n':
        *end = pos + 4;
        mpack_write_nil(out);
        return 0;
    case '"':
        *end = json_value_end(j->in, j->len, pos);
        return fj_string(j, pos, *end);
    default: {
        double v;
        *end = json_value_end(j->in, j->len, pos);
        int rc = json_number_parse(j->in + pos, *end - pos, &v);
        if (!rc)
            mpack_write_double(out, v);
        return rc;
    }
    }
}

int mpack_from_json(buf_t *out, const char *json, size_t len)
{
    if (json_validate(json, len))
        return -EINVAL;
    return mpack_from_valid_json(out, json, len);
}

int mpack_from_valid_json(buf_t *out, const char *json, size_t len)
{
    jconv_t j = {.in = json, .len = len};
    size_t mark = out->len, end;
    conv_init(&j.c, out);
    /* Validation bounds the recursion below at JSON_MAX_DEPTH levels. */
    int rc = fj_value(&j, json_skip_ws(json, len, 0), &end);
    return conv_finish(&j.c, mark, rc);
}

/* ------------------------------------------------------------------ msgpack -> JSON */

typedef struct mconv {
    conv_t c;
    const uint8_t *start, *end;
    mpack_bin_fn bin; /* NULL: bin values are -ENOTSUP */
    void *bin_arg;
} mconv_t;

static int tj_value(mconv_t *m, mpack_reader_t *r, int depth);

/* An integer as JavaScript prints the number notepack decodes it to (a double beyond 2^53). */
static void put_int(buf_t *out, const mpack_item_t *it)
{
    if (it->type == MPACK_UINT && it->u <= (1ULL << 53))
        buf_printf(out, "%llu", (unsigned long long)it->u);
    else if (it->type == MPACK_UINT)
        json_write_number(out, (double)it->u);
    else if (it->i >= -(1LL << 53))
        buf_printf(out, "%lld", (long long)it->i);
    else
        json_write_number(out, (double)it->i);
}

/* 1970-01-01 + days -> proleptic Gregorian y/m/d (400-year eras of 146097 days). */
static void civil_from_days(int64_t days, int64_t *y, int *mon, int *d)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *mon = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*mon <= 2);
}

/* Date#toJSON for time value t (ms): TimeClip, then toISOString's layout. */
static void put_date(buf_t *out, double t)
{
    if (!isfinite(t) || fabs(t) > 8.64e15) {
        buf_puts(out, "null");
        return;
    }
    int64_t ms = (int64_t)trunc(t);
    int64_t days = ms / 86400000, rem = ms % 86400000;
    if (rem < 0) {
        rem += 86400000;
        days--;
    }
    int64_t y;
    int mon, d;
    civil_from_days(days, &y, &mon, &d);
    char year[24];
    if (y >= 0 && y <= 9999)
        snprintf(year, sizeof year, "%04lld", (long long)y);
    else
        snprintf(year, sizeof year, "%c%06lld", y < 0 ? '-' : '+', (long long)llabs(y));
    buf_printf(out, "\"%s-%02d-%02dT%02d:%02d:%02d.%03dZ\"", year, mon, d, (int)(rem / 3600000),
               (int)(rem / 60000 % 60), (int)(rem / 1000 % 60), (int)(rem % 1000));
}

/* Ext values notepack turns into something JSON can print: timestamps (and undefined). */
static int put_ext(buf_t *out, uint8_t tag, const mpack_item_t *it)
{
    const uint8_t *p = it->p;
    double t;
    if (tag == 0xd4 && it->ext_type == 0) {
        buf_puts(out, "null");
        return 0;
    }
    if (tag == 0xd6 && it->ext_type == -1) {
        t = (double)get_be(p, 4) * 1e3;
    } else if (tag == 0xd7 && it->ext_type == -1) {
        uint64_t hi = get_be(p, 4), lo = get_be(p + 4, 4);
        double s = (double)(hi & 3) * 4294967296.0 + (double)lo;
        t = s * 1e3 + (double)(hi >> 2) / 1e6;
    } else if (tag == 0xd7 && it->ext_type == 0) {
        t = (double)(int32_t)get_be(p, 4) * 4294967296.0 + (double)get_be(p + 4, 4);
    } else if (tag == 0xc7 && it->ext_type == -1) {
        if (it->len != 12)
            return -EPROTO;
        double s = (double)(int32_t)get_be(p + 4, 4) * 4294967296.0 + (double)get_be(p + 8, 4);
        t = s * 1e3 + (double)get_be(p, 4) / 1e6;
    } else {
        return -ENOTSUP;
    }
    put_date(out, t);
    return 0;
}

static bool is_undefined(const uint8_t *p, const uint8_t *end)
{
    return end - p >= 3 && p[0] == 0xd4 && p[1] == 0x00;
}

static int tj_array(mconv_t *m, mpack_reader_t *r, uint32_t n, int depth)
{
    buf_putc(m->c.out, '[');
    int rc = 0;
    for (uint32_t i = 0; !rc && i < n; i++) {
        if (i)
            buf_putc(m->c.out, ',');
        rc = tj_value(m, r, depth);
    }
    if (!rc)
        buf_putc(m->c.out, ']');
    return rc;
}

/* Key text for comparison: strings in place, integers as decimal text in the arena. */
static int tj_key(mconv_t *m, const mpack_item_t *it, json_key_t *k)
{
    if (it->type == MPACK_STR) {
        k->p = (const char *)it->p;
        k->len = it->len;
        return 0;
    }
    if (it->type != MPACK_UINT && it->type != MPACK_INT)
        return -EPROTO;
    size_t at = m->c.arena.len;
    put_int(&m->c.arena, it);
    k->seq = at;
    k->len = m->c.arena.len - at;
    return 0;
}

static int tj_collect(mconv_t *m, mpack_reader_t *r, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        mpack_item_t key;
        json_key_t *k = conv_push_key(&m->c);
        k->key_ref = (size_t)(r->p - m->start);
        int rc = mpack_read(r, &key);
        if (!rc)
            rc = tj_key(m, &key, k);
        k->val_ref = (size_t)(r->p - m->start);
        if (!rc)
            rc = mpack_skip(r);
        if (rc)
            return rc;
    }
    return 0;
}

static int tj_member(mconv_t *m, mpack_reader_t *r, size_t key_ref, size_t val_ref, int depth)
{
    buf_t *out = m->c.out;
    mpack_reader_t kr = {m->start + key_ref, r->end};
    mpack_item_t key;
    int rc = mpack_read(&kr, &key);
    if (rc)
        return rc;
    if (key.type == MPACK_STR) {
        json_write_string(out, (const char *)key.p, key.len);
    } else {
        buf_putc(out, '"');
        put_int(out, &key);
        buf_putc(out, '"');
    }
    buf_putc(out, ':');
    mpack_reader_t vr = {m->start + val_ref, r->end};
    return tj_value(m, &vr, depth);
}

/*
 * notepack builds maps with `obj[key] = value` on `{}`, so "__proto__" members go through the
 * Object.prototype accessor while it is reachable: an object or null value becomes the prototype
 * (not an own property), a primitive is ignored. Once the prototype chain no longer reaches the
 * accessor (prototype null, or an object with its own "__proto__"), later "__proto__" members are
 * plain own properties. A Date or Buffer in the chain makes JSON.stringify call their toJSON on a
 * non-Date and throw, unless an own "toJSON" closer in the chain shadows it.
 */
enum { PROTO_ACCESSOR, PROTO_DATA, PROTO_NONE };

typedef struct proto_info {
    int lookup;  /* what looking "__proto__" up through this object finds */
    bool tojson; /* looking "toJSON" up finds a method that throws for a plain object */
} proto_info_t;

static bool key_is(const json_key_t *k, const char *s)
{
    return k->p && k->len == strlen(s) && !memcmp(k->p, s, k->len);
}

static int map_facts(mconv_t *m, size_t base, int depth, proto_info_t *pi);

/* As a prototype, the value at off: *is_obj false for primitives (assignment ignored). */
static int value_proto(mconv_t *m, size_t off, const uint8_t *end, int depth, bool *is_obj,
                       proto_info_t *pi)
{
    mpack_reader_t r = {m->start + off, end};
    uint8_t tag = r.p[0];
    mpack_item_t it;
    int rc = mpack_read(&r, &it);
    *is_obj = true;
    pi->lookup = PROTO_ACCESSOR;
    pi->tojson = false;
    if (rc)
        return rc;
    switch (it.type) {
    case MPACK_NIL:
        pi->lookup = PROTO_NONE;
        return 0;
    case MPACK_ARRAY:
        return 0;
    case MPACK_BIN:
        pi->tojson = true;
        return 0;
    case MPACK_EXT:
        if (tag == 0xd4 && it.ext_type == 0)
            *is_obj = false;
        else if ((it.ext_type == -1 && (tag == 0xd6 || tag == 0xd7 || tag == 0xc7)) ||
                 (tag == 0xd7 && it.ext_type == 0))
            pi->tojson = true;
        return 0;
    case MPACK_MAP: {
        if (depth >= MPACK_MAX_DEPTH)
            return -EPROTO;
        size_t base = m->c.nkeys, abase = m->c.arena.len;
        rc = tj_collect(m, &r, it.count);
        if (!rc)
            rc = map_facts(m, base, depth + 1, pi);
        m->c.nkeys = base;
        m->c.arena.len = abase;
        return rc;
    }
    default:
        *is_obj = false;
        return 0;
    }
}

/* Runs the "__proto__" assignments of the map whose members are keys[base..]; the members that
   only set the prototype get key_ref = SIZE_MAX. */
static int map_facts(mconv_t *m, size_t base, int depth, proto_info_t *pi)
{
    proto_info_t proto = {PROTO_ACCESSOR, false};
    bool live = true, own_proto = false, own_tojson = false;
    size_t end = m->c.nkeys;
    for (size_t i = base; i < end; i++) {
        json_key_t *k = &m->c.keys[i];
        own_tojson = own_tojson || key_is(k, "toJSON");
        if (!key_is(k, "__proto__"))
            continue;
        if (!live) {
            own_proto = true;
            continue;
        }
        k->key_ref = SIZE_MAX;
        bool is_obj;
        proto_info_t v;
        int rc = value_proto(m, k->val_ref, m->end, depth, &is_obj, &v);
        if (rc)
            return rc;
        if (is_obj) {
            proto = v;
            live = v.lookup == PROTO_ACCESSOR;
        }
    }
    pi->lookup = own_proto ? PROTO_DATA : proto.lookup;
    pi->tojson = !own_tojson && proto.tojson;
    return 0;
}

static int tj_map(mconv_t *m, mpack_reader_t *r, uint32_t count, int depth)
{
    size_t base = m->c.nkeys, abase = m->c.arena.len, n = 0;
    proto_info_t pi;
    int rc = tj_collect(m, r, count);
    if (!rc)
        rc = map_facts(m, base, depth, &pi);
    if (!rc && pi.tojson)
        rc = -EPROTO;
    if (!rc) {
        /* Integer keys live in the arena, which stops moving only now. */
        for (size_t i = base; i < m->c.nkeys; i++) {
            json_key_t *k = &m->c.keys[i];
            if (!k->p)
                k->p = m->c.arena.data + k->seq;
            if (k->key_ref != SIZE_MAX)
                m->c.keys[base + n++] = *k;
        }
        n = json_keys_order(m->c.keys + base, n, false);
        buf_putc(m->c.out, '{');
    }
    bool first = true;
    for (size_t i = 0; !rc && i < n; i++) {
        /* Re-read through the stack: nested maps may have moved it. */
        size_t kref = m->c.keys[base + i].key_ref, vref = m->c.keys[base + i].val_ref;
        if (is_undefined(m->start + vref, r->end))
            continue;
        if (!first)
            buf_putc(m->c.out, ',');
        first = false;
        rc = tj_member(m, r, kref, vref, depth);
    }
    m->c.nkeys = base;
    m->c.arena.len = abase;
    if (!rc)
        buf_putc(m->c.out, '}');
    return rc;
}

static int tj_value(mconv_t *m, mpack_reader_t *r, int depth)
{
    buf_t *out = m->c.out;
    mpack_item_t it;
    uint8_t tag = r->p < r->end ? r->p[0] : 0;
    int rc = mpack_read(r, &it);
    if (rc)
        return rc;
    switch (it.type) {
    case MPACK_NIL:
        buf_puts(out, "null");
        return 0;
    case MPACK_BOOL:
        buf_puts(out, it.b ? "true" : "false");
        return 0;
    case MPACK_INT:
    case MPACK_UINT:
        put_int(out, &it);
        return 0;
    case MPACK_FLOAT:
        json_write_number(out, it.f);
        return 0;
    case MPACK_STR:
        json_write_string(out, (const char *)it.p, it.len);
        return 0;
    case MPACK_BIN:
        return m->bin ? m->bin(out, it.p, it.len, m->bin_arg) : -ENOTSUP;
    case MPACK_EXT:
        return put_ext(out, tag, &it);
    case MPACK_ARRAY:
    case MPACK_MAP:
        if (depth >= MPACK_MAX_DEPTH)
            return -EPROTO;
        return it.type == MPACK_ARRAY ? tj_array(m, r, it.count, depth + 1)
                                      : tj_map(m, r, it.count, depth + 1);
    }
    return -EPROTO;
}

int mpack_to_json(buf_t *out, const uint8_t *p, size_t len, size_t *used)
{
    return mpack_to_json_bin(out, p, len, used, NULL, NULL);
}

int mpack_to_json_bin(buf_t *out, const uint8_t *p, size_t len, size_t *used, mpack_bin_fn bin,
                      void *arg)
{
    mconv_t m = {.start = p, .end = p + len, .bin = bin, .bin_arg = arg};
    mpack_reader_t r;
    size_t mark = out->len;
    mpack_reader_init(&r, p, len);
    conv_init(&m.c, out);
    /* Recursion is bounded by MPACK_MAX_DEPTH. */
    int rc = tj_value(&m, &r, 0);
    if (!rc)
        *used = (size_t)(r.p - p);
    return conv_finish(&m.c, mark, rc);
}
