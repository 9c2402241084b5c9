/*
 * config: the environment contract of the Node server streamio replaces (same names, same
 * defaults) plus streamio's own settings, parsed once by the master into an immutable cfg_t that
 * workers inherit through fork. A bad value is a startup error naming the variable, the value and
 * what is allowed; nothing is silently clamped.
 */
#ifndef STREAMIO_COMMON_CONFIG_H
#define STREAMIO_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/redis_url.h"

#define CONFIG_MAX_LIST 256      /* items of a comma-separated list variable */
#define CONFIG_MAX_NAMESPACES 32 /* "/" included */
#define CONFIG_NAMESPACE_SIZE 64 /* a namespace is at most 63 bytes */
#define CONFIG_TRANSPORT_POLLING 1u
#define CONFIG_TRANSPORT_WEBSOCKET 2u
#define CONFIG_SOCKET_PATH 108 /* sizeof(sockaddr_un.sun_path): a unix socket's path fits in it */

typedef enum config_adapter {
    CONFIG_ADAPTER_OFF = 0, /* workers of this server still share rooms, on a private channel */
    CONFIG_ADAPTER_CLASSIC, /* @socket.io/redis-adapter PUBLISH/PSUBSCRIBE, prefix redis_key */
    CONFIG_ADAPTER_SHARDED, /* SPUBLISH/SSUBSCRIBE */
    CONFIG_ADAPTER_STREAMS, /* @socket.io/redis-streams-adapter: XADD/XREAD + pub/sub */
} config_adapter_t;

/* A comma-separated list variable: items trimmed of blanks, empty ones dropped. */
typedef struct config_list {
    size_t n;
    char *item[CONFIG_MAX_LIST]; /* point into buf */
    char buf[8192];
} config_list_t;

