/* reader: see reader.h. */
#include "worker/reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/strmap.h"

#define MISSING_RETRY_MS 1000

typedef struct lane lane_t;

typedef struct rstream {
    lane_t *lane;
    uint32_t pool;
    size_t idx; /* position in lane->streams */
    bool need_group;
    bool need_history;
    uint64_t missing_until; /* key absent: skip reads until then (uv_now ms) */
    size_t len;
    char name[];
} rstream_t;

typedef enum lane_state { LANE_IDLE, LANE_BUSY, LANE_WAIT, LANE_CLOSED } lane_state_t;

struct lane {
    reader_t *r;
    rds_t *conn;
    rstream_t **streams;
    size_t n, cap;
    lane_state_t state;
    size_t sweep_pos; /* next stream of a multi-read sweep */
    size_t sweep_got; /* entries found in the current sweep */
    bool read_blocking;
    uv_timer_t timer; /* retry after an error */
    /* argv of the command being built; pointers into stream names */
    const char **argv;
    size_t *argvlen;
    size_t argcap;
    rstream_t **sel; /* streams chosen for the next read, capacity `cap` */
};

struct reader {
    uv_loop_t *loop;
    const cfg_t *cfg;
    stats_worker_t *stats;
    reader_entry_fn fn;
    void *arg;
    char consumer[256];
    char count[16];
    char block[16];
    strmap_t *streams; /* name -> rstream_t */
    lane_t *lanes;
    size_t nlanes;
    bool stopping;
    size_t open_handles; /* lanes' connections and timers still to close */
    void (*done)(void *arg);
    void *done_arg;
    payload_field_t *fields; /* scratch for one entry, reused */
    size_t fields_cap;
    const char **ack_argv;
    size_t *ack_len;
    size_t ack_cap;
};

static void lane_kick(lane_t *l);

/* ---- lane membership ---- */

static int lane_push(lane_t *l, rstream_t *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        rstream_t **v = realloc(l->streams, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        l->streams = v;
        rstream_t **sel = realloc(l->sel, cap * sizeof(*sel));
        if (!sel)
            return -ENOMEM;
        l->sel = sel;
        l->cap = cap;
    }
    s->lane = l;
    s->idx = l->n;
    l->streams[l->n++] = s;
    return 0;
}

static void lane_drop(lane_t *l, rstream_t *s)
{
    rstream_t *last = l->streams[--l->n];
    l->streams[s->idx] = last;
    last->idx = s->idx;
    if (l->sweep_pos > l->n)
        l->sweep_pos = 0;
}

static void on_lane_state(rds_t *conn, bool connected, void *arg)
{
    (void)conn;
    lane_t *l = arg;
    if (!connected) {
        l->state = LANE_IDLE;
        return;
    }
    /* Redis may have restarted without our groups, and anything we had read but not acked
     * is pending for us: check groups and re-read our history before new entries. */
    for (size_t i = 0; i < l->n; i++) {
        l->streams[i]->need_group = true;
        l->streams[i]->need_history = true;
    }
    lane_kick(l);
}

static void on_lane_timer(uv_timer_t *t)
{
    lane_t *l = t->data;
    if (l->state == LANE_WAIT)
        l->state = LANE_IDLE;
    lane_kick(l);
}

static lane_t *lane_for(reader_t *r, uint32_t pool)
{
    lane_t *l = &r->lanes[pool % r->nlanes];
    if (!l->conn && l->state != LANE_CLOSED) {
        char name[32];
        snprintf(name, sizeof(name), "reader %u", (unsigned)(l - r->lanes));
        if (rds_new(&l->conn, r->loop, r->cfg, name, on_lane_state, l))
            return NULL;
        uv_timer_init(r->loop, &l->timer);
        l->timer.data = l;
        r->open_handles += 2;
    }
    return l;
}

/* ---- command building ---- */

static int argv_reserve(lane_t *l, size_t n)
{
    if (n <= l->argcap)
        return 0;
    const char **a = realloc(l->argv, n * sizeof(*a));
    if (!a)
        return -ENOMEM;
    l->argv = a;
    size_t *b = realloc(l->argvlen, n * sizeof(*b));
    if (!b)
        return -ENOMEM;
    l->argvlen = b;
    l->argcap = n;
    return 0;
}

static void arg_set(lane_t *l, size_t i, const char *s, size_t len)
{
    l->argv[i] = s;
    l->argvlen[i] = len;
}

static void on_read(redisAsyncContext *ac, void *reply, void *privdata);

