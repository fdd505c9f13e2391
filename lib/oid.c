#include <string.h>

#include "cartosync/error.h"
#include "cartosync/oid.h"

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
cs_oid_parse(cs_oid *out, const char *hex, size_t len)
{
	size_t i;

	if (len != CS_OID_HEXSZ)
		return cs_error_set(CS_EINVALID,
				    "object id must be 40 hex digits");
	for (i = 0; i < CS_OID_RAWSZ; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return cs_error_set(CS_EINVALID,
					    "object id '%.40s' is not lowercase"
					    " hex",
					    hex);
		out->id[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void
cs_oid_fmt(char out[CS_OID_HEXSZ + 1], const cs_oid *oid)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < CS_OID_RAWSZ; i++) {
		out[2 * i] = digits[oid->id[i] >> 4];
		out[2 * i + 1] = digits[oid->id[i] & 0xf];
	}
	out[CS_OID_HEXSZ] = '\0';
}

int
cs_oid_cmp(const cs_oid *a, const cs_oid *b)
{
	return memcmp(a->id, b->id, CS_OID_RAWSZ);
}

int
cs_oid_is_zero(const cs_oid *oid)
{
	static const cs_oid zero;

	return memcmp(oid->id, zero.id, CS_OID_RAWSZ) == 0;
}
