/*
 * thinp_receive: a stream into a new hidden device, published at END.
 *
 * Order, so that a crash or an error never changes a visible device:
 *  1. the new device is created (a new thin device, or a snapshot of the
 *     base's anchor, which the delta check proved equal to the base) and
 *     committed; its catalog entry, PARTIAL, is committed next;
 *  2. the records are applied to it;
 *  3. after END: the data is flushed, an anchor snapshot of the new device is
 *     taken (a pool commit), then one catalog commit publishes the device
 *     (PARTIAL cleared, guids set) and adds the anchor's entry.
 * A crash before 3's catalog commit leaves the device PARTIAL (hidden) and at
 * most an anchor without an entry; on an error the device is deleted.
 */
#include "os/os.h"

#include <libthinp/delta.h>
#include "util/abi_struct.h"
#include "replica.h"

struct receiver {
	thinp_pool *pool;
	thinp_catalog *cat;
	thinp_stream_reader *rd;
	const thinp_stream_header *hdr;
	thinp_catalog_entry *base;  /* incremental: the base device's entry */
	thinp_catalog_entry *entry; /* the new device's entry */
	thinp_thin *thin;
	uint64_t id;
	bool created;               /* rc->id exists: undo() deletes it */
	bool resumable;             /* THINP_RECEIVE_RESUMABLE */
	bool have_point;            /* pos is a durable resume point */
	struct replica_receive_ext ext;
	thinp_stream_position pos;
	char *errbuf;
	size_t errsize;
	char *token;
	size_t token_size;
	struct replica_origin_claim claim; /* opts->origin, opts->origin_guid */
	thinp_io *origin;          /* the stream's external origin, opened */
	char *origin_path;         /* ... and its path (THINP_CATALOG_ORIGIN_MAX bytes) */
};

#define FAIL(rc, e, ...) replica_fail((rc)->errbuf, (rc)->errsize, (e), __VA_ARGS__)

static int stream_fail(struct receiver *rc, int e)
{
	const char *m = thinp_stream_reader_errmsg(rc->rd);

	return FAIL(rc, e, "stream: %s", *m ? m : thinp_strerror(e));
}

/* What this pool can take: its block size. */
static int check_header(struct receiver *rc)
{
	uint32_t bs = replica_block_size(rc->pool);

	if (rc->hdr->block_size != bs)
		return FAIL(rc, -EINVAL, "the stream's block size %" PRIu32
			    " is not the pool's data block size %" PRIu32, rc->hdr->block_size, bs);
	return 0;
}

/* Unmapped blocks read as an external origin: the local file registered as
 * it, opened for the new device (a ZERO record must provision zeroes over
 * it, an UNMAP expose it). */
static int open_origin(struct receiver *rc)
{
	if (rc->hdr->unmapped == THINP_STREAM_UNMAPPED_ZERO)
		return rc->claim.path ? FAIL(rc, -EINVAL, "an origin was given, but the stream's "
					     "device has no external origin") : 0;
	return replica_find_origin(rc->cat, rc->hdr, &rc->claim, rc->origin_path, &rc->origin,
				   rc->errbuf, rc->errsize);
}

/* The base device, unmodified since it was received: its anchor's delta
 * against it is empty. Sets rc->base; *anchor is the anchor's id. */
static int find_base(struct receiver *rc, uint64_t *anchor)
{
	thinp_catalog_entry *a = thinp_os_alloc(sizeof(*a));
	int r;

	if (!a)
		return -ENOMEM;
	if (catalog_find_guid(rc->cat, 0, rc->hdr->base_guid, false, rc->base)) {
		thinp_os_free(a);
		return FAIL(rc, -ENODATA, "no device here has the stream's base guid: the stream "
			    "applies to another device");
	}
	if (memcmp(rc->base->origin_guid, rc->hdr->origin_guid, 16)) {
		thinp_os_free(a);
		return FAIL(rc, -ENODATA, "base device %" PRIu64 " reads through another external "
			    "origin than the stream's", rc->base->id);
	}
	r = catalog_find_guid(rc->cat, 0, rc->hdr->base_guid, true, a);
	*anchor = a->id;
	thinp_os_free(a);
	if (r)
		return FAIL(rc, -ESTALE, "base device %" PRIu64 " was not received here: cannot "
			    "tell whether it was modified", rc->base->id);
	r = replica_unmodified(rc->pool, *anchor, rc->base->id);
	if (r < 0)
		return FAIL(rc, r, "comparing base device %" PRIu64 " with its anchor: %s",
			    rc->base->id, thinp_strerror(r));
	if (!r)
		return FAIL(rc, -ESTALE, "base device %" PRIu64 " was modified since it was "
			    "received", rc->base->id);
	return 0;
}

