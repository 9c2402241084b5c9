/*
 * orphan: a worker must not outlive its master. Whatever kills the master (kill -9, OOM killer,
 * a crash) the kernel then kills each worker (SIGKILL): nothing keeps the port, reads streams or
 * holds clients without a master to respawn, reload or stop it. Not SIGTERM: a worker draining
 * after its clients are gone would acknowledge entries it can deliver to nobody, while killed it
 * leaves them pending, and the next master's worker of that number (same consumer) reads them
 * again. Relies on PR_SET_PDEATHSIG, which fires when the thread that forked exits: the master
 * must fork from its main thread.
 */
#ifndef STREAMIO_MASTER_PROC_ORPHAN_H
#define STREAMIO_MASTER_PROC_ORPHAN_H

#include <sys/types.h>

/*
 * In the child, first thing after fork: arms SIGKILL for the death of `parent` (the master's
 * pid, taken before fork). Race-free: if the master died before this call, returns -ESRCH and
 * the child must exit at once. 0 or -errno.
 */
int orphan_guard(pid_t parent);

#endif
