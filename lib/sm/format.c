/* Conversions between the on-disk space-map structures and host order. */
#include "os/os.h"

#include "sm/format.h"

void index_entry_unpack(const struct disk_index_entry *d, struct index_entry *ie)
{
	ie->blocknr = le64_to_cpu(d->blocknr);
	ie->nr_free = le32_to_cpu(d->nr_free);
	ie->none_free_before = le32_to_cpu(d->none_free_before);
}

void index_entry_pack(const struct index_entry *ie, struct disk_index_entry *d)
{
	d->blocknr = cpu_to_le64(ie->blocknr);
	d->nr_free = cpu_to_le32(ie->nr_free);
	d->none_free_before = cpu_to_le32(ie->none_free_before);
}

void sm_root_pack(const struct sm_root_info *ri, void *dest)
{
	struct disk_sm_root d = {
		.nr_blocks = cpu_to_le64(ri->nr_blocks),
		.nr_allocated = cpu_to_le64(ri->nr_allocated),
		.bitmap_root = cpu_to_le64(ri->bitmap_root),
		.ref_count_root = cpu_to_le64(ri->ref_count_root),
	};

	memcpy(dest, &d, sizeof(d));
}

void sm_root_unpack(const void *src, struct sm_root_info *ri)
{
	struct disk_sm_root d;

	memcpy(&d, src, sizeof(d));
	ri->nr_blocks = le64_to_cpu(d.nr_blocks);
	ri->nr_allocated = le64_to_cpu(d.nr_allocated);
	ri->bitmap_root = le64_to_cpu(d.bitmap_root);
	ri->ref_count_root = le64_to_cpu(d.ref_count_root);
}
