/*
 * The thinp_meta handle: open, format, close, commit, abort, and the
 * failure discipline.
 *
 * A handle is the in-memory superblock plus the persistent-data objects
 * (block manager, transaction manager, the two space maps) built over the
 * metadata io. Abort and the reload after a failure rebuild those objects
 * from the committed superblock, the way the kernel re-creates its
 * persistent-data objects: nothing of the abandoned transaction survives in
 * memory, and nothing of it is reachable on disk.
 */
#include "os/os.h"

#include "thin/meta_internal.h"
#include "util/abi_struct.h"

/* ---- errors and locks ---------------------------------------------------- */

int thin_err(struct thinp_meta *meta, int r, const char *fmt, ...)
{
	va_list ap;

	thinp_os_mutex_lock(&meta->err_lock);
	va_start(ap, fmt);
	thinp_os_vsnprintf(meta->errmsg, sizeof(meta->errmsg), fmt, ap);
	va_end(ap);
	thinp_os_mutex_unlock(&meta->err_lock);
	return r;
}

size_t thinp_meta_errmsg(thinp_meta *meta, char *buf, size_t len)
{
	if (!meta)
		return thinp_abi_copy_string(buf, len, "", NULL);
	return thinp_abi_copy_string(buf, len, meta->errmsg, &meta->err_lock);
}

int thin_rlock(struct thinp_meta *meta)
{
	thinp_os_rwlock_read_lock(&meta->lock);
	if (meta->broken) {
		thinp_os_rwlock_read_unlock(&meta->lock);
		return thin_err(meta, -EIO, "metadata failed and could not be reloaded: reopen");
	}
	return 0;
}

static void apply_fault_policy_locked(struct thinp_meta *meta);

static const char *mode_refusal(int mode)
{
	switch (mode) {
	case THINP_META_MODE_RO:
		return "metadata opened read-only";
	case THINP_META_MODE_NO_SPACE:
		return "out of metadata space, the transaction was rolled back: "
		       "grow the metadata or abort";
	default:
		return "metadata in failed mode after an error: close, check and reopen";
	}
}

int thin_wlock(struct thinp_meta *meta)
{
	thinp_os_rwlock_write_lock(&meta->lock);
	/* Damaged through the private interface and not rolled back (a test
	 * mixing both doors): the policy first, never a change on top. */
	if (meta->damaged)
		apply_fault_policy_locked(meta);
	if (meta->mode != THINP_META_MODE_RW) {
		int mode = meta->mode;

		thinp_os_rwlock_write_unlock(&meta->lock);
		return thin_err(meta, -EROFS, "%s", mode_refusal(mode));
	}
	return 0;
}

/* Exclusive without the mode check: for reads that touch a space map, which
 * is not safe for concurrent callers even when they only read. */
int thin_xlock(struct thinp_meta *meta)
{
	thinp_os_rwlock_write_lock(&meta->lock);
	if (meta->broken) {
		thinp_os_rwlock_write_unlock(&meta->lock);
		return thin_err(meta, -EIO, "metadata failed and could not be reloaded: reopen");
	}
	return 0;
}

void thin_unlock(struct thinp_meta *meta)
{
	/* Only a change sets damaged, and changes hold the lock exclusively. */
	if (meta->damaged)
		apply_fault_policy_locked(meta);
	thinp_os_rwlock_write_unlock(&meta->lock);
}

/* ---- persistent objects -------------------------------------------------- */

static int map_value_inc(void *context, const void *values, unsigned count)
{
	struct thinp_meta *meta = context;
	const uint8_t *p = values;
	unsigned i;
	int r;

	for (i = 0; i < count; i++) {
		r = sm_inc(meta->data_sm, thin_mapping_block(load_le64(p + 8 * i)));
		if (r)
			return r;
	}
	return 0;
}

static int map_value_dec(void *context, const void *values, unsigned count)
{
	struct thinp_meta *meta = context;
	const uint8_t *p = values;
	unsigned i;
	int r;

	for (i = 0; i < count; i++) {
		r = sm_dec(meta->data_sm, thin_mapping_block(load_le64(p + 8 * i)));
		if (r)
			return r;
	}
	return 0;
}

