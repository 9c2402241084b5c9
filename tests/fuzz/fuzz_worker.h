/*
 * What the fuzz targets that run a worker's client layers share (fuzz_session, fuzz_server): one
 * libuv loop and one configuration for every input, loaded once: namespaces "/" and "/admin", at
 * most 4 rooms a socket, the Origin list "http://a.example", and the bridge on (client events
 * into the stream "inbound", PRESENCE, at most 2 connections a user; only fuzz_session builds
 * the bridge itself). Header-only: each target includes it once.
 */
#ifndef STREAMIO_TESTS_FUZZ_FUZZ_WORKER_H
#define STREAMIO_TESTS_FUZZ_FUZZ_WORKER_H

#include <string.h>
#include <uv.h>

#include "common/buf.h"
#include "common/config.h"

static const char *fuzz_worker_env(const char *name, void *arg)
{
    static const char *const set[][2] = {
        {"SOCKETIO_NAMESPACES", "/,/admin"},
        {"MAX_ROOMS_PER_SOCKET", "4"},
        {"SOCKETIO_CORS_ORIGINS", "http://a.example"},
        {"SOCKETIO_INBOUND_STREAM", "inbound"},
        {"PRESENCE", "true"},
        {"MAX_CONNECTIONS_PER_USER", "2"},
    };
    (void)arg;
    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++) {
        if (strcmp(name, set[i][0]) == 0)
            return set[i][1];
    }
    return NULL;
}

/* The loop and configuration, made at the first call. */
static void fuzz_worker(uv_loop_t **loop, const cfg_t **cfg)
{
    static uv_loop_t l;
    static cfg_t c;
    static bool ready;
    if (!ready) {
        buf_t err;
        buf_init(&err);
        if (uv_loop_init(&l) || config_load(&c, fuzz_worker_env, NULL, &err))
            __builtin_trap();
        buf_free(&err);
        ready = true;
    }
    *loop = &l;
    *cfg = &c;
}

#endif
