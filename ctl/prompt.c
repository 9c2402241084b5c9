/* prompt: see prompt.h. */
#include "ctl/prompt.h"

#include <string.h>

#include "common/json.h"

static char *skip_blanks(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* The next word of *p, NUL-terminated in place; *p moves past it and its blanks. */
static char *word(char **p)
{
    char *w = skip_blanks(*p);
    char *e = w;
    while (*e && *e != ' ' && *e != '\t')
        e++;
    *p = skip_blanks(e);
    if (*e)
        *e = '\0';
    return w;
}

static void trim_end(char *p)
{
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
        p[--n] = '\0';
}

/* The message as the argument of the event: JSON as given, or a JSON string of the text. */
static const char *message(const char *text, buf_t *json)
{
    buf_reset(json);
    if (json_validate(text, strlen(text)) == 0)
        buf_puts(json, text);
    else
        json_write_string(json, text, strlen(text));
    return json->data;
}

prompt_rc_t prompt_parse(char *line, buf_t *json, const char *argv[PROMPT_MAX_ARGS], int *argc,
                         const char **why)
{
    trim_end(line);
    char *rest = line;
    char *cmd = word(&rest);
    *argc = 0;
    if (!*cmd)
        return PROMPT_EMPTY;
    if (!strcmp(cmd, "exit") || !strcmp(cmd, "quit"))
        return *rest ? (*why = "exit takes no argument", PROMPT_BAD) : PROMPT_EXIT;
    if (!strcmp(cmd, "help") || !strcmp(cmd, "?"))
        return PROMPT_HELP;
    if (!strcmp(cmd, "status") || !strcmp(cmd, "rooms") || !strcmp(cmd, "clients")) {
        if (*rest) {
            *why = "status, rooms and clients take no argument";
            return PROMPT_BAD;
        }
        argv[(*argc)++] = cmd;
        return PROMPT_RUN;
    }
    if (!strcmp(cmd, "broadcast")) {
        if (!*rest) {
            *why = "usage: broadcast <message>";
            return PROMPT_BAD;
        }
        argv[0] = cmd;
        argv[1] = PROMPT_EVENT;
        argv[2] = message(rest, json);
        *argc = 3;
        return PROMPT_RUN;
    }
    if (!strcmp(cmd, "sendroom")) {
        char *room = word(&rest);
        if (!*room || !*rest) {
            *why = "usage: sendroom <room> <message>";
            return PROMPT_BAD;
        }
        argv[0] = cmd;
        argv[1] = room;
        argv[2] = PROMPT_EVENT;
        argv[3] = message(rest, json);
        *argc = 4;
        return PROMPT_RUN;
    }
    *why = "unknown command (help lists them)";
    return PROMPT_BAD;
}
