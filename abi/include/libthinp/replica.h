/*
 * libthinp replication: send a thin device of a pool as a stream (stream.h)
 * and receive one into another pool, keeping each device's identity in the
 * pools' catalogs (catalog.h). docs/REPLICA.md describes the rules.
 *
 * ABI tier: stable (version nodes LIBTHINP_1.N).
 *
 * A full stream carries every mapped block of a device; an incremental one
 * only what changed between a base device and the target (thinp_pool_delta,
 * cost O(changed)). A stream names its target by the device's catalog guid
 * and an incremental one its base the same way. The receiver:
 *  - applies a full stream to a new device and an incremental one to a new
 *    snapshot of the local device whose guid is the base guid, so blocks the
 *    two devices share in the sending pool are shared in the receiving one;
 *  - keeps the new device hidden (catalog entry THINP_CATALOG_PARTIAL) until
 *    the stream's END record checked out, then publishes it: PARTIAL cleared,
 *    guid set to the stream's target guid, parent guid to its base guid;
 *  - takes an incremental only onto a base not modified since it was
 *    received: it keeps a hidden read-only snapshot of every device it
 *    received (an "anchor", THINP_CATALOG_ANCHOR) and requires the base's
 *    delta against it to be empty;
 *  - on any error deletes the new device: visible devices never change.
 * A stream whose target guid is already a visible device of the receiving
 * pool is a replay: nothing is read past its header, nothing changes, and
 * the receive succeeds with that device's id.
 *
 * Resuming: with THINP_RECEIVE_RESUMABLE, the receiver makes everything
 * before each CHECKPOINT durable and records it (catalog entry recv_stream,
 * recv_next_block); an interrupted receive then keeps its device PARTIAL
 * (hidden) and hands out a resume token (stream.h). The sender restarts from
 * the token (thinp_send_options.resume_token), and the resumed stream
 * finishes that partial device.
 *
 * External origins: a device whose unprovisioned blocks read from an
 * external origin (catalog entry origin, origin_guid, origin_size) is sent
 * with the stream header's unmapped = THINP_STREAM_UNMAPPED_ORIGIN and the
 * origin's guid and size; the receiver takes it only onto a local origin
 * registered with that guid and size (thinp_receive_options.origin, or a
 * catalog entry that has it), and the received device reads the same:
 * provisioned blocks as sent, the others from its origin. Nothing checks
 * the origin's bytes: registering a file as an origin guid is the caller's
 * claim that it holds the sender's origin's bytes.
 *
 * Version 1 limits: the stream's block size must equal the receiving pool's
 * data block size; a device whose origin has no origin guid (attached by a
 * library before catalog entry version 3) is not sent.
 *
 * Threading: a send reads the devices while other threads may use the pool,
 * but the devices sent must not be written meanwhile (send snapshots); a
 * receive must be the only user of the catalog and of the new ids.
 */
#ifndef LIBTHINP_REPLICA_H
#define LIBTHINP_REPLICA_H

#include <stddef.h>
#include <stdint.h>
#include <libthinp/common.h>
#include <libthinp/pool.h>
#include <libthinp/catalog.h>
#include <libthinp/stream.h>

