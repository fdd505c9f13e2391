/*
 * cartosync — signed edit commits per second: cs_map_put() of one-record
 * edits on a map of --records records (default 10,000), beside stock
 * `git commit -S` (gpg.format=ssh, the same Ed25519 node key) in a work
 * tree holding the same files, measured in the same run.
 *
 * The consortium is made by the real program (coordinator mdm-be, member
 * alcs); the records are written by the alcs node with cs_node_commit(),
 * 1,000 a commit, without fsync.  Timed:
 *
 *   - --edits (default 1,000) cs_map_put() calls, each changing the
 *     description of one existing record on top of the previous edit,
 *     with fsync as in production (stopped after --max-seconds, default
 *     45, and the rate taken over the edits done); then --edits / 5 more
 *     without fsync, to show what durability costs;
 *   - --git-edits (default 50) `git add FILE && git commit -q -S` of the
 *     same kind of change, once with git's defaults (which do not fsync
 *     loose objects or refs) and once with core.fsync=committed (objects
 *     and refs fsynced, as cs_map_put does).
 *
 * Then, untimed in the table, where a cs_map_put() goes: the preflight
 * check (cs_verify_edit_preflight) and the SSHSIG signature measured
 * alone on the same kind of edit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/key.h"
#include "cartosync/map.h"
#include "cartosync/node.h"
#include "cartosync/record.h"
#include "cartosync/repo.h"
#include "cartosync/sshsig.h"
#include "cartosync/verify.h"
#include "bench.h"

static const char usage[] =
        "usage: bench_commit [--records N] [--edits N] [--git-edits N]"
        " [--max-seconds S]\n"
        "  --records N      records in the map (default 10000)\n"
        "  --edits N        cs_map_put edits timed with fsync (default 1000)\n"
        "  --git-edits N    git commit -S edits per git setting (default"
        " 50)\n"
        "  --max-seconds S  stop the fsync'd edits after S seconds (default"
        " 45)\n";

static const char *const orgs[] = {"mdm-be", "alcs"};
#define WRITER 1 /* alcs */
#define BATCH  1000

/* Write `n` records on the writer node; returns them (kept for edits). */
static json_t *
populate(cs_node *node, size_t n)
{
	json_t *samples = bench_samples(""), *records = json_array();
	size_t nsamples = json_array_size(samples);
	cs_tree_update *updates = calloc(BATCH, sizeof(*updates));
	cs_oid *blobs = calloc(BATCH, sizeof(*blobs));
	char **paths = calloc(BATCH, sizeof(*paths));
	double start = bench_now();
	cs_oid base, out;
	int in_main;

	if (updates == NULL || blobs == NULL || paths == NULL)
		bench_die("out of memory");
	if (cs_node_main(&base, node) < 0)
		bench_die("main");
	for (size_t done = 0; done < n;) {
		size_t count = n - done < BATCH ? n - done : BATCH;
		char message[64];

		for (size_t i = 0; i < count; i++, done++) {
			const char *owner = done % 10 == 9 ? CS_OWNER_SHARED
			                                   : cs_node_org(node);
			json_t *r = bench_variant(
			        json_array_get(samples, done % nsamples), owner,
			        done);

			if (cs_record_path(&paths[i], r) < 0 ||
			    cs_node_write_json(&blobs[i], node, r) < 0)
				bench_die("record");
			updates[i] = (cs_tree_update){paths[i], &blobs[i]};
			json_array_append_new(records, r);
		}
		snprintf(message, sizeof(message), "records: import %zu\n",
		         count);
		if (cs_node_commit(&out, &in_main, node, &base, updates, count,
		                   message) < 0 ||
		    !in_main)
			bench_die("cs_node_commit");
		base = out;
		for (size_t i = 0; i < count; i++)
			free(paths[i]);
	}
	bench_note("%zu records written in %.1f s (no fsync)", n,
	           bench_now() - start);
	free(updates);
	free(blobs);
	free(paths);
	json_decref(samples);
	return records;
}

/*
 * Edit k: a service of the map (spread over it by a stride prime to the
 * count) with a new description.
 */
static json_t *
edited(const json_t *records, size_t k, const char *tag)
{
	size_t n = json_array_size(records), nservices = 0, want, i;
	const json_t *r = NULL;
	json_t *copy;
	char text[128];

	for (i = 0; i < n; i++)
		if (strcmp(cs_record_type(json_array_get(records, i)),
		           "service") == 0)
			nservices++;
	if (nservices == 0)
		bench_die("no service to edit");
	want = (k * 7919) % nservices;
	for (i = 0; i < n && r == NULL; i++)
		if (strcmp(cs_record_type(json_array_get(records, i)),
		           "service") == 0 &&
		    want-- == 0)
			r = json_array_get(records, i);
	copy = json_deep_copy(r);
	snprintf(text, sizeof(text), "Edited (%s %zu).", tag, k);
	json_object_set_new(copy, "description", json_string(text));
	return copy;
}

