/* relay_hello: see relay_hello.h. */
#include "common/proto/relay_hello.h"

#include <errno.h>
#include <string.h>

#define HELLO "STREAMIO-RELAY "
#define ANSWER "STREAMIO-RELAY-OK "
#define HELLO_PREFIX_LEN (sizeof(HELLO) - 1)
_Static_assert(HELLO_PREFIX_LEN == 15, "RELAY_HELLO_LEN counts the prefix as 15 bytes");

static void build(char *out, const char *prefix, size_t plen, const char *tag, const char *nonce)
{
    memcpy(out, prefix, plen);
    out += plen;
    memcpy(out, tag, RELAY_HELLO_TAG_LEN);
    out += RELAY_HELLO_TAG_LEN;
    *out++ = ' ';
    memcpy(out, nonce, RELAY_HELLO_NONCE_LEN);
    out += RELAY_HELLO_NONCE_LEN;
    memcpy(out, "\r\n", 2);
}

void relay_hello_build(char *out, const char *tag, const char *nonce)
{
    build(out, HELLO, HELLO_PREFIX_LEN, tag, nonce);
}

void relay_answer_build(char *out, const char *tag, const char *nonce)
{
    build(out, ANSWER, sizeof(ANSWER) - 1, tag, nonce);
}

/* The URL-safe base64 alphabet of ids_random */
static int is_nonce_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c == '-';
}

int relay_hello_parse(const char *p, size_t n, const char *own_tag, char *answer)
{
    size_t head = n < HELLO_PREFIX_LEN ? n : HELLO_PREFIX_LEN;
    if (memcmp(p, HELLO, head) != 0)
        return 0; /* HTTP (a few bytes of garbage are the HTTP parser's to refuse) */
    if (n < RELAY_HELLO_LEN)
        return -EAGAIN; /* TCP may cut even 38 bytes: the rest decides */
    const char *tag = p + HELLO_PREFIX_LEN;
    const char *nonce = tag + RELAY_HELLO_TAG_LEN + 1;
    if (memcmp(tag, own_tag, RELAY_HELLO_TAG_LEN) != 0 || tag[RELAY_HELLO_TAG_LEN] != ' ' ||
        memcmp(nonce + RELAY_HELLO_NONCE_LEN, "\r\n", 2) != 0)
        return -EINVAL;
    for (size_t i = 0; i < RELAY_HELLO_NONCE_LEN; i++)
        if (!is_nonce_char(nonce[i]))
            return -EINVAL;
    relay_answer_build(answer, own_tag, nonce);
    return RELAY_HELLO_LEN;
}
