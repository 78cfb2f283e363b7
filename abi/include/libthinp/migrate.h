/*
 * libthinp migration: move a thin device, or its whole snapshot family, from
 * one pool to another while the source stays in use. docs/WORKFLOWS.md
 * ("Migration") describes the rules.
 *
 * ABI tier: stable (version nodes LIBTHINP_1.N).
 *
 * A migration runs in rounds, each a send/receive (replica.h) of a hidden
 * read-only snapshot of every member taken at the round's start: the first
 * round a full copy (or, in a family, an incremental onto the member it
 * shares most with, so blocks shared in the source are shared on the
 * destination), each later one an incremental onto the previous round's
 * copy. Between rounds the caller decides (thinp_migrate_next_fn): another
 * round while the source stays in use, or the final round once it has
 * quiesced the source, followed by the switch. Only mapped blocks move.
 *
 * The switch is one catalog commit on the destination: the final copies
 * become visible, each with its source device's guid, size, flags and
 * parent guid. Until then every copy on the destination is hidden (catalog
 * flag THINP_CATALOG_MIGRATING, or PARTIAL during a receive), so a crash at
 * any point leaves the source usable and on the destination either no
 * visible device or the complete result. After the switch the source side
 * is retired (THINP_CATALOG_MIGRATED) and deleted, with the round snapshots
 * and the destination's intermediate copies.
 *
 * The state is in the two catalogs, nowhere else: running thinp_migrate
 * again with the same arguments after a crash, a cancel or an error goes on
 * where the last run stopped (a round's receive resumes from its last
 * checkpoint, a finished round is not repeated, a migration that switched
 * only finishes its clean-up).
 *
 * Threading: the call runs in the caller's thread plus one sender thread it
 * starts and joins. Other threads may write the source devices until the
 * caller answers THINP_MIGRATE_FINAL (then no more: the final snapshot must
 * hold the last write); they must have closed them before the clean-up
 * deletes them (-EBUSY otherwise; running again finishes). Nothing else may
 * change the two catalogs or the destination pool's devices meanwhile.
 */
#ifndef LIBTHINP_MIGRATE_H
#define LIBTHINP_MIGRATE_H

#include <stddef.h>
#include <stdint.h>
#include <libthinp/common.h>
#include <libthinp/pool.h>
#include <libthinp/catalog.h>
#include <libthinp/job.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of thinp_migrate_options this header describes. */
#define THINP_MIGRATE_OPTIONS_VERSION 1

/* thinp_migrate_options.flags: move every device that shares data blocks
 * with the given one, directly or through another such device (not the
 * hidden ones: anchors, partial receives, another migration's snapshots). */
#define THINP_MIGRATE_FAMILY (1u << 0)

/* What a thinp_migrate_next_fn answers. */
#define THINP_MIGRATE_ROUND 0 /* another round; the source stays in use */
#define THINP_MIGRATE_FINAL 1 /* the source is quiesced: the final round, then the switch */
#define THINP_MIGRATE_STOP 2  /* stop here; thinp_migrate returns -EINPROGRESS */

/*
 * Asked before each round: @round rounds are done (0 before the first),
 * the last of them moved @last_bytes bytes of stream. Runs in the caller's
 * thread. Returns THINP_MIGRATE_*, or a negative errno to stop with that
 * error (the state is kept, as after any error).
 */
typedef int (*thinp_migrate_next_fn)(void *ctx, uint64_t round, uint64_t last_bytes);

/* Options. Fill from THINP_MIGRATE_OPTIONS_INIT; NULL means these defaults. */
typedef struct thinp_migrate_options {
	uint32_t struct_size; /* sizeof(thinp_migrate_options) as compiled by the caller */
	uint32_t version;     /* THINP_MIGRATE_OPTIONS_VERSION */
	uint32_t flags;       /* THINP_MIGRATE_* */
	uint32_t reserved;    /* 0 */
	/* NULL: the source is quiesced already, the first round is the final. */
	thinp_migrate_next_fn next;
	void *next_ctx;
	/* Stream bytes between the receive's resume points (replica.h); 0: the
	 * default of thinp_send. */
	uint64_t checkpoint_bytes;
	/* If not NULL, receives a NUL-terminated description of a failure. */
	char *errbuf;
	size_t errbuf_size;
	/* Fields added in later versions go here. */
} thinp_migrate_options;

#define THINP_MIGRATE_OPTIONS_INIT \
	{ sizeof(thinp_migrate_options), THINP_MIGRATE_OPTIONS_VERSION, 0, 0, NULL, NULL, 0, NULL, 0 }

/*
 * thinp_migrate - move device @dev of @src (catalog @src_cat) to @dst
 * (catalog @dst_cat), with its family if THINP_MIGRATE_FAMILY.
 * @job: progress (bytes of stream moved; .round the rounds done; .phase
 *       COPY for the first round, CATCH_UP, FINAL, SWITCH, CLEANUP), pause,
 *       cancel and rate limit (job.h); NULL for none.
 * @new_id: receives the id on @dst of @dev's copy once switched.
 * Both pools must have the same data block size. The devices' ids on @dst
 * are the ones free there (not their ids on @src).
 * Returns 0 once switched and cleaned up (also when a previous run had
 * switched). Errors (after each, running again goes on):
 *   -EINPROGRESS  the next callback answered THINP_MIGRATE_STOP;
 *   -ECANCELED    the job was cancelled;
 *   -ENODATA      no device @dev, and no migration of it to finish;
 *   -EEXIST       a device of @dst already has @dev's guid, and no
 *                 migration of it was under way;
 *   -EINVAL       a bad argument, different block sizes;
 *   -EOPNOTSUPP   a device with an external origin;
 *   -EBUSY        a source device still open at the clean-up;
 *   -ENOSPC, -EIO, -ENOMEM, the errors of the callback, of thinp_send and
 *   thinp_receive and of the catalogs.
 * Thread safety: see above. Since 1.0.
 */
THINP_API int thinp_migrate(thinp_pool *src, thinp_catalog *src_cat, uint64_t dev,
			    thinp_pool *dst, thinp_catalog *dst_cat,
			    const thinp_migrate_options *opts, thinp_job *job, uint64_t *new_id);

#ifdef __cplusplus
}
#endif
#endif