/* cs_map_put() of edits [first, first + count); returns edits done. */
static size_t
time_puts(cs_node *node, const json_t *records, size_t first, size_t count,
          double max_seconds, double *seconds)
{
	double start = bench_now();
	size_t k;
	cs_oid base;

	if (cs_node_main(&base, node) < 0)
		bench_die("main");
	for (k = 0; k < count; k++) {
		json_t *r = edited(records, first + k, "cs");
		cs_oid out;
		int in_main;

		if (cs_map_put(&out, &in_main, node, &base, r,
		               "records: edit description\n") < 0 ||
		    !in_main)
			bench_die("cs_map_put");
		base = out;
		json_decref(r);
		if (bench_now() - start > max_seconds) {
			k++;
			bench_note("stopped after %zu edits (%.0f s)", k,
			           max_seconds);
			break;
		}
	}
	*seconds = bench_now() - start;
	return k;
}

/*
 * Preflight and signature alone, averaged over `count` edits that are
 * written as trees but not committed.
 */
static void
breakdown(cs_node *node, const json_t *records, size_t count,
          double *preflight_ms, double *sign_ms)
{
	cs_repo *repo = cs_node_repo(node);
	const cs_key *key;
	cs_oid base, base_tree;
	double t_pre = 0, t_sign = 0, t;

	if (cs_node_key(&key, node) < 0 || cs_node_main(&base, node) < 0 ||
	    cs_repo_commit_tree(&base_tree, repo, &base) < 0)
		bench_die("main");
	for (size_t k = 0; k < count; k++) {
		json_t *r = edited(records, 100000 + k, "breakdown");
		char *path = NULL, *armor = NULL;
		cs_tree_update u;
		cs_oid blob, tree;
		char payload[400];

		if (cs_record_path(&path, r) < 0 ||
		    cs_node_write_json(&blob, node, r) < 0)
			bench_die("record");
		u = (cs_tree_update){path, &blob};
		if (cs_repo_tree_update(&tree, repo, &base_tree, &u, 1) < 0)
			bench_die("tree");
		t = bench_now();
		if (cs_verify_edit_preflight(repo, &base, &tree, key) < 0)
			bench_die("cs_verify_edit_preflight");
		t_pre += bench_now() - t;
		memset(payload, 'x', sizeof(payload));
		t = bench_now();
		if (cs_sshsig_sign(&armor, key, CS_SSHSIG_NAMESPACE_GIT,
		                   (const uint8_t *)payload,
		                   sizeof(payload)) < 0)
			bench_die("cs_sshsig_sign");
		t_sign += bench_now() - t;
		free(armor);
		free(path);
		json_decref(r);
	}
	*preflight_ms = 1000 * t_pre / (double)count;
	*sign_ms = 1000 * t_sign / (double)count;
}

/* A work tree with the map's files, and `count` edits per round. */
static void
git_prepare(const char *dir, cs_node *node, const json_t *records, size_t count)
{
	char wt[4096], key[4096];

	snprintf(wt, sizeof(wt), "%s/wt", dir);
	snprintf(key, sizeof(key), "%s/" CS_NODE_SIGNING_KEY,
	         cs_node_dir(node));
	if (bench_sh("git init -q %s && git -C %s archive main | "
	             "tar -x -C %s && cd %s && "
	             "git config user.name %s && "
	             "git config user.email edits@example.org && "
	             "git config gpg.format ssh && "
	             "git config user.signingkey %s && "
	             "git add -A && git commit -q -m import",
	             bench_q(wt), bench_q(cs_node_dir(node)), bench_q(wt),
	             bench_q(wt), cs_node_org(node), bench_q(key)) != 0)
		bench_die("git work tree");
	for (int round = 0; round < 2; round++) {
		char list[4096];
		FILE *lf;

		snprintf(list, sizeof(list), "%s/edits-%d.list", dir, round);
		if ((lf = fopen(list, "w")) == NULL)
			bench_die(list);
		for (size_t k = 0; k < count; k++) {
			json_t *r =
			        edited(records, k, round ? "git-fsync" : "git");
			char *path = NULL, *canon = NULL, src[4096];
			size_t len;
			FILE *f;

			if (cs_record_path(&path, r) < 0 ||
			    cs_json_canonical(&canon, &len, r) < 0)
				bench_die("record");
			snprintf(src, sizeof(src), "%s/edit-%d-%zu.json", dir,
			         round, k);
			if ((f = fopen(src, "w")) == NULL ||
			    fwrite(canon, 1, len, f) != len || fclose(f) != 0)
				bench_die(src);
			fprintf(lf, "%s %s\n", src, path);
			free(path);
			free(canon);
			json_decref(r);
		}
		fclose(lf);
	}
}

