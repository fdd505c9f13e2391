/*
 * cartosync — history verification rate (DESIGN.md §11: 10,000 commits/s
 * or more), beside references measured in the same run:
 *
 *   - `openssl speed ed25519` verify/s (1 process, and -multi for the
 *     automatic thread count): the Ed25519 verifications that bound a
 *     signed edit's cost;
 *   - `git rev-list --count` and a `git log` walk of the same repository:
 *     the floor of reading the history, no signature checked;
 *   - `git log --show-signature` with the allowed signers file of
 *     `cartosync keys allowed-signers`: stock git verifying the same
 *     signatures (on the newest --git-sample commits; git runs ssh-keygen
 *     once per commit).
 *
 * The consortium is made by the real program (genesis, four partners
 * joined and admitted).  The edits are signed by the five organisations
 * in turn, --block commits each, each edit adding one record made from a
 * sample service (tests/data/sample/<org>/service-*.json) with a new id
 * (one in ten owned by "shared"), so the history is linear and the map
 * ends with --commits records.  Generating is not timed.  The edits are
 * made with the library's commit pieces (cs_commit_format_payload,
 * cs_sshsig_sign, cs_commit_add_signature) and stored in packs through a
 * libgit2 mempack (bench_generate_packed(), in bench_util.c), then `git
 * repack -ad` makes one pack, as after a clone
 * or fetch.  cs_map_put() is not used by default: it spends ~20-30 ms per
 * commit reloading the consortium for its preflight check, and writing
 * 7 loose objects per commit is slow on some file systems.
 *
 *   --loose    writes the edits as loose objects with cs_repo_tree_update()
 *              and cs_repo_write_commit_raw() (as a node that wrote its own
 *              edits; no fsync), times cs_verify() on them, then repacks;
 *   --map-put  generates through cs_map_put() on each node and
 *              cs_repo_fetch() between them (slow).
 *
 * Either way cs_verify() must find every commit valid, or the benchmark
 * stops: a rate of failing verification means nothing.  It is timed with 1
 * thread and the automatic count, best of 2 runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <git2.h>

#include "cartosync/commit.h"
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
        "usage: bench_verify [--commits N] [--block N] [--git-sample N]"
        " [--no-repack]\n"
        "  --commits N     signed edits to generate and verify (default"
        " 10000)\n"
        "  --block N       edits per node before the next one takes over"
        " (default 500)\n"
        "  --git-sample N  commits verified by stock git (default 100)\n"
        "  --no-repack     only time the loose-object repository\n"
        "  --map-put       generate with cs_map_put() on each node (slow)\n"
        "  --reuse DIR     verify the consortium kept in DIR by an earlier\n"
        "                  run (CS_BENCH_KEEP=1) instead of generating one\n";

static const char *const orgs[] = {"mdm-be", "alcs", "cefa", "dj", "ms2"};
#define NORGS (sizeof(orgs) / sizeof(*orgs))

/* Bring `to`'s main up to `from`'s main (a fast-forward). */
static void
catch_up(cs_node *to, cs_node *from)
{
	cs_repo *repo = cs_node_repo(to);
	cs_oid theirs, ours;
	int has_ours;

	if (cs_repo_fetch(repo, cs_node_dir(from),
	                  "+refs/heads/main:refs/bench/in") < 0 ||
	    cs_repo_ref_read(&theirs, repo, "refs/bench/in") < 0)
		bench_die("fetch between nodes");
	has_ours = cs_repo_ref_read(&ours, repo, CS_REF_MAIN) == 0;
	if (has_ours && cs_oid_cmp(&ours, &theirs) == 0)
		return;
	if (cs_repo_ref_cas(repo, CS_REF_MAIN, &theirs, has_ours ? &ours : NULL,
	                    "bench: catch up") < 0)
		bench_die("fast-forward");
}

