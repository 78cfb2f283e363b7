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
#include <unistd.h>

#include "common/power.h"
#include "common/testutil.h"
#include <libthinp/thinp.h>
#include <libthinp/testing.h>
#include <libthinp/meta.h>
#include <libthinp/backup.h>

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

/* Device @id's bytes, its unprovisioned blocks read from @origin (NULL:
 * zeroes). */
static uint8_t *read_dev_via(thinp_pool *pool, uint64_t id, thinp_io *origin)
{
	thinp_thin_options o = THINP_THIN_OPTIONS_INIT;
	uint8_t *p = malloc(DEV_BYTES);
	thinp_thin *t;

	assert_non_null(p);
	o.size = DEV_BYTES;
	o.origin = origin;
	assert_int_equal(thinp_thin_open(&t, pool, id, &o), 0);
	assert_int_equal(thinp_thin_read(t, p, DEV_BYTES, 0), 0);
	thinp_thin_close(t);
	return p;
}

static uint8_t *read_dev(thinp_pool *pool, uint64_t id)
{
	return read_dev_via(pool, id, NULL);
}

/* One random change of A's live device and the model; @under is what an
 * unprovisioned block reads as (the origin's bytes; NULL: zeroes). */
static void random_op_over(struct test_rng *rng, thinp_thin *t, uint8_t *model,
			   const uint8_t *under)
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
		if (under)
			memcpy(model + b0 * BS, under + b0 * BS, nb * BS);
		else
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

static void random_op(struct test_rng *rng, thinp_thin *t, uint8_t *model)
{
	random_op_over(rng, t, model, NULL);
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

/* A receive claiming that @origin (NULL: none) holds the stream's external
 * origin, of origin guid @guid (NULL: whichever the stream names). */
static int receive_origin(struct pool_env *e, struct buf *b, const char *origin,
			  const uint8_t *guid, uint64_t *id, char *msg, size_t size)
{
	thinp_receive_options o = THINP_RECEIVE_OPTIONS_INIT;

	o.errbuf = msg;
	o.errbuf_size = size;
	o.origin = origin;
	if (guid)
		memcpy(o.origin_guid, guid, 16);
	b->pos = 0;
	return thinp_receive(e->pool, e->cat, buf_read, b, &o, id);
}

static int do_receive(struct pool_env *e, struct buf *b, uint64_t *id, char *msg, size_t size)
{
	return receive_origin(e, b, NULL, NULL, id, msg, size);
}

/* Distinct data blocks mapped by A's devices [first, last]. */
static uint64_t distinct_blocks(thinp_pool *pool, uint64_t first, uint64_t last)
{
	uint8_t *seen = calloc(DATA_BLOCKS, 1);
	uint64_t n = 0, vb;
	thinp_mapping m = THINP_MAPPING_INIT;

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
		/* Longer runs write more, short ones (THINP_TEST_SHORT) no less:
		 * test_resume needs streams long enough to hold checkpoints. */
		unsigned ops = (s ? 6 : 30) * test_scale();

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

/* ---- Power cuts during a receive ------------------------------------ */

/* B on memory devices behind one power supply (tests/common/power.h): the
 * n-th write, flush, discard, write-zeroes or resize on any of its three
 * devices cuts the power of all three at once. */
struct crash_env {
	thinp_io *lower[3];
	struct power *pw;
	struct pool_env b;
};

/* A later cut (power_arm) resolves by @mode and @seed. */
static void crash_env_open(struct crash_env *ce, int mode, uint64_t seed)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	const uint64_t sizes[3] = { 8u << 20, (uint64_t)DATA_BLOCKS * BS, 0 };
	thinp_io **io[3] = { &ce->b.meta, &ce->b.data, &ce->b.cio };

	memset(ce, 0, sizeof(*ce));
	ce->pw = power_new(mode, seed);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(thinp_io_open_memory(&ce->lower[i], sizes[i], 0), 0);
		*io[i] = power_add(ce->pw, ce->lower[i]);
	}
	o.data_block_size = BS;
	assert_int_equal(thinp_pool_format(&ce->b.pool, ce->b.meta, ce->b.data, &o), 0);
	assert_int_equal(thinp_catalog_open(&ce->b.cat, ce->b.cio, 0), 0);
}

/* After the cut: B reopened on what reached the lower devices. */
static void crash_env_reopen(struct crash_env *ce, struct pool_env *after)
{
	thinp_catalog_close(ce->b.cat);
	thinp_pool_close(ce->b.pool); /* fails: the power is gone */
	power_free(ce->pw);
	assert_int_equal(thinp_meta_check_io(ce->lower[0], NULL, NULL, NULL), 0);
	after->meta = ce->lower[0];
	after->data = ce->lower[1];
	after->cio = ce->lower[2];
	assert_int_equal(thinp_pool_open(&after->pool, after->meta, after->data, NULL), 0);
	assert_int_equal(thinp_catalog_open(&after->cat, after->cio, 0), 0);
}

/*
 * What a crash may leave: every visible entry names a device that exists
 * (same birth stamp); the visible devices are those before (same contents),
 * plus at most the stream's target with exactly its contents.
 */
static void assert_crash_outcome(struct pool_env *b, const struct state *before,
				 const uint8_t target_guid[16], const uint8_t *target)
{
	thinp_catalog_entry *ce = malloc(sizeof(*ce));
	uint64_t matched = 0;

	*ce = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t id = 0; thinp_catalog_next(b->cat, id, ce) == 0; id = ce->id + 1) {
		thinp_thin_status ts = THINP_THIN_STATUS_INIT;
		uint8_t *p;
		uint64_t i;

		if (ce->flags & (THINP_CATALOG_PARTIAL | THINP_CATALOG_ANCHOR))
			continue;
		assert_int_equal(thinp_pool_get_thin_status(b->pool, ce->id, &ts), 0);
		assert_int_equal(ts.creation_time, ce->birth_time);
		assert_int_equal(ts.transaction_id, ce->birth_transaction);
		p = read_dev(b->pool, ce->id);
		for (i = 0; i < before->nr_visible && before->visible[i] != ce->id; i++)
			;
		if (i < before->nr_visible) {
			assert_memory_equal(p, before->contents[i], DEV_BYTES);
			matched++;
		} else {
			assert_memory_equal(ce->guid, target_guid, 16);
			assert_memory_equal(p, target, DEV_BYTES);
		}
		free(p);
	}
	assert_int_equal(matched, before->nr_visible);
	free(ce);
}

/* A power cut at every request of a full and of an incremental receive, in
 * every fault mode. */
