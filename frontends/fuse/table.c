/*
 * The volume table: what a volume is served as (size, read-only, external
 * origin), from the pool's catalog (libthinp/catalog.h, by default the file
 * META.vol), and the catalog kept in step with the control file's messages.
 *
 * The order of the two commits is the catalog's rule (docs/CATALOG.md): a
 * device is created in the pool (committed) before its entry is attached and
 * the catalog committed; an entry is removed and the catalog committed
 * before the device is deleted. A crash between the two leaves a device
 * without an entry, never an entry describing another device.
 *
 * A device without an entry is served with the size given by -o size=, or
 * not at all without that option. An entry marked partial (a receive in
 * progress) is not served.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thinp_fuse.h"

int table_open(struct tfs *fs)
{
	int r = thinp_io_open_file(&fs->catalog_io, fs->catalog_path, THINP_IO_CREATE);

	if (!r)
		r = thinp_catalog_open(&fs->catalog, fs->catalog_io, 0);
	if (r)
		fprintf(stderr, "thinp-fuse: %s: %s\n", fs->catalog_path, thinp_strerror(r));
	return r;
}

void table_close(struct tfs *fs)
{
	thinp_catalog_close(fs->catalog);
	thinp_io_close(fs->catalog_io);
}

static thinp_catalog_entry *entry_new(void)
{
	thinp_catalog_entry *e = malloc(sizeof(*e));

	if (e)
		*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	return e;
}

/* Fill @v (id set) from @e, or from the defaults when @e is NULL. */
static int describe(struct tfs *fs, const thinp_catalog_entry *e, struct volume *v)
{
	int r;

	v->size = e && e->size ? e->size : fs->default_size;
	v->rdonly = e && (e->flags & THINP_CATALOG_READ_ONLY);
	if (!v->size)
		return -ENODATA;
	if (e && (e->flags & THINP_CATALOG_PARTIAL))
		return -EAGAIN;
	if (!e || !e->origin[0])
		return 0;
	r = thinp_io_open_file(&v->origin, e->origin, THINP_IO_RDONLY);
	if (r)
		fprintf(stderr, "thinp-fuse: volume %" PRIu64 ": origin %s: %s\n", v->id,
			e->origin, thinp_strerror(r));
	return r;
}

int table_describe(struct tfs *fs, uint64_t id, struct volume *v)
{
	thinp_catalog_entry *e = entry_new();
	int r;

	if (!e)
		return -ENOMEM;
	v->id = id;
	r = thinp_catalog_get(fs->catalog, id, e);
	if (r == 0 || r == -ENODATA)
		r = describe(fs, r ? NULL : e, v);
	free(e);
	return r;
}

static int commit(struct tfs *fs)
{
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	int r = thinp_pool_get_status(fs->pool, &st);

	return r ? r : thinp_catalog_commit(fs->catalog, st.transaction_id);
}

int table_reconcile(struct tfs *fs)
{
	int r = thinp_catalog_reconcile(fs->catalog, fs->pool);

	return r > 0 ? commit(fs) : r;
}

/*
 * The entry of new device @id: a snapshot's is inherited from its origin's
 * (size, flags, external origin; the origin as parent), or has the served
 * origin's size when the origin has no entry; a new thin's has @size. Then
 * attached and committed.
 */
int table_created(struct tfs *fs, uint64_t id, const struct volume *snap_of, uint64_t size)
{
	thinp_catalog_entry *e = entry_new();
	int r = -ENODATA;

	if (!e)
		return -ENOMEM;
	if (snap_of)
		r = thinp_catalog_inherit(fs->catalog, snap_of->id, e);
	if (r == -ENODATA) {
		e->size = snap_of ? snap_of->size : size;
		r = thinp_catalog_new_guid(e->guid);
	}
	e->id = id;
	if (!r)
		r = thinp_catalog_attach(fs->catalog, fs->pool, e);
	if (!r)
		r = commit(fs);
	free(e);
	return r;
}

/* Delete device @id: its entry goes (committed) first; if the pool then
 * refuses, the entry comes back. */
int table_delete(struct tfs *fs, uint64_t id)
{
	thinp_catalog_entry *e = entry_new();
	bool had;
	int r;

	if (!e)
		return -ENOMEM;
	had = thinp_catalog_get(fs->catalog, id, e) == 0;
	r = had ? thinp_catalog_remove(fs->catalog, id) : 0;
	if (!r && had)
		r = commit(fs);
	if (!r)
		r = thinp_pool_delete_thin(fs->pool, id);
	if (r && had && thinp_catalog_set(fs->catalog, e) == 0)
		commit(fs);
	free(e);
	return r;
}
