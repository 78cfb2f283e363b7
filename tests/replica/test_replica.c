/*
 * Send and receive: random devices and snapshot chains in pool A, sent full
 * and incrementally into pool B, against a byte model of every snapshot;
 * blocks the snapshots share in A shared in B; and damaged, truncated,
 * misdirected and replayed streams, after which no visible device of B
 * changed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include <libthinp/thinp.h>

#define BS (64u * 1024)   /* data block size */
#define NB 40u            /* blocks per device */
#define DEV_BYTES ((uint64_t)NB * BS)
#define DATA_BLOCKS 2048u
#define MAX_SNAPS 6
#define LIVE 1u           /* A's written device; its snapshots are 2, 3, ... */

static uint64_t suite_seed;

struct pool_env {
	thinp_io *meta, *data, *cio;
	thinp_pool *pool;
	thinp_catalog *cat;
};

/* A byte stream in memory: written by send, read back by receive. */
struct buf {
	uint8_t *p;
	size_t len, cap, pos;
};

static int buf_write(const void *p, size_t len, void *ctx)
{
	struct buf *b = ctx;

	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
	return 0;
}

static int buf_read(void *p, size_t len, size_t *got, void *ctx)
{
	struct buf *b = ctx;
	size_t n = b->len - b->pos < len ? b->len - b->pos : len;

	memcpy(p, b->p + b->pos, n);
	b->pos += n;
	*got = n;
	return 0;
}

static void env_open(struct pool_env *e)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;

	o.data_block_size = BS;
	assert_int_equal(thinp_io_open_memory(&e->meta, 8u << 20, 0), 0);
	assert_int_equal(thinp_io_open_memory(&e->data, (uint64_t)DATA_BLOCKS * BS, 0), 0);
	assert_int_equal(thinp_io_open_memory(&e->cio, 0, 0), 0);
	assert_int_equal(thinp_pool_format(&e->pool, e->meta, e->data, &o), 0);
	assert_int_equal(thinp_catalog_open(&e->cat, e->cio, 0), 0);
}

static void env_close(struct pool_env *e)
{
	thinp_catalog_close(e->cat);
	assert_int_equal(thinp_pool_close(e->pool), 0);
	thinp_io_close(e->cio);
	thinp_io_close(e->data);
	thinp_io_close(e->meta);
}

static uint8_t *read_dev(thinp_pool *pool, uint64_t id)
{
	thinp_thin_options o = THINP_THIN_OPTIONS_INIT;
	uint8_t *p = malloc(DEV_BYTES);
	thinp_thin *t;

	assert_non_null(p);
	o.size = DEV_BYTES;
	assert_int_equal(thinp_thin_open(&t, pool, id, &o), 0);
	assert_int_equal(thinp_thin_read(t, p, DEV_BYTES, 0), 0);
	thinp_thin_close(t);
	return p;
}

/* One random change of A's live device and the model. */
static void random_op(struct test_rng *rng, thinp_thin *t, uint8_t *model)
{
	uint64_t off = test_rng_below(rng, DEV_BYTES), len = 1 + test_rng_below(rng, 3 * BS);
	uint64_t b0 = test_rng_below(rng, NB), nb = 1 + test_rng_below(rng, 4);

	if (off + len > DEV_BYTES)
		len = DEV_BYTES - off;
	if (b0 + nb > NB)
		nb = NB - b0;
	switch (test_rng_below(rng, 6)) {
	case 0: /* discard whole blocks */
		assert_int_equal(thinp_thin_discard(t, nb * BS, b0 * BS), 0);
		memset(model + b0 * BS, 0, nb * BS);
		break;
	case 1:
		assert_int_equal(thinp_thin_write_zeroes(t, len, off), 0);
		memset(model + off, 0, len);
		break;
	default:
		for (uint64_t i = 0; i < len; i++)
			model[off + i] = (uint8_t)test_rng_next(rng);
		assert_int_equal(thinp_thin_write(t, model + off, len, off), 0);
	}
}

/* Device id's guid in the catalog (the test's devices all have one). */
static void guid_of(thinp_catalog *cat, uint64_t id, uint8_t guid[16])
{
	thinp_catalog_entry *e = malloc(sizeof(*e));

	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	assert_int_equal(thinp_catalog_get(cat, id, e), 0);
	memcpy(guid, e->guid, 16);
	free(e);
}

/* What must not change when a receive fails: every pool device, the visible
 * entries and their contents, the data blocks used. */
struct state {
	uint64_t ids[64], nr_ids, data_used, visible[64], nr_visible;
	uint8_t *contents[64];
};

