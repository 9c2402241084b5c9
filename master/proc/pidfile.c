/* pidfile: see pidfile.h. */
#include "master/proc/pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/xalloc.h"

struct pidfile {
    int fd;
    char *path;
};

pid_t pidfile_read(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char b[32];
    ssize_t n = read(fd, b, sizeof(b) - 1);
    close(fd);
    if (n <= 0)
        return -EINVAL;
    b[n] = '\0';
    char *end;
    long v = strtol(b, &end, 10);
    if (v <= 0 || (*end && *end != '\n'))
        return -EINVAL;
    return (pid_t)v;
}

int pidfile_acquire(const char *path, pidfile_t **out, pid_t *holder, buf_t *err)
{
    *holder = 0;
    pidfile_t *pf = xcalloc(1, sizeof(*pf));
    pf->path = xstrdup(path);
    pf->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (pf->fd < 0) {
        int rc = -errno;
        buf_printf(err, "streamio: cannot open the pid file %s: %s", path, strerror(errno));
        free(pf->path);
        free(pf);
        return rc;
    }
    if (flock(pf->fd, LOCK_EX | LOCK_NB) < 0) {
        int rc = errno == EWOULDBLOCK ? -EEXIST : -errno;
        pid_t other = pidfile_read(path);
        *holder = other > 0 ? other : 0;
        if (rc == -EEXIST)
            buf_printf(err, "streamio: already running (pid %d holds %s)", (int)*holder, path);
        else
            buf_printf(err, "streamio: cannot lock the pid file %s: %s", path, strerror(-rc));
        close(pf->fd);
        free(pf->path);
        free(pf);
        return rc;
    }
    char b[32];
    int n = snprintf(b, sizeof(b), "%d\n", (int)getpid());
    if (ftruncate(pf->fd, 0) < 0 || pwrite(pf->fd, b, (size_t)n, 0) != n) {
        int rc = -errno;
        buf_printf(err, "streamio: cannot write the pid file %s: %s", path, strerror(errno));
        close(pf->fd);
        free(pf->path);
        free(pf);
        return rc;
    }
    *out = pf;
    return 0;
}

void pidfile_forget(pidfile_t *pf)
{
    if (pf && pf->fd >= 0) {
        close(pf->fd);
        pf->fd = -1;
    }
}

void pidfile_release(pidfile_t *pf)
{
    if (!pf)
        return;
    if (pf->fd >= 0) {
        unlink(pf->path);
        close(pf->fd);
    }
    free(pf->path);
    free(pf);
}
