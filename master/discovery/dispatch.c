/* dispatch: see dispatch.h. */
#include "master/discovery/dispatch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "shm/stats.h"
#include "shm/workdesc.h"

#define RETRY_MS 5 /* a full ring: try again this soon */

typedef struct outrec {
    struct outrec *next;
    uint16_t type;
    uint32_t len;
    char data[];
} outrec_t;

typedef struct outbox {
    int32_t block; /* -1: detached */
    outrec_t *head, *tail;
    uint32_t fence; /* the last WORKDESC_FENCE sent since attached; 0: none */
} outbox_t;

struct dispatch {
    uv_timer_t retry;
    shm_region_t *region;
    outbox_t *boxes; /* capacity entries */
    uint32_t capacity;
    buf_t rec;
    bool (*keep)(void *arg, const char *name, size_t len);
    void *keep_arg;
};

dispatch_t *dispatch_new(uv_loop_t *loop, shm_region_t *region, uint32_t capacity)
{
    dispatch_t *d = xcalloc(1, sizeof(*d));
    d->boxes = xcalloc(capacity, sizeof(*d->boxes));
    for (uint32_t i = 0; i < capacity; i++)
        d->boxes[i].block = -1;
    d->region = region;
    d->capacity = capacity;
    buf_init(&d->rec);
    uv_timer_init(loop, &d->retry);
    d->retry.data = d;
    return d;
}

static void clear(outbox_t *b)
{
    while (b->head) {
        outrec_t *r = b->head;
        b->head = r->next;
        free(r);
    }
    b->tail = NULL;
    b->fence = 0;
}

static void on_closed(uv_handle_t *h)
{
    dispatch_t *d = h->data;
    for (uint32_t i = 0; i < d->capacity; i++)
        clear(&d->boxes[i]);
    free(d->boxes);
    buf_free(&d->rec);
    free(d);
}

void dispatch_close(dispatch_t *d)
{
    if (d)
        uv_close((uv_handle_t *)&d->retry, on_closed);
}

void dispatch_attach(dispatch_t *d, uint32_t worker, uint32_t block)
{
    clear(&d->boxes[worker]);
    d->boxes[worker].block = (int32_t)block;
}

void dispatch_detach(dispatch_t *d, uint32_t worker)
{
    clear(&d->boxes[worker]);
    d->boxes[worker].block = -1;
}

int32_t dispatch_block(const dispatch_t *d, uint32_t worker)
{
    return worker < d->capacity ? d->boxes[worker].block : -1;
}

/* Pushes what the ring takes; true when records are left for a later try. */
static bool flush(dispatch_t *d, uint32_t worker)
{
    outbox_t *b = &d->boxes[worker];
    while (b->head) {
        outrec_t *r = b->head;
        uint32_t block = (uint32_t)b->block;
        int rc = shm_region_send(d->region, block, r->type, r->data, r->len);
        if (rc == -EAGAIN)
            return true;
        stats_worker_t *ws = shm_region_slot_stats(d->region, block);
        STATS_ADD(ws->desc_sent, 1);
        if (rc && rc != -EBADF)
            LOG_ERROR("dropping a work descriptor for worker %u: %s", worker, strerror(-rc));
        b->head = r->next;
        if (!b->head)
            b->tail = NULL;
        free(r);
    }
    return false;
}

static void on_retry(uv_timer_t *t)
{
    dispatch_t *d = t->data;
    bool again = false;
    for (uint32_t i = 0; i < d->capacity; i++)
        again |= flush(d, i);
    if (again)
        uv_timer_start(&d->retry, on_retry, RETRY_MS, 0);
}

void dispatch_set_filter(dispatch_t *d, bool (*keep)(void *arg, const char *name, size_t len),
                         void *arg)
{
    d->keep = keep;
    d->keep_arg = arg;
}

bool dispatch_quiet(dispatch_t *d)
{
    for (uint32_t i = 0; i < d->capacity; i++) {
        const outbox_t *b = &d->boxes[i];
        if (b->block < 0)
            continue;
        const ring_t *ring = shm_region_ring(d->region, (uint32_t)b->block);
        if (b->head || (ring && !ring_empty(ring)))
            return false;
        const stats_worker_t *ws = shm_region_slot_stats(d->region, (uint32_t)b->block);
        if (b->fence && ws && STATS_GET(ws->fence_done) < b->fence)
            return false;
    }
    return true;
}

/* Queues d->rec for `worker`, behind what waits already, and pushes what its ring takes. */
static void enqueue(dispatch_t *d, uint32_t worker, uint16_t type)
{
    outbox_t *b = &d->boxes[worker];
    outrec_t *r = xmalloc(sizeof(*r) + d->rec.len);
    r->next = NULL;
    r->type = type;
    r->len = (uint32_t)d->rec.len;
    memcpy(r->data, d->rec.data, d->rec.len);
    if (b->tail)
        b->tail->next = r;
    else
        b->head = r;
    b->tail = r;
    /* order per worker: behind what waits already */
    if (flush(d, worker) && !uv_is_active((uv_handle_t *)&d->retry))
        uv_timer_start(&d->retry, on_retry, RETRY_MS, 0);
}

void dispatch_stream(dispatch_t *d, uint16_t type, uint32_t pool, uint32_t worker, const char *name,
                     size_t len)
{
    outbox_t *b = &d->boxes[worker];
    if (b->block < 0)
        return;
    if ((type == WORKDESC_POOL_ADD || type == WORKDESC_STREAM_EVENT) && d->keep &&
        !d->keep(d->keep_arg, name, len))
        return;
    workdesc_begin(&d->rec, pool);
    if (name && workdesc_add(&d->rec, name, len)) {
        LOG_ERROR("cannot encode stream %.*s for worker %u", (int)len, name, worker);
        return;
    }
    enqueue(d, worker, type);
}

void dispatch_fence(dispatch_t *d, uint32_t seq)
{
    for (uint32_t i = 0; i < d->capacity; i++) {
        if (d->boxes[i].block < 0)
            continue;
        workdesc_begin(&d->rec, seq);
        enqueue(d, i, WORKDESC_FENCE);
        d->boxes[i].fence = seq;
    }
}
