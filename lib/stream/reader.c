/*
 * The stream reader: bytes in, checked records out.
 *
 * Order of checks for a record: the frame's length against the limit for the
 * stream's block size (before any allocation), then the whole record is read
 * and its CRC checked, and only then is anything in it believed: record
 * number, type, fields, run order and range, counts and digest. A record is
 * handed out only when all of them pass.
 *
 * Damage and truncation are told apart by when they show: the input ending
 * before the END record is truncation (-EPROTO), whatever the bytes were; a
 * record that is all there but wrong is damage (-EILSEQ). A length field
 * damaged upwards can make a damaged stream look truncated, but never makes
 * a truncated one look damaged. Either way the message names the record
 * number and the byte offset where it starts.
 *
 * Memory: one buffer, grown only as bytes arrive (at most doubling, from
 * 64 KiB), so a length field claiming the maximum costs nothing until the
 * bytes are actually supplied.
 */
#include "os/os.h"

#include "block/bm.h"
#include "stream/format.h"

#define MIN_GROWTH (64u << 10)

enum reader_phase { BEFORE_HEADER, IN_RECORDS, AFTER_END };

struct thinp_stream_reader {
	thinp_stream_read_fn read;
	void *ctx;
	enum reader_phase phase;
	int err;             /* sticky error, or 0 */
	uint64_t offset;     /* input bytes consumed */
	thinp_stream_header hdr;
	struct stream_state st;
	uint64_t max_payload;
	uint8_t *buf;        /* the current record's payload and CRC */
	size_t buf_cap;
	thinp_stream_record rec;
	char errmsg[256];
};

THINP_PRINTF(3, 4)
static int fail(thinp_stream_reader *r, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	thinp_os_vsnprintf(r->errmsg, sizeof(r->errmsg), fmt, ap);
	va_end(ap);
	r->err = err;
	return err;
}

static const char *type_name(uint32_t type)
{
	static const char *const names[] = { "?", "DATA", "UNMAP", "ZERO", "CHECKPOINT", "END" };

	return stream_type_known(type) ? names[type] : "unknown type";
}

/*
 * Read exactly len bytes into dst. Returns 0, the callback's error, or
 * -EPROTO when the input ends first (then *short_by says how many bytes were
 * missing; nothing is recorded in the reader: the caller says where).
 */
static int read_exact(thinp_stream_reader *r, void *dst, size_t len, size_t *short_by)
{
	uint8_t *p = dst;

	while (len) {
		size_t got = 0;
		int ret = r->read(p, len, &got, r->ctx);

		if (ret < 0)
			return fail(r, ret, "read callback failed at offset %llu: %s",
				    (unsigned long long)r->offset, thinp_strerror(ret));
		if (got > len)
			return fail(r, -EINVAL, "read callback returned %zu bytes for %zu",
				    got, len);
		if (got == 0) {
			*short_by = len;
			return -EPROTO;
		}
		p += got;
		len -= got;
		r->offset += got;
	}
	return 0;
}

/* Read len bytes into r->buf, growing it only as the bytes come in. */
static int read_grown(thinp_stream_reader *r, size_t len, size_t *short_by)
{
	size_t have = 0;

	while (have < len) {
		size_t want = THINP_MIN(len, THINP_MAX(2 * r->buf_cap, (size_t)MIN_GROWTH));
		int ret;

		if (want > r->buf_cap) {
			uint8_t *nb = thinp_os_realloc(r->buf, r->buf_cap, want);

			if (!nb)
				return fail(r, -ENOMEM, "no memory for a record of %zu bytes", len);
			r->buf = nb;
			r->buf_cap = want;
		}
		ret = read_exact(r, r->buf + have, want - have, short_by);
		if (ret == -EPROTO)
			*short_by += len - want;
		if (ret)
			return ret;
		have = want;
	}
	return 0;
}

static int header_fail(thinp_stream_reader *r, int err, const char *why)
{
	return fail(r, err, "header at offset 0: %s", why);
}

static int header_truncated(thinp_stream_reader *r, size_t short_by)
{
	return fail(r, -EPROTO, "truncated: the input ends at offset %llu, %zu bytes short "
		    "of the end of the header", (unsigned long long)r->offset, short_by);
}

