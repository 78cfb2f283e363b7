/*
 * The reference-count checker (FORMAT.md 7, 13): compares a space map with
 * the counts recomputed from everything reachable, as thin_check does, and
 * stricter (data counts and nr_allocated are checked too).
 *
 * Typical use: create a block_counter, add the superblock, walk every tree
 * with btree_count_blocks, add both space maps' own blocks with
 * sm_count_own_blocks, then sm_check_counts(metadata sm, counter).
 */
#ifndef THINP_SM_CHECK_H
#define THINP_SM_CHECK_H

#include "os/os.h"

#include "sm/space_map.h"
#include "util/log.h"

struct block_counter;

enum sm_mismatch_kind {
	SM_REACHABLE_FREE, /* expected > 0, count 0: the block could be reused (fatal) */
	SM_UNDER_COUNTED,  /* 0 < count < expected (fatal) */
	SM_LEAKED,         /* count > expected: space lost, not data (non-fatal in thin_check) */
	SM_OUT_OF_RANGE,   /* expected > 0 for a block at or past nr_blocks (fatal) */
	SM_NR_ALLOCATED,   /* nr_blocks - nr_free differs from the number of used blocks */
};

struct sm_mismatch {
	enum sm_mismatch_kind kind;
	uint64_t b;        /* for SM_NR_ALLOCATED: 0 */
	uint64_t expected; /* count, or for SM_NR_ALLOCATED the number of used blocks */
	uint64_t actual;
};

struct sm_check_result {
	uint64_t reachable_free, under_counted, leaked, out_of_range;
	uint64_t nr_used; /* blocks with count > 0 */
	int nr_allocated_wrong;
};

/* Called for every mismatch; may be NULL. */
typedef void (*sm_mismatch_fn)(void *ctx, const struct sm_mismatch *m);

/*
 * Compare every block in [0, nr_blocks) of sm with `expected` (a block not in
 * the counter is expected to be free), and every counted block past the end.
 * Mismatches go to fn and, the first few, to log (name prefixes the lines).
 * Returns 0 if everything matches, -EILSEQ on any mismatch (res says which),
 * or the error of a failed lookup (-EILSEQ/-ENOTBLK/-EIO). res may be NULL.
 * Cost: O(nr_blocks) (one bitmap read per 16320 blocks for our maps) plus
 * the counter's size.
 */
int sm_check_counts(struct space_map *sm, const struct block_counter *expected,
		    const char *name, const struct tlog *log, sm_mismatch_fn fn, void *ctx,
		    struct sm_check_result *res);

/* Add one to bc for every metadata block sm itself uses (either kind: see
 * sm_disk_count_own_blocks / sm_metadata_count_own_blocks). -EINVAL for a
 * space map of another kind. */
int sm_count_own_blocks(struct space_map *sm, struct block_counter *bc);

#endif
