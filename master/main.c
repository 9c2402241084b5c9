/* streamio entry point: configuration, logging, then the master. */
#include <stdio.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/log.h"
#include "master/master.h"
#include "master/settings.h"
#include "worker/worker.h"

int main(void)
{
    static cfg_t cfg; /* frozen after load; workers inherit it through fork */
    buf_t err;
    buf_init(&err);
    if (settings_load(&cfg, &err)) {
        fprintf(stderr, "%s\n", err.data ? err.data : "streamio: invalid configuration");
        buf_free(&err);
        return 2;
    }
    buf_free(&err);
    log_set_json(cfg.log_json);
    log_setup(cfg.log_level, "master", -1);
    return master_run(&cfg, worker_main);
}
