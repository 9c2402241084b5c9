/*
 * session_int: the state shared by the files of the session module (session.c: Engine.IO
 * sessions, transports and lifecycle; session_http.c: the HTTP routes and handshakes;
 * session_sio.c: the Socket.IO layer and the seed's events; session_host.c: broadcasts and the
 * adapter host; session_recovery.c: connection state recovery). Private to worker/session*.c;
 * everything else goes through session.h.
 */
#ifndef STREAMIO_WORKER_SESSION_INT_H
#define STREAMIO_WORKER_SESSION_INT_H

#include "common/auth.h"
#include "common/buf.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/proto/eio_payload.h"
#include "common/proto/handshake.h"
#include "common/proto/http_gzip.h"
#include "common/proto/payload.h"
#include "common/proto/sio_packet.h"
#include "common/proto/ws_frame.h"
#include "common/strmap.h"
#include "common/xalloc.h"
#include "shm/health.h"
#include "shm/metrics.h"
#include "worker/cluster/adapter.h"
#include "worker/http/debug_page.h"
#include "worker/net/deadlineq.h"
#include "worker/net/handoff.h"
#include "worker/net/timerq.h"
#include "worker/recovery/recovery.h"
#include "worker/recovery/recovery_io.h"
#include "worker/session.h"
#include "worker/sio/limits.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define ROOM_ID_MAX_UNITS 512 /* the Node server's limit, in UTF-16 code units */
#define SID_LEN 20
#define SID_DIGITS                                                                                 \
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" /* base64url */
#define NSP_MAX 32            /* namespaces served, "/" included (one bit each per session) */
#define AUTH_EMIT_DELAY_MS 20 /* conformance mode: the `auth` emit goes in a later write (§7.4) */
#define UPGRADE_TIMEOUT_MS 10000 /* Node's upgradeTimeout */
#define POLLQ_MAX (4u << 20)     /* packets waiting for a GET; past it more are dropped */

/* conn data is either the sessions (plain HTTP) or a session (WebSocket): the tag tells */
enum owner_kind { OWNER_SESSIONS = 1, OWNER_SESSION = 2 };

enum { TR_POLLING = 1, TR_WEBSOCKET = 2 };

typedef struct session {
    enum owner_kind kind;
    struct sessions *ss;
    conn_t *conn;  /* the WebSocket transport (WebSocket-only or upgraded); NULL while polling */
    conn_t *probe; /* a WebSocket upgrading this polling session */
    conn_t *get;   /* the held polling GET */
    struct session *prev, *next;
    rooms_sock_t rooms;
    timerq_node_t ping_node;    /* next ping due */
    timerq_node_t pong_node;    /* waiting for the pong */
    timerq_node_t connect_node; /* waiting for the namespace CONNECT */
    timerq_node_t auth_node;    /* conformance mode: `auth` emits due */
    timerq_node_t upgrade_node; /* the probing WebSocket must finish the upgrade */
    uint64_t mark;              /* last broadcast this socket was queued */
    buf_t pollq;                /* packets waiting for a GET, as a polling payload */
    buf_t bin_pkt;              /* BINARY_EVENT/BINARY_ACK text waiting for its attachments */
    buf_t bin_att;              /* attachments received so far, each as u32 length + bytes */
    unsigned bin_want;          /* attachments still expected */
    unsigned bin_have;
    uint32_t nsp_mask;     /* connected namespaces (bit i = ss->nsp[i]); bit 0 is "/" */
    uint32_t auth_pending; /* conformance mode: namespaces whose `auth` emit is due */
    char *auth[NSP_MAX];   /* CONNECT payload per connected namespace ("{}" when absent) */
    unsigned refs;         /* connections whose data is this session */
    unsigned busy;         /* inside a handler that still uses the session */
    bool ended;            /* the Engine.IO session is over: no longer in the sid map */
    bool probed;           /* the probe answered 3probe: polling is paused */
    bool raw;              /* /engine.io/ echo endpoint (conformance mode) */
    char sid[SID_LEN + 1];
    char sio_sid[SID_LEN + 1];    /* Socket.IO id on the main namespace: the adapter's socket id */
    auth_grant_t *grant;          /* rooms the client's token allows (auth on); NULL: none */
    buf_t qtoken;                 /* `token` query parameter of the handshake, if any */
    limits_socket_t lim;          /* event and join token buckets */
    struct sockaddr_storage peer; /* counted against MAX_CONNECTIONS_PER_IP while admitted */
    bool admitted;
    char *handshake; /* fetchSockets' handshake members (worker/handshake) */
    /* connection state recovery (CONNECTION_RECOVERY); see "connection state recovery" below */
    recovery_log_t *rlog;        /* the last room:message sends; NULL until the main CONNECT */
    char pid[SID_LEN + 1];       /* private id the client resends to recover this session */
    recovery_id_t offset;        /* the offset a recovering client sent */
    bool has_offset;             /* it sent one */
    bool restoring;              /* the main CONNECT waits for the record of its pid */
    bool replaying;              /* restored; missed entries go out before the CONNECT reply */
    unsigned replays;            /* XRANGEs in flight */
    unsigned replay_rounds;      /* re-reads of entries held back during the replay */
    unsigned replayed;           /* entries replayed */
    uint32_t next_tag;           /* numbers the memberships for rlog */
    deadline_node_t expiry_node; /* auth on: the token's exp (+ leeway) disconnects the socket */
} session_t;

