/*
 * What the pool's data path costs and when it waits, over the metadata
 * model and a RAM data device behind the fault backend (whose counters see
 * every request): the device I/Os of provisioning and of breaking sharing,
 * user callbacks that call back into the pool, and data I/O that no
 * metadata change waits for.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/testutil.h"
#include "pool/pool_internal.h"
#include "pool/pool_test.h"

#define BS TEST_BS
#define NBLOCKS 64u
#define VSIZE (16ull * BS)

/* A pool over the model, its data device behind a fault wrapper. */
struct iopool {
	struct md_store *store;
	thinp_io *mem, *data;
	thinp_io_fault *fault;
	thinp_pool *pool;
};

static void iopool_open(struct iopool *p, const thinp_pool_options *opts)
{
	struct pool_md *md;

	memset(p, 0, sizeof(*p));
	p->store = md_store_new(BS >> 9, NBLOCKS, 1024);
	assert_non_null(p->store);
	assert_int_equal(thinp_io_open_memory(&p->mem, NBLOCKS * BS, 0), 0);
	assert_int_equal(thinp_io_open_fault(&p->data, &p->fault, p->mem, 0), 0);
	assert_int_equal(md_model_open(p->store, &md), 0);
	assert_int_equal(pool_create(&p->pool, md, NULL, p->data, opts), 0);
}

static void iopool_close(struct iopool *p)
{
	assert_int_equal(thinp_pool_close(p->pool), 0);
	thinp_io_close(p->data);
	thinp_io_fault_free(p->fault);
	thinp_io_close(p->mem);
	md_store_free(p->store);
}

struct counts {
	uint64_t reads, writes, zeroes, write_bytes;
};

static struct counts take_counts(thinp_io_fault *f)
{
	struct counts c;

	assert_int_equal(thinp_io_fault_counters(f, THINP_IO_KIND_READ, &c.reads, NULL), 0);
	assert_int_equal(thinp_io_fault_counters(f, THINP_IO_KIND_WRITE, &c.writes,
						 &c.write_bytes), 0);
	assert_int_equal(thinp_io_fault_counters(f, THINP_IO_KIND_WRITE_ZEROES, &c.zeroes, NULL),
			 0);
	thinp_io_fault_reset_counters(f);
	return c;
}

static void expect_counts(thinp_io_fault *f, uint64_t reads, uint64_t writes, uint64_t bytes)
{
	struct counts c = take_counts(f);

	if (c.reads != reads || c.writes != writes || c.zeroes || c.write_bytes != bytes)
		fail_msg("expected %llu reads, %llu writes of %llu bytes, 0 write-zeroes; got %llu, "
			 "%llu of %llu, %llu",
			 (unsigned long long)reads, (unsigned long long)writes,
			 (unsigned long long)bytes, (unsigned long long)c.reads,
			 (unsigned long long)c.writes, (unsigned long long)c.write_bytes,
			 (unsigned long long)c.zeroes);
}

static void fill(uint8_t *buf, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 13);
}

/*
 * Provisioning with zeroing writes the assembled block once; breaking
 * sharing reads the old block once and writes the merged block once; an
 * unshared block is written in place. The contents are checked each time.
 */
