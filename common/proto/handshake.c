/* handshake: see handshake.h. */
#include "common/proto/handshake.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json.h"
#include "common/xalloc.h"

static const struct {
    http_req_hdr_t h;
    const char *name;
} kept[] = {
    {HTTP_REQ_HOST, "host"},
    {HTTP_REQ_CONNECTION, "connection"},
    {HTTP_REQ_UPGRADE, "upgrade"},
    {HTTP_REQ_WS_VERSION, "sec-websocket-version"},
    {HTTP_REQ_WS_KEY, "sec-websocket-key"},
    {HTTP_REQ_ORIGIN, "origin"},
    {HTTP_REQ_ACCEPT_ENCODING, "accept-encoding"},
};

static void put_str(buf_t *out, const char *s)
{
    json_write_string(out, s, strlen(s));
}

/* Node's `new Date() + ""` in the server's local time: "Mon Nov 23 2026 12:01:22 GMT+0000
 * (UTC)" (Node spells the zone's long name; the abbreviation is what libc has). */
static void put_time(buf_t *out, uint64_t now_ms)
{
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    char s[96];
    if (!localtime_r(&t, &tm) || !strftime(s, sizeof(s), "%a %b %d %Y %H:%M:%S GMT%z (%Z)", &tm))
        s[0] = '\0';
    put_str(out, s);
}

static void put_address(buf_t *out, const struct sockaddr *peer)
{
    char ip[INET6_ADDRSTRLEN] = "";
    if (peer && peer->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, ip, sizeof(ip));
    else if (peer && peer->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr, ip, sizeof(ip));
    put_str(out, ip);
}

typedef struct query_walk {
    buf_t *out;
    size_t n;
} query_walk_t;

static int put_pair(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
    query_walk_t *w = arg;
    if (w->n++)
        buf_putc(w->out, ',');
    json_write_string(w->out, k, klen);
    buf_putc(w->out, ':');
    json_write_string(w->out, v, vlen);
    return 0;
}

#define NKEPT (sizeof(kept) / sizeof(kept[0]))

/* The record: issued ms (8 bytes, host order), a byte with bit i set when kept[i] came, the
 * values of those that came, the path and the raw query, each NUL-terminated. */
char *handshake_capture(const http_req_t *req, uint64_t now_ms)
{
    const char *v[NKEPT];
    const char *path = http_req_path(req), *query = http_req_query_string(req);
    size_t len = sizeof(now_ms) + 1 + strlen(path) + 1 + strlen(query) + 1;
    uint8_t came = 0;
    for (size_t i = 0; i < NKEPT; i++) {
        v[i] = http_req_header(req, kept[i].h);
        if (v[i]) {
            came |= (uint8_t)(1u << i);
            len += strlen(v[i]) + 1;
        }
    }
    char *rec = xmalloc(len), *p = rec;
    memcpy(p, &now_ms, sizeof(now_ms));
    p += sizeof(now_ms);
    *p++ = (char)came;
    for (size_t i = 0; i < NKEPT; i++) {
        if (v[i])
            p = stpcpy(p, v[i]) + 1;
    }
    p = stpcpy(p, path) + 1;
    strcpy(p, query);
    return rec;
}

void handshake_write(buf_t *out, const char *rec, const struct sockaddr *peer)
{
    uint64_t now_ms;
    memcpy(&now_ms, rec, sizeof(now_ms));
    uint8_t came = (uint8_t)rec[sizeof(now_ms)];
    const char *p = rec + sizeof(now_ms) + 1;
    bool origin = false;
    buf_puts(out, "\"headers\":{");
    size_t n = 0;
    for (size_t i = 0; i < NKEPT; i++) {
        if (!(came & (1u << i)))
            continue;
        buf_printf(out, "%s\"%s\":", n++ ? "," : "", kept[i].name);
        put_str(out, p);
        p += strlen(p) + 1;
        origin |= kept[i].h == HTTP_REQ_ORIGIN;
    }
    const char *path = p, *query = p + strlen(p) + 1;
    buf_puts(out, "},\"time\":");
    put_time(out, now_ms);
    buf_puts(out, ",\"address\":");
    put_address(out, peer);
    buf_printf(out, ",\"xdomain\":%s,\"secure\":false,\"issued\":%" PRIu64 ",\"url\":",
               origin ? "true" : "false", now_ms);
    /* the url as the client sent it: path, then the raw query */
    buf_t tmp, pair;
    buf_init(&tmp);
    buf_init(&pair);
    buf_puts(&tmp, path);
    if (*query)
        buf_printf(&tmp, "?%s", query);
    json_write_string(out, tmp.data, tmp.len);
    /* query: an object, so a repeated key keeps its last value (Node would make an array) */
    buf_puts(out, ",\"query\":{");
    query_walk_t w = {&pair, 0};
    http_query_each(query, &tmp, put_pair, &w); /* put_pair never stops the walk */
    buf_append(out, pair.data, pair.len);
    buf_putc(out, '}');
    buf_free(&tmp);
    buf_free(&pair);
}
