#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/commit.h"
#include "cartosync/conflicts.h"
#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/map.h"
#include "cartosync/record.h"

char *
cs_conflict_path(const char *record_id)
{
	char *p = NULL;

	if (asprintf(&p, "conflicts/%.2s/%s.json", record_id, record_id) < 0)
		return NULL;
	return p;
}

static int
read_doc(json_t **out, cs_repo *repo, const cs_oid *blob, const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	int error;

	*out = NULL;
	if ((error = cs_repo_read_blob(&buf, &len, repo, blob,
				       CS_RECORD_MAX_BYTES)) < 0)
		return cs_error_prefix(error, "%s", path);
	error = cs_json_parse(out, buf, len, path);
	free(buf);
	return error;
}

typedef struct {
	cs_repo *repo;
	json_t *out;
} list_walk;

static int
list_entry(const char *path, const cs_oid *id, unsigned mode, void *payload)
{
	list_walk *w = payload;
	json_t *doc = NULL;

	if (read_doc(&doc, w->repo, id, path) < 0)
		return 0;
	if (json_object_size(json_object_get(doc, "conflicts")) > 0)
		json_array_append(w->out, doc);
	json_decref(doc);
	return 0;
}

int
cs_conflicts_list(json_t **out, cs_repo *repo, const cs_oid *commit)
{
	list_walk w = {repo, json_array()};
	cs_oid tree;
	int error;

	*out = NULL;
	if ((error = cs_repo_commit_tree(&tree, repo, commit)) < 0 ||
	    (error = cs_repo_walk(repo, &tree, "conflicts", list_entry, &w)) <
		    0) {
		json_decref(w.out);
		return error;
	}
	*out = w.out;
	return 0;
}

