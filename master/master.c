/*
 * master: see master.h. One poll(2) loop over a signalfd; every deadline (respawn, discovery,
 * shutdown) is a timestamp checked after each wake-up.
 */
#include "master/master.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/ids.h"
#include "common/log.h"
#include "common/sd_notify.h"
#include "master/admin.h"
#include "master/control.h"
#include "master/discovery.h"
#include "master/envfile.h"
#include "master/keyevents.h"
#include "master/listener.h"
#include "master/orphan.h"
#include "master/pidfile.h"
#include "master/pools.h"
#include "shm/region.h"
#include "shm/stats.h"
#include "shm/workdesc.h"
#include "worker/worker.h"

#define RING_CAPACITY (1u << 20)
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define STABLE_AFTER_MS 10000  /* a worker that lived this long resets its backoff */
#define SETUP_WINDOW_MS 5000   /* an exit 2 this soon after start is a setup failure */
#define SCAN_BUDGET_STEPS 64   /* SCAN steps per loop turn, so signals are never starved */
#define READY_TIMEOUT_MS 15000 /* a reload's new worker must listen within this */
#define MIN_WORKER_CAPACITY 32 /* CLUSTER_WORKERS a reload may grow to, at least */
#define RELOAD_POLL_MS 10      /* how often a reload checks its new worker */
#define STATUS_EVERY_MS 1000   /* STATUS= refreshes at most this often */
#define SCAN_DUTY_FACTOR 4     /* pause >= 4 x the last pass: SCAN busy at most 20% of the time */

typedef struct outrec {
    struct outrec *next;
    uint16_t type;
    uint32_t len;
    char data[];
} outrec_t;

typedef enum slot_state { SLOT_IDLE, SLOT_RUNNING, SLOT_WAITING, SLOT_FAILED } slot_state_t;

/* One process block of the region (ring + stats). A worker number owns one, plus a second one
 * while its replacement starts or its predecessor drains. */
typedef struct proc {
    pid_t pid; /* 0: free */
    uint32_t worker;
    bool retiring; /* told to drain (or draining on its own) and already replaced */
} proc_t;

#define NEXT_NONE (-1)
#define NEXT_FAILED (-2)

/* One worker number: the owner of pools. */
typedef struct slot {
    slot_state_t state;
    uint32_t phys; /* its serving process block, while RUNNING */
    int32_t next;  /* a reload's replacement block while it starts, or NEXT_* */
    uint64_t next_deadline_ms;
    uint64_t started_ms;
    uint64_t respawn_at_ms;
    uint32_t backoff_ms;
    outrec_t *out_head, *out_tail; /* descriptors the ring had no room for yet */
} slot_t;

typedef struct master {
    const cfg_t *cfg;
    cfg_t **cfgs; /* every configuration loaded by a reload; discovery may still borrow one */
    size_t ncfgs;
    uint64_t generation;
    int listen_fd;
    int sig_fd;
    pidfile_t *pidfile;
    control_t *control; /* streamioctl's socket, when STREAMIO_CONTROL_SOCKET is set */
    shm_region_t *region;
    local_sock_t *socks; /* the workers' channels, per process block: held for the master's life */
    stats_global_t *gstats;
    slot_t *slots;   /* cap_workers entries */
    uint32_t nslots; /* worker numbers in use (the larger count while a reload resizes) */
    uint32_t cap_workers;
    proc_t *procs; /* 2 * cap_workers */
    uint32_t nprocs;
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
    uint64_t *wd_seen;    /* heartbeat per process block at the last check */
    uint32_t *slot_pools; /* cap_workers entries: pools per worker number, for the stats */
    discovery_t *disc;
    keyevents_t *kev; /* STREAM_KEYSPACE_EVENTS: new and deleted streams at once; else NULL */
    pools_t *pools;
    uint64_t cycle;        /* current SCAN pass number, from 1 */
    uint64_t next_scan_ms; /* 0 while a pass is in progress */
    uint64_t pass_started_ms;
    bool priority_done;
    bool stopping;
    uint64_t stop_deadline_ms;
    char server_id[13];
    buf_t rec;
} master_t;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- descriptors to workers ---- */

static void outbox_clear(slot_t *s)
{
    while (s->out_head) {
        outrec_t *r = s->out_head;
        s->out_head = r->next;
        free(r);
    }
    s->out_tail = NULL;
}

static stats_worker_t *pstats(master_t *m, uint32_t p)
{
    return shm_region_slot_stats(m->region, p);
}

static void outbox_flush(master_t *m, uint32_t i)
{
    slot_t *s = &m->slots[i];
    while (s->out_head && s->state == SLOT_RUNNING) {
        outrec_t *r = s->out_head;
        int rc = shm_region_send(m->region, s->phys, r->type, r->data, r->len);
        if (rc == -EAGAIN)
            return;
        STATS_ADD(pstats(m, s->phys)->desc_sent, 1);
        if (rc && rc != -EBADF)
            LOG_ERROR("dropping a work descriptor for worker %u: %s", i, strerror(-rc));
        s->out_head = r->next;
        if (!s->out_head)
            s->out_tail = NULL;
        free(r);
    }
}

