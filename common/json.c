/* json: validation, minification, JSON.stringify-exact scalars and JS key order, without a DOM. */
#include "common/json.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/decimal.h"
#include "common/hex.h"
#include "common/xalloc.h"

static const char hexdig[] = "0123456789abcdef";
/* The two-character escapes: the letter after the backslash, and the character it stands for
 * (read both ways; the writer never needs "\/"). */
static const char esc_letter[] = "\"\\/bfnrt", esc_char[] = "\"\\/\b\f\n\r\t";

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Four hex digits at s (caller checked the length) -> 0..0xffff, or -1. */
static long hex4(const char *s)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(s[i]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/*
 * The UTF-8 sequence at s[0..n), n >= 1: its length if valid, else minus the length of its maximal
 * invalid subpart, which the WHATWG decoder (Node's Buffer#toString) turns into one U+FFFD.
 */
static int utf8_next(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    int need;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return -1;
    }
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n || s[i] < lo || s[i] > hi)
            return -i;
        lo = 0x80;
        hi = 0xbf;
    }
    return need + 1;
}

static void put_replacement(buf_t *out)
{
    buf_append(out, "\xef\xbf\xbd", 3);
}

/* Where the first invalid UTF-8 sequence at or after u[i] starts (n when there is none), and in
 * *bad the length of its maximal invalid subpart (one U+FFFD stands for it). */
static size_t next_invalid(const unsigned char *u, size_t n, size_t i, size_t *bad)
{
    while (i < n) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* ASCII is valid: crossed a word at a time (msgpack's strings are measured here) */
        uint64_t w;
        if (n - i >= sizeof(w)) {
            memcpy(&w, u + i, sizeof(w));
            if (!(w & 0x8080808080808080ull)) {
                i += sizeof(w);
                continue;
            }
        }
#endif
        int k = u[i] < 0x80 ? 1 : utf8_next(u + i, n - i);
        if (k < 0) {
            *bad = (size_t)-k;
            return i;
        }
        i += (size_t)k;
    }
    return n;
}

size_t json_utf8_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len = n, bad;
    for (size_t i = 0; (i = next_invalid(u, n, i, &bad)) < n; i += bad)
        len = len + 3 - bad;
    return len;
}

bool json_utf8_valid(const char *s, size_t n)
{
    size_t bad;
    return next_invalid((const unsigned char *)s, n, 0, &bad) == n;
}

/* Appends s[0..n) with invalid UTF-8 replaced; no escaping (the bytes are literal content). */
static void put_utf8_repaired(buf_t *out, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, bad;
    for (size_t i; (i = next_invalid(u, n, run, &bad)) < n; run = i + bad) {
        buf_append(out, s + run, i - run);
        put_replacement(out);
    }
    buf_append(out, s + run, n - run);
}

void json_write_utf8(buf_t *out, const char *s, size_t n)
{
    put_utf8_repaired(out, s, n);
}

/* ------------------------------------------------------------------ string writer */

/* c as JSON writes it inside a string: c is '"', '\\' or a control character. */
static void put_escape(buf_t *out, unsigned char c)
{
    const char *hit = memchr(esc_char, c, sizeof(esc_char) - 1);
    if (hit) {
        char e[2] = {'\\', esc_letter[hit - esc_char]};
        buf_append(out, e, 2);
        return;
    }
    char e[6] = {'\\', 'u', '0', '0', hexdig[c >> 4], hexdig[c & 15]};
    buf_append(out, e, 6);
}

