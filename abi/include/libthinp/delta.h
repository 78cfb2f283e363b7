/*
 * libthinp delta: what differs between two thin devices of one pool, as
 * ordered runs of virtual blocks - the question incremental backup,
 * migration and replication start from.
 *
 * ABI tier: stable (version nodes LIBTHINP_1.N). The same delta on a
 * metadata handle (thinp_meta_delta_open, thinp_meta_delta) is declared in
 * meta.h, the metadata tier.
 *
 * Each device is taken from the live metadata or from the held metadata
 * snapshot (thinp_pool_reserve_metadata_snap, or the kernel's
 * reserve_metadata_snap message). Devices are compared by data block, as
 * thin_delta does: a block mapped on both sides to the same data block is
 * the same, whatever its mapping time.
 *
 * Runs. A run is a range of virtual blocks of one kind whose data blocks are
 * contiguous on each side that has them; runs never overlap and come in
 * ascending virtual order. Unmapped on both sides is never reported.
 *
 * Cost. With THINP_DELTA_CHANGES_ONLY, metadata subtrees the two devices
 * share (a snapshot and its origin share every node not written since) are
 * skipped without being read: the cost grows with what changed, not with
 * what is mapped. Changes scattered one block per leaf make every leaf
 * differ: each is then read once per side and compared entry by entry. Without it, the shared ranges are read to report them as
 * THINP_DELTA_SAME runs: O(mapped).
 *
 * Consistency. Runs are produced in batches (thinp_delta_next); each batch
 * sees one consistent state of the metadata. The held snapshot never
 * changes while held: a delta over it is exact; if it is released during the
 * delta, the next batch fails with -ESTALE. A live device nobody writes
 * during the delta (a thin snapshot taken for a backup) gives an exact delta
 * too. A live device written during the delta fails the next batch with
 * -ESTALE when the write is seen (the device's mapping tree moved); a write
 * in the same metadata transaction as an earlier one may go unseen, so use
 * the held snapshot for devices that are being written.
 *
 * A pool the kernel or another process owns: reserve a metadata snapshot
 * there, open the metadata device read-only with THINP_IO_DIRECT and then
 * thinp_meta_open_snapshot (meta.h), which reads only the held snapshot and
 * what it reaches (never the live space maps or trees, which the owner
 * changes meanwhile); a delta on that handle reads the snapshot whatever
 * the sources say.
 *
 * Threading: one iterator is used by one thread at a time; several
 * iterators may run in parallel with each other and with the pool's I/O.
 */
#ifndef LIBTHINP_DELTA_H
#define LIBTHINP_DELTA_H

#include <stddef.h>
#include <stdint.h>
#include <libthinp/common.h>
#include <libthinp/pool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Where a device is read from (thinp_delta_options.left_source/right_source). */
#define THINP_DELTA_LIVE 0ull          /* the live metadata (= THINP_META_LIVE) */
#define THINP_DELTA_HELD UINT64_MAX    /* the held snapshot (= THINP_META_HELD_ROOT) */
/* With thinp_meta_delta_open (meta.h), any other value is the block of a metadata
 * snapshot superblock (like `thin_delta -m BLOCK`). */

/* Run kinds (thinp_delta_run.kind). */
#define THINP_DELTA_LEFT_ONLY 1   /* mapped on the left only */
#define THINP_DELTA_RIGHT_ONLY 2  /* mapped on the right only */
#define THINP_DELTA_DIFFERENT 3   /* mapped on both, to different data blocks */
#define THINP_DELTA_SAME 4        /* mapped on both, to the same data blocks */

/* Flags (thinp_delta_options.flags). */
#define THINP_DELTA_CHANGES_ONLY (1u << 0) /* no SAME runs; shared subtrees unread */

