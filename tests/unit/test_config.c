/* Unit tests for common/config: defaults, every kind of value, and the error line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    assert_int_equal(cfg.priority.n, 0);
    assert_int_equal(cfg.stream_exclude.n, 0);
    assert_string_equal(cfg.stream_name, "socket.io");
    assert_int_equal(cfg.stream_count, 1);
    assert_int_equal(cfg.stream_maxlen, 10000);
    buf_free(&err);
}

/* The default bursts grow with MAX_ROOMS_PER_SOCKET, so joining every room at connect is never
 * rate limited; explicit values win. */
static void test_default_bursts_follow_max_rooms(void **state)
{
    (void)state;
    cfg_t cfg;
    buf_t err;
    env_t big = {{{"MAX_ROOMS_PER_SOCKET", "500"}}};
    assert_int_equal(load(&cfg, &big, &err), 0);
    assert_int_equal(cfg.rate_joins_burst, 500);
    assert_int_equal(cfg.rate_events_burst, 1000);
    buf_free(&err);
    env_t small = {{{"MAX_ROOMS_PER_SOCKET", "3"}}};
    assert_int_equal(load(&cfg, &small, &err), 0);
    assert_int_equal(cfg.rate_joins_burst, 100); /* never below the defaults */
    assert_int_equal(cfg.rate_events_burst, 200);
    buf_free(&err);
    env_t set = {{{"MAX_ROOMS_PER_SOCKET", "500"},
                  {"RATE_LIMIT_JOINS_BURST", "7"},
                  {"RATE_LIMIT_EVENTS_BURST", "9"}}};
    assert_int_equal(load(&cfg, &set, &err), 0);
    assert_int_equal(cfg.rate_joins_burst, 7);
    assert_int_equal(cfg.rate_events_burst, 9);
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
    assert_int_equal(cfg.priority.n, 3);
    assert_string_equal(cfg.priority.item[0], "vip.1");
    assert_string_equal(cfg.priority.item[2], "vip.3");
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

/* Loads the defaults with name=value (name NULL: the defaults alone), which must be accepted. */
static void load_one(cfg_t *cfg, const char *name, const char *value)
{
    env_t e = {{{name, value}, {NULL, NULL}}};
    buf_t err;
    assert_int_equal(load(cfg, &e, &err), 0);
    buf_free(&err);
}

static void expect_error(const char *name, const char *value, const char *line)
{
    env_t e = {{{name, value}, {NULL, NULL}}};
    cfg_t cfg;
    buf_t err;
    assert_int_equal(load(&cfg, &e, &err), -EINVAL);
    assert_non_null(err.data);
    if (line) {
        assert_string_equal(err.data, line);
    } else { /* only the part naming the variable and the value */
        char head[512];
        snprintf(head, sizeof(head), "streamio: invalid %s=\"%s\": expected ", name, value);
        assert_memory_equal(err.data, head, strlen(head));
    }
    buf_free(&err);
}

static void test_bad_values_name_variable_and_value(void **state)
{
    (void)state;
    expect_error("PORT", "abc",
                 "streamio: invalid PORT=\"abc\": expected an integer from 1 to 65535");
    expect_error("PORT", "70000",
                 "streamio: invalid PORT=\"70000\": expected an integer from 1 to 65535");
    expect_error("PORT", "12x",
                 "streamio: invalid PORT=\"12x\": expected an integer from 1 to 65535");
    expect_error("CLUSTER_WORKERS", "0",
                 "streamio: invalid CLUSTER_WORKERS=\"0\": expected an integer from 1 to 256");
    expect_error("SOCKETIO_REDIS_ADAPTER", "maybe",
                 "streamio: invalid SOCKETIO_REDIS_ADAPTER=\"maybe\": expected false, true, "
                 "sharded or streams");
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

static void test_io_uring(void **state)
{
    (void)state;
    cfg_t cfg;
    load_one(&cfg, NULL, NULL);
    assert_true(cfg.io_uring); /* auto: wherever the kernel allows it */
    load_one(&cfg, "IO_URING", "OFF");
    assert_false(cfg.io_uring);
    load_one(&cfg, "IO_URING", "auto");
    assert_true(cfg.io_uring);
    expect_error("IO_URING", "true", "streamio: invalid IO_URING=\"true\": expected off or auto");
}

static void test_connection_recovery_variables(void **state)
{
    (void)state;
    env_t d = {{{NULL, NULL}}};
    cfg_t cfg;
    buf_t err;
    assert_int_equal(load(&cfg, &d, &err), 0);
    assert_false(cfg.connection_recovery);
    assert_int_equal(cfg.recovery_window_ms, 120000);
    buf_free(&err);

    env_t on = {{{"CONNECTION_RECOVERY", "true"},
                 {"CONNECTION_RECOVERY_WINDOW_MS", "30000"},
                 {"STREAM_DELETE_POLICY", "retain"},
                 {"STREAM_RETAIN_MS", "30000"},
                 {NULL, NULL}}};
    assert_int_equal(load(&cfg, &on, &err), 0);
    assert_true(cfg.connection_recovery);
    assert_int_equal(cfg.recovery_window_ms, 30000);
    buf_free(&err);

    env_t del = {{{"CONNECTION_RECOVERY", "true"}, {NULL, NULL}}};
    assert_int_equal(load(&cfg, &del, &err), -EINVAL);
    assert_string_equal(err.data, "streamio: invalid CONNECTION_RECOVERY=\"true\": expected "
                                  "STREAM_DELETE_POLICY=retain (missed entries are replayed from "
                                  "the streams)");
    buf_free(&err);

    env_t shortret = {{{"CONNECTION_RECOVERY", "on"},
                       {"STREAM_DELETE_POLICY", "retain"},
                       {"STREAM_RETAIN_MS", "119999"},
                       {NULL, NULL}}};
    assert_int_equal(load(&cfg, &shortret, &err), -EINVAL);
    assert_string_equal(err.data, "streamio: invalid STREAM_RETAIN_MS=\"119999\": expected at "
                                  "least CONNECTION_RECOVERY_WINDOW_MS (120000) with "
                                  "CONNECTION_RECOVERY=true");
    buf_free(&err);

    env_t low = {{{"CONNECTION_RECOVERY_WINDOW_MS", "999"}, {NULL, NULL}}};
    assert_int_equal(load(&cfg, &low, &err), -EINVAL);
    assert_non_null(strstr(err.data, "CONNECTION_RECOVERY_WINDOW_MS=\"999\""));
    buf_free(&err);

    /* off: the delete policy is fine */
    env_t off = {
        {{"CONNECTION_RECOVERY", "false"}, {"STREAM_DELETE_POLICY", "delete"}, {NULL, NULL}}};
    assert_int_equal(load(&cfg, &off, &err), 0);
    buf_free(&err);
}

static void test_sharded_is_accepted(void **state)
{
    (void)state;
    env_t e = {{{"SOCKETIO_REDIS_ADAPTER", "SHARDED"}, {NULL, NULL}}};
    cfg_t cfg;
    buf_t err;
    assert_int_equal(load(&cfg, &e, &err), 0);
    assert_int_equal(cfg.adapter, CONFIG_ADAPTER_SHARDED);
    buf_free(&err);
}

static void test_security_defaults(void **state)
{
    (void)state;
    env_t e = {{{NULL, NULL}}};
    cfg_t cfg;
    buf_t err;
    assert_int_equal(load(&cfg, &e, &err), 0);
    assert_false(cfg.auth_enabled);
    assert_string_equal(cfg.auth_jwt_secret, "");
    assert_string_equal(cfg.auth_jwt_public_key_file, "");
    assert_string_equal(cfg.auth_jwt_issuer, "");
    assert_string_equal(cfg.auth_jwt_audience, "");
    assert_int_equal(cfg.auth_jwt_leeway_s, 0);
    assert_int_equal(cfg.max_connections, 0);
    assert_int_equal(cfg.max_connections_per_ip, 0);
    assert_int_equal(cfg.memory_high_water_mb, 0);
    /* no rate by default: the seed's server has none (its answers never change) */
    assert_int_equal(cfg.rate_events_per_sec, 0);
    assert_int_equal(cfg.rate_events_burst, 200);
    assert_int_equal(cfg.rate_joins_per_sec, 0);
    assert_int_equal(cfg.rate_joins_burst, 100);
    assert_int_equal(cfg.rate_max_violations, 50);
    buf_free(&err);
}

static void test_security_values(void **state)
{
    (void)state;
    env_t e = {{{"AUTH_ENABLED", "true"},
                {"AUTH_JWT_SECRET", "0123456789abcdef0123456789abcdef"},
                {"AUTH_JWT_ISSUER", "https://id.example"},
                {"AUTH_JWT_AUDIENCE", "api"},
                {"AUTH_JWT_LEEWAY", "30"},
                {"MAX_CONNECTIONS", "20000"},
                {"MAX_CONNECTIONS_PER_IP", "50"},
                {"MEMORY_HIGH_WATER_MB", "512"},
                {"RATE_LIMIT_EVENTS_PER_SEC", "0"},
                {"RATE_LIMIT_JOINS_BURST", "7"},
                {NULL, NULL}}};
    cfg_t cfg;
    buf_t err;
    assert_int_equal(load(&cfg, &e, &err), 0);
    assert_true(cfg.auth_enabled);
    assert_string_equal(cfg.auth_jwt_secret, "0123456789abcdef0123456789abcdef");
    assert_string_equal(cfg.auth_jwt_issuer, "https://id.example");
    assert_string_equal(cfg.auth_jwt_audience, "api");
    assert_int_equal(cfg.auth_jwt_leeway_s, 30);
    assert_int_equal(cfg.max_connections, 20000);
    assert_int_equal(cfg.max_connections_per_ip, 50);
    assert_int_equal(cfg.memory_high_water_mb, 512);
    assert_int_equal(cfg.rate_events_per_sec, 0);
    assert_int_equal(cfg.rate_joins_burst, 7);
    buf_free(&err);
    env_t k = {{{"AUTH_ENABLED", "on"}, {"AUTH_JWT_PUBLIC_KEY_FILE", "/etc/k.pem"}, {NULL, NULL}}};
    assert_int_equal(load(&cfg, &k, &err), 0);
    assert_string_equal(cfg.auth_jwt_public_key_file, "/etc/k.pem");
    buf_free(&err);
}

static void expect_auth_error(env_t *e, const char *line)
{
    cfg_t cfg;
    buf_t err;
    assert_int_equal(load(&cfg, e, &err), -EINVAL);
    assert_non_null(err.data);
    assert_string_equal(err.data, line);
    buf_free(&err);
}

static void test_bad_security_values(void **state)
{
    (void)state;
    expect_error("AUTH_ENABLED", "yes please",
                 "streamio: invalid AUTH_ENABLED=\"yes please\": expected true or false");
    expect_error("AUTH_JWT_LEEWAY", "-1",
                 "streamio: invalid AUTH_JWT_LEEWAY=\"-1\": expected an integer from 0 to 3600");
    expect_error("MAX_CONNECTIONS", "many",
                 "streamio: invalid MAX_CONNECTIONS=\"many\": expected an integer from 0 to "
                 "10000000");
    expect_error("MAX_CONNECTIONS_PER_IP", "-5",
                 "streamio: invalid MAX_CONNECTIONS_PER_IP=\"-5\": expected an integer from 0 to "
                 "10000000");
    expect_error("MEMORY_HIGH_WATER_MB", "1e3",
                 "streamio: invalid MEMORY_HIGH_WATER_MB=\"1e3\": expected an integer from 0 to "
                 "1048576");
    expect_error("RATE_LIMIT_EVENTS_BURST", "0",
                 "streamio: invalid RATE_LIMIT_EVENTS_BURST=\"0\": expected an integer from 1 to "
                 "1000000");
    expect_error("RATE_LIMIT_JOINS_PER_SEC", "2.5",
                 "streamio: invalid RATE_LIMIT_JOINS_PER_SEC=\"2.5\": expected an integer from 0 "
                 "to 1000000");
    expect_error("RATE_LIMIT_MAX_VIOLATIONS", "0",
                 "streamio: invalid RATE_LIMIT_MAX_VIOLATIONS=\"0\": expected an integer from 1 "
                 "to 1000000");
    env_t none = {{{"AUTH_ENABLED", "true"}, {NULL, NULL}}};
    expect_auth_error(&none, "streamio: invalid AUTH_ENABLED=\"true\": expected exactly one of "
                             "AUTH_JWT_SECRET (HS256) or AUTH_JWT_PUBLIC_KEY_FILE (RS256/ES256)");
    env_t both = {{{"AUTH_ENABLED", "true"},
                   {"AUTH_JWT_SECRET", "0123456789abcdef0123456789abcdef"},
                   {"AUTH_JWT_PUBLIC_KEY_FILE", "/k.pem"},
                   {NULL, NULL}}};
    expect_auth_error(&both, "streamio: invalid AUTH_ENABLED=\"true\": expected exactly one of "
                             "AUTH_JWT_SECRET (HS256) or AUTH_JWT_PUBLIC_KEY_FILE (RS256/ES256)");
    /* a secret never appears in a message */
    env_t weak = {{{"AUTH_ENABLED", "true"}, {"AUTH_JWT_SECRET", "hunter2"}, {NULL, NULL}}};
    expect_auth_error(&weak,
                      "streamio: invalid AUTH_JWT_SECRET=\"(hidden)\": expected at least 32 bytes");
    char huge[600];
    memset(huge, 'k', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    expect_error("AUTH_JWT_SECRET", huge,
                 "streamio: invalid AUTH_JWT_SECRET=\"(hidden)\": expected a string shorter than "
                 "512 bytes");
    /* a secret alone turns authentication on, so a short one is refused too */
    env_t alone = {{{"AUTH_JWT_SECRET", "hunter2"}, {NULL, NULL}}};
    expect_auth_error(&alone,
                      "streamio: invalid AUTH_JWT_SECRET=\"(hidden)\": expected at least 32 bytes");
    env_t good = {{{"AUTH_JWT_SECRET", "0123456789abcdef0123456789abcdef"}, {NULL, NULL}}};
    cfg_t cfg;
    buf_t err;
    assert_int_equal(load(&cfg, &good, &err), 0);
    assert_true(cfg.auth_enabled);
    buf_free(&err);
}

static void test_internal_address(void **state)
{
    (void)state;
    cfg_t cfg;
    load_one(&cfg, "PORT", "3001");
    assert_string_equal(cfg.internal_address, "127.0.0.1:3001"); /* HOST 0.0.0.0 */
    load_one(&cfg, "HOST", "10.1.2.3");
    assert_string_equal(cfg.internal_address, "10.1.2.3:3000");
    load_one(&cfg, "HOST", "fd00::5");
    assert_string_equal(cfg.internal_address, "[fd00::5]:3000");
    load_one(&cfg, "STREAMIO_INTERNAL_ADDRESS", "[::1]:4000");
    assert_string_equal(cfg.internal_address, "[::1]:4000");
    expect_error("STREAMIO_INTERNAL_ADDRESS", "server2:3000",
                 "streamio: invalid STREAMIO_INTERNAL_ADDRESS=\"server2:3000\": expected an IP "
                 "address and a port, e.g. 10.0.0.5:3000 or [fd00::5]:3000");
    expect_error("STREAMIO_INTERNAL_ADDRESS", "10.0.0.1", NULL);
    expect_error("STREAMIO_INTERNAL_ADDRESS", "10.0.0.1:0", NULL);
}

static void test_socketio_options(void **state)
{
    (void)state;
    cfg_t cfg;
    buf_t err;
    env_t d = {{{NULL, NULL}}};
    assert_int_equal(load(&cfg, &d, &err), 0);
    assert_int_equal(cfg.nnamespaces, 1);
    assert_string_equal(cfg.namespaces[0], "/");
    assert_int_equal(cfg.transports, CONFIG_TRANSPORT_POLLING | CONFIG_TRANSPORT_WEBSOCKET);
    assert_string_equal(cfg.cors_origins, "");
    assert_int_equal(cfg.http_header_timeout_ms, 60000);
    assert_int_equal(cfg.http_keepalive_timeout_ms, 5000);
    buf_free(&err);
    env_t e = {{{"SOCKETIO_NAMESPACES", "/admin,/,/chat,/admin"},
                {"SOCKETIO_TRANSPORTS", "websocket"},
                {"SOCKETIO_CORS_ORIGINS", "https://a.example.com,http://127.0.0.1:8080"},
                {"HTTP_HEADER_TIMEOUT_MS", "500"},
                {"HTTP_BODY_TIMEOUT_MS", "700"},
                {"HTTP_KEEPALIVE_TIMEOUT_MS", "900"}}};
    assert_int_equal(load(&cfg, &e, &err), 0);
    assert_int_equal(cfg.nnamespaces, 3); /* "/" first, duplicates dropped */
    assert_string_equal(cfg.namespaces[0], "/");
    assert_string_equal(cfg.namespaces[1], "/admin");
    assert_string_equal(cfg.namespaces[2], "/chat");
    assert_int_equal(cfg.transports, CONFIG_TRANSPORT_WEBSOCKET);
    assert_string_equal(cfg.cors_origins, "https://a.example.com,http://127.0.0.1:8080");
    assert_int_equal(cfg.http_header_timeout_ms, 500);
    assert_int_equal(cfg.http_body_timeout_ms, 700);
    assert_int_equal(cfg.http_keepalive_timeout_ms, 900);
    buf_free(&err);
    env_t star = {{{"SOCKETIO_CORS_ORIGINS", "*"}}};
    assert_int_equal(load(&cfg, &star, &err), 0);
    assert_string_equal(cfg.cors_origins, "*");
    buf_free(&err);
    /* 32 namespaces with "/" fit, 33 do not */
    char many[33 * 4 + 1] = "";
    for (int i = 0; i < 31; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s/%02d", i ? "," : "", i);
    env_t full = {{{"SOCKETIO_NAMESPACES", many}}};
    assert_int_equal(load(&cfg, &full, &err), 0);
    assert_int_equal(cfg.nnamespaces, 32);
    buf_free(&err);
    strcat(many, ",/xx");
    expect_error("SOCKETIO_NAMESPACES", many, NULL);
    expect_error("SOCKETIO_NAMESPACES", "/a,b",
                 "streamio: invalid SOCKETIO_NAMESPACES=\"/a,b\": expected comma-separated "
                 "namespaces, each starting with '/', at most 63 bytes, at most 32 with '/'");
    expect_error("SOCKETIO_NAMESPACES", "/a,,/b", NULL);
    expect_error("SOCKETIO_TRANSPORTS", "polling,flash",
                 "streamio: invalid SOCKETIO_TRANSPORTS=\"polling,flash\": expected polling, "
                 "websocket or polling,websocket");
    expect_error("SOCKETIO_TRANSPORTS", "websocket,", NULL);
    expect_error("SOCKETIO_CORS_ORIGINS", "https://a.example.com/",
                 "streamio: invalid SOCKETIO_CORS_ORIGINS=\"https://a.example.com/\": expected * "
                 "or comma-separated origins scheme://host[:port] (no path), < 4096 bytes");
    expect_error("SOCKETIO_CORS_ORIGINS", "https://a.example.com, https://b.example.com", NULL);
    expect_error("SOCKETIO_CORS_ORIGINS", "a.example.com", NULL);
    expect_error("SOCKETIO_CORS_ORIGINS", "https://", NULL);
    expect_error("SOCKETIO_CORS_ORIGINS", "*,https://a.example.com", NULL);
    expect_error("HTTP_HEADER_TIMEOUT_MS", "5",
                 "streamio: invalid HTTP_HEADER_TIMEOUT_MS=\"5\": expected an integer from 100 to "
                 "3600000");
    expect_error("HTTP_KEEPALIVE_TIMEOUT_MS", "0",
                 "streamio: invalid HTTP_KEEPALIVE_TIMEOUT_MS=\"0\": expected an integer from 100 "
                 "to 3600000");
    expect_error("HTTP_KEEPALIVE_TIMEOUT_MS", "5s", NULL);
}

static void test_redis_auth_argv(void **state)
{
    (void)state;
    cfg_t cfg;
    buf_t err;
    const char *argv[3];
    env_t none = {{{NULL, NULL}}};
    assert_int_equal(load(&cfg, &none, &err), 0);
    assert_int_equal(config_redis_auth(&cfg, argv), 0);
    buf_free(&err);
    env_t pass = {{{"REDIS_PASSWORD", "pw"}}};
    assert_int_equal(load(&cfg, &pass, &err), 0);
    assert_int_equal(config_redis_auth(&cfg, argv), 2);
    assert_string_equal(argv[0], "AUTH");
    assert_string_equal(argv[1], "pw");
    buf_free(&err);
    env_t user = {{{"REDIS_USERNAME", "svc"}, {"REDIS_PASSWORD", "pw"}}};
    assert_int_equal(load(&cfg, &user, &err), 0);
    assert_int_equal(config_redis_auth(&cfg, argv), 3);
    assert_string_equal(argv[1], "svc");
    assert_string_equal(argv[2], "pw");
    buf_free(&err);
    /* a nopass ACL user still authenticates (any password is accepted for it) */
    env_t nopass = {{{"REDIS_USERNAME", "svc"}}};
    assert_int_equal(load(&cfg, &nopass, &err), 0);
    assert_int_equal(config_redis_auth(&cfg, argv), 3);
    assert_string_equal(argv[2], "");
    buf_free(&err);
    /* the password never appears in an error */
    char longpw[300];
    memset(longpw, 'p', sizeof(longpw) - 1);
    longpw[sizeof(longpw) - 1] = '\0';
    env_t bad = {{{"REDIS_PASSWORD", longpw}}};
    assert_int_equal(load(&cfg, &bad, &err), -EINVAL);
    assert_non_null(strstr(err.data, "REDIS_PASSWORD=\"(hidden)\""));
    assert_null(strstr(err.data, "ppp"));
    buf_free(&err);
}

static void test_bridge_features_are_off_by_default(void **state)
{
    (void)state;
    env_t e = {{{NULL, NULL}}};
    cfg_t cfg;
    buf_t err;
    assert_int_equal(load(&cfg, &e, &err), 0);
    assert_string_equal(cfg.inbound_stream, "");
    assert_string_equal(cfg.inbound_events, "*");
    assert_int_equal(cfg.inbound_maxlen, 100000);
    assert_false(cfg.presence);
    assert_string_equal(cfg.presence_rooms, "");
    assert_string_equal(cfg.presence_stream, "");
    assert_int_equal(cfg.presence_ttl_ms, 15000);
    assert_int_equal(cfg.max_connections_per_user, 0);
    assert_string_equal(cfg.admin_token, "");
    assert_string_equal(cfg.dead_letter_stream, "");
    assert_int_equal(cfg.max_deliveries, 10);
    assert_int_equal(cfg.max_entry_bytes, 1048576);
    assert_false(config_is_own_stream(&cfg, "", 0));
    buf_free(&err);
}

static void test_bridge_values(void **state)
{
    (void)state;
    env_t e = {{{"SOCKETIO_INBOUND_STREAM", "streamio:inbound"},
                {"SOCKETIO_INBOUND_EVENTS", "chat.*, typing"},
                {"SOCKETIO_INBOUND_MAXLEN", "0"},
                {"PRESENCE", "true"},
                {"PRESENCE_ROOMS", "chat.*"},
                {"PRESENCE_STREAM", "streamio:presence"},
                {"PRESENCE_TTL_MS", "3000"},
                {"MAX_CONNECTIONS_PER_USER", "3"},
                {"ADMIN_TOKEN", "0123456789abcdef"},
                {"STREAM_DEAD_LETTER", "streamio:dead"},
                {"STREAM_MAX_DELIVERIES", "3"},
                {"STREAM_MAX_ENTRY_BYTES", "2048"},
                {NULL, NULL}}};
    cfg_t cfg;
    buf_t err;
    assert_int_equal(load(&cfg, &e, &err), 0);
    assert_string_equal(cfg.inbound_stream, "streamio:inbound");
    assert_string_equal(cfg.inbound_events, "chat.*, typing");
    assert_int_equal(cfg.inbound_maxlen, 0);
    assert_true(cfg.presence);
    assert_int_equal(cfg.presence_ttl_ms, 3000);
    assert_int_equal(cfg.max_connections_per_user, 3);
    assert_int_equal(cfg.max_deliveries, 3);
    assert_int_equal(cfg.max_entry_bytes, 2048);
    assert_true(config_is_own_stream(&cfg, "streamio:inbound", 16));
    assert_true(config_is_own_stream(&cfg, "streamio:presence", 17));
    assert_true(config_is_own_stream(&cfg, "streamio:dead", 13));
    assert_false(config_is_own_stream(&cfg, "streamio:dea", 12));
    assert_false(config_is_own_stream(&cfg, "chat.user.1", 11));
    buf_free(&err);
}

static void expect_env_error(env_t *e, const char *line)
{
    cfg_t cfg;
    buf_t err;
    assert_int_equal(load(&cfg, e, &err), -EINVAL);
    assert_string_equal(err.data, line);
    buf_free(&err);
}

static void test_bad_bridge_values(void **state)
{
    (void)state;
    env_t e1 = {{{"SOCKETIO_INBOUND_EVENTS", "chat.*"}, {NULL, NULL}}};
    expect_env_error(&e1,
                     "streamio: invalid SOCKETIO_INBOUND_EVENTS: expected SOCKETIO_INBOUND_STREAM "
                     "with it (the feature is off without it)");
    env_t e2 = {
        {{"SOCKETIO_INBOUND_STREAM", "in"}, {"SOCKETIO_INBOUND_EVENTS", "a,,b"}, {NULL, NULL}}};
    expect_env_error(&e2,
                     "streamio: invalid SOCKETIO_INBOUND_EVENTS=\"a,,b\": expected comma-separated "
                     "globs (at most 256, each 1..512 bytes), < 4096 bytes");
    env_t e3 = {{{"PRESENCE_ROOMS", "*"}, {NULL, NULL}}};
    expect_env_error(
        &e3, "streamio: invalid PRESENCE_ROOMS: expected PRESENCE=true with it (the feature "
             "is off without it)");
    env_t e4 = {{{"STREAM_MAX_DELIVERIES", "5"}, {NULL, NULL}}};
    expect_env_error(&e4,
                     "streamio: invalid STREAM_MAX_DELIVERIES: expected STREAM_DEAD_LETTER with it "
                     "(the feature is off without it)");
    env_t e5 = {{{"STREAM_DEAD_LETTER", "x"}, {"STREAM_MAX_DELIVERIES", "0"}, {NULL, NULL}}};
    expect_env_error(&e5,
                     "streamio: invalid STREAM_MAX_DELIVERIES=\"0\": expected an integer from 1 to "
                     "1000000");
    env_t e6 = {{{"PRESENCE", "true"},
                 {"PRESENCE_STREAM", "same"},
                 {"STREAM_DEAD_LETTER", "same"},
                 {NULL, NULL}}};
    expect_env_error(&e6,
                     "streamio: invalid STREAM_DEAD_LETTER=\"same\": expected a stream of its own, "
                     "not PRESENCE_STREAM's");
    env_t e7 = {{{"ADMIN_TOKEN", "short"}, {NULL, NULL}}};
    expect_env_error(&e7, "streamio: invalid ADMIN_TOKEN=\"(hidden)\": expected at least 16 bytes");
    env_t e8 = {{{"PRESENCE_TTL_MS", "2000"}, {NULL, NULL}}};
    expect_env_error(&e8, "streamio: invalid PRESENCE_TTL_MS: expected PRESENCE=true or "
                          "MAX_CONNECTIONS_PER_USER with it (the feature is off without it)");
    env_t e9 = {{{"MAX_CONNECTIONS_PER_USER", "2"}, {"PRESENCE_TTL_MS", "2000"}, {NULL, NULL}}};
    cfg_t cfg;
    buf_t err;
    assert_int_equal(load(&cfg, &e9, &err), 0);
    buf_free(&err);
}

static void test_process_settings(void **state)
{
    (void)state;
    cfg_t cfg;
    buf_t err;
    env_t none = {{{NULL, NULL}}};
    assert_int_equal(load(&cfg, &none, &err), 0);
    assert_false(cfg.log_json);
    assert_false(cfg.conformance);
    assert_false(cfg.debug_page);
    assert_false(cfg.namespaces_set);
    assert_string_equal(cfg.pid_file, "");
    assert_string_equal(cfg.control_socket, "");
    assert_string_equal(cfg.notify_socket, "");
    assert_int_equal(cfg.watchdog_usec, 0);
    assert_int_equal(cfg.watchdog_pid, 0);
    buf_free(&err);
    env_t e = {{{"LOG_FORMAT", "JSON"},
                {"STREAMIO_CONFORMANCE", "1"},
                {"STREAMIO_DEBUG_PAGE", "true"},
                {"SOCKETIO_NAMESPACES", ""},
                {"STREAMIO_PID_FILE", "/run/s.pid"},
                {"STREAMIO_CONTROL_SOCKET", "/run/s.sock"},
                {"NOTIFY_SOCKET", "@sd"},
                {"WATCHDOG_USEC", "30000000000"},
                {"WATCHDOG_PID", "42"}}};
    assert_int_equal(load(&cfg, &e, &err), 0);
    assert_true(cfg.log_json);
    assert_true(cfg.conformance);
    assert_true(cfg.debug_page);
    assert_true(cfg.namespaces_set); /* given, even empty: the conformance suite adds no /custom */
    assert_int_equal(cfg.nnamespaces, 1);
    assert_string_equal(cfg.pid_file, "/run/s.pid");
    assert_string_equal(cfg.control_socket, "/run/s.sock");
    assert_string_equal(cfg.notify_socket, "@sd");
    assert_true(cfg.watchdog_usec == 30000000000L);
    assert_int_equal(cfg.watchdog_pid, 42);
    buf_free(&err);
    expect_error("LOG_FORMAT", "xml",
                 "streamio: invalid LOG_FORMAT=\"xml\": expected text or json");
    expect_error("STREAMIO_CONFORMANCE", "2",
                 "streamio: invalid STREAMIO_CONFORMANCE=\"2\": expected true or false");
    expect_error("WATCHDOG_USEC", "-1",
                 "streamio: invalid WATCHDOG_USEC=\"-1\": expected an integer from 0 to "
                 "9223372036854775807");
    expect_error("WATCHDOG_PID", "0",
                 "streamio: invalid WATCHDOG_PID=\"0\": expected an integer from 1 to 2147483647");
    char path[200];
    memset(path, 'x', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    env_t long_sock = {{{"STREAMIO_CONTROL_SOCKET", path}}};
    assert_int_equal(load(&cfg, &long_sock, &err), -EINVAL);
    assert_non_null(strstr(err.data, "STREAMIO_CONTROL_SOCKET"));
    assert_non_null(strstr(err.data, "shorter than 108 bytes"));
    buf_free(&err);
}

/* The environment file wins over the environment, except for what the supervisor sets. */
static void test_env_file(void **state)
{
    (void)state;
    char path[] = "/tmp/test_config_env_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "PORT=4001\nLOG_FORMAT=json\nNOTIFY_SOCKET=/file.sock\n"
                       "STREAMIO_ENV_FILE=/elsewhere\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    setenv("STREAMIO_ENV_FILE", path, 1);
    setenv("PORT", "4000", 1);
    setenv("REDIS_PORT", "6400", 1);
    setenv("NOTIFY_SOCKET", "/env.sock", 1);
    cfg_t cfg;
    buf_t err;
    buf_init(&err);
    assert_int_equal(config_load_env(&cfg, &err), 0);
    assert_int_equal(cfg.port, 4001);
    assert_int_equal(cfg.redis_port, 6400);
    assert_true(cfg.log_json);
    assert_string_equal(cfg.notify_socket, "/env.sock");
    assert_string_equal(cfg.env_file, path);
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "NOT A LINE\n", 11), 11);
    close(fd);
    assert_int_not_equal(config_load_env(&cfg, &err), 0);
    char want[128];
    snprintf(want, sizeof(want), "streamio: invalid STREAMIO_ENV_FILE: %s:1: expected KEY=VALUE",
             path);
    assert_string_equal(err.data, want);
    buf_free(&err);
    unlink(path);
    /* a missing file is an empty one */
    assert_int_equal(config_load_env(&cfg, &err), 0);
    assert_int_equal(cfg.port, 4000);
    unsetenv("STREAMIO_ENV_FILE");
    unsetenv("PORT");
    unsetenv("REDIS_PORT");
    unsetenv("NOTIFY_SOCKET");
    buf_free(&err);
}

static void test_load_one(void **state)
{
    (void)state;
    static cfg_t cfg;
    buf_t err;
    buf_init(&err);
    setenv("STREAMIO_CONTROL_SOCKET", "/run/x.sock", 1);
    setenv("PORT", "not a port", 1); /* another variable is not looked at */
    assert_int_equal(config_load_one(&cfg, "STREAMIO_CONTROL_SOCKET", &err), 0);
    assert_string_equal(cfg.control_socket, "/run/x.sock");
    assert_int_equal(config_load_one(&cfg, "NO_SUCH_VARIABLE", &err), -ENOENT);
    unsetenv("STREAMIO_CONTROL_SOCKET");
    unsetenv("PORT");
    assert_int_equal(config_load_one(&cfg, "STREAMIO_CONTROL_SOCKET", &err), 0);
    assert_string_equal(cfg.control_socket, "");
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_match_the_seed),
        cmocka_unit_test(test_default_bursts_follow_max_rooms),
        cmocka_unit_test(test_values_are_parsed),
        cmocka_unit_test(test_cluster_disabled_means_one_worker),
        cmocka_unit_test(test_bad_values_name_variable_and_value),
        cmocka_unit_test(test_sharded_is_accepted),
        cmocka_unit_test(test_security_defaults),
        cmocka_unit_test(test_security_values),
        cmocka_unit_test(test_bad_security_values),
        cmocka_unit_test(test_stream_policy_variables),
        cmocka_unit_test(test_io_uring),
        cmocka_unit_test(test_connection_recovery_variables),
        cmocka_unit_test(test_redis_auth_argv),
        cmocka_unit_test(test_bridge_features_are_off_by_default),
        cmocka_unit_test(test_bridge_values),
        cmocka_unit_test(test_bad_bridge_values),
        cmocka_unit_test(test_process_settings),
        cmocka_unit_test(test_env_file),
        cmocka_unit_test(test_load_one),
        cmocka_unit_test(test_socketio_options),
        cmocka_unit_test(test_internal_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
