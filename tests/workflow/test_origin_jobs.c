/*
 * Merge into an external origin and hydration (origin_jobs.h), against a
 * byte model: the origin's bytes, and per device what it reads (the origin
 * under its writes). Random writes before each job; a writer racing
 * hydration (its writes must win); a power cut at every write and flush of
 * each job on the metadata, data, catalog and origin devices at once, the
 * devices reopened (reads as the model, metadata clean) and the job rerun
 * to the same final result; a sibling on the same origin refused, then
 * hydrated; cancel, pause and rerun; -ENOSPC before copying; thin_check on
 * the final metadata when it is installed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/power.h"
#include "common/testutil.h"
#include <libthinp/thinp.h>
#include <libthinp/meta.h>
#include <libthinp/testing.h>

#define BS (64u * 1024)
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define NB 24u                                   /* blocks per device */
#define DEV_BYTES ((uint64_t)NB * BS)
/* The origin ends inside block NB - 2: merge leaves that block and the
 * last one mapped; hydration reads up to it. */
#define ORIGIN_BYTES ((uint64_t)(NB - 2) * BS + BS / 2)
#define ORIGIN_PATH "/images/base.img"
#define X 1u   /* the device merged or hydrated */
#define Y 2u   /* its snapshot, a sibling on the same origin */
#define Z 3u   /* a device without an origin */

enum { META, DATA, CAT, ORIG, NR_DEV };

static uint64_t suite_seed;

struct env {
	thinp_io *lower[NR_DEV];  /* memory devices: what survives */
	struct power *pw;         /* the supply over them while jobs run, or NULL */
	thinp_io *io[NR_DEV];     /* what the pool, catalog and jobs use */
	thinp_pool *pool;
	thinp_catalog *cat;
	uint64_t data_blocks;
};

/* The model: what the origin holds, what each device reads, and which
 * blocks each device has provisioned. */
struct model {
	uint8_t *origin;          /* ORIGIN_BYTES */
	uint8_t *dev[4];          /* DEV_BYTES each, index = device id */
	bool mapped[4][NB];
};

static void model_init(struct model *m, struct test_rng *rng)
{
	m->origin = malloc(ORIGIN_BYTES);
	assert_non_null(m->origin);
	for (uint64_t i = 0; i < ORIGIN_BYTES; i++)
		m->origin[i] = (uint8_t)test_rng_next(rng);
	/* Every fourth block of zeroes: hydration leaves those unprovisioned. */
	for (uint64_t b = 0; b * BS < ORIGIN_BYTES; b += 4)
		memset(m->origin + b * BS, 0, BS);
	for (int d = 0; d < 4; d++) {
		m->dev[d] = calloc(1, DEV_BYTES);
		assert_non_null(m->dev[d]);
		if (d != Z)
			memcpy(m->dev[d], m->origin, ORIGIN_BYTES);
	}
	memset(m->mapped, 0, sizeof(m->mapped));
}

static void model_free(struct model *m)
{
	free(m->origin);
	for (int d = 0; d < 4; d++)
		free(m->dev[d]);
}

/* ---- the pool ---- */

static void env_open_pool(struct env *e, thinp_io *const io[NR_DEV])
{
	memcpy(e->io, io, sizeof(e->io));
	assert_int_equal(thinp_pool_open(&e->pool, io[META], io[DATA], NULL), 0);
	assert_int_equal(thinp_catalog_open(&e->cat, io[CAT], 0), 0);
}

static void env_close_pool(struct env *e, bool expect_ok)
{
	int r;

	thinp_catalog_close(e->cat);
	r = thinp_pool_close(e->pool);
	if (expect_ok)
		assert_int_equal(r, 0);
	e->cat = NULL;
	e->pool = NULL;
}

static void env_create(struct env *e, uint64_t data_blocks)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	const uint64_t sizes[NR_DEV] = { 8u << 20, data_blocks * BS, 0, ORIGIN_BYTES };

	memset(e, 0, sizeof(*e));
	e->data_blocks = data_blocks;
	for (int i = 0; i < NR_DEV; i++)
		assert_int_equal(thinp_io_open_memory(&e->lower[i], sizes[i], 0), 0);
	o.data_block_size = BS;
	assert_int_equal(thinp_pool_format(&e->pool, e->lower[META], e->lower[DATA], &o), 0);
	assert_int_equal(thinp_pool_close(e->pool), 0);
	env_open_pool(e, e->lower);
}