void json_write_string(buf_t *out, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    buf_reserve(out, len + 2);
    buf_putc(out, '"');
    size_t run = 0, i = 0;
    while (i < len) {
        unsigned char c = u[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        int k = c < 0x80 ? 0 : utf8_next(u + i, len - i);
        if (k > 0) {
            i += (size_t)k;
            continue;
        }
        buf_append(out, s + run, i - run);
        if (k == 0)
            put_escape(out, c);
        else
            put_replacement(out);
        i += k == 0 ? 1 : (size_t)-k;
        run = i;
    }
    if (run < len) /* s may be NULL when len is 0: no offset may be applied to it */
        buf_append(out, s + run, len - run);
    buf_putc(out, '"');
}

/* ------------------------------------------------------------------ number writer */

/* A decimal m[0].m[1..p-1] x 10^e with p significant digits. */
typedef struct dec {
    char m[24];
    int p;
    int e;
} dec_t;

static double dec_value(const dec_t *d)
{
    char s[48];
    snprintf(s, sizeof s, "%.*se%d", d->p, d->m, d->e - (d->p - 1));
    return strtod(s, NULL);
}

static void dec_step(dec_t *d, bool up)
{
    int i = d->p - 1;
    if (up) {
        while (i >= 0 && d->m[i] == '9')
            d->m[i--] = '0';
        if (i >= 0) {
            d->m[i]++;
        } else {
            d->m[0] = '1';
            d->e++;
        }
        return;
    }
    while (d->m[i] == '0')
        d->m[i--] = '9';
    d->m[i]--;
    if (d->m[0] == '0') {
        /* 1.00 x 10^e - one unit is 9.99 x 10^(e-1): the next p-digit decimal below. */
        memset(d->m, '9', (size_t)d->p);
        d->e--;
    }
}

/*
 * The p-digit decimal nearest to v (v finite, > 0) if it reads back as v, else its neighbour on
 * the other side of v: at a power of two the rounding interval is asymmetric, so the nearest can
 * miss while the other one hits. Returns whether either reads back as v.
 */
static bool dec_try(double v, int p, dec_t *d)
{
    char s[48];
    snprintf(s, sizeof s, "%.*e", p - 1, v);
    d->p = p;
    d->m[0] = s[0];
    if (p > 1)
        memcpy(d->m + 1, s + 2, (size_t)p - 1);
    d->m[p] = '\0';
    d->e = atoi(strchr(s, 'e') + 1);
    double got = dec_value(d);
    if (got == v)
        return true;
    dec_step(d, got < v);
    return dec_value(d) == v;
}

/* Shortest round-trip digits of finite v > 0 into d (no trailing zeros); returns k, sets *n. */
static int shortest_digits(double v, char *digits, int *n)
{
    int k;
    if (v < 9007199254740992.0 && v == floor(v)) {
        k = snprintf(digits, 24, "%llu", (unsigned long long)v);
        *n = k;
    } else {
        int lo = 1, hi = 17;
        dec_t d;
        /* Some p-digit decimal reads back as v => some (p+1)-digit one does: binary search. */
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (dec_try(v, mid, &d))
                hi = mid;
            else
                lo = mid + 1;
        }
        dec_try(v, lo, &d);
        memcpy(digits, d.m, (size_t)d.p + 1);
        k = d.p;
        *n = d.e + 1;
    }
    while (k > 1 && digits[k - 1] == '0')
        k--;
    digits[k] = '\0';
    return k;
}

void json_write_number(buf_t *out, double v)
{
    if (!isfinite(v)) {
        buf_append(out, "null", 4);
        return;
    }
    if (v == 0) {
        buf_putc(out, '0');
        return;
    }
    char digits[24];
    int n, k = shortest_digits(fabs(v), digits, &n);
    const char *sign = v < 0 ? "-" : "";
    /* ECMAScript Number::toString(10), steps 6-10. */
    if (k <= n && n <= 21) {
        buf_printf(out, "%s%s%.*s", sign, digits, n - k, "000000000000000000000");
        return;
    }
    if (0 < n && n <= 21) {
        buf_printf(out, "%s%.*s.%s", sign, n, digits, digits + n);
        return;
    }
    if (-6 < n && n <= 0) {
        buf_printf(out, "%s0.%.*s%s", sign, -n, "000000", digits);
        return;
    }
    char esign = n - 1 < 0 ? '-' : '+';
    int eabs = abs(n - 1);
    if (k == 1) {
        buf_printf(out, "%s%se%c%d", sign, digits, esign, eabs);
        return;
    }
    buf_printf(out, "%s%c.%se%c%d", sign, digits[0], digits + 1, esign, eabs);
}

