/*
 * cartosync — strict JSON parsing and the canonical form of stored files.
 *
 * Parsing is jansson's, made stricter: size is checked before parsing, depth
 * and number range after.  The canonical encoder is written here rather than
 * taken from json_dumps() because the canonical form is part of the
 * repository format (a byte changed is a commit changed): key order, number
 * spelling and string escaping must not depend on a library's version.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cartosync/error.h"
#include "cartosync/json.h"

/* Numbers must stay well inside the doubles' exact integer range. */
#define NUMBER_LIMIT 1e15
/* 2^53: above it a double no longer holds every integer. */
#define EXACT_LIMIT 9007199254740992.0
/* Reals keep 6 decimals: a tenth of a metre in coordinates. */
#define REAL_DECIMALS 6

/* A growing output buffer; `failed` records an allocation failure. */
typedef struct {
	char *data;
	size_t len;
	size_t cap;
	int failed;
} strbuf;

static int
buf_reserve(strbuf *b, size_t more)
{
	size_t want, cap;
	char *grown;

	if (b->failed)
		return -1;
	if (more > SIZE_MAX - b->len - 1)
		goto fail;
	want = b->len + more + 1;
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	if ((grown = realloc(b->data, cap)) == NULL)
		goto fail;
	b->data = grown;
	b->cap = cap;
	return 0;
fail:
	b->failed = 1;
	return -1;
}

