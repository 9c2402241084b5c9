#include "bench/procstat.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads utime+stime (ticks) and ppid of one process; -1 when it cannot be read. */
static int read_stat(pid_t pid, uint64_t *ticks, pid_t *ppid)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    /* comm may hold spaces and parentheses: fields restart after the last ')'. */
    char *p = strrchr(line, ')');
    if (!p)
        return -1;
    p += 2;
    unsigned long long v[16] = {0};
    int ppid_i = 0;
    char state;
    if (sscanf(p, "%c %d %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &state, &ppid_i,
               &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10]) != 13)
        return -1;
    /* after ppid: pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    *ticks = v[9] + v[10];
    *ppid = ppid_i;
    return 0;
}

static uint64_t read_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    uint64_t kb = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtoull(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* CPU time of every live thread of `pid` in ns from schedstat (tick-free), 0 when unavailable. */
static uint64_t read_sched_ns(pid_t pid)
{
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        char tp[320];
        snprintf(tp, sizeof(tp), "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
        FILE *f = fopen(tp, "r");
        if (!f)
            continue;
        unsigned long long ns;
        if (fscanf(f, "%llu", &ns) == 1)
            total += ns;
        fclose(f);
    }
    closedir(d);
    return total;
}

int procstat_tree(pid_t pid, procstat_t *out)
{
    long hz = sysconf(_SC_CLK_TCK);
    uint64_t ticks;
    pid_t ppid;
    memset(out, 0, sizeof(*out));
    if (read_stat(pid, &ticks, &ppid) < 0)
        return -ESRCH;
    uint64_t total = ticks;
    uint64_t sched = read_sched_ns(pid);
    out->rss_kb = read_rss_kb(pid);
    out->procs = 1;
    DIR *d = opendir("/proc");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!isdigit((unsigned char)e->d_name[0]))
                continue;
            pid_t c = (pid_t)atoi(e->d_name);
            if (c == pid || read_stat(c, &ticks, &ppid) < 0 || ppid != pid)
                continue;
            total += ticks;
            sched += read_sched_ns(c);
            out->rss_kb += read_rss_kb(c);
            out->procs++;
        }
        closedir(d);
    }
    out->cpu_us = sched ? sched / 1000 : total * 1000000ull / (uint64_t)hz;
    return 0;
}