/* XREADGROUP GROUP g c COUNT n [BLOCK ms] STREAMS s... id... over sel[0..k) */
static int send_read(lane_t *l, rstream_t **sel, size_t k, const char *id, bool block)
{
    reader_t *r = l->r;
    size_t argc = 7 + (block ? 2 : 0) + 1 + 2 * k;
    if (argv_reserve(l, argc))
        return -ENOMEM;
    size_t a = 0;
    arg_set(l, a++, "XREADGROUP", 10);
    arg_set(l, a++, "GROUP", 5);
    arg_set(l, a++, r->cfg->consumer_group, strlen(r->cfg->consumer_group));
    arg_set(l, a++, r->consumer, strlen(r->consumer));
    arg_set(l, a++, "COUNT", 5);
    arg_set(l, a++, r->count, strlen(r->count));
    if (block) {
        arg_set(l, a++, "BLOCK", 5);
        arg_set(l, a++, r->block, strlen(r->block));
    }
    arg_set(l, a++, "STREAMS", 7);
    for (size_t i = 0; i < k; i++)
        arg_set(l, a++, sel[i]->name, sel[i]->len);
    for (size_t i = 0; i < k; i++)
        arg_set(l, a++, id, strlen(id));
    int rc = rds_command(l->conn, on_read, l, (int)a, l->argv, l->argvlen);
    if (rc == 0) {
        l->state = LANE_BUSY;
        l->read_blocking = block;
    }
    return rc;
}

typedef struct xgroup_req {
    lane_t *lane;
    size_t len;
    char name[];
} xgroup_req_t;

static void on_group(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    xgroup_req_t *g = privdata;
    redisReply *rep = reply;
    reader_t *r = g->lane->r;
    rstream_t *s = strmap_get(r->streams, g->name, g->len);
    if (s && rep && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "BUSYGROUP", 9) != 0) {
        /* the key is gone (or not a stream): skip it until it comes back */
        s->need_group = true;
        s->missing_until = uv_now(r->loop) + MISSING_RETRY_MS;
        LOG_DEBUG("stream %.*s: %s", (int)g->len, g->name, rep->str);
    }
    free(g);
}

static void send_group_creates(lane_t *l)
{
    reader_t *r = l->r;
    uint64_t now = uv_now(r->loop);
    for (size_t i = 0; i < l->n; i++) {
        rstream_t *s = l->streams[i];
        if (!s->need_group || s->missing_until > now)
            continue;
        xgroup_req_t *g = malloc(sizeof(*g) + s->len);
        if (!g)
            return;
        g->lane = l;
        g->len = s->len;
        memcpy(g->name, s->name, s->len);
        const char *argv[] = {"XGROUP", "CREATE", s->name, r->cfg->consumer_group, "0"};
        size_t lens[] = {6, 6, s->len, strlen(r->cfg->consumer_group), 1};
        if (rds_command(l->conn, on_group, g, 5, argv, lens)) {
            free(g);
            return;
        }
        s->need_group = false;
        s->missing_until = 0;
    }
}

/* Streams ready for reads: grouped and not known missing. */
static bool readable(const rstream_t *s, uint64_t now)
{
    return !s->need_group && s->missing_until <= now;
}

static void lane_kick(lane_t *l)
{
    reader_t *r = l->r;
    if (l->state != LANE_IDLE || r->stopping || !l->conn || !rds_connected(l->conn))
        return;
    send_group_creates(l);
    uint64_t now = uv_now(r->loop);
    size_t max = (size_t)r->cfg->max_streams_per_read;
    rstream_t **sel = l->sel;
    size_t k = 0;
    for (size_t i = 0; i < l->n && k < max; i++) {
        if (readable(l->streams[i], now) && l->streams[i]->need_history)
            sel[k++] = l->streams[i];
    }
    int rc = 0;
    if (k) {
        rc = send_read(l, sel, k, "0", false);
    } else {
        for (size_t i = 0; i < l->n; i++) {
            if (readable(l->streams[i], now))
                sel[k++] = l->streams[i];
        }
        if (k == 0) {
            /* nothing readable now: retry later if some stream waits for its key */
            if (l->n)
                uv_timer_start(&l->timer, on_lane_timer, MISSING_RETRY_MS, 0);
            return;
        }
        if (k <= max) {
            rc = send_read(l, sel, k, ">", true);
        } else if (l->sweep_pos >= k) {
            /* a whole sweep done */
            bool idle = l->sweep_got == 0;
            l->sweep_pos = 0;
            l->sweep_got = 0;
            rc = idle ? send_read(l, sel, k, ">", true) : 0;
            if (!idle) {
                size_t n = k < max ? k : max;
                rc = send_read(l, sel, n, ">", false);
                l->sweep_pos = n;
            }
        } else {
            size_t n = k - l->sweep_pos < max ? k - l->sweep_pos : max;
            rc = send_read(l, sel + l->sweep_pos, n, ">", false);
            l->sweep_pos += n;
        }
    }
    if (rc && rc != -ENOTCONN) {
        l->state = LANE_WAIT;
        uv_timer_start(&l->timer, on_lane_timer, 100, 0);
    }
}