static void
buf_add(strbuf *b, const char *s, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void
buf_adds(strbuf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void
buf_indent(strbuf *b, int level)
{
	static const char spaces[] = "                                ";
	size_t n = (size_t)level * 2;

	while (n > 0) {
		size_t chunk = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;

		buf_add(b, spaces, chunk);
		n -= chunk;
	}
}

/* "name: " or "" for the messages of cs_json_parse(). */
static const char *
name_sep(const char *name)
{
	return name ? ": " : "";
}

/*
 * Depth with an early exit: stop descending once `limit` is passed, so
 * that checking a hostile value costs no more than the limit allows.
 */
static int
depth_bounded(const json_t *value, int limit)
{
	const char *key;
	json_t *child;
	size_t i;
	int max = 0, d;

	if (!json_is_object(value) && !json_is_array(value))
		return 0;
	if (limit <= 0)
		return 1;
	if (json_is_array(value)) {
		json_array_foreach(value, i, child) {
			d = depth_bounded(child, limit - 1);
			if (d > max)
				max = d;
			if (max >= limit)
				break;
		}
	} else {
		json_object_foreach((json_t *)value, key, child) {
			d = depth_bounded(child, limit - 1);
			if (d > max)
				max = d;
			if (max >= limit)
				break;
		}
	}
	return 1 + max;
}

int
cs_json_depth(const json_t *value)
{
	return depth_bounded(value, INT32_MAX - 1);
}

/* Append "/token" to a JSON pointer (RFC 6901 §3: ~ as ~0, / as ~1). */
static void
pointer_push(strbuf *ptr, const char *token)
{
	buf_add(ptr, "/", 1);
	for (; *token; token++) {
		if (*token == '~')
			buf_add(ptr, "~0", 2);
		else if (*token == '/')
			buf_add(ptr, "~1", 2);
		else
			buf_add(ptr, token, 1);
	}
}

/*
 * Find the first number out of range; on return `ptr` holds its JSON
 * pointer.  Returns 1 if one was found, 0 if none.
 */
static int
find_bad_number(const json_t *value, strbuf *ptr)
{
	const char *key;
	json_t *child;
	size_t i, mark = ptr->len;
	char idx[32];

	switch (json_typeof(value)) {
	case JSON_INTEGER:
		return json_integer_value(value) >= (json_int_t)NUMBER_LIMIT ||
		       json_integer_value(value) <= -(json_int_t)NUMBER_LIMIT;
	case JSON_REAL:
		return !isfinite(json_real_value(value)) ||
		       fabs(json_real_value(value)) >= NUMBER_LIMIT;
	case JSON_ARRAY:
		json_array_foreach(value, i, child) {
			snprintf(idx, sizeof(idx), "%zu", i);
			pointer_push(ptr, idx);
			if (find_bad_number(child, ptr))
				return 1;
			ptr->len = mark;
		}
		return 0;
	case JSON_OBJECT:
		json_object_foreach((json_t *)value, key, child) {
			pointer_push(ptr, key);
			if (find_bad_number(child, ptr))
				return 1;
			ptr->len = mark;
		}
		return 0;
	default:
		return 0;
	}
}

static int
check_numbers(const json_t *value, const char *name)
{
	strbuf ptr = {0};
	int error = 0;

	buf_add(&ptr, "", 0);
	if (find_bad_number(value, &ptr)) {
		error = cs_error_set(CS_EINVALID,
		                     "%s%snumber at \"%s\" is out of range "
		                     "(magnitude must stay below 1e15)",
		                     name ? name : "", name_sep(name),
		                     ptr.failed ? "?" : ptr.data);
	} else if (ptr.failed) {
		error = cs_error_set(CS_ERROR, "out of memory");
	}
	free(ptr.data);
	return error;
}

/* Map jansson's error to ours: its own depth guard is a limit too. */
static int
parse_error(const json_error_t *jerr, const char *name)
{
	int code = CS_EINVALID;

	if (json_error_code(jerr) == json_error_stack_overflow)
		code = CS_ELIMIT;
	else if (json_error_code(jerr) == json_error_out_of_memory)
		code = CS_ERROR;
	return cs_error_set(code, "%s%sline %d, column %d: %s",
	                    name ? name : "", name_sep(name), jerr->line,
	                    jerr->column, jerr->text);
}

int
cs_json_parse(json_t **out, const char *buf, size_t len, const char *name)
{
	json_error_t jerr;
	json_t *value = NULL;
	int error = CS_EINVALID;

	*out = NULL;

	/* Before parsing: a peer must not make us allocate without bound. */
	if (len > CS_JSON_MAX_BYTES) {
		error = cs_error_set(CS_ELIMIT,
		                     "%s%s%zu bytes exceed the limit of %d",
		                     name ? name : "", name_sep(name), len,
		                     CS_JSON_MAX_BYTES);
		goto done;
	}

	/*
	 * Without JSON_DECODE_ANY jansson accepts only an object or array at
	 * the top; without JSON_DISABLE_EOF_CHECK it rejects trailing data;
	 * without JSON_ALLOW_NUL it rejects "\u0000"; it always rejects
	 * invalid UTF-8 and raw control characters in strings.
	 */
	value = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (value == NULL) {
		error = parse_error(&jerr, name);
		goto done;
	}

	if (depth_bounded(value, CS_JSON_MAX_DEPTH + 1) > CS_JSON_MAX_DEPTH) {
		error = cs_error_set(
		        CS_ELIMIT, "%s%snested deeper than %d levels",
		        name ? name : "", name_sep(name), CS_JSON_MAX_DEPTH);
		goto done;
	}

	if ((error = check_numbers(value, name)) < 0)
		goto done;

	*out = value;
	value = NULL; /* transferred */
	error = 0;
done:
	json_decref(value);
	return error;
}

/* Read at most CS_JSON_MAX_BYTES + 1 bytes: enough to see the limit pass. */
static int
read_bounded(char **out, size_t *outlen, const char *path)
{
	size_t cap = CS_JSON_MAX_BYTES + 1, len = 0;
	char *data = NULL;
	ssize_t n;
	int fd = -1, error = CS_ERROR;

	*out = NULL;
	*outlen = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		error = cs_error_set(errno == ENOENT ? CS_ENOTFOUND : CS_ERROR,
		                     "cannot open \"%s\": %s", path,
		                     strerror(errno));
		goto done;
	}
	if ((data = malloc(cap)) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	while (len < cap) {
		n = read(fd, data + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error = cs_error_set(CS_ERROR, "cannot read \"%s\": %s",
			                     path, strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}

	*out = data;
	*outlen = len;
	data = NULL; /* transferred */
	error = 0;
done:
	free(data);
	if (fd >= 0)
		close(fd);
	return error;
}

int
cs_json_load_file(json_t **out, const char *path)
{
	char *data = NULL;
	size_t len;
	int error;

	*out = NULL;

	if ((error = read_bounded(&data, &len, path)) < 0)
		goto done;
	error = cs_json_parse(out, data, len, path);
done:
	free(data);
	return error;
}

/*
 * Strings escape only what JSON requires (RFC 8259 §7): the quote, the
 * backslash and the control characters, with the short forms where JSON
 * has one.  Everything else, including non-ASCII, is written as UTF-8.
 */
static void
encode_string(strbuf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run = 0;
	char esc[7];

	buf_add(b, "\"", 1);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *rep = NULL;

		switch (c) {
		case '"':
			rep = "\\\"";
			break;
		case '\\':
			rep = "\\\\";
			break;
		case '\b':
			rep = "\\b";
			break;
		case '\f':
			rep = "\\f";
			break;
		case '\n':
			rep = "\\n";
			break;
		case '\r':
			rep = "\\r";
			break;
		case '\t':
			rep = "\\t";
			break;
		default:
			if (c < 0x20) {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 0xf];
				esc[6] = '\0';
				rep = esc;
			}
		}
		if (rep == NULL) {
			run++;
			continue;
		}
		buf_add(b, s + i - run, run);
		run = 0;
		buf_adds(b, rep);
	}
	buf_add(b, s + len - run, run);
	buf_add(b, "\"", 1);
}

static int
encode_integer(strbuf *b, json_int_t v)
{
	char num[32];

	if (v > (json_int_t)EXACT_LIMIT || v < -(json_int_t)EXACT_LIMIT)
		return cs_error_set(
		        CS_EINVALID,
		        "integer %" JSON_INTEGER_FORMAT " is beyond 2^53", v);
	snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, v);
	buf_adds(b, num);
	return 0;
}

/*
 * A real is rounded to 6 decimals by printf's exact decimal conversion of
 * the binary value, then trailing zeros (and a bare point) are dropped and
 * "-0" becomes "0".  Re-parsing the result gives the double nearest to it,
 * which is no farther from it than the original was, so it rounds back to
 * the same text: the encoding is idempotent.
 */
static const char *
spell_real(char num[64], double v)
{
	char *end;

	snprintf(num, 64, "%.*f", REAL_DECIMALS, v);
	end = num + strlen(num);
	while (end[-1] == '0')
		end--;
	if (end[-1] == '.')
		end--;
	*end = '\0';
	return strcmp(num, "-0") == 0 ? "0" : num;
}

static int
encode_real(strbuf *b, double v)
{
	char num[64];

	if (!isfinite(v))
		return cs_error_set(CS_EINVALID, "number is not finite");
	if (fabs(v) > EXACT_LIMIT)
		return cs_error_set(CS_EINVALID, "number %g is beyond 2^53", v);
	buf_adds(b, spell_real(num, v));
	return 0;
}

typedef struct {
	const char *key;
	size_t len;
	json_t *value;
} member;

/* Keys compare by their UTF-8 bytes (unsigned), shorter first on a tie. */
static int
member_cmp(const void *pa, const void *pb)
{
	const member *a = pa, *b = pb;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->key, b->key, n);

	if (c != 0)
		return c;
	return (a->len > b->len) - (a->len < b->len);
}

