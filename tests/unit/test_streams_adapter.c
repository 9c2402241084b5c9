/*
 * Unit tests for worker/cluster/streams_adapter against a scripted Redis (tests/unit/redis_fake.c)
 * and a fake host: where reading starts, entries delivered with their id as the offset, resuming
 * after a lost connection from the last id, what is skipped, the msgpack answer to a pub/sub
 * request, and the XADD of a stream entry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/mpack.h"
#include "common/redis/redis_topology.h"
#include "tests/unit/fake_host.h"
#include "tests/unit/redis_fake.h"
#include "worker/cluster/streams_adapter.h"

typedef struct fx {
    uv_loop_t loop;
    fake_t *srv;
    cfg_t cfg;
    stats_worker_t stats;
    host_fake_t host;
    redis_topology_t *topo;
    streams_adapter_t *sa;
    fake_conn_t *reader;  /* the connection blocked in XREAD */
    fake_conn_t *sub;     /* the subscribed one */
    char last_xread[128]; /* its last XREAD's id argument */
    int xreads, pins;
    const char *pin_reply; /* XREVRANGE's answer */
    char published[512];   /* PUBLISH channel + hex of the payload */
    int closed;
} fx_t;

static void on_cmd(fake_conn_t *fc, int argc, char **argv, size_t *lens, void *arg)
{
    fx_t *f = arg;
    if (fake_handshake(fc, argc, argv))
        return;
    if (strcasecmp(argv[0], "SUBSCRIBE") == 0) {
        f->sub = fc;
        fake_sub_confirm(fc, "subscribe", argv[1], 1);
    } else if (strcasecmp(argv[0], "XREVRANGE") == 0) {
        f->pins++;
        fake_send(fc, f->pin_reply);
    } else if (strcasecmp(argv[0], "XREAD") == 0) {
        f->xreads++;
        f->reader = fc;
        snprintf(f->last_xread, sizeof(f->last_xread), "%s %s", argv[6], argv[7]);
    } else if (argc == 3 && strcasecmp(argv[0], "CLIENT") == 0 &&
               strcasecmp(argv[1], "UNBLOCK") == 0) {
        fake_send(fc, ":1\r\n");
        if (f->reader)
            fake_send(f->reader, "*-1\r\n");
    } else if (strcasecmp(argv[0], "PUBLISH") == 0) {
        int n = snprintf(f->published, sizeof(f->published), "%s ", argv[1]);
        for (size_t i = 0; i < lens[2] && n < (int)sizeof(f->published) - 3; i++)
            n += snprintf(f->published + n, sizeof(f->published) - (size_t)n, "%02x",
                          (unsigned char)argv[2][i]);
        fake_send(fc, ":1\r\n");
    } else {
        fake_send(fc, "-ERR unknown command\r\n");
    }
}

static const char *env_get(const char *name, void *arg)
{
    (void)arg;
    if (strcmp(name, "SOCKETIO_REDIS_ADAPTER") == 0)
        return "streams";
    if (strcmp(name, "CONNECTION_RECOVERY") == 0)
        return "true";
    return NULL;
}

static const adapter_str_t nsps[] = {{"/", 1}, {"/admin", 6}};

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    f->srv = fake_new(&f->loop, on_cmd, f);
    f->pin_reply = "*1\r\n*2\r\n$3\r\n7-1\r\n*0\r\n"; /* the stream ends at 7-1 */
    buf_t err;
    buf_init(&err);
    assert_int_equal(config_load(&f->cfg, env_get, NULL, &err), 0);
    buf_free(&err);
    f->topo = fake_topology(f->srv, &f->loop, 500);
    adapter_host_t host = fake_host(&f->host, nsps, 2);
    f->host.each_sockets = 1;
    assert_int_equal(streams_adapter_new(&f->sa, f->topo, &f->cfg, &host, &f->stats), 0);
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
    streams_adapter_close(f->sa, on_closed, f);
    bool ok = fake_run_until(&f->loop, closed_once, f, 3000);
    for (size_t i = 0; !ok && i < fake_nseen(f->srv); i++)
        fprintf(stderr, "seen: %s\n", fake_seen(f->srv, i));
    assert_true(ok);
    redis_topology_close(f->topo, on_closed, f);
    assert_true(fake_run_until(&f->loop, closed_twice, f, FAKE_WAIT_MS));
    fake_free(f->srv);
    assert_int_equal(fake_loop_close(&f->loop), 0);
    buf_free(&f->host.last_text);
    buf_free(&f->host.last_frames);
    free(f);
    return 0;
}

