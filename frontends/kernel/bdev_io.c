// SPDX-License-Identifier: GPL-2.0-only
/*
 * A thinp_io backend over a kernel block device, for the pool's metadata and
 * data devices. Bio based and synchronous: reads and writes build bios over
 * the caller's buffer (direct-mapped or vmalloc memory: lib/'s buffers come
 * from kvmalloc) and wait for them with submit_bio_wait; flush is an empty
 * REQ_PREFLUSH bio; FUA is REQ_FUA on writes and a flush after discard and
 * write-zeroes. The device is opened exclusively (FMODE_EXCL), so neither a
 * mount nor a device-mapper table can use it while the pool is open.
 *
 * Calls may run in any thread at once (THINP_IO_CAP_THREADSAFE): each one
 * makes its own bios. They sleep, so never call them in atomic context, and
 * never from a block device's submit path (the module defers its requests
 * to a workqueue for that reason).
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "thinp_kmod.h"

struct bdev_io {
	struct block_device *bdev;
	fmode_t mode;
};

/* The page under a kernel address: vmalloc space (kvmalloc's fallback, and
 * CONFIG_VMAP_STACK stacks) has no linear mapping to translate. */
static struct page *buf_page(const void *p)
{
	return is_vmalloc_addr(p) ? vmalloc_to_page(p) : virt_to_page(p);
}

/* Move len bytes between buf and the device at off with as few bios as
 * BIO_MAX_VECS pages each allow, one after the other. */
static int bdev_rw(struct bdev_io *b, void *buf, u64 len, u64 off, blk_opf_t opf)
{
	u8 *p = buf;
	int r = 0;

	if (is_vmalloc_addr(buf) && op_is_write(opf))
		flush_kernel_vmap_range(buf, len);
	while (len && !r) {
		unsigned int nr = min_t(u64, BIO_MAX_VECS,
					DIV_ROUND_UP(offset_in_page(p) + len, PAGE_SIZE));
		struct bio *bio = bio_alloc(b->bdev, nr, opf, GFP_NOIO);

		bio->bi_iter.bi_sector = off >> SECTOR_SHIFT;
		while (len) {
			unsigned int chunk = min_t(u64, len, PAGE_SIZE - offset_in_page(p));

			if (bio_add_page(bio, buf_page(p), chunk, offset_in_page(p)) != chunk)
				break;
			p += chunk;
			off += chunk;
			len -= chunk;
		}
		r = submit_bio_wait(bio);
		bio_put(bio);
	}
	if (is_vmalloc_addr(buf) && !op_is_write(opf))
		invalidate_kernel_vmap_range(buf, p - (u8 *)buf);
	return r;
}

static int bdev_read(void *ctx, void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	(void)flags;
	return bdev_rw(ctx, buf, len, off, REQ_OP_READ | REQ_SYNC);
}

static int bdev_write(void *ctx, const void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	blk_opf_t opf = REQ_OP_WRITE | REQ_SYNC;

	if (flags & THINP_IO_FUA)
		opf |= REQ_FUA;
	/* The bios only read from buf; bio_add_page wants no const. */
	return bdev_rw(ctx, (void *)buf, len, off, opf);
}

static int bdev_flush(void *ctx)
{
	struct bdev_io *b = ctx;

	return blkdev_issue_flush(b->bdev);
}

static int bdev_size(void *ctx, uint64_t *bytes)
{
	struct bdev_io *b = ctx;

	*bytes = bdev_nr_bytes(b->bdev);
	return 0;
}

/* FUA for the two range operations: the request, then a flush. */
static int fua_tail(struct bdev_io *b, int r, uint32_t flags)
{
	if (!r && (flags & THINP_IO_FUA))
		r = blkdev_issue_flush(b->bdev);
	return r;
}

static int bdev_discard(void *ctx, uint64_t len, uint64_t off, uint32_t flags)
{
	struct bdev_io *b = ctx;
	int r;

	if (!bdev_max_discard_sectors(b->bdev))
		return -EOPNOTSUPP;
	r = blkdev_issue_discard(b->bdev, off >> SECTOR_SHIFT, len >> SECTOR_SHIFT, GFP_NOIO);
	return fua_tail(b, r, flags);
}

/* The block layer writes zero pages itself where the device has no
 * write-zeroes command. */
static int bdev_write_zeroes(void *ctx, uint64_t len, uint64_t off, uint32_t flags)
{
	struct bdev_io *b = ctx;
	unsigned int zflags = (flags & THINP_IO_NO_UNMAP) ? BLKDEV_ZERO_NOUNMAP : 0;
	int r;

	r = blkdev_issue_zeroout(b->bdev, off >> SECTOR_SHIFT, len >> SECTOR_SHIFT, GFP_NOIO,
				 zflags);
	return fua_tail(b, r, flags);
}

static void bdev_close(void *ctx)
{
	struct bdev_io *b = ctx;

	blkdev_put(b->bdev, b->mode);
	kfree(b);
}

int thinp_kmod_bdev_open(thinp_io **out, const char *path, bool rdonly)
{
	thinp_io_ops ops = THINP_IO_OPS_INIT;
	struct bdev_io *b;
	int r;

	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	b->mode = FMODE_READ | FMODE_EXCL | (rdonly ? 0 : FMODE_WRITE);
	/* The holder only has to be unique to this opener. */
	b->bdev = blkdev_get_by_path(path, b->mode, b);
	if (IS_ERR(b->bdev)) {
		r = PTR_ERR(b->bdev);
		kfree(b);
		return r;
	}
	ops.caps = THINP_IO_CAP_THREADSAFE | THINP_IO_CAP_FUA | THINP_IO_CAP_WRITE_ZEROES;
	if (bdev_max_discard_sectors(b->bdev))
		ops.caps |= THINP_IO_CAP_DISCARD;
	ops.align = bdev_logical_block_size(b->bdev);
	ops.read = bdev_read;
	ops.write = bdev_write;
	ops.flush = bdev_flush;
	ops.size = bdev_size;
	ops.discard = bdev_discard;
	ops.write_zeroes = bdev_write_zeroes;
	ops.close = bdev_close;
	r = thinp_io_new(out, &ops, b, rdonly ? THINP_IO_RDONLY : 0);
	if (r) {
		blkdev_put(b->bdev, b->mode);
		kfree(b);
	}
	return r;
}

/*
 * The kernel build's thinp_io_open_file (lib/os/posix/file.c in user space),
 * for the core code that opens a device by path (an external origin a
 * receive names): in the kernel a path names a block device. THINP_IO_DIRECT
 * is what bios do anyway; a block device cannot be created.
 */
int thinp_io_open_file(thinp_io **out, const char *path, uint32_t flags)
{
	if (flags & THINP_IO_CREATE)
		return -EOPNOTSUPP;
	return thinp_kmod_bdev_open(out, path, flags & THINP_IO_RDONLY);
}
