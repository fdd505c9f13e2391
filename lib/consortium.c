/*
 * Members, keys, roles and write policy as of one tree.
 *
 * Loaded states are reused.  Loading compiles every schema of
 * consortium/schema/ (tens of milliseconds), and one sync loads the same
 * state many times: each verification and each of its threads, the merge,
 * the preflight of an edit, the daemon for each connection.  A state is a
 * function of the files it is made of, so cs_consortium_load() keys it by
 * their ids (members, policy and protocol files, schema folder), and
 * cs_consortium_free() puts a loaded state back in a small pool instead of
 * freeing it; the next load of the same files takes it out.  A state is
 * held by one caller at a time, never shared: regexec() locks a compiled
 * pattern, so two threads matching with one would wait for each other.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/consortium.h"
#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/sshsig.h"

struct cs_consortium {
	json_t *members;
	json_t *policy;
	json_t *protocol;
	cs_schema_set *schemas;
	cs_member_key *keys; /* member keys, then root keys */
	size_t nkeys;        /* member keys */
	size_t nroot;        /* root keys after them */
	int threshold;
	int protocol_version;
	int keyed;        /* loaded from a tree: `key` names its files */
	cs_oid key[4];
};

#define POOL_MAX 8

/* Loaded states nobody holds, the most recently put back last. */
static struct {
	pthread_mutex_t lock;
	cs_consortium *states[POOL_MAX];
	size_t n;
} pool = {PTHREAD_MUTEX_INITIALIZER, {NULL}, 0};

static void
member_key_dispose(cs_member_key *k)
{
	cs_key_free(k->key);
	free(k->fingerprint);
	free(k->org);
	free(k->holder);
	free(k->tls);
}

static void
consortium_dispose(cs_consortium *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nkeys + c->nroot; i++)
		member_key_dispose(&c->keys[i]);
	free(c->keys);
	json_decref(c->members);
	json_decref(c->policy);
	json_decref(c->protocol);
	cs_schema_set_free(c->schemas);
	free(c);
}

void
cs_consortium_free(cs_consortium *c)
{
	cs_consortium *evicted = NULL;

	if (c == NULL || !c->keyed) {
		consortium_dispose(c);
		return;
	}
	pthread_mutex_lock(&pool.lock);
	if (pool.n == POOL_MAX) {
		evicted = pool.states[0];
		memmove(pool.states, pool.states + 1,
			(POOL_MAX - 1) * sizeof(*pool.states));
		pool.n--;
	}
	pool.states[pool.n++] = c;
	pthread_mutex_unlock(&pool.lock);
	consortium_dispose(evicted);
}

/* A state made of the files `key` names, taken out of the pool, or NULL. */
static cs_consortium *
pool_take(const cs_oid key[4])
{
	cs_consortium *found = NULL;

	pthread_mutex_lock(&pool.lock);
	for (size_t i = pool.n; i-- > 0;)
		if (memcmp(pool.states[i]->key, key, 4 * sizeof(*key)) == 0) {
			found = pool.states[i];
			memmove(pool.states + i, pool.states + i + 1,
				(pool.n - i - 1) * sizeof(*pool.states));
			pool.n--;
			break;
		}
	pthread_mutex_unlock(&pool.lock);
	return found;
}

