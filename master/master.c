/*
 * master: see master.h. The wiring: one libuv loop; the decisions live in master/proc/slots,
 * stream discovery in master/discovery, the control socket's commands in master/admin. Signals
 * arrive through master/proc/signals, and after each one, and whenever slots asked to be called
 * back, slots_tick runs.
 */
#include "master/master.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/ids.h"
#include "common/log.h"
#include "common/redis/redis_client.h"
#include "common/redis/redis_topology.h"
#include "common/sd_notify.h"
#include "common/xalloc.h"
#include "master/admin/admin.h"
#include "master/admin/control.h"
#include "master/discovery/discovery.h"
#include "master/proc/listener.h"
#include "master/proc/pidfile.h"
#include "master/proc/signals.h"
#include "master/proc/slots.h"
#include "master/proc/spawn.h"
#include "master/settings.h"
#include "shm/ledger.h"
#include "shm/local_sock.h"
#include "shm/region.h"
#include "shm/sessions.h"
#include "shm/stats.h"

#define RING_CAPACITY (1u << 20)
#define MIN_WORKER_CAPACITY 32 /* CLUSTER_WORKERS a reload may grow to, at least */
#define DEFAULT_CELLS 65536u   /* recoverable sessions without MAX_CONNECTIONS (virtual: 540 MB) */
#define EXIT_WAIT_MS 2000      /* at exit, how long Redis may take to answer what is in flight */

typedef struct master {
    uv_loop_t loop;
    worker_main_fn worker_main; /* what a forked child runs */
    const cfg_t *cfg;           /* the current configuration */
    cfg_t **cfgs; /* every configuration a reload loaded: the parts borrow them until exit */
    size_t ncfgs;
    int listen_fd;
    char server_id[13];
    pidfile_t *pidfile;
    shm_region_t *region;
    shm_sessions_t *sessions; /* CONNECTION_RECOVERY: sessions that outlive their worker */
    shm_ledger_t *ledger;     /* the entries each process delivered, kept across respawns */
    local_sock_t *socks; /* the workers' channels, per process block: held for the master's life */
    stats_global_t *g;
    signals_t *signals;
    redis_topology_t *topo; /* where Redis is; closed after every client */
    redis_client_t *redis;  /* the command client of discovery and admin */
    discovery_t *disc;
    admin_t *admin;
    control_t *control; /* streamioctl's socket, when STREAMIO_CONTROL_SOCKET is set */
    slots_t *slots;
    uv_timer_t tick; /* when slots has something to do next */
    uv_timer_t exit_wait;
    bool exiting;
    int status;
    int closing; /* parts still closing after the exit began */
} master_t;

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- what slots does to the world ---- */

static pid_t op_spawn(void *arg, uint32_t worker, uint32_t block)
{
    master_t *m = arg;
    spawn_req_t req = {
        .loop = &m->loop,
        .pidfile = m->pidfile,
        .main = m->worker_main,
        .args = {m->cfg, block, m->listen_fd, m->region, m->server_id, worker, m->socks,
                 m->sessions, m->ledger},
    };
    return spawn_worker(&req);
}

static int op_kill(void *arg, pid_t pid, int sig)
{
    (void)arg;
    return kill(pid, sig) ? -errno : 0;
}

static uint64_t op_now_us(void *arg)
{
    (void)arg;
    return uv_hrtime() / 1000; /* CLOCK_MONOTONIC, as systemd's MONOTONIC_USEC wants */
}

static void op_notify(void *arg, const char *state)
{
    master_t *m = arg;
    sd_notify_send(m->cfg->notify_socket, state);
}

static stats_worker_t *op_stats(void *arg, uint32_t block)
{
    master_t *m = arg;
    return shm_region_slot_stats(m->region, block);
}

static void op_attach(void *arg, uint32_t worker, uint32_t block)
{
    master_t *m = arg;
    discovery_attach(m->disc, worker, block);
}

static void op_detach(void *arg, uint32_t worker)
{
    master_t *m = arg;
    discovery_detach(m->disc, worker);
}

