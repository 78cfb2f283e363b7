/*
 * libthinp thin metadata: the dm-thin pool metadata, byte for byte as the
 * Linux kernel keeps it (thin_check/thin_dump/thin_restore read what this
 * writes and vice versa).
 *
 * A thinp_meta handle owns one pool's metadata device: the superblock, the
 * device-details tree, the two-level mapping tree (device -> virtual block ->
 * data block + time) and the two space maps (metadata blocks, data blocks).
 * It does not touch the data device: the pool runtime above it moves data.
 *
 * ABI tier: metadata (version nodes LIBTHINP_META_1.N), separate from the
 * stable tier of <libthinp/thinp.h> (io.h, pool.h, thin.h), which does not
 * include this header. It is for tools that work on pool metadata alone
 * (check, dump, restore, repair, messages on a closed pool), at the level of
 * the kernel's dm-thin metadata; a program that reads and writes thin
 * volumes needs only the stable tier. The metadata tier follows the same
 * rules (a released symbol never changes meaning) but versions separately,
 * so that it can grow with the on-disk format without touching the stable
 * tier. Two writers (a pool, a read-write thinp_meta handle) must never
 * have one metadata device open at once: see thinp_meta_open() on taking
 * the device's exclusive lock first.
 *
 * Transactions. Every change is made copy-on-write in memory and becomes
 * durable only at thinp_meta_commit(), which writes every new block, flushes,
 * then writes and flushes the superblock: after a crash the device holds the
 * last committed state, never a mixture. thinp_meta_abort() forgets the open
 * transaction. The caller flushes its data device BEFORE committing, so that
 * data is durable before metadata points at it (the kernel's order).
 * The change functions below do NOT commit by themselves (as in the kernel's
 * metadata layer); thinp_meta_message() does, like the pool target does after
 * each message.
 *
 * Sticky failure. If a change fails after it started modifying metadata
 * (I/O error, corruption found), the handle aborts the transaction, sets the
 * NEEDS_CHECK flag in the superblock on the device (best effort, as the
 * kernel does) and enters THINP_META_MODE_FAIL: every later change or commit
 * returns -EROFS until the handle is closed and the metadata checked and
 * reopened. Reads keep working on the last committed state. Refusals found
 * before anything changed (-EEXIST, -ENODATA, -EINVAL, -EBUSY) are not
 * failures.
 *
 * Out of metadata space. A change or commit that needs a metadata block when
 * none is free returns -ENOSPC, and the open transaction is rolled back to
 * the last commit at once (every change since then is lost; nothing of the
 * committed state was written, so no NEEDS_CHECK). The handle enters
 * THINP_META_MODE_NO_SPACE: reads answer from the last commit, every change
 * and commit returns -EROFS, until thinp_meta_abort() (which acknowledges
 * the rollback: back to RW on the last commit). Growing the metadata is the
 * pool's business (thinp_pool_resize_metadata).
 *
 * Units. Data block size in 512-byte sectors (like the kernel's table line
 * and the superblock): 128 .. 2,097,152, a multiple of 128 (64 KiB .. 1 GiB).
 * Data blocks and virtual blocks are counted in data blocks; metadata in
 * 4 KiB blocks. Thin device ids are 64-bit keys on disk; the change functions
 * accept ids up to THINP_META_MAX_API_DEV_ID (what thin_restore accepts),
 * thinp_meta_message() up to THINP_META_MAX_DEV_ID (the kernel's limit).
 *
 * Threading. A handle may be used from several threads: one read-write lock
 * per handle makes lookups, walks and queries shared and every change,
 * commit and abort exclusive (writers are preferred, so lookups cannot starve
 * them). Walk callbacks run with no lock held: the walk gathers its results
 * first, so callbacks may call any function of the handle; a change made from
 * a callback is not seen by the walk in progress.
 *
 * Errors (see libthinp/common.h): 0 or a negative errno. After an error,
 * thinp_meta_errmsg() gives a one-line explanation.
 */
#ifndef LIBTHINP_META_H
#define LIBTHINP_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libthinp/common.h>
#include <libthinp/io.h>
#include <libthinp/delta.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An open pool metadata device. Opaque. */
typedef struct thinp_meta thinp_meta;

