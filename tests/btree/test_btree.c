/*
 * The btree against a reference model (tests/btree/model.h).
 *
 * Random runs drive insert / overwrite / remove / lookup / lower_bound /
 * range-remove on single-level trees (value sizes 4, 8, 16, 24; small and
 * near-2^64 keys) and on 2-level trees, with commits, aborts (the model is
 * rolled back) and reopens from the device. After every commit each tree is
 * walked and compared with its model, and every reference count is
 * recomputed with btree_count_blocks (which also checks each node's rules:
 * fill, key order, parent keys, leaf depth) and compared exactly with the
 * space maps (tests/common/btree_check.h).
 *
 * THINP_TEST_SEED replays a run; THINP_TEST_LONG=n multiplies the number of
 * operations (n = 10 gives more than a million).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include "common/btree_check.h"
#include "common/core_sm.h"
#include "btree/btree.h"
#include "btree/node.h"
#include "block/bm.h"
#include "util/compiler.h"
#include "util/endian.h"
#include "model.h"

#define MAX_VSIZE 24
#define MAX_TREES 16

struct tree {
	uint64_t root, committed_root;
	struct model m, mc;
};

struct world {
	struct tm_env e;
	struct space_map *data_sm;
	struct data_values dv;
	struct btree_info info;  /* levels 1 or 2 */
	struct btree_info leaf_info; /* 1 level, the last level's values */
	struct test_rng rng;
	unsigned ndev;
	uint32_t nkeys;
	uint64_t key_base, key_stride;
	struct tree trees[MAX_TREES];
	unsigned ntrees;
	uint64_t ops, commits, aborts, reopens;
	bool quiet;
};

struct world_opts {
	unsigned levels, ndev, ntrees;
	uint32_t vsize, nkeys;
	uint64_t key_base, key_stride;
	uint64_t meta_blocks, data_blocks;
	const char *name;
};

static uint64_t key_of(const struct world *w, uint32_t i)
{
	return w->key_base + i * w->key_stride;
}

static uint64_t dev_key(unsigned dev)
{
	return dev * 1000003ull + 11;
}

static void make_keys(const struct world *w, unsigned dev, uint64_t key, uint64_t *keys)
{
	if (w->info.levels == 2) {
		keys[0] = dev_key(dev);
		keys[1] = key;
	} else {
		keys[0] = key;
	}
}

static void world_commit(struct world *w);

static void world_open(struct world *w, const struct world_opts *o)
{
	unsigned t;

	memset(w, 0, sizeof(*w));
	test_rng_init(&w->rng, test_seed(o->name));
	assert_int_equal(tm_env_open(&w->e, o->meta_blocks, 0), 0);
	assert_int_equal(core_sm_create(&w->data_sm, o->data_blocks), 0);
	w->dv.data_sm = w->data_sm;
	w->dv.value_size = o->vsize;
	w->info.tm = w->e.tm;
	w->info.levels = o->levels;
	w->info.value_type = data_value_type(&w->dv);
	w->leaf_info = w->info;
	w->leaf_info.levels = 1;
	w->ndev = o->ndev;
	w->nkeys = o->nkeys;
	w->key_base = o->key_base;
	w->key_stride = o->key_stride;
	w->ntrees = o->ntrees;
	for (t = 0; t < w->ntrees; t++) {
		model_init(&w->trees[t].m, o->ndev, o->nkeys, o->vsize);
		model_init(&w->trees[t].mc, o->ndev, o->nkeys, o->vsize);
		assert_int_equal(btree_empty(&w->info, &w->trees[t].root), 0);
	}
	world_commit(w);
	w->commits = 0;
}

static void world_close(struct world *w)
{
	unsigned t;

	for (t = 0; t < w->ntrees; t++) {
		model_free(&w->trees[t].m);
		model_free(&w->trees[t].mc);
	}
	sm_destroy(w->data_sm);
	tm_env_close(&w->e);
}

static void set_tm(struct world *w)
{
	w->info.tm = w->e.tm;
	w->leaf_info.tm = w->e.tm;
}

/* ------------------------------------------------------------------ */
/* Comparing a tree with its model. */

struct cmp {
	const struct world *w;
	const struct model *m;
	unsigned dev;
	uint32_t next; /* model slot expected next */
	uint64_t seen;
};

