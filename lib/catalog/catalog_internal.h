/*
 * The catalog's internals: the in-memory table (catalog.c) and its on-disk
 * form (store.c). docs/CATALOG.md describes the format.
 */
#ifndef THINP_CATALOG_INTERNAL_H
#define THINP_CATALOG_INTERNAL_H

#include "os/os.h"

#include <libthinp/catalog.h>
#include <libthinp/pool.h>

/* Thin device ids are 24-bit in the kernel format. */
#define CAT_MAX_ID ((1ull << 24) - 1)

/* What the device holds as of the last commit the catalog read or wrote. */
struct catalog_commit {
	int slot;             /* header slot in use: 0, 1, or -1 (none yet) */
	uint64_t seq;         /* its sequence number (0 when none) */
	uint64_t payload_off; /* where its entries are, and how long (bytes) */
	uint64_t payload_len;
	uint64_t transaction_id;
};

/* An entries array, sorted by id, ids unique. */
struct catalog_table {
	thinp_catalog_entry *e;
	uint64_t n, cap;
};

struct thinp_catalog {
	thinp_io *io;          /* borrowed */
	thinp_os_mutex lock;   /* guards every field below */
	struct catalog_table table;
	struct catalog_commit last;
};

/* Append @e (its id above every id in @t) or fail with -ENOMEM. */
int catalog_table_append(struct catalog_table *t, const thinp_catalog_entry *e);

/* Read the newest valid commit of @io into @t (empty) and @last. Errors as
 * for thinp_catalog_open(). */
int catalog_store_load(thinp_io *io, struct catalog_table *t, struct catalog_commit *last);

/* Write @t as a new commit recording @transaction_id; on success update
 * @last. Errors as for thinp_catalog_commit(). */
int catalog_store_commit(thinp_io *io, const struct catalog_table *t,
			 struct catalog_commit *last, uint64_t transaction_id);

/* 1 if @e describes a device @pool does not have (any more: its id is gone
 * or holds a device of another birth stamp), 0 if not, or a negative errno. */
int catalog_entry_stale(thinp_pool *pool, const thinp_catalog_entry *e);

/* ---- Anchors (anchor.c; docs/REPLICA.md, "Anchors") ------------------ */

/* The first entry with an id >= @id that is, with @anchor, an anchor of
 * @guid (THINP_CATALOG_ANCHOR, parent guid @guid), else a visible entry
 * (neither ANCHOR nor PARTIAL) whose guid is @guid, into @out. 0, or
 * -ENODATA. */
int catalog_find_guid(thinp_catalog *cat, uint64_t id, const uint8_t guid[16], bool anchor,
		      thinp_catalog_entry *out);

/* Device ids gathered from the catalog to be deleted once the catalog
 * commit that removed their entries is done (the catalog's order). */
struct catalog_ids {
	uint64_t *id;
	size_t n;
};

/* An empty list with room for as many ids as @cat has entries: 0 or
 * -ENOMEM. Freed by catalog_ids_delete, or thinp_os_free(ids->id). */
int catalog_ids_init(struct catalog_ids *ids, thinp_catalog *cat);

/* Remove (not committed) the entry of every anchor of @guid but device
 * @keep's (UINT64_MAX: none kept), and gather the ids of those whose
 * device is current (not stale) into @ids (catalog_ids_init). The count
 * removed, or a negative errno (the pool's, -ENOMEM). */
int catalog_take_anchors(thinp_catalog *cat, thinp_pool *pool, const uint8_t guid[16],
			 uint64_t keep, struct catalog_ids *ids);

/* Delete the devices @ids (one that is gone already is no error), then
 * free the list: the first error, else 0. */
int catalog_ids_delete(thinp_pool *pool, struct catalog_ids *ids);

#endif
