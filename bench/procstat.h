/*
 * procstat: CPU time and resident memory of a process tree, read from /proc.
 *
 * Owns nothing but the numbers it fills in. Used by the bench load generator to charge server
 * CPU per delivery and RSS per connection to the server (the given pid plus its direct
 * children: streamio's master and workers, or a Node process). Never signals or waits on
 * the processes it reads.
 */
#ifndef STREAMIO_BENCH_PROCSTAT_H
#define STREAMIO_BENCH_PROCSTAT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct procstat {
    uint64_t cpu_us; /* CPU time of the tree in µs: schedstat of live threads, else stat ticks */
    uint64_t rss_kb; /* VmRSS summed over the tree */
    size_t procs;    /* processes found */
} procstat_t;

/* Fills `out` for `pid` and its direct children. Returns 0, or -ESRCH when `pid` is gone. */
int procstat_tree(pid_t pid, procstat_t *out);

#endif
