/*
 * Unit tests for worker/net/peer_dir against a scripted Redis (tests/unit/redis_fake.c): the
 * announcement at once and on reconnect, lookups through GET then from the cache, what is refused
 * from Redis (names, garbage), and the address parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "tests/unit/redis_fake.h"
#include "worker/net/peer_dir.h"

typedef struct fx {
    uv_loop_t loop;
    fake_t *srv;
    cfg_t cfg;
    redis_topology_t *topo;
    peer_dir_t *pd;
    int sets, gets, answers;
    const struct sockaddr *last; /* the last lookup's answer (NULL: none) */
    struct sockaddr_storage got;
    int closed;
} fx_t;

static void on_cmd(fake_conn_t *fc, int argc, char **argv, size_t *lens, void *arg)
{
    (void)lens;
    fx_t *f = arg;
    if (fake_handshake(fc, argc, argv))
        return;
    if (strcasecmp(argv[0], "SET") == 0) {
        assert_int_equal(argc, 5);
        assert_string_equal(argv[1], "socket.io:server:AbC_");
        assert_string_equal(argv[2], "127.0.0.1:3005");
        assert_string_equal(argv[3], "PX");
        assert_string_equal(argv[4], "30000");
        f->sets++;
        fake_send(fc, "+OK\r\n");
    } else if (strcasecmp(argv[0], "GET") == 0) {
        f->gets++;
        if (strcmp(argv[1], "socket.io:server:peer") == 0)
            fake_send(fc, "$14\r\n127.0.0.2:3001\r\n");
        else if (strcmp(argv[1], "socket.io:server:six6") == 0)
            fake_send(fc, "$11\r\n[::1]:40001\r\n");
        else if (strcmp(argv[1], "socket.io:server:name") == 0)
            fake_send(fc, "$14\r\nevil.host:3000\r\n");
        else
            fake_send(fc, "$-1\r\n");
    } else {
        fake_send(fc, "-ERR unknown command\r\n");
    }
}

static const char *env_get(const char *name, void *arg)
{
    (void)arg;
    return strcmp(name, "PORT") == 0 ? "3005" : NULL;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    f->srv = fake_new(&f->loop, on_cmd, f);
    buf_t err;
    buf_init(&err);
    assert_int_equal(config_load(&f->cfg, env_get, NULL, &err), 0);
    buf_free(&err);
    f->topo = fake_topology(f->srv, &f->loop, 0);
    f->pd = peer_dir_new(f->topo, &f->cfg, "AbC_");
    *state = f;
    return 0;
}

static void on_closed(void *arg)
{
    ((fx_t *)arg)->closed++;
}

static bool closed_once(void *arg)
{
    return ((fx_t *)arg)->closed == 1;
}

static bool closed_twice(void *arg)
{
    return ((fx_t *)arg)->closed == 2;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    peer_dir_close(f->pd, on_closed, f);
    assert_true(fake_run_until(&f->loop, closed_once, f, FAKE_WAIT_MS));
    redis_topology_close(f->topo, on_closed, f);
    assert_true(fake_run_until(&f->loop, closed_twice, f, FAKE_WAIT_MS));
    fake_free(f->srv);
    assert_int_equal(fake_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static bool announced(void *arg)
{
    return ((fx_t *)arg)->sets >= 1;
}

static bool answered(void *arg)
{
    return ((fx_t *)arg)->answers >= 1;
}

static void on_found(const struct sockaddr *addr, void *arg)
{
    fx_t *f = arg;
    f->answers++;
    f->last = addr ? (const struct sockaddr *)&f->got : NULL;
    if (addr)
        memcpy(&f->got, addr, addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                          : sizeof(struct sockaddr_in));
}

#define WAIT(fn) assert_true(fake_run_until(&f->loop, fn, f, FAKE_WAIT_MS))

/* One lookup: 1 = from the cache, 0 = answered through GET. */
static int look(fx_t *f, const char *tag)
{
    struct sockaddr_storage out;
    f->answers = 0;
    int rc = peer_dir_lookup(f->pd, tag, &out, on_found, f);
    if (rc == 1)
        memcpy(&f->got, &out, sizeof(out));
    else if (rc == 0)
        WAIT(answered);
    return rc;
}

static void test_announces_and_resolves(void **state)
{
    fx_t *f = *state;
    WAIT(announced);
    assert_int_equal(look(f, "peer"), 0);
    assert_non_null(f->last);
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)&f->got;
    assert_int_equal(v4->sin_family, AF_INET);
    assert_int_equal(ntohs(v4->sin_port), 3001);
    assert_int_equal(ntohl(v4->sin_addr.s_addr), 0x7f000002);
    assert_int_equal(look(f, "peer"), 1); /* cached: no second GET */
    assert_int_equal(f->gets, 1);
    assert_int_equal(look(f, "six6"), 0);
    assert_int_equal(((struct sockaddr_in6 *)&f->got)->sin6_family, AF_INET6);
    /* unknown, or a name where an IP literal belongs: nothing */
    assert_int_equal(look(f, "none"), 0);
    assert_null(f->last);
    assert_int_equal(look(f, "name"), 0);
    assert_null(f->last);
    assert_int_equal(look(f, "name"), 0); /* a refusal is not cached */
}

static bool announced_again(void *arg)
{
    return ((fx_t *)arg)->sets >= 2;
}

static void test_announces_again_after_a_reconnect(void **state)
{
    fx_t *f = *state;
    WAIT(announced);
    fake_drop(fake_last(f->srv));
    WAIT(announced_again);
}

static void test_parse(void **state)
{
    (void)state;
    struct sockaddr_storage a;
    assert_int_equal(peer_dir_parse("10.0.0.5:3000", 13, &a), 0);
    assert_int_equal(peer_dir_parse("[fd00::5]:3000", 14, &a), 0);
    assert_int_equal(peer_dir_parse("localhost:3000", 14, &a), -EINVAL);
    assert_int_equal(peer_dir_parse("10.0.0.5", 8, &a), -EINVAL);
    assert_int_equal(peer_dir_parse("10.0.0.5:99999", 14, &a), -EINVAL);
    assert_int_equal(peer_dir_parse("", 0, &a), -EINVAL);
    assert_int_equal(peer_dir_parse("1.2.3.4:5\0x", 11, &a), -EINVAL);
}

int main(void)
{
    log_setup(LOG_LVL_ERROR, "test", -1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_announces_and_resolves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_announces_again_after_a_reconnect, setup, teardown),
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