/* Two mappings are "equal" for the btree's overwrite rule when they name the
 * same data block: a time change alone must not drop the block's reference. */
static bool map_value_equal(void *context, const void *v1, const void *v2)
{
	return thin_mapping_block(load_le64(v1)) == thin_mapping_block(load_le64(v2));
}

static int subtree_inc(void *context, const void *values, unsigned count)
{
	struct thinp_meta *meta = context;
	const uint8_t *p = values;
	unsigned i;
	int r;

	for (i = 0; i < count; i++) {
		r = tm_inc(meta->tm, load_le64(p + 8 * i));
		if (r)
			return r;
	}
	return 0;
}

/* Dropping a top-level entry drops the device's whole subtree (FORMAT.md 4.9):
 * shared parts only lose a reference. */
static int subtree_dec(void *context, const void *values, unsigned count)
{
	struct thinp_meta *meta = context;
	const uint8_t *p = values;
	unsigned i;
	int r;

	for (i = 0; i < count; i++) {
		r = btree_del(&meta->bl_info, load_le64(p + 8 * i));
		if (r)
			return r;
	}
	return 0;
}

static bool subtree_equal(void *context, const void *v1, const void *v2)
{
	return load_le64(v1) == load_le64(v2);
}

void thin_setup_infos(struct thinp_meta *meta)
{
	struct btree_value_type mapping = {
		.context = meta, .size = 8, .inc = map_value_inc,
		.dec = map_value_dec, .equal = map_value_equal,
	};
	struct btree_value_type subtree = {
		.context = meta, .size = 8, .inc = subtree_inc,
		.dec = subtree_dec, .equal = subtree_equal,
	};
	struct btree_value_type details = { .context = meta, .size = 24 };

	meta->info = (struct btree_info){ .tm = meta->tm, .levels = 2, .value_type = mapping };
	meta->bl_info = (struct btree_info){ .tm = meta->tm, .levels = 1, .value_type = mapping };
	meta->tl_info = (struct btree_info){ .tm = meta->tm, .levels = 1, .value_type = subtree };
	meta->details_info = (struct btree_info){ .tm = meta->tm, .levels = 1,
						  .value_type = details };
}

void thin_destroy_objects(struct thinp_meta *meta)
{
	thin_dev_cache_clear(meta);
	sm_destroy(meta->data_sm);
	meta->data_sm = NULL;
	sm_destroy(meta->metadata_sm);
	meta->metadata_sm = NULL;
	tm_destroy(meta->tm);
	meta->tm = NULL;
	bm_destroy(meta->bm);
	meta->bm = NULL;
}

static int new_bm_tm(struct thinp_meta *meta)
{
	struct bm_options bo = { .cache_bytes = meta->cache_bytes, .log = &meta->log };
	int r;

	r = bm_create(&meta->bm, meta->io, &bo);
	if (r)
		return r;
	/* A read-only io makes a read-only handle. */
	if (bm_is_read_only(meta->bm) && !meta->read_only) {
		meta->read_only = true;
		meta->mode = THINP_META_MODE_RO;
	}
	return meta->read_only ? tm_create_read_only(&meta->tm, meta->bm)
			       : tm_create(&meta->tm, meta->bm);
}

