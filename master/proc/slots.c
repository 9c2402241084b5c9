/* slots: see slots.h. Every deadline is a timestamp that slots_tick checks. */
#include "master/proc/slots.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/log.h"
#include "common/xalloc.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define STABLE_AFTER_MS 10000  /* a worker that lived this long resets its backoff */
#define SETUP_WINDOW_MS 5000   /* an exit 2 this soon after start is a setup failure */
#define READY_TIMEOUT_MS 15000 /* a reload's new worker must listen within this */
#define LISTEN_POLL_MS 10      /* how often a start or a reload checks its new workers */
#define STATUS_EVERY_MS 1000   /* STATUS= refreshes at most this often */
#define KILL_AGAIN_MS 1000     /* after the stop deadline, SIGKILL again this often */

typedef enum state { IDLE, RUNNING, WAITING, FAILED } state_t;

/* One process block: a process serving a worker number, or starting to. */
typedef struct proc {
    pid_t pid; /* 0: free */
    uint32_t worker;
    bool retiring;    /* told to drain (or draining on its own) and already replaced */
    uint64_t wd_seen; /* its heartbeat at the last watchdog check */
} proc_t;

#define NEXT_NONE (-1)
#define NEXT_FAILED (-2)

/* One worker number: the owner of pools. */
typedef struct slot {
    state_t state;
    uint32_t block; /* its serving process block, while RUNNING */
    int32_t next;   /* a reload's replacement block while it starts, or NEXT_* */
    uint64_t next_deadline_ms;
    uint64_t started_ms;
    uint64_t respawn_at_ms;
    uint32_t backoff_ms;
} slot_t;

struct slots {
    slots_ops_t ops;
    void *arg;
    stats_global_t *g;
    slot_t *slots;   /* capacity entries */
    uint32_t nslots; /* worker numbers in use (the larger count while a reload resizes) */
    uint32_t capacity;
    proc_t *procs; /* 2 * capacity entries */
    uint32_t nprocs;
    uint64_t generation;
    uint64_t shutdown_ms;
    bool ready_sent;       /* READY=1 goes out once every first worker listens */
    char status_sent[160]; /* the last STATUS= text */
    uint64_t status_next_ms;
    bool reloading;
    uint32_t reload_i;  /* next worker number to replace */
    uint32_t reload_to; /* CLUSTER_WORKERS after the reload */
    pid_t reload_wait;  /* the last replaced process: the next replacement waits for its exit */
    uint64_t reload_wait_until;
    uint64_t wd_interval_ms; /* 0: no watchdog */
    uint64_t wd_next_ms;
    bool stopping;
    uint64_t stop_deadline_ms;
    int exit_status;
};

static uint64_t now_ms(const slots_t *s)
{
    return s->ops.now_us(s->arg) / 1000;
}

static stats_worker_t *bstats(const slots_t *s, uint32_t block)
{
    return s->ops.stats(s->arg, block);
}

slots_t *slots_new(const slots_ops_t *ops, void *arg, stats_global_t *g, uint32_t workers,
                   uint32_t capacity, int shutdown_timeout_ms)
{
    slots_t *s = xcalloc(1, sizeof(*s));
    s->slots = xcalloc(capacity, sizeof(*s->slots));
    s->procs = xcalloc(2 * (size_t)capacity, sizeof(*s->procs));
    s->ops = *ops;
    s->arg = arg;
    s->g = g;
    s->nslots = workers;
    s->capacity = capacity;
    s->nprocs = 2 * capacity;
    s->generation = 1;
    s->shutdown_ms = (uint64_t)shutdown_timeout_ms;
    s->exit_status = -1;
    for (uint32_t i = 0; i < capacity; i++)
        s->slots[i].next = NEXT_NONE;
    STATS_SET(g->workers, workers);
    STATS_SET(g->generation, s->generation);
    return s;
}

void slots_free(slots_t *s)
{
    if (!s)
        return;
    free(s->slots);
    free(s->procs);
    free(s);
}

/* ---- processes ---- */

