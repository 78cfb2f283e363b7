/*
 * The mapping cursor and the delta (libthinp/delta.h) on the metadata alone:
 * the cases earlier thin_delta implementations got wrong, each pinned; a
 * model-based random test (pools built by snapshots, writes and removes,
 * checked against byte arrays, over live and held sources, with every batch
 * size and resumption point); and the cost claim: a changes-only delta
 * between a large device and its snapshot reads only the changed path.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thin/format.h"
#include "thin/helpers.h"
#include <libthinp/delta.h>
#include <libthinp/testing.h>

#define MIB (1024ull * 1024)
#define NDEV 6
#define MAXV 40000

/* ---- a pool and its model ---------------------------------------------- */

struct model {
	uint64_t map[NDEV][MAXV]; /* data block + 1, 0 = unmapped */
	bool exists[NDEV];
};

struct pool {
	thinp_io *io;
	thinp_meta *meta;
	struct model live, held;
	bool have_held;
};

static void pool_new(struct pool *p)
{
	memset(p, 0, sizeof(*p));
	th_format(&p->io, &p->meta, 64 * MIB, 1u << 22);
}

static void pool_free(struct pool *p)
{
	thinp_meta_close(p->meta);
	thinp_io_close(p->io);
}

static void create(struct pool *p, uint64_t dev)
{
	assert_int_equal(thinp_meta_create_thin(p->meta, dev), 0);
	p->live.exists[dev] = true;
}

static void snap(struct pool *p, uint64_t dev, uint64_t origin)
{
	assert_int_equal(thin_create_snap_locked(p->meta, dev, origin), 0);
	p->live.exists[dev] = true;
	memcpy(p->live.map[dev], p->live.map[origin], sizeof(p->live.map[dev]));
}

/* Map v to a fresh data block, or to `data` when it is not UINT64_MAX (the
 * caller's block must hold a reference it gives away). */
static void map_block(struct pool *p, uint64_t dev, uint64_t v, uint64_t data)
{
	if (data == UINT64_MAX)
		assert_int_equal(thin_alloc_data_block_locked(p->meta, &data), 0);
	assert_int_equal(th_insert_now(p->meta, dev, v, data), 0);
	p->live.map[dev][v] = data + 1;
}

/* Map every step-th block of [0, end) to fresh data blocks. */
static void map_every(struct pool *p, uint64_t dev, uint64_t end, uint64_t step)
{
	uint64_t v;

	for (v = 0; v < end; v += step)
		map_block(p, dev, v, UINT64_MAX);
}

static void unmap_block(struct pool *p, uint64_t dev, uint64_t v)
{
	assert_int_equal(th_remove(p->meta, dev, v), 0);
	p->live.map[dev][v] = 0;
}

static void hold(struct pool *p)
{
	assert_int_equal(thin_reserve_metadata_snap_locked(p->meta), 0);
	p->held = p->live;
	p->have_held = true;
}

/* ---- expected runs from the model --------------------------------------- */

struct runs {
	thinp_delta_run *r;
	size_t n, cap;
};

static void runs_push(struct runs *rs, const thinp_delta_run *r)
{
	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? 2 * rs->cap : 64;
		rs->r = realloc(rs->r, rs->cap * sizeof(*rs->r));
		assert_non_null(rs->r);
	}
	rs->r[rs->n++] = *r;
}

static bool extends(const thinp_delta_run *last, const thinp_delta_run *r)
{
	bool l = r->kind != THINP_DELTA_RIGHT_ONLY, rt = r->kind != THINP_DELTA_LEFT_ONLY;

	return last->kind == r->kind && r->virt_begin == last->virt_begin + last->length &&
	       (!l || r->left_data == last->left_data + last->length) &&
	       (!rt || r->right_data == last->right_data + last->length);
}

/* The delta of two model arrays over [begin, end), exact runs. */
static void expected(const uint64_t *a, const uint64_t *b, uint64_t begin, uint64_t end,
		     bool changes_only, struct runs *out)
{
	uint64_t v;

	for (v = begin; v < end && v < MAXV; v++) {
		thinp_delta_run r = { sizeof(r), 0, v, 1, 0, 0 };

		if (!a[v] && !b[v])
			continue;
		r.kind = !b[v] ? THINP_DELTA_LEFT_ONLY : !a[v] ? THINP_DELTA_RIGHT_ONLY :
			 a[v] == b[v] ? THINP_DELTA_SAME : THINP_DELTA_DIFFERENT;
		if (changes_only && r.kind == THINP_DELTA_SAME)
			continue;
		r.left_data = a[v] ? a[v] - 1 : 0;
		r.right_data = b[v] ? b[v] - 1 : 0;
		if (out->n && extends(&out->r[out->n - 1], &r))
			out->r[out->n - 1].length++;
		else
			runs_push(out, &r);
	}
}