/* Queues one descriptor for a slot; order per slot is preserved even when its ring is full. */
static void send_desc(master_t *m, uint32_t i, uint16_t type, const buf_t *rec)
{
    slot_t *s = &m->slots[i];
    outrec_t *r = malloc(sizeof(*r) + rec->len);
    if (!r) {
        LOG_ERROR("out of memory queueing a work descriptor for worker %u", i);
        return;
    }
    r->next = NULL;
    r->type = type;
    r->len = (uint32_t)rec->len;
    memcpy(r->data, rec->data, rec->len);
    if (s->out_tail)
        s->out_tail->next = r;
    else
        s->out_head = r;
    s->out_tail = r;
    outbox_flush(m, i);
}

static void send_stream(master_t *m, uint16_t type, uint32_t pool, uint32_t slot, const char *name,
                        size_t len)
{
    if (workdesc_begin(&m->rec, pool) || workdesc_add(&m->rec, name, len)) {
        LOG_ERROR("cannot encode stream %.*s for worker %u", (int)len, name, slot);
        return;
    }
    send_desc(m, slot, type, &m->rec);
}

static void resend_one(uint32_t pool, uint32_t slot, const char *name, size_t len, void *arg)
{
    send_stream(arg, WORKDESC_POOL_ADD, pool, slot, name, len);
}

static void unassign_one(uint32_t pool, uint32_t slot, const char *name, size_t len, void *arg)
{
    send_stream(arg, WORKDESC_STREAM_REMOVE, pool, slot, name, len);
}

/* ---- workers ---- */

/* Forks a process for worker number `i` on a free process block; returns the block or -errno. */
static int spawn_proc(master_t *m, uint32_t i, enum stats_role role)
{
    uint32_t p = 0;
    while (p < m->nprocs && m->procs[p].pid)
        p++;
    if (p == m->nprocs) {
        LOG_ERROR("no free process block for worker %u", i);
        return -ENOSPC;
    }
    ring_reset(shm_region_ring(m->region, p));
    stats_worker_t *ws = pstats(m, p);
    memset(ws, 0, sizeof(*ws));
    STATS_SET(ws->index, i);
    STATS_SET(ws->role, role);
    STATS_SET(ws->generation, m->generation);
    pid_t master = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int rc = -errno;
        LOG_ERROR("fork failed for worker %u: %s", i, strerror(errno));
        STATS_SET(ws->role, STATS_ROLE_FREE);
        return rc;
    }
    if (pid == 0) {
        if (orphan_guard(master))
            _exit(1);
        sigset_t all;
        sigemptyset(&all);
        close(m->sig_fd);
        pidfile_forget(m->pidfile);
        control_forget(m->control);
        sigprocmask(SIG_SETMASK, &all, NULL);
        shm_region_child_keep(m->region, p);
        local_sock_child_keep(m->socks, p);
        log_setup(m->cfg->log_level, "worker", (int)i);
        worker_args_t args = {m->cfg, p, m->listen_fd, m->region, m->server_id, i, m->socks};
        exit(worker_main(&args)); /* exit, not _exit: sanitizers check the worker at exit */
    }
    m->procs[p] = (proc_t){.pid = pid, .worker = i};
    m->wd_seen[p] = 0;
    return (int)p;
}

/* Makes block p the serving process of worker i and hands it the worker's pools. */
static void attach(master_t *m, uint32_t i, uint32_t p)
{
    slot_t *s = &m->slots[i];
    outbox_clear(s);
    s->phys = p;
    s->state = SLOT_RUNNING;
    s->started_ms = now_ms();
    STATS_SET(pstats(m, p)->role, STATS_ROLE_ACTIVE);
    pools_foreach_in_slot(m->pools, i, resend_one, m);
}

static int spawn(master_t *m, uint32_t i)
{
    int p = spawn_proc(m, i, STATS_ROLE_ACTIVE);
    if (p < 0)
        return p;
    attach(m, i, (uint32_t)p);
    LOG_INFO("worker %u started (pid %d)", i, (int)m->procs[p].pid);
    return 0;
}

/* The worker's current process drains (already told, or on its own); a new one takes over now,
 * before the old one is gone. */
static void retire(master_t *m, uint32_t p, bool signal_it)
{
    proc_t *pr = &m->procs[p];
    pr->retiring = true;
    STATS_SET(pstats(m, p)->role, STATS_ROLE_RETIRING);
    STATS_SET(pstats(m, p)->pools, 0); /* its pools belong to its replacement now */
    if (signal_it)
        kill(pr->pid, SIGTERM);
}

