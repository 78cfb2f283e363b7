/*
 * Damaged streams: every single-bit flip of a small stream is an error and
 * never a wrong record; a cut at every byte offset is reported as
 * truncation; records swapped, dropped, repeated or taken from another
 * stream are refused; records whose CRC is right but whose fields break the
 * rules (order, range, lengths, counts, digest, reserved fields) are refused
 * as damage, with the record number and offset in the message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/stream_test.h"
#include "stream/format.h"
#include "stream/writer.h"

#define BS 512

static thinp_stream_header header(uint8_t id)
{
	thinp_stream_header h = THINP_STREAM_HEADER_INIT;

	memset(h.stream_id, id, 16);
	memset(h.target_guid, 0x22, 16);
	h.block_size = BS;
	h.virtual_size = 100 * BS;
	return h;
}

/* Every record type, a skipped optional record, both with data. */
static void small_stream(struct sink *out, uint8_t id, uint8_t fill)
{
	thinp_stream_header h = header(id);
	thinp_stream_writer *w;
	uint8_t buf[2 * BS];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + fill);
	*out = (struct sink){ .fail_after = -1 };
	assert_int_equal(thinp_stream_writer_begin(&w, &h, THINP_STREAM_CHECKPOINT_NEVER,
						   sink_write, out), 0);
	assert_int_equal(thinp_stream_writer_data(w, 0, 2, buf), 0);
	assert_int_equal(thinp_stream_writer_unmap(w, 2, 3), 0);
	assert_int_equal(thinp_stream_writer_zero(w, 6, 1), 0);
	assert_int_equal(thinp_stream_writer_checkpoint(w, 8), 0);
	assert_int_equal(thinp_stream_writer_data(w, 9, 1, buf), 0);
	assert_int_equal(stream_writer_emit(w, THINP_STREAM_OPTIONAL | 77, "8 bytes!", 8, NULL, 0,
					    10), 0);
	assert_int_equal(thinp_stream_writer_unmap(w, 10, 90), 0);
	assert_int_equal(thinp_stream_writer_end(w), 0);
	thinp_stream_writer_free(w);
}

/* The records of d before its error are the clean stream's. */
static void assert_prefix_of(const struct decoded *d, const struct decoded *clean)
{
	assert_true(d->n <= clean->n);
	for (size_t i = 0; i < d->n; i++)
		if (!rec_equal(&d->recs[i].rec, &clean->recs[i].rec, BS))
			fail_msg("record %zu delivered differently (%s)", i, d->msg);
}

static void test_every_bit_flip(void **state)
{
	struct sink out;
	struct decoded clean, d;
	unsigned by_err[3] = { 0 };

	small_stream(&out, 0x11, 0);
	decode_all(out.buf, out.len, NULL, &clean);
	assert_int_equal(clean.err, 0);
	for (size_t bit = 0; bit < out.len * 8; bit++) {
		out.buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		decode_all(out.buf, out.len, NULL, &d);
		out.buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (d.err == 0)
			fail_msg("bit %zu (byte %zu) flipped: stream accepted", bit, bit / 8);
		assert_prefix_of(&d, &clean);
		if (d.err == -EILSEQ)
			by_err[0]++;
		else if (d.err == -EPROTO)
			by_err[1]++;
		else if (d.err == -EOPNOTSUPP)
			by_err[2]++;
		else
			fail_msg("bit %zu: unexpected error %d (%s)", bit, d.err, d.msg);
		decoded_free(&d);
	}
	print_message("%zu bit flips: %u damage, %u truncation (a length grew), %u unsupported\n",
		      out.len * 8, by_err[0], by_err[1], by_err[2]);
	/* Only a grown length field can look like truncation. */
	assert_true(by_err[0] > out.len * 8 * 9 / 10);
	decoded_free(&clean);
	sink_free(&out);
}