static int cmp_leaf_value(void *ctx, uint64_t key, const void *value)
{
	struct cmp *c = ctx;
	uint32_t i = model_next(c->m, c->dev, c->next);

	if (i >= c->m->nkeys || key_of(c->w, i) != key)
		fail_msg("walk: key %llu not expected (model next slot %u)",
			 (unsigned long long)key, i);
	assert_memory_equal(value, model_val(c->m, c->dev, i), c->m->vsize);
	c->next = i + 1;
	c->seen++;
	return 0;
}

static void compare_subtree(const struct world *w, const struct model *m, unsigned dev,
			    uint64_t root)
{
	struct cmp c = { w, m, dev, 0, 0 };

	assert_int_equal(btree_walk((struct btree_info *)&w->leaf_info, root, cmp_leaf_value, &c), 0);
	assert_int_equal(model_next(m, dev, c.next), m->nkeys);
}

struct top_cmp {
	const struct world *w;
	const struct model *m;
	unsigned next_dev;
};

static int cmp_top_value(void *ctx, uint64_t key, const void *value)
{
	struct top_cmp *c = ctx;

	while (c->next_dev < c->m->ndev && !c->m->dev_exists[c->next_dev])
		c->next_dev++;
	if (c->next_dev >= c->m->ndev || dev_key(c->next_dev) != key)
		fail_msg("top-level key %llu not expected", (unsigned long long)key);
	compare_subtree(c->w, c->m, c->next_dev, load_le64(value));
	c->next_dev++;
	return 0;
}

static void compare_tree(const struct world *w, const struct tree *t)
{
	struct top_cmp c = { w, &t->m, 0 };

	if (w->info.levels == 1) {
		compare_subtree(w, &t->m, 0, t->root);
		return;
	}
	assert_int_equal(btree_walk((struct btree_info *)&w->info, t->root, cmp_top_value, &c), 0);
	while (c.next_dev < t->m.ndev)
		assert_false(t->m.dev_exists[c.next_dev++]);
}

/* ------------------------------------------------------------------ */
/* Operations, each checked against the model. */

static void op_insert(struct world *w, struct tree *t, unsigned dev, uint32_t i)
{
	uint8_t v[MAX_VSIZE];
	uint64_t keys[2];
	uint32_t db = 0;
	bool inserted, had = model_has(&t->m, dev, i), same = false;

	make_keys(w, dev, key_of(w, i), keys);
	if (had && test_rng_below(&w->rng, 4) == 0) {
		/* Overwrite with an equal value: no reference moves. */
		memcpy(v, model_val(&t->m, dev, i), t->m.vsize);
		same = true;
	} else {
		uint64_t b = 0;

		if (t->m.vsize >= 4)
			assert_int_equal(sm_new_block(w->data_sm, &b), 0);
		db = (uint32_t)b;
		make_value(v, t->m.vsize, keys[w->info.levels - 1], db);
	}
	assert_int_equal(btree_insert(&w->info, t->root, keys, v, &t->root, &inserted), 0);
	assert_int_equal(inserted, !had);
	(void)same;
	model_put(&t->m, dev, i, v);
}

static void op_remove(struct world *w, struct tree *t, unsigned dev, uint32_t i)
{
	uint64_t keys[2];

	make_keys(w, dev, key_of(w, i), keys);
	assert_int_equal(btree_remove(&w->info, t->root, keys, &t->root),
			 model_has(&t->m, dev, i) ? 0 : -ENODATA);
	model_del(&t->m, dev, i);
}

static void op_lookup(struct world *w, struct tree *t, unsigned dev, uint32_t i)
{
	uint8_t v[MAX_VSIZE];
	uint64_t keys[2];

	make_keys(w, dev, key_of(w, i), keys);
	if (!model_has(&t->m, dev, i)) {
		assert_int_equal(btree_lookup(&w->info, t->root, keys, v), -ENODATA);
		return;
	}
	assert_int_equal(btree_lookup(&w->info, t->root, keys, v), 0);
	assert_memory_equal(v, model_val(&t->m, dev, i), t->m.vsize);
}

/* btree_last: the model's highest present slot (rightmost-path descent). */
static void check_last(struct world *w, struct tree *t, unsigned dev)
{
	uint8_t v[MAX_VSIZE];
	uint64_t keys[2], found;
	uint32_t j = w->nkeys;
	int r;

	make_keys(w, dev, 0, keys);
	while (j > 0 && !model_has(&t->m, dev, j - 1))
		j--;
	r = btree_last(&w->info, t->root, keys, &found, v);
	if ((w->info.levels == 2 && !t->m.dev_exists[dev]) || j == 0) {
		assert_int_equal(r, -ENODATA);
		return;
	}
	assert_int_equal(r, 0);
	assert_int_equal(found, key_of(w, j - 1));
	assert_memory_equal(v, model_val(&t->m, dev, j - 1), t->m.vsize);
}

