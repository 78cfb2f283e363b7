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

int replica_find_guid(thinp_catalog *cat, const uint8_t guid[16], bool anchor,
		      thinp_catalog_entry *out)
{
	uint64_t id = 0;

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
		      thinp_thin **out)
{
	thinp_thin_options o = THINP_THIN_OPTIONS_INIT;
	uint32_t bs = replica_block_size(pool);

	if (!bs)
		return -EIO;
	o.size = (size + bs - 1) / bs * bs;
	o.flags = rdonly ? THINP_THIN_RDONLY : 0;
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
