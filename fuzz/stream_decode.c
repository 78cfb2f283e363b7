/*
 * Fuzz target stream_decode: arbitrary bytes through the stream reader.
 *
 * The input is the stream, read in pieces of 1 to 64 bytes (the piece sizes
 * come from the input's own bytes, so short reads are exercised without a
 * second input). What must hold:
 *  - the reader ends with END or with -EILSEQ, -EPROTO or -EOPNOTSUPP, and a
 *    message; never another error, never a crash, and its memory stays within
 *    a small multiple of the input (the reader grows its buffer only as bytes
 *    arrive; AFL++'s memory limit catches a regression);
 *  - every delivered record obeys the format: a known type, increasing record
 *    numbers, runs ascending and inside the device, DATA within its limit;
 *  - what the reader accepts the writer produces identically: the records
 *    delivered are fed to a writer with the same header as they come, and up
 *    to the first skipped record (or the end) the writer's bytes are the
 *    input's.
 * Every input is decoded twice: as it is, and "resealed" — with the header's
 * and every record's CRC recomputed — so that mutations reach the checks
 * behind the CRCs (order, ranges, lengths, counts, digests) instead of
 * dying at the first CRC.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libthinp/stream.h>
#include "fuzz.h"
#include "block/bm.h"
#include "stream/format.h"

struct input {
	const uint8_t *data;
	size_t size, at;
};

static int input_read(void *buf, size_t len, size_t *got, void *ctx)
{
	struct input *in = ctx;
	size_t n = in->size - in->at;
	size_t piece = in->at < in->size ? 1 + in->data[in->at] % 64 : 1;

	n = n < len ? n : len;
	n = n < piece ? n : piece;
	memcpy(buf, in->data + in->at, n);
	in->at += n;
	*got = n;
	return 0;
}

/* The writer's output, compared with the input as it is produced. */
struct mirror {
	const uint8_t *data;
	size_t size, at;
};

static int mirror_write(const void *buf, size_t len, void *ctx)
{
	struct mirror *m = ctx;

	FUZZ_CHECK(len <= m->size - m->at);
	FUZZ_CHECK(memcmp(m->data + m->at, buf, len) == 0);
	m->at += len;
	return 0;
}

static void replay(thinp_stream_writer *w, const thinp_stream_record *rec)
{
	switch (rec->type) {
	case THINP_STREAM_DATA:
		FUZZ_CHECK(thinp_stream_writer_data(w, rec->first_block, rec->nr_blocks, rec->data) == 0);
		break;
	case THINP_STREAM_UNMAP:
		FUZZ_CHECK(thinp_stream_writer_unmap(w, rec->first_block, rec->nr_blocks) == 0);
		break;
	case THINP_STREAM_ZERO:
		FUZZ_CHECK(thinp_stream_writer_zero(w, rec->first_block, rec->nr_blocks) == 0);
		break;
	case THINP_STREAM_CHECKPOINT:
		FUZZ_CHECK(thinp_stream_writer_checkpoint(w, rec->pos.next_block) == 0);
		break;
	default:
		FUZZ_CHECK(thinp_stream_writer_end(w) == 0);
	}
}

/* Recompute the header's CRC and each whole record's, in place. */
static void reseal(uint8_t *p, size_t size)
{
	size_t hsize, at;
	uint32_t seed;

	if (size < sizeof(struct stream_header_wire))
		return;
	hsize = load_le32(p + offsetof(struct stream_header_wire, header_size));
	if (hsize < sizeof(struct stream_header_wire) || hsize > size)
		return;
	store_le32(p + hsize - STREAM_CRC_LEN, stream_crc(p, hsize - STREAM_CRC_LEN));
	seed = stream_seed(p + offsetof(struct stream_header_wire, stream_id));
	for (at = hsize; size - at >= sizeof(struct stream_frame) + STREAM_CRC_LEN;) {
		size_t len = load_le32(p + at + 4), rec = sizeof(struct stream_frame) + len;

		if (len > size - at - sizeof(struct stream_frame) - STREAM_CRC_LEN)
			return;
		store_le32(p + at + rec, crc32c_raw(seed, p + at, rec) ^ 0xFFFFFFFFu);
		at += rec + STREAM_CRC_LEN;
	}
}

static void decode(const uint8_t *data, size_t size)
{
	struct input in = { data, size, 0 };
	struct mirror m = { data, size, 0 };
	const thinp_stream_header *h;
	const thinp_stream_record *rec;
	thinp_stream_reader *r;
	thinp_stream_writer *w = NULL;
	uint64_t seq = 0, next_block = 0, nr_blocks = 0;
	int ret;

	FUZZ_CHECK(thinp_stream_reader_new(&r, input_read, &in) == 0);
	ret = thinp_stream_reader_header(r, &h);
	if (ret == 0) {
		nr_blocks = stream_nr_blocks(h);
		next_block = h->incompat & THINP_STREAM_INCOMPAT_RESUMING ? h->resume.next_block : 0;
		seq = h->incompat & THINP_STREAM_INCOMPAT_RESUMING ? h->resume.records : 0;
		/* A longer header than version 1's, or may-ignore bits, are
		 * read but not written. */
		if (load_le32(data + 12) == sizeof(struct stream_header_wire) && !h->compat)
			FUZZ_CHECK(thinp_stream_writer_begin(&w, h, THINP_STREAM_CHECKPOINT_NEVER,
							     mirror_write, &m) == 0);
	}
	while (ret == 0 && (ret = thinp_stream_reader_next(r, &rec)) == 0) {
		FUZZ_CHECK(rec->type >= THINP_STREAM_DATA && rec->type <= THINP_STREAM_END);
		FUZZ_CHECK(rec->seq >= seq && rec->offset < size);
		if (rec->seq != seq) {
			/* An optional record was skipped: the writer cannot follow. */
			thinp_stream_writer_free(w);
			w = NULL;
		}
		seq = rec->seq + 1;
		if (rec->type <= THINP_STREAM_ZERO) {
			FUZZ_CHECK(rec->nr_blocks > 0 && rec->first_block >= next_block);
			FUZZ_CHECK(rec->first_block + rec->nr_blocks <= nr_blocks);
			FUZZ_CHECK(rec->type != THINP_STREAM_DATA ||
				   rec->nr_blocks <= stream_max_data_blocks(h->block_size));
			next_block = rec->first_block + rec->nr_blocks;
		} else if (rec->type == THINP_STREAM_CHECKPOINT) {
			FUZZ_CHECK(rec->pos.next_block >= next_block && rec->pos.records == seq);
			next_block = rec->pos.next_block;
		}
		if (w)
			replay(w, rec);
		if (rec->type == THINP_STREAM_END) {
			FUZZ_CHECK(thinp_stream_reader_next(r, &rec) == -ENODATA);
			FUZZ_CHECK(!w || m.at == in.at);
			break;
		}
	}
	FUZZ_CHECK(ret == 0 || ret == -EILSEQ || ret == -EPROTO || ret == -EOPNOTSUPP);
	FUZZ_CHECK(ret == 0 || thinp_stream_reader_errmsg(r)[0] != '\0');
	thinp_stream_writer_free(w);
	thinp_stream_reader_free(r);
}

int fuzz_one(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);

	FUZZ_CHECK(copy);
	decode(data, size);
	memcpy(copy, data, size);
	reseal(copy, size);
	decode(copy, size);
	free(copy);
	return 0;
}
