/*
 * meta_check: a real dm-thin metadata image, patched by the input, then fully
 * checked, opened and walked (lib/thin).
 *
 * The base image is built once with the public API: devices with enough
 * mappings for internal nodes, a snapshot sharing a subtree, broken sharing,
 * and a held metadata snapshot, so every tree kind and the snapshot copy are
 * there to corrupt. The input is a list of 4-byte patches
 *     [block | 0x80 reseal] [offset lo] [offset hi] [xor value]
 * applied to the image. With the reseal bit the block's checksum is
 * recomputed with the block's own salt (recovered from its original checksum),
 * so the corruption reaches the structure checks behind the checksum.
 *
 * What must hold: the checker never crashes and answers with a documented
 * error; the unpatched image is clean; and an image the checker calls clean
 * (warnings allowed) opens, walks, and takes a transaction that leaves it
 * clean, or, if it is nearly full, fails it with -ENOSPC and stays clean.
 */
#include <errno.h>
#include <string.h>

#include <libthinp/meta.h>
#include "block/bm.h"
#include "thin/pool_iface.h"
#include "fuzz.h"
#include "util/endian.h"

#define IMG_BLOCKS 64u
#define BLK THINP_BLOCK_SIZE

static uint8_t base[IMG_BLOCKS * BLK];
static int base_ready;

static void map_range(thinp_meta *m, uint64_t dev, uint64_t begin, uint64_t n)
{
	for (uint64_t v = begin; v < begin + n; v++) {
		uint64_t b;

		FUZZ_CHECK(thin_alloc_data_block_locked(m, &b) == 0);
		FUZZ_CHECK(thin_insert_run_locked(m, dev, &v, &b, 1) == 0);
	}
}

static void build_base(void)
{
	thinp_meta_format_params p = THINP_META_FORMAT_PARAMS_INIT;
	thinp_meta *m;
	thinp_io *io;

	p.nr_data_blocks = 2000;
	FUZZ_CHECK(thinp_io_open_memory(&io, sizeof(base), 0) == 0);
	FUZZ_CHECK(thinp_meta_format(&m, io, &p, NULL) == 0);
	FUZZ_CHECK(thinp_meta_create_thin(m, 0) == 0);
	map_range(m, 0, 0, 600); /* three leaves and an internal node */
	FUZZ_CHECK(thinp_meta_commit(m) == 0);
	FUZZ_CHECK(thin_create_snap_locked(m, 1, 0) == 0);
	map_range(m, 0, 10, 5); /* breaks sharing of one leaf */
	FUZZ_CHECK(thin_reserve_metadata_snap_locked(m) == 0);
	FUZZ_CHECK(thinp_meta_create_thin(m, 7) == 0);
	map_range(m, 7, 1000, 20);
	FUZZ_CHECK(thinp_meta_commit(m) == 0);
	thinp_meta_close(m);
	FUZZ_CHECK(thinp_io_read(io, base, sizeof(base), 0) == 0);
	thinp_io_close(io);
	base_ready = 1;
}

static void apply(uint8_t *img, const uint8_t *data, size_t size)
{
	for (size_t i = 0; i + 4 <= size; i += 4) {
		uint8_t *blk = img + (uint64_t)(data[i] & 0x7f) % IMG_BLOCKS * BLK;
		size_t off = (data[i + 1] | (size_t)data[i + 2] << 8) % BLK;
		/* salt = stored checksum ^ the unsalted checksum of the contents */
		uint32_t salt = load_le32(blk) ^ block_csum(blk, 0);

		blk[off] ^= data[i + 3];
		if (data[i] & 0x80)
			store_le32(blk, block_csum(blk, salt));
	}
}

static int count_run(const thinp_meta_run *run, void *ctx)
{
	*(uint64_t *)ctx += run->length;
	return 0;
}

static int walk_device(const thinp_meta_device *dev, void *ctx)
{
	thinp_meta *m = ((void **)ctx)[0];
	uint64_t source = *(uint64_t *)((void **)ctx)[1];
	uint64_t n = 0;

	FUZZ_CHECK(thinp_meta_walk_mappings(m, source, dev->dev_id, count_run, &n) == 0);
	FUZZ_CHECK(n == dev->mapped_blocks);
	return 0;
}

/* Walk every device's mappings in the live metadata and the held snapshot. */
static void walk_all(thinp_meta *m, uint64_t *sources)
{
	for (size_t i = 0; i < 2; i++) {
		void *ctx[2] = { m, &sources[i] };
		int r = thinp_meta_walk_devices(m, sources[i], walk_device, ctx);

		FUZZ_CHECK(r == 0 || (r == -ENODATA && sources[i] == THINP_META_HELD_ROOT));
	}
}

/* A new device with three mappings, committed. */
static int transact(thinp_meta *m)
{
	uint64_t v, b;
	int r = thinp_meta_create_thin(m, 4242);

	for (v = 0; !r && v < 3; v++) {
		r = thin_alloc_data_block_locked(m, &b);
		if (!r)
			r = thin_insert_run_locked(m, 4242, &v, &b, 1);
	}
	return r ? r : thinp_meta_commit(m);
}

/* A clean pool may be too full for the transaction: a space map patched
 * small. Then it must fail with -ENOSPC, and only then; the transaction
 * needs far fewer blocks than this. */
static bool nearly_full(thinp_meta *m)
{
	thinp_meta_status st = THINP_META_STATUS_INIT;

	FUZZ_CHECK(thinp_meta_get_status(m, &st) == 0);
	return st.free_metadata_blocks < 32 || st.total_data_blocks - st.used_data_blocks < 3;
}

/* A clean image must open, walk (live and held), and stay clean after a
 * transaction (or a clean -ENOSPC), unless it carries compat_ro feature
 * flags: then it opens read-only only, as in the kernel. */
static void use_clean_image(thinp_io *io)
{
	uint64_t sources[] = { THINP_META_LIVE, THINP_META_HELD_ROOT };
	thinp_meta *m;
	bool full;
	int r = thinp_meta_open(&m, io, NULL);

	if (r == -EOPNOTSUPP) {
		thinp_meta_options ro = THINP_META_OPTIONS_INIT;

		ro.flags = THINP_META_RDONLY;
		FUZZ_CHECK(thinp_meta_open(&m, io, &ro) == 0);
		walk_all(m, sources);
		thinp_meta_close(m);
		return;
	}
	FUZZ_CHECK(r == 0);
	walk_all(m, sources);
	full = nearly_full(m);
	r = transact(m);
	FUZZ_CHECK(r == 0 || (r == -ENOSPC && full));
	thinp_meta_close(m);
	FUZZ_CHECK(thinp_meta_check_io(io, NULL, NULL, NULL) == 0);
}

int fuzz_one(const uint8_t *data, size_t size)
{
	static uint8_t img[IMG_BLOCKS * BLK];
	thinp_io *io;
	int r;

	if (!base_ready)
		build_base();
	memcpy(img, base, sizeof(img));
	apply(img, data, size);
	FUZZ_CHECK(thinp_io_open_memory(&io, sizeof(img), 0) == 0);
	FUZZ_CHECK(thinp_io_write(io, img, sizeof(img), 0) == 0);
	r = thinp_meta_check_io(io, NULL, NULL, NULL);
	FUZZ_CHECK(r == 0 || r == -EILSEQ || r == -ENOTBLK || r == -ENODATA ||
		   r == -EOPNOTSUPP || r == -EINVAL);
	if (size < 4)
		FUZZ_CHECK(r == 0); /* nothing patched: the base image is clean */
	if (r == 0)
		use_clean_image(io);
	thinp_io_close(io);
	return 0;
}
