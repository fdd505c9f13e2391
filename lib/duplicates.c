/*
 * Suspected duplicates: lib/include/cartosync/duplicates.h, docs/merge.md
 * "Suspected duplicates".
 *
 * Comparing every pair of records is out of the question at 100,000
 * records, so pairs are found through an index, and the index is exact:
 * it finds every pair that the rules accept, and the rules are then
 * checked on each pair it finds.
 *
 *   1. Names.  Tokens are ranked once for the whole map, rarest first.  If
 *      two token sets A and B have a Jaccard index of at least t, their
 *      prefixes of |A| - ceil(t|A|) + 1 and |B| - ceil(t|B|) + 1 tokens in
 *      that order share a token ("prefix filtering", Chaudhuri et al.,
 *      ICDE 2006): only prefix tokens are indexed, and they are the rare
 *      ones, so a common word does not make a large bucket.
 *   2. Places.  Each record is indexed under each of its places: the grid
 *      cell of each point (0.003 degrees of latitude, more than 300 m, by
 *      0.006 of longitude) and each commune.  Two points at most 300 m
 *      apart lie in neighbouring cells, so a record looks up the cells
 *      around its points and its communes.
 *
 * An index entry is (type, prefix token, place, record).  A record meets
 * through the index exactly the records of its type that share a prefix
 * token and a place with it, which every suspected pair does.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/consortium.h"
#include "cartosync/duplicates.h"
#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/map.h"
#include "cartosync/record.h"
#include "text.h"

enum { T_ORG, T_LOC, T_SVC, NTYPES };


/* qsort, but for an empty list too (qsort's pointer must not be NULL). */
static void
sort_n(void *base, size_t n, size_t size,
       int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}

static const char *const kinds[NTYPES] = {"organization", "location",
					  "service"};

#define CELL_LAT 0.003 /* degrees: 333 m, more than the 300 m searched */
#define CELL_LON 0.006 /* degrees: 333 m or more up to 60 degrees */
#define EARTH_RADIUS 6371008.8 /* metres, the mean radius */
#define MAX_NAME_WORDS 64

/* ------------------------------------------------------------------ */
/* Names */

/* Sorted, for bsearch. */
static const char *const stop_words[] = {
	"a",   "al",    "and", "association", "au",  "aux", "center",
	"centre", "d",  "de",  "des",         "du",  "el",  "en",
	"et",  "for",   "in",  "l",           "la",  "le",  "les",
	"of",  "par",   "pour", "sur",        "the", "un",  "une",
};

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
is_stop_word(const char *w)
{
	return bsearch(&w, stop_words, sizeof(stop_words) / sizeof(*stop_words),
		       sizeof(*stop_words), str_cmp) != NULL;
}

static void
words_free(char **words, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(words[i]);
	free(words);
}

/*
 * The tokens of a name, each once, in order of first appearance (see
 * cs_duplicates_name_key).  *words is malloc'd (NULL when there are
 * none); at most MAX_NAME_WORDS are kept (names hold 200 characters).
 */