/* Put the devices on a power supply cutting at the n-th change. */
static void env_power_on(struct env *e, int mode, uint64_t seed, uint64_t n)
{
	thinp_io *io[NR_DEV];

	env_close_pool(e, true);
	e->pw = power_new(mode, seed);
	for (int i = 0; i < NR_DEV; i++)
		io[i] = power_add(e->pw, e->lower[i]);
	env_open_pool(e, io);
	power_arm(e->pw, n);
}

/* After the job: drop the supply (a cut one loses what was not flushed)
 * and reopen on the lower devices, checking the metadata first. */
static void env_reboot(struct env *e)
{
	env_close_pool(e, !power_is_cut(e->pw));
	power_free(e->pw);
	e->pw = NULL;
	assert_int_equal(thinp_meta_check_io(e->lower[META], NULL, NULL, NULL), 0);
	env_open_pool(e, e->lower);
}

static void env_destroy(struct env *e)
{
	env_close_pool(e, true);
	for (int i = 0; i < NR_DEV; i++)
		thinp_io_close(e->lower[i]);
}

static thinp_thin *open_dev(struct env *e, uint64_t id, thinp_io *origin)
{
	thinp_thin_options o = THINP_THIN_OPTIONS_INIT;
	thinp_thin *t;

	o.size = DEV_BYTES;
	o.origin = origin;
	assert_int_equal(thinp_thin_open(&t, e->pool, id, &o), 0);
	return t;
}

static void add_entry(struct env *e, uint64_t id, const char *origin, bool snap_of_x)
{
	thinp_catalog_entry *ce = malloc(sizeof(*ce));

	*ce = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	if (snap_of_x)
		assert_int_equal(thinp_catalog_inherit(e->cat, X, ce), 0);
	else
		assert_int_equal(thinp_catalog_new_guid(ce->guid), 0);
	ce->id = id;
	ce->size = DEV_BYTES;
	strcpy(ce->origin, origin);
	assert_int_equal(thinp_catalog_attach(e->cat, e->pool, ce), 0);
	free(ce);
}

static void commit_catalog(struct env *e)
{
	thinp_pool_status st = THINP_POOL_STATUS_INIT;

	assert_int_equal(thinp_pool_get_status(e->pool, &st), 0);
	assert_int_equal(thinp_catalog_commit(e->cat, st.transaction_id), 0);
}

/* A random write of device id through t, in the model too. */
static void random_write(thinp_thin *t, struct model *m, uint64_t id, struct test_rng *rng)
{
	uint64_t off = test_rng_below(rng, DEV_BYTES - 1);
	uint64_t len = 1 + test_rng_below(rng, MIN(DEV_BYTES - off, 2 * BS));
	uint8_t *p = malloc(len);

	for (uint64_t i = 0; i < len; i++)
		p[i] = (uint8_t)test_rng_next(rng);
	assert_int_equal(thinp_thin_write(t, p, len, off), 0);
	memcpy(m->dev[id] + off, p, len);
	for (uint64_t b = off / BS; b <= (off + len - 1) / BS; b++)
		m->mapped[id][b] = true;
	free(p);
}

/*
 * X on the origin written at random, Y a snapshot of it (same origin in its
 * entry) taken half way and written too, Z without an origin. The model
 * follows.
 */
static void scenario(struct env *e, struct model *m, struct test_rng *rng, bool with_y)
{
	thinp_io *origin = e->lower[ORIG];
	thinp_thin *t;

	assert_int_equal(thinp_io_write(origin, m->origin, ORIGIN_BYTES, 0, 0), 0);
	assert_int_equal(thinp_pool_create_thin(e->pool, X), 0);
	add_entry(e, X, ORIGIN_PATH, false);
	assert_int_equal(thinp_pool_create_thin(e->pool, Z), 0);
	add_entry(e, Z, "", false);
	t = open_dev(e, X, origin);
	for (int i = 0; i < 6; i++)
		random_write(t, m, X, rng);
	if (with_y) {
		assert_int_equal(thinp_pool_create_snap(e->pool, Y, X), 0);
		add_entry(e, Y, ORIGIN_PATH, true);
		memcpy(m->dev[Y], m->dev[X], DEV_BYTES);
		memcpy(m->mapped[Y], m->mapped[X], sizeof(m->mapped[X]));
		thinp_thin *y = open_dev(e, Y, origin);
		for (int i = 0; i < 3; i++)
			random_write(y, m, Y, rng);
		thinp_thin_close(y);
	}
	for (int i = 0; i < 6; i++)
		random_write(t, m, X, rng);
	thinp_thin_close(t);
	commit_catalog(e);
	assert_int_equal(thinp_pool_commit(e->pool), 0);
}

