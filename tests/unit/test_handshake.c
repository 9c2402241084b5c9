/* Unit tests for worker/handshake (and http_req_query_each, which it reads the query with). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/proto/handshake.h"
#include "common/proto/http_req.h"

static http_req_t *parse(const char *raw)
{
    http_req_t *r;
    r = http_req_new(0);
    size_t used;
    assert_true(http_req_feed(r, raw, strlen(raw), &used) & HTTP_REQ_HEAD);
    return r;
}

static void test_websocket_handshake(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    http_req_t *r =
        parse("GET /socket.io/?EIO=4&transport=websocket&extra=q%201&t=a+b&t=2 HTTP/1.1\r\n"
              "Host: 127.0.0.1:3000\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
              "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              "User-Agent: x\r\n\r\n");
    struct sockaddr_storage peer = {0};
    struct sockaddr_in *in = (struct sockaddr_in *)&peer;
    in->sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &in->sin_addr);
    buf_t tmp;
    buf_init(&tmp);
    char *s = handshake_render(r, &peer, 1795953682123ull, &tmp);
    assert_non_null(s);
    assert_string_equal(
        s,
        "\"headers\":{\"host\":\"127.0.0.1:3000\",\"connection\":\"Upgrade\",\"upgrade\":"
        "\"websocket\",\"sec-websocket-version\":\"13\",\"sec-websocket-key\":"
        "\"dGhlIHNhbXBsZSBub25jZQ==\"},\"time\":\"Sun Nov 29 2026 12:01:22 GMT+0000 (UTC)\","
        "\"address\":\"127.0.0.1\",\"xdomain\":false,\"secure\":false,\"issued\":1795953682123,"
        "\"url\":\"/socket.io/?EIO=4&transport=websocket&extra=q%201&t=a+b&t=2\",\"query\":{"
        "\"EIO\":\"4\",\"transport\":\"websocket\",\"extra\":\"q 1\",\"t\":\"a b\",\"t\":\"2\"}");
    free(s);
    http_req_free(r);

    /* polling, an Origin, IPv6, quotes to escape, no query, unknown peer family */
    r = parse("GET /socket.io/ HTTP/1.1\r\nHost: h\r\nOrigin: http://a\"b\r\n\r\n");
    s = handshake_render(r, NULL, 0, &tmp);
    assert_non_null(s);
    assert_string_equal(s,
                        "\"headers\":{\"host\":\"h\",\"origin\":\"http://a\\\"b\"},\"time\":"
                        "\"Thu Jan 01 1970 00:00:00 GMT+0000 (UTC)\",\"address\":\"\",\"xdomain\":"
                        "true,\"secure\":false,\"issued\":0,\"url\":\"/socket.io/\",\"query\":{}");
    free(s);
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&peer;
    memset(&peer, 0, sizeof(peer));
    in6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::1", &in6->sin6_addr);
    s = handshake_render(r, &peer, 0, &tmp);
    assert_non_null(strstr(s, "\"address\":\"::1\""));
    free(s);
    http_req_free(r);
    buf_free(&tmp);
}

static int collect(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
    buf_t *b = arg;
    buf_printf(b, "[%.*s=%.*s]", (int)klen, k, (int)vlen, v);
    return klen == 4 && memcmp(k, "stop", 4) == 0 ? -ECANCELED : 0;
}

static void test_query_each(void **state)
{
    (void)state;
    buf_t tmp, out;
    buf_init(&tmp);
    buf_init(&out);
    http_req_t *r = parse("GET /x?a=1&&b&%63=%zz&=v&d=%41+ HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(http_req_query_each(r, &tmp, collect, &out), 0);
    assert_string_equal(out.data, "[a=1][b=][c=%zz][=v][d=A ]");
    http_req_free(r);
    buf_reset(&out);
    r = parse("GET /x?a=1&stop=1&z=2 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(http_req_query_each(r, &tmp, collect, &out), -ECANCELED);
    assert_string_equal(out.data, "[a=1][stop=1]");
    http_req_free(r);
    buf_free(&tmp);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_websocket_handshake),
        cmocka_unit_test(test_query_each),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
