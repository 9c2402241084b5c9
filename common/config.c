/*
 * config: one table drives parsing, defaults and validation, so every variable gets the same
 * treatment and the same error wording.
 */
#include "common/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/envfile.h"
#include "common/glob.h"

/* OPT_SECRET: an OPT_STR whose value never appears in an error message. */
typedef enum opt_kind {
    OPT_INT,
    OPT_BOOL,
    OPT_STR,
    OPT_SECRET,
    OPT_ADAPTER,
    OPT_LEVEL,
    OPT_LIST,
    OPT_CHOICE, /* one of the two words choices[min] into a bool: false for the first */
    OPT_NAMESPACES,
    OPT_TRANSPORTS,
    OPT_ORIGINS,
    OPT_FORMAT,
    OPT_LONG,
    OPT_GLOBS, /* comma-separated globs (common/glob), kept as text */
    OPT_ADDRS  /* host:port list into a redis_addr_list_t; min = the default port */
} opt_kind_t;

typedef struct opt {
    const char *name;
    opt_kind_t kind;
    size_t offset;
    size_t size; /* OPT_STR: capacity of the char array */
    long min, max;
    const char *def; /* textual default, parsed like a user value; NULL = computed */
} opt_t;

/* OPT_CHOICE's word pairs */
static const char *const choices[][2] = {{"delete", "retain"}, {"off", "auto"}};
#define CHOICE_POLICY 0
#define CHOICE_AUTO 1

#define F(field) offsetof(cfg_t, field)
#define S(field) sizeof(((cfg_t *)0)->field)

