/*
 * master: see master.h. One poll(2) loop over a signalfd; every deadline (respawn, discovery,
 * shutdown) is a timestamp checked after each wake-up.
 */
#include "master/master.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/ids.h"
#include "common/log.h"
#include "common/sd_notify.h"
#include "master/discovery.h"
#include "master/listener.h"
#include "master/pools.h"
#include "shm/region.h"
#include "shm/stats.h"
#include "shm/workdesc.h"
#include "worker/worker.h"

#define RING_CAPACITY (1u << 20)
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define STABLE_AFTER_MS 10000 /* a worker that lived this long resets its backoff */
#define SETUP_WINDOW_MS 5000  /* an exit 2 this soon after start is a setup failure */
#define SCAN_BUDGET_STEPS 64  /* SCAN steps per loop turn, so signals are never starved */
#define SCAN_DUTY_FACTOR 4    /* pause >= 4 x the last pass: SCAN busy at most 20% of the time */

typedef struct outrec {
    struct outrec *next;
    uint16_t type;
    uint32_t len;
    char data[];
} outrec_t;

typedef enum slot_state { SLOT_IDLE, SLOT_RUNNING, SLOT_WAITING, SLOT_FAILED } slot_state_t;

typedef struct slot {
    slot_state_t state;
    pid_t pid;
    uint64_t started_ms;
    uint64_t respawn_at_ms;
    uint32_t backoff_ms;
    outrec_t *out_head, *out_tail; /* descriptors the ring had no room for yet */
} slot_t;