static void test_truncation_everywhere(void **state)
{
	struct sink out;
	struct decoded clean, d;
	struct test_rng rng;

	test_rng_init(&rng, test_seed("stream truncation"));
	small_stream(&out, 0x11, 0);
	decode_all(out.buf, out.len, NULL, &clean);
	assert_int_equal(clean.err, 0);
	for (size_t cut = 0; cut < out.len; cut++) {
		decode_all(out.buf, cut, cut % 2 ? &rng : NULL, &d);
		if (d.err != -EPROTO)
			fail_msg("cut at %zu: error %d (%s), not truncation", cut, d.err, d.msg);
		assert_true(strstr(d.msg, "truncated") != NULL);
		assert_prefix_of(&d, &clean);
		decoded_free(&d);
	}
	decoded_free(&clean);
	sink_free(&out);
}

/* Record boundaries of a stream: bounds[0] the header's end, bounds[n] its end. */
static size_t split(const struct sink *s, size_t *bounds, size_t max)
{
	size_t n = 0, at = sizeof(struct stream_header_wire);

	bounds[n] = at;
	while (at < s->len) {
		struct stream_frame f;

		memcpy(&f, s->buf + at, sizeof(f));
		at += sizeof(f) + le32_to_cpu(f.payload_len) + STREAM_CRC_LEN;
		assert_true(n + 1 < max);
		bounds[++n] = at;
	}
	assert_int_equal(at, s->len);
	return n;
}

/* Rebuild s from its records in the order `order` (indices, -1 ends). */
static void rebuild(const struct sink *s, const size_t *bounds, const int *order,
		    struct sink *out)
{
	*out = (struct sink){ .fail_after = -1 };
	sink_write(s->buf, bounds[0], out);
	for (const int *i = order; *i >= 0; i++)
		sink_write(s->buf + bounds[*i], bounds[*i + 1] - bounds[*i], out);
}

static void expect_refused(const struct sink *s, const struct decoded *clean, const char *what)
{
	struct decoded d;

	decode_all(s->buf, s->len, NULL, &d);
	if (d.err != -EILSEQ)
		fail_msg("%s: error %d (%s), expected damage", what, d.err, d.msg);
	assert_prefix_of(&d, clean);
	decoded_free(&d);
}

static void test_reorder_drop_repeat(void **state)
{
	struct sink out, bad;
	struct decoded clean;
	size_t bounds[32], n;
	int order[40];
	char what[64];

	small_stream(&out, 0x11, 0);
	decode_all(out.buf, out.len, NULL, &clean);
	n = split(&out, bounds, THINP_ARRAY_SIZE(bounds));
	assert_int_equal(n, 8);
	for (size_t i = 0; i < n; i++) {
		/* record i swapped with i + 1 (END too: then END is not last) */
		if (i + 1 < n) {
			int k = 0;

			for (size_t j = 0; j < n; j++)
				order[k++] = (int)(j == i ? i + 1 : j == i + 1 ? i : j);
			order[k] = -1;
			rebuild(&out, bounds, order, &bad);
			snprintf(what, sizeof(what), "records %zu and %zu swapped", i, i + 1);
			expect_refused(&bad, &clean, what);
			sink_free(&bad);
		}
		/* record i dropped (dropping END is truncation, tested elsewhere) */
		if (i + 1 < n) {
			int k = 0;

			for (size_t j = 0; j < n; j++)
				if (j != i)
					order[k++] = (int)j;
			order[k] = -1;
			rebuild(&out, bounds, order, &bad);
			snprintf(what, sizeof(what), "record %zu dropped", i);
			expect_refused(&bad, &clean, what);
			sink_free(&bad);
		}
		/* record i repeated */
		{
			int k = 0;

			for (size_t j = 0; j < n; j++) {
				order[k++] = (int)j;
				if (j == i)
					order[k++] = (int)j;
			}
			order[k] = -1;
			rebuild(&out, bounds, order, &bad);
			snprintf(what, sizeof(what), "record %zu repeated", i);
			if (i + 1 < n) {
				expect_refused(&bad, &clean, what);
			} else {
				/* A repeated END is past the end: never read. */
				struct decoded d;

				decode_all(bad.buf, out.len, NULL, &d);
				assert_int_equal(d.err, 0);
				decoded_free(&d);
			}
			sink_free(&bad);
		}
	}
	decoded_free(&clean);
	sink_free(&out);
}

