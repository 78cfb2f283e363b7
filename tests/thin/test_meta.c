/*
 * Unit tests of the thin metadata: format/open, every pool message, mappings
 * and their reference counts, walks, metadata snapshots, resize, needs_check,
 * sticky failure, and hostile superblocks. After each scenario the full check
 * must find nothing and, when installed, thin_check must accept the image.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thin/helpers.h"
#include "block/bm.h"
#include "thin/format.h"

#define MIB (1024ull * 1024)

static void oracle(thinp_io *io)
{
	int rc = th_thin_check(io);

	if (rc != 77)
		assert_int_equal(rc, 0);
}

static void commit_and_check(thinp_meta *meta, thinp_io *io)
{
	assert_int_equal(thinp_meta_commit(meta), 0);
	th_check_clean(io);
}

static thinp_meta_device dev_info(thinp_meta *meta, uint64_t dev)
{
	thinp_meta_device d = THINP_META_DEVICE_INIT;

	assert_int_equal(thin_device_locked(meta, dev, &d), 0);
	return d;
}

static uint32_t data_count(thinp_meta *meta, uint64_t b)
{
	uint32_t c;

	assert_int_equal(thin_data_count_locked(meta, b, &c), 0);
	return c;
}

/* Map vblock -> a newly allocated data block; returns the block. */
static uint64_t map_new(thinp_meta *meta, uint64_t dev, uint64_t vblock)
{
	uint64_t b;

	assert_int_equal(thin_alloc_data_block_locked(meta, &b), 0);
	assert_int_equal(th_insert_now(meta, dev, vblock, b), 0);
	return b;
}

/* ---- format and open ------------------------------------------------------- */

static void test_format_and_open(void **state)
{
	thinp_meta_superblock sb = THINP_META_SUPERBLOCK_INIT;
	thinp_meta_status st = THINP_META_STATUS_INIT;
	thinp_io *io;
	thinp_meta *meta;

	th_format(&io, &meta, 4 * MIB, 1000);
	assert_int_equal(thinp_meta_get_superblock(meta, THINP_META_LIVE, &sb), 0);
	assert_int_equal(sb.version, 2);
	assert_int_equal(sb.time, 0);
	assert_int_equal(sb.transaction_id, 0);
	assert_int_equal(sb.held_root, 0);
	assert_int_equal(sb.flags, 0);
	assert_int_equal(sb.data_block_size, 128);
	assert_int_equal(sb.metadata_block_size, 8);
	assert_int_equal(sb.nr_data_blocks, 1000);
	assert_int_equal(sb.metadata_nr_blocks, 1024);
	assert_int_equal(sb.sb_metadata_nr_blocks, 1024);
	assert_int_equal(sb.blocknr, 0);
	assert_int_equal(thinp_meta_get_status(meta, &st), 0);
	assert_int_equal(st.total_metadata_blocks, 1024);
	assert_int_equal(st.metadata_reserve, 102);
	assert_int_equal(st.used_metadata_blocks, 1024 - (st.free_metadata_blocks - 102));
	assert_int_equal(st.total_data_blocks, 1000);
	assert_int_equal(st.used_data_blocks, 0);
	assert_int_equal(st.mode, THINP_META_MODE_RW);
	assert_int_equal(st.needs_check, 0);
	assert_int_equal(st.metadata_low_watermark, 256);
	th_check_clean(io);
	oracle(io);
	th_reopen(io, &meta);
	memset(&sb, 0, sizeof(sb));
	sb.struct_size = sizeof(sb);
	assert_int_equal(thinp_meta_get_superblock(meta, THINP_META_LIVE, &sb), 0);
	assert_int_equal(sb.nr_data_blocks, 1000);
	assert_int_equal(sb.version, 2);
	thinp_meta_close(meta);
	thinp_io_close(io);
}

static void test_format_refusals(void **state)
{
	thinp_meta_format_params p = THINP_META_FORMAT_PARAMS_INIT;
	thinp_io *io, *tiny;
	thinp_meta *meta = (thinp_meta *)1;

	assert_int_equal(thinp_io_open_memory(&io, 4 * MIB, 0), 0);
	assert_int_equal(thinp_meta_open(&meta, io, NULL), -ENODATA);
	assert_null(meta);
	p.data_block_size = 64;
	assert_int_equal(thinp_meta_format(&meta, io, &p, NULL), -EINVAL);
	p.data_block_size = 192;
	assert_int_equal(thinp_meta_format(&meta, io, &p, NULL), -EINVAL);
	p.data_block_size = 2097152 + 128;
	assert_int_equal(thinp_meta_format(&meta, io, &p, NULL), -EINVAL);
	p.data_block_size = 2097152;
	p.nr_data_blocks = (1ull << 40) + 1;
	assert_int_equal(thinp_meta_format(&meta, io, &p, NULL), -EINVAL);
	p.nr_data_blocks = 10;
	assert_int_equal(thinp_meta_format(&meta, io, &p, NULL), 0);
	thinp_meta_close(meta);
	/* A valid superblock is not overwritten by accident. */
	assert_int_equal(thinp_meta_format(&meta, io, &p, NULL), -EEXIST);
	p.flags = THINP_META_FORMAT_OVERWRITE;
	p.data_block_size = 256;
	assert_int_equal(thinp_meta_format(&meta, io, &p, NULL), 0);
	thinp_meta_close(meta);
	th_check_clean(io);
	assert_int_equal(thinp_io_open_memory(&tiny, 8 * 4096, 0), 0);
	assert_int_equal(thinp_meta_format(&meta, tiny, &p, NULL), -ENOSPC);
	thinp_meta_close(NULL);
	thinp_io_close(tiny);
	thinp_io_close(io);
}

/* A sparse device (only written blocks stored) to format a metadata device
 * bigger than the format can use without allocating it. */
struct sparse {
	uint64_t size;
	uint64_t *blk;
	uint8_t **data;
	size_t n, cap;
};

static uint8_t *sparse_find(struct sparse *s, uint64_t b, int create)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->blk[i] == b)
			return s->data[i];
	if (!create)
		return NULL;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->blk = realloc(s->blk, s->cap * sizeof(*s->blk));
		s->data = realloc(s->data, s->cap * sizeof(*s->data));
	}
	s->blk[s->n] = b;
	s->data[s->n] = calloc(1, 4096);
	return s->data[s->n++];
}

static int sparse_read(void *ctx, void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	uint8_t *p = buf;

	for (; len; len -= 4096, off += 4096, p += 4096) {
		uint8_t *d = sparse_find(ctx, off / 4096, 0);

		if (d)
			memcpy(p, d, 4096);
		else
			memset(p, 0, 4096);
	}
	return 0;
}

static int sparse_write(void *ctx, const void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	const uint8_t *p = buf;

	for (; len; len -= 4096, off += 4096, p += 4096)
		memcpy(sparse_find(ctx, off / 4096, 1), p, 4096);
	return 0;
}

static int sparse_flush(void *ctx)
{
	return 0;
}

static int sparse_size(void *ctx, uint64_t *bytes)
{
	*bytes = ((struct sparse *)ctx)->size;
	return 0;
}

static void log_collect(int level, const char *msg, void *ctx)
{
	if (level == THINP_LOG_WARNING)
		(*(int *)ctx)++;
}

