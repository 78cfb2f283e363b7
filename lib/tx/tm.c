/*
 * The transaction manager: copy-on-write shadowing and two-phase commit.
 *
 * Method. The committed state is whatever the last superblock reaches; none of
 * its blocks may be written until the next superblock stops reaching them. So
 * every change goes to a block that this transaction allocated (tm_new_block)
 * or copied (tm_shadow_block), and the tm remembers those blocks in a hash set
 * (`shadows`). A block in the set whose count is 1 is private to this
 * transaction and is changed in place; anything else is copied first.
 *
 * Sharing. A block with count > 1 is referenced from several parents (a
 * snapshot, or two trees sharing a subtree). Copying it creates one more
 * referrer for everything it points at, so tm_shadow_block reports
 * inc_children and the caller, which knows the block's layout, increments
 * the children. The count is read before the original is decremented: after
 * the decrement a block shared by two parents would look private.
 *
 * Commit (FORMAT.md 8.2), the kernel's order, which needs nothing special
 * from the block manager:
 *   tm_pre_commit: commit the space map, then bm_flush writes and flushes
 *                  every dirty block. The superblock is not locked or dirty
 *                  at that point, so nothing of the new state is reachable yet.
 *   caller:        write-locks block 0 and fills in the new superblock.
 *   tm_commit:     unlocks it and flushes again: the superblock is the only
 *                  dirty block, so it is written last, after a flush barrier.
 * A crash before the second flush completes leaves the old superblock, which
 * reaches only blocks that were never overwritten.
 *
 * Not thread-safe for changes (the layers above hold one writer lock); read
 * locks may be taken concurrently since the bm is internally locked and the
 * tm's own fields are only read on that path.
 */
#include "os/os.h"

#include "tx/tm.h"
#include "util/counter.h"
#include "util/log.h"

struct tx_manager {
	struct bm *bm;
	struct space_map *sm;
	bool read_only;
	/* Blocks allocated or shadowed in this transaction (count unused). */
	struct block_counter *shadows;
	/* An allocation in this transaction found no free block. */
	bool out_of_space;
};

static int tm_alloc(struct tx_manager **out, struct bm *bm, bool read_only)
{
	struct tx_manager *tm = thinp_os_zalloc(sizeof(*tm));

	*out = NULL;
	if (!tm)
		return -ENOMEM;
	if (block_counter_create(&tm->shadows)) {
		thinp_os_free(tm);
		return -ENOMEM;
	}
	tm->bm = bm;
	tm->read_only = read_only;
	*out = tm;
	return 0;
}

int tm_create(struct tx_manager **out, struct bm *bm)
{
	return tm_alloc(out, bm, false);
}

int tm_create_read_only(struct tx_manager **out, struct bm *bm)
{
	return tm_alloc(out, bm, true);
}

void tm_destroy(struct tx_manager *tm)
{
	if (!tm)
		return;
	block_counter_destroy(tm->shadows);
	thinp_os_free(tm);
}

void tm_set_sm(struct tx_manager *tm, struct space_map *sm)
{
	tm->sm = sm;
}

struct space_map *tm_sm(struct tx_manager *tm)
{
	return tm->sm;
}

struct bm *tm_bm(struct tx_manager *tm)
{
	return tm->bm;
}

bool tm_is_read_only(const struct tx_manager *tm)
{
	return tm->read_only;
}

/* Changes need a writable tm with a space map attached. */
static int check_writable(const struct tx_manager *tm)
{
	if (tm->read_only)
		return -EROFS;
	if (!tm->sm)
		return -EINVAL;
	return 0;
}

static bool is_shadow(const struct tx_manager *tm, uint64_t b)
{
	return block_counter_get(tm->shadows, b) != 0;
}

static int remember_shadow(struct tx_manager *tm, uint64_t b)
{
	return block_counter_inc(tm->shadows, b, NULL);
}

/* Forgetting the set is what makes the next transaction copy again. O(set). */
static void forget_shadows(struct tx_manager *tm)
{
	block_counter_clear(tm->shadows);
	tm->out_of_space = false;
}

bool tm_out_of_space(const struct tx_manager *tm)
{
	return tm->out_of_space;
}

/* Every metadata block is allocated here: the one place that can tell "no
 * metadata block left" from an -ENOSPC of some other origin. */
