/*
 * Running out of metadata space. A change or commit that finds no free
 * metadata block returns -ENOSPC, and nothing of the committed state is
 * touched (copy-on-write), so no needs_check anywhere.
 *
 * Through the public API (tools) the open transaction is rolled back at once
 * and the handle enters THINP_META_MODE_NO_SPACE: changes are refused until
 * thinp_meta_abort().
 *
 * Through the pool's private interface (thin/pool_iface.h) nothing is
 * decided: the facts are reported (damaged, meta_out_of_space), changes are
 * refused until thin_abort_locked, and after the metadata grows work goes
 * on. A sweep over device sizes makes space run out at many different points
 * (btree splits, space-map bitmaps, the metadata space map's own blocks,
 * shared subtrees, commit), and every recovered run must end exactly where a
 * run on a large device ends.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thin/helpers.h"

#define BLK 4096ull
#define NR_DATA 100000

static void oracle(thinp_io *io)
{
	int rc = th_thin_check(io);

	if (rc != 77)
		assert_int_equal(rc, 0);
}

static uint64_t mapped(thinp_meta *meta, uint64_t dev)
{
	thinp_meta_device d = THINP_META_DEVICE_INIT;

	assert_int_equal(thin_device_locked(meta, dev, &d), 0);
	return d.mapped_blocks;
}

static void assert_no_needs_check(thinp_meta *meta, thinp_io *io)
{
	thinp_meta_superblock sb = THINP_META_SUPERBLOCK_INIT;

	assert_int_equal(thinp_meta_get_superblock(meta, THINP_META_LIVE, &sb), 0);
	assert_int_equal(sb.flags & THINP_META_FLAG_NEEDS_CHECK, 0);
	th_check_clean(io);
}

/* Public API: NO_SPACE, no needs_check anywhere, every change refused, the
 * committed image on the device intact. */
static void assert_no_space(thinp_meta *meta, thinp_io *io)
{
	thinp_meta_status st = THINP_META_STATUS_INIT;

	assert_int_equal(thinp_meta_get_status(meta, &st), 0);
	assert_int_equal(st.mode, THINP_META_MODE_NO_SPACE);
	assert_int_equal(st.needs_check, 0);
	assert_int_equal(thinp_meta_create_thin(meta, 999), -EROFS);
	assert_int_equal(thinp_meta_data_inc(meta, 0), -EROFS);
	assert_int_equal(thinp_meta_commit(meta), -EROFS);
	assert_int_equal(thinp_meta_message(meta, "create_thin 999"), -EROFS);
	assert_true(strlen(thinp_meta_errmsg(meta)) > 0);
	assert_no_needs_check(meta, io);
}

/* Private interface: the facts, no decision taken, changes refused. */
static void assert_damaged_no_space(thinp_meta *meta, thinp_io *io)
{
	struct thin_pool_info info;

	assert_int_equal(thin_pool_info_locked(meta, &info), 0);
	assert_true(info.damaged);
	assert_true(info.meta_out_of_space);
	assert_false(info.needs_check);
	assert_int_equal(thin_may_change_locked(meta), -EIO);
	assert_no_needs_check(meta, io);
}

/* Map vblocks 2*v for v in [from, to) of device 0 to data block v through
 * the public API (as a restore does), committing after every 64th; stops at
 * the first error. *committed is the number of mappings the last commit
 * holds. */
static int fill(thinp_meta *meta, uint64_t from, uint64_t to, uint64_t *committed)
{
	uint64_t v;
	int r = 0;

	for (v = from; v < to && !r; v++) {
		r = thinp_meta_data_inc(meta, v);
		if (!r)
			r = th_insert_now(meta, 0, v * 2, v);
		if (!r && (v + 1) % 64 == 0) {
			r = thinp_meta_commit(meta);
			if (!r)
				*committed = v + 1;
		}
	}
	return r;
}