static void replace_now(master_t *m, uint32_t i)
{
    slot_t *s = &m->slots[i];
    uint32_t old = s->phys;
    retire(m, old, false);
    int p = spawn_proc(m, i, STATS_ROLE_ACTIVE);
    if (p < 0) {
        s->state = SLOT_WAITING;
        s->respawn_at_ms = now_ms() + BACKOFF_MIN_MS;
        return;
    }
    attach(m, i, (uint32_t)p);
    LOG_INFO("worker %u (pid %d) is draining: replaced by pid %d", i, (int)m->procs[old].pid,
             (int)m->procs[p].pid);
}

/* Workers that began draining by themselves (a SIGTERM not sent by the master). */
static void check_draining(master_t *m)
{
    if (m->stopping)
        return;
    for (uint32_t i = 0; i < m->nslots; i++) {
        slot_t *s = &m->slots[i];
        if (s->state != SLOT_RUNNING || m->procs[s->phys].retiring)
            continue;
        if (STATS_GET(pstats(m, s->phys)->draining))
            replace_now(m, i);
    }
}

static int proc_of(const master_t *m, pid_t pid)
{
    for (uint32_t p = 0; p < m->nprocs; p++) {
        if (m->procs[p].pid == pid)
            return (int)p;
    }
    return -1;
}

static void on_worker_exit(master_t *m, pid_t pid, int status)
{
    int p = proc_of(m, pid);
    if (p < 0)
        return;
    proc_t pr = m->procs[p];
    m->procs[p].pid = 0;
    memset(pstats(m, (uint32_t)p), 0, sizeof(stats_worker_t));
    local_sock_drain(m->socks, (uint32_t)p);
    slot_t *s = &m->slots[pr.worker];
    if (pr.retiring) {
        LOG_INFO("worker %u: retired pid %d exited", pr.worker, (int)pid);
        return;
    }
    if (s->next == p) {
        LOG_ERROR("reload: the new worker %u (pid %d) exited before listening; keeping pid %d",
                  pr.worker, (int)pid, s->state == SLOT_RUNNING ? (int)m->procs[s->phys].pid : 0);
        s->next = NEXT_FAILED;
        return;
    }
    if (s->state != SLOT_RUNNING || s->phys != (uint32_t)p)
        return;
    uint64_t lived = now_ms() - s->started_ms;
    if (m->stopping) {
        s->state = SLOT_IDLE;
        return;
    }
    uint32_t i = pr.worker;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 2 && lived < SETUP_WINDOW_MS) {
        LOG_ERROR("worker %u failed during setup (exit 2); not respawning it", i);
        s->state = SLOT_FAILED;
        return;
    }
    if (WIFSIGNALED(status))
        LOG_WARN("worker %u (pid %d) killed by signal %d", i, (int)pid, WTERMSIG(status));
    else
        LOG_WARN("worker %u (pid %d) exited with status %d", i, (int)pid, WEXITSTATUS(status));
    STATS_ADD(m->gstats->respawns, 1);
    if (lived >= STABLE_AFTER_MS || s->backoff_ms == 0)
        s->backoff_ms = BACKOFF_MIN_MS;
    else if (s->backoff_ms < BACKOFF_MAX_MS)
        s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
    s->state = SLOT_WAITING;
    s->respawn_at_ms = now_ms() + s->backoff_ms;
    LOG_INFO("respawning worker %u in %u ms", i, s->backoff_ms);
}

static void reap(master_t *m)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        on_worker_exit(m, pid, status);
}

/* Live worker processes, draining ones included. */
static uint32_t running(const master_t *m)
{
    uint32_t n = 0;
    for (uint32_t p = 0; p < m->nprocs; p++)
        n += m->procs[p].pid != 0;
    return n;
}

/* Worker numbers that serve or will be respawned. */
static uint32_t serving(const master_t *m)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->nslots; i++)
        n += m->slots[i].state == SLOT_RUNNING || m->slots[i].state == SLOT_WAITING;
    return n;
}

/* The STATUS= text `systemctl status` shows:
 * "serving with 2 workers, 153 clients, 40 streams (generation 1)" */
static void status_text(master_t *m, char *out, size_t cap)
{
    uint64_t clients = 0;
    for (uint32_t p = 0; p < m->nprocs; p++) {
        if (m->procs[p].pid)
            clients += STATS_GET(pstats(m, p)->connections);
    }
    snprintf(out, cap, "serving with %u workers, %llu clients, %llu streams (generation %llu)",
             serving(m), (unsigned long long)clients,
             (unsigned long long)STATS_GET(m->gstats->streams), (unsigned long long)m->generation);
}

static void notify_status(master_t *m, const char *prefix)
{
    char text[sizeof(m->status_sent)];
    status_text(m, text, sizeof(text));
    char msg[sizeof(text) + 64];
    snprintf(msg, sizeof(msg), "%sSTATUS=%s", prefix, text);
    sd_notify_send(msg);
    memcpy(m->status_sent, text, sizeof(text));
}