typedef struct master {
    const cfg_t *cfg;
    int listen_fd;
    int sig_fd;
    shm_region_t *region;
    stats_global_t *gstats;
    slot_t *slots;
    uint32_t nslots;
    discovery_t *disc;
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

static void outbox_flush(master_t *m, uint32_t i)
{
    slot_t *s = &m->slots[i];
    while (s->out_head && s->state == SLOT_RUNNING) {
        outrec_t *r = s->out_head;
        int rc = shm_region_send(m->region, i, r->type, r->data, r->len);
        if (rc == -EAGAIN)
            return;
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

/* ---- workers ---- */

static int spawn(master_t *m, uint32_t i)
{
    slot_t *s = &m->slots[i];
    ring_reset(shm_region_ring(m->region, i));
    outbox_clear(s);
    stats_worker_t *ws = shm_region_slot_stats(m->region, i);
    memset(ws, 0, sizeof(*ws));
    pid_t pid = fork();
    if (pid < 0) {
        LOG_ERROR("fork failed for worker %u: %s", i, strerror(errno));
        return -errno;
    }
    if (pid == 0) {
        sigset_t all;
        sigemptyset(&all);
        close(m->sig_fd);
        sigprocmask(SIG_SETMASK, &all, NULL);
        shm_region_child_keep(m->region, i);
        log_setup(m->cfg->log_level, "worker", (int)i);
        worker_args_t args = {m->cfg, i, m->listen_fd, m->region, m->server_id};
        exit(worker_main(&args)); /* exit, not _exit: sanitizers check the worker at exit */
    }
    s->pid = pid;
    s->state = SLOT_RUNNING;
    s->started_ms = now_ms();
    pools_foreach_in_slot(m->pools, i, resend_one, m);
    LOG_INFO("worker %u started (pid %d)", i, (int)pid);
    return 0;
}

static slot_t *slot_of(master_t *m, pid_t pid, uint32_t *idx)
{
    for (uint32_t i = 0; i < m->nslots; i++) {
        if (m->slots[i].pid == pid && m->slots[i].state == SLOT_RUNNING) {
            *idx = i;
            return &m->slots[i];
        }
    }
    return NULL;
}

static void on_worker_exit(master_t *m, pid_t pid, int status)
{
    uint32_t i;
    slot_t *s = slot_of(m, pid, &i);
    if (!s)
        return;
    s->pid = 0;
    stats_worker_t *ws = shm_region_slot_stats(m->region, i);
    memset(ws, 0, sizeof(*ws));
    uint64_t lived = now_ms() - s->started_ms;
    if (m->stopping) {
        s->state = SLOT_IDLE;
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 2 && lived < SETUP_WINDOW_MS) {
        LOG_ERROR("worker %u failed during setup (exit 2); not respawning it", i);
        s->state = SLOT_FAILED;
        return;
    }
    if (WIFSIGNALED(status))
        LOG_WARN("worker %u (pid %d) killed by signal %d", i, (int)pid, WTERMSIG(status));
    else
        LOG_WARN("worker %u (pid %d) exited with status %d", i, (int)pid, WEXITSTATUS(status));
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

static uint32_t running(const master_t *m)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->nslots; i++)
        n += m->slots[i].state == SLOT_RUNNING || m->slots[i].state == SLOT_WAITING;
    return n;
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
    sd_notify_send("STOPPING=1");
    m->stopping = true;
    m->stop_deadline_ms = now_ms() + (uint64_t)m->cfg->shutdown_timeout_ms + 1000;
    for (uint32_t i = 0; i < m->nslots; i++) {
        if (m->slots[i].state == SLOT_RUNNING)
            kill(m->slots[i].pid, SIGTERM);
        else if (m->slots[i].state == SLOT_WAITING)
            m->slots[i].state = SLOT_IDLE;
    }
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
    LOG_INFO("stream %.*s is gone", (int)len, name);
    send_stream(arg, WORKDESC_STREAM_REMOVE, pool, slot, name, len);
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
            pools_sweep(m->pools, m->cycle, on_gone, m);
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
    if (m->stopping && m->stop_deadline_ms < due)
        due = m->stop_deadline_ms;
    if (!m->stopping && m->next_scan_ms < due)
        due = m->next_scan_ms;
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
            LOG_WARN("SIGHUP: configuration reload is not available yet; still running");
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

static int loop(master_t *m)
{
    for (;;) {
        struct pollfd pfd = {.fd = m->sig_fd, .events = POLLIN};
        if (poll(&pfd, 1, next_timeout(m)) < 0 && errno != EINTR)
            return 1;
        handle_signals(m);
        if (m->stopping) {
            if (running(m) == 0)
                return 0;
            if (now_ms() >= m->stop_deadline_ms) {
                LOG_WARN("shutdown timeout: killing %u workers", running(m));
                for (uint32_t i = 0; i < m->nslots; i++) {
                    if (m->slots[i].state == SLOT_RUNNING)
                        kill(m->slots[i].pid, SIGKILL);
                }
                m->stop_deadline_ms = now_ms() + 1000;
            }
            continue;
        }
        if (running(m) == 0) {
            LOG_ERROR("no worker can run; exiting");
            return 2;
        }
        respawn_due(m);
        discover(m);
        for (uint32_t i = 0; i < m->nslots; i++)
            outbox_flush(m, i);
    }
}

static int setup(master_t *m, buf_t *err)
{
    m->listen_fd = listener_open(m->cfg->host, m->cfg->port, err);
    if (m->listen_fd < 0)
        return -1;
    m->nslots = (uint32_t)m->cfg->cluster_workers;
    int rc = shm_region_new(&m->region, m->nslots, RING_CAPACITY, sizeof(stats_worker_t),
                            sizeof(stats_global_t));
    if (rc) {
        buf_printf(err, "streamio: cannot create the shared memory region: %s", strerror(-rc));
        return -1;
    }
    m->gstats = shm_region_global(m->region);
    STATS_SET(m->gstats->master_pid, getpid());
    STATS_SET(m->gstats->started_ms, wall_ms());
    m->slots = calloc(m->nslots, sizeof(*m->slots));
    m->disc = discovery_new(m->cfg);
    m->pools = pools_new((uint32_t)m->cfg->pool_size, (uint32_t)m->cfg->max_pools, m->nslots);
    if (!m->slots || !m->disc || !m->pools || ids_random(m->server_id, 12)) {
        buf_puts(err, "streamio: out of memory at startup");
        return -1;
    }
    sigset_t set;
    sigemptyset(&set);
    int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP};
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
    return 0;
}

static void teardown(master_t *m)
{
    for (uint32_t i = 0; m->slots && i < m->nslots; i++)
        outbox_clear(&m->slots[i]);
    free(m->slots);
    pools_free(m->pools);
    discovery_free(m->disc);
    shm_region_free(m->region);
    if (m->sig_fd > 0)
        close(m->sig_fd);
    if (m->listen_fd >= 0)
        close(m->listen_fd);
    buf_free(&m->rec);
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
    sd_notify_send("READY=1\nSTATUS=serving");
    int rc = loop(&m);
    LOG_INFO("master exiting (status %d)", rc);
    teardown(&m);
    return rc;
}
