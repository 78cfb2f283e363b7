/* The space-map test superblock format (see sm_env.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sm_env.h"
#include "sm/disk.h"
#include "sm/format.h"
#include "sm/metadata.h"
#include "util/counter.h"
#include "util/endian.h"

#define SB_SALT 160774u
#define OFF_MAGIC 32
#define OFF_GEN 40
#define OFF_DATA_SM 64
#define OFF_META_SM 192
#define OFF_ROOT 320

static void sb_prepare(const struct validator *v, void *data, uint64_t b)
{
	store_le64((uint8_t *)data + 8, b);
	store_le32(data, block_csum(data, SB_SALT));
}

static int sb_check(const struct validator *v, const void *data, uint64_t b, const char **why)
{
	if (load_le64((const uint8_t *)data + 8) != b) {
		*why = "blocknr mismatch";
		return -ENOTBLK;
	}
	if (load_le32(data) != block_csum(data, SB_SALT)) {
		*why = "checksum mismatch";
		return -EILSEQ;
	}
	if (load_le64((const uint8_t *)data + OFF_MAGIC) != SM_ENV_MAGIC) {
		*why = "bad magic";
		return -EILSEQ;
	}
	return 0;
}

const struct validator sm_env_sb_validator = {
	.name = "sm_env_superblock",
	.prepare_for_write = sb_prepare,
	.check = sb_check,
};

static int data_inc(void *context, const void *values, unsigned count)
{
	struct sm_env *e = context;
	unsigned i;
	int r = 0;

	for (i = 0; !r && i < count; i++)
		r = sm_inc(e->dsm, load_le64((const uint8_t *)values + 8 * i));
	return r;
}

static int data_dec(void *context, const void *values, unsigned count)
{
	struct sm_env *e = context;
	unsigned i;
	int r = 0;

	for (i = 0; !r && i < count; i++)
		r = sm_dec(e->dsm, load_le64((const uint8_t *)values + 8 * i));
	return r;
}

static void env_log(int level, const char *msg, void *ctx)
{
	if (getenv("THINP_TEST_VERBOSE"))
		fprintf(stderr, "sm_env: %s\n", msg);
}

static int setup_cache(struct sm_env *e, thinp_io *io, bool read_only, size_t cache_bytes)
{
	struct bm_options opts = { .cache_bytes = cache_bytes, .log = NULL };
	int r;

	memset(e, 0, sizeof(*e));
	e->io = io;
	e->read_only = read_only;
	e->log.fn = env_log;
	opts.log = &e->log;
	r = bm_create(&e->bm, io, &opts);
	if (r)
		return r;
	r = read_only ? tm_create_read_only(&e->tm, e->bm) : tm_create(&e->tm, e->bm);
	if (r)
		return r;
	e->info.tm = e->tm;
	e->info.levels = 1;
	e->info.value_type.context = e;
	e->info.value_type.size = 8;
	e->info.value_type.inc = data_inc;
	e->info.value_type.dec = data_dec;
	return 0;
}

static int setup(struct sm_env *e, thinp_io *io, bool read_only)
{
	return setup_cache(e, io, read_only, 0);
}

int sm_env_format_n(struct sm_env *e, thinp_io *io, uint64_t nr_meta_blocks,
		    uint64_t nr_data_blocks)
{
	int r = setup(e, io, false);

	if (!r)
		r = sm_metadata_create(e->tm, nr_meta_blocks, 0, &e->msm);
	if (!r)
		r = sm_disk_create(e->tm, nr_data_blocks, &e->dsm);
	if (!r)
		r = btree_empty(&e->info, &e->root);
	if (!r)
		r = sm_env_commit(e);
	return r;
}

int sm_env_format(struct sm_env *e, thinp_io *io, uint64_t nr_data_blocks)
{
	uint64_t size;
	int r = thinp_io_size(io, &size);

	return r ? r : sm_env_format_n(e, io, size / THINP_BLOCK_SIZE, nr_data_blocks);
}

/* Read block 0 and open both space maps from it. */
static int load(struct sm_env *e)
{
	struct block *sb;
	const uint8_t *p;
	int r = bm_read_lock(e->bm, 0, &sm_env_sb_validator, &sb);

	if (r)
		return r;
	p = block_data(sb);
	e->generation = load_le64(p + OFF_GEN);
	e->root = load_le64(p + OFF_ROOT);
	r = sm_metadata_open(e->tm, p + OFF_META_SM, SM_ROOT_SIZE, &e->msm);
	if (!r)
		r = sm_disk_open(e->tm, p + OFF_DATA_SM, SM_ROOT_SIZE, &e->dsm);
	bm_unlock(sb);
	return r;
}

