/* handshake: see handshake.h. */
#include "common/proto/handshake.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
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

static void put_address(buf_t *out, const struct sockaddr_storage *peer)
{
    char ip[INET6_ADDRSTRLEN] = "";
    if (peer && peer->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, ip, sizeof(ip));
    else if (peer && peer->ss_family == AF_INET6)
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

char *handshake_render(const http_req_t *req, const struct sockaddr_storage *peer, uint64_t now_ms,
                       buf_t *tmp)
{
    buf_t out, pair;
    buf_init(&out);
    buf_init(&pair);
    buf_puts(&out, "\"headers\":{");
    size_t n = 0;
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        const char *v = http_req_header(req, kept[i].h);
        if (!v)
            continue;
        buf_printf(&out, "%s\"%s\":", n++ ? "," : "", kept[i].name);
        put_str(&out, v);
    }
    buf_puts(&out, "},\"time\":");
    put_time(&out, now_ms);
    buf_puts(&out, ",\"address\":");
    put_address(&out, peer);
    buf_printf(&out, ",\"xdomain\":%s,\"secure\":false,\"issued\":%" PRIu64 ",\"url\":",
               http_req_header(req, HTTP_REQ_ORIGIN) ? "true" : "false", now_ms);
    /* the url as the client sent it: path, then the raw query */
    buf_reset(tmp);
    buf_puts(tmp, http_req_path(req));
    if (*http_req_query_string(req))
        buf_printf(tmp, "?%s", http_req_query_string(req));
    json_write_string(&out, tmp->data, tmp->len);
    /* query: an object, so a repeated key keeps its last value (Node would make an array) */
    buf_puts(&out, ",\"query\":{");
    query_walk_t w = {&pair, 0};
    http_req_query_each(req, tmp, put_pair, &w); /* put_pair never stops the walk */
    buf_append(&out, pair.data, pair.len);
    buf_putc(&out, '}');
    char *s = xmemdup(out.data, out.len); /* exact size: kept per connection */
    buf_free(&out);
    buf_free(&pair);
    return s;
}