/* ---- replies ---- */

static int fields_reserve(reader_t *r, size_t n)
{
    if (n <= r->fields_cap)
        return 0;
    payload_field_t *f = realloc(r->fields, n * sizeof(*f));
    if (!f)
        return -ENOMEM;
    r->fields = f;
    r->fields_cap = n;
    return 0;
}

static int ack_reserve(reader_t *r, size_t n)
{
    if (n <= r->ack_cap)
        return 0;
    const char **a = realloc(r->ack_argv, n * sizeof(*a));
    if (!a)
        return -ENOMEM;
    r->ack_argv = a;
    size_t *b = realloc(r->ack_len, n * sizeof(*b));
    if (!b)
        return -ENOMEM;
    r->ack_len = b;
    r->ack_cap = n;
    return 0;
}

/* Delivers one stream's entries, then XACK + XDEL them behind whatever delivery queued. */
static size_t handle_stream(lane_t *l, redisReply *sr)
{
    reader_t *r = l->r;
    if (sr->type != REDIS_REPLY_ARRAY || sr->elements != 2 ||
        sr->element[0]->type != REDIS_REPLY_STRING || sr->element[1]->type != REDIS_REPLY_ARRAY)
        return 0;
    const redisReply *name = sr->element[0];
    const redisReply *entries = sr->element[1];
    rstream_t *s = strmap_get(r->streams, name->str, name->len);
    if (entries->elements == 0) {
        if (s)
            s->need_history = false;
        return 0;
    }
    if (ack_reserve(r, 3 + entries->elements))
        return 0;
    size_t nids = 0;
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        const redisReply *id = e->element[0];
        const redisReply *fv = e->element[1];
        r->ack_argv[3 + nids] = id->str;
        r->ack_len[3 + nids] = id->len;
        nids++;
        if (fv->type != REDIS_REPLY_ARRAY)
            continue; /* deleted while pending: nothing to deliver, still acknowledge it */
        size_t nf = fv->elements / 2;
        if (fields_reserve(r, nf ? nf : 1))
            continue;
        size_t k = 0;
        for (size_t j = 0; j + 1 < fv->elements; j += 2) {
            const redisReply *f = fv->element[j], *v = fv->element[j + 1];
            if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            r->fields[k++] = (payload_field_t){f->str, f->len, v->str, v->len};
        }
        r->fn(l->conn, name->str, name->len, id->str, id->len, r->fields, k, r->arg);
    }
    r->ack_argv[0] = "XACK";
    r->ack_len[0] = 4;
    r->ack_argv[1] = name->str;
    r->ack_len[1] = name->len;
    r->ack_argv[2] = r->cfg->consumer_group;
    r->ack_len[2] = strlen(r->cfg->consumer_group);
    rds_command(l->conn, NULL, NULL, (int)(3 + nids), r->ack_argv, r->ack_len);
    /* XDEL takes the same ids right after the key: reuse the vector one slot later */
    r->ack_argv[1] = "XDEL";
    r->ack_len[1] = 4;
    r->ack_argv[2] = name->str;
    r->ack_len[2] = name->len;
    rds_command(l->conn, NULL, NULL, (int)(2 + nids), r->ack_argv + 1, r->ack_len + 1);
    STATS_ADD(r->stats->messages_processed, nids);
    return nids;
}

static void lane_close_if_stopping(lane_t *l);

static void on_read(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    lane_t *l = privdata;
    reader_t *r = l->r;
    redisReply *rep = reply;
    if (l->state == LANE_BUSY)
        l->state = LANE_IDLE;
    if (!rep) {
        lane_close_if_stopping(l);
        return; /* connection lost: on_lane_state restarts the lane */
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        if (strncmp(rep->str, "NOGROUP", 7) == 0) {
            for (size_t i = 0; i < l->n; i++)
                l->streams[i]->need_group = true;
        } else {
            LOG_WARN("XREADGROUP failed: %s", rep->str);
            l->state = LANE_WAIT;
            uint64_t delay = r->cfg->batch_delay_ms > 100 ? (uint64_t)r->cfg->batch_delay_ms : 100;
            uv_timer_start(&l->timer, on_lane_timer, delay, 0);
        }
    } else if (rep->type == REDIS_REPLY_ARRAY) {
        size_t got = 0;
        for (size_t i = 0; i < rep->elements; i++)
            got += handle_stream(l, rep->element[i]);
        l->sweep_got += got;
    }
    if (r->stopping) {
        lane_close_if_stopping(l);
        return;
    }
    lane_kick(l);
}

/* ---- public ---- */