static bool reading(void *arg)
{
    fx_t *f = arg;
    return f->xreads > 0 && streams_adapter_connected(f->sa);
}

#define WAIT(fn) assert_true(fake_run_until(&f->loop, fn, f, FAKE_WAIT_MS))

static int want_xreads;
static bool read_again(void *arg)
{
    return ((fx_t *)arg)->xreads >= want_xreads;
}

/* One XREAD answer with `n` entries of `key` (each given as its RESP [id, [fields...]]). */
static void answer(fx_t *f, const char *key, const char *entries, int n)
{
    buf_t b;
    buf_init(&b);
    buf_printf(&b, "*1\r\n*2\r\n$%zu\r\n%s\r\n*%d\r\n%s", strlen(key), key, n, entries);
    want_xreads = f->xreads + 1;
    fake_send(f->reader, b.data);
    WAIT(read_again);
    buf_free(&b);
}

static void entry(buf_t *b, const char *id, const char *uid, const char *nsp, const char *type,
                  const char *data)
{
    buf_printf(b, "*2\r\n$%zu\r\n%s\r\n*8\r\n$3\r\nuid\r\n$%zu\r\n%s\r\n$3\r\nnsp\r\n$%zu\r\n%s\r\n",
               strlen(id), id, strlen(uid), uid, strlen(nsp), nsp);
    buf_printf(b, "$4\r\ntype\r\n$%zu\r\n%s\r\n$4\r\ndata\r\n$%zu\r\n%s\r\n", strlen(type), type,
               strlen(data), data);
}

#define DATA(rooms)                                                                                \
    "{\"packet\":{\"type\":2,\"data\":[\"ev\",1]},\"opts\":{\"rooms\":[" rooms "],\"except\":[],"  \
    "\"flags\":{}}}"

static void test_reads_from_the_end_and_delivers_with_offsets(void **state)
{
    fx_t *f = *state;
    WAIT(reading);
    assert_int_equal(f->pins, 1);
    assert_string_equal(f->last_xread, "socket.io 7-1");
    buf_t b;
    buf_init(&b);
    entry(&b, "8-0", "node1", "/", "3", DATA("\"here\""));
    entry(&b, "8-1", "node1", "/admin", "3", DATA(""));
    entry(&b, "8-2", streams_adapter_uid(f->sa), "/", "3", DATA("")); /* our own: delivered too */
    answer(f, "socket.io", b.data, 3);
    assert_int_equal(f->host.broadcasts, 3);
    assert_string_equal(f->host.last_text.data, "42[\"ev\",1,\"8-2\"]");
    assert_string_equal(f->last_xread, "socket.io 8-2");
    buf_free(&b);
}

static void test_skips_and_drops(void **state)
{
    fx_t *f = *state;
    WAIT(reading);
    buf_t b;
    buf_init(&b);
    entry(&b, "9-0", "n", "/other", "3", DATA(""));      /* a namespace not served */
    entry(&b, "9-1", "n", "/", "3", "{\"packet\":7}"); /* malformed: dropped */
    entry(&b, "9-2", "n", "/", "2", "");               /* a type nobody acts on */
    buf_puts(&b, "*2\r\n$3\r\n9-3\r\n*2\r\n$3\r\nuid\r\n$1\r\nn\r\n"); /* no nsp */
    answer(f, "socket.io", b.data, 4);
    assert_int_equal(f->host.broadcasts, 0);
    assert_string_equal(f->last_xread, "socket.io 9-3");
    /* a socketsJoin through the stream */
    buf_reset(&b);
    entry(&b, "9-4", "n", "/", "4",
          "{\"opts\":{\"rooms\":[],\"except\":[],\"flags\":{}},\"rooms\":[\"joined\"]}");
    answer(f, "socket.io", b.data, 1);
    assert_int_equal(f->host.joins, 1);
    assert_string_equal(f->host.joined, "joined");
    buf_free(&b);
}

static bool reconnected(void *arg)
{
    fx_t *f = arg;
    return f->xreads >= want_xreads && fake_accepted(f->srv) >= 4;
}

