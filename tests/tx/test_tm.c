/*
 * The transaction manager: shadowing copies a committed block once per
 * transaction and works in place afterwards; a shared block reports
 * inc_children; commit writes every other block, flushes, and only then
 * writes block 0 (checked with a backend that records the order of writes
 * and flushes); abort writes nothing; a read-only tm refuses changes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include "common/core_sm.h"
#include "common/tm_env.h"
#include "tx/tm.h"

#define NR_BLOCKS 256

static uint32_t count_of(struct tm_env *e, uint64_t b)
{
	return core_sm_count(e->sm, b);
}

/* A new block and commit, returning its location. */
static uint64_t committed_block(struct tm_env *e, unsigned char fill)
{
	struct block *blk;
	uint64_t b;

	assert_int_equal(tm_new_block(e->tm, NULL, &blk), 0);
	memset(block_data(blk), fill, THINP_BLOCK_SIZE);
	b = block_location(blk);
	tm_unlock(e->tm, blk);
	assert_int_equal(tm_env_commit(e, &b, 1), 0);
	return b;
}

static void test_new_block_is_zeroed_and_counted(void **state)
{
	struct tm_env e;
	struct block *blk;
	static const unsigned char zero[THINP_BLOCK_SIZE];

	assert_int_equal(tm_env_open(&e, NR_BLOCKS, 0), 0);
	assert_int_equal(tm_new_block(e.tm, NULL, &blk), 0);
	assert_int_not_equal(block_location(blk), 0);
	assert_memory_equal(block_data(blk), zero, THINP_BLOCK_SIZE);
	assert_int_equal(count_of(&e, block_location(blk)), 1);
	tm_unlock(e.tm, blk);
	tm_env_close(&e);
}

static void test_shadow_once_per_transaction(void **state)
{
	struct tm_env e;
	struct block *blk;
	uint64_t b, s1, s2;
	bool inc = true;

	assert_int_equal(tm_env_open(&e, NR_BLOCKS, 0), 0);
	b = committed_block(&e, 0xab);

	/* First shadow in the transaction: a copy, the original released. */
	assert_int_equal(tm_shadow_block(e.tm, b, NULL, &blk, &inc), 0);
	s1 = block_location(blk);
	assert_int_not_equal(s1, b);
	assert_false(inc);
	assert_int_equal(((unsigned char *)block_data(blk))[100], 0xab);
	((unsigned char *)block_data(blk))[100] = 0xcd;
	tm_unlock(e.tm, blk);
	assert_int_equal(count_of(&e, b), 0);
	assert_int_equal(count_of(&e, s1), 1);

	/* Second shadow of the copy in the same transaction: in place. */
	assert_int_equal(tm_shadow_block(e.tm, s1, NULL, &blk, &inc), 0);
	assert_int_equal(block_location(blk), s1);
	assert_false(inc);
	assert_int_equal(((unsigned char *)block_data(blk))[100], 0xcd);
	tm_unlock(e.tm, blk);

	/* The freed original is not reused before the commit. */
	for (int i = 0; i < 20; i++) {
		assert_int_equal(tm_new_block(e.tm, NULL, &blk), 0);
		assert_int_not_equal(block_location(blk), b);
		tm_unlock(e.tm, blk);
	}

	/* After commit the copy belongs to the committed state: copied again. */
	assert_int_equal(tm_env_commit(&e, &s1, 1), 0);
	assert_int_equal(tm_shadow_block(e.tm, s1, NULL, &blk, &inc), 0);
	s2 = block_location(blk);
	assert_int_not_equal(s2, s1);
	assert_int_equal(((unsigned char *)block_data(blk))[100], 0xcd);
	tm_unlock(e.tm, blk);
	tm_env_close(&e);
}

static void test_new_block_shadows_in_place(void **state)
{
	struct tm_env e;
	struct block *blk;
	uint64_t b;
	bool inc;

	assert_int_equal(tm_env_open(&e, NR_BLOCKS, 0), 0);
	assert_int_equal(tm_new_block(e.tm, NULL, &blk), 0);
	b = block_location(blk);
	tm_unlock(e.tm, blk);
	assert_int_equal(tm_shadow_block(e.tm, b, NULL, &blk, &inc), 0);
	assert_int_equal(block_location(blk), b);
	assert_false(inc);
	tm_unlock(e.tm, blk);
	tm_env_close(&e);
}

