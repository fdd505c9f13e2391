/*
 * cartosync — a node's peers and one round of sync with each (see
 * cartosync/peers.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include "cartosync/conflicts.h"
#include "cartosync/consortium.h"
#include "cartosync/error.h"
#include "cartosync/peers.h"
#include "cartosync/record.h"
#include "cartosync/tls.h"

#define MAX_PEERS 256

static int
yes(const char *v, int dflt)
{
	if (v == NULL)
		return dflt;
	return strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 ||
	       strcmp(v, "1") == 0;
}

static int
is_bool(const char *v)
{
	static const char *const ok[] = {"yes", "no", "true", "false", "1",
					 "0"};

	if (v == NULL)
		return 1;
	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++)
		if (strcmp(v, ok[i]) == 0)
			return 1;
	return 0;
}

static int
name_valid(const char *name)
{
	return cs_org_code_valid(name);
}

static int
url_valid(const char *url)
{
	return url && (strncmp(url, "https://", 8) == 0 || url[0] == '/' ||
		       strncmp(url, "./", 2) == 0 ||
		       strncmp(url, "../", 3) == 0);
}

static int
key_valid(const char *key)
{
	if (key == NULL)
		return 1;
	if (strncmp(key, "sha256:", 7) != 0 || strlen(key) != 7 + 64)
		return 0;
	for (const char *p = key + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

static int
check_peer(const cs_peer *p, const char *where)
{
	if (!name_valid(p->name))
		return cs_error_set(CS_EINVALID,
				    "%speer name \"%s\" must be 2-32 characters"
				    " a-z, 0-9 and '-'",
				    where, p->name ? p->name : "");
	if (!url_valid(p->url))
		return cs_error_set(CS_EINVALID,
				    "%speer %s: url \"%s\" must be https://HOST"
				    "[:PORT]/ or a directory path",
				    where, p->name, p->url ? p->url : "");
	if (p->org == NULL || !cs_org_code_valid(p->org))
		return cs_error_set(CS_EINVALID,
				    "%speer %s: \"org\" must name the"
				    " organisation whose node key answers",
				    where, p->name);
	if (!key_valid(p->key))
		return cs_error_set(CS_EINVALID,
				    "%speer %s: key \"%s\" must be sha256:<64"
				    " lowercase hex>",
				    where, p->name, p->key);
	return 0;
}

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int
cs_peers_list(cs_peer **out, size_t *count, const cs_node *node)
{
	const char *names[MAX_PEERS];
	size_t n = cs_node_config_sections(node, "peer \"", names, MAX_PEERS);
	cs_peer *list;
	int error = 0;

	*out = NULL;
	*count = 0;
	if (n > MAX_PEERS)
		return cs_error_set(CS_ELIMIT, "more than %d peers",
				    MAX_PEERS);
	if ((list = calloc(n + 1, sizeof(*list))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	for (size_t i = 0; i < n && error == 0; i++) {
		const char *sec = names[i];
		size_t len = strlen(sec);
		const char *f = cs_node_config_get(node, sec, "fetch");
		const char *pu = cs_node_config_get(node, sec, "push");

		if (len < 8 || sec[len - 1] != '"') {
			error = cs_error_set(CS_EINVALID,
					     "%s: malformed section [%s]",
					     CS_NODE_CONFIG, sec);
			break;
		}
		list[i].name = strndup(sec + 6, len - 7);
		list[i].url = dup_or_null(cs_node_config_get(node, sec, "url"));
		list[i].org = dup_or_null(cs_node_config_get(node, sec, "org"));
		list[i].key = dup_or_null(cs_node_config_get(node, sec, "key"));
		list[i].fetch = yes(f, 1);
		list[i].push = yes(pu, 0);
		if (!is_bool(f) || !is_bool(pu))
			error = cs_error_set(CS_EINVALID,
					     "%s: [%s] fetch and push are yes"
					     " or no",
					     CS_NODE_CONFIG, sec);
		else
			error = check_peer(&list[i], CS_NODE_CONFIG ": ");
	}
	if (error < 0) {
		cs_peers_free(list, n);
		return error;
	}
	*out = list;
	*count = n;
	return 0;
}

void
cs_peers_free(cs_peer *peers, size_t count)
{
	for (size_t i = 0; peers && i < count; i++) {
		free(peers[i].name);
		free(peers[i].url);
		free(peers[i].org);
		free(peers[i].key);
	}
	free(peers);
}

int
cs_peers_add(cs_node *node, const cs_peer *peer)
{
	char sec[64];
	int error;

	if ((error = check_peer(peer, "")) < 0)
		return error;
	snprintf(sec, sizeof(sec), "peer \"%s\"", peer->name);
	if (cs_node_config_get(node, sec, "url"))
		return cs_error_set(CS_EEXISTS, "there is a peer named %s"
						" already",
				    peer->name);
	if ((error = cs_node_config_set(node, sec, "url", peer->url)) < 0 ||
	    (error = cs_node_config_set(node, sec, "org", peer->org)) < 0 ||
	    (peer->key &&
	     (error = cs_node_config_set(node, sec, "key", peer->key)) < 0) ||
	    (error = cs_node_config_set(node, sec, "fetch",
					peer->fetch ? "yes" : "no")) < 0 ||
	    (error = cs_node_config_set(node, sec, "push",
					peer->push ? "yes" : "no")) < 0)
		return error;
	return 0;
}

static void forget_peer(const cs_node *node, const char *name);

int
cs_peers_remove(cs_node *node, const char *name)
{
	char sec[64];

	if (!name_valid(name))
		return cs_error_set(CS_ENOTFOUND, "no peer named \"%s\"", name);
	snprintf(sec, sizeof(sec), "peer \"%s\"", name);
	if (cs_node_config_remove_section(node, sec) < 0)
		return cs_error_set(CS_ENOTFOUND, "no peer named %s", name);
	forget_peer(node, name);
	return 0;
}

int
cs_peers_limits(cs_transfer_limits *out, const cs_node *node)
{
	uint64_t deadline;
	int error;

	memset(out, 0, sizeof(*out));
	if ((error = cs_node_config_uint(&deadline, node, "sync", "deadline",
					 CS_TRANSFER_DEADLINE_MS / 1000)) < 0 ||
	    (error = cs_node_config_size(&out->max_bytes, node, "sync",
					 "max-bytes", CS_TRANSFER_MAX_BYTES)) <
		    0 ||
	    (error = cs_node_config_uint(&out->max_objects, node, "sync",
					 "max-objects",
					 CS_TRANSFER_MAX_OBJECTS)) < 0)
		return error;
	if (deadline == 0)
		return cs_error_set(CS_EINVALID,
				    "[sync] deadline must be at least 1 s");
	out->deadline_ms = deadline * 1000;
	return 0;
}

/* ---- the status file ---- */

