/*
 * relaycut: what a sharded relay handover costs the successor's worker loop (relay_cut). It
 * subscribes N rooms, sees them confirmed one at a time (an update before and after each, and a
 * broadcast), publishes each marker, then sees them come back; prints the time and the channels
 * visited. Usage: relaycut [N] (default 50000). Bounded: one handover.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "worker/cluster/relay_cut.h"

static int count(const char *chan, size_t len, void *arg)
{
    (void)chan;
    (void)len;
    (*(size_t *)arg)++;
    return 0;
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 50000;
    if (n == 0 || n > 10000000) {
        fprintf(stderr, "usage: relaycut [N], 1..10000000\n");
        return 2;
    }
    char(*names)[32] = calloc(n, sizeof(*names));
    if (!names)
        return 1;
    relay_cut_t *c = relay_cut_new(1, RELAY_CUT_CHANNELS, 3000);
    relay_cut_input_t in = {.up = true, .candidate = true, .others = RELAY_CUT_HOLDS_ALL};
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "chat.user.%zu#", i);
        relay_cut_channel(c, names[i], strlen(names[i]), RELAY_CUT_CHAN_WANTED);
    }
    relay_cut_update(c, &in, 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t marks = 0, held = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        relay_cut_update(c, &in, 1);
        relay_cut_channel(c, names[i], len, RELAY_CUT_CHAN_CONFIRMED);
        if (relay_cut_update(c, &in, 1) == RELAY_CUT_MARK)
            relay_cut_each_mark(c, count, &marks);
        if (relay_cut_holds(c) != RELAY_CUT_HOLDS_ALL)
            relay_cut_update(c, &in, 1);
        held += relay_cut_channel_applies(c, names[i], len);
    }
    double mark_ms = ms_since(&t0);
    in.others = RELAY_CUT_HOLDS_SOME;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        relay_cut_channel_marker(c, names[i], len, true);
        if (relay_cut_holds(c) != RELAY_CUT_HOLDS_ALL)
            relay_cut_update(c, &in, 2);
        held += relay_cut_channel_applies(c, names[i], len);
    }
    double all_ms = ms_since(&t0);
    printf("rooms %zu: marked %zu in %.1f ms, all held after %.1f ms (%s), %llu channel visits\n",
           n, marks, mark_ms, all_ms,
           held == n && relay_cut_holds(c) == RELAY_CUT_HOLDS_ALL ? "ok" : "WRONG",
           (unsigned long long)relay_cut_visits(c));
    relay_cut_free(c);
    free(names);
    return 0;
}
