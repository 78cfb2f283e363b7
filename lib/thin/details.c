/*
 * Device details: the 24-byte values of the details tree (FORMAT.md 5.1) and
 * the in-memory cache that keeps mapped_blocks current without rewriting the
 * details tree on every mapping change.
 *
 * Invariant: every device is in the details tree; a cached entry with
 * `changed` set holds values newer than the tree's, written back at commit.
 * The cache is dropped on abort and on reload (it belongs to the transaction).
 */
#include "os/os.h"

#include "thin/meta_internal.h"

static unsigned bucket(uint64_t dev)
{
	return (unsigned)((dev * 0x9E3779B97F4A7C15ull) >> 58) % THIN_DEV_BUCKETS;
}

struct thin_dev *thin_dev_cached(struct thinp_meta *meta, uint64_t dev)
{
	struct thin_dev *td;

	for (td = meta->devs[bucket(dev)]; td; td = td->next)
		if (td->id == dev)
			return td;
	return NULL;
}

static int cache_add(struct thinp_meta *meta, uint64_t dev, const struct thin_details *d,
		     struct thin_dev **out)
{
	struct thin_dev *td = thinp_os_zalloc(sizeof(*td));
	unsigned b = bucket(dev);

	if (!td)
		return -ENOMEM;
	td->id = dev;
	td->d = *d;
	td->next = meta->devs[b];
	meta->devs[b] = td;
	*out = td;
	return 0;
}

static void cache_drop(struct thinp_meta *meta, uint64_t dev)
{
	struct thin_dev **pp = &meta->devs[bucket(dev)];

	for (; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == dev) {
			struct thin_dev *td = *pp;

			*pp = td->next;
			thinp_os_free(td);
			return;
		}
	}
}

void thin_dev_cache_clear(struct thinp_meta *meta)
{
	unsigned i;

	for (i = 0; i < THIN_DEV_BUCKETS; i++) {
		while (meta->devs[i]) {
			struct thin_dev *td = meta->devs[i];

			meta->devs[i] = td->next;
			thinp_os_free(td);
		}
	}
}

/* Current details of dev without touching the cache: for readers holding the
 * lock shared. -ENODATA if there is no such device. */
int thin_dev_read_locked(struct thinp_meta *meta, uint64_t dev, struct thin_details *d)
{
	struct thin_dev *td = thin_dev_cached(meta, dev);
	uint8_t raw[24];
	int r;

	if (td) {
		*d = td->d;
		return 0;
	}
	r = btree_lookup(&meta->details_info, meta->sb.device_details_root, &dev, raw);
	if (r)
		return r;
	thin_details_decode(raw, d);
	return 0;
}

/* The device's details, from the cache or the tree (then cached, so that the
 * caller may change them). Needs the lock held exclusively. */
int thin_dev_get_locked(struct thinp_meta *meta, uint64_t dev, struct thin_dev **out)
{
	uint8_t raw[24];
	struct thin_details d;
	int r;

	*out = thin_dev_cached(meta, dev);
	if (*out)
		return 0;
	r = btree_lookup(&meta->details_info, meta->sb.device_details_root, &dev, raw);
	if (r)
		return r;
	thin_details_decode(raw, &d);
	return cache_add(meta, dev, &d, out);
}

int thin_dev_insert_locked(struct thinp_meta *meta, uint64_t dev, const struct thin_details *d)
{
	uint8_t raw[24];
	struct thin_dev *td;
	int r;

	thin_details_encode(d, raw);
	r = btree_insert(&meta->details_info, meta->sb.device_details_root, &dev, raw,
			 &meta->sb.device_details_root, NULL);
	if (r)
		return r;
	meta->dirty = true;
	td = thin_dev_cached(meta, dev);
	if (td) {
		td->d = *d;
		td->changed = false;
		return 0;
	}
	return 0;
}

int thin_dev_remove_locked(struct thinp_meta *meta, uint64_t dev)
{
	int r;

	r = btree_remove(&meta->details_info, meta->sb.device_details_root, &dev,
			 &meta->sb.device_details_root);
	if (r)
		return r;
	meta->dirty = true;
	cache_drop(meta, dev);
	return 0;
}

int thin_dev_write_changed_locked(struct thinp_meta *meta)
{
	struct thin_dev *td;
	unsigned i;
	int r;

	for (i = 0; i < THIN_DEV_BUCKETS; i++) {
		for (td = meta->devs[i]; td; td = td->next) {
			if (!td->changed)
				continue;
			r = thin_dev_insert_locked(meta, td->id, &td->d);
			if (r)
				return r;
		}
	}
	return 0;
}
