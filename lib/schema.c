/*
 * cartosync — JSON Schema validation, draft-07 keywords.
 *
 * Specifications cited below:
 *   core  — JSON Schema Core, draft-handrews-json-schema-01 (draft-07)
 *   valid — JSON Schema Validation, draft-handrews-json-schema-validation-01
 *   RFC 6901 (JSON Pointer), RFC 3986 (URI fragments), ECMA-262 §21.2
 *   (regular expression patterns).
 *
 * A set is compiled before use: every schema of every document becomes a
 * `node` with its keywords parsed (numbers, compiled patterns, child nodes,
 * the node a $ref points to).  Validating then follows pointers and never
 * looks a keyword up by name, resolves a reference or compiles a pattern.
 *
 * The whole set is recompiled on every cs_schema_set_add_all(): sets hold a
 * few dozen small documents and change rarely, and recompiling lets
 * references between documents resolve in whatever order the documents
 * arrive.  A whole folder is added in one call: one compilation, not one
 * per document (a consortium's 14 schemas took 7 times as long).  The
 * compiled patterns survive recompilation in a cache keyed by the pattern.
 *
 *   documents --compile--> nodes --validate(instance)--> errors
 *                            |   each $ref resolved once, to a node
 *   pattern cache <----------+   one regex_t per pattern text
 */
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/schema.h"

#define MAX_ERRORS 100
/* Nested schema applications; only a $ref cycle gets near it. */
#define MAX_RECURSION 512
/* Values quoted in messages are cut to this many code points. */
#define QUOTE_MAX 40
/* Non-ASCII characters a pattern's range may span (class_emit_wide). */
#define WIDE_RANGE_MAX 4096

/* ---------------------------------------------------------------------- */
/* Growing strings */

typedef struct {
	char *data;
	size_t len;
	size_t cap;
	int failed;
} strbuf;

