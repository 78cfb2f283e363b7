/*
 * libthinp external-origin workflows: merge a thin device into its external
 * origin, and hydrate a thin device so it no longer needs its origin.
 *
 * ABI tier: stable (version nodes LIBTHINP_1.N).
 *
 * A thin device with an external origin (thin.h: thinp_thin_options.origin,
 * catalog.h: thinp_catalog_entry.origin) reads the origin wherever it has
 * not provisioned a block. The two workflows move data across that line:
 *
 *  - merge (the model of `qemu-img commit`) writes the device's provisioned
 *    blocks onto the origin, flushes the origin, then unmaps them: the
 *    device then reads the same bytes, now from the origin, and its data
 *    blocks are free;
 *  - hydration (the model of `rbd flatten` and QEMU's block-stream) copies
 *    the origin's data into every block the device has not provisioned, so
 *    that it no longer needs the origin, while the device stays in use.
 *
 * Both run as jobs (job.h) in the calling thread: progress in bytes of
 * device data, pause, resume, cancel and a rate limit, every block being a
 * consistent point. Both can be cut by a crash or a cancel at any point and
 * simply be run again: every intermediate state reads the same bytes as the
 * start, and a rerun only does what is left (docs/WORKFLOWS.md).
 */
#ifndef LIBTHINP_ORIGIN_JOBS_H
#define LIBTHINP_ORIGIN_JOBS_H

#include <stdint.h>
#include <libthinp/common.h>
#include <libthinp/io.h>
#include <libthinp/pool.h>
#include <libthinp/thin.h>
#include <libthinp/catalog.h>
#include <libthinp/job.h>

#ifdef __cplusplus
extern "C" {
#endif

#define THINP_MERGE_OPTIONS_VERSION 1

/* thinp_merge_options.flags */
/* Before the origin is written, copy into every other device of the
 * catalog that uses the same origin the origin's data of the blocks the
 * merge is about to overwrite, where that device has not provisioned them:
 * they then keep reading what they read before. Without it, such a device
 * makes the merge fail with -EBUSY. */
#define THINP_MERGE_HYDRATE_SIBLINGS (1u << 0)

/* Options for thinp_merge(). Fill from THINP_MERGE_OPTIONS_INIT. */
typedef struct thinp_merge_options {
	uint32_t struct_size; /* sizeof(thinp_merge_options) as compiled by the caller */
	uint32_t version;     /* THINP_MERGE_OPTIONS_VERSION */
	uint32_t flags;       /* THINP_MERGE_* */
	uint32_t reserved;    /* 0 */
	/* Blocks per batch: write them to the origin, flush it, unmap them
	 * and commit the pool, then the next batch. 0: the whole device in
	 * one batch (one commit unmaps everything). */
	uint64_t batch_blocks;
	/* Fields added in later versions go here, each marked "since version N". */
} thinp_merge_options;

#define THINP_MERGE_OPTIONS_INIT { sizeof(thinp_merge_options), THINP_MERGE_OPTIONS_VERSION, 0, 0, 0 }

/*
 * thinp_merge - merge thin device @id of @pool into its external origin.
 * @origin: the origin, opened for writing; borrowed. It must be the device
 *          @id's catalog entry names (the library cannot tell).
 * @cat:    the pool's catalog: @id's entry must name an origin, and every
 *          other entry naming the same path (a device that exists in @pool)
 *          is a sibling whose reads the merge would change (see
 *          THINP_MERGE_HYDRATE_SIBLINGS). Not changed by the merge.
 * @opts:   NULL for the defaults.
 * @job:    NULL, or the job that reports and controls the run.
 * For each batch of @id's provisioned blocks, in ascending order: each
 * block is written to the origin at its offset, the origin is flushed,
 * then the batch's mappings are removed and the pool committed. Until that
 * commit the device still overrides every block of the batch, so reads stay
 * correct at every point and a run cut by a crash or a cancel is finished
 * by running it again. Blocks not wholly inside the origin (past its end)
 * stay provisioned: the origin is never grown.
 * The device must not be open (-EBUSY) and must not be written until the
 * call returns: a write after its block was merged would be lost.
 * Siblings may be in use during their hydration (a write wins, as in
 * thinp_hydrate()).
 * Progress: total = the bytes of the blocks to copy (siblings' first).
 * Errors: -EINVAL (NULL pool, origin or cat, bad options, no origin in
 * @id's entry), -ENODATA (no device @id or no entry), -EBUSY (the device
 * is open, or a sibling uses the origin and THINP_MERGE_HYDRATE_SIBLINGS
 * is not set: the pool's message names it; also a job already running),
 * -ECANCELED (cancelled), -ENOSPC (a sibling's hydration ran out of data
 * space), -EROFS, -EIO and the errors of the devices. Details:
 * thinp_pool_errmsg(). Thread safety: as the pool's functions; one merge of
 * a device at a time. Since 1.0.
 */
THINP_API int thinp_merge(thinp_pool *pool, uint64_t id, thinp_io *origin, thinp_catalog *cat,
			  const thinp_merge_options *opts, thinp_job *job);

#define THINP_HYDRATE_OPTIONS_VERSION 1

/* Options for thinp_hydrate(). Fill from THINP_HYDRATE_OPTIONS_INIT. */
typedef struct thinp_hydrate_options {
	uint32_t struct_size; /* sizeof(thinp_hydrate_options) as compiled by the caller */
	uint32_t version;     /* THINP_HYDRATE_OPTIONS_VERSION */
	uint32_t flags;       /* 0 */
	uint32_t reserved;    /* 0 */
	/* Blocks copied between two pool commits; 0: 256. */
	uint64_t batch_blocks;
	/* Fields added in later versions go here, each marked "since version N". */
} thinp_hydrate_options;

#define THINP_HYDRATE_OPTIONS_INIT { sizeof(thinp_hydrate_options), THINP_HYDRATE_OPTIONS_VERSION, 0, 0, 0 }

/*
 * thinp_hydrate - copy the external origin's data into every block of
 * @thin that is not provisioned, so it no longer needs the origin.
 * @thin:  a volume opened with its origin (thinp_thin_options.origin) and
 *         writable; other handles may read and write the volume meanwhile.
 * @cat:   NULL, or the pool's catalog: after the last block is committed,
 *         the device's entry loses its origin ("") and the catalog is
 *         committed. Snapshots keep theirs.
 * @opts:  NULL for the defaults. @job: NULL or the job of the run.
 * Before anything is copied, the blocks to copy are counted and compared
 * with the free data blocks (-ENOSPC if they do not fit). A block the
 * origin holds only zeroes of is left unprovisioned (it reads zeroes
 * without the origin too). Each copy happens only if the block is still
 * unprovisioned when it lands: a write racing it wins. The pool is
 * committed every batch_blocks copies and at the end. A run cut by a crash
 * or a cancel is finished by running it again; it skips the blocks already
 * provisioned. A block discarded during the run may read zeroes after it
 * (what a discarded block of a device without an origin reads).
 * Progress: total = the bytes of the unprovisioned blocks the origin covers.
 * Errors: -EINVAL (NULL thin, no origin, bad options), -EROFS (read-only
 * volume or pool), -ENOSPC (not enough free data blocks, before copying;
 * or data space ran out meanwhile), -ECANCELED, -EBUSY (a job already
 * running), -EIO and the errors of the devices and of
 * thinp_catalog_commit(). Since 1.0.
 */
THINP_API int thinp_hydrate(thinp_thin *thin, thinp_catalog *cat,
			    const thinp_hydrate_options *opts, thinp_job *job);

#ifdef __cplusplus
}
#endif
#endif