#ifdef __cplusplus
extern "C" {
#endif

/* thinp_send's base for a full stream. */
#define THINP_SEND_FULL UINT64_MAX

/* The version of the options structs this header describes. */
#define THINP_REPLICA_OPTIONS_VERSION 1

/* Options of thinp_send(). Fill from THINP_SEND_OPTIONS_INIT; NULL means these
 * defaults. */
typedef struct thinp_send_options {
	uint32_t struct_size;      /* sizeof(thinp_send_options) as compiled by the caller */
	uint32_t version;          /* THINP_REPLICA_OPTIONS_VERSION */
	uint64_t checkpoint_bytes; /* as thinp_stream_writer_begin(); 0: the default */
	/* If not NULL, receives a NUL-terminated description of a failure. */
	char *errbuf;
	size_t errbuf_size;
	/* If not NULL: a receiver's resume token; the stream sent is the rest
	 * of the interrupted one, from the token's resume point. */
	const char *resume_token;
	/* Fields added in later versions go here. */
} thinp_send_options;

#define THINP_SEND_OPTIONS_INIT \
	{ sizeof(thinp_send_options), THINP_REPLICA_OPTIONS_VERSION, 0, NULL, 0, NULL }

/* thinp_receive_options.id: pick the lowest free device id. */
#define THINP_RECEIVE_ANY_ID UINT64_MAX

/* thinp_receive_options.flags: keep an interrupted receive for a resume. */
#define THINP_RECEIVE_RESUMABLE (1u << 0)

/* Options of thinp_receive(). Fill from THINP_RECEIVE_OPTIONS_INIT; NULL
 * means these defaults. */
typedef struct thinp_receive_options {
	uint32_t struct_size; /* sizeof(thinp_receive_options) as compiled by the caller */
	uint32_t version;     /* THINP_REPLICA_OPTIONS_VERSION */
	uint64_t id;          /* the new device's id, or THINP_RECEIVE_ANY_ID */
	/* If not NULL, receives a NUL-terminated description of a failure. */
	char *errbuf;
	size_t errbuf_size;
	uint32_t flags;       /* THINP_RECEIVE_* */
	uint32_t reserved;    /* 0 */
	/* With THINP_RECEIVE_RESUMABLE: receives the resume token of an
	 * interrupted receive that kept its device ("" when none was kept);
	 * token_size >= THINP_STREAM_TOKEN_SIZE. */
	char *token;
	size_t token_size;
	/* A stream of a device with an external origin (its unmapped blocks
	 * read as the origin) names the origin by guid and size. If not NULL:
	 * the path of this host's copy of it, the caller's claim that the file
	 * holds the same bytes as the sender's origin (its size must be the
	 * stream's origin size, and origin_guid, unless all zeroes, the
	 * stream's origin guid). NULL: the origin of a catalog entry with the
	 * stream's origin guid (a device received before, or an incremental's
	 * base). The new device's entry records the path, guid and size.
	 * Refused (-EINVAL) for a stream without an external origin. Appended
	 * in 1.0: a caller's shorter struct reads as NULL and zeroes. */
	const char *origin;
	uint8_t origin_guid[16];
	/* Fields added in later versions go here. */
} thinp_receive_options;

#define THINP_RECEIVE_OPTIONS_INIT \
	{ sizeof(thinp_receive_options), THINP_REPLICA_OPTIONS_VERSION, THINP_RECEIVE_ANY_ID, \
	  NULL, 0, 0, 0, NULL, 0, NULL, { 0 } }

/*
 * thinp_send - write device @dev of @pool as a stream.
 * @catalog: the pool's catalog. A device without a guid is given one (and
 *          an entry if it has none), committed before the stream starts, so
 *          the catalog must be writable then.
 * @base:   THINP_SEND_FULL for a full stream (DATA for every mapped block),
 *          or the device the receiver already has: an incremental stream of
 *          the blocks that differ (DATA for blocks mapped in @dev and not
 *          mapped, or mapped elsewhere, in @base; UNMAP for blocks mapped
 *          only in @base).
 * @write, @ctx: the transport (stream.h).
 * The virtual size sent is @dev's catalog size, or, without one, its
 * highest mapped block's end (at least one block).
 * With an external origin (catalog entry origin), the header says
 * unmapped = THINP_STREAM_UNMAPPED_ORIGIN with the entry's origin_guid and
 * origin_size; mapped blocks that hold only zeroes go as ZERO records
 * (provisioned zeroes that hide the origin), the others as DATA.
 * Errors: -ENODATA (no such device), -EOPNOTSUPP (a device whose external
 * origin has no origin guid), -EINVAL (a resume token that is malformed or
 * names other devices; a base whose origin guid is not @dev's), -ESTALE (a device was written during the send), -ENOMEM,
 * -EIO and the errors of the catalog and of the write callback; after an
 * error the stream is cut (a receiver sees it truncated).
 * Thread safety: see above. Since 1.0.
 */
THINP_API int thinp_send(thinp_pool *pool, thinp_catalog *catalog, uint64_t dev, uint64_t base,
			 thinp_stream_write_fn write, void *ctx, const thinp_send_options *opts);

/*
 * thinp_receive - read one stream and apply it to @pool as a new device.
 * @catalog: the pool's catalog; committed (with the pool) when the device is
 *          published, and when a failed receive is undone.
 * @read, @ctx: the transport. A successful receive reads nothing past END.
 * @new_id: receives the id of the published device (or, for a replay, of the
 *          device that already has the stream's target guid).
 * Errors (nothing visible changed after any of them):
 *   -EILSEQ, -EPROTO, -EOPNOTSUPP  a damaged, truncated or unsupported stream
 *                (stream.h); with THINP_RECEIVE_RESUMABLE and a CHECKPOINT
 *                received, the device is kept PARTIAL and opts->token set;
 *   -EINVAL      a stream this pool cannot hold (block size), a bad argument;
 *   -ENODATA     an incremental stream whose base guid no visible device has;
 *                a stream with an external origin that no file here is
 *                registered as (opts->origin, or a catalog entry with its
 *                origin guid), or one whose size, or the given guid,
 *                differs; an incremental whose base has another origin;
 *   -EINVAL      also: opts->origin given for a stream without one;
 *   -ESTALE      the base was modified since it was received, or was not
 *                received (no anchor to tell); a resumed stream that no
 *                partial device here is waiting for (stream id and resume
 *                block);
 *   -EEXIST      opts->id is in use;
 *   -ENOSPC, -EIO, -ENOMEM and the errors of the read callback.
 * Since 1.0.
 */
THINP_API int thinp_receive(thinp_pool *pool, thinp_catalog *catalog, thinp_stream_read_fn read,
			    void *ctx, const thinp_receive_options *opts, uint64_t *new_id);

/*
 * thinp_receive_abort - give up partial receive @id (a device whose catalog
 * entry is THINP_CATALOG_PARTIAL, kept by an interrupted resumable receive):
 * its entry is removed and the catalog committed, then the device deleted
 * (and the pool committed). Its resume token is useless afterwards.
 * Find partial receives by walking the catalog (thinp_catalog_next) for
 * entries with THINP_CATALOG_PARTIAL.
 * Errors: -ENODATA (no such device, or no current entry for it), -EINVAL
 * (not a partial receive: published devices are deleted as any other), and
 * the errors of thinp_catalog_commit and thinp_pool_delete_thin.
 * Thread safety: as thinp_receive. Since 1.0.
 */
THINP_API int thinp_receive_abort(thinp_pool *pool, thinp_catalog *catalog, uint64_t id);

/*
 * thinp_receive_token - the resume token of partial receive @id, made again
 * from what its catalog entry keeps (stream id, target and base guids, the
 * whole resume point: catalog entry version 2): the token the interrupted
 * receive handed out, for `thinp send --resume` at any later time.
 * @token, @size: receives the NUL-terminated token; size >=
 * THINP_STREAM_TOKEN_SIZE.
 * Errors: -ENODATA (no such device, no current entry, or an entry written
 * by a library without catalog entry version 2), -EINVAL (not a partial
 * receive, a bad argument). Thread safety: as thinp_receive. Since 1.0.
 */
THINP_API int thinp_receive_token(thinp_pool *pool, thinp_catalog *catalog, uint64_t id,
				  char *token, size_t size);

/*
 * thinp_receive_prune - delete the anchors that serve no one. Every
 * received device keeps an anchor (a hidden snapshot, THINP_CATALOG_ANCHOR,
 * its parent guid the device's guid) that lets a later incremental check
 * the device was not modified. An anchor is kept exactly while a visible
 * device has its parent guid and maps every block as the anchor does; it
 * is dropped (entry removed, catalog committed, then the device deleted,
 * its blocks freed unless shared) when that device is gone -- deleted
 * without the library, by the kernel or another tool -- or was modified:
 * a modified base is refused forever, and its anchor only keeps the
 * device's old blocks allocated. The library drops anchors by itself
 * when it can: a device deleted with thinp_catalog_message("delete ID")
 * takes its anchors along, and a receive that publishes a device drops
 * the older anchors of its guid. Prune is for the rest.
 * @dropped: if not NULL, receives the number of anchors dropped (entries of
 *          anchors whose device was already gone included).
 * Errors: -EINVAL (NULL pool or catalog), -ENOMEM, and the errors of the
 * pool's delta and delete and of thinp_catalog_commit; after an error in
 * the decisions nothing is dropped.
 * Thread safety: as thinp_receive. Since 1.0.
 */
THINP_API int thinp_receive_prune(thinp_pool *pool, thinp_catalog *catalog, uint64_t *dropped);

#ifdef __cplusplus
}
#endif
#endif
