/*
 * Fuzzes the presence event codec (common/bridge/presence_store) on what anyone who can PUBLISH
 * on the presence channel controls: a message that decodes must encode back to itself, and its
 * packet must be valid JSON after the "42" prefix.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/bridge/presence_store.h"
#include "common/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool join;
    const char *room, *user;
    size_t rl, ul;
    if (presence_event_decode((const char *)data, size, &join, &room, &rl, &user, &ul) != 0)
        return 0;
    if (rl == 0 || ul == 0 || ul > PRESENCE_USER_MAX || room + rl != user)
        __builtin_trap();
    buf_t b;
    buf_init(&b);
    presence_event_encode(&b, join, room, rl, user, ul);
    if (b.len != size || memcmp(b.data, data, size) != 0)
        __builtin_trap();
    presence_event_packet(&b, join, room, rl, user, ul);
    if (b.len < 2 || json_validate(b.data + 2, b.len - 2) != 0)
        __builtin_trap();
    buf_free(&b);
    return 0;
}