static void test_crash(void **state)
{
	static const int modes[] = { THINP_IO_FAULT_CUT_DROP, THINP_IO_FAULT_CUT_KEEP,
				     THINP_IO_FAULT_CUT_RANDOM, THINP_IO_FAULT_CUT_TORN };
	struct test_rng rng;
	struct pool_env a;
	uint8_t *models[MAX_SNAPS], g2[16], g3[16];
	struct buf s2, s3;
	uint64_t cuts = 0;
	(void)state;

	test_rng_init(&rng, suite_seed + 3);
	env_open(&a);
	build_chain(&a, &rng, models);
	assert_int_equal(do_send(&a, LIVE + 1, THINP_SEND_FULL, &s2), 0);
	assert_int_equal(do_send(&a, LIVE + 2, LIVE + 1, &s3), 0);
	guid_of(a.cat, LIVE + 1, g2);
	guid_of(a.cat, LIVE + 2, g3);
	for (int incremental = 0; incremental < 2; incremental++)
		for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
			for (uint64_t n = 1;; n++) {
				struct crash_env ce;
				struct pool_env after;
				struct state before;
				uint64_t id;
				char msg[256];
				int r;

				crash_env_open(&ce, modes[m], test_rng_next(&rng));
				if (incremental)
					assert_int_equal(do_receive(&ce.b, &s2, &id, msg, sizeof(msg)), 0);
				state_take(&ce.b, &before);
				power_arm(ce.pw, n);
				r = do_receive(&ce.b, incremental ? &s3 : &s2, &id, msg, sizeof(msg));
				if (!power_is_cut(ce.pw)) {
					/* The whole receive ran before the n-th request. */
					assert_int_equal(r, 0);
					power_cut_now(ce.pw);
				}
				crash_env_reopen(&ce, &after);
				assert_crash_outcome(&after, &before, incremental ? g3 : g2,
						     models[incremental]);
				state_free(&before);
				env_close(&after);
				if (!r)
					break;
				cuts++;
			}
	assert_true(cuts > 8);
	for (int s = 0; s < MAX_SNAPS; s++)
		free(models[s]);
	free(s2.p);
	free(s3.p);
	env_close(&a);
}

/* ---- Resuming ------------------------------------------------------- */

static int send_opts(struct pool_env *e, uint64_t dev, uint64_t base, const char *token,
		     struct buf *b)
{
	thinp_send_options o = THINP_SEND_OPTIONS_INIT;

	o.checkpoint_bytes = BS; /* a resume point after every block */
	o.resume_token = token;
	memset(b, 0, sizeof(*b));
	return thinp_send(e->pool, e->cat, dev, base, buf_write, b, &o);
}

/* Receive the first `len` bytes of `b` resumably; the token into `token`. */
static int receive_cut(struct pool_env *e, struct buf *b, size_t len, char *token,
		       uint64_t *id)
{
	thinp_receive_options o = THINP_RECEIVE_OPTIONS_INIT;
	size_t full = b->len;
	int r;

	o.flags = THINP_RECEIVE_RESUMABLE;
	o.token = token;
	o.token_size = THINP_STREAM_TOKEN_SIZE;
	b->len = len;
	b->pos = 0;
	r = thinp_receive(e->pool, e->cat, buf_read, b, &o, id);
	b->len = full;
	return r;
}

static void assert_visible_same(struct pool_env *e, struct state *before)
{
	struct state now;

	state_take(e, &now);
	assert_int_equal(now.nr_visible, before->nr_visible);
	assert_memory_equal(now.visible, before->visible, sizeof(now.visible));
	for (uint64_t i = 0; i < now.nr_visible; i++)
		assert_memory_equal(now.contents[i], before->contents[i], DEV_BYTES);
	state_free(&now);
}

/* A device received in pieces: each interrupted receive keeps it hidden and
 * gives a token, each resumed stream continues it, the last one publishes. */
static void test_resume(void **state)
{
	struct test_rng rng;
	struct pool_env a, b;
	uint8_t *models[MAX_SNAPS];
	char token[THINP_STREAM_TOKEN_SIZE];
	unsigned resumed = 0;
	(void)state;

	test_rng_init(&rng, suite_seed + 4);
	env_open(&a);
	env_open(&b);
	build_chain(&a, &rng, models);
	for (int k = 0; k < 2; k++) {
		uint64_t dev = LIVE + 1 + k, base = k ? LIVE + 1 : THINP_SEND_FULL, id;
		struct buf s;
		int pieces = 0, r;
		uint8_t *p;

		assert_int_equal(send_opts(&a, dev, base, NULL, &s), 0);
		for (;;) {
			struct state before;
			size_t cut = pieces < 4 ? test_rng_below(&rng, s.len) : s.len;

			state_take(&b, &before);
			r = receive_cut(&b, &s, cut, token, &id);
			if (r)
				assert_visible_same(&b, &before);
			state_free(&before);
			free(s.p);
			if (!r)
				break;
			assert_int_equal(r, -EPROTO);
			pieces++;
			resumed += token[0] != '\0';
			/* No resume point yet: start again. */
			assert_int_equal(send_opts(&a, dev, base, token[0] ? token : NULL, &s), 0);
		}
		p = read_dev(b.pool, id);
		assert_memory_equal(p, models[k], DEV_BYTES);
		free(p);
	}
	assert_true(resumed > 0);
	/* A resumed stream nobody here waits for, and a token for other devices. */
	{
		struct buf s, t;
		uint64_t id;
		char msg[256];

		assert_int_equal(send_opts(&a, LIVE + 3, LIVE + 2, NULL, &s), 0);
		/* Cut inside END: every checkpoint has been applied. */
		assert_true(receive_cut(&b, &s, s.len - 1, token, &id) < 0);
		assert_true(token[0] != '\0');
		assert_int_equal(send_opts(&a, LIVE + 4, LIVE + 3, token, &t), -EINVAL);
		assert_int_equal(send_opts(&a, LIVE + 3, LIVE + 2, token, &t), 0);
		free(s.p);
		{
			struct pool_env c;

			env_open(&c);
			assert_int_equal(do_receive(&c, &t, &id, msg, sizeof(msg)), -ESTALE);
			env_close(&c);
		}
		free(t.p);
	}
	for (int s = 0; s < MAX_SNAPS; s++)
		free(models[s]);
	env_close(&a);
	env_close(&b);
}

/* Devices without a catalog size are sent by their highest mapped block: a
 * snapshot that shrank must not keep its base's blocks past its end in B,
 * where a later, larger one would show them. */
