/*
 * thinp_send: a device as a stream. A full stream walks the device's
 * mappings; an incremental one the changes-only delta against the base.
 * Either way data is read through a read-only thin handle, a run at a time.
 */
#include "os/os.h"

#include <libthinp/delta.h>
#include "util/abi_struct.h"
#include "util/zeroes.h"
#include "replica.h"

struct sender {
	thinp_pool *pool;
	thinp_thin *thin;
	thinp_stream_writer *w;
	uint32_t block_size;
	uint64_t nr_blocks;     /* blocks of the virtual size */
	uint64_t chunk_blocks;  /* blocks per read */
	uint64_t start;         /* first block to send (a resumed stream) */
	bool zero_runs;         /* an external origin: all-zero blocks go as ZERO */
	void *buf;
	char *errbuf;
	size_t errsize;
};

/*
 * The @n blocks from @first read into s->buf. With an external origin, the
 * all-zero ones go as ZERO records: the pool does not tell a block
 * provisioned by a write-zeroes from one written with zeroes, but either
 * way the block reads as zeroes and must hide the origin, which is what ZERO
 * says, without the bytes. Without an origin, DATA as ever.
 */
static int write_chunk(struct sender *s, uint64_t first, uint64_t n)
{
	const unsigned char *p = s->buf;
	uint32_t bs = s->block_size;
	int r = 0;

	if (!s->zero_runs)
		return thinp_stream_writer_data(s->w, first, n, p);
	for (uint64_t i = 0, j; !r && i < n; i = j) {
		bool zero = thinp_is_zeroes(p + i * bs, bs);

		for (j = i + 1; j < n && thinp_is_zeroes(p + j * bs, bs) == zero; j++)
			;
		r = zero ? thinp_stream_writer_zero(s->w, first + i, j - i)
			 : thinp_stream_writer_data(s->w, first + i, j - i, p + i * bs);
	}
	return r;
}

/* Blocks [first, first + nr) of the device as DATA, read a chunk at a time. */
static int send_data(struct sender *s, uint64_t first, uint64_t nr)
{
	while (nr) {
		uint64_t n = nr < s->chunk_blocks ? nr : s->chunk_blocks;
		int r = thinp_thin_read(s->thin, s->buf, n * s->block_size, first * s->block_size);

		if (r)
			return replica_fail(s->errbuf, s->errsize, r, "reading block %" PRIu64 ": %s",
					    first, thinp_strerror(r));
		r = write_chunk(s, first, n);
		if (r)
			return replica_fail(s->errbuf, s->errsize, r, "writing the stream: %s",
					    thinp_stream_writer_errmsg(s->w));
		first += n;
		nr -= n;
	}
	return 0;
}

/* Every mapped block, coalesced into runs of consecutive virtual blocks. */
static int send_full(struct sender *s, uint64_t dev)
{
	uint64_t begin = 0, len = 0, vb;
	thinp_mapping m = THINP_MAPPING_INIT;
	int r;

	for (uint64_t next = s->start; next < s->nr_blocks; next = vb + 1) {
		r = thinp_pool_thin_next_map(s->pool, dev, next, &vb, &m);
		if (r == -ENODATA || (!r && vb >= s->nr_blocks))
			break;
		if (r)
			return replica_fail(s->errbuf, s->errsize, r, "mappings of device %" PRIu64
					    ": %s", dev, thinp_strerror(r));
		if (len && vb == begin + len) {
			len++;
			continue;
		}
		if (len && (r = send_data(s, begin, len)))
			return r;
		begin = vb;
		len = 1;
	}
	return len ? send_data(s, begin, len) : 0;
}

static int delta_run(const thinp_delta_run *run, void *ctx)
{
	struct sender *s = ctx;
	int r;

	if (run->kind != THINP_DELTA_LEFT_ONLY)
		return send_data(s, run->virt_begin, run->length);
	r = thinp_stream_writer_unmap(s->w, run->virt_begin, run->length);
	if (r)
		replica_fail(s->errbuf, s->errsize, r, "writing the stream: %s",
			     thinp_stream_writer_errmsg(s->w));
	return r;
}

static int send_incremental(struct sender *s, uint64_t base, uint64_t dev)
{
	thinp_delta_options o = THINP_DELTA_OPTIONS_INIT;
	char msg[256];
	int r;

	o.flags = THINP_DELTA_CHANGES_ONLY;
	o.begin = s->start;
	o.end = s->nr_blocks;
	r = thinp_pool_delta(s->pool, base, dev, &o, delta_run, s);
	if (r && s->errbuf && !*s->errbuf)
		replica_fail(s->errbuf, s->errsize, r, "delta %" PRIu64 " -> %" PRIu64 ": %s", base,
			     dev, thinp_pool_errmsg(s->pool, msg, sizeof(msg)) ? msg
										: thinp_strerror(r));
	return r;
}

/* Device @id's guid into @guid, and its entry into @e. */
static int device_guid(struct sender *s, thinp_catalog *cat, uint64_t id, thinp_catalog_entry *e,
		       uint8_t guid[16])
{
	int r = replica_identify(s->pool, cat, id, e);

	/* An origin attached without an identity (catalog entry version 2)
	 * gives a receiver nothing to check its own copy against. */
	if (!r && e->origin[0] && replica_guid_is_zero(e->origin_guid))
		r = replica_fail(s->errbuf, s->errsize, -EOPNOTSUPP, "device %" PRIu64
				 ": its external origin %s has no origin guid (attached by an "
				 "older libthinp): it cannot be sent", id, e->origin);
	else if (r)
		replica_fail(s->errbuf, s->errsize, r, "device %" PRIu64 ": %s", id,
			     thinp_strerror(r));
	else
		memcpy(guid, e->guid, 16);
	return r;
}

