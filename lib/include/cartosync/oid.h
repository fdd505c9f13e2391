/*
 * cartosync — object ids (SHA-1, as git uses them).
 */
#ifndef CARTOSYNC_OID_H
#define CARTOSYNC_OID_H

#include <stddef.h>
#include <stdint.h>

#define CS_OID_RAWSZ 20
#define CS_OID_HEXSZ 40

typedef struct {
	uint8_t id[CS_OID_RAWSZ];
} cs_oid;

/* Parse exactly 40 lowercase hex digits; CS_EINVALID otherwise. */
int cs_oid_parse(cs_oid *out, const char *hex, size_t len);

/* Write 40 hex digits and a NUL into `out`. */
void cs_oid_fmt(char out[CS_OID_HEXSZ + 1], const cs_oid *oid);

/* memcmp order: the canonical order of commit ids. */
int cs_oid_cmp(const cs_oid *a, const cs_oid *b);

int cs_oid_is_zero(const cs_oid *oid);

#endif