static void test_shrinking_size(void **state)
{
	thinp_thin_options o = THINP_THIN_OPTIONS_INIT;
	struct pool_env a, b;
	uint8_t *blk = malloc(BS), *pa, *pb;
	uint64_t got[3];
	thinp_thin *t;
	char msg[256];
	(void)state;

	env_open(&a);
	env_open(&b);
	o.size = DEV_BYTES;
	memset(blk, 0x77, BS);
	assert_int_equal(thinp_pool_create_thin(a.pool, 1), 0);
	assert_int_equal(thinp_thin_open(&t, a.pool, 1, &o), 0);
	for (uint64_t v = 0; v <= 30; v++)
		assert_int_equal(thinp_thin_write(t, blk, BS, v * BS), 0);
	assert_int_equal(thinp_pool_create_snap(a.pool, 2, 1), 0);
	assert_int_equal(thinp_thin_discard(t, 11 * BS, 20 * BS), 0);
	assert_int_equal(thinp_pool_create_snap(a.pool, 3, 1), 0);
	memset(blk, 0x33, BS);
	assert_int_equal(thinp_thin_write(t, blk, BS, 25 * BS), 0);
	assert_int_equal(thinp_pool_create_snap(a.pool, 4, 1), 0);
	thinp_thin_close(t);
	for (int s = 0; s < 3; s++) {
		struct buf st;

		uint64_t base = s ? (uint64_t)(1 + s) : THINP_SEND_FULL;

		assert_int_equal(do_send(&a, (uint64_t)(2 + s), base, &st), 0);
		assert_int_equal(do_receive(&b, &st, &got[s], msg, sizeof(msg)), 0);
		free(st.p);
	}
	pa = read_dev(a.pool, 4);
	pb = read_dev(b.pool, got[2]);
	assert_memory_equal(pa, pb, 26 * BS);
	free(pa);
	free(pb);
	free(blk);
	env_close(&a);
	env_close(&b);
}

/* ---- thinp_backup: a pool its owner keeps writing ---------------------- */

#define OTHER 30u /* the owner's other device */

/* The owner: every stream write of the backup is preceded by a random
 * change of the snapshots' origin and of another device, committed, as the
 * kernel would go on meanwhile; with `flip` set, the owner also releases
 * the metadata snapshot on the first write, changes the other device for
 * certain (a random change may change nothing, and an unchanged pool's new
 * snapshot would be the same one), and reserves a snapshot again. */
struct owner {
	struct pool_env *e;
	struct test_rng *rng;
	thinp_thin *live, *other;
	uint8_t *live_model, *other_model;
	struct buf out;
	unsigned writes;
	bool flip;
};

static int owner_write(const void *p, size_t len, void *ctx)
{
	struct owner *o = ctx;

	random_op(o->rng, o->live, o->live_model);
	random_op(o->rng, o->other, o->other_model);
	assert_int_equal(thinp_thin_flush(o->live), 0);
	assert_int_equal(thinp_thin_flush(o->other), 0);
	assert_int_equal(thinp_pool_commit(o->e->pool), 0);
	if (o->flip && ++o->writes == 1) {
		assert_int_equal(thinp_pool_release_metadata_snap(o->e->pool), 0);
		memset(o->other_model, 0xee, BS);
		assert_int_equal(thinp_thin_write(o->other, o->other_model, BS, 0), 0);
		assert_int_equal(thinp_thin_flush(o->other), 0);
		assert_int_equal(thinp_pool_reserve_metadata_snap(o->e->pool), 0);
	}
	return buf_write(p, len, &o->out);
}

static void owner_open(struct owner *o, struct pool_env *e, struct test_rng *rng)
{
	thinp_thin_options to = THINP_THIN_OPTIONS_INIT;

	memset(o, 0, sizeof(*o));
	o->e = e;
	o->rng = rng;
	to.size = DEV_BYTES;
	assert_int_equal(thinp_pool_create_thin(e->pool, LIVE), 0);
	assert_int_equal(thinp_pool_create_thin(e->pool, OTHER), 0);
	assert_int_equal(thinp_thin_open(&o->live, e->pool, LIVE, &to), 0);
	assert_int_equal(thinp_thin_open(&o->other, e->pool, OTHER, &to), 0);
	o->live_model = calloc(1, DEV_BYTES);
	o->other_model = calloc(1, DEV_BYTES);
	for (unsigned i = 0; i < test_ops(30); i++)
		random_op(rng, o->live, o->live_model);
	assert_int_equal(thinp_thin_flush(o->live), 0);
}

static void owner_close(struct owner *o)
{
	thinp_thin_close(o->live);
	thinp_thin_close(o->other);
	free(o->live_model);
	free(o->other_model);
}

/* Snapshot @snap of A's origin, backed up (from @base) under a metadata
 * snapshot the owner reserves and writes around; the model of @snap into
 * @model, what thinp_backup reported into @res. */
static int owner_backup(struct owner *o, uint64_t snap, uint64_t base, uint8_t *model,
			thinp_backup_result *res)
{
	thinp_backup_options bo = THINP_BACKUP_OPTIONS_INIT;
	char msg[256];
	int r;

	assert_int_equal(thinp_pool_create_snap(o->e->pool, snap, LIVE), 0);
	memcpy(model, o->live_model, DEV_BYTES);
	assert_int_equal(thinp_pool_reserve_metadata_snap(o->e->pool), 0);
	memset(&o->out, 0, sizeof(o->out));
	memcpy(bo.pool_id, "pool A, test", 12);
	bo.size = DEV_BYTES;
	bo.checkpoint_bytes = 3 * BS; /* many stream writes, many owner commits */
	bo.errbuf = msg;
	bo.errbuf_size = sizeof(msg);
	*res = (thinp_backup_result)THINP_BACKUP_RESULT_INIT;
	r = thinp_backup(o->e->meta, o->e->data, snap, base, owner_write, o, &bo, res);
	assert_int_equal(res->struct_size, sizeof(*res));
	assert_int_equal(thinp_pool_release_metadata_snap(o->e->pool), 0);
	return r;
}

/* Full, then incremental backups of a pool written during each: every one
 * received into B reads as its snapshot did, with the derived guids. */
static void test_backup_live(void **state)
{
	struct test_rng rng;
	(void)state;

	test_rng_init(&rng, suite_seed ^ 0xb4c0);
	for (unsigned round = 0; round < test_ops(3); round++) {
		struct pool_env a, b;
		struct owner o;
		uint8_t *model = malloc(DEV_BYTES), *p, guid[16], gb[16];
		uint8_t pool_id[16] = "pool A, test";
		thinp_meta_device d = THINP_META_DEVICE_INIT;
		thinp_thin_status ts = THINP_THIN_STATUS_INIT;
		thinp_backup_result res;
		uint64_t got, base = THINP_BACKUP_FULL;
		char msg[256];

		env_open(&a);
		env_open(&b);
		owner_open(&o, &a, &rng);
		for (uint64_t snap = 2; snap < 2 + 4; snap++) {
			assert_int_equal(owner_backup(&o, snap, base, model, &res), 0);
			assert_int_not_equal(res.held_root, 0);
			/* A full backup sends every block the snapshot maps. */
			if (base == THINP_BACKUP_FULL)
				assert_int_equal(res.data_bytes,
						 distinct_blocks(a.pool, snap, snap) * BS);
			assert_true(res.data_bytes < o.out.len);
			assert_int_equal(do_receive(&b, &o.out, &got, msg, sizeof(msg)), 0);
			p = read_dev(b.pool, got);
			assert_memory_equal(p, model, DEV_BYTES);
			free(p);
			p = read_dev(a.pool, snap); /* the owner never touched it */
			assert_memory_equal(p, model, DEV_BYTES);
			free(p);
			/* The stream named it by its derived guid. */
			assert_int_equal(thinp_pool_get_thin_status(a.pool, snap, &ts), 0);
			d.dev_id = snap;
			d.creation_time = ts.creation_time;
			d.transaction_id = ts.transaction_id;
			thinp_backup_guid(pool_id, &d, guid);
			guid_of(b.cat, got, gb);
			assert_memory_equal(gb, guid, 16);
			free(o.out.p);
			base = snap;
		}
		owner_close(&o);
		free(model);
		env_close(&a);
		env_close(&b);
	}
}

