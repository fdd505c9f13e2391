#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/consortium.h"
#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/map.h"
#include "cartosync/record.h"
#include "text.h"

typedef struct {
	char **names;
	size_t n;
	size_t cap;
} name_list;

static int
collect_folder(const char *name, const cs_oid *id, unsigned mode,
	       void *payload)
{
	name_list *l = payload;

	(void)id;
	if (mode != CS_MODE_TREE)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		char **grown = realloc(l->names, cap * sizeof(*grown));

		if (grown == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		l->names = grown;
		l->cap = cap;
	}
	if ((l->names[l->n] = strdup(name)) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	l->n++;
	return 0;
}

int
cs_map_owners(char ***names, size_t *n, cs_repo *repo, const cs_oid *tree)
{
	name_list l = {NULL, 0, 0};
	int error = cs_repo_list_dir(repo, tree, "records", collect_folder, &l);

	if (error < 0) {
		cs_map_owners_free(l.names, l.n);
		l.names = NULL;
		l.n = 0;
	}
	*names = l.names;
	*n = l.n;
	return error;
}

void
cs_map_owners_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int
read_record(json_t **out, cs_repo *repo, const cs_oid *blob, const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	int error;

	if ((error = cs_repo_read_blob(&buf, &len, repo, blob,
				       CS_RECORD_MAX_BYTES)) < 0)
		return cs_error_prefix(error, "%s", path);
	error = cs_json_parse(out, buf, len, path);
	free(buf);
	return error;
}

/* Look for records/<owner>/<type>/<xx>/<id>.json over owners and types:
 * a few dozen lookups in cached trees. */
int
cs_map_find(json_t **record, char **path, cs_repo *repo,
	    const cs_oid *commit, const char *id)
{
	char **owners = NULL;
	size_t nowners = 0;
	cs_oid tree, blob;
	char *candidate = NULL;
	int error;

	*record = NULL;
	if (path)
		*path = NULL;
	if (!cs_uuid_valid(id))
		return cs_error_set(CS_EINVALID,
				    "\"%.64s\" is not a record id (a lowercase"
				    " UUID)",
				    id);
	if ((error = cs_repo_commit_tree(&tree, repo, commit)) < 0 ||
	    (error = cs_map_owners(&owners, &nowners, repo, &tree)) < 0)
		goto done;
	error = CS_ENOTFOUND;
	for (size_t o = 0; o < nowners && error == CS_ENOTFOUND; o++) {
		for (size_t t = 0; cs_record_types[t] && error == CS_ENOTFOUND;
		     t++) {
			free(candidate);
			if (asprintf(&candidate, "records/%s/%s/%.2s/%s.json",
				     owners[o], cs_record_types[t], id,
				     id) < 0) {
				candidate = NULL;
				error = cs_error_set(CS_ERROR, "out of memory");
				goto done;
			}
			error = cs_repo_tree_lookup(&blob, NULL, repo, &tree,
						    candidate);
		}
	}
	if (error == CS_ENOTFOUND) {
		error = cs_error_set(CS_ENOTFOUND, "no record \"%s\"", id);
		goto done;
	}
	if (error < 0 || (error = read_record(record, repo, &blob, candidate)) < 0)
		goto done;
	if (path) {
		*path = candidate;
		candidate = NULL; /* transferred */
	}
done:
	cs_map_owners_free(owners, nowners);
	free(candidate);
	return error;
}

/* Any member named `key` (at any depth) equal to `value`. */
static int
has_key_value(const json_t *v, const char *key, const char *value)
{
	const char *k;
	json_t *child;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, child) {
			if (strcmp(k, key) == 0 && json_is_string(child) &&
			    strcmp(json_string_value(child), value) == 0)
				return 1;
			if (has_key_value(child, key, value))
				return 1;
		}
	} else if (json_is_array(v)) {
		json_array_foreach((json_t *)v, i, child) {
			if (has_key_value(child, key, value))
				return 1;
		}
	}
	return 0;
}

/* A string equal to `code` inside a field whose name contains `part`. */
static int
has_code_in(const json_t *v, const char *part, const char *code, int inside)
{
	const char *k;
	json_t *child;
	size_t i;

	if (json_is_string(v))
		return inside && strcmp(json_string_value(v), code) == 0;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, child) {
			if (has_code_in(child, part, code,
					inside || strstr(k, part) != NULL))
				return 1;
		}
	} else if (json_is_array(v)) {
		json_array_foreach((json_t *)v, i, child) {
			if (has_code_in(child, part, code, inside))
				return 1;
		}
	}
	return 0;
}

/* `text` is folded already. */
static int
has_text(const json_t *v, const char *text)
{
	const char *k;
	json_t *child;
	size_t i;

	if (json_is_string(v)) {
		char *folded = cs_text_fold(json_string_value(v));
		int found = folded && strstr(folded, text) != NULL;

		free(folded);
		return found;
	}
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, child) {
			if (has_text(child, text))
				return 1;
		}
	} else if (json_is_array(v)) {
		json_array_foreach((json_t *)v, i, child) {
			if (has_text(child, text))
				return 1;
		}
	}
	return 0;
}

static int
has_folded_text(const json_t *record, const char *text)
{
	char *folded = cs_text_fold(text);
	int found = folded && has_text(record, folded);

	free(folded);
	return found;
}

static int
field_is(const json_t *record, const char *field, const char *value)
{
	const char *s = json_string_value(json_object_get(record, field));

	return s && strcmp(s, value) == 0;
}