/* ------------------------------------------------------------------ scanning */

/* Offset just past the number starting at pos, or 0 if the grammar is not met. */
static size_t number_end(const char *in, size_t len, size_t pos)
{
    size_t i = pos;
    if (i < len && in[i] == '-')
        i++;
    if (i >= len || !is_digit(in[i]))
        return 0;
    if (in[i] == '0') {
        i++;
    } else {
        while (i < len && is_digit(in[i]))
            i++;
    }
    if (i < len && in[i] == '.') {
        i++;
        if (i >= len || !is_digit(in[i]))
            return 0;
        while (i < len && is_digit(in[i]))
            i++;
    }
    if (i < len && (in[i] == 'e' || in[i] == 'E')) {
        i++;
        if (i < len && (in[i] == '+' || in[i] == '-'))
            i++;
        if (i >= len || !is_digit(in[i]))
            return 0;
        while (i < len && is_digit(in[i]))
            i++;
    }
    return i;
}

/* The bytes of w that are '"', '\\' or a control character (below 0x20), as their top bits: the
 * has-zero-byte and has-less-than tricks. Borrows only flag bytes above a true one, so the lowest
 * flag is exact. */
static uint64_t word_specials(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    return (((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w)) & highs;
}

/* Offset just past the string literal whose '"' is at pos, or 0 if it is not a valid literal.
 * Runs of plain bytes are crossed a word at a time (every entry's JSON is scanned here several
 * times: validated, minified, converted to msgpack for a classic adapter). */
static size_t string_end(const char *in, size_t len, size_t pos)
{
    size_t i = pos + 1;
    while (i < len) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint64_t w;
        if (len - i >= sizeof(w)) {
            memcpy(&w, in + i, sizeof(w));
            uint64_t m = word_specials(w);
            if (!m) {
                i += sizeof(w);
                continue;
            }
            i += (size_t)__builtin_ctzll(m) >> 3; /* the first special byte */
        }
#endif
        unsigned char c = (unsigned char)in[i];
        if (c == '"')
            return i + 1;
        if (c < 0x20)
            return 0;
        if (c != '\\') {
            i++;
            continue;
        }
        if (i + 1 >= len)
            return 0;
        switch (in[i + 1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            i += 2;
            break;
        case 'u':
            if (i + 6 > len || hex4(in + i + 2) < 0)
                return 0;
            i += 6;
            break;
        default:
            return 0;
        }
    }
    return 0;
}

size_t json_skip_ws(const char *in, size_t len, size_t pos)
{
    while (pos < len && is_ws(in[pos]))
        pos++;
    return pos;
}

size_t json_value_end(const char *in, size_t len, size_t pos)
{
    if (pos >= len)
        return len;
    char c = in[pos];
    if (c == '"') {
        size_t e = string_end(in, len, pos);
        return e ? e : len;
    }
    if (c != '[' && c != '{') {
        while (pos < len && !is_ws(in[pos]) && in[pos] != ',' && in[pos] != ']' && in[pos] != '}')
            pos++;
        return pos;
    }
    size_t depth = 0;
    while (pos < len) {
        c = in[pos];
        if (c == '"') {
            size_t e = string_end(in, len, pos);
            if (!e)
                return len;
            pos = e;
            continue;
        }
        if (c == '[' || c == '{') {
            depth++;
        } else if (c == ']' || c == '}') {
            if (--depth == 0)
                return pos + 1;
        }
        pos++;
    }
    return len;
}

/* ------------------------------------------------------------------ validate / minify */

enum { WALK_COPY = 1, WALK_REPAIR = 2 };

typedef struct walk {
    const char *in;
    size_t len;
    size_t pos;
    buf_t *out;
    int mode;
} walk_t;

static void emit(walk_t *w, const char *p, size_t n)
{
    if (!(w->mode & WALK_COPY))
        return;
    if (!(w->mode & WALK_REPAIR) || n < 2 || p[0] != '"') {
        buf_append(w->out, p, n);
        return;
    }
    buf_putc(w->out, '"');
    put_utf8_repaired(w->out, p + 1, n - 2);
    buf_putc(w->out, '"');
}

static void skip(walk_t *w)
{
    w->pos = json_skip_ws(w->in, w->len, w->pos);
}

/* A scalar at pos (pos < len). */
static int walk_scalar(walk_t *w)
{
    const char *s = w->in + w->pos;
    size_t left = w->len - w->pos, end;
    switch (*s) {
    case '"':
        end = string_end(w->in, w->len, w->pos);
        break;
    case 't':
        end = left >= 4 && !memcmp(s, "true", 4) ? w->pos + 4 : 0;
        break;
    case 'f':
        end = left >= 5 && !memcmp(s, "false", 5) ? w->pos + 5 : 0;
        break;
    case 'n':
        end = left >= 4 && !memcmp(s, "null", 4) ? w->pos + 4 : 0;
        break;
    default:
        end = number_end(w->in, w->len, w->pos);
        break;
    }
    if (!end)
        return -EINVAL;
    emit(w, s, end - w->pos);
    w->pos = end;
    return 0;
}

/* `"key" :` then whitespace, inside an object. */
static int walk_key(walk_t *w)
{
    if (w->pos >= w->len || w->in[w->pos] != '"')
        return -EINVAL;
    int rc = walk_scalar(w);
    if (rc)
        return rc;
    skip(w);
    if (w->pos >= w->len || w->in[w->pos] != ':')
        return -EINVAL;
    emit(w, ":", 1);
    w->pos++;
    skip(w);
    return 0;
}

/*
 * After a complete value: consumes closers and one separator. Returns 1 when another value is
 * expected, 0 when the top-level value ended at the end of input, or an error.
 */
static int walk_after(walk_t *w, const uint64_t *stack, size_t *depth)
{
    for (;;) {
        skip(w);
        if (*depth == 0)
            return w->pos == w->len ? 0 : -EINVAL;
        if (w->pos >= w->len)
            return -EINVAL;
        size_t top = *depth - 1;
        bool obj = (stack[top / 64] >> (top % 64)) & 1;
        char c = w->in[w->pos];
        if (c == (obj ? '}' : ']')) {
            emit(w, &c, 1);
            w->pos++;
            (*depth)--;
            continue;
        }
        if (c != ',')
            return -EINVAL;
        emit(w, ",", 1);
        w->pos++;
        skip(w);
        int rc = obj ? walk_key(w) : 0;
        return rc ? rc : 1;
    }
}

static int walk(walk_t *w)
{
    uint64_t stack[JSON_MAX_DEPTH / 64] = {0};
    size_t depth = 0;
    int rc;
    skip(w);
    do {
        if (w->pos >= w->len)
            return -EINVAL;
        char c = w->in[w->pos];
        if (c == '[' || c == '{') {
            if (depth == JSON_MAX_DEPTH)
                return -EINVAL;
            bool obj = c == '{';
            if (obj)
                stack[depth / 64] |= (uint64_t)1 << (depth % 64);
            else
                stack[depth / 64] &= ~((uint64_t)1 << (depth % 64));
            depth++;
            emit(w, &c, 1);
            w->pos++;
            skip(w);
            if (w->pos < w->len && w->in[w->pos] != (obj ? '}' : ']')) {
                if (obj && (rc = walk_key(w)))
                    return rc;
                rc = 1;
                continue;
            }
        } else if ((rc = walk_scalar(w))) {
            return rc;
        }
        rc = walk_after(w, stack, &depth);
    } while (rc == 1);
    return rc;
}

int json_validate(const char *in, size_t len)
{
    walk_t w = {in, len, 0, NULL, 0};
    return walk(&w);
}

static int minify(buf_t *out, const char *in, size_t len, int mode)
{
    size_t mark = out->len;
    walk_t w = {in, len, 0, out, mode};
    buf_reserve(out, len);
    int rc = walk(&w);
    if (rc) {
        out->len = mark;
        out->data[mark] = '\0';
    }
    return rc;
}

int json_minify(buf_t *out, const char *in, size_t len)
{
    return minify(out, in, len, WALK_COPY);
}

int json_minify_utf8(buf_t *out, const char *in, size_t len)
{
    return minify(out, in, len, WALK_COPY | WALK_REPAIR);
}

int json_type_of(const char *in, size_t len, json_type_t *out)
{
    size_t pos = json_skip_ws(in, len, 0);
    if (pos >= len)
        return -EINVAL;
    switch (in[pos]) {
    case 'n':
        *out = JSON_NULL;
        return 0;
    case 'f':
        *out = JSON_FALSE;
        return 0;
    case 't':
        *out = JSON_TRUE;
        return 0;
    case '"':
        *out = JSON_STRING;
        return 0;
    case '[':
        *out = JSON_ARRAY;
        return 0;
    case '{':
        *out = JSON_OBJECT;
        return 0;
    default:
        if (in[pos] == '-' || is_digit(in[pos])) {
            *out = JSON_NUMBER;
            return 0;
        }
        return -EINVAL;
    }
}

int json_array_items(const char *in, size_t len, json_span_t *items, size_t max, size_t *count)
{
    json_type_t t;
    *count = 0;
    if (json_validate(in, len) || json_type_of(in, len, &t) || t != JSON_ARRAY)
        return -EINVAL;
    size_t pos = json_skip_ws(in, len, json_skip_ws(in, len, 0) + 1);
    while (in[pos] != ']') {
        size_t end = json_value_end(in, len, pos);
        if (*count == max)
            return -E2BIG;
        json_span_t *it = &items[(*count)++];
        json_type_of(in + pos, end - pos, &it->type);
        it->p = in + pos;
        it->len = end - pos;
        pos = json_skip_ws(in, len, end);
        if (in[pos] == ',')
            pos = json_skip_ws(in, len, pos + 1);
    }
    return 0;
}

/* ------------------------------------------------------------------ string decode */

static void put_codepoint(buf_t *out, long cp)
{
    char u[4];
    if (cp < 0x80) {
        u[0] = (char)cp;
        buf_append(out, u, 1);
        return;
    }
    if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        buf_append(out, u, 2);
        return;
    }
    if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        buf_append(out, u, 3);
        return;
    }
    u[0] = (char)(0xf0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    u[3] = (char)(0x80 | (cp & 0x3f));
    buf_append(out, u, 4);
}

