/*
 * The data and metadata space maps over a real tm/bm/memory device, driven
 * by random operations against a model array, with the full reference-count
 * checker (everything reachable from the test superblock) after every commit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include "common/sm_env.h"
#include "sm/bitmap.h"
#include "sm/disk.h"
#include "sm/format.h"
#include "sm/metadata.h"
#include "util/endian.h"

#define BLK 4096u

static void print_mismatch(void *ctx, const struct sm_mismatch *m)
{
	fprintf(stderr, "mismatch kind %d block %llu expected %llu actual %llu\n", (int)m->kind,
		(unsigned long long)m->b, (unsigned long long)m->expected,
		(unsigned long long)m->actual);
}

static thinp_io *mem_dev(uint64_t blocks)
{
	thinp_io *io;

	assert_int_equal(thinp_io_open_memory(&io, blocks * BLK, 0), 0);
	return io;
}

static void read_block(thinp_io *io, uint64_t b, uint8_t *buf)
{
	assert_int_equal(thinp_io_read(io, buf, BLK, b * BLK, 0), 0);
}

static void write_block(thinp_io *io, uint64_t b, const uint8_t *buf)
{
	assert_int_equal(thinp_io_write(io, buf, BLK, b * BLK, 0), 0);
}

static void reseal(thinp_io *io, uint64_t b, uint8_t *buf, const struct validator *v)
{
	v->prepare_for_write(v, buf, b);
	write_block(io, b, buf);
}

/* ------------------------------------------------------------------------ */
/* Format layout (FORMAT.md 8.5 / 15) */

static void test_format_layout(void **state)
{
	thinp_io *io = mem_dev(1000);
	struct sm_env e;
	uint8_t buf[BLK];
	struct sm_root_info mr, dr;
	struct index_entry ie;
	const char *why;
	uint64_t n;

	assert_int_equal(sm_env_format(&e, io, 0), 0);
	read_block(io, 0, buf);
	sm_root_unpack(buf + 192, &mr);
	sm_root_unpack(buf + 64, &dr);
	/* Block 0 superblock, 1 index, 2 overflow root, 3 bitmap; then the data
	 * sm's index root (4), its overflow root (5) and the test tree (6). */
	assert_int_equal(mr.nr_blocks, 1000);
	assert_int_equal(mr.bitmap_root, 1);
	assert_int_equal(mr.ref_count_root, 2);
	assert_int_equal(mr.nr_allocated, 7);
	assert_int_equal(dr.nr_blocks, 0);
	assert_int_equal(dr.nr_allocated, 0);
	assert_int_equal(dr.bitmap_root, 4);
	assert_int_equal(dr.ref_count_root, 5);
	/* bytes 32..127 of each root area are zero */
	for (n = 32; n < 128; n++) {
		assert_int_equal(buf[64 + n], 0);
		assert_int_equal(buf[192 + n], 0);
	}

	read_block(io, 1, buf);
	assert_int_equal(sm_index_validator.check(&sm_index_validator, buf, 1, &why), 0);
	index_entry_unpack((const struct disk_index_entry *)(buf + 16), &ie);
	assert_int_equal(ie.blocknr, 3);
	assert_int_equal(ie.nr_free, SM_ENTRIES_PER_BITMAP - 7);
	assert_int_equal(ie.none_free_before, 7);
	for (n = 32; n < BLK; n++)
		assert_int_equal(buf[n], 0);

	read_block(io, 3, buf);
	assert_int_equal(sm_bitmap_validator.check(&sm_bitmap_validator, buf, 3, &why), 0);
	assert_int_equal(buf[16], 0xAA);
	assert_int_equal(buf[17], 0x2A);
	for (n = 18; n < BLK; n++)
		assert_int_equal(buf[n], 0);

	assert_int_equal(sm_get_nr_free(e.msm, &n), 0);
	assert_int_equal(n, 993);
	assert_int_equal(sm_env_check(&e, NULL, print_mismatch, NULL), 0);
	sm_env_close(&e);

	/* Reopen from the device alone. */
	assert_int_equal(sm_env_open(&e, io, false), 0);
	assert_int_equal(sm_env_check(&e, NULL, print_mismatch, NULL), 0);
	sm_env_close(&e);
	thinp_io_close(io);
}

static void test_too_small_metadata(void **state)
{
	thinp_io *io = mem_dev(16);
	struct sm_env e;

	/* 3 blocks: superblock, index, overflow root; no room for a bitmap. */
	assert_int_equal(sm_env_format_n(&e, io, 3, 0), -EINVAL);
	sm_env_close(&e);
	thinp_io_close(io);
}

/* ------------------------------------------------------------------------ */
/* Random operations against a model */

struct model {
	uint64_t n;
	uint32_t *cur, *committed;
	uint8_t *freed;  /* count went to 0 in this transaction */
	uint8_t *handed; /* handed out by new_block in this transaction */
};