static void op_lower_bound(struct world *w, struct tree *t, unsigned dev, uint32_t i)
{
	uint8_t v[MAX_VSIZE];
	uint64_t keys[2], k = key_of(w, i), found;
	uint32_t j;
	int r;

	/* Half the time ask for a key between slots. */
	if (i > 0 && w->key_stride > 1 && test_rng_below(&w->rng, 2))
		k -= 1 + test_rng_below(&w->rng, w->key_stride - 1);
	make_keys(w, dev, k, keys);
	j = model_next(&t->m, dev, i);
	if (test_rng_below(&w->rng, 8) == 0)
		check_last(w, t, dev);
	r = btree_lower_bound(&w->info, t->root, keys, &found, v);
	if (w->info.levels == 2 && !t->m.dev_exists[dev]) {
		assert_int_equal(r, -ENODATA);
		return;
	}
	if (j >= t->m.nkeys) {
		assert_int_equal(r, -ENODATA);
		return;
	}
	assert_int_equal(r, 0);
	assert_int_equal(found, key_of(w, j));
	assert_memory_equal(v, model_val(&t->m, dev, j), t->m.vsize);
}

static void op_remove_range(struct world *w, struct tree *t, unsigned dev, uint32_t i)
{
	uint32_t len = (uint32_t)test_rng_below(&w->rng, 600), j, end, expect = 0;
	uint64_t keys[2], n = 0, end_key;
	int r;

	end = i + len > w->nkeys ? w->nkeys : i + len;
	for (j = i; j < end; j++)
		expect += model_has(&t->m, dev, j);
	make_keys(w, dev, key_of(w, i), keys);
	end_key = end < w->nkeys ? key_of(w, end) : key_of(w, w->nkeys - 1) + 1;
	if (end_key == 0) /* the last slot is UINT64_MAX: no end key past it */
		end_key = UINT64_MAX;
	if (end >= w->nkeys && end_key == UINT64_MAX && model_has(&t->m, dev, w->nkeys - 1) &&
	    key_of(w, w->nkeys - 1) == UINT64_MAX)
		expect--; /* UINT64_MAX itself is outside [k, UINT64_MAX) */
	r = btree_remove_range(&w->info, t->root, keys, end_key, &t->root, &n);
	if (w->info.levels == 2 && !t->m.dev_exists[dev]) {
		assert_int_equal(r, -ENODATA);
		return;
	}
	assert_int_equal(r, 0);
	assert_int_equal(n, expect);
	for (j = i; j < end; j++)
		if (key_of(w, j) < end_key)
			model_del(&t->m, dev, j);
}

/* ------------------------------------------------------------------ */
/* Transactions. */

static void all_roots(const struct world *w, uint64_t *roots)
{
	unsigned t;

	for (t = 0; t < w->ntrees; t++)
		roots[t] = w->trees[t].root;
}

static void check_world(struct world *w)
{
	uint64_t roots[MAX_TREES];
	unsigned t;

	all_roots(w, roots);
	check_ref_counts(&w->e, &w->info, roots, w->ntrees, &w->dv);
	for (t = 0; t < w->ntrees; t++)
		compare_tree(w, &w->trees[t]);
	assert_int_equal(core_sm_errors(w->e.sm), 0);
	assert_int_equal(core_sm_errors(w->data_sm), 0);
}

static void world_commit(struct world *w)
{
	uint64_t roots[MAX_TREES];
	unsigned t;

	all_roots(w, roots);
	assert_int_equal(tm_env_commit(&w->e, roots, w->ntrees), 0);
	assert_int_equal(sm_commit(w->data_sm), 0);
	check_world(w);
	for (t = 0; t < w->ntrees; t++) {
		w->trees[t].committed_root = w->trees[t].root;
		model_copy(&w->trees[t].mc, &w->trees[t].m);
	}
	w->commits++;
}

static void world_abort(struct world *w)
{
	unsigned t;

	assert_int_equal(tm_env_abort(&w->e), 0);
	core_sm_abort(w->data_sm);
	for (t = 0; t < w->ntrees; t++) {
		w->trees[t].root = w->trees[t].committed_root;
		model_copy(&w->trees[t].m, &w->trees[t].mc);
	}
	w->aborts++;
}