static void test_oversized_metadata_warns(void **state)
{
	thinp_io_ops ops = THINP_IO_OPS_INIT;
	thinp_meta_format_params p = THINP_META_FORMAT_PARAMS_INIT;
	thinp_meta_options o = THINP_META_OPTIONS_INIT;
	thinp_meta_superblock sb = THINP_META_SUPERBLOCK_INIT;
	struct sparse s = { .size = 20ull << 30 };
	int warnings = 0;
	thinp_io *io;
	thinp_meta *meta;
	size_t i;

	ops.align = 4096;
	ops.read = sparse_read;
	ops.write = sparse_write;
	ops.flush = sparse_flush;
	ops.size = sparse_size;
	assert_int_equal(thinp_io_new(&io, &ops, &s, 0), 0);
	o.log_fn = log_collect;
	o.log_ctx = &warnings;
	assert_int_equal(thinp_meta_format(&meta, io, &p, &o), 0);
	assert_int_equal(warnings, 1);
	assert_int_equal(thinp_meta_get_superblock(meta, THINP_META_LIVE, &sb), 0);
	assert_int_equal(sb.metadata_nr_blocks, THINP_META_MAX_METADATA_BLOCKS);
	assert_int_equal(sb.sb_metadata_nr_blocks, THINP_META_MAX_METADATA_BLOCKS);
	assert_int_equal(thinp_meta_create_thin(meta, 0), 0);
	assert_int_equal(thinp_meta_commit(meta), 0);
	thinp_meta_close(meta);
	th_check_clean(io);
	thinp_io_close(io);
	for (i = 0; i < s.n; i++)
		free(s.data[i]);
	free(s.data);
	free(s.blk);
}

/* ---- devices --------------------------------------------------------------- */

static void test_create_snap_delete(void **state)
{
	thinp_io *io;
	thinp_meta *meta;
	thinp_meta_device d;
	thinp_meta_superblock sb = THINP_META_SUPERBLOCK_INIT;

	th_format(&io, &meta, 4 * MIB, 1000);
	assert_int_equal(thin_set_transaction_id_locked(meta, 0, 3), 0);
	assert_int_equal(thinp_meta_create_thin(meta, 0), 0);
	assert_int_equal(thinp_meta_create_thin(meta, 0), -EEXIST);
	d = dev_info(meta, 0);
	assert_int_equal(d.mapped_blocks, 0);
	assert_int_equal(d.transaction_id, 3);
	assert_int_equal(d.creation_time, 0);
	assert_int_equal(d.snapshotted_time, 0);
	assert_int_equal(thin_create_snap_locked(meta, 1, 0), 0);
	assert_int_equal(thin_create_snap_locked(meta, 1, 0), -EEXIST);
	assert_int_equal(thin_create_snap_locked(meta, 2, 9), -ENODATA);
	d = dev_info(meta, 1);
	assert_int_equal(d.creation_time, 1);
	assert_int_equal(d.snapshotted_time, 1);
	assert_int_equal(dev_info(meta, 0).snapshotted_time, 1);
	/* A snapshot of a snapshot. */
	assert_int_equal(thin_create_snap_locked(meta, 2, 1), 0);
	assert_int_equal(dev_info(meta, 1).snapshotted_time, 2);
	assert_int_equal(dev_info(meta, 0).snapshotted_time, 1);
	assert_int_equal(thinp_meta_get_superblock(meta, THINP_META_LIVE, &sb), 0);
	assert_int_equal(sb.time, 2);
	commit_and_check(meta, io);
	oracle(io);
	assert_int_equal(thin_delete_locked(meta, 1), 0);
	assert_int_equal(thin_delete_locked(meta, 1), -ENODATA);
	assert_int_equal(thin_device_locked(meta, 1, &d), -ENODATA);
	assert_int_equal(thinp_meta_create_thin(meta, THINP_META_MAX_API_DEV_ID + 1ull), -EINVAL);
	commit_and_check(meta, io);
	th_reopen(io, &meta);
	assert_int_equal(dev_info(meta, 2).creation_time, 2);
	assert_int_equal(thin_device_locked(meta, 1, &d), -ENODATA);
	oracle(io);
	thinp_meta_close(meta);
	thinp_io_close(io);
}

static void test_transaction_id(void **state)
{
	thinp_io *io;
	thinp_meta *meta;
	thinp_meta_status st = THINP_META_STATUS_INIT;

	th_format(&io, &meta, 4 * MIB, 10);
	assert_int_equal(thin_set_transaction_id_locked(meta, 0, 5), 0);
	assert_int_equal(thin_set_transaction_id_locked(meta, 0, 6), -EINVAL);
	assert_int_equal(thinp_meta_commit(meta), 0);
	th_reopen(io, &meta);
	assert_int_equal(thinp_meta_get_status(meta, &st), 0);
	assert_int_equal(st.transaction_id, 5);
	/* Uncommitted changes vanish with the handle. */
	assert_int_equal(thin_set_transaction_id_locked(meta, 5, 9), 0);
	th_reopen(io, &meta);
	assert_int_equal(thinp_meta_get_status(meta, &st), 0);
	assert_int_equal(st.transaction_id, 5);
	/* Abort drops them too. */
	assert_int_equal(thin_set_transaction_id_locked(meta, 5, 9), 0);
	assert_int_equal(thinp_meta_create_thin(meta, 4), 0);
	assert_int_equal(thinp_meta_abort(meta), 0);
	assert_int_equal(thinp_meta_get_status(meta, &st), 0);
	assert_int_equal(st.transaction_id, 5);
	assert_int_equal(thin_delete_locked(meta, 4), -ENODATA);
	thinp_meta_close(meta);
	thinp_io_close(io);
}

static void test_messages(void **state)
{
	thinp_io *io;
	thinp_meta *meta;
	thinp_meta_status st = THINP_META_STATUS_INIT;
	thinp_meta_device d;

	th_format(&io, &meta, 4 * MIB, 10);
	assert_int_equal(thinp_meta_message(meta, "create_thin 0"), 0);
	assert_int_equal(thinp_meta_message(meta, "CREATE_THIN 1"), 0);
	assert_int_equal(thinp_meta_message(meta, "  Create_Thin\t+2  "), 0);
	assert_int_equal(thinp_meta_message(meta, "create_thin 16777215"), 0);
	assert_int_equal(thinp_meta_message(meta, "create_thin 16777216"), -EINVAL);
	assert_int_equal(thinp_meta_message(meta, "create_thin -1"), -EINVAL);
	assert_int_equal(thinp_meta_message(meta, "create_thin 0x10"), -EINVAL);
	assert_int_equal(thinp_meta_message(meta, "create_thin"), -EINVAL);
	assert_int_equal(thinp_meta_message(meta, "create_thin 5 6"), -EINVAL);
	assert_int_equal(thinp_meta_message(meta, "create_thin 0"), -EEXIST);
	assert_int_equal(thinp_meta_message(meta, "frobnicate 1"), -EINVAL);
	assert_int_equal(thinp_meta_message(meta, ""), -EINVAL);
	assert_int_equal(thinp_meta_message(meta, "create_snap 3 0"), 0);
	assert_int_equal(thinp_meta_message(meta, "create_snap 4 99"), -ENODATA);
	assert_int_equal(thinp_meta_message(meta, "delete 1"), 0);
	assert_int_equal(thinp_meta_message(meta, "delete 1"), -ENODATA);
	assert_int_equal(thinp_meta_message(meta, "set_transaction_id 0 18446744073709551615"), 0);
	assert_int_equal(thinp_meta_message(meta, "set_transaction_id 0 1"), -EINVAL);
	assert_int_equal(thinp_meta_message(meta, "set_transaction_id 18446744073709551615 7"), 0);
	assert_int_equal(thinp_meta_message(meta, "set_transaction_id 7 18446744073709551616"),
			 -EINVAL);
	assert_int_equal(thinp_meta_message(meta, "release_metadata_snap"), -EINVAL);
	assert_int_equal(thinp_meta_message(meta, "reserve_metadata_snap"), 0);
	assert_int_equal(thinp_meta_message(meta, "reserve_metadata_snap"), -EBUSY);
	assert_int_equal(thinp_meta_message(meta, "reserve_metadata_snap x"), -EINVAL);
	th_check_clean(io);
	assert_int_equal(thinp_meta_message(meta, "release_metadata_snap"), 0);
	/* Every successful message was committed: a fresh handle sees it all. */
	th_reopen(io, &meta);
	assert_int_equal(thinp_meta_get_status(meta, &st), 0);
	assert_int_equal(st.transaction_id, 7);
	assert_int_equal(st.held_root, 0);
	d = dev_info(meta, 3);
	assert_int_equal(d.creation_time, 1);
	assert_int_equal(dev_info(meta, 16777215).creation_time, 0);
	assert_int_equal(dev_info(meta, 2).creation_time, 0);
	assert_int_equal(thin_device_locked(meta, 1, &d), -ENODATA);
	th_check_clean(io);
	oracle(io);
	thinp_meta_close(meta);
	thinp_io_close(io);
}

