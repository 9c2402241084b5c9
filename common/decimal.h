/*
 * decimal: the run of decimal digits a text starts with, as an unsigned 64-bit number. The one
 * reader of unsigned decimals for the parsers that take them from untrusted bytes (JSON numbers
 * and keys, stream ids, netstring lengths, ports and database numbers), so that each states its
 * bound as a count of digits and none can overflow.
 */
#ifndef STREAMIO_COMMON_DECIMAL_H
#define STREAMIO_COMMON_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

/*
 * Reads the digits [0-9] that p[0..len) starts with, max_digits of them at most, into *out (0
 * when there are none). Reading also stops before a digit that would take the value past
 * UINT64_MAX, so 20 digits are read only when they fit. Returns how many digits it read: 0 when
 * p does not start with one; a digit at the returned position means the number went on past the
 * bound (the caller decides whether that is an error).
 */
size_t decimal_read(const char *p, size_t len, size_t max_digits, uint64_t *out);

#endif
