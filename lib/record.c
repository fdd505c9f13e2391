#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/record.h"

const char *const cs_record_types[] = {
	"organization", "location",	   "service",
	"contact",	"referral_pathway", "referral_flow",
	"need",		"staffcare_session", NULL,
};

int
cs_record_type_known(const char *type)
{
	for (size_t i = 0; type && cs_record_types[i]; i++)
		if (strcmp(type, cs_record_types[i]) == 0)
			return 1;
	return 0;
}

int
cs_uuid_valid(const char *s)
{
	static const int dash[] = {8, 13, 18, 23};
	size_t i, d = 0;

	if (s == NULL || strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (d < 4 && (int)i == dash[d]) {
			if (s[i] != '-')
				return 0;
			d++;
		} else if (!((s[i] >= '0' && s[i] <= '9') ||
			     (s[i] >= 'a' && s[i] <= 'f'))) {
			return 0;
		}
	}
	return 1;
}

int
cs_uuid_generate(char out[37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return cs_error_set(CS_ERROR, "no random numbers");
	b[6] = (b[6] & 0x0f) | 0x40; /* RFC 4122 §4.4: version 4 */
	b[8] = (b[8] & 0x3f) | 0x80; /* variant 10 */
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

int
cs_org_code_valid(const char *s)
{
	size_t n;

	if (s == NULL || !(s[0] >= 'a' && s[0] <= 'z'))
		return 0;
	n = strlen(s);
	if (n < 2 || n > 32)
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

const char *
cs_record_id(const json_t *record)
{
	return json_string_value(json_object_get(record, "id"));
}

const char *
cs_record_type(const json_t *record)
{
	return json_string_value(json_object_get(record, "x_record_type"));
}

const char *
cs_record_owner(const json_t *record)
{
	return json_string_value(json_object_get(record, "x_owner"));
}

int
cs_record_path(char **out, const json_t *record)
{
	const char *id = cs_record_id(record);
	const char *type = cs_record_type(record);
	const char *owner = cs_record_owner(record);

	*out = NULL;
	if (!json_is_object(record))
		return cs_error_set(CS_EINVALID, "a record is a JSON object");
	if (id == NULL)
		return cs_error_set(CS_EINVALID, "record has no \"id\"");
	if (!cs_uuid_valid(id))
		return cs_error_set(CS_EINVALID,
				    "id \"%.64s\" is not a lowercase UUID", id);
	if (!cs_record_type_known(type))
		return cs_error_set(CS_EINVALID,
				    "x_record_type \"%.64s\" is not a record"
				    " type",
				    type ? type : "");
	if (owner == NULL ||
	    (strcmp(owner, CS_OWNER_SHARED) != 0 && !cs_org_code_valid(owner)))
		return cs_error_set(CS_EINVALID,
				    "x_owner \"%.64s\" is not an organisation"
				    " code",
				    owner ? owner : "");
	if (asprintf(out, "records/%s/%s/%.2s/%s.json", owner, type, id, id) <
	    0) {
		*out = NULL;
		return cs_error_set(CS_ERROR, "out of memory");
	}
	return 0;
}

int
cs_record_path_parse(const char *path, char **owner, char **type, char **id)
{
	char *copy = NULL, *parts[5], *save = NULL, *tok;
	size_t n = 0, idlen;
	int error = CS_EINVALID;

	/* strtok_r would fold empty segments: refuse them first. */
	if (strncmp(path, "records/", 8) != 0 || strstr(path, "//") ||
	    path[strlen(path) - 1] == '/' || (copy = strdup(path + 8)) == NULL)
		goto bad;
	for (tok = strtok_r(copy, "/", &save); tok && n < 5;
	     tok = strtok_r(NULL, "/", &save))
		parts[n++] = tok;
	if (n != 4 || tok != NULL)
		goto bad;
	idlen = strlen(parts[3]);
	if (idlen != 41 || strcmp(parts[3] + 36, ".json") != 0)
		goto bad;
	parts[3][36] = '\0';
	if (!cs_uuid_valid(parts[3]) || strncmp(parts[2], parts[3], 2) != 0 ||
	    strlen(parts[2]) != 2 || !cs_record_type_known(parts[1]) ||
	    (strcmp(parts[0], CS_OWNER_SHARED) != 0 &&
	     !cs_org_code_valid(parts[0])))
		goto bad;
	if ((owner && !(*owner = strdup(parts[0]))) ||
	    (type && !(*type = strdup(parts[1]))) ||
	    (id && !(*id = strdup(parts[3])))) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	error = 0;
	goto done;
bad:
	error = cs_error_set(CS_EINVALID,
			     "'%s' is not a record path"
			     " (records/<owner>/<type>/<xx>/<id>.json)",
			     path);
done:
	free(copy);
	return error;
}

int
cs_record_check(const cs_schema_set *schemas, const json_t *record,
		const char *path, const char *name, cs_schema_errors *errors)
{
	const char *type = cs_record_type(record);
	char schema_name[64], *expected = NULL;
	int error;

	if (!json_is_object(record))
		return cs_error_set(CS_EINVALID, "%s: a record is a JSON object",
				    name);
	if (!cs_record_type_known(type))
		return cs_error_set(CS_EINVALID,
				    "%s: /x_record_type: \"%.64s\" is not a"
				    " record type",
				    name, type ? type : "");
	snprintf(schema_name, sizeof(schema_name), "%s.schema.json", type);
	if ((error = cs_schema_validate(schemas, schema_name, record,
					errors)) < 0)
		return cs_error_prefix(error, "%s", name);
	if (path == NULL)
		return 0;
	if ((error = cs_record_path(&expected, record)) < 0)
		return cs_error_prefix(error, "%s", name);
	if (strcmp(expected, path) != 0)
		error = cs_error_set(CS_EINVALID,
				     "%s: stored at the wrong path (its id,"
				     " type and owner give %s)",
				     name, expected);
	free(expected);
	return error;
}

int
cs_record_parse_stored(json_t **out, const char *buf, size_t len,
		       const char *name)
{
	*out = NULL;
	if (len > CS_RECORD_MAX_BYTES)
		return cs_error_set(CS_ELIMIT,
				    "%s: record is %zu bytes, over the limit of"
				    " %d",
				    name, len, CS_RECORD_MAX_BYTES);
	return cs_json_parse_canonical(out, buf, len, name);
}
