#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/core_sm.h"
#include "common/tm_env.h"
#include "util/endian.h"

/* Block 0 of the test device: a magic, then the roots. Raw (no validator):
 * tests that want checksums use real superblocks. */
#define TM_ENV_MAGIC 0x74657374726f6f74ull

static void log_to_stderr(int level, const char *msg, void *ctx)
{
	if (getenv("THINP_TEST_VERBOSE"))
		fprintf(stderr, "  log: %s\n", msg);
}

static const struct tlog env_log = { log_to_stderr, NULL };

static int make_stack(struct tm_env *e)
{
	struct bm_options opts = { .cache_bytes = e->cache_bytes, .log = &env_log };
	int r = bm_create(&e->bm, e->io, &opts);

	if (r)
		return r;
	r = tm_create(&e->tm, e->bm);
	if (r)
		return r;
	tm_set_sm(e->tm, e->sm);
	return 0;
}

int tm_env_open_io(struct tm_env *e, thinp_io *io, uint64_t nr_blocks, size_t cache_bytes)
{
	int r;

	memset(e, 0, sizeof(*e));
	e->io = io;
	e->nr_blocks = nr_blocks;
	e->cache_bytes = cache_bytes;
	r = core_sm_create(&e->sm, nr_blocks);
	if (r)
		return r;
	/* Block 0 (the test superblock) is in use from the start. */
	r = sm_inc(e->sm, 0);
	if (!r)
		r = sm_commit(e->sm);
	return r ? r : make_stack(e);
}

int tm_env_open(struct tm_env *e, uint64_t nr_blocks, size_t cache_bytes)
{
	thinp_io *io;
	int r = thinp_io_open_memory(&io, nr_blocks * THINP_BLOCK_SIZE, 0);

	if (r)
		return r;
	return tm_env_open_io(e, io, nr_blocks, cache_bytes);
}

void tm_env_close(struct tm_env *e)
{
	tm_destroy(e->tm);
	bm_destroy(e->bm);
	sm_destroy(e->sm);
	thinp_io_close(e->io);
	memset(e, 0, sizeof(*e));
}

int tm_env_commit(struct tm_env *e, const uint64_t *roots, unsigned n)
{
	struct block *sb;
	unsigned i;
	int r = tm_pre_commit(e->tm);

	if (r)
		return r;
	r = bm_write_lock_zero(e->bm, 0, NULL, &sb);
	if (r)
		return r;
	store_le64(block_data(sb), TM_ENV_MAGIC);
	for (i = 0; i < n && i < TM_ENV_ROOTS; i++)
		store_le64((char *)block_data(sb) + 8 + 8 * i, roots[i]);
	return tm_commit(e->tm, sb);
}

int tm_env_abort(struct tm_env *e)
{
	int r = tm_abort(e->tm);

	core_sm_abort(e->sm);
	return r;
}

int tm_env_read_roots(struct tm_env *e, uint64_t *roots, unsigned n)
{
	struct block *sb;
	unsigned i;
	int r = bm_read_lock(e->bm, 0, NULL, &sb);

	if (r)
		return r;
	if (load_le64(block_data(sb)) != TM_ENV_MAGIC)
		r = -ENODATA;
	for (i = 0; !r && i < n && i < TM_ENV_ROOTS; i++)
		roots[i] = load_le64((char *)block_data(sb) + 8 + 8 * i);
	bm_unlock(sb);
	return r;
}

int tm_env_reopen(struct tm_env *e, uint64_t *roots, unsigned n)
{
	int r;

	tm_destroy(e->tm);
	bm_destroy(e->bm);
	e->tm = NULL;
	e->bm = NULL;
	core_sm_abort(e->sm);
	r = make_stack(e);
	return (r || !n) ? r : tm_env_read_roots(e, roots, n);
}