/* Between READY and a reload or the stop: STATUS= again when it changed, at most once a second. */
static void status_refresh(master_t *m)
{
    uint64_t now = now_ms();
    if (!m->ready_sent || m->reloading || m->stopping || now < m->status_next_ms)
        return;
    m->status_next_ms = now + STATUS_EVERY_MS;
    char text[sizeof(m->status_sent)];
    status_text(m, text, sizeof(text));
    if (strcmp(text, m->status_sent) != 0)
        notify_status(m, "");
}

static void begin_stop(master_t *m, int sig)
{
    if (m->stopping)
        return;
    LOG_INFO("%s: draining %u workers",
             sig == SIGINT    ? "SIGINT"
             : sig == SIGQUIT ? "SIGQUIT"
                              : "SIGTERM",
             running(m));
    sd_notify_send("STOPPING=1\nSTATUS=draining");
    m->stopping = true;
    m->stop_deadline_ms = now_ms() + (uint64_t)m->cfg->shutdown_timeout_ms + 1000;
    for (uint32_t p = 0; p < m->nprocs; p++) {
        if (m->procs[p].pid)
            kill(m->procs[p].pid, SIGTERM);
    }
    for (uint32_t i = 0; i < m->nslots; i++) {
        if (m->slots[i].state == SLOT_WAITING)
            m->slots[i].state = SLOT_IDLE;
    }
}

/* READY=1 once every worker started at launch listens (or gave up). */
static void maybe_ready(master_t *m)
{
    if (m->ready_sent)
        return;
    for (uint32_t i = 0; i < m->nslots; i++) {
        const slot_t *s = &m->slots[i];
        if (s->state == SLOT_RUNNING &&
            (pid_t)STATS_GET(pstats(m, s->phys)->pid) != m->procs[s->phys].pid)
            return;
    }
    m->ready_sent = true;
    notify_status(m, "READY=1\n");
}

/* ---- reload (SIGHUP) ---- */

/* Loads and validates the configuration a reload would switch to; NULL (logged) if invalid. */
static cfg_t *load_config(master_t *m, bool *json)
{
    buf_t err;
    buf_init(&err);
    envfile_t *ef = NULL;
    cfg_t *cfg = NULL;
    const char *path = getenv("STREAMIO_ENV_FILE");
    bool ok = !(path && *path && envfile_load(path, &ef, &err));
    if (ok && (cfg = calloc(1, sizeof(*cfg))) == NULL) {
        buf_puts(&err, "out of memory");
        ok = false;
    }
    if (ok && config_load(cfg, envfile_getenv, ef, &err))
        ok = false;
    const char *fmt = envfile_getenv("LOG_FORMAT", ef);
    *json = false;
    if (ok && fmt && log_format_parse(fmt, json)) {
        buf_printf(&err, "invalid LOG_FORMAT=\"%s\": expected text or json", fmt);
        ok = false;
    }
    if (ok && (uint32_t)cfg->cluster_workers > m->cap_workers) {
        buf_printf(&err, "CLUSTER_WORKERS=%d is above %u, the most a reload can reach: restart",
                   cfg->cluster_workers, m->cap_workers);
        ok = false;
    }
    envfile_free(ef);
    if (!ok) {
        LOG_ERROR("reload refused, still running on the previous configuration: %s",
                  err.data ? err.data : "unknown error");
        STATS_ADD(m->gstats->reload_failures, 1);
        free(cfg);
        buf_free(&err);
        return NULL;
    }
    buf_free(&err);
    if (strcmp(cfg->host, m->cfg->host) != 0 || cfg->port != m->cfg->port) {
        LOG_WARN("reload: HOST/PORT changes need a restart; still listening on %s:%d", m->cfg->host,
                 m->cfg->port);
        memcpy(cfg->host, m->cfg->host, sizeof(cfg->host));
        cfg->port = m->cfg->port;
    }
    return cfg;
}