static void test_exhaustion_rolls_back(void **state)
{
	thinp_io *io;
	thinp_meta *meta;
	uint64_t committed = 0, b;
	uint32_t t;

	th_format(&io, &meta, 24 * BLK, NR_DATA);
	assert_int_equal(thinp_meta_create_thin(meta, 0), 0);
	assert_int_equal(thinp_meta_commit(meta), 0);
	assert_int_equal(fill(meta, 0, NR_DATA / 2, &committed), -ENOSPC);
	assert_true(committed >= 64);
	assert_no_space(meta, io);
	oracle(io);
	/* Reads answer from the last commit. */
	assert_int_equal(mapped(meta, 0), committed);
	assert_int_equal(thinp_meta_lookup(meta, 0, (committed - 1) * 2, &b, &t, NULL), 0);
	assert_int_equal(thinp_meta_lookup(meta, 0, committed * 2, &b, &t, NULL), -ENODATA);
	/* Abort acknowledges: read-write again, on the last commit. */
	assert_int_equal(thinp_meta_abort(meta), 0);
	assert_int_equal(th_mode(meta), THINP_META_MODE_RW);
	assert_int_equal(mapped(meta, 0), committed);
	/* Grow (the pool's business), and go on well past where it stopped. */
	assert_int_equal(thinp_io_resize(io, 512 * BLK), 0);
	assert_int_equal(thin_resize_metadata_locked(meta, 0), 0);
	assert_int_equal(fill(meta, committed, committed + 2048, &committed), 0);
	assert_int_equal(thinp_meta_commit(meta), 0);
	th_check_clean(io);
	oracle(io);
	th_reopen(io, &meta);
	assert_int_equal(mapped(meta, 0), committed);
	assert_int_equal(th_mode(meta), THINP_META_MODE_RW);
	thinp_meta_close(meta);
	thinp_io_close(io);
}

/* ---- the sweep ------------------------------------------------------------ */

#define STEPS 2400     /* 12 rounds of 200 */
#define ROUND 200
#define VBLOCKS 1000
#define DEVICES (3 * (STEPS / ROUND))
#define BIG_BLOCKS 1024

/*
 * Step s of a workload that depends only on s and the state: round k
 * creates thin 3k, snapshots it twice in a row (its subtree root then has
 * three parents: the metadata space map's overflow tree), deletes the
 * previous round's first snapshot, and otherwise maps and unmaps blocks of
 * the three devices.
 */
static int step(thinp_meta *meta, uint64_t s)
{
	uint64_t k = s / ROUND, phase = s % ROUND, thin = 3 * k;
	uint64_t h = (s * 0x9E3779B97F4A7C15ull) >> 40;
	uint64_t dev = phase > 101 ? thin + h % 3 : thin, vblock = (h >> 4) % VBLOCKS, b;
	int r;

	r = thin_may_change_locked(meta);
	if (r)
		return r;
	if (phase == 0)
		return thin_create_thin_locked(meta, thin);
	if (phase == 100 || phase == 101)
		return thin_create_snap_locked(meta, thin + phase - 99, thin);
	if (phase == 150 && k > 0)
		return thin_delete_locked(meta, thin - 2);
	if (h % 5 == 0)
		return thin_remove_range_locked(meta, dev, vblock, vblock + 1, NULL);
	r = thin_alloc_data_block_locked(meta, &b);
	return r ? r : thin_insert_run_locked(meta, dev, &vblock, &b, 1);
}

/*
 * Steps [from, STEPS) through the pool's private interface, with a commit
 * after every `every`-th, until one fails (*in_commit says whether the
 * commit did). *resume moves past each
 * commit. The intervals vary over the sweep, so that space runs out early
 * in a transaction as well as at its commit.
 */
