/* Helpers of the stream tests (see stream_test.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stream/stream_test.h"
#include "util/compiler.h"

int sink_write(const void *buf, size_t len, void *ctx)
{
	struct sink *s = ctx;

	if (s->fail_after == 0)
		return -EIO;
	if (s->fail_after > 0)
		s->fail_after--;
	if (s->len + len > s->cap) {
		s->cap = (s->len + len) * 2;
		s->buf = realloc(s->buf, s->cap);
		assert_non_null(s->buf);
	}
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	return 0;
}

void sink_free(struct sink *s)
{
	free(s->buf);
	memset(s, 0, sizeof(*s));
}

int source_read(void *buf, size_t len, size_t *got, void *ctx)
{
	struct source *s = ctx;
	size_t n = s->len - s->at;

	if (n > len)
		n = len;
	if (s->rng && n > 1)
		n = 1 + test_rng_below(s->rng, n);
	memcpy(buf, s->buf + s->at, n);
	s->at += n;
	*got = n;
	return 0;
}

static void keep(struct decoded *d, const thinp_stream_record *rec)
{
	struct rec_copy *c;
	size_t len = rec->type == THINP_STREAM_DATA ? rec->nr_blocks * d->hdr.block_size : 0;

	d->recs = realloc(d->recs, (d->n + 1) * sizeof(*d->recs));
	assert_non_null(d->recs);
	c = &d->recs[d->n++];
	c->rec = *rec;
	c->data = NULL;
	if (len) {
		c->data = malloc(len);
		assert_non_null(c->data);
		memcpy(c->data, rec->data, len);
	}
	c->rec.data = c->data;
}

void decode_all(const uint8_t *buf, size_t len, struct test_rng *rng, struct decoded *out)
{
	struct source src = { buf, len, 0, rng };
	const thinp_stream_header *h;
	const thinp_stream_record *rec;
	thinp_stream_reader *r;

	memset(out, 0, sizeof(*out));
	assert_int_equal(thinp_stream_reader_new(&r, source_read, &src), 0);
	out->err = thinp_stream_reader_header(r, &h);
	if (out->err == 0) {
		out->hdr = *h;
		out->have_hdr = true;
		while ((out->err = thinp_stream_reader_next(r, &rec)) == 0) {
			keep(out, rec);
			if (rec->type == THINP_STREAM_END)
				break;
		}
	}
	if (out->err) {
		/* Sticky: asking again gives the same error. */
		assert_int_equal(thinp_stream_reader_next(r, &rec), out->err);
		assert_true(thinp_stream_reader_errmsg(r)[0] != '\0');
	} else {
		assert_int_equal(thinp_stream_reader_next(r, &rec), -ENODATA);
		assert_int_equal(src.at, len); /* nothing past END was read */
	}
	strncpy(out->msg, thinp_stream_reader_errmsg(r), sizeof(out->msg) - 1);
	thinp_stream_reader_free(r);
}

void decoded_free(struct decoded *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->recs[i].data);
	free(d->recs);
	memset(d, 0, sizeof(*d));
}

bool rec_equal(const thinp_stream_record *a, const thinp_stream_record *b,
	       uint32_t block_size)
{
	if (a->type != b->type || a->seq != b->seq || a->offset != b->offset ||
	    a->first_block != b->first_block || a->nr_blocks != b->nr_blocks ||
	    memcmp(&a->pos, &b->pos, sizeof(a->pos)))
		return false;
	if (a->type != THINP_STREAM_DATA)
		return true;
	return memcmp(a->data, b->data, a->nr_blocks * block_size) == 0;
}

void model_init(struct model *m, uint64_t nr_blocks, uint32_t bs)
{
	m->nr_blocks = nr_blocks;
	m->bs = bs;
	m->state = calloc(nr_blocks + 1, 1);
	m->data = calloc(nr_blocks * bs + 1, 1);
	assert_non_null(m->state);
	assert_non_null(m->data);
}

void model_free(struct model *m)
{
	free(m->state);
	free(m->data);
}

void model_run(struct model *m, uint32_t type, uint64_t first, uint64_t nr, const void *data)
{
	uint8_t st = type == THINP_STREAM_DATA ? M_DATA :
		     type == THINP_STREAM_ZERO ? M_ZERO : M_UNMAPPED;

	assert_true(first + nr <= m->nr_blocks);
	memset(m->state + first, st, nr);
	if (data)
		memcpy(m->data + first * m->bs, data, nr * m->bs);
	else
		memset(m->data + first * m->bs, 0, nr * m->bs);
}

void model_apply(struct model *m, const thinp_stream_record *rec)
{
	switch (rec->type) {
	case THINP_STREAM_DATA:
	case THINP_STREAM_UNMAP:
	case THINP_STREAM_ZERO:
		model_run(m, rec->type, rec->first_block, rec->nr_blocks,
			  rec->type == THINP_STREAM_DATA ? rec->data : NULL);
		break;
	default:
		break;
	}
}

void model_assert_equal(const struct model *a, const struct model *b)
{
	assert_int_equal(a->nr_blocks, b->nr_blocks);
	for (uint64_t i = 0; i < a->nr_blocks; i++)
		if (a->state[i] != b->state[i]) {
			print_error("block %llu: state %d, expected %d\n", (unsigned long long)i,
				    a->state[i], b->state[i]);
			fail();
		}
	assert_memory_equal(a->data, b->data, a->nr_blocks * a->bs);
}

