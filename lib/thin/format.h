/*
 * dm-thin on-disk structures owned by the thin metadata layer (FORMAT.md
 * sections 3 and 5): the superblock, the device-details value and the packed
 * mapping value. Declared once, packed, little-endian wrapper types; code
 * converts at the boundary and never uses the raw fields in logic.
 */
#ifndef THINP_THIN_FORMAT_H
#define THINP_THIN_FORMAT_H

#include "os/os.h"

#include "util/compiler.h"
#include "util/endian.h"

#define THIN_SUPERBLOCK_LOCATION 0
#define THIN_SUPERBLOCK_MAGIC 27022010ull
#define THIN_SUPERBLOCK_CSUM_SALT 160774u
#define THIN_BTREE_CSUM_SALT 121107u
#define THIN_BITMAP_CSUM_SALT 240779u
#define THIN_INDEX_CSUM_SALT 160478u
#define THIN_VERSION_MIN 1u
#define THIN_VERSION_MAX 2u
#define THIN_VERSION_WRITTEN 2u
#define THIN_METADATA_BLOCK_SECTORS 8u
#define THIN_SM_ROOT_AREA 128u
#define THIN_SM_ROOT_SIZE 32u
/* The kernel warns when the metadata device exceeds 16 GiB. */
#define THIN_METADATA_WARN_BYTES (16ull << 30)
/* Below this a pool cannot even hold its empty trees and one transaction. */
#define THIN_METADATA_MIN_BLOCKS 16u
#define THIN_FLAG_NEEDS_CHECK 1u

/* Superblock, block 0 (FORMAT.md 3.1). 364 meaningful bytes. */
struct thin_disk_superblock {
	le32 csum;
	le32 flags;
	le64 blocknr;
	uint8_t uuid[16];
	le64 magic;
	le32 version;
	le32 time;
	le64 trans_id;
	le64 held_root;
	uint8_t data_space_map_root[THIN_SM_ROOT_AREA];
	uint8_t metadata_space_map_root[THIN_SM_ROOT_AREA];
	le64 data_mapping_root;
	le64 device_details_root;
	le32 data_block_size;
	le32 metadata_block_size;
	le64 metadata_nr_blocks;
	le32 compat_flags;
	le32 compat_ro_flags;
	le32 incompat_flags;
} THINP_PACKED;
_Static_assert(sizeof(struct thin_disk_superblock) == 364, "superblock layout");

/* Space-map root, first 32 bytes of each 128-byte area (FORMAT.md 6.1). */
struct thin_disk_sm_root {
	le64 nr_blocks;
	le64 nr_allocated;
	le64 bitmap_root;
	le64 ref_count_root;
} THINP_PACKED;
_Static_assert(sizeof(struct thin_disk_sm_root) == THIN_SM_ROOT_SIZE, "sm root layout");

/* Device details value (FORMAT.md 5.1). */
struct thin_disk_device_details {
	le64 mapped_blocks;
	le64 transaction_id;
	le32 creation_time;
	le32 snapshotted_time;
} THINP_PACKED;
_Static_assert(sizeof(struct thin_disk_device_details) == 24, "details layout");

/* Mapping value: 40-bit data block, 24-bit time (FORMAT.md 5.3). */
#define THIN_TIME_BITS 24
#define THIN_TIME_MASK ((1u << THIN_TIME_BITS) - 1)
#define THIN_MAX_DATA_BLOCK ((1ull << 40) - 1)

static inline uint64_t thin_pack_mapping(uint64_t data_block, uint32_t time)
{
	return (data_block << THIN_TIME_BITS) | (time & THIN_TIME_MASK);
}

static inline uint64_t thin_mapping_block(uint64_t v)
{
	return v >> THIN_TIME_BITS;
}

static inline uint32_t thin_mapping_time(uint64_t v)
{
	return (uint32_t)(v & THIN_TIME_MASK);
}

/* Superblock fields in CPU order, as the handle keeps them between commits. */
struct thin_sb {
	uint32_t flags;
	uint64_t blocknr;
	uint8_t uuid[16];
	uint64_t magic; /* decoded for checking; always written as THIN_SUPERBLOCK_MAGIC */
	uint32_t version;
	uint32_t time;
	uint64_t trans_id;
	uint64_t held_root;
	uint8_t data_sm_root[THIN_SM_ROOT_SIZE];
	uint8_t metadata_sm_root[THIN_SM_ROOT_SIZE];
	uint64_t data_mapping_root;
	uint64_t device_details_root;
	uint32_t data_block_size;
	uint32_t metadata_block_size;
	uint64_t metadata_nr_blocks;
	uint32_t compat_flags;
	uint32_t compat_ro_flags;
	uint32_t incompat_flags;
};

struct tlog;
struct validator;

/* The superblock validator: checksum with its salt and blocknr. */
extern const struct validator thin_sb_validator;

/* Decode a 4096-byte superblock image (no checks). */
void thin_sb_decode(const void *block, struct thin_sb *sb);
/* Encode into a 4096-byte image: zeroes the rest, leaves csum/blocknr to the
 * validator's prepare_for_write (or thin_sb_seal). */
void thin_sb_encode(const struct thin_sb *sb, void *block);
/* Stamp blocknr and checksum, as the validator does before a write. */
void thin_sb_seal(void *block, uint64_t blocknr);
/* True when every byte of the block is zero (an unformatted device). */
bool thin_block_is_zero(const void *block);

/*
 * Validate a decoded superblock's fields (everything but the checksum, which
 * the validator checked). `snapshot` relaxes what a metadata-snapshot copy
 * legitimately differs in (its blocknr, zeroed space-map roots). Root
 * pointers are bounded by nr_meta_blocks (for a snapshot, the live metadata
 * size; for the live superblock, 0 = take it from its own metadata sm root).
 * Returns 0, -EILSEQ with *why set, or -EOPNOTSUPP for feature flags.
 */
int thin_sb_check_fields(const struct thin_sb *sb, uint64_t location, bool snapshot,
			 bool read_write, uint64_t nr_meta_blocks, const char **why);

/* Sm-root accessors. */
void thin_sm_root_decode(const uint8_t *raw, uint64_t *nr_blocks, uint64_t *nr_allocated,
			 uint64_t *bitmap_root, uint64_t *ref_count_root);

/* Device details in CPU order. */
struct thin_details {
	uint64_t mapped_blocks;
	uint64_t transaction_id;
	uint32_t creation_time;
	uint32_t snapshotted_time;
};

void thin_details_decode(const void *raw, struct thin_details *d);
void thin_details_encode(const struct thin_details *d, void *raw);

#endif
