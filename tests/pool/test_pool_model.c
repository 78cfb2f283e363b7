/*
 * Model-based random test of the pool runtime: random writes (aligned,
 * unaligned, partial, multi-block), reads, discards, write-zeroes,
 * snapshots, deletes, flushes, reopens and power losses on several volumes
 * (some over an external origin), each checked against a byte array per
 * volume. After a power loss the pool must hold exactly the state of the
 * last flush (the crash device keeps nothing unflushed). The seed is
 * printed; THINP_TEST_SEED replays a run, THINP_TEST_LONG makes it longer,
 * THINP_TEST_SHORT shorter.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include "pool/pool_test.h"

#define NBLOCKS 16
#define VSIZE ((uint64_t)NBLOCKS * TEST_BS)
#define MAXVOL 6
#define ORIGIN_SIZE (10 * (uint64_t)TEST_BS + 12345)

struct vol {
	bool live;
	uint64_t id;
	bool origin;
	uint8_t *bytes;
	thinp_thin *thin;
};

struct world {
	struct tpool t;
	struct test_rng rng;
	thinp_io *origin;
	uint8_t *origin_bytes;
	struct vol v[MAXVOL], durable[MAXVOL];
	uint64_t next_id;
	uint8_t *buf;
	unsigned ops, crashes, reopens;
};

static void vol_open(struct world *w, struct vol *v)
{
	v->thin = topen(w->t.pool, v->id, VSIZE, v->origin ? w->origin : NULL);
}

/* What a never-written range reads as. */
static void unmapped_bytes(struct world *w, const struct vol *v, uint8_t *dst, uint64_t off,
			   uint64_t len)
{
	memset(dst, 0, len);
	if (v->origin && off < ORIGIN_SIZE)
		memcpy(dst, w->origin_bytes + off, (len < ORIGIN_SIZE - off ? len : ORIGIN_SIZE - off));
}

static void save_durable(struct world *w)
{
	for (int i = 0; i < MAXVOL; i++) {
		free(w->durable[i].bytes);
		w->durable[i] = w->v[i];
		w->durable[i].thin = NULL;
		w->durable[i].bytes = NULL;
		if (w->v[i].live) {
			w->durable[i].bytes = malloc(VSIZE);
			memcpy(w->durable[i].bytes, w->v[i].bytes, VSIZE);
		}
	}
}

static struct vol *pick_live(struct world *w)
{
	int n = 0, k;

	for (int i = 0; i < MAXVOL; i++)
		n += w->v[i].live;
	if (!n)
		return NULL;
	k = (int)test_rng_below(&w->rng, n);
	for (int i = 0; i < MAXVOL; i++)
		if (w->v[i].live && k-- == 0)
			return &w->v[i];
	return NULL;
}

static struct vol *free_slot(struct world *w)
{
	for (int i = 0; i < MAXVOL; i++)
		if (!w->v[i].live)
			return &w->v[i];
	return NULL;
}

/* An offset and length: whole blocks, a piece of a block, or anything. */
static void pick_range(struct world *w, uint64_t *off, uint64_t *len)
{
	switch (test_rng_below(&w->rng, 3)) {
	case 0:
		*off = test_rng_below(&w->rng, NBLOCKS) * TEST_BS;
		*len = (1 + test_rng_below(&w->rng, 3)) * TEST_BS;
		break;
	case 1:
		*off = test_rng_below(&w->rng, VSIZE);
		*len = 1 + test_rng_below(&w->rng, 5000);
		break;
	default:
		*off = test_rng_below(&w->rng, VSIZE);
		*len = 1 + test_rng_below(&w->rng, 3 * TEST_BS);
	}
	if (*off + *len > VSIZE)
		*len = VSIZE - *off;
}

static void op_write(struct world *w, struct vol *v)
{
	uint64_t off, len;
	uint8_t seed = (uint8_t)test_rng_next(&w->rng);

	pick_range(w, &off, &len);
	for (uint64_t i = 0; i < len; i++)
		w->buf[i] = (uint8_t)(seed + i * 13 + (i >> 8));
	assert_int_equal(thinp_thin_write(v->thin, w->buf, len, off), 0);
	memcpy(v->bytes + off, w->buf, len);
}

