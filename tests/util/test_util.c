/* Version and the little-endian helpers (error strings: test_errors.c). */
#include <string.h>

#include "common/testutil.h"
#include "config.h"
#include <libthinp/thinp.h>
#include "util/endian.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_matches_build),
		cmocka_unit_test(test_le_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