static int collect(const thinp_delta_run *r, void *ctx)
{
	runs_push(ctx, r);
	return 0;
}

static void assert_runs_equal(const struct runs *want, const struct runs *got)
{
	size_t i;

	for (i = 0; i < want->n && i < got->n; i++) {
		const thinp_delta_run *w = &want->r[i], *g = &got->r[i];

		if (w->kind != g->kind || w->virt_begin != g->virt_begin ||
		    w->length != g->length || w->left_data != g->left_data ||
		    w->right_data != g->right_data) {
			print_error("run %zu: want kind %u %lu+%lu data %lu/%lu, got kind %u "
				    "%lu+%lu data %lu/%lu\n", i, w->kind,
				    (unsigned long)w->virt_begin, (unsigned long)w->length,
				    (unsigned long)w->left_data, (unsigned long)w->right_data,
				    g->kind, (unsigned long)g->virt_begin,
				    (unsigned long)g->length, (unsigned long)g->left_data,
				    (unsigned long)g->right_data);
			fail();
		}
	}
	assert_int_equal(got->n, want->n);
}

static thinp_delta_options opts(uint64_t ls, uint64_t rs, uint64_t begin, uint64_t end,
				bool changes_only)
{
	thinp_delta_options o = THINP_DELTA_OPTIONS_INIT;

	o.left_source = ls;
	o.right_source = rs;
	o.begin = begin;
	o.end = end;
	o.flags = changes_only ? THINP_DELTA_CHANGES_ONLY : 0;
	return o;
}

static const uint64_t *model_of(struct pool *p, uint64_t source, uint64_t dev)
{
	return source == THINP_DELTA_HELD ? p->held.map[dev] : p->live.map[dev];
}

/* The delta through the callback must equal the model's. */
static void check_delta(struct pool *p, uint64_t l, uint64_t ls, uint64_t r, uint64_t rs,
			uint64_t begin, uint64_t end, bool changes_only)
{
	thinp_delta_options o = opts(ls, rs, begin, end, changes_only);
	struct runs want = { 0 }, got = { 0 };

	expected(model_of(p, ls, l), model_of(p, rs, r), begin, end, changes_only, &want);
	assert_int_equal(thinp_meta_delta(p->meta, l, r, &o, collect, &got), 0);
	assert_runs_equal(&want, &got);
	free(want.r);
	free(got.r);
}

/* ---- the pinned cases ---------------------------------------------------- */

/* 0.9.0's test pool (the reference notes, 1.1): every kind, and the three
 * same blocks 25..27 whose data blocks are not contiguous stay three runs. */
static void test_reference_pool(void **state)
{
	struct pool p;
	uint64_t v;

	(void)state;
	pool_new(&p);
	create(&p, 1);
	create(&p, 2);
	create(&p, 3);
	map_every(&p, 1, 20, 1);
	for (v = 0; v < 10; v++) {
		assert_int_equal(thinp_meta_data_inc(p.meta, p.live.map[1][v] - 1), 0);
		map_block(&p, 2, v, p.live.map[1][v] - 1);
	}
	for (v = 10; v < 15; v++)
		map_block(&p, 2, v, 100 + v);
	for (v = 20; v < 25; v++)
		map_block(&p, 2, v, 200 + v);
	for (v = 25; v < 28; v++) {
		map_block(&p, 1, v, 300 + 2 * (v - 25));
		assert_int_equal(thinp_meta_data_inc(p.meta, 300 + 2 * (v - 25)), 0);
		map_block(&p, 2, v, 300 + 2 * (v - 25));
	}
	check_delta(&p, 1, 0, 2, 0, 0, UINT64_MAX, false);
	check_delta(&p, 1, 0, 2, 0, 0, UINT64_MAX, true);
	/* one side empty, both ways, and both empty */
	check_delta(&p, 1, 0, 3, 0, 0, UINT64_MAX, false);
	check_delta(&p, 3, 0, 1, 0, 0, UINT64_MAX, false);
	check_delta(&p, 3, 0, 3, 0, 0, UINT64_MAX, false);
	/* the run 25..27 is three SAME runs */
	{
		thinp_delta_options o = opts(0, 0, 25, UINT64_MAX, false);
		struct runs got = { 0 };

		assert_int_equal(thinp_meta_delta(p.meta, 1, 2, &o, collect, &got), 0);
		assert_int_equal(got.n, 3);
		assert_int_equal(got.r[0].kind, THINP_DELTA_SAME);
		assert_int_equal(got.r[1].left_data, 302);
		free(got.r);
	}
	pool_free(&p);
}