/* Limits (FORMAT.md section 11). */
#define THINP_META_MAX_DEV_ID 16777215u          /* kernel message/table limit, 2^24-1 */
#define THINP_META_MAX_API_DEV_ID 4294967295u    /* change functions: 2^32-1 */
#define THINP_META_MIN_DATA_BLOCK_SIZE 128u      /* sectors (64 KiB) */
#define THINP_META_MAX_DATA_BLOCK_SIZE 2097152u  /* sectors (1 GiB) */
#define THINP_META_MAX_DATA_BLOCKS (1ull << 40)  /* 40-bit block field in mappings */
#define THINP_META_MAX_TIME 16777215u            /* 24-bit time field in mappings */
#define THINP_META_MAX_METADATA_BLOCKS 4161600ull /* 255 bitmaps of 16320 blocks */
#define THINP_META_BLOCK_SIZE 4096u              /* metadata block, bytes */

/* Superblock flag bits (thinp_meta_superblock.flags). */
#define THINP_META_FLAG_NEEDS_CHECK (1u << 0)

/* Flags for thinp_meta_options.flags. */
#define THINP_META_RDONLY (1u << 0) /* open read-only: every change returns -EROFS */

/* Handle modes (thinp_meta_status.mode). */
#define THINP_META_MODE_RW 0   /* read-write */
#define THINP_META_MODE_RO 1   /* opened read-only */
#define THINP_META_MODE_FAIL 2 /* a metadata operation failed: sticky read-only */
#define THINP_META_MODE_NO_SPACE 3 /* out of metadata space: rolled back, read-only
				      until abort or a metadata grow */

/*
 * Options for opening or formatting. Fill from THINP_META_OPTIONS_INIT.
 * NULL options mean the defaults.
 */
typedef struct thinp_meta_options {
	uint32_t struct_size; /* sizeof(thinp_meta_options) as compiled by the caller */
	uint32_t flags;       /* THINP_META_RDONLY */
	/* Receives warnings and error details; NULL: messages are dropped. Called
	 * with the handle's lock held: it must not call back into the handle. */
	thinp_log_fn log_fn;
	void *log_ctx;
	/* Soft limit of the metadata block cache in bytes; 0 = 16 MiB. */
	uint64_t cache_bytes;
} thinp_meta_options;

#define THINP_META_OPTIONS_INIT { sizeof(thinp_meta_options), 0, NULL, NULL, 0 }

/* Flags for thinp_meta_format_params.flags. */
#define THINP_META_FORMAT_OVERWRITE (1u << 0) /* format even over a valid superblock */

/* What a new pool looks like. Fill from THINP_META_FORMAT_PARAMS_INIT. */
typedef struct thinp_meta_format_params {
	uint32_t struct_size;     /* sizeof(thinp_meta_format_params) */
	uint32_t flags;           /* THINP_META_FORMAT_OVERWRITE */
	uint32_t data_block_size; /* sectors, 128..2097152, multiple of 128 */
	uint32_t reserved;        /* 0 */
	uint64_t nr_data_blocks;  /* size of the data device in data blocks (< 2^40); may be 0 */
} thinp_meta_format_params;

#define THINP_META_FORMAT_PARAMS_INIT { sizeof(thinp_meta_format_params), 0, 128, 0, 0 }

/*
 * Superblock fields as a caller sees them. Output struct: set struct_size
 * (THINP_META_SUPERBLOCK_INIT); the library fills at most that many bytes.
 */
typedef struct thinp_meta_superblock {
	uint32_t struct_size;
	uint32_t flags;            /* THINP_META_FLAG_* */
	uint32_t version;          /* 1 or 2 */
	uint32_t time;             /* the pool's snapshot clock */
	uint64_t transaction_id;
	uint64_t held_root;        /* block of the metadata snapshot, 0 = none */
	uint32_t data_block_size;  /* sectors */
	uint32_t metadata_block_size; /* sectors, as stored (always 8 when we write) */
	uint64_t nr_data_blocks;   /* data space map size; 0 for a metadata snapshot (as thin_dump) */
	uint64_t metadata_nr_blocks; /* metadata space map size (authoritative); 0 for a snapshot */
	uint64_t sb_metadata_nr_blocks; /* the superblock's metadata_nr_blocks (set at format) */
	uint32_t compat_flags;
	uint32_t compat_ro_flags;
	uint32_t incompat_flags;
	uint32_t reserved;
	uint64_t data_mapping_root;   /* block numbers, for tools and debugging */
	uint64_t device_details_root;
	uint64_t blocknr;             /* where this superblock lives (0 live, else the snapshot) */
} thinp_meta_superblock;