static void op_zeroes(struct world *w, struct vol *v)
{
	uint64_t off, len;

	pick_range(w, &off, &len);
	assert_int_equal(thinp_thin_write_zeroes(v->thin, len, off), 0);
	memset(v->bytes + off, 0, len);
}

static void op_discard(struct world *w, struct vol *v)
{
	uint64_t off, len, b0, b1;

	pick_range(w, &off, &len);
	assert_int_equal(thinp_thin_discard(v->thin, len, off), 0);
	b0 = (off + TEST_BS - 1) / TEST_BS;
	b1 = (off + len) / TEST_BS;
	for (uint64_t b = b0; b < b1; b++)
		unmapped_bytes(w, v, v->bytes + b * TEST_BS, b * TEST_BS, TEST_BS);
}

static void check_vol(struct world *w, struct vol *v)
{
	assert_int_equal(thinp_thin_read(v->thin, w->buf, VSIZE, 0), 0);
	for (uint64_t i = 0; i < VSIZE; i++)
		if (w->buf[i] != v->bytes[i])
			fail_msg("volume %llu byte %llu: %u, model %u (op %u)",
				 (unsigned long long)v->id, (unsigned long long)i, w->buf[i],
				 v->bytes[i], w->ops);
}

static void op_read(struct world *w, struct vol *v)
{
	uint64_t off, len;

	pick_range(w, &off, &len);
	assert_int_equal(thinp_thin_read(v->thin, w->buf, len, off), 0);
	assert_memory_equal(w->buf, v->bytes + off, len);
}

static void op_snapshot(struct world *w, struct vol *v)
{
	struct vol *s = free_slot(w);

	if (!s)
		return;
	s->id = w->next_id++;
	assert_int_equal(thinp_pool_create_snap(w->t.pool, s->id, v->id), 0);
	s->live = true;
	s->origin = v->origin;
	s->bytes = malloc(VSIZE);
	memcpy(s->bytes, v->bytes, VSIZE);
	vol_open(w, s);
	/* A message commits. */
	save_durable(w);
}

static void op_create(struct world *w)
{
	struct vol *s = free_slot(w);

	if (!s)
		return;
	s->id = w->next_id++;
	assert_int_equal(thinp_pool_create_thin(w->t.pool, s->id), 0);
	s->live = true;
	s->origin = test_rng_below(&w->rng, 3) == 0;
	s->bytes = malloc(VSIZE);
	unmapped_bytes(w, s, s->bytes, 0, VSIZE);
	vol_open(w, s);
	save_durable(w);
}

static void op_delete(struct world *w, struct vol *v)
{
	thinp_thin_close(v->thin);
	assert_int_equal(thinp_pool_delete_thin(w->t.pool, v->id), 0);
	free(v->bytes);
	memset(v, 0, sizeof(*v));
	save_durable(w);
}

static void close_all(struct world *w)
{
	for (int i = 0; i < MAXVOL; i++) {
		thinp_thin_close(w->v[i].thin);
		w->v[i].thin = NULL;
	}
}

static void open_all(struct world *w)
{
	for (int i = 0; i < MAXVOL; i++)
		if (w->v[i].live)
			vol_open(w, &w->v[i]);
}

static void op_reopen(struct world *w)
{
	close_all(w);
	tpool_close(&w->t);
	tpool_open(&w->t);
	tpool_check_md(&w->t);
	open_all(w);
	save_durable(w);
	w->reopens++;
}

static void op_crash(struct world *w)
{
	close_all(w);
	tpool_crash(&w->t);
	tpool_open(&w->t);
	tpool_check_md(&w->t);
	for (int i = 0; i < MAXVOL; i++) {
		free(w->v[i].bytes);
		w->v[i] = w->durable[i];
		w->v[i].bytes = NULL;
		if (w->v[i].live) {
			w->v[i].bytes = malloc(VSIZE);
			memcpy(w->v[i].bytes, w->durable[i].bytes, VSIZE);
		}
	}
	open_all(w);
	for (int i = 0; i < MAXVOL; i++)
		if (w->v[i].live)
			check_vol(w, &w->v[i]);
	w->crashes++;
}