static size_t codepoint_len(long cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* The code point of the escape at s[0..n) (s[0] == '\\'), with its length; -1 if invalid. */
static long escape_value(const char *s, size_t n, size_t *used)
{
    if (n < 2)
        return -1;
    const char *hit = memchr(esc_letter, s[1], sizeof(esc_letter) - 1);
    if (hit) {
        *used = 2;
        return (unsigned char)esc_char[hit - esc_letter];
    }
    if (s[1] != 'u' || n < 6)
        return -1;
    long cu = hex4(s + 2);
    if (cu < 0)
        return -1;
    *used = 6;
    if (cu >= 0xd800 && cu <= 0xdbff && n >= 12 && s[6] == '\\' && s[7] == 'u') {
        long lo = hex4(s + 8);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
            *used = 12;
            return 0x10000 + ((cu - 0xd800) << 10) + (lo - 0xdc00);
        }
    }
    return cu >= 0xd800 && cu <= 0xdfff ? 0xfffd : cu;
}

/* Decodes lit into out, or only counts the bytes when out is NULL. */
static int decode_lit(const char *lit, size_t len, buf_t *out, size_t *count)
{
    if (len < 2 || lit[0] != '"' || lit[len - 1] != '"')
        return -EINVAL;
    const unsigned char *u = (const unsigned char *)lit;
    size_t i = 1, end = len - 1, run = 1, n = 0;
    while (i < end) {
        unsigned char c = u[i];
        if (c == '"' || c < 0x20)
            return -EINVAL;
        long cp = -2;
        size_t used = 1;
        if (c == '\\') {
            cp = escape_value(lit + i, end - i, &used);
            if (cp < 0)
                return -EINVAL;
        } else if (c >= 0x80) {
            int k = utf8_next(u + i, end - i);
            if (k > 0) {
                used = (size_t)k;
            } else {
                cp = 0xfffd;
                used = (size_t)-k;
            }
        }
        if (cp == -2) {
            n += used;
            i += used;
            continue;
        }
        n += codepoint_len(cp);
        if (out) {
            buf_append(out, lit + run, i - run);
            put_codepoint(out, cp);
        }
        i += used;
        run = i;
    }
    if (out)
        buf_append(out, lit + run, end - run);
    *count = n;
    return 0;
}

