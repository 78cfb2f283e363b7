/*
 * Power loss at every write and flush of a random workload (pool messages,
 * mapping changes, commits, metadata snapshots), with the fault-injecting
 * backend: the unflushed writes are dropped, kept, kept at random, or torn.
 * After each cut the device is reopened: it must hold exactly the state of
 * the last commit or of the commit that was in flight (compared with a model
 * recorded by a fault-free run of the same workload), and pass the full
 * check, and (every few cuts) thin_check.
 * THINP_TEST_SEED replays; THINP_TEST_LONG lengthens the workload.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thin/helpers.h"
#include "thin/model.h"

#define MIB (1024ull * 1024)
#define IMG_BYTES (2 * MIB)

struct recording {
	struct model **states; /* states[c]: the model after c commits */
	unsigned nr_states;
	unsigned *commits_before; /* per op index */
	unsigned nr_ops;
};

/* The base image: a formatted pool with a few devices and mappings. */
static uint8_t *base_image(struct model *m)
{
	thinp_io *io;
	thinp_meta *meta;
	uint8_t *img = malloc(IMG_BYTES);
	uint64_t b, v;

	th_format(&io, &meta, IMG_BYTES, 4000);
	assert_int_equal(thinp_meta_message(meta, "create_thin 0"), 0);
	assert_int_equal(thinp_meta_message(meta, "create_thin 1"), 0);
	m->dev[0].exists = m->dev[1].exists = true;
	for (v = 0; v < 200; v++) {
		assert_int_equal(thin_alloc_data_block_locked(meta, &b), 0);
		assert_int_equal(th_insert_now(meta, 0, v, b), 0);
		m->dev[0].data[v] = b;
		m->dev[0].time[v] = 0;
	}
	m->dev[0].mapped = 200;
	assert_int_equal(thinp_meta_commit(meta), 0);
	thinp_meta_close(meta);
	assert_int_equal(thinp_io_read(io, img, IMG_BYTES, 0), 0);
	thinp_io_close(io);
	return img;
}

static void add_state(struct recording *rec, const struct model *m)
{
	rec->states = realloc(rec->states, (rec->nr_states + 1) * sizeof(*rec->states));
	rec->states[rec->nr_states] = model_new();
	model_copy(rec->states[rec->nr_states], m);
	rec->nr_states++;
}

/* Run the workload on io. Returns the index of the op that failed, or
 * nr_ops when all succeeded. With rec->states == NULL... records instead. */
static unsigned workload(thinp_io *io, const struct model *base, uint64_t seed, unsigned nr_ops,
			 struct recording *record)
{
	struct model *m = model_new();
	struct test_rng rng;
	thinp_meta *meta;
	unsigned i, commits = 0;

	model_copy(m, base);
	test_rng_init(&rng, seed);
	if (thinp_meta_open(&meta, io, NULL)) {
		free(m);
		return 0;
	}
	if (record)
		add_state(record, m);
	for (i = 0; i < nr_ops; i++) {
		struct mop o = model_op(m, meta, &rng, false);

		if (record)
			record->commits_before[i] = commits;
		if (o.skipped)
			continue;
		if (o.r != o.expected)
			break;
		if (o.commits && o.r == 0) {
			commits++;
			if (record)
				add_state(record, m);
		}
	}
	thinp_meta_close(meta);
	free(m);
	return i;
}

static bool matches(const struct model *m, thinp_io *io)
{
	thinp_meta *meta;
	unsigned bad;

	if (thinp_meta_open(&meta, io, NULL))
		return false;
	model_quiet = true;
	bad = model_verify(m, meta);
	model_quiet = false;
	thinp_meta_close(meta);
	return bad == 0;
}

/* reserve_metadata_snap commits the open transaction before it takes the
 * snapshot (as the kernel does): a cut between the two commits leaves the
 * new state without the snapshot. */
static bool matches_before_reserve(const struct model *after, thinp_io *io)
{
	struct model *m;
	bool ok;

	if (!after->held)
		return false;
	m = model_new();
	model_copy(m, after);
	m->held = false;
	ok = matches(m, io);
	free(m);
	return ok;
}

static void crash_loop(uint64_t seed, int mode, unsigned nr_ops)
{
	struct model *base = model_new();
	uint8_t *img = base_image(base);
	struct recording rec = { 0 };
	thinp_io *lower, *io;
	thinp_io_fault *f;
	unsigned done, cuts = 0;
	uint64_t n;

	/* The fault-free run: which states each op may leave behind. */
	rec.commits_before = calloc(nr_ops + 1, sizeof(unsigned));
	assert_int_equal(thinp_io_open_memory(&lower, IMG_BYTES, 0), 0);
	assert_int_equal(thinp_io_write(lower, img, IMG_BYTES, 0), 0);
	done = workload(lower, base, seed, nr_ops, &rec);
	assert_int_equal(done, nr_ops);
	th_check_clean(lower);
	thinp_io_close(lower);

	for (n = 1;; n++) {
		unsigned failed, c;
		bool fired, ok;

		assert_int_equal(thinp_io_open_memory(&lower, IMG_BYTES, 0), 0);
		assert_int_equal(thinp_io_write(lower, img, IMG_BYTES, 0), 0);
		assert_int_equal(thinp_io_open_fault(&io, &f, lower, 0), 0);
		assert_int_equal(thinp_io_fault_arm_cut(f, n, mode, seed + n), 0);
		failed = workload(io, base, seed, nr_ops, NULL);
		thinp_io_close(io);
		fired = thinp_io_fault_cut_fired(f);
		thinp_io_fault_free(f);
		if (!fired) {
			assert_int_equal(failed, nr_ops);
			assert_true(matches(rec.states[rec.nr_states - 1], lower));
			thinp_io_close(lower);
			break;
		}
		cuts++;
		/* The last durable commit, or the one in flight. */
		c = failed < nr_ops ? rec.commits_before[failed] : rec.nr_states - 1;
		ok = matches(rec.states[c], lower) ||
		     (c + 1 < rec.nr_states && (matches(rec.states[c + 1], lower) ||
						matches_before_reserve(rec.states[c + 1], lower)));
		if (!ok) {
			fprintf(stderr, "cut at request %llu (mode %d, op %u): state is neither "
				"commit %u nor %u\n", (unsigned long long)n, mode, failed, c, c + 1);
			fail();
		}
		th_check_clean(lower);
		if (cuts % 40 == 1) {
			int rc = th_thin_check(lower);

			assert_true(rc == 0 || rc == 77);
		}
		thinp_io_close(lower);
	}
	fprintf(stderr, "mode %d: %u power cuts, each recovered\n", mode, cuts);
	for (n = 0; n < rec.nr_states; n++)
		free(rec.states[n]);
	free(rec.states);
	free(rec.commits_before);
	free(base);
	free(img);
}

static void test_crash_drop(void **state)
{
	crash_loop(test_seed("crash drop"), THINP_IO_FAULT_CUT_DROP, 80 * test_scale());
}

static void test_crash_keep(void **state)
{
	crash_loop(test_seed("crash keep"), THINP_IO_FAULT_CUT_KEEP, 80 * test_scale());
}

static void test_crash_torn(void **state)
{
	crash_loop(test_seed("crash torn"), THINP_IO_FAULT_CUT_TORN, 120 * test_scale());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_drop),
		cmocka_unit_test(test_crash_keep),
		cmocka_unit_test(test_crash_torn),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	test_tmpdir_cleanup();
	return r;
}