typedef struct nsp_name {
    char name[64];
    size_t len;
} nsp_name_t;

struct sessions {
    enum owner_kind kind;
    uv_loop_t *loop;
    const cfg_t *cfg;
    shm_region_t *region;
    uint32_t slot;
    stats_worker_t *stats;
    conn_ctx_t *conns;
    rooms_t *rooms;
    strmap_t *sids;
    handoff_t *handoff;        /* CLUSTER_WORKERS > 1: requests for another worker's sid go there */
    buf_t fwd;                 /* a request rebuilt for its owner */
    uint64_t handoff_failures; /* counted for log_sampled */
    uint64_t cors_refusals;    /* cross-origin requests SOCKETIO_CORS_ORIGINS keeps out (sampled) */
    timerq_t *pingq, *pongq, *connectq, *authq, *upgradeq;
    session_t *head;
    size_t nconns;    /* every accepted connection, websocket or not */
    size_t nsessions; /* Engine.IO sessions still in memory */
    bool freeing;     /* sessions_free ran; the last on_close releases the memory */
    uint64_t epoch;
    bool closing;
    bool conformance;    /* STREAMIO_CONFORMANCE=1: the official suites' test handlers */
    bool debug_page;     /* STREAMIO_DEBUG_PAGE=1: /debug serves a page to watch a room */
    unsigned transports; /* TR_* bits allowed */
    char *cors;          /* SOCKETIO_CORS_ORIGINS: "*" or a comma-separated list; NULL: none */
    nsp_name_t nsp[NSP_MAX];
    unsigned nnsp;
    void (*closed)(void *arg);
    void *closed_arg;
    buf_t out; /* scratch for per-socket packets */
    buf_t tmp;
    buf_t name;         /* decoded room name of the event being handled */
    buf_t bin;          /* decoded binary record of a polling POST */
    buf_t hdrs;         /* extra response headers (CORS, Content-Encoding) */
    buf_t gz;           /* a compressed response body */
    adapter_t *adapter; /* told about rooms created/deleted and client acks; NULL: none */
    adapter_str_t nsp_view[NSP_MAX]; /* the namespaces as the adapter host lists them */
    auth_t *auth;     /* JWT verifier; auth_enabled() false when no secret/key is set */
    limits_t *limits; /* connection counts and per-socket rate limits */

    /* connection state recovery: records and replays (NULL when off), and during a room walk
     * the visited member's mark for that room */
    recovery_io_t *rio;
    rooms_mark_t *visit_mark;
    /* token expiries of authenticated sessions */
    deadlineq_t *expiryq;
};

/* session.c: transports and lifecycle. Output goes to the WebSocket, or to the polling queue
 * flushed to the held GET; sess_fail/sess_end end a session, sess_maybe_free frees it once no
 * handler and no connection uses it. */
void sess_attach(session_t *s, conn_t *c);
void sess_count_limit(sessions_t *ss, enum stats_limit l);
int sess_eio_binary(session_t *s, const uint8_t *msg, size_t len);
int sess_eio_text(session_t *s, const char *msg, size_t len);
void sess_fail(session_t *s);
void sess_maybe_free(session_t *s);
void sess_poll_flush(session_t *s, const char *fallback);
void sess_poll_respond(session_t *s, conn_t *c, const char *body, size_t len);
void sess_send_binary(session_t *s, const void *p, size_t len);
void sess_send_packet(session_t *s, const char *p, size_t len);
void sess_send_text(session_t *s, const buf_t *b);
void sess_end(session_t *s, bool client_close);

/* session_sio.c: Socket.IO packets of a session (sess_on_sio*: negative means close it). */
int sess_connect_reply(session_t *s, unsigned i, const char *sid);
void sess_nsp_disconnect(session_t *s, unsigned i);
int sess_on_sio(session_t *s, const char *p, size_t len);
int sess_on_sio_binary(session_t *s, const uint8_t *p, size_t len);
void sess_on_token_expired(deadline_node_t *n, void *arg);
void sess_send_auth(session_t *s, unsigned i);

/* session_http.c: the conn handlers for HTTP requests and handed-off connections. */
void sess_http_answer(sessions_t *ss, conn_t *c, int status, const char *ctype, const char *body,
                      size_t len);
void sess_on_handoff(int fd, const char *p, size_t len, void *ud);
void sess_on_request(conn_t *c, const http_req_t *req, void *ud);

/* session_host.c: local rooms as the adapter sees them (joins, leaves, socket lookup). */
session_t *sess_host_by_id(sessions_t *ss, const char *id, size_t len);
void sess_host_joined(sessions_t *ss, int rc, const char *room, size_t len);
void sess_host_leave_all(sessions_t *ss, session_t *s);
void sess_host_left(sessions_t *ss, int rc, const char *room, size_t len);

/* session_recovery.c: CONNECTION_RECOVERY hooks (begin on CONNECT, gate live frames during a
 * replay, note joins, save the record when the transport is lost). */
int sess_recovery_begin(session_t *s, const sio_packet_t *pk);
bool sess_recovery_gate(session_t *s, recovery_id_t id);
void sess_recovery_joined(session_t *s, const char *room, size_t len);
void sess_recovery_save(session_t *s);

#endif
