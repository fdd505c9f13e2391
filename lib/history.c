/*
 * The held history and the fold: docs/merge.md.
 *
 * The graph of held commits is kept in memory in a topological order
 * (parents before children); merges made by the fold are appended, so the
 * order stays topological.  Sets of commits are bitsets over that order.
 *
 *   tips(S)     edits of S that no other edit of S descends from
 *   fold(T)     merge(...merge(t1, t2)..., tn), T sorted by commit id
 *   merge(a,b)  tree = merge3(base, a, b), base = fold(tips(A ∩ B))
 *               where A, B are the ancestors of a and b
 *
 * Everything here is a function of the commits: no time, no randomness,
 * no iteration in hash order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/commit.h"
#include "cartosync/consortium.h"
#include "cartosync/duplicates.h"
#include "cartosync/error.h"
#include "cartosync/history.h"
#include "cartosync/json.h"
#include "cartosync/merge.h"
#include "cartosync/record.h"

typedef struct {
	cs_oid id;
	cs_oid tree;
	int parents[2];
	int nparents;
	int is_merge;
	int computed; /* a merge made by this history */
	int64_t time;
	int *children;
	int nchildren;
	int capchildren;
} hnode;

typedef struct {
	char *type;
	cs_merge_rules *rules;
} rules_entry;

typedef struct {
	cs_oid consortium[4]; /* see consortium_key() */
	cs_consortium *state;
} state_entry;

struct cs_history {
	cs_repo *repo;
	hnode *nodes;
	size_t n;
	size_t cap;
	int *slots; /* oid -> index, open addressing */
	size_t mask;
	state_entry *states;
	size_t nstates;
	rules_entry *rules;
	size_t nrules;
	size_t merges_made;
	size_t conflicts_found;
	int depth; /* recursion guard for bases of bases */
};

#define MAX_DEPTH 64

/* ---- the graph ---- */

static size_t
oid_hash(const cs_oid *id)
{
	size_t h;

	memcpy(&h, id->id, sizeof(h));
	return h;
}

static int
find(const cs_history *h, const cs_oid *id)
{
	size_t s;

	if (h->slots == NULL)
		return -1;
	for (s = oid_hash(id) & h->mask; h->slots[s] >= 0;
	     s = (s + 1) & h->mask)
		if (cs_oid_cmp(&h->nodes[h->slots[s]].id, id) == 0)
			return h->slots[s];
	return -1;
}

