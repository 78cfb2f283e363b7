/*
 * A cache of mapping lookups in front of the pool's metadata: a pool_md that
 * wraps another and answers repeated lookups of mapped blocks from memory.
 *
 * Why: every read and every overwrite of a provisioned block starts with a
 * lookup, a walk of the two-level mapping tree through the block manager
 * (about 2,000 instructions); against a 4 KiB pread that is the largest cost
 * the pool adds. A hit here is a hash and a striped mutex.
 *
 * Correctness rests on pool_md.h's concurrency contract: lookups run under
 * the pool's metadata lock held shared, every change under it held
 * exclusively, so no change runs while a lookup fills a slot. Only mapped
 * answers are cached, so adding a mapping where there was none changes no
 * cached answer. Every change that can alter one either clears the slots it
 * touches (insert, insert_run, a short remove_range) or moves the generation, which
 * invalidates every slot at once: a snapshot (the origin's mappings become
 * shared), a delete, an abort, a long remove_range, and any change that
 * failed (the metadata may have rolled part of itself back).
 */
#include "os/os.h"

#include "pool/map_cache.h"

#define MAP_CACHE_SLOTS 16384u  /* power of two */
#define MAP_CACHE_STRIPES 64u   /* slot locks, for concurrent fillers */

struct map_slot {
	uint64_t gen; /* 0: empty */
	uint64_t vblock;
	uint64_t data_block;
	uint32_t id;
	uint32_t time;
	bool shared;
};

struct map_cache {
	struct pool_md md;
	struct pool_md *inner;
	uint64_t gen; /* changed only under the metadata lock held exclusively */
	thinp_os_mutex stripes[MAP_CACHE_STRIPES];
	struct map_slot slots[MAP_CACHE_SLOTS];
};

static struct map_cache *MC(struct pool_md *md)
{
	return (struct map_cache *)md;
}

static struct pool_md *IN(struct pool_md *md)
{
	return MC(md)->inner;
}

static uint32_t slot_of(uint64_t id, uint64_t vblock)
{
	uint64_t h = (vblock ^ (id << 40)) * 0x9E3779B97F4A7C15ull;

	return (uint32_t)(h >> 32) & (MAP_CACHE_SLOTS - 1);
}

static thinp_os_mutex *stripe_of(struct map_cache *c, uint32_t slot)
{
	return &c->stripes[slot % MAP_CACHE_STRIPES];
}

static void forget_all(struct map_cache *c)
{
	c->gen++;
}

static void forget_one(struct map_cache *c, uint64_t id, uint64_t vblock)
{
	uint32_t i = slot_of(id, vblock);
	struct map_slot *s = &c->slots[i];

	thinp_os_mutex_lock(stripe_of(c, i));
	if (s->id == id && s->vblock == vblock)
		s->gen = 0;
	thinp_os_mutex_unlock(stripe_of(c, i));
}

/* A change that failed may have left the metadata anywhere between its old
 * and new state: trust no cached answer. */
static int changed(struct map_cache *c, int r)
{
	if (r)
		forget_all(c);
	return r;
}

static bool cache_get(struct map_cache *c, uint64_t id, uint64_t vblock,
		      struct pool_md_mapping *out)
{
	uint32_t i = slot_of(id, vblock);
	struct map_slot *s = &c->slots[i];
	bool hit;

	thinp_os_mutex_lock(stripe_of(c, i));
	hit = s->gen == c->gen && s->id == id && s->vblock == vblock;
	if (hit)
		*out = (struct pool_md_mapping){ .data_block = s->data_block, .time = s->time,
						 .shared = s->shared, .mapped = true };
	thinp_os_mutex_unlock(stripe_of(c, i));
	return hit;
}

static void cache_put(struct map_cache *c, uint64_t id, uint64_t vblock,
		      const struct pool_md_mapping *m)
{
	uint32_t i = slot_of(id, vblock);

	thinp_os_mutex_lock(stripe_of(c, i));
	c->slots[i] = (struct map_slot){ .gen = c->gen, .vblock = vblock,
					 .data_block = m->data_block, .id = (uint32_t)id,
					 .time = m->time, .shared = m->shared };
	thinp_os_mutex_unlock(stripe_of(c, i));
}

