/*
 * The verdicts a node keeps between verifications: docs/architecture.md
 * "Verification" ("What is judged once").
 *
 * A file of lines "<commit id> <flags>\n" under a header naming the rules
 * they were reached with.  Every line stands on its own (a commit's
 * verdict is a function of the commit and its ancestors), so a line that
 * is not exactly of that form — a torn write after a crash — is skipped,
 * and a file of other rules is ignored whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cartosync/consortium.h"
#include "cartosync/error.h"
#include "cartosync/verify.h"

/*
 * Bumped whenever what cs_verify() accepts changes: verdicts reached with
 * other rules (or for another protocol version) are not reused.
 */
#define RULES 1
#define HEADER_FMT "cartosync verdicts, rules %d, protocol %d\n"
#define LINE_LEN (CS_OID_HEXSZ + 3) /* hex, space, flag digit, newline */

struct cs_verdicts {
	char *path;
	cs_oid *ids;
	uint8_t *flags; /* 0: empty slot; else CS_VERDICT_VALID | ... */
	size_t mask;
	size_t count;
	size_t saved; /* entries when loaded or last written */
};

static size_t
slot_of(const cs_verdicts *v, const cs_oid *id)
{
	size_t h;

	memcpy(&h, id->id, sizeof(h));
	h &= v->mask;
	while (v->flags[h] && cs_oid_cmp(&v->ids[h], id) != 0)
		h = (h + 1) & v->mask;
	return h;
}

static int
grow(cs_verdicts *v)
{
	size_t cap = v->mask ? (v->mask + 1) * 2 : 1024;
	cs_oid *ids = calloc(cap, sizeof(*ids));
	uint8_t *flags = calloc(cap, 1);
	cs_verdicts old = *v;

	if (ids == NULL || flags == NULL) {
		free(ids);
		free(flags);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	v->ids = ids;
	v->flags = flags;
	v->mask = cap - 1;
	for (size_t i = 0; old.mask && i <= old.mask; i++)
		if (old.flags[i]) {
			size_t s = slot_of(v, &old.ids[i]);

			v->ids[s] = old.ids[i];
			v->flags[s] = old.flags[i];
		}
	free(old.ids);
	free(old.flags);
	return 0;
}

int
cs_verdicts_put(cs_verdicts *v, const cs_oid *commit, unsigned flags)
{
	size_t s;
	int error;

	if ((v->count + 1) * 2 > v->mask + 1 && (error = grow(v)) < 0)
		return error;
	s = slot_of(v, commit);
	if (!v->flags[s])
		v->count++;
	v->ids[s] = *commit;
	v->flags[s] = (uint8_t)(flags | CS_VERDICT_VALID);
	return 0;
}

unsigned
cs_verdicts_get(const cs_verdicts *v, const cs_oid *commit)
{
	if (v == NULL || v->count == 0)
		return 0;
	return v->flags[slot_of(v, commit)];
}

size_t
cs_verdicts_count(const cs_verdicts *v)
{
	return v ? v->count : 0;
}

/* Read the file at v->path into v (nothing when it is absent). */
static int
load(cs_verdicts *v)
{
	char header[64], line[LINE_LEN + 2];
	FILE *f = fopen(v->path, "re");
	int error = 0;

	if (f == NULL)
		return errno == ENOENT
			       ? 0
			       : cs_error_set(CS_ERROR, "cannot read '%s': %s",
					      v->path, strerror(errno));
	snprintf(header, sizeof(header), HEADER_FMT, RULES,
		 CS_PROTOCOL_VERSION);
	if (fgets(line, sizeof(line), f) == NULL || strcmp(line, header)) {
		fclose(f);
		return 0;
	}
	while (error == 0 && fgets(line, sizeof(line), f)) {
		cs_oid id;

		if (strlen(line) != LINE_LEN || line[CS_OID_HEXSZ] != ' ' ||
		    line[LINE_LEN - 1] != '\n' ||
		    line[CS_OID_HEXSZ + 1] < '1' ||
		    line[CS_OID_HEXSZ + 1] > '3' ||
		    cs_oid_parse(&id, line, CS_OID_HEXSZ) < 0)
			continue;
		error = cs_verdicts_put(v, &id,
					(unsigned)(line[CS_OID_HEXSZ + 1] - '0'));
	}
	fclose(f);
	return error;
}

int
cs_verdicts_open(cs_verdicts **out, const char *path)
{
	cs_verdicts *v = calloc(1, sizeof(*v));
	int error;

	*out = NULL;
	if (v == NULL || (v->path = strdup(path)) == NULL) {
		free(v);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	if ((error = load(v)) < 0) {
		cs_verdicts_free(v);
		return error;
	}
	v->saved = v->count;
	*out = v;
	return 0;
}

int
cs_verdicts_save(cs_verdicts *v)
{
	char *tmp = NULL;
	FILE *f;
	int error = 0;

	if (v->count == v->saved)
		return 0;
	/* Another process may have added verdicts meanwhile: keep them. */
	if ((error = load(v)) < 0)
		return error;
	if (asprintf(&tmp, "%s.%ld.tmp", v->path, (long)getpid()) < 0)
		return cs_error_set(CS_ERROR, "out of memory");
	if ((f = fopen(tmp, "we")) == NULL) {
		error = cs_error_set(CS_ERROR, "cannot write '%s': %s", tmp,
				     strerror(errno));
		free(tmp);
		return error;
	}
	fprintf(f, HEADER_FMT, RULES, CS_PROTOCOL_VERSION);
	for (size_t i = 0; i <= v->mask; i++)
		if (v->flags[i]) {
			char hex[CS_OID_HEXSZ + 1];

			cs_oid_fmt(hex, &v->ids[i]);
			fprintf(f, "%s %u\n", hex, v->flags[i]);
		}
	if (ferror(f) | fclose(f) || rename(tmp, v->path) < 0) {
		error = cs_error_set(CS_ERROR, "cannot write '%s': %s",
				     v->path, strerror(errno));
		unlink(tmp);
	} else {
		v->saved = v->count;
	}
	free(tmp);
	return error;
}

void
cs_verdicts_free(cs_verdicts *v)
{
	if (v == NULL)
		return;
	free(v->path);
	free(v->ids);
	free(v->flags);
	free(v);
}
