/* The io handle's checks, over the memory backend and a recording one. */
#include <errno.h>
#include <string.h>

#include "common/testutil.h"
#include <libthinp/io.h>
#include <libthinp/testing.h>

static void test_memory_roundtrip(void **state)
{
	thinp_io *io;
	char buf[16];
	uint64_t size;

	assert_int_equal(thinp_io_open_memory(&io, 4096, 0), 0);
	assert_int_equal(thinp_io_size(io, &size), 0);
	assert_int_equal(size, 4096);
	assert_int_equal(thinp_io_write(io, "hello", 5, 100, 0), 0);
	assert_int_equal(thinp_io_read(io, buf, 5, 100, 0), 0);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(thinp_io_read(io, buf, 16, 4090, 0), -EINVAL);
	assert_int_equal(thinp_io_flush(io), 0);
	thinp_io_close(io);
}

static void test_read_only_refuses_writes(void **state)
{
	thinp_io *io;

	assert_int_equal(thinp_io_open_memory(&io, 4096, THINP_IO_RDONLY), 0);
	assert_int_equal(thinp_io_write(io, "x", 1, 0, 0), -EROFS);
	assert_int_equal(thinp_io_discard(io, 512, 0, 0), -EROFS);
	thinp_io_close(io);
}

static int dummy_read(void *c, void *b, uint64_t l, uint64_t o, uint32_t flags) { return 0; }

static void test_unknown_version_refused(void **state)
{
	thinp_io_ops ops = THINP_IO_OPS_INIT;
	thinp_io *io = (thinp_io *)1;

	ops.read = dummy_read;
	ops.version = 99;
	assert_int_equal(thinp_io_new(&io, &ops, NULL, 0), -EINVAL);
	assert_null(io);
}

/* A backend that records what reaches it: the last request's kind and
 * flags, and the flushes. */
struct rec {
	char last;       /* 'r', 'w', 'd', 'z' */
	uint32_t flags;
	int flushes;
	int flushes_at_last; /* flushes seen when the last request came */
};

static int rec_read(void *c, void *b, uint64_t l, uint64_t o, uint32_t flags)
{
	struct rec *r = c;

	r->last = 'r', r->flags = flags, r->flushes_at_last = r->flushes;
	return 0;
}

static int rec_write(void *c, const void *b, uint64_t l, uint64_t o, uint32_t flags)
{
	struct rec *r = c;

	r->last = 'w', r->flags = flags, r->flushes_at_last = r->flushes;
	return 0;
}

static int rec_discard(void *c, uint64_t l, uint64_t o, uint32_t flags)
{
	struct rec *r = c;

	r->last = 'd', r->flags = flags, r->flushes_at_last = r->flushes;
	return 0;
}

static int rec_zero(void *c, uint64_t l, uint64_t o, uint32_t flags)
{
	struct rec *r = c;

	r->last = 'z', r->flags = flags, r->flushes_at_last = r->flushes;
	return 0;
}

static int rec_flush(void *c)
{
	((struct rec *)c)->flushes++;
	return 0;
}

static int rec_size(void *c, uint64_t *bytes)
{
	*bytes = 1 << 20;
	return 0;
}

static thinp_io *rec_open(struct rec *r, uint32_t caps)
{
	thinp_io_ops ops = THINP_IO_OPS_INIT;
	thinp_io *io;

	memset(r, 0, sizeof(*r));
	ops.caps = caps | THINP_IO_CAP_DISCARD | THINP_IO_CAP_WRITE_ZEROES;
	ops.read = rec_read;
	ops.write = rec_write;
	ops.flush = rec_flush;
	ops.size = rec_size;
	ops.discard = rec_discard;
	ops.write_zeroes = rec_zero;
	assert_int_equal(thinp_io_new(&io, &ops, r, 0), 0);
	return io;
}