static int
name_words(char ***words, size_t *count, const char *name)
{
	char *norm = cs_text_normalise(name), *save = NULL, *w;
	char **out = NULL;
	size_t n = 0;

	*words = NULL;
	*count = 0;
	if (norm == NULL ||
	    (out = calloc(MAX_NAME_WORDS, sizeof(*out))) == NULL) {
		free(norm);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	for (w = strtok_r(norm, " ", &save); w && n < MAX_NAME_WORDS;
	     w = strtok_r(NULL, " ", &save)) {
		size_t len = strlen(w);
		int seen = 0;

		if (is_stop_word(w))
			continue;
		/* French plurals: "femmes" is "femme"; not "ss" ("progress"). */
		if (len >= 4 && w[len - 1] == 's' && w[len - 2] != 's') {
			w[len - 1] = '\0';
			if (is_stop_word(w))
				continue;
		}
		for (size_t i = 0; i < n && !seen; i++)
			seen = strcmp(out[i], w) == 0;
		if (seen)
			continue;
		if ((out[n] = strdup(w)) == NULL) {
			words_free(out, n);
			free(norm);
			return cs_error_set(CS_ERROR, "out of memory");
		}
		n++;
	}
	free(norm);
	if (n == 0) {
		free(out);
		out = NULL;
	}
	*words = out;
	*count = n;
	return 0;
}

char *
cs_duplicates_name_key(const char *name)
{
	char **words = NULL, *key;
	size_t n = 0, len = 0;

	if (name_words(&words, &n, name) < 0)
		return NULL;
	for (size_t i = 0; i < n; i++)
		len += strlen(words[i]) + 1;
	if ((key = malloc(len + 1)) != NULL) {
		key[0] = '\0';
		for (size_t i = 0; i < n; i++) {
			if (i)
				strcat(key, " ");
			strcat(key, words[i]);
		}
	}
	words_free(words, n);
	return key;
}

double
cs_duplicates_name_similarity(const char *a, const char *b)
{
	char **wa = NULL, **wb = NULL;
	size_t na = 0, nb = 0, i = 0, j = 0, common = 0;
	double score = 0;

	if (name_words(&wa, &na, a) < 0 || name_words(&wb, &nb, b) < 0)
		goto done;
	if (na == 0 || nb == 0)
		goto done;
	sort_n(wa, na, sizeof(*wa), str_cmp);
	sort_n(wb, nb, sizeof(*wb), str_cmp);
	while (i < na && j < nb) {
		int c = strcmp(wa[i], wb[j]);

		common += c == 0;
		i += c <= 0;
		j += c >= 0;
	}
	score = (double)common / (double)(na + nb - common);
done:
	words_free(wa, na);
	words_free(wb, nb);
	return score;
}

/* ------------------------------------------------------------------ */
/* Decisions */

typedef struct {
	char a[37], b[37];
} id_pair;

static int
pair_cmp(const void *x, const void *y)
{
	const id_pair *p = x, *q = y;
	int c = strcmp(p->a, q->a);

	return c ? c : strcmp(p->b, q->b);
}

/* The valid pairs of a "distinct" list, sorted, each once. */
static int
pairs_of(id_pair **out, size_t *count, const json_t *list)
{
	id_pair *pairs = NULL;
	size_t n = 0, k = 0, i;
	json_t *item;

	*out = NULL;
	*count = 0;
	if (!json_is_array(list) || json_array_size(list) == 0)
		return 0;
	if ((pairs = calloc(json_array_size(list), sizeof(*pairs))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	json_array_foreach(list, i, item) {
		const char *a = json_string_value(json_array_get(item, 0));
		const char *b = json_string_value(json_array_get(item, 1));
		int c;

		if (!json_is_array(item) || json_array_size(item) != 2 || !a ||
		    !b || !cs_uuid_valid(a) || !cs_uuid_valid(b) ||
		    (c = strcmp(a, b)) == 0)
			continue;
		memcpy(pairs[n].a, c < 0 ? a : b, 37);
		memcpy(pairs[n].b, c < 0 ? b : a, 37);
		n++;
	}
	sort_n(pairs, n, sizeof(*pairs), pair_cmp);
	for (i = 0; i < n; i++)
		if (k == 0 || pair_cmp(&pairs[k - 1], &pairs[i]) != 0)
			pairs[k++] = pairs[i];
	*out = pairs;
	*count = k;
	return 0;
}

json_t *
cs_duplicates_decisions_clean(const json_t *doc)
{
	json_t *out = NULL, *distinct = json_array(), *merged = json_object();
	json_t *value;
	id_pair *pairs = NULL;
	size_t n = 0;
	const char *key;

	if (distinct == NULL || merged == NULL ||
	    pairs_of(&pairs, &n, json_object_get(doc, "distinct")) < 0)
		goto done;
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(distinct,
					  json_pack("[s, s]", pairs[i].a,
						    pairs[i].b)) < 0)
			goto done;
	json_object_foreach(json_object_get(doc, "merged"), key, value) {
		const char *kept = json_string_value(value);

		if (cs_uuid_valid(key) && kept && cs_uuid_valid(kept) &&
		    strcmp(key, kept) != 0 &&
		    json_object_set_new(merged, key, json_string(kept)) < 0)
			goto done;
	}
	out = json_pack("{s:O, s:O}", "distinct", distinct, "merged", merged);
done:
	free(pairs);
	json_decref(distinct);
	json_decref(merged);
	return out;
}

int
cs_duplicates_decisions_merge(json_t **out, const json_t *base,
			      const json_t *ours, const json_t *theirs)
{
	json_t *o = cs_duplicates_decisions_clean(ours);
	json_t *t = cs_duplicates_decisions_clean(theirs);
	json_t *merged, *value, *item;
	const char *key;
	size_t i;
	int error = CS_ERROR;

	(void)base; /* decisions only accumulate */
	*out = NULL;
	if (o == NULL || t == NULL)
		goto done;
	json_array_foreach(json_object_get(t, "distinct"), i, item) {
		if (json_array_append(json_object_get(o, "distinct"), item) < 0)
			goto done;
	}
	merged = json_object_get(o, "merged");
	json_object_foreach(json_object_get(t, "merged"), key, value) {
		const char *ours_kept = json_string_value(
			json_object_get(merged, key));

		/* Merged into different records on the two sides: the
		 * smaller id, a choice both sides make alike. */
		if ((ours_kept == NULL ||
		     strcmp(json_string_value(value), ours_kept) < 0) &&
		    json_object_set(merged, key, value) < 0)
			goto done;
	}
	if ((*out = cs_duplicates_decisions_clean(o)) != NULL)
		error = 0;
done:
	json_decref(o);
	json_decref(t);
	return error < 0 ? cs_error_set(CS_ERROR, "out of memory") : 0;
}

const char *
cs_duplicates_merged_into(const json_t *decisions, const char *id)
{
	return json_string_value(
		json_object_get(json_object_get(decisions, "merged"), id));
}

int
cs_duplicates_decisions(json_t **out, cs_repo *repo, const cs_oid *commit)
{
	json_t *doc = NULL;
	char *buf = NULL;
	size_t len = 0;
	cs_oid tree, blob;
	int error;

	*out = NULL;
	if ((error = cs_repo_commit_tree(&tree, repo, commit)) < 0)
		return error;
	error = cs_repo_tree_lookup(&blob, NULL, repo, &tree,
				    CS_PATH_DUPLICATES);
	if (error == 0) {
		if ((error = cs_repo_read_blob(&buf, &len, repo, &blob,
					       CS_JSON_MAX_BYTES)) < 0) {
			error = cs_error_prefix(error, "%s",
						CS_PATH_DUPLICATES);
			goto done;
		}
		if ((error = cs_json_parse(&doc, buf, len,
					   CS_PATH_DUPLICATES)) < 0)
			goto done;
	} else if (error != CS_ENOTFOUND) {
		goto done;
	}
	if ((*out = cs_duplicates_decisions_clean(doc)) == NULL)
		error = cs_error_set(CS_ERROR, "out of memory");
	else
		error = 0;
done:
	json_decref(doc);
	free(buf);
	return error;
}

/* ------------------------------------------------------------------ */
/* The records, reduced to what the search needs */

typedef struct {
	double lat, lon;
} point;

typedef struct {
	char id[37];
	int type;
	int candidate;   /* not retired, not merged away, has a name */
	char *owner;
	uint32_t owner_id; /* the owner's rank among the owners */
	char *name;
	char *org_id;    /* a location's organization_id */
	char (*loc_ids)[37]; /* a service's location ids */
	size_t nloc_ids;
	int has_point;
	point own;       /* a location's coordinates */
	char *commune;   /* a location's "adm2|normalised adm3" */
	char *commune_label;
	long commune_id; /* index in the commune table, or -1 */
	/* places, once resolved */
	point *pts;
	size_t npts, cappts;
	uint32_t *communes;
	size_t ncommunes, capcommunes;
	/* token ranks, ascending */
	uint32_t *tok;
	size_t ntok;
} rec;

typedef struct {
	rec *items;
	size_t n, cap;
	char **labels; /* commune id -> a label (the first location's adm3) */
	size_t nlabels;
} dset;

static void
item_clear(rec *it)
{
	free(it->owner);
	free(it->name);
	free(it->org_id);
	free(it->loc_ids);
	free(it->commune);
	free(it->commune_label);
	free(it->pts);
	free(it->communes);
	free(it->tok);
}

static void
dset_clear(dset *d)
{
	for (size_t i = 0; i < d->n; i++)
		item_clear(&d->items[i]);
	free(d->items);
	free(d->labels); /* borrowed from the items */
}

static int
type_index(const char *type)
{
	for (int t = 0; t < NTYPES; t++)
		if (type && strcmp(type, kinds[t]) == 0)
			return t;
	return -1;
}

static char *
dup_string(const json_t *v)
{
	const char *s = json_string_value(v);

	return s ? strdup(s) : NULL;
}

/* A location's commune: "adm2|adm3" normalised, or NULL. */
static int
commune_of(rec *it, const json_t *record)
{
	const json_t *admin = json_object_get(record, "x_admin");
	const char *adm2 = json_string_value(json_object_get(admin, "adm2"));
	const char *adm3 = json_string_value(json_object_get(admin, "adm3"));
	char *norm;

	if (adm2 == NULL || adm3 == NULL)
		return 0;
	if ((norm = cs_text_normalise(adm3)) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	if (*norm && (asprintf(&it->commune, "%s|%s", adm2, norm) < 0 ||
		      (it->commune_label = strdup(adm3)) == NULL)) {
		free(norm);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	free(norm);
	return 0;
}

/* Add a record of the three types; anything else is ignored. */
static int
dset_add(dset *d, const json_t *record)
{
	const char *id = cs_record_id(record);
	const char *status = json_string_value(
		json_object_get(record, "x_status"));
	int type = type_index(cs_record_type(record)), error;
	rec it;

	if (!json_is_object(record) || type < 0 || id == NULL ||
	    !cs_uuid_valid(id) || cs_record_owner(record) == NULL)
		return 0;
	memset(&it, 0, sizeof(it));
	memcpy(it.id, id, 37);
	it.type = type;
	it.commune_id = -1;
	it.owner = strdup(cs_record_owner(record));
	it.name = dup_string(json_object_get(record, "name"));
	if (it.owner == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto fail;
	}
	it.candidate = it.name != NULL &&
		       !(status && strcmp(status, "retired") == 0);
	if (type == T_LOC) {
		const json_t *lat = json_object_get(record, "latitude");
		const json_t *lon = json_object_get(record, "longitude");

		if (json_is_number(lat) && json_is_number(lon)) {
			it.has_point = 1;
			it.own.lat = json_number_value(lat);
			it.own.lon = json_number_value(lon);
		}
		if ((error = commune_of(&it, record)) < 0)
			goto fail;
		it.org_id = dup_string(json_object_get(record,
						       "organization_id"));
	} else if (type == T_SVC) {
		const json_t *list = json_object_get(record,
						     "service_at_locations");
		size_t i;
		json_t *sal;

		if (json_array_size(list) &&
		    (it.loc_ids = calloc(json_array_size(list),
					 sizeof(*it.loc_ids))) == NULL) {
			error = cs_error_set(CS_ERROR, "out of memory");
			goto fail;
		}
		json_array_foreach(list, i, sal) {
			const char *loc = json_string_value(
				json_object_get(sal, "location_id"));

			if (loc && cs_uuid_valid(loc))
				memcpy(it.loc_ids[it.nloc_ids++], loc, 37);
		}
	}
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 256;
		rec *grown = realloc(d->items, cap * sizeof(*grown));

		if (grown == NULL) {
			error = cs_error_set(CS_ERROR, "out of memory");
			goto fail;
		}
		d->items = grown;
		d->cap = cap;
	}
	d->items[d->n++] = it;
	return 0;
fail:
	item_clear(&it);
	return error;
}

static const char *
null_or(const char *s)
{
	return s ? s : "?";
}

static int
null_cmp(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}

/* By id; the rest only so that a malformed input with one id twice still
 * gives one answer. */
static int
item_cmp(const void *x, const void *y)
{
	const rec *a = x, *b = y;
	int c = strcmp(a->id, b->id);

	if (c == 0)
		c = a->type - b->type;
	if (c == 0)
		c = strcmp(a->owner, b->owner);
	if (c == 0)
		c = null_cmp(a->name, b->name);
	return c;
}

static rec *
find_item(dset *d, const char *id)
{
	size_t lo = 0, hi = d->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(d->items[mid].id, id);

		if (c == 0)
			return &d->items[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int
add_point(rec *it, point p)
{
	if (it->npts == it->cappts) {
		size_t cap = it->cappts ? it->cappts * 2 : 2;
		point *grown = realloc(it->pts, cap * sizeof(*grown));

		if (grown == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		it->pts = grown;
		it->cappts = cap;
	}
	it->pts[it->npts++] = p;
	return 0;
}

static int
add_commune(rec *it, uint32_t c)
{
	if (it->ncommunes == it->capcommunes) {
		size_t cap = it->capcommunes ? it->capcommunes * 2 : 2;
		uint32_t *grown = realloc(it->communes, cap * sizeof(*grown));

		if (grown == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		it->communes = grown;
		it->capcommunes = cap;
	}
	it->communes[it->ncommunes++] = c;
	return 0;
}

/* Give `to` the place of location `loc`. */
static int
add_place(rec *to, const rec *loc)
{
	int error = 0;

	if (loc->has_point)
		error = add_point(to, loc->own);
	if (error == 0 && loc->commune_id >= 0)
		error = add_commune(to, (uint32_t)loc->commune_id);
	return error;
}

static int
u32_cmp(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return (a > b) - (a < b);
}

typedef struct {
	const char *key;
	size_t item;
} commune_ref;

static int
commune_ref_cmp(const void *x, const void *y)
{
	const commune_ref *a = x, *b = y;
	int c = strcmp(a->key, b->key);

	return c ? c : (a->item > b->item) - (a->item < b->item);
}

/* Number the owners, so that the search compares numbers. */
static int
number_owners(dset *d)
{
	const char **owners = calloc(d->n + 1, sizeof(*owners));
	size_t n = 0;

	if (owners == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	for (size_t i = 0; i < d->n; i++)
		owners[i] = d->items[i].owner;
	sort_n(owners, d->n, sizeof(*owners), str_cmp);
	for (size_t i = 0; i < d->n; i++)
		if (n == 0 || strcmp(owners[n - 1], owners[i]) != 0)
			owners[n++] = owners[i];
	for (size_t i = 0; i < d->n; i++) {
		const char **found = bsearch(&d->items[i].owner, owners, n,
					     sizeof(*owners), str_cmp);

		d->items[i].owner_id = (uint32_t)(found - owners);
	}
	free(owners);
	return 0;
}

/* Number the communes, then give each record its places. */
static int
resolve_places(dset *d)
{
	commune_ref *refs = NULL;
	size_t nrefs = 0;
	int error = 0;

	if ((refs = calloc(d->n + 1, sizeof(*refs))) == NULL ||
	    (d->labels = calloc(d->n + 1, sizeof(*d->labels))) == NULL) {
		free(refs);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	for (size_t i = 0; i < d->n; i++)
		if (d->items[i].commune)
			refs[nrefs++] = (commune_ref){d->items[i].commune, i};
	sort_n(refs, nrefs, sizeof(*refs), commune_ref_cmp);
	for (size_t r = 0; r < nrefs; r++) {
		if (r == 0 || strcmp(refs[r - 1].key, refs[r].key) != 0)
			d->labels[d->nlabels++] =
				d->items[refs[r].item].commune_label;
		d->items[refs[r].item].commune_id = (long)d->nlabels - 1;
	}
	free(refs);

	for (size_t i = 0; i < d->n && error == 0; i++) {
		rec *it = &d->items[i], *other;

		if (it->type == T_LOC) {
			error = add_place(it, it);
			if (error == 0 && it->org_id &&
			    (other = find_item(d, it->org_id)) != NULL &&
			    other->type == T_ORG)
				error = add_place(other, it);
		} else if (it->type == T_SVC) {
			for (size_t k = 0; k < it->nloc_ids && error == 0;
			     k++)
				if ((other = find_item(d, it->loc_ids[k])) &&
				    other->type == T_LOC)
					error = add_place(it, other);
		}
	}
	for (size_t i = 0; i < d->n; i++) {
		rec *it = &d->items[i];
		size_t k = 0;

		sort_n(it->communes, it->ncommunes, sizeof(*it->communes),
		      u32_cmp);
		for (size_t c = 0; c < it->ncommunes; c++)
			if (k == 0 || it->communes[k - 1] != it->communes[c])
				it->communes[k++] = it->communes[c];
		it->ncommunes = k;
	}
	return error;
}

/* ------------------------------------------------------------------ */
/* Tokens, ranked rarest first */

typedef struct {
	char *word;
	size_t item;
} word_ref;

static int
word_ref_cmp(const void *x, const void *y)
{
	const word_ref *a = x, *b = y;

	return strcmp(a->word, b->word);
}

typedef struct {
	size_t df;
	const char *word;
	size_t first; /* index of its first reference */
} vocab_entry;

static int
vocab_cmp(const void *x, const void *y)
{
	const vocab_entry *a = x, *b = y;

	if (a->df != b->df)
		return a->df < b->df ? -1 : 1;
	return strcmp(a->word, b->word);
}

static int
has_place(const rec *it)
{
	return it->npts > 0 || it->ncommunes > 0;
}

static int
rank_tokens(dset *d)
{
	word_ref *refs = NULL;
	vocab_entry *vocab = NULL;
	uint32_t *rank_of_ref = NULL;
	size_t nrefs = 0, caprefs = 0, nvocab = 0;
	int error = 0;

	for (size_t i = 0; i < d->n && error == 0; i++) {
		rec *it = &d->items[i];
		char **words = NULL;
		size_t n = 0;

		if (!it->candidate || !has_place(it))
			continue;
		if ((error = name_words(&words, &n, it->name)) < 0)
			break;
		if (nrefs + n > caprefs) {
			size_t cap = caprefs ? caprefs * 2 : 1024;
			word_ref *grown;

			while (cap < nrefs + n)
				cap *= 2;
			if ((grown = realloc(refs, cap * sizeof(*grown))) ==
			    NULL) {
				words_free(words, n);
				error = cs_error_set(CS_ERROR, "out of memory");
				break;
			}
			refs = grown;
			caprefs = cap;
		}
		for (size_t k = 0; k < n; k++)
			refs[nrefs++] = (word_ref){words[k], i};
		free(words); /* the words are transferred to refs */
	}
	if (error < 0)
		goto done;
	/* Words are unique within a record, so a word's references count
	 * the records that hold it. */
	sort_n(refs, nrefs, sizeof(*refs), word_ref_cmp);
	if ((vocab = calloc(nrefs + 1, sizeof(*vocab))) == NULL ||
	    (rank_of_ref = calloc(nrefs + 1, sizeof(*rank_of_ref))) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	for (size_t r = 0; r < nrefs; r++) {
		if (r == 0 || strcmp(refs[r - 1].word, refs[r].word) != 0)
			vocab[nvocab++] = (vocab_entry){0, refs[r].word, r};
		vocab[nvocab - 1].df++;
	}
	sort_n(vocab, nvocab, sizeof(*vocab), vocab_cmp);
	for (size_t v = 0; v < nvocab; v++)
		for (size_t r = vocab[v].first; r < vocab[v].first + vocab[v].df;
		     r++)
			rank_of_ref[r] = (uint32_t)v;
	for (size_t r = 0; r < nrefs; r++) {
		rec *it = &d->items[refs[r].item];

		if (it->tok == NULL &&
		    (it->tok = calloc(MAX_NAME_WORDS, sizeof(*it->tok))) ==
			    NULL) {
			error = cs_error_set(CS_ERROR, "out of memory");
			goto done;
		}
		it->tok[it->ntok++] = rank_of_ref[r];
	}
	for (size_t i = 0; i < d->n; i++)
		sort_n(d->items[i].tok, d->items[i].ntok,
		      sizeof(*d->items[i].tok), u32_cmp);
done:
	for (size_t r = 0; r < nrefs; r++)
		free(refs[r].word);
	free(refs);
	free(vocab);
	free(rank_of_ref);
	return error;
}

/* The prefix of a token set that prefix filtering indexes. */
static size_t
prefix_len(size_t ntok)
{
	size_t need = (CS_DUPLICATES_SIMILAR_NUM * ntok +
		       CS_DUPLICATES_SIMILAR_DEN - 1) /
		      CS_DUPLICATES_SIMILAR_DEN;

	return ntok - need + 1;
}

/* ------------------------------------------------------------------ */
/* The index */

enum { PLACE_CELL, PLACE_COMMUNE };

typedef struct {
	uint32_t type;
	uint32_t tok;
	uint32_t kind;
	int32_t a, b;
	uint32_t item;
} ientry;

static int
ientry_key_cmp(const ientry *x, const ientry *y)
{
#define CMP(f)                                                                 \
	if (x->f != y->f)                                                      \
		return x->f < y->f ? -1 : 1;
	CMP(type)
	CMP(tok)
	CMP(kind)
	CMP(a)
	CMP(b)
#undef CMP
	return 0;
}

static int
ientry_cmp(const void *x, const void *y)
{
	const ientry *a = x, *b = y;
	int c = ientry_key_cmp(a, b);

	return c ? c : (a->item > b->item) - (a->item < b->item);
}

static int32_t
cell(double degrees, double size)
{
	return (int32_t)floor(degrees / size);
}

/* How many longitude cells either side can hold a point within the
 * distance searched, at this latitude. */
static int32_t
lon_reach(double lat)
{
	double l = fabs(lat) + CELL_LAT, c, degrees;
	int32_t k;

	if (l > 89.9)
		l = 89.9;
	c = cos(l * M_PI / 180.0);
	degrees = CS_DUPLICATES_NEAR_METRES / EARTH_RADIUS * 180.0 / M_PI /
		  c * 1.01;
	k = (int32_t)ceil(degrees / CELL_LON);
	return k < 1 ? 1 : k > 512 ? 512 : k;
}

static int
index_add(ientry **entries, size_t *n, size_t *cap, ientry e)
{
	if (*n == *cap) {
		size_t grow = *cap ? *cap * 2 : 4096;
		ientry *grown = realloc(*entries, grow * sizeof(*grown));

		if (grown == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		*entries = grown;
		*cap = grow;
	}
	(*entries)[(*n)++] = e;
	return 0;
}

static int
index_build(ientry **out, size_t *count, const dset *d)
{
	ientry *entries = NULL;
	size_t n = 0, cap = 0, k = 0;
	int error = 0;

	*out = NULL;
	*count = 0;
	for (size_t i = 0; i < d->n && error == 0; i++) {
		const rec *it = &d->items[i];

		if (!it->candidate || it->ntok == 0)
			continue;
		for (size_t t = 0; t < prefix_len(it->ntok) && error == 0;
		     t++) {
			ientry e = {(uint32_t)it->type, it->tok[t], 0, 0, 0,
				    (uint32_t)i};

			for (size_t p = 0; p < it->npts && error == 0; p++) {
				e.kind = PLACE_CELL;
				e.a = cell(it->pts[p].lat, CELL_LAT);
				e.b = cell(it->pts[p].lon, CELL_LON);
				error = index_add(&entries, &n, &cap, e);
			}
			for (size_t c = 0; c < it->ncommunes && error == 0;
			     c++) {
				e.kind = PLACE_COMMUNE;
				e.a = (int32_t)it->communes[c];
				e.b = 0;
				error = index_add(&entries, &n, &cap, e);
			}
		}
	}
	if (error < 0) {
		free(entries);
		return error;
	}
	sort_n(entries, n, sizeof(*entries), ientry_cmp);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || ientry_cmp(&entries[k - 1], &entries[i]) != 0)
			entries[k++] = entries[i];
	*out = entries;
	*count = k;
	return 0;
}

/* The first entry not below `key` (its record included). */
static size_t
index_lower(const ientry *entries, size_t n, const ientry *key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ientry_cmp(&entries[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* ------------------------------------------------------------------ */
/* Pairs */

typedef struct {
	uint32_t *items;
	size_t n, cap;
} candidates;

static int
candidates_add(candidates *c, uint32_t item)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		uint32_t *grown = realloc(c->items, cap * sizeof(*grown));

		if (grown == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		c->items = grown;
		c->cap = cap;
	}
	c->items[c->n++] = item;
	return 0;
}

typedef struct {
	const dset *d;
	ientry *entries;
	size_t nentries;
	size_t checks;
	candidates found;
	uint32_t *seen; /* per record: the last record it was found for + 1 */
} search;

/* Every record after `i`, of another owner, under `key` (whose record
 * is i + 1: entries of one key are sorted by record). */
static int
probe(search *s, size_t i, const ientry *key)
{
	const rec *it = &s->d->items[i];

	for (size_t e = index_lower(s->entries, s->nentries, key);
	     e < s->nentries && ientry_key_cmp(&s->entries[e], key) == 0;
	     e++) {
		const rec *other = &s->d->items[s->entries[e].item];
		int error;

		if (++s->checks > CS_DUPLICATES_MAX_CHECKS)
			return cs_error_set(CS_ELIMIT,
					    "more than %d comparisons to find"
					    " suspected duplicates",
					    CS_DUPLICATES_MAX_CHECKS);
		if (s->seen[s->entries[e].item] == i + 1 ||
		    other->owner_id == it->owner_id)
			continue;
		s->seen[s->entries[e].item] = (uint32_t)i + 1;
		if ((error = candidates_add(&s->found, s->entries[e].item)) <
		    0)
			return error;
	}
	return 0;
}

static int
probe_all(search *s, size_t i)
{
	const rec *it = &s->d->items[i];
	int error = 0;

	for (size_t t = 0; t < prefix_len(it->ntok) && error == 0; t++) {
		ientry key = {(uint32_t)it->type, it->tok[t], 0, 0, 0,
			      (uint32_t)i + 1};

		for (size_t p = 0; p < it->npts && error == 0; p++) {
			int32_t cy = cell(it->pts[p].lat, CELL_LAT);
			int32_t cx = cell(it->pts[p].lon, CELL_LON);
			int32_t reach = lon_reach(it->pts[p].lat);

			key.kind = PLACE_CELL;
			for (int32_t dy = -1; dy <= 1 && error == 0; dy++)
				for (int32_t dx = -reach;
				     dx <= reach && error == 0; dx++) {
					key.a = cy + dy;
					key.b = cx + dx;
					error = probe(s, i, &key);
				}
		}
		for (size_t c = 0; c < it->ncommunes && error == 0; c++) {
			key.kind = PLACE_COMMUNE;
			key.a = (int32_t)it->communes[c];
			key.b = 0;
			error = probe(s, i, &key);
		}
	}
	return error;
}

static double
haversine(point p, point q)
{
	double r = M_PI / 180.0;
	double dlat = (q.lat - p.lat) * r, dlon = (q.lon - p.lon) * r;
	double h = sin(dlat / 2) * sin(dlat / 2) +
		   cos(p.lat * r) * cos(q.lat * r) * sin(dlon / 2) *
			   sin(dlon / 2);

	if (h > 1)
		h = 1;
	return 2 * EARTH_RADIUS * asin(sqrt(h));
}

/* The common tokens of two sorted rank lists. */
static size_t
common_tokens(const rec *a, const rec *b)
{
	size_t i = 0, j = 0, common = 0;

	while (i < a->ntok && j < b->ntok) {
		common += a->tok[i] == b->tok[j];
		if (a->tok[i] <= b->tok[j])
			i++;
		else
			j++;
	}
	return common;
}

/* The first commune the two share, or -1. */
static long
shared_commune(const rec *a, const rec *b)
{
	size_t i = 0, j = 0;

	while (i < a->ncommunes && j < b->ncommunes) {
		if (a->communes[i] == b->communes[j])
			return (long)a->communes[i];
		if (a->communes[i] < b->communes[j])
			i++;
		else
			j++;
	}
	return -1;
}

static int
pair_excluded(const id_pair *distinct, size_t ndistinct, const rec *a,
	      const rec *b)
{
	id_pair key;

	if (ndistinct == 0)
		return 0;
	memcpy(key.a, a->id, 37);
	memcpy(key.b, b->id, 37);
	return bsearch(&key, distinct, ndistinct, sizeof(*distinct),
		       pair_cmp) != NULL;
}

static int
append_reason(json_t *reasons, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
append_reason(json_t *reasons, const char *fmt, ...)
{
	va_list ap;
	char *text = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0 || json_array_append_new(reasons, json_string(text)) < 0) {
		free(n < 0 ? NULL : text);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	free(text);
	return 0;
}

/* Check a pair the index found; append it to `out` if it is one. */
static int
judge_pair(json_t *out, const dset *d, const rec *a, const rec *b)
{
	size_t common = common_tokens(a, b);
	size_t all = a->ntok + b->ntok - common;
	double nearest = INFINITY, score;
	long commune;
	const char *where = a->type == T_LOC ? "" : "locations ";
	json_t *reasons, *pair;

	if (common * CS_DUPLICATES_SIMILAR_DEN <
	    all * CS_DUPLICATES_SIMILAR_NUM)
		return 0;
	for (size_t i = 0; i < a->npts; i++)
		for (size_t j = 0; j < b->npts; j++) {
			double m = haversine(a->pts[i], b->pts[j]);

			if (m < nearest)
				nearest = m;
		}
	commune = shared_commune(a, b);
	if (!(nearest <= CS_DUPLICATES_NEAR_METRES) && commune < 0)
		return 0;
	score = floor((double)common / (double)all * 100 + 0.5) / 100;
	if ((reasons = json_array()) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	if (append_reason(reasons, "names \"%s\" and \"%s\" are alike (%.2f)",
			  a->name, b->name, score) < 0 ||
	    (nearest <= CS_DUPLICATES_NEAR_METRES &&
	     append_reason(reasons, "%s%.0f m apart", where, nearest) < 0) ||
	    (commune >= 0 &&
	     append_reason(reasons, "%s\"%s\"",
			   a->type == T_LOC ? "same commune "
					    : "locations in the same commune ",
			   d->labels[commune]) < 0)) {
		json_decref(reasons);
		return CS_ERROR;
	}
	pair = json_pack("{s:[s, s], s:s, s:[s, s], s:o, s:f}", "ids", a->id,
			 b->id, "type", kinds[a->type], "owners", a->owner,
			 b->owner, "reasons", reasons, "score", score);
	if (pair == NULL || json_array_append_new(out, pair) < 0)
		return cs_error_set(CS_ERROR, "out of memory");
	return 0;
}

/* The search over a set of records, given the decisions. */
static int
dset_find(json_t **out, dset *d, const json_t *decisions)
{
	json_t *clean = NULL, *result = json_array(), *value;
	id_pair *distinct = NULL;
	size_t ndistinct = 0, k = 0;
	search s;
	const char *key;
	int error;

	*out = NULL;
	memset(&s, 0, sizeof(s));
	if (result == NULL ||
	    (clean = cs_duplicates_decisions_clean(decisions)) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	if ((error = pairs_of(&distinct, &ndistinct,
			      json_object_get(clean, "distinct"))) < 0)
		goto done;

	/* One record per id, in id order. */
	sort_n(d->items, d->n, sizeof(*d->items), item_cmp);
	for (size_t i = 0; i < d->n; i++) {
		if (k && strcmp(d->items[k - 1].id, d->items[i].id) == 0)
			item_clear(&d->items[i]);
		else
			d->items[k++] = d->items[i];
	}
	d->n = k;
	json_object_foreach(json_object_get(clean, "merged"), key, value) {
		rec *it = find_item(d, key);

		if (it)
			it->candidate = 0;
	}
	if ((error = number_owners(d)) < 0 ||
	    (error = resolve_places(d)) < 0 || (error = rank_tokens(d)) < 0 ||
	    (error = index_build(&s.entries, &s.nentries, d)) < 0)
		goto done;
	s.d = d;
	if (d->n >= UINT32_MAX) {
		error = cs_error_set(CS_ELIMIT, "too many records");
		goto done;
	}
	if ((s.seen = calloc(d->n + 1, sizeof(*s.seen))) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < d->n; i++) {
		const rec *it = &d->items[i];

		if (!it->candidate || it->ntok == 0)
			continue;
		s.found.n = 0;
		if ((error = probe_all(&s, i)) < 0)
			goto done;
		sort_n(s.found.items, s.found.n, sizeof(*s.found.items),
		      u32_cmp);
		for (size_t f = 0; f < s.found.n; f++) {
			const rec *other = &d->items[s.found.items[f]];

			if (pair_excluded(distinct, ndistinct, it, other))
				continue;
			if ((error = judge_pair(result, d, it, other)) < 0)
				goto done;
		}
	}
	*out = result;
	result = NULL; /* transferred */
	error = 0;
done:
	free(s.entries);
	free(s.found.items);
	free(s.seen);
	free(distinct);
	json_decref(clean);
	json_decref(result);
	return error;
}

int
cs_duplicates_find_in(json_t **out, const json_t *records,
		      const json_t *decisions)
{
	dset d;
	json_t *record;
	size_t i;
	int error = 0;

	*out = NULL;
	memset(&d, 0, sizeof(d));
	json_array_foreach(records, i, record) {
		if ((error = dset_add(&d, record)) < 0)
			break;
	}
	if (error == 0)
		error = dset_find(out, &d, decisions);
	dset_clear(&d);
	return error;
}

/* ------------------------------------------------------------------ */
/* From a commit */

typedef struct {
	cs_repo *repo;
	dset *d;
} read_walk;

static int
read_entry(const char *path, const cs_oid *id, unsigned mode, void *payload)
{
	read_walk *w = payload;
	json_t *record = NULL;
	char *buf = NULL;
	size_t len = 0;
	int error = 0;

	if (mode != CS_MODE_BLOB)
		return 0;
	if (cs_repo_read_blob(&buf, &len, w->repo, id, CS_RECORD_MAX_BYTES) ==
		    0 &&
	    cs_json_parse(&record, buf, len, path) == 0)
		error = dset_add(w->d, record);
	json_decref(record);
	free(buf);
	return error;
}

int
cs_duplicates_find(json_t **out, cs_repo *repo, const cs_oid *commit)
{
	char **owners = NULL;
	size_t nowners = 0;
	json_t *decisions = NULL;
	dset d;
	read_walk w = {repo, &d};
	cs_oid tree;
	char prefix[128];
	int error;

	*out = NULL;
	memset(&d, 0, sizeof(d));
	if ((error = cs_duplicates_decisions(&decisions, repo, commit)) < 0 ||
	    (error = cs_repo_commit_tree(&tree, repo, commit)) < 0 ||
	    (error = cs_map_owners(&owners, &nowners, repo, &tree)) < 0)
		goto done;
	for (size_t o = 0; o < nowners; o++) {
		if (strlen(owners[o]) > 64)
			continue; /* not an owner: verification says so */
		for (int t = 0; t < NTYPES; t++) {
			snprintf(prefix, sizeof(prefix), "records/%s/%s",
				 owners[o], kinds[t]);
			if ((error = cs_repo_walk(repo, &tree, prefix,
						  read_entry, &w)) < 0)
				goto done;
		}
	}
	error = dset_find(out, &d, decisions);
done:
	cs_map_owners_free(owners, nowners);
	json_decref(decisions);
	dset_clear(&d);
	return error;
}

/* ------------------------------------------------------------------ */
/* Decisions, written */

/* Whether this node may write the decisions: a clear refusal before the
 * edit is built.  Other refusals (a revoked key) come from the commit. */
static int
may_decide(cs_node *node, const cs_oid *base)
{
	cs_consortium *state = NULL;
	const cs_member_key *entry;
	const cs_key *key;
	cs_oid tree;
	int error;

	if ((error = cs_node_key(&key, node)) < 0 ||
	    (error = cs_repo_commit_tree(&tree, cs_node_repo(node), base)) <
		    0 ||
	    (error = cs_consortium_load(&state, cs_node_repo(node), &tree)) <
		    0)
		return error;
	entry = cs_consortium_find_key(state, key);
	if (entry && !entry->revoked &&
	    !cs_policy_allows(state, entry, CS_PATH_DUPLICATES))
		error = cs_error_set(CS_EPERM,
				     "%s may not write %s: the coordinator"
				     " decides on suspected duplicates",
				     cs_node_org(node), CS_PATH_DUPLICATES);
	cs_consortium_free(state);
	return error;
}

/* Append the pair; 1 if it was there already. */
static int
add_distinct(json_t *decisions, const char *a, const char *b)
{
	json_t *list = json_object_get(decisions, "distinct"), *item;
	const char *lo = strcmp(a, b) < 0 ? a : b, *hi = lo == a ? b : a;
	size_t i;

	json_array_foreach(list, i, item) {
		if (strcmp(json_string_value(json_array_get(item, 0)), lo) ==
			    0 &&
		    strcmp(json_string_value(json_array_get(item, 1)), hi) == 0)
			return 1;
	}
	if (json_array_append_new(list, json_pack("[s, s]", lo, hi)) < 0)
		return cs_error_set(CS_ERROR, "out of memory");
	return 0;
}

/* Write the decisions (cleaned: sorted) as a blob. */
static int
write_decisions(cs_oid *out, cs_node *node, const json_t *decisions)
{
	json_t *clean = cs_duplicates_decisions_clean(decisions);
	char *text = NULL;
	size_t len = 0;
	int error;

	if (clean == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	if ((error = cs_json_canonical(&text, &len, clean)) == 0 &&
	    len > CS_JSON_MAX_BYTES)
		error = cs_error_set(CS_ELIMIT,
				     "%s would exceed %d bytes: too many"
				     " decisions",
				     CS_PATH_DUPLICATES, CS_JSON_MAX_BYTES);
	if (error == 0)
		error = cs_repo_write_blob(out, cs_node_repo(node), text, len);
	free(text);
	json_decref(clean);
	return error;
}

int
cs_duplicates_mark_distinct(cs_oid *out, int *in_main, cs_node *node,
			    const cs_oid *base, const char *a, const char *b)
{
	cs_repo *repo = cs_node_repo(node);
	json_t *ra = NULL, *rb = NULL, *decisions = NULL;
	char *message = NULL;
	cs_tree_update update;
	cs_oid blob;
	int error;

	*in_main = 0;
	if ((error = cs_map_find(&ra, NULL, repo, base, a)) < 0 ||
	    (error = cs_map_find(&rb, NULL, repo, base, b)) < 0)
		goto done;
	if (strcmp(a, b) == 0) {
		error = cs_error_set(CS_EINVALID,
				     "record %s cannot be distinct from"
				     " itself",
				     a);
		goto done;
	}
	if ((error = may_decide(node, base)) < 0 ||
	    (error = cs_duplicates_decisions(&decisions, repo, base)) < 0 ||
	    (error = add_distinct(decisions, a, b)) < 0)
		goto done;
	if (error == 1) {
		error = cs_error_set(CS_EEXISTS,
				     "records %s and %s are marked distinct"
				     " already",
				     a, b);
		goto done;
	}
	if ((error = write_decisions(&blob, node, decisions)) < 0)
		goto done;
	if (asprintf(&message, "Mark records %s and %s distinct\n",
		     strcmp(a, b) < 0 ? a : b, strcmp(a, b) < 0 ? b : a) < 0) {
		message = NULL;
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	update = (cs_tree_update){CS_PATH_DUPLICATES, &blob};
	error = cs_node_commit(out, in_main, node, base, &update, 1, message);
done:
	json_decref(ra);
	json_decref(rb);
	json_decref(decisions);
	free(message);
	return error;
}

int
cs_duplicates_mark_merged(cs_oid *out, int *in_main, cs_node *node,
			  const cs_oid *base, const char *keep,
			  const char *other)
{
	cs_repo *repo = cs_node_repo(node);
	json_t *rk = NULL, *ro = NULL, *decisions = NULL;
	char *path = NULL, *message = NULL;
	const char *status, *into;
	cs_tree_update updates[2];
	cs_oid blobs[2];
	int error;

	*in_main = 0;
	if ((error = cs_map_find(&rk, NULL, repo, base, keep)) < 0 ||
	    (error = cs_map_find(&ro, &path, repo, base, other)) < 0)
		goto done;
	if (strcmp(keep, other) == 0) {
		error = cs_error_set(CS_EINVALID,
				     "record %s cannot be merged into itself",
				     keep);
		goto done;
	}
	if (null_cmp(cs_record_type(rk), cs_record_type(ro)) != 0) {
		error = cs_error_set(CS_EINVALID,
				     "records %s (%s) and %s (%s) are of"
				     " different types: only records of one"
				     " type merge",
				     keep, null_or(cs_record_type(rk)), other,
				     null_or(cs_record_type(ro)));
		goto done;
	}
	status = json_string_value(json_object_get(rk, "x_status"));
	if (status && strcmp(status, "retired") == 0) {
		error = cs_error_set(CS_EINVALID,
				     "record %s is retired: keep a record in"
				     " use",
				     keep);
		goto done;
	}
	if ((error = may_decide(node, base)) < 0 ||
	    (error = cs_duplicates_decisions(&decisions, repo, base)) < 0)
		goto done;
	if ((into = cs_duplicates_merged_into(decisions, keep)) != NULL) {
		error = cs_error_set(CS_EINVALID,
				     "record %s is merged into %s already:"
				     " keep that one",
				     keep, into);
		goto done;
	}
	if ((into = cs_duplicates_merged_into(decisions, other)) != NULL) {
		error = strcmp(into, keep) == 0
				? cs_error_set(CS_EEXISTS,
					       "record %s is merged into %s"
					       " already",
					       other, into)
				: cs_error_set(CS_EINVALID,
					       "record %s is merged into %s"
					       " already",
					       other, into);
		goto done;
	}
	if (json_object_set_new(json_object_get(decisions, "merged"), other,
				json_string(keep)) < 0 ||
	    json_object_set_new(ro, "x_status", json_string("retired")) < 0) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	if ((error = write_decisions(&blobs[0], node, decisions)) < 0 ||
	    (error = cs_node_write_json(&blobs[1], node, ro)) < 0)
		goto done;
	if (asprintf(&message, "Merge record %s into %s\n", other, keep) < 0) {
		message = NULL;
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	updates[0] = (cs_tree_update){CS_PATH_DUPLICATES, &blobs[0]};
	updates[1] = (cs_tree_update){path, &blobs[1]};
	error = cs_node_commit(out, in_main, node, base, updates, 2, message);
done:
	json_decref(rk);
	json_decref(ro);
	json_decref(decisions);
	free(path);
	free(message);
	return error;
}