/* Device id reads (through origin) what the model says. */
static void assert_reads(struct env *e, const struct model *m, uint64_t id, thinp_io *origin)
{
	uint8_t *p = malloc(DEV_BYTES);
	thinp_thin *t = open_dev(e, id, origin);

	assert_int_equal(thinp_thin_read(t, p, DEV_BYTES, 0), 0);
	for (uint64_t b = 0; b < NB; b++)
		if (memcmp(p + b * BS, m->dev[id] + b * BS, BS))
			fail_msg("device %llu block %llu differs from the model (seed %llu)",
				 (unsigned long long)id, (unsigned long long)b,
				 (unsigned long long)suite_seed);
	thinp_thin_close(t);
	free(p);
}

static bool is_mapped(struct env *e, uint64_t id, uint64_t b)
{
	thinp_mapping mp = THINP_MAPPING_INIT;
	int r = thinp_pool_thin_map(e->pool, id, b, &mp);

	assert_true(r == 0 || r == -ENODATA);
	return r == 0;
}

/* thin_check on the lower metadata device, when installed. */
static void assert_thin_check(struct env *e)
{
	const char *tc = getenv("THIN_CHECK");
	char path[512], cmd[1100];
	uint64_t size;
	uint8_t *img;
	FILE *f;

	if (!tc || !*tc)
		return;
	assert_int_equal(thinp_io_size(e->lower[META], &size), 0);
	img = malloc(size);
	assert_int_equal(thinp_io_read(e->lower[META], img, size, 0, 0), 0);
	snprintf(path, sizeof(path), "%s/meta.img", test_tmpdir());
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(img, 1, size, f), size);
	fclose(f);
	free(img);
	snprintf(cmd, sizeof(cmd), "'%s' -q '%s'", tc, path);
	assert_int_equal(system(cmd), 0);
}

static thinp_job_progress progress(thinp_job *job)
{
	thinp_job_progress pr;

	memset(&pr, 0, sizeof(pr));
	pr.struct_size = sizeof(pr);
	assert_int_equal(thinp_job_get_progress(job, &pr), 0);
	return pr;
}

/* ---- merge ---- */

/* The origin after merging X: X's mapped blocks wholly inside it. */
static void model_merge(struct model *m)
{
	for (uint64_t b = 0; (b + 1) * BS <= ORIGIN_BYTES; b++)
		if (m->mapped[X][b]) {
			memcpy(m->origin + b * BS, m->dev[X] + b * BS, BS);
			m->mapped[X][b] = false;
		}
}

/* The end state of a merge: the origin as the model, X and its sibling
 * read as before, X maps only what lies past the origin's whole blocks. */
static void assert_merged(struct env *e, const struct model *m, bool with_y)
{
	uint8_t *p = malloc(ORIGIN_BYTES);

	assert_int_equal(thinp_io_read(e->lower[ORIG], p, ORIGIN_BYTES, 0, 0), 0);
	assert_memory_equal(p, m->origin, ORIGIN_BYTES);
	free(p);
	assert_reads(e, m, X, e->lower[ORIG]);
	if (with_y)
		assert_reads(e, m, Y, e->lower[ORIG]);
	assert_reads(e, m, Z, NULL);
	for (uint64_t b = 0; b < NB; b++)
		assert_int_equal(is_mapped(e, X, b), m->mapped[X][b]);
	assert_int_equal(thinp_meta_check_io(e->lower[META], NULL, NULL, NULL), 0);
}

static int merge(struct env *e, uint32_t flags, uint64_t batch, thinp_job *job)
{
	thinp_merge_options o = THINP_MERGE_OPTIONS_INIT;

	o.flags = flags;
	o.batch_blocks = batch;
	return thinp_merge(e->pool, X, e->io[ORIG], e->cat, &o, job);
}