int json_string_decode(const char *lit, size_t len, buf_t *out)
{
    size_t n;
    int rc = decode_lit(lit, len, NULL, &n);
    if (rc)
        return rc;
    buf_reserve(out, n);
    return decode_lit(lit, len, out, &n);
}

/* Whether s[0..n) is plain ASCII: no quote, backslash, control byte or byte >= 0x80. */
static bool plain_ascii(const char *s, size_t n)
{
    size_t i = 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (uint64_t w; n - i >= sizeof(w); i += sizeof(w)) {
        memcpy(&w, s + i, sizeof(w));
        if ((word_specials(w) | w) & 0x8080808080808080ull)
            return false;
    }
#endif
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80)
            return false;
    }
    return true;
}

int json_string_decoded_len(const char *lit, size_t len, size_t *out)
{
    /* the usual literal (keys, words) decodes to itself: measured without decoding */
    if (len >= 2 && lit[0] == '"' && lit[len - 1] == '"' && plain_ascii(lit + 1, len - 2)) {
        *out = len - 2;
        return 0;
    }
    return decode_lit(lit, len, NULL, out);
}

size_t json_decoded_max(const char *in, size_t len)
{
    size_t n = len;
    for (size_t i = 0; i < len; i++)
        n += (unsigned char)in[i] >= 0x80 ? 2 : 0;
    return n;
}

