/* router: see router.h; a short array, scanned in order (a worker has a handful of routes). */
#include "worker/http/router.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

typedef struct route {
    const char *path;
    route_fn fn;
    void *arg;
} route_t;

struct router {
    route_t *v;
    size_t n, cap;
};

router_t *router_new(void)
{
    return xcalloc(1, sizeof(router_t));
}

void router_free(router_t *r)
{
    if (!r)
        return;
    free(r->v);
    free(r);
}

void router_add(router_t *r, const char *path, route_fn fn, void *arg)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
    }
    r->v[r->n++] = (route_t){path, fn, arg};
}

bool router_match(const char *route, const char *path)
{
    size_t n = strlen(route);
    if (n == 0 || route[n - 1] != '/')
        return strcmp(route, path) == 0;
    return strncmp(path, route, n) == 0 || (strlen(path) == n - 1 && !strncmp(path, route, n - 1));
}

static const route_t *find(const router_t *r, const char *path)
{
    for (size_t i = 0; i < r->n; i++) {
        if (router_match(r->v[i].path, path))
            return &r->v[i];
    }
    return NULL;
}

bool router_serves(const router_t *r, const char *path)
{
    return find(r, path) != NULL;
}

bool router_dispatch(const router_t *r, conn_t *c, const http_req_t *req)
{
    const route_t *rt = find(r, http_req_path(req));
    if (rt)
        rt->fn(c, req, rt->arg);
    return rt != NULL;
}
