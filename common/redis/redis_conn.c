/* redis_conn: see redis_conn.h. */
#include "common/redis/redis_conn.h"

#include <errno.h>
#include <hiredis/read.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/redis/redis_link.h"
#include "common/strmap.h"
#include "common/xalloc.h"

#define DEF_CONNECT_TIMEOUT_MS 3000
#define DEF_COMMAND_TIMEOUT_MS 5000
#define DEF_BACKOFF_MIN_MS 100
#define DEF_BACKOFF_MAX_MS 5000
#define DEF_MAX_INFLIGHT 65536
#define DEF_MAX_OUTPUT (64u << 20)

/* What a reply in the pipeline answers. */
typedef enum ptype {
    P_USER,
    P_AUTH,
    P_SELECT,
    P_SETNAME,
    P_ID,
    P_ROLE,
    P_SUB,
    P_UNSUB,
} ptype_t;

typedef struct pending {
    redis_reply_fn cb;
    void *arg;
    uint64_t sent_ms;
    uint32_t block_ms;
    uint8_t type; /* ptype_t */
    uint8_t kind; /* redis_sub_kind_t of P_SUB / P_UNSUB */
    char *chan;   /* P_SUB / P_UNSUB: kind byte + channel, owned */
    size_t chan_len;
} pending_t;

/* lose() without an event unless the connection was up: a deliberate move or close */
#define EV_NONE ((redis_conn_event_t)-1)

typedef enum cstate { C_IDLE, C_WAIT, C_CONNECTING, C_HANDSHAKE, C_UP, C_CLOSED } cstate_t;

struct redis_conn {
    uv_loop_t *loop;
    const redis_conn_cbs_t *cbs;
    void *arg;
    redis_conn_opts_t o; /* strings below are our copies */
    char *name, *username, *password, *server_name;
    char host[256];
    int port;
    cstate_t state;
    redis_link_t *link;
    redisReader *reader;
    buf_t carry;              /* subscribed: the start of an item not whole yet (see on_data) */
    uint64_t gen;             /* bumped at every loss: a dispatch loop stops when it changes */
    pending_t *q;             /* ring of commands awaiting replies */
    size_t qhead, qlen, qcap; /* qcap: a power of two, so a position wraps with a mask */
    size_t hs_left;           /* handshake replies still to come */
    uint64_t progress_ms;     /* last reply, or when the queue became non-empty */
    bool pubsub;              /* a subscription was sent on this link: pushes may come */
    strmap_t *subs;           /* kind byte + channel -> (void *)1 */
    long long client_id;
    uv_timer_t retry;    /* reconnect delay */
    uv_timer_t deadline; /* connect deadline, then the periodic command-timeout check */
    uint32_t backoff_ms;
    uint64_t rng;
    bool warned;      /* one log line per outage */
    bool auth_warned; /* one AUTH line until accepted */
    bool ever_up;
    bool closing;
    int open_handles;
    _Atomic uint64_t *reconnects;
    void (*done)(void *arg);
    void *done_arg;
};

static void start_connect(redis_conn_t *c);
static void lose(redis_conn_t *c, redis_conn_event_t ev, const char *why);

/* ---- small helpers ---- */

static char *dup_or_null(const char *s)
{
    return s && *s ? xmemdup(s, strlen(s)) : NULL;
}

static uint32_t next_rand(redis_conn_t *c)
{
    /* xorshift64, seeded per connection: forked workers must not retry in lockstep */
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return (uint32_t)(c->rng >> 32);
}

static void warn(redis_conn_t *c, const char *why)
{
    if (c->warned || c->closing)
        return;
    c->warned = true;
    LOG_WARN("redis %s (%s:%d): %s", c->name, c->host, c->port, why);
}

static void emit(redis_conn_t *c, redis_conn_event_t ev)
{
    if (c->cbs && c->cbs->event && !c->closing)
        c->cbs->event(c, ev, c->arg);
}

/* ---- the pending ring ---- */

