/*
 * Hostile input: a committed tree has one node rewritten on the device
 * (bad checksum, wrong location, nr_entries > max_entries, bad max_entries,
 * keys out of order, both or no flags, wrong value size, empty internal
 * node, child pointers to the node's parent, to itself, to block 0 or past
 * the device). Every operation that reaches the node must fail with an
 * error, never crash, hang or read out of bounds (run under ASan with
 * --enable-sanitizers).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/testutil.h"
#include "common/btree_check.h"
#include "common/core_sm.h"
#include "block/bm.h"
#include "btree/btree.h"
#include "btree/node.h"
#include "util/counter.h"
#include "util/endian.h"

#define NR_KEYS 3000
#define META_BLOCKS 1024

struct victim {
	struct tm_env e;
	struct btree_info info;
	uint64_t root, leaf0, leaf1;
};

static int count_nothing(void *ctx, uint64_t key, const void *value)
{
	return 0;
}

static uint64_t child(struct victim *v, uint64_t b, uint32_t i)
{
	struct block *blk;
	uint64_t c;

	assert_int_equal(tm_read_lock(v->e.tm, b, &btree_node_validator, &blk), 0);
	c = node_value64(block_data(blk), i);
	tm_unlock(v->e.tm, blk);
	return c;
}

/* A committed two-level-deep tree: an internal root over leaves. */
static void build(struct victim *v)
{
	uint8_t val[8];
	uint64_t k;

	assert_int_equal(tm_env_open(&v->e, META_BLOCKS, 0), 0);
	v->info.tm = v->e.tm;
	v->info.levels = 1;
	v->info.value_type = (struct btree_value_type){ NULL, 8, NULL, NULL, NULL };
	assert_int_equal(btree_empty(&v->info, &v->root), 0);
	for (k = 0; k < NR_KEYS; k++) {
		store_le64(val, k * 3);
		assert_int_equal(btree_insert(&v->info, v->root, &k, val, &v->root, NULL), 0);
	}
	assert_int_equal(tm_env_commit(&v->e, &v->root, 1), 0);
	v->leaf0 = child(v, v->root, 0);
	v->leaf1 = child(v, v->root, 1);
}

static void raw_read(struct victim *v, uint64_t b, uint8_t *buf)
{
	assert_int_equal(thinp_io_read(v->e.io, buf, THINP_BLOCK_SIZE, b * THINP_BLOCK_SIZE, 0), 0);
}

/* Write buf at b, resealing the checksum unless told not to, and drop
 * every cached block. */
static void raw_write(struct victim *v, uint64_t b, uint8_t *buf, bool reseal)
{
	if (reseal)
		store_le32(buf, block_csum(buf, BTREE_CSUM_SALT));
	assert_int_equal(thinp_io_write(v->e.io, buf, THINP_BLOCK_SIZE, b * THINP_BLOCK_SIZE, 0), 0);
	assert_int_equal(tm_env_reopen(&v->e, NULL, 0), 0);
	v->info.tm = v->e.tm;
}

/* Every operation through `key` fails; nothing crashes. Each changing
 * operation is followed by an abort (it may have shadowed nodes first). */