static void op_resend(void *arg, uint32_t worker)
{
    master_t *m = arg;
    discovery_resend(m->disc, worker);
}

static void op_reaped(void *arg, uint32_t block)
{
    master_t *m = arg;
    local_sock_drain(m->socks, block);
    /* a worker that drained left no session behind; one that was killed left them all */
    uint32_t n =
        m->sessions
            ? shm_sessions_orphan(m->sessions, block,
                                  uv_hrtime() / 1000000 + (uint64_t)m->cfg->recovery_window_ms)
            : 0;
    if (n)
        LOG_INFO("streamio: %u sessions of worker block %u kept for recovery", n, block);
}

static const slots_ops_t slots_ops = {op_spawn,  op_kill,   op_now_us, op_notify, op_stats,
                                      op_attach, op_detach, op_resend, op_reaped};

/* ---- exit ---- */

static void on_exit_wait_closed(uv_handle_t *h)
{
    (void)h;
}

static void part_closed(void *arg)
{
    master_t *m = arg;
    if (--m->closing > 0)
        return;
    if (m->topo) {
        redis_topology_t *t = m->topo;
        m->topo = NULL;
        m->closing = 1;
        redis_topology_close(t, part_closed, m);
        return;
    }
    uv_close((uv_handle_t *)&m->exit_wait, on_exit_wait_closed);
}

/* The Redis layer waits for the replies of what it sent (bounded by its command timeout); a Redis
 * that stopped answering must not keep a stopped master alive that long (the worker does the
 * same at its shutdown timeout). */
static void on_exit_wait(uv_timer_t *t)
{
    master_t *m = t->data;
    LOG_WARN("redis did not answer within %d ms; exiting without the replies", EXIT_WAIT_MS);
    LOG_INFO("master exiting (status %d)", m->status);
    _exit(m->status);
}

/* Closes every part; the loop ends once all are closed. */
static void begin_exit(master_t *m, int status)
{
    if (m->exiting)
        return;
    m->exiting = true;
    m->status = status;
    uv_close((uv_handle_t *)&m->tick, NULL);
    signals_close(m->signals);
    control_close(m->control);
    pidfile_release(m->pidfile);
    m->pidfile = NULL;
    m->closing = 1;
    if (m->admin) {
        m->closing++;
        admin_close(m->admin, part_closed, m);
    }
    if (m->disc) {
        m->closing++;
        discovery_close(m->disc, part_closed, m);
    }
    if (m->redis) {
        m->closing++;
        redis_client_close(m->redis, part_closed, m);
    }
    uv_timer_start(&m->exit_wait, on_exit_wait, EXIT_WAIT_MS, 0);
    part_closed(m);
}

/* ---- events ---- */

static void on_tick(uv_timer_t *t);

/* After every event: what slots decided is due, or the exit. */
static void run_slots(master_t *m)
{
    if (m->exiting)
        return;
    uint64_t ms = slots_tick(m->slots);
    int status = slots_exit_status(m->slots);
    if (status >= 0)
        begin_exit(m, status);
    else
        uv_timer_start(&m->tick, on_tick, ms, 0);
}

static void on_tick(uv_timer_t *t)
{
    run_slots(t->data);
}

static void reap(master_t *m)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        slots_exited(m->slots, pid, status);
}

/* Loads and validates the configuration a reload would switch to; NULL (logged) if invalid. */
static cfg_t *load_config(master_t *m)
{
    buf_t err, notes;
    buf_init(&err);
    buf_init(&notes);
    cfg_t *cfg = xcalloc(1, sizeof(*cfg));
    int rc = settings_reload(m->cfg, cfg, slots_capacity(m->slots), &notes, &err);
    if (rc) {
        LOG_ERROR("reload refused, still running on the previous configuration: %s",
                  err.data ? err.data : strerror(-rc));
        STATS_ADD(m->g->reload_failures, 1);
        free(cfg);
        cfg = NULL;
    } else if (notes.len) {
        LOG_WARN("reload: %s", notes.data);
    }
    buf_free(&err);
    buf_free(&notes);
    return cfg;
}

