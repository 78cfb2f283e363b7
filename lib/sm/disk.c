/*
 * The data space map: an ll whose index entries live in a btree (value 16
 * bytes, key = bitmap index). Index entries are written to the btree as soon
 * as they change, so commit has nothing left to write; it only makes the
 * current roots the "old" (committed) view used by allocation.
 * Cost: every count change is one bitmap shadow plus one index-btree insert
 * (in place after the first one in a transaction), plus overflow-tree work
 * for counts >= 3.
 */
#include "os/os.h"

#include "sm/disk.h"
#include "sm/ll.h"
#include "util/counter.h"
#include "util/log.h"

struct sm_disk {
	struct space_map sm;
	struct ll_disk ll;     /* the current transaction */
	struct ll_disk old_ll; /* the last commit */
	uint64_t begin;        /* allocation cursor, reset at commit */
	/* Blocks freed in this transaction that the cursor and the committed
	 * state do not already keep from reuse (see ll_note_freed). */
	struct block_counter *freed;
};

static struct sm_disk *to_smd(struct space_map *sm)
{
	return THINP_CONTAINER_OF(sm, struct sm_disk, sm);
}

static int disk_load_ie(struct ll_disk *ll, uint64_t index, struct index_entry *ie)
{
	struct disk_index_entry d;
	int r = btree_lookup(&ll->index_info, ll->bitmap_root, &index, &d);

	if (r == -ENODATA)
		return THINP_CORRUPT(ll->log, ll->bitmap_root, "data sm index",
				     "missing index entry");
	if (r)
		return r;
	index_entry_unpack(&d, ie);
	return ll_check_ie(ll, index, ie);
}

static int disk_save_ie(struct ll_disk *ll, uint64_t index, const struct index_entry *ie)
{
	struct disk_index_entry d;

	index_entry_pack(ie, &d);
	return btree_insert(&ll->index_info, ll->bitmap_root, &index, &d, &ll->bitmap_root,
			    NULL);
}

static const struct ll_index_ops disk_index_ops = {
	.load_ie = disk_load_ie,
	.save_ie = disk_save_ie,
	.max_indexes = UINT64_MAX / SM_ENTRIES_PER_BITMAP,
};

static void disk_destroy(struct space_map *sm)
{
	struct sm_disk *smd = to_smd(sm);

	block_counter_destroy(smd->freed);
	thinp_os_free(smd);
}

static int disk_extend(struct space_map *sm, uint64_t extra)
{
	return ll_extend(&to_smd(sm)->ll, extra);
}

static int disk_get_nr_blocks(struct space_map *sm, uint64_t *n)
{
	*n = to_smd(sm)->ll.nr_blocks;
	return 0;
}

/* Free in the current state. Blocks freed in this transaction are included
 * although new_block will not hand them out before the commit. */
static int disk_get_nr_free(struct space_map *sm, uint64_t *n)
{
	struct sm_disk *smd = to_smd(sm);

	*n = smd->ll.nr_blocks - smd->ll.nr_allocated;
	return 0;
}

static int disk_get_count(struct space_map *sm, uint64_t b, uint32_t *count)
{
	return ll_lookup(&to_smd(sm)->ll, b, count);
}

static int disk_count_more_than_one(struct space_map *sm, uint64_t b, bool *result)
{
	unsigned v;
	int r = ll_lookup_bitmap(&to_smd(sm)->ll, b, &v);

	if (!r)
		*result = v > 1;
	return r;
}

static int note_freed(struct sm_disk *smd, uint64_t b, int r, int delta)
{
	/* The search never goes back below the cursor before the commit. */
	if (r || delta >= 0 || b < smd->begin)
		return r;
	return ll_note_freed(&smd->old_ll, smd->freed, b);
}

static int disk_set_count(struct space_map *sm, uint64_t b, uint32_t count)
{
	struct sm_disk *smd = to_smd(sm);
	int delta;
	int r = ll_set_count(&smd->ll, b, count, &delta);

	return note_freed(smd, b, r, delta);
}

static int disk_inc(struct space_map *sm, uint64_t b)
{
	return ll_inc(&to_smd(sm)->ll, b, NULL);
}

static int disk_dec(struct space_map *sm, uint64_t b)
{
	struct sm_disk *smd = to_smd(sm);
	int delta;
	int r = ll_dec(&smd->ll, b, &delta);

	return note_freed(smd, b, r, delta);
}

static int disk_new_block(struct space_map *sm, uint64_t *b)
{
	struct sm_disk *smd = to_smd(sm);
	int r = ll_find_common_free(&smd->old_ll, &smd->ll, smd->freed, smd->begin, smd->ll.nr_blocks, b);

	if (r)
		return r;
	r = ll_inc(&smd->ll, *b, NULL);
	if (!r)
		smd->begin = *b + 1;
	return r;
}

