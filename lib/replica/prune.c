/*
 * thinp_receive_prune: anchors that serve no one go (docs/REPLICA.md,
 * "Anchors"). An anchor serves the visible device with its parent guid
 * only while that device is unmodified: once written, it is refused as a
 * base forever, and the anchor only keeps its old blocks allocated.
 */
#include "os/os.h"

#include <libthinp/delta.h>
#include "replica.h"

int replica_unmodified(thinp_pool *pool, uint64_t anchor, uint64_t dev)
{
	thinp_delta_options o = THINP_DELTA_OPTIONS_INIT;
	thinp_delta_run run;
	thinp_delta *d = NULL;
	size_t nr = 0;
	int r;

	o.flags = THINP_DELTA_CHANGES_ONLY;
	r = thinp_pool_delta_open(&d, pool, anchor, dev, &o);
	if (!r)
		r = thinp_delta_next(d, &run, 1, &nr);
	thinp_delta_close(d);
	return r ? r : nr == 0;
}

/* 1 if anchor @a serves no one, 0 if it does, or a negative errno. @x is
 * room for the device it would serve. */
static int dead_anchor(thinp_pool *pool, thinp_catalog *cat, const thinp_catalog_entry *a,
		       thinp_catalog_entry *x)
{
	int r;

	if (catalog_find_guid(cat, 0, a->parent_guid, false, x))
		return 1;
	r = catalog_entry_stale(pool, x);
	if (r)
		return r < 0 ? r : 1;
	r = replica_unmodified(pool, a->id, x->id);
	return r < 0 ? r : !r;
}

/* Every anchor that serves no one: its entry's id into @entries, and into
 * @devices too when the entry is current (a stale one's id may hold
 * another device). */
static int find_dead(thinp_pool *pool, thinp_catalog *cat, thinp_catalog_entry *a,
		     thinp_catalog_entry *x, struct catalog_ids *entries, struct catalog_ids *devices)
{
	int r = 0;

	*a = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t id = 0; !r && thinp_catalog_next(cat, id, a) == 0; id = a->id + 1) {
		int stale;

		if (!(a->flags & THINP_CATALOG_ANCHOR))
			continue;
		stale = catalog_entry_stale(pool, a);
		r = stale ? stale : dead_anchor(pool, cat, a, x);
		if (r == 1) {
			entries->id[entries->n++] = a->id;
			if (!stale)
				devices->id[devices->n++] = a->id;
			r = 0;
		}
	}
	return r;
}

int thinp_receive_prune(thinp_pool *pool, thinp_catalog *catalog, uint64_t *dropped)
{
	struct catalog_ids entries = { NULL, 0 }, devices = { NULL, 0 };
	thinp_catalog_entry *a, *x;
	int r;

	if (!pool || !catalog)
		return -EINVAL;
	if (dropped)
		*dropped = 0;
	a = thinp_os_alloc(sizeof(*a));
	x = thinp_os_alloc(sizeof(*x));
	r = a && x ? 0 : -ENOMEM;
	if (!r)
		r = catalog_ids_init(&entries, catalog);
	if (!r)
		r = catalog_ids_init(&devices, catalog);
	/* Decided for every anchor first: an error drops nothing. */
	if (!r)
		r = find_dead(pool, catalog, a, x, &entries, &devices);
	for (size_t i = 0; !r && i < entries.n; i++)
		r = thinp_catalog_remove(catalog, entries.id[i]);
	/* The catalog's order: entries removed and committed, then devices. */
	if (!r && entries.n)
		r = replica_commit_catalog(catalog, pool);
	if (!r) {
		if (dropped)
			*dropped = entries.n;
		r = catalog_ids_delete(pool, &devices);
	}
	thinp_os_free(devices.id);
	thinp_os_free(entries.id);
	thinp_os_free(a);
	thinp_os_free(x);
	return r;
}