int
cs_map_matches(const json_t *record, const cs_map_filter *f)
{
	if (f == NULL)
		return 1;
	return (!f->type || field_is(record, "x_record_type", f->type)) &&
	       (!f->owner || field_is(record, "x_owner", f->owner)) &&
	       (!f->status || field_is(record, "x_status", f->status)) &&
	       (!f->region || has_key_value(record, "adm1", f->region)) &&
	       (!f->province || has_key_value(record, "adm2", f->province)) &&
	       (!f->category || has_code_in(record, "categor", f->category, 0)) &&
	       (!f->text || has_folded_text(record, f->text));
}

typedef struct {
	cs_repo *repo;
	const cs_map_filter *filter;
	json_t *out;
} list_walk;

static int
list_entry(const char *path, const cs_oid *id, unsigned mode, void *payload)
{
	list_walk *w = payload;
	json_t *record = NULL;

	if (cs_record_path_parse(path, NULL, NULL, NULL) < 0 ||
	    read_record(&record, w->repo, id, path) < 0)
		return 0;
	if (cs_map_matches(record, w->filter))
		json_array_append(w->out, record);
	json_decref(record);
	return 0;
}

int
cs_map_list(json_t **out, cs_repo *repo, const cs_oid *commit,
	    const cs_map_filter *filter)
{
	list_walk w = {repo, filter, json_array()};
	cs_oid tree;
	char prefix[96];
	int error;

	*out = NULL;
	if (w.out == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	if ((error = cs_repo_commit_tree(&tree, repo, commit)) < 0)
		goto done;
	/* With an owner and a type, only that folder is read. */
	if (filter && filter->owner && filter->type &&
	    cs_record_type_known(filter->type) &&
	    strlen(filter->owner) < 40 && !strchr(filter->owner, '/'))
		snprintf(prefix, sizeof(prefix), "records/%s/%s",
			 filter->owner, filter->type);
	else if (filter && filter->owner && strlen(filter->owner) < 40 &&
		 !strchr(filter->owner, '/'))
		snprintf(prefix, sizeof(prefix), "records/%s", filter->owner);
	else
		snprintf(prefix, sizeof(prefix), "records");
	if ((error = cs_repo_walk(repo, &tree, prefix, list_entry, &w)) < 0)
		goto done;
	*out = w.out;
	w.out = NULL; /* transferred */
done:
	json_decref(w.out);
	return error;
}

int
cs_map_put(cs_oid *out, int *in_main, cs_node *node, const cs_oid *base,
	   const json_t *record, const char *message)
{
	cs_repo *repo = cs_node_repo(node);
	json_t *old = NULL;
	char *path = NULL, *old_path = NULL;
	cs_tree_update updates[2];
	size_t count = 0;
	cs_oid blob;
	int error;

	*in_main = 0;
	if ((error = cs_record_path(&path, record)) < 0)
		return error;
	error = cs_map_find(&old, &old_path, repo, base, cs_record_id(record));
	if (error < 0 && error != CS_ENOTFOUND)
		goto done;
	if ((error = cs_node_write_json(&blob, node, record)) < 0)
		goto done;
	updates[count++] = (cs_tree_update){path, &blob};
	if (old_path && strcmp(old_path, path) != 0)
		updates[count++] = (cs_tree_update){old_path, NULL};
	error = cs_node_commit(out, in_main, node, base, updates, count,
			       message);
done:
	json_decref(old);
	free(path);
	free(old_path);
	return error;
}

int
cs_map_remove(cs_oid *out, int *in_main, cs_node *node, const cs_oid *base,
	      const char *id, const char *message)
{
	json_t *old = NULL;
	char *path = NULL;
	cs_tree_update update;
	int error;

	*in_main = 0;
	if ((error = cs_map_find(&old, &path, cs_node_repo(node), base, id)) <
	    0)
		return error;
	update = (cs_tree_update){path, NULL};
	error = cs_node_commit(out, in_main, node, base, &update, 1, message);
	json_decref(old);
	free(path);
	return error;
}

int
cs_map_publish_sensitive(const char **why, cs_repo *repo,
			 const cs_oid *commit, const json_t *record)
{
	cs_consortium *state = NULL;
	json_t *conf, *list, *code;
	cs_oid tree;
	size_t i;
	int error;

	*why = NULL;
	if ((error = cs_repo_commit_tree(&tree, repo, commit)) < 0 ||
	    (error = cs_consortium_load(&state, repo, &tree)) < 0)
		return error;
	conf = json_object_get(cs_consortium_policy(state),
			       "publish_confirmation");
	list = json_object_get(conf, "categories");
	json_array_foreach(list, i, code) {
		if (json_is_string(code) &&
		    has_code_in(record, "categor", json_string_value(code), 0)) {
			*why = json_string_value(code);
			break;
		}
	}
	list = json_object_get(conf, "populations");
	json_array_foreach(list, i, code) {
		if (*why == NULL && json_is_string(code) &&
		    has_code_in(record, "population", json_string_value(code),
				0)) {
			*why = json_string_value(code);
			break;
		}
	}
	/* *why points into the policy, which outlives this call only as a
	 * copy: keep a static copy of the code. */
	if (*why) {
		static _Thread_local char code_copy[64];

		snprintf(code_copy, sizeof(code_copy), "%s", *why);
		*why = code_copy;
	}
	cs_consortium_free(state);
	return *why != NULL;
}
