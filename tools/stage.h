/*
 * A staging device: a sparse in-memory image that restore builds the new
 * metadata on, so the target is written only once everything succeeded.
 * It is an ordinary libthinp backend (thinp_io_new), holding just the blocks
 * that were written; unwritten blocks read as zeroes.
 */
#ifndef THINP_TOOL_STAGE_H
#define THINP_TOOL_STAGE_H

#include <stdint.h>
#include <libthinp/io.h>

struct stage;

/* A staging device of `bytes` (a multiple of 4096). *st stays valid while
 * *io is open; closing *io frees it. Returns 0 or a negative errno. */
int stage_open(thinp_io **io, struct stage **st, uint64_t bytes);

/*
 * Copy the staged image onto `target`: first block 0 is zeroed and flushed
 * (the old metadata is no longer valid from then on), then every other
 * written block, a flush, and finally block 0 and a flush. An interruption
 * therefore leaves either the old metadata, an all-zero superblock
 * ("unformatted"), or the complete new metadata; never a mixture that looks
 * valid. Returns 0 or a negative errno.
 */
int stage_copy_to(struct stage *st, thinp_io *target);

#endif
