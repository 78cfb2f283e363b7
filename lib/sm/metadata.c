/*
 * The self-hosting metadata space map.
 *
 * Method: every change (inc, dec, set_count, and the +1 of a new block) is
 * appended to a FIFO of pending operations. A call made from outside (depth
 * 0) then drains the FIFO; a call made while draining (depth > 0: the
 * transaction manager allocating a block for a bitmap shadow or an
 * overflow-tree node) only appends, and the outer drain loop picks it up.
 * So the bitmaps, index and overflow tree are only ever changed by one
 * ll_mutate at a time, never re-entered.
 *
 * While operations are pending, the bitmaps lag behind. Two rules keep every
 * answer right in that window:
 *  - Queries (get_count, count_is_more_than_one) return the bitmap count with
 *    every pending operation on that block applied in FIFO order. The op
 *    being applied stays visible until its fn has produced the new value (the
 *    moment the bitmap is about to be written), so it is never counted twice
 *    nor missed. That matters for the transaction manager's shadow decision:
 *    a bitmap block allocated in this transaction whose own +1 is being
 *    applied is seen with count 1 and is written in place, not copied.
 *  - Allocation searches forward from a cursor ("begin") that moves past
 *    every block handed out, over one lap per transaction: from where the
 *    lap started to the end of the device, then once from block 0 back to
 *    the lap's start. A block handed out while its +1 is still pending still
 *    reads 0 in the bitmap, but it lies in the part of the lap already
 *    searched, so it is never handed out twice. The search also requires the
 *    block to be free in the last committed state (old_ll), so a block freed
 *    in this transaction that the committed superblock may still reach is
 *    never reused.
 *
 * Laps: a commit does not send the cursor back to block 0. The next
 * transaction goes on from where this one stopped, so the blocks it shadows
 * are handed out in a row and the block manager writes them at its commit in
 * one sequential write (first fit from 0 would interleave them with the
 * holes the previous transaction left, several writes per commit). The
 * cursor goes back to 0 only once it has passed a window of twice the blocks
 * in use plus LAP_SLACK, so the part of the device in use stays near the
 * metadata's size (a sparse metadata file stays sparse).
 *
 * Bootstrap (format, extension): before the bitmaps that would describe them
 * exist, blocks are handed out sequentially from a cursor without any count
 * change; afterwards each handed-out block gets a queued +1 and the queue is
 * drained with the real map, which by then can describe them.
 */
#include "os/os.h"

#include "sm/bitmap.h"
#include "sm/ll.h"
#include "sm/metadata.h"
#include "util/counter.h"
#include "util/log.h"

/* Blocks the cursor may run past the window of twice the blocks in use
 * before going back to 0 (4 MiB: a small pool's laps are not all short). */
#define LAP_SLACK 1024u

enum op_kind { OP_INC, OP_DEC, OP_SET };

struct pending_op {
	enum op_kind kind;
	uint32_t count; /* OP_SET */
	uint64_t b;
};

struct sm_metadata {
	struct space_map sm;
	struct ll_disk ll;     /* the current transaction */
	struct ll_disk old_ll; /* the last commit */
	uint64_t begin;        /* the allocation cursor */
	uint64_t lap_start;    /* where this transaction's search started */
	bool wrapped;          /* the search went on from block 0 */
	struct block_counter *freed; /* see ll_note_freed */

	/* Bootstrap allocation: hands out [bootstrap_start, bootstrap_end). */
	bool bootstrap;
	bool bootstrap_lookups; /* blocks below bootstrap_start have real counts */
	uint64_t bootstrap_start, bootstrap_end;

	/* Deferred operations: q[head, tail) pending, q[head] in flight while
	 * draining (depth > 0). */
	struct pending_op *q;
	size_t head, tail, cap;
	unsigned depth;
	bool inflight_applied; /* q[head]'s new value has been computed */
	int failed;            /* sticky error, 0 if healthy */
};

static struct sm_metadata *to_smm(struct space_map *sm)
{
	return THINP_CONTAINER_OF(sm, struct sm_metadata, sm);
}

/* Whether this transaction's search has passed b: it is never searched again
 * before the commit. */
static bool searched(const struct sm_metadata *smm, uint64_t b)
{
	if (smm->wrapped)
		return b >= smm->lap_start || b < smm->begin;
	return b >= smm->lap_start && b < smm->begin;
}

/* The index entries live in memory (ll->mi) during a transaction. */
static int md_load_ie(struct ll_disk *ll, uint64_t index, struct index_entry *ie)
{
	*ie = ll->mi[index];
	return 0;
}

