/* Replica chains of a replication receiver, and failover onto their newest. */
#include "os/os.h"

#include "catalog/catalog_internal.h"
#include "replica/replica.h"
#include "workflow/chain.h"
#include <libthinp/replicate.h>

int chain_find(thinp_catalog *cat, const uint8_t want[16], thinp_catalog_entry *e)
{
	thinp_catalog_entry *a;
	uint8_t guid[16];
	int r;

	/* @want may be a field of @e, which the look-up overwrites. */
	memcpy(guid, want, 16);
	if (replica_guid_is_zero(guid))
		return -ENODATA;
	if ((r = catalog_find_guid(cat, 0, guid, false, e)))
		return r;
	if (!(a = thinp_os_alloc(sizeof(*a))))
		return -ENOMEM;
	r = catalog_find_guid(cat, 0, guid, true, a);
	thinp_os_free(a);
	return r;
}

/* A replica received onto replica @parent, into @child. */
static int find_child(thinp_catalog *cat, const thinp_catalog_entry *parent,
		      thinp_catalog_entry *child)
{
	thinp_catalog_entry *c = thinp_os_alloc(sizeof(*c));
	int r = c ? -ENODATA : -ENOMEM;

	if (c)
		*c = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t id = 0; r == -ENODATA && thinp_catalog_next(cat, id, c) == 0; id = c->id + 1)
		if (!(c->flags & (THINP_CATALOG_PARTIAL | THINP_CATALOG_ANCHOR)) &&
		    !memcmp(c->parent_guid, parent->guid, 16) && !chain_find(cat, c->guid, child))
			r = 0;
	thinp_os_free(c);
	return r;
}

void chain_newest(thinp_catalog *cat, thinp_catalog_entry *e)
{
	thinp_catalog_entry *c = thinp_os_alloc(sizeof(*c));

	while (c && !find_child(cat, e, c))
		*e = *c;
	thinp_os_free(c);
}

/* Replica @e and its anchor deleted. */
static int drop_replica(thinp_catalog *cat, thinp_pool *pool, const thinp_catalog_entry *e)
{
	thinp_catalog_entry *a = thinp_os_alloc(sizeof(*a));
	int r = a ? 0 : -ENOMEM;

	while (!r && !catalog_find_guid(cat, 0, e->guid, true, a))
		r = replica_drop_device(cat, pool, a->id);
	thinp_os_free(a);
	return r ? r : replica_drop_device(cat, pool, e->id);
}

int chain_prune(thinp_catalog *cat, thinp_pool *pool, const thinp_catalog_entry *newest,
		uint32_t keep)
{
	thinp_catalog_entry *e = thinp_os_alloc(sizeof(*e));
	uint8_t parent[16];
	int r = e ? 0 : -ENOMEM;

	if (r)
		return r;
	*e = *newest;
	memcpy(parent, e->parent_guid, 16);
	for (uint32_t k = 1; k < keep; k++) {
		if (chain_find(cat, parent, e)) {
			thinp_os_free(e);
			return 0; /* no more than @keep replicas */
		}
		memcpy(parent, e->parent_guid, 16);
	}
	/* Each older replica's own parent is read before it goes. */
	while (!r && !chain_find(cat, parent, e)) {
		memcpy(parent, e->parent_guid, 16);
		r = drop_replica(cat, pool, e);
	}
	thinp_os_free(e);
	return r;
}

int thinp_replicate_failover(thinp_pool *pool, thinp_catalog *catalog, uint64_t replica,
			     uint64_t new_id, uint64_t *out)
{
	thinp_catalog_entry *e, *n;
	int64_t id;
	int r;

	if (!pool || !catalog || !out)
		return -EINVAL;
	e = thinp_os_alloc(sizeof(*e));
	n = thinp_os_alloc(sizeof(*n));
	r = e && n ? 0 : -ENOMEM;
	if (!r) {
		*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
		r = thinp_catalog_get(catalog, replica, e);
	}
	if (!r)
		r = chain_find(catalog, e->guid, e) || e->id != replica ? -ENODATA : 0;
	if (!r)
		chain_newest(catalog, e);
	id = r ? r : new_id == THINP_RECEIVE_ANY_ID ? replica_free_id(pool) : (int64_t)new_id;
	if (id < 0)
		r = (int)id;
	if (!r)
		r = thinp_pool_create_snap(pool, (uint64_t)id, e->id);
	if (!r) {
		*n = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
		n->id = (uint64_t)id;
		n->size = e->size;
		memcpy(n->parent_guid, e->guid, 16);
		r = thinp_catalog_new_guid(n->guid);
		if (!r)
			r = thinp_catalog_attach(catalog, pool, n);
		if (!r)
			r = replica_commit_catalog(catalog, pool);
		if (!r)
			*out = (uint64_t)id;
	}
	thinp_os_free(e);
	thinp_os_free(n);
	return r;
}