static void model_init(struct model *m, uint64_t n)
{
	m->n = n;
	m->cur = calloc(n, sizeof(uint32_t));
	m->committed = calloc(n, sizeof(uint32_t));
	m->freed = calloc(n, 1);
	m->handed = calloc(n, 1);
	assert_non_null(m->cur);
	assert_non_null(m->committed);
	assert_non_null(m->freed);
	assert_non_null(m->handed);
}

static void model_free(struct model *m)
{
	free(m->cur);
	free(m->committed);
	free(m->freed);
	free(m->handed);
}

static void model_new_tx(struct model *m, bool commit)
{
	if (commit)
		memcpy(m->committed, m->cur, m->n * sizeof(uint32_t));
	else
		memcpy(m->cur, m->committed, m->n * sizeof(uint32_t));
	memset(m->freed, 0, m->n);
	memset(m->handed, 0, m->n);
}

/* A new block must be free now, free at the last commit, not freed or
 * handed out earlier in this transaction. */
static void model_take(struct model *m, uint64_t b)
{
	assert_true(b < m->n);
	assert_int_equal(m->cur[b], 0);
	assert_int_equal(m->committed[b], 0);
	assert_int_equal(m->freed[b], 0);
	assert_int_equal(m->handed[b], 0);
	m->handed[b] = 1;
	m->cur[b] = 1;
}

static void model_set(struct model *m, uint64_t b, uint32_t c)
{
	if (m->cur[b] && !c)
		m->freed[b] = 1;
	m->cur[b] = c;
}

/* A metadata block belongs to the test while the model holds it now or at
 * the last commit (then it cannot be reused before the commit either). */
static bool model_owns(const struct model *m, uint64_t b)
{
	return m->cur[b] || m->committed[b];
}

static void compare_all(struct space_map *sm, struct model *m, bool only_owned)
{
	uint64_t b;

	for (b = 0; b < m->n; b++) {
		uint32_t c;

		if (only_owned && !model_owns(m, b))
			continue;
		assert_int_equal(sm_get_count(sm, b, &c), 0);
		if (c != m->cur[b])
			fprintf(stderr, "block %llu: count %u, model %u\n", (unsigned long long)b, c,
				m->cur[b]);
		assert_int_equal(c, m->cur[b]);
	}
}

/* Pick a block the model holds (count > 0), or UINT64_MAX. Hot blocks (the
 * first 64 tried) make counts cross 2 -> 3 -> 2 often. */
static uint64_t pick_used(struct test_rng *rng, struct model *m, const uint64_t *hot,
			  unsigned nr_hot)
{
	unsigned i;

	for (i = 0; i < 64; i++) {
		uint64_t b = nr_hot && test_rng_below(rng, 2) ? hot[test_rng_below(rng, nr_hot)]
							       : test_rng_below(rng, m->n);
		if (m->cur[b])
			return b;
	}
	return UINT64_MAX;
}

/*
 * One random run over either space map. For the metadata map the test may
 * only touch blocks it owns (handed out by new_block, or taken by set_count
 * while free), since every other block belongs to the structures.
 */
struct run {
	struct sm_env e;
	thinp_io *io;
	struct model m;
	bool metadata;
	uint64_t hot[16];
	unsigned nr_hot;
};

static struct space_map *run_sm(struct run *t)
{
	return t->metadata ? t->e.msm : t->e.dsm;
}

static void run_check(struct run *t)
{
	struct sm_env_extra x = { 0 };

	if (t->metadata) {
		x.meta = t->m.cur;
		x.nr_meta = t->m.n;
	} else {
		x.data = t->m.cur;
		x.nr_data = t->m.n;
	}
	assert_int_equal(sm_env_check(&t->e, &x, print_mismatch, NULL), 0);
}

static void op_new_block(struct run *t)
{
	uint64_t b;
	int r = sm_new_block(run_sm(t), &b);

	if (r == -ENOSPC)
		return;
	assert_int_equal(r, 0);
	model_take(&t->m, b);
	if (t->nr_hot < THINP_ARRAY_SIZE(t->hot))
		t->hot[t->nr_hot++] = b;
}

static void op_inc(struct run *t, struct test_rng *rng)
{
	uint64_t b = pick_used(rng, &t->m, t->hot, t->nr_hot);

	if (b == UINT64_MAX)
		return;
	assert_int_equal(sm_inc(run_sm(t), b), 0);
	model_set(&t->m, b, t->m.cur[b] + 1);
}

static void op_dec(struct run *t, struct test_rng *rng)
{
	uint64_t b = pick_used(rng, &t->m, t->hot, t->nr_hot);

	if (b == UINT64_MAX)
		return;
	assert_int_equal(sm_dec(run_sm(t), b), 0);
	model_set(&t->m, b, t->m.cur[b] - 1);
}

