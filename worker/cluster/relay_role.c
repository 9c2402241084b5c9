/* relay_role: see relay_role.h. */
#include "worker/cluster/relay_role.h"

bool relay_role_candidate(uint32_t nslots, uint32_t me, relay_view_fn view, void *arg)
{
    relay_slot_t s;
    view(me, &s, arg);
    if (s.draining)
        return false;
    for (uint32_t i = 0; i < me && i < nslots; i++) {
        view(i, &s, arg);
        if (s.live && !s.draining)
            return false;
    }
    return true;
}

bool relay_role_subscribe(uint32_t nslots, uint32_t me, relay_view_fn view, void *arg)
{
    relay_slot_t mine;
    view(me, &mine, arg);
    return mine.up || mine.holds || relay_role_candidate(nslots, me, view, arg);
}

void relay_role_others(uint32_t nslots, uint32_t me, relay_view_fn view, void *arg,
                       relay_others_t *out)
{
    *out = (relay_others_t){0};
    for (uint32_t i = 0; i < nslots; i++) {
        relay_slot_t s;
        if (i == me)
            continue;
        view(i, &s, arg);
        if (!s.live)
            continue;
        out->all |= s.up;
        out->any |= s.up || s.holds;
        out->successor |= !s.draining;
    }
}