static int encode_value(strbuf *b, const json_t *value, int level);

static int
encode_object(strbuf *b, const json_t *object, int level)
{
	member *members = NULL;
	size_t n = json_object_size(object), i = 0;
	void *iter;
	int error = 0;

	if (n == 0) {
		buf_add(b, "{}", 2);
		goto done;
	}
	if ((members = calloc(n, sizeof(*members))) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	/* Keys may hold NUL (json_object_setn), hence the lengths. */
	iter = json_object_iter((json_t *)object);
	for (; iter && i < n;
	     iter = json_object_iter_next((json_t *)object, iter), i++) {
		members[i].key = json_object_iter_key(iter);
		members[i].len = json_object_iter_key_len(iter);
		members[i].value = json_object_iter_value(iter);
	}
	n = i;
	qsort(members, n, sizeof(*members), member_cmp);

	buf_add(b, "{\n", 2);
	for (i = 0; i < n; i++) {
		buf_indent(b, level + 1);
		encode_string(b, members[i].key, members[i].len);
		buf_add(b, ": ", 2);
		if ((error = encode_value(b, members[i].value, level + 1)) < 0)
			goto done;
		buf_add(b, i + 1 < n ? ",\n" : "\n", i + 1 < n ? 2 : 1);
	}
	buf_indent(b, level);
	buf_add(b, "}", 1);
done:
	free(members);
	return error;
}

static int
encode_array(strbuf *b, const json_t *array, int level)
{
	size_t n = json_array_size(array), i;
	int error;

	if (n == 0) {
		buf_add(b, "[]", 2);
		return 0;
	}
	buf_add(b, "[\n", 2);
	for (i = 0; i < n; i++) {
		buf_indent(b, level + 1);
		error = encode_value(b, json_array_get(array, i), level + 1);
		if (error < 0)
			return error;
		buf_add(b, i + 1 < n ? ",\n" : "\n", i + 1 < n ? 2 : 1);
	}
	buf_indent(b, level);
	buf_add(b, "]", 1);
	return 0;
}

static int
encode_value(strbuf *b, const json_t *value, int level)
{
	/* What cs_json_parse() would refuse, the canonical form cannot hold. */
	if (level >= CS_JSON_MAX_DEPTH &&
	    (json_is_object(value) || json_is_array(value)))
		return cs_error_set(CS_EINVALID,
		                    "value nested deeper than %d "
		                    "levels",
		                    CS_JSON_MAX_DEPTH);

	switch (json_typeof(value)) {
	case JSON_OBJECT:
		return encode_object(b, value, level);
	case JSON_ARRAY:
		return encode_array(b, value, level);
	case JSON_STRING:
		encode_string(b, json_string_value(value),
		              json_string_length(value));
		return 0;
	case JSON_INTEGER:
		return encode_integer(b, json_integer_value(value));
	case JSON_REAL:
		return encode_real(b, json_real_value(value));
	case JSON_TRUE:
		buf_add(b, "true", 4);
		return 0;
	case JSON_FALSE:
		buf_add(b, "false", 5);
		return 0;
	case JSON_NULL:
		buf_add(b, "null", 4);
		return 0;
	}
	return cs_error_set(CS_EINVALID, "unknown JSON value type");
}

int
cs_json_canonical(char **out, size_t *outlen, const json_t *value)
{
	strbuf b = {0};
	int error;

	*out = NULL;
	*outlen = 0;

	if (value == NULL) {
		error = cs_error_set(CS_EINVALID, "no value to encode");
		goto done;
	}
	if ((error = encode_value(&b, value, 0)) < 0)
		goto done;
	buf_add(&b, "\n", 1);
	if (b.failed) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}

	*out = b.data;
	*outlen = b.len;
	b.data = NULL; /* transferred */
	error = 0;
done:
	free(b.data);
	return error;
}

