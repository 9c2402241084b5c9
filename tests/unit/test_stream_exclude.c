/* Unit tests for common/stream_exclude: the adapter's streams, streamio's keys, STREAM_EXCLUDE. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/stream_exclude.h"

typedef struct env {
    const char *kv[8][2];
} env_t;

static const char *table_get(const char *name, void *arg)
{
    env_t *e = arg;
    for (int i = 0; i < 8 && e->kv[i][0]; i++) {
        if (strcmp(e->kv[i][0], name) == 0)
            return e->kv[i][1];
    }
    return NULL;
}

static cfg_t cfg;

static void load(env_t *e)
{
    buf_t err;
    buf_init(&err);
    assert_int_equal(config_load(&cfg, table_get, e, &err), 0);
    buf_free(&err);
}

static bool excluded(const char *key)
{
    return stream_exclude_match(&cfg, key, strlen(key));
}

static void test_adapter_streams_are_never_rooms(void **state)
{
    (void)state;
    env_t e = {{{NULL, NULL}}};
    load(&e);
    assert_true(excluded("socket.io"));
    assert_true(excluded("socket.io-0"));
    assert_true(excluded("socket.io-17"));
    assert_true(excluded("socket.io--3")); /* JavaScript's % of a negative hash */
    assert_false(excluded("socket.io-"));
    assert_false(excluded("socket.io--"));
    assert_false(excluded("socket.io-1a"));
    assert_false(excluded("socket.iox"));
    assert_false(excluded("socket.i"));
    assert_false(excluded("chat.user.123"));
    assert_false(excluded(""));
}

static void test_configured_stream_name_too(void **state)
{
    (void)state;
    env_t e = {{{"SOCKETIO_REDIS_STREAM_NAME", "app-bus"}, {NULL, NULL}}};
    load(&e);
    assert_true(excluded("app-bus"));
    assert_true(excluded("app-bus-2"));
    assert_true(excluded("socket.io")); /* the Node default stays excluded */
    assert_false(excluded("app-bus.chat"));
}

static void test_streamio_keys(void **state)
{
    (void)state;
    env_t e = {{{"SOCKETIO_REDIS_KEY", "myapp"}, {NULL, NULL}}};
    load(&e);
    assert_true(excluded("myapp:recovery:abc"));
    assert_true(excluded("myapp:server:1"));
    assert_true(excluded("sio:session:KSUuAT4XIACpewmSAAAP"));
    assert_false(excluded("myapp"));
    assert_false(excluded("myapp.chat"));
    assert_false(excluded("sio:sessions"));
}

static void test_stream_exclude_globs(void **state)
{
    (void)state;
    env_t e = {{{"STREAM_EXCLUDE", " audit.* , *.tmp,job[0-9],x\\*y, [^a]b ,q?"}, {NULL, NULL}}};
    load(&e);
    assert_int_equal(cfg.stream_exclude.n, 6);
    assert_true(excluded("audit.log"));
    assert_true(excluded("audit."));
    assert_false(excluded("audit"));
    assert_true(excluded("a.b.tmp"));
    assert_true(excluded("job7"));
    assert_false(excluded("jobx"));
    assert_false(excluded("job77"));
    assert_true(excluded("x*y"));
    assert_false(excluded("xzy"));
    assert_true(excluded("cb"));
    assert_false(excluded("ab"));
    assert_true(excluded("qz"));
    assert_false(excluded("q"));
    assert_false(excluded("chat.user.1"));
}

static void test_glob_edge_cases(void **state)
{
    (void)state;
    env_t e = {{{"STREAM_EXCLUDE", "[z-a]1,[abc,a*a*a*a*a*a*b,[]]x,\\"}, {NULL, NULL}}};
    load(&e);
    assert_true(excluded("m1"));   /* a reversed range still covers the letters */
    assert_true(excluded("[abc")); /* no closing bracket: a literal '[' */
    assert_false(excluded("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac"));
    assert_true(excluded("aaaaaaab"));
    assert_true(excluded("]x")); /* ']' first in a class is a member */
    assert_true(excluded("\\"));
    /* binary-safe: a NUL inside a key is an ordinary byte */
    assert_true(stream_exclude_match(&cfg, "a\0a\0a\0a\0a\0a\0b", 13));
}

static void test_describe_names_everything(void **state)
{
    (void)state;
    env_t e = {
        {{"STREAM_EXCLUDE", "audit.*,tmp.*"}, {"SOCKETIO_REDIS_STREAM_NAME", "bus"}, {NULL, NULL}}};
    load(&e);
    buf_t out;
    buf_init(&out);
    stream_exclude_describe(&cfg, &out);
    assert_non_null(strstr(out.data, "socket.io and socket.io-<n>"));
    assert_non_null(strstr(out.data, "bus and bus-<n> (SOCKETIO_REDIS_STREAM_NAME)"));
    assert_non_null(strstr(out.data, "socket.io:* and sio:session:*"));
    assert_non_null(strstr(out.data, "STREAM_EXCLUDE audit.*, tmp.*"));
    assert_null(strchr(out.data, '\n'));
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adapter_streams_are_never_rooms),
        cmocka_unit_test(test_configured_stream_name_too),
        cmocka_unit_test(test_streamio_keys),
        cmocka_unit_test(test_stream_exclude_globs),
        cmocka_unit_test(test_glob_edge_cases),
        cmocka_unit_test(test_describe_names_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
