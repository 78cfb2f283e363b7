/*
 * Construction of the two space maps (lib/sm) for the thin metadata: kept in
 * one file so that the rest of lib/thin sees them only through the abstract
 * space_map vtable.
 */
#include "sm/disk.h"
#include "sm/metadata.h"
#include "thin/meta_internal.h"

/* The metadata space map covers the whole used device; block 0 (the
 * superblock) is counted by it, everything else it places after block 0. */
int thin_sm_metadata_create(struct tx_manager *tm, uint64_t nr_blocks, struct space_map **out)
{
	return sm_metadata_create(tm, nr_blocks, THIN_SUPERBLOCK_LOCATION, out);
}

int thin_sm_metadata_open(struct tx_manager *tm, const void *root, size_t len,
			  struct space_map **out)
{
	return sm_metadata_open(tm, root, len, out);
}

int thin_sm_disk_create(struct tx_manager *tm, uint64_t nr_blocks, struct space_map **out)
{
	return sm_disk_create(tm, nr_blocks, out);
}

int thin_sm_disk_open(struct tx_manager *tm, const void *root, size_t len, struct space_map **out)
{
	return sm_disk_open(tm, root, len, out);
}
