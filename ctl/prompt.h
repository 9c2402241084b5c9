/*
 * prompt: the commands of streamioctl's interactive mode, the `SERVER>` prompt of the seed's
 * Node server (status, rooms, clients, broadcast <message>, sendroom <room> <message>, exit),
 * turned into the one-shot commands the master serves. A message is sent as the argument of event
 * `message`: as it is when it is valid JSON, else as a JSON string. Pure: the line editor and the
 * control socket are streamioctl's.
 */
#ifndef STREAMIO_CTL_PROMPT_H
#define STREAMIO_CTL_PROMPT_H

#include <stddef.h>

#include "common/buf.h"

#define PROMPT_TEXT "SERVER> "
#define PROMPT_EVENT "message" /* the event `broadcast` and `sendroom` emit */
#define PROMPT_MAX_ARGS 4

typedef enum prompt_rc {
    PROMPT_RUN = 0, /* *argc arguments to send */
    PROMPT_EMPTY,   /* a blank line: nothing to do */
    PROMPT_EXIT,    /* exit or quit */
    PROMPT_HELP,    /* help: print PROMPT_HELP_TEXT */
    PROMPT_BAD,     /* *why says what is wrong */
} prompt_rc_t;

#define PROMPT_HELP_TEXT                                                                           \
    "status | rooms | clients | broadcast <message> | sendroom <room> <message> | exit\n"

/*
 * Parses one line (without its newline). On PROMPT_RUN, argv[0..*argc) hold the command's
 * arguments: they point into `line` (which is modified) or into `json` (reset here, where a
 * message is written as JSON). *why is a static text on PROMPT_BAD.
 */
prompt_rc_t prompt_parse(char *line, buf_t *json, const char *argv[PROMPT_MAX_ARGS], int *argc,
                         const char **why);

#endif
