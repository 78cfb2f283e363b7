/*
 * The fault-injecting backend: fail rules, counters, and power loss.
 *
 * Power-loss tests compare the lower device after a cut with a model: the
 * image as of the last flush plus the unflushed writes, recorded by the test.
 * The unflushed writes do not overlap, so each one's range must hold either
 * its old or its new bytes (or, for the one torn write, a sector-granular
 * prefix of the new bytes followed by the old ones).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include <libthinp/io.h>
#include <libthinp/testing.h>

#define DEV_SIZE (256 * 1024)
#define W(k) THINP_IO_KIND_BIT(THINP_IO_KIND_##k)

static uint64_t suite_seed;

static void fill_random(struct test_rng *rng, unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)test_rng_next(rng);
}

/* A memory device holding random bytes, and a wrapper over it. */
struct rig {
	thinp_io *lower;
	thinp_io *io;
	thinp_io_fault *f;
	unsigned char *image; /* what lower holds as of the last flush */
};

static void rig_open(struct rig *g, struct test_rng *rng)
{
	g->image = malloc(DEV_SIZE);
	assert_non_null(g->image);
	fill_random(rng, g->image, DEV_SIZE);
	assert_int_equal(thinp_io_open_memory(&g->lower, DEV_SIZE, 0), 0);
	assert_int_equal(thinp_io_write(g->lower, g->image, DEV_SIZE, 0, 0), 0);
	assert_int_equal(thinp_io_open_fault(&g->io, &g->f, g->lower, 0), 0);
}

static void rig_close(struct rig *g)
{
	thinp_io_close(g->io);
	thinp_io_fault_free(g->f);
	thinp_io_close(g->lower);
	free(g->image);
}

static void assert_lower_is(struct rig *g, const unsigned char *want)
{
	unsigned char *got = malloc(DEV_SIZE);

	assert_non_null(got);
	assert_int_equal(thinp_io_read(g->lower, got, DEV_SIZE, 0, 0), 0);
	assert_memory_equal(got, want, DEV_SIZE);
	free(got);
}

static void test_nth_failure_once(void **state)
{
	struct test_rng rng;
	struct rig g;
	char buf[8];

	test_rng_init(&rng, suite_seed);
	rig_open(&g, &rng);
	assert_int_equal(thinp_io_fault_fail_nth(g.f, W(WRITE), 3, -EIO, 0), 0);
	assert_int_equal(thinp_io_write(g.io, "aaaa", 4, 0, 0), 0);
	/* Reads are not of the chosen kind and do not count. */
	assert_int_equal(thinp_io_read(g.io, buf, 4, 0, 0), 0);
	assert_int_equal(thinp_io_write(g.io, "bbbb", 4, 8, 0), 0);
	assert_int_equal(thinp_io_write(g.io, "cccc", 4, 16, 0), -EIO);
	assert_int_equal(thinp_io_write(g.io, "dddd", 4, 24, 0), 0);
	/* The failed write had no effect. */
	assert_int_equal(thinp_io_read(g.io, buf, 4, 16, 0), 0);
	assert_memory_equal(buf, g.image + 16, 4);
	assert_int_equal(thinp_io_read(g.io, buf, 4, 24, 0), 0);
	assert_memory_equal(buf, "dddd", 4);
	rig_close(&g);
}

static void test_nth_failure_persist_all_kinds(void **state)
{
	struct test_rng rng;
	struct rig g;
	char buf[8];

	test_rng_init(&rng, suite_seed);
	rig_open(&g, &rng);
	assert_int_equal(thinp_io_fault_fail_nth(g.f, 0, 2, -ENOSPC,
						 THINP_IO_FAULT_PERSIST), 0);
	assert_int_equal(thinp_io_read(g.io, buf, 4, 0, 0), 0);
	assert_int_equal(thinp_io_flush(g.io), -ENOSPC);
	assert_int_equal(thinp_io_read(g.io, buf, 4, 0, 0), -ENOSPC);
	assert_int_equal(thinp_io_write(g.io, "x", 1, 0, 0), -ENOSPC);
	assert_int_equal(thinp_io_discard(g.io, 512, 0, 0), -ENOSPC);
	thinp_io_fault_clear(g.f);
	assert_int_equal(thinp_io_read(g.io, buf, 4, 0, 0), 0);
	assert_int_equal(thinp_io_flush(g.io), 0);
	rig_close(&g);
}

