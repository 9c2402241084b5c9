/*
 * connfloor: what one Socket.IO WebSocket connection's handshake costs on this box with nothing
 * but the kernel's work and the fewest system calls, the floor under connect-10k of `make bench`.
 *
 *   connfloor [--clients 10000] [--parallel 256]
 *
 * A forked server process and this client process exchange the bytes of loadgen's connect mode
 * and of a server's answers: the HTTP upgrade request and the 101 with the Engine.IO open packet in
 * one write, the masked `40` and its answer, the masked join-room event and its ack, each side
 * waiting for the other's message before it writes its next. No parsing beyond lengths, no
 * allocation, one epoll loop each (edge-triggered on the client, as loadgen; the server accepts
 * until EAGAIN). Client: socket, connect, epoll_ctl, 3 writes, 3 reads; server: accept4,
 * epoll_ctl, 3 reads, 3 writes (closes are after the measured window). Prints one JSON object:
 * connections per second up to the last `40` answer (loadgen's handshakes_per_s) and each side's
 * CPU (user + system, getrusage) per connection up to the last ack. Loopback only; stops by itself.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 60000

static const char REQUEST[] = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                              "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
/* The 101 and the open packet as one write, sizes as streamio's (a 20-character sid) */
static const char OPEN[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\n"
                           "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
                           "\x81\x6b"
                           "0{\"sid\":\"AAAAAAAAAAAAAAAAAAAA\",\"upgrades\":[],\"pingInterval\":"
                           "25000,\"pingTimeout\":20000,\"maxPayload\":1000000}";
static const char NSP_OK[] = "\x81\x20"
                             "40{\"sid\":\"BBBBBBBBBBBBBBBBBBBB\"}";
static const char ACK[] = "\x81\x10"
                          "430[{\"ok\":true}]";
/* masked client frames: "40" and 420["join-room","bench.r0"] (mask bytes zero: same cost) */
static const char NSP[] = "\x81\x82\0\0\0\0"
                          "40";
static const char JOIN[] = "\x81\x9b\0\0\0\0"
                           "420[\"join-room\",\"bench.r0\"]";

static double cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* Each message arrives whole in one read on loopback (each side writes the next only after the
 * answer): a read of another length means the exchange broke. */
static void expect(ssize_t got, size_t want, const char *what)
{
    if (got != (ssize_t)want) {
        fprintf(stderr, "connfloor: %s: read %zd bytes, expected %zu\n", what, got, want);
        exit(1);
    }
}

static void put(int fd, const char *p, size_t n)
{
    if (write(fd, p, n) != (ssize_t)n)
        die("write");
}

/* Answers n connections' three messages; reports its CPU on `report` after the last ack, exits
 * once every client closed. */
static void server(int lfd, int n, int report)
{
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev))
        die("epoll");
    static uint8_t stage[MAX_CLIENTS + 1024];
    char buf[4096];
    int acks = 0, closed = 0;
    while (closed < n) {
        struct epoll_event evs[256];
        int k = epoll_wait(ep, evs, 256, 30000);
        if (k <= 0)
            die("server epoll_wait");
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                    if (c >= (int)sizeof(stage) || epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev))
                        die("accept");
                    stage[c] = 0;
                }
                continue;
            }
            ssize_t r = read(fd, buf, sizeof(buf));
            if (r == 0) {
                close(fd);
                closed++;
                continue;
            }
            if (r < 0)
                die("server read");
            switch (stage[fd]++) {
            case 0:
                expect(r, sizeof(REQUEST) - 1, "request");
                put(fd, OPEN, sizeof(OPEN) - 1);
                break;
            case 1:
                expect(r, sizeof(NSP) - 1, "40");
                put(fd, NSP_OK, sizeof(NSP_OK) - 1);
                break;
            case 2:
                expect(r, sizeof(JOIN) - 1, "join");
                put(fd, ACK, sizeof(ACK) - 1);
                if (++acks == n) {
                    double us = cpu_us();
                    if (write(report, &us, sizeof(us)) != sizeof(us))
                        die("report");
                }
                break;
            default:
                expect(r, 0, "end");
            }
        }
    }
    _exit(0);
}

