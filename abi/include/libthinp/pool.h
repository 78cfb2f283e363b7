/*
 * libthinp thin pools.
 *
 * ABI tier: stable (version nodes LIBTHINP_1.N).
 *
 * A pool is a metadata device and a data device (any thinp_io backends)
 * hosting many thin volumes (see thin.h). The pool keeps its metadata in the
 * Linux dm-thin format and follows the kernel thin-pool target's semantics:
 * data blocks are provisioned on first write, snapshots share data blocks
 * until one side writes, discards unmap whole blocks, and a flush makes every
 * completed write durable by flushing the data device and then committing the
 * metadata.
 *
 * Modes (thinp_pool_status.mode):
 *   RW                 normal operation.
 *   OUT_OF_DATA_SPACE  no free data block: writes needing one fail with
 *                      -ENOSPC (error_if_no_space) or wait for a resize up to
 *                      the no-space timeout; a resize returns to RW.
 *   READ_ONLY          opened read-only (THINP_POOL_READ_ONLY, a read-only
 *                      metadata device, or needs_check set), or out of
 *                      metadata space. No metadata changes, so:
 *                       - reads work;
 *                       - a write to a provisioned block that is not shared
 *                         goes in place, and thinp_thin_flush() (which then
 *                         only flushes the data device) makes it durable;
 *                       - a write needing a new block (never provisioned, or
 *                         shared with a snapshot) fails with -EROFS;
 *                         write-zeroes behaves as a write, except that a
 *                         whole never-provisioned block (no external
 *                         origin) is left so and succeeds;
 *                       - a discard covering a whole block fails with
 *                         -EROFS (one covering none does nothing, as ever);
 *                       - thinp_pool_commit() and every message fail with
 *                         -EROFS, except the metadata resize below.
 *                      Out of metadata space: the call that found no free
 *                      metadata block fails with -ENOSPC, and the open
 *                      transaction is rolled back to the last commit, so
 *                      blocks provisioned (or copied from shared ones)
 *                      since the last flush read as they did then. It is
 *                      not corruption: needs_check is not set, and
 *                      thinp_pool_resize_metadata() growing the metadata
 *                      returns the pool to RW (so does closing and
 *                      reopening it).
 *   FAIL               a metadata operation or a device flush failed: every
 *                      I/O and change fails with -EIO (reads) or -EROFS
 *                      (changes). Sticky until the pool is closed and
 *                      reopened; needs_check is set in the metadata when
 *                      it can still be written.
 *
 * Threading: every function here and in thin.h may be called from several
 * threads at once on the same pool, except thinp_pool_close(), which must be
 * the last call on the pool and its volumes.
 */
#ifndef LIBTHINP_POOL_H
#define LIBTHINP_POOL_H

#include <stdint.h>
#include <stddef.h>
#include <libthinp/common.h>
#include <libthinp/io.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An open pool. Opaque. */
typedef struct thinp_pool thinp_pool;

/* Feature bits for thinp_pool_options.features (the kernel's pool table
 * features of the same names). */
#define THINP_POOL_SKIP_BLOCK_ZEROING (1u << 0) /* a new block's unwritten part is not zeroed */
#define THINP_POOL_IGNORE_DISCARD (1u << 1)     /* discards fail with -EOPNOTSUPP */
#define THINP_POOL_NO_DISCARD_PASSDOWN (1u << 2) /* discards unmap but are not sent to the data device */
#define THINP_POOL_READ_ONLY (1u << 3)          /* no metadata change at all */
#define THINP_POOL_ERROR_IF_NO_SPACE (1u << 4)  /* -ENOSPC at once instead of waiting */

/* Pool modes (thinp_pool_status.mode). */
#define THINP_POOL_MODE_RW 0
#define THINP_POOL_MODE_OUT_OF_DATA_SPACE 1
#define THINP_POOL_MODE_READ_ONLY 2
#define THINP_POOL_MODE_FAIL 3

