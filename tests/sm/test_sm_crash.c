/*
 * Crash tests: cut the power at every write and flush of a set of random
 * transactions (over the fault backend), reopen the lower device, and require
 * the state to be exactly the last or the next commit (compared with the
 * models recorded by a fault-free run) and to pass the full reference-count
 * checker; then one more transaction must work on the recovered state.
 * Torn writes of space-map blocks must be caught by their checksums.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include <libthinp/testing.h>
#include "common/sm_env.h"
#include "sm/bitmap.h"
#include "sm/format.h"
#include "util/endian.h"

#define BLK 4096u
#define META_BLOCKS 600
#define DATA_BLOCKS 3000
#define KEYS 2000
#define MAX_TX 12

struct workload {
	uint64_t seed;
	unsigned nr_tx;
	uint64_t models[MAX_TX + 2][KEYS]; /* tree after commit g (generation) */
	uint64_t base_generation;
};

static void print_mismatch(void *ctx, const struct sm_mismatch *m)
{
	fprintf(stderr, "mismatch kind %d block %llu expected %llu actual %llu\n", (int)m->kind,
		(unsigned long long)m->b, (unsigned long long)m->expected,
		(unsigned long long)m->actual);
}

/* One transaction of random inserts/removes (some data blocks shared, so
 * data counts reach 3+); every 3rd transaction also grows the data map. */
static int run_tx(struct sm_env *e, struct test_rng *rng, uint64_t *model, unsigned tx)
{
	unsigned i, nr = 100 + (unsigned)test_rng_below(rng, 200);
	int r;

	if (tx % 3 == 2) {
		r = sm_extend(e->dsm, 500);
		if (r)
			return r;
	}
	for (i = 0; i < nr; i++) {
		uint64_t k = test_rng_below(rng, KEYS), o = test_rng_below(rng, KEYS), b;

		if (test_rng_below(rng, 3) == 0) {
			if (model[k] == UINT64_MAX)
				continue;
			r = sm_env_remove(e, k);
			if (r)
				return r;
			model[k] = UINT64_MAX;
			continue;
		}
		if (model[o] != UINT64_MAX && model[o] != model[k] && test_rng_below(rng, 2)) {
			b = model[o];
			r = sm_inc(e->dsm, b);
		} else {
			r = sm_new_block(e->dsm, &b);
		}
		if (!r)
			r = sm_env_insert(e, k, b);
		if (r)
			return r;
		model[k] = b;
	}
	return sm_env_commit(e);
}

/* Run the workload on io; returns the number of commits that succeeded.
 * With record, stores the model after each commit. */
static unsigned run_workload(struct workload *w, thinp_io *io, bool record)
{
	struct test_rng rng;
	struct sm_env e;
	uint64_t model[KEYS];
	unsigned tx, ok = 0;

	test_rng_init(&rng, w->seed);
	memcpy(model, w->models[0], sizeof(model));
	if (sm_env_open_cache(&e, io, 8 * BLK) == 0) {
		for (tx = 0; tx < w->nr_tx; tx++) {
			if (run_tx(&e, &rng, model, tx))
				break;
			ok++;
			if (record)
				memcpy(w->models[ok], model, sizeof(model));
		}
	}
	sm_env_close(&e);
	return ok;
}

static void check_tree(struct sm_env *e, const uint64_t *model)
{
	uint64_t k;

	for (k = 0; k < KEYS; k++) {
		uint8_t v[8];
		int r = btree_lookup(&e->info, e->root, &k, v);

		if (model[k] == UINT64_MAX) {
			assert_int_equal(r, -ENODATA);
		} else {
			assert_int_equal(r, 0);
			assert_int_equal(load_le64(v), model[k]);
		}
	}
}

static thinp_io *copy_dev(thinp_io *src)
{
	static uint8_t buf[BLK];
	thinp_io *io;
	uint64_t b;

	assert_int_equal(thinp_io_open_memory(&io, (uint64_t)META_BLOCKS * BLK, 0), 0);
	for (b = 0; b < META_BLOCKS; b++) {
		assert_int_equal(thinp_io_read(src, buf, BLK, b * BLK, 0), 0);
		assert_int_equal(thinp_io_write(io, buf, BLK, b * BLK, 0), 0);
	}
	return io;
}

/* The recovered image is commit `ok` or `ok + 1`, consistent, and usable. */
static void check_recovered(struct workload *w, thinp_io *lower, unsigned ok)
{
	struct test_rng rng;
	struct sm_env e;
	uint64_t g, model[KEYS];

	assert_int_equal(sm_env_open(&e, lower, false), 0);
	g = e.generation - w->base_generation;
	if (g != ok && g != ok + 1)
		fprintf(stderr, "generation %llu after %u good commits\n", (unsigned long long)g, ok);
	assert_true(g == ok || g == ok + 1);
	check_tree(&e, w->models[g]);
	assert_int_equal(sm_env_check(&e, NULL, print_mismatch, NULL), 0);

	test_rng_init(&rng, w->seed ^ 0x5555);
	memcpy(model, w->models[g], sizeof(model));
	assert_int_equal(run_tx(&e, &rng, model, 0), 0);
	assert_int_equal(sm_env_check(&e, NULL, print_mismatch, NULL), 0);
	check_tree(&e, model);
	sm_env_close(&e);
}