/* Options. Fill from THINP_DELTA_OPTIONS_INIT; NULL means these defaults. */
typedef struct thinp_delta_options {
	uint32_t struct_size;  /* sizeof(thinp_delta_options) as compiled by the caller */
	uint32_t flags;        /* THINP_DELTA_* */
	uint64_t left_source;  /* THINP_DELTA_LIVE (default) or THINP_DELTA_HELD */
	uint64_t right_source;
	uint64_t begin;        /* first virtual block (resume: thinp_delta_position) */
	uint64_t end;          /* clip: only blocks < end (a device size); UINT64_MAX: none */
	/* Fields added later go here. */
} thinp_delta_options;

#define THINP_DELTA_OPTIONS_INIT \
	{ sizeof(thinp_delta_options), 0, THINP_DELTA_LIVE, THINP_DELTA_LIVE, 0, UINT64_MAX }

/* One run. Output struct: the library sets struct_size to what it filled. */
typedef struct thinp_delta_run {
	uint32_t struct_size;
	uint32_t kind;         /* THINP_DELTA_LEFT_ONLY ... THINP_DELTA_SAME */
	uint64_t virt_begin;   /* first virtual block */
	uint64_t length;       /* blocks */
	uint64_t left_data;    /* first data block on the left (0 for RIGHT_ONLY) */
	uint64_t right_data;   /* first data block on the right (0 for LEFT_ONLY) */
} thinp_delta_run;

/* A delta being read in batches. Opaque. */
typedef struct thinp_delta thinp_delta;

/*
 * thinp_pool_delta_open - start a delta between devices `left` and `right`
 * of an open pool.
 * @out:   receives the iterator (thinp_delta_close()); the pool must stay
 *         open until then.
 * @opts:  may be NULL (changes and same runs, live metadata, no clip).
 * Errors: -ENODATA (a device does not exist on its side, or a side asks for
 * the held snapshot and none is held; thinp_pool_errmsg says which),
 * -EINVAL (bad options, begin > end), -EOPNOTSUPP (the pool's metadata
 * cannot be walked), -ENOMEM, -EIO.
 * Thread safety: any thread. Since 1.0.
 */
THINP_API int thinp_pool_delta_open(thinp_delta **out, thinp_pool *pool, uint64_t left,
				    uint64_t right, const thinp_delta_options *opts);

/*
 * thinp_delta_next - the next runs, in ascending virtual order.
 * @runs:  array of `max` runs to fill (max > 0).
 * @nr:    receives how many were filled: at most max, maybe fewer while more
 *         follow (one call reads one batch); only 0 means the delta is complete.
 * A run is delivered whole: batch boundaries never split one.
 * Errors: -ESTALE (see Consistency above), -EILSEQ (damaged metadata),
 * -EIO, -EINVAL; after an error the iterator can only be closed (a new one
 * can resume from thinp_delta_position). Since 1.0.
 */
THINP_API int thinp_delta_next(thinp_delta *delta, thinp_delta_run *runs, size_t max,
			       size_t *nr);

/*
 * thinp_delta_position - every run below this virtual block has been
 * returned: pass it as thinp_delta_options.begin to resume in a new
 * iterator (a run that straddles it is then reported from it). Since 1.0.
 */
THINP_API uint64_t thinp_delta_position(const thinp_delta *delta);

/* thinp_delta_close - free the iterator. NULL is a no-op. Since 1.0. */
THINP_API void thinp_delta_close(thinp_delta *delta);

/* Callback for thinp_pool_delta / thinp_meta_delta: 0 to go on, anything
 * else stops the delta and is returned. It runs with no library lock held. */
typedef int (*thinp_delta_fn)(const thinp_delta_run *run, void *ctx);

/*
 * thinp_pool_delta - the whole delta through a callback (an iterator read in
 * batches). Errors as the _open and _next functions, or the callback's
 * value. Since 1.0.
 */
THINP_API int thinp_pool_delta(thinp_pool *pool, uint64_t left, uint64_t right,
			       const thinp_delta_options *opts, thinp_delta_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif

#endif