/* A device missing on one side: -ENODATA, and the message names it. */
static void test_missing_device(void **state)
{
	struct pool p;
	thinp_delta *d = NULL;
	thinp_delta_options o = opts(THINP_DELTA_LIVE, THINP_DELTA_HELD, 0, UINT64_MAX, false);

	(void)state;
	pool_new(&p);
	create(&p, 1);
	assert_int_equal(thinp_meta_delta_open(&d, p.meta, 1, 9, NULL), -ENODATA);
	assert_non_null(strstr(th_errmsg(p.meta), "right device 9"));
	assert_int_equal(thinp_meta_delta_open(&d, p.meta, 9, 1, NULL), -ENODATA);
	assert_non_null(strstr(th_errmsg(p.meta), "left device 9"));
	/* no held snapshot */
	assert_int_equal(thinp_meta_delta_open(&d, p.meta, 1, 1, &o), -ENODATA);
	/* held, but the device was created after it */
	hold(&p);
	create(&p, 2);
	assert_int_equal(thinp_meta_delta_open(&d, p.meta, 2, 2, &o), -ENODATA);
	o.begin = 5;
	o.end = 4;
	assert_int_equal(thinp_meta_delta_open(&d, p.meta, 1, 1, &o), -EINVAL);
	assert_null(d);
	pool_free(&p);
}

/* Blocks at the very end of a device (the last key of the last leaf, far
 * beyond the others), a device larger than the other, and the clip. */
static void test_end_and_sizes(void **state)
{
	struct pool p;
	thinp_delta_options o = opts(0, 0, 0, UINT64_MAX, false);
	struct runs got = { 0 };
	uint64_t v, far = (1ull << 40) + 12345;

	(void)state;
	pool_new(&p);
	create(&p, 1);
	map_every(&p, 1, 700, 1);
	assert_int_equal(thinp_meta_commit(p.meta), 0);
	snap(&p, 2, 1);
	/* the right device grows: blocks past the left's end */
	for (v = 700; v < 1000; v++)
		map_block(&p, 2, v, UINT64_MAX);
	check_delta(&p, 1, 0, 2, 0, 0, UINT64_MAX, false);
	check_delta(&p, 2, 0, 1, 0, 0, UINT64_MAX, true);
	check_delta(&p, 1, 0, 2, 0, 0, 850, true);   /* clip inside a run */
	check_delta(&p, 1, 0, 2, 0, 650, 701, false); /* begin inside, end past */
	/* the last block alone, far away, changed on one side only */
	assert_int_equal(th_insert_now(p.meta, 2, far, 4000000), 0);
	assert_int_equal(thinp_meta_delta(p.meta, 1, 2, &o, collect, &got), 0);
	assert_true(got.n >= 2);
	assert_int_equal(got.r[got.n - 1].kind, THINP_DELTA_RIGHT_ONLY);
	assert_int_equal(got.r[got.n - 1].virt_begin, far);
	assert_int_equal(got.r[got.n - 1].length, 1);
	assert_int_equal(got.r[got.n - 1].right_data, 4000000);
	got.n = 0;
	o.end = far; /* the clip excludes it */
	assert_int_equal(thinp_meta_delta(p.meta, 1, 2, &o, collect, &got), 0);
	assert_int_equal(got.r[got.n - 1].virt_begin + got.r[got.n - 1].length, 1000);
	free(got.r);
	pool_free(&p);
}

/* One changed block in the middle of a leaf shared otherwise; and a run of
 * changed blocks whose new data blocks are not contiguous. */
