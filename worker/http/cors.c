/* cors: see cors.h. */
#include "worker/http/cors.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xalloc.h"

struct cors {
    char *origins; /* NULL: off */
};

cors_t *cors_new(const char *origins)
{
    cors_t *c = xcalloc(1, sizeof(*c));
    if (origins && origins[0])
        c->origins = xstrdup(origins);
    return c;
}

void cors_free(cors_t *c)
{
    if (!c)
        return;
    free(c->origins);
    free(c);
}

bool cors_enabled(const cors_t *c)
{
    return c->origins != NULL;
}

/* The list is "*" or names `origin` (false when CORS is off). */
static bool listed(const cors_t *c, const char *origin)
{
    if (!c->origins)
        return false;
    bool ok = strcmp(c->origins, "*") == 0;
    size_t olen = strlen(origin);
    for (const char *p = c->origins; !ok && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        ok = n == olen && memcmp(p, origin, n) == 0;
        p = e ? e + 1 : p + n;
    }
    return ok;
}

void cors_headers(const cors_t *c, const http_req_t *req, buf_t *out)
{
    const char *origin = http_req_header(req, HTTP_REQ_ORIGIN);
    if (!c->origins || !origin || !listed(c, origin) || strpbrk(origin, "\r\n"))
        return;
    buf_printf(out,
               "Access-Control-Allow-Origin: %s\r\nAccess-Control-Allow-Credentials: true\r\n"
               "Vary: Origin\r\n",
               origin);
}

bool cors_same_origin(const http_req_t *req, const char *origin)
{
    const char *host = http_req_header(req, HTTP_REQ_HOST);
    const char *rest = strncmp(origin, "http://", 7) == 0    ? origin + 7
                       : strncmp(origin, "https://", 8) == 0 ? origin + 8
                                                             : NULL;
    return host && rest && strcasecmp(rest, host) == 0;
}

bool cors_ws_allowed(const cors_t *c, const http_req_t *req)
{
    const char *origin = http_req_header(req, HTTP_REQ_ORIGIN);
    return !c->origins || !origin || listed(c, origin) || cors_same_origin(req, origin);
}