static const opt_t options[] = {
    {"REDIS_HOST", OPT_STR, F(redis_host), S(redis_host), 1, 0, "127.0.0.1"},
    {"REDIS_PORT", OPT_INT, F(redis_port), 0, 1, 65535, "6379"},
    {"REDIS_PASSWORD", OPT_SECRET, F(redis_password), S(redis_password), 0, 0, ""},
    {"REDIS_USERNAME", OPT_STR, F(redis_username), S(redis_username), 0, 0, ""},
    {"REDIS_DB", OPT_INT, F(redis_db), 0, 0, 65535, "0"},
    {"HOST", OPT_STR, F(host), S(host), 1, 0, "0.0.0.0"},
    {"PORT", OPT_INT, F(port), 0, 1, 65535, "3000"},
    {"STREAMIO_INTERNAL_ADDRESS", OPT_STR, F(internal_address), S(internal_address), 0, 0, ""},
    {"POOL_SIZE", OPT_INT, F(pool_size), 0, 1, 1000000, "100"},
    {"MAX_POOLS", OPT_INT, F(max_pools), 0, 1, 100000, "50"},
    {"SCAN_COUNT", OPT_INT, F(scan_count), 0, 1, 1000000, "5000"},
    {"MAX_STREAMS_PER_READ", OPT_INT, F(max_streams_per_read), 0, 1, 100000, "100"},
    {"MAX_CONCURRENT_POOLS", OPT_INT, F(max_concurrent_pools), 0, 1, 1000, "20"},
    {"BATCH_DELAY", OPT_INT, F(batch_delay_ms), 0, 0, 60000, "10"},
    {"MAX_MESSAGES_BATCH", OPT_INT, F(max_messages_batch), 0, 1, 100000, "100"},
    {"READ_BLOCK_MS", OPT_INT, F(read_block_ms), 0, 1, 60000, "500"},
    {"DISCOVERY_INTERVAL", OPT_INT, F(discovery_interval_ms), 0, 50, 3600000, "1000"},
    {"DISCOVERY_SAFETY_INTERVAL", OPT_INT, F(discovery_safety_ms), 0, 50, 86400000, "600000"},
    {"STREAM_PATTERN", OPT_STR, F(stream_pattern), S(stream_pattern), 1, 0, "*"},
    {"STREAM_DELETE_POLICY", OPT_CHOICE, F(stream_retain), 0, CHOICE_POLICY, 0, "delete"},
    {"STREAM_RETAIN_MS", OPT_INT, F(stream_retain_ms), 0, 1000, 604800000, "120000"},
    {"STREAM_INACTIVE_TTL", OPT_INT, F(stream_inactive_ttl_ms), 0, 1000, 2000000000, "3600000"},
    {"STREAM_CLAIM_IDLE_MS", OPT_INT, F(stream_claim_idle_ms), 0, 100, 3600000, "10000"},
    {"STREAM_OWNER_TTL_MS", OPT_INT, F(stream_owner_ttl_ms), 0, 3000, 600000, "10000"},
    {"STREAM_KEYSPACE_EVENTS", OPT_BOOL, F(keyspace_events), 0, 0, 0, "false"},
    {"STREAM_CONSUMER_GROUP", OPT_STR, F(consumer_group), S(consumer_group), 1, 0, "streamio"},
    {"PRIORITY_STREAMS", OPT_LIST, F(priority), 0, 0, 0, ""},
    {"STREAM_EXCLUDE", OPT_LIST, F(stream_exclude), 0, 0, 0, ""},
    {"CLUSTER_ENABLED", OPT_BOOL, F(cluster_enabled), 0, 0, 0, "true"},
    {"CLUSTER_WORKERS", OPT_INT, F(cluster_workers), 0, 1, 256, NULL},
    {"SOCKETIO_REDIS_ADAPTER", OPT_ADAPTER, F(adapter), 0, 0, 0, "false"},
    {"SOCKETIO_REDIS_KEY", OPT_STR, F(redis_key), S(redis_key), 1, 0, "socket.io"},
    {"SOCKETIO_REDIS_STREAM_NAME", OPT_STR, F(stream_name), S(stream_name), 1, 0, "socket.io"},
    {"SOCKETIO_REDIS_STREAM_COUNT", OPT_INT, F(stream_count), 0, 1, 1024, "1"},
    {"SOCKETIO_REDIS_STREAM_MAXLEN", OPT_INT, F(stream_maxlen), 0, 1, 1000000000, "10000"},
    {"SOCKETIO_REQUESTS_TIMEOUT", OPT_INT, F(requests_timeout_ms), 0, 100, 8000, "5000"},
    {"MAX_ROOMS_PER_SOCKET", OPT_INT, F(max_rooms_per_socket), 0, 1, 100000, "100"},
    {"SOCKETIO_PING_INTERVAL", OPT_INT, F(ping_interval_ms), 0, 10, 3600000, "25000"},
    {"SOCKETIO_PING_TIMEOUT", OPT_INT, F(ping_timeout_ms), 0, 10, 3600000, "20000"},
    {"SOCKETIO_CONNECT_TIMEOUT", OPT_INT, F(connect_timeout_ms), 0, 10, 3600000, "45000"},
    {"SOCKETIO_MAX_HTTP_BUFFER_SIZE", OPT_INT, F(max_payload), 0, 1024, 100000000, "1000000"},
    {"SHUTDOWN_TIMEOUT", OPT_INT, F(shutdown_timeout_ms), 0, 100, 3600000, "10000"},
    {"LOG_LEVEL", OPT_LEVEL, F(log_level), 0, 0, 0, "info"},
    {"AUTH_ENABLED", OPT_BOOL, F(auth_enabled), 0, 0, 0, "false"},
    {"AUTH_JWT_SECRET", OPT_SECRET, F(auth_jwt_secret), S(auth_jwt_secret), 0, 0, ""},
    {"AUTH_JWT_PUBLIC_KEY_FILE", OPT_STR, F(auth_jwt_public_key_file), S(auth_jwt_public_key_file),
     0, 0, ""},
    {"AUTH_JWT_ISSUER", OPT_STR, F(auth_jwt_issuer), S(auth_jwt_issuer), 0, 0, ""},
    {"AUTH_JWT_AUDIENCE", OPT_STR, F(auth_jwt_audience), S(auth_jwt_audience), 0, 0, ""},
    {"AUTH_JWT_LEEWAY", OPT_INT, F(auth_jwt_leeway_s), 0, 0, 3600, "0"},
    {"MAX_CONNECTIONS", OPT_INT, F(max_connections), 0, 0, 10000000, "0"},
    {"MAX_CONNECTIONS_PER_IP", OPT_INT, F(max_connections_per_ip), 0, 0, 10000000, "0"},
    {"MEMORY_HIGH_WATER_MB", OPT_INT, F(memory_high_water_mb), 0, 0, 1048576, "0"},
    {"RATE_LIMIT_EVENTS_PER_SEC", OPT_INT, F(rate_events_per_sec), 0, 0, 1000000, "0"},
    {"RATE_LIMIT_EVENTS_BURST", OPT_INT, F(rate_events_burst), 0, 1, 1000000, "200"},
    {"RATE_LIMIT_JOINS_PER_SEC", OPT_INT, F(rate_joins_per_sec), 0, 0, 1000000, "0"},
    {"RATE_LIMIT_JOINS_BURST", OPT_INT, F(rate_joins_burst), 0, 1, 1000000, "100"},
    {"RATE_LIMIT_MAX_VIOLATIONS", OPT_INT, F(rate_max_violations), 0, 1, 1000000, "50"},
    {"CONNECTION_RECOVERY", OPT_BOOL, F(connection_recovery), 0, 0, 0, "false"},
    {"CONNECTION_RECOVERY_WINDOW_MS", OPT_INT, F(recovery_window_ms), 0, 1000, 86400000, "120000"},
    {"SOCKETIO_NAMESPACES", OPT_NAMESPACES, 0, 0, 0, 0, "/"},
    {"SOCKETIO_PER_MESSAGE_DEFLATE", OPT_BOOL, F(per_message_deflate), 0, 0, 0, "false"},
    {"SOCKETIO_TRANSPORTS", OPT_TRANSPORTS, F(transports), 0, 0, 0, "polling,websocket"},
    {"SOCKETIO_CORS_ORIGINS", OPT_ORIGINS, F(cors_origins), S(cors_origins), 0, 0, ""},
    {"HTTP_HEADER_TIMEOUT_MS", OPT_INT, F(http_header_timeout_ms), 0, 100, 3600000, "60000"},
    {"HTTP_BODY_TIMEOUT_MS", OPT_INT, F(http_body_timeout_ms), 0, 100, 3600000, "300000"},
    {"HTTP_KEEPALIVE_TIMEOUT_MS", OPT_INT, F(http_keepalive_timeout_ms), 0, 100, 3600000, "5000"},
    {"LOG_FORMAT", OPT_FORMAT, F(log_json), 0, 0, 0, "text"},
    {"STREAMIO_CONFORMANCE", OPT_BOOL, F(conformance), 0, 0, 0, "false"},
    {"STREAMIO_DEBUG_PAGE", OPT_BOOL, F(debug_page), 0, 0, 0, "false"},
    {"IO_URING", OPT_CHOICE, F(io_uring), 0, CHOICE_AUTO, 0, "auto"},
    {"STREAMIO_PID_FILE", OPT_STR, F(pid_file), S(pid_file), 0, 0, ""},
    {"STREAMIO_CONTROL_SOCKET", OPT_STR, F(control_socket), S(control_socket), 0, 0, ""},
    {"STREAMIO_ENV_FILE", OPT_STR, F(env_file), S(env_file), 0, 0, ""},
    {"NOTIFY_SOCKET", OPT_STR, F(notify_socket), S(notify_socket), 0, 0, ""},
    {"WATCHDOG_USEC", OPT_LONG, F(watchdog_usec), 0, 0, LONG_MAX, "0"},
    {"WATCHDOG_PID", OPT_INT, F(watchdog_pid), 0, 1, INT_MAX, NULL},
    {"REDIS_URL", OPT_SECRET, F(redis_url), S(redis_url), 0, 0, ""},
    {"REDIS_TLS", OPT_BOOL, F(redis_tls), 0, 0, 0, "false"},
    {"REDIS_TLS_INSECURE", OPT_BOOL, F(redis_tls_insecure), 0, 0, 0, "false"},
    {"REDIS_TLS_CA_FILE", OPT_STR, F(redis_tls_ca_file), S(redis_tls_ca_file), 0, 0, ""},
    {"REDIS_TLS_CERT_FILE", OPT_STR, F(redis_tls_cert_file), S(redis_tls_cert_file), 0, 0, ""},
    {"REDIS_TLS_KEY_FILE", OPT_STR, F(redis_tls_key_file), S(redis_tls_key_file), 0, 0, ""},
    {"REDIS_TLS_SERVER_NAME", OPT_STR, F(redis_tls_server_name), S(redis_tls_server_name), 0, 0,
     ""},
    {"REDIS_CLUSTER_NODES", OPT_ADDRS, F(redis_cluster_nodes), 0, 6379, 0, NULL},
    {"REDIS_SENTINELS", OPT_ADDRS, F(redis_sentinels), 0, 26379, 0, NULL},
    {"REDIS_SENTINEL_NAME", OPT_STR, F(redis_sentinel_name), S(redis_sentinel_name), 0, 0, ""},
    {"REDIS_SENTINEL_PASSWORD", OPT_SECRET, F(redis_sentinel_password), S(redis_sentinel_password),
     0, 0, ""},
    {"SOCKETIO_INBOUND_STREAM", OPT_STR, F(inbound_stream), S(inbound_stream), 0, 0, ""},
    {"SOCKETIO_INBOUND_EVENTS", OPT_GLOBS, F(inbound_events), S(inbound_events), 0, 0, "*"},
    {"SOCKETIO_INBOUND_MAXLEN", OPT_INT, F(inbound_maxlen), 0, 0, 1000000000, "100000"},
    {"PRESENCE", OPT_BOOL, F(presence), 0, 0, 0, "false"},
    {"PRESENCE_ROOMS", OPT_GLOBS, F(presence_rooms), S(presence_rooms), 0, 0, ""},
    {"PRESENCE_STREAM", OPT_STR, F(presence_stream), S(presence_stream), 0, 0, ""},
    {"PRESENCE_STREAM_MAXLEN", OPT_INT, F(presence_stream_maxlen), 0, 0, 1000000000, "100000"},
    {"PRESENCE_TTL_MS", OPT_INT, F(presence_ttl_ms), 0, 1000, 3600000, "15000"},
    {"MAX_CONNECTIONS_PER_USER", OPT_INT, F(max_connections_per_user), 0, 0, 1000000, "0"},
    {"ADMIN_TOKEN", OPT_SECRET, F(admin_token), S(admin_token), 0, 0, ""},
    {"STREAM_DEAD_LETTER", OPT_STR, F(dead_letter_stream), S(dead_letter_stream), 0, 0, ""},
    {"STREAM_MAX_DELIVERIES", OPT_INT, F(max_deliveries), 0, 1, 1000000, "10"},
    {"STREAM_MAX_ENTRY_BYTES", OPT_INT, F(max_entry_bytes), 0, 1024, 4194304, "1048576"},
};