static void
generate(cs_node **nodes, size_t ncommits, size_t block)
{
	json_t *samples = bench_samples("service-");
	size_t nsamples = json_array_size(samples), done = 0, writer = 0;
	double start = bench_now(), t_put = 0, t_fetch = 0, t;

	while (done < ncommits) {
		cs_node *node = nodes[writer];
		size_t k, first = done;
		cs_oid base;

		if (cs_node_main(&base, node) < 0)
			bench_die("main");
		t = bench_now();
		for (k = 0; k < block && done < ncommits; k++, done++) {
			const json_t *sample =
			        json_array_get(samples, done % nsamples);
			/* One edit in ten is to a shared record. */
			const char *owner =
			        done % 10 == 9 ? "shared" : cs_node_org(node);
			json_t *record = bench_variant(sample, owner, done);
			char message[128];
			cs_oid out;
			int in_main;

			snprintf(message, sizeof(message),
			         "records: add service %s\n",
			         json_string_value(
			                 json_object_get(record, "id")));
			if (cs_map_put(&out, &in_main, node, &base, record,
			               message) < 0 ||
			    !in_main)
				bench_die("cs_map_put");
			base = out;
			json_decref(record);
		}
		t = bench_now() - t;
		t_put += t;
		fprintf(stderr, "  %s: commits %zu-%zu, %.0f cs_map_put/s",
		        cs_node_org(node), first + 1, done,
		        (double)(done - first) / t);
		/* The next node takes over from this one's main. */
		writer = (writer + 1) % NORGS;
		t = bench_now();
		catch_up(nodes[writer], node);
		t = bench_now() - t;
		t_fetch += t;
		fprintf(stderr, ", fetch to %s %.2f s\n",
		        cs_node_org(nodes[writer]), t);
	}
	/* The coordinator verifies: bring it the whole history. */
	if (writer != 0)
		catch_up(nodes[0], nodes[writer]);
	fprintf(stderr,
	        "  generated %zu commits in %.1f s: cs_map_put %.1f s "
	        "(%.0f/s, no fsync), fetches %.1f s\n",
	        ncommits, bench_now() - start, t_put, (double)ncommits / t_put,
	        t_fetch);
	json_decref(samples);
}

/*
 * The same history written directly into the coordinator's repository,
 * each edit signed by its organisation's node key: what cs_node_commit()
 * writes, without its preflight check.
 */
static void
generate_direct(cs_node **nodes, size_t ncommits, size_t block)
{
	json_t *samples = bench_samples("service-");
	size_t nsamples = json_array_size(samples);
	cs_repo *repo = cs_node_repo(nodes[0]);
	const cs_key *keys[NORGS];
	char *fps[NORGS];
	cs_oid start_main, base, tree;
	double start = bench_now(), last = start;
	int64_t when = 1735689600; /* 2025-01-01, one edit a minute */

	for (size_t i = 0; i < NORGS; i++) {
		if (cs_node_key(&keys[i], nodes[i]) < 0)
			bench_die("node key");
		fps[i] = cs_key_fingerprint(keys[i]);
	}
	if (cs_node_main(&start_main, nodes[0]) < 0 ||
	    cs_repo_commit_tree(&tree, repo, &start_main) < 0)
		bench_die("main");
	base = start_main;
	for (size_t done = 0; done < ncommits; done++) {
		size_t w = (done / block) % NORGS;
		const char *org = cs_node_org(nodes[w]);
		const char *owner = done % 10 == 9 ? "shared" : org;
		json_t *record = bench_variant(
		        json_array_get(samples, done % nsamples), owner, done);
		char *path = NULL, *canon = NULL, *payload = NULL;
		char *armor = NULL, *text = NULL, message[128];
		size_t canon_len, payload_len, text_len;
		cs_tree_update update;
		cs_commit commit;
		cs_oid blob;

		snprintf(message, sizeof(message), "records: add service %s\n",
		         json_string_value(json_object_get(record, "id")));
		memset(&commit, 0, sizeof(commit));
		commit.kind = CS_COMMIT_EDIT;
		commit.parents[0] = base;
		commit.parent_count = 1;
		commit.author.name = (char *)org;
		commit.author.email = fps[w];
		commit.author.time = when += 60;
		commit.committer = commit.author;
		commit.message = message;
		if (cs_record_path(&path, record) < 0 ||
		    cs_json_canonical(&canon, &canon_len, record) < 0 ||
		    cs_repo_write_blob(&blob, repo, canon, canon_len) < 0)
			bench_die("record");
		update = (cs_tree_update){path, &blob};
		if (cs_repo_tree_update(&commit.tree, repo, &tree, &update, 1) <
		            0 ||
		    cs_commit_format_payload(&payload, &payload_len, &commit) <
		            0 ||
		    cs_sshsig_sign(&armor, keys[w], CS_SSHSIG_NAMESPACE_GIT,
		                   (const uint8_t *)payload, payload_len) < 0 ||
		    cs_commit_add_signature(&text, &text_len, payload,
		                            payload_len, armor) < 0 ||
		    cs_repo_write_commit_raw(&base, repo, text, text_len) < 0)
			bench_die("commit");
		tree = commit.tree;
		free(path);
		free(canon);
		free(payload);
		free(armor);
		free(text);
		json_decref(record);
		if (bench_now() - last > 5) {
			last = bench_now();
			bench_note("generated %zu/%zu commits (%.0f/s)",
			           done + 1, ncommits,
			           (double)(done + 1) / (last - start));
		}
	}
	if (cs_repo_ref_cas(repo, CS_REF_MAIN, &base, &start_main,
	                    "bench: generated edits") < 0)
		bench_die("main");
	bench_note("generated %zu commits in %.1f s (%.0f/s, no fsync)",
	           ncommits, bench_now() - start,
	           (double)ncommits / (bench_now() - start));
	for (size_t i = 0; i < NORGS; i++)
		free(fps[i]);
	json_decref(samples);
}

