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
	thinp_stream_position pos;
	char *errbuf;
	size_t errsize;
	char *token;
	size_t token_size;
};

#define FAIL(rc, e, ...) replica_fail((rc)->errbuf, (rc)->errsize, (e), __VA_ARGS__)

static int stream_fail(struct receiver *rc, int e)
{
	const char *m = thinp_stream_reader_errmsg(rc->rd);

	return FAIL(rc, e, "stream: %s", *m ? m : thinp_strerror(e));
}

/* What this pool can take: its block size, zeroes for unmapped blocks. */
static int check_header(struct receiver *rc)
{
	uint32_t bs = replica_block_size(rc->pool);

	if (rc->hdr->block_size != bs)
		return FAIL(rc, -EINVAL, "the stream's block size %" PRIu32
			    " is not the pool's data block size %" PRIu32, rc->hdr->block_size, bs);
	if (rc->hdr->unmapped != THINP_STREAM_UNMAPPED_ZERO)
		return FAIL(rc, -EOPNOTSUPP, "streams of devices with an external origin are not "
			    "supported");
	return 0;
}

/* The base device, unmodified since it was received: its anchor's delta
 * against it is empty. Sets rc->base; *anchor is the anchor's id. */
static int find_base(struct receiver *rc, uint64_t *anchor)
{
	thinp_catalog_entry *a = thinp_os_alloc(sizeof(*a));
	thinp_delta_options o = THINP_DELTA_OPTIONS_INIT;
	thinp_delta_run run;
	thinp_delta *d = NULL;
	size_t nr = 0;
	int r;

	if (!a)
		return -ENOMEM;
	if (replica_find_guid(rc->cat, rc->hdr->base_guid, false, rc->base)) {
		thinp_os_free(a);
		return FAIL(rc, -ENODATA, "no device here has the stream's base guid: the stream "
			    "applies to another device");
	}
	r = replica_find_guid(rc->cat, rc->hdr->base_guid, true, a);
	*anchor = a->id;
	thinp_os_free(a);
	if (r)
		return FAIL(rc, -ESTALE, "base device %" PRIu64 " was not received here: cannot "
			    "tell whether it was modified", rc->base->id);
	o.flags = THINP_DELTA_CHANGES_ONLY;
	r = thinp_pool_delta_open(&d, rc->pool, *anchor, rc->base->id, &o);
	if (!r)
		r = thinp_delta_next(d, &run, 1, &nr);
	thinp_delta_close(d);
	if (r)
		return FAIL(rc, r, "comparing base device %" PRIu64 " with its anchor: %s",
			    rc->base->id, thinp_strerror(r));
	if (nr)
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
	r = replica_open_thin(rc->pool, rc->id, rc->hdr->virtual_size, false, &rc->thin);
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
	r = replica_open_thin(rc->pool, rc->id, st.highest_mapped * bs, false, &t);
	if (!r) {
		r = thinp_thin_discard(t, (st.highest_mapped - end) * bs, end * bs);
		thinp_thin_close(t);
	}
	return r;
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
	/* Hidden while PARTIAL (replica_find_guid skips it); kept for its token. */
	memcpy(rc->entry->guid, rc->hdr->target_guid, 16);
	memcpy(rc->entry->parent_guid, rc->hdr->base_guid, 16);
	r = thinp_catalog_attach(rc->cat, rc->pool, rc->entry);
	if (!r)
		r = replica_commit_catalog(rc->cat, rc->pool);
	if (!r)
		r = replica_open_thin(rc->pool, rc->id, rc->hdr->virtual_size, false, &rc->thin);
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

/* Step 3: durable data, the anchor, then one catalog commit. */
static int publish(struct receiver *rc)
{
	thinp_catalog_entry *a = thinp_os_alloc(sizeof(*a));
	int64_t anchor;
	int r = a ? thinp_thin_flush(rc->thin) : -ENOMEM;

	thinp_thin_close(rc->thin);
	rc->thin = NULL;
	anchor = r ? r : replica_free_id(rc->pool);
	if (anchor < 0)
		r = (int)anchor;
	if (!r)
		r = thinp_pool_create_snap(rc->pool, (uint64_t)anchor, rc->id);
	if (!r) {
		*a = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
		a->id = (uint64_t)anchor;
		a->flags = THINP_CATALOG_ANCHOR | THINP_CATALOG_READ_ONLY;
		memcpy(a->parent_guid, rc->hdr->target_guid, 16);
		r = thinp_catalog_new_guid(a->guid);
	}
	if (!r)
		r = thinp_catalog_attach(rc->cat, rc->pool, a);
	if (!r) {
		rc->entry->flags = 0;
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

/* A replay: the target is here already. */
static bool replayed(struct receiver *rc, uint64_t *id)
{
	int r = replica_find_guid(rc->cat, rc->hdr->target_guid, false, rc->entry);

	*id = rc->entry->id;
	return r == 0;
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
	thinp_receive_options o = THINP_RECEIVE_OPTIONS_INIT;
	struct receiver rc = { .pool = pool, .cat = catalog };
	int r;

	if (!pool || !catalog || !read || !new_id)
		return -EINVAL;
	if (opts) {
		if (opts->struct_size < sizeof(o) || opts->version != THINP_REPLICA_OPTIONS_VERSION)
			return -EINVAL;
		o = *opts;
	}
	if ((o.flags & ~THINP_RECEIVE_RESUMABLE) || (o.token && o.token_size < THINP_STREAM_TOKEN_SIZE))
		return -EINVAL;
	rc.errbuf = o.errbuf;
	rc.errsize = o.errbuf_size;
	rc.resumable = o.flags & THINP_RECEIVE_RESUMABLE;
	rc.token = o.token;
	rc.token_size = o.token_size;
	if (rc.token)
		rc.token[0] = '\0';
	replica_fail(rc.errbuf, rc.errsize, 0, "%s", "");
	rc.entry = thinp_os_alloc(sizeof(*rc.entry));
	rc.base = thinp_os_alloc(sizeof(*rc.base));
	r = rc.entry && rc.base ? thinp_stream_reader_new(&rc.rd, read, ctx) : -ENOMEM;
	if (!r)
		r = receive(&rc, o.id, new_id);
	thinp_stream_reader_free(rc.rd);
	thinp_os_free(rc.entry);
	thinp_os_free(rc.base);
	return r;
}

/* Device @id's current entry into @e, if it is a partial receive: 0,
 * -ENODATA (no device, or no current entry), -EINVAL (not partial). */
static int partial_entry(thinp_pool *pool, thinp_catalog *cat, uint64_t id,
			 thinp_catalog_entry *e)
{
	thinp_thin_status st = THINP_THIN_STATUS_INIT;
	int r;

	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	r = thinp_catalog_get(cat, id, e);
	if (!r)
		r = thinp_pool_get_thin_status(pool, id, &st);
	/* A stale entry (its device deleted, the id reused) describes nothing. */
	if (!r && (e->birth_time != st.creation_time || e->birth_transaction != st.transaction_id))
		r = -ENODATA;
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