static void test_merge_model(void **state)
{
	(void)state;
	for (uint64_t batch = 0; batch < 4; batch += 3) {
		struct test_rng rng;
		struct model m;
		struct env e;
		thinp_job *job;
		thinp_job_progress pr;

		test_rng_init(&rng, suite_seed + batch);
		model_init(&m, &rng);
		env_create(&e, 256);
		scenario(&e, &m, &rng, false);
		if (batch) {
			/* A pool that ignores discards still unmaps what it merged. */
			thinp_pool_options po = THINP_POOL_OPTIONS_INIT;

			env_close_pool(&e, true);
			po.features = THINP_POOL_IGNORE_DISCARD;
			assert_int_equal(thinp_pool_open(&e.pool, e.lower[META], e.lower[DATA], &po), 0);
			assert_int_equal(thinp_catalog_open(&e.cat, e.lower[CAT], 0), 0);
		}
		assert_int_equal(thinp_job_new(&job), 0);
		assert_int_equal(merge(&e, 0, batch, job), 0);
		pr = progress(job);
		assert_int_equal(pr.state, THINP_JOB_DONE);
		assert_int_equal(pr.result, 0);
		assert_int_equal(pr.done, pr.total);
		assert_true(pr.total > 0);
		model_merge(&m);
		assert_merged(&e, &m, false);
		/* Again: nothing left to merge, nothing changes. */
		assert_int_equal(merge(&e, 0, batch, job), 0);
		assert_merged(&e, &m, false);
		thinp_job_free(job);
		env_close_pool(&e, true);
		env_open_pool(&e, e.lower);
		assert_thin_check(&e);
		env_destroy(&e);
		model_free(&m);
	}
}

/* A sibling on the same origin: refused with nothing changed, then
 * hydrated where the merge overwrites what it reads. */
static void test_merge_sibling(void **state)
{
	struct test_rng rng;
	struct model m;
	struct env e;
	uint8_t *before = malloc(ORIGIN_BYTES);
	char msg[256];
	thinp_thin *t;

	(void)state;
	test_rng_init(&rng, suite_seed + 7);
	model_init(&m, &rng);
	env_create(&e, 256);
	scenario(&e, &m, &rng, true);
	assert_int_equal(merge(&e, 0, 0, NULL), -EBUSY);
	thinp_pool_errmsg(e.pool, msg, sizeof(msg));
	assert_non_null(strstr(msg, "device 2 also reads origin " ORIGIN_PATH));
	assert_int_equal(thinp_io_read(e.lower[ORIG], before, ORIGIN_BYTES, 0, 0), 0);
	assert_memory_equal(before, m.origin, ORIGIN_BYTES);
	for (uint64_t b = 0; b < NB; b++)
		assert_int_equal(is_mapped(&e, X, b), m.mapped[X][b]);
	/* An open device is refused too. */
	t = open_dev(&e, X, e.lower[ORIG]);
	assert_int_equal(merge(&e, THINP_MERGE_HYDRATE_SIBLINGS, 0, NULL), -EBUSY);
	thinp_thin_close(t);

	assert_int_equal(merge(&e, THINP_MERGE_HYDRATE_SIBLINGS, 2, NULL), 0);
	model_merge(&m);
	assert_merged(&e, &m, true);
	/* Y now maps every block the merge wrote that it read from the origin. */
	for (uint64_t b = 0; (b + 1) * BS <= ORIGIN_BYTES; b++)
		if (memcmp(m.origin + b * BS, before + b * BS, BS))
			assert_true(is_mapped(&e, Y, b));
	env_close_pool(&e, true);
	env_open_pool(&e, e.lower);
	assert_thin_check(&e);
	env_destroy(&e);
	model_free(&m);
	free(before);
}

static const int cut_modes[] = { THINP_IO_FAULT_CUT_DROP, THINP_IO_FAULT_CUT_KEEP,
				 THINP_IO_FAULT_CUT_RANDOM, THINP_IO_FAULT_CUT_TORN };

/*
 * A job cut by a power loss at its n-th change of any device, for every n
 * until it completes uncut: after the reboot the devices read as before,
 * the metadata is clean, and the job rerun reaches the same end.
 * run: the job; before: the checks after a reboot; after: the end state.
 */
struct cut_case {
	bool with_y;
	uint64_t data_blocks;
	int (*run)(struct env *e);
	void (*model_end)(struct model *m);
	void (*assert_end)(struct env *e, const struct model *m, bool with_y);
};

static void run_cuts(const struct cut_case *c)
{
	uint64_t cuts = 0;

	for (uint64_t n = 1;; n += test_short()) {
		int mode = cut_modes[n % 4];
		struct test_rng rng;
		struct model m;
		struct env e;
		bool cut;
		int r;

		test_rng_init(&rng, suite_seed + 100);
		model_init(&m, &rng);
		env_create(&e, c->data_blocks);
		scenario(&e, &m, &rng, c->with_y);
		env_power_on(&e, mode, suite_seed + n, n);
		r = c->run(&e);
		power_arm(e.pw, UINT64_MAX);
		cut = power_is_cut(e.pw);
		if (!cut)
			assert_int_equal(r, 0);
		env_reboot(&e);
		assert_thin_check(&e);
		if (cut) {
			/* Reads as before the job, whatever the job did. */
			assert_reads(&e, &m, X, e.lower[ORIG]);
			if (c->with_y)
				assert_reads(&e, &m, Y, e.lower[ORIG]);
			assert_int_equal(c->run(&e), 0);
			cuts++;
		}
		c->model_end(&m);
		c->assert_end(&e, &m, c->with_y);
		env_destroy(&e);
		model_free(&m);
		if (!cut)
			break;
	}
	assert_true(cuts > 10 / test_short());
}

