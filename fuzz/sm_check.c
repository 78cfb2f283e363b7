/*
 * Fuzz target sm_check: open a metadata image in the space-map test format
 * (tests/common/sm_env.h) and run the full reference-count check.
 *
 * The image is a fixed, valid base (built once: formatted, a tree of shared
 * data blocks so counts reach the overflow trees, two commits) patched by the
 * input, so the fuzzer spends its time inside the structures rather than
 * failing checksums:
 *
 *   u8 flags     bit 0: reseal every patched block (recompute its checksum
 *                with the salt its base version carries)
 *   records:     u8 block (mod the image size), u16 offset (le, mod 4096),
 *                u8 len, then len bytes written at block*4096 + offset
 *                (clipped to the block)
 *
 * Must hold: nothing crashes or hangs, every error is an errno; and if the
 * patched image passes the checker, a further transaction (inserts, removes,
 * commit) on it leaves an image that passes again.
 */
#include <errno.h>
#include <string.h>

#include <libthinp/io.h>
#include "common/sm_env.h"
#include "fuzz.h"
#include "util/endian.h"

#define BLK 4096u
#define IMG_BLOCKS 64u

static uint8_t base[IMG_BLOCKS * BLK];
static int base_ready;

static void build_base(void)
{
	struct sm_env e;
	thinp_io *io;
	uint64_t k, b = 0;

	FUZZ_CHECK(thinp_io_open_memory(&io, sizeof(base), 0) == 0);
	FUZZ_CHECK(sm_env_format(&e, io, 2000) == 0);
	for (k = 0; k < 300; k++) {
		if (k % 4 == 3)
			FUZZ_CHECK(sm_inc(e.dsm, b) == 0); /* share: counts up to 4 */
		else
			FUZZ_CHECK(sm_new_block(e.dsm, &b) == 0);
		FUZZ_CHECK(sm_env_insert(&e, k * 7, b) == 0);
	}
	FUZZ_CHECK(sm_env_commit(&e) == 0);
	for (k = 0; k < 300; k += 5)
		FUZZ_CHECK(sm_env_remove(&e, k * 7) == 0);
	FUZZ_CHECK(sm_env_commit(&e) == 0);
	FUZZ_CHECK(sm_env_check(&e, NULL, NULL, NULL) == 0);
	sm_env_close(&e);
	FUZZ_CHECK(thinp_io_read(io, base, sizeof(base), 0, 0) == 0);
	thinp_io_close(io);
	base_ready = 1;
}

/* The salt of a block as written: stored csum XOR the checksum with salt 0. */
static void reseal(uint8_t *img, uint64_t b)
{
	uint8_t *orig = base + b * BLK, *p = img + b * BLK;
	uint32_t salt = load_le32(orig) ^ block_csum(orig, 0);

	store_le32(p, block_csum(p, salt));
}

static void apply(uint8_t *img, const uint8_t *data, size_t size, uint8_t *patched)
{
	size_t i = 1;

	while (i + 4 <= size) {
		uint64_t b = data[i] % IMG_BLOCKS;
		unsigned off = (data[i + 1] | data[i + 2] << 8) % BLK, len = data[i + 3];

		i += 4;
		if (len > size - i)
			len = (unsigned)(size - i);
		if (len > BLK - off)
			len = BLK - off;
		memcpy(img + b * BLK + off, data + i, len);
		patched[b] = 1;
		i += len;
	}
}

/* A transaction on an image that passed the check must keep it passing
 * (or run out of space cleanly). */
static void transact(thinp_io *io)
{
	struct sm_env e;
	uint64_t k, b, inserted = 0;
	int r = sm_env_open(&e, io, false);

	FUZZ_CHECK(r == 0);
	for (k = 1; !r && k < 40; k++) {
		r = sm_new_block(e.dsm, &b);
		if (!r)
			r = sm_env_insert(&e, k * 13 + 1, b);
		if (!r)
			inserted = k;
	}
	FUZZ_CHECK(r == 0 || r == -ENOSPC);
	for (k = 1; r == 0 && k <= inserted; k += 3) {
		r = sm_env_remove(&e, k * 13 + 1);
		FUZZ_CHECK(r == 0 || r == -ENOSPC);
	}
	if (!r) {
		r = sm_env_commit(&e);
		FUZZ_CHECK(r == 0 || r == -ENOSPC);
	}
	if (!r)
		FUZZ_CHECK(sm_env_check(&e, NULL, NULL, NULL) == 0);
	sm_env_close(&e);
}

int fuzz_one(const uint8_t *data, size_t size)
{
	static uint8_t img[IMG_BLOCKS * BLK];
	uint8_t patched[IMG_BLOCKS] = { 0 };
	struct sm_env e;
	thinp_io *io;
	uint64_t b;
	int r;

	if (size < 1)
		return -1;
	if (!base_ready)
		build_base();
	memcpy(img, base, sizeof(img));
	apply(img, data, size, patched);
	for (b = 0; (data[0] & 1) && b < IMG_BLOCKS; b++)
		if (patched[b])
			reseal(img, b);
	FUZZ_CHECK(thinp_io_open_memory(&io, sizeof(img), 0) == 0);
	FUZZ_CHECK(thinp_io_write(io, img, sizeof(img), 0, 0) == 0);
	r = sm_env_open(&e, io, true);
	if (r == 0)
		r = sm_env_check(&e, NULL, NULL, NULL);
	FUZZ_CHECK(r <= 0);
	sm_env_close(&e);
	if (r == 0)
		transact(io);
	thinp_io_close(io);
	return 0;
}