static void test_two_rules_both_count(void **state)
{
	struct test_rng rng;
	struct rig g;
	char buf[4];

	test_rng_init(&rng, suite_seed);
	rig_open(&g, &rng);
	/* Both rules see every read, so the second fires at read 3 even though
	 * the first one failed read 2. */
	assert_int_equal(thinp_io_fault_fail_nth(g.f, W(READ), 2, -EIO, 0), 0);
	assert_int_equal(thinp_io_fault_fail_nth(g.f, W(READ), 3, -EBADMSG, 0), 0);
	assert_int_equal(thinp_io_read(g.io, buf, 4, 0, 0), 0);
	assert_int_equal(thinp_io_read(g.io, buf, 4, 0, 0), -EIO);
	assert_int_equal(thinp_io_read(g.io, buf, 4, 0, 0), -EBADMSG);
	assert_int_equal(thinp_io_read(g.io, buf, 4, 0, 0), 0);
	rig_close(&g);
}

static void test_range_failure(void **state)
{
	struct test_rng rng;
	struct rig g;
	char buf[512];

	test_rng_init(&rng, suite_seed);
	rig_open(&g, &rng);
	assert_int_equal(thinp_io_fault_fail_range(g.f, W(READ) | W(DISCARD), 8192,
						   512, -EIO), 0);
	assert_int_equal(thinp_io_read(g.io, buf, 512, 8192 - 512, 0), 0);
	assert_int_equal(thinp_io_read(g.io, buf, 512, 8192 + 512, 0), 0);
	assert_int_equal(thinp_io_read(g.io, buf, 2, 8191, 0), -EIO);
	assert_int_equal(thinp_io_read(g.io, buf, 1, 8192 + 511, 0), -EIO);
	assert_int_equal(thinp_io_discard(g.io, 4096, 8192, 0), -EIO);
	/* Writes are not in the mask; flushes have no range. */
	assert_int_equal(thinp_io_write(g.io, "w", 1, 8192, 0), 0);
	assert_int_equal(thinp_io_flush(g.io), 0);
	thinp_io_fault_clear(g.f);
	assert_int_equal(thinp_io_read(g.io, buf, 1, 8192, 0), 0);
	assert_int_equal(buf[0], 'w');
	rig_close(&g);
}

static void assert_count(thinp_io_fault *f, unsigned kind, uint64_t ops, uint64_t bytes)
{
	uint64_t o, b;

	assert_int_equal(thinp_io_fault_counters(f, kind, &o, &b), 0);
	assert_int_equal(o, ops);
	assert_int_equal(b, bytes);
}

static void test_counters(void **state)
{
	struct test_rng rng;
	struct rig g;
	char buf[4096];

	test_rng_init(&rng, suite_seed);
	rig_open(&g, &rng);
	assert_int_equal(thinp_io_read(g.io, buf, 100, 0, 0), 0);
	assert_int_equal(thinp_io_read(g.io, buf, 4096, 4096, 0), 0);
	assert_int_equal(thinp_io_write(g.io, buf, 300, 0, 0), 0);
	assert_int_equal(thinp_io_discard(g.io, 65536, 65536, 0), 0);
	assert_int_equal(thinp_io_discard(g.io, 4096, 0, 0), 0);
	assert_int_equal(thinp_io_write_zeroes(g.io, 8192, 0, 0), 0);
	assert_int_equal(thinp_io_flush(g.io), 0);
	/* A request failed by a rule is counted too. */
	assert_int_equal(thinp_io_fault_fail_nth(g.f, W(FLUSH), 1, -EIO, 0), 0);
	assert_int_equal(thinp_io_flush(g.io), -EIO);
	assert_count(g.f, THINP_IO_KIND_READ, 2, 4196);
	assert_count(g.f, THINP_IO_KIND_WRITE, 1, 300);
	assert_count(g.f, THINP_IO_KIND_FLUSH, 2, 0);
	assert_count(g.f, THINP_IO_KIND_DISCARD, 2, 69632);
	assert_count(g.f, THINP_IO_KIND_WRITE_ZEROES, 1, 8192);
	assert_int_equal(thinp_io_fault_counters(g.f, THINP_IO_KIND_COUNT, NULL, NULL),
			 -EINVAL);
	thinp_io_fault_reset_counters(g.f);
	for (unsigned k = 0; k < THINP_IO_KIND_COUNT; k++)
		assert_count(g.f, k, 0, 0);
	rig_close(&g);
}