static int bad(buf_t *err, const opt_t *o, const char *v, const char *expected)
{
    buf_printf(err, "streamio: invalid %s=\"%s\": expected %s", o->name, v, expected);
    return -EINVAL;
}

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

static int parse_list(cfg_t *cfg, const opt_t *o, const char *v, buf_t *err)
{
    config_list_t *l = (config_list_t *)((char *)cfg + o->offset);
    size_t n = strlen(v);
    if (n >= sizeof(l->buf))
        return bad(err, o, v, "a comma-separated list shorter than 8192 bytes");
    memcpy(l->buf, v, n + 1);
    l->n = 0;
    char *save = NULL;
    for (char *t = strtok_r(l->buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ' || *t == '\t')
            t++;
        char *end = t + strlen(t);
        while (end > t && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (*t == '\0')
            continue;
        if (l->n == CONFIG_MAX_LIST)
            return bad(err, o, v, "at most 256 comma-separated items");
        l->item[l->n++] = t;
    }
    return 0;
}

/* Calls fn on each item of a comma-separated list (empty items included); stops at an error. */
static int each_item(const char *v, int (*fn)(cfg_t *cfg, const char *p, size_t n), cfg_t *cfg)
{
    for (const char *p = v;;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int rc = fn(cfg, p, n);
        if (rc || !e)
            return rc;
        p = e + 1;
    }
}

static int add_namespace(cfg_t *cfg, const char *p, size_t n)
{
    if (n == 0 || p[0] != '/' || n >= CONFIG_NAMESPACE_SIZE)
        return -EINVAL;
    for (int i = 0; i < cfg->nnamespaces; i++) {
        if (strlen(cfg->namespaces[i]) == n && memcmp(cfg->namespaces[i], p, n) == 0)
            return 0;
    }
    if (cfg->nnamespaces == CONFIG_MAX_NAMESPACES)
        return -EINVAL;
    memcpy(cfg->namespaces[cfg->nnamespaces], p, n);
    cfg->namespaces[cfg->nnamespaces++][n] = '\0';
    return 0;
}

static int add_transport(cfg_t *cfg, const char *p, size_t n)
{
    if (n == 7 && memcmp(p, "polling", 7) == 0)
        cfg->transports |= CONFIG_TRANSPORT_POLLING;
    else if (n == 9 && memcmp(p, "websocket", 9) == 0)
        cfg->transports |= CONFIG_TRANSPORT_WEBSOCKET;
    else
        return -EINVAL;
    return 0;
}

/* An Origin header value: scheme://host[:port], nothing after the authority, no blanks. */
static int check_origin(cfg_t *cfg, const char *p, size_t n)
{
    (void)cfg;
    const char *sep = memmem(p, n, "://", 3);
    if (!sep || sep == p || sep + 3 == p + n)
        return -EINVAL;
    for (const char *c = p; c < p + n; c++) {
        if ((unsigned char)*c <= ' ' || *c == 0x7f || (c >= sep + 3 && (*c == '/' || *c == '?')))
            return -EINVAL;
    }
    return 0;
}

static int parse_one(cfg_t *cfg, const opt_t *o, const char *v, buf_t *err)
{
    char *field = (char *)cfg + o->offset;
    char expected[96];
    switch (o->kind) {
    case OPT_INT:
    case OPT_LONG: {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end != '\0' || n < o->min || n > o->max) {
            snprintf(expected, sizeof(expected), "an integer from %ld to %ld", o->min, o->max);
            return bad(err, o, v, expected);
        }
        if (o->kind == OPT_LONG)
            *(long *)field = n;
        else
            *(int *)field = (int)n;
        return 0;
    }
    case OPT_FORMAT:
        if (log_format_parse(v, (bool *)field))
            return bad(err, o, v, "text or json");
        return 0;
    case OPT_BOOL:
        if (parse_bool(v, (bool *)field))
            return bad(err, o, v, "true or false");
        return 0;
    case OPT_SECRET:
        if (strlen(v) >= o->size) {
            snprintf(expected, sizeof(expected), "a string shorter than %zu bytes", o->size);
            return bad(err, o, "(hidden)", expected);
        }
        memcpy(field, v, strlen(v) + 1);
        return 0;
    case OPT_STR:
        if (strlen(v) >= o->size || (o->min > 0 && *v == '\0')) {
            snprintf(expected, sizeof(expected), "a non-empty string shorter than %zu bytes",
                     o->size);
            return bad(err, o, v, expected);
        }
        memcpy(field, v, strlen(v) + 1);
        return 0;
    case OPT_ADAPTER: {
        bool on;
        if (strcasecmp(v, "sharded") == 0)
            *(config_adapter_t *)field = CONFIG_ADAPTER_SHARDED;
        else if (strcasecmp(v, "streams") == 0)
            *(config_adapter_t *)field = CONFIG_ADAPTER_STREAMS;
        else if (parse_bool(v, &on) == 0)
            *(config_adapter_t *)field = on ? CONFIG_ADAPTER_CLASSIC : CONFIG_ADAPTER_OFF;
        else
            return bad(err, o, v, "false, true, sharded or streams");
        return 0;
    }
    case OPT_LEVEL:
        if (log_level_parse(v, (log_level_t *)field))
            return bad(err, o, v, "error, warn, info or debug");
        return 0;
    case OPT_LIST:
        return parse_list(cfg, o, v, err);
    case OPT_NAMESPACES:
        cfg->nnamespaces = 0;
        add_namespace(cfg, "/", 1);
        if (each_item(v, add_namespace, cfg))
            return bad(err, o, v,
                       "comma-separated namespaces, each starting with '/', at most 63 bytes, "
                       "at most 32 with '/'");
        return 0;
    case OPT_TRANSPORTS:
        cfg->transports = 0;
        if (each_item(v, add_transport, cfg))
            return bad(err, o, v, "polling, websocket or polling,websocket");
        return 0;
    case OPT_ORIGINS:
        if (strlen(v) >= o->size ||
            (*v && strcmp(v, "*") != 0 && each_item(v, check_origin, cfg) != 0)) {
            snprintf(expected, sizeof(expected),
                     "* or comma-separated origins scheme://host[:port] (no path), < %zu bytes",
                     o->size);
            return bad(err, o, v, expected);
        }
        memcpy(field, v, strlen(v) + 1);
        return 0;
    case OPT_GLOBS: {
        glob_list_t *l = NULL;
        if (strlen(v) >= o->size ||
            glob_list_from_csv(v, CONFIG_MAX_GLOBS, CONFIG_MAX_GLOB, &l) != 0) {
            snprintf(expected, sizeof(expected),
                     "comma-separated globs (at most %d, each 1..%d bytes), < %zu bytes",
                     CONFIG_MAX_GLOBS, CONFIG_MAX_GLOB, o->size);
            return bad(err, o, v, expected);
        }
        glob_list_free(l);
        memcpy(field, v, strlen(v) + 1);
        return 0;
    }
    case OPT_ADDRS: {
        const char *why;
        redis_addr_list_t *l = (redis_addr_list_t *)field;
        if (redis_addr_parse_list(v, (int)o->min, l->a, REDIS_URL_MAX_ADDRS, &l->n, &why))
            return bad(err, o, v, why);
        return 0;
    }
    case OPT_CHOICE: {
        const char *const *w = choices[o->min];
        if (strcasecmp(v, w[0]) == 0)
            *(bool *)field = false;
        else if (strcasecmp(v, w[1]) == 0)
            *(bool *)field = true;
        else {
            snprintf(expected, sizeof(expected), "%s or %s", w[0], w[1]);
            return bad(err, o, v, expected);
        }
        return 0;
    }
    }
    return -EINVAL;
}

static int default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > 256 ? 256 : (int)n;
}

