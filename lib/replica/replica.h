/* lib/replica internals shared by send and receive. */
#ifndef LIBTHINP_REPLICA_INTERNAL_H
#define LIBTHINP_REPLICA_INTERNAL_H

#include "os/os.h"
#include <libthinp/replica.h>
#include <libthinp/thin.h>
#include "catalog/catalog_internal.h"

/* A failure's description into a caller's buffer (may be NULL); returns e. */
int replica_fail(char *buf, size_t size, int e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

bool replica_guid_is_zero(const uint8_t guid[16]);

/* 1 if device @dev maps every block as its anchor @anchor does (changes-only
 * delta empty: it was not modified since the anchor was taken), 0 if not,
 * or a negative errno. Reads only the subtrees the two do not share. */
int replica_unmodified(thinp_pool *pool, uint64_t anchor, uint64_t dev);

/* The lowest device id the pool does not use, or a negative errno. */
int64_t replica_free_id(thinp_pool *pool);

/* @guid as 32 lowercase hex digits and a NUL, for messages. */
void replica_guid_hex(const uint8_t guid[16], char hex[33]);

/* Open device @id for I/O over whole blocks covering @size bytes, reading
 * unprovisioned blocks from @origin (NULL: none). */
int replica_open_thin(thinp_pool *pool, uint64_t id, uint64_t size, bool rdonly,
		      thinp_io *origin, thinp_thin **out);

/* The pool's data block size in bytes, or 0 on error. */
uint32_t replica_block_size(thinp_pool *pool);

/* Device @id's entry removed and the catalog committed (if it had one),
 * then the device deleted: the order catalog.h prescribes. */
int replica_drop_device(thinp_catalog *cat, thinp_pool *pool, uint64_t id);

/* A caller's claim that a local file holds a stream's external origin:
 * @path NULL = none; @guid zeroes = whatever the stream's origin guid is. */
struct replica_origin_claim {
	const char *path;
	const uint8_t *guid;
};

/* The local file that holds @hdr's external origin (@hdr->unmapped is
 * THINP_STREAM_UNMAPPED_ORIGIN): @claim's path if given (its guid, unless
 * zeroes, must be the stream's), else the origin of a catalog entry with
 * the stream's origin guid; its size must be the stream's origin size.
 * Opened read-only into *@io, its path into @path (of
 * THINP_CATALOG_ORIGIN_MAX bytes). 0, or -ENODATA (no such origin here, a
 * guid or size that differs), -EINVAL, the file's errors, a message in
 * @errbuf. */
int replica_find_origin(thinp_catalog *cat, const thinp_stream_header *hdr,
			const struct replica_origin_claim *claim, char *path, thinp_io **io,
			char *errbuf, size_t errsize);

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
