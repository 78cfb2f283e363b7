/*
 * libthinp catalog: a pool's table of volumes.
 *
 * ABI tier: stable (version nodes LIBTHINP_1.N).
 *
 * The kernel's metadata format stores, for a thin device, its mappings and a
 * few counters, but not what a front-end needs to serve it: its virtual size,
 * whether it is read-only, the external origin it reads unprovisioned blocks
 * from (a device outside the pool), or an identity that survives being sent
 * to another pool. The catalog keeps these, one entry per device, on a device
 * of its own reached through a thinp_io backend (by convention a file beside
 * the metadata named META.vol), so the pool metadata stays exactly what the
 * kernel reads and writes: a pool without a catalog opens as before, and the
 * kernel activates a pool that has one.
 *
 * Changes (thinp_catalog_set, thinp_catalog_remove) are made in memory and
 * become durable together at thinp_catalog_commit(), which is crash-safe: after
 * a power cut at any point, reopening gives either the catalog as of the
 * previous commit or as of the new one (docs/CATALOG.md has the format).
 *
 * Keeping in step with the pool. A catalog commit and a pool commit are two
 * writes to two devices, so a crash can land one without the other. Each
 * commit records the pool transaction id it was made against, and each entry
 * records the device's creation stamp (its creation time and transaction id
 * in the pool, as thinp_pool_get_thin_status() reports them) when it was
 * attached. The rules, which thinp_catalog_reconcile() applies:
 *  - an entry whose device no longer exists, or whose device's creation stamp
 *    differs (the id was deleted and reused behind the catalog's back), is
 *    stale and ignored (reconcile drops it);
 *  - a device without an entry is served without a size: the front-end must
 *    be told one, or refuses it.
 * The order that makes a crash harmless: create the device in the pool, then
 * attach its entry and commit the catalog; remove the entry and commit the
 * catalog, then delete the device. Either crash leaves a device without an
 * entry, never an entry describing another device.
 *
 * Threading: every function may be called from several threads on the same
 * catalog (one lock serializes them), except thinp_catalog_close(), which
 * must be the last call.
 */
#ifndef LIBTHINP_CATALOG_H
#define LIBTHINP_CATALOG_H

#include <stdint.h>
#include <stddef.h>
#include <libthinp/common.h>
#include <libthinp/io.h>
#include <libthinp/pool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An open catalog. Opaque. */
typedef struct thinp_catalog thinp_catalog;

/* The version of thinp_catalog_entry this header describes. */
#define THINP_CATALOG_ENTRY_VERSION 3

/* Longest external origin path, terminating NUL included. */
#define THINP_CATALOG_ORIGIN_MAX 4096

/* Entry flags (thinp_catalog_entry.flags). Bits the library does not know
 * are stored and returned unchanged. */
#define THINP_CATALOG_READ_ONLY (1u << 0) /* serve the volume read-only */
/* A receive into this device has not finished (issue #11's partial state):
 * front-ends should not serve it; recv_stream and recv_next_block say
 * where to resume. */
#define THINP_CATALOG_PARTIAL (1u << 1)
/* A hidden read-only snapshot a receive keeps of each device it published
 * (replica.h): parent_guid is that device's guid, size 0. Front-ends should
 * not serve it; deleting it only stops incrementals onto that device. */
#define THINP_CATALOG_ANCHOR (1u << 2)
/* A migration's own device (migrate.h): a round snapshot in the source pool
 * (parent_guid: the device migrated) or a round copy in the destination
 * pool, until the migration ends. Front-ends should not serve it. */
#define THINP_CATALOG_MIGRATING (1u << 3)
/* A source device whose migration switched (migrate.h): its copy on the
 * destination is the device now; this one waits to be deleted. Front-ends
 * should not serve it. */
