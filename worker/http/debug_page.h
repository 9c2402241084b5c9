/*
 * debug_page: the self-contained console served at /debug when STREAMIO_DEBUG_PAGE=1 (off by
 * default; `make run` turns it on): join and leave rooms over a plain WebSocket speaking
 * Engine.IO v4 / Socket.IO v5, each room:message shown with its room, event and delivery latency
 * (entry id time to arrival), /health at a glance, and the connection state with automatic
 * reconnection. No external asset; static bytes only, no I/O, no state. The source is
 * worker/debug_page.html.
 */
#ifndef STREAMIO_WORKER_HTTP_DEBUG_PAGE_H
#define STREAMIO_WORKER_HTTP_DEBUG_PAGE_H

#include <stddef.h>

/* The page (static storage) and its length in *len. */
const char *debug_page_html(size_t *len);

#endif
