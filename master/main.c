/* streamio entry point: configuration, logging, then the master. */
#include <stdio.h>
#include <stdlib.h>

#include "common/auth.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/envfile.h"
#include "common/log.h"
#include "master/master.h"
#include "worker/worker.h"

int main(void)
{
    static cfg_t cfg; /* frozen after load; workers inherit it through fork */
    buf_t err;
    buf_init(&err);
    envfile_t *ef = NULL;
    const char *path = getenv("STREAMIO_ENV_FILE");
    if (path && *path && envfile_load(path, &ef, &err)) {
        fprintf(stderr, "streamio: invalid STREAMIO_ENV_FILE: %s\n", err.data);
        buf_free(&err);
        return 2;
    }
    int rc = config_load(&cfg, envfile_getenv, ef, &err);
    const char *fmt = envfile_getenv("LOG_FORMAT", ef);
    bool json = false;
    int frc = fmt ? log_format_parse(fmt, &json) : 0;
    if (frc && rc == 0)
        buf_printf(&err, "streamio: invalid LOG_FORMAT=\"%s\": expected text or json", fmt);
    envfile_free(ef);
    auth_t *auth = NULL;
    /* a bad key file must stop startup here, not in every worker */
    if (rc == 0 && frc == 0 && auth_new(&auth, &cfg, &err))
        rc = -1;
    auth_free(auth);
    if (rc || frc) {
        fprintf(stderr, "%s\n", err.data);
        buf_free(&err);
        return 2;
    }
    buf_free(&err);
    log_set_json(json);
    log_setup(cfg.log_level, "master", -1);
    return master_run(&cfg, worker_main);
}