static void test_changed_block_in_leaf(void **state)
{
	struct pool p;
	thinp_delta_options o = opts(0, 0, 0, UINT64_MAX, true);
	struct runs got = { 0 };

	(void)state;
	pool_new(&p);
	create(&p, 1);
	map_every(&p, 1, 100, 1);
	assert_int_equal(thinp_meta_commit(p.meta), 0);
	snap(&p, 2, 1);
	map_block(&p, 2, 50, UINT64_MAX);
	check_delta(&p, 1, 0, 2, 0, 0, UINT64_MAX, false);
	assert_int_equal(thinp_meta_delta(p.meta, 1, 2, &o, collect, &got), 0);
	assert_int_equal(got.n, 1);
	assert_int_equal(got.r[0].kind, THINP_DELTA_DIFFERENT);
	assert_int_equal(got.r[0].virt_begin, 50);
	assert_int_equal(got.r[0].length, 1);
	/* 60, 61, 62 to data blocks 5000, 5002, 5001: three runs */
	assert_int_equal(th_insert_now(p.meta, 2, 60, 5000), 0);
	assert_int_equal(th_insert_now(p.meta, 2, 61, 5002), 0);
	assert_int_equal(th_insert_now(p.meta, 2, 62, 5001), 0);
	p.live.map[2][60] = 5001;
	p.live.map[2][61] = 5003;
	p.live.map[2][62] = 5002;
	got.n = 0;
	assert_int_equal(thinp_meta_delta(p.meta, 1, 2, &o, collect, &got), 0);
	assert_int_equal(got.n, 4);
	check_delta(&p, 1, 0, 2, 0, 0, UINT64_MAX, true);
	free(got.r);
	pool_free(&p);
}

/* ---- batches, resumption, the held snapshot ------------------------------- */

/* Read the delta with the iterator in batches of `batch`, closing it and
 * resuming from thinp_delta_position every `restart` batches. */
static void iterate(struct pool *p, uint64_t l, uint64_t r, thinp_delta_options o,
		    size_t batch, unsigned restart, struct runs *out)
{
	thinp_delta_run buf[16];
	thinp_delta *d;
	unsigned k = 0;
	size_t i, n;

	assert_int_equal(thinp_meta_delta_open(&d, p->meta, l, r, &o), 0);
	for (;;) {
		assert_int_equal(thinp_delta_next(d, buf, batch, &n), 0);
		if (!n)
			break;
		for (i = 0; i < n; i++) {
			/* a resumed iterator reports a straddling run from its start */
			if (out->n && buf[i].virt_begin < out->r[out->n - 1].virt_begin +
							  out->r[out->n - 1].length)
				fail_msg("runs overlap at %lu", (unsigned long)buf[i].virt_begin);
			runs_push(out, &buf[i]);
		}
		if (restart && ++k % restart == 0) {
			o.begin = thinp_delta_position(d);
			thinp_delta_close(d);
			assert_int_equal(thinp_meta_delta_open(&d, p->meta, l, r, &o), 0);
		}
	}
	thinp_delta_close(d);
}

/* ---- the random model test ------------------------------------------------ */

static uint64_t pick_dev(struct test_rng *rng, const struct model *m, bool exists)
{
	uint64_t d;

	do
		d = test_rng_below(rng, NDEV);
	while (m->exists[d] != exists);
	return d;
}

static unsigned nr_existing(const struct model *m)
{
	unsigned d, n = 0;

	for (d = 0; d < NDEV; d++)
		n += m->exists[d];
	return n;
}

/* Writes, overwrites and removes in bursts (contiguous and scattered), as a
 * volume sees them. */
static void random_writes(struct pool *p, struct test_rng *rng, uint64_t dev, unsigned n)
{
	unsigned i;
	uint64_t v = test_rng_below(rng, MAXV);

	for (i = 0; i < n; i++) {
		if (test_rng_below(rng, 8) == 0)
			v = test_rng_below(rng, MAXV);
		else
			v = (v + 1) % MAXV;
		if (p->live.map[dev][v] && test_rng_below(rng, 5) == 0)
			unmap_block(p, dev, v);
		else
			map_block(p, dev, v, UINT64_MAX);
	}
}