/* Rules that span several variables; each names the variable a user has to change. */
static int check_auth(cfg_t *cfg, buf_t *err)
{
    bool secret = cfg->auth_jwt_secret[0] != '\0';
    bool key = cfg->auth_jwt_public_key_file[0] != '\0';
    /* the contract: a secret (or a key) is what turns authentication on */
    if (secret || key)
        cfg->auth_enabled = true;
    if (!cfg->auth_enabled)
        return 0;
    if (secret == key) {
        buf_puts(err, "streamio: invalid AUTH_ENABLED=\"true\": expected exactly one of "
                      "AUTH_JWT_SECRET (HS256) or AUTH_JWT_PUBLIC_KEY_FILE (RS256/ES256)");
        return -EINVAL;
    }
    if (secret && strlen(cfg->auth_jwt_secret) < CONFIG_MIN_JWT_SECRET) {
        buf_printf(err,
                   "streamio: invalid AUTH_JWT_SECRET=\"(hidden)\": expected at least %d bytes",
                   CONFIG_MIN_JWT_SECRET);
        return -EINVAL;
    }
    return 0;
}

/* An IP literal and a port: what other servers connect to, never a name to resolve. */
static bool ip_port(const char *v)
{
    redis_addr_t a;
    const char *why;
    unsigned char ip[16];
    return redis_addr_parse(v, strlen(v), 0, &a, &why) == 0 && a.port > 0 &&
           (inet_pton(AF_INET, a.host, ip) == 1 || inet_pton(AF_INET6, a.host, ip) == 1);
}