static void
sb_add(strbuf *b, const char *s, size_t n)
{
	size_t cap;
	char *grown;

	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((grown = realloc(b->data, cap)) == NULL) {
			b->failed = 1;
			return;
		}
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void
sb_adds(strbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void
sb_addc(strbuf *b, char c)
{
	sb_add(b, &c, 1);
}

static void
sb_truncate(strbuf *b, size_t len)
{
	b->len = len;
	if (b->data)
		b->data[len] = '\0';
}

static const char *
sb_str(const strbuf *b)
{
	return b->data && !b->failed ? b->data : "";
}

/* Append "/token" to a JSON pointer, escaping ~ and / (RFC 6901 §3). */
static void
sb_pointer_push(strbuf *b, const char *token)
{
	sb_addc(b, '/');
	for (; *token; token++) {
		if (*token == '~')
			sb_adds(b, "~0");
		else if (*token == '/')
			sb_adds(b, "~1");
		else
			sb_addc(b, *token);
	}
}

static void
sb_pointer_index(strbuf *b, size_t index)
{
	char num[32];

	snprintf(num, sizeof(num), "/%zu", index);
	sb_adds(b, num);
}

/* ---------------------------------------------------------------------- */
/* Compiled schemas */

/* In the order a message lists them: "expected a string or null". */
enum {
	T_STRING = 1 << 0,
	T_INTEGER = 1 << 1,
	T_NUMBER = 1 << 2,
	T_BOOLEAN = 1 << 3,
	T_OBJECT = 1 << 4,
	T_ARRAY = 1 << 5,
	T_NULL = 1 << 6,
};

typedef struct node node;

typedef struct {
	const char *name;
	node *schema;
} named_node;

struct pattern_entry;

typedef struct {
	const char *pattern;
	const struct pattern_entry *re;
	node *schema;
} pattern_node;

typedef struct {
	const char *name;
	node *schema;        /* the schema form, or NULL */
	const json_t *names; /* the array form, or NULL */
} dependency;

typedef struct {
	node **items;
	size_t count;
} node_list;

struct node {
	size_t doc;         /* index of the document holding it */
	const json_t *json; /* the schema: an object or a boolean */
	char *location;     /* "name#/pointer", for messages */
	char *broken;       /* why it is not a valid schema, or NULL */
	int boolean;        /* 0 false, 1 true, -1 an object */

	const char *ref; /* core §8.3: siblings are then ignored */
	node *ref_target;
	const char *ref_problem; /* why ref_target is NULL */

	unsigned types; /* T_* bits, 0 when there is no "type" */
	const json_t *enum_values;
	const json_t *const_value;
	const char *title;

	const json_t *multiple_of;
	const json_t *minimum, *maximum;
	const json_t *exclusive_minimum, *exclusive_maximum;

	long long min_length, max_length; /* -1 when absent */
	const char *pattern;
	const struct pattern_entry *pattern_re;

	node *items;         /* the single-schema form of "items" */
	node_list item_list; /* the array form */
	int has_item_list;
	node *additional_items;
	node *contains;
	long long min_items, max_items;
	int unique_items;

	const json_t *properties_json;
	named_node *properties;
	size_t properties_count;
	pattern_node *pattern_properties;
	size_t pattern_properties_count;
	node *additional_properties;
	const json_t *required;
	node *property_names;
	long long min_properties, max_properties;
	dependency *dependencies;
	size_t dependencies_count;

	node_list all_of, any_of, one_of;
	node *not_schema;
	node *if_schema, *then_schema, *else_schema;
};

typedef struct pattern_entry {
	char *pattern;
	regex_t re;
	int compiled;
	/* The same expression compiled for single bytes, when it is ASCII:
	 * for an ASCII subject it matches exactly as `re` does, without the
	 * cost of multibyte matching (pattern_matches()). */
	regex_t re_ascii;
	int ascii_compiled;
	char *problem; /* why it did not compile */
} pattern_entry;

typedef struct {
	char *name;
	json_t *doc;
} document;

/* Everything derived from the documents; rebuilt on each add. */
typedef struct {
	node **nodes; /* every node, to free them */
	size_t count, cap;
	node **table; /* open addressing on (doc, json) */
	size_t table_cap;
} compiled;

struct cs_schema_set {
	document *docs;
	size_t docs_count, docs_cap;
	compiled *compiled;
	pattern_entry **patterns; /* open addressing on the pattern text */
	size_t patterns_count, patterns_cap;
};

static uint64_t
hash_bytes(const void *data, size_t len, uint64_t h)
{
	const unsigned char *p = data;
	size_t i;

	/* FNV-1a */
	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t
node_hash(size_t doc, const json_t *json)
{
	uintptr_t p = (uintptr_t)json;
	uint64_t h = 0xcbf29ce484222325ULL;

	h = hash_bytes(&doc, sizeof(doc), h);
	return hash_bytes(&p, sizeof(p), h);
}

static node *
compiled_find(const compiled *c, size_t doc, const json_t *json)
{
	size_t mask = c->table_cap - 1, i;

	if (c->table_cap == 0)
		return NULL;
	for (i = node_hash(doc, json) & mask; c->table[i]; i = (i + 1) & mask)
		if (c->table[i]->doc == doc && c->table[i]->json == json)
			return c->table[i];
	return NULL;
}

static void
table_insert(node **table, size_t cap, node *n)
{
	size_t mask = cap - 1, i;

	for (i = node_hash(n->doc, n->json) & mask; table[i];
	     i = (i + 1) & mask)
		;
	table[i] = n;
}

/* Register a node; the table stays at most half full. */
static int
compiled_add(compiled *c, node *n)
{
	node **grown;
	size_t i, cap;

	if (c->count == c->cap) {
		cap = c->cap ? c->cap * 2 : 64;
		if ((grown = realloc(c->nodes, cap * sizeof(*grown))) == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		c->nodes = grown;
		c->cap = cap;
	}
	if ((c->count + 1) * 2 > c->table_cap) {
		cap = c->table_cap ? c->table_cap * 2 : 128;
		if ((grown = calloc(cap, sizeof(*grown))) == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		for (i = 0; i < c->count; i++)
			table_insert(grown, cap, c->nodes[i]);
		free(c->table);
		c->table = grown;
		c->table_cap = cap;
	}
	c->nodes[c->count++] = n;
	table_insert(c->table, c->table_cap, n);
	return 0;
}

static void
node_free(node *n)
{
	free(n->location);
	free(n->broken);
	free(n->item_list.items);
	free(n->properties);
	free(n->pattern_properties);
	free(n->dependencies);
	free(n->all_of.items);
	free(n->any_of.items);
	free(n->one_of.items);
	free(n);
}

static void
compiled_free(compiled *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->count; i++)
		node_free(c->nodes[i]);
	free(c->nodes);
	free(c->table);
	free(c);
}

/* ---------------------------------------------------------------------- */
/* Patterns: ECMA-262 §21.2 subset to POSIX extended regular expressions */

static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;
static locale_t utf8_locale, c_locale;

static void
utf8_locale_init(void)
{
	utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	c_locale = newlocale(LC_CTYPE_MASK, "C", (locale_t)0);
}

static int
is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

/*
 * Patterns match code points, not bytes ("." is one character), so the
 * regex library must see UTF-8: compile and run under a UTF-8 LC_CTYPE of
 * this thread only, whatever the process's locale (the library never calls
 * setlocale()).  Without C.UTF-8, the current locale is used.
 */
static locale_t
utf8_enter(void)
{
	pthread_once(&utf8_once, utf8_locale_init);
	return utf8_locale ? uselocale(utf8_locale) : (locale_t)0;
}

static void
utf8_leave(locale_t previous)
{
	if (previous)
		uselocale(previous);
}

static void
put_utf8(strbuf *out, unsigned long cp)
{
	char s[4];

	if (cp < 0x80) {
		s[0] = (char)cp;
		sb_add(out, s, 1);
	} else if (cp < 0x800) {
		s[0] = (char)(0xc0 | (cp >> 6));
		s[1] = (char)(0x80 | (cp & 0x3f));
		sb_add(out, s, 2);
	} else if (cp < 0x10000) {
		s[0] = (char)(0xe0 | (cp >> 12));
		s[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		s[2] = (char)(0x80 | (cp & 0x3f));
		sb_add(out, s, 3);
	} else {
		s[0] = (char)(0xf0 | (cp >> 18));
		s[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		s[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		s[3] = (char)(0x80 | (cp & 0x3f));
		sb_add(out, s, 4);
	}
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
read_hex(const char *p, int digits, unsigned long *out)
{
	int i, v;

	*out = 0;
	for (i = 0; i < digits; i++) {
		if ((v = hex_value(p[i])) < 0)
			return -1;
		*out = *out * 16 + (unsigned long)v;
	}
	return 0;
}

/*
 * \xHH and \uHHHH (with a surrogate pair as one code point), ECMA-262
 * §21.2.2.10.  `*p` points after the backslash; on success it is moved
 * past the escape.
 */
static int
read_code_escape(const char **p, unsigned long *cp)
{
	const char *s = *p;
	unsigned long lo;

	if (*s == 'x') {
		if (read_hex(s + 1, 2, cp) < 0)
			return -1;
		*p = s + 3;
		return 0;
	}
	if (read_hex(s + 1, 4, cp) < 0)
		return -1;
	s += 5;
	if (*cp >= 0xd800 && *cp <= 0xdbff && s[0] == '\\' && s[1] == 'u' &&
	    read_hex(s + 2, 4, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
		*cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
		s += 6;
	}
	if (*cp == 0 || (*cp >= 0xd800 && *cp <= 0xdfff))
		return -1;
	*p = s;
	return 0;
}

/* The control escapes of ECMA-262 §21.2.2.10 (ControlEscape). */
static int
control_escape(char c)
{
	switch (c) {
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	case 'f':
		return '\f';
	case 'v':
		return '\v';
	default:
		return -1;
	}
}

static int
is_ere_special(int c)
{
	return c != '\0' && strchr(".[]{}()*+?^$|\\", c) != NULL;
}

/* A literal character outside brackets. */
static void
put_literal(strbuf *out, unsigned long cp)
{
	if (cp < 0x80 && is_ere_special((int)cp))
		sb_addc(out, '\\');
	put_utf8(out, cp);
}

/* One member of a bracket expression: a character or a range. */
typedef struct {
	unsigned long lo, hi;
} class_range;

typedef struct {
	class_range ranges[64];
	size_t count;
	const char *named[8]; /* "0-9", "[:space:]", ... */
	size_t named_count;
} char_class;

static int
class_add(char_class *cls, unsigned long lo, unsigned long hi)
{
	if (cls->count == sizeof(cls->ranges) / sizeof(cls->ranges[0]))
		return -1;
	cls->ranges[cls->count].lo = lo;
	cls->ranges[cls->count].hi = hi;
	cls->count++;
	return 0;
}

static int
class_add_named(char_class *cls, const char *text)
{
	if (cls->named_count == sizeof(cls->named) / sizeof(cls->named[0]))
		return -1;
	cls->named[cls->named_count++] = text;
	return 0;
}

/*
 * glibc refuses ranges between non-ASCII characters in C.UTF-8 ("invalid
 * collation character"), so such a range is written out one character at
 * a time, up to a bound that keeps the bracket small.
 */
static int
class_emit_wide(strbuf *out, unsigned long lo, unsigned long hi,
                const char **why)
{
	unsigned long cp;

	if (lo < 0x80) {
		put_utf8(out, lo);
		sb_addc(out, '-');
		put_utf8(out, 0x7f);
		lo = 0x80;
	}
	if (hi - lo >= WIDE_RANGE_MAX) {
		*why = "a range of more than 4096 non-ASCII characters is not "
		       "supported";
		return -1;
	}
	for (cp = lo; cp <= hi; cp++)
		if (cp < 0xd800 || cp > 0xdfff)
			put_utf8(out, cp);
	return 0;
}

/*
 * POSIX bracket rules (POSIX.1-2017 XBD §9.3.5): a backslash is literal,
 * "]" is literal only first, "-" only last, "^" anywhere but first, and
 * "[" followed by ":", "." or "=" opens a class name.  So members are
 * written in this order: "]", other characters and ranges, named
 * classes, "^", "[", "-".
 */
static int
class_emit(strbuf *out, const char_class *cls, int negated, const char **why)
{
	int close = 0, caret = 0, open = 0, dash = 0, first = 1;
	size_t i;

	sb_addc(out, '[');
	if (negated)
		sb_addc(out, '^');
	for (i = 0; i < cls->count; i++) {
		unsigned long lo = cls->ranges[i].lo, hi = cls->ranges[i].hi;

		if (lo != hi) {
			if ((lo < 0x80 && strchr("]-[^", (int)lo)) ||
			    (hi < 0x80 && strchr("]-[^", (int)hi))) {
				*why = "a range bounded by \"]\", \"-\", "
				       "\"[\" or \"^\" is not supported";
				return -1;
			}
			continue;
		}
		close |= lo == ']';
		caret |= lo == '^';
		open |= lo == '[';
		dash |= lo == '-';
	}
	if (close) {
		sb_addc(out, ']');
		first = 0;
	}
	for (i = 0; i < cls->count; i++) {
		unsigned long lo = cls->ranges[i].lo, hi = cls->ranges[i].hi;

		if (lo == hi && lo < 0x80 && strchr("]-[^", (int)lo))
			continue;
		first = 0;
		if (hi < 0x80 || lo == hi) {
			put_utf8(out, lo);
			if (lo != hi) {
				sb_addc(out, '-');
				put_utf8(out, hi);
			}
			continue;
		}
		if (class_emit_wide(out, lo, hi, why) < 0)
			return -1;
	}
	for (i = 0; i < cls->named_count; i++) {
		sb_adds(out, cls->named[i]);
		first = 0;
	}
	if (caret && first && !negated && !open && !dash) {
		/* "[^]" would mean something else: a lone caret. */
		sb_truncate(out, out->len - 1);
		sb_adds(out, "\\^");
		return 0;
	}
	if (caret && first && !negated) {
		/* Move "[" or "-" in front so that "^" is not first. */
		if (open) {
			sb_addc(out, '[');
			open = 0;
		} else {
			sb_addc(out, '-');
			dash = 0;
		}
	}
	if (caret)
		sb_addc(out, '^');
	if (open)
		sb_addc(out, '[');
	if (dash)
		sb_addc(out, '-');
	sb_addc(out, ']');
	return 0;
}

/* Read one class atom; *named is set for \d \w \s. */
static int
class_atom(const char **p, unsigned long *cp, const char **named,
           const char **why)
{
	const char *s = *p;
	int c;

	*named = NULL;
	if (*s != '\\') {
		/* A UTF-8 sequence is one character. */
		unsigned char b = (unsigned char)*s;
		int n = b < 0x80 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
		int i;

		*cp = b < 0x80   ? b
		      : b < 0xe0 ? b & 0x1f
		      : b < 0xf0 ? b & 0x0f
		                 : b & 0x07;
		for (i = 1; i < n; i++) {
			if (((unsigned char)s[i] & 0xc0) != 0x80) {
				*why = "invalid UTF-8";
				return -1;
			}
			*cp = (*cp << 6) | ((unsigned char)s[i] & 0x3f);
		}
		*p = s + n;
		return 0;
	}
	s++;
	switch (*s) {
	case 'd':
		*named = "0-9";
		break;
	case 'w':
		*named = "A-Za-z0-9_";
		break;
	case 's':
		*named = "[:space:]";
		break;
	case 'b':
		*cp = '\b'; /* in a class, \b is the backspace */
		break;
	case 'x':
	case 'u':
		if (read_code_escape(&s, cp) < 0) {
			*why = "a malformed \\x or \\u escape";
			return -1;
		}
		*p = s;
		return 0;
	case 'D':
	case 'W':
	case 'S':
		*why = "\\D, \\W and \\S inside brackets are not supported";
		return -1;
	default:
		if ((c = control_escape(*s)) >= 0) {
			*cp = (unsigned long)c;
		} else if (*s != '\0' && strchr("^$\\.*+?()[]{}|/-", *s)) {
			*cp = (unsigned char)*s;
		} else {
			*why = "an unsupported escape in brackets";
			return -1;
		}
	}
	*p = s + 1;
	return 0;
}

/* Translate "[...]"; `*p` points at "[" and is moved past "]". */
static int
translate_class(strbuf *out, const char **p, const char **why)
{
	char_class cls = {0};
	const char *s = *p + 1, *named;
	unsigned long lo, hi;
	int negated = 0;

	if (*s == '^') {
		negated = 1;
		s++;
	}
	if (*s == ']') {
		*why = "an empty class \"[]\" or \"[^]\" is not supported";
		return -1;
	}
	while (*s != ']') {
		if (*s == '\0') {
			*why = "an unterminated \"[\"";
			return -1;
		}
		if (class_atom(&s, &lo, &named, why) < 0)
			return -1;
		if (named) {
			if (class_add_named(&cls, named) < 0)
				goto too_big;
			continue;
		}
		hi = lo;
		/* A range a-b (ECMA-262 §21.2.2.15), unless "-" ends it. */
		if (s[0] == '-' && s[1] != ']' && s[1] != '\0') {
			s++;
			if (class_atom(&s, &hi, &named, why) < 0)
				return -1;
			if (named) {
				*why = "a range ending in a class escape";
				return -1;
			}
			if (hi < lo) {
				*why = "a range out of order";
				return -1;
			}
		}
		if (class_add(&cls, lo, hi) < 0)
			goto too_big;
	}
	*p = s + 1;
	return class_emit(out, &cls, negated, why);
too_big:
	*why = "a bracket expression with too many members";
	return -1;
}

/* "{n}", "{n,}" or "{n,m}" at p: its length, or 0 if it is literal. */
static size_t
quantifier_length(const char *p)
{
	const char *s = p + 1;

	if (*s < '0' || *s > '9')
		return 0;
	while (*s >= '0' && *s <= '9')
		s++;
	if (*s == ',') {
		s++;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '}' ? (size_t)(s - p + 1) : 0;
}

/* An escape outside brackets; `*p` points at the backslash. */
static int
translate_escape(strbuf *out, const char **p, const char **why)
{
	const char *s = *p + 1;
	unsigned long cp;
	int c;

	switch (*s) {
	case 'd':
		sb_adds(out, "[0-9]");
		break;
	case 'D':
		sb_adds(out, "[^0-9]");
		break;
	case 'w':
		sb_adds(out, "[A-Za-z0-9_]");
		break;
	case 'W':
		sb_adds(out, "[^A-Za-z0-9_]");
		break;
	case 's':
		sb_adds(out, "[[:space:]]");
		break;
	case 'S':
		sb_adds(out, "[^[:space:]]");
		break;
	case 'x':
	case 'u':
		if (read_code_escape(&s, &cp) < 0) {
			*why = "a malformed \\x or \\u escape";
			return -1;
		}
		put_literal(out, cp);
		*p = s;
		return 0;
	case 'b':
	case 'B':
		*why = "word boundaries (\\b, \\B) are not supported";
		return -1;
	default:
		if ((c = control_escape(*s)) >= 0) {
			put_literal(out, (unsigned long)c);
		} else if (*s >= '1' && *s <= '9') {
			*why = "back references are not supported";
			return -1;
		} else if (*s != '\0' && strchr("^$\\.*+?()[]{}|/-", *s)) {
			/* ECMA-262 §21.2.2.10 IdentityEscape */
			put_literal(out, (unsigned char)*s);
		} else {
			*why = "an unsupported escape";
			return -1;
		}
	}
	*p = s + 1;
	return 0;
}

/* After a quantifier, "?" makes it lazy: irrelevant to whether it matches. */
static const char *
skip_lazy(const char *s)
{
	return *s == '?' ? s + 1 : s;
}

/*
 * What a pattern costs the regex library.  glibc expands "x+" to "xx*" and
 * "x{n}" to n copies of x, so nested repetitions grow the automaton
 * geometrically ("b++++..." exhausts memory in regcomp()).  Each group
 * level counts its atoms with those expansions; a pattern over
 * PATTERN_COST_MAX is refused rather than compiled.
 */
#define PATTERN_COST_MAX   20000
#define PATTERN_GROUPS_MAX 32
#define PATTERN_REPEAT_MAX 1000

typedef struct {
	unsigned long total[PATTERN_GROUPS_MAX + 1]; /* the level so far */
	unsigned long last[PATTERN_GROUPS_MAX + 1];  /* its last atom */
	int depth;
	int can_repeat; /* an atom precedes: a quantifier may follow */
} pattern_cost;

static int
cost_add(pattern_cost *c, unsigned long size, const char **why)
{
	c->total[c->depth] += size;
	c->last[c->depth] = size;
	c->can_repeat = 1;
	if (c->total[c->depth] > PATTERN_COST_MAX) {
		*why = "the pattern is too complex";
		return -1;
	}
	return 0;
}

/* The last atom now appears `copies` times (x+ counts as two). */
static int
cost_repeat(pattern_cost *c, unsigned long copies, const char **why)
{
	unsigned long last = c->last[c->depth];

	/* ECMA-262 §21.2.1: a quantifier needs an atom ("nothing to repeat").
	 */
	if (!c->can_repeat) {
		*why = "a quantifier without anything to repeat";
		return -1;
	}
	c->can_repeat = 0;
	if (copies > 1 && last > PATTERN_COST_MAX / copies) {
		*why = "the pattern is too complex";
		return -1;
	}
	c->total[c->depth] += last * (copies - 1);
	c->last[c->depth] = last * copies;
	if (c->total[c->depth] > PATTERN_COST_MAX) {
		*why = "the pattern is too complex";
		return -1;
	}
	return 0;
}

static int
cost_open(pattern_cost *c, const char **why)
{
	if (c->depth == PATTERN_GROUPS_MAX) {
		*why = "groups nested too deeply";
		return -1;
	}
	c->depth++;
	c->total[c->depth] = 0;
	c->last[c->depth] = 0;
	c->can_repeat = 0;
	return 0;
}

static int
cost_close(pattern_cost *c, const char **why)
{
	unsigned long inner;

	if (c->depth == 0) {
		*why = "an unmatched \")\"";
		return -1;
	}
	inner = c->total[c->depth--];
	return cost_add(c, inner ? inner : 1, why);
}

/* The largest count of "{n}", "{n,}" or "{n,m}" (n for "{n,}"). */
static int
quantifier_count(const char *q, unsigned long *count, const char **why)
{
	unsigned long n, m;
	char *end;

	n = strtoul(q + 1, &end, 10);
	m = n;
	if (*end == ',' && end[1] != '}')
		m = strtoul(end + 1, &end, 10);
	if (n > PATTERN_REPEAT_MAX || m > PATTERN_REPEAT_MAX) {
		*why = "a repetition count above 1000";
		return -1;
	}
	if (m < n) {
		*why = "a repetition range out of order";
		return -1;
	}
	*count = m > 1 ? m : 1;
	return 0;
}

/* One piece of the pattern at `*s`; the result is appended to `out`. */
static int
translate_piece(strbuf *out, const char **p, pattern_cost *cost,
                const char **why)
{
	const char *s = *p;
	unsigned long count;
	size_t n;

	switch (*s) {
	case '\\':
		if (translate_escape(out, &s, why) < 0)
			return -1;
		break;
	case '[':
		if (translate_class(out, &s, why) < 0)
			return -1;
		break;
	case '.':
		sb_adds(out, "[^\n\r\xe2\x80\xa8\xe2\x80\xa9]");
		s++;
		break;
	case '(':
		if (s[1] == '?' && s[2] != ':') {
			*why = "lookaround and named groups are not supported";
			return -1;
		}
		sb_addc(out, '(');
		s += s[1] == '?' ? 3 : 1;
		*p = s;
		return cost_open(cost, why);
	case ')':
		sb_addc(out, ')');
		*p = s + 1;
		return cost_close(cost, why);
	case '|':
	case '^':
	case '$':
		sb_addc(out, *s);
		cost->can_repeat = 0;
		*p = s + 1;
		return 0;
	case '*':
	case '?':
	case '+':
		sb_addc(out, *s);
		*p = skip_lazy(s + 1);
		return cost_repeat(cost, *s == '+' ? 2 : 1, why);
	case '{':
		/* Annex B: a "{" that is no quantifier is literal. */
		if ((n = quantifier_length(s)) == 0) {
			sb_adds(out, "\\{");
			s++;
			break;
		}
		if (quantifier_count(s, &count, why) < 0)
			return -1;
		sb_add(out, s, n);
		*p = skip_lazy(s + n);
		return cost_repeat(cost, count, why);
	case '}':
	case ']':
		sb_addc(out, '\\');
		sb_addc(out, *s++);
		break;
	default:
		sb_addc(out, *s++);
	}
	*p = s;
	return cost_add(cost, 1, why);
}

/*
 * ECMA-262 patterns to POSIX EREs.  Only whether a pattern matches is
 * asked (core §6.4: patterns are not anchored), so greedy and lazy
 * quantifiers, capturing and non-capturing groups are the same thing.
 * "." excludes the line terminators as in ECMA-262 §21.2.2.8.
 */
static int
translate_pattern(strbuf *out, const char *src, const char **why)
{
	pattern_cost cost = {0};
	const char *s = src;

	while (*s)
		if (translate_piece(out, &s, &cost, why) < 0)
			return -1;
	if (cost.depth != 0) {
		*why = "an unterminated \"(\"";
		return -1;
	}
	return 0;
}

static void
pattern_entry_free(pattern_entry *e)
{
	if (e == NULL)
		return;
	if (e->compiled)
		regfree(&e->re);
	if (e->ascii_compiled)
		regfree(&e->re_ascii);
	free(e->pattern);
	free(e->problem);
	free(e);
}

static pattern_entry *
pattern_compile(const char *pattern)
{
	pattern_entry *e = NULL;
	strbuf ere = {0};
	const char *why = NULL;
	char message[256];
	locale_t previous;
	int rc;

	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (e->pattern = strdup(pattern)) == NULL)
		goto fail;
	if (translate_pattern(&ere, pattern, &why) < 0) {
		e->problem = strdup(why);
	} else if (ere.failed) {
		goto fail;
	} else {
		previous = utf8_enter();
		rc = regcomp(&e->re, sb_str(&ere), REG_EXTENDED | REG_NOSUB);
		if (rc != 0) {
			regerror(rc, &e->re, message, sizeof(message));
			e->problem = strdup(message);
		}
		utf8_leave(previous);
		e->compiled = rc == 0;
		if (e->compiled && c_locale && is_ascii(sb_str(&ere))) {
			previous = uselocale(c_locale);
			e->ascii_compiled =
				regcomp(&e->re_ascii, sb_str(&ere),
					REG_EXTENDED | REG_NOSUB) == 0;
			uselocale(previous);
		}
	}
	if (!e->compiled && e->problem == NULL)
		goto fail;
	free(ere.data);
	return e;
fail:
	free(ere.data);
	pattern_entry_free(e);
	return NULL;
}

static uint64_t
pattern_hash(const char *pattern)
{
	return hash_bytes(pattern, strlen(pattern), 0xcbf29ce484222325ULL);
}

static int
patterns_grow(cs_schema_set *set)
{
	size_t cap = set->patterns_cap ? set->patterns_cap * 2 : 64, i, j;
	pattern_entry **table;

	if ((table = calloc(cap, sizeof(*table))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	for (i = 0; i < set->patterns_cap; i++) {
		if (set->patterns[i] == NULL)
			continue;
		j = pattern_hash(set->patterns[i]->pattern) & (cap - 1);
		while (table[j])
			j = (j + 1) & (cap - 1);
		table[j] = set->patterns[i];
	}
	free(set->patterns);
	set->patterns = table;
	set->patterns_cap = cap;
	return 0;
}

/* The compiled pattern, from the cache or compiled now and cached. */
static int
pattern_get(pattern_entry **out, cs_schema_set *set, const char *pattern)
{
	size_t mask, i;
	int error;

	*out = NULL;
	if ((set->patterns_count + 1) * 2 > set->patterns_cap &&
	    (error = patterns_grow(set)) < 0)
		return error;
	mask = set->patterns_cap - 1;
	for (i = pattern_hash(pattern) & mask; set->patterns[i];
	     i = (i + 1) & mask) {
		if (strcmp(set->patterns[i]->pattern, pattern) == 0) {
			*out = set->patterns[i];
			return 0;
		}
	}
	if ((set->patterns[i] = pattern_compile(pattern)) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	set->patterns_count++;
	*out = set->patterns[i];
	return 0;
}

static int
pattern_matches(const pattern_entry *e, const char *s)
{
	locale_t previous;
	int rc;

	if (e->ascii_compiled && is_ascii(s)) {
		previous = uselocale(c_locale);
		rc = regexec(&e->re_ascii, s, 0, NULL, 0);
		uselocale(previous);
		return rc == 0;
	}
	previous = utf8_enter();
	rc = regexec(&e->re, s, 0, NULL, 0);
	utf8_leave(previous);
	return rc == 0;
}

/* ---------------------------------------------------------------------- */
/* References: "name#/json/pointer" (core §8.3, RFC 6901 §6) */

static long
doc_find(const cs_schema_set *set, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < set->docs_count; i++)
		if (strlen(set->docs[i].name) == len &&
		    memcmp(set->docs[i].name, name, len) == 0)
			return (long)i;
	return -1;
}

/* One pointer token, percent-decoded (RFC 3986 §2.1) then unescaped. */
static int
pointer_token(char *out, size_t outsize, const char *s, size_t len)
{
	size_t i, o = 0;
	int hi, lo;
	char c;

	for (i = 0; i < len; i++) {
		c = s[i];
		if (c == '%') {
			if (i + 2 >= len)
				return -1;
			if ((hi = hex_value(s[i + 1])) < 0 ||
			    (lo = hex_value(s[i + 2])) < 0)
				return -1;
			c = (char)(hi * 16 + lo);
			if (c == '\0')
				return -1;
			i += 2;
		}
		if (o + 1 >= outsize)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';

	/* RFC 6901 §4: ~1 then ~0, in that order. */
	for (i = 0, o = 0; out[i]; i++, o++) {
		if (out[i] == '~' && (out[i + 1] == '0' || out[i + 1] == '1')) {
			out[o] = out[i + 1] == '0' ? '~' : '/';
			i++;
		} else if (out[i] == '~') {
			return -1;
		} else {
			out[o] = out[i];
		}
	}
	out[o] = '\0';
	return 0;
}

static int
array_index(const char *token, size_t *index)
{
	char *end;
	unsigned long long v;

	/* RFC 6901 §4: digits without a leading zero. */
	if (token[0] < '0' || token[0] > '9' ||
	    (token[0] == '0' && token[1] != '\0'))
		return -1;
	v = strtoull(token, &end, 10);
	if (*end != '\0')
		return -1;
	*index = (size_t)v;
	return 0;
}

/* Follow a URI-fragment JSON pointer from `root`; NULL if it goes nowhere. */
static const json_t *
pointer_resolve(const json_t *root, const char *fragment)
{
	const json_t *at = root;
	const char *s = fragment, *end;
	char token[1024];
	size_t index;

	if (*s == '\0')
		return root;
	if (*s != '/')
		return NULL;
	while (*s == '/' && at) {
		s++;
		end = strchr(s, '/');
		if (end == NULL)
			end = s + strlen(s);
		if (pointer_token(token, sizeof(token), s, (size_t)(end - s)) <
		    0)
			return NULL;
		if (json_is_object(at))
			at = json_object_get(at, token);
		else if (json_is_array(at) && array_index(token, &index) == 0)
			at = json_array_get(at, index);
		else
			at = NULL;
		s = end;
	}
	return at;
}

/*
 * Resolve a reference made from document `from` (-1: from outside the
 * set).  Only "#pointer", "name" and "name#pointer" are understood; $id
 * base URIs are not (the set's names play their part).
 */
static const json_t *
ref_resolve(const cs_schema_set *set, long from, const char *ref, size_t *doc,
            const char **problem)
{
	const char *hash = strchr(ref, '#');
	size_t name_len = hash ? (size_t)(hash - ref) : strlen(ref);
	const char *fragment = hash ? hash + 1 : "";
	const json_t *target;
	long d = from;

	if (name_len > 0 || from < 0) {
		if ((d = doc_find(set, ref, name_len)) < 0) {
			*problem = "no document of that name in the set";
			return NULL;
		}
	}
	if (*fragment != '\0' && *fragment != '/') {
		*problem = "only JSON pointer fragments are supported";
		return NULL;
	}
	if ((target = pointer_resolve(set->docs[d].doc, fragment)) == NULL) {
		*problem = "no such location in the document";
		return NULL;
	}
	*doc = (size_t)d;
	return target;
}

/* ---------------------------------------------------------------------- */
/* Compiling documents into nodes */

typedef struct {
	cs_schema_set *set;
	compiled *c;
	int strict; /* a reachable schema: malformed is an error */
	int depth;
} compiler;

static int compile_node(node **out, compiler *cc, size_t doc,
                        const json_t *json, const char *location);

/* "name#/ptr" + "/key" */
static char *
location_child(const char *location, const char *key, long index)
{
	strbuf b = {0};

	sb_adds(&b, location);
	if (key)
		sb_pointer_push(&b, key);
	else
		sb_pointer_index(&b, (size_t)index);
	if (b.failed) {
		free(b.data);
		return NULL;
	}
	return b.data;
}

static int
compile_child(node **out, compiler *cc, const node *parent, const json_t *json,
              const char *key, long index)
{
	char *location = NULL;
	int error;

	*out = NULL;
	if ((location = location_child(parent->location, key, index)) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	error = compile_node(out, cc, parent->doc, json, location);
	free(location);
	return error;
}

/* A keyword's value is wrong: an error, or a broken node if lenient. */
static int
malformed(compiler *cc, node *n, const char *keyword, const char *what)
{
	if (cc->strict)
		return cs_error_set(CS_EINVALID, "schema \"%s\": \"%s\" %s",
		                    n->location, keyword, what);
	if (n->broken == NULL) {
		strbuf b = {0};

		sb_adds(&b, "\"");
		sb_adds(&b, keyword);
		sb_adds(&b, "\" ");
		sb_adds(&b, what);
		if (b.failed) {
			free(b.data);
			return cs_error_set(CS_ERROR, "out of memory");
		}
		n->broken = b.data;
	}
	return 1;
}

static int
is_schema_json(const json_t *v)
{
	return json_is_object(v) || json_is_boolean(v);
}

/*
 * Integral doubles, without libm (the library links none): from 2^53 up
 * every double is an integer, below it a cast to long long is exact.
 */
static int
is_integral(double r)
{
	if (!isfinite(r))
		return 0;
	if (fabs(r) >= 9007199254740992.0)
		return 1;
	return r == (double)(long long)r;
}

static double
nearest_integer(double r)
{
	if (fabs(r) >= 9007199254740992.0)
		return r;
	return (double)(long long)(r < 0 ? r - 0.5 : r + 0.5);
}

/* Non-negative integers (valid §6.3.1 etc.); 2.0 counts as 2. */
static int
get_count(long long *out, const json_t *v)
{
	double r;

	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		r = json_real_value(v);
		if (r >= 0 && r < 9e18 && is_integral(r)) {
			*out = (long long)r;
			return 0;
		}
	}
	return -1;
}

static int
type_bit(const char *name)
{
	static const struct {
		const char *name;
		int bit;
	} names[] = {
	        {"null", T_NULL},       {"boolean", T_BOOLEAN},
	        {"object", T_OBJECT},   {"array", T_ARRAY},
	        {"number", T_NUMBER},   {"string", T_STRING},
	        {"integer", T_INTEGER},
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i].name) == 0)
			return names[i].bit;
	return 0;
}

/* valid §6.1.1: a type name or an array of unique type names. */
static int
compile_type(compiler *cc, node *n, const json_t *v)
{
	const json_t *item;
	size_t i;
	int bit;

	if (json_is_string(v)) {
		if ((n->types = (unsigned)type_bit(json_string_value(v))) == 0)
			return malformed(cc, n, "type", "names no known type");
		return 0;
	}
	if (!json_is_array(v) || json_array_size(v) == 0)
		return malformed(cc, n, "type",
		                 "must be a type name or a "
		                 "non-empty array of them");
	json_array_foreach(v, i, item) {
		if (!json_is_string(item) ||
		    (bit = type_bit(json_string_value(item))) == 0)
			return malformed(cc, n, "type", "names no known type");
		n->types |= (unsigned)bit;
	}
	return 0;
}

static int
compile_list(compiler *cc, node *n, const char *keyword, const json_t *v,
             node_list *list)
{
	const json_t *item;
	char *location;
	size_t i;
	int error;

	if (!json_is_array(v) || json_array_size(v) == 0)
		return malformed(cc, n, keyword,
		                 "must be a non-empty array of schemas");
	if ((list->items = calloc(json_array_size(v), sizeof(node *))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	if ((location = location_child(n->location, keyword, 0)) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	json_array_foreach(v, i, item) {
		char *child;

		if (!is_schema_json(item)) {
			free(location);
			return malformed(cc, n, keyword,
			                 "must be an array of schemas");
		}
		if ((child = location_child(location, NULL, (long)i)) == NULL) {
			free(location);
			return cs_error_set(CS_ERROR, "out of memory");
		}
		error = compile_node(&list->items[i], cc, n->doc, item, child);
		free(child);
		if (error < 0) {
			free(location);
			return error;
		}
		list->count++;
	}
	free(location);
	return 0;
}

/* A keyword whose value is one schema. */
static int
compile_single(compiler *cc, node *n, const char *keyword, const json_t *v,
               node **out)
{
	if (!is_schema_json(v))
		return malformed(cc, n, keyword, "must be a schema");
	return compile_child(out, cc, n, v, keyword, 0);
}

/* "properties", "definitions", "$defs": an object of schemas. */
static int
compile_schema_map(compiler *cc, node *n, const char *keyword, const json_t *v,
                   named_node **out, size_t *count)
{
	const char *key;
	json_t *item;
	char *location;
	size_t i = 0;
	int error = 0;

	if (!json_is_object(v))
		return malformed(cc, n, keyword,
		                 "must be an object of schemas");
	if (out && json_object_size(v) > 0 &&
	    (*out = calloc(json_object_size(v), sizeof(**out))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	if ((location = location_child(n->location, keyword, 0)) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	json_object_foreach((json_t *)v, key, item) {
		char *child;
		node *compiled_item;

		if (!is_schema_json(item)) {
			error = malformed(cc, n, keyword,
			                  "must be an object of schemas");
			break;
		}
		if ((child = location_child(location, key, 0)) == NULL) {
			error = cs_error_set(CS_ERROR, "out of memory");
			break;
		}
		error = compile_node(&compiled_item, cc, n->doc, item, child);
		free(child);
		if (error < 0)
			break;
		if (out) {
			(*out)[i].name = key;
			(*out)[i].schema = compiled_item;
			i++;
			*count = i;
		}
	}
	free(location);
	return error;
}

static int
compile_pattern_properties(compiler *cc, node *n, const json_t *v)
{
	named_node *schemas = NULL;
	size_t count = 0, i;
	pattern_entry *e;
	int error;

	error = compile_schema_map(cc, n, "patternProperties", v, &schemas,
	                           &count);
	if (error != 0)
		goto done;
	if (count > 0 && (n->pattern_properties = calloc(
	                          count, sizeof(pattern_node))) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	for (i = 0; i < count; i++) {
		if ((error = pattern_get(&e, cc->set, schemas[i].name)) < 0)
			goto done;
		if (!e->compiled) {
			error = cc->strict
			                ? cs_error_set(CS_EINVALID,
			                               "schema \"%s\": pattern "
			                               "\"%s\" does not "
			                               "compile: %s",
			                               n->location, e->pattern,
			                               e->problem)
			                : malformed(cc, n, "patternProperties",
			                            "holds a pattern that does "
			                            "not compile");
			goto done;
		}
		n->pattern_properties[i].pattern = schemas[i].name;
		n->pattern_properties[i].re = e;
		n->pattern_properties[i].schema = schemas[i].schema;
		n->pattern_properties_count++;
	}
done:
	free(schemas);
	return error;
}

static int
compile_pattern(compiler *cc, node *n, const json_t *v)
{
	pattern_entry *e;
	int error;

	if (!json_is_string(v) ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return malformed(cc, n, "pattern", "must be a string");
	if ((error = pattern_get(&e, cc->set, json_string_value(v))) < 0)
		return error;
	if (!e->compiled) {
		if (cc->strict)
			return cs_error_set(CS_EINVALID,
			                    "schema \"%s\": pattern \"%s\" "
			                    "does not compile: %s",
			                    n->location, e->pattern,
			                    e->problem);
		return malformed(cc, n, "pattern", "does not compile");
	}
	n->pattern = e->pattern;
	n->pattern_re = e;
	return 0;
}

static int
is_string_array(const json_t *v)
{
	const json_t *item;
	size_t i;

	if (!json_is_array(v))
		return 0;
	json_array_foreach(v, i, item) {
		if (!json_is_string(item))
			return 0;
	}
	return 1;
}

/* valid §6.5.7: each value is an array of names or a schema. */
static int
compile_dependencies(compiler *cc, node *n, const json_t *v)
{
	const char *key;
	json_t *item;
	dependency *d;
	int error;

	if (!json_is_object(v))
		return malformed(cc, n, "dependencies", "must be an object");
	if (json_object_size(v) == 0)
		return 0;
	if ((n->dependencies =
	             calloc(json_object_size(v), sizeof(dependency))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	json_object_foreach((json_t *)v, key, item) {
		d = &n->dependencies[n->dependencies_count];
		d->name = key;
		if (is_string_array(item)) {
			d->names = item;
		} else if (is_schema_json(item)) {
			char *location, *child;

			location =
			        location_child(n->location, "dependencies", 0);
			if (location == NULL)
				return cs_error_set(CS_ERROR, "out of memory");
			child = location_child(location, key, 0);
			free(location);
			if (child == NULL)
				return cs_error_set(CS_ERROR, "out of memory");
			error = compile_node(&d->schema, cc, n->doc, item,
			                     child);
			free(child);
			if (error < 0)
				return error;
		} else {
			return malformed(cc, n, "dependencies",
			                 "must map names to arrays of names or "
			                 "to schemas");
		}
		n->dependencies_count++;
	}
	return 0;
}

static int
compile_number(compiler *cc, node *n, const char *keyword, const json_t *v,
               const json_t **out)
{
	if (!json_is_number(v))
		return malformed(cc, n, keyword, "must be a number");
	*out = v;
	return 0;
}

static int
compile_counts(compiler *cc, node *n, const json_t *schema)
{
	static const struct {
		const char *keyword;
		size_t offset;
	} counts[] = {
	        {"minLength", offsetof(node, min_length)},
	        {"maxLength", offsetof(node, max_length)},
	        {"minItems", offsetof(node, min_items)},
	        {"maxItems", offsetof(node, max_items)},
	        {"minProperties", offsetof(node, min_properties)},
	        {"maxProperties", offsetof(node, max_properties)},
	};
	const json_t *v;
	size_t i;

	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		long long *field = (long long *)((char *)n + counts[i].offset);

		*field = -1;
		if ((v = json_object_get(schema, counts[i].keyword)) == NULL)
			continue;
		if (get_count(field, v) < 0)
			return malformed(cc, n, counts[i].keyword,
			                 "must be a non-negative integer");
	}
	return 0;
}

static int
compile_numbers(compiler *cc, node *n, const json_t *schema)
{
	const json_t *v;
	int error;

	if ((v = json_object_get(schema, "minimum")) &&
	    (error = compile_number(cc, n, "minimum", v, &n->minimum)))
		return error;
	if ((v = json_object_get(schema, "maximum")) &&
	    (error = compile_number(cc, n, "maximum", v, &n->maximum)))
		return error;
	if ((v = json_object_get(schema, "exclusiveMinimum")) &&
	    (error = compile_number(cc, n, "exclusiveMinimum", v,
	                            &n->exclusive_minimum)))
		return error;
	if ((v = json_object_get(schema, "exclusiveMaximum")) &&
	    (error = compile_number(cc, n, "exclusiveMaximum", v,
	                            &n->exclusive_maximum)))
		return error;
	if ((v = json_object_get(schema, "multipleOf"))) {
		/* valid §6.2.1: strictly greater than 0 */
		if (!json_is_number(v) || json_number_value(v) <= 0)
			return malformed(cc, n, "multipleOf",
			                 "must be a number above 0");
		n->multiple_of = v;
	}
	return 0;
}

static int
compile_ref(compiler *cc, node *n, const json_t *v)
{
	const json_t *target;
	const char *fragment;
	size_t doc;
	char *location = NULL;
	int error;

	if (!json_is_string(v))
		return malformed(cc, n, "$ref", "must be a string");
	n->ref = json_string_value(v);
	target = ref_resolve(cc->set, (long)n->doc, n->ref, &doc,
	                     &n->ref_problem);
	/* An unresolved reference fails when validation reaches it. */
	if (target == NULL)
		return 0;
	if (!is_schema_json(target)) {
		n->ref_problem = "the location holds no schema";
		return 0;
	}
	fragment = strchr(n->ref, '#');
	if (asprintf(&location, "%s#%s", cc->set->docs[doc].name,
	             fragment ? fragment + 1 : "") < 0)
		return cs_error_set(CS_ERROR, "out of memory");
	error = compile_node(&n->ref_target, cc, doc, target, location);
	free(location);
	return error;
}

static int
compile_object_keywords(compiler *cc, node *n)
{
	const json_t *s = n->json, *v;
	int error;

	if ((v = json_object_get(s, "properties"))) {
		n->properties_json = v;
		if ((error = compile_schema_map(cc, n, "properties", v,
		                                &n->properties,
		                                &n->properties_count)))
			return error;
	}
	if ((v = json_object_get(s, "patternProperties")) &&
	    (error = compile_pattern_properties(cc, n, v)))
		return error;
	if ((v = json_object_get(s, "additionalProperties")) &&
	    (error = compile_single(cc, n, "additionalProperties", v,
	                            &n->additional_properties)))
		return error;
	if ((v = json_object_get(s, "required"))) {
		if (!is_string_array(v))
			return malformed(cc, n, "required",
			                 "must be an array of names");
		n->required = v;
	}
	if ((v = json_object_get(s, "propertyNames")) &&
	    (error = compile_single(cc, n, "propertyNames", v,
	                            &n->property_names)))
		return error;
	if ((v = json_object_get(s, "dependencies")) &&
	    (error = compile_dependencies(cc, n, v)))
		return error;
	return 0;
}

static int
compile_array_keywords(compiler *cc, node *n)
{
	const json_t *s = n->json, *v;
	int error;

	if ((v = json_object_get(s, "items"))) {
		if (json_is_array(v)) {
			n->has_item_list = 1;
			if (json_array_size(v) > 0 &&
			    (error = compile_list(cc, n, "items", v,
			                          &n->item_list)))
				return error;
		} else if ((error = compile_single(cc, n, "items", v,
		                                   &n->items))) {
			return error;
		}
	}
	if ((v = json_object_get(s, "additionalItems")) &&
	    (error = compile_single(cc, n, "additionalItems", v,
	                            &n->additional_items)))
		return error;
	if ((v = json_object_get(s, "contains")) &&
	    (error = compile_single(cc, n, "contains", v, &n->contains)))
		return error;
	if ((v = json_object_get(s, "uniqueItems"))) {
		if (!json_is_boolean(v))
			return malformed(cc, n, "uniqueItems",
			                 "must be a boolean");
		n->unique_items = json_is_true(v);
	}
	return 0;
}

static int
compile_logic_keywords(compiler *cc, node *n)
{
	const json_t *s = n->json, *v;
	int error;

	if ((v = json_object_get(s, "allOf")) &&
	    (error = compile_list(cc, n, "allOf", v, &n->all_of)))
		return error;
	if ((v = json_object_get(s, "anyOf")) &&
	    (error = compile_list(cc, n, "anyOf", v, &n->any_of)))
		return error;
	if ((v = json_object_get(s, "oneOf")) &&
	    (error = compile_list(cc, n, "oneOf", v, &n->one_of)))
		return error;
	if ((v = json_object_get(s, "not")) &&
	    (error = compile_single(cc, n, "not", v, &n->not_schema)))
		return error;
	if ((v = json_object_get(s, "if")) &&
	    (error = compile_single(cc, n, "if", v, &n->if_schema)))
		return error;
	if ((v = json_object_get(s, "then")) &&
	    (error = compile_single(cc, n, "then", v, &n->then_schema)))
		return error;
	if ((v = json_object_get(s, "else")) &&
	    (error = compile_single(cc, n, "else", v, &n->else_schema)))
		return error;
	return 0;
}

/* The keywords of a schema object; > 0 if lenient and broken. */
static int
compile_keywords(compiler *cc, node *n)
{
	const json_t *s = n->json, *v;
	int error;

	/* valid §9: "definitions" holds schemas to refer to. */
	if ((v = json_object_get(s, "definitions")) &&
	    (error = compile_schema_map(cc, n, "definitions", v, NULL, NULL)))
		return error;
	if ((v = json_object_get(s, "$defs")) &&
	    (error = compile_schema_map(cc, n, "$defs", v, NULL, NULL)))
		return error;

	/* core §8.3: with "$ref", every other keyword is ignored. */
	if ((v = json_object_get(s, "$ref")))
		return compile_ref(cc, n, v);

	if ((v = json_object_get(s, "type")) &&
	    (error = compile_type(cc, n, v)))
		return error;
	if ((v = json_object_get(s, "enum"))) {
		if (!json_is_array(v))
			return malformed(cc, n, "enum", "must be an array");
		n->enum_values = v;
	}
	n->const_value = json_object_get(s, "const");
	if ((v = json_object_get(s, "title")) && json_is_string(v))
		n->title = json_string_value(v);
	if ((error = compile_numbers(cc, n, s)) ||
	    (error = compile_counts(cc, n, s)))
		return error;
	if ((v = json_object_get(s, "pattern")) &&
	    (error = compile_pattern(cc, n, v)))
		return error;
	if ((error = compile_object_keywords(cc, n)) ||
	    (error = compile_array_keywords(cc, n)) ||
	    (error = compile_logic_keywords(cc, n)))
		return error;
	return 0;
}

/*
 * The node of a schema, compiled once per (document, value): registered
 * before its children so that a $ref cycle finds it.
 */
static int
compile_node(node **out, compiler *cc, size_t doc, const json_t *json,
             const char *location)
{
	node *n;
	int error;

	*out = NULL;
	if ((n = compiled_find(cc->c, doc, json)) != NULL) {
		*out = n;
		return 0;
	}
	if (cc->depth >= MAX_RECURSION)
		return cs_error_set(CS_ELIMIT,
		                    "schema \"%s\": nested deeper "
		                    "than %d levels",
		                    location, MAX_RECURSION);
	if ((n = calloc(1, sizeof(*n))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	n->doc = doc;
	n->json = json;
	n->boolean = json_is_object(json) ? -1 : json_is_true(json);
	if ((n->location = strdup(location)) == NULL) {
		free(n);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	if ((error = compiled_add(cc->c, n)) < 0) {
		node_free(n);
		return error;
	}
	*out = n;
	if (n->boolean >= 0)
		return 0;

	cc->depth++;
	error = compile_keywords(cc, n);
	cc->depth--;
	return error < 0 ? error : 0;
}

/*
 * Every object and boolean of a document not reached as a schema yet
 * (inside unknown keywords, or data under "enum"), compiled leniently:
 * validation may still be asked to start there ("name#/pointer").
 */
static int
compile_sweep(compiler *cc, size_t doc, const json_t *json, strbuf *ptr)
{
	const char *key;
	json_t *child;
	size_t mark = ptr->len, i;
	node *n;
	int error = 0;

	if (is_schema_json(json) && !compiled_find(cc->c, doc, json)) {
		char *location = NULL;

		if (asprintf(&location, "%s#%s", cc->set->docs[doc].name,
		             sb_str(ptr)) < 0)
			return cs_error_set(CS_ERROR, "out of memory");
		error = compile_node(&n, cc, doc, json, location);
		free(location);
		if (error < 0)
			return error;
	}
	if (json_is_object(json)) {
		json_object_foreach((json_t *)json, key, child) {
			sb_pointer_push(ptr, key);
			error = compile_sweep(cc, doc, child, ptr);
			sb_truncate(ptr, mark);
			if (error < 0)
				return error;
		}
	} else if (json_is_array(json)) {
		json_array_foreach(json, i, child) {
			sb_pointer_index(ptr, i);
			error = compile_sweep(cc, doc, child, ptr);
			sb_truncate(ptr, mark);
			if (error < 0)
				return error;
		}
	}
	return ptr->failed ? cs_error_set(CS_ERROR, "out of memory") : 0;
}

static int
compile_set(compiled **out, cs_schema_set *set)
{
	compiler cc = {0};
	strbuf ptr = {0};
	size_t i;
	node *root;
	char *location = NULL;
	int error = 0;

	*out = NULL;
	cc.set = set;
	if ((cc.c = calloc(1, sizeof(*cc.c))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");

	/* First every schema reachable from a root: those must be valid. */
	cc.strict = 1;
	for (i = 0; i < set->docs_count; i++) {
		free(location);
		location = NULL;
		if (asprintf(&location, "%s#", set->docs[i].name) < 0) {
			error = cs_error_set(CS_ERROR, "out of memory");
			goto done;
		}
		if ((error = compile_node(&root, &cc, i, set->docs[i].doc,
		                          location)) < 0)
			goto done;
	}

	cc.strict = 0;
	for (i = 0; i < set->docs_count; i++) {
		sb_truncate(&ptr, 0);
		sb_add(&ptr, "", 0);
		if ((error = compile_sweep(&cc, i, set->docs[i].doc, &ptr)) < 0)
			goto done;
	}

	*out = cc.c;
	cc.c = NULL; /* transferred */
done:
	free(location);
	free(ptr.data);
	compiled_free(cc.c);
	return error;
}

/* ---------------------------------------------------------------------- */
/* Sets */

int
cs_schema_set_new(cs_schema_set **out)
{
	cs_schema_set *set;

	*out = NULL;
	if ((set = calloc(1, sizeof(*set))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	*out = set;
	return 0;
}

void
cs_schema_set_free(cs_schema_set *set)
{
	size_t i;

	if (set == NULL)
		return;
	compiled_free(set->compiled);
	for (i = 0; i < set->docs_count; i++) {
		free(set->docs[i].name);
		json_decref(set->docs[i].doc);
	}
	free(set->docs);
	for (i = 0; i < set->patterns_cap; i++)
		pattern_entry_free(set->patterns[i]);
	free(set->patterns);
	free(set);
}

int
cs_schema_set_add_all(cs_schema_set *set, size_t n, const char *const *names,
                      json_t *const *docs)
{
	size_t before = set->docs_count, i;
	compiled *c = NULL;
	int error = 0;

	for (i = 0; i < n; i++) {
		if (!is_schema_json(docs[i]))
			return cs_error_set(CS_EINVALID,
			                    "schema \"%s\": not an object "
			                    "or boolean schema",
			                    names[i]);
		if (strchr(names[i], '#') || names[i][0] == '\0')
			return cs_error_set(CS_EINVALID,
			                    "invalid schema name \"%s\"",
			                    names[i]);
	}
	if (set->docs_count + n > set->docs_cap) {
		size_t cap = set->docs_cap ? set->docs_cap : 8;
		document *grown;

		while (cap < set->docs_count + n)
			cap *= 2;
		if ((grown = realloc(set->docs, cap * sizeof(*grown))) == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		set->docs = grown;
		set->docs_cap = cap;
	}
	for (i = 0; i < n && error == 0; i++) {
		/* Names taken before, or earlier in this call. */
		if (doc_find(set, names[i], strlen(names[i])) >= 0)
			error = cs_error_set(CS_EEXISTS,
			                     "schema \"%s\" exists already",
			                     names[i]);
		else if ((set->docs[set->docs_count].name = strdup(names[i])) ==
		         NULL)
			error = cs_error_set(CS_ERROR, "out of memory");
		else
			set->docs[set->docs_count++].doc = json_incref(docs[i]);
	}
	/* One compilation for the whole call. */
	if (error == 0 && (error = compile_set(&c, set)) == 0) {
		compiled_free(set->compiled);
		set->compiled = c;
		return 0;
	}
	/* Leave the set as it was. */
	while (set->docs_count > before) {
		set->docs_count--;
		free(set->docs[set->docs_count].name);
		json_decref(set->docs[set->docs_count].doc);
	}
	return error;
}

int
cs_schema_set_add(cs_schema_set *set, const char *name, json_t *doc)
{
	return cs_schema_set_add_all(set, 1, &name, &doc);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
has_json_suffix(const char *name)
{
	size_t len = strlen(name);

	return len > 5 && strcmp(name + len - 5, ".json") == 0 &&
	       name[0] != '.';
}

int
cs_schema_set_load_dir(cs_schema_set *set, const char *dir)
{
	DIR *d = NULL;
	struct dirent *entry;
	char **names = NULL, **grown, *path = NULL;
	size_t count = 0, cap = 0, i;
	json_t **docs = NULL;
	int error = 0;

	if ((d = opendir(dir)) == NULL) {
		error = cs_error_set(errno == ENOENT ? CS_ENOTFOUND : CS_ERROR,
		                     "cannot open \"%s\": %s", dir,
		                     strerror(errno));
		goto done;
	}
	while ((entry = readdir(d)) != NULL) {
		if (!has_json_suffix(entry->d_name))
			continue;
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			if ((grown = realloc(names, cap * sizeof(*names))) ==
			    NULL) {
				error = cs_error_set(CS_ERROR, "out of memory");
				goto done;
			}
			names = grown;
		}
		if ((names[count] = strdup(entry->d_name)) == NULL) {
			error = cs_error_set(CS_ERROR, "out of memory");
			goto done;
		}
		count++;
	}
	/* Sorted, so that an error names the same file every time. */
	if (count > 0)
		qsort(names, count, sizeof(*names), name_cmp);
	if (count > 0 && (docs = calloc(count, sizeof(*docs))) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	for (i = 0; i < count; i++) {
		free(path);
		path = NULL;
		if (asprintf(&path, "%s/%s", dir, names[i]) < 0) {
			path = NULL;
			error = cs_error_set(CS_ERROR, "out of memory");
			goto done;
		}
		if ((error = cs_json_load_file(&docs[i], path)) < 0)
			goto done;
	}
	error = cs_schema_set_add_all(set, count, (const char *const *)names,
	                              docs);
done:
	free(path);
	for (i = 0; i < count; i++) {
		free(names[i]);
		if (docs)
			json_decref(docs[i]);
	}
	free(names);
	free(docs);
	if (d)
		closedir(d);
	return error;
}

const json_t *
cs_schema_set_get(const cs_schema_set *set, const char *name)
{
	long d = doc_find(set, name, strlen(name));

	return d < 0 ? NULL : set->docs[d].doc;
}

void
cs_schema_errors_clear(cs_schema_errors *errors)
{
	size_t i;

	if (errors == NULL)
		return;
	for (i = 0; i < errors->count; i++) {
		free(errors->items[i].pointer);
		free(errors->items[i].message);
	}
	free(errors->items);
	errors->items = NULL;
	errors->count = 0;
}

/* ---------------------------------------------------------------------- */
/* Instances: equality, types, describing values in messages */

/* core §4.2.2: numbers are equal if mathematically equal (1 == 1.0). */
static int
numbers_compare(const json_t *a, const json_t *b)
{
	long double x, y;

	if (json_is_integer(a) && json_is_integer(b)) {
		json_int_t i = json_integer_value(a), j = json_integer_value(b);

		return (i > j) - (i < j);
	}
	/* A long double holds every json_int_t and every double exactly. */
	x = json_is_integer(a) ? (long double)json_integer_value(a)
	                       : (long double)json_real_value(a);
	y = json_is_integer(b) ? (long double)json_integer_value(b)
	                       : (long double)json_real_value(b);
	return (x > y) - (x < y);
}

static int
json_equal_values(const json_t *a, const json_t *b)
{
	const char *key;
	json_t *va;
	size_t i;

	if (json_is_number(a) && json_is_number(b))
		return numbers_compare(a, b) == 0;
	if (json_typeof(a) != json_typeof(b))
		return 0;
	switch (json_typeof(a)) {
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		       memcmp(json_string_value(a), json_string_value(b),
		              json_string_length(a)) == 0;
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return 0;
		for (i = 0; i < json_array_size(a); i++)
			if (!json_equal_values(json_array_get(a, i),
			                       json_array_get(b, i)))
				return 0;
		return 1;
	case JSON_OBJECT:
		if (json_object_size(a) != json_object_size(b))
			return 0;
		json_object_foreach((json_t *)a, key, va) {
			const json_t *vb = json_object_get(b, key);

			if (vb == NULL || !json_equal_values(va, vb))
				return 0;
		}
		return 1;
	default:
		return 1; /* true, false, null: the type says it all */
	}
}

/* A hash consistent with json_equal_values(), for uniqueItems. */
static uint64_t
json_hash_value(const json_t *v)
{
	uint64_t h = 0xcbf29ce484222325ULL, sum = 0;
	const char *key;
	json_t *child;
	double d;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_INTEGER:
	case JSON_REAL:
		d = json_number_value(v);
		if (d == 0)
			d = 0; /* -0 */
		return hash_bytes(&d, sizeof(d), h ^ 1);
	case JSON_STRING:
		return hash_bytes(json_string_value(v), json_string_length(v),
		                  h ^ 2);
	case JSON_ARRAY:
		h ^= 3;
		json_array_foreach(v, i, child) {
			uint64_t c = json_hash_value(child);

			h = hash_bytes(&c, sizeof(c), h);
		}
		return h;
	case JSON_OBJECT:
		/* Member order does not matter: add the members' hashes. */
		json_object_foreach((json_t *)v, key, child) {
			uint64_t c = json_hash_value(child);

			sum += hash_bytes(&c, sizeof(c),
			                  hash_bytes(key, strlen(key), h));
		}
		return hash_bytes(&sum, sizeof(sum), h ^ 4);
	default:
		return h ^ (uint64_t)(json_typeof(v) + 8);
	}
}

/* The T_* bits an instance satisfies (core §6.3: 1.0 is an integer). */
static unsigned
instance_types(const json_t *v)
{
	double r;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return T_OBJECT;
	case JSON_ARRAY:
		return T_ARRAY;
	case JSON_STRING:
		return T_STRING;
	case JSON_INTEGER:
		return T_NUMBER | T_INTEGER;
	case JSON_REAL:
		r = json_real_value(v);
		return is_integral(r) ? T_NUMBER | T_INTEGER : T_NUMBER;
	case JSON_TRUE:
	case JSON_FALSE:
		return T_BOOLEAN;
	case JSON_NULL:
		return T_NULL;
	}
	return 0;
}

static const char *
type_phrase(unsigned bit)
{
	switch (bit) {
	case T_NULL:
		return "null";
	case T_BOOLEAN:
		return "a boolean";
	case T_OBJECT:
		return "an object";
	case T_ARRAY:
		return "an array";
	case T_NUMBER:
		return "a number";
	case T_STRING:
		return "a string";
	case T_INTEGER:
		return "an integer";
	}
	return "a value";
}

static const char *
instance_phrase(const json_t *v)
{
	unsigned t = instance_types(v);

	return type_phrase(t & T_NUMBER ? T_NUMBER : t);
}

/* A number as written in a message. */
static void
describe_number(strbuf *b, const json_t *v)
{
	char num[64];

	if (json_is_integer(v))
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
		         json_integer_value(v));
	else
		snprintf(num, sizeof(num), "%.15g", json_real_value(v));
	sb_adds(b, num);
}

/* A string quoted on one line, cut after QUOTE_MAX code points. */
static void
describe_string(strbuf *b, const char *s, size_t len)
{
	size_t i, points = 0;
	char esc[8];

	sb_addc(b, '"');
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c & 0xc0) != 0x80 && points++ == QUOTE_MAX) {
			sb_adds(b, "...");
			break;
		}
		if (c == '"' || c == '\\') {
			sb_addc(b, '\\');
			sb_addc(b, (char)c);
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			sb_adds(b, esc);
		} else {
			sb_addc(b, (char)c);
		}
	}
	sb_addc(b, '"');
}

/* A value in a message: scalars written out, containers named. */
static void
describe_value(strbuf *b, const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		describe_string(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
	case JSON_REAL:
		describe_number(b, v);
		break;
	case JSON_TRUE:
		sb_adds(b, "true");
		break;
	case JSON_FALSE:
		sb_adds(b, "false");
		break;
	case JSON_NULL:
		sb_adds(b, "null");
		break;
	case JSON_OBJECT:
		sb_adds(b, "the object");
		break;
	case JSON_ARRAY:
		sb_adds(b, "the array");
		break;
	}
}

/* ---------------------------------------------------------------------- */
/* Validation */

typedef struct {
	cs_schema_errors *errors; /* NULL: only the verdict is wanted */
	size_t found;
	size_t limit;
	strbuf ptr; /* the instance location being checked */
	int depth;
} validator;

enum { VALID = 0, INVALID = 1 };

/*
 * Record a failure at the current instance location.  The message is
 * built by the caller in `msg`.  Returns INVALID, or CS_ERROR.
 */
static int
report(validator *v, strbuf *msg)
{
	cs_schema_error *grown;
	char *pointer = NULL;

	if (msg->failed || v->ptr.failed)
		return cs_error_set(CS_ERROR, "out of memory");
	if (v->found == 0)
		cs_error_set(CS_EINVALID, "%s%s%s", sb_str(&v->ptr),
		             v->ptr.len ? ": " : "", sb_str(msg));
	v->found++;
	if (v->errors == NULL)
		return INVALID;
	grown = realloc(v->errors->items,
	                (v->errors->count + 1) * sizeof(*grown));
	if (grown == NULL || (pointer = strdup(sb_str(&v->ptr))) == NULL) {
		if (grown)
			v->errors->items = grown;
		return cs_error_set(CS_ERROR, "out of memory");
	}
	v->errors->items = grown;
	grown[v->errors->count].pointer = pointer;
	grown[v->errors->count].message = msg->data;
	msg->data = NULL; /* transferred */
	v->errors->count++;
	return INVALID;
}

static int
full(const validator *v)
{
	return v->found >= v->limit;
}

/* report() with a printf-style message; `quiet` only returns INVALID. */
static int fail(validator *v, int quiet, const json_t *value, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

/*
 * `value`, when given, is described at the start of the message:
 * fail(v, q, inst, "is not ...") gives "\"MA-99\" is not ...".
 */
static int
fail(validator *v, int quiet, const json_t *value, const char *fmt, ...)
{
	strbuf msg = {0};
	char *text = NULL;
	va_list ap;
	int rc;

	if (quiet || full(v))
		return INVALID;
	if (value) {
		describe_value(&msg, value);
		sb_addc(&msg, ' ');
	}
	va_start(ap, fmt);
	rc = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return cs_error_set(CS_ERROR, "out of memory");
	sb_adds(&msg, text);
	free(text);
	rc = report(v, &msg);
	free(msg.data);
	return rc;
}

/*
 * Combine a keyword's result into a node's: an error (< 0) wins, then
 * INVALID.  Returns nonzero when checking the node should stop.
 */
static int
merge(int *result, int rc, int quiet, const validator *v)
{
	if (rc < 0) {
		*result = rc;
		return 1;
	}
	if (rc == INVALID)
		*result = INVALID;
	return *result == INVALID && (quiet || full(v));
}

static int validate_node(validator *v, const node *n, const json_t *inst,
                         int quiet);

static int
validate_at_key(validator *v, const node *n, const json_t *inst,
                const char *key, int quiet)
{
	size_t mark = v->ptr.len;
	int rc;

	sb_pointer_push(&v->ptr, key);
	rc = validate_node(v, n, inst, quiet);
	sb_truncate(&v->ptr, mark);
	return rc;
}

static int
validate_at_index(validator *v, const node *n, const json_t *inst, size_t index,
                  int quiet)
{
	size_t mark = v->ptr.len;
	int rc;

	sb_pointer_index(&v->ptr, index);
	rc = validate_node(v, n, inst, quiet);
	sb_truncate(&v->ptr, mark);
	return rc;
}

/* "1 item", "2 items"; "property" becomes "properties". */
static void
plural(char *buf, size_t size, long long count, const char *noun)
{
	size_t len = strlen(noun);

	if (count == 1)
		snprintf(buf, size, "%lld %s", count, noun);
	else if (len > 0 && noun[len - 1] == 'y')
		snprintf(buf, size, "%lld %.*sies", count, (int)len - 1, noun);
	else
		snprintf(buf, size, "%lld %ss", count, noun);
}

/* valid §6.1.1 */
static int
check_type(validator *v, const node *n, const json_t *inst, int quiet)
{
	strbuf want = {0};
	unsigned have = instance_types(inst), bit, left;
	int rc;

	if (n->types == 0 || (n->types & have))
		return VALID;
	if (quiet)
		return INVALID;
	for (bit = 1, left = n->types; left; bit <<= 1) {
		if (!(left & bit))
			continue;
		left &= ~bit;
		if (want.len)
			sb_adds(&want, left ? ", " : " or ");
		sb_adds(&want, type_phrase(bit));
	}
	rc = fail(v, quiet, NULL, "expected %s, got %s", sb_str(&want),
	          instance_phrase(inst));
	free(want.data);
	return rc;
}

/* A title as it reads inside a sentence: "Region codes" -> "region codes". */
static void
title_phrase(char *buf, size_t size, const char *title)
{
	snprintf(buf, size, "%s", title);
	if (buf[0] >= 'A' && buf[0] <= 'Z' && buf[1] >= 'a' && buf[1] <= 'z')
		buf[0] = (char)(buf[0] - 'A' + 'a');
}

/* valid §6.1.2 and §6.1.3 */
static int
check_enum_const(validator *v, const node *n, const json_t *inst, int quiet)
{
	char title[256];
	const json_t *item;
	size_t i;
	int rc = VALID;

	if (n->enum_values) {
		json_array_foreach(n->enum_values, i, item) {
			if (json_equal_values(inst, item))
				break;
		}
		if (i == json_array_size(n->enum_values)) {
			if (n->title)
				title_phrase(title, sizeof(title), n->title);
			rc = fail(v, quiet, inst, "is not one of the %s",
			          n->title ? title : "allowed values");
			if (rc < 0 || quiet)
				return rc;
		}
	}
	if (n->const_value && !json_equal_values(inst, n->const_value)) {
		strbuf want = {0};
		int crc;

		describe_value(&want, n->const_value);
		crc = fail(v, quiet, inst, "is not the required value %s",
		           sb_str(&want));
		free(want.data);
		return crc;
	}
	return rc;
}

/* valid §6.2.1: exact for integers, to a few ulps for reals. */
static int
is_multiple(const json_t *inst, const json_t *m)
{
	double q;

	if (json_is_integer(inst) && json_is_integer(m))
		return json_integer_value(inst) % json_integer_value(m) == 0;
	q = json_number_value(inst) / json_number_value(m);
	if (!isfinite(q))
		return 0;
	return fabs(q - nearest_integer(q)) <= 8 * DBL_EPSILON * fabs(q);
}

/* valid §6.2 */
static int
check_number(validator *v, const node *n, const json_t *inst, int quiet)
{
	strbuf bound = {0};
	int rc = VALID, r;

	if (!json_is_number(inst))
		return VALID;
	if (n->minimum && numbers_compare(inst, n->minimum) < 0) {
		describe_number(&bound, n->minimum);
		r = fail(v, quiet, inst, "is less than %s", sb_str(&bound));
		if (merge(&rc, r, quiet, v))
			goto done;
	}
	if (n->exclusive_minimum &&
	    numbers_compare(inst, n->exclusive_minimum) <= 0) {
		sb_truncate(&bound, 0);
		describe_number(&bound, n->exclusive_minimum);
		r = fail(v, quiet, inst, "is not greater than %s",
		         sb_str(&bound));
		if (merge(&rc, r, quiet, v))
			goto done;
	}
	if (n->maximum && numbers_compare(inst, n->maximum) > 0) {
		sb_truncate(&bound, 0);
		describe_number(&bound, n->maximum);
		r = fail(v, quiet, inst, "is greater than %s", sb_str(&bound));
		if (merge(&rc, r, quiet, v))
			goto done;
	}
	if (n->exclusive_maximum &&
	    numbers_compare(inst, n->exclusive_maximum) >= 0) {
		sb_truncate(&bound, 0);
		describe_number(&bound, n->exclusive_maximum);
		r = fail(v, quiet, inst, "is not less than %s", sb_str(&bound));
		if (merge(&rc, r, quiet, v))
			goto done;
	}
	if (n->multiple_of && !is_multiple(inst, n->multiple_of)) {
		sb_truncate(&bound, 0);
		describe_number(&bound, n->multiple_of);
		r = fail(v, quiet, inst, "is not a multiple of %s",
		         sb_str(&bound));
		merge(&rc, r, quiet, v);
	}
done:
	free(bound.data);
	return rc;
}

/* Code points of valid UTF-8: the bytes that do not continue one. */
static long long
utf8_length(const char *s, size_t len)
{
	long long count = 0;
	size_t i;

	for (i = 0; i < len; i++)
		count += ((unsigned char)s[i] & 0xc0) != 0x80;
	return count;
}

/* valid §6.3 */
static int
check_string(validator *v, const node *n, const json_t *inst, int quiet)
{
	char count[64];
	long long len;
	int rc = VALID, r;

	if (!json_is_string(inst))
		return VALID;
	if (n->min_length >= 0 || n->max_length >= 0) {
		len = utf8_length(json_string_value(inst),
		                  json_string_length(inst));
		if (n->min_length >= 0 && len < n->min_length) {
			plural(count, sizeof(count), n->min_length,
			       "character");
			r = fail(v, quiet, NULL, "is shorter than %s", count);
			if (merge(&rc, r, quiet, v))
				return rc;
		}
		if (n->max_length >= 0 && len > n->max_length) {
			plural(count, sizeof(count), n->max_length,
			       "character");
			r = fail(v, quiet, NULL, "is longer than %s", count);
			if (merge(&rc, r, quiet, v))
				return rc;
		}
	}
	if (n->pattern_re &&
	    !pattern_matches(n->pattern_re, json_string_value(inst))) {
		strbuf pat = {0};

		describe_string(&pat, n->pattern, strlen(n->pattern));
		r = fail(v, quiet, inst, "does not match the pattern %s",
		         sb_str(&pat));
		free(pat.data);
		merge(&rc, r, quiet, v);
	}
	return rc;
}

/* valid §6.4.5: hash the items, compare only those that hash alike. */
typedef struct {
	uint64_t hash;
	size_t index;
} hashed_item;

static int
hashed_cmp(const void *pa, const void *pb)
{
	const hashed_item *a = pa, *b = pb;

	if (a->hash != b->hash)
		return a->hash < b->hash ? -1 : 1;
	return (a->index > b->index) - (a->index < b->index);
}

static int
check_unique(validator *v, const json_t *inst, int quiet)
{
	size_t n = json_array_size(inst), i, j;
	size_t first = 0, second = 0;
	hashed_item *items;
	int found = 0;

	if (n < 2)
		return VALID;
	if ((items = calloc(n, sizeof(*items))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	for (i = 0; i < n; i++) {
		items[i].hash = json_hash_value(json_array_get(inst, i));
		items[i].index = i;
	}
	qsort(items, n, sizeof(*items), hashed_cmp);
	for (i = 0; i < n && !found; i++) {
		for (j = i + 1; j < n && items[j].hash == items[i].hash; j++) {
			if (json_equal_values(
			            json_array_get(inst, items[i].index),
			            json_array_get(inst, items[j].index))) {
				first = items[i].index;
				second = items[j].index;
				found = 1;
				break;
			}
		}
	}
	free(items);
	if (!found)
		return VALID;
	return fail(v, quiet, NULL, "has equal items at %zu and %zu", first,
	            second);
}

/* valid §6.4.1, §6.4.2 */
static int
check_items(validator *v, const node *n, const json_t *inst, int quiet)
{
	size_t size = json_array_size(inst), i, from = 0;
	char count[64];
	int rc = VALID, r;

	if (n->items) {
		for (i = 0; i < size; i++) {
			r = validate_at_index(
			        v, n->items, json_array_get(inst, i), i, quiet);
			if (merge(&rc, r, quiet, v))
				return rc;
		}
		return rc;
	}
	if (!n->has_item_list)
		return VALID;
	for (i = 0; i < size && i < n->item_list.count; i++) {
		r = validate_at_index(v, n->item_list.items[i],
		                      json_array_get(inst, i), i, quiet);
		if (merge(&rc, r, quiet, v))
			return rc;
	}
	from = n->item_list.count;
	if (n->additional_items == NULL || size <= from)
		return rc;
	if (n->additional_items->boolean == 0) {
		plural(count, sizeof(count), (long long)from, "item");
		r = fail(v, quiet, NULL, "has more than %s", count);
		merge(&rc, r, quiet, v);
		return rc;
	}
	for (i = from; i < size; i++) {
		r = validate_at_index(v, n->additional_items,
		                      json_array_get(inst, i), i, quiet);
		if (merge(&rc, r, quiet, v))
			return rc;
	}
	return rc;
}

/* valid §6.4.6: some item must match; the items' failures are not ours. */
static int
check_contains(validator *v, const node *n, const json_t *inst, int quiet)
{
	size_t i;
	int r;

	for (i = 0; i < json_array_size(inst); i++) {
		r = validate_node(v, n->contains, json_array_get(inst, i), 1);
		if (r <= VALID)
			return r;
	}
	return fail(v, quiet, NULL, "does not contain a matching item");
}

/* valid §6.4 */
static int
check_array(validator *v, const node *n, const json_t *inst, int quiet)
{
	size_t size;
	char count[64];
	int rc = VALID, r;

	if (!json_is_array(inst))
		return VALID;
	size = json_array_size(inst);
	if (n->min_items >= 0 && (long long)size < n->min_items) {
		plural(count, sizeof(count), n->min_items, "item");
		r = fail(v, quiet, NULL, "has fewer than %s", count);
		if (merge(&rc, r, quiet, v))
			return rc;
	}
	if (n->max_items >= 0 && (long long)size > n->max_items) {
		plural(count, sizeof(count), n->max_items, "item");
		r = fail(v, quiet, NULL, "has more than %s", count);
		if (merge(&rc, r, quiet, v))
			return rc;
	}
	if (n->unique_items &&
	    merge(&rc, check_unique(v, inst, quiet), quiet, v))
		return rc;
	if (merge(&rc, check_items(v, n, inst, quiet), quiet, v))
		return rc;
	if (n->contains &&
	    merge(&rc, check_contains(v, n, inst, quiet), quiet, v))
		return rc;
	return rc;
}

/*
 * A property's value against a subschema.  A false schema says the
 * property may not be there at all, which reads better at the object.
 */
static int
check_property(validator *v, const node *schema, const char *key,
               const json_t *value, int quiet)
{
	if (schema->boolean == 0) {
		strbuf name = {0};
		int rc;

		describe_string(&name, key, strlen(key));
		rc = fail(v, quiet, NULL, "property %s is not allowed",
		          sb_str(&name));
		free(name.data);
		return rc;
	}
	return validate_at_key(v, schema, value, key, quiet);
}

/* valid §6.5.4 - §6.5.6: each member once, in the instance's order. */
static int
check_members(validator *v, const node *n, const json_t *inst, int quiet)
{
	const char *key;
	json_t *value;
	size_t i;
	int rc = VALID, r, matched;

	for (i = 0; i < n->properties_count; i++) {
		if ((value = json_object_get(inst, n->properties[i].name)) ==
		    NULL)
			continue;
		r = check_property(v, n->properties[i].schema,
		                   n->properties[i].name, value, quiet);
		if (merge(&rc, r, quiet, v))
			return rc;
	}
	if (n->pattern_properties_count == 0 && !n->additional_properties)
		return rc;
	json_object_foreach((json_t *)inst, key, value) {
		matched = n->properties_json &&
		          json_object_get(n->properties_json, key) != NULL;
		for (i = 0; i < n->pattern_properties_count; i++) {
			const pattern_node *p = &n->pattern_properties[i];

			if (!pattern_matches(p->re, key))
				continue;
			matched = 1;
			r = check_property(v, p->schema, key, value, quiet);
			if (merge(&rc, r, quiet, v))
				return rc;
		}
		if (matched || !n->additional_properties)
			continue;
		r = check_property(v, n->additional_properties, key, value,
		                   quiet);
		if (merge(&rc, r, quiet, v))
			return rc;
	}
	return rc;
}

/* valid §6.5.3 */
static int
check_required(validator *v, const json_t *required, const json_t *inst,
               int quiet)
{
	const json_t *name;
	size_t i;
	int rc = VALID, r;

	json_array_foreach(required, i, name) {
		strbuf quoted = {0};

		if (json_object_get(inst, json_string_value(name)))
			continue;
		describe_string(&quoted, json_string_value(name),
		                json_string_length(name));
		r = fail(v, quiet, NULL, "missing required property %s",
		         sb_str(&quoted));
		free(quoted.data);
		if (merge(&rc, r, quiet, v))
			return rc;
	}
	return rc;
}

/* valid §6.5.7 */
static int
check_dependencies(validator *v, const node *n, const json_t *inst, int quiet)
{
	const dependency *d;
	const json_t *name;
	size_t i, j;
	int rc = VALID, r;

	for (i = 0; i < n->dependencies_count; i++) {
		d = &n->dependencies[i];
		if (json_object_get(inst, d->name) == NULL)
			continue;
		if (d->schema) {
			r = validate_node(v, d->schema, inst, quiet);
			if (merge(&rc, r, quiet, v))
				return rc;
			continue;
		}
		json_array_foreach(d->names, j, name) {
			strbuf a = {0}, b = {0};

			if (json_object_get(inst, json_string_value(name)))
				continue;
			describe_string(&a, d->name, strlen(d->name));
			describe_string(&b, json_string_value(name),
			                json_string_length(name));
			r = fail(v, quiet, NULL,
			         "property %s requires property %s", sb_str(&a),
			         sb_str(&b));
			free(a.data);
			free(b.data);
			if (merge(&rc, r, quiet, v))
				return rc;
		}
	}
	return rc;
}

/* valid §6.5.8: names are checked as strings; one message per name. */
static int
check_property_names(validator *v, const node *n, const json_t *inst, int quiet)
{
	const char *key;
	json_t *value, *name;
	int rc = VALID, r;

	json_object_foreach((json_t *)inst, key, value) {
		if ((name = json_string(key)) == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		r = validate_node(v, n->property_names, name, 1);
		if (r == INVALID)
			r = fail(v, quiet, name,
			         "is not an allowed property "
			         "name");
		json_decref(name);
		if (merge(&rc, r, quiet, v))
			return rc;
	}
	return rc;
}

/* valid §6.5 */
static int
check_object(validator *v, const node *n, const json_t *inst, int quiet)
{
	long long size;
	char count[64];
	int rc = VALID, r;

	if (!json_is_object(inst))
		return VALID;
	size = (long long)json_object_size(inst);
	if (n->min_properties >= 0 && size < n->min_properties) {
		plural(count, sizeof(count), n->min_properties, "property");
		r = fail(v, quiet, NULL, "has fewer than %s", count);
		if (merge(&rc, r, quiet, v))
			return rc;
	}
	if (n->max_properties >= 0 && size > n->max_properties) {
		plural(count, sizeof(count), n->max_properties, "property");
		r = fail(v, quiet, NULL, "has more than %s", count);
		if (merge(&rc, r, quiet, v))
			return rc;
	}
	if (n->required &&
	    merge(&rc, check_required(v, n->required, inst, quiet), quiet, v))
		return rc;
	if (merge(&rc, check_members(v, n, inst, quiet), quiet, v))
		return rc;
	if (n->property_names &&
	    merge(&rc, check_property_names(v, n, inst, quiet), quiet, v))
		return rc;
	if (n->dependencies_count &&
	    merge(&rc, check_dependencies(v, n, inst, quiet), quiet, v))
		return rc;
	return rc;
}

/* How many of `list` the instance matches, stopping once past `enough`. */
static int
count_matches(validator *v, const node_list *list, const json_t *inst,
              size_t enough, size_t *matches)
{
	size_t i;
	int r;

	*matches = 0;
	for (i = 0; i < list->count && *matches < enough; i++) {
		if ((r = validate_node(v, list->items[i], inst, 1)) < 0)
			return r;
		*matches += r == VALID;
	}
	return 0;
}

/*
 * valid §6.7.  allOf failures are the instance's own; anyOf, oneOf and
 * not are reported as one message here, since which branch was meant is
 * unknowable.
 */
static int
check_logic(validator *v, const node *n, const json_t *inst, int quiet)
{
	size_t i, matches;
	int rc = VALID, r;

	for (i = 0; i < n->all_of.count; i++) {
		r = validate_node(v, n->all_of.items[i], inst, quiet);
		if (merge(&rc, r, quiet, v))
			return rc;
	}
	if (n->any_of.count) {
		if ((r = count_matches(v, &n->any_of, inst, 1, &matches)) < 0)
			return r;
		if (matches == 0) {
			r = fail(v, quiet, NULL,
			         "does not match any of the "
			         "allowed forms");
			if (merge(&rc, r, quiet, v))
				return rc;
		}
	}
	if (n->one_of.count) {
		if ((r = count_matches(v, &n->one_of, inst, 2, &matches)) < 0)
			return r;
		if (matches != 1) {
			r = fail(v, quiet, NULL,
			         matches == 0 ? "does not match any of the "
			                        "allowed forms"
			                      : "matches more than one of the "
			                        "allowed forms");
			if (merge(&rc, r, quiet, v))
				return rc;
		}
	}
	if (n->not_schema) {
		if ((r = validate_node(v, n->not_schema, inst, 1)) < 0)
			return r;
		if (r == VALID) {
			r = fail(v, quiet, NULL,
			         "matches a form that is not "
			         "allowed");
			if (merge(&rc, r, quiet, v))
				return rc;
		}
	}
	/* valid §6.6: "then" or "else" applies, by whether "if" matches. */
	if (n->if_schema) {
		const node *branch;

		if ((r = validate_node(v, n->if_schema, inst, 1)) < 0)
			return r;
		branch = r == VALID ? n->then_schema : n->else_schema;
		if (branch)
			merge(&rc, validate_node(v, branch, inst, quiet), quiet,
			      v);
	}
	return rc;
}

static int
follow_ref(validator *v, const node *n, const json_t *inst, int quiet)
{
	if (n->ref_target == NULL)
		return cs_error_set(CS_ENOTFOUND,
		                    "schema \"%s\": $ref \"%s\" "
		                    "does not resolve: %s",
		                    n->location, n->ref, n->ref_problem);
	return validate_node(v, n->ref_target, inst, quiet);
}

/*
 * Apply a node.  Returns VALID, INVALID (failures reported unless
 * `quiet`) or an error code.
 */
static int
validate_node(validator *v, const node *n, const json_t *inst, int quiet)
{
	/* The keywords by the instance type they apply to, then logic. */
	static int (*const checks[])(validator *, const node *, const json_t *,
	                             int) = {
	        check_enum_const, check_number, check_string,
	        check_array,      check_object, check_logic,
	};
	size_t i;
	int rc = VALID;

	/* core §4.3.2: boolean schemas */
	if (n->boolean == 1)
		return VALID;
	if (n->boolean == 0)
		return fail(v, quiet, NULL, "no value is allowed here");
	if (n->broken)
		return cs_error_set(CS_EINVALID, "schema \"%s\": %s",
		                    n->location, n->broken);
	if (!quiet && full(v))
		return INVALID;
	if (v->depth >= MAX_RECURSION)
		return cs_error_set(CS_ELIMIT,
		                    "schema \"%s\": more than %d "
		                    "nested schemas at \"%s\" (a $ref "
		                    "cycle?)",
		                    n->location, MAX_RECURSION,
		                    sb_str(&v->ptr));

	v->depth++;
	if (n->ref) {
		rc = follow_ref(v, n, inst, quiet);
		goto done;
	}
	/* A wrong type says it all: the other checks would only echo it. */
	if ((rc = check_type(v, n, inst, quiet)) != VALID)
		goto done;
	for (i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
		if (merge(&rc, checks[i](v, n, inst, quiet), quiet, v))
			break;
done:
	v->depth--;
	return rc;
}

/* The node named "name" or "name#/pointer". */
static int
find_start(const node **out, const cs_schema_set *set, const char *name)
{
	const char *problem = NULL;
	const json_t *target;
	size_t doc;

	*out = NULL;
	target = ref_resolve(set, -1, name, &doc, &problem);
	if (target == NULL)
		return cs_error_set(CS_ENOTFOUND, "schema \"%s\": %s", name,
		                    problem);
	if (set->compiled == NULL ||
	    (*out = compiled_find(set->compiled, doc, target)) == NULL)
		return cs_error_set(CS_EINVALID,
		                    "schema \"%s\": the location "
		                    "holds no schema",
		                    name);
	return 0;
}

int
cs_schema_validate(const cs_schema_set *set, const char *name,
                   const json_t *instance, cs_schema_errors *errors)
{
	validator v = {0};
	const node *start;
	int error;

	if (set == NULL || name == NULL || instance == NULL)
		return cs_error_set(CS_EINVALID, "nothing to validate");
	if ((error = find_start(&start, set, name)) < 0)
		return error;

	v.errors = errors;
	/* Without a list to fill, the first failure is the answer. */
	v.limit = errors ? MAX_ERRORS : 1;
	sb_add(&v.ptr, "", 0);

	error = validate_node(&v, start, instance, 0);
	if (error >= 0 && v.ptr.failed)
		error = cs_error_set(CS_ERROR, "out of memory");
	free(v.ptr.data);
	if (error < 0)
		return error;
	if (error == VALID)
		return 0;
	/* report() made the first failure's message the thread's. */
	return CS_EINVALID;
}