#define THINP_META_SUPERBLOCK_INIT \
	{ sizeof(thinp_meta_superblock), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/* One thin device's details (FORMAT.md 5.1). Output struct: set struct_size
 * (THINP_META_DEVICE_INIT). In walk callbacks the library fills all of it. */
typedef struct thinp_meta_device {
	uint32_t struct_size;
	uint32_t creation_time;    /* pool time when created */
	uint64_t dev_id;
	uint64_t mapped_blocks;    /* number of mappings, exact */
	uint64_t transaction_id;   /* pool transaction id when created */
	uint32_t snapshotted_time; /* pool time of its last snapshot event */
	uint32_t reserved;
} thinp_meta_device;

#define THINP_META_DEVICE_INIT { sizeof(thinp_meta_device), 0, 0, 0, 0, 0, 0 }

/* Pool status (FORMAT.md 10.3/16). Output struct: THINP_META_STATUS_INIT. */
typedef struct thinp_meta_status {
	uint32_t struct_size;
	uint32_t mode;                  /* THINP_META_MODE_* */
	uint64_t transaction_id;
	/* As the kernel reports them: used includes the reserve of
	 * min(4096, total/10) blocks, so used == total means "full". */
	uint64_t used_metadata_blocks;
	uint64_t total_metadata_blocks;
	uint64_t used_data_blocks;
	uint64_t total_data_blocks;
	uint64_t held_root;             /* 0 = none ("-" in dmsetup status) */
	uint32_t needs_check;           /* 1 if the NEEDS_CHECK flag is set */
	uint32_t reserved;
	uint64_t metadata_reserve;      /* the reserve included above */
	uint64_t free_metadata_blocks;  /* raw free count of the metadata space map */
	uint64_t metadata_low_watermark; /* min(1024, total/4) */
} thinp_meta_status;

#define THINP_META_STATUS_INIT { sizeof(thinp_meta_status), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/*
 * A run of mappings: virtual blocks virt_begin .. virt_begin+length-1 map to
 * data blocks data_begin .. data_begin+length-1, all stamped with `time`.
 * Filled by the library (struct_size = sizeof as the library knows it).
 */
typedef struct thinp_meta_run {
	uint32_t struct_size;
	uint32_t time;
	uint64_t virt_begin;
	uint64_t data_begin;
	uint64_t length;
} thinp_meta_run;

/* Which metadata a walk reads. */
#define THINP_META_LIVE 0ull                  /* the live metadata, open transaction included */
#define THINP_META_HELD_ROOT UINT64_MAX       /* the held metadata snapshot (-ENODATA if none) */
/* Any other value names a block holding a metadata-snapshot superblock, like
 * `thin_dump -m BLOCK`. */

/* ---- open, format, close -------------------------------------------------- */

/*
 * thinp_meta_format - write a new, empty pool metadata on io and open it.
 * @out:    receives the handle (thinp_meta_close()).
 * @io:     the metadata device; not owned, must outlive the handle. Its size
 *          gives the metadata size; a device larger than the format can use
 *          (4,161,600 blocks, ~15.9 GiB) is used up to that limit and a
 *          warning goes to the log callback, as the kernel does.
 * @params: data block size and data device size.
 * @opts:   may be NULL; THINP_META_RDONLY is refused (-EINVAL).
 * Layout (FORMAT.md 8.5): version 2, uuid zero, time 0, transaction 0, both
 * space maps, empty details and mapping trees; committed before returning.
 * Errors: -EINVAL (bad block size, nr_data_blocks >= 2^40, unknown struct
 * version), -EEXIST (block 0 holds a valid superblock and
 * THINP_META_FORMAT_OVERWRITE is not set), -ENOSPC (device too small: fewer
 * than 16 blocks), -EROFS (read-only io), -EIO, -ENOMEM.
 * Since 1.0.
 */
THINP_API int thinp_meta_format(thinp_meta **out, thinp_io *io,
				const thinp_meta_format_params *params,
				const thinp_meta_options *opts);

/*
 * thinp_meta_open - open existing pool metadata.
 * @out:  receives the handle (thinp_meta_close()); NULL on error.
 * @io:   the metadata device; not owned, must outlive the handle.
 * @opts: may be NULL (read-write, no log).
 * Checks the superblock: checksum, blocknr 0, magic, version 1 or 2, no
 * incompat flags, no compat_ro flags for read-write, sizes; opens both space
 * maps. A read-only io forces a read-only handle.
 * It takes no lock on the device (thinp_io_lock()): a program that changes
 * metadata takes THINP_IO_LOCK_EXCLUSIVE on @io first, as the thinp tool
 * does, so that it is refused (-EBUSY) while a pool or another writer owns
 * the device, instead of corrupting it.
 * Errors: -ENODATA (block 0 is all zeroes: never formatted), -EILSEQ (bad
 * superblock; thinp_meta_open has no handle to give a message on, so the
 * reason goes to the log callback), -ENOTBLK, -EOPNOTSUPP (unknown incompat
 * or, read-write, compat_ro feature flags), -EIO, -ENOMEM, -EINVAL.
 * Since 1.0.
 */
THINP_API int thinp_meta_open(thinp_meta **out, thinp_io *io,
			      const thinp_meta_options *opts);

/*
 * thinp_meta_open_snapshot - open a metadata snapshot alone, read-only: for
 * a pool that the kernel or another process owns and writes meanwhile
 * (after `dmsetup message POOL 0 reserve_metadata_snap`).
 * @out:   receives the handle (thinp_meta_close()); NULL on error.
 * @io:    the metadata device, read-only; open it with THINP_IO_DIRECT so
 *         that what the owner wrote is read from the device, not from a
 *         stale page cache. Not owned, must outlive the handle.
 * @block: the snapshot superblock's block (the pool status line's held
 *         metadata root, or `thin_dump -m BLOCK`'s), or 0: read block 0
 *         once, checksum and magic checked, for its held root, and use
 *         nothing else of it.
 * @opts:  may be NULL; THINP_META_RDONLY is implied.
 * Only the snapshot superblock and the blocks its trees reach are ever
 * read: no space map is opened (the live ones change under a reader), and
 * the live superblock's roots, time and transaction are ignored. The
 * handle's superblock is the snapshot's: THINP_META_LIVE,
 * THINP_META_HELD_ROOT and its block all name the snapshot (any other
 * block: -EINVAL), for lookups, walks (thinp_meta_walk_*),
 * thinp_meta_get_superblock (whose blocknr then tells the snapshot's block)
 * and thinp_meta_delta_open.
 * Every change, commit and abort returns -EROFS; what needs the space maps
 * (thinp_meta_get_status, thinp_meta_check, data block counts) returns
 * -EOPNOTSUPP. The snapshot must stay held until the handle is closed:
 * once released its blocks may be reused, which this handle cannot see
 * (read the held root again afterwards to know the results were good).
 * Errors: -ENODATA (block 0 holds no held root), -EILSEQ (block 0 or the
 * snapshot superblock is invalid), -EINVAL (block 0 or beyond the device,
 * THINP_META_HELD_ROOT, bad options), -EIO, -ENOMEM.
 * Thread safety: as thinp_meta_open's handles. Since 1.0.
 */
THINP_API int thinp_meta_open_snapshot(thinp_meta **out, thinp_io *io, uint64_t block,
				       const thinp_meta_options *opts);

/*
 * thinp_meta_close - close the handle. The open transaction, if any, is
 * dropped (NOT committed). NULL is a no-op. Not to be called concurrently
 * with anything else on the handle. Since 1.0.
 */
THINP_API void thinp_meta_close(thinp_meta *meta);

/*
 * thinp_meta_errmsg - copy a one-line description of the last error on this
 * handle ("" if none) into @buf, as thinp_pool_errmsg() does: snprintf-style,
 * NUL-terminated when @len > 0, returning the full length. Thread-safe.
 * Since 1.0.
 */
THINP_API size_t thinp_meta_errmsg(thinp_meta *meta, char *buf, size_t len);

/* ---- transactions ------------------------------------------------------- */

/*
 * thinp_meta_commit - make every change since the last commit durable
 * (FORMAT.md 8.2: details, space maps, all blocks flushed, then the
 * superblock written and flushed). Flush the data device first.
 * Errors: -EROFS (read-only, failed or out-of-space handle), -ENOSPC (out of
 * metadata space: the transaction is rolled back, mode NO_SPACE), -EIO. Any
 * other failed commit puts the handle in THINP_META_MODE_FAIL.
 * Since 1.0.
 */
THINP_API int thinp_meta_commit(thinp_meta *meta);

/*
 * thinp_meta_abort - drop every change since the last commit and re-read the
 * committed state. Allowed in every mode; it leaves NO_SPACE for RW, never
 * FAIL.
 * Errors: -EIO, -EILSEQ (the committed superblock no longer validates),
 * -EROFS (a handle of thinp_meta_open_snapshot: it has no live state).
 * Since 1.0.
 */
THINP_API int thinp_meta_abort(thinp_meta *meta);

/* ---- pool messages ------------------------------------------------------ */

/*
 * thinp_meta_create_thin - a new thin device with no mappings; details
 * {mapped 0, transaction = pool transaction id, creation = snapshotted =
 * pool time}. Not committed.
 * Errors: -EEXIST (id in use), -EINVAL (id > THINP_META_MAX_API_DEV_ID),
 * -EROFS, -ENOSPC. Since 1.0.
 */
THINP_API int thinp_meta_create_thin(thinp_meta *meta, uint64_t dev);

/*
 * thinp_meta_message - run one pool message, exactly as the kernel's
 * thin-pool target parses it (`dmsetup message <pool> 0 "<msg>"`), then
 * commit:
 *   create_thin <id> | create_snap <id> <origin> | delete <id> |
 *   set_transaction_id <current> <new> | reserve_metadata_snap |
 *   release_metadata_snap
 * Names are case-insensitive; ids are decimal, at most THINP_META_MAX_DEV_ID;
 * transaction ids decimal 64-bit; words separated by blanks.
 * Errors: -EINVAL (unknown message, wrong argument count, bad number, plus
 * the operation's own), the operation's errors, then commit's.
 * Since 1.0.
 */
THINP_API int thinp_meta_message(thinp_meta *meta, const char *msg);

/* ---- devices and mappings ------------------------------------------------- */

/*
 * thinp_meta_lookup - the mapping of virtual block `vblock` of `dev`.
 * @data_block, @time, @shared: outputs, each may be NULL. *shared is true
 * when the mapping is possibly shared with another device (the device's
 * snapshotted_time > the mapping's time, FORMAT.md 5.4): writing it needs
 * copy-on-write.
 * Errors: -ENODATA (no such device, or unmapped: that answer leaves
 * thinp_meta_errmsg() as it was). Since 1.0.
 */
THINP_API int thinp_meta_lookup(thinp_meta *meta, uint64_t dev, uint64_t vblock,
				uint64_t *data_block, uint32_t *time, bool *shared);

/*
 * thinp_meta_insert_timed - map virtual block `vblock` of `dev` to
 * `data_block` at `time` (<= THINP_META_MAX_TIME), for restore tools. An old
 * mapping's block loses a reference; the caller's reference on data_block
 * (from thinp_meta_data_inc, or the count a restore sets up) moves into the
 * mapping; the device's mapped_blocks stays exact. Not committed.
 * Errors: -ENODATA (no such device), -EINVAL (data block beyond the data
 * device, or a time >= 2^24), -EROFS, -ENOSPC (out of metadata space, see
 * the top of this file). Since 1.0.
 */
THINP_API int thinp_meta_insert_timed(thinp_meta *meta, uint64_t dev, uint64_t vblock,
				      uint64_t data_block, uint32_t time);

/* ---- data space map ----------------------------------------------------- */

/* thinp_meta_data_inc - add one reference on a data block (a restore that
 * maps one block twice). Errors: -EINVAL (out of range), -EROFS. Since 1.0. */
THINP_API int thinp_meta_data_inc(thinp_meta *meta, uint64_t data_block);

/* ---- superblock, status, flags -------------------------------------------- */

/*
 * thinp_meta_get_superblock - superblock fields of the live metadata (open
 * transaction included) or of a metadata snapshot (source as for the walks).
 * Errors: -ENODATA (THINP_META_HELD_ROOT with none held), -EILSEQ/-ENOTBLK
 * (the named block is not a valid snapshot superblock). Since 1.0.
 */
THINP_API int thinp_meta_get_superblock(thinp_meta *meta, uint64_t source,
					thinp_meta_superblock *out);

/*
 * thinp_meta_set_superblock_fields - for restore tools: set the pool's time,
 * transaction id, flags (THINP_META_FLAG_NEEDS_CHECK) and version (1 or 2)
 * from `sb`; other fields are ignored. Not committed.
 * Errors: -EINVAL (version not 1/2, unknown flag bits), -EROFS. Since 1.0.
 */
THINP_API int thinp_meta_set_superblock_fields(thinp_meta *meta,
					       const thinp_meta_superblock *sb);

/*
 * thinp_meta_set_device_details - for restore tools: set a device's
 * transaction_id, creation_time and snapshotted_time from `d` (mapped_blocks
 * is the library's and is ignored). Not committed.
 * Errors: -ENODATA, -EROFS. Since 1.0.
 */
THINP_API int thinp_meta_set_device_details(thinp_meta *meta, uint64_t dev,
					    const thinp_meta_device *d);

/* thinp_meta_get_status - the kernel's pool status fields (open transaction
 * included). Errors: none beyond -EIO. Thread-safe. Since 1.0. */
THINP_API int thinp_meta_get_status(thinp_meta *meta, thinp_meta_status *out);

/* ---- walks ---------------------------------------------------------------- */

/* Walk callbacks: return 0 to continue; any other value stops the walk and
 * is returned by the walk function. */
typedef int (*thinp_meta_device_fn)(const thinp_meta_device *dev, void *ctx);
typedef int (*thinp_meta_run_fn)(const thinp_meta_run *run, void *ctx);

/*
 * thinp_meta_walk_devices - every device in ascending id order, with its
 * details, from `source` (THINP_META_LIVE, THINP_META_HELD_ROOT or a snapshot
 * block). Errors: -ENODATA (no held snapshot), -EILSEQ (corruption,
 * including a details key without a mapping subtree or vice versa), or the
 * callback's value. Since 1.0.
 */
THINP_API int thinp_meta_walk_devices(thinp_meta *meta, uint64_t source,
				      thinp_meta_device_fn fn, void *ctx);

/*
 * thinp_meta_walk_mappings - the mappings of `dev` in ascending virtual
 * order, coalesced into runs exactly as thin_dump does (the next mapping
 * extends a run iff its virtual and data blocks are both one more and its
 * time is equal). Errors: -ENODATA (no such device in that source),
 * -EILSEQ, or the callback's value. Since 1.0.
 */
THINP_API int thinp_meta_walk_mappings(thinp_meta *meta, uint64_t source, uint64_t dev,
				       thinp_meta_run_fn fn, void *ctx);

/*
 * thinp_meta_highest_mapped - the highest mapped virtual block of `dev` in
 * `source` (as for thinp_meta_walk_mappings), through *vblock: one descent
 * of the tree's rightmost path, O(depth). Lets a caller split a device's
 * range, e.g. to run delta iterators over its parts in parallel. Errors:
 * -ENODATA (no such device, nothing mapped, or no held snapshot), -EINVAL
 * (vblock NULL), -EILSEQ. Thread-safe. Since 1.0.
 */
THINP_API int thinp_meta_highest_mapped(thinp_meta *meta, uint64_t source, uint64_t dev,
					uint64_t *vblock);

/* ---- checking ------------------------------------------------------------- */

/* Severity of a check finding (thinp_meta_finding.severity). */
#define THINP_META_CHECK_ERROR 0   /* the metadata is wrong: the check fails */
/* Harmless: the kernel, thin_check 0.9.0 and thinp_meta_open() accept it and
 * nothing goes wrong, but it is not what a correct writer leaves (e.g. the
 * nr_allocated artefact of thin_restore 0.9.0, FORMAT.md 15). The check
 * still passes. */
#define THINP_META_CHECK_WARNING 1

/*
 * One finding of the check. Filled by the library (struct_size = sizeof as
 * the library knows it; fields are only ever appended); valid during the
 * callback only.
 */
typedef struct thinp_meta_finding {
	uint32_t struct_size;
	uint32_t severity; /* THINP_META_CHECK_ERROR or THINP_META_CHECK_WARNING */
	const char *line;  /* one line, no trailing newline, no severity prefix */
} thinp_meta_finding;

typedef void (*thinp_meta_finding_fn)(const thinp_meta_finding *finding, void *ctx);

/*
 * thinp_meta_check_io - full check of the metadata on io, stricter than
 * thin_check 0.9.0 (FORMAT.md 13): superblock fields, every checksum and
 * location, btree node rules and key order, details keys == mapping keys,
 * mapped_blocks exact, metadata reference counts exact (everything reachable
 * from the superblock and the held snapshot, plus the space maps' own
 * blocks), data reference counts exact, nr_allocated exact (but see the
 * warnings). Reads only.
 * @opts:  may be NULL; only log_fn/log_ctx/cache_bytes are used.
 * @fn:    may be NULL; gets each finding, errors and warnings, with its
 *         severity, from the calling thread. Warnings: non-zero padding in
 *         btree nodes and the metadata index block or not_used in bitmaps,
 *         space-map index hints (nr_free, none_free_before) out of range, and
 *         a space map's nr_allocated above the blocks in use (free blocks
 *         counted as allocated: free space is reported low, as after a
 *         leak; thin_restore 0.9.0 leaves one such block). An nr_allocated
 *         below the blocks in use is an error.
 * Returns 0 when there is no error (warnings allowed), -EILSEQ if any error
 * was reported, -ENODATA for an all-zero superblock, -EINVAL for a NULL io
 * or an opts struct_size too small for log_ctx, -EIO/-ENOMEM when it could
 * not finish. Thread-safe with respect to other handles.
 * Since 1.0.
 */
THINP_API int thinp_meta_check_io(thinp_io *io, const thinp_meta_options *opts,
				  thinp_meta_finding_fn fn, void *ctx);

/*
 * thinp_meta_check - thinp_meta_check_io() of the handle's device:
 * checks the last COMMITTED state (the open transaction is not on the
 * device). Since 1.0.
 */
THINP_API int thinp_meta_check(thinp_meta *meta, thinp_meta_finding_fn fn, void *ctx);

/* ---- delta on a metadata handle (types in delta.h) ---- */

/*
 * thinp_meta_delta_open - the same on a metadata handle (metadata tier):
 * what `thinp delta` uses, also on a pool the kernel or another process
 * owns. For that, open the metadata device with thinp_io_open_file(
 * THINP_IO_RDONLY | THINP_IO_DIRECT) and thinp_meta_open(THINP_META_RDONLY)
 * and read THINP_DELTA_HELD (or the snapshot block from the pool's status
 * line): the handle reads the superblock once, at open, to find the held
 * root, and everything else through the held root, which the kernel does not
 * change while it is held. Errors as thinp_pool_delta_open; messages in
 * thinp_meta_errmsg. Since 1.0.
 */
THINP_API int thinp_meta_delta_open(thinp_delta **out, thinp_meta *meta, uint64_t left,
				    uint64_t right, const thinp_delta_options *opts);

/*
 * thinp_meta_delta - thinp_meta_delta_open's delta through a callback, as
 * thinp_pool_delta (delta.h). Since 1.0.
 */
THINP_API int thinp_meta_delta(thinp_meta *meta, uint64_t left, uint64_t right,
			       const thinp_delta_options *opts, thinp_delta_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
