/* signals: see signals.h. */
#include "master/proc/signals.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/xalloc.h"

static const int watched[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1};

struct signals {
    uv_poll_t poll;
    int fd;
    signals_fn fn;
    void *arg;
};

static void on_readable(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    signals_t *s = h->data;
    struct signalfd_siginfo si;
    /* readiness is a hint: read until the fd is empty */
    while (read(s->fd, &si, sizeof(si)) == sizeof(si))
        s->fn((int)si.ssi_signo, s->arg);
}

int signals_open(signals_t **out, uv_loop_t *loop, signals_fn fn, void *arg)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof(watched) / sizeof(watched[0]); i++)
        sigaddset(&set, watched[i]);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    signals_t *s = xcalloc(1, sizeof(*s));
    s->fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    int rc = s->fd < 0 ? -errno : uv_poll_init(loop, &s->poll, s->fd);
    if (rc) {
        if (s->fd >= 0)
            close(s->fd);
        free(s);
        return rc;
    }
    s->poll.data = s;
    s->fn = fn;
    s->arg = arg;
    uv_poll_start(&s->poll, UV_READABLE, on_readable);
    *out = s;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    signals_t *s = h->data;
    close(s->fd);
    free(s);
}

void signals_close(signals_t *s)
{
    if (s)
        uv_close((uv_handle_t *)&s->poll, on_closed);
}

void signals_child_reset(void)
{
    for (size_t i = 0; i < sizeof(watched) / sizeof(watched[0]); i++)
        signal(watched[i], SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}
