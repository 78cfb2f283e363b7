/* The copy-in and copy-out of structs that cross the ABI (lib/util/abi_struct.h),
 * alone and through a public call of each direction. */
#include <errno.h>
#include <string.h>

#include "common/testutil.h"
#include <libthinp/thinp.h>
#include "util/abi_struct.h"

/* A struct of the library, and the smaller one an older caller knows. */
struct lib_v2 {
	uint32_t struct_size;
	uint32_t version;
	uint64_t a;
	uint64_t b; /* appended in "version 2" of the struct's layout */
};

struct caller_v1 {
	uint32_t struct_size;
	uint32_t version;
	uint64_t a;
};

static void test_copy_in_zero_extends(void **state)
{
	struct caller_v1 in = { sizeof(in), 7, 42 };
	struct lib_v2 got;

	memset(&got, 0xee, sizeof(got));
	assert_int_equal(thinp_abi_copy_in(&got, sizeof(got), &in, sizeof(in), 7), 0);
	assert_int_equal(got.struct_size, sizeof(got));
	assert_int_equal(got.version, 7);
	assert_int_equal(got.a, 42);
	assert_int_equal(got.b, 0);
}

static void test_copy_in_refusals(void **state)
{
	struct caller_v1 in = { sizeof(in), 7, 42 };
	struct lib_v2 big = { sizeof(big), 7, 1, 2 };
	struct lib_v2 got;

	assert_int_equal(thinp_abi_copy_in(&got, sizeof(got), NULL, 8, 0), -EINVAL);
	assert_int_equal(thinp_abi_copy_in(&got, sizeof(got), &in, sizeof(in), 8), -EINVAL);
	assert_int_equal(thinp_abi_copy_in(&got, sizeof(got), &in, sizeof(in) + 1, 7), -EINVAL);
	in.struct_size = 2;
	assert_int_equal(thinp_abi_copy_in(&got, sizeof(got), &in, 0, 0), -EINVAL);
	/* Version 0: no version field to compare. */
	in.struct_size = sizeof(in);
	assert_int_equal(thinp_abi_copy_in(&got, sizeof(got), &in, sizeof(in), 0), 0);
	/* A newer caller's bigger struct: the library takes what it knows. */
	assert_int_equal(thinp_abi_copy_in(&in, sizeof(in), &big, 8, 7), 0);
	assert_int_equal(in.struct_size, sizeof(in));
	assert_int_equal(in.a, 1);
}

static void test_copy_out_prefix(void **state)
{
	struct lib_v2 full = { sizeof(full), 7, 42, 43 };
	struct caller_v1 out;
	struct lib_v2 big;

	memset(&out, 0xee, sizeof(out));
	out.struct_size = sizeof(out);
	assert_int_equal(thinp_abi_copy_out(&out, NULL, 0, 8), 0);
	assert_int_equal(out.a, 0xeeeeeeeeeeeeeeeeull);
	assert_int_equal(thinp_abi_copy_out(&out, &full, sizeof(full), 8), 0);
	assert_int_equal(out.struct_size, sizeof(out));
	assert_int_equal(out.a, 42);
	/* Bigger than the library's: the tail is left alone, struct_size says
	 * how much was filled. */
	memset(&big, 0xee, sizeof(big));
	big.struct_size = sizeof(big) + 64;
	assert_int_equal(thinp_abi_copy_out(&big, &full, sizeof(full), 8), 0);
	assert_int_equal(big.struct_size, sizeof(full));
	assert_int_equal(big.b, 43);
	/* Too small: refused, untouched. */
	out.struct_size = 4;
	out.a = 1;
	assert_int_equal(thinp_abi_copy_out(&out, &full, sizeof(full), 8), -EINVAL);
	assert_int_equal(out.struct_size, 4);
	assert_int_equal(out.a, 1);
	assert_int_equal(thinp_abi_copy_out(NULL, &full, sizeof(full), 8), -EINVAL);
}

static void test_copy_string(void **state)
{
	char buf[4] = "zzz";

	assert_int_equal(thinp_abi_copy_string(NULL, 0, "hello", NULL), 5);
	assert_int_equal(thinp_abi_copy_string(buf, 1, "hello", NULL), 5);
	assert_string_equal(buf, "");
	assert_int_equal(thinp_abi_copy_string(buf, sizeof(buf), "hello", NULL), 5);
	assert_string_equal(buf, "hel");
	assert_int_equal(thinp_abi_copy_string(buf, sizeof(buf), "hi", NULL), 2);
	assert_string_equal(buf, "hi");
	/* A NULL handle has no message. */
	assert_int_equal(thinp_pool_errmsg(NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
}

/* Through the API: an options struct with a wrong version or too small is
 * refused; a mapping struct without its size is refused, one with it filled
 * and its size reported. */
static void test_public_structs(void **state)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	thinp_mapping m = THINP_MAPPING_INIT;
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	thinp_io *meta, *data;
	thinp_pool *pool;

	assert_int_equal(thinp_io_open_memory(&meta, 4 << 20, 0), 0);
	assert_int_equal(thinp_io_open_memory(&data, 16 << 20, 0), 0);
	o.version = 99;
	assert_int_equal(thinp_pool_format(&pool, meta, data, &o), -EINVAL);
	o.version = THINP_POOL_OPTIONS_VERSION;
	o.struct_size = 8;
	assert_int_equal(thinp_pool_format(&pool, meta, data, &o), -EINVAL);
	o.struct_size = sizeof(o);
	assert_int_equal(thinp_pool_format(&pool, meta, data, &o), 0);
	assert_int_equal(thinp_pool_create_thin(pool, 1), 0);
	{
		thinp_thin_options to = THINP_THIN_OPTIONS_INIT;
		thinp_thin *thin;
		char buf[4096] = "x";

		to.size = 1 << 20;
		assert_int_equal(thinp_thin_open(&thin, pool, 1, &to), 0);
		assert_int_equal(thinp_thin_write(thin, buf, sizeof(buf), 0), 0);
		thinp_thin_close(thin);
	}
	assert_int_equal(thinp_pool_thin_map(pool, 1, 0, &m), 0);
	assert_int_equal(m.struct_size, sizeof(m));
	m.struct_size = 0;
	assert_int_equal(thinp_pool_thin_map(pool, 1, 0, &m), -EINVAL);
	st.struct_size = 16; /* the mode and transaction id only */
	st.data_total = 12345;
	assert_int_equal(thinp_pool_get_status(pool, &st), 0);
	assert_int_equal(st.struct_size, 16);
	assert_int_equal(st.data_total, 12345);
	assert_int_equal(thinp_pool_close(pool), 0);
	thinp_io_close(data);
	thinp_io_close(meta);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_in_zero_extends),
		cmocka_unit_test(test_copy_in_refusals),
		cmocka_unit_test(test_copy_out_prefix),
		cmocka_unit_test(test_copy_string),
		cmocka_unit_test(test_public_structs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