int
cs_json_canonicalize(char **out, size_t *outlen, const char *buf, size_t len,
                     const char *name)
{
	json_t *value = NULL;
	int error;

	*out = NULL;
	*outlen = 0;

	if ((error = cs_json_parse(&value, buf, len, name)) < 0)
		goto done;
	if ((error = cs_json_canonical(out, outlen, value)) < 0 && name)
		cs_error_prefix(error, "%s", name);
done:
	json_decref(value);
	return error;
}

/*
 * Reading the canonical form directly.  A stored file is canonical or
 * refused, so nearly every read is of canonical text.  Reading it the way
 * the encoder writes it (the exact indentation, keys in increasing order,
 * the encoder's escapes and number spelling) checks the form while parsing,
 * builds the value json_loadb() would, and saves a second pass to encode it
 * again.  It recognises a subset of the canonical form: a \u escape, an
 * escaped key, deep nesting or anything not canonical ends it with 0, and
 * the general path (parse, encode, compare) decides and explains.  So it
 * may only accept what the general path accepts, with the same value:
 * tests/unit/test_json.c and tests/fuzz/fuzz_json.c compare the two.
 */
typedef struct {
	const char *p;
	const char *end;
	char *scratch; /* unescaped string contents */
	size_t scratch_cap;
} canon_reader;