/* Seconds for the best of `runs` verifications; *commits judged. */
static double
time_verify(cs_repo *repo, const cs_oid *genesis, const cs_oid *tip,
            unsigned threads, int runs, size_t *commits)
{
	double best = 0;

	for (int r = 0; r < runs; r++) {
		cs_verify_report *report = NULL;
		cs_verify_options opts;
		double start, t;

		memset(&opts, 0, sizeof(opts));
		opts.genesis = genesis;
		opts.tips = tip;
		opts.ntips = 1;
		opts.threads = threads;
		start = bench_now();
		if (cs_verify(&report, repo, &opts) < 0)
			bench_die("cs_verify");
		t = bench_now() - start;
		if (report->nissues) {
			fprintf(stderr, "bench: %zu issues, first: %s\n",
			        report->nissues, report->issues[0].reason);
			exit(1);
		}
		*commits = report->commits;
		cs_verify_report_free(report);
		if (r == 0 || t < best)
			best = t;
	}
	return best;
}

/* Best of two runs of a shell command, in seconds. */
static double
time_git(const char *cmd)
{
	double a = bench_sh_time("%s", cmd), b = bench_sh_time("%s", cmd);

	if (a < 0 || b < 0)
		return -1;
	return a < b ? a : b;
}

int
main(int argc, char **argv)
{
	static const char *const known[] = {
	        "commits=", "block=", "git-sample=", "no-repack",
	        "map-put",  "loose",  "reuse=",      NULL};
	size_t ncommits, block, sample, judged = 0, nthreads;
	cs_node *nodes[NORGS];
	cs_oid genesis, tip;
	char *dir, *cmd = NULL, *out;
	const char *coord;
	double t1 = 0, tn = 0, ossl_sign, ossl_verify = 0, ossl_sign_n,
	       ossl_verify_n = 0, walk_count, walk_log, git_sig;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	const char *reuse;
	int loose, first_stage, last_stage;

	bench_args_check(argc, argv, known, usage);
	reuse = getenv("CS_BENCH_REUSE");
	ncommits = (size_t)bench_arg_long(argc, argv, "commits", 10000);
	block = (size_t)bench_arg_long(argc, argv, "block", 500);
	sample = (size_t)bench_arg_long(argc, argv, "git-sample", 100);
	loose = bench_arg_flag(argc, argv, "loose") ||
	        bench_arg_flag(argc, argv, "map-put");
	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], "--reuse", 7) == 0)
			reuse = argv[i][7] == '=' ? argv[i] + 8
			        : i + 1 < argc    ? argv[i + 1]
			                          : NULL;
	if (block == 0)
		block = 1;
	if (sample > ncommits)
		sample = ncommits;
	nthreads = cpus < 1 ? 1 : cpus > 16 ? 16 : (size_t)cpus;

	if (reuse) {
		if ((dir = strdup(reuse)) == NULL)
			bench_die("out of memory");
	} else {
		dir = bench_tmpdir("verify");
		printf("bench_verify: %zu signed edits by %zu organisations, "
		       "blocks of %zu, %ld CPUs\n",
		       ncommits, (size_t)NORGS, block, cpus);
		bench_note("consortium in %s (cartosync init, members add)",
		           dir);
		bench_consortium(dir, orgs, NORGS);
	}
	for (size_t i = 0; i < NORGS; i++) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/%s", dir, orgs[i]);
		if (cs_node_open(&nodes[i], path) < 0)
			bench_die(path);
	}
	bench_durable(0);
	if (reuse)
		printf("bench_verify: the consortium kept in %s, %ld CPUs\n",
		       dir, cpus);
	else if (bench_arg_flag(argc, argv, "map-put"))
		generate(nodes, ncommits, block);
	else if (loose)
		generate_direct(nodes, ncommits, block);
	else
		bench_generate_packed(nodes, NORGS, ncommits, block, 1);
	/* Stage 0: the objects as they are (loose, or as kept); stage 1:
	 * after `git repack -ad`, one pack as after a clone. */
	first_stage = reuse || loose ? 0 : 1;
	last_stage = reuse || bench_arg_flag(argc, argv, "no-repack") ? 0 : 1;
	coord = cs_node_dir(nodes[0]);
	if (cs_node_genesis(&genesis, nodes[0]) < 0 ||
	    cs_node_main(&tip, nodes[0]) < 0)
		bench_die("genesis / main");

	/* The references first, so that the page cache is as warm for git
	 * as it is for the second cs_verify() run. */
	bench_note("openssl speed ed25519");
	if (bench_openssl_ed25519(&ossl_sign, &ossl_verify, 2, 1) < 0)
		fprintf(stderr, "bench: openssl speed unavailable\n");
	if (nthreads > 1 && bench_openssl_ed25519(&ossl_sign_n, &ossl_verify_n,
	                                          2, (int)nthreads) < 0)
		ossl_verify_n = 0;
	if (nthreads == 1)
		ossl_verify_n = ossl_verify;

	for (int packed = first_stage; packed <= last_stage; packed++) {
		const char *how = packed  ? "packed"
		                  : reuse ? "as kept"
		                          : "loose";
		char name[64], ref[64];

		if (packed) {
			double t = bench_now();

			bench_note("git repack -ad");
			if (bench_sh("git -C %s repack -adq", bench_q(coord)) !=
			    0)
				bench_die("git repack");
			bench_note("git repack -ad: %.1f s", bench_now() - t);
		}
		if (asprintf(&cmd,
		             "git -C %s rev-list --count main "
		             ">/dev/null",
		             bench_q(coord)) < 0)
			bench_die("out of memory");
		bench_note("git walks (%s)", how);
		walk_count = time_git(cmd);
		free(cmd);
		if (asprintf(&cmd,
		             "git -C %s log --format='%%H %%T %%an %%s' "
		             "main >/dev/null",
		             bench_q(coord)) < 0)
			bench_die("out of memory");
		walk_log = time_git(cmd);
		free(cmd);

		bench_note("cs_verify (%s)", how);
		t1 = time_verify(cs_node_repo(nodes[0]), &genesis, &tip, 1, 2,
		                 &judged);
		tn = time_verify(cs_node_repo(nodes[0]), &genesis, &tip, 0, 2,
		                 &judged);
		printf("%s: cs_verify judged %zu commits: %.3f s (1 thread), "
		       "%.3f s (%zu threads)\n",
		       how, judged, t1, tn, nthreads);
		snprintf(name, sizeof(name), "verify %s, 1 thread", how);
		bench_result(name, (double)judged / t1, "commits/s",
		             "openssl speed ed25519 verify", ossl_verify,
		             "verify/s");
		snprintf(name, sizeof(name), "verify %s, %zu threads", how,
		         nthreads);
		snprintf(ref, sizeof(ref), "openssl speed -multi %zu verify",
		         nthreads);
		bench_result(name, (double)judged / tn, "commits/s", ref,
		             ossl_verify_n, "verify/s");
		bench_result(name, (double)judged / tn, "commits/s",
		             "git rev-list --count (no sig)",
		             walk_count > 0 ? (double)judged / walk_count : 0,
		             "commits/s");
		bench_result(name, (double)judged / tn, "commits/s",
		             "git log walk (no sig)",
		             walk_log > 0 ? (double)judged / walk_log : 0,
		             "commits/s");
	}

	/* Stock git verifying the same signatures: one run, whose output
	 * must report every commit good, or the figure lies. */
	out = bench_sh_output("%s -C %s keys allowed-signers",
	                      bench_q(bench_cartosync()), bench_q(coord));
	git_sig = -1;
	if (out && sample > 0) {
		char signers[4096], log[4096], *good;
		FILE *f;

		bench_note("git log --show-signature -n %zu", sample);
		snprintf(signers, sizeof(signers), "%s/allowed_signers", dir);
		snprintf(log, sizeof(log), "%s/show-signature.out", dir);
		if ((f = fopen(signers, "w")) == NULL)
			bench_die(signers);
		fputs(out, f);
		fclose(f);
		git_sig = bench_sh_time(
		        "git -C %s -c gpg.ssh.allowedSignersFile=%s log -n %zu "
		        "--show-signature --format=%%H main >%s 2>&1",
		        bench_q(coord), bench_q(signers), sample, bench_q(log));
		good = bench_sh_output("grep -c '^Good \"git\" signature' %s",
		                       bench_q(log));
		if (good == NULL || strtoul(good, NULL, 10) != sample) {
			fprintf(stderr,
			        "bench: stock git does not report %zu good "
			        "signatures (see %s); no reference\n",
			        sample, log);
			git_sig = -1;
		}
		free(good);
	}
	free(out);
	bench_result(last_stage ? "verify packed, 1 thread"
	             : reuse    ? "verify as kept, 1 thread"
	                        : "verify loose, 1 thread",
	             (double)judged / t1, "commits/s",
	             "git log --show-signature (ssh)",
	             git_sig > 0 ? (double)sample / git_sig : 0, "commits/s");
	printf("design target (DESIGN.md 11): 10000 commits/s or more\n");
	bench_results_print();

	for (size_t i = 0; i < NORGS; i++)
		cs_node_free(nodes[i]);
	if (!reuse)
		bench_rmtree(dir);
	free(dir);
	return 0;
}