/* A record of another stream, at the same place, framed and numbered right. */
static void test_foreign_record(void **state)
{
	struct sink a, b, mixed;
	struct decoded clean, d;
	size_t ba[32], bb[32], na, nb;

	small_stream(&a, 0x11, 0);
	small_stream(&b, 0x12, 0); /* same records, another stream id */
	na = split(&a, ba, 32);
	nb = split(&b, bb, 32);
	assert_int_equal(na, nb);
	decode_all(a.buf, a.len, NULL, &clean);
	for (size_t i = 0; i < na; i++) {
		mixed = (struct sink){ .fail_after = -1 };
		sink_write(a.buf, ba[i], &mixed);
		sink_write(b.buf + bb[i], bb[i + 1] - bb[i], &mixed);
		sink_write(a.buf + ba[i + 1], a.len - ba[i + 1], &mixed);
		decode_all(mixed.buf, mixed.len, NULL, &d);
		assert_int_equal(d.err, -EILSEQ);
		assert_true(strstr(d.msg, "CRC mismatch") != NULL);
		assert_prefix_of(&d, &clean);
		decoded_free(&d);
		sink_free(&mixed);
	}
	decoded_free(&clean);
	sink_free(&a);
	sink_free(&b);
}

/*
 * Each case writes a stream whose record `bad` is framed with a correct CRC
 * but breaks a rule; the reader must refuse exactly that record.
 */
static void test_rules_under_a_good_crc(void **state)
{
	uint8_t buf[2 * BS] = { 0 };

	for (int c = 0;; c++) {
		thinp_stream_header h = header(0x33);
		struct sink out = { .fail_after = -1 };
		struct stream_run run = { cpu_to_le64(10), cpu_to_le64(1) };
		struct stream_checkpoint cp;
		struct stream_end e;
		thinp_stream_writer *w;

		memset(&e, 0, sizeof(e));
		struct decoded d;
		const char *why;

		assert_int_equal(thinp_stream_writer_begin(&w, &h, THINP_STREAM_CHECKPOINT_NEVER,
							   sink_write, &out), 0);
		assert_int_equal(thinp_stream_writer_data(w, 10, 1, buf), 0);
		switch (c) {
		case 0: /* a run overlapping the previous one by a block */
			stream_writer_emit(w, THINP_STREAM_DATA, &run, sizeof(run), buf, BS, 6);
			why = "out of order";
			break;
		case 1: /* a run past the end */
			run = (struct stream_run){ cpu_to_le64(99), cpu_to_le64(2) };
			stream_writer_emit(w, THINP_STREAM_UNMAP, &run, sizeof(run), NULL, 0, 101);
			why = "past the end";
			break;
		case 2: /* an empty run */
			run = (struct stream_run){ cpu_to_le64(20), cpu_to_le64(0) };
			stream_writer_emit(w, THINP_STREAM_ZERO, &run, sizeof(run), NULL, 0, 20);
			why = "empty run";
			break;
		case 3: /* DATA with fewer bytes than blocks */
			run = (struct stream_run){ cpu_to_le64(20), cpu_to_le64(2) };
			stream_writer_emit(w, THINP_STREAM_DATA, &run, sizeof(run), buf, BS, 22);
			why = "payload length";
			break;
		case 4: /* UNMAP with a payload */
			run = (struct stream_run){ cpu_to_le64(20), cpu_to_le64(2) };
			stream_writer_emit(w, THINP_STREAM_UNMAP, &run, sizeof(run), buf, 8, 22);
			why = "payload length";
			break;
		case 5: /* DATA claiming more blocks than a record may hold */
			run = (struct stream_run){ cpu_to_le64(20), cpu_to_le64(1u << 20) };
			stream_writer_emit(w, THINP_STREAM_DATA, &run, sizeof(run), NULL, 0, 20);
			why = "longer than the format allows";
			break;
		case 6: /* a checkpoint with the wrong byte count */
			cp = (struct stream_checkpoint){ cpu_to_le64(30), cpu_to_le64(1),
							 cpu_to_le32(0), cpu_to_le32(0) };
			stream_writer_emit(w, THINP_STREAM_CHECKPOINT, &cp, sizeof(cp), NULL, 0, 30);
			why = "running digest";
			break;
		case 7: /* END with a wrong record count */
			e = (struct stream_end){ cpu_to_le64(7), cpu_to_le64(0), cpu_to_le32(0),
						 cpu_to_le32(0) };
			stream_writer_emit(w, THINP_STREAM_END, &e, sizeof(e), NULL, 0, 11);
			why = "record count";
			break;
		case 8: /* an END too short */
			stream_writer_emit(w, THINP_STREAM_END, &e, 8, NULL, 0, 11);
			why = "payload length";
			break;
		default:
			thinp_stream_writer_free(w);
			sink_free(&out);
			return;
		}
		thinp_stream_writer_end(w);
		thinp_stream_writer_free(w);
		decode_all(out.buf, out.len, NULL, &d);
		if (d.err != -EILSEQ || !strstr(d.msg, why))
			fail_msg("case %d: error %d (%s), expected damage: %s", c, d.err, d.msg, why);
		assert_int_equal(d.n, 1);
		assert_true(strstr(d.msg, "record 1 ") != NULL);
		decoded_free(&d);
		sink_free(&out);
	}
}