static void test_writes_held_until_flush(void **state)
{
	struct test_rng rng;
	struct rig g;
	char buf[16];

	test_rng_init(&rng, suite_seed);
	rig_open(&g, &rng);
	assert_int_equal(thinp_io_write(g.io, "new data", 8, 1000, 0), 0);
	assert_int_equal(thinp_io_write_zeroes(g.io, 4, 1002, 0), 0);
	assert_int_equal(thinp_io_fault_pending(g.f), 2);
	/* The wrapper sees its writes, in order; the device below does not yet. */
	assert_int_equal(thinp_io_read(g.io, buf, 8, 1000, 0), 0);
	assert_memory_equal(buf, "ne\0\0\0\0ta", 8);
	assert_int_equal(thinp_io_read(g.lower, buf, 8, 1000, 0), 0);
	assert_memory_equal(buf, g.image + 1000, 8);
	assert_int_equal(thinp_io_flush(g.io), 0);
	assert_int_equal(thinp_io_fault_pending(g.f), 0);
	assert_int_equal(thinp_io_read(g.lower, buf, 8, 1000, 0), 0);
	assert_memory_equal(buf, "ne\0\0\0\0ta", 8);
	rig_close(&g);
}

static void test_failed_flush_keeps_pending(void **state)
{
	struct test_rng rng;
	struct rig g;
	char buf[4];

	test_rng_init(&rng, suite_seed);
	rig_open(&g, &rng);
	assert_int_equal(thinp_io_write(g.io, "abcd", 4, 0, 0), 0);
	assert_int_equal(thinp_io_fault_fail_nth(g.f, W(FLUSH), 1, -EIO, 0), 0);
	assert_int_equal(thinp_io_flush(g.io), -EIO);
	assert_int_equal(thinp_io_fault_pending(g.f), 1);
	assert_int_equal(thinp_io_read(g.lower, buf, 4, 0, 0), 0);
	assert_memory_equal(buf, g.image, 4);
	assert_int_equal(thinp_io_flush(g.io), 0);
	assert_int_equal(thinp_io_read(g.lower, buf, 4, 0, 0), 0);
	assert_memory_equal(buf, "abcd", 4);
	rig_close(&g);
}

/* The unflushed writes of a power-loss test: disjoint, random. */
struct wr {
	uint64_t off;
	uint64_t len;
	unsigned char *data;
};

#define NR_WR 48

/* Issue NR_WR disjoint writes in random order, each in its own 4 KiB slot
 * (every third one a full aligned 4 KiB, the others random sub-ranges, so some
 * can tear and some cannot). Slots are shuffled so order is not offset order. */
static void issue_unflushed(struct rig *g, struct test_rng *rng, struct wr *w)
{
	unsigned slots[DEV_SIZE / 4096];
	unsigned n = DEV_SIZE / 4096;

	for (unsigned i = 0; i < n; i++)
		slots[i] = i;
	for (unsigned i = n - 1; i > 0; i--) {
		unsigned j = test_rng_below(rng, i + 1), t = slots[i];

		slots[i] = slots[j];
		slots[j] = t;
	}
	for (unsigned i = 0; i < NR_WR; i++) {
		uint64_t base = (uint64_t)slots[i] * 4096;

		if (i % 3 == 0) {
			w[i].off = base;
			w[i].len = 4096;
		} else {
			w[i].off = base + test_rng_below(rng, 4096);
			w[i].len = 1 + test_rng_below(rng, base + 4096 - w[i].off);
		}
		w[i].data = malloc(w[i].len);
		assert_non_null(w[i].data);
		fill_random(rng, w[i].data, w[i].len);
		assert_int_equal(thinp_io_write(g->io, w[i].data, w[i].len, w[i].off, 0), 0);
	}
}

enum outcome { OLD, NEW, TORN };

/* Classify what a write's range holds on the lower device; fails the test
 * if it is none of old, new, or a sector-granular torn prefix. */
static enum outcome classify(const struct rig *g, const unsigned char *got,
			     const struct wr *w)
{
	const unsigned char *old = g->image + w->off;
	const unsigned char *cur = got + w->off;
	uint64_t k = 0;

	if (!memcmp(cur, w->data, w->len))
		return NEW;
	if (!memcmp(cur, old, w->len))
		return OLD;
	while (k < w->len && cur[k] == w->data[k])
		k++;
	/* Back to the last sector boundary: the prefix's tail may match old. */
	k = (w->off + k) / 512 * 512 - w->off;
	if ((int64_t)k <= 0 || k >= w->len)
		fail_msg("write at %llu+%llu is neither old, new nor torn",
			 (unsigned long long)w->off, (unsigned long long)w->len);
	assert_memory_equal(cur, w->data, k);
	assert_memory_equal(cur + k, old + k, w->len - k);
	return TORN;
}

