/*
 * sd_notify: systemd's readiness protocol (one datagram to $NOTIFY_SOCKET), written out rather
 * than linked so the binary has no libsystemd dependency. A no-op when NOTIFY_SOCKET is unset.
 */
#ifndef STREAMIO_COMMON_SD_NOTIFY_H
#define STREAMIO_COMMON_SD_NOTIFY_H

/* Sends `state` (e.g. "READY=1\nSTATUS=..."). 0 when sent or not under systemd, else -errno. */
int sd_notify_send(const char *state);

#endif
