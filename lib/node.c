#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "cartosync/commit.h"
#include "cartosync/consortium.h"
#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/node.h"
#include "cartosync/tls.h"
#include "cartosync/record.h"
#include "cartosync/sshsig.h"
#include "cartosync/verify.h"

#define CONFIG_MAX_BYTES (64 * 1024)
#define CONFIG_MAX_ENTRIES 256

typedef struct {
	char *section;
	char *key;
	char *value;
} config_entry;

struct cs_node {
	char *dir;
	cs_repo *repo;
	cs_key *key;
	config_entry *config;
	size_t nconfig;
};

static char *
join(const char *dir, const char *name)
{
	char *s = NULL;

	if (asprintf(&s, "%s/%s", dir, name) < 0)
		return NULL;
	return s;
}

static char *
trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' ||
			   end[-1] == '\r'))
		*--end = '\0';
	return s;
}

static void
config_clear(cs_node *node)
{
	for (size_t i = 0; i < node->nconfig; i++) {
		free(node->config[i].section);
		free(node->config[i].key);
		free(node->config[i].value);
	}
	free(node->config);
	node->config = NULL;
	node->nconfig = 0;
}

/*
 * docs/configuration.md: "[section]" or "[section \"name\"]" headers,
 * "key = value" lines, "#" comments.
 */