/* A snapshot released (and another reserved) during the backup cuts the
 * stream (-ESTALE, the receiver sees it truncated); nothing held and a
 * device the held root does not have are refused before any output. */
static void test_backup_refusals(void **state)
{
	thinp_backup_options bo = THINP_BACKUP_OPTIONS_INIT;
	struct test_rng rng;
	struct pool_env a, b;
	struct owner o;
	uint8_t *model = malloc(DEV_BYTES);
	thinp_backup_result res;
	uint64_t got;
	struct state before;
	char msg[256];
	(void)state;

	test_rng_init(&rng, suite_seed ^ 0x57a1e);
	env_open(&a);
	env_open(&b);
	owner_open(&o, &a, &rng);
	o.flip = true;
	assert_int_equal(owner_backup(&o, 2, THINP_BACKUP_FULL, model, &res), -ESTALE);
	assert_int_not_equal(res.held_root, 0); /* filled after an error too */
	state_take(&b, &before);
	assert_int_not_equal(do_receive(&b, &o.out, &got, msg, sizeof(msg)), 0);
	state_assert_same(&b, &before);
	state_free(&before);
	free(o.out.p);

	memset(&o.out, 0, sizeof(o.out));
	bo.errbuf = msg;
	bo.errbuf_size = sizeof(msg);
	res.held_root = 1;
	assert_int_equal(thinp_backup(a.meta, a.data, 2, THINP_BACKUP_FULL, buf_write, &o.out,
				      &bo, &res), -ENODATA);
	assert_non_null(strstr(msg, "no metadata snapshot is held"));
	assert_int_equal(res.held_root, 0);
	/* Structs of another version or too small: refused, the result untouched. */
	res.struct_size = sizeof(res) - 1;
	assert_int_equal(thinp_backup(a.meta, a.data, 2, THINP_BACKUP_FULL, buf_write, &o.out,
				      &bo, &res), -EINVAL);
	res.struct_size = sizeof(res);
	bo.version++;
	assert_int_equal(thinp_backup(a.meta, a.data, 2, THINP_BACKUP_FULL, buf_write, &o.out,
				      &bo, &res), -EINVAL);
	bo.version--;
	bo.struct_size--;
	assert_int_equal(thinp_backup(a.meta, a.data, 2, THINP_BACKUP_FULL, buf_write, &o.out,
				      &bo, &res), -EINVAL);
	bo.struct_size++;
	assert_int_equal(thinp_pool_reserve_metadata_snap(a.pool), 0);
	assert_int_equal(thinp_pool_create_snap(a.pool, 3, LIVE), 0);
	assert_int_equal(thinp_backup(a.meta, a.data, 3, THINP_BACKUP_FULL, buf_write, &o.out,
				      &bo, NULL), -ENODATA);
	assert_non_null(strstr(msg, "not in the held metadata snapshot"));
	assert_int_equal(thinp_backup(a.meta, a.data, 2, 3, buf_write, &o.out, &bo, NULL), -ENODATA);
	assert_int_equal(o.out.len, 0);
	assert_int_equal(thinp_pool_release_metadata_snap(a.pool), 0);
	owner_close(&o);
	free(model);
	env_close(&a);
	env_close(&b);
}

/* The first PARTIAL entry's device id. */
static uint64_t partial_id(thinp_catalog *cat)
{
	thinp_catalog_entry *e = malloc(sizeof(*e));
	uint64_t id = UINT64_MAX;

	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t next = 0; id == UINT64_MAX && thinp_catalog_next(cat, next, e) == 0;
	     next = e->id + 1)
		if (e->flags & THINP_CATALOG_PARTIAL)
			id = e->id;
	free(e);
	return id;
}

/* A partial receive's token, made again from the catalog, is the one the
 * interrupted receive gave and finishes it; abort deletes a partial device
 * and its entry and refuses published ones. */
static void test_partial_api(void **state)
{
	struct test_rng rng;
	struct pool_env a, b;
	uint8_t *models[MAX_SNAPS], *p;
	char token[THINP_STREAM_TOKEN_SIZE], again[THINP_STREAM_TOKEN_SIZE];
	uint64_t pid, q, id;
	struct buf s;
	(void)state;

	test_rng_init(&rng, suite_seed + 7);
	env_open(&a);
	env_open(&b);
	build_chain(&a, &rng, models);
	assert_int_equal(send_opts(&a, LIVE + 3, THINP_SEND_FULL, NULL, &s), 0);
	assert_int_equal(do_receive(&b, &s, &q, token, sizeof(token)), 0);
	free(s.p);
	assert_int_equal(send_opts(&a, LIVE + 1, THINP_SEND_FULL, NULL, &s), 0);
	assert_int_equal(receive_cut(&b, &s, s.len - 1, token, &id), -EPROTO);
	free(s.p);
	assert_true(token[0] != '\0');
	pid = partial_id(b.cat);
	assert_int_not_equal(pid, UINT64_MAX);
	assert_int_equal(thinp_receive_token(b.pool, b.cat, pid, again, sizeof(again)), 0);
	assert_string_equal(again, token);
	assert_int_equal(thinp_receive_token(b.pool, b.cat, pid, again, 10), -EINVAL);
	assert_int_equal(thinp_receive_token(b.pool, b.cat, q, again, sizeof(again)), -EINVAL);
	assert_int_equal(thinp_receive_abort(b.pool, b.cat, q), -EINVAL);
	/* Resumed from the token made again: the device as sent. */
	assert_int_equal(send_opts(&a, LIVE + 1, THINP_SEND_FULL, again, &s), 0);
	assert_int_equal(receive_cut(&b, &s, s.len, token, &id), 0);
	free(s.p);
	assert_int_equal(id, pid);
	p = read_dev(b.pool, id);
	assert_memory_equal(p, models[0], DEV_BYTES);
	free(p);
	/* Another one cut, then aborted. Its stream must hold a checkpoint
	 * before the cut whatever the random chain mapped: checkpoints follow
	 * DATA records, and a device mapped without a hole is one record of
	 * up to 16 MiB. Give it runs of one block at its start (nothing below
	 * reads it). */
	{
		thinp_thin_options to = THINP_THIN_OPTIONS_INIT;
		uint8_t *blk = malloc(BS);
		thinp_thin *t;

		to.size = DEV_BYTES;
		memset(blk, 0xa5, BS);
		assert_int_equal(thinp_thin_open(&t, a.pool, LIVE + 5, &to), 0);
		for (uint64_t k = 0; k < 5; k++) {
			assert_int_equal(thinp_thin_write(t, blk, BS, 2 * k * BS), 0);
			assert_int_equal(thinp_thin_discard(t, BS, (2 * k + 1) * BS), 0);
		}
		thinp_thin_close(t);
		free(blk);
	}
	assert_int_equal(send_opts(&a, LIVE + 5, THINP_SEND_FULL, NULL, &s), 0);
	assert_int_equal(receive_cut(&b, &s, s.len / 2 + s.len / 4, token, &id), -EPROTO);
	free(s.p);
	assert_true(token[0] != '\0');
	pid = partial_id(b.cat);
	assert_int_equal(thinp_receive_abort(b.pool, b.cat, pid), 0);
	assert_int_equal(partial_id(b.cat), UINT64_MAX);
	{
		thinp_thin_status st = THINP_THIN_STATUS_INIT;
		thinp_catalog_entry *e = malloc(sizeof(*e));

		*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
		assert_int_equal(thinp_pool_get_thin_status(b.pool, pid, &st), -ENODATA);
		assert_int_equal(thinp_catalog_get(b.cat, pid, e), -ENODATA);
		free(e);
	}
	assert_int_equal(thinp_receive_abort(b.pool, b.cat, pid), -ENODATA);
	assert_int_equal(thinp_receive_token(b.pool, b.cat, pid, again, sizeof(again)), -ENODATA);
	p = read_dev(b.pool, q); /* the published device is untouched */
	assert_memory_equal(p, models[2], DEV_BYTES);
	free(p);
	for (int k = 0; k < MAX_SNAPS; k++)
		free(models[k]);
	env_close(&a);
	env_close(&b);
}