/* Read block 0 into meta->sb, validated. */
static int read_live_sb(struct thinp_meta *meta)
{
	struct block *blk;
	const char *why = NULL;
	int r;

	if (bm_nr_blocks(meta->bm) < 1)
		return thin_err(meta, -ENODATA, "metadata device is smaller than one block");
	/* Unvalidated look first: an all-zero block 0 means "never formatted",
	 * which callers must be able to tell from corruption. */
	r = bm_read_lock(meta->bm, THIN_SUPERBLOCK_LOCATION, NULL, &blk);
	if (r)
		return thin_err(meta, r, "cannot read the superblock: %s", thinp_strerror(r));
	if (thin_block_is_zero(block_data(blk))) {
		bm_unlock(blk);
		return thin_err(meta, -ENODATA, "metadata device is not formatted (block 0 is zero)");
	}
	bm_unlock(blk);
	r = bm_read_lock(meta->bm, THIN_SUPERBLOCK_LOCATION, &thin_sb_validator, &blk);
	if (r)
		return thin_err(meta, r == -ENOTBLK ? -EILSEQ : r,
				"superblock is invalid: %s", thinp_strerror(r));
	thin_sb_decode(block_data(blk), &meta->sb);
	bm_unlock(blk);
	r = thin_sb_check_fields(&meta->sb, THIN_SUPERBLOCK_LOCATION, false, !meta->read_only,
				 0, &why);
	if (r) {
		if (r == -EILSEQ)
			THINP_CORRUPT(&meta->log, 0, "superblock", why);
		return thin_err(meta, r, "superblock: %s", why);
	}
	return 0;
}

/* Build bm, tm and both space maps from the committed superblock. */
int thin_open_objects(struct thinp_meta *meta)
{
	uint64_t nr_meta, ignore;
	int r;

	r = new_bm_tm(meta);
	if (r)
		return thin_err(meta, r, "cannot create the block/transaction manager");
	r = read_live_sb(meta);
	if (r)
		return r;
	thin_sm_root_decode(meta->sb.metadata_sm_root, &nr_meta, &ignore, &ignore, &ignore);
	if (nr_meta > bm_nr_blocks(meta->bm))
		return thin_err(meta, THINP_CORRUPT(&meta->log, 0, "superblock",
				"metadata space map is larger than the device"),
				"metadata space map (%" PRIu64 " blocks) is larger than the device",
				nr_meta);
	r = thin_sm_metadata_open(meta->tm, meta->sb.metadata_sm_root, THIN_SM_ROOT_SIZE,
				  &meta->metadata_sm);
	if (r)
		return thin_err(meta, r, "cannot open the metadata space map: %s",
				thinp_strerror(r));
	tm_set_sm(meta->tm, meta->metadata_sm);
	r = thin_sm_disk_open(meta->tm, meta->sb.data_sm_root, THIN_SM_ROOT_SIZE, &meta->data_sm);
	if (r)
		return thin_err(meta, r, "cannot open the data space map: %s", thinp_strerror(r));
	thin_setup_infos(meta);
	meta->dirty = false;
	return 0;
}

/* The held root named by block 0: its checksum and block number are
 * checked, and nothing else of it is used (a live pool may be mid-commit
 * everywhere but block 0 and the held snapshot). */
static int read_held_root(struct thinp_meta *meta, uint64_t *held)
{
	struct block *blk;
	struct thin_sb sb;
	int r;

	if (bm_nr_blocks(meta->bm) < 1)
		return thin_err(meta, -ENODATA, "metadata device is smaller than one block");
	r = bm_read_lock(meta->bm, THIN_SUPERBLOCK_LOCATION, &thin_sb_validator, &blk);
	if (r)
		return thin_err(meta, r == -ENOTBLK ? -EILSEQ : r, "superblock: %s",
				thinp_strerror(r));
	thin_sb_decode(block_data(blk), &sb);
	bm_unlock(blk);
	if (sb.magic != THIN_SUPERBLOCK_MAGIC)
		return thin_err(meta, -EILSEQ, "superblock: bad magic");
	if (!sb.held_root)
		return thin_err(meta, -ENODATA, "no metadata snapshot is held");
	*held = sb.held_root;
	return 0;
}

/* The snapshot's superblock becomes the handle's; no space map is opened. */
static int open_snapshot_objects(struct thinp_meta *meta, uint64_t block)
{
	int r = new_bm_tm(meta);

	if (r)
		return thin_err(meta, r, "cannot create the block/transaction manager");
	if (!block && (r = read_held_root(meta, &block)))
		return r;
	r = thin_read_snapshot_sb_locked(meta, block, &meta->sb);
	if (r)
		return r;
	meta->snap_block = block;
	thin_setup_infos(meta);
	return 0;
}

