/*
 * The thinp_meta handle and the helpers shared by the files of lib/thin/.
 *
 * Locking: `lock` (a rw-lock) guards everything in the handle except
 * `errmsg` (guarded by `err_lock`) and the immutable io/log/options. Readers
 * (lookups, walks, status) take it shared, changes/commit/abort exclusive.
 * Functions whose name ends in _locked expect it held (either way for reads,
 * exclusively for changes).
 *
 * Device details cache: mapped_blocks changes with every insert/remove, so
 * like the kernel we keep the details of devices touched in this transaction
 * in memory (`devs`) and write the changed ones into the details tree at
 * commit (FORMAT.md 8.2 step 1). Creation, snapshot and delete write the tree
 * at once as well, so the tree always holds every device; the cache only
 * overrides its values.
 */
#ifndef THINP_THIN_META_INTERNAL_H
#define THINP_THIN_META_INTERNAL_H

#include "os/os.h"

#include <libthinp/meta.h>

#include "block/bm.h"
#include "btree/btree.h"
#include "sm/space_map.h"
#include "thin/format.h"
#include "thin/pool_iface.h"
#include "tx/tm.h"
#include "util/log.h"

#define THIN_DEV_BUCKETS 64

struct thin_dev {
	struct thin_dev *next; /* hash chain */
	uint64_t id;
	struct thin_details d;
	bool changed;          /* details differ from the tree */
};

struct thinp_meta {
	thinp_io *io;         /* not owned */
	struct tlog log;
	uint64_t cache_bytes;
	bool read_only;       /* opened read-only (or the io is) */
	/* Opened on a metadata snapshot alone (thinp_meta_open_snapshot): sb is
	 * the snapshot's superblock, read from block snap_block; no space maps. */
	bool snapshot_only;
	uint64_t snap_block;

	thinp_os_rwlock lock;
	int mode;             /* THINP_META_MODE_* (the public API's policy) */
	bool broken;          /* the committed state could not be reloaded */

	/* Facts of the last failed change (thin_fail_locked), until a reload. */
	bool damaged;         /* the open transaction is unusable */
	bool fault_nospace;   /* it ran out of metadata blocks */
	int fault_err;
	const char *fault_what; /* a string literal */

	struct bm *bm;
	struct tx_manager *tm;
	struct space_map *metadata_sm;
	struct space_map *data_sm;

	/* Btree descriptions (FORMAT.md 5): the 2-level mapping tree, its top
	 * level alone (value = subtree root), one device's subtree, details. */
	struct btree_info info;
	struct btree_info tl_info;
	struct btree_info bl_info;
	struct btree_info details_info;

	struct thin_sb sb;    /* in-memory superblock: roots, time, trans_id... */
	bool dirty;           /* something changed since the last commit */
	struct thin_dev *devs[THIN_DEV_BUCKETS];

	thinp_os_mutex err_lock;
	char errmsg[256];
};

/* Record the last error message; returns r. */
int thin_err(struct thinp_meta *meta, int r, const char *fmt, ...) THINP_PRINTF(3, 4);
/*
 * A change failed after it began modifying metadata: record the facts
 * (damaged; out of metadata space or not, see
 * thin_out_of_metadata_space_locked) and the message; returns r. Nothing is
 * decided here: the pool decides through pool_iface.h, and for the public
 * API thin_unlock applies the handle's policy (see there). `what` must be a
 * string literal.
 */
int thin_fail_locked(struct thinp_meta *meta, int r, const char *what);
/* Is r the transaction manager's "no free metadata block"? */
bool thin_out_of_metadata_space_locked(struct thinp_meta *meta, int r);

/* Lock helpers for the public API. The write variant refuses (-EROFS) when
 * not read-write.
 * thin_unlock first applies the public API's failure policy when a change
 * under the lock damaged the transaction (thin_wlock too, for a damage
 * left by the private interface): out of metadata space rolls back
 * to the last commit and enters NO_SPACE mode (no NEEDS_CHECK: the device is
 * intact); anything else enters FAIL mode (sticky read-only), reloads the
 * committed state for readers and sets NEEDS_CHECK on the device. */
int thin_wlock(struct thinp_meta *meta);
int thin_rlock(struct thinp_meta *meta);
int thin_xlock(struct thinp_meta *meta);
void thin_unlock(struct thinp_meta *meta);

/* Persistent objects (space_maps.c / meta.c). */
int thin_open_objects(struct thinp_meta *meta);
void thin_destroy_objects(struct thinp_meta *meta);
void thin_setup_infos(struct thinp_meta *meta);

/* Space-map construction, isolated here because it depends on lib/sm's
 * constructors. */
int thin_sm_metadata_create(struct tx_manager *tm, uint64_t nr_blocks, struct space_map **out);
int thin_sm_metadata_open(struct tx_manager *tm, const void *root, size_t len,
			  struct space_map **out);
int thin_sm_disk_create(struct tx_manager *tm, uint64_t nr_blocks, struct space_map **out);
int thin_sm_disk_open(struct tx_manager *tm, const void *root, size_t len, struct space_map **out);

/* Details (details.c). */
int thin_dev_read_locked(struct thinp_meta *meta, uint64_t dev, struct thin_details *d);
int thin_dev_get_locked(struct thinp_meta *meta, uint64_t dev, struct thin_dev **out);
int thin_dev_insert_locked(struct thinp_meta *meta, uint64_t dev, const struct thin_details *d);
int thin_dev_remove_locked(struct thinp_meta *meta, uint64_t dev);
int thin_dev_write_changed_locked(struct thinp_meta *meta);
void thin_dev_cache_clear(struct thinp_meta *meta);
/* The cached details of dev, or NULL. */
struct thin_dev *thin_dev_cached(struct thinp_meta *meta, uint64_t dev);

/* Metadata snapshots (metadata_snap.c). */
/* Read the superblock named by `source` (THINP_META_LIVE = the in-memory
 * one; THINP_META_HELD_ROOT; or a snapshot block), validated. */
int thin_read_source_sb_locked(struct thinp_meta *meta, uint64_t source, struct thin_sb *sb);
/* Read and check the snapshot superblock at block b (bounded by the device). */
int thin_read_snapshot_sb_locked(struct thinp_meta *meta, uint64_t b, struct thin_sb *sb);
/* The block of the held snapshot superblock (0: none held). */
uint64_t thin_held_block_locked(const struct thinp_meta *meta);
/* -EOPNOTSUPP on a snapshot-only handle (which has no space maps). */
int thin_need_space_maps(struct thinp_meta *meta);

/* The pool status as thinp_meta_get_status reports it (status.c). */
int thin_status_locked(struct thinp_meta *meta, thinp_meta_status *x);

/* Mapping subtree root of dev in the 2-level tree rooted at root. */
int thin_subtree_root_locked(struct thinp_meta *meta, uint64_t root, uint64_t dev,
			     uint64_t *subtree);

#endif
