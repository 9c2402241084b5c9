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

bool log_enabled(log_level_t level)
{
    return level <= log_level;
}

void log_write(log_level_t level, const char *fmt, ...)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ [%s] [%s:%d] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)(tv.tv_usec / 1000), level_names[level], log_role, (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere left to report a failed log write */
}
