/*
 * A test "superblock" format for the space-map layer: block 0 holds both
 * space-map roots and the root of one btree whose values (le64) are data
 * blocks referenced in the data space map. Everything is committed through
 * the tm exactly as the thin layer will (FORMAT.md 8.2): data sm commit,
 * tm_pre_commit (metadata sm commit + flush), superblock written last.
 *
 * Block 0 layout (superblock salt 160774): csum 0, flags 4, blocknr 8,
 * magic 32 (SM_ENV_MAGIC), generation 40 (commit counter), data sm root 64,
 * metadata sm root 192, tree root 320.
 */
#ifndef THINP_TESTS_SM_ENV_H
#define THINP_TESTS_SM_ENV_H

#include <stdbool.h>
#include <stdint.h>

#include <libthinp/io.h>
#include "block/bm.h"
#include "btree/btree.h"
#include "sm/check.h"
#include "sm/space_map.h"
#include "tx/tm.h"

#define SM_ENV_MAGIC 0x5453455453534d53ull /* "SMSSTEST" */

struct sm_env {
	thinp_io *io; /* borrowed */
	struct bm *bm;
	struct tx_manager *tm;
	struct space_map *msm; /* metadata space map (real, self-hosting) */
	struct space_map *dsm; /* data space map */
	struct btree_info info; /* the test tree: key -> le64 data block */
	uint64_t root;
	uint64_t generation; /* of the last commit */
	struct tlog log;
	bool read_only;
};

extern const struct validator sm_env_sb_validator;

/* Format io (metadata blocks = device size / 4096) with a data space map of
 * nr_data_blocks, and commit. */
int sm_env_format(struct sm_env *e, thinp_io *io, uint64_t nr_data_blocks);
/* Same with an explicit metadata size (<= device blocks), to test extension. */
int sm_env_format_n(struct sm_env *e, thinp_io *io, uint64_t nr_meta_blocks,
		    uint64_t nr_data_blocks);
/* Open the last commit on io. read_only: a read-only tm (checks only). */
int sm_env_open(struct sm_env *e, thinp_io *io, bool read_only);
/* Same with a block-manager cache of cache_bytes (small: dirty blocks are
 * evicted, i.e. written, in the middle of transactions). */
int sm_env_open_cache(struct sm_env *e, thinp_io *io, size_t cache_bytes);
int sm_env_commit(struct sm_env *e);
/* Drop the transaction and reload the last commit (same bm and tm). */
int sm_env_abort(struct sm_env *e);
/* Free everything but the io. NULL-safe for a half-open env. */
void sm_env_close(struct sm_env *e);

/* Insert key -> a newly allocated data block (count 1); remove a key. */
int sm_env_insert(struct sm_env *e, uint64_t key, uint64_t data_block);
int sm_env_remove(struct sm_env *e, uint64_t key);

/* References held by a test outside the tree (counts per block), added to
 * what the check expects. Either array may be NULL. */
struct sm_env_extra {
	const uint32_t *meta;
	uint64_t nr_meta;
	const uint32_t *data;
	uint64_t nr_data;
};

/*
 * The full reference-count check: count block 0, the tree (and its data
 * references), both space maps' own blocks, and `extra` (may be NULL);
 * compare with both space maps. 0, -EILSEQ on a mismatch (details through
 * fn/log), or a structural error.
 */
int sm_env_check(struct sm_env *e, const struct sm_env_extra *extra, sm_mismatch_fn fn,
		 void *ctx);

#endif