static void begin_reload(master_t *m)
{
    if (m->stopping)
        return;
    if (m->reloading) {
        LOG_WARN("SIGHUP: a reload is already in progress; ignored");
        return;
    }
    bool json;
    cfg_t *cfg = load_config(m, &json);
    if (!cfg)
        return;
    cfg_t **list = realloc(m->cfgs, (m->ncfgs + 1) * sizeof(*list));
    uint32_t to = (uint32_t)cfg->cluster_workers;
    if (list)
        m->cfgs = list;
    /* limits first: a failed resize (growing) then changes nothing else, and shrinking never fails
     */
    if (!list || pools_set_limits(m->pools, (uint32_t)cfg->pool_size, (uint32_t)cfg->max_pools) ||
        (to > m->nslots && pools_resize(m->pools, to))) {
        LOG_ERROR("reload refused: out of memory");
        free(cfg);
        return;
    }
    if (to < m->nslots) {
        /* a removed worker stops reading its streams now, before their new owner starts: a
         * stream is never read by two workers at once (entries wait in Redis meanwhile) */
        for (uint32_t i = to; i < m->nslots; i++) {
            if (m->slots[i].state == SLOT_RUNNING)
                pools_foreach_in_slot(m->pools, i, unassign_one, m);
        }
        pools_resize(m->pools, to);
    }
    m->cfgs[m->ncfgs++] = cfg;
    char msg[96];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    /* MONOTONIC_USEC lets systemd (Type=notify-reload) tell this reload from an older one */
    snprintf(msg, sizeof(msg), "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
    sd_notify_send(msg);
    m->cfg = cfg;
    log_set_json(json);
    m->generation++;
    STATS_SET(m->gstats->generation, m->generation);
    log_setup(cfg->log_level, "master", -1);
    LOG_INFO("SIGHUP: reloading (generation %llu, %u -> %u workers)",
             (unsigned long long)m->generation, m->nslots, to);
    m->reloading = true;
    m->reload_i = 0;
    m->reload_to = to;
    for (uint32_t i = m->nslots; i < to; i++)
        m->slots[i] = (slot_t){.state = SLOT_IDLE, .next = NEXT_NONE};
    if (to > m->nslots)
        m->nslots = to;
}

/* Promotes worker i's started replacement once it listens, and tells the old one to drain. */
static void promote(master_t *m, uint32_t i)
{
    slot_t *s = &m->slots[i];
    uint32_t p = (uint32_t)s->next;
    s->next = NEXT_NONE;
    if (s->state == SLOT_RUNNING) {
        uint32_t old = s->phys;
        pid_t oldpid = m->procs[old].pid;
        retire(m, old, true);
        m->reload_wait = oldpid;
        m->reload_wait_until = now_ms() + (uint64_t)m->cfg->shutdown_timeout_ms;
        LOG_INFO("worker %u replaced: pid %d -> pid %d", i, (int)oldpid, (int)m->procs[p].pid);
    }
    s->backoff_ms = 0;
    attach(m, i, p);
}

static void finish_reload(master_t *m)
{
    for (uint32_t i = m->reload_to; i < m->nslots; i++) {
        slot_t *s = &m->slots[i];
        if (s->state == SLOT_RUNNING)
            retire(m, s->phys, true);
        outbox_clear(s);
        s->state = SLOT_IDLE;
    }
    m->nslots = m->reload_to;
    m->reloading = false;
    STATS_SET(m->gstats->workers, m->nslots);
    STATS_ADD(m->gstats->reloads, 1);
    LOG_INFO("reload complete: generation %llu, %u workers", (unsigned long long)m->generation,
             m->nslots);
    notify_status(m, "READY=1\n");
}

/* A replacement failed: the old process serves on, and gets the pools a shrinking reload moved
 * to its worker number (adding a stream it already reads is a no-op). */
static void keep_old(master_t *m, uint32_t i)
{
    if (m->slots[i].state == SLOT_RUNNING)
        pools_foreach_in_slot(m->pools, i, resend_one, m);
}

/* One step of the rolling replacement: one worker number at a time. */
static void reload_step(master_t *m)
{
    while (m->reloading && m->reload_i < m->reload_to) {
        /* one worker's clients reconnect at a time: the previous one must have drained first */
        if (m->reload_wait && proc_of(m, m->reload_wait) >= 0 && now_ms() < m->reload_wait_until)
            return;
        m->reload_wait = 0;
        uint32_t i = m->reload_i;
        slot_t *s = &m->slots[i];
        if (s->next == NEXT_FAILED) {
            s->next = NEXT_NONE;
            keep_old(m, i);
            m->reload_i++;
            continue;
        }
        if (s->next == NEXT_NONE) {
            if (s->state != SLOT_RUNNING) {
                /* nothing to replace: a new worker number, or one waiting for its respawn */
                if (s->state != SLOT_WAITING && spawn(m, i) != 0)
                    s->state = SLOT_FAILED;
                m->reload_i++;
                continue;
            }
            int p = spawn_proc(m, i, STATS_ROLE_STARTING);
            if (p < 0) {
                m->reload_i++;
                continue;
            }
            s->next = p;
            s->next_deadline_ms = now_ms() + READY_TIMEOUT_MS;
            return;
        }
        proc_t *np = &m->procs[s->next];
        if ((pid_t)STATS_GET(pstats(m, (uint32_t)s->next)->pid) == np->pid) {
            promote(m, i);
            m->reload_i++;
            continue;
        }
        if (now_ms() >= s->next_deadline_ms) {
            LOG_ERROR("reload: the new worker %u (pid %d) did not listen within %d ms; keeping "
                      "the old one",
                      i, (int)np->pid, READY_TIMEOUT_MS);
            np->retiring = true;
            kill(np->pid, SIGKILL);
            s->next = NEXT_NONE;
            keep_old(m, i);
            m->reload_i++;
            continue;
        }
        return;
    }
    if (m->reloading)
        finish_reload(m);
}

/* ---- watchdog ---- */

/* WATCHDOG=1 only when every serving worker's loop turned since the last check. */
static void watchdog(master_t *m)
{
    uint64_t now = now_ms();
    if (!m->wd_interval_ms || now < m->wd_next_ms || m->stopping)
        return;
    m->wd_next_ms = now + m->wd_interval_ms;
    bool healthy = true;
    for (uint32_t p = 0; p < m->nprocs; p++) {
        if (!m->procs[p].pid || m->procs[p].retiring)
            continue;
        uint64_t hb = STATS_GET(pstats(m, p)->heartbeat);
        if (hb == m->wd_seen[p] && STATS_GET(pstats(m, p)->role) == STATS_ROLE_ACTIVE) {
            if (healthy)
                LOG_WARN("watchdog: worker %u (pid %d) made no progress; not notifying systemd",
                         m->procs[p].worker, (int)m->procs[p].pid);
            healthy = false;
        }
        m->wd_seen[p] = hb;
    }
    if (healthy)
        sd_notify_send("WATCHDOG=1");
}

static void watchdog_setup(master_t *m)
{
    const char *usec = getenv("WATCHDOG_USEC");
    const char *wpid = getenv("WATCHDOG_PID");
    if (!usec || (wpid && atol(wpid) != (long)getpid()))
        return;
    unsigned long long us = strtoull(usec, NULL, 10);
    if (!us)
        return;
    /* check twice per period, but never faster than the workers' 250 ms heartbeat can follow */
    m->wd_interval_ms = us / 2000 < 600 ? 600 : us / 2000;
    m->wd_next_ms = now_ms() + m->wd_interval_ms;
    LOG_INFO("watchdog: checking the workers every %llu ms", (unsigned long long)m->wd_interval_ms);
}

/* ---- discovery ---- */

static void on_new_stream(master_t *m, const char *key, size_t len, bool priority)
{
    uint32_t pool, slot;
    int rc = pools_add(m->pools, key, len, priority, m->cycle, &pool, &slot);
    if (rc == 1) {
        LOG_DEBUG("stream %.*s -> pool %u on worker %u", (int)len, key, pool, slot);
        send_stream(m, WORKDESC_POOL_ADD, pool, slot, key, len);
    } else if (rc < 0) {
        LOG_ERROR("out of memory tracking stream %.*s", (int)len, key);
    }
}

static void on_scan_key(const char *key, size_t len, void *arg)
{
    master_t *m = arg;
    on_new_stream(m, key, len, config_is_priority(m->cfg, key, len));
}

static void on_gone(uint32_t pool, uint32_t slot, const char *name, size_t len, void *arg)
{
    LOG_DEBUG("stream %.*s is gone", (int)len, name);
    send_stream(arg, WORKDESC_STREAM_REMOVE, pool, slot, name, len);
}

/* A key event: SCAN would see the same change, seconds later on a big keyspace. */
static void on_keyevent(keyevent_kind_t kind, const char *key, size_t len, void *arg)
{
    master_t *m = arg;
    if (kind == KEYEVENT_DEL) {
        uint32_t pool, slot;
        if (pools_remove(m->pools, key, len, &pool, &slot) == 1) {
            LOG_INFO("stream %.*s was deleted", (int)len, key);
            send_stream(m, WORKDESC_STREAM_REMOVE, pool, slot, key, len);
        }
        return;
    }
    on_new_stream(m, key, len, config_is_priority(m->cfg, key, len));
}

static void keyevents_run(master_t *m, short revents)
{
    if (!m->kev)
        return;
    keyevents_handle(m->kev, revents, now_ms(), on_keyevent, m);
    STATS_SET(m->gstats->streams, pools_streams(m->pools));
    STATS_SET(m->gstats->pools, pools_count(m->pools));
}

/* PRIORITY_STREAMS enter first, so they get the first (dedicated) pools. */
static void add_priority(master_t *m)
{
    for (size_t i = 0; i < m->cfg->npriority; i++) {
        const char *name = m->cfg->priority[i];
        int rc = discovery_is_stream(m->disc, name);
        if (rc < 0)
            return;
        if (rc == 1)
            on_new_stream(m, name, strlen(name), true);
    }
    m->priority_done = true;
}

static void discover(master_t *m)
{
    uint64_t now = now_ms();
    if (m->next_scan_ms && now < m->next_scan_ms)
        return;
    if (!m->priority_done)
        add_priority(m);
    if (m->next_scan_ms || !m->pass_started_ms)
        m->pass_started_ms = now;
    m->next_scan_ms = 0;
    for (int step = 0; step < SCAN_BUDGET_STEPS; step++) {
        int rc = discovery_step(m->disc, on_scan_key, m);
        if (rc < 0) {
            m->next_scan_ms = now + (uint64_t)m->cfg->discovery_interval_ms;
            break;
        }
        if (rc == 1) {
            /* SCAN returns every key that existed for the whole pass: one not seen is gone */
            size_t gone = pools_sweep(m->pools, m->cycle, on_gone, m);
            if (gone)
                LOG_INFO("discovery: %zu stream%s gone since the last pass", gone,
                         gone == 1 ? "" : "s");
            m->cycle++;
            STATS_ADD(m->gstats->scan_cycles, 1);
            /* a big keyspace is not rescanned back to back: idle Redis CPU stays bounded */
            uint64_t pause = (uint64_t)m->cfg->discovery_interval_ms;
            uint64_t took = now_ms() - m->pass_started_ms;
            if (pause < took * SCAN_DUTY_FACTOR)
                pause = took * SCAN_DUTY_FACTOR;
            m->next_scan_ms = now + pause;
            break;
        }
    }
    STATS_SET(m->gstats->streams, pools_streams(m->pools));
    STATS_SET(m->gstats->pools, pools_count(m->pools));
    STATS_SET(m->gstats->redis_connected, discovery_connected(m->disc));
    STATS_SET(m->gstats->redis_reconnects, discovery_reconnects(m->disc));
    pools_count_by_slot(m->pools, m->slot_pools, m->nslots);
    for (uint32_t i = 0; i < m->nslots; i++) {
        if (m->slots[i].state == SLOT_RUNNING)
            STATS_SET(pstats(m, m->slots[i].phys)->pools, m->slot_pools[i]);
    }
}

/* ---- loop ---- */

static int next_timeout(const master_t *m)
{
    uint64_t now = now_ms();
    uint64_t due = now + 1000;
    for (uint32_t i = 0; i < m->nslots; i++) {
        const slot_t *s = &m->slots[i];
        if (s->state == SLOT_WAITING && s->respawn_at_ms < due)
            due = s->respawn_at_ms;
        if (s->out_head)
            due = now + 5; /* a full ring: retry soon */
    }
    if ((m->reloading || !m->ready_sent) && now + RELOAD_POLL_MS < due)
        due = now + RELOAD_POLL_MS;
    if (m->wd_interval_ms && m->wd_next_ms < due)
        due = m->wd_next_ms;
    if (m->stopping && m->stop_deadline_ms < due)
        due = m->stop_deadline_ms;
    if (!m->stopping && m->next_scan_ms < due)
        due = m->next_scan_ms;
    if (!m->stopping && m->kev && keyevents_due_ms(m->kev) < due)
        due = keyevents_due_ms(m->kev);
    return due > now ? (int)(due - now) : 0;
}

static void handle_signals(master_t *m)
{
    struct signalfd_siginfo si;
    while (read(m->sig_fd, &si, sizeof(si)) == sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGCHLD:
            reap(m);
            break;
        case SIGTERM:
        case SIGINT:
        case SIGQUIT:
            begin_stop(m, (int)si.ssi_signo);
            break;
        case SIGHUP:
            begin_reload(m);
            break;
        case SIGUSR1: /* a worker started draining on its own */
            check_draining(m);
            break;
        default:
            break;
        }
    }
}