/* Data block size bounds, in bytes (the kernel's 128 .. 2097152 sectors). */
#define THINP_POOL_MIN_BLOCK_SIZE (64u * 1024)
#define THINP_POOL_MAX_BLOCK_SIZE (1024u * 1024 * 1024)

/*
 * Called once when the number of free data blocks falls to or below
 * low_water_blocks, and again only after a data resize. Runs in the thread
 * whose write allocated the block, with no library lock held: it may call
 * thinp_pool_resize_data().
 */
typedef void (*thinp_pool_low_water_fn)(thinp_pool *pool, uint64_t free_blocks, void *ctx);

#define THINP_POOL_OPTIONS_VERSION 1

/*
 * Options for thinp_pool_format() and thinp_pool_open(). Fill from
 * THINP_POOL_OPTIONS_INIT. Copied by the call.
 */
typedef struct thinp_pool_options {
	uint32_t struct_size; /* sizeof(thinp_pool_options) as compiled by the caller */
	uint32_t version;     /* THINP_POOL_OPTIONS_VERSION */
	uint32_t features;    /* THINP_POOL_* feature bits */
	/* Data block size in bytes: a multiple of 64 KiB between 64 KiB and
	 * 1 GiB. Format: 0 (INIT) means 64 KiB. Open: 0 accepts the pool's
	 * size, anything else must equal it (-EINVAL). */
	uint32_t data_block_size;
	/* Low-water mark in data blocks; 0 disables the callback. */
	uint64_t low_water_blocks;
	thinp_pool_low_water_fn low_water_fn; /* may be NULL */
	void *low_water_ctx;
	/* How long a write waits for a data resize when the pool is out of data
	 * space (without ERROR_IF_NO_SPACE), in milliseconds; 0 waits forever.
	 * After a timeout, no-space writes fail at once until the next resize
	 * (as the kernel does). INIT: 60000. */
	uint32_t no_space_timeout_ms;
	/* Commit every this many milliseconds from a pool thread if the
	 * metadata changed (a write provisioned or copied a block, a discard
	 * unmapped one, a device was created...); 0 (INIT) commits only on
	 * flush, on request and on close. Such a commit flushes the data device
	 * first, so writes completed before it starts survive a crash; with no
	 * metadata change there is no timed commit, and overwrites of blocks
	 * already provisioned are durable only after a flush (thinp_thin_flush,
	 * thinp_pool_commit), as on a disk with a write cache. If the thread
	 * cannot be started, format and open fail (-EAGAIN). */
	uint32_t commit_interval_ms;
	/* May be NULL: messages are dropped. Messages of every layer under the
	 * pool are queued and handed to log_fn, in order, with no library lock
	 * held, before the pool call that logged them returns (or, when
	 * several threads call at once, by whichever is delivering): log_fn
	 * may call any pool function (except during thinp_pool_close(), whose
	 * last messages arrive when the pool is gone). At most 256 wait;
	 * beyond that they are counted and one warning says how many were
	 * dropped. */
	thinp_log_fn log_fn;
	void *log_ctx;
	/* Metadata block cache limit in bytes; 0 = the block manager's default. */
	uint64_t metadata_cache_bytes;
	/* Fields added in later versions go here, each marked "since version N". */
} thinp_pool_options;

#define THINP_POOL_OPTIONS_INIT                                                            \
	{ sizeof(thinp_pool_options), THINP_POOL_OPTIONS_VERSION, 0, 0, 0, NULL, NULL,          \
	  60000, 0, NULL, NULL, 0 }

/*
 * Pool status, filled by thinp_pool_get_status(). Set struct_size (the INIT
 * macro does); the library fills at most that many bytes.
 */