int sm_env_open(struct sm_env *e, thinp_io *io, bool read_only)
{
	int r = setup(e, io, read_only);

	return r ? r : load(e);
}

int sm_env_open_cache(struct sm_env *e, thinp_io *io, size_t cache_bytes)
{
	int r = setup_cache(e, io, false, cache_bytes);

	return r ? r : load(e);
}

int sm_env_commit(struct sm_env *e)
{
	struct block *sb;
	uint8_t *p;
	int r = sm_commit(e->dsm);

	if (!r)
		r = tm_pre_commit(e->tm);
	if (!r)
		r = bm_write_lock_zero(e->bm, 0, &sm_env_sb_validator, &sb);
	if (r)
		return r;
	p = block_data(sb);
	store_le64(p + OFF_MAGIC, SM_ENV_MAGIC);
	store_le64(p + OFF_GEN, e->generation + 1);
	store_le64(p + OFF_ROOT, e->root);
	r = sm_copy_root(e->dsm, p + OFF_DATA_SM, SM_ROOT_SIZE);
	if (!r)
		r = sm_copy_root(e->msm, p + OFF_META_SM, SM_ROOT_SIZE);
	r = r ? (bm_unlock(sb), r) : tm_commit(e->tm, sb);
	if (!r)
		e->generation++;
	return r;
}

static void drop_sms(struct sm_env *e)
{
	sm_destroy(e->dsm);
	sm_destroy(e->msm);
	e->dsm = e->msm = NULL;
	if (e->tm)
		tm_set_sm(e->tm, NULL);
}

int sm_env_abort(struct sm_env *e)
{
	int r;

	drop_sms(e);
	r = tm_abort(e->tm);
	return r ? r : load(e);
}

void sm_env_close(struct sm_env *e)
{
	drop_sms(e);
	tm_destroy(e->tm);
	bm_destroy(e->bm);
	e->tm = NULL;
	e->bm = NULL;
}

int sm_env_insert(struct sm_env *e, uint64_t key, uint64_t data_block)
{
	uint8_t v[8];

	store_le64(v, data_block);
	return btree_insert(&e->info, e->root, &key, v, &e->root, NULL);
}

int sm_env_remove(struct sm_env *e, uint64_t key)
{
	return btree_remove(&e->info, e->root, &key, &e->root);
}

static int count_data(void *ctx, uint64_t key, const void *value)
{
	return block_counter_inc(ctx, load_le64(value), NULL);
}

static int add_model(struct block_counter *bc, const uint32_t *model, uint64_t n)
{
	uint64_t b;
	uint32_t i;
	int r = 0;

	for (b = 0; model && b < n; b++)
		for (i = 0; !r && i < model[b]; i++)
			r = block_counter_inc(bc, b, NULL);
	return r;
}

int sm_env_check(struct sm_env *e, const struct sm_env_extra *extra, sm_mismatch_fn fn,
		 void *ctx)
{
	struct block_counter *meta = NULL, *data = NULL;
	int r, r2;

	r = block_counter_create(&meta);
	if (!r)
		r = block_counter_create(&data);
	if (!r)
		r = block_counter_inc(meta, 0, NULL);
	if (!r)
		r = btree_count_blocks(&e->info, e->root, meta, count_data, data);
	if (!r)
		r = sm_count_own_blocks(e->msm, meta);
	if (!r)
		r = sm_count_own_blocks(e->dsm, meta);
	if (!r && extra)
		r = add_model(meta, extra->meta, extra->nr_meta);
	if (!r && extra)
		r = add_model(data, extra->data, extra->nr_data);
	if (!r) {
		r = sm_check_counts(e->msm, meta, "metadata", &e->log, fn, ctx, NULL);
		r2 = sm_check_counts(e->dsm, data, "data", &e->log, fn, ctx, NULL);
		r = r ? r : r2;
	}
	block_counter_destroy(data);
	block_counter_destroy(meta);
	return r;
}