static void world_reopen(struct world *w)
{
	uint64_t roots[MAX_TREES];
	unsigned t;

	world_commit(w);
	assert_int_equal(tm_env_reopen(&w->e, roots, w->ntrees), 0);
	set_tm(w);
	for (t = 0; t < w->ntrees; t++)
		assert_int_equal(roots[t], w->trees[t].root);
	check_world(w);
	w->reopens++;
}

/* One random operation on a random tree. */
static void random_op(struct world *w)
{
	struct tree *t = &w->trees[test_rng_below(&w->rng, w->ntrees)];
	unsigned dev = (unsigned)test_rng_below(&w->rng, w->ndev);
	uint32_t i = (uint32_t)test_rng_below(&w->rng, w->nkeys);
	uint64_t p = test_rng_below(&w->rng, 1000);

	if (p < 450)
		op_insert(w, t, dev, i);
	else if (p < 700)
		op_remove(w, t, dev, i);
	else if (p < 850)
		op_lookup(w, t, dev, i);
	else if (p < 990)
		op_lower_bound(w, t, dev, i);
	else
		op_remove_range(w, t, dev, i);
	w->ops++;
}

static void run_random(struct world *w, uint64_t nops)
{
	uint64_t until_commit = 1 + test_rng_below(&w->rng, 3000);

	while (w->ops < nops) {
		random_op(w);
		if (--until_commit)
			continue;
		switch (test_rng_below(&w->rng, 10)) {
		case 0:
			world_abort(w);
			check_world(w);
			break;
		case 1:
			world_reopen(w);
			break;
		default:
			world_commit(w);
		}
		until_commit = 1 + test_rng_below(&w->rng, 3000);
	}
	world_commit(w);
	if (w->quiet)
		return;
	fprintf(stderr, "  %llu ops, %llu commits, %llu aborts, %llu reopens\n",
		(unsigned long long)w->ops, (unsigned long long)w->commits,
		(unsigned long long)w->aborts, (unsigned long long)w->reopens);
}

static void random_run(const struct world_opts *o, uint64_t nops)
{
	struct world w;

	world_open(&w, o);
	run_random(&w, test_ops((unsigned)nops));
	world_close(&w);
}

/*
 * node_redistribute moves entries in place between neighbours (no gather
 * buffer, for kernel stacks): with 2 and 3 nodes of random fill (full, empty
 * and the root split's [n, 0, 0] -> [0, a, b] included) and random targets,
 * the concatenated keys and values are unchanged and each node holds its
 * target.
 */
static void test_redistribute_in_place(void **state)
{
	static uint8_t blocks[3][THINP_BLOCK_SIZE];
	struct test_rng rng;
	unsigned iter, iters = test_ops(4000);

	(void)state;
	test_rng_init(&rng, test_seed("redistribute"));
	for (iter = 0; iter < iters; iter++) {
		uint32_t vs = iter % 2 ? 8 : 24, max = btree_max_entries(vs);
		unsigned count = 2 + (unsigned)test_rng_below(&rng, 2), j, i;
		uint32_t nr[3], targets[3], total = 0, left, seq = 0;
		void *nodes[3];

		for (j = 0; j < count; j++) {
			uint32_t pick = (uint32_t)test_rng_below(&rng, 4);

			nr[j] = pick == 0 ? 0 : pick == 1 ? max : (uint32_t)test_rng_below(&rng, max + 1);
			if (iter % 7 == 0)
				nr[j] = j == 0 ? max : 0;
			total += nr[j];
		}
		for (j = 0; j < count; j++) {
			nodes[j] = blocks[j];
			node_init(nodes[j], BTREE_NODE_LEAF, vs);
			for (i = 0; i < nr[j]; i++, seq++) {
				uint8_t v[MAX_VSIZE];

				memset(v, (int)(seq * 7 + 1), sizeof(v));
				memcpy(v, &seq, sizeof(seq));
				node_insert_at(nodes[j], i, 1000 + 3ull * seq, v);
			}
		}
		left = total;
		for (j = 0; j < count; j++) {
			uint32_t rest_max = (count - 1 - j) * max, lo, hi;

			lo = left > rest_max ? left - rest_max : 0;
			hi = left < max ? left : max;
			targets[j] = j + 1 == count ? left : lo + (uint32_t)test_rng_below(&rng, hi - lo + 1);
			left -= targets[j];
		}
		node_redistribute(nodes, count, targets);
		seq = 0;
		for (j = 0; j < count; j++) {
			assert_int_equal(node_nr(nodes[j]), targets[j]);
			for (i = 0; i < targets[j]; i++, seq++) {
				uint8_t v[MAX_VSIZE];

				memset(v, (int)(seq * 7 + 1), sizeof(v));
				memcpy(v, &seq, sizeof(seq));
				assert_int_equal(node_key(nodes[j], i), 1000 + 3ull * seq);
				assert_memory_equal(node_value(nodes[j], i), v, vs);
			}
		}
		assert_int_equal(seq, total);
	}
}

