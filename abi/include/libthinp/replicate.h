/*
 * libthinp asynchronous replication: a thin device of one pool kept copied,
 * snapshot by snapshot, into another pool over a connection (a pipe, a TCP
 * connection, anything with read and write). docs/WORKFLOWS.md
 * ("Replication") describes the cycle and the session protocol.
 *
 * ABI tier: stable (version nodes LIBTHINP_1.N).
 *
 * The sender (thinp_replicate_send) runs cycles in the calling thread: every
 * interval it snapshots the source device, sends the stream of what changed
 * since the previous replicated snapshot (replica.h: thinp_send with that
 * snapshot as base), waits for the receiver's acknowledgement, and only then
 * deletes the older snapshot. The receiver (thinp_replicate_serve) applies
 * each stream with thinp_receive, which publishes the replica atomically,
 * and acknowledges it after the publishing commit. A dropped connection is
 * reopened and the interrupted stream resumed from the receiver's resume
 * token (THINP_RECEIVE_RESUMABLE), so only what the receiver did not make
 * durable is sent again. thinp_replicate_failover makes the newest complete
 * replica writable as a new device.
 *
 * Both sides keep their state in their pools' catalogs, so a restarted
 * process goes on where the previous one stopped: the sender's snapshots are
 * catalog entries flagged THINP_CATALOG_REPLICATION (parent guid = the source
 * device's guid); the receiver's replicas are published devices linked by
 * their parent guids (each names the replica it was received onto).
 *
 * Both run inside the process that owns their pool; neither starts a thread.
 * The job (job.h) reports progress, honours pause, cancel and the rate
 * limit; the library makes no network calls of its own: the connection is
 * the caller's, through thinp_replicate_transport.
 */
#ifndef LIBTHINP_REPLICATE_H
#define LIBTHINP_REPLICATE_H

#include <stddef.h>
#include <stdint.h>
#include <libthinp/common.h>
#include <libthinp/pool.h>
#include <libthinp/catalog.h>
#include <libthinp/job.h>
#include <libthinp/replica.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the structs this header describes. */
#define THINP_REPLICATE_VERSION 1

/*
 * A connection factory and its connections. Every callback gets @ctx (the
 * factory's) or the connection pointer connect stored.
 *
 * connect: the sender opens a connection to the receiver; the receiver waits
 *   for the next one (an accept). Store the connection in *conn and return
 *   0, or: -EAGAIN (none yet: the receiver checks its job and asks again; the
 *   transport should not block for more than about a second), -ENOTCONN
 *   (there will be no more: a pipe is one connection), any other negative
 *   errno (the sender retries after retry_ns; the receiver returns it).
 * read: as thinp_stream_read_fn (1..len bytes, or 0 in *got when the peer
 *   closed), or -EAGAIN when nothing arrived within the transport's own
 *   timeout (about a second): the library checks its job and reads again.
 * write: all @len bytes, 0 or a negative errno.
 * close: release the connection (after an error too).
 */
typedef struct thinp_replicate_transport {
	uint32_t struct_size; /* sizeof(thinp_replicate_transport) as compiled by the caller */
	uint32_t version;     /* THINP_REPLICATE_VERSION */
	int (*connect)(void *ctx, void **conn);
	int (*read)(void *conn, void *buf, size_t len, size_t *got);
	int (*write)(void *conn, const void *buf, size_t len);
	void (*close)(void *conn);
	void *ctx;
	/* Fields added in later versions go here. */
} thinp_replicate_transport;

/* Options of thinp_replicate_send(). Fill from THINP_REPLICATE_SEND_OPTIONS_INIT;
 * NULL means these defaults. */
typedef struct thinp_replicate_send_options {
	uint32_t struct_size;     /* sizeof(thinp_replicate_send_options) as compiled */
	uint32_t version;         /* THINP_REPLICATE_VERSION */
	uint64_t interval_ns;     /* from one cycle's start to the next's (default 60 s) */
	uint64_t cycles;          /* return 0 after this many acknowledged cycles;
				   * 0: run until cancelled */
	uint64_t retry_ns;        /* wait before reconnecting (default 1 s) */
	uint64_t max_retries;     /* consecutive failed connections before the run
				   * fails with the last error; 0: no limit */
	uint64_t checkpoint_bytes; /* resume points, as thinp_send_options (0: default) */
	/* If not NULL, receives a NUL-terminated description of a failure. */
	char *errbuf;
	size_t errbuf_size;
	/* Fields added in later versions go here. */
} thinp_replicate_send_options;

#define THINP_REPLICATE_SEND_OPTIONS_INIT \
	{ sizeof(thinp_replicate_send_options), THINP_REPLICATE_VERSION, \
	  60ull * 1000000000ull, 0, 1000000000ull, 0, 0, NULL, 0 }

/* Called by the receiver after each replica is published and acknowledged:
 * its device id and guid (the sender's snapshot's guid). */
typedef void (*thinp_replicate_published_fn)(uint64_t id, const uint8_t guid[16], void *ctx);