/* Starts a process for worker i on a free block; returns the block or -errno. */
static int spawn_proc(slots_t *s, uint32_t i, enum stats_role role)
{
    uint32_t p = 0;
    while (p < s->nprocs && s->procs[p].pid)
        p++;
    if (p == s->nprocs) {
        LOG_ERROR("no free process block for worker %u", i);
        return -ENOSPC;
    }
    stats_worker_t *ws = bstats(s, p);
    uint64_t exited = STATS_GET(ws->exited_pid);
    memset(ws, 0, sizeof(*ws));
    STATS_SET(ws->exited_pid, exited);
    STATS_SET(ws->index, i);
    STATS_SET(ws->role, role);
    STATS_SET(ws->generation, s->generation);
    pid_t pid = s->ops.spawn(s->arg, i, p);
    if (pid < 0) {
        LOG_ERROR("fork failed for worker %u: %s", i, strerror(-pid));
        STATS_SET(ws->role, STATS_ROLE_FREE);
        return (int)pid;
    }
    s->procs[p] = (proc_t){.pid = pid, .worker = i};
    return (int)p;
}

/* Makes block p the serving process of worker i and hands it the worker's pools. */
static void attach(slots_t *s, uint32_t i, uint32_t p)
{
    slot_t *sl = &s->slots[i];
    sl->block = p;
    sl->state = RUNNING;
    sl->started_ms = now_ms(s);
    STATS_SET(bstats(s, p)->role, STATS_ROLE_ACTIVE);
    s->ops.attach(s->arg, i, p);
}

/* Worker i stops being served (its process is gone, retiring, or removed by a reload). */
static void leave(slots_t *s, uint32_t i, state_t state)
{
    if (s->slots[i].state == RUNNING)
        s->ops.detach(s->arg, i);
    s->slots[i].state = state;
}

static int spawn(slots_t *s, uint32_t i)
{
    int p = spawn_proc(s, i, STATS_ROLE_ACTIVE);
    if (p < 0)
        return p;
    attach(s, i, (uint32_t)p);
    LOG_INFO("worker %u started (pid %d)", i, (int)s->procs[p].pid);
    return 0;
}

/* The process in block p drains (already told, or on its own); its pools belong to its
 * replacement now. */
static void retire(slots_t *s, uint32_t p, bool signal_it)
{
    proc_t *pr = &s->procs[p];
    pr->retiring = true;
    STATS_SET(bstats(s, p)->role, STATS_ROLE_RETIRING);
    STATS_SET(bstats(s, p)->pools, 0);
    if (signal_it)
        s->ops.kill(s->arg, pr->pid, SIGTERM);
}

/* Worker i's process drains on its own: a new one takes over now, before the old one is gone. */
static void replace_now(slots_t *s, uint32_t i)
{
    slot_t *sl = &s->slots[i];
    uint32_t old = sl->block;
    retire(s, old, false);
    int p = spawn_proc(s, i, STATS_ROLE_ACTIVE);
    if (p < 0) {
        leave(s, i, WAITING);
        sl->respawn_at_ms = now_ms(s) + BACKOFF_MIN_MS;
        return;
    }
    attach(s, i, (uint32_t)p);
    LOG_INFO("worker %u (pid %d) is draining: replaced by pid %d", i, (int)s->procs[old].pid,
             (int)s->procs[p].pid);
}

void slots_check_draining(slots_t *s)
{
    if (s->stopping)
        return;
    for (uint32_t i = 0; i < s->nslots; i++) {
        slot_t *sl = &s->slots[i];
        if (sl->state == RUNNING && !s->procs[sl->block].retiring &&
            STATS_GET(bstats(s, sl->block)->draining))
            replace_now(s, i);
    }
}

static int block_of(const slots_t *s, pid_t pid)
{
    for (uint32_t p = 0; p < s->nprocs; p++) {
        if (s->procs[p].pid == pid)
            return (int)p;
    }
    return -1;
}