int reader_new(reader_t **out, uv_loop_t *loop, const cfg_t *cfg, const char *consumer,
               stats_worker_t *stats, reader_entry_fn fn, void *arg)
{
    reader_t *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->loop = loop;
    r->cfg = cfg;
    r->stats = stats;
    r->fn = fn;
    r->arg = arg;
    snprintf(r->consumer, sizeof(r->consumer), "%s", consumer);
    snprintf(r->count, sizeof(r->count), "%d", cfg->max_messages_batch);
    snprintf(r->block, sizeof(r->block), "%d", cfg->read_block_ms);
    r->nlanes = (size_t)cfg->max_concurrent_pools;
    r->lanes = calloc(r->nlanes, sizeof(*r->lanes));
    r->streams = strmap_new();
    if (!r->lanes || !r->streams) {
        free(r->lanes);
        strmap_free(r->streams);
        free(r);
        return -ENOMEM;
    }
    for (size_t i = 0; i < r->nlanes; i++)
        r->lanes[i].r = r;
    *out = r;
    return 0;
}

int reader_add(reader_t *r, uint32_t pool, const char *name, size_t len)
{
    if (r->stopping || strmap_get(r->streams, name, len))
        return 0;
    lane_t *l = lane_for(r, pool);
    rstream_t *s = calloc(1, sizeof(*s) + len + 1);
    if (!l || !s) {
        free(s);
        return -ENOMEM;
    }
    s->pool = pool;
    s->len = len;
    memcpy(s->name, name, len);
    s->need_group = true;
    s->need_history = true;
    if (lane_push(l, s) || strmap_put(r->streams, s->name, len, s)) {
        if (s->lane)
            lane_drop(l, s);
        free(s);
        return -ENOMEM;
    }
    STATS_SET(r->stats->streams, strmap_size(r->streams));
    lane_kick(l);
    return 0;
}

void reader_remove(reader_t *r, const char *name, size_t len)
{
    rstream_t *s = strmap_del(r->streams, name, len);
    if (!s)
        return;
    lane_drop(s->lane, s);
    free(s);
    STATS_SET(r->stats->streams, strmap_size(r->streams));
}

void reader_remove_pool(reader_t *r, uint32_t pool)
{
    lane_t *l = &r->lanes[pool % r->nlanes];
    for (size_t i = l->n; i-- > 0;) {
        rstream_t *s = l->streams[i];
        if (s->pool == pool)
            reader_remove(r, s->name, s->len);
    }
}

size_t reader_streams(const reader_t *r)
{
    return strmap_size(r->streams);
}

bool reader_connected(const reader_t *r)
{
    for (size_t i = 0; i < r->nlanes; i++) {
        if (r->lanes[i].conn && !rds_connected(r->lanes[i].conn))
            return false;
    }
    return true;
}

static void free_stream(const char *key, size_t len, void *value, void *arg)
{
    (void)key;
    (void)len;
    (void)arg;
    free(value);
}

static void handle_closed(void *arg)
{
    reader_t *r = arg;
    if (--r->open_handles)
        return;
    void (*done)(void *) = r->done;
    void *done_arg = r->done_arg;
    strmap_foreach(r->streams, free_stream, NULL);
    strmap_free(r->streams);
    for (size_t i = 0; i < r->nlanes; i++) {
        free(r->lanes[i].streams);
        free(r->lanes[i].sel);
        free(r->lanes[i].argv);
        free(r->lanes[i].argvlen);
    }
    free(r->lanes);
    free(r->fields);
    free(r->ack_argv);
    free(r->ack_len);
    free(r);
    if (done)
        done(done_arg);
}

static void on_lane_timer_closed(uv_handle_t *h)
{
    lane_t *l = h->data;
    handle_closed(l->r);
}

static void lane_close_if_stopping(lane_t *l)
{
    reader_t *r = l->r;
    if (!r->stopping || l->state == LANE_BUSY || l->state == LANE_CLOSED || !l->conn)
        return;
    l->state = LANE_CLOSED;
    uv_close((uv_handle_t *)&l->timer, on_lane_timer_closed);
    rds_t *conn = l->conn;
    l->conn = NULL;
    rds_close(conn, handle_closed, r); /* waits for the queued XACK/XDEL replies */
}

void reader_stop(reader_t *r, void (*done)(void *arg), void *arg)
{
    r->stopping = true;
    r->done = done;
    r->done_arg = arg;
    r->open_handles++; /* held until every lane was visited */
    for (size_t i = 0; i < r->nlanes; i++) {
        lane_t *l = &r->lanes[i];
        if (l->state == LANE_WAIT) {
            uv_timer_stop(&l->timer);
            l->state = LANE_IDLE;
        }
        lane_close_if_stopping(l);
    }
    handle_closed(r);
}
