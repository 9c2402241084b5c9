/*
 * keepalive: how a long-lived TCP link (every Redis connection) notices a peer that went away
 * without a word: a network partition, a host that vanished, packets silently dropped. Without
 * it a connection blocked in XREADGROUP or subscribed to a channel waits for ever. Sets socket
 * options only; never logs.
 */
#ifndef STREAMIO_COMMON_KEEPALIVE_H
#define STREAMIO_COMMON_KEEPALIVE_H

/* An idle link is probed after 5 s, every 2 s, and dropped after 3 unanswered probes; data left
 * unacknowledged for as long is dropped as well: a dead peer shows as ETIMEDOUT within this. */
#define KEEPALIVE_DEAD_AFTER_MS 11000u

/*
 * Arms that detection on a TCP socket (connected or connecting), dropping a silent peer after
 * dead_after_ms (0 = KEEPALIVE_DEAD_AFTER_MS; the same idle time and interval, more probes). 0 or
 * -errno (an AF_UNIX socket gives -EOPNOTSUPP: nothing to do there).
 */
int keepalive_set(int fd, unsigned dead_after_ms);

#endif