static void expect_errors(struct victim *v, uint64_t key, const char *what)
{
	struct block_counter *bc;
	uint8_t val[8] = { 0 };
	uint64_t nr, root, k2;
	int r;

	fprintf(stderr, "  %s\n", what);
	assert_true(btree_lookup(&v->info, v->root, &key, val) < 0);
	r = btree_lower_bound(&v->info, v->root, &key, &k2, val);
	assert_true(r < 0 && r != -ENODATA);
	assert_true(btree_walk(&v->info, v->root, count_nothing, NULL) < 0);
	assert_int_equal(block_counter_create(&bc), 0);
	assert_true(btree_count_blocks(&v->info, v->root, bc, count_nothing, NULL) < 0);
	block_counter_destroy(bc);

	assert_true(btree_insert(&v->info, v->root, &key, val, &root, NULL) < 0);
	assert_int_equal(tm_env_abort(&v->e), 0);
	k2 = key + 1;
	assert_true(btree_insert(&v->info, v->root, &k2, val, &root, NULL) < 0);
	assert_int_equal(tm_env_abort(&v->e), 0);
	assert_true(btree_remove(&v->info, v->root, &key, &root) < 0);
	assert_int_equal(tm_env_abort(&v->e), 0);
	assert_true(btree_remove_range(&v->info, v->root, &key, key + 500, &root, &nr) < 0);
	assert_int_equal(tm_env_abort(&v->e), 0);
	assert_true(btree_del(&v->info, v->root) < 0);
	assert_int_equal(tm_env_abort(&v->e), 0);
}

typedef void (*corrupt_fn)(uint8_t *buf, struct victim *v, uint64_t b);

static void flip_byte(uint8_t *buf, struct victim *v, uint64_t b)
{
	buf[300] ^= 0x40;
}
static void wrong_blocknr(uint8_t *buf, struct victim *v, uint64_t b)
{
	store_le64(buf + 8, b + 1);
}
static void nr_over_max(uint8_t *buf, struct victim *v, uint64_t b)
{
	store_le32(buf + 16, load_le32(buf + 20) + 1);
}
static void max_not_multiple_of_3(uint8_t *buf, struct victim *v, uint64_t b)
{
	store_le32(buf + 20, 251);
}
static void max_too_big(uint8_t *buf, struct victim *v, uint64_t b)
{
	store_le32(buf + 20, 300);
}
static void max_unexpected(uint8_t *buf, struct victim *v, uint64_t b)
{
	store_le32(buf + 20, 126); /* multiple of 3, fits, wrong for value size 8 */
}
static void huge_value_size(uint8_t *buf, struct victim *v, uint64_t b)
{
	store_le32(buf + 24, 0xfffffff8u); /* must not wrap the fit check */
}
static void wrong_value_size(uint8_t *buf, struct victim *v, uint64_t b)
{
	store_le32(buf + 24, 16);
	store_le32(buf + 20, 168);
	if (load_le32(buf + 16) > 168)
		store_le32(buf + 16, 168);
}
static void keys_out_of_order(uint8_t *buf, struct victim *v, uint64_t b)
{
	uint64_t k0 = load_le64(buf + 32), k1 = load_le64(buf + 40);

	store_le64(buf + 32, k1);
	store_le64(buf + 40, k0);
}
static void flags_both(uint8_t *buf, struct victim *v, uint64_t b)
{
	store_le32(buf + 4, BTREE_NODE_INTERNAL | BTREE_NODE_LEAF);
}
static void flags_none(uint8_t *buf, struct victim *v, uint64_t b)
{
	store_le32(buf + 4, 0);
}
static void empty_node(uint8_t *buf, struct victim *v, uint64_t b)
{
	store_le32(buf + 16, 0);
}

static void run_case(corrupt_fn fn, bool root, bool reseal, const char *what)
{
	uint8_t buf[THINP_BLOCK_SIZE];
	struct victim v;
	uint64_t b;

	build(&v);
	b = root ? v.root : v.leaf0;
	raw_read(&v, b, buf);
	fn(buf, &v, b);
	raw_write(&v, b, buf, reseal);
	expect_errors(&v, 0, what);
	tm_env_close(&v.e);
}