static void state_take(struct pool_env *e, struct state *s)
{
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	thinp_catalog_entry *ce = malloc(sizeof(*ce));

	memset(s, 0, sizeof(*s));
	for (uint64_t id = 0; id < 64; id++) {
		thinp_thin_status ts = THINP_THIN_STATUS_INIT;

		if (thinp_pool_get_thin_status(e->pool, id, &ts) == 0)
			s->ids[s->nr_ids++] = id;
	}
	*ce = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t id = 0; thinp_catalog_next(e->cat, id, ce) == 0; id = ce->id + 1) {
		if (ce->flags & (THINP_CATALOG_PARTIAL | THINP_CATALOG_ANCHOR))
			continue;
		s->contents[s->nr_visible] = read_dev(e->pool, ce->id);
		s->visible[s->nr_visible++] = ce->id;
	}
	assert_int_equal(thinp_pool_get_status(e->pool, &st), 0);
	s->data_used = st.data_used;
	free(ce);
}

static void state_assert_same(struct pool_env *e, struct state *before)
{
	struct state now;

	state_take(e, &now);
	assert_int_equal(now.nr_ids, before->nr_ids);
	assert_memory_equal(now.ids, before->ids, sizeof(now.ids));
	assert_int_equal(now.nr_visible, before->nr_visible);
	assert_memory_equal(now.visible, before->visible, sizeof(now.visible));
	assert_int_equal(now.data_used, before->data_used);
	for (uint64_t i = 0; i < now.nr_visible; i++) {
		assert_memory_equal(now.contents[i], before->contents[i], DEV_BYTES);
		free(now.contents[i]);
	}
}

static void state_free(struct state *s)
{
	for (uint64_t i = 0; i < s->nr_visible; i++)
		free(s->contents[i]);
}

static int do_send(struct pool_env *e, uint64_t dev, uint64_t base, struct buf *b)
{
	char msg[256];
	thinp_send_options o = THINP_SEND_OPTIONS_INIT;

	o.errbuf = msg;
	o.errbuf_size = sizeof(msg);
	memset(b, 0, sizeof(*b));
	return thinp_send(e->pool, e->cat, dev, base, buf_write, b, &o);
}

static int do_receive(struct pool_env *e, struct buf *b, uint64_t *id, char *msg, size_t size)
{
	thinp_receive_options o = THINP_RECEIVE_OPTIONS_INIT;

	o.errbuf = msg;
	o.errbuf_size = size;
	b->pos = 0;
	return thinp_receive(e->pool, e->cat, buf_read, b, &o, id);
}

/* Distinct data blocks mapped by A's devices [first, last]. */
static uint64_t distinct_blocks(thinp_pool *pool, uint64_t first, uint64_t last)
{
	uint8_t *seen = calloc(DATA_BLOCKS, 1);
	uint64_t n = 0, vb;
	thinp_mapping m;

	for (uint64_t id = first; id <= last; id++)
		for (uint64_t v = 0; thinp_pool_thin_next_map(pool, id, v, &vb, &m) == 0; v = vb + 1)
			if (!seen[m.data_block]++)
				n++;
	free(seen);
	return n;
}

/* A: LIVE written at random, snapshotted MAX_SNAPS times; returns the model
 * of each snapshot in models[]. Each snapshot gets a catalog entry with size. */
static void build_chain(struct pool_env *a, struct test_rng *rng, uint8_t **models)
{
	thinp_thin_options o = THINP_THIN_OPTIONS_INIT;
	thinp_catalog_entry *ce = malloc(sizeof(*ce));
	uint8_t *model = calloc(1, DEV_BYTES);
	thinp_thin *t;

	assert_int_equal(thinp_pool_create_thin(a->pool, LIVE), 0);
	o.size = DEV_BYTES;
	assert_int_equal(thinp_thin_open(&t, a->pool, LIVE, &o), 0);
	for (int s = 0; s < MAX_SNAPS; s++) {
		unsigned ops = test_ops(s ? 6 : 30);

		for (unsigned i = 0; i < ops; i++)
			random_op(rng, t, model);
		assert_int_equal(thinp_thin_flush(t), 0);
		assert_int_equal(thinp_pool_create_snap(a->pool, LIVE + 1 + s, LIVE), 0);
		*ce = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
		ce->id = LIVE + 1 + s;
		ce->size = DEV_BYTES;
		assert_int_equal(thinp_catalog_new_guid(ce->guid), 0);
		assert_int_equal(thinp_catalog_attach(a->cat, a->pool, ce), 0);
		models[s] = malloc(DEV_BYTES);
		memcpy(models[s], model, DEV_BYTES);
	}
	thinp_thin_close(t);
	free(model);
	free(ce);
}