/* Seconds for one round of git edits with extra `git -c` options. */
static double
git_round(const char *dir, int round, const char *options)
{
	return bench_sh_time(
	        "cd %s/wt && while read src dst; do cp \"$src\" \"$dst\" && "
	        "git %s add \"$dst\" && "
	        "git %s commit -q -S -m 'records: edit description' || "
	        "exit 1; done < %s/edits-%d.list",
	        bench_q(dir), options, options, bench_q(dir), round);
}

int
main(int argc, char **argv)
{
	static const char *const known[] = {
	        "records=", "edits=", "git-edits=", "max-seconds=", NULL};
	size_t nrecords, nedits, ngit, done_sync, done_nosync;
	double max_seconds, t_sync, t_nosync, t_git, t_git_sync;
	double pre_ms, sign_ms;
	cs_node *nodes[2];
	json_t *records;
	char *dir;

	bench_args_check(argc, argv, known, usage);
	nrecords = (size_t)bench_arg_long(argc, argv, "records", 10000);
	nedits = (size_t)bench_arg_long(argc, argv, "edits", 1000);
	ngit = (size_t)bench_arg_long(argc, argv, "git-edits", 50);
	max_seconds = (double)bench_arg_long(argc, argv, "max-seconds", 45);
	if (nrecords == 0)
		nrecords = 1;
	if (nedits == 0)
		nedits = 1;

	printf("bench_commit: one-record edits on a map of %zu records; "
	       "%zu cs_map_put, %zu git commit -S per setting\n",
	       nrecords, nedits, ngit);
	fflush(stdout);
	dir = bench_tmpdir("commit");
	bench_note("consortium in %s", dir);
	bench_consortium(dir, orgs, 2);
	for (size_t i = 0; i < 2; i++) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/%s", dir, orgs[i]);
		if (cs_node_open(&nodes[i], path) < 0)
			bench_die(path);
	}
	bench_durable(0);
	bench_note("writing %zu records", nrecords);
	records = populate(nodes[WRITER], nrecords);
	/* The work tree is made before the timed edits so that both
	 * sides edit a map of the same size. */
	if (ngit) {
		bench_note("git work tree");
		git_prepare(dir, nodes[WRITER], records, ngit);
	}

	bench_durable(1);
	bench_note("%zu cs_map_put with fsync", nedits);
	done_sync = time_puts(nodes[WRITER], records, 0, nedits, max_seconds,
	                      &t_sync);
	bench_durable(0);
	done_nosync =
	        time_puts(nodes[WRITER], records, nedits,
	                  nedits / 5 ? nedits / 5 : 1, max_seconds, &t_nosync);
	bench_note("preflight and signature alone");
	breakdown(nodes[WRITER], records, 20, &pre_ms, &sign_ms);

	t_git = t_git_sync = -1;
	if (ngit) {
		bench_note("%zu git commit -S, twice", ngit);
		t_git = git_round(dir, 0, "");
		t_git_sync = git_round(dir, 1,
		                       "-c core.fsync=committed "
		                       "-c core.fsyncMethod=fsync");
	}

	printf("cs_map_put: %zu edits in %.2f s with fsync, %zu in %.2f s "
	       "without\n",
	       done_sync, t_sync, done_nosync, t_nosync);
	printf("of which, measured alone: preflight check %.2f ms, SSHSIG "
	       "signature %.3f ms (per edit %.2f ms without fsync)\n",
	       pre_ms, sign_ms, 1000 * t_nosync / (double)done_nosync);
	bench_result("cs_map_put, fsync", (double)done_sync / t_sync,
	             "commits/s", "git commit -S, core.fsync=committed",
	             t_git_sync > 0 ? (double)ngit / t_git_sync : 0,
	             "commits/s");
	bench_result("cs_map_put, fsync", (double)done_sync / t_sync,
	             "commits/s", "git commit -S, git defaults",
	             t_git > 0 ? (double)ngit / t_git : 0, "commits/s");
	bench_result("cs_map_put, no fsync", (double)done_nosync / t_nosync,
	             "commits/s", "git commit -S, git defaults",
	             t_git > 0 ? (double)ngit / t_git : 0, "commits/s");
	bench_results_print();

	json_decref(records);
	for (size_t i = 0; i < 2; i++)
		cs_node_free(nodes[i]);
	bench_rmtree(dir);
	free(dir);
	return 0;
}