static int meta_alloc(struct thinp_meta **out, thinp_io *io, const thinp_meta_options *opts)
{
	thinp_meta_options o = THINP_META_OPTIONS_INIT;
	struct thinp_meta *meta;

	if (opts && thinp_abi_copy_in(&o, sizeof(o), opts,
				      offsetof(thinp_meta_options, cache_bytes), 0))
		return -EINVAL;
	if (o.flags & ~THINP_META_RDONLY)
		return -EINVAL;
	meta = thinp_os_zalloc(sizeof(*meta));
	if (!meta)
		return -ENOMEM;
	meta->io = io;
	meta->log.fn = o.log_fn;
	meta->log.ctx = o.log_ctx;
	meta->cache_bytes = o.cache_bytes;
	meta->read_only = (o.flags & THINP_META_RDONLY) != 0;
	/* Writers first: continuous lookups from the pool must not starve
	 * provisioning and commits. No function takes the lock recursively
	 * (walk callbacks run after it is released). */
	thinp_os_rwlock_init(&meta->lock);
	thinp_os_mutex_init(&meta->err_lock);
	meta->mode = meta->read_only ? THINP_META_MODE_RO : THINP_META_MODE_RW;
	*out = meta;
	return 0;
}

static void meta_free(struct thinp_meta *meta)
{
	thin_destroy_objects(meta);
	thinp_os_rwlock_destroy(&meta->lock);
	thinp_os_mutex_destroy(&meta->err_lock);
	thinp_os_free(meta);
}

static void log_errmsg(struct thinp_meta *meta)
{
	tlog(&meta->log, THINP_LOG_ERROR, "%s", meta->errmsg);
}

int thinp_meta_open(thinp_meta **out, thinp_io *io, const thinp_meta_options *opts)
{
	struct thinp_meta *meta;
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!io)
		return -EINVAL;
	r = meta_alloc(&meta, io, opts);
	if (r)
		return r;
	r = thin_open_objects(meta);
	if (r) {
		log_errmsg(meta);
		meta_free(meta);
		return r;
	}
	*out = meta;
	return 0;
}

int thinp_meta_open_snapshot(thinp_meta **out, thinp_io *io, uint64_t block,
			      const thinp_meta_options *opts)
{
	struct thinp_meta *meta;
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!io || block == THINP_META_HELD_ROOT)
		return -EINVAL;
	r = meta_alloc(&meta, io, opts);
	if (r)
		return r;
	meta->read_only = meta->snapshot_only = true;
	meta->mode = THINP_META_MODE_RO;
	r = open_snapshot_objects(meta, block);
	if (r) {
		log_errmsg(meta);
		meta_free(meta);
		return r;
	}
	*out = meta;
	return 0;
}

int thin_need_space_maps(struct thinp_meta *meta)
{
	return meta->snapshot_only ? thin_err(meta, -EOPNOTSUPP, "a handle opened on a "
					      "metadata snapshot has no space maps") : 0;
}

void thinp_meta_close(thinp_meta *meta)
{
	if (meta)
		meta_free(meta);
}

/* ---- format -------------------------------------------------------------- */

static int format_params(const thinp_meta_format_params *p, thinp_meta_format_params *o)
{
	thinp_meta_format_params d;

	if (thinp_abi_copy_in(&d, sizeof(d), p,
			      offsetof(thinp_meta_format_params, nr_data_blocks) + 8, 0))
		return -EINVAL;
	if (d.flags & ~THINP_META_FORMAT_OVERWRITE)
		return -EINVAL;
	if (d.data_block_size < THINP_META_MIN_DATA_BLOCK_SIZE ||
	    d.data_block_size > THINP_META_MAX_DATA_BLOCK_SIZE || d.data_block_size % 128)
		return -EINVAL;
	if (d.nr_data_blocks > THINP_META_MAX_DATA_BLOCKS)
		return -EINVAL;
	*o = d;
	return 0;
}