static int
rehash(cs_history *h, size_t want)
{
	size_t cap = 16;
	int *slots;

	while (cap < want * 2)
		cap <<= 1;
	if ((slots = malloc(cap * sizeof(*slots))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	memset(slots, 0xff, cap * sizeof(*slots));
	free(h->slots);
	h->slots = slots;
	h->mask = cap - 1;
	for (size_t i = 0; i < h->n; i++) {
		size_t s = oid_hash(&h->nodes[i].id) & h->mask;

		while (h->slots[s] >= 0)
			s = (s + 1) & h->mask;
		h->slots[s] = (int)i;
	}
	return 0;
}

static int
add_child(hnode *parent, int child)
{
	if (parent->nchildren == parent->capchildren) {
		int cap = parent->capchildren ? parent->capchildren * 2 : 2;
		int *grown = realloc(parent->children, cap * sizeof(*grown));

		if (grown == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		parent->children = grown;
		parent->capchildren = cap;
	}
	parent->children[parent->nchildren++] = child;
	return 0;
}

/* Append a node whose parents are already in the graph. */
static int
append(cs_history *h, const cs_commit *c, const cs_oid *id, int computed)
{
	hnode *node;
	int error;

	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 256;
		hnode *grown = realloc(h->nodes, cap * sizeof(*grown));

		if (grown == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		h->nodes = grown;
		h->cap = cap;
	}
	node = &h->nodes[h->n];
	memset(node, 0, sizeof(*node));
	node->id = *id;
	node->tree = c->tree;
	node->is_merge = c->kind == CS_COMMIT_MERGE;
	node->computed = computed;
	node->time = c->committer.time;
	node->parents[0] = node->parents[1] = -1;
	for (size_t p = 0; p < c->parent_count; p++) {
		int k = find(h, &c->parents[p]);

		if (k < 0)
			return cs_error_set(CS_ERROR,
					    "history: a parent is missing");
		node->parents[node->nparents++] = k;
	}
	h->n++;
	if ((h->n * 2 > h->mask + 1 || h->slots == NULL) &&
	    (error = rehash(h, h->cap)) < 0)
		return error;
	{
		size_t s = oid_hash(id) & h->mask;

		while (h->slots[s] >= 0)
			s = (s + 1) & h->mask;
		h->slots[s] = (int)(h->n - 1);
	}
	for (int p = 0; p < node->nparents; p++)
		if ((error = add_child(&h->nodes[node->parents[p]],
				       (int)(h->n - 1))) < 0)
			return error;
	return 0;
}

int
cs_history_load(cs_history **out, cs_repo *repo, const cs_oid *heads,
		size_t count)
{
	cs_history *h = calloc(1, sizeof(*h));
	cs_oid *order = NULL;
	size_t n = 0;
	int error;

	*out = NULL;
	if (h == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	h->repo = repo;
	if ((error = cs_repo_topo_order(&order, &n, repo, heads, count)) < 0 ||
	    (error = rehash(h, n + 16)) < 0)
		goto done;
	for (size_t i = 0; i < n; i++) {
		cs_commit *c = NULL;

		if ((error = cs_repo_read_commit(&c, repo, &order[i])) < 0)
			goto done;
		error = append(h, c, &order[i], 0);
		cs_commit_free(c);
		if (error < 0)
			goto done;
	}
	*out = h;
	h = NULL; /* transferred */
	error = 0;
done:
	free(order);
	cs_history_free(h);
	return error;
}

void
cs_history_free(cs_history *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->n; i++)
		free(h->nodes[i].children);
	for (size_t i = 0; i < h->nstates; i++)
		cs_consortium_free(h->states[i].state);
	for (size_t i = 0; i < h->nrules; i++) {
		free(h->rules[i].type);
		cs_merge_rules_free(h->rules[i].rules);
	}
	free(h->states);
	free(h->rules);
	free(h->nodes);
	free(h->slots);
	free(h);
}

size_t
cs_history_merges_made(const cs_history *h)
{
	return h->merges_made;
}

size_t
cs_history_conflicts_found(const cs_history *h)
{
	return h->conflicts_found;
}

/* ---- sets of commits ---- */

#define HAS(bits, i) ((bits)[(i) / 8] & (1u << ((i) % 8)))
#define SET(bits, i) ((bits)[(i) / 8] |= (uint8_t)(1u << ((i) % 8)))

/* The ancestors of node `root`, itself included. */
static uint8_t *
ancestors(const cs_history *h, int root)
{
	uint8_t *bits = calloc(h->n / 8 + 1, 1);

	if (bits == NULL)
		return NULL;
	SET(bits, root);
	/* Parents have smaller indices: one backward sweep suffices. */
	for (int k = root; k >= 0; k--) {
		if (!HAS(bits, k))
			continue;
		for (int p = 0; p < h->nodes[k].nparents; p++)
			SET(bits, h->nodes[k].parents[p]);
	}
	return bits;
}

static int
oid_sort(const void *a, const void *b)
{
	return cs_oid_cmp(a, b);
}

/*
 * The tips of the edits of an ancestor-closed set (NULL: every node),
 * sorted by id.
 */
static int
tips_of(cs_oid **out, size_t *count, const cs_history *h, const uint8_t *set)
{
	uint8_t *below = calloc(h->n / 8 + 1, 1); /* has an edit below */
	cs_oid *tips = calloc(h->n + 1, sizeof(*tips));
	size_t n = 0;

	*out = NULL;
	*count = 0;
	if (below == NULL || tips == NULL) {
		free(below);
		free(tips);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	for (size_t k = h->n; k-- > 0;) {
		const hnode *node = &h->nodes[k];

		if (set && !HAS(set, k))
			continue;
		for (int c = 0; c < node->nchildren; c++) {
			int child = node->children[c];

			if ((set == NULL || HAS(set, child)) &&
			    (!h->nodes[child].is_merge || HAS(below, child))) {
				SET(below, k);
				break;
			}
		}
		if (!node->is_merge && !HAS(below, k))
			tips[n++] = node->id;
	}
	free(below);
	qsort(tips, n, sizeof(*tips), oid_sort);
	*out = tips;
	*count = n;
	return 0;
}

int
cs_history_tips(cs_oid **out, size_t *count, cs_history *h)
{
	/* Merges the fold made are not held: leave them out. */
	uint8_t *held = calloc(h->n / 8 + 1, 1);
	int error;

	if (held == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	for (size_t k = 0; k < h->n; k++)
		if (!h->nodes[k].computed)
			SET(held, k);
	error = tips_of(out, count, h, held);
	free(held);
	return error;
}

static int fold(cs_oid *out, cs_history *h, const cs_oid *tips, size_t n);

/* ---- the merge of two trees ---- */

typedef struct {
	cs_history *h;
	const cs_consortium *state; /* the merged consortium */
	cs_oid roots[3];            /* base, ours, theirs root trees */
	int has_base;
	uint8_t *side_anc[2];       /* ancestors of ours and theirs */
	uint8_t *common;            /* edits both hold */
	int side[2];                /* node indices of ours and theirs */
	size_t nbits;               /* the size of the bitsets above */
	cs_oid records;             /* the merged records/ tree */
	int has_records;
	json_t *new_conflicts;      /* conflict path -> conflict document */
	json_t *overrides;          /* record path -> record changed after
				       the walk (a reopened resolution) */
} tmerge;

typedef int (*file_merge_cb)(cs_oid *out, int *absent, tmerge *m,
			     const char *path, const cs_oid *base,
			     const cs_oid *ours, const cs_oid *theirs);

static int
same_entry(const cs_tree_entry *a, const cs_tree_entry *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return a->mode == b->mode && cs_oid_cmp(&a->id, &b->id) == 0;
}

static const cs_tree_entry *
entry_named(const cs_tree_entries *list, const char *name)
{
	size_t lo = 0, hi = list->count;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(list->items[mid].name, name);

		if (c == 0)
			return &list->items[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int
is_tree(const cs_tree_entry *e)
{
	return e && e->mode == CS_MODE_TREE;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Names of three lists, sorted and without repeats (borrowed strings). */
static int
union_names(const char ***out, size_t *count, const cs_tree_entries *l[3])
{
	size_t cap = l[0]->count + l[1]->count + l[2]->count + 1, n = 0, k = 0;
	const char **names = malloc(cap * sizeof(*names));

	if (names == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	for (int s = 0; s < 3; s++)
		for (size_t i = 0; i < l[s]->count; i++)
			names[n++] = l[s]->items[i].name;
	qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || strcmp(names[k - 1], names[i]) != 0)
			names[k++] = names[i];
	*out = names;
	*count = k;
	return 0;
}

/* ---- JSON helpers ---- */

static int
read_json(json_t **out, tmerge *m, const cs_oid *blob, const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	int error;

	*out = NULL;
	if (blob == NULL)
		return 0;
	if ((error = cs_repo_read_blob(&buf, &len, m->h->repo, blob,
				       CS_RECORD_MAX_BYTES)) < 0)
		return cs_error_prefix(error, "%s", path);
	error = cs_json_parse(out, buf, len, path);
	free(buf);
	return error;
}

static int
write_json(cs_oid *out, tmerge *m, const json_t *value)
{
	char *text = NULL;
	size_t len = 0;
	int error;

	if ((error = cs_json_canonical(&text, &len, value)) < 0)
		return error;
	error = cs_repo_write_blob(out, m->h->repo, text, len);
	free(text);
	return error;
}

/* Compare by canonical encoding; NULL (absent) sorts first. */
static int
json_cmp(const json_t *a, const json_t *b)
{
	char *ta = NULL, *tb = NULL;
	size_t la = 0, lb = 0;
	int c;

	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	if (json_equal((json_t *)a, (json_t *)b))
		return 0;
	if (cs_json_canonical(&ta, &la, a) < 0 ||
	    cs_json_canonical(&tb, &lb, b) < 0) {
		free(ta);
		free(tb);
		return 0;
	}
	c = strcmp(ta, tb);
	free(ta);
	free(tb);
	return c;
}

static int
json_same(const json_t *a, const json_t *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return json_equal((json_t *)a, (json_t *)b);
}

/* ---- conflict documents (docs/merge.md "Conflict files") ---- */

static char *
conflict_path_of(const char *record_id)
{
	char *p = NULL;

	if (asprintf(&p, "conflicts/%.2s/%s.json", record_id, record_id) < 0)
		return NULL;
	return p;
}

/* The new-conflict document for a record, created on first use. */
static json_t *
new_conflict_doc(tmerge *m, const char *record_path)
{
	char *id = NULL, *cpath;
	json_t *doc;

	if (cs_record_path_parse(record_path, NULL, NULL, &id) < 0)
		return NULL;
	cpath = conflict_path_of(id);
	doc = cpath ? json_object_get(m->new_conflicts, cpath) : NULL;
	if (cpath && doc == NULL) {
		doc = json_pack("{s:s, s:s, s:{}, s:[]}", "id", id, "record",
				record_path, "conflicts", "resolved");
		json_object_set_new(m->new_conflicts, cpath, doc);
	}
	free(cpath);
	free(id);
	return doc;
}

static json_t *
candidate(const json_t *value, const char *edit)
{
	json_t *c = json_pack("{s:s}", "edit", edit);

	if (value)
		json_object_set(c, "value", (json_t *)value);
	return c;
}

static int
candidate_cmp(const void *a, const void *b)
{
	return json_cmp(*(json_t *const *)a, *(json_t *const *)b);
}

/* Sorted, without repeats: the same list whatever order it was built in. */
static json_t *
sorted_unique(json_t *array)
{
	size_t n = json_array_size(array), k = 0;
	json_t **items = calloc(n + 1, sizeof(*items));
	json_t *out = json_array();

	for (size_t i = 0; i < n; i++)
		items[i] = json_array_get(array, i);
	qsort(items, n, sizeof(*items), candidate_cmp);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || !json_equal(items[i], items[i - 1])) {
			json_array_append(out, items[i]);
			k++;
		}
	free(items);
	json_decref(array);
	return out;
}

/* Add an open conflict (or more candidates to it) to a document. */
static void
add_open(json_t *doc, const char *ptr, const json_t *base, json_t *cands)
{
	json_t *open = json_object_get(doc, "conflicts");
	json_t *entry = json_object_get(open, ptr);

	if (entry == NULL) {
		entry = json_object();
		if (base)
			json_object_set(entry, "base", (json_t *)base);
		json_object_set_new(entry, "candidates", json_array());
		json_object_set_new(open, ptr, entry);
	}
	json_array_extend(json_object_get(entry, "candidates"), cands);
	json_object_set_new(entry, "candidates",
			    sorted_unique(json_incref(
				    json_object_get(entry, "candidates"))));
	json_decref(cands);
}

/* ---- who wrote a side's version of a file ---- */

static int
blob_at(cs_oid *out, cs_repo *repo, const cs_oid *tree, const char *path)
{
	return cs_repo_tree_lookup(out, NULL, repo, tree, path);
}

static int
touched(cs_history *h, const hnode *node, const char *path)
{
	cs_oid now, before;
	int a, b;

	a = blob_at(&now, h->repo, &node->tree, path);
	b = node->nparents ? blob_at(&before, h->repo,
				     &h->nodes[node->parents[0]].tree, path)
			   : CS_ENOTFOUND;
	return a != b || (a == 0 && cs_oid_cmp(&now, &before) != 0);
}

/* Whether an edit's version of a record holds `value` at `field` (NULL
 * value: absent; "" field: the whole record). */
static int
holds_value(tmerge *m, const hnode *node, const char *path, const char *field,
	    const json_t *value)
{
	cs_oid blob;
	json_t *record = NULL;
	int same;

	if (blob_at(&blob, m->h->repo, &node->tree, path) == 0)
		read_json(&record, m, &blob, path);
	same = json_same(record && *field ? cs_json_pointer_get(record, field)
					  : record,
			 value);
	json_decref(record);
	return same;
}

/*
 * The edit a side's candidate value is attributed to: among the side's
 * edits outside the common history that changed the record and whose
 * version holds that value at the field (or, failing those, that changed
 * `alt_path`: the conflict file a resolution wrote), those no other of them
 * descends from, and of these the smallest id.  Independent of the order
 * the graph was loaded in, so every node writes the same conflict file.
 * Falls back to the side's head.
 */
static void
writer(char hex[CS_OID_HEXSZ + 1], tmerge *m, int side, const char *path,
       const char *field, const json_t *value, const char *alt_path)
{
	cs_history *h = m->h;
	size_t nbits = m->nbits, n = 0;
	int *found = calloc(nbits + 1, sizeof(*found));
	uint8_t *below;
	const cs_oid *best = NULL;

	for (int pass = 0; found && pass < 2 && n == 0; pass++) {
		const char *p = pass == 0 ? path : alt_path;

		if (p == NULL)
			continue;
		for (size_t k = 0; k < nbits && k <= (size_t)m->side[side];
		     k++) {
			const hnode *node = &h->nodes[k];

			if (HAS(m->side_anc[side], k) && !HAS(m->common, k) &&
			    !node->is_merge && touched(h, node, p) &&
			    (pass == 1 || field == NULL ||
			     holds_value(m, node, path, field, value)))
				found[n++] = (int)k;
		}
	}
	/* Leave out an edit that another found edit descends from. */
	below = calloc(n + 1, 1);
	for (size_t j = 0; below && j < n; j++) {
		uint8_t *anc = ancestors(h, found[j]);

		for (size_t i = 0; anc && i < n; i++)
			if (i != j && HAS(anc, found[i]))
				below[i] = 1;
		free(anc);
	}
	for (size_t i = 0; below && i < n; i++)
		if (!below[i] && (best == NULL ||
				  cs_oid_cmp(&h->nodes[found[i]].id, best) < 0))
			best = &h->nodes[found[i]].id;
	cs_oid_fmt(hex, best ? best : &h->nodes[m->side[side]].id);
	free(below);
	free(found);
}

/* ---- consortium state and merge rules, cached ---- */

/*
 * What a consortium state depends on: the ids of members.json, policy.json,
 * protocol.json and schema/ (zeros when absent), not the folder's own id,
 * which consortium/duplicates.json changes too.
 */
static void
consortium_key(cs_oid key[4], cs_repo *repo, const cs_oid *sub)
{
	static const char *const names[4] = {"members.json", "policy.json",
					     "protocol.json", "schema"};

	for (int i = 0; i < 4; i++)
		if (cs_repo_tree_lookup(&key[i], NULL, repo, sub, names[i]) < 0)
			memset(&key[i], 0, sizeof(key[i]));
}

static const cs_consortium *
state_of(tmerge *m, const cs_oid *consortium_tree)
{
	cs_history *h = m->h;
	cs_tree_entry root = {"consortium", *consortium_tree, CS_MODE_TREE};
	cs_oid tree, key[4];
	state_entry *grown;

	consortium_key(key, h->repo, consortium_tree);
	for (size_t i = 0; i < h->nstates; i++)
		if (memcmp(h->states[i].consortium, key, sizeof(key)) == 0)
			return h->states[i].state;
	if ((grown = realloc(h->states,
			     (h->nstates + 1) * sizeof(*grown))) == NULL)
		return NULL;
	h->states = grown;
	memcpy(h->states[h->nstates].consortium, key, sizeof(key));
	h->states[h->nstates].state = NULL;
	if (cs_repo_tree_write(&tree, h->repo, &root, 1) < 0 ||
	    cs_consortium_load(&h->states[h->nstates].state, h->repo, &tree) <
		    0)
		return NULL;
	return h->states[h->nstates++].state;
}

static const cs_merge_rules *
rules_of(tmerge *m, const char *type)
{
	cs_history *h = m->h;
	rules_entry *grown;
	char key[160];

	/* Keyed by type and schema set: the schemas in force may differ
	 * between merges of one history. */
	snprintf(key, sizeof(key), "%p/%s",
		 (const void *)cs_consortium_schemas(m->state), type);
	for (size_t i = 0; i < h->nrules; i++)
		if (strcmp(h->rules[i].type, key) == 0)
			return h->rules[i].rules;
	if ((grown = realloc(h->rules, (h->nrules + 1) * sizeof(*grown))) ==
	    NULL)
		return NULL;
	h->rules = grown;
	h->rules[h->nrules].type = strdup(key);
	if (cs_merge_rules_load(&h->rules[h->nrules].rules,
				cs_consortium_schemas(m->state), type) < 0) {
		free(h->rules[h->nrules].type);
		return NULL;
	}
	return h->rules[h->nrules++].rules;
}

/* ---- file merges ---- */

/*
 * Files that are a value as a whole: keep the base on conflict; without a
 * base, the greater canonical encoding (a fixed, symmetric choice).
 */
static int
atomic_file(cs_oid *out, int *absent, const cs_oid *base, const cs_oid *ours,
	    const cs_oid *theirs)
{
	const cs_oid *pick = base;

	if (pick == NULL)
		pick = (ours && (!theirs || cs_oid_cmp(ours, theirs) > 0))
			       ? ours
			       : theirs;
	*absent = pick == NULL;
	if (pick)
		*out = *pick;
	return 0;
}

static int
consortium_file(cs_oid *out, int *absent, tmerge *m, const char *path,
		const cs_oid *base, const cs_oid *ours, const cs_oid *theirs)
{
	json_t *b = NULL, *o = NULL, *t = NULL, *merged = NULL;
	int error;

	*absent = 0;
	if (strcmp(path, CS_PATH_MEMBERS) && strcmp(path, CS_PATH_POLICY) &&
	    strcmp(path, CS_PATH_PROTOCOL) && strcmp(path, CS_PATH_DUPLICATES))
		return atomic_file(out, absent, base, ours, theirs);
	if (ours == NULL || theirs == NULL)
		return atomic_file(out, absent, base, ours, theirs);
	if ((error = read_json(&b, m, base, path)) < 0 ||
	    (error = read_json(&o, m, ours, path)) < 0 ||
	    (error = read_json(&t, m, theirs, path)) < 0)
		goto done;
	if (strcmp(path, CS_PATH_MEMBERS) == 0) {
		error = cs_merge_members(&merged, b, o, t);
	} else if (strcmp(path, CS_PATH_POLICY) == 0) {
		error = cs_merge_policy(&merged, b, o, t);
	} else if (strcmp(path, CS_PATH_DUPLICATES) == 0) {
		/* Decisions only accumulate: the union of both sides. */
		error = cs_duplicates_decisions_merge(&merged, b, o, t);
	} else {
		/* Protocol versions only go up. */
		json_int_t vo = json_integer_value(json_object_get(o, "protocol"));
		json_int_t vt = json_integer_value(json_object_get(t, "protocol"));

		merged = json_incref(vo > vt || (vo == vt && json_cmp(o, t) > 0)
					     ? o
					     : t);
	}
	if (error == 0)
		error = write_json(out, m, merged);
done:
	json_decref(b);
	json_decref(o);
	json_decref(t);
	json_decref(merged);
	return error;
}

static int
record_file(cs_oid *out, int *absent, tmerge *m, const char *path,
	    const cs_oid *base, const cs_oid *ours, const cs_oid *theirs)
{
	json_t *b = NULL, *o = NULL, *t = NULL, *merged = NULL, *doc;
	cs_field_conflicts conflicts = {NULL, 0};
	const cs_merge_rules *rules;
	char *type = NULL, hex[2][CS_OID_HEXSZ + 1];
	int error;

	*absent = 0;
	if ((error = cs_record_path_parse(path, NULL, &type, NULL)) < 0)
		return atomic_file(out, absent, base, ours, theirs);
	if ((rules = rules_of(m, type)) == NULL) {
		error = cs_error_set(CS_ERROR, "no merge rules for '%s'", type);
		goto done;
	}
	if ((error = read_json(&b, m, base, path)) < 0 ||
	    (error = read_json(&o, m, ours, path)) < 0 ||
	    (error = read_json(&t, m, theirs, path)) < 0 ||
	    (error = cs_merge_record(&merged, b, o, t, rules, &conflicts)) < 0)
		goto done;

	/* A merge never writes an invalid record: the base stays, and the
	 * sides' versions are the candidates. */
	if (merged && cs_record_check(cs_consortium_schemas(m->state), merged,
				      path, path, NULL) < 0) {
		int listed = 0;

		for (size_t i = 0; i < conflicts.count; i++)
			listed |= conflicts.items[i].pointer[0] == '\0';
		json_decref(merged);
		merged = b ? json_incref(b) : NULL;
		if (!listed) {
			cs_field_conflict *grown = realloc(
				conflicts.items,
				(conflicts.count + 1) * sizeof(*grown));

			if (grown == NULL) {
				error = cs_error_set(CS_ERROR, "out of memory");
				goto done;
			}
			conflicts.items = grown;
			grown[conflicts.count].pointer = strdup("");
			grown[conflicts.count].base = b ? json_incref(b) : NULL;
			grown[conflicts.count].ours = o ? json_incref(o) : NULL;
			grown[conflicts.count].theirs =
				t ? json_incref(t) : NULL;
			conflicts.count++;
		}
	}
	if (conflicts.count) {
		if ((doc = new_conflict_doc(m, path)) == NULL) {
			error = cs_error_set(CS_ERROR, "out of memory");
			goto done;
		}
		for (size_t i = 0; i < conflicts.count; i++) {
			cs_field_conflict *c = &conflicts.items[i];

			writer(hex[0], m, 0, path, c->pointer, c->ours, NULL);
			writer(hex[1], m, 1, path, c->pointer, c->theirs, NULL);
			add_open(doc, c->pointer, c->base,
				 json_pack("[o, o]", candidate(c->ours, hex[0]),
					   candidate(c->theirs, hex[1])));
		}
		m->h->conflicts_found += conflicts.count;
	}
	*absent = merged == NULL;
	if (merged)
		error = write_json(out, m, merged);
done:
	cs_field_conflicts_clear(&conflicts);
	json_decref(b);
	json_decref(o);
	json_decref(t);
	json_decref(merged);
	free(type);
	return error;
}

/* Whether the resolution marker `marker` is in `doc`'s resolved list. */
static int
has_marker(const json_t *doc, const json_t *marker)
{
	json_t *list = json_object_get(doc, "resolved"), *item;
	size_t i;

	json_array_foreach(list, i, item) {
		if (json_equal(item, (json_t *)marker))
			return 1;
	}
	return 0;
}

/* A side's version of a record, from its root tree (NULL if absent). */
static json_t *
side_record(tmerge *m, int which, const char *path)
{
	cs_oid blob;
	json_t *doc = NULL;

	if (which == 0 && !m->has_base)
		return NULL;
	if (blob_at(&blob, m->h->repo, &m->roots[which], path) < 0)
		return NULL;
	read_json(&doc, m, &blob, path);
	return doc;
}

/*
 * A resolution marker that only one side holds: the other side has not
 * seen the resolution.  If that side changed the resolved field, the
 * change is concurrent with the resolution: the conflict reopens with both
 * values, and the record keeps the resolution's value meanwhile (without
 * markers a resolution that chose the base value would be silently undone
 * by the three-way merge; docs/merge.md "Resolutions").
 */
static int
reopen_check(tmerge *m, json_t *merged_doc, const json_t *marker, int holder)
{
	const char *field = json_string_value(json_object_get(marker, "field"));
	const char *path = json_string_value(json_object_get(merged_doc,
							      "record"));
	const json_t *chosen = json_object_get(marker, "value");
	json_t *base = NULL, *other = NULL, *current = NULL;
	cs_oid blob;
	char hex[2][CS_OID_HEXSZ + 1];
	int error = 0;

	if (field == NULL || path == NULL || strncmp(path, "records/", 8))
		return 0;
	base = side_record(m, 0, path);
	other = side_record(m, holder == 1 ? 2 : 1, path);
	/* Several markers can reopen fields of one record: each sees the
	 * others' changes. */
	if ((current = json_object_get(m->overrides, path)) != NULL)
		json_incref(current);
	else if (m->has_records &&
		 blob_at(&blob, m->h->repo, &m->records, path + 8) == 0)
		read_json(&current, m, &blob, path);
	if (current == NULL || other == NULL)
		goto done;
	if (json_same(cs_json_pointer_get(current, field), chosen) ||
	    json_same(cs_json_pointer_get(other, field), cs_json_pointer_get(base, field)))
		goto done;
	/* Reopen. */
	{
		char *cpath = conflict_path_of(json_string_value(
			json_object_get(merged_doc, "id")));

		writer(hex[0], m, holder - 1, path, field, chosen, cpath);
		writer(hex[1], m, holder == 1 ? 1 : 0, path, field,
		       cs_json_pointer_get(other, field), NULL);
		free(cpath);
	}
	add_open(merged_doc, field, cs_json_pointer_get(base, field),
		 json_pack("[o, o]", candidate(chosen, hex[0]),
			   candidate(cs_json_pointer_get(other, field), hex[1])));
	cs_json_pointer_set(current, field,
			    chosen ? json_deep_copy(chosen) : NULL);
	json_object_set(m->overrides, path, current);
	m->h->conflicts_found++;
done:
	json_decref(base);
	json_decref(other);
	json_decref(current);
	return error;
}

/* A marker for `field` that `doc` holds and `other` does not, or NULL. */
static const json_t *
unseen_marker(const json_t *doc, const json_t *other, const char *field)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(doc, "resolved"), i, v) {
		const char *f = json_string_value(json_object_get(v, "field"));

		if (f && strcmp(f, field) == 0 && !has_marker(other, v))
			return v;
	}
	return NULL;
}

/* Whether `value` is among an open entry's candidates. */
static int
is_candidate(const json_t *entry, const json_t *value)
{
	json_t *c;
	size_t i;

	json_array_foreach(json_object_get(entry, "candidates"), i, c) {
		if (json_same(json_object_get(c, "value"), value))
			return 1;
	}
	return 0;
}

/*
 * An open conflict that only side `holder` holds: the other side has not
 * seen it.  If the other side changed the field, its value is one more
 * candidate -- also when it equals the value the record keeps while the
 * conflict is open, which a three-way merge would take for no change at
 * all and a later resolution would then silently override
 * (docs/merge.md "Changes that did not see a conflict").
 */
static int
unseen_conflict_check(tmerge *m, json_t *merged_doc, const char *field,
		      int holder)
{
	const char *path = json_string_value(json_object_get(merged_doc,
							      "record"));
	json_t *entry = json_object_get(json_object_get(merged_doc, "conflicts"),
					field);
	json_t *base = NULL, *other = NULL;
	const json_t *value;
	int changer = holder == 1 ? 2 : 1;
	char hex[CS_OID_HEXSZ + 1];

	if (entry == NULL || path == NULL || strncmp(path, "records/", 8))
		return 0;
	base = side_record(m, 0, path);
	other = side_record(m, changer, path);
	if (base == NULL || other == NULL)
		goto done; /* added or deleted: the record merge judges it */
	value = *field ? cs_json_pointer_get(other, field) : other;
	if (json_same(value, *field ? cs_json_pointer_get(base, field) : base) ||
	    is_candidate(entry, value))
		goto done;
	writer(hex, m, changer - 1, path, field, value, NULL);
	add_open(merged_doc, field, json_object_get(entry, "base"),
		 json_pack("[o]", candidate(value, hex)));
	m->h->conflicts_found++;
done:
	json_decref(base);
	json_decref(other);
	return 0;
}

/*
 * A conflict that side `resolver` resolved (it dropped the entry and holds
 * a marker the other side lacks) while the other side added candidates to
 * it: those candidates were not seen by the resolution, so the conflict
 * stays open with them and the resolution's value (docs/merge.md
 * "Resolutions").  NULL when the other side added nothing.
 */
static json_t *
resolved_meanwhile(tmerge *m, const json_t *base_entry,
		   const json_t *other_entry, const json_t *marker,
		   const json_t *doc, const char *field, int resolver)
{
	json_t *out, *cands, *c;
	size_t i;
	char hex[CS_OID_HEXSZ + 1];
	char *cpath;

	cands = json_array();
	json_array_foreach(json_object_get(other_entry, "candidates"), i, c) {
		const json_t *v = json_object_get(c, "value");

		if (!is_candidate(base_entry, v) &&
		    !json_same(v, json_object_get(marker, "value")))
			json_array_append(cands, c);
	}
	if (json_array_size(cands) == 0) {
		json_decref(cands);
		return NULL;
	}
	cpath = conflict_path_of(json_string_value(json_object_get(doc, "id")));
	writer(hex, m, resolver - 1,
	       json_string_value(json_object_get(doc, "record")), field,
	       json_object_get(marker, "value"), cpath);
	free(cpath);
	json_array_append_new(cands, candidate(json_object_get(marker, "value"),
					       hex));
	out = json_deep_copy(other_entry);
	json_object_set_new(out, "candidates", sorted_unique(cands));
	return out;
}

/* Three-way merge of one open-conflict entry. */
static json_t *
merge_open_entry(const json_t *b, const json_t *o, const json_t *t)
{
	json_t *out, *cands;

	if (json_same(o, t))
		return o ? json_deep_copy(o) : NULL;
	if (json_same(o, b))
		return t ? json_deep_copy(t) : NULL;
	if (json_same(t, b))
		return o ? json_deep_copy(o) : NULL;
	if (o == NULL || t == NULL)
		return json_deep_copy(o ? o : t);
	out = json_deep_copy(json_cmp(o, t) <= 0 ? o : t);
	cands = json_array();
	json_array_extend(cands, json_object_get(o, "candidates"));
	json_array_extend(cands, json_object_get(t, "candidates"));
	json_object_set_new(out, "candidates", sorted_unique(cands));
	return out;
}

static int
conflict_file(cs_oid *out, int *absent, tmerge *m, const char *path,
	      const cs_oid *base, const cs_oid *ours, const cs_oid *theirs)
{
	json_t *doc[3] = {NULL, NULL, NULL}, *merged = NULL, *open, *resolved;
	const json_t *any;
	const char *key;
	json_t *v;
	size_t i;
	int error;

	*absent = 0;
	if ((error = read_json(&doc[0], m, base, path)) < 0 ||
	    (error = read_json(&doc[1], m, ours, path)) < 0 ||
	    (error = read_json(&doc[2], m, theirs, path)) < 0)
		goto done;
	any = doc[1] ? doc[1] : doc[2];
	if (any == NULL) {
		*absent = 1;
		goto done;
	}
	merged = json_pack("{s:O, s:O, s:{}, s:[]}", "id",
			   json_object_get(any, "id"), "record",
			   json_object_get(any, "record"), "conflicts",
			   "resolved");
	open = json_object_get(merged, "conflicts");
	/* Open conflicts, field by field, in sorted order. */
	{
		json_t *keys = json_array();

		for (int s = 0; s < 3; s++)
			json_object_foreach(json_object_get(doc[s], "conflicts"),
					    key, v) {
				json_array_append_new(keys, json_string(key));
			}
		keys = sorted_unique(keys);
		json_array_foreach(keys, i, v) {
			const char *f = json_string_value(v);
			const json_t *eb = json_object_get(
				json_object_get(doc[0], "conflicts"), f);
			const json_t *eo = json_object_get(
				json_object_get(doc[1], "conflicts"), f);
			const json_t *et = json_object_get(
				json_object_get(doc[2], "conflicts"), f);
			const json_t *mk;
			json_t *e = NULL;

			if (eb && !eo && et && !json_same(et, eb) &&
			    (mk = unseen_marker(doc[1], doc[2], f)) != NULL)
				e = resolved_meanwhile(m, eb, et, mk, any, f, 1);
			else if (eb && eo && !et && !json_same(eo, eb) &&
				 (mk = unseen_marker(doc[2], doc[1], f)) != NULL)
				e = resolved_meanwhile(m, eb, eo, mk, any, f, 2);
			else
				e = merge_open_entry(eb, eo, et);

			if (e)
				json_object_set_new(open, f, e);
		}
		json_decref(keys);
	}
	/* Resolution markers only accumulate. */
	resolved = json_array();
	for (int s = 0; s < 3; s++)
		json_array_extend(resolved,
				  json_object_get(doc[s], "resolved"));
	json_object_set_new(merged, "resolved", sorted_unique(resolved));

	for (int s = 1; s <= 2; s++) {
		json_array_foreach(json_object_get(doc[s], "resolved"), i, v) {
			if (!has_marker(doc[s == 1 ? 2 : 1], v) &&
			    (error = reopen_check(m, merged, v, s)) < 0)
				goto done;
		}
	}
	for (int s = 1; s <= 2; s++) {
		const json_t *other = doc[s == 1 ? 2 : 1];

		json_object_foreach(json_object_get(doc[s], "conflicts"), key,
				    v) {
			if (json_object_get(json_object_get(other, "conflicts"),
					    key) == NULL &&
			    unseen_marker(other, doc[s], key) == NULL &&
			    (error = unseen_conflict_check(m, merged, key, s)) <
				    0)
				goto done;
		}
	}
	error = write_json(out, m, merged);
done:
	for (int s = 0; s < 3; s++)
		json_decref(doc[s]);
	json_decref(merged);
	return error;
}

/* ---- trees ---- */

/*
 * Merge a folder.  A side that alone changed an entry wins without a look
 * inside, except with `thorough`: conflict files need a look whenever the
 * sides differ, since a resolution marker one side holds can reopen a
 * conflict on a field the other side changed.
 */
static int
merge_dir(cs_oid *out, int *absent, tmerge *m, const char *path,
	  const cs_oid *b, const cs_oid *o, const cs_oid *t, file_merge_cb cb,
	  int thorough)
{
	cs_tree_entries lists[3] = {{NULL, 0}, {NULL, 0}, {NULL, 0}};
	const cs_tree_entries *l[3] = {&lists[0], &lists[1], &lists[2]};
	cs_tree_entry *result = NULL;
	const char **names = NULL;
	size_t nnames = 0, nresult = 0;
	char *child = NULL;
	int error;

	*absent = 0;
	if ((error = cs_repo_tree_read(&lists[0], m->h->repo, b)) < 0 ||
	    (error = cs_repo_tree_read(&lists[1], m->h->repo, o)) < 0 ||
	    (error = cs_repo_tree_read(&lists[2], m->h->repo, t)) < 0 ||
	    (error = union_names(&names, &nnames, l)) < 0)
		goto done;
	if ((result = calloc(nnames + 1, sizeof(*result))) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < nnames; i++) {
		const cs_tree_entry *eb = entry_named(l[0], names[i]);
		const cs_tree_entry *eo = entry_named(l[1], names[i]);
		const cs_tree_entry *et = entry_named(l[2], names[i]);
		const cs_tree_entry *take = NULL;
		cs_oid merged;
		int gone = 0, trees;

		free(child);
		if (asprintf(&child, "%s%s%s", path, *path ? "/" : "",
			     names[i]) < 0) {
			child = NULL;
			error = cs_error_set(CS_ERROR, "out of memory");
			goto done;
		}
		if (same_entry(eo, et))
			take = eo;
		else if (!thorough && same_entry(eo, eb))
			take = et;
		else if (!thorough && same_entry(et, eb))
			take = eo;
		else {
			trees = (!eb || is_tree(eb)) && (!eo || is_tree(eo)) &&
				(!et || is_tree(et));
			if (trees)
				error = merge_dir(&merged, &gone, m, child,
						  eb ? &eb->id : NULL,
						  eo ? &eo->id : NULL,
						  et ? &et->id : NULL, cb,
						  thorough);
			else
				error = cb(&merged, &gone, m, child,
					   eb && !is_tree(eb) ? &eb->id : NULL,
					   eo && !is_tree(eo) ? &eo->id : NULL,
					   et && !is_tree(et) ? &et->id : NULL);
			if (error < 0)
				goto done;
			if (!gone) {
				result[nresult].name = (char *)names[i];
				result[nresult].id = merged;
				result[nresult].mode =
					trees ? CS_MODE_TREE : CS_MODE_BLOB;
				nresult++;
			}
			continue;
		}
		if (take)
			result[nresult++] = (cs_tree_entry){
				(char *)names[i], take->id, take->mode};
	}
	*absent = nresult == 0;
	if (nresult)
		error = cs_repo_tree_write(out, m->h->repo, result, nresult);
done:
	free(child);
	free(result);
	free(names);
	for (int s = 0; s < 3; s++)
		cs_tree_entries_clear(&lists[s]);
	return error;
}

static const cs_oid *
entry_id(const cs_tree_entries *list, const char *name)
{
	const cs_tree_entry *e = entry_named(list, name);

	return e ? &e->id : NULL;
}

/* Merge one top-level folder, or take a side's as it is. */
static int
merge_top(cs_tree_entry *out, int *present, tmerge *m,
	  const cs_tree_entries *l[3], const char *name, file_merge_cb cb,
	  int thorough)
{
	const cs_oid *b = entry_id(l[0], name), *o = entry_id(l[1], name);
	const cs_oid *t = entry_id(l[2], name);
	int absent = 0, error;

	error = merge_dir(&out->id, &absent, m, name, b, o, t, cb, thorough);
	out->name = (char *)name;
	out->mode = CS_MODE_TREE;
	*present = error == 0 && !absent;
	return error;
}

static int
apply_after_walk(cs_oid *root, tmerge *m)
{
	size_t n = json_object_size(m->new_conflicts) +
		   json_object_size(m->overrides),
	       k = 0;
	cs_tree_update *updates = calloc(n + 1, sizeof(*updates));
	cs_oid *ids = calloc(n + 1, sizeof(*ids));
	const char *cpath, *rpath;
	json_t *news, *record;
	int error = 0;

	if (updates == NULL || ids == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	json_object_foreach(m->overrides, rpath, record) {
		if ((error = write_json(&ids[k], m, record)) < 0)
			goto done;
		updates[k] = (cs_tree_update){rpath, &ids[k]};
		k++;
	}
	/* New conflicts join the merged conflict files. */
	json_object_foreach(m->new_conflicts, cpath, news) {
		json_t *doc = NULL, *open, *entry;
		const char *field;
		cs_oid blob;

		if (blob_at(&blob, m->h->repo, root, cpath) == 0 &&
		    (error = read_json(&doc, m, &blob, cpath)) < 0)
			goto done;
		if (doc == NULL)
			doc = json_deep_copy(news);
		else {
			open = json_object_get(news, "conflicts");
			json_object_foreach(open, field, entry) {
				add_open(doc, field,
					 json_object_get(entry, "base"),
					 json_deep_copy(json_object_get(
						 entry, "candidates")));
			}
		}
		error = write_json(&ids[k], m, doc);
		json_decref(doc);
		if (error < 0)
			goto done;
		updates[k] = (cs_tree_update){cpath, &ids[k]};
		k++;
	}
	if (k)
		error = cs_repo_tree_update(root, m->h->repo, root, updates, k);
done:
	free(updates);
	free(ids);
	return error;
}

/* The three-way merge of two root trees: consortium first (its schemas
 * and rules judge the records), then records, then conflict files. */
static int
merge_roots(cs_oid *out, tmerge *m)
{
	cs_tree_entries lists[3] = {{NULL, 0}, {NULL, 0}, {NULL, 0}};
	const cs_tree_entries *l[3] = {&lists[0], &lists[1], &lists[2]};
	cs_tree_entry result[3];
	size_t n = 0;
	int present, error;

	if ((error = cs_repo_tree_read(&lists[0], m->h->repo,
				       m->has_base ? &m->roots[0] : NULL)) < 0 ||
	    (error = cs_repo_tree_read(&lists[1], m->h->repo, &m->roots[1])) <
		    0 ||
	    (error = cs_repo_tree_read(&lists[2], m->h->repo, &m->roots[2])) <
		    0)
		goto done;
	if ((error = merge_top(&result[n], &present, m, l, "consortium",
			       consortium_file, 0)) < 0)
		goto done;
	if (!present || (m->state = state_of(m, &result[n].id)) == NULL) {
		error = cs_error_set(CS_EINVALID,
				     "the merged consortium files do not load");
		goto done;
	}
	n++;
	if ((error = merge_top(&result[n], &present, m, l, "records",
			       record_file, 0)) < 0)
		goto done;
	if (present) {
		m->records = result[n].id;
		m->has_records = 1;
		n++;
	}
	if ((error = merge_top(&result[n], &present, m, l, "conflicts",
			       conflict_file, 1)) < 0)
		goto done;
	if (present)
		n++;
	if ((error = cs_repo_tree_write(out, m->h->repo, result, n)) < 0)
		goto done;
	error = apply_after_walk(out, m);
done:
	for (int s = 0; s < 3; s++)
		cs_tree_entries_clear(&lists[s]);
	return error;
}

/* ---- merge commits and the fold ---- */

static int
write_merge_commit(cs_oid *out, cs_history *h, int p0, int p1,
		   const cs_oid *tree)
{
	cs_commit c;
	char *text = NULL;
	size_t len = 0;
	int64_t later = h->nodes[p0].time > h->nodes[p1].time
				? h->nodes[p0].time
				: h->nodes[p1].time;
	int error;

	memset(&c, 0, sizeof(c));
	c.kind = CS_COMMIT_MERGE;
	c.tree = *tree;
	c.parents[0] = h->nodes[p0].id;
	c.parents[1] = h->nodes[p1].id;
	c.parent_count = 2;
	c.author.name = CS_MERGE_IDENT_NAME;
	c.author.email = CS_MERGE_IDENT_EMAIL;
	c.author.time = later;
	c.committer = c.author;
	c.message = CS_MERGE_MESSAGE;
	if ((error = cs_commit_format_payload(&text, &len, &c)) < 0)
		return error;
	error = cs_repo_write_commit_raw(out, h->repo, text, len);
	free(text);
	if (error == 0 && find(h, out) < 0)
		error = append(h, &c, out, 1);
	return error;
}

static int
merge_nodes(cs_oid *out, cs_history *h, int a, int b)
{
	uint8_t *anc[2] = {NULL, NULL}, *common = NULL;
	cs_oid *tips = NULL, base, tree;
	size_t ntips = 0, nbits;
	tmerge m;
	int p0, p1, error;

	if (a == b) {
		*out = h->nodes[a].id;
		return 0;
	}
	if (cs_oid_cmp(&h->nodes[a].id, &h->nodes[b].id) > 0) {
		int swap = a;

		a = b;
		b = swap;
	}
	p0 = a;
	p1 = b;
	/* A merge made before with the same parents is the same commit. */
	for (int c = 0; c < h->nodes[p0].nchildren; c++) {
		const hnode *k = &h->nodes[h->nodes[p0].children[c]];

		if (k->computed && k->parents[0] == p0 && k->parents[1] == p1) {
			*out = k->id;
			return 0;
		}
	}
	memset(&m, 0, sizeof(m));
	nbits = h->n;
	anc[0] = ancestors(h, p0);
	anc[1] = ancestors(h, p1);
	common = calloc(nbits / 8 + 1, 1);
	if (!anc[0] || !anc[1] || !common) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	if (HAS(anc[0], p1) || HAS(anc[1], p0)) {
		*out = HAS(anc[0], p1) ? h->nodes[p0].id : h->nodes[p1].id;
		error = 0;
		goto done;
	}
	for (size_t i = 0; i < nbits / 8 + 1; i++)
		common[i] = anc[0][i] & anc[1][i];
	if ((error = tips_of(&tips, &ntips, h, common)) < 0)
		goto done;
	if (++h->depth > MAX_DEPTH) {
		error = cs_error_set(CS_ELIMIT, "merge bases nest too deep");
		h->depth--;
		goto done;
	}
	error = ntips ? fold(&base, h, tips, ntips) : 0;
	h->depth--;
	if (error < 0)
		goto done;

	m.h = h;
	m.side[0] = p0;
	m.side[1] = p1;
	m.side_anc[0] = anc[0];
	m.side_anc[1] = anc[1];
	m.common = common;
	m.nbits = nbits;
	m.has_base = ntips > 0;
	if (ntips) {
		int k = find(h, &base);

		m.roots[0] = h->nodes[k].tree;
	}
	m.roots[1] = h->nodes[p0].tree;
	m.roots[2] = h->nodes[p1].tree;
	if ((m.new_conflicts = json_object()) == NULL ||
	    (m.overrides = json_object()) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	if ((error = merge_roots(&tree, &m)) < 0 ||
	    (error = write_merge_commit(out, h, p0, p1, &tree)) < 0)
		goto done;
	h->merges_made++;
done:
	json_decref(m.new_conflicts);
	json_decref(m.overrides);
	free(anc[0]);
	free(anc[1]);
	free(common);
	free(tips);
	return error;
}

static int
fold(cs_oid *out, cs_history *h, const cs_oid *tips, size_t n)
{
	cs_oid acc = tips[0];
	int error;

	for (size_t i = 1; i < n; i++) {
		int a = find(h, &acc), b = find(h, &tips[i]);

		if (a < 0 || b < 0)
			return cs_error_set(CS_ERROR, "history: unknown tip");
		if ((error = merge_nodes(&acc, h, a, b)) < 0)
			return error;
	}
	*out = acc;
	return 0;
}

int
cs_history_merge(cs_oid *out, cs_history *h, const cs_oid *a, const cs_oid *b)
{
	int ia = find(h, a), ib = find(h, b);

	if (ia < 0 || ib < 0)
		return cs_error_set(CS_ENOTFOUND,
				    "the commit to merge is not in the history");
	return merge_nodes(out, h, ia, ib);
}

int
cs_history_fold(cs_oid *out, cs_history *h)
{
	cs_oid *tips = NULL;
	size_t n = 0;
	int error;

	if ((error = cs_history_tips(&tips, &n, h)) < 0)
		return error;
	if (n == 0)
		error = cs_error_set(CS_ENOTFOUND, "no edits to fold");
	else
		error = fold(out, h, tips, n);
	free(tips);
	return error;
}
