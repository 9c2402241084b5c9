/* Unit tests for common/config: defaults, every kind of value, and the error line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "common/config.h"

typedef struct env {
    const char *kv[16][2];
} env_t;

static const char *table_get(const char *name, void *arg)
{
    env_t *e = arg;
    for (int i = 0; i < 16 && e->kv[i][0]; i++) {
        if (strcmp(e->kv[i][0], name) == 0)
            return e->kv[i][1];
    }
    return NULL;
}

static int load(cfg_t *cfg, env_t *e, buf_t *err)
{
    buf_init(err);
    return config_load(cfg, table_get, e, err);
}

static void test_defaults_match_the_seed(void **state)
{
    (void)state;
    env_t e = {{{NULL, NULL}}};
    cfg_t cfg;
    buf_t err;
    assert_int_equal(load(&cfg, &e, &err), 0);
    assert_string_equal(cfg.redis_host, "127.0.0.1");
    assert_int_equal(cfg.redis_port, 6379);
    assert_int_equal(cfg.redis_db, 0);
    assert_string_equal(cfg.host, "0.0.0.0");
    assert_int_equal(cfg.port, 3000);
    assert_int_equal(cfg.pool_size, 100);
    assert_int_equal(cfg.max_pools, 50);
    assert_int_equal(cfg.scan_count, 5000);
    assert_int_equal(cfg.max_streams_per_read, 100);
    assert_int_equal(cfg.max_concurrent_pools, 20);
    assert_int_equal(cfg.batch_delay_ms, 10);
    assert_int_equal(cfg.max_messages_batch, 100);
    assert_int_equal(cfg.max_rooms_per_socket, 100);
    assert_string_equal(cfg.stream_pattern, "*");
    assert_int_equal(cfg.adapter, CONFIG_ADAPTER_OFF);
    assert_int_equal(cfg.log_level, LOG_LVL_INFO);
    assert_true(cfg.cluster_workers >= 1);
    assert_int_equal(cfg.npriority, 0);
    buf_free(&err);
}

static void test_values_are_parsed(void **state)
{
    (void)state;
    env_t e = {{{"PORT", "4000"},
                {"CLUSTER_WORKERS", "3"},
                {"SOCKETIO_REDIS_ADAPTER", "true"},
                {"LOG_LEVEL", "DEBUG"},
                {"PRIORITY_STREAMS", " vip.1 ,vip.2,,vip.3 "},
                {"REDIS_PASSWORD", "s3cret"},
                {NULL, NULL}}};
    cfg_t cfg;
    buf_t err;
    assert_int_equal(load(&cfg, &e, &err), 0);
    assert_int_equal(cfg.port, 4000);
    assert_int_equal(cfg.cluster_workers, 3);
    assert_int_equal(cfg.adapter, CONFIG_ADAPTER_CLASSIC);
    assert_int_equal(cfg.log_level, LOG_LVL_DEBUG);
    assert_string_equal(cfg.redis_password, "s3cret");
    assert_int_equal(cfg.npriority, 3);
    assert_string_equal(cfg.priority[0], "vip.1");
    assert_string_equal(cfg.priority[2], "vip.3");
    assert_true(config_is_priority(&cfg, "vip.2", 5));
    assert_false(config_is_priority(&cfg, "vip", 3));
    buf_free(&err);
}

static void test_cluster_disabled_means_one_worker(void **state)
{
    (void)state;
    env_t e = {{{"CLUSTER_ENABLED", "false"}, {"CLUSTER_WORKERS", "8"}, {NULL, NULL}}};
    cfg_t cfg;
    buf_t err;
    assert_int_equal(load(&cfg, &e, &err), 0);
    assert_int_equal(cfg.cluster_workers, 1);
    buf_free(&err);
}

static void expect_error(const char *name, const char *value, const char *line)
{
    env_t e = {{{name, value}, {NULL, NULL}}};
    cfg_t cfg;
    buf_t err;
    assert_int_equal(load(&cfg, &e, &err), -EINVAL);
    assert_non_null(err.data);
    assert_string_equal(err.data, line);
    buf_free(&err);
}

static void test_bad_values_name_variable_and_value(void **state)
{
    (void)state;
    expect_error("PORT", "abc", "streamio: invalid PORT=\"abc\": expected an integer from 1 to 65535");
    expect_error("PORT", "70000",
                 "streamio: invalid PORT=\"70000\": expected an integer from 1 to 65535");
    expect_error("PORT", "12x", "streamio: invalid PORT=\"12x\": expected an integer from 1 to 65535");
    expect_error("CLUSTER_WORKERS", "0",
                 "streamio: invalid CLUSTER_WORKERS=\"0\": expected an integer from 1 to 256");
    expect_error("SOCKETIO_REDIS_ADAPTER", "maybe",
                 "streamio: invalid SOCKETIO_REDIS_ADAPTER=\"maybe\": expected false, true or "
                 "sharded");
    expect_error("LOG_LEVEL", "loud",
                 "streamio: invalid LOG_LEVEL=\"loud\": expected error, warn, info or debug");
    expect_error("CLUSTER_ENABLED", "perhaps",
                 "streamio: invalid CLUSTER_ENABLED=\"perhaps\": expected true or false");
}

static void test_stream_policy_variables(void **state)
{
    (void)state;
    env_t d = {{{NULL, NULL}}};
    cfg_t cfg;
    buf_t err;
    assert_int_equal(load(&cfg, &d, &err), 0);
    assert_false(cfg.stream_retain);
    assert_int_equal(cfg.stream_retain_ms, 120000);
    assert_int_equal(cfg.stream_inactive_ttl_ms, 3600000);
    assert_int_equal(cfg.stream_claim_idle_ms, 10000);
    assert_false(cfg.keyspace_events);
    buf_free(&err);

    env_t e = {{{"STREAM_DELETE_POLICY", "Retain"},
                {"STREAM_RETAIN_MS", "5000"},
                {"STREAM_INACTIVE_TTL", "1000"},
                {"STREAM_CLAIM_IDLE_MS", "250"},
                {"STREAM_KEYSPACE_EVENTS", "true"},
                {NULL, NULL}}};
    assert_int_equal(load(&cfg, &e, &err), 0);
    assert_true(cfg.stream_retain);
    assert_int_equal(cfg.stream_retain_ms, 5000);
    assert_int_equal(cfg.stream_inactive_ttl_ms, 1000);
    assert_int_equal(cfg.stream_claim_idle_ms, 250);
    assert_true(cfg.keyspace_events);
    buf_free(&err);

    env_t bad = {{{"STREAM_DELETE_POLICY", "keep"}, {NULL, NULL}}};
    assert_int_equal(load(&cfg, &bad, &err), -EINVAL);
    assert_string_equal(
        err.data, "streamio: invalid STREAM_DELETE_POLICY=\"keep\": expected delete or retain");
    buf_free(&err);

    env_t low = {{{"STREAM_INACTIVE_TTL", "999"}, {NULL, NULL}}};
    assert_int_equal(load(&cfg, &low, &err), -EINVAL);
    assert_non_null(strstr(err.data, "STREAM_INACTIVE_TTL=\"999\""));
    buf_free(&err);
}

static void test_sharded_is_refused_clearly(void **state)
{
    (void)state;
    env_t e = {{{"SOCKETIO_REDIS_ADAPTER", "sharded"}, {NULL, NULL}}};
    cfg_t cfg;
    buf_t err;
    assert_int_equal(load(&cfg, &e, &err), -EINVAL);
    assert_non_null(strstr(err.data, "SOCKETIO_REDIS_ADAPTER"));
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_match_the_seed),
        cmocka_unit_test(test_values_are_parsed),
        cmocka_unit_test(test_cluster_disabled_means_one_worker),
        cmocka_unit_test(test_bad_values_name_variable_and_value),
        cmocka_unit_test(test_sharded_is_refused_clearly),
        cmocka_unit_test(test_stream_policy_variables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
