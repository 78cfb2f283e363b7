/* lib/replica internals shared by send and receive. */
#ifndef LIBTHINP_REPLICA_INTERNAL_H
#define LIBTHINP_REPLICA_INTERNAL_H

#include "os/os.h"
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

#endif