static int alloc_block(struct tx_manager *tm, uint64_t *b)
{
	int r = sm_new_block(tm->sm, b);

	if (r == -ENOSPC)
		tm->out_of_space = true;
	return r;
}

int tm_pre_commit(struct tx_manager *tm)
{
	int r = check_writable(tm);

	if (r)
		return r;
	r = sm_commit(tm->sm);
	if (r)
		return r;
	return bm_flush(tm->bm);
}

int tm_commit(struct tx_manager *tm, struct block *sb)
{
	int r;

	if (tm->read_only) {
		bm_unlock(sb);
		return -EROFS;
	}
	/* Every other block was written and flushed by tm_pre_commit, so this
	 * flush writes the superblock alone, after that barrier. */
	bm_unlock(sb);
	r = bm_flush(tm->bm);
	if (r)
		return r;
	forget_shadows(tm);
	return 0;
}

int tm_abort(struct tx_manager *tm)
{
	int r = bm_invalidate(tm->bm);

	if (r)
		return r;
	forget_shadows(tm);
	return 0;
}

/* A fresh block: count 1 from the space map, zeroed, write-locked.
 * -ENOSPC, -EROFS. O(allocator). */
int tm_new_block(struct tx_manager *tm, const struct validator *v, struct block **out)
{
	uint64_t b;
	int r = check_writable(tm);

	*out = NULL;
	if (r)
		return r;
	r = alloc_block(tm, &b);
	if (r)
		return r;
	r = bm_write_lock_zero(tm->bm, b, v, out);
	if (r) {
		*out = NULL;
		sm_dec(tm->sm, b);
		return r;
	}
	r = remember_shadow(tm, b);
	if (r) {
		bm_unlock(*out);
		*out = NULL;
		sm_dec(tm->sm, b);
	}
	return r;
}

/* Copy orig into a newly allocated block and drop orig's reference.
 * The copy is taken before the decrement so that a failure leaves orig's
 * count untouched. O(1) blocks. */
static int copy_block(struct tx_manager *tm, uint64_t orig, const struct validator *v,
		      struct block **out)
{
	struct block *src = NULL;
	uint64_t b;
	int r;

	r = bm_read_lock(tm->bm, orig, v, &src);
	if (r)
		return r;
	r = alloc_block(tm, &b);
	if (r)
		goto out;
	r = bm_write_lock_zero(tm->bm, b, v, out);
	if (r) {
		*out = NULL;
		sm_dec(tm->sm, b);
		goto out;
	}
	memcpy(block_data(*out), block_data(src), THINP_BLOCK_SIZE);
	r = remember_shadow(tm, b);
	if (!r)
		r = sm_dec(tm->sm, orig);
	if (r) {
		bm_unlock(*out);
		*out = NULL;
		sm_dec(tm->sm, b);
	}
out:
	bm_unlock(src);
	return r;
}

int tm_shadow_block(struct tx_manager *tm, uint64_t orig, const struct validator *v,
		    struct block **out, bool *inc_children)
{
	uint32_t count;
	int r = check_writable(tm);

	*out = NULL;
	*inc_children = false;
	if (r)
		return r;
	r = sm_get_count(tm->sm, orig, &count);
	if (r)
		return r;
	/* A reachable block with no reference means the metadata is corrupt
	 * (or a caller bug): copying it would double-free it later. */
	if (count == 0)
		return THINP_CORRUPT(bm_log(tm->bm), orig, "shadow", "block is not allocated");
	if (count == 1 && is_shadow(tm, orig))
		return bm_write_lock(tm->bm, orig, v, out);
	r = copy_block(tm, orig, v, out);
	if (!r)
		*inc_children = count > 1;
	return r;
}

int tm_read_lock(struct tx_manager *tm, uint64_t b, const struct validator *v, struct block **out)
{
	return bm_read_lock(tm->bm, b, v, out);
}

void tm_unlock(struct tx_manager *tm, struct block *blk)
{
	bm_unlock(blk);
}

int tm_inc(struct tx_manager *tm, uint64_t b)
{
	int r = check_writable(tm);

	return r ? r : sm_inc(tm->sm, b);
}

int tm_dec(struct tx_manager *tm, uint64_t b)
{
	int r = check_writable(tm);

	return r ? r : sm_dec(tm->sm, b);
}

int tm_ref(struct tx_manager *tm, uint64_t b, uint32_t *count)
{
	if (!tm->sm)
		return -EINVAL;
	return sm_get_count(tm->sm, b, count);
}