/* The worker's process died on its own: respawn it after the backoff, unless setup failed. */
static void died(slots_t *s, uint32_t i, pid_t pid, int status, uint64_t lived)
{
    slot_t *sl = &s->slots[i];
    if (WIFEXITED(status) && WEXITSTATUS(status) == 2 && lived < SETUP_WINDOW_MS) {
        LOG_ERROR("worker %u failed during setup (exit 2); not respawning it", i);
        leave(s, i, FAILED);
        return;
    }
    if (WIFSIGNALED(status))
        LOG_WARN("worker %u (pid %d) killed by signal %d", i, (int)pid, WTERMSIG(status));
    else
        LOG_WARN("worker %u (pid %d) exited with status %d", i, (int)pid, WEXITSTATUS(status));
    STATS_ADD(s->g->respawns, 1);
    if (lived >= STABLE_AFTER_MS || sl->backoff_ms == 0)
        sl->backoff_ms = BACKOFF_MIN_MS;
    else
        sl->backoff_ms = sl->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : sl->backoff_ms * 2;
    leave(s, i, WAITING);
    sl->respawn_at_ms = now_ms(s) + sl->backoff_ms;
    LOG_INFO("respawning worker %u in %u ms", i, sl->backoff_ms);
}

void slots_exited(slots_t *s, pid_t pid, int status)
{
    int p = block_of(s, pid);
    if (p < 0)
        return;
    proc_t pr = s->procs[p];
    s->procs[p].pid = 0;
    memset(bstats(s, (uint32_t)p), 0, sizeof(stats_worker_t));
    STATS_SET(bstats(s, (uint32_t)p)->exited_pid, (uint64_t)pid);
    s->ops.reaped(s->arg, (uint32_t)p);
    slot_t *sl = &s->slots[pr.worker];
    if (pr.retiring) {
        if (WIFSIGNALED(status))
            LOG_WARN("worker %u: retired pid %d exited (killed by signal %d)", pr.worker, (int)pid,
                     WTERMSIG(status));
        else
            LOG_INFO("worker %u: retired pid %d exited", pr.worker, (int)pid);
        return;
    }
    if (sl->next == p) {
        LOG_ERROR("reload: the new worker %u (pid %d) exited before listening; keeping pid %d",
                  pr.worker, (int)pid, sl->state == RUNNING ? (int)s->procs[sl->block].pid : 0);
        sl->next = NEXT_FAILED;
        return;
    }
    if (sl->state != RUNNING || sl->block != (uint32_t)p)
        return;
    if (s->stopping) {
        leave(s, pr.worker, IDLE);
        return;
    }
    died(s, pr.worker, pid, status, now_ms(s) - sl->started_ms);
}

/* Live processes, draining ones included. */
static uint32_t running(const slots_t *s)
{
    uint32_t n = 0;
    for (uint32_t p = 0; p < s->nprocs; p++)
        n += s->procs[p].pid != 0;
    return n;
}

/* Worker numbers that serve or will be respawned. */
static uint32_t serving(const slots_t *s)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->nslots; i++)
        n += s->slots[i].state == RUNNING || s->slots[i].state == WAITING;
    return n;
}

/* Has the process in block p published its pid, which a worker does once it listens? */
static bool listens(const slots_t *s, uint32_t p)
{
    return (pid_t)STATS_GET(bstats(s, p)->pid) == s->procs[p].pid;
}

/* ---- systemd ---- */

/* The STATUS= text `systemctl status` shows:
 * "serving with 2 workers, 153 clients, 40 streams (generation 1)" */
static void status_text(const slots_t *s, char *out, size_t cap)
{
    uint64_t clients = 0;
    for (uint32_t p = 0; p < s->nprocs; p++) {
        if (s->procs[p].pid)
            clients += STATS_GET(bstats(s, p)->connections);
    }
    snprintf(out, cap, "serving with %u workers, %llu clients, %llu streams (generation %llu)",
             serving(s), (unsigned long long)clients, (unsigned long long)STATS_GET(s->g->streams),
             (unsigned long long)s->generation);
}