/* Every snapshot of A sent (full, then each incremental) into B. */
static void replicate(struct pool_env *a, struct pool_env *b, uint8_t **models, uint64_t *got)
{
	char msg[256];

	for (int s = 0; s < MAX_SNAPS; s++) {
		struct buf st;
		uint8_t *p;

		assert_int_equal(do_send(a, LIVE + 1 + s, s ? LIVE + s : THINP_SEND_FULL, &st), 0);
		assert_int_equal(do_receive(b, &st, &got[s], msg, sizeof(msg)), 0);
		assert_int_equal(st.pos, st.len); /* read up to END, nothing more */
		p = read_dev(b->pool, got[s]);
		assert_memory_equal(p, models[s], DEV_BYTES);
		free(p);
		free(st.p);
	}
}

static void test_chain_random(void **state)
{
	struct test_rng rng;
	(void)state;

	test_rng_init(&rng, suite_seed);
	for (unsigned round = 0; round < test_ops(4); round++) {
		struct pool_env a, b;
		uint8_t *models[MAX_SNAPS];
		uint64_t got[MAX_SNAPS];
		thinp_pool_status st = THINP_POOL_STATUS_INIT;

		env_open(&a);
		env_open(&b);
		build_chain(&a, &rng, models);
		for (int s = 0; s < MAX_SNAPS; s++) {
			uint8_t *p = read_dev(a.pool, LIVE + 1 + s);

			assert_memory_equal(p, models[s], DEV_BYTES); /* A agrees with the model */
			free(p);
		}
		replicate(&a, &b, models, got);
		/* The received chain shares what A's chain shares. */
		assert_int_equal(thinp_pool_get_status(b.pool, &st), 0);
		assert_int_equal(st.data_used, distinct_blocks(a.pool, LIVE + 1, LIVE + MAX_SNAPS));
		for (int s = 0; s < MAX_SNAPS; s++) {
			uint8_t ga[16], gb[16];

			guid_of(a.cat, LIVE + 1 + s, ga);
			guid_of(b.cat, got[s], gb);
			assert_memory_equal(ga, gb, 16);
			free(models[s]);
		}
		env_close(&a);
		env_close(&b);
	}
}

/* A chain of three in A and B, B holding the first two; *next the stream of
 * the third (incremental from the second). */
struct fixture {
	struct pool_env a, b;
	uint8_t *models[MAX_SNAPS];
	uint64_t got[MAX_SNAPS];
};

static void fixture_open(struct fixture *f, struct test_rng *rng)
{
	env_open(&f->a);
	env_open(&f->b);
	build_chain(&f->a, rng, f->models);
	replicate(&f->a, &f->b, f->models, f->got);
}

static void fixture_close(struct fixture *f)
{
	for (int s = 0; s < MAX_SNAPS; s++)
		free(f->models[s]);
	env_close(&f->a);
	env_close(&f->b);
}

