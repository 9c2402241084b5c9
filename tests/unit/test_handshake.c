/* Unit tests for common/proto/handshake (and the query walks it reads the query with). */
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

/* The members as a fetchSockets answer shows them: captured, then written. */
static char *render(const http_req_t *r, const struct sockaddr_storage *peer, uint64_t now_ms)
{
    char *rec = handshake_capture(r, now_ms);
    buf_t out;
    buf_init(&out);
    handshake_write(&out, rec, (const struct sockaddr *)peer);
    free(rec);
    char *s = strdup(out.data);
    buf_free(&out);
    return s;
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
    char *s = render(r, &peer, 1795953682123ull);
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
    s = render(r, NULL, 0);
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
    s = render(r, &peer, 0);
    assert_non_null(strstr(s, "\"address\":\"::1\""));
    free(s);
    http_req_free(r);
}

/* The record outlives its request and is much smaller than the JSON it stands for. */
static void test_record_outlives_request(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    http_req_t *r = parse("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: h:1\r\n"
                          "Origin: http://o\r\nAccept-Encoding: gzip\r\nUpgrade: websocket\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    char *rec = handshake_capture(r, 86400000);
    http_req_free(r);
    buf_t out;
    buf_init(&out);
    handshake_write(&out, rec, NULL);
    assert_string_equal(
        out.data,
        "\"headers\":{\"host\":\"h:1\",\"upgrade\":\"websocket\",\"sec-websocket-key\":"
        "\"dGhlIHNhbXBsZSBub25jZQ==\",\"origin\":\"http://o\",\"accept-encoding\":\"gzip\"},"
        "\"time\":\"Fri Jan 02 1970 00:00:00 GMT+0000 (UTC)\",\"address\":\"\",\"xdomain\":true,"
        "\"secure\":false,\"issued\":86400000,\"url\":\"/socket.io/?EIO=4&transport=websocket\","
        "\"query\":{\"EIO\":\"4\",\"transport\":\"websocket\"}");
    /* 8 + 1 + "h:1" "websocket" key origin "gzip" path query, each with its NUL */
    size_t expect = 9 + 4 + 10 + 25 + 9 + 5 + 12 + 26;
    const char *p = rec + 9;
    for (int i = 0; i < 7; i++)
        p += strlen(p) + 1;
    assert_int_equal((size_t)(p - rec), expect);
    assert_true(expect * 2 < out.len);
    buf_free(&out);
    free(rec);
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
    /* the same walk over a raw query string */
    buf_reset(&out);
    assert_int_equal(http_query_each("a=1&&b&%63=%zz&=v&d=%41+", &tmp, collect, &out), 0);
    assert_string_equal(out.data, "[a=1][b=][c=%zz][=v][d=A ]");
    buf_reset(&out);
    assert_int_equal(http_query_each("", &tmp, collect, &out), 0);
    assert_int_equal(out.len, 0);
    buf_free(&tmp);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_websocket_handshake),
        cmocka_unit_test(test_record_outlives_request),
        cmocka_unit_test(test_query_each),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