/* Run one cut with `mode` and check the outcome; returns how many writes
 * landed whole. */
static unsigned cut_and_check(int mode, uint64_t seed, unsigned *torn_out)
{
	struct test_rng rng;
	struct rig g;
	struct wr w[NR_WR];
	unsigned char *got = malloc(DEV_SIZE), *rest = malloc(DEV_SIZE);
	unsigned counts[3] = { 0, 0, 0 };

	assert_non_null(got);
	assert_non_null(rest);
	test_rng_init(&rng, seed);
	rig_open(&g, &rng);
	/* Some flushed writes first: they must survive whatever happens. */
	fill_random(&rng, g.image, 8192);
	assert_int_equal(thinp_io_write(g.io, g.image, 8192, 0, 0), 0);
	assert_int_equal(thinp_io_flush(g.io), 0);
	issue_unflushed(&g, &rng, w);
	assert_int_equal(thinp_io_fault_cut(g.f, mode, seed), 0);
	assert_int_equal(thinp_io_fault_cut_fired(g.f), 1);
	assert_int_equal(thinp_io_read(g.lower, got, DEV_SIZE, 0, 0), 0);
	memcpy(rest, got, DEV_SIZE);
	for (unsigned i = 0; i < NR_WR; i++) {
		counts[classify(&g, got, &w[i])]++;
		memcpy(rest + w[i].off, g.image + w[i].off, w[i].len);
	}
	/* Outside the unflushed writes, the device holds the flushed image. */
	assert_memory_equal(rest, g.image, DEV_SIZE);
	for (unsigned i = 0; i < NR_WR; i++)
		free(w[i].data);
	free(got);
	free(rest);
	rig_close(&g);
	*torn_out = counts[TORN];
	return counts[NEW];
}

static void test_cut_drop(void **state)
{
	unsigned torn;

	assert_int_equal(cut_and_check(THINP_IO_FAULT_CUT_DROP, suite_seed, &torn), 0);
	assert_int_equal(torn, 0);
}

static void test_cut_keep(void **state)
{
	unsigned torn;

	assert_int_equal(cut_and_check(THINP_IO_FAULT_CUT_KEEP, suite_seed, &torn), NR_WR);
	assert_int_equal(torn, 0);
}

static void test_cut_random_subset(void **state)
{
	unsigned torn, kept;

	for (uint64_t s = 0; s < 8 * test_scale(); s++) {
		kept = cut_and_check(THINP_IO_FAULT_CUT_RANDOM, suite_seed + s, &torn);
		assert_int_equal(torn, 0);
		/* A fair coin per write: all or nothing has odds 2^-47. */
		assert_true(kept > 0 && kept < NR_WR);
	}
}

static void test_cut_torn(void **state)
{
	unsigned torn, kept;

	for (uint64_t s = 0; s < 8 * test_scale(); s++) {
		kept = cut_and_check(THINP_IO_FAULT_CUT_TORN, suite_seed + s, &torn);
		/* Every third write is a full 4 KiB: one of them can tear. */
		assert_int_equal(torn, 1);
		assert_true(kept < NR_WR);
	}
}

/* A lower device with 4096-byte alignment (as with O_DIRECT): a write tears
 * only at its alignment, so the surviving prefix is a request it accepts
 * (a misaligned prefix would make the cut fail with -EINVAL). */
struct aligned_dev {
	unsigned char bytes[65536];
};

static int al_read(void *ctx, void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	memcpy(buf, ((struct aligned_dev *)ctx)->bytes + off, len);
	return 0;
}

static int al_write(void *ctx, const void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct aligned_dev *d = ctx;

	memcpy(d->bytes + off, buf, len);
	return 0;
}

static int al_flush(void *ctx)
{
	return 0;
}

static int al_size(void *ctx, uint64_t *bytes)
{
	*bytes = sizeof(((struct aligned_dev *)ctx)->bytes);
	return 0;
}

