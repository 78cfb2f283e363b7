// SPDX-License-Identifier: GPL-2.0-only
/*
 * thinp.ko: a libthinp pool in the kernel. Load opens the pool on the block
 * devices the parameters name (libthinp's lib/ sources, built with the
 * kernel OS backend lib/os/os_linux.c, over bdev_io.c) and registers
 * /dev/thinp-control, through which thin volumes are created, snapshotted,
 * deleted, and served as /dev/thinp<id> (control.c, volume.c). Unload stops
 * serving every volume (each flushed), closes the pool (a last commit) and
 * releases the devices, leaving a clean pool.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sched/mm.h>

#include "thinp_kmod.h"

static char *meta;
module_param(meta, charp, 0444);
MODULE_PARM_DESC(meta, "the pool's metadata block device (required), e.g. /dev/vdb");
static char *data;
module_param(data, charp, 0444);
MODULE_PARM_DESC(data, "the pool's data block device (required)");
static char *catalog;
module_param(catalog, charp, 0444);
MODULE_PARM_DESC(catalog, "the pool's catalog block device (volume sizes); "
		 "default: a catalog in memory, lost at unload");
static unsigned int commit_interval_ms = 1000;
module_param(commit_interval_ms, uint, 0444);
MODULE_PARM_DESC(commit_interval_ms, "commit the pool this often if it changed (0: only on "
		 "flush and unload; default 1000, as dm-thin)");
static unsigned int catalog_mem_kib = 1024;
module_param(catalog_mem_kib, uint, 0444);
MODULE_PARM_DESC(catalog_mem_kib, "size of the in-memory catalog in KiB (default 1024)");

static thinp_io *meta_io, *data_io, *cat_io;
static thinp_pool *pool;
static thinp_catalog *cat;

/* The pool's messages go to the kernel log with their level. */
static void log_to_printk(int level, const char *msg, void *ctx)
{
	(void)ctx;
	if (level <= THINP_LOG_ERROR)
		pr_err("thinp: %s\n", msg);
	else if (level == THINP_LOG_WARNING)
		pr_warn("thinp: %s\n", msg);
	else if (level == THINP_LOG_INFO)
		pr_info("thinp: %s\n", msg);
	else
		pr_debug("thinp: %s\n", msg);
}

static int open_devices(void)
{
	int r;

	if (!meta || !data)
		return -EINVAL;
	r = thinp_kmod_bdev_open(&meta_io, meta, false);
	if (r)
		return r;
	r = thinp_kmod_bdev_open(&data_io, data, false);
	if (!r)
		r = catalog ? thinp_kmod_bdev_open(&cat_io, catalog, false)
			    : thinp_io_open_memory(&cat_io, (u64)catalog_mem_kib << 10, 0);
	return r;
}

static void close_devices(void)
{
	thinp_io_close(cat_io);
	thinp_io_close(data_io);
	thinp_io_close(meta_io);
}

static int open_pool(void)
{
	thinp_pool_options opts = THINP_POOL_OPTIONS_INIT;
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	int r;

	opts.commit_interval_ms = commit_interval_ms;
	opts.log_fn = log_to_printk;
	r = thinp_pool_open(&pool, meta_io, data_io, &opts);
	if (r)
		return r;
	r = thinp_catalog_open(&cat, cat_io, 0);
	if (!r)
		r = thinp_catalog_reconcile(cat, pool);
	if (!r)
		r = thinp_pool_get_status(pool, &st);
	if (r)
		return r;
	pr_info("thinp: pool on %s and %s: %llu of %llu data blocks of %u KiB used, "
		"transaction %llu, mode %u\n", meta, data, st.data_used, st.data_total,
		st.data_block_size >> 10, st.transaction_id, st.mode);
	return 0;
}

/* Undo what succeeded of open_devices and open_pool; the pool's close is
 * its last commit. */
static int close_pool(void)
{
	int r = thinp_pool_close(pool);

	thinp_catalog_close(cat);
	close_devices();
	return r;
}

static int __init thinp_init(void)
{
	unsigned int noio = memalloc_noio_save();
	int r;

	r = open_devices();
	if (!r)
		r = open_pool();
	if (!r)
		r = thinp_control_start(pool, cat);
	if (r) {
		close_pool();
		pr_err("thinp: cannot load: %d (%s)\n", r, thinp_strerror(r));
	}
	memalloc_noio_restore(noio);
	return r;
}

static void __exit thinp_exit(void)
{
	unsigned int noio = memalloc_noio_save();
	int r = thinp_control_stop();
	int rc = close_pool();

	memalloc_noio_restore(noio);
	if (r || rc)
		pr_err("thinp: unload: volume flush %d, pool close %d\n", r, rc);
	else
		pr_info("thinp: pool committed and closed\n");
}

module_init(thinp_init);
module_exit(thinp_exit);
MODULE_DESCRIPTION("libthinp thin volumes served from a pool on two block devices");
/* A placeholder until the project's owners choose its licence (nothing in
 * the tree declares one yet); GPL-compatible is what the block-layer
 * exports used here (blkdev_get_by_path, submit_bio_wait...) require. */
MODULE_LICENSE("GPL");
