/*
 * The exact commit grammar of docs/protocol.md §2.  A commit that deviates
 * in any byte is rejected: git does not sign its own gpgsig header, so any
 * freedom in how a commit is written would let one signature mint several
 * commit ids.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/commit.h"
#include "cartosync/error.h"

typedef struct {
	const char *p;
	const char *end;
} cursor;

/* The next line without its "\n"; fails if there is no "\n". */
static int
next_line(const char **line, size_t *len, cursor *c)
{
	const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));

	if (nl == NULL)
		return cs_error_set(CS_EINVALID,
				    "commit header ends without a newline");
	*line = c->p;
	*len = (size_t)(nl - c->p);
	c->p = nl + 1;
	return 0;
}

static int
starts_with(const char *line, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(line, prefix, n) == 0;
}

static int
parse_oid_line(cs_oid *out, const char *line, size_t len, const char *key)
{
	size_t n = strlen(key);

	if (!starts_with(line, len, key) || line[n] != ' ')
		return cs_error_set(CS_EINVALID, "expected a \"%s\" header", key);
	if (cs_oid_parse(out, line + n + 1, len - n - 1) < 0)
		return cs_error_set(CS_EINVALID,
				    "\"%s\" header does not hold an object id",
				    key);
	return 0;
}

static int
parse_decimal(int64_t *out, const char *s, size_t len)
{
	int64_t v = 0;
	size_t i;

	if (len == 0 || len > 15 || (len > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* "Name <email> seconds +hhmm" */
static int
parse_ident(cs_ident *out, const char *s, size_t len, const char *key)
{
	const char *lt, *gt, *sp, *tz;
	int64_t seconds;
	int hh, mm;

	lt = memchr(s, '<', len);
	gt = lt ? memchr(lt, '>', len - (size_t)(lt - s)) : NULL;
	if (lt == NULL || gt == NULL || lt - 1 <= s || lt[-1] != ' ' ||
	    memchr(s, '>', (size_t)(lt - s)))
		goto bad;
	if (memchr(lt + 1, '<', (size_t)(gt - lt - 1)) ||
	    memchr(gt + 1, '<', len - (size_t)(gt + 1 - s)) ||
	    memchr(gt + 1, '>', len - (size_t)(gt + 1 - s)))
		goto bad;
	sp = gt + 1;
	if (sp >= s + len || *sp != ' ')
		goto bad;
	tz = memchr(sp + 1, ' ', len - (size_t)(sp + 1 - s));
	if (tz == NULL ||
	    parse_decimal(&seconds, sp + 1, (size_t)(tz - sp - 1)) < 0)
		goto bad;
	tz++;
	if ((size_t)(s + len - tz) != 5 || (tz[0] != '+' && tz[0] != '-'))
		goto bad;
	for (int i = 1; i < 5; i++)
		if (tz[i] < '0' || tz[i] > '9')
			goto bad;
	hh = (tz[1] - '0') * 10 + (tz[2] - '0');
	mm = (tz[3] - '0') * 10 + (tz[4] - '0');
	/* One spelling per offset: "-0000" would re-serialise as "+0000". */
	if (mm > 59 || (tz[0] == '-' && hh == 0 && mm == 0))
		goto bad;

	out->name = strndup(s, (size_t)(lt - 1 - s));
	out->email = strndup(lt + 1, (size_t)(gt - lt - 1));
	if (out->name == NULL || out->email == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	out->time = seconds;
	out->tz_minutes = (tz[0] == '-' ? -1 : 1) * (hh * 60 + mm);
	return 0;
bad:
	return cs_error_set(CS_EINVALID, "malformed \"%s\" header", key);
}

static int
valid_utf8(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		for (size_t k = 1; k <= n; k++) {
			if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

/*
 * Read the gpgsig header starting at `line` (already known to start with
 * "gpgsig ") and its continuation lines; builds the armor and leaves the
 * cursor after the header.
 */
static int
parse_gpgsig(char **armor, const char *line, size_t len, cursor *c)
{
	size_t cap = len + 1024, used = 0;
	char *buf = malloc(cap);

	*armor = NULL;
	if (buf == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	memcpy(buf, line + 7, len - 7);
	used = len - 7;
	while (c->p < c->end && *c->p == ' ') {
		const char *l = NULL;
		size_t n = 0;

		if (next_line(&l, &n, c) < 0) {
			free(buf);
			return CS_EINVALID;
		}
		if (used + n + 1 > cap) {
			char *grown;

			cap = (used + n + 1) * 2;
			if ((grown = realloc(buf, cap)) == NULL) {
				free(buf);
				return cs_error_set(CS_ERROR, "out of memory");
			}
			buf = grown;
		}
		buf[used++] = '\n';
		memcpy(buf + used, l + 1, n - 1);
		used += n - 1;
	}
	buf[used] = '\0';
	*armor = buf;
	return 0;
}

int
cs_commit_parse(cs_commit **out, const char *buf, size_t len)
{
	cs_commit *commit = NULL;
	cursor c = {buf, buf + len};
	const char *line = NULL, *sig_start = NULL, *sig_end = NULL;
	size_t n = 0;
	int error;

	*out = NULL;
	if (len > CS_COMMIT_MAX_BYTES)
		return cs_error_set(CS_ELIMIT, "commit is larger than %d bytes",
				    CS_COMMIT_MAX_BYTES);
	/* A NUL would cut the armor short of what the signature covers. */
	if (memchr(buf, '\0', len))
		return cs_error_set(CS_EINVALID, "commit contains a NUL byte");
	if ((commit = calloc(1, sizeof(*commit))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");

	if ((error = next_line(&line, &n, &c)) < 0 ||
	    (error = parse_oid_line(&commit->tree, line, n, "tree")) < 0)
		goto done;

	if ((error = next_line(&line, &n, &c)) < 0)
		goto done;
	while (starts_with(line, n, "parent ")) {
		if (commit->parent_count == 2) {
			error = cs_error_set(CS_EINVALID,
					     "a commit has at most two parents");
			goto done;
		}
		if ((error = parse_oid_line(
			     &commit->parents[commit->parent_count++], line, n,
			     "parent")) < 0 ||
		    (error = next_line(&line, &n, &c)) < 0)
			goto done;
	}

	if (!starts_with(line, n, "author ")) {
		error = cs_error_set(CS_EINVALID,
				     "expected an \"author\" header");
		goto done;
	}
	if ((error = parse_ident(&commit->author, line + 7, n - 7, "author")) <
		    0 ||
	    (error = next_line(&line, &n, &c)) < 0)
		goto done;
	if (!starts_with(line, n, "committer ")) {
		error = cs_error_set(CS_EINVALID,
				     "expected a \"committer\" header");
		goto done;
	}
	if ((error = parse_ident(&commit->committer, line + 10, n - 10,
				 "committer")) < 0 ||
	    (error = next_line(&line, &n, &c)) < 0)
		goto done;

	if (starts_with(line, n, "gpgsig ")) {
		sig_start = line;
		if ((error = parse_gpgsig(&commit->signature, line, n, &c)) < 0)
			goto done;
		sig_end = c.p;
		if ((error = next_line(&line, &n, &c)) < 0)
			goto done;
	}
	if (n != 0) {
		const char *sp = memchr(line, ' ', n);
		int keylen = sp ? (int)(sp - line) : (int)n;

		error = cs_error_set(CS_EINVALID, "unexpected header \"%.*s\"",
				     keylen > 40 ? 40 : keylen, line);
		goto done;
	}

	if (!valid_utf8((const unsigned char *)c.p, (size_t)(c.end - c.p))) {
		error = cs_error_set(CS_EINVALID,
				     "commit message is not valid UTF-8 text");
		goto done;
	}
	if ((commit->message = strndup(c.p, (size_t)(c.end - c.p))) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}

	switch (commit->parent_count) {
	case 0:
		commit->kind = CS_COMMIT_GENESIS;
		break;
	case 1:
		commit->kind = CS_COMMIT_EDIT;
		break;
	default:
		commit->kind = CS_COMMIT_MERGE;
		break;
	}
	if (commit->kind != CS_COMMIT_MERGE && commit->signature == NULL) {
		error = cs_error_set(CS_EINVALID, "commit is not signed");
		goto done;
	}
	if (commit->kind == CS_COMMIT_MERGE && commit->signature != NULL) {
		error = cs_error_set(CS_EINVALID, "a merge must not be signed");
		goto done;
	}

	/* The payload: everything but the gpgsig header. */
	commit->payload_len = len - (size_t)(sig_end - sig_start);
	if ((commit->payload = malloc(commit->payload_len + 1)) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	if (sig_start) {
		size_t head = (size_t)(sig_start - buf);

		memcpy(commit->payload, buf, head);
		memcpy(commit->payload + head, sig_end,
		       len - (size_t)(sig_end - buf));
	} else {
		memcpy(commit->payload, buf, len);
	}
	commit->payload[commit->payload_len] = '\0';

	*out = commit;
	commit = NULL; /* transferred */
	error = 0;
done:
	cs_commit_free(commit);
	return error;
}

char *
cs_ident_format(const cs_ident *ident)
{
	char *s = NULL;
	int tz = ident->tz_minutes < 0 ? -ident->tz_minutes : ident->tz_minutes;

	if (asprintf(&s, "%s <%s> %" PRId64 " %c%02d%02d", ident->name,
		     ident->email, ident->time,
		     ident->tz_minutes < 0 ? '-' : '+', tz / 60, tz % 60) < 0)
		return NULL;
	return s;
}

static int
ident_ok(const cs_ident *ident)
{
	return ident->name && ident->email && ident->name[0] &&
	       !strpbrk(ident->name, "<>\n") && !strpbrk(ident->email, "<>\n") &&
	       ident->time >= 0;
}

int
cs_commit_format_payload(char **out, size_t *outlen, const cs_commit *commit)
{
	char tree[CS_OID_HEXSZ + 1], parent[2][CS_OID_HEXSZ + 1];
	char *author = NULL, *committer = NULL, *text = NULL;
	int error = CS_ERROR, n;

	*out = NULL;
	if (commit->parent_count > 2 || !ident_ok(&commit->author) ||
	    !ident_ok(&commit->committer) || commit->message == NULL)
		return cs_error_set(CS_EINVALID, "incomplete commit fields");
	cs_oid_fmt(tree, &commit->tree);
	for (size_t i = 0; i < commit->parent_count; i++)
		cs_oid_fmt(parent[i], &commit->parents[i]);
	author = cs_ident_format(&commit->author);
	committer = cs_ident_format(&commit->committer);
	if (author == NULL || committer == NULL)
		goto oom;

	n = asprintf(&text, "tree %s\n%s%s%s%s%s%sauthor %s\ncommitter %s\n\n%s",
		     tree, commit->parent_count > 0 ? "parent " : "",
		     commit->parent_count > 0 ? parent[0] : "",
		     commit->parent_count > 0 ? "\n" : "",
		     commit->parent_count > 1 ? "parent " : "",
		     commit->parent_count > 1 ? parent[1] : "",
		     commit->parent_count > 1 ? "\n" : "", author, committer,
		     commit->message);
	if (n < 0)
		goto oom;
	*out = text;
	*outlen = (size_t)n;
	error = 0;
	goto done;
oom:
	error = cs_error_set(CS_ERROR, "out of memory");
done:
	free(author);
	free(committer);
	return error;
}

int
cs_commit_add_signature(char **out, size_t *outlen, const char *payload,
			size_t payload_len, const char *armor)
{
	const char *committer, *after;
	size_t head, lines = 1, alen = strlen(armor), pos;
	char *buf;

	*out = NULL;
	committer = memmem(payload, payload_len, "\ncommitter ", 11);
	if (committer == NULL)
		return cs_error_set(CS_EINVALID, "payload has no committer");
	after = memchr(committer + 1, '\n',
		       payload_len - (size_t)(committer + 1 - payload));
	if (after == NULL)
		return cs_error_set(CS_EINVALID, "payload has no committer");
	head = (size_t)(after + 1 - payload);
	for (size_t i = 0; i < alen; i++)
		lines += armor[i] == '\n';

	/* "gpgsig " + armor with "\n " for "\n" + "\n" */
	if ((buf = malloc(payload_len + 7 + alen + lines + 2)) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	memcpy(buf, payload, head);
	pos = head;
	memcpy(buf + pos, "gpgsig ", 7);
	pos += 7;
	for (size_t i = 0; i < alen; i++) {
		buf[pos++] = armor[i];
		if (armor[i] == '\n')
			buf[pos++] = ' ';
	}
	buf[pos++] = '\n';
	memcpy(buf + pos, payload + head, payload_len - head);
	pos += payload_len - head;
	buf[pos] = '\0';
	*out = buf;
	*outlen = pos;
	return 0;
}

static void
ident_dispose(cs_ident *ident)
{
	free(ident->name);
	free(ident->email);
}

void
cs_commit_free(cs_commit *commit)
{
	if (commit == NULL)
		return;
	ident_dispose(&commit->author);
	ident_dispose(&commit->committer);
	free(commit->signature);
	free(commit->message);
	free(commit->payload);
	free(commit);
}
