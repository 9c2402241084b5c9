/*
 * signals: how the master receives its signals. SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP and
 * SIGUSR1 stay blocked in the master for its whole life and are read from a signalfd watched by a
 * uv_poll_t on the master's loop: no handler ever runs, so nothing happens inside one, and a
 * signal sent between two checks waits in the fd. Forked children inherit the blocked mask and
 * call signals_child_reset first. SIGPIPE is ignored (a peer closing a socket is an error code).
 */
#ifndef STREAMIO_MASTER_PROC_SIGNALS_H
#define STREAMIO_MASTER_PROC_SIGNALS_H

#include <uv.h>

typedef struct signals signals_t;

/* Called on the loop for each signal received, in order. */
typedef void (*signals_fn)(int signo, void *arg);

/* Blocks the signals and starts watching them on `loop` (borrowed). 0 or -errno. */
int signals_open(signals_t **out, uv_loop_t *loop, signals_fn fn, void *arg);
/* Stops watching; the memory goes with the poll handle's close (the signals stay blocked). NULL is
 * a no-op. */
void signals_close(signals_t *s);
/* In a forked child, before anything else: default dispositions and an empty mask. */
void signals_child_reset(void);

#endif