static int read_header(thinp_stream_reader *r)
{
	/* magic, version and header size come first: they say how much to read */
	const size_t lead = offsetof(struct stream_header_wire, incompat);
	struct stream_header_wire w;
	uint32_t version, size, crc;
	size_t short_by;
	const char *why;
	int ret;

	ret = read_exact(r, &w, lead, &short_by);
	if (ret)
		return ret == -EPROTO ? header_truncated(r, short_by) : ret;
	if (memcmp(w.magic, STREAM_MAGIC, STREAM_MAGIC_LEN))
		return header_fail(r, -EILSEQ, "bad magic: not a thinp stream");
	version = le32_to_cpu(w.version);
	size = le32_to_cpu(w.header_size);
	if (size < sizeof(w) || size > STREAM_MAX_HEADER_SIZE)
		return header_fail(r, version != THINP_STREAM_VERSION ? -EOPNOTSUPP : -EILSEQ,
				   version != THINP_STREAM_VERSION ? "unknown format version"
								   : "bad header size");
	if (!(r->buf = thinp_os_alloc(size)))
		return fail(r, -ENOMEM, "no memory for the header");
	r->buf_cap = size;
	memcpy(r->buf, &w, lead);
	ret = read_exact(r, r->buf + lead, size - lead, &short_by);
	if (ret)
		return ret == -EPROTO ? header_truncated(r, short_by) : ret;
	crc = load_le32(r->buf + size - STREAM_CRC_LEN);
	if (stream_crc(r->buf, size - STREAM_CRC_LEN) != crc)
		return header_fail(r, -EILSEQ, "CRC mismatch");
	if (version != THINP_STREAM_VERSION)
		return header_fail(r, -EOPNOTSUPP, "unknown format version");
	/* Fields a later version appended before the CRC are skipped. */
	memcpy(&w, r->buf, offsetof(struct stream_header_wire, crc));
	stream_header_decode(&r->hdr, &w);
	ret = stream_header_check(&r->hdr, &why);
	if (ret)
		return header_fail(r, ret == -EOPNOTSUPP ? ret : -EILSEQ, why);
	stream_state_init(&r->st, &r->hdr, size);
	r->max_payload = stream_max_payload(r->hdr.block_size);
	r->phase = IN_RECORDS;
	return 0;
}

int thinp_stream_reader_header(thinp_stream_reader *r, const thinp_stream_header **out)
{
	int ret;

	if (!r || !out)
		return -EINVAL;
	if (r->err)
		return r->err;
	if (r->phase == BEFORE_HEADER && (ret = read_header(r)) < 0)
		return ret;
	*out = &r->hdr;
	return 0;
}

/* The checks of a record whose CRC matched; fills r->rec. -EILSEQ with *why,
 * or -EOPNOTSUPP for an unknown required type. */
static int check_record(thinp_stream_reader *r, uint32_t type, const uint8_t *p,
			size_t len, const char **why)
{
	thinp_stream_record *rec = &r->rec;
	const struct stream_state *st = &r->st;

	switch (type) {
	case THINP_STREAM_DATA:
	case THINP_STREAM_UNMAP:
	case THINP_STREAM_ZERO: {
		struct stream_run run;

		if (len < sizeof(run))
			goto bad_length;
		memcpy(&run, p, sizeof(run));
		rec->first_block = le64_to_cpu(run.first_block);
		rec->nr_blocks = le64_to_cpu(run.nr_blocks);
		if (type == THINP_STREAM_DATA) {
			if (rec->nr_blocks > st->max_data_blocks) {
				*why = "DATA record longer than the format allows";
				return -EILSEQ;
			}
			if (len != sizeof(run) + rec->nr_blocks * r->hdr.block_size)
				goto bad_length;
			rec->data = p + sizeof(run);
		} else if (len != sizeof(run)) {
			goto bad_length;
		}
		return stream_state_check_run(st, rec->first_block, rec->nr_blocks, why) ? -EILSEQ : 0;
	}
	case THINP_STREAM_CHECKPOINT: {
		struct stream_checkpoint c;

		if (len != sizeof(c))
			goto bad_length;
		memcpy(&c, p, sizeof(c));
		if (le64_to_cpu(c.bytes) != st->pos.bytes || le32_to_cpu(c.digest) != st->pos.digest) {
			*why = "byte count or running digest does not match the records before it";
			return -EILSEQ;
		}
		if (le32_to_cpu(c.reserved)) {
			*why = "reserved field not zero";
			return -EILSEQ;
		}
		rec->pos.next_block = le64_to_cpu(c.next_block);
		return stream_state_check_checkpoint(st, rec->pos.next_block, why) ? -EILSEQ : 0;
	}
	case THINP_STREAM_END: {
		struct stream_end e;

		if (len != sizeof(e))
			goto bad_length;
		memcpy(&e, p, sizeof(e));
		if (le64_to_cpu(e.records) != st->pos.records || le64_to_cpu(e.bytes) != st->pos.bytes ||
		    le32_to_cpu(e.digest) != st->pos.digest) {
			*why = "record count, byte count or digest does not match the stream";
			return -EILSEQ;
		}
		if (le32_to_cpu(e.reserved)) {
			*why = "reserved field not zero";
			return -EILSEQ;
		}
		rec->pos = st->pos;
		return 0;
	}
	default:
		*why = "unknown required record type";
		return -EOPNOTSUPP;
	}
bad_length:
	*why = "payload length wrong for the record type";
	return -EILSEQ;
}

THINP_PRINTF(4, 5)
static int record_fail(thinp_stream_reader *r, int err, uint32_t type, const char *fmt, ...)
{
	char why[160];
	va_list ap;

	va_start(ap, fmt);
	thinp_os_vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return fail(r, err, "record %llu (%s) at offset %llu: %s",
		    (unsigned long long)r->rec.seq, type_name(type),
		    (unsigned long long)r->rec.offset, why);
}