static void reload(master_t *m)
{
    if (slots_stopping(m->slots))
        return;
    if (slots_reloading(m->slots)) {
        LOG_WARN("SIGHUP: a reload is already in progress; ignored");
        return;
    }
    cfg_t *cfg = load_config(m);
    if (!cfg)
        return;
    int rc = discovery_reload(m->disc, cfg);
    if (rc) {
        LOG_ERROR("reload refused: %s", strerror(-rc));
        free(cfg);
        return;
    }
    m->cfgs = xrealloc(m->cfgs, (m->ncfgs + 1) * sizeof(*m->cfgs));
    m->cfgs[m->ncfgs++] = cfg;
    m->cfg = cfg;
    log_set_json(cfg->log_json);
    log_setup(cfg->log_level, "master", -1);
    admin_set_cfg(m->admin, cfg);
    slots_reload(m->slots, (uint32_t)cfg->cluster_workers, cfg->shutdown_timeout_ms);
}

static void stop(master_t *m, const char *why)
{
    slots_stop(m->slots, why);
    discovery_stop(m->disc);
}

static void on_signal(int signo, void *arg)
{
    master_t *m = arg;
    if (m->exiting)
        return;
    switch (signo) {
    case SIGCHLD:
        reap(m);
        break;
    case SIGTERM:
        stop(m, "SIGTERM");
        break;
    case SIGINT:
        stop(m, "SIGINT");
        break;
    case SIGQUIT:
        stop(m, "SIGQUIT");
        break;
    case SIGHUP:
        reload(m);
        break;
    case SIGUSR1: /* a worker started draining on its own */
        slots_check_draining(m->slots);
        break;
    default:
        break;
    }
    run_slots(m);
}

static void on_redis_state(redis_client_t *c, bool up, void *arg)
{
    (void)c;
    master_t *m = arg;
    STATS_SET(m->g->redis_connected, up);
}

static const redis_client_cbs_t redis_cbs = {.state = on_redis_state};

/* ---- setup ---- */

/* Cells for every session a server may hold, and as many orphans of a killed worker. */
static uint32_t session_cells(const cfg_t *cfg)
{
    uint64_t n = cfg->max_connections > 0 ? 2 * (uint64_t)cfg->max_connections : DEFAULT_CELLS;
    return n > SHM_SESSIONS_MAX_CELLS ? SHM_SESSIONS_MAX_CELLS : (uint32_t)n;
}

/* What lives outside the loop: the pid file, the port, the shared region. */
static int setup_process(master_t *m, uint32_t capacity, buf_t *err)
{
    const cfg_t *cfg = m->cfg;
    pid_t holder;
    if (cfg->pid_file[0] && pidfile_acquire(cfg->pid_file, &m->pidfile, &holder, err))
        return -1;
    m->listen_fd = listener_open(cfg->host, cfg->port, err);
    if (m->listen_fd < 0)
        return -1;
    int rc = shm_region_new(&m->region, 2 * capacity, RING_CAPACITY, sizeof(stats_worker_t),
                            sizeof(stats_global_t));
    if (rc) {
        buf_printf(err, "streamio: cannot create the shared memory region: %s", strerror(-rc));
        return -1;
    }
    /* streams mode recovers from the adapter's stream instead (worker/cluster) */
    if (cfg->connection_recovery && cfg->adapter != CONFIG_ADAPTER_STREAMS &&
        (rc = shm_sessions_new(&m->sessions, session_cells(cfg)))) {
        buf_printf(err, "streamio: cannot map the recoverable sessions: %s", strerror(-rc));
        return -1;
    }
    if ((rc = shm_ledger_new(&m->ledger, 2 * capacity))) {
        buf_printf(err, "streamio: cannot map the ledger of delivered entries: %s", strerror(-rc));
        return -1;
    }
    if ((rc = local_sock_new(&m->socks, 2 * capacity))) {
        buf_printf(err, "streamio: cannot create the workers' channels: %s", strerror(-rc));
        return -1;
    }
    if (ids_random(m->server_id, 12)) {
        buf_puts(err, "streamio: no random bytes for the server id");
        return -1;
    }
    m->g = shm_region_global(m->region);
    STATS_SET(m->g->master_pid, getpid());
    STATS_SET(m->g->started_ms, wall_ms());
    return 0;
}