/* Refuse to format over a valid superblock unless asked to. */
static int check_overwrite(struct thinp_meta *meta, uint32_t flags)
{
	struct block *blk;
	int r;

	if (flags & THINP_META_FORMAT_OVERWRITE)
		return 0;
	r = bm_read_lock(meta->bm, THIN_SUPERBLOCK_LOCATION, &thin_sb_validator, &blk);
	if (r == 0) {
		bm_unlock(blk);
		return thin_err(meta, -EEXIST, "the device already holds a superblock: "
				"pass THINP_META_FORMAT_OVERWRITE to format anyway");
	}
	/* Forget whatever was cached (a failed validation may leave nothing, a
	 * zero block may stay): formatting rewrites block 0 from scratch. */
	bm_invalidate(meta->bm);
	return 0;
}

static uint64_t format_metadata_blocks(struct thinp_meta *meta, uint64_t dev_blocks)
{
	if ((dev_blocks << THINP_BLOCK_SHIFT) > THIN_METADATA_WARN_BYTES)
		tlog(&meta->log, THINP_LOG_WARNING,
		     "metadata device is %" PRIu64 " blocks: only %llu blocks (about 15.9 GiB) "
		     "can be used, the rest is ignored", dev_blocks,
		     THINP_META_MAX_METADATA_BLOCKS);
	return THINP_MIN(dev_blocks, THINP_META_MAX_METADATA_BLOCKS);
}

static int format_objects(struct thinp_meta *meta, const thinp_meta_format_params *p)
{
	uint64_t nr_blocks;
	int r;

	r = new_bm_tm(meta);
	if (r)
		return thin_err(meta, r, "cannot create the block/transaction manager");
	if (meta->read_only)
		return thin_err(meta, -EROFS, "cannot format a read-only device");
	r = check_overwrite(meta, p->flags);
	if (r)
		return r;
	nr_blocks = format_metadata_blocks(meta, bm_nr_blocks(meta->bm));
	if (nr_blocks < THIN_METADATA_MIN_BLOCKS)
		return thin_err(meta, -ENOSPC, "metadata device too small: %" PRIu64
				" blocks, need at least %u", nr_blocks, THIN_METADATA_MIN_BLOCKS);
	r = thin_sm_metadata_create(meta->tm, nr_blocks, &meta->metadata_sm);
	if (r)
		return thin_err(meta, r, "cannot create the metadata space map: %s",
				thinp_strerror(r));
	tm_set_sm(meta->tm, meta->metadata_sm);
	r = thin_sm_disk_create(meta->tm, 0, &meta->data_sm);
	if (r)
		return thin_err(meta, r, "cannot create the data space map: %s", thinp_strerror(r));
	if (p->nr_data_blocks) {
		r = sm_extend(meta->data_sm, p->nr_data_blocks);
		if (r)
			return thin_err(meta, r, "cannot size the data space map: %s",
					thinp_strerror(r));
	}
	thin_setup_infos(meta);
	r = btree_empty(&meta->info, &meta->sb.data_mapping_root);
	if (!r)
		r = btree_empty(&meta->details_info, &meta->sb.device_details_root);
	if (r)
		return thin_err(meta, r, "cannot create the empty trees: %s", thinp_strerror(r));
	meta->sb.magic = THIN_SUPERBLOCK_MAGIC;
	meta->sb.version = THIN_VERSION_WRITTEN;
	meta->sb.data_block_size = p->data_block_size;
	meta->sb.metadata_block_size = THIN_METADATA_BLOCK_SECTORS;
	meta->sb.metadata_nr_blocks = nr_blocks;
	meta->dirty = true;
	return thin_commit_locked(meta);
}

int thinp_meta_format(thinp_meta **out, thinp_io *io, const thinp_meta_format_params *params,
		      const thinp_meta_options *opts)
{
	thinp_meta_format_params p;
	struct thinp_meta *meta;
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!io || format_params(params, &p))
		return -EINVAL;
	r = meta_alloc(&meta, io, opts);
	if (r)
		return r;
	if (meta->read_only) {
		meta_free(meta);
		return -EINVAL;
	}
	r = format_objects(meta, &p);
	if (r) {
		log_errmsg(meta);
		meta_free(meta);
		return r;
	}
	*out = meta;
	return 0;
}