static void test_shared_block_reports_inc_children(void **state)
{
	struct tm_env e;
	struct block *blk;
	uint64_t b, s;
	bool inc = false;

	assert_int_equal(tm_env_open(&e, NR_BLOCKS, 0), 0);
	b = committed_block(&e, 0x11);
	assert_int_equal(tm_inc(e.tm, b), 0);
	assert_int_equal(tm_shadow_block(e.tm, b, NULL, &blk, &inc), 0);
	s = block_location(blk);
	assert_true(inc);
	assert_int_not_equal(s, b);
	tm_unlock(e.tm, blk);
	assert_int_equal(count_of(&e, b), 1);
	assert_int_equal(count_of(&e, s), 1);

	/* A block shadowed in this transaction but then shared (count 2) is
	 * copied again, and reports the sharing. */
	assert_int_equal(tm_inc(e.tm, s), 0);
	assert_int_equal(tm_shadow_block(e.tm, s, NULL, &blk, &inc), 0);
	assert_int_not_equal(block_location(blk), s);
	assert_true(inc);
	tm_unlock(e.tm, blk);
	tm_env_close(&e);
}

static void test_shadow_of_free_block_is_corruption(void **state)
{
	struct tm_env e;
	struct block *blk;
	bool inc;

	assert_int_equal(tm_env_open(&e, NR_BLOCKS, 0), 0);
	assert_int_equal(tm_shadow_block(e.tm, 77, NULL, &blk, &inc), -EILSEQ);
	assert_null(blk);
	tm_env_close(&e);
}

/* ------------------------------------------------------------------ */
/* A RAM backend that logs writes (the number of every block a write
 * covers: the block manager writes runs of blocks at once) and flushes
 * (-1). */

struct rec_dev {
	unsigned char *mem;
	uint64_t size;
	int64_t log[4096];
	size_t n;
};

static int rec_read(void *ctx, void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct rec_dev *d = ctx;

	memcpy(buf, d->mem + off, len);
	return 0;
}

static int rec_write(void *ctx, const void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct rec_dev *d = ctx;

	memcpy(d->mem + off, buf, len);
	for (uint64_t b = off / THINP_BLOCK_SIZE; b < (off + len) / THINP_BLOCK_SIZE; b++)
		if (d->n < 4096)
			d->log[d->n++] = (int64_t)b;
	return 0;
}

static int rec_flush(void *ctx)
{
	struct rec_dev *d = ctx;

	if (d->n < 4096)
		d->log[d->n++] = -1;
	return 0;
}

static int rec_size(void *ctx, uint64_t *bytes)
{
	*bytes = ((struct rec_dev *)ctx)->size;
	return 0;
}

static void test_commit_writes_superblock_last(void **state)
{
	thinp_io_ops ops = THINP_IO_OPS_INIT;
	struct rec_dev *d = calloc(1, sizeof(*d));
	struct tm_env e;
	thinp_io *io;
	struct block *blk;
	uint64_t blocks[10], roots[1];
	size_t i, last_sb = 0, nr_sb = 0;

	d->size = NR_BLOCKS * THINP_BLOCK_SIZE;
	d->mem = calloc(1, d->size);
	ops.read = rec_read;
	ops.write = rec_write;
	ops.flush = rec_flush;
	ops.size = rec_size;
	assert_int_equal(thinp_io_new(&io, &ops, d, 0), 0);
	assert_int_equal(tm_env_open_io(&e, io, NR_BLOCKS, 0), 0);
	for (i = 0; i < 10; i++) {
		assert_int_equal(tm_new_block(e.tm, NULL, &blk), 0);
		memset(block_data(blk), (int)i + 1, THINP_BLOCK_SIZE);
		blocks[i] = block_location(blk);
		tm_unlock(e.tm, blk);
	}
	d->n = 0;
	assert_int_equal(tm_env_commit(&e, blocks, 1), 0);

	/* Every data block written, then a flush, then block 0, then a flush. */
	for (i = 0; i < d->n; i++) {
		if (d->log[i] == 0) {
			last_sb = i;
			nr_sb++;
		}
	}
	assert_int_equal(nr_sb, 1);
	assert_true(last_sb >= 11);
	assert_int_equal(d->log[last_sb - 1], -1);
	assert_int_equal(d->log[d->n - 1], -1);
	assert_int_equal(last_sb, d->n - 2);
	for (i = 0; i < 10; i++) {
		bool seen = false;

		for (size_t j = 0; j < last_sb; j++)
			seen |= d->log[j] == (int64_t)blocks[i];
		assert_true(seen);
		assert_int_equal(d->mem[blocks[i] * THINP_BLOCK_SIZE + 7], i + 1);
	}
	assert_int_equal(tm_env_reopen(&e, roots, 1), 0);
	assert_int_equal(roots[0], blocks[0]);
	tm_env_close(&e);
	free(d->mem);
	free(d);
}