/* The parts on the loop. */
static int setup_loop(master_t *m, uint32_t capacity, buf_t *err)
{
    const cfg_t *cfg = m->cfg;
    int rc = signals_open(&m->signals, &m->loop, on_signal, m);
    if (rc) {
        buf_printf(err, "streamio: signalfd: %s", strerror(-rc));
        return rc;
    }
    m->slots = slots_new(&slots_ops, m, m->g, (uint32_t)cfg->cluster_workers, capacity,
                         cfg->shutdown_timeout_ms);
    redis_topology_opts_t o;
    redis_topology_opts_from_cfg(&o, cfg);
    if ((rc = redis_topology_new(&m->topo, &m->loop, &o, err)))
        return rc;
    m->redis = redis_client_new(m->topo, "master", &redis_cbs, m);
    redis_client_count_reconnects(m->redis, &m->g->redis_reconnects);
    m->disc = discovery_new(m->topo, m->redis, cfg, m->region, capacity, m->server_id);
    m->admin = admin_new(m->topo, m->redis, cfg, m->region, m->server_id);
    if (cfg->control_socket[0] &&
        (rc = control_open(&m->control, &m->loop, cfg->control_socket, admin_run, m->admin, err)))
        return rc;
    if (cfg->watchdog_usec && (!cfg->watchdog_pid || cfg->watchdog_pid == (int)getpid()))
        slots_set_watchdog(m->slots, (uint64_t)cfg->watchdog_usec);
    return 0;
}

static void teardown(master_t *m)
{
    slots_free(m->slots);
    shm_region_free(m->region);
    shm_sessions_free(m->sessions);
    shm_ledger_free(m->ledger);
    local_sock_free(m->socks);
    if (m->listen_fd >= 0)
        close(m->listen_fd);
    for (size_t i = 0; i < m->ncfgs; i++)
        free(m->cfgs[i]);
    free(m->cfgs);
    pidfile_release(m->pidfile);
}

int master_run(const cfg_t *cfg, worker_main_fn worker_main)
{
    master_t m = {.worker_main = worker_main, .cfg = cfg, .listen_fd = -1};
    uint32_t workers = (uint32_t)cfg->cluster_workers;
    uint32_t capacity = workers > MIN_WORKER_CAPACITY ? workers : MIN_WORKER_CAPACITY;
    if (capacity > SHM_REGION_MAX_SLOTS / 2)
        capacity = SHM_REGION_MAX_SLOTS / 2;
    buf_t err;
    buf_init(&err);
    if (setup_process(&m, capacity, &err) || uv_loop_init(&m.loop)) {
        LOG_ERROR("%s", err.data ? err.data : "startup failed");
        buf_free(&err);
        teardown(&m);
        return 2;
    }
    uv_timer_init(&m.loop, &m.tick);
    uv_timer_init(&m.loop, &m.exit_wait);
    m.tick.data = m.exit_wait.data = &m;
    int rc = setup_loop(&m, capacity, &err);
    bool draining = false;
    if (rc == 0 && (rc = slots_start(m.slots)) != 0) {
        stop(&m, "startup failure"); /* the workers already started drain, then exit 2 */
        draining = true;
    }
    if (rc == 0)
        LOG_INFO("streamio listening on http://%s:%d with %u workers (redis %s:%d)", cfg->host,
                 cfg->port, workers, cfg->redis_host, cfg->redis_port);
    else if (err.len)
        LOG_ERROR("%s", err.data);
    buf_free(&err);
    if (rc && !draining)
        begin_exit(&m, 2); /* no worker started */
    else
        run_slots(&m);
    uv_run(&m.loop, UV_RUN_DEFAULT);
    int status = rc ? 2 : m.status;
    LOG_INFO("master exiting (status %d)", status);
    if (uv_loop_close(&m.loop))
        LOG_WARN("master: handles left open at exit");
    teardown(&m);
    return status;
}