static void test_random_v8(void **state)
{
	struct world_opts o = { 1, 1, 1, 8, 12000, 0, 3, 8192, 1 << 18, "random_v8" };

	random_run(&o, 100000);
}

static void test_random_v4_v16_v24(void **state)
{
	struct world_opts o = { 1, 1, 1, 4, 8000, 5, 1, 8192, 1 << 18, "random_v4" };

	random_run(&o, 25000);
	o.vsize = 16;
	o.name = "random_v16";
	random_run(&o, 25000);
	o.vsize = 24;
	o.name = "random_v24";
	random_run(&o, 25000);
}

static void test_random_huge_keys(void **state)
{
	/* The last slot is exactly UINT64_MAX. */
	uint64_t stride = 1ull << 40, n = 6000;
	struct world_opts o = { 1, 1, 1, 8, (uint32_t)n, UINT64_MAX - (n - 1) * stride, stride,
				8192, 1 << 18, "random_huge_keys" };

	random_run(&o, 25000);
}

static void test_random_two_level(void **state)
{
	struct world_opts o = { 2, 6, 1, 8, 3000, 0, 2, 8192, 1 << 18, "random_two_level" };

	random_run(&o, 50000);
}

/* Fill, then remove until empty, committing often: leaves sit near their
 * minimum fill, so merges and redistributions happen at every boundary. */
static void test_fill_then_drain(void **state)
{
	static const uint32_t vsizes[] = { 4, 8, 24 };
	struct world_opts o = { 1, 1, 1, 8, 6000, 1, 1, 8192, 1 << 18, "fill_then_drain" };
	struct world w;
	uint32_t i, j, n;
	unsigned v;

	for (v = 0; v < THINP_ARRAY_SIZE(vsizes); v++) {
		o.vsize = vsizes[v];
		world_open(&w, &o);
		n = o.nkeys;
		for (i = 0; i < n; i++)
			op_insert(&w, &w.trees[0], 0, i);
		world_commit(&w);
		/* Random order removal (a random permutation). */
		{
			uint32_t *perm = malloc(n * sizeof(*perm));

			for (i = 0; i < n; i++)
				perm[i] = i;
			for (i = n - 1; i > 0; i--) {
				j = (uint32_t)test_rng_below(&w.rng, i + 1);
				uint32_t tmp = perm[i];
				perm[i] = perm[j];
				perm[j] = tmp;
			}
			for (i = 0; i < n; i++) {
				op_remove(&w, &w.trees[0], 0, perm[i]);
				if (i % 97 == 0)
					world_commit(&w);
			}
			free(perm);
		}
		world_commit(&w);
		/* Only the (empty) root is left. */
		assert_int_equal(check_ref_counts(&w.e, &w.info, &w.trees[0].root, 1, &w.dv), 1);
		world_close(&w);
	}
}

/* ------------------------------------------------------------------ */
/* Deterministic boundaries: root split and collapse, merge thresholds. */

/* Flags and entry count of node b. */
static void node_shape(struct world *w, uint64_t b, uint32_t *flags, uint32_t *nr)
{
	struct block *blk;

	assert_int_equal(tm_read_lock(w->e.tm, b, &btree_node_validator, &blk), 0);
	*flags = node_flags(block_data(blk));
	*nr = node_nr(block_data(blk));
	tm_unlock(w->e.tm, blk);
}

static uint64_t child_of(struct world *w, uint64_t b, uint32_t i)
{
	struct block *blk;
	uint64_t c;

	assert_int_equal(tm_read_lock(w->e.tm, b, &btree_node_validator, &blk), 0);
	c = node_value64(block_data(blk), i);
	tm_unlock(w->e.tm, blk);
	return c;
}