static void test_cut_torn_follows_lower_alignment(void **state)
{
	static struct aligned_dev d;
	thinp_io_ops ops = THINP_IO_OPS_INIT;
	unsigned char data[16384];
	thinp_io *lower, *io;
	thinp_io_fault *f;

	ops.align = 4096;
	ops.read = al_read;
	ops.write = al_write;
	ops.flush = al_flush;
	ops.size = al_size;
	memset(data, 0xEE, sizeof(data));
	for (uint64_t s = 0; s < 16; s++) {
		uint64_t k = 0;

		memset(d.bytes, 0, sizeof(d.bytes));
		assert_int_equal(thinp_io_new(&lower, &ops, &d, 0), 0);
		assert_int_equal(thinp_io_open_fault(&io, &f, lower, 0), 0);
		assert_int_equal(thinp_io_align(io), 4096);
		assert_int_equal(thinp_io_write(io, data, sizeof(data), 8192, 0), 0);
		assert_int_equal(thinp_io_fault_cut(f, THINP_IO_FAULT_CUT_TORN,
						    suite_seed + s), 0);
		while (k < sizeof(data) && d.bytes[8192 + k] == 0xEE)
			k++;
		/* The only write is torn: a non-empty proper prefix, whole
		 * 4 KiB units, the rest untouched. */
		assert_true(k > 0 && k < sizeof(data) && k % 4096 == 0);
		for (uint64_t b = k; b < sizeof(data); b++)
			assert_int_equal(d.bytes[8192 + b], 0);
		thinp_io_close(io);
		thinp_io_fault_free(f);
		thinp_io_close(lower);
	}
}

/* The same seed and the same requests give the same device. */
static void test_cut_deterministic(void **state)
{
	unsigned char *img[2];

	for (int run = 0; run < 2; run++) {
		struct test_rng rng;
		struct rig g;
		struct wr w[NR_WR];

		test_rng_init(&rng, suite_seed);
		rig_open(&g, &rng);
		issue_unflushed(&g, &rng, w);
		assert_int_equal(thinp_io_fault_cut(g.f, THINP_IO_FAULT_CUT_TORN, 42), 0);
		img[run] = malloc(DEV_SIZE);
		assert_non_null(img[run]);
		assert_int_equal(thinp_io_read(g.lower, img[run], DEV_SIZE, 0, 0), 0);
		for (unsigned i = 0; i < NR_WR; i++)
			free(w[i].data);
		rig_close(&g);
	}
	assert_memory_equal(img[0], img[1], DEV_SIZE);
	free(img[0]);
	free(img[1]);
}

/* Overlapping unflushed writes land in issue order when all are kept. */
static void test_cut_keep_preserves_order(void **state)
{
	struct test_rng rng;
	struct rig g;
	char buf[8];

	test_rng_init(&rng, suite_seed);
	rig_open(&g, &rng);
	assert_int_equal(thinp_io_write(g.io, "11111111", 8, 0, 0), 0);
	assert_int_equal(thinp_io_write(g.io, "2222", 4, 2, 0), 0);
	assert_int_equal(thinp_io_discard(g.io, 2, 6, 0), 0);
	assert_int_equal(thinp_io_fault_cut(g.f, THINP_IO_FAULT_CUT_KEEP, 0), 0);
	assert_int_equal(thinp_io_read(g.lower, buf, 8, 0, 0), 0);
	assert_memory_equal(buf, "112222\0\0", 8);
	rig_close(&g);
}

static void test_dead_after_cut(void **state)
{
	struct test_rng rng;
	struct rig g;
	char buf[4];

	test_rng_init(&rng, suite_seed);
	rig_open(&g, &rng);
	assert_int_equal(thinp_io_fault_cut_fired(g.f), 0);
	assert_int_equal(thinp_io_fault_cut(g.f, THINP_IO_FAULT_CUT_DROP, 0), 0);
	assert_int_equal(thinp_io_read(g.io, buf, 4, 0, 0), -EIO);
	assert_int_equal(thinp_io_write(g.io, buf, 4, 0, 0), -EIO);
	assert_int_equal(thinp_io_flush(g.io), -EIO);
	assert_int_equal(thinp_io_discard(g.io, 4, 0, 0), -EIO);
	assert_int_equal(thinp_io_write_zeroes(g.io, 4, 0, 0), -EIO);
	assert_int_equal(thinp_io_resize(g.io, DEV_SIZE * 2), -EIO);
	assert_int_equal(thinp_io_is_zero(g.io, 4, 0), -EIO);
	/* Cutting again changes nothing. */
	assert_int_equal(thinp_io_fault_cut(g.f, THINP_IO_FAULT_CUT_KEEP, 0), 0);
	assert_int_equal(thinp_io_fault_cut_fired(g.f), 1);
	rig_close(&g);
}

