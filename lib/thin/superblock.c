/*
 * The dm-thin superblock: encoding, the block validator and the field checks.
 *
 * The superblock is the only block at a fixed place and the root of
 * everything else, so it is checked harder than the kernel does: besides the
 * checksum and location, the magic, the version, the feature flags, the block
 * size and every root pointer are bounded before anything follows them.
 * Metadata-snapshot copies use the same layout and salt; they differ only in
 * their own location and in having zeroed space-map roots (FORMAT.md 9).
 */
#include "os/os.h"

#include <libthinp/meta.h>
#include "block/bm.h"
#include "thin/format.h"

static void sb_prepare(const struct validator *v, void *data, uint64_t blocknr)
{
	thin_sb_seal(data, blocknr);
}

static int sb_check(const struct validator *v, const void *data, uint64_t blocknr,
		    const char **why)
{
	const struct thin_disk_superblock *d = data;

	if (load_le32(&d->csum) != block_csum(data, THIN_SUPERBLOCK_CSUM_SALT)) {
		*why = "superblock checksum mismatch";
		return -EILSEQ;
	}
	if (load_le64(&d->blocknr) != blocknr) {
		*why = "superblock records a different location";
		return -ENOTBLK;
	}
	return 0;
}

const struct validator thin_sb_validator = {
	.name = "superblock",
	.prepare_for_write = sb_prepare,
	.check = sb_check,
};

void thin_sb_seal(void *block, uint64_t blocknr)
{
	struct thin_disk_superblock *d = block;

	d->blocknr = cpu_to_le64(blocknr);
	d->csum = cpu_to_le32(block_csum(block, THIN_SUPERBLOCK_CSUM_SALT));
}

bool thin_block_is_zero(const void *block)
{
	const uint64_t *w = block;
	size_t i;

	for (i = 0; i < THINP_BLOCK_SIZE / sizeof(*w); i++)
		if (w[i])
			return false;
	return true;
}

void thin_sb_decode(const void *block, struct thin_sb *sb)
{
	const struct thin_disk_superblock *d = block;

	memset(sb, 0, sizeof(*sb));
	sb->flags = le32_to_cpu(d->flags);
	sb->blocknr = le64_to_cpu(d->blocknr);
	memcpy(sb->uuid, d->uuid, sizeof(sb->uuid));
	sb->magic = le64_to_cpu(d->magic);
	sb->version = le32_to_cpu(d->version);
	sb->time = le32_to_cpu(d->time);
	sb->trans_id = le64_to_cpu(d->trans_id);
	sb->held_root = le64_to_cpu(d->held_root);
	memcpy(sb->data_sm_root, d->data_space_map_root, THIN_SM_ROOT_SIZE);
	memcpy(sb->metadata_sm_root, d->metadata_space_map_root, THIN_SM_ROOT_SIZE);
	sb->data_mapping_root = le64_to_cpu(d->data_mapping_root);
	sb->device_details_root = le64_to_cpu(d->device_details_root);
	sb->data_block_size = le32_to_cpu(d->data_block_size);
	sb->metadata_block_size = le32_to_cpu(d->metadata_block_size);
	sb->metadata_nr_blocks = le64_to_cpu(d->metadata_nr_blocks);
	sb->compat_flags = le32_to_cpu(d->compat_flags);
	sb->compat_ro_flags = le32_to_cpu(d->compat_ro_flags);
	sb->incompat_flags = le32_to_cpu(d->incompat_flags);
}

void thin_sb_encode(const struct thin_sb *sb, void *block)
{
	struct thin_disk_superblock *d = block;

	/* The whole block is covered by the checksum: no stale bytes. */
	memset(block, 0, THINP_BLOCK_SIZE);
	d->flags = cpu_to_le32(sb->flags);
	d->blocknr = cpu_to_le64(sb->blocknr);
	memcpy(d->uuid, sb->uuid, sizeof(d->uuid));
	d->magic = cpu_to_le64(THIN_SUPERBLOCK_MAGIC);
	d->version = cpu_to_le32(sb->version);
	d->time = cpu_to_le32(sb->time);
	d->trans_id = cpu_to_le64(sb->trans_id);
	d->held_root = cpu_to_le64(sb->held_root);
	memcpy(d->data_space_map_root, sb->data_sm_root, THIN_SM_ROOT_SIZE);
	memcpy(d->metadata_space_map_root, sb->metadata_sm_root, THIN_SM_ROOT_SIZE);
	d->data_mapping_root = cpu_to_le64(sb->data_mapping_root);
	d->device_details_root = cpu_to_le64(sb->device_details_root);
	d->data_block_size = cpu_to_le32(sb->data_block_size);
	d->metadata_block_size = cpu_to_le32(sb->metadata_block_size);
	d->metadata_nr_blocks = cpu_to_le64(sb->metadata_nr_blocks);
	d->compat_flags = cpu_to_le32(sb->compat_flags);
	d->compat_ro_flags = cpu_to_le32(sb->compat_ro_flags);
	d->incompat_flags = cpu_to_le32(sb->incompat_flags);
}

