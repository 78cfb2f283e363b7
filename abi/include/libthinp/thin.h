/*
 * libthinp thin volumes: block devices provisioned from a pool (pool.h).
 *
 * ABI tier: stable (version nodes LIBTHINP_1.N).
 *
 * A volume reads and writes like a block device of the size given at open.
 * Semantics are the kernel thin target's:
 *  - reading a block that was never written returns zeroes, or the external
 *    origin's data when the volume was opened with one (zeroes past the
 *    origin's end); the origin is never written;
 *  - the first write to a block provisions a data block; the part of the new
 *    block the write does not cover is zeroed (unless the pool has
 *    skip_block_zeroing) or copied from the origin;
 *  - writing a block shared with a snapshot copies it first ("breaking
 *    sharing"); the other volume keeps the old data;
 *  - a discard unmaps only the blocks it covers entirely (the range is rounded
 *    inwards to block boundaries; a discard inside one block does nothing);
 *    a discarded block reads as never written;
 *  - a write is durable once a later thinp_thin_flush() (or pool commit)
 *    returns 0.
 *
 * Offsets and lengths are in bytes and must be multiples of the largest
 * alignment of the pool's data device and the origin (1 for byte-granular
 * backends); requests past the volume's size fail with -EINVAL.
 *
 * Threading: all calls may run concurrently, on one volume or many; writes to
 * the same bytes from two threads at once leave either one's data.
 */
#ifndef LIBTHINP_THIN_H
#define LIBTHINP_THIN_H

#include <stdint.h>
#include <stddef.h>
#include <libthinp/common.h>
#include <libthinp/io.h>
#include <libthinp/pool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An open thin volume. Opaque. */
typedef struct thinp_thin thinp_thin;

#define THINP_THIN_OPTIONS_VERSION 1

/* Flags for thinp_thin_options.flags. */
#define THINP_THIN_RDONLY (1u << 0) /* refuse writes, discards and write-zeroes */

/* Options for thinp_thin_open(). Fill from THINP_THIN_OPTIONS_INIT. */
typedef struct thinp_thin_options {
	uint32_t struct_size; /* sizeof(thinp_thin_options) as compiled by the caller */
	uint32_t version;     /* THINP_THIN_OPTIONS_VERSION */
	uint32_t flags;       /* THINP_THIN_* */
	uint32_t reserved;    /* 0 */
	uint64_t size;        /* virtual size in bytes; required (> 0) */
	/* Optional read-only external origin: unprovisioned blocks read from
	 * it. Borrowed: it must stay open until the volume is closed. Every
	 * snapshot of such a volume must be opened with the same origin. */
	thinp_io *origin;
	/* Fields added in later versions go here, each marked "since version N". */
} thinp_thin_options;

#define THINP_THIN_OPTIONS_INIT { sizeof(thinp_thin_options), THINP_THIN_OPTIONS_VERSION, 0, 0, 0, NULL }

/*
 * thinp_thin_open - open volume @id of @pool.
 * @out: receives the volume, closed with thinp_thin_close() before the pool.
 * Several handles on one volume may be open at once.
 * Errors: -ENODATA (no such volume), -EINVAL (bad options), -ENOMEM.
 * Since 1.0.
 */
THINP_API int thinp_thin_open(thinp_thin **out, thinp_pool *pool, uint64_t id,
			      const thinp_thin_options *opts);

/* thinp_thin_close - forget the handle (does not flush). NULL is a no-op.
 * Since 1.0. */
THINP_API void thinp_thin_close(thinp_thin *thin);

/* thinp_thin_size - the virtual size given at open, in bytes. Since 1.0. */
THINP_API uint64_t thinp_thin_size(const thinp_thin *thin);

/* thinp_thin_id - the volume's id. Since 1.0. */
THINP_API uint64_t thinp_thin_id(const thinp_thin *thin);

/*
 * thinp_thin_read - read @len bytes at @off into @buf.
 * Errors: -EINVAL (range/alignment), -EIO (a device failed, or the pool is
 * in FAIL mode), -EILSEQ/-ENOTBLK (a corrupt mapping block: the pool then
 * fails), -ENOMEM (the pool stays up). Since 1.0.
 */
THINP_API int thinp_thin_read(thinp_thin *thin, void *buf, uint64_t len, uint64_t off);

/*
 * thinp_thin_write - write @len bytes from @buf at @off, provisioning and
 * breaking sharing as needed. Not durable until a flush.
 * Errors: -EINVAL, -EROFS (read-only volume or pool; see READ_ONLY in
 * pool.h for what a read-only pool still writes), -ENOSPC (out of data
 * space with error_if_no_space, or after the no-space timeout; or out of
 * metadata space, and the pool is then read-only), -EIO, -EILSEQ/-ENOTBLK
 * (a corrupt mapping block: the pool then fails), -ENOMEM. On an error, a
 * prefix of the range may have been written. Since 1.0.
 */
