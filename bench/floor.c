/*
 * floor: what one send of one small WebSocket frame costs the sender on this box, the floor under
 * a server's CPU per delivery in the paced fan-out scenarios of `make bench`.
 *
 *   floor [--sockets 10] [--bytes 150] [--rate 2000] [--seconds 2] [--uring]
 *
 * Opens --sockets loopback TCP connections to a reader process (forked, one epoll loop that drains
 * them), then --rate times a second writes one --bytes frame to each socket (one write() each, as
 * a server fans one entry out to that many clients), for --seconds. With --uring the round's
 * writes are non-blocking IORING_OP_SEND SQEs handed to the kernel with one io_uring_enter, as
 * streamio's transport does. Prints one JSON object: the writer's CPU time (user + system,
 * getrusage) per write, in µs. Loopback only; stops by itself.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#define MAX_SOCKETS 1000

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* Drains every accepted connection until all are closed. */
static void reader(int lfd, int n)
{
    int ep = epoll_create1(0);
    if (ep < 0)
        die("epoll_create1");
    for (int i = 0; i < n; i++) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            die("accept");
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    char buf[65536];
    int open = n;
    while (open > 0) {
        struct epoll_event evs[64];
        int k = epoll_wait(ep, evs, 64, 10000);
        if (k <= 0)
            break;
        for (int i = 0; i < k; i++) {
            ssize_t r = read(evs[i].data.fd, buf, sizeof(buf));
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                close(evs[i].data.fd);
                open--;
            }
        }
    }
    _exit(0);
}

/* One round as sends through the ring: one submit, completions inline (MSG_DONTWAIT). The
 * number of sends that went whole. */
static long uring_round(struct io_uring *ring, const int *fds, int n, const char *frame, int bytes)
{
    for (int i = 0; i < n; i++)
        io_uring_prep_send(io_uring_get_sqe(ring), fds[i], frame, (size_t)bytes,
                           MSG_DONTWAIT | MSG_NOSIGNAL);
    if (io_uring_submit_and_wait(ring, (unsigned)n) < 0)
        die("io_uring_submit_and_wait");
    struct io_uring_cqe *cqe;
    unsigned head, k = 0;
    long whole = 0;
    io_uring_for_each_cqe(ring, head, cqe)
    {
        whole += cqe->res == bytes;
        k++;
    }
    io_uring_cq_advance(ring, k);
    return whole;
}

int main(int argc, char **argv)
{
    int nsock = 10, bytes = 150, rate = 2000, uring = 0;
    double seconds = 2;
    static const struct option opts[] = {{"sockets", 1, 0, 's'}, {"bytes", 1, 0, 'b'},
                                         {"rate", 1, 0, 'r'},    {"seconds", 1, 0, 't'},
                                         {"uring", 0, 0, 'u'},   {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 's':
            nsock = atoi(optarg);
            break;
        case 'b':
            bytes = atoi(optarg);
            break;
        case 'r':
            rate = atoi(optarg);
            break;
        case 't':
            seconds = atof(optarg);
            break;
        case 'u':
            uring = 1;
            break;
        default:
            fprintf(stderr,
                    "usage: floor [--sockets N] [--bytes N] [--rate N] [--seconds S] [--uring]\n");
            return 2;
        }
    }
    if (nsock < 1 || nsock > MAX_SOCKETS || bytes < 1 || bytes > 65536 || rate < 1 ||
        seconds <= 0 || seconds > 60) {
        fprintf(stderr, "floor: bad arguments\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct io_uring ring;
    int rc = uring ? io_uring_queue_init(MAX_SOCKETS, &ring, 0) : 0;
    if (rc) {
        fprintf(stderr, "floor: io_uring: %s\n", strerror(-rc));
        return 3;
    }
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) || listen(lfd, MAX_SOCKETS))
        die("listen");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0)
        reader(lfd, nsock);
    close(lfd);
    int fds[MAX_SOCKETS];
    for (int i = 0; i < nsock; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)))
            die("connect");
    }
    char *frame = calloc(1, (size_t)bytes);
    frame[0] = (char)0x81;
    long rounds = (long)(seconds * rate), writes = 0;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    double c0 = cpu_s();
    for (long r = 0; r < rounds; r++) {
        if (uring)
            writes += uring_round(&ring, fds, nsock, frame, bytes);
        for (int i = 0; i < nsock && !uring; i++) {
            if (write(fds[i], frame, (size_t)bytes) == bytes)
                writes++;
        }
        next.tv_nsec += 1000000000L / rate;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_sec++;
            next.tv_nsec -= 1000000000L;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    double used = cpu_s() - c0;
    for (int i = 0; i < nsock; i++)
        close(fds[i]);
    waitpid(pid, NULL, 0);
    free(frame);
    if (uring)
        io_uring_queue_exit(&ring);
    printf("{\"sockets\":%d,\"bytes\":%d,\"rate\":%d,\"uring\":%s,\"writes\":%ld,"
           "\"cpu_us_per_write\":%.3f}\n",
           nsock, bytes, rate, uring ? "true" : "false", writes,
           writes ? used * 1e6 / (double)writes : 0.0);
    return writes == rounds * nsock ? 0 : 1;
}
