/* Unit tests for the Redis rows of common/config (REDIS_URL, REDIS_TLS*, REDIS_CLUSTER_NODES,
 * REDIS_SENTINELS...) and redis_topology_opts_from_cfg: values, conflicts, and error lines that
 * name the variable and never show a password. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/config.h"
#include "common/redis/redis_topology.h"

static cfg_t cfg; /* large: not on the stack */

typedef struct env {
    const char *kv[16][2];
} env_t;

/* Loads through the real entry point, config_load_env, from an environment holding e only. */
static int load(const env_t *e, buf_t *err)
{
    clearenv();
    for (int i = 0; i < 16 && e->kv[i][0]; i++)
        setenv(e->kv[i][0], e->kv[i][1], 1);
    buf_init(err);
    return config_load_env(&cfg, err);
}

static void ok(env_t *e)
{
    buf_t err;
    int rc = load(e, &err);
    if (rc)
        fail_msg("refused: %s", err.data);
    buf_free(&err);
}

/* Refused with one line naming `var`; returns nothing, checks that `secret` is not shown. */
static void refused(env_t *e, const char *var, const char *secret)
{
    buf_t err;
    assert_int_equal(load(e, &err), -EINVAL);
    char want[96];
    snprintf(want, sizeof(want), "streamio: invalid %s=", var);
    if (!err.data || strncmp(err.data, want, strlen(want)) != 0)
        fail_msg("'%s' does not start with '%s'", err.data ? err.data : "", want);
    assert_null(strchr(err.data, '\n'));
    if (secret && strstr(err.data, secret))
        fail_msg("secret shown: %s", err.data);
    buf_free(&err);
}

static void test_defaults(void **state)
{
    (void)state;
    env_t e = {{{NULL, NULL}}};
    ok(&e);
    assert_false(cfg.redis_tls);
    assert_int_equal(cfg.redis_cluster_nodes.n, 0);
    assert_int_equal(cfg.redis_sentinels.n, 0);
    redis_topology_opts_t o;
    redis_topology_opts_from_cfg(&o, &cfg);
    assert_int_equal(o.mode, REDIS_MODE_SINGLE);
    assert_string_equal(o.addr.host, "127.0.0.1");
    assert_int_equal(o.addr.port, 6379);
}

static void test_url_fills_the_redis_fields(void **state)
{
    (void)state;
    env_t e = {{{"REDIS_URL", "rediss://app:s%40cret@redis.example.net:6380/4"}}};
    ok(&e);
    assert_true(cfg.redis_tls);
    assert_string_equal(cfg.redis_host, "redis.example.net");
    assert_int_equal(cfg.redis_port, 6380);
    assert_string_equal(cfg.redis_username, "app");
    assert_string_equal(cfg.redis_password, "s@cret");
    assert_int_equal(cfg.redis_db, 4);
    /* the same values given twice are no conflict; a password only in REDIS_PASSWORD is used */
    env_t same = {{{"REDIS_URL", "redis://h:7000"},
                   {"REDIS_HOST", "h"},
                   {"REDIS_PORT", "7000"},
                   {"REDIS_PASSWORD", "pw"},
                   {"REDIS_DB", "2"}}};
    ok(&same);
    assert_string_equal(cfg.redis_password, "pw");
    assert_int_equal(cfg.redis_db, 2);
    assert_false(cfg.redis_tls);
}

static void test_url_conflicts_and_errors(void **state)
{
    (void)state;
    env_t bad = {{{"REDIS_URL", "redis://app:topsecret@h:0"}}};
    refused(&bad, "REDIS_URL", "topsecret");
    env_t host = {{{"REDIS_URL", "redis://h"}, {"REDIS_HOST", "other"}}};
    refused(&host, "REDIS_HOST", NULL);
    env_t port = {{{"REDIS_URL", "redis://h"}, {"REDIS_PORT", "6380"}}};
    refused(&port, "REDIS_PORT", NULL);
    env_t pw = {{{"REDIS_URL", "redis://:one@h"}, {"REDIS_PASSWORD", "two-secret"}}};
    refused(&pw, "REDIS_PASSWORD", "two-secret");
    env_t user = {{{"REDIS_URL", "redis://a:p@h"}, {"REDIS_USERNAME", "b"}}};
    refused(&user, "REDIS_USERNAME", NULL);
    env_t db = {{{"REDIS_URL", "redis://h/1"}, {"REDIS_DB", "2"}}};
    refused(&db, "REDIS_DB", NULL);
    env_t tls_off = {{{"REDIS_URL", "rediss://h"}, {"REDIS_TLS", "false"}}};
    refused(&tls_off, "REDIS_TLS", NULL);
    env_t tls_on = {{{"REDIS_URL", "redis://h"}, {"REDIS_TLS", "true"}}};
    refused(&tls_on, "REDIS_TLS", NULL);
    env_t query = {{{"REDIS_URL", "rediss://u:pw-secret@h/0?ssl_cert_reqs=none"}}};
    refused(&query, "REDIS_URL", "pw-secret");
}

