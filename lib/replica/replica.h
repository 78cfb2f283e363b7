/* lib/replica internals shared by send and receive. */
#ifndef LIBTHINP_REPLICA_INTERNAL_H
#define LIBTHINP_REPLICA_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <libthinp/replica.h>
#include <libthinp/thin.h>

/* A failure's description into a caller's buffer (may be NULL); returns e. */
int replica_fail(char *buf, size_t size, int e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

bool replica_guid_is_zero(const uint8_t guid[16]);

/* The first entry (from id 0) whose guid, or with anchor set whose parent
 * guid, is @guid, among visible devices (anchor false: neither PARTIAL nor
 * ANCHOR) or anchors (anchor true). 0, or -ENODATA. */
int replica_find_guid(thinp_catalog *cat, const uint8_t guid[16], bool anchor,
		      thinp_catalog_entry *out);

/* The lowest device id the pool does not use, or a negative errno. */
int64_t replica_free_id(thinp_pool *pool);

/* Open device @id for I/O over whole blocks covering @size bytes. */
int replica_open_thin(thinp_pool *pool, uint64_t id, uint64_t size, bool rdonly,
		      thinp_thin **out);

/* The pool's data block size in bytes, or 0 on error. */
uint32_t replica_block_size(thinp_pool *pool);

/* Device @id's entry removed and the catalog committed (if it had one),
 * then the device deleted: the order catalog.h prescribes. */
int replica_drop_device(thinp_catalog *cat, thinp_pool *pool, uint64_t id);

/* Commit the catalog against the pool's current transaction id. */
int replica_commit_catalog(thinp_catalog *cat, thinp_pool *pool);

/* Device @id's entry into @e if it is current (its birth stamp is the
 * device's): 0, -ENODATA (no device, no entry, or a stale one), -EIO. */
int replica_current_entry(thinp_catalog *cat, thinp_pool *pool, uint64_t id,
			  thinp_catalog_entry *e);

/* Device @id's current entry into @e, given a guid (and an entry) if it has
 * none; committed at once so the guid sent is the one the catalog keeps. */
int replica_identify(thinp_pool *pool, thinp_catalog *cat, uint64_t id, thinp_catalog_entry *e);

/* What thinp_receive leaves to its defaults, for a migration (migrate.h). */
struct replica_receive_ext {
	uint32_t publish_flags; /* the published entry's flags (0: visible) */
	uint64_t anchor_id;     /* the anchor's id, or THINP_RECEIVE_ANY_ID */
};

/* thinp_receive with @ext's choices. */
int replica_receive(thinp_pool *pool, thinp_catalog *catalog, thinp_stream_read_fn read,
		    void *ctx, const thinp_receive_options *opts,
		    const struct replica_receive_ext *ext, uint64_t *new_id);

#endif
