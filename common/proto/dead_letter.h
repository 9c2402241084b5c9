/*
 * dead_letter: the format of an entry of the dead-letter stream (STREAM_DEAD_LETTER), which holds
 * the stream entries streamio gave up delivering. One dead letter is one stream entry whose
 * fields are, in this order:
 *   stream <the stream>  id <the entry id>  reason poison|oversized  deliveries <n>  bytes <n>
 *   ts <ms since the epoch, when moved>  field:<name> <value>  (once per field of the entry, in
 *   its order, bytes untouched)
 * so a back end reads it with any Redis client, and `streamioctl dead-letter replay` re-injects
 * exactly the original fields. deliveries is the number of times Redis had handed the entry out
 * (0 when unknown). Pure: no I/O, no logging; output goes to the caller's buffers.
 */
#ifndef STREAMIO_COMMON_PROTO_DEAD_LETTER_H
#define STREAMIO_COMMON_PROTO_DEAD_LETTER_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/proto/payload.h"

#define DEAD_LETTER_FIELD_PREFIX "field:"

typedef enum dead_letter_reason {
    DEAD_LETTER_POISON = 0,    /* claimed more than STREAM_MAX_DELIVERIES times */
    DEAD_LETTER_OVERSIZED = 1, /* larger than STREAM_MAX_ENTRY_BYTES */
    DEAD_LETTER_REASONS
} dead_letter_reason_t;

/* Names of the reasons, indexed by dead_letter_reason_t (the `reason` field, metric labels). */
extern const char *const dead_letter_reason_names[DEAD_LETTER_REASONS];

/* One dead letter; everything borrowed. */
typedef struct dead_letter {
    const char *stream;
    size_t stream_len;
    const char *id;
    size_t id_len;
    dead_letter_reason_t reason;
    uint64_t deliveries;
    uint64_t bytes;
    uint64_t ts_ms;
    const payload_field_t *fields; /* the entry's own fields (names without the prefix) */
    size_t nfields;
} dead_letter_t;

/* Size of an entry as STREAM_MAX_ENTRY_BYTES counts it: its field names and values. */
uint64_t dead_letter_entry_bytes(const payload_field_t *fields, size_t nfields);

/* argc of dead_letter_xadd for an entry of nfields fields. */
size_t dead_letter_argc(size_t nfields);
/*
 * Fills argv/lens (dead_letter_argc(d->nfields) slots) with `XADD <dl> * <the fields above>`.
 * The prefixed names and the numbers are written into scratch (reset first), which argv points
 * into: keep it unchanged until the command is sent. Borrows d's strings.
 */
void dead_letter_xadd(const char *dl, size_t dl_len, const dead_letter_t *d, buf_t *scratch,
                      const char **argv, size_t *lens);

/*
 * Reads the field/value pairs of a dead-letter entry as read back from the stream into *out;
 * its fields go to fields[] (capacity npairs), names past the prefix, borrowing pairs. 0, or
 * -EINVAL when it is not a dead letter: stream, id or reason missing, an unknown reason, a
 * number that does not parse, or a field of another name.
 */
int dead_letter_decode(const payload_field_t *pairs, size_t npairs, dead_letter_t *out,
                       payload_field_t *fields);

/*
 * Appends the JSON `streamioctl dead-letter list` prints for the dead letter dlid:
 * {"id":dlid,"stream":…,"entryId":…,"reason":…,"deliveries":n,"bytes":n,"ts":n,"fields":{…}}
 * with each value as a JSON string (invalid UTF-8 as U+FFFD), cut to max_value bytes and then
 * flagged with "truncated":true.
 */
void dead_letter_json(buf_t *out, const char *dlid, size_t dlid_len, const dead_letter_t *d,
                      size_t max_value);

/* argc of dead_letter_replay: XADD <stream> * <name> <value>... */
size_t dead_letter_replay_argc(size_t nfields);
/* Fills argv/lens with the XADD that puts the entry back into its stream (a new id). */
void dead_letter_replay(const dead_letter_t *d, const char **argv, size_t *lens);

#endif