/* A resumed stream: the PARTIAL device waiting for it (same stream id, same
 * resume block), reopened. */
static int find_partial(struct receiver *rc)
{
	thinp_catalog_entry *e = rc->entry;
	bool found = false;
	int r;

	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t id = 0; !found && thinp_catalog_next(rc->cat, id, e) == 0; id = e->id + 1)
		found = (e->flags & THINP_CATALOG_PARTIAL) &&
			!memcmp(e->recv_stream, rc->hdr->stream_id, 16) &&
			e->recv_next_block == rc->hdr->resume.next_block;
	if (!found)
		return FAIL(rc, -ESTALE, "no partial receive here is waiting for this resumed "
			    "stream (stream id and resume block)");
	rc->id = rc->entry->id;
	rc->created = true;
	rc->pos = rc->hdr->resume;
	rc->have_point = true;
	r = replica_open_thin(rc->pool, rc->id, rc->hdr->virtual_size, false, rc->origin,
			      &rc->thin);
	return r ? FAIL(rc, r, "device %" PRIu64 ": %s", rc->id, thinp_strerror(r)) : 0;
}

/*
 * A snapshot of the base keeps the base's mappings past the stream's size;
 * the sender sends nothing there, so they go: a later, larger incremental
 * must find those blocks unmapped, as the sender's device has them.
 */
static int drop_tail(struct receiver *rc)
{
	thinp_thin_status st = THINP_THIN_STATUS_INIT;
	uint64_t bs = rc->hdr->block_size, end = (rc->hdr->virtual_size + bs - 1) / bs;
	thinp_thin *t;
	int r = thinp_pool_get_thin_status(rc->pool, rc->id, &st);

	if (r || st.highest_mapped <= end)
		return r;
	r = replica_open_thin(rc->pool, rc->id, st.highest_mapped * bs, false, NULL, &t);
	if (!r) {
		r = thinp_thin_discard(t, (st.highest_mapped - end) * bs, end * bs);
		thinp_thin_close(t);
	}
	return r;
}

/* The stream's external origin (none: zeroes) into @e. */
static void set_origin(struct receiver *rc, thinp_catalog_entry *e)
{
	if (!rc->origin)
		return;
	strcpy(e->origin, rc->origin_path);
	memcpy(e->origin_guid, rc->hdr->origin_guid, 16);
	e->origin_size = rc->hdr->origin_size;
}

/* Step 1: the new device and its PARTIAL entry, committed. */
static int create_device(struct receiver *rc, uint64_t want)
{
	uint64_t anchor = 0;
	int64_t id = want == THINP_RECEIVE_ANY_ID ? replica_free_id(rc->pool) : (int64_t)want;
	bool incremental = !replica_guid_is_zero(rc->hdr->base_guid);
	int r = incremental ? find_base(rc, &anchor) : 0;

	if (r)
		return r;
	if (id < 0)
		return FAIL(rc, (int)id, "no free device id");
	r = incremental ? thinp_pool_create_snap(rc->pool, (uint64_t)id, anchor)
			: thinp_pool_create_thin(rc->pool, (uint64_t)id);
	if (r)
		return FAIL(rc, r, "creating device %" PRId64 ": %s", id, thinp_strerror(r));
	rc->id = (uint64_t)id;
	rc->created = true;
	*rc->entry = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	rc->entry->id = rc->id;
	rc->entry->flags = THINP_CATALOG_PARTIAL;
	rc->entry->size = rc->hdr->virtual_size;
	memcpy(rc->entry->recv_stream, rc->hdr->stream_id, 16);
	/* Hidden while PARTIAL (catalog_find_guid skips it); kept for its token. */
	memcpy(rc->entry->guid, rc->hdr->target_guid, 16);
	memcpy(rc->entry->parent_guid, rc->hdr->base_guid, 16);
	set_origin(rc, rc->entry);
	r = thinp_catalog_attach(rc->cat, rc->pool, rc->entry);
	if (!r)
		r = replica_commit_catalog(rc->cat, rc->pool);
	if (!r)
		r = replica_open_thin(rc->pool, rc->id, rc->hdr->virtual_size, false, rc->origin,
				      &rc->thin);
	if (!r && incremental)
		r = drop_tail(rc);
	return r ? FAIL(rc, r, "device %" PRIu64 ": %s", rc->id, thinp_strerror(r)) : 0;
}