/* Read one record, whatever its type, and check its frame and CRC; *len
 * receives its payload length (the payload is in r->buf, its CRC after it). */
static int read_record(thinp_stream_reader *r, size_t *len)
{
	struct stream_frame frame, *f = &frame;
	size_t short_by;
	uint32_t type, crc;
	int ret;

	memset(&r->rec, 0, sizeof(r->rec));
	r->rec.offset = r->offset;
	r->rec.seq = r->st.pos.records;
	ret = read_exact(r, f, sizeof(*f), &short_by);
	if (ret == -EPROTO && short_by == sizeof(*f))
		return fail(r, -EPROTO, "truncated: the input ends at offset %llu, after %llu "
			    "records and before the END record", (unsigned long long)r->offset,
			    (unsigned long long)r->rec.seq);
	if (ret == -EPROTO)
		goto truncated;
	if (ret)
		return ret;
	type = le32_to_cpu(f->type);
	*len = le32_to_cpu(f->payload_len);
	if (*len > r->max_payload)
		return record_fail(r, -EILSEQ, type, "payload length %zu over the limit %llu",
				   *len, (unsigned long long)r->max_payload);
	ret = read_grown(r, *len + STREAM_CRC_LEN, &short_by);
	if (ret == -EPROTO)
		goto truncated;
	if (ret)
		return ret;
	crc = crc32c_raw(crc32c_raw(r->st.seed, f, sizeof(*f)), r->buf, *len) ^ 0xFFFFFFFFu;
	if (crc != load_le32(r->buf + *len))
		return record_fail(r, -EILSEQ, type, "CRC mismatch");
	if (le64_to_cpu(f->seq) != r->rec.seq)
		return record_fail(r, -EILSEQ, type, "record number %llu where %llu was due "
				   "(a record was lost, repeated or moved)",
				   (unsigned long long)le64_to_cpu(f->seq),
				   (unsigned long long)r->rec.seq);
	r->rec.type = type;
	return 0;
truncated:
	return fail(r, -EPROTO, "truncated: the input ends at offset %llu inside record %llu "
		    "(starting at offset %llu), %zu bytes short", (unsigned long long)r->offset,
		    (unsigned long long)r->rec.seq, (unsigned long long)r->rec.offset, short_by);
}

int thinp_stream_reader_next(thinp_stream_reader *r, const thinp_stream_record **out)
{
	const thinp_stream_header *h;
	int ret;

	if (!r || !out)
		return -EINVAL;
	if ((ret = thinp_stream_reader_header(r, &h)) < 0)
		return ret;
	if (r->phase == AFTER_END)
		return -ENODATA;
	for (;;) {
		uint64_t next_block;
		const char *why;
		uint32_t type;
		size_t len = 0;

		if ((ret = read_record(r, &len)) < 0)
			return ret;
		type = r->rec.type;
		if (!stream_type_known(type) && (type & THINP_STREAM_OPTIONAL)) {
			/* Skipped, but counted: it is part of the digest. */
			stream_state_advance(&r->st, r->offset - r->rec.offset,
					     load_le32(r->buf + len), r->st.pos.next_block);
			continue;
		}
		ret = check_record(r, type, r->buf, len, &why);
		if (ret)
			return record_fail(r, ret, type, "%s", why);
		next_block = type == THINP_STREAM_CHECKPOINT ? r->rec.pos.next_block :
			     type == THINP_STREAM_END ? r->st.pos.next_block :
			     r->rec.first_block + r->rec.nr_blocks;
		stream_state_advance(&r->st, r->offset - r->rec.offset, load_le32(r->buf + len),
				     next_block);
		if (type == THINP_STREAM_CHECKPOINT)
			r->rec.pos = r->st.pos;
		if (type == THINP_STREAM_END)
			r->phase = AFTER_END;
		*out = &r->rec;
		return 0;
	}
}

int thinp_stream_reader_run(thinp_stream_reader *r,
			    int (*fn)(const thinp_stream_record *rec, void *ctx), void *ctx)
{
	const thinp_stream_record *rec;
	int ret;

	if (!r || !fn)
		return -EINVAL;
	do {
		if ((ret = thinp_stream_reader_next(r, &rec)) < 0)
			return ret;
		if ((ret = fn(rec, ctx)) != 0)
			return ret;
	} while (rec->type != THINP_STREAM_END);
	return 0;
}

int thinp_stream_reader_new(thinp_stream_reader **out, thinp_stream_read_fn read, void *ctx)
{
	thinp_stream_reader *r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!read)
		return -EINVAL;
	r = thinp_os_zalloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->read = read;
	r->ctx = ctx;
	*out = r;
	return 0;
}

const char *thinp_stream_reader_errmsg(const thinp_stream_reader *r)
{
	return r ? r->errmsg : "";
}

void thinp_stream_reader_free(thinp_stream_reader *r)
{
	if (!r)
		return;
	thinp_os_free(r->buf);
	thinp_os_free(r);
}