#define THINP_CATALOG_MIGRATED (1u << 4)
/* A snapshot a replication sender keeps of its source device (replicate.h):
 * parent_guid is the source's guid. The newest is the one being replicated
 * or last acknowledged; older ones are deleted once the receiver
 * acknowledged a newer one. Since 1.0. */
#define THINP_CATALOG_REPLICATION (1u << 8)
/* The devices the library keeps for its own work (partial receives,
 * anchors, migration rounds and leftovers, replication snapshots): a
 * front-end serves none of them. Since 1.0. */
#define THINP_CATALOG_INTERNAL                                                     \
	(THINP_CATALOG_PARTIAL | THINP_CATALOG_ANCHOR | THINP_CATALOG_MIGRATING | \
	 THINP_CATALOG_MIGRATED | THINP_CATALOG_REPLICATION)

/*
 * One device's entry. Fill from THINP_CATALOG_ENTRY_INIT. The library copies
 * min(struct_size, sizeof) bytes in and out, so a caller compiled against an
 * older, shorter version keeps working.
 */
typedef struct thinp_catalog_entry {
	uint32_t struct_size; /* sizeof(thinp_catalog_entry) as compiled by the caller */
	uint32_t version;     /* THINP_CATALOG_ENTRY_VERSION */
	uint64_t id;          /* the thin device id in the pool */
	uint64_t size;        /* virtual size in bytes; 0 = unknown */
	uint32_t flags;       /* THINP_CATALOG_* */
	/* The device's creation stamp in the pool, set by
	 * thinp_catalog_attach() (thinp_thin_status creation_time and
	 * transaction_id); thinp_catalog_set() stores what it is given. */
	uint32_t birth_time;
	uint64_t birth_transaction;
	/* A random identity (thinp_catalog_new_guid()), all zeroes = none. */
	uint8_t guid[16];
	/* The guid of the device this one was snapshotted or received from;
	 * all zeroes = none. */
	uint8_t parent_guid[16];
	/* Partial receive (THINP_CATALOG_PARTIAL): the stream's id and the next
	 * block to receive. Zero otherwise. */
	uint8_t recv_stream[16];
	uint64_t recv_next_block;
	/* External origin: a path (NUL-terminated), "" = none. */
	char origin[THINP_CATALOG_ORIGIN_MAX];
	/* Since version 2: the rest of a partial receive's resume point
	 * (thinp_stream_position, stream.h): the records and stream bytes
	 * before it and the running digest there, so that its resume token can
	 * be made again later (thinp_receive_token). Zero otherwise. A caller of
	 * version 1 (shorter struct_size) reads without them and sets them to 0. */
	uint64_t recv_records;
	uint64_t recv_bytes;
	uint32_t recv_digest;
	uint32_t reserved;    /* 0 */
	/* Since version 3: the external origin's identity, set by whoever
	 * attaches the origin (`thinp create --origin` picks a random guid
	 * and records the file's size; a receive records the stream's):
	 * origin_guid names the bytes the origin held when the device was
	 * made, origin_size their count. A send puts them in the stream's
	 * header, and a receiver takes the stream only onto an origin
	 * registered here with the same guid and size (replica.h). All
	 * zeroes with an origin: one attached by a library without version 3
	 * (such a device is not sent). Zero without an origin. */
	uint8_t origin_guid[16];
	uint64_t origin_size;
	/* Fields added in later versions go here, each marked "since version N". */
} thinp_catalog_entry;

#define THINP_CATALOG_ENTRY_INIT \
	{ sizeof(thinp_catalog_entry), THINP_CATALOG_ENTRY_VERSION, 0, 0, 0, 0, 0, \
	  { 0 }, { 0 }, { 0 }, 0, { 0 }, 0, 0, 0, 0, { 0 }, 0 }