static void one_op(struct world *w, bool crashes)
{
	struct vol *v = pick_live(w);
	uint64_t commits = tpool_commits(&w->t);
	unsigned k = (unsigned)test_rng_below(&w->rng, 100);

	if (!v) {
		op_create(w);
		return;
	}
	if (k < 35)
		op_write(w, v);
	else if (k < 50)
		op_read(w, v);
	else if (k < 58)
		op_discard(w, v);
	else if (k < 63)
		op_zeroes(w, v);
	else if (k < 68)
		op_snapshot(w, v);
	else if (k < 71)
		op_create(w);
	else if (k < 75)
		op_delete(w, v);
	else if (k < 85) {
		assert_int_equal(thinp_thin_flush(v->thin), 0);
		save_durable(w);
	} else if (k < 88)
		op_reopen(w);
	else if (k < 90 && crashes)
		op_crash(w);
	else
		check_vol(w, v);
	/* Only the operations above that save the durable state commit; the
	 * pool must not commit behind the model's back (it would only do so
	 * when out of space, which this test avoids). */
	if (k < 63 && tpool_commits(&w->t) != commits)
		fail_msg("unexpected commit during op %u", w->ops);
}

static void run(bool crashes, bool real, unsigned nops)
{
	struct world w;
	/* Room for every volume fully provisioned plus copies. */
	uint64_t blocks = MAXVOL * NBLOCKS * 2 + 16;

	memset(&w, 0, sizeof(w));
	test_rng_init(&w.rng, test_seed(real ? "pool model (real metadata)"
				       : crashes ? "pool model (crash)" : "pool model"));
#ifdef POOL_TEST_REAL
	if (real)
		tpool_setup_real(&w.t, blocks, 4 << 20, NULL);
	else
#endif
		tpool_setup(&w.t, blocks, NULL);
	w.origin_bytes = malloc(ORIGIN_SIZE);
	for (uint64_t i = 0; i < ORIGIN_SIZE; i++)
		w.origin_bytes[i] = (uint8_t)(i * 31 + (i >> 10));
	assert_int_equal(thinp_io_open_memory(&w.origin, ORIGIN_SIZE, 0), 0);
	assert_int_equal(thinp_io_write(w.origin, w.origin_bytes, ORIGIN_SIZE, 0, 0), 0);
	w.buf = malloc(VSIZE);
	save_durable(&w);
	for (w.ops = 0; w.ops < nops; w.ops++)
		one_op(&w, crashes);
	for (int i = 0; i < MAXVOL; i++)
		if (w.v[i].live)
			check_vol(&w, &w.v[i]);
	tpool_check_md(&w.t);
	print_message("%u ops, %u reopens, %u power losses\n", nops, w.reopens, w.crashes);
	close_all(&w);
	tpool_teardown(&w.t);
	thinp_io_close(w.origin);
	for (int i = 0; i < MAXVOL; i++) {
		free(w.v[i].bytes);
		free(w.durable[i].bytes);
	}
	free(w.origin_bytes);
	free(w.buf);
}

#ifndef POOL_TEST_REAL
static void test_model_random(void **state)
{
	run(false, false, test_ops(3000));
}

static void test_model_random_power_loss(void **state)
{
	run(true, false, test_ops(3000));
}
#endif

#ifdef POOL_TEST_REAL
/* The same over the real dm-thin metadata: every reopen and power loss
 * also runs libthinp's full check and thin_check on the image. */
static void test_model_real_metadata(void **state)
{
	run(true, true, test_ops(1500));
}
#endif

int main(void)
{
#ifdef POOL_TEST_REAL
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_real_metadata),
	};
#else
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_random),
		cmocka_unit_test(test_model_random_power_loss),
	};
#endif
	return cmocka_run_group_tests(tests, NULL, NULL);
}