static int merge_siblings_batched(struct env *e)
{
	return merge(e, THINP_MERGE_HYDRATE_SIBLINGS, 4, NULL);
}

static void test_merge_power_cuts(void **state)
{
	const struct cut_case c = { true, 256, merge_siblings_batched, model_merge, assert_merged };

	(void)state;
	run_cuts(&c);
}

/* ---- hydration ---- */

static int hydrate(struct env *e, thinp_catalog *cat, uint64_t batch, thinp_job *job)
{
	thinp_hydrate_options o = THINP_HYDRATE_OPTIONS_INIT;
	thinp_thin *t = open_dev(e, X, e->io[ORIG]);
	int r;

	o.batch_blocks = batch;
	r = thinp_hydrate(t, cat, &o, job);
	thinp_thin_close(t);
	return r;
}

static void model_hydrate(struct model *m)
{
	(void)m; /* hydration changes no byte anyone reads */
}

/* X reads the same without its origin, its entry names none, the origin
 * and the other devices are untouched; only origin blocks of zeroes are
 * left unprovisioned. */
static void assert_hydrated(struct env *e, const struct model *m, bool with_y)
{
	thinp_catalog_entry *ce = malloc(sizeof(*ce));
	static const uint8_t zero[BS];
	uint8_t *p = malloc(ORIGIN_BYTES);

	assert_reads(e, m, X, NULL);
	if (with_y)
		assert_reads(e, m, Y, e->lower[ORIG]);
	for (uint64_t b = 0; b < NB; b++)
		if (!is_mapped(e, X, b))
			assert_memory_equal(m->dev[X] + b * BS, zero, BS);
	*ce = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	assert_int_equal(thinp_catalog_get(e->cat, X, ce), 0);
	assert_string_equal(ce->origin, "");
	if (with_y) {
		assert_int_equal(thinp_catalog_get(e->cat, Y, ce), 0);
		assert_string_equal(ce->origin, ORIGIN_PATH);
	}
	assert_int_equal(thinp_io_read(e->lower[ORIG], p, ORIGIN_BYTES, 0, 0), 0);
	assert_memory_equal(p, m->origin, ORIGIN_BYTES);
	assert_int_equal(thinp_meta_check_io(e->lower[META], NULL, NULL, NULL), 0);
	free(p);
	free(ce);
}

static void test_hydrate_model(void **state)
{
	struct test_rng rng;
	struct model m;
	struct env e;
	thinp_job *job;
	thinp_job_progress pr;

	(void)state;
	test_rng_init(&rng, suite_seed + 200);
	model_init(&m, &rng);
	env_create(&e, 256);
	scenario(&e, &m, &rng, true);
	assert_int_equal(thinp_job_new(&job), 0);
	assert_int_equal(hydrate(&e, e.cat, 5, job), 0);
	pr = progress(job);
	assert_int_equal(pr.result, 0);
	assert_int_equal(pr.done, pr.total);
	assert_true(pr.total > 0);
	assert_hydrated(&e, &m, true);
	thinp_job_free(job);
	env_close_pool(&e, true);
	env_open_pool(&e, e.lower);
	assert_thin_check(&e);
	env_destroy(&e);
	model_free(&m);
}

