/*
 * The catalog's public functions over its in-memory table: entries sorted by
 * id in one array (a pool has few devices; lookups are binary searches).
 */
#include "os/os.h"

#include <libthinp/thin.h>

#include "catalog/catalog_internal.h"
#include "util/compiler.h"


int catalog_table_append(struct catalog_table *t, const thinp_catalog_entry *e)
{
	if (t->n == t->cap) {
		uint64_t cap = t->cap ? t->cap * 2 : 8;
		thinp_catalog_entry *ne = thinp_os_realloc(t->e, t->cap * sizeof(*ne), cap * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		t->e = ne;
		t->cap = cap;
	}
	t->e[t->n++] = *e;
	return 0;
}

/* Index of the first entry with id >= @id (t->n if none). */
static uint64_t table_lower_bound(const struct catalog_table *t, uint64_t id)
{
	uint64_t lo = 0, hi = t->n;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (t->e[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void table_delete(struct catalog_table *t, uint64_t i)
{
	memmove(&t->e[i], &t->e[i + 1], (t->n - i - 1) * sizeof(t->e[0]));
	t->n--;
}

/* Copy an entry out to a caller's struct of its own size. */
static int entry_out(const thinp_catalog_entry *e, thinp_catalog_entry *out)
{
	uint32_t size = out->struct_size;

	memcpy(out, e, THINP_MIN(size, sizeof(*e)));
	out->struct_size = size;
	return 0;
}

/* A caller's entry, checked and widened to ours. */
static int entry_in(const thinp_catalog_entry *in, thinp_catalog_entry *e)
{
	size_t v1 = offsetof(thinp_catalog_entry, origin) + THINP_CATALOG_ORIGIN_MAX;

	/* Version 1 callers pass a shorter struct: its later fields become 0. */
	if (!in || !in->version || in->version > THINP_CATALOG_ENTRY_VERSION ||
	    in->struct_size < v1 ||
	    in->id > CAT_MAX_ID || !memchr(in->origin, 0, THINP_CATALOG_ORIGIN_MAX))
		return -EINVAL;
	memset(e, 0, sizeof(*e));
	memcpy(e, in, THINP_MIN(in->struct_size, sizeof(*e)));
	e->struct_size = sizeof(*e);
	return 0;
}

int thinp_catalog_open(thinp_catalog **out, thinp_io *io, uint32_t flags)
{
	thinp_catalog *cat;
	int r;

	if (!out || !io || flags)
		return -EINVAL;
	cat = thinp_os_zalloc(sizeof(*cat));
	if (!cat)
		return -ENOMEM;
	cat->io = io;
	r = catalog_store_load(io, &cat->table, &cat->last);
	if (!r && thinp_os_mutex_init(&cat->lock))
		r = -ENOMEM;
	if (r) {
		thinp_os_free(cat->table.e);
		thinp_os_free(cat);
		return r;
	}
	*out = cat;
	return 0;
}

void thinp_catalog_close(thinp_catalog *cat)
{
	if (!cat)
		return;
	thinp_os_mutex_destroy(&cat->lock);
	thinp_os_free(cat->table.e);
	thinp_os_free(cat);
}

/* Copy out the entry at the lower bound of @id; @exact: it must be @id. */
static int lookup(thinp_catalog *cat, uint64_t id, int exact, thinp_catalog_entry *out)
{
	uint64_t i;
	int r = -ENODATA;

	if (!cat || !out || out->struct_size < 8)
		return -EINVAL;
	thinp_os_mutex_lock(&cat->lock);
	i = table_lower_bound(&cat->table, id);
	if (i < cat->table.n && (!exact || cat->table.e[i].id == id))
		r = entry_out(&cat->table.e[i], out);
	thinp_os_mutex_unlock(&cat->lock);
	return r;
}

int thinp_catalog_get(thinp_catalog *cat, uint64_t id, thinp_catalog_entry *out)
{
	return lookup(cat, id, 1, out);
}

int thinp_catalog_next(thinp_catalog *cat, uint64_t id, thinp_catalog_entry *out)
{
	return lookup(cat, id, 0, out);
}

/* Insert or replace; the lock is held. */
static int table_put(struct catalog_table *t, const thinp_catalog_entry *e)
{
	uint64_t i = table_lower_bound(t, e->id);
	int r;

	if (i < t->n && t->e[i].id == e->id) {
		t->e[i] = *e;
		return 0;
	}
	r = catalog_table_append(t, e); /* makes room; then move it into place */
	if (r)
		return r;
	memmove(&t->e[i + 1], &t->e[i], (t->n - 1 - i) * sizeof(t->e[0]));
	t->e[i] = *e;
	return 0;
}

static int put(thinp_catalog *cat, const thinp_catalog_entry *in, const thinp_thin_status *st)
{
	thinp_catalog_entry *e = thinp_os_alloc(sizeof(*e));
	int r = e ? entry_in(in, e) : -ENOMEM;

	if (!r && st) {
		e->birth_time = st->creation_time;
		e->birth_transaction = st->transaction_id;
	}
	if (!r) {
		thinp_os_mutex_lock(&cat->lock);
		r = table_put(&cat->table, e);
		thinp_os_mutex_unlock(&cat->lock);
	}
	thinp_os_free(e);
	return r;
}

int thinp_catalog_set(thinp_catalog *cat, const thinp_catalog_entry *e)
{
	if (!cat)
		return -EINVAL;
	return put(cat, e, NULL);
}

int thinp_catalog_attach(thinp_catalog *cat, thinp_pool *pool, const thinp_catalog_entry *e)
{
	thinp_thin_status st = THINP_THIN_STATUS_INIT;
	int r;

	if (!cat || !pool || !e)
		return -EINVAL;
	r = thinp_pool_get_thin_status(pool, e->id, &st);
	return r ? r : put(cat, e, &st);
}

int thinp_catalog_inherit(thinp_catalog *cat, uint64_t origin_id, thinp_catalog_entry *out)
{
	thinp_catalog_entry *e;
	int r;

	if (!cat || !out || out->struct_size < 8)
		return -EINVAL;
	e = thinp_os_alloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->struct_size = sizeof(*e);
	r = thinp_catalog_get(cat, origin_id, e);
	if (!r) {
		memcpy(e->parent_guid, e->guid, sizeof(e->guid));
		r = thinp_catalog_new_guid(e->guid);
		e->birth_time = 0;
		e->birth_transaction = 0;
		e->flags &= ~THINP_CATALOG_PARTIAL;
		memset(e->recv_stream, 0, sizeof(e->recv_stream));
		e->recv_next_block = 0;
	}
	if (!r)
		entry_out(e, out);
	thinp_os_free(e);
	return r;
}

int thinp_catalog_remove(thinp_catalog *cat, uint64_t id)
{
	uint64_t i;
	int r = -ENODATA;

	if (!cat)
		return -EINVAL;
	thinp_os_mutex_lock(&cat->lock);
	i = table_lower_bound(&cat->table, id);
	if (i < cat->table.n && cat->table.e[i].id == id) {
		table_delete(&cat->table, i);
		r = 0;
	}
	thinp_os_mutex_unlock(&cat->lock);
	return r;
}

int catalog_entry_stale(thinp_pool *pool, const thinp_catalog_entry *e)
{
	thinp_thin_status st = THINP_THIN_STATUS_INIT;
	int r = thinp_pool_get_thin_status(pool, e->id, &st);

	if (r == -ENODATA)
		return 1;
	if (r)
		return r;
	return st.creation_time != e->birth_time || st.transaction_id != e->birth_transaction;
}

int thinp_catalog_reconcile(thinp_catalog *cat, thinp_pool *pool)
{
	uint8_t *stale;
	uint64_t i, kept = 0;
	int r = 0, dropped = 0;

	if (!cat || !pool)
		return -EINVAL;
	thinp_os_mutex_lock(&cat->lock);
	/* Decide for every entry first, so an I/O error drops nothing. */
	stale = thinp_os_zalloc_array(cat->table.n ? cat->table.n : 1, 1);
	if (!stale)
		r = -ENOMEM;
	for (i = 0; !r && i < cat->table.n; i++) {
		int s = catalog_entry_stale(pool, &cat->table.e[i]);

		if (s < 0)
			r = s;
		else
			stale[i] = (uint8_t)s;
	}
	for (i = 0; !r && i < cat->table.n; i++) {
		if (stale[i])
			dropped++;
		else
			cat->table.e[kept++] = cat->table.e[i];
	}
	if (!r)
		cat->table.n = kept;
	thinp_os_mutex_unlock(&cat->lock);
	thinp_os_free(stale);
	return r ? r : dropped;
}

int thinp_catalog_commit(thinp_catalog *cat, uint64_t pool_transaction_id)
{
	int r;

	if (!cat)
		return -EINVAL;
	thinp_os_mutex_lock(&cat->lock);
	r = catalog_store_commit(cat->io, &cat->table, &cat->last, pool_transaction_id);
	thinp_os_mutex_unlock(&cat->lock);
	return r;
}

uint64_t thinp_catalog_transaction_id(thinp_catalog *cat)
{
	uint64_t id;

	thinp_os_mutex_lock(&cat->lock);
	id = cat->last.transaction_id;
	thinp_os_mutex_unlock(&cat->lock);
	return id;
}

uint64_t thinp_catalog_count(thinp_catalog *cat)
{
	uint64_t n;

	thinp_os_mutex_lock(&cat->lock);
	n = cat->table.n;
	thinp_os_mutex_unlock(&cat->lock);
	return n;
}

int thinp_catalog_new_guid(uint8_t guid[16])
{
	static const uint8_t zero[16];

	if (!guid)
		return -EINVAL;
	do {
		int r = thinp_os_random_bytes(guid, 16);

		if (r)
			return r;
	} while (!memcmp(guid, zero, 16));
	return 0;
}