/*
 * is_zero: the memory device compares its bytes; the wrapper says "may hold
 * data" wherever something is pending (even zeroes), and passes the question
 * down elsewhere. No counter or rule sees the query.
 */
static void test_is_zero(void **state)
{
	unsigned char *zero = calloc(1, DEV_SIZE);
	struct test_rng rng;
	uint64_t reads;
	struct rig g;

	test_rng_init(&rng, suite_seed);
	rig_open(&g, &rng);
	assert_int_equal(thinp_io_is_zero(g.io, 4096, 0), 0);
	assert_int_equal(thinp_io_write(g.lower, zero, DEV_SIZE, 0, 0), 0);
	assert_int_equal(thinp_io_is_zero(g.lower, DEV_SIZE, 0), 1);
	assert_int_equal(thinp_io_is_zero(g.io, DEV_SIZE, 0), 1);
	assert_int_equal(thinp_io_is_zero(g.io, 0, 0), 1);
	assert_int_equal(thinp_io_fault_fail_range(g.f, 0, 0, DEV_SIZE, -EIO), 0);
	assert_int_equal(thinp_io_is_zero(g.io, DEV_SIZE, 0), 1);
	assert_int_equal(thinp_io_fault_counters(g.f, THINP_IO_KIND_READ, &reads, NULL), 0);
	assert_int_equal(reads, 0);
	rig_close(&g);

	rig_open(&g, &rng);
	assert_int_equal(thinp_io_write(g.lower, zero, DEV_SIZE, 0, 0), 0);
	assert_int_equal(thinp_io_write_zeroes(g.io, 4096, 8192, 0), 0);
	assert_int_equal(thinp_io_is_zero(g.io, 4096, 8192), 0);
	assert_int_equal(thinp_io_is_zero(g.io, 8192, 0), 1);
	assert_int_equal(thinp_io_write(g.io, "x", 1, 20000, 0), 0);
	assert_int_equal(thinp_io_is_zero(g.io, 8192, 16384), 0);
	assert_int_equal(thinp_io_flush(g.io), 0);
	assert_int_equal(thinp_io_is_zero(g.io, 4096, 8192), 1);
	assert_int_equal(thinp_io_is_zero(g.io, 8192, 16384), 0);
	assert_int_equal(thinp_io_is_zero(g.lower, 8192, 16384), 0);
	assert_int_equal(thinp_io_is_zero(g.io, 1, DEV_SIZE), -EINVAL);
	rig_close(&g);
	free(zero);
}

/* Armed at a flush: the writes before it are the in-flight set. */
static void test_armed_cut_at_flush(void **state)
{
	struct test_rng rng;
	struct rig g;
	char buf[4];

	test_rng_init(&rng, suite_seed);
	rig_open(&g, &rng);
	assert_int_equal(thinp_io_fault_arm_cut(g.f, 3, THINP_IO_FAULT_CUT_DROP, 1), 0);
	assert_int_equal(thinp_io_write(g.io, "aaaa", 4, 0, 0), 0);
	assert_int_equal(thinp_io_read(g.io, buf, 4, 0, 0), 0); /* reads don't count */
	assert_int_equal(thinp_io_write(g.io, "bbbb", 4, 4, 0), 0);
	assert_int_equal(thinp_io_fault_cut_fired(g.f), 0);
	assert_int_equal(thinp_io_flush(g.io), -EIO);
	assert_int_equal(thinp_io_fault_cut_fired(g.f), 1);
	assert_lower_is(&g, g.image);
	rig_close(&g);
}

/* Armed at a write: that write is in flight and may land. */
static void test_armed_cut_at_write(void **state)
{
	struct test_rng rng;
	struct rig g;

	test_rng_init(&rng, suite_seed);
	rig_open(&g, &rng);
	assert_int_equal(thinp_io_fault_arm_cut(g.f, 2, THINP_IO_FAULT_CUT_KEEP, 1), 0);
	assert_int_equal(thinp_io_write(g.io, "aaaa", 4, 0, 0), 0);
	assert_int_equal(thinp_io_write(g.io, "bbbb", 4, 4, 0), -EIO);
	memcpy(g.image, "aaaabbbb", 8);
	assert_lower_is(&g, g.image);
	rig_close(&g);
}

