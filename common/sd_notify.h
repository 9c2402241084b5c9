/*
 * sd_notify: systemd's readiness protocol (one datagram to the socket NOTIFY_SOCKET names), written
 * out rather than linked so the binary has no libsystemd dependency.
 */
#ifndef STREAMIO_COMMON_SD_NOTIFY_H
#define STREAMIO_COMMON_SD_NOTIFY_H

/* Sends `state` (e.g. "READY=1\nSTATUS=...") to `socket` (a path, or '@' and an abstract name;
 * "" when not under systemd: nothing is sent). 0 when sent or not under systemd, else -errno. */
int sd_notify_send(const char *socket, const char *state);

#endif