static void test_header_corruption(void **state)
{
	static const struct {
		corrupt_fn fn;
		bool reseal;
		const char *what;
	} cases[] = {
		{ flip_byte, false, "bad checksum" },
		{ wrong_blocknr, true, "wrong blocknr" },
		{ nr_over_max, true, "nr_entries > max_entries" },
		{ max_not_multiple_of_3, true, "max_entries not a multiple of 3" },
		{ max_too_big, true, "max_entries does not fit" },
		{ max_unexpected, true, "unexpected max_entries" },
		{ huge_value_size, true, "huge value_size" },
		{ wrong_value_size, true, "wrong value_size" },
		{ keys_out_of_order, true, "keys out of order" },
		{ flags_both, true, "both flags" },
		{ flags_none, true, "no flag" },
		{ empty_node, true, "empty node" },
	};
	unsigned i;

	for (i = 0; i < THINP_ARRAY_SIZE(cases); i++) {
		run_case(cases[i].fn, true, cases[i].reseal, cases[i].what);
		run_case(cases[i].fn, false, cases[i].reseal, cases[i].what);
	}
}

/* Point child 0 of the root somewhere hostile. */
static void run_pointer_case(uint64_t (*target)(struct victim *v), const char *what)
{
	uint8_t buf[THINP_BLOCK_SIZE];
	struct victim v;

	build(&v);
	raw_read(&v, v.root, buf);
	store_le64(buf + 32 + 8 * node_max(buf), target(&v));
	raw_write(&v, v.root, buf, true);
	expect_errors(&v, 0, what);
	tm_env_close(&v.e);
}

static uint64_t to_self(struct victim *v)
{
	return v->root;
}
static uint64_t to_superblock(struct victim *v)
{
	return 0;
}
static uint64_t past_device(struct victim *v)
{
	return META_BLOCKS + 5;
}
static uint64_t to_huge(struct victim *v)
{
	return UINT64_MAX;
}
static uint64_t to_free_block(struct victim *v)
{
	return META_BLOCKS - 1;
}

static void test_bad_pointers(void **state)
{
	run_pointer_case(to_self, "child is the root itself (cycle)");
	run_pointer_case(to_superblock, "child is block 0");
	run_pointer_case(past_device, "child past the device");
	run_pointer_case(to_huge, "child UINT64_MAX");
	run_pointer_case(to_free_block, "child is a free, zeroed block");
}

/* A two-node cycle: leaf 0 is replaced by a copy of the root (an internal
 * node whose first child is leaf 0 itself, i.e. the block pointing back). */
static void test_cycle_between_nodes(void **state)
{
	uint8_t buf[THINP_BLOCK_SIZE];
	struct victim v;

	build(&v);
	raw_read(&v, v.root, buf);
	store_le64(buf + 8, v.leaf0);
	raw_write(&v, v.leaf0, buf, true);
	expect_errors(&v, 0, "cycle root -> leaf0 -> leaf0 ...");
	tm_env_close(&v.e);

	/* Every child of the root is the same leaf: a DAG, not a tree. */
	build(&v);
	raw_read(&v, v.root, buf);
	for (uint32_t i = 0; i < node_nr(buf); i++)
		store_le64(buf + 32 + 8 * node_max(buf) + 8 * i, v.leaf1);
	raw_write(&v, v.root, buf, true);
	{
		struct block_counter *bc;
		uint64_t root;

		fprintf(stderr, "  every child the same leaf\n");
		assert_true(btree_walk(&v.info, v.root, count_nothing, NULL) < 0);
		assert_int_equal(block_counter_create(&bc), 0);
		assert_true(btree_count_blocks(&v.info, v.root, bc, NULL, NULL) < 0);
		block_counter_destroy(bc);
		assert_true(btree_del(&v.info, v.root) < 0);
		assert_int_equal(tm_env_abort(&v.e), 0);
		/* Inserting below keeps working or fails; it must not crash. */
		for (uint64_t k = 0; k < 2000; k += 7) {
			uint8_t val[8] = { 0 };

			if (btree_insert(&v.info, v.root, &k, val, &root, NULL) < 0)
				break;
			v.root = root;
		}
		assert_int_equal(tm_env_abort(&v.e), 0);
	}
	tm_env_close(&v.e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_corruption),
		cmocka_unit_test(test_bad_pointers),
		cmocka_unit_test(test_cycle_between_nodes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