static int mc_lookup(struct pool_md *md, uint64_t id, uint64_t vblock,
		     struct pool_md_mapping *out)
{
	struct map_cache *c = MC(md);
	int r;

	if (cache_get(c, id, vblock, out))
		return 0;
	r = c->inner->ops->lookup(c->inner, id, vblock, out);
	if (r)
		return r;
	out->mapped = true;
	cache_put(c, id, vblock, out);
	return 0;
}

/* All from the cache, or the whole run from the inner md (one call is
 * cheaper than splitting the run around its hits); holes stay uncached. */
static int mc_lookup_run(struct pool_md *md, uint64_t id, uint64_t vblock, uint32_t n,
			 struct pool_md_mapping *out)
{
	struct map_cache *c = MC(md);
	uint32_t i;
	int r;

	for (i = 0; i < n && cache_get(c, id, vblock + i, &out[i]); i++)
		;
	if (i == n)
		return 0;
	r = c->inner->ops->lookup_run(c->inner, id, vblock, n, out);
	for (i = 0; !r && i < n; i++)
		if (out[i].mapped)
			cache_put(c, id, vblock + i, &out[i]);
	return r;
}

static int mc_insert(struct pool_md *md, uint64_t id, uint64_t vblock, uint64_t data_block)
{
	forget_one(MC(md), id, vblock);
	return changed(MC(md), IN(md)->ops->insert(IN(md), id, vblock, data_block));
}

static int mc_insert_run(struct pool_md *md, uint64_t id, const uint64_t *vblocks,
			 const uint64_t *data_blocks, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		forget_one(MC(md), id, vblocks[i]);
	return changed(MC(md), IN(md)->ops->insert_run(IN(md), id, vblocks, data_blocks, n));
}

static int mc_remove_range(struct pool_md *md, uint64_t id, uint64_t begin, uint64_t end)
{
	struct map_cache *c = MC(md);

	if (end - begin > MAP_CACHE_SLOTS / 4)
		forget_all(c);
	else
		for (uint64_t b = begin; b < end; b++)
			forget_one(c, id, b);
	return changed(c, IN(md)->ops->remove_range(IN(md), id, begin, end));
}

static int mc_create_snap(struct pool_md *md, uint64_t id, uint64_t origin)
{
	forget_all(MC(md));
	return IN(md)->ops->create_snap(IN(md), id, origin);
}

static int mc_delete_thin(struct pool_md *md, uint64_t id)
{
	forget_all(MC(md));
	return IN(md)->ops->delete_thin(IN(md), id);
}

static int mc_abort(struct pool_md *md)
{
	forget_all(MC(md));
	return IN(md)->ops->abort(IN(md));
}

static void mc_destroy(struct pool_md *md)
{
	struct map_cache *c = MC(md);

	c->inner->ops->destroy(c->inner);
	for (unsigned i = 0; i < MAP_CACHE_STRIPES; i++)
		thinp_os_mutex_destroy(&c->stripes[i]);
	thinp_os_free(c);
}

/* ---- the rest passes through (failed changes forget everything) ---- */

static int mc_info(struct pool_md *md, struct pool_md_info *out)
{
	return IN(md)->ops->info(IN(md), out);
}

static int mc_commit(struct pool_md *md)
{
	return changed(MC(md), IN(md)->ops->commit(IN(md)));
}

static int mc_set_needs_check(struct pool_md *md)
{
	return IN(md)->ops->set_needs_check(IN(md));
}

static int mc_set_trans_id(struct pool_md *md, uint64_t old, uint64_t new_id)
{
	return changed(MC(md), IN(md)->ops->set_trans_id(IN(md), old, new_id));
}