/* ---- mappings -------------------------------------------------------------- */

static void test_mappings_and_sharing(void **state)
{
	thinp_io *io;
	thinp_meta *meta;
	uint64_t b[10], nb, got;
	uint32_t time;
	bool shared;
	int i;

	th_format(&io, &meta, 4 * MIB, 1000);
	assert_int_equal(thinp_meta_create_thin(meta, 0), 0);
	for (i = 0; i < 10; i++)
		b[i] = map_new(meta, 0, (uint64_t)i);
	assert_int_equal(dev_info(meta, 0).mapped_blocks, 10);
	assert_int_equal(thinp_meta_lookup(meta, 0, 3, &got, &time, &shared), 0);
	assert_int_equal(got, b[3]);
	assert_int_equal(time, 0);
	assert_false(shared);
	assert_int_equal(thinp_meta_lookup(meta, 0, 10, &got, NULL, NULL), -ENODATA);
	assert_int_equal(thinp_meta_lookup(meta, 7, 0, &got, NULL, NULL), -ENODATA);
	assert_int_equal(th_insert_now(meta, 7, 0, b[0]), -ENODATA);
	assert_int_equal(th_insert_now(meta, 0, 0, 1000), -EINVAL);
	commit_and_check(meta, io);

	assert_int_equal(thin_create_snap_locked(meta, 1, 0), 0);
	assert_int_equal(dev_info(meta, 1).mapped_blocks, 10);
	assert_int_equal(thinp_meta_lookup(meta, 1, 3, &got, NULL, &shared), 0);
	assert_int_equal(got, b[3]);
	assert_true(shared);
	assert_int_equal(thinp_meta_lookup(meta, 0, 3, NULL, NULL, &shared), 0);
	assert_true(shared);
	for (i = 0; i < 10; i++) /* a snapshot changes no data count */
		assert_int_equal(data_count(meta, b[i]), 1);
	commit_and_check(meta, io);

	/* Break sharing on the origin: its leaf is copied, so every block in it
	 * gains a reference, then the overwritten one loses the origin's. */
	nb = map_new(meta, 0, 3);
	assert_int_equal(thinp_meta_lookup(meta, 0, 3, &got, &time, &shared), 0);
	assert_int_equal(got, nb);
	assert_int_equal(time, 1);
	assert_false(shared);
	assert_int_equal(thinp_meta_lookup(meta, 1, 3, &got, NULL, NULL), 0);
	assert_int_equal(got, b[3]);
	assert_int_equal(data_count(meta, b[3]), 1);
	assert_int_equal(data_count(meta, b[4]), 2);
	assert_int_equal(data_count(meta, nb), 1);
	assert_int_equal(dev_info(meta, 0).mapped_blocks, 10);
	commit_and_check(meta, io);
	oracle(io);

	/* Deleting the snapshot drops its references only. */
	assert_int_equal(thin_delete_locked(meta, 1), 0);
	assert_int_equal(data_count(meta, b[3]), 0);
	assert_int_equal(data_count(meta, b[4]), 1);
	assert_int_equal(data_count(meta, nb), 1);
	commit_and_check(meta, io);

	/* Remapping to the same block keeps exactly one reference. */
	assert_int_equal(thinp_meta_data_inc(meta, nb), 0);
	assert_int_equal(thinp_meta_insert_timed(meta, 0, 3, nb, 0), 0);
	assert_int_equal(data_count(meta, nb), 1);
	assert_int_equal(thinp_meta_insert_timed(meta, 0, 3, nb, 1u << 24), -EINVAL);
	assert_int_equal(th_remove(meta, 0, 3), 0);
	assert_int_equal(th_remove(meta, 0, 3), -ENODATA);
	assert_int_equal(data_count(meta, nb), 0);
	assert_int_equal(dev_info(meta, 0).mapped_blocks, 9);
	commit_and_check(meta, io);
	oracle(io);
	thinp_meta_close(meta);
	thinp_io_close(io);
}

static void test_remove_range_and_next(void **state)
{
	thinp_io *io;
	thinp_meta *meta;
	uint64_t n, v, hi, data;
	uint64_t i;

	th_format(&io, &meta, 8 * MIB, 5000);
	assert_int_equal(thinp_meta_create_thin(meta, 5), 0);
	for (i = 0; i < 2000; i++)
		map_new(meta, 5, i * 2);
	commit_and_check(meta, io);
	assert_int_equal(thin_highest_mapped_locked(meta, 5, &hi), 0);
	assert_int_equal(hi, 3998);
	assert_int_equal(th_lookup_next(meta, 5, 7, &v, &data, NULL), 0);
	assert_int_equal(v, 8);
	assert_int_equal(th_lookup_next(meta, 5, 3999, &v, NULL, NULL), -ENODATA);
	assert_int_equal(thin_remove_range_locked(meta, 5, 10, 5, &n), -EINVAL);
	assert_int_equal(thin_remove_range_locked(meta, 5, 101, 3001, &n), 0);
	assert_int_equal(n, 1450);
	assert_int_equal(dev_info(meta, 5).mapped_blocks, 550);
	assert_int_equal(th_lookup_next(meta, 5, 101, &v, NULL, NULL), 0);
	assert_int_equal(v, 3002);
	assert_int_equal(thin_remove_range_locked(meta, 5, 0, UINT64_MAX, &n), 0);
	assert_int_equal(n, 550);
	assert_int_equal(thin_highest_mapped_locked(meta, 5, &hi), -ENODATA);
	commit_and_check(meta, io);
	oracle(io);
	thinp_meta_close(meta);
	thinp_io_close(io);
}

/* The highest mapped block is the rightmost path of the device's subtree:
 * check it against a bitmap model while the top end is removed in bites
 * that cross leaves (every leaf boundary of a 3000-mapping tree is crossed,
 * emptied leaves are merged away), after middle removals, and in a snapshot
 * whose subtree shares the origin's nodes until it diverges. */
static uint64_t model_highest(const bool *m, uint64_t n)
{
	while (n && !m[n - 1])
		n--;
	return n ? n - 1 : UINT64_MAX;
}

static void assert_highest(thinp_meta *meta, uint64_t dev, const bool *m, uint64_t n)
{
	uint64_t want = model_highest(m, n), hi = 0;
	int r = thin_highest_mapped_locked(meta, dev, &hi);

	if (want == UINT64_MAX) {
		assert_int_equal(r, -ENODATA);
		return;
	}
	assert_int_equal(r, 0);
	assert_int_equal(hi, want);
}

#define HI_N 6000