static void random_step(struct pool *p, struct test_rng *rng)
{
	unsigned k = (unsigned)test_rng_below(rng, 10);

	if (nr_existing(&p->live) == 0 || (k == 0 && nr_existing(&p->live) < NDEV)) {
		create(p, pick_dev(rng, &p->live, false));
		return;
	}
	if (k <= 2 && nr_existing(&p->live) < NDEV) {
		uint64_t origin = pick_dev(rng, &p->live, true);

		snap(p, pick_dev(rng, &p->live, false), origin);
		return;
	}
	if (k == 3 && nr_existing(&p->live) > 2) {
		uint64_t d = pick_dev(rng, &p->live, true);

		assert_int_equal(thin_delete_locked(p->meta, d), 0);
		p->live.exists[d] = false;
		memset(p->live.map[d], 0, sizeof(p->live.map[d]));
		return;
	}
	if (k == 4) {
		assert_int_equal(thinp_meta_commit(p->meta), 0);
		return;
	}
	random_writes(p, rng, pick_dev(rng, &p->live, true),
		      (unsigned)test_rng_below(rng, k == 5 ? 2000 : k == 6 ? 36000 : 40));
}

/* Every pair of devices, from every combination of sources, full and
 * changes-only, and one random clip, batch size and restart cadence. */
static void check_all_pairs(struct pool *p, struct test_rng *rng)
{
	uint64_t srcs[2] = { THINP_DELTA_LIVE, THINP_DELTA_HELD };
	unsigned l, r, sl, sr;

	for (l = 0; l < NDEV; l++)
		for (r = 0; r < NDEV; r++)
			for (sl = 0; sl < 2; sl++)
				for (sr = 0; sr < 2; sr++) {
					const struct model *ml = sl ? &p->held : &p->live;
					const struct model *mr = sr ? &p->held : &p->live;
					uint64_t begin = test_rng_below(rng, MAXV / 2);
					uint64_t end = begin + test_rng_below(rng, MAXV);
					bool co = test_rng_below(rng, 2);
					thinp_delta_options o = opts(srcs[sl], srcs[sr], begin, end,
								     co);
					struct runs want = { 0 }, got = { 0 };

					if ((sl || sr) && !p->have_held)
						continue;
					if (!ml->exists[l] || !mr->exists[r])
						continue;
					check_delta(p, l, srcs[sl], r, srcs[sr], 0, UINT64_MAX,
						    co);
					expected(ml->map[l], mr->map[r], begin, end, co, &want);
					iterate(p, l, r, o, 1 + test_rng_below(rng, 16),
						(unsigned)test_rng_below(rng, 4), &got);
					assert_runs_equal(&want, &got);
					free(want.r);
					free(got.r);
				}
}

static void test_random_model(void **state)
{
	struct test_rng rng;
	struct pool *p = malloc(sizeof(*p));
	unsigned round, step, rounds = test_ops(6);

	(void)state;
	assert_non_null(p);
	test_rng_init(&rng, test_seed("test_delta random"));
	for (round = 0; round < rounds; round++) {
		pool_new(p);
		for (step = 0; step < 60; step++) {
			random_step(p, &rng);
			if (step == 30)
				hold(p);
		}
		check_all_pairs(p, &rng);
		/* after a commit too (the shared nodes are then committed) */
		assert_int_equal(thinp_meta_commit(p->meta), 0);
		check_all_pairs(p, &rng);
		pool_free(p);
	}
	free(p);
}

/* The held snapshot released (and another reserved) during a delta over it:
 * the next batch fails with -ESTALE instead of reading freed blocks. */