static void respawn_due(master_t *m)
{
    uint64_t now = now_ms();
    for (uint32_t i = 0; i < m->nslots; i++) {
        slot_t *s = &m->slots[i];
        if (s->state == SLOT_WAITING && now >= s->respawn_at_ms && spawn(m, i) != 0)
            s->respawn_at_ms = now + BACKOFF_MAX_MS;
    }
}

static int on_control(int argc, char **argv, const size_t *lens, buf_t *out, void *arg)
{
    master_t *m = arg;
    admin_ctx_t ctx = {m->cfg, m->region, m->server_id};
    return admin_run(argc, argv, lens, out, &ctx);
}

static int loop(master_t *m)
{
    for (;;) {
        struct pollfd pfd[3] = {{.fd = m->sig_fd, .events = POLLIN},
                                {.fd = m->control ? control_fd(m->control) : -1, .events = POLLIN},
                                {.fd = -1}};
        if (m->kev && !m->stopping) {
            pfd[2].fd = keyevents_fd(m->kev);
            pfd[2].events = keyevents_events(m->kev);
        }
        if (poll(pfd, 3, next_timeout(m)) < 0 && errno != EINTR)
            return 1;
        if (m->control && (pfd[1].revents & POLLIN))
            control_serve(m->control, on_control, m);
        handle_signals(m);
        if (m->stopping) {
            if (running(m) == 0)
                return 0;
            if (now_ms() >= m->stop_deadline_ms) {
                LOG_WARN("shutdown timeout: killing %u workers", running(m));
                for (uint32_t p = 0; p < m->nprocs; p++) {
                    if (m->procs[p].pid)
                        kill(m->procs[p].pid, SIGKILL);
                }
                m->stop_deadline_ms = now_ms() + 1000;
            }
            continue;
        }
        if (serving(m) == 0 && !m->reloading) {
            LOG_ERROR("no worker can run; exiting");
            return 2;
        }
        maybe_ready(m);
        check_draining(m);
        if (m->ready_sent)
            reload_step(m);
        respawn_due(m);
        watchdog(m);
        keyevents_run(m, pfd[2].fd >= 0 ? pfd[2].revents : 0);
        status_refresh(m);
        discover(m);
        for (uint32_t i = 0; i < m->nslots; i++)
            outbox_flush(m, i);
    }
}

