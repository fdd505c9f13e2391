/*
 * cartosync — base64, RFC 4648 §4 (standard alphabet, with padding).
 *
 * The decoder accepts exactly one spelling of every byte string: the length
 * must be a multiple of 4, '=' may only appear as the last one or two
 * characters of the text (RFC 4648 §3.2), and the unused low bits of the last
 * quantum must be zero (RFC 4648 §3.5).  No whitespace is skipped: callers
 * that read wrapped text (armors) check the line structure themselves, so
 * that a signature has one armored form and therefore one commit id.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cartosync/base64.h"
#include "cartosync/error.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Value of a base64 digit, or -1 for any other byte ('=' included). */
static int
digit_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
cs_base64_encode(char **out, const uint8_t *data, size_t len)
{
	char *text = NULL, *p;
	size_t i, textlen;
	uint32_t v;

	*out = NULL;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 2)
		return cs_error_set(CS_ELIMIT, "base64 input of %zu bytes is "
				    "too long", len);
	textlen = (len + 2) / 3 * 4;
	if ((text = malloc(textlen + 1)) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");

	p = text;
	for (i = 0; i + 3 <= len; i += 3) {
		v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 |
		    data[i + 2];
		*p++ = alphabet[v >> 18 & 0x3f];
		*p++ = alphabet[v >> 12 & 0x3f];
		*p++ = alphabet[v >> 6 & 0x3f];
		*p++ = alphabet[v & 0x3f];
	}
	if (len - i == 1) {
		v = (uint32_t)data[i] << 16;
		*p++ = alphabet[v >> 18 & 0x3f];
		*p++ = alphabet[v >> 12 & 0x3f];
		*p++ = '=';
		*p++ = '=';
	} else if (len - i == 2) {
		v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
		*p++ = alphabet[v >> 18 & 0x3f];
		*p++ = alphabet[v >> 12 & 0x3f];
		*p++ = alphabet[v >> 6 & 0x3f];
		*p++ = '=';
	}
	*p = '\0';

	*out = text;
	return 0;
}

int
cs_base64_decode(uint8_t **out, size_t *outlen, const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	uint8_t *buf = NULL;
	size_t i, j, pad = 0, n = 0;
	int d[4], k, error = CS_EINVALID;

	*out = NULL;
	*outlen = 0;

	if (len % 4 != 0) {
		cs_error_set(CS_EINVALID, "base64 length %zu is not a "
			     "multiple of 4", len);
		goto done;
	}
	if (len > 0 && s[len - 1] == '=')
		pad = (len > 1 && s[len - 2] == '=') ? 2 : 1;
	n = len / 4 * 3 - pad;

	/* malloc(0) may return NULL; an empty result is still a buffer. */
	if ((buf = malloc(n > 0 ? n : 1)) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}

	for (i = 0, j = 0; i < len; i += 4) {
		int last = (i + 4 == len);

		for (k = 0; k < 4; k++) {
			d[k] = digit_value(s[i + k]);
			if (d[k] >= 0)
				continue;
			/* '=' only as the final one or two characters. */
			if (s[i + k] == '=' && last && k >= 4 - (int)pad)
				d[k] = 0;
			else if (s[i + k] == '=') {
				cs_error_set(CS_EINVALID, "misplaced base64 "
					     "padding at offset %zu", i + k);
				goto done;
			} else {
				cs_error_set(CS_EINVALID, "invalid base64 "
					     "character at offset %zu", i + k);
				goto done;
			}
		}
		if (last && pad == 2 && (d[1] & 0x0f) != 0) {
			cs_error_set(CS_EINVALID, "non-zero trailing bits in "
				     "base64");
			goto done;
		}
		if (last && pad == 1 && (d[2] & 0x03) != 0) {
			cs_error_set(CS_EINVALID, "non-zero trailing bits in "
				     "base64");
			goto done;
		}
		buf[j++] = (uint8_t)(d[0] << 2 | d[1] >> 4);
		if (!(last && pad == 2))
			buf[j++] = (uint8_t)((d[1] & 0x0f) << 4 | d[2] >> 2);
		if (!(last && pad >= 1))
			buf[j++] = (uint8_t)((d[2] & 0x03) << 6 | d[3]);
	}

	*out = buf;
	*outlen = n;
	buf = NULL; /* transferred */
	error = 0;
done:
	/* The text may be a private key file: leave nothing of it behind. */
	if (buf != NULL)
		OPENSSL_cleanse(buf, n > 0 ? n : 1);
	free(buf);
	return error;
}
