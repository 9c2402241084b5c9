/*
 * Fuzzes a worker's client side end to end on what one TCP client sends: worker/http/http_server
 * (relay hello, requests, limits), the router, worker/eio/eio_endpoint (the handshake checks of
 * EIO, transport, sid, method, Origin and CORS, polling GETs and POSTs, upgrades), worker/ws
 * (the real wslay path) and worker/sio with the seed's events. The input is what the client
 * writes, handed to the server as bytes already read from a loopback TCP connection
 * (http_server_adopt, as a worker adopts a connection another hands over); the server's answers
 * are read and dropped, then the client ends its side and closes. Each input starts from a fresh
 * worker stack on one loop (one worker, Origin list "http://a.example", tag "AbCd") and ends with
 * it freed, so nothing may be left on the loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "common/buf.h"
#include "common/config.h"
#include "tests/fuzz/fuzz_worker.h"
#include "worker/eio/eio_endpoint.h"
#include "worker/http/cors.h"
#include "worker/http/http_server.h"
#include "worker/http/router.h"
#include "worker/sio/seed_events.h"
#include "worker/sio/sio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A connected loopback pair: *client, *server. */
static void tcp_pair(int *client, int *server)
{
    static int lfd = -1;
    static struct sockaddr_in at;
    if (lfd < 0) {
        /* as worker.c does: an answer written after the client closed is EPIPE, not a signal */
        signal(SIGPIPE, SIG_IGN);
        socklen_t len = sizeof(at);
        at.sin_family = AF_INET;
        at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&at, sizeof(at)) || listen(lfd, 8) ||
            getsockname(lfd, (struct sockaddr *)&at, &len))
            __builtin_trap();
    }
    *client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*client < 0)
        __builtin_trap();
    /* libFuzzer's timeout alarm may interrupt connect, which then goes on by itself */
    if (connect(*client, (struct sockaddr *)&at, sizeof(at)) && errno != EINTR)
        __builtin_trap();
    do
        *server = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    while (*server < 0 && errno == EINTR);
    if (*server < 0)
        __builtin_trap();
    /* both ends reset when closed: thousands of inputs a second would otherwise fill the
     * loopback ports with TIME_WAIT */
    struct linger reset = {1, 0};
    setsockopt(*client, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    setsockopt(*server, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
}

static void drain(int fd)
{
    char sink[65536];
    while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0) {
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uv_loop_t *loop;
    const cfg_t *cfg;
    fuzz_worker(&loop, &cfg);
    stats_worker_t stats = {0};
    http_limits_t lim = {
        .max_header_bytes = HTTP_DEFAULT_MAX_HEADER_BYTES,
        .max_body = 4096,
        .header_timeout_ms = 60000,
        .body_timeout_ms = 60000,
        .keepalive_timeout_ms = 5000,
        .max_ws_message = 4096,
        .max_outq_bytes = 1u << 20,
        .close_timeout_ms = 1000,
        .no_io_uring = true,
        .per_message_deflate = size && (data[0] & 1),
    };
    router_t *router = router_new();
    http_server_t *hs;
    eio_endpoint_t *ep;
    sio_t *sio;
    cors_t *cors = cors_new(cfg->cors_origins);
    if (http_server_new(&hs, loop, &lim, "AbCd", router, &stats))
        __builtin_trap();
    eio_endpoint_config_t ec = {
        .sessions = {.ping_interval_ms = 25000,
                     .ping_timeout_ms = 20000,
                     .upgrade_timeout_ms = 10000,
                     .ready_timeout_ms = 45000,
                     .max_payload = 4096,
                     .tag = "AbCd",
                     .max_poll_queue = 1u << 20},
        .polling = true,
        .websocket = true,
        .cors = cors,
        .workers = 1,
    };
    if (eio_endpoint_new(&ep, loop, &ec, hs, &stats) || sio_new(&sio, loop, cfg, false, &stats))
        __builtin_trap();
    seed_events_t *seed = seed_events_new(sio);
    eio_endpoint_serve(ep, router, "/socket.io/", sio_handlers(sio));
    int client, server;
    tcp_pair(&client, &server);
    if (http_server_adopt(hs, server, (const char *)data, size, NULL))
        __builtin_trap();
    for (int i = 0; i < 8; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        drain(client);
    }
    /* the client ends its side (the server reads the end of the stream), then closes */
    shutdown(client, SHUT_WR);
    for (int i = 0; i < 4; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        drain(client);
    }
    close(client);
    uv_run(loop, UV_RUN_NOWAIT);
    http_server_free(hs);
    eio_endpoint_free(ep);
    seed_events_free(seed);
    sio_free(sio);
    router_free(router);
    cors_free(cors);
    /* everything closed: the loop has nothing left to run */
    if (uv_run(loop, UV_RUN_DEFAULT) != 0)
        __builtin_trap();
    return 0;
}
