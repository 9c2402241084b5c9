/*
 * settings: the master's one way to load its configuration, at start and on SIGHUP. The config
 * table (common/config: the environment and STREAMIO_ENV_FILE), then what only a whole load can
 * check: that the JWT key file holds a usable key (common/auth). A reload is refused for exactly
 * the reasons a start fails, so a bad key file never reaches the new workers. Never logs: the
 * caller says what happened.
 */
#ifndef STREAMIO_MASTER_SETTINGS_H
#define STREAMIO_MASTER_SETTINGS_H

#include <stdint.h>

#include "common/buf.h"
#include "common/config.h"

/* Loads and checks a configuration into *cfg. 0, or -EINVAL (or -errno) with one line in err. */
int settings_load(cfg_t *cfg, buf_t *err);

/*
 * Loads what a SIGHUP switches to, into *next: settings_load, refused as well when CLUSTER_WORKERS
 * is above max_workers (the shared region was sized at start). What a running master cannot
 * change is taken from cur: HOST/PORT, the pid file and the control socket (with a line in `notes`
 * when the file changed them). 0 (cur is untouched either way), or -EINVAL with the reason in err.
 */
int settings_reload(const cfg_t *cur, cfg_t *next, uint32_t max_workers, buf_t *notes, buf_t *err);

#endif