static int check_internal_address(cfg_t *cfg, buf_t *err)
{
    if (cfg->internal_address[0]) {
        if (ip_port(cfg->internal_address))
            return 0;
        buf_printf(err,
                   "streamio: invalid STREAMIO_INTERNAL_ADDRESS=\"%s\": expected an IP address "
                   "and a port, e.g. 10.0.0.5:3000 or [fd00::5]:3000",
                   cfg->internal_address);
        return -EINVAL;
    }
    bool any = !strcmp(cfg->host, "0.0.0.0") || !strcmp(cfg->host, "::") ||
               !strcmp(cfg->host, "localhost");
    unsigned char ip[16];
    bool v6 = inet_pton(AF_INET6, cfg->host, ip) == 1;
    if (any || (!v6 && inet_pton(AF_INET, cfg->host, ip) != 1))
        snprintf(cfg->internal_address, sizeof(cfg->internal_address), "127.0.0.1:%d", cfg->port);
    else
        snprintf(cfg->internal_address, sizeof(cfg->internal_address), v6 ? "[%s]:%d" : "%s:%d",
                 cfg->host, cfg->port);
    return 0;
}

/* Recovery replays the retained entries: they must be kept, and for at least the window. In
 * streams mode the adapter's stream holds what is replayed, as with Node's adapter. */
