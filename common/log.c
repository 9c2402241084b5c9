/* log: see log.h. Lines are assembled in a stack buffer and written with a single write(2). */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static log_level_t log_level = LOG_LVL_INFO;
static char log_role[32] = "streamio";
static bool log_json = false;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void log_setup(log_level_t level, const char *role, int slot)
{
    log_level = level;
    if (slot >= 0)
        snprintf(log_role, sizeof(log_role), "%s %d", role, slot);
    else
        snprintf(log_role, sizeof(log_role), "%s", role);
}

int log_level_parse(const char *s, log_level_t *out)
{
    for (int i = 0; i <= LOG_LVL_DEBUG; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (log_level_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

int log_format_parse(const char *s, bool *json)
{
    if (strcasecmp(s, "text") == 0 || !*s)
        *json = false;
    else if (strcasecmp(s, "json") == 0)
        *json = true;
    else
        return -EINVAL;
    return 0;
}

void log_set_json(bool json)
{
    log_json = json;
}

/*
 * Escapes src into dst (at most cap-1 bytes, always terminated); returns bytes written. Messages
 * carry names from clients and Redis (rooms, streams, channels): a control character in one
 * must never start a forged line or drive a terminal. Text: \n \r \t, other controls and DEL
 * as \xNN. JSON: '"' and '\\' escaped, controls as \u00NN.
 */
static size_t escape(char *dst, size_t cap, const char *src, size_t len, bool json)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len && o + 7 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        const char *short_form = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        if (json && (c == '"' || c == '\\')) {
            dst[o++] = '\\';
            dst[o++] = (char)c;
        } else if (json && c < 0x20) {
            memcpy(dst + o, "\\u00", 4);
            dst[o + 4] = hex[c >> 4];
            dst[o + 5] = hex[c & 15];
            o += 6;
        } else if (short_form) {
            memcpy(dst + o, short_form, 2);
            o += 2;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(dst + o, "\\x", 2);
            dst[o + 2] = hex[c >> 4];
            dst[o + 3] = hex[c & 15];
            o += 4;
        } else {
            dst[o++] = (char)c;
        }
    }
    dst[o] = '\0';
    return o;
}

bool log_enabled(log_level_t level)
{
    return level <= log_level;
}

void log_write(log_level_t level, const char *fmt, ...)
{
    char line[4096];
    char msg[2048];
    char ts[64];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long)(tv.tv_usec / 1000));
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t mlen = m < 0 ? 0 : (size_t)m >= sizeof(msg) ? sizeof(msg) - 1 : (size_t)m;
    int n;
    char esc[sizeof(line) - 256];
    escape(esc, sizeof(esc), msg, mlen, log_json);
    if (log_json) {
        n = snprintf(line, sizeof(line) - 1,
                     "{\"time\":\"%s\",\"level\":\"%s\",\"role\":\"%s\",\"pid\":%d,\"msg\":\"%s\"}",
                     ts, level_names[level], log_role, (int)getpid(), esc);
    } else {
        n = snprintf(line, sizeof(line) - 1, "%s [%s] [%s:%d] %s", ts, level_names[level], log_role,
                     (int)getpid(), esc);
    }
    size_t len = n < 0 ? 0 : (size_t)n;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere left to report a failed log write */
}