static void test_power_cut_everywhere(void **state)
{
	static struct workload w;
	static const int modes[] = { THINP_IO_FAULT_CUT_TORN, THINP_IO_FAULT_CUT_RANDOM,
				     THINP_IO_FAULT_CUT_DROP, THINP_IO_FAULT_CUT_KEEP };
	thinp_io *base, *clean;
	struct sm_env e;
	uint64_t n, cuts = 0;
	unsigned ok;

	w.seed = test_seed("power_cut");
	w.nr_tx = 6 + (test_scale() > 1 ? 4 : 0);
	memset(w.models[0], 0xFF, sizeof(w.models[0]));
	assert_int_equal(thinp_io_open_memory(&base, (uint64_t)META_BLOCKS * BLK, 0), 0);
	assert_int_equal(sm_env_format(&e, base, DATA_BLOCKS), 0);
	w.base_generation = e.generation;
	sm_env_close(&e);

	clean = copy_dev(base);
	assert_int_equal(run_workload(&w, clean, true), w.nr_tx);
	thinp_io_close(clean);

	for (n = 1;; n++) {
		thinp_io *lower = copy_dev(base), *io;
		thinp_io_fault *f;
		int fired;

		assert_int_equal(thinp_io_open_fault(&io, &f, lower, 0), 0);
		assert_int_equal(thinp_io_fault_arm_cut(f, n, modes[n % 4], w.seed + n), 0);
		ok = run_workload(&w, io, false);
		thinp_io_close(io);
		fired = thinp_io_fault_cut_fired(f);
		thinp_io_fault_free(f);
		if (!fired)
			assert_int_equal(ok, w.nr_tx);
		check_recovered(&w, lower, ok);
		thinp_io_close(lower);
		if (!fired)
			break;
		cuts++;
	}
	fprintf(stderr, "  %llu power cuts checked\n", (unsigned long long)cuts);
	assert_true(cuts > 40);
	thinp_io_close(base);
}

/*
 * A torn write of a space-map block (the first k sectors of a new version
 * over the old one) never passes validation: the checksum covers the whole
 * block.
 */
static void tear(thinp_io *io, uint64_t b, const struct validator *v, unsigned sectors)
{
	uint8_t old[BLK], new_version[BLK];

	assert_int_equal(thinp_io_read(io, old, BLK, b * BLK, 0), 0);
	memcpy(new_version, old, BLK);
	if (v == &sm_bitmap_validator) {
		unsigned e;

		for (e = 0; e < SM_ENTRIES_PER_BITMAP; e += 97)
			bitmap_set(new_version, e, (bitmap_get(old, e) + 1) % 3);
	} else {
		unsigned i;

		for (i = 16; i < BLK; i++)
			new_version[i] ^= (uint8_t)(i * 7 + 1);
	}
	v->prepare_for_write(v, new_version, b);
	assert_int_equal(thinp_io_write(io, new_version, 512u * sectors, b * BLK, 0), 0);
}

static void test_torn_blocks_detected(void **state)
{
	const struct validator *vs[] = { &sm_index_validator, &sm_bitmap_validator };
	unsigned k, i;

	for (i = 0; i < 2; i++) {
		for (k = 1; k < 8; k++) {
			thinp_io *io;
			struct sm_env e;
			uint8_t sb[BLK], ib[BLK];
			struct sm_root_info mr;
			struct index_entry ie;
			uint64_t victim;
			uint32_t c;
			int r;

			assert_int_equal(thinp_io_open_memory(&io, 100 * BLK, 0), 0);
			assert_int_equal(sm_env_format(&e, io, 100), 0);
			sm_env_close(&e);
			assert_int_equal(thinp_io_read(io, sb, BLK, 0, 0), 0);
			sm_root_unpack(sb + 192, &mr);
			assert_int_equal(thinp_io_read(io, ib, BLK, mr.bitmap_root * BLK, 0), 0);
			index_entry_unpack((const struct disk_index_entry *)(ib + 16), &ie);
			victim = i == 0 ? mr.bitmap_root : ie.blocknr;
			tear(io, victim, vs[i], k);
			r = sm_env_open(&e, io, false);
			if (i == 0) {
				assert_int_equal(r, -EILSEQ);
			} else {
				assert_int_equal(r, 0);
				assert_int_equal(sm_get_count(e.msm, 0, &c), -EILSEQ);
			}
			sm_env_close(&e);
			thinp_io_close(io);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_power_cut_everywhere),
		cmocka_unit_test(test_torn_blocks_detected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
