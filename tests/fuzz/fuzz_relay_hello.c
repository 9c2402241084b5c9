/*
 * Fuzzes common/proto/relay_hello on the first bytes of a connection, which any client controls:
 * parsing never reads past n, a hello is only ever taken for this server's tag, the answer built
 * for an accepted hello echoes exactly its nonce, and only a hello's prefix asks for more.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto/relay_hello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly `size` bytes, so ASan sees any read past the end */
    char *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    char answer[RELAY_ANSWER_LEN], want[RELAY_ANSWER_LEN];
    int rc = relay_hello_parse(in, size, "AAbb", answer);
    if (rc == RELAY_HELLO_LEN) {
        relay_answer_build(want, "AAbb", in + 15 + RELAY_HELLO_TAG_LEN + 1);
        if (memcmp(in + 15, "AAbb", RELAY_HELLO_TAG_LEN) != 0 || memcmp(answer, want, sizeof(want)))
            __builtin_trap();
    } else if (rc == -EAGAIN) {
        if (size >= RELAY_HELLO_LEN || memcmp(in, "STREAMIO-RELAY ", size < 15 ? size : 15))
            __builtin_trap();
    } else if (rc != 0 && rc != -EINVAL) {
        __builtin_trap();
    }
    free(in);
    return 0;
}