/* ---- Power cuts during a resumable receive, then the resume ----------- */

/* The entry id of the visible device with @guid, or UINT64_MAX. */
static uint64_t visible_id(thinp_catalog *cat, const uint8_t guid[16])
{
	thinp_catalog_entry *e = malloc(sizeof(*e));
	uint64_t id = UINT64_MAX;

	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t next = 0; id == UINT64_MAX && thinp_catalog_next(cat, next, e) == 0;
	     next = e->id + 1)
		if (!(e->flags & (THINP_CATALOG_PARTIAL | THINP_CATALOG_ANCHOR)) &&
		    !memcmp(e->guid, guid, 16))
			id = e->id;
	free(e);
	return id;
}

/* thin_check on the metadata image @meta holds (skipped if not installed). */
static void assert_thin_check(thinp_io *meta, uint64_t n)
{
	char path[512];
	uint64_t size;
	uint8_t *img;
	FILE *f;
	int r;

	if (access("/usr/sbin/thin_check", X_OK))
		return;
	assert_int_equal(thinp_io_size(meta, &size), 0);
	img = malloc(size);
	assert_int_equal(thinp_io_read(meta, img, size, 0, 0), 0);
	snprintf(path, sizeof(path), "%s/crash_resume.img", test_tmpdir());
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(img, 1, size, f), size);
	fclose(f);
	free(img);
	r = thin_check_path(path);
	if (r)
		fail_msg("cut at %llu: thin_check failed (%d) on %s", (unsigned long long)n, r, path);
}

struct resume_count {
	uint64_t resumed, restarted, landed;
};

/*
 * After a cut during the resumable receive of A's @dev (from @base) into B,
 * finish it as a user does: nothing to do if it was published; else resume
 * the partial receive from the token its entry keeps; else (no resume point
 * was durable) abort the partial device, if one was kept, and send again.
 * Returns the published device's id.
 */
static uint64_t finish_receive(struct pool_env *a, struct pool_env *b, uint64_t dev,
			       uint64_t base, const uint8_t guid[16], struct resume_count *rc)
{
	char token[THINP_STREAM_TOKEN_SIZE], again[THINP_STREAM_TOKEN_SIZE];
	uint64_t pid = partial_id(b->cat), id = visible_id(b->cat, guid);
	struct buf s;
	int r;

	if (id != UINT64_MAX) {
		assert_int_equal(pid, UINT64_MAX);
		rc->landed++;
		return id;
	}
	r = pid == UINT64_MAX ? -ENODATA : thinp_receive_token(b->pool, b->cat, pid, token,
								sizeof(token));
	if (r == 0) {
		assert_int_equal(send_opts(a, dev, base, token, &s), 0);
		assert_int_equal(receive_cut(b, &s, s.len, again, &id), 0);
		assert_int_equal(id, pid);
		rc->resumed++;
	} else {
		assert_int_equal(r, -ENODATA);
		if (pid != UINT64_MAX)
			assert_int_equal(thinp_receive_abort(b->pool, b->cat, pid), 0);
		assert_int_equal(send_opts(a, dev, base, NULL, &s), 0);
		assert_int_equal(receive_cut(b, &s, s.len, again, &id), 0);
		rc->restarted++;
	}
	free(s.p);
	return id;
}

/*
 * A power cut at every write, flush, discard or write-zeroes of B's
 * metadata, data and catalog devices during a resumable receive (a
 * checkpoint after every block), full and incremental, in a random fault
 * mode each: after the reboot the visible devices are B's old ones (or the
 * new one complete), the metadata is thin_check clean, and finishing the
 * receive (resume, or restart if no resume point was durable) gives the
 * sent device, its guid, no partial receive left, and A's sharing (B's data
 * blocks used are the distinct blocks A's chain maps). THINP_TEST_SHORT
 * cuts at every test_short()-th request (from a random first one).
 */
