#include <string.h>

#include "sshbuf.h"

int
sshbuf_read_bytes(struct sshbuf_reader *r, const uint8_t **v, size_t len)
{
	if (r->left < len)
		return -1;
	*v = r->p;
	r->p += len;
	r->left -= len;
	return 0;
}

int
sshbuf_read_u32(struct sshbuf_reader *r, uint32_t *v)
{
	const uint8_t *b;

	if (sshbuf_read_bytes(r, &b, 4) < 0)
		return -1;
	*v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	     (uint32_t)b[2] << 8 | b[3];
	return 0;
}

int
sshbuf_read_string(struct sshbuf_reader *r, const uint8_t **v, size_t *len)
{
	uint32_t n;

	if (sshbuf_read_u32(r, &n) < 0 || sshbuf_read_bytes(r, v, n) < 0)
		return -1;
	*len = n;
	return 0;
}

int
sshbuf_string_is(const uint8_t *s, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(s, want, len) == 0;
}

uint8_t *
sshbuf_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

uint8_t *
sshbuf_put_string(uint8_t *p, const void *s, size_t len)
{
	p = sshbuf_put_u32(p, (uint32_t)len);
	memcpy(p, s, len);
	return p + len;
}

const char *
sshbuf_quote(char buf[48], const uint8_t *s, size_t len)
{
	size_t i, n = len > 40 ? 40 : len;

	for (i = 0; i < n; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
	if (n < len) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}
