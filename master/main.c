/* streamio entry point: configuration, logging, then the master. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/auth.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/log.h"
#include "common/version.h"
#include "master/envfile.h"
#include "master/master.h"
#include "worker/worker.h"

int main(int argc, char **argv)
{
    /* configuration comes from the environment only; the one option says what was built */
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("streamio %s\n", STREAMIO_VERSION);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: streamio [--version]  (settings come from the environment; see "
                        "streamio(8))\n");
        return 2;
    }
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
