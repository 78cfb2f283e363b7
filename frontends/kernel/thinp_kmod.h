/* Internal interface between the files of the thinp kernel module. */
#ifndef THINP_KMOD_H
#define THINP_KMOD_H

#include <linux/types.h>

#include <libthinp/thinp.h>

/*
 * bdev_io.c: open the block device at @path (exclusively: FMODE_EXCL) as a
 * thinp_io handle, read-only if @rdonly. The handle is thread-safe, aligned
 * to the device's logical block size, with FUA and write-zeroes, and discard
 * when the device has it. thinp_io_close() releases the device.
 * Returns 0, or -ENOMEM and the errors of blkdev_get_by_path (-ENOENT,
 * -ENOTBLK, -EBUSY when someone else holds the device exclusively...).
 * Sleeps: process context only.
 */
int thinp_kmod_bdev_open(thinp_io **out, const char *path, bool rdonly);

struct thinp_volume;

/*
 * volume.c: serve the open thin volume @thin (its size is thinp_thin_size)
 * as the blk-mq disk /dev/thinp<id>, its requests run by work items on @wq
 * (which must be WQ_MEM_RECLAIM: the disk is on the writeback path).
 * @block_size is the pool's data block size, the discard granularity;
 * @rdonly makes the disk read-only (for a volume opened THINP_THIN_RDONLY).
 * On success the volume owns @thin. Returns the volume or an ERR_PTR
 * (-ENOMEM, -EINVAL for a size that is not a multiple of 512, or the block
 * layer's error); on failure @thin stays the caller's.
 */
struct thinp_volume *thinp_volume_create(thinp_thin *thin, struct workqueue_struct *wq,
					 u32 block_size, bool rdonly);

/* Whether someone holds the disk open (a mount, a process). */
bool thinp_volume_busy(struct thinp_volume *vol);

/* The volume's thin id. */
u64 thinp_volume_id(struct thinp_volume *vol);

/* Remove the disk (its requests drained), flush the volume and close its
 * thin handle; returns the flush's result (the volume is gone anyway). */
int thinp_volume_destroy(struct thinp_volume *vol);

/*
 * control.c: the misc device /dev/thinp-control. Each write(2) is one
 * message (at most 255 bytes); its result is the write's: the byte count,
 * or a negative errno. Messages:
 *   open ID [SIZE]   serve thin ID as /dev/thinpID, SIZE bytes (k/m/g/t
 *                    suffixes; default: the size the catalog has for it,
 *                    read-only if its entry says so; -EOPNOTSUPP if the
 *                    entry has an external origin)
 *   close ID         stop serving it (-EBUSY while it is held open)
 * and everything thinp_catalog_message() runs: create_thin ID SIZE,
 * create_snap ID ORIGIN, delete ID, set_transaction_id OLD NEW,
 * reserve_metadata_snap, release_metadata_snap.
 * thinp_control_start registers the device for the pool and catalog (both
 * borrowed until thinp_control_stop); thinp_control_stop unregisters it and
 * destroys every volume still served, returning the first flush error.
 */
int thinp_control_start(thinp_pool *pool, thinp_catalog *cat);
int thinp_control_stop(void);

#endif