int
cs_conflict_get(json_t **out, cs_repo *repo, const cs_oid *commit,
		const char *record_id)
{
	char *path;
	cs_oid tree, blob;
	int error;

	*out = NULL;
	if (!cs_uuid_valid(record_id))
		return cs_error_set(CS_EINVALID,
				    "\"%.64s\" is not a record id (a lowercase"
				    " UUID)",
				    record_id);
	if ((path = cs_conflict_path(record_id)) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	if ((error = cs_repo_commit_tree(&tree, repo, commit)) == 0) {
		error = cs_repo_tree_lookup(&blob, NULL, repo, &tree, path);
		if (error == CS_ENOTFOUND)
			error = cs_error_set(CS_ENOTFOUND,
					     "record \"%s\" has no conflicts",
					     record_id);
		else if (error == 0)
			error = read_doc(out, repo, &blob, path);
	}
	free(path);
	return error;
}

/* The organisation that signed an edit: its author's name. */
static int
edit_org(char **out, cs_repo *repo, const char *hex)
{
	cs_commit *c = NULL;
	cs_oid id;
	int error;

	*out = NULL;
	if (hex == NULL || cs_oid_parse(&id, hex, strlen(hex)) < 0)
		return cs_error_set(CS_EINVALID, "a candidate names no edit");
	if ((error = cs_repo_read_commit(&c, repo, &id)) < 0)
		return error;
	*out = strdup(c->author.name);
	cs_commit_free(c);
	return *out ? 0 : cs_error_set(CS_ERROR, "out of memory");
}

int
cs_conflict_take(json_t **choices, cs_repo *repo, const json_t *doc,
		 const char *org)
{
	json_t *out = json_object(), *entry, *cand;
	const char *field;
	size_t i;
	int error = 0;

	*choices = NULL;
	json_object_foreach(json_object_get(doc, "conflicts"), field, entry) {
		json_t *pick = NULL;

		json_array_foreach(json_object_get(entry, "candidates"), i,
				   cand) {
			char *who = NULL;

			if (edit_org(&who, repo,
				     json_string_value(json_object_get(
					     cand, "edit"))) == 0 &&
			    strcmp(who, org) == 0) {
				json_t *v = json_object_get(cand, "value");

				json_decref(pick);
				pick = v ? json_pack("{s:O}", "value", v)
					 : json_object();
			}
			free(who);
		}
		if (pick == NULL) {
			error = cs_error_set(CS_ENOTFOUND,
					     "%s wrote no candidate for field"
					     " \"%s\"",
					     org, field);
			break;
		}
		json_object_set_new(out, field, pick);
	}
	if (error == 0 && json_object_size(out) == 0)
		error = cs_error_set(CS_ENOTFOUND, "no open conflict");
	if (error < 0) {
		json_decref(out);
		return error;
	}
	*choices = out;
	return 0;
}

/* The order of the merge's lists: by canonical encoding. */
static int
marker_cmp(const void *a, const void *b)
{
	char *ta = NULL, *tb = NULL;
	size_t la = 0, lb = 0;
	int c;

	cs_json_canonical(&ta, &la, *(json_t *const *)a);
	cs_json_canonical(&tb, &lb, *(json_t *const *)b);
	c = strcmp(ta ? ta : "", tb ? tb : "");
	free(ta);
	free(tb);
	return c;
}

/* Markers in a fixed order, so that equal sets are equal files. */
static void
sort_markers(json_t *doc)
{
	json_t *list = json_object_get(doc, "resolved"), *sorted;
	size_t n = json_array_size(list);
	json_t **items = calloc(n + 1, sizeof(*items));

	if (items == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		items[i] = json_array_get(list, i);
	qsort(items, n, sizeof(*items), marker_cmp);
	sorted = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append(sorted, items[i]);
	json_object_set_new(doc, "resolved", sorted);
	free(items);
}

int
cs_conflict_resolve(cs_oid *out, int *in_main, cs_node *node,
		    const cs_oid *base, const char *record_id,
		    const json_t *choices)
{
	cs_repo *repo = cs_node_repo(node);
	json_t *doc = NULL, *record = NULL, *open, *choice;
	char *record_path = NULL, *conflict_path = NULL, *message = NULL;
	char hex[CS_OID_HEXSZ + 1];
	const char *field, *stored_path;
	cs_tree_update updates[3];
	cs_oid ids[2], tree, blob;
	size_t count = 0;
	int error, deleted = 0;

	*in_main = 0;
	if ((error = cs_conflict_get(&doc, repo, base, record_id)) < 0)
		return error;
	open = json_object_get(doc, "conflicts");
	stored_path = json_string_value(json_object_get(doc, "record"));
	if (json_object_size(choices) == 0) {
		error = cs_error_set(CS_EINVALID, "no field to resolve");
		goto done;
	}
	if (stored_path == NULL ||
	    cs_record_path_parse(stored_path, NULL, NULL, NULL) < 0) {
		error = cs_error_set(CS_EINVALID,
				     "the conflict file names no record");
		goto done;
	}
	/* The record as it stands (a deletion kept by the merge: absent). */
	if ((error = cs_repo_commit_tree(&tree, repo, base)) < 0)
		goto done;
	if (cs_repo_tree_lookup(&blob, NULL, repo, &tree, stored_path) == 0) {
		char *buf = NULL;
		size_t len = 0;

		if ((error = cs_repo_read_blob(&buf, &len, repo, &blob,
					       CS_RECORD_MAX_BYTES)) < 0 ||
		    (error = cs_json_parse(&record, buf, len, stored_path)) <
			    0) {
			free(buf);
			goto done;
		}
		free(buf);
	}
	cs_oid_fmt(hex, base);
	json_object_foreach((json_t *)choices, field, choice) {
		json_t *value = json_object_get(choice, "value");

		if (json_object_get(open, field) == NULL) {
			error = cs_error_set(CS_EINVALID,
					     "field \"%s\" of record %s has no"
					     " open conflict",
					     field, record_id);
			goto done;
		}
		if (*field == '\0') {
			json_decref(record);
			record = value ? json_deep_copy(value) : NULL;
			deleted = value == NULL;
		} else if (record == NULL) {
			error = cs_error_set(CS_EINVALID,
					     "record %s is deleted: resolve its"
					     " whole-record conflict first",
					     record_id);
			goto done;
		} else if ((error = cs_json_pointer_set(
				    record, field,
				    value ? json_deep_copy(value) : NULL)) < 0) {
			goto done;
		}
		json_object_del(open, field);
		{
			json_t *marker = json_pack("{s:s, s:s, s:s}", "by",
						   cs_node_org(node), "field",
						   field, "on", hex);

			if (value)
				json_object_set(marker, "value", value);
			json_array_append_new(json_object_get(doc, "resolved"),
					      marker);
		}
	}
	sort_markers(doc);

	if ((conflict_path = cs_conflict_path(record_id)) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	if ((error = cs_node_write_json(&ids[0], node, doc)) < 0)
		goto done;
	updates[count++] = (cs_tree_update){conflict_path, &ids[0]};
	if (record) {
		if ((error = cs_record_path(&record_path, record)) < 0 ||
		    (error = cs_node_write_json(&ids[1], node, record)) < 0)
			goto done;
		updates[count++] = (cs_tree_update){record_path, &ids[1]};
		if (strcmp(record_path, stored_path) != 0)
			updates[count++] = (cs_tree_update){stored_path, NULL};
	} else if (!deleted) {
		error = cs_error_set(CS_EINVALID, "record %s is missing",
				     record_id);
		goto done;
	} else if (cs_repo_tree_lookup(&blob, NULL, repo, &tree,
				       stored_path) == 0) {
		updates[count++] = (cs_tree_update){stored_path, NULL};
	}
	if (asprintf(&message, "Resolve conflict on %s\n", record_id) < 0) {
		message = NULL;
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	error = cs_node_commit(out, in_main, node, base, updates, count,
			       message);
done:
	json_decref(doc);
	json_decref(record);
	free(record_path);
	free(conflict_path);
	free(message);
	return error;
}
