/*
 * The internal API for the pool runtime (thin_internal.h): lock batching,
 * device open counts, the dirty test.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "thin/meta_internal.h"

int thin_meta_lock(thinp_meta *meta)
{
	return thin_wlock(meta);
}

void thin_meta_unlock(thinp_meta *meta)
{
	thin_unlock(meta);
}

uint32_t thin_time_locked(thinp_meta *meta)
{
	return meta->sb.time;
}

bool thin_meta_dirty(thinp_meta *meta)
{
	bool dirty;

	pthread_rwlock_rdlock(&meta->lock);
	dirty = meta->dirty;
	pthread_rwlock_unlock(&meta->lock);
	return dirty;
}

static struct thin_open *find_open(struct thinp_meta *meta, uint64_t dev)
{
	size_t i;

	for (i = 0; i < meta->nr_opens; i++)
		if (meta->opens[i].id == dev)
			return &meta->opens[i];
	return NULL;
}

bool thin_device_is_open_locked(struct thinp_meta *meta, uint64_t dev)
{
	return find_open(meta, dev) != NULL;
}

static int add_open(struct thinp_meta *meta, uint64_t dev)
{
	struct thin_open *o = find_open(meta, dev);

	if (o) {
		o->count++;
		return 0;
	}
	if (meta->nr_opens == meta->cap_opens) {
		size_t cap = meta->cap_opens ? 2 * meta->cap_opens : 8;
		struct thin_open *n = realloc(meta->opens, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		meta->opens = n;
		meta->cap_opens = cap;
	}
	meta->opens[meta->nr_opens++] = (struct thin_open){ dev, 1 };
	return 0;
}

int thin_device_open(thinp_meta *meta, uint64_t dev)
{
	struct thin_details d;
	int r;

	/* Exclusive: the open table is changed. Allowed in every mode, so that
	 * a read-only pool can still serve reads. */
	r = thin_xlock(meta);
	if (r)
		return r;
	r = thin_dev_read_locked(meta, dev, &d);
	if (r)
		thin_err(meta, r, "device %" PRIu64 ": %s", dev, thinp_strerror(r));
	else
		r = add_open(meta, dev);
	thin_unlock(meta);
	return r;
}

void thin_device_close(thinp_meta *meta, uint64_t dev)
{
	struct thin_open *o;

	pthread_rwlock_wrlock(&meta->lock);
	o = find_open(meta, dev);
	if (o && --o->count == 0)
		*o = meta->opens[--meta->nr_opens];
	pthread_rwlock_unlock(&meta->lock);
}