/* A literal of at most 15 digits with no fraction or exponent is exact in a double: computed
 * here without strtod (entry payloads are mostly ids and counts). -1 for any other literal. */
static int small_integer(const char *lit, size_t len, double *out)
{
    size_t i = lit[0] == '-';
    uint64_t v;
    if (decimal_read(lit + i, len - i, 15, &v) != len - i)
        return -1;
    *out = lit[0] == '-' ? -(double)v : (double)v; /* "-0" is -0, as JSON.parse reads it */
    return 0;
}

int json_number_parse(const char *lit, size_t len, double *out)
{
    if (len == 0 || number_end(lit, len, 0) != len)
        return -EINVAL;
    if (small_integer(lit, len, out) == 0)
        return 0;
    char small[65], *s = small;
    if (len >= sizeof small)
        s = xmalloc(len + 1);
    memcpy(s, lit, len);
    s[len] = '\0';
    *out = strtod(s, NULL);
    if (s != small)
        free(s);
    return 0;
}

/* ------------------------------------------------------------------ key order */

/* The key as an array index 0..2^32-2 (canonical decimal), or -1. */
static int64_t array_index(const json_key_t *k)
{
    uint64_t v;
    if (k->len == 0 || (k->p[0] == '0' && k->len > 1) ||
        decimal_read(k->p, k->len, 10, &v) != k->len)
        return -1;
    return v <= 4294967294 ? (int64_t)v : -1;
}