THINP_API int thinp_thin_write(thinp_thin *thin, const void *buf, uint64_t len, uint64_t off);

/*
 * thinp_thin_write_zeroes - as thinp_thin_write() with zeroes; blocks never
 * provisioned (and without an origin) are left unprovisioned. Since 1.0.
 */
THINP_API int thinp_thin_write_zeroes(thinp_thin *thin, uint64_t len, uint64_t off);

/*
 * thinp_thin_discard - unmap the blocks entirely inside [off, off + len);
 * with discard passdown, data blocks no other volume uses are discarded on
 * the data device. Errors: -EOPNOTSUPP (pool has ignore_discard), -EINVAL,
 * -EROFS, -ENOSPC (out of metadata space: the pool is then read-only), -EIO,
 * -EILSEQ/-ENOTBLK/-ENOMEM (a metadata failure: the pool then fails).
 * Since 1.0.
 */
THINP_API int thinp_thin_discard(thinp_thin *thin, uint64_t len, uint64_t off);

/*
 * thinp_thin_flush - make every write completed before the call durable:
 * flush the data device, then commit the pool's metadata (concurrent flushes
 * share one commit). Errors: -EIO (the pool then fails), -EROFS (failed pool).
 * On a read-only pool it only flushes the data device. Since 1.0.
 */
THINP_API int thinp_thin_flush(thinp_thin *thin);

/* One mapping, for tools (thinp_pool_thin_map()). Output struct: set
 * struct_size (THINP_MAPPING_INIT); the library fills at most that many
 * bytes and sets struct_size to the number it filled. */
typedef struct thinp_mapping {
	uint32_t struct_size; /* sizeof(thinp_mapping) as compiled by the caller */
	uint32_t time;        /* the pool time stamped when it was mapped */
	uint64_t data_block;  /* block number on the data device */
	/* 1 if the block may be shared with another volume (the volume was
	 * snapshotted after the mapping was made): a write would copy it. */
	uint32_t shared;
	uint32_t reserved;    /* 0 */
} thinp_mapping;

#define THINP_MAPPING_INIT { sizeof(thinp_mapping), 0, 0, 0, 0 }

/*
 * thinp_pool_thin_map - look up virtual block @vblock of volume @id (open or
 * not). Errors: -ENODATA (not mapped, or no such volume), -EINVAL (@out NULL
 * or its struct_size below this header's sizeof(thinp_mapping)), -EIO.
 * Thread-safe.
 * Since 1.0.
 */
THINP_API int thinp_pool_thin_map(thinp_pool *pool, uint64_t id, uint64_t vblock,
				  thinp_mapping *out);

/*
 * thinp_pool_thin_next_map - the first mapping of volume @id at or after
 * virtual block @vblock: its block in *vblock_out and the mapping in *out.
 * Walk a whole map by restarting at *vblock_out + 1. Errors: -ENODATA (none
 * left, or no such volume), -EINVAL (as for thinp_pool_thin_map()), -EIO.
 * Since 1.0.
 */
THINP_API int thinp_pool_thin_next_map(thinp_pool *pool, uint64_t id, uint64_t vblock,
				       uint64_t *vblock_out, thinp_mapping *out);

/*
 * thinp_pool_list_thins - the ids of the pool's volumes, ascending, as the
 * metadata has them now: the first @max into @ids (which may be NULL when
 * @max is 0), and the number of volumes in *@total, so a caller whose array
 * was too small knows the size to retry with. Errors: -EINVAL (NULL pool or
 * total), -EOPNOTSUPP (a metadata implementation that cannot list),
 * -ENOMEM, -EIO. Thread-safe. Since 1.0.
 */
THINP_API int thinp_pool_list_thins(thinp_pool *pool, uint64_t *ids, size_t max, size_t *total);

/* Per-volume figures (thinp_pool_get_thin_status()). Fill from the INIT macro. */
typedef struct thinp_thin_status {
	uint32_t struct_size;
	uint32_t creation_time;     /* pool time when created */
	uint64_t mapped_blocks;     /* blocks provisioned */
	uint64_t highest_mapped;    /* highest mapped virtual block + 1; 0 = none */
	uint64_t transaction_id;    /* pool transaction id when created */
	uint32_t snapshotted_time;  /* pool time of its last snapshot event */
	uint32_t open_count;        /* handles open on it */
} thinp_thin_status;

#define THINP_THIN_STATUS_INIT { sizeof(thinp_thin_status), 0, 0, 0, 0, 0, 0 }

/*
 * thinp_pool_get_thin_status - figures for volume @id; struct_size becomes
 * the number of bytes filled. Errors: -ENODATA, -EINVAL (struct_size below
 * 8), -EIO. Since 1.0.
 */
THINP_API int thinp_pool_get_thin_status(thinp_pool *pool, uint64_t id, thinp_thin_status *st);

#ifdef __cplusplus
}
#endif
#endif