static void test_cow_and_provision_io_counts(void **state)
{
	uint8_t *w = malloc(4096), *expect = malloc(BS), *got = malloc(BS);
	struct iopool p;
	thinp_thin *thin, *snap;

	iopool_open(&p, NULL);
	assert_int_equal(thinp_pool_create_thin(p.pool, 0), 0);
	thin = topen(p.pool, 0, VSIZE, NULL);
	fill(w, 4096, 1);
	thinp_io_fault_reset_counters(p.fault);

	/* Unmapped, zeroing: one write of the whole block. */
	assert_int_equal(thinp_thin_write(thin, w, 4096, 2 * BS + 16384), 0);
	expect_counts(p.fault, 0, 1, BS);
	memset(expect, 0, BS);
	memcpy(expect + 16384, w, 4096);
	assert_int_equal(thinp_thin_read(thin, got, BS, 2 * BS), 0);
	assert_memory_equal(got, expect, BS);
	take_counts(p.fault);

	/* A whole-block write: one write. */
	fill(got, BS, 9);
	assert_int_equal(thinp_thin_write(thin, got, BS, 3 * BS), 0);
	expect_counts(p.fault, 0, 1, BS);

	/* Breaking sharing: one read and one write of the block, in either
	 * volume, and the other keeps the old contents. */
	assert_int_equal(thinp_pool_create_snap(p.pool, 1, 0), 0);
	snap = topen(p.pool, 1, VSIZE, NULL);
	take_counts(p.fault);
	fill(w, 4096, 2);
	assert_int_equal(thinp_thin_write(thin, w, 4096, 2 * BS + 8192), 0);
	expect_counts(p.fault, 1, 1, BS);
	assert_int_equal(thinp_thin_read(snap, got, BS, 2 * BS), 0);
	assert_memory_equal(got, expect, BS);
	memcpy(expect + 8192, w, 4096);
	assert_int_equal(thinp_thin_read(thin, got, BS, 2 * BS), 0);
	assert_memory_equal(got, expect, BS);
	take_counts(p.fault);
	assert_int_equal(thinp_thin_write(snap, w, 4096, 3 * BS + BS - 4096), 0);
	expect_counts(p.fault, 1, 1, BS);

	/* Now private: in place, one 4 KiB write. */
	assert_int_equal(thinp_thin_write(thin, w, 4096, 2 * BS), 0);
	expect_counts(p.fault, 0, 1, 4096);

	thinp_thin_close(snap);
	thinp_thin_close(thin);
	iopool_close(&p);
	free(w);
	free(expect);
	free(got);
}

/* With an external origin: one origin read and one data write; with
 * skip_block_zeroing and no origin, only the written bytes. */
static void test_origin_and_skip_zeroing_io_counts(void **state)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	uint8_t *w = malloc(4096), *expect = malloc(BS), *got = malloc(BS);
	thinp_io *omem, *origin;
	thinp_io_fault *of;
	struct iopool p;
	thinp_thin *thin;
	uint64_t oreads;

	assert_int_equal(thinp_io_open_memory(&omem, 4 * BS, 0), 0);
	fill(expect, BS, 5);
	assert_int_equal(thinp_io_write(omem, expect, BS, BS), 0);
	assert_int_equal(thinp_io_open_fault(&origin, &of, omem, 0), 0);
	iopool_open(&p, NULL);
	assert_int_equal(thinp_pool_create_thin(p.pool, 0), 0);
	thin = topen(p.pool, 0, VSIZE, origin);
	thinp_io_fault_reset_counters(p.fault);
	fill(w, 4096, 3);
	assert_int_equal(thinp_thin_write(thin, w, 4096, BS + 4096), 0);
	expect_counts(p.fault, 0, 1, BS);
	assert_int_equal(thinp_io_fault_counters(of, THINP_IO_KIND_READ, &oreads, NULL), 0);
	assert_int_equal(oreads, 1);
	memcpy(expect + 4096, w, 4096);
	assert_int_equal(thinp_thin_read(thin, got, BS, BS), 0);
	assert_memory_equal(got, expect, BS);
	/* Past the origin's end: zeroes, no origin read. */
	thinp_io_fault_reset_counters(of);
	take_counts(p.fault);
	assert_int_equal(thinp_thin_write(thin, w, 4096, 8 * BS), 0);
	expect_counts(p.fault, 0, 1, BS);
	assert_int_equal(thinp_io_fault_counters(of, THINP_IO_KIND_READ, &oreads, NULL), 0);
	assert_int_equal(oreads, 0);
	thinp_thin_close(thin);
	iopool_close(&p);
	thinp_io_close(origin);
	thinp_io_fault_free(of);
	thinp_io_close(omem);

	o.features = THINP_POOL_SKIP_BLOCK_ZEROING;
	iopool_open(&p, &o);
	assert_int_equal(thinp_pool_create_thin(p.pool, 0), 0);
	thin = topen(p.pool, 0, VSIZE, NULL);
	thinp_io_fault_reset_counters(p.fault);
	assert_int_equal(thinp_thin_write(thin, w, 4096, BS + 4096), 0);
	expect_counts(p.fault, 0, 1, 4096);
	thinp_thin_close(thin);
	iopool_close(&p);
	free(w);
	free(expect);
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cow_and_provision_io_counts),
		cmocka_unit_test(test_origin_and_skip_zeroing_io_counts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
