/*
 * SSH wire encoding (RFC 4251 §5) shared by the key and signature modules.
 * Internal to the library: not installed, not part of the contract.
 */
#ifndef CARTOSYNC_SSHBUF_H
#define CARTOSYNC_SSHBUF_H

#include <stddef.h>
#include <stdint.h>

/* Reading over a borrowed buffer; every read fails (-1) past its end. */
struct sshbuf_reader {
	const uint8_t *p;
	size_t left;
};

int sshbuf_read_bytes(struct sshbuf_reader *r, const uint8_t **v, size_t len);
int sshbuf_read_u32(struct sshbuf_reader *r, uint32_t *v);
int sshbuf_read_string(struct sshbuf_reader *r, const uint8_t **v,
		       size_t *len);

/* Whether the string `s` of `len` bytes equals `want`. */
int sshbuf_string_is(const uint8_t *s, size_t len, const char *want);

/* Writing into a buffer sized exactly beforehand; return the next byte. */
uint8_t *sshbuf_put_u32(uint8_t *p, uint32_t v);
uint8_t *sshbuf_put_string(uint8_t *p, const void *s, size_t len);

/*
 * Quote at most 40 bytes of untrusted text for a message: printable ASCII
 * as is, anything else as '?', so that a message stays one line.
 */
const char *sshbuf_quote(char buf[48], const uint8_t *s, size_t len);

#endif
