/*
 * An in-memory space map for tests of the layers below the real space maps
 * (tm, btree): counts in an array, plus the committed counts, so that
 *  - allocation never hands out a block in use in either the committed or the
 *    current state (a block freed in this transaction is not reused before
 *    commit, FORMAT.md 6.7);
 *  - core_sm_abort() rolls the counts back to the last commit.
 * Block 0 is never handed out (it is the superblock's place). dec of a free
 * block and inc past UINT32_MAX fail with -EINVAL: a test bug or a btree bug.
 */
#ifndef THINP_TESTS_CORE_SM_H
#define THINP_TESTS_CORE_SM_H

#include <stdint.h>

#include "sm/space_map.h"

int core_sm_create(struct space_map **out, uint64_t nr_blocks);
/* Roll the counts back to the last commit. */
void core_sm_abort(struct space_map *sm);
/* The current count of b (0 past the end). */
uint32_t core_sm_count(struct space_map *sm, uint64_t b);
/* Number of errors (dec of a free block...) seen since creation. */
uint64_t core_sm_errors(struct space_map *sm);

#endif