static int md_save_ie(struct ll_disk *ll, uint64_t index, const struct index_entry *ie)
{
	ll->mi[index] = *ie;
	return 0;
}

static const struct ll_index_ops md_index_ops = {
	.load_ie = md_load_ie,
	.save_ie = md_save_ie,
	.max_indexes = SM_METADATA_MAX_INDEXES,
};

static int enqueue(struct sm_metadata *smm, enum op_kind kind, uint64_t b, uint32_t count)
{
	if (smm->tail == smm->cap) {
		size_t cap = smm->cap ? smm->cap * 2 : 64;
		struct pending_op *q = thinp_os_realloc(smm->q, smm->cap * sizeof(*q), cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		smm->q = q;
		smm->cap = cap;
	}
	smm->q[smm->tail++] = (struct pending_op){ .kind = kind, .count = count, .b = b };
	return 0;
}

static int op_apply_count(const struct pending_op *op, uint32_t old, uint32_t *n)
{
	switch (op->kind) {
	case OP_INC:
		if (old == UINT32_MAX)
			return -EOVERFLOW;
		*n = old + 1;
		return 0;
	case OP_DEC:
		if (old == 0)
			return -EINVAL;
		*n = old - 1;
		return 0;
	case OP_SET:
		*n = op->count;
		return 0;
	}
	return -EINVAL;
}

struct apply_ctx {
	struct sm_metadata *smm;
	const struct pending_op *op;
};

/* Called by ll_mutate just before the bitmap is written: from here on the
 * bitmap (not the queue) carries this op. */
static int apply_fn(void *ctx, uint32_t old, uint32_t *n)
{
	struct apply_ctx *a = ctx;
	int r = op_apply_count(a->op, old, n);

	if (!r)
		a->smm->inflight_applied = true;
	return r;
}

static int drain(struct sm_metadata *smm)
{
	int r = 0;

	smm->depth++;
	while (!r && smm->head < smm->tail) {
		struct pending_op op = smm->q[smm->head]; /* q may move while applying */
		struct apply_ctx a = { .smm = smm, .op = &op };

		int delta;

		smm->inflight_applied = false;
		r = ll_mutate(&smm->ll, op.b, apply_fn, &a, &delta);
		if (!r && delta < 0 && !searched(smm, op.b))
			r = ll_note_freed(&smm->old_ll, smm->freed, op.b);
		smm->head++;
	}
	smm->depth--;
	if (smm->head == smm->tail)
		smm->head = smm->tail = 0;
	if (r) {
		/* Part of the work is in the bitmaps, part is not: unrecoverable
		 * in this transaction. */
		smm->failed = r;
		tlog(smm->ll.log, THINP_LOG_ERROR, "metadata space map failed: error %d", r);
	}
	return r;
}

/* Queue an op; an outermost call also applies everything it caused. */
static int submit(struct sm_metadata *smm, enum op_kind kind, uint64_t b, uint32_t count)
{
	int r = enqueue(smm, kind, b, count);

	if (r) {
		smm->failed = smm->depth ? r : smm->failed;
		return r;
	}
	if (smm->depth || smm->bootstrap)
		return 0;
	return drain(smm);
}

/* The count b will have once the queue is drained, given its bitmap count. */
static uint32_t add_pending(struct sm_metadata *smm, uint64_t b, uint32_t count)
{
	size_t i = smm->head;

	if (smm->depth && smm->inflight_applied)
		i++;
	for (; i < smm->tail; i++) {
		const struct pending_op *op = &smm->q[i];
		uint32_t n;

		if (op->b == b && !op_apply_count(op, count, &n))
			count = n;
	}
	return count;
}

static int raw_count(struct sm_metadata *smm, uint64_t b, uint32_t *count)
{
	if (!smm->bootstrap)
		return ll_lookup(&smm->ll, b, count);
	if (b >= smm->bootstrap_start && b < smm->begin) {
		*count = 1; /* handed out; its +1 is queued when bootstrap ends */
		return 0;
	}
	if (b < smm->bootstrap_start && smm->bootstrap_lookups)
		return ll_lookup(&smm->ll, b, count);
	*count = 0;
	return 0;
}

static int md_get_count(struct space_map *sm, uint64_t b, uint32_t *count)
{
	struct sm_metadata *smm = to_smm(sm);
	int r;

	if (smm->failed)
		return smm->failed;
	r = raw_count(smm, b, count);
	if (!r)
		*count = add_pending(smm, b, *count);
	return r;
}

static int md_count_more_than_one(struct space_map *sm, uint64_t b, bool *result)
{
	uint32_t count;
	int r = md_get_count(sm, b, &count);

	if (!r)
		*result = count > 1;
	return r;
}

static void md_destroy(struct space_map *sm)
{
	struct sm_metadata *smm = to_smm(sm);

	block_counter_destroy(smm->freed);
	thinp_os_free(smm->q);
	thinp_os_free(smm);
}

static int md_get_nr_blocks(struct space_map *sm, uint64_t *n)
{
	*n = to_smm(sm)->ll.nr_blocks;
	return 0;
}

/* Free in the current state (see disk.c for the same convention). */
static int md_get_nr_free(struct space_map *sm, uint64_t *n)
{
	struct sm_metadata *smm = to_smm(sm);

	if (smm->failed)
		return smm->failed;
	*n = smm->ll.nr_blocks - smm->ll.nr_allocated;
	return 0;
}

/* A block outside the map, or a dec of a free block, is refused before it
 * is queued: once queued, a failure would be unrecoverable. Nested calls
 * (from the tm while draining) are not checked here; an error there is
 * corruption or a bug and fails the map when applied. */
static int check_op(struct sm_metadata *smm, enum op_kind kind, uint64_t b)
{
	uint32_t count;
	int r;

	if (smm->failed)
		return smm->failed;
	if (smm->depth || smm->bootstrap)
		return 0;
	if (b >= smm->ll.nr_blocks)
		return -EINVAL;
	if (kind != OP_DEC)
		return 0;
	r = md_get_count(&smm->sm, b, &count);
	if (!r && count == 0)
		r = -EINVAL;
	return r;
}

static int md_inc(struct space_map *sm, uint64_t b)
{
	struct sm_metadata *smm = to_smm(sm);
	int r = check_op(smm, OP_INC, b);

	return r ? r : submit(smm, OP_INC, b, 0);
}

static int md_dec(struct space_map *sm, uint64_t b)
{
	struct sm_metadata *smm = to_smm(sm);
	int r = check_op(smm, OP_DEC, b);

	return r ? r : submit(smm, OP_DEC, b, 0);
}

static int md_set_count(struct space_map *sm, uint64_t b, uint32_t count)
{
	struct sm_metadata *smm = to_smm(sm);
	int r = check_op(smm, OP_SET, b);

	return r ? r : submit(smm, OP_SET, b, count);
}

/* The first usable block after the cursor in this lap, going on from block 0
 * (once) when the device's end is reached. */
static int find_next_free(struct sm_metadata *smm, uint64_t *b)
{
	uint64_t end = smm->wrapped ? smm->lap_start : smm->ll.nr_blocks;
	int r = ll_find_common_free(&smm->old_ll, &smm->ll, smm->freed, smm->begin, end, b);

	if (r != -ENOSPC || smm->wrapped || !smm->lap_start)
		return r;
	smm->wrapped = true;
	smm->begin = 0;
	return ll_find_common_free(&smm->old_ll, &smm->ll, smm->freed, 0, smm->lap_start, b);
}

static int md_new_block(struct space_map *sm, uint64_t *b)
{
	struct sm_metadata *smm = to_smm(sm);
	int r;

	if (smm->failed)
		return smm->failed;
	if (smm->bootstrap) {
		if (smm->begin >= smm->bootstrap_end)
			return -ENOSPC;
		*b = smm->begin++;
		return 0;
	}
	r = find_next_free(smm, b);
	if (r)
		return r;
	smm->begin = *b + 1;
	return submit(smm, OP_INC, *b, 0);
}

/* Write the in-memory index entries to a shadow of the index block. The
 * shadow's own allocation and the old block's -1 are applied (drained)
 * inside tm_shadow_block, before the entries are copied, so the block
 * written holds the final entries. */
static int write_index(struct sm_metadata *smm)
{
	struct ll_disk *ll = &smm->ll;
	struct disk_metadata_index *d;
	struct block *blk;
	bool inc_children;
	uint64_t i;
	int r;

	r = tm_shadow_block(ll->tm, ll->bitmap_root, &sm_index_validator, &blk, &inc_children);
	if (r)
		return r;
	ll->bitmap_root = block_location(blk);
	d = block_data(blk);
	memset(d->index, 0, sizeof(d->index));
	for (i = 0; i < ll_nr_indexes(ll); i++)
		index_entry_pack(&ll->mi[i], &d->index[i]);
	tm_unlock(ll->tm, blk);
	return 0;
}

/* The next transaction's lap: on from the cursor, or from block 0 once the
 * cursor is past the device or the window (see Laps above). */
static void start_lap(struct sm_metadata *smm)
{
	if (smm->begin >= smm->ll.nr_blocks || smm->begin >= 2 * smm->ll.nr_allocated + LAP_SLACK)
		smm->begin = 0;
	smm->lap_start = smm->begin;
	smm->wrapped = false;
}

static int md_commit(struct space_map *sm)
{
	struct sm_metadata *smm = to_smm(sm);
	int r;

	if (smm->failed)
		return smm->failed;
	if (smm->depth || smm->head != smm->tail)
		return -EBUSY;
	r = write_index(smm);
	if (r) {
		smm->failed = r;
		return r;
	}
	smm->old_ll = smm->ll;
	start_lap(smm);
	block_counter_clear(smm->freed);
	return 0;
}

/* Hand out [begin, ...) sequentially while `fn` builds structures, then
 * count every block handed out from `start`. */
static int bootstrap_run(struct sm_metadata *smm, uint64_t start, uint64_t end,
			 bool lookups, int (*fn)(struct sm_metadata *, uint64_t), uint64_t arg)
{
	uint64_t b;
	int r;

	smm->bootstrap = true;
	smm->bootstrap_lookups = lookups;
	smm->bootstrap_start = smm->begin;
	smm->bootstrap_end = end;
	r = fn(smm, arg);
	smm->bootstrap = false;
	for (b = start; !r && b < smm->begin; b++)
		r = enqueue(smm, OP_INC, b, 0);
	if (!r)
		r = drain(smm);
	if (r)
		smm->failed = r;
	return r;
}

static int md_extend_fn(struct sm_metadata *smm, uint64_t extra)
{
	return ll_extend(&smm->ll, extra);
}

/* New bitmaps go at the start of the new area (the old one may be full);
 * the cursor stays past them for the rest of the transaction. */
static int md_extend(struct space_map *sm, uint64_t extra)
{
	struct sm_metadata *smm = to_smm(sm);
	uint64_t old_nr = smm->ll.nr_blocks;

	if (smm->failed)
		return smm->failed;
	if (extra == 0)
		return 0;
	if (old_nr + extra > SM_METADATA_MAX_BLOCKS || old_nr + extra < old_nr)
		return -EINVAL;
	/* The whole old area counts as searched for the rest of the
	 * transaction. */
	smm->lap_start = 0;
	smm->wrapped = false;
	smm->begin = old_nr;
	return bootstrap_run(smm, old_nr, old_nr + extra, true, md_extend_fn, extra);
}

static int md_root_size(struct space_map *sm, size_t *size)
{
	*size = SM_ROOT_SIZE;
	return 0;
}

static int md_copy_root(struct space_map *sm, void *dest, size_t len)
{
	struct sm_root_info ri;

	if (len < SM_ROOT_SIZE)
		return -EINVAL;
	ll_get_root(&to_smm(sm)->ll, &ri);
	sm_root_pack(&ri, dest);
	return 0;
}

static const struct sm_ops md_ops = {
	.destroy = md_destroy,
	.extend = md_extend,
	.get_nr_blocks = md_get_nr_blocks,
	.get_nr_free = md_get_nr_free,
	.get_count = md_get_count,
	.count_is_more_than_one = md_count_more_than_one,
	.set_count = md_set_count,
	.commit = md_commit,
	.inc = md_inc,
	.dec = md_dec,
	.new_block = md_new_block,
	.root_size = md_root_size,
	.copy_root = md_copy_root,
};

bool sm_is_metadata(const struct space_map *sm)
{
	return sm && sm->ops == &md_ops;
}

static struct sm_metadata *alloc_smm(struct tx_manager *tm)
{
	struct sm_metadata *smm = thinp_os_zalloc(sizeof(*smm));

	if (!smm)
		return NULL;
	smm->sm.ops = &md_ops;
	ll_init(&smm->ll, tm, &md_index_ops);
	if (block_counter_create(&smm->freed)) {
		thinp_os_free(smm);
		return NULL;
	}
	return smm;
}

/* Format: index block, empty overflow root, then the bitmaps. */
static int md_format_fn(struct sm_metadata *smm, uint64_t nr_blocks)
{
	struct ll_disk *ll = &smm->ll;
	struct block *blk;
	int r = tm_new_block(ll->tm, &sm_index_validator, &blk);

	if (r)
		return r;
	ll->bitmap_root = block_location(blk);
	tm_unlock(ll->tm, blk);
	r = btree_empty(&ll->ref_info, &ll->ref_count_root);
	if (r)
		return r;
	return ll_extend(ll, nr_blocks);
}

int sm_metadata_create(struct tx_manager *tm, uint64_t nr_blocks, uint64_t superblock_location,
		       struct space_map **out)
{
	struct sm_metadata *smm;
	int r;

	if (nr_blocks > SM_METADATA_MAX_BLOCKS)
		nr_blocks = SM_METADATA_MAX_BLOCKS;
	if (superblock_location >= nr_blocks)
		return -EINVAL;
	smm = alloc_smm(tm);
	if (!smm)
		return -ENOMEM;
	tm_set_sm(tm, &smm->sm);
	smm->begin = superblock_location + 1;
	r = bootstrap_run(smm, superblock_location, nr_blocks, false, md_format_fn, nr_blocks);
	if (r == -ENOSPC)
		r = -EINVAL; /* too small to hold its own bitmaps */
	if (!r)
		r = md_commit(&smm->sm);
	if (r) {
		tm_set_sm(tm, NULL);
		md_destroy(&smm->sm);
		return r;
	}
	*out = &smm->sm;
	return 0;
}

static int check_root(struct ll_disk *ll, const struct sm_root_info *ri)
{
	if (ri->nr_blocks == 0 || ri->nr_blocks > SM_METADATA_MAX_BLOCKS)
		return THINP_CORRUPT(ll->log, 0, "metadata sm root", "bad nr_blocks");
	if (ri->nr_allocated > ri->nr_blocks)
		return THINP_CORRUPT(ll->log, 0, "metadata sm root", "nr_allocated > nr_blocks");
	if (ri->bitmap_root >= ri->nr_blocks || ri->ref_count_root >= ri->nr_blocks)
		return THINP_CORRUPT(ll->log, 0, "metadata sm root", "root out of range");
	return 0;
}

static int read_index(struct ll_disk *ll)
{
	const struct disk_metadata_index *d;
	struct block *blk;
	uint64_t i;
	int r = tm_read_lock(ll->tm, ll->bitmap_root, &sm_index_validator, &blk);

	if (r)
		return r;
	d = block_data(blk);
	for (i = 0; !r && i < ll_nr_indexes(ll); i++) {
		index_entry_unpack(&d->index[i], &ll->mi[i]);
		r = ll_check_ie(ll, i, &ll->mi[i]);
		if (!r && ll->mi[i].blocknr >= ll->nr_blocks)
			r = THINP_CORRUPT(ll->log, ll->bitmap_root, "metadata sm index",
					  "bitmap beyond the metadata device");
	}
	tm_unlock(ll->tm, blk);
	return r;
}

int sm_metadata_open(struct tx_manager *tm, const void *root, size_t len, struct space_map **out)
{
	struct sm_metadata *smm;
	struct sm_root_info ri;
	int r;

	if (len < SM_ROOT_SIZE)
		return -EINVAL;
	sm_root_unpack(root, &ri);
	smm = alloc_smm(tm);
	if (!smm)
		return -ENOMEM;
	r = check_root(&smm->ll, &ri);
	if (!r) {
		ll_set_root(&smm->ll, &ri);
		r = read_index(&smm->ll);
	}
	if (r) {
		md_destroy(&smm->sm);
		return r;
	}
	smm->old_ll = smm->ll;
	tm_set_sm(tm, &smm->sm);
	*out = &smm->sm;
	return 0;
}

int sm_metadata_count_own_blocks(struct space_map *sm, struct block_counter *bc)
{
	struct sm_metadata *smm = to_smm(sm);
	uint64_t i;
	int r;

	if (!sm_is_metadata(sm))
		return -EINVAL;
	r = block_counter_inc(bc, smm->ll.bitmap_root, NULL);
	for (i = 0; !r && i < ll_nr_indexes(&smm->ll); i++)
		r = block_counter_inc(bc, smm->ll.mi[i].blocknr, NULL);
	if (r)
		return r;
	return btree_count_blocks(&smm->ll.ref_info, smm->ll.ref_count_root, bc, NULL, NULL);
}

int sm_metadata_walk_counts(struct space_map *sm, int (*fn)(void *ctx, uint64_t b, uint32_t count),
		      void *ctx)
{
	if (!sm_is_metadata(sm))
		return -EINVAL;
	if (to_smm(sm)->failed)
		return to_smm(sm)->failed;
	return ll_walk(&to_smm(sm)->ll, fn, ctx);
}
