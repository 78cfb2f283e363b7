/* Internal interface between the files of the thinp kernel module. */
#ifndef THINP_KMOD_H
#define THINP_KMOD_H

#include <linux/types.h>

struct thinp_ramdisk;

/*
 * Create and register the block device /dev/<name> of @bytes (a multiple of
 * 512), backed by zeroed kernel memory. Returns the disk or an ERR_PTR
 * (-ENOMEM, -EINVAL, or what the block layer returned).
 */
struct thinp_ramdisk *thinp_ramdisk_create(const char *name, u64 bytes);

/* Unregister the disk (waits for its users' I/O) and free its memory. */
void thinp_ramdisk_destroy(struct thinp_ramdisk *rd);

#endif
