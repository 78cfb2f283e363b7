/*
 * A block -> count map, used to recompute reference counts when checking
 * metadata (every reachable block is counted, then compared with a space map).
 */
#ifndef THINP_UTIL_COUNTER_H
#define THINP_UTIL_COUNTER_H

#include "os/os.h"

struct block_counter;

int block_counter_create(struct block_counter **out);
void block_counter_destroy(struct block_counter *bc);
/* Add one to b's count; returns the new count through *count (may be NULL).
 * -ENOMEM, -EOVERFLOW. O(1) expected. */
int block_counter_inc(struct block_counter *bc, uint64_t b, uint32_t *count);
uint32_t block_counter_get(const struct block_counter *bc, uint64_t b);
/* Number of blocks with a non-zero count. O(1). */
size_t block_counter_size(const struct block_counter *bc);
/* Forget every count (the counter stays usable). O(capacity). */
void block_counter_clear(struct block_counter *bc);
/* Visit every block with a non-zero count, in no particular order. */
typedef int (*block_counter_fn)(void *ctx, uint64_t b, uint32_t count);
int block_counter_walk(const struct block_counter *bc, block_counter_fn fn, void *ctx);

#endif