static int check_recovery(const cfg_t *cfg, buf_t *err)
{
    if (!cfg->connection_recovery || cfg->adapter == CONFIG_ADAPTER_STREAMS)
        return 0;
    if (!cfg->stream_retain) {
        buf_puts(err, "streamio: invalid CONNECTION_RECOVERY=\"true\": expected "
                      "STREAM_DELETE_POLICY=retain (missed entries are replayed from the streams)");
        return -EINVAL;
    }
    if (cfg->stream_retain_ms < cfg->recovery_window_ms) {
        buf_printf(err,
                   "streamio: invalid STREAM_RETAIN_MS=\"%d\": expected at least "
                   "CONNECTION_RECOVERY_WINDOW_MS (%d) with CONNECTION_RECOVERY=true",
                   cfg->stream_retain_ms, cfg->recovery_window_ms);
        return -EINVAL;
    }
    return 0;
}

/* Where values come from: `get`, with the environment file (when there is one) in front. */
typedef struct source {
    config_getenv_fn get;
    void *arg;
    const envfile_t *file;
} source_t;

/* Set for this process by its supervisor: the environment file cannot change them. */
static bool process_only(const char *name)
{
    static const char *const names[] = {"STREAMIO_ENV_FILE", "NOTIFY_SOCKET", "WATCHDOG_USEC",
                                        "WATCHDOG_PID"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0)
            return true;
    }
    return false;
}

static const char *lookup(const source_t *src, const char *name)
{
    const char *v = src->file && !process_only(name) ? envfile_get(src->file, name) : NULL;
    return v ? v : src->get(name, src->arg);
}

static int load_one(cfg_t *cfg, const opt_t *o, const char *v, buf_t *err)
{
    if (o->kind == OPT_NAMESPACES)
        cfg->namespaces_set = v != NULL;
    if (v == NULL || *v == '\0')
        v = o->def;
    return v ? parse_one(cfg, o, v, err) : 0;
}

/* ---- both directions: settings that only mean something with their feature on ---- */

/* `name` was set although `feature` is off: naming both, so the fix is obvious. */
static int needs(buf_t *err, const char *name, const char *feature)
{
    buf_printf(err, "streamio: invalid %s: expected %s with it (the feature is off without it)",
               name, feature);
    return -EINVAL;
}

static int check_bridge(const cfg_t *cfg, const source_t *src, buf_t *err)
{
    static const struct {
        const char *name, *feature;
    } deps[] = {
        {"SOCKETIO_INBOUND_EVENTS", "SOCKETIO_INBOUND_STREAM"},
        {"SOCKETIO_INBOUND_MAXLEN", "SOCKETIO_INBOUND_STREAM"},
        {"PRESENCE_ROOMS", "PRESENCE=true"},
        {"PRESENCE_STREAM", "PRESENCE=true"},
        {"PRESENCE_STREAM_MAXLEN", "PRESENCE_STREAM"},
        {"PRESENCE_TTL_MS", "PRESENCE=true or MAX_CONNECTIONS_PER_USER"},
        {"STREAM_MAX_DELIVERIES", "STREAM_DEAD_LETTER"},
        {"STREAM_MAX_ENTRY_BYTES", "STREAM_DEAD_LETTER"},
    };
    bool on[] = {cfg->inbound_stream[0],
                 cfg->inbound_stream[0],
                 cfg->presence,
                 cfg->presence,
                 cfg->presence_stream[0],
                 cfg->presence || cfg->max_connections_per_user > 0,
                 cfg->dead_letter_stream[0],
                 cfg->dead_letter_stream[0]};
    for (size_t i = 0; i < sizeof(deps) / sizeof(deps[0]); i++) {
        const char *v = lookup(src, deps[i].name);
        if (v && *v && !on[i])
            return needs(err, deps[i].name, deps[i].feature);
    }
    const char *own[] = {cfg->inbound_stream, cfg->presence_stream, cfg->dead_letter_stream};
    const char *names[] = {"SOCKETIO_INBOUND_STREAM", "PRESENCE_STREAM", "STREAM_DEAD_LETTER"};
    for (size_t i = 0; i < 3; i++) {
        for (size_t j = 0; j < i; j++) {
            if (own[i][0] && strcmp(own[i], own[j]) == 0) {
                buf_printf(err,
                           "streamio: invalid %s=\"%s\": expected a stream of its own, not %s's",
                           names[i], own[i], names[j]);
                return -EINVAL;
            }
        }
    }
    size_t tok = strlen(cfg->admin_token);
    if (tok && tok < CONFIG_MIN_ADMIN_TOKEN) {
        buf_printf(err, "streamio: invalid ADMIN_TOKEN=\"(hidden)\": expected at least %d bytes",
                   CONFIG_MIN_ADMIN_TOKEN);
        return -EINVAL;
    }
    return 0;
}

bool config_is_own_stream(const cfg_t *cfg, const char *stream, size_t len)
{
    const char *own[] = {cfg->inbound_stream, cfg->presence_stream, cfg->dead_letter_stream};
    for (size_t i = 0; i < 3; i++) {
        if (own[i][0] && strlen(own[i]) == len && memcmp(own[i], stream, len) == 0)
            return true;
    }
    return false;
}

/* ---- Redis topology and TLS: REDIS_URL and the rules between the Redis variables ---- */

static bool given(const source_t *src, const char *name)
{
    const char *v = lookup(src, name);
    return v && *v;
}

static int conflict(buf_t *err, const char *name, const char *shown, const char *expected)
{
    buf_printf(err, "streamio: invalid %s=\"%s\": expected %s", name, shown, expected);
    return -EINVAL;
}