/* With an external origin, unmapped blocks read as the origin: the header
 * names it by guid and size. A base must read through the same one. */
static int set_origin(struct sender *s, const thinp_catalog_entry *target,
		      const uint8_t base_origin[16], thinp_stream_header *hdr)
{
	if (base_origin && memcmp(base_origin, target->origin_guid, 16))
		return replica_fail(s->errbuf, s->errsize, -EINVAL, "device %" PRIu64
				    " and its base have different external origins", target->id);
	if (!target->origin[0])
		return 0;
	hdr->unmapped = THINP_STREAM_UNMAPPED_ORIGIN;
	memcpy(hdr->origin_guid, target->origin_guid, 16);
	hdr->origin_size = target->origin_size;
	return 0;
}

/* The stream's header for @dev, incremental from @base unless THINP_SEND_FULL. */
static int make_header(struct sender *s, thinp_catalog *cat, uint64_t dev, uint64_t base,
		       thinp_stream_header *hdr)
{
	thinp_catalog_entry *e = thinp_os_alloc(sizeof(*e));
	thinp_thin_status st = THINP_THIN_STATUS_INIT;
	uint8_t base_origin[16];
	int r = e ? 0 : -ENOMEM;

	if (!r && base != THINP_SEND_FULL && !(r = device_guid(s, cat, base, e, hdr->base_guid)))
		memcpy(base_origin, e->origin_guid, 16);
	if (!r)
		r = device_guid(s, cat, dev, e, hdr->target_guid);
	if (!r)
		r = set_origin(s, e, base != THINP_SEND_FULL ? base_origin : NULL, hdr);
	if (!r && !(r = thinp_pool_get_thin_status(s->pool, dev, &st))) {
		hdr->block_size = s->block_size;
		/* A stream's size is in sectors. */
		hdr->virtual_size = e->size ? (e->size + 511) / 512 * 512
				  : (st.highest_mapped ? st.highest_mapped : 1) * s->block_size;
	}
	thinp_os_free(e);
	return r;
}

/* A resumed stream: the token's stream id and resume point, if it names
 * the devices @hdr was made for. */
static int apply_token(struct sender *s, const char *token, thinp_stream_header *hdr)
{
	thinp_stream_header tok = THINP_STREAM_HEADER_INIT;
	int r = thinp_stream_token_parse(&tok, token);

	if (r)
		return replica_fail(s->errbuf, s->errsize, r, "bad resume token");
	if (memcmp(tok.target_guid, hdr->target_guid, 16) ||
	    memcmp(tok.base_guid, hdr->base_guid, 16))
		return replica_fail(s->errbuf, s->errsize, -EINVAL,
				    "the resume token is for other devices");
	if (tok.resume.next_block > s->nr_blocks)
		return replica_fail(s->errbuf, s->errsize, -EINVAL,
				    "the resume token is past the device's end");
	memcpy(hdr->stream_id, tok.stream_id, 16);
	hdr->resume = tok.resume;
	hdr->incompat |= THINP_STREAM_INCOMPAT_RESUMING;
	s->start = tok.resume.next_block;
	return 0;
}

int thinp_send(thinp_pool *pool, thinp_catalog *catalog, uint64_t dev, uint64_t base,
	       thinp_stream_write_fn write, void *ctx, const thinp_send_options *opts)
{
	thinp_send_options o = THINP_SEND_OPTIONS_INIT;
	thinp_stream_header hdr = THINP_STREAM_HEADER_INIT;
	struct sender s = { .pool = pool };
	int r;

	if (!pool || !catalog || !write || dev == base)
		return -EINVAL;
	/* Every field of the 1.0 struct is required: later versions append. */
	if (opts && thinp_abi_copy_in(&o, sizeof(o), opts, sizeof(o), THINP_REPLICA_OPTIONS_VERSION))
		return -EINVAL;
	s.errbuf = o.errbuf;
	s.errsize = o.errbuf_size;
	replica_fail(s.errbuf, s.errsize, 0, "%s", "");
	if (!(s.block_size = replica_block_size(pool)))
		return replica_fail(s.errbuf, s.errsize, -EIO, "cannot read the pool's status");
	if ((r = make_header(&s, catalog, dev, base, &hdr)))
		return r;
	s.nr_blocks = (hdr.virtual_size + s.block_size - 1) / s.block_size;
	s.zero_runs = hdr.unmapped == THINP_STREAM_UNMAPPED_ORIGIN;
	if (o.resume_token && (r = apply_token(&s, o.resume_token, &hdr)))
		return r;
	s.chunk_blocks = THINP_STREAM_DATA_RECORD_BYTES / s.block_size;
	if (!s.chunk_blocks)
		s.chunk_blocks = 1;
	s.buf = thinp_os_alloc(s.chunk_blocks * s.block_size);
	if (!s.buf)
		return -ENOMEM;
	r = replica_open_thin(pool, dev, hdr.virtual_size, true, NULL, &s.thin);
	if (!r && (r = thinp_stream_writer_begin(&s.w, &hdr, o.checkpoint_bytes, write, ctx)))
		replica_fail(s.errbuf, s.errsize, r, "starting the stream: %s", thinp_strerror(r));
	if (!r)
		r = base == THINP_SEND_FULL ? send_full(&s, dev) : send_incremental(&s, base, dev);
	if (!r && (r = thinp_stream_writer_end(s.w)))
		replica_fail(s.errbuf, s.errsize, r, "writing the stream: %s",
			     thinp_stream_writer_errmsg(s.w));
	thinp_stream_writer_free(s.w);
	thinp_thin_close(s.thin);
	thinp_os_free(s.buf);
	return r;
}
