/*
 * cartosync — SSHSIG sign and verify rates over a typical commit payload,
 * beside OpenSSL's own Ed25519 rates measured in the same run: raw
 * EVP_DigestSign/Verify calls here, and `openssl speed ed25519` if the
 * openssl command is installed.  Prints figures; never asserts a time.
 *
 * Each figure is the best of 3 runs, measured in turn, so that a burst of
 * other load on the machine does not favour one side of the comparison.
 *
 * Usage: bench_sign_verify [seconds per run, default 1]
 *        CS_BENCH_NO_SPEED=1 skips `openssl speed`.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "cartosync/error.h"
#include "cartosync/key.h"
#include "cartosync/sshsig.h"

/* About 340 bytes: what git signs for a one-record edit. */
static const char payload[] =
	"tree 9bd4c6b5d3ab0e7f2b2c1f7f0a5f0d5c3b8e1a27\n"
	"parent 2f4e1c0a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f\n"
	"author Association Solidarite Nord <edits@asn.example> "
	"1735689600 +0000\n"
	"committer Association Solidarite Nord <edits@asn.example> "
	"1735689600 +0000\n"
	"\n"
	"records: add location 'centre-social-nord-2'\n"
	"\n"
	"Cartosync-Record: location/3c/centre-social-nord-2\n";

enum op { SSHSIG_SIGN, SSHSIG_VERIFY, RAW_SIGN, RAW_VERIFY };

struct shared {
	enum op op;
	double seconds;
	cs_key *key;
	const char *armor;
	EVP_PKEY *raw_priv;
	EVP_PKEY *raw_pub;
	const uint8_t *raw_msg;
	size_t raw_msglen;
	const uint8_t *raw_sig;
};

struct worker {
	const struct shared *s;
	unsigned long ops;
	int failed;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
one(const struct shared *s)
{
	uint8_t sig[64];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *ctx;
	char *armor;
	int ok;

	switch (s->op) {
	case SSHSIG_SIGN:
		if (cs_sshsig_sign(&armor, s->key, "git",
				   (const uint8_t *)payload,
				   strlen(payload)) < 0)
			return -1;
		free(armor);
		return 0;
	case SSHSIG_VERIFY:
		return cs_sshsig_verify(NULL, s->armor, strlen(s->armor), "git",
					(const uint8_t *)payload,
					strlen(payload));
	case RAW_SIGN:
		ctx = EVP_MD_CTX_new();
		ok = ctx != NULL &&
		     EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->raw_priv) ==
			     1 &&
		     EVP_DigestSign(ctx, sig, &siglen, s->raw_msg,
				    s->raw_msglen) == 1;
		EVP_MD_CTX_free(ctx);
		return ok ? 0 : -1;
	case RAW_VERIFY:
		ctx = EVP_MD_CTX_new();
		ok = ctx != NULL &&
		     EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, s->raw_pub) ==
			     1 &&
		     EVP_DigestVerify(ctx, s->raw_sig, 64, s->raw_msg,
				      s->raw_msglen) == 1;
		EVP_MD_CTX_free(ctx);
		return ok ? 0 : -1;
	}
	return -1;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	double deadline = now() + w->s->seconds;
	int i;

	do {
		for (i = 0; i < 64; i++) {
			if (one(w->s) != 0)
				w->failed = 1;
			w->ops++;
		}
	} while (now() < deadline);
	return NULL;
}

/* Operations per second with `nthreads` threads, wall clock. */
static double
rate(const struct shared *s, int nthreads)
{
	struct worker w[8];
	pthread_t t[8];
	unsigned long total = 0;
	double start, elapsed;
	int i;

	start = now();
	for (i = 0; i < nthreads; i++) {
		w[i] = (struct worker){ s, 0, 0 };
		if (pthread_create(&t[i], NULL, worker_main, &w[i]) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			exit(1);
		}
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(t[i], NULL);
		if (w[i].failed) {
			fprintf(stderr, "an operation failed: %s\n",
				cs_error_last());
			exit(1);
		}
		total += w[i].ops;
	}
	elapsed = now() - start;
	return (double)total / elapsed;
}