static pending_t *q_push(redis_conn_t *c)
{
    if (c->qlen == c->qcap) {
        size_t cap = c->qcap ? c->qcap * 2 : 64;
        pending_t *q = xmalloc(cap * sizeof(*q));
        for (size_t i = 0; i < c->qlen; i++)
            q[i] = c->q[(c->qhead + i) & (c->qcap - 1)];
        free(c->q);
        c->q = q;
        c->qcap = cap;
        c->qhead = 0;
    }
    if (c->qlen == 0)
        c->progress_ms = uv_now(c->loop);
    pending_t *p = &c->q[(c->qhead + c->qlen++) & (c->qcap - 1)];
    memset(p, 0, sizeof(*p));
    p->sent_ms = uv_now(c->loop);
    return p;
}

static pending_t *q_head(redis_conn_t *c)
{
    return c->qlen ? &c->q[c->qhead] : NULL;
}

static pending_t q_pop(redis_conn_t *c)
{
    pending_t p = c->q[c->qhead];
    c->qhead = (c->qhead + 1) & (c->qcap - 1);
    c->qlen--;
    return p;
}

/* ---- sending ---- */

static void expect(redis_conn_t *c, ptype_t type, uint32_t block_ms, redis_reply_fn cb, void *arg)
{
    pending_t *p = q_push(c);
    p->type = (uint8_t)type;
    p->block_ms = block_ms;
    p->cb = cb;
    p->arg = arg;
}

static void send_raw(redis_conn_t *c, ptype_t type, const char *cmd, size_t len, uint32_t block_ms,
                     redis_reply_fn cb, void *arg)
{
    redis_link_write(c->link, cmd, len);
    expect(c, type, block_ms, cb, arg);
}

