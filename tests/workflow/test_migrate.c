/*
 * Migration (migrate.h) against a byte model: a device written at random
 * between rounds arrives whole, only its mapped blocks move, the source goes
 * after the switch; a family arrives with its sharing; a power cut at every
 * write and flush of either pool, then a rerun, ends at the same result with
 * the source usable and at most the complete copy visible in between;
 * the same for a family, whose copies become visible together; pause and
 * resume from another thread; cancel, stop and rerun; the rate limit as a
 * lower bound on the time.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/power.h"
#include "common/testutil.h"
#include "thin/helpers.h"
#include <libthinp/thinp.h>
#include <libthinp/testing.h>
#include <libthinp/meta.h>

#define BS (64u * 1024) /* data block size */
#define NB 32u          /* blocks per device */
#define DEV_BYTES ((uint64_t)NB * BS)
#define DATA_BLOCKS 1024u
#define LIVE 1u
#define NDEV 6          /* source meta, data, catalog; destination the same */

static uint64_t suite_seed;

/* Two pools on memory devices behind one power supply (tests/common/power.h):
 * the n-th write, flush, discard, write-zeroes or resize of any of the six
 * cuts the power of all six at once. */
struct side {
	thinp_io *meta, *data, *cio;
	thinp_pool *pool;
	thinp_catalog *cat;
};

struct rig {
	thinp_io *lower[NDEV];
	struct power *pw; /* NULL once rebooted */
	struct side src, dst;
};

static thinp_io **side_io(struct rig *g, int i)
{
	struct side *s = i < 3 ? &g->src : &g->dst;

	return i % 3 == 0 ? &s->meta : i % 3 == 1 ? &s->data : &s->cio;
}

/* Both pools formatted; a later cut (power_arm) resolves by @mode, @seed. */
static void rig_open_cut(struct rig *g, int mode, uint64_t seed)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;

	memset(g, 0, sizeof(*g));
	g->pw = power_new(mode, seed);
	for (int i = 0; i < NDEV; i++) {
		uint64_t size = i % 3 == 0 ? 4u << 20 : i % 3 == 1 ? (uint64_t)DATA_BLOCKS * BS : 0;

		assert_int_equal(thinp_io_open_memory(&g->lower[i], size, 0), 0);
		*side_io(g, i) = power_add(g->pw, g->lower[i]);
	}
	o.data_block_size = BS;
	assert_int_equal(thinp_pool_format(&g->src.pool, g->src.meta, g->src.data, &o), 0);
	assert_int_equal(thinp_pool_format(&g->dst.pool, g->dst.meta, g->dst.data, &o), 0);
	assert_int_equal(thinp_catalog_open(&g->src.cat, g->src.cio, 0), 0);
	assert_int_equal(thinp_catalog_open(&g->dst.cat, g->dst.cio, 0), 0);
}

static void rig_open(struct rig *g)
{
	rig_open_cut(g, THINP_IO_FAULT_CUT_DROP, 0);
}

static void side_close(struct side *s)
{
	thinp_catalog_close(s->cat);
	thinp_pool_close(s->pool); /* fails after a cut */
	s->cat = NULL;
	s->pool = NULL;
}

/* Power off (flushing nothing more) and on again: both pools reopened on
 * what reached the memory devices, without the fault layer. */
static void rig_reboot(struct rig *g)
{
	power_cut_now(g->pw);
	side_close(&g->src);
	side_close(&g->dst);
	power_free(g->pw);
	g->pw = NULL;
	for (int i = 0; i < NDEV; i++)
		*side_io(g, i) = g->lower[i];
	for (int i = 0; i < 2; i++) {
		struct side *s = i ? &g->dst : &g->src;

		assert_int_equal(thinp_meta_check_io(s->meta, NULL, NULL, NULL), 0);
		assert_int_equal(thinp_pool_open(&s->pool, s->meta, s->data, NULL), 0);
		assert_int_equal(thinp_catalog_open(&s->cat, s->cio, 0), 0);
	}
}

static void rig_close(struct rig *g)
{
	side_close(&g->src);
	side_close(&g->dst);
	power_free(g->pw); /* not rebooted: the supply is still there */
	for (int i = 0; i < NDEV; i++)
		thinp_io_close(g->lower[i]);
}