static void test_abort_writes_nothing(void **state)
{
	struct tm_env e;
	struct block *blk;
	uint64_t b, s, roots[1];
	bool inc;
	unsigned char byte;

	assert_int_equal(tm_env_open(&e, NR_BLOCKS, 0), 0);
	b = committed_block(&e, 0x5a);
	assert_int_equal(tm_shadow_block(e.tm, b, NULL, &blk, &inc), 0);
	s = block_location(blk);
	memset(block_data(blk), 0x77, THINP_BLOCK_SIZE);
	tm_unlock(e.tm, blk);
	assert_int_equal(tm_env_abort(&e), 0);

	/* Nothing of the aborted transaction reached the device or the cache. */
	assert_int_equal(thinp_io_read(e.io, &byte, 1, s * THINP_BLOCK_SIZE + 100, 0), 0);
	assert_int_equal(byte, 0);
	assert_int_equal(count_of(&e, b), 1);
	assert_int_equal(count_of(&e, s), 0);
	assert_int_equal(tm_read_lock(e.tm, b, NULL, &blk), 0);
	assert_int_equal(((unsigned char *)block_data(blk))[100], 0x5a);
	tm_unlock(e.tm, blk);

	/* The shadow set was forgotten: b is copied again, not changed in place. */
	assert_int_equal(tm_shadow_block(e.tm, b, NULL, &blk, &inc), 0);
	assert_int_not_equal(block_location(blk), b);
	tm_unlock(e.tm, blk);
	assert_int_equal(tm_env_abort(&e), 0);
	assert_int_equal(tm_env_reopen(&e, roots, 1), 0);
	assert_int_equal(roots[0], b);
	tm_env_close(&e);
}

static void test_abort_with_lock_held_is_busy(void **state)
{
	struct tm_env e;
	struct block *blk;

	assert_int_equal(tm_env_open(&e, NR_BLOCKS, 0), 0);
	assert_int_equal(tm_new_block(e.tm, NULL, &blk), 0);
	assert_int_equal(tm_abort(e.tm), -EBUSY);
	tm_unlock(e.tm, blk);
	assert_int_equal(tm_env_abort(&e), 0);
	tm_env_close(&e);
}

static void test_read_only_refuses_changes(void **state)
{
	struct tm_env e;
	struct tx_manager *ro;
	struct block *blk, *sb;
	uint64_t b;
	uint32_t count;
	bool inc;

	assert_int_equal(tm_env_open(&e, NR_BLOCKS, 0), 0);
	b = committed_block(&e, 0x42);
	assert_int_equal(tm_create_read_only(&ro, e.bm), 0);
	tm_set_sm(ro, e.sm);
	assert_true(tm_is_read_only(ro));
	assert_int_equal(tm_new_block(ro, NULL, &blk), -EROFS);
	assert_int_equal(tm_shadow_block(ro, b, NULL, &blk, &inc), -EROFS);
	assert_int_equal(tm_inc(ro, b), -EROFS);
	assert_int_equal(tm_dec(ro, b), -EROFS);
	assert_int_equal(tm_pre_commit(ro), -EROFS);
	assert_int_equal(bm_write_lock(e.bm, 0, NULL, &sb), 0);
	assert_int_equal(tm_commit(ro, sb), -EROFS);
	assert_int_equal(tm_ref(ro, b, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(tm_read_lock(ro, b, NULL, &blk), 0);
	assert_int_equal(((unsigned char *)block_data(blk))[9], 0x42);
	tm_unlock(ro, blk);
	assert_int_equal(count_of(&e, b), 1);
	tm_destroy(ro);
	assert_int_equal(tm_env_abort(&e), 0);
	tm_env_close(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_block_is_zeroed_and_counted),
		cmocka_unit_test(test_shadow_once_per_transaction),
		cmocka_unit_test(test_new_block_shadows_in_place),
		cmocka_unit_test(test_shared_block_reports_inc_children),
		cmocka_unit_test(test_shadow_of_free_block_is_corruption),
		cmocka_unit_test(test_commit_writes_superblock_last),
		cmocka_unit_test(test_abort_writes_nothing),
		cmocka_unit_test(test_abort_with_lock_held_is_busy),
		cmocka_unit_test(test_read_only_refuses_changes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
