/* presence_store: see presence_store.h. */
#include "common/bridge/presence_store.h"

#include <errno.h>
#include <string.h>

#include "common/decimal.h"
#include "common/json.h"

/* The scripts. A room's per-writer hash is KEYS[1] .. ':' .. writer: the same tag, one slot. */

/* KEYS room set, room:S; ARGV S, user, delta -> {total, mine} */
static const char ROOM_CHANGE[] =
    "local c = redis.call('HINCRBY', KEYS[2], ARGV[2], ARGV[3])\n"
    "if c <= 0 then redis.call('HDEL', KEYS[2], ARGV[2]) end\n"
    "if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('SADD', KEYS[1], ARGV[1])\n"
    "else redis.call('SREM', KEYS[1], ARGV[1]) end\n"
    "local n = 0\n"
    "for _, s in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  n = n + (tonumber(redis.call('HGET', KEYS[1] .. ':' .. s, ARGV[2])) or 0)\n"
    "end\n"
    "return {n, c}\n";

/* KEYS room set; ARGV dead writers -> user, n, user, n... sorted */
static const char ROOM_QUERY[] =
    "local dead = {}\n"
    "for i = 1, #ARGV do dead[ARGV[i]] = true end\n"
    "local n, order = {}, {}\n"
    "for _, s in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  if not dead[s] then\n"
    "    local h = redis.call('HGETALL', KEYS[1] .. ':' .. s)\n"
    "    for i = 1, #h, 2 do\n"
    "      if not n[h[i]] then n[h[i]] = 0; order[#order + 1] = h[i] end\n"
    "      n[h[i]] = n[h[i]] + tonumber(h[i + 1])\n"
    "    end\n"
    "  end\n"
    "end\n"
    "table.sort(order)\n"
    "local out = {}\n"
    "for _, u in ipairs(order) do\n"
    "  if n[u] > 0 then out[#out + 1] = u; out[#out + 1] = n[u] end\n"
    "end\n"
    "return out\n";

/* KEYS room set, room:D; ARGV D -> users whose total fell to 0 */
static const char ROOM_CLEAN[] =
    "local h = redis.call('HGETALL', KEYS[2])\n"
    "redis.call('DEL', KEYS[2])\n"
    "redis.call('SREM', KEYS[1], ARGV[1])\n"
    "local gone = {}\n"
    "for i = 1, #h, 2 do\n"
    "  local n = 0\n"
    "  for _, s in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "    n = n + (tonumber(redis.call('HGET', KEYS[1] .. ':' .. s, h[i])) or 0)\n"
    "  end\n"
    "  if n <= 0 and tonumber(h[i + 1]) > 0 then gone[#gone + 1] = h[i] end\n"
    "end\n"
    "return gone\n";

/* KEYS room set, room:S; ARGV S, user, n, user, n... */
static const char ROOM_SET[] = "redis.call('DEL', KEYS[2])\n"
                               "for i = 2, #ARGV - 1, 2 do\n"
                               "  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])\n"
                               "end\n"
                               "if #ARGV > 1 then redis.call('SADD', KEYS[1], ARGV[1])\n"
                               "else redis.call('SREM', KEYS[1], ARGV[1]) end\n"
                               "return #ARGV\n";

/* Sum of a user hash, and Redis' time in ms (both user scripts end with it). */
#define USER_TOTAL_AND_TIME                                                                        \
    "local n = 0\n"                                                                                \
    "for _, v in ipairs(redis.call('HVALS', KEYS[1])) do n = n + tonumber(v) end\n"                \
    "local t = redis.call('TIME')\n"                                                               \
    "local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

/* KEYS user; ARGV S, delta, max -> {total or -1, mine, ms} */
static const char USER_CHANGE[] =
    USER_TOTAL_AND_TIME "local d, max = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
                        "if d > 0 and max > 0 and n >= max then return {-1, 0, ms} end\n"
                        "local c = redis.call('HINCRBY', KEYS[1], ARGV[1], d)\n"
                        "if c <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end\n"
                        "if c < 0 then return {n, c, ms} end\n"
                        "return {n + d, c, ms}\n";

