/*
 * The two-bit reference-count entries of a bitmap block (FORMAT.md 6.2) and
 * the validators of the two space-map block types.
 *
 * Entry e lives in the little-endian 64-bit word e / 32 of the area after the
 * 16-byte header, at bits p = 2 * (e % 32) (HIGH bit) and p + 1 (LOW bit):
 * value = 2 * bit(p) + bit(p + 1). Four blocks of count 1 read 0xAA.
 *
 * All functions take the whole 4096-byte block; e must be < 16320 (callers
 * bound it, these functions do not re-check).
 */
#ifndef THINP_SM_BITMAP_H
#define THINP_SM_BITMAP_H

#include "os/os.h"

#include "sm/format.h"

struct validator;

/* The 2-bit value (0..3) of entry e. O(1). */
unsigned bitmap_get(const void *block, uint32_t e);
/* Set entry e to v (0..3). O(1). */
void bitmap_set(void *block, uint32_t e, unsigned v);
/* First entry in [begin, end) whose value is 0, through *e. -ENOSPC if none.
 * O(end - begin) / 32 word tests. */
int bitmap_find_free(const void *block, uint32_t begin, uint32_t end, uint32_t *e);
/* Number of entries in [0, end) whose value is not 0. O(end / 32). */
uint32_t bitmap_count_used(const void *block, uint32_t end);

/* Bitmap blocks (salt 240779) and the metadata index block (salt 160478):
 * check verifies the location and checksum; prepare_for_write stamps them. */
extern const struct validator sm_bitmap_validator;
extern const struct validator sm_index_validator;

#endif
