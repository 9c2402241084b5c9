/*
 * relay_hello: the line a server opens a relayed connection with (worker/net/splice) and the
 * answer that proves the peer is the streamio server the relay meant. A relay's target address
 * comes from Redis, which anyone who can reach it may write; without this check a relay could be
 * aimed at any TCP service and carry a client's request there and the answer back. A peer
 * answers only a hello that names its own tag, echoing the relay's random nonce, so neither
 * another service nor an echo server passes, and nothing of the client's is sent before it.
 *
 *   hello:  "STREAMIO-RELAY <tag> <nonce>\r\n"     (tag: 4 characters; nonce: 16 of [A-Za-z0-9_-])
 *   answer: "STREAMIO-RELAY-OK <tag> <nonce>\r\n"
 *
 * Pure functions, no I/O.
 */
#ifndef STREAMIO_COMMON_PROTO_RELAY_HELLO_H
#define STREAMIO_COMMON_PROTO_RELAY_HELLO_H

#include <stddef.h>

#define RELAY_HELLO_TAG_LEN 4
#define RELAY_HELLO_NONCE_LEN 16
#define RELAY_HELLO_LEN (15 + RELAY_HELLO_TAG_LEN + 1 + RELAY_HELLO_NONCE_LEN + 2)
#define RELAY_ANSWER_LEN (RELAY_HELLO_LEN + 3)

/* The hello for the server tagged `tag` (RELAY_HELLO_TAG_LEN characters) with `nonce`
 * (RELAY_HELLO_NONCE_LEN characters, e.g. from ids_random); out gets exactly RELAY_HELLO_LEN
 * bytes, no NUL. */
void relay_hello_build(char *out, const char *tag, const char *nonce);
/* The answer the server tagged `tag` gives to that hello: RELAY_ANSWER_LEN bytes, no NUL. */
void relay_answer_build(char *out, const char *tag, const char *nonce);
/*
 * Looks at the first bytes p[0..n) of an accepted connection (n > 0). 0: they do not start with
 * the hello's 15-byte prefix (HTTP follows). RELAY_HELLO_LEN: a hello naming own_tag, with
 * `answer` (RELAY_ANSWER_LEN bytes) to send before reading on. -EAGAIN: a hello's first n bytes
 * so far (the network may cut it anywhere): look again with more. -EINVAL: a hello for another
 * server, or malformed.
 */
int relay_hello_parse(const char *p, size_t n, const char *own_tag, char *answer);

#endif