/* The ids of the files a state of `tree` is made of (zeros: absent). */
static int
state_key(cs_oid key[4], cs_repo *repo, const cs_oid *tree)
{
	static const char *const paths[4] = {CS_PATH_MEMBERS, CS_PATH_POLICY,
					     CS_PATH_PROTOCOL,
					     CS_PATH_SCHEMA_DIR};
	int error;

	for (int i = 0; i < 4; i++) {
		memset(&key[i], 0, sizeof(key[i]));
		error = cs_repo_tree_lookup(&key[i], NULL, repo, tree,
					    paths[i]);
		if (error < 0 && error != CS_ENOTFOUND)
			return error;
	}
	return 0;
}

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int
add_key(cs_consortium *c, const char *line, const char *org,
	const char *holder, const char *tls, cs_role role, int revoked)
{
	cs_member_key *k = &c->keys[c->nkeys + c->nroot];
	int error;

	memset(k, 0, sizeof(*k));
	if ((error = cs_key_parse_public(&k->key, line)) < 0)
		return cs_error_prefix(error, "%s", CS_PATH_MEMBERS);
	for (size_t i = 0; i < c->nkeys + c->nroot; i++) {
		if (cs_key_equal(c->keys[i].key, k->key) &&
		    (c->keys[i].role == CS_ROLE_ROOT) == (role == CS_ROLE_ROOT)) {
			cs_key_free(k->key);
			k->key = NULL;
			return cs_error_set(CS_EINVALID,
					    "%s: key '%.40s…' is listed twice",
					    CS_PATH_MEMBERS, line);
		}
	}
	k->fingerprint = cs_key_fingerprint(k->key);
	k->org = dup_or_null(org);
	k->holder = dup_or_null(holder);
	k->tls = dup_or_null(tls);
	k->role = role;
	k->revoked = revoked;
	if (k->fingerprint == NULL || (org && !k->org) ||
	    (holder && !k->holder) || (tls && !k->tls)) {
		member_key_dispose(k);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	return 0;
}

static int
parse_members(cs_consortium *c)
{
	json_t *orgs = json_object_get(c->members, "organizations");
	json_t *keys = json_object_get(c->members, "keys");
	json_t *root = json_object_get(c->members, "root");
	json_t *root_keys = json_object_get(root, "keys");
	size_t i, total;
	json_t *v;
	int error;

	if (!json_is_object(orgs) || !json_is_array(keys) ||
	    !json_is_object(root) || !json_is_array(root_keys))
		return cs_error_set(CS_EINVALID,
				    "%s: needs \"organizations\", \"keys\" and"
				    " \"root\"",
				    CS_PATH_MEMBERS);
	total = json_array_size(keys) + json_array_size(root_keys);
	if ((c->keys = calloc(total ? total : 1, sizeof(*c->keys))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");

	json_array_foreach(keys, i, v) {
		const char *line = json_string_value(json_object_get(v, "key"));
		const char *org = json_string_value(json_object_get(v, "org"));
		const char *role = json_string_value(json_object_get(v, "role"));
		cs_role r;

		if (line == NULL || org == NULL || role == NULL)
			return cs_error_set(CS_EINVALID,
					    "%s: /keys/%zu needs \"key\","
					    " \"org\" and \"role\"",
					    CS_PATH_MEMBERS, i);
		if (strcmp(role, "coordinator") == 0)
			r = CS_ROLE_COORDINATOR;
		else if (strcmp(role, "member") == 0)
			r = CS_ROLE_MEMBER;
		else
			return cs_error_set(CS_EINVALID,
					    "%s: /keys/%zu/role: \"%s\" is not"
					    " a role",
					    CS_PATH_MEMBERS, i, role);
		if (!json_is_object(json_object_get(orgs, org)))
			return cs_error_set(CS_EINVALID,
					    "%s: /keys/%zu/org: organisation"
					    " \"%s\" is not listed",
					    CS_PATH_MEMBERS, i, org);
		if ((error = add_key(
			     c, line, org,
			     json_string_value(json_object_get(v, "holder")),
			     json_string_value(json_object_get(v, "tls")), r,
			     json_object_get(v, "revoked") != NULL &&
				     !json_is_false(
					     json_object_get(v, "revoked")))) <
		    0)
			return error;
		c->nkeys++;
	}
	json_array_foreach(root_keys, i, v) {
		if (!json_is_string(v))
			return cs_error_set(CS_EINVALID,
					    "%s: /root/keys/%zu is not a key",
					    CS_PATH_MEMBERS, i);
		if ((error = add_key(c, json_string_value(v), NULL, "root",
				     NULL, CS_ROLE_ROOT, 0)) < 0)
			return error;
		c->nroot++;
	}
	v = json_object_get(root, "threshold");
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    (size_t)json_integer_value(v) > c->nroot)
		return cs_error_set(CS_EINVALID,
				    "%s: /root/threshold must be between 1 and"
				    " the number of root keys (%zu)",
				    CS_PATH_MEMBERS, c->nroot);
	c->threshold = (int)json_integer_value(v);
	return 0;
}

static int
parse_protocol(cs_consortium *c)
{
	json_t *v = json_object_get(c->protocol, "protocol");
	const char *merge =
		json_string_value(json_object_get(c->protocol, "merge"));

	if (!json_is_integer(v) || json_integer_value(v) < 1 || merge == NULL)
		return cs_error_set(CS_EINVALID,
				    "%s: needs \"protocol\" (a positive"
				    " integer) and \"merge\"",
				    CS_PATH_PROTOCOL);
	c->protocol_version = (int)json_integer_value(v);
	return 0;
}

int
cs_consortium_from_json(cs_consortium **out, const json_t *members,
			const json_t *policy, const json_t *protocol,
			cs_schema_set *schemas)
{
	cs_consortium *c = calloc(1, sizeof(*c));
	int error;

	*out = NULL;
	if (c == NULL) {
		cs_schema_set_free(schemas);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	c->schemas = schemas;
	c->members = json_deep_copy(members);
	c->policy = json_deep_copy(policy);
	c->protocol = json_deep_copy(protocol);
	if (!c->members || !c->policy || !c->protocol) {
		error = cs_error_set(CS_EINVALID,
				     "consortium files are missing");
		goto done;
	}
	if (!json_is_object(json_object_get(c->policy, "write"))) {
		error = cs_error_set(CS_EINVALID, "%s: needs \"write\"",
				     CS_PATH_POLICY);
		goto done;
	}
	if ((error = parse_members(c)) < 0 || (error = parse_protocol(c)) < 0)
		goto done;
	*out = c;
	c = NULL; /* transferred */
	error = 0;
done:
	cs_consortium_free(c);
	return error;
}

static int
load_json(json_t **out, cs_repo *repo, const cs_oid *tree, const char *path)
{
	cs_oid blob;
	char *buf = NULL;
	size_t len = 0;
	int error;

	*out = NULL;
	if ((error = cs_repo_tree_lookup(&blob, NULL, repo, tree, path)) < 0)
		return error == CS_ENOTFOUND
			       ? cs_error_set(CS_EINVALID, "'%s' is missing",
					      path)
			       : error;
	if ((error = cs_repo_read_blob(&buf, &len, repo, &blob,
				       CS_JSON_MAX_BYTES)) < 0)
		return cs_error_prefix(error, "%s", path);
	error = cs_json_parse(out, buf, len, path);
	free(buf);
	return error;
}

/* The documents of consortium/schema/, read before they are compiled. */
typedef struct {
	cs_repo *repo;
	char **names;
	json_t **docs;
	size_t n, cap;
} schema_walk;

static int
read_schema_file(const char *path, const cs_oid *id, unsigned mode,
		 void *payload)
{
	schema_walk *w = payload;
	const char *name = strrchr(path, '/');
	char *buf = NULL;
	size_t len = 0;
	json_t *doc = NULL;
	int error;

	(void)mode;
	name = name ? name + 1 : path;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		char **names = realloc(w->names, cap * sizeof(*names));
		json_t **docs = names ? realloc(w->docs, cap * sizeof(*docs))
				      : NULL;

		if (names)
			w->names = names;
		if (docs == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		w->docs = docs;
		w->cap = cap;
	}
	if ((error = cs_repo_read_blob(&buf, &len, w->repo, id,
				       CS_JSON_MAX_BYTES)) < 0)
		return cs_error_prefix(error, "%s", path);
	error = cs_json_parse(&doc, buf, len, path);
	free(buf);
	if (error < 0)
		return error;
	if ((w->names[w->n] = strdup(name)) == NULL) {
		json_decref(doc);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	w->docs[w->n++] = doc;
	return 0;
}

/* The schemas of consortium/schema/ in `tree`, compiled once. */
static int
load_schemas(cs_schema_set **out, cs_repo *repo, const cs_oid *tree)
{
	schema_walk w = {repo, NULL, NULL, 0, 0};
	int error;

	*out = NULL;
	if ((error = cs_schema_set_new(out)) < 0)
		return error;
	if ((error = cs_repo_walk(repo, tree, CS_PATH_SCHEMA_DIR,
				  read_schema_file, &w)) == 0 &&
	    (error = cs_schema_set_add_all(*out, w.n,
					   (const char *const *)w.names,
					   w.docs)) < 0)
		error = cs_error_prefix(error, "%s", CS_PATH_SCHEMA_DIR);
	for (size_t i = 0; i < w.n; i++) {
		free(w.names[i]);
		json_decref(w.docs[i]);
	}
	free(w.names);
	free(w.docs);
	if (error < 0) {
		cs_schema_set_free(*out);
		*out = NULL;
	}
	return error;
}

int
cs_consortium_load(cs_consortium **out, cs_repo *repo, const cs_oid *tree)
{
	json_t *members = NULL, *policy = NULL, *protocol = NULL;
	cs_schema_set *schemas = NULL;
	cs_oid key[4];
	int error;

	*out = NULL;
	if ((error = state_key(key, repo, tree)) < 0)
		return error;
	if ((*out = pool_take(key)) != NULL)
		return 0;
	if ((error = load_json(&members, repo, tree, CS_PATH_MEMBERS)) < 0 ||
	    (error = load_json(&policy, repo, tree, CS_PATH_POLICY)) < 0 ||
	    (error = load_json(&protocol, repo, tree, CS_PATH_PROTOCOL)) < 0)
		goto done;
	if ((error = load_schemas(&schemas, repo, tree)) < 0)
		goto done;
	error = cs_consortium_from_json(out, members, policy, protocol,
					schemas);
	if (error == 0) {
		(*out)->keyed = 1;
		memcpy((*out)->key, key, sizeof(key));
	}
done:
	json_decref(members);
	json_decref(policy);
	json_decref(protocol);
	return error;
}

int
cs_consortium_schema_dir(const cs_consortium *c, cs_oid *out)
{
	if (!c->keyed || cs_oid_is_zero(&c->key[3]))
		return CS_ENOTFOUND;
	*out = c->key[3];
	return 0;
}

const cs_member_key *
cs_consortium_find_key(const cs_consortium *c, const cs_key *key)
{
	for (size_t i = 0; i < c->nkeys + c->nroot; i++)
		if (cs_key_equal(c->keys[i].key, key))
			return &c->keys[i];
	return NULL;
}

size_t
cs_consortium_key_count(const cs_consortium *c)
{
	return c->nkeys;
}

const cs_member_key *
cs_consortium_key_at(const cs_consortium *c, size_t i)
{
	return i < c->nkeys ? &c->keys[i] : NULL;
}

int
cs_consortium_org_active(const cs_consortium *c, const char *org)
{
	json_t *o = json_object_get(json_object_get(c->members,
						    "organizations"),
				    org);

	return json_is_object(o) && !json_is_true(json_object_get(o, "removed"));
}

const char *
cs_consortium_org_name(const cs_consortium *c, const char *org)
{
	return json_string_value(json_object_get(
		json_object_get(json_object_get(c->members, "organizations"),
				org),
		"name"));
}

/*
 * Match a path against a write pattern: segments compared one by one, "*"
 * matches one whole segment, a final "**" matches one or more segments,
 * "{org}" stands for the signer's organisation.
 */
static int
pattern_matches(const char *pattern, const char *path, const char *org)
{
	while (*pattern) {
		const char *pend = strchr(pattern, '/');
		const char *send = strchr(path, '/');
		size_t plen = pend ? (size_t)(pend - pattern) : strlen(pattern);
		size_t slen = send ? (size_t)(send - path) : strlen(path);

		if (*path == '\0')
			return 0;
		if (plen == 2 && memcmp(pattern, "**", 2) == 0 && !pend)
			return 1;
		if (plen == 5 && memcmp(pattern, "{org}", 5) == 0) {
			if (org == NULL || strlen(org) != slen ||
			    memcmp(org, path, slen) != 0)
				return 0;
		} else if (!(plen == 1 && *pattern == '*') &&
			   (plen != slen || memcmp(pattern, path, slen) != 0)) {
			return 0;
		}
		if (!pend)
			return send == NULL;
		if (!send)
			return 0;
		pattern = pend + 1;
		path = send + 1;
	}
	return *path == '\0';
}

int
cs_policy_allows(const cs_consortium *c, const cs_member_key *signer,
		 const char *path)
{
	const char *role;
	json_t *patterns, *p;
	size_t i;

	if (signer == NULL || signer->revoked)
		return 0;
	if (signer->role == CS_ROLE_ROOT)
		return strcmp(path, CS_PATH_MEMBERS) == 0 ||
		       strcmp(path, CS_PATH_ROOT_APPROVAL) == 0;
	if (!cs_consortium_org_active(c, signer->org))
		return 0;
	role = signer->role == CS_ROLE_COORDINATOR ? "coordinator" : "member";
	patterns = json_object_get(json_object_get(c->policy, "write"), role);
	json_array_foreach(patterns, i, p) {
		if (json_is_string(p) &&
		    pattern_matches(json_string_value(p), path, signer->org))
			return 1;
	}
	return 0;
}

static int
power_subset(const cs_consortium *a, const cs_consortium *b)
{
	for (size_t i = 0; i < a->nkeys; i++) {
		const cs_member_key *k = &a->keys[i];
		int found = 0;

		if (k->role != CS_ROLE_COORDINATOR || k->revoked ||
		    !cs_consortium_org_active(a, k->org))
			continue;
		for (size_t j = 0; j < b->nkeys && !found; j++) {
			const cs_member_key *m = &b->keys[j];

			found = m->role == CS_ROLE_COORDINATOR &&
				!m->revoked &&
				cs_consortium_org_active(b, m->org) &&
				strcmp(m->org, k->org) == 0 &&
				cs_key_equal(m->key, k->key);
		}
		if (!found)
			return 0;
	}
	for (size_t i = a->nkeys; i < a->nkeys + a->nroot; i++)
		if (!cs_consortium_is_root_key(b, a->keys[i].key))
			return 0;
	return 1;
}

int
cs_consortium_power_changed(const cs_consortium *before,
			    const cs_consortium *after)
{
	return before->threshold != after->threshold ||
	       before->nroot != after->nroot || !power_subset(before, after) ||
	       !power_subset(after, before);
}

int
cs_consortium_root_threshold(const cs_consortium *c)
{
	return c->threshold;
}

int
cs_consortium_is_root_key(const cs_consortium *c, const cs_key *key)
{
	for (size_t i = c->nkeys; i < c->nkeys + c->nroot; i++)
		if (cs_key_equal(c->keys[i].key, key))
			return 1;
	return 0;
}

int
cs_consortium_protocol(const cs_consortium *c)
{
	return c->protocol_version;
}

const cs_schema_set *
cs_consortium_schemas(const cs_consortium *c)
{
	return c->schemas;
}

const json_t *
cs_consortium_members(const cs_consortium *c)
{
	return c->members;
}

const json_t *
cs_consortium_policy(const cs_consortium *c)
{
	return c->policy;
}

char *
cs_root_approval_message(const cs_oid *parent, const cs_oid *members_blob)
{
	char p[CS_OID_HEXSZ + 1], m[CS_OID_HEXSZ + 1];
	char *s = NULL;

	cs_oid_fmt(p, parent);
	cs_oid_fmt(m, members_blob);
	if (asprintf(&s, "cartosync-root-approval/1\nparent %s\nmembers %s\n",
		     p, m) < 0)
		return NULL;
	return s;
}

int
cs_root_approval_check(const cs_consortium *before, const json_t *approval,
		       const cs_oid *parent, const cs_oid *members_blob)
{
	const char *p = json_string_value(json_object_get(approval, "parent"));
	const char *m = json_string_value(json_object_get(approval, "members"));
	json_t *sigs = json_object_get(approval, "signatures"), *s;
	cs_key **seen = NULL;
	char *message = NULL;
	size_t i, nseen = 0;
	cs_oid op, om;
	int error;

	if (p == NULL || m == NULL || !json_is_array(sigs) ||
	    cs_oid_parse(&op, p, strlen(p)) < 0 ||
	    cs_oid_parse(&om, m, strlen(m)) < 0)
		return cs_error_set(CS_EVERIFY,
				    "%s: needs \"parent\", \"members\" and"
				    " \"signatures\"",
				    CS_PATH_ROOT_APPROVAL);
	if (cs_oid_cmp(&op, parent) != 0 || cs_oid_cmp(&om, members_blob) != 0)
		return cs_error_set(CS_EVERIFY,
				    "%s approves another change (parent %s,"
				    " members %s)",
				    CS_PATH_ROOT_APPROVAL, p, m);
	message = cs_root_approval_message(parent, members_blob);
	seen = calloc(json_array_size(sigs) + 1, sizeof(*seen));
	if (message == NULL || seen == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	json_array_foreach(sigs, i, s) {
		cs_key *signer = NULL;
		const char *armor = json_string_value(s);
		int dup = 0;

		if (armor == NULL ||
		    cs_sshsig_verify(&signer, armor, strlen(armor),
				     CS_SSHSIG_NAMESPACE_ROOT,
				     (const uint8_t *)message,
				     strlen(message)) < 0) {
			error = cs_error_prefix(CS_EVERIFY,
						"%s: signature %zu",
						CS_PATH_ROOT_APPROVAL, i + 1);
			goto done;
		}
		if (!cs_consortium_is_root_key(before, signer)) {
			cs_key_free(signer);
			error = cs_error_set(CS_EVERIFY,
					     "%s: signature %zu is not by a"
					     " root key",
					     CS_PATH_ROOT_APPROVAL, i + 1);
			goto done;
		}
		for (size_t j = 0; j < nseen; j++)
			dup |= cs_key_equal(seen[j], signer);
		if (dup)
			cs_key_free(signer);
		else
			seen[nseen++] = signer;
	}
	if ((int)nseen < before->threshold) {
		error = cs_error_set(CS_EVERIFY,
				     "%s: %zu root approval%s, %d needed",
				     CS_PATH_ROOT_APPROVAL, nseen,
				     nseen == 1 ? "" : "s", before->threshold);
		goto done;
	}
	error = 0;
done:
	for (size_t j = 0; j < nseen; j++)
		cs_key_free(seen[j]);
	free(seen);
	free(message);
	return error;
}