static void test_rule_failures_do_not_count_for_cut(void **state)
{
	struct test_rng rng;
	struct rig g;

	test_rng_init(&rng, suite_seed);
	rig_open(&g, &rng);
	assert_int_equal(thinp_io_fault_fail_nth(g.f, W(WRITE), 1, -EIO, 0), 0);
	assert_int_equal(thinp_io_fault_arm_cut(g.f, 2, THINP_IO_FAULT_CUT_DROP, 1), 0);
	assert_int_equal(thinp_io_write(g.io, "a", 1, 0, 0), -EIO); /* rule */
	assert_int_equal(thinp_io_write(g.io, "a", 1, 0, 0), 0);    /* cut op 1 */
	assert_int_equal(thinp_io_fault_cut_fired(g.f), 0);
	assert_int_equal(thinp_io_flush(g.io), -EIO);            /* cut op 2 */
	assert_int_equal(thinp_io_fault_cut_fired(g.f), 1);
	rig_close(&g);
}

/*
 * The crash-test loop other layers use, on a toy workload: each step writes a
 * record and flushes. After the cut at op n, every record whose flush
 * returned 0 must be on the device; the loop ends when the workload completes
 * before op n.
 */
#define STEPS 12

static int toy_workload(thinp_io *io, unsigned *committed)
{
	char rec[64];
	int r;

	for (unsigned i = 0; i < STEPS; i++) {
		memset(rec, 'A' + i, sizeof(rec));
		r = thinp_io_write(io, rec, sizeof(rec), 4096 * i + 100, 0);
		if (!r)
			r = thinp_io_flush(io);
		if (r)
			return r;
		*committed = i + 1;
	}
	return 0;
}

static void test_crash_loop_pattern(void **state)
{
	uint64_t n;
	int fired = 1;

	for (n = 1; fired; n++) {
		thinp_io *lower, *io;
		thinp_io_fault *f;
		unsigned committed = 0;
		char rec[64];
		int r;

		assert_int_equal(thinp_io_open_memory(&lower, 64 * 1024, 0), 0);
		assert_int_equal(thinp_io_open_fault(&io, &f, lower, 0), 0);
		assert_int_equal(thinp_io_fault_arm_cut(f, n, THINP_IO_FAULT_CUT_TORN,
							suite_seed + n), 0);
		r = toy_workload(io, &committed);
		thinp_io_close(io);
		fired = thinp_io_fault_cut_fired(f);
		thinp_io_fault_free(f);
		assert_int_equal(r, fired ? -EIO : 0);
		assert_int_equal(committed, fired ? (n - 1) / 2 : STEPS);
		for (unsigned i = 0; i < committed; i++) {
			assert_int_equal(thinp_io_read(lower, rec, sizeof(rec),
						       4096 * i + 100, 0), 0);
			for (unsigned b = 0; b < sizeof(rec); b++)
				assert_int_equal(rec[b], 'A' + i);
		}
		thinp_io_close(lower);
	}
	/* Two requests per step: the last run, with the cut beyond them, did
	 * not fire. */
	assert_int_equal(n - 1, 2 * STEPS + 1);
}

/* The control object may outlive the wrapper (a pool closed it) and still
 * cut; and the wrapper may outlive the control object. */
static void test_lifetimes(void **state)
{
	struct test_rng rng;
	struct rig g;
	char buf[4];

	test_rng_init(&rng, suite_seed);
	rig_open(&g, &rng);
	assert_int_equal(thinp_io_write(g.io, "keep", 4, 0, 0), 0);
	thinp_io_close(g.io);
	g.io = NULL;
	assert_int_equal(thinp_io_fault_pending(g.f), 1);
	assert_int_equal(thinp_io_fault_cut(g.f, THINP_IO_FAULT_CUT_KEEP, 0), 0);
	assert_int_equal(thinp_io_read(g.lower, buf, 4, 0, 0), 0);
	assert_memory_equal(buf, "keep", 4);
	thinp_io_fault_free(g.f);

	/* Control freed first, wrapper still works; unflushed writes at the end
	 * of both are dropped. */
	assert_int_equal(thinp_io_open_fault(&g.io, &g.f, g.lower, 0), 0);
	thinp_io_fault_free(g.f);
	g.f = NULL;
	assert_int_equal(thinp_io_write(g.io, "lost", 4, 0, 0), 0);
	assert_int_equal(thinp_io_read(g.io, buf, 4, 0, 0), 0);
	assert_memory_equal(buf, "lost", 4);
	thinp_io_close(g.io);
	g.io = NULL;
	assert_int_equal(thinp_io_read(g.lower, buf, 4, 0, 0), 0);
	assert_memory_equal(buf, "keep", 4);
	rig_close(&g);
}

