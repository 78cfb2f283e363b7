/*
 * What merge and hydration share: reading an external origin block by
 * block, and filling a thin device's hole from it (pool/origin_ops.h).
 */
#ifndef THINP_WORKFLOW_ORIGIN_COPY_H
#define THINP_WORKFLOW_ORIGIN_COPY_H

#include "os/os.h"
#include <libthinp/io.h>
#include <libthinp/thin.h>

/* An origin as seen in blocks of a pool. */
struct origin_view {
	thinp_io *io;
	uint64_t size;       /* bytes */
	uint64_t block_size; /* the pool's data block size */
};

/* Measure @io for @pool. 0 or the errors of thinp_pool_get_status() and
 * thinp_io_size(). */
int origin_view_init(struct origin_view *ov, thinp_pool *pool, thinp_io *io);

/* Blocks the origin touches at all (the last one may be partial). */
uint64_t origin_blocks_covered(const struct origin_view *ov);

/* What an unprovisioned virtual block @vblock reads: the origin's bytes,
 * zeroes past its end, into @buf (one block). */
int origin_read_block(const struct origin_view *ov, uint64_t vblock, void *buf);

/*
 * Make @thin's block @vblock hold the origin's data if it is still a hole
 * (pool_thin_fill_hole), reading the origin only when the block is not
 * provisioned already. @skip_zero: a block of zeroes stays a hole (it reads
 * zeroes without the origin). @buf: one block of scratch. Returns 1 (filled),
 * 0 (nothing to do) or a negative errno.
 */
int origin_fill_hole(thinp_thin *thin, const struct origin_view *ov, uint64_t vblock,
		     bool skip_zero, void *buf);

/* A block-aligned buffer of one block, or NULL. */
void *origin_block_buffer(const struct origin_view *ov);

/* Call @fn(vblock, @ctx) for each block @id maps in [0, end), ascending;
 * stops at and returns the first non-zero return. 0 or a negative errno. */
int origin_walk_mapped(thinp_pool *pool, uint64_t id, uint64_t end,
		       int (*fn)(uint64_t vblock, void *ctx), void *ctx);

/* Blocks @id maps in [0, end). */
int origin_count_mapped(thinp_pool *pool, uint64_t id, uint64_t end, uint64_t *count);

#endif