static void test_highest_mapped(void **state)
{
	static bool m[HI_N], snap[HI_N];
	struct test_rng rng;
	thinp_io *io;
	thinp_meta *meta;
	uint64_t top, n;

	test_rng_init(&rng, 0x41617);
	th_format(&io, &meta, 16 * MIB, HI_N);
	assert_int_equal(thinp_meta_create_thin(meta, 5), 0);
	assert_int_equal(thin_highest_mapped_locked(meta, 5, &top), -ENODATA);
	assert_int_equal(thin_highest_mapped_locked(meta, 6, &top), -ENODATA);
	for (uint64_t i = 0; i < HI_N / 2; i++) {
		map_new(meta, 5, i * 2);
		m[i * 2] = true;
	}
	assert_highest(meta, 5, m, HI_N);
	commit_and_check(meta, io);
	assert_int_equal(thinp_meta_message(meta, "create_snap 6 5"), 0);
	memcpy(snap, m, sizeof(m));
	/* Bite the top of the origin off, 1 to 200 blocks at a time. */
	while ((top = model_highest(m, HI_N)) != UINT64_MAX && top > 1000) {
		uint64_t bite = 1 + test_rng_below(&rng, 200), begin = top + 1 - bite;

		assert_int_equal(thin_remove_range_locked(meta, 5, begin, top + 1, &n), 0);
		for (uint64_t v = begin; v <= top; v++)
			m[v] = false;
		assert_highest(meta, 5, m, HI_N);
		/* A middle removal never moves it. */
		if (top > 2000) {
			uint64_t v = 2 * test_rng_below(&rng, 500);

			th_remove(meta, 5, v);
			m[v] = false;
			assert_highest(meta, 5, m, HI_N);
		}
		assert_highest(meta, 6, snap, HI_N);
	}
	commit_and_check(meta, io);
	/* The snapshot diverges at its own top end. */
	assert_int_equal(th_remove(meta, 6, HI_N - 2), 0);
	snap[HI_N - 2] = false;
	assert_highest(meta, 6, snap, HI_N);
	map_new(meta, 6, HI_N + 7);
	assert_int_equal(thin_highest_mapped_locked(meta, 6, &top), 0);
	assert_int_equal(top, HI_N + 7);
	assert_highest(meta, 5, m, HI_N);
	/* Everything removed: nothing is highest. */
	assert_int_equal(thin_remove_range_locked(meta, 5, 0, UINT64_MAX, &n), 0);
	memset(m, 0, sizeof(m));
	assert_highest(meta, 5, m, HI_N);
	commit_and_check(meta, io);
	oracle(io);
	thinp_meta_close(meta);
	thinp_io_close(io);
}

/* lookup_run answers like one lookup per block (holes, runs across leaves,
 * a missing device); insert_run refuses before it changes anything. */
