/*
 * hex: the value of one hexadecimal digit, for the parsers that decode \uXXXX escapes and %XX
 * sequences (json, sio_packet, http_req).
 */
#ifndef STREAMIO_COMMON_HEX_H
#define STREAMIO_COMMON_HEX_H

/* 0..15 for [0-9a-fA-F], -1 for any other character. */
static inline int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