typedef struct thinp_pool_status {
	uint32_t struct_size;
	uint32_t mode;            /* THINP_POOL_MODE_* */
	uint64_t transaction_id;  /* the userspace transaction id */
	/* Metadata blocks (4 KiB) in use and in total. As in the kernel's
	 * status line, "used" includes the reserve kept for commits
	 * (min(4096, total / 10) blocks). */
	uint64_t metadata_used;
	uint64_t metadata_total;
	uint64_t data_used;       /* data blocks with a reference */
	uint64_t data_total;      /* data blocks in the pool */
	uint64_t held_root;       /* metadata snapshot block, 0 = none */
	uint32_t data_block_size; /* bytes */
	uint32_t features;        /* THINP_POOL_* bits in effect */
	uint32_t needs_check;     /* 1 if the metadata asks for thin_check */
	uint32_t time;            /* the pool's snapshot clock */
} thinp_pool_status;

#define THINP_POOL_STATUS_INIT { sizeof(thinp_pool_status), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/*
 * thinp_pool_format - create a new, empty pool and open it.
 * @out:  receives the pool; the caller closes it with thinp_pool_close().
 * @meta: the metadata device (at least 1 MiB used, at most ~15.9 GiB).
 * @data: the data device; the pool starts with floor(size / block size)
 *        data blocks.
 * @opts: options (data_block_size 0 means 64 KiB). NULL: the INIT defaults.
 * Both devices are borrowed: they must stay open until thinp_pool_close()
 * returns. Anything on @meta is overwritten. The pool owns @meta
 * exclusively (thinp_io_lock()) from before it writes until it is closed.
 * Errors: -EINVAL (bad options, THINP_POOL_READ_ONLY), -ENOSPC (@meta too
 * small to hold the metadata), -EROFS (@meta or @data is a read-only
 * handle), -EBUSY (another writer owns @meta: the log callback gets
 * "metadata device is in use by another writer"), -EIO, -ENOMEM, -EAGAIN
 * (no commit thread, see commit_interval_ms). A data device smaller than
 * one block gives a pool of 0 data blocks.
 * Thread-safe (it touches no shared state). Since 1.0.
 */
THINP_API int thinp_pool_format(thinp_pool **out, thinp_io *meta, thinp_io *data,
				const thinp_pool_options *opts);

/*
 * thinp_pool_open - open an existing pool.
 * @out, @meta, @data: as for thinp_pool_format(). With a read-only @meta or
 *        @data handle the pool opens read-only. A metadata superblock that
 *        asks for a check (needs_check) opens read-only too.
 * As the kernel does when it loads a pool, a read-write open takes into use
 * a data or metadata device that grew while the pool was closed (a resize,
 * committed); a data device smaller than the pool's data blocks is refused.
 * Ownership: an open for writing (no THINP_POOL_READ_ONLY, a writable @meta)
 * takes @meta's exclusive lock (thinp_io_lock()) before reading it and keeps
 * it until thinp_pool_close(), even if needs_check then makes the pool
 * read-only, so two processes never write one pool. A read-only open takes
 * no lock: it works while another process (or the kernel) owns the pool,
 * e.g. to read a held metadata snapshot, but the live metadata may change
 * under it.
 * Errors: -EINVAL (bad options, block size mismatch, data device too
 * small), -EBUSY (opening for writing, and another writer owns @meta, the
 * caller's own thinp_io_lock() included: the log callback gets "metadata
 * device is in use by another writer"),
 * -EILSEQ/-ENOTBLK (corrupt metadata), -ENODATA (unformatted metadata),
 * -EIO, -ENOMEM, -EAGAIN (no commit thread, see commit_interval_ms).
 * Since 1.0.
 */
THINP_API int thinp_pool_open(thinp_pool **out, thinp_io *meta, thinp_io *data,
			      const thinp_pool_options *opts);

/*
 * thinp_pool_close - commit (if writable and not failed), stop the commit
 * thread, release the metadata device's lock and free the pool. Every thin
 * volume of the pool must be closed first (-EBUSY otherwise, and the pool
 * stays open). NULL returns 0.
 * Returns the commit's error, the pool being freed anyway. Since 1.0.
 */
THINP_API int thinp_pool_close(thinp_pool *pool);

/*
 * thinp_pool_commit - flush the data device, then commit the metadata.
 * When it returns 0, every write completed before the call is durable.
 * Errors: -EROFS (read-only or failed pool), -EIO (the pool then fails).
 * Concurrent callers share one commit. Thread-safe. Since 1.0.
 */