static void test_runs(void **state)
{
	struct thin_mapping run[300];
	struct thin_pool_info info;
	struct test_rng rng;
	thinp_io *io;
	thinp_meta *meta;
	uint64_t vbs[4] = { 1, 2, 3, 4 }, dbs[4], keep;

	test_rng_init(&rng, 0x52554e);
	th_format(&io, &meta, 8 * MIB, 5000);
	assert_int_equal(thinp_meta_create_thin(meta, 1), 0);
	for (uint64_t i = 0; i < 1500; i++)
		if (test_rng_below(&rng, 3))
			map_new(meta, 1, i);
	assert_int_equal(thinp_meta_message(meta, "create_snap 2 1"), 0);
	for (int k = 0; k < 200; k++) {
		uint64_t at = test_rng_below(&rng, 1700);
		uint32_t len = 1 + (uint32_t)test_rng_below(&rng, 300);

		assert_int_equal(thin_lookup_run_locked(meta, 1, at, len, run), 0);
		for (uint32_t i = 0; i < len; i++) {
			uint64_t b;
			uint32_t t;
			bool sh;
			int r = thinp_meta_lookup(meta, 1, at + i, &b, &t, &sh);

			assert_int_equal(run[i].mapped, r == 0);
			if (r)
				continue;
			assert_int_equal(run[i].data_block, b);
			assert_int_equal(run[i].time, t);
			assert_int_equal(run[i].shared, sh);
			assert_true(sh);
		}
	}
	assert_int_equal(thin_lookup_run_locked(meta, 9, 0, 4, run), -ENODATA);
	assert_int_equal(thin_lookup_run_locked(meta, 1, UINT64_MAX - 2, 4, run), -EINVAL);
	/* A run may end at the very last block, mapped or not. */
	assert_int_equal(thin_lookup_run_locked(meta, 1, UINT64_MAX - 2, 3, run), 0);
	assert_false(run[2].mapped);
	map_new(meta, 1, UINT64_MAX);
	assert_int_equal(thin_lookup_run_locked(meta, 1, UINT64_MAX - 2, 3, run), 0);
	assert_false(run[0].mapped || run[1].mapped);
	assert_true(run[2].mapped);

	/* insert_run: a block beyond the device anywhere in the run refuses
	 * the whole run, and damages nothing. */
	for (int i = 0; i < 4; i++)
		assert_int_equal(thin_alloc_data_block_locked(meta, &dbs[i]), 0);
	assert_int_equal(thin_insert_run_locked(meta, 2000, vbs, dbs, 4), -ENODATA);
	keep = dbs[2];
	dbs[2] = 5000;
	assert_int_equal(thin_insert_run_locked(meta, 2, vbs, dbs, 4), -EINVAL);
	assert_int_equal(thin_pool_info_locked(meta, &info), 0);
	assert_false(info.damaged);
	assert_int_equal(thin_lookup_run_locked(meta, 2, 1, 4, run), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(run[i].data_block == dbs[i] && !run[i].shared, false);
	dbs[2] = keep;
	assert_int_equal(thin_insert_run_locked(meta, 2, vbs, dbs, 4), 0);
	assert_int_equal(thin_lookup_run_locked(meta, 2, 0, 6, run), 0);
	for (int i = 0; i < 4; i++) {
		assert_true(run[i + 1].mapped);
		assert_int_equal(run[i + 1].data_block, dbs[i]);
		assert_false(run[i + 1].shared);
	}
	assert_int_equal(data_count(meta, dbs[0]), 1);
	commit_and_check(meta, io);
	oracle(io);
	thinp_meta_close(meta);
	thinp_io_close(io);
}

/* ---- walks ----------------------------------------------------------------- */

struct runs {
	thinp_meta_run r[16];
	int n;
};

static int collect_run(const thinp_meta_run *run, void *ctx)
{
	struct runs *rs = ctx;

	assert_true(rs->n < 16);
	rs->r[rs->n++] = *run;
	return 0;
}

static void expect_run(const thinp_meta_run *r, uint64_t v, uint64_t d, uint64_t len, uint32_t t)
{
	assert_int_equal(r->virt_begin, v);
	assert_int_equal(r->data_begin, d);
	assert_int_equal(r->length, len);
	assert_int_equal(r->time, t);
}

struct devs {
	thinp_meta_device d[8];
	int n;
};

static int collect_dev(const thinp_meta_device *dev, void *ctx)
{
	struct devs *ds = ctx;

	ds->d[ds->n++] = *dev;
	return ds->n == 8 ? 1 : 0;
}

/*
 * thinp_meta_highest_mapped on test_walks' devices (9 maps up to 7, 2
 * nothing): live, and from a held snapshot after the live device grew.
 */
static void expect_highest(thinp_meta *meta)
{
	uint64_t v = 12345;

	assert_int_equal(thinp_meta_highest_mapped(meta, THINP_META_LIVE, 9, &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(thinp_meta_highest_mapped(meta, THINP_META_LIVE, 2, &v), -ENODATA);
	assert_int_equal(thinp_meta_highest_mapped(meta, THINP_META_LIVE, 3, &v), -ENODATA);
	assert_int_equal(thinp_meta_highest_mapped(meta, THINP_META_HELD_ROOT, 9, &v), -ENODATA);
	assert_int_equal(thinp_meta_highest_mapped(meta, THINP_META_LIVE, 9, NULL), -EINVAL);
	assert_int_equal(thinp_meta_message(meta, "reserve_metadata_snap"), 0);
	assert_int_equal(thinp_meta_data_inc(meta, 40), 0);
	assert_int_equal(thinp_meta_insert_timed(meta, 9, 1000000, 40, 2), 0);
	assert_int_equal(thinp_meta_highest_mapped(meta, THINP_META_LIVE, 9, &v), 0);
	assert_int_equal(v, 1000000);
	assert_int_equal(thinp_meta_highest_mapped(meta, THINP_META_HELD_ROOT, 9, &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(thinp_meta_message(meta, "release_metadata_snap"), 0);
}

static void test_walks(void **state)
{
	thinp_io *io;
	thinp_meta *meta;
	struct runs rs = { .n = 0 };
	struct devs ds = { .n = 0 };

	th_format(&io, &meta, 4 * MIB, 100);
	assert_int_equal(thinp_meta_create_thin(meta, 9), 0);
	assert_int_equal(thinp_meta_create_thin(meta, 2), 0);
	/* 0..2 -> 10..12 time 0; 3 -> 13 time 1; 5 -> 14 time 1 (gap);
	 * 6 -> 16 (data gap); 7 -> 17. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(thinp_meta_data_inc(meta, 10 + i), 0);
		assert_int_equal(thinp_meta_insert_timed(meta, 9, i, 10 + i, 0), 0);
	}
	assert_int_equal(thinp_meta_data_inc(meta, 13), 0);
	assert_int_equal(thinp_meta_insert_timed(meta, 9, 3, 13, 1), 0);
	assert_int_equal(thinp_meta_data_inc(meta, 14), 0);
	assert_int_equal(thinp_meta_insert_timed(meta, 9, 5, 14, 1), 0);
	assert_int_equal(thinp_meta_data_inc(meta, 16), 0);
	assert_int_equal(thinp_meta_insert_timed(meta, 9, 6, 16, 1), 0);
	assert_int_equal(thinp_meta_data_inc(meta, 17), 0);
	assert_int_equal(thinp_meta_insert_timed(meta, 9, 7, 17, 1), 0);
	assert_int_equal(thinp_meta_walk_mappings(meta, THINP_META_LIVE, 9, collect_run, &rs), 0);
	assert_int_equal(rs.n, 4);
	expect_run(&rs.r[0], 0, 10, 3, 0);
	expect_run(&rs.r[1], 3, 13, 1, 1);
	expect_run(&rs.r[2], 5, 14, 1, 1);
	expect_run(&rs.r[3], 6, 16, 2, 1);
	rs.n = 0;
	assert_int_equal(thinp_meta_walk_mappings(meta, THINP_META_LIVE, 2, collect_run, &rs), 0);
	assert_int_equal(rs.n, 0);
	assert_int_equal(thinp_meta_walk_mappings(meta, THINP_META_LIVE, 3, collect_run, &rs),
			 -ENODATA);
	assert_int_equal(thinp_meta_walk_mappings(meta, THINP_META_HELD_ROOT, 9, collect_run, &rs),
			 -ENODATA);
	assert_int_equal(thinp_meta_walk_devices(meta, THINP_META_LIVE, collect_dev, &ds), 0);
	assert_int_equal(ds.n, 2);
	expect_highest(meta);
	assert_int_equal(ds.d[0].dev_id, 2);
	assert_int_equal(ds.d[1].dev_id, 9);
	assert_int_equal(ds.d[1].mapped_blocks, 7);
	commit_and_check(meta, io);
	oracle(io);
	thinp_meta_close(meta);
	thinp_io_close(io);
}

/* ---- metadata snapshots ------------------------------------------------------ */

static void test_metadata_snapshot(void **state)
{
	thinp_meta_superblock sb = THINP_META_SUPERBLOCK_INIT;
	thinp_meta_status st = THINP_META_STATUS_INIT;
	thinp_io *io;
	thinp_meta *meta;
	struct runs rs = { .n = 0 };
	struct devs ds = { .n = 0 };
	uint64_t held, b0;
	int i;

	th_format(&io, &meta, 4 * MIB, 1000);
	assert_int_equal(thinp_meta_create_thin(meta, 0), 0);
	for (i = 0; i < 5; i++)
		map_new(meta, 0, (uint64_t)i);
	assert_int_equal(thinp_meta_lookup(meta, 0, 0, &b0, NULL, NULL), 0);
	assert_int_equal(thin_reserve_metadata_snap_locked(meta), 0);
	assert_int_equal(thin_reserve_metadata_snap_locked(meta), -EBUSY);
	assert_int_equal(thinp_meta_commit(meta), 0);
	assert_int_equal(thinp_meta_get_status(meta, &st), 0);
	held = st.held_root;
	assert_true(held != 0);
	th_check_clean(io);

	/* Change the live pool in every way. */
	assert_int_equal(th_remove(meta, 0, 0), 0);
	map_new(meta, 0, 100);
	assert_int_equal(thinp_meta_create_thin(meta, 1), 0);
	map_new(meta, 1, 0);
	assert_int_equal(thin_set_transaction_id_locked(meta, 0, 42), 0);
	commit_and_check(meta, io);
	oracle(io);

	/* The snapshot still shows the reserved state. */
	assert_int_equal(thinp_meta_get_superblock(meta, THINP_META_HELD_ROOT, &sb), 0);
	assert_int_equal(sb.blocknr, held);
	assert_int_equal(sb.nr_data_blocks, 0);
	assert_int_equal(sb.transaction_id, 0);
	assert_int_equal(thinp_meta_walk_devices(meta, THINP_META_HELD_ROOT, collect_dev, &ds), 0);
	assert_int_equal(ds.n, 1);
	assert_int_equal(ds.d[0].mapped_blocks, 5);
	assert_int_equal(thinp_meta_walk_mappings(meta, held, 0, collect_run, &rs), 0);
	assert_int_equal(rs.n, 1);
	expect_run(&rs.r[0], 0, b0, 5, 0);
	rs.n = 0;
	assert_int_equal(thinp_meta_walk_mappings(meta, THINP_META_LIVE, 0, collect_run, &rs), 0);
	assert_true(rs.r[0].virt_begin == 1);
	assert_int_equal(thinp_meta_get_superblock(meta, 5000, &sb), -EINVAL);

	/* Survives a reopen, then is released and everything it held freed. */
	th_reopen(io, &meta);
	assert_int_equal(thinp_meta_get_superblock(meta, THINP_META_HELD_ROOT, &sb), 0);
	assert_int_equal(sb.blocknr, held);
	assert_int_equal(thin_release_metadata_snap_locked(meta), 0);
	assert_int_equal(thin_release_metadata_snap_locked(meta), -EINVAL);
	assert_int_equal(thinp_meta_get_superblock(meta, THINP_META_HELD_ROOT, &sb), -ENODATA);
	commit_and_check(meta, io);
	oracle(io);
	thinp_meta_close(meta);
	thinp_io_close(io);
}

/* ---- space ------------------------------------------------------------------ */

static void test_data_space(void **state)
{
	thinp_meta_status st = THINP_META_STATUS_INIT;
	thinp_io *io;
	thinp_meta *meta;
	uint64_t b, first, i;

	th_format(&io, &meta, 4 * MIB, 64);
	assert_int_equal(thinp_meta_create_thin(meta, 0), 0);
	first = map_new(meta, 0, 0);
	assert_int_equal(thinp_meta_commit(meta), 0);
	/* A block freed in this transaction is not handed out again before the
	 * commit: the committed metadata still maps it. */
	assert_int_equal(th_remove(meta, 0, 0), 0);
	for (i = 0; i < 63; i++) {
		assert_int_equal(thin_alloc_data_block_locked(meta, &b), 0);
		assert_true(b != first);
		assert_int_equal(th_insert_now(meta, 0, i + 1, b), 0);
	}
	assert_int_equal(thin_alloc_data_block_locked(meta, &b), -ENOSPC);
	assert_int_equal(thinp_meta_get_status(meta, &st), 0);
	assert_int_equal(st.used_data_blocks, 63);
	assert_int_equal(th_mode(meta), THINP_META_MODE_RW);
	commit_and_check(meta, io);
	assert_int_equal(thin_alloc_data_block_locked(meta, &b), 0);
	assert_int_equal(b, first);
	assert_int_equal(thin_data_dec_locked(meta, b), 0);
	assert_int_equal(thin_data_dec_locked(meta, b), -EINVAL);
	assert_int_equal(thinp_meta_data_inc(meta, 64), -EINVAL);
	assert_int_equal(thin_data_count_locked(meta, 64, NULL), -EINVAL);

	/* Grow the data device across bitmaps, never shrink. */
	assert_int_equal(thin_resize_data_locked(meta, 40000), 0);
	assert_int_equal(thin_resize_data_locked(meta, 100), -EINVAL);
	assert_int_equal(thinp_meta_get_status(meta, &st), 0);
	assert_int_equal(st.total_data_blocks, 40000);
	commit_and_check(meta, io);
	oracle(io);
	thinp_meta_close(meta);
	thinp_io_close(io);
}

static void test_resize_metadata(void **state)
{
	thinp_meta_status st = THINP_META_STATUS_INIT;
	thinp_meta_superblock sb = THINP_META_SUPERBLOCK_INIT;
	thinp_io *io;
	thinp_meta *meta;

	th_format(&io, &meta, 4 * MIB, 100);
	assert_int_equal(thin_resize_metadata_locked(meta, 2048), -EINVAL);
	assert_int_equal(thinp_io_resize(io, 80 * MIB), 0);
	assert_int_equal(thin_resize_metadata_locked(meta, 0), 0);
	assert_int_equal(thin_resize_metadata_locked(meta, 100), -EINVAL);
	assert_int_equal(thinp_meta_get_status(meta, &st), 0);
	assert_int_equal(st.total_metadata_blocks, 20480);
	assert_int_equal(st.metadata_reserve, 2048);
	commit_and_check(meta, io);
	th_reopen(io, &meta);
	assert_int_equal(thinp_meta_get_superblock(meta, THINP_META_LIVE, &sb), 0);
	assert_int_equal(sb.metadata_nr_blocks, 20480);
	assert_int_equal(sb.sb_metadata_nr_blocks, 1024); /* as formatted, like the kernel */
	oracle(io);
	thinp_meta_close(meta);
	thinp_io_close(io);
}

/* ---- flags, modes, failure ----------------------------------------------------- */

static void test_needs_check_and_read_only(void **state)
{
	thinp_meta_options o = THINP_META_OPTIONS_INIT;
	thinp_meta_status st = THINP_META_STATUS_INIT;
	thinp_io *io;
	thinp_meta *meta;

	th_format(&io, &meta, 4 * MIB, 100);
	assert_int_equal(thin_set_needs_check_locked(meta), 0);
	assert_int_equal(thinp_meta_get_status(meta, &st), 0);
	assert_int_equal(st.needs_check, 1);
	assert_int_equal(thin_resize_data_locked(meta, 200), -EROFS);
	th_reopen(io, &meta);
	assert_int_equal(thinp_meta_get_status(meta, &st), 0);
	assert_int_equal(st.needs_check, 1);
	oracle(io);
	assert_int_equal(th_clear_needs_check(meta), 0);
	assert_int_equal(thinp_meta_commit(meta), 0);
	th_reopen(io, &meta);
	assert_int_equal(thinp_meta_get_status(meta, &st), 0);
	assert_int_equal(st.needs_check, 0);
	thinp_meta_close(meta);

	o.flags = THINP_META_RDONLY;
	assert_int_equal(thinp_meta_open(&meta, io, &o), 0);
	assert_int_equal(th_mode(meta), THINP_META_MODE_RO);
	assert_int_equal(thinp_meta_create_thin(meta, 0), -EROFS);
	assert_int_equal(thinp_meta_commit(meta), -EROFS);
	assert_int_equal(thinp_meta_message(meta, "create_thin 0"), -EROFS);
	assert_true(thinp_meta_errmsg(meta, NULL, 0) > 0);
	assert_int_equal(thin_set_needs_check_locked(meta), -EROFS);
	thinp_meta_close(meta);
	th_check_clean(io);
	thinp_io_close(io);
}

static void test_failure_is_sticky(void **state)
{
	thinp_io *lower, *io;
	thinp_io_fault *f;
	thinp_meta *meta;
	thinp_meta_status st = THINP_META_STATUS_INIT;
	thinp_meta_format_params p = THINP_META_FORMAT_PARAMS_INIT;
	int i, r = 0;

	assert_int_equal(thinp_io_open_memory(&lower, 4 * MIB, 0), 0);
	assert_int_equal(thinp_io_open_fault(&io, &f, lower, 0), 0);
	p.nr_data_blocks = 1000;
	assert_int_equal(thinp_meta_format(&meta, io, &p, NULL), 0);
	assert_int_equal(thinp_meta_create_thin(meta, 0), 0);
	assert_int_equal(thinp_meta_commit(meta), 0);
	/* The next flush fails: the commit fails, the handle goes FAIL. */
	for (i = 0; i < 300; i++)
		map_new(meta, 0, (uint64_t)i * 3);
	assert_int_equal(thinp_io_fault_fail_nth(f, THINP_IO_KIND_BIT(THINP_IO_KIND_FLUSH), 1,
						 -EIO, 0), 0);
	r = thinp_meta_commit(meta);
	assert_int_equal(r, -EIO);
	assert_int_equal(th_mode(meta), THINP_META_MODE_FAIL);
	assert_int_equal(thinp_meta_create_thin(meta, 1), -EROFS);
	assert_int_equal(thinp_meta_data_inc(meta, 0), -EROFS);
	assert_int_equal(thinp_meta_commit(meta), -EROFS);
	/* Reads still answer from the last commit. */
	assert_int_equal(thinp_meta_get_status(meta, &st), 0);
	assert_int_equal(st.mode, THINP_META_MODE_FAIL);
	assert_int_equal(st.needs_check, 1);
	assert_int_equal(dev_info(meta, 0).mapped_blocks, 0);
	thinp_meta_close(meta);
	thinp_io_close(io);
	thinp_io_fault_free(f);
	/* On the device: the old state, needs_check set, clean otherwise. */
	assert_int_equal(thinp_meta_open(&meta, lower, NULL), 0);
	assert_int_equal(thinp_meta_get_status(meta, &st), 0);
	assert_int_equal(st.needs_check, 1);
	assert_int_equal(dev_info(meta, 0).mapped_blocks, 0);
	thinp_meta_close(meta);
	th_check_clean(lower);
	oracle(lower);
	thinp_io_close(lower);
}

/* ---- hostile superblocks --------------------------------------------------------- */

typedef void (*sb_mutator)(uint8_t *sb);

static void put32(uint8_t *p, uint32_t v) { store_le32(p, v); }
static void put64(uint8_t *p, uint64_t v) { store_le64(p, v); }

static void m_magic(uint8_t *sb) { put64(sb + 32, 27022011); }
static void m_version0(uint8_t *sb) { put32(sb + 40, 0); }
static void m_version3(uint8_t *sb) { put32(sb + 40, 3); }
static void m_incompat(uint8_t *sb) { put32(sb + 360, 1); }
static void m_blocknr(uint8_t *sb) { put64(sb + 8, 5); }
static void m_flags(uint8_t *sb) { put32(sb + 4, 6); }
static void m_dbs(uint8_t *sb) { put32(sb + 336, 100); }
static void m_map_root(uint8_t *sb) { put64(sb + 320, 1ull << 40); }
static void m_details_root(uint8_t *sb) { put64(sb + 328, 0); }
static void m_meta_nr(uint8_t *sb) { put64(sb + 192, 0); }
static void m_meta_huge(uint8_t *sb) { put64(sb + 192, 1ull << 50); }
static void m_meta_alloc(uint8_t *sb) { put64(sb + 200, 1ull << 20); }
static void m_data_root(uint8_t *sb) { put64(sb + 80, 999999); }
static void m_held(uint8_t *sb) { put64(sb + 56, 99999); }

static void hostile_one(const uint8_t *good, sb_mutator m, bool reseal, int want_open)
{
	thinp_io *io;
	thinp_meta *meta;
	uint8_t *img = malloc(4 * MIB);

	memcpy(img, good, 4 * MIB);
	if (m)
		m(img);
	if (reseal)
		put32(img, block_csum(img, 160774));
	else
		img[200] ^= 0x40;
	assert_int_equal(thinp_io_open_memory(&io, 4 * MIB, 0), 0);
	assert_int_equal(thinp_io_write(io, img, 4 * MIB, 0, 0), 0);
	meta = NULL;
	assert_int_equal(thinp_meta_open(&meta, io, NULL), want_open);
	assert_null(meta);
	assert_true(th_check_count(io, false) > 0);
	thinp_io_close(io);
	free(img);
}

static void test_hostile_superblocks(void **state)
{
	thinp_io *io;
	thinp_meta *meta;
	thinp_meta_options o = THINP_META_OPTIONS_INIT;
	uint8_t *good = malloc(4 * MIB);

	th_format(&io, &meta, 4 * MIB, 100);
	assert_int_equal(thinp_meta_create_thin(meta, 0), 0);
	map_new(meta, 0, 0);
	assert_int_equal(thinp_meta_commit(meta), 0);
	thinp_meta_close(meta);
	assert_int_equal(thinp_io_read(io, good, 4 * MIB, 0, 0), 0);

	hostile_one(good, NULL, false, -EILSEQ); /* bad checksum */
	hostile_one(good, m_magic, true, -EILSEQ);
	hostile_one(good, m_version0, true, -EILSEQ);
	hostile_one(good, m_version3, true, -EILSEQ);
	hostile_one(good, m_incompat, true, -EOPNOTSUPP);
	hostile_one(good, m_blocknr, true, -EILSEQ);
	hostile_one(good, m_flags, true, -EILSEQ);
	hostile_one(good, m_dbs, true, -EILSEQ);
	hostile_one(good, m_map_root, true, -EILSEQ);
	hostile_one(good, m_details_root, true, -EILSEQ);
	hostile_one(good, m_meta_nr, true, -EILSEQ);
	hostile_one(good, m_meta_huge, true, -EILSEQ);
	hostile_one(good, m_meta_alloc, true, -EILSEQ);
	hostile_one(good, m_data_root, true, -EILSEQ);
	hostile_one(good, m_held, true, -EILSEQ);

	/* compat_ro: read-only open only. */
	put32(good + 356, 1);
	put32(good, block_csum(good, 160774));
	assert_int_equal(thinp_io_write(io, good, 4096, 0, 0), 0);
	assert_int_equal(thinp_meta_open(&meta, io, NULL), -EOPNOTSUPP);
	o.flags = THINP_META_RDONLY;
	assert_int_equal(thinp_meta_open(&meta, io, &o), 0);
	assert_int_equal(thinp_meta_lookup(meta, 0, 0, NULL, NULL, NULL), 0);
	thinp_meta_close(meta);
	thinp_io_close(io);
	free(good);
}

/* ---- check findings: errors and warnings ------------------------------------ */

struct tally {
	unsigned errors, warnings;
	char last[512];
};

static void tally_finding(const thinp_meta_finding *f, void *ctx)
{
	struct tally *t = ctx;

	assert_true(f->struct_size >= sizeof(*f));
	if (f->severity == THINP_META_CHECK_WARNING) {
		t->warnings++;
	} else {
		assert_int_equal(f->severity, THINP_META_CHECK_ERROR);
		t->errors++;
	}
	snprintf(t->last, sizeof(t->last), "%s", f->line);
	fprintf(stderr, "  %s: %s\n", f->severity ? "warning" : "error", f->line);
}

static uint64_t peek64(thinp_io *io, uint64_t b, unsigned off)
{
	uint8_t blk[THINP_BLOCK_SIZE];

	assert_int_equal(thinp_io_read(io, blk, sizeof(blk), b * THINP_BLOCK_SIZE, 0), 0);
	return load_le64(blk + off);
}

/* Add `delta` to the le32 (size 4) or le64 (size 8) at `off` of block b and
 * reseal the block with the salt it carried, so that the structure checks
 * behind the checksum see the change. */
static void poke(thinp_io *io, uint64_t b, unsigned off, unsigned size, int64_t delta)
{
	uint8_t blk[THINP_BLOCK_SIZE];
	uint32_t salt;

	assert_int_equal(thinp_io_read(io, blk, sizeof(blk), b * THINP_BLOCK_SIZE, 0), 0);
	salt = load_le32(blk) ^ block_csum(blk, 0);
	if (size == 4)
		store_le32(blk + off, load_le32(blk + off) + (uint32_t)delta);
	else
		store_le64(blk + off, load_le64(blk + off) + (uint64_t)delta);
	store_le32(blk, block_csum(blk, salt));
	assert_int_equal(thinp_io_write(io, blk, sizeof(blk), b * THINP_BLOCK_SIZE, 0), 0);
}

/* The full check of io: its verdict, and exactly the findings expected, the
 * last of them containing `what`. */
static void expect_findings(thinp_io *io, int want_r, unsigned errors, unsigned warnings,
			    const char *what)
{
	struct tally t = { 0, 0, "" };

	assert_int_equal(thinp_meta_check_io(io, NULL, tally_finding, &t), want_r);
	assert_int_equal(t.errors, errors);
	assert_int_equal(t.warnings, warnings);
	assert_non_null(strstr(t.last, what));
}

/* A finding only a warning must not stop a read-write open: the image takes
 * a transaction (a new device `dev`) and stays free of errors. */
static void expect_usable(thinp_io *io, uint64_t dev)
{
	thinp_meta *meta;

	assert_int_equal(thinp_meta_open(&meta, io, NULL), 0);
	assert_int_equal(thinp_meta_create_thin(meta, dev), 0);
	map_new(meta, dev, 0);
	map_new(meta, dev, 1);
	assert_int_equal(thinp_meta_commit(meta), 0);
	thinp_meta_close(meta);
	assert_int_equal(th_check_count(io, true), 0);
}

/* Each kind of finding at its severity, and a read-write open that agrees:
 * refuses what the check calls an error, accepts what it warns about. */
static void test_check_severity(void **state)
{
	thinp_io *io;
	thinp_meta *meta;
	uint64_t map_root, index, bitmap;

	th_format(&io, &meta, 1 * MIB, 100);
	assert_int_equal(thinp_meta_create_thin(meta, 0), 0);
	map_new(meta, 0, 0);
	commit_and_check(meta, io);
	thinp_meta_close(meta);
	map_root = peek64(io, 0, 320);

	/* Node padding: no reader looks at it (the kernel, thin_check). */
	poke(io, map_root, 28, 4, 1);
	expect_findings(io, 0, 0, 1, "padding not zero");
	expect_usable(io, 1);

	/* Index hints out of range: ignored by open (and the kernel). The
	 * transaction rewrote the tree node without its padding, and lowered
	 * the hint when it freed the blocks it had shadowed. */
	index = peek64(io, 0, 192 + 16);
	poke(io, index, 16 + 12, 4, 20000);
	expect_findings(io, 0, 0, 1, "hint out of range");
	expect_usable(io, 2);
	th_check_clean(io);

	/* A bitmap's not_used field. */
	bitmap = peek64(io, peek64(io, 0, 192 + 16), 16);
	poke(io, bitmap, 4, 4, 1);
	expect_findings(io, 0, 0, 1, "not_used field not zero");
	expect_usable(io, 3);
	th_check_clean(io);

	/* nr_allocated above the blocks in use (thin_restore's artefact) is a
	 * warning; below them, an error that open does not catch (it cannot
	 * count) but the check must. */
	poke(io, 0, 192 + 8, 8, 2);
	expect_findings(io, 0, 0, 1, "free space is reported 2 blocks low");
	expect_usable(io, 4);
	poke(io, 0, 192 + 8, 8, -3);
	expect_findings(io, -EILSEQ, 1, 0, "nr_allocated is");
	poke(io, 0, 192 + 8, 8, 1);
	th_check_clean(io);

	/* The metadata space map's index root moved onto a tree node: an error
	 * (found by fuzz/meta_check, which the check once passed); open refuses. */
	poke(io, 0, 192 + 16, 8, (int64_t)(peek64(io, 0, 320) - peek64(io, 0, 192 + 16)));
	expect_findings(io, -EILSEQ, 1, 0, "is already used in a mapping tree");
	meta = NULL;
	assert_int_not_equal(thinp_meta_open(&meta, io, NULL), 0);
	assert_null(meta);
	thinp_io_close(io);
}

static int count_run(const thinp_meta_run *run, void *ctx)
{
	(*(unsigned *)ctx)++;
	return 0;
}

/* Every metadata block of a small pool, corrupted in turn: open and the
 * full check fail cleanly or report; nothing crashes (run under ASan). */
static void test_corrupt_every_block(void **state)
{
	thinp_io *io, *bad;
	thinp_meta *meta;
	uint8_t *good = malloc(1 * MIB), *img = malloc(1 * MIB);
	uint64_t b, nr = 64;
	int i;

	th_format(&io, &meta, 1 * MIB, 100);
	assert_int_equal(thinp_meta_create_thin(meta, 0), 0);
	for (i = 0; i < 40; i++)
		map_new(meta, 0, (uint64_t)i * 5);
	assert_int_equal(thin_create_snap_locked(meta, 1, 0), 0);
	assert_int_equal(thin_reserve_metadata_snap_locked(meta), 0);
	assert_int_equal(thinp_meta_commit(meta), 0);
	thinp_meta_close(meta);
	assert_int_equal(thinp_io_read(io, good, 1 * MIB, 0, 0), 0);
	for (b = 0; b < nr; b++) {
		memcpy(img, good, 1 * MIB);
		img[b * 4096 + 16 + (b * 37) % 4000] ^= 0x5a;
		assert_int_equal(thinp_io_open_memory(&bad, 1 * MIB, 0), 0);
		assert_int_equal(thinp_io_write(bad, img, 1 * MIB, 0, 0), 0);
		th_check_count(bad, false);
		if (thinp_meta_open(&meta, bad, NULL) == 0) {
			unsigned runs = 0;

			thinp_meta_walk_mappings(meta, THINP_META_LIVE, 0, count_run, &runs);
			thinp_meta_create_thin(meta, 7);
			thinp_meta_commit(meta);
			thinp_meta_close(meta);
		}
		thinp_io_close(bad);
	}
	thinp_io_close(io);
	free(good);
	free(img);
}

static void test_time_limit(void **state)
{
	thinp_meta_superblock sb = THINP_META_SUPERBLOCK_INIT;
	thinp_io *io;
	thinp_meta *meta;

	th_format(&io, &meta, 4 * MIB, 100);
	assert_int_equal(thinp_meta_create_thin(meta, 0), 0);
	sb.version = 2;
	sb.time = THINP_META_MAX_TIME - 1;
	assert_int_equal(thinp_meta_set_superblock_fields(meta, &sb), 0);
	assert_int_equal(thin_create_snap_locked(meta, 1, 0), 0);
	assert_int_equal(thin_create_snap_locked(meta, 2, 0), -ENOSPC);
	assert_int_equal(th_mode(meta), THINP_META_MODE_RW);
	commit_and_check(meta, io);
	sb.version = 3;
	assert_int_equal(thinp_meta_set_superblock_fields(meta, &sb), -EINVAL);
	thinp_meta_close(meta);
	thinp_io_close(io);
}

#include <pthread.h>
#include <stdatomic.h>

struct reader {
	thinp_meta *meta;
	atomic_int *stop;
	unsigned lookups;
	int bad;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;

	while (!atomic_load(rd->stop)) {
		uint64_t b;
		uint32_t t;
		unsigned runs = 0;
		int r = thinp_meta_lookup(rd->meta, 0, rd->lookups % 500, &b, &t, NULL);

		if (r && r != -ENODATA)
			rd->bad++;
		if (thinp_meta_walk_mappings(rd->meta, THINP_META_LIVE, 0, count_run, &runs))
			rd->bad++;
		rd->lookups++;
	}
	return NULL;
}

/* Lookups and walks from several threads while one thread changes and
 * commits (the handle's rw-lock; run it under TSan with --enable-tsan). */
static void test_concurrent_readers(void **state)
{
	struct reader rd[3];
	pthread_t th[3];
	atomic_int stop = 0;
	thinp_io *io;
	thinp_meta *meta;
	int i;

	th_format(&io, &meta, 8 * MIB, 10000);
	assert_int_equal(thinp_meta_create_thin(meta, 0), 0);
	for (i = 0; i < 3; i++) {
		rd[i] = (struct reader){ .meta = meta, .stop = &stop };
		assert_int_equal(pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
	}
	for (i = 0; i < 1500; i++) {
		map_new(meta, 0, (uint64_t)(i * 7) % 500);
		if (i % 100 == 0)
			assert_int_equal(thinp_meta_commit(meta), 0);
	}
	atomic_store(&stop, 1);
	for (i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(rd[i].bad, 0);
	}
	commit_and_check(meta, io);
	thinp_meta_close(meta);
	thinp_io_close(io);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_and_open),
		cmocka_unit_test(test_format_refusals),
		cmocka_unit_test(test_oversized_metadata_warns),
		cmocka_unit_test(test_create_snap_delete),
		cmocka_unit_test(test_transaction_id),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_mappings_and_sharing),
		cmocka_unit_test(test_remove_range_and_next),
		cmocka_unit_test(test_highest_mapped),
		cmocka_unit_test(test_runs),
		cmocka_unit_test(test_walks),
		cmocka_unit_test(test_metadata_snapshot),
		cmocka_unit_test(test_data_space),
		cmocka_unit_test(test_resize_metadata),
		cmocka_unit_test(test_needs_check_and_read_only),
		cmocka_unit_test(test_failure_is_sticky),
		cmocka_unit_test(test_hostile_superblocks),
		cmocka_unit_test(test_check_severity),
		cmocka_unit_test(test_corrupt_every_block),
		cmocka_unit_test(test_time_limit),
		cmocka_unit_test(test_concurrent_readers),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	test_tmpdir_cleanup();
	return r;
}