static void test_tls_settings(void **state)
{
    (void)state;
    env_t on = {{{"REDIS_TLS", "true"},
                 {"REDIS_TLS_CA_FILE", "/etc/ca.pem"},
                 {"REDIS_TLS_CERT_FILE", "/etc/c.pem"},
                 {"REDIS_TLS_KEY_FILE", "/etc/c.key"},
                 {"REDIS_TLS_SERVER_NAME", "redis.internal"},
                 {"REDIS_TLS_INSECURE", "false"}}};
    ok(&on);
    redis_topology_opts_t o;
    redis_topology_opts_from_cfg(&o, &cfg);
    assert_true(o.tls);
    assert_string_equal(o.tls_opts.ca_file, "/etc/ca.pem");
    assert_string_equal(o.tls_opts.cert_file, "/etc/c.pem");
    assert_string_equal(o.conn.tls_server_name, "redis.internal");
    assert_false(o.tls_opts.insecure);
    env_t ca_no_tls = {{{"REDIS_TLS_CA_FILE", "/etc/ca.pem"}}};
    refused(&ca_no_tls, "REDIS_TLS_CA_FILE", NULL);
    env_t insecure_no_tls = {{{"REDIS_TLS_INSECURE", "true"}}};
    refused(&insecure_no_tls, "REDIS_TLS_INSECURE", NULL);
    env_t cert_only = {{{"REDIS_TLS", "true"}, {"REDIS_TLS_CERT_FILE", "/c.pem"}}};
    refused(&cert_only, "REDIS_TLS_KEY_FILE", NULL);
    env_t key_only = {{{"REDIS_TLS", "true"}, {"REDIS_TLS_KEY_FILE", "/c.key"}}};
    refused(&key_only, "REDIS_TLS_CERT_FILE", NULL);
    env_t bad_bool = {{{"REDIS_TLS", "maybe"}}};
    refused(&bad_bool, "REDIS_TLS", NULL);
}

static void test_cluster_nodes(void **state)
{
    (void)state;
    env_t e = {{{"REDIS_CLUSTER_NODES", "10.0.0.1:7000, 10.0.0.2,[::1]:7002"}}};
    ok(&e);
    assert_int_equal(cfg.redis_cluster_nodes.n, 3);
    assert_int_equal(cfg.redis_cluster_nodes.a[1].port, 6379);
    assert_string_equal(cfg.redis_cluster_nodes.a[2].host, "::1");
    redis_topology_opts_t o;
    redis_topology_opts_from_cfg(&o, &cfg);
    assert_int_equal(o.mode, REDIS_MODE_CLUSTER);
    assert_int_equal(o.nnodes, 3);
    /* REDIS_URL gives credentials and TLS, and its host is one more seed (once) */
    env_t url = {
        {{"REDIS_CLUSTER_NODES", "10.0.0.1:7000"}, {"REDIS_URL", "rediss://:pw@10.0.0.9:7009"}}};
    ok(&url);
    assert_int_equal(cfg.redis_cluster_nodes.n, 2);
    assert_string_equal(cfg.redis_cluster_nodes.a[1].host, "10.0.0.9");
    assert_true(cfg.redis_tls);
    env_t dup = {
        {{"REDIS_CLUSTER_NODES", "10.0.0.9:7009"}, {"REDIS_URL", "redis://10.0.0.9:7009"}}};
    ok(&dup);
    assert_int_equal(cfg.redis_cluster_nodes.n, 1);
    env_t bad = {{{"REDIS_CLUSTER_NODES", "10.0.0.1:7000,,x"}}};
    refused(&bad, "REDIS_CLUSTER_NODES", NULL);
    env_t db = {{{"REDIS_CLUSTER_NODES", "h:1"}, {"REDIS_DB", "3"}}};
    refused(&db, "REDIS_DB", NULL);
    env_t url_db = {{{"REDIS_CLUSTER_NODES", "h:1"}, {"REDIS_URL", "redis://h:1/3"}}};
    refused(&url_db, "REDIS_URL", NULL);
}

static void test_sentinels(void **state)
{
    (void)state;
    env_t e = {{{"REDIS_SENTINELS", "10.0.0.5,10.0.0.6:26380"},
                {"REDIS_SENTINEL_NAME", "mymaster"},
                {"REDIS_SENTINEL_PASSWORD", "sentinel-secret"}}};
    ok(&e);
    assert_int_equal(cfg.redis_sentinels.n, 2);
    assert_int_equal(cfg.redis_sentinels.a[0].port, 26379);
    redis_topology_opts_t o;
    redis_topology_opts_from_cfg(&o, &cfg);
    assert_int_equal(o.mode, REDIS_MODE_SENTINEL);
    assert_string_equal(o.sentinel_name, "mymaster");
    assert_string_equal(o.sentinel_password, "sentinel-secret");
    env_t no_name = {{{"REDIS_SENTINELS", "h"}}};
    refused(&no_name, "REDIS_SENTINEL_NAME", NULL);
    env_t name_only = {{{"REDIS_SENTINEL_NAME", "m"}}};
    refused(&name_only, "REDIS_SENTINEL_NAME", NULL);
    env_t pw_only = {{{"REDIS_SENTINEL_PASSWORD", "lonely-secret"}}};
    refused(&pw_only, "REDIS_SENTINEL_PASSWORD", "lonely-secret");
    env_t both = {
        {{"REDIS_SENTINELS", "h"}, {"REDIS_SENTINEL_NAME", "m"}, {"REDIS_CLUSTER_NODES", "h:1"}}};
    refused(&both, "REDIS_SENTINELS", NULL);
    env_t url = {{{"REDIS_SENTINELS", "h"},
                  {"REDIS_SENTINEL_NAME", "m"},
                  {"REDIS_URL", "redis://:url-secret@h"}}};
    refused(&url, "REDIS_SENTINELS", "url-secret");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_url_fills_the_redis_fields),
        cmocka_unit_test(test_url_conflicts_and_errors),
        cmocka_unit_test(test_tls_settings),
        cmocka_unit_test(test_cluster_nodes),
        cmocka_unit_test(test_sentinels),
    };
    return cmocka_run_group_tests_name("redis_config", tests, NULL, NULL);
}
