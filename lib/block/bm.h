/*
 * The block manager: 4 KiB metadata blocks over a thinp_io, with a bounded
 * cache, per-block read/write locks and a validator checked on every read.
 *
 * Locking model: a block is either read-locked by any number of holders or
 * write-locked by one. Metadata changes are serialized by the layers above (one
 * writer), so a conflicting lock request is a caller bug and returns -EBUSY
 * rather than waiting. The manager's own structures are guarded by an internal
 * mutex, so read locks may be taken from several threads at once.
 *
 * Cache: blocks stay resident while locked; unlocked blocks are kept up to the
 * caller's memory limit, least recently used first out. A dirty block that is
 * evicted is written (after prepare_for_write) but not flushed. That is safe
 * because the transaction manager never dirties a block of the committed state
 * except the superblock, which it writes last, explicitly.
 *
 * Validation: every block read from the device passes its validator's check
 * before any caller sees it; a block already cached is re-checked when locked
 * with a different validator. Failures are -EILSEQ (checksum/structure) or
 * -ENOTBLK (wrong self-location), logged with the block number.
 *
 * Callbacks: a validator's check/prepare_for_write and the log callback may
 * be called with the bm's internal mutex held (rechecks, write-back), so they
 * must not call back into the bm.
 */
#ifndef THINP_BLOCK_BM_H
#define THINP_BLOCK_BM_H

#include "os/os.h"

#include <libthinp/io.h>
#include "util/log.h"

#define THINP_BLOCK_SIZE 4096u
#define THINP_BLOCK_SHIFT 12

struct bm;
struct block;

/*
 * A block type. check() returns 0, -EILSEQ or -ENOTBLK and may set *why to a
 * static string; prepare_for_write() stamps the location and checksum just
 * before the block goes to the device. Either may be NULL (no checks / raw
 * block).
 */
struct validator {
	const char *name;
	void (*prepare_for_write)(const struct validator *v, void *data, uint64_t blocknr);
	int (*check)(const struct validator *v, const void *data, uint64_t blocknr,
		     const char **why);
};

struct bm_options {
	size_t cache_bytes;     /* soft cache limit; 0 = a default (16 MiB) */
	const struct tlog *log; /* may be NULL; must outlive the bm */
};

/* Create a block manager over io (not owned). -ENOMEM. */
int bm_create(struct bm **out, thinp_io *io, const struct bm_options *opts);
/* Free the cache. Dirty blocks are dropped: flush first. NULL is a no-op. */
void bm_destroy(struct bm *bm);

/* Number of whole 4 KiB blocks on the device (re-reads the device size). */
uint64_t bm_nr_blocks(struct bm *bm);
/* Whether block b is on the device (re-reads the size only if b is past the
 * size last seen). */
bool bm_block_in_range(struct bm *bm, uint64_t b);
bool bm_is_read_only(const struct bm *bm);
const struct tlog *bm_log(const struct bm *bm);

/* Lock block b for reading; reads and validates it if it is not cached.
 * -EINVAL if b is past the device, -EILSEQ/-ENOTBLK if the
 * block is bad, -EIO, -EBUSY if write-locked. On error *out is NULL and
 * nothing new is cached. A NULL v reads the block raw, without a check.
 * Several threads may hold read locks on one block; two threads missing the
 * same block share one read. */
int bm_read_lock(struct bm *bm, uint64_t b, const struct validator *v, struct block **out);
/* Lock block b for writing (read and validated as above); marks it dirty.
 * -EROFS on a read-only device. */
int bm_write_lock(struct bm *bm, uint64_t b, const struct validator *v, struct block **out);
/* Lock block b for writing without reading it: its data is zeroed. */
int bm_write_lock_zero(struct bm *bm, uint64_t b, const struct validator *v,
		       struct block **out);
/*
 * Read ahead blocks [b, b + n) with one device read: up to the first one
 * already cached, at most BM_PREFETCH_MAX and a quarter of the cache. They
 * enter the cache unlocked and unchecked; each is checked by the validator
 * of its first lock, as a miss would be, and dropped if that check fails. A
 * hint: nothing is read if too few blocks qualify or another prefetch is
 * under way, and a failed read is forgotten (the locks read each block
 * again and report it). The caller must know the blocks can be read (e.g.
 * a node's own children): nothing here decides what is safe to read.
 */
#define BM_PREFETCH_MAX 64u
void bm_prefetch(struct bm *bm, uint64_t b, size_t n);
/* Release a lock of either kind. NULL, or a block not locked, is ignored. */
void bm_unlock(struct block *blk);

uint64_t block_location(const struct block *blk);
/* The block's 4096 bytes. Mutable only under a write lock. */
void *block_data(const struct block *blk);

/* Write every dirty unlocked block (prepare_for_write first), then flush the
 * device. -EBUSY if a dirty block is still write-locked (nothing is written).
 * A dirty block that is only read-locked is written too, stamped in place, so
 * no other thread may be reading it meanwhile. A failed write leaves its
 * block dirty and the device unflushed; the error (-EIO...) is returned after
 * the other blocks were written. */
int bm_flush(struct bm *bm);
/* Forget every cached block without writing (used by abort: the in-memory
 * state of the aborted transaction must not be written). -EBUSY if any block
 * is locked. */
int bm_invalidate(struct bm *bm);

/* Statistics for benchmarks and tests. */
struct bm_stats {
	uint64_t reads, writes, hits, misses, evictions;
	size_t resident_bytes, peak_resident_bytes;
};
void bm_get_stats(struct bm *bm, struct bm_stats *out);

/* CRC-32C as used by the format: crc32c_raw is the register after processing
 * len bytes with initial value `seed`, without final inversion (the standard
 * CRC-32C of data is crc32c_raw(0xFFFFFFFF, data, len) ^ 0xFFFFFFFF). */
uint32_t crc32c_raw(uint32_t seed, const void *data, size_t len);
/* The dm-thin block checksum: crc32c_raw(~0, data + 4, 4092) ^ salt. */
uint32_t block_csum(const void *data, uint32_t salt);

#endif
