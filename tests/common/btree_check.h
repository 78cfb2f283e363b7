/*
 * Test helpers for btrees over tm_env: a value type whose values hold a
 * reference to a "data block" in a second core_sm (so value inc/dec on
 * shared-leaf copies, overwrites, removals and deletes are all counted), and
 * an exact reference-count check: every metadata block reachable from the
 * given roots (plus block 0) is recounted with btree_count_blocks, which also
 * checks every node's rules, and compared with the metadata core_sm; every
 * data reference with the data core_sm. No leak, no double count, no
 * reachable free block.
 */
#ifndef THINP_TESTS_BTREE_CHECK_H
#define THINP_TESTS_BTREE_CHECK_H

#include <stdint.h>

#include "btree/btree.h"
#include "common/tm_env.h"

/* Values: le32 data block at offset 0 (if value_size >= 4), the remaining
 * bytes a pattern of (key, block). */
struct data_values {
	struct space_map *data_sm; /* core_sm */
	uint32_t value_size;
};

/* A value type over dv (inc/dec the data block when value_size >= 4). */
struct btree_value_type data_value_type(struct data_values *dv);
void make_value(uint8_t *v, uint32_t value_size, uint64_t key, uint32_t data_block);
uint32_t value_block(const uint8_t *v, uint32_t value_size);

/*
 * Recount and compare (cmocka assertions). dv may be NULL (no data check).
 * Returns the number of metadata blocks in use besides block 0.
 */
uint64_t check_ref_counts(struct tm_env *e, struct btree_info *info, const uint64_t *roots,
			  unsigned nr_roots, struct data_values *dv);

#endif