static void test_resumes_after_a_lost_connection(void **state)
{
    fx_t *f = *state;
    WAIT(reading);
    buf_t b;
    buf_init(&b);
    entry(&b, "10-5", "n", "/", "3", DATA(""));
    answer(f, "socket.io", b.data, 1);
    want_xreads = f->xreads + 1;
    fake_drop(f->reader);
    WAIT(reconnected);
    assert_int_equal(f->pins, 1); /* not pinned again: it goes on from where it was */
    assert_string_equal(f->last_xread, "socket.io 10-5");
    buf_free(&b);
}

static bool published(void *arg)
{
    return ((fx_t *)arg)->published[0] != '\0';
}

static bool subscribed(void *arg)
{
    return ((fx_t *)arg)->sub != NULL;
}

static void test_answers_a_fetch_in_msgpack(void **state)
{
    fx_t *f = *state;
    WAIT(subscribed);
    WAIT(reading);
    /* encode({type:7,data:{opts:{rooms:["r"],except:[],flags:{}},requestId:"abc"},uid:"u1",
     * nsp:"/"}) with @msgpack/msgpack */
    static const char req[] = "84a47479706507a46461746182a46f70747383a5726f6f6d7391a172a66578636570"
                              "7490a5666c61677380a9726571756573744964a3616263a3756964a27531a36e73"
                              "70a12f";
    buf_t b;
    buf_init(&b);
    size_t n = (sizeof(req) - 1) / 2;
    buf_printf(&b, "*3\r\n$7\r\nmessage\r\n$12\r\nsocket.io#/#\r\n$%zu\r\n", n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(req + 2 * i, "%2x", &v);
        buf_putc(&b, (char)v);
    }
    buf_puts(&b, "\r\n");
    fake_send(f->sub, b.data);
    WAIT(published);
    /* encode({type:8,data:{requestId:"abc",sockets:[{id:...}]},uid:<ours>,nsp:"/"}) */
    buf_reset(&b);
    assert_int_equal(mpack_from_json(&b,
                                     "{\"type\":8,\"data\":{\"requestId\":\"abc\",\"sockets\":[{\"id\":"
                                     "\"AAAAAAAAAAAAAAAAAAAA\"}]},\"uid\":\"UUUUUUUUUUUUUUUU\","
                                     "\"nsp\":\"/\"}",
                                     114),
                     0);
    const char *uid = streams_adapter_uid(f->sa);
    char *u = memmem(b.data, b.len, "UUUUUUUUUUUUUUUU", 16);
    assert_non_null(u);
    memcpy(u, uid, 16);
    char want[512];
    int w = snprintf(want, sizeof(want), "socket.io#/#u1# ");
    for (size_t i = 0; i < b.len; i++)
        w += snprintf(want + w, sizeof(want) - (size_t)w, "%02x", (unsigned char)b.data[i]);
    assert_string_equal(f->published, want);
    buf_free(&b);
}

typedef struct sent {
    int argc;
    char line[1024];
} sent_t;

static int capture(int argc, const char **argv, const size_t *lens, void *arg)
{
    sent_t *s = arg;
    s->argc = argc;
    int n = 0;
    for (int i = 0; i < argc; i++)
        n += snprintf(s->line + n, sizeof(s->line) - (size_t)n, "%s%.*s", i ? " " : "",
                      (int)lens[i], argv[i]);
    return 0;
}

static void test_publish_appends_to_the_stream(void **state)
{
    fx_t *f = *state;
    sent_t s = {0};
    static const char data[] = "[\"room:message\",{\"from\":\"service\"}]";
    assert_int_equal(streams_adapter_publish(f->sa, capture, &s, "chat.1", 6, data,
                                             sizeof(data) - 1),
                     0);
    char want[1024];
    snprintf(want, sizeof(want),
             "XADD socket.io MAXLEN ~ 10000 * uid %s nsp / type 3 data "
             "{\"packet\":{\"type\":2,\"data\":[\"room:message\",{\"from\":\"service\"}]},"
             "\"opts\":{\"rooms\":[\"chat.1\"],\"except\":[],\"flags\":{}}}",
             streams_adapter_uid(f->sa));
    assert_string_equal(s.line, want);
    assert_int_equal(streams_adapter_publish(f->sa, capture, &s, "x", 1, "[1,", 3), -EINVAL);
}

int main(void)
{
    log_setup(LOG_LVL_ERROR, "test", -1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reads_from_the_end_and_delivers_with_offsets, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_skips_and_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resumes_after_a_lost_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answers_a_fetch_in_msgpack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_appends_to_the_stream, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
