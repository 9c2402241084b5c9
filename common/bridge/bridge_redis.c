/* bridge_redis: see bridge_redis.h. */
#include "common/bridge/bridge_redis.h"

static int client_command(void *ctx, const char *key, size_t key_len, redis_reply_fn cb, void *arg,
                          int argc, const char **argv, const size_t *lens)
{
    return redis_client_command(ctx, key, key_len, cb, arg, argc, argv, lens);
}

bridge_redis_t bridge_redis_over_client(redis_client_t *c)
{
    return (bridge_redis_t){.ctx = c, .command = client_command};
}