static json_t *canon_value(canon_reader *r, int level);

/* One UTF-8 sequence at p (RFC 3629, as jansson checks it); its length or 0. */
static size_t
utf8_sequence(const unsigned char *p, const unsigned char *end)
{
	unsigned long cp;
	size_t n, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/*
 * A string as the encoder writes it, p at the opening quote.  On return
 * *s and *len are its contents: in the text itself when it has no escape,
 * else in the scratch buffer.  Returns 0 to give up.
 */
static int
canon_string(canon_reader *r, const char **s, size_t *len, int *escaped)
{
	const unsigned char *p = (const unsigned char *)r->p + 1;
	const unsigned char *end = (const unsigned char *)r->end;
	const unsigned char *start = p;
	size_t out = 0;

	*escaped = 0;
	for (;;) {
		const unsigned char *run = p;
		size_t n;

		while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' &&
		       *p != '\\')
			p++;
		if (p >= end || *p < 0x20)
			return 0;
		if (*escaped && p > run) {
			if (out + (size_t)(p - run) > r->scratch_cap)
				return 0;
			memcpy(r->scratch + out, run, (size_t)(p - run));
			out += (size_t)(p - run);
		}
		if (*p == '"')
			break;
		if (*p >= 0x80) {
			if ((n = utf8_sequence(p, end)) == 0)
				return 0;
			if (*escaped) {
				if (out + n > r->scratch_cap)
					return 0;
				memcpy(r->scratch + out, p, n);
				out += n;
			}
			p += n;
			continue;
		}
		/* A backslash: the escapes the encoder writes, but \u. */
		if (p + 1 >= end)
			return 0;
		if (!*escaped) {
			out = (size_t)(p - start);
			if (out > r->scratch_cap)
				return 0;
			memcpy(r->scratch, start, out);
			*escaped = 1;
		}
		if (out + 1 > r->scratch_cap)
			return 0;
		switch (p[1]) {
		case '"': r->scratch[out++] = '"'; break;
		case '\\': r->scratch[out++] = '\\'; break;
		case 'b': r->scratch[out++] = '\b'; break;
		case 'f': r->scratch[out++] = '\f'; break;
		case 'n': r->scratch[out++] = '\n'; break;
		case 'r': r->scratch[out++] = '\r'; break;
		case 't': r->scratch[out++] = '\t'; break;
		default: return 0;
		}
		p += 2;
	}
	if (*escaped) {
		*s = r->scratch;
		*len = out;
	} else {
		*s = (const char *)start;
		*len = (size_t)(p - start);
	}
	r->p = (const char *)p + 1;
	return 1;
}

/* A number as the encoder writes it: an integer, or a real it would
 * spell the same way. */
static json_t *
canon_number(canon_reader *r)
{
	const char *p = r->p, *digits;
	char token[40], again[64];
	int negative = *p == '-', fraction = 0;
	json_int_t v = 0;
	double d;
	size_t n;

	if (negative)
		p++;
	digits = p;
	while (p < r->end && *p >= '0' && *p <= '9')
		v = v * 10 + (*p++ - '0');
	n = (size_t)(p - digits);
	/* No leading zero, and below 1e15 (15 digits at most). */
	if (n == 0 || n > 15 || (n > 1 && digits[0] == '0'))
		return NULL;
	if (p < r->end && *p == '.') {
		const char *frac = ++p;

		while (p < r->end && *p >= '0' && *p <= '9')
			p++;
		fraction = (int)(p - frac);
		if (fraction == 0 || fraction > REAL_DECIMALS || p[-1] == '0')
			return NULL;
	}
	if (p < r->end && (*p == 'e' || *p == 'E' || *p == '.'))
		return NULL;
	n = (size_t)(p - r->p);
	if (!fraction) {
		if (negative && v == 0)
			return NULL; /* "-0" */
		r->p = p;
		return json_integer(negative ? -v : v);
	}
	/* A real: the encoder's spelling of the value read must be this one. */
	memcpy(token, r->p, n);
	token[n] = '\0';
	d = strtod(token, NULL);
	if (!isfinite(d) || fabs(d) >= NUMBER_LIMIT)
		return NULL;
	if (strcmp(spell_real(again, d), token) != 0)
		return NULL;
	r->p = p;
	return json_real(d);
}

