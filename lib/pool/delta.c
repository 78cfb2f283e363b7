/*
 * Deltas on an open pool (libthinp/delta.h): lib/thin's delta iterator over
 * the pool's metadata handle, each batch under md_lock held shared, so that
 * it sees the metadata between two of the pool's changes, as lookups do.
 */
#include "os/os.h"

#include "pool/pool_internal.h"
#include "thin/delta_internal.h"

static void md_rdlock(void *pool)
{
	thinp_os_rwlock_read_lock(&((thinp_pool *)pool)->md_lock);
}

static void md_unlock(void *pool)
{
	thinp_os_rwlock_read_unlock(&((thinp_pool *)pool)->md_lock);
}

int thinp_pool_delta_open(thinp_delta **out, thinp_pool *pool, uint64_t left, uint64_t right,
			  const thinp_delta_options *opts)
{
	const struct thin_delta_lock lock = { md_rdlock, md_unlock, pool };
	thinp_meta *meta;
	char msg[256];
	int r;

	if (!out || !pool)
		return -EINVAL;
	meta = pool->md->ops->walk_meta ? pool->md->ops->walk_meta(pool->md) : NULL;
	if (!meta)
		return pool_err(pool, -EOPNOTSUPP, "delta");
	r = thin_delta_open(out, meta, left, right, opts, &lock);
	if (!r)
		return 0;
	thinp_meta_errmsg(meta, msg, sizeof(msg));
	return pool_err(pool, r, "delta: %s", msg);
}

int thinp_pool_delta(thinp_pool *pool, uint64_t left, uint64_t right,
		     const thinp_delta_options *opts, thinp_delta_fn fn, void *ctx)
{
	thinp_delta *d;
	int r = thinp_pool_delta_open(&d, pool, left, right, opts);

	return r ? r : thin_delta_drain(d, fn, ctx);
}