/* ---- Devices and their models ------------------------------------------- */

static thinp_thin *open_dev(thinp_pool *pool, uint64_t id)
{
	thinp_thin_options o = THINP_THIN_OPTIONS_INIT;
	thinp_thin *t;

	o.size = DEV_BYTES;
	assert_int_equal(thinp_thin_open(&t, pool, id, &o), 0);
	return t;
}

static uint8_t *read_dev(thinp_pool *pool, uint64_t id)
{
	uint8_t *p = malloc(DEV_BYTES);
	thinp_thin *t = open_dev(pool, id);

	assert_non_null(p);
	assert_int_equal(thinp_thin_read(t, p, DEV_BYTES, 0), 0);
	thinp_thin_close(t);
	return p;
}

/* A random write, write-zeroes or discard of @t and the model; returns the
 * library's answer (the power may be gone). */
static int random_op(struct test_rng *rng, thinp_thin *t, uint8_t *model)
{
	uint64_t off = test_rng_below(rng, DEV_BYTES), len = 1 + test_rng_below(rng, 2 * BS);
	uint64_t b0 = test_rng_below(rng, NB), nb = 1 + test_rng_below(rng, 3);
	int r;

	if (off + len > DEV_BYTES)
		len = DEV_BYTES - off;
	if (b0 + nb > NB)
		nb = NB - b0;
	switch (test_rng_below(rng, 6)) {
	case 0:
		r = thinp_thin_discard(t, nb * BS, b0 * BS);
		memset(model + b0 * BS, 0, nb * BS);
		break;
	case 1:
		r = thinp_thin_write_zeroes(t, len, off);
		memset(model + off, 0, len);
		break;
	default:
		for (uint64_t i = 0; i < len; i++)
			model[off + i] = (uint8_t)test_rng_next(rng);
		r = thinp_thin_write(t, model + off, len, off);
	}
	return r;
}

/* Device @id created with a catalog entry of DEV_BYTES, @ops random changes. */
static void make_dev(struct side *s, uint64_t id, struct test_rng *rng, unsigned ops,
		     uint8_t *model)
{
	char msg[64];
	thinp_thin *t;

	snprintf(msg, sizeof(msg), "create_thin %llu %llu", (unsigned long long)id,
		 (unsigned long long)DEV_BYTES);
	assert_int_equal(thinp_catalog_message(s->cat, s->pool, msg, 0), 0);
	t = open_dev(s->pool, id);
	for (unsigned i = 0; i < ops; i++)
		assert_int_equal(random_op(rng, t, model), 0);
	assert_int_equal(thinp_thin_flush(t), 0);
	thinp_thin_close(t);
}

static void guid_of(thinp_catalog *cat, uint64_t id, uint8_t guid[16])
{
	thinp_catalog_entry *e = malloc(sizeof(*e));

	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	assert_int_equal(thinp_catalog_get(cat, id, e), 0);
	memcpy(guid, e->guid, 16);
	free(e);
}

/* The visible device of @s with @guid (none: NONE) and how many visible
 * devices there are; no entry is a migration's any more when @final. */
#define NONE UINT64_MAX
static uint64_t find_visible(struct side *s, const uint8_t guid[16], uint64_t *nr_visible)
{
	thinp_catalog_entry *e = malloc(sizeof(*e));
	uint64_t found = NONE, nr = 0;

	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t id = 0; thinp_catalog_next(s->cat, id, e) == 0; id = e->id + 1) {
		thinp_thin_status st = THINP_THIN_STATUS_INIT;

		if (e->flags & (THINP_CATALOG_PARTIAL | THINP_CATALOG_ANCHOR |
				THINP_CATALOG_MIGRATING | THINP_CATALOG_MIGRATED))
			continue;
		if (thinp_pool_get_thin_status(s->pool, e->id, &st) || st.creation_time != e->birth_time ||
		    st.transaction_id != e->birth_transaction)
			continue;
		nr++;
		if (!memcmp(e->guid, guid, 16))
			found = e->id;
	}
	free(e);
	if (nr_visible)
		*nr_visible = nr;
	return found;
}

/* No entry of a migration's left in @s, and every device of @s has a
 * current entry. */
