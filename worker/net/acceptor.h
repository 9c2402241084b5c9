/*
 * acceptor: a worker's share of the listening socket the master opened for all of them. It
 * accepts while the worker holds fewer connections than its descriptor limit allows, and steps
 * aside when it is full: it stops watching the socket, so new connections wait in the kernel's
 * backlog for a sibling with room instead of meeting libuv's EMFILE fallback (which accepts and
 * closes them). Accepts are not spread evenly between workers, so without this one worker can
 * reach its limit while the others are half empty. It resumes once the worker is below 15/16 of
 * its limit, checked every ACCEPTOR_RECHECK_MS while paused.
 *
 * It turns Nagle off on the listening socket, so every accepted socket starts with it off.
 * Owns the listening descriptor it is given (and a dup of it per listening period); never
 * touches the connections it accepts: the host's accept callback takes them.
 */
#ifndef STREAMIO_WORKER_NET_ACCEPTOR_H
#define STREAMIO_WORKER_NET_ACCEPTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef struct acceptor acceptor_t;

#define ACCEPTOR_RECHECK_MS 50

/* Accepts the pending connection of `server` (uv_accept); 0 or a negative errno. */
typedef int (*acceptor_accept_fn)(uv_stream_t *server, void *arg);
/* Connections the host holds now (accepted and not yet released). */
typedef size_t (*acceptor_live_fn)(void *arg);

/*
 * Takes `listen_fd` (closed by acceptor_close) and starts accepting on `loop`. `max_live` is the
 * most connections held before pausing (see acceptor_max_live). 0, or a negative errno of the
 * libuv calls (listen_fd is then still closed by acceptor_close).
 */
int acceptor_new(acceptor_t **out, uv_loop_t *loop, int listen_fd, size_t max_live,
                 acceptor_accept_fn accept, acceptor_live_fn live, void *arg);
/*
 * The connections a process may hold with `fd_limit` descriptors (RLIMIT_NOFILE): the limit less
 * a reserve for Redis, siblings, timers and the files of a request (at least 64, 1/20 of it).
 */
size_t acceptor_max_live(size_t fd_limit);
/* Paused because the host is full. */
bool acceptor_paused(const acceptor_t *a);
/* Stops accepting for good and closes every descriptor; the memory goes with the last close
 * callback. NULL: no-op. */
void acceptor_close(acceptor_t *a);

#endif