static int mc_create_thin(struct pool_md *md, uint64_t id)
{
	return changed(MC(md), IN(md)->ops->create_thin(IN(md), id));
}

static int mc_thin_info(struct pool_md *md, uint64_t id, struct pool_md_thin_info *out)
{
	return IN(md)->ops->thin_info(IN(md), id, out);
}

static int mc_next_mapping(struct pool_md *md, uint64_t id, uint64_t vblock,
			   uint64_t *vblock_out, struct pool_md_mapping *out)
{
	return IN(md)->ops->next_mapping(IN(md), id, vblock, vblock_out, out);
}

static int mc_highest_mapped(struct pool_md *md, uint64_t id, uint64_t *vblock_out)
{
	return IN(md)->ops->highest_mapped(IN(md), id, vblock_out);
}

static int mc_alloc_data(struct pool_md *md, uint64_t *block)
{
	return changed(MC(md), IN(md)->ops->alloc_data(IN(md), block));
}

static int mc_data_ref(struct pool_md *md, uint64_t block, uint32_t *count)
{
	return IN(md)->ops->data_ref(IN(md), block, count);
}

static int mc_inc_data(struct pool_md *md, uint64_t block)
{
	return changed(MC(md), IN(md)->ops->inc_data(IN(md), block));
}

static int mc_dec_data(struct pool_md *md, uint64_t block)
{
	return changed(MC(md), IN(md)->ops->dec_data(IN(md), block));
}

static int mc_resize_data(struct pool_md *md, uint64_t nr_blocks)
{
	return changed(MC(md), IN(md)->ops->resize_data(IN(md), nr_blocks));
}

static int mc_resize_meta(struct pool_md *md, uint64_t nr_blocks)
{
	return changed(MC(md), IN(md)->ops->resize_meta(IN(md), nr_blocks));
}

static int mc_reserve_snap(struct pool_md *md)
{
	return changed(MC(md), IN(md)->ops->reserve_snap(IN(md)));
}

static int mc_release_snap(struct pool_md *md)
{
	return changed(MC(md), IN(md)->ops->release_snap(IN(md)));
}

/* Walks only read: nothing cached changes. */
static struct thinp_meta *mc_walk_meta(struct pool_md *md)
{
	return IN(md)->ops->walk_meta ? IN(md)->ops->walk_meta(IN(md)) : NULL;
}

static const struct pool_md_ops cache_ops = {
	.destroy = mc_destroy,
	.info = mc_info,
	.commit = mc_commit,
	.abort = mc_abort,
	.set_needs_check = mc_set_needs_check,
	.set_trans_id = mc_set_trans_id,
	.create_thin = mc_create_thin,
	.create_snap = mc_create_snap,
	.delete_thin = mc_delete_thin,
	.thin_info = mc_thin_info,
	.lookup = mc_lookup,
	.next_mapping = mc_next_mapping,
	.highest_mapped = mc_highest_mapped,
	.insert = mc_insert,
	.remove_range = mc_remove_range,
	.alloc_data = mc_alloc_data,
	.data_ref = mc_data_ref,
	.inc_data = mc_inc_data,
	.dec_data = mc_dec_data,
	.resize_data = mc_resize_data,
	.resize_meta = mc_resize_meta,
	.reserve_snap = mc_reserve_snap,
	.release_snap = mc_release_snap,
	.walk_meta = mc_walk_meta,
	.lookup_run = mc_lookup_run,
	.insert_run = mc_insert_run,
};

int map_cache_wrap(struct pool_md *inner, struct pool_md **out)
{
	struct map_cache *c = thinp_os_zalloc(sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->md.ops = &cache_ops;
	c->inner = inner;
	c->gen = 1;
	for (unsigned i = 0; i < MAP_CACHE_STRIPES; i++)
		thinp_os_mutex_init(&c->stripes[i]);
	*out = &c->md;
	return 0;
}

struct pool_md *map_cache_inner(struct pool_md *md)
{
	return md->ops == &cache_ops ? MC(md)->inner : md;
}