static size_t digits(size_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* "<tag><v>\r\n" at w; returns the end. */
static char *put_header(char *w, char tag, size_t v)
{
    size_t n = digits(v);
    *w++ = tag;
    for (size_t i = n; i-- > 0; v /= 10)
        w[i] = (char)('0' + v % 10);
    w += n;
    *w++ = '\r';
    *w++ = '\n';
    return w;
}

/* The command in RESP, formatted straight into the link's queue: no copy, no allocation once the
 * queue has grown (every entry's PUBLISH goes this way). */
static void send_argv(redis_conn_t *c, ptype_t type, int argc, const char **argv,
                      const size_t *lens, uint32_t block_ms, redis_reply_fn cb, void *arg)
{
    size_t total = 3 + digits((size_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t len = lens ? lens[i] : strlen(argv[i]);
        total += 5 + digits(len) + len;
    }
    char *start = redis_link_reserve(c->link, total), *w = start;
    w = put_header(w, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t len = lens ? lens[i] : strlen(argv[i]);
        w = put_header(w, '$', len);
        if (len)
            memcpy(w, argv[i], len);
        w += len;
        *w++ = '\r';
        *w++ = '\n';
    }
    redis_link_commit(c->link, (size_t)(w - start));
    expect(c, type, block_ms, cb, arg);
}

static const char *const sub_cmds[3] = {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"};
static const char *const unsub_cmds[3] = {"UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"};

/* key = kind byte + channel, the form of both the wanted set and pending entries */
static void send_sub(redis_conn_t *c, bool sub, const char *key, size_t klen)
{
    int kind = key[0];
    const char *argv[2] = {sub ? sub_cmds[kind] : unsub_cmds[kind], key + 1};
    size_t lens[2] = {strlen(argv[0]), klen - 1};
    send_argv(c, sub ? P_SUB : P_UNSUB, 2, argv, lens, 0, NULL, NULL);
    pending_t *p = &c->q[(c->qhead + c->qlen - 1) & (c->qcap - 1)];
    p->kind = (uint8_t)kind;
    p->chan = xmemdup(key, klen);
    p->chan_len = klen;
    c->pubsub = true;
    if (c->link)
        redis_link_set_dead_after(c->link, REDIS_PUBSUB_DEAD_AFTER_MS);
}

static void resend_sub(const char *key, size_t len, void *value, void *arg)
{
    (void)value;
    send_sub(arg, true, key, len);
}

static int admit(redis_conn_t *c)
{
    if (c->closing)
        return -ESHUTDOWN;
    if (c->state != C_UP)
        return -ENOTCONN;
    if (c->qlen >= c->o.max_inflight || redis_link_queued(c->link) >= c->o.max_output)
        return -ENOBUFS;
    return 0;
}

int redis_conn_command_blocking(redis_conn_t *c, uint32_t block_ms, redis_reply_fn cb, void *arg,
                                int argc, const char **argv, const size_t *lens)
{
    int rc = admit(c);
    if (rc)
        return rc;
    send_argv(c, P_USER, argc, argv, lens, block_ms, cb, arg);
    return 0;
}

int redis_conn_command(redis_conn_t *c, redis_reply_fn cb, void *arg, int argc, const char **argv,
                       const size_t *lens)
{
    return redis_conn_command_blocking(c, 0, cb, arg, argc, argv, lens);
}

int redis_conn_send(redis_conn_t *c, const char *cmd, size_t len, uint32_t block_ms, bool asking,
                    redis_reply_fn cb, void *arg)
{
    int rc = admit(c);
    if (rc)
        return rc;
    if (asking) {
        const char *argv[1] = {"ASKING"};
        send_argv(c, P_USER, 1, argv, NULL, 0, NULL, NULL);
    }
    send_raw(c, P_USER, cmd, len, block_ms, cb, arg);
    return 0;
}

/* ---- subscriptions ---- */

static size_t sub_key(char *key, redis_sub_kind_t kind, const char *ch, size_t len)
{
    key[0] = (char)kind;
    if (len)
        memcpy(key + 1, ch, len);
    return len + 1;
}

static int change_sub(redis_conn_t *c, bool sub, redis_sub_kind_t kind, const char *ch, size_t len)
{
    if (c->closing)
        return -ESHUTDOWN;
    if ((unsigned)kind > REDIS_SUB_SHARD)
        return -EINVAL;
    char *key = xmalloc(len + 1);
    size_t klen = sub_key(key, kind, ch, len);
    bool had = strmap_get(c->subs, key, klen) != NULL;
    if (sub && !had)
        strmap_put(c->subs, key, klen, (void *)1);
    else if (!sub && had)
        strmap_del(c->subs, key, klen);
    if (c->state == C_UP && sub != had)
        send_sub(c, sub, key, klen);
    free(key);
    return 0;
}

int redis_conn_subscribe(redis_conn_t *c, redis_sub_kind_t kind, const char *ch, size_t len)
{
    return change_sub(c, true, kind, ch, len);
}

int redis_conn_unsubscribe(redis_conn_t *c, redis_sub_kind_t kind, const char *ch, size_t len)
{
    return change_sub(c, false, kind, ch, len);
}

bool redis_conn_subscribed(const redis_conn_t *c, redis_sub_kind_t kind, const char *ch, size_t len)
{
    if ((unsigned)kind > REDIS_SUB_SHARD)
        return false;
    char *key = xmalloc(len + 1);
    size_t klen = sub_key(key, kind, ch, len);
    bool has = strmap_get(c->subs, key, klen) != NULL;
    free(key);
    return has;
}

/* The server ended a subscription we wanted: forget it and tell the owner. */
static void sub_ended(redis_conn_t *c, const char *key, size_t klen, const redisReply *err)
{
    if (!strmap_del(c->subs, key, klen))
        return;
    if (c->cbs && c->cbs->sub_lost && !c->closing)
        c->cbs->sub_lost(c, (redis_sub_kind_t)key[0], key + 1, klen - 1, err, c->arg);
}

/* ---- lifecycle ---- */

static void on_handle_closed(uv_handle_t *h)
{
    redis_conn_t *c = h->data;
    if (--c->open_handles)
        return;
    void (*done)(void *) = c->done;
    void *done_arg = c->done_arg;
    redis_reply_reader_free(c->reader);
    buf_free(&c->carry);
    free(c->q);
    strmap_free(c->subs);
    free(c->name);
    free(c->username);
    free(c->password);
    free(c->server_name);
    free(c);
    if (done)
        done(done_arg);
}

static void finish_close(redis_conn_t *c)
{
    if (c->state == C_CLOSED)
        return;
    c->state = C_CLOSED;
    if (c->link) {
        redis_link_close(c->link);
        c->link = NULL;
    }
    uv_close((uv_handle_t *)&c->retry, on_handle_closed);
    uv_close((uv_handle_t *)&c->deadline, on_handle_closed);
}

static void on_retry(uv_timer_t *t)
{
    start_connect(t->data);
}

static void schedule_retry(redis_conn_t *c)
{
    uint32_t jitter = next_rand(c) % (c->backoff_ms / 2 + 1);
    uv_timer_start(&c->retry, on_retry, c->backoff_ms + jitter, 0);
    c->backoff_ms =
        c->backoff_ms * 2 > c->o.backoff_max_ms ? c->o.backoff_max_ms : c->backoff_ms * 2;
}

/*
 * Drops the link: every pending command's callback runs with NULL (in order), the owner hears
 * `ev` (DOWN when it was up), and the next attempt is scheduled. Never frees the reader: the
 * dispatch loop that called us may still be using it.
 */
static void lose(redis_conn_t *c, redis_conn_event_t ev, const char *why)
{
    if (c->state == C_CLOSED)
        return;
    bool was_up = c->state == C_UP;
    c->gen++;
    if (c->link) {
        redis_link_close(c->link);
        c->link = NULL;
    }
    c->state = C_WAIT;
    c->client_id = 0;
    c->hs_left = 0;
    uv_timer_stop(&c->deadline);
    if (why)
        warn(c, why);
    if (!c->closing)
        schedule_retry(c);
    while (c->qlen) {
        pending_t p = q_pop(c);
        free(p.chan);
        if (p.type == P_USER && p.cb)
            p.cb(NULL, p.arg);
    }
    if (was_up || ev != EV_NONE)
        emit(c, was_up ? REDIS_CONN_DOWN : ev);
    if (c->closing)
        finish_close(c);
}

static void on_connect_deadline(uv_timer_t *t)
{
    redis_conn_t *c = t->data;
    char why[64];
    snprintf(why, sizeof(why), "no answer within %u ms (connect)", c->o.connect_timeout_ms);
    lose(c, REDIS_CONN_FAILED, why);
}

static void on_command_check(uv_timer_t *t)
{
    redis_conn_t *c = t->data;
    pending_t *h = q_head(c);
    if (!h)
        return;
    uint64_t since = h->sent_ms > c->progress_ms ? h->sent_ms : c->progress_ms;
    if (uv_now(c->loop) < since + c->o.command_timeout_ms + h->block_ms)
        return;
    char why[96];
    snprintf(why, sizeof(why), "no reply within %u ms: dropping the connection",
             c->o.command_timeout_ms + h->block_ms);
    c->warned = false; /* a stall is worth a line even inside an outage */
    lose(c, REDIS_CONN_FAILED, why);
}

static void became_up(redis_conn_t *c)
{
    c->state = C_UP;
    c->backoff_ms = c->o.backoff_min_ms;
    if (c->warned)
        LOG_INFO("redis %s (%s:%d): connected", c->name, c->host, c->port);
    c->warned = false;
    c->auth_warned = false;
    if (c->ever_up && c->reconnects)
        atomic_fetch_add_explicit(c->reconnects, 1, memory_order_relaxed);
    c->ever_up = true;
    uint64_t check = c->o.command_timeout_ms / 4 ? c->o.command_timeout_ms / 4 : 1;
    uv_timer_start(&c->deadline, on_command_check, check, check);
    strmap_foreach(c->subs, resend_sub, c);
    emit(c, REDIS_CONN_UP);
}

/* A handshake reply; false when it ended the attempt. */
static bool handshake_reply(redis_conn_t *c, ptype_t type, const redisReply *r)
{
    bool err = r->type == REDIS_REPLY_ERROR;
    char why[320];
    switch (type) {
    case P_AUTH:
        if (!err)
            break;
        if (!c->auth_warned)
            LOG_ERROR("redis %s (%s:%d): AUTH refused: %s (check REDIS_USERNAME and "
                      "REDIS_PASSWORD); retrying quietly",
                      c->name, c->host, c->port, r->str);
        c->auth_warned = c->warned = true;
        lose(c, REDIS_CONN_AUTH_FAILED, NULL);
        return false;
    case P_SETNAME:
        /* CLIENT may be renamed away on managed Redis: only a missing password matters */
        if (err && redis_reply_fault(r, NULL) == REDIS_FAULT_NOAUTH) {
            if (!c->auth_warned)
                LOG_ERROR("redis %s (%s:%d): the server needs a password (set REDIS_PASSWORD)",
                          c->name, c->host, c->port);
            c->auth_warned = c->warned = true;
            lose(c, REDIS_CONN_AUTH_FAILED, NULL);
            return false;
        }
        break;
    case P_ID:
        c->client_id = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
        break;
    case P_SELECT:
        if (!err)
            break;
        snprintf(why, sizeof(why), "SELECT %d refused: %.200s", c->o.db, r->str);
        lose(c, REDIS_CONN_FAILED, why);
        return false;
    case P_ROLE:
        if (redis_reply_role(r) == REDIS_ROLE_MASTER)
            break;
        snprintf(why, sizeof(why), "%.200s; waiting for the primary",
                 err ? r->str : "not the primary (ROLE says replica)");
        lose(c, REDIS_CONN_NOT_PRIMARY, why);
        return false;
    default:
        break;
    }
    if (--c->hs_left == 0)
        became_up(c);
    return true;
}

/* A pub/sub notice: true when handled here (not a reply to pop). */
static bool push_reply(redis_conn_t *c, const redisReply *r)
{
    redis_push_t p;
    if (!c->pubsub || redis_reply_push(r, &p))
        return false;
    if (p.type == REDIS_PUSH_MESSAGE) {
        if (c->cbs && c->cbs->message && !c->closing)
            c->cbs->message(c, &p, c->arg);
        return true;
    }
    if (p.type != REDIS_PUSH_SUBSCRIBE && p.type != REDIS_PUSH_UNSUBSCRIBE)
        return false; /* pong: a reply to PING */
    pending_t *h = q_head(c);
    bool mine = h && p.channel && h->type == (p.type == REDIS_PUSH_SUBSCRIBE ? P_SUB : P_UNSUB) &&
                h->kind == p.kind && h->chan_len == p.channel_len + 1 &&
                memcmp(h->chan + 1, p.channel, p.channel_len) == 0;
    if (mine) {
        pending_t done = q_pop(c);
        if (done.type == P_SUB && c->cbs && c->cbs->subscribed && !c->closing &&
            redis_conn_subscribed(c, p.kind, p.channel, p.channel_len))
            c->cbs->subscribed(c, p.kind, p.channel, p.channel_len, c->arg);
        free(done.chan);
        return true;
    }
    if (p.type == REDIS_PUSH_UNSUBSCRIBE && p.channel) {
        /* not ours: the server dropped it (Redis 7 does so for shard channels of a moved slot) */
        char *key = xmalloc(p.channel_len + 1);
        size_t klen = sub_key(key, p.kind, p.channel, p.channel_len);
        sub_ended(c, key, klen, NULL);
        free(key);
    }
    return true;
}

static void dispatch(redis_conn_t *c, redisReply *r)
{
    if (push_reply(c, r)) {
        /* a subscription confirmation may be the last thing a closing connection waits for */
        if (c->closing && c->state == C_UP && c->qlen == 0)
            finish_close(c);
        return;
    }
    if (!c->qlen) {
        lose(c, REDIS_CONN_FAILED, "a reply nobody asked for (protocol error)");
        return;
    }
    pending_t p = q_pop(c);
    if (p.type == P_USER) {
        if (p.cb)
            p.cb(r, p.arg);
        if (c->o.require_primary && c->state == C_UP &&
            redis_reply_fault(r, NULL) == REDIS_FAULT_READONLY) {
            c->warned = false;
            lose(c, REDIS_CONN_NOT_PRIMARY, "the primary was demoted (READONLY)");
        }
    } else if (p.type == P_SUB) {
        if (r->type == REDIS_REPLY_ERROR)
            sub_ended(c, p.chan, p.chan_len, r);
    } else if (p.type != P_UNSUB) {
        handshake_reply(c, (ptype_t)p.type, r);
    }
    free(p.chan);
    if (c->closing && c->state == C_UP && c->qlen == 0)
        finish_close(c);
}

/* hiredis moves what it holds to the front of its buffer each time a reply leaves a kilobyte
 * consumed: fed a whole 256 KB read of small replies (an entry's PUBLISH or SPUBLISH each), it
 * moved up to 256 KB per kilobyte read. Fed this much at a time, it moves 4 KB at most. */
#define REPLY_FEED 4096

/* Through hiredis: false once the link is lost or closed by a callback (the rest belongs to a
 * dead link). */
static bool read_replies(redis_conn_t *c, const char *p, size_t n)
{
    uint64_t gen = c->gen;
    for (size_t off = 0; off < n;) {
        size_t feed = n - off < REPLY_FEED ? n - off : REPLY_FEED;
        if (redisReaderFeed(c->reader, p + off, feed) != REDIS_OK) {
            lose(c, REDIS_CONN_FAILED, "out of memory reading a reply");
            return false;
        }
        off += feed;
        for (;;) {
            void *reply = NULL;
            if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
                char why[160];
                snprintf(why, sizeof(why), "protocol error: %s", c->reader->errstr);
                lose(c, REDIS_CONN_FAILED, why);
                return false;
            }
            if (!reply)
                break;
            c->progress_ms = uv_now(c->loop);
            dispatch(c, reply);
            redis_reply_release(c->reader); /* the reader outlives callbacks: freed from the loop */
            if (c->gen != gen || c->state == C_CLOSED)
                return false;
        }
    }
    return true;
}

/* hiredis holds no reply half read. */
static bool reader_idle(const redisReader *r)
{
    return r->ridx == -1 && r->pos == r->len;
}

typedef enum { SCAN_PARTIAL, SCAN_HIREDIS, SCAN_DEAD } scan_end_t;

/* The items whole at p[0..n), messages handed over where they lie (redis_reply_scan), with no
 * reply objects built; every other item goes through hiredis, fed exactly that item, so hiredis
 * never holds half of one while this reads the next. SCAN_PARTIAL: *off bytes consumed, the rest
 * starts an item not whole yet; SCAN_HIREDIS: the rest is not RESP as Redis writes it and went
 * to hiredis, which judges it; SCAN_DEAD: a callback closed or lost the link. */
static scan_end_t scan_messages(redis_conn_t *c, char *p, size_t n, size_t *off)
{
    uint64_t gen = c->gen;
    *off = 0;
    while (*off < n) {
        redis_push_t m;
        size_t used;
        int rc = redis_reply_scan(p + *off, n - *off, &used, &m);
        if (rc == -EAGAIN)
            break;
        if (rc)
            return read_replies(c, p + *off, n - *off) ? SCAN_HIREDIS : SCAN_DEAD;
        bool alive = true;
        if (m.type == REDIS_PUSH_MESSAGE) {
            /* NUL-terminated like hiredis' strings, over the CR of their CRLF (consumed) */
            p[m.channel + m.channel_len - p] = '\0';
            p[m.data + m.len - p] = '\0';
            if (m.pattern)
                p[m.pattern + m.pattern_len - p] = '\0';
            c->progress_ms = uv_now(c->loop);
            if (c->cbs && c->cbs->message && !c->closing)
                c->cbs->message(c, &m, c->arg);
            alive = c->gen == gen && c->state != C_CLOSED;
        } else {
            alive = read_replies(c, p + *off, used);
        }
        if (!alive)
            return SCAN_DEAD; /* the rest belongs to a dead link (carry is dropped on connect) */
        *off += used;
    }
    return SCAN_PARTIAL;
}

/* A subscribed connection mostly receives messages (scan_messages). The start of an item not
 * whole yet waits in carry; the next bytes complete it with as few of them as it needs (appended
 * in doubling steps), and the rest is read where it lies: a busy subscription, whose reads
 * nearly always end inside a message, does not copy everything it reads. */
static void read_messages(redis_conn_t *c, char *p, size_t n)
{
    size_t from = 0, off;
    if (c->carry.len) {
        size_t had = c->carry.len, step = 512;
        scan_end_t end;
        do {
            size_t add = n - from < step ? n - from : step;
            buf_append(&c->carry, p + from, add);
            from += add;
            step *= 2;
            end = scan_messages(c, c->carry.data, c->carry.len, &off);
        } while (end == SCAN_PARTIAL && off == 0 && from < n);
        if (end == SCAN_DEAD)
            return;
        if (end == SCAN_HIREDIS) {
            buf_reset(&c->carry);
            if (from < n)
                read_replies(c, p + from, n - from);
            return;
        }
        if (off == 0) /* still not whole: all of p waits in carry */
            return;
        /* the carried item ended inside p (off > had): go on from there, in place */
        from = off - had;
        buf_reset(&c->carry);
        if (c->carry.cap > (1u << 20))
            buf_free(&c->carry); /* a huge message passed: do not keep its room */
    }
    scan_end_t end = scan_messages(c, p + from, n - from, &off);
    if (end == SCAN_PARTIAL)
        buf_append(&c->carry, p + from + off, n - from - off);
}

/* The next reply is one nobody reads (a PUBLISH's count, an XACK's): no callback, no role
 * check. */
static bool ignored_next(redis_conn_t *c)
{
    const pending_t *h = q_head(c);
    return h && h->type == P_USER && !h->cb && !c->o.require_primary;
}

/* Replies nobody reads (one per entry's PUBLISH) are skipped where they lie, with no reply object,
 * while hiredis holds nothing; the rest goes through hiredis. */
static void read_skipping(redis_conn_t *c, const char *p, size_t n)
{
    size_t off = 0, used;
    redis_push_t m;
    while (off < n && ignored_next(c) && redis_reply_scan(p + off, n - off, &used, &m) == 0) {
        pending_t done = q_pop(c);
        free(done.chan);
        c->progress_ms = uv_now(c->loop);
        off += used;
        if (c->closing && c->state == C_UP && c->qlen == 0) {
            finish_close(c);
            return;
        }
    }
    if (off < n)
        read_replies(c, p + off, n - off);
}

static void on_data(redis_link_t *l, char *p, size_t n, void *arg)
{
    (void)l;
    redis_conn_t *c = arg;
    if (c->pubsub && (c->carry.len || reader_idle(c->reader)))
        read_messages(c, p, n);
    else if (!c->pubsub && reader_idle(c->reader))
        read_skipping(c, p, n);
    else
        read_replies(c, p, n);
}

static void on_open(redis_link_t *l, void *arg)
{
    (void)l;
    redis_conn_t *c = arg;
    c->state = C_HANDSHAKE;
    c->pubsub = false;
    if (c->username || c->password) {
        const char *argv[3] = {"AUTH"};
        int n = 1;
        if (c->username)
            argv[n++] = c->username;
        argv[n++] = c->password ? c->password : "";
        send_argv(c, P_AUTH, n, argv, NULL, 0, NULL, NULL);
    }
    if (c->o.db > 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", c->o.db);
        const char *argv[2] = {"SELECT", db};
        send_argv(c, P_SELECT, 2, argv, NULL, 0, NULL, NULL);
    }
    const char *setname[3] = {"CLIENT", "SETNAME", c->name};
    send_argv(c, P_SETNAME, 3, setname, NULL, 0, NULL, NULL);
    const char *id[2] = {"CLIENT", "ID"};
    send_argv(c, P_ID, 2, id, NULL, 0, NULL, NULL);
    if (c->o.require_primary) {
        const char *role[1] = {"ROLE"};
        send_argv(c, P_ROLE, 1, role, NULL, 0, NULL, NULL);
    }
    c->hs_left = c->qlen;
}

static void on_link_error(redis_link_t *l, int err, const char *why, void *arg)
{
    (void)l;
    (void)err;
    redis_conn_t *c = arg;
    lose(c, REDIS_CONN_FAILED, why);
}

static const redis_link_cbs_t link_cbs = {on_open, on_data, on_link_error};

static void start_connect(redis_conn_t *c)
{
    if (c->closing || !c->host[0] || c->state == C_CLOSED)
        return;
    redis_reply_reader_free(c->reader);
    c->reader = redis_reply_reader_new();
    buf_free(&c->carry);
    c->state = C_CONNECTING;
    c->link = redis_link_open(c->loop, c->host, c->port, c->o.tls, c->server_name, &link_cbs, c);
    uv_timer_start(&c->deadline, on_connect_deadline, c->o.connect_timeout_ms, 0);
}

redis_conn_t *redis_conn_new(uv_loop_t *loop, const char *host, int port,
                             const redis_conn_opts_t *opts, const redis_conn_cbs_t *cbs, void *arg)
{
    redis_conn_t *c = xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->cbs = cbs;
    c->arg = arg;
    c->o = *opts;
    const char *name = opts->name && *opts->name ? opts->name : "redis";
    c->name = xmemdup(name, strlen(name));
    for (char *p = c->name; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            *p = '-';
    }
    c->username = dup_or_null(opts->username);
    c->password = dup_or_null(opts->password);
    c->server_name = dup_or_null(opts->tls_server_name);
    c->o.name = c->o.username = c->o.password = c->o.tls_server_name = NULL;
#define DEF(f, v) c->o.f = c->o.f ? c->o.f : (v)
    DEF(connect_timeout_ms, DEF_CONNECT_TIMEOUT_MS);
    DEF(command_timeout_ms, DEF_COMMAND_TIMEOUT_MS);
    DEF(backoff_min_ms, DEF_BACKOFF_MIN_MS);
    DEF(backoff_max_ms, DEF_BACKOFF_MAX_MS);
    DEF(max_inflight, DEF_MAX_INFLIGHT);
    DEF(max_output, DEF_MAX_OUTPUT);
#undef DEF
    c->backoff_ms = c->o.backoff_min_ms;
    c->rng = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)c;
    c->rng |= 1;
    c->subs = strmap_new();
    uv_timer_init(loop, &c->retry);
    uv_timer_init(loop, &c->deadline);
    c->retry.data = c->deadline.data = c;
    c->open_handles = 2;
    c->state = C_IDLE;
    if (host)
        redis_conn_retarget(c, host, port, true);
    return c;
}

void redis_conn_retarget(redis_conn_t *c, const char *host, int port, bool now)
{
    if (c->closing || c->state == C_CLOSED)
        return;
    bool live = c->state == C_CONNECTING || c->state == C_HANDSHAKE || c->state == C_UP;
    bool same = c->port == port && strcmp(c->host, host) == 0;
    if (same && live)
        return;
    if (c->host[0] && !same)
        LOG_INFO("redis %s: moving from %s:%d to %s:%d", c->name, c->host, c->port, host, port);
    snprintf(c->host, sizeof(c->host), "%s", host);
    c->port = port;
    if (live)
        lose(c, EV_NONE, NULL); /* schedules the next attempt after the backoff */
    if (c->closing || c->state == C_CLOSED)
        return;
    if (c->state == C_IDLE || now) {
        c->state = C_WAIT;
        uv_timer_start(&c->retry, on_retry, 0, 0);
    }
}

bool redis_conn_up(const redis_conn_t *c)
{
    return c->state == C_UP && !c->closing;
}

void redis_conn_hold_reads(redis_conn_t *c, bool hold)
{
    if (c->link)
        redis_link_hold_reads(c->link, hold);
}

long long redis_conn_id(const redis_conn_t *c)
{
    return c->state == C_UP ? c->client_id : 0;
}

const char *redis_conn_host(const redis_conn_t *c)
{
    return c->host;
}

int redis_conn_port(const redis_conn_t *c)
{
    return c->port;
}

size_t redis_conn_inflight(const redis_conn_t *c)
{
    return c->qlen;
}

void redis_conn_count_reconnects(redis_conn_t *c, _Atomic uint64_t *counter)
{
    c->reconnects = counter;
}

void redis_conn_close(redis_conn_t *c, void (*done)(void *arg), void *arg)
{
    if (c->closing)
        return;
    c->closing = true;
    c->done = done;
    c->done_arg = arg;
    uv_timer_stop(&c->retry);
    if (c->state == C_UP && c->qlen)
        return; /* dispatch (or the command timeout) finishes it */
    if (c->state == C_CONNECTING || c->state == C_HANDSHAKE || c->state == C_UP) {
        lose(c, EV_NONE, NULL);
        return;
    }
    finish_close(c);
}
