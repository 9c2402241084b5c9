/* orphan: see orphan.h. */
#include "master/proc/orphan.h"

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

int orphan_guard(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        return -errno;
    /* the master may have died between fork and prctl: then nobody will ever signal us */
    return getppid() == parent ? 0 : -ESRCH;
}
