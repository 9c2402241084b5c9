/* What the recovery tests read back from a record: its rooms, collected by recovery_decode's
 * callback (the first 8, names under 32 bytes; n counts them all). */
#ifndef STREAMIO_TESTS_UNIT_RECOVERY_SEEN_H
#define STREAMIO_TESTS_UNIT_RECOVERY_SEEN_H

#include <string.h>

#include "worker/recovery/recovery.h"

typedef struct rooms_seen {
    char names[8][32];
    uint32_t tags[8];
    stream_id_t first[8], last[8];
    size_t n;
} rooms_seen_t;

static inline void on_room(void *arg, const recovery_room_t *r)
{
    rooms_seen_t *s = arg;
    if (s->n < 8 && r->len < 32) {
        memcpy(s->names[s->n], r->name, r->len);
        s->names[s->n][r->len] = '\0';
        s->tags[s->n] = r->tag;
        s->first[s->n] = r->first;
        s->last[s->n] = r->last;
    }
    s->n++;
}

#endif