/*
 * thinp_catalog_open - read the catalog stored on @io.
 * @out:  receives the catalog, owned by the caller (thinp_catalog_close()).
 * @io:   the catalog's device; borrowed, it must stay open until
 *        thinp_catalog_close() returns. An empty device (size 0 or zeroes
 *        where the two headers go) is an empty catalog, transaction id 0.
 *        A read-only handle gives a catalog whose commit fails with -EROFS.
 * @flags: 0.
 * Errors: -EINVAL (NULL argument, unknown flags); -EILSEQ (neither header is
 * a valid catalog header and the device is not empty, or the newest valid
 * commit's entries fail their checksum and the older one's too);
 * -EOPNOTSUPP (written by a newer library with a feature this one must
 * understand and does not); -EIO and other errors of @io; -ENOMEM.
 * Since 1.0.
 */
THINP_API int thinp_catalog_open(thinp_catalog **out, thinp_io *io, uint32_t flags);

/* thinp_catalog_close - free the catalog. Uncommitted changes are lost.
 * Does not close the device. NULL is a no-op. Since 1.0. */
THINP_API void thinp_catalog_close(thinp_catalog *cat);

/*
 * thinp_catalog_get - copy device @id's entry into *@out (min(struct_size,
 * sizeof) bytes; struct_size is kept). Uncommitted changes are visible.
 * Errors: -ENODATA (no entry), -EINVAL (NULL, struct_size below 8).
 * Since 1.0.
 */
THINP_API int thinp_catalog_get(thinp_catalog *cat, uint64_t id, thinp_catalog_entry *out);

/*
 * thinp_catalog_next - the entry with the smallest id >= @id, into *@out.
 * Walk all entries by restarting at out->id + 1.
 * Errors: -ENODATA (none left), -EINVAL. Since 1.0.
 */
THINP_API int thinp_catalog_next(thinp_catalog *cat, uint64_t id, thinp_catalog_entry *out);

/*
 * thinp_catalog_set - add device @e->id's entry, or replace it. Not durable
 * until thinp_catalog_commit().
 * Errors: -EINVAL (NULL, unknown version, struct_size too small for
 * version 1, id >= 2^24, an origin not NUL-terminated within
 * THINP_CATALOG_ORIGIN_MAX), -ENOMEM. Since 1.0.
 */
THINP_API int thinp_catalog_set(thinp_catalog *cat, const thinp_catalog_entry *e);

/*
 * thinp_catalog_attach - thinp_catalog_set() after stamping @e's birth_time
 * and birth_transaction from device @e->id in @pool (@e itself is not
 * changed). The way to add the entry of a device just created.
 * Errors: -ENODATA (no such device in @pool), those of thinp_catalog_set()
 * and of thinp_pool_get_thin_status(). Since 1.0.
 */
THINP_API int thinp_catalog_attach(thinp_catalog *cat, thinp_pool *pool,
				   const thinp_catalog_entry *e);

/*
 * thinp_catalog_inherit - the entry a snapshot of device @origin_id gets:
 * a copy of @origin_id's entry (size, flags, external origin, ...) with a
 * new random guid, parent_guid set to @origin_id's guid, the birth stamp
 * and partial-receive fields cleared, and id still @origin_id (the caller
 * sets the new id and attaches it). *@out's struct_size is kept.
 * Errors: -ENODATA (@origin_id has no entry), -EINVAL, and those of
 * thinp_catalog_new_guid(). Since 1.0.
 */
THINP_API int thinp_catalog_inherit(thinp_catalog *cat, uint64_t origin_id,
				    thinp_catalog_entry *out);

/* thinp_catalog_remove - drop device @id's entry (until the next commit, in
 * memory only). Errors: -ENODATA (no entry). Since 1.0. */
THINP_API int thinp_catalog_remove(thinp_catalog *cat, uint64_t id);

/*
 * thinp_catalog_reconcile - drop every stale entry (see above): one whose
 * device @pool does not have, or whose birth stamp differs from the
 * device's. In memory only, like thinp_catalog_remove().
 * Returns the number of entries dropped (>= 0), or -EIO and other errors of
 * thinp_pool_get_thin_status() (nothing is dropped then). Since 1.0.
 */