static char *
status_path(const cs_node *node, const char *suffix)
{
	char *p;

	if (asprintf(&p, "%s/%s%s", cs_node_dir(node), CS_PEERS_STATUS,
		     suffix) < 0)
		return NULL;
	return p;
}

json_t *
cs_peers_status(const cs_node *node)
{
	char *path = status_path(node, "");
	json_t *doc = path ? json_load_file(path, 0, NULL) : NULL;

	free(path);
	if (!json_is_object(doc)) {
		json_decref(doc);
		doc = json_object();
	}
	return doc;
}

/* Read-modify-write the peer's entry, under a lock of its own (the CLI
 * and the daemon both record rounds). */
static void
record_round(const cs_node *node, const cs_peer *peer,
	     const cs_peer_round *round, const char *error)
{
	char *lock = status_path(node, ".lock"), *path = status_path(node, "");
	char *tmp = status_path(node, ".tmp"), hex[CS_OID_HEXSZ + 1];
	json_t *doc = NULL, *entry;
	json_int_t now = (json_int_t)time(NULL);
	int fd = -1;

	if (!lock || !path || !tmp)
		goto done;
	if ((fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0 ||
	    flock(fd, LOCK_EX) < 0)
		goto done;
	doc = cs_peers_status(node);
	entry = json_object_get(doc, peer->name);
	if (!json_is_object(entry)) {
		entry = json_object();
		json_object_set_new(doc, peer->name, entry);
	}
	json_object_set_new(entry, "url", json_string(peer->url));
	json_object_set_new(entry, "org", json_string(peer->org));
	json_object_set_new(entry, "last_attempt", json_integer(now));
	if (error) {
		json_int_t failures = json_integer_value(
			json_object_get(entry, "failures"));

		json_object_set_new(entry, "last_error", json_string(error));
		json_object_set_new(entry, "failures",
				    json_integer(failures + 1));
	} else {
		json_object_set_new(entry, "last_success", json_integer(now));
		json_object_set_new(entry, "last_error", json_null());
		json_object_set_new(entry, "failures", json_integer(0));
		if (round->fetched) {
			cs_oid_fmt(hex, &round->head);
			json_object_set_new(entry, "head", json_string(hex));
			json_object_set_new(entry, "rejected",
					    json_integer((json_int_t)
							 round->rejected));
		}
		if (round->pushed) {
			cs_oid_fmt(hex, &round->main);
			json_object_set_new(entry, "pushed", json_string(hex));
		}
	}
	if (json_dump_file(doc, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) == 0)
		rename(tmp, path);
done:
	if (fd >= 0)
		close(fd);
	json_decref(doc);
	free(lock);
	free(path);
	free(tmp);
}

void
cs_peer_record_failure(const cs_node *node, const cs_peer *peer,
		       const char *error)
{
	record_round(node, peer, NULL, error);
}

/* A removed peer leaves the status file too. */
static void
forget_peer(const cs_node *node, const char *name)
{
	char *lock = status_path(node, ".lock"), *path = status_path(node, "");
	char *tmp = status_path(node, ".tmp");
	json_t *doc;
	int fd = -1;

	if (lock && path && tmp &&
	    (fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) >= 0 &&
	    flock(fd, LOCK_EX) == 0) {
		doc = cs_peers_status(node);
		if (json_object_del(doc, name) == 0 &&
		    json_dump_file(doc, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) ==
			    0)
			rename(tmp, path);
		json_decref(doc);
	}
	if (fd >= 0)
		close(fd);
	free(lock);
	free(path);
	free(tmp);
}

/* ---- one round ---- */

/* The TLS key hashes that may answer for the peer: the pinned one, or the
 * node keys members.json lists for its organisation as of main. */
static int
peer_keys(char ***out, size_t *count, cs_node *node, const cs_peer *peer)
{
	cs_repo *repo = cs_node_repo(node);
	cs_consortium *c = NULL;
	cs_oid head, tree;
	char **keys;
	size_t n = 0, total;
	int error;

	*out = NULL;
	*count = 0;
	if (peer->key) {
		if ((keys = calloc(1, sizeof(*keys))) == NULL ||
		    (keys[0] = strdup(peer->key)) == NULL) {
			free(keys);
			return cs_error_set(CS_ERROR, "out of memory");
		}
		*out = keys;
		*count = 1;
		return 0;
	}
	if ((error = cs_node_main(&head, node)) < 0 ||
	    (error = cs_repo_commit_tree(&tree, repo, &head)) < 0 ||
	    (error = cs_consortium_load(&c, repo, &tree)) < 0)
		return error;
	total = cs_consortium_key_count(c);
	if ((keys = calloc(total + 1, sizeof(*keys))) == NULL) {
		cs_consortium_free(c);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	for (size_t i = 0; i < total; i++) {
		const cs_member_key *k = cs_consortium_key_at(c, i);

		if (k->org && strcmp(k->org, peer->org) == 0 && k->tls &&
		    cs_tls_member(c, k->tls) == k)
			keys[n++] = strdup(k->tls);
	}
	cs_consortium_free(c);
	if (n == 0) {
		free(keys);
		return cs_error_set(CS_EPERM,
				    "peer %s: organisation %s has no node TLS"
				    " key in consortium/members.json (or it"
				    " is revoked): nothing may answer for it",
				    peer->name, peer->org);
	}
	*out = keys;
	*count = n;
	return 0;
}

static void
free_keys(char **keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
}

/* Whether the last successful round pushed `main` to the peer. */
static int
pushed_already(const cs_node *node, const cs_peer *peer, const cs_oid *main)
{
	json_t *doc = cs_peers_status(node), *entry;
	const char *last, *url;
	char hex[CS_OID_HEXSZ + 1];
	int same;

	entry = json_object_get(doc, peer->name);
	last = json_string_value(json_object_get(entry, "pushed"));
	cs_oid_fmt(hex, main);
	url = json_string_value(json_object_get(entry, "url"));
	same = last && strcmp(last, hex) == 0 && url &&
	       strcmp(url, peer->url) == 0;
	json_decref(doc);
	return same;
}

/* Whether the head just fetched from the peer holds this node's main
 * (after a round that only brought the peer's edits in, say). */
static int
peer_holds_main(cs_node *node, const cs_peer_round *round)
{
	if (!round->fetched || round->rejected)
		return 0;
	return cs_oid_cmp(&round->main, &round->head) == 0 ||
	       cs_repo_is_ancestor(cs_node_repo(node), &round->main,
				   &round->head) == 1;
}

static int
fetch_round(cs_peer_round *round, cs_node *node, const cs_peer *peer,
	    char **keys, size_t nkeys, const cs_transfer_limits *limits)
{
	cs_fetch_result fetched;
	int error = CS_ERROR;

	/* Each key the organisation's nodes hold, until one answers. */
	for (size_t i = 0; i < (nkeys ? nkeys : 1); i++) {
		cs_fetch_options fo = {peer->name, peer->url,
				       nkeys ? keys[i] : NULL, limits};

		error = cs_sync_fetch(&fetched, node, &fo);
		if (error != CS_EVERIFY)
			break;
		cs_fetch_result_dispose(&fetched);
	}
	if (error < 0)
		return error;
	round->fetched = 1;
	round->head = fetched.head;
	round->up_to_date = fetched.up_to_date;
	round->rejected = fetched.rejected;
	round->report = fetched.report;
	return 0;
}

static int
push_round(cs_peer_round *round, cs_node *node, const cs_peer *peer,
	   char **keys, size_t nkeys, const cs_transfer_limits *limits)
{
	SSL_CTX *client = NULL;
	char spec[160];
	const char *specs[1] = {spec};
	int error = CS_ERROR;

	if (strncmp(peer->url, "https://", 8) != 0)
		return cs_error_set(CS_EINVALID,
				    "peer %s: pushing needs an https:// URL",
				    peer->name);
	if ((error = cs_node_main(&round->main, node)) < 0 ||
	    (error = cs_tls_client_ctx(&client, node)) < 0)
		return error;
	snprintf(spec, sizeof(spec), "+" CS_REF_MAIN ":" CS_REF_INCOMING
		 "%s/main", cs_node_org(node));
	for (size_t i = 0; i < nkeys; i++) {
		error = cs_transport_push(cs_node_repo(node), client,
					  peer->url, keys[i], specs, 1, limits);
		if (error != CS_EVERIFY)
			break;
	}
	SSL_CTX_free(client);
	if (error == 0)
		round->pushed = 1;
	return error;
}

int
cs_peer_sync(cs_peer_round *round, cs_node *node, const cs_peer *peer,
	     const cs_transfer_limits *limits)
{
	cs_integrate_result integrated;
	char **keys = NULL;
	size_t nkeys = 0;
	int error = 0;

	memset(round, 0, sizeof(*round));
	if (strncmp(peer->url, "https://", 8) == 0 &&
	    (error = peer_keys(&keys, &nkeys, node, peer)) < 0)
		goto done;
	if (peer->fetch &&
	    (error = fetch_round(round, node, peer, keys, nkeys, limits)) < 0)
		goto done;
	/* Nothing new from the peer: main already folds what the node
	 * holds (edits are merged when they are made). */
	if (round->fetched && round->up_to_date && round->rejected == 0 &&
	    cs_node_main(&round->main, node) == 0) {
		round->main_changed = 0;
	} else {
		if ((error = cs_sync_integrate(&integrated, node)) < 0)
			goto done;
		round->main_changed = integrated.changed;
		round->main = integrated.main;
		round->reapplied = integrated.reapplied;
		cs_integrate_result_dispose(&integrated);
	}
	/* Push only what the peer has not had from us yet. */
	if (peer->push && !pushed_already(node, peer, &round->main) &&
	    !peer_holds_main(node, round))
		error = push_round(round, node, peer, keys, nkeys, limits);
done:
	if (error < 0) {
		char *why = strdup(cs_error_last());

		record_round(node, peer, round, why ? why : "failed");
		cs_error_set(error, "%s", why ? why : "failed");
		free(why);
	} else
		record_round(node, peer, round, NULL);
	free_keys(keys, nkeys);
	return error;
}

void
cs_peer_round_dispose(cs_peer_round *round)
{
	cs_verify_report_free(round->report);
	round->report = NULL;
}

/* ---- status ---- */

static int
add_head(const char *name, const cs_oid *id, void *payload)
{
	char hex[CS_OID_HEXSZ + 1];

	cs_oid_fmt(hex, id);
	json_object_set_new(payload, name, json_string(hex));
	return 0;
}

static json_t *
quarantine_list(const cs_node *node)
{
	json_t *list = json_array();
	char *root;
	DIR *top, *sub;
	struct dirent *e, *f;

	if (asprintf(&root, "%s/quarantine", cs_node_dir(node)) < 0)
		return list;
	if ((top = opendir(root)) != NULL) {
		while ((e = readdir(top)) != NULL) {
			char *peer;

			if (e->d_name[0] == '.' ||
			    asprintf(&peer, "%s/%s", root, e->d_name) < 0)
				continue;
			if ((sub = opendir(peer)) != NULL) {
				while ((f = readdir(sub)) != NULL) {
					char *why;
					json_t *doc;

					if (f->d_name[0] == '.' ||
					    asprintf(&why, "%s/%s/reason.json",
						     peer, f->d_name) < 0)
						continue;
					doc = json_load_file(why, 0, NULL);
					if (json_is_object(doc))
						json_array_append_new(list,
								      doc);
					else
						json_decref(doc);
					free(why);
				}
				closedir(sub);
			}
			free(peer);
		}
		closedir(top);
	}
	free(root);
	return list;
}

json_t *
cs_node_status(cs_node *node)
{
	json_t *out = json_object(), *heads = json_object(), *conflicts = NULL;
	cs_oid main_id, genesis;
	char hex[CS_OID_HEXSZ + 1];

	json_object_set_new(out, "org", json_string(cs_node_org(node)));
	if (cs_node_genesis(&genesis, node) == 0) {
		cs_oid_fmt(hex, &genesis);
		json_object_set_new(out, "genesis", json_string(hex));
	}
	if (cs_node_main(&main_id, node) == 0) {
		cs_oid_fmt(hex, &main_id);
		json_object_set_new(out, "main", json_string(hex));
		if (cs_conflicts_list(&conflicts, cs_node_repo(node),
				      &main_id) == 0)
			json_object_set_new(out, "conflicts",
					    json_integer((json_int_t)
							 json_array_size(
								 conflicts)));
		json_decref(conflicts);
	} else
		json_object_set_new(out, "main", json_null());
	cs_repo_ref_foreach(cs_node_repo(node), "refs/", add_head, heads);
	json_object_set_new(out, "heads", heads);
	json_object_set_new(out, "peers", cs_peers_status(node));
	json_object_set_new(out, "quarantine", quarantine_list(node));
	if (cs_node_check_upgrade(node) < 0)
		json_object_set_new(out, "upgrade_needed",
				    json_string(cs_error_last()));
	return out;
}
