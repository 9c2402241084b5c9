/* keepalive: see keepalive.h. */
#include "common/keepalive.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define IDLE_S 5
#define INTERVAL_S 2
#define PROBES 3

int keepalive_set(int fd, unsigned dead_after_ms)
{
    int domain = 0;
    socklen_t len = sizeof(domain);
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0)
        return -errno;
    if (domain != AF_INET && domain != AF_INET6)
        return -EOPNOTSUPP;
    _Static_assert(IDLE_S * 1000 + INTERVAL_S * PROBES * 1000 == KEEPALIVE_DEAD_AFTER_MS,
                   "the user timeout matches the keepalive schedule");
    unsigned user = dead_after_ms ? dead_after_ms : KEEPALIVE_DEAD_AFTER_MS;
    int on = 1, idle = IDLE_S, intvl = INTERVAL_S, cnt = PROBES;
    if (user > KEEPALIVE_DEAD_AFTER_MS)
        cnt = (int)((user - IDLE_S * 1000) / (INTERVAL_S * 1000));
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user, sizeof(user)) != 0)
        return -errno;
    return 0;
}
