/*
 * The volume table: what a volume is served as (size, read-only, external
 * origin), from the pool's catalog (libthinp/catalog.h, by default the file
 * META.vol), and the catalog kept in step with the control file's messages.
 *
 * The order of the two commits is the catalog's rule (docs/CATALOG.md): a
 * device is created in the pool (committed) before its entry is attached and
 * the catalog committed; an entry is removed and the catalog committed
 * before the device is deleted (thinp_catalog_message does both). A crash
 * between the two leaves a device without an entry, never an entry
 * describing another device.
 *
 * A device without an entry is served with the size given by -o size=, or
 * not at all without that option. An entry marked partial (a receive in
 * progress) or anchor (a hidden snapshot `thinp receive` keeps, see
 * docs/REPLICA.md) is not served.
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
	/* Before the size: an anchor's entry has none. */
	if (e && (e->flags & THINP_CATALOG_INTERNAL & ~THINP_CATALOG_PARTIAL))
		return -EPERM;
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