/* Not enough free data blocks: -ENOSPC before anything is copied. */
static void test_hydrate_enospc(void **state)
{
	thinp_pool_status before = THINP_POOL_STATUS_INIT, after = THINP_POOL_STATUS_INIT;
	uint8_t block[BS];
	struct test_rng rng;
	struct model m;
	struct env e;
	thinp_thin *t;

	(void)state;
	test_rng_init(&rng, suite_seed + 300);
	model_init(&m, &rng);
	env_create(&e, 8);
	assert_int_equal(thinp_io_write(e.lower[ORIG], m.origin, ORIGIN_BYTES, 0, 0), 0);
	assert_int_equal(thinp_pool_create_thin(e.pool, X), 0);
	add_entry(&e, X, ORIGIN_PATH, false);
	t = open_dev(&e, X, e.lower[ORIG]);
	memset(block, 0x5a, sizeof(block));
	for (uint64_t b = 1; b < 3; b++) {
		assert_int_equal(thinp_thin_write(t, block, BS, b * BS), 0);
		memcpy(m.dev[X] + b * BS, block, BS);
	}
	thinp_thin_close(t);
	assert_int_equal(thinp_pool_get_status(e.pool, &before), 0);
	assert_int_equal(hydrate(&e, e.cat, 0, NULL), -ENOSPC);
	assert_int_equal(thinp_pool_get_status(e.pool, &after), 0);
	assert_int_equal(after.data_used, before.data_used);
	assert_reads(&e, &m, X, e.lower[ORIG]);
	env_destroy(&e);
	model_free(&m);
}

/*
 * Writes racing hydration, on a device of its own: a writer thread, and
 * writes injected into the very block whose origin data hydration is
 * reading (from its origin read, so between its look-up and its copy).
 * Every write that completed is what the device reads after, with no
 * origin: the writes won.
 */
#define RACE_NB 256u
#define RACE_BYTES ((uint64_t)RACE_NB * BS)
struct race {
	thinp_thin *t;            /* the writers' handle */
	thinp_io *origin;         /* below the injecting wrapper */
	uint8_t *model;
	pthread_mutex_t lock;     /* one write and its model update at a time */
	pthread_t hydrator;
	bool injecting;           /* an injected write is running (its own origin reads) */
	atomic_bool stop;
	struct test_rng rng, inject_rng;
	uint64_t injected;        /* the hydrating thread's own count */
};

static void race_write(struct race *rc, struct test_rng *rng, uint64_t off, uint64_t len)
{
	uint8_t *p = malloc(len);

	memset(p, (int)(1 + test_rng_below(rng, 255)), len);
	pthread_mutex_lock(&rc->lock);
	assert_int_equal(thinp_thin_write(rc->t, p, len, off), 0);
	memcpy(rc->model + off, p, len);
	pthread_mutex_unlock(&rc->lock);
	free(p);
}

static void *race_writer(void *arg)
{
	struct race *rc = arg;

	for (unsigned n = 0; !atomic_load(&rc->stop) || n < 64; n++) {
		uint64_t off = test_rng_below(&rc->rng, RACE_BYTES - 1);

		race_write(rc, &rc->rng, off,
			   1 + test_rng_below(&rc->rng, MIN(RACE_BYTES - off, 2 * BS)));
	}
	return NULL;
}

/* The origin as hydration reads it: half of its block reads first see a
 * write land in that block. */
static int inject_read(void *ctx, void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct race *rc = ctx;

	(void)flags;
	if (pthread_equal(pthread_self(), rc->hydrator) && !rc->injecting &&
	    test_rng_below(&rc->inject_rng, 2)) {
		uint64_t boff = test_rng_below(&rc->inject_rng, BS);

		rc->injecting = true;
		race_write(rc, &rc->inject_rng, off - off % BS + boff,
			   1 + test_rng_below(&rc->inject_rng, BS - boff));
		rc->injecting = false;
		rc->injected++;
	}
	return thinp_io_read(rc->origin, buf, len, off, 0);
}

static int inject_write(void *ctx, const void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	(void)ctx, (void)buf, (void)len, (void)off, (void)flags;
	return -EROFS;
}

static int inject_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

static int inject_size(void *ctx, uint64_t *bytes)
{
	struct race *rc = ctx;

	return thinp_io_size(rc->origin, bytes);
}

static thinp_io *injecting_origin(struct race *rc)
{
	thinp_io_ops ops = THINP_IO_OPS_INIT;
	thinp_io *io;

	ops.caps = THINP_IO_CAP_THREADSAFE;
	ops.read = inject_read;
	ops.write = inject_write;
	ops.flush = inject_flush;
	ops.size = inject_size;
	assert_int_equal(thinp_io_new(&io, &ops, rc, 0), 0);
	return io;
}

