/*
 * cartosync — three-way merge of one file's JSON content.
 *
 * DESIGN §6 and docs/record-model.md §7 give the rules; the header is the
 * contract.  Everything here is a pure function of its inputs: objects are
 * walked in the byte order of their keys (never in jansson's order), ties
 * are broken by the canonical encoding (lib/json.c), and every value put
 * into a result is a fresh copy with sorted keys and numbers in their
 * canonical meaning, so that the two orders of a merge (ours/theirs and
 * theirs/ours) build the very same tree, down to the order the validator
 * meets the members in.
 *
 * A record, field by field (B base, O ours, T theirs; "-" absent):
 *
 *     O == T            -> O                      (same change, or none)
 *     O == B            -> T                      (only theirs changed)
 *     T == B            -> O                      (only ours changed)
 *     all objects       -> member by member       (B may be absent)
 *     "set"             -> (B & O & T) | (O - B) | (T - B), sorted
 *     "latest"          -> the later "date", else the greater encoding
 *     "protective"      -> conflict, the more protective of O and T
 *     otherwise         -> conflict, B (or absent)
 *
 * Whole record:  B - -  add/add -> conflict at "", no file
 *                B O -  or  B - T: delete/edit -> conflict at "", no file
 *
 * Merging two valid records field by field can still give an invalid one:
 * a set grown past its maxItems, or emptied below its minItems; members of
 * one object merged into a combination the schema forbids (x_admin's adm3
 * without adm2, a contact with neither name nor title).  When both sides
 * are valid and the result is not, the field the validator points at goes
 * back to its base value and becomes a conflict; if that is not enough its
 * parent does, up to the whole record:
 *
 *     /x_admin/adm3 invalid  -> revert /x_admin/adm3 (changed? done)
 *                            -> else revert /x_admin -> else revert ""
 *
 * so that the merge of valid records is valid or has a conflict.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/merge.h"
#include "cartosync/schema.h"

/* Nesting of the values merged: the parser's limit, plus the top level. */
#define MERGE_MAX_DEPTH (CS_JSON_MAX_DEPTH + 1)
/* Integers beyond 2^53 have no canonical encoding (lib/json.c). */
#define EXACT_LIMIT 9007199254740992.0
/* Schema nodes visited to read the rules of one type. */
#define RULES_MAX_STEPS 200000
/* $ref followed in a row without entering a property or items. */
#define RULES_MAX_HOPS 64
/* Reverts tried to make a merged record valid before reverting it all. */
#define REPAIR_MAX_ROUNDS 64

/* ---------------------------------------------------------------------- */
/* JSON pointers */

typedef struct {
	char *data;
	size_t len;
	size_t cap;
} pathbuf;

static int
path_add(pathbuf *p, const char *s, size_t n)
{
	char *grown;
	size_t cap;

	if (p->len + n + 1 > p->cap) {
		cap = p->cap ? p->cap : 64;
		while (cap < p->len + n + 1)
			cap *= 2;
		if ((grown = realloc(p->data, cap)) == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		p->data = grown;
		p->cap = cap;
	}
	memcpy(p->data + p->len, s, n);
	p->len += n;
	p->data[p->len] = '\0';
	return 0;
}

/* Append "/" and `key` escaped (RFC 6901 §3: "~" as "~0", "/" as "~1"). */
static int
path_push(pathbuf *p, const char *key)
{
	const char *s;
	int error;

	if ((error = path_add(p, "/", 1)) < 0)
		return error;
	for (s = key; *s; s++) {
		if (*s == '~')
			error = path_add(p, "~0", 2);
		else if (*s == '/')
			error = path_add(p, "~1", 2);
		else
			error = path_add(p, s, 1);
		if (error < 0)
			return error;
	}
	return 0;
}

static void
path_pop(pathbuf *p, size_t len)
{
	p->len = len;
	if (p->data)
		p->data[len] = '\0';
}

static const char *
path_str(const pathbuf *p)
{
	return p->data ? p->data : "";
}

/* Whether the escaped pointer segment seg[0..len) names `key`. */
static int
segment_is(const char *seg, size_t len, const char *key)
{
	size_t i;
	char c;

	for (i = 0; i < len; i++, key++) {
		c = seg[i];
		if (c == '~') {
			if (i + 1 >= len ||
			    (seg[i + 1] != '0' && seg[i + 1] != '1'))
				return 0;
			c = seg[++i] == '0' ? '~' : '/';
		}
		if (*key != c)
			return 0;
	}
	return *key == '\0';
}

/*
 * The member of an object that an escaped segment names, or NULL.  No
 * buffer to unescape into: a key may be as long as the parser allows.
 */
static json_t *
member_named(const json_t *obj, const char *seg, size_t len)
{
	const char *key;
	json_t *v;

	json_object_foreach ((json_t *)obj, key, v)
		if (segment_is(seg, len, key))
			return v;
	return NULL;
}

/* The end of the segment that starts after the "/" at `s`. */
static const char *
segment_end(const char *s)
{
	const char *end = strchr(s + 1, '/');

	return end ? end : s + strlen(s);
}

/* The value at an escaped pointer through objects and arrays, or NULL. */
static const json_t *
pointer_get(const json_t *root, const char *pointer)
{
	const json_t *at = root;
	const char *seg, *end;
	size_t index, i;

	while (at && *pointer) {
		if (*pointer != '/')
			return NULL;
		seg = pointer + 1;
		end = segment_end(pointer);
		if (json_is_object(at)) {
			at = member_named(at, seg, (size_t)(end - seg));
		} else if (json_is_array(at) && end > seg && end - seg < 19) {
			for (i = 0, index = 0; seg + i < end; i++) {
				if (seg[i] < '0' || seg[i] > '9')
					return NULL;
				index = index * 10 + (size_t)(seg[i] - '0');
			}
			at = json_array_get(at, index);
		} else {
			at = NULL;
		}
		pointer = end;
	}
	return at;
}

/* The last segment of an escaped pointer, unescaped; malloc'd. */
static char *
last_segment(const char *pointer)
{
	const char *s = strrchr(pointer, '/');
	char *out, *o;

	s = s ? s + 1 : pointer;
	if ((out = o = malloc(strlen(s) + 1)) == NULL)
		return NULL;
	for (; *s; s++) {
		if (*s == '~' && (s[1] == '0' || s[1] == '1'))
			*o++ = *++s == '0' ? '~' : '/';
		else
			*o++ = *s;
	}
	*o = '\0';
	return out;
}

/* Length of the parent of an escaped pointer ("" has none: 0). */
static size_t
pointer_parent_len(const char *pointer)
{
	const char *slash = strrchr(pointer, '/');

	return slash ? (size_t)(slash - pointer) : 0;
}

/* Whether `pointer` is `prefix` or lies under it. */
static int
pointer_within(const char *pointer, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(pointer, prefix, n) == 0 &&
	       (pointer[n] == '\0' || pointer[n] == '/');
}

/* ---------------------------------------------------------------------- */
/* Values: checks, equality, order, copies */

/*
 * Refuse what the canonical form cannot hold, and nesting deeper than the
 * parser allows, before any recursion below relies on it.
 */
static int
check_value(const json_t *v, int depth)
{
	const char *key;
	json_t *child;
	size_t i;
	double d;
	int error;

	if (v == NULL)
		return 0;
	if (depth > MERGE_MAX_DEPTH)
		return cs_error_set(CS_ELIMIT,
		                    "value nested deeper than %d levels",
		                    CS_JSON_MAX_DEPTH);
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		json_object_foreach ((json_t *)v, key, child)
			if ((error = check_value(child, depth + 1)) < 0)
				return error;
		return 0;
	case JSON_ARRAY:
		json_array_foreach (v, i, child)
			if ((error = check_value(child, depth + 1)) < 0)
				return error;
		return 0;
	case JSON_INTEGER:
		if (json_integer_value(v) > (json_int_t)EXACT_LIMIT ||
		    json_integer_value(v) < -(json_int_t)EXACT_LIMIT)
			return cs_error_set(CS_EINVALID, "integer beyond 2^53");
		return 0;
	case JSON_REAL:
		d = json_real_value(v);
		if (!(d <= EXACT_LIMIT && d >= -EXACT_LIMIT))
			return cs_error_set(CS_EINVALID,
			                    "number not finite or beyond 2^53");
		return 0;
	default:
		return 0;
	}
}

/*
 * The canonical text of a number (lib/json.c encode_integer and
 * encode_real): integers in decimal, reals rounded to 6 decimals without
 * trailing zeros, "-0" as "0".
 */
