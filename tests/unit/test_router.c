/*
 * Unit tests for worker/http/router (matching, order, dispatch) and the table of
 * worker/http/ops_routes (which endpoints a worker serves).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "worker/http/ops_routes.h"
#include "worker/http/router.h"

typedef struct hit {
    int calls;
    const char *route; /* which route ran last */
    conn_t *c;
    const http_req_t *req;
} hit_t;

static hit_t hit;

static void route_a(conn_t *c, const http_req_t *req, void *arg)
{
    hit.calls++;
    hit.route = arg;
    hit.c = c;
    hit.req = req;
}

/* A request parsed from its text (a GET without a body). */
static http_req_t *request(const char *target)
{
    char text[256];
    snprintf(text, sizeof(text), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", target);
    http_req_t *r = http_req_new(0);
    size_t used;
    assert_true(http_req_feed(r, text, strlen(text), &used) & HTTP_REQ_DONE);
    return r;
}

static void test_match_rules(void **state)
{
    (void)state;
    /* a path ending in '/' is a prefix, also matched without the slash */
    assert_true(router_match("/socket.io/", "/socket.io/"));
    assert_true(router_match("/socket.io/", "/socket.io/x/y"));
    assert_true(router_match("/socket.io/", "/socket.io"));
    assert_false(router_match("/socket.io/", "/socket.iox"));
    assert_false(router_match("/socket.io/", "/socket"));
    assert_false(router_match("/socket.io/", "/"));
    /* any other path is exact */
    assert_true(router_match("/health", "/health"));
    assert_false(router_match("/health", "/health/"));
    assert_false(router_match("/health", "/healthz"));
    assert_false(router_match("/health", "/"));
    assert_false(router_match("", "/"));
    /* "/" is the prefix of every path */
    assert_true(router_match("/", "/anything"));
}

static void test_dispatch_in_order(void **state)
{
    (void)state;
    router_t *r = router_new();
    router_add(r, "/socket.io/", route_a, "eio");
    router_add(r, "/health", route_a, "health");
    router_add(r, "/socket.io/special", route_a, "shadowed"); /* the prefix comes first */
    conn_t *c = (conn_t *)&hit;                               /* never dereferenced */
    memset(&hit, 0, sizeof(hit));
    http_req_t *q = request("/socket.io/?EIO=4&transport=polling");
    assert_true(router_dispatch(r, c, q));
    assert_int_equal(hit.calls, 1);
    assert_string_equal(hit.route, "eio");
    assert_ptr_equal(hit.c, c);
    assert_ptr_equal(hit.req, q);
    http_req_free(q);
    q = request("/socket.io/special");
    assert_true(router_dispatch(r, c, q));
    assert_string_equal(hit.route, "eio");
    http_req_free(q);
    q = request("/health?x=1"); /* the query is not part of the path */
    assert_true(router_dispatch(r, c, q));
    assert_string_equal(hit.route, "health");
    http_req_free(q);
    q = request("/nope");
    assert_false(router_dispatch(r, c, q)); /* the server answers 404 */
    assert_int_equal(hit.calls, 3);
    http_req_free(q);
    assert_true(router_serves(r, "/socket.io"));
    assert_false(router_serves(r, "/metrics"));
    router_free(r);
    router_free(NULL);
}

static void test_ops_table(void **state)
{
    (void)state;
    router_t *r = router_new();
    ops_routes_config_t conf = {NULL, 0, false};
    ops_routes_t *o = ops_routes_new(r, &conf);
    assert_true(router_serves(r, "/health"));
    assert_true(router_serves(r, "/metrics"));
    assert_false(router_serves(r, "/debug")); /* only with STREAMIO_DEBUG_PAGE=1 */
    ops_routes_free(o);
    router_free(r);
    r = router_new();
    conf.debug_page = true;
    o = ops_routes_new(r, &conf);
    assert_true(router_serves(r, "/debug"));
    assert_false(router_serves(r, "/debug/"));
    ops_routes_free(o);
    router_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_rules),
        cmocka_unit_test(test_dispatch_in_order),
        cmocka_unit_test(test_ops_table),
    };
    return cmocka_run_group_tests_name("router", tests, NULL, NULL);
}
