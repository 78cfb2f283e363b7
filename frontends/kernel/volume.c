// SPDX-License-Identifier: GPL-2.0-only
/*
 * One thin volume served as a blk-mq disk, /dev/thinp<id>.
 *
 * ->queue_rq only starts the request and queues its work item: serving it
 * means I/O to the pool's devices and sleeping on pool locks, which must not
 * happen on the submitter's stack (a bio submitted from inside another
 * device's submission is only queued until that one returns, so waiting for
 * it there deadlocks). The work runs the request through libthinp under
 * memalloc_noio_save(), so no allocation recurses into writeback of this
 * very disk, and completes it.
 *
 * The disk has 512-byte logical and 4 KiB physical blocks, a volatile write
 * cache with FUA (a flush is a pool commit, FUA a write then a commit),
 * discard in pool blocks (thin discards unmap whole blocks only) and
 * write-zeroes. Requests run concurrently; the pool orders what needs it.
 */
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "thinp_kmod.h"

struct thinp_volume {
	struct blk_mq_tag_set tag_set;
	struct gendisk *disk;
	thinp_thin *thin;
	struct workqueue_struct *wq;
};

/* Per-request data (tag_set.cmd_size). */
struct vol_cmd {
	struct work_struct work;
};

/* Reads and writes go segment by segment, each a contiguous run of the
 * direct map (multi-page bvecs: there is no highmem on the 64-bit arches
 * this module is built for). */
static int vol_rw(thinp_thin *thin, struct request *rq)
{
	u64 off = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	struct req_iterator iter;
	struct bio_vec bv;
	int r = 0;

	rq_for_each_bvec(bv, rq, iter) {
		void *p = bvec_virt(&bv);

		if (req_op(rq) == REQ_OP_READ)
			r = thinp_thin_read(thin, p, bv.bv_len, off);
		else
			r = thinp_thin_write(thin, p, bv.bv_len, off);
		if (r)
			return r;
		off += bv.bv_len;
	}
	if (req_op(rq) == REQ_OP_WRITE && (rq->cmd_flags & REQ_FUA))
		r = thinp_thin_flush(thin);
	return r;
}

static int vol_serve(thinp_thin *thin, struct request *rq)
{
	u64 off = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;

	switch (req_op(rq)) {
	case REQ_OP_READ:
	case REQ_OP_WRITE:
		return vol_rw(thin, rq);
	case REQ_OP_FLUSH:
		return thinp_thin_flush(thin);
	case REQ_OP_DISCARD:
		return thinp_thin_discard(thin, blk_rq_bytes(rq), off);
	case REQ_OP_WRITE_ZEROES:
		return thinp_thin_write_zeroes(thin, blk_rq_bytes(rq), off);
	default:
		return -EOPNOTSUPP;
	}
}

static void vol_work(struct work_struct *work)
{
	struct vol_cmd *cmd = container_of(work, struct vol_cmd, work);
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct thinp_volume *vol = rq->q->queuedata;
	unsigned int noio = memalloc_noio_save();
	int r = vol_serve(vol->thin, rq);

	memalloc_noio_restore(noio);
	/* Last touch of rq and cmd: the tag set may go once it has ended. */
	blk_mq_end_request(rq, errno_to_blk_status(r));
}

static blk_status_t vol_queue_rq(struct blk_mq_hw_ctx *hctx, const struct blk_mq_queue_data *bd)
{
	struct thinp_volume *vol = hctx->queue->queuedata;
	struct vol_cmd *cmd = blk_mq_rq_to_pdu(bd->rq);

	blk_mq_start_request(bd->rq);
	queue_work(vol->wq, &cmd->work);
	return BLK_STS_OK;
}

static int vol_init_request(struct blk_mq_tag_set *set, struct request *rq,
			    unsigned int hctx_idx, unsigned int numa_node)
{
	struct vol_cmd *cmd = blk_mq_rq_to_pdu(rq);

	INIT_WORK(&cmd->work, vol_work);
	return 0;
}