typedef struct cfg {
    char redis_host[256];
    int redis_port;
    char redis_password[256];
    char redis_username[256]; /* REDIS_USERNAME: Redis 6 ACL user; "" = the default user */
    int redis_db;
    char host[256];
    int port;
    /* STREAMIO_INTERNAL_ADDRESS: where the other streamio servers reach this one (an IP literal
     * and a port; default 127.0.0.1:PORT, or HOST:PORT when HOST is another IP), announced in
     * Redis for requests of sessions this server owns */
    char internal_address[300];

    int pool_size;
    int max_pools;
    int scan_count;
    int max_streams_per_read;
    int max_concurrent_pools;
    int batch_delay_ms;
    int max_messages_batch;
    int read_block_ms;
    int discovery_interval_ms;
    int discovery_safety_ms; /* SCAN passes while key events are published */
    char stream_pattern[512];
    bool stream_retain;         /* STREAM_DELETE_POLICY=retain: XACK only, XTRIM MINID by age */
    int stream_retain_ms;       /* STREAM_RETAIN_MS: how long retained entries stay */
    int stream_inactive_ttl_ms; /* STREAM_INACTIVE_TTL: no entry for this long -> parked */
    int stream_claim_idle_ms;   /* STREAM_CLAIM_IDLE_MS: pending this long -> XAUTOCLAIM */
    int stream_owner_ttl_ms;    /* STREAM_OWNER_TTL_MS: a server's lease on its streams */
    bool keyspace_events;       /* STREAM_KEYSPACE_EVENTS: wake parked streams on xadd events */
    char consumer_group[128];
    config_list_t priority;       /* PRIORITY_STREAMS */
    config_list_t stream_exclude; /* STREAM_EXCLUDE: globs of keys that are never rooms */

    bool cluster_enabled;
    int cluster_workers; /* effective worker count (1 when CLUSTER_ENABLED=false) */
    config_adapter_t adapter;
    char redis_key[128];
    /* SOCKETIO_REDIS_ADAPTER=streams: the adapter's stream (with stream_count > 1, the prefix of
     * `<name>-<i>`), its MAXLEN ~ trimming, and where its sessions are kept */
    char stream_name[128]; /* SOCKETIO_REDIS_STREAM_NAME */
    int stream_count;      /* SOCKETIO_REDIS_STREAM_COUNT */
    int stream_maxlen;     /* SOCKETIO_REDIS_STREAM_MAXLEN */

    int max_rooms_per_socket;
    int ping_interval_ms;
    int ping_timeout_ms;
    int connect_timeout_ms;
    int max_payload;
    int shutdown_timeout_ms;
    int requests_timeout_ms; /* streamioctl's cluster requests wait this long for every server */
    log_level_t log_level;

    /* access and limits (README "Security"); worker/auth and worker/limits consume them */
    bool auth_enabled;
    char auth_jwt_secret[512];           /* HS256 key; never printed */
    char auth_jwt_public_key_file[4096]; /* PEM RSA (RS256) or P-256 (ES256) public key */
    char auth_jwt_issuer[256];           /* "" = not checked */
    char auth_jwt_audience[256];         /* "" = not checked */
    int auth_jwt_leeway_s;               /* clock skew allowed on exp/nbf */
    int max_connections;                 /* whole server, 0 = unlimited */
    int max_connections_per_ip;          /* per worker process, 0 = unlimited */
    int memory_high_water_mb;            /* per worker RSS that sheds new connections, 0 = off */
    int rate_events_per_sec;             /* per socket, 0 = unlimited */
    int rate_events_burst;
    int rate_joins_per_sec; /* per socket, 0 = unlimited */
    int rate_joins_burst;
    int rate_max_violations;  /* refused packets in one LIMITS_WINDOW_MS before a disconnect */
    bool connection_recovery; /* CONNECTION_RECOVERY: Socket.IO connection state recovery */
    bool per_message_deflate; /* SOCKETIO_PER_MESSAGE_DEFLATE: RFC 7692 on WebSockets */
    bool io_uring;            /* IO_URING=auto: client writes batched through io_uring */
    int recovery_window_ms;   /* CONNECTION_RECOVERY_WINDOW_MS: how long a session is kept */

    /* Socket.IO server options, validated here and consumed as they are by worker/eio and
     * worker/sio */
    char namespaces[CONFIG_MAX_NAMESPACES][CONFIG_NAMESPACE_SIZE]; /* "/" first, no duplicate */
    int nnamespaces;
    unsigned transports;     /* SOCKETIO_TRANSPORTS: CONFIG_TRANSPORT_* bits, at least one */
    char cors_origins[4096]; /* SOCKETIO_CORS_ORIGINS: "" none, "*", or origins joined by ',' */

    /* slowloris (worker/conn): a request head, then its body, must arrive within these */
    int http_header_timeout_ms;
    int http_body_timeout_ms;
    int http_keepalive_timeout_ms; /* idle time allowed between requests on a keep-alive conn */

    bool log_json;       /* LOG_FORMAT=json: one JSON object per log line */
    bool conformance;    /* STREAMIO_CONFORMANCE: the official suites' test handlers */
    bool debug_page;     /* STREAMIO_DEBUG_PAGE: /debug serves a page to watch a room */
    bool namespaces_set; /* SOCKETIO_NAMESPACES was given (even empty) */

    /* the process's own settings: the master reads them at start; a reload keeps them */
    char env_file[4096];                     /* STREAMIO_ENV_FILE */
    char pid_file[4096];                     /* STREAMIO_PID_FILE; "" = none */
    char control_socket[CONFIG_SOCKET_PATH]; /* STREAMIO_CONTROL_SOCKET; "" = none */
    char notify_socket[CONFIG_SOCKET_PATH];  /* NOTIFY_SOCKET (systemd); "" = not notifying */
    long watchdog_usec;                      /* WATCHDOG_USEC (systemd); 0 = no watchdog */
    int watchdog_pid;                        /* WATCHDOG_PID (systemd); 0 = not given */

    /* Redis topology and TLS (common/redis). REDIS_URL fills redis_host..redis_db above and
     * redis_tls; with REDIS_CLUSTER_NODES its host is one more seed. */
    char redis_url[2048];           /* REDIS_URL as given; never printed unredacted */
    bool redis_tls;                 /* REDIS_TLS=true or a rediss:// URL */
    bool redis_tls_insecure;        /* REDIS_TLS_INSECURE: no certificate verification */
    char redis_tls_ca_file[4096];   /* "" = the system CA store */
    char redis_tls_cert_file[4096]; /* with redis_tls_key_file: mutual TLS */
    char redis_tls_key_file[4096];
    char redis_tls_server_name[256];       /* SNI and verified name; "" = the host */
    redis_addr_list_t redis_cluster_nodes; /* REDIS_CLUSTER_NODES seeds; n = 0: no cluster */
    redis_addr_list_t redis_sentinels;     /* REDIS_SENTINELS; n = 0: no Sentinel */
    char redis_sentinel_name[256];         /* REDIS_SENTINEL_NAME: the primary's name */
    char redis_sentinel_password[256];     /* REDIS_SENTINEL_PASSWORD: AUTH to the sentinels */

    /* both directions (README "Back ends"): each off by default. Glob lists are kept as the
     * setting's text, validated here and read with glob_list_from_csv by their module. */
    char inbound_stream[256];     /* SOCKETIO_INBOUND_STREAM: client events go there; "" = off */
    char inbound_events[4096];    /* SOCKETIO_INBOUND_EVENTS: globs of the events accepted */
    int inbound_maxlen;           /* SOCKETIO_INBOUND_MAXLEN: XADD MAXLEN ~; 0 = no trimming */
    bool presence;                /* PRESENCE: who is in which room, across every server */
    char presence_rooms[4096];    /* PRESENCE_ROOMS: globs of rooms told presence:join/leave */
    char presence_stream[256];    /* PRESENCE_STREAM: online/offline entries; "" = none */
    int presence_stream_maxlen;   /* PRESENCE_STREAM_MAXLEN: XADD MAXLEN ~; 0 = no trimming */
    int presence_ttl_ms;          /* PRESENCE_TTL_MS: a silent server's entries go after it */
    int max_connections_per_user; /* MAX_CONNECTIONS_PER_USER: whole cluster; 0 = unlimited */
    char admin_token[256]; /* ADMIN_TOKEN: Bearer token of the admin endpoints; never printed */
    char dead_letter_stream[256]; /* STREAM_DEAD_LETTER: undeliverable entries go there; "" = off */
    int max_deliveries;           /* STREAM_MAX_DELIVERIES: more claims than this = poison */
    int max_entry_bytes;          /* STREAM_MAX_ENTRY_BYTES: larger entries are dead letters */
} cfg_t;

