/* stream_exclude: see stream_exclude.h. */
#include "common/stream_exclude.h"

#include <stdint.h>
#include <string.h>

/* One pattern character (or class, or escape) at p[*i] against c; *i moves past it. */
static bool match_one(const char *p, size_t plen, size_t *i, unsigned char c)
{
    size_t at = *i;
    if (p[at] == '?') {
        *i = at + 1;
        return true;
    }
    if (p[at] == '\\' && at + 1 < plen) {
        *i = at + 2;
        return (unsigned char)p[at + 1] == c;
    }
    if (p[at] != '[') {
        *i = at + 1;
        return (unsigned char)p[at] == c;
    }
    size_t j = at + 1;
    bool negate = j < plen && (p[j] == '^' || p[j] == '!');
    if (negate)
        j++;
    bool hit = false;
    for (bool first = true; j < plen && (first || p[j] != ']'); first = false) {
        if (p[j] == '\\' && j + 1 < plen)
            j++;
        unsigned char lo = (unsigned char)p[j], hi = lo;
        if (j + 2 < plen && p[j + 1] == '-' && p[j + 2] != ']') {
            hi = (unsigned char)p[j + 2];
            j += 2;
            if (lo > hi) {
                unsigned char t = lo;
                lo = hi;
                hi = t;
            }
        }
        hit = hit || (c >= lo && c <= hi);
        j++;
    }
    if (j >= plen) { /* no closing bracket: the '[' is an ordinary character */
        *i = at + 1;
        return c == '[';
    }
    *i = j + 1;
    return hit != negate;
}

/* Redis glob over binary-safe strings; a '*' backtracks iteratively, so no pattern is costly. */
static bool glob_match(const char *p, size_t plen, const char *s, size_t slen)
{
    size_t pi = 0, si = 0, star = SIZE_MAX, star_s = 0;
    while (si < slen) {
        if (pi < plen && p[pi] == '*') {
            star = ++pi;
            star_s = si;
            continue;
        }
        size_t next = pi;
        if (pi < plen && match_one(p, plen, &next, (unsigned char)s[si])) {
            pi = next;
            si++;
            continue;
        }
        if (star == SIZE_MAX)
            return false;
        pi = star;
        si = ++star_s;
    }
    while (pi < plen && p[pi] == '*')
        pi++;
    return pi == plen;
}

/* `name` or `name-<n>`, n an optionally negative decimal (the adapter's streamCount shards). */
static bool adapter_stream(const char *name, const char *key, size_t len)
{
    size_t n = strlen(name);
    if (len < n || memcmp(key, name, n) != 0)
        return false;
    if (len == n)
        return true;
    size_t i = n;
    if (key[i++] != '-')
        return false;
    if (i < len && key[i] == '-')
        i++;
    if (i == len)
        return false;
    for (; i < len; i++) {
        if (key[i] < '0' || key[i] > '9')
            return false;
    }
    return true;
}

static bool has_prefix(const char *key, size_t len, const char *prefix, size_t plen)
{
    return len >= plen && memcmp(key, prefix, plen) == 0;
}

bool stream_exclude_match(const cfg_t *cfg, const char *key, size_t len)
{
    if (adapter_stream(STREAM_EXCLUDE_ADAPTER_STREAM, key, len) ||
        adapter_stream(cfg->stream_name, key, len))
        return true;
    size_t klen = strlen(cfg->redis_key);
    if (has_prefix(key, len, cfg->redis_key, klen) && len > klen && key[klen] == ':')
        return true;
    if (has_prefix(key, len, STREAM_EXCLUDE_SESSION_PREFIX, strlen(STREAM_EXCLUDE_SESSION_PREFIX)))
        return true;
    for (size_t i = 0; i < cfg->stream_exclude.n; i++) {
        const char *g = cfg->stream_exclude.item[i];
        if (glob_match(g, strlen(g), key, len))
            return true;
    }
    return false;
}

void stream_exclude_describe(const cfg_t *cfg, buf_t *out)
{
    buf_puts(out, STREAM_EXCLUDE_ADAPTER_STREAM " and " STREAM_EXCLUDE_ADAPTER_STREAM
                                                "-<n> (the Redis streams adapter's)");
    if (strcmp(cfg->stream_name, STREAM_EXCLUDE_ADAPTER_STREAM) != 0)
        buf_printf(out, ", %s and %s-<n> (SOCKETIO_REDIS_STREAM_NAME)", cfg->stream_name,
                   cfg->stream_name);
    buf_printf(out, ", %s:* and " STREAM_EXCLUDE_SESSION_PREFIX "* (streamio's own keys)",
               cfg->redis_key);
    for (size_t i = 0; i < cfg->stream_exclude.n; i++)
        buf_printf(out, "%s%s", i ? ", " : ", STREAM_EXCLUDE ", cfg->stream_exclude.item[i]);
}
