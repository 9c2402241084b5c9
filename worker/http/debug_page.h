/*
 * debug_page: the self-contained HTML page served at /debug when STREAMIO_DEBUG_PAGE=1 (off by
 * default): a person types a room, joins it over a plain WebSocket speaking Engine.IO v4 /
 * Socket.IO v5, and watches its room:message events live. Static bytes only; no I/O, no state.
 */
#ifndef STREAMIO_WORKER_HTTP_DEBUG_PAGE_H
#define STREAMIO_WORKER_HTTP_DEBUG_PAGE_H

#include <stddef.h>

/* The page (static storage) and its length in *len. */
const char *debug_page_html(size_t *len);

#endif
