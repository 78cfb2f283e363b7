/*
 * The transaction manager: copy-on-write shadowing and two-phase commit over
 * a block manager and the metadata space map.
 *
 * Invariant: no block reachable from the last committed superblock is ever
 * written, except the superblock itself, which is written last (tm_commit),
 * after every other dirty block has been written and flushed (tm_pre_commit).
 * So a crash at any point leaves the last commit intact.
 *
 * Shadowing: the first write in a transaction to a block B reachable from the
 * last commit (or shared) copies it to a newly allocated block N and drops a
 * reference on B; later writes to N in the same transaction go in place. If B
 * was shared (count > 1), the caller must increment everything the copy
 * points at (tm_shadow_block reports this through *inc_children).
 *
 * Not thread-safe for changes: the layer above serializes writers. Read locks
 * (tm_read_lock) may be taken concurrently with each other.
 */
#ifndef THINP_TX_TM_H
#define THINP_TX_TM_H

#include "os/os.h"

#include "block/bm.h"
#include "sm/space_map.h"

struct tx_manager;

/* A transaction manager over bm (not owned). The metadata space map is
 * attached afterwards with tm_set_sm (it is built on this tm). -ENOMEM. */
int tm_create(struct tx_manager **out, struct bm *bm);
/* A read-only transaction manager: shadowing and allocation fail with -EROFS. */
int tm_create_read_only(struct tx_manager **out, struct bm *bm);
void tm_destroy(struct tx_manager *tm);

/* Attach the metadata space map (not owned). */
void tm_set_sm(struct tx_manager *tm, struct space_map *sm);
struct space_map *tm_sm(struct tx_manager *tm);
struct bm *tm_bm(struct tx_manager *tm);
bool tm_is_read_only(const struct tx_manager *tm);

/*
 * Phase one of commit: commit the space map, then write and flush every
 * dirty block. The caller holds no lock then (a write-locked dirty block
 * makes bm_flush fail with -EBUSY), and in particular has not yet touched
 * the superblock, so the old superblock still describes the device.
 * -EROFS on a read-only tm; space map and I/O errors as returned.
 */
int tm_pre_commit(struct tx_manager *tm);
/*
 * Phase two: the caller has write-locked block 0 after tm_pre_commit and
 * filled in the new superblock; tm_commit unlocks it and flushes, so block 0
 * is written alone, after every block it points at is durable. Then the set
 * of blocks shadowed in this transaction is forgotten. `sb` is unlocked in
 * every case. -EROFS, I/O errors.
 */
int tm_commit(struct tx_manager *tm, struct block *sb);
/* Forget this transaction's shadow set and drop cached blocks (abort). */
int tm_abort(struct tx_manager *tm);
/* True once tm_new_block or tm_shadow_block found no free metadata block in
 * this transaction (cleared by commit and abort): tells the layers above
 * that an -ENOSPC they see means "out of metadata space". */
bool tm_out_of_space(const struct tx_manager *tm);

/* Allocate a new block (count 1), zeroed and write-locked. -ENOSPC. */
int tm_new_block(struct tx_manager *tm, const struct validator *v, struct block **out);
/* Shadow `orig` (see above). *inc_children is set when orig was shared. */
int tm_shadow_block(struct tx_manager *tm, uint64_t orig, const struct validator *v,
		    struct block **out, bool *inc_children);
int tm_read_lock(struct tx_manager *tm, uint64_t b, const struct validator *v, struct block **out);
void tm_unlock(struct tx_manager *tm, struct block *blk);

/* Reference counts in the metadata space map. */
int tm_inc(struct tx_manager *tm, uint64_t b);
int tm_dec(struct tx_manager *tm, uint64_t b);
int tm_ref(struct tx_manager *tm, uint64_t b, uint32_t *count);

#endif
