/* relay_role: see relay_role.h. */
#include "worker/cluster/relay_role.h"

bool relay_role_subscribe(uint32_t nslots, uint32_t me, relay_view_fn view, void *arg)
{
    relay_slot_t mine;
    view(me, &mine, arg);
    bool candidate = !mine.draining, other_up = false;
    for (uint32_t i = 0; i < nslots; i++) {
        if (i == me)
            continue;
        relay_slot_t s;
        view(i, &s, arg);
        if (!s.live)
            continue;
        if (i < me && !s.draining)
            candidate = false;
        if (s.up)
            other_up = true;
    }
    return candidate || (mine.up && !other_up);
}

int64_t relay_role_holder(uint32_t nslots, relay_view_fn view, void *arg)
{
    for (uint32_t i = 0; i < nslots; i++) {
        relay_slot_t s;
        view(i, &s, arg);
        if (s.live && s.up)
            return i;
    }
    return -1;
}