static int run(thinp_meta *meta, uint64_t every, uint64_t from, uint64_t *resume,
	       bool *in_commit)
{
	for (uint64_t s = from; s < STEPS; s++) {
		int r = step(meta, s);

		*in_commit = !r && s % every == every - 1;
		if (*in_commit) {
			r = thin_commit_locked(meta);
			if (!r)
				*resume = s + 1;
		}
		if (r)
			return r;
	}
	return 0;
}

/* The whole workload on a device it fits. */
static void reference(thinp_io **io, thinp_meta **meta, uint64_t every)
{
	uint64_t resume;
	bool in_commit;

	th_format(io, meta, BIG_BLOCKS * BLK, NR_DATA);
	assert_int_equal(run(*meta, every, 0, &resume, &in_commit), 0);
	assert_int_equal(thin_commit_locked(*meta), 0);
}

/* Every device and mapping of a equals b's. */
static void assert_same(thinp_meta *a, thinp_meta *b)
{
	for (uint64_t dev = 0; dev < DEVICES; dev++) {
		thinp_meta_device da = THINP_META_DEVICE_INIT, db = THINP_META_DEVICE_INIT;
		int ra = thin_device_locked(a, dev, &da);

		assert_int_equal(ra, thin_device_locked(b, dev, &db));
		if (ra)
			continue;
		assert_int_equal(da.mapped_blocks, db.mapped_blocks);
		assert_int_equal(da.snapshotted_time, db.snapshotted_time);
		for (uint64_t v = 0; v < VBLOCKS; v++) {
			uint64_t ba = 0, bb = 0;
			uint32_t ta = 0, tb = 0;

			ra = thinp_meta_lookup(a, dev, v, &ba, &ta, NULL);
			assert_int_equal(ra, thinp_meta_lookup(b, dev, v, &bb, &tb, NULL));
			assert_int_equal(ba, bb);
			assert_int_equal(ta, tb);
		}
	}
}

static void test_exhaustion_sweep(void **state)
{
	thinp_io *ref_io, *io;
	thinp_meta *ref, *meta;
	uint64_t resume, size, every;
	unsigned runs = 0, at_commit = 0;
	bool in_commit;
	int r;

	for (size = 20;; size++) {
		every = size % 4 ? 60 + size * 37 % 200 : 1 + size % 5;
		th_format(&io, &meta, size * BLK, NR_DATA);
		resume = 0;
		if (run(meta, every, 0, &resume, &in_commit) == 0) {
			thinp_meta_close(meta);
			thinp_io_close(io);
			break;
		}
		runs++;
		at_commit += in_commit;
		assert_damaged_no_space(meta, io);
		/* The caller decides: roll back (the pool does), then grow. */
		assert_int_equal(thin_abort_locked(meta), 0);
		assert_int_equal(thin_may_change_locked(meta), 0);
		assert_int_equal(thinp_io_resize(io, BIG_BLOCKS * BLK), 0);
		assert_int_equal(thin_resize_metadata_locked(meta, 0), 0);
		r = run(meta, every, resume, &resume, &in_commit);
		if (r)
			fail_msg("size %llu: %d after the metadata grew: %s", (unsigned long long)size,
				 r, thinp_meta_errmsg(meta));
		assert_int_equal(thin_commit_locked(meta), 0);
		th_check_clean(io);
		if (size % 8 == 0)
			oracle(io);
		th_reopen(io, &meta);
		reference(&ref_io, &ref, every);
		assert_same(meta, ref);
		thinp_meta_close(ref);
		thinp_io_close(ref_io);
		thinp_meta_close(meta);
		thinp_io_close(io);
	}
	print_message("metadata ran out in %u sizes (%u of them at a commit), up to %llu blocks\n",
		      runs, at_commit, (unsigned long long)size - 1);
	assert_true(runs >= 20);
	assert_true(at_commit >= 1 && at_commit < runs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exhaustion_rolls_back),
		cmocka_unit_test(test_exhaustion_sweep),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	test_tmpdir_cleanup();
	return r;
}