static const struct blk_mq_ops vol_mq_ops = {
	.queue_rq = vol_queue_rq,
	.init_request = vol_init_request,
};

static const struct block_device_operations vol_fops = {
	.owner = THIS_MODULE,
};

static void vol_set_limits(struct request_queue *q, u32 block_size)
{
	blk_queue_logical_block_size(q, 512);
	blk_queue_physical_block_size(q, 4096);
	blk_queue_io_opt(q, block_size);
	blk_queue_max_hw_sectors(q, (1u << 20) >> SECTOR_SHIFT);
	blk_queue_max_discard_sectors(q, UINT_MAX >> SECTOR_SHIFT);
	blk_queue_max_write_zeroes_sectors(q, UINT_MAX >> SECTOR_SHIFT);
	q->limits.discard_granularity = block_size;
	blk_queue_write_cache(q, true, true);
}

static int vol_alloc_disk(struct thinp_volume *vol, u32 block_size)
{
	int r;

	vol->tag_set.ops = &vol_mq_ops;
	vol->tag_set.nr_hw_queues = 1;
	vol->tag_set.queue_depth = 64;
	vol->tag_set.numa_node = NUMA_NO_NODE;
	vol->tag_set.cmd_size = sizeof(struct vol_cmd);
	vol->tag_set.flags = BLK_MQ_F_SHOULD_MERGE;
	r = blk_mq_alloc_tag_set(&vol->tag_set);
	if (r)
		return r;
	vol->disk = blk_mq_alloc_disk(&vol->tag_set, vol);
	if (IS_ERR(vol->disk)) {
		blk_mq_free_tag_set(&vol->tag_set);
		return PTR_ERR(vol->disk);
	}
	vol_set_limits(vol->disk->queue, block_size);
	return 0;
}

struct thinp_volume *thinp_volume_create(thinp_thin *thin, struct workqueue_struct *wq,
					 u32 block_size, bool rdonly)
{
	struct thinp_volume *vol;
	int r;

	if (thinp_thin_size(thin) % 512)
		return ERR_PTR(-EINVAL);
	vol = kzalloc(sizeof(*vol), GFP_KERNEL);
	if (!vol)
		return ERR_PTR(-ENOMEM);
	vol->thin = thin;
	vol->wq = wq;
	r = vol_alloc_disk(vol, block_size);
	if (r)
		goto fail;
	/* No major and no minors of our own: the block layer hands out an
	 * extended dev_t. */
	vol->disk->flags |= GENHD_FL_NO_PART;
	vol->disk->fops = &vol_fops;
	vol->disk->private_data = vol;
	snprintf(vol->disk->disk_name, DISK_NAME_LEN, "thinp%llu",
		 (unsigned long long)thinp_thin_id(thin));
	set_capacity(vol->disk, thinp_thin_size(thin) >> SECTOR_SHIFT);
	set_disk_ro(vol->disk, rdonly);
	r = add_disk(vol->disk);
	if (r)
		goto fail_disk;
	return vol;

fail_disk:
	put_disk(vol->disk);
	blk_mq_free_tag_set(&vol->tag_set);
fail:
	kfree(vol);
	return ERR_PTR(r);
}

bool thinp_volume_busy(struct thinp_volume *vol)
{
	return disk_openers(vol->disk) > 0;
}

u64 thinp_volume_id(struct thinp_volume *vol)
{
	return thinp_thin_id(vol->thin);
}

int thinp_volume_destroy(struct thinp_volume *vol)
{
	unsigned int noio;
	int r;

	/* Waits for every request of the disk to end. */
	del_gendisk(vol->disk);
	put_disk(vol->disk);
	blk_mq_free_tag_set(&vol->tag_set);
	noio = memalloc_noio_save();
	r = thinp_thin_flush(vol->thin);
	memalloc_noio_restore(noio);
	thinp_thin_close(vol->thin);
	kfree(vol);
	return r;
}
