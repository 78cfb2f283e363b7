/* Bitmap encoding (FORMAT.md 6.2), search, and the space-map validators,
 * on raw 4096-byte buffers. */
#include <errno.h>
#include <string.h>

#include "common/testutil.h"
#include "block/bm.h"
#include "sm/bitmap.h"

static uint8_t blk[4096];

static void test_encoding_matches_format_examples(void **state)
{
	static const unsigned counts[] = { 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 0 };
	static const uint8_t expect[] = { 0xFF, 0xAB, 0x0A, 0x00 };
	unsigned i;

	memset(blk, 0, sizeof(blk));
	for (i = 0; i < THINP_ARRAY_SIZE(counts); i++)
		bitmap_set(blk, i, counts[i]);
	assert_memory_equal(blk + 16, expect, sizeof(expect));
	for (i = 0; i < THINP_ARRAY_SIZE(counts); i++)
		assert_int_equal(bitmap_get(blk, i), counts[i]);

	memset(blk, 0, sizeof(blk));
	for (i = 0; i < 4; i++)
		bitmap_set(blk, i, 1);
	for (i = 4; i < 8; i++)
		bitmap_set(blk, i, 2);
	assert_int_equal(blk[16], 0xAA);
	assert_int_equal(blk[17], 0x55);
	/* The header is never touched by entry writes. */
	for (i = 0; i < 16; i++)
		assert_int_equal(blk[i], 0);
}

static void test_last_entry_is_last_byte(void **state)
{
	memset(blk, 0, sizeof(blk));
	bitmap_set(blk, SM_ENTRIES_PER_BITMAP - 1, 1);
	assert_int_equal(blk[4095], 0x80); /* low bit of the pair at bits 62,63 */
	bitmap_set(blk, SM_ENTRIES_PER_BITMAP - 1, 2);
	assert_int_equal(blk[4095], 0x40);
	assert_int_equal(bitmap_count_used(blk, SM_ENTRIES_PER_BITMAP), 1);
	assert_int_equal(bitmap_count_used(blk, SM_ENTRIES_PER_BITMAP - 1), 0);
}

static void test_random_against_model(void **state)
{
	static uint8_t model[SM_ENTRIES_PER_BITMAP];
	struct test_rng rng;
	unsigned i, n = 200000 * test_scale();
	uint32_t used = 0;

	test_rng_init(&rng, test_seed("bitmap_random"));
	memset(blk, 0, sizeof(blk));
	memset(model, 0, sizeof(model));
	for (i = 0; i < n; i++) {
		uint32_t e = (uint32_t)test_rng_below(&rng, SM_ENTRIES_PER_BITMAP);
		unsigned v = (unsigned)test_rng_below(&rng, 4);

		bitmap_set(blk, e, v);
		model[e] = (uint8_t)v;
		if (i % 1000 == 0) {
			uint32_t lo = (uint32_t)test_rng_below(&rng, SM_ENTRIES_PER_BITMAP);
			uint32_t hi = lo + (uint32_t)test_rng_below(&rng, SM_ENTRIES_PER_BITMAP - lo + 1);
			uint32_t f, j;
			int r = bitmap_find_free(blk, lo, hi, &f);

			for (j = lo; j < hi && model[j]; j++)
				;
			if (j < hi) {
				assert_int_equal(r, 0);
				assert_int_equal(f, j);
			} else {
				assert_int_equal(r, -ENOSPC);
			}
		}
	}
	for (i = 0; i < SM_ENTRIES_PER_BITMAP; i++) {
		assert_int_equal(bitmap_get(blk, i), model[i]);
		used += model[i] != 0;
	}
	assert_int_equal(bitmap_count_used(blk, SM_ENTRIES_PER_BITMAP), used);
}