/* Flags a request does not accept never reach the backend. */
static void test_flags_refused(void **state)
{
	struct rec r;
	thinp_io *io = rec_open(&r, THINP_IO_CAP_FUA);
	char buf[512] = { 0 };
	const uint32_t unknown = 1u << 31;

	assert_int_equal(thinp_io_read(io, buf, 512, 0, THINP_IO_FUA), -EINVAL);
	assert_int_equal(thinp_io_read(io, buf, 512, 0, unknown), -EINVAL);
	assert_int_equal(thinp_io_write(io, buf, 512, 0, THINP_IO_NO_UNMAP), -EINVAL);
	assert_int_equal(thinp_io_write(io, buf, 512, 0, unknown), -EINVAL);
	assert_int_equal(thinp_io_discard(io, 512, 0, THINP_IO_NO_UNMAP), -EINVAL);
	assert_int_equal(thinp_io_discard(io, 512, 0, unknown), -EINVAL);
	assert_int_equal(thinp_io_write_zeroes(io, 512, 0, unknown), -EINVAL);
	assert_int_equal(r.last, 0);
	thinp_io_close(io);
}

/* A backend that declared THINP_IO_CAP_FUA gets the flag and no flush; one
 * that did not gets the request without it, then a flush. NO_UNMAP always
 * reaches write_zeroes. */
static void test_fua_native_and_emulated(void **state)
{
	struct rec r;
	thinp_io *io;
	char buf[512] = { 0 };

	io = rec_open(&r, THINP_IO_CAP_FUA);
	assert_int_equal(thinp_io_write(io, buf, 512, 0, THINP_IO_FUA), 0);
	assert_int_equal(r.last, 'w');
	assert_int_equal(r.flags, THINP_IO_FUA);
	assert_int_equal(r.flushes, 0);
	assert_int_equal(thinp_io_write_zeroes(io, 512, 0, THINP_IO_FUA | THINP_IO_NO_UNMAP), 0);
	assert_int_equal(r.last, 'z');
	assert_int_equal(r.flags, THINP_IO_FUA | THINP_IO_NO_UNMAP);
	assert_int_equal(r.flushes, 0);
	thinp_io_close(io);

	io = rec_open(&r, 0);
	assert_int_equal(thinp_io_write(io, buf, 512, 0, THINP_IO_FUA), 0);
	assert_int_equal(r.last, 'w');
	assert_int_equal(r.flags, 0);
	assert_int_equal(r.flushes_at_last, 0);
	assert_int_equal(r.flushes, 1);
	assert_int_equal(thinp_io_discard(io, 512, 0, THINP_IO_FUA), 0);
	assert_int_equal(r.last, 'd');
	assert_int_equal(r.flags, 0);
	assert_int_equal(r.flushes, 2);
	assert_int_equal(thinp_io_write_zeroes(io, 512, 0, THINP_IO_FUA | THINP_IO_NO_UNMAP), 0);
	assert_int_equal(r.last, 'z');
	assert_int_equal(r.flags, THINP_IO_NO_UNMAP);
	assert_int_equal(r.flushes, 3);
	/* Without FUA nothing is flushed. */
	assert_int_equal(thinp_io_write(io, buf, 512, 0, 0), 0);
	assert_int_equal(r.flushes, 3);
	thinp_io_close(io);
}

/* Through the fault backend (no THINP_IO_CAP_FUA): a FUA write survives a
 * power cut that drops every unflushed write. */
static void test_fua_survives_power_cut(void **state)
{
	thinp_io *lower, *io;
	thinp_io_fault *f;
	char buf[4096];

	assert_int_equal(thinp_io_open_memory(&lower, 1 << 16, 0), 0);
	assert_int_equal(thinp_io_open_fault(&io, &f, lower, 0), 0);
	assert_int_equal(thinp_io_write(io, "plain", 5, 0, 0), 0);
	assert_int_equal(thinp_io_fault_cut(f, THINP_IO_FAULT_CUT_DROP, 1), 0);
	assert_int_equal(thinp_io_read(lower, buf, 5, 0, 0), 0);
	assert_memory_not_equal(buf, "plain", 5);
	thinp_io_close(io);
	thinp_io_fault_free(f);

	assert_int_equal(thinp_io_open_fault(&io, &f, lower, 0), 0);
	assert_int_equal(thinp_io_write(io, "durable", 7, 0, THINP_IO_FUA), 0);
	assert_int_equal(thinp_io_fault_pending(f), 0);
	assert_int_equal(thinp_io_fault_cut(f, THINP_IO_FAULT_CUT_DROP, 1), 0);
	assert_int_equal(thinp_io_read(lower, buf, 7, 0, 0), 0);
	assert_memory_equal(buf, "durable", 7);
	thinp_io_close(io);
	thinp_io_fault_free(f);
	thinp_io_close(lower);
}