THINP_API int thinp_pool_commit(thinp_pool *pool);

/* thinp_pool_get_status - fill *st (see thinp_pool_status). -EINVAL for a
 * struct_size below 8. Thread-safe. Since 1.0. */
THINP_API int thinp_pool_get_status(thinp_pool *pool, thinp_pool_status *st);

/*
 * thinp_pool_errmsg - copy the message about the last failure on this pool
 * ("" when none) into @buf, snprintf-style: at most @len - 1 bytes and a
 * NUL when @len > 0 (@buf may be NULL when @len is 0). Returns the message's
 * full length, so a return >= @len means it was cut; a NULL pool gives "".
 * The copy is taken under the lock that guards the message: thread-safe,
 * and with several threads failing at once, the message is one of theirs,
 * whole. Since 1.0.
 */
THINP_API size_t thinp_pool_errmsg(thinp_pool *pool, char *buf, size_t len);

/*
 * thinp_pool_resize_data - grow the pool to @nr_blocks data blocks and
 * commit. Writes waiting for space go on. The data device must already hold
 * that many blocks. Errors: -EINVAL (shrinking, beyond the data device or
 * 2^40 blocks), -EROFS, -ENOSPC (no metadata space), -EIO. Since 1.0.
 */
THINP_API int thinp_pool_resize_data(thinp_pool *pool, uint64_t nr_blocks);

/*
 * thinp_pool_resize_metadata - grow the metadata space map to @nr_blocks
 * 4 KiB blocks and commit. The metadata device must already hold that many
 * blocks. Allowed while the pool is read-only because metadata ran out, and
 * returns it to RW. Errors: -EINVAL (shrinking, beyond the device or the
 * format's maximum), -EROFS, -ENOSPC, -EIO. Since 1.0.
 */
THINP_API int thinp_pool_resize_metadata(thinp_pool *pool, uint64_t nr_blocks);

/*
 * thinp_pool_set_transaction_id - if the pool's id is @old, set it to @new
 * and commit (compare and swap). Errors: -EINVAL (mismatch), -EROFS.
 * Since 1.0.
 */
THINP_API int thinp_pool_set_transaction_id(thinp_pool *pool, uint64_t old, uint64_t new_id);

/*
 * thinp_pool_reserve_metadata_snap / thinp_pool_release_metadata_snap - take
 * or drop the metadata snapshot (held root) that tools read with -m. Each
 * commits. Errors: reserve -EBUSY (one exists); release -EINVAL (none);
 * both -EROFS, -ENOSPC. Since 1.0.
 */
THINP_API int thinp_pool_reserve_metadata_snap(thinp_pool *pool);
THINP_API int thinp_pool_release_metadata_snap(thinp_pool *pool);

/*
 * thinp_pool_create_thin - create an empty thin volume with id @id
 * (0 .. 2^24-1) and commit. Errors: -EEXIST, -EINVAL (id out of range),
 * -EROFS, -ENOSPC (metadata). Since 1.0.
 */
THINP_API int thinp_pool_create_thin(thinp_pool *pool, uint64_t id);

/*
 * thinp_pool_create_snap - create volume @id as a snapshot of volume @origin
 * (open or not, itself a snapshot or not) and commit. Writes to @origin that
 * complete before the call returns are in the snapshot; writes in flight
 * during the call are in it or not. Errors: -EEXIST (@id used), -ENODATA (no
 * @origin), -EINVAL, -EROFS, -ENOSPC. Since 1.0.
 */
THINP_API int thinp_pool_create_snap(thinp_pool *pool, uint64_t id, uint64_t origin);

/*
 * thinp_pool_delete_thin - delete volume @id and commit; blocks no other
 * volume shares are freed. Errors: -EBUSY (the volume is open), -ENODATA,
 * -EROFS. Since 1.0.
 */
THINP_API int thinp_pool_delete_thin(thinp_pool *pool, uint64_t id);

#ifdef __cplusplus
}
#endif
#endif