/* KEYS user; ARGV D -> {total, D's count before, ms} */
static const char USER_CLEAN[] =
    "local c = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')\n"
    "redis.call('HDEL', KEYS[1], ARGV[1])\n" USER_TOTAL_AND_TIME "return {n, c, ms}\n";

/* KEYS user; ARGV S, n */
static const char USER_SET[] = "if tonumber(ARGV[2]) > 0 then\n"
                               "  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
                               "else redis.call('HDEL', KEYS[1], ARGV[1]) end\n"
                               "return 0\n";

void presence_prefix(buf_t *prefix, const char *redis_key)
{
    buf_reset(prefix);
    buf_printf(prefix, "%s:presence", redis_key);
}

/* name as a whole hash tag: {escaped} */
static void tag(buf_t *b, const char *p, size_t len)
{
    buf_putc(b, '{');
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '%')
            buf_puts(b, "%25");
        else if (p[i] == '{')
            buf_puts(b, "%7B");
        else if (p[i] == '}')
            buf_puts(b, "%7D");
        else
            buf_putc(b, p[i]);
    }
    buf_putc(b, '}');
}

/* A key "<prefix>:<kind>:{<name>}[:<suffix>]" written into c's text, marked as its key when
 * `route`. */
static void key(rcmd_t *c, const char *prefix, const char *kind, const char *name, size_t len,
                const char *suffix, size_t suffix_len, bool route)
{
    rcmd_begin(c);
    buf_t *b = rcmd_text(c);
    buf_printf(b, "%s:%s:", prefix, kind);
    tag(b, name, len);
    if (suffix) {
        buf_putc(b, ':');
        buf_append(b, suffix, suffix_len);
    }
    rcmd_end(c);
    if (route)
        rcmd_mark_key(c);
}

static void eval(rcmd_t *c, const char *script, int nkeys)
{
    rcmd_reset(c);
    rcmd_str(c, "EVAL");
    rcmd_str(c, script);
    rcmd_i64(c, nkeys);
}

void presence_cmd_room_change(rcmd_t *c, const char *prefix, const char *server, const char *room,
                              size_t room_len, const char *user, size_t user_len, int delta)
{
    eval(c, ROOM_CHANGE, 2);
    key(c, prefix, "room", room, room_len, NULL, 0, true);
    key(c, prefix, "room", room, room_len, server, strlen(server), false);
    rcmd_str(c, server);
    rcmd_arg(c, user, user_len);
    rcmd_i64(c, delta);
}

void presence_cmd_room_query(rcmd_t *c, const char *prefix, const char *room, size_t room_len,
                             const char *const *dead, size_t ndead)
{
    eval(c, ROOM_QUERY, 1);
    key(c, prefix, "room", room, room_len, NULL, 0, true);
    for (size_t i = 0; i < ndead; i++)
        rcmd_str(c, dead[i]);
}

void presence_cmd_room_clean(rcmd_t *c, const char *prefix, const char *room, size_t room_len,
                             const char *server, size_t server_len)
{
    eval(c, ROOM_CLEAN, 2);
    key(c, prefix, "room", room, room_len, NULL, 0, true);
    key(c, prefix, "room", room, room_len, server, server_len, false);
    rcmd_arg(c, server, server_len);
}

void presence_cmd_room_set(rcmd_t *c, const char *prefix, const char *server, const char *room,
                           size_t room_len, const char *const *users, const size_t *user_lens,
                           const uint64_t *counts, size_t n)
{
    eval(c, ROOM_SET, 2);
    key(c, prefix, "room", room, room_len, NULL, 0, true);
    key(c, prefix, "room", room, room_len, server, strlen(server), false);
    rcmd_str(c, server);
    for (size_t i = 0; i < n; i++) {
        rcmd_arg(c, users[i], user_lens[i]);
        rcmd_u64(c, counts[i]);
    }
}

void presence_cmd_user_change(rcmd_t *c, const char *prefix, const char *server, const char *user,
                              size_t user_len, int delta, int max)
{
    eval(c, USER_CHANGE, 1);
    key(c, prefix, "user", user, user_len, NULL, 0, true);
    rcmd_str(c, server);
    rcmd_i64(c, delta);
    rcmd_i64(c, max);
}