static void
number_text(const json_t *v, char *buf, size_t size)
{
	char *end;

	if (json_is_integer(v)) {
		snprintf(buf, size, "%" JSON_INTEGER_FORMAT,
		         json_integer_value(v));
		return;
	}
	snprintf(buf, size, "%.6f", json_real_value(v));
	end = buf + strlen(buf);
	while (end > buf && end[-1] == '0')
		end--;
	if (end > buf && end[-1] == '.')
		end--;
	*end = '\0';
	if (strcmp(buf, "-0") == 0)
		strcpy(buf, "0");
}

/* Whether two values (NULL: absent) have the same canonical encoding. */
static int
value_equal(const json_t *a, const json_t *b)
{
	char na[512], nb[512];
	const char *key;
	json_t *child;
	size_t i;

	if (a == NULL || b == NULL)
		return a == b;
	if (json_is_number(a) && json_is_number(b)) {
		number_text(a, na, sizeof(na));
		number_text(b, nb, sizeof(nb));
		return strcmp(na, nb) == 0;
	}
	if (json_typeof(a) != json_typeof(b))
		return 0;
	switch (json_typeof(a)) {
	case JSON_OBJECT:
		if (json_object_size(a) != json_object_size(b))
			return 0;
		json_object_foreach ((json_t *)a, key, child)
			if (!value_equal(child, json_object_get(b, key)))
				return 0;
		return 1;
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return 0;
		for (i = 0; i < json_array_size(a); i++)
			if (!value_equal(json_array_get(a, i),
			                 json_array_get(b, i)))
				return 0;
		return 1;
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		       memcmp(json_string_value(a), json_string_value(b),
		              json_string_length(a)) == 0;
	default:
		return 1; /* true, false, null */
	}
}

/* Two byte strings: memcmp, the shorter first on a tie. */
static int
bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

/*
 * Compare the canonical encodings of a and b (both present) into *cmp
 * (<0, 0, >0).  This is the fixed, symmetric tie-break of the header.
 */
static int
canonical_cmp(int *cmp, const json_t *a, const json_t *b)
{
	char *ea = NULL, *eb = NULL;
	size_t la, lb;
	int error;

	*cmp = 0;
	if ((error = cs_json_canonical(&ea, &la, a)) < 0 ||
	    (error = cs_json_canonical(&eb, &lb, b)) < 0)
		goto done;
	*cmp = bytes_cmp(ea, la, eb, lb);
	error = 0;
done:
	free(ea);
	free(eb);
	return error;
}

/* The greater of a and b by canonical encoding (both present). */
static int
greater_canonical(const json_t **out, const json_t *a, const json_t *b)
{
	int cmp, error;

	*out = NULL;
	if ((error = canonical_cmp(&cmp, a, b)) < 0)
		return error;
	*out = cmp >= 0 ? a : b;
	return 0;
}

typedef struct {
	const char *key;
	size_t len;
} keyref;

static int
keyref_cmp(const void *pa, const void *pb)
{
	const keyref *a = pa, *b = pb;

	return bytes_cmp(a->key, a->len, b->key, b->len);
}

/*
 * The member names of up to three objects (NULL or non-objects count as
 * empty), borrowed, sorted by their bytes, each once.  *out is malloc'd
 * (free with free()), NULL when there are none.
 */
