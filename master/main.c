/* streamio entry point: configuration, logging, then the master. */
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/log.h"
#include "common/version.h"
#include "master/master.h"
#include "master/settings.h"
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