typedef struct client {
    int fd;
    uint8_t stage; /* 0 connecting, 1 upgrade sent, 2 `40` sent, 3 join sent, 4 joined */
} client_t;

int main(int argc, char **argv)
{
    int n = 10000, parallel = 256;
    static const struct option opts[] = {
        {"clients", 1, 0, 'c'}, {"parallel", 1, 0, 'p'}, {0, 0, 0, 0}};
    for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if (o == 'c')
            n = atoi(optarg);
        else if (o == 'p')
            parallel = atoi(optarg);
        else {
            fprintf(stderr, "usage: connfloor [--clients N] [--parallel N]\n");
            return 2;
        }
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (n < 1 || n > MAX_CLIENTS || parallel < 1 || (rlim_t)n + 64 > rl.rlim_cur) {
        fprintf(stderr, "connfloor: bad arguments (or too few descriptors)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    int one = 1;
    if (lfd < 0 || setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
        bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) || listen(lfd, 4096))
        die("listen");
    int pfd[2];
    if (pipe(pfd))
        die("pipe");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        close(pfd[0]);
        server(lfd, n, pfd[1]);
    }
    close(pfd[1]);
    close(lfd);

    client_t *cs = calloc((size_t)n, sizeof(*cs));
    int ep = epoll_create1(0);
    if (!cs || ep < 0)
        die("client setup");
    int next = 0, inflight = 0, nsp_ok = 0, joined = 0;
    uint64_t t0 = now_ns(), t_nsp = 0;
    double c0 = cpu_us(), c_end = 0;
    char buf[4096];
    while (joined < n) {
        for (; next < n && inflight < parallel; next++, inflight++) {
            client_t *c = &cs[next];
            c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (c->fd < 0 ||
                (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS))
                die("connect");
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev))
                die("epoll_ctl");
        }
        struct epoll_event evs[256];
        int k = epoll_wait(ep, evs, 256, 30000);
        if (k <= 0)
            die("client epoll_wait");
        for (int i = 0; i < k; i++) {
            client_t *c = evs[i].data.ptr;
            if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                fprintf(stderr, "connfloor: connection failed\n");
                return 1;
            }
            if (c->stage == 0) {
                if (!(evs[i].events & EPOLLOUT))
                    continue;
                put(c->fd, REQUEST, sizeof(REQUEST) - 1);
                c->stage = 1;
                continue;
            }
            if (!(evs[i].events & EPOLLIN) || c->stage == 4)
                continue;
            ssize_t r = read(c->fd, buf, sizeof(buf));
            if (c->stage == 1) {
                expect(r, sizeof(OPEN) - 1, "101 + open");
                put(c->fd, NSP, sizeof(NSP) - 1);
            } else if (c->stage == 2) {
                expect(r, sizeof(NSP_OK) - 1, "40 answer");
                put(c->fd, JOIN, sizeof(JOIN) - 1);
                inflight--;
                if (++nsp_ok == n)
                    t_nsp = now_ns();
            } else {
                expect(r, sizeof(ACK) - 1, "ack");
                joined++;
            }
            c->stage++;
        }
    }
    c_end = cpu_us();
    double srv_us = 0;
    if (read(pfd[0], &srv_us, sizeof(srv_us)) != sizeof(srv_us))
        die("server report");
    for (int i = 0; i < n; i++)
        close(cs[i].fd);
    int st = 0;
    waitpid(pid, &st, 0);
    free(cs);
    double secs = (double)(t_nsp - t0) / 1e9;
    printf("{\"clients\":%d,\"parallel\":%d,\"handshakes_per_s\":%.0f,"
           "\"client_cpu_us_per_conn\":%.1f,\"server_cpu_us_per_conn\":%.1f}\n",
           n, parallel, secs > 0 ? n / secs : 0, (c_end - c0) / n, srv_us / n);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
