/*
 * Fuzzes common/redis/redis_url: the input is a REDIS_URL (then, after a NUL, a host:port list).
 * A success must give sane values; a refusal a reason; the redacted form never shows the raw
 * password of a URL that parsed with one. The list is also read as a server address record
 * (`<key>:server:<tag>`, any Redis writer's) by worker/net/peer_dir: only an IP literal with a
 * port is taken, and it must be the address redis_addr_parse reads.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/redis_url.h"
#include "worker/net/peer_dir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0, len = strlen(needle);
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += len ? len : 1)
        n++;
    return n;
}

static void check_url(const char *s)
{
    redis_url_t u;
    const char *why = NULL;
    int rc = redis_url_parse(s, &u, &why);
    char shown[512];
    redis_url_redact(s, shown, sizeof(shown));
    assert(memchr(shown, '\0', sizeof(shown)));
    if (rc) {
        assert(why && *why);
        return;
    }
    assert(u.addr.host[0] && u.addr.port >= 1 && u.addr.port <= 65535);
    assert(u.db >= -1 && u.db <= 65535);
    assert(memchr(u.username, '\0', sizeof(u.username)) &&
           memchr(u.password, '\0', sizeof(u.password)));
    if (!u.password[0] || strlen(s) >= sizeof(shown))
        return;
    /* the raw password: from the first ':' of the authority to the last '@' */
    const char *auth = strstr(s, "://") + 3;
    const char *at = strrchr(auth, '@');
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    char raw[600];
    size_t n = (size_t)(at - colon - 1);
    memcpy(raw, colon + 1, n);
    raw[n] = '\0';
    /* "***" itself may contain a password made of stars */
    if (count(s, raw) == 1 && !strchr(raw, '*'))
        assert(!strstr(shown, raw));
}

/* A server address record: an IP literal and its port, never a name to resolve. */
static void check_peer(const char *s)
{
    struct sockaddr_storage ss;
    if (peer_dir_parse(s, strlen(s), &ss) != 0)
        return;
    redis_addr_t a;
    const char *why;
    assert(redis_addr_parse(s, strlen(s), 0, &a, &why) == 0 && a.port >= 1);
    char ip[INET6_ADDRSTRLEN];
    const void *at = ss.ss_family == AF_INET
                         ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
                         : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
    uint16_t port = ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                            : ((struct sockaddr_in6 *)&ss)->sin6_port;
    assert((ss.ss_family == AF_INET || ss.ss_family == AF_INET6) &&
           inet_ntop(ss.ss_family, at, ip, sizeof(ip)) && ntohs(port) == a.port);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    check_url(text);
    size_t first = strlen(text);
    const char *list = first < size ? text + first + 1 : text;
    check_peer(list);
    redis_addr_t a[REDIS_URL_MAX_ADDRS];
    size_t n = 0;
    const char *why = NULL;
    if (redis_addr_parse_list(list, 6379, a, REDIS_URL_MAX_ADDRS, &n, &why) == 0) {
        assert(n >= 1 && n <= REDIS_URL_MAX_ADDRS);
        for (size_t i = 0; i < n; i++) {
            char out[300];
            redis_addr_format(&a[i], out, sizeof(out));
            redis_addr_t back;
            assert(redis_addr_parse(out, strlen(out), 1, &back, &why) == 0);
            assert(back.port == a[i].port && strcmp(back.host, a[i].host) == 0);
        }
    } else {
        assert(why);
    }
    free(text);
    return 0;
}