static void test_crash_resume(void **state)
{
	static const int modes[] = { THINP_IO_FAULT_CUT_DROP, THINP_IO_FAULT_CUT_KEEP,
				     THINP_IO_FAULT_CUT_RANDOM, THINP_IO_FAULT_CUT_TORN };
	struct test_rng rng;
	struct pool_env a;
	struct resume_count rc = { 0, 0, 0 };
	uint8_t *models[MAX_SNAPS], guid[2][16];
	uint64_t used[2], step = test_short();
	struct buf s[2];
	(void)state;

	test_rng_init(&rng, suite_seed + 8);
	env_open(&a);
	build_chain(&a, &rng, models);
	for (int k = 0; k < 2; k++) {
		assert_int_equal(send_opts(&a, LIVE + 1 + k, k ? LIVE + 1 : THINP_SEND_FULL, NULL,
					   &s[k]), 0);
		guid_of(a.cat, LIVE + 1 + k, guid[k]);
		used[k] = distinct_blocks(a.pool, LIVE + 1, LIVE + 1 + k);
	}
	for (int k = 0; k < 2; k++) {
		uint64_t dev = LIVE + 1 + k, base = k ? LIVE + 1 : THINP_SEND_FULL;
		bool fired = true;

		for (uint64_t n = 1 + test_rng_below(&rng, step); fired; n += step) {
			thinp_pool_status st = THINP_POOL_STATUS_INIT;
			char token[THINP_STREAM_TOKEN_SIZE], msg[256];
			struct crash_env ce;
			struct pool_env after;
			struct state before;
			uint64_t id;
			uint8_t *p;
			int r;

			int mode = modes[test_rng_below(&rng, 4)];

			crash_env_open(&ce, mode, test_rng_next(&rng));
			if (k)
				assert_int_equal(do_receive(&ce.b, &s[0], &id, msg, sizeof(msg)), 0);
			state_take(&ce.b, &before);
			power_arm(ce.pw, n);
			r = receive_cut(&ce.b, &s[k], s[k].len, token, &id);
			fired = power_is_cut(ce.pw);
			if (!fired) {
				assert_int_equal(r, 0); /* it ran to the end before request n */
				power_cut_now(ce.pw);
			}
			crash_env_reopen(&ce, &after);
			assert_crash_outcome(&after, &before, guid[k], models[k]);
			if (n % (4 * step) < step)
				assert_thin_check(after.meta, n);
			id = finish_receive(&a, &after, dev, base, guid[k], &rc);
			p = read_dev(after.pool, id);
			assert_memory_equal(p, models[k], DEV_BYTES);
			free(p);
			assert_int_equal(visible_id(after.cat, guid[k]), id);
			assert_int_equal(partial_id(after.cat), UINT64_MAX);
			assert_int_equal(thinp_pool_get_status(after.pool, &st), 0);
			if (st.data_used != used[k])
				fail_msg("cut at %llu of the %s receive: %llu data blocks used, "
					 "%llu expected", (unsigned long long)n, k ? "incremental" : "full",
					 (unsigned long long)st.data_used, (unsigned long long)used[k]);
			if (n % (4 * step) < step)
				assert_thin_check(after.meta, n);
			state_free(&before);
			env_close(&after);
		}
	}
	print_message("crash_resume: %llu resumed, %llu restarted, %llu published before the cut\n",
		      (unsigned long long)rc.resumed, (unsigned long long)rc.restarted,
		      (unsigned long long)rc.landed);
	assert_true(rc.resumed > 0);
	assert_true(rc.restarted > 0);
	for (int i = 0; i < MAX_SNAPS; i++)
		free(models[i]);
	free(s[0].p);
	free(s[1].p);
	env_close(&a);
}

/* ---- Anchors: kept while they serve, dropped after ------------------- */

/* Data blocks the visible devices of @e map, each counted once. */
static uint64_t visible_blocks(struct pool_env *e)
{
	thinp_catalog_entry *ce = malloc(sizeof(*ce));
	uint8_t *seen = calloc(DATA_BLOCKS, 1);
	thinp_mapping m = THINP_MAPPING_INIT;
	uint64_t n = 0, vb;

	*ce = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t id = 0; thinp_catalog_next(e->cat, id, ce) == 0; id = ce->id + 1) {
		if (ce->flags & (THINP_CATALOG_PARTIAL | THINP_CATALOG_ANCHOR))
			continue;
		for (uint64_t v = 0; thinp_pool_thin_next_map(e->pool, ce->id, v, &vb, &m) == 0;
		     v = vb + 1)
			if (!seen[m.data_block]++)
				n++;
	}
	free(seen);
	free(ce);
	return n;
}

/* How many anchor entries B has, and how many of them are anchors of @guid
 * (NULL: all). */
static uint64_t anchors(thinp_catalog *cat, const uint8_t *guid)
{
	thinp_catalog_entry *ce = malloc(sizeof(*ce));
	uint64_t n = 0;

	*ce = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t id = 0; thinp_catalog_next(cat, id, ce) == 0; id = ce->id + 1)
		n += (ce->flags & THINP_CATALOG_ANCHOR) &&
		     (!guid || !memcmp(ce->parent_guid, guid, 16));
	free(ce);
	return n;
}

/* B's data blocks are those its visible devices map: no anchor holds any
 * block of its own. */
static void assert_no_leak(struct pool_env *b)
{
	thinp_pool_status st = THINP_POOL_STATUS_INIT;

	assert_int_equal(thinp_pool_get_status(b->pool, &st), 0);
	assert_int_equal(st.data_used, visible_blocks(b));
}

static void delete_msg(struct pool_env *b, uint64_t id)
{
	char msg[64];

	snprintf(msg, sizeof(msg), "delete %llu", (unsigned long long)id);
	assert_int_equal(thinp_catalog_message(b->cat, b->pool, msg, 0), 0);
}

/*
 * The anchor lifecycle (docs/REPLICA.md, "Anchors"): kept while their
 * device is there unmodified (prune drops none, incrementals go on); a
 * modified device's anchor is pruned, a device deleted through the catalog
 * takes its anchor along, one deleted behind the library's back leaves it
 * to prune, and a device received again after such a delete drops the old
 * anchor of its guid; in the end, everything deleted, the pool is empty.
 */