/* Damaged and truncated streams, full and incremental, into B: errors, B unchanged. */
static void test_damage(void **state)
{
	struct test_rng rng;
	struct fixture f;
	struct buf full, inc;
	(void)state;

	test_rng_init(&rng, suite_seed + 1);
	fixture_open(&f, &rng);
	/* New content for A, so the streams are not replays in B. */
	assert_int_equal(thinp_pool_create_snap(f.a.pool, 20, LIVE + MAX_SNAPS), 0);
	{
		thinp_thin_options o = THINP_THIN_OPTIONS_INIT;
		thinp_thin *t;
		uint8_t blk[BS];

		memset(blk, 0x5a, sizeof(blk));
		o.size = DEV_BYTES;
		assert_int_equal(thinp_thin_open(&t, f.a.pool, 20, &o), 0);
		assert_int_equal(thinp_thin_write(t, blk, BS, 3 * BS), 0);
		thinp_thin_close(t);
	}
	assert_int_equal(do_send(&f.a, 20, THINP_SEND_FULL, &full), 0);
	assert_int_equal(do_send(&f.a, 20, LIVE + MAX_SNAPS, &inc), 0);
	for (unsigned i = 0; i < test_ops(40); i++) {
		struct buf *s = i & 1 ? &inc : &full;
		struct state before;
		uint64_t id, bit = test_rng_below(&rng, s->len * 8);
		size_t len = s->len;
		char msg[256] = "";
		int r;

		state_take(&f.b, &before);
		if (i & 2) {
			s->len = test_rng_below(&rng, len); /* truncated */
			r = do_receive(&f.b, s, &id, msg, sizeof(msg));
			s->len = len;
		} else {
			s->p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			r = do_receive(&f.b, s, &id, msg, sizeof(msg));
			s->p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		assert_true(r < 0);
		assert_true(msg[0] != '\0');
		state_assert_same(&f.b, &before);
		state_free(&before);
	}
	free(full.p);
	free(inc.p);
	fixture_close(&f);
}

/* The wrong base, a modified base, a replay. */
static void test_base_and_replay(void **state)
{
	struct test_rng rng;
	struct fixture f;
	struct buf s;
	struct state before;
	uint64_t id;
	char msg[256];
	(void)state;

	test_rng_init(&rng, suite_seed + 2);
	fixture_open(&f, &rng);

	/* Replays of a full and an incremental stream: no-ops giving the same id. */
	for (int k = 0; k < 2; k++) {
		assert_int_equal(do_send(&f.a, LIVE + 1 + k, k ? LIVE + 1 : THINP_SEND_FULL, &s), 0);
		state_take(&f.b, &before);
		assert_int_equal(do_receive(&f.b, &s, &id, msg, sizeof(msg)), 0);
		assert_int_equal(id, f.got[k]);
		state_assert_same(&f.b, &before);
		state_free(&before);
		free(s.p);
	}

	/* A base B never had: device 30 and its snapshot 31, new to B. */
	assert_int_equal(thinp_pool_create_thin(f.a.pool, 30), 0);
	assert_int_equal(thinp_pool_create_snap(f.a.pool, 31, 30), 0);
	assert_int_equal(do_send(&f.a, 31, 30, &s), 0);
	state_take(&f.b, &before);
	assert_int_equal(do_receive(&f.b, &s, &id, msg, sizeof(msg)), -ENODATA);
	state_assert_same(&f.b, &before);
	state_free(&before);
	free(s.p);

	/* A base modified in B since it was received: refused, nothing else changes. */
	assert_int_equal(thinp_pool_create_snap(f.a.pool, 32, LIVE + MAX_SNAPS), 0);
	assert_int_equal(do_send(&f.a, 32, LIVE + MAX_SNAPS, &s), 0);
	{
		thinp_thin_options o = THINP_THIN_OPTIONS_INIT;
		thinp_thin *t;
		uint8_t blk[512];

		memset(blk, 1, sizeof(blk));
		o.size = DEV_BYTES;
		assert_int_equal(thinp_thin_open(&t, f.b.pool, f.got[MAX_SNAPS - 1], &o), 0);
		assert_int_equal(thinp_thin_write(t, blk, sizeof(blk), 7 * BS), 0);
		thinp_thin_close(t);
	}
	state_take(&f.b, &before);
	assert_int_equal(do_receive(&f.b, &s, &id, msg, sizeof(msg)), -ESTALE);
	state_assert_same(&f.b, &before);
	state_free(&before);
	free(s.p);

	/* The same incremental onto an unmodified base still works. */
	assert_int_equal(do_send(&f.a, LIVE + MAX_SNAPS - 1, LIVE + MAX_SNAPS - 2, &s), 0);
	assert_int_equal(do_receive(&f.b, &s, &id, msg, sizeof(msg)), 0);
	assert_int_equal(id, f.got[MAX_SNAPS - 2]); /* a replay, then */
	free(s.p);
	fixture_close(&f);
}

/* A block size the pool does not have: refused before anything changes. */
static void test_block_size(void **state)
{
	thinp_stream_header h = THINP_STREAM_HEADER_INIT;
	thinp_stream_writer *w;
	struct pool_env b;
	struct buf s = { 0 };
	struct state before;
	uint64_t id;
	char msg[256];
	(void)state;

	env_open(&b);
	h.block_size = 4096;
	h.virtual_size = 1 << 20;
	assert_int_equal(thinp_catalog_new_guid(h.target_guid), 0);
	assert_int_equal(thinp_stream_writer_begin(&w, &h, 0, buf_write, &s), 0);
	assert_int_equal(thinp_stream_writer_end(w), 0);
	thinp_stream_writer_free(w);
	state_take(&b, &before);
	assert_int_equal(do_receive(&b, &s, &id, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "block size"));
	state_assert_same(&b, &before);
	state_free(&before);
	free(s.p);
	env_close(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_random),
		cmocka_unit_test(test_damage),
		cmocka_unit_test(test_base_and_replay),
		cmocka_unit_test(test_block_size),
	};

	suite_seed = test_seed("test_replica");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