/* Everything below pos->next_block durable, then recorded: a resume point. */
static int checkpoint(struct receiver *rc, const thinp_stream_position *pos)
{
	int r = thinp_thin_flush(rc->thin);

	rc->entry->recv_next_block = pos->next_block;
	rc->entry->recv_records = pos->records;
	rc->entry->recv_bytes = pos->bytes;
	rc->entry->recv_digest = pos->digest;
	if (!r)
		r = thinp_catalog_attach(rc->cat, rc->pool, rc->entry);
	if (!r)
		r = replica_commit_catalog(rc->cat, rc->pool);
	if (!r) {
		rc->pos = *pos;
		rc->have_point = true;
	}
	return r;
}

static int apply(struct receiver *rc, const thinp_stream_record *rec)
{
	uint64_t bs = rc->hdr->block_size, off = rec->first_block * bs, len = rec->nr_blocks * bs;
	int r = 0;

	switch (rec->type) {
	case THINP_STREAM_DATA:
		r = thinp_thin_write(rc->thin, rec->data, len, off);
		break;
	case THINP_STREAM_UNMAP:
		r = thinp_thin_discard(rc->thin, len, off);
		break;
	case THINP_STREAM_ZERO:
		r = thinp_thin_write_zeroes(rc->thin, len, off);
		break;
	case THINP_STREAM_CHECKPOINT:
		r = rc->resumable ? checkpoint(rc, &rec->pos) : 0;
		break;
	default: /* END */
		break;
	}
	if (r)
		return FAIL(rc, r, "applying record %" PRIu64 " to device %" PRIu64 ": %s",
			    rec->seq, rc->id, thinp_strerror(r));
	return 0;
}

/* Step 2: every record up to END. */
static int apply_all(struct receiver *rc)
{
	const thinp_stream_record *rec;
	int r;

	do {
		if ((r = thinp_stream_reader_next(rc->rd, &rec)))
			return stream_fail(rc, r);
		if ((r = apply(rc, rec)))
			return r;
	} while (rec->type != THINP_STREAM_END);
	return 0;
}

/*
 * Anchors of the target guid older than the new one @keep: their device
 * went without the library (a delete by the kernel, say) and they serve
 * no one now; find_base would take the first. Removed (a catalog commit),
 * then deleted. The device is published already: a failure or a crash here
 * leaves them to thinp_receive_prune, and the receive succeeds.
 */
static void drop_replaced_anchors(struct receiver *rc, uint64_t keep)
{
	struct catalog_ids old;
	int r = catalog_ids_init(&old, rc->cat);

	if (r)
		return;
	r = catalog_take_anchors(rc->cat, rc->pool, rc->hdr->target_guid, keep, &old);
	if (r > 0)
		r = replica_commit_catalog(rc->cat, rc->pool);
	if (!r)
		catalog_ids_delete(rc->pool, &old);
	else
		thinp_os_free(old.id);
}

