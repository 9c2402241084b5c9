/*
 * watch: `streamioctl watch <room>... [--url URL] [--token JWT] [--count N]`. Joins the rooms
 * over Socket.IO like any client (no control socket) and prints each room:message payload as one
 * JSON line on stdout; notes (joined, reconnecting, server errors) go to stderr. Reconnects with
 * backoff once it has been connected; a refusal (auth, a room not allowed) ends it.
 */
#ifndef STREAMIO_CTL_WATCH_H
#define STREAMIO_CTL_WATCH_H

#define WATCH_DEFAULT_URL "http://127.0.0.1:3000"

/*
 * Runs the command; argv holds what follows `watch`. Returns the exit status: 0 (--count
 * messages printed), 1 (refused by the server), 2 (usage), 3 (no server answers at the URL).
 */
int watch_main(int argc, char **argv);

#endif
