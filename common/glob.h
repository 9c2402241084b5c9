/*
 * glob: the one pattern language of everything that names rooms or events by pattern — the
 * token's `rooms` and `publish` claims, SOCKETIO_INBOUND_EVENTS and PRESENCE_ROOMS. `*` matches
 * any run of bytes (dots included), `?` exactly one byte, `\` makes the next byte literal; every
 * other byte matches itself. A glob list is a set of such patterns read from a comma-separated
 * setting (a `\,` is a literal comma, blanks around items are dropped) or from a JSON claim (a
 * string or an array of strings).
 *
 * Patterns and subjects are arbitrary bytes; nothing here logs or keeps a caller's pointer.
 * Matching is iterative, O(plen * len) at worst, and never allocates.
 */
#ifndef STREAMIO_COMMON_GLOB_H
#define STREAMIO_COMMON_GLOB_H

#include <stdbool.h>
#include <stddef.h>

#include "common/json.h"

typedef struct glob_list glob_list_t;

/* Whether s[0..len) matches pat[0..plen). */
bool glob_match(const char *pat, size_t plen, const char *s, size_t len);

/*
 * Reads a comma-separated setting into a new list (an empty or all-blank value gives an empty
 * list). 0; -EINVAL when an item is empty between two commas (`a,,b`) or longer than max_len
 * bytes, or there are more than max_items. Aborts on out-of-memory.
 */
int glob_list_from_csv(const char *v, size_t max_items, size_t max_len, glob_list_t **out);

/*
 * Reads a JSON claim (a span of validated JSON text) into a new list: a string is one pattern, an
 * array of strings one pattern each (decoded, 1..max_len bytes, at most max_items). 0, or
 * -EINVAL for anything else (another type, an empty or too long string, too many items).
 */
int glob_list_from_json(const json_span_t *claim, size_t max_items, size_t max_len,
                        glob_list_t **out);

/* Whether s matches one of the patterns (never for an empty list or NULL). */
bool glob_list_match(const glob_list_t *l, const char *s, size_t len);
/* Number of patterns (0 for NULL). */
size_t glob_list_count(const glob_list_t *l);
/* NULL is a no-op. */
void glob_list_free(glob_list_t *l);

#endif