/* A checkpoint below the previous run, and one with a reserved bit, each
 * otherwise right (byte count and digest taken from the writer's state). */
static void test_checkpoint_rules(void **state)
{
	uint8_t buf[BS] = { 0 };

	for (int c = 0; c < 2; c++) {
		thinp_stream_header h = header(0x44);
		struct sink out = { .fail_after = -1 };
		struct stream_checkpoint cp;
		thinp_stream_writer *w;
		struct decoded good, d;

		/* A good stream first, to learn the checkpoint's byte count and digest. */
		assert_int_equal(thinp_stream_writer_begin(&w, &h, THINP_STREAM_CHECKPOINT_NEVER,
							   sink_write, &out), 0);
		assert_int_equal(thinp_stream_writer_data(w, 10, 1, buf), 0);
		assert_int_equal(thinp_stream_writer_checkpoint(w, 11), 0);
		assert_int_equal(thinp_stream_writer_end(w), 0);
		thinp_stream_writer_free(w);
		decode_all(out.buf, out.len, NULL, &good);
		assert_int_equal(good.err, 0);
		sink_free(&out);

		out = (struct sink){ .fail_after = -1 };
		assert_int_equal(thinp_stream_writer_begin(&w, &h, THINP_STREAM_CHECKPOINT_NEVER,
							   sink_write, &out), 0);
		assert_int_equal(thinp_stream_writer_data(w, 10, 1, buf), 0);
		cp = (struct stream_checkpoint){
			cpu_to_le64(c == 0 ? 9 : 11),
			cpu_to_le64(good.recs[1].rec.offset),
			cpu_to_le32(0), /* set below */
			cpu_to_le32(c == 0 ? 0 : 1),
		};
		/* The digest before the checkpoint: what END carries in the same
		 * stream without the checkpoint. */
		{
			struct sink o2 = { .fail_after = -1 };
			thinp_stream_writer *w2;
			struct decoded d2;

			assert_int_equal(thinp_stream_writer_begin(&w2, &h,
					THINP_STREAM_CHECKPOINT_NEVER, sink_write, &o2), 0);
			assert_int_equal(thinp_stream_writer_data(w2, 10, 1, buf), 0);
			assert_int_equal(thinp_stream_writer_end(w2), 0);
			thinp_stream_writer_free(w2);
			decode_all(o2.buf, o2.len, NULL, &d2);
			cp.digest = cpu_to_le32(d2.recs[1].rec.pos.digest);
			decoded_free(&d2);
			sink_free(&o2);
		}
		stream_writer_emit(w, THINP_STREAM_CHECKPOINT, &cp, sizeof(cp), NULL, 0, 11);
		thinp_stream_writer_end(w);
		thinp_stream_writer_free(w);
		decode_all(out.buf, out.len, NULL, &d);
		assert_int_equal(d.err, -EILSEQ);
		assert_true(strstr(d.msg, c == 0 ? "checkpoint below" : "reserved") != NULL);
		assert_int_equal(d.n, 1);
		decoded_free(&d);
		decoded_free(&good);
		sink_free(&out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_bit_flip),
		cmocka_unit_test(test_truncation_everywhere),
		cmocka_unit_test(test_reorder_drop_repeat),
		cmocka_unit_test(test_foreign_record),
		cmocka_unit_test(test_rules_under_a_good_crc),
		cmocka_unit_test(test_checkpoint_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
