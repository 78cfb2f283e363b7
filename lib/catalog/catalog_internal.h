/*
 * The catalog's internals: the in-memory table (catalog.c) and its on-disk
 * form (store.c). docs/CATALOG.md describes the format.
 */
#ifndef THINP_CATALOG_INTERNAL_H
#define THINP_CATALOG_INTERNAL_H

#include "os/os.h"

#include <libthinp/catalog.h>

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

#endif
