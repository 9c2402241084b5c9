/* reader_dlq: see reader_dlq.h. */
#include "worker/stream/reader_dlq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/proto/dead_letter.h"
#include "common/strmap.h"
#include "common/xalloc.h"

struct reader_dlq {
    reader_redis_ops_t redis;
    reader_clock_ops_t clock;
    const cfg_t *cfg;
    stats_worker_t *stats;
    uint64_t moved;  /* dead letters moved (log sampling) */
    uint64_t failed; /* moves that failed (log sampling) */
    buf_t scratch;
    const char **argv;
    size_t *lens;
    size_t cap;
};

struct reader_dlq_marks {
    strmap_t *ids;     /* "<stream>\n<id>" -> deliveries */
    unsigned inflight; /* XPENDING replies still to come */
    bool freed;        /* free once they came */
};

/* An XPENDING in flight, or a move: the stream and id it is about. */
typedef struct req {
    reader_dlq_t *q;
    reader_conn_t *conn;
    reader_dlq_marks_t *marks;
    dead_letter_reason_t reason;
    size_t len, id_len;
    char key[]; /* stream, '\n', id */
} req_t;

static req_t *req_new(reader_dlq_t *q, reader_conn_t *c, const char *stream, size_t len,
                      const char *id, size_t id_len)
{
    req_t *r = xcalloc(1, sizeof(*r) + len + 1 + id_len);
    r->q = q;
    r->conn = c;
    r->len = len;
    r->id_len = id_len;
    memcpy(r->key, stream, len);
    r->key[len] = '\n';
    memcpy(r->key + len + 1, id, id_len);
    return r;
}

reader_dlq_t *reader_dlq_new(const reader_redis_ops_t *redis, const reader_clock_ops_t *clock,
                             const cfg_t *cfg, stats_worker_t *stats)
{
    if (!cfg->dead_letter_stream[0])
        return NULL;
    reader_dlq_t *q = xcalloc(1, sizeof(*q));
    q->redis = *redis;
    q->clock = *clock;
    q->cfg = cfg;
    q->stats = stats;
    buf_init(&q->scratch);
    return q;
}

void reader_dlq_free(reader_dlq_t *q)
{
    if (!q)
        return;
    buf_free(&q->scratch);
    free(q->argv);
    free(q->lens);
    free(q);
}

reader_dlq_marks_t *reader_dlq_marks_new(void)
{
    reader_dlq_marks_t *m = xcalloc(1, sizeof(*m));
    m->ids = strmap_new();
    return m;
}

void reader_dlq_marks_clear(reader_dlq_marks_t *m)
{
    if (!m || strmap_size(m->ids) == 0)
        return;
    strmap_free(m->ids);
    m->ids = strmap_new();
}

void reader_dlq_marks_free(reader_dlq_marks_t *m)
{
    if (!m)
        return;
    if (m->inflight) {
        m->freed = true;
        return;
    }
    strmap_free(m->ids);
    free(m);
}

/* [[id, consumer, idle, delivered]...]: entries delivered max times or more get a mark. */
static void on_pending(const redisReply *rep, void *arg)
{
    req_t *r = arg;
    reader_dlq_marks_t *m = r->marks;
    m->inflight--;
    uint64_t max = (uint64_t)r->q->cfg->max_deliveries;
    for (size_t i = 0; rep && rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 4 ||
            e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[3]->type != REDIS_REPLY_INTEGER || e->element[3]->integer < 0 ||
            (uint64_t)e->element[3]->integer < max || m->freed)
            continue;
        buf_t key;
        buf_init(&key);
        buf_append(&key, r->key, r->len);
        buf_putc(&key, '\n');
        buf_append(&key, e->element[0]->str, e->element[0]->len);
        strmap_put(m->ids, key.data, key.len, (void *)(uintptr_t)e->element[3]->integer);
        buf_free(&key);
    }
    if (m->freed && m->inflight == 0)
        reader_dlq_marks_free(m);
    free(r);
}

