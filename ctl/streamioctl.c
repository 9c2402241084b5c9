/*
 * streamioctl: the admin CLI. Sends its arguments to a running streamio master over the control
 * socket (STREAMIO_CONTROL_SOCKET, or --socket PATH, default /run/streamio/control.sock) and
 * prints the answer: a JSON document on stdout (exit 0), or the reason on stderr (exit 1).
 * Exit 2 for a usage error, 3 when no server answers on that socket. `watch` is a Socket.IO
 * client instead (ctl/watch.h): it needs no control socket. Without a command it is the seed's
 * interactive `SERVER>` prompt (ctl/prompt.h), with line editing and history (libedit) on a
 * terminal, one command per line otherwise.
 */
#include <editline/readline.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/version.h"
#include "common/xalloc.h"
#include "ctl/prompt.h"
#include "ctl/watch.h"

#define DEFAULT_SOCKET "/run/streamio/control.sock"
#define TIMEOUT_S 10
#define HISTORY_LINES 500

static void usage(FILE *f)
{
    fprintf(f,
            "usage: streamioctl [--socket PATH]                (the interactive SERVER> prompt)\n"
            "       streamioctl [--socket PATH] status | rooms | clients [room] |\n"
            "                   broadcast [--nsp /ns] <event> <json> |\n"
            "                   sendroom [--nsp /ns] <room> <event> <json> |\n"
            "                   join|leave <room> <target> | disconnect <room> [close] |\n"
            "                   serverside <event> <json> | presence <room> |\n"
            "                   dead-letter list [count] | dead-letter replay <id> |\n"
            "       streamioctl watch <room>... [--url http://host:port] [--token JWT] "
            "[--count N]\n");
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Sends one command to the master and prints its answer; returns the exit status. */
static int request(const char *path, int argc, const char *const *argv)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "streamioctl: socket: %s\n", strerror(errno));
        return 1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        if (e == ENOENT || e == ECONNREFUSED)
            fprintf(stderr, "streamioctl: streamio is not running (nothing listens on %s)\n", path);
        else
            fprintf(stderr, "streamioctl: cannot reach streamio on %s: %s\n", path, strerror(e));
        close(fd);
        return 3;
    }
    struct timeval tv = {.tv_sec = TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    for (int i = 0; i < argc; i++) {
        char head[32];
        int n = snprintf(head, sizeof(head), "%zu:", strlen(argv[i]));
        if (write_all(fd, head, (size_t)n) || write_all(fd, argv[i], strlen(argv[i])) ||
            write_all(fd, ",", 1)) {
            fprintf(stderr, "streamioctl: cannot send the request: %s\n", strerror(errno));
            close(fd);
            return 1;
        }
    }
    shutdown(fd, SHUT_WR);
    size_t len = 0, cap = 4096;
    char *resp = xmalloc(cap);
    for (;;) {
        ssize_t r = read(fd, resp + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "streamioctl: no answer from streamio: %s\n", strerror(errno));
            free(resp);
            close(fd);
            return 1;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (cap - len < 2) {
            cap *= 2;
            resp = xrealloc(resp, cap);
        }
    }
    close(fd);
    resp[len] = '\0';
    int status;
    if (strncmp(resp, "OK\n", 3) == 0) {
        fputs(resp + 3, stdout);
        if (len > 3 && resp[len - 1] != '\n')
            fputc('\n', stdout);
        status = 0;
    } else if (strncmp(resp, "ERR ", 4) == 0) {
        fprintf(stderr, "streamioctl: %s", resp + 4);
        status = 1;
    } else {
        fprintf(stderr, "streamioctl: unexpected answer from streamio (%zu bytes)\n", len);
        status = 1;
    }
    free(resp);
    fflush(stdout);
    return status;
}

/* One line of input: libedit's on a terminal (prompt, editing, history), else a plain line.
 * NULL at the end of input; the caller frees the line. */
static char *next_line(bool tty)
{
    if (tty)
        return readline(PROMPT_TEXT);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    if (n && line[n - 1] == '\n')
        line[n - 1] = '\0';
    return line;
}

/* The seed's SERVER> prompt: one command per line until exit or the end of input. The exit
 * status is the last command's. */
static int interactive(const char *path)
{
    bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    if (tty) { /* the session's lines come back with the arrow keys */
        using_history();
        stifle_history(HISTORY_LINES);
        printf("streamioctl %s: %s", STREAMIO_VERSION, PROMPT_HELP_TEXT);
    }
    buf_t json;
    buf_init(&json);
    int status = 0;
    for (char *line; (line = next_line(tty));) {
        if (tty && *line)
            add_history(line);
        const char *argv[PROMPT_MAX_ARGS];
        const char *why = NULL;
        int argc = 0;
        prompt_rc_t rc = prompt_parse(line, &json, argv, &argc, &why);
        if (rc == PROMPT_RUN)
            status = request(path, argc, argv);
        else if (rc == PROMPT_HELP)
            fputs(PROMPT_HELP_TEXT, stdout);
        else if (rc == PROMPT_BAD)
            fprintf(stderr, "streamioctl: %s\n", why);
        free(line);
        if (rc == PROMPT_EXIT)
            break;
    }
    buf_free(&json);
    return status;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "watch") == 0)
        return watch_main(argc - 2, argv + 2);
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("streamioctl %s\n", STREAMIO_VERSION);
        return 0;
    }
    static cfg_t cfg;
    const char *path = NULL;
    int a = 1;
    if (a + 1 < argc && strcmp(argv[a], "--socket") == 0) {
        path = argv[a + 1];
        a += 2;
    } else {
        buf_t err;
        buf_init(&err);
        if (config_load_one(&cfg, "STREAMIO_CONTROL_SOCKET", &err)) {
            fprintf(stderr, "%s\n", err.data);
            buf_free(&err);
            return 2;
        }
        path = cfg.control_socket;
    }
    if (a < argc && (strcmp(argv[a], "-h") == 0 || strcmp(argv[a], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (!path || !*path)
        path = DEFAULT_SOCKET;
    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        fprintf(stderr, "streamioctl: socket path too long: %s\n", path);
        return 2;
    }
    if (a >= argc)
        return interactive(path);
    return request(path, argc - a, (const char *const *)argv + a);
}
