/*
 * cartosync — base64: RFC 4648 §10 vectors, and one spelling per byte
 * string (RFC 4648 §3.2, §3.5): every other spelling is refused.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/base64.h"
#include "cartosync/error.h"

static const struct {
	const char *plain;
	const char *encoded;
} rfc4648[] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

START_TEST(test_rfc4648_encode)
{
	char *out = NULL;
	const char *plain = rfc4648[_i].plain;

	ck_assert_int_eq(cs_base64_encode(&out, (const uint8_t *)plain,
					  strlen(plain)), 0);
	ck_assert_str_eq(out, rfc4648[_i].encoded);
	free(out);
}
END_TEST

START_TEST(test_rfc4648_decode)
{
	uint8_t *out = NULL;
	size_t outlen = 99;
	const char *text = rfc4648[_i].encoded;

	ck_assert_int_eq(cs_base64_decode(&out, &outlen, text, strlen(text)),
			 0);
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(outlen, strlen(rfc4648[_i].plain));
	ck_assert_mem_eq(out, rfc4648[_i].plain, outlen);
	free(out);
}
END_TEST

/* Every byte value, every length mod 3, and the alphabet's edges. */
START_TEST(test_binary_roundtrip)
{
	uint8_t data[300], *back;
	size_t len, backlen;
	char *text;
	int i;

	for (i = 0; i < (int)sizeof(data); i++)
		data[i] = (uint8_t)(i * 151 + 7);
	for (len = 0; len <= sizeof(data); len++) {
		ck_assert_int_eq(cs_base64_encode(&text, data, len), 0);
		ck_assert_uint_eq(strlen(text), (len + 2) / 3 * 4);
		ck_assert_int_eq(cs_base64_decode(&back, &backlen, text,
						  strlen(text)), 0);
		ck_assert_uint_eq(backlen, len);
		ck_assert(len == 0 || memcmp(back, data, len) == 0);
		free(text);
		free(back);
	}
}
END_TEST

START_TEST(test_alphabet)
{
	static const uint8_t all[] = {
		0x00, 0x10, 0x83, 0x10, 0x51, 0x87, 0x20, 0x92, 0x8b, 0x30,
		0xd3, 0x8f, 0x41, 0x14, 0x93, 0x51, 0x55, 0x97, 0x61, 0x96,
		0x9b, 0x71, 0xd7, 0x9f, 0x82, 0x18, 0xa3, 0x92, 0x59, 0xa7,
		0xa2, 0x9a, 0xab, 0xb2, 0xdb, 0xaf, 0xc3, 0x1c, 0xb3, 0xd3,
		0x5d, 0xb7, 0xe3, 0x9e, 0xbb, 0xf3, 0xdf, 0xbf,
	};
	char *text;

	ck_assert_int_eq(cs_base64_encode(&text, all, sizeof(all)), 0);
	ck_assert_str_eq(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
			       "qrstuvwxyz0123456789+/");
	free(text);
}
END_TEST

/* Inputs that some decoders accept, and which must all be refused. */
static const struct {
	const char *text;
	size_t len;
	const char *why;
} invalid[] = {
	{ "Zg", 2, "missing padding" },
	{ "Zg=", 3, "short padding" },
	{ "Zm9vY", 5, "length not a multiple of 4" },
	{ "Zh==", 4, "non-zero trailing bits (one byte)" },
	{ "Zm9=", 4, "non-zero trailing bits (two bytes)" },
	{ "Zm/=", 4, "non-zero trailing bits (two bytes, '/')" },
	{ "Z===", 4, "three padding characters" },
	{ "====", 4, "padding only" },
	{ "Zg==Zg==", 8, "padding in the middle" },
	{ "Zm=v", 4, "padding inside a quantum" },
	{ "=Zm9", 4, "leading padding" },
	{ "Zm9v====", 8, "a whole quantum of padding" },
	{ "Zm 9v", 5, "space" },
	{ "Zm9 ", 4, "trailing space" },
	{ " Zm9", 4, "leading space" },
	{ "Zm9v\n", 5, "newline" },
	{ "Zm9vYmFy\r\n", 10, "crlf" },
	{ "Zm\n9v", 5, "newline inside" },
	{ "Zm9\t", 4, "tab" },
	{ "Zm-v", 4, "url-safe '-'" },
	{ "Zm_v", 4, "url-safe '_'" },
	{ "Zm9\x80", 4, "high byte" },
	{ "Zm\0v", 4, "nul byte" },
	{ "Zm9v.", 5, "dot" },
};

START_TEST(test_reject_noncanonical)
{
	uint8_t *out = (uint8_t *)"sentinel";
	size_t outlen = 99;

	cs_error_clear();
	ck_assert_msg(cs_base64_decode(&out, &outlen, invalid[_i].text,
				       invalid[_i].len) == CS_EINVALID,
		      "accepted: %s", invalid[_i].why);
	ck_assert_ptr_null(out);
	ck_assert_uint_eq(outlen, 0);
	ck_assert_str_ne(cs_error_last(), "unknown error");
	ck_assert_ptr_null(strchr(cs_error_last(), '\n'));
}
END_TEST

/* Exactly `len` characters are read: what follows does not matter. */
START_TEST(test_decode_exact_length)
{
	uint8_t *out;
	size_t outlen;

	ck_assert_int_eq(cs_base64_decode(&out, &outlen, "Zm9v!!!!", 4), 0);
	ck_assert_uint_eq(outlen, 3);
	ck_assert_mem_eq(out, "foo", 3);
	free(out);
}
END_TEST

/* Every padded spelling of one byte but the canonical one is refused. */
START_TEST(test_one_spelling_per_byte)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
				       "nopqrstuvwxyz0123456789+/";
	char text[5] = "AA==";
	uint8_t *out;
	size_t outlen;
	int i, j, accepted = 0;

	for (i = 0; i < 64; i++) {
		for (j = 0; j < 64; j++) {
			text[0] = alphabet[i];
			text[1] = alphabet[j];
			if (cs_base64_decode(&out, &outlen, text, 4) == 0) {
				accepted++;
				ck_assert_uint_eq(outlen, 1);
				ck_assert_int_eq(j % 16, 0);
				free(out);
			}
		}
	}
	ck_assert_int_eq(accepted, 256);
}
END_TEST

static Suite *
base64_suite(void)
{
	Suite *s = suite_create("base64");
	TCase *tc = tcase_create("core");
	int nvec = (int)(sizeof(rfc4648) / sizeof(rfc4648[0]));
	int ninv = (int)(sizeof(invalid) / sizeof(invalid[0]));

	tcase_add_loop_test(tc, test_rfc4648_encode, 0, nvec);
	tcase_add_loop_test(tc, test_rfc4648_decode, 0, nvec);
	tcase_add_test(tc, test_binary_roundtrip);
	tcase_add_test(tc, test_alphabet);
	tcase_add_loop_test(tc, test_reject_noncanonical, 0, ninv);
	tcase_add_test(tc, test_decode_exact_length);
	tcase_add_test(tc, test_one_spelling_per_byte);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(base64_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
