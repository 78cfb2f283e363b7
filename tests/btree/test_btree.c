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
		w->trees[t].committed_root = w->trees[t].root;
	}
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
	fprintf(stderr, "  %llu ops, %llu commits, %llu aborts, %llu reopens\n",
		(unsigned long long)w->ops, (unsigned long long)w->commits,
		(unsigned long long)w->aborts, (unsigned long long)w->reopens);
}

static void random_run(const struct world_opts *o, uint64_t nops)
{
	struct world w;

	world_open(&w, o);
	run_random(&w, nops * test_scale());
	world_close(&w);
}

static void test_random_v8(void **state)
{
	struct world_opts o = { 1, 1, 1, 8, 12000, 0, 3, 8192, 1 << 18, "random_v8" };

	random_run(&o, 60000);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_v8),
		cmocka_unit_test(test_random_v4_v16_v24),
		cmocka_unit_test(test_random_huge_keys),
		cmocka_unit_test(test_random_two_level),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