static void op_set(struct run *t, struct test_rng *rng)
{
	uint64_t b = test_rng_below(rng, t->m.n);
	uint32_t c = (uint32_t)test_rng_below(rng, 6), now;

	if (t->metadata && !model_owns(&t->m, b)) {
		/* Take a free block (any bitmap) into the test's ownership. */
		assert_int_equal(sm_get_count(run_sm(t), b, &now), 0);
		if (now)
			return;
	}
	assert_int_equal(sm_set_count(run_sm(t), b, c), 0);
	model_set(&t->m, b, c);
}

/* Every committed index entry of the metadata map counts exactly the
 * value-0 entries of its bitmap (the kernel's convention): nr_free moves
 * by one per change after a recount, so a missed step would show here. */
static void check_metadata_hints(struct run *t)
{
	uint8_t sb[BLK], index[BLK], bitmap[BLK];
	struct sm_root_info mr;

	read_block(t->io, 0, sb);
	sm_root_unpack(sb + 192, &mr);
	read_block(t->io, mr.bitmap_root, index);
	for (uint64_t i = 0; i * SM_ENTRIES_PER_BITMAP < mr.nr_blocks; i++) {
		struct index_entry ie;
		uint32_t zero = 0;

		index_entry_unpack((const struct disk_index_entry *)(index + 16) + i, &ie);
		read_block(t->io, ie.blocknr, bitmap);
		for (uint32_t e = 0; e < SM_ENTRIES_PER_BITMAP; e++)
			zero += ((bitmap[16 + e / 4] >> (e % 4 * 2)) & 3) == 0;
		assert_int_equal(ie.nr_free, zero);
	}
}

static void op_commit(struct run *t)
{
	assert_int_equal(sm_env_commit(&t->e), 0);
	model_new_tx(&t->m, true);
	run_check(t);
	if (t->metadata)
		check_metadata_hints(t);
}

static void op_abort(struct run *t)
{
	assert_int_equal(sm_env_abort(&t->e), 0);
	model_new_tx(&t->m, false);
}

static void op_reopen(struct run *t)
{
	sm_env_close(&t->e);
	assert_int_equal(sm_env_open(&t->e, t->io, false), 0);
	model_new_tx(&t->m, false);
}

static void run_random(bool metadata, uint64_t nr_meta, uint64_t nr_data, unsigned nr_ops,
		       const char *name)
{
	struct test_rng rng;
	struct run t = { .metadata = metadata };
	unsigned i;

	test_rng_init(&rng, test_seed(name));
	t.io = mem_dev(nr_meta);
	assert_int_equal(sm_env_format(&t.e, t.io, nr_data), 0);
	model_init(&t.m, metadata ? nr_meta : nr_data);
	for (i = 0; i < nr_ops; i++) {
		unsigned op = (unsigned)test_rng_below(&rng, 1000);

		if (op < 300)
			op_new_block(&t);
		else if (op < 550)
			op_inc(&t, &rng);
		else if (op < 800)
			op_dec(&t, &rng);
		else if (op < 960)
			op_set(&t, &rng);
		else if (op < 985)
			op_commit(&t);
		else if (op < 995)
			op_abort(&t);
		else
			op_reopen(&t);
		if (i % 2000 == 1999)
			compare_all(run_sm(&t), &t.m, metadata);
	}
	compare_all(run_sm(&t), &t.m, metadata);
	op_commit(&t);
	op_reopen(&t);
	compare_all(run_sm(&t), &t.m, metadata);
	run_check(&t);
	sm_env_close(&t.e);
	thinp_io_close(t.io);
	model_free(&t.m);
}

/* Data map of three-plus bitmaps (> 2 * 16320 blocks). */
static void test_data_random(void **state)
{
	run_random(false, 2048, 3 * SM_ENTRIES_PER_BITMAP + 100, test_ops(12000),
		   "data_random");
}

/* Metadata map of two bitmaps; the test owns blocks in both. */
static void test_metadata_random(void **state)
{
	run_random(true, SM_ENTRIES_PER_BITMAP + 3000, 1000, test_ops(12000),
		   "metadata_random");
}

/* ------------------------------------------------------------------------ */
/* Fill, free, refill: allocation crosses bitmaps and never reuses early */

