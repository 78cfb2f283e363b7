/*
 * A metadata stack for tm and btree tests: a memory device, a block manager,
 * a transaction manager and a core_sm (tests/common/core_sm.h). Commit
 * stores up to TM_ENV_ROOTS roots in block 0 (a test superblock), and
 * reopen builds a new bm and tm over the same device (the core_sm, which has
 * no on-disk form, is kept), so tests can check what really reached the
 * device.
 */
#ifndef THINP_TESTS_TM_ENV_H
#define THINP_TESTS_TM_ENV_H

#include <stddef.h>
#include <stdint.h>

#include <libthinp/io.h>
#include "block/bm.h"
#include "sm/space_map.h"
#include "tx/tm.h"

#define TM_ENV_ROOTS 64

struct tm_env {
	thinp_io *io;
	struct bm *bm;
	struct tx_manager *tm;
	struct space_map *sm;
	uint64_t nr_blocks;
	size_t cache_bytes;
};

/* nr_blocks 4 KiB blocks; cache_bytes 0 = bm default. Returns 0 or -errno. */
int tm_env_open(struct tm_env *e, uint64_t nr_blocks, size_t cache_bytes);
/* Same, over an io the caller made (taken over: closed by tm_env_close). */
int tm_env_open_io(struct tm_env *e, thinp_io *io, uint64_t nr_blocks, size_t cache_bytes);
void tm_env_close(struct tm_env *e);
/* Commit: tm_pre_commit, write roots[0..n-1] into block 0, tm_commit. */
int tm_env_commit(struct tm_env *e, const uint64_t *roots, unsigned n);
/* Abort: tm_abort and roll the core_sm back. */
int tm_env_abort(struct tm_env *e);
/* New bm and tm over the same device; reads the committed roots back. */
int tm_env_reopen(struct tm_env *e, uint64_t *roots, unsigned n);
/* The committed roots as stored in block 0 (read through the bm). */
int tm_env_read_roots(struct tm_env *e, uint64_t *roots, unsigned n);

#endif
