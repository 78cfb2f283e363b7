/*
 * libthinp backup: an incremental backup of a live pool that someone else
 * owns (the kernel's dm-thin, or another libthinp process), as a stream
 * (stream.h) that thinp_receive() (replica.h) accepts. docs/REPLICA.md,
 * "Backup of a live pool", says what the caller must hold and why.
 *
 * ABI tier: metadata (version nodes LIBTHINP_META_1.N): it reads the pool's
 * metadata device directly, at the level of meta.h, without opening the pool.
 *
 * What it does is what users do by hand around `dmsetup message POOL 0
 * reserve_metadata_snap`: it opens the metadata read-only (the caller gives
 * an io opened with THINP_IO_RDONLY, and THINP_IO_DIRECT for a pool the
 * kernel owns), takes no lock, reads only the superblock's held root and
 * what hangs from it, finds DEV (and BASE) there, walks DEV's mappings (full)
 * or the changes-only delta BASE -> DEV, and reads each changed run from the
 * data device at DEV's data blocks in the held root. Before the END record
 * it reads the live superblock again: if the held root changed (released,
 * or released and reserved again), the stream is cut (-ESTALE) and never
 * ends, so a receiver cannot take it for a good one.
 *
 * Identity. The kernel's metadata keeps no guid, so the stream's guids are
 * derived (thinp_backup_guid) from a caller's pool id and the device's
 * details (id, creation time, creation transaction), which do not change in
 * the device's life: the full backup of a snapshot and the incremental from
 * it name it with the same guid, and the chain is accepted by thinp_receive.
 */
#ifndef LIBTHINP_BACKUP_H
#define LIBTHINP_BACKUP_H

#include <stddef.h>
#include <stdint.h>
#include <libthinp/common.h>
#include <libthinp/io.h>
#include <libthinp/meta.h>
#include <libthinp/stream.h>

#ifdef __cplusplus
extern "C" {
#endif

/* thinp_backup's base for a full stream. */
#define THINP_BACKUP_FULL UINT64_MAX

/* The version of thinp_backup_options this header describes. */
#define THINP_BACKUP_OPTIONS_VERSION 1

/* Progress: @done bytes of data read of @total (the data the stream will
 * carry, known from the metadata before any data is read). */
typedef void (*thinp_backup_progress_fn)(uint64_t done, uint64_t total, void *ctx);

/* Options of thinp_backup(). Fill from THINP_BACKUP_OPTIONS_INIT; NULL means
 * these defaults. */
typedef struct thinp_backup_options {
	uint32_t struct_size;      /* sizeof(thinp_backup_options) as compiled by the caller */
	uint32_t version;          /* THINP_BACKUP_OPTIONS_VERSION */
	uint64_t checkpoint_bytes; /* as thinp_stream_writer_begin(); 0: the default */
	/* DEV's size in bytes (the size of its dm table line); 0: up to its
	 * highest block mapped in the held root. */
	uint64_t size;
	/* Mixed into the derived guids: names the pool among those backed up
	 * into one receiving pool. Must stay the same for a whole chain. */
	uint8_t pool_id[16];
	/* If not NULL, receives a NUL-terminated description of a failure. */
	char *errbuf;
	size_t errbuf_size;
	/* If not NULL, called after each chunk of data read. */
	thinp_backup_progress_fn progress;
	void *progress_ctx;
	/* Fields added in later versions go here. */
} thinp_backup_options;

#define THINP_BACKUP_OPTIONS_INIT \
	{ sizeof(thinp_backup_options), THINP_BACKUP_OPTIONS_VERSION, 0, 0, {0}, NULL, 0, \
	  NULL, NULL }

/* What thinp_backup() did, filled on return (after an error too, as far as
 * it got). Output struct: set struct_size (THINP_BACKUP_RESULT_INIT); the
 * library fills at most struct_size bytes and sets struct_size to what it
 * filled. */
typedef struct thinp_backup_result {
	uint32_t struct_size; /* sizeof(thinp_backup_result) as compiled by the caller */
	uint32_t reserved;    /* 0 */
	/* The held metadata snapshot's block the backup read: what
	 * `dmsetup status` shows as the pool's held metadata root. 0 if the
	 * backup found none held. */
	uint64_t held_root;
	/* Data bytes read from the data device and sent (DATA records). */
	uint64_t data_bytes;
	/* Fields added in later versions go here. */
} thinp_backup_result;

#define THINP_BACKUP_RESULT_INIT { sizeof(thinp_backup_result), 0, 0, 0 }

/*
 * thinp_backup - write device @dev, as the held metadata snapshot of the
 * pool on @meta_io has it, as a stream.
 * @meta_io: the pool's metadata device, read-only (THINP_IO_RDONLY; with
 *          THINP_IO_DIRECT for a pool the kernel owns, so the page cache
 *          cannot hand out stale blocks). Not owned.
 * @data_io: the pool's data device, read-only (THINP_IO_DIRECT likewise).
 *          Not owned.
 * @dev:    the device to send, a snapshot nobody writes.
 * @base:   THINP_BACKUP_FULL, or the device the receiver already has (the
 *          previous backup's @dev), also a snapshot nobody writes.
 * @write, @ctx: the transport (stream.h).
 * @opts:   may be NULL (the defaults); only read, copied at the start.
 * @result: may be NULL; else filled on return, whatever it returns (except
 *          -EINVAL for bad arguments, before any work).
 * The caller holds the metadata snapshot during the whole call: it reserved
 * it (kernel: `dmsetup message POOL 0 reserve_metadata_snap`; a libthinp
 * owner: thinp_pool_reserve_metadata_snap) and releases it afterwards.
 * Errors: -ENODATA (no metadata snapshot held, or @dev / @base not in it),
 * -ESTALE (the held root changed during the backup: the stream is cut),
 * -EINVAL (bad arguments: options of another version or too small a
 * struct_size, a result whose struct_size is too small), -ENOMEM, -EIO,
 * -EILSEQ (the metadata does not validate), and the write callback's errors; after an error the
 * stream is cut (a receiver sees it truncated).
 * Thread safety: reentrant; it shares nothing between calls. Since 1.0.
 */
THINP_API int thinp_backup(thinp_io *meta_io, thinp_io *data_io, uint64_t dev, uint64_t base,
			   thinp_stream_write_fn write, void *ctx,
			   const thinp_backup_options *opts, thinp_backup_result *result);

/*
 * thinp_backup_guid - the guid thinp_backup gives device @d of the pool named
 * @pool_id: a fixed mix of the pool id, the device id, its creation time and
 * creation transaction id. Never all zeroes. Thread-safe. Since 1.0.
 */
THINP_API void thinp_backup_guid(const uint8_t pool_id[16], const thinp_meta_device *d,
				 uint8_t guid[16]);

#ifdef __cplusplus
}
#endif
#endif