static void assert_tidy(struct side *s, const char *side)
{
	thinp_catalog_entry *e = malloc(sizeof(*e));
	uint64_t ids[64];
	size_t nr = 0;

	assert_int_equal(thinp_pool_list_thins(s->pool, ids, 64, &nr), 0);
	for (size_t i = 0; i < nr; i++) {
		thinp_thin_status st = THINP_THIN_STATUS_INIT;

		*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
		if (thinp_catalog_get(s->cat, ids[i], e))
			fail_msg("%s: device %llu has no entry", side, (unsigned long long)ids[i]);
		assert_int_equal(thinp_pool_get_thin_status(s->pool, ids[i], &st), 0);
		assert_int_equal(st.creation_time, e->birth_time);
		assert_int_equal(st.transaction_id, e->birth_transaction);
		assert_false(e->flags & (THINP_CATALOG_PARTIAL | THINP_CATALOG_MIGRATING |
					 THINP_CATALOG_MIGRATED));
	}
	free(e);
}

static void assert_checked(struct side *s)
{
	int r = th_thin_check(s->meta);

	assert_true(r == 0 || r == 77);
}

/* Distinct data blocks the devices @ids of @pool map. */
static uint64_t distinct_blocks(thinp_pool *pool, const uint64_t *ids, size_t n)
{
	uint8_t *seen = calloc(DATA_BLOCKS, 1);
	uint64_t nr = 0, vb;
	thinp_mapping m = THINP_MAPPING_INIT;

	for (size_t i = 0; i < n; i++)
		for (uint64_t v = 0; thinp_pool_thin_next_map(pool, ids[i], v, &vb, &m) == 0;
		     v = vb + 1)
			if (!seen[m.data_block]++)
				nr++;
	free(seen);
	return nr;
}

static uint64_t mapped_blocks(thinp_pool *pool, uint64_t id)
{
	thinp_thin_status st = THINP_THIN_STATUS_INIT;

	assert_int_equal(thinp_pool_get_thin_status(pool, id, &st), 0);
	return st.mapped_blocks;
}

/* ---- The live source: writes between rounds -------------------------------- */

struct live {
	struct side *src;
	struct test_rng rng;
	uint8_t *model;
	unsigned rounds;   /* live rounds before FINAL */
	uint64_t asked;    /* times asked */
	uint64_t mapped;   /* the source's mapped blocks when quiesced */
	const uint64_t *family; /* with nr_family: the devices whose */
	size_t nr_family;
	uint64_t distinct;      /* distinct data blocks when quiesced */
	int stop_at;       /* answer STOP when asked this many times (0: never) */
};

static int live_next(void *ctx, uint64_t round, uint64_t last_bytes)
{
	struct live *l = ctx;
	thinp_thin *t;
	int r = 0;

	(void)last_bytes;
	if (++l->asked == (uint64_t)l->stop_at)
		return THINP_MIGRATE_STOP;
	if (round >= l->rounds) {
		l->mapped = mapped_blocks(l->src->pool, LIVE);
		l->distinct = distinct_blocks(l->src->pool, l->family, l->nr_family);
		return THINP_MIGRATE_FINAL;
	}
	t = open_dev(l->src->pool, LIVE);
	for (unsigned i = 0; !r && i < 6; i++)
		r = random_op(&l->rng, t, l->model);
	if (!r)
		r = thinp_thin_flush(t);
	thinp_thin_close(t);
	return r ? r : THINP_MIGRATE_ROUND;
}

static int run(struct rig *g, uint64_t dev, uint32_t flags, thinp_migrate_next_fn next,
	       void *ctx, thinp_job *job, uint64_t *id)
{
	thinp_migrate_options o = THINP_MIGRATE_OPTIONS_INIT;
	char msg[256];
	int r;

	o.flags = flags;
	o.next = next;
	o.next_ctx = ctx;
	o.checkpoint_bytes = 4 * BS;
	o.errbuf = msg;
	o.errbuf_size = sizeof(msg);
	r = thinp_migrate(g->src.pool, g->src.cat, dev, g->dst.pool, g->dst.cat, &o, job, id);
	if (r && r != -EIO && r != -ECANCELED && r != -EINPROGRESS)
		fprintf(stderr, "migrate: %d %s\n", r, msg);
	return r;
}

/* ---- Tests ----------------------------------------------------------------- */

