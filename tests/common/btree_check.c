#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include "common/btree_check.h"
#include "common/core_sm.h"
#include "util/counter.h"
#include "util/endian.h"

static int dv_inc(void *context, const void *values, unsigned count)
{
	struct data_values *dv = context;
	unsigned i;
	int r;

	for (i = 0; i < count; i++) {
		r = sm_inc(dv->data_sm, value_block((const uint8_t *)values + i * dv->value_size,
						     dv->value_size));
		if (r)
			return r;
	}
	return 0;
}

static int dv_dec(void *context, const void *values, unsigned count)
{
	struct data_values *dv = context;
	unsigned i;
	int r;

	for (i = 0; i < count; i++) {
		r = sm_dec(dv->data_sm, value_block((const uint8_t *)values + i * dv->value_size,
						     dv->value_size));
		if (r)
			return r;
	}
	return 0;
}

struct btree_value_type data_value_type(struct data_values *dv)
{
	struct btree_value_type vt = { dv, dv->value_size, NULL, NULL, NULL };

	if (dv->value_size >= 4 && dv->data_sm) {
		vt.inc = dv_inc;
		vt.dec = dv_dec;
	}
	return vt;
}

void make_value(uint8_t *v, uint32_t value_size, uint64_t key, uint32_t data_block)
{
	uint32_t i;

	for (i = 0; i < value_size; i++)
		v[i] = (uint8_t)((key * 31 + data_block * 7 + i * 13) >> (i % 3));
	if (value_size >= 4)
		store_le32(v, data_block);
}

uint32_t value_block(const uint8_t *v, uint32_t value_size)
{
	return value_size >= 4 ? load_le32(v) : 0;
}

struct data_count {
	struct data_values *dv;
	struct block_counter *data;
};

static int count_value(void *ctx, uint64_t key, const void *value)
{
	struct data_count *dc = ctx;

	return block_counter_inc(dc->data, value_block(value, dc->dv->value_size), NULL);
}

uint64_t check_ref_counts(struct tm_env *e, struct btree_info *info, const uint64_t *roots,
			  unsigned nr_roots, struct data_values *dv)
{
	struct block_counter *meta, *data = NULL;
	struct data_count dc;
	uint64_t b, nr_data, used = 0;
	unsigned i;

	assert_int_equal(block_counter_create(&meta), 0);
	assert_int_equal(block_counter_inc(meta, 0, NULL), 0);
	if (dv) {
		assert_int_equal(block_counter_create(&data), 0);
		dc.dv = dv;
		dc.data = data;
	}
	for (i = 0; i < nr_roots; i++)
		assert_int_equal(btree_count_blocks(info, roots[i], meta, dv ? count_value : NULL,
						    &dc), 0);
	for (b = 0; b < e->nr_blocks; b++) {
		uint32_t want = block_counter_get(meta, b), got = core_sm_count(e->sm, b);

		if (want != got)
			fail_msg("metadata block %llu: %u references, space map says %u",
				 (unsigned long long)b, want, got);
		used += b && got;
	}
	if (dv) {
		assert_int_equal(sm_get_nr_blocks(dv->data_sm, &nr_data), 0);
		for (b = 0; b < nr_data; b++) {
			uint32_t want = block_counter_get(data, b);
			uint32_t got = core_sm_count(dv->data_sm, b);

			if (want != got)
				fail_msg("data block %llu: %u references, space map says %u",
					 (unsigned long long)b, want, got);
		}
		block_counter_destroy(data);
	}
	block_counter_destroy(meta);
	return used;
}
