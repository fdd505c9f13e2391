/*
 * cartosync command line: shared helpers of the commands (cmd_*.c).
 *
 * Human text goes to stderr, --json output to stdout.  Exit status: 0
 * success, 1 error, 2 usage, 3 verification failed (docs/cli.md).
 */
#ifndef CARTOSYNC_CLI_H
#define CARTOSYNC_CLI_H

#include <stddef.h>
#include <jansson.h>

#include "cartosync/node.h"
#include "cartosync/oid.h"
#include "cartosync/verify.h"

enum {
	EXIT_OK = 0,
	EXIT_ERROR = 1,
	EXIT_USAGE = 2,
	EXIT_VERIFY = 3,
};

typedef struct {
	const char *dir; /* the node directory */
	int json;        /* --json: machine output on stdout */
} cli_ctx;

typedef struct {
	const char *name;
	int (*run)(cli_ctx *cli, int argc, char **argv);
	const char *summary;
} cli_command;

/* Print "cartosync: <the library's last error>" and map the code. */
int cli_fail(int code);

/* Print "cartosync: <message>" and return EXIT_ERROR. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print a usage error and the command's usage; return EXIT_USAGE. */
int cli_usage(const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* "-h"/"--help" among the arguments: print usage to stdout, return 1. */
int cli_help_requested(int argc, char **argv, const char *usage);

/* Human output, on stderr. */
void cli_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Open the node (cli->dir). */
int cli_open_node(cli_ctx *cli, cs_node **out);

/* The head of main, or a clear error if the node has no history yet. */
int cli_main_head(cs_node *node, cs_oid *out);

/* Read a whole file ("-": standard input), up to `max` bytes. */
int cli_read_input(char **out, size_t *outlen, const char *path, size_t max);

/* Print a JSON value on stdout (indented, keys sorted, newline). */
void cli_print_json(const json_t *value);

/* Today's date in UTC, YYYY-MM-DD. */
void cli_today(char out[11]);

/*
 * Report an edit ("committed 1a2b3c4...").  An edit made on a base that
 * main has left is held by its own ref: merge it now.  Returns an exit
 * status.
 */
int cli_report_commit(cli_ctx *cli, cs_node *node, const cs_oid *commit,
		      int in_main);

/* Resolve a commit id or a ref name ("main", "refs/peers/x/main"). */
int cli_resolve(cs_oid *out, cs_repo *repo, const char *rev);

/* Print the causes of a verification's rejections on stderr. */
void cli_print_rejections(const cs_verify_report *report);

/*
 * Fetch SOURCE as peer PEER (cs_sync_fetch), report what was kept and what
 * was quarantined, then fold it into main unless !merge (cmd_fetch.c).
 * Returns an exit status: EXIT_VERIFY when commits were rejected.
 */
int cli_fetch(cli_ctx *cli, cs_node *node, const char *source,
	      const char *peer, int merge);

/* Fold what the node holds into main and report it (cmd_merge.c). */
int cli_integrate(cli_ctx *cli, cs_node *node);

/* Run $VISUAL, $EDITOR or vi on a file; an error if it fails. */
int cli_run_editor(const char *path);

/* The schema directory installed with the software. */
const char *cli_installed_schema_dir(void);

/* Commands. */
int cmd_init(cli_ctx *cli, int argc, char **argv);
int cmd_keys(cli_ctx *cli, int argc, char **argv);
int cmd_members(cli_ctx *cli, int argc, char **argv);
int cmd_merge(cli_ctx *cli, int argc, char **argv);
int cmd_root(cli_ctx *cli, int argc, char **argv);
int cmd_add(cli_ctx *cli, int argc, char **argv);
int cmd_edit(cli_ctx *cli, int argc, char **argv);
int cmd_fetch(cli_ctx *cli, int argc, char **argv);
int cmd_sync(cli_ctx *cli, int argc, char **argv);
int cmd_bundle(cli_ctx *cli, int argc, char **argv);
int cmd_peers(cli_ctx *cli, int argc, char **argv);
int cmd_status(cli_ctx *cli, int argc, char **argv);
int cmd_rm(cli_ctx *cli, int argc, char **argv);
int cmd_show(cli_ctx *cli, int argc, char **argv);
int cmd_list(cli_ctx *cli, int argc, char **argv);
int cmd_log(cli_ctx *cli, int argc, char **argv);
int cmd_validate(cli_ctx *cli, int argc, char **argv);
int cmd_verify(cli_ctx *cli, int argc, char **argv);
int cmd_publish(cli_ctx *cli, int argc, char **argv);
int cmd_retire(cli_ctx *cli, int argc, char **argv);
int cmd_confirm(cli_ctx *cli, int argc, char **argv);
int cmd_conflicts(cli_ctx *cli, int argc, char **argv);

#endif