static void race_round(uint64_t seed)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	thinp_thin_options to = THINP_THIN_OPTIONS_INIT;
	thinp_hydrate_options ho = THINP_HYDRATE_OPTIONS_INIT;
	thinp_io *meta, *data, *origin;
	struct race rc;
	thinp_pool *pool;
	thinp_thin *t;
	pthread_t th;
	uint8_t *got = malloc(RACE_BYTES);

	memset(&rc, 0, sizeof(rc));
	pthread_mutex_init(&rc.lock, NULL);
	test_rng_init(&rc.rng, seed);
	test_rng_init(&rc.inject_rng, seed + 1);
	rc.model = malloc(RACE_BYTES);
	for (uint64_t i = 0; i < RACE_BYTES; i++)
		rc.model[i] = (uint8_t)test_rng_next(&rc.rng);
	assert_int_equal(thinp_io_open_memory(&meta, 8u << 20, 0), 0);
	assert_int_equal(thinp_io_open_memory(&data, 2 * RACE_BYTES, 0), 0);
	assert_int_equal(thinp_io_open_memory(&rc.origin, RACE_BYTES, 0), 0);
	assert_int_equal(thinp_io_write(rc.origin, rc.model, RACE_BYTES, 0, 0), 0);
	origin = injecting_origin(&rc);
	o.data_block_size = BS;
	assert_int_equal(thinp_pool_format(&pool, meta, data, &o), 0);
	assert_int_equal(thinp_pool_create_thin(pool, X), 0);
	to.size = RACE_BYTES;
	to.origin = origin;
	assert_int_equal(thinp_thin_open(&rc.t, pool, X, &to), 0);
	assert_int_equal(thinp_thin_open(&t, pool, X, &to), 0);
	rc.hydrator = pthread_self();
	assert_int_equal(pthread_create(&th, NULL, race_writer, &rc), 0);
	ho.batch_blocks = 7;
	assert_int_equal(thinp_hydrate(t, NULL, &ho, NULL), 0);
	atomic_store(&rc.stop, true);
	pthread_join(th, NULL);
	assert_true(rc.injected > 0);
	thinp_thin_close(t);
	thinp_thin_close(rc.t);
	to.origin = NULL;
	assert_int_equal(thinp_thin_open(&t, pool, X, &to), 0);
	assert_int_equal(thinp_thin_read(t, got, RACE_BYTES, 0), 0);
	for (uint64_t b = 0; b < RACE_NB; b++)
		if (memcmp(got + b * BS, rc.model + b * BS, BS))
			fail_msg("block %llu lost a write (seed %llu)", (unsigned long long)b,
				 (unsigned long long)suite_seed);
	thinp_thin_close(t);
	assert_int_equal(thinp_pool_close(pool), 0);
	assert_int_equal(thinp_meta_check_io(meta, NULL, NULL, NULL), 0);
	thinp_io_close(meta);
	thinp_io_close(data);
	thinp_io_close(origin);
	thinp_io_close(rc.origin);
	pthread_mutex_destroy(&rc.lock);
	free(rc.model);
	free(got);
}

static void test_hydrate_race(void **state)
{
	unsigned rounds = test_ops(4);

	(void)state;
	for (unsigned round = 0; round < rounds; round++)
		race_round(suite_seed + 400 + round);
}

static int hydrate_catalog(struct env *e)
{
	return hydrate(e, e->cat, 3, NULL);
}

static void test_hydrate_power_cuts(void **state)
{
	const struct cut_case c = { true, 256, hydrate_catalog, model_hydrate, assert_hydrated };

	(void)state;
	run_cuts(&c);
}

/* ---- cancel, pause and rerun ---- */

struct bg_job {
	struct env *e;
	thinp_job *job;
	bool merge;
	int result;
};

static void *bg_run(void *arg)
{
	struct bg_job *bg = arg;

	bg->result = bg->merge ? merge(bg->e, THINP_MERGE_HYDRATE_SIBLINGS, 0, bg->job)
			       : hydrate(bg->e, bg->e->cat, 2, bg->job);
	return NULL;
}

/* Wait (bounded) until the job has moved at least @bytes, or is in @state. */
static void wait_for(thinp_job *job, uint64_t bytes, uint32_t state)
{
	for (int i = 0; i < 2000; i++) {
		thinp_job_progress pr = progress(job);

		if ((state && pr.state == state) || (!state && pr.done >= bytes))
			return;
		usleep(5000);
	}
	fail_msg("the job never got there");
}

/* X's first HOLES blocks unmapped (reading through to the origin again),
 * so that a hydration has work left after the two blocks cancel_and_rerun
 * waits for, whatever the random writes covered (seed 37926357545335 left
 * X two blocks to hydrate, all of them done before the pause). */