/* Options of thinp_replicate_serve(). Fill from THINP_REPLICATE_SERVE_OPTIONS_INIT;
 * NULL means these defaults. */
typedef struct thinp_replicate_serve_options {
	uint32_t struct_size;  /* sizeof(thinp_replicate_serve_options) as compiled */
	uint32_t version;      /* THINP_REPLICATE_VERSION */
	uint32_t keep;         /* complete replicas kept per chain, >= 1 (default 2):
				* older ones (and their anchors) are deleted */
	uint32_t reserved;     /* 0 */
	uint64_t connections;  /* return 0 after this many connections ended; 0: no limit */
	thinp_replicate_published_fn published;
	void *published_ctx;
	/* If not NULL, receives a NUL-terminated description of a failure. */
	char *errbuf;
	size_t errbuf_size;
	/* Fields added in later versions go here. */
} thinp_replicate_serve_options;

#define THINP_REPLICATE_SERVE_OPTIONS_INIT \
	{ sizeof(thinp_replicate_serve_options), THINP_REPLICATE_VERSION, 2, 0, 0, NULL, NULL, \
	  NULL, 0 }

/*
 * thinp_replicate_send - replicate device @dev of @pool until cancelled (or
 * opts->cycles acknowledged cycles).
 * @catalog: @pool's catalog, written at every cycle (snapshot entries).
 * @transport: the connections to the receiver (connect is called again
 *          after a connection failed).
 * @job:    progress (NULL: none): done = stream bytes sent, round = cycles
 *          acknowledged, lag_ns = age of the newest acknowledged snapshot
 *          (since the run started, before the first acknowledgement),
 *          in_flight = stream bytes of the current cycle not acknowledged;
 *          phase COPY (a full stream), CATCH_UP (an incremental one),
 *          CLEANUP (deleting the older snapshot), WAIT (between cycles). The
 *          rate limit applies to the stream bytes. A cancel is honoured
 *          between cycles and while the stream is written (the receiver
 *          keeps what it made durable: the next run resumes it).
 * The snapshot is taken while @dev may be in use (thinp_pool_create_snap:
 * writes completed before it are in it). Its device id is the lowest free
 * one. A device with an external origin is refused, as by thinp_send.
 * Errors: -ECANCELED; -EINVAL (bad argument or options); -ENODATA (no
 * device @dev); the receiver's refusal of a stream (its thinp_receive error,
 * e.g. -ESTALE when its replica was modified); -EPROTO (the peer does not
 * speak the session protocol); the last connection error after max_retries;
 * -ENOTCONN (connect has no more connections: a pipe that broke);
 * the errors of thinp_pool_create_snap, the catalog and thinp_send.
 * Thread safety: @dev's snapshots are the caller's to keep; one sender per
 * device. Since 1.0.
 */
THINP_API int thinp_replicate_send(thinp_pool *pool, thinp_catalog *catalog, uint64_t dev,
				   const thinp_replicate_transport *transport,
				   const thinp_replicate_send_options *opts, thinp_job *job);

/*
 * thinp_replicate_serve - accept connections from senders and apply their
 * streams to @pool, until cancelled, until the transport has no more
 * connections (connect returned -ENOTCONN: returns 0), or until
 * opts->connections connections ended.
 * Each replica is published by thinp_receive (one catalog commit) before it
 * is acknowledged; interrupted receives are kept (THINP_RECEIVE_RESUMABLE)
 * for the sender to resume. A connection that fails is closed and the next
 * one awaited; a stream the pool refuses is answered with the error (the
 * sender's run fails with it).
 * @job: progress (NULL: none): done = stream bytes received, round =
 *       replicas published; a cancel is honoured while waiting for a
 *       connection or for data.
 * Errors: -ECANCELED, -EINVAL, the errors of @pool and @catalog (after
 * which the pool should be reopened: -EIO from a failed device), a connect
 * error other than -EAGAIN and -ENOTCONN.
 * Thread safety: one server per pool; it must be the only user of the
 * catalog's replicas and of new device ids while it runs. Since 1.0.
 */
THINP_API int thinp_replicate_serve(thinp_pool *pool, thinp_catalog *catalog,
				    const thinp_replicate_transport *transport,
				    const thinp_replicate_serve_options *opts, thinp_job *job);

/*
 * thinp_replicate_failover - make the newest complete replica of the chain
 * that replica @replica belongs to writable: a snapshot of it, created as
 * device @new_id (THINP_RECEIVE_ANY_ID: the lowest free id) with a catalog
 * entry (the replica's size, a new guid, parent guid = the replica's guid).
 * The replica itself is unchanged, so replication can go on onto it.
 * @out: receives the new device's id.
 * Errors: -ENODATA (@replica is not a published device with a guid), -EEXIST
 * (@new_id in use), -EINVAL, the errors of thinp_pool_create_snap and the
 * catalog. Thread safety: as thinp_receive. Since 1.0.
 */
THINP_API int thinp_replicate_failover(thinp_pool *pool, thinp_catalog *catalog,
				       uint64_t replica, uint64_t new_id, uint64_t *out);

#ifdef __cplusplus
}
#endif
#endif
