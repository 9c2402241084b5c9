/*
 * redis_url: parses where Redis is, as users write it: a REDIS_URL
 * (`redis[s]://[user[:password]@]host[:port][/db]`, the form of Node, Laravel and most hosting)
 * and host:port lists (REDIS_CLUSTER_NODES, REDIS_SENTINELS). IPv6 hosts go in brackets; user
 * and password are percent-decoded. It owns no state and depends on libc only (common/config
 * calls it), never connects, never logs, and never prints a password: redis_url_redact is how
 * a URL is shown in a message.
 */
#ifndef STREAMIO_COMMON_REDIS_URL_H
#define STREAMIO_COMMON_REDIS_URL_H

#include <stdbool.h>
#include <stddef.h>

#define REDIS_URL_HOST_MAX 256 /* host names are at most 255 bytes */
#define REDIS_URL_CRED_MAX 256 /* decoded user and password, NUL included */
#define REDIS_URL_MAX_ADDRS 16 /* entries of one host:port list */

typedef struct redis_addr {
    char host[REDIS_URL_HOST_MAX]; /* without brackets: "::1", "10.0.0.1", "redis.example" */
    int port;
} redis_addr_t;

/* A host:port list as the configuration keeps it. */
typedef struct redis_addr_list {
    size_t n;
    redis_addr_t a[REDIS_URL_MAX_ADDRS];
} redis_addr_list_t;

typedef struct redis_url {
    bool tls; /* rediss:// */
    redis_addr_t addr;
    char username[REDIS_URL_CRED_MAX]; /* "" = none (the default user) */
    char password[REDIS_URL_CRED_MAX]; /* "" = none */
    int db;                            /* -1 when the URL names none */
} redis_url_t;

/*
 * Parses a REDIS_URL into *out (default port 6379). 0, or -EINVAL with *why set to a static
 * phrase saying what is expected (safe to print: it never quotes the input).
 */
int redis_url_parse(const char *s, redis_url_t *out, const char **why);

/*
 * Parses one "host[:port]" of n bytes (no NUL needed); default_port when no port is given.
 * 0 or -EINVAL with *why set.
 */
int redis_addr_parse(const char *s, size_t n, int default_port, redis_addr_t *out,
                     const char **why);

/*
 * Parses a comma-separated list of addresses (blanks around items ignored) into out[0..cap),
 * *n set to the count. 0, or -EINVAL (*why set) for an empty list, an empty item, a bad item or
 * more than cap items.
 */
int redis_addr_parse_list(const char *s, int default_port, redis_addr_t *out, size_t cap, size_t *n,
                          const char **why);

/* n ASCII digits (1 to 10: no sign, no blank) whose value is at most max, into *out. 0 or
 * -EINVAL. The one number reader of the layer's parsers (ports, databases, slots). */
int redis_parse_uint(const char *s, size_t n, unsigned max, unsigned *out);

/* "host:port", or "[v6]:port" for an IPv6 host, into out (cap bytes, truncated, NUL-terminated). */
void redis_addr_format(const redis_addr_t *a, char *out, size_t cap);

/*
 * Copies s into out (cap bytes, truncated, NUL-terminated) with the password of its userinfo
 * replaced by "***". Works on malformed URLs too: everything from the first ':' after the scheme
 * to the last '@' is hidden (more than the password, never less).
 */
void redis_url_redact(const char *s, char *out, size_t cap);

#endif
