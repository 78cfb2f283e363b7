/* Helpers of send and receive: error text, catalog look-ups, device ids. */
#include "os/os.h"

#include "replica.h"

/* Device ids are 24 bits (pool.h). */
#define MAX_DEVICE_ID (1u << 24)

int replica_fail(char *buf, size_t size, int e, const char *fmt, ...)
{
	va_list ap;

	if (buf && size) {
		va_start(ap, fmt);
		thinp_os_vsnprintf(buf, size, fmt, ap);
		va_end(ap);
	}
	return e;
}

bool replica_guid_is_zero(const uint8_t guid[16])
{
	static const uint8_t zero[16];

	return !memcmp(guid, zero, 16);
}

void replica_guid_hex(const uint8_t guid[16], char hex[33])
{
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", guid[i]);
}

int64_t replica_free_id(thinp_pool *pool)
{
	for (uint64_t id = 0; id < MAX_DEVICE_ID; id++) {
		thinp_thin_status st = THINP_THIN_STATUS_INIT;
		int r = thinp_pool_get_thin_status(pool, id, &st);

		if (r == -ENODATA)
			return (int64_t)id;
		if (r)
			return r;
	}
	return -ENOSPC;
}

uint32_t replica_block_size(thinp_pool *pool)
{
	thinp_pool_status st = THINP_POOL_STATUS_INIT;

	return thinp_pool_get_status(pool, &st) ? 0 : st.data_block_size;
}

int replica_open_thin(thinp_pool *pool, uint64_t id, uint64_t size, bool rdonly,
		      thinp_io *origin, thinp_thin **out)
{
	thinp_thin_options o = THINP_THIN_OPTIONS_INIT;
	uint32_t bs = replica_block_size(pool);

	if (!bs)
		return -EIO;
	o.size = (size + bs - 1) / bs * bs;
	o.flags = rdonly ? THINP_THIN_RDONLY : 0;
	o.origin = origin;
	return thinp_thin_open(out, pool, id, &o);
}

int replica_commit_catalog(thinp_catalog *cat, thinp_pool *pool)
{
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	int r = thinp_pool_get_status(pool, &st);

	return r ? r : thinp_catalog_commit(cat, st.transaction_id);
}

int replica_drop_device(thinp_catalog *cat, thinp_pool *pool, uint64_t id)
{
	int r = thinp_catalog_remove(cat, id);

	/* The entry goes first (catalog.h): a crash leaves a device without one. */
	if (!r)
		r = replica_commit_catalog(cat, pool);
	else if (r == -ENODATA)
		r = 0;
	return r ? r : thinp_pool_delete_thin(pool, id);
}

int replica_current_entry(thinp_catalog *cat, thinp_pool *pool, uint64_t id,
			  thinp_catalog_entry *e)
{
	int r, stale;

	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	r = thinp_catalog_get(cat, id, e);
	/* A stale entry (its device deleted, the id reused) describes nothing. */
	if (!r && (stale = catalog_entry_stale(pool, e)))
		r = stale < 0 ? stale : -ENODATA;
	return r;
}

int replica_identify(thinp_pool *pool, thinp_catalog *cat, uint64_t id, thinp_catalog_entry *e)
{
	thinp_thin_status st = THINP_THIN_STATUS_INIT;
	int r = thinp_pool_get_thin_status(pool, id, &st);

	if (r)
		return r;
	r = replica_current_entry(cat, pool, id, e);
	if (r == -ENODATA) {
		/* None, or a stale one of a deleted device with the same id. */
		*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
		e->id = id;
		r = 0;
	}
	if (r || !replica_guid_is_zero(e->guid))
		return r;
	if ((r = thinp_catalog_new_guid(e->guid)) || (r = thinp_catalog_attach(cat, pool, e)))
		return r;
	return replica_commit_catalog(cat, pool);
}