THINP_API int thinp_catalog_reconcile(thinp_catalog *cat, thinp_pool *pool);

/*
 * thinp_catalog_commit - make the entries durable, recording
 * @pool_transaction_id (the pool's transaction id the caller has made them
 * match; thinp_pool_status.transaction_id). Writes the slot that does not
 * hold the current commit, flushes, then writes its header and flushes
 * again; grows the device (thinp_io_resize()) when the entries need room.
 * After a failure, the catalog on the device is the previous commit or this
 * one, and the in-memory entries are unchanged: the commit may be retried.
 * Errors: -EROFS (read-only device), -ENOSPC (the device is too small and
 * cannot grow), -EIO and other errors of the device, -ENOMEM. Since 1.0.
 */
THINP_API int thinp_catalog_commit(thinp_catalog *cat, uint64_t pool_transaction_id);

/* thinp_catalog_transaction_id - the pool transaction id recorded by the
 * last commit (read at open or written since); 0 for a new catalog.
 * Since 1.0. */
THINP_API uint64_t thinp_catalog_transaction_id(thinp_catalog *cat);

/* thinp_catalog_count - how many entries the catalog holds now. Since 1.0. */
THINP_API uint64_t thinp_catalog_count(thinp_catalog *cat);

/*
 * thinp_catalog_message - run one pool message on @pool and keep @cat in
 * step: the create/snapshot/delete grammar front-ends offer while serving.
 * @msg: one message, words separated by blanks (a trailing newline is
 *       allowed), in the kernel's thin-pool grammar with one extension:
 *   create_thin ID [SIZE]    a new device with a new entry of SIZE bytes
 *                            (k/m/g/t suffixes, powers of 1024; a multiple
 *                            of 512), @default_size without SIZE
 *   create_snap ID ORIGIN    a snapshot of ORIGIN with the entry
 *                            thinp_catalog_inherit() gives, or one of
 *                            @default_size when ORIGIN has no entry
 *   delete ID                the device and its entry; when it was the
 *                            last visible device with its guid, its
 *                            anchors too (replica.h, thinp_receive_prune)
 *   set_transaction_id CUR NEW, reserve_metadata_snap,
 *   release_metadata_snap    as thinp_pool_set_transaction_id() etc.
 * @default_size: bytes; 0 = none (then SIZE is required and a snapshot's
 *       origin must have an entry).
 * A new device is created in @pool (committed) before its entry is attached
 * and @cat committed; an entry is removed and @cat committed before the
 * device is deleted, and put back (committed) if @pool refuses the delete.
 * If creating succeeds and the catalog commit fails, the device stays,
 * without an entry, and the catalog's error is returned.
 * Errors: -EINVAL (NULL argument, unknown message, wrong word count, bad
 * number or size, an id above THINP_META_MAX_DEV_ID, no size for
 * create_thin); -ENODATA (create_snap: ORIGIN has no entry and
 * @default_size is 0, or no such device); -EPERM (create_snap of an anchor
 * or partial device, THINP_CATALOG_ANCHOR/PARTIAL); -EBUSY (delete of an
 * open device); -EEXIST; those of the pool functions named above and of
 * thinp_catalog_commit(). Details of pool errors: thinp_pool_errmsg().
 * Not thread-safe against other changes of @cat or of @pool's device set:
 * callers serialize messages. Since 1.0.
 */
THINP_API int thinp_catalog_message(thinp_catalog *cat, thinp_pool *pool, const char *msg,
				    uint64_t default_size);

/*
 * thinp_catalog_new_guid - fill @guid with 16 random bytes (getrandom(2)),
 * never all zeroes. Errors: -EIO and other getrandom(2) errors. Thread-safe.
 * Since 1.0.
 */
THINP_API int thinp_catalog_new_guid(uint8_t guid[16]);

#ifdef __cplusplus
}
#endif
#endif
