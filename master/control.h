/*
 * control: the master's local control socket (a unix stream socket, STREAMIO_CONTROL_SOCKET),
 * the transport of streamioctl. One request per connection: the client writes its arguments as
 * netstrings ("<len>:<bytes>,"), then shuts down its write side; the master answers "OK\n" or
 * "ERR <reason>\n" followed by the body, and closes. The socket is created 0600 and only root
 * and the server's own user are served (SO_PEERCRED; others get "ERR permission denied").
 * Connections progress without ever blocking the caller: a slow or stuck client holds one of
 * CONTROL_MAX_CLIENTS slots for at most CONTROL_TIMEOUT_MS. The transport only: what a command
 * does belongs to the handler (master/admin), which runs synchronously. Never logs.
 */
#ifndef STREAMIO_MASTER_CONTROL_H
#define STREAMIO_MASTER_CONTROL_H

#include <stddef.h>

#include "common/buf.h"

#define CONTROL_MAX_ARGS 8
#define CONTROL_MAX_REQUEST (1u << 20)
#define CONTROL_MAX_CLIENTS 16   /* connections in progress; more get "ERR busy" */
#define CONTROL_TIMEOUT_MS 5000u /* to send a request and read its answer */

typedef struct control control_t;

/* Runs one command: argv[i] (argc <= CONTROL_MAX_ARGS, each NUL-terminated, borrowed) with its
 * length lens[i]. Appends the body to `out`; returns 0, or -errno with the reason in `out`. */
typedef int (*control_fn)(int argc, char **argv, const size_t *lens, buf_t *out, void *arg);

/* Binds and listens on `path` (a stale socket file there is replaced; mode 0600 from the
 * start). On error appends one line to err and returns -errno. */
int control_open(control_t **out, const char *path, buf_t *err);
/* Unlinks the socket file and closes it; NULL is a no-op. */
void control_close(control_t *c);
/* In a forked child: closes every descriptor (connections included) without unlinking. */
void control_forget(control_t *c);
/* One descriptor covering the listener, the connections and their deadlines (an epoll set): poll
 * it for POLLIN (poll(2), or a uv_poll_t on a libuv loop) and call control_serve when it is. */
int control_fd(const control_t *c);
/* Makes every ready connection progress without blocking: accepts (refusing other users, and
 * beyond CONTROL_MAX_CLIENTS), reads, runs fn once a request is complete, writes the answer,
 * closes what is done or past CONTROL_TIMEOUT_MS. */
void control_serve(control_t *c, control_fn fn, void *arg);

/* Parses netstring arguments from req (len bytes). 0, or -EPROTO when malformed or more than
 * CONTROL_MAX_ARGS. argv points into a copy in `store` (reset first), each NUL-terminated. */
int control_parse(const char *req, size_t len, buf_t *store, int *argc, char **argv, size_t *lens);

#endif
