/*
 * Validators of the two block types owned by the space maps. Both share the
 * 16-byte prefix {csum, unused, blocknr} (FORMAT.md 2), so one check serves
 * both; only the salt differs. The unused/padding field is written as 0 but
 * not required on read (neither the kernel nor the tools check it).
 */
#include "os/os.h"

#include "block/bm.h"
#include "sm/bitmap.h"
#include "util/endian.h"

static uint32_t salt_of(const struct validator *v)
{
	return v == &sm_index_validator ? SM_INDEX_SALT : SM_BITMAP_SALT;
}

static void sm_prepare(const struct validator *v, void *data, uint64_t blocknr)
{
	uint8_t *p = data;

	store_le32(p + 4, 0);
	store_le64(p + 8, blocknr);
	store_le32(p, block_csum(data, salt_of(v)));
}

static int sm_check(const struct validator *v, const void *data, uint64_t blocknr,
		    const char **why)
{
	const uint8_t *p = data;

	if (load_le64(p + 8) != blocknr) {
		*why = "blocknr mismatch";
		return -ENOTBLK;
	}
	if (load_le32(p) != block_csum(data, salt_of(v))) {
		*why = "checksum mismatch";
		return -EILSEQ;
	}
	return 0;
}

const struct validator sm_bitmap_validator = {
	.name = "sm_bitmap",
	.prepare_for_write = sm_prepare,
	.check = sm_check,
};

const struct validator sm_index_validator = {
	.name = "sm_index",
	.prepare_for_write = sm_prepare,
	.check = sm_check,
};