static void notify_status(slots_t *s, const char *prefix)
{
    char text[sizeof(s->status_sent)];
    status_text(s, text, sizeof(text));
    char msg[sizeof(text) + 64];
    snprintf(msg, sizeof(msg), "%sSTATUS=%s", prefix, text);
    s->ops.notify(s->arg, msg);
    memcpy(s->status_sent, text, sizeof(text));
}

/* Between READY and a reload or the stop: STATUS= again when it changed, at most once a second. */
static void status_refresh(slots_t *s)
{
    uint64_t now = now_ms(s);
    if (!s->ready_sent || s->reloading || s->stopping || now < s->status_next_ms)
        return;
    s->status_next_ms = now + STATUS_EVERY_MS;
    char text[sizeof(s->status_sent)];
    status_text(s, text, sizeof(text));
    if (strcmp(text, s->status_sent) != 0)
        notify_status(s, "");
}

/* READY=1 once every worker started at launch listens (or gave up). */
static void maybe_ready(slots_t *s)
{
    if (s->ready_sent)
        return;
    for (uint32_t i = 0; i < s->nslots; i++) {
        const slot_t *sl = &s->slots[i];
        if (sl->state == RUNNING && !listens(s, sl->block))
            return;
    }
    s->ready_sent = true;
    notify_status(s, "READY=1\n");
}

void slots_set_watchdog(slots_t *s, uint64_t usec)
{
    /* check twice per period, but never faster than the workers' 250 ms heartbeat can follow */
    s->wd_interval_ms = !usec ? 0 : usec / 2000 < 600 ? 600 : usec / 2000;
    s->wd_next_ms = now_ms(s) + s->wd_interval_ms;
    if (s->wd_interval_ms)
        LOG_INFO("watchdog: checking the workers every %llu ms",
                 (unsigned long long)s->wd_interval_ms);
}

/* WATCHDOG=1 only when every serving worker's loop turned since the last check. */
static void watchdog(slots_t *s)
{
    uint64_t now = now_ms(s);
    if (!s->wd_interval_ms || now < s->wd_next_ms || s->stopping)
        return;
    s->wd_next_ms = now + s->wd_interval_ms;
    bool healthy = true;
    for (uint32_t p = 0; p < s->nprocs; p++) {
        proc_t *pr = &s->procs[p];
        if (!pr->pid || pr->retiring)
            continue;
        uint64_t hb = STATS_GET(bstats(s, p)->heartbeat);
        if (hb == pr->wd_seen && STATS_GET(bstats(s, p)->role) == STATS_ROLE_ACTIVE) {
            if (healthy)
                LOG_WARN("watchdog: worker %u (pid %d) made no progress; not notifying systemd",
                         pr->worker, (int)pr->pid);
            healthy = false;
        }
        pr->wd_seen = hb;
    }
    if (healthy)
        s->ops.notify(s->arg, "WATCHDOG=1");
}

/* ---- start, stop ---- */

int slots_start(slots_t *s)
{
    for (uint32_t i = 0; i < s->nslots; i++) {
        int rc = spawn(s, i);
        if (rc)
            return rc;
    }
    return 0;
}

void slots_stop(slots_t *s, const char *why)
{
    if (s->stopping)
        return;
    LOG_INFO("%s: draining %u workers", why, running(s));
    s->ops.notify(s->arg, "STOPPING=1\nSTATUS=draining");
    s->stopping = true;
    s->stop_deadline_ms = now_ms(s) + s->shutdown_ms + KILL_AGAIN_MS;
    for (uint32_t p = 0; p < s->nprocs; p++) {
        if (s->procs[p].pid)
            s->ops.kill(s->arg, s->procs[p].pid, SIGTERM);
    }
    for (uint32_t i = 0; i < s->nslots; i++) {
        if (s->slots[i].state == WAITING)
            s->slots[i].state = IDLE;
    }
}

