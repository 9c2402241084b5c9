/*
 * pidfile: the single-instance guard. Holds an exclusive flock(2) on a file for as long as the
 * master lives and writes the master's pid into it, so a second master with the same file
 * refuses to start and tools (streamioctl, scripts) can find the running one. Never logs.
 */
#ifndef STREAMIO_MASTER_PROC_PIDFILE_H
#define STREAMIO_MASTER_PROC_PIDFILE_H

#include <sys/types.h>

#include "common/buf.h"

typedef struct pidfile pidfile_t;

/*
 * Opens (creating, mode 0644) and locks `path`, then writes getpid(). -EEXIST when another
 * process holds the lock (its pid, if readable, is put in *holder, else 0); other -errno.
 * On error `err` gets one line naming the file and the cause. The fd is close-on-exec.
 */
int pidfile_acquire(const char *path, pidfile_t **out, pid_t *holder, buf_t *err);
/* Unlinks the file and releases the lock; NULL is a no-op. Call only in the process that
 * acquired it (workers inherit nothing: the fd is closed in them by pidfile_forget). */
void pidfile_release(pidfile_t *pf);
/* In a forked child: closes the inherited fd without unlinking (the lock stays with the master). */
void pidfile_forget(pidfile_t *pf);
/* Reads the pid stored in `path`: > 0, or -errno / -EINVAL when absent or malformed. */
pid_t pidfile_read(const char *path);

#endif
