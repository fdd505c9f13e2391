/*
 * The commands that change records share one path: open the node at the
 * head of main, validate the record against the schemas in force there
 * (printing every failure), and commit it as a signed edit on that base.
 */
#ifndef CARTOSYNC_RECORD_EDIT_H
#define CARTOSYNC_RECORD_EDIT_H

#include <jansson.h>

#include "cartosync/consortium.h"
#include "cartosync/node.h"
#include "cli.h"

typedef struct {
	cli_ctx *cli;
	cs_node *node;
	cs_oid head;            /* the base the edit is made on */
	cs_consortium *state;   /* as of head: schemas in force, policy */
} record_session;

/* Open at the head of main.  Returns 0 or an exit status. */
int record_session_open(record_session *s, cli_ctx *cli);

/* Open on another base commit (an edit started earlier). */
int record_session_open_at(record_session *s, cli_ctx *cli, const cs_oid *base);

void record_session_close(record_session *s);

/*
 * Print every schema failure of `record` as "<path>: <pointer>: <message>"
 * and return 0 if it is valid, EXIT_ERROR if not.
 */
int record_session_check(record_session *s, const json_t *record);

/*
 * Check, then commit `record` on the session's base with the message
 * "<verb> <type> <id>"; reports the commit (and --json).  Returns an exit
 * status.
 */
int record_session_put(record_session *s, const json_t *record,
		       const char *verb);

#endif