void presence_cmd_user_clean(rcmd_t *c, const char *prefix, const char *user, size_t user_len,
                             const char *server, size_t server_len)
{
    eval(c, USER_CLEAN, 1);
    key(c, prefix, "user", user, user_len, NULL, 0, true);
    rcmd_arg(c, server, server_len);
}

void presence_cmd_user_set(rcmd_t *c, const char *prefix, const char *server, const char *user,
                           size_t user_len, uint64_t count)
{
    eval(c, USER_SET, 1);
    key(c, prefix, "user", user, user_len, NULL, 0, true);
    rcmd_str(c, server);
    rcmd_u64(c, count);
}

/* P:servers */
static void servers_key(rcmd_t *c, const char *prefix)
{
    rcmd_begin(c);
    buf_printf(rcmd_text(c), "%s:servers", prefix);
    rcmd_end(c);
    rcmd_mark_key(c);
}

void presence_cmd_heartbeat(rcmd_t *c, const char *prefix, const char *server, uint64_t now_ms)
{
    rcmd_reset(c);
    rcmd_str(c, "ZADD");
    servers_key(c, prefix);
    rcmd_u64(c, now_ms);
    rcmd_str(c, server);
}

void presence_cmd_expired(rcmd_t *c, const char *prefix, uint64_t before_ms, unsigned limit)
{
    rcmd_reset(c);
    rcmd_str(c, "ZRANGEBYSCORE");
    servers_key(c, prefix);
    rcmd_str(c, "-inf");
    rcmd_begin(c);
    buf_printf(rcmd_text(c), "(%llu", (unsigned long long)before_ms);
    rcmd_end(c);
    rcmd_str(c, "LIMIT");
    rcmd_str(c, "0");
    rcmd_u64(c, limit);
}

void presence_cmd_forget(rcmd_t *c, const char *prefix, const char *server, size_t server_len)
{
    rcmd_reset(c);
    rcmd_str(c, "ZREM");
    servers_key(c, prefix);
    rcmd_arg(c, server, server_len);
}

void presence_cmd_index_drop(rcmd_t *c, const char *prefix, const char *server, size_t server_len)
{
    rcmd_reset(c);
    rcmd_str(c, "DEL");
    key(c, prefix, "srv", server, server_len, NULL, 0, true);
}

void presence_cmd_index_add(rcmd_t *c, const char *prefix, const char *server, char kind,
                            const char *name, size_t len)
{
    rcmd_reset(c);
    rcmd_str(c, "HSET");
    key(c, prefix, "srv", server, strlen(server), NULL, 0, true);
    rcmd_begin(c);
    buf_putc(rcmd_text(c), kind);
    buf_putc(rcmd_text(c), ':');
    buf_append(rcmd_text(c), name, len);
    rcmd_end(c);
    rcmd_str(c, "1");
}

void presence_cmd_index_read(rcmd_t *c, const char *prefix, const char *server, size_t server_len)
{
    rcmd_reset(c);
    rcmd_str(c, "HGETALL");
    key(c, prefix, "srv", server, server_len, NULL, 0, true);
}

void presence_cmd_state(rcmd_t *c, const char *stream, int maxlen, const char *user,
                        size_t user_len, bool online, uint64_t ts_ms)
{
    rcmd_reset(c);
    rcmd_str(c, "XADD");
    rcmd_str(c, stream);
    rcmd_mark_key(c);
    if (maxlen > 0) {
        rcmd_str(c, "MAXLEN");
        rcmd_str(c, "~");
        rcmd_i64(c, maxlen);
    }
    rcmd_str(c, "*");
    rcmd_str(c, "user");
    rcmd_arg(c, user, user_len);
    rcmd_str(c, "state");
    rcmd_str(c, online ? "online" : "offline");
    rcmd_str(c, "ts");
    rcmd_u64(c, ts_ms);
}

/* ---- replies ---- */

static bool ints(const redisReply *r, size_t n)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (r->element[i]->type != REDIS_REPLY_INTEGER)
            return false;
    }
    return true;
}

int presence_reply_change(const redisReply *r, int64_t *total, int64_t *mine)
{
    if (!ints(r, 2))
        return -EPROTO;
    *total = r->element[0]->integer;
    *mine = r->element[1]->integer;
    return 0;
}

