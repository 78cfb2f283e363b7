/*
 * Range locks on a volume's virtual blocks (the kernel's bio prison, in its
 * simplest form): a held range excludes every overlapping range of the same
 * volume. Holders are few (one per thread provisioning or discarding), so a
 * list scanned under its own mutex is enough; waiters sleep on their own
 * condition, so no other wake-up in the pool (commits, space, modes) stirs
 * them, and theirs stir nobody else.
 */
#include "os/os.h"

#include "pool/pool_internal.h"

static bool overlaps(const struct range_lock *l, uint64_t id, uint64_t begin, uint64_t end)
{
	return l->id == id && l->begin < end && begin < l->end;
}

static bool range_busy(thinp_pool *pool, uint64_t id, uint64_t begin, uint64_t end)
{
	struct range_lock *l;

	for (l = pool->ranges; l; l = l->next)
		if (overlaps(l, id, begin, end))
			return true;
	return false;
}

int range_lock(thinp_pool *pool, uint64_t id, uint64_t begin, uint64_t end)
{
	struct range_lock *l = thinp_os_alloc(sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->id = id;
	l->begin = begin;
	l->end = end;
	thinp_os_mutex_lock(&pool->range_mutex);
	while (range_busy(pool, id, begin, end))
		thinp_os_cond_wait(&pool->range_cond, &pool->range_mutex);
	l->next = pool->ranges;
	pool->ranges = l;
	thinp_os_mutex_unlock(&pool->range_mutex);
	return 0;
}

void range_unlock(thinp_pool *pool, uint64_t id, uint64_t begin, uint64_t end)
{
	struct range_lock **pp, *l;

	thinp_os_mutex_lock(&pool->range_mutex);
	for (pp = &pool->ranges; (l = *pp); pp = &l->next) {
		if (l->id == id && l->begin == begin && l->end == end) {
			*pp = l->next;
			thinp_os_free(l);
			break;
		}
	}
	thinp_os_cond_broadcast(&pool->range_cond);
	thinp_os_mutex_unlock(&pool->range_mutex);
}