static void expect_shape(struct world *w, uint64_t b, uint32_t flags, uint32_t nr)
{
	uint32_t f, n;

	node_shape(w, b, &f, &n);
	assert_int_equal(f, flags);
	assert_int_equal(n, nr);
}

/*
 * For one value size: a full root leaf stays one node; one more key splits
 * it beneath (the root keeps its block, two leaves of half each); then the
 * two leaves are brought to exactly t and t+1 entries (total 2t+1), and
 * removing one more must merge them (a redistribution would leave a leaf
 * below t); the root, now with one child, collapses back into a leaf on the
 * next removal.
 */
static void boundary_one(uint32_t vsize)
{
	struct world_opts o = { 1, 1, 1, vsize, 1000, 0, 1, 4096, 1 << 16, "boundaries" };
	uint32_t max = btree_max_entries(vsize), t = max / 3, i, lo, hi;
	struct world w;
	struct tree *tr;
	uint64_t root;

	world_open(&w, &o);
	tr = &w.trees[0];
	for (i = 0; i < max; i++)
		op_insert(&w, tr, 0, i);
	world_commit(&w);
	expect_shape(&w, tr->root, BTREE_NODE_LEAF, max);
	assert_int_equal(check_ref_counts(&w.e, &w.info, &tr->root, 1, &w.dv), 1);

	root = tr->root;
	op_insert(&w, tr, 0, max);
	assert_int_not_equal(tr->root, root); /* shadowed: it was committed */
	root = tr->root;
	expect_shape(&w, root, BTREE_NODE_INTERNAL, 2);
	expect_shape(&w, child_of(&w, root, 0), BTREE_NODE_LEAF, max / 2);
	expect_shape(&w, child_of(&w, root, 1), BTREE_NODE_LEAF, max - max / 2 + 1);
	world_commit(&w);
	assert_int_equal(check_ref_counts(&w.e, &w.info, &tr->root, 1, &w.dv), 3);

	/* Right leaf down to t+1 (from the top), left leaf down to t. */
	hi = max;
	for (i = max - max / 2 + 1; i > t + 1; i--)
		op_remove(&w, tr, 0, hi--);
	lo = 0;
	for (i = max / 2; i > t; i--)
		op_remove(&w, tr, 0, lo++);
	world_commit(&w);
	expect_shape(&w, child_of(&w, tr->root, 0), BTREE_NODE_LEAF, t);
	expect_shape(&w, child_of(&w, tr->root, 1), BTREE_NODE_LEAF, t + 1);

	/* Total 2t+1: the next removal from the left leaf merges. */
	op_remove(&w, tr, 0, lo++);
	expect_shape(&w, tr->root, BTREE_NODE_INTERNAL, 1);
	expect_shape(&w, child_of(&w, tr->root, 0), BTREE_NODE_LEAF, 2 * t);
	world_commit(&w);
	assert_int_equal(check_ref_counts(&w.e, &w.info, &tr->root, 1, &w.dv), 2);

	/* One child left: the next removal collapses the root into a leaf,
	 * in place (same block within the transaction). */
	op_insert(&w, tr, 0, hi); /* shadow the path first */
	root = tr->root;
	op_remove(&w, tr, 0, lo++);
	assert_int_equal(tr->root, root);
	expect_shape(&w, tr->root, BTREE_NODE_LEAF, 2 * t - 1);
	world_commit(&w);
	assert_int_equal(check_ref_counts(&w.e, &w.info, &tr->root, 1, &w.dv), 1);
	world_close(&w);
}

static void test_boundaries(void **state)
{
	boundary_one(4);
	boundary_one(8);
	boundary_one(16);
	boundary_one(24);
}

/* Grow to three levels (the root's children internal) with ascending,
 * descending and random insertion, then remove everything. */