/* Live rounds with random writes in between, the final, the switch. */
static void test_rounds(void **state)
{
	struct rig g;
	struct live l = { .rounds = 3 };
	thinp_job *job;
	thinp_job_progress p = { .struct_size = sizeof(p) };
	uint8_t guid[16], *got;
	uint64_t id, nr, ids[64];
	size_t n;
	(void)state;

	rig_open(&g);
	test_rng_init(&l.rng, suite_seed + 1);
	l.src = &g.src;
	l.model = calloc(1, DEV_BYTES);
	make_dev(&g.src, LIVE, &l.rng, 20, l.model);
	guid_of(g.src.cat, LIVE, guid);
	assert_int_equal(thinp_job_new(&job), 0);
	assert_int_equal(run(&g, LIVE, 0, live_next, &l, job, &id), 0);
	assert_int_equal(thinp_job_get_progress(job, &p), 0);
	assert_int_equal(p.state, THINP_JOB_DONE);
	assert_int_equal(p.result, 0);
	assert_int_equal(p.round, 4);
	assert_true(p.done > 0);
	/* The copy: the model's bytes, the source's mapped blocks, the guid. */
	assert_int_equal(find_visible(&g.dst, guid, &nr), id);
	assert_int_equal(nr, 1);
	got = read_dev(g.dst.pool, id);
	assert_memory_equal(got, l.model, DEV_BYTES);
	free(got);
	assert_int_equal(mapped_blocks(g.dst.pool, id), l.mapped);
	/* The source device is gone, and every round snapshot with it. */
	assert_int_equal(thinp_pool_list_thins(g.src.pool, ids, 64, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(thinp_catalog_count(g.src.cat), 0);
	assert_tidy(&g.dst, "dst");
	assert_checked(&g.src);
	assert_checked(&g.dst);
	/* Running again: done already. */
	assert_int_equal(run(&g, LIVE, 0, live_next, &l, NULL, &nr), -ENODATA);
	thinp_job_free(job);
	free(l.model);
	rig_close(&g);
}

/* A family: LIVE, two snapshots of it, a snapshot of a snapshot, an
 * unrelated device; all but the last move, sharing their blocks as before. */
static void test_family(void **state)
{
	struct rig g;
	struct live l = { .rounds = 2 };
	uint8_t *models[4], guids[4][16], *got;
	uint64_t fam[4] = { LIVE, 2, 3, 4 }, copies[4], id, nr, before;
	struct test_rng rng;
	thinp_thin *t;
	(void)state;

	rig_open(&g);
	test_rng_init(&rng, suite_seed + 2);
	for (int i = 0; i < 4; i++)
		models[i] = calloc(1, DEV_BYTES);
	make_dev(&g.src, LIVE, &rng, 30, models[0]);
	for (int i = 1; i < 4; i++) {
		char msg[64];

		snprintf(msg, sizeof(msg), "create_snap %d %d", i + 1, i == 3 ? 2 : LIVE);
		assert_int_equal(thinp_catalog_message(g.src.cat, g.src.pool, msg, 0), 0);
		memcpy(models[i], models[i == 3 ? 1 : 0], DEV_BYTES);
		t = open_dev(g.src.pool, LIVE);
		for (int k = 0; k < 5; k++)
			assert_int_equal(random_op(&rng, t, models[0]), 0);
		thinp_thin_close(t);
		if (i == 3) {
			t = open_dev(g.src.pool, 4);
			for (int k = 0; k < 3; k++)
				assert_int_equal(random_op(&rng, t, models[3]), 0);
			thinp_thin_close(t);
		}
	}
	{
		uint8_t *other = calloc(1, DEV_BYTES);

		make_dev(&g.src, 9, &rng, 10, other);
		free(other);
	}
	for (int i = 0; i < 4; i++)
		guid_of(g.src.cat, fam[i], guids[i]);
	before = distinct_blocks(g.src.pool, fam, 4);
	l.src = &g.src;
	l.model = models[0];
	l.rng = rng;
	l.family = fam;
	l.nr_family = 4;
	assert_int_equal(run(&g, LIVE, THINP_MIGRATE_FAMILY, live_next, &l, NULL, &id), 0);
	for (int i = 0; i < 4; i++) {
		copies[i] = find_visible(&g.dst, guids[i], NULL);
		assert_int_not_equal(copies[i], NONE);
		got = read_dev(g.dst.pool, copies[i]);
		assert_memory_equal(got, models[i], DEV_BYTES);
		free(got);
	}
	assert_int_equal(copies[0], id);
	find_visible(&g.dst, guids[0], &nr);
	assert_int_equal(nr, 4);
	/* Sharing: as many distinct data blocks as the source had when quiesced,
	 * including blocks a member shares with a member other than the one its
	 * copy was sent against (seed 130976824011189 has one). */
	assert_true(before > 0);
	assert_int_equal(distinct_blocks(g.dst.pool, copies, 4), l.distinct);
	assert_true(distinct_blocks(g.dst.pool, copies, 4) <
		    mapped_blocks(g.dst.pool, copies[0]) + mapped_blocks(g.dst.pool, copies[1]) +
			    mapped_blocks(g.dst.pool, copies[2]) + mapped_blocks(g.dst.pool, copies[3]));
	/* The unrelated device stays; the family is gone from the source. */
	{
		uint64_t ids[64];
		size_t n;

		assert_int_equal(thinp_pool_list_thins(g.src.pool, ids, 64, &n), 0);
		assert_int_equal(n, 1);
		assert_int_equal(ids[0], 9);
	}
	assert_tidy(&g.src, "src");
	assert_tidy(&g.dst, "dst");
	assert_checked(&g.src);
	assert_checked(&g.dst);
	for (int i = 0; i < 4; i++)
		free(models[i]);
	rig_close(&g);
}

/* What a crash may leave: the source device readable; on the destination no
 * visible device, or the complete copy (then equal to the source if that is
 * still there). Returns the content the migration must end with. */
static uint8_t *assert_crash_state(struct rig *g, const uint8_t guid[16], const uint8_t *final)
{
	thinp_thin_status st = THINP_THIN_STATUS_INIT;
	uint64_t nr, copy = find_visible(&g->dst, guid, &nr);
	uint8_t *src = NULL, *dst = NULL;

	if (thinp_pool_get_thin_status(g->src.pool, LIVE, &st) == 0)
		src = read_dev(g->src.pool, LIVE);
	assert_true(nr <= 1);
	if (copy != NONE) {
		dst = read_dev(g->dst.pool, copy);
		assert_memory_equal(dst, final, DEV_BYTES);
		if (src)
			assert_memory_equal(src, dst, DEV_BYTES);
	} else {
		assert_int_equal(nr, 0);
		assert_non_null(src);
	}
	if (src && dst)
		free(dst);
	return src ? src : dst;
}

/* A power cut at every write and flush of both pools, in two modes; after
 * each, the rerun (the source quiesced, as a restarted caller would) ends at
 * the source's content, with the source gone and nothing left over. */
static void test_power_cut(void **state)
{
	static const int modes[] = { THINP_IO_FAULT_CUT_DROP, THINP_IO_FAULT_CUT_TORN };
	uint64_t step = test_short() > 1 ? 7 : 1, cuts = 0;
	(void)state;

	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
		for (uint64_t n = 1;; n += step) {
			struct rig g;
			struct live l = { .rounds = 1 };
			uint8_t guid[16], *want, *got;
			uint64_t id = NONE;
			int r, r2;

			rig_open_cut(&g, modes[m], suite_seed + n);
			test_rng_init(&l.rng, suite_seed + 3);
			l.src = &g.src;
			l.model = calloc(1, DEV_BYTES);
			make_dev(&g.src, LIVE, &l.rng, 12, l.model);
			guid_of(g.src.cat, LIVE, guid);
			power_arm(g.pw, n);
			r = run(&g, LIVE, 0, live_next, &l, NULL, &id);
			assert_true(r == 0 || power_is_cut(g.pw));
			rig_reboot(&g);
			want = assert_crash_state(&g, guid, l.model);
			r2 = run(&g, LIVE, 0, NULL, NULL, NULL, &id);
			/* -ENODATA: the cut came after the last step, removing the
			 * source's entry; the copy is the device now. */
			if (r2 == -ENODATA) {
				assert_int_equal(thinp_catalog_count(g.src.cat), 0);
				id = find_visible(&g.dst, guid, NULL);
			} else {
				assert_int_equal(r2, 0);
			}
			got = read_dev(g.dst.pool, id);
			assert_memory_equal(got, want, DEV_BYTES);
			assert_int_equal(find_visible(&g.dst, guid, NULL), id);
			assert_int_equal(thinp_catalog_count(g.src.cat), 0);
			assert_tidy(&g.src, "src");
			assert_tidy(&g.dst, "dst");
			if (n % 32 == 1) {
				assert_checked(&g.src);
				assert_checked(&g.dst);
			}
			free(got);
			free(want);
			free(l.model);
			rig_close(&g);
			if (!r)
				break;
			cuts++;
		}
	assert_true(cuts > 20 / test_short());
}

/*
 * The same with a family (LIVE and its snapshot 2), every third request:
 * in between, both copies are visible or neither (one switch commit), each
 * complete; after the rerun both are there, sharing blocks.
 */
static void test_power_cut_family(void **state)
{
	uint64_t step = test_short() > 1 ? 29 : 3, cuts = 0;
	(void)state;

	for (uint64_t n = 1;; n += step) {
		struct rig g;
		struct live l = { .rounds = 1 };
		uint8_t guid[2][16], *snap = calloc(1, DEV_BYTES), *want, *got;
		uint64_t ids[2], nr, live_copy;
		thinp_thin *t;
		int r, finished;

		rig_open_cut(&g, THINP_IO_FAULT_CUT_TORN, suite_seed + n);
		test_rng_init(&l.rng, suite_seed + 6);
		l.src = &g.src;
		l.model = calloc(1, DEV_BYTES);
		make_dev(&g.src, LIVE, &l.rng, 12, l.model);
		assert_int_equal(thinp_catalog_message(g.src.cat, g.src.pool, "create_snap 2 1", 0), 0);
		memcpy(snap, l.model, DEV_BYTES);
		t = open_dev(g.src.pool, LIVE);
		for (int k = 0; k < 4; k++)
			assert_int_equal(random_op(&l.rng, t, l.model), 0);
		assert_int_equal(thinp_thin_flush(t), 0);
		thinp_thin_close(t);
		guid_of(g.src.cat, LIVE, guid[0]);
		guid_of(g.src.cat, 2, guid[1]);
		power_arm(g.pw, n);
		r = run(&g, LIVE, THINP_MIGRATE_FAMILY, live_next, &l, NULL, &ids[0]);
		finished = !power_is_cut(g.pw);
		assert_true(r == 0 || !finished);
		rig_reboot(&g);
		live_copy = find_visible(&g.dst, guid[0], &nr);
		assert_true(nr == 0 || nr == 2);
		if (nr) {
			got = read_dev(g.dst.pool, find_visible(&g.dst, guid[1], NULL));
			assert_memory_equal(got, snap, DEV_BYTES);
			free(got);
			got = read_dev(g.dst.pool, live_copy);
			assert_memory_equal(got, l.model, DEV_BYTES);
			free(got);
			want = calloc(1, DEV_BYTES);
			memcpy(want, l.model, DEV_BYTES);
		} else {
			/* Not switched: the source as it survived is the result. */
			want = read_dev(g.src.pool, LIVE);
			got = read_dev(g.src.pool, 2);
			assert_memory_equal(got, snap, DEV_BYTES);
			free(got);
		}
		r = run(&g, LIVE, THINP_MIGRATE_FAMILY, NULL, NULL, NULL, &ids[0]);
		assert_true(r == 0 || r == -ENODATA);
		for (int i = 0; i < 2; i++) {
			ids[i] = find_visible(&g.dst, guid[i], NULL);
			assert_int_not_equal(ids[i], NONE);
			got = read_dev(g.dst.pool, ids[i]);
			assert_memory_equal(got, i ? snap : want, DEV_BYTES);
			free(got);
		}
		assert_true(distinct_blocks(g.dst.pool, ids, 2) <
			    mapped_blocks(g.dst.pool, ids[0]) + mapped_blocks(g.dst.pool, ids[1]));
		assert_int_equal(thinp_catalog_count(g.src.cat), 0);
		assert_tidy(&g.src, "src");
		assert_tidy(&g.dst, "dst");
		free(want);
		free(snap);
		free(l.model);
		rig_close(&g);
		if (finished)
			break;
		cuts++;
	}
	assert_true(cuts > 10 / test_short());
}

/* Pause from another thread: the run waits (PAUSED) and goes on after the
 * resume. */
struct pauser {
	thinp_job *job;
	int seen_paused;
};

static void *pause_thread(void *arg)
{
	struct pauser *p = arg;
	thinp_job_progress pr = { .struct_size = sizeof(pr) };
	struct timespec ms = { 0, 1000 * 1000 };

	do {
		nanosleep(&ms, NULL);
		assert_int_equal(thinp_job_get_progress(p->job, &pr), 0);
	} while (pr.state != THINP_JOB_RUNNING || !pr.done);
	assert_int_equal(thinp_job_pause(p->job), 0);
	for (int i = 0; i < 2000 && pr.state != THINP_JOB_PAUSED; i++) {
		nanosleep(&ms, NULL);
		assert_int_equal(thinp_job_get_progress(p->job, &pr), 0);
	}
	p->seen_paused = pr.state == THINP_JOB_PAUSED;
	assert_int_equal(thinp_job_resume(p->job), 0);
	return NULL;
}

static void test_pause(void **state)
{
	struct rig g;
	struct pauser p = { 0 };
	uint8_t guid[16], *model = calloc(1, DEV_BYTES), *got;
	struct test_rng rng;
	pthread_t th;
	uint64_t id;
	(void)state;

	rig_open(&g);
	test_rng_init(&rng, suite_seed + 7);
	make_dev(&g.src, LIVE, &rng, 40, model);
	guid_of(g.src.cat, LIVE, guid);
	assert_int_equal(thinp_job_new(&p.job), 0);
	/* Slow enough for the other thread to catch the run in the middle. */
	assert_int_equal(thinp_job_set_rate_limit(p.job, DEV_BYTES), 0);
	assert_int_equal(pthread_create(&th, NULL, pause_thread, &p), 0);
	assert_int_equal(run(&g, LIVE, 0, NULL, NULL, p.job, &id), 0);
	pthread_join(th, NULL);
	assert_true(p.seen_paused);
	assert_int_equal(find_visible(&g.dst, guid, NULL), id);
	got = read_dev(g.dst.pool, id);
	assert_memory_equal(got, model, DEV_BYTES);
	free(got);
	thinp_job_free(p.job);
	free(model);
	rig_close(&g);
}

/* Cancel after some bytes: no visible copy; the rerun resumes (moves less
 * than a whole run) and finishes. Stop, then the final. */
static int cancel_after(void *ctx, uint64_t round, uint64_t last_bytes)
{
	(void)round;
	(void)last_bytes;
	return *(int *)ctx;
}

static void progress_cancel(const thinp_job_progress *p, void *ctx)
{
	thinp_job *job = ctx;

	if (p->state == THINP_JOB_RUNNING && p->done >= 4 * BS)
		thinp_job_cancel(job);
}

/* Writes device 7 once, then answers STOP. */
static int stop_next(void *ctx, uint64_t round, uint64_t last_bytes)
{
	struct live *l = ctx;
	thinp_thin *t;

	(void)round;
	(void)last_bytes;
	if (++l->asked == (uint64_t)l->stop_at)
		return THINP_MIGRATE_STOP;
	t = open_dev(l->src->pool, 7);
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(random_op(&l->rng, t, l->model), 0);
	assert_int_equal(thinp_thin_flush(t), 0);
	thinp_thin_close(t);
	return THINP_MIGRATE_ROUND;
}

static void test_cancel_stop(void **state)
{
	struct rig g;
	thinp_job *job;
	thinp_job_progress p = { .struct_size = sizeof(p) };
	uint8_t guid[16], *model = calloc(1, DEV_BYTES), *got;
	struct test_rng rng;
	uint64_t id, nr, whole;
	int answer = THINP_MIGRATE_FINAL;
	thinp_thin *t;
	(void)state;

	rig_open(&g);
	test_rng_init(&rng, suite_seed + 4);
	make_dev(&g.src, LIVE, &rng, 0, model);
	/* Every other block mapped: a DATA record each, checkpoints between. */
	t = open_dev(g.src.pool, LIVE);
	for (uint64_t b = 0; b < NB; b += 2) {
		for (uint64_t i = b * BS; i < (b + 1) * BS; i++)
			model[i] = (uint8_t)test_rng_next(&rng);
		assert_int_equal(thinp_thin_write(t, model + b * BS, BS, b * BS), 0);
	}
	assert_int_equal(thinp_thin_flush(t), 0);
	thinp_thin_close(t);
	guid_of(g.src.cat, LIVE, guid);
	assert_int_equal(thinp_job_new(&job), 0);
	/* The job's checkpoints are a MiB apart: cancel lands after 16 blocks. */
	assert_int_equal(thinp_job_set_progress_fn(job, progress_cancel, job), 0);
	/* Slow enough for the progress callback (every 200 ms) to see it. */
	assert_int_equal(thinp_job_set_rate_limit(job, DEV_BYTES / 4), 0);
	assert_int_equal(run(&g, LIVE, 0, cancel_after, &answer, job, &id), -ECANCELED);
	assert_int_equal(thinp_job_set_rate_limit(job, 0), 0);
	assert_int_equal(find_visible(&g.dst, guid, &nr), NONE);
	assert_int_equal(nr, 0);
	assert_int_equal(thinp_job_set_progress_fn(job, NULL, NULL), 0);
	whole = DEV_BYTES / 2;
	assert_int_equal(run(&g, LIVE, 0, NULL, NULL, job, &id), 0);
	assert_int_equal(thinp_job_get_progress(job, &p), 0);
	assert_true(p.done < whole);
	got = read_dev(g.dst.pool, id);
	assert_memory_equal(got, model, DEV_BYTES);
	free(got);
	assert_tidy(&g.dst, "dst");

	/* STOP before the first round, then after one live round: -EINPROGRESS,
	 * nothing visible; a run without callback (quiesced) switches. */
	{
		struct live l = { .rounds = 5, .stop_at = 2, .src = &g.src, .model = model };

		memset(model, 0, DEV_BYTES);
		make_dev(&g.src, 7, &rng, 10, model);
		guid_of(g.src.cat, 7, guid);
		answer = THINP_MIGRATE_STOP;
		assert_int_equal(run(&g, 7, 0, cancel_after, &answer, NULL, &id), -EINPROGRESS);
		assert_int_equal(find_visible(&g.dst, guid, NULL), NONE);
		l.rng = rng;
		assert_int_equal(run(&g, 7, 0, stop_next, &l, NULL, &id), -EINPROGRESS);
		assert_int_equal(l.asked, 2);
		assert_int_equal(find_visible(&g.dst, guid, NULL), NONE);
		assert_int_equal(run(&g, 7, 0, NULL, NULL, NULL, &id), 0);
		got = read_dev(g.dst.pool, id);
		assert_memory_equal(got, model, DEV_BYTES);
		free(got);
	}
	thinp_job_free(job);
	free(model);
	rig_close(&g);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The rate limit: the run takes at least its stream bytes / rate. */
static void test_rate_limit(void **state)
{
	struct rig g;
	thinp_job *job;
	thinp_job_progress p = { .struct_size = sizeof(p) };
	uint8_t *model = calloc(1, DEV_BYTES);
	struct test_rng rng;
	uint64_t id, rate = 4u << 20;
	double t0, elapsed;
	(void)state;

	rig_open(&g);
	test_rng_init(&rng, suite_seed + 5);
	make_dev(&g.src, LIVE, &rng, 40, model);
	assert_int_equal(thinp_job_new(&job), 0);
	assert_int_equal(thinp_job_set_rate_limit(job, rate), 0);
	t0 = now_s();
	assert_int_equal(run(&g, LIVE, 0, NULL, NULL, job, &id), 0);
	elapsed = now_s() - t0;
	assert_int_equal(thinp_job_get_progress(job, &p), 0);
	assert_true(p.done > (uint64_t)mapped_blocks(g.dst.pool, id) * BS);
	assert_true(elapsed >= (double)p.done / rate * 0.99);
	thinp_job_free(job);
	free(model);
	rig_close(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rounds),
		cmocka_unit_test(test_family),
		cmocka_unit_test(test_power_cut),
		cmocka_unit_test(test_power_cut_family),
		cmocka_unit_test(test_pause),
		cmocka_unit_test(test_cancel_stop),
		cmocka_unit_test(test_rate_limit),
	};

	suite_seed = test_seed("test_migrate");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