/* While stopping: done once every process is gone; SIGKILL for those past the deadline. */
static void stop_step(slots_t *s)
{
    if (running(s) == 0) {
        s->exit_status = 0;
        return;
    }
    if (now_ms(s) < s->stop_deadline_ms)
        return;
    LOG_WARN("shutdown timeout: killing %u workers", running(s));
    for (uint32_t p = 0; p < s->nprocs; p++) {
        if (s->procs[p].pid)
            s->ops.kill(s->arg, s->procs[p].pid, SIGKILL);
    }
    s->stop_deadline_ms = now_ms(s) + KILL_AGAIN_MS;
}

/* ---- reload ---- */

int slots_reload(slots_t *s, uint32_t to, int shutdown_timeout_ms)
{
    if (s->stopping)
        return -ECANCELED;
    if (s->reloading)
        return -EBUSY;
    if (to == 0 || to > s->capacity)
        return -EINVAL;
    char msg[96];
    /* MONOTONIC_USEC lets systemd (Type=notify-reload) tell this reload from an older one */
    snprintf(msg, sizeof(msg), "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu",
             (unsigned long long)s->ops.now_us(s->arg));
    s->ops.notify(s->arg, msg);
    s->generation++;
    s->shutdown_ms = (uint64_t)shutdown_timeout_ms;
    STATS_SET(s->g->generation, s->generation);
    LOG_INFO("SIGHUP: reloading (generation %llu, %u -> %u workers)",
             (unsigned long long)s->generation, s->nslots, to);
    s->reloading = true;
    s->reload_i = 0;
    s->reload_to = to;
    for (uint32_t i = s->nslots; i < to; i++)
        s->slots[i] = (slot_t){.state = IDLE, .next = NEXT_NONE};
    if (to > s->nslots)
        s->nslots = to;
    return 0;
}

/* Promotes worker i's started replacement once it listens, and tells the old one to drain. */
static void promote(slots_t *s, uint32_t i)
{
    slot_t *sl = &s->slots[i];
    uint32_t p = (uint32_t)sl->next;
    sl->next = NEXT_NONE;
    if (sl->state == RUNNING) {
        uint32_t old = sl->block;
        pid_t oldpid = s->procs[old].pid;
        retire(s, old, true);
        s->reload_wait = oldpid;
        s->reload_wait_until = now_ms(s) + s->shutdown_ms;
        LOG_INFO("worker %u replaced: pid %d -> pid %d", i, (int)oldpid, (int)s->procs[p].pid);
    }
    sl->backoff_ms = 0;
    attach(s, i, p);
}

static void finish_reload(slots_t *s)
{
    for (uint32_t i = s->reload_to; i < s->nslots; i++) {
        slot_t *sl = &s->slots[i];
        if (sl->state == RUNNING)
            retire(s, sl->block, true);
        leave(s, i, IDLE);
    }
    s->nslots = s->reload_to;
    s->reloading = false;
    STATS_SET(s->g->workers, s->nslots);
    STATS_ADD(s->g->reloads, 1);
    LOG_INFO("reload complete: generation %llu, %u workers", (unsigned long long)s->generation,
             s->nslots);
    notify_status(s, "READY=1\n");
}

/* A replacement failed: the old process serves on, and gets the pools a shrinking reload moved
 * to its worker number (adding a stream it already reads is a no-op). */
static void keep_old(slots_t *s, uint32_t i)
{
    if (s->slots[i].state == RUNNING)
        s->ops.resend(s->arg, i);
}

/* Worker i has no replacement starting yet: start one (or, with nothing to replace, the worker
 * itself). Returns true when the step must wait for it. */
static bool replace_begin(slots_t *s, uint32_t i)
{
    slot_t *sl = &s->slots[i];
    if (sl->state != RUNNING) {
        /* nothing to replace: a new worker number, or one waiting for its respawn */
        if (sl->state != WAITING && spawn(s, i) != 0)
            sl->state = FAILED;
        return false;
    }
    int p = spawn_proc(s, i, STATS_ROLE_STARTING);
    if (p < 0)
        return false;
    sl->next = p;
    sl->next_deadline_ms = now_ms(s) + READY_TIMEOUT_MS;
    return true;
}