static void grow_and_shrink(uint32_t vsize, int order)
{
	uint32_t max = btree_max_entries(vsize), n = max * 260, i, j, tmp, f, nr;
	struct world_opts o = { 1, 1, 1, vsize, n, 0, 1, 16384, 1 << 17, "grow_and_shrink" };
	uint32_t *perm = malloc(n * sizeof(*perm));
	struct world w;
	struct tree *tr;

	world_open(&w, &o);
	tr = &w.trees[0];
	for (i = 0; i < n; i++)
		perm[i] = order > 0 ? i : order < 0 ? n - 1 - i : i;
	if (order == 0)
		for (i = n - 1; i > 0; i--) {
			j = (uint32_t)test_rng_below(&w.rng, i + 1);
			tmp = perm[i];
			perm[i] = perm[j];
			perm[j] = tmp;
		}
	for (i = 0; i < n; i++) {
		op_insert(&w, tr, 0, perm[i]);
		if (i % 20000 == 19999)
			world_commit(&w);
	}
	world_commit(&w);
	node_shape(&w, tr->root, &f, &nr);
	assert_int_equal(f, BTREE_NODE_INTERNAL);
	node_shape(&w, child_of(&w, tr->root, 0), &f, &nr);
	assert_int_equal(f, BTREE_NODE_INTERNAL);
	for (i = 0; i < n; i++) {
		op_remove(&w, tr, 0, perm[(i * 7919u) % n]);
		if (i % 20000 == 19999)
			world_commit(&w);
	}
	world_commit(&w);
	expect_shape(&w, tr->root, BTREE_NODE_LEAF, 0);
	world_close(&w);
	free(perm);
}

static void test_three_levels(void **state)
{
	grow_and_shrink(24, 1);
	grow_and_shrink(24, -1);
	grow_and_shrink(24, 0);
}

/* ------------------------------------------------------------------ */
/* Sharing: copies of a root, snapshots of subtrees, whole-tree delete. */

/* Drop tree t from the world (its root's reference already dropped). */
static void forget_tree(struct world *w, unsigned t)
{
	struct tree tmp = w->trees[t];

	w->trees[t] = w->trees[w->ntrees - 1];
	w->trees[w->ntrees - 1] = tmp;
	w->ntrees--;
}

static void delete_all_in_random_order(struct world *w)
{
	while (w->ntrees) {
		unsigned t = (unsigned)test_rng_below(&w->rng, w->ntrees);

		assert_int_equal(btree_del(&w->info, w->trees[t].root), 0);
		forget_tree(w, t);
		world_commit(w);
	}
	w->ntrees = 0;
}

/* Every metadata block but block 0 and every data block is free again. */
static void expect_all_free(struct world *w, uint64_t data_blocks)
{
	uint64_t b;

	assert_int_equal(core_sm_count(w->e.sm, 0), 1);
	for (b = 1; b < w->e.nr_blocks; b++)
		if (core_sm_count(w->e.sm, b))
			fail_msg("metadata block %llu still has count %u", (unsigned long long)b,
				 core_sm_count(w->e.sm, b));
	for (b = 0; b < data_blocks; b++)
		if (core_sm_count(w->data_sm, b))
			fail_msg("data block %llu still has count %u", (unsigned long long)b,
				 core_sm_count(w->data_sm, b));
}

/* Copy tree 0's root into trees 1..n-1 (a snapshot: one more reference). */
static void share_root(struct world *w, unsigned ntrees)
{
	unsigned t;

	for (t = 1; t < ntrees; t++) {
		assert_int_equal(tm_inc(w->e.tm, w->trees[0].root), 0);
		w->trees[t].root = w->trees[0].root;
		model_copy(&w->trees[t].m, &w->trees[0].m);
	}
	w->ntrees = ntrees;
	world_commit(w);
}

static void test_shared_roots(void **state)
{
	struct world_opts o = { 1, 1, 12, 8, 5000, 0, 1, 16384, 1 << 18, "shared_roots" };
	struct world w;
	uint64_t i, total;

	world_open(&w, &o);
	for (i = 1; i < o.ntrees; i++)
		assert_int_equal(btree_del(&w.info, w.trees[i].root), 0);
	w.ntrees = 1;
	for (i = 0; i < 4000; i++)
		op_insert(&w, &w.trees[0], 0, (uint32_t)test_rng_below(&w.rng, o.nkeys));
	world_commit(&w);
	share_root(&w, 12);
	total = w.ops + test_ops(30000);
	run_random(&w, total);
	/* A second generation: copies of one mutated copy; the others go. */
	{
		struct tree tmp = w.trees[0];

		w.trees[0] = w.trees[5];
		w.trees[5] = tmp;
	}
	for (i = 1; i < 12; i++)
		assert_int_equal(btree_del(&w.info, w.trees[i].root), 0);
	w.ntrees = 1;
	world_commit(&w);
	share_root(&w, 12);
	run_random(&w, w.ops + test_ops(10000));
	delete_all_in_random_order(&w);
	expect_all_free(&w, 1 << 18);
	w.ntrees = 12; /* world_close frees every model */
	world_close(&w);
}