static void test_find_free_bounds(void **state)
{
	uint32_t e, i;

	memset(blk, 0xFF, sizeof(blk));
	assert_int_equal(bitmap_find_free(blk, 0, SM_ENTRIES_PER_BITMAP, &e), -ENOSPC);
	bitmap_set(blk, 40, 0);
	assert_int_equal(bitmap_find_free(blk, 0, 40, &e), -ENOSPC);
	assert_int_equal(bitmap_find_free(blk, 41, 100, &e), -ENOSPC);
	assert_int_equal(bitmap_find_free(blk, 40, 41, &e), 0);
	assert_int_equal(e, 40);
	assert_int_equal(bitmap_find_free(blk, 33, 64, &e), 0);
	assert_int_equal(e, 40);
	assert_int_equal(bitmap_find_free(blk, 10, 10, &e), -ENOSPC);
	/* An end past the bitmap is clamped, never read past the block. */
	assert_int_equal(bitmap_find_free(blk, 41, 1u << 30, &e), -ENOSPC);
	/* Every value other than 0 is "used". */
	for (i = 1; i < 4; i++) {
		bitmap_set(blk, 40, i);
		assert_int_equal(bitmap_find_free(blk, 0, SM_ENTRIES_PER_BITMAP, &e), -ENOSPC);
	}
}

static void test_validators(void **state)
{
	const char *why = NULL;

	memset(blk, 0, sizeof(blk));
	bitmap_set(blk, 7, 2);
	sm_bitmap_validator.prepare_for_write(&sm_bitmap_validator, blk, 1234);
	assert_int_equal(load_le64(blk + 8), 1234);
	assert_int_equal(load_le32(blk), crc32c_raw(0xFFFFFFFFu, blk + 4, 4092) ^ SM_BITMAP_SALT);
	assert_int_equal(sm_bitmap_validator.check(&sm_bitmap_validator, blk, 1234, &why), 0);
	assert_int_equal(sm_bitmap_validator.check(&sm_bitmap_validator, blk, 1235, &why),
			 -ENOTBLK);
	/* A bitmap is not an index block: the salt tells them apart. */
	assert_int_equal(sm_index_validator.check(&sm_index_validator, blk, 1234, &why), -EILSEQ);
	/* A flipped bit anywhere in bytes 4..4095 (even unused ones) is caught. */
	blk[4095] ^= 1;
	assert_int_equal(sm_bitmap_validator.check(&sm_bitmap_validator, blk, 1234, &why), -EILSEQ);
	assert_non_null(why);
	blk[4095] ^= 1;
	blk[5] = 1; /* not_used is covered by the checksum too */
	assert_int_equal(sm_bitmap_validator.check(&sm_bitmap_validator, blk, 1234, &why), -EILSEQ);

	memset(blk, 0, sizeof(blk));
	sm_index_validator.prepare_for_write(&sm_index_validator, blk, 1);
	assert_int_equal(load_le32(blk), crc32c_raw(0xFFFFFFFFu, blk + 4, 4092) ^ SM_INDEX_SALT);
	assert_int_equal(sm_index_validator.check(&sm_index_validator, blk, 1, &why), 0);
}

static void test_root_and_index_entry_packing(void **state)
{
	struct sm_root_info ri = { 100000, 1011, 4, 5 }, back;
	struct index_entry ie = { 3, 4069, 27 }, ie2;
	struct disk_index_entry d;
	uint8_t raw[32];
	static const uint8_t expect_ie[16] = { 3, 0, 0, 0, 0, 0, 0, 0, 0xE5, 0x0F, 0, 0, 27, 0, 0, 0 };

	sm_root_pack(&ri, raw);
	assert_int_equal(load_le64(raw), 100000);
	assert_int_equal(load_le64(raw + 8), 1011);
	assert_int_equal(load_le64(raw + 16), 4);
	assert_int_equal(load_le64(raw + 24), 5);
	sm_root_unpack(raw, &back);
	assert_memory_equal(&ri, &back, sizeof(ri));
	index_entry_pack(&ie, &d);
	assert_memory_equal(&d, expect_ie, 16);
	index_entry_unpack(&d, &ie2);
	assert_memory_equal(&ie, &ie2, sizeof(ie));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encoding_matches_format_examples),
		cmocka_unit_test(test_last_entry_is_last_byte),
		cmocka_unit_test(test_random_against_model),
		cmocka_unit_test(test_find_free_bounds),
		cmocka_unit_test(test_validators),
		cmocka_unit_test(test_root_and_index_entry_packing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
