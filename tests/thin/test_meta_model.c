/*
 * Model-based random test: random pool messages, mapping inserts/removes,
 * commits, aborts and reopens, run on the library and on a trivial model
 * (tests/thin/model.c) and compared. After every commit the full check must
 * find nothing; every so often thin_check must accept the image too.
 * THINP_TEST_SEED replays a run; THINP_TEST_LONG multiplies its length.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thin/helpers.h"
#include "thin/model.h"

static void run_model(uint64_t seed, unsigned steps, uint64_t meta_bytes)
{
	struct model *m = model_new(), *committed = model_new(), *held = model_new();
	struct test_rng rng;
	thinp_io *io;
	thinp_meta *meta;
	unsigned i, commits = 0;

	test_rng_init(&rng, seed);
	th_format(&io, &meta, meta_bytes, 20000);
	for (i = 0; i < steps; i++) {
		struct mop o = model_op(m, meta, &rng, true);

		if (o.skipped)
			continue;
		if (o.r != o.expected) {
			fprintf(stderr, "step %u: %s returned %d, model expected %d (%s)\n", i,
				o.name, o.r, o.expected, thinp_meta_errmsg(meta));
			fail();
		}
		if (!strcmp(o.name, "abort"))
			model_copy(m, committed);
		if (o.r == 0 && !strcmp(o.name, "reserve_metadata_snap"))
			model_copy(held, m);
		if (o.commits && o.r == 0) {
			model_copy(committed, m);
			if (++commits % 4 == 0)
				th_check_clean(io);
			if (commits % 150 == 0) {
				int rc = th_thin_check(io);

				assert_true(rc == 0 || rc == 77);
			}
		}
		if (test_rng_below(&rng, 100) == 0) {
			/* Reopen, committing first or not: the model follows. */
			if (test_rng_below(&rng, 2)) {
				assert_int_equal(thinp_meta_commit(meta), 0);
				model_copy(committed, m);
			} else {
				model_copy(m, committed);
			}
			th_reopen(io, &meta);
		}
		if (test_rng_below(&rng, 50) == 0) {
			assert_int_equal(model_verify(m, meta), 0);
			if (m->held && committed->held)
				assert_int_equal(model_verify_held(held, meta), 0);
		}
	}
	assert_int_equal(thinp_meta_commit(meta), 0);
	assert_int_equal(model_verify(m, meta), 0);
	th_check_clean(io);
	{
		int rc = th_thin_check(io);

		assert_true(rc == 0 || rc == 77);
	}
	thinp_meta_close(meta);
	thinp_io_close(io);
	free(m);
	free(committed);
	free(held);
}

static void test_model_random(void **state)
{
	uint64_t seed = test_seed("thin model");

	run_model(seed, test_ops(2500), 8ull << 20);
}

/* A small metadata device: the run meets full space maps and deeper trees
 * per block of metadata. */
static void test_model_small_metadata(void **state)
{
	uint64_t seed = test_seed("thin model (small)");

	run_model(seed ^ 0x5555, test_ops(1500), 4ull << 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_random),
		cmocka_unit_test(test_model_small_metadata),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	test_tmpdir_cleanup();
	return r;
}
