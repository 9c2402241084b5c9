/* settings: see settings.h. */
#include "master/settings.h"

#include <errno.h>
#include <string.h>

#include "common/auth.h"

int settings_load(cfg_t *cfg, buf_t *err)
{
    int rc = config_load_env(cfg, err);
    if (rc)
        return rc;
    /* reads and parses the key file now: a bad one stops this load, not every worker */
    auth_t *auth = NULL;
    rc = auth_new(&auth, cfg, err);
    auth_free(auth);
    return rc;
}

/* A running master keeps its sockets and its pid file (systemd's variables come from the
 * environment, which a reload reads again unchanged). */
static void keep_process_settings(const cfg_t *cur, cfg_t *next, buf_t *notes)
{
    if (strcmp(next->host, cur->host) != 0 || next->port != cur->port)
        buf_printf(notes, "HOST/PORT changes need a restart; still listening on %s:%d", cur->host,
                   cur->port);
    if (strcmp(next->pid_file, cur->pid_file) != 0 ||
        strcmp(next->control_socket, cur->control_socket) != 0)
        buf_printf(notes, "%sSTREAMIO_PID_FILE/STREAMIO_CONTROL_SOCKET changes need a restart",
                   notes->len ? "; " : "");
    memcpy(next->host, cur->host, sizeof(next->host));
    next->port = cur->port;
    memcpy(next->pid_file, cur->pid_file, sizeof(next->pid_file));
    memcpy(next->control_socket, cur->control_socket, sizeof(next->control_socket));
}

int settings_reload(const cfg_t *cur, cfg_t *next, uint32_t max_workers, buf_t *notes, buf_t *err)
{
    int rc = settings_load(next, err);
    if (rc)
        return rc;
    if ((uint32_t)next->cluster_workers > max_workers) {
        buf_printf(err, "CLUSTER_WORKERS=%d is above %u, the most a reload can reach: restart",
                   next->cluster_workers, max_workers);
        return -EINVAL;
    }
    keep_process_settings(cur, next, notes);
    return 0;
}