/* Step 3: durable data, the anchor, then one catalog commit. */
static int publish(struct receiver *rc)
{
	thinp_catalog_entry *a = thinp_os_alloc(sizeof(*a));
	int64_t anchor;
	int r = a ? thinp_thin_flush(rc->thin) : -ENOMEM;

	thinp_thin_close(rc->thin);
	rc->thin = NULL;
	anchor = r                                       ? r
		 : rc->ext.anchor_id == THINP_RECEIVE_ANY_ID ? replica_free_id(rc->pool)
							     : (int64_t)rc->ext.anchor_id;
	if (anchor < 0)
		r = (int)anchor;
	if (!r)
		r = thinp_pool_create_snap(rc->pool, (uint64_t)anchor, rc->id);
	if (!r) {
		*a = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
		a->id = (uint64_t)anchor;
		a->flags = THINP_CATALOG_ANCHOR | THINP_CATALOG_READ_ONLY;
		memcpy(a->parent_guid, rc->hdr->target_guid, 16);
		set_origin(rc, a);
		r = thinp_catalog_new_guid(a->guid);
	}
	if (!r)
		r = thinp_catalog_attach(rc->cat, rc->pool, a);
	if (!r) {
		rc->entry->flags = rc->ext.publish_flags;
		memset(rc->entry->recv_stream, 0, 16);
		rc->entry->recv_next_block = 0;
		rc->entry->recv_records = rc->entry->recv_bytes = 0;
		rc->entry->recv_digest = 0;
		memcpy(rc->entry->guid, rc->hdr->target_guid, 16);
		memcpy(rc->entry->parent_guid, rc->hdr->base_guid, 16);
		r = thinp_catalog_attach(rc->cat, rc->pool, rc->entry);
	}
	if (!r)
		r = replica_commit_catalog(rc->cat, rc->pool);
	if (r && anchor >= 0 && thinp_catalog_remove(rc->cat, (uint64_t)anchor) != -ENODATA)
		thinp_pool_delete_thin(rc->pool, (uint64_t)anchor);
	thinp_os_free(a);
	if (!r)
		drop_replaced_anchors(rc, (uint64_t)anchor);
	return r ? FAIL(rc, r, "publishing device %" PRIu64 ": %s", rc->id, thinp_strerror(r)) : 0;
}

/* After an error: the new device and its entry go. */
static void undo(struct receiver *rc)
{
	thinp_thin_close(rc->thin);
	rc->thin = NULL;
	replica_drop_device(rc->cat, rc->pool, rc->id);
}

/* An interrupted resumable receive: the device stays PARTIAL, at its last
 * resume point, and the caller gets the token. Returns e. */
static int keep_partial(struct receiver *rc, int e)
{
	thinp_thin_close(rc->thin);
	rc->thin = NULL;
	if (rc->token)
		thinp_stream_token_format(rc->token, rc->token_size, rc->hdr, &rc->pos);
	return e;
}

/* A replay: the target is here already (an entry whose device went without
 * the library describes nothing). */
static bool replayed(struct receiver *rc, uint64_t *id)
{
	int r = catalog_find_guid(rc->cat, 0, rc->hdr->target_guid, false, rc->entry);

	*id = rc->entry->id;
	return r == 0 && catalog_entry_stale(rc->pool, rc->entry) == 0;
}

static int receive(struct receiver *rc, uint64_t want, uint64_t *new_id)
{
	int r = thinp_stream_reader_header(rc->rd, &rc->hdr);

	if (r)
		return stream_fail(rc, r);
	if ((r = check_header(rc)))
		return r;
	if (replayed(rc, new_id))
		return 0;
	if ((r = open_origin(rc)))
		return r;
	if (rc->hdr->incompat & THINP_STREAM_INCOMPAT_RESUMING)
		r = find_partial(rc);
	else
		r = create_device(rc, want);
	if (!r && (r = apply_all(rc)) && rc->resumable && rc->have_point)
		return keep_partial(rc, r);
	if (!r && !(r = publish(rc)))
		*new_id = rc->id;
	else if (rc->created)
		undo(rc);
	return r;
}

int thinp_receive(thinp_pool *pool, thinp_catalog *catalog, thinp_stream_read_fn read,
		  void *ctx, const thinp_receive_options *opts, uint64_t *new_id)
{
	const struct replica_receive_ext ext = { 0, THINP_RECEIVE_ANY_ID };

	return replica_receive(pool, catalog, read, ctx, opts, &ext, new_id);
}