static bool same_key(const json_key_t *a, const json_key_t *b)
{
    return a->len == b->len && (a->len == 0 || !memcmp(a->p, b->p, a->len));
}

static int cmp_bytes(const json_key_t *a, const json_key_t *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->p, b->p, n) : 0;
    if (c)
        return c;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int cmp_seq(const json_key_t *a, const json_key_t *b)
{
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

typedef int (*key_cmp_fn)(const json_key_t *, const json_key_t *);

static void sift_down(json_key_t *k, size_t root, size_t n, key_cmp_fn cmp)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && cmp(&k[child], &k[child + 1]) < 0)
            child++;
        if (cmp(&k[root], &k[child]) >= 0)
            return;
        json_key_t t = k[root];
        k[root] = k[child];
        k[child] = t;
        root = child;
    }
}

/* In place and allocation-free; the comparators are total orders, so stability is moot. */
static void sort_keys(json_key_t *k, size_t n, key_cmp_fn cmp)
{
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            json_key_t t = k[i];
            size_t j = i;
            for (; j > 0 && cmp(&k[j - 1], &t) > 0; j--)
                k[j] = k[j - 1];
            k[j] = t;
        }
        return;
    }
    for (size_t i = n / 2; i-- > 0;)
        sift_down(k, i, n, cmp);
    for (size_t end = n - 1; end > 0; end--) {
        json_key_t t = k[0];
        k[0] = k[end];
        k[end] = t;
        sift_down(k, 0, end, cmp);
    }
}

/* True when a small key set is already in JS order: no duplicates, no array-index keys. */
static bool trivially_ordered(const json_key_t *k, size_t n)
{
    if (n > 8)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (array_index(&k[i]) >= 0)
            return false;
        for (size_t j = 0; j < i; j++)
            if (same_key(&k[i], &k[j]))
                return false;
    }
    return true;
}

size_t json_keys_order(json_key_t *keys, size_t n, bool drop_proto)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (drop_proto && keys[i].len == 9 && !memcmp(keys[i].p, "__proto__", 9))
            continue;
        keys[m] = keys[i];
        keys[m++].seq = i;
    }
    if (trivially_ordered(keys, m))
        return m;
    sort_keys(keys, m, cmp_bytes);
    size_t w = 0;
    for (size_t i = 0; i < m; i++) {
        if (w > 0 && same_key(&keys[w - 1], &keys[i])) {
            keys[w - 1].val_ref = keys[i].val_ref;
            continue;
        }
        keys[w++] = keys[i];
    }
    for (size_t i = 0; i < w; i++) {
        int64_t idx = array_index(&keys[i]);
        keys[i].seq = idx >= 0 ? (uint64_t)idx : ((uint64_t)1 << 32) + keys[i].seq;
    }
    sort_keys(keys, w, cmp_seq);
    return w;
}

int json_member_get(const char *in, size_t len, const char *key, json_span_t *out, buf_t *tmp)
{
    size_t pos = json_skip_ws(in, len, 0), klen = strlen(key);
    bool found = false;
    if (pos >= len || in[pos] != '{')
        return -ENOENT;
    pos = json_skip_ws(in, len, pos + 1);
    while (pos < len && in[pos] != '}') {
        size_t kend = json_value_end(in, len, pos);
        size_t v = json_skip_ws(in, len, json_skip_ws(in, len, kend) + 1);
        size_t vend = json_value_end(in, len, v);
        buf_reset(tmp);
        if (json_string_decode(in + pos, kend - pos, tmp) == 0 && tmp->len == klen &&
            memcmp(tmp->data ? tmp->data : "", key, klen) == 0) {
            out->p = in + v;
            out->len = vend - v;
            json_type_of(out->p, out->len, &out->type);
            found = true;
        }
        pos = json_skip_ws(in, len, vend);
        if (pos < len && in[pos] == ',')
            pos = json_skip_ws(in, len, pos + 1);
    }
    return found ? 0 : -ENOENT;
}