int reader_dlq_pending(reader_dlq_t *q, reader_conn_t *c, const char *stream, size_t len,
                       const char *count, const char *consumer, const char *min_idle,
                       reader_dlq_marks_t *m)
{
    const char *argv[10];
    size_t lens[10], a = 0;
#define ARG(p, n) (argv[a] = (p), lens[a++] = (n))
    ARG("XPENDING", 8);
    ARG(stream, len);
    ARG(q->cfg->consumer_group, strlen(q->cfg->consumer_group));
    if (min_idle) {
        ARG("IDLE", 4);
        ARG(min_idle, strlen(min_idle));
    }
    ARG("-", 1);
    ARG("+", 1);
    ARG(count, strlen(count));
    if (consumer)
        ARG(consumer, strlen(consumer));
#undef ARG
    req_t *r = req_new(q, c, stream, len, "", 0);
    r->marks = m;
    int rc = q->redis.command(c, stream, len, on_pending, r, (int)a, argv, lens);
    if (rc)
        free(r);
    else
        m->inflight++;
    return rc;
}

/* The dead letter is in its stream: acknowledge (and delete) the entry, as after a delivery. */
static void on_moved(const redisReply *rep, void *arg)
{
    req_t *r = arg;
    reader_dlq_t *q = r->q;
    const char *stream = r->key, *id = r->key + r->len + 1;
    if (!rep || rep->type != REDIS_REPLY_STRING) {
        if (log_sampled(&q->failed))
            LOG_WARN("cannot move entry %.*s of %.*s to %s: %s; it stays pending and is moved "
                     "when claimed again (%llu so far)",
                     (int)r->id_len, id, (int)r->len, stream, q->cfg->dead_letter_stream,
                     rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "connection lost",
                     (unsigned long long)q->failed);
        free(r);
        return;
    }
    const char *group = q->cfg->consumer_group;
    const char *ack[] = {"XACK", stream, group, id};
    size_t lens[] = {4, r->len, strlen(group), r->id_len};
    q->redis.command(r->conn, stream, r->len, NULL, NULL, 4, ack, lens);
    if (!q->cfg->stream_retain) {
        const char *del[] = {"XDEL", stream, id};
        size_t dlens[] = {4, r->len, r->id_len};
        q->redis.command(r->conn, stream, r->len, NULL, NULL, 3, del, dlens);
    }
    STATS_ADD(q->stats->dead_letters[r->reason], 1);
    if (log_sampled(&q->moved))
        LOG_WARN("moved entry %.*s of %.*s to %s (%s, as %.*s; %llu so far)", (int)r->id_len, id,
                 (int)r->len, stream, q->cfg->dead_letter_stream,
                 dead_letter_reason_names[r->reason], (int)rep->len, rep->str,
                 (unsigned long long)q->moved);
    free(r);
}

bool reader_dlq_divert(reader_dlq_t *q, reader_conn_t *c, reader_dlq_marks_t *m, const char *stream,
                       size_t len, const char *id, size_t id_len, const payload_field_t *fields,
                       size_t nfields)
{
    if (!q)
        return false;
    dead_letter_t d = {stream, len, id, id_len, DEAD_LETTER_OVERSIZED, 0, 0, 0, fields, nfields};
    d.bytes = dead_letter_entry_bytes(fields, nfields);
    req_t *r = req_new(q, c, stream, len, id, id_len);
    uintptr_t marked = m ? (uintptr_t)strmap_get(m->ids, r->key, len + 1 + id_len) : 0;
    if (marked) {
        d.reason = DEAD_LETTER_POISON;
        d.deliveries = marked + 1; /* this read was one more */
    } else if (d.bytes <= (uint64_t)q->cfg->max_entry_bytes) {
        free(r);
        return false;
    }
    r->reason = d.reason;
    d.ts_ms = q->clock.wall_ms(q->clock.ctx);
    size_t argc = dead_letter_argc(nfields);
    if (argc > q->cap) {
        q->argv = xrealloc(q->argv, argc * sizeof(*q->argv));
        q->lens = xrealloc(q->lens, argc * sizeof(*q->lens));
        q->cap = argc;
    }
    const char *dl = q->cfg->dead_letter_stream;
    dead_letter_xadd(dl, strlen(dl), &d, &q->scratch, q->argv, q->lens);
    if (q->redis.command(c, dl, strlen(dl), on_moved, r, (int)argc, q->argv, q->lens))
        on_moved(NULL, r); /* not sent: it stays pending, like a failed XADD */
    return true;
}