static int
config_parse(cs_node *node, char *text, const char *path)
{
	char *save = NULL, *line, *section = NULL;
	size_t lineno = 0;
	int error = 0;

	if ((node->config = calloc(CONFIG_MAX_ENTRIES,
				   sizeof(*node->config))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	for (line = strtok_r(text, "\n", &save); line && error == 0;
	     line = strtok_r(NULL, "\n", &save)) {
		char *l = trim(line), *eq;

		lineno++;
		if (*l == '\0' || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			char *end = strchr(l, ']');

			if (end == NULL || end[1] != '\0') {
				error = cs_error_set(CS_EINVALID,
						     "%s:%zu: malformed section"
						     " header",
						     path, lineno);
				break;
			}
			*end = '\0';
			free(section);
			section = strdup(trim(l + 1));
			continue;
		}
		if ((eq = strchr(l, '=')) == NULL || section == NULL) {
			error = cs_error_set(CS_EINVALID,
					     "%s:%zu: expected \"key = value\""
					     " in a [section]",
					     path, lineno);
			break;
		}
		if (node->nconfig == CONFIG_MAX_ENTRIES) {
			error = cs_error_set(CS_ELIMIT,
					     "%s: more than %d settings", path,
					     CONFIG_MAX_ENTRIES);
			break;
		}
		*eq = '\0';
		/* "key = value   # comment" */
		for (char *c = eq + 1; *c; c++)
			if (*c == '#' && (c[-1] == ' ' || c[-1] == '\t')) {
				*c = '\0';
				break;
			}
		node->config[node->nconfig].section = strdup(section);
		node->config[node->nconfig].key = strdup(trim(l));
		node->config[node->nconfig].value = strdup(trim(eq + 1));
		node->nconfig++;
	}
	free(section);
	return error;
}

static int
parse_number(uint64_t *out, const cs_node *node, const char *section,
	     const char *key, uint64_t dflt, int sizes)
{
	const char *v = cs_node_config_get(node, section, key);
	char *end;
	unsigned long long n;
	uint64_t unit = 1;

	*out = dflt;
	if (v == NULL)
		return 0;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (sizes && *end && end[1] == '\0') {
		switch (*end) {
		case 'K': case 'k': unit = 1ull << 10; end++; break;
		case 'M': case 'm': unit = 1ull << 20; end++; break;
		case 'G': case 'g': unit = 1ull << 30; end++; break;
		default: break;
		}
	}
	if (end == v || *end != '\0' || errno || *v == '-' ||
	    n > UINT64_MAX / unit)
		return cs_error_set(CS_EINVALID,
				    "[%s] %s = %s: expected %s", section, key,
				    v,
				    sizes ? "a size such as 512K, 64M or 2G"
					  : "a whole number");
	*out = n * unit;
	return 0;
}

int
cs_node_config_size(uint64_t *out, const cs_node *node, const char *section,
		    const char *key, uint64_t dflt)
{
	return parse_number(out, node, section, key, dflt, 1);
}

int
cs_node_config_uint(uint64_t *out, const cs_node *node, const char *section,
		    const char *key, uint64_t dflt)
{
	return parse_number(out, node, section, key, dflt, 0);
}

const char *
cs_node_config_get(const cs_node *node, const char *section, const char *key)
{
	for (size_t i = node->nconfig; i-- > 0;)
		if (strcmp(node->config[i].section, section) == 0 &&
		    strcmp(node->config[i].key, key) == 0)
			return node->config[i].value;
	return NULL;
}

/* Write a whole file through a temporary name, fsynced, then renamed. */
static int
write_file_atomic(const char *path, const char *data, size_t len, int mode)
{
	char *tmp = NULL;
	int fd, error = 0;

	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return cs_error_set(CS_ERROR, "out of memory");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len || fsync(fd) < 0) {
		error = cs_error_set(CS_ERROR, "cannot write '%s': %s", path,
				     strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		free(tmp);
		return error;
	}
	close(fd);
	if (rename(tmp, path) < 0)
		error = cs_error_set(CS_ERROR, "cannot write '%s': %s", path,
				     strerror(errno));
	free(tmp);
	return error;
}

static int
config_write(cs_node *node)
{
	char *path = join(node->dir, CS_NODE_CONFIG), *text = NULL;
	size_t len = 0;
	FILE *f;
	int error;

	if (path == NULL || (f = open_memstream(&text, &len)) == NULL) {
		free(path);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	fputs("# cartosync node configuration (docs/configuration.md)\n", f);
	for (size_t i = 0; i < node->nconfig; i++) {
		if (i == 0 || strcmp(node->config[i].section,
				     node->config[i - 1].section) != 0)
			fprintf(f, "%s[%s]\n", i ? "\n" : "",
				node->config[i].section);
		fprintf(f, "%s = %s\n", node->config[i].key,
			node->config[i].value);
	}
	fclose(f);
	error = write_file_atomic(path, text, len, 0644);
	free(text);
	free(path);
	return error;
}

static int
config_set(cs_node *node, const char *section, const char *key,
	   const char *value)
{
	config_entry *e;

	for (size_t i = 0; i < node->nconfig; i++) {
		e = &node->config[i];
		if (strcmp(e->section, section) == 0 &&
		    strcmp(e->key, key) == 0) {
			char *v = strdup(value);

			if (v == NULL)
				return cs_error_set(CS_ERROR, "out of memory");
			free(e->value);
			e->value = v;
			return 0;
		}
	}
	if (node->config == NULL &&
	    (node->config = calloc(CONFIG_MAX_ENTRIES, sizeof(*e))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	if (node->nconfig == CONFIG_MAX_ENTRIES)
		return cs_error_set(CS_ELIMIT, "too many settings");
	e = &node->config[node->nconfig];
	e->section = strdup(section);
	e->key = strdup(key);
	e->value = strdup(value);
	if (!e->section || !e->key || !e->value)
		return cs_error_set(CS_ERROR, "out of memory");
	node->nconfig++;
	return 0;
}

int
cs_node_config_set(cs_node *node, const char *section, const char *key,
		   const char *value)
{
	int error;

	if ((error = config_set(node, section, key, value)) < 0)
		return error;
	return config_write(node);
}

int
cs_node_config_remove_section(cs_node *node, const char *section)
{
	size_t k = 0, removed = 0;

	for (size_t i = 0; i < node->nconfig; i++) {
		config_entry *e = &node->config[i];

		if (strcmp(e->section, section) == 0) {
			free(e->section);
			free(e->key);
			free(e->value);
			removed++;
			continue;
		}
		node->config[k++] = *e;
	}
	node->nconfig = k;
	if (removed == 0)
		return cs_error_set(CS_ENOTFOUND, "no [%s] in %s", section,
				    CS_NODE_CONFIG);
	return config_write(node);
}

size_t
cs_node_config_sections(const cs_node *node, const char *prefix,
			const char **out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < node->nconfig; i++) {
		const char *sec = node->config[i].section;
		int seen = 0;

		if (strncmp(sec, prefix, strlen(prefix)) != 0)
			continue;
		for (size_t k = 0; k < n && k < max && !seen; k++)
			seen = strcmp(out[k], sec) == 0;
		if (seen)
			continue;
		if (n < max)
			out[n] = sec;
		n++;
	}
	return n;
}

static int
config_load(cs_node *node)
{
	char *path = join(node->dir, CS_NODE_CONFIG), *text = NULL;
	struct stat st;
	FILE *f = NULL;
	int error;

	if (path == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	if ((f = fopen(path, "r")) == NULL) {
		error = cs_error_set(errno == ENOENT ? CS_ENOTFOUND : CS_ERROR,
				     "'%s' is not a cartosync node: cannot"
				     " read %s: %s",
				     node->dir, CS_NODE_CONFIG,
				     strerror(errno));
		goto done;
	}
	if (fstat(fileno(f), &st) < 0 || st.st_size > CONFIG_MAX_BYTES) {
		error = cs_error_set(CS_ELIMIT, "%s is too large", path);
		goto done;
	}
	if ((text = calloc(1, (size_t)st.st_size + 1)) == NULL ||
	    fread(text, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		error = cs_error_set(CS_ERROR, "cannot read %s", path);
		goto done;
	}
	error = config_parse(node, text, path);
	if (error == 0 && cs_node_config_get(node, "node", "org") == NULL)
		error = cs_error_set(CS_EINVALID, "%s: no \"org\" in [node]",
				     path);
done:
	if (f)
		fclose(f);
	free(text);
	free(path);
	return error;
}

/* A node TLS key (Ed25519) and a self-signed certificate naming the org. */
static int
tls_identity_create(const char *dir, const char *org, const char *existing)
{
	char *key_path = join(dir, CS_NODE_TLS_KEY);
	char *cert_path = join(dir, CS_NODE_TLS_CERT);
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	X509 *cert = NULL;
	X509_NAME *name;
	FILE *f = NULL;
	int fd, error = CS_ERROR;

	if (key_path == NULL || cert_path == NULL)
		goto done;
	if (existing) {
		if ((f = fopen(existing, "r")) == NULL ||
		    (pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL)) == NULL) {
			error = cs_error_set(CS_EINVALID,
					     "'%s' is not a PEM private key",
					     existing);
			goto done;
		}
		fclose(f);
		f = NULL;
	} else if ((ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL)) ==
			   NULL ||
		   EVP_PKEY_keygen_init(ctx) <= 0 ||
		   EVP_PKEY_keygen(ctx, &pkey) <= 0) {
		goto tls_error;
	}
	fd = open(key_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		error = cs_error_set(CS_ERROR, "cannot create '%s': %s",
				     key_path, strerror(errno));
		goto done;
	}
	if (!PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) ||
	    fflush(f) != 0 || fsync(fileno(f)) < 0)
		goto tls_error;
	fclose(f);
	f = NULL;

	/* Peers identify the node by its public key's hash, never by the
	 * certificate's names, so a self-signed certificate is enough. */
	if ((cert = X509_new()) == NULL || !X509_set_version(cert, 2) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) ||
	    !X509_gmtime_adj(X509_getm_notBefore(cert), 0) ||
	    !X509_gmtime_adj(X509_getm_notAfter(cert),
			     (long)60 * 60 * 24 * 365 * 20) ||
	    !X509_set_pubkey(cert, pkey))
		goto tls_error;
	name = X509_get_subject_name(cert);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
					(const unsigned char *)org, -1, -1,
					0) ||
	    !X509_set_issuer_name(cert, name) ||
	    X509_sign(cert, pkey, NULL) <= 0)
		goto tls_error;
	if ((f = fopen(cert_path, "w")) == NULL || !PEM_write_X509(f, cert) ||
	    fflush(f) != 0 || fsync(fileno(f)) < 0)
		goto tls_error;
	error = 0;
	goto done;
tls_error:
	error = cs_error_set(CS_ERROR, "cannot create the node TLS identity");
done:
	if (f)
		fclose(f);
	X509_free(cert);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	free(key_path);
	free(cert_path);
	return error;
}