/* Shortest AUTH_JWT_SECRET accepted: 256 bits, the HS256 key size of RFC 7518 §3.2. */
#define CONFIG_MIN_JWT_SECRET 32
/* Shortest ADMIN_TOKEN accepted: 128 bits as 32 hex digits, or any 16+ byte secret. */
#define CONFIG_MIN_ADMIN_TOKEN 16
/* Bounds of the glob lists (SOCKETIO_INBOUND_EVENTS, PRESENCE_ROOMS): items, bytes per item. */
#define CONFIG_MAX_GLOBS 256
#define CONFIG_MAX_GLOB 512

/* Looks a variable up; NULL when unset. Lets tests feed a table instead of the environment. */
typedef const char *(*config_getenv_fn)(const char *name, void *arg);

/*
 * Fills *cfg from the variables `get` returns (defaults for unset or empty ones).
 * On a bad value returns -EINVAL and appends one line to `err`, e.g.
 * `streamio: invalid PORT="abc": expected an integer from 1 to 65535`.
 */
int config_load(cfg_t *cfg, config_getenv_fn get, void *arg, buf_t *err);
/*
 * config_load over the process environment and the file STREAMIO_ENV_FILE names (its values win,
 * except for the process's own variables: STREAMIO_ENV_FILE, NOTIFY_SOCKET and WATCHDOG_*, which
 * only the environment sets). The only reader of the environment in the program: call it at start
 * and on every reload. An unreadable or malformed file is -EINVAL (or its -errno) with
 * "streamio: invalid STREAMIO_ENV_FILE: <path>:<line>: <why>" in err.
 */
int config_load_env(cfg_t *cfg, buf_t *err);
/* Only the variable `name` from the process environment, into its field of *cfg (the rest is left
 * as it is): for programs with one setting, such as streamioctl's STREAMIO_CONTROL_SOCKET.
 * 0, -EINVAL (one line in err) or -ENOENT when the table has no such variable. */
int config_load_one(cfg_t *cfg, const char *name, buf_t *err);
bool config_is_priority(const cfg_t *cfg, const char *stream, size_t len);
/*
 * The AUTH command every Redis connection sends first: fills argv with "AUTH", the
 * REDIS_USERNAME when set, and REDIS_PASSWORD (borrowed from cfg). Returns argc: 0 (no AUTH:
 * neither is set), 2 or 3.
 */
int config_redis_auth(const cfg_t *cfg, const char *argv[3]);
/* One of the streams streamio writes for the back end (SOCKETIO_INBOUND_STREAM, PRESENCE_STREAM,
 * STREAM_DEAD_LETTER): never read as a room, whatever STREAM_PATTERN says. */
bool config_is_own_stream(const cfg_t *cfg, const char *stream, size_t len);

#endif
