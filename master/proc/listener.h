/*
 * listener: the one listening socket. The master opens it before forking and keeps it open for
 * its whole life, so a worker that dies or is replaced never closes the port: connections wait
 * in the kernel's backlog until some worker accepts them.
 */
#ifndef STREAMIO_MASTER_PROC_LISTENER_H
#define STREAMIO_MASTER_PROC_LISTENER_H

#include "common/buf.h"

/*
 * Binds host:port (a numeric address or a name; SO_REUSEADDR; backlog from somaxconn) and
 * listens. Returns the non-blocking fd, or a negative errno with one line in `err`.
 */
int listener_open(const char *host, int port, buf_t *err);

#endif