int
cs_node_tls_hash(char **out, cs_node *node)
{
	char *path = join(node->dir, CS_NODE_TLS_KEY);
	EVP_PKEY *pkey = NULL;
	FILE *f = NULL;
	int error;

	*out = NULL;
	if (path == NULL || (f = fopen(path, "r")) == NULL) {
		error = cs_error_set(CS_ENOTFOUND, "cannot read the TLS key %s",
				     path ? path : "");
		goto done;
	}
	if ((pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL)) == NULL) {
		error = cs_error_set(CS_EINVALID, "%s is not a TLS key", path);
		goto done;
	}
	error = cs_tls_key_hash(out, pkey);
done:
	if (f)
		fclose(f);
	EVP_PKEY_free(pkey);
	free(path);
	return error;
}

static int
node_new(cs_node **out, const char *dir)
{
	cs_node *node = calloc(1, sizeof(*node));
	size_t len;

	if (node == NULL || (node->dir = strdup(dir)) == NULL) {
		free(node);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	len = strlen(node->dir);
	while (len > 1 && node->dir[len - 1] == '/')
		node->dir[--len] = '\0';
	*out = node;
	return 0;
}

int
cs_node_create(cs_node **out, const char *dir, const char *org)
{
	return cs_node_create_with_keys(out, dir, org, NULL, NULL);
}

int
cs_node_create_with_keys(cs_node **out, const char *dir, const char *org,
			 const char *signing_key, const char *tls_key)
{
	cs_node *node = NULL;
	cs_key *key = NULL;
	char *keys = NULL, *key_path = NULL, *comment = NULL;
	struct stat st;
	int error;

	*out = NULL;
	if (!cs_org_code_valid(org))
		return cs_error_set(CS_EINVALID,
				    "organisation code \"%s\" must be 2-32"
				    " characters a-z, 0-9 and '-', starting"
				    " with a letter",
				    org);
	if (stat(dir, &st) == 0) {
		char *cfg = join(dir, CS_NODE_CONFIG);
		int exists = cfg && access(cfg, F_OK) == 0;
		DIR *d = opendir(dir);
		struct dirent *e;
		int empty = d != NULL;

		free(cfg);
		while (d && (e = readdir(d)) != NULL)
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				empty = 0;
		if (d)
			closedir(d);
		if (exists)
			return cs_error_set(CS_EEXISTS,
					    "'%s' is a cartosync node already",
					    dir);
		if (!empty)
			return cs_error_set(CS_EEXISTS,
					    "'%s' exists and is not empty: a"
					    " node needs a new directory",
					    dir);
	}
	if ((error = node_new(&node, dir)) < 0)
		return error;
	if ((error = cs_repo_init(&node->repo, dir)) < 0)
		goto done;
	keys = join(node->dir, "keys");
	key_path = join(node->dir, CS_NODE_SIGNING_KEY);
	if (keys == NULL || key_path == NULL ||
	    asprintf(&comment, "%s@cartosync", org) < 0) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	if (mkdir(keys, 0700) < 0 && errno != EEXIST) {
		error = cs_error_set(CS_ERROR, "cannot create '%s': %s", keys,
				     strerror(errno));
		goto done;
	}
	if ((error = signing_key ? cs_key_load_private(&key, signing_key)
				 : cs_key_generate(&key)) < 0 ||
	    (error = cs_key_save_private(key, key_path, comment)) < 0 ||
	    (error = tls_identity_create(node->dir, org, tls_key)) < 0)
		goto done;
	if ((error = config_set(node, "node", "org", org)) < 0 ||
	    (error = config_set(node, "node", "signing-key",
				CS_NODE_SIGNING_KEY)) < 0 ||
	    (error = config_set(node, "node", "tls-key", CS_NODE_TLS_KEY)) <
		    0 ||
	    (error = config_set(node, "node", "tls-cert", CS_NODE_TLS_CERT)) <
		    0 ||
	    (error = config_write(node)) < 0)
		goto done;
	node->key = key;
	key = NULL; /* transferred */
	*out = node;
	node = NULL; /* transferred */
	error = 0;
done:
	cs_key_free(key);
	cs_node_free(node);
	free(keys);
	free(key_path);
	free(comment);
	return error;
}

int
cs_node_open(cs_node **out, const char *dir)
{
	cs_node *node = NULL;
	int error;

	*out = NULL;
	if ((error = node_new(&node, dir)) < 0)
		return error;
	if ((error = config_load(node)) < 0 ||
	    (error = cs_repo_open(&node->repo, node->dir)) < 0) {
		cs_node_free(node);
		return error;
	}
	*out = node;
	return 0;
}

void
cs_node_free(cs_node *node)
{
	if (node == NULL)
		return;
	cs_repo_free(node->repo);
	cs_key_free(node->key);
	config_clear(node);
	free(node->dir);
	free(node);
}

#define LOOSE_AFTER_PACKING "loose-after-packing"

/* The loose objects the last packing left (0: none recorded). */
static size_t
loose_after_packing(const cs_node *node)
{
	char *path = NULL;
	unsigned long long n = 0;
	FILE *f;

	if (asprintf(&path, "%s/%s", node->dir, LOOSE_AFTER_PACKING) < 0)
		return 0;
	if ((f = fopen(path, "r")) != NULL) {
		if (fscanf(f, "%llu", &n) != 1)
			n = 0;
		fclose(f);
	}
	free(path);
	return (size_t)n;
}

static void
note_loose_after_packing(const cs_node *node, size_t n)
{
	char *path = NULL, *tmp = NULL;
	FILE *f;

	if (asprintf(&path, "%s/%s", node->dir, LOOSE_AFTER_PACKING) >= 0 &&
	    asprintf(&tmp, "%s.tmp", path) >= 0 &&
	    (f = fopen(tmp, "w")) != NULL) {
		int ok = fprintf(f, "%zu\n", n) > 0;

		if (fclose(f) == 0 && ok)
			rename(tmp, path);
		else
			unlink(tmp);
	}
	free(path);
	free(tmp);
}

/* What the store wants; the counts it was judged by, what the last
 * packing left as recorded, and the loose objects to count from. */
static int
pack_wanted(cs_node *node, cs_repo_store_counts *counts, size_t *recorded,
	    size_t *left)
{
	cs_repo_store_count(counts, node->repo);
	*left = *recorded = loose_after_packing(node);
	/* Fewer than were left: something else packed or pruned them. */
	if (counts->loose < *left)
		*left = counts->loose;
	return cs_repo_store_wants(counts, *left);
}

int
cs_node_pack_wanted(cs_node *node)
{
	cs_repo_store_counts counts;
	size_t recorded, left;

	return pack_wanted(node, &counts, &recorded, &left);
}

int
cs_node_pack(cs_node *node, int *done, cs_repo_store_counts *before,
	     cs_repo_store_counts *after)
{
	int held = cs_repo_locked(node->repo), error = 0, how;
	size_t recorded, left;

	*done = CS_REPO_PACK_NONE;
	if (!held && (error = cs_repo_lock(node->repo)) < 0)
		return error;
	how = pack_wanted(node, before, &recorded, &left);
	*after = *before;
	if (how != CS_REPO_PACK_NONE) {
		if ((error = cs_repo_pack(node->repo, how)) == 0) {
			*done = how;
			cs_repo_store_count(after, node->repo);
			note_loose_after_packing(node, after->loose);
		}
	} else if (left < recorded) {
		note_loose_after_packing(node, left);
	}
	if (!held)
		cs_repo_unlock(node->repo);
	return error;
}

const char *
cs_node_dir(const cs_node *node)
{
	return node->dir;
}

const char *
cs_node_org(const cs_node *node)
{
	return cs_node_config_get(node, "node", "org");
}

cs_repo *
cs_node_repo(cs_node *node)
{
	return node->repo;
}

int
cs_node_key(const cs_key **out, cs_node *node)
{
	const char *rel = cs_node_config_get(node, "node", "signing-key");
	char *path;
	int error;

	*out = NULL;
	if (node->key == NULL) {
		if (rel == NULL)
			rel = CS_NODE_SIGNING_KEY;
		path = rel[0] == '/' ? strdup(rel) : join(node->dir, rel);
		if (path == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		error = cs_key_load_private(&node->key, path);
		free(path);
		if (error < 0)
			return error;
	}
	*out = node->key;
	return 0;
}

int
cs_node_genesis(cs_oid *out, const cs_node *node)
{
	const char *hex = cs_node_config_get(node, "node", "genesis");

	if (hex == NULL)
		return cs_error_set(CS_ENOTFOUND,
				    "the node has no genesis pinned");
	return cs_oid_parse(out, hex, strlen(hex));
}

int
cs_node_set_genesis(cs_node *node, const cs_oid *genesis)
{
	char hex[CS_OID_HEXSZ + 1];
	int error;

	cs_oid_fmt(hex, genesis);
	if ((error = config_set(node, "node", "genesis", hex)) < 0)
		return error;
	return config_write(node);
}

int
cs_node_write_json(cs_oid *out, cs_node *node, const json_t *value)
{
	char *text = NULL;
	size_t len = 0;
	int error;

	if ((error = cs_json_canonical(&text, &len, value)) < 0)
		return error;
	error = cs_repo_write_blob(out, node->repo, text, len);
	free(text);
	return error;
}

int
cs_node_main(cs_oid *out, cs_node *node)
{
	return cs_repo_ref_read(out, node->repo, CS_REF_MAIN);
}

/*
 * Commit time: now, or $CARTOSYNC_TIME (seconds since the epoch) for
 * reproducible histories, as git's GIT_COMMITTER_DATE.
 */
static int64_t
commit_time(void)
{
	const char *fixed = getenv("CARTOSYNC_TIME");
	char *end;
	long long t;

	if (fixed && *fixed) {
		t = strtoll(fixed, &end, 10);
		if (*end == '\0' && t >= 0)
			return (int64_t)t;
	}
	return (int64_t)time(NULL);
}

static int
sign_and_write(cs_oid *out, cs_node *node, const cs_key *key,
	       const cs_oid *base, const cs_oid *tree, const char *message)
{
	cs_commit commit;
	char *payload = NULL, *armor = NULL, *signed_text = NULL;
	char *fp = cs_key_fingerprint(key);
	size_t payload_len = 0, signed_len = 0;
	int error;

	memset(&commit, 0, sizeof(commit));
	commit.kind = base ? CS_COMMIT_EDIT : CS_COMMIT_GENESIS;
	commit.tree = *tree;
	if (base) {
		commit.parents[0] = *base;
		commit.parent_count = 1;
	}
	/* The author is the organisation and its key: no personal names in
	 * the history (docs/record-model.md, "Privacy"). */
	commit.author.name = (char *)cs_node_org(node);
	commit.author.email = fp;
	commit.author.time = commit_time();
	commit.committer = commit.author;
	commit.message = (char *)message;
	if (fp == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	if ((error = cs_commit_format_payload(&payload, &payload_len,
					      &commit)) < 0 ||
	    (error = cs_sshsig_sign(&armor, key, CS_SSHSIG_NAMESPACE_GIT,
				    (const uint8_t *)payload, payload_len)) <
		    0 ||
	    (error = cs_commit_add_signature(&signed_text, &signed_len,
					     payload, payload_len, armor)) < 0)
		goto done;
	error = cs_repo_write_commit_raw(out, node->repo, signed_text,
					 signed_len);
done:
	free(fp);
	free(payload);
	free(armor);
	free(signed_text);
	return error;
}

/*
 * The same change applied to main's tree, judged by the consortium main
 * holds: only a refusal of authority counts (the merge settles anything
 * else).
 */
static int
authority_now(cs_node *node, const cs_oid *main_id,
	      const cs_tree_update *updates, size_t count, const cs_key *key)
{
	cs_oid main_tree, tree;
	int error;

	if ((error = cs_repo_commit_tree(&main_tree, node->repo, main_id)) <
		    0 ||
	    (error = cs_repo_tree_update(&tree, node->repo, &main_tree,
					 updates, count)) < 0)
		return error;
	error = cs_verify_edit_preflight(node->repo, main_id, &tree, key);
	if (error == CS_EPERM)
		return cs_error_prefix(error, "as of this node's main");
	return 0;
}

int
cs_node_upgrade_needed(cs_node *node, int version, const char *where)
{
	char *path = join(node->dir, CS_NODE_UPGRADE_NEEDED), *text = NULL;
	time_t now = time(NULL);
	int len, error;

	if (path == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	len = asprintf(&text, "%d %lld %s\n", version, (long long)now, where);
	if (len < 0) {
		free(path);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	error = write_file_atomic(path, text, (size_t)len, 0644);
	free(text);
	free(path);
	return error;
}

int
cs_node_check_upgrade(cs_node *node)
{
	char *path = join(node->dir, CS_NODE_UPGRADE_NEEDED);
	char where[512] = "";
	long long when = 0;
	int version = 0, error = 0;
	FILE *f;

	if (path == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	if ((f = fopen(path, "r")) != NULL) {
		if (fscanf(f, "%d %lld %511[^\n]", &version, &when, where) < 1)
			version = 0;
		fclose(f);
		if (version > CS_PROTOCOL_VERSION)
			error = cs_error_set(
				CS_EPERM,
				"this node met protocol version %d (at %s),"
				" which this cartosync does not implement:"
				" upgrade cartosync before writing",
				version, where);
		else
			unlink(path); /* upgraded since */
	}
	free(path);
	return error;
}

int
cs_node_commit(cs_oid *out, int *in_main, cs_node *node, const cs_oid *base,
	       const cs_tree_update *updates, size_t count,
	       const char *message)
{
	const cs_key *key = NULL;
	cs_oid base_tree, tree, main_id, commit;
	char hex[CS_OID_HEXSZ + 1], ref[128];
	int error, has_main;

	*in_main = 0;
	if ((error = cs_node_check_upgrade(node)) < 0 ||
	    (error = cs_node_key(&key, node)) < 0)
		return error;
	if ((error = cs_repo_lock(node->repo)) < 0)
		return error;
	if (base && (error = cs_repo_commit_tree(&base_tree, node->repo,
						 base)) < 0)
		goto done;
	if ((error = cs_repo_tree_update(&tree, node->repo,
					 base ? &base_tree : NULL, updates,
					 count)) < 0)
		goto done;
	if (base && cs_oid_cmp(&tree, &base_tree) == 0) {
		error = cs_error_set(CS_EINVALID, "nothing to commit: the"
						  " change leaves the map as"
						  " it was");
		goto done;
	}
	if (base &&
	    (error = cs_verify_edit_preflight(node->repo, base, &tree, key)) <
		    0)
		goto done;
	error = cs_repo_ref_read(&main_id, node->repo, CS_REF_MAIN);
	if (error < 0 && error != CS_ENOTFOUND)
		goto done;
	has_main = error == 0;
	/* An edit on an older base must also be allowed by what the node
	 * holds now: a revocation or a narrowed policy it knows of would
	 * reject the edit the moment it is merged (docs/protocol.md §4). */
	if (base && has_main && cs_oid_cmp(&main_id, base) != 0 &&
	    (error = authority_now(node, &main_id, updates, count, key)) < 0)
		goto done;
	if ((error = sign_and_write(&commit, node, key, base, &tree,
				    message)) < 0)
		goto done;

	if ((!has_main && base == NULL) ||
	    (has_main && base && cs_oid_cmp(&main_id, base) == 0)) {
		error = cs_repo_ref_cas(node->repo, CS_REF_MAIN, &commit,
					has_main ? &main_id : NULL, message);
		*in_main = error == 0;
	} else {
		/* main moved since the editor read `base`: hold the edit by
		 * its own ref; the merge reconciles it (docs/merge.md). */
		cs_oid_fmt(hex, &commit);
		snprintf(ref, sizeof(ref), CS_REF_EDITS "%s", hex);
		error = cs_repo_ref_cas(node->repo, ref, &commit, NULL,
					message);
	}
	if (error < 0)
		goto done;
	*out = commit;
done:
	cs_repo_unlock(node->repo);
	return error;
}