static void test_anchor_lifecycle(void **state)
{
	thinp_thin_options to = THINP_THIN_OPTIONS_INIT;
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	struct test_rng rng;
	struct fixture f;
	uint8_t g[MAX_SNAPS][16], blk[512], *p;
	uint64_t dropped, id;
	struct buf s;
	thinp_thin *t;
	char msg[256];
	(void)state;

	test_rng_init(&rng, suite_seed + 9);
	fixture_open(&f, &rng);
	for (int k = 0; k < MAX_SNAPS; k++)
		guid_of(f.b.cat, f.got[k], g[k]);
	assert_int_equal(anchors(f.b.cat, NULL), MAX_SNAPS);
	assert_no_leak(&f.b);
	assert_int_equal(thinp_receive_prune(f.b.pool, f.b.cat, &dropped), 0);
	assert_int_equal(dropped, 0);

	/* The last one modified: refused as a base, its anchor pruned. */
	memset(blk, 0xa5, sizeof(blk));
	to.size = DEV_BYTES;
	assert_int_equal(thinp_thin_open(&t, f.b.pool, f.got[MAX_SNAPS - 1], &to), 0);
	assert_int_equal(thinp_thin_write(t, blk, sizeof(blk), 0), 0);
	thinp_thin_close(t);
	assert_int_equal(thinp_pool_create_snap(f.a.pool, 40, LIVE + MAX_SNAPS), 0);
	assert_int_equal(do_send(&f.a, 40, LIVE + MAX_SNAPS, &s), 0);
	assert_int_equal(do_receive(&f.b, &s, &id, msg, sizeof(msg)), -ESTALE);
	assert_int_equal(thinp_receive_prune(f.b.pool, f.b.cat, &dropped), 0);
	assert_int_equal(dropped, 1);
	assert_int_equal(anchors(f.b.cat, g[MAX_SNAPS - 1]), 0);
	assert_no_leak(&f.b);
	assert_int_equal(do_receive(&f.b, &s, &id, msg, sizeof(msg)), -ESTALE);
	free(s.p);

	/* Deleted through the catalog: the anchor goes along. */
	delete_msg(&f.b, f.got[4]);
	assert_int_equal(anchors(f.b.cat, g[4]), 0);
	assert_int_equal(anchors(f.b.cat, NULL), MAX_SNAPS - 2);
	assert_no_leak(&f.b);

	/* Deleted behind the library's back: prune drops its anchor. */
	assert_int_equal(thinp_pool_delete_thin(f.b.pool, f.got[3]), 0);
	assert_int_equal(anchors(f.b.cat, g[3]), 1);
	assert_int_equal(thinp_receive_prune(f.b.pool, f.b.cat, &dropped), 0);
	assert_int_equal(dropped, 1);
	assert_int_equal(anchors(f.b.cat, g[3]), 0);
	assert_no_leak(&f.b);

	/* Deleted so, then received again: the stale entry is no replay, the
	 * new device's anchor replaces the old one, and the next incremental
	 * applies onto it. */
	assert_int_equal(thinp_pool_delete_thin(f.b.pool, f.got[2]), 0);
	assert_int_equal(do_send(&f.a, LIVE + 3, THINP_SEND_FULL, &s), 0);
	assert_int_equal(do_receive(&f.b, &s, &id, msg, sizeof(msg)), 0);
	free(s.p);
	p = read_dev(f.b.pool, id); /* received, not taken for a replay */
	assert_memory_equal(p, f.models[2], DEV_BYTES);
	free(p);
	assert_int_equal(anchors(f.b.cat, g[2]), 1);
	assert_int_equal(do_send(&f.a, LIVE + 4, LIVE + 3, &s), 0);
	assert_int_equal(do_receive(&f.b, &s, &f.got[3], msg, sizeof(msg)), 0);
	free(s.p);
	p = read_dev(f.b.pool, f.got[3]);
	assert_memory_equal(p, f.models[3], DEV_BYTES);
	free(p);
	f.got[2] = id;
	assert_int_equal(thinp_catalog_reconcile(f.b.cat, f.b.pool), 0);
	assert_no_leak(&f.b);
	assert_int_equal(thinp_receive_prune(f.b.pool, f.b.cat, &dropped), 0);
	assert_int_equal(dropped, 0);

	/* Everything deleted through the catalog: nothing left, no block used. */
	for (int k = 0; k < MAX_SNAPS; k++)
		if (k != 4)
			delete_msg(&f.b, f.got[k]);
	assert_int_equal(thinp_catalog_count(f.b.cat), 0);
	assert_int_equal(thinp_pool_get_status(f.b.pool, &st), 0);
	assert_int_equal(st.data_used, 0);
	for (uint64_t i = 0; i < 64; i++) {
		thinp_thin_status ts = THINP_THIN_STATUS_INIT;

		assert_int_equal(thinp_pool_get_thin_status(f.b.pool, i, &ts), -ENODATA);
	}
	fixture_close(&f);
}

/* ---- External origins ------------------------------------------------ */

/* Ends inside a block: the origin reads as zeroes past it. */
#define ORIGIN_BYTES ((uint64_t)DEV_BYTES - 5 * BS + 1536)

/* A file @name in the test directory of @size bytes from seed @seed, its
 * path into @path; returns its bytes zero-padded to DEV_BYTES. */
static uint8_t *origin_file(const char *name, uint64_t size, uint64_t seed, char *path,
			    size_t psize)
{
	uint8_t *p = calloc(1, DEV_BYTES);
	struct test_rng rng;
	FILE *f;

	assert_non_null(p);
	test_rng_init(&rng, seed);
	for (uint64_t i = 0; i < size; i++)
		p[i] = (uint8_t)test_rng_next(&rng);
	snprintf(path, psize, "%s/%s", test_tmpdir(), name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, size, f), size);
	fclose(f);
	return p;
}

/* The records of each type in stream @b (its header into @hdr). */
static void count_records(struct buf *b, thinp_stream_header *hdr, uint64_t counts[6])
{
	const thinp_stream_header *h;
	const thinp_stream_record *rec;
	thinp_stream_reader *rd;

	memset(counts, 0, 6 * sizeof(counts[0]));
	b->pos = 0;
	assert_int_equal(thinp_stream_reader_new(&rd, buf_read, b), 0);
	assert_int_equal(thinp_stream_reader_header(rd, &h), 0);
	*hdr = *h;
	do {
		assert_int_equal(thinp_stream_reader_next(rd, &rec), 0);
		counts[rec->type]++;
	} while (rec->type != THINP_STREAM_END);
	thinp_stream_reader_free(rd);
}

/* A: device LIVE over the origin at @path (@under its bytes), three
 * snapshots (entries inherited: the same origin) modelled in models[]:
 * random changes, and blocks 2-3 zeroed whole (provisioned zeroes hiding
 * the origin), then block 2 discarded again (the origin exposed). */
static void build_origin_chain(struct pool_env *a, struct test_rng *rng, const char *path,
			       const uint8_t *under, uint8_t **models)
{
	thinp_thin_options o = THINP_THIN_OPTIONS_INIT;
	thinp_catalog_entry *ce = malloc(sizeof(*ce));
	uint8_t *model = malloc(DEV_BYTES);
	thinp_io *origin;
	thinp_thin *t;
	uint8_t *got;

	memcpy(model, under, DEV_BYTES);
	assert_int_equal(thinp_io_open_file(&origin, path, THINP_IO_RDONLY), 0);
	assert_int_equal(thinp_pool_create_thin(a->pool, LIVE), 0);
	*ce = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	ce->id = LIVE;
	ce->size = DEV_BYTES;
	strcpy(ce->origin, path);
	ce->origin_size = ORIGIN_BYTES;
	assert_int_equal(thinp_catalog_new_guid(ce->guid), 0);
	assert_int_equal(thinp_catalog_new_guid(ce->origin_guid), 0);
	assert_int_equal(thinp_catalog_attach(a->cat, a->pool, ce), 0);
	o.size = DEV_BYTES;
	o.origin = origin;
	assert_int_equal(thinp_thin_open(&t, a->pool, LIVE, &o), 0);
	for (int s = 0; s < 3; s++) {
		for (unsigned i = 0; i < 8 * test_scale(); i++)
			random_op_over(rng, t, model, under);
		if (s == 0) {
			assert_int_equal(thinp_thin_write_zeroes(t, 2 * BS, 2 * BS), 0);
			memset(model + 2 * BS, 0, 2 * BS);
		} else if (s == 1) {
			assert_int_equal(thinp_thin_discard(t, BS, 2 * BS), 0);
			memcpy(model + 2 * BS, under + 2 * BS, BS);
		}
		assert_int_equal(thinp_thin_flush(t), 0);
		assert_int_equal(thinp_pool_create_snap(a->pool, LIVE + 1 + s, LIVE), 0);
		assert_int_equal(thinp_catalog_inherit(a->cat, LIVE, ce), 0);
		ce->id = LIVE + 1 + s;
		assert_int_equal(thinp_catalog_attach(a->cat, a->pool, ce), 0);
		models[s] = malloc(DEV_BYTES);
		memcpy(models[s], model, DEV_BYTES);
		got = read_dev_via(a->pool, LIVE + 1 + s, origin);
		assert_memory_equal(got, model, DEV_BYTES);
		free(got);
	}
	assert_int_equal(thinp_pool_commit(a->pool), 0);
	thinp_thin_close(t);
	thinp_io_close(origin);
	free(model);
	free(ce);
}