#define HOLES 8u
static void unmap_head(struct env *e, struct model *m)
{
	thinp_thin *t = open_dev(e, X, e->lower[ORIG]);

	assert_int_equal(thinp_thin_discard(t, HOLES * BS, 0), 0);
	thinp_thin_close(t);
	memcpy(m->dev[X], m->origin, HOLES * BS);
	for (uint64_t b = 0; b < HOLES; b++)
		m->mapped[X][b] = false;
	assert_int_equal(thinp_pool_commit(e->pool), 0);
}

static void cancel_and_rerun(bool is_merge)
{
	struct test_rng rng;
	struct model m;
	struct env e;
	struct bg_job bg = { &e, NULL, is_merge, 1 };
	thinp_job_progress pr;
	pthread_t th;

	test_rng_init(&rng, suite_seed + 500 + is_merge);
	model_init(&m, &rng);
	env_create(&e, 256);
	scenario(&e, &m, &rng, true);
	if (!is_merge)
		unmap_head(&e, &m);
	assert_int_equal(thinp_job_new(&bg.job), 0);
	assert_int_equal(thinp_job_set_rate_limit(bg.job, 16 * BS), 0);
	assert_int_equal(pthread_create(&th, NULL, bg_run, &bg), 0);
	wait_for(bg.job, 2 * BS, 0);
	assert_int_equal(thinp_job_pause(bg.job), 0);
	wait_for(bg.job, 0, THINP_JOB_PAUSED);
	pr = progress(bg.job);
	usleep(100 * 1000);
	assert_int_equal(progress(bg.job).done, pr.done);
	assert_int_equal(thinp_job_cancel(bg.job), 0);
	pthread_join(th, NULL);
	assert_int_equal(bg.result, -ECANCELED);
	pr = progress(bg.job);
	assert_int_equal(pr.state, THINP_JOB_DONE);
	assert_int_equal(pr.result, -ECANCELED);
	assert_true(pr.done < pr.total);
	/* Cancelled at a consistent point: everything reads as before. */
	assert_reads(&e, &m, X, e.lower[ORIG]);
	assert_reads(&e, &m, Y, e.lower[ORIG]);
	thinp_catalog_entry *ce = malloc(sizeof(*ce));
	*ce = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	assert_int_equal(thinp_catalog_get(e.cat, X, ce), 0);
	assert_string_equal(ce->origin, ORIGIN_PATH);
	free(ce);

	assert_int_equal(thinp_job_set_rate_limit(bg.job, 0), 0);
	bg_run(&bg);
	assert_int_equal(bg.result, 0);
	pr = progress(bg.job);
	assert_int_equal(pr.done, pr.total);
	if (is_merge) {
		model_merge(&m);
		assert_merged(&e, &m, true);
	} else {
		assert_hydrated(&e, &m, true);
	}
	thinp_job_free(bg.job);
	env_destroy(&e);
	model_free(&m);
}

static void test_merge_cancel(void **state)
{
	(void)state;
	cancel_and_rerun(true);
}

static void test_hydrate_cancel(void **state)
{
	(void)state;
	cancel_and_rerun(false);
}

/* Misuse: no origin anywhere. */
static void test_refusals(void **state)
{
	struct env e;
	thinp_thin *t;

	(void)state;
	env_create(&e, 64);
	assert_int_equal(thinp_pool_create_thin(e.pool, Z), 0);
	add_entry(&e, Z, "", false);
	assert_int_equal(thinp_merge(e.pool, Z, e.lower[ORIG], e.cat, NULL, NULL), -EINVAL);
	assert_int_equal(thinp_merge(e.pool, 9, e.lower[ORIG], e.cat, NULL, NULL), -ENODATA);
	assert_int_equal(thinp_merge(e.pool, Z, e.lower[ORIG], NULL, NULL, NULL), -EINVAL);
	t = open_dev(&e, Z, NULL);
	assert_int_equal(thinp_hydrate(t, e.cat, NULL, NULL), -EINVAL);
	thinp_thin_close(t);
	env_destroy(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_merge_model),
		cmocka_unit_test(test_merge_sibling),
		cmocka_unit_test(test_merge_power_cuts),
		cmocka_unit_test(test_merge_cancel),
		cmocka_unit_test(test_hydrate_model),
		cmocka_unit_test(test_hydrate_enospc),
		cmocka_unit_test(test_hydrate_race),
		cmocka_unit_test(test_hydrate_power_cuts),
		cmocka_unit_test(test_hydrate_cancel),
	};
	int r;

	suite_seed = test_seed("test_origin_jobs");
	r = cmocka_run_group_tests(tests, NULL, NULL);
	test_tmpdir_cleanup();
	return r;
}