static int setup(master_t *m, buf_t *err)
{
    const char *pidpath = getenv("STREAMIO_PID_FILE");
    pid_t holder;
    if (pidpath && *pidpath && pidfile_acquire(pidpath, &m->pidfile, &holder, err))
        return -1;
    m->listen_fd = listener_open(m->cfg->host, m->cfg->port, err);
    if (m->listen_fd < 0)
        return -1;
    const char *ctl = getenv("STREAMIO_CONTROL_SOCKET");
    if (ctl && *ctl && control_open(&m->control, ctl, err))
        return -1;
    m->nslots = (uint32_t)m->cfg->cluster_workers;
    m->cap_workers = m->nslots > MIN_WORKER_CAPACITY ? m->nslots : MIN_WORKER_CAPACITY;
    if (m->cap_workers > SHM_REGION_MAX_SLOTS / 2)
        m->cap_workers = SHM_REGION_MAX_SLOTS / 2;
    m->nprocs = 2 * m->cap_workers;
    int rc = shm_region_new(&m->region, m->nprocs, RING_CAPACITY, sizeof(stats_worker_t),
                            sizeof(stats_global_t));
    if (rc) {
        buf_printf(err, "streamio: cannot create the shared memory region: %s", strerror(-rc));
        return -1;
    }
    if ((rc = local_sock_new(&m->socks, m->nprocs))) {
        buf_printf(err, "streamio: cannot create the workers' channels: %s", strerror(-rc));
        return -1;
    }
    m->generation = 1;
    m->gstats = shm_region_global(m->region);
    STATS_SET(m->gstats->master_pid, getpid());
    STATS_SET(m->gstats->started_ms, wall_ms());
    STATS_SET(m->gstats->workers, m->nslots);
    STATS_SET(m->gstats->generation, m->generation);
    m->slots = calloc(m->cap_workers, sizeof(*m->slots));
    m->procs = calloc(m->nprocs, sizeof(*m->procs));
    m->wd_seen = calloc(m->nprocs, sizeof(*m->wd_seen));
    m->slot_pools = calloc(m->cap_workers, sizeof(*m->slot_pools));
    m->disc = discovery_new(m->cfg);
    if (m->cfg->keyspace_events && (m->kev = keyevents_new(m->cfg)) == NULL) {
        buf_puts(err, "streamio: out of memory at startup");
        return -1;
    }
    m->pools = pools_new((uint32_t)m->cfg->pool_size, (uint32_t)m->cfg->max_pools, m->nslots);
    if (!m->slots || !m->procs || !m->wd_seen || !m->slot_pools || !m->disc || !m->pools ||
        ids_random(m->server_id, 12)) {
        buf_puts(err, "streamio: out of memory at startup");
        return -1;
    }
    for (uint32_t i = 0; i < m->cap_workers; i++)
        m->slots[i].next = NEXT_NONE;
    sigset_t set;
    sigemptyset(&set);
    int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaddset(&set, sigs[i]);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    m->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (m->sig_fd < 0) {
        buf_printf(err, "streamio: signalfd: %s", strerror(errno));
        return -1;
    }
    m->cycle = 1;
    watchdog_setup(m);
    return 0;
}

