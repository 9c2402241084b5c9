/* watch: see watch.h. */
#include "ctl/watch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "ctl/sio_client.h"
#include "ctl/ws_client.h"

#define OPEN_TIMEOUT_MS 5000
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 5000
#define EIO_TARGET "/socket.io/?EIO=4&transport=websocket"

typedef struct watch {
    ws_client_t *ws;
    unsigned long long printed, count; /* count 0: no limit */
} watch_t;

static int send_msg(void *arg, const char *msg, size_t len)
{
    watch_t *w = arg;
    return ws_client_send_text(w->ws, msg, len);
}

static void print_msg(void *arg, const char *json, size_t len)
{
    watch_t *w = arg;
    fwrite(json, 1, len, stdout);
    fputc('\n', stdout);
    fflush(stdout); /* one line at a time, for pipes */
    w->printed++;
}

static void note(void *arg, const char *text)
{
    (void)arg;
    fprintf(stderr, "streamioctl: %s\n", text);
}

static void usage(void)
{
    fprintf(stderr, "usage: streamioctl watch <room>... [--url http://host:port] [--token JWT] "
                    "[--count N]\n       (default URL " WATCH_DEFAULT_URL ")\n");
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

/* One connection, until it ends: 0 --count reached, 1 refused, -1 lost (reconnect). */
static int session(watch_t *w, sio_client_t *sc, bool *joined, buf_t *err)
{
    sio_client_restart(sc);
    for (;;) {
        const char *msg;
        size_t len;
        int silence = sio_client_silence_ms(sc);
        int rc = ws_client_recv(w->ws, silence ? silence : OPEN_TIMEOUT_MS, &msg, &len, err);
        if (rc == -ETIMEDOUT)
            buf_printf(err, "nothing from the server for %d ms",
                       silence ? silence : OPEN_TIMEOUT_MS);
        if (rc)
            return -1;
        rc = sio_client_feed(sc, msg, len, err);
        if (rc == -EACCES || rc == -EPROTO)
            return 1;
        if (rc)
            return -1;
        *joined = *joined || sio_client_joined(sc);
        if (w->count && w->printed >= w->count)
            return 0;
    }
}

int watch_main(int argc, char **argv)
{
    const char *url = WATCH_DEFAULT_URL, *token = NULL;
    const char **rooms = xcalloc((size_t)argc + 1, sizeof(*rooms));
    size_t nrooms = 0;
    watch_t w = {0};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(a, "--url") == 0 && has_value) {
            url = argv[++i];
        } else if (strcmp(a, "--token") == 0 && has_value) {
            token = argv[++i];
        } else if (strcmp(a, "--count") == 0 && has_value) {
            char *end;
            w.count = strtoull(argv[++i], &end, 10);
            if (*end || !w.count || argv[i][0] == '-') {
                usage();
                free(rooms);
                return 2;
            }
        } else if (a[0] == '-' && a[1] == '-') {
            usage();
            free(rooms);
            return 2;
        } else if (*a) {
            rooms[nrooms++] = a;
        }
    }
    if (!rooms || nrooms == 0) {
        usage();
        free(rooms);
        return 2;
    }
    buf_t err;
    buf_init(&err);
    ws_url_t u;
    if (ws_url_parse(url, &u, &err)) {
        fprintf(stderr, "streamioctl: %s\n", err.data);
        buf_free(&err);
        free(rooms);
        return 2;
    }
    sio_client_cb_t cb = {send_msg, print_msg, note, &w};
    sio_client_t *sc = NULL;
    if (sio_client_new(&sc, rooms, nrooms, token, &cb)) {
        fprintf(stderr, "streamioctl: out of memory\n");
        free(rooms);
        return 1;
    }
    free(rooms);
    bool joined = false;
    int status = -1, backoff = BACKOFF_FIRST_MS;
    while (status < 0) {
        buf_reset(&err);
        int rc = ws_client_open(&w.ws, &u, EIO_TARGET, OPEN_TIMEOUT_MS, &err);
        if (rc && !joined) {
            /* never connected: a wrong URL or a server that is down, said at once */
            status = rc == -EPROTO ? 1 : 3;
        } else if (rc == 0) {
            bool before = joined;
            status = session(&w, sc, &joined, &err);
            ws_client_free(w.ws);
            w.ws = NULL;
            if (joined && !before)
                backoff = BACKOFF_FIRST_MS;
        }
        if (status > 0) {
            fprintf(stderr, "streamioctl: %s\n", err.data ? err.data : "failed");
        } else if (status < 0) {
            fprintf(stderr, "streamioctl: disconnected (%s); reconnecting in %.1f s\n",
                    err.data ? err.data : "no reason given", backoff / 1000.0);
            sleep_ms(backoff);
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
        }
    }
    sio_client_free(sc);
    buf_free(&err);
    return status;
}
