/*
 * control: the master's local control socket (a unix stream socket, STREAMIO_CONTROL_SOCKET),
 * the transport of streamioctl. One request per connection: the client writes its arguments as
 * netstrings ("<len>:<bytes>,"), then shuts down its write side; the master answers "OK\n" or
 * "ERR <reason>\n" followed by the body, and closes.
 *
 * Every connection has its own state on the master's loop, so a slow or silent client holds only
 * its own connection, never the loop: it must send something at least every second and the whole
 * request within 10 s, and take the answer within 10 s; at most 32 connections are served at a
 * time (more are told so and closed). The transport only: what a command does belongs to the
 * handler (master/admin), which may answer later. Never logs.
 */
#ifndef STREAMIO_MASTER_ADMIN_CONTROL_H
#define STREAMIO_MASTER_ADMIN_CONTROL_H

#include <stddef.h>
#include <uv.h>

#include "common/buf.h"

#define CONTROL_MAX_ARGS 8
#define CONTROL_MAX_REQUEST (1u << 20)

typedef struct control control_t;
/* One request being answered (a connection). */
typedef struct control_req control_req_t;

/*
 * Starts one command: argv[i] (argc <= CONTROL_MAX_ARGS, each NUL-terminated) with its length
 * lens[i], all borrowed until control_done. The handler appends the body to `out` (the request's)
 * and calls control_done once, from this call or later on the loop.
 */
typedef void (*control_fn)(control_req_t *req, int argc, char **argv, const size_t *lens,
                           buf_t *out, void *arg);

/* Binds and listens on `path` (a stale socket file there is replaced; mode 0600, and only root
 * and the server's own user are served: others get "ERR permission denied") on `loop`
 * (borrowed). On error appends one line to err and returns -errno. */
int control_open(control_t **out, uv_loop_t *loop, const char *path, control_fn fn, void *arg,
                 buf_t *err);
/* Ends a request: rc 0 answers "OK\n" and the body, -errno "ERR <body>\n". */
void control_done(control_req_t *req, int rc);
/* Unlinks the socket file and closes the listener and every connection; memory goes with the
 * last handle, after the last control_done of a request still running (its answer is dropped).
 * NULL is a no-op. */
void control_close(control_t *c);

/* Parses netstring arguments from req (len bytes). 0, or -EPROTO when malformed or more than
 * CONTROL_MAX_ARGS. argv points into a copy in `store` (reset first), each NUL-terminated. */
int control_parse(const char *req, size_t len, buf_t *store, int *argc, char **argv, size_t *lens);

#endif
