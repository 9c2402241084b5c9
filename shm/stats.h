/*
 * stats: the layout of the counters that live in the shared region, one block per worker slot
 * (written by that worker) and one global block (written by the master). Every field is a
 * relaxed atomic: readers want a recent value, never a consistent snapshot across fields, and
 * no process may ever block another to read them. /health and the metrics read these.
 */
#ifndef STREAMIO_SHM_STATS_H
#define STREAMIO_SHM_STATS_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct stats_worker {
    _Atomic uint64_t pid;
    _Atomic uint64_t started_ms;       /* wall clock, ms since the epoch */
    _Atomic uint64_t connections;      /* connected Engine.IO clients */
    _Atomic uint64_t rooms;            /* rooms with at least one local member */
    _Atomic uint64_t streams;          /* streams this worker reads */
    _Atomic uint64_t messages_processed; /* stream entries read and handed on */
    _Atomic uint64_t deliveries;       /* room:message frames queued to local sockets */
    _Atomic uint64_t adapter_in;       /* broadcasts received from other workers/servers */
    _Atomic uint64_t redis_connected;  /* 1 when its reading connections are up */
} stats_worker_t;

typedef struct stats_global {
    _Atomic uint64_t master_pid;
    _Atomic uint64_t started_ms;
    _Atomic uint64_t streams;          /* streams known to discovery */
    _Atomic uint64_t pools;
    _Atomic uint64_t redis_connected;  /* the master's discovery connection */
    _Atomic uint64_t scan_cycles;      /* completed SCAN passes over the keyspace */
} stats_global_t;

#define STATS_SET(field, v) atomic_store_explicit(&(field), (uint64_t)(v), memory_order_relaxed)
#define STATS_ADD(field, v) atomic_fetch_add_explicit(&(field), (uint64_t)(v), memory_order_relaxed)
#define STATS_SUB(field, v) atomic_fetch_sub_explicit(&(field), (uint64_t)(v), memory_order_relaxed)
#define STATS_GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

#endif
