/*
 * The pool operations behind the external-origin workflows (lib/workflow's
 * merge and hydration), kept out of the public thin.h: each bends a rule of
 * the data path that only those workflows may bend.
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

/* pool_thin_origin - the external origin @thin was opened with, or NULL. */
thinp_io *pool_thin_origin(const thinp_thin *thin);

/* pool_thin_pool - the pool @thin belongs to. */
thinp_pool *pool_thin_pool(const thinp_thin *thin);

/* pool_report - a workflow's failure as the pool's message
 * (thinp_pool_errmsg) and log; returns @err. */
int pool_report(thinp_pool *pool, int err, const char *fmt, ...) THINP_PRINTF(3, 4);

#endif
