/* Version, the little-endian helpers and message parsing (error strings:
 * test_errors.c). */
#include <string.h>

#include "common/testutil.h"
#include "config.h"
#include <libthinp/thinp.h>
#include "util/endian.h"
#include "util/parse.h"

static void test_version_matches_build(void **state)
{
	assert_string_equal(thinp_version(), THINP_VERSION_STRING);
	assert_string_equal(thinp_version(), PACKAGE_VERSION);
	assert_int_equal(thinp_version_number(), THINP_VERSION_NUMBER);
}

static void test_le_roundtrip(void **state)
{
	unsigned char b[8];

	store_le64(b, 0x0000000003E80003ull);
	assert_int_equal(b[0], 0x03);
	assert_int_equal(b[2], 0xE8);
	assert_int_equal(b[3], 0x03);
	assert_int_equal(load_le64(b), 0x0000000003E80003ull);
	store_le32(b, 27022010u);
	assert_int_equal(b[0], 0xBA);
	assert_int_equal(b[3], 0x01);
	assert_int_equal(load_le32(b), 27022010u);
}

static void test_parse_decimal(void **state)
{
	const char *end;
	uint64_t v;

	assert_int_equal(parse_decimal_u64("18446744073709551615x", &end, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_string_equal(end, "x");
	assert_int_equal(parse_decimal_u64("0", &end, &v), 0);
	assert_true(v == 0 && *end == 0);
	assert_int_equal(parse_decimal_u64("18446744073709551616", &end, &v), -ERANGE);
	assert_int_equal(parse_decimal_u64("+1", &end, &v), -EINVAL);
	assert_int_equal(parse_decimal_u64(" 1", &end, &v), -EINVAL);
	assert_int_equal(parse_decimal_u64("", &end, &v), -EINVAL);
}

static void test_parse_split_words(void **state)
{
	char buf[] = "\t create_thin  7\n", many[] = "a b c d", none[] = " \n";
	char *w[3];

	assert_int_equal(parse_split_words(buf, " \t\n", w, 3), 2);
	assert_string_equal(w[0], "create_thin");
	assert_string_equal(w[1], "7");
	assert_int_equal(parse_split_words(many, " ", w, 3), -EINVAL);
	assert_int_equal(parse_split_words(none, " \n", w, 3), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_matches_build),
		cmocka_unit_test(test_le_roundtrip),
		cmocka_unit_test(test_parse_decimal),
		cmocka_unit_test(test_parse_split_words),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
