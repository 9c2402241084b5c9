/*
 * log: timestamped, levelled lines (text, or JSON objects) on stderr (journald keeps them), one
 * write(2) per line so lines from the master and its workers never interleave. Control
 * characters in a message (a room, stream or channel name from a client or Redis) are escaped,
 * so one call is always one line. The level and the
 * role tag are the process's log sink, the one piece of module state the house style allows.
 * Callers use the LOG_* macros, which test the level before any formatting work.
 */
#ifndef STREAMIO_COMMON_LOG_H
#define STREAMIO_COMMON_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum log_level {
    LOG_LVL_ERROR = 0,
    LOG_LVL_WARN = 1,
    LOG_LVL_INFO = 2,
    LOG_LVL_DEBUG = 3,
} log_level_t;

/* Sets the level and the tag printed on every line ("master", "worker 1"). Borrows nothing. */
void log_setup(log_level_t level, const char *role, int slot);
/* Parses "error|warn|info|debug" (case-insensitive). 0 or -EINVAL. */
int log_level_parse(const char *s, log_level_t *out);
/* Parses LOG_FORMAT: "text" (or empty) or "json", case-insensitive. 0 or -EINVAL. */
int log_format_parse(const char *s, bool *json);
/* json: one JSON object per line {time, level, role, pid, msg}; else the text form. */
void log_set_json(bool json);
bool log_enabled(log_level_t level);
/* For a failure that can repeat per message or per attempt: counts it in *count and says whether
 * to log this one (the 1st, 2nd, 4th, 8th...), so a flood stays visible in a few lines. */
static inline bool log_sampled(uint64_t *count)
{
    ++*count;
    return (*count & (*count - 1)) == 0;
}
void log_write(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_AT(lvl, ...)                                                                           \
    do {                                                                                           \
        if (log_enabled(lvl))                                                                      \
            log_write(lvl, __VA_ARGS__);                                                           \
    } while (0)
#define LOG_ERROR(...) LOG_AT(LOG_LVL_ERROR, __VA_ARGS__)
#define LOG_WARN(...) LOG_AT(LOG_LVL_WARN, __VA_ARGS__)
#define LOG_INFO(...) LOG_AT(LOG_LVL_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) LOG_AT(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
