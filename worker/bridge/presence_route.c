/* presence_route: see presence_route.h. */
#include "worker/bridge/presence_route.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/bridge/presence_query.h"
#include "common/bridge/presence_store.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/xalloc.h"
#include "worker/http/http_server.h"

#define PREFIX "/presence/"

struct presence_route {
    bridge_redis_t redis;
    const cfg_t *cfg;
    buf_t prefix, room, body;
};

/* A query in flight for connection c (NULL once it closed). */
typedef struct pending {
    presence_route_t *pr;
    conn_t *c;
} pending_t;

static void reply(presence_route_t *pr, conn_t *c, int status, const char *headers,
                  const char *message)
{
    buf_reset(&pr->body);
    buf_puts(&pr->body, "{\"message\":");
    json_write_string(&pr->body, message, strlen(message));
    buf_putc(&pr->body, '}');
    http_respond(c, status, "application/json", headers, pr->body.data, pr->body.len);
}

/* 0 when the request carries the admin token; else the answer was given. */
static int authorized(presence_route_t *pr, conn_t *c, const http_req_t *req)
{
    const char *want = pr->cfg->admin_token;
    const char *h = http_req_header(req, HTTP_REQ_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !h[7]) {
        reply(pr, c, 401, "WWW-Authenticate: Bearer realm=\"streamio\"\r\n",
              "Authorization: Bearer <ADMIN_TOKEN> required");
        return -1;
    }
    const char *got = h + 7;
    while (*got == ' ')
        got++;
    size_t n = strlen(want), m = strlen(got);
    if (!want[0] || n != m || CRYPTO_memcmp(want, got, n) != 0) {
        reply(pr, c, 403, NULL,
              want[0] ? "Invalid admin token" : "ADMIN_TOKEN is not set on this server");
        return -1;
    }
    return 0;
}

static void on_conn_closed(conn_t *c, void *ud)
{
    (void)c;
    ((pending_t *)ud)->c = NULL;
}

static void on_answer(void *arg, int rc, const buf_t *json)
{
    pending_t *p = arg;
    if (p->c) {
        conn_set_owner(p->c, NULL, NULL);
        if (rc == 0)
            http_respond_gzip(p->c, 200, "application/json", NULL, json->data, json->len);
        else
            reply(p->pr, p->c, 503, NULL, json->data ? json->data : "Redis cannot answer");
    }
    free(p);
}

static void route(conn_t *c, const http_req_t *req, void *arg)
{
    presence_route_t *pr = arg;
    const char *method = http_req_method(req);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        reply(pr, c, 405, "Allow: GET, HEAD\r\n", "Method not allowed");
        return;
    }
    if (authorized(pr, c, req))
        return;
    if (!pr->cfg->presence || !pr->redis.command) {
        reply(pr, c, 404, NULL, "Presence is off on this server (PRESENCE=false)");
        return;
    }
    const char *path = http_req_path(req);
    size_t plen = strlen(path);
    if (plen <= strlen(PREFIX)) {
        reply(pr, c, 404, NULL, "GET /presence/<room>, the room percent-encoded");
        return;
    }
    http_req_path_decode(path + strlen(PREFIX), plen - strlen(PREFIX), &pr->room);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t wall = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    pending_t *p = xcalloc(1, sizeof(*p));
    p->pr = pr;
    p->c = c;
    http_defer(c);
    conn_set_owner(c, on_conn_closed, p);
    if (presence_query(&pr->redis, pr->prefix.data, pr->room.data, pr->room.len, wall,
                       (uint64_t)pr->cfg->presence_ttl_ms, on_answer, p) != 0) {
        conn_set_owner(c, NULL, NULL);
        free(p);
        reply(pr, c, 503, NULL, "Redis cannot be reached now");
    }
}

presence_route_t *presence_route_new(router_t *r, const bridge_redis_t *redis, const cfg_t *cfg)
{
    presence_route_t *pr = xcalloc(1, sizeof(*pr));
    pr->redis = *redis;
    pr->cfg = cfg;
    buf_init(&pr->prefix);
    buf_init(&pr->room);
    buf_init(&pr->body);
    presence_prefix(&pr->prefix, cfg->redis_key);
    router_add(r, PREFIX, route, pr);
    return pr;
}

void presence_route_free(presence_route_t *pr)
{
    if (!pr)
        return;
    buf_free(&pr->prefix);
    buf_free(&pr->room);
    buf_free(&pr->body);
    free(pr);
}
