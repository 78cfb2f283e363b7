/*
 * Reading an external origin block by block and copying it into a thin
 * device's holes: the step hydration repeats over a whole device and merge
 * over its siblings' blocks that the merge is about to overwrite.
 */
#include "os/os.h"

#include <libthinp/pool.h>
#include "pool/origin_ops.h"
#include "util/compiler.h"
#include "workflow/origin_copy.h"

int origin_view_init(struct origin_view *ov, thinp_pool *pool, thinp_io *io)
{
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	int r = thinp_pool_get_status(pool, &st);

	ov->io = io;
	ov->block_size = st.data_block_size;
	return r ? r : thinp_io_size(io, &ov->size);
}

uint64_t origin_blocks_covered(const struct origin_view *ov)
{
	return (ov->size + ov->block_size - 1) / ov->block_size;
}

int origin_read_block(const struct origin_view *ov, uint64_t vblock, void *buf)
{
	uint64_t off = vblock * ov->block_size, n = 0;

	if (off < ov->size)
		n = THINP_MIN(ov->block_size, ov->size - off);
	memset((char *)buf + n, 0, ov->block_size - n);
	return n ? thinp_io_read(ov->io, buf, n, off, 0) : 0;
}

static bool is_zero(const void *buf, uint64_t len)
{
	const unsigned char *p = buf;

	return !len || (!p[0] && !memcmp(p, p + 1, len - 1));
}

int origin_fill_hole(thinp_thin *thin, const struct origin_view *ov, uint64_t vblock,
		     bool skip_zero, void *buf)
{
	thinp_mapping m = THINP_MAPPING_INIT;
	int r = thinp_pool_thin_map(pool_thin_pool(thin), thinp_thin_id(thin), vblock, &m);

	if (r != -ENODATA)
		return r; /* provisioned (0) or an error */
	r = origin_read_block(ov, vblock, buf);
	if (r)
		return pool_report(pool_thin_pool(thin), r, "origin read at block %llu",
				   (unsigned long long)vblock);
	if (skip_zero && is_zero(buf, ov->block_size))
		return 0;
	return pool_thin_fill_hole(thin, vblock, buf);
}

void *origin_block_buffer(const struct origin_view *ov)
{
	void *buf = NULL;

	return !(buf = thinp_os_alloc_aligned(ov->block_size, 4096)) ? NULL : buf;
}

int origin_walk_mapped(thinp_pool *pool, uint64_t id, uint64_t end,
		       int (*fn)(uint64_t vblock, void *ctx), void *ctx)
{
	thinp_mapping m = THINP_MAPPING_INIT;
	uint64_t at;

	for (uint64_t vb = 0; vb < end; vb = at + 1) {
		int r = thinp_pool_thin_next_map(pool, id, vb, &at, &m);

		if (r == -ENODATA || (!r && at >= end))
			break;
		if (!r)
			r = fn(at, ctx);
		if (r)
			return r;
	}
	return 0;
}

static int count_one(uint64_t vblock, void *ctx)
{
	(void)vblock;
	(*(uint64_t *)ctx)++;
	return 0;
}

int origin_count_mapped(thinp_pool *pool, uint64_t id, uint64_t end, uint64_t *count)
{
	*count = 0;
	return origin_walk_mapped(pool, id, end, count_one, count);
}