/* REDIS_URL overrides the defaults of REDIS_HOST..REDIS_DB; a different explicit value of one of
 * them is a conflict, not a silent choice. */
static int apply_redis_url(cfg_t *cfg, const source_t *src, buf_t *err)
{
    char shown[sizeof(cfg->redis_url)];
    redis_url_redact(cfg->redis_url, shown, sizeof(shown));
    redis_url_t u;
    const char *why;
    if (redis_url_parse(cfg->redis_url, &u, &why))
        return conflict(err, "REDIS_URL", shown, why);
    char port[16];
    snprintf(port, sizeof(port), "%d", u.addr.port);
    if (given(src, "REDIS_HOST") && strcmp(cfg->redis_host, u.addr.host) != 0)
        return conflict(err, "REDIS_HOST", cfg->redis_host, "unset or the host of REDIS_URL");
    if (given(src, "REDIS_PORT") && cfg->redis_port != u.addr.port)
        return conflict(err, "REDIS_PORT", lookup(src, "REDIS_PORT"),
                        "unset or the port of REDIS_URL (6379 when it names none)");
    if (u.username[0] && given(src, "REDIS_USERNAME") &&
        strcmp(cfg->redis_username, u.username) != 0)
        return conflict(err, "REDIS_USERNAME", cfg->redis_username,
                        "unset or the user of REDIS_URL");
    if (u.password[0] && given(src, "REDIS_PASSWORD") &&
        strcmp(cfg->redis_password, u.password) != 0)
        return conflict(err, "REDIS_PASSWORD", "(hidden)", "unset or the password of REDIS_URL");
    if (u.db >= 0 && given(src, "REDIS_DB") && cfg->redis_db != u.db)
        return conflict(err, "REDIS_DB", lookup(src, "REDIS_DB"), "unset or the db of REDIS_URL");
    if (given(src, "REDIS_TLS") && cfg->redis_tls != u.tls)
        return conflict(err, "REDIS_TLS", lookup(src, "REDIS_TLS"),
                        u.tls ? "unset or true with a rediss:// REDIS_URL"
                              : "unset or false with a redis:// REDIS_URL (rediss:// is TLS)");
    memcpy(cfg->redis_host, u.addr.host, sizeof(u.addr.host));
    cfg->redis_port = u.addr.port;
    if (u.username[0])
        memcpy(cfg->redis_username, u.username, sizeof(u.username));
    if (u.password[0])
        memcpy(cfg->redis_password, u.password, sizeof(u.password));
    if (u.db >= 0)
        cfg->redis_db = u.db;
    cfg->redis_tls = u.tls;
    return 0;
}

/* The URL's host joins the cluster seeds (once). */
static int add_url_seed(cfg_t *cfg, buf_t *err)
{
    redis_addr_list_t *l = &cfg->redis_cluster_nodes;
    for (size_t i = 0; i < l->n; i++) {
        if (l->a[i].port == cfg->redis_port && strcmp(l->a[i].host, cfg->redis_host) == 0)
            return 0;
    }
    if (l->n == REDIS_URL_MAX_ADDRS) {
        buf_puts(err, "streamio: invalid REDIS_CLUSTER_NODES: expected at most 16 host:port "
                      "items, REDIS_URL's host included");
        return -EINVAL;
    }
    _Static_assert(sizeof(l->a[0].host) == sizeof(cfg->redis_host), "same host size");
    memcpy(l->a[l->n].host, cfg->redis_host, sizeof(cfg->redis_host));
    l->a[l->n++].port = cfg->redis_port;
    return 0;
}

static int check_redis_tls(const cfg_t *cfg, buf_t *err)
{
    static const struct {
        const char *name;
        size_t off;
    } files[] = {
        {"REDIS_TLS_CA_FILE", offsetof(cfg_t, redis_tls_ca_file)},
        {"REDIS_TLS_CERT_FILE", offsetof(cfg_t, redis_tls_cert_file)},
        {"REDIS_TLS_KEY_FILE", offsetof(cfg_t, redis_tls_key_file)},
        {"REDIS_TLS_SERVER_NAME", offsetof(cfg_t, redis_tls_server_name)},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        const char *v = (const char *)cfg + files[i].off;
        if (*v && !cfg->redis_tls)
            return conflict(err, files[i].name, v,
                            "unset, or REDIS_TLS=true or a rediss:// REDIS_URL with it");
    }
    if (cfg->redis_tls_insecure && !cfg->redis_tls)
        return conflict(err, "REDIS_TLS_INSECURE", "true",
                        "false, or REDIS_TLS=true or a rediss:// REDIS_URL with it");
    bool cert = cfg->redis_tls_cert_file[0], key = cfg->redis_tls_key_file[0];
    if (cert != key)
        return conflict(err, cert ? "REDIS_TLS_KEY_FILE" : "REDIS_TLS_CERT_FILE", "",
                        cert ? "the client key with REDIS_TLS_CERT_FILE (mutual TLS needs both)"
                             : "the client certificate with REDIS_TLS_KEY_FILE (mutual TLS "
                               "needs both)");
    return 0;
}