/* The thin-style top level: a 1-level view of the 2-level tree's top, whose
 * values are subtree roots (inc: one more reference on the root; dec: delete
 * the subtree). */
static int top_inc(void *context, const void *values, unsigned count)
{
	struct world *w = context;
	unsigned i;
	int r;

	for (i = 0; i < count; i++) {
		r = tm_inc(w->e.tm, load_le64((const uint8_t *)values + 8 * i));
		if (r)
			return r;
	}
	return 0;
}

static int top_dec(void *context, const void *values, unsigned count)
{
	struct world *w = context;
	unsigned i;
	int r;

	for (i = 0; i < count; i++) {
		r = btree_del(&w->leaf_info, load_le64((const uint8_t *)values + 8 * i));
		if (r)
			return r;
	}
	return 0;
}

/* dev `to` becomes a snapshot of dev `from` (replacing it if it exists). */
static void snapshot_dev(struct world *w, struct btree_info *top, struct tree *t,
			 unsigned from, unsigned to)
{
	uint64_t k, sub;
	uint8_t v[8];
	uint32_t i;

	if (t->m.dev_exists[to]) {
		k = dev_key(to);
		assert_int_equal(btree_remove(top, t->root, &k, &t->root), 0);
		for (i = 0; i < t->m.nkeys; i++)
			model_del(&t->m, to, i);
		t->m.dev_exists[to] = 0;
	}
	if (!t->m.dev_exists[from])
		return;
	k = dev_key(from);
	assert_int_equal(btree_lookup(top, t->root, &k, v), 0);
	sub = load_le64(v);
	assert_int_equal(tm_inc(w->e.tm, sub), 0);
	k = dev_key(to);
	assert_int_equal(btree_insert(top, t->root, &k, v, &t->root, NULL), 0);
	t->m.dev_exists[to] = 1;
	for (i = 0; i < t->m.nkeys; i++)
		if (model_has(&t->m, from, i))
			model_put(&t->m, to, i, model_val(&t->m, from, i));
}

static void test_two_level_snapshots(void **state)
{
	struct world_opts o = { 2, 8, 1, 8, 2500, 0, 1, 16384, 1 << 18, "two_level_snapshots" };
	struct btree_value_type top_vt = { NULL, 8, top_inc, top_dec, NULL };
	struct btree_info top;
	struct world w;
	uint64_t round, rounds = 40 * test_scale(), k;

	world_open(&w, &o);
	w.quiet = true;
	top_vt.context = &w;
	for (round = 0; round < rounds; round++) {
		unsigned from = (unsigned)test_rng_below(&w.rng, o.ndev);
		unsigned to = (unsigned)test_rng_below(&w.rng, o.ndev);

		top.tm = w.e.tm;
		top.levels = 1;
		top.value_type = top_vt;
		if (from != to)
			snapshot_dev(&w, &top, &w.trees[0], from, to);
		run_random(&w, w.ops + 1000);
	}
	fprintf(stderr, "  %llu ops, %llu commits, %llu aborts, %llu reopens\n",
		(unsigned long long)w.ops, (unsigned long long)w.commits,
		(unsigned long long)w.aborts, (unsigned long long)w.reopens);
	/* Delete every device through the top level (subtree deletes). */
	top.tm = w.e.tm;
	for (unsigned d = 0; d < o.ndev; d++) {
		if (!w.trees[0].m.dev_exists[d])
			continue;
		k = dev_key(d);
		assert_int_equal(btree_remove(&top, w.trees[0].root, &k, &w.trees[0].root), 0);
		for (uint32_t i = 0; i < o.nkeys; i++)
			model_del(&w.trees[0].m, d, i);
		w.trees[0].m.dev_exists[d] = 0;
		world_commit(&w);
	}
	assert_int_equal(btree_del(&w.info, w.trees[0].root), 0);
	w.ntrees = 0;
	world_commit(&w);
	expect_all_free(&w, 1 << 18);
	w.ntrees = 1;
	world_close(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redistribute_in_place),
		cmocka_unit_test(test_random_v8),
		cmocka_unit_test(test_random_v4_v16_v24),
		cmocka_unit_test(test_random_huge_keys),
		cmocka_unit_test(test_random_two_level),
		cmocka_unit_test(test_fill_then_drain),
		cmocka_unit_test(test_boundaries),
		cmocka_unit_test(test_three_levels),
		cmocka_unit_test(test_shared_roots),
		cmocka_unit_test(test_two_level_snapshots),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
