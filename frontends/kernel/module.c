// SPDX-License-Identifier: GPL-2.0-only
/*
 * thinp.ko: module load and unload. For now it serves one RAM-backed disk,
 * /dev/thinp0, which proves the build (Kbuild against Debian's headers), the
 * load path (insmod of an unsigned out-of-tree module) and the blk-mq
 * plumbing the thin-volume front-end will reuse (issue 14).
 */
#include <linux/err.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

#include "thinp_kmod.h"

static unsigned int ram_mib = 16;
module_param(ram_mib, uint, 0444);
MODULE_PARM_DESC(ram_mib, "size of /dev/thinp0 in MiB (1..1024, default 16)");

static struct thinp_ramdisk *disk;

static int __init thinp_init(void)
{
	if (ram_mib < 1 || ram_mib > 1024)
		return -EINVAL;
	disk = thinp_ramdisk_create("thinp0", (u64)ram_mib << 20);
	if (IS_ERR(disk))
		return PTR_ERR(disk);
	pr_info("thinp: /dev/thinp0, %u MiB of RAM\n", ram_mib);
	return 0;
}

static void __exit thinp_exit(void)
{
	thinp_ramdisk_destroy(disk);
	pr_info("thinp: unloaded\n");
}

module_init(thinp_init);
module_exit(thinp_exit);
MODULE_DESCRIPTION("libthinp kernel front-end (skeleton: a RAM-backed disk)");
/* Placeholder until the project chooses its licence; the block layer exports
 * used here are not _GPL-only, the dm and bio ones the real module needs are. */
MODULE_LICENSE("GPL");