void block_bytes(uint8_t *buf, uint64_t block, uint32_t bs, uint32_t salt)
{
	uint64_t x = block * 0x9E3779B97F4A7C15ull ^ salt;

	for (uint32_t i = 0; i < bs; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
}

static void add_op(struct script *s, uint32_t type, uint64_t first, uint64_t nr)
{
	s->ops = realloc(s->ops, (s->n + 1) * sizeof(*s->ops));
	assert_non_null(s->ops);
	s->ops[s->n++] = (struct op){ type, first, nr };
}

void script_random(struct script *s, struct test_rng *rng, uint64_t nr_blocks, uint32_t bs)
{
	static const uint32_t types[] = { THINP_STREAM_DATA, THINP_STREAM_UNMAP,
					  THINP_STREAM_ZERO };
	thinp_stream_header h = THINP_STREAM_HEADER_INIT;
	uint64_t b = 0;

	memset(s, 0, sizeof(*s));
	for (int i = 0; i < 16; i++) {
		h.stream_id[i] = (uint8_t)test_rng_next(rng);
		h.target_guid[i] = (uint8_t)test_rng_next(rng);
	}
	if (test_rng_below(rng, 2))
		memset(h.base_guid, 0xb5, 16);
	if (test_rng_below(rng, 3) == 0) {
		h.unmapped = THINP_STREAM_UNMAPPED_ORIGIN;
		memset(h.origin_guid, 0x0e, 16);
		h.origin_size = 1 << 20;
	}
	h.block_size = bs;
	/* Sometimes a partial last block. */
	h.virtual_size = nr_blocks * bs - (test_rng_below(rng, 2) ? 0 : (bs > 512 ? 512 : 0));
	s->hdr = h;
	s->nr_blocks = nr_blocks;
	s->salt = (uint32_t)test_rng_next(rng);
	while (b < nr_blocks) {
		uint64_t gap = test_rng_below(rng, 4) ? 0 : test_rng_below(rng, 8);
		uint64_t nr;

		b += gap;
		if (b >= nr_blocks)
			break;
		if (test_rng_below(rng, 8) == 0) {
			/* Past a gap, so no two checkpoints name one block and a
			 * resume point maps to one place in the script. */
			b++;
			add_op(s, THINP_STREAM_CHECKPOINT, b, 0);
			continue;
		}
		nr = 1 + test_rng_below(rng, THINP_MIN(nr_blocks - b, 40));
		add_op(s, types[test_rng_below(rng, 3)], b, nr);
		b += nr;
	}
}

void script_free(struct script *s)
{
	free(s->ops);
	memset(s, 0, sizeof(*s));
}

static uint8_t *run_bytes(const struct script *s, uint64_t first, uint64_t nr)
{
	uint32_t bs = s->hdr.block_size;
	uint8_t *buf = malloc(nr * bs);

	assert_non_null(buf);
	for (uint64_t i = 0; i < nr; i++)
		block_bytes(buf + i * bs, first + i, bs, s->salt);
	return buf;
}

void script_model(const struct script *s, struct model *m)
{
	model_init(m, s->nr_blocks, s->hdr.block_size);
	for (size_t i = 0; i < s->n; i++) {
		const struct op *o = &s->ops[i];
		uint8_t *buf = NULL;

		if (o->type == THINP_STREAM_CHECKPOINT)
			continue;
		if (o->type == THINP_STREAM_DATA)
			buf = run_bytes(s, o->first, o->nr);
		model_run(m, o->type, o->first, o->nr, buf);
		free(buf);
	}
}

static int play_op(thinp_stream_writer *w, const struct script *s, struct op o)
{
	uint8_t *buf;
	int ret;

	switch (o.type) {
	case THINP_STREAM_CHECKPOINT:
		return thinp_stream_writer_checkpoint(w, o.first);
	case THINP_STREAM_UNMAP:
		return thinp_stream_writer_unmap(w, o.first, o.nr);
	case THINP_STREAM_ZERO:
		return thinp_stream_writer_zero(w, o.first, o.nr);
	default:
		buf = run_bytes(s, o.first, o.nr);
		ret = thinp_stream_writer_data(w, o.first, o.nr, buf);
		free(buf);
		return ret;
	}
}

void script_play(const struct script *s, const thinp_stream_header *hdr, uint64_t from_block,
		 uint64_t checkpoint_bytes, struct sink *sink)
{
	thinp_stream_writer *w;

	assert_int_equal(thinp_stream_writer_begin(&w, hdr, checkpoint_bytes, sink_write, sink), 0);
	for (size_t i = 0; i < s->n; i++) {
		struct op o = s->ops[i];

		if (o.type == THINP_STREAM_CHECKPOINT ? o.first <= from_block
						      : o.first + o.nr <= from_block)
			continue;
		if (o.type != THINP_STREAM_CHECKPOINT && o.first < from_block) {
			o.nr -= from_block - o.first;
			o.first = from_block;
		}
		if (play_op(w, s, o))
			fail_msg("op %zu: %s", i, thinp_stream_writer_errmsg(w));
	}
	assert_int_equal(thinp_stream_writer_end(w), 0);
	thinp_stream_writer_free(w);
}
