/*
 * The pool operations behind the workflows (lib/workflow's merge, hydration
 * and migration), kept out of the public thin.h: each bends a rule of the
 * data path that only those workflows may bend.
 */
#ifndef THINP_POOL_ORIGIN_OPS_H
#define THINP_POOL_ORIGIN_OPS_H

#include "os/os.h"
#include <libthinp/thin.h>
#include "util/compiler.h"

/*
 * pool_thin_fill_hole - provision virtual block @vblock of @thin with the
 * whole block @block (the pool's block size in bytes), but only if it is
 * still unprovisioned: decided under the block's range lock, the lock a
 * provisioning write holds, so a write that races the fill either came
 * first (the fill then does nothing) or comes after it and overwrites it.
 * Either way the write wins. Not durable until a commit.
 * Returns 1 (filled), 0 (already provisioned, nothing done), or the errors
 * of thinp_thin_write() (-EROFS, -ENOSPC, -EIO, ...).
 */
int pool_thin_fill_hole(thinp_thin *thin, uint64_t vblock, const void *block);

/*
 * pool_thin_unmap - remove @thin's mappings of virtual blocks [begin, end)
 * whatever the pool's discard features say, and never discard the data
 * blocks on the data device: until the next commit the old mappings are
 * what a crash comes back to, and their data must still be there.
 * Errors: those of thinp_thin_discard() but -EOPNOTSUPP.
 */
int pool_thin_unmap(thinp_thin *thin, uint64_t begin, uint64_t end);

/*
 * pool_share_block - map virtual block @vblock of each of the @n devices
 * @ids to the data block that @from_vblock of device @from maps, in place of
 * (and releasing) the block each maps now. For copies of one source block,
 * which hold the same bytes: the contents do not change, they take one
 * block instead of several. All in one metadata operation, so no commit
 * sees some of the devices changed and not the others (a migration remaps
 * a copy and its anchor, whose equality later receives check). No data I/O
 * and no range lock: the caller makes sure nothing writes the devices
 * meanwhile (copies not yet visible). Not durable until a commit. Returns
 * 1 (some remapped), 0 (all the same block already), -ENODATA (a block
 * unmapped or no such device; the devices before it in @ids stay remapped),
 * -EROFS, -EIO.
 */
int pool_share_block(thinp_pool *pool, const uint64_t *ids, size_t n, uint64_t vblock,
		     uint64_t from, uint64_t from_vblock);

/* pool_thin_origin - the external origin @thin was opened with, or NULL. */
thinp_io *pool_thin_origin(const thinp_thin *thin);

/* pool_thin_pool - the pool @thin belongs to. */
thinp_pool *pool_thin_pool(const thinp_thin *thin);

/* pool_report - a workflow's failure as the pool's message
 * (thinp_pool_errmsg) and log; returns @err. */
int pool_report(thinp_pool *pool, int err, const char *fmt, ...) THINP_PRINTF(3, 4);

#endif