/* ---- commit, abort, failure ---------------------------------------------- */

static int copy_sm_root(struct space_map *sm, uint8_t *dest)
{
	size_t len;
	int r;

	r = sm_root_size(sm, &len);
	if (r)
		return r;
	if (len > THIN_SM_ROOT_SIZE)
		return -EINVAL;
	memset(dest, 0, THIN_SM_ROOT_SIZE);
	return sm_copy_root(sm, dest, len);
}

/* The superblock goes last (FORMAT.md 8.2): tm_pre_commit has written and
 * flushed every other block before tm_commit writes block 0. */
static int write_superblock(struct thinp_meta *meta)
{
	struct block *blk;
	int r;

	r = copy_sm_root(meta->data_sm, meta->sb.data_sm_root);
	if (!r)
		r = copy_sm_root(meta->metadata_sm, meta->sb.metadata_sm_root);
	if (r)
		return r;
	meta->sb.blocknr = THIN_SUPERBLOCK_LOCATION;
	r = bm_write_lock_zero(meta->bm, THIN_SUPERBLOCK_LOCATION, &thin_sb_validator, &blk);
	if (r)
		return r;
	thin_sb_encode(&meta->sb, block_data(blk));
	return tm_commit(meta->tm, blk);
}

int thin_commit_locked(struct thinp_meta *meta)
{
	int r;

	r = thin_dev_write_changed_locked(meta);
	if (!r)
		r = sm_commit(meta->data_sm);
	if (!r)
		r = tm_pre_commit(meta->tm);
	if (!r)
		r = write_superblock(meta);
	if (r)
		return thin_fail_locked(meta, r, "commit");
	meta->dirty = false;
	return 0;
}

int thinp_meta_commit(thinp_meta *meta)
{
	int r;

	r = thin_wlock(meta);
	if (r)
		return r;
	r = thin_commit_locked(meta);
	thin_unlock(meta);
	return r;
}

/* Back to the last commit; the failure facts go with the transaction. */
static int reload_locked(struct thinp_meta *meta)
{
	int r;

	meta->damaged = false;
	meta->fault_nospace = false;
	thin_destroy_objects(meta);
	r = thin_open_objects(meta);
	meta->broken = r != 0;
	return r;
}

int thin_abort_locked(struct thinp_meta *meta)
{
	return reload_locked(meta);
}

int thinp_meta_abort(thinp_meta *meta)
{
	int r;

	thinp_os_rwlock_write_lock(&meta->lock);
	/* Reloading would read the live superblock this handle must not trust. */
	if (meta->snapshot_only) {
		thinp_os_rwlock_write_unlock(&meta->lock);
		return thin_err(meta, -EROFS, "opened on a metadata snapshot: nothing to abort");
	}
	r = thin_abort_locked(meta);
	if (r)
		meta->mode = meta->read_only ? THINP_META_MODE_RO : THINP_META_MODE_FAIL;
	else if (meta->mode == THINP_META_MODE_NO_SPACE)
		meta->mode = THINP_META_MODE_RW; /* the caller has seen the rollback */
	thinp_os_rwlock_write_unlock(&meta->lock);
	return r;
}

/*
 * Set NEEDS_CHECK in the committed superblock on the device, bypassing the
 * block manager: the in-memory transaction may be in any state, and only the
 * flag of the committed superblock must change (the kernel does the same).
 */
