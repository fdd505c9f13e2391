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
static int
encode_real(strbuf *b, double v)
{
	char num[64];
	char *end;

	if (!isfinite(v))
		return cs_error_set(CS_EINVALID, "number is not finite");
	if (fabs(v) > EXACT_LIMIT)
		return cs_error_set(CS_EINVALID, "number %g is beyond 2^53", v);

	snprintf(num, sizeof(num), "%.*f", REAL_DECIMALS, v);
	end = num + strlen(num);
	while (end[-1] == '0')
		end--;
	if (end[-1] == '.')
		end--;
	*end = '\0';
	buf_adds(b, strcmp(num, "-0") == 0 ? "0" : num);
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

int
cs_json_is_canonical(const char *buf, size_t len)
{
	char *canon = NULL;
	size_t canon_len;
	int same;

	if (cs_json_canonicalize(&canon, &canon_len, buf, len, NULL) < 0)
		return 0;
	same = canon_len == len && memcmp(canon, buf, len) == 0;
	free(canon);
	return same;
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
