// SPDX-License-Identifier: GPL-2.0-only
/*
 * A RAM-backed blk-mq disk: one hardware queue, requests served inline in
 * ->queue_rq (memory copies never sleep, so no workqueue is needed; the thin
 * front-end will have to defer, since its I/O goes to other devices).
 * Supports read, write, flush (a no-op: memory is the medium), discard and
 * write-zeroes (both zero the range, so reads after them give zeroes).
 */
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/highmem.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "thinp_kmod.h"

struct thinp_ramdisk {
	struct blk_mq_tag_set tag_set;
	struct gendisk *disk;
	u8 *mem;
	u64 bytes;
	int major;
};

/* Copy one request's segments to or from memory; the range was checked. */
static void ramdisk_copy(struct thinp_ramdisk *rd, struct request *rq)
{
	u64 pos = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	struct req_iterator iter;
	struct bio_vec bv;

	rq_for_each_segment(bv, rq, iter) {
		u8 *p = bvec_kmap_local(&bv);

		if (req_op(rq) == REQ_OP_READ)
			memcpy(p, rd->mem + pos, bv.bv_len);
		else
			memcpy(rd->mem + pos, p, bv.bv_len);
		kunmap_local(p);
		pos += bv.bv_len;
	}
}

static blk_status_t ramdisk_queue_rq(struct blk_mq_hw_ctx *hctx,
				     const struct blk_mq_queue_data *bd)
{
	struct thinp_ramdisk *rd = hctx->queue->queuedata;
	struct request *rq = bd->rq;
	u64 pos = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	blk_status_t status = BLK_STS_OK;

	blk_mq_start_request(rq);
	/* A flush has no position (the block layer leaves it at -1). */
	if (req_op(rq) != REQ_OP_FLUSH && pos + blk_rq_bytes(rq) > rd->bytes)
		status = BLK_STS_IOERR;
	else if (req_op(rq) == REQ_OP_READ || req_op(rq) == REQ_OP_WRITE)
		ramdisk_copy(rd, rq);
	else if (req_op(rq) == REQ_OP_DISCARD || req_op(rq) == REQ_OP_WRITE_ZEROES)
		memset(rd->mem + pos, 0, blk_rq_bytes(rq));
	else if (req_op(rq) != REQ_OP_FLUSH)
		status = BLK_STS_NOTSUPP;
	blk_mq_end_request(rq, status);
	return BLK_STS_OK;
}

static const struct blk_mq_ops ramdisk_mq_ops = {
	.queue_rq = ramdisk_queue_rq,
};

static const struct block_device_operations ramdisk_fops = {
	.owner = THIS_MODULE,
};

/* Queue limits: 4 KiB logical blocks like a thin volume, discard and
 * write-zeroes of any size, a volatile cache so flushes reach ->queue_rq. */
static void ramdisk_set_limits(struct request_queue *q)
{
	blk_queue_logical_block_size(q, 4096);
	blk_queue_physical_block_size(q, 4096);
	blk_queue_max_discard_sectors(q, UINT_MAX >> SECTOR_SHIFT);
	blk_queue_max_write_zeroes_sectors(q, UINT_MAX >> SECTOR_SHIFT);
	q->limits.discard_granularity = 4096;
	blk_queue_write_cache(q, true, false);
}

struct thinp_ramdisk *thinp_ramdisk_create(const char *name, u64 bytes)
{
	struct thinp_ramdisk *rd;
	int r;

	if (!bytes || bytes % 4096)
		return ERR_PTR(-EINVAL);
	rd = kzalloc(sizeof(*rd), GFP_KERNEL);
	if (!rd)
		return ERR_PTR(-ENOMEM);
	rd->bytes = bytes;
	rd->mem = vzalloc(bytes);
	r = -ENOMEM;
	if (!rd->mem)
		goto fail_mem;
	rd->major = register_blkdev(0, name);
	r = rd->major;
	if (r < 0)
		goto fail_major;
	rd->tag_set.ops = &ramdisk_mq_ops;
	rd->tag_set.nr_hw_queues = 1;
	rd->tag_set.queue_depth = 64;
	rd->tag_set.numa_node = NUMA_NO_NODE;
	rd->tag_set.flags = BLK_MQ_F_SHOULD_MERGE;
	r = blk_mq_alloc_tag_set(&rd->tag_set);
	if (r)
		goto fail_tags;
	rd->disk = blk_mq_alloc_disk(&rd->tag_set, rd);
	if (IS_ERR(rd->disk)) {
		r = PTR_ERR(rd->disk);
		goto fail_disk;
	}
	rd->disk->major = rd->major;
	rd->disk->first_minor = 0;
	rd->disk->minors = 1;
	rd->disk->fops = &ramdisk_fops;
	rd->disk->private_data = rd;
	strscpy(rd->disk->disk_name, name, DISK_NAME_LEN);
	set_capacity(rd->disk, bytes >> SECTOR_SHIFT);
	ramdisk_set_limits(rd->disk->queue);
	r = add_disk(rd->disk);
	if (r)
		goto fail_add;
	return rd;

fail_add:
	put_disk(rd->disk);
fail_disk:
	blk_mq_free_tag_set(&rd->tag_set);
fail_tags:
	unregister_blkdev(rd->major, name);
fail_major:
	vfree(rd->mem);
fail_mem:
	kfree(rd);
	return ERR_PTR(r);
}

void thinp_ramdisk_destroy(struct thinp_ramdisk *rd)
{
	del_gendisk(rd->disk);
	unregister_blkdev(rd->major, rd->disk->disk_name);
	put_disk(rd->disk);
	blk_mq_free_tag_set(&rd->tag_set);
	vfree(rd->mem);
	kfree(rd);
}
