/* redis_url: see redis_url.h. Strict on purpose: a URL we would read differently from Node's
 * clients (a query string, an unbracketed IPv6 address) is a startup error, not a guess. */
#include "common/redis_url.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/decimal.h"
#include "common/hex.h"

#define DEFAULT_PORT 6379

static int fail(const char **why, const char *what)
{
    *why = what;
    return -EINVAL;
}

/* Percent-decodes n bytes into out (cap bytes with the NUL); a decoded NUL is refused. */
static int decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -EINVAL;
            int h = hex_digit(s[i + 1]), l = hex_digit(s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0))
                return -EINVAL;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (o + 1 >= cap)
            return -EINVAL;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

int redis_parse_uint(const char *s, size_t n, unsigned max, unsigned *out)
{
    uint64_t v;
    if (n == 0 || decimal_read(s, n, 10, &v) != n || v > max)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

/* 1..65535 */
static int parse_port(const char *s, size_t n, int *port)
{
    unsigned v;
    if (redis_parse_uint(s, n, 65535, &v) || v == 0)
        return -EINVAL;
    *port = (int)v;
    return 0;
}

static int host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

static int v6_char(char c)
{
    return hex_digit(c) >= 0 || c == ':' || c == '.';
}

int redis_addr_parse(const char *s, size_t n, int default_port, redis_addr_t *out, const char **why)
{
    const char *host = s, *rest;
    size_t hlen;
    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return fail(why, "a closing ']' after an IPv6 address");
        host = s + 1;
        hlen = (size_t)(close - host);
        if (hlen == 0)
            return fail(why, "an IPv6 address inside the brackets");
        for (size_t i = 0; i < hlen; i++) {
            if (!v6_char(host[i]))
                return fail(why, "an IPv6 address of hex digits and ':' inside the brackets");
        }
        rest = close + 1;
    } else {
        const char *colon = memchr(s, ':', n);
        hlen = colon ? (size_t)(colon - s) : n;
        if (colon && memchr(colon + 1, ':', n - hlen - 1))
            return fail(why, "an IPv6 address in brackets, e.g. [::1]:6379");
        if (hlen == 0)
            return fail(why, "a host name or address");
        for (size_t i = 0; i < hlen; i++) {
            if (!host_char(s[i]))
                return fail(why, "a host of letters, digits, '.', '-' and '_'");
        }
        rest = s + hlen;
    }
    if (hlen >= sizeof(out->host))
        return fail(why, "a host name shorter than 256 bytes");
    size_t rlen = n - (size_t)(rest - s);
    int port = default_port;
    if (rlen) {
        if (rest[0] != ':' || parse_port(rest + 1, rlen - 1, &port))
            return fail(why, "host:port with a port from 1 to 65535");
    }
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->port = port;
    return 0;
}

int redis_addr_parse_list(const char *s, int default_port, redis_addr_t *out, size_t cap, size_t *n,
                          const char **why)
{
    *n = 0;
    for (const char *p = s;;) {
        const char *e = strchr(p, ',');
        const char *end = e ? e : p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (p == end)
            return fail(why, "a comma-separated list of host:port, with no empty item");
        if (*n == cap)
            return fail(why, "at most 16 host:port items");
        int rc = redis_addr_parse(p, (size_t)(end - p), default_port, &out[*n], why);
        if (rc)
            return rc;
        ++*n;
        if (!e)
            return 0;
        p = e + 1;
    }
}

/* The userinfo part (before the last '@' of the authority): user[:password]. */
static int parse_userinfo(const char *s, size_t n, redis_url_t *out, const char **why)
{
    const char *colon = memchr(s, ':', n);
    size_t ulen = colon ? (size_t)(colon - s) : n;
    if (decode(s, ulen, out->username, sizeof(out->username)))
        return fail(why, "a user name shorter than 256 bytes, with valid %XX escapes");
    if (colon && decode(colon + 1, n - ulen - 1, out->password, sizeof(out->password)))
        return fail(why, "a password shorter than 256 bytes, with valid %XX escapes");
    return 0;
}

static int parse_db(const char *s, size_t n, int *db)
{
    unsigned v;
    if (redis_parse_uint(s, n, 65535, &v))
        return -EINVAL;
    *db = (int)v;
    return 0;
}

int redis_url_parse(const char *s, redis_url_t *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    out->db = -1;
    for (const char *c = s; *c; c++) {
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return fail(why, "a URL without blanks or control characters");
    }
    const char *sep = strstr(s, "://");
    size_t slen = sep ? (size_t)(sep - s) : 0;
    if (sep && slen == 5 && strncasecmp(s, "redis", 5) == 0)
        out->tls = false;
    else if (sep && slen == 6 && strncasecmp(s, "rediss", 6) == 0)
        out->tls = true;
    else
        return fail(why, "redis://[user[:password]@]host[:port][/db] or rediss://...");
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *tail = auth + alen;
    if (*tail == '?' || *tail == '#' || (*tail == '/' && strpbrk(tail, "?#")))
        return fail(why, "no query string or fragment after the URL's path");
    const char *at = NULL;
    for (const char *c = auth; c < tail; c++) {
        if (*c == '@')
            at = c;
    }
    if (at) {
        int rc = parse_userinfo(auth, (size_t)(at - auth), out, why);
        if (rc)
            return rc;
        auth = at + 1;
        alen = (size_t)(tail - auth);
    }
    int rc = redis_addr_parse(auth, alen, DEFAULT_PORT, &out->addr, why);
    if (rc)
        return rc;
    if (*tail == '/' && tail[1] && parse_db(tail + 1, strlen(tail + 1), &out->db))
        return fail(why, "a database number from 0 to 65535 as the URL's path (/0)");
    return 0;
}

void redis_addr_format(const redis_addr_t *a, char *out, size_t cap)
{
    if (strchr(a->host, ':'))
        snprintf(out, cap, "[%s]:%d", a->host, a->port);
    else
        snprintf(out, cap, "%s:%d", a->host, a->port);
}

void redis_url_redact(const char *s, char *out, size_t cap)
{
    if (cap == 0)
        return;
    /* the last '@' anywhere: a password with an unescaped '/' or '?' must not leak either */
    const char *sep = strstr(s, "://");
    const char *auth = sep ? sep + 3 : s;
    const char *at = strrchr(auth, '@');
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon) {
        snprintf(out, cap, "%s", s);
        return;
    }
    snprintf(out, cap, "%.*s:***%s", (int)(colon - s), s, at);
}