void thin_sm_root_decode(const uint8_t *raw, uint64_t *nr_blocks, uint64_t *nr_allocated,
			 uint64_t *bitmap_root, uint64_t *ref_count_root)
{
	const struct thin_disk_sm_root *r = (const void *)raw;

	*nr_blocks = load_le64(&r->nr_blocks);
	*nr_allocated = load_le64(&r->nr_allocated);
	*bitmap_root = load_le64(&r->bitmap_root);
	*ref_count_root = load_le64(&r->ref_count_root);
}

static bool data_block_size_ok(uint32_t s)
{
	return s >= 128 && s <= 2097152 && s % 128 == 0;
}

/* A root pointer must name a real block other than the superblock. */
static bool root_ok(uint64_t b, uint64_t nr_meta_blocks)
{
	return b != THIN_SUPERBLOCK_LOCATION && (!nr_meta_blocks || b < nr_meta_blocks);
}

static int check_sm_roots(const struct thin_sb *sb, uint64_t *nr_meta, const char **why)
{
	uint64_t nr, alloc, bitmap, rc;

	thin_sm_root_decode(sb->metadata_sm_root, &nr, &alloc, &bitmap, &rc);
	if (nr == 0 || nr > 4161600ull) {
		*why = "metadata space map size out of range";
		return -EILSEQ;
	}
	if (alloc > nr || !root_ok(bitmap, nr) || !root_ok(rc, nr)) {
		*why = "metadata space map root out of range";
		return -EILSEQ;
	}
	*nr_meta = nr;
	thin_sm_root_decode(sb->data_sm_root, &nr, &alloc, &bitmap, &rc);
	if (nr > (1ull << 40) || alloc > nr || !root_ok(bitmap, *nr_meta) ||
	    !root_ok(rc, *nr_meta)) {
		*why = "data space map root out of range";
		return -EILSEQ;
	}
	return 0;
}

int thin_sb_check_fields(const struct thin_sb *sb, uint64_t location, bool snapshot,
			 bool read_write, uint64_t nr_meta_blocks, const char **why)
{
	int r;

	if (sb->blocknr != location) {
		*why = "superblock records a different location";
		return -EILSEQ;
	}
	if (sb->magic != THIN_SUPERBLOCK_MAGIC) {
		*why = "bad superblock magic (not a dm-thin pool)";
		return -EILSEQ;
	}
	if (sb->incompat_flags) {
		*why = "unknown incompatible feature flags: refusing to open";
		return -EOPNOTSUPP;
	}
	if (sb->compat_ro_flags && read_write) {
		*why = "unknown read-only-compatible feature flags: read-only open only";
		return -EOPNOTSUPP;
	}
	if (sb->version < THIN_VERSION_MIN || sb->version > THIN_VERSION_MAX) {
		*why = "unsupported superblock version (not 1 or 2)";
		return -EILSEQ;
	}
	if (sb->flags & ~THIN_FLAG_NEEDS_CHECK) {
		*why = "unknown superblock flag bits";
		return -EILSEQ;
	}
	/* Mappings store the time in 24 bits: a later clock cannot be used. */
	if (sb->time > THINP_META_MAX_TIME) {
		*why = "pool time exceeds 24 bits";
		return -EILSEQ;
	}
	if (!data_block_size_ok(sb->data_block_size)) {
		*why = "data block size out of range (128..2097152 sectors, multiple of 128)";
		return -EILSEQ;
	}
	if (!snapshot) {
		r = check_sm_roots(sb, &nr_meta_blocks, why);
		if (r)
			return r;
	}
	if (!root_ok(sb->data_mapping_root, nr_meta_blocks) ||
	    !root_ok(sb->device_details_root, nr_meta_blocks)) {
		*why = "mapping or details root out of range";
		return -EILSEQ;
	}
	if (sb->held_root && (snapshot || !root_ok(sb->held_root, nr_meta_blocks))) {
		*why = snapshot ? "metadata snapshot holds another snapshot"
				: "held metadata snapshot root out of range";
		return -EILSEQ;
	}
	return 0;
}

void thin_details_decode(const void *raw, struct thin_details *d)
{
	const struct thin_disk_device_details *x = raw;

	d->mapped_blocks = load_le64(&x->mapped_blocks);
	d->transaction_id = load_le64(&x->transaction_id);
	d->creation_time = load_le32(&x->creation_time);
	d->snapshotted_time = load_le32(&x->snapshotted_time);
}

void thin_details_encode(const struct thin_details *d, void *raw)
{
	struct thin_disk_device_details x;

	x.mapped_blocks = cpu_to_le64(d->mapped_blocks);
	x.transaction_id = cpu_to_le64(d->transaction_id);
	x.creation_time = cpu_to_le32(d->creation_time);
	x.snapshotted_time = cpu_to_le32(d->snapshotted_time);
	memcpy(raw, &x, sizeof(x));
}