static int check_redis(cfg_t *cfg, const source_t *src, buf_t *err)
{
    bool cluster = cfg->redis_cluster_nodes.n > 0, sentinel = cfg->redis_sentinels.n > 0;
    if (cluster && sentinel)
        return conflict(err, "REDIS_SENTINELS", lookup(src, "REDIS_SENTINELS"),
                        "unset with REDIS_CLUSTER_NODES (one topology at a time)");
    if (cfg->redis_url[0] && sentinel)
        return conflict(err, "REDIS_SENTINELS", lookup(src, "REDIS_SENTINELS"),
                        "unset with REDIS_URL (with Sentinel, set REDIS_USERNAME, "
                        "REDIS_PASSWORD, REDIS_DB and REDIS_TLS instead)");
    if (sentinel && !cfg->redis_sentinel_name[0])
        return conflict(err, "REDIS_SENTINEL_NAME", "",
                        "the primary's name as the sentinels know it (with REDIS_SENTINELS)");
    if (!sentinel && cfg->redis_sentinel_name[0])
        return conflict(err, "REDIS_SENTINEL_NAME", cfg->redis_sentinel_name,
                        "unset without REDIS_SENTINELS");
    if (!sentinel && cfg->redis_sentinel_password[0])
        return conflict(err, "REDIS_SENTINEL_PASSWORD", "(hidden)",
                        "unset without REDIS_SENTINELS");
    int rc = cfg->redis_url[0] ? apply_redis_url(cfg, src, err) : 0;
    if (!rc && cluster && cfg->redis_url[0])
        rc = add_url_seed(cfg, err);
    if (!rc && cluster && cfg->redis_db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", cfg->redis_db);
        rc = conflict(err, given(src, "REDIS_DB") ? "REDIS_DB" : "REDIS_URL",
                      given(src, "REDIS_DB") ? db : "(its /db)",
                      "database 0 with REDIS_CLUSTER_NODES (a cluster has one database)");
    }
    return rc ? rc : check_redis_tls(cfg, err);
}

static int load(cfg_t *cfg, const source_t *src, buf_t *err)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->cluster_workers = default_workers();
    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
        int rc = load_one(cfg, &options[i], lookup(src, options[i].name), err);
        if (rc)
            return rc;
    }
    if (!cfg->cluster_enabled)
        cfg->cluster_workers = 1;
    /* the rates are off by default: the seed's server has none, and a default must never change
     * its answers. Once a rate is set, a client of the seed still joins all its rooms at once: the
     * bursts left unset let it (joins: at least MAX_ROOMS_PER_SOCKET; packets: twice that), so
     * the join past the limit answers "Max rooms limit reached", never "Rate limit exceeded" */
    if (!given(src, "RATE_LIMIT_JOINS_BURST") && cfg->rate_joins_burst < cfg->max_rooms_per_socket)
        cfg->rate_joins_burst = cfg->max_rooms_per_socket;
    if (!given(src, "RATE_LIMIT_EVENTS_BURST") &&
        cfg->rate_events_burst < 2 * cfg->max_rooms_per_socket)
        cfg->rate_events_burst = 2 * cfg->max_rooms_per_socket;
    int rc = check_redis(cfg, src, err);
    if (!rc)
        rc = check_auth(cfg, err);
    if (!rc)
        rc = check_internal_address(cfg, err);
    if (!rc)
        rc = check_recovery(cfg, err);
    return rc ? rc : check_bridge(cfg, src, err);
}

int config_load(cfg_t *cfg, config_getenv_fn get, void *arg, buf_t *err)
{
    source_t src = {get, arg, NULL};
    return load(cfg, &src, err);
}

static const char *env_get(const char *name, void *arg)
{
    (void)arg;
    return getenv(name);
}

int config_load_env(cfg_t *cfg, buf_t *err)
{
    const char *path = getenv("STREAMIO_ENV_FILE");
    source_t src = {env_get, NULL, NULL};
    envfile_t *ef = NULL;
    if (path && *path) {
        buf_t why;
        buf_init(&why);
        int rc = envfile_load(path, &ef, &why);
        if (rc) {
            buf_printf(err, "streamio: invalid STREAMIO_ENV_FILE: %s", why.data ? why.data : path);
            buf_free(&why);
            return rc;
        }
        buf_free(&why);
        src.file = ef;
    }
    int rc = load(cfg, &src, err);
    envfile_free(ef);
    return rc;
}

int config_load_one(cfg_t *cfg, const char *name, buf_t *err)
{
    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
        if (strcmp(options[i].name, name) == 0)
            return load_one(cfg, &options[i], getenv(name), err);
    }
    return -ENOENT;
}

int config_redis_auth(const cfg_t *cfg, const char *argv[3])
{
    if (!cfg->redis_username[0] && !cfg->redis_password[0])
        return 0;
    int n = 0;
    argv[n++] = "AUTH";
    if (cfg->redis_username[0])
        argv[n++] = cfg->redis_username;
    argv[n++] = cfg->redis_password;
    return n;
}

bool config_is_priority(const cfg_t *cfg, const char *stream, size_t len)
{
    for (size_t i = 0; i < cfg->priority.n; i++) {
        const char *p = cfg->priority.item[i];
        if (strlen(p) == len && memcmp(p, stream, len) == 0)
            return true;
    }
    return false;
}