/* Exactly `n` spaces at p. */
static int
canon_indent(canon_reader *r, int level)
{
	size_t n = (size_t)level * 2;

	if ((size_t)(r->end - r->p) < n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (r->p[i] != ' ')
			return 0;
	r->p += n;
	return 1;
}

/* Skip `s` at p, or give up. */
static int
canon_literal(canon_reader *r, const char *s, size_t n)
{
	if ((size_t)(r->end - r->p) < n || memcmp(r->p, s, n) != 0)
		return 0;
	r->p += n;
	return 1;
}

/* The members of an object or elements of an array at `level`, p after
 * the opening bracket; `close` is '}' or ']'. */
static json_t *
canon_container(canon_reader *r, int level, char close)
{
	json_t *c = close == '}' ? json_object() : json_array();
	const char *prev = NULL;
	size_t prev_len = 0;

	if (c == NULL)
		return NULL;
	if (r->p < r->end && *r->p == close) {
		r->p++;
		return c;
	}
	if (level + 1 >= CS_JSON_MAX_DEPTH - 1 || !canon_literal(r, "\n", 1))
		goto fail;
	for (;;) {
		json_t *item;

		if (!canon_indent(r, level + 1))
			goto fail;
		if (close == '}') {
			const char *key;
			size_t key_len;
			int escaped;
			member a, b;

			if (r->p >= r->end || *r->p != '"' ||
			    !canon_string(r, &key, &key_len, &escaped) ||
			    escaped || !canon_literal(r, ": ", 2))
				goto fail;
			/* Strictly increasing: sorted, and no duplicate. */
			a = (member){prev, prev_len, NULL};
			b = (member){key, key_len, NULL};
			if (prev && member_cmp(&a, &b) >= 0)
				goto fail;
			prev = key;
			prev_len = key_len;
			if ((item = canon_value(r, level + 1)) == NULL ||
			    json_object_setn_new_nocheck(c, key, key_len,
							 item) < 0)
				goto fail;
		} else if ((item = canon_value(r, level + 1)) == NULL ||
			   json_array_append_new(c, item) < 0) {
			goto fail;
		}
		if (canon_literal(r, ",\n", 2))
			continue;
		if (!canon_literal(r, "\n", 1) || !canon_indent(r, level) ||
		    !canon_literal(r, &close, 1))
			goto fail;
		return c;
	}
fail:
	json_decref(c);
	return NULL;
}

static json_t *
canon_value(canon_reader *r, int level)
{
	const char *s;
	size_t len;
	int escaped;

	if (r->p >= r->end)
		return NULL;
	switch (*r->p) {
	case '{':
	case '[':
		r->p++;
		return canon_container(r, level, r->p[-1] == '{' ? '}' : ']');
	case '"':
		if (!canon_string(r, &s, &len, &escaped))
			return NULL;
		return json_stringn_nocheck(s, len);
	case 't':
		return canon_literal(r, "true", 4) ? json_true() : NULL;
	case 'f':
		return canon_literal(r, "false", 5) ? json_false() : NULL;
	case 'n':
		return canon_literal(r, "null", 4) ? json_null() : NULL;
	default:
		return canon_number(r);
	}
}

int
cs_json_read_canonical(json_t **out, const char *buf, size_t len)
{
	canon_reader r = {buf, buf + len, NULL, 0};
	json_t *value = NULL;

	*out = NULL;
	if (len < 3 || len > CS_JSON_MAX_BYTES || (buf[0] != '{' && buf[0] != '['))
		return 0;
	/* No string's contents are longer than the text. */
	r.scratch_cap = len;
	if ((r.scratch = malloc(len)) == NULL)
		return 0;
	value = canon_value(&r, 0);
	free(r.scratch);
	if (value == NULL || r.end - r.p != 1 || *r.p != '\n') {
		json_decref(value);
		return 0;
	}
	*out = value;
	return 1;
}

int
cs_json_parse_canonical(json_t **out, const char *buf, size_t len,
			const char *name)
{
	char *again = NULL;
	size_t again_len = 0;
	int error, same;

	if (cs_json_read_canonical(out, buf, len))
		return 0;
	if ((error = cs_json_parse(out, buf, len, name)) < 0)
		return error;
	same = cs_json_canonical(&again, &again_len, *out) == 0 &&
	       again_len == len && memcmp(again, buf, len) == 0;
	free(again);
	if (same)
		return 0;
	json_decref(*out);
	*out = NULL;
	return cs_error_set(CS_EINVALID,
			    "%s%snot in canonical form (sorted keys, 2-space"
			    " indent, final newline)",
			    name ? name : "", name_sep(name));
}

int
cs_json_is_canonical(const char *buf, size_t len)
{
	json_t *value = NULL;
	int error = cs_json_parse_canonical(&value, buf, len, NULL);

	json_decref(value);
	return error == 0;
}

/* RFC 6901 §4: one reference token, unescaped into `key`. */
static int
pointer_token(char *key, size_t size, const char **ptr)
{
	const char *p = *ptr + 1;
	size_t k = 0;

	for (; *p && *p != '/'; p++) {
		char ch = *p;

		if (ch == '~') {
			if (p[1] != '0' && p[1] != '1')
				return -1;
			ch = p[1] == '1' ? '/' : '~';
			p++;
		}
		if (k + 1 >= size)
			return -1;
		key[k++] = ch;
	}
	key[k] = '\0';
	*ptr = p;
	return 0;
}

static json_t *
pointer_step(const json_t *v, const char *key)
{
	char *end;
	unsigned long i;

	if (json_is_object(v))
		return json_object_get(v, key);
	if (!json_is_array(v) || *key == '\0' ||
	    (key[0] == '0' && key[1] != '\0'))
		return NULL;
	i = strtoul(key, &end, 10);
	return *end == '\0' ? json_array_get(v, i) : NULL;
}

json_t *
cs_json_pointer_get(const json_t *root, const char *ptr)
{
	char key[1024];
	const json_t *v = root;

	while (v && *ptr) {
		if (*ptr != '/' || pointer_token(key, sizeof(key), &ptr) < 0)
			return NULL;
		v = pointer_step(v, key);
	}
	return (json_t *)v;
}

int
cs_json_pointer_set(json_t *root, const char *ptr, json_t *value)
{
	const char *last = strrchr(ptr, '/'), *tail;
	char key[1024], *head;
	json_t *parent;
	int error = CS_EINVALID;

	if (last == NULL || (head = strndup(ptr, (size_t)(last - ptr))) == NULL)
		goto done;
	parent = cs_json_pointer_get(root, head);
	free(head);
	tail = last;
	if (pointer_token(key, sizeof(key), &tail) < 0)
		goto done;
	if (json_is_object(parent)) {
		if (value == NULL)
			json_object_del(parent, key);
		else
			json_object_set(parent, key, value);
		error = 0;
	} else if (json_is_array(parent) && pointer_step(parent, key)) {
		size_t i = strtoul(key, NULL, 10);

		if (value == NULL)
			json_array_remove(parent, i);
		else
			json_array_set(parent, i, value);
		error = 0;
	}
done:
	json_decref(value);
	return error ? cs_error_set(CS_EINVALID,
				    "no field \"%s\" to set in the record", ptr)
		     : 0;
}
