/*
 * cartosync benchmarks — what the bench_*.c programs share (bench_util.c).
 *
 * A benchmark prints its figures beside a reference measured in the same
 * run on the same machine, and never asserts a time.  Results are printed
 * as aligned lines between "# results" and "# end", which tests/bench/run
 * collects into its summary table:
 *
 *   name  value  unit  reference  ratio
 *
 * where ratio is value / reference value (above 1: faster than the
 * reference for a rate).
 */
#ifndef CARTOSYNC_BENCH_H
#define CARTOSYNC_BENCH_H

#include <stddef.h>
#include <jansson.h>

#include "cartosync/node.h"

/* Monotonic wall clock, in seconds. */
double bench_now(void);

/* The source tree (for schema/ and tests/data/), the cartosync program
 * ($CARTOSYNC) and the daemon ($CARTOSYNCD), else those of the build. */
const char *bench_source_root(void);
const char *bench_cartosync(void);
const char *bench_cartosyncd(void);

/* A progress line on stderr, stamped with the seconds since the start. */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Exit with a message naming what failed (and cs_error_last() if set). */
void bench_die(const char *what) __attribute__((noreturn));

/*
 * Parse "--name N" / "--name=N" from argv: the value, or `def`.  Exits
 * with a usage message on an unknown option or a malformed number.
 */
long bench_arg_long(int argc, char **argv, const char *name, long def);
int bench_arg_flag(int argc, char **argv, const char *name);
void bench_args_check(int argc, char **argv, const char *const *known,
                      const char *usage);

/* A fresh directory under $TMPDIR (or /tmp), removed by bench_rmtree(). */
char *bench_tmpdir(const char *tag);
void bench_rmtree(const char *path);

/*
 * Run `cmd` with sh -c: bench_sh() returns the exit status (-1 if it could
 * not run), bench_sh_time() the wall time in seconds (negative on
 * failure), bench_sh_output() its standard output (malloc'd, NULL on
 * failure).
 */
int bench_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
double bench_sh_time(const char *fmt, ...)
        __attribute__((format(printf, 1, 2)));
char *bench_sh_output(const char *fmt, ...)
        __attribute__((format(printf, 1, 2)));

/* Quote `s` for sh in a static ring of buffers (paths only). */
const char *bench_q(const char *s);

/*
 * `openssl speed [-multi P] -seconds N ed25519`: sign/s and verify/s of
 * `procs` processes together.  Returns 0, or -1 if openssl is not
 * installed or its output changed.
 */
int bench_openssl_ed25519(double *sign, double *verify, int seconds, int procs);

/* Sample records of tests/data/sample (partners and shared), whose file
 * name starts with `prefix` ("service-", or "" for all), as a new array. */
json_t *bench_samples(const char *prefix);

/*
 * A new record made from `sample`: a new id, x_owner `owner` (and
 * x_verified.by when the owner is an organisation), x_status "proposed",
 * its name and description suffixed with `n` so that every variant is a
 * distinct file.
 */
json_t *bench_variant(const json_t *sample, const char *owner, unsigned long n);

/*
 * Make a consortium with the real `cartosync` program: the coordinator
 * node dir/<orgs[0]> (its genesis, with the root key dir/root) and, for
 * each other org, a node joined to it and admitted as a member by the
 * coordinator.  Afterwards every node has the history with all the
 * admissions.  Exits on failure.
 */
void bench_consortium(const char *dir, const char *const *orgs, size_t norgs);

/*
 * Generate a linear history of `ncommits` signed edits on top of
 * nodes[0]'s main, in nodes[0]'s repository, and move its main there.
 * Each edit adds `per_commit` records made by bench_variant() from the
 * service samples (one record in ten owned by "shared", the others by the
 * signer); the nodes sign in turn, `block` commits each.  The edits are
 * made with the library's commit pieces (cs_commit_format_payload,
 * cs_sshsig_sign, cs_commit_add_signature) and stored through a libgit2
 * mempack written out every few thousand commits as a pack of the new
 * objects (not repacked: `git repack -ad` for one pack).  With per_commit 1 each message is "records: add service ID".
 * Call after bench_durable(0), for speed.  Exits on failure.
 */
void bench_generate_packed(cs_node *const *nodes, size_t nnodes,
                           size_t ncommits, size_t block, size_t per_commit);

/*
 * Turn off fsync of objects and refs (libgit2's
 * GIT_OPT_ENABLE_FSYNC_GITDIR, which the library enables when it first
 * opens a repository) to generate histories quickly, or turn it back on
 * for what is timed.  Call after the first cs_node_open().
 */
void bench_durable(int on);

/*
 * Record one result: `value` `unit` beside `ref_value` `ref_unit` measured
 * by `ref_name` in the same run.  A reference <= 0 prints "n/a"
 * (unavailable).
 */
void bench_result(const char *name, double value, const char *unit,
                  const char *ref_name, double ref_value, const char *ref_unit);

/*
 * Print the recorded results: "# results", the column titles, one aligned
 * line per result, "# end".
 */
void bench_results_print(void);

#endif