static void test_bad_arguments(void **state)
{
	struct test_rng rng;
	struct rig g;
	thinp_io *io = (thinp_io *)1;
	thinp_io_fault *f = (thinp_io_fault *)1;

	assert_int_equal(thinp_io_open_fault(&io, &f, NULL, 0), -EINVAL);
	assert_null(io);
	assert_null(f);
	test_rng_init(&rng, suite_seed);
	rig_open(&g, &rng);
	assert_int_equal(thinp_io_open_fault(&io, NULL, g.lower, 1u << 7), -EINVAL);
	assert_int_equal(thinp_io_fault_fail_nth(g.f, 0, 0, -EIO, 0), -EINVAL);
	assert_int_equal(thinp_io_fault_fail_nth(g.f, 0, 1, 5, 0), -EINVAL);
	assert_int_equal(thinp_io_fault_fail_nth(g.f, 1u << 9, 1, -EIO, 0), -EINVAL);
	assert_int_equal(thinp_io_fault_fail_nth(g.f, 0, 1, -EIO, 1u << 5), -EINVAL);
	assert_int_equal(thinp_io_fault_fail_range(g.f, 0, 0, 0, -EIO), -EINVAL);
	assert_int_equal(thinp_io_fault_fail_range(g.f, 0, UINT64_MAX, 2, -EIO), -EINVAL);
	assert_int_equal(thinp_io_fault_arm_cut(g.f, 0, THINP_IO_FAULT_CUT_DROP, 0), -EINVAL);
	assert_int_equal(thinp_io_fault_arm_cut(g.f, 1, 17, 0), -EINVAL);
	assert_int_equal(thinp_io_fault_cut(g.f, -1, 0), -EINVAL);
	assert_int_equal(thinp_io_fault_cut_fired(g.f), 0);
	rig_close(&g);
}

/* A resize goes straight down; a shrink clips what is pending. */
static void test_resize_passes_down(void **state)
{
	struct test_rng rng;
	struct rig g;
	uint64_t size;
	char buf[4];

	test_rng_init(&rng, suite_seed);
	rig_open(&g, &rng);
	assert_int_equal(thinp_io_write(g.io, "abcd", 4, DEV_SIZE - 2, 0), -EINVAL);
	assert_int_equal(thinp_io_resize(g.io, DEV_SIZE + 4096), 0);
	assert_int_equal(thinp_io_size(g.lower, &size), 0);
	assert_int_equal(size, DEV_SIZE + 4096);
	assert_int_equal(thinp_io_write(g.io, "abcd", 4, DEV_SIZE - 2, 0), 0);
	assert_int_equal(thinp_io_resize(g.io, DEV_SIZE), 0);
	assert_int_equal(thinp_io_flush(g.io), 0);
	assert_int_equal(thinp_io_read(g.lower, buf, 2, DEV_SIZE - 2, 0), 0);
	assert_memory_equal(buf, "ab", 2);
	rig_close(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nth_failure_once),
		cmocka_unit_test(test_nth_failure_persist_all_kinds),
		cmocka_unit_test(test_two_rules_both_count),
		cmocka_unit_test(test_range_failure),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_writes_held_until_flush),
		cmocka_unit_test(test_failed_flush_keeps_pending),
		cmocka_unit_test(test_cut_drop),
		cmocka_unit_test(test_cut_keep),
		cmocka_unit_test(test_cut_random_subset),
		cmocka_unit_test(test_cut_torn),
		cmocka_unit_test(test_cut_torn_follows_lower_alignment),
		cmocka_unit_test(test_cut_deterministic),
		cmocka_unit_test(test_cut_keep_preserves_order),
		cmocka_unit_test(test_dead_after_cut),
		cmocka_unit_test(test_armed_cut_at_flush),
		cmocka_unit_test(test_armed_cut_at_write),
		cmocka_unit_test(test_rule_failures_do_not_count_for_cut),
		cmocka_unit_test(test_crash_loop_pattern),
		cmocka_unit_test(test_lifetimes),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_resize_passes_down),
		cmocka_unit_test(test_is_zero),
	};

	suite_seed = test_seed("test_fault");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