static int
union_keys(keyref **out, size_t *count, const json_t *a, const json_t *b,
           const json_t *c)
{
	const json_t *objs[3] = {a, b, c};
	keyref *keys = NULL;
	const char *key;
	json_t *child;
	size_t n = 0, total = 0, i, j;

	*out = NULL;
	*count = 0;
	for (i = 0; i < 3; i++)
		if (json_is_object(objs[i]))
			total += json_object_size(objs[i]);
	if (total == 0)
		return 0;
	if ((keys = calloc(total, sizeof(*keys))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	for (i = 0; i < 3; i++) {
		if (!json_is_object(objs[i]))
			continue;
		json_object_foreach ((json_t *)objs[i], key, child) {
			keys[n].key = key;
			keys[n].len = strlen(key);
			n++;
		}
	}
	qsort(keys, n, sizeof(*keys), keyref_cmp);
	for (i = 0, j = 0; i < n; i++)
		if (j == 0 || keyref_cmp(&keys[j - 1], &keys[i]) != 0)
			keys[j++] = keys[i];
	*out = keys;
	*count = j;
	return 0;
}

/*
 * A deep copy whose objects hold their members in sorted order and whose
 * numbers are what their canonical text says (1.0 becomes 1): the same
 * tree whichever of two canonically equal values it is made from.
 */
static json_t *
copy_value(const json_t *v)
{
	json_t *copy = NULL, *child;
	keyref *keys = NULL;
	size_t count, i;
	char num[512];

	if (v == NULL)
		return NULL;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if (union_keys(&keys, &count, v, NULL, NULL) < 0 ||
		    (copy = json_object()) == NULL)
			goto fail;
		for (i = 0; i < count; i++) {
			child = copy_value(json_object_get(v, keys[i].key));
			if (json_object_set_new(copy, keys[i].key, child) < 0)
				goto fail;
		}
		free(keys);
		return copy;
	case JSON_ARRAY:
		if ((copy = json_array()) == NULL)
			goto fail;
		for (i = 0; i < json_array_size(v); i++)
			if (json_array_append_new(
			            copy, copy_value(json_array_get(v, i))) < 0)
				goto fail;
		return copy;
	case JSON_INTEGER:
	case JSON_REAL:
		number_text(v, num, sizeof(num));
		if (strchr(num, '.'))
			return json_real(strtod(num, NULL));
		return json_integer(strtoll(num, NULL, 10));
	default:
		return json_deep_copy(v);
	}
fail:
	free(keys);
	json_decref(copy);
	return NULL;
}

/* *out = a copy of v, or NULL for absent. */
static int
copy_into(json_t **out, const json_t *v)
{
	*out = NULL;
	if (v == NULL)
		return 0;
	if ((*out = copy_value(v)) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Sets of strings */

typedef struct {
	const char *s;
	size_t len;
	unsigned mask; /* 1: in the base, 2: ours, 4: theirs */
} set_item;

static int
set_item_cmp(const void *pa, const void *pb)
{
	const set_item *a = pa, *b = pb;

	return bytes_cmp(a->s, a->len, b->s, b->len);
}

/* An array of strings only (a set's shape), or absent. */
static int
is_string_array(const json_t *v)
{
	size_t i;

	if (v == NULL)
		return 1;
	if (!json_is_array(v))
		return 0;
	for (i = 0; i < json_array_size(v); i++)
		if (!json_is_string(json_array_get(v, i)))
			return 0;
	return 1;
}

/*
 * The distinct strings of up to three arrays of strings, sorted by their
 * bytes, each with the mask of the arrays holding it (bit i: array i).
 */
static int
set_items(set_item **out, size_t *count, const json_t *b, const json_t *o,
          const json_t *t)
{
	const json_t *arrays[3] = {b, o, t};
	set_item *items = NULL;
	size_t total = 0, n = 0, i, j;
	json_t *s;

	*out = NULL;
	*count = 0;
	for (i = 0; i < 3; i++)
		total += arrays[i] ? json_array_size(arrays[i]) : 0;
	if (total == 0)
		return 0;
	if ((items = calloc(total, sizeof(*items))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	for (i = 0; i < 3; i++) {
		if (arrays[i] == NULL)
			continue;
		json_array_foreach (arrays[i], j, s) {
			items[n].s = json_string_value(s);
			items[n].len = json_string_length(s);
			items[n].mask = 1u << i;
			n++;
		}
	}
	qsort(items, n, sizeof(*items), set_item_cmp);
	for (i = 0, j = 0; i < n; i++) {
		if (j > 0 && set_item_cmp(&items[j - 1], &items[i]) == 0)
			items[j - 1].mask |= items[i].mask;
		else
			items[j++] = items[i];
	}
	*out = items;
	*count = j;
	return 0;
}

/* Whether two arrays of strings hold the same strings (absent: none). */
static int
set_equal(int *equal, const json_t *a, const json_t *b)
{
	set_item *items = NULL;
	size_t count, i;
	int error;

	*equal = 0;
	if ((error = set_items(&items, &count, a, b, NULL)) < 0)
		return error;
	*equal = 1;
	for (i = 0; i < count; i++)
		if (items[i].mask != 3)
			*equal = 0;
	free(items);
	return 0;
}

/* Both absent, or both present and holding the same strings. */
static int
set_same(int *same, const json_t *a, const json_t *b)
{
	*same = 0;
	if ((a == NULL) != (b == NULL))
		return 0;
	return set_equal(same, a, b);
}

enum { SET_MERGE, SET_INTERSECTION, SET_UNION };

/*
 * Combine three arrays of strings (absent: empty) into a sorted array:
 * SET_MERGE keeps (base kept by both) + (added by either), SET_INTERSECTION
 * what both sides hold, SET_UNION what either holds.  An empty result is
 * absent when a side was absent.
 */
static int
set_combine(json_t **out, const json_t *b, const json_t *o, const json_t *t,
            int how)
{
	set_item *items = NULL;
	json_t *result = NULL;
	size_t count, i;
	unsigned m;
	int keep, error;

	*out = NULL;
	if ((error = set_items(&items, &count, b, o, t)) < 0)
		goto done;
	if ((result = json_array()) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	for (i = 0; i < count; i++) {
		m = items[i].mask;
		if (how == SET_MERGE)
			keep = m == 7 || (!(m & 1) && (m & 6));
		else if (how == SET_INTERSECTION)
			keep = (m & 6) == 6;
		else
			keep = (m & 6) != 0;
		if (keep && json_array_append_new(
		                    result, json_stringn(items[i].s,
		                                         items[i].len)) < 0) {
			error = cs_error_set(CS_ERROR, "out of memory");
			goto done;
		}
	}
	if (json_array_size(result) == 0 && (o == NULL || t == NULL)) {
		error = 0;
		goto done;
	}
	*out = result;
	result = NULL; /* transferred */
	error = 0;
done:
	free(items);
	json_decref(result);
	return error;
}

/* ---------------------------------------------------------------------- */
/* Rules */

typedef struct {
	char *pattern; /* escaped JSON pointer, "*" for array items */
	cs_merge_rule rule;
} rule_entry;

struct cs_merge_rules {
	rule_entry *items; /* sorted by pattern */
	size_t count;
	size_t cap;
	cs_schema_set *schemas; /* the documents the type's schema reaches */
	char *schema_name;      /* "<type>.schema.json" */
};

typedef struct {
	const cs_schema_set *set;
	cs_merge_rules *rules;
	char **docs; /* names of the documents the type's schema reaches */
	size_t docs_count;
	size_t docs_cap;
	size_t steps;
} rules_loader;

void
cs_merge_rules_free(cs_merge_rules *rules)
{
	size_t i;

	if (rules == NULL)
		return;
	for (i = 0; i < rules->count; i++)
		free(rules->items[i].pattern);
	free(rules->items);
	cs_schema_set_free(rules->schemas);
	free(rules->schema_name);
	free(rules);
}

static int
rule_add(cs_merge_rules *rules, const char *pattern, cs_merge_rule rule,
         const char *doc)
{
	rule_entry *grown;
	size_t i, cap;

	for (i = 0; i < rules->count; i++) {
		if (strcmp(rules->items[i].pattern, pattern) != 0)
			continue;
		if (rules->items[i].rule != rule)
			return cs_error_set(CS_EINVALID,
			                    "schema \"%s\": conflicting "
			                    "x_merge for \"%s\"",
			                    doc, pattern);
		return 0;
	}
	if (rules->count == rules->cap) {
		cap = rules->cap ? rules->cap * 2 : 16;
		if ((grown = realloc(rules->items, cap * sizeof(*grown))) ==
		    NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		rules->items = grown;
		rules->cap = cap;
	}
	if ((rules->items[rules->count].pattern = strdup(pattern)) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	rules->items[rules->count].rule = rule;
	rules->count++;
	return 0;
}

static int
rule_entry_cmp(const void *pa, const void *pb)
{
	const rule_entry *a = pa, *b = pb;

	return strcmp(a->pattern, b->pattern);
}

static int
loader_add_doc(rules_loader *l, const char *name, size_t len)
{
	char **grown;
	size_t i, cap;

	for (i = 0; i < l->docs_count; i++)
		if (strlen(l->docs[i]) == len &&
		    memcmp(l->docs[i], name, len) == 0)
			return 0;
	if (l->docs_count == l->docs_cap) {
		cap = l->docs_cap ? l->docs_cap * 2 : 8;
		if ((grown = realloc(l->docs, cap * sizeof(*grown))) == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		l->docs = grown;
		l->docs_cap = cap;
	}
	if ((l->docs[l->docs_count] = strndup(name, len)) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	l->docs_count++;
	return 0;
}

static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decode the %XX escapes of a URI fragment (RFC 3986 §2.1) in place into an
 * escaped JSON pointer: a "/" that was escaped is part of a token, so it
 * becomes "~1" (lib/schema.c decodes token by token, to the same effect).
 */
static int
percent_decode(char *s)
{
	char *o = s;
	int hi, lo, c;

	for (; *s; s++) {
		if (*s != '%') {
			*o++ = *s;
			continue;
		}
		if ((hi = hex_digit(s[1])) < 0 || (lo = hex_digit(s[2])) < 0 ||
		    (c = hi * 16 + lo) == 0)
			return -1;
		if (c == '/') {
			*o++ = '~';
			*o++ = '1';
		} else {
			*o++ = (char)c;
		}
		s += 2;
	}
	*o = '\0';
	return 0;
}

/*
 * Resolve a $ref made from document `from`, as lib/schema.c does:
 * "#pointer", "name" and "name#pointer".  *doc is the target document's
 * name (malloc'd).
 */
static int
ref_resolve(const json_t **out, char **doc, const cs_schema_set *set,
            const char *from, const char *ref)
{
	const char *hash = strchr(ref, '#');
	size_t name_len = hash ? (size_t)(hash - ref) : strlen(ref);
	char *name = NULL, *fragment = NULL;
	const json_t *target;
	int error;

	*out = NULL;
	*doc = NULL;
	name = name_len ? strndup(ref, name_len) : strdup(from);
	fragment = strdup(hash ? hash + 1 : "");
	if (name == NULL || fragment == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	if (percent_decode(fragment) < 0 ||
	    (target = cs_schema_set_get(set, name)) == NULL ||
	    (target = pointer_get(target, fragment)) == NULL) {
		error = cs_error_set(CS_ENOTFOUND,
		                     "schema \"%s\": $ref \"%s\" does not "
		                     "resolve",
		                     from, ref);
		goto done;
	}
	*out = target;
	*doc = name;
	name = NULL; /* transferred */
	error = 0;
done:
	free(name);
	free(fragment);
	return error;
}

static int walk_schema(rules_loader *l, const char *doc, const json_t *node,
                       pathbuf *path, int segments, int hops);

static int
walk_list(rules_loader *l, const char *doc, const json_t *list, pathbuf *path,
          int segments, int hops)
{
	size_t i;
	int error;

	if (!json_is_array(list))
		return 0;
	for (i = 0; i < json_array_size(list); i++)
		if ((error = walk_schema(l, doc, json_array_get(list, i), path,
		                         segments, hops)) < 0)
			return error;
	return 0;
}

/* Walk into `node` as the schema of the field `path` names. */
static int
walk_schema(rules_loader *l, const char *doc, const json_t *node, pathbuf *path,
            int segments, int hops)
{
	static const char *const branches[] = {"allOf", "anyOf", "oneOf"};
	static const char *const conditions[] = {"if", "then", "else"};
	const json_t *v, *target;
	keyref *keys = NULL;
	char *target_doc = NULL;
	size_t len = path->len, count = 0, i;
	cs_merge_rule rule;
	int error = 0;

	if (!json_is_object(node))
		return 0;
	if (++l->steps > RULES_MAX_STEPS)
		return cs_error_set(CS_ELIMIT,
		                    "schema \"%s\": more than %d schemas to "
		                    "read merge rules from",
		                    doc, RULES_MAX_STEPS);
	/* Deeper than a record can be: nothing there to merge. */
	if (segments > CS_JSON_MAX_DEPTH)
		return 0;

	if ((v = json_object_get(node, "x_merge"))) {
		const char *s = json_string_value(v);

		if (s && strcmp(s, "set") == 0)
			rule = CS_MERGE_SET;
		else if (s && strcmp(s, "latest") == 0)
			rule = CS_MERGE_LATEST;
		else if (s && strcmp(s, "protective") == 0)
			rule = CS_MERGE_PROTECTIVE;
		else
			return cs_error_set(CS_EINVALID,
			                    "schema \"%s\": x_merge of \"%s\" "
			                    "is not \"set\", \"latest\" or "
			                    "\"protective\"",
			                    doc, path_str(path));
		if ((error = rule_add(l->rules, path_str(path), rule, doc)) < 0)
			return error;
	}

	/* core §8.3: beside "$ref", the other keywords are ignored. */
	if ((v = json_object_get(node, "$ref"))) {
		if (!json_is_string(v))
			return 0;
		if (hops >= RULES_MAX_HOPS)
			return cs_error_set(CS_EINVALID,
			                    "schema \"%s\": $ref \"%s\" "
			                    "loops",
			                    doc, json_string_value(v));
		if ((error = ref_resolve(&target, &target_doc, l->set, doc,
		                         json_string_value(v))) < 0)
			return error;
		error = walk_schema(l, target_doc, target, path, segments,
		                    hops + 1);
		free(target_doc);
		return error;
	}

	if (json_is_object(v = json_object_get(node, "properties"))) {
		if ((error = union_keys(&keys, &count, v, NULL, NULL)) < 0)
			goto done;
		for (i = 0; i < count; i++) {
			if ((error = path_push(path, keys[i].key)) < 0 ||
			    (error = walk_schema(
			             l, doc, json_object_get(v, keys[i].key),
			             path, segments + 1, 0)) < 0)
				goto done;
			path_pop(path, len);
		}
	}
	if ((v = json_object_get(node, "items"))) {
		if ((error = path_add(path, "/*", 2)) < 0)
			goto done;
		if (json_is_array(v))
			error = walk_list(l, doc, v, path, segments + 1, 0);
		else
			error = walk_schema(l, doc, v, path, segments + 1, 0);
		if (error < 0)
			goto done;
		path_pop(path, len);
	}
	for (i = 0; i < 3; i++)
		if ((error = walk_list(l, doc,
		                       json_object_get(node, branches[i]), path,
		                       segments, hops)) < 0)
			goto done;
	for (i = 0; i < 3; i++)
		if ((error = walk_schema(l, doc,
		                         json_object_get(node, conditions[i]),
		                         path, segments, hops)) < 0)
			goto done;
	error = 0;
done:
	path_pop(path, len);
	free(keys);
	return error;
}

/* Every document named by a $ref anywhere in `v`. */
static int
collect_refs(rules_loader *l, const json_t *v, int depth)
{
	const char *key, *ref, *hash;
	json_t *child;
	size_t i;
	int error;

	if (depth > 2 * MERGE_MAX_DEPTH)
		return 0;
	if (json_is_object(v)) {
		json_object_foreach ((json_t *)v, key, child) {
			if (strcmp(key, "$ref") == 0 && json_is_string(child)) {
				ref = json_string_value(child);
				hash = strchr(ref, '#');
				i = hash ? (size_t)(hash - ref) : strlen(ref);
				if (i > 0 &&
				    (error = loader_add_doc(l, ref, i)) < 0)
					return error;
			} else if ((error = collect_refs(l, child, depth + 1)) <
			           0) {
				return error;
			}
		}
	} else if (json_is_array(v)) {
		json_array_foreach (v, i, child)
			if ((error = collect_refs(l, child, depth + 1)) < 0)
				return error;
	}
	return 0;
}

/*
 * The rules keep their own set of the documents the type's schema reaches
 * (by $ref, transitively), so that they may outlive `schemas` and still
 * validate a merged record.
 */
static int
rules_copy_schemas(rules_loader *l)
{
	const json_t *doc;
	const char **names;
	json_t **docs;
	size_t i, n = 0;
	int error;

	for (i = 0; i < l->docs_count; i++) {
		if ((doc = cs_schema_set_get(l->set, l->docs[i])) == NULL)
			continue;
		if ((error = collect_refs(l, doc, 0)) < 0)
			return error;
	}
	if ((error = cs_schema_set_new(&l->rules->schemas)) < 0)
		return error;
	if ((names = calloc(l->docs_count + 1, sizeof(*names))) == NULL ||
	    (docs = calloc(l->docs_count + 1, sizeof(*docs))) == NULL) {
		free(names);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	for (i = 0; i < l->docs_count; i++) {
		if ((doc = cs_schema_set_get(l->set, l->docs[i])) == NULL)
			continue;
		names[n] = l->docs[i];
		/* The set only takes a reference; it never changes doc. */
		docs[n++] = (json_t *)doc;
	}
	error = cs_schema_set_add_all(l->rules->schemas, n, names, docs);
	free(names);
	free(docs);
	return error;
}

int
cs_merge_rules_load(cs_merge_rules **out, const cs_schema_set *schemas,
                    const char *type)
{
	rules_loader l = {0};
	cs_merge_rules *rules = NULL;
	pathbuf path = {0};
	const json_t *doc;
	char *name = NULL;
	size_t i;
	int error;

	*out = NULL;
	if (schemas == NULL || type == NULL || type[0] == '\0' ||
	    strchr(type, '#') || strchr(type, '/'))
		return cs_error_set(CS_EINVALID, "invalid record type \"%s\"",
		                    type ? type : "");
	if (asprintf(&name, "%s.schema.json", type) < 0) {
		name = NULL;
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	if ((doc = cs_schema_set_get(schemas, name)) == NULL) {
		error = cs_error_set(CS_ENOTFOUND, "no schema \"%s\"", name);
		goto done;
	}
	if ((rules = calloc(1, sizeof(*rules))) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	l.set = schemas;
	l.rules = rules;
	if ((error = path_add(&path, "", 0)) < 0 ||
	    (error = walk_schema(&l, name, doc, &path, 0, 0)) < 0 ||
	    (error = loader_add_doc(&l, name, strlen(name))) < 0 ||
	    (error = rules_copy_schemas(&l)) < 0)
		goto done;
	if (rules->count > 0)
		qsort(rules->items, rules->count, sizeof(*rules->items),
		      rule_entry_cmp);
	rules->schema_name = name;
	name = NULL; /* transferred */
	*out = rules;
	rules = NULL; /* transferred */
	error = 0;
done:
	for (i = 0; i < l.docs_count; i++)
		free(l.docs[i]);
	free(l.docs);
	free(path.data);
	free(name);
	cs_merge_rules_free(rules);
	return error;
}

/*
 * Whether an escaped pattern matches an escaped pointer: segment by
 * segment, "*" matching an array index.  *wild counts the "*" used.
 */
static int
pattern_match(const char *pat, const char *ptr, int *wild)
{
	const char *pe, *qe, *q;
	int digits;

	*wild = 0;
	for (;;) {
		if (*pat == '\0' || *ptr == '\0')
			return *pat == '\0' && *ptr == '\0';
		if (*pat != '/' || *ptr != '/')
			return 0;
		pat++;
		ptr++;
		pe = strchr(pat, '/');
		pe = pe ? pe : pat + strlen(pat);
		qe = strchr(ptr, '/');
		qe = qe ? qe : ptr + strlen(ptr);
		if (pe - pat == qe - ptr && memcmp(pat, ptr, pe - pat) == 0) {
			/* the same segment */
		} else if (pe - pat == 1 && *pat == '*') {
			digits = qe > ptr;
			for (q = ptr; q < qe; q++)
				digits = digits && *q >= '0' && *q <= '9';
			if (!digits)
				return 0;
			(*wild)++;
		} else {
			return 0;
		}
		pat = pe;
		ptr = qe;
	}
}

cs_merge_rule
cs_merge_rule_of(const cs_merge_rules *rules, const char *pointer)
{
	cs_merge_rule best = CS_MERGE_ATOMIC;
	int best_wild = -1, wild;
	size_t i;

	if (rules == NULL || pointer == NULL)
		return CS_MERGE_ATOMIC;
	/* The most literal match wins; patterns are sorted, so ties too. */
	for (i = 0; i < rules->count; i++) {
		if (!pattern_match(rules->items[i].pattern, pointer, &wild))
			continue;
		if (best_wild < 0 || wild < best_wild) {
			best = rules->items[i].rule;
			best_wild = wild;
		}
	}
	return best;
}

/* ---------------------------------------------------------------------- */
/* Protective order */

static int
level_index(const char *const *order, const char *s)
{
	int i;

	for (i = 0; order[i]; i++)
		if (strcmp(order[i], s) == 0)
			return i;
	return -1;
}

/*
 * Structural order, only when a canonical encoding cannot be had (an
 * unencodable value or no memory): type, then content.
 */
static int
fallback_cmp(const json_t *a, const json_t *b)
{
	char na[512], nb[512];

	if (json_typeof(a) != json_typeof(b))
		return (int)json_typeof(a) - (int)json_typeof(b);
	if (json_is_string(a))
		return bytes_cmp(json_string_value(a), json_string_length(a),
		                 json_string_value(b), json_string_length(b));
	if (json_is_number(a)) {
		number_text(a, na, sizeof(na));
		number_text(b, nb, sizeof(nb));
		return strcmp(na, nb);
	}
	if (json_is_array(a) || json_is_object(a))
		return (json_is_array(a) ? json_array_size(a)
		                         : json_object_size(a)) <
		                       (json_is_array(b) ? json_array_size(b)
		                                         : json_object_size(b))
		               ? -1
		               : 1;
	return 0;
}

const json_t *
cs_merge_more_protective(const json_t *a, const json_t *b)
{
	static const char *const visibility[] = {"public", "consortium",
	                                         "coordination", NULL};
	static const char *const sensitivity[] = {"normal", "confidential",
	                                          NULL};
	static const char *const *const orders[] = {visibility, sensitivity};
	const char *sa, *sb;
	int cmp, ia, ib;
	size_t i;

	/* Absent is the least protective (docs/record-model.md §7). */
	if (a == NULL)
		return b;
	if (b == NULL)
		return a;
	if (json_is_string(a) && json_is_string(b)) {
		sa = json_string_value(a);
		sb = json_string_value(b);
		for (i = 0; i < sizeof(orders) / sizeof(orders[0]); i++) {
			ia = level_index(orders[i], sa);
			ib = level_index(orders[i], sb);
			if (ia >= 0 && ib >= 0)
				return ia >= ib ? a : b;
		}
	}
	if (json_is_boolean(a) && json_is_boolean(b))
		return json_is_true(a) ? a : b;
	if (canonical_cmp(&cmp, a, b) < 0)
		cmp = fallback_cmp(a, b);
	return cmp >= 0 ? a : b;
}

/* ---------------------------------------------------------------------- */
/* Conflicts */

void
cs_field_conflicts_clear(cs_field_conflicts *conflicts)
{
	size_t i;

	if (conflicts == NULL)
		return;
	for (i = 0; i < conflicts->count; i++) {
		free(conflicts->items[i].pointer);
		json_decref(conflicts->items[i].base);
		json_decref(conflicts->items[i].ours);
		json_decref(conflicts->items[i].theirs);
	}
	free(conflicts->items);
	conflicts->items = NULL;
	conflicts->count = 0;
}

static void
conflict_dispose(cs_field_conflict *c)
{
	free(c->pointer);
	json_decref(c->base);
	json_decref(c->ours);
	json_decref(c->theirs);
}

/* Drop the conflicts at `pointer` or under it. */
static void
conflicts_drop_within(cs_field_conflicts *list, const char *pointer)
{
	size_t i, j;

	for (i = 0, j = 0; i < list->count; i++) {
		if (pointer_within(list->items[i].pointer, pointer))
			conflict_dispose(&list->items[i]);
		else
			list->items[j++] = list->items[i];
	}
	list->count = j;
}

/* List a conflict at `pointer` (copies of the candidates). */
static int
conflicts_add(cs_field_conflicts *list, const char *pointer, const json_t *b,
              const json_t *o, const json_t *t)
{
	cs_field_conflict c = {0}, *grown;
	int error;

	conflicts_drop_within(list, pointer);
	/* The array only grows by one: the count says its size. */
	if ((grown = realloc(list->items,
	                     (list->count + 1) * sizeof(*grown))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	list->items = grown;
	if ((c.pointer = strdup(pointer)) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	if ((error = copy_into(&c.base, b)) < 0 ||
	    (error = copy_into(&c.ours, o)) < 0 ||
	    (error = copy_into(&c.theirs, t)) < 0)
		goto done;
	list->items[list->count++] = c;
	memset(&c, 0, sizeof(c)); /* transferred */
	error = 0;
done:
	conflict_dispose(&c);
	return error;
}

static int
conflict_cmp(const void *pa, const void *pb)
{
	const cs_field_conflict *a = pa, *b = pb;

	return strcmp(a->pointer, b->pointer);
}

/* Move every conflict of `from`, sorted by pointer, to the end of `to`. */
static int
conflicts_move(cs_field_conflicts *to, cs_field_conflicts *from)
{
	cs_field_conflict *grown;

	if (from->count == 0)
		return 0;
	qsort(from->items, from->count, sizeof(*from->items), conflict_cmp);
	if ((grown = realloc(to->items, (to->count + from->count) *
	                                        sizeof(*grown))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	to->items = grown;
	memcpy(to->items + to->count, from->items,
	       from->count * sizeof(*from->items));
	to->count += from->count;
	free(from->items);
	from->items = NULL;
	from->count = 0;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* The field merge */

typedef struct {
	const cs_merge_rules *rules; /* NULL: every field atomic */
	/*
	 * Consortium files: a conflict is not listed; it keeps the base, or
	 * without one the greater canonical encoding, so that the file keeps
	 * every required member.
	 */
	int consortium;
	cs_field_conflicts *conflicts; /* NULL: not listed */
	pathbuf path;
} merger;

static int merge_value(json_t **out, merger *m, const json_t *b,
                       const json_t *o, const json_t *t, int depth);

/* Both sides changed a field differently and no rule resolves it. */
static int
merge_conflict(json_t **out, merger *m, const json_t *b, const json_t *o,
               const json_t *t)
{
	const json_t *pick = b;
	int error;

	*out = NULL;
	if (m->conflicts &&
	    (error = conflicts_add(m->conflicts, path_str(&m->path), b, o, t)) <
	            0)
		return error;
	if (m->consortium && b == NULL &&
	    (error = greater_canonical(&pick, o, t)) < 0)
		return error;
	return copy_into(out, pick);
}

/* "latest": the later "date" wins, then the greater encoding. */
static int
merge_latest(json_t **out, const json_t *o, const json_t *t)
{
	const char *date_o, *date_t;
	const json_t *pick;
	int cmp, error;

	*out = NULL;
	if (o == NULL || t == NULL)
		return copy_into(out, o ? o : t);
	date_o = json_string_value(json_object_get(o, "date"));
	date_t = json_string_value(json_object_get(t, "date"));
	if (date_o && date_t)
		cmp = strcmp(date_o, date_t);
	else
		cmp = (date_t == NULL) - (date_o == NULL);
	if (cmp == 0 && (error = canonical_cmp(&cmp, o, t)) < 0)
		return error;
	pick = cmp >= 0 ? o : t;
	return copy_into(out, pick);
}

static int
merge_object(json_t **out, merger *m, const json_t *b, const json_t *o,
             const json_t *t, int depth)
{
	json_t *result = NULL, *value = NULL;
	keyref *keys = NULL;
	size_t count, i, len = m->path.len;
	int error;

	*out = NULL;
	if ((error = union_keys(&keys, &count, b, o, t)) < 0)
		goto done;
	if ((result = json_object()) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	for (i = 0; i < count; i++) {
		const char *k = keys[i].key;

		if ((error = path_push(&m->path, k)) < 0 ||
		    (error = merge_value(&value, m, json_object_get(b, k),
		                         json_object_get(o, k),
		                         json_object_get(t, k), depth + 1)) < 0)
			goto done;
		path_pop(&m->path, len);
		if (value && json_object_set_new(result, k, value) < 0) {
			value = NULL;
			error = cs_error_set(CS_ERROR, "out of memory");
			goto done;
		}
		value = NULL; /* transferred */
	}
	/* Added on both sides, and every member conflicted: still absent. */
	if (b == NULL && json_object_size(result) == 0 &&
	    (json_object_size(o) > 0 || json_object_size(t) > 0)) {
		error = 0;
		goto done;
	}
	*out = result;
	result = NULL; /* transferred */
	error = 0;
done:
	path_pop(&m->path, len);
	free(keys);
	json_decref(result);
	return error;
}

static int
merge_value(json_t **out, merger *m, const json_t *b, const json_t *o,
            const json_t *t, int depth)
{
	cs_merge_rule rule;
	int error;

	*out = NULL;
	if (depth > MERGE_MAX_DEPTH)
		return cs_error_set(CS_ELIMIT,
		                    "value nested deeper than %d "
		                    "levels",
		                    CS_JSON_MAX_DEPTH);
	if (value_equal(o, t) || value_equal(t, b))
		return copy_into(out, o);
	if (value_equal(o, b))
		return copy_into(out, t);

	/* Both sides changed it, differently. */
	rule = cs_merge_rule_of(m->rules, path_str(&m->path));
	if (rule == CS_MERGE_SET && is_string_array(b) && is_string_array(o) &&
	    is_string_array(t))
		return set_combine(out, b, o, t, SET_MERGE);
	if (rule == CS_MERGE_LATEST)
		return merge_latest(out, o, t);
	if (rule == CS_MERGE_PROTECTIVE) {
		if (m->conflicts &&
		    (error = conflicts_add(m->conflicts, path_str(&m->path), b,
		                           o, t)) < 0)
			return error;
		return copy_into(out, cs_merge_more_protective(o, t));
	}
	if (json_is_object(o) && json_is_object(t) &&
	    (b == NULL || json_is_object(b)))
		return merge_object(out, m, b, o, t, depth);
	return merge_conflict(out, m, b, o, t);
}

/* ---------------------------------------------------------------------- */
/* Records */

/*
 * Validate against the rules' schema: 1 valid, 0 invalid, CS_ERROR (no
 * memory), or another negative code when the schema cannot tell (a $ref
 * that does not resolve, too deep a $ref chain): the repair then stops, as
 * every node stops, and the field merge stands.
 */
static int
record_valid(const cs_merge_rules *rules, const json_t *record,
             cs_schema_errors *errors)
{
	cs_schema_errors local = {0};
	cs_schema_errors *list = errors ? errors : &local;
	int error;

	error = cs_schema_validate(rules->schemas, rules->schema_name, record,
	                           list);
	if (error == CS_EINVALID && list->count > 0)
		error = 0;
	else if (error == 0)
		error = 1;
	else if (error != CS_ERROR)
		error = CS_ENOTFOUND;
	cs_schema_errors_clear(&local);
	return error;
}

/* Set (or remove, value NULL) member `key` of the object at `parent`. */
static int
object_put(json_t *parent, const char *key, json_t *value)
{
	if (value == NULL) {
		json_object_del(parent, key);
		return 0;
	}
	if (json_object_set_new(parent, key, value) < 0)
		return cs_error_set(CS_ERROR, "out of memory");
	return 0;
}

/* Whether a rule's pattern has an array index ("*" segment). */
static int
has_wildcard(const char *pattern)
{
	const char *s;

	for (s = strstr(pattern, "/*"); s; s = strstr(s + 1, "/*"))
		if (s[2] == '\0' || s[2] == '/')
			return 1;
	return 0;
}

/*
 * Put the base's value back at `pointer` (escaped, through objects only)
 * of the merged record *rec, then give every protective field under it the
 * more protective of ours and theirs: the field is now a conflict, and a
 * disagreement never loosens.  *changed says whether *rec changed.
 */
static int
revert_field(int *changed, json_t **rec, const cs_merge_rules *rules,
             const char *pointer, const json_t *b, const json_t *o,
             const json_t *t)
{
	json_t *before = NULL, *value = NULL, *parent;
	char *parent_ptr = NULL, *key = NULL;
	const rule_entry *r;
	size_t i;
	int error;

	*changed = 0;
	if ((error = copy_into(&before, pointer_get(*rec, pointer))) < 0)
		goto done;
	if (*pointer == '\0') {
		if ((error = copy_into(&value, b)) < 0)
			goto done;
		json_decref(*rec);
		*rec = value;
		value = NULL; /* transferred */
	} else {
		parent_ptr = strndup(pointer, pointer_parent_len(pointer));
		if (parent_ptr == NULL) {
			error = cs_error_set(CS_ERROR, "out of memory");
			goto done;
		}
		parent = (json_t *)pointer_get(*rec, parent_ptr);
		if (!json_is_object(parent)) {
			error = 0;
			goto done;
		}
		if ((key = last_segment(pointer)) == NULL) {
			error = cs_error_set(CS_ERROR, "out of memory");
			goto done;
		}
		if ((error = copy_into(&value, pointer_get(b, pointer))) < 0 ||
		    (error = object_put(parent, key, value)) < 0) {
			value = NULL;
			goto done;
		}
		value = NULL; /* transferred */
	}
	for (i = 0; i < rules->count; i++) {
		r = &rules->items[i];
		if (r->rule != CS_MERGE_PROTECTIVE || *r->pattern == '\0' ||
		    has_wildcard(r->pattern) ||
		    !pointer_within(r->pattern, pointer))
			continue;
		free(parent_ptr);
		parent_ptr =
		        strndup(r->pattern, pointer_parent_len(r->pattern));
		if (parent_ptr == NULL) {
			error = cs_error_set(CS_ERROR, "out of memory");
			goto done;
		}
		parent = (json_t *)pointer_get(*rec, parent_ptr);
		if (!json_is_object(parent))
			continue;
		free(key);
		if ((key = last_segment(r->pattern)) == NULL) {
			error = cs_error_set(CS_ERROR, "out of memory");
			goto done;
		}
		if ((error = copy_into(&value,
		                       cs_merge_more_protective(
		                               pointer_get(o, r->pattern),
		                               pointer_get(t, r->pattern)))) <
		            0 ||
		    (error = object_put(parent, key, value)) < 0) {
			value = NULL;
			goto done;
		}
		value = NULL; /* transferred */
	}
	*changed = !value_equal(before, pointer_get(*rec, pointer));
	error = 0;
done:
	free(parent_ptr);
	free(key);
	json_decref(before);
	json_decref(value);
	return error;
}

/*
 * The field of the merged record a validation failure at `where` is about:
 * the longest prefix of `where` through objects of `rec` (an array is
 * merged as a whole, so a failure inside one is about the array).
 */
static int
failed_field(char **out, const json_t *rec, const char *where)
{
	const json_t *at = rec, *next;
	const char *s = where, *end;

	*out = NULL;
	while (*s == '/' && json_is_object(at)) {
		end = segment_end(s);
		if ((next = member_named(at, s + 1, (size_t)(end - s - 1))) ==
		    NULL)
			break;
		at = next;
		s = end;
	}
	if ((*out = strndup(where, (size_t)(s - where))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	return 0;
}

/*
 * Make the merge of two valid records valid (see the top of this file):
 * revert the field of the first failure, or the nearest ancestor whose
 * revert changes something, and list it as a conflict; repeat.
 */
static int
repair_record(json_t **rec, const cs_merge_rules *rules, const json_t *b,
              const json_t *o, const json_t *t, cs_field_conflicts *conflicts)
{
	cs_schema_errors errors = {0};
	char *field = NULL;
	size_t i, first;
	int rounds, changed, valid, error;

	if ((valid = record_valid(rules, *rec, NULL)) != 0)
		return valid == CS_ERROR ? valid : 0;
	if ((error = record_valid(rules, o, NULL)) <= 0 ||
	    (error = record_valid(rules, t, NULL)) <= 0)
		return error == CS_ERROR ? error : 0;

	for (rounds = 0;; rounds++) {
		cs_schema_errors_clear(&errors);
		if ((valid = record_valid(rules, *rec, &errors)) < 0) {
			error = valid == CS_ERROR ? valid : 0;
			goto done;
		}
		if (valid)
			break;
		/* The failure with the least pointer: a fixed order. */
		for (i = 1, first = 0; i < errors.count; i++)
			if (strcmp(errors.items[i].pointer,
			           errors.items[first].pointer) < 0)
				first = i;
		free(field);
		if ((error = failed_field(&field, *rec,
		                          errors.items[first].pointer)) < 0)
			goto done;
		if (rounds >= REPAIR_MAX_ROUNDS)
			field[0] = '\0';
		for (;;) {
			if ((error = revert_field(&changed, rec, rules, field,
			                          b, o, t)) < 0)
				goto done;
			if (changed || field[0] == '\0')
				break;
			field[pointer_parent_len(field)] = '\0';
		}
		if (changed) {
			if ((error = conflicts_add(conflicts, field,
			                           pointer_get(b, field),
			                           pointer_get(o, field),
			                           pointer_get(t, field))) < 0)
				goto done;
		} else {
			/* The base itself fails: nothing left to revert. */
			if (conflicts->count == 0 &&
			    (error = conflicts_add(conflicts, "", b, o, t)) < 0)
				goto done;
			break;
		}
	}
	error = 0;
done:
	free(field);
	cs_schema_errors_clear(&errors);
	return error;
}

/* Both sides edited the record: merge it field by field. */
static int
merge_fields(json_t **out, const json_t *base, const json_t *ours,
             const json_t *theirs, const cs_merge_rules *rules,
             cs_field_conflicts *conflicts)
{
	merger m = {0};
	json_t *merged = NULL;
	int error;

	*out = NULL;
	m.rules = rules;
	m.conflicts = conflicts;
	if ((error = path_add(&m.path, "", 0)) < 0 ||
	    (error = merge_object(&merged, &m, base, ours, theirs, 1)) < 0)
		goto done;
	if (rules && rules->schemas &&
	    (error = repair_record(&merged, rules, base, ours, theirs,
	                           conflicts)) < 0)
		goto done;
	*out = merged;
	merged = NULL; /* transferred */
	error = 0;
done:
	free(m.path.data);
	json_decref(merged);
	return error;
}

int
cs_merge_record(json_t **out, const json_t *base, const json_t *ours,
                const json_t *theirs, const cs_merge_rules *rules,
                cs_field_conflicts *conflicts)
{
	cs_field_conflicts local = {0};
	json_t *merged = NULL;
	int error;

	*out = NULL;
	if ((error = check_value(base, 1)) < 0 ||
	    (error = check_value(ours, 1)) < 0 ||
	    (error = check_value(theirs, 1)) < 0)
		return error;

	if (value_equal(ours, theirs) || value_equal(theirs, base)) {
		error = copy_into(&merged, ours);
	} else if (value_equal(ours, base)) {
		error = copy_into(&merged, theirs);
	} else if (base == NULL || ours == NULL || theirs == NULL) {
		/*
		 * Added on both sides, or deleted on one and edited on the
		 * other: a conflict, and no file, so that a disagreement
		 * never publishes what one side withdrew.
		 */
		error = conflicts_add(&local, "", base, ours, theirs);
	} else if (!json_is_object(base) || !json_is_object(ours) ||
	           !json_is_object(theirs)) {
		if ((error = conflicts_add(&local, "", base, ours, theirs)) ==
		    0)
			error = copy_into(&merged, base);
	} else {
		error = merge_fields(&merged, base, ours, theirs, rules,
		                     &local);
	}
	if (error < 0)
		goto done;
	if (conflicts && (error = conflicts_move(conflicts, &local)) < 0)
		goto done;
	*out = merged;
	merged = NULL; /* transferred */
	error = 0;
done:
	cs_field_conflicts_clear(&local);
	json_decref(merged);
	return error;
}

/* ---------------------------------------------------------------------- */
/* consortium/members.json */

/* A key entry of members.json and its "key". */
typedef struct {
	const char *key;
	const json_t *entry;
} key_entry;

static int
key_entry_cmp(const void *pa, const void *pb)
{
	const key_entry *a = pa, *b = pb;

	return strcmp(a->key, b->key);
}

typedef struct {
	key_entry *in_order; /* as in the file */
	key_entry *sorted;   /* by key, for lookups */
	size_t count;
} key_list;

static void
key_list_dispose(key_list *k)
{
	free(k->in_order);
	free(k->sorted);
}

static int
key_list_read(key_list *k, const json_t *keys)
{
	const char *key;
	size_t i, n;

	memset(k, 0, sizeof(*k));
	if (keys == NULL)
		return 0;
	if (!json_is_array(keys))
		return cs_error_set(CS_EINVALID,
		                    "consortium/members.json: \"keys\" is not "
		                    "an array");
	if ((n = json_array_size(keys)) == 0)
		return 0;
	k->in_order = calloc(n, sizeof(*k->in_order));
	k->sorted = calloc(n, sizeof(*k->sorted));
	if (k->in_order == NULL || k->sorted == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	for (i = 0; i < n; i++) {
		key = json_string_value(
		        json_object_get(json_array_get(keys, i), "key"));
		if (key == NULL)
			return cs_error_set(CS_EINVALID,
			                    "consortium/members.json: key "
			                    "entry %zu has no \"key\"",
			                    i);
		k->in_order[i].key = key;
		k->in_order[i].entry = json_array_get(keys, i);
	}
	k->count = n;
	memcpy(k->sorted, k->in_order, n * sizeof(*k->sorted));
	qsort(k->sorted, n, sizeof(*k->sorted), key_entry_cmp);
	for (i = 1; i < n; i++)
		if (strcmp(k->sorted[i - 1].key, k->sorted[i].key) == 0)
			return cs_error_set(CS_EINVALID,
			                    "consortium/members.json: key "
			                    "'%.40s…' is listed twice",
			                    k->sorted[i].key);
	return 0;
}

static const json_t *
key_list_find(const key_list *k, const char *key)
{
	key_entry probe = {key, NULL}, *found;

	if (k->count == 0)
		return NULL;
	found = bsearch(&probe, k->sorted, k->count, sizeof(*k->sorted),
	                key_entry_cmp);
	return found ? found->entry : NULL;
}

/*
 * Whether a and b list the keys they share with `x` and `y` in the same
 * order (x, y NULL: all their keys).
 */
static int
key_list_same_order(const key_list *a, const key_list *b, const key_list *x,
                    const key_list *y)
{
	size_t i = 0, j = 0;

#define SHARED(l, k)                                                           \
	((x == NULL || key_list_find(x, (l)->in_order[k].key)) &&              \
	 (y == NULL || key_list_find(y, (l)->in_order[k].key)) &&              \
	 key_list_find(a, (l)->in_order[k].key) &&                             \
	 key_list_find(b, (l)->in_order[k].key))
	if (x == NULL && a->count != b->count)
		return 0;
	for (;;) {
		while (i < a->count && x && !SHARED(a, i))
			i++;
		while (j < b->count && x && !SHARED(b, j))
			j++;
		if (i == a->count || j == b->count)
			return i == a->count && j == b->count;
		if (strcmp(a->in_order[i].key, b->in_order[j].key) != 0)
			return 0;
		i++;
		j++;
	}
#undef SHARED
}

/*
 * "revoked" only grows: either side's revocation wins; when both sides
 * hold one, three-way, then the greater encoding.
 */
static int
merge_revoked(json_t **out, const json_t *b, const json_t *o, const json_t *t)
{
	const json_t *pick;
	int error;

	*out = NULL;
	if (o == NULL && t == NULL)
		return copy_into(out, b);
	if (o == NULL || t == NULL)
		return copy_into(out, o ? o : t);
	if (value_equal(o, t) || value_equal(t, b))
		return copy_into(out, o);
	if (value_equal(o, b))
		return copy_into(out, t);
	if ((error = greater_canonical(&pick, o, t)) < 0)
		return error;
	return copy_into(out, pick);
}

/* A role changed differently by the sides is the least privilege. */
static int
merge_role(json_t **out, const json_t *b, const json_t *o, const json_t *t)
{
	*out = NULL;
	if (value_equal(o, t) || value_equal(t, b))
		return copy_into(out, o);
	if (value_equal(o, b))
		return copy_into(out, t);
	if ((*out = json_string("member")) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	return 0;
}

/*
 * Merge the members of objects (absent: empty) one by one; `special`
 * merges the members it knows (returning 1), the others merge three-way.
 */
typedef int (*member_merge)(json_t **out, merger *m, const char *name,
                            const json_t *b, const json_t *o, const json_t *t,
                            int depth);

static int
merge_members_of(json_t **out, merger *m, const json_t *b, const json_t *o,
                 const json_t *t, member_merge special, int depth)
{
	json_t *result = NULL, *value = NULL;
	keyref *keys = NULL;
	size_t count, i, len = m->path.len;
	int error;

	*out = NULL;
	if ((error = union_keys(&keys, &count, b, o, t)) < 0)
		goto done;
	if ((result = json_object()) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	for (i = 0; i < count; i++) {
		const char *k = keys[i].key;
		const json_t *vb = json_object_get(b, k),
		             *vo = json_object_get(o, k),
		             *vt = json_object_get(t, k);

		if ((error = path_push(&m->path, k)) < 0)
			goto done;
		error = special ? special(&value, m, k, vb, vo, vt, depth + 1)
		                : 0;
		if (error == 0)
			error = merge_value(&value, m, vb, vo, vt, depth + 1);
		if (error < 0)
			goto done;
		path_pop(&m->path, len);
		if (value && json_object_set_new(result, k, value) < 0) {
			value = NULL;
			error = cs_error_set(CS_ERROR, "out of memory");
			goto done;
		}
		value = NULL; /* transferred */
	}
	*out = result;
	result = NULL; /* transferred */
	error = 0;
done:
	path_pop(&m->path, len);
	free(keys);
	json_decref(result);
	return error;
}

static int
key_member(json_t **out, merger *m, const char *name, const json_t *b,
           const json_t *o, const json_t *t, int depth)
{
	int error;

	*out = NULL;
	if (strcmp(name, "revoked") == 0)
		error = merge_revoked(out, b, o, t);
	else if (strcmp(name, "role") == 0)
		error = merge_role(out, b, o, t);
	else
		return 0;
	return error < 0 ? error : 1;
}

static int
org_member(json_t **out, merger *m, const char *name, const json_t *b,
           const json_t *o, const json_t *t, int depth)
{
	*out = NULL;
	if (strcmp(name, "removed") != 0 ||
	    !(json_is_true(b) || json_is_true(o) || json_is_true(t)))
		return 0;
	/* Removals only grow. */
	*out = json_true();
	return 1;
}

/*
 * An entry (key or organisation) is never deleted by a merge: a side
 * without it counts as unchanged.
 */
static int
merge_entry(json_t **out, merger *m, const json_t *b, const json_t *o,
            const json_t *t, member_merge special, int depth)
{
	*out = NULL;
	o = o ? o : b;
	t = t ? t : b;
	if (o == NULL || t == NULL)
		return copy_into(out, o ? o : t);
	if (json_is_object(o) && json_is_object(t) &&
	    (b == NULL || json_is_object(b)))
		return merge_members_of(out, m, b, o, t, special, depth);
	return merge_value(out, m, b, o, t, depth);
}

static int
merge_keys(json_t **out, merger *m, const json_t *b, const json_t *o,
           const json_t *t, int depth)
{
	key_list lb, lo, lt;
	const key_list *order;
	key_entry *all = NULL;
	json_t *result = NULL, *value = NULL;
	size_t total, n = 0, i, seq_count;
	int error;

	*out = NULL;
	memset(&lb, 0, sizeof(lb));
	memset(&lo, 0, sizeof(lo));
	memset(&lt, 0, sizeof(lt));
	if ((error = key_list_read(&lb, b)) < 0 ||
	    (error = key_list_read(&lo, o)) < 0 ||
	    (error = key_list_read(&lt, t)) < 0)
		goto done;

	/*
	 * The order of the file.  The keys a side holds, in its order, when
	 * only that side changed them; else, when only that side reordered
	 * the keys all three hold, that side's order; else the base's.  Then
	 * the keys that order misses, sorted.
	 */
	if (key_list_same_order(&lo, &lt, NULL, NULL) ||
	    key_list_same_order(&lt, &lb, NULL, NULL))
		order = &lo;
	else if (key_list_same_order(&lo, &lb, NULL, NULL))
		order = &lt;
	else if (key_list_same_order(&lo, &lt, &lb, &lb))
		order = &lb;
	else if (key_list_same_order(&lo, &lb, &lt, &lt))
		order = &lt;
	else if (key_list_same_order(&lt, &lb, &lo, &lo))
		order = &lo;
	else
		order = &lb;
	total = order->count + lb.count + lo.count + lt.count;
	if (total > 0 && (all = calloc(total, sizeof(*all))) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	for (i = 0; i < order->count; i++)
		all[n++] = order->in_order[i];
	seq_count = n;
	for (i = 0; i < lb.count; i++)
		all[n++] = lb.sorted[i];
	for (i = 0; i < lo.count; i++)
		all[n++] = lo.sorted[i];
	for (i = 0; i < lt.count; i++)
		all[n++] = lt.sorted[i];
	if (n > seq_count)
		qsort(all + seq_count, n - seq_count, sizeof(*all),
		      key_entry_cmp);

	if ((result = json_array()) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	for (i = 0; i < n; i++) {
		/* Each key once: the ordered ones, then the others. */
		if (i >= seq_count &&
		    ((i > seq_count &&
		      strcmp(all[i - 1].key, all[i].key) == 0) ||
		     key_list_find(order, all[i].key)))
			continue;
		if ((error = merge_entry(&value, m,
		                         key_list_find(&lb, all[i].key),
		                         key_list_find(&lo, all[i].key),
		                         key_list_find(&lt, all[i].key),
		                         key_member, depth + 1)) < 0)
			goto done;
		if (json_array_append_new(result, value) < 0) {
			value = NULL;
			error = cs_error_set(CS_ERROR, "out of memory");
			goto done;
		}
		value = NULL; /* transferred */
	}
	*out = result;
	result = NULL; /* transferred */
	error = 0;
done:
	key_list_dispose(&lb);
	key_list_dispose(&lo);
	key_list_dispose(&lt);
	free(all);
	json_decref(result);
	return error;
}

static int
organization_entry(json_t **out, merger *m, const char *name, const json_t *b,
                   const json_t *o, const json_t *t, int depth)
{
	int error;

	if ((error = merge_entry(out, m, b, o, t, org_member, depth)) < 0)
		return error;
	return 1;
}

static int
members_member(json_t **out, merger *m, const char *name, const json_t *b,
               const json_t *o, const json_t *t, int depth)
{
	int error;

	*out = NULL;
	if (strcmp(name, "keys") == 0) {
		error = merge_keys(out, m, b, o, t, depth);
	} else if (strcmp(name, "organizations") == 0) {
		if ((b && !json_is_object(b)) || (o && !json_is_object(o)) ||
		    (t && !json_is_object(t)))
			return cs_error_set(CS_EINVALID,
			                    "consortium/members.json: "
			                    "\"organizations\" is not an "
			                    "object");
		/* The union: an organisation is removed, never deleted. */
		error = merge_members_of(out, m, b, o, t, organization_entry,
		                         depth);
	} else {
		return 0;
	}
	return error < 0 ? error : 1;
}

/* Both sides must be objects; the base may be absent. */
static int
consortium_check(const json_t *base, const json_t *ours, const json_t *theirs,
                 const char *file)
{
	int error;

	if ((base && !json_is_object(base)) || !json_is_object(ours) ||
	    !json_is_object(theirs))
		return cs_error_set(CS_EINVALID, "%s: not an object", file);
	if ((error = check_value(base, 1)) < 0 ||
	    (error = check_value(ours, 1)) < 0 ||
	    (error = check_value(theirs, 1)) < 0)
		return cs_error_prefix(error, "%s", file);
	return 0;
}

static int
merge_consortium_file(json_t **out, const json_t *base, const json_t *ours,
                      const json_t *theirs, member_merge special,
                      const char *file)
{
	merger m = {0};
	json_t *merged = NULL;
	int error;

	*out = NULL;
	if ((error = consortium_check(base, ours, theirs, file)) < 0)
		return error;
	m.consortium = 1;
	if ((error = path_add(&m.path, "", 0)) < 0 ||
	    (error = merge_members_of(&merged, &m, base, ours, theirs, special,
	                              1)) < 0)
		goto done;
	*out = merged;
	merged = NULL; /* transferred */
	error = 0;
done:
	free(m.path.data);
	json_decref(merged);
	return error;
}

int
cs_merge_members(json_t **out, const json_t *base, const json_t *ours,
                 const json_t *theirs)
{
	return merge_consortium_file(out, base, ours, theirs, members_member,
	                             "consortium/members.json");
}

/* ---------------------------------------------------------------------- */
/* consortium/policy.json */

/*
 * A list of strings: three-way as a set; when both sides changed it,
 * `both` (SET_INTERSECTION for write patterns, SET_UNION for the lists
 * that ask for a confirmation).  Returns 1 when it applied.
 */
static int
merge_string_list(json_t **out, const json_t *b, const json_t *o,
                  const json_t *t, int both)
{
	int o_kept, t_kept, same, error;

	*out = NULL;
	if (!is_string_array(b) || !is_string_array(o) || !is_string_array(t))
		return 0;
	if (value_equal(o, t) || value_equal(t, b))
		return copy_into(out, o) < 0 ? CS_ERROR : 1;
	if (value_equal(o, b))
		return copy_into(out, t) < 0 ? CS_ERROR : 1;
	/* A side that only reordered the list did not change the set. */
	if ((error = set_same(&o_kept, o, b)) < 0 ||
	    (error = set_same(&t_kept, t, b)) < 0 ||
	    (error = set_same(&same, o, t)) < 0)
		return error;
	if (o_kept && !t_kept)
		error = copy_into(out, t);
	else if (t_kept && !o_kept)
		error = copy_into(out, o);
	else if (same)
		error = set_combine(out, NULL, o, t, SET_UNION);
	else
		error = set_combine(out, NULL, o, t, both);
	return error < 0 ? error : 1;
}

static int
write_role(json_t **out, merger *m, const char *name, const json_t *b,
           const json_t *o, const json_t *t, int depth)
{
	/* Permissions narrow. */
	return merge_string_list(out, b, o, t, SET_INTERSECTION);
}

static int
confirmation_list(json_t **out, merger *m, const char *name, const json_t *b,
                  const json_t *o, const json_t *t, int depth)
{
	return merge_string_list(out, b, o, t, SET_UNION);
}

/* A field's level: three-way, the more protective when both changed it. */
static int
level_field(json_t **out, merger *m, const char *name, const json_t *b,
            const json_t *o, const json_t *t, int depth)
{
	int error;

	*out = NULL;
	if (value_equal(o, t) || value_equal(t, b))
		error = copy_into(out, o);
	else if (value_equal(o, b))
		error = copy_into(out, t);
	else
		error = copy_into(out, cs_merge_more_protective(o, t));
	return error < 0 ? error : 1;
}

static int
all_objects(const json_t *b, const json_t *o, const json_t *t)
{
	return (b == NULL || json_is_object(b)) &&
	       (o == NULL || json_is_object(o)) &&
	       (t == NULL || json_is_object(t));
}

/* A record type's levels, field by field; an emptied map goes. */
static int
level_type(json_t **out, merger *m, const char *name, const json_t *b,
           const json_t *o, const json_t *t, int depth)
{
	int error;

	*out = NULL;
	if (!all_objects(b, o, t))
		return 0;
	if ((error = merge_members_of(out, m, b, o, t, level_field, depth)) < 0)
		return error;
	if (json_object_size(*out) == 0) {
		json_decref(*out);
		*out = NULL;
	}
	return 1;
}

static int
policy_member(json_t **out, merger *m, const char *name, const json_t *b,
              const json_t *o, const json_t *t, int depth)
{
	member_merge inner;
	int error;

	*out = NULL;
	if (strcmp(name, "write") == 0)
		inner = write_role;
	else if (strcmp(name, "visibility") == 0 ||
	         strcmp(name, "confidential") == 0)
		inner = level_type;
	else if (strcmp(name, "publish_confirmation") == 0)
		inner = confirmation_list;
	else
		return 0;
	if (!all_objects(b, o, t))
		return 0;
	if (o == NULL || t == NULL) {
		/* Deleted by a side: an ordinary three-way merge. */
		return 0;
	}
	error = merge_members_of(out, m, b, o, t, inner, depth);
	return error < 0 ? error : 1;
}

int
cs_merge_policy(json_t **out, const json_t *base, const json_t *ours,
                const json_t *theirs)
{
	return merge_consortium_file(out, base, ours, theirs, policy_member,
	                             "consortium/policy.json");
}
