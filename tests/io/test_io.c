/* The io handle's checks, over the memory backend. */
#include <errno.h>
#include <string.h>

#include "common/testutil.h"
#include <libthinp/io.h>

static void test_memory_roundtrip(void **state)
{
	thinp_io *io;
	char buf[16];
	uint64_t size;

	assert_int_equal(thinp_io_open_memory(&io, 4096, 0), 0);
	assert_int_equal(thinp_io_size(io, &size), 0);
	assert_int_equal(size, 4096);
	assert_int_equal(thinp_io_write(io, "hello", 5, 100), 0);
	assert_int_equal(thinp_io_read(io, buf, 5, 100), 0);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(thinp_io_read(io, buf, 16, 4090), -EINVAL);
	assert_int_equal(thinp_io_flush(io), 0);
	thinp_io_close(io);
}

static void test_read_only_refuses_writes(void **state)
{
	thinp_io *io;

	assert_int_equal(thinp_io_open_memory(&io, 4096, THINP_IO_RDONLY), 0);
	assert_int_equal(thinp_io_write(io, "x", 1, 0), -EROFS);
	assert_int_equal(thinp_io_discard(io, 512, 0), -EROFS);
	thinp_io_close(io);
}

static int dummy_read(void *c, void *b, uint64_t l, uint64_t o) { return 0; }

static void test_unknown_version_refused(void **state)
{
	thinp_io_ops ops = THINP_IO_OPS_INIT;
	thinp_io *io = (thinp_io *)1;

	ops.read = dummy_read;
	ops.version = 99;
	assert_int_equal(thinp_io_new(&io, &ops, NULL, 0), -EINVAL);
	assert_null(io);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memory_roundtrip),
		cmocka_unit_test(test_read_only_refuses_writes),
		cmocka_unit_test(test_unknown_version_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