/* Memory: the handle's own exclusion. Fault: the lower device's lock, so a
 * second wrapper over it, or the lower handle itself, is refused; closing
 * the wrapper (even after a power cut) releases it. */
static void test_lock_memory_and_fault(void **state)
{
	thinp_io *lower, *w1, *w2, *ro;
	thinp_io_fault *f;

	assert_int_equal(thinp_io_open_memory(&lower, 1 << 16, 0), 0);
	assert_int_equal(thinp_io_lock(lower, THINP_IO_LOCK_EXCLUSIVE), 0);
	assert_int_equal(thinp_io_lock(lower, THINP_IO_LOCK_EXCLUSIVE), -EBUSY);
	assert_int_equal(thinp_io_lock(lower, THINP_IO_LOCK_NONE), 0);

	assert_int_equal(thinp_io_open_fault(&w1, &f, lower, 0), 0);
	assert_int_equal(thinp_io_open_fault(&w2, NULL, lower, 0), 0);
	assert_int_equal(thinp_io_open_fault(&ro, NULL, lower, THINP_IO_RDONLY), 0);
	assert_int_equal(thinp_io_lock(w1, THINP_IO_LOCK_EXCLUSIVE), 0);
	assert_int_equal(thinp_io_lock(w2, THINP_IO_LOCK_EXCLUSIVE), -EBUSY);
	assert_int_equal(thinp_io_lock(lower, THINP_IO_LOCK_EXCLUSIVE), -EBUSY);
	assert_int_equal(thinp_io_lock(ro, THINP_IO_LOCK_EXCLUSIVE), -EROFS);
	assert_int_equal(thinp_io_fault_cut(f, THINP_IO_FAULT_CUT_DROP, 1), 0);
	thinp_io_close(w1);
	assert_int_equal(thinp_io_lock(w2, THINP_IO_LOCK_EXCLUSIVE), 0);
	thinp_io_close(w2);
	assert_int_equal(thinp_io_lock(lower, THINP_IO_LOCK_EXCLUSIVE), 0);
	thinp_io_close(ro);
	thinp_io_fault_free(f);
	thinp_io_close(lower);
}

/* A backend without a lock callback: the handle's exclusion only. */
static void test_lock_without_callback(void **state)
{
	struct rec r;
	thinp_io *io = rec_open(&r, 0);

	assert_int_equal(thinp_io_lock(io, THINP_IO_LOCK_EXCLUSIVE), 0);
	assert_int_equal(thinp_io_lock(io, THINP_IO_LOCK_EXCLUSIVE), -EBUSY);
	assert_int_equal(thinp_io_lock(io, THINP_IO_LOCK_NONE), 0);
	assert_int_equal(thinp_io_lock(io, THINP_IO_LOCK_EXCLUSIVE), 0);
	assert_int_equal(thinp_io_lock(NULL, THINP_IO_LOCK_EXCLUSIVE), -EINVAL);
	thinp_io_close(io);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memory_roundtrip),
		cmocka_unit_test(test_read_only_refuses_writes),
		cmocka_unit_test(test_unknown_version_refused),
		cmocka_unit_test(test_flags_refused),
		cmocka_unit_test(test_fua_native_and_emulated),
		cmocka_unit_test(test_fua_survives_power_cut),
		cmocka_unit_test(test_lock_memory_and_fault),
		cmocka_unit_test(test_lock_without_callback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