static void test_data_fill(void **state)
{
	uint64_t nr = 2 * SM_ENTRIES_PER_BITMAP + 7, b, got = 0, n;
	thinp_io *io = mem_dev(1024);
	struct sm_env e;
	uint8_t *seen = calloc(nr, 1);

	assert_int_equal(sm_env_format(&e, io, nr), 0);
	while (sm_new_block(e.dsm, &b) == 0) {
		assert_true(b < nr);
		assert_int_equal(seen[b], 0);
		seen[b] = 1;
		got++;
	}
	assert_int_equal(got, nr);
	assert_int_equal(sm_get_nr_free(e.dsm, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(sm_env_commit(&e), 0);
	/* Free everything: nothing may be handed out before the commit. */
	for (b = 0; b < nr; b++)
		assert_int_equal(sm_dec(e.dsm, b), 0);
	assert_int_equal(sm_new_block(e.dsm, &b), -ENOSPC);
	assert_int_equal(sm_env_commit(&e), 0);
	assert_int_equal(sm_get_nr_free(e.dsm, &n), 0);
	assert_int_equal(n, nr);
	assert_int_equal(sm_new_block(e.dsm, &b), 0);
	assert_int_equal(sm_env_check(&e, &(struct sm_env_extra){ .data = NULL }, NULL, NULL),
			 -EILSEQ); /* b is held by the test, not by the tree */
	sm_env_close(&e);
	thinp_io_close(io);
	free(seen);
}

/* Take the block ahead (if free) and free it again: it must not be handed
 * out before the commit (ll_note_freed). */
static void take_and_free(struct run *t, uint64_t ahead)
{
	uint32_t count;

	if (model_owns(&t->m, ahead) || sm_get_count(t->e.msm, ahead, &count) || count)
		return;
	assert_int_equal(sm_set_count(t->e.msm, ahead, 1), 0);
	assert_int_equal(sm_set_count(t->e.msm, ahead, 0), 0);
	model_set(&t->m, ahead, 1);
	model_set(&t->m, ahead, 0);
}

/*
 * Laps of the metadata map's cursor (lib/sm/metadata.c). The test holds a
 * FIFO of blocks; each transaction frees the oldest and takes as many new.
 * First with about 2000 held, so the window (twice the blocks in use + 1024)
 * is past the device's end: the cursor reaches the end inside transactions
 * and goes on from block 0, where the model checks that no block in use at
 * the last commit, freed since, or handed out already comes back. Then with
 * 64 held: the cursor goes back to 0 at a commit, and no block beyond twice
 * the blocks in use + 1024 (+ one transaction's worth) is ever handed out.
 * Every 8th allocation, a free block just ahead of the cursor is taken and
 * freed again.
 */
static void laps(struct run *t, unsigned held, unsigned per_tx, unsigned txs, bool bounded,
		 uint64_t *highest)
{
	uint64_t *fifo = calloc(held, sizeof(*fifo)), b = 0, nr_free;
	unsigned head = 0, n = 0;

	assert_non_null(fifo);
	for (unsigned tx = 0; tx < txs; tx++) {
		for (unsigned i = 0; i < per_tx && tx; i++, n--, head = (head + 1) % held) {
			assert_int_equal(sm_dec(t->e.msm, fifo[head]), 0);
			model_set(&t->m, fifo[head], 0);
		}
		while (n < held) {
			if (n % 8 == 0)
				take_and_free(t, (b + 3) % t->m.n);
			assert_int_equal(sm_new_block(t->e.msm, &b), 0);
			model_take(&t->m, b);
			/* The cursor went back to 0 at a commit where it was past
			 * the window; in use then were at most per_tx more than now,
			 * and this lap has handed out at most per_tx and the map's
			 * own blocks since. */
			if (bounded) {
				assert_int_equal(sm_get_nr_free(t->e.msm, &nr_free), 0);
				assert_true(b < 2 * (t->m.n - nr_free) + 1024 + 4 * per_tx + 16);
			}
			*highest = b > *highest ? b : *highest;
			fifo[(head + n++) % held] = b;
		}
		op_commit(t);
	}
	for (; n; n--, head = (head + 1) % held) {
		assert_int_equal(sm_dec(t->e.msm, fifo[head]), 0);
		model_set(&t->m, fifo[head], 0);
	}
	op_commit(t);
	free(fifo);
}

static void test_metadata_laps(void **state)
{
	struct run t = { .metadata = true };
	uint64_t highest = 0;

	t.io = mem_dev(4096);
	assert_int_equal(sm_env_format(&t.e, t.io, 100), 0);
	model_init(&t.m, 4096);
	laps(&t, 2000, 50, 200, false, &highest);
	assert_int_equal(highest, 4095);
	highest = 0;
	laps(&t, 64, 16, 400, true, &highest);
	/* 400 x 16 blocks, near 0 again and again: the laps went round. */
	assert_true(highest > 1024 && highest < 1500);
	op_reopen(&t);
	run_check(&t);
	sm_env_close(&t.e);
	thinp_io_close(t.io);
	model_free(&t.m);
}

/* The metadata map runs out, then grows (new bitmaps at the start of the new
 * area), and keeps exact counts across the boundary. */
static void test_metadata_fill_and_extend(void **state)
{
	uint64_t nr_meta = SM_ENTRIES_PER_BITMAP - 5, b, n;
	thinp_io *io = mem_dev(3 * SM_ENTRIES_PER_BITMAP);
	uint32_t *held = calloc(3 * SM_ENTRIES_PER_BITMAP, sizeof(uint32_t));
	struct sm_env e;
	struct sm_env_extra x = { .meta = held, .nr_meta = 3 * SM_ENTRIES_PER_BITMAP };

	assert_int_equal(sm_env_format_n(&e, io, nr_meta, 0), 0);
	while (sm_new_block(e.msm, &b) == 0)
		held[b]++;
	assert_int_equal(sm_env_check(&e, &x, print_mismatch, NULL), 0);
	/* A commit needs a block for the new index block: extend first. */
	assert_int_equal(sm_extend(e.msm, 2 * SM_ENTRIES_PER_BITMAP), 0);
	assert_int_equal(sm_get_nr_blocks(e.msm, &n), 0);
	assert_int_equal(n, nr_meta + 2 * SM_ENTRIES_PER_BITMAP);
	assert_int_equal(sm_env_commit(&e), 0);
	assert_int_equal(sm_env_check(&e, &x, print_mismatch, NULL), 0);
	for (n = 0; n < 20000; n++) {
		assert_int_equal(sm_new_block(e.msm, &b), 0);
		assert_int_equal(held[b], 0);
		held[b]++;
	}
	assert_int_equal(sm_env_commit(&e), 0);
	sm_env_close(&e);
	assert_int_equal(sm_env_open(&e, io, false), 0);
	assert_int_equal(sm_env_check(&e, &x, print_mismatch, NULL), 0);
	/* Too far: more than 255 bitmaps. */
	assert_int_equal(sm_extend(e.msm, SM_METADATA_MAX_BLOCKS), -EINVAL);
	sm_env_close(&e);
	thinp_io_close(io);
	free(held);
}

static void test_data_extend(void **state)
{
	thinp_io *io = mem_dev(1024);
	uint32_t model[SM_ENTRIES_PER_BITMAP * 3] = { 0 };
	struct sm_env e;
	struct sm_env_extra x = { .data = model, .nr_data = THINP_ARRAY_SIZE(model) };
	uint64_t b, n;

	assert_int_equal(sm_env_format(&e, io, 0), 0);
	assert_int_equal(sm_new_block(e.dsm, &b), -ENOSPC);
	assert_int_equal(sm_extend(e.dsm, 100), 0);
	assert_int_equal(sm_new_block(e.dsm, &b), 0);
	model[b] = 1;
	assert_int_equal(sm_set_count(e.dsm, 99, 7), 0);
	model[99] = 7;
	assert_int_equal(sm_env_commit(&e), 0);
	assert_int_equal(sm_env_check(&e, &x, print_mismatch, NULL), 0);
	assert_int_equal(sm_extend(e.dsm, 2 * SM_ENTRIES_PER_BITMAP), 0);
	assert_int_equal(sm_get_nr_blocks(e.dsm, &n), 0);
	assert_int_equal(n, 100 + 2 * SM_ENTRIES_PER_BITMAP);
	assert_int_equal(sm_set_count(e.dsm, n - 1, 3), 0);
	model[n - 1] = 3;
	assert_int_equal(sm_env_commit(&e), 0);
	sm_env_close(&e);
	assert_int_equal(sm_env_open(&e, io, false), 0);
	assert_int_equal(sm_env_check(&e, &x, print_mismatch, NULL), 0);
	assert_int_equal(sm_get_nr_free(e.dsm, &n), 0);
	assert_int_equal(n, 100 + 2 * SM_ENTRIES_PER_BITMAP - 3);
	sm_env_close(&e);
	thinp_io_close(io);
}

/* ------------------------------------------------------------------------ */
/* The test superblock: btree transactions over the real metadata space map */

#define TREE_KEYS 4000

static void tree_lookup_all(struct sm_env *e, const uint64_t *model)
{
	uint64_t k;

	for (k = 0; k < TREE_KEYS; k++) {
		uint8_t v[8];
		int r = btree_lookup(&e->info, e->root, &k, v);

		if (model[k] == UINT64_MAX) {
			assert_int_equal(r, -ENODATA);
		} else {
			assert_int_equal(r, 0);
			assert_int_equal(load_le64(v), model[k]);
		}
	}
}

static void tree_insert(struct sm_env *e, struct test_rng *rng, uint64_t *model)
{
	uint64_t k = test_rng_below(rng, TREE_KEYS), other = test_rng_below(rng, TREE_KEYS), b;

	if (model[other] != UINT64_MAX && test_rng_below(rng, 3) == 0) {
		/* Share a data block: counts of 2, 3, 4... in the data sm. An
		 * overwrite with the same value drops no reference, so skip it. */
		b = model[other];
		if (model[k] == b)
			return;
		assert_int_equal(sm_inc(e->dsm, b), 0);
	} else if (sm_new_block(e->dsm, &b)) {
		return;
	}
	assert_int_equal(sm_env_insert(e, k, b), 0);
	model[k] = b;
}

static void test_tree_random(void **state)
{
	struct test_rng rng;
	thinp_io *io = mem_dev(4096);
	uint64_t *model = malloc(TREE_KEYS * sizeof(uint64_t));
	uint64_t *committed = malloc(TREE_KEYS * sizeof(uint64_t));
	unsigned tx, i, nr_tx = 40 * test_scale();
	struct sm_env e;

	test_rng_init(&rng, test_seed("tree_random"));
	memset(model, 0xFF, TREE_KEYS * sizeof(uint64_t));
	memcpy(committed, model, TREE_KEYS * sizeof(uint64_t));
	assert_int_equal(sm_env_format(&e, io, 20000), 0);
	for (tx = 0; tx < nr_tx; tx++) {
		unsigned nr = (unsigned)test_rng_below(&rng, 400);

		for (i = 0; i < nr; i++) {
			uint64_t k = test_rng_below(&rng, TREE_KEYS);

			if (test_rng_below(&rng, 10) < 6) {
				tree_insert(&e, &rng, model);
			} else if (model[k] != UINT64_MAX) {
				assert_int_equal(sm_env_remove(&e, k), 0);
				model[k] = UINT64_MAX;
			}
		}
		switch (test_rng_below(&rng, 10)) {
		case 0:
			assert_int_equal(sm_env_abort(&e), 0);
			memcpy(model, committed, TREE_KEYS * sizeof(uint64_t));
			break;
		case 1:
			sm_env_close(&e);
			assert_int_equal(sm_env_open(&e, io, false), 0);
			memcpy(model, committed, TREE_KEYS * sizeof(uint64_t));
			break;
		default:
			assert_int_equal(sm_env_commit(&e), 0);
			memcpy(committed, model, TREE_KEYS * sizeof(uint64_t));
			assert_int_equal(sm_env_check(&e, NULL, print_mismatch, NULL), 0);
		}
		tree_lookup_all(&e, model);
	}
	sm_env_close(&e);
	thinp_io_close(io);
	free(model);
	free(committed);
}

/* ------------------------------------------------------------------------ */
/* Hostile blocks: errors, never a crash or a wrong answer */

/* A formatted device with some counts (incl. >= 3) committed and closed:
 * data block 10 has count 5, metadata block hostile_meta count 4. */
static uint64_t hostile_meta;

static thinp_io *hostile_image(void)
{
	thinp_io *io = mem_dev(1000);
	struct sm_env e;
	uint64_t b;

	assert_int_equal(sm_env_format(&e, io, 5000), 0);
	assert_int_equal(sm_new_block(e.dsm, &b), 0);
	assert_int_equal(sm_set_count(e.dsm, 10, 5), 0);
	assert_int_equal(sm_new_block(e.msm, &b), 0);
	assert_int_equal(sm_set_count(e.msm, b, 4), 0);
	hostile_meta = b;
	assert_int_equal(sm_env_commit(&e), 0);
	sm_env_close(&e);
	return io;
}

static void sm_roots(thinp_io *io, struct sm_root_info *mr, struct sm_root_info *dr)
{
	uint8_t buf[BLK];

	read_block(io, 0, buf);
	sm_root_unpack(buf + 192, mr);
	sm_root_unpack(buf + 64, dr);
}

static void test_hostile_index_block(void **state)
{
	thinp_io *io = hostile_image();
	struct sm_root_info mr, dr;
	uint8_t buf[BLK], orig[BLK], sb[BLK];
	struct sm_env e;
	static const struct {
		unsigned off;
		uint64_t value;
		unsigned size;
	} lies[] = {
		{ 16, 1000, 8 },        /* bitmap past the metadata device */
		{ 16, 0, 8 },           /* bitmap at the superblock */
	}, hints[] = {
		{ 16 + 8, 16321, 4 },       /* nr_free > 16320 */
		{ 16 + 12, 20000, 4 },      /* none_free_before > 16320 */
		{ 16 + 8, 0, 4 },           /* nr_free 0: "full" */
		{ 16 + 12, 16320, 4 },      /* none_free_before: "all in use" */
		{ 16 + 12, 999, 4 },        /* in use up to the last block */
	};
	unsigned i;

	sm_roots(io, &mr, &dr);
	read_block(io, 0, sb);
	read_block(io, mr.bitmap_root, orig);

	/* A flipped bit: checksum. */
	memcpy(buf, orig, BLK);
	buf[100] ^= 4;
	write_block(io, mr.bitmap_root, buf);
	assert_int_equal(sm_env_open(&e, io, false), -EILSEQ);
	sm_env_close(&e);

	/* Lies with a valid checksum: bounds. */
	for (i = 0; i < THINP_ARRAY_SIZE(lies); i++) {
		memcpy(buf, orig, BLK);
		if (lies[i].size == 4)
			store_le32(buf + lies[i].off, (uint32_t)lies[i].value);
		else
			store_le64(buf + lies[i].off, lies[i].value);
		reseal(io, mr.bitmap_root, buf, &sm_index_validator);
		assert_int_equal(sm_env_open(&e, io, false), -EILSEQ);
		sm_env_close(&e);
	}

	/* Lying hints with a valid checksum: only hints (the kernel accepts
	 * them too): the map opens and still allocates its free blocks, more
	 * than one per transaction (a lying none_free_before once moved the
	 * cursor to the end of the map after the first). */
	for (i = 0; i < THINP_ARRAY_SIZE(hints); i++) {
		uint64_t b, b2;
		uint32_t count;

		memcpy(buf, orig, BLK);
		store_le32(buf + hints[i].off, (uint32_t)hints[i].value);
		reseal(io, mr.bitmap_root, buf, &sm_index_validator);
		assert_int_equal(sm_env_open(&e, io, false), 0);
		assert_int_equal(sm_new_block(e.msm, &b), 0);
		assert_int_equal(sm_new_block(e.msm, &b2), 0);
		assert_int_not_equal(b, b2);
		assert_int_equal(sm_env_commit(&e), 0);
		sm_env_close(&e);
		assert_int_equal(sm_env_open(&e, io, false), 0);
		assert_int_equal(sm_get_count(e.msm, b, &count), 0);
		assert_int_equal(count, 1);
		assert_int_equal(sm_get_count(e.msm, b2, &count), 0);
		assert_int_equal(count, 1);
		sm_env_close(&e);
		write_block(io, 0, sb);
		write_block(io, mr.bitmap_root, orig);
	}

	/* A bitmap sealed as an index block: wrong salt. */
	memcpy(buf, orig, BLK);
	reseal(io, mr.bitmap_root, buf, &sm_bitmap_validator);
	assert_int_equal(sm_env_open(&e, io, false), -EILSEQ);
	sm_env_close(&e);

	/* Moved to another location: blocknr. */
	write_block(io, mr.bitmap_root, orig);
	write_block(io, 900, orig);
	mr.bitmap_root = 900;
	read_block(io, 0, buf);
	sm_root_pack(&mr, buf + 192);
	reseal(io, 0, buf, &sm_env_sb_validator);
	assert_int_equal(sm_env_open(&e, io, false), -ENOTBLK);
	sm_env_close(&e);
	thinp_io_close(io);
}

static void test_hostile_roots(void **state)
{
	thinp_io *io = hostile_image();
	struct sm_root_info mr, dr, m2, d2;
	uint8_t buf[BLK], orig[BLK];
	struct sm_env e;

	read_block(io, 0, orig);
	sm_roots(io, &mr, &dr);

	m2 = mr;
	m2.nr_allocated = m2.nr_blocks + 1;
	memcpy(buf, orig, BLK);
	sm_root_pack(&m2, buf + 192);
	reseal(io, 0, buf, &sm_env_sb_validator);
	assert_int_equal(sm_env_open(&e, io, false), -EILSEQ);
	sm_env_close(&e);

	m2 = mr;
	m2.nr_blocks = SM_METADATA_MAX_BLOCKS + 1;
	memcpy(buf, orig, BLK);
	sm_root_pack(&m2, buf + 192);
	reseal(io, 0, buf, &sm_env_sb_validator);
	assert_int_equal(sm_env_open(&e, io, false), -EILSEQ);
	sm_env_close(&e);

	d2 = dr;
	d2.nr_allocated = d2.nr_blocks + 1;
	memcpy(buf, orig, BLK);
	sm_root_pack(&d2, buf + 64);
	reseal(io, 0, buf, &sm_env_sb_validator);
	assert_int_equal(sm_env_open(&e, io, false), -EILSEQ);
	sm_env_close(&e);

	/* A data map claiming more bitmaps than its index tree holds. */
	d2 = dr;
	d2.nr_blocks = 10 * SM_ENTRIES_PER_BITMAP;
	memcpy(buf, orig, BLK);
	sm_root_pack(&d2, buf + 64);
	reseal(io, 0, buf, &sm_env_sb_validator);
	assert_int_equal(sm_env_open(&e, io, false), 0);
	{
		uint32_t c;

		assert_int_equal(sm_get_count(e.dsm, 9 * SM_ENTRIES_PER_BITMAP, &c), -EILSEQ);
		assert_int_equal(sm_env_check(&e, NULL, NULL, NULL), -EILSEQ);
	}
	sm_env_close(&e);
	thinp_io_close(io);
}

static void test_hostile_bitmaps(void **state)
{
	thinp_io *io = hostile_image();
	struct sm_root_info mr, dr;
	uint8_t buf[BLK], orig[BLK];
	struct index_entry ie;
	struct sm_env e;
	struct test_rng rng;
	uint32_t c;
	unsigned i;

	test_rng_init(&rng, test_seed("hostile_bitmaps"));
	sm_roots(io, &mr, &dr);
	read_block(io, mr.bitmap_root, buf);
	index_entry_unpack((const struct disk_index_entry *)(buf + 16), &ie);
	read_block(io, ie.blocknr, orig);

	/* Torn / flipped: checksum, seen at the first lookup. */
	memcpy(buf, orig, BLK);
	memset(buf + 2048, 0x5A, 2048); /* the second half of a torn write */
	write_block(io, ie.blocknr, buf);
	assert_int_equal(sm_env_open(&e, io, false), 0);
	assert_int_equal(sm_get_count(e.msm, 0, &c), -EILSEQ);
	assert_int_equal(sm_env_check(&e, NULL, NULL, NULL), -EILSEQ);
	sm_env_close(&e);

	/* "3" without an overflow entry: corrupt, not a guess. */
	memcpy(buf, orig, BLK);
	bitmap_set(buf, 0, 3);
	reseal(io, ie.blocknr, buf, &sm_bitmap_validator);
	assert_int_equal(sm_env_open(&e, io, false), 0);
	assert_int_equal(sm_get_count(e.msm, 0, &c), -EILSEQ);
	assert_int_equal(sm_env_check(&e, NULL, NULL, NULL), -EILSEQ);
	sm_env_close(&e);

	/* Random garbage, resealed: answers stay in range and the checker
	 * reports a mismatch or an error; nothing crashes. */
	for (i = 0; i < 20; i++) {
		unsigned j;

		memcpy(buf, orig, BLK);
		for (j = 16; j < BLK; j++)
			buf[j] = (uint8_t)test_rng_next(&rng);
		reseal(io, ie.blocknr, buf, &sm_bitmap_validator);
		assert_int_equal(sm_env_open(&e, io, false), 0);
		assert_int_not_equal(sm_env_check(&e, NULL, NULL, NULL), 0);
		sm_env_close(&e);
	}
	write_block(io, ie.blocknr, orig);

	/* The data bitmap: a changed count (resealed) is found by the checker
	 * as a leak; a bad checksum as an error. */
	assert_int_equal(sm_env_open(&e, io, false), 0);
	{
		struct sm_env_extra x = { 0 };
		uint32_t model[5000] = { 0 }, meta[1000] = { 0 };
		uint64_t b;

		meta[hostile_meta] = 4;
		x.meta = meta;
		x.nr_meta = 1000;

		for (b = 0; b < 5000; b++)
			assert_int_equal(sm_get_count(e.dsm, b, &model[b]), 0);
		x.data = model;
		x.nr_data = 5000;
		assert_int_equal(sm_env_check(&e, &x, print_mismatch, NULL), 0);
		model[10] = 4; /* the map says 5 */
		assert_int_equal(sm_env_check(&e, &x, NULL, NULL), -EILSEQ);
		model[10] = 6;
		assert_int_equal(sm_env_check(&e, &x, NULL, NULL), -EILSEQ);
	}
	sm_env_close(&e);
	thinp_io_close(io);
}

/* The checker's verdicts on a known map: each mismatch kind is reported. */
struct kinds {
	unsigned n[5];
};

static void count_kind(void *ctx, const struct sm_mismatch *m)
{
	((struct kinds *)ctx)->n[m->kind]++;
}

static void test_checker_kinds(void **state)
{
	thinp_io *io = mem_dev(1000);
	uint32_t model[200] = { 0 };
	struct sm_env_extra x = { .data = model, .nr_data = 200 };
	struct sm_env e;
	struct kinds k = { { 0 } };

	assert_int_equal(sm_env_format(&e, io, 100), 0);
	assert_int_equal(sm_set_count(e.dsm, 1, 1), 0);
	assert_int_equal(sm_set_count(e.dsm, 2, 4), 0);
	assert_int_equal(sm_set_count(e.dsm, 3, 2), 0);
	model[1] = 1;
	model[2] = 5;   /* under-counted */
	model[3] = 1;   /* leaked */
	model[4] = 1;   /* reachable but free */
	model[150] = 1; /* past the end */
	assert_int_equal(sm_env_check(&e, &x, count_kind, &k), -EILSEQ);
	assert_int_equal(k.n[SM_UNDER_COUNTED], 1);
	assert_int_equal(k.n[SM_LEAKED], 1);
	assert_int_equal(k.n[SM_REACHABLE_FREE], 1);
	assert_int_equal(k.n[SM_OUT_OF_RANGE], 1);
	assert_int_equal(k.n[SM_NR_ALLOCATED], 0);
	sm_env_close(&e);
	thinp_io_close(io);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_layout),
		cmocka_unit_test(test_too_small_metadata),
		cmocka_unit_test(test_data_random),
		cmocka_unit_test(test_metadata_random),
		cmocka_unit_test(test_data_fill),
		cmocka_unit_test(test_metadata_fill_and_extend),
		cmocka_unit_test(test_metadata_laps),
		cmocka_unit_test(test_data_extend),
		cmocka_unit_test(test_tree_random),
		cmocka_unit_test(test_hostile_index_block),
		cmocka_unit_test(test_hostile_roots),
		cmocka_unit_test(test_hostile_bitmaps),
		cmocka_unit_test(test_checker_kinds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