/* `openssl speed ed25519`: the last two columns, sign/s and verify/s. */
static int
openssl_speed(double *sign, double *verify)
{
	char line[512];
	FILE *f;
	int found = 0;

	f = popen("openssl speed -seconds 3 ed25519 2>/dev/null", "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = strstr(line, "(Ed25519)");

		if (p != NULL && sscanf(p + 9, "%*s %*s %lf %lf", sign,
					verify) == 2)
			found = 1;
	}
	pclose(f);
	return found ? 0 : -1;
}

int
main(int argc, char **argv)
{
	struct shared s = { 0 };
	uint8_t raw_msg[256], raw_sig[64];
	size_t siglen = sizeof(raw_sig);
	double seconds = argc > 1 ? atof(argv[1]) : 1.0;
	double r[4][2] = { { 0 } }, ossl_sign, ossl_verify, x;
	char *armor;
	cs_key *key;
	EVP_MD_CTX *ctx;
	int op, threads, round;

	if (seconds <= 0)
		seconds = 1.0;
	if (cs_key_generate(&key) < 0 ||
	    cs_sshsig_sign(&armor, key, "git", (const uint8_t *)payload,
			   strlen(payload)) < 0) {
		fprintf(stderr, "setup: %s\n", cs_error_last());
		return 1;
	}

	/*
	 * The reference signs and verifies what SSHSIG hands to Ed25519: the
	 * signed-data block of the same size (6 + 7 + 4 + 10 + 68 = 95 bytes
	 * for namespace "git" and sha512), on a fresh context each time as
	 * cs_sshsig_verify does.
	 */
	memset(raw_msg, 0x5a, sizeof(raw_msg));
	s.raw_msg = raw_msg;
	s.raw_msglen = 95;
	s.raw_priv = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (s.raw_priv == NULL)
		return 1;
	{
		uint8_t pub[32];
		size_t publen = sizeof(pub);

		EVP_PKEY_get_raw_public_key(s.raw_priv, pub, &publen);
		s.raw_pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
							pub, publen);
	}
	ctx = EVP_MD_CTX_new();
	if (s.raw_pub == NULL || ctx == NULL ||
	    EVP_DigestSignInit(ctx, NULL, NULL, NULL, s.raw_priv) != 1 ||
	    EVP_DigestSign(ctx, raw_sig, &siglen, raw_msg, s.raw_msglen) != 1)
		return 1;
	EVP_MD_CTX_free(ctx);
	s.raw_sig = raw_sig;
	s.key = key;
	s.armor = armor;
	s.seconds = seconds;

	printf("payload %zu bytes, armor %zu bytes, best of 3 runs of "
	       "%.1f s\n", strlen(payload), strlen(armor), seconds);
	for (round = 0; round < 3; round++) {
		for (op = 0; op < 4; op++) {
			for (threads = 1; threads <= 2; threads++) {
				s.op = (enum op)op;
				x = rate(&s, threads);
				if (x > r[op][threads - 1])
					r[op][threads - 1] = x;
			}
		}
	}
	printf("%-34s %12s %12s\n", "", "1 thread", "2 threads");
	printf("%-34s %12.0f %12.0f\n", "cs_sshsig_sign/s", r[0][0], r[0][1]);
	printf("%-34s %12.0f %12.0f\n", "cs_sshsig_verify/s", r[1][0],
	       r[1][1]);
	printf("%-34s %12.0f %12.0f\n", "reference: EVP ed25519 sign/s",
	       r[2][0], r[2][1]);
	printf("%-34s %12.0f %12.0f\n", "reference: EVP ed25519 verify/s",
	       r[3][0], r[3][1]);
	printf("sshsig verify / raw EVP verify: %.0f%% (1 thread), "
	       "%.0f%% (2 threads)\n", 100.0 * r[1][0] / r[3][0],
	       100.0 * r[1][1] / r[3][1]);

	if (getenv("CS_BENCH_NO_SPEED") == NULL) {
		if (openssl_speed(&ossl_sign, &ossl_verify) == 0)
			printf("reference: openssl speed ed25519: %.0f sign/s, "
			       "%.0f verify/s (1 thread)\n", ossl_sign,
			       ossl_verify);
		else
			printf("reference: openssl speed ed25519 "
			       "unavailable\n");
	}

	EVP_PKEY_free(s.raw_priv);
	EVP_PKEY_free(s.raw_pub);
	free(armor);
	cs_key_free(key);
	return 0;
}
