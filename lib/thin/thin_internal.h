/*
 * Internal API of the thin metadata for the pool runtime (lib/pool), where
 * the public one (libthinp/meta.h) is not enough: batching several changes
 * under one lock acquisition, open counts that make delete refuse an active
 * device, and the "anything to commit?" test for the commit policy.
 *
 * The *_locked functions expect the handle's lock held exclusively
 * (thin_meta_lock); they behave exactly like their public twins otherwise
 * (same refusals, same sticky failure).
 */
#ifndef THINP_THIN_THIN_INTERNAL_H
#define THINP_THIN_THIN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <libthinp/meta.h>

/* Take / drop the handle's lock exclusively. thin_meta_lock refuses with
 * -EROFS when the handle is not read-write. */
int thin_meta_lock(thinp_meta *meta);
void thin_meta_unlock(thinp_meta *meta);

int thin_insert_locked(thinp_meta *meta, uint64_t dev, uint64_t vblock, uint64_t data_block,
		       uint32_t time);
int thin_remove_locked(thinp_meta *meta, uint64_t dev, uint64_t vblock);
int thin_remove_range_locked(thinp_meta *meta, uint64_t dev, uint64_t begin, uint64_t end,
			     uint64_t *nr_removed);
int thin_alloc_data_block_locked(thinp_meta *meta, uint64_t *out);
/* The pool's current time (for thin_insert_locked). */
uint32_t thin_time_locked(thinp_meta *meta);

/* Open counts: while a device is open, thinp_meta_delete() and the delete
 * message return -EBUSY (the kernel refuses to delete an active thin).
 * thin_device_open returns -ENODATA for a missing device. Both take the
 * lock themselves: call them without it. Open counts survive abort. */
int thin_device_open(thinp_meta *meta, uint64_t dev);
void thin_device_close(thinp_meta *meta, uint64_t dev);

/* True when the handle has changes not yet committed. */
bool thin_meta_dirty(thinp_meta *meta);

#endif
