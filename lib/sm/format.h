/*
 * On-disk structures of the dm space maps (FORMAT.md section 6), declared
 * once. Everything is little-endian and reached only through le32/le64
 * conversions; the logic works on the host-order mirrors (struct index_entry,
 * struct sm_root_info).
 */
#ifndef THINP_SM_FORMAT_H
#define THINP_SM_FORMAT_H

#include "os/os.h"

#include "util/compiler.h"
#include "util/endian.h"

#define SM_BITMAP_SALT 240779u         /* bitmap blocks */
#define SM_INDEX_SALT 160478u          /* the metadata space map's index block */
#define SM_ENTRIES_PER_BITMAP 16320u   /* (4096 - 16) * 4 two-bit entries */
#define SM_METADATA_MAX_INDEXES 255u   /* index entries in the index block */
#define SM_METADATA_MAX_BLOCKS (255ull * 16320ull)
#define SM_ROOT_SIZE 32u

struct disk_sm_root {
	le64 nr_blocks;
	le64 nr_allocated;
	le64 bitmap_root;
	le64 ref_count_root;
} THINP_PACKED;
_Static_assert(sizeof(struct disk_sm_root) == SM_ROOT_SIZE, "sm root is 32 bytes");

struct disk_index_entry {
	le64 blocknr;
	le32 nr_free;
	le32 none_free_before;
} THINP_PACKED;
_Static_assert(sizeof(struct disk_index_entry) == 16, "index entry is 16 bytes");

struct disk_bitmap_header {
	le32 csum;
	le32 not_used;
	le64 blocknr;
} THINP_PACKED;
_Static_assert(sizeof(struct disk_bitmap_header) == 16, "bitmap header is 16 bytes");

struct disk_metadata_index {
	le32 csum;
	le32 padding;
	le64 blocknr;
	struct disk_index_entry index[SM_METADATA_MAX_INDEXES];
} THINP_PACKED;
_Static_assert(sizeof(struct disk_metadata_index) == 4096, "index block is one block");

/* Host-order mirrors. */
struct index_entry {
	uint64_t blocknr;
	uint32_t nr_free;
	uint32_t none_free_before;
};

struct sm_root_info {
	uint64_t nr_blocks;
	uint64_t nr_allocated;
	uint64_t bitmap_root;
	uint64_t ref_count_root;
};

void index_entry_unpack(const struct disk_index_entry *d, struct index_entry *ie);
void index_entry_pack(const struct index_entry *ie, struct disk_index_entry *d);
void sm_root_pack(const struct sm_root_info *ri, void *dest);
void sm_root_unpack(const void *src, struct sm_root_info *ri);

#endif