static void test_held_released_between_batches(void **state)
{
	struct pool p;
	thinp_delta_options o = opts(THINP_DELTA_HELD, THINP_DELTA_HELD, 0, UINT64_MAX, false);
	thinp_delta_run buf[1];
	thinp_delta *d;
	size_t n;

	(void)state;
	pool_new(&p);
	create(&p, 1);
	map_every(&p, 1, 100, 2);
	create(&p, 2);
	hold(&p);
	assert_int_equal(thinp_meta_delta_open(&d, p.meta, 1, 2, &o), 0);
	assert_int_equal(thinp_delta_next(d, buf, 1, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(thin_release_metadata_snap_locked(p.meta), 0);
	map_block(&p, 1, 1, UINT64_MAX);
	assert_int_equal(thin_reserve_metadata_snap_locked(p.meta), 0);
	assert_int_equal(thinp_delta_next(d, buf, 1, &n), -ESTALE);
	thinp_delta_close(d);
	pool_free(&p);
}

/* A live device written between batches: -ESTALE once its tree moved;
 * a device not written (the snapshot) gives the exact delta meanwhile. */
static void test_live_written_between_batches(void **state)
{
	struct pool p;
	thinp_delta_run buf[1];
	thinp_delta *d;
	struct runs got = { 0 }, want = { 0 };
	size_t n;

	(void)state;
	pool_new(&p);
	create(&p, 1);
	map_every(&p, 1, 600, 2);
	snap(&p, 2, 1);
	map_every(&p, 2, 600, 50);
	assert_int_equal(thinp_meta_commit(p.meta), 0);
	snap(&p, 3, 2); /* the backup snapshot of 2 */
	expected(p.live.map[1], p.live.map[3], 0, UINT64_MAX, false, &want);
	assert_int_equal(thinp_meta_delta_open(&d, p.meta, 1, 3, NULL), 0);
	do {
		assert_int_equal(thinp_delta_next(d, buf, 1, &n), 0);
		if (n)
			runs_push(&got, &buf[0]);
		map_block(&p, 2, 7, UINT64_MAX); /* the origin keeps being written */
	} while (n);
	thinp_delta_close(d);
	assert_runs_equal(&want, &got);
	assert_int_equal(thinp_meta_commit(p.meta), 0);
	assert_int_equal(thinp_meta_delta_open(&d, p.meta, 1, 2, NULL), 0);
	assert_int_equal(thinp_delta_next(d, buf, 1, &n), 0);
	map_block(&p, 2, 9, UINT64_MAX); /* first change after the commit: moves */
	assert_int_equal(thinp_delta_next(d, buf, 1, &n), -ESTALE);
	thinp_delta_close(d);
	free(got.r);
	free(want.r);
	pool_free(&p);
}

/* ---- a pool someone else owns: the snapshot-only handle ------------------- */

static void scribble(thinp_io *io, uint64_t b)
{
	uint8_t buf[THINP_META_BLOCK_SIZE];

	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(thinp_io_write(io, buf, sizeof(buf), b * THINP_META_BLOCK_SIZE, 0), 0);
}

/*
 * What a reader of a kernel-owned pool sees mid-transaction: the live
 * mapping and details roots and both space maps' blocks overwritten, the
 * live superblock's other fields nonsense (yet checksummed). Only the held
 * root is left right.
 */
static void ruin_live_state(thinp_io *io, uint64_t snap_mapping_root)
{
	uint8_t buf[THINP_META_BLOCK_SIZE];
	struct thin_sb sb;
	uint64_t nr, alloc, bitmaps, refs;
	const uint8_t *sm[2];
	unsigned i;

	assert_int_equal(thinp_io_read(io, buf, sizeof(buf), 0, 0), 0);
	thin_sb_decode(buf, &sb);
	assert_true(sb.held_root != 0);
	assert_true(sb.data_mapping_root != snap_mapping_root);
	scribble(io, sb.data_mapping_root);
	scribble(io, sb.device_details_root);
	sm[0] = sb.data_sm_root;
	sm[1] = sb.metadata_sm_root;
	for (i = 0; i < 2; i++) {
		thin_sm_root_decode(sm[i], &nr, &alloc, &bitmaps, &refs);
		scribble(io, bitmaps);
		scribble(io, refs);
	}
	memset(sb.data_sm_root, 0xff, sizeof(sb.data_sm_root));
	memset(sb.metadata_sm_root, 0xff, sizeof(sb.metadata_sm_root));
	sb.data_mapping_root = sb.device_details_root = 1;
	sb.data_block_size = 7;
	sb.metadata_nr_blocks = 3;
	sb.trans_id += 1000;
	thin_sb_encode(&sb, buf);
	thin_sb_seal(buf, 0);
	assert_int_equal(thinp_io_write(io, buf, sizeof(buf), 0, 0), 0);
}

static void check_snapshot_handle(struct pool *p, uint64_t held)
{
	thinp_meta_superblock sb = THINP_META_SUPERBLOCK_INIT;
	thinp_meta_status st = THINP_META_STATUS_INIT;
	thinp_delta *d;
	uint64_t data;
	uint32_t time;

	check_delta(p, 1, THINP_DELTA_HELD, 2, THINP_DELTA_HELD, 0, UINT64_MAX, true);
	check_delta(p, 2, THINP_DELTA_HELD, 1, THINP_DELTA_HELD, 0, UINT64_MAX, false);
	/* The handle's live metadata is the snapshot. */
	check_delta(p, 1, THINP_DELTA_LIVE, 2, THINP_DELTA_LIVE, 10, 3000, true);
	assert_int_equal(thinp_meta_get_superblock(p->meta, THINP_META_LIVE, &sb), 0);
	assert_int_equal(sb.data_block_size, 128);
	assert_int_equal(sb.blocknr, held);
	assert_int_equal(thinp_meta_lookup(p->meta, 1, 4, &data, &time, NULL), 0);
	assert_int_equal(data + 1, p->held.map[1][4]);
	/* Nothing else is read, nothing changes. */
	assert_int_equal(thinp_meta_delta_open(&d, p->meta, 1, 2, &(thinp_delta_options){
		sizeof(thinp_delta_options), 0, held + 1, held + 1, 0, UINT64_MAX }), -EINVAL);
	assert_int_equal(thinp_meta_create_thin(p->meta, 5), -EROFS);
	assert_int_equal(thinp_meta_commit(p->meta), -EROFS);
	assert_int_equal(thinp_meta_abort(p->meta), -EROFS);
	assert_int_equal(thinp_meta_get_status(p->meta, &st), -EOPNOTSUPP);
}

/* A snapshot-only delta is right whatever the live state looks like. */
static void test_snapshot_only_ignores_live_state(void **state)
{
	struct pool p;
	thinp_meta_superblock sb = THINP_META_SUPERBLOCK_INIT;
	thinp_meta *m;
	uint64_t v, held, snap_root;

	(void)state;
	pool_new(&p);
	create(&p, 1);
	map_every(&p, 1, 20000, 1);
	snap(&p, 2, 1);
	for (v = 7; v < 20000; v += 97)
		map_block(&p, 2, v, UINT64_MAX);
	unmap_block(&p, 2, 19999);
	hold(&p);
	assert_int_equal(thinp_meta_get_superblock(p.meta, THINP_META_HELD_ROOT, &sb), 0);
	snap_root = sb.data_mapping_root;
	held = sb.blocknr;
	/* The owner goes on: the live trees move away from the snapshot's. */
	for (v = 0; v < 20000; v += 50)
		map_block(&p, 1, v, UINT64_MAX);
	create(&p, 3);
	assert_int_equal(thinp_meta_commit(p.meta), 0);
	thinp_meta_close(p.meta);
	ruin_live_state(p.io, snap_root);
	assert_int_not_equal(thinp_meta_open(&m, p.io, NULL), 0);

	assert_int_equal(thinp_meta_open_snapshot(&p.meta, p.io, 0, NULL), 0);
	p.live = p.held;
	check_snapshot_handle(&p, held);
	thinp_meta_close(p.meta);

	/* Given the block (from the pool's status line), block 0 is not read. */
	scribble(p.io, 0);
	assert_int_equal(thinp_meta_open_snapshot(&m, p.io, 0, NULL), -EILSEQ);
	assert_int_equal(thinp_meta_open_snapshot(&p.meta, p.io, held, NULL), 0);
	check_snapshot_handle(&p, held);
	pool_free(&p);
}

/* ---- cost: shared subtrees are not read ---------------------------------- */

/* Blocks the delta read (not requests: read-ahead reads runs of nodes in
 * one request); *requests (may be NULL) the read requests. */
static uint64_t reads_of_delta_req(thinp_io *io, uint64_t l, uint64_t r, bool changes_only,
				   size_t *nr_runs, uint64_t *requests)
{
	thinp_meta_options mo = THINP_META_OPTIONS_INIT;
	thinp_delta_options o = opts(0, 0, 0, UINT64_MAX, changes_only);
	struct runs got = { 0 };
	thinp_io_fault *fault;
	thinp_io *fio;
	thinp_meta *meta;
	uint64_t bytes;

	mo.flags = THINP_META_RDONLY;
	assert_int_equal(thinp_io_open_fault(&fio, &fault, io, THINP_IO_RDONLY), 0);
	assert_int_equal(thinp_meta_open(&meta, fio, &mo), 0);
	thinp_io_fault_reset_counters(fault);
	assert_int_equal(thinp_meta_delta(meta, l, r, &o, collect, &got), 0);
	assert_int_equal(thinp_io_fault_counters(fault, THINP_IO_KIND_READ, requests, &bytes), 0);
	*nr_runs = got.n;
	free(got.r);
	thinp_meta_close(meta);
	thinp_io_fault_free(fault);
	thinp_io_close(fio);
	return bytes / 4096;
}

static uint64_t reads_of_delta(thinp_io *io, uint64_t l, uint64_t r, bool changes_only,
			       size_t *nr_runs)
{
	return reads_of_delta_req(io, l, r, changes_only, nr_runs, NULL);
}

static void test_cost_is_changed_not_mapped(void **state)
{
	struct pool *p = malloc(sizeof(*p));
	uint64_t v, reads_changes, reads_full, requests;
	size_t runs;
	thinp_meta_device dev = THINP_META_DEVICE_INIT;

	(void)state;
	assert_non_null(p);
	pool_new(p);
	create(p, 1);
	for (v = 0; v < 100000; v++)
		assert_int_equal(th_insert_now(p->meta, 1, v, v), 0);
	assert_int_equal(thinp_meta_commit(p->meta), 0);
	assert_int_equal(thin_create_snap_locked(p->meta, 2, 1), 0);
	assert_int_equal(th_insert_now(p->meta, 2, 77777, 200000), 0);
	assert_int_equal(thinp_meta_commit(p->meta), 0);
	assert_int_equal(thin_device_locked(p->meta, 2, &dev), 0);
	assert_int_equal(dev.mapped_blocks, 100000);
	reads_changes = reads_of_delta(p->io, 1, 2, true, &runs);
	assert_int_equal(runs, 1);
	reads_full = reads_of_delta_req(p->io, 1, 2, false, &runs, &requests);
	assert_int_equal(runs, 3);
	print_message("reads: changes-only %lu, with same runs %lu in %lu requests\n",
		      (unsigned long)reads_changes, (unsigned long)reads_full,
		      (unsigned long)requests);
	/* the leaves, written in order, are read ahead in runs */
	assert_true(requests * 4 < reads_full);
	
/* 100000 mappings fill > 400 leaves; the changed path is a handful of
	 * nodes per side, plus the superblock and the top-level tree. */
	assert_true(reads_changes <= 16);
	assert_true(reads_full >= 400);
	pool_free(p);
	free(p);
}

/* The snapshot grew a level (its root split above the shared leaves): the
 * shared leaves sit one level deeper on the right and must still be met as
 * one node and skipped, not read. */
static void test_cost_shared_at_different_depths(void **state)
{
	struct pool *p = malloc(sizeof(*p));
	uint64_t v, reads_changes, reads_right;
	size_t runs;

	(void)state;
	assert_non_null(p);
	pool_new(p);
	create(p, 1);
	create(p, 3);
	for (v = 0; v < 40000; v++)
		assert_int_equal(th_insert_now(p->meta, 1, v, v), 0);
	assert_int_equal(thinp_meta_commit(p->meta), 0);
	assert_int_equal(thin_create_snap_locked(p->meta, 2, 1), 0);
	for (v = 0; v < 40000; v++)
		assert_int_equal(th_insert_now(p->meta, 2, 1000000 + v, 100000 + v), 0);
	assert_int_equal(thinp_meta_commit(p->meta), 0);
	reads_changes = reads_of_delta(p->io, 1, 2, true, &runs);
	assert_int_equal(runs, 1);
	reads_right = reads_of_delta(p->io, 3, 2, true, &runs);
	assert_int_equal(runs, 2);
	print_message("reads: 1 vs 2 %lu, empty vs 2 %lu\n", (unsigned long)reads_changes,
		      (unsigned long)reads_right);
	/* about half of 2's leaves are new; the shared half is not read */
	assert_true(reads_changes * 10 < reads_right * 6);
	pool_free(p);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_pool),
		cmocka_unit_test(test_missing_device),
		cmocka_unit_test(test_end_and_sizes),
		cmocka_unit_test(test_changed_block_in_leaf),
		cmocka_unit_test(test_held_released_between_batches),
		cmocka_unit_test(test_live_written_between_batches),
		cmocka_unit_test(test_cost_is_changed_not_mapped),
		cmocka_unit_test(test_cost_shared_at_different_depths),
		cmocka_unit_test(test_snapshot_only_ignores_live_state),
		cmocka_unit_test(test_random_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
