/*
 * Folding of UTF-8 text without the locale: lib/text.h.
 */
#include <stdlib.h>
#include <string.h>

#include "text.h"

char *
cs_text_fold(const char *s)
{
	size_t n = strlen(s);
	unsigned char *out = malloc(n + 1), *o = out;
	const unsigned char *p = (const unsigned char *)s;

	if (out == NULL)
		return NULL;
	while (*p) {
		unsigned cp;

		if (p[0] >= 'A' && p[0] <= 'Z') {
			*o++ = (unsigned char)(*p++ + 32);
			continue;
		}
		if ((p[0] & 0xe0) != 0xc0 || (p[1] & 0xc0) != 0x80) {
			*o++ = *p++;
			continue;
		}
		cp = (unsigned)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
		if (cp >= 0xc0 && cp <= 0xde && cp != 0xd7)
			cp += 0x20;
		else if (cp >= 0x100 && cp <= 0x137 && cp % 2 == 0)
			cp += 1;
		else if (cp >= 0x139 && cp <= 0x148 && cp % 2 == 1)
			cp += 1;
		else if (cp >= 0x14a && cp <= 0x177 && cp % 2 == 0)
			cp += 1;
		else if (cp == 0x179 || cp == 0x17b || cp == 0x17d)
			cp += 1;
		*o++ = (unsigned char)(0xc0 | cp >> 6);
		*o++ = (unsigned char)(0x80 | (cp & 0x3f));
		p += 2;
	}
	*o = '\0';
	return (char *)out;
}

/*
 * The base letters of U+00C0..U+00FF; '*' marks the two-letter ones (Æ æ
 * ß Þ þ, in two_letters) and ' ' the signs × and ÷.
 */
static const char latin1[] = "aaaaaa*ceeeeiiii"  /* C0 */
			     "dnooooo ouuuuy**"  /* D0 */
			     "aaaaaa*ceeeeiiii"  /* E0 */
			     "dnooooo ouuuuy*y"; /* F0 */

/* U+0100..U+017F; '*' marks Ĳ ĳ Œ œ. */
static const char latin_a[] = "aaaaaacccccccc"  /* 0100 */
			      "dddd"            /* 010E */
			      "eeeeeeeeee"      /* 0112 */
			      "gggggggg"        /* 011C */
			      "hhhh"            /* 0124 */
			      "iiiiiiiiii"      /* 0128 */
			      "**"              /* 0132 */
			      "jj"              /* 0134 */
			      "kkk"             /* 0136 */
			      "llllllllll"      /* 0139 */
			      "nnnnnnnnn"       /* 0143 */
			      "oooooo"          /* 014C */
			      "**"              /* 0152 */
			      "rrrrrr"          /* 0154 */
			      "ssssssss"        /* 015A */
			      "tttttt"          /* 0162 */
			      "uuuuuuuuuuuu"    /* 0168 */
			      "ww"              /* 0174 */
			      "yyy"             /* 0176 */
			      "zzzzzz"          /* 0179 */
			      "s";              /* 017F */

_Static_assert(sizeof(latin1) == 64 + 1, "latin1 covers U+00C0..U+00FF");
_Static_assert(sizeof(latin_a) == 128 + 1,
	       "latin_a covers U+0100..U+017F");

static const char *
two_letters(unsigned cp)
{
	switch (cp) {
	case 0xc6:
	case 0xe6:
		return "ae";
	case 0xde:
	case 0xfe:
		return "th";
	case 0xdf:
		return "ss";
	case 0x132:
	case 0x133:
		return "ij";
	default:
		return "oe"; /* 0x152, 0x153 */
	}
}

/*
 * Decode one UTF-8 character at p: its code point and length, or length
 * 1 and code point 0xfffd for a byte that does not start a well-formed
 * sequence.
 */
static size_t
decode(unsigned *cp, const unsigned char *p)
{
	size_t len, i;
	unsigned v;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if ((p[0] & 0xe0) == 0xc0) {
		len = 2;
		v = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3;
		v = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4;
		v = p[0] & 0x07;
	} else {
		*cp = 0xfffd;
		return 1;
	}
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			*cp = 0xfffd;
			return 1;
		}
		v = v << 6 | (p[i] & 0x3f);
	}
	*cp = v;
	return len;
}

static int
is_separator(unsigned cp)
{
	return (cp < 0x80 && !((cp >= '0' && cp <= '9') ||
			       (cp >= 'a' && cp <= 'z') ||
			       (cp >= 'A' && cp <= 'Z'))) ||
	       (cp >= 0x80 && cp <= 0xbf) || cp == 0xd7 || cp == 0xf7 ||
	       (cp >= 0x2000 && cp <= 0x206f) || cp == 0x3000 ||
	       cp == 0x060c || cp == 0x061b || cp == 0x061f ||
	       (cp >= 0x066a && cp <= 0x066d) || cp == 0xfeff || cp == 0xfffd;
}

/* Arabic marks that only vary in writing: harakat, superscript alef,
 * tatweel. */
static int
is_dropped(unsigned cp)
{
	return (cp >= 0x064b && cp <= 0x065f) || cp == 0x0670 ||
	       cp == 0x0640;
}

char *
cs_text_normalise(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(n + 1), *o = out;
	const unsigned char *p = (const unsigned char *)s;
	int space = 1; /* no leading space */

	if (out == NULL)
		return NULL;
	while (*p) {
		unsigned cp;
		size_t len = decode(&cp, p);
		const char *repl = NULL;
		char one[2] = {0, 0};

		if (is_dropped(cp)) {
			p += len;
			continue;
		}
		if (is_separator(cp)) {
			if (!space)
				*o++ = ' ';
			space = 1;
			p += len;
			continue;
		}
		if (cp < 0x80) {
			one[0] = (char)(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
			repl = one;
		} else if (cp >= 0xc0 && cp <= 0xff) {
			one[0] = latin1[cp - 0xc0];
			repl = one[0] == '*' ? two_letters(cp) : one;
		} else if (cp >= 0x100 && cp <= 0x17f) {
			one[0] = latin_a[cp - 0x100];
			repl = one[0] == '*' ? two_letters(cp) : one;
		} else if (cp == 0x0622 || cp == 0x0623 || cp == 0x0625) {
			repl = "\xd8\xa7"; /* U+0627 alef */
		}
		if (repl) {
			/* Never longer: a replacement has at most as many
			 * bytes as the character it replaces. */
			memcpy(o, repl, strlen(repl));
			o += strlen(repl);
		} else {
			memcpy(o, p, len);
			o += len;
		}
		space = 0;
		p += len;
	}
	if (o > out && o[-1] == ' ')
		o--;
	*o = '\0';
	return out;
}