/* Worker i's replacement has started: promote it once it listens, give up past its deadline.
 * Returns true while it must be waited for. */
static bool replace_check(slots_t *s, uint32_t i)
{
    slot_t *sl = &s->slots[i];
    proc_t *np = &s->procs[sl->next];
    if (listens(s, (uint32_t)sl->next)) {
        promote(s, i);
        return false;
    }
    if (now_ms(s) < sl->next_deadline_ms)
        return true;
    LOG_ERROR("reload: the new worker %u (pid %d) did not listen within %d ms; keeping the old one",
              i, (int)np->pid, READY_TIMEOUT_MS);
    np->retiring = true;
    s->ops.kill(s->arg, np->pid, SIGKILL);
    sl->next = NEXT_NONE;
    keep_old(s, i);
    return false;
}

/* One step of the rolling replacement: one worker number at a time. */
static void reload_step(slots_t *s)
{
    while (s->reloading && s->reload_i < s->reload_to) {
        /* one worker's clients reconnect at a time: the previous one must have drained first */
        if (s->reload_wait && block_of(s, s->reload_wait) >= 0 && now_ms(s) < s->reload_wait_until)
            return;
        s->reload_wait = 0;
        uint32_t i = s->reload_i;
        slot_t *sl = &s->slots[i];
        if (sl->next == NEXT_FAILED) {
            sl->next = NEXT_NONE;
            keep_old(s, i);
        } else if (sl->next == NEXT_NONE ? replace_begin(s, i) : replace_check(s, i)) {
            return;
        }
        s->reload_i++;
    }
    if (s->reloading)
        finish_reload(s);
}

/* ---- the tick ---- */

static void respawn_due(slots_t *s)
{
    uint64_t now = now_ms(s);
    for (uint32_t i = 0; i < s->nslots; i++) {
        slot_t *sl = &s->slots[i];
        if (sl->state == WAITING && now >= sl->respawn_at_ms && spawn(s, i) != 0)
            sl->respawn_at_ms = now + BACKOFF_MAX_MS;
    }
}

static uint64_t next_due(const slots_t *s)
{
    uint64_t now = now_ms(s);
    uint64_t due = now + STATUS_EVERY_MS;
    for (uint32_t i = 0; i < s->nslots; i++) {
        const slot_t *sl = &s->slots[i];
        if (sl->state == WAITING && sl->respawn_at_ms < due)
            due = sl->respawn_at_ms;
    }
    /* a worker publishes its pid once it listens: no event says so, so look often */
    if ((s->reloading || !s->ready_sent) && now + LISTEN_POLL_MS < due)
        due = now + LISTEN_POLL_MS;
    /* the watchdog pauses while stopping (see watchdog): its past due time would make this 0
     * for good, and libuv runs a 0 ms timer restarted from its own callback again in the same
     * pass, so the loop would spin without ever reading SIGCHLD */
    if (s->wd_interval_ms && !s->stopping && s->wd_next_ms < due)
        due = s->wd_next_ms;
    if (s->stopping && s->stop_deadline_ms < due)
        due = s->stop_deadline_ms;
    return due > now ? due - now : 0;
}

uint64_t slots_tick(slots_t *s)
{
    if (s->exit_status >= 0)
        return STATUS_EVERY_MS;
    if (s->stopping) {
        stop_step(s);
        return next_due(s);
    }
    if (serving(s) == 0 && !s->reloading) {
        LOG_ERROR("no worker can run; exiting");
        s->exit_status = 2;
        return STATUS_EVERY_MS;
    }
    maybe_ready(s);
    slots_check_draining(s);
    if (s->ready_sent)
        reload_step(s);
    respawn_due(s);
    watchdog(s);
    status_refresh(s);
    return next_due(s);
}

int slots_exit_status(const slots_t *s)
{
    return s->exit_status;
}

bool slots_reloading(const slots_t *s)
{
    return s->reloading;
}

bool slots_stopping(const slots_t *s)
{
    return s->stopping;
}

uint32_t slots_capacity(const slots_t *s)
{
    return s->capacity;
}
