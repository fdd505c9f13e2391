#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cartosync/error.h"
#include "cli.h"

int
cli_fail(int code)
{
	fprintf(stderr, "cartosync: %s\n", cs_error_last());
	return code == CS_EVERIFY ? EXIT_VERIFY : EXIT_ERROR;
}

int
cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("cartosync: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_ERROR;
}

int
cli_usage(const char *usage, const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		fputs("cartosync: ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fprintf(stderr, "%s", usage);
	return EXIT_USAGE;
}

int
cli_help_requested(int argc, char **argv, const char *usage)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			fputs(usage, stdout);
			return 1;
		}
	}
	return 0;
}

void
cli_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

int
cli_open_node(cli_ctx *cli, cs_node **out)
{
	int error = cs_node_open(out, cli->dir);

	if (error < 0)
		return cli_fail(error);
	return 0;
}

int
cli_main_head(cs_node *node, cs_oid *out)
{
	int error = cs_node_main(out, node);

	if (error == CS_ENOTFOUND) {
		cs_error_set(CS_ENOTFOUND,
			     "the node has no history yet: create it with"
			     " 'cartosync init --genesis' or join with"
			     " 'cartosync init --join'");
	}
	return error;
}

int
cli_read_input(char **out, size_t *outlen, const char *path, size_t max)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	size_t cap = 8192, len = 0;
	char *buf;

	*out = NULL;
	if (f == NULL)
		return cs_error_set(errno == ENOENT ? CS_ENOTFOUND : CS_ERROR,
				    "cannot read '%s': %s", path,
				    strerror(errno));
	if ((buf = malloc(cap)) == NULL) {
		if (f != stdin)
			fclose(f);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	for (;;) {
		size_t n;

		if (len + 1 >= cap) {
			char *grown;

			if (cap > max + 1) {
				free(buf);
				if (f != stdin)
					fclose(f);
				return cs_error_set(CS_ELIMIT,
						    "'%s' is larger than %zu"
						    " bytes",
						    path, max);
			}
			cap *= 2;
			if ((grown = realloc(buf, cap)) == NULL) {
				free(buf);
				if (f != stdin)
					fclose(f);
				return cs_error_set(CS_ERROR, "out of memory");
			}
			buf = grown;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		if (n == 0)
			break;
		len += n;
	}
	if (f != stdin)
		fclose(f);
	if (len > max) {
		free(buf);
		return cs_error_set(CS_ELIMIT, "'%s' is larger than %zu bytes",
				    path, max);
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

void
cli_print_json(const json_t *value)
{
	json_dumpf(value, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
	fputc('\n', stdout);
	fflush(stdout);
}

void
cli_today(char out[11])
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

int
cli_report_commit(cli_ctx *cli, cs_node *node, const cs_oid *commit,
		  int in_main)
{
	char hex[CS_OID_HEXSZ + 1];

	cs_oid_fmt(hex, commit);
	if (in_main)
		cli_say("committed %s\n", hex);
	else
		cli_say("committed %s on the version you started from; main"
			" had moved since: merging\n",
			hex);
	if (in_main)
		return EXIT_OK;
	/* --json output is the edit's; the merge reports on stderr. */
	{
		int json = cli->json, status;

		cli->json = 0;
		status = cli_integrate(cli, node);
		cli->json = json;
		return status;
	}
}

const char *
cli_installed_schema_dir(void)
{
	static char found[4096];
	const char *env = getenv("CARTOSYNC_SCHEMA_DIR");
	const char *candidates[] = {CS_DATADIR "/schema", CS_SOURCE_SCHEMA_DIR};
	struct stat st;

	if (env && *env)
		return env;
	for (size_t i = 0; i < sizeof(candidates) / sizeof(*candidates); i++) {
		snprintf(found, sizeof(found), "%s/service.schema.json",
			 candidates[i]);
		if (stat(found, &st) == 0)
			return candidates[i];
	}
	return candidates[0];
}

int
cli_resolve(cs_oid *out, cs_repo *repo, const char *rev)
{
	char name[256];

	if (cs_oid_parse(out, rev, strlen(rev)) == 0)
		return 0;
	if (strncmp(rev, "refs/", 5) == 0)
		return cs_repo_ref_read(out, repo, rev);
	snprintf(name, sizeof(name), "refs/heads/%s", rev);
	if (cs_repo_ref_read(out, repo, name) == 0)
		return 0;
	return cs_error_set(CS_ENOTFOUND,
			    "'%s' is neither a commit id nor a ref", rev);
}

int
cli_run_editor(const char *path)
{
	const char *editor = getenv("VISUAL");
	char *script = NULL;
	pid_t pid;
	int wstatus;

	if (editor == NULL || *editor == '\0')
		editor = getenv("EDITOR");
	if (editor == NULL || *editor == '\0')
		editor = "vi";
	if (asprintf(&script, "%s \"$1\"", editor) < 0)
		return cs_error_set(CS_ERROR, "out of memory");
	pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", script, "sh", path, (char *)NULL);
		_exit(127);
	}
	free(script);
	if (pid < 0 || waitpid(pid, &wstatus, 0) < 0)
		return cs_error_set(CS_ERROR, "cannot run the editor");
	if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0)
		return cs_error_set(CS_ERROR,
				    "the editor '%s' failed; nothing was"
				    " committed",
				    editor);
	return 0;
}