static int write_needs_check(struct thinp_meta *meta)
{
	uint8_t *buf;
	struct thin_disk_superblock *d;
	int r;

	buf = thinp_os_alloc(THINP_BLOCK_SIZE);
	if (!buf)
		return -ENOMEM;
	r = thinp_io_read(meta->io, buf, THINP_BLOCK_SIZE, 0, 0);
	if (r)
		goto out;
	d = (struct thin_disk_superblock *)buf;
	if (load_le32(&d->csum) != block_csum(buf, THIN_SUPERBLOCK_CSUM_SALT)) {
		r = -EILSEQ;
		goto out;
	}
	d->flags = cpu_to_le32(load_le32(&d->flags) | THIN_FLAG_NEEDS_CHECK);
	thin_sb_seal(buf, THIN_SUPERBLOCK_LOCATION);
	r = thinp_io_write(meta->io, buf, THINP_BLOCK_SIZE, 0, 0);
	if (!r)
		r = thinp_io_flush(meta->io);
out:
	thinp_os_free(buf);
	return r;
}

bool thin_out_of_metadata_space_locked(struct thinp_meta *meta, int r)
{
	return r == -ENOSPC && meta->tm && tm_out_of_space(meta->tm);
}

int thin_fail_locked(struct thinp_meta *meta, int r, const char *what)
{
	meta->damaged = true;
	meta->fault_nospace = thin_out_of_metadata_space_locked(meta, r);
	meta->fault_err = r;
	meta->fault_what = what;
	return thin_err(meta, r, "%s failed (%s): the open transaction is lost", what,
			thinp_strerror(r));
}

int thin_may_change_locked(struct thinp_meta *meta)
{
	if (meta->read_only)
		return thin_err(meta, -EROFS, "metadata opened read-only");
	if (meta->broken || meta->damaged)
		return thin_err(meta, -EIO, "the open transaction is lost: abort first");
	return 0;
}

int thin_set_needs_check_locked(struct thinp_meta *meta)
{
	int r;

	if (meta->read_only)
		return thin_err(meta, -EROFS, "metadata opened read-only");
	r = write_needs_check(meta);
	if (r)
		return thin_err(meta, r, "cannot write the needs_check flag: %s",
				thinp_strerror(r));
	meta->sb.flags |= THIN_FLAG_NEEDS_CHECK;
	return 0;
}

/*
 * Out of metadata space is not corruption: copy-on-write never wrote a block
 * of the committed state, so the device is intact and only the in-memory
 * transaction (half a change, a space map that stopped mid-update) is lost.
 * Roll it back now, so readers never see it, and refuse changes until the
 * caller acknowledges (abort) or grows the metadata. No NEEDS_CHECK.
 */
static bool out_of_space_locked(struct thinp_meta *meta, const char *what)
{
	if (reload_locked(meta))
		return false;
	meta->mode = THINP_META_MODE_NO_SPACE;
	thin_err(meta, -ENOSPC, "%s: out of metadata space: the open transaction was rolled "
		 "back to the last commit; grow the metadata or abort", what);
	tlog(&meta->log, THINP_LOG_ERROR, "%s", meta->errmsg);
	return true;
}

/* Anything else: sticky read-only, the committed state reloaded for readers,
 * NEEDS_CHECK on the device. */
static void fail_mode_locked(struct thinp_meta *meta, int r, const char *what)
{
	int r2;

	meta->mode = THINP_META_MODE_FAIL;
	r2 = reload_locked(meta);
	if (r2)
		tlog(&meta->log, THINP_LOG_ERROR, "reloading the committed metadata failed: %s",
		     thinp_strerror(r2));
	r2 = thin_set_needs_check_locked(meta);
	if (r2)
		tlog(&meta->log, THINP_LOG_ERROR, "could not set needs_check: %s",
		     thinp_strerror(r2));
	thin_err(meta, r, "%s failed (%s): metadata now read-only (failed mode), "
		 "needs_check set", what, thinp_strerror(r));
	tlog(&meta->log, THINP_LOG_ERROR, "%s", meta->errmsg);
}

/* The public API's failure policy (see thin_unlock in meta_internal.h). */
static void apply_fault_policy_locked(struct thinp_meta *meta)
{
	const char *what = meta->fault_what;
	int r = meta->fault_err;

	if (meta->fault_nospace && out_of_space_locked(meta, what))
		return;
	fail_mode_locked(meta, r, what);
}