int presence_reply_user(const redisReply *r, int64_t *total, int64_t *mine, uint64_t *ts_ms)
{
    if (!ints(r, 3) || r->element[2]->integer < 0)
        return -EPROTO;
    *total = r->element[0]->integer;
    *mine = r->element[1]->integer;
    *ts_ms = (uint64_t)r->element[2]->integer;
    return 0;
}

int presence_reply_names(const redisReply *r, void (*fn)(const char *p, size_t len, void *arg),
                         void *arg)
{
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return -EPROTO;
    for (size_t i = 0; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING)
            return -EPROTO;
    }
    for (size_t i = 0; i < r->elements; i++)
        fn(r->element[i]->str, r->element[i]->len, arg);
    return 0;
}

int presence_reply_index(const redisReply *r,
                         void (*fn)(char kind, const char *p, size_t len, void *arg), void *arg)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements % 2)
        return -EPROTO;
    for (size_t i = 0; i < r->elements; i += 2) {
        const redisReply *f = r->element[i];
        if (f->type != REDIS_REPLY_STRING)
            return -EPROTO;
        if (f->len >= 2 && (f->str[0] == 'r' || f->str[0] == 'u') && f->str[1] == ':')
            fn(f->str[0], f->str + 2, f->len - 2, arg);
    }
    return 0;
}

int presence_reply_users(const redisReply *r, const char *room, size_t room_len, buf_t *json)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements % 2)
        return -EPROTO;
    long long conns = 0;
    for (size_t i = 0; i < r->elements; i += 2) {
        /* the counts are Redis content: a total past long long is refused, not wrapped (UB) */
        if (r->element[i]->type != REDIS_REPLY_STRING ||
            r->element[i + 1]->type != REDIS_REPLY_INTEGER ||
            __builtin_add_overflow(conns, r->element[i + 1]->integer, &conns))
            return -EPROTO;
    }
    buf_puts(json, "{\"roomId\":");
    json_write_string(json, room, room_len);
    buf_puts(json, ",\"users\":[");
    for (size_t i = 0; i < r->elements; i += 2) {
        buf_puts(json, i ? ",{\"user\":" : "{\"user\":");
        json_write_string(json, r->element[i]->str, r->element[i]->len);
        buf_printf(json, ",\"connections\":%lld}", r->element[i + 1]->integer);
    }
    buf_printf(json, "],\"userCount\":%zu,\"connectionCount\":%lld}", r->elements / 2, conns);
    return 0;
}

/* ---- events ---- */

void presence_channel(buf_t *out, const char *redis_key)
{
    buf_reset(out);
    buf_printf(out, "%s-presence", redis_key);
}

void presence_event_encode(buf_t *out, bool join, const char *room, size_t room_len,
                           const char *user, size_t user_len)
{
    buf_reset(out);
    buf_printf(out, "%c%zu:", join ? 'j' : 'l', room_len);
    buf_append(out, room, room_len);
    buf_append(out, user, user_len);
}

int presence_event_decode(const char *msg, size_t len, bool *join, const char **room,
                          size_t *room_len, const char **user, size_t *user_len)
{
    if (len < 3 || (msg[0] != 'j' && msg[0] != 'l'))
        return -EINVAL;
    uint64_t n;
    size_t i = 1 + decimal_read(msg + 1, len - 1, 7, &n); /* the room's length */
    if (i == 1 || i >= len || msg[i] != ':' || (msg[1] == '0' && i > 2))
        return -EINVAL;
    i++;
    if (n == 0 || n > len - i || len - i - n == 0 || len - i - n > PRESENCE_USER_MAX)
        return -EINVAL;
    *join = msg[0] == 'j';
    *room = msg + i;
    *room_len = (size_t)n;
    *user = msg + i + n;
    *user_len = len - i - n;
    return 0;
}

void presence_event_packet(buf_t *out, bool join, const char *room, size_t room_len,
                           const char *user, size_t user_len)
{
    buf_reset(out);
    buf_puts(out,
             join ? "42[\"presence:join\",{\"roomId\":" : "42[\"presence:leave\",{\"roomId\":");
    json_write_string(out, room, room_len);
    buf_puts(out, ",\"user\":");
    json_write_string(out, user, user_len);
    buf_puts(out, "}]");
}