/* Device @id's entry in @cat. */
static void entry_of(thinp_catalog *cat, uint64_t id, thinp_catalog_entry *e)
{
	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	assert_int_equal(thinp_catalog_get(cat, id, e), 0);
}

/* The origin-backed chain sent full and incrementally into B, where a copy
 * of the origin is registered: refused (nothing changes) without an origin,
 * with another guid, with another size; then each received device reads as
 * its model through B's copy; and a device whose origin has no guid is not
 * sent. */
static void test_origin(void **state)
{
	struct pool_env a, b;
	struct test_rng rng;
	char pa[512], pb[512], pshort[512], msg[256];
	uint8_t *under, *copy, *shortb, *models[3], wrong[16];
	uint64_t got[3], counts[6], id;
	thinp_stream_header hdr;
	thinp_catalog_entry *src = malloc(sizeof(*src)), *dst = malloc(sizeof(*dst));
	struct state before;
	struct buf st;
	thinp_io *ob;

	(void)state;
	test_rng_init(&rng, suite_seed ^ 0x0519);
	under = origin_file("origin_a", ORIGIN_BYTES, suite_seed, pa, sizeof(pa));
	copy = origin_file("origin_b", ORIGIN_BYTES, suite_seed, pb, sizeof(pb));
	shortb = origin_file("origin_short", ORIGIN_BYTES - 512, suite_seed, pshort, sizeof(pshort));
	env_open(&a);
	env_open(&b);
	build_origin_chain(&a, &rng, pa, under, models);
	entry_of(a.cat, LIVE + 1, src);

	assert_int_equal(do_send(&a, LIVE + 1, THINP_SEND_FULL, &st), 0);
	count_records(&st, &hdr, counts);
	assert_int_equal(hdr.unmapped, THINP_STREAM_UNMAPPED_ORIGIN);
	assert_memory_equal(hdr.origin_guid, src->origin_guid, 16);
	assert_int_equal(hdr.origin_size, ORIGIN_BYTES);
	assert_true(counts[THINP_STREAM_ZERO] >= 1); /* blocks 2-3: zeroes over the origin */

	/* Refusals: no origin, another guid, another size. */
	state_take(&b, &before);
	assert_int_equal(do_receive(&b, &st, &id, msg, sizeof(msg)), -ENODATA);
	assert_non_null(strstr(msg, "no origin here"));
	state_assert_same(&b, &before);
	assert_int_equal(thinp_catalog_new_guid(wrong), 0);
	assert_int_equal(receive_origin(&b, &st, pb, wrong, &id, msg, sizeof(msg)), -ENODATA);
	assert_non_null(strstr(msg, "origin guid"));
	state_assert_same(&b, &before);
	assert_int_equal(receive_origin(&b, &st, pshort, NULL, &id, msg, sizeof(msg)), -ENODATA);
	assert_non_null(strstr(msg, "bytes"));
	state_assert_same(&b, &before);
	state_free(&before);

	/* Full with B's copy named, then the incrementals, which find it by
	 * its guid in B's catalog. */
	assert_int_equal(receive_origin(&b, &st, pb, src->origin_guid, &got[0], msg, sizeof(msg)), 0);
	free(st.p);
	for (int s = 1; s < 3; s++) {
		assert_int_equal(do_send(&a, LIVE + 1 + s, LIVE + s, &st), 0);
		assert_int_equal(do_receive(&b, &st, &got[s], msg, sizeof(msg)), 0);
		free(st.p);
	}
	assert_int_equal(thinp_io_open_file(&ob, pb, THINP_IO_RDONLY), 0);
	for (int s = 0; s < 3; s++) {
		uint8_t *p = read_dev_via(b.pool, got[s], ob);

		assert_memory_equal(p, models[s], DEV_BYTES);
		free(p);
		entry_of(b.cat, got[s], dst);
		assert_string_equal(dst->origin, pb);
		assert_memory_equal(dst->origin_guid, src->origin_guid, 16);
		assert_int_equal(dst->origin_size, ORIGIN_BYTES);
	}
	thinp_io_close(ob);

	/* An origin attached without an identity (entry version 2) is not sent. */
	entry_of(a.cat, LIVE, src);
	memset(src->origin_guid, 0, 16);
	assert_int_equal(thinp_catalog_set(a.cat, src), 0);
	assert_int_equal(do_send(&a, LIVE, THINP_SEND_FULL, &st), -EOPNOTSUPP);
	free(st.p);

	assert_int_equal(thinp_pool_commit(b.pool), 0);
	assert_thin_check(a.meta, 0);
	assert_thin_check(b.meta, 1);
	for (int s = 0; s < 3; s++)
		free(models[s]);
	free(under);
	free(copy);
	free(shortb);
	free(src);
	free(dst);
	env_close(&a);
	env_close(&b);
}

/* An origin named for a stream without one is refused: the claim would be
 * recorded for a device that never reads it. */
static void test_origin_not_needed(void **state)
{
	struct pool_env a, b;
	char path[512], msg[256];
	uint8_t *bytes;
	struct state before;
	struct buf st;
	uint64_t id;

	(void)state;
	bytes = origin_file("origin_unused", ORIGIN_BYTES, 3, path, sizeof(path));
	env_open(&a);
	env_open(&b);
	assert_int_equal(thinp_pool_create_thin(a.pool, LIVE), 0);
	assert_int_equal(do_send(&a, LIVE, THINP_SEND_FULL, &st), 0);
	state_take(&b, &before);
	assert_int_equal(receive_origin(&b, &st, path, NULL, &id, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "no external origin"));
	state_assert_same(&b, &before);
	state_free(&before);
	assert_int_equal(do_receive(&b, &st, &id, msg, sizeof(msg)), 0);
	free(st.p);
	free(bytes);
	env_close(&a);
	env_close(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_random),
		cmocka_unit_test(test_damage),
		cmocka_unit_test(test_base_and_replay),
		cmocka_unit_test(test_block_size),
		cmocka_unit_test(test_crash),
		cmocka_unit_test(test_resume),
		cmocka_unit_test(test_shrinking_size),
		cmocka_unit_test(test_partial_api),
		cmocka_unit_test(test_crash_resume),
		cmocka_unit_test(test_anchor_lifecycle),
		cmocka_unit_test(test_backup_live),
		cmocka_unit_test(test_backup_refusals),
		cmocka_unit_test(test_origin),
		cmocka_unit_test(test_origin_not_needed),
	};

	suite_seed = test_seed("test_replica");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
