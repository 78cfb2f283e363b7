/*
 * Anchors: the hidden read-only snapshot a receive keeps of each device it
 * publishes, so that a later incremental can tell whether the device was
 * modified (docs/REPLICA.md). An anchor serves only while a visible device
 * has its parent guid; the helpers here find anchors and take them out of
 * the catalog when that device goes, for a catalog delete, a receive and
 * thinp_receive_prune alike.
 */
#include "os/os.h"

#include "catalog/catalog_internal.h"

int catalog_find_guid(thinp_catalog *cat, uint64_t id, const uint8_t guid[16], bool anchor,
		      thinp_catalog_entry *out)
{
	*out = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	while (thinp_catalog_next(cat, id, out) == 0) {
		bool is_anchor = out->flags & THINP_CATALOG_ANCHOR;

		if (anchor && is_anchor && !memcmp(out->parent_guid, guid, 16))
			return 0;
		if (!anchor && !is_anchor && !(out->flags & THINP_CATALOG_PARTIAL) &&
		    !memcmp(out->guid, guid, 16))
			return 0;
		id = out->id + 1;
	}
	return -ENODATA;
}

int catalog_ids_init(struct catalog_ids *ids, thinp_catalog *cat)
{
	uint64_t n = thinp_catalog_count(cat);

	ids->n = 0;
	ids->id = thinp_os_alloc((n ? n : 1) * sizeof(*ids->id));
	return ids->id ? 0 : -ENOMEM;
}

int catalog_take_anchors(thinp_catalog *cat, thinp_pool *pool, const uint8_t guid[16],
			 uint64_t keep, struct catalog_ids *ids)
{
	thinp_catalog_entry *e = thinp_os_alloc(sizeof(*e));
	int r = e ? 0 : -ENOMEM, n = 0;

	for (uint64_t id = 0; !r && catalog_find_guid(cat, id, guid, true, e) == 0;
	     id = e->id + 1) {
		int stale;

		if (e->id == keep)
			continue;
		/* A stale entry's id may hold another device now: not deleted. */
		stale = catalog_entry_stale(pool, e);
		if (stale < 0)
			r = stale;
		else if (!stale)
			ids->id[ids->n++] = e->id;
		if (!r)
			r = thinp_catalog_remove(cat, e->id);
		n++;
	}
	thinp_os_free(e);
	return r ? r : n;
}

int catalog_ids_delete(thinp_pool *pool, struct catalog_ids *ids)
{
	int first = 0;

	for (size_t i = 0; i < ids->n; i++) {
		int r = thinp_pool_delete_thin(pool, ids->id[i]);

		if (r && r != -ENODATA && !first)
			first = r;
	}
	thinp_os_free(ids->id);
	memset(ids, 0, sizeof(*ids));
	return first;
}