static void teardown(master_t *m)
{
    for (uint32_t i = 0; m->slots && i < m->cap_workers; i++)
        outbox_clear(&m->slots[i]);
    free(m->slots);
    free(m->procs);
    free(m->wd_seen);
    free(m->slot_pools);
    pools_free(m->pools);
    discovery_free(m->disc);
    keyevents_free(m->kev);
    shm_region_free(m->region);
    local_sock_free(m->socks);
    if (m->sig_fd > 0)
        close(m->sig_fd);
    if (m->listen_fd >= 0)
        close(m->listen_fd);
    buf_free(&m->rec);
    for (size_t i = 0; i < m->ncfgs; i++)
        free(m->cfgs[i]);
    free(m->cfgs);
    control_close(m->control);
    pidfile_release(m->pidfile);
}

int master_run(const cfg_t *cfg)
{
    master_t m = {.cfg = cfg, .listen_fd = -1, .sig_fd = -1};
    buf_init(&m.rec);
    buf_t err;
    buf_init(&err);
    if (setup(&m, &err)) {
        LOG_ERROR("%s", err.data ? err.data : "startup failed");
        buf_free(&err);
        teardown(&m);
        return 2;
    }
    buf_free(&err);
    for (uint32_t i = 0; i < m.nslots; i++) {
        if (spawn(&m, i)) {
            teardown(&m);
            return 2;
        }
    }
    LOG_INFO("streamio listening on http://%s:%d with %u workers (redis %s:%d)", cfg->host,
             cfg->port, m.nslots, cfg->redis_host, cfg->redis_port);
    int rc = loop(&m);
    LOG_INFO("master exiting (status %d)", rc);
    teardown(&m);
    return rc;
}