static int disk_commit(struct space_map *sm)
{
	struct sm_disk *smd = to_smd(sm);

	smd->old_ll = smd->ll;
	smd->begin = 0;
	block_counter_clear(smd->freed);
	return 0;
}

static int disk_root_size(struct space_map *sm, size_t *size)
{
	*size = SM_ROOT_SIZE;
	return 0;
}

static int disk_copy_root(struct space_map *sm, void *dest, size_t len)
{
	struct sm_root_info ri;

	if (len < SM_ROOT_SIZE)
		return -EINVAL;
	ll_get_root(&to_smd(sm)->ll, &ri);
	sm_root_pack(&ri, dest);
	return 0;
}

static const struct sm_ops disk_ops = {
	.destroy = disk_destroy,
	.extend = disk_extend,
	.get_nr_blocks = disk_get_nr_blocks,
	.get_nr_free = disk_get_nr_free,
	.get_count = disk_get_count,
	.count_is_more_than_one = disk_count_more_than_one,
	.set_count = disk_set_count,
	.commit = disk_commit,
	.inc = disk_inc,
	.dec = disk_dec,
	.new_block = disk_new_block,
	.root_size = disk_root_size,
	.copy_root = disk_copy_root,
};

bool sm_is_disk(const struct space_map *sm)
{
	return sm && sm->ops == &disk_ops;
}

static struct sm_disk *alloc_smd(struct tx_manager *tm)
{
	struct sm_disk *smd = thinp_os_zalloc(sizeof(*smd));

	if (!smd)
		return NULL;
	smd->sm.ops = &disk_ops;
	ll_init(&smd->ll, tm, &disk_index_ops);
	if (block_counter_create(&smd->freed)) {
		thinp_os_free(smd);
		return NULL;
	}
	return smd;
}

int sm_disk_create(struct tx_manager *tm, uint64_t nr_blocks, struct space_map **out)
{
	struct sm_disk *smd = alloc_smd(tm);
	int r;

	if (!smd)
		return -ENOMEM;
	r = btree_empty(&smd->ll.index_info, &smd->ll.bitmap_root);
	if (!r)
		r = btree_empty(&smd->ll.ref_info, &smd->ll.ref_count_root);
	if (!r)
		r = ll_extend(&smd->ll, nr_blocks);
	if (r) {
		disk_destroy(&smd->sm);
		return r;
	}
	disk_commit(&smd->sm);
	*out = &smd->sm;
	return 0;
}

int sm_disk_open(struct tx_manager *tm, const void *root, size_t len, struct space_map **out)
{
	struct sm_root_info ri;
	struct sm_disk *smd;

	if (len < SM_ROOT_SIZE)
		return -EINVAL;
	sm_root_unpack(root, &ri);
	smd = alloc_smd(tm);
	if (!smd)
		return -ENOMEM;
	if (ri.nr_allocated > ri.nr_blocks) {
		int r = THINP_CORRUPT(smd->ll.log, 0, "data sm root", "nr_allocated > nr_blocks");

		disk_destroy(&smd->sm);
		return r;
	}
	ll_set_root(&smd->ll, &ri);
	disk_commit(&smd->sm);
	*out = &smd->sm;
	return 0;
}

struct own_ctx {
	struct block_counter *bc;
	struct ll_disk *ll;
	uint64_t next_key;
};

static int count_bitmap(void *ctx, uint64_t key, const void *value)
{
	struct own_ctx *oc = ctx;
	struct index_entry ie;

	if (key != oc->next_key)
		return THINP_CORRUPT(oc->ll->log, key, "data sm index", "index keys not dense");
	oc->next_key++;
	index_entry_unpack(value, &ie);
	return block_counter_inc(oc->bc, ie.blocknr, NULL);
}

int sm_disk_count_own_blocks(struct space_map *sm, struct block_counter *bc)
{
	struct sm_disk *smd = to_smd(sm);
	struct own_ctx oc = { .bc = bc, .ll = &smd->ll, .next_key = 0 };
	int r;

	if (!sm_is_disk(sm))
		return -EINVAL;
	r = btree_count_blocks(&smd->ll.index_info, smd->ll.bitmap_root, bc, count_bitmap, &oc);
	if (r)
		return r;
	if (oc.next_key != ll_nr_indexes(&smd->ll))
		return THINP_CORRUPT(smd->ll.log, smd->ll.bitmap_root, "data sm index",
				     "wrong number of index entries");
	return btree_count_blocks(&smd->ll.ref_info, smd->ll.ref_count_root, bc, NULL, NULL);
}

int sm_disk_walk_counts(struct space_map *sm, int (*fn)(void *ctx, uint64_t b, uint32_t count),
		      void *ctx)
{
	if (!sm_is_disk(sm))
		return -EINVAL;
	return ll_walk(&to_smd(sm)->ll, fn, ctx);
}