int replica_receive(thinp_pool *pool, thinp_catalog *catalog, thinp_stream_read_fn read,
		    void *ctx, const thinp_receive_options *opts,
		    const struct replica_receive_ext *ext, uint64_t *new_id)
{
	thinp_receive_options o = THINP_RECEIVE_OPTIONS_INIT;
	struct receiver rc = { .pool = pool, .cat = catalog, .ext = *ext };
	int r;

	if (!pool || !catalog || !read || !new_id)
		return -EINVAL;
	/* The fields up to the token are required; later ones are appended. */
	if (opts && thinp_abi_copy_in(&o, sizeof(o), opts, offsetof(thinp_receive_options, origin),
				      THINP_REPLICA_OPTIONS_VERSION))
		return -EINVAL;
	if ((o.flags & ~THINP_RECEIVE_RESUMABLE) || (o.token && o.token_size < THINP_STREAM_TOKEN_SIZE))
		return -EINVAL;
	rc.errbuf = o.errbuf;
	rc.errsize = o.errbuf_size;
	rc.resumable = o.flags & THINP_RECEIVE_RESUMABLE;
	rc.token = o.token;
	rc.token_size = o.token_size;
	rc.claim.path = o.origin;
	rc.claim.guid = o.origin_guid;
	if (rc.token)
		rc.token[0] = '\0';
	replica_fail(rc.errbuf, rc.errsize, 0, "%s", "");
	rc.entry = thinp_os_alloc(sizeof(*rc.entry));
	rc.base = thinp_os_alloc(sizeof(*rc.base));
	rc.origin_path = thinp_os_alloc(THINP_CATALOG_ORIGIN_MAX);
	r = rc.entry && rc.base && rc.origin_path ? thinp_stream_reader_new(&rc.rd, read, ctx)
						  : -ENOMEM;
	if (!r)
		r = receive(&rc, o.id, new_id);
	thinp_stream_reader_free(rc.rd);
	thinp_io_close(rc.origin);
	thinp_os_free(rc.origin_path);
	thinp_os_free(rc.entry);
	thinp_os_free(rc.base);
	return r;
}

/* Device @id's current entry into @e, if it is a partial receive: 0,
 * -ENODATA (no device, or no current entry), -EINVAL (not partial). */
static int partial_entry(thinp_pool *pool, thinp_catalog *cat, uint64_t id,
			 thinp_catalog_entry *e)
{
	int r = replica_current_entry(cat, pool, id, e);

	if (!r && !(e->flags & THINP_CATALOG_PARTIAL))
		r = -EINVAL;
	return r;
}

int thinp_receive_abort(thinp_pool *pool, thinp_catalog *catalog, uint64_t id)
{
	thinp_catalog_entry *e;
	int r;

	if (!pool || !catalog)
		return -EINVAL;
	if (!(e = thinp_os_alloc(sizeof(*e))))
		return -ENOMEM;
	r = partial_entry(pool, catalog, id, e);
	thinp_os_free(e);
	return r ? r : replica_drop_device(catalog, pool, id);
}

int thinp_receive_token(thinp_pool *pool, thinp_catalog *catalog, uint64_t id, char *token,
			size_t size)
{
	thinp_stream_header hdr = THINP_STREAM_HEADER_INIT;
	thinp_stream_position pos = { 0, 0, 0, 0, 0 };
	thinp_catalog_entry *e;
	int r;

	if (!pool || !catalog || !token || size < THINP_STREAM_TOKEN_SIZE)
		return -EINVAL;
	if (!(e = thinp_os_alloc(sizeof(*e))))
		return -ENOMEM;
	r = partial_entry(pool, catalog, id, e);
	/* An entry a version 1 library wrote keeps no records count. */
	if (!r && !e->recv_records)
		r = -ENODATA;
	if (!r) {
		memcpy(hdr.stream_id, e->recv_stream, 16);
		memcpy(hdr.target_guid, e->guid, 16);
		memcpy(hdr.base_guid, e->parent_guid, 16);
		pos.next_block = e->recv_next_block;
		pos.records = e->recv_records;
		pos.bytes = e->recv_bytes;
		pos.digest = e->recv_digest;
		r = thinp_stream_token_format(token, size, &hdr, &pos);
	}
	thinp_os_free(e);
	return r;
}
